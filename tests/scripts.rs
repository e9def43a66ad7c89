//! Every recipe under scripts/ is run here, as a user would run it.

mod common;
use common::*;

fn run_script(name: &str, args: &[&str]) -> String {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("scripts")
        .join(name);
    let out = ctrsh().arg(&path).args(args).output().expect("run ctrsh");
    assert!(
        out.status.success(),
        "{name} failed ({:?})\n--- stdout\n{}\n--- stderr\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn explore_ns_returns_home() {
    if !need_root() {
        return;
    }
    let out = run_script("explore-ns.rhai", &[]);
    assert!(out.contains("and the shell is home: true"), "{out}");
    assert!(out.contains("home again: true"), "{out}");
}

#[test]
fn every_script_compiles_and_calls_only_known_functions() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "rhai"))
        .collect();
    files.sort();
    assert!(!files.is_empty());
    ctrsh().arg("check").args(&files).assert().success();
}
