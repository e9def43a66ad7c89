//! Is a piece of REPL input complete? Open braces, brackets, parentheses, strings (also
//! back-tick strings with `${...}` interpolation) and block comments mean "keep reading".

/// True when `input` leaves something open and the REPL should ask for another line.
pub fn is_incomplete(input: &str) -> bool {
    let mut depth: Vec<char> = Vec::new();
    let chars: Vec<char> = input.chars().collect();
    let mut i = 0;
    // Inside a back-tick string, the brace depth at which its `${` interpolations started.
    let mut in_backtick: Vec<usize> = Vec::new();
    while i < chars.len() {
        let c = chars[i];
        let next = chars.get(i + 1).copied();
        if let Some(&start) = in_backtick.last() {
            // Inside `...` text (not in an interpolation).
            if depth.len() == start {
                match c {
                    '\\' => i += 1,
                    '`' => {
                        in_backtick.pop();
                    }
                    '$' if next == Some('{') => {
                        depth.push('{');
                        i += 1;
                    }
                    _ => {}
                }
                i += 1;
                continue;
            }
        }
        match c {
            '/' if next == Some('/') => {
                while i < chars.len() && chars[i] != '\n' {
                    i += 1;
                }
            }
            '/' if next == Some('*') => {
                i += 2;
                let mut nest = 1;
                while i < chars.len() && nest > 0 {
                    if chars[i] == '*' && chars.get(i + 1) == Some(&'/') {
                        nest -= 1;
                        i += 1;
                    } else if chars[i] == '/' && chars.get(i + 1) == Some(&'*') {
                        nest += 1;
                        i += 1;
                    }
                    i += 1;
                }
                if nest > 0 {
                    return true;
                }
                continue;
            }
            '"' | '\'' => {
                i += 1;
                while i < chars.len() && chars[i] != c {
                    if chars[i] == '\\' {
                        i += 1;
                    } else if chars[i] == '\n' && c == '"' {
                        // A newline inside "..." is an error, not an open string; let the
                        // parser say so.
                        return false;
                    }
                    i += 1;
                }
                if i >= chars.len() {
                    return true;
                }
            }
            '`' => in_backtick.push(depth.len()),
            '{' | '[' | '(' => depth.push(c),
            '}' | ']' | ')' if depth.pop().is_none() => {
                // Unbalanced closer: complete (the parser reports it).
                return false;
            }
            _ => {}
        }
        i += 1;
    }
    !depth.is_empty() || !in_backtick.is_empty()
}

#[cfg(test)]
mod tests {
    use super::is_incomplete;

    #[test]
    fn open_and_closed_inputs() {
        assert!(is_incomplete("fn f(x) {"));
        assert!(is_incomplete("let a = [1,\n 2"));
        assert!(is_incomplete("let s = `a ${ f("));
        assert!(is_incomplete("let s = `abc"));
        assert!(is_incomplete("/* comment"));
        assert!(is_incomplete("let s = \"abc"));
        assert!(!is_incomplete("fn f(x) { x + 1 }"));
        assert!(!is_incomplete("let s = \"{\"; // {"));
        assert!(!is_incomplete("let s = `a ${ 1 + 2 } b`;"));
        assert!(!is_incomplete("}"));
        assert!(!is_incomplete("let c = '{';"));
    }
}
