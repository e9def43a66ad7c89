//! Ending a cgroup: killing its members (cgroup.kill, or signals on v1), moving the shell
//! out of it, and removing its directories children first.

use std::path::{Path, PathBuf};
use std::time::Duration;

use nix::errno::Errno;

use super::layout::{self, Version};
use super::{file, path, v1, v2, wait_until, Cgroup, Dir};
use crate::sys::error::{Result, SysError};

impl Cgroup {
    /// SIGKILL every process in the cgroup and below, in every hierarchy, and wait until it
    /// is empty. Refuses when the shell itself is inside.
    pub fn kill(&self) -> Result<()> {
        if let Some(d) = self.holds_shell()? {
            return Err(SysError::invalid(
                "kill",
                "cgroup",
                format!("the shell itself is in {} ({})", d.cgpath, d.hier.key()),
            )
            .hint("move the shell out first (reset_cgroup), or kill from a forked child"));
        }
        self.kill_all()
    }

    fn kill_all(&self) -> Result<()> {
        let freezer = self
            .dirs
            .iter()
            .find(|d| d.hier.version == Version::V1 && d.hier.has("freezer"))
            .map(|d| d.path.clone());
        for d in &self.dirs {
            kill_tree(d.hier.version, &d.path, freezer.as_deref())?;
        }
        Ok(())
    }

    /// Remove the cgroup in every hierarchy: move the shell out if it is inside, kill every
    /// member, remove child cgroups first, then the directories this handle created above
    /// the leaf (when nothing else uses them). Reports the first failure after trying all.
    pub fn remove(&self) -> Result<()> {
        self.remove_dirs(|_| true)
    }

    /// Teardown at the end of a recipe: like [`remove`](Self::remove), but only in the
    /// hierarchies where this handle created the cgroup.
    pub fn remove_created(&self) -> Result<()> {
        self.remove_dirs(|d| !d.created.is_empty())
    }

    fn remove_dirs(&self, which: impl Fn(&Dir) -> bool) -> Result<()> {
        let mut first = None;
        let mut note = |r: Result<()>| {
            if let Err(e) = r {
                first.get_or_insert(e);
            }
        };
        note(self.evacuate_shell());
        let freezer = self
            .dirs
            .iter()
            .find(|d| d.hier.version == Version::V1 && d.hier.has("freezer") && which(d))
            .map(|d| d.path.clone());
        for d in self.dirs.iter().filter(|d| which(d)) {
            note(remove_tree(d.hier.version, &d.path, freezer.as_deref()));
            // Parents this handle made, innermost first; another cgroup may still use one.
            for p in d.created.iter().rev().filter(|p| **p != d.path) {
                match std::fs::remove_dir(p) {
                    Ok(()) => {}
                    Err(e)
                        if matches!(
                            e.raw_os_error(),
                            Some(libc::EBUSY | libc::ENOTEMPTY | libc::ENOENT)
                        ) => {}
                    Err(e) => note(Err(SysError::io("remove", &e).path(p))),
                }
            }
        }
        // Parents another handle of this process made and could not remove then (this one
        // still used them): the last one out removes them.
        for d in self.dirs.iter().filter(|d| which(d)) {
            remove_orphaned_parents(&d.path);
        }
        match first {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    /// If the shell is inside the cgroup, move it back to where it was when the handle was
    /// made (or next to the cgroup, when that was inside too).
    fn evacuate_shell(&self) -> Result<()> {
        let text = file::read("remove", &self.self_cgroup)?;
        let ms = layout::parse_memberships(&text);
        for d in &self.dirs {
            let Some(now) = layout::own_path_in(&ms, &d.hier) else {
                continue;
            };
            if !path::is_within(&now, &d.cgpath) {
                continue;
            }
            let target = if !path::is_within(&d.home, &d.cgpath) {
                d.home.clone()
            } else {
                let top = d.created.first().unwrap_or(&d.path);
                let rel = top.strip_prefix(&d.hier.mount).unwrap_or(top);
                let parent = Path::new("/").join(rel);
                parent
                    .parent()
                    .map_or("/".into(), |p| p.display().to_string())
            };
            let dir = d.hier.dir_of(&target)?;
            file::write("remove", &dir.join("cgroup.procs"), "0")
                .map_err(|e| e.detail("moving the shell out of the cgroup it removes"))?;
        }
        Ok(())
    }
}

/// Kill every member of `dir` and of its descendants, and wait until none is left.
fn kill_tree(version: Version, dir: &Path, freezer: Option<&Path>) -> Result<()> {
    match version {
        Version::V2 => {
            if !v2::kill(dir)? {
                v1::kill_members(dir, None)?;
            }
            if !v2::wait_empty("kill", dir)? {
                return Err(SysError::os("kill", Errno::EBUSY)
                    .path(dir.join("cgroup.events"))
                    .detail("processes are left after 10 s"));
            }
            Ok(())
        }
        Version::V1 => {
            for sub in subdirs(dir)? {
                kill_tree(version, &sub, None)?;
            }
            v1::kill_members(dir, freezer)
        }
    }
}

/// The child cgroups of `dir`.
fn subdirs(dir: &Path) -> Result<Vec<PathBuf>> {
    let rd = match std::fs::read_dir(dir) {
        Ok(rd) => rd,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(SysError::io("remove", &e).path(dir)),
    };
    Ok(rd
        .flatten()
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
        .map(|e| e.path())
        .collect())
}

/// Remove a cgroup directory and its child cgroups, children first, killing members.
fn remove_tree(version: Version, dir: &Path, freezer: Option<&Path>) -> Result<()> {
    if !dir.exists() {
        return Ok(());
    }
    for sub in subdirs(dir)? {
        remove_tree(version, &sub, None)?;
    }
    kill_tree(version, dir, freezer)?;
    // A killed task leaves the cgroup when it has exited; rmdir says EBUSY until then.
    let mut last = None;
    let gone = wait_until(
        "remove",
        Duration::from_secs(5),
        || match std::fs::remove_dir(dir) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(true),
            Err(e) if e.raw_os_error() == Some(libc::EBUSY) => {
                last = Some(e);
                Ok(false)
            }
            Err(e) => Err(SysError::io("remove", &e).path(dir)),
        },
    )?;
    if !gone {
        let e = last.map_or(SysError::os("remove", Errno::EBUSY), |e| {
            SysError::io("remove", &e)
        });
        return Err(e.path(dir).detail("still busy after 5 s"));
    }
    Ok(())
}

thread_local! {
    /// Intermediate directories any cgroup handle of this process created (not the leaves).
    static PARENTS_MADE: std::cell::RefCell<Vec<PathBuf>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Remember the parents a handle created above its leaf `leaf`.
pub(super) fn note_parents_made(created: &[PathBuf], leaf: &Path) {
    PARENTS_MADE.with(|m| {
        let mut m = m.borrow_mut();
        for p in created.iter().filter(|p| p.as_path() != leaf) {
            if !m.contains(p) {
                m.push(p.clone());
            }
        }
    });
}

/// Remove the parents of `leaf` that this process made, innermost first, while they are
/// empty; a parent still in use stays (and is tried again by the next removal).
fn remove_orphaned_parents(leaf: &Path) {
    PARENTS_MADE.with(|m| {
        let mut m = m.borrow_mut();
        let mut mine: Vec<PathBuf> = m.iter().filter(|p| leaf.starts_with(p)).cloned().collect();
        mine.sort_by_key(|p| std::cmp::Reverse(p.components().count()));
        for p in mine {
            match std::fs::remove_dir(&p) {
                Ok(()) => m.retain(|q| q != &p),
                Err(e) if e.raw_os_error() == Some(libc::ENOENT) => m.retain(|q| q != &p),
                Err(_) => break, // still used: its own parents are too
            }
        }
    });
}
