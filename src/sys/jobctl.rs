//! Terminal job control from the shell's side, done as job-control shells do it.
//!
//! Every child ctrsh starts leads a process group of its own (the launcher's children,
//! `fork`, the servers), so the terminal's signals (Ctrl-C, Ctrl-\, Ctrl-Z, window
//! changes) reach only its foreground group: a Ctrl-C that stops the script, or stops an
//! evaluation in the REPL, leaves the containers started earlier alone. While the shell
//! waits for a child on the terminal it controls, the child's group is the foreground one
//! ([`Foreground`]): the child reads the terminal and gets Ctrl-C from it directly, once,
//! and the shell (in the background meanwhile) forwards nothing the terminal sent. A child
//! stopped from the terminal (Ctrl-Z) stops the shell too ([`Foreground::suspend`]), so
//! the shell that started ctrsh gets the terminal back; `fg` continues both.

use std::os::fd::{AsRawFd, BorrowedFd, RawFd};

/// Lead a process group of one's own (in a new child, before it runs anything else).
pub fn own_group() {
    // SAFETY: setpgid on ourselves; it fails harmlessly for a session leader.
    unsafe { libc::setpgid(0, 0) };
}

/// Make the new child `pid` lead a process group of its own, from the parent. Both sides
/// do it, as shells do, so the group exists whichever runs first; the parent's call fails
/// harmlessly once the child has exec'd (it did it itself by then).
pub fn set_group(pid: i32) {
    // SAFETY: setpgid on our own child.
    unsafe { libc::setpgid(pid, pid) };
}

/// The shell's controlling terminal: the first standard stream that is it.
fn terminal() -> Option<RawFd> {
    // SAFETY: tcgetpgrp only asks; it fails with ENOTTY on anything but our controlling
    // terminal.
    (0..3).find(|&fd| unsafe { libc::tcgetpgrp(fd) } >= 0)
}

/// Make `pgrp` the terminal's foreground group, even from the background (SIGTTOU, which
/// would stop a background caller, is ignored around the call).
fn set_foreground(tty: RawFd, pgrp: i32) {
    // SAFETY: signal and tcsetpgrp take plain values; the old disposition is put back.
    unsafe {
        let old = libc::signal(libc::SIGTTOU, libc::SIG_IGN);
        libc::tcsetpgrp(tty, pgrp);
        libc::signal(libc::SIGTTOU, old);
    }
}

/// A child's process group made the terminal's foreground group while the shell waits for
/// it. Dropping it takes the terminal back.
pub struct Foreground {
    tty: RawFd,
    child: i32,
}

impl Foreground {
    /// Give the terminal to `pid`'s group when the shell is its terminal's foreground group
    /// and `pid` leads a group in the shell's session (children started `detach` have a
    /// session of their own and are never given it).
    pub fn give(pid: i32) -> Option<Foreground> {
        let tty = terminal()?;
        // SAFETY: plain queries and tcsetpgrp on our controlling terminal, as its
        // foreground group (so no SIGTTOU).
        unsafe {
            if libc::tcgetpgrp(tty) != libc::getpgrp()
                || libc::getpgid(pid) != pid
                || libc::getsid(pid) != libc::getsid(0)
                || libc::tcsetpgrp(tty, pid) != 0
            {
                return None;
            }
        }
        Some(Foreground { tty, child: pid })
    }

    /// The shell was continued (`fg` or `bg` after it stopped with its child): give the
    /// terminal to the child again if the shell has it (after `fg`), and continue the
    /// child's group.
    pub fn resume(&self) {
        // SAFETY: queries, tcsetpgrp as the foreground group, and a signal to our child's
        // group (pinned: the child is not reaped while we wait for it).
        unsafe {
            if libc::tcgetpgrp(self.tty) == libc::getpgrp() {
                libc::tcsetpgrp(self.tty, self.child);
            }
            libc::killpg(self.child, libc::SIGCONT);
        }
    }

    /// The child stopped for the terminal (SIGTTIN, SIGTTOU: it read or wrote it from the
    /// background). If its group has the terminal now (it stopped just before it was given
    /// it), continue it; if the shell has it (given back by `fg` without a SIGCONT, to a
    /// shell that was running), pass it on and continue it; if the shell that started
    /// ctrsh has it (ctrsh runs in the background after `bg`), stop the shell's group the
    /// same way, as the terminal would have, so that `fg` brings both back.
    pub fn terminal_stop(&self, sig: i32) {
        // SAFETY: queries, and signals to our child's group (pinned, as above) or our own.
        unsafe {
            let fg = libc::tcgetpgrp(self.tty);
            let me = libc::getpgrp();
            if fg == self.child {
                libc::killpg(self.child, libc::SIGCONT);
            } else if fg == me {
                self.resume();
            } else if fg == libc::getpgid(libc::getppid()) {
                libc::kill(0, sig);
            }
        }
    }

    /// The child was stopped by SIGTSTP (Ctrl-Z): take the terminal back and stop the
    /// shell's own process group the same way — as the terminal would have, had the child
    /// been in it — so the shell that started ctrsh gets the terminal. SIGCONT (blocked by
    /// the caller) then says when to [`resume`](Self::resume). In an orphaned process group
    /// (no job-control shell above) the kernel discards SIGTSTP: then the child is
    /// continued at once, as the terminal's Ctrl-Z would have been discarded for it there.
    pub fn suspend(&self) {
        self.reclaim();
        // SAFETY: a signal to our own process group; sigpending fills a local set.
        let continued = unsafe {
            libc::kill(0, libc::SIGTSTP);
            let mut set: libc::sigset_t = std::mem::zeroed();
            libc::sigpending(&mut set);
            libc::sigismember(&set, libc::SIGCONT) == 1
        };
        if !continued {
            self.resume();
        }
    }

    /// Take the terminal back, unless the shell that started ctrsh has it (it took it when
    /// ctrsh stopped, and ctrsh runs in the background now).
    fn reclaim(&self) {
        // SAFETY: plain queries.
        let (fg, me, parent) = unsafe {
            (
                libc::tcgetpgrp(self.tty),
                libc::getpgrp(),
                libc::getpgid(libc::getppid()),
            )
        };
        if fg != me && fg != parent {
            set_foreground(self.tty, me);
        }
    }
}

impl Drop for Foreground {
    fn drop(&mut self) {
        self.reclaim();
    }
}

/// The signal that stopped the child behind `pidfd`, if it stopped since the last look
/// (waitid WSTOPPED, which reports each stop once and reaps nothing).
pub fn stopped(pidfd: BorrowedFd<'_>) -> Option<i32> {
    stop_of(libc::P_PIDFD, pidfd.as_raw_fd() as libc::id_t)
}

/// [`stopped`] for a child known by its pid.
pub fn stopped_pid(pid: i32) -> Option<i32> {
    stop_of(libc::P_PID, pid as libc::id_t)
}

fn stop_of(idtype: libc::idtype_t, id: libc::id_t) -> Option<i32> {
    // SAFETY: waitid fills a local siginfo_t.
    unsafe {
        let mut info: libc::siginfo_t = std::mem::zeroed();
        let r = libc::waitid(idtype, id, &mut info, libc::WSTOPPED | libc::WNOHANG);
        (r == 0 && info.si_pid() != 0 && info.si_code == libc::CLD_STOPPED)
            .then(|| info.si_status())
    }
}
