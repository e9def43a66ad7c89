//! `rootfs(spec)` (ctrtool's container-rootfs-mount as a value), its entry constructors, and
//! `mount_seq(ops)` (ctrtool's mount_seq as data, with rollback).
//!
//! Design choice: entries and mount_seq operations are plain maps with an `op` key
//! (`#{ op: "dir", path: "/tmp", mode: 0o1777 }`). The constructors `dir`, `file`,
//! `symlink`, `ro_bind`, `dev_bind` and `bind_entry` only build such maps; nothing happens
//! until `rootfs(...)` is built (by spawn, `.build(dir)` or `.enter()`) or `mount_seq` runs.
//! `bind(src, dst, opts)` stays the immediate mount; its entry form is `bind_entry`.

use std::os::fd::{AsFd, OwnedFd};
use std::path::Path;

use rhai::{Array, Dynamic, EvalAltResult, Map};

use super::api::Api;
use super::cleanup::{self, OwnId};
use super::error::{a_type, arg_err, sys_err, type_of, IntoScript, RResult};
use super::fs::{
    do_bind, do_mount, do_tmpfs, host_path, mounted_at, own_mount, tmpfs_opts, umount_quiet,
    BIND_KEYS, MOUNT_KEYS, TMPFS_KEYS,
};
use super::opts::{size_of, Opts};
use crate::sys::mount::{self, Attrs};
use crate::sys::ns::NsKind;
use crate::sys::rootfs::{self as sr, Bind, Entry, FsRoot};
use crate::sys::safepath;

/// A root filesystem plan (`rootfs(spec)`): data until it is built.
#[derive(Clone)]
pub struct Rootfs {
    pub plan: sr::Rootfs,
}

impl Rootfs {
    fn show(&self) -> String {
        format!("Rootfs({})", self.plan.describe())
    }
}

fn entry(op: &str, pairs: Vec<(&str, Dynamic)>) -> Map {
    let mut m = Map::new();
    m.insert("op".into(), op.into());
    for (k, v) in pairs {
        m.insert(k.into(), v);
    }
    m
}

const ENTRY_BIND_KEYS: &[&str] = &[
    "op",
    "src",
    "dst",
    "ro",
    "recursive",
    "idmap",
    "nosuid",
    "nodev",
    "noexec",
    "dev",
    "optional",
    "may_fail",
];

/// Translate one entry map into a plan entry.
fn parse_entry(op: &str, v: &Dynamic) -> RResult<Entry> {
    let m = v.read_lock::<Map>().map(|m| m.clone()).ok_or_else(|| {
        arg_err(
            op,
            "entries",
            format!(
                "expected entry maps (from dir(), file(), ro_bind() ...), got {}",
                if v.is_string() {
                    // The likely slip: bind() where bind_entry() was meant.
                    "a string: bind() mounts at once and returns its target; the entry is \
                     bind_entry(src, dst)"
                } else {
                    type_of(v)
                }
            ),
        )
    })?;
    let kind = m
        .get("op")
        .and_then(|k| k.clone().into_string().ok())
        .ok_or_else(|| {
            arg_err(
                op,
                "entries",
                "an entry map needs an \"op\" key: dir, file, symlink, bind, tmpfs",
            )
        })?;
    Ok(match kind.as_str() {
        "dir" | "mkdir" => {
            let o = Opts::new(op, m, &["op", "path", "mode", "may_fail"])?;
            Entry::Dir {
                path: entry_path(&o, "path")?,
                mode: o.mode("mode")?.unwrap_or(0o755),
            }
        }
        "file" => {
            let o = Opts::new(op, m, &["op", "path", "content", "mode", "may_fail"])?;
            Entry::File {
                path: entry_path(&o, "path")?,
                content: o.str("content")?.unwrap_or_default().into_bytes(),
                mode: o.mode("mode")?.unwrap_or(0o644),
            }
        }
        "symlink" => {
            let o = Opts::new(op, m, &["op", "target", "path", "may_fail"])?;
            Entry::Symlink {
                target: link_target(&o)?,
                path: entry_path(&o, "path")?,
            }
        }
        "bind" => {
            let o = Opts::new(op, m, ENTRY_BIND_KEYS)?;
            let src = o.req_str("src")?;
            mount::need_absolute(op, "src", &src).script()?;
            let dst = match o.str("dst")? {
                Some(d) => d,
                None => src.clone(),
            };
            safepath::check_inside(op, "dst", &dst).script()?;
            let dev = o.bool("dev", false)?;
            let idmap = match o.get("idmap") {
                None => None,
                Some(v) => Some(super::ns::ns_from(op, "idmap", v, NsKind::User)?),
            };
            Entry::Bind(Bind {
                src,
                dst,
                recursive: o.bool("recursive", true)?,
                attrs: Attrs {
                    ro: o.bool("ro", false)?,
                    nosuid: o.bool("nosuid", true)?,
                    nodev: o.bool("nodev", !dev)?,
                    noexec: o.bool("noexec", false)?,
                },
                optional: o.bool("optional", false)?,
                idmap,
            })
        }
        "tmpfs" => {
            let o = Opts::new(
                op,
                m,
                &[
                    "op", "path", "size", "mode", "uid", "gid", "ro", "nosuid", "nodev", "noexec",
                    "may_fail",
                ],
            )?;
            Entry::Tmpfs {
                path: entry_path(&o, "path")?,
                opts: tmpfs_opts(&o)?,
            }
        }
        other => {
            let known: Vec<String> = ["dir", "file", "symlink", "bind", "tmpfs"]
                .iter()
                .map(|s| s.to_string())
                .collect();
            let near = super::report::nearest(other, &known, 2);
            return Err(arg_err(
                op,
                "entries",
                format!(
                    "unknown entry op {other:?}{}",
                    if near.is_empty() {
                        String::new()
                    } else {
                        format!("; did you mean {}?", near.join(", "))
                    }
                ),
            ));
        }
    })
}

/// A symlink's target: any string but the empty one (symlink(2) refuses it with ENOENT).
fn link_target(o: &Opts) -> RResult<String> {
    let t = o.req_str("target")?;
    if t.is_empty() {
        return Err(arg_err(o.op, "target", "an empty symlink target"));
    }
    Ok(t)
}

/// `e`, an error about the entry `item` at index `i` of `rootfs`'s entries, as one that
/// says which entry it is: `rootfs(entries[2].mode): dir /a: -1 is not a file mode`.
fn in_entry(e: Box<EvalAltResult>, i: usize, item: &Dynamic) -> Box<EvalAltResult> {
    let EvalAltResult::ErrorRuntime(v, pos) = *e else {
        return e;
    };
    let Some(mut m) = v.read_lock::<Map>().map(|m| m.clone()) else {
        return EvalAltResult::ErrorRuntime(v, pos).into();
    };
    let text = |m: &Map, k: &str| m.get(k).filter(|x| x.is_string()).map(|x| x.to_string());
    // "dir /a", "bind /usr": the entry's op and the path it makes.
    let what = item
        .read_lock::<Map>()
        .map(|em| {
            let s = |k: &str| text(&em, k);
            [s("op"), s("path").or_else(|| s("dst")).or_else(|| s("src"))]
                .into_iter()
                .flatten()
                .collect::<Vec<_>>()
                .join(" ")
        })
        .unwrap_or_default();
    let at = format!("entries[{i}]");
    let ours = text(&m, "kind").as_deref() == Some("invalid_argument")
        && text(&m, "op").as_deref() == Some("rootfs");
    if ours {
        // An argument error of the entry itself: rebuilt as rootfs(entries[i].KEY): ...
        let name = match text(&m, "name") {
            Some(n) if n != "entries" => format!("{at}.{n}"),
            _ => at,
        };
        let detail = text(&m, "detail").unwrap_or_default();
        let detail = if what.is_empty() {
            detail
        } else {
            format!("{what}: {detail}")
        };
        let objs: Vec<String> = [text(&m, "path"), Some(name.clone())]
            .into_iter()
            .flatten()
            .collect();
        m.insert(
            "message".into(),
            format!("rootfs({}): {detail}", objs.join(", ")).into(),
        );
        m.insert("name".into(), name.into());
        m.insert("detail".into(), detail.into());
    } else {
        let msg = text(&m, "message").unwrap_or_default();
        let what = if what.is_empty() {
            String::new()
        } else {
            format!(" ({what})")
        };
        m.insert(
            "message".into(),
            format!("rootfs({at}){what}: {msg}").into(),
        );
    }
    EvalAltResult::ErrorRuntime(m.into(), pos).into()
}

fn entry_path(o: &Opts, key: &str) -> RResult<String> {
    let p = o.req_str(key)?;
    if p.is_empty() {
        return Err(arg_err(o.op, key, "an empty path"));
    }
    safepath::check_inside(o.op, key, &p).script()?;
    Ok(p)
}

const ROOTFS_KEYS: &[&str] = &[
    "entries", "size", "mode", "tmp", "run_dirs", "proc", "sysfs", "devpts", "mqueue", "dev",
    "fsroot", "readonly",
];

/// Parse `rootfs(spec)`.
pub fn parse_rootfs(spec: Map) -> RResult<Rootfs> {
    let op = "rootfs";
    let o = Opts::new(op, spec, ROOTFS_KEYS)?;
    let mut plan = sr::Rootfs::default();
    if let Some(s) = o.get("size") {
        plan.size = Some(size_of(op, "size", s)?);
    }
    plan.mode = o.mode("mode")?.unwrap_or(0o755);
    plan.tmp = o.bool("tmp", false)?;
    plan.proc = o.bool("proc", false)?;
    plan.sysfs = o.bool("sysfs", false)?;
    plan.devpts = o.bool("devpts", false)?;
    plan.mqueue = o.bool("mqueue", false)?;
    plan.dev = o.bool("dev", false)?;
    plan.readonly = o.bool("readonly", false)?;
    plan.run_dirs = match o.get("run_dirs") {
        None => Vec::new(),
        Some(v) if v.is_bool() => {
            if v.as_bool().unwrap_or(false) {
                vec!["/run".into(), "/run/lock".into()]
            } else {
                Vec::new()
            }
        }
        Some(_) => {
            let dirs = o.strs("run_dirs")?;
            for d in &dirs {
                safepath::check_inside(op, "run_dirs", d).script()?;
            }
            dirs
        }
    };
    if let Some(e) = o.get("entries") {
        let arr = e.read_lock::<Array>().map(|a| a.clone()).ok_or_else(|| {
            arg_err(
                op,
                "entries",
                format!("expected an array of entries, got {}", type_of(e)),
            )
        })?;
        for (i, item) in arr.iter().enumerate() {
            plan.entries
                .push(parse_entry(op, item).map_err(|e| in_entry(e, i, item))?);
        }
    }
    if let Some(f) = o.get("fsroot") {
        let m = f.read_lock::<Map>().map(|m| m.clone()).ok_or_else(|| {
            arg_err(
                op,
                "fsroot",
                "expected #{ ro: dir, rw: dir, rw_dirs: [...], links: [...] }",
            )
        })?;
        let fo = Opts::new("rootfs.fsroot", m, &["ro", "rw", "rw_dirs", "links"])?;
        let fr = FsRoot {
            ro: fo.str("ro")?,
            rw: fo.str("rw")?,
            rw_dirs: fo.strs("rw_dirs")?,
            links: fo.strs("links")?,
        };
        if fr.ro.is_none() && fr.rw.is_none() {
            return Err(arg_err(
                op,
                "fsroot",
                "needs a read-only source (ro), a read-write one (rw), or both",
            ));
        }
        for p in [&fr.ro, &fr.rw].into_iter().flatten() {
            mount::need_absolute(op, "fsroot", p).script()?;
            mount::open_source(op, "fsroot", p).script()?;
        }
        plan.fsroot = Some(fr);
    }
    plan.validate().script()?;
    Ok(Rootfs { plan })
}

/// What `spawn(#{ rootfs: ... })` may be given, for the launcher.
pub enum RootArg {
    /// A plan (`rootfs(...)` value, or a spec map): build it in the child with
    /// `sys::rootfs::enter(&plan)` (or `build` + `pivot_into`).
    Plan(sr::Rootfs),
    /// An existing directory: `sys::mount::pivot_into(dir, mount_proc)` in the child.
    Dir(String),
}

/// Read the launcher's `rootfs` key: a Rootfs value, a spec map, or an absolute directory.
pub fn rootfs_arg(op: &str, v: &Dynamic) -> RResult<RootArg> {
    if let Some(r) = v.read_lock::<Rootfs>() {
        return Ok(RootArg::Plan(r.plan.clone()));
    }
    if let Some(m) = v.read_lock::<Map>() {
        return parse_rootfs(m.clone()).map(|r| RootArg::Plan(r.plan));
    }
    if let Ok(dir) = v.clone().into_string() {
        mount::need_absolute(op, "rootfs", &dir).script()?;
        mount::open_source(op, "rootfs", &dir).script()?;
        return Ok(RootArg::Dir(dir));
    }
    Err(arg_err(
        op,
        "rootfs",
        format!(
            "expected a directory, a rootfs(...) value or its spec map, got {}",
            type_of(v)
        ),
    ))
}

pub fn register(api: &mut Api) {
    api.ty::<Rootfs>("Rootfs");
    api.engine
        .register_fn("to_string", |r: &mut Rootfs| r.show());
    api.engine
        .register_fn("to_debug", |r: &mut Rootfs| r.show());
    api.func(
        "rootfs",
        "rootfs(spec: map) -> Rootfs",
        "A container root as data (ctrtool's container-rootfs-mount): a tmpfs built from scratch.\n\
         Keys: entries (array of dir(), file(), symlink(), ro_bind(), dev_bind(), bind_entry(),\n\
         or #{ op: \"tmpfs\", path, size } maps, made in order), size and mode of the root tmpfs,\n\
         tmp (a world-writable sticky /tmp), run_dirs (true for /run and /run/lock, or a list),\n\
         proc, sysfs, devpts (new instance, ptmxmode 0666, /dev/ptmx link), mqueue, dev (a\n\
         minimal /dev: null zero full random urandom tty bound from the host, shm, pts, fd\n\
         links), fsroot (#{ ro: dir, rw: dir, rw_dirs: [\"var\"], links: [...] }: the sources\n\
         are bound at /_fsroot_ro (read-only) and /_fsroot_rw and every top-level name (or\n\
         `links`) becomes a symlink into the source that has it (the read-only one first),\n\
         rw_dirs into _fsroot_rw, where each is made (0755) if missing; links and rw_dirs are\n\
         plain top-level names like \"var\", a link must be in a source and not be one the\n\
         rootfs makes itself (proc, tmp ...), and rw_dirs need rw), readonly\n\
         (remount the root read-only when built). Every path is resolved inside the new root.\n\
         Nothing happens until spawn(#{ rootfs }), .build(dir) or .enter().\n\
         Example:\n    let r = rootfs(#{ dev: true, proc: true, tmp: true,\n                      entries: [ro_bind(\"/usr\"), symlink(\"usr/bin\", \"/bin\"),\n                                file(\"/etc/hostname\", \"box\\n\", 0o644)] });",
        |spec: Map| -> RResult<Rootfs> { parse_rootfs(spec) },
    );
    api.func(
        "build",
        "Rootfs.build(dir: string)",
        "Build the root on the existing directory `dir` now (in the shell's mount namespace: make\n\
         it private first). The root is detached when the recipe ends.\n\
         Example:\n    unshare([\"mnt\"]); propagation(\"/\", \"private\", #{ recursive: true });\n    rootfs(#{ tmp: true }).build(\"/mnt\"); print(list_dir(\"/mnt\"));",
        |r: &mut Rootfs, dir: &str| -> RResult<()> {
            sr::build(&r.plan, dir).script()?;
            own_mount(false, "rootfs", mounted_at(dir, None));
            Ok(())
        },
    );
    api.func(
        "build",
        "Rootfs.build(dir: string, opts: map)",
        "Build the root on `dir` now; `keep: true` leaves it mounted when the recipe ends.\n\
         Example:\n    unshare([\"mnt\"]); propagation(\"/\", \"private\", #{ recursive: true });\n    rootfs(#{ tmp: true }).build(\"/mnt\", #{ keep: true });",
        |r: &mut Rootfs, dir: &str, opts: Map| -> RResult<()> {
            let o = Opts::new("build", opts, &["keep"])?;
            let keep = o.bool("keep", false)?;
            sr::build(&r.plan, dir).script()?;
            own_mount(keep, "rootfs", mounted_at(dir, None));
            Ok(())
        },
    );
    api.func(
        "enter",
        "Rootfs.enter()",
        "Move the shell itself into the root: make every mount private, build it on /tmp (bind\n\
         sources are cloned first, so nothing is hidden) and pivot into it. Needs a mount\n\
         namespace of the shell's own (unshare([\"mnt\"])): refused while it shares its parent's.\n\
         Example:\n    unshare([\"mnt\"]); rootfs(#{ proc: true, tmp: true }).enter(); print(list_dir(\"/\"));",
        |r: &mut Rootfs| -> RResult<()> {
            crate::sys::ns::require_own_mnt_ns("enter").script()?;
            sr::enter(&r.plan).script()
        },
    );
    api.func(
        "enter_rootfs",
        "enter_rootfs(root: Rootfs|map|string, mount_proc: bool)",
        "Move the shell into a root the way spawn(#{ rootfs }) moves a container: a rootfs(...)\n\
         value or its spec map is built and pivoted into (as .enter()); a directory is pivoted\n\
         into directly. `mount_proc` mounts a new /proc afterwards (unless the plan has one).\n\
         Refused while the shell shares its parent's mount namespace.\n\
         Example:\n    unshare([\"mnt\"]); propagation(\"/\", \"private\", #{ recursive: true });\n    enter_rootfs(#{ tmp: true }, true); print(list_dir(\"/\"));",
        |root: Dynamic, mount_proc: bool| -> RResult<()> {
            crate::sys::ns::require_own_mnt_ns("enter_rootfs").script()?;
            match rootfs_arg("enter_rootfs", &root)? {
                RootArg::Plan(plan) => {
                    sr::enter(&plan).script()?;
                    if mount_proc && !plan.proc {
                        let root = safepath::open_dir(Path::new("/")).script()?;
                        safepath::mkdir_all(root.as_fd(), "proc", 0o555).script()?;
                        let flags = libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC;
                        mount::mount(Some("proc"), mount::Place::Host("/proc"), Some("proc"), flags, None).script()?;
                    }
                    Ok(())
                }
                RootArg::Dir(dir) => mount::pivot_into(&dir, mount_proc).script(),
            }
        },
    );
    api.func("dir", "dir(path: string, mode: int) -> map", "A rootfs entry / mount_seq op: a directory (and missing parents) with `mode`.\nExample:\n    rootfs(#{ entries: [dir(\"/tmp\", 0o1777)] });", |path: &str, mode: i64| -> Map {
        entry("dir", vec![("path", path.into()), ("mode", mode.into())])
    });
    api.func("dir", "dir(path: string) -> map", "A rootfs entry / mount_seq op: a directory with mode 0o755.\nExample:\n    rootfs(#{ entries: [dir(\"/home\")] });", |path: &str| -> Map {
        entry("dir", vec![("path", path.into())])
    });
    api.func("file", "file(path: string, content: string, mode: int) -> map", "A rootfs entry / mount_seq op: a file with `content` and `mode`.\nExample:\n    rootfs(#{ entries: [file(\"/etc/hostname\", \"box\\n\", 0o644)] });", |path: &str, content: &str, mode: i64| -> Map {
        entry("file", vec![("path", path.into()), ("content", content.into()), ("mode", mode.into())])
    });
    api.func("file", "file(path: string, content: string) -> map", "A rootfs entry / mount_seq op: a file with `content`, mode 0o644.\nExample:\n    rootfs(#{ entries: [file(\"/etc/hostname\", \"box\\n\")] });", |path: &str, content: &str| -> Map {
        entry("file", vec![("path", path.into()), ("content", content.into())])
    });
    api.func("symlink", "symlink(target: string, path: string) -> map", "A rootfs entry / mount_seq op: a symlink at `path` pointing to `target` (stored as given).\nExample:\n    rootfs(#{ entries: [ro_bind(\"/usr\"), symlink(\"usr/bin\", \"/bin\")] });", |target: &str, path: &str| -> Map {
        entry("symlink", vec![("target", target.into()), ("path", path.into())])
    });
    let rb = |src: &str, dst: &str, ro: bool, dev: bool| -> Map {
        let mut pairs = vec![("src", Dynamic::from(src.to_string())), ("dst", dst.into())];
        if ro {
            pairs.push(("ro", true.into()));
        }
        if dev {
            pairs.push(("dev", true.into()));
        }
        entry("bind", pairs)
    };
    api.func("ro_bind", "ro_bind(src: string) -> map", "A rootfs entry: bind host `src` read-only (every submount too) at the same path.\nExample:\n    rootfs(#{ entries: [ro_bind(\"/usr\")] });", move |src: &str| -> Map { rb(src, src, true, false) });
    api.func("ro_bind", "ro_bind(src: string, dst: string) -> map", "A rootfs entry: bind host `src` read-only (every submount too) at `dst` in the root.\nExample:\n    rootfs(#{ entries: [ro_bind(\"/etc/resolv.conf\", \"/etc/resolv.conf\")] });", move |src: &str, dst: &str| -> Map {
        rb(src, dst, true, false)
    });
    api.func("dev_bind", "dev_bind(src: string) -> map", "A rootfs entry: bind host `src` with device nodes usable (no nodev), e.g. /dev/fuse.\nExample:\n    rootfs(#{ dev: true, entries: [dev_bind(\"/dev/fuse\")] });", move |src: &str| -> Map { rb(src, src, false, true) });
    api.func("dev_bind", "dev_bind(src: string, dst: string) -> map", "A rootfs entry: bind host `src` at `dst` with device nodes usable.\nExample:\n    rootfs(#{ entries: [dev_bind(\"/dev/kvm\", \"/dev/kvm\")] });", move |src: &str, dst: &str| -> Map {
        rb(src, dst, false, true)
    });
    api.func("bind_entry", "bind_entry(src: string, dst: string) -> map", "A rootfs entry: bind host `src` read-write at `dst` (nosuid, nodev).\nExample:\n    rootfs(#{ entries: [bind_entry(\"/srv/data\", \"/data\")] });", move |src: &str, dst: &str| -> Map {
        rb(src, dst, false, false)
    });
    api.func(
        "bind_entry",
        "bind_entry(src: string, dst: string, opts: map) -> map",
        "A rootfs entry / mount_seq op: bind host `src` at `dst` with options ro, recursive, idmap,\n\
         nosuid, nodev, noexec, dev, optional (skip when src is missing).\n\
         Example:\n    rootfs(#{ entries: [bind_entry(\"/srv/data\", \"/data\", #{ ro: true, optional: true })] });",
        |src: &str, dst: &str, opts: Map| -> RResult<Map> {
            let mut m = entry("bind", vec![("src", src.into()), ("dst", dst.into())]);
            for (k, v) in opts {
                m.insert(k, v);
            }
            parse_entry("bind_entry", &Dynamic::from(m.clone()))?;
            Ok(m)
        },
    );
    api.func(
        "mount_seq",
        "mount_seq(ops: array, opts: map) -> array",
        "ctrtool's mount_seq as data: run `ops` in order, each a map with `op`: \"mount\" (as mount()),\n\
         \"bind\" (src, dst, ro ...), \"tmpfs\" (path, size, mode ...), \"umount\" (path, detach),\n\
         \"dir\"/\"mkdir\" (path, mode), \"symlink\" (target, path), \"file\" (path, content, mode),\n\
         \"chdir\" (path); dir(), file(), symlink(), bind_entry() build such maps. An op with\n\
         `may_fail: true` may fail without stopping the sequence. Returns one result map per op\n\
         (#{ op, ok, path } plus `error` when it failed). When a required op fails, everything\n\
         done so far is undone in reverse order (mounts detached, what was created removed, a file\n\
         that was overwritten put back) and the error is raised. A \"file\" op refuses to write\n\
         over anything but a regular file (a device node or FIFO is never opened). Options: root (resolve\n\
         every path inside it), keep (mounts stay after the recipe ends).\n\
         Example:\n    unshare([\"mnt\"]); propagation(\"/\", \"private\", #{ recursive: true });\n    mount_seq([#{ op: \"tmpfs\", path: \"/mnt\", size: \"1m\" }, dir(\"/mnt/a\"),\n               #{ op: \"mount\", source: \"proc\", target: \"/mnt/a\", fstype: \"proc\", may_fail: true }], #{});",
        |ops: Array, opts: Map| -> RResult<Array> {
            let o = Opts::new("mount_seq", opts, &["root", "keep"])?;
            mount_seq(&ops, o.str("root")?, o.bool("keep", false)?)
        },
    );
    api.func(
        "mount_seq",
        "mount_seq(ops: array) -> array",
        "mount_seq(ops, #{}) — see there.\nExample:\n    unshare([\"mnt\"]); propagation(\"/\", \"private\", #{ recursive: true });\n    let d = mkdtemp(\"seq\");   // removed at the end, after the tmpfs on it is detached\n    mount_seq([#{ op: \"tmpfs\", path: d }, dir(`${d}/x`)]);",
        |ops: Array| -> RResult<Array> { mount_seq(&ops, None, false) },
    );
}

/// How to undo one step of mount_seq.
enum Undo {
    Umount(String, Option<OwnId>),
    Remove(Vec<String>, bool),
    Chdir(OwnedFd),
    /// Put back a file an op overwrote: path, content, mode.
    Restore(String, Vec<u8>, u32),
    Nothing,
}

fn undo(u: Undo, root: &OwnedFd) -> Result<(), crate::sys::SysError> {
    match u {
        Undo::Umount(p, id) => {
            if let Some(id) = id {
                cleanup::disown(id);
            }
            umount_quiet(&p)
        }
        Undo::Remove(paths, dir) => {
            let mut first = Ok(());
            for p in paths {
                if let Err(e) = safepath::remove(root.as_fd(), &p, dir) {
                    if first.is_ok() {
                        first = Err(e);
                    }
                }
            }
            first
        }
        Undo::Chdir(fd) => rustix::process::fchdir(&fd).map_err(|e| safepath::rx("chdir back", e)),
        Undo::Restore(p, content, mode) => safepath::write_file(root.as_fd(), &p, &content, mode),
        Undo::Nothing => Ok(()),
    }
}

/// The missing prefixes of `path` inside `root`, deepest first.
fn missing_prefixes(root: &OwnedFd, path: &str) -> Vec<String> {
    let comps: Vec<&str> = path
        .split('/')
        .filter(|c| !c.is_empty() && *c != ".")
        .collect();
    let mut out = Vec::new();
    for i in 0..comps.len() {
        let p = comps[..=i].join("/");
        if !safepath::exists(root.as_fd(), &p) {
            out.push(p);
        }
    }
    out.reverse();
    out
}

fn run_op(m: &Map, root: Option<&str>, rootfd: &OwnedFd, keep: bool) -> RResult<(String, Undo)> {
    let op = "mount_seq";
    let kind = m.get("op").and_then(|k| k.clone().into_string().ok()).ok_or_else(|| arg_err(op, "op", "each op is a map with an \"op\" key (mount, bind, tmpfs, umount, dir, symlink, file, chdir)"))?;
    let mut map = m.clone();
    map.remove("op");
    map.remove("may_fail");
    if let Some(r) = root {
        map.insert("root".into(), r.into());
    }
    let own = |t: &str, what: &str| -> Option<OwnId> { own_mount(keep, what, t.to_string()) };
    let rel_path = |o: &Opts, key: &str| -> RResult<String> {
        let p = o.req_str(key)?;
        if root.is_none() {
            mount::need_absolute(op, key, &p).script()?;
        }
        safepath::check_inside(op, key, &p).script()?;
        Ok(p)
    };
    match kind.as_str() {
        "mount" => {
            let o = Opts::new(op, map, MOUNT_KEYS)?;
            let t = do_mount(&o)?;
            let id = own(&t, "mount");
            Ok((t.clone(), Undo::Umount(t, id)))
        }
        "bind" => {
            let mut keys: Vec<&str> = BIND_KEYS.to_vec();
            keys.extend(["src", "dst"]);
            let o = Opts::new(op, map, &keys)?;
            let (src, dst) = (o.req_str("src")?, o.req_str("dst")?);
            let t = do_bind(op, &src, &dst, &o)?;
            let id = own(&t, "bind");
            Ok((t.clone(), Undo::Umount(t, id)))
        }
        "tmpfs" => {
            let mut keys: Vec<&str> = TMPFS_KEYS.to_vec();
            keys.push("path");
            let o = Opts::new(op, map, &keys)?;
            let p = o.req_str("path")?;
            let t = do_tmpfs(&p, &o)?;
            let id = own(&t, "tmpfs");
            Ok((t.clone(), Undo::Umount(t, id)))
        }
        "umount" => {
            let o = Opts::new(op, map, &["path", "detach", "root"])?;
            let p = rel_path(&o, "path")?;
            let t = host_path(&p, root);
            mount::umount(&t, o.bool("detach", false)?).script()?;
            Ok((t, Undo::Nothing))
        }
        "dir" | "mkdir" => {
            let o = Opts::new(op, map, &["path", "mode", "root"])?;
            let p = rel_path(&o, "path")?;
            let created = missing_prefixes(rootfd, &p);
            safepath::mkdir_all(rootfd.as_fd(), &p, o.mode("mode")?.unwrap_or(0o755)).script()?;
            Ok((host_path(&p, root), Undo::Remove(created, true)))
        }
        "symlink" => {
            let o = Opts::new(op, map, &["target", "path", "root"])?;
            let p = rel_path(&o, "path")?;
            let target = link_target(&o)?;
            let created = missing_prefixes(rootfd, &p);
            safepath::symlink(rootfd.as_fd(), &target, &p).script()?;
            Ok((host_path(&p, root), Undo::Remove(created, false)))
        }
        "file" => {
            let o = Opts::new(op, map, &["path", "content", "mode", "root"])?;
            let p = rel_path(&o, "path")?;
            let created = missing_prefixes(rootfd, &p);
            // A file that exists is saved first, so a rollback can put it back.
            let saved = safepath::save_file(rootfd.as_fd(), &p, SAVE_MAX).script()?;
            safepath::write_file(
                rootfd.as_fd(),
                &p,
                o.str("content")?.unwrap_or_default().as_bytes(),
                o.mode("mode")?.unwrap_or(0o644),
            )
            .script()?;
            // Undo removes the file (if it is new) and then any directories made for it.
            let undo = match created.split_first() {
                Some((f, dirs))
                    if *f
                        == p.split('/')
                            .filter(|c| !c.is_empty())
                            .collect::<Vec<_>>()
                            .join("/") =>
                {
                    let mut all = vec![f.clone()];
                    all.extend(dirs.iter().cloned());
                    Undo::Remove(all, false)
                }
                _ => match saved {
                    Some((content, mode)) => Undo::Restore(p.clone(), content, mode),
                    None => Undo::Nothing,
                },
            };
            Ok((host_path(&p, root), undo))
        }
        "chdir" => {
            let o = Opts::new(op, map, &["path", "root"])?;
            let p = rel_path(&o, "path")?;
            let back = safepath::open_dir(Path::new(".")).script()?;
            let d = safepath::open_in(
                rootfd.as_fd(),
                &p,
                rustix::fs::OFlags::PATH | rustix::fs::OFlags::DIRECTORY,
            )
            .script()?;
            rustix::process::fchdir(&d).map_err(|e| sys_err(safepath::rx("chdir", e).path(&p)))?;
            Ok((host_path(&p, root), Undo::Chdir(back)))
        }
        other => {
            let known: Vec<String> = [
                "mount", "bind", "tmpfs", "umount", "dir", "mkdir", "symlink", "file", "chdir",
            ]
            .iter()
            .map(|s| s.to_string())
            .collect();
            let near = super::report::nearest(other, &known, 2);
            Err(arg_err(
                op,
                "op",
                format!(
                    "unknown op {other:?}{}",
                    if near.is_empty() {
                        String::new()
                    } else {
                        format!("; did you mean {}?", near.join(", "))
                    }
                ),
            ))
        }
    }
}

/// The largest existing file a mount_seq `file` op overwrites (it is kept in memory until
/// the sequence ends, for the rollback).
const SAVE_MAX: u64 = 16 << 20;

fn mount_seq(ops: &Array, root: Option<String>, keep: bool) -> RResult<Array> {
    let rootfd = safepath::open_dir(Path::new(root.as_deref().unwrap_or("/")))
        .map_err(|e| e.name("root"))
        .script()?;
    // Check the shape of every op before doing anything.
    let mut maps = Vec::new();
    for (i, v) in ops.iter().enumerate() {
        let m = v.read_lock::<Map>().map(|m| m.clone()).ok_or_else(|| {
            arg_err(
                "mount_seq",
                "ops",
                format!("op {} is {}, not a map", i + 1, a_type(v.type_name())),
            )
        })?;
        let may_fail = m
            .get("may_fail")
            .map(|v| {
                v.as_bool().map_err(|_| {
                    arg_err(
                        "mount_seq",
                        "may_fail",
                        format!("op {}: expected true or false", i + 1),
                    )
                })
            })
            .transpose()?
            .unwrap_or(false);
        maps.push((m, may_fail));
    }
    let mut done: Vec<Undo> = Vec::new();
    let mut results = Array::new();
    for (i, (m, may_fail)) in maps.iter().enumerate() {
        let kind = m.get("op").map(|k| k.to_string()).unwrap_or_default();
        let mut res = Map::new();
        res.insert("op".into(), kind.clone().into());
        match run_op(m, root.as_deref(), &rootfd, keep) {
            Ok((path, u)) => {
                res.insert("ok".into(), true.into());
                res.insert("path".into(), path.into());
                done.push(u);
            }
            Err(e) if *may_fail => {
                res.insert("ok".into(), false.into());
                res.insert("error".into(), err_value(&e));
            }
            Err(e) => {
                let n = done.len();
                let mut undo_errors = Vec::new();
                while let Some(u) = done.pop() {
                    if let Err(ue) = undo(u, &rootfd) {
                        undo_errors.push(ue.to_string());
                    }
                }
                let undone = match n {
                    0 => "nothing to undo".to_string(),
                    1 => "undid the op done before it".to_string(),
                    n => format!("undid the {n} ops done before it"),
                };
                return Err(annotate(
                    e,
                    format!(
                        "mount_seq op {} ({kind}) failed; {undone}{}",
                        i + 1,
                        if undo_errors.is_empty() {
                            String::new()
                        } else {
                            format!(" (undo failures: {})", undo_errors.join("; "))
                        }
                    ),
                ));
            }
        }
        results.push(res.into());
    }
    Ok(results)
}

/// The script value of an error (the map scripts see in `catch`).
fn err_value(e: &rhai::EvalAltResult) -> Dynamic {
    match e {
        rhai::EvalAltResult::ErrorRuntime(v, _) => v.clone(),
        other => other.to_string().into(),
    }
}

/// Add context to an error's message.
fn annotate(e: Box<rhai::EvalAltResult>, context: String) -> Box<rhai::EvalAltResult> {
    if let rhai::EvalAltResult::ErrorRuntime(v, pos) = *e {
        if let Some(mut m) = v.read_lock::<Map>().map(|m| m.clone()) {
            let msg = m.get("message").map(|x| x.to_string()).unwrap_or_default();
            m.insert("message".into(), format!("{context}: {msg}").into());
            m.insert("context".into(), context.into());
            return rhai::EvalAltResult::ErrorRuntime(m.into(), pos).into();
        }
        return rhai::EvalAltResult::ErrorRuntime(v, pos).into();
    }
    e
}
