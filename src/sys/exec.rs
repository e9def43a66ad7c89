//! The last steps before a program runs: put file descriptors where the payload expects
//! them and close the rest, give signals their defaults back, find the program on PATH,
//! and execve it.

use std::ffi::{CStr, CString};
use std::os::fd::RawFd;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;

use nix::errno::Errno;

use super::error::{Result, SysError};

/// The search path when the payload's environment has no PATH (as execvp uses).
pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Find `prog` the way a shell does: a name with a '/' is used as it is; anything else is
/// looked up in each directory of `path`. The error names the program and where it looked.
pub fn find_program(prog: &str, path: &str) -> Result<CString> {
    let to_c = |s: &str| {
        CString::new(s).map_err(|_| SysError::invalid("exec", "cmd", "a NUL byte in the command"))
    };
    if prog.is_empty() {
        return Err(SysError::invalid(
            "exec",
            "cmd",
            "the program name is empty",
        ));
    }
    if prog.contains('/') {
        return to_c(prog);
    }
    let mut denied = None;
    for dir in path.split(':') {
        let dir = if dir.is_empty() { "." } else { dir };
        let cand = format!("{dir}/{prog}");
        match std::fs::metadata(&cand) {
            Ok(m) if m.is_file() && m.permissions().mode() & 0o111 != 0 => return to_c(&cand),
            Ok(m) if m.is_file() => denied = Some(cand),
            _ => {}
        }
    }
    match denied {
        Some(p) => Err(SysError::os("exec", Errno::EACCES)
            .path(p)
            .detail("not executable")),
        None => Err(SysError::os("exec", Errno::ENOENT)
            .path(prog)
            .detail(format!("not found in PATH {path}"))),
    }
}

/// execve(2). Only returns on failure, with an error naming the program.
pub fn execve(path: &CStr, argv: &[CString], env: &[CString]) -> SysError {
    let e = nix::unistd::execve(path, argv, env).unwrap_err();
    let p = String::from_utf8_lossy(path.to_bytes()).into_owned();
    let err = SysError::os("exec", e).path(&p);
    match e {
        Errno::ENOENT => err.hint(
            "the program or its interpreter (#! line) or dynamic loader does not exist in the root the process sees",
        ),
        Errno::EACCES => err.hint("not executable, or on a noexec mount"),
        Errno::ENOEXEC => err.hint("not a binary or script this kernel can run"),
        _ => err,
    }
}

fn fd_err(op: &str, fd: RawFd) -> SysError {
    SysError::last(op).name(format!("fd {fd}"))
}

/// Place file descriptors: each `(target, source)` makes `target` a copy of `source`, even
/// when sources and targets overlap (every source is first moved above every target). Every
/// other descriptor from 3 up is marked close-on-exec, so the payload gets exactly the
/// targets plus whatever of 0, 1, 2 was not replaced.
pub fn arrange_fds(pairs: &[(RawFd, RawFd)]) -> Result<()> {
    let top = pairs.iter().map(|p| p.0).max().unwrap_or(2).max(2);
    let mut moved = Vec::with_capacity(pairs.len());
    for &(target, source) in pairs {
        // SAFETY: F_DUPFD_CLOEXEC duplicates a descriptor; no memory is involved.
        let tmp = unsafe { libc::fcntl(source, libc::F_DUPFD_CLOEXEC, top + 1) };
        if tmp < 0 {
            return Err(fd_err("dup", source).detail(format!("for fd {target}")));
        }
        moved.push((target, tmp));
    }
    for &(target, tmp) in &moved {
        // SAFETY: dup2 onto a descriptor number the caller asked for; clears its CLOEXEC.
        if unsafe { libc::dup2(tmp, target) } < 0 {
            return Err(fd_err("dup2", target));
        }
    }
    let mut keep: Vec<RawFd> = pairs.iter().map(|p| p.0).filter(|&t| t > 2).collect();
    keep.sort_unstable();
    let mut from = 3;
    for k in keep {
        if k > from {
            cloexec_range(from, k - 1)?;
        }
        from = k + 1;
    }
    cloexec_range(from, RawFd::MAX)
}

/// Mark `first..=last` close-on-exec (close_range CLOSE_RANGE_CLOEXEC, or one by one where
/// the kernel lacks it).
fn cloexec_range(first: RawFd, last: RawFd) -> Result<()> {
    const CLOSE_RANGE_CLOEXEC: libc::c_uint = 1 << 2;
    // SAFETY: close_range only changes descriptor flags in the given range.
    let r = unsafe {
        libc::syscall(
            libc::SYS_close_range,
            first as libc::c_uint,
            last as libc::c_uint,
            CLOSE_RANGE_CLOEXEC,
        )
    };
    if r == 0 {
        return Ok(());
    }
    for fd in open_fds()? {
        if fd >= first && fd <= last {
            // SAFETY: setting FD_CLOEXEC on a descriptor of this process.
            unsafe { libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC) };
        }
    }
    Ok(())
}

/// Close every descriptor from `first` up (mini-init keeps nothing of its parent's).
pub fn close_from(first: RawFd) {
    // SAFETY: close_range closes descriptors of this process only.
    let r = unsafe {
        libc::syscall(
            libc::SYS_close_range,
            first as libc::c_uint,
            libc::c_uint::MAX,
            0 as libc::c_uint,
        )
    };
    if r != 0 {
        for fd in open_fds().unwrap_or_default() {
            if fd >= first {
                // SAFETY: closing our own descriptor; nothing else uses it afterwards.
                unsafe { libc::close(fd) };
            }
        }
    }
}

fn open_fds() -> Result<Vec<RawFd>> {
    let rd = std::fs::read_dir("/proc/self/fd")
        .map_err(|e| SysError::io("read_dir", &e).path("/proc/self/fd"))?;
    Ok(rd
        .flatten()
        .filter_map(|e| {
            std::str::from_utf8(e.file_name().as_bytes())
                .ok()?
                .parse()
                .ok()
        })
        .collect())
}

/// Signals whose disposition ctrsh itself changes: its interrupt and forwarding handlers,
/// and SIGPIPE, which the Rust runtime ignores.
const CHANGED_SIGNALS: [libc::c_int; 8] = [
    libc::SIGINT,
    libc::SIGTERM,
    libc::SIGHUP,
    libc::SIGQUIT,
    libc::SIGUSR1,
    libc::SIGUSR2,
    libc::SIGWINCH,
    libc::SIGPIPE,
];

/// Default dispositions for the signals ctrsh changed, and an empty signal mask, for the
/// program about to run (ignored signals and the mask survive execve; handlers do not).
/// Signals ctrsh found ignored when it started stay ignored, as a shell's exec keeps them.
pub fn reset_signals() {
    for sig in CHANGED_SIGNALS {
        // SAFETY: SIG_DFL installs no handler.
        unsafe { libc::signal(sig, libc::SIG_DFL) };
    }
    // SAFETY: an empty set, valid for the call.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigprocmask(libc::SIG_SETMASK, &set, std::ptr::null_mut());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_programs_on_path_and_names_missing_ones() {
        let p = find_program("sh", DEFAULT_PATH).unwrap();
        assert!(p.to_bytes().ends_with(b"/sh"));
        assert_eq!(find_program("/x/y", "").unwrap().to_bytes(), b"/x/y");
        let e = find_program("no-such-program-ctrsh", "/usr/bin:/bin").unwrap_err();
        assert_eq!(e.errno(), Some(Errno::ENOENT));
        assert!(e.to_string().contains("no-such-program-ctrsh"), "{e}");
        assert!(e.to_string().contains("/usr/bin:/bin"), "{e}");
        assert!(find_program("", DEFAULT_PATH).is_err());
    }
}
