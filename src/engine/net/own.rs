//! What the recipe owns on the network side, and how it goes away at the end.
//!
//! Links, routes, and addresses put on links the recipe did not create are registered in
//! `cleanup`. At teardown each is removed explicitly only where its namespace outlives the
//! shell (the shell's own, a bind-mounted one, one another process is in): a namespace
//! nothing else holds takes all its links, addresses and routes with it when the shell
//! lets go, in one kernel batch, where deleting links one by one costs ~16 ms each.
//! Something already gone (deleted through a handle, or with its peer) is not an error.

use std::cell::RefCell;
use std::rc::Rc;

use nix::errno::Errno;

use super::super::cleanup::{self, OwnId};
use super::link::{mark_gone, Link};
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

/// Tear down the links `ends` (one link, or the two ends of a veth): delete through an end
/// whose namespace stays; if none stays, the namespaces take them.
fn teardown(ends: &[Link]) -> Result<(), SysError> {
    for l in ends {
        let (ns, index, name, is_gone) = {
            let d = l.0.borrow();
            (d.ns.clone(), d.index, d.name.clone(), d.gone)
        };
        if is_gone {
            return Ok(());
        }
        if pinned::outlives_shell(&ns) {
            return match nl::delete(&ns, index) {
                Ok(()) => {
                    mark_gone(&l.0);
                    Ok(())
                }
                Err(f) if gone(f.errno()) => {
                    mark_gone(&l.0);
                    Ok(())
                }
                Err(f) => Err(nl_sys(
                    f,
                    "delete",
                    &name,
                    format!("{name} in {}", ns_name(&ns)),
                )),
            };
        }
    }
    Ok(())
}

/// Own a single link (bridge, macvlan, vxlan).
pub fn single(l: &Link) -> OwnId {
    let what = {
        let d = l.0.borrow();
        format!("{} {} in {}", d.kind, d.name, ns_name(&d.ns))
    };
    let l = l.clone();
    cleanup::own(what, move || teardown(&[l]))
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
    let (a, b) = (a.clone(), b.clone());
    cleanup::own(what, move || teardown(&[a, b]))
}

/// Own an address put on a link the recipe did not create.
pub fn addr(ns: Rc<NsFd>, index: u32, name: String, c: Cidr) -> OwnId {
    let what = format!("address {c} on {name} in {}", ns_name(&ns));
    let inode = ns.inode;
    let id = cleanup::own(what, move || {
        if !pinned::outlives_shell(&ns) {
            return Ok(());
        }
        match nladdr::del(&ns, index, &c) {
            Err(f) if !gone(f.errno()) => {
                Err(nl_sys(f, "del_addr", &name, format!("{c} on {name}")))
            }
            _ => Ok(()),
        }
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
    let id = cleanup::own(what, move || {
        if !pinned::outlives_shell(&ns) {
            return Ok(());
        }
        match nlroute::del(&ns, &r) {
            Err(f) if !gone(f.errno()) => {
                Err(nl_sys(f, "route_del", &r.dst_string(), shown.clone()))
            }
            _ => Ok(()),
        }
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
