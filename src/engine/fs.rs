//! Filesystem script functions: mount, bind, tmpfs, squashfs, overlay, umount, propagation,
//! pivot_root, chroot, chroot_pivot, pivot_into, mounts, renameat2, list_dir.
//! The rootfs plan and mount_seq live in `engine::rootfs`.
//!
//! Every mount made on the host side is owned by the recipe (`cleanup::own`) and detached
//! when it ends, unless the call says `keep: true`: by its mount id, where it is then, in
//! the mount namespace and root it was made in (`sys::fsview`), whatever the shell did
//! since. A `root` option resolves the target inside that directory (symlinks and `..`
//! never leave it; missing mount points are created there and stay after the recipe: only
//! mount_seq removes what it created).

use std::os::fd::AsFd;
use std::path::Path;

use nix::errno::Errno;
use rhai::{Array, Dynamic, Map};

use super::api::Api;
use super::cleanup;
use super::error::{arg_err, int_arg, script_type, sys_err, IntoScript, RResult};
use super::opts::{size_of, strs_of, Opts};
use crate::sys::fsview::FsView;
use crate::sys::mount::{self, Attrs, BindOpts, Place, TmpfsOpts};
use crate::sys::mountinfo::{self, MountEntry};
use crate::sys::ns::{self, NsKind};
use crate::sys::{safepath, SysError};

/// Run `f` with the target place: inside `root` when given, else on the host.
pub fn with_place<T>(
    op: &str,
    arg: &str,
    path: &str,
    root: Option<&str>,
    f: impl FnOnce(Place<'_>) -> crate::sys::Result<T>,
) -> RResult<T> {
    match root {
        None => f(Place::Host(path)).script(),
        Some(r) => {
            mount::need_absolute(op, "root", r).script()?;
            if path.is_empty() {
                return Err(arg_err(op, arg, "an empty path"));
            }
            safepath::check_inside(op, arg, path).script()?;
            let fd = safepath::open_dir(Path::new(r))
                .map_err(|e| e.name("root"))
                .script()?;
            f(Place::InRoot(fd.as_fd(), path)).script()
        }
    }
}

/// The host path a target ends up at (for teardown and printing).
pub fn host_path(path: &str, root: Option<&str>) -> String {
    match root {
        None => path.to_string(),
        Some(r) => safepath::open_dir(Path::new(r))
            .ok()
            .and_then(|fd| safepath::real_path(fd.as_fd(), path))
            .unwrap_or_else(|| {
                format!(
                    "{}/{}",
                    r.trim_end_matches('/'),
                    path.trim_start_matches('/')
                )
            }),
    }
}

/// Where a mount just made on `path` really is (a symlink on the way, the last component
/// included, is followed as the mount followed it): what teardown and the caller must see.
/// Inside `root` the link is resolved inside it.
pub fn mounted_at(path: &str, root: Option<&str>) -> String {
    let real = match root {
        None => std::fs::canonicalize(path)
            .ok()
            .map(|p| p.to_string_lossy().into_owned()),
        Some(r) => safepath::open_dir(Path::new(r)).ok().and_then(|fd| {
            let t = safepath::open_in(fd.as_fd(), path, rustix::fs::OFlags::PATH).ok()?;
            std::fs::read_link(safepath::fd_path(&t))
                .ok()
                .map(|p| p.to_string_lossy().into_owned())
        }),
    };
    real.unwrap_or_else(|| host_path(path, root))
}

/// Detach a mount the recipe made; one that is already gone is not an error.
pub fn umount_quiet(path: &str) -> Result<(), SysError> {
    match mount::umount(path, true) {
        Err(e) if matches!(e.errno(), Some(Errno::EINVAL) | Some(Errno::ENOENT)) => Ok(()),
        r => r,
    }
}

thread_local! {
    /// The recipe's owned mounts by mount id, so umount() can disown the one it removes.
    static OWNED_MOUNTS: std::cell::RefCell<Vec<(u64, cleanup::OwnId)>> =
        const { std::cell::RefCell::new(Vec::new()) };
}

/// Register a host mount for teardown unless `keep`. The mount is remembered by its id, not
/// only its path: at teardown only that mount is detached — not a mount stacked on it
/// later (say one made with `keep: true`), and nothing when it is already gone; one that was
/// moved (MS_MOVE, chroot_pivot) is detached where it is now. Teardown happens in the mount
/// namespace and root the mount was made in, wherever the shell has moved since.
pub fn own_mount(keep: bool, what: &str, path: String) -> Option<cleanup::OwnId> {
    if keep {
        return None;
    }
    // Without an id (a kernel before 5.8) teardown goes by path, as it did before.
    let id = mount::mount_id_at(&path).ok();
    let view = FsView::current().ok();
    let desc = format!("{what} on {path}");
    let own = cleanup::own(desc, move || {
        if let Some(id) = id {
            OWNED_MOUNTS.with(|m| m.borrow_mut().retain(|(i, _)| *i != id));
        }
        match view {
            Some(v) => v.run(|| umount_owned(&path, id)),
            None => umount_owned(&path, id),
        }
    });
    if let Some(id) = id {
        OWNED_MOUNTS.with(|m| m.borrow_mut().push((id, own)));
    }
    Some(own)
}

/// Detach the owned mount `id` (made at `path`) if it is the topmost mount where it is now.
fn umount_owned(path: &str, id: Option<u64>) -> Result<(), SysError> {
    let Some(id) = id else {
        return umount_quiet(path);
    };
    match mount::mount_id_at(path) {
        Ok(top) if top == id => return umount_quiet(path),
        Ok(_) => {}
        // The path is gone; the mount may have moved.
        Err(e) if e.errno() == Some(Errno::ENOENT) => {}
        Err(e) => return Err(e),
    }
    let all = mountinfo::read(0)?;
    let Some(now) = all.iter().find(|m| m.id == id) else {
        return Ok(()); // unmounted already (by the recipe or by hand)
    };
    match mount::mount_id_at(&now.target) {
        Ok(top) if top == id => umount_quiet(&now.target),
        _ => Err(SysError::invalid(
            "umount",
            "path",
            format!(
                "{}: left mounted, another mount made later covers it",
                now.target
            ),
        )
        .hint("unmount the covering mount first, or give this one keep: true")),
    }
}

/// The recipe unmounted `id` itself: it is no longer the recipe's to tear down.
fn forget_owned_mount(id: u64) {
    let gone: Vec<cleanup::OwnId> = OWNED_MOUNTS.with(|m| {
        let mut m = m.borrow_mut();
        let gone = m
            .iter()
            .filter(|(i, _)| *i == id)
            .map(|(_, o)| *o)
            .collect();
        m.retain(|(i, _)| *i != id);
        gone
    });
    for o in gone {
        cleanup::disown(o);
    }
}

/// umount(2) for the script: an owned mount it removes stops being listed in resources().
fn umount_script(path: &str, detach: bool) -> RResult<()> {
    let id = mount::mount_id_at(path).ok();
    mount::umount(path, detach).script()?;
    if let Some(id) = id {
        forget_owned_mount(id);
    }
    Ok(())
}

fn attrs_of(o: &Opts, ro_default: bool) -> RResult<Attrs> {
    Ok(Attrs {
        ro: o.bool("ro", ro_default)?,
        nosuid: o.bool("nosuid", false)?,
        nodev: o.bool("nodev", false)?,
        noexec: o.bool("noexec", false)?,
    })
}

/// A `MountEntry` as a script map.
pub fn entry_map(m: &MountEntry) -> Map {
    let mut map = Map::new();
    map.insert("id".into(), (m.id as i64).into());
    map.insert("parent".into(), (m.parent as i64).into());
    map.insert("dev".into(), m.dev.clone().into());
    map.insert("root".into(), m.root.clone().into());
    map.insert("target".into(), m.target.clone().into());
    map.insert("fstype".into(), m.fstype.clone().into());
    map.insert("source".into(), m.source.clone().into());
    map.insert("options".into(), m.mount_opts.clone().into());
    map.insert("super_options".into(), m.super_opts.clone().into());
    map.insert("propagation".into(), m.propagation().into());
    map.insert("ro".into(), m.read_only().into());
    map.insert(
        "optional".into(),
        m.optional
            .iter()
            .map(|s| Dynamic::from(s.clone()))
            .collect::<Array>()
            .into(),
    );
    map
}

/// The mounts of `pid` (0: the shell's own).
fn mounts_of(pid: i32) -> RResult<Array> {
    let all = mountinfo::read(pid).map_err(|e| {
        // /proc/PID/mountinfo is missing: the process is (when /proc itself is there).
        if pid != 0 && e.errno() == Some(Errno::ENOENT) && Path::new("/proc/self").exists() {
            arg_err("mounts", "pid", format!("no process {pid}"))
        } else {
            sys_err(e)
        }
    })?;
    Ok(all.iter().map(|m| Dynamic::from(entry_map(m))).collect())
}

pub const BIND_KEYS: &[&str] = &[
    "ro",
    "recursive",
    "idmap",
    "nosuid",
    "nodev",
    "noexec",
    "root",
    "keep",
];
pub const TMPFS_KEYS: &[&str] = &[
    "size", "mode", "uid", "gid", "ro", "nosuid", "nodev", "noexec", "root", "keep",
];
pub const MOUNT_KEYS: &[&str] = &[
    "source", "target", "fstype", "flags", "data", "root", "keep",
];

/// Parse `flags` of mount(): an array of names or one "ro,nosuid" string.
pub fn mount_flags(op: &str, v: Option<&Dynamic>) -> RResult<libc::c_ulong> {
    let Some(v) = v else { return Ok(0) };
    let mut bits = 0;
    let names = strs_of(op, "flags", v)?;
    for n in names
        .iter()
        .flat_map(|s| s.split(','))
        .map(str::trim)
        .filter(|s| !s.is_empty())
    {
        match mount::parse_flag(n) {
            Some(b) => bits |= b,
            None => {
                let known: Vec<String> = mount::FLAG_NAMES.iter().map(|s| s.to_string()).collect();
                let near = super::report::nearest(n, &known, 3);
                let hint = if near.is_empty() {
                    String::new()
                } else {
                    format!("; did you mean {}?", near.join(", "))
                };
                return Err(arg_err(
                    op,
                    "flags",
                    format!("unknown mount flag {n:?}{hint}"),
                ));
            }
        }
    }
    Ok(bits)
}

/// Check an fstype before any kernel call, with suggestions.
pub fn check_fstype(op: &str, fstype: &str) -> RResult<()> {
    // "fuse.sshfs": the kernel knows the part before the dot.
    let base = fstype.split('.').next().unwrap_or(fstype);
    if mount::fstype_known(base) == Some(false) {
        let known = mount::fstypes();
        let near = super::report::nearest(fstype, &known, 3);
        let hint = if near.is_empty() {
            "see /proc/filesystems".to_string()
        } else {
            format!("did you mean {}?", near.join(", "))
        };
        return Err(super::error::sys_err(
            SysError::invalid(op, "fstype", format!("unknown filesystem type {fstype:?}"))
                .hint(hint),
        ));
    }
    Ok(())
}

/// mount(#{...}) as data, shared with mount_seq.
pub fn do_mount(o: &Opts) -> RResult<String> {
    let target = o.req_str("target")?;
    let root = o.str("root")?;
    if root.is_none() {
        mount::need_absolute(o.op, "target", &target).script()?;
    }
    let fstype = o.str("fstype")?;
    let source = o.str("source")?;
    let flags = mount_flags(o.op, o.get("flags"))?;
    if let Some(t) = &fstype {
        check_fstype(o.op, t)?;
    } else if flags
        & (libc::MS_BIND
            | libc::MS_MOVE
            | libc::MS_REMOUNT
            | libc::MS_PRIVATE
            | libc::MS_SLAVE
            | libc::MS_SHARED
            | libc::MS_UNBINDABLE)
        == 0
    {
        return Err(arg_err(
            o.op,
            "fstype",
            "a filesystem type is needed (e.g. \"tmpfs\", \"proc\"), or a flag such as \"bind\"",
        ));
    }
    if flags & libc::MS_BIND != 0 && flags & libc::MS_REMOUNT == 0 {
        let s = source
            .as_deref()
            .ok_or_else(|| arg_err(o.op, "source", "a bind mount needs a source"))?;
        mount::open_source(o.op, "source", s).script()?;
    }
    let data = o.str("data")?;
    with_place(o.op, "target", &target, root.as_deref(), |p| {
        mount::mount(
            source.as_deref(),
            p,
            fstype.as_deref(),
            flags,
            data.as_deref(),
        )
    })?;
    Ok(mounted_at(&target, root.as_deref()))
}

pub fn do_bind(op: &str, src: &str, dst: &str, o: &Opts) -> RResult<String> {
    let idmap = match o.get("idmap") {
        None => None,
        Some(v) => Some(super::ns::ns_from(op, "idmap", v, NsKind::User)?),
    };
    let attrs = attrs_of(o, false)?;
    let recursive = o.bool("recursive", true)?;
    let root = o.str("root")?;
    if root.is_none() {
        mount::need_absolute(op, "dst", dst).script()?;
    }
    mount::open_source(op, "src", src).script()?;
    let bo = BindOpts {
        recursive,
        attrs,
        idmap: idmap.as_ref().map(|n| n.as_fd()),
    };
    with_place(op, "dst", dst, root.as_deref(), |p| mount::bind(src, p, bo))?;
    Ok(mounted_at(dst, root.as_deref()))
}

pub fn tmpfs_opts(o: &Opts) -> RResult<TmpfsOpts> {
    Ok(TmpfsOpts {
        size: o
            .get("size")
            .map(|v| size_of(o.op, "size", v))
            .transpose()?,
        mode: o.mode("mode")?,
        uid: o.id("uid")?,
        gid: o.id("gid")?,
        attrs: attrs_of(o, false)?,
    })
}

pub fn do_tmpfs(dst: &str, o: &Opts) -> RResult<String> {
    let t = tmpfs_opts(o)?;
    let root = o.str("root")?;
    with_place(o.op, "dst", dst, root.as_deref(), |p| mount::tmpfs(p, &t))?;
    Ok(mounted_at(dst, root.as_deref()))
}

/// squashfs()'s `subdir`: a directory below the image's root. "" (or ".", "/", "a/..") would
/// quietly be the whole image, and "../.." is clamped to it; both are refused by name.
fn check_subdir(d: &str) -> RResult<()> {
    let mut depth: i64 = 0;
    for c in d.split('/').filter(|c| !c.is_empty() && *c != ".") {
        depth += if c == ".." { -1 } else { 1 };
        if depth < 0 {
            return Err(arg_err(
                "squashfs",
                "subdir",
                format!("{d:?} climbs out of the image with \"..\"; subdir must name a directory inside the image"),
            ));
        }
    }
    if depth == 0 {
        return Err(arg_err(
            "squashfs",
            "subdir",
            format!("{d:?} is the image's root, not a directory inside it; leave subdir out to mount the whole image"),
        ));
    }
    Ok(())
}

pub fn register(api: &mut Api) {
    api.func(
        "mount",
        "mount(spec: map) -> string",
        "Mount a filesystem with mount(2): #{ source, target, fstype, flags, data }.\n\
         `flags` is an array of names (or \"ro,nosuid\"): ro rw nosuid nodev noexec bind rbind\n\
         move remount rec private slave shared unbindable relatime noatime strictatime ...\n\
         With \"bind\", attribute flags (ro, nosuid, nodev, noexec, ...) are applied by a bind\n\
         remount as mount(8) does, on the top mount only: bind(src, dst, #{ ro: true }) makes\n\
         every submount read-only. A remount (\"remount\", \"bind\", \"ro\") needs no source.\n\
         `data` is the filesystem's option string. `root: dir` resolves the target inside\n\
         `dir`. The mount is detached when the recipe ends unless `keep: true`.\n\
         Returns the target. Prefer tmpfs(), bind(), squashfs(), overlay(): they build the\n\
         mount detached and attach it in one step.\n\
         Example:\n    unshare([\"mnt\"]); propagation(\"/\", \"private\", #{ recursive: true });\n    mount(#{ source: \"none\", target: \"/mnt\", fstype: \"tmpfs\", flags: [\"nosuid\"], data: \"size=1m\" });",
        |spec: Map| -> RResult<String> {
            let o = Opts::new("mount", spec, MOUNT_KEYS)?;
            let keep = o.bool("keep", false)?;
            let t = do_mount(&o)?;
            own_mount(keep, "mount", t.clone());
            Ok(t)
        },
    );
    for (sig, with_opts) in [
        ("bind(src: string, dst: string)", false),
        ("bind(src: string, dst: string, opts: map)", true),
    ] {
        let text = "Bind-mount `src` onto `dst`, with every submount (`recursive: false` for just the top).\n\
             Options: ro (read-only on every submount, via mount_setattr AT_RECURSIVE), nosuid,\n\
             nodev, noexec, idmap (an Ns of kind user, or a Process or pid whose user namespace\n\
             to use, as ns_of() takes: owners are mapped through it, MOUNT_ATTR_IDMAP; not the\n\
             host's own), root (resolve dst inside this directory, creating a missing mount\n\
             point, which stays), keep (do not detach when the recipe ends).\n\
             Example:\n    unshare([\"mnt\"]); propagation(\"/\", \"private\", #{ recursive: true });\n    bind(\"/usr\", \"/mnt\", #{ ro: true });";
        if with_opts {
            api.func(
                "bind",
                sig,
                text,
                |src: &str, dst: &str, opts: Map| -> RResult<String> {
                    let o = Opts::new("bind", opts, BIND_KEYS)?;
                    let keep = o.bool("keep", false)?;
                    let t = do_bind("bind", src, dst, &o)?;
                    own_mount(keep, "bind", t.clone());
                    Ok(t)
                },
            );
        } else {
            api.func(
                "bind",
                sig,
                text,
                |src: &str, dst: &str| -> RResult<String> {
                    let o = Opts::new("bind", Map::new(), BIND_KEYS)?;
                    let t = do_bind("bind", src, dst, &o)?;
                    own_mount(false, "bind", t.clone());
                    Ok(t)
                },
            );
        }
    }
    let tmpfs_text = "Mount a new tmpfs on `dst`. Options: size (\"64m\", \"1g\", \"50%\" or bytes), mode\n\
         (0o755), uid, gid, ro, nosuid, nodev, noexec, root (resolve dst inside it), keep.\n\
         Example:\n    unshare([\"mnt\"]); propagation(\"/\", \"private\", #{ recursive: true });\n    tmpfs(\"/mnt\", #{ size: \"16m\", mode: 0o700 });";
    api.func(
        "tmpfs",
        "tmpfs(dst: string, opts: map) -> string",
        tmpfs_text,
        |dst: &str, opts: Map| -> RResult<String> {
            let o = Opts::new("tmpfs", opts, TMPFS_KEYS)?;
            let keep = o.bool("keep", false)?;
            let t = do_tmpfs(dst, &o)?;
            own_mount(keep, "tmpfs", t.clone());
            Ok(t)
        },
    );
    api.func(
        "tmpfs",
        "tmpfs(dst: string) -> string",
        tmpfs_text,
        |dst: &str| -> RResult<String> {
            let o = Opts::new("tmpfs", Map::new(), TMPFS_KEYS)?;
            let t = do_tmpfs(dst, &o)?;
            own_mount(false, "tmpfs", t.clone());
            Ok(t)
        },
    );
    let umount_text =
        "Unmount `path` (never following a final symlink). `detach: true` is MNT_DETACH: gone\n\
         from the tree at once, freed when no longer used.\n\
         Example:\n    umount(\"/mnt\", #{ detach: true });";
    api.func(
        "umount",
        "umount(path: string, opts: map)",
        umount_text,
        |path: &str, opts: Map| -> RResult<()> {
            let o = Opts::new("umount", opts, &["detach"])?;
            umount_script(path, o.bool("detach", false)?)
        },
    );
    api.func(
        "umount",
        "umount(path: string)",
        umount_text,
        |path: &str| -> RResult<()> { umount_script(path, false) },
    );
    let prop_text =
        "Set the propagation of the mount at `path`: \"private\", \"slave\", \"shared\" or\n\
         \"unbindable\"; `recursive: true` for every mount below too. Do this first in a new\n\
         mount namespace so nothing propagates back to the host.\n\
         Example:\n    unshare([\"mnt\"]); propagation(\"/\", \"private\", #{ recursive: true });";
    api.func(
        "propagation",
        "propagation(path: string, kind: string, opts: map)",
        prop_text,
        |path: &str, kind: &str, opts: Map| -> RResult<()> {
            let o = Opts::new("propagation", opts, &["recursive"])?;
            mount::propagation(path, kind, o.bool("recursive", false)?).script()
        },
    );
    api.func(
        "propagation",
        "propagation(path: string, kind: string)",
        prop_text,
        |path: &str, kind: &str| -> RResult<()> { mount::propagation(path, kind, false).script() },
    );
    api.func(
        "pivot_root",
        "pivot_root(new_root: string, put_old: string)",
        "pivot_root(2): the mount at `new_root` becomes the shell's root, the old root is moved to\n\
         `put_old` (at or under new_root). Usually pivot_into() is simpler.\n\
         Example:\n    unshare([\"mnt\"]); propagation(\"/\", \"private\", #{ recursive: true });\n    tmpfs(\"/mnt\"); mkdir(\"/mnt/old\"); pivot_root(\"/mnt\", \"/mnt/old\");",
        |new_root: &str, put_old: &str| -> RResult<()> {
            mount::need_absolute("pivot_root", "new_root", new_root).script()?;
            mount::need_absolute("pivot_root", "put_old", put_old).script()?;
            mount::pivot_root(new_root, put_old).script()
        },
    );
    api.func(
        "chroot",
        "chroot(dir: string)",
        "Change the shell's root directory to `dir` (and its working directory to the new /).\n\
         Example:\n    fork(|| { chroot(\"/srv/box\"); exec([\"/bin/sh\"]) });",
        |dir: &str| -> RResult<()> { mount::chroot(dir).script() },
    );
    api.func(
        "chroot_pivot",
        "chroot_pivot(dir: string)",
        "ctrtool's chroot_pivot: make `dir` the root of the shell's mount namespace (bound to\n\
         itself if it is not a mount point, pivot_root, the old root detached). Needs a mount\n\
         namespace of its own: refused while the shell shares its parent's.\n\
         Example:\n    unshare([\"mnt\"]); propagation(\"/\", \"private\", #{ recursive: true });\n    tmpfs(\"/mnt\"); chroot_pivot(\"/mnt\"); print(list_dir(\"/\"));",
        |dir: &str| -> RResult<()> {
            ns::require_own_mnt_ns("chroot_pivot").script()?;
            mount::chroot_pivot(dir, None).script()
        },
    );
    api.func(
        "chroot_pivot",
        "chroot_pivot(dir: string, new_root: string, put_old: string)",
        "ctrtool's chroot_pivot swap: chroot to `dir` (a mount point), pivot_root(new_root,\n\
         put_old) there (paths inside `dir`), and come back. Atomically, the mount at\n\
         dir+new_root takes the place of dir's mount, which moves to dir+put_old.\n\
         Example:\n    chroot_pivot(\"/srv/app\", \"/next\", \"/next/old\");   // /srv/app is now the new tree",
        |dir: &str, new_root: &str, put_old: &str| -> RResult<()> { mount::chroot_pivot(dir, Some((new_root, put_old))).script() },
    );
    let pivot_text = "Make `dir` the shell's root: bind it to itself if needed, pivot_root, chdir /, detach\n\
         the old root. `mount_proc: true` mounts a new /proc (for the shell's pid namespace;\n\
         `dir`/proc is created if missing). Refused while the shell shares its parent's mount\n\
         namespace (unshare([\"mnt\"]) first).\n\
         Example:\n    unshare([\"mnt\"]); propagation(\"/\", \"private\", #{ recursive: true });\n    rootfs(#{ tmp: true }).build(\"/mnt\"); pivot_into(\"/mnt\", true); print(list_dir(\"/\"));";
    api.func(
        "pivot_into",
        "pivot_into(dir: string, mount_proc: bool)",
        pivot_text,
        |dir: &str, proc: bool| -> RResult<()> {
            ns::require_own_mnt_ns("pivot_into").script()?;
            mount::pivot_into(dir, proc).script()
        },
    );
    api.func(
        "pivot_into",
        "pivot_into(dir: string)",
        pivot_text,
        |dir: &str| -> RResult<()> {
            ns::require_own_mnt_ns("pivot_into").script()?;
            mount::pivot_into(dir, false).script()
        },
    );
    api.func(
        "mounts",
        "mounts() -> array",
        "The shell's mounts, from /proc/self/mountinfo: maps with id, parent, dev, root, target,\n\
         fstype, source, options, super_options, propagation, ro, optional.\n\
         Example:\n    for m in mounts() { if m.fstype == \"tmpfs\" { print(m.target); } }",
        || -> RResult<Array> { mounts_of(0) },
    );
    api.func(
        "mounts",
        "mounts(pid: int|Process) -> array",
        "The mounts of another process (its /proc/PID/mountinfo), as mounts(). A pid must be\n\
         above 0 (mounts() is the shell's own); a process that has exited is an error.\n\
         Example:\n    print(mounts(pid()).len());",
        |target: Dynamic| -> RResult<Array> {
            if let Some(p) = target.read_lock::<super::process::Process>() {
                // Once it has exited its pid may be another process's.
                if !p.alive() {
                    return Err(arg_err(
                        "mounts",
                        "pid",
                        format!("no process {}: it has exited", p.pid),
                    ));
                }
                return mounts_of(p.pid);
            }
            let pid = target.as_int().map_err(|t| {
                arg_err(
                    "mounts",
                    "pid",
                    format!("expected a pid or a Process, got {}", script_type(t)),
                )
            })?;
            let pid = int_arg::<i32>("mounts", "pid", pid)?;
            if pid <= 0 {
                return Err(sys_err(
                    SysError::invalid("mounts", "pid", format!("{pid} is not a pid"))
                        .hint("mounts() without an argument lists the shell's own mounts"),
                ));
            }
            mounts_of(pid)
        },
    );
    let rn_text =
        "renameat2(2): rename `from` to `to`. Options: exchange (swap the two atomically, both\n\
         must exist), noreplace (fail with EEXIST rather than replace), whiteout (leave an\n\
         overlayfs whiteout at `from`).\n\
         Example:\n    renameat2(\"/srv/current\", \"/srv/next\", #{ exchange: true });";
    api.func(
        "renameat2",
        "renameat2(from: string, to: string, opts: map)",
        rn_text,
        |from: &str, to: &str, opts: Map| -> RResult<()> {
            let o = Opts::new("renameat2", opts, &["exchange", "noreplace", "whiteout"])?;
            mount::renameat2(
                from,
                to,
                o.bool("exchange", false)?,
                o.bool("noreplace", false)?,
                o.bool("whiteout", false)?,
            )
            .script()
        },
    );
    api.func(
        "renameat2",
        "renameat2(from: string, to: string)",
        rn_text,
        |from: &str, to: &str| -> RResult<()> {
            mount::renameat2(from, to, false, false, false).script()
        },
    );
    let sq_text = "Mount a squashfs image read-only (nosuid, nodev) on `target` through a free loop\n\
         device (from /dev/loop-control, autoclear: released when unmounted). Options: subdir\n\
         (mount only this directory of the image, resolved inside the image; it must name a\n\
         directory below the image's root: leave it out for the whole image), noexec, root\n\
         (resolve target inside it), keep. Returns #{ target, device } (the loop device).\n\
         Example:\n    let m = squashfs(\"/srv/images.sqfs\", \"/mnt\", #{ subdir: \"generic\" }); print(m.device);";
    let sq = |image: &str, target: &str, opts: Map| -> RResult<Map> {
        let o = Opts::new("squashfs", opts, &["subdir", "noexec", "root", "keep"])?;
        let root = o.str("root")?;
        let subdir = o.str("subdir")?;
        if let Some(d) = &subdir {
            check_subdir(d)?;
        }
        let attrs = Attrs {
            ro: true,
            nosuid: true,
            nodev: true,
            noexec: o.bool("noexec", false)?,
        };
        mount::need_absolute("squashfs", "image", image).script()?;
        if !Path::new(image).exists() {
            return Err(sys_err(
                SysError::os("squashfs", Errno::ENOENT)
                    .path(image)
                    .name("image")
                    .detail("the image does not exist"),
            ));
        }
        if root.is_none() {
            mount::need_absolute("squashfs", "target", target).script()?;
        }
        let dev = with_place("squashfs", "target", target, root.as_deref(), |p| {
            mount::squashfs(image, subdir.as_deref(), p, attrs)
        })?;
        let t = mounted_at(target, root.as_deref());
        own_mount(o.bool("keep", false)?, "squashfs", t.clone());
        let mut m = Map::new();
        m.insert("target".into(), t.into());
        m.insert("device".into(), dev.into());
        Ok(m)
    };
    api.func(
        "squashfs",
        "squashfs(image: string, target: string, opts: map) -> map",
        sq_text,
        sq,
    );
    api.func(
        "squashfs",
        "squashfs(image: string, target: string) -> map",
        sq_text,
        move |image: &str, target: &str| -> RResult<Map> { sq(image, target, Map::new()) },
    );
    api.func(
        "overlay",
        "overlay(spec: map) -> string",
        "Mount an overlay: #{ lower: dir or [top, ..., bottom], upper, work, target }. Without\n\
         upper/work it is read-only and needs two lower directories at least. Options: userxattr (inside a user namespace), ro, nosuid,\n\
         nodev, noexec, root, keep.\n\
         Example:\n    overlay(#{ lower: [\"/srv/base\"], upper: \"/srv/u\", work: \"/srv/w\", target: \"/mnt\" });",
        |spec: Map| -> RResult<String> {
            let o = Opts::new("overlay", spec, &["lower", "upper", "work", "target", "userxattr", "ro", "nosuid", "nodev", "noexec", "root", "keep"])?;
            let lower = o.strs("lower")?;
            let target = o.req_str("target")?;
            let root = o.str("root")?;
            if root.is_none() {
                mount::need_absolute("overlay", "target", &target).script()?;
            }
            let upper = o.str("upper")?;
            let work = o.str("work")?;
            let attrs = attrs_of(&o, false)?;
            let userxattr = o.bool("userxattr", false)?;
            with_place("overlay", "target", &target, root.as_deref(), |p| mount::overlay(&lower, upper.as_deref(), work.as_deref(), userxattr, p, attrs))?;
            let t = mounted_at(&target, root.as_deref());
            own_mount(o.bool("keep", false)?, "overlay", t.clone());
            Ok(t)
        },
    );
    api.func(
        "list_dir",
        "list_dir(path: string) -> array",
        "The names in a directory, sorted (without . and ..).\n\
         Example:\n    print(list_dir(\"/\"));",
        |path: &str| -> RResult<Array> {
            let rd = std::fs::read_dir(path)
                .map_err(|e| sys_err(SysError::io("list_dir", &e).path(path)))?;
            let mut names: Vec<String> = rd
                .filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect();
            names.sort();
            Ok(names.into_iter().map(Dynamic::from).collect())
        },
    );
    api.func(
        "read_link",
        "read_link(path: string) -> string or ()",
        "The target of a symlink as stored, or () when `path` is not a symlink.\n\
         Example:\n    let bin = read_link(\"/bin\");   // \"usr/bin\" on a usr-merged host",
        |path: &str| -> Dynamic {
            std::fs::read_link(path)
                .map(|t| Dynamic::from(t.to_string_lossy().into_owned()))
                .unwrap_or(Dynamic::UNIT)
        },
    );
    api.func(
        "mkdtemp",
        "mkdtemp(prefix: string) -> string",
        "Create a new empty directory /tmp/PREFIX.XXXXXX (mode 0700) for staging mounts; it is\n\
         removed when the recipe ends (after what is mounted in it is detached).\n\
         Example:\n    let stage = mkdtemp(\"box\"); squashfs(\"/srv/images.sqfs\", stage);",
        |prefix: &str| -> RResult<String> {
            if prefix.is_empty() {
                return Err(arg_err(
                    "mkdtemp",
                    "prefix",
                    "an empty name: give a plain name like \"box\"",
                ));
            }
            if prefix.contains('/') {
                return Err(arg_err("mkdtemp", "prefix", "a plain name without '/'"));
            }
            let d =
                nix::unistd::mkdtemp(format!("/tmp/{prefix}.XXXXXX").as_str()).map_err(|e| {
                    sys_err(SysError::os("mkdtemp", e).path(format!("/tmp/{prefix}.XXXXXX")))
                })?;
            let d = d.to_string_lossy().into_owned();
            let rm = d.clone();
            // Removed where it was made, even after the shell moved (chroot, pivot_into).
            let view = FsView::current().ok();
            let remove = move || match std::fs::remove_dir(&rm) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                    Err(SysError::io("rmdir", &e).path(&rm))
                }
                _ => Ok(()),
            };
            cleanup::own(format!("directory {d}"), move || match view {
                Some(v) => v.run(remove),
                None => remove(),
            });
            Ok(d)
        },
    );
    api.func(
        "mkdir",
        "mkdir(path: string, opts: map)",
        "Create a directory and its missing parents. Options: mode (0o755), root (create it\n\
         inside this directory, never following a symlink out of it).\n\
         Example:\n    mkdir(\"/tmp/box/etc\", #{ mode: 0o700 });",
        |path: &str, opts: Map| -> RResult<()> {
            let o = Opts::new("mkdir", opts, &["mode", "root"])?;
            mkdir(
                path,
                o.mode("mode")?.unwrap_or(0o755),
                o.str("root")?.as_deref(),
            )
        },
    );
    api.func("mkdir", "mkdir(path: string)", "Create a directory and its missing parents (mode 0o755).\nExample:\n    mkdir(\"/tmp/box/etc\");", |path: &str| -> RResult<()> {
        mkdir(path, 0o755, None)
    });
}

fn mkdir(path: &str, mode: u32, root: Option<&str>) -> RResult<()> {
    let (root, path) = match root {
        Some(r) => (r.to_string(), path.to_string()),
        None => {
            mount::need_absolute("mkdir", "path", path).script()?;
            ("/".to_string(), path.to_string())
        }
    };
    safepath::check_inside("mkdir", "path", &path).script()?;
    let fd = safepath::open_dir(Path::new(&root))
        .map_err(|e| e.name("root"))
        .script()?;
    safepath::mkdir_all(fd.as_fd(), &path, mode)
        .map(|_| ())
        .script()
}
