//! Cgroup script functions: `cgroup_layout()`, `cgroup(path, opts)` and the `Cgroup`
//! handle, `reset_cgroup(...)` (ctrtool's). All Linux work is in `sys::cgroup`.
//!
//! A cgroup a recipe creates is owned by it (`cleanup::own`): killed and removed in every
//! hierarchy when the recipe ends, unless `keep: true` or `.keep()`. A cgroup that existed
//! already is adopted and left alone at the end.
//!
//! For the launcher: [`cgroup_arg`] reads a `cgroup` key; [`Cgroup::v2_dir_fd`] is the fd
//! for clone3(CLONE_INTO_CGROUP) and [`Cgroup::add_pid`] places a pid in every hierarchy.

use std::cell::Cell;
use std::os::fd::BorrowedFd;
use std::rc::Rc;

use rhai::{Array, Dynamic, Map};

use super::api::Api;
use super::cleanup::{self, OwnId};
use super::error::{arg_err, int_arg, script_type, type_of, IntoScript, RResult};
use super::opts::{strs_of, Opts};
use super::process::Process;
use super::report::nearest;
use crate::sys::cgroup::layout::KNOWN_CONTROLLERS;
use crate::sys::cgroup::{self as sc, limits, reset, Hierarchies, Limits, LIMIT_KEYS};

/// A cgroup the script holds: its directories in every hierarchy it lives in.
#[derive(Clone)]
pub struct Cgroup(Rc<State>);

struct State {
    cg: sc::Cgroup,
    /// The cleanup registration while the recipe owns the cgroup.
    own: Cell<Option<OwnId>>,
}

impl Cgroup {
    /// The sys-level cgroup (directories, layout).
    #[allow(dead_code)] // for launchers that need the directories
    pub fn sys(&self) -> &sc::Cgroup {
        &self.0.cg
    }

    /// The cgroup's v2 directory opened O_RDONLY|O_DIRECTORY, for clone3's `cgroup` field
    /// with CLONE_INTO_CGROUP; None on a legacy (v1-only) layout. On hybrid, the child lands
    /// only in the v2 tree that way: call [`add_pid`](Self::add_pid) for the v1 hierarchies.
    pub fn v2_dir_fd(&self) -> Option<BorrowedFd<'_>> {
        self.0.cg.v2_fd()
    }

    /// Write `pid` into cgroup.procs in every hierarchy of the cgroup (v2 and v1).
    pub fn add_pid(&self, pid: i32) -> crate::sys::Result<()> {
        self.0.cg.add_pid(pid)
    }

    /// Whether the cgroup has v1 directories (a clone into the v2 one does not reach them).
    pub fn has_v1(&self) -> bool {
        self.0
            .cg
            .dirs
            .iter()
            .any(|d| d.hier.version == sc::Version::V1)
    }

    fn disown(&self) {
        if let Some(id) = self.0.own.take() {
            cleanup::disown(id);
        }
    }

    fn show(&self) -> String {
        let keys: Vec<String> = self.0.cg.dirs.iter().map(|d| d.hier.key()).collect();
        format!("Cgroup({} in {})", self.0.cg.path, keys.join(", "))
    }
}

const CGROUP_KEYS: &[&str] = &["limits", "controllers", "keep"];

/// Read a limits map into the one vocabulary.
pub fn parse_limits(op: &str, m: Map) -> RResult<Limits> {
    let o = Opts::new(op, m, LIMIT_KEYS)?;
    // A value written as a string or a number.
    let text =
        |key: &str, what: &str| -> RResult<Option<String>> {
            match o.get(key) {
                None => Ok(None),
                // A negative number is said as the number it is, not quoted as a string.
                Some(v) if v.as_int().is_ok_and(|n| n < 0) => Err(arg_err(
                    op,
                    key,
                    format!("{v} is negative; expected {what}"),
                )),
                Some(v) if v.is_int() => Ok(Some(v.as_int().unwrap_or(0).to_string())),
                Some(v) => v.clone().into_string().map(Some).map_err(|t| {
                    arg_err(op, key, format!("expected {what}, got {}", script_type(t)))
                }),
            }
        };
    let size = "a size like \"64M\" or a number of bytes";
    let mut l = Limits {
        memory: text("memory", size)?
            .map(|s| limits::parse_size("memory", &s))
            .transpose()
            .script()?,
        memory_swap: text("memory_swap", size)?
            .map(|s| limits::parse_size("memory_swap", &s))
            .transpose()
            .script()?,
        pids: text("pids", "a number of tasks or \"max\"")?
            .map(|s| limits::parse_count("pids", &s))
            .transpose()
            .script()?,
        ..Default::default()
    };
    if let Some(v) = o.get("cpu") {
        if v.is_int() || v.is_float() {
            return Err(arg_err(
                op,
                "cpu",
                format!(
                    "{v} is ambiguous: write \"50%\" for half a CPU, \"200%\" for two, or \"max\""
                ),
            ));
        }
        let s = text("cpu", "a share like \"50%\" or \"max\"")?.unwrap_or_default();
        l.cpu = Some(limits::parse_cpu("cpu", &s).script()?);
    }
    l.cpu_weight = o
        .int("cpu_weight")?
        .map(|n| limits::check_weight("cpu_weight", n))
        .transpose()
        .script()?;
    l.cpuset = text("cpuset", "a CPU list like \"0-1\"")?
        .map(|s| limits::parse_list("cpuset", &s))
        .transpose()
        .script()?;
    l.cpuset_mems = text("cpuset_mems", "a memory node list like \"0\"")?
        .map(|s| limits::parse_list("cpuset_mems", &s))
        .transpose()
        .script()?;
    Ok(l)
}

/// check_limits for recipe libraries: a limits map as cgroup() takes it, checked without
/// creating anything; an error names op(arg.KEY), e.g. container(limits.memory).
fn check_limits(op: &str, arg: &str, v: &Dynamic) -> RResult<()> {
    let m = v.read_lock::<Map>().map(|m| m.clone()).ok_or_else(|| {
        arg_err(
            op,
            arg,
            format!(
                "expected a map like #{{ memory: \"64M\", pids: 100 }}, got {}",
                type_of(v)
            ),
        )
    })?;
    parse_limits(op, m).map(|_| ()).map_err(|e| {
        let rhai::EvalAltResult::ErrorRuntime(val, _) = &*e else {
            return e;
        };
        let Some(map) = val.read_lock::<Map>().map(|m| m.clone()) else {
            return e;
        };
        let text = |k: &str| map.get(k).and_then(|v| v.clone().into_string().ok());
        let name = match text("name") {
            Some(key) => format!("{arg}.{key}"),
            None => arg.to_string(),
        };
        let mut err = crate::sys::SysError::invalid(op, &name, text("detail").unwrap_or_default());
        if let Some(h) = text("hint") {
            err = err.hint(h);
        }
        super::error::sys_err(err)
    })
}

fn parse_controllers(op: &str, v: Option<&Dynamic>) -> RResult<Vec<String>> {
    let Some(v) = v else {
        return Ok(Vec::new());
    };
    let names = strs_of(op, "controllers", v)?;
    let known: Vec<String> = KNOWN_CONTROLLERS.iter().map(|s| s.to_string()).collect();
    for n in &names {
        if !known.contains(n) {
            let near = nearest(n, &known, 3);
            let hint = if near.is_empty() {
                format!("controllers: {}", KNOWN_CONTROLLERS.join(", "))
            } else {
                format!("did you mean {}?", near.join(", "))
            };
            return Err(arg_err(
                op,
                "controllers",
                format!("{n:?} is not a cgroup controller; {hint}"),
            ));
        }
    }
    Ok(names)
}

/// Create or adopt the cgroup `path` with options (`limits`, `controllers`, `keep`).
fn make(op: &str, path: &str, opts: Map) -> RResult<Cgroup> {
    let o = Opts::new(op, opts, CGROUP_KEYS)?;
    let limits = match o.get("limits") {
        None => Limits::default(),
        Some(v) => {
            let m = v.read_lock::<Map>().map(|m| m.clone()).ok_or_else(|| {
                arg_err(
                    op,
                    "limits",
                    format!(
                        "expected a map like #{{ memory: \"64M\", pids: 100 }}, got {}",
                        type_of(v)
                    ),
                )
            })?;
            parse_limits(op, m)?
        }
    };
    let controllers = parse_controllers(op, o.get("controllers"))?;
    let keep = o.bool("keep", false)?;
    let h = Hierarchies::detect().script()?;
    let cg = sc::Cgroup::create(&h, path, &limits, &controllers).script()?;
    let own = if !keep && cg.created_any() {
        let c = cg.clone();
        Some(cleanup::own(format!("cgroup {}", cg.path), move || {
            c.remove_created()
        }))
    } else {
        None
    };
    Ok(Cgroup(Rc::new(State {
        cg,
        own: Cell::new(own),
    })))
}

/// Read the launcher's `cgroup` key: a Cgroup, a path (created or adopted like
/// `cgroup(path)`), or a map `#{ path, limits, controllers, keep }`.
pub fn cgroup_arg(op: &str, v: &Dynamic) -> RResult<Cgroup> {
    if let Some(c) = v.read_lock::<Cgroup>() {
        return Ok(c.clone());
    }
    if let Ok(path) = v.clone().into_string() {
        return make(op, &path, Map::new());
    }
    if let Some(m) = v.read_lock::<Map>() {
        let mut m = m.clone();
        let path = m
            .remove("path")
            .and_then(|p| p.into_string().ok())
            .ok_or_else(|| arg_err(op, "cgroup", "a cgroup map needs a \"path\" string"))?;
        return make(op, &path, m);
    }
    Err(arg_err(
        op,
        "cgroup",
        format!(
            "expected a Cgroup, a cgroup path or #{{ path, limits }}, got {}",
            type_of(v)
        ),
    ))
}

/// A pid from an int or a Process.
fn pid_arg(op: &str, v: &Dynamic) -> RResult<i32> {
    if let Some(p) = v.read_lock::<Process>() {
        return Ok(p.pid);
    }
    match v.as_int() {
        Ok(n) if n > 0 => int_arg(op, "pid", n),
        Ok(n) => Err(arg_err(op, "pid", format!("{n} is not a pid"))),
        Err(t) => Err(arg_err(
            op,
            "pid",
            format!("expected a pid or a Process, got {}", script_type(t)),
        )),
    }
}

fn value_text(op: &str, v: &Dynamic) -> RResult<String> {
    if v.is_int() {
        return Ok(v.as_int().unwrap_or(0).to_string());
    }
    v.clone().into_string().map_err(|t| {
        arg_err(
            op,
            "value",
            format!("expected a string or an integer, got {}", script_type(t)),
        )
    })
}

fn stats_map(s: &sc::Stats) -> Map {
    let mut m = Map::new();
    for (k, v) in [
        ("memory_current", s.memory_current),
        ("memory_peak", s.memory_peak),
        ("oom_kills", s.oom_kills),
        ("pids_current", s.pids_current),
        ("cpu_usec", s.cpu_usec),
    ] {
        if let Some(v) = v {
            m.insert(k.into(), Dynamic::from(v.min(i64::MAX as u64) as i64));
        }
    }
    m
}

/// reset_cgroup's targets: hierarchy name → path (a string, or a Cgroup's path there).
fn reset_targets(h: &Hierarchies, m: Map) -> RResult<Vec<(String, String)>> {
    const OP: &str = "reset_cgroup";
    let names = reset::all_names(h);
    let mut out = Vec::new();
    for (k, v) in m {
        let Some(hier) = reset::hierarchy_named(h, &k) else {
            let near = nearest(&k, &names, 3);
            let hint = if near.is_empty() {
                format!("hierarchies here: {}", names.join(", "))
            } else {
                format!("did you mean {}?", near.join(", "))
            };
            return Err(arg_err(
                OP,
                &k,
                format!(
                    "no cgroup hierarchy is called {k:?} on this {} layout; {hint}",
                    h.layout.name()
                ),
            ));
        };
        let path = if let Some(cg) = v.read_lock::<Cgroup>() {
            cg.0.cg
                .dirs
                .iter()
                .find(|d| d.hier == *hier)
                .map(|d| d.cgpath.clone())
                .ok_or_else(|| {
                    arg_err(
                        OP,
                        &k,
                        format!(
                            "{} has no directory in the {} hierarchy",
                            cg.show(),
                            hier.key()
                        ),
                    )
                })?
        } else {
            v.clone().into_string().map_err(|t| {
                arg_err(
                    OP,
                    &k,
                    format!("expected a cgroup path or a Cgroup, got {}", script_type(t)),
                )
            })?
        };
        out.push((k.to_string(), path));
    }
    Ok(out)
}

pub fn register(api: &mut Api) {
    api.func(
        "check_limits",
        "check_limits(op: string, arg: string, limits: map)",
        "Fail unless `limits` is a limits map cgroup() takes (memory, pids, cpu ...), checked\n\
         without creating anything; the error names op(arg.KEY). For recipe libraries that make\n\
         the cgroup later and want bad input refused before anything exists.\n\
         Example:\n    check_limits(\"box\", \"limits\", #{ memory: \"64M\", pids: 100 });",
        |op: &str, arg: &str, limits: Dynamic| check_limits(op, arg, &limits),
    );
    api.ty::<Cgroup>("Cgroup");
    api.engine
        .register_fn("to_string", |c: &mut Cgroup| c.show());
    api.engine
        .register_fn("to_debug", |c: &mut Cgroup| c.show());

    api.func(
        "cgroup_layout",
        "cgroup_layout() -> string",
        "How this machine's cgroups are mounted: \"unified\" (one v2 hierarchy at /sys/fs/cgroup),\n\
         \"hybrid\" (v1 controllers under /sys/fs/cgroup/<controller> plus a v2 tree at\n\
         /sys/fs/cgroup/unified) or \"legacy\" (v1 only). Detected by statfs, as runc does.\n\
         Example:\n    print(cgroup_layout());",
        || -> RResult<String> {
            Hierarchies::detect()
                .map(|h| h.layout.name().to_string())
                .script()
        },
    );
    let cgroup_doc = "Create the cgroup `path` (or adopt it where it exists) in every hierarchy it needs:\n\
         the v2 tree, plus on hybrid and legacy layouts the v1 hierarchy of each controller\n\
         the limits use. A relative path hangs below the shell's own cgroup (per hierarchy),\n\
         an absolute one below the root; \"..\" and empty components are rejected.\n\
         Options: limits (#{ memory: \"64M\", memory_swap: \"0\", pids: 100, cpu: \"50%\" or\n\
         \"max\", cpu_weight: 1..10000, cpuset: \"0-1\", cpuset_mems: \"0\" }, one vocabulary\n\
         for v2 and v1; sizes take k/M/G/T or \"max\"), controllers (extra ones to create it\n\
         in, e.g. [\"memory\"] for its stats), keep (leave it when the recipe ends; otherwise\n\
         a cgroup the recipe created is killed and removed then).\n\
         Example:\n    let cg = cgroup(\"box\", #{ limits: #{ memory: \"64M\", pids: 100 } });\n    print(cg.path);";
    api.func(
        "cgroup",
        "cgroup(path: string, opts: map) -> Cgroup",
        cgroup_doc,
        |path: &str, opts: Map| -> RResult<Cgroup> { make("cgroup", path, opts) },
    );
    api.func(
        "cgroup",
        "cgroup(path: string) -> Cgroup",
        "Create or adopt the cgroup `path` without limits (see cgroup(path, opts)).\n\
         Example:\n    let cg = cgroup(\"box\"); cg.add(pid()); print(cg.procs());",
        |path: &str| -> RResult<Cgroup> { make("cgroup", path, Map::new()) },
    );
    api.getter(
        "Cgroup",
        "path",
        "The cgroup path in its first hierarchy (the v2 one when there is one), e.g. \"/box\".\n\
         Example:\n    print(cgroup(\"box\").path);",
        |c: &mut Cgroup| -> String { c.0.cg.path.clone() },
    );
    api.getter(
        "Cgroup",
        "paths",
        "The cgroup path in each of its hierarchies, keyed as reset_cgroup takes them\n\
         (\"unified\", \"memory\", \"cpu,cpuacct\" ...).\n\
         Example:\n    let cg = cgroup(\"box\", #{ limits: #{ pids: 10 } }); print(cg.paths);",
        |c: &mut Cgroup| -> Map {
            c.0.cg
                .dirs
                .iter()
                .map(|d| (d.hier.key().into(), Dynamic::from(d.cgpath.clone())))
                .collect()
        },
    );
    api.getter(
        "Cgroup",
        "dirs",
        "The cgroup's directory in each of its hierarchies, keyed like `paths`.\n\
         Example:\n    print(cgroup(\"box\").dirs);",
        |c: &mut Cgroup| -> Map {
            c.0.cg
                .dirs
                .iter()
                .map(|d| {
                    (
                        d.hier.key().into(),
                        Dynamic::from(d.path.display().to_string()),
                    )
                })
                .collect()
        },
    );
    api.func(
        "set",
        "Cgroup.set(file: string, value: string|int)",
        "Write a raw control file. The hierarchy is picked by the file's controller prefix:\n\
         \"memory.high\" goes to the memory hierarchy (v1) or the v2 tree, \"cgroup.*\" to the first.\n\
         Example:\n    let cg = cgroup(\"box\", #{ limits: #{ memory: \"64M\" } });\n    cg.set(\"memory.swappiness\", 0);",
        |c: &mut Cgroup, file: &str, value: Dynamic| -> RResult<()> {
            let v = value_text("set", &value)?;
            c.0.cg.write(file, &v).script()
        },
    );
    api.func(
        "get",
        "Cgroup.get(file: string) -> string",
        "Read a raw control file (found like `set` finds it), without the final newline.\n\
         Example:\n    let cg = cgroup(\"box\", #{ limits: #{ pids: 10 } }); print(cg.get(\"pids.max\"));",
        |c: &mut Cgroup, file: &str| -> RResult<String> { c.0.cg.read(file).script() },
    );
    api.func(
        "add",
        "Cgroup.add(target: int|Process)",
        "Move a process (a pid or a Process) into the cgroup, in every hierarchy.\n\
         Example:\n    let cg = cgroup(\"box\"); cg.add(pid());",
        |c: &mut Cgroup, target: Dynamic| -> RResult<()> {
            let pid = pid_arg("add", &target)?;
            c.0.cg.add_pid(pid).script()
        },
    );
    api.func(
        "procs",
        "Cgroup.procs() -> array",
        "The pids in the cgroup (its cgroup.procs).\n\
         Example:\n    let cg = cgroup(\"box\"); print(cg.procs());",
        |c: &mut Cgroup| -> RResult<Array> {
            c.0.cg
                .procs()
                .map(|p| p.into_iter().map(|n| Dynamic::from(n as i64)).collect())
                .script()
        },
    );
    api.func(
        "freeze",
        "Cgroup.freeze()",
        "Stop every process in the cgroup (cgroup.freeze on v2, freezer.state on v1) and wait\n\
         until all are stopped.\n\
         Example:\n    let cg = cgroup(\"box\"); cg.freeze(); cg.thaw();",
        |c: &mut Cgroup| -> RResult<()> { c.0.cg.freeze().script() },
    );
    api.func(
        "thaw",
        "Cgroup.thaw()",
        "Let the processes of a frozen cgroup run again.\n\
         Example:\n    let cg = cgroup(\"box\"); cg.freeze(); cg.thaw();",
        |c: &mut Cgroup| -> RResult<()> { c.0.cg.thaw().script() },
    );
    api.func(
        "kill",
        "Cgroup.kill()",
        "SIGKILL every process in the cgroup and below (cgroup.kill on v2, signals until it is\n\
         empty on v1) and wait until it is empty. Refuses when the shell itself is inside.\n\
         Example:\n    let cg = cgroup(\"box\"); cg.kill(); print(cg.procs());",
        |c: &mut Cgroup| -> RResult<()> { c.0.cg.kill().script() },
    );
    api.func(
        "stats",
        "Cgroup.stats() -> map",
        "Counters: memory_current and memory_peak (bytes), oom_kills, pids_current, cpu_usec.\n\
         A key is missing when no hierarchy of the cgroup has its file (on v1, create the\n\
         cgroup with limits or controllers: [\"memory\", \"pids\", \"cpuacct\"]).\n\
         Example:\n    let cg = cgroup(\"box\", #{ limits: #{ memory: \"64M\" } }); print(cg.stats().oom_kills);",
        |c: &mut Cgroup| -> RResult<Map> { c.0.cg.stats().map(|s| stats_map(&s)).script() },
    );
    api.func(
        "remove",
        "Cgroup.remove()",
        "Kill every member and remove the cgroup (child cgroups first) in every hierarchy,\n\
         also one it adopted. If the shell is inside, it moves back where it was first.\n\
         Example:\n    let cg = cgroup(\"box\"); cg.remove();",
        |c: &mut Cgroup| -> RResult<()> {
            // On failure it stays owned: the end of the recipe tries again.
            c.0.cg.remove().script()?;
            c.disown();
            Ok(())
        },
    );
    api.func(
        "keep",
        "Cgroup.keep()",
        "Leave the cgroup in place when the recipe ends.\n\
         Example:\n    let cg = cgroup(\"/ctrsh/box\"); cg.keep();",
        |c: &mut Cgroup| c.disown(),
    );
    api.func(
        "delegate",
        "Cgroup.delegate(uid: int, gid: int)",
        "Hand the cgroup to a user so a rootless container can manage its own subtree: chown\n\
         the directory, cgroup.procs, cgroup.subtree_control, cgroup.threads and the files\n\
         /sys/kernel/cgroup/delegate lists (v2); the directory, cgroup.procs and tasks (v1).\n\
         Example:\n    let cg = cgroup(\"box\"); cg.delegate(100000, 100000);",
        |c: &mut Cgroup, uid: i64, gid: i64| -> RResult<()> {
            let uid = int_arg::<u32>("delegate", "uid", uid)?;
            let gid = int_arg::<u32>("delegate", "gid", gid)?;
            c.0.cg.delegate(uid, gid).script()
        },
    );
    api.func(
        "reset_cgroup",
        "reset_cgroup(cgroups: map)",
        "ctrtool's reset_cgroup: move the shell itself into a whole set of cgroups at once, one\n\
         per hierarchy: keys are hierarchy names (\"memory\", \"pids\", \"cpu\", \"systemd\",\n\
         \"unified\" for the v2 tree ...), values cgroup paths (absolute from the hierarchy's\n\
         root, \"/\" for the root itself; relative below the current one) or Cgroup values.\n\
         Every target is checked before the first move; a failed move moves the shell back.\n\
         Children it starts afterwards inherit the cgroups.\n\
         Example:\n    let cg = cgroup(\"box\", #{ limits: #{ pids: 100 } });\n    reset_cgroup(cg.paths);",
        |m: Map| -> RResult<()> {
            let h = Hierarchies::detect().script()?;
            let targets = reset_targets(&h, m)?;
            reset::reset(&h, &targets).script()
        },
    );
    api.func(
        "reset_cgroup",
        "reset_cgroup(path: string)",
        "Move the shell into cgroup `path` in every mounted hierarchy at once (ctrtool's\n\
         reset_cgroup with -p path and every controller).\n\
         Example:\n    fork(|| { reset_cgroup(\"/\"); exec([\"cat\", \"/proc/self/cgroup\"]) });",
        |path: &str| -> RResult<()> {
            let h = Hierarchies::detect().script()?;
            let targets: Vec<(String, String)> =
                h.list.iter().map(|x| (x.key(), path.to_string())).collect();
            reset::reset(&h, &targets).script()
        },
    );
}
