//! Processes and namespaces on the real kernel: spawn/run/output/fork/exec, id maps,
//! mini-init, signals, statuses, and bad specs. The kernel's own view (/proc/PID/ns/*,
//! uid_map, file owners, ps) is the oracle.
mod common;
use common::*;

use std::io::{BufRead, BufReader};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const KINDS: [&str; 8] = ["user", "mnt", "net", "pid", "uts", "ipc", "cgroup", "time"];

/// For every kind alone: the spawned process's namespace of that kind differs from the
/// shell's, and every other kind is the shell's.
#[test]
fn created_namespaces_differ_and_the_rest_match_for_all_kinds() {
    if !need_root() {
        return;
    }
    for kind in KINDS {
        let out = eval_ok(&format!(
            r#"
            let p = spawn(#{{ ns: ["{kind}"], cmd: ["sleep", "5"] }});
            // pid and time namespaces hold the process itself (it is init / it exec'd).
            for k in ["user", "mnt", "net", "pid", "uts", "ipc", "cgroup", "time"] {{
                let mine = read_link(`/proc/self/ns/${{k}}`);
                let its = read_link(`/proc/${{p.pid}}/ns/${{k}}`);
                print(`${{k}} ${{if mine == its {{ "same" }} else {{ "new" }}}}`);
            }}
            p.kill();
            "#
        ));
        for k in KINDS {
            let want = if k == kind { "new" } else { "same" };
            assert!(
                out.lines().any(|l| l == format!("{k} {want}")),
                "spawn ns [{kind}]: expected {k} {want}\n{out}"
            );
        }
    }
}

#[test]
fn all_kinds_at_once_and_the_shell_stays_home() {
    if !need_root() {
        return;
    }
    let out = eval_ok(
        r#"
        let before = ns();
        let p = spawn(#{ ns: ["user", "mnt", "net", "pid", "uts", "ipc", "cgroup", "time"],
                         hostname: "all8", cmd: ["sleep", "5"] });
        let n = 0;
        for k in before.keys() {
            if read_link(`/proc/${p.pid}/ns/${k}`) != `${k}:[${before[k]}]` { n += 1; }
        }
        print(`differ ${n}`);
        print(`home ${ns() == before}`);
        "#,
    );
    assert!(out.contains("differ 8"), "{out}");
    assert!(out.contains("home true"), "{out}");
}

#[test]
fn uid_map_makes_root_inside_and_files_owned_by_the_outer_id() {
    if !need_root() {
        return;
    }
    let dir = std::env::temp_dir().join(unique("ctrsh-map"));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777)).unwrap();
    let out = eval_ok(&format!(
        r#"
        let root = rootfs(#{{ entries: [ro_bind("/usr"), symlink("usr/bin", "/bin"),
                                        symlink("usr/lib", "/lib"), symlink("usr/lib64", "/lib64"),
                                        bind_entry("{d}", "/data", #{{}})] }});
        let r = output(#{{ ns: ["user", "mnt"], uid_map: "0 100000 65536", gid_map: "0 100000 65536",
                          rootfs: root, cmd: ["sh", "-c", "id -u; id -g; touch /data/made"] }});
        print(r.stdout); print(r.stderr);
        "#,
        d = dir.display()
    ));
    let mut lines = out.lines().map(str::trim);
    assert_eq!(lines.next(), Some("0"), "{out}");
    assert_eq!(lines.next(), Some("0"), "{out}");
    let meta = std::fs::metadata(dir.join("made")).expect("file made inside");
    assert_eq!(meta.uid(), 100000);
    assert_eq!(meta.gid(), 100000);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn unprivileged_ctrsh_spawns_a_user_mnt_pid_net_container() {
    if !need_root() {
        return;
    }
    let out = Command::new("setpriv")
        .args(["--reuid=nobody", "--regid=nogroup", "--clear-groups"])
        .arg(assert_cmd::cargo::cargo_bin("ctrsh"))
        .arg("-e")
        .arg(
            r#"print(`outside ${read_file("/proc/self/status").split("\n").filter(|l| l.starts_with("Uid:"))[0]}`);
            let r = output(#{ ns: ["user", "mnt", "pid", "net"],
                              cmd: ["sh", "-c", "id -u; cat /proc/self/uid_map; echo $$; cat /proc/net/dev | wc -l"] });
            print(r.stdout); print(r.stderr); exit(r.status);"#,
        )
        .current_dir("/")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("65534"), "ran as nobody: {stdout}");
    let inside: Vec<&str> = stdout.lines().skip(1).map(str::trim).collect();
    assert_eq!(inside[0], "0", "root inside: {stdout}");
    assert!(
        inside[1].starts_with("0") && inside[1].contains("65534"),
        "{stdout}"
    );
    assert_eq!(inside[2], "2", "payload is pid 2 under init: {stdout}");
    assert_eq!(inside[3], "3", "only lo in the new netns: {stdout}");
}

#[test]
fn pid_namespace_init_payload_and_ps() {
    if !need_root() {
        return;
    }
    let out = eval_ok(
        r#"
        let a = output(#{ ns: ["pid", "mnt"], cmd: ["sh", "-c", "echo $$; ps -e -o pid=,comm="] });
        print(a.stdout);
        print("---");
        let b = output(#{ ns: ["pid", "mnt"], init: false, cmd: ["sh", "-c", "echo $$"] });
        print(b.stdout);
        "#,
    );
    let (with_init, without) = out.split_once("---").unwrap();
    let lines: Vec<&str> = with_init
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    assert_eq!(lines[0], "2", "{out}");
    // ps sees only init, the shell and ps itself.
    let procs: Vec<&str> = lines[1..].to_vec();
    assert_eq!(procs.len(), 3, "{procs:?}");
    assert!(procs[0].starts_with("1 "), "{procs:?}");
    assert!(procs[1].starts_with("2 sh"), "{procs:?}");
    assert!(procs[2].ends_with("ps"), "{procs:?}");
    assert_eq!(without.trim(), "1", "{out}");
}

#[test]
fn init_reaps_orphans_so_no_zombies_remain() {
    if !need_root() {
        return;
    }
    // The subshell leaves `sleep 0.2` orphaned; it is re-parented to init, which reaps it.
    let out = eval_ok(
        r#"
        let r = output(#{ ns: ["pid", "mnt"],
            cmd: ["sh", "-c", "for i in 1 2 3; do (sleep 0.2 &); done; sleep 1; ps -e -o stat=,comm="] });
        print(r.stdout);
        "#,
    );
    assert!(!out.contains("sleep"), "orphans still there: {out}");
    assert!(
        !out.lines().any(|l| l.trim_start().starts_with('Z')),
        "zombies: {out}"
    );
}

#[test]
fn exit_statuses_propagate_to_ctrsh() {
    if !need_root() {
        return;
    }
    for (cmd, want) in [("exit 0", 0), ("exit 7", 7), ("kill -9 $$", 137)] {
        let out = eval(&format!(
            r#"exit(run(#{{ ns: ["pid", "mnt"], cmd: ["sh", "-c", "{cmd}"] }}))"#
        ));
        assert_eq!(out.status.code(), Some(want), "{cmd}");
        // Without a pid namespace too.
        let out = eval(&format!(r#"exit(run(#{{ cmd: ["sh", "-c", "{cmd}"] }}))"#));
        assert_eq!(out.status.code(), Some(want), "{cmd} (no pid ns)");
    }
}

/// A death by a real-time signal (32-64, which nix has no `Signal` for) is 128+N wherever a
/// status is read: run, output, fork().wait(), spawn().wait(), with and without mini-init,
/// and the recipe's teardown reaps such a child without an error.
#[test]
fn real_time_signal_deaths_give_128_plus_n() {
    if !need_root() {
        return;
    }
    for sig in [34, 64] {
        let want = 128 + sig;
        let code = format!(
            r#"
            let cmd = ["sh", "-c", "kill -{sig} $$"];
            print(run(#{{ cmd: cmd }}));
            print(run(#{{ ns: ["pid", "mnt"], cmd: cmd }}));
            print(output(#{{ cmd: cmd }}).status);
            print(output(#{{ ns: ["pid", "mnt"], cmd: cmd }}).status);
            print(fork(|| exec(cmd)).wait());
            print(spawn(#{{ cmd: cmd }}).wait(10));
            print(spawn(#{{ ns: ["pid", "mnt"], cmd: cmd }}).wait(10));
            // Left to the teardown, which reaps them.
            spawn(#{{ cmd: cmd }});
            spawn(#{{ ns: ["pid", "mnt"], cmd: cmd }});
            sleep(0.3);
            "#
        );
        let out = eval(&code);
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "signal {sig}: {stdout}\n{stderr}");
        let lines: Vec<&str> = stdout.lines().collect();
        assert_eq!(lines, vec![want.to_string(); 7], "signal {sig}: {stderr}");
        assert!(stderr.is_empty(), "signal {sig}: {stderr}");
        // The status reaches ctrsh's own exit status through mini-init.
        let out = eval(&format!(
            r#"exit(run(#{{ ns: ["pid", "mnt"], cmd: ["sh", "-c", "kill -{sig} $$"] }}))"#
        ));
        assert_eq!(out.status.code(), Some(want), "signal {sig}");
    }
}

/// Once the pid namespace the shell's children go to has lost its init, clone fails with
/// ENOMEM: the error says why, and names namespaces as scripts do (never `CloneFlags(..)`).
#[test]
fn a_pid_namespace_without_init_is_named_in_clone_errors() {
    if !need_root() {
        return;
    }
    let out = eval_ok(
        r#"
        fn show(f) { try { f.call(); print("no error"); } catch (e) { print(`${e.message} | ${e.hint}`); } }
        // in_ns into the pid namespace of a container that has ended.
        let p = spawn(#{ ns: ["pid"], cmd: ["sleep", "0.1"] });
        let dead = p.ns("pid");
        p.wait();
        show(|| in_ns(dead, || run(#{ cmd: ["true"] })));
        // A new pid namespace cannot be made while children go to another one.
        unshare(["pid"]);
        show(|| run(#{ ns: ["pid", "mnt"], cmd: ["true"] }));
        print(run(#{ cmd: ["true"] }));   // the namespace's init, gone at once
        show(|| run(#{ cmd: ["true"] }));
        show(|| run(#{ ns: ["net", "uts"], cmd: ["true"] }));
        show(|| fork(|| 1));
        "#,
    );
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 6, "{out}");
    let dead = "the pid namespace has no init any more (its first process exited): no process can be created in it: ENOMEM";
    for l in [lines[0], lines[3], lines[4], lines[5]] {
        assert!(l.starts_with("clone3: "), "{l}");
        assert!(l.contains(dead), "{l}");
        assert!(
            l.contains("leave the shell's own pid namespace alone"),
            "{l}"
        );
    }
    assert!(
        lines[1].starts_with("clone3: new namespaces pid, mnt: EINVAL"),
        "{}",
        lines[1]
    );
    assert!(
        lines[1].contains("a new pid namespace can only be made from the shell's own"),
        "{}",
        lines[1]
    );
    assert_eq!(lines[2], "0");
    assert!(
        lines[4].starts_with("clone3: new namespaces net, uts: "),
        "{}",
        lines[4]
    );
    assert!(!out.contains("CloneFlags"), "{out}");
}

#[test]
fn sigterm_sent_to_ctrsh_reaches_the_payload() {
    if !need_root() {
        return;
    }
    let mut child = Command::new(assert_cmd::cargo::cargo_bin("ctrsh"))
        .arg("-e")
        .arg(
            r#"exit(run(#{ ns: ["pid", "mnt"],
                cmd: ["sh", "-c", "trap 'echo got TERM; exit 42' TERM; echo ready; while :; do sleep 0.05; done"] }))"#,
        )
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut rd = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    rd.read_line(&mut line).unwrap();
    assert_eq!(line.trim(), "ready");
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut rd, &mut rest).unwrap();
    let st = child.wait().unwrap();
    assert!(rest.contains("got TERM"), "{rest}");
    assert_eq!(st.code(), Some(42));
}

#[test]
fn fork_moves_only_the_child() {
    if !need_root() {
        return;
    }
    let host = nix::unistd::gethostname().unwrap();
    let out = eval_ok(
        r#"
        let p = fork(|| { unshare(["uts"]); sethostname("x"); exec(["hostname"]) });
        print(`status ${p.wait()}`);
        print(`shell ${hostname()}`);
        let q = fork(|| 5);
        print(`int result ${q.wait()}`);
        let e = fork(|| { throw "boom"; });
        print(`error ${e.wait()}`);
        "#,
    );
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "x", "{out}");
    assert_eq!(lines[1], "status 0");
    assert_eq!(lines[2], format!("shell {}", host.to_string_lossy()));
    assert_eq!(lines[3], "int result 5");
    assert_eq!(lines[4], "error 1");

    // A result that is not a status is never a silent success.
    let out = eval(
        r#"
        for f in [|| -1, || 256, || "x", || [1], || (), || 0, || 255] { print(fork(f).wait()); }
        "#,
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert_eq!(stdout, "1\n1\n1\n1\n0\n0\n255\n", "{stderr}");
    for want in [
        "fork(body): the closure returned -1: an exit status is 0..=255",
        "fork(body): the closure returned 256: an exit status is 0..=255",
        "fork(body): the closure returned a string, not an exit status",
        "fork(body): the closure returned an array, not an exit status",
    ] {
        assert!(stderr.contains(want), "{want}: {stderr}");
    }
}

#[test]
fn join_enters_existing_namespaces() {
    if !need_root() {
        return;
    }
    let out = eval_ok(
        r#"
        let lab = netns_new();
        let home = ns().net;
        let r = output(#{ join: #{ net: lab }, cmd: ["readlink", "/proc/self/ns/net"] });
        let got = r.stdout; got.trim();
        print(got == `net:[${lab.inode}]`);
        let box = spawn(#{ ns: ["uts", "pid"], hostname: "joined", cmd: ["sleep", "5"] });
        let r2 = output(#{ join: #{ uts: box, pid: box }, cmd: ["sh", "-c", "hostname; echo $$"] });
        print(r2.stdout);
        print(ns().net == home);
        "#,
    );
    let lines: Vec<&str> = out.lines().filter(|l| !l.is_empty()).collect();
    assert_eq!(lines[0], "true", "{out}");
    assert_eq!(lines[1], "joined", "{out}");
    assert_ne!(
        lines[2], "1",
        "a second process in the pid namespace: {out}"
    );
    assert_eq!(lines[3], "true", "shell back home: {out}");
}

#[test]
fn environment_is_cleared_unless_inherited() {
    let out = eval_ok(
        r#"
        set_env("CTRSH_TEST_VAR", "outer");
        print(output(#{ cmd: ["/usr/bin/env"], env: #{ container: "box", N: 3 } }).stdout);
        print("---");
        print(output(#{ cmd: ["/usr/bin/env"], inherit_env: true, env: #{ container: "box", HOME: () } }).stdout);
        "#,
    );
    let (cleared, inherited) = out.split_once("---").unwrap();
    // () removes a variable, an inherited one too.
    assert!(
        !inherited.lines().any(|l| l.starts_with("HOME=")),
        "{inherited}"
    );
    let mut vars: Vec<&str> = cleared.lines().filter(|l| !l.is_empty()).collect();
    vars.sort();
    assert_eq!(vars, ["N=3", "container=box"]);
    assert!(inherited.contains("CTRSH_TEST_VAR=outer"));
    assert!(inherited.contains("container=box"));
}

#[test]
fn fds_caps_rlimits_no_new_privs_cwd_and_identity() {
    if !need_root() {
        return;
    }
    let out = eval_ok(
        r#"
        let r = output(#{
            cmd: ["sh", "-c", "ls /proc/self/fd | sort -n | tr '\\n' ' '; echo; ulimit -n; id -u; id -g; id -G; pwd; grep -E '^(CapEff|CapBnd|CapAmb|NoNewPrivs)' /proc/self/status"],
            fds: #{ "7": 1 }, rlimits: #{ nofile: 64 }, uid: 1000, gid: 1000, groups: [1000, 27],
            caps: ["net_admin", "CAP_NET_RAW"], no_new_privs: true, cwd: "/tmp" });
        print(r.stdout); print(r.stderr);
        "#,
    );
    let l: Vec<&str> = out.lines().collect();
    // 0 1 2, the target 7, and ls's own directory fd.
    let fds: Vec<&str> = l[0].split_whitespace().collect();
    assert_eq!(fds.len(), 5, "{out}");
    assert!(fds.contains(&"7"), "{out}");
    assert_eq!(l[1], "64");
    assert_eq!(l[2], "1000");
    assert_eq!(l[3], "1000");
    assert_eq!(l[4], "1000 27");
    assert_eq!(l[5], "/tmp");
    let mask = format!("{:016x}", (1u64 << 12) | (1 << 13));
    for set in ["CapEff", "CapBnd", "CapAmb"] {
        assert!(out.contains(&format!("{set}:\t{mask}")), "{set}: {out}");
    }
    assert!(out.contains("NoNewPrivs:\t1"), "{out}");
}

#[test]
fn stdio_null_paths_and_capture() {
    let path = std::env::temp_dir().join(unique("ctrsh-out"));
    let out = eval_ok(&format!(
        r#"
        run(#{{ cmd: ["echo", "to a file"], stdout: "{p}" }});
        run(#{{ cmd: ["cat"], stdin: "{p}", stdout: "{p}.2" }});
        print(read_file("{p}.2"));
        let r = output(#{{ cmd: ["sh", "-c", "echo visible; echo hidden >&2"], stderr: "null", tty: false }});
        print(`[${{r.stdout}}][${{r.stderr}}]`);
        try {{ output(#{{ cmd: ["true"], tty: true }}); }} catch (e) {{ print(e.message); }}
        "#,
        p = path.display()
    ));
    assert!(out.contains("to a file"), "{out}");
    assert!(out.contains("[visible\n][]"), "{out}");
    // tty: false passes through output() (a spec shared with run); a pty is refused.
    assert!(
        out.contains("output(tty): output() collects stdout and stderr"),
        "{out}"
    );
    let _ = std::fs::remove_file(&path);
    let _ = std::fs::remove_file(format!("{}.2", path.display()));
}

#[test]
fn setup_runs_before_exec_and_its_error_leaves_nothing() {
    if !need_root() {
        return;
    }
    let f = std::env::temp_dir().join(unique("ctrsh-setup"));
    let out = eval_ok(&format!(
        r#"
        let r = output(#{{ ns: ["net"], cmd: ["cat", "{f}"],
                          setup: |p| write_file("{f}", `net:[${{p.ns("net").inode}}] pid ${{p.pid}}`) }});
        print(r.stdout);
        "#,
        f = f.display()
    ));
    assert!(out.starts_with("net:["), "{out}");
    let _ = std::fs::remove_file(&f);
    let err = eval_err(
        r#"spawn(#{ ns: ["net"], cmd: ["sleep", "100"], setup: |p| { throw "setup failed"; } })"#,
    );
    assert!(err.contains("setup failed"), "{err}");
    // The child was killed before exec: nothing of it is left (checked precisely, with the
    // shell's children, in bad_specs_are_clear_and_leave_no_child).
}

#[test]
fn children_are_killed_when_the_recipe_ends_unless_detached() {
    let marker = unique("ctrsh-ends");
    let out = eval_ok(&format!(
        r#"
        let a = spawn(#{{ cmd: ["sh", "-c", "sleep 100; : {marker}-a"] }});
        let b = spawn(#{{ cmd: ["sh", "-c", "sleep 100; : {marker}-b"], detach: true,
                         stdout: "null", stderr: "null" }});
        print(b.pid);
        "#
    ));
    let bpid: i32 = out.trim().parse().unwrap();
    std::thread::sleep(Duration::from_millis(200));
    let running = |name: &str| {
        Command::new("pgrep")
            .args(["-f", name])
            .output()
            .map(|o| !o.stdout.is_empty())
            .unwrap_or(false)
    };
    assert!(
        !running(&format!("{marker}-a")),
        "owned child still running"
    );
    assert!(running(&format!("{marker}-b")), "detached child was killed");
    nix::sys::signal::kill(
        // A detached child leads a session and process group of its own: end all of it.
        nix::unistd::Pid::from_raw(-bpid),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
}

/// The pids of processes whose parent is `pid`.
fn children_of(pid: i32) -> Vec<i32> {
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(p) = e.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        if let Ok(st) = std::fs::read_to_string(format!("/proc/{p}/status")) {
            if st.lines().any(|l| l == format!("PPid:\t{pid}")) {
                out.push(p);
            }
        }
    }
    out
}

#[test]
fn bad_specs_are_clear_and_leave_no_child() {
    let cases: &[(&str, &str)] = &[
        (
            r#"#{ cmd: ["true"], ns: ["nett"] }"#,
            "unknown namespace kind \"nett\"",
        ),
        (
            r#"#{ cmd: ["true"], ns: ["user"], uid_map: "0 100000" }"#,
            "inside outside count",
        ),
        (
            r#"#{ cmd: ["true"], ns: ["user"], uid_map: "0 100000 65536" }"#,
            "spawn(gid_map): uid_map is given but gid_map is not",
        ),
        (
            r#"#{ cmd: ["true"], ns: ["user"], gid_map: "0 100000 65536" }"#,
            "spawn(uid_map): gid_map is given but uid_map is not",
        ),
        (
            r#"#{ cmd: ["true"], setgroups: "deny" }"#,
            "spawn(setgroups): setgroups is for a new user namespace",
        ),
        (
            r#"#{ cmd: ["true"], uid: 1000 }"#,
            "spawn(gid): uid is given but gid is not",
        ),
        (
            r#"#{ cmd: ["true"], env: #{ E: #{ x: 1 } } }"#,
            "spawn(env): the value of E is a map",
        ),
        (
            r#"#{ cmd: ["true"], ns: ["uts"], hostname: "a\x00b" }"#,
            "spawn(hostname): a host name cannot contain a NUL byte",
        ),
        (
            r#"#{ cmd: ["true"], ns: ["user"], uid_map: "0 100000 10\n5 200000 10", gid_map: "0 100000 10" }"#,
            "overlap inside",
        ),
        (
            r#"#{ cmd: ["true"], ns: ["user"], uid_map: "0 100000 10", gid_map: [[0, 100000, 10], [10, 100005, 10]] }"#,
            "overlap outside",
        ),
        (
            r#"#{ cmd: ["true"], uid_map: "0 100000 1" }"#,
            "add \"user\" to ns",
        ),
        (r#"#{ cmd: ["/no/such/program"] }"#, "/no/such/program"),
        (
            r#"#{ cmd: ["no-such-program-xyz"] }"#,
            "no-such-program-xyz",
        ),
        (r#"#{ cmd: [] }"#, "cmd is empty"),
        (
            r#"#{ cmd: "ls -l" }"#,
            "spawn(cmd): \"ls -l\" is one string, taken as the program's name",
        ),
        (
            r#""ls -l""#,
            "spawn(spec): expected a map like #{ cmd: [\"ls\", \"-l\"] }, got a string",
        ),
        (
            r#"["ls", "-l"]"#,
            "spawn(spec): expected a map like #{ cmd: [\"ls\", \"-l\"] }, got an array",
        ),
        (r#"#{ ns: ["net"] }"#, "needs cmd"),
        (
            r#"#{ cmd: ["true"], hostnmae: "x" }"#,
            "did you mean hostname",
        ),
        (
            r#"#{ cmd: ["true"], hostname: "x" }"#,
            "needs a uts namespace",
        ),
        (
            r#"#{ cmd: ["true"], rootfs: "/tmp" }"#,
            "needs a mount namespace",
        ),
        (
            r#"#{ cmd: ["true"], caps: ["net_admn"] }"#,
            "unknown capability",
        ),
        (
            r#"#{ cmd: ["true"], rlimits: #{ nofiles: 3 } }"#,
            "spawn(rlimits): unknown resource limit \"nofiles\"",
        ),
        (
            r#"#{ cmd: ["true"], ns: ["net"], join: #{ net: 1 } }"#,
            "both created",
        ),
        (
            r#"#{ cmd: ["true"], stdout: "/no/such/dir/out" }"#,
            "/no/such/dir/out",
        ),
        (r#"#{ cmd: ["true"], cwd: "/no/such/dir" }"#, "/no/such/dir"),
        (r#"#{ cmd: "true", env: 3 }"#, "env"),
        (
            r#"#{ cmd: ["true"], fds: #{ "x": 1 } }"#,
            "not a descriptor number",
        ),
        (
            r#"#{ cmd: ["true"], stdout: -1 }"#,
            "spawn(stdout): -1 is not a descriptor number",
        ),
        (
            r#"#{ cmd: ["true"], stdin: -5 }"#,
            "spawn(stdin): -5 is not a descriptor number",
        ),
        (
            r#"#{ cmd: ["true"], fds: #{ "3": -1 } }"#,
            "spawn(fds): fd 3: -1 is not a descriptor number",
        ),
        (
            r#"#{ cmd: ["true"], fds: #{ "3": 999 } }"#,
            "spawn(fds): fd 3: the shell has no open fd 999",
        ),
        (
            r#"#{ cmd: ["true"], time_offsets: #{ boottime: 5 } }"#,
            "add \"time\" to ns",
        ),
    ];
    let mut script = String::new();
    for (spec, _) in cases {
        script.push_str(&format!(
            "try {{ spawn({spec}); print(\"no error\"); }} catch (e) {{ let m = e.message; m.replace(\"\\n\", \" \"); print(m); }}\n"
        ));
    }
    script.push_str("print(`pid ${pid()}`); sleep(1.5);\n");
    let mut child = Command::new(assert_cmd::cargo::cargo_bin("ctrsh"))
        .arg("-e")
        .arg(&script)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let rd = BufReader::new(child.stdout.take().unwrap());
    let mut lines = Vec::new();
    let mut pid = 0;
    for l in rd.lines() {
        let l = l.unwrap();
        if let Some(p) = l.strip_prefix("pid ") {
            pid = p.parse().unwrap();
            break;
        }
        lines.push(l);
    }
    assert!(pid > 0);
    let start = Instant::now();
    let kids = children_of(pid);
    assert!(start.elapsed() < Duration::from_secs(1));
    assert!(kids.is_empty(), "children left: {kids:?}");
    child.wait().unwrap();
    assert_eq!(lines.len(), cases.len(), "{lines:#?}");
    for ((spec, want), got) in cases.iter().zip(&lines) {
        assert!(
            got.contains(want),
            "spawn({spec}): expected {want:?} in {got:?}"
        );
    }
}

#[test]
fn exec_replaces_the_shell_and_pidfd_open_and_getfd_work() {
    let out = ctrsh()
        .arg("-e")
        .arg(r#"let me = pidfd_open(pid()); print(me.alive); exec(["echo", "replaced"]); print("not reached");"#)
        .output()
        .unwrap();
    let s = String::from_utf8_lossy(&out.stdout);
    assert_eq!(s, "true\nreplaced\n");
    let out = eval_ok(
        r#"
        let p = spawn(#{ cmd: ["sleep", "5"], stdout: "null" });
        let fd = p.getfd(1);
        print(read_link(`/proc/self/fd/${fd.fd}`));
        p.signal("TERM");
        print(p.wait());
        print(p.alive);
        print(p.status);
        let q = spawn(#{ cmd: ["sleep", "5"] });
        print(q.wait(0.1));
        q.kill();
        print(q.wait());
        "#,
    );
    assert_eq!(out, "/dev/null\n143\nfalse\n143\n\n137\n");
    let err = eval_err(r#"pidfd_open(999999999)"#);
    assert!(
        err.contains("ESRCH") || err.contains("out of range") || err.contains("no such process"),
        "{err}"
    );
}

/// Waiting for the shell itself is refused at once (it used to forward every signal to
/// itself, spinning and deaf to TERM). A process that is not the shell's child is waited for
/// until it ends (status unknown: ()), and a TERM to ctrsh meanwhile stops ctrsh without
/// being passed on to a process it does not own.
#[test]
fn waiting_for_the_shell_itself_is_refused_and_a_non_child_is_not_signalled() {
    let out = ctrsh()
        .timeout(Duration::from_secs(10))
        .arg("-e")
        .arg(
            r#"try { pidfd_open(pid()).wait(1); } catch (e) { print(e.kind); }
               pidfd_open(pid()).wait()"#,
        )
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stdout}\n{stderr}");
    assert_eq!(stdout, "invalid_argument\n");
    assert!(
        stderr.contains("is the shell itself, which cannot wait for its own end"),
        "{stderr}"
    );

    let mut other = Command::new("sleep").arg("0.5").spawn().unwrap();
    let out = eval_ok(&format!(
        r#"let p = pidfd_open({}); print(p.wait(0.05)); print(p.alive); print(p.wait()); print(p.alive);"#,
        other.id()
    ));
    assert_eq!(out, "\ntrue\n\nfalse\n");
    other.wait().unwrap();

    let mut other = Command::new("sleep").arg("30").spawn().unwrap();
    let mut shell = Command::new(assert_cmd::cargo::cargo_bin("ctrsh"))
        .arg("-e")
        .arg(format!(
            r#"let p = pidfd_open({}); print("ready"); p.wait(); print("ended");"#,
            other.id()
        ))
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut rd = BufReader::new(shell.stdout.take().unwrap());
    let mut line = String::new();
    rd.read_line(&mut line).unwrap();
    assert_eq!(line.trim(), "ready");
    std::thread::sleep(Duration::from_millis(100));
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(shell.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    let st = shell.wait().unwrap();
    let still = other.try_wait().unwrap().is_none();
    let _ = other.kill();
    let _ = other.wait();
    assert_eq!(st.code(), Some(143));
    assert!(
        still,
        "the TERM was passed on to a process ctrsh does not own"
    );
}

#[test]
fn children_are_killed_after_an_error_and_after_sigint() {
    let marker = unique("ctrsh-err");
    let running = |name: &str| {
        Command::new("pgrep")
            .args(["-f", &format!("^sh -c sleep 100; : {name}")])
            .output()
            .map(|o| !o.stdout.is_empty())
            .unwrap_or(false)
    };
    let err = eval_err(&format!(
        r#"spawn(#{{ cmd: ["sh", "-c", "sleep 100; : {marker}-e"], stdout: "null" }}); throw "recipe failed";"#
    ));
    assert!(err.contains("recipe failed"), "{err}");
    assert!(!running(&format!("{marker}-e")), "child survived an error");

    let mut child = Command::new(assert_cmd::cargo::cargo_bin("ctrsh"))
        .arg("-e")
        .arg(format!(
            r#"spawn(#{{ cmd: ["sh", "-c", "sleep 100; : {marker}-i"], stdout: "null" }}); print("ready"); sleep(30);"#
        ))
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut rd = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    rd.read_line(&mut line).unwrap();
    assert_eq!(line.trim(), "ready");
    assert!(running(&format!("{marker}-i")));
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGINT,
    )
    .unwrap();
    let st = child.wait().unwrap();
    assert_eq!(st.code(), Some(130));
    assert!(!running(&format!("{marker}-i")), "child survived SIGINT");
}

/// A capability the shell does not hold cannot be kept: the error names it and says why.
#[test]
fn keeping_a_capability_the_shell_lacks_names_it() {
    // Only where the bounding set lacks one (CAP_SYS_RESOURCE on these machines).
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let bnd = status
        .lines()
        .find_map(|l| l.strip_prefix("CapBnd:"))
        .map(|h| u64::from_str_radix(h.trim(), 16).unwrap())
        .unwrap();
    if bnd & (1 << 24) != 0 {
        eprintln!("skipped: CAP_SYS_RESOURCE is in the bounding set here");
        return;
    }
    let err = eval_err(r#"run(#{ cmd: ["true"], caps: ["sys_resource"] })"#);
    assert!(
        err.contains("capset(caps): [\"sys_resource\"] not held"),
        "{err}"
    );
    // In a new user namespace every capability is there to keep.
    assert_eq!(
        eval_ok(r#"print(run(#{ ns: ["user"], cmd: ["true"], caps: ["sys_resource"] }))"#).trim(),
        "0"
    );
}

/// A namespace of a process that has exited, and an empty namespace path, are said so.
#[test]
fn namespace_handles_of_gone_processes_and_empty_paths_are_named() {
    let err = eval_err(r#"let p = spawn(#{ cmd: ["true"] }); p.wait(); p.ns("net")"#);
    assert!(
        err.contains("ns(pid ") && err.contains(": it has exited"),
        "{err}"
    );
    let err = eval_err(r#"ns_open("", "net")"#);
    assert!(err.contains("ns_open(path): an empty path"), "{err}");
}

/// exec() takes a command line given as one string as spawn does: refused, with the array
/// form; a missing program's hint does not speak of a container.
#[test]
fn exec_refuses_one_string_and_names_a_missing_program() {
    let err = eval_err(r#"exec("ls -l")"#);
    assert!(
        err.contains("exec(argv): \"ls -l\" is one string, taken as the program's name"),
        "{err}"
    );
    let err = eval_err(r#"exec(["/nonexistent/ctrsh-x"])"#);
    assert!(
        err.contains("/nonexistent/ctrsh-x") && !err.contains("container"),
        "{err}"
    );
}

/// The processes still running under `prefix` after up to 2 s; each is killed (by pid), so
/// a failing test leaves nothing behind.
fn left_over(prefix: &str) -> Vec<i32> {
    let end = Instant::now() + Duration::from_secs(2);
    let mut left = pids_of(prefix);
    while !left.is_empty() && Instant::now() < end {
        std::thread::sleep(Duration::from_millis(50));
        left = pids_of(prefix);
    }
    for &p in &left {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(p),
            nix::sys::signal::Signal::SIGKILL,
        );
    }
    left
}

/// Start `ctrsh -e CODE`, wait for its "ready" line, and SIGKILL it.
fn kill_ctrsh_when_ready(code: &str) {
    let mut child = Command::new(assert_cmd::cargo::cargo_bin("ctrsh"))
        .arg("-e")
        .arg(code)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut rd = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    rd.read_line(&mut line).unwrap();
    assert_eq!(line.trim(), "ready", "{code}");
    child.kill().unwrap();
    child.wait().unwrap();
}

#[test]
fn a_killed_shell_takes_the_payload_of_an_init_without_a_pid_namespace_along() {
    // fork clears the parent-death signal: the payload mini-init starts sets its own (it
    // dies with init, and init with the shell).
    let m = unique("ctrsh-pd");
    kill_ctrsh_when_ready(&format!(
        r#"spawn(#{{ init: true, cmd: ["bash", "-c", "exec -a {m} sleep 100"] }});
           sleep(0.3); print("ready"); sleep(30);"#
    ));
    assert_eq!(
        left_over(&m),
        Vec::<i32>::new(),
        "the payload outlived ctrsh"
    );
}

#[test]
fn orphans_of_a_container_without_a_pid_namespace_end_with_the_recipe() {
    // `(cmd &)` leaves an orphan, re-parented away from the payload's tree: it stays in the
    // container's process group (no init), or is re-parented to init, a subreaper.
    for spec in ["", "init: true,"] {
        let m = unique("ctrsh-or");
        eval_ok(&format!(
            r#"spawn(#{{ {spec} cmd: ["bash", "-c",
                   "(exec -a {m}-orphan sleep 100 &); exec -a {m}-child sleep 100 & wait"],
                   stdout: "null", stderr: "null" }});
               sleep(0.3);"#
        ));
        assert_eq!(left_over(&m), Vec::<i32>::new(), "{spec:?}");
    }
}

#[test]
fn init_without_a_pid_namespace_holds_the_whole_tree() {
    // As a subreaper it gets even an orphan that left the group and session (setsid), and
    // ends it all when the payload exits, and when the shell is killed.
    let m = unique("ctrsh-tr");
    let tree = format!(
        "(exec -a {m}-orphan sleep 100 &); setsid -f bash -c 'exec -a {m}-daemon sleep 100'; \
         exec -a {m}-child sleep 100 &"
    );
    let out = eval_ok(&format!(
        r#"print(run(#{{ init: true, cmd: ["bash", "-c", "{tree} sleep 0.3; exit 3"],
                         stdout: "null", stderr: "null" }}));"#
    ));
    assert_eq!(out.trim(), "3");
    assert_eq!(left_over(&m), Vec::<i32>::new(), "after the payload exited");
    kill_ctrsh_when_ready(&format!(
        r#"spawn(#{{ init: true, cmd: ["bash", "-c", "{tree} wait"], stdout: "null" }});
           sleep(0.3); print("ready"); sleep(30);"#
    ));
    assert_eq!(left_over(&m), Vec::<i32>::new(), "after ctrsh was killed");
}
