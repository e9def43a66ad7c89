//! The shell's view of the filesystem: the mount namespace it is in and its root directory,
//! held as fds. Work recorded in one view (a mount to detach, a directory to remove at the
//! end of a recipe) is done in that view later, after the shell has moved on with
//! `unshare(["mnt"])`, `setns`, `chroot` or `pivot_root` — where the same path would name
//! something else, or nothing.

use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::fs::MetadataExt;
use std::rc::Rc;

use rustix::fs::{Mode, OFlags};

use super::error::{Result, SysError};
use super::ns;
use super::safepath::rx;

/// A mount namespace and a root directory in it.
pub struct FsView {
    ns: OwnedFd,
    root: OwnedFd,
    id: ViewId,
}

/// Which view: the namespace's inode and the root directory's device and inode.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
struct ViewId {
    ns: u64,
    root: (u64, u64),
}

thread_local! {
    /// The view handed out last: recording many resources in one view opens it once.
    static LAST: std::cell::RefCell<Option<Rc<FsView>>> = const { std::cell::RefCell::new(None) };
}

/// The root directory as an O_PATH handle.
fn open_root() -> Result<OwnedFd> {
    super::safepath::open_dir(std::path::Path::new("/"))
}

/// An fd on this process's mount namespace: /proc/self/ns/mnt, or where /proc is not
/// mounted (after a pivot into a root without it) the pidfd ioctl of Linux 6.11.
fn open_own_mnt_ns() -> Result<OwnedFd> {
    match rustix::fs::open(
        "/proc/self/ns/mnt",
        OFlags::RDONLY | OFlags::CLOEXEC,
        Mode::empty(),
    ) {
        Ok(fd) => Ok(fd),
        Err(e) => {
            // PIDFD_GET_MNT_NAMESPACE is _IO(0xFF, 3); libc does not name it.
            const PIDFD_GET_MNT_NAMESPACE: libc::c_ulong = 0xff03;
            let pidfd = super::pidfd::open(std::process::id() as i32)
                .map_err(|_| rx("open", e).path("/proc/self/ns/mnt"))?;
            // SAFETY: the ioctl takes no argument and returns a new fd (or -1).
            let r = unsafe { libc::ioctl(pidfd.as_raw_fd(), PIDFD_GET_MNT_NAMESPACE as _, 0) };
            if r < 0 {
                return Err(SysError::last("PIDFD_GET_MNT_NAMESPACE")
                    .detail("the mount namespace without /proc"));
            }
            Ok(super::spawn::owned(r))
        }
    }
}

/// The identity of the view the process is in now; None when it cannot be told (no /proc).
fn id_now() -> Option<ViewId> {
    let ns = std::fs::metadata("/proc/self/ns/mnt").ok()?.ino();
    let root = std::fs::metadata("/").ok()?;
    Some(ViewId {
        ns,
        root: (root.dev(), root.ino()),
    })
}

fn id_of(ns: &OwnedFd, root: &OwnedFd) -> Result<ViewId> {
    let n = rustix::fs::fstat(ns).map_err(|e| rx("fstat", e))?;
    let r = rustix::fs::fstat(root).map_err(|e| rx("fstat", e))?;
    Ok(ViewId {
        ns: n.st_ino,
        root: (r.st_dev, r.st_ino),
    })
}

impl FsView {
    /// The view the process is in now (shared with earlier callers while it is the same).
    pub fn current() -> Result<Rc<FsView>> {
        let now = id_now();
        if let Some(v) = LAST.with(|l| l.borrow().clone()) {
            if Some(v.id) == now {
                return Ok(v);
            }
        }
        let (ns, root) = (open_own_mnt_ns()?, open_root()?);
        let id = match now {
            Some(id) => id,
            None => id_of(&ns, &root)?,
        };
        let v = Rc::new(FsView { ns, root, id });
        LAST.with(|l| *l.borrow_mut() = Some(v.clone()));
        Ok(v)
    }

    /// Move the process into this view: its mount namespace (when another) and its root.
    fn enter(&self, from_ns: Option<u64>) -> Result<()> {
        if from_ns != Some(self.id.ns) {
            ns::setns_mnt_back(self.ns.as_fd())?;
        }
        rustix::process::fchdir(&self.root)
            .map_err(|e| rx("chdir", e).detail("back to a recorded root"))?;
        rustix::process::chroot(".").map_err(|e| rx("chroot", e).detail("back to a recorded root"))
    }

    /// Run `f` in this view and come back: the mount namespace, root and working directory
    /// the process had are restored on every path. Without any switch when the process is
    /// in this view already.
    pub fn run<T>(&self, f: impl FnOnce() -> Result<T>) -> Result<T> {
        let now = id_now();
        if now == Some(self.id) {
            return f();
        }
        let (ns, root) = (open_own_mnt_ns()?, open_root()?);
        let back = FsView {
            id: match now {
                Some(id) => id,
                None => id_of(&ns, &root)?,
            },
            ns,
            root,
        };
        let cwd = super::safepath::open_dir(std::path::Path::new("."))?;
        let r = self.enter(Some(back.id.ns)).and_then(|()| f());
        // Whatever happened (even a half-done switch), go back. The namespace we may be in
        // is this view's: setns only when that differs from where we came from.
        let restored = back
            .enter(Some(self.id.ns))
            .and_then(|()| rustix::process::fchdir(&cwd).map_err(|e| rx("chdir", e)));
        match restored {
            Ok(()) => r,
            Err(e) => Err(e.detail("returning to the shell's own mount namespace and root")),
        }
    }
}
