//! Which cgroup hierarchies exist and where.
//!
//! The layout is detected as runc and youki do: statfs(/sys/fs/cgroup) is cgroup2 on a
//! unified machine; a tmpfs there holds v1 hierarchies, plus a v2 tree at
//! /sys/fs/cgroup/unified on a hybrid machine. The v1 hierarchies and their controllers come
//! from mountinfo, the shell's own cgroup in each from /proc/self/cgroup. Everything else
//! takes a [`Hierarchies`] value, so tests describe a fake cgroupfs in a temporary directory.

use std::path::{Path, PathBuf};

use nix::sys::statfs::{statfs, FsType, CGROUP2_SUPER_MAGIC, TMPFS_MAGIC};

use super::file;
use crate::sys::error::{Result, SysError};
use crate::sys::mountinfo::{self, MountEntry};

/// Where cgroup filesystems are mounted.
pub const CGROUP_ROOT: &str = "/sys/fs/cgroup";
/// The v2 tree of a hybrid machine.
pub const HYBRID_UNIFIED: &str = "/sys/fs/cgroup/unified";
/// Files a cgroup v2 delegatee needs to own, beyond the directory (kernel ≥ 5.x lists them).
pub const DELEGATE_LIST: &str = "/sys/kernel/cgroup/delegate";

/// Every controller name the kernel knows, v1 and v2 spellings (v1 "blkio" is v2 "io").
pub const KNOWN_CONTROLLERS: &[&str] = &[
    "cpuset",
    "cpu",
    "cpuacct",
    "io",
    "blkio",
    "memory",
    "devices",
    "freezer",
    "net_cls",
    "perf_event",
    "net_prio",
    "hugetlb",
    "pids",
    "rdma",
    "misc",
    "debug",
];

/// How the cgroup filesystems of the machine are arranged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// One cgroup2 hierarchy at /sys/fs/cgroup (most current distributions).
    Unified,
    /// v1 hierarchies under /sys/fs/cgroup/<controller>, and a v2 tree at
    /// /sys/fs/cgroup/unified (systemd's hybrid mode).
    Hybrid,
    /// v1 hierarchies only.
    Legacy,
}

impl Layout {
    pub fn name(self) -> &'static str {
        match self {
            Layout::Unified => "unified",
            Layout::Hybrid => "hybrid",
            Layout::Legacy => "legacy",
        }
    }
}

/// The layout from the filesystem types of /sys/fs/cgroup and /sys/fs/cgroup/unified.
pub fn classify(root: FsType, unified: Option<FsType>, has_v1: bool) -> Option<Layout> {
    if root == CGROUP2_SUPER_MAGIC {
        Some(Layout::Unified)
    } else if root == TMPFS_MAGIC && unified == Some(CGROUP2_SUPER_MAGIC) {
        Some(Layout::Hybrid)
    } else if root == TMPFS_MAGIC && has_v1 {
        Some(Layout::Legacy)
    } else {
        None
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Version {
    V1,
    V2,
}

/// One mounted hierarchy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hierarchy {
    pub version: Version,
    /// Where it is mounted.
    pub mount: PathBuf,
    /// The cgroup the mount shows as its root ("/" unless only a subtree is mounted).
    pub root: String,
    /// v1: the controllers bound to it; v2: those its root offers (cgroup.controllers).
    pub controllers: Vec<String>,
    /// A v1 hierarchy without controllers has a name (`name=systemd`).
    pub name: Option<String>,
}

impl Hierarchy {
    /// The name scripts use for it: "unified", "memory", "cpu,cpuacct", "systemd".
    pub fn key(&self) -> String {
        match (self.version, &self.name) {
            (Version::V2, _) => "unified".into(),
            (Version::V1, Some(n)) if self.controllers.is_empty() => n.clone(),
            (Version::V1, _) => self.controllers.join(","),
        }
    }

    pub fn has(&self, controller: &str) -> bool {
        self.controllers.iter().any(|c| c == controller)
    }

    /// The directory of the absolute cgroup path `cgpath` in this hierarchy.
    pub fn dir_of(&self, cgpath: &str) -> Result<PathBuf> {
        let root = self.root.trim_end_matches('/');
        let rest = if root.is_empty() {
            Some(cgpath)
        } else if cgpath == root {
            Some("")
        } else {
            cgpath.strip_prefix(root).filter(|r| r.starts_with('/'))
        };
        let rest = rest.ok_or_else(|| {
            if self.root.contains("..") {
                // Mountinfo shows a mount's root relative to the reader's cgroup namespace:
                // "/.." means the mount is above the namespace's root, which has no name here.
                return SysError::invalid(
                    "cgroup",
                    "path",
                    format!(
                        "the shell is in a cgroup namespace below the {} hierarchy mounted at {} (mountinfo shows its root as {}), so its cgroup paths do not map onto that mount",
                        self.key(),
                        self.mount.display(),
                        self.root
                    ),
                )
                .hint("create cgroups before unshare([\"cgroup\"]), or give a child process the cgroup namespace instead of the shell");
            }
            SysError::invalid(
                "cgroup",
                "path",
                format!(
                    "{cgpath} is outside the part of the {} hierarchy mounted at {} (which shows {})",
                    self.key(),
                    self.mount.display(),
                    self.root
                ),
            )
        })?;
        Ok(self.mount.join(rest.trim_start_matches('/')))
    }
}

/// One line of /proc/PID/cgroup: `id:controllers:path`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Membership {
    pub id: u32,
    /// Empty for the v2 line (`0::/path`).
    pub controllers: Vec<String>,
    pub name: Option<String>,
    pub path: String,
}

/// Parse /proc/PID/cgroup.
pub fn parse_memberships(text: &str) -> Vec<Membership> {
    text.lines()
        .filter_map(|l| {
            let mut it = l.splitn(3, ':');
            let id = it.next()?.parse().ok()?;
            let list = it.next()?;
            let path = it.next()?.to_string();
            let mut controllers = Vec::new();
            let mut name = None;
            for item in list.split(',').filter(|s| !s.is_empty()) {
                match item.strip_prefix("name=") {
                    Some(n) => name = Some(n.to_string()),
                    None => controllers.push(item.to_string()),
                }
            }
            Some(Membership {
                id,
                controllers,
                name,
                path,
            })
        })
        .collect()
}

/// The cgroup v1 hierarchies among mount entries: one per set of controllers (the first
/// mount under /sys/fs/cgroup wins over bind mounts elsewhere).
pub fn v1_hierarchies(mounts: &[MountEntry]) -> Vec<Hierarchy> {
    let mut out: Vec<Hierarchy> = Vec::new();
    let mut sorted: Vec<&MountEntry> = mounts.iter().filter(|m| m.fstype == "cgroup").collect();
    sorted.sort_by_key(|m| !m.target.starts_with(CGROUP_ROOT));
    for m in sorted {
        let mut controllers = Vec::new();
        let mut name = None;
        for opt in m.super_opts.split(',') {
            if let Some(n) = opt.strip_prefix("name=") {
                name = Some(n.to_string());
            } else if KNOWN_CONTROLLERS.contains(&opt) {
                controllers.push(opt.to_string());
            }
        }
        if controllers.is_empty() && name.is_none() {
            continue;
        }
        let h = Hierarchy {
            version: Version::V1,
            mount: PathBuf::from(&m.target),
            root: m.root.clone(),
            controllers,
            name,
        };
        if !out
            .iter()
            .any(|o| o.controllers == h.controllers && o.name == h.name)
        {
            out.push(h);
        }
    }
    out
}

/// The hierarchies of a machine (or of a fake cgroupfs in a test).
#[derive(Debug, Clone)]
pub struct Hierarchies {
    pub layout: Layout,
    /// The v2 hierarchy first when there is one, then the v1 ones.
    pub list: Vec<Hierarchy>,
    /// Where the shell's own memberships are read (/proc/self/cgroup).
    pub self_cgroup: PathBuf,
    /// The list of files a v2 delegatee must own (/sys/kernel/cgroup/delegate).
    pub delegate_list: PathBuf,
}

impl Hierarchies {
    /// Detect the layout of this machine.
    pub fn detect() -> Result<Hierarchies> {
        let fstype = |p: &str| statfs(p).map(|s| s.filesystem_type());
        let root = fstype(CGROUP_ROOT).map_err(|e| {
            SysError::os("cgroup_layout", e)
                .path(CGROUP_ROOT)
                .hint("no cgroup filesystem is mounted at /sys/fs/cgroup")
        })?;
        let unified = fstype(HYBRID_UNIFIED).ok();
        let mounts = mountinfo::read(0)?;
        let v1 = v1_hierarchies(&mounts);
        let layout = classify(root, unified, !v1.is_empty()).ok_or_else(|| {
            SysError::not_found(
                "cgroup_layout",
                "neither cgroup2 nor a tmpfs of cgroup v1 hierarchies is mounted there",
            )
            .path(CGROUP_ROOT)
        })?;
        let mut list = Vec::new();
        if layout != Layout::Legacy {
            let mount = if layout == Layout::Unified {
                CGROUP_ROOT
            } else {
                HYBRID_UNIFIED
            };
            let root = mounts
                .iter()
                .rev()
                .find(|m| m.fstype == "cgroup2" && m.target == mount)
                .map_or_else(|| "/".to_string(), |m| m.root.clone());
            list.push(v2_hierarchy(Path::new(mount), &root)?);
        }
        if layout != Layout::Unified {
            list.extend(v1);
        }
        Ok(Hierarchies {
            layout,
            list,
            self_cgroup: PathBuf::from("/proc/self/cgroup"),
            delegate_list: PathBuf::from(DELEGATE_LIST),
        })
    }

    pub fn v2(&self) -> Option<&Hierarchy> {
        self.list.iter().find(|h| h.version == Version::V2)
    }

    /// The v1 hierarchy a controller is bound to.
    pub fn v1_with(&self, controller: &str) -> Option<&Hierarchy> {
        self.list
            .iter()
            .find(|h| h.version == Version::V1 && h.has(controller))
    }

    /// The shell's memberships, read now (it may have moved since the last look).
    pub fn memberships(&self) -> Result<Vec<Membership>> {
        let text = file::read("cgroup", &self.self_cgroup)?;
        Ok(parse_memberships(&text))
    }
}

/// The v2 hierarchy mounted at `mount`, with the controllers its root offers.
pub fn v2_hierarchy(mount: &Path, root: &str) -> Result<Hierarchy> {
    let controllers = file::read_opt("cgroup_layout", &mount.join("cgroup.controllers"))?
        .unwrap_or_default()
        .split_whitespace()
        .map(String::from)
        .collect();
    Ok(Hierarchy {
        version: Version::V2,
        mount: mount.to_path_buf(),
        root: root.to_string(),
        controllers,
        name: None,
    })
}

/// The membership line of hierarchy `h` among `ms`.
pub fn own_path_in(ms: &[Membership], h: &Hierarchy) -> Option<String> {
    let same_set =
        |a: &[String], b: &[String]| a.len() == b.len() && a.iter().all(|x| b.contains(x));
    ms.iter()
        .find(|m| match h.version {
            Version::V2 => m.id == 0 && m.controllers.is_empty() && m.name.is_none(),
            Version::V1 => {
                m.id != 0 && m.name == h.name && same_set(&m.controllers, &h.controllers)
            }
        })
        .map(|m| m.path.clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    const HYBRID_MOUNTINFO: &str = "\
25 30 0:23 / /sys rw,nosuid,nodev,noexec,relatime shared:7 - sysfs sysfs rw
26 25 0:24 / /sys/fs/cgroup rw,relatime shared:8 - tmpfs tmpfs rw,mode=755
27 26 0:25 / /sys/fs/cgroup/cpu rw,relatime shared:9 - cgroup cgroup rw,cpu
28 26 0:26 / /sys/fs/cgroup/cpu,cpuacct rw,relatime shared:10 - cgroup cgroup rw,cpu,cpuacct
29 26 0:27 / /sys/fs/cgroup/memory rw,relatime shared:11 - cgroup cgroup rw,memory
30 26 0:28 / /sys/fs/cgroup/systemd rw,relatime shared:12 - cgroup cgroup rw,xattr,name=systemd
31 26 0:29 / /sys/fs/cgroup/unified rw,relatime shared:13 - cgroup2 cgroup2 rw
32 30 0:27 /box /srv/memory rw,relatime - cgroup cgroup rw,memory
";

    #[test]
    fn layouts_by_filesystem_type() {
        let other = FsType(0x62656572);
        assert_eq!(
            classify(CGROUP2_SUPER_MAGIC, None, false),
            Some(Layout::Unified)
        );
        assert_eq!(
            classify(TMPFS_MAGIC, Some(CGROUP2_SUPER_MAGIC), true),
            Some(Layout::Hybrid)
        );
        assert_eq!(
            classify(TMPFS_MAGIC, Some(other), true),
            Some(Layout::Legacy)
        );
        assert_eq!(classify(TMPFS_MAGIC, None, true), Some(Layout::Legacy));
        assert_eq!(classify(TMPFS_MAGIC, None, false), None);
        assert_eq!(classify(other, None, true), None);
    }

    #[test]
    fn v1_hierarchies_from_mountinfo() {
        let mounts = mountinfo::parse(HYBRID_MOUNTINFO).unwrap();
        let hs = v1_hierarchies(&mounts);
        let keys: Vec<String> = hs.iter().map(|h| h.key()).collect();
        assert_eq!(keys, ["cpu", "cpu,cpuacct", "memory", "systemd"]);
        let mem = hs.iter().find(|h| h.has("memory")).unwrap();
        assert_eq!(
            mem.mount,
            Path::new("/sys/fs/cgroup/memory"),
            "bind elsewhere loses"
        );
        assert_eq!(hs[3].name.as_deref(), Some("systemd"));
        assert!(
            hs[3].controllers.is_empty(),
            "xattr is an option, not a controller"
        );
    }

    #[test]
    fn memberships_and_own_paths() {
        let ms = parse_memberships(
            "9:name=systemd:/user.slice\n4:memory:/process_api/x\n2:cpu,cpuacct:/\n0::/init.scope\n",
        );
        assert_eq!(ms.len(), 4);
        let h = |version, c: &[&str], name: Option<&str>| Hierarchy {
            version,
            mount: PathBuf::from("/x"),
            root: "/".into(),
            controllers: c.iter().map(|s| s.to_string()).collect(),
            name: name.map(String::from),
        };
        let mem = h(Version::V1, &["memory"], None);
        assert_eq!(own_path_in(&ms, &mem).as_deref(), Some("/process_api/x"));
        let cpu = h(Version::V1, &["cpuacct", "cpu"], None);
        assert_eq!(own_path_in(&ms, &cpu).as_deref(), Some("/"));
        let sd = h(Version::V1, &[], Some("systemd"));
        assert_eq!(own_path_in(&ms, &sd).as_deref(), Some("/user.slice"));
        let v2 = h(Version::V2, &["memory"], None);
        assert_eq!(own_path_in(&ms, &v2).as_deref(), Some("/init.scope"));
        let pids = h(Version::V1, &["pids"], None);
        assert_eq!(own_path_in(&ms, &pids), None);
    }

    #[test]
    fn directories_of_cgroup_paths() {
        let mut h = Hierarchy {
            version: Version::V1,
            mount: PathBuf::from("/sys/fs/cgroup/memory"),
            root: "/".into(),
            controllers: vec!["memory".into()],
            name: None,
        };
        assert_eq!(
            h.dir_of("/a/b").unwrap(),
            Path::new("/sys/fs/cgroup/memory/a/b")
        );
        h.root = "/docker/c1".into();
        assert_eq!(
            h.dir_of("/docker/c1/a").unwrap(),
            Path::new("/sys/fs/cgroup/memory/a")
        );
        assert!(h.dir_of("/docker/c10").is_err());
        assert!(h.dir_of("/other").is_err());
        h.root = "/..".into();
        let e = h.dir_of("/x").unwrap_err();
        assert!(e.to_string().contains("cgroup namespace"), "{e}");
    }
}
