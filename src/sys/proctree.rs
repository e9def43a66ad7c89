//! The process tree as /proc shows it: the descendants of a process, so that ending a child
//! that has no pid namespace of its own also ends what it started.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use super::procfs;

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
        if let Ok(s) = procfs::stat(p) {
            children.entry(s.ppid).or_default().push(p);
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

/// How long [`stop_descendants`] waits, per round, for the processes it sent SIGSTOP to
/// stop. A process in a long uninterruptible sleep is not waited for beyond it.
const STOP_WAIT: Duration = Duration::from_secs(1);

/// Stop every descendant of `pid` with SIGSTOP and return them, parents before children.
/// The caller sends SIGSTOP to `pid` itself first.
///
/// SIGSTOP does not abort a fork(2) already under way (only a fatal signal does): the child
/// joins the tree when the call returns, and the parent stops after it. So each round waits
/// until the processes it signalled are really stopped (state T in /proc/PID/stat, or gone),
/// then scans again; a round that finds nothing new ends it. A single snapshot then kill
/// misses the child of a fork in flight.
/// Orphans already re-parented elsewhere are not descendants any more: the caller also
/// signals the process group (where they stay unless they left it), and a mini-init holds
/// them as a subreaper (a pid namespace or a cgroup is what holds a tree for sure).
pub fn stop_descendants(pid: i32) -> Vec<i32> {
    wait_stopped(&[pid]);
    stop_rounds(pid)
}

/// [`stop_descendants`] of the calling process, which keeps running (it does not fork
/// meanwhile): a mini-init ending the tree it holds.
pub fn stop_own_descendants() -> Vec<i32> {
    stop_rounds(std::process::id() as i32)
}

fn stop_rounds(pid: i32) -> Vec<i32> {
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
        wait_stopped(&fresh);
        stopped.extend(fresh);
    }
}

/// Wait, at most [`STOP_WAIT`], until each of `pids` is stopped (T, or t under a tracer),
/// a zombie or gone: none of them is then inside a fork.
fn wait_stopped(pids: &[i32]) {
    let deadline = Instant::now() + STOP_WAIT;
    let mut running: Vec<i32> = pids.to_vec();
    loop {
        running
            .retain(|&p| procfs::stat(p).is_ok_and(|s| !matches!(s.state, 'T' | 't' | 'Z' | 'X')));
        if running.is_empty() || Instant::now() >= deadline {
            return;
        }
        std::thread::sleep(Duration::from_micros(100));
    }
}

/// SIGKILL `pid` and everything it started: it is stopped first (its whole process group
/// when it leads one, `group`), so that nothing forks meanwhile, then its descendants are
/// stopped, and it, they and the group are killed. `signal` signals `pid` itself (through
/// its pidfd where there is one).
pub fn kill_tree(pid: i32, group: bool, signal: impl Fn(i32)) {
    use nix::sys::signal::Signal;
    if group {
        signal_group(pid, Signal::SIGSTOP);
    } else {
        signal(libc::SIGSTOP);
    }
    let tree = stop_descendants(pid);
    signal(libc::SIGKILL);
    signal_all(&tree, Signal::SIGKILL);
    if group {
        signal_group(pid, Signal::SIGKILL);
    }
}

/// Send `sig` to the process group `pgrp` (gone: nothing to do). The caller makes sure the
/// number still names the group it means: a group leader not yet reaped pins it.
pub fn signal_group(pgrp: i32, sig: nix::sys::signal::Signal) {
    let _ = nix::sys::signal::killpg(nix::unistd::Pid::from_raw(pgrp), sig);
}

/// Send `sig` to each of `pids`, ignoring those that are gone.
pub fn signal_all(pids: &[i32], sig: nix::sys::signal::Signal) {
    for &p in pids {
        let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(p), sig);
    }
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
        let c = std::process::Command::new("sh")
            .args(["-c", "while :; do sleep 5 & done"])
            .spawn()
            .unwrap();
        std::thread::sleep(std::time::Duration::from_millis(50));
        let (tree, extra) = stop_then_rescan(c);
        assert!(!tree.is_empty());
        assert!(extra.is_empty(), "new children after stopping: {extra:?}");
    }

    #[test]
    fn stopping_waits_out_a_fork_in_flight() {
        // A parent with 512 MiB of small pages takes milliseconds to fork: the SIGSTOP
        // lands mid-fork most times, and the child appears after a quick scan unless
        // stop_descendants waits for the parent to be stopped. Children exit at once and
        // stay zombies (visible) once the parent is stopped. perl is in every Debian.
        let script = format!(
            "syscall({}, {}, 1, 0, 0, 0); my $m = 'a' x (512 << 20); $| = 1; print \"ready\\n\"; \
             while (1) {{ 1 while waitpid(-1, 1) > 0; exit 0 if fork() == 0 }}",
            libc::SYS_prctl,
            libc::PR_SET_THP_DISABLE
        );
        let mut c = std::process::Command::new("perl")
            .args(["-e", &script])
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let mut line = String::new();
        let mut out = std::io::BufReader::new(c.stdout.take().unwrap());
        std::io::BufRead::read_line(&mut out, &mut line).unwrap();
        assert_eq!(line, "ready\n");
        std::thread::sleep(std::time::Duration::from_millis(30));
        let (tree, extra) = stop_then_rescan(c);
        assert!(
            extra.is_empty(),
            "children after stopping: {extra:?}, stopped {tree:?}"
        );
    }

    /// SIGSTOP `c`, stop its tree, look again a little later, then kill and reap it all.
    /// Returns the stopped tree and what the second look found beyond it.
    fn stop_then_rescan(mut c: std::process::Child) -> (Vec<i32>, Vec<i32>) {
        let root = nix::unistd::Pid::from_raw(c.id() as i32);
        nix::sys::signal::kill(root, nix::sys::signal::Signal::SIGSTOP).unwrap();
        let tree = stop_descendants(c.id() as i32);
        // Nothing new appears while everything is stopped.
        std::thread::sleep(std::time::Duration::from_millis(100));
        let again = descendants(c.id() as i32);
        signal_all(&tree, nix::sys::signal::Signal::SIGKILL);
        signal_all(&again, nix::sys::signal::Signal::SIGKILL);
        let _ = c.kill();
        let _ = c.wait();
        let extra = again.into_iter().filter(|p| !tree.contains(p)).collect();
        (tree, extra)
    }
}
