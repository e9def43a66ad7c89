//! Routes: route_add, route_del, routes.

use std::rc::Rc;

use nix::errno::Errno;
use rhai::{Array, Dynamic, Map};

use super::super::api::Api;
use super::super::error::{arg_err, script_type, sys_err, IntoScript, RResult};
use super::super::opts::Opts;
use super::link::Link;
use super::{nl_sys, ns_opt, own, u32_arg};
use crate::sys::netaddr;
use crate::sys::netlink::route::{self as nl, Family, Route, TABLE_MAIN};
use crate::sys::netlink::{link as nllink, ns_name, Failure};
use crate::sys::ns::NsFd;

const KEYS: &[&str] = &[
    "dst", "via", "dev", "metric", "table", "family", "ns", "keep",
];

fn family_arg(op: &str, s: &str) -> RResult<Family> {
    match s {
        "inet" | "ipv4" | "4" => Ok(Family::V4),
        "inet6" | "ipv6" | "6" => Ok(Family::V6),
        other => Err(arg_err(
            op,
            "family",
            format!("unknown family {other:?}; families are \"inet\" (ipv4) and \"inet6\" (ipv6)"),
        )),
    }
}

/// The table option: "main" (default), "local", or a number; "all" only when listing.
fn table_arg(o: &Opts, all_ok: bool) -> RResult<Option<u32>> {
    match o.get("table") {
        None => Ok(Some(TABLE_MAIN)),
        Some(v) => {
            if let Ok(n) = v.as_int() {
                return match u32_arg(o.op, "table", n)? {
                    0 => Err(arg_err(o.op, "table", "table 0 is not a routing table")),
                    t => Ok(Some(t)),
                };
            }
            match v.clone().into_string().as_deref() {
                Ok("main") => Ok(Some(TABLE_MAIN)),
                Ok("local") => Ok(Some(255)),
                Ok("all") if all_ok => Ok(None),
                _ => Err(arg_err(
                    o.op,
                    "table",
                    format!(
                        "expected a table number, \"main\" or \"local\"{}",
                        if all_ok { " or \"all\"" } else { "" }
                    ),
                )),
            }
        }
    }
}

/// Read a route description from options (for add and delete).
fn route_from(o: &Opts, ns: &Rc<NsFd>, need_target: bool) -> RResult<(Route, String)> {
    let dst_s = o.req_str("dst")?;
    let dst = netaddr::prefix(o.op, "dst", &dst_s).script()?;
    let via = match o.str("via")? {
        None => None,
        Some(s) => Some(netaddr::ip(o.op, "via", &s).script()?),
    };
    let fam_opt = match o.str("family")? {
        None => None,
        Some(s) => Some(family_arg(o.op, &s)?),
    };
    let family = dst
        .map(|c| Family::of(&c.addr))
        .or(via.as_ref().map(Family::of))
        .or(fam_opt)
        .unwrap_or(Family::V4);
    let ip = |f: Family| if f == Family::V4 { "IPv4" } else { "IPv6" };
    for (arg, f) in [("via", via.as_ref().map(Family::of)), ("family", fam_opt)] {
        if let Some(f) = f.filter(|f| *f != family) {
            let what = match (arg, via) {
                ("via", Some(v)) => format!("via {v} is {}", ip(f)),
                _ => format!("family {} is {}", f.name(), ip(f)),
            };
            return Err(arg_err(
                o.op,
                arg,
                format!("{dst_s} is an {} route but {what}", ip(family)),
            ));
        }
    }
    let mut r = Route::new(family);
    r.dst = dst;
    r.via = via;
    let mut shown = dst_s.clone();
    if let Some(v) = via {
        shown.push_str(&format!(" via {v}"));
    }
    if let Some(v) = o.get("dev") {
        let l = if let Some(l) = v.read_lock::<Link>() {
            l.clone()
        } else {
            let name = v.clone().into_string().map_err(|t| {
                arg_err(
                    o.op,
                    "dev",
                    format!(
                        "expected a Link or an interface name, got {}",
                        script_type(t)
                    ),
                )
            })?;
            netaddr::ifname(o.op, "dev", &name).script()?;
            let s = nllink::by_name(ns, &name).map_err(|mut e| {
                e.op = o.op.to_string();
                sys_err(e)
            })?;
            Link::from_state(ns.clone(), s)
        };
        let d = l.0.borrow();
        if d.ns.inode != ns.inode {
            return Err(arg_err(
                o.op,
                "dev",
                format!(
                    "{} is in {}, the route in {}",
                    d.name,
                    ns_name(&d.ns),
                    ns_name(ns)
                ),
            ));
        }
        r.dev = Some(d.index);
        shown.push_str(&format!(" dev {}", d.name));
    }
    if need_target && r.via.is_none() && r.dev.is_none() {
        return Err(arg_err(
            o.op,
            "via",
            "give a gateway (via) or an interface (dev)",
        ));
    }
    if let Some(m) = o.int("metric")? {
        r.metric = Some(u32_arg(o.op, "metric", m)?);
        shown.push_str(&format!(" metric {m}"));
    }
    r.table = table_arg(o, false)?.unwrap_or(TABLE_MAIN);
    Ok((r, shown))
}

fn route_err(f: Failure, op: &str, shown: &str, ns: &NsFd) -> Box<rhai::EvalAltResult> {
    let errno = f.errno();
    let e = nl_sys(f, op, shown, format!("in {}", ns_name(ns)));
    sys_err(match errno {
        Some(Errno::EEXIST) => e.hint("that route exists already"),
        Some(Errno::ENETUNREACH) => e.hint("no link reaches the gateway: give a link an address on its subnet and bring it up first"),
        Some(Errno::ESRCH) => e.hint("there is no such route (see routes())"),
        _ => e,
    })
}

fn route_add(opts: Map) -> RResult<()> {
    let o = Opts::new("route_add", opts, KEYS)?;
    let ns = ns_opt(&o, "ns")?;
    let keep = o.bool("keep", false)?;
    let (r, shown) = route_from(&o, &ns, true)?;
    nl::add(&ns, &r).map_err(|f| route_err(f, "route_add", &shown, &ns))?;
    if !keep {
        own::route(ns, r, shown);
    }
    Ok(())
}

fn route_del(opts: Map) -> RResult<()> {
    let o = Opts::new("route_del", opts, KEYS)?;
    let ns = ns_opt(&o, "ns")?;
    let (r, shown) = route_from(&o, &ns, false)?;
    nl::del(&ns, &r).map_err(|f| route_err(f, "route_del", &shown, &ns))?;
    own::route_removed(&ns, &r);
    Ok(())
}

fn routes(opts: Map) -> RResult<Array> {
    let o = Opts::new("routes", opts, &["ns", "family", "table"])?;
    let ns = ns_opt(&o, "ns")?;
    let family = match o.str("family")? {
        None => None,
        Some(s) => Some(family_arg("routes", &s)?),
    };
    let table = table_arg(&o, true)?;
    let list = nl::dump(&ns, family, table).script()?;
    let names: Vec<(u32, String)> = nllink::dump(&ns)
        .script()?
        .into_iter()
        .map(|l| (l.index, l.name))
        .collect();
    Ok(list
        .into_iter()
        .map(|r| {
            let mut m = Map::new();
            m.insert("dst".into(), r.dst_string().into());
            m.insert("family".into(), r.family.name().into());
            let opt_ip =
                |ip: Option<std::net::IpAddr>| ip.map_or(Dynamic::UNIT, |a| a.to_string().into());
            m.insert("via".into(), opt_ip(r.via));
            m.insert("src".into(), opt_ip(r.src));
            let dev = r
                .dev
                .and_then(|i| names.iter().find(|(n, _)| *n == i))
                .map_or(Dynamic::UNIT, |(_, name)| name.clone().into());
            m.insert("dev".into(), dev);
            m.insert(
                "metric".into(),
                r.metric
                    .map_or(Dynamic::UNIT, |v| Dynamic::from(i64::from(v))),
            );
            m.insert("table".into(), Dynamic::from(i64::from(r.table)));
            m.insert("protocol".into(), r.protocol.into());
            m.insert("scope".into(), r.scope.into());
            m.insert("type".into(), r.kind.into());
            Dynamic::from(m)
        })
        .collect())
}

pub fn register(api: &mut Api) {
    api.func(
        "route_add",
        "route_add(opts: map)",
        "Add a route. Options: `dst` (\"default\", a prefix like \"10.2.0.0/24\" or a host address;\n\
         IPv4 or IPv6), `via` (gateway), `dev` (a Link or an interface name), `metric`, `table`\n\
         (number, \"main\" or \"local\"), `family` (for a default route with only a dev), `ns`, `keep`.\n\
         The route is removed when the recipe ends unless `keep: true` (or its namespace goes).\n\
         Example:\n    route_add(#{ dst: \"default\", via: \"10.0.0.1\", ns: ctr });",
        route_add,
    );
    api.func(
        "route_del",
        "route_del(opts: map)",
        "Delete a route; the same options as route_add: dst is required, the other fields\n\
         left out match any route to dst.\n\
         Example:\n    route_del(#{ dst: \"10.2.0.0/24\", ns: r });",
        route_del,
    );
    api.func(
        "routes",
        "routes(opts: map) -> array",
        "The routes of a namespace as maps #{ dst, via, dev, metric, family, table, protocol,\n\
         scope, type, src }. Options: `ns`, `family` (\"inet\" or \"inet6\"; default both), `table`\n\
         (default \"main\", as `ip route`; \"all\" for every table).\n\
         Example:\n    for r in routes(#{ ns: ctr, family: \"inet\" }) { print(`${r.dst} via ${r.via}`); }",
        routes,
    );
    api.func(
        "routes",
        "routes() -> array",
        "The main-table routes of the shell's network namespace, IPv4 and IPv6.\nExample:\n    print(routes());",
        || routes(Map::new()),
    );
}
