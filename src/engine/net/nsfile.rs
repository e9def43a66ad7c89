//! socket_in and open_in (ctrtool's ns_open_file): a socket made inside another network
//! namespace, a file opened under another process's root, as `Fd` handles.

use rhai::{Dynamic, Map};
use rustix::net::SocketType;

use super::super::api::Api;
use super::super::error::{arg_err, script_type, sys_err, type_of, IntoScript, RResult};
use super::super::fd::Fd;
use super::super::opts::Opts;
use super::super::process::Process;
use super::ns_val;
use crate::sys::netaddr;
use crate::sys::nsfile::{self, Bind, Family, OpenMode, SocketSpec};
use crate::sys::SysError;
use nix::errno::Errno;

fn socket_in(target: Dynamic, opts: Map) -> RResult<Fd> {
    const OP: &str = "socket_in";
    let o = Opts::new(OP, opts, &["family", "type", "bind", "listen"])?;
    let ns = ns_val(OP, "ns", &target)?;
    let family = match o.str("family")?.as_deref().unwrap_or("inet") {
        "inet" | "ipv4" => Family::Inet,
        "inet6" | "ipv6" => Family::Inet6,
        "unix" => Family::Unix,
        other => {
            return Err(arg_err(
                OP,
                "family",
                format!("unknown family {other:?}; families are inet, inet6, unix"),
            ))
        }
    };
    let (ty, tname) = match o.str("type")?.as_deref().unwrap_or("stream") {
        "stream" | "tcp" => (SocketType::STREAM, "stream"),
        "dgram" | "udp" => (SocketType::DGRAM, "dgram"),
        "seqpacket" => (SocketType::SEQPACKET, "seqpacket"),
        other => {
            return Err(arg_err(
                OP,
                "type",
                format!("unknown socket type {other:?}; types are stream, dgram, seqpacket"),
            ))
        }
    };
    let bind = match o.str("bind")? {
        None => None,
        Some(s) if family == Family::Unix => {
            if s.is_empty() || s == "@" {
                return Err(arg_err(
                    OP,
                    "bind",
                    "a unix socket needs a path or an @abstract name",
                ));
            }
            Some(Bind::Unix(s))
        }
        Some(s) => Some(Bind::Inet(
            netaddr::sockaddr(OP, "bind", &s, family == Family::Inet6).script()?,
        )),
    };
    let listen = match o.get("listen") {
        None => None,
        Some(v) => {
            if let Ok(b) = v.as_bool() {
                b.then_some(128)
            } else {
                let n = v.as_int().map_err(|t| {
                    arg_err(
                        OP,
                        "listen",
                        format!("expected a backlog (int) or true, got {}", script_type(t)),
                    )
                })?;
                if !(0..=65535).contains(&n) {
                    return Err(arg_err(
                        OP,
                        "listen",
                        format!("{n} is not a backlog (0 to 65535)"),
                    ));
                }
                Some(n as i32)
            }
        }
    };
    if listen.is_some() && ty == SocketType::DGRAM {
        return Err(arg_err(OP, "listen", "a dgram socket cannot listen"));
    }
    if listen.is_some() && bind.is_none() && family == Family::Unix {
        return Err(arg_err(
            OP,
            "bind",
            "a listening unix socket needs an address to bind",
        ));
    }
    let spec = SocketSpec {
        family,
        ty,
        bind: bind.clone(),
        listen,
    };
    let fd = nsfile::socket_in(&ns, &spec).script()?;
    let fam = match family {
        Family::Inet => "inet",
        Family::Inet6 => "inet6",
        Family::Unix => "unix",
    };
    let at = match &bind {
        Some(Bind::Inet(sa)) => format!(" {sa}"),
        Some(Bind::Unix(p)) => format!(" {p}"),
        None => String::new(),
    };
    let l = if listen.is_some() { " listening" } else { "" };
    Ok(Fd::new(
        fd,
        format!("socket {fam} {tname}{at}{l} in net:[{}]", ns.inode),
    ))
}

fn open_in(target: Dynamic, path: &str, opts: Map) -> RResult<Fd> {
    const OP: &str = "open_in";
    let o = Opts::new(OP, opts, &["write", "create", "truncate", "append", "mode"])?;
    let how = OpenMode {
        write: o.bool("write", false)?,
        create: o.bool("create", false)?,
        truncate: o.bool("truncate", false)?,
        append: o.bool("append", false)?,
        mode: o.mode("mode")?.unwrap_or(0o644),
    };
    if (how.create || how.truncate) && !(how.write || how.append) {
        return Err(arg_err(
            OP,
            "create",
            "create and truncate need write: true",
        ));
    }
    if path.is_empty() || path.contains('\0') {
        return Err(arg_err(OP, "path", "expected a path"));
    }
    let fd = if let Some(p) = target.read_lock::<Process>().map(|p| p.clone()) {
        if !p.alive() {
            return Err(sys_err(
                SysError::os(OP, Errno::ESRCH)
                    .name("target")
                    .detail(format!("the process (pid {}) has exited", p.pid)),
            ));
        }
        let fd = nsfile::open_in(p.pid, path, how, || p.alive()).script()?;
        (fd, p.pid)
    } else if let Ok(pid) = target.as_int() {
        let pid = super::super::error::int_arg::<i32>(OP, "target", pid)?;
        if pid <= 0 {
            return Err(arg_err(OP, "target", format!("{pid} is not a process id")));
        }
        (nsfile::open_in(pid, path, how, || true).script()?, pid)
    } else {
        return Err(arg_err(
            OP,
            "target",
            format!("expected a Process or a pid, got {}", type_of(&target)),
        ));
    };
    Ok(Fd::new(
        fd.0,
        format!("file {path} under the root of pid {}", fd.1),
    ))
}

pub fn register(api: &mut Api) {
    api.func(
        "socket_in",
        "socket_in(ns: Ns|Process|int, opts: map) -> Fd",
        "A socket opened inside the network namespace `ns` without leaving the shell there (only\n\
         socket(2) runs inside; the socket belongs to that namespace for life). Options: `family`\n\
         (\"inet\" (default), \"inet6\", \"unix\"), `type` (\"stream\" (default), \"dgram\",\n\
         \"seqpacket\"), `bind` (\"0.0.0.0:80\", \"[::]:80\", \":80\", or a unix path / \"@name\"),\n\
         `listen` (a backlog, or true for 128). Hand it to a child with spawn(#{ fds: #{ \"3\": s } }).\n\
         Example:\n    let s = socket_in(ctr, #{ family: \"inet\", type: \"stream\", bind: \"0.0.0.0:80\", listen: 128 });",
        socket_in,
    );
    api.func(
        "socket_in",
        "socket_in(ns: Ns|Process|int) -> Fd",
        "An unbound TCP socket inside the network namespace `ns`.\nExample:\n    let s = socket_in(netns_new());",
        |target: Dynamic| socket_in(target, Map::new()),
    );
    api.func(
        "open_in",
        "open_in(target: Process|int, path: string, opts: map) -> Fd",
        "Open a file under another process's root (/proc/PID/root with openat2 RESOLVE_IN_ROOT:\n\
         its symlinks and \"..\" cannot lead out). Options: `write`, `create`, `truncate`, `append`,\n\
         `mode` (for create, default 0o644). Read-only by default.\n\
         Example:\n    let f = open_in(p, \"/var/log/app.log\", #{ write: true, append: true });",
        open_in,
    );
    api.func(
        "open_in",
        "open_in(target: Process|int, path: string) -> Fd",
        "Open a file under another process's root, read-only.\nExample:\n    let f = open_in(p, \"/etc/hostname\");",
        |target: Dynamic, path: &str| open_in(target, path, Map::new()),
    );
}
