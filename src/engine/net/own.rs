//! What the recipe owns on the network side, and how it goes away at the end.
//!
//! Links, routes, and addresses put on links the recipe did not create are registered in
//! `cleanup`. At teardown each is removed explicitly only where its namespace outlives the
//! shell (the shell's own, a bind-mounted one, one another process is in): a namespace
//! nothing else holds takes all its links, addresses and routes with it when the shell
//! lets go, in one kernel batch, where deleting links one by one costs ~16 ms each.
//! Something already gone (deleted through a handle, or with its peer) is not an error.
//!
//! A registration holds no namespace open: it keeps the namespace's inode and a weak
//! reference to the handle the script used. While the script holds a handle, that is the
//! way in; once it has dropped them all, the namespace either died (and took the resource
//! with it: the registration is forgotten, `cleanup::own_while`) or something outside the
//! shell keeps it, and `pinned::find` opens it again there. So dropping a topology frees
//! its namespaces at once, and nothing is left behind at the end either way.

use std::cell::RefCell;
use std::rc::{Rc, Weak};

use nix::errno::Errno;

use super::super::cleanup::{self, OwnId};
use super::link::{mark_gone, Link, LinkData};
use super::nl_sys;
use crate::sys::netaddr::Cidr;
use crate::sys::netlink::route::Route;
use crate::sys::netlink::{addr as nladdr, link as nl, ns_name, pinned, route as nlroute};
use crate::sys::ns::NsFd;
use crate::sys::SysError;

thread_local! {
    /// Owned addresses and routes, so an explicit del_addr / route_del disowns them.
    static ADDRS: RefCell<Vec<(u64, u32, Cidr, OwnId)>> = const { RefCell::new(Vec::new()) };
    static ROUTES: RefCell<Vec<(u64, Route, OwnId)>> = const { RefCell::new(Vec::new()) };
}

/// Errnos that mean "it is gone already".
fn gone(e: Option<Errno>) -> bool {
    matches!(
        e,
        Some(Errno::ENODEV | Errno::ESRCH | Errno::ENOENT | Errno::EADDRNOTAVAIL)
    )
}

/// A namespace as a registration remembers it: its inode and the script's handle, weakly.
/// Only a namespace that something besides the shell's handles held when the resource was
/// made (the shell itself, a bind mount, a process) is looked for by its inode after the
/// handles are gone: a namespace the handles alone held died with them, and its inode may
/// meanwhile name another, unrelated namespace.
#[derive(Clone)]
pub struct NsRef {
    pub weak: Weak<NsFd>,
    pub inode: u64,
    pinned: bool,
}

impl NsRef {
    pub fn new(ns: &Rc<NsFd>) -> NsRef {
        NsRef {
            weak: Rc::downgrade(ns),
            inode: ns.inode,
            pinned: pinned::outlives_shell(ns),
        }
    }

    /// May the namespace still exist (and so, the resource in it)?
    fn alive(&self) -> bool {
        self.weak.strong_count() > 0 || (self.pinned && pinned::reachable(self.inode))
    }

    /// The namespace, if the resource in it must be removed by hand: it is still there and
    /// outlives the shell. The second value says it was found again by its inode (the
    /// script had dropped its handles).
    fn lasting(&self) -> Option<(Rc<NsFd>, bool)> {
        let (ns, found) = match self.weak.upgrade() {
            Some(ns) => (ns, false),
            None if self.pinned => (pinned::find(self.inode)?, true),
            None => return None,
        };
        pinned::outlives_shell(&ns).then_some((ns, found))
    }
}

/// Where an owned link is now (kept up to date by its handle: move_to, rename).
pub struct Spot {
    pub ns: NsRef,
    pub index: u32,
    pub name: String,
}

/// One end of an owned link: its handle (weak) and where it is.
struct End {
    link: Weak<RefCell<LinkData>>,
    spot: Rc<RefCell<Spot>>,
}

impl End {
    fn of(l: &Link) -> End {
        let mut d = l.0.borrow_mut();
        let spot = Rc::new(RefCell::new(Spot {
            ns: NsRef::new(&d.ns),
            index: d.index,
            name: d.name.clone(),
        }));
        d.spot = Some(spot.clone());
        End {
            link: Rc::downgrade(&l.0),
            spot,
        }
    }
}

/// Tear down the links `ends` (one link, or the two ends of a veth): delete through an end
/// whose namespace stays; if none stays, the namespaces take them.
fn teardown(ends: &[End]) -> Result<(), SysError> {
    for e in ends {
        let handle = e.link.upgrade();
        if handle.as_ref().is_some_and(|d| d.borrow().gone) {
            return Ok(());
        }
        let (nsref, index, name) = {
            let s = e.spot.borrow();
            (s.ns.clone(), s.index, s.name.clone())
        };
        let Some((ns, found)) = nsref.lasting() else {
            continue;
        };
        let done = || {
            if let Some(d) = &handle {
                mark_gone(d);
            }
            Ok(())
        };
        if found {
            // Found again by inode: make sure the index is still this link (an inode can be
            // reused once its namespace died).
            match nl::by_index(&ns, index, &name) {
                Ok(s) if s.name == name => {}
                _ => continue,
            }
        }
        return match nl::delete(&ns, index) {
            Ok(()) => done(),
            Err(f) if gone(f.errno()) => done(),
            Err(f) => Err(nl_sys(
                f,
                "delete",
                &name,
                format!("{name} in {}", ns_name(&ns)),
            )),
        };
    }
    Ok(())
}

fn own_links(what: String, ends: Vec<End>) -> OwnId {
    let spots: Vec<Rc<RefCell<Spot>>> = ends.iter().map(|e| e.spot.clone()).collect();
    cleanup::own_while(
        what,
        move || spots.iter().any(|s| s.borrow().ns.alive()),
        move || teardown(&ends),
    )
}

/// Own a single link (bridge, macvlan, vxlan).
pub fn single(l: &Link) -> OwnId {
    let what = {
        let d = l.0.borrow();
        format!("{} {} in {}", d.kind, d.name, ns_name(&d.ns))
    };
    own_links(what, vec![End::of(l)])
}

/// Own both ends of a veth pair: torn down once.
pub fn pair(a: &Link, b: &Link) -> OwnId {
    let what = {
        let (da, db) = (a.0.borrow(), b.0.borrow());
        format!(
            "veth {} in {} / {} in {}",
            da.name,
            ns_name(&da.ns),
            db.name,
            ns_name(&db.ns)
        )
    };
    own_links(what, vec![End::of(a), End::of(b)])
}

/// Register `what`, made in `ns`, to be undone there by `undo` at the end: only while the
/// namespace lives (one that died took it along) and outlives the shell.
fn own_in(
    ns: &Rc<NsFd>,
    what: String,
    undo: impl FnOnce(&Rc<NsFd>) -> Result<(), SysError> + 'static,
) -> OwnId {
    let nsref = NsRef::new(ns);
    let test = nsref.clone();
    cleanup::own_while(
        what,
        move || test.alive(),
        move || match nsref.lasting() {
            Some((ns, _)) => undo(&ns),
            None => Ok(()),
        },
    )
}

/// Own an address put on a link the recipe did not create.
pub fn addr(ns: Rc<NsFd>, index: u32, name: String, c: Cidr) -> OwnId {
    let what = format!("address {c} on {name} in {}", ns_name(&ns));
    let inode = ns.inode;
    let id = own_in(&ns, what, move |ns| match nladdr::del(ns, index, &c) {
        Err(f) if !gone(f.errno()) => Err(nl_sys(f, "del_addr", &name, format!("{c} on {name}"))),
        _ => Ok(()),
    });
    ADDRS.with(|a| {
        let mut a = a.borrow_mut();
        a.retain(|e| cleanup::is_owned(e.3));
        a.push((inode, index, c, id));
    });
    id
}

/// The script removed an address itself: forget the registration for it.
pub fn addr_removed(ns: &NsFd, index: u32, c: &Cidr) {
    ADDRS.with(|a| {
        a.borrow_mut().retain(|e| {
            let hit = e.0 == ns.inode && e.1 == index && e.2 == *c;
            if hit {
                cleanup::disown(e.3);
            }
            !hit && cleanup::is_owned(e.3)
        })
    });
}

/// Own a route.
pub fn route(ns: Rc<NsFd>, r: Route, shown: String) -> OwnId {
    let what = format!("route {shown} in {}", ns_name(&ns));
    let (inode, key) = (ns.inode, r.clone());
    let id = own_in(&ns, what, move |ns| match nlroute::del(ns, &r) {
        Err(f) if !gone(f.errno()) => Err(nl_sys(f, "route_del", &r.dst_string(), shown.clone())),
        _ => Ok(()),
    });
    ROUTES.with(|v| {
        let mut v = v.borrow_mut();
        v.retain(|e| cleanup::is_owned(e.2));
        v.push((inode, key, id));
    });
    id
}

/// The script deleted a route itself: forget the first owned route it matches (fields the
/// deletion left out match anything, as in the kernel).
pub fn route_removed(ns: &NsFd, del: &Route) {
    ROUTES.with(|v| {
        let mut v = v.borrow_mut();
        let pos = v.iter().position(|(inode, r, _)| {
            *inode == ns.inode
                && r.family == del.family
                && r.dst == del.dst
                && r.table == del.table
                && (del.via.is_none() || r.via == del.via)
                && (del.dev.is_none() || r.dev == del.dev)
                && (del.metric.is_none() || r.metric == del.metric)
        });
        if let Some(p) = pos {
            cleanup::disown(v.remove(p).2);
        }
    });
}
