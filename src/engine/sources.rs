//! The text of every script and module compiled in this process, by source name, so an
//! error report can show the offending line wherever it is.

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

thread_local! {
    static SOURCES: RefCell<HashMap<String, Rc<str>>> = RefCell::new(HashMap::new());
}

/// Remember the text of `name` (a script path, "<eval>", or "stdlib:net/topology").
pub fn remember(name: &str, text: &str) {
    SOURCES.with(|s| s.borrow_mut().insert(name.to_string(), Rc::from(text)));
}

/// Line `line` (1-based) of source `name`, if known.
pub fn line(name: &str, line: usize) -> Option<String> {
    SOURCES.with(|s| {
        s.borrow()
            .get(name)
            .and_then(|text| text.lines().nth(line.checked_sub(1)?).map(str::to_string))
    })
}

/// Prepare script text for compiling: a `#!` first line becomes a plain comment so line
/// numbers stay right (`// ` with a space: `///` would be a doc comment).
pub fn strip_shebang(text: &str) -> String {
    if let Some(rest) = text.strip_prefix("#!") {
        format!("// {rest}")
    } else {
        text.to_string()
    }
}

thread_local! {
    static ALIASES: RefCell<HashMap<String, String>> = RefCell::new(HashMap::new());
}

/// Record that `import "<path>"` resolved to the source named `name`.
pub fn alias(path: &str, name: &str) {
    ALIASES.with(|a| a.borrow_mut().insert(path.to_string(), name.to_string()));
}

/// The source name an import path resolved to, if it was resolved.
pub fn resolved(path: &str) -> Option<String> {
    ALIASES.with(|a| a.borrow().get(path).cloned())
}
