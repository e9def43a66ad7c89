//! Links over rtnetlink: dump, look up, create (veth, bridge, macvlan, vxlan), change
//! (up/down, mtu, mac, name, master, netns) and delete.
//!
//! A veth's peer is created directly in its namespace (IFLA_NET_NS_FD on the peer), never
//! created here and moved: a move costs about 20 ms of kernel time.

use std::net::IpAddr;
use std::os::fd::AsRawFd;
use std::rc::Rc;

use netlink_packet_core::{NLM_F_CREATE, NLM_F_DUMP, NLM_F_EXCL};
use netlink_packet_route::link::{
    InfoData, InfoKind, InfoMacVlan, InfoVeth, InfoVxlan, LinkAttribute, LinkFlags, LinkInfo,
    LinkLayerType, LinkMessage, MacVlanMode,
};
use netlink_packet_route::RouteNetlinkMessage;
use nix::errno::Errno;

use super::super::error::{Result, SysError};
use super::super::ns::NsFd;
use super::socket::{self, ns_name, Failure};

/// What the kernel says about one link.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkState {
    pub index: u32,
    pub name: String,
    /// "veth", "bridge", "macvlan", "vxlan" ...; "loopback" for lo, "device" for links
    /// without a kind (physical devices).
    pub kind: String,
    pub mac: Option<String>,
    pub mtu: u32,
    /// Administratively up (IFF_UP).
    pub up: bool,
    /// Carrier and operational state up (IFF_LOWER_UP).
    pub lower_up: bool,
    /// The index of the bridge (or other master) it is enslaved to.
    pub master: Option<u32>,
    /// The index of the link it sits on (veth peer, macvlan parent, vxlan dev); the peer
    /// of a veth may be in another namespace (`link_netnsid` is then set).
    pub link: Option<u32>,
    pub link_netnsid: Option<i32>,
}

fn parse(m: &LinkMessage) -> LinkState {
    let mut s = LinkState {
        index: m.header.index,
        name: String::new(),
        kind: String::new(),
        mac: None,
        mtu: 0,
        up: m.header.flags.contains(LinkFlags::Up),
        lower_up: m.header.flags.contains(LinkFlags::LowerUp),
        master: None,
        link: None,
        link_netnsid: None,
    };
    for a in &m.attributes {
        match a {
            LinkAttribute::IfName(n) => s.name = n.clone(),
            LinkAttribute::Mtu(n) => s.mtu = *n,
            LinkAttribute::Address(b) => s.mac = Some(super::super::netaddr::mac_string(b)),
            LinkAttribute::Controller(i) => s.master = Some(*i),
            LinkAttribute::Link(i) => s.link = Some(*i),
            LinkAttribute::LinkNetNsId(i) => s.link_netnsid = Some(*i),
            LinkAttribute::LinkInfo(infos) => {
                for i in infos {
                    if let LinkInfo::Kind(k) = i {
                        s.kind = k.to_string();
                    }
                }
            }
            _ => {}
        }
    }
    if s.kind.is_empty() {
        s.kind = if m.header.link_layer_type == LinkLayerType::Loopback {
            "loopback".into()
        } else {
            "device".into()
        };
    }
    s
}

fn only_link(op: &str, what: &str, replies: Vec<RouteNetlinkMessage>) -> Result<LinkState> {
    replies
        .into_iter()
        .find_map(|m| match m {
            RouteNetlinkMessage::NewLink(l) => Some(parse(&l)),
            _ => None,
        })
        .ok_or_else(|| SysError::protocol(op, "the kernel sent no link").name(what))
}

/// Every link of namespace `ns`, in index order.
pub fn dump(ns: &Rc<NsFd>) -> Result<Vec<LinkState>> {
    let replies = socket::with(ns, |s| {
        s.request(
            RouteNetlinkMessage::GetLink(LinkMessage::default()),
            NLM_F_DUMP,
        )
    })
    .map_err(|e| e.into_sys("links", &ns_name(ns)))?;
    let mut out: Vec<LinkState> = replies
        .into_iter()
        .filter_map(|m| match m {
            RouteNetlinkMessage::NewLink(l) => Some(parse(&l)),
            _ => None,
        })
        .collect();
    out.sort_by_key(|l| l.index);
    Ok(out)
}

/// The link called `name` in `ns`; ENODEV when there is none.
pub fn by_name(ns: &Rc<NsFd>, name: &str) -> Result<LinkState> {
    let mut m = LinkMessage::default();
    m.attributes.push(LinkAttribute::IfName(name.to_string()));
    let replies = socket::with(ns, |s| s.request(RouteNetlinkMessage::GetLink(m), 0))
        .map_err(|e| not_found(e, "link", name, ns))?;
    only_link("link", name, replies)
}

/// The link with index `index` in `ns`; ENODEV when there is none.
pub fn by_index(ns: &Rc<NsFd>, index: u32, name: &str) -> Result<LinkState> {
    let mut m = LinkMessage::default();
    m.header.index = index;
    let replies = socket::with(ns, |s| s.request(RouteNetlinkMessage::GetLink(m), 0))
        .map_err(|e| not_found(e, "link", name, ns))?;
    only_link("link", name, replies)
}

fn not_found(e: Failure, op: &str, name: &str, ns: &NsFd) -> SysError {
    let gone = e.errno() == Some(Errno::ENODEV);
    let err = e.into_sys(op, name);
    if gone {
        err.detail(format!("no interface {name:?} in {}", ns_name(ns)))
    } else {
        err
    }
}

/// The kind-specific part of a new link.
#[derive(Debug, Clone)]
pub enum Kind<'a> {
    /// A veth pair: the peer's name and namespace (None = the same as the link's).
    Veth {
        peer: &'a str,
        peer_ns: Option<&'a NsFd>,
        peer_mtu: Option<u32>,
    },
    Bridge,
    /// A macvlan on link `parent` of the namespace the request is sent in.
    MacVlan {
        parent: u32,
        mode: MacVlanMode,
    },
    Vxlan(Vxlan),
}

/// Vxlan settings; addresses of one family.
#[derive(Debug, Clone, Default)]
pub struct Vxlan {
    pub vni: u32,
    pub local: Option<IpAddr>,
    pub remote: Option<IpAddr>,
    pub group: Option<IpAddr>,
    pub port: u16,
    pub dev: Option<u32>,
}

/// A link to create: its name, kind and optional mtu/mac; `into` creates it directly in
/// another namespace than the one the request is sent in (for a macvlan whose parent is
/// here but which should live elsewhere).
#[derive(Debug, Clone)]
pub struct NewLink<'a> {
    pub name: &'a str,
    pub kind: Kind<'a>,
    pub mtu: Option<u32>,
    pub mac: Option<[u8; 6]>,
    pub into: Option<&'a NsFd>,
}

/// Create a link by a request sent in namespace `ns` (NLM_F_EXCL: an existing name is
/// EEXIST, never reused).
pub fn create(ns: &Rc<NsFd>, l: &NewLink) -> std::result::Result<(), Failure> {
    let mut m = LinkMessage::default();
    m.attributes.push(LinkAttribute::IfName(l.name.to_string()));
    if let Some(mtu) = l.mtu {
        m.attributes.push(LinkAttribute::Mtu(mtu));
    }
    if let Some(mac) = l.mac {
        m.attributes.push(LinkAttribute::Address(mac.to_vec()));
    }
    if let Some(into) = l.into {
        if into.inode != ns.inode {
            m.attributes.push(LinkAttribute::NetNsFd(into.as_raw_fd()));
        }
    }
    let mut info = Vec::new();
    match &l.kind {
        Kind::Veth {
            peer,
            peer_ns,
            peer_mtu,
        } => {
            let mut p = LinkMessage::default();
            p.attributes.push(LinkAttribute::IfName(peer.to_string()));
            if let Some(mtu) = peer_mtu.or(l.mtu) {
                p.attributes.push(LinkAttribute::Mtu(mtu));
            }
            if let Some(pn) = peer_ns {
                if pn.inode != ns.inode {
                    p.attributes.push(LinkAttribute::NetNsFd(pn.as_raw_fd()));
                }
            }
            info.push(LinkInfo::Kind(InfoKind::Veth));
            info.push(LinkInfo::Data(InfoData::Veth(InfoVeth::Peer(p))));
        }
        Kind::Bridge => info.push(LinkInfo::Kind(InfoKind::Bridge)),
        Kind::MacVlan { parent, mode } => {
            m.attributes.push(LinkAttribute::Link(*parent));
            info.push(LinkInfo::Kind(InfoKind::MacVlan));
            info.push(LinkInfo::Data(InfoData::MacVlan(vec![InfoMacVlan::Mode(
                *mode,
            )])));
        }
        Kind::Vxlan(v) => {
            let mut d = vec![InfoVxlan::Id(v.vni), InfoVxlan::Port(v.port)];
            for (addr, local) in [(v.local, true), (v.remote, false), (v.group, false)] {
                match (addr, local) {
                    (Some(IpAddr::V4(a)), true) => d.push(InfoVxlan::Local(a)),
                    (Some(IpAddr::V6(a)), true) => d.push(InfoVxlan::Local6(a)),
                    (Some(IpAddr::V4(a)), false) => d.push(InfoVxlan::Group(a)),
                    (Some(IpAddr::V6(a)), false) => d.push(InfoVxlan::Group6(a)),
                    (None, _) => {}
                }
            }
            if let Some(dev) = v.dev {
                d.push(InfoVxlan::Link(dev));
            }
            info.push(LinkInfo::Kind(InfoKind::Vxlan));
            info.push(LinkInfo::Data(InfoData::Vxlan(d)));
        }
    }
    m.attributes.push(LinkAttribute::LinkInfo(info));
    socket::with(ns, |s| {
        s.ack(RouteNetlinkMessage::NewLink(m), NLM_F_CREATE | NLM_F_EXCL)
    })
}

/// A change to an existing link.
#[derive(Debug, Clone)]
pub enum Change<'a> {
    Up(bool),
    Mtu(u32),
    Mac([u8; 6]),
    Name(&'a str),
    /// Enslave to the bridge with this index (0 = release from its master).
    Master(u32),
    /// Move into another namespace.
    Netns(&'a NsFd),
}

/// Apply one change to link `index` of `ns`.
pub fn set(ns: &Rc<NsFd>, index: u32, change: &Change) -> std::result::Result<(), Failure> {
    let mut m = LinkMessage::default();
    m.header.index = index;
    match change {
        Change::Up(up) => {
            m.header.change_mask = LinkFlags::Up;
            if *up {
                m.header.flags = LinkFlags::Up;
            }
        }
        Change::Mtu(n) => m.attributes.push(LinkAttribute::Mtu(*n)),
        Change::Mac(mac) => m.attributes.push(LinkAttribute::Address(mac.to_vec())),
        Change::Name(n) => m.attributes.push(LinkAttribute::IfName(n.to_string())),
        Change::Master(i) => m.attributes.push(LinkAttribute::Controller(*i)),
        Change::Netns(to) => m.attributes.push(LinkAttribute::NetNsFd(to.as_raw_fd())),
    }
    socket::with(ns, |s| s.ack(RouteNetlinkMessage::SetLink(m), 0))
}

/// Delete link `index` of `ns` (a veth takes its peer with it).
pub fn delete(ns: &Rc<NsFd>, index: u32) -> std::result::Result<(), Failure> {
    let mut m = LinkMessage::default();
    m.header.index = index;
    socket::with(ns, |s| s.ack(RouteNetlinkMessage::DelLink(m), 0))
}

/// Delete the link called `name` in `ns` (for undoing a create whose result was not found).
pub fn delete_named(ns: &Rc<NsFd>, name: &str) -> std::result::Result<(), Failure> {
    let mut m = LinkMessage::default();
    m.attributes.push(LinkAttribute::IfName(name.to_string()));
    socket::with(ns, |s| s.ack(RouteNetlinkMessage::DelLink(m), 0))
}
