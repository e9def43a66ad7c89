//! Will a network namespace outlive the shell's handles on it?
//!
//! Deleting a link costs the kernel about 15 ms (an RCU barrier per unregister batch),
//! while a dying namespace takes all its links in one batch. So when a recipe ends, ctrsh
//! deletes its links one by one only in namespaces that stay: the shell's own, those
//! pinned by a bind mount (`ip netns add` names under /run/netns), and those some other
//! process is in. Links inside a namespace nothing else holds go with it when the shell
//! lets go.
//!
//! The recipe's records of what it owns hold no namespace open (see engine/net/own.rs):
//! once the script has dropped its handles, `find` opens the namespace again by its inode
//! in the places that keep one alive without the shell (and so, exactly in the namespaces
//! whose links must still be removed at the end).
//!
//! Both lookups are cached: the mounted set is re-read only when /proc/self/mountinfo says
//! it changed (poll reports POLLPRI after a mount or unmount) or the shell changed mount
//! namespace; the process scan is reused for one second unless `invalidate` is called
//! (every networking call does), so a teardown of many links scans /proc once.

use std::cell::RefCell;
use std::fs::File;
use std::io::{Read, Seek};
use std::os::fd::AsFd;
use std::os::unix::fs::MetadataExt;
use std::rc::Rc;
use std::time::{Duration, Instant};

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};

use super::super::mountinfo;
use super::super::ns::{self, NsFd, NsKind};

struct Watch {
    mntns: u64,
    file: File,
    /// (inode, mount point) of every bind-mounted network namespace.
    netns: Vec<(u64, String)>,
}

struct Scan {
    at: Instant,
    /// (inode, pid) of one process in each network namespace, sorted by inode.
    netns: Vec<(u64, i32)>,
}

thread_local! {
    static WATCH: RefCell<Option<Watch>> = const { RefCell::new(None) };
    static SCAN: RefCell<Option<Scan>> = const { RefCell::new(None) };
}

const SCAN_TTL: Duration = Duration::from_secs(1);

/// Inodes and mount points of the network namespaces bind-mounted in mountinfo `text`.
fn mounted(text: &str) -> Vec<(u64, String)> {
    text.lines()
        .filter_map(mountinfo::parse_line)
        .filter(|m| m.fstype == "nsfs")
        .filter_map(|m| {
            let inode = m
                .root
                .strip_prefix("net:[")?
                .strip_suffix(']')?
                .parse()
                .ok()?;
            Some((inode, m.target))
        })
        .collect()
}

fn read_all(f: &mut File) -> Option<String> {
    f.rewind().ok()?;
    let mut s = String::new();
    f.read_to_string(&mut s).ok()?;
    Some(s)
}

fn changed(f: &File) -> bool {
    let mut fds = [PollFd::new(f.as_fd(), PollFlags::POLLPRI)];
    match poll(&mut fds, PollTimeout::ZERO) {
        Ok(0) => false,
        Ok(_) => fds[0]
            .revents()
            .is_some_and(|r| r.intersects(PollFlags::POLLPRI | PollFlags::POLLERR)),
        Err(_) => true,
    }
}

fn mounted_netns() -> Vec<(u64, String)> {
    let mntns = ns::inode_of(0, NsKind::Mnt).unwrap_or(0);
    WATCH.with(|w| {
        let mut w = w.borrow_mut();
        if let Some(watch) = w.as_mut().filter(|x| x.mntns == mntns) {
            if changed(&watch.file) {
                if let Some(text) = read_all(&mut watch.file) {
                    watch.netns = mounted(&text);
                }
            }
            return watch.netns.clone();
        }
        let Ok(mut file) = File::open("/proc/self/mountinfo") else {
            return Vec::new();
        };
        let netns = read_all(&mut file).map(|t| mounted(&t)).unwrap_or_default();
        *w = Some(Watch {
            mntns,
            file,
            netns: netns.clone(),
        });
        netns
    })
}

/// The network namespaces other processes are in (their main threads), each with one pid.
fn process_netns() -> Vec<(u64, i32)> {
    SCAN.with(|s| {
        let mut s = s.borrow_mut();
        if let Some(scan) = s.as_ref().filter(|x| x.at.elapsed() < SCAN_TTL) {
            return scan.netns.clone();
        }
        let me = std::process::id().to_string();
        let mut netns: Vec<(u64, i32)> = std::fs::read_dir("/proc")
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| {
                let name = e.file_name();
                let name = name.to_str()?;
                if !name.bytes().all(|b| b.is_ascii_digit()) || name == me {
                    return None;
                }
                let pid = name.parse().ok()?;
                std::fs::metadata(format!("/proc/{name}/ns/net"))
                    .ok()
                    .map(|m| (m.ino(), pid))
            })
            .collect();
        netns.sort_unstable();
        netns.dedup_by_key(|e| e.0);
        *s = Some(Scan {
            at: Instant::now(),
            netns: netns.clone(),
        });
        netns
    })
}

/// Forget the cached process scan (something may have started or entered a namespace).
pub fn invalidate() {
    SCAN.with(|s| *s.borrow_mut() = None);
}

/// Whether `ns` stays alive after the shell drops its handles: the shell is in it, a bind
/// mount pins it, or another process is in it.
pub fn outlives_shell(ns: &NsFd) -> bool {
    if ns::inode_of(0, NsKind::Net).is_ok_and(|i| i == ns.inode) {
        return true;
    }
    mount_of(ns.inode).is_some() || process_in(ns.inode).is_some()
}

fn mount_of(inode: u64) -> Option<String> {
    mounted_netns()
        .into_iter()
        .find(|(i, _)| *i == inode)
        .map(|(_, path)| path)
}

fn process_in(inode: u64) -> Option<i32> {
    let scan = process_netns();
    scan.binary_search_by_key(&inode, |e| e.0)
        .ok()
        .map(|k| scan[k].1)
}

/// Whether the namespace with `inode` is still there to be reached: a handle of the shell
/// holds it (one the netlink socket cache knows), or it outlives the shell.
pub fn reachable(inode: u64) -> bool {
    super::socket::live_handle(inode).is_some()
        || ns::inode_of(0, NsKind::Net).is_ok_and(|i| i == inode)
        || mount_of(inode).is_some()
        || process_in(inode).is_some()
}

/// A handle on the network namespace with `inode`, found again after the script dropped
/// its own: a live handle of the shell, the shell's own namespace, a bind mount of it, or a
/// process in it. None when nothing of these holds it (it is gone, or dies with the shell).
pub fn find(inode: u64) -> Option<Rc<NsFd>> {
    if let Some(ns) = super::socket::live_handle(inode) {
        return Some(ns);
    }
    if ns::inode_of(0, NsKind::Net).is_ok_and(|i| i == inode) {
        return super::here().ok();
    }
    let opened = mount_of(inode)
        .and_then(|path| NsFd::open_path(&path, NsKind::Net).ok())
        .filter(|ns| ns.inode == inode)
        .or_else(|| {
            process_in(inode)
                .and_then(|pid| NsFd::of_pid(pid, NsKind::Net).ok())
                .filter(|ns| ns.inode == inode)
        });
    opened.map(Rc::new)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nsfs_mounts_name_their_namespace() {
        let text = "46 45 0:4 net:[4026532178] /run/netns/x rw shared:2 - nsfs nsfs rw\n\
                    47 45 0:4 mnt:[4026532179] /run/mntns/y rw - nsfs nsfs rw\n\
                    22 1 0:21 / /proc rw - proc proc rw\n";
        assert_eq!(
            mounted(text),
            vec![(4026532178, "/run/netns/x".to_string())]
        );
    }

    #[test]
    fn the_shells_own_namespace_outlives_it() {
        let me = NsFd::of_pid(0, NsKind::Net).unwrap();
        assert!(outlives_shell(&me));
        assert!(reachable(me.inode));
        assert_eq!(find(me.inode).map(|n| n.inode), Some(me.inode));
    }
}
