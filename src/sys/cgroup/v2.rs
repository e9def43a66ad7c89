//! cgroup v2 specifics: enabling controllers for children, cgroup.freeze, cgroup.kill,
//! cgroup.events, and the statistics files.

use std::path::{Path, PathBuf};
use std::time::Duration;

use nix::errno::Errno;

use super::{file, wait_until, Stats};
use crate::sys::error::{Result, SysError};

/// Make `controllers` available to the children of `parent`: every cgroup from the
/// hierarchy's mount down to `parent` must list them in cgroup.subtree_control. Only the
/// missing ones are written, all of a directory's in one write.
pub fn enable_controllers(mount: &Path, parent: &Path, controllers: &[&str]) -> Result<()> {
    if controllers.is_empty() {
        return Ok(());
    }
    let rel = parent.strip_prefix(mount).map_err(|_| {
        SysError::invalid("cgroup", "path", "outside the v2 hierarchy").path(parent)
    })?;
    let mut chain = vec![mount.to_path_buf()];
    let mut dir = mount.to_path_buf();
    for c in rel.components() {
        dir.push(c);
        chain.push(dir.clone());
    }
    for d in chain {
        let sc = d.join("cgroup.subtree_control");
        let enabled = file::read("cgroup", &sc)?;
        let missing: Vec<String> = controllers
            .iter()
            .filter(|c| {
                !enabled
                    .split_whitespace()
                    .any(|e| e.trim_start_matches('+') == **c)
            })
            .map(|c| format!("+{c}"))
            .collect();
        if !missing.is_empty() {
            file::write("cgroup", &sc, &missing.join(" "))?;
        }
    }
    Ok(())
}

/// The `key value` lines of a flat-keyed file (cgroup.events, memory.events, cpu.stat).
pub fn keyed(text: &str, key: &str) -> Option<u64> {
    text.lines().find_map(|l| {
        let (k, v) = l.split_once(' ')?;
        (k == key).then(|| v.trim().parse().ok()).flatten()
    })
}

fn event(dir: &Path, key: &str) -> Result<Option<u64>> {
    Ok(keyed(
        &file::read("cgroup", &dir.join("cgroup.events"))?,
        key,
    ))
}

/// Freeze (or thaw) through cgroup.freeze and wait until cgroup.events says it settled.
pub fn freeze(dir: &Path, frozen: bool) -> Result<()> {
    let op = if frozen { "freeze" } else { "thaw" };
    file::write(
        op,
        &dir.join("cgroup.freeze"),
        if frozen { "1" } else { "0" },
    )?;
    let want = u64::from(frozen);
    let settled = wait_until(op, Duration::from_secs(10), || {
        Ok(event(dir, "frozen")? == Some(want))
    })?;
    if !settled {
        return Err(SysError::os(op, Errno::ETIMEDOUT)
            .path(dir.join("cgroup.events"))
            .detail("the cgroup did not settle within 10 s"));
    }
    Ok(())
}

/// Kill every process of the cgroup and its descendants through cgroup.kill. Returns
/// false when the kernel lacks cgroup.kill (before 5.14), so the caller signals instead.
pub fn kill(dir: &Path) -> Result<bool> {
    let f = dir.join("cgroup.kill");
    if !f.exists() {
        return Ok(false);
    }
    file::write("kill", &f, "1")?;
    Ok(true)
}

/// Wait until no process is left in the cgroup or below (cgroup.events `populated 0`).
pub fn wait_empty(op: &str, dir: &Path) -> Result<bool> {
    wait_until(op, Duration::from_secs(10), || {
        Ok(event(dir, "populated")? == Some(0))
    })
}

/// Fill what the v2 files of `dir` tell into `s` (fields already set are kept).
pub fn stats(dir: &Path, s: &mut Stats) -> Result<()> {
    let f = |name: &str| -> PathBuf { dir.join(name) };
    let num = |name: &str| -> Result<Option<u64>> {
        Ok(file::read_opt("stats", &f(name))?.and_then(|t| t.trim().parse().ok()))
    };
    s.memory_current = s.memory_current.or(num("memory.current")?);
    s.memory_peak = s.memory_peak.or(num("memory.peak")?);
    if s.oom_kills.is_none() {
        s.oom_kills =
            file::read_opt("stats", &f("memory.events"))?.and_then(|t| keyed(&t, "oom_kill"));
    }
    s.pids_current = s.pids_current.or(num("pids.current")?);
    if s.cpu_usec.is_none() {
        s.cpu_usec = file::read_opt("stats", &f("cpu.stat"))?.and_then(|t| keyed(&t, "usage_usec"));
    }
    Ok(())
}
