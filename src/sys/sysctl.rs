//! sysctl without a `sysctl` process: read and write /proc/sys/<key with dots as slashes>.
//! Per-namespace keys (net.*) are seen through the namespace of the process that opens the
//! file, so for another network namespace the shell enters it (under an `NsGuard`, which
//! always brings it back) just for the open.

use std::fs::OpenOptions;
use std::io::{Read, Write};

use super::error::{Result, SysError};
use super::ns::{NsFd, NsGuard};

/// Check a key like "net.ipv4.ip_forward" and give its /proc/sys path.
pub fn path_of(op: &str, key: &str) -> Result<String> {
    let bad = |why: &str| SysError::invalid(op, "key", format!("{key:?}: {why}"));
    if key.is_empty() {
        return Err(bad("a sysctl key cannot be empty"));
    }
    if key.contains('/') {
        return Err(bad(
            "write keys with dots (net.ipv4.ip_forward), not slashes",
        ));
    }
    if key.contains("..") || key.starts_with('.') || key.ends_with('.') {
        return Err(bad("empty component (\"..\" or a leading or trailing dot)"));
    }
    if let Some(c) = key
        .chars()
        .find(|c| c.is_whitespace() || c.is_control() || *c == '\0')
    {
        return Err(bad(&format!("contains {c:?}")));
    }
    Ok(format!("/proc/sys/{}", key.replace('.', "/")))
}

fn with_ns<T>(ns: Option<&NsFd>, f: impl FnOnce() -> Result<T>) -> Result<T> {
    let guard = match ns {
        Some(n) => Some(NsGuard::enter(&[n])?),
        None => None,
    };
    let r = f();
    if let Some(g) = guard {
        g.restore()?;
    }
    r
}

fn io_err(op: &str, key: &str, path: &str, e: &std::io::Error) -> SysError {
    let err = SysError::io(op, e).name(key).path(path);
    match e.raw_os_error() {
        Some(libc::ENOENT) => err.hint(
            "no such sysctl in this kernel or namespace (net.* keys are per network namespace)",
        ),
        Some(libc::EACCES) | Some(libc::EPERM) => {
            err.hint("read-only key, or not allowed in this namespace")
        }
        Some(libc::EINVAL) => err.hint("the kernel refused the value"),
        _ => err,
    }
}

/// The value of `key` (trailing newline removed), seen from namespace `ns` (or here).
pub fn read(ns: Option<&NsFd>, key: &str) -> Result<String> {
    let path = path_of("sysctl", key)?;
    let s = with_ns(ns, || {
        let mut file = OpenOptions::new()
            .read(true)
            .open(&path)
            .map_err(|e| io_err("sysctl", key, &path, &e))?;
        let mut s = String::new();
        file.read_to_string(&mut s)
            .map_err(|e| io_err("sysctl", key, &path, &e))?;
        Ok(s)
    })?;
    Ok(s.trim_end_matches('\n').to_string())
}

/// Set `key` to `value` in namespace `ns` (or here).
pub fn write(ns: Option<&NsFd>, key: &str, value: &str) -> Result<()> {
    let path = path_of("sysctl", key)?;
    if value.contains('\0') {
        return Err(SysError::invalid("sysctl", "value", "contains a NUL byte"));
    }
    with_ns(ns, || {
        let mut file = OpenOptions::new()
            .write(true)
            .open(&path)
            .map_err(|e| io_err("sysctl", key, &path, &e))?;
        // One write, as sysctl(8) does: /proc/sys parses the whole buffer at once.
        file.write_all(value.as_bytes()).map_err(|e| {
            let err = io_err("sysctl", key, &path, &e).detail(format!("writing {value:?}"));
            if e.raw_os_error() == Some(libc::EINVAL) {
                err.hint(format!("the kernel refused {value:?} for {key}: see its current value for the form it takes"))
            } else {
                err
            }
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_map_to_proc_sys_and_bad_ones_are_refused() {
        assert_eq!(
            path_of("sysctl", "net.ipv4.ip_forward").unwrap(),
            "/proc/sys/net/ipv4/ip_forward"
        );
        for bad in [
            "",
            "net/ipv4/ip_forward",
            "net..ipv4",
            ".net",
            "net.",
            "net.ipv4 x",
            "../x",
        ] {
            assert!(path_of("sysctl", bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn reading_a_key_here() {
        assert!(!read(None, "kernel.ostype").unwrap().is_empty());
    }
}
