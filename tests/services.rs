//! ctrtool's services: debug_shell (+ `ctrsh connect`) and syslogd, on the real kernel.
mod common;
use common::*;

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// A recipe running in the background until its stdin closes; waits for its "ready" line.
struct Recipe {
    child: Child,
    /// Kept open: the recipe may print more.
    _out: BufReader<std::process::ChildStdout>,
    pub lines: Vec<String>,
}

impl Recipe {
    fn start(code: &str, envs: &[(&str, &str)]) -> Recipe {
        let mut c = Command::new(ctrsh_bin());
        c.arg("-e")
            .arg(code)
            .env_remove("CTRSH_PATH")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped());
        for (k, v) in envs {
            c.env(k, v);
        }
        let mut child = c.spawn().unwrap();
        let mut rd = BufReader::new(child.stdout.take().unwrap());
        let mut lines = Vec::new();
        loop {
            let mut l = String::new();
            if rd.read_line(&mut l).unwrap() == 0 {
                panic!("recipe ended before ready: {lines:?}");
            }
            if l.trim() == "ready" {
                break;
            }
            lines.push(l.trim().to_string());
        }
        Recipe {
            child,
            _out: rd,
            lines,
        }
    }

    /// End the recipe as a user would (SIGTERM) and wait until it has cleaned up.
    fn end(mut self) {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(self.child.id() as i32),
            nix::sys::signal::Signal::SIGTERM,
        );
        let _ = self.child.wait();
    }
}

impl Drop for Recipe {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn connect(sock: &str, input: &str, uid: Option<u32>) -> (String, String, Option<i32>) {
    let mut c = if let Some(u) = uid {
        let mut c = Command::new("setpriv");
        c.args([
            &format!("--reuid={u}"),
            &format!("--regid={u}"),
            "--clear-groups",
            &ctrsh_bin(),
        ]);
        c
    } else {
        Command::new(ctrsh_bin())
    };
    let mut child = c
        .args(["connect", sock])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
        out.status.code(),
    )
}

#[test]
fn debug_shell_serves_shells_in_the_target_and_checks_the_peer() {
    if !is_root() {
        eprintln!("skipped: needs root");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(
        dir.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    let sock = dir.path().join("dbg.sock").display().to_string();
    let host = unique("dbg");
    let r = Recipe::start(
        &format!(
            r#"let box = spawn(#{{ ns: ["pid", "mnt", "uts", "ipc"], hostname: "{host}", cmd: ["sleep", "300"] }});
               let d = debug_shell(#{{ socket: "{sock}", target: box, allow_uid: [4242] }});
               debug_shell(#{{ socket: "{sock}-bash", target: box, cmd: ["bash", "--norc", "--noprofile", "-i"] }});
               print(`box ${{box.pid}}`); print(`server ${{d.pid}}`); print("ready");
               box.wait();"#
        ),
        &[],
    );
    let server: i32 = r.lines[1].trim_start_matches("server ").parse().unwrap();
    let (out, err, code) = connect(
        &sock,
        "hostname; readlink /proc/self/ns/uts; tty; exit 7\n",
        None,
    );
    assert_eq!(code, Some(7), "{out}\n{err}");
    assert!(out.contains(&host), "{out}");
    let boxpid: i32 = r.lines[0].trim_start_matches("box ").parse().unwrap();
    let uts = std::fs::read_link(format!("/proc/{boxpid}/ns/uts")).unwrap();
    assert!(out.contains(&uts.display().to_string()), "{out}");
    assert!(out.contains("/dev/pts/"), "a pty of its own: {out}");

    // Input that is over before the shell has started: the shell still gets its end of
    // file and exits (it used to flush the early EOF and wait forever).
    for sock in [sock.clone(), format!("{sock}-bash"), format!("{sock}-bash")] {
        let out = Command::new("timeout")
            .args(["-s", "KILL", "20", &ctrsh_bin(), "connect", &sock])
            .stdin(Stdio::null())
            .output()
            .unwrap();
        assert_eq!(
            out.status.code(),
            Some(0),
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    // Two at once: the first waits while the second comes and goes.
    let mut first = Command::new(ctrsh_bin())
        .args(["connect", &sock])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut fin = first.stdin.take().unwrap();
    fin.write_all(b"echo first-$((6*7))\n").unwrap();
    let (out2, _, code2) = connect(&sock, "echo second; exit 3\n", None);
    assert_eq!(code2, Some(3), "{out2}");
    fin.write_all(b"exit 4\n").unwrap();
    drop(fin);
    let o1 = first.wait_with_output().unwrap();
    assert_eq!(
        o1.status.code(),
        Some(4),
        "{}{}",
        String::from_utf8_lossy(&o1.stdout),
        String::from_utf8_lossy(&o1.stderr)
    );
    assert!(String::from_utf8_lossy(&o1.stdout).contains("first-42"));

    // An allowed uid gets in (as the target's identity); nobody does not.
    let (out, _, code) = connect(&sock, "id -u; exit 0\n", Some(4242));
    assert_eq!(code, Some(0), "{out}");
    let (_, err, code) = connect(&sock, "id\n", Some(65534));
    assert_eq!(code, Some(1));
    assert!(
        err.contains("uid 65534 may not use this debug shell"),
        "{err}"
    );

    // A client that just goes away leaves no shell behind.
    let before = descendants(server);
    let mut gone = Command::new(ctrsh_bin())
        .args(["connect", &sock])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    gone.stdin
        .as_mut()
        .unwrap()
        .write_all(b"sleep 100\n")
        .unwrap();
    std::thread::sleep(Duration::from_millis(300));
    gone.kill().unwrap();
    gone.wait().unwrap();
    let mut left = Vec::new();
    for _ in 0..100 {
        left = descendants(server);
        if left.len() <= before.len() {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(left.len() <= before.len(), "shells left: {left:?}");

    r.end();
    std::thread::sleep(Duration::from_millis(200));
    assert!(
        !Path::new(&sock).exists(),
        "the socket is removed at the end"
    );
    assert!(!Path::new(&format!("/proc/{server}")).exists() || zombie(server));
}

fn zombie(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| s.contains(") Z"))
}

fn descendants(pid: i32) -> Vec<i32> {
    let mut all = Vec::new();
    let mut todo = vec![pid];
    while let Some(p) = todo.pop() {
        let kids =
            std::fs::read_to_string(format!("/proc/{p}/task/{p}/children")).unwrap_or_default();
        for k in kids
            .split_whitespace()
            .filter_map(|k| k.parse::<i32>().ok())
        {
            all.push(k);
            todo.push(k);
        }
    }
    all
}

#[test]
fn connect_on_a_terminal_passes_the_window_size_and_restores_it() {
    if !is_root() {
        eprintln!("skipped: needs root");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("t.sock").display().to_string();
    let r = Recipe::start(
        &format!(
            r#"let box = spawn(#{{ ns: ["pid", "mnt"], cmd: ["sleep", "300"] }});
               debug_shell(#{{ socket: "{sock}", target: box, cmd: ["sh", "-c", "stty size; exit 2"] }});
               print("ready"); box.wait();"#
        ),
        &[],
    );
    let script = "a=$(stty -g); \"$CTRSH\" connect \"$SOCK\"; s=$?; [ \"$a\" = \"$(stty -g)\" ] && echo restored; exit $s";
    let bin = ctrsh_bin();
    let (out, status) = in_pty(
        27,
        99,
        "[]",
        &["bash", "-c", script],
        &[("CTRSH", &bin), ("SOCK", &sock)],
    );
    assert_eq!(status, 2, "{out}");
    assert!(out.contains("27 99"), "{out}");
    assert!(out.contains("restored"), "{out}");
    r.end();
}

#[test]
fn bad_sockets_and_targets_are_clear_and_leave_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("plain");
    std::fs::write(&file, "x").unwrap();
    for (path, want) in [
        ("/no/such/dir/x.sock".to_string(), "no such socket"),
        (
            file.display().to_string(),
            "not a socket but a regular file",
        ),
        (
            dir.path().display().to_string(),
            "not a socket but a directory",
        ),
    ] {
        let out = ctrsh().args(["connect", &path]).output().unwrap();
        assert_eq!(out.status.code(), Some(1));
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(want), "{path}: {err}");
    }
    // A socket nobody serves any more.
    let stale = dir.path().join("stale.sock");
    drop(std::os::unix::net::UnixListener::bind(&stale).unwrap());
    let out = ctrsh()
        .args(["connect", &stale.display().to_string()])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stderr).contains("ECONNREFUSED"));
    // A stream socket is not a debug shell.
    let stream = dir.path().join("stream.sock");
    let _l = std::os::unix::net::UnixListener::bind(&stream).unwrap();
    let out = ctrsh()
        .args(["connect", &stream.display().to_string()])
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("not a seqpacket socket"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let long = format!("{}/{}", dir.path().display(), "s".repeat(120));
    let out = eval(&format!(
        r#"for o in [#{{ socket: "/no/such/dir/d.sock", target: pid() }},
                    #{{ socket: "{long}", target: pid() }},
                    #{{ socket: "{d}/x.sock", target: 2 }},
                    #{{ socket: "{d}/x.sock", target: "no-such-box-q" }},
                    #{{ socket: "{d}/x.sock" }}] {{
               try {{ debug_shell(o); print("no error"); }} catch (e) {{ print(e.message); }}
           }}
           for o in [#{{ socket: "/no/such/dir/l.sock" }}, #{{ socket: "{d}/l.sock", out: "/no/such/dir/log" }},
                     #{{ socket: "{d}/plain" }}] {{
               try {{ syslogd(o); print("no error"); }} catch (e) {{ print(e.message); }}
           }}"#,
        d = dir.path().display()
    ));
    let s = String::from_utf8_lossy(&out.stdout);
    let l: Vec<&str> = s.lines().collect();
    assert_eq!(l.len(), 8, "{s}\n{}", String::from_utf8_lossy(&out.stderr));
    assert!(
        l[0].contains("/no/such/dir/d.sock") && l[0].contains("ENOENT"),
        "{s}"
    );
    assert!(l[1].contains("at most 107"), "{s}");
    assert!(l[2].contains("kernel thread"), "{s}");
    assert!(l[3].contains("no-such-box-q"), "{s}");
    assert!(l[4].contains("\"target\" is required"), "{s}");
    assert!(l[5].contains("ENOENT"), "{s}");
    assert!(l[6].contains("/no/such/dir/log"), "{s}");
    assert!(l[7].contains("not a socket"), "{s}");
    let mut left: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    left.sort();
    assert_eq!(left, ["plain", "stale.sock", "stream.sock"]);
}

#[test]
fn syslog_lines_from_two_containers_are_told_apart_by_uid() {
    if !is_root() {
        eprintln!("skipped: needs root");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    // The containers' root users (100000, 200000 outside) must reach the socket.
    std::fs::set_permissions(
        dir.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    let d = dir.path().display().to_string();
    let tag = unique("log");
    let out = eval_ok(&format!(
        r#"let log = syslogd(#{{ socket: "{d}/log.sock", out: "{d}/out.log" }});
           fn box(map, d, msg) {{
               let root = rootfs(#{{ entries: [ro_bind("/usr"), symlink("usr/bin", "/bin"),
                   symlink("usr/lib", "/lib"), symlink("usr/lib64", "/lib64"),
                   bind_entry(d + "/log.sock", "/dev/log", #{{}})], dev: true, tmp: true }});
               run(#{{ ns: ["user", "mnt", "pid"], uid_map: map, gid_map: map, rootfs: root,
                      cmd: ["logger", "-t", "app", msg] }})
           }}
           print(box("0 100000 65536", "{d}", "A {tag} uid=0 pretends"));
           print(box("0 200000 65536", "{d}", "B {tag}"));
           let r = run(#{{ cmd: ["logger", "-u", "{d}/log.sock", "-t", "host", "H {tag}"] }});
           sleep(0.3);
           print(read_file("{d}/out.log"));"#
    ));
    let line = |m: &str| {
        out.lines()
            .find(|l| l.contains(m))
            .unwrap_or_else(|| panic!("no line with {m}: {out}"))
            .to_string()
    };
    let a = line(&format!("A {tag}"));
    let b = line(&format!("B {tag}"));
    let h = line(&format!("H {tag}"));
    assert!(a.contains(" uid=100000 gid=100000 pid="), "{a}");
    assert!(b.contains(" uid=200000 gid=200000 pid="), "{b}");
    assert!(h.contains(" uid=0 gid=0 pid="), "{h}");
    assert!(a.contains("user.notice: ") && a.contains("app: "), "{a}");
    // The sender cannot pick its tag: the kernel's credentials come first.
    assert!(a.find("uid=100000").unwrap() < a.find("uid=0 pretends").unwrap());
    assert!(
        !Path::new(&format!("{d}/log.sock")).exists(),
        "socket removed at the end"
    );
}
