//! The process tree as /proc shows it: the descendants of a process, so that ending a child
//! that has no pid namespace of its own also ends what it started.

use std::collections::HashMap;

/// Every live descendant of `pid` (children, grandchildren ...), parents before children.
/// A snapshot: processes started after the scan are not in it.
pub fn descendants(pid: i32) -> Vec<i32> {
    let mut children: HashMap<i32, Vec<i32>> = HashMap::new();
    let Ok(rd) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    for e in rd.flatten() {
        let Some(p) = e.file_name().to_str().and_then(|s| s.parse::<i32>().ok()) else {
            continue;
        };
        if let Some(ppid) = parent_of(p) {
            children.entry(ppid).or_default().push(p);
        }
    }
    let mut out = Vec::new();
    let mut queue = vec![pid];
    while let Some(p) = queue.pop() {
        for &c in children.get(&p).into_iter().flatten() {
            out.push(c);
            queue.push(c);
        }
    }
    out
}

/// Stop every descendant of `pid` with SIGSTOP and return them, parents before children.
/// The caller stops `pid` itself first. A stopped process cannot fork (a signal pending
/// during fork(2) makes the kernel restart the call), so scanning again until a scan finds
/// nothing new catches every child started while the tree was being stopped: the single
/// snapshot of [`descendants`] misses a child forked between the scan and the kill.
/// Orphans already re-parented to init are out of reach (a pid namespace or a cgroup is
/// what holds a tree for sure).
pub fn stop_descendants(pid: i32) -> Vec<i32> {
    let mut stopped: Vec<i32> = Vec::new();
    loop {
        let fresh: Vec<i32> = descendants(pid)
            .into_iter()
            .filter(|p| !stopped.contains(p))
            .collect();
        if fresh.is_empty() {
            return stopped;
        }
        signal_all(&fresh, nix::sys::signal::Signal::SIGSTOP);
        stopped.extend(fresh);
    }
}

/// Send `sig` to each of `pids`, ignoring those that are gone.
pub fn signal_all(pids: &[i32], sig: nix::sys::signal::Signal) {
    for &p in pids {
        let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(p), sig);
    }
}

/// The parent pid from /proc/PID/stat (the field after the parenthesised command name,
/// which may itself contain spaces and parentheses).
fn parent_of(pid: i32) -> Option<i32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after = &stat[stat.rfind(')')? + 1..];
    after.split_whitespace().nth(1)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_grandchildren() {
        let mut c = std::process::Command::new("sh")
            .args(["-c", "sleep 5 & sleep 5; wait"])
            .spawn()
            .unwrap();
        std::thread::sleep(std::time::Duration::from_millis(200));
        let d = descendants(c.id() as i32);
        assert_eq!(d.len(), 2, "{d:?}");
        let _ = c.kill();
        signal_all(&d, nix::sys::signal::Signal::SIGKILL);
        let _ = c.wait();
    }

    #[test]
    fn stopping_catches_children_forked_during_the_scan() {
        // A shell that forks as fast as it can: a single snapshot then kill would miss the
        // newest child; stop-and-rescan must leave nothing running.
        let mut c = std::process::Command::new("sh")
            .args(["-c", "while :; do sleep 5 & done"])
            .spawn()
            .unwrap();
        std::thread::sleep(std::time::Duration::from_millis(50));
        let root = nix::unistd::Pid::from_raw(c.id() as i32);
        nix::sys::signal::kill(root, nix::sys::signal::Signal::SIGSTOP).unwrap();
        let tree = stop_descendants(c.id() as i32);
        assert!(!tree.is_empty());
        // Nothing new appears while everything is stopped.
        std::thread::sleep(std::time::Duration::from_millis(50));
        let again = descendants(c.id() as i32);
        let extra: Vec<_> = again.iter().filter(|p| !tree.contains(p)).collect();
        assert!(extra.is_empty(), "new children after stopping: {extra:?}");
        signal_all(&tree, nix::sys::signal::Signal::SIGKILL);
        let _ = c.kill();
        let _ = c.wait();
    }
}
