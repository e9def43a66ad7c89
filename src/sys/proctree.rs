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
        for p in d {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(p),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
        let _ = c.wait();
    }
}
