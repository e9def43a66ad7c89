//! ctrtool's container-rootfs-mount as a plan: a tmpfs root built from scratch.
//!
//! # Interface for the process launcher (spawn)
//!
//! ```text
//! let plan: Rootfs = ...;              // plain data; building it has no side effects
//! // in the child, after unshare(CLONE_NEWNS) (and CLONE_NEWPID for a private /proc):
//! rootfs::enter(&plan)?;               // = make / private, build(&plan, STAGING), pivot_into(STAGING, false)
//! // or in two steps, with a directory of your choice:
//! rootfs::build(&plan, "/some/dir")?;  // the caller's mount namespace must not be shared
//! rootfs::pivot_into("/some/dir", mount_proc)?;
//! ```
//! For `spawn(#{ rootfs: "/some/dir" })` (an existing tree) the child calls
//! `mount::pivot_into(dir, mount_proc)` only. `engine::rootfs::rootfs_arg` reads the
//! script value (a `Rootfs`, its spec map, or a directory) into `RootArg::{Plan, Dir}`.
//!
//! `build` first clones every bind source as a detached mount tree (so a source under the
//! staging directory is not hidden by the new root), then mounts the root tmpfs, then
//! creates everything inside it through `safepath` (a symlink in a source tree never makes
//! it create or mount outside the root). On failure the half-built root is detached.
//! Without the fd mount API (kernels before 5.2, or `CTRSH_LEGACY_MOUNT=1`) the same plan is
//! built with mount(2): sources are held as O_PATH fds instead of detached clones, and every
//! mount goes onto a mount point found inside the root (`Place::InRoot`).
//! `pivot_into` pivots, detaches the old root, chdirs to / and mounts /proc if asked.
//!
//! Order of building: `_fsroot_ro`/`_fsroot_rw` binds and their top-level links, /dev,
//! /tmp, run_dirs, then the entries in the order given, then proc, sysfs, devpts, mqueue,
//! and last the optional read-only remount of the root.

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::path::Path;
use std::rc::Rc;

use super::error::{Result, SysError};
use super::fsmount::{self, FsBuilder, ATTR_NODEV, ATTR_NOEXEC, ATTR_NOSUID, ATTR_RDONLY};
use super::mount::{self, Attrs, Place, TmpfsOpts};
use super::ns::NsFd;
use super::safepath;

/// Where `enter` builds the root before pivoting into it (inside the child's private mount
/// namespace; bind sources are cloned before it is covered).
pub const STAGING: &str = "/tmp";

/// One thing to create in the root.
#[derive(Clone)]
pub enum Entry {
    Dir {
        path: String,
        mode: u32,
    },
    File {
        path: String,
        content: Vec<u8>,
        mode: u32,
    },
    Symlink {
        target: String,
        path: String,
    },
    Bind(Bind),
    Tmpfs {
        path: String,
        opts: TmpfsOpts,
    },
}

/// A bind mount from the host into the root.
#[derive(Clone)]
pub struct Bind {
    /// Host path (absolute).
    pub src: String,
    /// Path inside the root.
    pub dst: String,
    pub recursive: bool,
    pub attrs: Attrs,
    /// Skip it quietly when `src` does not exist (like bwrap's --ro-bind-try).
    pub optional: bool,
    pub idmap: Option<Rc<NsFd>>,
}

/// The `_fsroot_ro`/`_fsroot_rw` scheme: the read-only and read-write sources are bound at
/// /_fsroot_ro and /_fsroot_rw, and top-level names become symlinks into one of them.
#[derive(Clone, Default)]
pub struct FsRoot {
    pub ro: Option<String>,
    pub rw: Option<String>,
    /// Names linked into _fsroot_rw instead of _fsroot_ro (e.g. "var"); each is made in the
    /// `rw` tree when it is missing there. Needs `rw`.
    pub rw_dirs: Vec<String>,
    /// Names to link; empty = every top-level entry of the sources. Plain top-level names
    /// only (no '/', not "." or "..", not `_fsroot_*`): `validate` refuses others.
    pub links: Vec<String>,
}

/// The whole plan.
#[derive(Clone)]
pub struct Rootfs {
    pub size: Option<String>,
    pub mode: u32,
    pub entries: Vec<Entry>,
    pub tmp: bool,
    pub run_dirs: Vec<String>,
    pub proc: bool,
    pub sysfs: bool,
    pub devpts: bool,
    pub mqueue: bool,
    pub dev: bool,
    pub fsroot: Option<FsRoot>,
    pub readonly: bool,
}

impl Default for Rootfs {
    fn default() -> Self {
        Rootfs {
            size: None,
            mode: 0o755,
            entries: Vec::new(),
            tmp: false,
            run_dirs: Vec::new(),
            proc: false,
            sysfs: false,
            devpts: false,
            mqueue: false,
            dev: false,
            fsroot: None,
            readonly: false,
        }
    }
}

/// Device nodes of the minimal /dev, bound from the host.
pub const DEV_NODES: &[&str] = &["null", "zero", "full", "random", "urandom", "tty"];

impl Rootfs {
    /// A one-line description for printing.
    pub fn describe(&self) -> String {
        let mut parts = vec![format!("{} entries", self.entries.len())];
        for (on, name) in [
            (self.dev, "dev"),
            (self.proc, "proc"),
            (self.sysfs, "sysfs"),
            (self.devpts, "devpts"),
            (self.mqueue, "mqueue"),
            (self.tmp, "tmp"),
            (self.readonly, "readonly"),
        ] {
            if on {
                parts.push(name.to_string());
            }
        }
        if self.fsroot.is_some() {
            parts.push("fsroot".into());
        }
        if let Some(s) = &self.size {
            parts.push(format!("size={s}"));
        }
        parts.join(", ")
    }

    /// The top-level names the rootfs makes itself (dev, proc ...): fsroot links skip them.
    fn made_names(&self) -> Vec<&'static str> {
        [
            (self.dev, "dev"),
            (self.proc, "proc"),
            (self.sysfs, "sys"),
            (self.tmp, "tmp"),
            (!self.run_dirs.is_empty(), "run"),
        ]
        .into_iter()
        .filter_map(|(on, n)| on.then_some(n))
        .collect()
    }

    /// Check the plan without touching anything: absolute host paths, sane modes.
    pub fn validate(&self) -> Result<()> {
        if let Some(s) = &self.size {
            mount::parse_size(s).map_err(|e| e.name("size"))?;
        }
        if self.mode > 0o7777 {
            return Err(SysError::invalid(
                "rootfs",
                "mode",
                format!("{:o} is not a file mode", self.mode),
            ));
        }
        for (i, e) in self.entries.iter().enumerate() {
            if let Entry::Bind(b) = e {
                mount::need_absolute("rootfs", "src", &b.src).map_err(|err| at_entry(err, i, e))?;
            }
        }
        if let Some(f) = &self.fsroot {
            for p in [&f.ro, &f.rw].into_iter().flatten() {
                mount::need_absolute("rootfs", "fsroot", p)?;
            }
            let reserved = self.made_names();
            for n in &f.links {
                top_level_name("fsroot.links", n)?;
                if reserved.contains(&n.as_str()) {
                    return Err(SysError::invalid(
                        "rootfs",
                        "fsroot.links",
                        format!("{n:?} is made by the rootfs itself (its {n} option): leave it out of links"),
                    ));
                }
            }
            for n in &f.rw_dirs {
                top_level_name("fsroot.rw_dirs", n)?;
            }
            if !f.rw_dirs.is_empty() && f.rw.is_none() {
                return Err(SysError::invalid(
                    "rootfs",
                    "fsroot.rw_dirs",
                    "rw_dirs are linked into the read-write source, and there is none: \
                     give fsroot.rw too",
                ));
            }
        }
        Ok(())
    }
}

impl Entry {
    /// What an error about this entry calls it: "dir /a", "bind /usr → /usr".
    pub fn describe(&self) -> String {
        match self {
            Entry::Dir { path, .. } => format!("dir {path}"),
            Entry::File { path, .. } => format!("file {path}"),
            Entry::Symlink { path, .. } => format!("symlink {path}"),
            Entry::Bind(b) => format!("bind {} → {}", b.src, b.dst),
            Entry::Tmpfs { path, .. } => format!("tmpfs {path}"),
        }
    }
}

/// `e` as the failure of `entries[i]`: the error says which entry (its index and op).
fn at_entry(e: SysError, i: usize, entry: &Entry) -> SysError {
    let what = format!("entries[{i}] ({})", entry.describe());
    let detail = match e.detail.as_deref() {
        // A bind's errors already describe it ("bind /usr → /usr").
        Some(d) if d == entry.describe() => what,
        Some(d) => format!("{what}: {d}"),
        None => what,
    };
    e.detail(detail)
}

/// A name of the `_fsroot_` scheme (`links`, `rw_dirs`): one plain top-level name, as the
/// symlink is made at `/NAME` and points to `_fsroot_ro/NAME` or `_fsroot_rw/NAME`.
fn top_level_name(arg: &str, name: &str) -> Result<()> {
    let why = if name.is_empty() {
        "an empty name".to_string()
    } else if name == "." || name == ".." {
        format!("{name:?} is not a name of the root; give plain top-level names like \"var\"")
    } else if name.contains('/') {
        let plain = name.trim_matches('/');
        let hint = if !plain.is_empty() && !plain.contains('/') {
            format!("write \"{plain}\"")
        } else {
            "only top-level names are linked, like \"var\"".to_string()
        };
        format!("{name:?} is not a plain top-level name (it has a '/'): {hint}")
    } else if name.starts_with("_fsroot_") {
        format!("{name:?}: names starting with _fsroot_ are the scheme's own mounts")
    } else if name.contains('\0') {
        format!("{name:?} contains a NUL byte")
    } else {
        return Ok(());
    };
    Err(SysError::invalid("rootfs", arg, why))
}

/// A bind source cloned before the root exists. Without the fd mount API (`legacy`) it is
/// the source opened O_PATH, bound with mount(2) when attached: an fd opened before the
/// root covers the staging directory still names what was there.
struct Prepared {
    tree: OwnedFd,
    is_dir: bool,
    legacy: Option<LegacyBind>,
}

struct LegacyBind {
    src: String,
    recursive: bool,
    attrs: Attrs,
}

fn prepare(b: &Bind) -> Result<Option<Prepared>> {
    let sfd = match mount::open_source("rootfs", "src", &b.src) {
        Ok(fd) => fd,
        Err(e) if b.optional && e.errno() == Some(nix::errno::Errno::ENOENT) => return Ok(None),
        Err(e) => return Err(e.detail(format!("bind {} → {}", b.src, b.dst))),
    };
    let is_dir = safepath::is_dir(sfd.as_fd())?;
    let ctx = |e: SysError| e.path(&b.src).detail(format!("bind {} → {}", b.src, b.dst));
    if !fsmount::available() {
        if b.idmap.is_some() {
            return Err(ctx(SysError::os("bind", nix::errno::Errno::ENOSYS)
                .name("idmap")
                .detail("id-mapped mounts need mount_setattr(2)")));
        }
        return Ok(Some(Prepared {
            tree: sfd,
            is_dir,
            legacy: Some(LegacyBind {
                src: b.src.clone(),
                recursive: b.recursive,
                attrs: b.attrs,
            }),
        }));
    }
    let tree = fsmount::clone_tree(sfd.as_fd(), b.recursive).map_err(ctx)?;
    let bits = b.attrs.bits();
    if bits != 0 {
        fsmount::setattr(tree.as_fd(), b.recursive, bits, 0, None).map_err(ctx)?;
    }
    if let Some(ns) = &b.idmap {
        fsmount::setattr(tree.as_fd(), b.recursive, 0, 0, Some(ns.as_fd())).map_err(ctx)?;
    }
    Ok(Some(Prepared {
        tree,
        is_dir,
        legacy: None,
    }))
}

fn attach_at(root: BorrowedFd<'_>, p: &Prepared, dst: &str) -> Result<()> {
    if let Some(l) = &p.legacy {
        let o = mount::BindOpts {
            recursive: l.recursive,
            attrs: l.attrs,
            idmap: None,
        };
        return mount::bind_fd(p.tree.as_fd(), &l.src, Place::InRoot(root, dst), o);
    }
    let t = safepath::mount_point(root, dst, !p.is_dir).map_err(|e| e.name("dst"))?;
    fsmount::attach(p.tree.as_fd(), t.as_fd()).map_err(|e| e.path(dst))
}

fn bind_plan(src: &str, dst: &str, ro: bool, dev: bool) -> Bind {
    Bind {
        src: src.into(),
        dst: dst.into(),
        recursive: true,
        attrs: Attrs {
            ro,
            nosuid: true,
            nodev: !dev,
            noexec: false,
        },
        optional: false,
        idmap: None,
    }
}

/// Build the root described by `plan` on the directory `target` (which must exist).
pub fn build(plan: &Rootfs, target: &str) -> Result<()> {
    plan.validate()?;
    mount::need_absolute("rootfs", "target", target)?;
    // 1. Clone every source first: nothing the root covers later can hide one.
    let mut fsroot_trees: Vec<(&'static str, Prepared)> = Vec::new();
    if let Some(f) = &plan.fsroot {
        for (name, src, ro) in [("_fsroot_ro", &f.ro, true), ("_fsroot_rw", &f.rw, false)] {
            if let Some(s) = src {
                let p = prepare(&bind_plan(s, name, ro, false))?.expect("not optional");
                fsroot_trees.push((name, p));
            }
        }
    }
    let mut devs = Vec::new();
    if plan.dev {
        for n in DEV_NODES {
            let host = format!("/dev/{n}");
            let mut b = bind_plan(&host, &host, false, true);
            b.recursive = false;
            b.optional = true;
            if let Some(p) = prepare(&b)? {
                devs.push((host, p));
            }
        }
    }
    let mut prepared: Vec<Option<Prepared>> = Vec::new();
    for (i, e) in plan.entries.iter().enumerate() {
        prepared.push(match e {
            Entry::Bind(b) => prepare(b).map_err(|err| at_entry(err, i, e))?,
            _ => None,
        });
    }
    // 2. The root itself: a tmpfs, nosuid and nodev (device nodes come as bind mounts).
    let root_opts = TmpfsOpts {
        size: plan
            .size
            .as_ref()
            .map(|s| mount::parse_size(s))
            .transpose()?,
        mode: Some(plan.mode),
        uid: None,
        gid: None,
        attrs: Attrs {
            ro: false,
            nosuid: true,
            nodev: true,
            noexec: false,
        },
    };
    let root = if fsmount::available() {
        let root = mount::tmpfs_detached("rootfs", &root_opts)?;
        let tfd = safepath::open_dir(Path::new(target)).map_err(|e| e.name("target"))?;
        fsmount::attach(root.as_fd(), tfd.as_fd()).map_err(|e| e.path(target))?;
        root
    } else {
        mount::tmpfs(Place::Host(target), &root_opts)?;
        safepath::open_dir(Path::new(target)).map_err(|e| e.name("target"))?
    };
    // 3. Fill it; on failure take the half-built root away again.
    let r = fill(plan, root.as_fd(), fsroot_trees, devs, prepared);
    if let Err(e) = r {
        let _ = rustix::mount::unmount(
            target,
            rustix::mount::UnmountFlags::DETACH | rustix::mount::UnmountFlags::NOFOLLOW,
        );
        return Err(e);
    }
    Ok(())
}

fn fill(
    plan: &Rootfs,
    root: BorrowedFd<'_>,
    fsroot_trees: Vec<(&'static str, Prepared)>,
    devs: Vec<(String, Prepared)>,
    prepared: Vec<Option<Prepared>>,
) -> Result<()> {
    let reserved = plan.made_names();
    if let Some(f) = &plan.fsroot {
        for (name, p) in &fsroot_trees {
            attach_at(root, p, name)?;
        }
        // The names to link, each with the source it was listed from (the read-only one
        // first, as ctrtool links), or None where it is still to be looked for.
        let names: Vec<(String, Option<&str>)> = if f.links.is_empty() {
            let mut n: Vec<(String, Option<&str>)> = Vec::new();
            for (side, _) in &fsroot_trees {
                let d = safepath::open_in(
                    root,
                    side,
                    rustix::fs::OFlags::RDONLY | rustix::fs::OFlags::DIRECTORY,
                )?;
                for ent in rustix::fs::Dir::read_from(&d)
                    .map_err(|e| safepath::rx("read_dir", e).path(*side))?
                {
                    let ent = ent.map_err(|e| safepath::rx("read_dir", e).path(*side))?;
                    let s = ent.file_name().to_string_lossy().into_owned();
                    if s != "." && s != ".." && !n.iter().any(|(x, _)| *x == s) {
                        n.push((s, Some(*side)));
                    }
                }
            }
            for d in &f.rw_dirs {
                if !n.iter().any(|(x, _)| x == d) {
                    n.push((d.clone(), None));
                }
            }
            n.sort();
            n
        } else {
            f.links.iter().map(|l| (l.clone(), None)).collect()
        };
        // The read-write tree, where each linked rw_dir is made if it is missing (so its link
        // does not dangle); resolved inside that tree, whatever symlinks it holds.
        // (validate made sure rw_dirs come with rw.)
        let rw_tree = if f.rw_dirs.is_empty() {
            None
        } else {
            Some(safepath::open_in(
                root,
                "_fsroot_rw",
                rustix::fs::OFlags::PATH | rustix::fs::OFlags::DIRECTORY,
            )?)
        };
        for (name, listed) in names {
            // Names listed from the sources may be the scheme's own or made by other options;
            // names given in `links` were checked by `validate`.
            if name.starts_with("_fsroot_") || reserved.contains(&name.as_str()) {
                continue;
            }
            let in_source = |side: &str| {
                fsroot_trees.iter().any(|(n, _)| *n == side)
                    && safepath::exists(root, &format!("{side}/{name}"))
            };
            let side = match (&rw_tree, listed) {
                (Some(rw), _) if f.rw_dirs.contains(&name) => {
                    safepath::mkdir_all(rw.as_fd(), &name, 0o755).map_err(|e| {
                        let what = format!("making {name} in the read-write source");
                        let detail = match e.detail.as_deref() {
                            Some(d) => format!("{what}: {d}"),
                            None => what,
                        };
                        e.name("fsroot.rw_dirs").detail(detail)
                    })?;
                    "_fsroot_rw"
                }
                (_, Some(side)) => side,
                // Where the name is: the read-only source first, as ctrtool links.
                _ if in_source("_fsroot_ro") => "_fsroot_ro",
                _ if in_source("_fsroot_rw") => "_fsroot_rw",
                _ => {
                    return Err(SysError::invalid(
                        "rootfs",
                        "fsroot.links",
                        format!("{name:?} is in neither fsroot source: its link would dangle"),
                    ))
                }
            };
            safepath::symlink(root, &format!("{side}/{name}"), &name)?;
        }
    }
    if plan.dev {
        safepath::mkdir_all(root, "dev", 0o755)?;
        for (host, p) in &devs {
            attach_at(root, p, host)?;
        }
        safepath::mkdir_all(root, "dev/shm", 0o1777)?;
        safepath::mkdir_all(root, "dev/pts", 0o755)?;
        for (t, l) in [
            ("/proc/self/fd", "dev/fd"),
            ("/proc/self/fd/0", "dev/stdin"),
            ("/proc/self/fd/1", "dev/stdout"),
            ("/proc/self/fd/2", "dev/stderr"),
            ("pts/ptmx", "dev/ptmx"),
        ] {
            safepath::symlink(root, t, l)?;
        }
    }
    if plan.tmp {
        safepath::mkdir_all(root, "tmp", 0o1777)?;
    }
    for d in &plan.run_dirs {
        let mode = if d.trim_end_matches('/').ends_with("lock") {
            0o1777
        } else {
            0o755
        };
        safepath::mkdir_all(root, d, mode)?;
    }
    for (i, (e, p)) in plan.entries.iter().zip(prepared.iter()).enumerate() {
        fill_entry(root, e, p.as_ref()).map_err(|err| at_entry(err, i, e))?;
    }
    let vfs = |fstype: &str, path: &str, attrs: u64, opts: &[(&str, Option<&str>)]| -> Result<()> {
        if !fsmount::available() {
            safepath::mkdir_all(root, path, 0o755)?;
            let data: Vec<String> = opts
                .iter()
                .map(|(k, v)| v.map_or(k.to_string(), |v| format!("{k}={v}")))
                .collect();
            let data = data.join(",");
            return mount::mount(
                Some(fstype),
                Place::InRoot(root, path),
                Some(fstype),
                fsmount::ms_flags(attrs),
                (!data.is_empty()).then_some(data.as_str()),
            );
        }
        let b = FsBuilder::new("rootfs", fstype)?;
        for (k, v) in opts {
            match v {
                Some(v) => b.set(k, v)?,
                None => b.flag(k)?,
            };
        }
        let t = b.mount(attrs).map_err(|e| e.path(path))?;
        let at = safepath::mkdir_all(root, path, 0o755)?;
        fsmount::attach(t.as_fd(), at.as_fd()).map_err(|e| e.path(path))
    };
    if plan.proc {
        vfs("proc", "proc", ATTR_NOSUID | ATTR_NODEV | ATTR_NOEXEC, &[])?;
    }
    if plan.sysfs {
        if let Err(e) = vfs(
            "sysfs",
            "sys",
            ATTR_NOSUID | ATTR_NODEV | ATTR_NOEXEC | ATTR_RDONLY,
            &[],
        ) {
            // Without its own network namespace (or owning it) sysfs cannot be mounted:
            // fall back to the host's /sys, recursively read-only, as bubblewrap does.
            if e.errno() != Some(nix::errno::Errno::EPERM) {
                return Err(e);
            }
            let p = prepare(&bind_plan("/sys", "sys", true, false))?.expect("not optional");
            attach_at(root, &p, "sys")?;
        }
    }
    if plan.devpts {
        vfs(
            "devpts",
            "dev/pts",
            ATTR_NOSUID | ATTR_NOEXEC,
            &[
                ("newinstance", None),
                ("ptmxmode", Some("0666")),
                ("mode", Some("0620")),
            ],
        )?;
        if !plan.dev {
            safepath::symlink(root, "pts/ptmx", "dev/ptmx")?;
        }
    }
    if plan.mqueue {
        vfs(
            "mqueue",
            "dev/mqueue",
            ATTR_NOSUID | ATTR_NODEV | ATTR_NOEXEC,
            &[],
        )?;
    }
    if plan.readonly {
        if fsmount::available() {
            fsmount::setattr(root, false, ATTR_RDONLY, 0, None)
                .map_err(|e| e.detail("read-only root"))?;
        } else {
            // A bind-remount keeping the root's nosuid,nodev (a user namespace may not
            // clear locked flags).
            let path = format!("/proc/self/fd/{}", root.as_raw_fd());
            mount::flags_only(
                &path,
                fsmount::ms_flags(ATTR_RDONLY | ATTR_NOSUID | ATTR_NODEV)
                    | libc::MS_REMOUNT
                    | libc::MS_BIND,
            )
            .map_err(|e| SysError::os("mount", e).detail("read-only root (MS_REMOUNT)"))?;
        }
    }
    Ok(())
}

/// Make one entry inside the root (`p`: its bind source, cloned by `prepare`).
fn fill_entry(root: BorrowedFd<'_>, e: &Entry, p: Option<&Prepared>) -> Result<()> {
    match e {
        Entry::Dir { path, mode } => {
            safepath::mkdir_all(root, path, *mode)?;
        }
        Entry::File {
            path,
            content,
            mode,
        } => safepath::write_file(root, path, content, *mode)?,
        Entry::Symlink { target, path } => safepath::symlink(root, target, path)?,
        Entry::Bind(b) => {
            if let Some(p) = p {
                attach_at(root, p, &b.dst)?;
            }
        }
        Entry::Tmpfs { path, opts } if !fsmount::available() => {
            safepath::mkdir_all(root, path, 0o755)?;
            mount::tmpfs(Place::InRoot(root, path), opts)?;
        }
        Entry::Tmpfs { path, opts } => {
            let t = mount::tmpfs_detached("rootfs", opts)?;
            let at = safepath::mkdir_all(root, path, 0o755)?;
            fsmount::attach(t.as_fd(), at.as_fd()).map_err(|e| e.path(path))?;
        }
    }
    Ok(())
}

/// Make `dir` the root (see `mount::pivot_into`).
pub fn pivot_into(dir: &str, mount_proc: bool) -> Result<()> {
    mount::pivot_into(dir, mount_proc)
}

/// The launcher's one call: make the whole mount namespace private (so nothing leaks to the
/// host), build `plan` at `STAGING` and pivot into it (proc is mounted by the plan's own
/// `proc` option, in the caller's pid namespace).
pub fn enter(plan: &Rootfs) -> Result<()> {
    mount::propagation("/", "private", true)?;
    build(plan, STAGING)?;
    pivot_into(STAGING, false)
}
