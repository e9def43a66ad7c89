//! Paths resolved inside a root directory, never outside it.
//!
//! A hostile tree (a container image, a directory someone else can write) may hold
//! `etc -> /`, `x -> ../../..` or absolute symlinks. Every path ctrsh creates or mounts on
//! inside a root goes through here: `openat2(RESOLVE_IN_ROOT)` makes the kernel treat the
//! root fd as `/` for every symlink and `..`; where openat2 is missing (ENOSYS) an O_PATH
//! walk does the same one component at a time. Creation (`mkdirat`, `openat(O_CREAT)`,
//! `symlinkat`) always happens relative to a parent fd found this way, and never follows a
//! final symlink.

use std::collections::VecDeque;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::Path;

use nix::errno::Errno;
use rustix::fs::{self as rfs, Mode, OFlags, ResolveFlags};

use super::error::{Result, SysError};

/// A rustix errno as the `SysError` of `op`.
pub fn rx(op: &str, e: rustix::io::Errno) -> SysError {
    SysError::os(op, Errno::from_raw(e.raw_os_error()))
}

/// Open a directory as an O_PATH handle (the root that later paths are resolved in).
pub fn open_dir(path: &Path) -> Result<OwnedFd> {
    rfs::open(
        path,
        OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| rx("open", e).path(path))
}

/// The components of `path` relative to a root ("/etc//x/" → ["etc", "x"]).
fn components(path: &str) -> Vec<&str> {
    path.split('/')
        .filter(|c| !c.is_empty() && *c != ".")
        .collect()
}

/// Open `path` inside `root` with `flags` (O_CLOEXEC is added). Symlinks and `..` are
/// resolved as if `root` were `/`.
pub fn open_in(root: BorrowedFd<'_>, path: &str, flags: OFlags) -> Result<OwnedFd> {
    let rel = components(path).join("/");
    let rel = if rel.is_empty() { ".".to_string() } else { rel };
    match rfs::openat2(
        root,
        rel.as_str(),
        flags | OFlags::CLOEXEC,
        Mode::empty(),
        ResolveFlags::IN_ROOT | ResolveFlags::NO_MAGICLINKS,
    ) {
        Err(rustix::io::Errno::NOSYS) => walk(root, path, flags),
        // EAGAIN: a concurrent rename raced the lookup; the walk is immune to that retry rule.
        Err(rustix::io::Errno::AGAIN) => walk(root, path, flags),
        r => r.map_err(|e| rx("open", e).path(path)),
    }
}

/// The O_PATH walk behind `open_in` when openat2 is missing: one component at a time, each
/// opened O_NOFOLLOW; a symlink's target is spliced in (absolute ones restart at `root`),
/// `..` never climbs above `root`. Returns an O_PATH fd (O_DIRECTORY in `flags` is checked).
pub fn walk(root: BorrowedFd<'_>, path: &str, flags: OFlags) -> Result<OwnedFd> {
    let err = |e| rx("open", e).path(path);
    let mut stack: Vec<OwnedFd> =
        vec![rfs::openat(root, ".", OFlags::PATH | OFlags::CLOEXEC, Mode::empty()).map_err(err)?];
    let mut todo: VecDeque<String> = components(path).into_iter().map(String::from).collect();
    let mut links = 0;
    while let Some(c) = todo.pop_front() {
        if c == "." {
            continue;
        }
        if c == ".." {
            if stack.len() > 1 {
                stack.pop();
            }
            continue;
        }
        let cur = stack.last().expect("root stays on the stack");
        let fd = rfs::openat(
            cur,
            c.as_str(),
            OFlags::PATH | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(err)?;
        let st = rfs::fstat(&fd).map_err(err)?;
        if rfs::FileType::from_raw_mode(st.st_mode) == rfs::FileType::Symlink {
            links += 1;
            if links > 40 {
                return Err(SysError::os("open", Errno::ELOOP).path(path));
            }
            let target = rfs::readlinkat(&fd, "", Vec::new()).map_err(err)?;
            let target = target.to_string_lossy().into_owned();
            if target.starts_with('/') {
                stack.truncate(1);
            }
            for comp in components(&target).into_iter().rev() {
                todo.push_front(comp.to_string());
            }
            continue;
        }
        stack.push(fd);
    }
    let last = stack.pop().expect("at least the root");
    if flags.contains(OFlags::DIRECTORY) {
        let st = rfs::fstat(&last).map_err(err)?;
        if rfs::FileType::from_raw_mode(st.st_mode) != rfs::FileType::Directory {
            return Err(SysError::os("open", Errno::ENOTDIR).path(path));
        }
    }
    Ok(last)
}

/// Split "a/b/c" into ("a/b", "c"); `None` for the root itself.
fn split_last(path: &str) -> Option<(String, String)> {
    let comps = components(path);
    let (last, parent) = comps.split_last()?;
    Some((parent.join("/"), last.to_string()))
}

/// A directory inside a root to create things in: the root itself (borrowed, no syscall to
/// get it) or a directory found or made inside it.
enum Parent<'a> {
    Root(BorrowedFd<'a>),
    Dir(OwnedFd),
}

impl AsFd for Parent<'_> {
    fn as_fd(&self) -> BorrowedFd<'_> {
        match self {
            Parent::Root(fd) => fd.as_fd(),
            Parent::Dir(fd) => fd.as_fd(),
        }
    }
}

/// The directory `parent` (a path from `split_last`) inside `root`, made 0755 where
/// missing.
fn parent_dir<'a>(root: BorrowedFd<'a>, parent: &str) -> Result<Parent<'a>> {
    if parent.is_empty() {
        Ok(Parent::Root(root))
    } else {
        mkdir_all(root, parent, 0o755).map(Parent::Dir)
    }
}

/// Create every missing directory of `path` inside `root` (new ones get `mode`, umask
/// ignored) and return a handle on it (O_PATH, or O_RDONLY when it was just made).
pub fn mkdir_all(root: BorrowedFd<'_>, path: &str, mode: u32) -> Result<OwnedFd> {
    match open_in(root, path, OFlags::PATH | OFlags::DIRECTORY) {
        Ok(fd) => Ok(fd),
        Err(e) if e.errno() == Some(Errno::ENOENT) => make_dir(root, path, mode),
        Err(e) => Err(e.detail("creating directories")),
    }
}

/// `mkdir_all` for a `path` already known to be missing (or to end in a dangling symlink).
fn make_dir(root: BorrowedFd<'_>, path: &str, mode: u32) -> Result<OwnedFd> {
    let Some((parent, name)) = split_last(path) else {
        return open_in(root, ".", OFlags::PATH | OFlags::DIRECTORY);
    };
    if name == ".." {
        return Err(SysError::invalid(
            "mkdir",
            "path",
            format!("{path:?} ends in \"..\""),
        ));
    }
    let pfd = parent_dir(root, &parent)?;
    match rfs::mkdirat(&pfd, name.as_str(), Mode::from_raw_mode(mode & 0o7777)) {
        Ok(()) => {
            // Opened by its one name in a parent resolved inside the root, never through a
            // symlink: a directory swapped in meanwhile is still inside the root.
            let d = rfs::openat(
                &pfd,
                name.as_str(),
                OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                Mode::empty(),
            )
            .map_err(|e| rx("mkdir", e).path(path))?;
            rfs::fchmod(&d, Mode::from_raw_mode(mode & 0o7777))
                .map_err(|e| rx("chmod", e).path(path))?;
            return Ok(d);
        }
        Err(rustix::io::Errno::EXIST) => {}
        Err(e) => return Err(rx("mkdir", e).path(path)),
    }
    open_in(root, path, OFlags::PATH | OFlags::DIRECTORY).map_err(|e| {
        if e.errno() == Some(Errno::ENOENT) {
            e.detail("a dangling symlink is in the way")
        } else {
            e
        }
    })
}

/// Write a file inside `root` (parents created 0755), replacing an existing regular file.
/// A symlink at `path` is an error (ELOOP), never followed.
pub fn write_file(root: BorrowedFd<'_>, path: &str, content: &[u8], mode: u32) -> Result<()> {
    let (parent, name) = split_last(path)
        .ok_or_else(|| SysError::invalid("file", "path", "the root itself is not a file"))?;
    let pfd = parent_dir(root, &parent)?;
    let fd = rfs::openat(
        &pfd,
        name.as_str(),
        OFlags::WRONLY | OFlags::CREATE | OFlags::TRUNC | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::from_raw_mode(mode & 0o7777),
    )
    .map_err(|e| rx("file", e).path(path))?;
    rfs::fchmod(&fd, Mode::from_raw_mode(mode & 0o7777)).map_err(|e| rx("chmod", e).path(path))?;
    let mut left = content;
    while !left.is_empty() {
        let n = rustix::io::write(&fd, left).map_err(|e| rx("write", e).path(path))?;
        left = &left[n..];
    }
    Ok(())
}

/// The content and permission bits of the regular file `path` inside `root`, or None when
/// nothing is there: what a rollback needs to put an overwritten file back. A final symlink
/// is not followed (write_file would not write through it either). Anything but a regular
/// file, or one over `max` bytes, is an error, so the caller can refuse before writing: the
/// kind is checked on an O_PATH handle first, so a device node or FIFO is never opened, and
/// the file read is checked to be the one that was looked at.
pub fn save_file(root: BorrowedFd<'_>, path: &str, max: u64) -> Result<Option<(Vec<u8>, u32)>> {
    let refuse = |why: String| Err(SysError::invalid("file", "path", why));
    let handle = match open_in(root, path, OFlags::PATH | OFlags::NOFOLLOW) {
        Ok(fd) => fd,
        Err(e) if e.errno() == Some(Errno::ENOENT) => return Ok(None),
        Err(e) => return Err(e),
    };
    let seen = rfs::fstat(&handle).map_err(|e| rx("stat", e).path(path))?;
    let kind = rfs::FileType::from_raw_mode(seen.st_mode);
    if kind != rfs::FileType::RegularFile {
        let what = match kind {
            rfs::FileType::Symlink => "a symlink",
            rfs::FileType::Directory => "a directory",
            _ => "a device, FIFO or socket",
        };
        return refuse(format!("{path} exists and is {what}, not a regular file"));
    }
    if seen.st_size as u64 > max {
        return refuse(format!(
            "{path} exists and is over {max} bytes; it is not overwritten, as a rollback could not put it back"
        ));
    }
    let fd = open_in(
        root,
        path,
        OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK,
    )?;
    let st = rfs::fstat(&fd).map_err(|e| rx("stat", e).path(path))?;
    if (st.st_dev, st.st_ino) != (seen.st_dev, seen.st_ino) {
        return refuse(format!("{path} was replaced while it was being saved"));
    }
    let mut content = Vec::with_capacity(st.st_size as usize);
    std::io::Read::read_to_end(&mut std::fs::File::from(fd), &mut content)
        .map_err(|e| SysError::io("read", &e).path(path))?;
    Ok(Some((content, st.st_mode & 0o7777)))
}

/// Create a symlink `path -> target` inside `root` (parents created 0755). The target is
/// stored as given and never followed here.
pub fn symlink(root: BorrowedFd<'_>, target: &str, path: &str) -> Result<()> {
    let (parent, name) = split_last(path).ok_or_else(|| {
        SysError::invalid("symlink", "path", "the root itself cannot be a symlink")
    })?;
    let pfd = parent_dir(root, &parent)?;
    rfs::symlinkat(target, &pfd, name.as_str())
        .map_err(|e| rx("symlink", e).path(path).detail(format!("→ {target}")))
}

/// A handle on a mount point at `path` inside `root` (as `mkdir_all` gives), creating a
/// directory (or an empty file when `file` is set, for binding a file) if nothing is there.
pub fn mount_point(root: BorrowedFd<'_>, path: &str, file: bool) -> Result<OwnedFd> {
    check_inside("mount", "target", path)?;
    match open_in(root, path, OFlags::PATH) {
        Ok(fd) => return Ok(fd),
        Err(e) if e.errno() == Some(Errno::ENOENT) => {}
        Err(e) => return Err(e),
    }
    if !file {
        return make_dir(root, path, 0o755);
    }
    let (parent, name) = split_last(path)
        .ok_or_else(|| SysError::invalid("mount", "target", "the root itself is not a file"))?;
    let pfd = parent_dir(root, &parent)?;
    match rfs::openat(
        &pfd,
        name.as_str(),
        OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::from_raw_mode(0o644),
    ) {
        Ok(_) | Err(rustix::io::Errno::EXIST) => {}
        Err(e) => return Err(rx("mount point", e).path(path)),
    }
    open_in(root, path, OFlags::PATH)
}

/// Reject a path that climbs above its root by `..` alone ("../x", "a/../../b"): inside a
/// root such a path is clamped, which is never what the author meant.
pub fn check_inside(op: &str, arg: &str, path: &str) -> Result<()> {
    let mut depth: i64 = 0;
    for c in components(path) {
        depth += if c == ".." { -1 } else { 1 };
        if depth < 0 {
            return Err(SysError::invalid(
                op,
                arg,
                format!("{path:?} is outside the root (it climbs above it with \"..\")"),
            ));
        }
    }
    Ok(())
}

/// Remove `path` inside `root` (a directory when `dir`), never following a final symlink.
pub fn remove(root: BorrowedFd<'_>, path: &str, dir: bool) -> Result<()> {
    let (parent, name) =
        split_last(path).ok_or_else(|| SysError::invalid("remove", "path", "the root itself"))?;
    let pfd = open_in(root, &parent, OFlags::PATH | OFlags::DIRECTORY)?;
    let flags = if dir {
        rfs::AtFlags::REMOVEDIR
    } else {
        rfs::AtFlags::empty()
    };
    rfs::unlinkat(&pfd, name.as_str(), flags).map_err(|e| rx("remove", e).path(path))
}

/// Whether something (even a dangling symlink) is at `path` inside `root`.
pub fn exists(root: BorrowedFd<'_>, path: &str) -> bool {
    match split_last(path) {
        None => true,
        Some((parent, name)) => match open_in(root, &parent, OFlags::PATH | OFlags::DIRECTORY) {
            Ok(p) => rfs::statat(&p, name.as_str(), rfs::AtFlags::SYMLINK_NOFOLLOW).is_ok(),
            Err(_) => false,
        },
    }
}

/// Where `path` inside `root` really is, as a path of the calling process (its parent is
/// resolved inside the root; the last component is kept as is). None when the parent is
/// missing.
pub fn real_path(root: BorrowedFd<'_>, path: &str) -> Option<String> {
    let (parent, name) = match split_last(path) {
        None => (".".to_string(), String::new()),
        Some(x) => x,
    };
    let pfd = open_in(root, &parent, OFlags::PATH | OFlags::DIRECTORY).ok()?;
    let dir = std::fs::read_link(fd_path(&pfd)).ok()?;
    let dir = dir.to_string_lossy();
    Some(if name.is_empty() {
        dir.into_owned()
    } else {
        format!("{}/{name}", dir.trim_end_matches('/'))
    })
}

/// Whether the object behind `fd` is a directory.
pub fn is_dir(fd: BorrowedFd<'_>) -> Result<bool> {
    let st = rfs::fstat(fd).map_err(|e| rx("fstat", e))?;
    Ok(rfs::FileType::from_raw_mode(st.st_mode) == rfs::FileType::Directory)
}

/// `/proc/self/fd/N` for an fd, for calls that only take paths (mount(2)).
pub fn fd_path(fd: impl AsFd) -> String {
    use std::os::fd::AsRawFd;
    format!("/proc/self/fd/{}", fd.as_fd().as_raw_fd())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt;

    fn ino(fd: &OwnedFd) -> (u64, u64) {
        let st = rfs::fstat(fd).unwrap();
        (st.st_dev, st.st_ino)
    }

    #[test]
    fn hostile_symlinks_stay_inside_root_with_openat2_and_walk() {
        let t = tempfile::tempdir().unwrap();
        let r = t.path();
        std::fs::create_dir_all(r.join("real/sub")).unwrap();
        std::os::unix::fs::symlink("/", r.join("etc")).unwrap();
        std::os::unix::fs::symlink("../../../../..", r.join("up")).unwrap();
        std::os::unix::fs::symlink("/real/sub", r.join("abs")).unwrap();
        std::os::unix::fs::symlink("loop2", r.join("loop1")).unwrap();
        std::os::unix::fs::symlink("loop1", r.join("loop2")).unwrap();
        let root = open_dir(r).unwrap();
        let root_id = ino(&root);
        for p in ["etc", "/etc", "up", "up/etc/..", "etc/etc/../.."] {
            let a = open_in(root.as_fd(), p, OFlags::PATH).unwrap();
            let b = walk(root.as_fd(), p, OFlags::PATH).unwrap();
            assert_eq!(ino(&a), root_id, "{p} via openat2");
            assert_eq!(ino(&b), root_id, "{p} via walk");
        }
        let sub = std::fs::metadata(r.join("real/sub")).unwrap();
        for p in ["abs", "etc/abs", "up/real/sub"] {
            let a = open_in(root.as_fd(), p, OFlags::PATH).unwrap();
            let b = walk(root.as_fd(), p, OFlags::PATH).unwrap();
            assert_eq!(ino(&a), (sub.dev(), sub.ino()));
            assert_eq!(ino(&b), (sub.dev(), sub.ino()));
        }
        assert_eq!(
            walk(root.as_fd(), "loop1", OFlags::PATH)
                .unwrap_err()
                .errno(),
            Some(Errno::ELOOP)
        );
        assert_eq!(
            open_in(root.as_fd(), "loop1", OFlags::PATH)
                .unwrap_err()
                .errno(),
            Some(Errno::ELOOP)
        );
    }

    #[test]
    fn creation_through_hostile_links_lands_inside_root() {
        let t = tempfile::tempdir().unwrap();
        let r = t.path();
        std::os::unix::fs::symlink("/", r.join("etc")).unwrap();
        std::os::unix::fs::symlink("../../../..", r.join("up")).unwrap();
        let root = open_dir(r).unwrap();
        mkdir_all(root.as_fd(), "/etc/ctrsh-safepath-test/x", 0o700).unwrap();
        assert!(r.join("ctrsh-safepath-test/x").is_dir());
        assert!(!Path::new("/ctrsh-safepath-test").exists());
        write_file(root.as_fd(), "up/f", b"hi", 0o600).unwrap();
        assert_eq!(std::fs::read(r.join("f")).unwrap(), b"hi");
        symlink(root.as_fd(), "/", "etc/l").unwrap();
        assert!(r
            .join("l")
            .symlink_metadata()
            .unwrap()
            .file_type()
            .is_symlink());
        // A symlink as the final component of a file write is refused, not followed.
        std::os::unix::fs::symlink("/tmp/ctrsh-never", r.join("bad")).unwrap();
        assert_eq!(
            write_file(root.as_fd(), "bad", b"x", 0o644)
                .unwrap_err()
                .errno(),
            Some(Errno::ELOOP)
        );
        assert!(!Path::new("/tmp/ctrsh-never").exists());
        let m = std::fs::metadata(r.join("ctrsh-safepath-test/x")).unwrap();
        assert_eq!(m.mode() & 0o7777, 0o700);
    }
}
