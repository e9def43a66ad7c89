//! Printing values: `-e` prints strings raw and everything else in its debug form; the REPL
//! prints everything in debug form. Custom types print through their `to_debug`.

use rhai::{Dynamic, Engine};

/// How `ctrsh -e` prints a result.
pub fn for_eval(engine: &Engine, v: &Dynamic) -> String {
    if v.is_string() {
        return v.to_string();
    }
    for_repl(engine, v)
}

/// How the REPL prints a result: the value's debug form (maps and arrays of handles
/// included), via a registered `to_debug` where the type has one.
pub fn for_repl(engine: &Engine, v: &Dynamic) -> String {
    // `debug(v)` in script terms: uses registered to_debug of custom types, also nested.
    let mut scope = rhai::Scope::new();
    scope.push_dynamic("__v", v.clone());
    match engine.eval_with_scope::<rhai::ImmutableString>(&mut scope, "__v.to_debug()") {
        Ok(s) => s.to_string(),
        Err(_) => format!("{v:?}"),
    }
}
