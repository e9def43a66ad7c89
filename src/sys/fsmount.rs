//! The fd-based mount API: fsopen/fsconfig/fsmount build a filesystem as a detached mount,
//! open_tree clones a tree, mount_setattr changes flags of a whole (detached) tree at once,
//! move_mount attaches it onto an fd. Nothing is visible until the final attach, so a
//! failure half-way leaves no mount behind, and the target is an fd found safely
//! (`safepath`), never a path the kernel resolves again.

use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd};

use nix::errno::Errno;
use rustix::fs::OFlags;
use rustix::mount::{
    self as rm, FsMountFlags, FsOpenFlags, MountAttrFlags, MoveMountFlags, OpenTreeFlags,
};

use super::error::{Result, SysError};
use super::safepath::rx;

pub const ATTR_RDONLY: u64 = 0x1;
pub const ATTR_NOSUID: u64 = 0x2;
pub const ATTR_NODEV: u64 = 0x4;
pub const ATTR_NOEXEC: u64 = 0x8;
pub const ATTR_IDMAP: u64 = 0x0010_0000;

/// The mount(2) flags (MS_*) for MOUNT_ATTR_RDONLY/NOSUID/NODEV/NOEXEC bits, for the
/// fallbacks where the fd API is missing.
pub fn ms_flags(attrs: u64) -> libc::c_ulong {
    let mut f = 0;
    for (attr, ms) in [
        (ATTR_RDONLY, libc::MS_RDONLY),
        (ATTR_NOSUID, libc::MS_NOSUID),
        (ATTR_NODEV, libc::MS_NODEV),
        (ATTR_NOEXEC, libc::MS_NOEXEC),
    ] {
        if attrs & attr != 0 {
            f |= ms;
        }
    }
    f
}
const AT_RECURSIVE: u32 = 0x8000;
const AT_EMPTY_PATH: u32 = 0x1000;

/// struct mount_attr (linux/mount.h), MOUNT_ATTR_SIZE_VER0.
#[repr(C)]
struct MountAttr {
    attr_set: u64,
    attr_clr: u64,
    propagation: u64,
    userns_fd: u64,
}

/// mount_setattr(2) on the mount (tree, with `recursive`) that `fd` is the root of: set and
/// clear MOUNT_ATTR_* bits, optionally an id-mapping from `userns`.
pub fn setattr(
    fd: BorrowedFd<'_>,
    recursive: bool,
    set: u64,
    clr: u64,
    userns: Option<BorrowedFd<'_>>,
) -> Result<()> {
    let attr = MountAttr {
        attr_set: set | if userns.is_some() { ATTR_IDMAP } else { 0 },
        attr_clr: clr,
        propagation: 0,
        userns_fd: userns.map_or(0, |u| u.as_raw_fd() as u64),
    };
    let flags = AT_EMPTY_PATH | if recursive { AT_RECURSIVE } else { 0 };
    // SAFETY: `attr` is a valid, initialised struct mount_attr that lives across the call;
    // the size passed is its size; the path is a static empty C string.
    let r = unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            fd.as_raw_fd(),
            c"".as_ptr(),
            flags,
            &attr as *const MountAttr,
            std::mem::size_of::<MountAttr>(),
        )
    };
    if r < 0 {
        let e = Errno::last();
        let err = SysError::os("mount_setattr", e);
        return Err(match (e, userns) {
            (Errno::EINVAL, Some(_)) => err.name("idmap").hint("an id-mapped mount needs a detached clone of a filesystem that supports idmapping, and a user namespace other than the caller's"),
            // The kernel refuses the initial user namespace outright; the map and
            // capability hint below would only mislead (both hold for it).
            (Errno::EPERM, Some(ns)) if is_initial_user_ns(ns) => err.name("idmap").hint(
                "the idmap namespace is the initial user namespace (the host's own, which a \
                 process not in a container is in): it maps nothing. Use the user namespace \
                 of a process started with \"user\" in ns and a uid_map, or an Ns of one",
            ),
            (Errno::EPERM, Some(_)) => err.name("idmap").hint("the user namespace must have a uid/gid map and the caller CAP_SYS_ADMIN over it"),
            _ => err,
        });
    }
    Ok(())
}

/// Whether `ns` (a user namespace fd) is the initial user namespace: its inode number is
/// fixed (PROC_USER_INIT_INO in include/linux/proc_ns.h).
fn is_initial_user_ns(ns: BorrowedFd<'_>) -> bool {
    const PROC_USER_INIT_INO: u64 = 0xEFFF_FFFD;
    rustix::fs::fstat(ns).is_ok_and(|st| st.st_ino == PROC_USER_INIT_INO)
}

/// The kernel's error log of a filesystem context (fsconfig messages), for error detail.
fn fs_log(fs: &OwnedFd) -> Option<String> {
    let mut msgs = Vec::new();
    let mut buf = [0u8; 512];
    while let Ok(n) = rustix::io::read(fs, &mut buf) {
        if n == 0 {
            break;
        }
        msgs.push(
            String::from_utf8_lossy(&buf[..n])
                .trim_start_matches("e ")
                .trim()
                .to_string(),
        );
        if msgs.len() > 8 {
            break;
        }
    }
    (!msgs.is_empty()).then(|| msgs.join("; "))
}

/// A filesystem being configured (fsopen). `op` names the script operation for errors.
pub struct FsBuilder {
    fd: OwnedFd,
    op: String,
    fstype: String,
}

impl FsBuilder {
    pub fn new(op: &str, fstype: &str) -> Result<FsBuilder> {
        let fd = rm::fsopen(fstype, FsOpenFlags::FSOPEN_CLOEXEC).map_err(|e| {
            let err = rx(op, e).name("fstype");
            if e == rustix::io::Errno::NODEV {
                err.detail(format!("unknown filesystem type {fstype:?}"))
                    .hint("the kernel's types are listed in /proc/filesystems")
            } else {
                err.detail(format!("fsopen {fstype}"))
            }
        })?;
        Ok(FsBuilder {
            fd,
            op: op.to_string(),
            fstype: fstype.to_string(),
        })
    }

    fn fail(&self, e: rustix::io::Errno, what: String) -> SysError {
        let err = rx(&self.op, e).detail(what);
        match self.log() {
            Some(log) => err.hint(log),
            None => err,
        }
    }

    /// The kernel's messages for this context, led by the filesystem's name ("tmpfs: Bad
    /// value for 'size'"); most already are, the others get it added.
    fn log(&self) -> Option<String> {
        let log = fs_log(&self.fd)?;
        Some(if log.starts_with(&format!("{}: ", self.fstype)) {
            log
        } else {
            format!("{}: {log}", self.fstype)
        })
    }

    /// fsconfig(FSCONFIG_SET_STRING, key, value).
    pub fn set(&self, key: &str, value: &str) -> Result<&Self> {
        rm::fsconfig_set_string(&self.fd, key, value)
            .map_err(|e| self.fail(e, format!("option {key}={value}")))?;
        Ok(self)
    }

    /// fsconfig(FSCONFIG_SET_FLAG, key).
    pub fn flag(&self, key: &str) -> Result<&Self> {
        rm::fsconfig_set_flag(&self.fd, key).map_err(|e| self.fail(e, format!("option {key}")))?;
        Ok(self)
    }

    /// Create the superblock and return it as a detached mount with MOUNT_ATTR_* `attrs`.
    pub fn mount(self, attrs: u64) -> Result<OwnedFd> {
        rm::fsconfig_create(&self.fd)
            .map_err(|e| self.fail(e, "creating the filesystem".into()))?;
        let a = MountAttrFlags::from_bits_retain(attrs as u32);
        rm::fsmount(&self.fd, FsMountFlags::FSMOUNT_CLOEXEC, a)
            .map_err(|e| self.fail(e, "fsmount".into()))
    }
}

/// Which option of a mount(2) `data` string ("size=1m,mode=755") the filesystem `fstype`
/// refuses, and the kernel's reason: the options are given one by one to a new filesystem
/// context, whose log keeps the message mount(2) only prints to the kernel log. Nothing is
/// created. None when each option is accepted, or there is no fd-based API to ask.
pub fn refused_option(fstype: &str, data: &str) -> Option<(String, Option<String>)> {
    if !available() {
        return None;
    }
    let b = FsBuilder::new("mount", fstype).ok()?;
    for opt in data.split(',').filter(|o| !o.is_empty()) {
        let r = match opt.split_once('=') {
            Some((k, v)) => b.set(k, v).map(|_| ()),
            None => b.flag(opt).map(|_| ()),
        };
        if let Err(e) = r {
            return Some((opt.to_string(), e.hint.clone()));
        }
    }
    None
}

/// A detached copy of the mount tree at `src` (an O_PATH fd), recursive or just the top.
pub fn clone_tree(src: BorrowedFd<'_>, recursive: bool) -> Result<OwnedFd> {
    let mut flags = OpenTreeFlags::OPEN_TREE_CLONE
        | OpenTreeFlags::OPEN_TREE_CLOEXEC
        | OpenTreeFlags::AT_EMPTY_PATH;
    if recursive {
        flags |= OpenTreeFlags::AT_RECURSIVE;
    }
    rm::open_tree(src, "", flags).map_err(|e| {
        let err = rx("open_tree", e);
        if e == rustix::io::Errno::INVAL {
            err.hint("an unbindable mount, or a mount of another mount namespace, cannot be cloned")
        } else {
            err
        }
    })
}

/// Attach the detached mount `tree` onto the object `target` (an O_PATH fd).
pub fn attach(tree: BorrowedFd<'_>, target: BorrowedFd<'_>) -> Result<()> {
    rm::move_mount(
        tree,
        "",
        target,
        "",
        MoveMountFlags::MOVE_MOUNT_F_EMPTY_PATH | MoveMountFlags::MOVE_MOUNT_T_EMPTY_PATH,
    )
    .map_err(|e| rx("move_mount", e))
}

/// Whether this kernel has the fd-based mount API (probed once: fsopen of tmpfs, ENOSYS
/// means no). `CTRSH_LEGACY_MOUNT=1` pretends it is missing, to exercise the mount(2)
/// fallbacks.
pub fn available() -> bool {
    thread_local! {
        static AVAIL: bool = std::env::var_os("CTRSH_LEGACY_MOUNT").is_none_or(|v| v != "1")
            && !matches!(rm::fsopen("tmpfs", FsOpenFlags::FSOPEN_CLOEXEC), Err(rustix::io::Errno::NOSYS));
    }
    AVAIL.with(|a| *a)
}

/// An O_PATH fd on `dir` inside the mount `tree` (resolved inside the tree), for mounting a
/// subdirectory of an image.
pub fn subdir(tree: BorrowedFd<'_>, dir: &str) -> Result<OwnedFd> {
    super::safepath::open_in(tree, dir, OFlags::PATH | OFlags::DIRECTORY)
}
