//! NAT through nftables over netlink (no `nft` process): `masquerade(...)`.

use std::cell::Cell;
use std::rc::Rc;

use rhai::{Dynamic, Map};

use super::api::Api;
use super::cleanup;
use super::error::{arg_err, script_type, IntoScript, RResult};
use super::ns::ns_from;
use crate::sys::netaddr;
use crate::sys::nft::{self, Family, Masquerade};
use crate::sys::ns::{NsFd, NsKind};

const KEYS: &[&str] = &["src", "out", "ns", "table", "keep"];

thread_local! {
    static NEXT_TABLE: Cell<u32> = const { Cell::new(0) };
}

fn masquerade(opts: Map) -> RResult<Map> {
    const OP: &str = "masquerade";
    let candidates: Vec<String> = KEYS.iter().map(|s| s.to_string()).collect();
    for k in opts.keys() {
        if !KEYS.contains(&k.as_str()) {
            let near = super::report::nearest(k, &candidates, 1);
            let hint = near
                .first()
                .map(|n| format!("; did you mean {n}?"))
                .unwrap_or_default();
            return Err(arg_err(
                OP,
                k,
                format!("unknown option {k:?}{hint} (options: {})", KEYS.join(", ")),
            ));
        }
    }
    let get_str = |key: &str| -> RResult<String> {
        opts.get(key)
            .ok_or_else(|| arg_err(OP, key, format!("missing required option {key:?}")))?
            .clone()
            .into_string()
            .map_err(|t| arg_err(OP, key, format!("must be a string, got {}", script_type(t))))
    };
    let src = get_str("src")?;
    let c = netaddr::cidr(OP, "src", &src).script()?;
    let (addr, prefix_len) = (c.addr, c.len);
    let out = get_str("out")?;
    netaddr::ifname(OP, "out", &out).script()?;
    let ns: Option<Rc<NsFd>> = match opts.get("ns") {
        Some(v) if !v.is_unit() => Some(ns_from(OP, "ns", v, NsKind::Net)?),
        _ => None,
    };
    let table = match opts.get("table") {
        Some(t) => t.clone().into_string().map_err(|t| {
            arg_err(
                OP,
                "table",
                format!("must be a string, got {}", script_type(t)),
            )
        })?,
        None => {
            let n = NEXT_TABLE.with(|c| {
                c.set(c.get() + 1);
                c.get()
            });
            format!("ctrsh_nat_{}_{n}", std::process::id())
        }
    };
    if table.is_empty()
        || table.len() > 255
        || !table
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    {
        return Err(arg_err(
            OP,
            "table",
            format!("{table:?} is not a valid table name (letters, digits, _ and -)"),
        ));
    }
    let keep = opts
        .get("keep")
        .map(|v| v.as_bool().unwrap_or(false))
        .unwrap_or(false);
    let family = if addr.is_ipv4() {
        Family::Ipv4
    } else {
        Family::Ipv6
    };
    let m = Masquerade {
        table: table.clone(),
        family,
        src: addr,
        prefix_len,
        out: out.clone(),
    };
    nft::add_masquerade(ns.as_deref(), &m)
        .map_err(|e| e.detail(format!("{src} out of {out}")))
        .script()?;
    if !keep {
        let ns2 = ns.clone();
        let t2 = table.clone();
        cleanup::own(
            format!("nftables table {} {t2}", family.name()),
            move || nft::delete_table(ns2.as_deref(), family, &t2),
        );
    }
    let mut res = Map::new();
    res.insert("table".into(), Dynamic::from(table));
    res.insert("family".into(), Dynamic::from(family.name().to_string()));
    Ok(res)
}

pub fn register(api: &mut Api) {
    api.func(
        "masquerade",
        "masquerade(opts: map) -> map",
        "Source-NAT traffic from a private prefix leaving through an interface, with nftables\n\
         over netlink (no `nft` process): one table with a `nat` postrouting chain and the rule\n\
         `ip saddr SRC oifname OUT masquerade`. Options: `src` (CIDR, IPv4 or IPv6), `out`\n\
         (interface name), `ns` (Ns, Process or pid; default the shell's netns), `table` (name,\n\
         default unique), `keep` (leave it after the recipe ends). Returns #{ table, family }.\n\
         Example:\n    masquerade(#{ src: \"10.1.0.0/24\", out: \"uplink\", ns: router });",
        masquerade,
    );
}
