//! Signal flags: SIGINT, SIGTERM and SIGHUP set a bit that the interpreter checks between
//! steps (`Engine::on_progress`) and blocking calls check on EINTR. While the shell waits
//! for a child, those and SIGQUIT/SIGUSR1/SIGUSR2/SIGWINCH are forwarded to it instead
//! ([`Forwarding`]).
//!
//! The handlers are installed without SA_RESTART so a blocking wait returns EINTR.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use nix::errno::Errno;
use nix::sys::signal::{sigaction, SaFlags, SigAction, SigHandler, SigSet, SigmaskHow, Signal};

use super::error::{Result, SysError};

/// One bit per signal number received and not yet taken.
static PENDING: AtomicU64 = AtomicU64::new(0);

/// The signals that stop a running script. SIGPIPE itself stays ignored (the Rust runtime
/// ignores it); its bit is raised by a print to a closed standard output, so that the
/// script stops as a shell pipeline's writer would (status 141) instead of spinning.
const INTERRUPTS: [Signal; 4] = [
    Signal::SIGINT,
    Signal::SIGTERM,
    Signal::SIGHUP,
    Signal::SIGPIPE,
];

/// The extra signals passed on to a waited-for child.
const FORWARD_ONLY: [Signal; 4] = [
    Signal::SIGQUIT,
    Signal::SIGUSR1,
    Signal::SIGUSR2,
    Signal::SIGWINCH,
];

extern "C" fn on_signal(sig: libc::c_int) {
    if (1..64).contains(&sig) {
        PENDING.fetch_or(1 << sig, Ordering::SeqCst);
    }
}

fn flag_handler() -> SigAction {
    SigAction::new(
        SigHandler::Handler(on_signal),
        SaFlags::empty(),
        SigSet::empty(),
    )
}

/// Install the SIGINT/SIGTERM/SIGHUP handlers (idempotent). SIGPIPE keeps the Rust
/// runtime's SIG_IGN: a write to a pipe whose reader is gone (a child that already exec'd,
/// a closed stdout) is an EPIPE error, never a signal.
pub fn install() -> Result<()> {
    let act = flag_handler();
    for sig in [Signal::SIGINT, Signal::SIGTERM, Signal::SIGHUP] {
        // SAFETY: the handler only updates an atomic, which is async-signal-safe.
        unsafe { sigaction(sig, &act) }
            .map_err(|e| SysError::os("sigaction", e).name(sig.as_str()))?;
    }
    Ok(())
}

/// Take (and clear) one pending interrupting signal (INT, TERM or HUP).
pub fn take() -> Option<Signal> {
    for sig in INTERRUPTS {
        let bit = 1u64 << sig as i32;
        if PENDING.fetch_and(!bit, Ordering::SeqCst) & bit != 0 {
            return Some(sig);
        }
    }
    None
}

/// Take (and clear) every pending signal.
pub fn take_all() -> Vec<Signal> {
    let bits = PENDING.swap(0, Ordering::SeqCst);
    (1..64)
        .filter(|n| bits & (1 << n) != 0)
        .filter_map(|n| Signal::try_from(n).ok())
        .collect()
}

/// Raise the flag as if `sig` had arrived.
pub fn set_pending(sig: Signal) {
    PENDING.fetch_or(1 << sig as i32, Ordering::SeqCst);
}

/// While alive, SIGQUIT/SIGUSR1/SIGUSR2/SIGWINCH are caught too (so they can be passed on
/// to the child being waited for); their previous dispositions come back on drop.
pub struct Forwarding {
    saved: Vec<(Signal, SigAction)>,
}

impl Forwarding {
    pub fn start() -> Forwarding {
        Forwarding {
            saved: catch(&FORWARD_ONLY),
        }
    }
}

impl Drop for Forwarding {
    fn drop(&mut self) {
        restore(&mut self.saved);
    }
}

/// Install the flag handler for `sigs`, returning the dispositions it replaced.
fn catch(sigs: &[Signal]) -> Vec<(Signal, SigAction)> {
    let act = flag_handler();
    let mut saved = Vec::new();
    for &sig in sigs {
        // SAFETY: the handler only updates an atomic.
        if let Ok(old) = unsafe { sigaction(sig, &act) } {
            saved.push((sig, old));
        }
    }
    saved
}

fn restore(saved: &mut Vec<(Signal, SigAction)>) {
    for (sig, old) in saved.drain(..) {
        // SAFETY: restoring the disposition that was there before.
        let _ = unsafe { sigaction(sig, &old) };
    }
}

/// The signals a wait for a child on the terminal also watches (see `jobctl`): SIGCHLD
/// (the child stopped) and SIGCONT (the shell itself was continued).
pub const JOB_SIGNALS: [Signal; 2] = [Signal::SIGCHLD, Signal::SIGCONT];

/// While alive, [`JOB_SIGNALS`] set their flags too. On drop their dispositions come back
/// and their flags are cleared: they concern only that wait.
pub struct JobSignals {
    saved: Vec<(Signal, SigAction)>,
}

impl JobSignals {
    pub fn start() -> JobSignals {
        JobSignals {
            saved: catch(&JOB_SIGNALS),
        }
    }
}

impl Drop for JobSignals {
    fn drop(&mut self) {
        restore(&mut self.saved);
        for sig in JOB_SIGNALS {
            PENDING.fetch_and(!(1u64 << sig as i32), Ordering::SeqCst);
        }
    }
}

/// The signals the shell passes on to a child it waits for (and a pty relay watches, with
/// SIGWINCH resizing the pty): INT, TERM, HUP, QUIT, USR1, USR2, WINCH.
pub fn forwarded() -> SigSet {
    let mut s = SigSet::empty();
    for sig in [
        Signal::SIGWINCH,
        Signal::SIGINT,
        Signal::SIGTERM,
        Signal::SIGHUP,
        Signal::SIGQUIT,
        Signal::SIGUSR1,
        Signal::SIGUSR2,
    ] {
        s.add(sig);
    }
    s
}

/// Blocks `set` while alive (so signals arrive only inside `ppoll`, never lost between a
/// check and the wait); the old mask comes back on drop.
pub struct Blocked {
    pub old: SigSet,
}

impl Blocked {
    pub fn new(set: &SigSet) -> Result<Blocked> {
        let mut old = SigSet::empty();
        nix::sys::signal::sigprocmask(SigmaskHow::SIG_BLOCK, Some(set), Some(&mut old))
            .map_err(|e| SysError::os("sigprocmask", e))?;
        Ok(Blocked { old })
    }
}

impl Drop for Blocked {
    fn drop(&mut self) {
        let _ = nix::sys::signal::sigprocmask(SigmaskHow::SIG_SETMASK, Some(&self.old), None);
    }
}

/// ppoll with the signal mask `mask` while waiting and a deadline. EINTR is Ok(0).
pub fn ppoll(fds: &mut [libc::pollfd], deadline: Option<Instant>, mask: &SigSet) -> Result<usize> {
    let ts = deadline.map(|d| {
        let left = d.saturating_duration_since(Instant::now());
        libc::timespec {
            tv_sec: left.as_secs() as libc::time_t,
            tv_nsec: left.subsec_nanos() as libc::c_long,
        }
    });
    let tsp = ts
        .as_ref()
        .map_or(std::ptr::null(), |t| t as *const libc::timespec);
    // SAFETY: `fds` is a valid array for the call, `tsp` is null or points at a live
    // timespec, and the mask is a valid sigset_t.
    let r = unsafe {
        libc::ppoll(
            fds.as_mut_ptr(),
            fds.len() as libc::nfds_t,
            tsp,
            mask.as_ref() as *const libc::sigset_t,
        )
    };
    if r < 0 {
        let e = Errno::last();
        if e == Errno::EINTR {
            return Ok(0);
        }
        return Err(SysError::os("ppoll", e));
    }
    Ok(r as usize)
}

/// An error for a blocking call cut short by a signal the user sent.
pub fn interrupted_error(op: &str) -> SysError {
    SysError::os(op, nix::errno::Errno::EINTR).detail("interrupted")
}
