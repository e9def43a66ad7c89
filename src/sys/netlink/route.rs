//! Routes over rtnetlink: add, delete, dump (IPv4 and IPv6, main table by default).

use std::net::IpAddr;
use std::rc::Rc;

use netlink_packet_core::{NLM_F_CREATE, NLM_F_DUMP, NLM_F_EXCL};
use netlink_packet_route::route::{
    RouteAddress, RouteAttribute, RouteHeader, RouteMessage, RouteProtocol, RouteScope, RouteType,
};
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};

use super::super::error::Result;
use super::super::netaddr::Cidr;
use super::super::ns::NsFd;
use super::socket::{self, ns_name, Failure};

pub const TABLE_MAIN: u32 = 254;

/// IPv4 or IPv6.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    V4,
    V6,
}

impl Family {
    pub fn of(ip: &IpAddr) -> Family {
        if ip.is_ipv4() {
            Family::V4
        } else {
            Family::V6
        }
    }
    pub fn name(self) -> &'static str {
        match self {
            Family::V4 => "inet",
            Family::V6 => "inet6",
        }
    }
    fn af(self) -> AddressFamily {
        match self {
            Family::V4 => AddressFamily::Inet,
            Family::V6 => AddressFamily::Inet6,
        }
    }
}

/// A route to add or delete, or one the kernel reported.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    pub family: Family,
    /// None: the default route.
    pub dst: Option<Cidr>,
    pub via: Option<IpAddr>,
    /// Output interface index.
    pub dev: Option<u32>,
    pub metric: Option<u32>,
    pub table: u32,
    /// Filled in by dumps: "kernel", "boot", "static" ...
    pub protocol: String,
    /// Filled in by dumps: "global", "link", "host".
    pub scope: String,
    /// Filled in by dumps: "unicast", "local", "broadcast" ...
    pub kind: String,
    /// Preferred source address (dumps).
    pub src: Option<IpAddr>,
}

impl Route {
    pub fn new(family: Family) -> Route {
        Route {
            family,
            dst: None,
            via: None,
            dev: None,
            metric: None,
            table: TABLE_MAIN,
            protocol: String::new(),
            scope: String::new(),
            kind: String::new(),
            src: None,
        }
    }

    /// "default" or the prefix.
    pub fn dst_string(&self) -> String {
        match &self.dst {
            None => "default".into(),
            Some(c) => c.to_string(),
        }
    }
}

fn raddr(ip: IpAddr) -> RouteAddress {
    match ip {
        IpAddr::V4(a) => RouteAddress::Inet(a),
        IpAddr::V6(a) => RouteAddress::Inet6(a),
    }
}

fn ip_of(a: &RouteAddress) -> Option<IpAddr> {
    match a {
        RouteAddress::Inet(a) => Some(IpAddr::V4(*a)),
        RouteAddress::Inet6(a) => Some(IpAddr::V6(*a)),
        _ => None,
    }
}

fn message(r: &Route, adding: bool) -> RouteMessage {
    let mut m = RouteMessage::default();
    m.header = RouteHeader {
        address_family: r.family.af(),
        destination_prefix_length: r.dst.map_or(0, |c| c.len),
        table: if r.table < 256 { r.table as u8 } else { 252 },
        // As `ip route add`: protocol boot, scope link for a route without a gateway.
        // Deleting matches any protocol and scope.
        protocol: if adding {
            RouteProtocol::Boot
        } else {
            RouteProtocol::Unspec
        },
        scope: if !adding {
            RouteScope::NoWhere
        } else if r.via.is_none() {
            RouteScope::Link
        } else {
            RouteScope::Universe
        },
        kind: if adding {
            RouteType::Unicast
        } else {
            RouteType::Unspec
        },
        ..RouteHeader::default()
    };
    if r.table >= 256 {
        m.attributes.push(RouteAttribute::Table(r.table));
    }
    if let Some(c) = &r.dst {
        m.attributes
            .push(RouteAttribute::Destination(raddr(c.addr)));
    }
    if let Some(gw) = r.via {
        m.attributes.push(RouteAttribute::Gateway(raddr(gw)));
    }
    if let Some(dev) = r.dev {
        m.attributes.push(RouteAttribute::Oif(dev));
    }
    if let Some(metric) = r.metric {
        m.attributes.push(RouteAttribute::Priority(metric));
    }
    m
}

/// Add route `r` in `ns` (NLM_F_EXCL: an existing identical route is EEXIST).
pub fn add(ns: &Rc<NsFd>, r: &Route) -> std::result::Result<(), Failure> {
    let m = message(r, true);
    socket::with(ns, |s| {
        s.ack(RouteNetlinkMessage::NewRoute(m), NLM_F_CREATE | NLM_F_EXCL)
    })
}

/// Delete route `r` in `ns` (unset fields match anything).
pub fn del(ns: &Rc<NsFd>, r: &Route) -> std::result::Result<(), Failure> {
    let m = message(r, false);
    socket::with(ns, |s| s.ack(RouteNetlinkMessage::DelRoute(m), 0))
}

/// The routes of `ns` of `family` (both when None) in table `table` (None = every table).
pub fn dump(ns: &Rc<NsFd>, family: Option<Family>, table: Option<u32>) -> Result<Vec<Route>> {
    let mut q = RouteMessage::default();
    q.header.address_family = family.map_or(AddressFamily::Unspec, Family::af);
    let replies = socket::with(ns, |s| {
        s.request(RouteNetlinkMessage::GetRoute(q), NLM_F_DUMP)
    })
    .map_err(|e| e.into_sys("routes", &ns_name(ns)))?;
    let mut out = Vec::new();
    for reply in replies {
        let RouteNetlinkMessage::NewRoute(m) = reply else {
            continue;
        };
        let fam = match m.header.address_family {
            AddressFamily::Inet => Family::V4,
            AddressFamily::Inet6 => Family::V6,
            _ => continue,
        };
        if family.is_some_and(|f| f != fam) {
            continue;
        }
        let mut r = Route::new(fam);
        r.table = u32::from(m.header.table);
        let mut dst = None;
        for a in &m.attributes {
            match a {
                RouteAttribute::Destination(d) => dst = ip_of(d),
                RouteAttribute::Gateway(g) => r.via = ip_of(g),
                RouteAttribute::Oif(i) => r.dev = Some(*i),
                RouteAttribute::Priority(p) => r.metric = Some(*p),
                RouteAttribute::Table(t) => r.table = *t,
                RouteAttribute::PrefSource(s) => r.src = ip_of(s),
                _ => {}
            }
        }
        if table.is_some_and(|t| t != r.table) {
            continue;
        }
        let plen = m.header.destination_prefix_length;
        r.dst = match dst {
            Some(addr) => Some(Cidr { addr, len: plen }),
            None if plen == 0 => None,
            None => continue,
        };
        r.protocol = match m.header.protocol {
            RouteProtocol::Kernel => "kernel".into(),
            RouteProtocol::Boot => "boot".into(),
            RouteProtocol::Static => "static".into(),
            RouteProtocol::Ra => "ra".into(),
            RouteProtocol::Dhcp => "dhcp".into(),
            RouteProtocol::Unspec => "unspec".into(),
            other => u8::from(other).to_string(),
        };
        r.scope = match m.header.scope {
            RouteScope::Universe => "global".into(),
            RouteScope::Site => "site".into(),
            RouteScope::Link => "link".into(),
            RouteScope::Host => "host".into(),
            RouteScope::NoWhere => "nowhere".into(),
            other => u8::from(other).to_string(),
        };
        r.kind = match m.header.kind {
            RouteType::Unicast => "unicast".into(),
            RouteType::Local => "local".into(),
            RouteType::Broadcast => "broadcast".into(),
            RouteType::Anycast => "anycast".into(),
            RouteType::Multicast => "multicast".into(),
            RouteType::BlackHole => "blackhole".into(),
            RouteType::Unreachable => "unreachable".into(),
            RouteType::Prohibit => "prohibit".into(),
            other => u8::from(other).to_string(),
        };
        out.push(r);
    }
    Ok(out)
}
