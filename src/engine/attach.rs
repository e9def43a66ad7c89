//! `attach(target, opts)` (cntr's attach, without FUSE), and the named-container functions
//! `containers()` and `container(name)`. The Linux side is `sys::attach` and `sys::named`;
//! this file reads script values and hands the plan to the launcher.

use std::rc::Rc;

use rhai::{Array, Dynamic, Map};

use super::api::Api;
use super::error::{arg_err, script_type, sys_err, IntoScript, RResult};
use super::opts::{strs_of, Opts};
use super::process::Process;
use super::spawn::{launch_with, stdio_fds, tty_of, Prepared};
use crate::sys::attach::{self, resolve, Mode, Request, Target};
use crate::sys::{named, procfs};

const ATTACH_KEYS: &[&str] = &[
    "cmd", "tools_at", "mode", "tty", "stdin", "stdout", "stderr",
];

/// The pid a target value names: a Process, a pid, or a name (a ctrsh container, or one
/// that docker/podman/machinectl/lxc-info/ctr know).
pub fn target_pid(op: &str, v: &Dynamic) -> RResult<i32> {
    if let Some(p) = v.read_lock::<Process>() {
        return Ok(p.pid);
    }
    if let Ok(n) = v.as_int() {
        return i32::try_from(n)
            .ok()
            .filter(|p| *p > 0)
            .ok_or_else(|| arg_err(op, "target", format!("{n} is not a process id")));
    }
    match v.clone().into_string() {
        Ok(s) => resolve::resolve(op, &s).script(),
        Err(t) => Err(arg_err(
            op,
            "target",
            format!(
                "expected a Process, a pid or a container name, got {}",
                script_type(t)
            ),
        )),
    }
}

/// What attach was asked for, already checked.
pub struct AttachArgs {
    pub pid: i32,
    pub mode: Mode,
    pub cmd: Vec<String>,
    /// Give the payload a pty (decided by the caller: terminals present, or "always").
    pub tty: bool,
}

/// Open the target and build the launch: nothing is created until `launch_with`.
pub fn prepare(
    op: &str,
    a: AttachArgs,
    stdio: Vec<(i32, i32)>,
    keep: Vec<Rc<std::os::fd::OwnedFd>>,
) -> RResult<Prepared> {
    let t = Target::open(op, a.pid).script()?;
    let req = Request {
        mode: a.mode.clone(),
        cmd: a.cmd,
        term: std::env::var("TERM").ok(),
    };
    let mut plan = attach::plan(op, &t, &req).script()?;
    plan.fds = stdio;
    let what = format!(
        "attached to pid {} ({}): {}",
        t.pid,
        t.stat.comm,
        plan.argv
            .iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect::<Vec<_>>()
            .join(" ")
    );
    let mut prep = Prepared::from_plan(op, what, plan, keep);
    if a.tty {
        let root = match &a.mode {
            Mode::Tools { at } => at.clone(),
            Mode::Enter => "/".to_string(),
        };
        prep.with_tty(&root)?;
    }
    Ok(prep)
}

/// Start the attached process; it is owned by the recipe (killed at its end unless
/// waited for). Checks that the target is still the same process right before starting.
pub fn start(
    op: &str,
    a: AttachArgs,
    stdio: Vec<(i32, i32)>,
    keep: Vec<Rc<std::os::fd::OwnedFd>>,
) -> RResult<Process> {
    let prep = prepare(op, a, stdio, keep)?;
    launch_with(prep, |_| Ok(())).map(|(p, _)| p)
}

fn mode_of(o: &Opts) -> RResult<Mode> {
    let at = o.str("tools_at")?;
    match o.str("mode")?.as_deref() {
        None | Some("tools") => Ok(Mode::Tools {
            at: at.unwrap_or_else(|| attach::DEFAULT_AT.to_string()),
        }),
        Some("enter") if at.is_some() => Err(arg_err(
            o.op,
            "tools_at",
            "mode \"enter\" uses the container's own mount namespace: there is no attach path",
        )),
        Some("enter") => Ok(Mode::Enter),
        Some(m) => Err(arg_err(
            o.op,
            "mode",
            format!("{m:?}: expected \"tools\" (the host's tools, the container at tools_at) or \"enter\" (the container's own view)"),
        )),
    }
}

fn attach_fn(target: Dynamic, opts: Map) -> RResult<Process> {
    let op = "attach";
    let o = Opts::new(op, opts, ATTACH_KEYS)?;
    let cmd = match o.get("cmd") {
        None => Vec::new(),
        Some(v) => strs_of(op, "cmd", v)?,
    };
    let mode = mode_of(&o)?;
    let tty = tty_of(&o)?;
    let mut keep = Vec::new();
    let stdio = stdio_fds(&o, &mut keep)?;
    let pid = target_pid(op, &target)?;
    start(
        op,
        AttachArgs {
            pid,
            mode,
            cmd,
            tty,
        },
        stdio,
        keep,
    )
}

fn record_map(r: &named::Record, state: Option<char>) -> Map {
    let mut m = Map::new();
    m.insert("name".into(), r.name.clone().into());
    m.insert("pid".into(), (r.pid as i64).into());
    m.insert(
        "state".into(),
        match state {
            Some('T') | Some('t') => "stopped",
            Some(_) => "running",
            None => "exited",
        }
        .into(),
    );
    m.insert("cmd".into(), r.cmd.clone().into());
    m.insert("created".into(), (r.created as i64).into());
    m
}

pub fn register(api: &mut Api) {
    api.func(
        "attach",
        "attach(target: Process|int|string, opts: map) -> Process",
        "Start a process inside a running container, with the host's tools (cntr without\n\
         FUSE). `target` is a Process, a pid, a ctrsh container name, or a name that docker,\n\
         podman, machinectl, lxc-info or ctr know. The process joins the target's user, pid,\n\
         net, uts, ipc, cgroup and time namespaces and its cgroups, takes its uid, gid,\n\
         groups, capabilities, no_new_privs and environment, and gets a private mount\n\
         namespace where the host's tree stays at / and the container's root is at\n\
         `tools_at` (default /var/lib/ctrsh/attach), with the container's /etc/passwd, group,\n\
         hostname, hosts and resolv.conf bound over the host's. Inside, `ctrsh exec CMD`\n\
         runs a command of the container itself. Wait for it with `.wait()`.\n\
         Options: cmd (default: $SHELL), tools_at, mode (\"tools\" or \"enter\": all of the\n\
         target's namespaces, mount included, and its programs), tty (as spawn's), stdin,\n\
         stdout, stderr.\n\
         Example:\n    let box = spawn(#{ ns: [\"uts\", \"pid\", \"mnt\"], hostname: \"box\", cmd: [\"sleep\", \"60\"] });\n    attach(box, #{ cmd: [\"hostname\"] }).wait();",
        attach_fn,
    );
    api.func(
        "attach",
        "attach(target: Process|int|string) -> Process",
        "attach(target, #{}): the caller's shell inside the target's container.\n\
         Example:\n    exit(attach(\"web\").wait());",
        |target: Dynamic| -> RResult<Process> { attach_fn(target, Map::new()) },
    );
    api.func(
        "containers",
        "containers() -> array",
        "The named containers (spawn with `name`): maps #{ name, pid, state, cmd, created }.\n\
         State of containers that have exited is removed as they are found.\n\
         Example:\n    for c in containers() { print(`${c.name} ${c.pid} ${c.state}`); }",
        || -> Array {
            named::list()
                .into_iter()
                .filter_map(|(r, alive)| {
                    if !alive {
                        named::forget(&r);
                        return None;
                    }
                    Some(Dynamic::from(record_map(&r, r.live_state())))
                })
                .collect()
        },
    );
    api.func(
        "container",
        "container(name: string) -> Process",
        "A handle on the running container called `name` (its pid, checked against the\n\
         recorded start time, so a reused pid is never it). Not owned: it keeps running.\n\
         Example:\n    let web = container(\"web\"); web.signal(\"HUP\");",
        |name: &str| -> RResult<Process> {
            named::validate("container", name).script()?;
            let rec = named::lookup(name).ok_or_else(|| {
                sys_err(
                    crate::sys::SysError::not_found(
                        "container",
                        format!("no running container named {name:?}"),
                    )
                    .hint("containers() lists them"),
                )
            })?;
            let p = Process::open(rec.pid).script()?;
            if !procfs::same_process(rec.pid, rec.start_time) {
                return Err(arg_err("container", "name", format!("{name:?} has exited")));
            }
            // Shown by its command, as spawn and `ctrsh ps` show it (the pid may be
            // ctrsh's mini-init).
            Ok(p.described_as(rec.cmd))
        },
    );
}
