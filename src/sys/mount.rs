//! Mounts: classic mount(2), bind (recursive, read-only on every submount), tmpfs, squashfs,
//! overlay, umount, propagation, pivot_root, chroot, chroot_pivot, renameat2.
//!
//! New mounts are built detached with the fd-based API (`fsmount`) and attached onto an
//! O_PATH fd of the target, so nothing is visible until the whole mount is ready, and a
//! target inside a root is found by `safepath` (never outside the root). `mount(2)` is used
//! for the generic `mount` and where the new API is missing, always onto `/proc/self/fd/N`.

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::Path;

use nix::errno::Errno;
use rustix::fs::{Mode, OFlags};

use super::error::{Result, SysError};
use super::fsmount::{self, FsBuilder, ATTR_NODEV, ATTR_NOEXEC, ATTR_NOSUID, ATTR_RDONLY};
use super::safepath::{self, fd_path, rx};

/// Per-mount flags every mounting call accepts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Attrs {
    pub ro: bool,
    pub nosuid: bool,
    pub nodev: bool,
    pub noexec: bool,
}

impl Attrs {
    pub fn bits(self) -> u64 {
        let mut b = 0;
        if self.ro {
            b |= ATTR_RDONLY;
        }
        if self.nosuid {
            b |= ATTR_NOSUID;
        }
        if self.nodev {
            b |= ATTR_NODEV;
        }
        if self.noexec {
            b |= ATTR_NOEXEC;
        }
        b
    }
}

/// Where a mount goes: a path on the host (it must exist), or a path inside `root`
/// (resolved inside it; a missing mount point is created there).
#[derive(Clone, Copy)]
pub enum Place<'a> {
    Host(&'a str),
    InRoot(BorrowedFd<'a>, &'a str),
}

impl Place<'_> {
    pub fn path(&self) -> &str {
        match self {
            Place::Host(p) | Place::InRoot(_, p) => p,
        }
    }
    /// An O_PATH fd on the mount point; `file` creates a file rather than a directory when
    /// it is missing inside a root.
    pub fn open(&self, op: &str, arg: &str, file: bool) -> Result<OwnedFd> {
        match *self {
            Place::Host(p) => {
                need_absolute(op, arg, p)?;
                rustix::fs::open(p, OFlags::PATH | OFlags::CLOEXEC, Mode::empty()).map_err(|e| {
                    let err = rx(op, e).path(p).name(arg);
                    if e == rustix::io::Errno::NOENT {
                        err.detail("the mount point does not exist").hint(
                            "create it first (mkdir), or mount inside a rootfs which creates it",
                        )
                    } else {
                        err
                    }
                })
            }
            Place::InRoot(root, p) => safepath::mount_point(root, p, file).map_err(|e| e.name(arg)),
        }
    }
}

/// Reject a relative path where an absolute one is needed, naming the argument.
pub fn need_absolute(op: &str, arg: &str, p: &str) -> Result<()> {
    if p.is_empty() {
        return Err(SysError::invalid(op, arg, "an empty path"));
    }
    if !p.starts_with('/') {
        return Err(SysError::invalid(
            op,
            arg,
            format!("{p:?} is relative; an absolute path is needed"),
        )
        .hint(format!(
            "write \"/{p}\", or `${{cwd()}}/{p}` for a path relative to the current directory"
        )));
    }
    if p.contains('\0') {
        return Err(SysError::invalid(op, arg, "a path contains a NUL byte"));
    }
    Ok(())
}

/// Open an existing source path (O_PATH), naming the argument when it is missing.
pub fn open_source(op: &str, arg: &str, p: &str) -> Result<OwnedFd> {
    need_absolute(op, arg, p)?;
    rustix::fs::open(p, OFlags::PATH | OFlags::CLOEXEC, Mode::empty()).map_err(|e| {
        let err = rx(op, e).path(p).name(arg);
        if e == rustix::io::Errno::NOENT {
            err.detail("the source does not exist")
        } else {
            err
        }
    })
}

/// The kernel refuses to mount a directory on a file or a file on a directory with a bare
/// EINVAL (move_mount) or ENOTDIR (mount(2)). After such a failure, say which it was,
/// naming the target argument `arg` of `op`. `what` is the thing mounted ("a tmpfs"), or
/// None for a bind, whose source is a file or a directory. None when the kinds match (the
/// failure was something else).
fn kind_mismatch(
    e: &SysError,
    op: &str,
    arg: &str,
    dst: &str,
    src_is_dir: bool,
    what: Option<&str>,
    tfd: BorrowedFd<'_>,
) -> Option<SysError> {
    let errno = e
        .errno()
        .filter(|n| matches!(n, Errno::EINVAL | Errno::ENOTDIR))?;
    let dst_is_dir = safepath::is_dir(tfd).ok()?;
    if dst_is_dir == src_is_dir {
        return None;
    }
    let (detail, hint) = if src_is_dir {
        let what = what.unwrap_or("a directory source");
        (
            format!("the target is a file; {what} needs a directory target"),
            "mount on a directory (mkdir one); only a file can be bound onto a file",
        )
    } else {
        (
            "the target is a directory; a file source needs a file target".to_string(),
            "bind a file onto a file: create an empty one first, e.g. write_file(dst, \"\")",
        )
    };
    Some(
        SysError::os(op, errno)
            .path(dst)
            .name(arg)
            .detail(detail)
            .hint(hint),
    )
}

/// MS_* flags by name for the classic `mount`.
pub fn parse_flag(name: &str) -> Option<libc::c_ulong> {
    Some(match name {
        "ro" | "rdonly" => libc::MS_RDONLY,
        "rw" => 0,
        "nosuid" => libc::MS_NOSUID,
        "nodev" => libc::MS_NODEV,
        "noexec" => libc::MS_NOEXEC,
        "sync" => libc::MS_SYNCHRONOUS,
        "remount" => libc::MS_REMOUNT,
        "mandlock" => libc::MS_MANDLOCK,
        "dirsync" => libc::MS_DIRSYNC,
        "nosymfollow" => 256,
        "noatime" => libc::MS_NOATIME,
        "nodiratime" => libc::MS_NODIRATIME,
        "bind" => libc::MS_BIND,
        "rbind" => libc::MS_BIND | libc::MS_REC,
        "move" => libc::MS_MOVE,
        "rec" => libc::MS_REC,
        "silent" => libc::MS_SILENT,
        "unbindable" => libc::MS_UNBINDABLE,
        "private" => libc::MS_PRIVATE,
        "slave" => libc::MS_SLAVE,
        "shared" => libc::MS_SHARED,
        "relatime" => libc::MS_RELATIME,
        "strictatime" => libc::MS_STRICTATIME,
        "lazytime" => libc::MS_LAZYTIME,
        _ => return None,
    })
}

/// Every flag name `parse_flag` knows (for suggestions).
pub const FLAG_NAMES: &[&str] = &[
    "ro",
    "rw",
    "nosuid",
    "nodev",
    "noexec",
    "sync",
    "remount",
    "mandlock",
    "dirsync",
    "nosymfollow",
    "noatime",
    "nodiratime",
    "bind",
    "rbind",
    "move",
    "rec",
    "silent",
    "unbindable",
    "private",
    "slave",
    "shared",
    "relatime",
    "strictatime",
    "lazytime",
];

/// Is `fstype` a filesystem type this kernel knows (/proc/filesystems)? Unknown when the
/// file cannot be read.
pub fn fstype_known(fstype: &str) -> Option<bool> {
    let text = std::fs::read_to_string("/proc/filesystems").ok()?;
    Some(
        text.lines()
            .any(|l| l.split_whitespace().last() == Some(fstype)),
    )
}

/// The filesystem types the kernel knows.
pub fn fstypes() -> Vec<String> {
    std::fs::read_to_string("/proc/filesystems")
        .map(|t| {
            t.lines()
                .filter_map(|l| l.split_whitespace().last().map(String::from))
                .collect()
        })
        .unwrap_or_default()
}

/// Classic mount(2): `source` (or none) of `fstype` with MS_* `flags` and `data` onto `target`.
pub fn mount(
    source: Option<&str>,
    target: Place<'_>,
    fstype: Option<&str>,
    flags: libc::c_ulong,
    data: Option<&str>,
) -> Result<()> {
    // A bind or a move mounts what its source is (a file onto a file); a new filesystem's
    // root is a directory.
    let moves = flags & (libc::MS_BIND | libc::MS_MOVE) != 0;
    let src_dir = source
        .filter(|_| moves)
        .and_then(|s| std::fs::metadata(s).ok())
        .map(|m| m.is_dir());
    let src_is_file = flags & libc::MS_BIND != 0 && src_dir == Some(false);
    let tfd = target.open("mount", "target", src_is_file)?;
    // mount(2) takes a path: a host path as given, a path inside a root through the fd
    // found inside it (which needs /proc).
    let tpath = match target {
        Place::Host(p) => p.to_string(),
        Place::InRoot(..) => {
            if !Path::new("/proc/self/fd").exists() {
                return Err(SysError::invalid("mount", "root", "mount() inside a root needs /proc (use tmpfs(), bind(), squashfs() or overlay(), which do not)"));
            }
            fd_path(&tfd)
        }
    };
    let detail = format!("{} → {}", source.unwrap_or("none"), target.path());
    nix::mount::mount(
        source,
        tpath.as_str(),
        fstype,
        nix::mount::MsFlags::from_bits_retain(flags),
        data,
    )
    .and_then(|()| bind_attrs(&tpath, flags))
    .map_err(|e| {
        let err = SysError::os("mount", e).path(target.path()).detail(detail);
        // A remount or a propagation change mounts nothing.
        let changes = libc::MS_REMOUNT
            | libc::MS_PRIVATE
            | libc::MS_SLAVE
            | libc::MS_SHARED
            | libc::MS_UNBINDABLE;
        if flags & changes == 0 {
            let src_is_dir = !moves || src_dir == Some(true);
            let what = format!("a {} mount", fstype.unwrap_or("new"));
            let what = (!moves).then_some(what.as_str());
            let (t, fd) = (target.path(), tfd.as_fd());
            if let Some(k) = kind_mismatch(&err, "mount", "target", t, src_is_dir, what, fd) {
                return k;
            }
        }
        match e {
            Errno::ENODEV => err.name("fstype").detail(format!(
                "unknown filesystem type {:?}",
                fstype.unwrap_or("")
            )),
            Errno::ENOENT => err.name("source").hint("the source does not exist"),
            Errno::ENOTBLK => err
                .name("source")
                .hint("the source must be a block device (use squashfs() for an image file)"),
            Errno::EPERM => err.hint(
                "mounting needs CAP_SYS_ADMIN in the user namespace owning the mount namespace",
            ),
            Errno::EINVAL => match data.filter(|d| !d.is_empty()) {
                Some(d) => data_refused(err, fstype, d),
                None => err,
            },
            _ => err,
        }
    })
}

/// The per-mount flags a new bind mount ignores (mount(2) takes them only on a remount).
const BIND_ATTR_FLAGS: libc::c_ulong = libc::MS_RDONLY
    | libc::MS_NOSUID
    | libc::MS_NODEV
    | libc::MS_NOEXEC
    | libc::MS_NOATIME
    | libc::MS_NODIRATIME
    | libc::MS_RELATIME
    | libc::MS_STRICTATIME
    | 256; // MS_NOSYMFOLLOW

/// mount(2) with a target and flags only: a remount or a propagation change.
pub(crate) fn flags_only(path: &str, flags: libc::c_ulong) -> nix::Result<()> {
    nix::mount::mount(
        None::<&str>,
        path,
        None::<&str>,
        nix::mount::MsFlags::from_bits_retain(flags),
        None::<&str>,
    )
}

/// After a new bind mount, apply the attribute flags it was given with a bind remount, as
/// mount(8) does (on the top mount only); if that fails the bind is taken away again.
fn bind_attrs(tpath: &str, flags: libc::c_ulong) -> nix::Result<()> {
    let attrs = flags & BIND_ATTR_FLAGS;
    if flags & libc::MS_BIND == 0 || flags & libc::MS_REMOUNT != 0 || attrs == 0 {
        return Ok(());
    }
    flags_only(tpath, libc::MS_REMOUNT | libc::MS_BIND | attrs).inspect_err(|_| {
        let _ = nix::mount::umount2(tpath, nix::mount::MntFlags::MNT_DETACH);
    })
}

/// mount(2) said EINVAL and there were options in `data`: name the one the filesystem
/// refuses, in the kernel's words, when it can be found (mount(2) itself only tells the
/// kernel log).
fn data_refused(err: SysError, fstype: Option<&str>, data: &str) -> SysError {
    match fstype.map(|t| fsmount::refused_option(t, data)) {
        Some(Some((opt, why))) => {
            let why = why.map(|w| format!(": {w}")).unwrap_or_default();
            err.name("data")
                .detail(format!("option {opt:?} refused{why}"))
        }
        // Each option is fine on its own: the refusal is about something else.
        Some(None) if fsmount::available() => err.hint(
            "the filesystem accepts each option in data on its own: the kernel refused the \
             mount (flags, source, target, or the options together); dmesg may say why",
        ),
        _ => err
            .name("data")
            .hint("the kernel refused the options in data, or the mount itself; dmesg says why"),
    }
}

/// Options of a bind mount.
#[derive(Clone, Copy)]
pub struct BindOpts<'a> {
    pub recursive: bool,
    pub attrs: Attrs,
    /// Map owners through this user namespace (MOUNT_ATTR_IDMAP).
    pub idmap: Option<BorrowedFd<'a>>,
}

/// Bind `src` onto `dst`. The tree is cloned detached (with every submount when
/// `recursive`), the flags are applied to every mount in it (so read-only really is
/// read-only below too), an id-mapping is applied if asked, then it is attached in one step.
pub fn bind(src: &str, dst: Place<'_>, o: BindOpts<'_>) -> Result<()> {
    let sfd = open_source("bind", "src", src)?;
    bind_fd(sfd.as_fd(), src, dst, o)
}

/// `bind` with the source already open (an O_PATH fd, e.g. inside an image).
pub fn bind_fd(sfd: BorrowedFd<'_>, src: &str, dst: Place<'_>, o: BindOpts<'_>) -> Result<()> {
    let ctx = |e: SysError| {
        // An error about dst (e.g. a file onto a directory) already says what it is.
        if e.name.as_deref() == Some("dst") {
            return e;
        }
        e.path(dst.path())
            .detail(format!("bind {src} → {}", dst.path()))
    };
    let file = !safepath::is_dir(sfd)?;
    if !fsmount::available() {
        return legacy_bind(sfd, dst, o, file).map_err(ctx);
    }
    let tree = match fsmount::clone_tree(sfd, o.recursive) {
        Ok(t) => t,
        // fsopen(2) without open_tree(2) (seen under valgrind): mount(2) can still bind.
        Err(e) if e.errno() == Some(Errno::ENOSYS) => {
            return legacy_bind(sfd, dst, o, file).map_err(ctx)
        }
        Err(e) => return Err(ctx(e)),
    };
    let bits = o.attrs.bits();
    if bits != 0 || o.idmap.is_some() {
        if bits != 0 {
            fsmount::setattr(tree.as_fd(), o.recursive, bits, 0, None).map_err(ctx)?;
        }
        if let Some(ns) = o.idmap {
            fsmount::setattr(tree.as_fd(), o.recursive, 0, 0, Some(ns)).map_err(ctx)?;
        }
    }
    let tfd = dst.open("bind", "dst", file)?;
    fsmount::attach(tree.as_fd(), tfd.as_fd()).map_err(|e| {
        kind_mismatch(&e, "bind", "dst", dst.path(), !file, None, tfd.as_fd())
            .unwrap_or_else(|| ctx(e))
    })
}

/// The path mount(2) can use for an O_PATH fd (needs /proc).
fn proc_fd_path(fd: BorrowedFd<'_>) -> Result<String> {
    if !Path::new("/proc/self/fd").exists() {
        return Err(SysError::os("mount", Errno::ENOENT).detail("mount(2) on an fd needs /proc"));
    }
    Ok(fd_path(fd))
}

/// MS_* bits of `Attrs`.
fn ms_bits(a: Attrs) -> libc::c_ulong {
    fsmount::ms_flags(a.bits())
}

/// bind with mount(2) where the fd-based API is missing: MS_BIND(|MS_REC) onto the target
/// fd, then a bind-remount of every mount now at or under the target (mountinfo), so
/// read-only still covers submounts.
fn legacy_bind(sfd: BorrowedFd<'_>, dst: Place<'_>, o: BindOpts<'_>, file: bool) -> Result<()> {
    if o.idmap.is_some() {
        return Err(SysError::os("bind", Errno::ENOSYS)
            .name("idmap")
            .detail("id-mapped mounts need mount_setattr(2)"));
    }
    let tfd = dst.open("bind", "dst", file)?;
    let tpath = proc_fd_path(tfd.as_fd())?;
    let real = std::fs::read_link(&tpath).map_err(|e| SysError::io("readlink", &e).path(&tpath))?;
    let real = real.to_string_lossy().into_owned();
    let rec = if o.recursive { libc::MS_REC } else { 0 };
    let ms = nix::mount::MsFlags::from_bits_retain;
    nix::mount::mount(
        Some(proc_fd_path(sfd)?.as_str()),
        tpath.as_str(),
        None::<&str>,
        ms(libc::MS_BIND | rec),
        None::<&str>,
    )
    .map_err(|e| {
        let err = SysError::os("mount", e).detail("MS_BIND");
        kind_mismatch(&err, "bind", "dst", dst.path(), !file, None, tfd.as_fd()).unwrap_or(err)
    })?;
    let bits = ms_bits(o.attrs);
    if bits == 0 {
        return Ok(());
    }
    let under: Vec<String> = super::mountinfo::read(0)?
        .into_iter()
        .map(|m| m.target)
        .filter(|t| {
            *t == real
                || (o.recursive && t.starts_with(&format!("{}/", real.trim_end_matches('/'))))
        })
        .collect();
    for t in under {
        flags_only(&t, libc::MS_REMOUNT | libc::MS_BIND | bits)
            .map_err(|e| SysError::os("mount", e).path(&t).detail("bind remount"))?;
    }
    Ok(())
}

/// tmpfs with mount(2) where the fd-based API is missing.
fn legacy_tmpfs(dst: Place<'_>, o: &TmpfsOpts) -> Result<()> {
    let mut data = Vec::new();
    if let Some(s) = &o.size {
        data.push(format!("size={s}"));
    }
    if let Some(m) = o.mode {
        data.push(format!("mode={m:o}"));
    }
    if let Some(u) = o.uid {
        data.push(format!("uid={u}"));
    }
    if let Some(g) = o.gid {
        data.push(format!("gid={g}"));
    }
    let data = data.join(",");
    let tfd = dst.open("tmpfs", "dst", false)?;
    let tpath = match dst {
        Place::Host(p) => p.to_string(),
        Place::InRoot(..) => proc_fd_path(tfd.as_fd())?,
    };
    nix::mount::mount(
        Some("tmpfs"),
        tpath.as_str(),
        Some("tmpfs"),
        nix::mount::MsFlags::from_bits_retain(ms_bits(o.attrs)),
        Some(data.as_str()),
    )
    .map_err(|e| {
        let err = SysError::os("tmpfs", e)
            .path(dst.path())
            .detail(data.clone());
        tmpfs_on_file(&err, dst, tfd.as_fd()).unwrap_or(err)
    })
}

/// Validate a tmpfs size ("64m", "1G", "4096", "50%") and return it in the kernel's syntax.
pub fn parse_size(s: &str) -> Result<String> {
    let bad = || {
        SysError::invalid("tmpfs", "size", format!("{s:?} is not a size"))
            .hint("sizes look like 4096, 512k, 64m, 1g or 50% (of RAM)")
    };
    let t = s.trim();
    if let Some(pct) = t.strip_suffix('%') {
        let n: u64 = pct.parse().map_err(|_| bad())?;
        if n == 0 || n > 100 {
            return Err(bad());
        }
        return Ok(t.to_string());
    }
    let lower = t.to_ascii_lowercase();
    let lower = lower
        .strip_suffix("ib")
        .or_else(|| lower.strip_suffix('b'))
        .unwrap_or(&lower)
        .to_string();
    let (num, mult) = match lower.chars().last() {
        Some('k') => (&lower[..lower.len() - 1], 1u64 << 10),
        Some('m') => (&lower[..lower.len() - 1], 1 << 20),
        Some('g') => (&lower[..lower.len() - 1], 1 << 30),
        Some('t') => (&lower[..lower.len() - 1], 1 << 40),
        Some(c) if c.is_ascii_digit() => (&lower[..], 1),
        _ => return Err(bad()),
    };
    let n: u64 = num.parse().map_err(|_| bad())?;
    let bytes = n.checked_mul(mult).ok_or_else(bad)?;
    if bytes == 0 {
        return Err(bad());
    }
    Ok(bytes.to_string())
}

/// Options of a tmpfs.
#[derive(Debug, Clone, Default)]
pub struct TmpfsOpts {
    /// Already validated by `parse_size`.
    pub size: Option<String>,
    pub mode: Option<u32>,
    pub uid: Option<u32>,
    pub gid: Option<u32>,
    pub attrs: Attrs,
}

/// Build a tmpfs as a detached mount.
pub fn tmpfs_detached(op: &str, o: &TmpfsOpts) -> Result<OwnedFd> {
    let b = FsBuilder::new(op, "tmpfs")?;
    if let Some(s) = &o.size {
        b.set("size", s).map_err(|e| e.name("size"))?;
    }
    if let Some(m) = o.mode {
        b.set("mode", &format!("{m:o}"))
            .map_err(|e| e.name("mode"))?;
    }
    if let Some(u) = o.uid {
        b.set("uid", &u.to_string()).map_err(|e| {
            e.name("uid")
                .hint("the uid must be mapped in the caller's user namespace")
        })?;
    }
    if let Some(g) = o.gid {
        b.set("gid", &g.to_string()).map_err(|e| {
            e.name("gid")
                .hint("the gid must be mapped in the caller's user namespace")
        })?;
    }
    b.mount(o.attrs.bits())
}

/// Mount a new tmpfs on `dst`.
pub fn tmpfs(dst: Place<'_>, o: &TmpfsOpts) -> Result<()> {
    if !fsmount::available() {
        return legacy_tmpfs(dst, o);
    }
    let tree = tmpfs_detached("tmpfs", o).map_err(|e| e.path(dst.path()))?;
    let tfd = dst.open("tmpfs", "dst", false)?;
    fsmount::attach(tree.as_fd(), tfd.as_fd())
        .map_err(|e| tmpfs_on_file(&e, dst, tfd.as_fd()).unwrap_or_else(|| e.path(dst.path())))
}

/// The error for a tmpfs mounted onto a file, if that is what `err` was.
fn tmpfs_on_file(err: &SysError, dst: Place<'_>, tfd: BorrowedFd<'_>) -> Option<SysError> {
    kind_mismatch(err, "tmpfs", "dst", dst.path(), true, Some("a tmpfs"), tfd)
}

/// Mount a squashfs image (read-only, nosuid, nodev) on `dst`, or only its subdirectory
/// `subdir` (resolved inside the image). The loop device is configured with autoclear and
/// its fd closed once mounted, so unmounting releases it. Returns the loop device path.
pub fn squashfs(image: &str, subdir: Option<&str>, dst: Place<'_>, attrs: Attrs) -> Result<String> {
    need_absolute("squashfs", "image", image)?;
    let ctx = |e: SysError| {
        e.path(image)
            .detail(format!("squashfs {image} → {}", dst.path()))
    };
    let lo = super::loopdev::attach_ro(image)?;
    let b = FsBuilder::new("squashfs", "squashfs").map_err(ctx)?;
    b.set("source", &lo.path).map_err(ctx)?;
    // With the new mount API the "ro" flag must be set explicitly, or the superblock is
    // opened for writing and squashfs fails with ENODATA.
    b.flag("ro").map_err(ctx)?;
    let mut a = attrs;
    a.ro = true;
    let tree = b
        .mount(a.bits())
        .map_err(|e| ctx(e).hint("is it a squashfs image? (unsquashfs -s IMAGE)"))?;
    let tree = match subdir {
        None => tree,
        Some(d) => {
            let sub = fsmount::subdir(tree.as_fd(), d)
                .map_err(|e| e.name("subdir").detail(format!("{d:?} in {image}")))?;
            // Clone just that directory; dropping `tree` releases the whole-image mount.
            fsmount::clone_tree(sub.as_fd(), false).map_err(ctx)?
        }
    };
    let tfd = dst.open("squashfs", "target", false)?;
    fsmount::attach(tree.as_fd(), tfd.as_fd()).map_err(|e| {
        let what = Some("a squashfs");
        kind_mismatch(
            &e,
            "squashfs",
            "target",
            dst.path(),
            true,
            what,
            tfd.as_fd(),
        )
        .unwrap_or_else(|| ctx(e))
    })?;
    let dev = lo.path.clone();
    drop(lo);
    Ok(dev)
}

/// Mount an overlay of `lower` (top first) with an optional `upper`/`work` pair on `dst`.
pub fn overlay(
    lower: &[String],
    upper: Option<&str>,
    work: Option<&str>,
    userxattr: bool,
    dst: Place<'_>,
    attrs: Attrs,
) -> Result<()> {
    if lower.is_empty() {
        return Err(SysError::invalid(
            "overlay",
            "lower",
            "at least one lower directory is needed",
        ));
    }
    for l in lower {
        need_absolute("overlay", "lower", l)?;
        open_source("overlay", "lower", l)?;
    }
    match (upper, work) {
        (Some(u), Some(w)) => {
            let ufd = open_source("overlay", "upper", u)?;
            let wfd = open_source("overlay", "work", w)?;
            // The kernel's answer to this is a bare EINVAL with nothing in its log.
            let id = |fd: &OwnedFd| rustix::fs::fstat(fd).map(|st| (st.st_dev, st.st_ino));
            if matches!((id(&ufd), id(&wfd)), (Ok(a), Ok(b)) if a == b) {
                return Err(SysError::invalid(
                    "overlay",
                    "work",
                    format!("{w} is the upper directory; work must be a directory of its own"),
                )
                .hint("give an empty directory beside upper, on the same filesystem, e.g. upper: \"/srv/box/upper\", work: \"/srv/box/work\""));
            }
        }
        // The kernel wants two layers at least for a read-only overlay ("at least 2
        // lowerdir are needed while upperdir nonexistent"); say so before it says EINVAL.
        (None, None) if lower.len() < 2 => {
            return Err(SysError::invalid(
                "overlay",
                "lower",
                "a read-only overlay (no upper) needs at least two lower directories",
            )
            .hint("for one directory read-only, bind it: bind(src, dst, #{ ro: true })"))
        }
        (None, None) => {}
        (Some(_), None) => {
            return Err(SysError::invalid(
                "overlay",
                "work",
                "an upper directory needs a work directory on the same filesystem",
            ))
        }
        (None, Some(_)) => {
            return Err(SysError::invalid(
                "overlay",
                "upper",
                "a work directory is only used with an upper directory",
            ))
        }
    }
    let ctx = |e: SysError| {
        e.path(dst.path())
            .detail(format!("overlay → {}", dst.path()))
    };
    let b = FsBuilder::new("overlay", "overlay").map_err(ctx)?;
    // "lowerdir+" takes one layer per call (no escaping of ':' and ','); older kernels only
    // know the joined "lowerdir".
    let mut plus = true;
    for l in lower {
        if b.set("lowerdir+", l).is_err() {
            plus = false;
            break;
        }
    }
    if !plus {
        let b2 = FsBuilder::new("overlay", "overlay").map_err(ctx)?;
        b2.set("lowerdir", &lower.join(":")).map_err(ctx)?;
        return overlay_finish(b2, upper, work, userxattr, dst, attrs);
    }
    overlay_finish(b, upper, work, userxattr, dst, attrs)
}

fn overlay_finish(
    b: FsBuilder,
    upper: Option<&str>,
    work: Option<&str>,
    userxattr: bool,
    dst: Place<'_>,
    attrs: Attrs,
) -> Result<()> {
    let ctx = |e: SysError| {
        e.path(dst.path())
            .detail(format!("overlay → {}", dst.path()))
    };
    if userxattr {
        b.flag("userxattr").map_err(ctx)?;
    }
    if let (Some(u), Some(w)) = (upper, work) {
        b.set("upperdir", u).map_err(|e| ctx(e).name("upper"))?;
        b.set("workdir", w).map_err(|e| ctx(e).name("work"))?;
    }
    let tree = b.mount(attrs.bits()).map_err(|e| {
        let upper_work = upper.is_some() && e.errno() == Some(Errno::EINVAL);
        match ctx(e) {
            // Without a word from the kernel: the usual causes of a refused upper/work pair.
            e if upper_work && e.hint.is_none() => e.hint(
                "upper and work must be two directories on the same mount, neither inside the \
                 other (and work empty); dmesg may say which",
            ),
            e => e,
        }
    })?;
    let tfd = dst.open("overlay", "target", false)?;
    fsmount::attach(tree.as_fd(), tfd.as_fd()).map_err(|e| {
        let what = Some("an overlay");
        kind_mismatch(&e, "overlay", "target", dst.path(), true, what, tfd.as_fd())
            .unwrap_or_else(|| ctx(e))
    })
}

/// umount2(2); `detach` is MNT_DETACH (lazy: gone from the tree now, freed when unused).
/// A final symlink is never followed.
pub fn umount(path: &str, detach: bool) -> Result<()> {
    need_absolute("umount", "path", path)?;
    let mut f = rustix::mount::UnmountFlags::NOFOLLOW;
    if detach {
        f |= rustix::mount::UnmountFlags::DETACH;
    }
    rustix::mount::unmount(path, f).map_err(|e| {
        let err = rx("umount", e).path(path);
        match e {
            rustix::io::Errno::INVAL => match std::fs::read_link(path) {
                Ok(to) => err.detail(format!(
                    "a symlink (to {}); umount never follows one: unmount where it points",
                    to.display()
                )),
                Err(_) => err.detail("not a mount point"),
            },
            rustix::io::Errno::BUSY => err.hint("still in use: umount(path, #{ detach: true }) detaches it now and frees it when unused"),
            _ => err,
        }
    })
}

/// Propagation kinds by name.
pub fn parse_propagation(kind: &str) -> Option<libc::c_ulong> {
    Some(match kind {
        "private" => libc::MS_PRIVATE,
        "slave" => libc::MS_SLAVE,
        "shared" => libc::MS_SHARED,
        "unbindable" => libc::MS_UNBINDABLE,
        _ => return None,
    })
}

/// Change the propagation type of the mount at `path` (and every mount below, `recursive`).
pub fn propagation(path: &str, kind: &str, recursive: bool) -> Result<()> {
    need_absolute("propagation", "path", path)?;
    let flag = parse_propagation(kind).ok_or_else(|| {
        SysError::invalid(
            "propagation",
            "kind",
            format!("unknown propagation {kind:?}"),
        )
        .hint("kinds are private, slave, shared, unbindable")
    })?;
    let flags = flag | if recursive { libc::MS_REC } else { 0 };
    flags_only(path, flags).map_err(|e| {
        let err = SysError::os("propagation", e)
            .path(path)
            .detail(kind.to_string());
        if e == Errno::EINVAL {
            err.hint("the path must be a mount point")
        } else {
            err
        }
    })
}

/// pivot_root(2): `new_root` becomes the root mount, the old root moves to `put_old`.
pub fn pivot_root(new_root: &str, put_old: &str) -> Result<()> {
    rustix::process::pivot_root(new_root, put_old)
        .map_err(|e| pivot_root_error(e, new_root, put_old))
}

/// The error of a failed pivot_root(2), with the usual cause.
fn pivot_root_error(e: rustix::io::Errno, new_root: &str, put_old: &str) -> SysError {
    if let Some(err) = pivot_path_missing(e, "pivot_root", "", new_root, put_old) {
        return err;
    }
    let err = rx("pivot_root", e)
        .path(new_root)
        .detail(format!("old root → {put_old}"));
    match e {
        rustix::io::Errno::INVAL => err.hint("new_root must be a mount point (bind it to itself), put_old at or under it, and neither / nor new_root's parent may be shared: propagation(\"/\", \"private\", #{ recursive: true }) first"),
        rustix::io::Errno::BUSY => err.hint("new_root or put_old is on the current root mount"),
        _ => err,
    }
}

/// After pivot_root(2) failed with ENOENT or ENOTDIR: which of the two paths is missing or
/// not a directory, said with the argument's name. The paths are looked up where the call
/// resolved them; `outside` is prefixed to show them as the caller sees them (the directory
/// chroot_pivot chrooted into).
fn pivot_path_missing(
    e: rustix::io::Errno,
    op: &str,
    outside: &str,
    new_root: &str,
    put_old: &str,
) -> Option<SysError> {
    if !matches!(e, rustix::io::Errno::NOENT | rustix::io::Errno::NOTDIR) {
        return None;
    }
    let under = "put_old must be a directory at or under new_root";
    for (arg, p) in [("new_root", new_root), ("put_old", put_old)] {
        let shown = format!("{outside}{p}");
        let (what, hint) = match std::fs::metadata(p) {
            Err(_) if arg == "put_old" => (
                "put_old does not exist",
                format!("{under}: mkdir(\"{shown}\") first"),
            ),
            Err(_) => (
                "new_root does not exist",
                "new_root must be an existing directory, a mount point".to_string(),
            ),
            Ok(m) if !m.is_dir() => (
                if arg == "put_old" {
                    "put_old is not a directory"
                } else {
                    "new_root is not a directory"
                },
                under.to_string(),
            ),
            Ok(_) => continue,
        };
        return Some(rx(op, e).path(shown).name(arg).detail(what).hint(hint));
    }
    None
}

/// chroot(2) to `dir`, then chdir("/") so the working directory is inside it.
pub fn chroot(dir: &str) -> Result<()> {
    need_absolute("chroot", "dir", dir)?;
    rustix::process::chroot(dir).map_err(|e| rx("chroot", e).path(dir))?;
    rustix::process::chdir("/").map_err(|e| rx("chdir", e).path("/"))
}

/// The id of the mount `path` lies on (statx STATX_MNT_ID, Linux 5.8; the first field of
/// mountinfo). For a mount point that is the topmost mount there. A final symlink is not
/// followed.
pub fn mount_id_at(path: &str) -> Result<u64> {
    use rustix::fs::{statx, AtFlags, StatxFlags, CWD};
    let st = statx(CWD, path, AtFlags::SYMLINK_NOFOLLOW, StatxFlags::MNT_ID)
        .map_err(|e| rx("statx", e).path(path))?;
    if !StatxFlags::from_bits_retain(st.stx_mask).contains(StatxFlags::MNT_ID) {
        return Err(SysError::os("statx", Errno::ENOSYS)
            .path(path)
            .detail("STATX_MNT_ID is not reported"));
    }
    Ok(st.stx_mnt_id)
}

/// Is the directory `fd` the root of a mount?
pub fn is_mount_root(fd: BorrowedFd<'_>) -> Result<bool> {
    use rustix::fs::{statx, AtFlags, StatxAttributes, StatxFlags};
    let st =
        statx(fd, "", AtFlags::EMPTY_PATH, StatxFlags::BASIC_STATS).map_err(|e| rx("statx", e))?;
    let mask = st.stx_attributes_mask;
    let attrs = st.stx_attributes;
    if mask.contains(StatxAttributes::MOUNT_ROOT) {
        return Ok(attrs.contains(StatxAttributes::MOUNT_ROOT));
    }
    Err(SysError::os("statx", Errno::ENOSYS).detail("STATX_ATTR_MOUNT_ROOT is not reported"))
}

/// Make `dir` the root of the calling process's mount namespace: bind it onto itself if it
/// is not a mount point, pivot_root into it with the old root stacked on top, detach the old
/// root and chdir("/"). When `mount_proc` is set a new proc is made (for the caller's pid
/// namespace) while the old root is still attached (a user namespace only may mount proc
/// while a full proc is visible), and attached on /proc afterwards.
pub fn pivot_into(dir: &str, mount_proc: bool) -> Result<()> {
    need_absolute("pivot_into", "dir", dir)?;
    let mut fd = safepath::open_dir(Path::new(dir)).map_err(|e| {
        let e = e.name("dir");
        match e.errno() {
            Some(Errno::ENOENT) => e.detail("no such directory"),
            Some(Errno::ENOTDIR) => e.detail("not a directory"),
            _ => e,
        }
    })?;
    if !is_mount_root(fd.as_fd())? {
        let tree = fsmount::clone_tree(fd.as_fd(), true)
            .map_err(|e| e.path(dir).detail("bind to itself"))?;
        fsmount::attach(tree.as_fd(), fd.as_fd())
            .map_err(|e| e.path(dir).detail("bind to itself"))?;
        // The fd still names the directory under the new mount: open the mount's root.
        fd = safepath::open_dir(Path::new(dir))?;
    }
    let proc_tree = if mount_proc {
        let b = FsBuilder::new("pivot_into", "proc")?;
        Some(
            b.mount(ATTR_NOSUID | ATTR_NODEV | ATTR_NOEXEC)
                .map_err(|e| e.detail("mounting /proc"))?,
        )
    } else {
        None
    };
    rustix::process::fchdir(&fd).map_err(|e| rx("chdir", e).path(dir))?;
    // pivot_root(".", "."): the old root ends up mounted on top of the new one, from where
    // it is detached; no put_old directory is needed (the new root may be read-only).
    pivot_root(".", ".").map_err(|e| e.path(dir))?;
    rustix::mount::unmount(".", rustix::mount::UnmountFlags::DETACH)
        .map_err(|e| rx("umount old root", e))?;
    rustix::process::chdir("/").map_err(|e| rx("chdir", e).path("/"))?;
    if let Some(p) = proc_tree {
        let root = safepath::open_dir(Path::new("/"))?;
        let target = safepath::mount_point(root.as_fd(), "/proc", false)?;
        fsmount::attach(p.as_fd(), target.as_fd()).map_err(|e| e.path("/proc"))?;
    }
    Ok(())
}

/// ctrtool's chroot_pivot. With `swap` = None: make `dir` the root (as `pivot_into`,
/// without proc). With `swap` = Some((new_root, put_old)) (paths inside `dir`): chroot into
/// `dir` (a mount point), pivot_root(new_root, put_old) there — which atomically puts the
/// mount at `dir/new_root` where `dir`'s mount was and that one under it at `put_old` —
/// and return to the original root.
pub fn chroot_pivot(dir: &str, swap: Option<(&str, &str)>) -> Result<()> {
    need_absolute("chroot_pivot", "dir", dir)?;
    let Some((new_root, put_old)) = swap else {
        // `dir` was checked above under chroot_pivot's name; what pivot_into can fail on
        // after that names its own step (open, pivot_root ...).
        return pivot_into(dir, false);
    };
    need_absolute("chroot_pivot", "new_root", new_root)?;
    need_absolute("chroot_pivot", "put_old", put_old)?;
    let home_root = safepath::open_dir(Path::new("/"))?;
    let home_cwd = safepath::open_dir(Path::new("."))?;
    rustix::process::chroot(dir).map_err(|e| rx("chroot", e).path(dir))?;
    let r = rustix::process::chdir("/")
        .map_err(|e| rx("chdir", e))
        .and_then(|_| {
            rustix::process::pivot_root(new_root, put_old).map_err(|e| {
                // Paths are looked up inside `dir` (we are chrooted there) and shown as the
                // caller sees them.
                let outside = dir.trim_end_matches('/');
                pivot_path_missing(e, "chroot_pivot", outside, new_root, put_old).unwrap_or_else(
                    || {
                        let mut err = pivot_root_error(e, new_root, put_old)
                            .path(format!("{outside}{new_root}"))
                            .detail(format!("pivot_root inside {dir}: {new_root} ↔ {put_old}"));
                        err.op = "chroot_pivot".into();
                        err
                    },
                )
            })
        });
    // Always go back to the root we came from (also when the pivot failed).
    let back = rustix::process::fchdir(&home_root)
        .and_then(|_| rustix::process::chroot("."))
        .and_then(|_| rustix::process::fchdir(&home_cwd))
        .map_err(|e| rx("chroot back", e));
    r?;
    back
}

/// renameat2(2) with RENAME_EXCHANGE / RENAME_NOREPLACE / RENAME_WHITEOUT.
pub fn renameat2(
    from: &str,
    to: &str,
    exchange: bool,
    noreplace: bool,
    whiteout: bool,
) -> Result<()> {
    use rustix::fs::RenameFlags;
    // Relative paths would silently resolve against the shell's working directory.
    need_absolute("renameat2", "from", from)?;
    need_absolute("renameat2", "to", to)?;
    if exchange && (noreplace || whiteout) {
        return Err(SysError::invalid(
            "renameat2",
            "opts",
            "exchange cannot be combined with noreplace or whiteout",
        ));
    }
    let mut f = RenameFlags::empty();
    if exchange {
        f |= RenameFlags::EXCHANGE;
    }
    if noreplace {
        f |= RenameFlags::NOREPLACE;
    }
    if whiteout {
        f |= RenameFlags::WHITEOUT;
    }
    rustix::fs::renameat_with(rustix::fs::CWD, from, rustix::fs::CWD, to, f)
        .map_err(|e| rx("renameat2", e).path(from).detail(format!("→ {to}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("64m").unwrap(), (64u64 << 20).to_string());
        assert_eq!(parse_size("1G").unwrap(), (1u64 << 30).to_string());
        assert_eq!(parse_size("512KiB").unwrap(), (512u64 << 10).to_string());
        assert_eq!(parse_size("4096").unwrap(), "4096");
        assert_eq!(parse_size("50%").unwrap(), "50%");
        for bad in [
            "12Q",
            "",
            "m",
            "0",
            "-1m",
            "101%",
            "1.5g",
            "99999999999999t",
        ] {
            let e = parse_size(bad).unwrap_err();
            assert_eq!(e.name.as_deref(), Some("size"), "{bad}");
        }
    }

    #[test]
    fn flags_and_paths() {
        assert_eq!(parse_flag("rbind"), Some(libc::MS_BIND | libc::MS_REC));
        assert!(parse_flag("bogus").is_none());
        for f in FLAG_NAMES {
            assert!(parse_flag(f).is_some(), "{f}");
        }
        assert!(need_absolute("x", "target", "rel/path")
            .unwrap_err()
            .to_string()
            .contains("relative"));
        assert!(need_absolute("x", "target", "/abs").is_ok());
    }
}
