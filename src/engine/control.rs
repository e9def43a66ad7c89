//! How a script run ends: normally, by `exit(n)`, by an uncaught error, or by a signal.
//!
//! `exit(n)` and interrupts travel as `ErrorTerminated` (which `try`/`catch` cannot catch)
//! carrying one of the markers below, so they unwind through every script frame.

use nix::sys::signal::Signal;
use rhai::{Dynamic, EvalAltResult, Position};

/// The value of an `exit(n)` on its way out.
#[derive(Debug, Clone, Copy)]
pub struct ExitRequest(pub i32);

/// A SIGINT/SIGTERM/SIGHUP that stopped the script.
#[derive(Debug, Clone, Copy)]
pub struct Interrupt(pub Signal);

/// The error that ends the script with exit status `code`.
pub fn exit_err(code: i32) -> Box<EvalAltResult> {
    EvalAltResult::ErrorTerminated(Dynamic::from(ExitRequest(code)), Position::NONE).into()
}

/// The error that ends the script because `sig` arrived.
pub fn interrupt_err(sig: Signal) -> Box<EvalAltResult> {
    EvalAltResult::ErrorTerminated(Dynamic::from(Interrupt(sig)), Position::NONE).into()
}

/// What a finished evaluation means for the process.
#[derive(Debug)]
pub enum Outcome {
    /// Finished; the value of the last statement.
    Value(Dynamic),
    /// `exit(n)`.
    Exit(i32),
    /// Stopped by a signal (exit status 128 + signal, as shells report it).
    Interrupted(Signal),
    /// An uncaught error.
    Error(Box<EvalAltResult>),
}

impl Outcome {
    pub fn from_result(r: Result<Dynamic, Box<EvalAltResult>>) -> Outcome {
        match r {
            Ok(v) => Outcome::Value(v),
            Err(e) => match innermost(&e) {
                EvalAltResult::ErrorTerminated(v, _) if v.is::<ExitRequest>() => {
                    Outcome::Exit(v.clone_cast::<ExitRequest>().0)
                }
                EvalAltResult::ErrorTerminated(v, _) if v.is::<Interrupt>() => {
                    Outcome::Interrupted(v.clone_cast::<Interrupt>().0)
                }
                // rhai's own `exit(value)` from lang_core, should a script reach it.
                EvalAltResult::Exit(v, _) => {
                    Outcome::Exit(v.as_int().map(|n| n as i32).unwrap_or(0))
                }
                _ => Outcome::Error(e),
            },
        }
    }

    /// The process exit status for this outcome.
    pub fn status(&self) -> i32 {
        match self {
            Outcome::Value(_) => 0,
            Outcome::Exit(n) => *n,
            Outcome::Interrupted(sig) => 128 + *sig as i32,
            Outcome::Error(_) => 1,
        }
    }
}

/// The innermost error under `ErrorInFunctionCall` / `ErrorInModule` wrappers.
pub fn innermost(e: &EvalAltResult) -> &EvalAltResult {
    match e {
        EvalAltResult::ErrorInFunctionCall(_, _, inner, _)
        | EvalAltResult::ErrorInModule(_, inner, _) => innermost(inner),
        other => other,
    }
}
