//! Attach to a running process's container: read everything about the target from
//! /proc/PID first (namespaces, root, cgroups, identity, capabilities, environment), then
//! turn it into a launcher [`Plan`] whose child becomes a member of that container.
//!
//! Two modes:
//! - `Tools` (cntr's attach): the target's user, pid, net, uts, ipc, cgroup and time
//!   namespaces, but a private mount namespace of its own where the host's tree stays at
//!   `/` and the container's is at the attach path (see `mounts.rs`) — the host's tools
//!   work on the container's files. The mount namespace is the one not shared, by design.
//! - `Enter` (nsenter, and the debug shell): every namespace of the target, mount included;
//!   the container's own programs.
//!
//! Order inside the launcher's child (`spawn/child.rs`): join the target's cgroups
//! (cgroup.procs, while still in the host's cgroup namespace), the attach mounts (while
//! still root of the initial user namespace), the target's cgroup namespace, its user
//! namespace, then uid/gid/groups, capabilities, no_new_privs and exec. The pid, net, uts,
//! ipc and time namespaces are entered by the shell around clone3, so the child starts in
//! them.

pub mod cgroup;
pub mod mounts;
pub mod resolve;

use std::ffi::CString;
use std::os::fd::{AsFd, OwnedFd};
use std::path::Path;
use std::rc::Rc;

use nix::errno::Errno;
use rustix::fs::OFlags;

pub use mounts::AttachRoot;

use super::caps::CapState;
use super::error::{Result, SysError};
use super::exec::DEFAULT_PATH;
use super::idmap::IdMap;
use super::ns::{NsFd, NsKind};
use super::procfs::{self, Stat, Status};
use super::spawn::{Plan, Root};

/// Where the container's tree is attached unless told otherwise.
pub const DEFAULT_AT: &str = "/var/lib/ctrsh/attach";

/// Environment variables an attached process gets besides the container's, for
/// `ctrsh exec`: where the container's root is and its environment (encoded).
pub const ENV_ROOT: &str = "CTRSH_ATTACH_ROOT";
pub const ENV_ENV: &str = "CTRSH_ATTACH_ENV";

/// Everything about the target, read before anything is changed.
pub struct Target {
    pub pid: i32,
    pub pidfd: OwnedFd,
    pub stat: Stat,
    pub status: Status,
    pub env: Vec<CString>,
    /// cgroup.procs files to write to join its cgroups.
    pub cgroup_procs: Vec<String>,
    /// Its namespaces that differ from the shell's, user first.
    pub ns: Vec<(NsKind, Rc<NsFd>)>,
    /// /proc/PID/root (O_PATH).
    pub root: Rc<OwnedFd>,
    /// Its user namespace's maps as the shell sees them (None: the shell's own namespace).
    pub uid_map: Option<IdMap>,
    pub gid_map: Option<IdMap>,
    /// /proc/PID/setgroups is "allow".
    pub setgroups: bool,
}

/// ctrsh's mini-init (pid 1 of a container ctrsh started) is a copy of the shell that
/// started it: its environment, identity and capabilities are the shell's, not the
/// container's. For it, the container is represented by its payload (its oldest child).
fn payload_of_ctrsh_init(pid: i32, stat: &Stat) -> Option<i32> {
    if stat.comm != "ctrsh" || procfs::inner_pid(pid) != Some(1) {
        return None;
    }
    procfs::children(pid).into_iter().next()
}

impl Target {
    /// Open pid `pid` as an attach target (for a ctrsh mini-init: its payload). Fails
    /// clearly for a pid that does not exist, a zombie, a kernel thread, and a process
    /// whose namespaces cannot be opened.
    pub fn open(op: &str, pid: i32) -> Result<Target> {
        if let Ok(st) = procfs::stat(pid) {
            if let Some(payload) = payload_of_ctrsh_init(pid, &st) {
                return Target::open_one(op, payload);
            }
        }
        Target::open_one(op, pid)
    }

    fn open_one(op: &str, pid: i32) -> Result<Target> {
        let err = |e: SysError| e.name(format!("pid {pid}"));
        let stat = procfs::stat(pid).map_err(|e| {
            let mut e = err(e);
            e.op = op.to_string();
            e
        })?;
        if stat.is_kernel_thread() {
            return Err(SysError::invalid(
                op,
                format!("pid {pid}"),
                format!(
                    "pid {pid} ({}) is a kernel thread: it has no user space, no container root and no namespaces of its own to attach to",
                    stat.comm
                ),
            )
            .hint("attach to a process of the container (e.g. its init), not a kernel thread"));
        }
        if stat.is_zombie() {
            return Err(SysError::os(op, Errno::ESRCH)
                .name(format!("pid {pid}"))
                .detail(format!("pid {pid} ({}) has exited (a zombie)", stat.comm)));
        }
        let pidfd = super::pidfd::open(pid).map_err(err)?;
        let status = procfs::status(pid).map_err(err)?;
        let env = procfs::environ(pid).map_err(err)?;
        let cgroup_procs = cgroup::procs_files_of(pid).map_err(err)?;
        let mut ns = Vec::new();
        for kind in NsKind::ALL {
            let theirs = NsFd::of_pid(pid, kind).map_err(|e| {
                let e = err(e);
                if e.errno() == Some(Errno::EACCES) {
                    e.hint("the kernel or a security module refuses access to this process's namespaces (ptrace access is needed)")
                } else {
                    e
                }
            })?;
            // The child is cloned by the shell: compare with what the shell's children get.
            let mine = match kind {
                NsKind::Pid | NsKind::Time => NsFd::for_children(kind),
                k => NsFd::of_pid(0, k),
            };
            match mine {
                Ok(m) if m.inode == theirs.inode => {}
                Err(_) if kind == NsKind::Time => {} // a kernel without time namespaces
                _ => ns.push((kind, Rc::new(theirs))),
            }
        }
        let root_path = format!("/proc/{pid}/root");
        let root = rustix::fs::open(
            root_path.as_str(),
            OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
            rustix::fs::Mode::empty(),
        )
        .map_err(|e| super::safepath::rx("open", e).path(&root_path))?;
        let joins_user = ns.iter().any(|(k, _)| *k == NsKind::User);
        let map = |file: &str| -> Result<Option<IdMap>> {
            if !joins_user {
                return Ok(None);
            }
            let path = format!("/proc/{pid}/{file}");
            let text =
                std::fs::read_to_string(&path).map_err(|e| SysError::io("read", &e).path(&path))?;
            IdMap::parse(op, file, &text).map(Some)
        };
        let uid_map = map("uid_map")?;
        let gid_map = map("gid_map")?;
        let setgroups = std::fs::read_to_string(format!("/proc/{pid}/setgroups"))
            .map(|s| s.trim() == "allow")
            .unwrap_or(true);
        let t = Target {
            pid,
            pidfd,
            stat,
            status,
            env,
            cgroup_procs,
            ns,
            root: Rc::new(root),
            uid_map,
            gid_map,
            setgroups,
        };
        t.check_same(op)?;
        Ok(t)
    }

    /// Open `pid` only if it is still the process that started at `start_time`.
    pub fn open_exact(op: &str, pid: i32, start_time: u64) -> Result<Target> {
        if !procfs::same_process(pid, start_time) {
            return Err(SysError::os(op, Errno::ESRCH)
                .name(format!("pid {pid}"))
                .detail("the target has exited (its pid now belongs to another process)"));
        }
        Target::open(op, pid)
    }

    /// Everything read so far belongs to one process: it is still alive and its pid was
    /// not reused while we looked.
    pub fn check_same(&self, op: &str) -> Result<()> {
        let alive = !super::wait::exited(self.pidfd.as_fd(), 0).unwrap_or(true);
        if !alive || !procfs::same_process(self.pid, self.stat.start_time) {
            return Err(SysError::os(op, Errno::ESRCH)
                .name(format!("pid {}", self.pid))
                .detail("the target exited while it was being looked at"));
        }
        Ok(())
    }

    fn joins(&self, k: NsKind) -> Option<Rc<NsFd>> {
        self.ns
            .iter()
            .find(|(j, _)| *j == k)
            .map(|(_, n)| n.clone())
    }

    /// A host id as the target's user namespace numbers it.
    fn inside(map: &Option<IdMap>, id: u32) -> Option<u32> {
        match map {
            None => Some(id),
            Some(m) => m.to_inside(id),
        }
    }

    /// A variable of the target's environment.
    pub fn env_var(&self, name: &str) -> Option<String> {
        self.env.iter().find_map(|e| {
            let s = e.to_str().ok()?;
            s.strip_prefix(name)?.strip_prefix('=').map(str::to_string)
        })
    }
}

/// How the attached process sees the file system.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Mode {
    /// The host's tree at `/`, the container's at `at`.
    Tools { at: String },
    /// The container's mount namespace.
    Enter,
}

/// What to run in the target.
pub struct Request {
    pub mode: Mode,
    /// Empty: the caller's $SHELL (Tools) or the container's (Enter), else /bin/sh.
    pub cmd: Vec<String>,
    /// The caller's TERM, passed on.
    pub term: Option<String>,
}

/// Encode an environment into one variable's value: entries on lines, `\` and newlines
/// escaped.
pub fn encode_env(env: &[CString]) -> String {
    env.iter()
        .map(|e| {
            e.to_string_lossy()
                .replace('\\', "\\\\")
                .replace('\n', "\\n")
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// The inverse of [`encode_env`].
pub fn decode_env(s: &str) -> Vec<CString> {
    s.split('\n')
        .filter(|l| !l.is_empty())
        .filter_map(|l| {
            let mut out = String::with_capacity(l.len());
            let mut it = l.chars();
            while let Some(c) = it.next() {
                if c == '\\' {
                    match it.next() {
                        Some('n') => out.push('\n'),
                        Some(o) => out.push(o),
                        None => out.push('\\'),
                    }
                } else {
                    out.push(c);
                }
            }
            CString::new(out).ok()
        })
        .collect()
}

fn set_var(env: &mut Vec<CString>, name: &str, value: &str) {
    env.retain(|e| {
        e.to_bytes()
            .strip_prefix(name.as_bytes())
            .is_none_or(|r| r.first() != Some(&b'='))
    });
    if let Ok(c) = CString::new(format!("{name}={value}")) {
        env.push(c);
    }
}

fn default_shell(mode: &Mode, t: &Target) -> String {
    match mode {
        Mode::Tools { .. } => std::env::var("SHELL")
            .ok()
            .filter(|s| s.starts_with('/') && Path::new(s).exists())
            .unwrap_or_else(|| "/bin/sh".into()),
        Mode::Enter => t
            .env_var("SHELL")
            .filter(|s| s.starts_with('/'))
            .unwrap_or_else(|| "/bin/sh".into()),
    }
}

/// The launcher plan that makes a process of the target's container.
pub fn plan(op: &str, t: &Target, req: &Request) -> Result<Plan> {
    let cmd = if req.cmd.is_empty() {
        vec![default_shell(&req.mode, t)]
    } else {
        req.cmd.clone()
    };
    if cmd[0].is_empty() {
        return Err(SysError::invalid(op, "cmd", "the program name is empty"));
    }
    let argv = cmd
        .iter()
        .map(|a| CString::new(a.as_str()))
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|_| SysError::invalid(op, "cmd", "a NUL byte in an argument"))?;

    let mut join: Vec<(NsKind, Rc<NsFd>)> = t.ns.clone();
    let mut env = t.env.clone();
    let (root, cwd) = match &req.mode {
        Mode::Tools { at } => {
            mounts::check_at(op, at)?;
            join.retain(|(k, _)| *k != NsKind::Mnt);
            set_var(&mut env, ENV_ROOT, at);
            set_var(&mut env, ENV_ENV, &encode_env(&t.env));
            if t.env_var("PATH").is_none() {
                set_var(&mut env, "PATH", DEFAULT_PATH);
            }
            (
                Root::Attach(AttachRoot {
                    root: t.root.clone(),
                    mnt: t.joins(NsKind::Mnt),
                    at: at.clone(),
                }),
                Some(at.clone()),
            )
        }
        Mode::Enter => (Root::Keep, None),
    };
    if let Some(term) = &req.term {
        set_var(&mut env, "TERM", term);
    }
    let s = &t.status;
    let uid = Target::inside(&t.uid_map, s.uid[1]);
    let gid = Target::inside(&t.gid_map, s.gid[1]);
    let groups: Vec<u32> = s
        .groups
        .iter()
        .filter_map(|g| Target::inside(&t.gid_map, *g))
        .collect();
    Ok(Plan {
        argv,
        create: Vec::new(),
        join,
        uid_map: None,
        gid_map: None,
        setgroups: None,
        root,
        hostname: None,
        env,
        cwd,
        uid,
        gid,
        groups: t.setgroups.then_some(groups),
        caps: None,
        cap_state: Some(CapState {
            eff: s.cap_eff,
            prm: s.cap_prm,
            inh: s.cap_inh,
            bnd: s.cap_bnd,
            amb: s.cap_amb,
        }),
        no_new_privs: s.no_new_privs,
        rlimits: Vec::new(),
        time_offsets: Vec::new(),
        fds: Vec::new(),
        init: false,
        cgroup_fd: None,
        cgroup_procs: t.cgroup_procs.clone(),
        die_with_parent: true,
        new_session: false,
        tty: None,
        hold: false,
    })
}

/// `ctrsh exec`: from inside an attached process, become a process of the container
/// itself — chroot to its root (the attach path), the container's environment, and exec
/// `argv` (empty: the container's $SHELL, else /bin/sh) found on the container's PATH.
/// Returns only the error that stopped it.
pub fn exec_in_container(root: &str, env: &[CString], argv: &[String]) -> SysError {
    let run = || -> Result<SysError> {
        let get = |name: &str| {
            env.iter().find_map(|e| {
                let s = e.to_str().ok()?;
                s.strip_prefix(name)?.strip_prefix('=').map(str::to_string)
            })
        };
        let argv: Vec<String> = if argv.is_empty() {
            vec![get("SHELL").unwrap_or_else(|| "/bin/sh".into())]
        } else {
            argv.to_vec()
        };
        let cargv = argv
            .iter()
            .map(|a| CString::new(a.as_str()))
            .collect::<std::result::Result<Vec<_>, _>>()
            .map_err(|_| SysError::invalid("exec", "cmd", "a NUL byte in an argument"))?;
        super::mount::chroot(root).map_err(|e| {
            if e.errno() == Some(Errno::EPERM) {
                e.hint("chroot needs CAP_SYS_CHROOT, which the attached identity lacks")
            } else {
                e
            }
        })?;
        let path = get("PATH").unwrap_or_else(|| DEFAULT_PATH.to_string());
        let prog = super::exec::find_program(&argv[0], &path)?;
        super::exec::reset_signals();
        super::rlimit::restore_stack();
        Ok(super::exec::execve(&prog, &cargv, env))
    };
    match run() {
        Ok(e) | Err(e) => e,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn environments_survive_encoding() {
        let env: Vec<CString> = ["A=1", "B=two\nlines", "C=back\\slash\\n", "D="]
            .iter()
            .map(|s| CString::new(*s).unwrap())
            .collect();
        assert_eq!(decode_env(&encode_env(&env)), env);
        let mut e = env.clone();
        set_var(&mut e, "A", "9");
        set_var(&mut e, "AB", "x");
        assert!(e.iter().any(|v| v.to_bytes() == b"A=9"));
        assert!(!e.iter().any(|v| v.to_bytes() == b"A=1"));
        assert!(e.iter().any(|v| v.to_bytes() == b"AB=x"));
    }

    #[test]
    fn bad_targets_are_clear() {
        let e = Target::open("attach", 999_999_999)
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("no such process"), "{e}");
        if procfs::stat(2).is_ok_and(|s| s.is_kernel_thread()) {
            let e = Target::open("attach", 2).err().unwrap().to_string();
            assert!(e.contains("kernel thread"), "{e}");
        }
        assert!(mounts::check_at("attach", "/").is_err());
        assert!(mounts::check_at("attach", "rel").is_err());
        assert!(mounts::check_at("attach", "/a/../b").is_err());
        mounts::check_at("attach", DEFAULT_AT).unwrap();
    }
}
