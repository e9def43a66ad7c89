//! Named containers: `spawn(#{ name: "web", ... })` records the container under
//! `<run dir>/<name>/state` so that `ctrsh ps`, `ctrsh stop` and `ctrsh attach` find it
//! later, from another ctrsh process.
//!
//! The run dir is `$CTRSH_RUN_DIR`, else `/run/ctrsh` for root, else
//! `$XDG_RUNTIME_DIR/ctrsh`, else `/tmp/ctrsh-UID`.
//!
//! The state file is `key=value` lines (version, name, pid, start_time, boot_id, created,
//! cmd). A record names a live container only while `pid`'s start time (field 22 of
//! /proc/PID/stat) and the boot id still match: a reused pid is never mistaken for it.
//! A name is claimed atomically with mkdir(2); a claim whose owner died, or a record of a
//! container that exited, is stale and is removed by whoever finds it.

use std::io::Write;
use std::path::{Path, PathBuf};

use nix::errno::Errno;

use super::error::{Result, SysError};
use super::procfs;

/// The longest name accepted.
pub const MAX_NAME: usize = 64;

/// Where container state lives.
pub fn run_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("CTRSH_RUN_DIR").filter(|d| !d.is_empty()) {
        return PathBuf::from(d);
    }
    if nix::unistd::geteuid().is_root() {
        return PathBuf::from("/run/ctrsh");
    }
    if let Some(d) = std::env::var_os("XDG_RUNTIME_DIR").filter(|d| !d.is_empty()) {
        return Path::new(&d).join("ctrsh");
    }
    PathBuf::from(format!("/tmp/ctrsh-{}", nix::unistd::geteuid()))
}

/// A container name: 1..=64 of `A-Z a-z 0-9 _ . -`, not starting with '.' or '-', and not
/// all digits (a number is a pid wherever a target is named).
pub fn validate(op: &str, name: &str) -> Result<()> {
    let bad = |why: &str| {
        Err(SysError::invalid(op, "name", format!("{name:?} {why}"))
            .hint("names are 1 to 64 letters, digits, '_', '.' or '-', like \"web-1\""))
    };
    if name.is_empty() {
        return bad("is empty");
    }
    if name.len() > MAX_NAME {
        return bad("is longer than 64 bytes");
    }
    if let Some(c) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-')))
    {
        return bad(&format!("contains {c:?}"));
    }
    if name.starts_with('.') || name.starts_with('-') {
        return bad("starts with '.' or '-'");
    }
    if name.bytes().all(|b| b.is_ascii_digit()) {
        return bad("is all digits (that would be a pid)");
    }
    Ok(())
}

/// What the state file holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub name: String,
    pub pid: i32,
    pub start_time: u64,
    pub boot_id: String,
    /// Seconds since the epoch.
    pub created: u64,
    /// The command, for display.
    pub cmd: String,
}

impl Record {
    fn to_text(&self) -> String {
        format!(
            "version=1\nname={}\npid={}\nstart_time={}\nboot_id={}\ncreated={}\ncmd={}\n",
            self.name,
            self.pid,
            self.start_time,
            self.boot_id,
            self.created,
            self.cmd.replace('\n', " ")
        )
    }

    fn parse(text: &str) -> Option<Record> {
        let get = |k: &str| {
            text.lines()
                .find_map(|l| l.strip_prefix(k)?.strip_prefix('='))
                .map(str::to_string)
        };
        Some(Record {
            name: get("name")?,
            pid: get("pid")?.parse().ok()?,
            start_time: get("start_time")?.parse().ok()?,
            boot_id: get("boot_id").unwrap_or_default(),
            created: get("created").and_then(|c| c.parse().ok()).unwrap_or(0),
            cmd: get("cmd").unwrap_or_default(),
        })
    }

    /// The process's state letter (R, S, T ...) while the record names a live process.
    pub fn live_state(&self) -> Option<char> {
        if self.boot_id != procfs::boot_id() {
            return None;
        }
        let st = procfs::stat(self.pid).ok()?;
        (st.start_time == self.start_time && !st.is_zombie()).then_some(st.state)
    }

    pub fn alive(&self) -> bool {
        self.live_state().is_some()
    }
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

fn dir_of(name: &str) -> PathBuf {
    run_dir().join(name)
}

fn io(op: &str, path: &Path, e: std::io::Error) -> SysError {
    let err = SysError::io(op, &e).path(path);
    if e.raw_os_error() == Some(libc::EACCES) {
        err.hint("the state directory is not writable: run as root, or set CTRSH_RUN_DIR")
    } else {
        err
    }
}

/// Read the record of `name` (None when there is none or it is unreadable).
fn read(name: &str) -> Option<Record> {
    let text = std::fs::read_to_string(dir_of(name).join("state")).ok()?;
    Record::parse(&text)
}

fn write(rec: &Record) -> Result<()> {
    let dir = dir_of(&rec.name);
    let tmp = dir.join("state.tmp");
    let mut f = std::fs::File::create(&tmp).map_err(|e| io("write state", &tmp, e))?;
    f.write_all(rec.to_text().as_bytes())
        .map_err(|e| io("write state", &tmp, e))?;
    drop(f);
    let dst = dir.join("state");
    std::fs::rename(&tmp, &dst).map_err(|e| io("write state", &dst, e))
}

/// Remove a name's state directory.
fn remove_dir(name: &str) {
    let _ = std::fs::remove_dir_all(dir_of(name));
}

/// A name taken for a container that is being started. Dropping it without
/// [`Claim::commit`] gives the name back.
pub struct Claim {
    name: String,
    cmd: String,
    committed: bool,
}

/// Claim `name` for a container running `cmd`. A name held by a live container (or one
/// being started) is an error naming it; stale state is removed and the name reused.
pub fn claim(op: &str, name: &str, cmd: &str) -> Result<Claim> {
    validate(op, name)?;
    let base = run_dir();
    std::fs::create_dir_all(&base).map_err(|e| io("mkdir", &base, e))?;
    let dir = base.join(name);
    for _ in 0..3 {
        match std::fs::create_dir(&dir) {
            Ok(()) => {
                // Held by this ctrsh until the container's pid is known.
                let me = procfs::stat(std::process::id() as i32)?;
                let claim = Claim {
                    name: name.to_string(),
                    cmd: cmd.to_string(),
                    committed: false,
                };
                write(&Record {
                    name: name.to_string(),
                    pid: me.pid,
                    start_time: me.start_time,
                    boot_id: procfs::boot_id(),
                    created: now(),
                    cmd: format!("(starting) {cmd}"),
                })?;
                return Ok(claim);
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                match read(name) {
                    Some(rec) if rec.alive() => {
                        return Err(SysError::os(op, Errno::EEXIST)
                            .name(name)
                            .detail(format!(
                                "the name is in use by pid {} ({})",
                                rec.pid, rec.cmd
                            ))
                            .hint(format!(
                                "pick another name, or stop it first: ctrsh stop {name}"
                            )));
                    }
                    Some(_) => remove_dir(name),
                    None => {
                        // No readable record: a claim being written right now, or debris.
                        let young = std::fs::metadata(&dir)
                            .and_then(|m| m.modified())
                            .ok()
                            .and_then(|t| t.elapsed().ok())
                            .is_some_and(|a| a.as_secs() < 5);
                        if young {
                            return Err(SysError::os(op, Errno::EBUSY)
                                .name(name)
                                .detail("another ctrsh is starting a container of that name"));
                        }
                        remove_dir(name);
                    }
                }
            }
            Err(e) => return Err(io("mkdir", &dir, e)),
        }
    }
    Err(SysError::os(op, Errno::EBUSY)
        .name(name)
        .detail("the name's state keeps changing under us"))
}

impl Claim {
    /// Record the started container.
    pub fn commit(mut self, pid: i32) -> Result<Record> {
        let st = procfs::stat(pid)?;
        let rec = Record {
            name: self.name.clone(),
            pid,
            start_time: st.start_time,
            boot_id: procfs::boot_id(),
            created: now(),
            cmd: self.cmd.clone(),
        };
        write(&rec)?;
        self.committed = true;
        Ok(rec)
    }
}

impl Drop for Claim {
    fn drop(&mut self) {
        if !self.committed {
            remove_dir(&self.name);
        }
    }
}

/// The live container called `name`; stale state of that name is removed on the way.
pub fn lookup(name: &str) -> Option<Record> {
    if validate("lookup", name).is_err() {
        return None;
    }
    let rec = read(name)?;
    if rec.alive() {
        Some(rec)
    } else {
        forget(&rec);
        None
    }
}

/// Remove the state of `rec`, unless the name has since been taken by another container.
pub fn forget(rec: &Record) {
    if read(&rec.name).is_some_and(|cur| cur.pid == rec.pid && cur.start_time == rec.start_time) {
        remove_dir(&rec.name);
    }
}

/// Every recorded container: (record, alive). Records that cannot be read are skipped.
pub fn list() -> Vec<(Record, bool)> {
    let Ok(rd) = std::fs::read_dir(run_dir()) else {
        return Vec::new();
    };
    let mut out: Vec<(Record, bool)> = rd
        .flatten()
        .filter_map(|e| read(&e.file_name().to_string_lossy()))
        .map(|r| {
            let alive = r.alive();
            (r, alive)
        })
        .collect();
    out.sort_by(|a, b| a.0.name.cmp(&b.0.name));
    out
}

/// How `stop` ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stopped {
    /// It exited after SIGTERM.
    Terminated,
    /// It was still running after the grace period and got SIGKILL.
    Killed,
    /// It was not running (its state was stale).
    NotRunning,
}

/// Stop the container of `rec`: SIGTERM, up to `grace` for it to exit, then SIGKILL. Its
/// state is removed afterwards. Signals go through a pidfd checked against the recorded
/// start time, so a reused pid is never signalled.
///
/// What it started goes with it. A pid namespace ends with its init; a mini-init without
/// one ends the tree it holds as a subreaper. Beyond that, the process group the
/// container leads (every process ctrsh starts leads one) is killed once the container is
/// gone: the children and orphans of a payload without init, as long as they stayed in the
/// group. At the SIGKILL stage the descendants found in /proc are stopped and killed too.
/// A process that left the group and whose parent died (a daemon) is out of reach.
pub fn stop(rec: &Record, grace: std::time::Duration) -> Result<Stopped> {
    let fd = match super::pidfd::open(rec.pid) {
        Ok(fd) if rec.alive() => fd,
        _ => {
            forget(rec);
            return Ok(Stopped::NotRunning);
        }
    };
    // Asked while it runs (checked again through the pidfd), so the number names its group.
    // SAFETY: getpgid only asks.
    let group = unsafe { libc::getpgid(rec.pid) } == rec.pid
        && !super::wait::exited(std::os::fd::AsFd::as_fd(&fd), 0).unwrap_or(true);
    let wait = |ms: u64| -> Result<bool> {
        let end = std::time::Instant::now() + std::time::Duration::from_millis(ms);
        loop {
            let left = end.saturating_duration_since(std::time::Instant::now());
            match super::wait::exited(fd.as_fd(), left.as_millis().min(i32::MAX as u128) as i32) {
                Ok(done) if done || left.is_zero() => return Ok(done),
                Ok(_) => {}
                Err(e) if e.errno() == Some(Errno::EINTR) => {
                    if let Some(sig) = super::signals::take() {
                        return Err(super::signals::interrupted_error("stop").name(sig.as_str()));
                    }
                }
                Err(e) => return Err(e),
            }
        }
    };
    use std::os::fd::AsFd;
    let outcome = match super::pidfd::send_signal(fd.as_fd(), libc::SIGTERM) {
        Err(_) => Stopped::NotRunning,
        Ok(()) if wait(grace.as_millis() as u64)? => Stopped::Terminated,
        Ok(()) => {
            super::proctree::kill_tree(rec.pid, group, |sig| {
                let _ = super::pidfd::send_signal(fd.as_fd(), sig);
            });
            wait(5000)?;
            Stopped::Killed
        }
    };
    if group {
        super::proctree::signal_group(rec.pid, nix::sys::signal::Signal::SIGKILL);
    }
    forget(rec);
    Ok(outcome)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_checked() {
        for ok in ["web", "web-1", "a.b_c", "1a", "x".repeat(64).as_str()] {
            validate("t", ok).unwrap();
        }
        for (bad, why) in [
            ("", "empty"),
            ("a/b", "'/'"),
            ("..", "starts with '.'"),
            ("../x", "'/'"),
            ("-x", "starts with"),
            ("123", "all digits"),
            ("a b", "' '"),
            (&"x".repeat(65), "longer"),
        ] {
            let e = validate("spawn", bad).unwrap_err().to_string();
            assert!(e.contains(why), "{bad:?}: {e}");
        }
    }

    #[test]
    fn records_round_trip() {
        let r = Record {
            name: "web".into(),
            pid: 42,
            start_time: 99,
            boot_id: "b".into(),
            created: 7,
            cmd: "sleep 100".into(),
        };
        assert_eq!(Record::parse(&r.to_text()), Some(r));
        assert_eq!(Record::parse("name=x\n"), None);
    }
}
