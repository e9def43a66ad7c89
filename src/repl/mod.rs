//! The interactive REPL (placeholder until the REPL lands).
pub fn run() -> i32 {
    eprintln!("ctrsh: REPL not yet built");
    2
}
