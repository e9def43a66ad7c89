//! Named containers: state under CTRSH_RUN_DIR, `ctrsh ps`, `ctrsh stop`, names in use,
//! stale state of killed containers, and names that are not names.
mod common;
use common::*;

use std::time::{Duration, Instant};

fn ps(rd: &RunDir) -> (String, String) {
    let out = rd.ctrsh().arg("ps").output().unwrap();
    assert!(out.status.success());
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn start(rd: &RunDir, name: &str, cmd: &str) -> i32 {
    let out = rd.eval_ok(&format!(
        r#"let p = spawn(#{{ name: "{name}", detach: true, ns: ["pid", "mnt"],
                          cmd: ["sh", "-c", "{cmd}"], stdout: "null", stderr: "null" }});
           print(p.pid);"#
    ));
    out.trim().parse().unwrap()
}

fn alive(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|s| !s.contains(") Z"))
        .unwrap_or(false)
}

#[test]
fn ps_and_stop_on_two_named_containers_and_a_killed_ones_state_is_cleaned() {
    if !is_root() {
        eprintln!("skipped: needs root");
        return;
    }
    let rd = RunDir::new();
    let a = unique("web");
    let b = unique("db");
    let pa = start(&rd, &a, "sleep 300");
    let pb = start(&rd, &b, "sleep 301");
    let (out, _) = ps(&rd);
    let line = |n: &str| {
        out.lines()
            .find(|l| l.starts_with(&format!("{n} ")))
            .map(str::to_string)
    };
    let la = line(&a).unwrap_or_else(|| panic!("{a} missing: {out}"));
    assert!(
        la.contains(&pa.to_string()) && la.contains("running") && la.contains("sleep 300"),
        "{la}"
    );
    let lb = line(&b).unwrap_or_else(|| panic!("{b} missing: {out}"));
    assert!(
        lb.contains(&pb.to_string()) && lb.contains("sleep 301"),
        "{lb}"
    );
    assert!(out.starts_with("NAME"), "{out}");

    // The script view agrees.
    let names = rd.eval_ok("for c in containers() { print(`${c.name} ${c.pid} ${c.state}`); }");
    assert!(names.contains(&format!("{a} {pa} running")), "{names}");
    let p = rd.eval_ok(&format!(r#"print(container("{b}").pid)"#));
    assert_eq!(p.trim(), pb.to_string());
    // Shown by its command, as ps shows it (not by the comm of ctrsh's mini-init).
    let shown = rd.eval_ok(&format!(r#"print(container("{b}"))"#));
    assert!(
        shown.contains("sleep 301\"") && !shown.contains("\"ctrsh\""),
        "{shown}"
    );

    // stop: TERM reaches the payload through init; the state goes.
    let t = Instant::now();
    let out = rd.ctrsh().args(["stop", &a]).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains(&format!("{a}: stopped")));
    assert!(t.elapsed() < Duration::from_secs(5), "TERM was enough");
    assert!(!alive(pa));
    assert_eq!(rd.names(), vec![b.clone()]);

    // A container killed behind ctrsh's back: ps says so once and removes its state.
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pb),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    for _ in 0..100 {
        if !alive(pb) {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let (out, err) = ps(&rd);
    assert!(!out.contains(&b), "{out}");
    assert!(err.contains(&format!("{b} (pid {pb}) has exited")), "{err}");
    assert!(rd.names().is_empty(), "{:?}", rd.names());
    // Stopping what is gone is an error that says so.
    let out = rd.ctrsh().args(["stop", &b]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no running container"));
}

#[test]
fn stop_kills_after_the_grace_period() {
    if !is_root() {
        eprintln!("skipped: needs root");
        return;
    }
    let rd = RunDir::new();
    let n = unique("stub");
    // Without init the payload is pid 1 of its namespace: TERM without a handler is ignored.
    let out = rd.eval_ok(&format!(
        r#"print(spawn(#{{ name: "{n}", detach: true, ns: ["pid", "mnt"], init: false,
                           cmd: ["sleep", "300"], stdout: "null", stderr: "null" }}).pid)"#
    ));
    let pid: i32 = out.trim().parse().unwrap();
    let t = Instant::now();
    let out = rd
        .ctrsh()
        .args(["stop", "--time", "0.5", &n])
        .output()
        .unwrap();
    let s = String::from_utf8_lossy(&out.stdout);
    assert!(s.contains("killed"), "{s}");
    assert!(t.elapsed() >= Duration::from_millis(500));
    assert!(!alive(pid));
    assert!(rd.names().is_empty());
}

#[test]
fn a_name_in_use_is_an_error_naming_it_and_bad_names_are_refused() {
    if !is_root() {
        eprintln!("skipped: needs root");
        return;
    }
    let rd = RunDir::new();
    let n = unique("dup");
    let pid = start(&rd, &n, "sleep 300");
    let out = rd
        .ctrsh()
        .arg("-e")
        .arg(format!(
            r#"spawn(#{{ name: "{n}", detach: true, cmd: ["sleep", "1"] }})"#
        ))
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains(&n) && err.contains(&format!("in use by pid {pid}")),
        "{err}"
    );
    assert_eq!(
        rd.pid_of(&n),
        Some(pid),
        "the first container's state is untouched"
    );

    for bad in ["a/b", "..", "", "-x", "123", "a b"] {
        let out = rd
            .ctrsh()
            .arg("-e")
            .arg(format!(r#"spawn(#{{ name: "{bad}", cmd: ["true"] }})"#))
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{bad:?} accepted");
        assert!(err.contains("spawn(name)"), "{bad:?}: {err}");
    }
    assert_eq!(rd.names(), vec![n.clone()]);
    let out = rd.ctrsh().args(["stop", "../x"]).output().unwrap();
    assert!(String::from_utf8_lossy(&out.stderr).contains("contains '/'"));
}

#[test]
fn a_named_container_that_is_not_detached_is_forgotten_when_the_recipe_ends() {
    if !is_root() {
        eprintln!("skipped: needs root");
        return;
    }
    let rd = RunDir::new();
    let n = unique("own");
    let out = rd.eval_ok(&format!(
        r#"let p = spawn(#{{ name: "{n}", ns: ["pid", "mnt"], cmd: ["sleep", "300"] }});
           print(containers().map(|c| c.name));
           print(p.pid);"#
    ));
    assert!(out.contains(&n), "{out}");
    let pid: i32 = out.lines().last().unwrap().parse().unwrap();
    std::thread::sleep(Duration::from_millis(100));
    assert!(!alive(pid));
    assert!(rd.names().is_empty(), "{:?}", rd.names());
}

/// A detached named container whose payload dies of a real-time signal ends: mini-init exits
/// with 128+N and `ctrsh ps` no longer lists it as running.
#[test]
fn a_named_container_killed_by_a_real_time_signal_ends() {
    if !is_root() {
        eprintln!("skipped: needs root");
        return;
    }
    let rd = RunDir::new();
    let n = unique("rt");
    let pid = start(&rd, &n, "sleep 0.2; kill -34 $$");
    for _ in 0..250 {
        if !alive(pid) {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let gone = !alive(pid);
    if !gone {
        // Leave nothing behind even when the test fails.
        let _ = rd.ctrsh().args(["stop", "--time", "0.1", &n]).output();
    }
    assert!(gone, "mini-init {pid} still runs after its payload died");
    let (out, _) = ps(&rd);
    assert!(
        !out.lines()
            .any(|l| l.starts_with(&format!("{n} ")) && l.contains("running")),
        "{out}"
    );
}

#[test]
fn stop_ends_what_the_container_started() {
    // Without a pid namespace: the payload's child and an orphan (in the container's
    // process group) when the payload ends on SIGTERM; with init, a tree that ignores
    // SIGTERM, a daemon that left the group included, when it is killed.
    let rd = RunDir::new();
    let m = unique("ctrsh-st");
    let cases = [
        (
            "",
            format!("(exec -a {m}-orphan sleep 100 &); exec -a {m}-child sleep 100 & wait"),
        ),
        (
            "init: true,",
            format!(
                "trap '' TERM; (exec -a {m}-orphan2 sleep 100 &); \
                 setsid -f bash -c 'exec -a {m}-daemon sleep 100'; sleep 100 & wait"
            ),
        ),
    ];
    for (i, (spec, script)) in cases.iter().enumerate() {
        let n = format!("{m}-{i}");
        rd.eval_ok(&format!(
            r#"spawn(#{{ name: "{n}", detach: true, {spec} cmd: ["bash", "-c", "{script}"],
                         stdout: "null", stderr: "null" }}); sleep(0.3);"#
        ));
        assert!(!pids_of(&m).is_empty());
        let out = rd
            .ctrsh()
            .args(["stop", "--time", "0.5", &n])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        std::thread::sleep(Duration::from_millis(100));
        let left = pids_of(&m);
        for &p in &left {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(p),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
        assert_eq!(left, Vec::<i32>::new(), "{spec:?}: left running after stop");
    }
}
