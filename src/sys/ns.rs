//! Namespaces: kinds, handles (fds that keep a namespace alive), unshare, setns, and a guard
//! that enters a namespace temporarily and always comes back.

use std::any::Any;
use std::cell::RefCell;
use std::fmt;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::fs::MetadataExt;
use std::rc::Rc;

use nix::fcntl::{open, OFlag};
use nix::sched::CloneFlags;
use nix::sys::stat::Mode;

use super::error::{Result, SysError};

/// The eight Linux namespace kinds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum NsKind {
    User,
    Mnt,
    Net,
    Pid,
    Uts,
    Ipc,
    Cgroup,
    Time,
}

impl NsKind {
    /// Every kind, in the order a container is best set up in (user first).
    pub const ALL: [NsKind; 8] = [
        NsKind::User,
        NsKind::Mnt,
        NsKind::Net,
        NsKind::Pid,
        NsKind::Uts,
        NsKind::Ipc,
        NsKind::Cgroup,
        NsKind::Time,
    ];

    /// The script name ("net"), also the /proc/PID/ns entry for all but pid/time children.
    pub fn name(self) -> &'static str {
        match self {
            NsKind::User => "user",
            NsKind::Mnt => "mnt",
            NsKind::Net => "net",
            NsKind::Pid => "pid",
            NsKind::Uts => "uts",
            NsKind::Ipc => "ipc",
            NsKind::Cgroup => "cgroup",
            NsKind::Time => "time",
        }
    }

    /// Parse a script name. Accepts "mount" as an alias of "mnt".
    pub fn parse(s: &str) -> Result<NsKind> {
        Ok(match s {
            "user" => NsKind::User,
            "mnt" | "mount" => NsKind::Mnt,
            "net" | "network" => NsKind::Net,
            "pid" => NsKind::Pid,
            "uts" => NsKind::Uts,
            "ipc" => NsKind::Ipc,
            "cgroup" => NsKind::Cgroup,
            "time" => NsKind::Time,
            _ => {
                return Err(SysError::invalid(
                    "namespace",
                    "kind",
                    format!("unknown namespace kind {s:?}"),
                )
                .hint("kinds are user, mnt, net, pid, uts, ipc, cgroup, time"))
            }
        })
    }

    pub fn clone_flag(self) -> CloneFlags {
        match self {
            NsKind::User => CloneFlags::CLONE_NEWUSER,
            NsKind::Mnt => CloneFlags::CLONE_NEWNS,
            NsKind::Net => CloneFlags::CLONE_NEWNET,
            NsKind::Pid => CloneFlags::CLONE_NEWPID,
            NsKind::Uts => CloneFlags::CLONE_NEWUTS,
            NsKind::Ipc => CloneFlags::CLONE_NEWIPC,
            NsKind::Cgroup => CloneFlags::CLONE_NEWCGROUP,
            // CLONE_NEWTIME is 0x80 and not in nix's CloneFlags.
            NsKind::Time => CloneFlags::from_bits_retain(libc::CLONE_NEWTIME),
        }
    }

    /// The /proc/PID/ns entry that names the namespace new children of PID get
    /// (pid and time namespaces apply to children: `pid_for_children`, `time_for_children`).
    fn proc_entry_for_children(self) -> &'static str {
        match self {
            NsKind::Pid => "pid_for_children",
            NsKind::Time => "time_for_children",
            k => k.name(),
        }
    }
}

impl fmt::Display for NsKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Combined clone flags of several kinds.
pub fn clone_flags(kinds: &[NsKind]) -> CloneFlags {
    kinds
        .iter()
        .fold(CloneFlags::empty(), |acc, k| acc | k.clone_flag())
}

/// Where this process's new children go, as far as pid namespaces are concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChildrenPidNs {
    /// Its own pid namespace.
    Own,
    /// Another one that has had an init (after setns into a pid namespace, or an unshare
    /// whose first child was created). Only such a namespace can have lost its init: when a
    /// namespace's init exits, every other process in it is killed, this one too.
    Other,
    /// A namespace unshared but still without a process (its first child will be its init;
    /// the kernel shows no `pid_for_children` until then).
    Unpopulated,
    /// /proc could not say.
    Unknown,
}

/// Which pid namespace this process's new children go to ([`ChildrenPidNs`]).
pub fn children_pid_ns() -> ChildrenPidNs {
    let ino = |entry: &str| std::fs::metadata(format!("/proc/self/ns/{entry}")).map(|m| m.ino());
    match (ino("pid"), ino("pid_for_children")) {
        (Ok(own), Ok(children)) if own == children => ChildrenPidNs::Own,
        (Ok(_), Ok(_)) => ChildrenPidNs::Other,
        (Ok(_), Err(e)) if e.kind() == std::io::ErrorKind::NotFound => ChildrenPidNs::Unpopulated,
        _ => ChildrenPidNs::Unknown,
    }
}

/// An open namespace: the fd keeps it alive while any handle to it exists.
#[derive(Debug)]
pub struct NsFd {
    pub kind: NsKind,
    pub inode: u64,
    fd: OwnedFd,
    /// What lives exactly as long as this handle (the netlink socket opened in the
    /// namespace for it, which would otherwise keep the namespace alive by itself).
    ties: RefCell<Vec<Rc<dyn Any>>>,
}

impl NsFd {
    /// Open `/proc/<pid>/ns/<kind>` ("self" for pid 0). This is the namespace the process
    /// itself is in (for pid and time namespaces, not the one its children get).
    pub fn of_pid(pid: i32, kind: NsKind) -> Result<NsFd> {
        let path = if pid == 0 {
            format!("/proc/self/ns/{}", kind.name())
        } else {
            format!("/proc/{pid}/ns/{}", kind.name())
        };
        Self::open_path(&path, kind)
    }

    /// Open the namespace this process's future children get (pid_for_children ...).
    pub fn for_children(kind: NsKind) -> Result<NsFd> {
        Self::open_path(
            &format!("/proc/self/ns/{}", kind.proc_entry_for_children()),
            kind,
        )
    }

    /// Open a namespace file (a /proc/PID/ns entry or a bind mount of one, as `ip netns`
    /// keeps under /run/netns). The file must be a namespace of `kind`: the kernel is asked
    /// (NS_GET_NSTYPE), so a wrong path fails here and not at a later setns.
    pub fn open_path(path: &str, kind: NsKind) -> Result<NsFd> {
        let fd = open(path, OFlag::O_RDONLY | OFlag::O_CLOEXEC, Mode::empty())
            .map_err(|e| SysError::os("open namespace", e).path(path))?;
        match kind_of_fd(fd.as_fd()) {
            Ok(k) if k == kind => {}
            Ok(other) => {
                return Err(SysError::invalid(
                    "open namespace",
                    "path",
                    format!("{path} is a {other} namespace, not a {kind} namespace"),
                ))
            }
            Err(nix::errno::Errno::ENOTTY | nix::errno::Errno::EINVAL) => {
                return Err(SysError::invalid(
                    "open namespace",
                    "path",
                    format!("{path} is not a namespace file"),
                )
                .hint("namespace files are /proc/PID/ns/* and bind mounts of them, like /run/netns/NAME"))
            }
            Err(e) => return Err(SysError::os("NS_GET_NSTYPE", e).path(path)),
        }
        let ns = Self::from_fd(fd, kind).map_err(|e| e.path(path))?;
        Ok(ns)
    }

    /// Wrap an fd already known to be a namespace of `kind`.
    pub fn from_fd(fd: OwnedFd, kind: NsKind) -> Result<NsFd> {
        let st =
            nix::sys::stat::fstat(fd.as_fd()).map_err(|e| SysError::os("fstat namespace", e))?;
        Ok(NsFd {
            kind,
            inode: st.st_ino,
            fd,
            ties: RefCell::new(Vec::new()),
        })
    }

    /// Keep `t` alive as long as this handle, and no longer.
    pub fn tie(&self, t: Rc<dyn Any>) {
        self.ties.borrow_mut().push(t);
    }

    /// Move this process into the namespace.
    pub fn enter(&self) -> Result<()> {
        setns_fd(self.fd.as_fd(), self.kind)
    }
}

impl AsFd for NsFd {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

impl AsRawFd for NsFd {
    fn as_raw_fd(&self) -> std::os::fd::RawFd {
        self.fd.as_raw_fd()
    }
}

/// The kind of namespace an fd refers to, from ioctl(NS_GET_NSTYPE) (Linux 4.11). A file
/// that is not a namespace gives ENOTTY.
pub fn kind_of_fd(fd: BorrowedFd<'_>) -> std::result::Result<NsKind, nix::errno::Errno> {
    // NS_GET_NSTYPE is _IO(0xb7, 0x3); libc does not name it.
    const NS_GET_NSTYPE: libc::c_ulong = 0xb703;
    // SAFETY: NS_GET_NSTYPE takes no argument and only reads the fd's namespace type.
    let r = unsafe { libc::ioctl(fd.as_raw_fd(), NS_GET_NSTYPE as _) };
    if r < 0 {
        return Err(nix::errno::Errno::last());
    }
    NsKind::ALL
        .into_iter()
        .find(|k| k.clone_flag().bits() == r)
        .ok_or(nix::errno::Errno::EINVAL)
}

/// setns(2) on an fd of a namespace of `kind` (or a pidfd with the kind's flag).
pub fn setns_fd(fd: BorrowedFd<'_>, kind: NsKind) -> Result<()> {
    super::thread::assert_single_threaded("setns")?;
    setns_checked(fd, kind)
}

/// setns(2) back into a mount namespace the shell was in (teardown after it moved). The
/// thread check needs /proc, which the root the shell moved to may lack: it is made where
/// it can be.
pub fn setns_mnt_back(fd: BorrowedFd<'_>) -> Result<()> {
    if std::path::Path::new("/proc/self/task").exists() {
        super::thread::assert_single_threaded("setns")?;
    }
    setns_checked(fd, NsKind::Mnt)
}

/// setns(2) for a caller that checked it is single-threaded already (NsGuard checks once
/// before it moves: inside another mount namespace /proc/self may not exist).
fn setns_checked(fd: BorrowedFd<'_>, kind: NsKind) -> Result<()> {
    nix::sched::setns(fd, kind.clone_flag()).map_err(|e| {
        let err = SysError::os("setns", e).name(kind.name());
        match (e, kind) {
            (nix::errno::Errno::EINVAL, NsKind::User) => {
                err.hint("cannot re-enter an ancestor or the current user namespace, or enter one from a chroot")
            }
            (nix::errno::Errno::EPERM, _) => err.hint("entering needs CAP_SYS_ADMIN in the namespace's owning user namespace"),
            _ => err,
        }
    })
}

/// Inode of the namespace of `kind` that `pid` (0 = self) is in.
pub fn inode_of(pid: i32, kind: NsKind) -> Result<u64> {
    let path = if pid == 0 {
        format!("/proc/self/ns/{}", kind.name())
    } else {
        format!("/proc/{pid}/ns/{}", kind.name())
    };
    std::fs::metadata(&path)
        .map(|m| m.ino())
        .map_err(|e| SysError::io("stat namespace", &e).path(path))
}

/// Refuse to change the root of a mount namespace the shell shares with its parent: a
/// pivot there changes the root of every process in it (the host's, when it is the host's
/// namespace and `unshare(["mnt"])` was forgotten). A parent outside our pid namespace, or
/// one whose namespace cannot be read (gone, no /proc), is no evidence either way.
pub fn require_own_mnt_ns(op: &str) -> Result<()> {
    let ppid = nix::unistd::getppid().as_raw();
    if ppid <= 0 {
        return Ok(());
    }
    let (Ok(mine), Ok(theirs)) = (inode_of(0, NsKind::Mnt), inode_of(ppid, NsKind::Mnt)) else {
        return Ok(());
    };
    if mine != theirs {
        return Ok(());
    }
    let comm = std::fs::read_to_string(format!("/proc/{ppid}/comm")).unwrap_or_default();
    Err(SysError::invalid(
        op,
        "mount namespace",
        format!(
            "the shell shares its mount namespace with its parent (pid {ppid}, {}): changing \
             the root here would change it for every process in that namespace",
            comm.trim()
        ),
    )
    .hint("call unshare([\"mnt\"]) first: then only the shell's own view changes"))
}

/// The inodes of this process's current namespaces, kinds the kernel lacks left out.
pub fn current_inodes() -> Vec<(NsKind, u64)> {
    NsKind::ALL
        .iter()
        .filter_map(|&k| inode_of(0, k).ok().map(|i| (k, i)))
        .collect()
}

/// unshare(2) the given kinds for this process.
pub fn unshare(kinds: &[NsKind]) -> Result<()> {
    super::thread::assert_single_threaded("unshare")?;
    let names: Vec<&str> = kinds.iter().map(|k| k.name()).collect();
    nix::sched::unshare(clone_flags(kinds)).map_err(|e| {
        let err = SysError::os("unshare", e).name(names.join(","));
        match e {
            nix::errno::Errno::EPERM => err.hint("creating namespaces other than user needs CAP_SYS_ADMIN; add \"user\" to create them unprivileged"),
            nix::errno::Errno::ENOSPC => err.hint("a namespace count limit was reached: see /proc/sys/user/max_*_namespaces"),
            nix::errno::Errno::EINVAL => err.hint("the kernel may lack one of these kinds, or the process is multi-threaded or chrooted"),
            _ => err,
        }
    })
}

/// A new network namespace held only by an fd: no fork, no /run/netns. The calling
/// process unshares a netns and returns to its own at once (both steps under a guard).
pub fn netns_new() -> Result<NsFd> {
    let home = NsFd::of_pid(0, NsKind::Net)?;
    unshare(&[NsKind::Net])?;
    let created = NsFd::of_pid(0, NsKind::Net);
    // Always go home, even if opening the new namespace failed.
    let back = home.enter();
    let created = created?;
    back?;
    Ok(created)
}

/// Where the process was before a temporary setns; going back happens on drop.
///
/// Entering a mount namespace changes the root and working directory; both are saved
/// and restored too.
pub struct NsGuard {
    home: Vec<NsFd>,
    root: Option<OwnedFd>,
    cwd: Option<OwnedFd>,
    restored: bool,
}

impl NsGuard {
    /// Enter `targets` (in order), remembering the current namespace of each kind.
    /// A user namespace cannot be entered temporarily: the way back needs privileges that
    /// entering it takes away.
    pub fn enter(targets: &[&NsFd]) -> Result<NsGuard> {
        let mut guard = NsGuard {
            home: Vec::new(),
            root: None,
            cwd: None,
            restored: false,
        };
        // Every way home is opened before the first move: once in another mount namespace,
        // /proc/self may be a /proc in which this process does not exist.
        let mut moves = Vec::new();
        for (i, t) in targets.iter().enumerate() {
            // Two of one kind: only the last would count, and which one the body ran in
            // would depend on the order given.
            if targets[..i].iter().any(|o| o.kind == t.kind) {
                return Err(SysError::invalid(
                    "in_ns",
                    "ns",
                    format!(
                        "two {} namespaces given; a process is in one of each kind",
                        t.kind
                    ),
                ));
            }
            if t.kind == NsKind::User {
                return Err(SysError::invalid(
                    "in_ns",
                    "user",
                    "a user namespace cannot be entered temporarily",
                )
                .hint("use fork(|| { setns(ns); ... }) to run code inside a user namespace"));
            }
            if t.kind == NsKind::Mnt && guard.root.is_none() {
                guard.root = Some(open_dir("/")?);
                guard.cwd = Some(open_dir(".")?);
            }
            let home = if matches!(t.kind, NsKind::Pid | NsKind::Time) {
                NsFd::for_children(t.kind)?
            } else {
                NsFd::of_pid(0, t.kind)?
            };
            if home.inode != t.inode {
                moves.push((*t, home));
            }
        }
        if !moves.is_empty() {
            // Checked once, while /proc/self is still ours (nothing to check when already
            // home everywhere: no setns happens).
            super::thread::assert_single_threaded("setns")?;
        }
        for (t, home) in moves {
            setns_checked(t.as_fd(), t.kind)?; // on error the guard's drop goes home
            guard.home.push(home);
        }
        Ok(guard)
    }

    /// Go back now and report a failure (drop does the same but can only log it).
    pub fn restore(mut self) -> Result<()> {
        self.restore_inner()
    }

    fn restore_inner(&mut self) -> Result<()> {
        if self.restored {
            return Ok(());
        }
        self.restored = true;
        let mut first_err = None;
        for home in self.home.iter().rev() {
            if let Err(e) = setns_checked(home.as_fd(), home.kind) {
                first_err.get_or_insert(e);
            }
        }
        if let Some(root) = &self.root {
            if let Err(e) = nix::unistd::fchdir(root.as_fd()).and_then(|_| nix::unistd::chroot("."))
            {
                first_err.get_or_insert(SysError::os("restore root", e));
            }
        }
        if let Some(cwd) = &self.cwd {
            if let Err(e) = nix::unistd::fchdir(cwd.as_fd()) {
                first_err.get_or_insert(SysError::os("restore cwd", e));
            }
        }
        first_err.map_or(Ok(()), Err)
    }
}

impl Drop for NsGuard {
    fn drop(&mut self) {
        if let Err(e) = self.restore_inner() {
            // Nothing can be returned from drop; a stranded shell must at least be told.
            eprintln!("ctrsh: warning: could not return to the original namespace: {e}");
        }
    }
}

fn open_dir(path: &str) -> Result<OwnedFd> {
    open(
        path,
        OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| SysError::os("open", e).path(path))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_kinds_and_reject_unknown() {
        for k in NsKind::ALL {
            assert_eq!(NsKind::parse(k.name()).unwrap(), k);
        }
        assert_eq!(NsKind::parse("mount").unwrap(), NsKind::Mnt);
        let e = NsKind::parse("nett").unwrap_err();
        assert!(
            e.to_string().contains("unknown namespace kind \"nett\""),
            "{e}"
        );
    }

    #[test]
    fn opening_checks_the_file_is_a_namespace_of_the_kind() {
        for k in NsKind::ALL {
            let n = NsFd::of_pid(0, k).unwrap();
            assert_eq!(kind_of_fd(n.as_fd()), Ok(k));
        }
        let e = NsFd::open_path("/proc/self/ns/uts", NsKind::Net).unwrap_err();
        assert!(
            e.to_string()
                .contains("is a uts namespace, not a net namespace"),
            "{e}"
        );
        assert_eq!(e.name.as_deref(), Some("path"));
        let e = NsFd::open_path("/proc/self/status", NsKind::Net).unwrap_err();
        assert!(e.to_string().contains("is not a namespace file"), "{e}");
    }

    #[test]
    fn current_inodes_match_proc() {
        let inodes = current_inodes();
        assert!(inodes.len() >= 7);
        for (k, ino) in inodes {
            assert_eq!(
                ino,
                std::fs::metadata(format!("/proc/self/ns/{}", k.name()))
                    .unwrap()
                    .ino()
            );
        }
    }
}
