//! ctrsh's mini-init: PID 1 of a new pid namespace is the launcher's own forked child (no
//! second binary). It starts the payload, reaps every process that dies in the namespace
//! (re-parented orphans included), forwards termination signals to the payload and exits
//! with the payload's status.
//!
//! Signals are blocked and taken with sigwaitinfo, so none is lost between two checks.
//! Blocked signals reach a namespace's init even without handlers (the kernel only drops
//! signals init would take the default action for).

use nix::errno::Errno;
use nix::sys::signal::{SigSet, SigmaskHow, Signal};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::{ForkResult, Pid};

use super::error::SysError;
use super::wait::status_code;

/// Signals init passes on to the payload.
pub const FORWARDED: [Signal; 7] = [
    Signal::SIGTERM,
    Signal::SIGINT,
    Signal::SIGHUP,
    Signal::SIGQUIT,
    Signal::SIGUSR1,
    Signal::SIGUSR2,
    Signal::SIGWINCH,
];

/// Fork the payload and act as init until it exits. `payload` runs in the forked child with
/// the signal mask it had before; it should exec or exit (if it returns, the child exits
/// with status 125). Returns only when init could not start the payload.
pub fn run(payload: impl FnOnce()) -> SysError {
    let mut set = SigSet::empty();
    set.add(Signal::SIGCHLD);
    for s in FORWARDED {
        set.add(s);
    }
    let mut old = SigSet::empty();
    if let Err(e) = nix::sys::signal::sigprocmask(SigmaskHow::SIG_BLOCK, Some(&set), Some(&mut old))
    {
        return SysError::os("init: sigprocmask", e);
    }
    // SAFETY: the process is single-threaded (it is a fresh clone of a single-threaded
    // one), so the child may run arbitrary code after fork.
    match unsafe { nix::unistd::fork() } {
        Err(e) => SysError::os("init: fork", e),
        Ok(ForkResult::Child) => {
            let _ = nix::sys::signal::sigprocmask(SigmaskHow::SIG_SETMASK, Some(&old), None);
            payload();
            // SAFETY: ends the payload child without the shell's cleanup.
            unsafe { libc::_exit(125) }
        }
        Ok(ForkResult::Parent { child }) => {
            // init keeps nothing of the launcher's: the payload owns the descriptors now,
            // and the launcher sees the error pipe close when the payload execs.
            super::exec::close_from(3);
            supervise(child, &set)
        }
    }
}

fn supervise(payload: Pid, set: &SigSet) -> ! {
    loop {
        let sig = match set.wait() {
            Ok(s) => s,
            Err(Errno::EINTR) => continue,
            Err(_) => Signal::SIGCHLD, // fall back to reaping
        };
        if sig != Signal::SIGCHLD {
            let _ = nix::sys::signal::kill(payload, sig);
            continue;
        }
        // Reap everything that is ready: the payload and any orphan re-parented to us.
        loop {
            match waitpid(Pid::from_raw(-1), Some(WaitPidFlag::WNOHANG)) {
                Ok(WaitStatus::StillAlive) => break,
                Ok(ws) => {
                    if ws.pid() == Some(payload) {
                        if let Some(code) = status_code(ws) {
                            // Everything else in the namespace is killed by the kernel
                            // when init exits.
                            // SAFETY: _exit ends the process without running Rust or C
                            // cleanup that belongs to the launcher.
                            unsafe { libc::_exit(code) };
                        }
                    }
                }
                Err(Errno::EINTR) => continue,
                Err(_) => break, // ECHILD
            }
        }
    }
}
