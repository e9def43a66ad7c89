//! Attach (cntr without FUSE) on the real kernel: to a ctrsh container, to bubblewrap's and
//! unshare's, the identity taken from the target, `ctrsh exec`, and bad targets. The
//! kernel's view (/proc/PID/ns/*, /proc/self/status, mountinfo) is the oracle.
mod common;
use common::*;

use std::process::{Command, Stdio};
use std::time::Duration;

const KINDS: [&str; 8] = ["user", "mnt", "pid", "net", "uts", "ipc", "cgroup", "time"];

/// A root with only a few programs (no python3): sleep, cat, sh, ls, id; the host's
/// libraries; the container's own /etc files.
fn small_root(tag: &str) -> String {
    format!(
        r#"rootfs(#{{ entries: [
            ro_bind("/usr/lib"), ro_bind("/usr/lib64"),
            symlink("usr/lib", "/lib"), symlink("usr/lib64", "/lib64"), symlink("usr/bin", "/bin"),
            ro_bind("/usr/bin/sleep"), ro_bind("/usr/bin/cat"), ro_bind("/usr/bin/sh"),
            ro_bind("/usr/bin/ls"), ro_bind("/usr/bin/id"),
            file("/etc/hostname", "inside-{tag}\n", 0o644),
            file("/etc/passwd", "root:x:0:0:box root {tag}:/root:/bin/sh\nboxuser:x:1000:1000::/home:/bin/sh\n", 0o644),
            file("/etc/group", "root:x:0:\nboxgroup:x:1000:\n", 0o644),
            file("/etc/hosts", "127.0.0.1 localhost box-{tag}\n", 0o644),
        ], dev: true, proc: true, devpts: true, tmp: true }})"#
    )
}

/// Start a named, detached container in `rd` and return the pid of its payload (the
/// process attach represents it by).
fn start_box(rd: &RunDir, name: &str, extra: &str) -> i32 {
    let out = rd.eval_ok(&format!(
        r#"let p = spawn(#{{ name: "{name}", detach: true,
              ns: ["user", "mnt", "pid", "net", "uts", "ipc", "cgroup", "time"],
              uid_map: "0 100000 65536", gid_map: "0 100000 65536",
              hostname: "box-{name}", rootfs: {root}, env: #{{ BOXVAR: "from-{name}" }},
              cmd: ["sleep", "300"], stdout: "null", stderr: "null" {extra} }});
           print(p.pid);"#,
        root = small_root(name)
    ));
    let init: i32 = out.trim().parse().unwrap();
    // The payload is init's child; give it a moment to exist.
    for _ in 0..100 {
        if let Some(p) = child_of(init) {
            return p;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("no payload under init {init}");
}

fn child_of(pid: i32) -> Option<i32> {
    std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children"))
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

fn ns_of(pid: i32, kind: &str) -> String {
    std::fs::read_link(format!("/proc/{pid}/ns/{kind}"))
        .unwrap()
        .display()
        .to_string()
}

#[test]
fn attach_to_a_ctrsh_container_sees_its_namespaces_files_and_identity() {
    if !is_root() {
        eprintln!("skipped: needs root");
        return;
    }
    let rd = RunDir::new();
    let name = unique("att");
    let payload = start_box(&rd, &name, "");
    let mounts_before = my_mounts();
    let script = format!(
        r#"hostname
for k in {kinds}; do echo "ns $k $(readlink /proc/self/ns/$k)"; done
echo "id $(id -u) $(id -g)"
echo "env $BOXVAR"
python3 -c 'print("host python", 6 * 7)'
test -e /var/lib/ctrsh/attach/usr/bin/python3 && echo "python3 in the container" || echo "no python3 in the container"
echo "file $(cat /var/lib/ctrsh/attach/etc/hostname)"
grep "^root:" /etc/passwd
echo "exec $({ctrsh} exec cat /etc/hostname)"
echo "exec-ls $({ctrsh} exec ls /)"
echo "pwd $(pwd)"
ps -e -o comm= | sort | tr '\n' ' '; echo
"#,
        kinds = KINDS.join(" "),
        ctrsh = ctrsh_bin()
    );
    let out = rd
        .ctrsh()
        .args(["attach", &name, "--", "sh", "-c", &script])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "{stdout}\n{stderr}");
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines[0], format!("box-{name}"), "{stdout}");
    for k in KINDS {
        let line = lines
            .iter()
            .find(|l| l.starts_with(&format!("ns {k} ")))
            .unwrap();
        let inside = line.rsplit(' ').next().unwrap();
        if k == "mnt" {
            // By design: a private mount namespace, neither the container's nor the host's.
            assert_ne!(inside, ns_of(payload, k), "{stdout}");
            assert_ne!(inside, ns_of(std::process::id() as i32, k));
        } else {
            assert_eq!(inside, ns_of(payload, k), "{k}: {stdout}");
        }
    }
    assert!(stdout.contains("id 0 0"), "{stdout}");
    assert!(stdout.contains(&format!("env from-{name}")), "{stdout}");
    assert!(stdout.contains("host python 42"), "{stdout}\n{stderr}");
    assert!(stdout.contains("no python3 in the container"), "{stdout}");
    assert!(stdout.contains(&format!("file inside-{name}")), "{stdout}");
    assert!(
        stdout.contains(&format!("box root {name}")),
        "passwd: {stdout}"
    );
    assert!(
        stdout.contains(&format!("exec inside-{name}")),
        "{stdout}\n{stderr}"
    );
    assert!(stdout.contains("exec-ls bin"), "{stdout}");
    assert!(stdout.contains("pwd /var/lib/ctrsh/attach"), "{stdout}");
    // /proc is the container's: only its processes.
    let ps = lines.last().unwrap();
    assert!(ps.contains("sleep") && !ps.contains("cargo"), "{ps}");
    // Nothing of the attach is visible in the host's mount namespace.
    assert_eq!(my_mounts(), mounts_before);
    assert!(!my_mounts().iter().any(|m| m.starts_with("/var/lib/ctrsh")));
}

#[test]
fn attach_takes_uid_caps_and_no_new_privs_and_honours_tools_at() {
    if !is_root() {
        eprintln!("skipped: needs root");
        return;
    }
    let rd = RunDir::new();
    let name = unique("idt");
    start_box(
        &rd,
        &name,
        r#", uid: 1000, gid: 1000, groups: [1000], caps: ["net_raw"], no_new_privs: true"#,
    );
    let at = format!("/tmp/{}", unique("ctrsh-at"));
    let out = rd.eval_ok(&format!(
        r#"let r = attach("{name}", #{{ tools_at: "{at}", stdout: "{at}.out",
               cmd: ["sh", "-c", "id -u; id -g; id -G; grep -E '^(CapEff|CapPrm|CapBnd|CapAmb|NoNewPrivs)' /proc/self/status; cat {at}/etc/group | tail -1"] }});
           print(r.wait());
           print(read_file("{at}.out"));"#
    ));
    let _ = std::fs::remove_file(format!("{at}.out"));
    let _ = std::fs::remove_dir(&at);
    let l: Vec<&str> = out.lines().collect();
    assert_eq!(l[0], "0", "{out}");
    assert_eq!(&l[1..4], ["1000", "1000", "1000"], "{out}");
    let raw = format!("{:016x}", 1u64 << 13);
    for set in ["CapEff", "CapPrm", "CapBnd", "CapAmb"] {
        assert!(out.contains(&format!("{set}:\t{raw}")), "{set}: {out}");
    }
    assert!(out.contains("NoNewPrivs:\t1"), "{out}");
    assert!(out.contains("boxgroup:x:1000:"), "{out}");
    // Without CAP_SYS_CHROOT the attached identity cannot `ctrsh exec`: a clear refusal.
    let out = rd
        .ctrsh()
        .args(["attach", &name, &ctrsh_bin(), "exec", "true"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("chroot") && err.contains("CAP_SYS_CHROOT"),
        "{err}"
    );
}

/// Wait for a process whose command line is exactly `cmdline` (a child of `parent`'s tree).
fn find_cmdline(cmdline: &str) -> i32 {
    for _ in 0..200 {
        let out = Command::new("pgrep")
            .args(["-n", "-x", "-f", cmdline])
            .output()
            .unwrap();
        if let Ok(p) = String::from_utf8_lossy(&out.stdout).trim().parse() {
            return p;
        }
        std::thread::sleep(Duration::from_millis(25));
    }
    panic!("{cmdline} did not start");
}

#[test]
fn attach_to_bubblewrap_and_unshare_containers_by_pid() {
    if !is_root() {
        eprintln!("skipped: needs root");
        return;
    }
    let tag = unique("fr");
    let sleep_bw = format!("sleep 301.{}", std::process::id());
    let mut bw = Command::new("bwrap")
        .args([
            "--unshare-all",
            "--hostname",
            &format!("bw-{tag}"),
            "--ro-bind",
            "/usr",
            "/usr",
            "--symlink",
            "usr/bin",
            "/bin",
            "--symlink",
            "usr/lib",
            "/lib",
            "--symlink",
            "usr/lib64",
            "/lib64",
            "--proc",
            "/proc",
            "--dev",
            "/dev",
            "--setenv",
            "BWVAR",
            &tag,
            "sh",
            "-c",
            &sleep_bw,
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("bwrap");
    let sleep_us = format!("sleep 302.{}", std::process::id());
    let mut us = Command::new("unshare")
        .args(["--fork", "--pid", "--mount-proc", "--uts", "sh", "-c"])
        .arg(format!("hostname us-{tag}; exec {sleep_us}"))
        .stderr(Stdio::null())
        .spawn()
        .expect("unshare");
    let bw_pid = find_cmdline(&sleep_bw);
    let us_pid = find_cmdline(&sleep_us);

    let run = |pid: i32, script: &str| {
        let out = ctrsh()
            .args(["attach", &pid.to_string(), "sh", "-c", script])
            .output()
            .unwrap();
        let s = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(
            out.status.success(),
            "attach {pid}: {s}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        s
    };
    let script = "hostname; echo \"var $BWVAR\"; for k in user pid net uts ipc; do readlink /proc/self/ns/$k; done; ps -e -o pid=,comm= | head -1";
    let out = run(bw_pid, script);
    assert!(out.starts_with(&format!("bw-{tag}\n")), "{out}");
    assert!(out.contains(&format!("var {tag}")), "{out}");
    for k in ["user", "pid", "net", "uts", "ipc"] {
        assert!(out.contains(&ns_of(bw_pid, k)), "bwrap {k}: {out}");
    }
    let out = run(us_pid, script);
    assert!(out.starts_with(&format!("us-{tag}\n")), "{out}");
    assert!(out.contains(&ns_of(us_pid, "pid")), "{out}");
    assert!(
        out.trim_end().ends_with("1 sleep"),
        "pid 1 of unshare's namespace: {out}"
    );

    let _ = bw.kill();
    let _ = us.kill();
    let _ = bw.wait();
    let _ = us.wait();
    for p in [bw_pid, us_pid] {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(p),
            nix::sys::signal::Signal::SIGKILL,
        );
    }
}

#[test]
fn bad_targets_are_clear_and_leave_nothing_behind() {
    let rd = RunDir::new();
    let dead = {
        let mut c = Command::new("true").spawn().unwrap();
        let pid = c.id();
        c.wait().unwrap();
        pid
    };
    let mounts_before = my_mounts();
    let cases: Vec<(Vec<String>, &str)> = vec![
        (vec![dead.to_string()], "no such process"),
        (vec!["999999999".into()], "no such process"),
        (vec!["2".into()], "kernel thread"),
        (
            vec!["no-such-box-xyz".into()],
            "no process or container \"no-such-box-xyz\"",
        ),
        (vec!["no-such-box-xyz".into()], "docker"),
        (vec!["../etc".into()], "not a valid container name"),
        (vec!["0".into()], "not a process id"),
        (
            vec![
                std::process::id().to_string(),
                "--tools-at".into(),
                "/".into(),
            ],
            "cannot be attached at /",
        ),
    ];
    for (args, want) in cases {
        let mut full = vec!["attach".to_string()];
        // Options before the target.
        if args.len() > 1 {
            full.extend(args[1..].iter().cloned());
        }
        full.push(args[0].clone());
        full.push("true".into());
        let out = rd.ctrsh().args(&full).output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{full:?} succeeded");
        assert!(err.contains(want), "{full:?}: expected {want:?} in {err}");
        assert!(!err.contains("panicked"), "{err}");
    }
    // A target that looks like an option is never handed to docker & co. as one.
    let out = rd
        .ctrsh()
        .args(["attach", "--", "-1", "true"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("\"-1\" is neither a process id nor a container name")
            && !err.contains("docker"),
        "{err}"
    );
    // The script function says the same, catchably.
    let out = rd.eval_ok(
        r#"try { attach(2, #{ cmd: ["true"] }); } catch (e) { print(e.message); }
           try { attach("no-such-box-xyz"); } catch (e) { print(e.message); }
           try { attach(pid(), #{ mode: "sideways" }); } catch (e) { print(e.message); }"#,
    );
    assert!(out.contains("kernel thread"), "{out}");
    assert!(out.contains("no-such-box-xyz"), "{out}");
    assert!(out.contains("\"sideways\""), "{out}");
    assert_eq!(my_mounts(), mounts_before);
    assert!(rd.names().is_empty(), "{:?}", rd.names());
    // `ctrsh exec` outside an attached shell.
    let out = ctrsh()
        .env_remove("CTRSH_ATTACH_ROOT")
        .args(["exec", "true"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not inside an attached shell"));
}

#[test]
fn attach_status_and_missing_programs() {
    if !is_root() {
        eprintln!("skipped: needs root");
        return;
    }
    let rd = RunDir::new();
    let name = unique("st");
    start_box(&rd, &name, "");
    let out = rd
        .ctrsh()
        .args(["attach", &name, "sh", "-c", "exit 9"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(9));
    let out = rd
        .ctrsh()
        .args(["attach", &name, "no-such-program-xyz"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(127));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no-such-program-xyz"));
    // `--enter`: the container's own view; its python3 is missing.
    let out = rd
        .ctrsh()
        .args([
            "attach",
            "--enter",
            &name,
            "sh",
            "-c",
            "cat /etc/hostname; ls /usr/bin",
        ])
        .output()
        .unwrap();
    let s = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{s}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(s.starts_with(&format!("inside-{name}")), "{s}");
    assert!(!s.contains("python3"), "{s}");
}
