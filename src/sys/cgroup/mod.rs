//! Cgroups v2 and v1 behind one type: a [`Cgroup`] is one cgroup path with a directory in
//! every hierarchy it needs (the v2 tree, plus the v1 hierarchies of the controllers its
//! limits use). Plain file I/O only; the hierarchies are a parameter ([`Hierarchies`]), so
//! the translation is tested against a fake cgroupfs in a temporary directory.

pub mod file;
pub mod layout;
pub mod limits;
pub mod path;
pub mod reset;
pub mod v1;
pub mod v2;

#[cfg(test)]
mod tests;

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::fs::chown;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::fcntl::{open, OFlag};
use nix::sys::stat::Mode;

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

    /// Stop every process of the cgroup, waiting until all are stopped.
    pub fn freeze(&self) -> Result<()> {
        match self.freezer()? {
            (d, Version::V2) => v2::freeze(&d.path, true),
            (d, Version::V1) => v1::freeze(&d.path, true),
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
        let text = file::read("cgroup", &self.self_cgroup)?;
        let ms = layout::parse_memberships(&text);
        Ok(self.dirs.iter().find(|d| {
            layout::own_path_in(&ms, &d.hier).is_some_and(|p| path::is_within(&p, &d.cgpath))
        }))
    }

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

/// Open a cgroup directory for clone3(CLONE_INTO_CGROUP).
fn open_dir(dir: &Path) -> Result<OwnedFd> {
    open(
        dir,
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| SysError::os("cgroup", e).path(dir))
}
