//! User and group id maps of a user namespace (`/proc/PID/uid_map`, `gid_map`, `setgroups`).
//!
//! A map is parsed and checked completely before anything is written: the kernel accepts a
//! map only once per namespace, so a half-written or rejected map cannot be retried.

use std::fmt;

use super::error::{Result, SysError};

/// The kernel's limit on lines in one map (since Linux 4.15).
const MAX_LINES: usize = 340;

/// One line of a map: `count` ids starting at `inside` map to ids starting at `outside`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Range {
    pub inside: u32,
    pub outside: u32,
    pub count: u32,
}

/// A whole uid or gid map.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct IdMap {
    pub ranges: Vec<Range>,
}

impl IdMap {
    /// The one-id map `0 <outside> 1` (root inside is `outside` outside), which needs no
    /// privilege when `outside` is the writer's own id.
    pub fn root_to(outside: u32) -> IdMap {
        IdMap {
            ranges: vec![Range {
                inside: 0,
                outside,
                count: 1,
            }],
        }
    }

    /// Parse the /proc text form: one `inside outside count` triple per line (blank lines
    /// and extra spaces are fine). `arg` names the argument in errors.
    pub fn parse(op: &str, arg: &str, text: &str) -> Result<IdMap> {
        let mut rows = Vec::new();
        for (n, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() {
                continue;
            }
            let nums: Vec<&str> = line.split_whitespace().collect();
            if nums.len() != 3 {
                return Err(SysError::invalid(
                    op,
                    arg,
                    format!(
                        "line {} {line:?} is not \"inside outside count\" (e.g. \"0 100000 65536\")",
                        n + 1
                    ),
                ));
            }
            let mut v = [0i64; 3];
            for (slot, s) in v.iter_mut().zip(&nums) {
                *slot = s.parse().unwrap_or(-1);
                if *slot < 0 {
                    return Err(SysError::invalid(
                        op,
                        arg,
                        format!("line {}: {s:?} is not an id (0..=4294967295)", n + 1),
                    ));
                }
            }
            rows.push((format!("line {}", n + 1), v));
        }
        Self::from_rows(op, arg, rows)
    }

    /// Build from `[inside, outside, count]` triples already split by the caller.
    pub fn from_triples(op: &str, arg: &str, triples: &[[i64; 3]]) -> Result<IdMap> {
        let rows = triples
            .iter()
            .enumerate()
            .map(|(n, t)| (format!("entry {}", n + 1), *t))
            .collect();
        Self::from_rows(op, arg, rows)
    }

    /// Convert labelled rows to ranges (each number must be a u32) and validate the map.
    fn from_rows(op: &str, arg: &str, rows: Vec<(String, [i64; 3])>) -> Result<IdMap> {
        let mut ranges = Vec::new();
        for (label, t) in rows {
            let mut v = [0u32; 3];
            for (slot, x) in v.iter_mut().zip(t) {
                *slot = u32::try_from(x).map_err(|_| {
                    SysError::invalid(
                        op,
                        arg,
                        format!("{label}: {x} is not an id (0..=4294967295)"),
                    )
                })?;
            }
            ranges.push(Range {
                inside: v[0],
                outside: v[1],
                count: v[2],
            });
        }
        let map = IdMap { ranges };
        map.validate(op, arg)?;
        Ok(map)
    }

    /// The rules the kernel applies, checked up front so the error names the problem:
    /// 1..=340 lines, non-zero counts, no range past 2^32, no overlap inside or outside.
    pub fn validate(&self, op: &str, arg: &str) -> Result<()> {
        let bad = |d: String| Err(SysError::invalid(op, arg, d));
        if self.ranges.is_empty() {
            return bad("the map is empty".into());
        }
        if self.ranges.len() > MAX_LINES {
            return bad(format!(
                "{} lines; the kernel allows at most {MAX_LINES}",
                self.ranges.len()
            ));
        }
        for (i, r) in self.ranges.iter().enumerate() {
            if r.count == 0 {
                return bad(format!("entry {} ({r}) maps zero ids", i + 1));
            }
            if u64::from(r.inside) + u64::from(r.count) > 1 << 32
                || u64::from(r.outside) + u64::from(r.count) > 1 << 32
            {
                return bad(format!("entry {} ({r}) runs past id 4294967295", i + 1));
            }
        }
        for (i, a) in self.ranges.iter().enumerate() {
            for (j, b) in self.ranges.iter().enumerate().skip(i + 1) {
                if overlaps(a.inside, a.count, b.inside, b.count) {
                    return bad(format!(
                        "entries {} ({a}) and {} ({b}) overlap inside the namespace",
                        i + 1,
                        j + 1
                    ));
                }
                if overlaps(a.outside, a.count, b.outside, b.count) {
                    return bad(format!(
                        "entries {} ({a}) and {} ({b}) overlap outside the namespace",
                        i + 1,
                        j + 1
                    ));
                }
            }
        }
        Ok(())
    }

    /// The id outside that `inside` maps to, if it is mapped.
    #[cfg(test)]
    pub fn to_outside(&self, inside: u32) -> Option<u32> {
        self.ranges.iter().find_map(|r| {
            (inside >= r.inside && u64::from(inside) < u64::from(r.inside) + u64::from(r.count))
                .then(|| r.outside + (inside - r.inside))
        })
    }

    /// The id inside that `outside` maps from, if any range covers it.
    pub fn to_inside(&self, outside: u32) -> Option<u32> {
        self.ranges.iter().find_map(|r| {
            (outside >= r.outside && u64::from(outside) < u64::from(r.outside) + u64::from(r.count))
                .then(|| r.inside + (outside - r.outside))
        })
    }

    /// The text the kernel wants, one line per range.
    pub fn to_proc(&self) -> String {
        self.ranges.iter().map(|r| format!("{r}\n")).collect()
    }
}

impl fmt::Display for Range {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {} {}", self.inside, self.outside, self.count)
    }
}

fn overlaps(a: u32, an: u32, b: u32, bn: u32) -> bool {
    let (a, an, b, bn) = (u64::from(a), u64::from(an), u64::from(b), u64::from(bn));
    a < b + bn && b < a + an
}

/// Which map file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Which {
    Uid,
    Gid,
}

impl Which {
    fn file(self) -> &'static str {
        match self {
            Which::Uid => "uid_map",
            Which::Gid => "gid_map",
        }
    }
}

/// Write a map for process `pid` (its user namespace). One write, as the kernel requires.
pub fn write_map(pid: i32, which: Which, map: &IdMap) -> Result<()> {
    let path = format!("/proc/{pid}/{}", which.file());
    std::fs::write(&path, map.to_proc()).map_err(|e| {
        let err = SysError::io(format!("write {}", which.file()), &e)
            .path(&path)
            .detail(format!("map {:?}", map.to_proc().trim_end()));
        match e.raw_os_error() {
            Some(libc::EPERM) => err.hint(
                "without CAP_SETUID/CAP_SETGID a map may only hold one id, your own (e.g. \"0 1000 1\"), and a gid map needs setgroups \"deny\"",
            ),
            Some(libc::EINVAL) => err.hint("the kernel rejected the map: ranges overlap, exceed the outer namespace's ids, or the map was already written"),
            _ => err,
        }
    })
}

/// Write `/proc/PID/setgroups` ("allow" or "deny"). Must come before the gid map.
pub fn write_setgroups(pid: i32, allow: bool) -> Result<()> {
    let path = format!("/proc/{pid}/setgroups");
    let v = if allow { "allow" } else { "deny" };
    std::fs::write(&path, v).map_err(|e| SysError::io("write setgroups", &e).path(&path).detail(v))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_proc_text_and_triples() {
        let m = IdMap::parse("t", "uid_map", "0 100000 65536\n\n 65536  1000 1 \n").unwrap();
        assert_eq!(m.ranges.len(), 2);
        assert_eq!(m.to_proc(), "0 100000 65536\n65536 1000 1\n");
        assert_eq!(m.to_outside(0), Some(100000));
        assert_eq!(m.to_outside(65536), Some(1000));
        assert_eq!(m.to_outside(65537), None);
        assert_eq!(m.to_inside(100005), Some(5));
        assert_eq!(m.to_inside(1000), Some(65536));
        assert_eq!(m.to_inside(99999), None);
        let t = IdMap::from_triples("t", "uid_map", &[[0, 1000, 1]]).unwrap();
        assert_eq!(t, IdMap::root_to(1000));
    }

    #[test]
    fn rejects_malformed_and_overlapping_maps() {
        let err = |s: &str| IdMap::parse("spawn", "uid_map", s).unwrap_err().to_string();
        assert!(err("").contains("empty"));
        assert!(err("0 100000").contains("inside outside count"));
        assert!(err("0 x 1").contains("\"x\" is not an id"));
        assert!(err("0 -1 1").contains("not an id"));
        assert!(err("0 100000 0").contains("zero ids"));
        assert!(err("0 4294967295 2").contains("past id"));
        assert!(err("0 100000 10\n5 200000 10").contains("overlap inside"));
        assert!(err("0 100000 10\n10 100005 10").contains("overlap outside"));
        let many: String = (0..341).map(|i| format!("{i} {} 1\n", 1000 + i)).collect();
        assert!(err(&many).contains("at most 340"));
        assert!(IdMap::from_triples("t", "gid_map", &[[0, -5, 1]]).is_err());
        IdMap::parse("t", "m", "0 100000 10\n10 100010 10").unwrap();
    }
}
