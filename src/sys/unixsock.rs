//! Unix domain sockets: socket pairs, listening and connecting by path (with errors that say
//! what is wrong with the path), passing descriptors (SCM_RIGHTS), the peer's credentials
//! (SO_PEERCRED) and per-message sender credentials (SO_PASSCRED / SCM_CREDENTIALS).

use std::io::{IoSlice, IoSliceMut};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::fs::FileTypeExt;

use nix::errno::Errno;
use nix::sys::socket::{
    self as ns, sockopt, AddressFamily, Backlog, ControlMessage, ControlMessageOwned, MsgFlags,
    SockFlag, SockType, UnixAddr, UnixCredentials,
};

use super::error::{Result, SysError};

/// sun_path holds 108 bytes including the terminating NUL.
const MAX_PATH: usize = 107;

/// Credentials of a peer or a message sender, as the receiver's namespaces number them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cred {
    pub pid: i32,
    pub uid: u32,
    pub gid: u32,
}

/// A connected pair (close-on-exec) of the given type.
pub fn pair(ty: SockType) -> Result<(OwnedFd, OwnedFd)> {
    ns::socketpair(AddressFamily::Unix, ty, None, SockFlag::SOCK_CLOEXEC)
        .map_err(|e| SysError::os("socketpair", e))
}

fn addr(op: &str, path: &str) -> Result<UnixAddr> {
    if path.is_empty() {
        return Err(SysError::invalid(op, "socket", "an empty socket path"));
    }
    if path.len() > MAX_PATH {
        return Err(SysError::invalid(
            op,
            "socket",
            format!(
                "the socket path is {} bytes; unix sockets allow at most {MAX_PATH}",
                path.len()
            ),
        )
        .path(path)
        .hint("use a shorter path, e.g. under /run or /tmp"));
    }
    UnixAddr::new(path).map_err(|e| SysError::os(op, e).path(path))
}

fn new_socket(op: &str, ty: SockType) -> Result<OwnedFd> {
    ns::socket(AddressFamily::Unix, ty, SockFlag::SOCK_CLOEXEC, None)
        .map_err(|e| SysError::os(op, e).detail("socket(AF_UNIX)"))
}

fn type_name(ty: SockType) -> &'static str {
    match ty {
        SockType::Stream => "stream",
        SockType::Datagram => "datagram",
        SockType::SeqPacket => "seqpacket",
        _ => "unix",
    }
}

/// Bind a socket of type `ty` at `path` (and listen, for connection types). A socket file
/// nobody listens on any more is replaced; a live one, or anything that is not a socket,
/// is an error.
pub fn listen(op: &str, path: &str, ty: SockType) -> Result<OwnedFd> {
    let a = addr(op, path)?;
    if let Ok(meta) = std::fs::symlink_metadata(path) {
        if !meta.file_type().is_socket() {
            return Err(SysError::os(op, Errno::EEXIST)
                .path(path)
                .detail("something that is not a socket is in the way"));
        }
        let probe = new_socket(op, ty)?;
        match ns::connect(probe.as_raw_fd(), &a) {
            Err(Errno::ECONNREFUSED) | Err(Errno::ENOENT) => {
                let _ = std::fs::remove_file(path); // stale: its server is gone
            }
            _ => {
                return Err(SysError::os(op, Errno::EADDRINUSE)
                    .path(path)
                    .detail("a server is already listening on this socket"))
            }
        }
    }
    let fd = new_socket(op, ty)?;
    if ty == SockType::Datagram {
        // Before bind, so no datagram ever arrives without its sender's credentials.
        set_passcred(fd.as_fd())?;
    }
    ns::bind(fd.as_raw_fd(), &a).map_err(|e| {
        let err = SysError::os(op, e).path(path).detail("bind");
        match e {
            Errno::ENOENT => err.hint("the directory of the socket does not exist"),
            Errno::EACCES => err.hint("no permission to create a file in that directory"),
            _ => err,
        }
    })?;
    if ty != SockType::Datagram {
        ns::listen(&fd, Backlog::new(64).expect("a valid backlog"))
            .map_err(|e| SysError::os(op, e).path(path).detail("listen"))?;
    }
    Ok(fd)
}

/// Connect to the socket at `path`, saying what is wrong when that fails.
pub fn connect(op: &str, path: &str, ty: SockType) -> Result<OwnedFd> {
    let a = addr(op, path)?;
    match std::fs::metadata(path) {
        Err(e) => {
            let err = SysError::io(op, &e).path(path);
            return Err(match e.raw_os_error() {
                Some(libc::ENOENT) => err.detail("no such socket"),
                Some(libc::EACCES) => err.detail("a directory on the way cannot be searched"),
                _ => err,
            });
        }
        Ok(m) if !m.file_type().is_socket() => {
            let what = if m.is_dir() {
                "a directory"
            } else if m.is_file() {
                "a regular file"
            } else {
                "another kind of file"
            };
            return Err(SysError::os(op, Errno::ENOTSOCK)
                .path(path)
                .detail(format!("not a socket but {what}")));
        }
        Ok(_) => {}
    }
    let fd = new_socket(op, ty)?;
    ns::connect(fd.as_raw_fd(), &a).map_err(|e| {
        let err = SysError::os(op, e).path(path).detail("connect");
        match e {
            Errno::EACCES => err.hint("connecting needs write permission on the socket file"),
            Errno::ECONNREFUSED => {
                err.hint("nothing listens on it: a stale socket whose server has exited")
            }
            Errno::EPROTOTYPE => err.hint(format!(
                "the socket is not a {} socket: not the kind of server this expects",
                type_name(ty)
            )),
            _ => err,
        }
    })?;
    Ok(fd)
}

/// accept4 with close-on-exec and non-blocking set on the new connection.
pub fn accept(listener: BorrowedFd<'_>) -> Result<OwnedFd> {
    let fd = ns::accept4(
        listener.as_raw_fd(),
        SockFlag::SOCK_CLOEXEC | SockFlag::SOCK_NONBLOCK,
    )
    .map_err(|e| SysError::os("accept", e))?;
    // SAFETY: accept4 returned a new descriptor that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// The credentials of the process at the other end (SO_PEERCRED: taken at connect time).
pub fn peer_cred(fd: BorrowedFd<'_>) -> Result<Cred> {
    let c = ns::getsockopt(&fd, sockopt::PeerCredentials)
        .map_err(|e| SysError::os("getsockopt(SO_PEERCRED)", e))?;
    Ok(Cred {
        pid: c.pid(),
        uid: c.uid(),
        gid: c.gid(),
    })
}

/// SO_PASSCRED: every message received carries its sender's credentials.
pub fn set_passcred(fd: BorrowedFd<'_>) -> Result<()> {
    ns::setsockopt(&fd, sockopt::PassCred, &true)
        .map_err(|e| SysError::os("setsockopt(SO_PASSCRED)", e))
}

/// Receive one message and its sender's credentials (the socket must have SO_PASSCRED).
/// Returns (length, credentials); EINTR and EAGAIN are returned as errors.
pub fn recv_with_cred(fd: BorrowedFd<'_>, buf: &mut [u8]) -> Result<(usize, Option<Cred>)> {
    let mut cmsg = nix::cmsg_space!(UnixCredentials);
    let mut iov = [IoSliceMut::new(buf)];
    let msg = ns::recvmsg::<()>(
        fd.as_raw_fd(),
        &mut iov,
        Some(&mut cmsg),
        MsgFlags::MSG_CMSG_CLOEXEC,
    )
    .map_err(|e| SysError::os("recvmsg", e))?;
    let mut cred = None;
    for c in msg.cmsgs().map_err(|e| SysError::os("recvmsg", e))? {
        if let ControlMessageOwned::ScmCredentials(u) = c {
            cred = Some(Cred {
                pid: u.pid(),
                uid: u.uid(),
                gid: u.gid(),
            });
        }
    }
    Ok((msg.bytes, cred))
}

/// Send one descriptor (SCM_RIGHTS) with a one-byte message.
pub fn send_fd(sock: BorrowedFd<'_>, fd: BorrowedFd<'_>) -> Result<()> {
    let fds = [fd.as_raw_fd()];
    let iov = [IoSlice::new(b"F")];
    ns::sendmsg::<()>(
        sock.as_raw_fd(),
        &iov,
        &[ControlMessage::ScmRights(&fds)],
        MsgFlags::MSG_NOSIGNAL,
        None,
    )
    .map_err(|e| SysError::os("sendmsg(SCM_RIGHTS)", e))?;
    Ok(())
}

/// Receive a descriptor sent with [`send_fd`]. With `wait` false, a missing message is
/// EAGAIN.
pub fn recv_fd(sock: BorrowedFd<'_>, wait: bool) -> Result<OwnedFd> {
    let mut cmsg = nix::cmsg_space!([RawFd; 1]);
    let mut b = [0u8; 1];
    let mut iov = [IoSliceMut::new(&mut b)];
    let mut flags = MsgFlags::MSG_CMSG_CLOEXEC;
    if !wait {
        flags |= MsgFlags::MSG_DONTWAIT;
    }
    let msg = ns::recvmsg::<()>(sock.as_raw_fd(), &mut iov, Some(&mut cmsg), flags)
        .map_err(|e| SysError::os("recvmsg(SCM_RIGHTS)", e))?;
    for c in msg.cmsgs().map_err(|e| SysError::os("recvmsg", e))? {
        if let ControlMessageOwned::ScmRights(fds) = c {
            if let Some(&fd) = fds.first() {
                // SAFETY: the kernel installed this descriptor for us just now.
                return Ok(unsafe { OwnedFd::from_raw_fd(fd) });
            }
        }
    }
    Err(SysError::protocol(
        "recvmsg(SCM_RIGHTS)",
        "the message carried no descriptor",
    ))
}

/// Send one whole message (seqpacket/datagram) without raising SIGPIPE.
pub fn send(fd: BorrowedFd<'_>, msg: &[u8]) -> Result<usize> {
    ns::send(
        fd.as_raw_fd(),
        msg,
        MsgFlags::MSG_NOSIGNAL | MsgFlags::MSG_DONTWAIT,
    )
    .map_err(|e| SysError::os("send", e))
}

/// Receive one message; 0 means the peer closed the connection.
pub fn recv(fd: BorrowedFd<'_>, buf: &mut [u8]) -> Result<usize> {
    ns::recv(fd.as_raw_fd(), buf, MsgFlags::MSG_DONTWAIT).map_err(|e| SysError::os("recv", e))
}

/// Set or clear O_NONBLOCK on our own descriptor.
pub fn set_nonblocking(fd: BorrowedFd<'_>, on: bool) -> Result<()> {
    let flags = nix::fcntl::fcntl(fd, nix::fcntl::FcntlArg::F_GETFL)
        .map_err(|e| SysError::os("fcntl(F_GETFL)", e))?;
    let mut f = nix::fcntl::OFlag::from_bits_retain(flags);
    f.set(nix::fcntl::OFlag::O_NONBLOCK, on);
    nix::fcntl::fcntl(fd, nix::fcntl::FcntlArg::F_SETFL(f))
        .map_err(|e| SysError::os("fcntl(F_SETFL)", e))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn descriptors_and_credentials_cross_a_pair() {
        let (a, b) = pair(SockType::SeqPacket).unwrap();
        let (r, _w) = nix::unistd::pipe().unwrap();
        send_fd(a.as_fd(), r.as_fd()).unwrap();
        let got = recv_fd(b.as_fd(), true).unwrap();
        let same = |x: &OwnedFd, y: &OwnedFd| {
            nix::sys::stat::fstat(x).unwrap().st_ino == nix::sys::stat::fstat(y).unwrap().st_ino
        };
        assert!(same(&got, &r));
        let me = peer_cred(a.as_fd()).unwrap();
        assert_eq!(me.pid, std::process::id() as i32);
        assert!(recv_fd(b.as_fd(), false).is_err(), "nothing more was sent");
    }

    #[test]
    fn bad_paths_are_named() {
        let long = format!("/tmp/{}", "x".repeat(200));
        let e = listen("t", &long, SockType::Stream)
            .unwrap_err()
            .to_string();
        assert!(e.contains("at most 107"), "{e}");
        let e = connect("t", "/no/such/dir/s.sock", SockType::Stream)
            .unwrap_err()
            .to_string();
        assert!(e.contains("no such socket"), "{e}");
        let e = connect("t", "/etc/hostname", SockType::Stream)
            .unwrap_err()
            .to_string();
        assert!(e.contains("not a socket but a regular file"), "{e}");
    }
}
