//! Cgroup paths as scripts write them ("box", "/ctrsh/box") and control file names.

use crate::sys::error::{Result, SysError};

/// Check a cgroup path: absolute or relative, made of plain names only (no "..", ".",
/// empty components, NUL or control characters), and not the root itself.
pub fn check(op: &str, arg: &str, path: &str) -> Result<()> {
    let bad = |why: &str| {
        SysError::invalid(op, arg, format!("{path:?}: {why}"))
            .hint("cgroup paths look like \"box\" (under the shell's own cgroup) or \"/ctrsh/box\"")
    };
    if path.is_empty() {
        return Err(bad("the path is empty"));
    }
    if path.contains('\0') {
        return Err(bad("the path contains a NUL byte"));
    }
    // The kernel refuses a newline (it would break /proc/PID/cgroup's one-line format);
    // other control characters are refused as well, to keep names printable.
    if let Some(c) = path.chars().find(|c| c.is_control()) {
        return Err(bad(&format!(
            "the path contains the control character {c:?}"
        )));
    }
    if path == "/sys/fs/cgroup" || path.starts_with("/sys/fs/cgroup/") {
        return Err(SysError::invalid(
            op,
            arg,
            format!("{path:?} is a filesystem path, not a cgroup path"),
        )
        .hint("a cgroup path is the path inside the hierarchy, as /proc/self/cgroup shows it: \"/ctrsh/box\", not \"/sys/fs/cgroup/ctrsh/box\""));
    }
    let rel = path.strip_prefix('/').unwrap_or(path);
    if rel.is_empty() {
        return Err(bad(
            "names the root cgroup, which cannot be created or removed",
        ));
    }
    for comp in rel.split('/') {
        match comp {
            "" => return Err(bad("has an empty component (\"//\" or a trailing \"/\")")),
            "." => return Err(bad("has a \".\" component")),
            ".." => return Err(bad("has a \"..\" component; cgroup paths may not climb")),
            _ => {}
        }
    }
    Ok(())
}

/// The absolute cgroup path of `path` (already checked) seen from `own`, the shell's cgroup.
pub fn resolve(own: &str, path: &str) -> String {
    if path.starts_with('/') {
        return path.to_string();
    }
    let own = own.trim_end_matches('/');
    format!("{own}/{path}")
}

/// Check a control file name ("memory.max", "cgroup.procs", "tasks").
pub fn check_file(op: &str, file: &str) -> Result<()> {
    if file.is_empty() || file == "." || file == ".." || file.contains('/') || file.contains('\0') {
        return Err(
            SysError::invalid(op, "file", format!("{file:?} is not a control file name")).hint(
                "name one file of the cgroup directory, e.g. \"memory.max\" or \"cgroup.procs\"",
            ),
        );
    }
    Ok(())
}

/// Whether cgroup path `inner` is `outer` or below it.
pub fn is_within(inner: &str, outer: &str) -> bool {
    let outer = outer.trim_end_matches('/');
    inner == outer
        || outer.is_empty()
        || inner
            .strip_prefix(outer)
            .is_some_and(|rest| rest.starts_with('/'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_plain_names() {
        assert!(check("cgroup", "path", "box").is_ok());
        assert!(check("cgroup", "path", "/ctrsh/box").is_ok());
        for bad in [
            "",
            "/",
            "a/../b",
            "..",
            "a//b",
            "a/",
            "./a",
            "a\0b",
            "np\nz",
            "a\tb",
            "/sys/fs/cgroup/box",
            "/sys/fs/cgroup/unified/box",
        ] {
            let e = check("cgroup", "path", bad).unwrap_err();
            assert_eq!(e.name.as_deref(), Some("path"), "{bad:?}");
        }
        let e = check("cgroup", "path", "a/../b").unwrap_err();
        assert!(e.to_string().contains(".."), "{e}");
    }

    #[test]
    fn relative_paths_hang_below_the_own_cgroup() {
        assert_eq!(resolve("/", "box"), "/box");
        assert_eq!(
            resolve("/user.slice/s.scope", "a/b"),
            "/user.slice/s.scope/a/b"
        );
        assert_eq!(resolve("/user.slice", "/abs"), "/abs");
    }

    #[test]
    fn within() {
        assert!(is_within("/a/b", "/a"));
        assert!(is_within("/a", "/a"));
        assert!(!is_within("/ab", "/a"));
        assert!(is_within("/x", "/"));
    }

    #[test]
    fn file_names() {
        assert!(check_file("get", "memory.max").is_ok());
        for bad in ["", "..", "../x", "a/b"] {
            assert!(check_file("get", bad).is_err(), "{bad:?}");
        }
    }
}
