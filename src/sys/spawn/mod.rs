//! The container launcher: a [`Plan`] (plain data, checked before anything happens) carried
//! out in a fixed order, as bubblewrap and youki do.
//!
//! Parent (the shell)                      Child (clone3 with CLONE_PIDFD)
//! ------------------                      -------------------------------
//! enter joined namespaces but user        (inherits them)
//!   temporarily; clone3; come back        its own process group (sys::jobctl);
//! its own process group (too)               parent-death signal; join cgroups
//!                                           (cgroup_procs); attach mounts
//!                                           (Root::Attach); setns(cgroup) when deferred
//! write setgroups, uid_map, gid_map       setns(user) when joining one; wait for "go"
//! caller: setup closure, cgroup           …
//! send "go"                               become root inside; unshare cgroup/time (after
//!                                           the cgroup move, so its root is the new cgroup);
//!                                           hostname; mounts, rootfs, pivot_root, /proc
//!                                         init: fork the payload, reap, forward signals
//!                                         payload: rlimits, cwd, tty, fds, groups/gid/uid,
//!                                           caps, no_new_privs, signals, exec
//! read the error pipe: EOF = exec'd       any failure: written to the error pipe, _exit
//!
//! The error pipe is close-on-exec, so the parent learns of a successful exec by EOF and of
//! any failure (which step, which object, the errno) by a message.

mod child;
mod clone;
mod report;

use std::ffi::CString;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::rc::Rc;

use super::attach::AttachRoot;
use super::caps::{CapSet, CapState};
use super::error::{Result, SysError};
use super::idmap::{self, IdMap, Which};
use super::ns::{NsFd, NsGuard, NsKind};
use super::rlimit::Limit;
use super::rootfs::Rootfs;

pub use clone::{fork, fork_server, vfork, Forked};

/// How the child's root filesystem is set up.
#[derive(Clone)]
pub enum Root {
    /// Keep the current root (and, with new mnt+pid namespaces, mount a fresh /proc).
    Keep,
    /// Pivot into an existing directory.
    Dir(String),
    /// Build a tmpfs root from a plan and pivot into it.
    Plan(Rootfs),
    /// A private copy of the shell's mount namespace with a container's tree attached
    /// (attach; see `sys/attach/mounts.rs`). Set up before a joined user namespace is
    /// entered.
    Attach(AttachRoot),
}

/// The payload's terminal: a new pty from the devpts instance seen under `root`, its
/// master sent to the shell over `sock` (one end of a socket pair), the peer made the
/// payload's controlling terminal and its standard streams (those not given in `fds`).
#[derive(Clone)]
pub struct TtyPlan {
    pub sock: RawFd,
    /// The directory whose `dev/ptmx` (or `dev/pts/ptmx`) is opened, in the payload's view.
    pub root: String,
}

/// Everything the launcher needs; no side effects until [`start`].
pub struct Plan {
    /// The program and its arguments (`argv[0]` is looked up on the payload's PATH).
    pub argv: Vec<CString>,
    /// Namespaces to create.
    pub create: Vec<NsKind>,
    /// Namespaces to join instead.
    pub join: Vec<(NsKind, Rc<NsFd>)>,
    pub uid_map: Option<IdMap>,
    pub gid_map: Option<IdMap>,
    /// `/proc/PID/setgroups`: Some(true) "allow", Some(false) "deny", None: default.
    pub setgroups: Option<bool>,
    pub root: Root,
    pub hostname: Option<String>,
    /// The payload's environment, `NAME=value`.
    pub env: Vec<CString>,
    pub cwd: Option<String>,
    pub uid: Option<u32>,
    pub gid: Option<u32>,
    pub groups: Option<Vec<u32>>,
    /// Capabilities to keep (None: leave them as they are).
    pub caps: Option<CapSet>,
    /// Exact capability sets, bounding and ambient included (attach: the target's).
    /// Exclusive with `caps`.
    pub cap_state: Option<CapState>,
    pub no_new_privs: bool,
    pub rlimits: Vec<Limit>,
    /// Time namespace offsets: (clock name "monotonic"/"boottime", seconds).
    pub time_offsets: Vec<(String, i64)>,
    /// (target fd in the payload, source fd in the shell). The caller keeps the sources
    /// open until `go` returns.
    pub fds: Vec<(RawFd, RawFd)>,
    /// Run the payload under ctrsh's mini-init (as pid 1 of a new pid namespace).
    pub init: bool,
    /// A cgroup v2 directory (O_RDONLY|O_DIRECTORY) for CLONE_INTO_CGROUP.
    pub cgroup_fd: Option<RawFd>,
    /// cgroup.procs files the child writes "0" to first (joining those cgroups, v1 or v2).
    /// With any, a joined cgroup namespace is entered by the child after the moves, not
    /// around clone3: from inside it the kernel would refuse them.
    pub cgroup_procs: Vec<String>,
    /// Kill the child when the shell dies (PR_SET_PDEATHSIG), unless detached.
    pub die_with_parent: bool,
    /// Start a new session (setsid): a detached container is not in the shell's terminal
    /// job control.
    pub new_session: bool,
    /// A pty for the payload.
    pub tty: Option<TtyPlan>,
    /// The caller has work to do between `start` and `go` (a setup closure, a cgroup move):
    /// the child waits for "go". It always waits when id maps are to be written.
    pub hold: bool,
}

impl Plan {
    pub fn creates(&self, k: NsKind) -> bool {
        self.create.contains(&k)
    }
    pub fn joins(&self, k: NsKind) -> bool {
        self.join.iter().any(|(j, _)| *j == k)
    }
    /// Whether the child waits for the parent's "go": when maps are to be written or the
    /// caller holds it for a setup step. Otherwise it goes on at once (one round trip less).
    pub fn waits(&self) -> bool {
        self.hold || self.creates(NsKind::User)
    }
    fn user_ns(&self) -> bool {
        self.creates(NsKind::User) || self.joins(NsKind::User)
    }
    /// Whether id 0 is mapped in a user namespace this plan creates (the maps are written
    /// by the parent before "go": the child need not read them back). None when the
    /// namespace is joined: its maps are only known from /proc.
    fn maps_root(&self, which: Which) -> Option<bool> {
        if !self.creates(NsKind::User) {
            return None;
        }
        let map = match which {
            Which::Uid => self.uid_map.as_ref(),
            Which::Gid => self.gid_map.as_ref(),
        };
        // No map given: write_maps writes `0 <own id> 1`.
        Some(map.is_none_or(|m| m.ranges.iter().any(|r| r.inside == 0 && r.count > 0)))
    }
    /// Whether a fresh /proc is mounted (new mnt and pid namespaces and no rootfs plan that
    /// decides for itself).
    fn mount_proc(&self) -> bool {
        self.creates(NsKind::Pid)
            && (self.creates(NsKind::Mnt) || self.joins(NsKind::Mnt))
            && !matches!(self.root, Root::Plan(_))
    }
    /// Whether the child is put in a process group of its own (`sys::jobctl`): always but
    /// when it starts a session (detach) or its payload does (a pty without init: setsid
    /// fails for a group leader).
    fn own_group(&self) -> bool {
        !self.new_session && (self.tty.is_none() || self.init)
    }
    /// Whether the mini-init is not pid 1 of a namespace of its own: it is then a
    /// subreaper, holds the payload's tree (orphans included) and ends it with the payload.
    fn init_holds_tree(&self) -> bool {
        self.init && !self.creates(NsKind::Pid)
    }
    /// Whether a joined cgroup namespace waits for the child (see `cgroup_procs`).
    fn defers_cgroup_ns(&self) -> bool {
        !self.cgroup_procs.is_empty()
    }
}

/// A child that exists (its namespaces too) but has not been let go: the caller may look at
/// it, move links into its netns, place it in cgroups. Dropping it kills and reaps it.
pub struct Pending {
    pid: i32,
    pidfd: Option<OwnedFd>,
    go: Option<OwnedFd>,
    errors: Option<OwnedFd>,
    stops: Option<OwnedFd>,
    /// Whether CLONE_INTO_CGROUP placed it already.
    pub in_cgroup: bool,
    /// Whether the child waits for "go" (see [`Plan::waits`]).
    waits: bool,
}

/// A child that has exec'd its payload (or mini-init, which has): its pidfd.
pub struct Child {
    pub pidfd: Option<OwnedFd>,
    /// A mini-init's reports of its payload's stops (one byte each: the signal).
    pub stops: Option<OwnedFd>,
}

fn pipe() -> Result<(OwnedFd, OwnedFd)> {
    nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(|e| SysError::os("pipe", e))
}

/// Create the child with its namespaces and write its id maps. The returned [`Pending`]
/// holds it until [`Pending::go`].
pub fn start(plan: &Plan) -> Result<Pending> {
    super::thread::assert_single_threaded("spawn")?;
    if plan.joins(NsKind::User) && plan.creates(NsKind::Pid) {
        return Err(SysError::invalid(
            "spawn",
            "ns",
            "creating a pid namespace while joining a user namespace is not supported",
        )
        .hint("create the pid namespace from inside: fork(|| { setns(user); ... })"));
    }
    let (go_rd, go_wr) = pipe()?;
    let (err_rd, err_wr) = pipe()?;
    // A mini-init tells the shell when its payload stops (see sys::jobctl). Non-blocking on
    // both ends: init never waits for a shell that does not read, nor the shell for init. A
    // child in a session of its own is never given the terminal: nobody would read it.
    let stops = (plan.init && !plan.new_session)
        .then(|| {
            nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC | nix::fcntl::OFlag::O_NONBLOCK)
                .map_err(|e| SysError::os("pipe", e))
        })
        .transpose()?;

    // Namespaces created at clone time: all requested ones except cgroup (created after the
    // cgroup move, so that its root is the new cgroup) and time (its offsets must be written
    // before any process is in it) — and none when joining a user namespace (they must be
    // owned by the joined one, so the child unshares them after setns).
    let at_clone: Vec<NsKind> = if plan.joins(NsKind::User) {
        Vec::new()
    } else {
        plan.create
            .iter()
            .copied()
            .filter(|k| !matches!(k, NsKind::Cgroup | NsKind::Time))
            .collect()
    };

    // Joined namespaces other than user are entered by the shell just around the clone, so
    // the child starts in them (pid and time apply to children: exactly what is needed).
    let joined: Vec<&NsFd> = plan
        .join
        .iter()
        .filter(|(k, _)| *k != NsKind::User)
        .filter(|(k, _)| !(*k == NsKind::Cgroup && plan.defers_cgroup_ns()))
        .map(|(_, n)| n.as_ref())
        .collect();
    // Probe the fd mount API here, once per shell: every child inherits the answer instead
    // of probing (an fsopen and a close) after its clone.
    if plan.creates(NsKind::Mnt) {
        super::fsmount::available();
    }
    // Flush what the shell printed so the child does not inherit a half-written buffer.
    use std::io::Write;
    let _ = std::io::stdout().flush();
    let guard = NsGuard::enter(&joined)?;
    let forked = clone::clone_child(&at_clone, plan.cgroup_fd);
    let forked = match forked {
        Ok(Forked::Child) => {
            // The guard's copy in the child must never run: the child stays where it is.
            std::mem::forget(guard);
            drop(go_wr);
            drop(err_rd);
            child::run(plan, go_rd, err_wr, stops.map(|(_, wr)| wr))
        }
        Ok(f) => f,
        Err(e) => {
            drop(guard);
            return Err(e);
        }
    };
    guard.restore()?;
    let Forked::Parent {
        pid,
        pidfd,
        into_cgroup,
    } = forked
    else {
        unreachable!("the child branch never returns")
    };
    drop(go_rd);
    drop(err_wr);
    if plan.own_group() {
        super::jobctl::set_group(pid);
    }
    let pending = Pending {
        pid,
        pidfd,
        go: Some(go_wr),
        errors: Some(err_rd),
        stops: stops.map(|(rd, _)| rd),
        in_cgroup: into_cgroup,
        waits: plan.waits(),
    };
    if plan.creates(NsKind::User) {
        write_maps(plan, pid)?; // on error `pending` is dropped: the child is killed
    }
    Ok(pending)
}

/// setgroups, then uid_map and gid_map, with the defaults of `unshare -r`: root inside is
/// the shell's own uid/gid outside.
fn write_maps(plan: &Plan, pid: i32) -> Result<()> {
    let euid = nix::unistd::geteuid().as_raw();
    let egid = nix::unistd::getegid().as_raw();
    let uid_map = plan.uid_map.clone().unwrap_or_else(|| IdMap::root_to(euid));
    let gid_map = plan.gid_map.clone().unwrap_or_else(|| IdMap::root_to(egid));
    // "deny" is required for an unprivileged one-id gid map; root may allow setgroups.
    let allow = plan.setgroups.unwrap_or(euid == 0);
    idmap::write_setgroups(pid, allow)?;
    idmap::write_map(pid, Which::Uid, &uid_map)?;
    idmap::write_map(pid, Which::Gid, &gid_map)
}

impl Pending {
    pub fn pid(&self) -> i32 {
        self.pid
    }

    pub fn pidfd(&self) -> Option<BorrowedFd<'_>> {
        self.pidfd.as_ref().map(|f| f.as_fd())
    }

    /// Let the child run its payload; returns when it has exec'd, or with the error of the
    /// step that failed (the child is reaped then).
    pub fn go(mut self) -> Result<Child> {
        let go = self.go.take().expect("go pipe");
        if self.waits {
            // EPIPE here means the child already died; its error message (if any) says why.
            let _ = nix::unistd::write(&go, b"g");
        }
        drop(go);
        let errors = self.errors.take().expect("error pipe");
        let msg = read_all(errors.as_raw_fd());
        drop(errors);
        if msg.is_empty() {
            let pidfd = self.pidfd.take();
            let stops = self.stops.take();
            std::mem::forget(self);
            return Ok(Child { pidfd, stops });
        }
        let err = report::decode(&msg).unwrap_or_else(|| {
            SysError::protocol(
                "spawn",
                "the child failed before exec and sent an unreadable report",
            )
        });
        self.reap();
        drop(self.stops.take());
        std::mem::forget(self);
        Err(err)
    }

    fn reap(&mut self) {
        match &self.pidfd {
            Some(fd) => {
                let _ = super::wait::reap(fd.as_fd(), false);
            }
            None => {
                let _ = super::wait::reap_pid(self.pid);
            }
        }
    }
}

impl Drop for Pending {
    /// Not let go: kill and reap the child so nothing is left behind.
    fn drop(&mut self) {
        match &self.pidfd {
            Some(fd) => {
                let _ = super::pidfd::send_signal(fd.as_fd(), libc::SIGKILL);
            }
            None => {
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(self.pid),
                    nix::sys::signal::Signal::SIGKILL,
                );
            }
        }
        self.reap();
    }
}

/// Read until EOF (EINTR retried: the child is about to exec or fail, never long).
fn read_all(fd: RawFd) -> Vec<u8> {
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        // SAFETY: reading into a local buffer of the given length.
        let n = unsafe { libc::read(fd, buf.as_mut_ptr().cast(), buf.len()) };
        if n > 0 {
            out.extend_from_slice(&buf[..n as usize]);
        } else if n == 0 || nix::errno::Errno::last() != nix::errno::Errno::EINTR {
            return out;
        }
    }
}

/// An fd from a raw number the kernel just gave us.
pub(crate) fn owned(fd: RawFd) -> OwnedFd {
    // SAFETY: only called with descriptors freshly returned by the kernel to this process.
    unsafe { OwnedFd::from_raw_fd(fd) }
}
