//! The one error type of the `sys` layer.
//!
//! Every failure names the operation that failed and, where there is one, the path or
//! object it failed on, plus the errno. The engine turns it into a catchable script error
//! (a map with `message`, `op`, `errno`, `errno_name`, `path`, `name`, `hint`).

use std::fmt;

use nix::errno::Errno;

/// What went wrong, in the terms a script author can act on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ErrorKind {
    /// A system call failed with this errno.
    Os(Errno),
    /// An argument was rejected before any kernel call (bad CIDR, unknown namespace kind...).
    InvalidArgument,
    /// Something the caller named does not exist (not an errno: e.g. a link name in a dump).
    NotFound,
    /// A protocol or parsing failure of data the kernel handed back.
    Protocol,
}

/// A failure in a Linux primitive: what was done (`op`), on what (`path`/`name`), and why.
/// Boxed so `Result<T, SysError>` stays one pointer wide on the error side; the fields are
/// reached through `Deref` (`e.op`, `e.path`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SysError(Box<Details>);

/// The fields of a [`SysError`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Details {
    pub kind: ErrorKind,
    /// The operation, e.g. `mount`, `setns`, `veth`.
    pub op: String,
    /// A filesystem path involved, if any.
    pub path: Option<String>,
    /// An object name involved (interface, namespace kind, argument name), if any.
    pub name: Option<String>,
    /// Extra detail, e.g. "→ /new/proc" or "expected an address like 10.0.0.1/24".
    pub detail: Option<String>,
    /// A hint about the usual cause.
    pub hint: Option<String>,
}

pub type Result<T, E = SysError> = std::result::Result<T, E>;

impl std::ops::Deref for SysError {
    type Target = Details;
    fn deref(&self) -> &Details {
        &self.0
    }
}

impl std::ops::DerefMut for SysError {
    fn deref_mut(&mut self) -> &mut Details {
        &mut self.0
    }
}

impl SysError {
    /// A failed system call.
    pub fn os(op: impl Into<String>, errno: Errno) -> Self {
        Self::new(ErrorKind::Os(errno), op)
    }

    /// The current `errno` as a failed system call.
    pub fn last(op: impl Into<String>) -> Self {
        Self::os(op, Errno::last())
    }

    /// A failed `std::io` operation (its errno, EIO when it has none).
    pub fn io(op: impl Into<String>, e: &std::io::Error) -> Self {
        Self::os(op, Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO)))
    }

    /// An argument rejected before any kernel call. `arg` names the argument.
    pub fn invalid(
        op: impl Into<String>,
        arg: impl Into<String>,
        detail: impl Into<String>,
    ) -> Self {
        let mut e = Self::new(ErrorKind::InvalidArgument, op);
        e.name = Some(arg.into());
        e.detail = Some(detail.into());
        e
    }

    /// Something named does not exist.
    pub fn not_found(op: impl Into<String>, detail: impl Into<String>) -> Self {
        let mut e = Self::new(ErrorKind::NotFound, op);
        e.detail = Some(detail.into());
        e
    }

    /// Data from the kernel that could not be understood.
    pub fn protocol(op: impl Into<String>, detail: impl Into<String>) -> Self {
        let mut e = Self::new(ErrorKind::Protocol, op);
        e.detail = Some(detail.into());
        e
    }

    fn new(kind: ErrorKind, op: impl Into<String>) -> Self {
        SysError(Box::new(Details {
            kind,
            op: op.into(),
            path: None,
            name: None,
            detail: None,
            hint: None,
        }))
    }

    pub fn path(mut self, path: impl AsRef<std::path::Path>) -> Self {
        let path = path.as_ref();
        // Most of ctrsh reads /proc; in a root without it every such error would be a bare
        // ENOENT on a path the user never named.
        if self.errno() == Some(Errno::ENOENT)
            && self.hint.is_none()
            && path.starts_with("/proc")
            && !std::path::Path::new("/proc/self").exists()
        {
            self.hint = Some(
                "/proc is not mounted here and ctrsh needs it: mount(#{ source: \"proc\", \
                 target: \"/proc\", fstype: \"proc\" })"
                    .into(),
            );
        }
        self.path = Some(path.display().to_string());
        self
    }

    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }

    pub fn detail(mut self, detail: impl Into<String>) -> Self {
        self.detail = Some(detail.into());
        self
    }

    pub fn hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }

    /// The errno, when this is a failed system call.
    pub fn errno(&self) -> Option<Errno> {
        match self.kind {
            ErrorKind::Os(e) => Some(e),
            _ => None,
        }
    }

    /// "EPERM", or the empty string when this is not a system call error.
    pub fn errno_name(&self) -> &'static str {
        self.errno().map(errno_name).unwrap_or("")
    }
}

/// The symbolic name of an errno ("EPERM"), as `strerror` lacks it.
pub fn errno_name(e: Errno) -> &'static str {
    // nix's Debug output is the symbolic name; keep a &'static str by matching the common ones
    // and falling back to a leak-free generic name.
    macro_rules! names {
        ($($n:ident),*) => { match e { $(Errno::$n => stringify!($n),)* _ => "EUNKNOWN" } };
    }
    names!(
        EPERM,
        ENOENT,
        ESRCH,
        EINTR,
        EIO,
        ENXIO,
        E2BIG,
        ENOEXEC,
        EBADF,
        ECHILD,
        EAGAIN,
        ENOMEM,
        EACCES,
        EFAULT,
        ENOTBLK,
        EBUSY,
        EEXIST,
        EXDEV,
        ENODEV,
        ENOTDIR,
        EISDIR,
        EINVAL,
        ENFILE,
        EMFILE,
        ENOTTY,
        ETXTBSY,
        EFBIG,
        ENOSPC,
        ESPIPE,
        EROFS,
        EMLINK,
        EPIPE,
        EDOM,
        ERANGE,
        EDEADLK,
        ENAMETOOLONG,
        ENOLCK,
        ENOSYS,
        ENOTEMPTY,
        ELOOP,
        ENOMSG,
        EIDRM,
        ENODATA,
        ETIME,
        ENOLINK,
        EPROTO,
        EBADMSG,
        EOVERFLOW,
        EILSEQ,
        EUSERS,
        ENOTSOCK,
        EDESTADDRREQ,
        EMSGSIZE,
        EPROTOTYPE,
        ENOPROTOOPT,
        EPROTONOSUPPORT,
        ESOCKTNOSUPPORT,
        EOPNOTSUPP,
        EPFNOSUPPORT,
        EAFNOSUPPORT,
        EADDRINUSE,
        EADDRNOTAVAIL,
        ENETDOWN,
        ENETUNREACH,
        ENETRESET,
        ECONNABORTED,
        ECONNRESET,
        ENOBUFS,
        EISCONN,
        ENOTCONN,
        ESHUTDOWN,
        ETIMEDOUT,
        ECONNREFUSED,
        EHOSTDOWN,
        EHOSTUNREACH,
        EALREADY,
        EINPROGRESS,
        ESTALE,
        EDQUOT,
        ECANCELED,
        EOWNERDEAD,
        ENOTRECOVERABLE,
        ENOKEY,
        EKEYEXPIRED,
        EKEYREVOKED,
        EKEYREJECTED,
        ENOMEDIUM,
        EMEDIUMTYPE
    )
}

impl fmt::Display for SysError {
    /// `op(path, name): detail: EPERM (Operation not permitted)`
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.op)?;
        let objs: Vec<&str> = [self.path.as_deref(), self.name.as_deref()]
            .into_iter()
            .flatten()
            .collect();
        if !objs.is_empty() {
            write!(f, "({})", objs.join(", "))?;
        }
        if let Some(d) = &self.detail {
            write!(f, ": {d}")?;
        }
        match &self.kind {
            ErrorKind::Os(e) => write!(f, ": {} ({})", errno_name(*e), e.desc()),
            ErrorKind::InvalidArgument | ErrorKind::NotFound | ErrorKind::Protocol => Ok(()),
        }
    }
}

impl std::error::Error for SysError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_names_op_object_and_errno() {
        let e = SysError::os("mount", Errno::EPERM)
            .path("/proc")
            .detail("→ /new/proc");
        assert_eq!(
            e.to_string(),
            "mount(/proc): → /new/proc: EPERM (Operation not permitted)"
        );
        assert_eq!(e.errno_name(), "EPERM");
    }

    #[test]
    fn invalid_argument_has_no_errno() {
        let e = SysError::invalid("veth", "name_a", "longer than 15 bytes");
        assert_eq!(e.errno(), None);
        assert_eq!(e.errno_name(), "");
        assert_eq!(e.to_string(), "veth(name_a): longer than 15 bytes");
    }
}
