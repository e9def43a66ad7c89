//! Resource limits: names for scripts, and the stack limit ctrsh raises for itself and gives
//! back to the programs it starts.

use std::sync::atomic::{AtomicU64, Ordering};

use nix::sys::resource::{getrlimit, setrlimit, Resource};

use super::error::{Result, SysError};

/// Script names of the limits (the RLIMIT_ suffix, lower case).
pub const NAMES: &[(&str, Resource)] = &[
    ("as", Resource::RLIMIT_AS),
    ("core", Resource::RLIMIT_CORE),
    ("cpu", Resource::RLIMIT_CPU),
    ("data", Resource::RLIMIT_DATA),
    ("fsize", Resource::RLIMIT_FSIZE),
    ("locks", Resource::RLIMIT_LOCKS),
    ("memlock", Resource::RLIMIT_MEMLOCK),
    ("msgqueue", Resource::RLIMIT_MSGQUEUE),
    ("nice", Resource::RLIMIT_NICE),
    ("nofile", Resource::RLIMIT_NOFILE),
    ("nproc", Resource::RLIMIT_NPROC),
    ("rss", Resource::RLIMIT_RSS),
    ("rtprio", Resource::RLIMIT_RTPRIO),
    ("rttime", Resource::RLIMIT_RTTIME),
    ("sigpending", Resource::RLIMIT_SIGPENDING),
    ("stack", Resource::RLIMIT_STACK),
];

/// One limit to set: soft and hard values (`u64::MAX` = unlimited).
#[derive(Debug, Clone, Copy)]
pub struct Limit {
    pub name: &'static str,
    pub resource: Resource,
    pub soft: u64,
    pub hard: u64,
}

/// Look a limit up by name ("nofile", also "RLIMIT_NOFILE").
pub fn parse(op: &str, name: &str) -> Result<(&'static str, Resource)> {
    let lower = name.to_ascii_lowercase();
    let bare = lower.strip_prefix("rlimit_").unwrap_or(&lower);
    NAMES
        .iter()
        .find(|(n, _)| *n == bare)
        .copied()
        .ok_or_else(|| {
            let known: Vec<&str> = NAMES.iter().map(|(n, _)| *n).collect();
            SysError::invalid(op, "rlimits", format!("unknown resource limit {name:?}"))
                .hint(format!("limits: {}", known.join(", ")))
        })
}

/// Apply a limit to this process.
pub fn set(l: &Limit) -> Result<()> {
    let v = |x: u64| {
        if x == u64::MAX {
            libc::RLIM_INFINITY
        } else {
            x
        }
    };
    let show = |x: u64| {
        if x == u64::MAX {
            "unlimited".to_string()
        } else {
            x.to_string()
        }
    };
    setrlimit(l.resource, v(l.soft), v(l.hard)).map_err(|e| {
        let err = SysError::os("setrlimit", e)
            .name(l.name)
            .detail(format!("soft {} hard {}", show(l.soft), show(l.hard)));
        if e == nix::errno::Errno::EPERM {
            err.hint("raising a hard limit needs CAP_SYS_RESOURCE (is it in the bounding set?); nofile cannot go above fs.nr_open")
        } else {
            err
        }
    })
}

/// The RLIMIT_STACK soft limit ctrsh started with (0 when it did not change it).
static ORIGINAL_STACK: AtomicU64 = AtomicU64::new(0);

/// Let deep (but bounded) script recursion use more than the default 8 MiB main stack:
/// the main thread's stack grows on demand up to RLIMIT_STACK, read at fault time.
pub fn raise_stack(want: u64) {
    if let Ok((soft, hard)) = getrlimit(Resource::RLIMIT_STACK) {
        if soft != libc::RLIM_INFINITY && soft < want {
            let new = if hard == libc::RLIM_INFINITY {
                want
            } else {
                want.min(hard)
            };
            if setrlimit(Resource::RLIMIT_STACK, new, hard).is_ok() {
                ORIGINAL_STACK.store(soft, Ordering::Relaxed);
            }
        }
    }
}

/// Give the original stack limit back (in a child about to exec another program).
pub fn restore_stack() {
    let soft = ORIGINAL_STACK.load(Ordering::Relaxed);
    if soft != 0 {
        if let Ok((_, hard)) = getrlimit(Resource::RLIMIT_STACK) {
            let _ = setrlimit(Resource::RLIMIT_STACK, soft, hard);
        }
    }
}
