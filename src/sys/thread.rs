//! The process must stay single-threaded: `unshare(CLONE_NEWUSER)` and `setns` into a user
//! or mount namespace fail with EINVAL in a multi-threaded process, and ctrsh forks.

use super::error::{Result, SysError};

/// How many threads this process has, from /proc/self/status.
pub fn thread_count() -> Result<usize> {
    let status = std::fs::read_to_string("/proc/self/status")
        .map_err(|e| SysError::io("read", &e).path("/proc/self/status"))?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("Threads:"))
        .and_then(|v| v.trim().parse().ok())
        .ok_or_else(|| SysError::protocol("read", "no Threads: line").path("/proc/self/status"))
}

/// Fail with a clear error when the process has grown a second thread.
pub fn assert_single_threaded(op: &str) -> Result<()> {
    match thread_count()? {
        1 => Ok(()),
        n => Err(SysError::invalid(
            op,
            "process",
            format!("ctrsh has {n} threads; {op} needs exactly one"),
        )
        .hint(
            "something started a thread; ctrsh must stay single-threaded for unshare/setns/fork",
        )),
    }
}
