//! Command line: run a recipe, evaluate code, check scripts, print the reference, or start
//! the REPL. Exit codes: the script's `exit(n)`; 1 for an uncaught runtime error; 2 for usage
//! and compile errors; 128+N when stopped by signal N.

use std::io::{IsTerminal, Read};
use std::path::Path;

use clap::{Parser, Subcommand};
use rhai::{Array, Dynamic, Scope};

use crate::engine::control::Outcome;
use crate::engine::{cleanup, show, Shell};
use crate::sys::signals;

const ABOUT: &str =
    "A Linux container shell: Rhai recipes over namespaces, mounts, netlink, cgroups and pidfds";

const AFTER_HELP: &str = "\
Examples:
  ctrsh box.rhai arg1 arg2     run a recipe; it sees ARGS and SCRIPT
  ctrsh -e 'links()'           evaluate code and print the result
  ctrsh - < box.rhai           run a recipe from standard input
  ctrsh check box.rhai         compile only and report errors with file:line:col
  ctrsh doc veth               the reference of one function, type or module
  ctrsh attach web             a shell in container \"web\" with the host's tools
  ctrsh ps / stop web          named containers
  ctrsh                        interactive REPL (on a terminal)

Modules: `import \"net/topology\" as t;` searches CTRSH_PATH (colon-separated), then the
script's directory, then the stdlib built into ctrsh.";

#[derive(Parser)]
#[command(name = "ctrsh", version, about = ABOUT, after_help = AFTER_HELP, args_conflicts_with_subcommands = true)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,

    /// Evaluate CODE instead of a file and print its result if it is not ()
    #[arg(short = 'e', long = "eval", value_name = "CODE")]
    eval: Option<String>,

    /// Recipe to run ("-" reads standard input)
    #[arg(value_name = "FILE")]
    file: Option<String>,

    /// Arguments passed to the script as ARGS
    #[arg(
        value_name = "ARGS",
        trailing_var_arg = true,
        allow_hyphen_values = true
    )]
    args: Vec<String>,
}

#[derive(Subcommand)]
enum Command {
    /// Compile scripts without running them; report each file's first error (file:line:col)
    Check {
        /// Scripts to check
        #[arg(required = true, value_name = "FILE")]
        files: Vec<String>,
    },
    /// Print the reference of script functions and stdlib modules
    Doc {
        /// A function, type (e.g. Link), domain (e.g. net) or module (e.g. net/topology)
        name: Option<String>,
    },
    /// Enter a running container with the host's tools (like cntr, without FUSE)
    #[command(after_help = ATTACH_HELP)]
    Attach {
        /// A pid, a ctrsh container name, or a name docker, podman, machinectl, lxc-info
        /// or ctr knows
        target: String,
        /// The command to run inside (default: $SHELL)
        #[arg(
            trailing_var_arg = true,
            allow_hyphen_values = true,
            value_name = "CMD"
        )]
        cmd: Vec<String>,
        /// Where the container's root tree is attached in the private mount namespace
        #[arg(long, value_name = "DIR", default_value = crate::sys::attach::DEFAULT_AT)]
        tools_at: String,
        /// Join the container's mount namespace too and run its own programs (like nsenter)
        #[arg(long, conflicts_with = "tools_at")]
        enter: bool,
        /// No pty, even on a terminal (by default there is one when stdin and stdout are
        /// terminals)
        #[arg(short = 'T', long)]
        no_tty: bool,
    },
    /// Inside an attached shell: run a program of the container itself (chroot to its
    /// root, with its environment)
    #[command(after_help = EXEC_HELP)]
    Exec {
        /// The program and its arguments (default: the container's $SHELL or /bin/sh)
        #[arg(
            trailing_var_arg = true,
            allow_hyphen_values = true,
            value_name = "CMD"
        )]
        cmd: Vec<String>,
    },
    /// List the named containers (spawn with `name`); the state of exited ones is removed
    #[command(after_help = STATE_HELP)]
    Ps,
    /// Stop named containers: SIGTERM, then SIGKILL after a grace period
    ///
    /// SIGTERM goes to the container's first process: its mini-init, which passes it on, or
    /// the payload. What the container started ends with it. A pid namespace ends with its
    /// init; without one, a mini-init (spawn with `init: true`) holds the whole tree as a
    /// subreaper and ends it. Without either, what is left of the container's process group
    /// is killed once its first process is gone (at the SIGKILL stage, its descendants too);
    /// a process that left the group (setsid: a daemon) and was orphaned is out of reach.
    #[command(after_help = STATE_HELP, verbatim_doc_comment)]
    Stop {
        /// Container names
        #[arg(required = true, value_name = "NAME")]
        names: Vec<String>,
        /// Seconds to wait after SIGTERM before SIGKILL
        #[arg(
            short = 't',
            long = "time",
            value_name = "SECS",
            default_value_t = 10.0
        )]
        time: f64,
    },
    /// Open a terminal on a debug_shell socket (a shell inside its container)
    #[command(after_help = CONNECT_HELP)]
    Connect {
        /// The socket debug_shell(#{ socket }) serves
        socket: String,
    },
}

const CONNECT_HELP: &str = "\
The terminal is put in raw mode (restored on exit), its size follows yours, and ctrsh
exits with the shell's status. Only root, the server's uid and the uids the server
allows are let in.

Example:
  ctrsh -e 'let b = spawn(#{ ns: [\"pid\", \"mnt\"], cmd: [\"sleep\", \"1d\"] });
            debug_shell(#{ socket: \"/run/b.sock\", target: b }); b.wait()' &
  ctrsh connect /run/b.sock";

const ATTACH_HELP: &str = "\
The attached process joins the target's user, pid, net, uts, ipc, cgroup and time
namespaces and its cgroups, takes its uid/gid/groups, capabilities, no_new_privs and
environment, and gets a private mount namespace: the host's tree stays at /, the
container's root is at --tools-at (default /var/lib/ctrsh/attach), and the container's
/etc/passwd, group, hostname, hosts and resolv.conf are bound over the host's.
Inside, `ctrsh exec CMD` runs the container's own CMD.

Examples:
  ctrsh attach web                       your shell, the container's namespaces
  ctrsh attach 4242 htop                 by pid (any runtime: bwrap, unshare, docker ...)
  ctrsh attach web -- ls -la /var/lib/ctrsh/attach/etc
  ctrsh attach --enter web sh            the container's own sh, its own view";

const EXEC_HELP: &str = "\
Only inside `ctrsh attach`: chroots to the container's root (CTRSH_ATTACH_ROOT) and runs
CMD with the container's environment (CTRSH_ATTACH_ENV), as if started in the container.

Example:
  ctrsh exec cat /etc/os-release";

const STATE_HELP: &str = "\
State lives in $CTRSH_RUN_DIR, else /run/ctrsh (root), $XDG_RUNTIME_DIR/ctrsh, or
/tmp/ctrsh-UID when XDG_RUNTIME_DIR is unset: one directory per name with the pid and
its start time, so a reused pid is never mistaken for the container.

Examples:
  ctrsh -e 'spawn(#{ name: \"web\", detach: true, ns: [\"pid\", \"mnt\"], cmd: [\"sleep\", \"1d\"] })'
  ctrsh ps
  ctrsh stop --time 3 web";

pub fn main() -> i32 {
    // A panic is a ctrsh bug whatever the script did: say so, keep the standard wording.
    std::panic::set_hook(Box::new(|info| {
        eprintln!("ctrsh: internal error (a bug in ctrsh, please report it): {info}");
    }));
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let code = if e.use_stderr() { 2 } else { 0 };
            let _ = e.print();
            return code;
        }
    };
    if let Err(e) = signals::install() {
        eprintln!("ctrsh: {e}");
        return 1;
    }
    crate::sys::rlimit::raise_stack(256 << 20);
    match cli.command {
        Some(Command::Check { files }) => check(&files),
        Some(Command::Doc { name }) => doc(name.as_deref()),
        Some(Command::Attach {
            target,
            cmd,
            tools_at,
            enter,
            no_tty,
        }) => crate::commands::attach(&target, cmd, tools_at, enter, no_tty),
        Some(Command::Exec { cmd }) => crate::commands::exec(cmd),
        Some(Command::Ps) => crate::commands::ps(),
        Some(Command::Stop { names, time }) => crate::commands::stop(&names, time),
        Some(Command::Connect { socket }) => crate::commands::connect(&socket),
        None => match (cli.eval, cli.file) {
            (Some(code), first) => {
                let args = first.into_iter().chain(cli.args).collect();
                eval(&code, args)
            }
            (None, Some(file)) => run_file(&file, cli.args),
            (None, None) if std::io::stdin().is_terminal() => crate::repl::run(),
            (None, None) => run_file("-", Vec::new()),
        },
    }
}

/// Read a script: a path, or "-" for standard input. Errors are printed; exit status 2.
fn read_script(file: &str) -> Result<String, i32> {
    let bytes = if file == "-" {
        let mut buf = Vec::new();
        std::io::stdin().read_to_end(&mut buf).map(|_| buf)
    } else if Path::new(file).is_dir() {
        eprintln!("ctrsh: {file}: is a directory, not a script");
        return Err(2);
    } else {
        std::fs::read(file)
    };
    let bytes = bytes.map_err(|e| {
        eprintln!("ctrsh: cannot read {file}: {}", io_reason(&e));
        2
    })?;
    String::from_utf8(bytes).map_err(|e| {
        let at = e.utf8_error().valid_up_to();
        let text = String::from_utf8_lossy(&e.as_bytes()[..at]);
        let line = text.matches('\n').count() + 1;
        let col = text.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
        eprintln!("ctrsh: {file}:{line}:{col}: not valid UTF-8 (byte offset {at}); scripts must be UTF-8 text");
        2
    })
}

/// An I/O error as ctrsh says errors: the errno's name and text, never Rust's "(os error N)".
pub fn io_reason(e: &std::io::Error) -> String {
    match e.raw_os_error() {
        Some(n) => format!(
            "{} ({})",
            crate::sys::error::errno_name(nix::errno::Errno::from_raw(n)),
            nix::errno::Errno::from_raw(n).desc()
        ),
        None => e.to_string(),
    }
}

fn script_scope(script: &str, args: Vec<String>) -> Scope<'static> {
    let mut scope = Scope::new();
    let args: Array = args.into_iter().map(Dynamic::from).collect();
    scope.push_constant("ARGS", args);
    scope.push_constant("SCRIPT", script.to_string());
    scope
}

fn run_file(file: &str, args: Vec<String>) -> i32 {
    let text = match read_script(file) {
        Ok(t) => t,
        Err(code) => return code,
    };
    let dir = if file == "-" {
        None
    } else {
        Path::new(file).parent().map(|p| {
            if p.as_os_str().is_empty() {
                Path::new(".")
            } else {
                p
            }
        })
    };
    let shell = Shell::new(dir);
    let name = if file == "-" { "<stdin>" } else { file };
    let ast = match shell.compile(name, &text) {
        Ok(ast) => ast,
        Err(e) => {
            eprint!("{}", crate::engine::report::render_parse(&e, name));
            return 2;
        }
    };
    let mut scope = script_scope(file, args);
    let outcome = shell.run(&mut scope, &ast);
    let status = finish(&shell, outcome, name, false);
    // The process ends now: freeing the interpreter would only cost time.
    std::mem::forget((shell, scope, ast));
    status
}

fn eval(code: &str, args: Vec<String>) -> i32 {
    let shell = Shell::new(None);
    let ast = match shell.compile("<eval>", code) {
        Ok(ast) => ast,
        Err(e) => {
            eprint!("{}", crate::engine::report::render_parse(&e, "<eval>"));
            return 2;
        }
    };
    let mut scope = script_scope("<eval>", args);
    let outcome = shell.run(&mut scope, &ast);
    let status = finish(&shell, outcome, "<eval>", true);
    std::mem::forget((shell, scope, ast));
    status
}

/// Tear down what the script owns, report an error if there was one, and give the status.
fn finish(shell: &Shell, outcome: Outcome, name: &str, print_value: bool) -> i32 {
    if let Outcome::Value(v) = &outcome {
        if print_value && !v.is_unit() {
            use std::io::Write;
            // A closed pipe is the reader's choice, not an error of the script.
            let _ = writeln!(std::io::stdout(), "{}", show::for_eval(&shell.engine, v));
        }
    }
    if let Outcome::Error(e) = &outcome {
        eprint!("{}", shell.render_error(e, name));
    }
    cleanup::teardown_all_reporting();
    outcome.status()
}

fn check(files: &[String]) -> i32 {
    let mut status = 0;
    for file in files {
        let text = match read_script(file) {
            Ok(t) => t,
            Err(code) => {
                status = status.max(code);
                continue;
            }
        };
        let dir = Path::new(file).parent();
        let shell = Shell::new(dir);
        match shell.compile(file, &text) {
            Ok(ast) => {
                let problems = crate::engine::check::unknown_calls(&shell, &ast, file);
                if problems.is_empty() {
                    println!("{file}: ok");
                } else {
                    for p in &problems {
                        eprint!("{p}");
                    }
                    status = 2;
                }
            }
            Err(e) => {
                eprint!("{}", crate::engine::report::render_parse(&e, file));
                status = 2;
            }
        }
    }
    status
}

fn doc(name: Option<&str>) -> i32 {
    let shell = Shell::new(None);
    match crate::engine::doc::render(&shell.engine, &shell.docs, name) {
        Ok(text) => {
            print!("{text}");
            0
        }
        Err(msg) => {
            eprintln!("ctrsh doc: {msg}");
            2
        }
    }
}
