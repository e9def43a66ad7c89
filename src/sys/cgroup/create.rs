//! Creating a cgroup: which hierarchy gets which controller, the directories, v2's
//! subtree_control and v1's cpuset inheritance, the limit writes, and a rollback on failure.

use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::rc::Rc;

use nix::fcntl::{open, OFlag};
use nix::sys::stat::Mode;

use super::layout::{self, Hierarchies, Hierarchy, Layout, Version};
use super::limits::{self, Limits};
use super::{file, path, v1, v2, Cgroup, Dir};
use crate::sys::error::{Result, SysError};

/// What v1 needed a controller for and v2 does in every cgroup.
const V2_CORE: &[&str] = &["freezer", "cpuacct"];

/// Which hierarchy gets which of the `wanted` controllers; v2 is always part of the cgroup
/// when the layout has it, and on a legacy layout the freezer hierarchy is (for freeze and
/// kill).
fn placement<'h>(h: &'h Hierarchies, wanted: &[&str]) -> Result<Vec<(&'h Hierarchy, Vec<String>)>> {
    let mut out: Vec<(&Hierarchy, Vec<String>)> = Vec::new();
    fn add<'h>(out: &mut Vec<(&'h Hierarchy, Vec<String>)>, hier: &'h Hierarchy, c: Option<&str>) {
        let i = match out.iter().position(|(x, _)| *x == hier) {
            Some(i) => i,
            None => {
                out.push((hier, Vec::new()));
                out.len() - 1
            }
        };
        if let Some(c) = c {
            if !out[i].1.iter().any(|x| x == c) {
                out[i].1.push(c.to_string());
            }
        }
    }
    if let Some(v2) = h.v2() {
        add(&mut out, v2, None);
    }
    for &c in wanted {
        // v1 calls the io controller blkio.
        let c = match (c, h.layout) {
            ("io", Layout::Hybrid | Layout::Legacy) if h.v1_with("blkio").is_some() => "blkio",
            ("blkio", Layout::Unified) => "io",
            _ => c,
        };
        let v1 = if h.layout == Layout::Unified {
            None
        } else {
            h.v1_with(c)
        };
        match (v1, h.v2()) {
            (Some(v1), _) => add(&mut out, v1, Some(c)),
            (None, Some(v2)) if v2.has(c) => add(&mut out, v2, Some(c)),
            // v2 freezes (cgroup.freeze) and accounts cpu time (cpu.stat) in its core.
            (None, Some(v2)) if V2_CORE.contains(&c) => add(&mut out, v2, None),
            _ => return Err(lacking(h, c)),
        }
    }
    if h.layout == Layout::Legacy {
        if let Some(fz) = h.v1_with("freezer") {
            add(&mut out, fz, None);
        }
        if out.is_empty() {
            if let Some(first) = h.list.first() {
                add(&mut out, first, None);
            }
        }
    }
    if out.is_empty() {
        return Err(SysError::not_found(
            "cgroup",
            "no cgroup hierarchy is mounted",
        ));
    }
    Ok(out)
}

/// "the hybrid layout has no rdma controller ..."
fn lacking(h: &Hierarchies, c: &str) -> SysError {
    let offers = |hier: &Hierarchy| {
        if hier.controllers.is_empty() {
            "none".to_string()
        } else {
            hier.controllers.join(" ")
        }
    };
    let v1: Vec<String> = h
        .list
        .iter()
        .filter(|x| x.version == Version::V1)
        .map(|x| x.key())
        .collect();
    let where_ = match (h.layout, h.v2()) {
        (Layout::Unified, Some(v2)) => format!(
            "the v2 hierarchy at {} offers: {}",
            v2.mount.display(),
            offers(v2)
        ),
        (_, Some(v2)) => format!(
            "no v1 hierarchy mounts it (mounted: {}) and the v2 tree at {} offers: {}",
            v1.join(", "),
            v2.mount.display(),
            offers(v2)
        ),
        (_, None) => format!("no v1 hierarchy mounts it (mounted: {})", v1.join(", ")),
    };
    SysError::invalid(
        "cgroup",
        c,
        format!(
            "the {} cgroup layout has no {c} controller: {where_}",
            h.layout.name()
        ),
    )
    .hint("the kernel lacks the controller, or it is bound to a hierarchy that is not mounted here")
}

/// Create the directories from `hier`'s mount down to `dir` that do not exist, outermost
/// first; returns those it made.
fn mkdir_p(hier: &Hierarchy, dir: &Path) -> Result<Vec<PathBuf>> {
    let rel = dir.strip_prefix(&hier.mount).unwrap_or(Path::new(""));
    let mut cur = hier.mount.clone();
    let mut made = Vec::new();
    for c in rel.components() {
        cur.push(c);
        match std::fs::create_dir(&cur) {
            Ok(()) => made.push(cur.clone()),
            // A name of an existing control file ("cgroup.procs") is not a cgroup to adopt.
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && !cur.is_dir() => {
                rmdirs(&made);
                return Err(SysError::invalid(
                    "cgroup",
                    "path",
                    format!(
                        "{} is a file (a control file of its cgroup), not a cgroup",
                        cur.display()
                    ),
                ));
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => {
                rmdirs(&made);
                let err = SysError::io("cgroup", &e).path(&cur);
                return Err(if e.raw_os_error() == Some(libc::EROFS) {
                    err.hint(
                        "the cgroup filesystem is mounted read-only here (inside a container?)",
                    )
                } else {
                    err
                });
            }
        }
    }
    Ok(made)
}

/// Remove directories innermost first, ignoring failures (a rollback).
fn rmdirs(dirs: &[PathBuf]) {
    for d in dirs.iter().rev() {
        let _ = std::fs::remove_dir(d);
    }
}

impl Cgroup {
    /// Create (or adopt, where it exists) the cgroup `path` in every hierarchy its limits
    /// and `controllers` need, then apply the limits. A relative path hangs below the
    /// shell's own cgroup of each hierarchy. On failure nothing it created remains.
    pub fn create(
        h: &Hierarchies,
        path: &str,
        limits: &Limits,
        controllers: &[String],
    ) -> Result<Cgroup> {
        path::check("cgroup", "path", path)?;
        let mut wanted: Vec<&str> = limits.controllers();
        for c in controllers {
            if !wanted.contains(&c.as_str()) {
                wanted.push(c);
            }
        }
        let placed = placement(h, &wanted)?;
        let v1_writes = if placed
            .iter()
            .any(|(x, c)| x.version == Version::V1 && !c.is_empty())
        {
            limits::v1_writes(limits)?
        } else {
            Vec::new()
        };
        let memberships = h.memberships()?;
        let mut dirs: Vec<Dir> = Vec::new();
        let result = (|| -> Result<()> {
            for (hier, ctrls) in &placed {
                let home = layout::own_path_in(&memberships, hier);
                let home = match (home, path.starts_with('/')) {
                    (Some(p), _) => p,
                    (None, true) => "/".to_string(),
                    (None, false) => {
                        return Err(SysError::not_found(
                            "cgroup",
                            format!(
                                "the shell has no cgroup in the {} hierarchy to put {path:?} under",
                                hier.key()
                            ),
                        )
                        .path(&h.self_cgroup)
                        .hint("give an absolute path"))
                    }
                };
                let cgpath = path::resolve(&home, path);
                let dir = hier.dir_of(&cgpath)?;
                let created = mkdir_p(hier, &dir)?;
                super::remove::note_parents_made(&created, &dir);
                dirs.push(Dir {
                    hier: (*hier).clone(),
                    cgpath,
                    path: dir.clone(),
                    created,
                    home,
                });
                let d = dirs.last().expect("just pushed");
                match hier.version {
                    Version::V2 => {
                        let parent = dir.parent().unwrap_or(&hier.mount);
                        let names: Vec<&str> = ctrls.iter().map(String::as_str).collect();
                        v2::enable_controllers(&hier.mount, parent, &names)?;
                    }
                    Version::V1 if hier.has("cpuset") => {
                        for made in &d.created {
                            v1::inherit_cpuset(made)?;
                        }
                        if d.created.is_empty() {
                            v1::inherit_cpuset(&dir)?;
                        }
                    }
                    Version::V1 => {}
                }
                let writes = match hier.version {
                    Version::V2 => limits::v2_writes(limits),
                    Version::V1 => v1_writes.clone(),
                };
                for w in writes
                    .iter()
                    .filter(|w| ctrls.iter().any(|c| c == w.controller))
                {
                    let f = dir.join(w.file);
                    if w.optional && !f.exists() {
                        continue;
                    }
                    file::write("cgroup", &f, &w.value).map_err(|e| e.name(w.controller))?;
                }
            }
            Ok(())
        })();
        if let Err(e) = result {
            for d in dirs.iter().rev() {
                rmdirs(&d.created);
            }
            return Err(e);
        }
        let v2_fd = match dirs.iter().find(|d| d.hier.version == Version::V2) {
            Some(d) => Some(Rc::new(open_dir(&d.path)?)),
            None => None,
        };
        Ok(Cgroup {
            layout: h.layout,
            path: dirs[0].cgpath.clone(),
            dirs,
            v2_fd,
            self_cgroup: h.self_cgroup.clone(),
            delegate_list: h.delegate_list.clone(),
        })
    }
}

/// Open a cgroup directory for clone3(CLONE_INTO_CGROUP).
fn open_dir(dir: &Path) -> Result<OwnedFd> {
    open(
        dir,
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| SysError::os("cgroup", e).path(dir))
}
