//! ctrtool's in-container services as script functions: `debug_shell(opts)` and
//! `syslogd(opts)`. Each binds its socket in the shell (so a bad path is an error here,
//! and the socket exists when the function returns), then forks a server process and
//! returns it as a Process: killed when the recipe ends unless `detach: true`. The socket
//! file is removed when the recipe ends too (unless detached).

use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::fs::PermissionsExt;

use nix::sys::socket::SockType;
use rhai::{Dynamic, Map};

use super::api::Api;
use super::attach::target_pid;
use super::cleanup;
use super::error::{arg_err, script_type, sys_err, IntoScript, RResult};
use super::fd::Fd;
use super::opts::{strs_of, Opts};
use super::process::Process;
use crate::sys::attach::{self, Mode, Request, Target};
use crate::sys::debug_shell::{self, ShellSpec};
use crate::sys::spawn;
use crate::sys::{syslogd, unixsock, SysError};

/// Fork a server process that runs `serve` (which never returns) and hand it to the
/// script as a Process (owned unless `detach`).
fn fork_server(what: String, detach: bool, serve: impl FnOnce()) -> RResult<Process> {
    use std::io::Write;
    let _ = std::io::stdout().flush();
    let _ = std::io::stderr().flush();
    let (pid, pidfd) = spawn::fork_server(detach, || {
        // The server owns nothing of the recipe's.
        cleanup::forget_all();
        serve()
    })
    .script()?;
    Ok(Process::child(pid, pidfd, what, detach))
}

/// Remove the socket file when the recipe ends (registered before the server, so the
/// server is gone first).
fn own_socket(path: &str) {
    let p = path.to_string();
    cleanup::own(
        format!("socket {path}"),
        move || match std::fs::remove_file(&p) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                Err(SysError::io("remove socket", &e).path(&p))
            }
            _ => Ok(()),
        },
    );
}

fn chmod(op: &str, path: &str, mode: u32) -> RResult<()> {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .map_err(|e| sys_err(SysError::io(op, &e).path(path).detail("chmod")))
}

const SHELL_KEYS: &[&str] = &[
    "socket",
    "target",
    "cmd",
    "mode",
    "tools_at",
    "allow_uid",
    "detach",
];

fn debug_shell_fn(opts: Map) -> RResult<Process> {
    let op = "debug_shell";
    let o = Opts::new(op, opts, SHELL_KEYS)?;
    let socket = o.req_str("socket")?;
    let target = o.get("target").cloned().ok_or_else(|| {
        arg_err(
            op,
            "target",
            "the option \"target\" is required: a Process, pid or container name",
        )
    })?;
    let cmd = match o.get("cmd") {
        None => Vec::new(),
        Some(v) => strs_of(op, "cmd", v)?,
    };
    let mode = match (o.str("mode")?.as_deref(), o.str("tools_at")?) {
        (None | Some("enter"), None) => Mode::Enter,
        (None | Some("tools"), Some(at)) => Mode::Tools { at },
        (Some("tools"), None) => Mode::Tools {
            at: attach::DEFAULT_AT.into(),
        },
        (Some("enter"), Some(_)) => {
            return Err(arg_err(op, "tools_at", "mode \"enter\" has no attach path"))
        }
        (Some(m), _) => {
            return Err(arg_err(
                op,
                "mode",
                format!("{m:?}: expected \"enter\" (the container's own shell) or \"tools\""),
            ))
        }
    };
    let allow = match o.get("allow_uid") {
        None => Vec::new(),
        Some(v) => {
            let list: Vec<Dynamic> = match v.read_lock::<rhai::Array>() {
                Some(a) => a.clone(),
                None => vec![v.clone()],
            };
            list.iter()
                .map(|u| {
                    u.as_int()
                        .ok()
                        .and_then(|n| u32::try_from(n).ok())
                        .ok_or_else(|| arg_err(op, "allow_uid", format!("{u} is not a uid")))
                })
                .collect::<RResult<Vec<u32>>>()?
        }
    };
    let detach = o.bool("detach", false)?;
    // Everything checked against the target now: a bad target or command fails here.
    let pid = target_pid(op, &target)?;
    let t = Target::open(op, pid).script()?;
    attach::plan(
        op,
        &t,
        &Request {
            mode: mode.clone(),
            cmd: cmd.clone(),
            term: None,
        },
    )
    .script()?;
    let spec = ShellSpec {
        target_pid: t.pid,
        target_start: t.stat.start_time,
        mode,
        cmd,
        allow: allow.clone(),
    };
    drop(t);
    let listener = unixsock::listen(op, &socket, SockType::SeqPacket).script()?;
    if !detach {
        own_socket(&socket);
    }
    // The uid check is SO_PEERCRED's; the file mode only decides who may try.
    chmod(op, &socket, if allow.is_empty() { 0o600 } else { 0o666 })?;
    fork_server(format!("debug_shell {socket}"), detach, move || {
        debug_shell::serve(listener, &spec)
    })
}

const SYSLOG_KEYS: &[&str] = &["socket", "out", "mode", "detach"];

fn out_fd(op: &str, v: Option<&Dynamic>) -> RResult<OwnedFd> {
    let dup = |fd: std::os::fd::BorrowedFd<'_>| {
        fd.try_clone_to_owned()
            .map_err(|e| sys_err(SysError::io("dup", &e).name("out")))
    };
    match v {
        None => dup(std::io::stdout().as_fd()),
        Some(v) if v.is::<Fd>() => dup(v.read_lock::<Fd>().expect("an Fd").fd.as_fd()),
        Some(v) => {
            let path = v.clone().into_string().map_err(|t| {
                arg_err(
                    op,
                    "out",
                    format!("expected a path, \"-\" or an Fd, got {}", script_type(t)),
                )
            })?;
            if path == "-" {
                return out_fd(op, None);
            }
            let f = std::fs::OpenOptions::new()
                .append(true)
                .create(true)
                .open(&path)
                .map_err(|e| sys_err(SysError::io(op, &e).path(&path).name("out")))?;
            Ok(f.into())
        }
    }
}

fn syslogd_fn(opts: Map) -> RResult<Process> {
    let op = "syslogd";
    let o = Opts::new(op, opts, SYSLOG_KEYS)?;
    let socket = o.req_str("socket")?;
    let out = out_fd(op, o.get("out"))?;
    let mode = o.mode("mode")?.unwrap_or(0o666);
    let detach = o.bool("detach", false)?;
    let sock = unixsock::listen(op, &socket, SockType::Datagram).script()?;
    if !detach {
        own_socket(&socket);
    }
    chmod(op, &socket, mode)?;
    fork_server(format!("syslogd {socket}"), detach, move || {
        syslogd::serve(sock, out)
    })
}

pub fn register(api: &mut Api) {
    api.func(
        "debug_shell",
        "debug_shell(opts: map) -> Process",
        "Serve shells inside a target container on a unix socket (ctrtool's debug_shell):\n\
         every connection gets a pty of its own and a shell in all of the target's\n\
         namespaces, with its identity (mode \"enter\", the default), or with the host's\n\
         tools and the container at `tools_at` (mode \"tools\", as attach). Only root, the\n\
         server's uid and the uids in `allow_uid` may connect (SO_PEERCRED). Connect with\n\
         `ctrsh connect SOCKET`. Returns the server's Process: it is killed and the socket\n\
         removed when the recipe ends, unless `detach: true`.\n\
         Options: socket (required), target (required: Process, pid or name), cmd (default:\n\
         the container's $SHELL or /bin/sh), mode, tools_at, allow_uid (uid or array), detach.\n\
         Example:\n    let box = spawn(#{ ns: [\"pid\", \"mnt\", \"uts\"], hostname: \"box\", cmd: [\"sleep\", \"1d\"] });\n    let d = debug_shell(#{ socket: \"/run/box.sock\", target: box });\n    box.wait();",
        debug_shell_fn,
    );
    api.func(
        "syslogd",
        "syslogd(opts: map) -> Process",
        "A syslog receiver (ctrtool's syslogd): a unix datagram socket at `socket` (bind it at\n\
         a container's /dev/log) whose messages are written to `out` (a path, appended;\n\
         \"-\" or absent: the shell's stdout; or an Fd), one line each, tagged with the\n\
         sender's uid, gid and pid as the kernel reports them (SCM_CREDENTIALS), so\n\
         containers with different uid maps can be told apart. `mode` is the socket file's\n\
         mode (default 0o666, so any container user can log). Returns the server's Process;\n\
         it is killed and the socket removed when the recipe ends, unless `detach: true`.\n\
         Example:\n    let log = syslogd(#{ socket: \"/run/box-log.sock\", out: \"/var/log/box.log\" });\n    let root = rootfs(#{ entries: [ro_bind(\"/usr\"), bind_entry(\"/run/box-log.sock\", \"/dev/log\", #{})] });",
        syslogd_fn,
    );
}
