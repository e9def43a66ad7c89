//! sysctl(key[, value][, #{ ns }]): /proc/sys read and written from the process itself.

use rhai::{Dynamic, Map};

use super::super::api::Api;
use super::super::error::{arg_err, script_type, sys_err, IntoScript, RResult};
use super::super::opts::Opts;
use super::ns_opt;
use crate::sys::netlink;
use crate::sys::sysctl;
use crate::sys::SysError;

/// The namespace to use: None when it is the shell's own (no switch needed). Only keys under
/// net. belong to a network namespace: any other key read or written "in" one would be the
/// shell's own (kernel.hostname is its uts namespace's, vm.* the host's), so it is refused.
fn target(key: &str, opts: Map) -> RResult<Option<std::rc::Rc<crate::sys::ns::NsFd>>> {
    let o = Opts::new("sysctl", opts, &["ns"])?;
    if o.get("ns").is_none() {
        return Ok(None);
    }
    let k = key.trim_start_matches('/').replace('/', ".");
    if !k.starts_with("net.") {
        return Err(sys_err(
            SysError::invalid(
                "sysctl",
                "key",
                format!(
                    "{key:?} is not a network namespace key (only net.* are): with ns it \
                     would be the shell's own"
                ),
            )
            .hint("enter the namespace that owns it: in_ns(ns, || sysctl(key, value))"),
        ));
    }
    let ns = ns_opt(&o, "ns")?;
    let here = netlink::here().script()?;
    Ok(if ns.inode == here.inode {
        None
    } else {
        Some(ns)
    })
}

fn value_arg(v: &Dynamic) -> RResult<String> {
    if let Ok(n) = v.as_int() {
        return Ok(n.to_string());
    }
    if let Ok(b) = v.as_bool() {
        return Ok(if b { "1" } else { "0" }.to_string());
    }
    v.clone().into_string().map_err(|t| {
        arg_err(
            "sysctl",
            "value",
            format!("expected a string or an integer, got {}", script_type(t)),
        )
    })
}

fn read(key: &str, opts: Map) -> RResult<String> {
    let ns = target(key, opts)?;
    sysctl::read(ns.as_deref(), key).script()
}

fn write(key: &str, value: Dynamic, opts: Map) -> RResult<()> {
    let value = value_arg(&value)?;
    let ns = target(key, opts)?;
    sysctl::write(ns.as_deref(), key, &value).script()
}

pub fn register(api: &mut Api) {
    api.func(
        "sysctl",
        "sysctl(key: string) -> string",
        "Read a kernel parameter (\"net.ipv4.ip_forward\" reads /proc/sys/net/ipv4/ip_forward) of\n\
         the shell's namespaces; the trailing newline is removed.\n\
         Example:\n    print(sysctl(\"net.ipv4.ip_forward\"));",
        |key: &str| read(key, Map::new()),
    );
    api.func(
        "sysctl",
        "sysctl(key: string, opts: map) -> string",
        "Read a kernel parameter as seen from the network namespace `ns` (an Ns, a Process or a\n\
         pid): the shell enters it for the read and always comes back. Only net.* keys belong\n\
         to a network namespace; others are refused with ns.\n\
         Example:\n    print(sysctl(\"net.ipv4.ip_forward\", #{ ns: r }));",
        read,
    );
    api.func(
        "sysctl",
        "sysctl(key: string, value: string|int)",
        "Set a kernel parameter of the shell's namespaces (no sysctl process).\n\
         Example:\n    sysctl(\"net.ipv4.ping_group_range\", \"0 2147483647\");",
        |key: &str, value: Dynamic| write(key, value, Map::new()),
    );
    api.func(
        "sysctl",
        "sysctl(key: string, value: string|int, opts: map)",
        "Set a kernel parameter in the network namespace `ns` (per-namespace keys such as\n\
         net.ipv4.ip_forward; other keys are refused with ns): the shell enters it for the\n\
         write and always comes back.\n\
         Example:\n    sysctl(\"net.ipv4.ip_forward\", \"1\", #{ ns: router });",
        write,
    );
}
