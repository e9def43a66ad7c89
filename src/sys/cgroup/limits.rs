//! One limit vocabulary for every layout, and its translation into control file writes.
//!
//! `memory: "64M", memory_swap: "0", pids: 100, cpu: "50%", cpu_weight: 100, cpuset: "0"`
//! become memory.max, memory.swap.max, pids.max, cpu.max, cpu.weight, cpuset.cpus on v2,
//! and memory.limit_in_bytes, memory.memsw.limit_in_bytes, pids.max, cpu.cfs_quota_us and
//! cpu.cfs_period_us, cpu.shares, cpuset.cpus on v1. The translation is pure: it returns the
//! writes, and the caller carries them out in the directory of the right hierarchy.

use crate::sys::error::{Result, SysError};

/// A limit value: a number, or no limit ("max").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Max {
    Max,
    Val(u64),
}

/// The CFS period every cpu quota is expressed in (the kernel's default, 100 ms).
pub const CPU_PERIOD_US: u64 = 100_000;

/// The keys of a limits map, for nearest-name suggestions.
pub const LIMIT_KEYS: &[&str] = &[
    "memory",
    "memory_swap",
    "pids",
    "cpu",
    "cpu_weight",
    "cpuset",
    "cpuset_mems",
];

/// Limits as parsed from a script's map; `None` leaves the kernel's default alone.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Limits {
    /// Bytes of memory (v2 memory.max).
    pub memory: Option<Max>,
    /// Bytes of swap on top of `memory` (v2 memory.swap.max; v1 memsw = memory + this).
    pub memory_swap: Option<Max>,
    /// Number of tasks.
    pub pids: Option<Max>,
    /// Quota in µs per [`CPU_PERIOD_US`].
    pub cpu: Option<Max>,
    /// Relative weight 1..=10000 (v2 cpu.weight; default 100).
    pub cpu_weight: Option<u64>,
    /// CPU list ("0-1,3").
    pub cpuset: Option<String>,
    /// Memory node list; on v1 copied from the parent when not given.
    pub cpuset_mems: Option<String>,
}

impl Limits {
    /// The controllers these limits need, in a fixed order.
    pub fn controllers(&self) -> Vec<&'static str> {
        let mut out = Vec::new();
        if self.memory.is_some() || self.memory_swap.is_some() {
            out.push("memory");
        }
        if self.pids.is_some() {
            out.push("pids");
        }
        if self.cpu.is_some() || self.cpu_weight.is_some() {
            out.push("cpu");
        }
        if self.cpuset.is_some() || self.cpuset_mems.is_some() {
            out.push("cpuset");
        }
        out
    }
}

/// One control file write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Write {
    /// The controller whose hierarchy holds the file.
    pub controller: &'static str,
    pub file: &'static str,
    pub value: String,
    /// Skip the write when the file does not exist (v1 memsw without swap accounting).
    pub optional: bool,
}

fn w(controller: &'static str, file: &'static str, value: impl Into<String>) -> Write {
    Write {
        controller,
        file,
        value: value.into(),
        optional: false,
    }
}

fn invalid(key: &str, detail: String, hint: &str) -> SysError {
    SysError::invalid("cgroup", key, detail).hint(hint.to_string())
}

/// A size: bytes ("4096"), a number with k, M, G or T (binary multiples; "64M", "64MiB"),
/// or "max".
pub fn parse_size(key: &str, s: &str) -> Result<Max> {
    let bad = || {
        invalid(
            key,
            format!("{s:?} is not a size"),
            "sizes look like 4096, \"512k\", \"64M\", \"1G\" or \"max\"",
        )
    };
    let t = s.trim();
    if t == "max" {
        return Ok(Max::Max);
    }
    let lower = t.to_ascii_lowercase();
    let unit = lower
        .strip_suffix("ib")
        .or_else(|| lower.strip_suffix('b'))
        .unwrap_or(&lower);
    let (num, mult) = match unit.chars().last() {
        Some('k') => (&unit[..unit.len() - 1], 1u64 << 10),
        Some('m') => (&unit[..unit.len() - 1], 1 << 20),
        Some('g') => (&unit[..unit.len() - 1], 1 << 30),
        Some('t') => (&unit[..unit.len() - 1], 1 << 40),
        Some(c) if c.is_ascii_digit() => (unit, 1),
        _ => return Err(bad()),
    };
    if num.is_empty() || !num.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    let n: u64 = num.parse().map_err(|_| bad())?;
    n.checked_mul(mult)
        .filter(|b| *b <= i64::MAX as u64)
        .map(Max::Val)
        .ok_or_else(|| {
            invalid(
                key,
                format!("{s:?} is too large"),
                "use \"max\" for no limit",
            )
        })
}

/// A count (pids): a non-negative number or "max".
pub fn parse_count(key: &str, s: &str) -> Result<Max> {
    let t = s.trim();
    if t == "max" {
        return Ok(Max::Max);
    }
    t.parse::<u64>().map(Max::Val).map_err(|_| {
        invalid(
            key,
            format!("{s:?} is not a count"),
            "give a number like 100, or \"max\"",
        )
    })
}

/// A cpu quota: "50%" of one CPU (up to many CPUs: "250%"), or "max"; returns µs per period.
pub fn parse_cpu(key: &str, s: &str) -> Result<Max> {
    let hint =
        "write the cpu limit as a share of one CPU: \"50%\", \"200%\" for two CPUs, or \"max\"";
    let t = s.trim();
    if t == "max" {
        return Ok(Max::Max);
    }
    let pct: f64 = t
        .strip_suffix('%')
        .and_then(|n| n.trim().parse().ok())
        .filter(|p: &f64| p.is_finite())
        .ok_or_else(|| invalid(key, format!("{s:?} is not a cpu limit"), hint))?;
    let quota = (pct / 100.0 * CPU_PERIOD_US as f64).round();
    // The kernel's minimum quota is 1 ms.
    if quota < 1000.0 {
        return Err(invalid(
            key,
            format!("{s:?} is below the kernel's minimum quota of 1% (1 ms per 100 ms)"),
            hint,
        ));
    }
    if quota > 1e15 {
        return Err(invalid(key, format!("{s:?} is too large"), hint));
    }
    Ok(Max::Val(quota as u64))
}

/// A v2 cpu weight, 1..=10000.
pub fn check_weight(key: &str, n: i64) -> Result<u64> {
    if (1..=10_000).contains(&n) {
        Ok(n as u64)
    } else {
        Err(invalid(
            key,
            format!("{n} is not a cpu weight"),
            "cpu weights run from 1 to 10000; the default is 100",
        ))
    }
}

/// A CPU or memory node list: "0", "0-3", "0,2-3".
pub fn parse_list(key: &str, s: &str) -> Result<String> {
    let t = s.trim();
    let item_ok = |item: &str| {
        let mut parts = item.splitn(2, '-');
        let a = parts.next().unwrap_or("");
        let num = |x: &str| !x.is_empty() && x.bytes().all(|b| b.is_ascii_digit());
        match parts.next() {
            None => num(a),
            Some(b) => num(a) && num(b) && a.parse::<u64>().ok() <= b.parse::<u64>().ok(),
        }
    };
    if t.is_empty() || !t.split(',').all(item_ok) {
        return Err(invalid(
            key,
            format!("{s:?} is not a list of CPUs or memory nodes"),
            "lists look like \"0\", \"0-3\" or \"0,2-3\"",
        ));
    }
    Ok(t.to_string())
}

fn v2_value(m: Max) -> String {
    match m {
        Max::Max => "max".into(),
        Max::Val(n) => n.to_string(),
    }
}

fn v1_bytes(m: Max) -> String {
    match m {
        Max::Max => "-1".into(),
        Max::Val(n) => n.to_string(),
    }
}

/// cgroup v1 cpu.shares for a v2 weight: the inverse of runc's shares → weight formula
/// `weight = 1 + (shares - 2) * 9999 / 262142` (shares 2..=262144, weight 1..=10000).
pub fn weight_to_shares(weight: u64) -> u64 {
    2 + (weight.clamp(1, 10_000) - 1) * 262_142 / 9_999
}

/// The writes of `l` on cgroup v2, in order.
pub fn v2_writes(l: &Limits) -> Vec<Write> {
    let mut out = Vec::new();
    if let Some(m) = l.memory {
        out.push(w("memory", "memory.max", v2_value(m)));
    }
    if let Some(s) = l.memory_swap {
        out.push(w("memory", "memory.swap.max", v2_value(s)));
    }
    if let Some(p) = l.pids {
        out.push(w("pids", "pids.max", v2_value(p)));
    }
    if let Some(c) = l.cpu {
        out.push(w(
            "cpu",
            "cpu.max",
            format!("{} {CPU_PERIOD_US}", v2_value(c)),
        ));
    }
    if let Some(wt) = l.cpu_weight {
        out.push(w("cpu", "cpu.weight", wt.to_string()));
    }
    if let Some(c) = &l.cpuset {
        out.push(w("cpuset", "cpuset.cpus", c.clone()));
    }
    if let Some(m) = &l.cpuset_mems {
        out.push(w("cpuset", "cpuset.mems", m.clone()));
    }
    out
}

/// The writes of `l` on cgroup v1, in order (memory before memory+swap, the period before
/// the quota). v1 limits memory+swap together, so `memory_swap` needs `memory`.
pub fn v1_writes(l: &Limits) -> Result<Vec<Write>> {
    let mut out = Vec::new();
    if let Some(m) = l.memory {
        out.push(w("memory", "memory.limit_in_bytes", v1_bytes(m)));
    }
    if let Some(s) = l.memory_swap {
        let memsw = match (l.memory, s) {
            (_, Max::Max) => Max::Max,
            (Some(Max::Val(m)), Max::Val(s)) => Max::Val(m.saturating_add(s)),
            (Some(Max::Max), Max::Val(_)) | (None, Max::Val(_)) => {
                return Err(invalid(
                    "memory_swap",
                    "cgroup v1 limits memory and swap together (memory.memsw.limit_in_bytes), so a swap limit needs a memory limit".into(),
                    "give memory too, e.g. #{ memory: \"64M\", memory_swap: \"0\" }",
                ))
            }
        };
        let mut write = w("memory", "memory.memsw.limit_in_bytes", v1_bytes(memsw));
        write.optional = true;
        out.push(write);
    }
    if let Some(p) = l.pids {
        out.push(w("pids", "pids.max", v2_value(p)));
    }
    if let Some(c) = l.cpu {
        let quota = match c {
            Max::Max => "-1".to_string(),
            Max::Val(q) => q.to_string(),
        };
        out.push(w("cpu", "cpu.cfs_period_us", CPU_PERIOD_US.to_string()));
        out.push(w("cpu", "cpu.cfs_quota_us", quota));
    }
    if let Some(wt) = l.cpu_weight {
        out.push(w("cpu", "cpu.shares", weight_to_shares(wt).to_string()));
    }
    if let Some(c) = &l.cpuset {
        out.push(w("cpuset", "cpuset.cpus", c.clone()));
    }
    if let Some(m) = &l.cpuset_mems {
        out.push(w("cpuset", "cpuset.mems", m.clone()));
    }
    Ok(out)
}

#[cfg(test)]
impl Limits {
    /// One value of every kind, for the translation tests here and in `cgroup::tests`.
    pub(crate) fn every_kind() -> Limits {
        Limits {
            memory: Some(Max::Val(64 << 20)),
            memory_swap: Some(Max::Val(0)),
            pids: Some(Max::Val(100)),
            cpu: Some(Max::Val(50_000)),
            cpu_weight: Some(100),
            cpuset: Some("0".into()),
            cpuset_mems: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("memory", "64M").unwrap(), Max::Val(64 << 20));
        assert_eq!(parse_size("memory", "1G").unwrap(), Max::Val(1 << 30));
        assert_eq!(parse_size("memory", "512k").unwrap(), Max::Val(512 << 10));
        assert_eq!(parse_size("memory", "64MiB").unwrap(), Max::Val(64 << 20));
        assert_eq!(parse_size("memory", "4096").unwrap(), Max::Val(4096));
        assert_eq!(parse_size("memory_swap", "0").unwrap(), Max::Val(0));
        assert_eq!(parse_size("memory", "max").unwrap(), Max::Max);
        for bad in ["64Q", "", "M", "-5", "1.5G", "99999999999T"] {
            let e = parse_size("memory", bad).unwrap_err();
            assert_eq!(e.name.as_deref(), Some("memory"), "{bad:?}");
        }
        let e = parse_size("memory", "64Q").unwrap_err();
        assert!(e.to_string().contains("\"64Q\""), "{e}");
    }

    #[test]
    fn cpu_quotas() {
        assert_eq!(parse_cpu("cpu", "50%").unwrap(), Max::Val(50_000));
        assert_eq!(parse_cpu("cpu", "250%").unwrap(), Max::Val(250_000));
        assert_eq!(parse_cpu("cpu", "12.5%").unwrap(), Max::Val(12_500));
        assert_eq!(parse_cpu("cpu", "max").unwrap(), Max::Max);
        for bad in ["50", "0%", "0.5%", "-10%", "half", "inf%"] {
            assert!(parse_cpu("cpu", bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn lists_counts_weights() {
        assert_eq!(parse_list("cpuset", "0-1,3").unwrap(), "0-1,3");
        for bad in ["", "a", "1-", "3-1", "0,,1"] {
            assert!(parse_list("cpuset", bad).is_err(), "{bad:?}");
        }
        assert_eq!(parse_count("pids", "100").unwrap(), Max::Val(100));
        assert_eq!(parse_count("pids", "max").unwrap(), Max::Max);
        assert!(parse_count("pids", "-1").is_err());
        assert!(check_weight("cpu_weight", 0).is_err());
        assert!(check_weight("cpu_weight", 10_001).is_err());
        assert_eq!(check_weight("cpu_weight", 100).unwrap(), 100);
    }

    #[test]
    fn weights_map_onto_the_whole_shares_range() {
        assert_eq!(weight_to_shares(1), 2);
        assert_eq!(weight_to_shares(10_000), 262_144);
        // runc's forward formula gives the weight back.
        for wt in [1u64, 50, 100, 1000, 9999, 10_000] {
            let s = weight_to_shares(wt);
            let back = 1 + (s - 2) * 9999 / 262_142;
            assert!(back == wt || back + 1 == wt, "{wt} -> {s} -> {back}");
        }
    }

    fn pairs(ws: &[Write]) -> Vec<(&str, &str)> {
        ws.iter().map(|w| (w.file, w.value.as_str())).collect()
    }

    #[test]
    fn v2_translation() {
        assert_eq!(
            pairs(&v2_writes(&Limits::every_kind())),
            [
                ("memory.max", "67108864"),
                ("memory.swap.max", "0"),
                ("pids.max", "100"),
                ("cpu.max", "50000 100000"),
                ("cpu.weight", "100"),
                ("cpuset.cpus", "0"),
            ]
        );
        let l = Limits {
            cpu: Some(Max::Max),
            memory: Some(Max::Max),
            ..Default::default()
        };
        assert_eq!(
            pairs(&v2_writes(&l)),
            [("memory.max", "max"), ("cpu.max", "max 100000")]
        );
        assert_eq!(
            Limits::every_kind().controllers(),
            ["memory", "pids", "cpu", "cpuset"]
        );
    }

    #[test]
    fn v1_translation() {
        let ws = v1_writes(&Limits::every_kind()).unwrap();
        assert_eq!(
            pairs(&ws),
            [
                ("memory.limit_in_bytes", "67108864"),
                ("memory.memsw.limit_in_bytes", "67108864"),
                ("pids.max", "100"),
                ("cpu.cfs_period_us", "100000"),
                ("cpu.cfs_quota_us", "50000"),
                ("cpu.shares", "2597"),
                ("cpuset.cpus", "0"),
            ]
        );
        assert!(ws[1].optional && !ws[0].optional);
        let l = Limits {
            memory: Some(Max::Max),
            memory_swap: Some(Max::Max),
            cpu: Some(Max::Max),
            ..Default::default()
        };
        assert_eq!(
            pairs(&v1_writes(&l).unwrap()),
            [
                ("memory.limit_in_bytes", "-1"),
                ("memory.memsw.limit_in_bytes", "-1"),
                ("cpu.cfs_period_us", "100000"),
                ("cpu.cfs_quota_us", "-1"),
            ]
        );
        let swap_only = Limits {
            memory_swap: Some(Max::Val(0)),
            ..Default::default()
        };
        let e = v1_writes(&swap_only).unwrap_err();
        assert_eq!(e.name.as_deref(), Some("memory_swap"));
    }
}
