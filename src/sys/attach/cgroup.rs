//! Joining another process's cgroups: for the v2 hierarchy and every mounted v1 hierarchy
//! in /proc/PID/cgroup, the `cgroup.procs` file of its cgroup, found through the shell's
//! cgroup mounts. The launcher's child writes "0" (itself) to each, before it enters the
//! target's cgroup namespace (from inside, its current cgroup would be outside the
//! namespace and the kernel refuses the move).
//!
//! (A small reader of its own: the cgroup domain's `sys::cgroup` is on another branch;
//! this needs only membership, not limits.)

use crate::sys::error::Result;
use crate::sys::mountinfo::{self, MountEntry};
use crate::sys::procfs::{self, CgroupLine};

/// The mount that shows hierarchy `line` (cgroup2 for id 0, else the v1 mount whose
/// superblock options name every controller of the line).
fn mount_for<'m>(line: &CgroupLine, mounts: &'m [MountEntry]) -> Option<&'m MountEntry> {
    mounts.iter().find(|m| {
        if line.id == 0 {
            return m.fstype == "cgroup2";
        }
        m.fstype == "cgroup"
            && line
                .controllers
                .iter()
                .all(|c| m.super_opts.split(',').any(|o| o == c))
    })
}

/// The cgroup.procs files that put a process into `target`'s cgroups, leaving out the
/// hierarchies where the shell already is in the same cgroup, and hierarchies that are
/// not mounted (or mounted from a subtree that does not hold the target's cgroup).
pub fn procs_files(
    target: &[CgroupLine],
    mine: &[CgroupLine],
    mounts: &[MountEntry],
) -> Vec<String> {
    let mut out = Vec::new();
    for line in target {
        if mine.contains(line) || line.path.ends_with(" (deleted)") {
            continue;
        }
        let Some(m) = mount_for(line, mounts) else {
            continue;
        };
        let root = m.root.trim_end_matches('/');
        let Some(rel) = line.path.strip_prefix(root) else {
            continue;
        };
        if !rel.is_empty() && !rel.starts_with('/') {
            continue;
        }
        let file = format!(
            "{}{}/cgroup.procs",
            m.target.trim_end_matches('/'),
            rel.trim_end_matches('/')
        );
        if !out.contains(&file) {
            out.push(file);
        }
    }
    out
}

/// `procs_files` for process `pid`, against the shell's own cgroups and mounts.
pub fn procs_files_of(pid: i32) -> Result<Vec<String>> {
    let target = procfs::cgroups(pid)?;
    let mine = procfs::cgroups(std::process::id() as i32)?;
    let mounts = mountinfo::read(0)?;
    Ok(procs_files(&target, &mine, &mounts))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_for_v2_and_v1_hierarchies() {
        let mounts = mountinfo::parse(
            "31 23 0:28 / /sys/fs/cgroup rw - tmpfs tmpfs rw\n\
             35 31 0:31 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n\
             36 31 0:32 / /sys/fs/cgroup/cpu,cpuacct rw - cgroup cgroup rw,cpu,cpuacct\n\
             37 31 0:33 /sub /sys/fs/cgroup/pids rw - cgroup cgroup rw,pids\n\
             40 31 0:36 / /sys/fs/cgroup/unified rw - cgroup2 cgroup2 rw\n",
        )
        .unwrap();
        let target = procfs::parse_cgroups(
            "5:pids:/other\n4:memory:/box\n3:cpu,cpuacct:/\n2:freezer:/x\n0::/box\n",
        );
        let mine = procfs::parse_cgroups("4:memory:/\n3:cpu,cpuacct:/\n0::/\n");
        assert_eq!(
            procs_files(&target, &mine, &mounts),
            vec![
                "/sys/fs/cgroup/memory/box/cgroup.procs",
                "/sys/fs/cgroup/unified/box/cgroup.procs"
            ]
        );
        let target = procfs::parse_cgroups("5:pids:/sub/x\n0::/\n");
        assert_eq!(
            procs_files(&target, &mine, &mounts),
            vec!["/sys/fs/cgroup/pids/x/cgroup.procs"]
        );
        let target = procfs::parse_cgroups("0::/\n");
        let mine = procfs::parse_cgroups("0::/a\n");
        assert_eq!(
            procs_files(&target, &mine, &mounts),
            vec!["/sys/fs/cgroup/unified/cgroup.procs"]
        );
    }
}
