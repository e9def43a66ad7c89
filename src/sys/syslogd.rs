//! ctrtool's syslogd: a unix datagram socket (bound, e.g., at a container's /dev/log) whose
//! every message is written to an output as one line tagged with the sender's uid, gid and
//! pid, taken from the kernel (SO_PASSCRED / SCM_CREDENTIALS), not from the message — so
//! containers with different uid maps can be told apart and cannot pose as each other.
//!
//! Line format (ids as the server's namespaces number them, time in UTC):
//!
//! ```text
//! 2025-06-01T12:00:00Z uid=100000 gid=100000 pid=4242 user.notice: Jun  1 12:00:00 app: hello
//! ```

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::time::{SystemTime, UNIX_EPOCH};

use nix::errno::Errno;

use super::unixsock::{self, Cred};

const FACILITIES: [&str; 24] = [
    "kern", "user", "mail", "daemon", "auth", "syslog", "lpr", "news", "uucp", "cron", "authpriv",
    "ftp", "ntp", "audit", "alert", "clock", "local0", "local1", "local2", "local3", "local4",
    "local5", "local6", "local7",
];
const SEVERITIES: [&str; 8] = [
    "emerg", "alert", "crit", "err", "warning", "notice", "info", "debug",
];

/// `secs` after the epoch as `YYYY-MM-DDTHH:MM:SSZ` (civil-from-days, proleptic Gregorian).
pub fn utc(secs: u64) -> String {
    let days = (secs / 86400) as i64;
    let rem = secs % 86400;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    )
}

/// The lines for one datagram: its `<PRI>` decoded into facility.severity, one line per
/// line of the message (trailing newlines and NULs dropped, other control bytes escaped).
pub fn format(msg: &[u8], cred: Option<Cred>, secs: u64) -> Vec<String> {
    let text = String::from_utf8_lossy(msg);
    let text = text.trim_end_matches(['\n', '\0', '\r']);
    let (pri, body) = match text.strip_prefix('<').and_then(|r| r.split_once('>')) {
        Some((n, rest)) if n.len() <= 3 && n.bytes().all(|b| b.is_ascii_digit()) => {
            let n: usize = n.parse().unwrap_or(13);
            (n, rest)
        }
        _ => (13, text), // user.notice, as syslog(3) defaults
    };
    let fac = FACILITIES.get(pri >> 3).copied().unwrap_or("user");
    let sev = SEVERITIES[pri & 7];
    let who = match cred {
        Some(c) => format!("uid={} gid={} pid={}", c.uid, c.gid, c.pid),
        None => "uid=? gid=? pid=?".to_string(),
    };
    let stamp = utc(secs);
    body.split('\n')
        .map(|l| {
            let clean: String = l
                .chars()
                .map(|c| {
                    if c.is_control() && c != '\t' {
                        format!("\\x{:02x}", c as u32)
                    } else {
                        c.to_string()
                    }
                })
                .collect();
            format!("{stamp} {who} {fac}.{sev}: {clean}\n")
        })
        .collect()
}

fn write_all(out: BorrowedFd<'_>, mut b: &[u8]) {
    while !b.is_empty() {
        match nix::unistd::write(out, b) {
            Ok(0) => return,
            Ok(n) => b = &b[n..],
            Err(Errno::EINTR) => continue,
            Err(_) => return,
        }
    }
}

/// Receive forever on `sock` (a datagram socket with SO_PASSCRED), writing lines to
/// `out`. The forked server process; never returns.
pub fn serve(sock: OwnedFd, out: OwnedFd) -> ! {
    super::exec::reset_signals();
    // SAFETY: SIG_IGN installs no handler.
    unsafe { libc::signal(libc::SIGPIPE, libc::SIG_IGN) };
    let _ = unixsock::set_nonblocking(sock.as_fd(), false);
    let mut buf = vec![0u8; 65536];
    loop {
        match unixsock::recv_with_cred(sock.as_fd(), &mut buf) {
            Ok((n, cred)) => {
                let secs = SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .map(|d| d.as_secs())
                    .unwrap_or(0);
                let lines: String = format(&buf[..n], cred, secs).concat();
                write_all(out.as_fd(), lines.as_bytes());
            }
            Err(e) if matches!(e.errno(), Some(Errno::EINTR) | Some(Errno::EAGAIN)) => {}
            // SAFETY: ends the server process without the shell's cleanup.
            Err(_) => unsafe { libc::_exit(1) },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_carry_credentials_and_priority() {
        let c = Cred {
            pid: 42,
            uid: 100000,
            gid: 100001,
        };
        let l = format(b"<30>Jan  1 00:00:00 app[7]: hello\n", Some(c), 0);
        assert_eq!(
            l,
            vec!["1970-01-01T00:00:00Z uid=100000 gid=100001 pid=42 daemon.info: Jan  1 00:00:00 app[7]: hello\n"]
        );
        let l = format(b"no pri\nsecond\x07line\0", None, 86400 * 365);
        assert_eq!(l.len(), 2);
        assert!(
            l[0].contains("uid=? gid=? pid=? user.notice: no pri"),
            "{l:?}"
        );
        assert!(l[1].ends_with("second\\x07line\n"), "{l:?}");
        assert_eq!(utc(1_700_000_000), "2023-11-14T22:13:20Z");
        assert_eq!(utc(951_782_400), "2000-02-29T00:00:00Z");
    }
}
