//! The `Link` handle and the functions that find or create links: links, link, veth,
//! bridge, macvlan, vxlan.

use std::cell::RefCell;
use std::net::IpAddr;
use std::rc::Rc;

use netlink_packet_route::link::MacVlanMode;
use nix::errno::Errno;
use rhai::{Array, Dynamic, Map};

use super::super::api::Api;
use super::super::cleanup::{self, OwnId};
use super::super::error::{arg_err, type_of, IntoScript, RResult};
use super::super::ns::Ns;
use super::super::opts::Opts;
use super::{nl_err, ns_opt, ns_val, own, u32_arg};
use crate::sys::netaddr::{self, Cidr};
use crate::sys::netlink::link::{self as nl, Change, Kind, LinkState, NewLink, Vxlan};
use crate::sys::netlink::{addr as nladdr, ns_name, Failure};
use crate::sys::ns::NsFd;

/// What the shell knows about a link: where it lives (the handle keeps that namespace
/// alive), its index there, and whether the recipe owns it.
pub struct LinkData {
    pub ns: Rc<NsFd>,
    pub index: u32,
    pub name: String,
    pub kind: String,
    /// The recipe created it and tears it down at the end (shared by both ends of a veth).
    pub own: Option<OwnId>,
    /// The recipe created it (also when kept): its addresses live and die with it.
    pub created: bool,
    /// The other end, for a veth pair the recipe created (deleting one deletes both).
    pub peer: Option<std::rc::Weak<RefCell<LinkData>>>,
    /// Deleted through this handle (or its peer's).
    pub gone: bool,
    /// Where the recipe's registration of an owned link looks for it (it holds no
    /// namespace open): kept up to date when the link moves or is renamed.
    pub spot: Option<Rc<RefCell<own::Spot>>>,
}

/// A network interface in some network namespace.
#[derive(Clone)]
pub struct Link(pub Rc<RefCell<LinkData>>);

impl Link {
    pub(super) fn from_state(ns: Rc<NsFd>, s: LinkState) -> Link {
        Link(Rc::new(RefCell::new(LinkData {
            ns,
            index: s.index,
            name: s.name,
            kind: s.kind,
            own: None,
            created: false,
            peer: None,
            gone: false,
            spot: None,
        })))
    }

    fn ns(&self) -> Rc<NsFd> {
        self.0.borrow().ns.clone()
    }
    fn index(&self) -> u32 {
        self.0.borrow().index
    }
    fn name(&self) -> String {
        self.0.borrow().name.clone()
    }
    /// "h0 in net:[4026532]", for error details.
    fn where_(&self) -> String {
        let d = self.0.borrow();
        format!("{} in {}", d.name, ns_name(&d.ns))
    }

    /// The kernel's current view of the link.
    fn state(&self, op: &str) -> RResult<LinkState> {
        let (ns, index, name) = {
            let d = self.0.borrow();
            (d.ns.clone(), d.index, d.name.clone())
        };
        nl::by_index(&ns, index, &name).map_err(|mut e| {
            e.op = op.to_string();
            if e.errno() == Some(Errno::ENODEV) {
                e.detail = Some(format!("link {name} is gone from {}", ns_name(&ns)));
            }
            super::super::error::sys_err(e)
        })
    }

    /// Apply a change, naming the link and its namespace on failure.
    fn change(&self, op: &str, c: &Change) -> RResult<()> {
        let (ns, index) = (self.ns(), self.index());
        nl::set(&ns, index, c).map_err(|f| {
            let what = self.where_();
            let ctx = match (&f, c) {
                (Failure::Nack(n), Change::Name(to)) if n.errno == Errno::EEXIST => {
                    format!("{what}: an interface named {to} exists already there")
                }
                (Failure::Nack(n), Change::Netns(to)) if n.errno == Errno::EEXIST => format!(
                    "{what}: an interface named {} exists already in {}",
                    self.name(),
                    ns_name(to)
                ),
                _ => what,
            };
            nl_err(f, op, &self.name(), ctx)
        })
    }

    fn show(&self) -> String {
        let d = self.0.borrow();
        if d.gone {
            return format!("Link({} #{} {}, deleted)", d.name, d.index, d.kind);
        }
        match nl::by_index(&d.ns, d.index, &d.name) {
            Ok(s) => format!(
                "Link({} #{} {} {} mtu {} in {})",
                s.name,
                s.index,
                s.kind,
                if s.up { "up" } else { "down" },
                s.mtu,
                ns_name(&d.ns)
            ),
            Err(_) => format!(
                "Link({} #{} {}, gone from {})",
                d.name,
                d.index,
                d.kind,
                ns_name(&d.ns)
            ),
        }
    }

    /// Delete the link now (a recipe-owned one is disowned first; a veth takes its peer).
    pub fn delete(&self) -> RResult<()> {
        let (ns, index, own, gone) = {
            let d = self.0.borrow();
            (d.ns.clone(), d.index, d.own, d.gone)
        };
        if gone {
            return Ok(());
        }
        if let Some(id) = own {
            cleanup::disown(id);
        }
        match nl::delete(&ns, index) {
            Ok(()) => {}
            Err(f) if f.errno() == Some(Errno::ENODEV) => {}
            Err(f) => return Err(nl_err(f, "delete", &self.name(), self.where_())),
        }
        mark_gone(&self.0);
        Ok(())
    }
}

/// Mark a link and its veth peer deleted.
pub fn mark_gone(d: &Rc<RefCell<LinkData>>) {
    let peer = {
        let mut d = d.borrow_mut();
        d.gone = true;
        d.peer.as_ref().and_then(|w| w.upgrade())
    };
    if let Some(p) = peer {
        p.borrow_mut().gone = true;
    }
}

fn check_name(op: &str, arg: &str, name: &str) -> RResult<()> {
    netaddr::ifname(op, arg, name).script()
}

/// check_cidr for recipe libraries: `v` as add_addr (or, with `prefix`, route_add's dst)
/// takes it, the error naming op(arg); its family.
fn check_cidr(op: &str, arg: &str, v: &Dynamic, prefix: bool) -> RResult<String> {
    let like = if prefix {
        "\"10.0.0.0/24\""
    } else {
        "\"10.0.0.2/24\""
    };
    let s = v.clone().into_string().map_err(|_| {
        arg_err(
            op,
            arg,
            format!("expected a CIDR like {like}, got {}", type_of(v)),
        )
    })?;
    let c = if prefix {
        match netaddr::prefix(op, arg, &s).script()? {
            Some(c) => c,
            None => return Err(arg_err(op, arg, "expected a prefix, not \"default\"")),
        }
    } else {
        netaddr::cidr(op, arg, &s).script()?
    };
    Ok(if c.addr.is_ipv4() { "ipv4" } else { "ipv6" }.to_string())
}

/// A link argument that may be a Link or a name looked up in `ns`.
fn link_arg(op: &str, arg: &str, v: &Dynamic, ns: &Rc<NsFd>) -> RResult<Link> {
    if let Some(l) = v.read_lock::<Link>() {
        return Ok(l.clone());
    }
    if let Ok(name) = v.clone().into_string() {
        check_name(op, arg, &name)?;
        return lookup(op, &name, ns);
    }
    Err(arg_err(
        op,
        arg,
        format!("expected a Link or an interface name, got {}", type_of(v)),
    ))
}

fn lookup(op: &str, name: &str, ns: &Rc<NsFd>) -> RResult<Link> {
    let s = nl::by_name(ns, name).map_err(|mut e| {
        e.op = op.to_string();
        super::super::error::sys_err(e)
    })?;
    Ok(Link::from_state(ns.clone(), s))
}

/// After creating `name` in `ns`, find it; if that fails, delete it again so nothing is
/// left half-made.
fn created(op: &str, name: &str, ns: &Rc<NsFd>) -> RResult<Link> {
    match nl::by_name(ns, name) {
        Ok(s) => {
            let l = Link::from_state(ns.clone(), s);
            l.0.borrow_mut().created = true;
            Ok(l)
        }
        Err(mut e) => {
            let _ = nl::delete_named(ns, name);
            e.op = op.to_string();
            Err(super::super::error::sys_err(e))
        }
    }
}

/// The error of a failed create: EEXIST says which name is taken where.
fn create_err(
    f: Failure,
    op: &str,
    name: &str,
    ns: &Rc<NsFd>,
    also: Option<(&str, &Rc<NsFd>)>,
) -> Box<rhai::EvalAltResult> {
    if f.errno() == Some(Errno::EEXIST) {
        // Which of the names exists? Ask each namespace.
        let mut taken = vec![(name, ns)];
        if let Some(p) = also {
            taken.push(p);
        }
        let found = taken.iter().find(|(n, ns)| nl::by_name(ns, n).is_ok());
        if let Some((n, where_)) = found {
            return nl_err(
                f,
                op,
                n,
                format!(
                    "an interface named {n} exists already in {}",
                    ns_name(where_)
                ),
            );
        }
    }
    let ctx = match also {
        Some((peer, pns)) => format!("{name} in {} / {peer} in {}", ns_name(ns), ns_name(pns)),
        None => format!("{name} in {}", ns_name(ns)),
    };
    nl_err(f, op, name, ctx)
}

fn mtu_opt(o: &Opts, key: &str) -> RResult<Option<u32>> {
    match o.int(key)? {
        None => Ok(None),
        Some(n) if (68..=65535).contains(&n) => Ok(Some(n as u32)),
        Some(n) => Err(arg_err(
            o.op,
            key,
            format!("{n} is not an MTU (68 to 65535)"),
        )),
    }
}

fn mac_opt(o: &Opts, key: &str) -> RResult<Option<[u8; 6]>> {
    match o.str(key)? {
        None => Ok(None),
        Some(s) => netaddr::mac(o.op, key, &s).map(Some).script(),
    }
}

fn links(opts: Map) -> RResult<Array> {
    let o = Opts::new("links", opts, &["ns"])?;
    let ns = ns_opt(&o, "ns")?;
    let all = nl::dump(&ns).script()?;
    Ok(all
        .into_iter()
        .map(|s| Dynamic::from(Link::from_state(ns.clone(), s)))
        .collect())
}

fn link(name: &str, opts: Map) -> RResult<Link> {
    let o = Opts::new("link", opts, &["ns"])?;
    check_name("link", "name", name)?;
    let ns = ns_opt(&o, "ns")?;
    lookup("link", name, &ns)
}

const VETH_KEYS: &[&str] = &["a_ns", "b_ns", "mtu", "a_mac", "b_mac", "keep"];

fn veth(a: &str, b: &str, opts: Map) -> RResult<Array> {
    const OP: &str = "veth";
    let o = Opts::new(OP, opts, VETH_KEYS)?;
    check_name(OP, "name_a", a)?;
    check_name(OP, "name_b", b)?;
    let mtu = mtu_opt(&o, "mtu")?;
    let a_mac = mac_opt(&o, "a_mac")?;
    let b_mac = mac_opt(&o, "b_mac")?;
    let keep = o.bool("keep", false)?;
    let a_ns = ns_opt(&o, "a_ns")?;
    let b_ns = match o.get("b_ns") {
        Some(_) => ns_opt(&o, "b_ns")?,
        None => a_ns.clone(),
    };
    if a == b && a_ns.inode == b_ns.inode {
        return Err(arg_err(
            OP,
            "name_b",
            format!("both ends are called {a:?} in one namespace; give them different names"),
        ));
    }
    // Sent in a's namespace; the peer is created directly in b's (IFLA_NET_NS_FD).
    let spec = NewLink {
        name: a,
        kind: Kind::Veth {
            peer: b,
            peer_ns: Some(&b_ns),
            peer_mtu: mtu,
        },
        mtu,
        mac: a_mac,
        into: None,
    };
    nl::create(&a_ns, &spec).map_err(|f| create_err(f, OP, a, &a_ns, Some((b, &b_ns))))?;
    let la = created(OP, a, &a_ns)?;
    let lb = match created(OP, b, &b_ns) {
        Ok(l) => l,
        Err(e) => {
            let _ = nl::delete(&a_ns, la.index());
            return Err(e);
        }
    };
    if let Some(mac) = b_mac {
        if let Err(e) = lb.change(OP, &Change::Mac(mac)) {
            let _ = nl::delete(&a_ns, la.index());
            return Err(e);
        }
    }
    la.0.borrow_mut().peer = Some(Rc::downgrade(&lb.0));
    lb.0.borrow_mut().peer = Some(Rc::downgrade(&la.0));
    if !keep {
        let id = own::pair(&la, &lb);
        la.0.borrow_mut().own = Some(id);
        lb.0.borrow_mut().own = Some(id);
    }
    Ok(vec![Dynamic::from(la), Dynamic::from(lb)])
}

fn finish_single(op: &str, name: &str, ns: &Rc<NsFd>, keep: bool) -> RResult<Link> {
    let l = created(op, name, ns)?;
    if !keep {
        let id = own::single(&l);
        l.0.borrow_mut().own = Some(id);
    }
    Ok(l)
}

fn bridge(name: &str, opts: Map) -> RResult<Link> {
    const OP: &str = "bridge";
    let o = Opts::new(OP, opts, &["ns", "mtu", "mac", "keep"])?;
    check_name(OP, "name", name)?;
    let mtu = mtu_opt(&o, "mtu")?;
    let mac = mac_opt(&o, "mac")?;
    let keep = o.bool("keep", false)?;
    let ns = ns_opt(&o, "ns")?;
    let spec = NewLink {
        name,
        kind: Kind::Bridge,
        mtu,
        mac,
        into: None,
    };
    nl::create(&ns, &spec).map_err(|f| create_err(f, OP, name, &ns, None))?;
    finish_single(OP, name, &ns, keep)
}

fn macvlan(name: &str, parent: Dynamic, opts: Map) -> RResult<Link> {
    const OP: &str = "macvlan";
    let o = Opts::new(OP, opts, &["mode", "ns", "parent_ns", "mtu", "mac", "keep"])?;
    check_name(OP, "name", name)?;
    let mode = match o.str("mode")?.as_deref().unwrap_or("bridge") {
        "bridge" => MacVlanMode::Bridge,
        "private" => MacVlanMode::Private,
        "vepa" => MacVlanMode::Vepa,
        "passthru" => MacVlanMode::Passthrough,
        other => {
            return Err(arg_err(
                OP,
                "mode",
                format!(
                    "unknown macvlan mode {other:?}; modes are bridge, private, vepa, passthru"
                ),
            ))
        }
    };
    let mtu = mtu_opt(&o, "mtu")?;
    let mac = mac_opt(&o, "mac")?;
    let keep = o.bool("keep", false)?;
    // A Link parent carries its namespace; a name is looked up in the shell's (or in
    // `parent_ns`). The macvlan lives in `ns` (default: the parent's), created there
    // directly, so a host interface can give a container a macvlan in one step.
    let parent = match parent.read_lock::<Link>().map(|p| p.clone()) {
        Some(p) => p,
        None => {
            let pns = ns_opt(&o, "parent_ns")?;
            link_arg(OP, "parent", &parent, &pns)?
        }
    };
    let target = match o.get("ns") {
        Some(_) => ns_opt(&o, "ns")?,
        None => parent.ns(),
    };
    let pns = parent.ns();
    let spec = NewLink {
        name,
        kind: Kind::MacVlan {
            parent: parent.index(),
            mode,
        },
        mtu,
        mac,
        into: Some(&target),
    };
    nl::create(&pns, &spec).map_err(|f| create_err(f, OP, name, &target, None))?;
    finish_single(OP, name, &target, keep)
}

fn ip_opt(o: &Opts, key: &str) -> RResult<Option<IpAddr>> {
    match o.str(key)? {
        None => Ok(None),
        Some(s) => netaddr::ip(o.op, key, &s).map(Some).script(),
    }
}

fn vxlan(name: &str, opts: Map) -> RResult<Link> {
    const OP: &str = "vxlan";
    let o = Opts::new(
        OP,
        opts,
        &[
            "vni", "local", "remote", "group", "port", "dev", "ns", "mtu", "keep",
        ],
    )?;
    check_name(OP, "name", name)?;
    let vni = match o.int("vni")? {
        Some(v) if (1..=0xff_ffff).contains(&v) => v as u32,
        Some(v) => {
            return Err(arg_err(
                OP,
                "vni",
                format!("{v} is not a VNI (1 to 16777215)"),
            ))
        }
        None => return Err(arg_err(OP, "vni", "the option \"vni\" is required")),
    };
    let local = ip_opt(&o, "local")?;
    let remote = ip_opt(&o, "remote")?;
    let group = ip_opt(&o, "group")?;
    if remote.is_some() && group.is_some() {
        return Err(arg_err(
            OP,
            "group",
            "give either remote (unicast) or group (multicast), not both",
        ));
    }
    if let Some(g) = group {
        if !g.is_multicast() {
            return Err(arg_err(
                OP,
                "group",
                format!("{g} is not a multicast address (use remote for a unicast peer)"),
            ));
        }
    }
    if let Some(r) = remote {
        if r.is_multicast() {
            return Err(arg_err(
                OP,
                "remote",
                format!("{r} is multicast; use group"),
            ));
        }
    }
    let fams: Vec<bool> = [local, remote, group]
        .iter()
        .flatten()
        .map(|a| a.is_ipv4())
        .collect();
    if fams.windows(2).any(|w| w[0] != w[1]) {
        return Err(arg_err(
            OP,
            "local",
            "local, remote and group must all be IPv4 or all IPv6",
        ));
    }
    let port = match o.int("port")? {
        None => 4789,
        Some(p) if (1..=65535).contains(&p) => p as u16,
        Some(p) => return Err(arg_err(OP, "port", format!("{p} is not a UDP port"))),
    };
    let mtu = mtu_opt(&o, "mtu")?;
    let keep = o.bool("keep", false)?;
    let ns = ns_opt(&o, "ns")?;
    let dev = match o.get("dev") {
        None => None,
        Some(v) => {
            let d = link_arg(OP, "dev", v, &ns)?;
            if d.ns().inode != ns.inode {
                return Err(arg_err(
                    OP,
                    "dev",
                    format!("{} is not in {}", d.where_(), ns_name(&ns)),
                ));
            }
            Some(d.index())
        }
    };
    if group.is_some() && dev.is_none() {
        return Err(arg_err(
            OP,
            "dev",
            "a multicast group needs the device to join it on (dev)",
        ));
    }
    let spec = NewLink {
        name,
        kind: Kind::Vxlan(Vxlan {
            vni,
            local,
            remote,
            group,
            port,
            dev,
        }),
        mtu,
        mac: None,
        into: None,
    };
    nl::create(&ns, &spec).map_err(|f| create_err(f, OP, name, &ns, None))?;
    finish_single(OP, name, &ns, keep)
}

fn add_addr(l: &mut Link, cidr: &str, opts: Map) -> RResult<()> {
    const OP: &str = "add_addr";
    let o = Opts::new(OP, opts, &["nodad", "keep"])?;
    let c: Cidr = netaddr::cidr(OP, "cidr", cidr).script()?;
    let nodad = o.bool("nodad", false)?;
    let keep = o.bool("keep", false)?;
    let (ns, index, created) = {
        let d = l.0.borrow();
        (d.ns.clone(), d.index, d.created)
    };
    nladdr::add(&ns, index, &c, nodad).map_err(|f| {
        let ctx = match &f {
            Failure::Nack(n) if n.errno == Errno::EEXIST => {
                format!("{c} is already an address of {}", l.where_())
            }
            _ => format!("{c} on {}", l.where_()),
        };
        nl_err(f, OP, &l.name(), ctx)
    })?;
    // Addresses on links the recipe made go with the link; on others they are removed at
    // the end.
    if !created && !keep {
        own::addr(ns, index, l.name(), c);
    }
    Ok(())
}

fn del_addr(l: &mut Link, cidr: &str) -> RResult<()> {
    const OP: &str = "del_addr";
    let c = netaddr::cidr(OP, "cidr", cidr).script()?;
    let (ns, index) = (l.ns(), l.index());
    nladdr::del(&ns, index, &c).map_err(|f| {
        let ctx = match &f {
            Failure::Nack(n) if n.errno == Errno::EADDRNOTAVAIL => {
                format!("{c} is not an address of {}", l.where_())
            }
            _ => format!("{c} on {}", l.where_()),
        };
        nl_err(f, OP, &l.name(), ctx)
    })?;
    own::addr_removed(&ns, index, &c);
    Ok(())
}

fn addrs(l: &mut Link) -> RResult<Array> {
    let list = nladdr::dump(&l.ns(), Some(l.index())).script()?;
    Ok(list
        .into_iter()
        .map(|a| Dynamic::from(a.cidr.to_string()))
        .collect())
}

fn set_master(l: &mut Link, bridge: Dynamic) -> RResult<()> {
    const OP: &str = "set_master";
    if bridge.is_unit() {
        return l.change(OP, &Change::Master(0));
    }
    let ns = l.ns();
    let br = link_arg(OP, "bridge", &bridge, &ns)?;
    if br.ns().inode != ns.inode {
        return Err(arg_err(
            OP,
            "bridge",
            format!(
                "{} and {} are in different namespaces",
                br.where_(),
                l.where_()
            ),
        ));
    }
    l.change(OP, &Change::Master(br.index()))
}

fn rename(l: &mut Link, to: &str) -> RResult<()> {
    const OP: &str = "rename";
    check_name(OP, "name", to)?;
    l.change(OP, &Change::Name(to))?;
    let mut d = l.0.borrow_mut();
    d.name = to.to_string();
    if let Some(s) = &d.spot {
        s.borrow_mut().name = to.to_string();
    }
    Ok(())
}

fn move_to(l: &mut Link, target: Dynamic) -> RResult<()> {
    const OP: &str = "move_to";
    let to = ns_val(OP, "ns", &target)?;
    let from = l.ns();
    if to.inode == from.inode {
        return Ok(());
    }
    l.change(OP, &Change::Netns(&to))?;
    // The index may change in the new namespace; find the link by name there.
    let s = nl::by_name(&to, &l.name()).map_err(|mut e| {
        e.op = OP.to_string();
        super::super::error::sys_err(e)
    })?;
    let mut d = l.0.borrow_mut();
    if let Some(spot) = &d.spot {
        let mut spot = spot.borrow_mut();
        spot.ns = own::NsRef::new(&to);
        spot.index = s.index;
    }
    d.ns = to;
    d.index = s.index;
    Ok(())
}

pub fn register(api: &mut Api) {
    api.ty::<Link>("Link");
    api.engine.register_fn("to_string", |l: &mut Link| l.show());
    api.engine.register_fn("to_debug", |l: &mut Link| l.show());

    api.func(
        "check_link_name",
        "check_link_name(op: string, arg: string, name: string)",
        "Fail unless `name` is a name the kernel takes for an interface (1 to 15 bytes, no '/',\n\
         ':', '%', spaces or NUL), the error naming op(arg): for recipe libraries that create\n\
         links later and want bad names refused before anything exists.\n\
         Example:\n    check_link_name(\"box\", \"veth\", opts.veth);",
        |op: &str, arg: &str, name: &str| -> RResult<()> { check_name(op, arg, name) },
    );
    api.func(
        "check_cidr",
        "check_cidr(op: string, arg: string, cidr: string) -> string",
        "Fail unless `cidr` is an address with its prefix length as add_addr takes it\n\
         (\"10.0.0.2/24\", \"fd00::2/64\"), the error naming op(arg); returns its family, \"ipv4\" or\n\
         \"ipv6\". For recipe libraries that add the address later and want bad input refused\n\
         before anything exists.\n\
         Example:\n    if check_cidr(\"box\", \"addr\", opts.addr) != \"ipv4\" { throw \"box(addr): an IPv4 address\"; }",
        |op: &str, arg: &str, cidr: Dynamic| check_cidr(op, arg, &cidr, false),
    );
    api.func(
        "check_cidr",
        "check_cidr(op: string, arg: string, cidr: string, opts: map) -> string",
        "check_cidr with options: `prefix: true` wants a prefix as route_add's dst takes it (no\n\
         host bits: \"10.0.0.0/24\", not \"10.0.0.1/24\").\n\
         Example:\n    check_cidr(\"box\", \"routed\", opts.routed, #{ prefix: true });",
        |op: &str, arg: &str, cidr: Dynamic, opts: Map| -> RResult<String> {
            let o = Opts::new("check_cidr", opts, &["prefix"])?;
            check_cidr(op, arg, &cidr, o.bool("prefix", false)?)
        },
    );
    api.getter(
        "Link",
        "name",
        "The interface name (as last set through this handle).\nExample:\n    print(link(\"lo\").name);",
        |l: &mut Link| -> String { l.name() },
    );
    api.getter(
        "Link",
        "index",
        "The interface index in its namespace (as in `ip link`).\nExample:\n    print(link(\"lo\").index);   // 1",
        |l: &mut Link| -> i64 { i64::from(l.index()) },
    );
    api.getter(
        "Link",
        "kind",
        "The link kind: \"veth\", \"bridge\", \"macvlan\", \"vxlan\" ...; \"loopback\" for lo and\n\
         \"device\" for interfaces without a kind (physical ones).\nExample:\n    print(link(\"lo\").kind);   // loopback",
        |l: &mut Link| -> String { l.0.borrow().kind.clone() },
    );
    api.getter(
        "Link",
        "ns",
        "The network namespace the link is in (an Ns; holding the link keeps it alive).\nExample:\n    let n = netns_new(); print(link(\"lo\", #{ ns: n }).ns == n);",
        |l: &mut Link| -> Ns { Ns(l.ns()) },
    );
    api.engine
        .register_get("mac", |l: &mut Link| -> RResult<Dynamic> {
            Ok(l.state("mac")?.mac.map_or(Dynamic::UNIT, Dynamic::from))
        });
    api.doc(
        "mac",
        "Link.mac -> string",
        "The hardware address, \"02:00:0a:00:00:01\" (asked from the kernel each time; () when the\n\
         link has none).\nExample:\n    let ends = veth(\"m0\", \"m1\", #{ a_ns: netns_new() }); print(ends[0].mac);",
    );
    api.engine
        .register_get("mtu", |l: &mut Link| -> RResult<i64> {
            Ok(i64::from(l.state("mtu")?.mtu))
        });
    api.doc(
        "mtu",
        "Link.mtu -> int",
        "The MTU (asked from the kernel each time).\nExample:\n    print(link(\"lo\").mtu);   // 65536",
    );
    api.engine
        .register_get("up", |l: &mut Link| -> RResult<bool> {
            Ok(l.state("up")?.up)
        });
    api.doc(
        "up",
        "Link.up -> bool",
        "Whether the link is administratively up (IFF_UP; asked from the kernel each time).\n\
         Example:\n    let lo = link(\"lo\", #{ ns: netns_new() }); lo.set_up(); print(lo.up);   // true",
    );

    api.func(
        "links",
        "links(opts: map) -> array",
        "Every network interface of a namespace, as Link handles. Options: `ns` (an Ns, a\n\
         Process or a pid; default the shell's network namespace).\n\
         Example:\n    for l in links(#{ ns: netns_new() }) { print(l.name); }   // lo",
        links,
    );
    api.func(
        "links",
        "links() -> array",
        "Every network interface of the shell's network namespace.\nExample:\n    unshare([\"net\"]); print(links());   // [Link(lo #1 loopback down ...)]",
        || links(Map::new()),
    );
    api.func(
        "link",
        "link(name: string, opts: map) -> Link",
        "The interface called `name` in a namespace (option `ns`; default the shell's); an ENODEV\n\
         error naming the namespace when there is none.\nExample:\n    link(\"lo\", #{ ns: n }).set_up();",
        link,
    );
    api.func(
        "link",
        "link(name: string) -> Link",
        "The interface called `name` in the shell's network namespace.\nExample:\n    print(link(\"lo\").mtu);",
        |name: &str| link(name, Map::new()),
    );
    api.func(
        "veth",
        "veth(name_a: string, name_b: string, opts: map) -> array",
        "A veth pair, each end created directly in its namespace (the peer with IFLA_NET_NS_FD,\n\
         never created here and moved). Options: `a_ns` (where name_a lives; default the shell's\n\
         netns), `b_ns` (where name_b lives; default a_ns), `mtu`, `a_mac`, `b_mac`, `keep` (do not\n\
         delete it when the recipe ends). Returns [Link a, Link b]. Both ends start down.\n\
         Example:\n    let ends = veth(\"h0\", \"c0\", #{ b_ns: netns_new() });\n    ends[0].add_addr(\"10.9.0.1/24\"); ends[0].set_up();",
        veth,
    );
    api.func(
        "veth",
        "veth(name_a: string, name_b: string) -> array",
        "A veth pair in the shell's network namespace.\nExample:\n    let ends = veth(\"va\", \"vb\");",
        |a: &str, b: &str| veth(a, b, Map::new()),
    );
    api.func(
        "bridge",
        "bridge(name: string, opts: map) -> Link",
        "A Linux bridge. Options: `ns` (default the shell's netns), `mtu`, `mac`, `keep`.\n\
         Ports join with `port.set_master(br)`. It starts down: `br.set_up()`.\n\
         Example:\n    let br = bridge(\"br0\", #{ ns: netns_new() }); br.set_up();",
        bridge,
    );
    api.func(
        "bridge",
        "bridge(name: string) -> Link",
        "A Linux bridge in the shell's network namespace.\nExample:\n    let br = bridge(\"br0\");",
        |name: &str| bridge(name, Map::new()),
    );
    api.func(
        "macvlan",
        "macvlan(name: string, parent: Link|string, opts: map) -> Link",
        "A macvlan on `parent` (a Link, or a name looked up in the shell's namespace or in\n\
         `parent_ns`). Options: `mode` (\"bridge\" (default), \"private\", \"vepa\", \"passthru\"),\n\
         `ns` (where the macvlan lives; default the parent's — it is created there directly, no\n\
         move), `parent_ns`, `mtu`, `mac`, `keep`.\n\
         Example:\n    let up = veth(\"up0\", \"up1\", #{ a_ns: host })[0];\n    let mv = macvlan(\"mv0\", up, #{ ns: ctr });",
        macvlan,
    );
    api.func(
        "macvlan",
        "macvlan(name: string, parent: Link|string) -> Link",
        "A bridge-mode macvlan on `parent`, in the parent's namespace.\nExample:\n    let mv = macvlan(\"mv0\", up);",
        |name: &str, parent: Dynamic| macvlan(name, parent, Map::new()),
    );
    api.func(
        "vxlan",
        "vxlan(name: string, opts: map) -> Link",
        "A VXLAN tunnel endpoint. Options: `vni` (required, 1..16777215), `remote` (unicast peer)\n\
         or `group` (multicast group, needs `dev`), `local` (source address), `port` (UDP, default\n\
         4789), `dev` (underlying Link or name), `ns`, `mtu`, `keep`.\n\
         Example:\n    let vx = vxlan(\"vx0\", #{ vni: 42, local: \"10.0.0.1\", remote: \"10.0.0.2\", dev: \"eth0\", ns: a });",
        vxlan,
    );

    api.func(
        "set_up",
        "Link.set_up()",
        "Bring the link up (ip link set X up).\nExample:\n    link(\"lo\", #{ ns: n }).set_up();",
        |l: &mut Link| l.change("set_up", &Change::Up(true)),
    );
    api.func(
        "set_down",
        "Link.set_down()",
        "Take the link down.\nExample:\n    ends[0].set_down();",
        |l: &mut Link| l.change("set_down", &Change::Up(false)),
    );
    api.func(
        "add_addr",
        "Link.add_addr(cidr: string, opts: map)",
        "Add an address (\"10.0.0.1/24\", \"fd00::1/64\"). Options: `nodad` (IPv6: skip duplicate\n\
         address detection, usable at once), `keep`. An address added to a link the recipe did not\n\
         create is removed when the recipe ends, unless `keep: true`.\n\
         Example:\n    ends[0].add_addr(\"fd00::1/64\", #{ nodad: true });",
        add_addr,
    );
    api.func(
        "add_addr",
        "Link.add_addr(cidr: string)",
        "Add an address (IPv4 or IPv6).\nExample:\n    ends[0].add_addr(\"10.0.0.1/24\");",
        |l: &mut Link, cidr: &str| add_addr(l, cidr, Map::new()),
    );
    api.func(
        "del_addr",
        "Link.del_addr(cidr: string)",
        "Remove an address.\nExample:\n    ends[0].del_addr(\"10.0.0.1/24\");",
        del_addr,
    );
    api.func(
        "addrs",
        "Link.addrs() -> array",
        "The link's addresses as CIDR strings, IPv4 and IPv6 (as `ip -o addr show dev X`).\n\
         Example:\n    print(link(\"lo\").addrs());   // [\"127.0.0.1/8\", \"::1/128\"]",
        addrs,
    );
    api.func(
        "set_mtu",
        "Link.set_mtu(mtu: int)",
        "Set the MTU.\nExample:\n    ends[0].set_mtu(1400);",
        |l: &mut Link, mtu: i64| -> RResult<()> {
            let n = u32_arg("set_mtu", "mtu", mtu)?;
            l.change("set_mtu", &Change::Mtu(n))
        },
    );
    api.func(
        "set_mac",
        "Link.set_mac(mac: string)",
        "Set the hardware address (\"02:00:00:00:00:01\").\nExample:\n    ends[0].set_mac(\"02:00:00:00:00:01\");",
        |l: &mut Link, mac: &str| -> RResult<()> {
            let m = netaddr::mac("set_mac", "mac", mac).script()?;
            l.change("set_mac", &Change::Mac(m))
        },
    );
    api.func(
        "rename",
        "Link.rename(name: string)",
        "Rename the link (take it down first if the kernel says EBUSY).\nExample:\n    ends[1].rename(\"eth0\");",
        rename,
    );
    api.func(
        "set_master",
        "Link.set_master(bridge: Link|string|())",
        "Enslave the link to a bridge in the same namespace (a Link or its name); () releases it.\n\
         Example:\n    port.set_master(br); port.set_up();",
        set_master,
    );
    api.func(
        "move_to",
        "Link.move_to(ns: Ns|Process|int)",
        "Move the link into another network namespace (costs the kernel ~20 ms: prefer creating\n\
         it there, e.g. veth's b_ns). The handle follows it; a recipe-owned link stays owned.\n\
         Example:\n    ends[1].move_to(ctr);",
        move_to,
    );
    api.func(
        "delete",
        "Link.delete()",
        "Delete the link now (a veth takes its peer with it). Deleting one that is gone already is\n\
         not an error.\nExample:\n    ends[0].delete();",
        |l: &mut Link| l.delete(),
    );
}
