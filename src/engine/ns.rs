//! Namespace script functions and the `Ns` handle.

use std::rc::Rc;

use nix::errno::Errno;
use rhai::{Array, Dynamic, FnPtr, Map, NativeCallContext};

use super::api::Api;
use super::error::{arg_err, script_type, type_of, IntoScript, RResult};
use super::process::Process;
use crate::sys::ns::{self, NsFd, NsGuard, NsKind};

/// A namespace held open by an fd: it stays alive while the script holds the handle.
#[derive(Clone)]
pub struct Ns(pub Rc<NsFd>);

impl Ns {
    fn show(&self) -> String {
        format!("Ns({}:[{}])", self.0.kind, self.0.inode)
    }
}

/// Parse a namespace kind argument, naming `arg` on error.
pub fn kind_arg(op: &str, arg: &str, s: &str) -> RResult<NsKind> {
    NsKind::parse(s).map_err(|mut e| {
        e.op = op.to_string();
        super::error::sys_err(e.name(arg))
    })
}

/// Parse an array of namespace kinds (`["net", "uts"]`), rejecting duplicates.
pub fn kinds_arg(op: &str, arg: &str, v: &Array) -> RResult<Vec<NsKind>> {
    let mut out = Vec::new();
    for item in v {
        let s = item.clone().into_immutable_string().map_err(|t| {
            arg_err(
                op,
                arg,
                format!("namespace kinds are strings, got {}", script_type(t)),
            )
        })?;
        let k = kind_arg(op, arg, &s)?;
        if !out.contains(&k) {
            out.push(k);
        }
    }
    Ok(out)
}

/// Resolve a value that names a namespace of `kind`: an Ns handle (whose kind must match),
/// a Process, or a pid.
pub fn ns_from(op: &str, arg: &str, v: &Dynamic, kind: NsKind) -> RResult<Rc<NsFd>> {
    if let Some(n) = v.read_lock::<Ns>() {
        if n.0.kind != kind {
            return Err(arg_err(
                op,
                arg,
                format!("expected a {kind} namespace, got a {} namespace", n.0.kind),
            ));
        }
        return Ok(n.0.clone());
    }
    if let Some(p) = v.read_lock::<Process>() {
        return p.ns(kind).map(Rc::new).map_err(|e| {
            if matches!(e.errno(), Some(Errno::ENOENT) | Some(Errno::ESRCH)) && !p.alive() {
                arg_err(op, arg, format!("no process {}: it has exited", p.pid))
            } else {
                super::error::sys_err(e.detail(format!("{op}: {arg}")))
            }
        });
    }
    if let Ok(pid) = v.as_int() {
        let pid = super::error::int_arg::<i32>(op, arg, pid)?;
        if pid <= 0 {
            return Err(arg_err(op, arg, format!("{pid} is not a pid")));
        }
        return NsFd::of_pid(pid, kind).map(Rc::new).map_err(|e| {
            if e.errno() == Some(Errno::ENOENT) {
                // /proc/PID/ns/KIND is missing: the process has gone (or never was).
                arg_err(op, arg, format!("no process {pid}"))
            } else {
                super::error::sys_err(e)
            }
        });
    }
    Err(arg_err(
        op,
        arg,
        format!("expected an Ns, a Process or a pid, got {}", type_of(v)),
    ))
}

pub fn register(api: &mut Api) {
    api.ty::<Ns>("Ns");
    api.getter(
        "Ns",
        "kind",
        "The namespace kind: \"net\", \"mnt\" ...\nExample:\n    print(netns_new().kind);",
        |n: &mut Ns| -> String { n.0.kind.name().to_string() },
    );
    api.getter("Ns", "inode", "The namespace's inode, as in `ls -l /proc/PID/ns`.\nExample:\n    print(ns_of(pid(), \"net\").inode == ns().net);", |n: &mut Ns| -> i64 {
        n.0.inode as i64
    });
    api.engine.register_fn("to_string", |n: &mut Ns| n.show());
    api.engine.register_fn("to_debug", |n: &mut Ns| n.show());
    api.engine.register_fn("==", |a: Ns, b: Ns| {
        a.0.kind == b.0.kind && a.0.inode == b.0.inode
    });
    api.engine.register_fn("!=", |a: Ns, b: Ns| {
        !(a.0.kind == b.0.kind && a.0.inode == b.0.inode)
    });

    api.func(
        "ns",
        "ns() -> map",
        "The shell's current namespaces: a map from kind to inode.\n\
         Kinds: user, mnt, net, pid, uts, ipc, cgroup, time.\nExample:\n    let before = ns().net; unshare([\"net\"]); print(ns().net != before);",
        || -> Map { ns::current_inodes().into_iter().map(|(k, i)| (k.name().into(), Dynamic::from(i as i64))).collect() },
    );
    api.func(
        "ns_of",
        "ns_of(target: int|Process, kind: string) -> Ns",
        "A handle on the namespace of `kind` that a process (a pid or a Process) is in.\n\
         The handle keeps the namespace alive.\nExample:\n    let home = ns_of(pid(), \"net\");",
        |target: Dynamic, kind: &str| -> RResult<Ns> {
            let k = kind_arg("ns_of", "kind", kind)?;
            ns_from("ns_of", "target", &target, k).map(Ns)
        },
    );
    api.func(
        "ns_open",
        "ns_open(path: string, kind: string) -> Ns",
        "Open a namespace file, e.g. one `ip netns add` bind-mounted under /run/netns.\n\
         Example:\n    let n = ns_open(\"/run/netns/blue\", \"net\");",
        |path: &str, kind: &str| -> RResult<Ns> {
            if path.is_empty() {
                return Err(arg_err("ns_open", "path", "an empty path"));
            }
            let k = kind_arg("ns_open", "kind", kind)?;
            NsFd::open_path(path, k).map(|f| Ns(Rc::new(f))).script()
        },
    );
    api.func(
        "netns_new",
        "netns_new() -> Ns",
        "A new, empty network namespace held only by the returned handle: no process, no\n\
         /run/netns entry. It disappears when the last handle (and anything inside) is gone.\n\
         Example:\n    let n = netns_new(); in_ns(n, || print(links().len()));",
        || -> RResult<Ns> { ns::netns_new().map(|f| Ns(Rc::new(f))).script() },
    );
    api.func(
        "unshare",
        "unshare(kinds: array)",
        "Move the shell itself into new namespaces of the given kinds (\"user\", \"mnt\", \"net\",\n\
         \"pid\", \"uts\", \"ipc\", \"cgroup\", \"time\"). New pid and time namespaces apply to\n\
         children the shell creates afterwards. The first child is the new pid namespace's\n\
         init: once it exits, no process can be created there. While children go there, no\n\
         other pid namespace can be made either: containers want spawn's ns: [\"pid\"].\n\
         Example:\n    unshare([\"net\"]); print(links());",
        |kinds: Array| -> RResult<()> {
            let kinds = kinds_arg("unshare", "kinds", &kinds)?;
            if kinds.is_empty() {
                return Err(arg_err("unshare", "kinds", "no namespace kinds given"));
            }
            ns::unshare(&kinds).script()
        },
    );
    api.func(
        "setns",
        "setns(ns: Ns)",
        "Move the shell itself into the namespace `ns` (keep a handle on the old one to come\n\
         back: `let home = ns_of(pid(), \"net\"); ... setns(home);`).\nExample:\n    let home = ns_of(pid(), \"net\"); unshare([\"net\"]); setns(home);",
        |n: Ns| -> RResult<()> { n.0.enter().script() },
    );
    api.func(
        "in_ns",
        "in_ns(ns: Ns|array, body: fn) -> any",
        "Enter one namespace (or an array of them), run `body`, and always come back — also when\n\
         `body` fails. Returns what `body` returns. A user namespace cannot be entered this\n\
         way (the way back needs privileges it takes away): use fork(|| { setns(ns); ... }).\n\
         Example:\n    let n = netns_new();\n    in_ns(n, || { print(ns().net); });",
        |ctx: NativeCallContext, target: Dynamic, body: FnPtr| -> RResult<Dynamic> {
            let targets: Vec<Rc<NsFd>> = if let Some(list) = target.read_lock::<Array>() {
                list.iter()
                    .map(|v| {
                        v.read_lock::<Ns>().map(|n| n.0.clone()).ok_or_else(|| {
                            arg_err("in_ns", "ns", "expected Ns handles in the array")
                        })
                    })
                    .collect::<RResult<_>>()?
            } else if let Some(n) = target.read_lock::<Ns>() {
                vec![n.0.clone()]
            } else {
                return Err(arg_err(
                    "in_ns",
                    "ns",
                    format!("expected an Ns or an array of Ns, got {}", type_of(&target)),
                ));
            };
            let refs: Vec<&NsFd> = targets.iter().map(|n| n.as_ref()).collect();
            let guard = NsGuard::enter(&refs).script()?;
            let result = body.call_within_context::<Dynamic>(&ctx, ());
            let back = guard.restore().script();
            let value = result?;
            back?;
            Ok(value)
        },
    );
    api.func(
        "sethostname",
        "sethostname(name: string)",
        "Set the host name of the shell's UTS namespace (unshare([\"uts\"]) first to keep the\n\
         host's unchanged).\nExample:\n    fork(|| { unshare([\"uts\"]); sethostname(\"box\"); exec([\"hostname\"]) }).wait();",
        |name: &str| -> RResult<()> {
            if name.is_empty() || name.len() > 64 {
                return Err(arg_err("sethostname", "name", "a host name is 1 to 64 bytes"));
            }
            if name.contains('\0') {
                return Err(arg_err("sethostname", "name", "a host name cannot contain a NUL byte"));
            }
            nix::unistd::sethostname(name)
                .map_err(|e| crate::sys::SysError::os("sethostname", e).name(name))
                .script()
        },
    );
    api.func(
        "hostname",
        "hostname() -> string",
        "The host name of the shell's UTS namespace.\nExample:\n    print(hostname());",
        || -> RResult<String> {
            nix::unistd::gethostname()
                .map(|h| h.to_string_lossy().into_owned())
                .map_err(|e| crate::sys::SysError::os("gethostname", e))
                .script()
        },
    );
}
