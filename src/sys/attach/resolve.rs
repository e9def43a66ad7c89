//! Which process a target names: a pid, a ctrsh container name, or a container known to
//! docker, podman, machinectl (systemd-nspawn), lxc-info or ctr (containerd), asked through
//! their command-line tools when they are installed. Every lookup that fails is reported,
//! together, in one error.

use std::io::Read;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::super::error::{Result, SysError};
use super::super::named;

/// How long one runtime's CLI may take to answer.
const CLI_TIMEOUT: Duration = Duration::from_secs(10);

/// A pid: the number itself; anything else is looked up by name.
pub fn resolve(op: &str, target: &str) -> Result<i32> {
    let t = target.trim();
    if !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit()) {
        return t
            .parse::<i32>()
            .ok()
            .filter(|p| *p > 0)
            .ok_or_else(|| SysError::invalid(op, "target", format!("{t} is not a process id")));
    }
    if t.is_empty() {
        return Err(SysError::invalid(
            op,
            "target",
            "empty: give a pid or a container name",
        ));
    }
    // No runtime names a container "-x"; passed on, it would be read as an option.
    if t.starts_with('-') {
        return Err(SysError::invalid(
            op,
            "target",
            format!("{t:?} is neither a process id nor a container name"),
        ));
    }
    let mut failed = Vec::new();
    match named::validate(op, t) {
        Err(_) => failed.push("ctrsh: not a valid container name".to_string()),
        Ok(()) => match named::lookup(t) {
            Some(rec) => return Ok(rec.pid),
            None => failed.push(format!(
                "ctrsh: no running container of that name in {}",
                named::run_dir().display()
            )),
        },
    }
    let mut missing = Vec::new();
    for (tool, lookup) in RUNTIMES {
        if !on_path(tool) {
            missing.push(*tool);
            continue;
        }
        match lookup(t) {
            Ok(pid) => return Ok(pid),
            Err(why) => failed.push(format!("{tool}: {why}")),
        }
    }
    if !missing.is_empty() {
        failed.push(format!("{}: not installed", missing.join(", ")));
    }
    Err(SysError::not_found(
        op,
        format!("no process or container {t:?}: {}", failed.join("; ")),
    )
    .name("target")
    .hint("give a pid, or the name of a running container (ctrsh ps lists ctrsh's)"))
}

type Lookup = fn(&str) -> std::result::Result<i32, String>;

const RUNTIMES: &[(&str, Lookup)] = &[
    ("docker", |n| inspect("docker", n)),
    ("podman", |n| inspect("podman", n)),
    ("machinectl", |n| {
        pid_from(&run(
            "machinectl",
            &["show", "--property=Leader", "--value", n],
        )?)
    }),
    ("lxc-info", |n| {
        pid_from(&run("lxc-info", &["-n", n, "-p", "-H"])?)
    }),
    ("ctr", |n| {
        // `ctr task ls`: TASK PID STATUS
        let out = run("ctr", &["task", "ls"])?;
        out.lines()
            .skip(1)
            .find_map(|l| {
                let mut f = l.split_whitespace();
                (f.next() == Some(n)).then(|| f.next().map(str::to_string))?
            })
            .ok_or_else(|| "no such task".to_string())
            .and_then(|p| pid_from(&p))
    }),
];

fn inspect(tool: &str, name: &str) -> std::result::Result<i32, String> {
    let out = run(tool, &["inspect", "--format", "{{.State.Pid}}", name])?;
    match out.trim() {
        "0" => Err("the container is not running".into()),
        p => pid_from(p),
    }
}

fn pid_from(s: &str) -> std::result::Result<i32, String> {
    s.trim()
        .parse::<i32>()
        .ok()
        .filter(|p| *p > 0)
        .ok_or_else(|| format!("unexpected answer {:?}", s.trim()))
}

fn on_path(tool: &str) -> bool {
    let path = std::env::var("PATH").unwrap_or_else(|_| super::super::exec::DEFAULT_PATH.into());
    super::super::exec::find_program(tool, &path).is_ok()
}

/// Run a runtime's CLI (no input, at most CLI_TIMEOUT) and return its standard output;
/// a failure is its first line of standard error.
fn run(tool: &str, args: &[&str]) -> std::result::Result<String, String> {
    let mut child = Command::new(tool)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run it: {e}"))?;
    let end = Instant::now() + CLI_TIMEOUT;
    let status = loop {
        match child.try_wait() {
            Ok(Some(s)) => break s,
            Ok(None) if Instant::now() < end => std::thread::sleep(Duration::from_millis(10)),
            Ok(None) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!("no answer within {}s", CLI_TIMEOUT.as_secs()));
            }
            Err(e) => return Err(format!("wait: {e}")),
        }
    };
    let mut out = String::new();
    let mut err = String::new();
    if let Some(mut o) = child.stdout.take() {
        let _ = o.read_to_string(&mut out);
    }
    if let Some(mut e) = child.stderr.take() {
        let _ = e.read_to_string(&mut err);
    }
    if status.success() {
        return Ok(out);
    }
    let first = err
        .lines()
        .chain(out.lines())
        .map(str::trim)
        .find(|l| !l.is_empty())
        .unwrap_or("failed")
        .to_string();
    Err(first)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_are_pids_and_names_report_every_lookup() {
        assert_eq!(resolve("attach", "42").unwrap(), 42);
        assert!(resolve("attach", "0").is_err());
        assert!(resolve("attach", "").is_err());
        let e = resolve("attach", "no-such-container-ctrsh-test")
            .unwrap_err()
            .to_string();
        assert!(e.contains("ctrsh: no running container"), "{e}");
        for tool in ["docker", "podman", "machinectl", "lxc-info", "ctr"] {
            assert!(e.contains(tool), "{tool} missing from {e}");
        }
        let e = resolve("attach", "../etc").unwrap_err().to_string();
        assert!(e.contains("not a valid container name"), "{e}");
    }
}
