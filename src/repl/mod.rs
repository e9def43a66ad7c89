//! The interactive REPL: one scope for the session, functions and imports that persist,
//! multi-line input, completion, history, `:commands`, and Ctrl-C that interrupts a running
//! evaluation and returns to the prompt.

mod helper;
mod scan;

use std::cell::RefCell;
use std::path::PathBuf;
use std::rc::Rc;

use rhai::{Scope, Stmt, AST};
use rustyline::error::ReadlineError;
use rustyline::history::DefaultHistory;
use rustyline::{Config, Editor};

use self::helper::ReplHelper;
use crate::engine::control::Outcome;
use crate::engine::{cleanup, doc, resolver, show, Shell};
use crate::sys::signals;

const BANNER: &str =
    "ctrsh — a container shell. :help [name] for the reference, :ns for the shell's namespaces, \
:load FILE, :quit (or Ctrl-D). Ctrl-C stops a running evaluation.";

struct Session {
    shell: Shell,
    scope: Scope<'static>,
    /// Every function defined so far, merged into each new line's AST.
    lib: AST,
    variables: Rc<RefCell<Vec<String>>>,
    aliases: Vec<String>,
    line_no: usize,
}

pub fn run() -> i32 {
    let shell = Shell::new(None);
    let variables = Rc::new(RefCell::new(Vec::new()));
    let helper = ReplHelper {
        functions: shell.known_names(),
        methods: method_names(&shell),
        modules: module_paths(),
        variables: variables.clone(),
    };
    let config = Config::builder()
        .auto_add_history(true)
        .max_history_size(10_000)
        .map(|b| b.build())
        .unwrap_or_default();
    let mut rl: Editor<ReplHelper, DefaultHistory> = match Editor::with_config(config) {
        Ok(rl) => rl,
        Err(e) => {
            eprintln!("ctrsh: cannot start the line editor: {e}");
            return 1;
        }
    };
    rl.set_helper(Some(helper));
    let history = history_path();
    if let Some(h) = &history {
        let _ = rl.load_history(h);
    }
    let mut scope = Scope::new();
    scope.push_constant("ARGS", rhai::Array::new());
    scope.push_constant("SCRIPT", "<repl>".to_string());
    let mut s = Session {
        shell,
        scope,
        lib: AST::empty(),
        variables,
        aliases: Vec::new(),
        line_no: 0,
    };
    println!("{BANNER}");
    let status = loop {
        match rl.readline("ctrsh> ") {
            Ok(input) => {
                if let Some(h) = &history {
                    let _ = rl.append_history(h).or_else(|_| rl.save_history(h));
                }
                match s.handle(&input) {
                    Some(code) => break code,
                    None => continue,
                }
            }
            Err(ReadlineError::Interrupted) => {
                // Ctrl-C at the prompt abandons the current input.
                continue;
            }
            Err(ReadlineError::Eof) => break 0,
            Err(e) => {
                eprintln!("ctrsh: {e}");
                break 1;
            }
        }
    };
    cleanup::teardown_all_reporting();
    status
}

impl Session {
    /// Handle one complete input; Some(status) ends the REPL.
    fn handle(&mut self, input: &str) -> Option<i32> {
        let trimmed = input.trim();
        if trimmed.is_empty() {
            return None;
        }
        if let Some(cmd) = trimmed.strip_prefix(':') {
            return self.command(cmd);
        }
        self.line_no += 1;
        let name = format!("<repl:{}>", self.line_no);
        self.eval(&name, input, true)
    }

    fn command(&mut self, cmd: &str) -> Option<i32> {
        let (word, arg) = cmd
            .split_once(char::is_whitespace)
            .map_or((cmd, ""), |(w, a)| (w, a.trim()));
        match word {
            "q" | "quit" | "exit" => return Some(0),
            "h" | "help" => {
                let name = (!arg.is_empty()).then_some(arg);
                if name.is_none() {
                    println!("{BANNER}\nEvery function: `:help NAME` (a function, a type such as Ns, a domain such as ns, or a module path).");
                    let mut names: Vec<&str> = self.shell.docs.iter().map(|d| d.name).collect();
                    names.sort();
                    names.dedup();
                    println!("{}", names.join(" "));
                } else {
                    match doc::render(&self.shell.engine, &self.shell.docs, name) {
                        Ok(t) => print!("{t}"),
                        Err(e) => eprintln!("{e}"),
                    }
                }
            }
            "ns" => {
                for (kind, inode) in crate::sys::ns::current_inodes() {
                    println!("{:<7} {kind}:[{inode}]", kind.name());
                }
            }
            "resources" => {
                for r in cleanup::describe() {
                    println!("{r}");
                }
            }
            "load" | "l" => {
                if arg.is_empty() {
                    eprintln!(":load needs a file");
                    return None;
                }
                match std::fs::read_to_string(arg) {
                    Ok(text) => return self.eval(arg, &text, false),
                    Err(e) => eprintln!("ctrsh: cannot read {arg}: {}", crate::cli::io_reason(&e)),
                }
            }
            other => {
                let near = crate::engine::report::nearest(
                    other,
                    &helper::COMMANDS
                        .iter()
                        .map(|c| c[1..].to_string())
                        .collect::<Vec<_>>(),
                    2,
                );
                if near.is_empty() {
                    eprintln!(
                        "unknown command :{other}; commands are {}",
                        helper::COMMANDS.join(" ")
                    );
                } else {
                    eprintln!(
                        "unknown command :{other}; did you mean :{}?",
                        near.join(", :")
                    );
                }
            }
        }
        None
    }

    /// Compile and run `text` in the session scope.
    fn eval(&mut self, name: &str, text: &str, print: bool) -> Option<i32> {
        let ast = match self.shell.compile(name, text) {
            Ok(ast) => ast,
            Err(e) => {
                eprint!("{}", crate::engine::report::render_parse(&e, name));
                return None;
            }
        };
        // Imports: resolve and register each as a static module so later lines see it
        // (rhai forgets imports between separately evaluated ASTs).
        for stmt in ast.statements() {
            if let Stmt::Import(x, _) = stmt {
                let (path_expr, alias) = x.as_ref();
                let path = path_expr
                    .get_literal_value(None)
                    .and_then(|v| v.into_immutable_string().ok());
                if let (Some(path), false) = (path, alias.name.is_empty()) {
                    match self.shell.resolver.resolve_path(&self.shell.engine, &path) {
                        Ok(m) => {
                            self.shell
                                .engine
                                .register_static_module(alias.name.as_str(), m);
                            self.aliases.push(format!("{}::", alias.name));
                        }
                        Err(e) => {
                            eprint!("{}", self.shell.render_error(&e, name));
                            return None;
                        }
                    }
                }
            }
        }
        let merged = self.lib.merge(&ast);
        signals::take(); // a stale ^C must not stop the next evaluation
        let outcome = self.shell.run(&mut self.scope, &merged);
        self.lib = self.lib.merge(&ast.clone_functions_only());
        self.refresh_variables();
        match outcome {
            Outcome::Value(v) => {
                if print && !v.is_unit() {
                    println!("=> {}", show::for_repl(&self.shell.engine, &v));
                }
                None
            }
            Outcome::Exit(n) => Some(n),
            Outcome::Interrupted(nix::sys::signal::Signal::SIGINT) => {
                eprintln!("interrupted");
                None
            }
            o @ Outcome::Interrupted(_) => Some(o.status()),
            Outcome::Error(e) => {
                eprint!("{}", self.shell.render_error(&e, name));
                None
            }
        }
    }

    fn refresh_variables(&self) {
        let mut vars: Vec<String> = self
            .scope
            .iter_raw()
            .map(|(n, _, _)| n.to_string())
            .collect();
        vars.extend(self.lib.iter_functions().map(|f| f.name.to_string()));
        vars.extend(self.aliases.iter().cloned());
        *self.variables.borrow_mut() = vars;
    }
}

/// Names completed after a `.`: documented methods and properties, plus rhai's own methods.
fn method_names(shell: &Shell) -> Vec<String> {
    let mut out: Vec<String> = shell
        .docs
        .iter()
        .filter(|d| d.signature.contains('.'))
        .map(|d| d.name.to_string())
        .collect();
    out.extend(shell.known_names());
    out.sort();
    out.dedup();
    out
}

/// Import paths offered inside `import "`: the stdlib, then modules in CTRSH_PATH and ".".
fn module_paths() -> Vec<String> {
    let mut out: Vec<String> = resolver::stdlib_modules()
        .into_iter()
        .map(|(n, _)| n)
        .collect();
    let mut dirs: Vec<PathBuf> = std::env::var_os("CTRSH_PATH")
        .map(|v| std::env::split_paths(&v).collect())
        .unwrap_or_default();
    dirs.push(PathBuf::from("."));
    for d in dirs {
        if let Ok(rd) = std::fs::read_dir(&d) {
            for e in rd.flatten() {
                if let Some(n) = e.file_name().to_str().and_then(|n| n.strip_suffix(".rhai")) {
                    out.push(n.to_string());
                }
            }
        }
    }
    out.sort();
    out.dedup();
    out
}

/// $XDG_STATE_HOME/ctrsh/history, else ~/.local/state/ctrsh/history (directory created).
fn history_path() -> Option<PathBuf> {
    let base = std::env::var_os("XDG_STATE_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| {
            std::env::var_os("HOME")
                .filter(|v| !v.is_empty())
                .map(|h| PathBuf::from(h).join(".local/state"))
        })?;
    let dir = base.join("ctrsh");
    std::fs::create_dir_all(&dir).ok()?;
    Some(dir.join("history"))
}
