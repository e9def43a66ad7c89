//! clone3 with CLONE_PIDFD (and CLONE_INTO_CGROUP), falling back to clone(2) where the
//! kernel lacks clone3; plain fork for `fork(|| ...)`.
//!
//! Both are used like fork: no new stack, the child continues on a copy of the parent's.
//! That is sound because ctrsh is single-threaded (asserted by the callers): no other
//! thread can hold a lock the child would need.

use std::os::fd::{FromRawFd, OwnedFd, RawFd};

use nix::errno::Errno;

use crate::sys::error::{Result, SysError};
use crate::sys::ns::{self, ChildrenPidNs, NsKind};

const CLONE_PIDFD: u64 = 0x1000;
const CLONE_INTO_CGROUP: u64 = 0x2_0000_0000;

/// struct clone_args, version 2 (with `cgroup`).
#[repr(C)]
#[derive(Default)]
struct CloneArgs {
    flags: u64,
    pidfd: u64,
    child_tid: u64,
    parent_tid: u64,
    exit_signal: u64,
    stack: u64,
    stack_size: u64,
    tls: u64,
    set_tid: u64,
    set_tid_size: u64,
    cgroup: u64,
}

/// Which side of a clone or fork this is.
pub enum Forked {
    Child,
    Parent {
        pid: i32,
        pidfd: Option<OwnedFd>,
        /// CLONE_INTO_CGROUP placed the child in the requested cgroup.
        into_cgroup: bool,
    },
}

/// Clone a child in new namespaces of `kinds`, with a pidfd, and (when `cgroup` is given
/// and clone3 exists) directly into that cgroup v2 directory.
pub fn clone_child(kinds: &[NsKind], cgroup: Option<RawFd>) -> Result<Forked> {
    let flags = ns::clone_flags(kinds);
    let mut pidfd: RawFd = -1;
    let mut args = CloneArgs {
        flags: flags.bits() as u64 | CLONE_PIDFD,
        pidfd: &mut pidfd as *mut RawFd as u64,
        exit_signal: libc::SIGCHLD as u64,
        ..CloneArgs::default()
    };
    if let Some(cg) = cgroup {
        args.flags |= CLONE_INTO_CGROUP;
        args.cgroup = cg as u64;
    }
    // SAFETY: clone_args is valid for the call and `pidfd` outlives it; with no stack given
    // clone3 behaves like fork (the child returns here on a copy of this stack), which is
    // sound in a single-threaded process.
    let r = unsafe {
        libc::syscall(
            libc::SYS_clone3,
            &mut args as *mut CloneArgs,
            std::mem::size_of::<CloneArgs>(),
        )
    };
    if r == 0 {
        return Ok(Forked::Child);
    }
    if r > 0 {
        return Ok(Forked::Parent {
            pid: r as i32,
            // SAFETY: the kernel stored a new pidfd that nothing else owns.
            pidfd: Some(unsafe { OwnedFd::from_raw_fd(pidfd) }),
            into_cgroup: cgroup.is_some(),
        });
    }
    match Errno::last() {
        Errno::ENOSYS => clone_legacy(kinds),
        e => Err(clone_error(e, kinds, cgroup.is_some())),
    }
}

/// clone(2) without a stack (fork-like), with CLONE_PIDFD where the kernel has it.
fn clone_legacy(kinds: &[NsKind]) -> Result<Forked> {
    let mut pidfd: RawFd = -1;
    let all = ns::clone_flags(kinds).bits() as libc::c_ulong
        | CLONE_PIDFD as libc::c_ulong
        | libc::SIGCHLD as libc::c_ulong;
    // SAFETY: stack 0 makes clone fork-like (see clone_child); the third argument is the
    // parent_tid slot, where CLONE_PIDFD stores the pidfd, on every architecture.
    let r = unsafe {
        libc::syscall(
            libc::SYS_clone,
            all,
            0usize,
            &mut pidfd as *mut RawFd,
            0usize,
            0usize,
        )
    };
    match r {
        0 => Ok(Forked::Child),
        r if r > 0 => Ok(Forked::Parent {
            pid: r as i32,
            // SAFETY: a new pidfd the kernel stored for us.
            pidfd: (pidfd >= 0).then(|| unsafe { OwnedFd::from_raw_fd(pidfd) }),
            into_cgroup: false,
        }),
        _ => Err(clone_error(Errno::last(), kinds, false)),
    }
}

/// The error of a failed clone, naming the namespaces as scripts do ("net, uts").
fn clone_error(e: Errno, kinds: &[NsKind], cgroup: bool) -> SysError {
    let mut err = SysError::os("clone3", e);
    if !kinds.is_empty() {
        let names: Vec<&str> = kinds.iter().map(|k| k.name()).collect();
        err = err.detail(format!("new namespaces {}", names.join(", ")));
    }
    match e {
        // alloc_pid fails with ENOMEM once the pid namespace new processes go to has lost
        // its init: nothing can be created in it any more.
        Errno::ENOMEM if ns::children_pid_ns() == ChildrenPidNs::Other => {
            let what = "the pid namespace has no init any more (its first process exited): no process can be created in it";
            let detail = match &err.detail {
                Some(d) => format!("{d}: {what}"),
                None => what.to_string(),
            };
            err.detail(detail).hint(
                "after unshare([\"pid\"]) or entering a pid namespace, the shell's next child is \
                 that namespace's init; leave the shell's own pid namespace alone and give each \
                 container one of its own (spawn with ns: [\"pid\"])",
            )
        }
        // copy_pid_ns refuses a new pid namespace unless new children would go to the
        // caller's own one.
        Errno::EINVAL
            if kinds.contains(&NsKind::Pid)
                && matches!(
                    ns::children_pid_ns(),
                    ChildrenPidNs::Other | ChildrenPidNs::Unpopulated
                ) =>
        {
            err.hint(
                "a new pid namespace can only be made from the shell's own: its children go to \
                 another one (after unshare([\"pid\"]) or entering a pid namespace)",
            )
        }
        Errno::EPERM => err.hint("creating namespaces other than user needs CAP_SYS_ADMIN; add \"user\" to ns to create them unprivileged"),
        Errno::ENOSPC | Errno::EUSERS => err.hint("a namespace count limit was reached: see /proc/sys/user/max_*_namespaces"),
        Errno::EBUSY if cgroup => err.hint("the cgroup has controllers enabled in cgroup.subtree_control, so it cannot hold processes"),
        Errno::EINVAL => err.hint("the kernel may lack one of these namespace kinds"),
        _ => err,
    }
}

/// fork(2) for `fork(|| ...)`, returning a pidfd for the child.
pub fn fork() -> Result<Forked> {
    clone_child(&[], None)
}

/// Fork a server process (debug_shell, syslogd) that runs `serve`: in the child, a session
/// of its own when `detach`, else a process group of its own (the terminal's Ctrl-C is not
/// for it: sys::jobctl) and death with the parent (PR_SET_PDEATHSIG). `serve` is not meant
/// to return; if it does, the child exits 1. Returns the child's pid and pidfd.
pub fn fork_server(detach: bool, serve: impl FnOnce()) -> Result<(i32, Option<OwnedFd>)> {
    super::super::thread::assert_single_threaded("fork")?;
    match fork()? {
        Forked::Child => {
            // SAFETY: setsid takes no arguments; PR_SET_PDEATHSIG takes a signal number.
            unsafe {
                if detach {
                    libc::setsid();
                } else {
                    crate::sys::jobctl::own_group();
                    libc::prctl(
                        libc::PR_SET_PDEATHSIG,
                        libc::SIGKILL as libc::c_ulong,
                        0,
                        0,
                        0,
                    );
                }
            }
            serve();
            // SAFETY: ends the server without running the shell's exit handlers.
            unsafe { libc::_exit(1) }
        }
        Forked::Parent { pid, pidfd, .. } => {
            if !detach {
                crate::sys::jobctl::set_group(pid);
            }
            Ok((pid, pidfd))
        }
    }
}

/// Size of the stack a [`vfork`] child runs on (mapped lazily: only touched pages cost).
const VFORK_STACK: usize = 1 << 20;

/// Start a child that shares this process's memory until it execs (CLONE_VM|CLONE_VFORK,
/// as posix_spawn does): no page tables are copied and no copy-on-write faults follow, which
/// is what a process that only prepares and execs a program needs. This process is
/// suspended until the child execs or exits. `child` runs in the child on a stack of its
/// own and must end in execve or `_exit`; if it returns or panics, the child exits 125.
///
/// The child may allocate (the heap it changes is this process's, consistent again when it
/// execs: nothing else runs meanwhile in a single-threaded process). Kernel state is the
/// child's own: descriptors, credentials, signal dispositions, cwd, limits.
pub fn vfork(child: &mut dyn FnMut()) -> Result<i32> {
    // SAFETY: an anonymous private mapping; checked for MAP_FAILED below.
    let stack = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            VFORK_STACK,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_STACK,
            -1,
            0,
        )
    };
    if stack == libc::MAP_FAILED {
        return Err(SysError::last("vfork: mmap stack"));
    }
    // The lowest page guards against overflow: a fault there, not a write into the heap.
    // SAFETY: the first page of the mapping just made.
    unsafe { libc::mprotect(stack, 4096, libc::PROT_NONE) };

    extern "C" fn entry(arg: *mut libc::c_void) -> libc::c_int {
        // SAFETY: `arg` is the `&mut &mut dyn FnMut()` passed to clone below, alive because
        // the parent is suspended in clone until this child execs or exits.
        let f = unsafe { &mut *(arg as *mut &mut dyn FnMut()) };
        // A panic must not unwind past this frame: there is nothing above it on this stack.
        let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f));
        // SAFETY: ends the child without running the parent's exit handlers.
        unsafe { libc::_exit(125) }
    }
    let mut f: &mut dyn FnMut() = child;
    // SAFETY: the stack top is the end of the mapping (stacks grow down; 16-byte aligned as
    // mmap returns page-aligned memory). CLONE_VFORK keeps this frame, `f` and the stack
    // alive until the child no longer uses them.
    let pid = unsafe {
        libc::clone(
            entry,
            (stack as *mut u8).add(VFORK_STACK).cast(),
            libc::CLONE_VM | libc::CLONE_VFORK | libc::SIGCHLD,
            (&mut f as *mut &mut dyn FnMut()).cast(),
        )
    };
    let err = (pid < 0).then(|| SysError::last("vfork: clone"));
    // SAFETY: the child has exec'd or exited: the stack is no longer in use.
    unsafe { libc::munmap(stack, VFORK_STACK) };
    match err {
        Some(e) => Err(e),
        None => Ok(pid),
    }
}
