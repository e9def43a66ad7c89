//! The attached process's mount namespace (cntr without FUSE): a private copy of the host's,
//! where the host tree stays at `/` and the container's root tree is attached at the attach
//! path (`/var/lib/ctrsh/attach` unless configured), with the container's identity files
//! bound over the host's.
//!
//! Runs in the launcher's child as its first namespace work — before it joins the target's
//! user namespace (`spawn/child.rs::setup`). The steps, in the order they must happen:
//!
//! 1. Clone the container's tree (open_tree OPEN_TREE_CLONE|AT_RECURSIVE on the target's
//!    /proc/PID/root, opened by the shell). The kernel only clones mounts of the caller's
//!    own mount namespace, so the child enters the target's for that one call and comes
//!    straight back (an NsGuard, restored on every path). This needs CAP_SYS_ADMIN over the
//!    target's mount namespace *and* our own, which the child has now, as root of the
//!    initial user namespace, and would not have after setns(user).
//! 2. unshare(CLONE_NEWNS): a copy of the host's mount namespace, so the host's own tools
//!    stay usable at `/`. Created before setns(user), it is owned by the initial user
//!    namespace: nobody in the container, root included, can setns into it (and see the
//!    host's tree), and only now can the child mount in it — after setns(user) it has no
//!    capability over a namespace the initial user namespace owns.
//! 3. Make `/` private, recursively, before mounting anything: the host's mounts are
//!    usually shared, and nothing of this namespace may propagate back to the host.
//! 4. Attach the tree at the attach path with move_mount (the directory is created on the
//!    host filesystem if missing: a directory, never a mount, outside this namespace).
//! 5. Bind the container's /etc/passwd, group, hostname, hosts and resolv.conf over the
//!    host's (each resolved inside the container's tree, so a hostile symlink cannot pick
//!    a host file), so tools see the container's users and names.
//! 6. Bind the container's /proc over /proc when it is a real procfs: the process is in
//!    the container's pid namespace, and `ps` should show the container's processes.

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::Path;
use std::rc::Rc;

use rustix::fs::OFlags;

use crate::sys::error::{Result, SysError};
use crate::sys::fsmount;
use crate::sys::mount;
use crate::sys::ns::{self, NsFd, NsGuard, NsKind};
use crate::sys::safepath;

/// The container files bound over the host's.
pub const ETC_FILES: [&str; 5] = [
    "/etc/passwd",
    "/etc/group",
    "/etc/hostname",
    "/etc/hosts",
    "/etc/resolv.conf",
];

/// What the child needs for the attach mount namespace.
#[derive(Clone)]
pub struct AttachRoot {
    /// The target's root directory (/proc/PID/root, O_PATH, opened by the shell).
    pub root: Rc<OwnedFd>,
    /// The target's mount namespace, when it is not the shell's.
    pub mnt: Option<Rc<NsFd>>,
    /// Where the container's tree goes (absolute, not `/`).
    pub at: String,
}

/// Check an attach path before anything happens.
pub fn check_at(op: &str, at: &str) -> Result<()> {
    mount::need_absolute(op, "tools_at", at)?;
    if at.split('/').any(|c| c == "..") {
        return Err(SysError::invalid(
            op,
            "tools_at",
            format!("{at:?} contains \"..\""),
        ));
    }
    if at.trim_end_matches('/').is_empty() {
        return Err(SysError::invalid(
            op,
            "tools_at",
            "the container cannot be attached at / (that is where the host's tools stay)",
        ));
    }
    Ok(())
}

/// Steps 1–6 of the module doc, in the launcher's child.
pub fn enter(a: &AttachRoot) -> Result<()> {
    // 1. The container's tree, taken inside its mount namespace.
    let tree = match &a.mnt {
        Some(m) => {
            let guard = NsGuard::enter(&[m.as_ref()])
                .map_err(|e| e.detail("entering the container's mount namespace"))?;
            let t = fsmount::clone_tree(a.root.as_fd(), true);
            guard.restore()?;
            t
        }
        None => fsmount::clone_tree(a.root.as_fd(), true),
    }
    .map_err(|e| e.detail("cloning the container's root tree"))?;
    // 2. and 3. A private copy of the host's mount namespace.
    ns::unshare(&[NsKind::Mnt])?;
    mount::propagation("/", "private", true)?;
    // 4. The tree at the attach path.
    std::fs::create_dir_all(&a.at)
        .map_err(|e| SysError::io("mkdir", &e).path(&a.at).name("tools_at"))?;
    let at = safepath::open_dir(Path::new(&a.at)).map_err(|e| e.name("tools_at"))?;
    fsmount::attach(tree.as_fd(), at.as_fd())
        .map_err(|e| e.path(&a.at).detail("attaching the container's tree"))?;
    // 5. Identity files.
    for f in ETC_FILES {
        bind_over(tree.as_fd(), f)?;
    }
    // 6. The container's /proc.
    bind_proc(tree.as_fd())
}

/// Bind the container's `path` (resolved in `tree`) over the host's, when both are
/// regular files. A file missing on either side is left alone (nothing is created on the
/// host).
fn bind_over(tree: BorrowedFd<'_>, path: &str) -> Result<()> {
    let Ok(src) = safepath::open_in(tree, path, OFlags::PATH) else {
        return Ok(());
    };
    let Ok(dst) = rustix::fs::open(
        path,
        OFlags::PATH | OFlags::CLOEXEC,
        rustix::fs::Mode::empty(),
    ) else {
        return Ok(());
    };
    let regular = |fd: &OwnedFd| {
        rustix::fs::fstat(fd).is_ok_and(|st| {
            rustix::fs::FileType::from_raw_mode(st.st_mode) == rustix::fs::FileType::RegularFile
        })
    };
    if !regular(&src) || !regular(&dst) {
        return Ok(());
    }
    let file = fsmount::clone_tree(src.as_fd(), false)
        .map_err(|e| e.path(path).detail("the container's copy"))?;
    fsmount::attach(file.as_fd(), dst.as_fd()).map_err(|e| {
        e.path(path)
            .detail("binding the container's copy over the host's")
    })
}

fn bind_proc(tree: BorrowedFd<'_>) -> Result<()> {
    let Ok(src) = safepath::open_in(tree, "proc", OFlags::PATH | OFlags::DIRECTORY) else {
        return Ok(());
    };
    // PROC_SUPER_MAGIC
    let is_proc = rustix::fs::fstatfs(&src).is_ok_and(|s| s.f_type == 0x9fa0);
    if !is_proc || !mount::is_mount_root(src.as_fd()).unwrap_or(false) {
        return Ok(());
    }
    let dst = safepath::open_dir(Path::new("/proc"))?;
    let t = fsmount::clone_tree(src.as_fd(), true)
        .map_err(|e| e.path("/proc").detail("the container's /proc"))?;
    fsmount::attach(t.as_fd(), dst.as_fd())
        .map_err(|e| e.path("/proc").detail("binding the container's /proc"))
}
