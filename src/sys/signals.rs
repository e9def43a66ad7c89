//! Interrupt flags: SIGINT and SIGTERM set an atomic flag that the interpreter checks
//! between steps (`Engine::on_progress`) and blocking calls check on EINTR.
//!
//! The handlers are installed without SA_RESTART so a blocking wait returns EINTR.

use std::sync::atomic::{AtomicI32, Ordering};

use nix::sys::signal::{sigaction, SaFlags, SigAction, SigHandler, SigSet, Signal};

use super::error::{Result, SysError};

/// The last interrupting signal received and not yet taken, or 0.
static PENDING: AtomicI32 = AtomicI32::new(0);

extern "C" fn on_signal(sig: libc::c_int) {
    PENDING.store(sig, Ordering::SeqCst);
}

/// Install the SIGINT/SIGTERM/SIGHUP handlers (idempotent).
pub fn install() -> Result<()> {
    let act = SigAction::new(
        SigHandler::Handler(on_signal),
        SaFlags::empty(),
        SigSet::empty(),
    );
    for sig in [Signal::SIGINT, Signal::SIGTERM, Signal::SIGHUP] {
        // SAFETY: the handler only stores into an atomic, which is async-signal-safe.
        unsafe { sigaction(sig, &act) }
            .map_err(|e| SysError::os("sigaction", e).name(sig.as_str()))?;
    }
    Ok(())
}

/// Restore the default dispositions (in a child about to exec or run as a payload).
pub fn reset_defaults() {
    let act = SigAction::new(SigHandler::SigDfl, SaFlags::empty(), SigSet::empty());
    for sig in [
        Signal::SIGINT,
        Signal::SIGTERM,
        Signal::SIGHUP,
        Signal::SIGPIPE,
    ] {
        // SAFETY: restoring SIG_DFL installs no Rust code as a handler.
        let _ = unsafe { sigaction(sig, &act) };
    }
    PENDING.store(0, Ordering::SeqCst);
}

/// The pending interrupting signal, if any, without clearing it.
pub fn pending() -> Option<Signal> {
    match PENDING.load(Ordering::SeqCst) {
        0 => None,
        n => Signal::try_from(n).ok(),
    }
}

/// Take (and clear) the pending interrupting signal.
pub fn take() -> Option<Signal> {
    match PENDING.swap(0, Ordering::SeqCst) {
        0 => None,
        n => Signal::try_from(n).ok(),
    }
}

/// Raise the flag as if `sig` had arrived (used when a child reports an interrupt).
pub fn set_pending(sig: Signal) {
    PENDING.store(sig as i32, Ordering::SeqCst);
}

/// An error for a blocking call cut short by a signal the user sent.
pub fn interrupted_error(op: &str) -> SysError {
    SysError::os(op, nix::errno::Errno::EINTR).detail("interrupted")
}
