//! Core script functions: exit, pid, sleep, environment, files, and what the recipe owns.

use std::time::{Duration, Instant};

use rhai::{Array, Dynamic, Map};

use super::api::Api;
use super::cleanup;
use super::control::{exit_err, interrupt_err};
use super::error::{arg_err, script_type, sys_err, RResult};
use crate::sys::{signals, SysError};

pub fn register(api: &mut Api) {
    api.func(
        "arg_error",
        "arg_error(op: string, arg: string, message: string) -> map",
        "The error a recipe library throws for a bad argument `arg` of its function `op`, shaped\n\
         as ctrsh's own (message \"op(arg): message\", op, name, detail, kind ...), so callers\n\
         catch and read it alike.\n\
         Example:\n    if n < 1 { throw arg_error(\"mylib::hosts\", \"n\", `${n} is not a count`); }",
        |op: &str, arg: &str, message: &str| -> Map {
            super::error::error_map(&SysError::invalid(op, arg, message))
        },
    );
    api.func(
        "type_name",
        "type_name(value) -> string",
        "A value's type as ctrsh's errors name it: int, float, string, array, map, Process ...\n\
         (rhai's type_of says i64, f64).\n\
         Example:\n    print(`expected a map, got ${type_name(5)}`);   // \"... got int\"",
        |v: Dynamic| -> String { super::error::type_of(&v).to_string() },
    );
    api.func(
        "exit",
        "exit(code: int)",
        "End the script (or a fork(|| ...) child) with exit status `code`.\n\
         Everything the recipe created is torn down first, as on a normal end.\n\
         `try`/`catch` does not catch it.\n\
         Example:\n    if ARGS.len() == 0 { print(\"usage: box.rhai NAME\"); exit(2); }",
        |code: i64| -> RResult<()> {
            let code = i32::try_from(code).ok().filter(|c| (0..=255).contains(c));
            match code {
                Some(c) => Err(exit_err(c)),
                None => Err(arg_err("exit", "code", "exit status must be 0..=255")),
            }
        },
    );
    api.func(
        "exit",
        "exit()",
        "End the script with exit status 0.\nExample:\n    exit();",
        || -> RResult<()> { Err(exit_err(0)) },
    );
    api.func(
        "check_opts",
        "check_opts(op: string, opts: map, known: array)",
        "Reject an options map with a key not in `known`: the error names the key and the\n\
         nearest known ones (\"did you mean subnet?\"), as ctrsh's own functions do. For\n\
         recipe libraries whose functions take an options map.\n\
         Example:\n    fn box(opts) { check_opts(\"box\", opts, [\"name\", \"memory\"]); /* ... */ }",
        |op: &str, opts: Map, known: Array| -> RResult<()> {
            let known = known
                .into_iter()
                .map(|k| {
                    k.into_string().map_err(|t| {
                        arg_err("check_opts", "known", format!("expected strings, got {}", script_type(t)))
                    })
                })
                .collect::<RResult<Vec<String>>>()?;
            let known: Vec<&str> = known.iter().map(String::as_str).collect();
            super::opts::Opts::new(op, opts, &known).map(|_| ())
        },
    );
    api.func(
        "cwd",
        "cwd() -> string",
        "The shell's current directory, e.g. to make a relative path from the command line\n\
         absolute (mounts and loop devices want absolute paths).\n\
         Example:\n    let image = if ARGS[0].starts_with(\"/\") { ARGS[0] } else { `${cwd()}/${ARGS[0]}` };",
        || -> RResult<String> {
            std::env::current_dir()
                .map(|d| d.to_string_lossy().into_owned())
                .map_err(|e| {
                    sys_err(SysError::os(
                        "getcwd",
                        nix::errno::Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO)),
                    ))
                })
        },
    );
    api.func(
        "pid",
        "pid() -> int",
        "The process id of the shell itself (of the forked child, inside fork(|| ...)).\n\
         Example:\n    let home = ns_of(pid(), \"net\");",
        || -> i64 { i64::from(std::process::id()) },
    );
    api.func(
        "sleep",
        "sleep(seconds: int|float)",
        "Pause for `seconds`. Ctrl-C interrupts it.\nExample:\n    sleep(0.5);",
        |secs: f64| -> RResult<()> { sleep(secs) },
    );
    api.func(
        "sleep",
        "sleep(seconds: int)",
        "Pause for a whole number of seconds. Ctrl-C interrupts it.\nExample:\n    sleep(1);",
        |secs: i64| -> RResult<()> { sleep(secs as f64) },
    );
    api.func(
        "env",
        "env() -> map",
        "The shell's environment as a map of name to value.\nExample:\n    print(env().PATH);",
        || -> Map {
            std::env::vars_os()
                .map(|(k, v)| {
                    (
                        k.to_string_lossy().into(),
                        Dynamic::from(v.to_string_lossy().to_string()),
                    )
                })
                .collect()
        },
    );
    api.func(
        "env",
        "env(name: string) -> string or ()",
        "One environment variable of the shell, or () when unset.\nExample:\n    let home = env(\"HOME\") ?? \"/root\";",
        |name: &str| -> Dynamic { std::env::var(name).map(Dynamic::from).unwrap_or(Dynamic::UNIT) },
    );
    api.func(
        "set_env",
        "set_env(name: string, value: string)",
        "Set an environment variable of the shell (inherited by children that inherit the\n\
         environment).\nExample:\n    set_env(\"LANG\", \"C.UTF-8\");",
        |name: &str, value: &str| -> RResult<()> {
            if name.is_empty() || name.contains('=') || name.contains('\0') || value.contains('\0')
            {
                return Err(arg_err(
                    "set_env",
                    "name",
                    format!("invalid environment variable name {name:?}"),
                ));
            }
            std::env::set_var(name, value);
            Ok(())
        },
    );
    api.func(
        "read_file",
        "read_file(path: string) -> string",
        "The contents of a text file.\nExample:\n    print(read_file(\"/proc/self/uid_map\"));",
        |path: &str| -> RResult<String> {
            std::fs::read_to_string(path)
                .map_err(|e| sys_err(SysError::io("read_file", &e).path(path)))
        },
    );
    api.func(
        "write_file",
        "write_file(path: string, content: string)",
        "Write `content` to a file, creating or truncating it (also for /proc and /sys files).\n\
         Example:\n    write_file(\"/tmp/box.conf\", \"name=box\\n\");",
        |path: &str, content: &str| -> RResult<()> {
            std::fs::write(path, content)
                .map_err(|e| sys_err(SysError::io("write_file", &e).path(path)))
        },
    );
    api.func(
        "remove_file",
        "remove_file(path: string)",
        "Remove a file (not a directory).\nExample:\n    remove_file(\"/tmp/box.conf\");",
        |path: &str| -> RResult<()> {
            std::fs::remove_file(path)
                .map_err(|e| sys_err(SysError::io("remove_file", &e).path(path)))
        },
    );
    api.func(
        "path_exists",
        "path_exists(path: string) -> bool",
        "Whether something exists at `path` (a dangling symlink counts).\nExample:\n    if !path_exists(\"/usr/bin/ping\") { print(\"no ping\"); }",
        |path: &str| -> bool { std::fs::symlink_metadata(path).is_ok() },
    );
    api.func(
        "resources",
        "resources() -> array",
        "What the recipe owns right now and will tear down when it ends (oldest first).\n\
         Example:\n    for r in resources() { print(r); }",
        || -> Array { cleanup::describe().into_iter().map(Dynamic::from).collect() },
    );
    api.func(
        "cleanup",
        "cleanup()",
        "Tear down everything the recipe owns now, newest first, instead of at the end.\n\
         Every failure is reported; the first one is raised.\nExample:\n    cleanup();",
        || -> RResult<()> {
            let failures = cleanup::teardown_all();
            let n = failures.len();
            match failures.into_iter().next() {
                None => Ok(()),
                Some((what, e)) => Err(sys_err(
                    e.detail(format!("cleanup of {what} ({n} failure(s))")),
                )),
            }
        },
    );
    api.doc(
        "ARGS",
        "ARGS: array of strings",
        "The arguments given after the script name (`ctrsh box.rhai a b` → [\"a\", \"b\"]).\n\
         Example:\n    let n = if ARGS.len() > 0 { parse_int(ARGS[0]) } else { 3 };",
    );
    api.doc(
        "SCRIPT",
        "SCRIPT: string",
        "The path of the running script (\"-\" for standard input, \"<eval>\" for -e).\nExample:\n    print(`running ${SCRIPT}`);",
    );
}

/// Sleep, waking early (with an interrupt error) when a signal arrives.
pub fn sleep(secs: f64) -> RResult<()> {
    if !secs.is_finite() || secs < 0.0 {
        return Err(arg_err(
            "sleep",
            "seconds",
            format!("{secs} is not a duration"),
        ));
    }
    let end = Duration::try_from_secs_f64(secs)
        .ok()
        .and_then(|d| Instant::now().checked_add(d))
        .ok_or_else(|| arg_err("sleep", "seconds", format!("{secs} is too long")))?;
    loop {
        if let Some(sig) = signals::take() {
            return Err(interrupt_err(sig));
        }
        let now = Instant::now();
        if now >= end {
            return Ok(());
        }
        let left = (end - now).min(Duration::from_millis(100));
        std::thread::sleep(left);
    }
}
