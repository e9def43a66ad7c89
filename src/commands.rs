//! The subcommands that are not scripts: `attach`, `exec`, `ps`, `stop` and `connect`.
//! Each is a few calls into `sys` (and the engine's launcher for attach), with errors
//! printed as `ctrsh CMD: message` plus a hint, and the exit status a shell expects.

use std::time::Duration;

use rhai::EvalAltResult;

use crate::engine::attach::{self as eattach, AttachArgs};
use crate::engine::cleanup;
use crate::sys::attach::{self, resolve, Mode};
use crate::sys::{named, tty, SysError};

/// Print a sys error as the CLI does.
pub fn print_sys(cmd: &str, e: &SysError) {
    eprintln!("ctrsh {cmd}: {e}");
    if let Some(h) = &e.hint {
        eprintln!("  hint: {h}");
    }
}

/// Print a script-level error (a map with message and hint) as the CLI does; the status
/// of a failed launch (127 program not found, 126 not executable, else 1).
fn print_script(cmd: &str, e: &EvalAltResult) -> i32 {
    if let EvalAltResult::ErrorRuntime(v, _) = e {
        if let Some(m) = v.read_lock::<rhai::Map>() {
            let get = |k: &str| m.get(k).and_then(|x| x.clone().into_string().ok());
            eprintln!(
                "ctrsh {cmd}: {}",
                get("message").unwrap_or_else(|| e.to_string())
            );
            if let Some(h) = get("hint") {
                eprintln!("  hint: {h}");
            }
            let op = get("op").unwrap_or_default();
            let errno = get("errno_name").unwrap_or_default();
            return match (op.as_str(), errno.as_str()) {
                ("exec", "ENOENT") => 127,
                ("exec", _) => 126,
                _ => 1,
            };
        }
    }
    eprintln!("ctrsh {cmd}: {e}");
    1
}

/// `ctrsh attach TARGET [CMD...]`.
pub fn attach(target: &str, cmd: Vec<String>, tools_at: String, enter: bool, no_tty: bool) -> i32 {
    let pid = match resolve::resolve("attach", target) {
        Ok(p) => p,
        Err(e) => {
            print_sys("attach", &e);
            return 1;
        }
    };
    let mode = if enter {
        Mode::Enter
    } else {
        Mode::Tools { at: tools_at }
    };
    let args = AttachArgs {
        pid,
        mode,
        cmd,
        tty: !no_tty && tty::wanted(false),
    };
    let code = match eattach::start("attach", args, Vec::new(), Vec::new()) {
        Ok(p) => match p.wait(None) {
            Ok(c) => c.unwrap_or(0),
            Err(e) => {
                print_sys("attach", &e);
                1
            }
        },
        Err(e) => print_script("attach", &e),
    };
    cleanup::teardown_all_reporting();
    code
}

/// `ctrsh exec [CMD...]`, inside an attached shell.
pub fn exec(cmd: Vec<String>) -> i32 {
    let Some(root) = std::env::var_os(attach::ENV_ROOT).filter(|r| !r.is_empty()) else {
        eprintln!(
            "ctrsh exec: not inside an attached shell ({} is not set)",
            attach::ENV_ROOT
        );
        eprintln!(
            "  hint: run `ctrsh attach TARGET` first; `ctrsh exec CMD` runs CMD in that container"
        );
        return 2;
    };
    let root = root.to_string_lossy().into_owned();
    let env = attach::decode_env(&std::env::var(attach::ENV_ENV).unwrap_or_default());
    use std::io::Write;
    let _ = std::io::stdout().flush();
    let e = attach::exec_in_container(&root, &env, &cmd);
    print_sys("exec", &e);
    match (e.op.as_str(), e.errno()) {
        ("exec", Some(nix::errno::Errno::ENOENT)) => 127,
        ("exec", Some(_)) => 126,
        _ => 1,
    }
}

fn state_word(s: Option<char>) -> &'static str {
    match s {
        Some('T') | Some('t') => "stopped",
        Some(_) => "running",
        None => "exited",
    }
}

/// `ctrsh ps`: the named containers; the state of those that exited is removed.
pub fn ps() -> i32 {
    let rows: Vec<(named::Record, Option<char>)> = named::list()
        .into_iter()
        .filter_map(|(r, alive)| {
            if alive {
                let st = r.live_state();
                return Some((r, st));
            }
            named::forget(&r);
            eprintln!(
                "ctrsh ps: {} (pid {}) has exited; its state was removed",
                r.name, r.pid
            );
            None
        })
        .collect();
    let w = rows
        .iter()
        .map(|(r, _)| r.name.len())
        .max()
        .unwrap_or(4)
        .max(4);
    println!("{:<w$}  {:>7}  {:<8}  COMMAND", "NAME", "PID", "STATE");
    for (r, st) in rows {
        println!(
            "{:<w$}  {:>7}  {:<8}  {}",
            r.name,
            r.pid,
            state_word(st),
            r.cmd
        );
    }
    0
}

/// `ctrsh stop NAME... [--time SECS]`.
pub fn stop(names: &[String], grace_secs: f64) -> i32 {
    if !grace_secs.is_finite() || grace_secs < 0.0 {
        eprintln!("ctrsh stop: --time {grace_secs} is not a number of seconds");
        return 2;
    }
    let grace = Duration::from_secs_f64(grace_secs);
    let mut status = 0;
    for name in names {
        if let Err(e) = named::validate("stop", name) {
            print_sys("stop", &e);
            status = 1;
            continue;
        }
        let Some(rec) = named::lookup(name) else {
            eprintln!("ctrsh stop: no running container named {name:?} (ctrsh ps lists them)");
            status = 1;
            continue;
        };
        match named::stop(&rec, grace) {
            Ok(named::Stopped::Terminated) => println!("{name}: stopped (pid {})", rec.pid),
            Ok(named::Stopped::Killed) => println!(
                "{name}: killed (pid {}, still running {grace_secs}s after SIGTERM)",
                rec.pid
            ),
            Ok(named::Stopped::NotRunning) => println!("{name}: was not running"),
            Err(e) => {
                print_sys("stop", &e);
                status = 1;
            }
        }
    }
    status
}

/// `ctrsh connect SOCKET`: the shell's exit status, or 1 when the connection failed.
pub fn connect(socket: &str) -> i32 {
    match crate::sys::debug_shell::connect(socket) {
        Ok(code) => code,
        Err(e) => {
            print_sys("connect", &e);
            1
        }
    }
}
