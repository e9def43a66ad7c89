//! Waiting for processes through their pidfds, and exit statuses as shells report them.
//!
//! The statuses are decoded from the kernel's raw siginfo/status here, not through nix's
//! `WaitStatus`: that has a variant only for the classic signals, and for a child killed by
//! a real-time signal (32–64) nix returns EINVAL after the kernel has already reaped it, so
//! its status would be lost for good.

use std::os::fd::{AsRawFd, BorrowedFd};

use nix::errno::Errno;

use super::error::{Result, SysError};

/// The shell-style status of a finished process from a wait(2) status word: its exit code,
/// or 128 + the signal that killed it (any signal, real-time ones included). None for a
/// stop or continue report.
pub fn status_of_wait(status: libc::c_int) -> Option<i32> {
    if libc::WIFEXITED(status) {
        Some(libc::WEXITSTATUS(status))
    } else if libc::WIFSIGNALED(status) {
        Some(128 + libc::WTERMSIG(status))
    } else {
        None
    }
}

/// The same from waitid(2)'s siginfo: `si_code` says how it ended, `si_status` is the exit
/// code or the signal number. None for a stop or continue report.
fn status_of_siginfo(code: libc::c_int, status: libc::c_int) -> Option<i32> {
    match code {
        libc::CLD_EXITED => Some(status),
        libc::CLD_KILLED | libc::CLD_DUMPED => Some(128 + status),
        _ => None,
    }
}

/// Reap the child behind `pidfd`. With `nohang`, returns `None` while it still runs.
/// EINTR is returned as an error so the caller can forward or act on signals.
pub fn reap(pidfd: BorrowedFd<'_>, nohang: bool) -> Result<Option<i32>> {
    let mut flags = libc::WEXITED;
    if nohang {
        flags |= libc::WNOHANG;
    }
    loop {
        // SAFETY: an all-zero siginfo_t is a valid value (si_pid 0 means "nothing yet").
        let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
        // SAFETY: waitid writes into `info`, which lives for the call; the id is our pidfd.
        let r = unsafe {
            libc::waitid(
                libc::P_PIDFD,
                pidfd.as_raw_fd() as libc::id_t,
                &mut info,
                flags,
            )
        };
        if r < 0 {
            return Err(SysError::last("waitid"));
        }
        // SAFETY: after a successful waitid for WEXITED the kernel filled the SIGCHLD
        // fields, or left si_pid 0 (WNOHANG, nothing to report).
        let (pid, status) = unsafe { (info.si_pid(), info.si_status()) };
        if pid == 0 {
            return Ok(None);
        }
        match status_of_siginfo(info.si_code, status) {
            Some(c) => return Ok(Some(c)),
            None => continue, // stopped/continued are not asked for; be safe
        }
    }
}

/// Reap `pid` (no pidfd: old kernels) blocking.
pub fn reap_pid(pid: i32) -> Result<i32> {
    loop {
        let mut status: libc::c_int = 0;
        // SAFETY: waitpid writes the status word into a local.
        let r = unsafe { libc::waitpid(pid, &mut status, 0) };
        if r < 0 {
            match Errno::last() {
                Errno::EINTR => continue,
                e => return Err(SysError::os("waitpid", e).name(format!("pid {pid}"))),
            }
        }
        if let Some(c) = status_of_wait(status) {
            return Ok(c);
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_signal_gives_128_plus_its_number() {
        // The wait(2) status word of a death by signal N is N itself (no core dump flag).
        for sig in 1..=64 {
            assert_eq!(status_of_wait(sig), Some(128 + sig), "signal {sig}");
            assert_eq!(
                status_of_siginfo(libc::CLD_KILLED, sig),
                Some(128 + sig),
                "signal {sig}"
            );
        }
        assert_eq!(status_of_wait(7 << 8), Some(7));
        assert_eq!(status_of_siginfo(libc::CLD_EXITED, 7), Some(7));
        assert_eq!(status_of_siginfo(libc::CLD_DUMPED, 11), Some(139));
        assert_eq!(status_of_siginfo(libc::CLD_STOPPED, 19), None);
    }
}
