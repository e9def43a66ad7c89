//! Cgroups v2 and v1 behind one type: a [`Cgroup`] is one cgroup path with a directory in
//! every hierarchy it needs (the v2 tree, plus the v1 hierarchies of the controllers its
//! limits use). Plain file I/O only; the hierarchies are a parameter ([`Hierarchies`]), so
//! the translation is tested against a fake cgroupfs in a temporary directory.

mod create;
pub mod file;
pub mod layout;
pub mod limits;
pub mod path;
mod remove;
pub mod reset;
pub mod v1;
pub mod v2;

/// Whether the memberships `ms` (of /proc/self/cgroup) put the process in `d` or below.
fn shell_within(ms: &[layout::Membership], d: &Dir) -> bool {
    layout::own_path_in(ms, &d.hier).is_some_and(|p| path::is_within(&p, &d.cgpath))
}

#[cfg(test)]
mod tests;

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::fs::chown;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::time::{Duration, Instant};

pub use layout::{Hierarchies, Hierarchy, Layout, Version};
pub use limits::{Limits, LIMIT_KEYS};

use crate::sys::error::{Result, SysError};
use crate::sys::signals;

/// The directory of a cgroup in one hierarchy.
#[derive(Debug, Clone)]
pub struct Dir {
    pub hier: Hierarchy,
    /// The cgroup path inside the hierarchy ("/box").
    pub cgpath: String,
    /// Its directory.
    pub path: PathBuf,
    /// Directories this handle created, outermost first (the leaf last); empty when the
    /// cgroup existed already.
    pub created: Vec<PathBuf>,
    /// The shell's cgroup in this hierarchy when the handle was made: where the shell goes
    /// back to when a removal finds it inside.
    pub home: String,
}

/// What `.stats()` reports; a field is `None` when no hierarchy of the cgroup has its file.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Stats {
    pub memory_current: Option<u64>,
    pub memory_peak: Option<u64>,
    pub oom_kills: Option<u64>,
    pub pids_current: Option<u64>,
    pub cpu_usec: Option<u64>,
}

/// One cgroup across the hierarchies it lives in.
#[derive(Debug, Clone)]
pub struct Cgroup {
    pub layout: Layout,
    /// The path in the first hierarchy (the v2 one when there is one).
    pub path: String,
    /// v2 first when present.
    pub dirs: Vec<Dir>,
    /// The v2 directory, opened O_RDONLY|O_DIRECTORY (clone3's CLONE_INTO_CGROUP takes it).
    v2_fd: Option<Rc<OwnedFd>>,
    self_cgroup: PathBuf,
    delegate_list: PathBuf,
}

/// Poll `done` with growing pauses (1 to 20 ms) until it holds or `timeout` passes.
/// Returns whether it held; a pending Ctrl-C/SIGTERM cuts the wait short with EINTR.
pub(crate) fn wait_until(
    op: &str,
    timeout: Duration,
    mut done: impl FnMut() -> Result<bool>,
) -> Result<bool> {
    let start = Instant::now();
    let mut pause = Duration::from_millis(1);
    loop {
        if done()? {
            return Ok(true);
        }
        if start.elapsed() >= timeout {
            return Ok(false);
        }
        if let Some(sig) = signals::take() {
            // Leave it pending: the interpreter stops the script on it.
            signals::set_pending(sig);
            return Err(signals::interrupted_error(op));
        }
        std::thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(20));
    }
}

/// The pids listed in a cgroup directory's cgroup.procs.
pub fn procs_of(dir: &Path) -> Result<Vec<i32>> {
    let text = file::read("procs", &dir.join("cgroup.procs"))?;
    Ok(text
        .split_whitespace()
        .filter_map(|p| p.parse().ok())
        .collect())
}

impl Cgroup {
    /// The first directory (v2 when there is one).
    pub fn primary(&self) -> &Dir {
        &self.dirs[0]
    }

    pub fn v2(&self) -> Option<&Dir> {
        self.dirs.iter().find(|d| d.hier.version == Version::V2)
    }

    /// The v2 directory's fd, for clone3(CLONE_INTO_CGROUP).
    pub fn v2_fd(&self) -> Option<BorrowedFd<'_>> {
        self.v2_fd.as_ref().map(|fd| fd.as_fd())
    }

    /// The directory holding `controller`'s files: its v1 hierarchy, else the v2 one.
    pub fn dir_for(&self, controller: &str) -> Option<&Dir> {
        self.dirs
            .iter()
            .find(|d| d.hier.version == Version::V1 && d.hier.has(controller))
            .or_else(|| self.v2())
    }

    /// Whether any directory was created by this handle (and so is removed at the end).
    pub fn created_any(&self) -> bool {
        self.dirs.iter().any(|d| !d.created.is_empty())
    }

    /// The directory a raw control file is in, by its controller prefix: "cgroup.*" in the
    /// first hierarchy, "memory.*" in the memory hierarchy (v1) or the v2 tree, files without
    /// a prefix ("tasks") in the first v1 directory.
    pub fn dir_for_file(&self, op: &str, name: &str) -> Result<&Dir> {
        path::check_file(op, name)?;
        let found = match name.split_once('.') {
            Some(("cgroup", _)) => Some(self.primary()),
            Some((ctrl, _)) => self.dir_for(ctrl),
            None => self.dirs.iter().find(|d| d.hier.version == Version::V1),
        };
        found.ok_or_else(|| {
            let have: Vec<String> = self.dirs.iter().map(|d| d.hier.key()).collect();
            SysError::invalid(
                op,
                name,
                format!(
                    "no hierarchy of this cgroup holds it (the cgroup is in: {}; layout {})",
                    have.join(", "),
                    self.layout.name()
                ),
            )
            .hint("create the cgroup with limits or controllers that need that controller")
        })
    }

    /// Read a raw control file.
    pub fn read(&self, name: &str) -> Result<String> {
        let d = self.dir_for_file("get", name)?;
        file::read("get", &d.path.join(name))
    }

    /// Write a raw control file.
    pub fn write(&self, name: &str, value: &str) -> Result<()> {
        let d = self.dir_for_file("set", name)?;
        file::write("set", &d.path.join(name), value)
    }

    /// Move process `pid` into the cgroup in every hierarchy.
    pub fn add_pid(&self, pid: i32) -> Result<()> {
        for d in &self.dirs {
            file::write("add", &d.path.join("cgroup.procs"), &pid.to_string())
                .map_err(|e| e.name(format!("pid {pid}")))?;
        }
        Ok(())
    }

    /// The pids in the cgroup (its first hierarchy).
    pub fn procs(&self) -> Result<Vec<i32>> {
        procs_of(&self.primary().path)
    }

    /// The v2 directory, else the freezer one: where freeze and thaw happen.
    fn freezer(&self) -> Result<(&Dir, Version)> {
        if let Some(d) = self.v2() {
            return Ok((d, Version::V2));
        }
        self.dirs
            .iter()
            .find(|d| d.hier.has("freezer"))
            .map(|d| (d, Version::V1))
            .ok_or_else(|| {
                SysError::invalid(
                    "freeze",
                    "freezer",
                    format!(
                        "the cgroup has no v2 directory and no v1 freezer one (layout {})",
                        self.layout.name()
                    ),
                )
                .hint("mount the v1 freezer hierarchy, or create the cgroup with controllers: [\"freezer\"]")
            })
    }

    /// Stop every process of the cgroup, waiting until all are stopped. Refuses when the
    /// shell itself is inside: it would stop with nobody left to thaw it.
    pub fn freeze(&self) -> Result<()> {
        let (d, version) = self.freezer()?;
        if shell_within(&self.shell_memberships()?, d) {
            return Err(SysError::invalid(
                "freeze",
                "cgroup",
                format!(
                    "the shell itself is in {} ({}): it would stop with nobody to thaw it",
                    d.cgpath,
                    d.hier.key()
                ),
            )
            .hint("move the shell out first (reset_cgroup), or freeze from a forked child"));
        }
        match version {
            Version::V2 => v2::freeze(&d.path, true),
            Version::V1 => v1::freeze(&d.path, true),
        }
    }

    /// Let the processes of a frozen cgroup run again.
    pub fn thaw(&self) -> Result<()> {
        match self.freezer()? {
            (d, Version::V2) => v2::freeze(&d.path, false),
            (d, Version::V1) => v1::freeze(&d.path, false),
        }
    }

    /// Whether the shell itself is in the cgroup (or below it) in some hierarchy.
    pub fn holds_shell(&self) -> Result<Option<&Dir>> {
        let ms = self.shell_memberships()?;
        Ok(self.dirs.iter().find(|d| shell_within(&ms, d)))
    }

    fn shell_memberships(&self) -> Result<Vec<layout::Membership>> {
        let text = file::read("cgroup", &self.self_cgroup)?;
        Ok(layout::parse_memberships(&text))
    }

    /// Counters of the cgroup: memory use and peak, OOM kills, tasks, cpu time.
    pub fn stats(&self) -> Result<Stats> {
        let mut s = Stats::default();
        for d in self.dirs.iter().filter(|d| d.hier.version == Version::V1) {
            v1::stats(&d.path, &mut s)?;
        }
        if let Some(d) = self.v2() {
            v2::stats(&d.path, &mut s)?;
        }
        Ok(s)
    }

    /// Hand the cgroup to `uid:gid` so it can manage its own subtree: the directory and, on
    /// v2, cgroup.procs, cgroup.subtree_control, cgroup.threads and the files the kernel
    /// lists in /sys/kernel/cgroup/delegate; on v1, cgroup.procs and tasks.
    pub fn delegate(&self, uid: u32, gid: u32) -> Result<()> {
        let own = |p: &Path| {
            chown(p, Some(uid), Some(gid)).map_err(|e| {
                SysError::io("delegate", &e)
                    .path(p)
                    .name(format!("{uid}:{gid}"))
            })
        };
        for d in &self.dirs {
            own(&d.path)?;
            let mut files: Vec<String> = match d.hier.version {
                Version::V2 => ["cgroup.procs", "cgroup.subtree_control", "cgroup.threads"]
                    .map(String::from)
                    .to_vec(),
                Version::V1 => ["cgroup.procs", "tasks"].map(String::from).to_vec(),
            };
            if d.hier.version == Version::V2 {
                if let Some(list) = file::read_opt("delegate", &self.delegate_list)? {
                    for name in list.split_whitespace() {
                        if !files.iter().any(|f| f == name) {
                            files.push(name.to_string());
                        }
                    }
                }
            }
            for name in files {
                let f = d.path.join(&name);
                if f.exists() {
                    own(&f)?;
                }
            }
        }
        Ok(())
    }
}
