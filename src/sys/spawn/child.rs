//! The child side of the launcher, in the order of `spawn/mod.rs`'s table. Runs in a fresh
//! clone of the (single-threaded) shell; never returns: it execs the payload or reports the
//! failing step on the error pipe and exits.

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::path::Path;

use nix::errno::Errno;
use nix::unistd::{Gid, Uid};

use super::{report, Plan, Root};
use crate::sys::error::{Result, SysError};
use crate::sys::fsmount::{self, FsBuilder, ATTR_NODEV, ATTR_NOEXEC, ATTR_NOSUID};
use crate::sys::idmap::Which;
use crate::sys::ns::{self, NsKind};
use crate::sys::{
    attach, caps, exec, init, jobctl, mount, rlimit, rootfs, safepath, tty, unixsock,
};

/// Exit statuses of a child that failed before its payload ran (as podman and env use).
const EXIT_SETUP: i32 = 125;
const EXIT_NOT_EXECUTABLE: i32 = 126;
const EXIT_NOT_FOUND: i32 = 127;

pub(super) fn run(plan: &Plan, go: OwnedFd, errors: OwnedFd, stops: Option<OwnedFd>) -> ! {
    // A panic must never unwind into the shell's code in the child.
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let e = match setup(plan, &go) {
            Ok(()) => payload_or_init(plan, &errors, stops),
            Err(e) => e,
        };
        fail(&errors, e)
    }));
    let _ = r;
    // SAFETY: leaving the child without running the shell's exit handlers.
    unsafe { libc::_exit(EXIT_SETUP) }
}

/// Report `e` to the parent and exit with a status that says what kind of failure it was.
fn fail(errors: &OwnedFd, e: SysError) -> ! {
    let msg = report::encode(&e);
    let _ = nix::unistd::write(errors, &msg);
    let code = match (e.op.as_str(), e.errno()) {
        ("exec", Some(Errno::ENOENT)) => EXIT_NOT_FOUND,
        ("exec", Some(_)) => EXIT_NOT_EXECUTABLE,
        _ => EXIT_SETUP,
    };
    // SAFETY: ends the child without running the shell's Rust or C cleanup.
    unsafe { libc::_exit(code) }
}

fn prctl(op: &str, option: libc::c_int, arg: libc::c_ulong) -> Result<()> {
    // SAFETY: these prctl options take one integer argument.
    if unsafe {
        libc::prctl(
            option,
            arg,
            0 as libc::c_ulong,
            0 as libc::c_ulong,
            0 as libc::c_ulong,
        )
    } < 0
    {
        return Err(SysError::last(op));
    }
    Ok(())
}

/// Everything shared by init and payload: namespaces, identity inside, hostname, mounts.
fn setup(plan: &Plan, go: &OwnedFd) -> Result<()> {
    if plan.own_group() {
        jobctl::own_group();
    }
    if plan.die_with_parent {
        // A mini-init that holds the payload's tree (no pid namespace of its own, where the
        // kernel would end it all) takes the shell's death as SIGHUP: it ends the tree
        // before it exits (sys::init).
        let sig = if plan.init_holds_tree() {
            libc::SIGHUP
        } else {
            libc::SIGKILL
        };
        prctl("prctl(PR_SET_PDEATHSIG)", libc::PR_SET_PDEATHSIG, sig as _)?;
    }
    if plan.new_session {
        nix::unistd::setsid().map_err(|e| SysError::os("setsid", e))?;
    }
    // Joining cgroups first: still in the host's cgroup namespace and user namespace.
    for file in &plan.cgroup_procs {
        std::fs::write(file, "0\n").map_err(|e| {
            SysError::io("join cgroup", &e)
                .path(file)
                .hint("the target's cgroup must accept processes (a v2 cgroup with controllers enabled for its children does not)")
        })?;
    }
    // Attach mounts need the initial user namespace's privileges: before setns(user).
    if let Root::Attach(a) = &plan.root {
        attach::mounts::enter(a)?;
    }
    if !plan.cgroup_procs.is_empty() {
        if let Some((_, cg)) = plan.join.iter().find(|(k, _)| *k == NsKind::Cgroup) {
            cg.enter()
                .map_err(|e| e.detail("joining the cgroup namespace"))?;
        }
    }
    if let Some((_, user)) = plan.join.iter().find(|(k, _)| *k == NsKind::User) {
        user.enter()
            .map_err(|e| e.detail("joining the user namespace"))?;
    }
    if plan.waits() {
        wait_for_go(go)?;
    }

    if plan.user_ns() {
        become_root_inside(plan)?;
        // setresuid made us non-dumpable: the parent (and attach) must still be able to
        // open /proc/PID/ns/* and write maps of our children.
        prctl("prctl(PR_SET_DUMPABLE)", libc::PR_SET_DUMPABLE, 1)?;
    }
    let late: Vec<NsKind> = plan
        .create
        .iter()
        .copied()
        .filter(|k| plan.joins(NsKind::User) || matches!(k, NsKind::Cgroup | NsKind::Time))
        .collect();
    if !late.is_empty() {
        ns::unshare(&late)?;
    }
    if !plan.time_offsets.is_empty() {
        let text: String = plan
            .time_offsets
            .iter()
            .map(|(clock, secs)| format!("{clock} {secs} 0\n"))
            .collect();
        std::fs::write("/proc/self/timens_offsets", &text).map_err(|e| {
            SysError::io("write timens_offsets", &e)
                .path("/proc/self/timens_offsets")
                .detail(text.trim_end().to_string())
        })?;
    }
    if plan.creates(NsKind::Time) {
        // Enter the new time namespace ourselves (an exec would too, but init never execs),
        // so the process the shell holds is in it.
        ns::NsFd::for_children(NsKind::Time)?
            .enter()
            .map_err(|e| e.detail("entering the new time namespace"))?;
    }
    if let Some(h) = &plan.hostname {
        nix::unistd::sethostname(h).map_err(|e| SysError::os("sethostname", e).name(h.clone()))?;
    }
    match &plan.root {
        Root::Plan(p) => rootfs::enter(p)?,
        Root::Dir(d) => {
            mount::propagation("/", "private", true)?;
            mount::pivot_into(d, plan.mount_proc())?;
        }
        Root::Keep if plan.mount_proc() => fresh_proc()?,
        Root::Keep | Root::Attach(_) => {}
    }
    Ok(())
}

fn wait_for_go(go: &OwnedFd) -> Result<()> {
    let mut b = [0u8; 1];
    loop {
        match nix::unistd::read(go.as_fd(), &mut b) {
            Ok(1) => return Ok(()),
            Ok(_) => {
                // The shell gave up on this child (setup failed): leave quietly.
                // SAFETY: ends the child without the shell's cleanup.
                unsafe { libc::_exit(EXIT_SETUP) }
            }
            Err(Errno::EINTR) => continue,
            Err(e) => return Err(SysError::os("spawn: wait for the parent", e)),
        }
    }
}

/// In a new user namespace the child starts with unmapped (overflow) ids: become uid and
/// gid 0 inside where 0 is mapped, so files it creates have an owner.
fn become_root_inside(plan: &Plan) -> Result<()> {
    let mapped = |which: Which, file: &str| {
        if let Some(known) = plan.maps_root(which) {
            return known;
        }
        std::fs::read_to_string(file)
            .map(|t| {
                t.lines().any(|l| {
                    let v: Vec<u64> = l
                        .split_whitespace()
                        .filter_map(|x| x.parse().ok())
                        .collect();
                    v.len() == 3 && v[0] == 0
                })
            })
            .unwrap_or(false)
    };
    if mapped(Which::Gid, "/proc/self/gid_map") {
        nix::unistd::setresgid(Gid::from_raw(0), Gid::from_raw(0), Gid::from_raw(0))
            .map_err(|e| SysError::os("setresgid", e).name("0"))?;
    }
    if mapped(Which::Uid, "/proc/self/uid_map") {
        nix::unistd::setresuid(Uid::from_raw(0), Uid::from_raw(0), Uid::from_raw(0))
            .map_err(|e| SysError::os("setresuid", e).name("0"))?;
    }
    Ok(())
}

/// `unshare --mount-proc`: a private mount tree and a /proc of the new pid namespace.
fn fresh_proc() -> Result<()> {
    mount::propagation("/", "private", true)?;
    let tree = FsBuilder::new("spawn", "proc")?
        .mount(ATTR_NOSUID | ATTR_NODEV | ATTR_NOEXEC)
        .map_err(|e| e.path("/proc").detail("a /proc for the new pid namespace"))?;
    let root = safepath::open_dir(Path::new("/"))?;
    let target = safepath::mount_point(root.as_fd(), "/proc", false)?;
    fsmount::attach(tree.as_fd(), target.as_fd()).map_err(|e| e.path("/proc"))
}

/// With init: fork the payload and supervise it. Without: become the payload.
fn payload_or_init(plan: &Plan, errors: &OwnedFd, stops: Option<OwnedFd>) -> SysError {
    if plan.init {
        // SAFETY: getpid takes no arguments.
        let init_pid = unsafe { libc::getpid() };
        let how = init::Init {
            stops,
            holds_tree: plan.init_holds_tree(),
        };
        return init::run(how, || {
            // fork clears the parent-death signal: the payload dies with init, which dies
            // with the shell (or ends everything when it holds the tree). Set, then checked
            // against an init that died before it was set.
            if plan.die_with_parent {
                if let Err(e) = prctl(
                    "prctl(PR_SET_PDEATHSIG)",
                    libc::PR_SET_PDEATHSIG,
                    libc::SIGKILL as _,
                ) {
                    fail(errors, e)
                }
                // SAFETY: getppid takes no arguments.
                if unsafe { libc::getppid() } != init_pid {
                    // SAFETY: ends the orphaned payload before it runs anything.
                    unsafe { libc::_exit(EXIT_SETUP) }
                }
            }
            fail(errors, payload(plan))
        });
    }
    payload(plan)
}

/// The payload's own steps, ending in execve. Returns only the error that stopped it.
fn payload(plan: &Plan) -> SysError {
    match prepare_payload(plan) {
        Err(e) => e,
        Ok(path) => exec::execve(&path, &plan.argv, &plan.env),
    }
}

fn prepare_payload(plan: &Plan) -> Result<std::ffi::CString> {
    for l in &plan.rlimits {
        rlimit::set(l)?;
    }
    let cwd = plan.cwd.as_deref().or(if matches!(plan.root, Root::Keep) {
        None
    } else {
        Some("/")
    });
    if let Some(dir) = cwd {
        nix::unistd::chdir(dir).map_err(|e| SysError::os("chdir", e).path(dir).name("cwd"))?;
    }
    let mut fds = plan.fds.clone();
    // Kept open until exec: the standard streams are copies of it.
    let _peer = match &plan.tty {
        Some(t) => Some(payload_tty(t, &mut fds)?),
        None => None,
    };
    exec::arrange_fds(&fds)?;

    let uid_change = plan
        .uid
        .is_some_and(|u| u != nix::unistd::geteuid().as_raw());
    if let Some(keep) = plan.caps {
        caps::drop_bounding(keep, uid_change)?;
    }
    if let Some(st) = &plan.cap_state {
        caps::drop_bounding(st.bnd, uid_change)?;
    }
    set_identity(plan)?;
    if let Some(keep) = plan.caps {
        caps::apply(keep)?;
    }
    if let Some(st) = &plan.cap_state {
        caps::apply_state(st)?;
    }
    if uid_change && plan.die_with_parent {
        // A uid change clears the parent-death signal: set it again.
        prctl(
            "prctl(PR_SET_PDEATHSIG)",
            libc::PR_SET_PDEATHSIG,
            libc::SIGKILL as _,
        )?;
    }
    if plan.no_new_privs {
        caps::set_no_new_privs()?;
    }
    // Look the program up in the payload's own view (after pivot_root) and PATH.
    let path_env = plan
        .env
        .iter()
        .find_map(|e| e.to_str().ok()?.strip_prefix("PATH=").map(str::to_string))
        .unwrap_or_else(|| exec::DEFAULT_PATH.to_string());
    let prog = plan.argv[0].to_string_lossy();
    let path = exec::find_program(&prog, &path_env)?;
    exec::reset_signals();
    rlimit::restore_stack();
    Ok(path)
}

/// The payload's pty: opened in its own view of the file system (its container's devpts),
/// sized like the caller's terminal, the master sent to the shell, the peer made the
/// controlling terminal and put on each standard stream `fds` does not give.
fn payload_tty(t: &super::TtyPlan, fds: &mut Vec<(i32, i32)>) -> Result<OwnedFd> {
    let root = safepath::open_dir(Path::new(&t.root)).map_err(|e| e.name("tty"))?;
    let (master, peer) = tty::open_pty(root.as_fd())?;
    for n in [0, 1, 2] {
        // SAFETY: a probe of the inherited standard stream; an fd that is not open fails.
        let fd = unsafe { BorrowedFd::borrow_raw(n) };
        if let Some(ws) = tty::winsize(fd) {
            let _ = tty::set_winsize(peer.as_fd(), ws);
            break;
        }
    }
    // SAFETY: the plan's socket end stays open in the child until exec (close-on-exec).
    let sock = unsafe { BorrowedFd::borrow_raw(t.sock) };
    unixsock::send_fd(sock, master.as_fd())
        .map_err(|e| e.detail("sending the pty to the shell"))?;
    drop(master);
    tty::make_controlling(peer.as_fd())?;
    for n in [0, 1, 2] {
        if !fds.iter().any(|(target, _)| *target == n) {
            fds.push((n, peer.as_raw_fd()));
        }
    }
    Ok(peer)
}

/// Supplementary groups, gid, uid (in that order: changing uid first would lose the right
/// to change the others).
fn set_identity(plan: &Plan) -> Result<()> {
    let changes = plan.uid.is_some() || plan.gid.is_some() || plan.groups.is_some();
    if !changes {
        return Ok(());
    }
    let setgroups_denied = std::fs::read_to_string("/proc/self/setgroups")
        .map(|s| s.trim() == "deny")
        .unwrap_or(false);
    match (&plan.groups, setgroups_denied) {
        (Some(_), true) => {
            return Err(SysError::invalid(
                "spawn",
                "groups",
                "supplementary groups cannot be set: the user namespace has setgroups \"deny\"",
            )
            .hint("add setgroups: \"allow\" (needs privilege for the gid map)"))
        }
        (groups, false) => {
            // Changing identity drops the shell's own supplementary groups unless asked.
            let g: Vec<Gid> = groups.iter().flatten().map(|&g| Gid::from_raw(g)).collect();
            nix::unistd::setgroups(&g).map_err(|e| SysError::os("setgroups", e).name("groups"))?;
        }
        (None, true) => {}
    }
    if let Some(gid) = plan.gid {
        let g = Gid::from_raw(gid);
        nix::unistd::setresgid(g, g, g).map_err(|e| {
            SysError::os("setresgid", e)
                .name(gid.to_string())
                .hint("the gid must be mapped in the user namespace")
        })?;
    }
    if let Some(uid) = plan.uid {
        let u = Uid::from_raw(uid);
        nix::unistd::setresuid(u, u, u).map_err(|e| {
            SysError::os("setresuid", e)
                .name(uid.to_string())
                .hint("the uid must be mapped in the user namespace")
        })?;
    }
    Ok(())
}
