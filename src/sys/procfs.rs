//! Facts about a process from /proc/PID: its stat line (state, flags, start time), its
//! identity and capabilities (status), and its environment. Reading these never
//! changes anything; a pid that is gone is reported as ESRCH naming the pid.

use std::ffi::CString;

use nix::errno::Errno;

use super::caps::CapSet;
use super::error::{Result, SysError};

/// PF_KTHREAD in the flags field of /proc/PID/stat: a kernel thread.
pub const PF_KTHREAD: u64 = 0x0020_0000;

/// The parts of /proc/PID/stat ctrsh uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stat {
    pub pid: i32,
    /// The command name (`comm`, at most 15 bytes).
    pub comm: String,
    /// R, S, D, Z, T ...
    pub state: char,
    pub ppid: i32,
    pub flags: u64,
    /// Field 22: clock ticks after boot when the process started. With the pid and the
    /// boot id it names one process for the life of the machine (a reused pid has another).
    pub start_time: u64,
}

impl Stat {
    pub fn is_kernel_thread(&self) -> bool {
        self.flags & PF_KTHREAD != 0
    }
    pub fn is_zombie(&self) -> bool {
        self.state == 'Z' || self.state == 'X'
    }
}

fn gone(pid: i32, e: &std::io::Error, path: &str) -> SysError {
    match e.raw_os_error() {
        Some(libc::ENOENT) | Some(libc::ESRCH) => SysError::os("process", Errno::ESRCH)
            .name(format!("pid {pid}"))
            .detail("no such process")
            .hint("it has exited, or never existed: check the pid with ps (or ctrsh ps)"),
        _ => SysError::io("read", e).path(path),
    }
}

fn read(pid: i32, file: &str) -> Result<Vec<u8>> {
    let path = format!("/proc/{pid}/{file}");
    std::fs::read(&path).map_err(|e| gone(pid, &e, &path))
}

/// Parse the text of a stat file (the command name may hold spaces and parentheses: the
/// fields start after the last ')').
pub fn parse_stat(pid: i32, text: &str) -> Option<Stat> {
    let open = text.find('(')?;
    let close = text.rfind(')')?;
    let comm = text.get(open + 1..close)?.to_string();
    let f: Vec<&str> = text.get(close + 1..)?.split_whitespace().collect();
    // f[0] is field 3 (state); field N is f[N - 3].
    Some(Stat {
        pid,
        comm,
        state: f.first()?.chars().next()?,
        ppid: f.get(1)?.parse().ok()?,
        flags: f.get(6)?.parse().ok()?,
        start_time: f.get(19)?.parse().ok()?,
    })
}

/// /proc/PID/stat.
pub fn stat(pid: i32) -> Result<Stat> {
    if pid <= 0 {
        return Err(SysError::invalid(
            "process",
            "pid",
            format!("{pid} is not a process id"),
        ));
    }
    let text = String::from_utf8_lossy(&read(pid, "stat")?).into_owned();
    parse_stat(pid, &text).ok_or_else(|| {
        SysError::protocol("read", "cannot parse the stat line").path(format!("/proc/{pid}/stat"))
    })
}

/// This boot's id (/proc/sys/kernel/random/boot_id): a start time means nothing across a
/// reboot.
pub fn boot_id() -> String {
    std::fs::read_to_string("/proc/sys/kernel/random/boot_id")
        .map(|s| s.trim().to_string())
        .unwrap_or_default()
}

/// Identity and capabilities from /proc/PID/status. Ids are as the reader's user namespace
/// sees them.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Status {
    /// Real, effective, saved, filesystem.
    pub uid: [u32; 4],
    pub gid: [u32; 4],
    pub groups: Vec<u32>,
    pub cap_eff: CapSet,
    pub cap_prm: CapSet,
    pub cap_inh: CapSet,
    pub cap_bnd: CapSet,
    pub cap_amb: CapSet,
    pub no_new_privs: bool,
}

pub fn parse_status(text: &str) -> Status {
    let mut s = Status::default();
    let ids = |v: &str| -> [u32; 4] {
        let n: Vec<u32> = v
            .split_whitespace()
            .filter_map(|x| x.parse().ok())
            .collect();
        [0, 1, 2, 3].map(|i| n.get(i).copied().unwrap_or(0))
    };
    let mask = |v: &str| CapSet(u64::from_str_radix(v.trim(), 16).unwrap_or(0));
    for line in text.lines() {
        let Some((k, v)) = line.split_once(':') else {
            continue;
        };
        match k {
            "Uid" => s.uid = ids(v),
            "Gid" => s.gid = ids(v),
            "Groups" => {
                s.groups = v
                    .split_whitespace()
                    .filter_map(|x| x.parse().ok())
                    .collect()
            }
            "CapEff" => s.cap_eff = mask(v),
            "CapPrm" => s.cap_prm = mask(v),
            "CapInh" => s.cap_inh = mask(v),
            "CapBnd" => s.cap_bnd = mask(v),
            "CapAmb" => s.cap_amb = mask(v),
            "NoNewPrivs" => s.no_new_privs = v.trim() == "1",
            _ => {}
        }
    }
    s
}

/// /proc/PID/status.
pub fn status(pid: i32) -> Result<Status> {
    Ok(parse_status(&String::from_utf8_lossy(&read(
        pid, "status",
    )?)))
}

/// /proc/PID/environ: `NAME=value` entries (needs ptrace read access to the process).
pub fn environ(pid: i32) -> Result<Vec<CString>> {
    let raw = read(pid, "environ").map_err(|e| {
        if e.errno() == Some(Errno::EACCES) {
            e.hint(
                "reading another process's environment needs ptrace access to it (CAP_SYS_PTRACE)",
            )
        } else {
            e
        }
    })?;
    Ok(raw
        .split(|b| *b == 0)
        .filter(|e| !e.is_empty() && e.contains(&b'='))
        .filter_map(|e| CString::new(e).ok())
        .collect())
}

/// The children of `pid` (a scan of /proc), oldest first.
pub fn children(pid: i32) -> Vec<i32> {
    let Ok(rd) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    let mut kids: Vec<(u64, i32)> = rd
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter_map(|p| stat(p).ok())
        .filter(|s| s.ppid == pid)
        .map(|s| (s.start_time, s.pid))
        .collect();
    kids.sort_unstable();
    kids.into_iter().map(|(_, p)| p).collect()
}

/// The pid of `pid` in the innermost pid namespace it is in (the last NSpid field).
pub fn inner_pid(pid: i32) -> Option<i32> {
    let text = String::from_utf8_lossy(&read(pid, "status").ok()?).into_owned();
    text.lines()
        .find_map(|l| l.strip_prefix("NSpid:"))?
        .split_whitespace()
        .last()?
        .parse()
        .ok()
}

/// Whether `pid` is still the process that had `start_time` (not exited, not reused).
pub fn same_process(pid: i32, start_time: u64) -> bool {
    stat(pid).is_ok_and(|s| s.start_time == start_time && !s.is_zombie())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_with_odd_command_names() {
        let s = parse_stat(
            7,
            "7 (a b) (c)) S 1 7 7 0 -1 4194560 1 0 0 0 0 0 0 0 20 0 1 0 12345 0 0",
        )
        .unwrap();
        assert_eq!(s.comm, "a b) (c)");
        assert_eq!(s.state, 'S');
        assert_eq!(s.ppid, 1);
        assert_eq!(s.start_time, 12345);
        assert!(!s.is_kernel_thread());
        let me = stat(std::process::id() as i32).unwrap();
        assert!(me.start_time > 0);
        assert!(same_process(me.pid, me.start_time));
        assert!(!same_process(me.pid, me.start_time + 1));
    }

    #[test]
    fn kthreadd_is_a_kernel_thread_and_missing_pids_are_esrch() {
        if let Ok(s) = stat(2) {
            if s.comm == "kthreadd" {
                assert!(s.is_kernel_thread());
            }
        }
        let e = stat(999_999_999).unwrap_err();
        assert_eq!(e.errno(), Some(Errno::ESRCH));
        assert!(e.to_string().contains("pid 999999999"), "{e}");
        assert!(stat(0).is_err());
    }

    #[test]
    fn status_lines() {
        let s = parse_status(
            "Uid:\t1000\t1001\t1002\t1003\nGid:\t5\t6\t7\t8\nGroups:\t27 100 \nCapEff:\t0000000000003000\nCapBnd:\t000001ffffffffff\nNoNewPrivs:\t1\n",
        );
        assert_eq!(s.uid, [1000, 1001, 1002, 1003]);
        assert_eq!(s.gid[1], 6);
        assert_eq!(s.groups, vec![27, 100]);
        assert_eq!(s.cap_eff, CapSet(0x3000));
        assert!(s.no_new_privs);
    }
}
