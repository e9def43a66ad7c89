//! The `Process` handle (a pid plus a pidfd, so signals and namespace lookups never hit a
//! reused pid) and its methods. Creating processes is in `spawn.rs`.

use std::cell::{Cell, RefCell};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::rc::Rc;

use nix::errno::Errno;
use nix::sys::signal::Signal;
use rhai::Dynamic;

use super::api::Api;
use super::cleanup::{self, OwnId};
use super::error::{arg_err, script_type, sys_err, IntoScript, RResult};
use super::fd::Fd;
use super::ns::{kind_arg, Ns};
use crate::sys::ns::{NsFd, NsKind};
use crate::sys::{jobctl, pidfd, signals, tty, wait, Result, SysError};

/// A process the script holds.
#[derive(Clone)]
pub struct Process {
    pub pid: i32,
    pub pidfd: Option<Rc<OwnedFd>>,
    state: Rc<State>,
}

struct State {
    /// Our own child (waitable), or a process opened with pidfd_open.
    child: bool,
    /// The exit status once reaped.
    status: Cell<Option<i32>>,
    /// The cleanup registration (kill and reap when the recipe ends).
    own: Cell<Option<OwnId>>,
    /// What it runs, for printing.
    what: RefCell<String>,
    /// The master of its pty (spawn with tty): relayed while the script waits.
    tty: RefCell<Option<OwnedFd>>,
    /// It is init of a pid namespace of its own: killing it ends everything it started.
    pid_ns: Cell<bool>,
    /// For a mini-init: the read end of the pipe it reports its payload's stops on (one
    /// byte, the signal), so that a wait on the terminal can stop with it.
    stops: RefCell<Option<OwnedFd>>,
}

impl Process {
    /// A child this shell created. Unless `detach`, it is killed and reaped when the recipe
    /// ends.
    pub fn child(pid: i32, fd: Option<OwnedFd>, what: String, detach: bool) -> Process {
        let p = Process {
            pid,
            pidfd: fd.map(Rc::new),
            state: Rc::new(State {
                child: true,
                status: Cell::new(None),
                own: Cell::new(None),
                what: RefCell::new(what),
                tty: RefCell::new(None),
                pid_ns: Cell::new(false),
                stops: RefCell::new(None),
            }),
        };
        if !detach {
            p.adopt();
        }
        p
    }

    /// Note that it is init of a pid namespace of its own (teardown needs no /proc scan).
    pub fn mark_pid_namespace(&self) {
        self.state.pid_ns.set(true);
    }

    /// Own the process from now on: it is killed and reaped when the recipe ends.
    pub fn adopt(&self) {
        if self.state.own.get().is_some() || self.state.status.get().is_some() {
            return;
        }
        let q = self.clone();
        let id = cleanup::own(
            format!("process {} ({})", self.pid, self.state.what.borrow()),
            move || {
                q.state.own.set(None);
                q.kill_and_reap()
            },
        );
        self.state.own.set(Some(id));
    }

    /// Any existing process, through pidfd_open.
    pub fn open(pid: i32) -> Result<Process> {
        let fd = pidfd::open(pid)?;
        let what = std::fs::read_to_string(format!("/proc/{pid}/comm"))
            .map(|s| s.trim().to_string())
            .unwrap_or_default();
        Ok(Process {
            pid,
            pidfd: Some(Rc::new(fd)),
            state: Rc::new(State {
                child: false,
                status: Cell::new(None),
                own: Cell::new(None),
                what: RefCell::new(what),
                tty: RefCell::new(None),
                pid_ns: Cell::new(false),
                stops: RefCell::new(None),
            }),
        })
    }

    /// Show the process as `what` (its command) rather than by its comm.
    pub fn described_as(self, what: String) -> Process {
        self.state.what.replace(what);
        self
    }

    fn fd(&self) -> Option<BorrowedFd<'_>> {
        self.pidfd.as_ref().map(|f| f.as_fd())
    }

    /// The namespace of `kind` the process is in.
    pub fn ns(&self, kind: NsKind) -> Result<NsFd> {
        let gone = || {
            SysError::os("ns", Errno::ESRCH)
                .name(format!("pid {}", self.pid))
                .detail(format!("no process {}: it has exited", self.pid))
        };
        let ns = NsFd::of_pid(self.pid, kind).map_err(|e| {
            if e.errno() == Some(Errno::ENOENT) && !self.alive() {
                gone()
            } else {
                e.name(format!("pid {}", self.pid))
            }
        })?;
        // The pid could have been reused since the process ended: the pidfd (or the status
        // we reaped) says whether our process is still the one behind it.
        if !self.alive() {
            return Err(gone());
        }
        Ok(ns)
    }

    /// Still running (not exited, not a zombie)?
    pub fn alive(&self) -> bool {
        if self.state.status.get().is_some() {
            return false;
        }
        match self.fd() {
            Some(fd) => !wait::exited(fd, 0).unwrap_or(true),
            None => nix::sys::signal::kill(nix::unistd::Pid::from_raw(self.pid), None).is_ok(),
        }
    }

    /// The exit status if it has been reaped.
    pub fn status(&self) -> Option<i32> {
        self.state.status.get()
    }

    /// Send `sig` (0 only checks).
    pub fn signal(&self, sig: i32) -> Result<()> {
        if self.state.status.get().is_some() {
            return Err(SysError::os("signal", Errno::ESRCH)
                .name(format!("pid {}", self.pid))
                .detail("the process has exited and was reaped"));
        }
        let r = match self.fd() {
            Some(fd) => pidfd::send_signal(fd, sig),
            None => nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(self.pid),
                Signal::try_from(sig).ok(),
            )
            .map_err(|e| SysError::os("kill", e)),
        };
        r.map_err(|e| e.name(format!("pid {}", self.pid)))
    }

    /// Give it the pipe its mini-init reports its payload's stops on.
    pub fn set_stop_reports(&self, fd: OwnedFd) {
        *self.state.stops.borrow_mut() = Some(fd);
    }

    /// The signal of a stop not yet handled: the child's own (waitid), or, for a mini-init,
    /// the last its payload reported.
    fn take_stop(&self, fd: BorrowedFd<'_>) -> Option<i32> {
        let mut last = jobctl::stopped(fd);
        if let Some(s) = self.state.stops.borrow().as_ref() {
            let mut buf = [0u8; 64];
            loop {
                // SAFETY: reading into a local buffer from a non-blocking pipe of ours.
                let n = unsafe { libc::read(s.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
                if n <= 0 {
                    break;
                }
                last = Some(i32::from(buf[n as usize - 1]));
            }
        }
        last
    }

    /// Give it the master of its pty, to relay in `wait`.
    pub fn set_tty(&self, master: OwnedFd) {
        *self.state.tty.borrow_mut() = Some(master);
    }

    /// Relay its pty to the shell's terminal (raw mode while it lasts) until it exits or
    /// the deadline passes.
    fn relay_tty(
        &self,
        master: &OwnedFd,
        deadline: Option<std::time::Instant>,
    ) -> Result<tty::RelayEnd> {
        let fd = self.fd().ok_or_else(|| {
            SysError::os("tty", Errno::ENOSYS).detail("relaying a pty needs a pidfd")
        })?;
        let (stdin, stdout) = tty::stdio();
        let _raw = tty::RawMode::enter(stdin)?;
        let size_from = [stdin, stdout].into_iter().find(|f| tty::is_terminal(*f));
        let relay = tty::Relay {
            master: master.as_fd(),
            input: Some(stdin),
            output: stdout,
            pidfd: fd,
            size_from,
        };
        tty::relay(&relay, deadline, &mut |sig| {
            let _ = self.signal(sig as i32);
        })
    }

    fn reaped(&self, code: i32) -> i32 {
        self.state.tty.borrow_mut().take();
        self.state.status.set(Some(code));
        self.state.stops.borrow_mut().take();
        if let Some(id) = self.state.own.take() {
            cleanup::disown(id);
        }
        code
    }

    /// Wait for the process to end. Signals the shell receives meanwhile (TERM, INT, HUP,
    /// QUIT, USR1, USR2, WINCH) are passed on to it, as `docker run` does; on the terminal
    /// the shell controls, the child has the terminal meanwhile (sys::jobctl). Returns the
    /// status (128+N when killed by signal N), or None for a process that is not our child
    /// (its status is not ours to read; see [`Process::wait_other`]).
    pub fn wait(&self, timeout_ms: Option<i32>) -> Result<Option<i32>> {
        if let Some(c) = self.state.status.get() {
            return Ok(Some(c));
        }
        if !self.state.child {
            return self.wait_other(timeout_ms);
        }
        let _fw = signals::Forwarding::start();
        let deadline = timeout_ms
            .map(|t| std::time::Instant::now() + std::time::Duration::from_millis(t as u64));
        let master = self.state.tty.borrow_mut().take();
        if let Some(m) = master {
            if self.relay_tty(&m, deadline)? == tty::RelayEnd::TimedOut {
                *self.state.tty.borrow_mut() = Some(m);
                return Ok(None);
            }
        }
        let Some(fd) = self.fd() else {
            // No pidfd (an old kernel): a plain blocking waitpid, without forwarding; the
            // child has the terminal meanwhile.
            let _fg = jobctl::Foreground::give(self.pid);
            return wait::reap_pid(self.pid)
                .map(|c| Some(self.reaped(c)))
                .map_err(|e| e.name(format!("pid {}", self.pid)));
        };
        // The forwarded signals are blocked except inside ppoll: one that arrives between
        // the check below and the wait is delivered as ppoll starts (EINTR), so it is never
        // left unforwarded while the shell sleeps (a TERM sent just as the child started).
        // So are SIGCHLD and SIGCONT, for job control (see sys::jobctl).
        // Our own child, on the terminal we control: its group is the foreground one while
        // we wait. The terminal's signals then reach it directly, and only it; what the
        // shell gets meanwhile was sent to the shell, and is passed on. Without a terminal
        // there is no job control to follow: SIGCHLD and SIGCONT are left alone. (A stop
        // before the signals are caught is seen by take_stop below, before any sleep.)
        let fg = jobctl::Foreground::give(self.pid);
        let forwarded = signals::forwarded();
        let mut watched = forwarded;
        if fg.is_some() {
            for sig in signals::JOB_SIGNALS {
                watched.add(sig);
            }
        }
        let _js = fg.as_ref().map(|_| signals::JobSignals::start());
        let blocked = signals::Blocked::new(&watched)?;
        if let Some(f) = &fg {
            // A stop reported before it had the terminal (it read from it in the
            // background) is over: continue it, as `fg` does.
            if self.take_stop(fd).is_some() {
                f.resume();
            }
        }
        loop {
            for sig in signals::take_all() {
                if forwarded.contains(sig) {
                    let _ = self.signal(sig as i32);
                } else if sig == Signal::SIGCONT {
                    // The shell was stopped with its child and is continued (fg or bg).
                    if let Some(f) = &fg {
                        f.resume();
                    }
                } else if sig != Signal::SIGCHLD {
                    signals::set_pending(sig); // not ours to pass on (SIGPIPE's flag)
                }
            }
            if let Some(f) = &fg {
                match self.take_stop(fd) {
                    Some(libc::SIGTSTP) => f.suspend(), // Ctrl-Z: stop with it
                    Some(sig @ (libc::SIGTTIN | libc::SIGTTOU)) => f.terminal_stop(sig),
                    _ => {} // SIGSTOP is for whoever sent it to undo
                }
            }
            if deadline.is_some_and(|d| std::time::Instant::now() >= d) {
                return Ok(None);
            }
            let stops = self.state.stops.borrow();
            let stops_fd = stops.as_ref().filter(|_| fg.is_some());
            let mut fds = [
                tty::pollfd(fd, libc::POLLIN),
                match stops_fd {
                    Some(s) => tty::pollfd(s.as_fd(), libc::POLLIN),
                    None => tty::pollfd(fd, 0),
                },
            ];
            if signals::ppoll(&mut fds, deadline, &blocked.old)? == 0 || fds[0].revents == 0 {
                continue; // a signal, a stop report or the deadline
            }
            drop(stops);
            // The pidfd is readable: the process has exited.
            match wait::reap(fd, false) {
                Ok(Some(c)) => return Ok(Some(self.reaped(c))),
                Ok(None) => continue,
                Err(e) if e.errno() == Some(Errno::EINTR) => continue,
                Err(e) => return Err(e.name(format!("pid {}", self.pid))),
            }
        }
    }

    /// Wait for the end of a process that is not our child (pidfd_open, a named container):
    /// it cannot be reaped and its status is its parent's to read, so this returns None,
    /// also after `timeout_ms`. Nothing is passed on to a process the shell does not own:
    /// INT, TERM and HUP stop the wait (and the script) as they stop `sleep`. The shell
    /// itself is refused: its own end never comes while it waits for it.
    fn wait_other(&self, timeout_ms: Option<i32>) -> Result<Option<i32>> {
        let fd = self.fd().ok_or_else(|| {
            SysError::os("wait", Errno::ENOSYS)
                .detail("waiting for a process that is not a child needs a pidfd")
        })?;
        if self.pid == std::process::id() as i32 && !wait::exited(fd, 0).unwrap_or(true) {
            return Err(SysError::invalid(
                "wait",
                format!("pid {}", self.pid),
                "this is the shell itself, which cannot wait for its own end",
            )
            .hint("wait for a child instead (spawn, fork); pidfd_open(pid()) is for the shell's namespaces"));
        }
        let deadline = timeout_ms
            .map(|t| std::time::Instant::now() + std::time::Duration::from_millis(t as u64));
        // The interrupting signals are blocked except inside ppoll, so one that arrives
        // between the check and the wait still cuts the wait short.
        let mut stops = nix::sys::signal::SigSet::empty();
        for sig in [Signal::SIGINT, Signal::SIGTERM, Signal::SIGHUP] {
            stops.add(sig);
        }
        let blocked = signals::Blocked::new(&stops)?;
        loop {
            if let Some(sig) = signals::take() {
                // Left pending: the interpreter stops the script on it.
                signals::set_pending(sig);
                return Err(signals::interrupted_error("wait").name(format!("pid {}", self.pid)));
            }
            if deadline.is_some_and(|d| std::time::Instant::now() >= d) {
                return Ok(None);
            }
            let mut fds = [tty::pollfd(fd, libc::POLLIN)];
            if signals::ppoll(&mut fds, deadline, &blocked.old)? > 0 {
                return Ok(None); // readable: it has exited
            }
        }
    }

    /// Whether it is our child (not reaped yet, so its pid, and the group named by it, are
    /// still ours) and leads a process group of its own, as every child ctrsh starts does.
    fn leads_group(&self) -> bool {
        // SAFETY: getpgid only asks.
        self.state.child
            && self.state.status.get().is_none()
            && unsafe { libc::getpgid(self.pid) } == self.pid
    }

    /// SIGKILL and reap (cleanup at the end of a recipe).
    pub fn kill_and_reap(&self) -> Result<()> {
        if self.state.status.get().is_some() {
            return Ok(());
        }
        // What it started goes too (a process in a pid namespace of its own takes the
        // namespace with it; without one, its descendants are found in /proc — stopped
        // first, so none can fork a child the scan would miss — and so is the rest of its
        // process group: orphans re-parented elsewhere that stayed in it).
        if self.state.pid_ns.get() {
            let _ = self.signal(libc::SIGKILL);
        } else {
            crate::sys::proctree::kill_tree(self.pid, self.leads_group(), |sig| {
                let _ = self.signal(sig);
            });
        }
        if let (Some(fd), true) = (self.fd(), self.state.child) {
            loop {
                match wait::reap(fd, false) {
                    Ok(Some(c)) => {
                        self.reaped(c);
                        return Ok(());
                    }
                    Err(e) if e.errno() == Some(Errno::EINTR) => continue,
                    Err(e) if e.errno() == Some(Errno::ECHILD) => return Ok(()),
                    Err(e) => return Err(e),
                    Ok(None) => continue,
                }
            }
        }
        Ok(())
    }

    /// Stop owning it: the recipe's cleanup leaves it running (it still dies with the shell
    /// unless it was spawned detached: its parent-death signal is set in the child).
    pub fn detach(&self) {
        if let Some(id) = self.state.own.take() {
            cleanup::disown(id);
        }
    }

    /// pidfd_getfd(2): a copy of the process's descriptor `n`.
    pub fn getfd(&self, n: i32) -> Result<OwnedFd> {
        let fd = self.fd().ok_or_else(|| {
            SysError::os("pidfd_getfd", Errno::ENOSYS).detail("no pidfd for this process")
        })?;
        // SAFETY: pidfd_getfd takes a pidfd, a descriptor number and flags 0; it returns a
        // new descriptor of ours or -1.
        let r = unsafe { libc::syscall(libc::SYS_pidfd_getfd, fd.as_raw_fd(), n, 0) };
        if r < 0 {
            let e = Errno::last();
            let err = SysError::os("pidfd_getfd", e).name(format!("pid {} fd {n}", self.pid));
            return Err(match e {
                Errno::EBADF => err.detail("the process has no such descriptor"),
                Errno::EPERM => err.hint("needs ptrace access to the process (same user and CAP_SYS_PTRACE, or ptrace_scope)"),
                _ => err,
            });
        }
        Ok(crate::sys::spawn::owned(r as i32))
    }

    fn show(&self) -> String {
        let state = match self.state.status.get() {
            Some(c) => format!("exited {c}"),
            None if self.alive() => "running".to_string(),
            None => "exited".to_string(),
        };
        format!(
            "Process({} {:?}, {state})",
            self.pid,
            self.state.what.borrow()
        )
    }
}

/// A signal by name ("TERM", "SIGTERM", "term") or number.
pub fn signal_arg(op: &str, v: &Dynamic) -> RResult<i32> {
    if let Ok(n) = v.as_int() {
        return i32::try_from(n)
            .ok()
            .filter(|n| (0..=64).contains(n))
            .ok_or_else(|| arg_err(op, "sig", format!("{n} is not a signal number")));
    }
    let s = v.clone().into_string().map_err(|t| {
        arg_err(
            op,
            "sig",
            format!("expected a signal name or number, got {}", script_type(t)),
        )
    })?;
    let up = s.to_ascii_uppercase();
    let name = if up.starts_with("SIG") {
        up
    } else {
        format!("SIG{up}")
    };
    name.parse::<Signal>()
        .map(|s| s as i32)
        .map_err(|_| arg_err(op, "sig", format!("unknown signal {s:?}")))
}

fn status_dyn(s: Option<i32>) -> Dynamic {
    s.map_or(Dynamic::UNIT, |c| Dynamic::from(c as i64))
}

/// `Process.wait` for a script: a wait cut short by INT/TERM/HUP (left pending by
/// [`Process::wait_other`]) stops the script as the signal does elsewhere (128+N).
fn wait_script(p: &Process, timeout_ms: Option<i32>) -> RResult<Dynamic> {
    match p.wait(timeout_ms) {
        Ok(s) => Ok(status_dyn(s)),
        Err(e) if e.errno() == Some(Errno::EINTR) => match signals::take() {
            Some(sig) => Err(super::control::interrupt_err(sig)),
            None => Err(sys_err(e)),
        },
        Err(e) => Err(sys_err(e)),
    }
}

pub fn register(api: &mut Api) {
    api.ty::<Process>("Process");
    api.engine
        .register_fn("to_string", |p: &mut Process| p.show());
    api.engine
        .register_fn("to_debug", |p: &mut Process| p.show());
    api.getter(
        "Process",
        "pid",
        "The process id, as the shell's pid namespace numbers it.\nExample:\n    let p = spawn(#{ cmd: [\"sleep\", \"1\"] }); print(p.pid);",
        |p: &mut Process| -> i64 { i64::from(p.pid) },
    );
    api.getter(
        "Process",
        "alive",
        "Whether the process is still running (false once it exited, also before it is reaped).\nExample:\n    let p = spawn(#{ cmd: [\"true\"] }); p.wait(); print(p.alive);   // false",
        |p: &mut Process| -> bool { p.alive() },
    );
    api.getter(
        "Process",
        "status",
        "The exit status once `.wait()` has returned it (128+N when killed by signal N), else ().\nExample:\n    let p = spawn(#{ cmd: [\"false\"] }); p.wait(); print(p.status);   // 1",
        |p: &mut Process| -> Dynamic { status_dyn(p.status()) },
    );
    api.func(
        "wait",
        "Process.wait() -> int",
        "Wait for the process to end and return its exit status: the exit code, or 128+N when\n\
         signal N killed it (137 for SIGKILL), as shells report it. Signals the shell gets\n\
         meanwhile (TERM, INT, HUP, QUIT, USR1, USR2, WINCH) are passed on to it. When ctrsh\n\
         is in the foreground of its terminal, the process has the terminal while it is\n\
         waited for, as a shell's foreground job: it reads the keyboard and gets Ctrl-C\n\
         itself, once; Ctrl-Z stops it and ctrsh, `fg` goes on (not waited for, it is in the\n\
         background, as a shell's background job). For a process that is not the shell's\n\
         child (pidfd_open, container(NAME)) it only waits for the end and returns (): its\n\
         status is its parent's to read, and no signal is passed on to it\n\
         (INT, TERM and HUP stop the script, as during sleep). Waiting for the shell itself\n\
         (pidfd_open(pid())) is an error.\n\
         Example:\n    let code = spawn(#{ cmd: [\"sh\", \"-c\", \"exit 7\"] }).wait();   // 7",
        |p: &mut Process| -> RResult<Dynamic> { wait_script(p, None) },
    );
    api.func(
        "wait",
        "Process.wait(seconds: int|float) -> int or ()",
        "Wait at most `seconds`; the exit status, or () when it is still running (always ()\n\
         for a process that is not the shell's child: `.alive` tells whether it ended).\n\
         Example:\n    let p = spawn(#{ cmd: [\"sleep\", \"10\"] });\n    if p.wait(0.5) == () { p.kill(); }",
        |p: &mut Process, secs: Dynamic| -> RResult<Dynamic> {
            let s = secs
                .as_float()
                .or_else(|_| secs.as_int().map(|i| i as f64))
                .map_err(|t| arg_err("wait", "seconds", format!("expected a number, got {}", script_type(t))))?;
            if !s.is_finite() || s < 0.0 {
                return Err(arg_err("wait", "seconds", format!("{s} is not a duration")));
            }
            let ms = (s * 1000.0).min(i32::MAX as f64) as i32;
            wait_script(p, Some(ms))
        },
    );
    api.func(
        "kill",
        "Process.kill()",
        "Send SIGKILL (through the pidfd: never a reused pid). A process already waited for\n\
         is left as it is, without an error, so cleanup code can kill unconditionally\n\
         (`signal` reports ESRCH for it).\nExample:\n    let p = spawn(#{ cmd: [\"sleep\", \"100\"] }); p.kill(); print(p.wait());   // 137",
        |p: &mut Process| -> RResult<()> {
            if p.status().is_some() {
                return Ok(());
            }
            p.signal(libc::SIGKILL).script()
        },
    );
    api.func(
        "signal",
        "Process.signal(sig: string|int)",
        "Send a signal by name (\"TERM\", \"SIGHUP\", \"usr1\") or number, through the pidfd.\n\
         Example:\n    let p = spawn(#{ cmd: [\"sleep\", \"100\"] }); p.signal(\"TERM\"); print(p.wait());   // 143",
        |p: &mut Process, sig: Dynamic| -> RResult<()> {
            let n = signal_arg("signal", &sig)?;
            p.signal(n).script()
        },
    );
    api.func(
        "ns",
        "Process.ns(kind: string) -> Ns",
        "A handle on the namespace of `kind` the process is in (kept alive by the handle).\n\
         Example:\n    let p = spawn(#{ ns: [\"net\"], cmd: [\"sleep\", \"10\"] });\n    print(links(#{ ns: p.ns(\"net\") }));",
        |p: &mut Process, kind: &str| -> RResult<Ns> {
            let k = kind_arg("ns", "kind", kind)?;
            p.ns(k).map(|n| Ns(Rc::new(n))).script()
        },
    );
    api.func(
        "getfd",
        "Process.getfd(n: int) -> Fd",
        "A copy of the process's file descriptor `n` (pidfd_getfd), e.g. a socket a container\n\
         opened, to use or pass on.\nExample:\n    let p = spawn(#{ cmd: [\"sleep\", \"10\"] });\n    let out = p.getfd(1); print(out);",
        |p: &mut Process, n: i64| -> RResult<Fd> {
            let n = super::error::int_arg::<i32>("getfd", "n", n)?;
            let fd = p.getfd(n).script()?;
            Ok(Fd::new(fd, format!("fd {n} of pid {}", p.pid)))
        },
    );
    api.func(
        "detach",
        "Process.detach()",
        "Stop owning the process: the recipe's cleanup no longer kills it. It still gets\n\
         SIGKILL when ctrsh itself exits (the parent-death signal every spawned process is\n\
         given; with a pid namespace or `init`, what it started goes too, so a killed shell\n\
         leaves nothing running); a process meant to outlive ctrsh is spawned with\n\
         `detach: true`, which also gives it a session of its own.\n\
         Example:\n    let p = spawn(#{ cmd: [\"sleep\", \"100\"] }); p.detach();",
        |p: &mut Process| p.detach(),
    );
    api.func(
        "pidfd_open",
        "pidfd_open(pid: int) -> Process",
        "A Process handle on any existing process (pidfd_open): signal it, look at its\n\
         namespaces, wait for its end. It is not owned: it is not killed when the recipe ends.\n\
         Example:\n    let me = pidfd_open(pid()); print(me.ns(\"net\"));",
        |pid: i64| -> RResult<Process> {
            let pid = super::error::int_arg::<i32>("pidfd_open", "pid", pid)?;
            if pid <= 0 {
                return Err(arg_err(
                    "pidfd_open",
                    "pid",
                    format!("{pid} is not a process id"),
                ));
            }
            Process::open(pid).map_err(sys_err)
        },
    );
}
