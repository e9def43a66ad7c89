//! cgroup v1 specifics: cpuset inheritance, freezer.state, killing by signals, and the
//! statistics files of the memory, pids and cpuacct controllers.

use std::path::Path;
use std::time::Duration;

use nix::errno::Errno;
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

use super::{file, procs_of, wait_until, Stats};
use crate::sys::error::{Result, SysError};

/// A new v1 cpuset cgroup has empty cpuset.cpus and cpuset.mems and takes no process until
/// both are set: copy whichever is empty from the parent.
pub fn inherit_cpuset(dir: &Path) -> Result<()> {
    let Some(parent) = dir.parent() else {
        return Ok(());
    };
    for name in ["cpuset.cpus", "cpuset.mems"] {
        let own = file::read("cgroup", &dir.join(name))?;
        if own.trim().is_empty() {
            let from = file::read("cgroup", &parent.join(name))?;
            file::write("cgroup", &dir.join(name), from.trim())?;
        }
    }
    Ok(())
}

/// Freeze (FROZEN) or thaw (THAWED) through freezer.state, waiting until the state settles
/// (FREEZING turns into FROZEN once every task stopped; the request is repeated meanwhile,
/// as runc does, because a task that was forking can miss it).
pub fn freeze(dir: &Path, frozen: bool) -> Result<()> {
    let op = if frozen { "freeze" } else { "thaw" };
    let f = dir.join("freezer.state");
    let want = if frozen { "FROZEN" } else { "THAWED" };
    file::write(op, &f, want)?;
    let mut tries = 0u32;
    let settled = wait_until(op, Duration::from_secs(10), || {
        tries += 1;
        let state = file::read(op, &f)?;
        if state.trim() == want {
            return Ok(true);
        }
        if tries.is_multiple_of(20) {
            file::write(op, &f, want)?;
        }
        Ok(false)
    })?;
    if !settled {
        if frozen {
            let _ = file::write(op, &f, "THAWED");
        }
        return Err(SysError::os(op, Errno::ETIMEDOUT)
            .path(&f)
            .detail(format!("the state did not become {want} within 10 s")));
    }
    Ok(())
}

/// SIGKILL every member of `dir` until it is empty. With a freezer directory (the same
/// cgroup in the freezer hierarchy) the members are frozen first so none can fork a new
/// one meanwhile, then thawed so the kills take effect.
pub fn kill_members(dir: &Path, freezer: Option<&Path>) -> Result<()> {
    let mut last = Vec::new();
    let empty = wait_until("kill", Duration::from_secs(10), || {
        let pids = match procs_of(dir) {
            Ok(p) => p,
            Err(e) if e.errno() == Some(Errno::ENOENT) => return Ok(true),
            Err(e) => return Err(e),
        };
        if pids.is_empty() {
            return Ok(true);
        }
        let frozen = freezer.is_some_and(|fz| freeze(fz, true).is_ok());
        for &pid in &pids {
            match kill(Pid::from_raw(pid), Signal::SIGKILL) {
                Ok(()) | Err(Errno::ESRCH) => {}
                Err(e) => return Err(SysError::os("kill", e).name(format!("pid {pid}")).path(dir)),
            }
        }
        if let (true, Some(fz)) = (frozen, freezer) {
            freeze(fz, false)?;
        }
        last = pids;
        Ok(false)
    })?;
    if !empty {
        return Err(SysError::os("kill", Errno::EBUSY)
            .path(dir.join("cgroup.procs"))
            .detail(format!("members left after 10 s of SIGKILL: {last:?}")));
    }
    Ok(())
}

/// Fill what the v1 files of `dir` tell into `s` (fields already set are kept).
pub fn stats(dir: &Path, s: &mut Stats) -> Result<()> {
    let num = |name: &str| -> Result<Option<u64>> {
        Ok(file::read_opt("stats", &dir.join(name))?.and_then(|t| t.trim().parse().ok()))
    };
    s.memory_current = s.memory_current.or(num("memory.usage_in_bytes")?);
    s.memory_peak = s.memory_peak.or(num("memory.max_usage_in_bytes")?);
    if s.oom_kills.is_none() {
        s.oom_kills = file::read_opt("stats", &dir.join("memory.oom_control"))?
            .and_then(|t| super::v2::keyed(&t, "oom_kill"));
    }
    s.pids_current = s.pids_current.or(num("pids.current")?);
    if s.cpu_usec.is_none() {
        s.cpu_usec = num("cpuacct.usage")?.map(|ns| ns / 1000);
    }
    Ok(())
}
