//! rustyline integration: multi-line input while something is open, and tab completion of
//! functions, methods and properties, variables, REPL commands and module paths.

use std::cell::RefCell;
use std::rc::Rc;

use rustyline::completion::{Completer, Pair};
use rustyline::highlight::Highlighter;
use rustyline::hint::Hinter;
use rustyline::validate::{ValidationContext, ValidationResult, Validator};
use rustyline::{Context, Helper};

use super::scan::is_incomplete;

pub const COMMANDS: &[&str] = &[":help", ":ns", ":load", ":quit", ":resources"];

pub struct ReplHelper {
    /// Global functions (ctrsh's and rhai's).
    pub functions: Vec<String>,
    /// Methods and properties, completed after a `.`.
    pub methods: Vec<String>,
    /// Import paths of the stdlib and of modules found in CTRSH_PATH and the current directory.
    pub modules: Vec<String>,
    /// Variables of the session scope and imported module aliases, refreshed after each line.
    pub variables: Rc<RefCell<Vec<String>>>,
}

fn is_ident(c: char) -> bool {
    c.is_alphanumeric() || c == '_' || c == ':'
}

impl ReplHelper {
    fn candidates(&self, line: &str, pos: usize) -> (usize, Vec<String>) {
        let before = &line[..pos];
        // Inside `import "...`: module paths.
        if let Some(idx) = before.rfind("import \"") {
            let partial = &before[idx + 8..];
            if !partial.contains('"') {
                let found = self
                    .modules
                    .iter()
                    .filter(|m| m.starts_with(partial))
                    .cloned()
                    .collect();
                return (idx + 8, found);
            }
        }
        let start = before
            .char_indices()
            .rev()
            .find(|(_, c)| !is_ident(*c))
            .map_or(0, |(i, c)| i + c.len_utf8());
        let word = &before[start..];
        if start == 0 && word.is_empty() && before.is_empty() {
            return (0, Vec::new());
        }
        if line.trim_start().starts_with(':') && !before.trim_start().contains(' ') {
            let s = before.find(':').unwrap_or(0);
            let w = &before[s..];
            return (
                s,
                COMMANDS
                    .iter()
                    .filter(|c| c.starts_with(w))
                    .map(|c| c.to_string())
                    .collect(),
            );
        }
        let after_dot = before[..start].ends_with('.');
        let mut out: Vec<String> = if after_dot {
            self.methods
                .iter()
                .filter(|m| m.starts_with(word))
                .cloned()
                .collect()
        } else {
            self.variables
                .borrow()
                .iter()
                .chain(self.functions.iter())
                .filter(|n| n.starts_with(word))
                .cloned()
                .collect()
        };
        out.sort();
        out.dedup();
        (start, out)
    }
}

impl Completer for ReplHelper {
    type Candidate = Pair;

    fn complete(
        &self,
        line: &str,
        pos: usize,
        _ctx: &Context<'_>,
    ) -> rustyline::Result<(usize, Vec<Pair>)> {
        let (start, names) = self.candidates(line, pos);
        Ok((
            start,
            names
                .into_iter()
                .map(|n| Pair {
                    display: n.clone(),
                    replacement: n,
                })
                .collect(),
        ))
    }
}

impl Validator for ReplHelper {
    fn validate(&self, ctx: &mut ValidationContext) -> rustyline::Result<ValidationResult> {
        let input = ctx.input();
        if !input.trim_start().starts_with(':') && is_incomplete(input) {
            Ok(ValidationResult::Incomplete)
        } else {
            Ok(ValidationResult::Valid(None))
        }
    }
}

impl Hinter for ReplHelper {
    type Hint = String;
}

impl Highlighter for ReplHelper {}

impl Helper for ReplHelper {}

#[cfg(test)]
mod tests {
    use super::*;

    fn helper() -> ReplHelper {
        ReplHelper {
            functions: vec!["links".into(), "link".into(), "netns_new".into()],
            methods: vec!["set_up".into(), "set_down".into(), "name".into()],
            modules: vec!["net/topology".into(), "ctr".into()],
            variables: Rc::new(RefCell::new(vec!["lnk".into()])),
        }
    }

    #[test]
    fn completes_functions_variables_methods_modules_commands() {
        let h = helper();
        assert_eq!(
            h.candidates("lin", 3),
            (0, vec!["link".to_string(), "links".to_string()])
        );
        assert_eq!(h.candidates("let x = ln", 10), (8, vec!["lnk".to_string()]));
        assert_eq!(
            h.candidates("lnk.set_", 8),
            (4, vec!["set_down".to_string(), "set_up".to_string()])
        );
        assert_eq!(
            h.candidates("import \"net/", 12),
            (8, vec!["net/topology".to_string()])
        );
        assert_eq!(h.candidates(":he", 3), (0, vec![":help".to_string()]));
    }
}
