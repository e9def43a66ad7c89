//! `ctrsh check`: beyond the parser's first syntax error, find every call to a function that
//! exists nowhere (not in ctrsh, not in rhai, not defined by the script), with its position
//! and the nearest names — so one run reports every such mistake in a file.

use std::collections::HashSet;

use rhai::{ASTNode, Expr, Stmt, AST};

use super::report::nearest;
use super::Shell;

/// Names rhai's evaluator handles itself (not listed among registered functions).
const KEYWORDS: &[&str] = &[
    "print",
    "debug",
    "type_of",
    "eval",
    "Fn",
    "call",
    "curry",
    "is_shared",
    "is_def_var",
    "is_def_fn",
    "exit",
    "throw",
];

/// One report per call to an unknown function, formatted like runtime errors.
pub fn unknown_calls(shell: &Shell, ast: &AST, source: &str) -> Vec<String> {
    let known: Vec<String> = shell.known_names();
    let mut defined: HashSet<String> = known.iter().cloned().collect();
    defined.extend(KEYWORDS.iter().map(|s| s.to_string()));
    for f in ast.iter_functions() {
        defined.insert(f.name.to_string());
        // A parameter may hold a function pointer that is called like a function.
        defined.extend(f.params.iter().map(|p| p.to_string()));
    }
    let mut calls = Vec::new();
    ast.walk(&mut |path: &[ASTNode]| {
        match path.last() {
            Some(ASTNode::Stmt(Stmt::Var(x, ..))) => {
                defined.insert(x.0.name.to_string());
            }
            Some(
                ASTNode::Expr(Expr::FnCall(call, pos)) | ASTNode::Stmt(Stmt::FnCall(call, pos)),
            ) if call.namespace.is_empty() && call.op_token.is_none() => {
                calls.push((call.name.to_string(), *pos, call.args.len()));
            }
            _ => {}
        }
        true
    });
    let mut out = Vec::new();
    for (name, pos, nargs) in calls {
        if defined.contains(&name) {
            continue;
        }
        let near = nearest(&name, &known, 3);
        let mut msg = format!(
            "{}:{}:{}: unknown function: {name}() with {nargs} argument(s)\n",
            source,
            pos.line().unwrap_or(0),
            pos.position().unwrap_or(0)
        );
        if let Some(text) = pos.line().and_then(|l| super::sources::line(source, l)) {
            msg.push_str(&format!("{:>4} | {text}\n", pos.line().unwrap_or(0)));
            msg.push_str(&format!(
                "     | {}^\n",
                " ".repeat(pos.position().unwrap_or(1).saturating_sub(1))
            ));
        }
        if !near.is_empty() {
            msg.push_str(&format!("hint: did you mean {}?\n", near.join(", ")));
        }
        out.push(msg);
    }
    out
}
