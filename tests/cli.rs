//! The command line as a user meets it: running files, -e, stdin, shebang, exit codes,
//! `check`, `doc`, modules, and bad input — a clear message each, never a panic.

mod common;

use std::io::Write;
use std::os::unix::fs::PermissionsExt;

use common::*;
use predicates::prelude::*;

fn script(dir: &tempfile::TempDir, name: &str, text: &str) -> std::path::PathBuf {
    let p = dir.path().join(name);
    std::fs::write(&p, text).unwrap();
    p
}

fn no_panic() -> impl Predicate<str> {
    predicate::str::contains("panicked").not()
}

#[test]
fn eval_prints_non_unit_result() {
    assert_eq!(eval_ok("1 + 2"), "3\n");
    assert_eq!(eval_ok("let x = 1;"), "");
    assert_eq!(eval_ok("\"raw\""), "raw\n");
    assert_eq!(eval_ok("[1, \"a\"]"), "[1, \"a\"]\n");
}

#[test]
fn eval_sees_args() {
    ctrsh()
        .args(["-e", "ARGS", "a", "-b", "--c"])
        .assert()
        .success()
        .stdout("[\"a\", \"-b\", \"--c\"]\n");
    ctrsh()
        .args(["-e", "SCRIPT"])
        .assert()
        .success()
        .stdout("<eval>\n");
}

#[test]
fn file_with_args_and_script_path() {
    let d = tempfile::tempdir().unwrap();
    let p = script(&d, "a.rhai", "print(ARGS); print(SCRIPT);");
    ctrsh()
        .arg(&p)
        .args(["one", "--two", "-e"])
        .assert()
        .success()
        .stdout(format!("[\"one\", \"--two\", \"-e\"]\n{}\n", p.display()));
}

#[test]
fn stdin_with_dash_and_without_a_terminal() {
    ctrsh()
        .arg("-")
        .write_stdin("print(40 + 2);")
        .assert()
        .success()
        .stdout("42\n");
    ctrsh()
        .write_stdin("print(\"piped\");")
        .assert()
        .success()
        .stdout("piped\n");
}

#[test]
fn shebang_script_runs_directly() {
    let d = tempfile::tempdir().unwrap();
    let bin_dir = std::path::Path::new(env!("CARGO_BIN_EXE_ctrsh"))
        .parent()
        .unwrap()
        .to_path_buf();
    let p = script(
        &d,
        "s.rhai",
        "#!/usr/bin/env ctrsh\nprint(`hello ${ARGS[0]}`);\nexit(3);\n",
    );
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
    let path = format!(
        "{}:{}",
        bin_dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let out = std::process::Command::new(&p)
        .arg("world")
        .env("PATH", path)
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), "hello world\n");
    assert_eq!(out.status.code(), Some(3));
}

#[test]
fn exit_codes() {
    ctrsh().args(["-e", "1"]).assert().code(0);
    ctrsh().args(["-e", "exit(0)"]).assert().code(0);
    ctrsh().args(["-e", "exit(7)"]).assert().code(7);
    ctrsh().args(["-e", "exit()"]).assert().code(0);
    ctrsh()
        .args(["-e", "try { exit(5) } catch { print(\"caught\") }"])
        .assert()
        .code(5)
        .stdout("");
    ctrsh()
        .args(["-e", "throw \"boom\""])
        .assert()
        .code(1)
        .stderr(predicate::str::contains("boom"));
    ctrsh().args(["-e", "let = 1"]).assert().code(2);
    ctrsh().args(["--no-such-flag"]).assert().code(2);
    ctrsh()
        .args(["-e", "exit(256)"])
        .assert()
        .code(1)
        .stderr(predicate::str::contains("0..=255"));
}

#[test]
fn runtime_error_has_file_line_col_source_and_caret() {
    let d = tempfile::tempdir().unwrap();
    let p = script(&d, "bad.rhai", "let a = 1;\n\nlet b = a + \"x\" * 2;\n");
    let out = ctrsh()
        .arg(&p)
        .assert()
        .code(1)
        .stderr(no_panic())
        .get_output()
        .stderr
        .clone();
    let err = String::from_utf8(out).unwrap();
    assert!(err.starts_with(&format!("{}:3:", p.display())), "{err}");
    assert!(err.contains("   3 | let b = a + \"x\" * 2;"), "{err}");
    assert!(err.contains('^'), "{err}");
}

#[test]
fn native_errors_are_catchable_maps() {
    let out = eval_ok(
        r#"try { ns_of(pid(), "nett") } catch (e) { print(e.op); print(e.errno); print(e.name); print(e.message); }
           try { ns_open("/nonexistent/ns", "net") } catch (e) { if e.errno_name == "ENOENT" { print(`enoent ${e.errno} ${e.path}`) } }"#,
    );
    assert_eq!(
        out,
        "ns_of\n\nkind\nns_of(kind): unknown namespace kind \"nett\"\nenoent 2 /nonexistent/ns\n",
        "{out}"
    );
}

#[test]
fn unknown_function_suggests_nearest() {
    let err = eval_err("let n = netns_nwe();");
    assert!(err.contains("unknown function: netns_nwe"), "{err}");
    assert!(err.contains("did you mean netns_new?"), "{err}");
    let err = eval_err("ns_of(\"x\", 1)");
    assert!(
        err.contains("no variant of ns_of() takes these arguments"),
        "{err}"
    );
    assert!(err.contains("ctrsh doc ns_of"), "{err}");
}

#[test]
fn wrong_argument_types_are_clear() {
    let err = eval_err("unshare([1, 2])");
    assert!(
        err.contains("unshare(kinds): namespace kinds are strings"),
        "{err}"
    );
    let err = eval_err("unshare(\"net\")");
    assert!(err.contains("unshare"), "{err}");
    let err = eval_err("sleep(-1)");
    assert!(err.contains("sleep(seconds)"), "{err}");
}

#[test]
fn type_names_in_errors_are_the_scripts_own() {
    // rhai and ctrsh describe values by Rust type names (i64, f64, ImmutableString ...);
    // a script author knows int, float, string.
    let cases: &[(&str, &[&str])] = &[
        (
            r#"tmpfs("/x", #{ size: 1.5 })"#,
            &["tmpfs(size)", "got float"],
        ),
        (
            r#"tmpfs("/x", #{ mode: "x" })"#,
            &["tmpfs(mode)", "got string"],
        ),
        (r#"tmpfs("/x", #{ size: -5 })"#, &["-5 is not a size"]),
        (r#"mount_seq([1])"#, &["op 1 is an int, not a map"]),
        (
            r#"cgroup("ctrsh-neg", #{ limits: #{ memory: -5 } })"#,
            &["-5 is negative"],
        ),
        (
            r#"bind(1, "/x")"#,
            &["no variant of bind() takes these arguments: bind(int, string)"],
        ),
        (r#"spawn(#{ cmd: ["true"], ns: 5 })"#, &["got int"]),
        (r#"ns_of(link("lo"), "net")"#, &["got Link"]),
        (
            r#""a" - 1"#,
            &["the operator - does not apply to a string and an int"],
        ),
        (r#"let x = 1.0; x.len()"#, &["len(float)"]),
        (
            r#"let x = 5; x.foo = 1.5"#,
            &["type 'int' to handle 'float'"],
        ),
        (
            r#"let f = |x| x; f.call(1, 2)"#,
            &["the closure was called with (int, int)", "|a0, a1|"],
        ),
    ];
    for (code, wants) in cases {
        let err = eval_err(code);
        for w in *wants {
            assert!(err.contains(w), "for {code}: expected {w:?} in:\n{err}");
        }
        for rust in [
            "i64",
            "f64",
            "ImmutableString",
            "&str",
            "String",
            "anon$",
            "\"-5\"",
        ] {
            assert!(!err.contains(rust), "for {code}: {rust} in:\n{err}");
        }
    }
}

#[test]
fn check_reports_every_broken_file_with_line_and_col() {
    let d = tempfile::tempdir().unwrap();
    let ok = script(&d, "ok.rhai", "fn f(x) { x }\nprint(f(1));\n");
    let syntax = script(&d, "syntax.rhai", "let a = 1;\nlet b = (a + ;\n");
    let unclosed = script(&d, "unclosed.rhai", "fn f() {\n  1\n");
    let unknown = script(
        &d,
        "unknown.rhai",
        "let x = 1;\nlnks();\nlet f = |y| y;\nf(2);\nunshar([\"net\"]);\n",
    );
    let out = ctrsh()
        .arg("check")
        .args([&ok, &syntax, &unclosed, &unknown])
        .assert()
        .code(2)
        .stderr(no_panic())
        .get_output()
        .clone();
    let stdout = String::from_utf8(out.stdout).unwrap();
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(
        stdout.contains(&format!("{}: ok", ok.display())),
        "{stdout}"
    );
    assert!(
        stderr.contains(&format!("{}:2:", syntax.display())),
        "{stderr}"
    );
    assert!(
        stderr.contains(&format!("{}:", unclosed.display())),
        "{stderr}"
    );
    assert!(
        stderr.contains(&format!(
            "{}:2:1: unknown function: lnks()",
            unknown.display()
        )),
        "{stderr}"
    );
    assert!(
        stderr.contains(&format!(
            "{}:5:1: unknown function: unshar()",
            unknown.display()
        )),
        "{stderr}"
    );
    assert!(stderr.contains("did you mean unshare?"), "{stderr}");
    assert!(
        !stderr.contains("f()"),
        "a closure variable call is not unknown: {stderr}"
    );
    ctrsh().arg("check").arg(&ok).assert().code(0);
}

#[test]
fn doc_lists_functions_and_stdlib_with_examples() {
    let out = ctrsh()
        .arg("doc")
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let text = String::from_utf8(out).unwrap();
    for needle in [
        "in_ns(ns: Ns|array, body: fn) -> any",
        "Example:",
        // The import line as shown must be one a recipe can use: with its alias.
        "== stdlib: import \"net/addr\" as addr ==",
        "addr::host(cidr, n)    [import \"net/addr\" as addr]",
    ] {
        assert!(text.contains(needle), "doc lacks {needle:?}");
    }
    ctrsh()
        .args(["doc", "unshare"])
        .assert()
        .success()
        .stdout(predicate::str::starts_with("unshare(kinds: array)"));
    ctrsh()
        .args(["doc", "Ns"])
        .assert()
        .success()
        .stdout(predicate::str::contains("Ns.inode -> int"));
    ctrsh()
        .args(["doc", "net/addr"])
        .assert()
        .success()
        .stdout(predicate::str::contains("addr::subnet(base, i, len)"));
    ctrsh()
        .args(["doc", "unshar"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("did you mean unshare?"));
}

#[test]
fn modules_from_ctrsh_path_script_dir_and_stdlib() {
    let d = tempfile::tempdir().unwrap();
    let lib = tempfile::tempdir().unwrap();
    script(&d, "local.rhai", "fn who() { \"script dir\" }");
    script(&lib, "local.rhai", "fn who() { \"CTRSH_PATH\" }");
    script(&lib, "only_path.rhai", "fn who() { \"path only\" }");
    let main = script(&d, "main.rhai", "import \"local\" as l; import \"net/addr\" as a; print(l::who()); print(a::ip(\"10.1.2.3/8\"));");
    ctrsh()
        .arg(&main)
        .assert()
        .success()
        .stdout("script dir\n10.1.2.3\n");
    ctrsh()
        .arg(&main)
        .env("CTRSH_PATH", lib.path())
        .assert()
        .success()
        .stdout("CTRSH_PATH\n10.1.2.3\n");
    // A user module may override the stdlib.
    std::fs::create_dir(lib.path().join("net")).unwrap();
    script(&lib, "net/addr.rhai", "fn ip(x) { \"overridden\" }");
    ctrsh()
        .arg(&main)
        .env("CTRSH_PATH", lib.path())
        .assert()
        .success()
        .stdout("CTRSH_PATH\noverridden\n");
    ctrsh()
        .args(["-e", "import \"nope/nothing\" as n;"])
        .assert()
        .code(1)
        .stderr(predicate::str::contains("nope/nothing"));
}

#[test]
fn errors_inside_modules_show_module_and_caller_positions() {
    let d = tempfile::tempdir().unwrap();
    script(
        &d,
        "m.rhai",
        "fn inner(x) {\n    x + undefined_var\n}\nfn outer(x) { inner(x) }\n",
    );
    let main = script(&d, "main.rhai", "import \"m\" as m;\n\nm::outer(1);\n");
    let err = String::from_utf8(
        ctrsh()
            .arg(&main)
            .assert()
            .code(1)
            .get_output()
            .stderr
            .clone(),
    )
    .unwrap();
    let m = d.path().join("m.rhai");
    assert!(
        err.starts_with(&format!(
            "{}:2:9: Variable not found: undefined_var",
            m.display()
        )),
        "{err}"
    );
    assert!(err.contains("called from"), "{err}");
    assert!(
        err.contains(&format!("{}:3:", main.display())),
        "caller position missing: {err}"
    );
    // An error raised inside the embedded stdlib is reported at the user's own line first,
    // then where in the stdlib it was raised.
    let err = eval_err("import \"net/addr\" as a;\na::host(\"10.0.0.0/30\", 9)");
    assert!(err.starts_with("<eval>:2:"), "{err}");
    assert!(
        err.contains("a::host(\"10.0.0.0/30\", 9)"),
        "source line missing: {err}"
    );
    assert!(err.contains("raised at stdlib/net/addr.rhai:"), "{err}");
    assert!(err.contains(", inside host()"), "{err}");
    // Raised two stdlib calls deep: each stdlib frame names the function it lies in.
    let err = eval_err("import \"net/addr\" as a;\na::host(\"10.0.0.0/33\", 1)");
    assert!(err.starts_with("<eval>:2:"), "{err}");
    assert!(err.contains(", inside parse_cidr()\n"), "{err}");
    assert!(
        err.contains("    called from stdlib/net/addr.rhai:") && err.contains(", inside host()\n"),
        "{err}"
    );
}

#[test]
fn bad_files_give_clear_messages() {
    ctrsh()
        .arg("/nonexistent/box.rhai")
        .assert()
        .code(2)
        .stderr("ctrsh: cannot read /nonexistent/box.rhai: ENOENT (No such file or directory)\n");
    let d = tempfile::tempdir().unwrap();
    ctrsh()
        .arg(d.path())
        .assert()
        .code(2)
        .stderr(predicate::str::contains("is a directory"));
    let p = d.path().join("latin1.rhai");
    std::fs::File::create(&p)
        .unwrap()
        .write_all(b"print(1);\nlet s = \"caf\xe9\";\n")
        .unwrap();
    ctrsh()
        .arg(&p)
        .assert()
        .code(2)
        .stderr(predicate::str::contains(":2:13: not valid UTF-8"));
}

#[test]
fn thrown_errors_read_as_written_and_closures_are_named_as_such() {
    let err = eval_err("throw \"disk full\"");
    assert!(err.starts_with("<eval>:1:1: disk full\n"), "{err}");
    let err = eval_err("throw 5");
    assert!(err.starts_with("<eval>:1:1: thrown: 5\n"), "{err}");
    let err = eval_err("let f = || throw \"inner\";\nf.call()");
    assert!(err.starts_with("<eval>:1:12: inner\n"), "{err}");
    assert!(
        err.contains("called from <eval>:2:3 (in call to a closure)"),
        "{err}"
    );
    assert!(!err.contains("anon$"), "{err}");
}

#[test]
fn hostile_scripts_never_panic() {
    for code in [
        "fn f(n) { f(n + 1) } f(0)",
        "let a = []; a[10]",
        "let m = #{}; m.x.y",
        "1 / 0",
        "let x = 9223372036854775807 + 1;",
        "in_ns(1, 2)",
        "in_ns([1], || 1)",
        "ns_of(-1, \"net\")",
        "ns_of(99999999999, \"net\")",
        "sleep(1e300)",
        "set_env(\"\", \"x\")",
        "exit(-1)",
    ] {
        ctrsh()
            .args(["-e", code])
            .assert()
            .failure()
            .stderr(no_panic());
    }
}

/// `ctrsh ... | head -1`: printing into a pipe whose reader left ends the script as a
/// shell pipeline's writer ends (141), with no internal error; spawning many children that
/// exec before the shell writes to them is no reason to stop.
#[test]
fn a_closed_stdout_ends_the_script_quietly_and_spawns_never_raise_sigpipe() {
    let mut child = std::process::Command::new(assert_cmd::cargo::cargo_bin("ctrsh"))
        .arg("-e")
        .arg("for i in 0..1000000 { print(i) }")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = [0u8; 2];
    std::io::Read::read_exact(child.stdout.as_mut().unwrap(), &mut first).unwrap();
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(141));
    assert!(
        !String::from_utf8_lossy(&out.stderr).contains("internal error"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = eval_ok("let n = 0; for i in 0..300 { n += run(#{ cmd: [\"true\"] }); } n");
    assert_eq!(out.trim(), "0");
}

/// The binary is self-contained: copied alone into an empty root (no /dev, /proc, /etc or
/// libraries, as inside a minimal container) it still starts and evaluates scripts. It
/// panicked there once, when a dependency seeded its hash maps from /dev/random.
#[test]
fn the_binary_runs_alone_in_an_empty_root() {
    if !is_root() {
        eprintln!("skipped: chroot needs root");
        return;
    }
    let root = tempfile::tempdir().unwrap();
    let bin = assert_cmd::cargo::cargo_bin("ctrsh");
    std::fs::copy(&bin, root.path().join("ctrsh")).unwrap();
    let in_root = |code: &str| {
        std::process::Command::new("chroot")
            .arg(root.path())
            .args(["/ctrsh", "-e", code])
            .output()
            .expect("run chroot")
    };
    let code = "let m = #{ a: 1 }; switch m.a { 1 => print(`ok ${m.a + 1}`), _ => throw \"no\" }";
    let out = in_root(code);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "status {:?}\n{stderr}", out.status);
    assert_eq!(String::from_utf8_lossy(&out.stdout), "ok 2\n");
    assert!(!stderr.contains("panicked"), "{stderr}");

    // What needs /proc says so, instead of a bare ENOENT on a path the user never named.
    let out = in_root("links()");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("ENOENT"), "{stderr}");
    assert!(
        stderr.contains("hint: /proc is not mounted here"),
        "{stderr}"
    );
}
