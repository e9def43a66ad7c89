//! Reading options maps: unknown keys are rejected with the nearest known names, and each
//! value's type is checked with an error naming the key.

use rhai::{Array, Dynamic, Map};

use super::error::{arg_err, script_type, RResult};
use super::report::nearest;

/// Options of one call: the map plus the operation name for errors.
pub struct Opts<'a> {
    pub op: &'a str,
    pub map: Map,
}

impl<'a> Opts<'a> {
    /// Check that `map` only has keys from `allowed`.
    pub fn new(op: &'a str, map: Map, allowed: &[&str]) -> RResult<Opts<'a>> {
        for k in map.keys() {
            if !allowed.contains(&k.as_str()) {
                let known: Vec<String> = allowed.iter().map(|s| s.to_string()).collect();
                let near = nearest(k, &known, 3);
                let hint = if near.is_empty() {
                    format!("known options: {}", allowed.join(", "))
                } else {
                    format!("did you mean {}?", near.join(", "))
                };
                return Err(arg_err(op, k, format!("unknown option {k:?}; {hint}")));
            }
        }
        Ok(Opts { op, map })
    }

    pub fn get(&self, key: &str) -> Option<&Dynamic> {
        self.map.get(key).filter(|v| !v.is_unit())
    }

    pub fn bool(&self, key: &str, default: bool) -> RResult<bool> {
        match self.get(key) {
            None => Ok(default),
            Some(v) => v.as_bool().map_err(|t| {
                arg_err(
                    self.op,
                    key,
                    format!("expected true or false, got {}", script_type(t)),
                )
            }),
        }
    }

    pub fn str(&self, key: &str) -> RResult<Option<String>> {
        match self.get(key) {
            None => Ok(None),
            Some(v) => v.clone().into_string().map(Some).map_err(|t| {
                arg_err(
                    self.op,
                    key,
                    format!("expected a string, got {}", script_type(t)),
                )
            }),
        }
    }

    pub fn req_str(&self, key: &str) -> RResult<String> {
        self.str(key)?
            .ok_or_else(|| arg_err(self.op, key, format!("the option {key:?} is required")))
    }

    pub fn int(&self, key: &str) -> RResult<Option<i64>> {
        match self.get(key) {
            None => Ok(None),
            Some(v) => v.as_int().map(Some).map_err(|t| {
                arg_err(
                    self.op,
                    key,
                    format!("expected an integer, got {}", script_type(t)),
                )
            }),
        }
    }

    /// A u32 id (uid, gid).
    pub fn id(&self, key: &str) -> RResult<Option<u32>> {
        self.int(key)?
            .map(|v| {
                u32::try_from(v)
                    .map_err(|_| arg_err(self.op, key, format!("{v} is not a valid id")))
            })
            .transpose()
    }

    /// A file mode (0o755): an integer within 0..=0o7777.
    pub fn mode(&self, key: &str) -> RResult<Option<u32>> {
        match self.int(key)? {
            None => Ok(None),
            Some(m) if (0..=0o7777).contains(&m) => Ok(Some(m as u32)),
            Some(m) => Err(arg_err(
                self.op,
                key,
                format!("{m} is not a file mode (write modes in octal: 0o755)"),
            )),
        }
    }

    /// A list of strings: an array of strings, or one string.
    pub fn strs(&self, key: &str) -> RResult<Vec<String>> {
        match self.get(key) {
            None => Ok(Vec::new()),
            Some(v) => strs_of(self.op, key, v),
        }
    }
}

/// A string or an array of strings.
pub fn strs_of(op: &str, key: &str, v: &Dynamic) -> RResult<Vec<String>> {
    if let Some(a) = v.read_lock::<Array>() {
        return a
            .iter()
            .map(|x| {
                x.clone().into_string().map_err(|t| {
                    arg_err(
                        op,
                        key,
                        format!("expected strings in the array, got {}", script_type(t)),
                    )
                })
            })
            .collect();
    }
    v.clone().into_string().map(|s| vec![s]).map_err(|t| {
        arg_err(
            op,
            key,
            format!(
                "expected a string or an array of strings, got {}",
                script_type(t)
            ),
        )
    })
}

/// A size: a string ("64m") or a number of bytes.
pub fn size_of(op: &str, key: &str, v: &Dynamic) -> RResult<String> {
    let s = if let Ok(n) = v.as_int() {
        // Said as the number it is: the string form would quote it ("-5").
        if n <= 0 {
            return Err(arg_err(
                op,
                key,
                format!("{n} is not a size: a number of bytes must be above 0"),
            ));
        }
        n.to_string()
    } else {
        v.clone().into_string().map_err(|t| {
            arg_err(
                op,
                key,
                format!("expected a size like \"64m\", got {}", script_type(t)),
            )
        })?
    };
    crate::sys::mount::parse_size(&s).map_err(|mut e| {
        e.op = op.to_string();
        super::error::sys_err(e.name(key))
    })
}
