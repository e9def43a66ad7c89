//! Terminal job control from the shell's side. An interactive program the shell starts on
//! its own terminal (`sh` in a container) may make its process group the terminal's
//! foreground group and, inside a pid namespace, fail to give it back when it exits (it
//! cannot name the shell's group from there). The shell then takes the terminal back, so
//! the REPL is never left reading from a terminal it no longer controls.

use std::sync::atomic::{AtomicBool, Ordering};

/// Whether ctrsh was its terminal's foreground process group when it started.
static WAS_FOREGROUND: AtomicBool = AtomicBool::new(false);

/// Remember whether we start in the foreground (call once at start-up).
pub fn note_foreground() {
    // SAFETY: tcgetpgrp and getpgrp take no pointers.
    let fg = unsafe { libc::isatty(0) == 1 && libc::tcgetpgrp(0) == libc::getpgrp() };
    WAS_FOREGROUND.store(fg, Ordering::Relaxed);
}

/// Make our process group the terminal's foreground group again if a child took it.
pub fn reclaim_foreground() {
    if !WAS_FOREGROUND.load(Ordering::Relaxed) {
        return;
    }
    // SAFETY: plain calls on fd 0 and our own process group; SIGTTOU is ignored around
    // tcsetpgrp (a background group calling it would otherwise be stopped) and the old
    // disposition is put back.
    unsafe {
        let me = libc::getpgrp();
        if libc::isatty(0) != 1 || libc::tcgetpgrp(0) == me {
            return;
        }
        let old = libc::signal(libc::SIGTTOU, libc::SIG_IGN);
        libc::tcsetpgrp(0, me);
        libc::signal(libc::SIGTTOU, old);
    }
}
