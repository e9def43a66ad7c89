//! The translation and routing against fake cgroup filesystems in a temporary directory:
//! a unified, a hybrid and a legacy layout, each with the control files the kernel would
//! create already in place (a fake cannot create them on mkdir).

use std::fs;
use std::path::{Path, PathBuf};

use super::layout::{Hierarchies, Hierarchy, Layout, Version};
use super::limits::{Limits, Max};
use super::{reset, Cgroup};

const V2_FILES: &[&str] = &[
    "cgroup.procs",
    "cgroup.threads",
    "cgroup.subtree_control",
    "cgroup.freeze",
    "cgroup.kill",
    "memory.max",
    "memory.swap.max",
    "memory.oom.group",
    "pids.max",
    "cpu.max",
    "cpu.weight",
    "cpuset.cpus",
    "cpuset.mems",
];

struct Fake {
    _tmp: tempfile::TempDir,
    root: PathBuf,
    h: Hierarchies,
}

impl Fake {
    fn path(&self, rel: &str) -> PathBuf {
        self.root.join(rel)
    }
    fn read(&self, rel: &str) -> String {
        fs::read_to_string(self.path(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
    }
}

/// A directory with empty control files, as the kernel makes them on mkdir.
fn cgdir(dir: &Path, files: &[&str]) {
    fs::create_dir_all(dir).unwrap();
    for f in files {
        fs::write(dir.join(f), "").unwrap();
    }
}

fn put(dir: &Path, file: &str, text: &str) {
    fs::write(dir.join(file), text).unwrap();
}

fn v1_files(controllers: &[&str]) -> Vec<&'static str> {
    let mut out = vec!["cgroup.procs", "tasks", "notify_on_release"];
    for c in controllers {
        out.extend_from_slice(match *c {
            "memory" => &[
                "memory.limit_in_bytes",
                "memory.memsw.limit_in_bytes",
                "memory.usage_in_bytes",
                "memory.max_usage_in_bytes",
                "memory.oom_control",
            ][..],
            "pids" => &["pids.max", "pids.current"][..],
            "cpu" => &["cpu.cfs_period_us", "cpu.cfs_quota_us", "cpu.shares"][..],
            "cpuacct" => &["cpuacct.usage"][..],
            "cpuset" => &["cpuset.cpus", "cpuset.mems"][..],
            "freezer" => &["freezer.state"][..],
            _ => &[][..],
        });
    }
    out
}

fn hier(version: Version, mount: PathBuf, controllers: &[&str], name: Option<&str>) -> Hierarchy {
    Hierarchy {
        version,
        mount,
        root: "/".into(),
        controllers: controllers.iter().map(|s| s.to_string()).collect(),
        name: name.map(String::from),
    }
}

/// A unified machine: the shell lives in /user.slice/s.scope; the root offers
/// `controllers` and has `enabled` in its subtree_control already.
fn unified(controllers: &[&str], enabled: &str) -> Fake {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().to_path_buf();
    let cg = root.join("cg");
    cgdir(&cg, V2_FILES);
    put(&cg, "cgroup.controllers", &controllers.join(" "));
    put(&cg, "cgroup.subtree_control", enabled);
    cgdir(&cg.join("user.slice"), V2_FILES);
    cgdir(&cg.join("user.slice/s.scope"), V2_FILES);
    put(&root, "self", "0::/user.slice/s.scope\n");
    put(
        &root,
        "delegate",
        "cgroup.procs\ncgroup.threads\ncgroup.subtree_control\nmemory.oom.group\n",
    );
    let h = Hierarchies {
        layout: Layout::Unified,
        list: vec![hier(Version::V2, cg, controllers, None)],
        self_cgroup: root.join("self"),
        delegate_list: root.join("delegate"),
    };
    Fake { _tmp: tmp, root, h }
}

/// A hybrid machine like the test VM: v1 memory, pids, cpu+cpuacct, cpuset, freezer and
/// a named systemd hierarchy, and a v2 tree without controllers. The shell's memory cgroup
/// is /m, all others the root.
fn hybrid(with_memsw: bool) -> Fake {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().to_path_buf();
    let mut list = vec![hier(Version::V2, root.join("unified"), &[], None)];
    cgdir(&root.join("unified"), V2_FILES);
    put(&root.join("unified"), "cgroup.controllers", "");
    for ctrls in [
        &["memory"][..],
        &["pids"][..],
        &["cpu", "cpuacct"][..],
        &["cpuset"][..],
        &["freezer"][..],
    ] {
        let dir = root.join(ctrls.join(","));
        cgdir(&dir, &v1_files(ctrls));
        list.push(hier(Version::V1, dir, ctrls, None));
    }
    cgdir(&root.join("systemd"), &v1_files(&[]));
    list.push(hier(
        Version::V1,
        root.join("systemd"),
        &[],
        Some("systemd"),
    ));
    put(&root.join("cpuset"), "cpuset.cpus", "0-3\n");
    put(&root.join("cpuset"), "cpuset.mems", "0\n");
    let mut mem = v1_files(&["memory"]);
    if !with_memsw {
        mem.retain(|f| !f.contains("memsw"));
    }
    cgdir(&root.join("memory/m"), &mem);
    put(
        &root,
        "self",
        "7:name=systemd:/\n6:freezer:/\n5:cpuset:/\n4:memory:/m\n3:pids:/\n2:cpu,cpuacct:/\n0::/\n",
    );
    let h = Hierarchies {
        layout: Layout::Hybrid,
        list,
        self_cgroup: root.join("self"),
        delegate_list: root.join("delegate"),
    };
    Fake { _tmp: tmp, root, h }
}

/// A legacy machine: the hybrid one without its v2 tree.
fn legacy() -> Fake {
    let mut f = hybrid(true);
    f.h.layout = Layout::Legacy;
    f.h.list.retain(|h| h.version == Version::V1);
    f
}

/// Pre-create the leaf in every hierarchy of a hybrid fake (the kernel would fill it).
fn hybrid_leaf(f: &Fake, name: &str) {
    cgdir(&f.path(&format!("unified/{name}")), V2_FILES);
    cgdir(&f.path(&format!("memory/m/{name}")), &v1_files(&["memory"]));
    cgdir(&f.path(&format!("pids/{name}")), &v1_files(&["pids"]));
    cgdir(
        &f.path(&format!("cpu,cpuacct/{name}")),
        &v1_files(&["cpu", "cpuacct"]),
    );
    cgdir(&f.path(&format!("cpuset/{name}")), &v1_files(&["cpuset"]));
    cgdir(&f.path(&format!("freezer/{name}")), &v1_files(&["freezer"]));
}

#[test]
fn unified_limits_go_to_v2_files_and_controllers_get_enabled_down_the_path() {
    let f = unified(
        &["cpuset", "cpu", "io", "memory", "pids"],
        "cpu memory pids",
    );
    cgdir(&f.path("cg/user.slice/s.scope/box"), V2_FILES);
    let cg = Cgroup::create(&f.h, "box", &Limits::every_kind(), &[]).unwrap();
    assert_eq!(cg.path, "/user.slice/s.scope/box");
    assert_eq!(cg.dirs.len(), 1);
    assert!(cg.v2_fd().is_some());
    let leaf = "cg/user.slice/s.scope/box";
    assert_eq!(f.read(&format!("{leaf}/memory.max")), "67108864");
    assert_eq!(f.read(&format!("{leaf}/memory.swap.max")), "0");
    assert_eq!(f.read(&format!("{leaf}/pids.max")), "100");
    assert_eq!(f.read(&format!("{leaf}/cpu.max")), "50000 100000");
    assert_eq!(f.read(&format!("{leaf}/cpu.weight")), "100");
    assert_eq!(f.read(&format!("{leaf}/cpuset.cpus")), "0");
    // Only what is missing is enabled, all of one directory in one write.
    assert_eq!(f.read("cg/cgroup.subtree_control"), "+cpuset");
    assert_eq!(
        f.read("cg/user.slice/s.scope/cgroup.subtree_control"),
        "+memory +pids +cpu +cpuset"
    );
    assert_eq!(f.read(&format!("{leaf}/cgroup.subtree_control")), "");
    assert!(!cg.created_any(), "the leaf existed: adopted, not owned");
}

#[test]
fn unified_absolute_paths_start_at_the_root() {
    let f = unified(&["memory"], "memory");
    cgdir(&f.path("cg/ctrsh"), V2_FILES);
    cgdir(&f.path("cg/ctrsh/box"), V2_FILES);
    let l = Limits {
        memory: Some(Max::Max),
        ..Default::default()
    };
    let cg = Cgroup::create(&f.h, "/ctrsh/box", &l, &[]).unwrap();
    assert_eq!(cg.path, "/ctrsh/box");
    assert_eq!(f.read("cg/ctrsh/box/memory.max"), "max");
}

#[test]
fn a_controller_the_layout_lacks_is_named_with_the_layout() {
    let f = unified(&["cpu", "memory", "pids"], "");
    let l = Limits {
        cpuset: Some("0".into()),
        ..Default::default()
    };
    let e = Cgroup::create(&f.h, "box", &l, &[]).unwrap_err();
    assert_eq!(e.name.as_deref(), Some("cpuset"));
    let msg = e.to_string();
    assert!(msg.contains("unified") && msg.contains("cpuset"), "{msg}");
    assert!(msg.contains("cpu memory pids"), "{msg}");
    assert!(!f.path("cg/user.slice/s.scope/box").exists());

    let f = hybrid(true);
    let e = Cgroup::create(&f.h, "box", &Limits::default(), &["rdma".into()]).unwrap_err();
    assert_eq!(e.name.as_deref(), Some("rdma"));
    assert!(e.to_string().contains("hybrid"), "{e}");
}

#[test]
fn v1_only_controllers_that_v2_has_in_its_core_are_no_error_there() {
    let f = unified(&["memory"], "memory");
    cgdir(&f.path("cg/user.slice/s.scope/box"), V2_FILES);
    let extra = ["freezer".to_string(), "cpuacct".to_string()];
    let cg = Cgroup::create(&f.h, "box", &Limits::default(), &extra).unwrap();
    assert_eq!(cg.dirs.len(), 1);
    assert_eq!(f.read("cg/user.slice/s.scope/cgroup.subtree_control"), "");
    let e = Cgroup::create(&f.h, "box", &Limits::default(), &["devices".into()]).unwrap_err();
    assert!(e.to_string().contains("unified"), "{e}");
}

#[test]
fn a_failure_half_way_removes_what_was_created() {
    let f = unified(&["memory"], "memory");
    // The fake makes empty directories: the first control file write fails.
    let l = Limits {
        memory: Some(Max::Val(1 << 20)),
        ..Default::default()
    };
    let e = Cgroup::create(&f.h, "new/leaf", &l, &[]).unwrap_err();
    assert!(e.path.as_deref().unwrap_or("").contains("new"), "{e}");
    assert!(!f.path("cg/user.slice/s.scope/new").exists());
    // Without limits nothing needs writing: the directories are made and owned.
    let cg = Cgroup::create(&f.h, "new/leaf", &Limits::default(), &[]).unwrap();
    assert_eq!(
        cg.dirs[0].created,
        [
            f.path("cg/user.slice/s.scope/new"),
            f.path("cg/user.slice/s.scope/new/leaf")
        ]
    );
}

#[test]
fn hybrid_limits_go_to_the_v1_hierarchies_and_membership_to_all() {
    let f = hybrid(true);
    hybrid_leaf(&f, "box");
    let cg = Cgroup::create(&f.h, "box", &Limits::every_kind(), &[]).unwrap();
    let keys: Vec<String> = cg.dirs.iter().map(|d| d.hier.key()).collect();
    assert_eq!(keys, ["unified", "memory", "pids", "cpu,cpuacct", "cpuset"]);
    assert_eq!(cg.path, "/box");
    assert_eq!(
        cg.dirs[1].cgpath, "/m/box",
        "relative to the shell's memory cgroup"
    );
    assert_eq!(f.read("memory/m/box/memory.limit_in_bytes"), "67108864");
    assert_eq!(
        f.read("memory/m/box/memory.memsw.limit_in_bytes"),
        "67108864"
    );
    assert_eq!(f.read("pids/box/pids.max"), "100");
    assert_eq!(f.read("cpu,cpuacct/box/cpu.cfs_period_us"), "100000");
    assert_eq!(f.read("cpu,cpuacct/box/cpu.cfs_quota_us"), "50000");
    assert_eq!(f.read("cpu,cpuacct/box/cpu.shares"), "2597");
    assert_eq!(f.read("cpuset/box/cpuset.cpus"), "0");
    assert_eq!(
        f.read("cpuset/box/cpuset.mems"),
        "0",
        "mems copied from the parent"
    );
    // Nothing is written to the v2 tree, which has no controllers.
    assert_eq!(f.read("unified/box/memory.max"), "");
    assert_eq!(f.read("unified/cgroup.subtree_control"), "");

    cg.add_pid(4242).unwrap();
    for d in [
        "unified/box",
        "memory/m/box",
        "pids/box",
        "cpu,cpuacct/box",
        "cpuset/box",
    ] {
        assert_eq!(f.read(&format!("{d}/cgroup.procs")), "4242", "{d}");
    }
    assert_eq!(
        f.read("freezer/box/cgroup.procs"),
        "",
        "not part of this cgroup"
    );
}

#[test]
fn hybrid_without_swap_accounting_skips_memsw() {
    let f = hybrid(false);
    hybrid_leaf(&f, "box");
    fs::remove_file(f.path("memory/m/box/memory.memsw.limit_in_bytes")).unwrap();
    let l = Limits {
        memory: Some(Max::Val(32 << 20)),
        memory_swap: Some(Max::Val(0)),
        ..Default::default()
    };
    Cgroup::create(&f.h, "box", &l, &[]).unwrap();
    assert_eq!(f.read("memory/m/box/memory.limit_in_bytes"), "33554432");
    assert!(!f.path("memory/m/box/memory.memsw.limit_in_bytes").exists());
}

#[test]
fn raw_files_are_found_by_their_controller_prefix() {
    let f = hybrid(true);
    hybrid_leaf(&f, "box");
    let l = Limits {
        memory: Some(Max::Val(1 << 20)),
        ..Default::default()
    };
    let cg = Cgroup::create(&f.h, "box", &l, &[]).unwrap();
    cg.write("memory.limit_in_bytes", "2097152").unwrap();
    assert_eq!(f.read("memory/m/box/memory.limit_in_bytes"), "2097152");
    assert_eq!(cg.read("memory.limit_in_bytes").unwrap(), "2097152");
    cg.write("cgroup.freeze", "0").unwrap();
    assert_eq!(f.read("unified/box/cgroup.freeze"), "0");
    cg.write("notify_on_release", "1").unwrap();
    assert_eq!(f.read("memory/m/box/notify_on_release"), "1");
    // pids is not part of this cgroup: its files fall to the v2 tree, where they are absent.
    let e = cg.read("pids.current").unwrap_err();
    assert!(
        e.path
            .as_deref()
            .unwrap()
            .ends_with("unified/box/pids.current"),
        "{e}"
    );
    for bad in ["../memory.max", "", "a/b"] {
        assert!(cg.read(bad).is_err(), "{bad:?}");
    }
}

#[test]
fn legacy_cgroups_include_the_freezer_and_freeze_through_it() {
    let f = legacy();
    hybrid_leaf(&f, "box");
    let l = Limits {
        pids: Some(Max::Val(10)),
        ..Default::default()
    };
    let cg = Cgroup::create(&f.h, "box", &l, &[]).unwrap();
    let keys: Vec<String> = cg.dirs.iter().map(|d| d.hier.key()).collect();
    assert_eq!(keys, ["pids", "freezer"]);
    assert!(cg.v2_fd().is_none());
    cg.freeze().unwrap();
    assert_eq!(f.read("freezer/box/freezer.state"), "FROZEN");
    cg.thaw().unwrap();
    assert_eq!(f.read("freezer/box/freezer.state"), "THAWED");
    let e = Cgroup::create(&f.h, "box", &Limits::default(), &["hugetlb".into()]).unwrap_err();
    assert!(e.to_string().contains("legacy"), "{e}");
}

#[test]
fn v2_freeze_waits_for_cgroup_events() {
    let f = hybrid(true);
    hybrid_leaf(&f, "box");
    let cg = Cgroup::create(&f.h, "box", &Limits::default(), &[]).unwrap();
    assert_eq!(cg.dirs.len(), 1, "no limits: only the v2 tree on hybrid");
    put(
        &f.path("unified/box"),
        "cgroup.events",
        "populated 1\nfrozen 1\n",
    );
    cg.freeze().unwrap();
    assert_eq!(f.read("unified/box/cgroup.freeze"), "1");
}

#[test]
fn stats_come_from_whichever_hierarchy_has_them() {
    let f = hybrid(true);
    hybrid_leaf(&f, "box");
    let l = Limits {
        memory: Some(Max::Val(1 << 20)),
        pids: Some(Max::Val(5)),
        ..Default::default()
    };
    let cg = Cgroup::create(&f.h, "box", &l, &[]).unwrap();
    let m = f.path("memory/m/box");
    put(&m, "memory.usage_in_bytes", "1000\n");
    put(&m, "memory.max_usage_in_bytes", "2000\n");
    put(
        &m,
        "memory.oom_control",
        "oom_kill_disable 0\nunder_oom 0\noom_kill 3\n",
    );
    put(&f.path("pids/box"), "pids.current", "2\n");
    put(
        &f.path("unified/box"),
        "cpu.stat",
        "usage_usec 777\nuser_usec 700\n",
    );
    let s = cg.stats().unwrap();
    assert_eq!(s.memory_current, Some(1000));
    assert_eq!(s.memory_peak, Some(2000));
    assert_eq!(s.oom_kills, Some(3));
    assert_eq!(s.pids_current, Some(2));
    assert_eq!(s.cpu_usec, Some(777));

    let f = unified(&["memory", "pids"], "memory pids");
    let leaf = f.path("cg/user.slice/s.scope/box");
    cgdir(&leaf, V2_FILES);
    let cg = Cgroup::create(&f.h, "box", &Limits::default(), &[]).unwrap();
    put(&leaf, "memory.current", "10\n");
    put(&leaf, "memory.peak", "20\n");
    put(
        &leaf,
        "memory.events",
        "low 0\nhigh 0\nmax 4\noom 1\noom_kill 1\n",
    );
    let s = cg.stats().unwrap();
    assert_eq!(
        (s.memory_current, s.memory_peak, s.oom_kills),
        (Some(10), Some(20), Some(1))
    );
    assert_eq!(s.pids_current, None);
}

#[test]
fn delegation_chowns_what_a_delegatee_needs() {
    if !nix::unistd::geteuid().is_root() {
        eprintln!("skipped: chown to another user needs root");
        return;
    }
    use std::os::unix::fs::MetadataExt;
    let f = unified(&["memory"], "memory");
    let leaf = f.path("cg/user.slice/s.scope/box");
    cgdir(&leaf, V2_FILES);
    let cg = Cgroup::create(&f.h, "box", &Limits::default(), &[]).unwrap();
    cg.delegate(12345, 23456).unwrap();
    for p in [
        "",
        "cgroup.procs",
        "cgroup.subtree_control",
        "cgroup.threads",
        "memory.oom.group",
    ] {
        let md = fs::metadata(leaf.join(p)).unwrap();
        assert_eq!((md.uid(), md.gid()), (12345, 23456), "{p:?}");
    }
    assert_eq!(fs::metadata(leaf.join("memory.max")).unwrap().uid(), 0);
}

#[test]
fn reset_moves_into_every_named_hierarchy_after_checking_all() {
    let f = hybrid(true);
    hybrid_leaf(&f, "a");
    let t = |k: &str, p: &str| (k.to_string(), p.to_string());
    reset::reset(
        &f.h,
        &[t("memory", "a"), t("pids", "/a"), t("unified", "/a")],
    )
    .unwrap();
    assert_eq!(f.read("memory/m/a/cgroup.procs"), "0");
    assert_eq!(f.read("pids/a/cgroup.procs"), "0");
    assert_eq!(f.read("unified/a/cgroup.procs"), "0");
    // "cpu" and "cpuacct" name the same hierarchy; "/" is the root.
    reset::reset(&f.h, &[t("cpu", "/"), t("cpuacct", "/"), t("systemd", "/")]).unwrap();
    assert_eq!(f.read("cpu,cpuacct/cgroup.procs"), "0");
    assert_eq!(f.read("systemd/cgroup.procs"), "0");

    // A missing target stops everything before the first move.
    put(&f.path("pids/a"), "cgroup.procs", "");
    let e = reset::reset(&f.h, &[t("pids", "/a"), t("freezer", "/nope")]).unwrap_err();
    assert!(e.path.as_deref().unwrap().contains("nope"), "{e}");
    assert_eq!(f.read("pids/a/cgroup.procs"), "");

    let e = reset::reset(&f.h, &[t("cpu", "/a"), t("cpuacct", "/b")]).unwrap_err();
    assert!(e.to_string().contains("twice"), "{e}");
    let e = reset::reset(&f.h, &[t("memroy", "/a")]).unwrap_err();
    assert_eq!(e.name.as_deref(), Some("memroy"));
    let e = reset::reset(&f.h, &[t("memory", "../x")]).unwrap_err();
    assert!(e.to_string().contains(".."), "{e}");
}

#[test]
fn unified_reset_accepts_v1_controller_names_for_the_one_tree() {
    let f = unified(&["memory", "pids"], "");
    cgdir(&f.path("cg/a"), V2_FILES);
    let t = |k: &str, p: &str| (k.to_string(), p.to_string());
    reset::reset(&f.h, &[t("memory", "/a"), t("pids", "/a")]).unwrap();
    assert_eq!(f.read("cg/a/cgroup.procs"), "0");
    assert!(reset::reset(&f.h, &[t("memory", "/a"), t("unified", "/b")]).is_err());
}
