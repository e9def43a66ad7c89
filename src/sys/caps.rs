//! Capabilities: names, and keeping a chosen set while dropping every other capability from
//! the bounding, ambient, inheritable, permitted and effective sets.

use nix::errno::Errno;

use super::error::{Result, SysError};

/// Capability names in kernel order (linux/capability.h); the index is the number.
pub const NAMES: &[&str] = &[
    "chown",
    "dac_override",
    "dac_read_search",
    "fowner",
    "fsetid",
    "kill",
    "setgid",
    "setuid",
    "setpcap",
    "linux_immutable",
    "net_bind_service",
    "net_broadcast",
    "net_admin",
    "net_raw",
    "ipc_lock",
    "ipc_owner",
    "sys_module",
    "sys_rawio",
    "sys_chroot",
    "sys_ptrace",
    "sys_pacct",
    "sys_admin",
    "sys_boot",
    "sys_nice",
    "sys_resource",
    "sys_time",
    "sys_tty_config",
    "mknod",
    "lease",
    "audit_write",
    "audit_control",
    "setfcap",
    "mac_override",
    "mac_admin",
    "syslog",
    "wake_alarm",
    "block_suspend",
    "audit_read",
    "perfmon",
    "bpf",
    "checkpoint_restore",
];

/// A set of capabilities as a bit mask (bit n = capability n).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CapSet(pub u64);

impl CapSet {
    pub fn contains(self, cap: u32) -> bool {
        cap < 64 && self.0 & (1 << cap) != 0
    }

    /// The names in the set, lower case without the `cap_` prefix.
    pub fn names(self) -> Vec<&'static str> {
        (0..NAMES.len() as u32)
            .filter(|&c| self.contains(c))
            .map(|c| NAMES[c as usize])
            .collect()
    }
}

/// Parse one capability name: "net_admin", "CAP_NET_ADMIN" and "cap_net_admin" all work.
pub fn parse(op: &str, arg: &str, name: &str) -> Result<u32> {
    let lower = name.to_ascii_lowercase();
    let bare = lower.strip_prefix("cap_").unwrap_or(&lower);
    NAMES
        .iter()
        .position(|n| *n == bare)
        .map(|i| i as u32)
        .ok_or_else(|| {
            SysError::invalid(op, arg, format!("unknown capability {name:?}")).hint(
                "names as in capabilities(7): net_admin, sys_admin, chown, ... (ctrsh doc caps)",
            )
        })
}

/// The highest capability this kernel knows (/proc/sys/kernel/cap_last_cap).
pub fn last_cap() -> u32 {
    std::fs::read_to_string("/proc/sys/kernel/cap_last_cap")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(NAMES.len() as u32 - 1)
}

#[repr(C)]
struct CapHeader {
    version: u32,
    pid: i32,
}

#[repr(C)]
#[derive(Default, Clone, Copy)]
struct CapData {
    effective: u32,
    permitted: u32,
    inheritable: u32,
}

const CAP_V3: u32 = 0x2008_0522;

/// The calling thread's (effective, permitted, inheritable) sets.
pub fn current() -> Result<(CapSet, CapSet, CapSet)> {
    let mut hdr = CapHeader {
        version: CAP_V3,
        pid: 0,
    };
    let mut data = [CapData::default(); 2];
    // SAFETY: capget writes two CapData structs (version 3) into `data`; the header is valid.
    let r = unsafe { libc::syscall(libc::SYS_capget, &mut hdr, data.as_mut_ptr()) };
    if r < 0 {
        return Err(SysError::last("capget"));
    }
    let join = |lo: u32, hi: u32| CapSet(u64::from(lo) | (u64::from(hi) << 32));
    Ok((
        join(data[0].effective, data[1].effective),
        join(data[0].permitted, data[1].permitted),
        join(data[0].inheritable, data[1].inheritable),
    ))
}

fn prctl(op: &str, option: libc::c_int, arg2: libc::c_ulong, arg3: libc::c_ulong) -> Result<()> {
    // SAFETY: the prctl options used here take integer arguments only.
    let r = unsafe { libc::prctl(option, arg2, arg3, 0 as libc::c_ulong, 0 as libc::c_ulong) };
    if r < 0 {
        return Err(SysError::last(op));
    }
    Ok(())
}

/// First half of keeping only `keep`: drop every other capability from the bounding set and
/// clear the ambient set. Needs CAP_SETPCAP, so it runs before the uid changes; with
/// `uid_change` the permitted set is kept across the coming setresuid (PR_SET_KEEPCAPS).
pub fn drop_bounding(keep: CapSet, uid_change: bool) -> Result<()> {
    for cap in 0..=last_cap() {
        if keep.contains(cap) {
            continue;
        }
        // SAFETY: PR_CAPBSET_READ/PR_CAPBSET_DROP take a capability number.
        let present = unsafe { libc::prctl(libc::PR_CAPBSET_READ, cap as libc::c_ulong, 0, 0, 0) };
        if present == 1 {
            prctl("drop capability", libc::PR_CAPBSET_DROP, cap.into(), 0).map_err(|e| {
                e.name(NAMES.get(cap as usize).copied().unwrap_or("?"))
                    .hint("dropping from the bounding set needs CAP_SETPCAP")
            })?;
        }
    }
    match prctl(
        "clear ambient capabilities",
        libc::PR_CAP_AMBIENT,
        libc::PR_CAP_AMBIENT_CLEAR_ALL as libc::c_ulong,
        0,
    ) {
        Err(e) if e.errno() == Some(Errno::EINVAL) => {} // kernel without ambient caps
        r => r?,
    }
    if uid_change {
        prctl("keep capabilities", libc::PR_SET_KEEPCAPS, 1, 0)?;
    }
    Ok(())
}

/// Second half, after the uid/gid change: set effective, permitted and inheritable to `keep`
/// and raise the ambient set so a non-root payload keeps them across execve.
pub fn apply(keep: CapSet) -> Result<()> {
    apply_state(&CapState {
        eff: keep,
        prm: keep,
        inh: keep,
        bnd: keep,
        amb: keep,
    })
}

/// Every capability set of a process, as another process has them (attach takes the
/// target's).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CapState {
    pub eff: CapSet,
    pub prm: CapSet,
    pub inh: CapSet,
    pub bnd: CapSet,
    pub amb: CapSet,
}

fn capset_sets(eff: CapSet, prm: CapSet, inh: CapSet) -> Result<()> {
    let mut hdr = CapHeader {
        version: CAP_V3,
        pid: 0,
    };
    let part = |s: CapSet, hi: bool| if hi { (s.0 >> 32) as u32 } else { s.0 as u32 };
    let data = [false, true].map(|hi| CapData {
        effective: part(eff, hi),
        permitted: part(prm, hi),
        inheritable: part(inh, hi),
    });
    // SAFETY: capset reads the header and two CapData structs, all valid for the call.
    let r = unsafe { libc::syscall(libc::SYS_capset, &mut hdr, data.as_ptr()) };
    if r < 0 {
        let err = SysError::last("capset").detail(format!(
            "effective {:?}, permitted {:?}",
            eff.names(),
            prm.names()
        ));
        // Name what is missing: a capability can only be kept if the process has it.
        if let Ok((_, have, _)) = current() {
            let missing = CapSet(prm.0 & !have.0);
            if missing.0 != 0 {
                return Err(err.name("caps").detail(format!(
                    "{:?} not held (not in the bounding set this process started with); a new \
                     user namespace would have every capability",
                    missing.names()
                )));
            }
        }
        return Err(err);
    }
    Ok(())
}

/// After [`drop_bounding`]`(state.bnd, ..)` and the uid/gid change: set effective,
/// permitted and inheritable exactly to `state`'s and raise its ambient set.
pub fn apply_state(state: &CapState) -> Result<()> {
    capset_sets(state.eff, state.prm, state.inh)?;
    for cap in 0..=last_cap() {
        if state.amb.contains(cap) {
            prctl(
                "raise ambient capability",
                libc::PR_CAP_AMBIENT,
                libc::PR_CAP_AMBIENT_RAISE as libc::c_ulong,
                cap.into(),
            )
            .map_err(|e| e.name(NAMES.get(cap as usize).copied().unwrap_or("?")))?;
        }
    }
    Ok(())
}

/// Set no_new_privs: execve can never grant privileges again (setuid bits, file caps).
pub fn set_no_new_privs() -> Result<()> {
    prctl("no_new_privs", libc::PR_SET_NO_NEW_PRIVS, 1, 0)
}

/// The capability sets of process `pid` from /proc/PID/status (CapEff, CapPrm, CapInh,
/// CapBnd, CapAmb), as masks.
#[cfg(test)]
pub fn of_pid(pid: i32) -> Result<Vec<(String, CapSet)>> {
    let path = format!("/proc/{pid}/status");
    let text = std::fs::read_to_string(&path).map_err(|e| SysError::io("read", &e).path(&path))?;
    Ok(text
        .lines()
        .filter_map(|l| {
            let (k, v) = l.split_once(':')?;
            let k = k.strip_prefix("Cap")?;
            let mask = u64::from_str_radix(v.trim(), 16).ok()?;
            Some((k.to_string(), CapSet(mask)))
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_parse_in_every_spelling() {
        assert_eq!(parse("t", "caps", "net_admin").unwrap(), 12);
        assert_eq!(parse("t", "caps", "CAP_NET_ADMIN").unwrap(), 12);
        assert_eq!(parse("t", "caps", "cap_sys_admin").unwrap(), 21);
        assert_eq!(parse("t", "caps", "checkpoint_restore").unwrap(), 40);
        let e = parse("spawn", "caps", "net_admn").unwrap_err();
        assert!(e.to_string().contains("unknown capability \"net_admn\""));
        assert_eq!(CapSet((1 << 12) | 1).names(), vec!["chown", "net_admin"]);
    }

    #[test]
    fn own_sets_are_readable() {
        let (eff, prm, _) = current().unwrap();
        assert_eq!(eff.0 & !prm.0, 0, "effective is a subset of permitted");
        let sets = of_pid(std::process::id() as i32).unwrap();
        assert!(sets.iter().any(|(k, _)| k == "Bnd"));
    }
}
