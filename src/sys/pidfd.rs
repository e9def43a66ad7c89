//! pidfds: process handles that never point at a reused pid.

use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

use nix::errno::Errno;

use super::error::{Result, SysError};

/// pidfd_open(2) for `pid`.
pub fn open(pid: i32) -> Result<OwnedFd> {
    // SAFETY: pidfd_open takes a pid and flags and returns a new fd or -1; no memory is passed.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    if fd < 0 {
        let e = Errno::last();
        let err = SysError::os("pidfd_open", e).name(format!("pid {pid}"));
        return Err(if e == Errno::ESRCH {
            err.detail("no such process")
        } else {
            err
        });
    }
    // SAFETY: the kernel just returned this fd to us; nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) })
}

/// pidfd_send_signal(2); `sig` 0 only checks that the process still exists.
pub fn send_signal(fd: BorrowedFd<'_>, sig: i32) -> Result<()> {
    // SAFETY: a null siginfo is allowed (the kernel fills it as kill(2) would); flags 0.
    let r = unsafe {
        libc::syscall(
            libc::SYS_pidfd_send_signal,
            fd.as_raw_fd(),
            sig,
            std::ptr::null::<libc::siginfo_t>(),
            0,
        )
    };
    if r < 0 {
        return Err(SysError::last("pidfd_send_signal"));
    }
    Ok(())
}
