//! The REPL driven through a real pty: multi-line definitions, persistent imports, Ctrl-C
//! interrupting a running loop, completion, history and the `:commands`.

use std::process::Command;

use rexpect::session::{spawn_command, PtySession};

fn repl(state: &tempfile::TempDir, cwd: &std::path::Path) -> PtySession {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_ctrsh"));
    cmd.env("XDG_STATE_HOME", state.path())
        .env("TERM", "xterm")
        .env_remove("CTRSH_PATH")
        .current_dir(cwd);
    let mut p = spawn_command(cmd, Some(20_000)).expect("spawn ctrsh in a pty");
    p.exp_string("ctrsh> ").expect("prompt");
    // Let the line editor finish its start-up terminal queries before typing.
    std::thread::sleep(std::time::Duration::from_millis(300));
    p
}

/// Send one line and wait for `expect` and then the next prompt. Input typed before the
/// line editor is back in raw mode would be flushed by the terminal, as for a person.
fn line(p: &mut PtySession, text: &str, expect: &str) {
    p.send_line(text).unwrap();
    p.exp_string(expect)
        .unwrap_or_else(|e| panic!("after {text:?}: {e}"));
    p.exp_string("ctrsh> ")
        .unwrap_or_else(|e| panic!("no prompt after {text:?}: {e}"));
}

#[test]
fn multi_line_function_persists_and_is_callable_later() {
    let state = tempfile::tempdir().unwrap();
    let mut p = repl(&state, state.path());
    p.send_line("fn add(a,").unwrap();
    p.send_line("  b) {").unwrap();
    line(&mut p, "  a + b }", "a + b }");
    line(&mut p, "let base = 40; \"set\"", "=> \"set\"");
    line(&mut p, "add(base, 2)", "=> 42");
    p.send_line(":quit").unwrap();
    p.exp_eof().unwrap();
    let history =
        std::fs::read_to_string(state.path().join("ctrsh/history")).expect("history file");
    assert!(history.contains("add(base, 2)"), "{history}");
}

#[test]
fn imports_persist_across_lines() {
    let state = tempfile::tempdir().unwrap();
    std::fs::write(state.path().join("greet.rhai"), "fn hi(x) { `hi ${x}` }").unwrap();
    let mut p = repl(&state, state.path());
    line(&mut p, "import \"greet\" as g; 1", "=> 1");
    line(&mut p, "import \"net/addr\" as a; 2", "=> 2");
    p.send_line("g::hi(1) + \" \" + a::ip(\"10.0.0.1/8\")")
        .unwrap();
    p.exp_string("=> \"hi 1 10.0.0.1\"").unwrap();
    p.send_control('d').unwrap();
    p.exp_eof().unwrap();
}

#[test]
fn ctrl_c_interrupts_a_running_loop_and_the_session_survives() {
    let state = tempfile::tempdir().unwrap();
    let mut p = repl(&state, state.path());
    line(&mut p, "let kept = 7; kept", "=> 7");
    p.send_line("loop {}").unwrap();
    std::thread::sleep(std::time::Duration::from_millis(500));
    p.send_control('c').unwrap();
    p.exp_string("interrupted").unwrap();
    p.exp_string("ctrsh> ").unwrap();
    p.send_line("kept * 6").unwrap();
    p.exp_string("=> 42").unwrap();
    p.send_line(":quit").unwrap();
    p.exp_eof().unwrap();
}

#[test]
fn tab_completes_function_names_and_variables() {
    let state = tempfile::tempdir().unwrap();
    let mut p = repl(&state, state.path());
    p.send("netns_n\t").unwrap();
    p.flush().unwrap();
    p.exp_string("netns_new").unwrap();
    p.send("().kind\r").unwrap();
    p.flush().unwrap();
    p.exp_string("=> \"net\"").unwrap();
    p.exp_string("ctrsh> ").unwrap();
    line(&mut p, "let my_long_variable = 5; 0", "=> 0");
    p.send("my_long_v\t").unwrap();
    p.flush().unwrap();
    p.exp_string("my_long_variable").unwrap();
    p.send(" + 1\r").unwrap();
    p.flush().unwrap();
    p.exp_string("=> 6").unwrap();
    p.exp_string("ctrsh> ").unwrap();
    p.send_line(":quit").unwrap();
    p.exp_eof().unwrap();
}

#[test]
fn commands_help_ns_load_and_errors_keep_the_session() {
    let state = tempfile::tempdir().unwrap();
    std::fs::write(
        state.path().join("lib.rhai"),
        "fn triple(x) { x * 3 }\nlet loaded = 1;",
    )
    .unwrap();
    let mut p = repl(&state, state.path());
    line(
        &mut p,
        ":help in_ns",
        "in_ns(ns: Ns|array, body: fn) -> any",
    );
    p.send_line(":ns").unwrap();
    p.exp_regex(r"net +net:\[\d+\]").unwrap();
    p.exp_string("ctrsh> ").unwrap();
    line(&mut p, ":load lib.rhai", "lib.rhai");
    line(&mut p, "triple(loaded + 1)", "=> 6");
    line(&mut p, "lnks()", "unknown function: lnks");
    line(&mut p, "unshare([\"nett\"])", "unknown namespace kind");
    line(&mut p, ":nsx", "did you mean :ns");
    line(&mut p, "1 + 1", "=> 2");
    p.send_line("exit(3)").unwrap();
    p.exp_eof().unwrap();
}

#[test]
fn ctrl_c_stops_the_evaluation_and_spares_the_containers_started_before() {
    // Every child leads a process group of its own: the terminal's SIGINT goes to its
    // foreground group, the REPL, and not to them. A payload the REPL waits for has the
    // terminal meanwhile and takes the Ctrl-C itself.
    if !nix::unistd::geteuid().is_root() {
        eprintln!("skipped: needs root");
        return;
    }
    let state = tempfile::tempdir().unwrap();
    let mut p = repl(&state, state.path());
    line(
        &mut p,
        r#"let a = spawn(#{ ns: ["pid", "mnt"], cmd: ["sleep", "300"] }); let b = spawn(#{ cmd: ["sleep", "300"] }); let c = fork(|| sleep(300)); 1"#,
        "=> 1",
    );
    p.send_line("sleep(30)").unwrap();
    std::thread::sleep(std::time::Duration::from_millis(500));
    p.send_control('c').unwrap();
    p.exp_string("interrupted").unwrap();
    p.exp_string("ctrsh> ").unwrap();
    line(
        &mut p,
        "[a.alive, b.alive, c.alive]",
        "=> [true, true, true]",
    );
    p.send_line(r#"run(#{ cmd: ["sleep", "30"] })"#).unwrap();
    std::thread::sleep(std::time::Duration::from_millis(500));
    p.send_control('c').unwrap();
    p.exp_string("=> 130").unwrap();
    p.exp_string("ctrsh> ").unwrap();
    line(
        &mut p,
        "[a.alive, b.alive, c.alive]",
        "=> [true, true, true]",
    );
    p.send_line(":quit").unwrap();
    p.exp_eof().unwrap();
}
