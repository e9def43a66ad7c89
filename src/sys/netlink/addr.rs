//! Interface addresses over rtnetlink: add, delete, dump (IPv4 and IPv6).

use std::net::IpAddr;
use std::rc::Rc;

use netlink_packet_core::{NLM_F_CREATE, NLM_F_DUMP, NLM_F_EXCL};
use netlink_packet_route::address::{
    AddressAttribute, AddressFlags, AddressHeaderFlags, AddressMessage, AddressScope,
};
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};

use super::super::error::Result;
use super::super::netaddr::Cidr;
use super::super::ns::NsFd;
use super::socket::{self, ns_name, Failure};

/// One address of a link, as the kernel reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AddrState {
    pub index: u32,
    pub cidr: Cidr,
    /// "global", "link", "host" ...
    pub scope: &'static str,
    /// Duplicate address detection still running (IPv6).
    pub tentative: bool,
}

fn message(index: u32, c: &Cidr) -> AddressMessage {
    let mut m = AddressMessage::default();
    m.header.family = if c.is_v4() {
        AddressFamily::Inet
    } else {
        AddressFamily::Inet6
    };
    m.header.prefix_len = c.len;
    m.header.index = index;
    // As ip(8) does: IFA_LOCAL is the address; IFA_ADDRESS the same (no peer).
    m.attributes.push(AddressAttribute::Local(c.addr));
    m.attributes.push(AddressAttribute::Address(c.addr));
    m
}

/// Add `c` to link `index` of `ns`; `nodad` skips IPv6 duplicate address detection so the
/// address is usable at once.
pub fn add(ns: &Rc<NsFd>, index: u32, c: &Cidr, nodad: bool) -> std::result::Result<(), Failure> {
    let mut m = message(index, c);
    if nodad {
        m.header.flags = AddressHeaderFlags::Nodad;
        m.attributes
            .push(AddressAttribute::Flags(AddressFlags::Nodad));
    }
    socket::with(ns, |s| {
        s.ack(
            RouteNetlinkMessage::NewAddress(m),
            NLM_F_CREATE | NLM_F_EXCL,
        )
    })
}

/// Remove `c` from link `index` of `ns`.
pub fn del(ns: &Rc<NsFd>, index: u32, c: &Cidr) -> std::result::Result<(), Failure> {
    let m = message(index, c);
    socket::with(ns, |s| s.ack(RouteNetlinkMessage::DelAddress(m), 0))
}

/// Every address in `ns`, or those of link `index` only.
pub fn dump(ns: &Rc<NsFd>, index: Option<u32>) -> Result<Vec<AddrState>> {
    let replies = socket::with(ns, |s| {
        s.request(
            RouteNetlinkMessage::GetAddress(AddressMessage::default()),
            NLM_F_DUMP,
        )
    })
    .map_err(|e| e.into_sys("addrs", &ns_name(ns)))?;
    let mut out = Vec::new();
    for r in replies {
        let RouteNetlinkMessage::NewAddress(m) = r else {
            continue;
        };
        if index.is_some_and(|i| i != m.header.index) {
            continue;
        }
        let mut local = None;
        let mut address = None;
        let mut flags = AddressFlags::from_bits_retain(u32::from(m.header.flags.bits()));
        for a in &m.attributes {
            match a {
                AddressAttribute::Local(ip) => local = Some(*ip),
                AddressAttribute::Address(ip) => address = Some(*ip),
                AddressAttribute::Flags(f) => flags = *f,
                _ => {}
            }
        }
        let Some(addr): Option<IpAddr> = local.or(address) else {
            continue;
        };
        out.push(AddrState {
            index: m.header.index,
            cidr: Cidr {
                addr,
                len: m.header.prefix_len,
            },
            scope: match m.header.scope {
                AddressScope::Universe => "global",
                AddressScope::Site => "site",
                AddressScope::Link => "link",
                AddressScope::Host => "host",
                _ => "other",
            },
            tentative: flags.contains(AddressFlags::Tentative),
        });
    }
    Ok(out)
}
