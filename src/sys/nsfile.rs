//! ctrtool's ns_open_file: a socket opened inside another network namespace, and a file
//! opened under another process's root, without leaving the shell there.
//!
//! A socket belongs to the namespace it was created in for its whole life (bind, listen,
//! connect all happen there), so only `socket(2)` runs inside the namespace, under an
//! `NsGuard` that always brings the shell back. A file under another root is opened with
//! openat2(RESOLVE_IN_ROOT) against /proc/PID/root, so the target's symlinks cannot point
//! it back at the host.

use std::net::SocketAddr;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};

use rustix::fs::{Mode, OFlags, ResolveFlags};
use rustix::net::{AddressFamily, SocketAddrUnix, SocketFlags, SocketType};

use super::error::{Result, SysError};
use super::ns::{NsFd, NsGuard};
use super::safepath;

/// The address family of a socket to open.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    Inet,
    Inet6,
    Unix,
}

/// Where to bind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Bind {
    Inet(SocketAddr),
    /// A filesystem path, or an abstract name when it starts with '@'.
    Unix(String),
}

/// A socket to open in a namespace.
#[derive(Debug, Clone)]
pub struct SocketSpec {
    pub family: Family,
    /// SOCK_STREAM, SOCK_DGRAM or SOCK_SEQPACKET.
    pub ty: SocketType,
    pub bind: Option<Bind>,
    /// Listen with this backlog (stream and seqpacket sockets).
    pub listen: Option<i32>,
}

/// Open a socket as described by `spec` inside network namespace `ns`. The fd is
/// close-on-exec; handing it to a child (spawn's `fds`) clears that in the child.
pub fn socket_in(ns: &NsFd, spec: &SocketSpec) -> Result<OwnedFd> {
    let af = match spec.family {
        Family::Inet => AddressFamily::INET,
        Family::Inet6 => AddressFamily::INET6,
        Family::Unix => AddressFamily::UNIX,
    };
    let rx = |e, what: &str| safepath::rx("socket_in", e).detail(what.to_string());
    let guard = NsGuard::enter(&[ns])?;
    let fd = rustix::net::socket_with(af, spec.ty, SocketFlags::CLOEXEC, None)
        .map_err(|e| rx(e, &format!("socket in net:[{}]", ns.inode)));
    guard.restore()?;
    let fd = fd?;
    if let Some(b) = &spec.bind {
        match b {
            Bind::Inet(sa) => {
                // A server restarted on the same port should not wait out TIME_WAIT.
                rustix::net::sockopt::set_socket_reuseaddr(&fd, true)
                    .map_err(|e| rx(e, "SO_REUSEADDR"))?;
                rustix::net::bind(&fd, sa).map_err(|e| {
                    let err = rx(e, &format!("bind in net:[{}]", ns.inode)).name(sa.to_string());
                    match e {
                        rustix::io::Errno::ADDRNOTAVAIL => err.hint("no interface in that namespace has this address (add it first, and bring the link up)"),
                        rustix::io::Errno::ADDRINUSE => err.hint("something in that namespace already listens on this port"),
                        _ => err,
                    }
                })?;
            }
            Bind::Unix(path) => {
                let addr = match path.strip_prefix('@') {
                    Some(name) => SocketAddrUnix::new_abstract_name(name.as_bytes()),
                    None => SocketAddrUnix::new(path.as_str()),
                }
                .map_err(|e| rx(e, "unix address").name(path.clone()))?;
                rustix::net::bind(&fd, &addr).map_err(|e| rx(e, "bind").name(path.clone()))?;
            }
        }
    }
    if let Some(backlog) = spec.listen {
        rustix::net::listen(&fd, backlog).map_err(|e| rx(e, "listen"))?;
    }
    Ok(fd)
}

/// How to open a file under another root.
#[derive(Debug, Clone, Copy, Default)]
pub struct OpenMode {
    pub write: bool,
    pub create: bool,
    pub truncate: bool,
    pub append: bool,
    pub mode: u32,
}

/// Open `path` inside the root of process `pid` (/proc/PID/root): symlinks and ".." are
/// resolved as if that root were "/". `alive` is asked after the open whether `pid` is still
/// the same process (a pidfd check), so a reused pid is never opened by mistake.
pub fn open_in(pid: i32, path: &str, how: OpenMode, alive: impl Fn() -> bool) -> Result<OwnedFd> {
    let root_path = format!("/proc/{pid}/root");
    let root = safepath::open_dir(std::path::Path::new(&root_path))
        .map_err(|e| e.name(format!("pid {pid}")))?;
    if !alive() {
        return Err(SysError::os("open_in", nix::errno::Errno::ESRCH)
            .name(format!("pid {pid}"))
            .detail("the process has exited"));
    }
    let mut flags = if how.write || how.append {
        OFlags::WRONLY
    } else {
        OFlags::RDONLY
    };
    if how.create {
        flags |= OFlags::CREATE;
    }
    if how.truncate {
        flags |= OFlags::TRUNC;
    }
    if how.append {
        flags |= OFlags::APPEND;
    }
    let rel: Vec<&str> = path
        .split('/')
        .filter(|c| !c.is_empty() && *c != ".")
        .collect();
    let rel = if rel.is_empty() {
        ".".to_string()
    } else {
        rel.join("/")
    };
    match rustix::fs::openat2(
        &root,
        rel.as_str(),
        flags | OFlags::CLOEXEC | OFlags::NOCTTY,
        // openat2 refuses a mode without O_CREAT.
        Mode::from_raw_mode(if how.create { how.mode } else { 0 }),
        ResolveFlags::IN_ROOT | ResolveFlags::NO_MAGICLINKS,
    ) {
        Ok(fd) => Ok(fd),
        // Without openat2 only opening existing files is safe (the O_PATH walk).
        Err(rustix::io::Errno::NOSYS) if !how.create => {
            let p = safepath::walk(root.as_fd(), path, OFlags::empty())?;
            let reopen = format!("/proc/self/fd/{}", p.as_raw_fd());
            rustix::fs::open(reopen.as_str(), flags | OFlags::CLOEXEC, Mode::empty())
                .map_err(|e| safepath::rx("open_in", e).path(path))
        }
        Err(e) => Err(safepath::rx("open_in", e)
            .path(path)
            .name(format!("root of pid {pid}"))),
    }
}
