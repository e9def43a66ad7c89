//! `spawn(#{ tty: true })` driven through a real pty (python3's pty module): the payload's
//! terminal is a pts of the container's own devpts, TIOCSTI inside cannot reach the outer
//! terminal, window sizes follow, the outer terminal's settings come back, and without a
//! terminal binary data passes through byte for byte.
mod common;
use common::*;

/// A container root with the host's /usr and a devpts instance of its own.
const ROOT: &str = r#"rootfs(#{ entries: [ro_bind("/usr"), symlink("usr/bin", "/bin"),
    symlink("usr/lib", "/lib"), symlink("usr/lib64", "/lib64")],
    dev: true, proc: true, devpts: true, tmp: true })"#;

fn dev_of(path: &str) -> u64 {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(path).unwrap().dev()
}

#[test]
fn the_payloads_tty_is_a_pts_of_the_containers_devpts() {
    if !is_root() {
        eprintln!("skipped: needs root");
        return;
    }
    let code = format!(
        r#"exit(run(#{{ tty: true, ns: ["user", "mnt", "pid", "uts", "ipc"], rootfs: {ROOT},
              cmd: ["sh", "-c", "echo tty=$(tty); echo dev=$(stat -c %d $(tty)) pts=$(stat -c %d /dev/pts); stty size; exit 3"] }}))"#
    );
    let (out, status) = in_pty(33, 101, "[]", &[&ctrsh_bin(), "-e", &code], &[]);
    assert_eq!(status, 3, "{out}");
    let tty = out
        .lines()
        .find_map(|l| l.trim().strip_prefix("tty="))
        .unwrap_or_else(|| panic!("{out}"));
    assert!(tty.starts_with("/dev/pts/"), "{out}");
    let line = out.lines().find(|l| l.starts_with("dev=")).unwrap().trim();
    let (dev, pts) = line.split_once(' ').unwrap();
    let dev: u64 = dev.trim_start_matches("dev=").parse().unwrap();
    let pts: u64 = pts.trim_start_matches("pts=").parse().unwrap();
    assert_eq!(dev, pts, "the pty is in the container's devpts: {out}");
    assert_ne!(dev, dev_of("/dev/pts"), "not the host's devpts: {out}");
    assert!(out.contains("33 101"), "the window size was copied: {out}");
}

const STI: &str = r#"
import fcntl, termios
try:
    for c in b"echo INJECTED\n":
        fcntl.ioctl(0, termios.TIOCSTI, bytes([c]))
    print("ioctl ok")
except OSError as e:
    print("ioctl failed:", e)
"#;

#[test]
fn tiocsti_inside_cannot_reach_the_outer_terminal() {
    if !is_root() {
        eprintln!("skipped: needs root");
        return;
    }
    let legacy = std::fs::read_to_string("/proc/sys/dev/tty/legacy_tiocsti")
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| "absent".into());
    let dir = tempfile::tempdir().unwrap();
    let sti = dir.path().join("sti.py");
    std::fs::write(&sti, STI).unwrap();
    // After ctrsh returns, the outer shell reads what is waiting on its terminal: injected
    // input would be there.
    let outer = |tty: bool| {
        let code = format!(
            r#"exit(run(#{{ tty: {tty}, ns: ["pid", "mnt"], cmd: ["python3", "{}"] }}))"#,
            sti.display()
        );
        let script = format!(
            "{} -e '{code}'; read -t 2 line; echo \"outer got [$line]\"",
            ctrsh_bin()
        );
        in_pty(24, 80, "[]", &["bash", "-c", &script], &[])
    };
    let (out, status) = outer(true);
    assert_eq!(status, 0, "{out}");
    assert!(
        out.contains("outer got []"),
        "TIOCSTI leaked out (legacy_tiocsti={legacy}): {out}"
    );
    // The control: without a pty of its own, the payload shares the outer terminal and the
    // same program does inject (where the kernel still allows TIOCSTI at all).
    let (out, _) = outer(false);
    if legacy == "1" || legacy == "absent" {
        assert!(out.contains("ioctl ok"), "{out}");
        assert!(out.contains("outer got [echo INJECTED]"), "control: {out}");
    } else {
        assert!(
            out.contains("ioctl failed"),
            "legacy_tiocsti=0 refuses it: {out}"
        );
    }
}

#[test]
fn window_changes_follow_and_the_outer_terminal_is_restored() {
    if !is_root() {
        eprintln!("skipped: needs root");
        return;
    }
    let code = r#"exit(run(#{ tty: true, ns: ["pid", "mnt"],
        cmd: ["sh", "-c", "trap 'echo size $(stty size); exit 5' WINCH; echo ready; while :; do sleep 0.05; done"] }))"#;
    let script = "a=$(stty -g); \"$CTRSH\" -e \"$CODE\"; s=$?; b=$(stty -g); [ \"$a\" = \"$b\" ] && echo restored || echo changed; exit $s";
    let bin = ctrsh_bin();
    let (out, status) = in_pty(
        24,
        80,
        r#"[["expect", "ready"], ["sleep", 0.2], ["resize", 40, 120]]"#,
        &["bash", "-c", script],
        &[("CTRSH", &bin), ("CODE", code)],
    );
    assert_eq!(status, 5, "{out}");
    assert!(out.contains("size 40 120"), "{out}");
    assert!(out.contains("restored"), "{out}");
}

#[test]
fn keyboard_input_reaches_the_payload_through_the_pty() {
    if !is_root() {
        eprintln!("skipped: needs root");
        return;
    }
    let code = r#"exit(run(#{ tty: true, ns: ["pid", "mnt"],
        cmd: ["sh", "-c", "echo ready; read line; echo \"got <$line>\"; exit 4"] }))"#;
    let (out, status) = in_pty(
        24,
        80,
        r#"[["expect", "ready"], ["send", "hello there\r"]]"#,
        &[&ctrsh_bin(), "-e", code],
        &[],
    );
    assert_eq!(status, 4, "{out}");
    assert!(out.contains("got <hello there>"), "{out}");
}

#[test]
fn without_a_terminal_binary_data_passes_through_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let data: Vec<u8> = (0..(1 << 20))
        .map(|i: u32| (i.wrapping_mul(2654435761) >> 13) as u8)
        .collect();
    let input = dir.path().join("in.bin");
    std::fs::write(&input, &data).unwrap();
    let out = std::process::Command::new(ctrsh_bin())
        .arg("-e")
        .arg(r#"exit(run(#{ tty: true, cmd: ["cat"] }))"#)
        .stdin(std::fs::File::open(&input).unwrap())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(out.stdout.len(), data.len());
    assert!(out.stdout == data, "the bytes changed on the way");
    // tty with output() or detach is refused with a reason.
    let err = eval_err(r#"output(#{ tty: true, cmd: ["true"] })"#);
    assert!(err.contains("output() collects"), "{err}");
    let err = eval_err(r#"spawn(#{ tty: "sometimes", cmd: ["true"] })"#);
    assert!(err.contains("\"always\""), "{err}");
}

#[test]
fn an_attached_shell_on_a_terminal_gets_a_pty_of_the_containers_devpts() {
    if !is_root() {
        eprintln!("skipped: needs root");
        return;
    }
    let rd = RunDir::new();
    let n = unique("tty");
    rd.eval_ok(&format!(
        r#"spawn(#{{ name: "{n}", detach: true, ns: ["user", "mnt", "pid", "uts"], rootfs: {ROOT},
                    cmd: ["sleep", "300"], stdout: "null", stderr: "null" }})"#
    ));
    let script = format!(
        "echo tty=$(tty); echo dev=$(stat -c %d $(tty)) pts=$(stat -c %d /var/lib/ctrsh/attach/dev/pts); echo exec=$({} exec tty); exit 6",
        ctrsh_bin()
    );
    let (out, status) = in_pty(
        24,
        80,
        "[]",
        &[&ctrsh_bin(), "attach", &n, "sh", "-c", &script],
        &[("CTRSH_RUN_DIR", &rd.path())],
    );
    assert_eq!(status, 6, "{out}");
    assert!(out.contains("tty=/var/lib/ctrsh/attach/dev/pts/"), "{out}");
    let line = out.lines().find(|l| l.starts_with("dev=")).unwrap().trim();
    let (dev, pts) = line.split_once(' ').unwrap();
    assert_eq!(
        dev.trim_start_matches("dev="),
        pts.trim_start_matches("pts="),
        "{out}"
    );
    // Chrooted into the container, the same terminal has the container's name for it.
    assert!(out.contains("exec=/dev/pts/"), "{out}");
}

/// Counts the SIGINTs it receives, with their si_code (128: SI_KERNEL, sent by a terminal;
/// 0: SI_USER, sent with kill). Run under SCHED_FIFO, it takes a signal the moment it is
/// woken, before the processes woken with it run: a second copy sent a moment later (by a
/// forwarding init or shell) is counted, not merged into the first while still pending.
const COUNT_INT: &str = r#"
import signal, time
signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
print("ready", flush=True)
n = 0
end = time.time() + 1.5
while True:
    left = end - time.time()
    if left <= 0:
        break
    i = signal.sigtimedwait({signal.SIGINT}, left)
    if i is None:
        break
    n += 1
    print("INT code=%d" % i.si_code, flush=True)
print("total %d" % n, flush=True)
"#;

#[test]
fn one_ctrl_c_reaches_the_payload_once_in_every_mode() {
    if !need_root() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let count = dir.path().join("count.py");
    std::fs::write(&count, COUNT_INT).unwrap();
    let modes = [
        ("no namespace", ""),
        ("init without a pid namespace", "init: true,"),
        ("a pid namespace and init", r#"ns: ["pid", "mnt"],"#),
        (
            "a pid namespace without init",
            r#"ns: ["pid", "mnt"], init: false,"#,
        ),
        ("a pty of its own", "tty: true,"),
    ];
    for (what, spec) in modes {
        let code = format!(
            r#"exit(run(#{{ {spec} cmd: ["chrt", "-f", "10", "python3", "{}"] }}))"#,
            count.display()
        );
        // On a terminal: one Ctrl-C, which the payload gets from its terminal.
        let (out, status) = in_pty(
            24,
            80,
            r#"[["expect", "ready"], ["sleep", 0.3], ["send", "\u0003"]]"#,
            &[&ctrsh_bin(), "-e", &code],
            &[],
        );
        assert_eq!(status, 0, "{what}: {out}");
        assert!(out.contains("total 1"), "{what}, on a terminal: {out}");
        assert!(out.contains("INT code=128"), "{what}: {out}");
        // Without one: one SIGINT to ctrsh, passed on.
        let mut child = std::process::Command::new(ctrsh_bin())
            .arg("-e")
            .arg(&code)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let mut rd = std::io::BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        std::io::BufRead::read_line(&mut rd, &mut line).unwrap();
        assert_eq!(line.trim(), "ready", "{what}");
        std::thread::sleep(std::time::Duration::from_millis(300));
        nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(child.id() as i32),
            nix::sys::signal::Signal::SIGINT,
        )
        .unwrap();
        let mut rest = String::new();
        std::io::Read::read_to_string(&mut rd, &mut rest).unwrap();
        assert!(child.wait().unwrap().success(), "{what}: {rest}");
        assert!(rest.contains("total 1"), "{what}, no terminal: {rest}");
    }
}

#[test]
fn ctrl_z_stops_ctrsh_with_its_payload_and_fg_brings_both_back() {
    if !need_root() {
        return;
    }
    // An interactive bash with job control runs ctrsh as a job. The payload has the
    // terminal while ctrsh waits for it; Ctrl-Z stops it and ctrsh with it, `bg` goes on in
    // the background until the payload reads the terminal, and `fg` gives it the terminal.
    let dir = tempfile::tempdir().unwrap();
    let rc = dir.path().join("rc");
    std::fs::write(&rc, "PS1='jc> '\n").unwrap();
    for spec in ["", r#"ns: ["pid", "mnt"],"#] {
        let code = format!(
            r#"print(run(#{{ {spec} cmd: ["sh", "-c", "echo start; sleep 1; echo done; read x; echo got $x"] }}))"#
        );
        let steps = r#"[["expect", "jc> "], ["send", "\"$CTRSH\" -e \"$CODE\"\r"],
            ["expect", "start"], ["sleep", 0.3], ["send", "\u001a"], ["expect", "jc> "],
            ["sleep", 1.3], ["send", "echo waited-$((6*7))\r"], ["expect", "jc> "],
            ["send", "bg\r"], ["expect", "done"], ["sleep", 0.5], ["send", "fg\r"],
            ["sleep", 0.5], ["send", "hello\r"], ["expect", "got hello"], ["expect", "jc> "],
            ["send", "exit\r"]]"#;
        let bin = ctrsh_bin();
        let (out, status) = in_pty(
            24,
            80,
            steps,
            &["bash", "--rcfile", &rc.display().to_string(), "-i"],
            &[("CTRSH", &bin), ("CODE", &code)],
        );
        assert_eq!(status, 0, "{spec}: {out}");
        assert!(out.contains("Stopped"), "{spec}: {out}");
        let (waited, done) = (out.find("waited-42"), out.rfind("done"));
        assert!(
            waited.is_some() && done.is_some() && waited < done,
            "{spec}: the payload ran on while stopped: {out}"
        );
        assert!(out.contains("got hello\r\n0\r\n"), "{spec}: {out}");
    }
}

#[test]
fn the_interactive_shell_of_the_toybox_recipe_gets_its_ctrl_c() {
    if !need_root() {
        return;
    }
    let recipe = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/toybox.rhai");
    let (out, status) = in_pty(
        24,
        80,
        r##"[["expect", "# "], ["send", "sleep 20; echo after\r"], ["sleep", 0.5],
            ["send", "\u0003"], ["expect", "# "], ["send", "echo rc=$?\r"], ["expect", "rc="],
            ["expect", "# "], ["send", "exit 3\r"]]"##,
        &[&ctrsh_bin(), &recipe.display().to_string()],
        &[],
    );
    assert_eq!(status, 3, "{out}");
    assert!(out.contains("rc=130"), "{out}");
    assert!(
        !out.contains("\nafter"),
        "the sleep was not interrupted: {out}"
    );
}
