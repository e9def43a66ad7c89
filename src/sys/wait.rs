//! Waiting for processes through their pidfds, and exit statuses as shells report them.

use std::os::fd::{AsRawFd, BorrowedFd};

use nix::errno::Errno;
use nix::sys::wait::{waitid, Id, WaitPidFlag, WaitStatus};

use super::error::{Result, SysError};

/// The shell-style status of a finished process: its exit code, or 128 + the signal that
/// killed it.
pub fn status_code(ws: WaitStatus) -> Option<i32> {
    match ws {
        WaitStatus::Exited(_, code) => Some(code),
        WaitStatus::Signaled(_, sig, _) => Some(128 + sig as i32),
        _ => None,
    }
}

/// Reap the child behind `pidfd`. With `nohang`, returns `None` while it still runs.
/// EINTR is returned as an error so the caller can forward or act on signals.
pub fn reap(pidfd: BorrowedFd<'_>, nohang: bool) -> Result<Option<i32>> {
    let mut flags = WaitPidFlag::WEXITED;
    if nohang {
        flags |= WaitPidFlag::WNOHANG;
    }
    loop {
        match waitid(Id::PIDFd(pidfd), flags) {
            Ok(WaitStatus::StillAlive) => return Ok(None),
            Ok(ws) => match status_code(ws) {
                Some(c) => return Ok(Some(c)),
                None => continue, // stopped/continued are not asked for; be safe
            },
            Err(e) => return Err(SysError::os("waitid", e)),
        }
    }
}

/// Reap `pid` (no pidfd: old kernels) blocking.
pub fn reap_pid(pid: i32) -> Result<i32> {
    loop {
        match nix::sys::wait::waitpid(nix::unistd::Pid::from_raw(pid), None) {
            Ok(ws) => {
                if let Some(c) = status_code(ws) {
                    return Ok(c);
                }
            }
            Err(Errno::EINTR) => continue,
            Err(e) => return Err(SysError::os("waitpid", e).name(format!("pid {pid}"))),
        }
    }
}

/// Whether the process behind `pidfd` has exited (its pidfd is readable then), waiting up
/// to `timeout_ms` (-1: forever; 0: just look). EINTR is returned as an error.
pub fn exited(pidfd: BorrowedFd<'_>, timeout_ms: i32) -> Result<bool> {
    let mut pfd = libc::pollfd {
        fd: pidfd.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: one valid pollfd for the duration of the call.
    let r = unsafe { libc::poll(&mut pfd, 1, timeout_ms) };
    if r < 0 {
        return Err(SysError::last("poll(pidfd)"));
    }
    Ok(r > 0)
}
