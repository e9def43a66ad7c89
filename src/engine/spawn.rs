//! Creating processes: `spawn(spec)`, `run(spec)`, `output(spec)`, `fork(|| ...)`,
//! `exec(argv)`. The spec map is read completely into a `sys::spawn::Plan` (every key
//! checked, files opened) before anything is created, so bad input leaves nothing behind.

use std::ffi::CString;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::rc::Rc;

use nix::fcntl::OFlag;
use nix::sys::stat::Mode;
use rhai::{Array, Dynamic, FnPtr, ImmutableString, Map, NativeCallContext};

use super::api::Api;
use super::cleanup;
use super::control::Outcome;
use super::error::{a_type, arg_err, script_type, sys_err, type_of, IntoScript, RResult};
use super::fd::Fd;
use super::ns::{kind_arg, kinds_arg, ns_from};
use super::opts::{strs_of, Opts};
use super::process::Process;
use crate::sys::caps::{self, CapSet};
use crate::sys::idmap::IdMap;
use crate::sys::ns::NsKind;
use crate::sys::rlimit::{self, Limit};
use crate::sys::spawn::{self as launcher, Forked, Plan, Root, TtyPlan};
use crate::sys::{named, tty, unixsock, SysError};

const SPAWN_KEYS: &[&str] = &[
    "cmd",
    "ns",
    "join",
    "uid_map",
    "gid_map",
    "setgroups",
    "rootfs",
    "hostname",
    "env",
    "inherit_env",
    "cwd",
    "uid",
    "gid",
    "groups",
    "caps",
    "no_new_privs",
    "rlimits",
    "time_offsets",
    "stdin",
    "stdout",
    "stderr",
    "fds",
    "init",
    "setup",
    "detach",
    "name",
    "tty",
    "cgroup",
];

/// A parsed spec: the plan plus what must stay alive until the child has exec'd.
pub struct Prepared {
    pub plan: Plan,
    /// Descriptors opened for the child (files, /dev/null, pipe ends, passed Fds).
    _keep: Vec<Rc<OwnedFd>>,
    /// Read ends of captured stdout / stderr (for `output`).
    pub captured: [Option<OwnedFd>; 2],
    /// Ends only the child may hold (write ends of capture pipes): closed once it exec'd.
    child_only: Vec<OwnedFd>,
    pub setup: Option<FnPtr>,
    /// The cgroup to start in (CLONE_INTO_CGROUP for v2; v1 hierarchies before "go").
    pub cgroup: Option<super::cgroup::Cgroup>,
    pub detach: bool,
    pub what: String,
    pub op: String,
    /// A name to record the container under (`ctrsh ps`, `ctrsh attach NAME`).
    pub name: Option<String>,
    /// The shell's end of the socket the payload sends its pty master over.
    pub tty_sock: Option<OwnedFd>,
}

impl Prepared {
    /// A plan made elsewhere (attach), with the descriptors it refers to.
    pub fn from_plan(op: &str, what: String, plan: Plan, keep: Vec<Rc<OwnedFd>>) -> Prepared {
        Prepared {
            plan,
            _keep: keep,
            captured: [None, None],
            child_only: Vec::new(),
            setup: None,
            cgroup: None,
            detach: false,
            what,
            op: op.to_string(),
            name: None,
            tty_sock: None,
        }
    }

    /// Give the payload a pty whose `dev/ptmx` is looked up under `root` (its view).
    pub fn with_tty(&mut self, root: &str) -> RResult<()> {
        let (parent, child) = unixsock::pair(nix::sys::socket::SockType::SeqPacket).script()?;
        self.plan.tty = Some(TtyPlan {
            sock: child.as_raw_fd(),
            root: root.to_string(),
        });
        self.child_only.push(child);
        self.tty_sock = Some(parent);
        Ok(())
    }
}

/// The standard streams given in `o` (stdin/stdout/stderr: "inherit", "null", a path, an
/// Fd or an fd number), as launcher fd pairs.
pub fn stdio_fds(o: &Opts, keep: &mut Vec<Rc<OwnedFd>>) -> RResult<Vec<(RawFd, RawFd)>> {
    let mut fds = Vec::new();
    for (i, key) in ["stdin", "stdout", "stderr"].iter().enumerate() {
        if let Stdio::Fd(fd) = stdio(o, key, keep, false)? {
            fds.push((i as RawFd, fd));
        }
    }
    Ok(fds)
}

/// `tty: true` (a pty when ctrsh's stdin and stdout are terminals), `"always"`, or false.
pub fn tty_of(o: &Opts) -> RResult<bool> {
    match o.get("tty") {
        None => Ok(false),
        Some(v) if v.is_bool() => Ok(v.as_bool().unwrap_or(false) && tty::wanted(false)),
        Some(v) => match v.clone().into_string().as_deref() {
            Ok("always") => Ok(tty::wanted(true)),
            _ => Err(arg_err(
                o.op,
                "tty",
                "expected true (a pty when ctrsh runs on a terminal), false or \"always\"",
            )),
        },
    }
}

/// How a standard stream is given.
enum Stdio {
    Inherit,
    Fd(RawFd),
    Capture,
}

fn open_path(op: &str, key: &str, path: &str, write: bool) -> RResult<OwnedFd> {
    let flags = if write {
        OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_TRUNC | OFlag::O_CLOEXEC
    } else {
        OFlag::O_RDONLY | OFlag::O_CLOEXEC
    };
    nix::fcntl::open(path, flags, Mode::from_bits_truncate(0o644)).map_err(|e| {
        sys_err(
            SysError::os("open", e)
                .path(path)
                .name(key)
                .detail(format!("{op}: {key}")),
        )
    })
}

/// Read `stdin`/`stdout`/`stderr`: inherit (default or "inherit"), "null", a path, an Fd,
/// an fd number of the shell, or "pipe" (only where `capture_ok`).
fn stdio(o: &Opts, key: &str, keep: &mut Vec<Rc<OwnedFd>>, capture_ok: bool) -> RResult<Stdio> {
    let Some(v) = o.get(key) else {
        return Ok(Stdio::Inherit);
    };
    if let Some(f) = v.read_lock::<Fd>() {
        keep.push(f.fd.clone());
        return Ok(Stdio::Fd(f.fd.as_raw_fd()));
    }
    if let Ok(n) = v.as_int() {
        return shell_fd(o.op, key, "", n).map(Stdio::Fd);
    }
    let s = v.clone().into_string().map_err(|t| {
        arg_err(
            o.op,
            key,
            format!(
                "expected \"inherit\", \"null\", a path or an Fd, got {}",
                script_type(t)
            ),
        )
    })?;
    match s.as_str() {
        "inherit" => Ok(Stdio::Inherit),
        "pipe" if capture_ok => Ok(Stdio::Capture),
        "pipe" => Err(arg_err(
            o.op,
            key,
            "\"pipe\" is for output(spec), which collects it",
        )),
        "null" => {
            let fd = open_path(o.op, key, "/dev/null", key != "stdin")?;
            let raw = fd.as_raw_fd();
            keep.push(Rc::new(fd));
            Ok(Stdio::Fd(raw))
        }
        "" => Err(arg_err(o.op, key, "an empty path")),
        path => {
            let fd = open_path(o.op, key, path, key != "stdin")?;
            let raw = fd.as_raw_fd();
            keep.push(Rc::new(fd));
            Ok(Stdio::Fd(raw))
        }
    }
}

/// An fd number of the shell given for option `key` (`what` prefixes the message, e.g.
/// "fd 3: "): a descriptor number the shell has open.
fn shell_fd(op: &str, key: &str, what: &str, n: i64) -> RResult<RawFd> {
    let fd = super::error::int_arg::<i32>(op, key, n)?;
    // Checked before the probe: BorrowedFd must never hold -1 (it panics), and no
    // negative number is a descriptor.
    if fd < 0 {
        return Err(arg_err(
            op,
            key,
            format!("{what}{fd} is not a descriptor number (they are 0 or more)"),
        ));
    }
    // SAFETY: a non-negative number borrowed only for an F_GETFD probe; one that is not
    // open just fails with EBADF.
    let probe = unsafe { std::os::fd::BorrowedFd::borrow_raw(fd) };
    if nix::fcntl::fcntl(probe, nix::fcntl::FcntlArg::F_GETFD).is_err() {
        return Err(arg_err(
            op,
            key,
            format!("{what}the shell has no open fd {fd}"),
        ));
    }
    Ok(fd)
}

fn id_map(o: &Opts, key: &str) -> RResult<Option<IdMap>> {
    let Some(v) = o.get(key) else { return Ok(None) };
    if let Ok(s) = v.clone().into_string() {
        return IdMap::parse(o.op, key, &s).map(Some).script();
    }
    let arr = v.read_lock::<Array>().map(|a| a.clone()).ok_or_else(|| {
        arg_err(
            o.op,
            key,
            format!(
                "expected text like \"0 100000 65536\" or [[inside, outside, count], ...], got {}",
                type_of(v)
            ),
        )
    })?;
    // One triple [0, 1000, 1] or a list of them.
    let rows: Vec<Dynamic> = if arr.first().is_some_and(|x| x.is_int()) {
        vec![Dynamic::from(arr.clone())]
    } else {
        arr
    };
    let mut triples = Vec::new();
    for r in rows {
        let t = r
            .read_lock::<Array>()
            .map(|a| a.clone())
            .unwrap_or_default();
        let nums: Vec<i64> = t.iter().filter_map(|x| x.as_int().ok()).collect();
        if nums.len() != 3 || t.len() != 3 {
            return Err(arg_err(
                o.op,
                key,
                "each entry is [inside, outside, count] (three integers)",
            ));
        }
        triples.push([nums[0], nums[1], nums[2]]);
    }
    IdMap::from_triples(o.op, key, &triples).map(Some).script()
}

fn env_of(o: &Opts) -> RResult<Vec<CString>> {
    let mut vars: Vec<(String, String)> = Vec::new();
    if o.bool("inherit_env", false)? {
        vars.extend(std::env::vars_os().map(|(k, v)| {
            (
                k.to_string_lossy().into_owned(),
                v.to_string_lossy().into_owned(),
            )
        }));
    }
    if let Some(v) = o.get("env") {
        let m = v.read_lock::<Map>().map(|m| m.clone()).ok_or_else(|| {
            arg_err(
                o.op,
                "env",
                format!("expected a map of NAME: value, got {}", type_of(v)),
            )
        })?;
        for (k, val) in m {
            if k.is_empty() || k.contains('=') || k.contains('\0') {
                return Err(arg_err(o.op, "env", format!("invalid variable name {k:?}")));
            }
            vars.retain(|(n, _)| n != k.as_str());
            // () removes the variable (an inherited one too); arrays and maps have no
            // environment form.
            if val.is_unit() {
                continue;
            }
            if val.is_array() || val.is_map() {
                return Err(arg_err(
                    o.op,
                    "env",
                    format!(
                        "the value of {k} is {}: give a string (or a number, a bool)",
                        a_type(val.type_name())
                    ),
                ));
            }
            vars.push((k.to_string(), val.to_string()));
        }
    }
    vars.into_iter()
        .map(|(k, v)| {
            CString::new(format!("{k}={v}"))
                .map_err(|_| arg_err(o.op, "env", format!("a NUL byte in the value of {k}")))
        })
        .collect()
}

fn caps_of(o: &Opts) -> RResult<Option<CapSet>> {
    if o.get("caps").is_none() {
        return Ok(None);
    }
    let mut set = CapSet::default();
    for name in o.strs("caps")? {
        let n = caps::parse(o.op, "caps", &name).script()?;
        set.0 |= 1 << n;
    }
    Ok(Some(set))
}

fn limit_value(op: &str, name: &str, v: &Dynamic) -> RResult<u64> {
    if let Ok(n) = v.as_int() {
        return u64::try_from(n)
            .map_err(|_| arg_err(op, "rlimits", format!("{name}: {n} is negative")));
    }
    match v.clone().into_string().as_deref() {
        Ok("unlimited") | Ok("infinity") | Ok("max") => Ok(u64::MAX),
        _ => Err(arg_err(
            op,
            "rlimits",
            format!("{name}: expected an integer or \"unlimited\""),
        )),
    }
}

fn rlimits_of(o: &Opts) -> RResult<Vec<Limit>> {
    let Some(v) = o.get("rlimits") else {
        return Ok(Vec::new());
    };
    let m = v.read_lock::<Map>().map(|m| m.clone()).ok_or_else(|| {
        arg_err(
            o.op,
            "rlimits",
            "expected a map like #{ nofile: 1024, core: [0, 0] }",
        )
    })?;
    let mut out = Vec::new();
    for (k, val) in m {
        let (name, resource) = rlimit::parse(o.op, &k).script()?;
        let (soft, hard) = if let Some(a) = val.read_lock::<Array>() {
            if a.len() != 2 {
                return Err(arg_err(
                    o.op,
                    "rlimits",
                    format!("{k}: expected [soft, hard]"),
                ));
            }
            (limit_value(o.op, &k, &a[0])?, limit_value(o.op, &k, &a[1])?)
        } else {
            let n = limit_value(o.op, &k, &val)?;
            (n, n)
        };
        if soft > hard {
            return Err(arg_err(
                o.op,
                "rlimits",
                format!("{k}: soft limit {soft} is above the hard limit {hard}"),
            ));
        }
        out.push(Limit {
            name,
            resource,
            soft,
            hard,
        });
    }
    Ok(out)
}

fn time_offsets_of(o: &Opts) -> RResult<Vec<(String, i64)>> {
    let Some(v) = o.get("time_offsets") else {
        return Ok(Vec::new());
    };
    let m = v.read_lock::<Map>().map(|m| m.clone()).ok_or_else(|| {
        arg_err(
            o.op,
            "time_offsets",
            "expected #{ monotonic: seconds, boottime: seconds }",
        )
    })?;
    let mut out = Vec::new();
    for (k, val) in m {
        if k != "monotonic" && k != "boottime" {
            return Err(arg_err(
                o.op,
                "time_offsets",
                format!("unknown clock {k:?}; clocks are monotonic and boottime"),
            ));
        }
        let secs = val.as_int().map_err(|t| {
            arg_err(
                o.op,
                "time_offsets",
                format!("{k}: expected whole seconds, got {}", script_type(t)),
            )
        })?;
        out.push((k.to_string(), secs));
    }
    Ok(out)
}

fn fds_of(o: &Opts, keep: &mut Vec<Rc<OwnedFd>>) -> RResult<Vec<(RawFd, RawFd)>> {
    let Some(v) = o.get("fds") else {
        return Ok(Vec::new());
    };
    let m = v.read_lock::<Map>().map(|m| m.clone()).ok_or_else(|| {
        arg_err(
            o.op,
            "fds",
            "expected a map from target fd to an Fd or fd number: #{ \"3\": sock }",
        )
    })?;
    let mut out = Vec::new();
    for (k, val) in m {
        let target: RawFd = k
            .parse()
            .ok()
            .filter(|n| (0..=65535).contains(n))
            .ok_or_else(|| arg_err(o.op, "fds", format!("{k:?} is not a descriptor number")))?;
        let source = if let Some(f) = val.read_lock::<Fd>() {
            keep.push(f.fd.clone());
            f.fd.as_raw_fd()
        } else if let Ok(n) = val.as_int() {
            shell_fd(o.op, "fds", &format!("fd {k}: "), n)?
        } else {
            return Err(arg_err(
                o.op,
                "fds",
                format!(
                    "fd {k}: expected an Fd or an fd number, got {}",
                    type_of(&val)
                ),
            ));
        };
        out.push((target, source));
    }
    Ok(out)
}

/// Read a spawn spec. `capture` allows "pipe" for stdout/stderr (output()).
pub fn prepare(op: &str, spec: Map, capture: bool) -> RResult<Prepared> {
    let o = Opts::new(op, spec, SPAWN_KEYS)?;
    let cmd = match o.get("cmd") {
        None => return Err(arg_err(op, "cmd", "the spec needs cmd: the program and its arguments, e.g. cmd: [\"sh\", \"-c\", \"echo hi\"]")),
        Some(v) => {
            one_string_command(op, "cmd", v)?;
            strs_of(op, "cmd", v)?
        }
    };
    if cmd.is_empty() || cmd[0].is_empty() {
        return Err(arg_err(
            op,
            "cmd",
            "cmd is empty: give the program and its arguments",
        ));
    }
    let argv = cmd
        .iter()
        .map(|a| {
            CString::new(a.as_str()).map_err(|_| arg_err(op, "cmd", "a NUL byte in an argument"))
        })
        .collect::<RResult<Vec<_>>>()?;

    let create = match o.get("ns") {
        None => Vec::new(),
        Some(v) => {
            let a = v.read_lock::<Array>().map(|a| a.clone()).ok_or_else(|| {
                arg_err(
                    op,
                    "ns",
                    format!("expected an array of namespace kinds, got {}", type_of(v)),
                )
            })?;
            kinds_arg(op, "ns", &a)?
        }
    };
    let mut join = Vec::new();
    if let Some(v) = o.get("join") {
        let m = v.read_lock::<Map>().map(|m| m.clone()).ok_or_else(|| {
            arg_err(
                op,
                "join",
                "expected a map of kind to Ns or Process: #{ net: n }",
            )
        })?;
        for (k, target) in m {
            let kind = kind_arg(op, "join", &k)?;
            if create.contains(&kind) {
                return Err(arg_err(
                    op,
                    "join",
                    format!("the {kind} namespace is both created (ns) and joined (join)"),
                ));
            }
            join.push((kind, ns_from(op, "join", &target, kind)?));
        }
        // The user namespace first: joining it gives the rights to join the others.
        join.sort_by_key(|(k, _)| *k != NsKind::User);
    }
    let has = |k: NsKind| create.contains(&k) || join.iter().any(|(j, _)| *j == k);

    let uid_map = id_map(&o, "uid_map")?;
    let gid_map = id_map(&o, "gid_map")?;
    if (uid_map.is_some() || gid_map.is_some()) && !create.contains(&NsKind::User) {
        let key = if uid_map.is_some() {
            "uid_map"
        } else {
            "gid_map"
        };
        return Err(arg_err(
            op,
            key,
            "id maps need a new user namespace: add \"user\" to ns",
        ));
    }
    // One map alone would leave the other at its default, root inside = the shell's own id
    // outside: with a uid range given, group 0 inside would still be the host's root group.
    if uid_map.is_some() != gid_map.is_some() {
        let (given, missing) = if uid_map.is_some() {
            ("uid_map", "gid_map")
        } else {
            ("gid_map", "uid_map")
        };
        return Err(arg_err(
            op,
            missing,
            format!(
                "{given} is given but {missing} is not: the missing map would default to root \
                 inside = the shell's own id outside (the host's root when ctrsh runs as root); \
                 give {missing} too (usually the same ranges)"
            ),
        ));
    }
    let setgroups = match o.str("setgroups")?.as_deref() {
        None => None,
        Some("allow") => Some(true),
        Some("deny") => Some(false),
        Some(other) => {
            return Err(arg_err(
                op,
                "setgroups",
                format!("{other:?}: expected \"allow\" or \"deny\""),
            ))
        }
    };
    if setgroups.is_some() && !create.contains(&NsKind::User) {
        return Err(arg_err(
            op,
            "setgroups",
            "setgroups is for a new user namespace: add \"user\" to ns",
        ));
    }
    let hostname = o.str("hostname")?;
    if let Some(h) = &hostname {
        if h.is_empty() || h.len() > 64 {
            return Err(arg_err(op, "hostname", "a host name is 1 to 64 bytes"));
        }
        if h.contains('\0') {
            return Err(arg_err(
                op,
                "hostname",
                "a host name cannot contain a NUL byte",
            ));
        }
        if !has(NsKind::Uts) {
            return Err(arg_err(op, "hostname", "setting a host name needs a uts namespace: add \"uts\" to ns (or it would rename the host)"));
        }
    }
    let root = match o.get("rootfs") {
        None => Root::Keep,
        Some(v) => match super::rootfs::rootfs_arg(op, v)? {
            super::rootfs::RootArg::Plan(p) => Root::Plan(p),
            super::rootfs::RootArg::Dir(d) => Root::Dir(d),
        },
    };
    if !matches!(root, Root::Keep) && !has(NsKind::Mnt) {
        return Err(arg_err(
            op,
            "rootfs",
            "a root filesystem needs a mount namespace: add \"mnt\" to ns",
        ));
    }
    let time_offsets = time_offsets_of(&o)?;
    if !time_offsets.is_empty() && !create.contains(&NsKind::Time) {
        return Err(arg_err(
            op,
            "time_offsets",
            "clock offsets need a new time namespace: add \"time\" to ns",
        ));
    }
    let groups = match o.get("groups") {
        None => None,
        Some(v) => {
            let a = v
                .read_lock::<Array>()
                .map(|a| a.clone())
                .ok_or_else(|| arg_err(op, "groups", "expected an array of gids"))?;
            Some(
                a.iter()
                    .map(|g| {
                        g.as_int()
                            .ok()
                            .and_then(|n| u32::try_from(n).ok())
                            .ok_or_else(|| arg_err(op, "groups", format!("{g} is not a gid")))
                    })
                    .collect::<RResult<Vec<u32>>>()?,
            )
        }
    };
    let cwd = o.str("cwd")?;
    if let Some(c) = &cwd {
        if c.is_empty() {
            return Err(arg_err(op, "cwd", "an empty directory"));
        }
    }
    let init = o.bool("init", create.contains(&NsKind::Pid))?;
    let detach = o.bool("detach", false)?;
    let name = o.str("name")?;
    if let Some(n) = &name {
        named::validate(op, n).script()?;
    }
    let use_tty = tty_of(&o)?;
    if use_tty && detach {
        return Err(arg_err(
            op,
            "tty",
            "a detached process has nobody to relay its terminal: drop tty or detach",
        ));
    }
    // tty: false passes through (an option map shared with run); only a pty is refused.
    if capture && o.get("tty").is_some_and(|v| v.as_bool() != Ok(false)) {
        return Err(arg_err(
            op,
            "tty",
            "output() collects stdout and stderr; a terminal is for run() and spawn()",
        ));
    }

    let mut keep = Vec::new();
    let mut captured = [None, None];
    let mut child_only = Vec::new();
    let mut fds = fds_of(&o, &mut keep)?;
    for (i, key) in ["stdin", "stdout", "stderr"].iter().enumerate() {
        let target = i as RawFd;
        let given = fds.iter().any(|(t, _)| *t == target);
        let default = if capture && i > 0 && !given {
            Stdio::Capture
        } else {
            Stdio::Inherit
        };
        let s = match stdio(&o, key, &mut keep, capture)? {
            Stdio::Inherit => default,
            s => s,
        };
        match s {
            Stdio::Inherit => {}
            Stdio::Fd(fd) => {
                if given {
                    return Err(arg_err(
                        op,
                        key,
                        format!("fd {i} is given twice ({key} and fds)"),
                    ));
                }
                fds.push((target, fd));
            }
            Stdio::Capture => {
                let (rd, wr) = nix::unistd::pipe2(OFlag::O_CLOEXEC)
                    .map_err(|e| sys_err(SysError::os("pipe", e)))?;
                fds.push((target, wr.as_raw_fd()));
                captured[i - 1] = Some(rd);
                child_only.push(wr);
            }
        }
    }

    let setup = match o.get("setup") {
        None => None,
        Some(v) => Some(
            v.clone()
                .try_cast::<FnPtr>()
                .ok_or_else(|| arg_err(op, "setup", "expected a closure: setup: |p| { ... }"))?,
        ),
    };
    let cgroup = match o.get("cgroup") {
        None => None,
        Some(v) => Some(super::cgroup::cgroup_arg(op, v)?),
    };
    // A uid alone would leave the payload in group 0, the host's root group without a user
    // namespace.
    let (uid, gid) = (o.id("uid")?, o.id("gid")?);
    if uid.is_some() && gid.is_none() {
        return Err(arg_err(
            o.op,
            "gid",
            "uid is given but gid is not: the payload would keep group 0 (root); give gid too",
        ));
    }
    let plan = Plan {
        argv,
        create,
        join,
        uid_map,
        gid_map,
        setgroups,
        root,
        hostname,
        env: env_of(&o)?,
        cwd,
        uid,
        gid,
        groups,
        caps: caps_of(&o)?,
        cap_state: None,
        no_new_privs: o.bool("no_new_privs", false)?,
        rlimits: rlimits_of(&o)?,
        time_offsets,
        fds,
        init,
        cgroup_fd: cgroup
            .as_ref()
            .and_then(|c| c.v2_dir_fd())
            .map(|f| f.as_raw_fd()),
        cgroup_procs: Vec::new(),
        die_with_parent: !detach,
        new_session: detach,
        tty: None,
        hold: setup.is_some() || cgroup.is_some(),
    };
    let mut prep = Prepared {
        plan,
        _keep: keep,
        captured,
        child_only,
        setup,
        cgroup,
        detach,
        what: cmd.join(" "),
        op: op.to_string(),
        name,
        tty_sock: None,
    };
    if use_tty {
        prep.with_tty("/")?;
    }
    Ok(prep)
}

/// Carry a prepared spec out: create the child, run `setup`, let it exec.
pub fn launch(ctx: &NativeCallContext, prep: Prepared) -> RResult<(Process, [Option<OwnedFd>; 2])> {
    let setup = prep.setup.clone();
    launch_with(prep, |p| match &setup {
        Some(f) => f
            .call_within_context::<Dynamic>(ctx, (p.clone(),))
            .map(|_| ()),
        None => Ok(()),
    })
}

/// `launch` with the setup step given as a Rust closure (the CLI has no script context).
pub fn launch_with(
    mut prep: Prepared,
    setup: impl FnOnce(&Process) -> RResult<()>,
) -> RResult<(Process, [Option<OwnedFd>; 2])> {
    // The name first: a name in use is an error before anything is created.
    let claim = match &prep.name {
        Some(n) => Some(named::claim(&prep.op, n, &prep.what).script()?),
        None => None,
    };
    let pending = launcher::start(&prep.plan).script()?;
    let pidfd = pending
        .pidfd()
        .map(|f| f.try_clone_to_owned())
        .transpose()
        .map_err(|e| sys_err(SysError::io("dup(pidfd)", &e)))?;
    // Owned from the start: if anything below fails the handle is torn down with the rest.
    let p = Process::child(pending.pid(), pidfd, prep.what.clone(), true);
    if prep.plan.creates(crate::sys::ns::NsKind::Pid) {
        p.mark_pid_namespace();
    }
    if let Some(cg) = &prep.cgroup {
        // v1 hierarchies (and v2 where clone3 could not place it) before anything runs.
        if !pending.in_cgroup || cg.has_v1() {
            cg.add_pid(pending.pid()).script()?;
        }
    }
    // On error `pending` is dropped here: the child is killed and reaped.
    setup(&p)?;
    if let Some(stops) = pending.go().script()?.stops {
        p.set_stop_reports(stops);
    }
    drop(std::mem::take(&mut prep.child_only));
    if let Some(sock) = prep.tty_sock.take() {
        // Sent before the payload exec'd, so it is there now.
        let master = unixsock::recv_fd(std::os::fd::AsFd::as_fd(&sock), false)
            .map_err(|e| sys_err(e.detail("the payload's pty")))?;
        p.set_tty(master);
    }
    if let Some(c) = claim {
        let rec = c.commit(p.pid).script()?;
        if !prep.detach {
            cleanup::own(format!("state of container {}", rec.name), move || {
                named::forget(&rec);
                Ok(())
            });
        }
    }
    if !prep.detach {
        p.adopt();
    }
    Ok((p, std::mem::take(&mut prep.captured)))
}

/// Read both capture pipes to EOF without letting either fill up.
fn collect(pipes: [Option<OwnedFd>; 2]) -> RResult<[Vec<u8>; 2]> {
    let mut out = [Vec::new(), Vec::new()];
    let mut open: Vec<(usize, OwnedFd)> = pipes
        .into_iter()
        .enumerate()
        .filter_map(|(i, p)| p.map(|p| (i, p)))
        .collect();
    let mut buf = [0u8; 65536];
    while !open.is_empty() {
        let mut pfds: Vec<libc::pollfd> = open
            .iter()
            .map(|(_, fd)| libc::pollfd {
                fd: fd.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            })
            .collect();
        // SAFETY: a valid array of pollfds for the call.
        let r = unsafe { libc::poll(pfds.as_mut_ptr(), pfds.len() as libc::nfds_t, -1) };
        if r < 0 {
            if nix::errno::Errno::last() == nix::errno::Errno::EINTR {
                if let Some(sig) = crate::sys::signals::take() {
                    return Err(super::control::interrupt_err(sig));
                }
                continue;
            }
            return Err(sys_err(SysError::last("poll")));
        }
        let mut done = Vec::new();
        for (k, p) in pfds.iter().enumerate() {
            if p.revents == 0 {
                continue;
            }
            let (i, fd) = &open[k];
            match nix::unistd::read(fd, &mut buf) {
                Ok(0) => done.push(k),
                Ok(n) => out[*i].extend_from_slice(&buf[..n]),
                Err(nix::errno::Errno::EINTR) => {}
                Err(_) => done.push(k),
            }
        }
        for k in done.into_iter().rev() {
            open.remove(k);
        }
    }
    Ok(out)
}

fn spawn_fn(ctx: NativeCallContext, spec: Map) -> RResult<Process> {
    let prep = prepare("spawn", spec, false)?;
    launch(&ctx, prep).map(|(p, _)| p)
}

fn run_fn(ctx: NativeCallContext, spec: Map) -> RResult<i64> {
    let prep = prepare("run", spec, false)?;
    let (p, _) = launch(&ctx, prep)?;
    Ok(p.wait(None).script()?.map_or(0, i64::from))
}

fn output_fn(ctx: NativeCallContext, spec: Map) -> RResult<Map> {
    let prep = prepare("output", spec, true)?;
    let (p, pipes) = launch(&ctx, prep)?;
    let [out, err] = collect(pipes)?;
    let status = p.wait(None).script()?.map_or(0, i64::from);
    let mut m = Map::new();
    m.insert("status".into(), status.into());
    m.insert(
        "stdout".into(),
        String::from_utf8_lossy(&out).into_owned().into(),
    );
    m.insert(
        "stderr".into(),
        String::from_utf8_lossy(&err).into_owned().into(),
    );
    Ok(m)
}

/// `fork(|| ...)`: the closure runs in a forked copy of the shell.
fn fork_fn(ctx: NativeCallContext, body: FnPtr) -> RResult<Process> {
    crate::sys::thread::assert_single_threaded("fork").script()?;
    use std::io::Write;
    let _ = std::io::stdout().flush();
    let _ = std::io::stderr().flush();
    match launcher::fork().script()? {
        Forked::Child => {
            // The child owns nothing of its parent's; it dies with it. It leads a process
            // group of its own, as every child does (sys::jobctl).
            crate::sys::jobctl::own_group();
            cleanup::forget_all();
            // SAFETY: PR_SET_PDEATHSIG takes a signal number.
            unsafe {
                libc::prctl(
                    libc::PR_SET_PDEATHSIG,
                    libc::SIGKILL as libc::c_ulong,
                    0,
                    0,
                    0,
                )
            };
            let outcome = Outcome::from_result(
                body.call_within_context::<Dynamic>(&ctx, ())
                    .and_then(|v| fork_status(&v).map(|c| Dynamic::from(i64::from(c))))
                    .map_err(|mut e| {
                        if e.position().is_none() {
                            e.set_position(ctx.call_position());
                        }
                        e
                    }),
            );
            let code = match &outcome {
                Outcome::Value(v) => v.as_int().map_or(0, |n| n as i32),
                Outcome::Error(e) => {
                    let src = ctx.call_source().unwrap_or("<script>").to_string();
                    eprint!("{}", super::report::render_runtime(e, &src, &[]));
                    1
                }
                o => o.status(),
            };
            cleanup::teardown_all_reporting();
            let _ = std::io::stdout().flush();
            let _ = std::io::stderr().flush();
            // SAFETY: ends the forked child without running the parent's exit handlers.
            unsafe { libc::_exit(code) }
        }
        Forked::Parent { pid, pidfd, .. } => {
            crate::sys::jobctl::set_group(pid);
            Ok(Process::child(pid, pidfd, "fork".into(), false))
        }
    }
}

/// One string is the program alone; "echo hi" is almost always meant as a command line,
/// which ctrsh does not split (no shell is involved): refuse it with what to write.
fn one_string_command(op: &str, arg: &str, v: &Dynamic) -> RResult<()> {
    match v.read_lock::<rhai::ImmutableString>() {
        Some(s) if s.contains(char::is_whitespace) => Err(arg_err(
            op,
            arg,
            format!(
                "{:?} is one string, taken as the program's name; give the program and its \
                 arguments as an array: [\"echo\", \"hi\"], or [\"sh\", \"-c\", \"echo hi\"] \
                 for a shell command line",
                s.as_str()
            ),
        )),
        _ => Ok(()),
    }
}

/// The exit status a fork closure's result stands for: () is 0, an int 0..=255 is itself.
/// Anything else is an error (status 1), never a silent success: a negative int usually
/// means failure, and a string or a handle is no status at all.
fn fork_status(v: &Dynamic) -> RResult<i32> {
    if v.is_unit() {
        return Ok(0);
    }
    let why = match v.as_int() {
        Ok(n) => match i32::try_from(n).ok().filter(|c| (0..=255).contains(c)) {
            Some(c) => return Ok(c),
            None => format!("the closure returned {n}: an exit status is 0..=255"),
        },
        Err(t) => format!(
            "the closure returned {}, not an exit status",
            super::error::a_type(t)
        ),
    };
    Err(sys_err(SysError::invalid("fork", "body", why).hint(
        "end the closure with an int 0..=255, exit(n), or () for 0",
    )))
}

/// `exec(argv)`: replace the shell process. What the recipe created stays as it is (the
/// new program inherits it); nothing is torn down.
fn exec_fn(argv: Dynamic) -> RResult<()> {
    one_string_command("exec", "argv", &argv)?;
    let args = strs_of("exec", "argv", &argv)?;
    if args.is_empty() || args[0].is_empty() {
        return Err(arg_err(
            "exec",
            "argv",
            "argv is empty: give the program and its arguments",
        ));
    }
    let cargs = args
        .iter()
        .map(|a| {
            CString::new(a.as_str())
                .map_err(|_| arg_err("exec", "argv", "a NUL byte in an argument"))
        })
        .collect::<RResult<Vec<_>>>()?;
    let env: Vec<CString> = std::env::vars_os()
        .filter_map(|(k, v)| {
            let mut s = k.into_encoded_bytes();
            s.push(b'=');
            s.extend(v.into_encoded_bytes());
            CString::new(s).ok()
        })
        .collect();
    let path = std::env::var("PATH").unwrap_or_else(|_| crate::sys::exec::DEFAULT_PATH.into());
    let prog = crate::sys::exec::find_program(&args[0], &path).script()?;
    use std::io::Write;
    let _ = std::io::stdout().flush();
    let _ = std::io::stderr().flush();
    crate::sys::exec::reset_signals();
    crate::sys::rlimit::restore_stack();
    let err = crate::sys::exec::execve(&prog, &cargs, &env);
    // Still here: the exec failed; the shell goes on with its handlers back.
    let _ = crate::sys::signals::install();
    Err(sys_err(err))
}

/// The spec keys, part of spawn's reference (a macro so that `concat!` can use it).
macro_rules! spec_doc {
    () => {
        r#"Spec keys (only `cmd` is required):
  cmd           array: the program (looked up on the payload's PATH) and its arguments
  ns            kinds to create: user mnt net pid uts ipc cgroup time
  join          map kind -> Ns or Process to enter instead of creating
  uid_map       "0 100000 65536" (one line per range) or [[inside, outside, count], ...];
  gid_map       both or neither; default with "user": root inside is your own uid/gid outside
  setgroups     "allow" or "deny" (default deny unless ctrsh runs as root)
  rootfs        a directory, a rootfs(...) value or its spec map (needs "mnt")
  hostname      host name inside (needs "uts")
  env           map; the environment is cleared unless inherit_env: true; a () value
                removes a variable
  cwd, uid, gid, groups
  caps          capabilities to keep ("net_admin", ...); all others dropped from every set
  no_new_privs  true: execve never grants privileges again
  rlimits       #{ nofile: 1024, core: [0, 0] }
  time_offsets  #{ monotonic: secs, boottime: secs } (needs "time")
  stdin, stdout, stderr   inherit (default), "null", a path, an Fd or an fd number
  fds           map target fd -> Fd or fd number: #{ "3": sock }; every other fd is closed
  init          ctrsh's mini-init as pid 1 (default true with a new pid namespace); without
                a pid namespace it is a subreaper: the payload's orphans stay its children,
                and it ends them all when the payload exits or ctrsh dies
  setup         |p| { ... } runs in the shell after the namespaces exist, before exec
  cgroup        a Cgroup (or a path / #{ path, limits }) to start in: CLONE_INTO_CGROUP on v2,
                the v1 hierarchies before the child runs anything
  detach        true: not killed when the recipe ends; a new session
  name          record it as a named container (ctrsh ps / stop / attach NAME)
  tty           true: a pty of its own, relayed while the script waits (only when ctrsh
                runs on a terminal; otherwise the streams pass through untouched);
                "always": a pty even without a terminal
"#
    };
}

pub fn register(api: &mut Api) {
    api.func(
        "spawn_options",
        "spawn_options() -> array",
        "The option names a spawn spec takes, for libraries that pass options on to spawn and\n\
         check their own with check_opts.\n\
         Example:\n    check_opts(\"box\", opts, [\"memory\"] + spawn_options());",
        || -> Array {
            SPAWN_KEYS
                .iter()
                .map(|k| Dynamic::from(k.to_string()))
                .collect()
        },
    );
    api.func(
        "spawn",
        "spawn(spec: map) -> Process",
        concat!(
            "Start a process — a container when the spec asks for namespaces — and return its\n\
             Process once it has exec'd. Any failure before exec (a missing program, a mount,\n\
             a map) is raised here with the step and object, and nothing is left running.\n\
             It leads a process group of its own, as a shell's job: the terminal's Ctrl-C\n\
             reaches it only while the script waits for it (wait, run), never while the\n\
             script does something else.\n\
             Unless detached, it is killed when the recipe ends, with what it started: a pid\n\
             namespace or init (a subreaper without one) holds all of it; without either, its\n\
             descendants and what is left in its process group are killed, but a process that\n\
             left the group (setsid: a daemon) and was orphaned is out of reach. If ctrsh is\n\
             killed, the process dies too unless detached (its parent-death signal), and with\n\
             init or a pid namespace so does everything it started.\n",
            spec_doc!(),
            "Example:\n    let p = spawn(#{ ns: [\"user\", \"mnt\", \"pid\", \"uts\"], hostname: \"box\",\n                     cmd: [\"sh\", \"-c\", \"hostname; echo $$\"] });\n    print(p.wait());"
        ),
        spawn_fn,
    );
    api.func(
        "run",
        "run(spec: map) -> int",
        "spawn(spec) and wait: the exit status (128+N when killed by signal N).\n\
         Example:\n    let code = run(#{ cmd: [\"ping\", \"-c1\", \"10.0.0.2\"], join: #{ net: lab }, stdout: \"null\" });",
        run_fn,
    );
    api.func(
        "output",
        "output(spec: map) -> map",
        "spawn(spec), collect its standard output and error (unless the spec redirects them),\n\
         and wait: #{ status, stdout, stderr }.\n\
         Example:\n    let r = output(#{ cmd: [\"uname\", \"-r\"] }); let out = r.stdout; out.trim(); print(out);   // trim() works in place",
        output_fn,
    );
    api.func(
        "fork",
        "fork(body: fn) -> Process",
        "Run the closure in a forked copy of the shell. The child may move itself (unshare,\n\
         setns, sethostname) without touching the shell, and may end in exec([...]). Its\n\
         result is its exit status: an int 0..=255 as it is, () as 0. An error prints and is\n\
         1, and so is any other result (an int outside 0..=255, a string, a map, a handle):\n\
         never a silent success. The child is killed when the recipe ends.\n\
         Example:\n    let p = fork(|| { unshare([\"uts\"]); sethostname(\"x\"); exec([\"hostname\"]) });\n    p.wait();",
        fork_fn,
    );
    api.func(
        "exec",
        "exec(argv: array)",
        "Replace the shell process with a program (looked up on PATH, with the shell's\n\
         environment). What the recipe created is not torn down: the program inherits it.\n\
         Example:\n    fork(|| exec([\"echo\", \"from the child\"])).wait();",
        exec_fn,
    );
    // spawn("ls -l") and spawn(["ls", "-l"]) are the first things a new user types; say
    // what the spec looks like instead of "no variant of spawn() takes these arguments".
    for name in ["spawn", "run", "output"] {
        let wrong = move |what: &str, cmd: String| -> Box<rhai::EvalAltResult> {
            arg_err(
                name,
                "spec",
                format!("expected a map like #{{ cmd: {cmd} }}, got {what}"),
            )
        };
        api.engine
            .register_fn(name, move |s: ImmutableString| -> RResult<()> {
                let words: Vec<String> = s.split_whitespace().map(|w| format!("{w:?}")).collect();
                Err(wrong("a string", format!("[{}]", words.join(", "))))
            });
        api.engine
            .register_fn(name, move |a: Array| -> RResult<()> {
                let shown: Vec<String> = a.iter().map(|v| format!("{v:?}")).collect();
                Err(wrong("an array", format!("[{}]", shown.join(", "))))
            });
    }
}
