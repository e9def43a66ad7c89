//! Pseudo-terminals (ctrtool's tty_proxy): a pty from the container's own devpts instance,
//! the caller's terminal in raw mode (restored on every path), and a single-threaded relay
//! that copies both ways and forwards window-size changes.
//!
//! Why a pty of its own: a payload that inherits the caller's terminal can push keystrokes
//! into it with TIOCSTI (or read what the user types next). A payload whose terminal is a
//! pty the shell relays can only inject into that pty, which only it reads.
//!
//! The pty comes from the devpts instance the container sees: its `/dev/ptmx` (or
//! `/dev/pts/ptmx`) opened in its mount namespace, and the peer taken with TIOCGPTPEER —
//! opening `/dev/pts/N` by name (what glibc's openpty does) could find a pty of another
//! instance.

use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd};
use std::time::Instant;

use nix::errno::Errno;
use nix::sys::signal::Signal;
use rustix::fs::OFlags;
use rustix::pty::OpenptFlags;
use rustix::termios::{self, OptionalActions, Termios, Winsize};

use super::error::{Result, SysError};
use super::safepath::{self, rx};
use super::signals;

/// A new pty from the devpts instance of the tree `root` (the container's `/`): returns
/// (master, peer). Both are close-on-exec; the peer is not made anyone's controlling
/// terminal here.
pub fn open_pty(root: BorrowedFd<'_>) -> Result<(OwnedFd, OwnedFd)> {
    let flags = OFlags::RDWR | OFlags::NOCTTY;
    let mut first_err = None;
    for path in ["dev/ptmx", "dev/pts/ptmx"] {
        match safepath::open_in(root, path, flags) {
            Ok(master) => {
                rustix::pty::unlockpt(&master)
                    .map_err(|e| rx("unlockpt", e).path(format!("/{path}")))?;
                let peer = rustix::pty::ioctl_tiocgptpeer(
                    &master,
                    OpenptFlags::RDWR | OpenptFlags::NOCTTY | OpenptFlags::CLOEXEC,
                )
                .map_err(|e| rx("ioctl(TIOCGPTPEER)", e).path(format!("/{path}")))?;
                return Ok((master, peer));
            }
            Err(e) => {
                first_err.get_or_insert(e);
            }
        }
    }
    let e = first_err.expect("two attempts");
    Err(e
        .detail("opening a pty master")
        .hint("the container needs /dev/ptmx or a devpts at /dev/pts (rootfs: devpts: true)"))
}

/// The window size of a terminal, if `fd` is one.
pub fn winsize(fd: BorrowedFd<'_>) -> Option<Winsize> {
    termios::tcgetwinsize(fd).ok()
}

/// Set a terminal's window size (on a pty master this signals SIGWINCH to its foreground
/// process group).
pub fn set_winsize(fd: BorrowedFd<'_>, ws: Winsize) -> Result<()> {
    termios::tcsetwinsize(fd, ws).map_err(|e| rx("ioctl(TIOCSWINSZ)", e))
}

pub fn is_terminal(fd: BorrowedFd<'_>) -> bool {
    termios::isatty(fd)
}

/// Make `tty` the controlling terminal of the calling process, in a new session unless it
/// already leads one.
pub fn make_controlling(tty: BorrowedFd<'_>) -> Result<()> {
    let me = nix::unistd::getpid();
    if nix::unistd::getsid(None).ok() != Some(me) {
        nix::unistd::setsid().map_err(|e| SysError::os("setsid", e).detail("for the tty"))?;
    }
    rustix::process::ioctl_tiocsctty(tty).map_err(|e| rx("ioctl(TIOCSCTTY)", e))
}

/// The caller's terminal in raw mode; the saved settings come back on drop (every path
/// out of the relay, errors and panics included).
pub struct RawMode {
    fd: OwnedFd,
    saved: Termios,
}

impl RawMode {
    /// Raw mode on `fd` when it is a terminal; None when it is not.
    pub fn enter(fd: BorrowedFd<'_>) -> Result<Option<RawMode>> {
        if !is_terminal(fd) {
            return Ok(None);
        }
        let saved = termios::tcgetattr(fd).map_err(|e| rx("tcgetattr", e))?;
        let mut raw = saved.clone();
        raw.make_raw();
        let fd = fd
            .try_clone_to_owned()
            .map_err(|e| SysError::io("dup", &e))?;
        termios::tcsetattr(&fd, OptionalActions::Flush, &raw).map_err(|e| rx("tcsetattr", e))?;
        Ok(Some(RawMode { fd, saved }))
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        let _ = termios::tcsetattr(&self.fd, OptionalActions::Drain, &self.saved);
    }
}

/// Bytes on their way from one descriptor to another.
#[derive(Default)]
pub struct Pump {
    buf: Vec<u8>,
    at: usize,
    /// The source reached its end.
    pub eof: bool,
}

impl Pump {
    pub fn pending(&self) -> bool {
        self.at < self.buf.len()
    }
    /// Whether to poll the source for more.
    pub fn wants_input(&self) -> bool {
        !self.eof && !self.pending()
    }
    pub fn data(&self) -> &[u8] {
        &self.buf[self.at..]
    }
    pub fn consume(&mut self, n: usize) {
        self.at += n;
        if self.at >= self.buf.len() {
            self.buf.clear();
            self.at = 0;
        }
    }
    pub fn push(&mut self, b: &[u8]) {
        self.buf.extend_from_slice(b);
    }

    /// Read what `src` has (after poll said so). EOF, EIO (a pty whose other side is
    /// closed) and a hangup end the source; EAGAIN/EINTR are nothing.
    pub fn fill(&mut self, src: BorrowedFd<'_>) {
        let mut b = [0u8; 16384];
        match nix::unistd::read(src, &mut b) {
            Ok(0) => self.eof = true,
            Ok(n) => self.push(&b[..n]),
            Err(Errno::EAGAIN) | Err(Errno::EINTR) => {}
            Err(_) => self.eof = true,
        }
    }

    /// Write what is pending to `dst` (after poll said it is writable). Returns false when
    /// `dst` is gone (EPIPE, EIO ...); the data is dropped then.
    pub fn flush(&mut self, dst: BorrowedFd<'_>) -> bool {
        match nix::unistd::write(dst, self.data()) {
            Ok(n) => {
                self.consume(n);
                true
            }
            Err(Errno::EAGAIN) | Err(Errno::EINTR) => true,
            Err(_) => {
                self.buf.clear();
                self.at = 0;
                false
            }
        }
    }
}

/// The end-of-file character of a pty in canonical mode (None in raw mode), so that the
/// end of a piped input can be passed on as the payload expects it.
pub fn eof_char(master: BorrowedFd<'_>) -> Option<u8> {
    let t = termios::tcgetattr(master).ok()?;
    t.local_modes
        .contains(termios::LocalModes::ICANON)
        .then(|| veof(&t))
}

/// The pty's end-of-file character whatever its mode: a line editor such as readline
/// switches canonical mode off but still takes this character on an empty line as the end.
pub fn veof_char(master: BorrowedFd<'_>) -> Option<u8> {
    termios::tcgetattr(master).ok().map(|t| veof(&t))
}

fn veof(t: &termios::Termios) -> u8 {
    t.special_codes[termios::SpecialCodeIndex::VEOF]
}

/// A pollfd; with no events the slot is switched off (fd -1), so a hangup that poll
/// reports regardless of the events asked for cannot make it spin.
pub fn pollfd(fd: BorrowedFd<'_>, events: libc::c_short) -> libc::pollfd {
    libc::pollfd {
        fd: if events == 0 { -1 } else { fd.as_raw_fd() },
        events,
        revents: 0,
    }
}

const IN: libc::c_short = libc::POLLIN;
const OUT: libc::c_short = libc::POLLOUT;

/// How a relay ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RelayEnd {
    /// The payload exited (its remaining output was copied).
    Exited,
    /// The deadline passed first.
    TimedOut,
}

/// One pty relayed to the caller.
pub struct Relay<'a> {
    pub master: BorrowedFd<'a>,
    /// Where input comes from (None: there is none).
    pub input: Option<BorrowedFd<'a>>,
    pub output: BorrowedFd<'a>,
    /// The payload; its exit ends the relay.
    pub pidfd: BorrowedFd<'a>,
    /// The caller's terminal, whose size the pty follows.
    pub size_from: Option<BorrowedFd<'a>>,
}

/// Copy input → master and master → output until the payload exits (or `deadline`).
/// SIGWINCH resizes the pty; the other relay signals go to `forward`. Runs with those
/// signals blocked except inside ppoll.
pub fn relay(
    r: &Relay<'_>,
    deadline: Option<Instant>,
    forward: &mut dyn FnMut(Signal),
) -> Result<RelayEnd> {
    super::unixsock::set_nonblocking(r.master, true)?;
    let blocked = signals::Blocked::new(&signals::forwarded())?;
    let mut to_pty = Pump::default();
    let mut from_pty = Pump::default();
    let mut input = r.input;
    let mut output_ok = true;
    let eof = eof_char(r.master);
    loop {
        for sig in signals::take_all() {
            if sig == Signal::SIGWINCH {
                if let Some(ws) = r.size_from.and_then(winsize) {
                    let _ = set_winsize(r.master, ws);
                }
            } else {
                forward(sig);
            }
        }
        if deadline.is_some_and(|d| Instant::now() >= d) {
            return Ok(RelayEnd::TimedOut);
        }
        // Slots: 0 pidfd, 1 master, 2 output, 3 input (when polled).
        let mut fds = vec![pollfd(r.pidfd, IN)];
        let mut m_ev = 0;
        if from_pty.wants_input() {
            m_ev |= IN;
        }
        if to_pty.pending() && !from_pty.eof {
            m_ev |= OUT;
        }
        fds.push(pollfd(r.master, m_ev));
        fds.push(pollfd(
            r.output,
            if from_pty.pending() && output_ok {
                OUT
            } else {
                0
            },
        ));
        let poll_input = input.filter(|_| to_pty.wants_input() && !from_pty.eof);
        if let Some(i) = poll_input {
            fds.push(pollfd(i, IN));
        }
        signals::ppoll(&mut fds, deadline, &blocked.old)?;
        let ready = |k: usize| fds.get(k).map_or(0, |p| p.revents) != 0;
        if ready(3) {
            if let Some(i) = poll_input {
                to_pty.fill(i);
                if to_pty.eof {
                    input = None;
                    // A piped input ended: tell a canonical-mode reader (^D).
                    if let (Some(c), false) = (eof, is_terminal(i)) {
                        to_pty.push(&[c]);
                    }
                }
            }
        }
        if fds[1].revents & (OUT | libc::POLLERR | libc::POLLHUP) != 0 && to_pty.pending() {
            to_pty.flush(r.master);
        }
        if fds[1].revents & (IN | libc::POLLERR | libc::POLLHUP) != 0 && from_pty.wants_input() {
            from_pty.fill(r.master);
        }
        if ready(2) && from_pty.pending() {
            output_ok = from_pty.flush(r.output);
        }
        if !output_ok {
            from_pty.consume(from_pty.data().len());
        }
        if ready(0) {
            // The payload is gone: copy what it left in the pty, then stop.
            while !from_pty.eof {
                from_pty.fill(r.master);
                if from_pty.data().is_empty() {
                    break;
                }
                while from_pty.pending() && output_ok {
                    output_ok = write_all(r.output, &mut from_pty);
                }
                from_pty.consume(from_pty.data().len());
            }
            while from_pty.pending() && output_ok {
                output_ok = write_all(r.output, &mut from_pty);
            }
            return Ok(RelayEnd::Exited);
        }
    }
}

/// Blocking write of everything pending (the caller's output may be a blocking pipe).
fn write_all(dst: BorrowedFd<'_>, p: &mut Pump) -> bool {
    let mut fds = [pollfd(dst, OUT)];
    // SAFETY: one valid pollfd for the call.
    unsafe { libc::poll(fds.as_mut_ptr(), 1, 1000) };
    p.flush(dst)
}

/// The caller's standard input and output as borrowed descriptors.
pub fn stdio() -> (BorrowedFd<'static>, BorrowedFd<'static>) {
    // SAFETY: 0 and 1 stay open for the life of the process (the shell never closes them).
    unsafe { (BorrowedFd::borrow_raw(0), BorrowedFd::borrow_raw(1)) }
}

/// Whether a pty should be used: `mode` "always", or true and both standard input and
/// output are terminals.
pub fn wanted(always: bool) -> bool {
    let (i, o) = stdio();
    always || (is_terminal(i) && is_terminal(o))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsFd;

    #[test]
    fn a_pty_from_the_hosts_devpts() {
        let root = safepath::open_dir(std::path::Path::new("/")).unwrap();
        let (m, p) = match open_pty(root.as_fd()) {
            Ok(x) => x,
            Err(e) => {
                eprintln!("skipped: no pty here: {e}");
                return;
            }
        };
        assert!(is_terminal(p.as_fd()));
        set_winsize(
            m.as_fd(),
            Winsize {
                ws_row: 33,
                ws_col: 101,
                ws_xpixel: 0,
                ws_ypixel: 0,
            },
        )
        .unwrap();
        assert_eq!(winsize(p.as_fd()).unwrap().ws_col, 101);
        nix::unistd::write(&p, b"hi\n").unwrap();
        let mut pump = Pump::default();
        pump.fill(m.as_fd());
        assert!(pump.data().starts_with(b"hi"), "{:?}", pump.data());
        assert!(eof_char(m.as_fd()).is_some(), "a new pty is canonical");
    }
}
