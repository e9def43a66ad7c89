//! Joining another process's cgroups: for the v2 tree and every mounted v1 hierarchy
//! (`sys::cgroup::Hierarchies`), the `cgroup.procs` file of the target's cgroup there
//! (from /proc/PID/cgroup). The launcher's child writes "0" (itself) to each, before it
//! enters the target's cgroup namespace: from inside, its current cgroup would be outside
//! the namespace and the kernel refuses the move.

use std::path::PathBuf;

use crate::sys::cgroup::layout::{own_path_in, parse_memberships, Membership};
use crate::sys::cgroup::Hierarchies;
use crate::sys::error::{Result, SysError};

/// The cgroup.procs files that put a process where `target` is, leaving out hierarchies
/// where `mine` is the same cgroup already, and those whose mount does not show the
/// target's cgroup (a subtree mount, or a cgroup namespace above it).
pub fn procs_files(h: &Hierarchies, target: &[Membership], mine: &[Membership]) -> Vec<String> {
    let mut out = Vec::new();
    for hier in &h.list {
        let Some(theirs) = own_path_in(target, hier) else {
            continue;
        };
        if own_path_in(mine, hier).as_deref() == Some(theirs.as_str())
            || theirs.ends_with(" (deleted)")
        {
            continue;
        }
        let Ok(dir) = hier.dir_of(&theirs) else {
            continue;
        };
        let file: PathBuf = dir.join("cgroup.procs");
        out.push(file.to_string_lossy().into_owned());
    }
    out
}

/// `procs_files` for process `pid`, against the shell's own cgroups.
pub fn procs_files_of(pid: i32) -> Result<Vec<String>> {
    let h = Hierarchies::detect()?;
    let read = |p: &str| {
        std::fs::read_to_string(p)
            .map(|t| parse_memberships(&t))
            .map_err(|e| SysError::io("read", &e).path(p))
    };
    let target = read(&format!("/proc/{pid}/cgroup"))?;
    let mine = read("/proc/self/cgroup")?;
    Ok(procs_files(&h, &target, &mine))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sys::cgroup::layout::{Hierarchy, Layout, Version};
    use std::path::Path;

    fn hier(
        version: Version,
        mount: &str,
        root: &str,
        ctl: &[&str],
        name: Option<&str>,
    ) -> Hierarchy {
        Hierarchy {
            version,
            mount: Path::new(mount).to_path_buf(),
            root: root.into(),
            controllers: ctl.iter().map(|c| c.to_string()).collect(),
            name: name.map(String::from),
        }
    }

    #[test]
    fn files_for_v2_and_v1_hierarchies() {
        let h = Hierarchies {
            layout: Layout::Hybrid,
            list: vec![
                hier(Version::V2, "/sys/fs/cgroup/unified", "/", &[], None),
                hier(Version::V1, "/sys/fs/cgroup/memory", "/", &["memory"], None),
                hier(Version::V1, "/sys/fs/cgroup/pids", "/sub", &["pids"], None),
                hier(
                    Version::V1,
                    "/sys/fs/cgroup/systemd",
                    "/",
                    &[],
                    Some("systemd"),
                ),
            ],
            self_cgroup: "/proc/self/cgroup".into(),
            delegate_list: "/dev/null".into(),
        };
        let target = parse_memberships("5:pids:/other\n4:memory:/box\n1:name=systemd:/\n0::/box\n");
        let mine = parse_memberships("5:pids:/sub\n4:memory:/\n1:name=systemd:/\n0::/\n");
        assert_eq!(
            procs_files(&h, &target, &mine),
            vec![
                "/sys/fs/cgroup/unified/box/cgroup.procs",
                "/sys/fs/cgroup/memory/box/cgroup.procs"
            ]
        );
        let target = parse_memberships("5:pids:/sub/x\n0::/\n");
        assert_eq!(
            procs_files(&h, &target, &mine),
            vec!["/sys/fs/cgroup/pids/x/cgroup.procs"]
        );
    }
}
