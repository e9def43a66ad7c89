//! Filesystem functions on the real kernel. Every ctrsh script first moves into a private
//! mount namespace of its own; the tests check the host's mount table and filesystem from
//! outside, and the script's own /proc/self/mountinfo from inside.
mod common;
use common::*;

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const PRIVATE: &str =
    "unshare([\"mnt\"]); propagation(\"/\", \"private\", #{ recursive: true });\n";

/// A scratch directory named uniquely, removed when dropped (mounts in it only ever exist
/// inside the scripts' own mount namespaces, which end with them).
struct Scratch(PathBuf);

impl Scratch {
    fn new(tag: &str) -> Scratch {
        let p = PathBuf::from(format!("/tmp/ctrsh-fs-{}", unique(tag)));
        std::fs::create_dir_all(&p).unwrap();
        Scratch(p)
    }
    fn path(&self, rel: &str) -> String {
        format!("{}/{rel}", self.0.display())
    }
    fn root(&self) -> String {
        self.0.display().to_string()
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The host's mount lines that mention `tag` (none may ever exist).
fn host_mounts_with(tag: &str) -> Vec<String> {
    std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .lines()
        .filter(|l| l.contains(tag))
        .map(String::from)
        .collect()
}

/// Run `body` in a private mount namespace, checking the host's mount table is untouched.
fn private_ok(s: &Scratch, body: &str) -> String {
    assert!(host_mounts_with(&s.root()).is_empty());
    let out = eval_ok(&format!(
        "{PRIVATE}{body}\nprint(\"--- mountinfo\"); print(read_file(\"/proc/self/mountinfo\"));"
    ));
    assert!(
        host_mounts_with(&s.root()).is_empty(),
        "host mount table changed"
    );
    out
}

fn private_err(s: &Scratch, body: &str) -> String {
    let before = host_mounts_with(&s.root());
    let err = eval_err(&format!("{PRIVATE}{body}"));
    assert_eq!(
        host_mounts_with(&s.root()),
        before,
        "host mount table changed"
    );
    err
}

/// The mountinfo part of a script's output, as (target, fstype, options) triples.
fn inner_mounts(out: &str) -> Vec<(String, String, String)> {
    out.split("--- mountinfo\n")
        .nth(1)
        .unwrap_or("")
        .lines()
        .filter_map(|l| {
            let (left, right) = l.split_once(" - ")?;
            let f: Vec<&str> = left.split(' ').collect();
            Some((
                f.get(4)?.to_string(),
                right.split(' ').next()?.to_string(),
                f.get(5)?.to_string(),
            ))
        })
        .collect()
}

#[test]
fn bind_ro_makes_writes_fail_with_erofs_also_in_submounts() {
    let s = Scratch::new("ro");
    std::fs::create_dir_all(s.path("src/sub")).unwrap();
    std::fs::create_dir_all(s.path("dst")).unwrap();
    let out = private_ok(
        &s,
        &format!(
            r#"tmpfs("{src}/sub");
            write_file("{src}/sub/inner", "x");
            bind("{src}", "{dst}", #{{ ro: true }});
            for p in ["{dst}/a", "{dst}/sub/b"] {{
                try {{ write_file(p, "no"); print(`${{p}} WROTE`); }} catch (e) {{ print(`${{p}} ${{e.errno_name}}`); }}
            }}
            print(read_file("{dst}/sub/inner"));
            write_file("{src}/sub/rw", "yes");"#,
            src = s.path("src"),
            dst = s.path("dst")
        ),
    );
    assert!(out.contains(&format!("{}/a EROFS", s.path("dst"))), "{out}");
    assert!(
        out.contains(&format!("{}/sub/b EROFS", s.path("dst"))),
        "{out}"
    );
    let m = inner_mounts(&out);
    let dst = s.path("dst");
    assert!(
        m.iter().any(|(t, _, o)| *t == dst && o.starts_with("ro")),
        "{m:?}"
    );
    assert!(
        m.iter()
            .any(|(t, f, o)| *t == format!("{dst}/sub") && f == "tmpfs" && o.starts_with("ro")),
        "{m:?}"
    );
    // The source stayed writable; the host never saw any of it.
    assert!(!Path::new(&s.path("src/a")).exists());
}

/// mount(2) ignores "ro" (and nosuid ...) on a new bind mount: mount() applies them with a
/// bind remount as mount(8) does, and a remount of a bind mount needs no source.
#[test]
fn mount_bind_ro_is_read_only_and_remount_needs_no_source() {
    let s = Scratch::new("mbro");
    std::fs::create_dir_all(s.path("src")).unwrap();
    std::fs::create_dir_all(s.path("dst")).unwrap();
    let out = private_ok(
        &s,
        &format!(
            r#"mount(#{{ source: "{src}", target: "{dst}", flags: ["bind", "ro", "nosuid"] }});
            try {{ write_file("{dst}/a", "no"); print("WROTE"); }} catch (e) {{ print(`first ${{e.errno_name}}`); }}
            mount(#{{ target: "{dst}", flags: "remount,bind,rw" }});
            write_file("{dst}/b", "yes"); print("second ok");"#,
            src = s.path("src"),
            dst = s.path("dst")
        ),
    );
    assert!(
        out.contains("first EROFS") && out.contains("second ok"),
        "{out}"
    );
    let dst = s.path("dst");
    let m = inner_mounts(&out);
    // The last state: read-write again after the remount.
    assert!(
        m.iter().any(|(t, _, o)| *t == dst && o.starts_with("rw")),
        "{m:?}"
    );
    assert_eq!(std::fs::read_to_string(s.path("src/b")).unwrap(), "yes");
}

#[test]
fn tmpfs_size_mode_uid_gid() {
    let s = Scratch::new("tm");
    let out = private_ok(
        &s,
        &format!(
            r#"tmpfs("{d}", #{{ size: "2m", mode: 0o1770, uid: 1000, gid: 1001 }});
            for m in mounts() {{ if m.target == "{d}" {{ print(`super=${{m.super_options}}`); }} }}"#,
            d = s.root()
        ),
    );
    let sup = out.lines().find(|l| l.starts_with("super=")).expect(&out);
    assert!(sup.contains("size=2048k"), "{sup}");
    assert!(sup.contains("mode=1770"), "{sup}");
    assert!(
        sup.contains("uid=1000") && sup.contains("gid=1001"),
        "{sup}"
    );
}

#[test]
fn mount_seq_failing_third_op_rolls_back_the_first_two() {
    let s = Scratch::new("seq");
    let out = private_ok(
        &s,
        &format!(
            r#"let r = mount_seq([dir("{r}/a"), #{{ op: "tmpfs", path: "{r}/a", size: "1m" }}, dir("{r}/a/x"), #{{ op: "mount", fstype: "proc", source: "proc", target: "{r}/nope", may_fail: true }}]);
            print(`ok=${{r.map(|x| x.ok)}}`);
            umount("{r}/a");
            try {{
                mount_seq([dir("{r}/made/deep"), #{{ op: "tmpfs", path: "{r}/made" }}, #{{ op: "mount", fstype: "proc", source: "proc", target: "{r}/missing" }}]);
            }} catch (e) {{ print(`caught: ${{e.message}}`); }}
            print(`left=${{list_dir("{r}")}}`);
            for m in mounts() {{ if m.target.starts_with("{r}") {{ print(`MOUNTED ${{m.target}}`); }} }}"#,
            r = s.root()
        ),
    );
    assert!(out.contains("ok=[true, true, true, false]"), "{out}");
    assert!(
        out.contains("caught: mount_seq op 3 (mount) failed; undid the 2 ops done before it"),
        "{out}"
    );
    assert!(
        out.contains("left=[\"a\"]"),
        "the created directories were removed: {out}"
    );
    assert!(!out.contains("MOUNTED"), "{out}");
    assert!(
        !inner_mounts(&out)
            .iter()
            .any(|(t, _, _)| t.starts_with(&s.root())),
        "{out}"
    );
}

#[test]
fn mount_seq_rollback_puts_an_overwritten_file_back() {
    let s = Scratch::new("seqf");
    let conf = s.path("conf");
    std::fs::write(&conf, "old\n").unwrap();
    std::fs::set_permissions(&conf, std::fs::Permissions::from_mode(0o600)).unwrap();
    let fifo = s.path("fifo");
    nix::unistd::mkfifo(
        fifo.as_str(),
        nix::sys::stat::Mode::from_bits_truncate(0o644),
    )
    .unwrap();
    let out = private_ok(
        &s,
        &format!(
            r#"try {{
                mount_seq([file("{r}/conf", "new\n", 0o644), dir("{r}/t"), #{{ op: "tmpfs", path: "{r}/t" }},
                           #{{ op: "mount", fstype: "proc", source: "proc", target: "{r}/missing" }}]);
            }} catch (e) {{ print(`caught: ${{e.message}}`); }}
            try {{ mount_seq([file("{r}/fifo", "x")]); }} catch (e) {{ print(`fifo: ${{e.message}}`); }}
            print(`left=${{list_dir("{r}")}}`);
            for m in mounts() {{ if m.target.starts_with("{r}") {{ print(`MOUNTED ${{m.target}}`); }} }}"#,
            r = s.root()
        ),
    );
    assert!(out.contains("undid the 3 ops done before it"), "{out}");
    // The file has its old content and mode again; what the sequence made is gone.
    assert_eq!(std::fs::read_to_string(&conf).unwrap(), "old\n");
    let mode = std::fs::metadata(&conf).unwrap().permissions().mode() & 0o7777;
    assert_eq!(mode, 0o600, "{out}");
    assert!(!Path::new(&s.path("t")).exists(), "{out}");
    assert!(!out.contains("MOUNTED"), "{out}");
    // A FIFO in the way is refused by name (opening it to write would block forever).
    assert!(
        out.contains("fifo: ") && out.contains("a device, FIFO or socket, not a regular file"),
        "{out}"
    );
    let meta = std::fs::symlink_metadata(&fifo).unwrap();
    assert!(std::os::unix::fs::FileTypeExt::is_fifo(&meta.file_type()));
}

/// A tree holding the usual tricks.
fn hostile_tree(dir: &str, hostdir: &str) {
    std::fs::create_dir_all(format!("{dir}/real")).unwrap();
    std::os::unix::fs::symlink("/", format!("{dir}/etc")).unwrap();
    std::os::unix::fs::symlink("../../../../../../..", format!("{dir}/up")).unwrap();
    std::os::unix::fs::symlink(hostdir, format!("{dir}/abs")).unwrap();
    std::os::unix::fs::symlink(format!("../../../../..{hostdir}"), format!("{dir}/rel")).unwrap();
    std::os::unix::fs::symlink("/real", format!("{dir}/inside")).unwrap();
}

fn assert_host_untouched(hostdir: &str, tag: &str) {
    assert_eq!(
        std::fs::read_dir(hostdir).unwrap().count(),
        0,
        "something was created in {hostdir}"
    );
    for p in [
        format!("/{tag}"),
        format!("/etc/{tag}"),
        format!("/tmp/{tag}"),
    ] {
        assert!(!Path::new(&p).exists(), "{p} was created on the host");
    }
}

#[test]
fn hostile_source_tree_never_leads_outside_the_root() {
    let s = Scratch::new("evil");
    let tag = format!("ctrsh-evil-{}", unique("t"));
    let hostdir = s.path("hostdir");
    std::fs::create_dir_all(&hostdir).unwrap();
    let tree = s.path("tree");
    hostile_tree(&tree, &hostdir);
    std::fs::create_dir_all(s.path("newroot")).unwrap();
    let out = private_ok(
        &s,
        &format!(
            r#"let r = mount_seq([dir("/etc/{tag}"), file("/up/{tag}.f", "x"), #{{ op: "tmpfs", path: "/inside/{tag}" }},
                                  #{{ op: "tmpfs", path: "/abs/{tag}", may_fail: true }}, #{{ op: "dir", path: "/rel/{tag}", may_fail: true }},
                                  symlink("/", "/up/{tag}.l"), #{{ op: "bind", src: "/usr", dst: "/etc/{tag}.b", ro: true }}], #{{ root: "{tree}" }});
            for x in r {{ print(`${{x.op}} ${{x.ok}} ${{x.path ?? x.error.message}}`); }}
            bind("/usr", "/up/etc/{tag}.c", #{{ root: "{tree}", ro: true }});
            try {{ mkdir("/abs/{tag}.d", #{{ root: "{tree}" }}); }} catch (e) {{ print(`mkdir: ${{e.message}}`); }}
            let fs = rootfs(#{{ fsroot: #{{ ro: "{tree}" }}, entries: [file("/etc/{tag}.g", "x"), ro_bind("/usr", "/rel/x")] }});
            try {{ fs.build("{s}/newroot"); print("BUILT"); }} catch (e) {{ print(`rootfs: ${{e.message}}`); }}
            let fs = rootfs(#{{ fsroot: #{{ ro: "{tree}" }}, entries: [file("/etc/{tag}.g", "x")] }});
            fs.build("{s}/newroot");
            print(`newroot=${{list_dir("{s}/newroot")}}`);"#,
            s = s.root()
        ),
    );
    // Everything landed inside the tree...
    for p in [
        tag.clone(),
        format!("{tag}.f"),
        format!("{tag}.l"),
        format!("{tag}.b"),
        format!("{tag}.c"),
    ] {
        assert!(
            std::fs::symlink_metadata(format!("{tree}/{p}")).is_ok(),
            "{p} not in the tree: {out}"
        );
    }
    // ...links to places missing inside the root are refused, not followed to the host...
    assert!(
        out.contains("tmpfs false open(abs, dst): a dangling symlink is in the way"),
        "{out}"
    );
    assert!(out.contains("dir false"), "{out}");
    assert!(
        out.contains("mkdir: ") && out.contains("rootfs: ") && !out.contains("BUILT"),
        "{out}"
    );
    // ...the new root got the file through its `etc -> /` link, inside itself...
    let newroot = out.lines().find(|l| l.starts_with("newroot=")).expect(&out);
    assert!(
        newroot.contains(&format!("\"{tag}.g\"")) && newroot.contains("\"_fsroot_ro\""),
        "{out}"
    );
    // mount_seq reports where things really went.
    assert!(out.contains(&format!("dir true {tree}/{tag}\n")), "{out}");
    assert!(
        out.contains(&format!("tmpfs true {tree}/real/{tag}\n")),
        "{out}"
    );
    // ...mounts too, as the script's own mountinfo shows...
    let m = inner_mounts(&out);
    for (t, _, _) in &m {
        assert!(
            !t.starts_with(&hostdir) && !t.starts_with(&format!("/etc/{tag}")),
            "mount outside the root: {t}"
        );
    }
    assert!(
        m.iter()
            .any(|(t, f, _)| *t == format!("{tree}/real/{tag}") && f == "tmpfs"),
        "{m:?}"
    );
    assert!(
        m.iter().any(|(t, _, _)| *t == format!("{tree}/{tag}.b")),
        "{m:?}"
    );
    // ...and nothing on the host.
    assert_host_untouched(&hostdir, &tag);
    // Paths that climb out by `..` alone are refused outright.
    let err = private_err(
        &s,
        &format!(r#"mount_seq([dir("../../{tag}")], #{{ root: "{tree}" }});"#),
    );
    assert!(
        err.contains("outside the root") && err.contains("path"),
        "{err}"
    );
    assert_host_untouched(&hostdir, &tag);
}

#[test]
fn fsroot_refuses_bad_names_and_makes_rw_dirs_inside_the_rw_tree() {
    let s = Scratch::new("fsr");
    let tag = format!("ctrsh-fsr-{}", unique("n"));
    let hostdir = s.path("hostdir");
    for d in ["ro/etc", "rw", "rw2", "root", "hostdir"] {
        std::fs::create_dir_all(s.path(d)).unwrap();
    }
    let (ro, rw) = (s.path("ro"), s.path("rw"));
    // Names that are not plain top-level ones are refused by name, never dropped quietly.
    for (bad, want) in [
        ("/usr", "write \"usr\""),
        ("../x", "not a plain top-level name"),
        ("a/b", "not a plain top-level name"),
        ("", "an empty name"),
        (".", "not a name of the root"),
        ("..", "not a name of the root"),
        ("_fsroot_rw", "the scheme's own"),
    ] {
        for key in ["links", "rw_dirs"] {
            let err = private_err(
                &s,
                &format!(
                    r#"rootfs(#{{ fsroot: #{{ ro: "{ro}", rw: "{rw}", {key}: ["etc", "{bad}"] }} }}).build("{root}");"#,
                    root = s.path("root")
                ),
            );
            assert!(
                err.contains(&format!("rootfs(fsroot.{key})")) && err.contains(want),
                "{key} {bad:?}: {err}"
            );
        }
    }
    // rw_dirs without a read-write source would be links to nothing.
    let err = private_err(
        &s,
        &format!(r#"rootfs(#{{ fsroot: #{{ ro: "{ro}", rw_dirs: ["var"] }} }});"#),
    );
    assert!(
        err.contains("rootfs(fsroot.rw_dirs)") && err.contains("give fsroot.rw too"),
        "{err}"
    );
    assert_eq!(std::fs::read_dir(&rw).unwrap().count(), 0, "rw touched");
    // rw_dirs missing in the rw tree are made there (0755), so their links lead somewhere.
    let out = private_ok(
        &s,
        &format!(
            r#"rootfs(#{{ fsroot: #{{ ro: "{ro}", rw: "{rw}", rw_dirs: ["var", "home"] }} }}).build("{root}");
            print(`root=${{list_dir("{root}")}}`);
            print(`var=${{read_link("{root}/var")}} ${{list_dir("{root}/var")}}`);
            write_file("{root}/home/f", "x");"#,
            root = s.path("root")
        ),
    );
    assert!(
        out.contains("root=[\"_fsroot_ro\", \"_fsroot_rw\", \"etc\", \"home\", \"var\"]"),
        "{out}"
    );
    assert!(out.contains("var=_fsroot_rw/var []"), "{out}");
    for d in ["var", "home"] {
        let m = std::fs::symlink_metadata(s.path(&format!("rw/{d}"))).unwrap();
        assert!(m.is_dir() && m.mode() & 0o7777 == 0o755, "rw/{d}: {m:?}");
    }
    assert_eq!(std::fs::read_to_string(s.path("rw/home/f")).unwrap(), "x");
    // A symlink in the rw tree never makes it create outside that tree.
    std::os::unix::fs::symlink(format!("{hostdir}/{tag}"), s.path("rw2/var")).unwrap();
    std::os::unix::fs::symlink(format!("../../..{hostdir}/{tag}"), s.path("rw2/srv")).unwrap();
    for d in ["var", "srv"] {
        let err = private_err(
            &s,
            &format!(
                r#"rootfs(#{{ fsroot: #{{ ro: "{ro}", rw: "{rw2}", rw_dirs: ["{d}"] }} }}).build("{root}");"#,
                rw2 = s.path("rw2"),
                root = s.path("root")
            ),
        );
        assert!(
            err.contains("fsroot.rw_dirs")
                && err.contains(&format!("making {d} in the read-write source"))
                && err.contains("a dangling symlink is in the way"),
            "{err}"
        );
    }
    assert_host_untouched(&hostdir, &tag);
    assert_eq!(std::fs::read_dir(s.path("root")).unwrap().count(), 0);
}

/// Every fsroot link leads somewhere: a name only in the read-write source links there, a
/// name in neither source and a name the rootfs makes itself are refused, by name.
#[test]
fn fsroot_links_never_dangle() {
    let s = Scratch::new("fsl");
    for d in ["ro/etc", "rw/var", "rw/only", "root", "root2"] {
        std::fs::create_dir_all(s.path(d)).unwrap();
    }
    let (ro, rw) = (s.path("ro"), s.path("rw"));
    let out = private_ok(
        &s,
        &format!(
            r#"rootfs(#{{ fsroot: #{{ ro: "{ro}", rw: "{rw}" }} }}).build("{root}");
            for n in list_dir("{root}") {{ print(`${{n}} -> ${{read_link("{root}/" + n)}}`); }}
            rootfs(#{{ fsroot: #{{ rw: "{rw}" }} }}).build("{root2}");
            print(`only-rw: ${{read_link("{root2}/var")}}`);
            for links in [["etc", "nosuch"], ["etc", "proc"]] {{
                try {{ rootfs(#{{ proc: true, fsroot: #{{ ro: "{ro}", rw: "{rw}", links: links }} }}).build("{root}/etc"); print("BUILT"); }}
                catch (e) {{ print(`err: ${{e.message}}`); }}
            }}"#,
            root = s.path("root"),
            root2 = s.path("root2")
        ),
    );
    assert!(out.contains("etc -> _fsroot_ro/etc"), "{out}");
    assert!(out.contains("only -> _fsroot_rw/only"), "{out}");
    assert!(out.contains("var -> _fsroot_rw/var"), "{out}");
    assert!(out.contains("only-rw: _fsroot_rw/var"), "{out}");
    assert!(!out.contains("BUILT"), "{out}");
    assert!(
        out.contains("rootfs(fsroot.links): \"nosuch\" is in neither fsroot source"),
        "{out}"
    );
    assert!(
        out.contains("rootfs(fsroot.links): \"proc\" is made by the rootfs itself"),
        "{out}"
    );
}

fn mksquashfs(src: &str, image: &str) {
    let st = Command::new("mksquashfs")
        .args([
            src,
            image,
            "-all-root",
            "-no-progress",
            "-quiet",
            "-noappend",
        ])
        .stdout(Stdio::null())
        .status()
        .expect("mksquashfs is installed");
    assert!(st.success());
}

/// Wait until no loop device is backed by `image`.
fn loop_released(image: &str) -> bool {
    let end = Instant::now() + Duration::from_secs(5);
    loop {
        let out = Command::new("losetup").arg("-a").output().unwrap();
        let text = String::from_utf8_lossy(&out.stdout).to_string();
        let mut busy = text.contains(image);
        for e in std::fs::read_dir("/sys/block").unwrap().flatten() {
            if let Ok(b) = std::fs::read_to_string(e.path().join("loop/backing_file")) {
                busy |= b.trim() == image;
            }
        }
        if !busy {
            return true;
        }
        if Instant::now() > end {
            return false;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn squashfs_subdirectory_and_loop_device_released() {
    let s = Scratch::new("sq");
    for (d, f) in [
        ("generic/etc", "os-release"),
        ("alpine/etc", "alpine-release"),
    ] {
        std::fs::create_dir_all(s.path(&format!("src/{d}"))).unwrap();
        std::fs::write(s.path(&format!("src/{d}/{f}")), "x\n").unwrap();
    }
    let image = s.path("images.sqfs");
    mksquashfs(&s.path("src"), &image);
    std::fs::create_dir_all(s.path("mnt")).unwrap();
    let out = private_ok(
        &s,
        &format!(
            r#"let m = squashfs("{image}", "{mnt}", #{{ subdir: "alpine" }});
            print(`dev=${{m.device}}`);
            print(`ls=${{list_dir("{mnt}/etc")}}`);
            try {{ write_file("{mnt}/etc/x", "y"); }} catch (e) {{ print(`write: ${{e.errno_name}}`); }}
            for x in mounts() {{ if x.target == "{mnt}" {{ print(`root=${{x.root}} opts=${{x.options}}`); }} }}
            umount("{mnt}");
            print("unmounted");"#,
            mnt = s.path("mnt")
        ),
    );
    assert!(out.contains("ls=[\"alpine-release\"]"), "{out}");
    assert!(out.contains("write: EROFS"), "{out}");
    assert!(out.contains("root=/alpine opts=ro,nosuid,nodev"), "{out}");
    assert!(out.contains("dev=/dev/loop"), "{out}");
    assert!(loop_released(&image), "the loop device still holds {image}");
    // Also when the script just ends with the image mounted: the recipe's teardown (and the
    // end of its mount namespace) release it.
    private_ok(
        &s,
        &format!(r#"squashfs("{image}", "{mnt}");"#, mnt = s.path("mnt")),
    );
    assert!(loop_released(&image), "the loop device still holds {image}");
}

#[test]
fn squashfs_subdir_must_name_a_directory_inside_the_image() {
    let s = Scratch::new("sqs");
    std::fs::create_dir_all(s.path("src/generic/etc")).unwrap();
    std::fs::write(s.path("src/generic/etc/os-release"), "x\n").unwrap();
    let image = s.path("images.sqfs");
    mksquashfs(&s.path("src"), &image);
    std::fs::create_dir_all(s.path("mnt")).unwrap();
    // A subdir that is the image's root or climbs out of it is refused by name: it would
    // quietly mount the whole image.
    let out = private_ok(
        &s,
        &format!(
            r#"for d in ["", ".", "/", "a/..", "../..", "generic/../.."] {{
                try {{ squashfs("{image}", "{mnt}", #{{ subdir: d }}); print(`MOUNTED ${{d}}`); }}
                catch (e) {{ print(`refused ${{d.to_debug()}}: ${{e.message}}`); }}
            }}
            import "ctr" as ctr;
            try {{ ctr::squashfs_root("{image}", "", #{{}}); print("ROOT MADE"); }}
            catch (e) {{ print(`root: ${{e.message}}`); }}
            let r = ctr::squashfs_root("{image}", (), #{{}});
            print(`whole image ${{r}}`);"#,
            mnt = s.path("mnt")
        ),
    );
    for d in ["\"\"", "\".\"", "\"/\"", "\"a/..\""] {
        assert!(
            out.contains(&format!(
                "refused {d}: squashfs(subdir): {d} is the image's root"
            )),
            "{d}: {out}"
        );
    }
    for d in ["\"../..\"", "\"generic/../..\""] {
        assert!(
            out.contains(&format!(
                "refused {d}: squashfs(subdir): {d} climbs out of the image"
            )),
            "{d}: {out}"
        );
    }
    assert!(
        out.contains("root: squashfs(subdir): \"\" is the image's root"),
        "{out}"
    );
    assert!(
        !out.contains("MOUNTED") && !out.contains("ROOT MADE"),
        "{out}"
    );
    assert!(out.contains("whole image Rootfs("), "{out}");
    assert!(loop_released(&image));
}

#[test]
fn ctr_squashfs_root_rw_dirs_are_plain_names() {
    let s = Scratch::new("sqr");
    std::fs::create_dir_all(s.path("src/generic/etc")).unwrap();
    let image = s.path("images.sqfs");
    mksquashfs(&s.path("src"), &image);
    // "../x" would be made next to the writable tmpfs, on the host's /tmp.
    let tag = format!("ctrsh-sqesc-{}", unique("e"));
    for bad in [
        format!("../{tag}"),
        format!("{tag}/x"),
        String::new(),
        "..".into(),
    ] {
        let err = private_err(
            &s,
            &format!(
                r#"import "ctr" as ctr; ctr::squashfs_root("{image}", "generic", #{{ rw_dirs: ["var", "{bad}"] }});"#
            ),
        );
        let escaped = Path::new(&format!("/tmp/{tag}")).exists();
        let _ = std::fs::remove_dir_all(format!("/tmp/{tag}"));
        assert!(!escaped, "/tmp/{tag} was made on the host");
        assert!(
            err.contains(&format!(
                "ctr::squashfs_root(rw_dirs): {bad:?} is not a plain top-level name"
            )),
            "{bad}: {err}"
        );
    }
    assert!(loop_released(&image));
}

#[test]
fn hostile_squashfs_image_stays_inside() {
    let s = Scratch::new("sqe");
    let tag = format!("ctrsh-evil-{}", unique("q"));
    let hostdir = s.path("hostdir");
    std::fs::create_dir_all(&hostdir).unwrap();
    std::fs::create_dir_all(s.path("src")).unwrap();
    hostile_tree(&s.path("src/img"), &hostdir);
    let image = s.path("evil.sqfs");
    mksquashfs(&s.path("src"), &image);
    std::fs::create_dir_all(s.path("mnt")).unwrap();
    std::fs::create_dir_all(s.path("root")).unwrap();
    let out = private_ok(
        &s,
        &format!(
            r#"squashfs("{image}", "{mnt}", #{{ subdir: "img/etc" }});
            print(`etc=${{list_dir("{mnt}")}}`);
            umount("{mnt}");
            try {{ squashfs("{image}", "{mnt}", #{{ subdir: "img/abs" }}); print("abs MOUNTED"); }} catch (e) {{ print(`abs: ${{e.errno_name}}`); }}
            squashfs("{image}", "{mnt}", #{{ subdir: "img" }});
            let r = rootfs(#{{ fsroot: #{{ ro: "{mnt}" }}, entries: [file("/etc/{tag}", "x"), dir("/up/{tag}.d"), file("/rel/{tag}.f", "x")] }});
            try {{ r.build("{root}"); print(`built=${{list_dir("{root}")}}`); }} catch (e) {{ print(`build: ${{e.message}}`); }}"#,
            mnt = s.path("mnt"),
            root = s.path("root")
        ),
    );
    // `etc -> /` inside the image is the image's own root, not the host's.
    assert!(out.contains("etc=[\"img\"]"), "{out}");
    assert!(out.contains("abs: ENOENT"), "{out}");
    assert!(!out.contains("MOUNTED"), "{out}");
    for (t, _, _) in inner_mounts(&out) {
        assert!(!t.starts_with(&hostdir), "mount on the host dir {t}");
    }
    assert_host_untouched(&hostdir, &tag);
    assert!(loop_released(&image));
}

#[test]
fn idmapped_bind_shows_host_uid_1000_as_root_in_the_container() {
    let s = Scratch::new("idm");
    std::fs::create_dir_all(s.path("src")).unwrap();
    std::fs::create_dir_all(s.path("dst")).unwrap();
    std::fs::write(s.path("src/f"), "hi").unwrap();
    std::os::unix::fs::chown(s.path("src/f"), Some(1000), Some(1000)).unwrap();
    // The container's user namespace maps its root to host uid 100000; the id-mapping
    // namespace maps uid 1000 to that same host uid, so files owned by 1000 on disk are
    // seen as 100000 through the mount, which is root inside the container.
    let ctr = Userns::start("0 100000 65536");
    let idm = Userns::start("1000 100000 1");
    let ready = s.path("ready");
    let done = s.path("done");
    let mut proc = Command::new(assert_cmd::cargo::cargo_bin("ctrsh"))
        .env_remove("CTRSH_PATH")
        .arg("-e")
        .arg(format!(
            r#"{PRIVATE}bind("{src}", "{dst}", #{{ idmap: {idm}, ro: true }});
            write_file("{ready}", `${{pid()}}`);
            while !path_exists("{done}") {{ sleep(0.05); }}"#,
            src = s.path("src"),
            dst = s.path("dst"),
            idm = idm.pid
        ))
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let end = Instant::now() + Duration::from_secs(20);
    while !Path::new(&ready).exists() || std::fs::read_to_string(&ready).unwrap().is_empty() {
        assert!(Instant::now() < end, "script did not get ready");
        std::thread::sleep(Duration::from_millis(20));
    }
    let shell = std::fs::read_to_string(&ready).unwrap();
    let stat = |user: Option<u32>, path: &str| -> String {
        let mut c = Command::new("nsenter");
        c.arg(format!("--mount=/proc/{shell}/ns/mnt"));
        if let Some(p) = user {
            c.arg(format!("--user=/proc/{p}/ns/user"));
        }
        let o = c.args(["stat", "-c", "%u:%g", path]).output().unwrap();
        String::from_utf8_lossy(&o.stdout).trim().to_string() + &String::from_utf8_lossy(&o.stderr)
    };
    let inside = stat(Some(ctr.pid), &s.path("dst/f"));
    let host_view = stat(None, &s.path("dst/f"));
    let plain = stat(Some(ctr.pid), &s.path("src/f"));
    std::fs::write(&done, "").unwrap();
    let st = proc.wait().unwrap();
    assert!(st.success());
    assert_eq!(
        inside, "0:0",
        "owner inside the container through the idmapped mount"
    );
    assert_eq!(host_view, "100000:100000");
    assert_eq!(
        plain, "65534:65534",
        "without the idmapped mount the file is unmapped"
    );
    assert_eq!(std::fs::metadata(s.path("src/f")).unwrap().uid(), 1000);
    assert!(host_mounts_with(&s.root()).is_empty());
}

/// A process in a new user namespace with the given uid/gid map (written by the test).
struct Userns {
    pid: u32,
    child: std::process::Child,
}

impl Userns {
    fn start(map: &str) -> Userns {
        let child = Command::new("unshare")
            .args(["--user", "sleep", "120"])
            .spawn()
            .unwrap();
        let pid = child.id();
        let end = Instant::now() + Duration::from_secs(5);
        loop {
            let mine = std::fs::read_link("/proc/self/ns/user").unwrap();
            if std::fs::read_link(format!("/proc/{pid}/ns/user"))
                .map(|l| l != mine)
                .unwrap_or(false)
            {
                break;
            }
            assert!(Instant::now() < end);
            std::thread::sleep(Duration::from_millis(10));
        }
        std::fs::write(format!("/proc/{pid}/uid_map"), map).unwrap();
        std::fs::write(format!("/proc/{pid}/gid_map"), map).unwrap();
        Userns { pid, child }
    }
}

impl Drop for Userns {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn a_directory_onto_a_file_and_a_file_onto_a_directory_are_named() {
    let s = Scratch::new("kind");
    for d in ["dir", "img/etc", "lower2"] {
        std::fs::create_dir_all(s.path(d)).unwrap();
    }
    std::fs::write(s.path("file"), "f").unwrap();
    let image = s.path("img.sqfs");
    mksquashfs(&s.path("img"), &image);
    let (dir, file) = (s.path("dir"), s.path("file"));
    let onto_file = |op: &str, arg: &str, what: &str, errno: &str| {
        format!(
            "{op}({file}, {arg}): the target is a file; {what} needs a directory target: {errno}"
        )
    };
    let onto_dir = |op: &str, arg: &str, errno: &str| {
        format!("{op}({dir}, {arg}): the target is a directory; a file source needs a file target: {errno}")
    };
    let cases: Vec<(String, String, bool)> = vec![
        (
            format!(r#"tmpfs("{file}");"#),
            onto_file("tmpfs", "dst", "a tmpfs", "EINVAL"),
            true,
        ),
        (
            format!(r#"bind("{dir}", "{file}");"#),
            onto_file("bind", "dst", "a directory source", "EINVAL"),
            true,
        ),
        (
            format!(r#"bind("{file}", "{dir}");"#),
            onto_dir("bind", "dst", "EINVAL"),
            true,
        ),
        // squashfs names its target, not the image.
        (
            format!(r#"squashfs("{image}", "{file}");"#),
            onto_file("squashfs", "target", "a squashfs", "EINVAL"),
            true,
        ),
        (
            format!(
                r#"overlay(#{{ lower: ["{dir}", "{lower2}"], target: "{file}" }});"#,
                lower2 = s.path("lower2")
            ),
            onto_file("overlay", "target", "an overlay", "EINVAL"),
            true,
        ),
        (
            format!(r#"mount(#{{ source: "none", target: "{file}", fstype: "tmpfs" }});"#),
            onto_file("mount", "target", "a tmpfs mount", "ENOTDIR"),
            true,
        ),
        (
            format!(r#"mount(#{{ source: "{file}", target: "{dir}", flags: ["bind"] }});"#),
            onto_dir("mount", "target", "ENOTDIR"),
            true,
        ),
        // The mount(2) fallbacks say the same.
        (
            format!(r#"tmpfs("{file}");"#),
            onto_file("tmpfs", "dst", "a tmpfs", "ENOTDIR"),
            false,
        ),
        (
            format!(r#"bind("{dir}", "{file}");"#),
            onto_file("bind", "dst", "a directory source", "ENOTDIR"),
            false,
        ),
        (
            format!(r#"bind("{file}", "{dir}");"#),
            onto_dir("bind", "dst", "ENOTDIR"),
            false,
        ),
    ];
    for (code, want, fd_api) in cases {
        let before = host_mounts_with(&s.root());
        let mut c = ctrsh();
        if !fd_api {
            c.env("CTRSH_LEGACY_MOUNT", "1");
        }
        let out = c
            .arg("-e")
            .arg(format!("{PRIVATE}{code}"))
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{code}");
        assert!(
            err.contains(&want),
            "for {code}: expected {want:?} in:\n{err}"
        );
        assert!(err.contains("hint: "), "{err}");
        assert_eq!(host_mounts_with(&s.root()), before);
    }
    assert!(loop_released(&image));
    assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 0);
}

#[test]
fn mount_data_and_overlay_errors_say_which_option() {
    let s = Scratch::new("dat");
    for d in ["m", "lower", "u/w", "w"] {
        std::fs::create_dir_all(s.path(d)).unwrap();
    }
    std::fs::write(s.path("file"), "f").unwrap();
    let (m, lower, u) = (s.path("m"), s.path("lower"), s.path("u"));
    let cases: Vec<(String, Vec<String>, bool)> = vec![
        // mount(2) says EINVAL; the filesystem context has the kernel's words.
        (
            format!(
                r#"mount(#{{ source: "none", target: "{m}", fstype: "tmpfs", data: "mode=755,size=12Q" }});"#
            ),
            vec![format!(
                r#"mount({m}, data): option "size=12Q" refused: tmpfs: Bad value for 'size'"#
            )],
            true,
        ),
        (
            format!(
                r#"mount(#{{ source: "proc", target: "{m}", fstype: "proc", data: "bogus=1" }});"#
            ),
            vec![r#"option "bogus=1" refused: proc: Unknown parameter 'bogus'"#.into()],
            true,
        ),
        // Without the fd-based API: the argument is named, the kernel log pointed to.
        (
            format!(
                r#"mount(#{{ source: "none", target: "{m}", fstype: "tmpfs", data: "size=12Q" }});"#
            ),
            vec![format!("mount({m}, data)"), "dmesg".into()],
            false,
        ),
        (
            format!(
                r#"overlay(#{{ lower: ["{lower}"], upper: "{file}", work: "{w}", target: "{m}" }});"#,
                file = s.path("file"),
                w = s.path("w")
            ),
            vec![format!(
                "hint: overlay: {} is not a directory",
                s.path("file")
            )],
            true,
        ),
        (
            format!(
                r#"overlay(#{{ lower: ["{lower}"], upper: "{u}", work: "{u}/", target: "{m}" }});"#
            ),
            vec![format!("overlay(work): {u}/ is the upper directory")],
            true,
        ),
        (
            format!(
                r#"overlay(#{{ lower: ["{lower}"], upper: "{u}", work: "{u}/w", target: "{m}" }});"#
            ),
            vec!["neither inside the other".into()],
            true,
        ),
    ];
    for (code, wants, fd_api) in cases {
        let mut c = ctrsh();
        if !fd_api {
            c.env("CTRSH_LEGACY_MOUNT", "1");
        }
        let out = c
            .arg("-e")
            .arg(format!("{PRIVATE}{code}"))
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{code}");
        for w in wants {
            assert!(err.contains(&w), "for {code}: expected {w:?} in:\n{err}");
        }
        assert!(!err.contains("overlay: overlay:"), "{err}");
        assert!(host_mounts_with(&s.root()).is_empty());
    }
}

#[test]
fn idmap_and_mounts_say_what_is_wrong_with_the_process() {
    let s = Scratch::new("idp");
    std::fs::create_dir_all(s.path("src")).unwrap();
    std::fs::create_dir_all(s.path("dst")).unwrap();
    let (src, dst) = (s.path("src"), s.path("dst"));
    let pid_max: i64 = std::fs::read_to_string("/proc/sys/kernel/pid_max")
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let gone = pid_max + 1;
    let exited = r#"let p = spawn(#{ cmd: ["true"] }); p.wait();"#;
    let cases: Vec<(String, Vec<String>)> = vec![
        // The shell's own user namespace, by Ns, by Process and by pid (an int is a pid, as
        // everywhere a namespace is taken): the kernel's EPERM is about that, not maps.
        (
            format!(r#"bind("{src}", "{dst}", #{{ idmap: ns_of(pid(), "user") }});"#),
            vec!["idmap".into(), "is the initial user namespace".into()],
        ),
        (
            format!(r#"bind("{src}", "{dst}", #{{ idmap: spawn(#{{ cmd: ["sleep", "10"] }}) }});"#),
            vec!["is the initial user namespace".into()],
        ),
        (
            format!(r#"bind("{src}", "{dst}", #{{ idmap: pid() }});"#),
            vec!["is the initial user namespace".into()],
        ),
        (
            format!(r#"{exited} bind("{src}", "{dst}", #{{ idmap: p }});"#),
            vec!["bind(idmap): no process ".into(), ": it has exited".into()],
        ),
        (
            format!(r#"{exited} mounts(p);"#),
            vec!["mounts(pid): no process ".into(), ": it has exited".into()],
        ),
        (
            format!("mounts({gone});"),
            vec![format!("mounts(pid): no process {gone}")],
        ),
        (
            "mounts(-1);".into(),
            vec!["mounts(pid): -1 is not a pid".into()],
        ),
        (
            "mounts(0);".into(),
            vec![
                "mounts(pid): 0 is not a pid".into(),
                "mounts() without an argument".into(),
            ],
        ),
    ];
    for (code, wants) in cases {
        let err = private_err(&s, &code);
        for w in wants {
            assert!(err.contains(&w), "for {code}: expected {w:?} in:\n{err}");
        }
        assert!(!err.contains("ENOENT") && !err.contains("/proc/"), "{err}");
        assert!(!err.contains("must have a uid/gid map"), "{err}");
    }
}

#[test]
fn renameat2_exchange_and_noreplace() {
    let s = Scratch::new("rn");
    std::fs::write(s.path("a"), "A").unwrap();
    std::fs::write(s.path("b"), "B").unwrap();
    let out = eval_ok(&format!(
        r#"renameat2("{a}", "{b}", #{{ exchange: true }});
        try {{ renameat2("{a}", "{b}", #{{ noreplace: true }}); }} catch (e) {{ print(e.errno_name); }}"#,
        a = s.path("a"),
        b = s.path("b")
    ));
    assert_eq!(std::fs::read_to_string(s.path("a")).unwrap(), "B");
    assert_eq!(std::fs::read_to_string(s.path("b")).unwrap(), "A");
    assert!(out.contains("EEXIST"), "{out}");
    // whiteout: `a` becomes the 0:0 character device overlayfs reads as "deleted".
    eval_ok(&format!(
        r#"renameat2("{a}", "{c}", #{{ whiteout: true }});"#,
        a = s.path("a"),
        c = s.path("c")
    ));
    use std::os::unix::fs::FileTypeExt;
    let m = std::fs::symlink_metadata(s.path("a")).unwrap();
    assert!(m.file_type().is_char_device() && m.rdev() == 0);
    assert_eq!(std::fs::read_to_string(s.path("c")).unwrap(), "B");
    // Like every other fs function: no relative paths (they would go through the cwd),
    // and an empty one is called that.
    for (code, want) in [
        (
            format!(r#"renameat2("", "{}");"#, s.path("x")),
            "renameat2(from): an empty path",
        ),
        (
            format!(r#"renameat2("{}", "");"#, s.path("c")),
            "renameat2(to): an empty path",
        ),
        (
            format!(r#"renameat2("c", "{}");"#, s.path("x")),
            "renameat2(from): \"c\" is relative",
        ),
        (
            format!(
                r#"renameat2("{}", "x", #{{ noreplace: true }});"#,
                s.path("c")
            ),
            "renameat2(to): \"x\" is relative",
        ),
    ] {
        let err = ctrsh()
            .current_dir(&s.0)
            .arg("-e")
            .arg(&code)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&err.stderr);
        assert!(
            err.contains(want),
            "for {code}: expected {want:?} in:\n{err}"
        );
    }
    assert_eq!(std::fs::read_to_string(s.path("c")).unwrap(), "B");
    assert!(!Path::new(&s.path("x")).exists());
}

#[test]
fn rootfs_build_lists_exactly_the_entries_and_pivot_into_it() {
    let s = Scratch::new("rfs");
    std::fs::create_dir_all(s.path("root")).unwrap();
    let out = private_ok(
        &s,
        &format!(
            r#"let r = rootfs(#{{ size: "8m", dev: true, proc: true, sysfs: true, devpts: true, mqueue: true, tmp: true, run_dirs: true,
                          entries: [ro_bind("/usr"), symlink("usr/bin", "/bin"), symlink("usr/lib", "/lib"), symlink("usr/lib64", "/lib64"),
                                    symlink("usr/sbin", "/sbin"), file("/etc/hostname", "box\n", 0o644), dir("/home/u", 0o700)] }});
            r.build("{root}");
            print(`built=${{list_dir("{root}")}}`);
            print(`dev=${{list_dir("{root}/dev")}}`);
            pivot_into("{root}");
            print(`root=${{list_dir("/")}}`);
            print(`hostname=${{read_file("/etc/hostname")}}`);
            try {{ write_file("/usr/ctrsh-x", "x"); }} catch (e) {{ print(`usr: ${{e.errno_name}}`); }}
            write_file("/tmp/ok", "1");
            print(`hostonly=${{path_exists("/root") || path_exists("/var") || path_exists("{root}")}}`);
            print(`ls=${{path_exists("/bin/ls")}}`);"#,
            root = s.path("root")
        ),
    );
    let want = "[\"bin\", \"dev\", \"etc\", \"home\", \"lib\", \"lib64\", \"proc\", \"run\", \"sbin\", \"sys\", \"tmp\", \"usr\"]";
    assert!(out.contains(&format!("built={want}")), "{out}");
    assert!(out.contains(&format!("root={want}")), "{out}");
    assert!(out.contains("dev=[\"fd\", \"full\", \"mqueue\", \"null\", \"ptmx\", \"pts\", \"random\", \"shm\", \"stderr\", \"stdin\", \"stdout\", \"tty\", \"urandom\", \"zero\"]"), "{out}");
    assert!(out.contains("hostname=box"), "{out}");
    assert!(out.contains("usr: EROFS"), "{out}");
    assert!(out.contains("hostonly=false"), "{out}");
    assert!(out.contains("ls=true"), "{out}");
    // After the pivot the script's mount table is the container's only.
    let m = inner_mounts(&out);
    let targets: Vec<&str> = m.iter().map(|(t, _, _)| t.as_str()).collect();
    assert!(
        targets.contains(&"/")
            && targets.contains(&"/proc")
            && targets.contains(&"/dev/pts")
            && targets.contains(&"/usr"),
        "{targets:?}"
    );
    assert!(
        !targets.iter().any(|t| t.starts_with("/tmp/ctrsh-fs")),
        "{targets:?}"
    );
    assert!(
        m.iter()
            .any(|(t, f, o)| t == "/" && f == "tmpfs" && o.contains("nosuid")),
        "{m:?}"
    );
}

#[test]
fn chroot_pivot_swaps_two_mounts() {
    let s = Scratch::new("cp");
    std::fs::create_dir_all(s.path("app")).unwrap();
    let out = private_ok(
        &s,
        &format!(
            r#"tmpfs("{app}"); write_file("{app}/A", "a"); mkdir("{app}/next");
            tmpfs("{app}/next"); write_file("{app}/next/B", "b"); mkdir("{app}/next/old");
            chroot_pivot("{app}", "/next", "/next/old");
            print(`now=${{list_dir("{app}")}} old=${{list_dir("{app}/old")}}`);
            print(`cwd=${{list_dir("/tmp").len() > 0}}`);"#,
            app = s.path("app")
        ),
    );
    assert!(
        out.contains("now=[\"B\", \"old\"] old=[\"A\", \"next\"]"),
        "{out}"
    );
    assert!(
        out.contains("cwd=true"),
        "the shell's own root is back: {out}"
    );
}

#[test]
fn chroot_pivot_makes_a_dir_the_root() {
    let s = Scratch::new("cq");
    std::fs::create_dir_all(s.path("r")).unwrap();
    std::fs::write(s.path("r/marker"), "m").unwrap();
    let out = private_ok(
        &s,
        &format!(
            r#"chroot_pivot("{r}"); print(`root=${{list_dir("/")}}`);
        mkdir("/proc"); mount(#{{ source: "proc", target: "/proc", fstype: "proc" }});"#,
            r = s.path("r")
        ),
    );
    assert!(out.contains("root=[\"marker\"]"), "{out}");
}

#[test]
fn chroot_pivot_errors_name_chroot_pivot() {
    let s = Scratch::new("cpe");
    let err = private_err(&s, r#"chroot_pivot("tmp");"#);
    assert!(
        err.contains(r#"chroot_pivot(dir): "tmp" is relative"#),
        "{err}"
    );
    assert!(!err.contains("pivot_into"), "{err}");
}

#[test]
fn pivot_root_errors_name_the_missing_path() {
    let s = Scratch::new("pve");
    std::fs::create_dir_all(s.path("m")).unwrap();
    let m = s.path("m");
    let cases: Vec<(String, Vec<String>)> = vec![
        (
            format!(r#"tmpfs("{m}"); pivot_root("{m}", "{m}/old");"#),
            vec![
                format!("pivot_root({m}/old, put_old): put_old does not exist"),
                format!(r#"mkdir("{m}/old") first"#),
            ],
        ),
        (
            format!(r#"tmpfs("{m}"); pivot_root("{m}/nonexist", "{m}/nonexist/old");"#),
            vec![format!(
                "pivot_root({m}/nonexist, new_root): new_root does not exist"
            )],
        ),
        (
            format!(r#"tmpfs("{m}"); write_file("{m}/old", ""); pivot_root("{m}", "{m}/old");"#),
            vec!["put_old is not a directory".into()],
        ),
        (
            format!(r#"tmpfs("{m}"); chroot_pivot("{m}", "/next", "/next/old");"#),
            vec![format!(
                "chroot_pivot({m}/next, new_root): new_root does not exist"
            )],
        ),
        (
            format!(
                r#"tmpfs("{m}"); mkdir("{m}/next"); tmpfs("{m}/next"); chroot_pivot("{m}", "/next", "/next/old");"#
            ),
            vec![
                format!("chroot_pivot({m}/next/old, put_old): put_old does not exist"),
                format!(r#"mkdir("{m}/next/old") first"#),
            ],
        ),
    ];
    for (code, wants) in cases {
        let err = private_err(&s, &code);
        for w in wants {
            assert!(err.contains(&w), "for {code}: expected {w:?} in:\n{err}");
        }
        assert!(!err.contains("pivot_into"), "{err}");
    }
    assert_eq!(std::fs::read_dir(&m).unwrap().count(), 0);
    // The directory to move into: missing, or not a directory.
    let err = private_err(&s, &format!(r#"pivot_into("{m}/nonexist");"#));
    assert!(
        err.contains(&format!("open({m}/nonexist, dir): no such directory")),
        "{err}"
    );
    std::fs::write(s.path("f"), "").unwrap();
    let err = private_err(&s, &format!(r#"chroot_pivot("{}");"#, s.path("f")));
    assert!(
        err.contains(&format!("open({}, dir): not a directory", s.path("f"))),
        "{err}"
    );
}

#[test]
fn bad_input_is_named_and_changes_nothing() {
    let s = Scratch::new("bad");
    std::fs::create_dir_all(s.path("d")).unwrap();
    let d = s.path("d");
    let bind_nope = format!("entries[1] (bind {d}/nope → /x)");
    let cases: Vec<(String, Vec<&str>)> = vec![
        (
            format!(r#"bind("{d}/missing-source", "{d}");"#),
            vec!["bind(", "src", "does not exist"],
        ),
        (
            format!(r#"mount(#{{ source: "{d}/nope", target: "{d}", flags: ["bind"] }});"#),
            vec!["source", "does not exist"],
        ),
        (
            r#"tmpfs("relative/dir");"#.to_string(),
            vec!["tmpfs(dst)", "relative"],
        ),
        (format!(r#"bind("usr", "{d}");"#), vec!["src", "relative"]),
        (
            format!(r#"mount_seq([#{{ op: "tmpfs", path: "../../../x" }}], #{{ root: "{d}" }});"#),
            vec!["path", "outside the root"],
        ),
        (
            format!(r#"rootfs(#{{ entries: [dir("/../../etc")] }}).build("{d}");"#),
            vec!["path", "outside the root"],
        ),
        (
            format!(r#"mount(#{{ source: "none", target: "{d}", fstype: "tmpfss" }});"#),
            vec![
                "fstype",
                "unknown filesystem type \"tmpfss\"",
                "did you mean tmpfs",
            ],
        ),
        (
            format!(r#"tmpfs("{d}", #{{ size: "12Q" }});"#),
            vec!["size", "\"12Q\" is not a size"],
        ),
        (
            format!(r#"tmpfs("{d}", #{{ sise: "1m" }});"#),
            vec!["sise", "did you mean size"],
        ),
        (
            format!(r#"bind("/usr", "{d}", #{{ read_only: true }});"#),
            vec!["read_only", "unknown option"],
        ),
        (
            format!(
                r#"mount(#{{ source: "none", target: "{d}", fstype: "tmpfs", flags: ["nosiud"] }});"#
            ),
            vec!["flags", "did you mean nosuid"],
        ),
        (
            r#"rootfs(#{ entries: [#{ op: "dirr", path: "/x" }] });"#.to_string(),
            vec!["unknown entry op", "did you mean dir"],
        ),
        (
            format!(r#"rootfs(#{{ entries: [bind("/usr", "{d}")] }});"#),
            vec!["entries", "the entry is bind_entry(src, dst)"],
        ),
        (
            format!(r#"propagation("{d}", "privat");"#),
            vec!["kind", "unknown propagation"],
        ),
        // Entry errors say which entry: its index, op and path.
        (
            r#"rootfs(#{ entries: [dir("/b"), dir("/a", -1)] });"#.to_string(),
            vec!["rootfs(entries[1].mode): dir /a: -1 is not a file mode"],
        ),
        (
            r#"rootfs(#{ entries: [#{ op: "tmpfs", path: "/t", sz: "1m" }] });"#.to_string(),
            vec!["rootfs(entries[0].sz): tmpfs /t: unknown option \"sz\""],
        ),
        (
            r#"rootfs(#{ entries: [ro_bind("/usr"), symlink("", "/x")] });"#.to_string(),
            vec!["rootfs(entries[1].target): symlink /x: an empty symlink target"],
        ),
        (
            format!(r#"rootfs(#{{ entries: [file("/f", "x"), dir("/f/x")] }}).build("{d}");"#),
            vec!["entries[1] (dir /f/x)", "ENOTDIR"],
        ),
        (
            format!(
                r#"rootfs(#{{ entries: [dir("/a"), bind_entry("{d}/nope", "/x")] }}).build("{d}");"#
            ),
            vec![&bind_nope, "ENOENT"],
        ),
        (
            format!(r#"mount_seq([symlink("", "{d}/l")]);"#),
            vec![
                "mount_seq op 1 (symlink) failed; nothing to undo",
                "an empty symlink target",
            ],
        ),
        (
            r#"mkdtemp("");"#.to_string(),
            vec!["mkdtemp(prefix): an empty name"],
        ),
        (
            format!(r#"squashfs("{d}/none.sqfs", "{d}");"#),
            vec!["image", "does not exist"],
        ),
        (
            format!(r#"squashfs("{d}", "{d}");"#),
            vec![
                "squashfs(",
                "image): a directory: the image must be a regular file",
                "bind(dir, target",
            ],
        ),
        (
            format!(r#"squashfs("/dev/null", "{d}");"#),
            vec![
                "squashfs(/dev/null, image): a character device: the image must be a regular file",
            ],
        ),
    ];
    for (code, wants) in cases {
        let err = private_err(&s, &code);
        for w in wants {
            assert!(err.contains(w), "for {code}: expected {w:?} in:\n{err}");
        }
        assert!(!err.contains("panicked"), "{err}");
        assert_eq!(
            std::fs::read_dir(&d).unwrap().count(),
            0,
            "{code} left something in {d}"
        );
    }
    let mode = std::fs::metadata(&d).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o755);
}

/// Run a script from scripts/.
fn run_script(name: &str, args: &[&str]) -> std::process::Output {
    let path = format!("{}/scripts/{name}", env!("CARGO_MANIFEST_DIR"));
    ctrsh().arg(&path).args(args).output().unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[test]
fn script_hello_prints_hello_world() {
    let before = std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .lines()
        .count();
    let out = run_script("hello.rhai", &[]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "Hello, world!\n");
    // Every word is echoed, as echo would.
    let out = run_script("hello.rhai", &["a", "b c", "d"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "a b c d\n");
    let after = std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .lines()
        .count();
    assert_eq!(before, after, "the host's mount table changed");
}

#[test]
fn script_toybox_root_is_exactly_the_plan() {
    let tag = unique("toy");
    let out = run_script(
        "toybox.rhai",
        &[
            "/bin/sh",
            "-c",
            &format!(
                "ls /; touch /usr/{tag} 2>&1; ls /home /var 2>&1; ls /proc | grep -c '^[0-9]'; \
                 echo tmp=$(grep ' /tmp ' /proc/self/mountinfo | grep -c ' - tmpfs ') $(stat -c %a /tmp)"
            ),
        ],
    );
    let o = text(&out.stdout);
    assert!(
        o.starts_with("bin\ndev\netc\nlib\nlib64\nproc\nroot\nsbin\nsys\ntmp\nusr\n"),
        "{o}"
    );
    assert!(o.contains("Read-only file system"), "{o}");
    assert!(o.contains("/home") && o.contains("No such file"), "{o}");
    // /tmp is a tmpfs of its own, world-writable and sticky, as toybox mounts it.
    assert!(o.contains("tmp=1 1777"), "{o}");
    assert!(!Path::new(&format!("/usr/{tag}")).exists());
    assert!(host_mounts_with("toybox").is_empty());
}

#[test]
fn script_ctrtool_squashfs_runs_from_a_subdirectory() {
    let s = Scratch::new("ctq");
    // Two trees in one image; each holds a shell and the libraries it needs.
    for tree in ["generic", "other"] {
        for f in [
            "/usr/bin/sh",
            "/usr/bin/ls",
            "/usr/bin/cat",
            "/lib/x86_64-linux-gnu/libc.so.6",
            "/lib64/ld-linux-x86-64.so.2",
            "/lib/x86_64-linux-gnu/libselinux.so.1",
            "/lib/x86_64-linux-gnu/libpcre2-8.so.0",
        ] {
            if Path::new(f).exists() {
                let dst = s.path(&format!("src/{tree}{f}"));
                std::fs::create_dir_all(Path::new(&dst).parent().unwrap()).unwrap();
                std::fs::copy(f, &dst).unwrap();
            }
        }
        std::os::unix::fs::symlink("usr/bin", s.path(&format!("src/{tree}/bin"))).unwrap();
        std::fs::write(s.path(&format!("src/{tree}/which")), tree).unwrap();
    }
    let image = s.path("images.sqfs");
    mksquashfs(&s.path("src"), &image);
    let out = run_script(
        "ctrtool-squashfs.rhai",
        &[
            &image,
            "generic",
            "/bin/sh",
            "-c",
            "cat /which; ls /; ls -l /var",
        ],
    );
    let o = text(&out.stdout);
    assert!(out.status.success(), "{o}{}", text(&out.stderr));
    assert!(o.contains("generic") && !o.contains("other"), "{o}");
    assert!(o.contains("_fsroot_ro") && o.contains("_fsroot_rw"), "{o}");
    assert!(loop_released(&image));
    // A SUBDIR that names no directory inside the image is an error about SUBDIR, not a
    // container of the whole image failing later.
    for bad in ["", "../..", "."] {
        let out = run_script("ctrtool-squashfs.rhai", &[&image, bad, "/bin/true"]);
        let e = text(&out.stderr);
        assert!(!out.status.success(), "{bad:?}: {}", text(&out.stdout));
        assert!(
            e.contains("squashfs(subdir)") && e.contains("inside"),
            "{bad:?}: {e}"
        );
        assert!(loop_released(&image));
    }
}

#[test]
fn every_fs_function_is_documented_with_an_example() {
    for name in [
        "mount",
        "bind",
        "tmpfs",
        "umount",
        "propagation",
        "pivot_root",
        "chroot",
        "chroot_pivot",
        "pivot_into",
        "mounts",
        "renameat2",
        "squashfs",
        "overlay",
        "list_dir",
        "read_link",
        "mkdtemp",
        "mkdir",
        "rootfs",
        "build",
        "enter",
        "dir",
        "file",
        "symlink",
        "ro_bind",
        "dev_bind",
        "bind_entry",
        "mount_seq",
        "enter_rootfs",
    ] {
        let out = ctrsh().args(["doc", name]).output().unwrap();
        let o = text(&out.stdout);
        assert!(o.contains("Example:"), "{name}: {o}{}", text(&out.stderr));
    }
}

#[test]
fn overlay_merges_lower_and_upper() {
    let s = Scratch::new("ov");
    for d in ["lower1", "lower2", "upper", "work", "mnt"] {
        std::fs::create_dir_all(s.path(d)).unwrap();
    }
    std::fs::write(s.path("lower1/a"), "1").unwrap();
    std::fs::write(s.path("lower2/a"), "2").unwrap();
    std::fs::write(s.path("lower2/b"), "2").unwrap();
    let out = private_ok(
        &s,
        &format!(
            r#"overlay(#{{ lower: ["{l1}", "{l2}"], upper: "{u}", work: "{w}", target: "{m}" }});
            print(`ls=${{list_dir("{m}")}} a=${{read_file("{m}/a")}}`);
            write_file("{m}/c", "new");"#,
            l1 = s.path("lower1"),
            l2 = s.path("lower2"),
            u = s.path("upper"),
            w = s.path("work"),
            m = s.path("mnt")
        ),
    );
    assert!(out.contains("ls=[\"a\", \"b\"] a=1"), "{out}");
    assert_eq!(std::fs::read_to_string(s.path("upper/c")).unwrap(), "new");
}

#[test]
fn mount_seq_examples_mount_only_in_their_own_namespace_and_leave_nothing() {
    if !need_root() {
        return;
    }
    let doc = ctrsh().args(["doc", "mount_seq"]).output().unwrap();
    let doc = text(&doc.stdout);
    // Each example: the indented lines after "Example:".
    let mut examples: Vec<String> = Vec::new();
    let mut cur: Option<Vec<&str>> = None;
    for l in doc.lines() {
        if l.trim() == "Example:" {
            cur = Some(Vec::new());
        } else if let Some(c) = cur.as_mut() {
            if l.starts_with("        ") {
                c.push(l.trim_start());
            } else {
                examples.push(c.join("\n"));
                cur = None;
            }
        }
    }
    examples.extend(cur.map(|c| c.join("\n")));
    assert_eq!(examples.len(), 2, "{doc}");
    let bin = assert_cmd::cargo::cargo_bin("ctrsh");
    for ex in examples {
        // Readers copy examples: one that mounts must first move into a private namespace.
        assert!(
            ex.starts_with("unshare([\"mnt\"]); propagation(\"/\", \"private\""),
            "{ex}"
        );
        // Run it with fresh tmpfs's on /tmp and /mnt (in a throwaway namespace) to see what
        // it leaves there; the binary is reached through an fd opened before /tmp is covered.
        let out = Command::new("unshare")
            .args(["-m", "--propagation", "private", "sh", "-c"])
            .arg(
                "exec 3<\"$0\"; mount -t tmpfs t /tmp && mount -t tmpfs m /mnt || exit 90; \
                 before=$(wc -l </proc/self/mountinfo); /proc/self/fd/3 -e \"$1\" || exit 91; \
                 echo \"mounts $before $(wc -l </proc/self/mountinfo)\"; \
                 echo \"left: $(find /tmp /mnt -mindepth 1)\"",
            )
            .arg(&bin)
            .arg(&ex)
            .output()
            .unwrap();
        let o = text(&out.stdout);
        assert!(out.status.success(), "{ex}\n{o}{}", text(&out.stderr));
        let counts: Vec<&str> = o
            .lines()
            .find_map(|l| l.strip_prefix("mounts "))
            .expect(&o)
            .split(' ')
            .collect();
        assert_eq!(counts[0], counts[1], "{ex}: mounts left\n{o}");
        assert!(o.contains("left: \n"), "{ex}: files left\n{o}");
    }
}

#[test]
fn mount2_fallback_binds_read_only_recursively_and_mounts_tmpfs() {
    let s = Scratch::new("leg");
    std::fs::create_dir_all(s.path("src/sub")).unwrap();
    std::fs::create_dir_all(s.path("dst")).unwrap();
    let out = ctrsh()
        .env("CTRSH_LEGACY_MOUNT", "1")
        .arg("-e")
        .arg(format!(
            r#"{PRIVATE}tmpfs("{src}/sub", #{{ size: "1m", mode: 0o700 }});
            bind("{src}", "{dst}", #{{ ro: true }});
            for p in ["{dst}/a", "{dst}/sub/b"] {{ try {{ write_file(p, "x"); print("WROTE"); }} catch (e) {{ print(e.errno_name); }} }}
            for m in mounts() {{ if m.target.starts_with("{dst}") {{ print(`${{m.target}} ${{m.options}} ${{m.super_options}}`); }} }}"#,
            src = s.path("src"),
            dst = s.path("dst")
        ))
        .output()
        .unwrap();
    let o = text(&out.stdout);
    assert!(out.status.success(), "{o}{}", text(&out.stderr));
    assert_eq!(o.matches("EROFS").count(), 2, "{o}");
    assert!(
        o.contains(&format!("{}/sub ro", s.path("dst"))) && o.contains("size=1024k,mode=700"),
        "{o}"
    );
    assert!(host_mounts_with(&s.root()).is_empty());
}

#[test]
fn rootfs_is_built_with_the_mount2_fallback_too() {
    // The same container root through mount(2) (CTRSH_LEGACY_MOUNT=1 pretends the fd API is
    // missing): binds (read-only over submounts), tmpfs entries, proc/sys/devpts/mqueue and
    // the read-only root, with nothing of it visible on the host.
    if !need_root() {
        return;
    }
    let before = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    let out = ctrsh()
        .env("CTRSH_LEGACY_MOUNT", "1")
        .arg("-e")
        .arg(
            r#"let root = rootfs(#{ proc: true, dev: true, tmp: true, devpts: true, mqueue: true,
                sysfs: true, readonly: true,
                entries: [ro_bind("/usr"), symlink("usr/bin", "/bin"), symlink("usr/lib", "/lib"),
                          symlink("usr/lib64", "/lib64"), #{ op: "tmpfs", path: "/scratch", size: "1m" },
                          file("/etc/hostname", "box\n", 0o644)] });
            exit(run(#{ ns: ["user", "mnt", "pid", "net", "uts", "ipc"], rootfs: root,
                cmd: ["/bin/sh", "-c", "cat /proc/self/mountinfo; cat /etc/hostname; touch /x /usr/x 2>&1; touch /scratch/y && echo scratch-ok; echo > /dev/null && echo null-ok"] }))"#,
        )
        .output()
        .unwrap();
    let raw = text(&out.stdout);
    assert!(out.status.success(), "{raw}{}", text(&out.stderr));
    // Each mountinfo line as "mount-point options fstype source"; other lines as they are.
    let o: String = raw
        .lines()
        .map(|l| match l.split_once(" - ") {
            Some((left, right)) => {
                let a: Vec<&str> = left.split(' ').collect();
                let b: Vec<&str> = right.split(' ').collect();
                format!("{} {} {} {}\n", a[4], a[5], b[0], b[1])
            }
            None => format!("{l}\n"),
        })
        .collect();
    for want in [
        "/ ro,nosuid,nodev",
        "/usr ro,nosuid,nodev",
        "/scratch rw",
        "/proc rw,nosuid,nodev,noexec",
        "/sys ro,nosuid,nodev,noexec",
        "/dev/pts rw,nosuid,noexec",
        "/dev/mqueue rw,nosuid,nodev,noexec",
        "box",
        "scratch-ok",
        "null-ok",
        // mount(2) records the source it was given; the fd API leaves "none".
        " proc proc\n",
        "/ ro,nosuid,nodev,relatime tmpfs tmpfs\n",
    ] {
        assert!(o.contains(want), "missing {want:?} in\n{o}");
    }
    assert_eq!(o.matches("Read-only file system").count(), 2, "{o}");
    assert_eq!(
        std::fs::read_to_string("/proc/self/mountinfo").unwrap(),
        before,
        "the host's mount table changed"
    );
}

#[test]
fn recipe_mounts_are_torn_down_at_the_end_unless_kept() {
    let s = Scratch::new("own");
    std::fs::create_dir_all(s.path("a")).unwrap();
    std::fs::create_dir_all(s.path("b")).unwrap();
    let out = private_ok(
        &s,
        &format!(
            r#"tmpfs("{a}"); tmpfs("{b}", #{{ keep: true }});
            print(`owned=${{resources().filter(|r| r.contains("{root}"))}}`);
            cleanup();
            for m in mounts() {{ if m.target.starts_with("{root}") {{ print(`STILL ${{m.target}}`); }} }}"#,
            a = s.path("a"),
            b = s.path("b"),
            root = s.root()
        ),
    );
    assert!(
        out.contains(&format!("owned=[\"tmpfs on {}\"]", s.path("a"))),
        "{out}"
    );
    assert!(
        out.contains(&format!("STILL {}", s.path("b")))
            && !out.contains(&format!("STILL {}\n", s.path("a"))),
        "{out}"
    );
}

/// Teardown goes by the mount, not the path: a kept mount stacked on an owned one stays, and
/// a path the recipe unmounted itself and mounted again (kept) is not touched.
#[test]
fn teardown_never_removes_a_kept_mount_that_shares_the_path() {
    let s = Scratch::new("stk");
    for d in ["a", "b", "c"] {
        std::fs::create_dir_all(s.path(d)).unwrap();
    }
    let out = private_ok(
        &s,
        &format!(
            r#"tmpfs("{a}", #{{ size: "1m" }}); tmpfs("{a}", #{{ keep: true, size: "2m" }});
            tmpfs("{b}"); umount("{b}");
            print(`owned=${{resources().filter(|r| r.contains("{root}"))}}`);
            bind("{c}", "{b}", #{{ keep: true }});
            try {{ cleanup(); }} catch (e) {{ print(`CLEANUP ${{e}}`); }}
            print(`a=${{mounts().filter(|m| m.target == "{a}").map(|m| m.super_options)}}`);
            print(`b=${{mounts().filter(|m| m.target == "{b}").len()}}`);"#,
            a = s.path("a"),
            b = s.path("b"),
            c = s.path("c"),
            root = s.root()
        ),
    );
    // The umount()ed one is no longer the recipe's; only the covered 1m tmpfs is.
    assert!(
        out.contains(&format!("owned=[\"tmpfs on {}\"]", s.path("a"))),
        "{out}"
    );
    // The kept 2m tmpfs is still on top; the owned 1m one under it is left (it cannot be
    // detached without the kept one).
    assert!(out.contains("size=2048k"), "kept mount removed: {out}");
    assert!(
        out.contains("b=1"),
        "kept bind on a reused path removed: {out}"
    );
}

#[test]
fn enter_rootfs_takes_a_plan_a_map_or_a_directory() {
    let s = Scratch::new("ent");
    std::fs::create_dir_all(s.path("tree/data")).unwrap();
    std::fs::write(s.path("tree/data/f"), "from the tree").unwrap();
    // A plan whose bind source lives under the staging directory (/tmp) is still seen.
    let out = private_ok(
        &s,
        &format!(
            r#"enter_rootfs(rootfs(#{{ tmp: true, proc: true, entries: [ro_bind("{t}/data", "/data")] }}), false);
            print(`root=${{list_dir("/")}} f=${{read_file("/data/f")}}`);"#,
            t = s.path("tree")
        ),
    );
    assert!(
        out.contains("root=[\"data\", \"proc\", \"tmp\"] f=from the tree"),
        "{out}"
    );
    std::fs::create_dir_all(s.path("tree/proc")).unwrap();
    let out = private_ok(
        &s,
        &format!(
            r#"enter_rootfs("{t}", true); print(`root=${{list_dir("/")}}`);"#,
            t = s.path("tree")
        ),
    );
    assert!(out.contains("root=[\"data\", \"proc\"]"), "{out}");
    assert!(
        inner_mounts(&out)
            .iter()
            .any(|(t, f, _)| t == "/proc" && f == "proc"),
        "{out}"
    );
}

/// Pivoting or entering a root from a mount namespace the shell shares with its parent would
/// change the root of the parent too (of the whole host, when it is the host's namespace):
/// refused with a hint, and the parent's root is intact. Here the parent is a `sh` in a
/// throwaway namespace of the test's own.
#[test]
fn moving_the_root_of_a_shared_mount_namespace_is_refused() {
    if !need_root() {
        return;
    }
    let s = Scratch::new("shared");
    let calls = [
        "rootfs(#{ tmp: true }).enter()".to_string(),
        "enter_rootfs(#{ tmp: true }, false)".to_string(),
        format!("pivot_into(\"{}\")", s.root()),
        format!("chroot_pivot(\"{}\")", s.root()),
    ];
    for call in calls {
        let script = format!(
            "{} -e '{call}'; echo rc=$?; test -d /usr/bin && echo ROOT-INTACT",
            ctrsh_bin()
        );
        let out = Command::new("unshare")
            .args(["-m", "--propagation", "private", "sh", "-c", &script])
            .output()
            .unwrap();
        let (o, e) = (text(&out.stdout), text(&out.stderr));
        assert!(
            o.contains("rc=1") && o.contains("ROOT-INTACT"),
            "{call}: {o}{e}"
        );
        assert!(
            e.contains("shares its mount namespace with its parent")
                && e.contains("unshare([\"mnt\"])"),
            "{call}: {e}"
        );
    }
    // With a namespace of its own the shell moves, and only it.
    let script = format!(
        "{} -e 'unshare([\"mnt\"]); rootfs(#{{ tmp: true }}).enter(); print(list_dir(\"/\"))'; test -d /usr/bin && echo ROOT-INTACT",
        ctrsh_bin()
    );
    let out = Command::new("unshare")
        .args(["-m", "--propagation", "private", "sh", "-c", &script])
        .output()
        .unwrap();
    let o = text(&out.stdout);
    assert!(
        o.contains("[\"tmp\"]") && o.contains("ROOT-INTACT"),
        "{o}{}",
        text(&out.stderr)
    );
}

/// A mount on a path that is a symlink lands where the link points; the recipe's teardown
/// must detach it there (it used to look at the link, find no mount of its own and leave
/// the mount, and for squashfs the loop device, behind).
#[test]
fn mounts_on_a_symlinked_target_are_torn_down_where_they_landed() {
    if !need_root() {
        return;
    }
    let s = Scratch::new("lnk");
    std::fs::create_dir_all(s.path("src/d")).unwrap();
    let image = s.path("img.sqfs");
    mksquashfs(&s.path("src"), &image);
    for k in ["t", "b", "s", "o", "m", "r", "lower"] {
        std::fs::create_dir_all(s.path(&format!("real-{k}"))).unwrap();
        std::os::unix::fs::symlink(s.path(&format!("real-{k}")), s.path(&format!("to-{k}")))
            .unwrap();
    }
    let code = format!(
        r#"print(tmpfs("{r}/to-t")); bind("/usr", "{r}/to-b", #{{ ro: true }}); squashfs("{image}", "{r}/to-s");
           overlay(#{{ lower: ["{r}/to-lower", "{r}/src"], target: "{r}/to-o" }});
           mount(#{{ source: "none", fstype: "tmpfs", target: "{r}/to-m" }}); rootfs(#{{ tmp: true }}).build("{r}/to-r");
           for x in resources() {{ print(x); }}"#,
        r = s.root()
    );
    let script = format!(
        "{} -e '{code}' && echo --- && cat /proc/self/mountinfo",
        ctrsh_bin()
    );
    let out = Command::new("unshare")
        .args(["-m", "--propagation", "private", "sh", "-c", &script])
        .output()
        .unwrap();
    let (o, e) = (text(&out.stdout), text(&out.stderr));
    let (during, after) = o.split_once("---\n").unwrap_or_else(|| panic!("{o}{e}"));
    assert!(during.starts_with(&s.path("real-t")), "{during}");
    for (what, k) in [
        ("tmpfs", "t"),
        ("bind", "b"),
        ("squashfs", "s"),
        ("overlay", "o"),
        ("mount", "m"),
        ("rootfs", "r"),
    ] {
        assert!(
            during.contains(&format!("{what} on {}\n", s.path(&format!("real-{k}")))),
            "{during}"
        );
    }
    assert!(
        !after.contains(&s.root()),
        "left mounted after the recipe: {after}"
    );
    assert!(e.is_empty(), "{e}");
    assert!(loop_released(&image), "loop device of {image} not released");
}

/// What a recipe mounted or made is torn down in the mount namespace and root it was made
/// in, after the shell moved on: chroot, unshare(["mnt"]), entering a rootfs; and a mount
/// that chroot_pivot moved is detached where it went, without a spurious error.
#[test]
fn teardown_happens_where_things_were_made_after_the_shell_moved() {
    if !need_root() {
        return;
    }
    let s = Scratch::new("moved");
    std::fs::create_dir_all(s.path("src/d")).unwrap();
    let image = s.path("img.sqfs");
    mksquashfs(&s.path("src"), &image);
    for d in ["m1", "m2", "M"] {
        std::fs::create_dir_all(s.path(d)).unwrap();
    }
    let tag = unique("mv");
    let r = s.root();
    let recipes = [
        format!(r#"squashfs("{image}", "{r}/m1"); chroot("{r}/src");"#),
        format!(r#"tmpfs("{r}/m2"); unshare(["mnt"]);"#),
        format!(r#"unshare(["mnt"]); mkdtemp("{tag}"); rootfs(#{{ tmp: true }}).enter();"#),
        format!(
            r#"let M = "{r}/M"; tmpfs(M); mkdir(M + "/next"); tmpfs(M + "/next"); mkdir(M + "/next/old");
               chroot_pivot(M, "/next", "/next/old");"#
        ),
    ];
    for code in recipes {
        let script = format!(
            "{} -e '{code}' && echo --- && cat /proc/self/mountinfo",
            ctrsh_bin()
        );
        let out = Command::new("unshare")
            .args(["-m", "--propagation", "private", "sh", "-c", &script])
            .output()
            .unwrap();
        let (o, e) = (text(&out.stdout), text(&out.stderr));
        let (_, after) = o
            .split_once("---\n")
            .unwrap_or_else(|| panic!("{code}: {o}{e}"));
        assert!(!after.contains(&r), "{code}: left mounted: {after}");
        assert!(e.is_empty(), "{code}: {e}");
    }
    assert!(loop_released(&image), "loop device of {image} not released");
    let left: Vec<_> = std::fs::read_dir("/tmp")
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with(&tag))
        .collect();
    assert!(left.is_empty(), "mkdtemp directory left: {left:?}");
}
