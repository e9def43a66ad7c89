//! Cgroups on the real kernel: limits that really bite (an OOM kill, a failing fork),
//! freeze/thaw seen in /proc/PID/stat, kill, stats, raw files, delegation, reset_cgroup,
//! teardown in every hierarchy, and bad input. Every test makes uniquely named cgroups and
//! checks from outside that no directory it created is left in any hierarchy.
mod common;
use common::*;

use std::path::{Path, PathBuf};
use std::process::Command;

const CG_ROOT: &str = "/sys/fs/cgroup";
const PYTHON: &str = "/usr/bin/python3";

/// Every mounted cgroup hierarchy's mount point, from mountinfo.
fn cgroup_mounts() -> Vec<PathBuf> {
    std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .lines()
        .filter_map(|l| {
            let (left, right) = l.split_once(" - ")?;
            let fstype = right.split(' ').next()?;
            let target = left.split(' ').nth(4)?;
            (fstype == "cgroup" || fstype == "cgroup2").then(|| PathBuf::from(target))
        })
        .collect()
}

/// Directories named `name` anywhere in any cgroup hierarchy.
fn dirs_named(name: &str) -> Vec<PathBuf> {
    fn walk(dir: &Path, name: &str, depth: u32, out: &mut Vec<PathBuf>) {
        let Ok(rd) = std::fs::read_dir(dir) else {
            return;
        };
        for e in rd.flatten() {
            if !e.file_type().is_ok_and(|t| t.is_dir()) {
                continue;
            }
            let p = e.path();
            if e.file_name() == name {
                out.push(p.clone());
            }
            if depth < 6 {
                walk(&p, name, depth + 1, out);
            }
        }
    }
    let mut out = Vec::new();
    for m in cgroup_mounts() {
        walk(&m, name, 0, &mut out);
    }
    out
}

/// A unique cgroup name; asserts at drop that none of its directories is left.
struct Name(String);

impl Name {
    fn new() -> Name {
        Name(format!("ctrsh-cg-{}", unique("")))
    }
}

impl std::ops::Deref for Name {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

impl Drop for Name {
    fn drop(&mut self) {
        let left = dirs_named(&self.0);
        // Remove leftovers innermost first, so a failing test does not leak them.
        let mut sorted = left.clone();
        sorted.sort_by_key(|p| std::cmp::Reverse(p.components().count()));
        for d in &sorted {
            let _ = std::fs::remove_dir(d);
        }
        if !std::thread::panicking() {
            assert!(left.is_empty(), "cgroup directories left behind: {left:?}");
        }
    }
}

fn layout() -> String {
    eval_ok("cgroup_layout()").trim().to_string()
}

/// The `key value` lines a script printed, as a lookup.
fn field<'a>(out: &'a str, key: &str) -> Option<&'a str> {
    out.lines()
        .find_map(|l| l.strip_prefix(key).and_then(|r| r.strip_prefix(' ')))
}

/// utime + stime of a process in clock ticks (/proc/PID/stat fields 14 and 15).
fn cpu_ticks(stat: &str) -> u64 {
    let after = stat.rsplit_once(") ").unwrap().1;
    let f: Vec<&str> = after.split_whitespace().collect();
    f[11].parse::<u64>().unwrap() + f[12].parse::<u64>().unwrap()
}

#[test]
fn layout_matches_the_filesystem_types() {
    if !need_root() {
        return;
    }
    let fstype = |p: &str| {
        let out = Command::new("stat")
            .args(["-f", "-c", "%T", p])
            .output()
            .unwrap();
        String::from_utf8(out.stdout).unwrap().trim().to_string()
    };
    let want = match (
        fstype(CG_ROOT).as_str(),
        fstype("/sys/fs/cgroup/unified").as_str(),
    ) {
        ("cgroup2fs", _) => "unified",
        ("tmpfs", "cgroup2fs") => "hybrid",
        _ => "legacy",
    };
    assert_eq!(layout(), want);
}

#[test]
fn a_32m_memory_limit_oom_kills_a_100m_allocation_and_stats_count_it() {
    if !is_root() || !Path::new(PYTHON).exists() {
        eprintln!("skipped: needs root and {PYTHON}");
        return;
    }
    let name = Name::new();
    let out = eval_ok(&format!(
        r#"
        let cg = cgroup("{n}", #{{ limits: #{{ memory: "32M", memory_swap: "0" }} }});
        print(`before ${{cg.stats().oom_kills}}`);
        let p = spawn(#{{ cmd: ["{PYTHON}", "-c", "b = b'x' * (100 * 1024 * 1024)"],
                         setup: |p| cg.add(p) }});
        print(`status ${{p.wait()}}`);
        let s = cg.stats();
        print(`oom ${{s.oom_kills}}`);
        print(`peak ${{s.memory_peak}}`);
        print(`limit ${{cg.get(if cgroup_layout() == "unified" {{ "memory.max" }} else {{ "memory.limit_in_bytes" }})}}`);
        "#,
        n = &*name
    ));
    assert_eq!(field(&out, "before"), Some("0"), "{out}");
    assert_eq!(field(&out, "status"), Some("137"), "{out}");
    let oom: u64 = field(&out, "oom").unwrap().parse().unwrap();
    assert!(oom >= 1, "{out}");
    let peak: u64 = field(&out, "peak").unwrap().parse().unwrap();
    assert!(peak <= 32 << 20 && peak > 16 << 20, "{out}");
    assert_eq!(field(&out, "limit"), Some("33554432"), "{out}");
}

#[test]
fn a_pids_limit_of_10_makes_the_11th_task_fail_to_fork() {
    if !is_root() || !Path::new(PYTHON).exists() {
        eprintln!("skipped: needs root and {PYTHON}");
        return;
    }
    let name = Name::new();
    // The first task forks until the kernel refuses; every child sleeps in the cgroup.
    let forker = "import os, time\n\
                  n = 0\n\
                  try:\n\
                  \x20   while n < 30:\n\
                  \x20       if os.fork() == 0:\n\
                  \x20           time.sleep(60)\n\
                  \x20           os._exit(0)\n\
                  \x20       n += 1\n\
                  except OSError as e:\n\
                  \x20   print('forked', n, 'errno', e.errno, flush=True)\n";
    let out = eval_ok(&format!(
        r#"
        let cg = cgroup("{n}", #{{ limits: #{{ pids: 10 }} }});
        let p = spawn(#{{ cmd: ["{PYTHON}", "-c", `{forker}`], setup: |p| cg.add(p) }});
        print(`status ${{p.wait()}}`);
        print(`left ${{cg.procs().len()}}`);
        print(`pids ${{cg.stats().pids_current}}`);
        cg.kill();
        print(`after ${{cg.procs().len()}}`);
        "#,
        n = &*name,
    ));
    // 1 forker + 9 children = 10 tasks; the 10th fork (the 11th task) gets EAGAIN.
    assert!(out.contains("forked 9 errno 11"), "{out}");
    assert_eq!(field(&out, "status"), Some("0"), "{out}");
    assert_eq!(field(&out, "left"), Some("9"), "{out}");
    assert_eq!(field(&out, "pids"), Some("9"), "{out}");
    assert_eq!(field(&out, "after"), Some("0"), "{out}");
}

#[test]
fn freeze_stops_a_busy_loop_and_thaw_resumes_it() {
    if !need_root() {
        return;
    }
    let name = Name::new();
    let out = eval_ok(&format!(
        r#"
        let cg = cgroup("{n}", #{{ limits: #{{ pids: 10 }} }});
        let p = spawn(#{{ cmd: ["sh", "-c", "while :; do :; done"], setup: |p| cg.add(p) }});
        let stat = || read_file(`/proc/${{p.pid}}/stat`);
        sleep(0.3);
        print(`running ${{stat.call()}}`);
        cg.freeze();
        print(`frozen1 ${{stat.call()}}`);
        sleep(0.6);
        print(`frozen2 ${{stat.call()}}`);
        cg.thaw();
        sleep(0.6);
        print(`thawed ${{stat.call()}}`);
        print(`usec ${{cg.stats().cpu_usec}}`);
        "#,
        n = &*name
    ));
    let t = |k: &str| cpu_ticks(field(&out, k).unwrap_or_else(|| panic!("{k}: {out}")));
    assert!(t("running") > 0, "{out}");
    assert_eq!(
        t("frozen1"),
        t("frozen2"),
        "CPU time advanced while frozen\n{out}"
    );
    assert!(
        t("thawed") >= t("frozen2") + 10,
        "CPU time did not advance after thaw\n{out}"
    );
    let usec: u64 = field(&out, "usec").unwrap().parse().unwrap();
    // Parallel tests share two CPUs: the loop gets some of its 0.9 s running, not all.
    assert!(usec >= 100_000, "{out}");
}

#[test]
fn kill_empties_the_cgroup_and_procs_is_empty_afterwards() {
    if !need_root() {
        return;
    }
    let name = Name::new();
    let out = eval_ok(&format!(
        r#"
        let cg = cgroup("{n}", #{{ limits: #{{ memory: "64M", pids: 50 }} }});
        let a = spawn(#{{ cmd: ["sleep", "100"], setup: |p| cg.add(p) }});
        // A shell with children of its own: the children are members too.
        let b = spawn(#{{ cmd: ["sh", "-c", "sleep 100 & sleep 100 & wait"], setup: |p| cg.add(p) }});
        sleep(0.2);
        print(`before ${{cg.procs().len()}}`);
        cg.kill();
        print(`after ${{cg.procs()}}`);
        print(`a ${{a.wait()}}`);
        print(`b ${{b.wait()}}`);
        "#,
        n = &*name
    ));
    assert_eq!(field(&out, "before"), Some("4"), "{out}");
    assert_eq!(field(&out, "after"), Some("[]"), "{out}");
    assert_eq!(field(&out, "a"), Some("137"), "{out}");
    assert_eq!(field(&out, "b"), Some("137"), "{out}");
}

/// A recipe that makes nested cgroups in every hierarchy it can, with members, and ends
/// by `ending`; nothing may be left afterwards.
fn recipe_ending(ending: &str) -> (Name, std::process::Output) {
    let name = Name::new();
    let code = format!(
        r#"
        let top = cgroup("{n}/inner", #{{ limits: #{{ memory: "64M", pids: 50, cpu: "50%",
                                                       cpu_weight: 200, cpuset: "0" }} }});
        let other = cgroup("/{n}/other", #{{ controllers: ["freezer"] }});
        spawn(#{{ cmd: ["sleep", "100"], setup: |p| top.add(p) }});
        spawn(#{{ cmd: ["sleep", "100"], setup: |p| other.add(p) }}).detach();
        for d in top.dirs.values() + other.dirs.values() {{ print(`dir ${{d}}`); }}
        {ending}
        "#,
        n = &*name
    );
    let out = eval(&code);
    (name, out)
}

#[test]
fn after_a_recipe_ends_normally_no_directory_it_created_remains() {
    if !need_root() {
        return;
    }
    let (name, out) = recipe_ending("print(\"done\");");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let dirs: Vec<&str> = stdout
        .lines()
        .filter_map(|l| l.strip_prefix("dir "))
        .collect();
    assert!(dirs.len() >= 2, "{stdout}");
    for d in dirs {
        assert!(d.contains(&*name), "{d}");
        assert!(!Path::new(d).exists(), "{d} remains");
    }
    drop(name);
}

#[test]
fn after_a_recipe_fails_or_exits_no_directory_it_created_remains() {
    if !need_root() {
        return;
    }
    let (name, out) = recipe_ending("throw \"boom\";");
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("boom"));
    drop(name);
    let (name, out) = recipe_ending("exit(3);");
    assert_eq!(out.status.code(), Some(3));
    drop(name);
}

#[test]
fn kept_cgroups_stay_and_are_adopted_by_the_next_recipe() {
    if !need_root() {
        return;
    }
    let name = Name::new();
    let out = eval_ok(&format!(
        r#"let cg = cgroup("/{n}", #{{ limits: #{{ pids: 7 }}, keep: true }}); print(cg.dirs.pids);"#,
        n = &*name
    ));
    let dir = out.trim().to_string();
    assert!(Path::new(&dir).is_dir(), "{out}");
    // Adopted: used, not removed at the end.
    eval_ok(&format!(
        r#"let cg = cgroup("/{n}", #{{ controllers: ["pids"] }}); print(cg.get("pids.max"));"#,
        n = &*name
    ));
    assert!(Path::new(&dir).is_dir());
    assert_eq!(
        std::fs::read_to_string(format!("{dir}/pids.max"))
            .unwrap()
            .trim(),
        "7"
    );
    // .remove() removes an adopted one, in every hierarchy.
    eval_ok(&format!(
        r#"cgroup("/{n}", #{{ controllers: ["pids"] }}).remove();"#,
        n = &*name
    ));
    assert!(!Path::new(&dir).exists());
    // .keep() after the fact.
    eval_ok(&format!(r#"cgroup("/{n}").keep();"#, n = &*name));
    assert!(!dirs_named(&name).is_empty());
    eval_ok(&format!(r#"cgroup("/{n}").remove();"#, n = &*name));
}

#[test]
fn v2_tree_create_add_freeze_kill() {
    if !is_root() || layout() == "legacy" {
        eprintln!("skipped: needs root and a v2 hierarchy");
        return;
    }
    let name = Name::new();
    let out = eval_ok(&format!(
        r#"
        let cg = cgroup("/{n}");
        print(`dirs ${{cg.dirs.keys()}}`);
        print(`dir ${{cg.dirs.unified}}`);
        let p = spawn(#{{ cmd: ["sleep", "100"], setup: |p| cg.add(p) }});
        print(`member ${{read_file(`/proc/${{p.pid}}/cgroup`).split("\n").filter(|l| l.starts_with("0::"))[0]}}`);
        cg.freeze();
        let events = cg.get("cgroup.events");
        events.replace("\n", ",");
        print(`events ${{events}}`);
        cg.thaw();
        cg.kill();
        print(`procs ${{cg.procs()}}`);
        print(`status ${{p.wait()}}`);
        "#,
        n = &*name
    ));
    let root = if layout() == "unified" {
        CG_ROOT.to_string()
    } else {
        format!("{CG_ROOT}/unified")
    };
    assert_eq!(
        field(&out, "dir"),
        Some(format!("{root}/{}", &*name).as_str()),
        "{out}"
    );
    assert_eq!(
        field(&out, "member"),
        Some(format!("0::/{}", &*name).as_str()),
        "{out}"
    );
    assert!(field(&out, "events").unwrap().contains("frozen 1"), "{out}");
    assert_eq!(field(&out, "procs"), Some("[]"), "{out}");
    assert_eq!(field(&out, "status"), Some("137"), "{out}");
}

#[test]
fn raw_files_by_controller_prefix() {
    if !is_root() || layout() == "unified" {
        eprintln!("skipped: needs root and v1 hierarchies (this test reads v1 files)");
        return;
    }
    let name = Name::new();
    let out = eval_ok(&format!(
        r#"
        let cg = cgroup("{n}", #{{ limits: #{{ memory: "64M", pids: 10, cpu: "25%", cpuset: "0" }} }});
        cg.set("pids.max", 5);
        print(`pids ${{cg.get("pids.max")}}`);
        cg.set("memory.limit_in_bytes", "48M");
        print(`mem ${{cg.get("memory.limit_in_bytes")}}`);
        print(`quota ${{cg.get("cpu.cfs_quota_us")}}`);
        print(`period ${{cg.get("cpu.cfs_period_us")}}`);
        print(`mems ${{cg.get("cpuset.mems")}}`);
        print(`cpus ${{cg.get("cpuset.cpus")}}`);
        print(`procs ${{cg.get("cgroup.procs")}}`);
        try {{ cg.set("pids.max", "lots"); }} catch (e) {{ print(`bad ${{e.errno_name}} ${{e.path}}`); }}
        "#,
        n = &*name
    ));
    assert_eq!(field(&out, "pids"), Some("5"), "{out}");
    assert_eq!(field(&out, "mem"), Some("50331648"), "{out}");
    assert_eq!(field(&out, "quota"), Some("25000"), "{out}");
    assert_eq!(field(&out, "period"), Some("100000"), "{out}");
    assert_eq!(field(&out, "cpus"), Some("0"), "{out}");
    assert!(!field(&out, "mems").unwrap_or("").is_empty(), "{out}");
    let bad = field(&out, "bad").unwrap();
    assert!(
        bad.starts_with("EINVAL") && bad.ends_with("pids.max"),
        "{out}"
    );
}

#[test]
fn delegate_chowns_the_directory_and_its_membership_files() {
    if !need_root() {
        return;
    }
    let name = Name::new();
    let out = eval_ok(&format!(
        r#"
        let cg = cgroup("{n}", #{{ limits: #{{ pids: 10 }} }});
        cg.delegate(65534, 65533);
        // Checked from outside while it exists.
        run(#{{ cmd: ["sh", "-c", `stat -c '%n %u %g' ${{cg.dirs.values().map(|d| d + " " + d + "/cgroup.procs").reduce(|a, b| a + " " + b)}}`] }});
        "#,
        n = &*name
    ));
    let stats: Vec<&str> = out.lines().filter(|l| l.starts_with('/')).collect();
    assert!(stats.len() >= 2, "{out}");
    for l in stats {
        assert!(l.ends_with(" 65534 65533"), "{l}\n{out}");
    }
}

#[test]
fn reset_cgroup_moves_the_shell_into_every_hierarchy_at_once() {
    if !need_root() {
        return;
    }
    let name = Name::new();
    let out = eval_ok(&format!(
        r#"
        let before = read_file("/proc/self/cgroup");
        let cg = cgroup("{n}", #{{ limits: #{{ memory: "256M", pids: 100 }} }});
        reset_cgroup(cg.paths);
        print("--- moved");
        print(read_file("/proc/self/cgroup"));
        print("--- child");
        run(#{{ cmd: ["cat", "/proc/self/cgroup"] }});
        // Teardown moves the shell back out before removing the cgroup.
        cg.remove();
        print("--- back");
        print(read_file("/proc/self/cgroup"));
        print("--- before");
        print(before);
        "#,
        n = &*name
    ));
    let section = |s: &str| -> Vec<String> {
        out.split(&format!("--- {s}\n"))
            .nth(1)
            .unwrap()
            .split("---")
            .next()
            .unwrap()
            .lines()
            .filter(|l| !l.is_empty())
            .map(String::from)
            .collect()
    };
    let in_name = |lines: &[String], key: &str| {
        lines
            .iter()
            .any(|l| l.split(':').nth(1) == Some(key) && l.ends_with(&format!("/{}", &*name)))
    };
    let moved = section("moved");
    let child = section("child");
    let hier = if layout() == "unified" {
        vec![""]
    } else {
        vec!["memory", "pids", ""]
    };
    for k in &hier {
        assert!(in_name(&moved, k), "{k:?} not moved\n{out}");
        assert!(in_name(&child, k), "{k:?} not inherited\n{out}");
    }
    assert_eq!(section("back"), section("before"), "{out}");
}

#[test]
fn bad_input_is_named() {
    if !need_root() {
        return;
    }
    let name = Name::new();
    let err = eval_err(&format!(
        r#"cgroup("{n}", #{{ limits: #{{ memroy: "64M" }} }})"#,
        n = &*name
    ));
    assert!(
        err.contains("memroy") && err.contains("did you mean memory"),
        "{err}"
    );
    let err = eval_err(&format!(
        r#"cgroup("{n}", #{{ limits: #{{ memory: "64Q" }} }})"#,
        n = &*name
    ));
    assert!(
        err.contains("cgroup(memory)") && err.contains("\"64Q\""),
        "{err}"
    );
    let err = eval_err(r#"cgroup("a/../b")"#);
    assert!(err.contains("\"..\""), "{err}");
    let err = eval_err(&format!(r#"cgroup("{n}//x")"#, n = &*name));
    assert!(err.contains("empty component"), "{err}");
    let err = eval_err(&format!(r#"cgroup("{n}\nx")"#, n = &*name));
    assert!(
        err.contains("cgroup(path)") && err.contains("control character '\\n'"),
        "{err}"
    );
    let err = eval_err(&format!(r#"cgroup("/sys/fs/cgroup/{n}")"#, n = &*name));
    assert!(
        err.contains("is a filesystem path, not a cgroup path"),
        "{err}"
    );
    let err = eval_err(&format!(
        r#"cgroup("{n}", #{{ limits: #{{ cpu: 50 }} }})"#,
        n = &*name
    ));
    assert!(err.contains("50%"), "{err}");
    let err = eval_err(&format!(
        r#"cgroup("{n}", #{{ limits: #{{ pids: 10 }}, limit: 1 }})"#,
        n = &*name
    ));
    assert!(err.contains("did you mean limits"), "{err}");
    let err = eval_err(r#"reset_cgroup(#{ memroy: "/" })"#);
    assert!(err.contains("did you mean memory"), "{err}");
    let err = eval_err(&format!(
        r#"let c = cgroup("{n}"); c.add(pid()); c.kill()"#,
        n = &*name
    ));
    assert!(err.contains("the shell itself"), "{err}");
    // Freezing a cgroup the shell is in would stop it with nobody left to thaw it. (Under a
    // SIGKILL timeout: without the check the shell hangs frozen.)
    let out = Command::new("timeout")
        .args(["-s", "KILL", "20", &ctrsh_bin(), "-e"])
        .arg(format!(
            r#"let c = cgroup("{n}"); c.add(pid()); c.freeze()"#,
            n = &*name
        ))
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.code() == Some(1)
            && err.contains("freeze(cgroup): the shell itself is in")
            && err.contains("nobody to thaw it"),
        "{:?} {err}",
        out.status
    );

    // A control file is not a cgroup; a removed cgroup says so; a cpuset beyond the
    // machine's CPUs names the CPUs there are.
    let err = eval_err(r#"cgroup("cgroup.procs")"#);
    assert!(
        err.contains("is a file (a control file of its cgroup), not a cgroup"),
        "{err}"
    );
    let err = eval_err(&format!(
        r#"let c = cgroup("{n}"); c.remove(); c.add(pid())"#,
        n = &*name
    ));
    assert!(err.contains("the cgroup no longer exists"), "{err}");
    let v2_cpuset = std::fs::read_to_string("/sys/fs/cgroup/cgroup.controllers")
        .is_ok_and(|c| c.split_whitespace().any(|x| x == "cpuset"));
    if Path::new("/sys/fs/cgroup/cpuset/cpuset.cpus").exists() || v2_cpuset {
        let err = eval_err(&format!(
            r#"cgroup("{n}", #{{ limits: #{{ cpuset: "0-4095" }} }})"#,
            n = &*name
        ));
        assert!(err.contains("this machine's CPUs are"), "{err}");
    }

    // A controller the layout lacks: named, with the layout.
    let l = layout();
    let lacking = missing_controller();
    let err = eval_err(&format!(
        r#"cgroup("{n}", #{{ controllers: ["{lacking}"] }})"#,
        n = &*name
    ));
    assert!(
        err.contains(&format!("cgroup({lacking})"))
            && err.contains(&format!(
                "the {l} cgroup layout has no {lacking} controller"
            )),
        "{err}"
    );
}

/// A controller neither a v1 hierarchy nor the v2 tree offers on this machine.
fn missing_controller() -> String {
    let mut have: Vec<String> = Vec::new();
    for l in std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .lines()
    {
        if let Some((_, right)) = l.split_once(" - ") {
            let f: Vec<&str> = right.split(' ').collect();
            if f[0] == "cgroup" {
                have.extend(f[2].split(',').map(String::from));
            }
        }
    }
    for p in [
        format!("{CG_ROOT}/cgroup.controllers"),
        format!("{CG_ROOT}/unified/cgroup.controllers"),
    ] {
        if let Ok(t) = std::fs::read_to_string(p) {
            have.extend(t.split_whitespace().map(String::from));
        }
    }
    ["rdma", "misc", "debug", "perf_event", "net_prio", "hugetlb"]
        .iter()
        .find(|c| !have.iter().any(|h| h == *c))
        .expect("this machine has every controller")
        .to_string()
}

#[test]
fn cgroups_print_readably() {
    if !need_root() {
        return;
    }
    let name = Name::new();
    let out = eval_ok(&format!(
        r#"let cg = cgroup("/{n}", #{{ limits: #{{ pids: 5 }} }}); print(cg); cg"#,
        n = &*name
    ));
    let first = out.lines().next().unwrap();
    assert!(
        first.starts_with(&format!("Cgroup(/{} in ", &*name)),
        "{out}"
    );
    assert!(first.contains("pids"), "{out}");
}

/// /proc/self/cgroup as a child spawned into a new cgroup `name` (pids: 20) sees it, with
/// `extra` spawn keys.
fn child_cgroup_file(name: &str, extra: &str) -> String {
    eval_ok(&format!(
        r#"
        let cg = cgroup("{name}", #{{ limits: #{{ pids: 20 }} }});
        print(output(#{{ cmd: ["cat", "/proc/self/cgroup"], cgroup: cg, {extra} }}).stdout);
        "#
    ))
}

/// spawn(#{ cgroup }) places the child before it runs anything: the program's first look
/// at /proc/self/cgroup already shows the cgroup, in the v2 tree and in the v1 hierarchies.
#[test]
fn spawn_places_the_child_into_the_cgroup_before_exec() {
    if !need_root() {
        return;
    }
    let name = Name::new();
    let stdout = child_cgroup_file(&name, "");
    let lines: Vec<&str> = stdout.lines().collect();
    let placed = |key: &str| {
        lines
            .iter()
            .any(|l| l.split(':').nth(1) == Some(key) && l.ends_with(&format!("/{}", &*name)))
    };
    if layout() != "legacy" {
        assert!(placed(""), "not in the v2 cgroup\n{stdout}");
    }
    if layout() != "unified" {
        assert!(placed("pids"), "not in the v1 pids cgroup\n{stdout}");
    }
}

/// scripts/cgroup-limits.rhai, as a user runs it: the payload is OOM-killed at 32M and
/// survives at 1G; nothing is left behind.
#[test]
fn the_cgroup_limits_recipe_runs() {
    if !need_root() {
        return;
    }
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/cgroup-limits.rhai");
    let run = |args: &[&str]| {
        let out = ctrsh().arg(&script).args(args).output().unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(
            out.status.success(),
            "{stdout}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let name = stdout
            .lines()
            .find_map(|l| l.strip_prefix("cgroup: Cgroup(/"))
            .and_then(|r| r.split(' ').next())
            .unwrap()
            .to_string();
        assert!(dirs_named(&name).is_empty(), "left behind\n{stdout}");
        stdout
    };
    let out = run(&[]);
    assert!(out.contains("payload status: 137"), "{out}");
    assert!(out.contains("oom kills: 1"), "{out}");
    let out = run(&["1G"]);
    assert!(out.contains("survived 100000000"), "{out}");
    assert!(out.contains("oom kills: 0"), "{out}");
}

/// `ns: ["cgroup"]` with a cgroup: the namespace is made after the move, so every line of
/// /proc/self/cgroup reads "/" inside.
#[test]
fn a_cgroup_namespace_is_rooted_at_the_spawn_cgroup() {
    if !need_root() {
        return;
    }
    let name = Name::new();
    let out = child_cgroup_file(&name, r#"ns: ["cgroup"],"#);
    let lines: Vec<&str> = out.lines().filter(|l| !l.is_empty()).collect();
    assert!(!lines.is_empty());
    for l in lines {
        assert!(l.ends_with(":/"), "{l}\n{out}");
    }
}

/// Two cgroups under one parent that the first of them created: removing the creator while
/// the other still uses the parent, then the other, leaves no directory behind.
#[test]
fn a_shared_parent_goes_with_the_last_cgroup_under_it() {
    if !need_root() {
        return;
    }
    let name = Name::new();
    let out = eval_ok(&format!(
        r#"
        let a = cgroup("/{n}/a", #{{ limits: #{{ pids: 10 }} }});
        let b = cgroup("/{n}/b", #{{ limits: #{{ pids: 10 }} }});
        a.remove();
        print(`after a: ${{path_exists("/sys/fs/cgroup/pids/{n}")}}`);
        b.remove();
        "#,
        n = &*name
    ));
    if layout() != "unified" {
        assert!(out.contains("after a: true"), "{out}");
    }
    // Name's drop asserts that nothing named like it is left in any hierarchy.
}
