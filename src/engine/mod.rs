//! The Rhai side: builds the engine, registers every domain, runs scripts and reports errors.
//! Only translates between Rhai values and `sys` calls; all Linux knowledge lives in `sys`.

pub mod api;
pub mod attach;
pub mod builtins;
pub mod cgroup;
pub mod check;
pub mod cleanup;
pub mod control;
pub mod core;
pub mod doc;
pub mod error;
pub mod fd;
pub mod fs;
pub mod net;
pub mod nft;
pub mod ns;
pub mod opts;
pub mod process;
pub mod report;
pub mod resolver;
pub mod rootfs;
pub mod services;
pub mod show;
pub mod sources;
pub mod spawn;

use std::path::Path;
use std::rc::Rc;

type SharedModule = rhai::Shared<rhai::Module>;
use rhai::{Dynamic, Engine, EvalAltResult, ModuleResolver, Position, Scope, AST};

use self::api::{Api, FnDoc};
use self::control::Outcome;
use self::resolver::Resolver;
use crate::sys::signals;

/// A configured interpreter: the engine, the reference docs of what it registered, and the
/// module resolver (shared so the REPL can resolve imports itself).
pub struct Shell {
    pub engine: Engine,
    pub docs: Rc<Vec<FnDoc>>,
    pub resolver: Rc<Resolver>,
}

/// Lets the engine use a resolver the REPL also holds.
struct SharedResolver(Rc<Resolver>);

impl ModuleResolver for SharedResolver {
    fn resolve(
        &self,
        engine: &Engine,
        source: Option<&str>,
        path: &str,
        pos: Position,
    ) -> Result<SharedModule, Box<EvalAltResult>> {
        self.0.resolve(engine, source, path, pos)
    }
}

impl Shell {
    /// Build the interpreter. `script_dir` is where the running script lives (module lookup).
    pub fn new(script_dir: Option<&Path>) -> Shell {
        let mut engine = Engine::new();
        set_limits(&mut engine);

        // `spawn` is reserved in Rhai; it is the name of ctrsh's main verb.
        #[allow(deprecated)]
        engine.on_parse_token(|token, _, _| match token {
            rhai::Token::Reserved(s) if &*s == "spawn" => rhai::Token::Identifier(s),
            other => other,
        });
        // print() to a closed pipe (`ctrsh box.rhai | head -1`) ends the script as SIGPIPE
        // would end a shell's writer, instead of a panic in println!.
        engine.on_print(|s| {
            use std::io::Write;
            let mut out = std::io::stdout().lock();
            if writeln!(out, "{s}").is_err() {
                signals::set_pending(nix::sys::signal::Signal::SIGPIPE);
            }
        });
        engine.on_debug(|s, src, pos| {
            use std::io::Write;
            let at = match (src, pos.line()) {
                (Some(src), Some(l)) => format!("{src}:{l}: "),
                (None, Some(l)) => format!("{l}: "),
                _ => String::new(),
            };
            let _ = writeln!(std::io::stderr(), "{at}{s}");
        });
        // Ctrl-C / SIGTERM stop a running evaluation between steps.
        engine.on_progress(|_| signals::take().map(|sig| Dynamic::from(control::Interrupt(sig))));

        let resolver = Rc::new(Resolver::new(script_dir));
        engine.set_module_resolver(SharedResolver(resolver.clone()));

        let mut docs = Vec::new();
        core::register(&mut Api::new(&mut engine, &mut docs, "core"));
        fd::register(&mut Api::new(&mut engine, &mut docs, "core"));
        ns::register(&mut Api::new(&mut engine, &mut docs, "ns"));
        process::register(&mut Api::new(&mut engine, &mut docs, "process"));
        spawn::register(&mut Api::new(&mut engine, &mut docs, "process"));
        nft::register(&mut Api::new(&mut engine, &mut docs, "net"));
        net::register(&mut Api::new(&mut engine, &mut docs, "net"));
        fs::register(&mut Api::new(&mut engine, &mut docs, "fs"));
        rootfs::register(&mut Api::new(&mut engine, &mut docs, "fs"));
        attach::register(&mut Api::new(&mut engine, &mut docs, "attach"));
        services::register(&mut Api::new(&mut engine, &mut docs, "attach"));
        cgroup::register(&mut Api::new(&mut engine, &mut docs, "cgroup"));

        Shell {
            engine,
            docs: Rc::new(docs),
            resolver,
        }
    }

    /// Every callable name: ctrsh's functions and rhai's built-in ones (for suggestions and
    /// completion).
    pub fn known_names(&self) -> Vec<String> {
        let mut names: Vec<String> = self.docs.iter().map(|d| d.name.to_string()).collect();
        names.extend(builtins::RHAI_NAMES.iter().map(|n| n.to_string()));
        names.sort();
        names.dedup();
        names
    }

    /// Compile script text under source name `name` (remembered for error reports).
    pub fn compile(&self, name: &str, text: &str) -> Result<AST, rhai::ParseError> {
        let text = sources::strip_shebang(text);
        sources::remember(name, &text);
        let mut ast = self.engine.compile(&text)?;
        ast.set_source(name);
        Ok(ast)
    }

    /// Run a compiled script in `scope`.
    pub fn run(&self, scope: &mut Scope, ast: &AST) -> Outcome {
        Outcome::from_result(self.engine.eval_ast_with_scope::<Dynamic>(scope, ast))
    }

    /// Render an uncaught runtime error from source `main`.
    pub fn render_error(&self, err: &EvalAltResult, main: &str) -> String {
        // Module functions too ("router::attach"), for calls through an import.
        let mut known = self.known_names();
        known.extend(doc::stdlib_fn_names());
        report::render_runtime(err, main, &known)
    }
}

/// Interpreter limits: never the debug-build defaults (call depth 8 in debug builds), but
/// still bounded so runaway recursion is an error, not a crash.
fn set_limits(engine: &mut Engine) {
    engine.set_max_call_levels(512);
    engine.set_max_expr_depths(512, 256);
    engine.set_max_operations(0);
    engine.set_max_modules(1024);
    engine.set_max_string_size(0);
    engine.set_max_array_size(0);
    engine.set_max_map_size(0);
    engine.set_max_variables(1 << 20);
    engine.set_max_functions(1 << 20);
}

#[cfg(test)]
mod tests {
    #[cfg(feature = "rhai-metadata")]
    use std::collections::HashSet;

    use super::*;

    /// Names registered only so values print or compare; they are documented by their type.
    #[cfg(feature = "rhai-metadata")]
    const PLUMBING: &[&str] = &["to_string", "to_debug", "==", "!="];

    #[test]
    fn every_registered_function_is_documented_with_an_example() {
        let shell = Shell::new(None);
        for d in shell.docs.iter() {
            assert!(
                d.example().is_some_and(|e| !e.trim().is_empty()),
                "{} has no Example: section",
                d.signature
            );
        }
        for f in doc::stdlib_fns(&shell.engine) {
            assert!(
                f.text.contains("Example:"),
                "stdlib {} has no Example: in its doc comment",
                f.signature
            );
        }
    }

    /// Every function registered in the engine has a reference entry (rhai lists what was
    /// registered only with its `metadata` feature: `cargo test --features rhai-metadata`).
    #[cfg(feature = "rhai-metadata")]
    #[test]
    fn every_registered_function_is_documented() {
        let shell = Shell::new(None);
        let documented: HashSet<&str> = shell.docs.iter().map(|d| d.name).collect();
        for sig in shell.engine.gen_fn_signatures(false) {
            let name = sig
                .trim_start_matches("fn ")
                .split('(')
                .next()
                .unwrap_or("")
                .trim();
            let name = name
                .strip_prefix("get$")
                .or_else(|| name.strip_prefix("set$"))
                .unwrap_or(name);
            if PLUMBING.contains(&name) {
                continue;
            }
            assert!(
                documented.contains(name),
                "registered but undocumented: {sig}"
            );
        }
    }

    /// Scripts have one integer type (rhai's `only_i64`: no operators exist for others), so
    /// no registered function may take or return another one.
    #[cfg(feature = "rhai-metadata")]
    #[test]
    fn registered_functions_use_only_script_integers() {
        let shell = Shell::new(None);
        let others = [
            "u8", "u16", "u32", "u64", "u128", "usize", "i8", "i16", "i32", "i128", "isize",
        ];
        let mut bad = Vec::new();
        for sig in shell.engine.gen_fn_signatures(false) {
            let words = sig
                .split(|c: char| !(c.is_alphanumeric() || c == '_'))
                .collect::<Vec<_>>();
            if words.iter().any(|w| others.contains(w)) {
                bad.push(sig);
            }
        }
        assert!(bad.is_empty(), "non-int integer types: {bad:#?}");
    }

    /// builtins::RHAI_NAMES is exactly the names of rhai's standard package (less the one
    /// function that exists only with `metadata`).
    #[cfg(feature = "rhai-metadata")]
    #[test]
    fn builtin_names_match_rhai() {
        let shell = Shell::new(None);
        let ours: HashSet<String> = shell.engine.gen_fn_signatures(false).into_iter().collect();
        let mut names: Vec<String> = shell
            .engine
            .gen_fn_signatures(true)
            .into_iter()
            .filter(|sig| !ours.contains(sig))
            .map(|sig| {
                let sig = sig.trim_start_matches("fn ");
                sig.split('(').next().unwrap_or("").trim().to_string()
            })
            .filter(|n| {
                n.starts_with(|c: char| c.is_alphabetic() || c == '_')
                    && !n.starts_with("get$")
                    && !n.starts_with("set$")
                    && n != "get_fn_metadata_list"
            })
            .collect();
        names.sort();
        names.dedup();
        let listed: Vec<String> = builtins::RHAI_NAMES.iter().map(|s| s.to_string()).collect();
        assert_eq!(
            listed, names,
            "update src/engine/builtins.rs to rhai's list"
        );
    }

    #[test]
    fn every_stdlib_module_compiles() {
        let shell = Shell::new(None);
        for (name, text) in resolver::stdlib_modules() {
            if let Err(e) = shell.compile(&format!("stdlib/{name}.rhai"), text) {
                panic!("{}", report::render_parse(&e, &name));
            }
        }
    }
}
