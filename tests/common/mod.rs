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
    stdout_of_success(code, eval(code))
}

/// Assert that `ctrsh -e CODE` succeeded (showing everything if not) and return stdout.
pub fn stdout_of_success(code: &str, out: Output) -> String {
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

/// A private state directory for named containers (CTRSH_RUN_DIR), so tests never see each
/// other's names. Dropping it kills every container still recorded in it.
pub struct RunDir {
    pub dir: tempfile::TempDir,
}

impl RunDir {
    pub fn new() -> RunDir {
        RunDir {
            dir: tempfile::Builder::new()
                .prefix("ctrsh-run")
                .tempdir()
                .expect("temp dir"),
        }
    }

    pub fn path(&self) -> String {
        self.dir.path().display().to_string()
    }

    /// `ctrsh` with CTRSH_RUN_DIR pointing here.
    pub fn ctrsh(&self) -> Command {
        let mut c = ctrsh();
        c.env("CTRSH_RUN_DIR", self.dir.path());
        c
    }

    pub fn eval_ok(&self, code: &str) -> String {
        let out = self
            .ctrsh()
            .arg("-e")
            .arg(code)
            .output()
            .expect("run ctrsh");
        stdout_of_success(code, out)
    }

    /// The pid recorded for `name`, if its state exists.
    pub fn pid_of(&self, name: &str) -> Option<i32> {
        let text = std::fs::read_to_string(self.dir.path().join(name).join("state")).ok()?;
        text.lines()
            .find_map(|l| l.strip_prefix("pid="))?
            .parse()
            .ok()
    }

    /// Names that have state here.
    pub fn names(&self) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(self.dir.path())
            .map(|rd| {
                rd.flatten()
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default();
        v.sort();
        v
    }
}

impl Drop for RunDir {
    fn drop(&mut self) {
        for n in self.names() {
            if let Some(pid) = self.pid_of(&n) {
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(pid),
                    nix::sys::signal::Signal::SIGKILL,
                );
            }
        }
    }
}

/// The mounts of this test process (to check that nothing leaked into the host's tree).
pub fn my_mounts() -> Vec<String> {
    let text = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    let mut v: Vec<String> = text
        .lines()
        .map(|l| l.split(' ').nth(4).unwrap_or("").to_string())
        .collect();
    v.sort();
    v
}

const PTY_HELPER: &str = r#"
import fcntl, json, os, pty, select, struct, sys, termios, time
spec = json.loads(sys.argv[1])
argv = sys.argv[2:]
rows, cols = spec.get("size", [24, 80])
pid, fd = pty.fork()
if pid == 0:
    fcntl.ioctl(0, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
    os.execvp(argv[0], argv)
out = b""
seen = 0
end = time.time() + spec.get("timeout", 60)
def pump(until=None):
    global out
    while time.time() < end:
        if until is not None and until in out[seen:]:
            return True
        r, _, _ = select.select([fd], [], [], 0.05)
        if fd in r:
            try:
                d = os.read(fd, 65536)
            except OSError:
                return False
            if not d:
                return False
            out += d
    return False
for step in spec.get("steps", []):
    if step[0] == "expect":
        want = step[1].encode()
        if not pump(want):
            break
        seen = out.index(want, seen) + len(want)
    elif step[0] == "send":
        os.write(fd, step[1].encode())
    elif step[0] == "resize":
        fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", step[1], step[2], 0, 0))
    elif step[0] == "sleep":
        time.sleep(step[1])
pump()
code = None
while time.time() < end:
    p, st = os.waitpid(pid, os.WNOHANG)
    if p:
        code = os.waitstatus_to_exitcode(st)
        break
    time.sleep(0.05)
if code is None:
    os.kill(pid, 9)
    os.waitpid(pid, 0)
    code = -9
sys.stdout.write(out.decode("utf-8", "replace"))
sys.stdout.write("\n@@STATUS %d\n" % code)
"#;

/// Run `argv` on a new pty (python3's pty module) of `rows`x`cols`, performing `steps`
/// (a JSON array of ["expect", text] / ["send", text] / ["resize", rows, cols] /
/// ["sleep", secs]); returns everything the terminal showed and the exit status.
pub fn in_pty(
    rows: u16,
    cols: u16,
    steps: &str,
    argv: &[&str],
    envs: &[(&str, &str)],
) -> (String, i32) {
    let spec = format!(r#"{{"size": [{rows}, {cols}], "steps": {steps}, "timeout": 60}}"#);
    let mut c = std::process::Command::new("python3");
    c.arg("-c").arg(PTY_HELPER).arg(spec).args(argv);
    c.env_remove("CTRSH_PATH").env("TERM", "xterm");
    for (k, v) in envs {
        c.env(k, v);
    }
    let out = c.output().expect("python3");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, status) = text.rsplit_once("\n@@STATUS ").unwrap_or_else(|| {
        panic!(
            "pty helper failed: {text}\n{}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (body.to_string(), status.trim().parse().unwrap())
}

/// The ctrsh binary under test.
pub fn ctrsh_bin() -> String {
    assert_cmd::cargo::cargo_bin("ctrsh").display().to_string()
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

/// Pids of the processes whose command line starts with `prefix` (pgrep -f).
pub fn pids_of(prefix: &str) -> Vec<i32> {
    std::process::Command::new("pgrep")
        .args(["-f", &format!("^{prefix}")])
        .output()
        .map(|o| {
            String::from_utf8_lossy(&o.stdout)
                .split_whitespace()
                .filter_map(|p| p.parse().ok())
                .collect()
        })
        .unwrap_or_default()
}
