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

/// The name a script author knows a type by (`int`, `float`, `string`, `array`, `map`,
/// `bool`, `Process` ...), from the Rust names rhai reports: `Dynamic::type_name()` and the
/// `Err` of `as_int()`/`into_string()` (`i64`, `f64`, `ctrsh::engine::process::Process`),
/// and the argument types of its "function not found" signatures (`&str | ImmutableString |
/// String`). Every message that names a value's type goes through here.
pub fn script_type(rust: &str) -> &str {
    let t = rust.trim();
    let t = t.strip_prefix("&mut ").unwrap_or(t);
    // A generic type by its outer name: `alloc::vec::Vec<...Dynamic>` is an array.
    let base = t.split('<').next().unwrap_or(t);
    let last = base.rsplit("::").next().unwrap_or(base);
    match last {
        "i64" | "i32" | "i16" | "i8" | "u64" | "u32" | "u16" | "u8" | "isize" | "usize" | "INT" => {
            "int"
        }
        "f64" | "f32" | "FLOAT" => "float",
        "&str" | "str" | "String" | "ImmutableString" | "&str | ImmutableString | String" => {
            "string"
        }
        "Array" | "Vec" => "array",
        "Map" | "BTreeMap" => "map",
        "Blob" => "blob",
        "FnPtr" => "Fn",
        "Dynamic" => "any",
        _ => last,
    }
}

/// The script name of a value's type ([`script_type`] of rhai's name for it).
pub fn type_of(v: &Dynamic) -> &'static str {
    script_type(v.type_name())
}

/// A script type name with its article, for sentences: "an int", "a string", "()".
pub fn a_type(name: &str) -> String {
    let name = script_type(name);
    match name.chars().next() {
        Some(c) if c.is_ascii_alphabetic() => {
            // Short capitalised type names are read letter by letter ("an Ns", "an Fd").
            let spelled = name.len() <= 2 && c.is_ascii_uppercase();
            let vowel = if spelled {
                "AEFHILMNORSX".contains(c)
            } else {
                "aeiouAEIOU".contains(c)
            };
            format!("{} {name}", if vowel { "an" } else { "a" })
        }
        _ => name.to_string(),
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rust_type_names_become_script_names() {
        for (rust, script) in [
            ("i64", "int"),
            ("f64", "float"),
            ("&str | ImmutableString | String", "string"),
            ("ImmutableString", "string"),
            ("alloc::string::String", "string"),
            ("&str", "string"),
            ("string", "string"),
            ("array", "array"),
            ("alloc::vec::Vec<rhai::types::dynamic::Dynamic>", "array"),
            ("map", "map"),
            ("bool", "bool"),
            ("()", "()"),
            ("ctrsh::engine::process::Process", "Process"),
            ("&mut ctrsh::engine::ns::Ns", "Ns"),
        ] {
            assert_eq!(script_type(rust), script, "{rust}");
        }
        assert_eq!(type_of(&Dynamic::from(1_i64)), "int");
        assert_eq!(type_of(&Dynamic::from(1.5_f64)), "float");
        assert_eq!(a_type("i64"), "an int");
        assert_eq!(a_type("string"), "a string");
        assert_eq!(a_type("array"), "an array");
        assert_eq!(a_type("ctrsh::engine::ns::Ns"), "an Ns");
        assert_eq!(a_type("ctrsh::engine::process::Process"), "a Process");
        assert_eq!(a_type("()"), "()");
    }
}
