//! `import "net/topology" as t;` — modules are looked up in `CTRSH_PATH` (colon-separated
//! directories), then the importing script's own directory, then the stdlib embedded in the
//! binary, so an installed binary with no files beside it works.
//!
//! rhai's resolver contract: return `ErrorModuleNotFound` or `ErrorInModule` only.

use std::cell::RefCell;
use std::collections::HashMap;
use std::path::{Path, PathBuf};

use include_dir::{include_dir, Dir};
type SharedModule = rhai::Shared<rhai::Module>;
use rhai::{Engine, EvalAltResult, Module, ModuleResolver, Position, Scope};

use super::sources;

/// The stdlib shipped inside the binary.
pub static STDLIB: Dir<'static> = include_dir!("$CARGO_MANIFEST_DIR/stdlib");

/// Every stdlib module: (import path without ".rhai", source text), sorted by path.
pub fn stdlib_modules() -> Vec<(String, &'static str)> {
    fn walk(dir: &'static Dir<'static>, out: &mut Vec<(String, &'static str)>) {
        for f in dir.files() {
            let p = f.path().to_string_lossy();
            if let (Some(name), Some(text)) = (p.strip_suffix(".rhai"), f.contents_utf8()) {
                out.push((name.to_string(), text));
            }
        }
        for d in dir.dirs() {
            walk(d, out);
        }
    }
    let mut out = Vec::new();
    walk(&STDLIB, &mut out);
    out.sort();
    out
}

/// Where a module's text came from.
enum Found {
    File(PathBuf, String),
    Stdlib(String, &'static str),
}

pub struct Resolver {
    /// CTRSH_PATH entries, then the main script's directory.
    dirs: Vec<PathBuf>,
    cache: RefCell<HashMap<String, SharedModule>>,
}

impl Resolver {
    /// `script_dir` is the directory of the script being run (None for -e, stdin, the REPL,
    /// where the current directory is used).
    pub fn new(script_dir: Option<&Path>) -> Resolver {
        let mut dirs: Vec<PathBuf> = std::env::var_os("CTRSH_PATH")
            .map(|v| {
                std::env::split_paths(&v)
                    .filter(|p| !p.as_os_str().is_empty())
                    .collect()
            })
            .unwrap_or_default();
        dirs.push(
            script_dir
                .map(Path::to_path_buf)
                .unwrap_or_else(|| PathBuf::from(".")),
        );
        Resolver {
            dirs,
            cache: RefCell::new(HashMap::new()),
        }
    }

    fn find(&self, source: Option<&str>, path: &str) -> Option<Found> {
        let file = if path.ends_with(".rhai") {
            path.to_string()
        } else {
            format!("{path}.rhai")
        };
        let read = |p: PathBuf| -> Option<Found> {
            let text = std::fs::read_to_string(&p).ok()?;
            Some(Found::File(p, text))
        };
        if file.starts_with('/') {
            return read(PathBuf::from(&file));
        }
        if file.starts_with("./") || file.starts_with("../") {
            // Relative to the importing file when it is a file, else the script directory.
            let base = source
                .filter(|s| !s.starts_with("stdlib/") && !s.starts_with('<'))
                .and_then(|s| Path::new(s).parent().map(Path::to_path_buf))
                .unwrap_or_else(|| self.dirs.last().cloned().unwrap_or_default());
            return read(base.join(&file));
        }
        for dir in &self.dirs {
            let p = dir.join(&file);
            if p.is_file() {
                return read(p);
            }
        }
        STDLIB
            .get_file(&file)
            .and_then(|f| f.contents_utf8())
            .map(|text| Found::Stdlib(file.trim_end_matches(".rhai").to_string(), text))
    }

    /// Compile and evaluate a module's text into a module (errors wrapped `ErrorInModule`).
    fn load(
        &self,
        engine: &Engine,
        name: &str,
        text: &str,
        path: &str,
        pos: Position,
    ) -> Result<SharedModule, Box<EvalAltResult>> {
        let in_module = |e: Box<EvalAltResult>| -> Box<EvalAltResult> {
            EvalAltResult::ErrorInModule(path.to_string(), e, pos).into()
        };
        let text = sources::strip_shebang(text);
        sources::remember(name, &text);
        let mut ast = engine.compile(&text).map_err(|e| in_module(e.into()))?;
        ast.set_source(name);
        let mut module = Module::eval_ast_as_new(Scope::new(), &ast, engine).map_err(in_module)?;
        module.build_index();
        Ok(module.into())
    }

    /// Resolve `path` to a module, for the REPL which registers imports itself.
    pub fn resolve_path(
        &self,
        engine: &Engine,
        path: &str,
    ) -> Result<SharedModule, Box<EvalAltResult>> {
        self.resolve(engine, None, path, Position::NONE)
    }
}

impl ModuleResolver for Resolver {
    fn resolve(
        &self,
        engine: &Engine,
        source: Option<&str>,
        path: &str,
        pos: Position,
    ) -> Result<SharedModule, Box<EvalAltResult>> {
        let found = self
            .find(source, path)
            .ok_or_else(|| Box::new(EvalAltResult::ErrorModuleNotFound(path.to_string(), pos)))?;
        let name = match &found {
            Found::File(p, _) => p.display().to_string(),
            Found::Stdlib(n, _) => format!("stdlib/{n}.rhai"),
        };
        sources::alias(path, &name);
        if let Some(m) = self.cache.borrow().get(&name) {
            return Ok(m.clone());
        }
        let text = match &found {
            Found::File(_, t) => t.as_str(),
            Found::Stdlib(_, t) => t,
        };
        let module = self.load(engine, &name, text, path, pos)?;
        self.cache.borrow_mut().insert(name, module.clone());
        Ok(module)
    }
}
