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
use nix::unistd::Pid;

use super::error::SysError;
use super::wait::status_of_wait;

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

/// Start the payload and act as init until it exits. `payload` runs in the child, which
/// shares init's memory until it execs ([`super::spawn::vfork`]: init is a copy of the
/// whole shell, and copying it again for a process that only execs is most of what
/// starting the payload would cost). It should exec or exit (if it returns, the child exits
/// with status 125); signals stay blocked in it until it resets them before exec. Returns
/// only when init could not start the payload.
pub fn run(payload: impl FnOnce()) -> SysError {
    let mut set = SigSet::empty();
    set.add(Signal::SIGCHLD);
    for s in FORWARDED {
        set.add(s);
    }
    if let Err(e) = nix::sys::signal::sigprocmask(SigmaskHow::SIG_BLOCK, Some(&set), None) {
        return SysError::os("init: sigprocmask", e);
    }
    let mut payload = Some(payload);
    let started = super::spawn::vfork(&mut || {
        if let Some(f) = payload.take() {
            f();
        }
    });
    match started {
        Err(e) => e.detail("init: starting the payload"),
        Ok(child) => {
            // init keeps nothing of the launcher's: the payload owns the descriptors now,
            // and the launcher sees the error pipe close when the payload execs. Nor the
            // caller's standard streams: a detached container's init must not keep the
            // pipe of `ctrsh -e 'spawn(...)' | cat` open after ctrsh has exited.
            super::exec::close_from(3);
            release_stdio();
            supervise(Pid::from_raw(child), &set)
        }
    }
}

/// Point 0, 1 and 2 at /dev/null (or close them where there is none).
fn release_stdio() {
    // SAFETY: open/dup2/close on our own descriptor numbers; no memory is involved.
    unsafe {
        let null = libc::open(c"/dev/null".as_ptr(), libc::O_RDWR | libc::O_CLOEXEC);
        for fd in 0..3 {
            if null >= 0 {
                libc::dup2(null, fd);
            } else {
                libc::close(fd);
            }
        }
        if null > 2 {
            libc::close(null);
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
        // The raw status word: a payload killed by any signal, a real-time one included,
        // must end init with 128+N (nix's waitpid fails after reaping such a child).
        loop {
            let mut status: libc::c_int = 0;
            // SAFETY: waitpid writes the status word into a local.
            let r = unsafe { libc::waitpid(-1, &mut status, libc::WNOHANG) };
            if r == 0 {
                break; // children left, none ready
            }
            if r < 0 {
                match Errno::last() {
                    Errno::EINTR => continue,
                    _ => break, // ECHILD
                }
            }
            if r == payload.as_raw() {
                if let Some(code) = status_of_wait(status) {
                    // Everything else in the namespace is killed by the kernel when init
                    // exits.
                    // SAFETY: _exit ends the process without running Rust or C cleanup
                    // that belongs to the launcher.
                    unsafe { libc::_exit(code) };
                }
            }
        }
    }
}
