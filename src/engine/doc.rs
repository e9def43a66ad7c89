//! `ctrsh doc [NAME]`: the reference of every native function (from the docs recorded at
//! registration) and every stdlib module function (from its `///` doc comments).

use rhai::Engine;

use super::api::FnDoc;
use super::report::nearest;
use super::resolver::stdlib_modules;

/// One documented stdlib function.
pub struct ModuleFn {
    pub module: String,
    pub signature: String,
    pub text: String,
}

/// Every documented function of every embedded stdlib module.
pub fn stdlib_fns(engine: &Engine) -> Vec<ModuleFn> {
    let mut out = Vec::new();
    for (module, text) in stdlib_modules() {
        let Ok(ast) = engine.compile(super::sources::strip_shebang(text)) else {
            continue;
        };
        let mut fns: Vec<_> = ast
            .iter_functions()
            .filter(|f| !f.name.starts_with('_') && !f.name.starts_with("anon$"))
            .collect();
        fns.sort_by_key(|f| f.name);
        for f in fns {
            if f.access == rhai::FnAccess::Private {
                continue;
            }
            let text = doc_comment(text, f.name, f.params.len());
            let alias = module.rsplit('/').next().unwrap_or(&module);
            out.push(ModuleFn {
                module: module.clone(),
                signature: format!("{alias}::{}({})", f.name, f.params.join(", ")),
                text,
            });
        }
    }
    out
}

/// The public functions of the stdlib modules as scripts usually call them, "router::attach"
/// (the alias is the module's last path component), from a scan of their sources: cheap
/// enough for an error report.
pub fn stdlib_fn_names() -> Vec<String> {
    let mut out = Vec::new();
    for (module, text) in stdlib_modules() {
        let alias = module.rsplit('/').next().unwrap_or(&module);
        for line in text.lines() {
            let Some(rest) = line.strip_prefix("fn ") else {
                continue;
            };
            let Some((name, _)) = rest.split_once('(') else {
                continue;
            };
            let name = name.trim();
            if name.contains('.') || name.starts_with('_') {
                continue;
            }
            let full = format!("{alias}::{name}");
            if !out.contains(&full) {
                out.push(full);
            }
        }
    }
    out
}

/// The `///` lines right above the definition of `name` with `nparams` parameters in a module's
/// source (rhai keeps comments in its AST only with its `metadata` feature, which ctrsh leaves
/// off for start-up time).
fn doc_comment(source: &str, name: &str, nparams: usize) -> String {
    let lines: Vec<&str> = source.lines().collect();
    for (i, line) in lines.iter().enumerate() {
        if defines(line, name, nparams) {
            let mut doc: Vec<&str> = lines[..i]
                .iter()
                .rev()
                .map(|l| l.trim_start())
                .take_while(|l| l.starts_with("///"))
                .map(|l| {
                    let l = l.trim_start_matches("///");
                    l.strip_prefix(' ').unwrap_or(l)
                })
                .collect();
            doc.reverse();
            return doc.join("\n");
        }
    }
    String::new()
}

/// Is `line` the start of `fn name(a, b, ...)` (optionally `private`, or a `fn map.name`
/// method) with `nparams` parameters?
fn defines(line: &str, name: &str, nparams: usize) -> bool {
    let l = line.trim_start();
    let l = l.strip_prefix("private ").unwrap_or(l).trim_start();
    let Some(rest) = l.strip_prefix("fn ") else {
        return false;
    };
    let rest = rest.trim_start();
    let rest = match rest.split_once('(') {
        Some((head, tail)) => {
            let head = head.trim_end();
            let head = head.rsplit_once('.').map_or(head, |(_, n)| n);
            if head != name {
                return false;
            }
            tail
        }
        None => return false,
    };
    let params = rest.split(')').next().unwrap_or("");
    let count = params.split(',').filter(|p| !p.trim().is_empty()).count();
    count == nparams
}

fn render_native(d: &FnDoc) -> String {
    format!("{}\n{}\n", d.signature, indent(d.text))
}

fn render_module_fn(f: &ModuleFn) -> String {
    format!(
        "{}    [import \"{}\" as {}]\n{}\n",
        f.signature,
        f.module,
        module_alias(f),
        indent(&f.text)
    )
}

/// The name a module's functions are called by in its signatures ("topo" for topo::linear):
/// the alias the import needs, since `import "net/topo";` alone names nothing.
fn module_alias(f: &ModuleFn) -> &str {
    match f.signature.split_once("::") {
        Some((alias, _)) => alias,
        None => f.module.rsplit('/').next().unwrap_or(&f.module),
    }
}

fn indent(text: &str) -> String {
    text.lines()
        .map(|l| {
            if l.is_empty() {
                String::new()
            } else {
                format!("    {l}")
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// The whole reference, or the entries matching `name` (a function, a method, a type such as
/// "Link", a domain such as "net", or a stdlib module path such as "net/topology").
pub fn render(engine: &Engine, docs: &[FnDoc], name: Option<&str>) -> Result<String, String> {
    let module_fns = stdlib_fns(engine);
    let mut out = String::new();
    match name {
        None => {
            out.push_str(
                "ctrsh reference — `ctrsh doc NAME` for one function, type, domain or module.\n\n",
            );
            let mut domains: Vec<&str> = docs.iter().map(|d| d.domain).collect();
            domains.dedup();
            let mut seen = std::collections::HashSet::new();
            for domain in domains {
                if !seen.insert(domain) {
                    continue;
                }
                out.push_str(&format!("== {domain} ==\n\n"));
                for d in docs.iter().filter(|d| d.domain == domain) {
                    out.push_str(&render_native(d));
                    out.push('\n');
                }
            }
            let mut last_module = String::new();
            for f in &module_fns {
                if f.module != last_module {
                    out.push_str(&format!(
                        "== stdlib: import \"{}\" as {} ==\n\n",
                        f.module,
                        module_alias(f)
                    ));
                    last_module = f.module.clone();
                }
                out.push_str(&render_module_fn(f));
                out.push('\n');
            }
        }
        Some(name) => {
            let type_prefix = format!("{name}.");
            let matches: Vec<&FnDoc> = docs
                .iter()
                .filter(|d| {
                    d.name == name || d.domain == name || d.signature.starts_with(&type_prefix)
                })
                .collect();
            for d in &matches {
                out.push_str(&render_native(d));
                out.push('\n');
            }
            let short = name.rsplit("::").next().unwrap_or(name);
            for f in module_fns.iter().filter(|f| {
                f.module == name
                    || f.signature.starts_with(&format!("{name}("))
                    || f.signature.contains(&format!("::{short}("))
            }) {
                out.push_str(&render_module_fn(f));
                out.push('\n');
            }
            if out.is_empty() {
                let mut names: Vec<String> = docs.iter().map(|d| d.name.to_string()).collect();
                names.extend(module_fns.iter().map(|f| f.module.clone()));
                let near = nearest(short, &names, 3);
                return Err(if near.is_empty() {
                    format!(
                        "no function, type or module named {name:?}; `ctrsh doc` lists everything"
                    )
                } else {
                    format!(
                        "no function, type or module named {name:?}; did you mean {}?",
                        near.join(", ")
                    )
                });
            }
        }
    }
    Ok(out)
}
