//! Script-visible errors: a `SysError` becomes a catchable Rhai error whose value is a map
//! (`message`, `op`, `errno`, `errno_name`, `path`, `name`, `hint`, `kind`).

use rhai::{Dynamic, EvalAltResult, Map, Position};

use crate::sys::error::{ErrorKind, SysError};

/// The result type of every native script function.
pub type RResult<T> = Result<T, Box<EvalAltResult>>;

/// Convert a `sys` failure into a catchable script error. The position is filled in by the
/// interpreter at the call site.
pub fn sys_err(mut e: SysError) -> Box<EvalAltResult> {
    if e.hint.is_none() {
        if let Some(h) = e.errno().and_then(generic_hint) {
            e.hint = Some(h.to_string());
        }
    }
    EvalAltResult::ErrorRuntime(error_map(&e).into(), Position::NONE).into()
}

/// An argument error raised by the engine layer itself (wrong shape of a script value).
pub fn arg_err(op: &str, arg: &str, detail: impl Into<String>) -> Box<EvalAltResult> {
    sys_err(SysError::invalid(op, arg, detail))
}

/// The map a script sees in `catch (e)`.
pub fn error_map(e: &SysError) -> Map {
    let mut m = Map::new();
    m.insert("message".into(), e.to_string().into());
    m.insert("op".into(), e.op.clone().into());
    m.insert(
        "errno".into(),
        e.errno().map_or(Dynamic::UNIT, |n| Dynamic::from(n as i64)),
    );
    m.insert(
        "errno_name".into(),
        e.errno().map_or(Dynamic::UNIT, |_| e.errno_name().into()),
    );
    let kind = match e.kind {
        ErrorKind::Os(_) => "os",
        ErrorKind::InvalidArgument => "invalid_argument",
        ErrorKind::NotFound => "not_found",
        ErrorKind::Protocol => "protocol",
    };
    m.insert("kind".into(), kind.into());
    for (key, val) in [
        ("path", &e.path),
        ("name", &e.name),
        ("hint", &e.hint),
        ("detail", &e.detail),
    ] {
        if let Some(v) = val {
            m.insert(key.into(), v.clone().into());
        }
    }
    m
}

/// Extension to turn `sys::Result` into `RResult` with `?`.
pub trait IntoScript<T> {
    fn script(self) -> RResult<T>;
}

impl<T> IntoScript<T> for Result<T, SysError> {
    fn script(self) -> RResult<T> {
        self.map_err(sys_err)
    }
}

/// Read an integer argument that must fit a smaller type, naming the argument when it does not.
pub fn int_arg<T: TryFrom<i64>>(op: &str, arg: &str, v: i64) -> RResult<T> {
    T::try_from(v).map_err(|_| arg_err(op, arg, format!("{v} is out of range")))
}

/// A hint for errnos whose usual cause is the same whatever the call.
fn generic_hint(errno: nix::errno::Errno) -> Option<&'static str> {
    use nix::errno::Errno;
    Some(match errno {
        Errno::EPERM if !nix::unistd::geteuid().is_root() => {
            "ctrsh is not running as root: run it with sudo, or create a user namespace first (\"user\" in ns)"
        }
        Errno::EPERM => "the kernel refused: a missing capability in the namespace that owns the object, or a security module",
        Errno::ENOSYS => "this kernel lacks the system call",
        Errno::EBUSY => "something still uses it (a mount, a process, or an open file)",
        Errno::ESRCH => "the process has exited",
        _ => return None,
    })
}
