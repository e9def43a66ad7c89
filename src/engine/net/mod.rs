//! Networking script functions over rtnetlink from the shell itself: links (veth, bridge,
//! macvlan, vxlan) and the `Link` handle, addresses, routes, sysctl, and sockets and files
//! opened inside other namespaces. No `ip`, `sysctl` or `brctl` process anywhere.
//!
//! Every function takes an optional `ns` (an Ns, a Process or a pid) in its options map and
//! defaults to the network namespace the shell is in.

mod link;
mod nsfile;
mod own;
mod route;
mod sysctl;

use std::rc::Rc;

use rhai::{Dynamic, EvalAltResult};

use super::api::Api;
use super::error::{sys_err, IntoScript, RResult};
use super::ns::ns_from;
use super::opts::Opts;
use super::process::Process;
use crate::sys::netlink::{self, pinned, Failure};
use crate::sys::ns::{NsFd, NsKind};
use crate::sys::SysError;

pub fn register(api: &mut Api) {
    link::register(api);
    route::register(api);
    sysctl::register(api);
    nsfile::register(api);
}

/// The network namespace an options map names under `key`, or the shell's own.
fn ns_opt(o: &Opts, key: &str) -> RResult<Rc<NsFd>> {
    match o.get(key) {
        Some(v) => ns_val(o.op, key, v),
        None => {
            pinned::invalidate();
            netlink::here().script()
        }
    }
}

/// A namespace given as a value: an Ns, a live Process, a pid; () is the shell's own.
fn ns_val(op: &str, arg: &str, v: &Dynamic) -> RResult<Rc<NsFd>> {
    // Something may have started in (or entered) a namespace since the last look.
    pinned::invalidate();
    if v.is_unit() {
        return netlink::here().script();
    }
    if let Some(p) = v.read_lock::<Process>() {
        if !p.alive() {
            return Err(sys_err(
                SysError::os(op, nix::errno::Errno::ESRCH)
                    .name(arg)
                    .detail(format!(
                        "the process given as {arg} (pid {}) has exited, and its namespace with it",
                        p.pid
                    )),
            ));
        }
    }
    ns_from(op, arg, v, NsKind::Net)
}

/// A netlink refusal as a script error: `op(name): context[; kernel text]: ERRNO`, with a
/// hint for the usual causes.
fn nl_err(f: Failure, op: &str, name: &str, context: String) -> Box<EvalAltResult> {
    sys_err(nl_sys(f, op, name, context))
}

fn nl_sys(f: Failure, op: &str, name: &str, context: String) -> SysError {
    match f {
        Failure::Nack(n) => {
            let detail = match &n.msg {
                Some(m) => format!("{context} (kernel: {m})"),
                None => context,
            };
            let e = SysError::os(op, n.errno).name(name).detail(detail);
            use nix::errno::Errno;
            match n.errno {
                Errno::EOPNOTSUPP if op == "set_master" => {
                    e.hint("a master must be a bridge, bond, team or VRF link")
                }
                Errno::EOPNOTSUPP if op == "delete" => {
                    e.hint("this link cannot be deleted: lo, and devices their driver owns, stay")
                }
                Errno::EOPNOTSUPP => e.hint("this kernel lacks the link kind or the feature"),
                Errno::ENODEV => {
                    e.hint("the interface does not exist (any more) in that namespace")
                }
                Errno::ERANGE | Errno::EINVAL if op == "set_mtu" => {
                    e.hint("the MTU is outside what this link allows")
                }
                _ => e,
            }
        }
        Failure::Sys(e) => e.name(name),
    }
}

/// An integer argument that must fit a u32.
fn u32_arg(op: &str, arg: &str, v: i64) -> RResult<u32> {
    super::error::int_arg::<u32>(op, arg, v)
}
