//! ctrsh: a Linux container shell. One binary, an embedded Rhai interpreter whose functions
//! are the Linux primitives containers are made of.

mod cli;
mod commands;
mod engine;
mod repl;
mod sys;

fn main() {
    std::process::exit(cli::main());
}
