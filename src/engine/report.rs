//! Uncaught errors as people read them: `FILE:LINE:COL: message`, the source line, a caret,
//! then `called from` lines for every function and module frame out to the script, and a
//! hint or the nearest names where one helps.

use rhai::{EvalAltResult, ParseError, Position};

use super::control::innermost;
use super::error::{a_type, script_type};
use super::sources;

/// One place in the chain from the script down to the failing call.
struct Frame {
    source: String,
    pos: Position,
    what: String,
}

/// Render an uncaught runtime error raised while running source `main` (a path or "<eval>").
/// `known` lists the callable names, for "did you mean" on an unknown function.
pub fn render_runtime(err: &EvalAltResult, main: &str, known: &[String]) -> String {
    let mut frames = Vec::new();
    let mut source = main.to_string();
    let mut e = err;
    loop {
        match e {
            EvalAltResult::ErrorInFunctionCall(name, src, inner, pos) => {
                frames.push(Frame {
                    source: source.clone(),
                    pos: *pos,
                    what: if name.starts_with("anon$") {
                        // rhai names closures by a hash; the user wrote no such name.
                        "in call to a closure".to_string()
                    } else {
                        format!("in call to {name}()")
                    },
                });
                if !src.is_empty() {
                    source = src.clone();
                }
                e = inner;
            }
            EvalAltResult::ErrorInModule(path, inner, pos) => {
                frames.push(Frame {
                    source: source.clone(),
                    pos: *pos,
                    what: format!("importing \"{path}\""),
                });
                source = sources::resolved(path).unwrap_or_else(|| path.clone());
                e = inner;
            }
            _ => break,
        }
    }
    let inner = innermost(err);
    let mut out = String::new();
    let (message, hint) = message_of(inner, known);
    let pos = inner.position();
    // Errors positioned nowhere (rare) are reported at the innermost known call site.
    let (src, pos) = if pos.is_none() {
        frames
            .last()
            .map(|f| (f.source.clone(), f.pos))
            .unwrap_or((source, pos))
    } else {
        (source, pos)
    };
    // An error raised inside the embedded stdlib is reported at the line the user wrote (the
    // innermost call from their own code), then where in the stdlib it was raised.
    let user_frame = if is_stdlib(&src) {
        frames.iter().rposition(|f| !is_stdlib(&f.source))
    } else {
        None
    };
    match user_frame {
        Some(u) => {
            // Frame k is the call, at frames[k].pos, of the function frames[k].what names;
            // that position lies inside the function frame k-1 called.
            let inside = |k: usize| frames[k].what.replacen("in call to", "inside", 1);
            let f = &frames[u];
            out.push_str(&located(&f.source, f.pos, &message));
            out.push_str(&format!(
                "  raised at {}, {}\n",
                location(&src, pos),
                inside(frames.len() - 1)
            ));
            for k in (u + 1..frames.len()).rev() {
                out.push_str(&format!(
                    "    called from {}, {}\n",
                    location(&frames[k].source, frames[k].pos),
                    inside(k - 1)
                ));
            }
            for f in frames[..u].iter().rev() {
                out.push_str(&format!(
                    "  called from {} ({})\n",
                    location(&f.source, f.pos),
                    f.what
                ));
            }
        }
        None => {
            out.push_str(&located(&src, pos, &message));
            for f in frames.iter().rev() {
                out.push_str(&format!(
                    "  called from {} ({})\n",
                    location(&f.source, f.pos),
                    f.what
                ));
            }
        }
    }
    if let Some(h) = hint {
        out.push_str(&format!("hint: {h}\n"));
    }
    out
}

/// Whether a source name is a module of the embedded stdlib (as the resolver names them).
fn is_stdlib(source: &str) -> bool {
    source.starts_with("stdlib/")
}

/// Render a compile error in source `name`.
pub fn render_parse(err: &ParseError, name: &str) -> String {
    let ParseError(kind, pos) = err;
    let mut msg = kind.to_string();
    if let rhai::ParseErrorType::Reserved(word) = kind.as_ref() {
        msg = format!("'{word}' is a reserved word in Rhai and cannot be used here");
    }
    located(name, *pos, &format!("syntax error: {msg}"))
}

/// `file:line:col: message` followed by the source line and a caret.
fn located(source: &str, pos: Position, message: &str) -> String {
    let mut out = format!("{}: {message}\n", location(source, pos));
    if let (Some(line), Some(text)) = (
        pos.line(),
        pos.line().and_then(|l| sources::line(source, l)),
    ) {
        let col = pos.position().unwrap_or(1).max(1);
        let gutter = format!("{line:>4} | ");
        out.push_str(&format!("{gutter}{text}\n"));
        // Keep tabs so the caret lines up under tabbed source.
        let pad: String = text
            .chars()
            .take(col - 1)
            .map(|c| if c == '\t' { '\t' } else { ' ' })
            .collect();
        out.push_str(&format!("{:>width$}{pad}^\n", "| ", width = gutter.len()));
    }
    out
}

fn location(source: &str, pos: Position) -> String {
    match (pos.line(), pos.position()) {
        (Some(l), Some(c)) => format!("{source}:{l}:{c}"),
        (Some(l), None) => format!("{source}:{l}"),
        _ => source.to_string(),
    }
}

/// The message of the innermost error, and a hint if there is one.
fn message_of(e: &EvalAltResult, known: &[String]) -> (String, Option<String>) {
    match e {
        EvalAltResult::ErrorRuntime(v, _) => {
            if let Some(map) = v.read_lock::<rhai::Map>() {
                let msg = map
                    .get("message")
                    .map(|m| m.to_string())
                    .unwrap_or_else(|| format!("{v:?}"));
                let hint = map
                    .get("hint")
                    .filter(|h| h.is_string())
                    .map(|h| h.to_string());
                return (msg, hint);
            }
            // `throw "text"` reads as the text, as ctrsh's own errors do; another thrown
            // value says it was thrown.
            if v.is_string() {
                return (v.to_string(), None);
            }
            (format!("thrown: {v:?}"), None)
        }
        EvalAltResult::ErrorFunctionNotFound(sig, _) => {
            let (full, args) = call_signature(sig);
            let name = full.rsplit("::").next().unwrap_or(full);
            if is_operator(name) {
                // "did you mean" has nothing to offer for `-`; say which types met.
                let on = args
                    .iter()
                    .map(|a| a_type(a))
                    .collect::<Vec<_>>()
                    .join(" and ");
                return (format!("the operator {name} does not apply to {on}"), None);
            }
            if full.starts_with("anon$") {
                // rhai names closures by a hash the user never wrote.
                let n = args.len();
                let msg = format!(
                    "the closure was called with ({}), which its parameters do not take",
                    args.join(", ")
                );
                let params = (0..n)
                    .map(|i| format!("a{i}"))
                    .collect::<Vec<_>>()
                    .join(", ");
                return (
                    msg,
                    Some(format!(
                        "a closure takes as many arguments as it has parameters: call it with \
                         those, or, where a function calls it, write it |{params}| {{ ... }}"
                    )),
                );
            }
            let shown = format!("{full}({})", args.join(", "));
            if let Some((module, _)) = full.rsplit_once("::") {
                return module_call(full, module, name, &shown, known);
            }
            let near = nearest(name, known, 3);
            let hint = if near.is_empty() {
                Some("`ctrsh doc` lists every function".to_string())
            } else {
                Some(format!("did you mean {}?", near.join(", ")))
            };
            let exists = known.iter().any(|k| k == name);
            let msg = if exists {
                format!("no variant of {name}() takes these arguments: {shown}")
            } else {
                format!("unknown function: {shown}")
            };
            let hint = if exists {
                Some(format!("`ctrsh doc {name}` shows how to call it"))
            } else {
                hint
            };
            (msg, hint)
        }
        // rhai names the types it saw in Rust's terms (i64, f64): rebuild its message with
        // the names a script knows.
        EvalAltResult::ErrorMismatchDataType(want, got, pos) => (
            in_script_types(EvalAltResult::ErrorMismatchDataType, want, got, *pos),
            None,
        ),
        EvalAltResult::ErrorMismatchOutputType(want, got, pos) => (
            in_script_types(EvalAltResult::ErrorMismatchOutputType, want, got, *pos),
            None,
        ),
        EvalAltResult::ErrorDotExpr(text, _) => (quoted_types(text), None),
        other => {
            // rhai's Display appends " (line L, position C)"; the report shows it already.
            let text = other.to_string();
            let text = match other.position() {
                p if p.is_none() => text,
                p => text.trim_end_matches(&format!(" ({p})")).to_string(),
            };
            (text, None)
        }
    }
}

/// A call through an import (`router::attach(...)`) no function matched. `known` has the
/// stdlib's module functions under their usual aliases; a global function of the same name
/// (the container `attach`, `hostname`) has nothing to do with it.
fn module_call(
    full: &str,
    module: &str,
    name: &str,
    shown: &str,
    known: &[String],
) -> (String, Option<String>) {
    let qualified: Vec<String> = known.iter().filter(|k| k.contains("::")).cloned().collect();
    // Under the alias used here, or under the stdlib's usual alias ("topo::linear" is
    // documented as topology::linear).
    let doc = if qualified.iter().any(|k| k == full) {
        Some(full.to_string())
    } else {
        let same: Vec<&String> = qualified
            .iter()
            .filter(|k| k.rsplit("::").next() == Some(name))
            .collect();
        (same.len() == 1).then(|| same[0].clone())
    };
    if let Some(doc) = doc {
        return (
            format!("no variant of {full}() takes these arguments: {shown}"),
            Some(format!("`ctrsh doc {doc}` shows how to call it")),
        );
    }
    let prefix = format!("{module}::");
    let siblings: Vec<String> = qualified
        .iter()
        .filter(|k| k.starts_with(&prefix))
        .cloned()
        .collect();
    let near = nearest(full, &siblings, 3);
    let hint = (!near.is_empty()).then(|| format!("did you mean {}?", near.join(", ")));
    (
        format!("no function {full}() takes these arguments: {shown}"),
        hint,
    )
}

/// rhai's signature of a call no function matched, `bind (&str | ImmutableString | String,
/// i64)`: the name, and the argument types in script names (`string`, `int`).
fn call_signature(sig: &str) -> (&str, Vec<String>) {
    let Some((name, rest)) = sig.split_once(" (") else {
        return (sig, Vec::new());
    };
    let inner = rest.strip_suffix(')').unwrap_or(rest);
    // Split on the commas between arguments, not those inside a generic type.
    let mut args = Vec::new();
    let (mut depth, mut start) = (0i32, 0);
    for (i, c) in inner.char_indices() {
        match c {
            '<' | '(' => depth += 1,
            '>' | ')' => depth -= 1,
            ',' if depth == 0 => {
                args.push(script_type(&inner[start..i]).to_string());
                start = i + 1;
            }
            _ => {}
        }
    }
    if !inner.trim().is_empty() {
        args.push(script_type(&inner[start..]).to_string());
    }
    (name, args)
}

/// An operator (`+`, `-`, `==`, `+=` ...) rather than a named function.
fn is_operator(name: &str) -> bool {
    !name.is_empty()
        && !name
            .chars()
            .any(|c| c.is_alphanumeric() || c == '_' || c == '$')
}

/// rhai's message for a type mismatch, rebuilt with the type names a script knows and
/// without the position (the report shows it already).
fn in_script_types(
    make: fn(String, String, Position) -> EvalAltResult,
    want: &str,
    got: &str,
    pos: Position,
) -> String {
    make(script_type(want).into(), script_type(got).into(), pos)
        .to_string()
        .trim_end_matches(&format!(" ({pos})"))
        .to_string()
}

/// rhai's property messages ("... not registered for type 'i64' to handle 'f64'") with
/// script type names.
fn quoted_types(text: &str) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(i) = ["type '", "handle '"]
        .iter()
        .filter_map(|m| rest.find(m).map(|i| i + m.len()))
        .min()
    {
        let Some(end) = rest[i..].find('\'') else {
            break;
        };
        out.push_str(&rest[..i]);
        out.push_str(script_type(&rest[i..i + end]));
        rest = &rest[i + end..];
    }
    out.push_str(rest);
    out
}

/// The `n` names closest to `name` by edit distance (only reasonably close ones).
pub fn nearest(name: &str, known: &[String], n: usize) -> Vec<String> {
    let len = name.chars().count();
    let limit = if len <= 4 { 1 } else { (len / 3).max(2) };
    let mut scored: Vec<(usize, &String)> = known
        .iter()
        .map(|k| (levenshtein(name, k), k))
        .filter(|(d, k)| *d <= limit || (k.starts_with(name) && name.len() >= 3))
        .collect();
    scored.sort();
    scored.dedup_by(|a, b| a.1 == b.1);
    scored.into_iter().take(n).map(|(_, k)| k.clone()).collect()
}

/// Edit distance between two strings.
pub fn levenshtein(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            cur[j + 1] = (prev[j] + usize::from(ca != *cb))
                .min(prev[j + 1] + 1)
                .min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_names() {
        let known: Vec<String> = ["veth", "bridge", "links", "link", "mount"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        assert_eq!(nearest("vet", &known, 3), vec!["veth"]);
        assert_eq!(nearest("lnks", &known, 2), vec!["links"]);
        assert!(nearest("zzzzzzzz", &known, 3).is_empty());
    }

    #[test]
    fn rhai_type_names_are_shown_as_script_types() {
        let (name, args) = call_signature("bind (&str | ImmutableString | String, i64, f64)");
        assert_eq!(
            (name, args.join(", ").as_str()),
            ("bind", "string, int, float")
        );
        assert_eq!(call_signature("netns_nwe ()"), ("netns_nwe", vec![]));
        assert_eq!(
            quoted_types("No writable property 'x' - a setter is not registered for type 'i64' to handle 'f64'"),
            "No writable property 'x' - a setter is not registered for type 'int' to handle 'float'"
        );
        let pos = Position::new(1, 1);
        let e = EvalAltResult::ErrorFunctionNotFound(
            "- (&str | ImmutableString | String, i64)".into(),
            pos,
        );
        assert_eq!(
            message_of(&e, &[]).0,
            "the operator - does not apply to a string and an int"
        );
        let e = EvalAltResult::ErrorMismatchDataType("bool".into(), "i64".into(), pos);
        assert_eq!(
            message_of(&e, &[]).0,
            "Data type incorrect: int (expecting bool)"
        );
    }
}
