//! ctrsh's mini-init: PID 1 of a new pid namespace is the launcher's own forked child (no
//! second binary). It starts the payload, reaps every process that dies in the namespace
//! (re-parented orphans included), forwards termination signals to the payload and exits
//! with the payload's status.
//!
//! Signals are blocked and taken with sigwaitinfo, so none is lost between two checks.
//! Blocked signals reach a namespace's init even without handlers (the kernel only drops
//! signals init would take the default action for).
//!
//! Each signal reaches the payload once. The terminal sends its signals (Ctrl-C, window
//! changes ...) to the whole foreground process group, which init and the payload share
//! unless the payload left it: those (si_code SI_KERNEL) are not passed on again. The
//! terminal's stop signals are init's to ignore; the payload's stops are reported to the
//! shell (`Init::stops`), which stops with it (sys::jobctl).
//!
//! Without a pid namespace of its own (`Init::holds_tree`) init is a subreaper: the
//! payload's orphans are re-parented to it, not to the host's init, so the tree stays in
//! reach. It ends that tree when the payload exits and when the shell dies (its
//! parent-death signal is SIGHUP then, not SIGKILL), as the kernel does for a pid namespace.

use std::os::fd::{IntoRawFd, OwnedFd, RawFd};

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

/// The terminal's job-control stop signals: init ignores them (a blocked signal is not
/// acted on), so they never stop it; the payload takes its own.
const STOPS: [Signal; 3] = [Signal::SIGTSTP, Signal::SIGTTIN, Signal::SIGTTOU];

/// How init runs, besides starting the payload.
pub struct Init {
    /// Where to report the payload's stops to the shell: one byte, the signal.
    pub stops: Option<OwnedFd>,
    /// Not pid 1 of a pid namespace: be a subreaper and end the payload's tree when it
    /// exits or when the shell dies (SIGHUP, the parent-death signal, with another parent).
    pub holds_tree: bool,
}

/// Start the payload and act as init until it exits. `payload` runs in the child, which
/// shares init's memory until it execs ([`super::spawn::vfork`]: init is a copy of the
/// whole shell, and copying it again for a process that only execs is most of what
/// starting the payload would cost). It should exec or exit (if it returns, the child exits
/// with status 125); signals stay blocked in it until it resets them before exec. Returns
/// only when init could not start the payload.
pub fn run(how: Init, payload: impl FnOnce()) -> SysError {
    if how.holds_tree {
        // SAFETY: a prctl option that takes one integer argument.
        if unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) } < 0 {
            return SysError::last("init: prctl(PR_SET_CHILD_SUBREAPER)");
        }
    }
    // SAFETY: getppid takes no arguments.
    let shell = how.holds_tree.then(|| unsafe { libc::getppid() });
    let mut set = SigSet::empty();
    set.add(Signal::SIGCHLD);
    for s in FORWARDED.into_iter().chain(STOPS) {
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
            let stops = keep_as_fd3(how.stops);
            super::exec::close_from(if stops.is_some() { 4 } else { 3 });
            release_stdio();
            supervise(Pid::from_raw(child), &set, stops, shell)
        }
    }
}

/// Move the stop-report pipe to fd 3, the one descriptor init keeps beside 0-2.
fn keep_as_fd3(fd: Option<OwnedFd>) -> Option<RawFd> {
    let raw = fd?.into_raw_fd();
    // SAFETY: dup2 onto a number init is about to close anyway (it keeps nothing else).
    if raw != 3 && unsafe { libc::dup2(raw, 3) } < 0 {
        return None;
    }
    Some(3)
}

/// The next signal in `set` and its si_code (EINTR: None).
fn next_signal(set: &SigSet) -> Option<(Signal, i32)> {
    // SAFETY: sigwaitinfo fills a local siginfo_t; the set is a valid sigset_t.
    let (r, code) = unsafe {
        let mut info: libc::siginfo_t = std::mem::zeroed();
        let r = libc::sigwaitinfo(set.as_ref(), &mut info);
        (r, info.si_code)
    };
    if r < 0 {
        return match Errno::last() {
            Errno::EINTR => None,
            _ => Some((Signal::SIGCHLD, 0)), // fall back to reaping
        };
    }
    Some((Signal::try_from(r).unwrap_or(Signal::SIGCHLD), code))
}

/// Pass `sig` on to the payload, once: not when the terminal sent it (SI_KERNEL) to a
/// process group the payload is in too, nor a stop signal (the payload's own to take).
fn pass_on(payload: Pid, sig: Signal, code: i32) {
    if STOPS.contains(&sig) {
        return;
    }
    // SAFETY: getpgid and getpgrp only ask.
    if code == libc::SI_KERNEL && unsafe { libc::getpgid(payload.as_raw()) == libc::getpgrp() } {
        return;
    }
    let _ = nix::sys::signal::kill(payload, sig);
}

/// Tell the shell (if it listens) that the payload stopped, and with which signal.
fn report_stop(payload: Pid, stops: Option<RawFd>) {
    let Some(fd) = stops else { return };
    if let Some(sig) = super::jobctl::stopped_pid(payload.as_raw()) {
        let b = [sig as u8];
        // SAFETY: a one-byte write from a local buffer to our non-blocking pipe; a full
        // pipe (a shell that does not read) just loses the report.
        unsafe { libc::write(fd, b.as_ptr().cast(), 1) };
    }
}

/// Exit with the payload's status; a holding init ends what is left of the tree first
/// (stopped, then killed, as the shell's teardown does), as the kernel does when a pid
/// namespace's init exits.
fn finish(code: i32, holds_tree: bool) -> ! {
    if holds_tree {
        let tree = super::proctree::stop_own_descendants();
        super::proctree::signal_all(&tree, Signal::SIGKILL);
    }
    // SAFETY: _exit ends the process without running Rust or C cleanup that belongs to the
    // launcher.
    unsafe { libc::_exit(code) }
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

fn supervise(payload: Pid, set: &SigSet, stops: Option<RawFd>, shell: Option<i32>) -> ! {
    let holds_tree = shell.is_some();
    loop {
        let Some((sig, code)) = next_signal(set) else {
            continue;
        };
        // SAFETY: getppid takes no arguments.
        if sig == Signal::SIGHUP && shell.is_some_and(|p| unsafe { libc::getppid() } != p) {
            finish(128 + libc::SIGHUP, holds_tree); // the shell died
        }
        if sig != Signal::SIGCHLD {
            pass_on(payload, sig, code);
            continue;
        }
        report_stop(payload, stops);
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
                    // exits (or by `finish`, without one).
                    finish(code, holds_tree);
                }
            }
        }
    }
}
