//! ctrtool's debug_shell: a server on a unix socket that gives each connection a shell in a
//! target container, on a pty of its own; and `ctrsh connect`, its client. One process,
//! one poll loop, any number of sessions; no threads.
//!
//! The socket is SOCK_SEQPACKET, so every message keeps its boundaries. Messages start with
//! a type byte:
//!
//! ```text
//! client → server   'h' rows:u16 cols:u16 TERM...   first message: start the shell
//!                   'd' bytes                       keyboard input
//!                   'w' rows:u16 cols:u16           the window changed size
//!                   'e'                             input ended
//! server → client   'd' bytes                       terminal output
//!                   'x' status:i32                  the shell exited (then the server closes)
//!                   'e' text                        refused or failed (then it closes)
//! ```
//! (integers little-endian). Only root, the server's own uid and the uids it was told to
//! allow may connect (SO_PEERCRED); anyone else gets an 'e' message.

use std::collections::VecDeque;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::sys::signal::Signal;
use nix::sys::socket::SockType;
use rustix::termios::Winsize;

use super::attach::{self, Mode, Request, Target};
use super::error::{Result, SysError};
use super::spawn::{self as launcher, TtyPlan};
use super::tty::{self, pollfd, Pump};
use super::{signals, unixsock, wait};

/// The most terminal output carried in one message.
const CHUNK: usize = 16 * 1024;
/// How long a shell whose client left may ignore its SIGHUP before it is killed.
const HANGUP_GRACE: Duration = Duration::from_secs(3);
/// How long a new connection may take to say hello.
const HELLO_TIMEOUT: Duration = Duration::from_secs(10);

/// What the server starts for each connection.
pub struct ShellSpec {
    pub target_pid: i32,
    pub target_start: u64,
    pub mode: Mode,
    pub cmd: Vec<String>,
    /// Uids allowed besides root and the server's own.
    pub allow: Vec<u32>,
}

fn winsize_of(b: &[u8]) -> Option<Winsize> {
    let rows = u16::from_le_bytes(b.get(0..2)?.try_into().ok()?);
    let cols = u16::from_le_bytes(b.get(2..4)?.try_into().ok()?);
    Some(Winsize {
        ws_row: rows,
        ws_col: cols,
        ws_xpixel: 0,
        ws_ypixel: 0,
    })
}

fn size_bytes(ws: &Winsize) -> [u8; 4] {
    let r = ws.ws_row.to_le_bytes();
    let c = ws.ws_col.to_le_bytes();
    [r[0], r[1], c[0], c[1]]
}

fn msg(kind: u8, body: &[u8]) -> Vec<u8> {
    let mut m = Vec::with_capacity(body.len() + 1);
    m.push(kind);
    m.extend_from_slice(body);
    m
}

/// One connection and its shell.
struct Session {
    conn: OwnedFd,
    /// Set once the hello arrived and the shell runs.
    shell: Option<Shell>,
    /// Messages for the client, in order.
    out: VecDeque<Vec<u8>>,
    /// Close the connection once `out` is sent.
    closing: bool,
    opened: Instant,
}

struct Shell {
    master: Option<OwnedFd>,
    pidfd: OwnedFd,
    to_pty: Pump,
    eof_char: Option<u8>,
    /// The client's input ended (it sent "e").
    input_ended: bool,
    /// When the client left (the shell was hung up).
    hung_up: Option<Instant>,
}

impl Session {
    fn fail(&mut self, text: &str) {
        self.out.push_back(msg(b'e', text.as_bytes()));
        self.closing = true;
        self.shell = None;
    }
}

/// Serve `listener` forever (the forked server process). Never returns.
pub fn serve(listener: OwnedFd, spec: &ShellSpec) -> ! {
    // The server is a fork of the shell: default dispositions (SIGTERM ends it), and no
    // SIGPIPE (sends say MSG_NOSIGNAL anyway).
    super::exec::reset_signals();
    // SAFETY: SIG_IGN installs no handler.
    unsafe { libc::signal(libc::SIGPIPE, libc::SIG_IGN) };
    let me = nix::unistd::geteuid().as_raw();
    let mut sessions: Vec<Session> = Vec::new();
    loop {
        let mut fds = vec![pollfd(listener.as_fd(), libc::POLLIN)];
        let mut deadline: Option<Instant> = None;
        for s in &sessions {
            let mut c_ev = 0;
            let feeding = s.shell.as_ref().is_some_and(|sh| sh.to_pty.pending());
            if !s.closing && !feeding {
                c_ev |= libc::POLLIN;
            }
            if !s.out.is_empty() {
                c_ev |= libc::POLLOUT;
            }
            fds.push(pollfd(s.conn.as_fd(), c_ev));
            match &s.shell {
                Some(sh) => {
                    let mut m_ev = 0;
                    if s.out.len() < 64 && !s.closing {
                        m_ev |= libc::POLLIN;
                    }
                    if sh.to_pty.pending() {
                        m_ev |= libc::POLLOUT;
                    }
                    match &sh.master {
                        Some(m) => fds.push(pollfd(m.as_fd(), m_ev)),
                        None => fds.push(pollfd(sh.pidfd.as_fd(), 0)),
                    }
                    fds.push(pollfd(sh.pidfd.as_fd(), libc::POLLIN));
                    if let Some(t) = sh.hung_up {
                        let d = t + HANGUP_GRACE;
                        deadline = Some(deadline.map_or(d, |x: Instant| x.min(d)));
                    }
                }
                None => {
                    fds.push(pollfd(s.conn.as_fd(), 0));
                    fds.push(pollfd(s.conn.as_fd(), 0));
                    let d = s.opened + HELLO_TIMEOUT;
                    deadline = Some(deadline.map_or(d, |x: Instant| x.min(d)));
                }
            }
        }
        let timeout = deadline.map_or(-1, |d| {
            d.saturating_duration_since(Instant::now())
                .as_millis()
                .min(i32::MAX as u128) as i32
        });
        // SAFETY: a valid array of pollfds for the call.
        let r = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, timeout) };
        if r < 0 && Errno::last() != Errno::EINTR {
            // SAFETY: ends the server process without the shell's cleanup.
            unsafe { libc::_exit(1) }
        }
        for (i, s) in sessions.iter_mut().enumerate() {
            let base = 1 + i * 3;
            let (c, m, p) = (
                fds[base].revents,
                fds[base + 1].revents,
                fds[base + 2].revents,
            );
            step(s, spec, c, m, p);
        }
        if fds[0].revents & libc::POLLIN != 0 {
            if let Ok(conn) = unixsock::accept(listener.as_fd()) {
                let mut s = Session {
                    conn,
                    shell: None,
                    out: VecDeque::new(),
                    closing: false,
                    opened: Instant::now(),
                };
                match unixsock::peer_cred(s.conn.as_fd()) {
                    Ok(c) if c.uid == 0 || c.uid == me || spec.allow.contains(&c.uid) => {}
                    Ok(c) => s.fail(&format!(
                        "uid {} may not use this debug shell (allowed: root, uid {me}{})",
                        c.uid,
                        spec.allow
                            .iter()
                            .map(|u| format!(", uid {u}"))
                            .collect::<String>()
                    )),
                    Err(e) => s.fail(&e.to_string()),
                }
                sessions.push(s);
            }
        }
        sessions.retain(|s| !(s.closing && s.out.is_empty() && s.shell.is_none()));
    }
}

/// One session's events: connection `c`, master `m`, pidfd `p`.
fn step(s: &mut Session, spec: &ShellSpec, c: i16, m: i16, p: i16) {
    let mut buf = vec![0u8; CHUNK + 64];
    // Client → server.
    if c & (libc::POLLIN | libc::POLLHUP | libc::POLLERR) != 0 && !s.closing {
        // Our clients never send an empty message: 0 is the end of the connection.
        match unixsock::recv(s.conn.as_fd(), &mut buf) {
            Ok(0) => client_left(s),
            Ok(n) => from_client(s, spec, &buf[..n]),
            Err(e) if matches!(e.errno(), Some(Errno::EAGAIN) | Some(Errno::EINTR)) => {}
            Err(_) => client_left(s),
        }
    }
    if s.shell.is_none() && !s.closing && s.opened.elapsed() > HELLO_TIMEOUT {
        s.fail("no hello from the client");
    }
    if let Some(sh) = s.shell.as_mut() {
        // Shell output → client.
        if let Some(master) = &sh.master {
            if m & libc::POLLOUT != 0 && sh.to_pty.pending() {
                sh.to_pty.flush(master.as_fd());
            }
            if m & (libc::POLLIN | libc::POLLHUP | libc::POLLERR) != 0 {
                let before = s.out.len();
                read_output(master.as_fd(), &mut s.out, &mut buf);
                // The client's input has ended, but a shell that was still starting may
                // have flushed the end-of-file sent then (bash does, with TCSAFLUSH):
                // whenever it says something (a prompt), tell it again.
                if sh.input_ended && s.out.len() > before && !sh.to_pty.pending() {
                    if let Some(c) = tty::veof_char(master.as_fd()) {
                        sh.to_pty.push(&[c]);
                    }
                }
            }
        }
        if let Some(t) = sh.hung_up {
            if t.elapsed() >= HANGUP_GRACE {
                let _ = super::pidfd::send_signal(sh.pidfd.as_fd(), libc::SIGKILL);
            }
        }
        if p & libc::POLLIN != 0 {
            // The shell exited: what it left in the pty, its status, then close.
            if let Some(master) = sh.master.take() {
                for _ in 0..64 {
                    let before = s.out.len();
                    read_output(master.as_fd(), &mut s.out, &mut buf);
                    if s.out.len() == before {
                        break;
                    }
                }
            }
            let code = wait::reap(sh.pidfd.as_fd(), true)
                .ok()
                .flatten()
                .unwrap_or(1);
            if sh.hung_up.is_none() {
                s.out.push_back(msg(b'x', &code.to_le_bytes()));
            }
            s.closing = true;
            s.shell = None;
        }
    }
    // Server → client.
    if c & libc::POLLOUT != 0 || s.closing {
        while let Some(front) = s.out.front() {
            match unixsock::send(s.conn.as_fd(), front) {
                Ok(_) => {
                    s.out.pop_front();
                }
                Err(e) if e.errno() == Some(Errno::EAGAIN) => break,
                Err(_) => {
                    s.out.clear();
                    client_left(s);
                    break;
                }
            }
        }
    }
}

fn read_output(master: BorrowedFd<'_>, out: &mut VecDeque<Vec<u8>>, buf: &mut [u8]) {
    match nix::unistd::read(master, &mut buf[..CHUNK]) {
        Ok(n) if n > 0 => out.push_back(msg(b'd', &buf[..n])),
        _ => {}
    }
}

/// The client went away: hang the shell up (closing the master sends SIGHUP to its
/// session); it is killed if still there after HANGUP_GRACE.
fn client_left(s: &mut Session) {
    s.out.clear();
    match s.shell.as_mut() {
        Some(sh) if sh.hung_up.is_none() => {
            sh.master = None;
            sh.hung_up = Some(Instant::now());
            let _ = super::pidfd::send_signal(sh.pidfd.as_fd(), libc::SIGHUP);
            s.closing = true;
        }
        Some(_) => {}
        None => {
            s.closing = true;
        }
    }
}

fn from_client(s: &mut Session, spec: &ShellSpec, m: &[u8]) {
    let Some((&kind, body)) = m.split_first() else {
        return;
    };
    match (kind, s.shell.as_mut()) {
        (b'h', None) => {
            let ws = winsize_of(body);
            let term = body
                .get(4..)
                .map(|t| String::from_utf8_lossy(t).into_owned());
            match start_shell(spec, ws, term) {
                Ok(sh) => s.shell = Some(sh),
                Err(e) => {
                    let mut text = e.to_string();
                    if let Some(h) = &e.hint {
                        text.push_str(&format!("\n  hint: {h}"));
                    }
                    s.fail(&text);
                }
            }
        }
        (b'd', Some(sh)) => sh.to_pty.push(body),
        (b'w', Some(sh)) => {
            if let (Some(ws), Some(m)) = (winsize_of(body), &sh.master) {
                let _ = tty::set_winsize(m.as_fd(), ws);
            }
        }
        (b'e', Some(sh)) => {
            sh.input_ended = true;
            if let Some(c) = sh.eof_char {
                sh.to_pty.push(&[c]);
            }
        }
        (_, None) => s.fail("the first message must be a hello"),
        _ => {}
    }
}

/// Start one shell in the target, on a new pty.
fn start_shell(spec: &ShellSpec, ws: Option<Winsize>, term: Option<String>) -> Result<Shell> {
    let op = "debug_shell";
    let t = Target::open_exact(op, spec.target_pid, spec.target_start)?;
    let req = Request {
        mode: spec.mode.clone(),
        cmd: spec.cmd.clone(),
        term: term.filter(|t| !t.is_empty() && !t.contains('\0')),
    };
    let mut plan = attach::plan(op, &t, &req)?;
    let (parent, child) = unixsock::pair(SockType::SeqPacket)?;
    plan.tty = Some(TtyPlan {
        sock: child.as_raw_fd(),
        root: match &spec.mode {
            Mode::Tools { at } => at.clone(),
            Mode::Enter => "/".into(),
        },
    });
    // 0, 1 and 2 all come from the pty (no fds are given); nothing else of the server's
    // reaches the shell (everything else is close-on-exec).
    let child_proc = launcher::start(&plan)?.go()?;
    drop(child);
    let master = unixsock::recv_fd(parent.as_fd(), false)?;
    if let Some(ws) = ws {
        let _ = tty::set_winsize(master.as_fd(), ws);
    }
    unixsock::set_nonblocking(master.as_fd(), true)?;
    let pidfd = child_proc
        .pidfd
        .ok_or_else(|| SysError::os(op, Errno::ENOSYS).detail("no pidfd for the shell"))?;
    Ok(Shell {
        eof_char: tty::eof_char(master.as_fd()),
        input_ended: false,
        master: Some(master),
        pidfd,
        to_pty: Pump::default(),
        hung_up: None,
    })
}

/// `ctrsh connect SOCKET`: a terminal on a debug_shell. Returns the shell's exit status.
pub fn connect(path: &str) -> Result<i32> {
    let sock = unixsock::connect("connect", path, SockType::SeqPacket)?;
    let (stdin, stdout) = tty::stdio();
    let size_from = [stdin, stdout].into_iter().find(|f| tty::is_terminal(*f));
    let ws = size_from.and_then(tty::winsize).unwrap_or(Winsize {
        ws_row: 24,
        ws_col: 80,
        ws_xpixel: 0,
        ws_ypixel: 0,
    });
    let mut hello = msg(b'h', &size_bytes(&ws));
    hello.extend_from_slice(std::env::var("TERM").unwrap_or_default().as_bytes());
    // A server that refused us may have said why and closed before the hello: then the
    // loop below reads its reason.
    let hello_sent = send_all(sock.as_fd(), &hello).is_ok();
    let _fw = signals::Forwarding::start();
    let blocked = signals::Blocked::new(&signals::forwarded())?;
    let _raw = tty::RawMode::enter(stdin)?;
    let mut input_open = true;
    // A send that fails (the shell exited and the server closed, or it refused us) is not
    // the end: what the server said last — the exit status, or why — is still to be read.
    let mut can_send = hello_sent;
    let mut reset_seen = false;
    let send = |m: &[u8], can: &mut bool| {
        if *can && send_all(sock.as_fd(), m).is_err() {
            *can = false;
        }
    };
    let mut buf = vec![0u8; CHUNK + 64];
    loop {
        for sig in signals::take_all() {
            match sig {
                Signal::SIGWINCH => {
                    if let Some(ws) = size_from.and_then(tty::winsize) {
                        send(&msg(b'w', &size_bytes(&ws)), &mut can_send);
                    }
                }
                s => return Ok(128 + s as i32),
            }
        }
        let mut fds = vec![pollfd(sock.as_fd(), libc::POLLIN)];
        let reading = input_open && can_send;
        fds.push(pollfd(stdin, if reading { libc::POLLIN } else { 0 }));
        signals::ppoll(&mut fds, None, &blocked.old)?;
        if fds[1].revents != 0 {
            match nix::unistd::read(stdin, &mut buf[..CHUNK]) {
                Ok(n) if n > 0 => send(&msg(b'd', &buf[..n]), &mut can_send),
                Err(Errno::EAGAIN) | Err(Errno::EINTR) => {}
                _ => {
                    input_open = false;
                    send(b"e", &mut can_send);
                }
            }
        }
        if fds[0].revents != 0 {
            let n = match nix::sys::socket::recv(
                sock.as_raw_fd(),
                &mut buf,
                nix::sys::socket::MsgFlags::MSG_DONTWAIT,
            ) {
                Ok(n) => n,
                Err(Errno::EAGAIN) | Err(Errno::EINTR) => continue,
                // A server that closes with our input unread resets the connection; the
                // kernel reports that once, before the messages still queued for us (the
                // exit status, or why we were refused): read on.
                Err(Errno::ECONNRESET) if !reset_seen => {
                    reset_seen = true;
                    can_send = false;
                    continue;
                }
                Err(e) => return Err(SysError::os("connect", e).path(path).detail("recv")),
            };
            match buf[..n].split_first() {
                None => {
                    return Err(SysError::protocol(
                        "connect",
                        "the server closed the connection before the shell exited",
                    )
                    .path(path))
                }
                Some((b'd', body)) => write_all(stdout, body),
                Some((b'x', body)) => {
                    let code = body
                        .get(..4)
                        .and_then(|b| b.try_into().ok())
                        .map_or(1, i32::from_le_bytes);
                    return Ok(code);
                }
                Some((b'e', body)) => return Err(refused(path, body)),
                Some(_) => {}
            }
        }
    }
}

fn refused(path: &str, body: &[u8]) -> SysError {
    SysError::protocol("connect", String::from_utf8_lossy(body).into_owned()).path(path)
}

fn send_all(sock: BorrowedFd<'_>, m: &[u8]) -> Result<()> {
    nix::sys::socket::send(
        sock.as_raw_fd(),
        m,
        nix::sys::socket::MsgFlags::MSG_NOSIGNAL,
    )
    .map(|_| ())
    .map_err(|e| SysError::os("connect", e).detail("send"))
}

fn write_all(fd: BorrowedFd<'_>, mut b: &[u8]) {
    while !b.is_empty() {
        match nix::unistd::write(fd, b) {
            Ok(n) => b = &b[n..],
            Err(Errno::EINTR) | Err(Errno::EAGAIN) => continue,
            Err(_) => return,
        }
    }
}
