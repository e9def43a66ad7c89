//! Helpers shared by the integration tests. Every test runs the real `ctrsh` binary, so each
//! is its own single-threaded process (namespace calls fail in cargo's multi-threaded runner).
#![allow(dead_code)]

use std::process::Output;
use std::sync::atomic::{AtomicU32, Ordering};

use assert_cmd::Command;

/// A `ctrsh` command with a clean CTRSH_PATH.
pub fn ctrsh() -> Command {
    let mut c = Command::cargo_bin("ctrsh").expect("ctrsh binary");
    c.env_remove("CTRSH_PATH");
    c.timeout(std::time::Duration::from_secs(120));
    c
}

/// Run `ctrsh -e CODE`, returning the whole output.
pub fn eval(code: &str) -> Output {
    ctrsh().arg("-e").arg(code).output().expect("run ctrsh")
}

/// Run `ctrsh -e CODE`, assert success, return stdout.
pub fn eval_ok(code: &str) -> String {
    let out = eval(code);
    assert!(
        out.status.success(),
        "ctrsh -e failed ({:?})\n--- code\n{code}\n--- stdout\n{}\n--- stderr\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8 stdout")
}

/// Run `ctrsh -e CODE`, assert failure, return stderr.
pub fn eval_err(code: &str) -> String {
    let out = eval(code);
    assert!(
        !out.status.success(),
        "ctrsh -e unexpectedly succeeded\n--- code\n{code}\n--- stdout\n{}",
        String::from_utf8_lossy(&out.stdout)
    );
    String::from_utf8(out.stderr).expect("utf-8 stderr")
}

/// A name unique to this test process and call, short enough for an interface name
/// (at most 15 bytes when `prefix` is at most 5).
pub fn unique(prefix: &str) -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    let n = N.fetch_add(1, Ordering::SeqCst);
    format!("{prefix}{:x}{n:x}", std::process::id() & 0xfffff)
}

/// Whether the tests run as root (most kernel tests need it).
pub fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

/// Whether the tests run as root; says so when a test is skipped because they do not (CI
/// and the README's test command run as root, where nothing is skipped).
pub fn need_root() -> bool {
    if !is_root() {
        eprintln!("skipped: needs root");
        return false;
    }
    true
}
