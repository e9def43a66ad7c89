//! Reading and writing cgroup control files: one `write(2)` per value (the kernel parses
//! each write as a whole), errors naming the file and the value, and hints for the errnos
//! whose cause is specific to cgroups.

use std::io::Write;
use std::path::Path;

use nix::errno::Errno;

use crate::sys::error::{Result, SysError};

/// Read a control file, trailing newline removed.
pub fn read(op: &str, path: &Path) -> Result<String> {
    std::fs::read_to_string(path)
        .map(|s| s.trim_end_matches('\n').to_string())
        .map_err(|e| SysError::io(op, &e).path(path))
}

/// Read a control file that may be missing (a controller or kernel feature absent).
pub fn read_opt(op: &str, path: &Path) -> Result<Option<String>> {
    match read(op, path) {
        Err(e) if e.errno() == Some(Errno::ENOENT) => Ok(None),
        other => other.map(Some),
    }
}

/// Write `value` to a control file that must exist (never creates one).
pub fn write(op: &str, path: &Path, value: &str) -> Result<()> {
    let res = std::fs::OpenOptions::new()
        .write(true)
        .truncate(true)
        .open(path)
        .and_then(|mut f| f.write_all(value.as_bytes()));
    res.map_err(|e| {
        let err = SysError::io(op, &e)
            .path(path)
            .detail(format!("writing {value:?}"));
        match hint(path, err.errno()) {
            Some(h) => err.hint(h),
            None => err,
        }
    })
}

/// The usual cause of a failed write, by file and errno.
fn hint(path: &Path, errno: Option<Errno>) -> Option<String> {
    let file = path.file_name()?.to_str()?;
    let errno = errno?;
    if errno == Errno::ENOENT && path.parent().is_some_and(|d| !d.exists()) {
        return Some("the cgroup no longer exists (it was removed)".into());
    }
    if file == "cpuset.cpus" && matches!(errno, Errno::ERANGE | Errno::EINVAL) {
        let online = std::fs::read_to_string("/sys/devices/system/cpu/online").unwrap_or_default();
        return Some(format!(
            "this machine's CPUs are {} (/sys/devices/system/cpu/online)",
            online.trim()
        ));
    }
    Some(match (file, errno) {
        ("cgroup.procs" | "tasks", Errno::ESRCH) => "no process has that pid",
        ("cgroup.procs" | "tasks", Errno::ENOSPC) => {
            "a v1 cpuset cgroup needs cpuset.cpus and cpuset.mems set before it takes processes"
        }
        ("cgroup.procs", Errno::EOPNOTSUPP | Errno::EBUSY) => {
            "cgroup v2 keeps processes only in leaves: this cgroup has controllers enabled for children"
        }
        ("cgroup.subtree_control", Errno::EBUSY) => {
            "cgroup v2 cannot enable controllers for children of a cgroup that has processes itself (the \"no internal processes\" rule): use a cgroup path in a delegated subtree, or move the processes into a leaf first"
        }
        ("cgroup.subtree_control", Errno::ENOENT) => {
            "the parent cgroup does not offer this controller (see its cgroup.controllers)"
        }
        ("memory.limit_in_bytes" | "memory.max", Errno::EBUSY) => {
            "the cgroup already uses more memory than the new limit"
        }
        ("memory.memsw.limit_in_bytes", Errno::EINVAL) => {
            "memory+swap must not be below memory.limit_in_bytes"
        }
        (_, Errno::EINVAL) => "the kernel rejected the value for this file",
        (_, Errno::ENOENT) => "the file does not exist: the controller is not enabled in this cgroup, or the kernel lacks the feature",
        _ => return None,
    }
    .into())
}
