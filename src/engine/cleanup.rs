//! Everything a recipe creates (children, links, netns, cgroups, host-side mounts) is owned
//! by the recipe: registered here with a teardown action, and torn down in reverse order
//! when the recipe ends — normally, by error, by `exit`, or by a signal — unless the recipe
//! kept it. Teardown keeps going after a failure and reports every one.
//!
//! A resource can also go by itself before the end (a link inside a network namespace that
//! died when the script dropped it): it is registered with `own_while` and a test of
//! whether it may still exist; such registrations are dropped when the test says no, in
//! `describe` and now and then in `own`, so a long-running recipe does not pile them up.

use std::cell::RefCell;
use std::rc::Rc;

use crate::sys::SysError;

type Teardown = Box<dyn FnOnce() -> Result<(), SysError>>;
type Alive = Rc<dyn Fn() -> bool>;

struct Owned {
    id: u64,
    what: String,
    teardown: Teardown,
    alive: Option<Alive>,
}

#[derive(Default)]
struct Registry {
    next: u64,
    owned: Vec<Owned>,
    /// How many registrations there were after the last sweep.
    swept_at: usize,
}

/// Sweep in `own` once the registry has grown to twice its size after the last sweep (and
/// at least this big): the cost stays proportional to the registrations.
const SWEEP_MIN: usize = 64;

thread_local! {
    static REGISTRY: RefCell<Registry> = RefCell::new(Registry::default());
}

/// A handle on a registered resource, to disown it when the script removes or keeps it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OwnId(u64);

/// Register `what` (e.g. "link h0 in netns 4026532" ) to be torn down by `teardown`.
pub fn own(
    what: impl Into<String>,
    teardown: impl FnOnce() -> Result<(), SysError> + 'static,
) -> OwnId {
    register(what.into(), Box::new(teardown), None)
}

/// Register `what` as `own` does, for a resource that may go away by itself: once `alive`
/// returns false it is forgotten (its teardown never runs).
pub fn own_while(
    what: impl Into<String>,
    alive: impl Fn() -> bool + 'static,
    teardown: impl FnOnce() -> Result<(), SysError> + 'static,
) -> OwnId {
    register(what.into(), Box::new(teardown), Some(Rc::new(alive)))
}

fn register(what: String, teardown: Teardown, alive: Option<Alive>) -> OwnId {
    let (id, due) = REGISTRY.with(|r| {
        let mut r = r.borrow_mut();
        r.next += 1;
        let id = r.next;
        r.owned.push(Owned {
            id,
            what,
            teardown,
            alive,
        });
        (id, r.owned.len() >= SWEEP_MIN.max(2 * r.swept_at))
    });
    if due {
        sweep();
    }
    OwnId(id)
}

/// Forget every resource that has gone by itself.
pub fn sweep() {
    // The tests run outside the registry's borrow: they may look at other state, and the
    // closures dropped here may hold handles whose Drop does work.
    let tests: Vec<(u64, Alive)> = REGISTRY.with(|r| {
        r.borrow()
            .owned
            .iter()
            .filter_map(|o| o.alive.clone().map(|a| (o.id, a)))
            .collect()
    });
    // In registration order, so sorted by id.
    let gone: Vec<u64> = tests
        .into_iter()
        .filter(|(_, alive)| !alive())
        .map(|(id, _)| id)
        .collect();
    let dropped: Vec<Owned> = REGISTRY.with(|r| {
        let mut r = r.borrow_mut();
        let (dropped, kept) = std::mem::take(&mut r.owned)
            .into_iter()
            .partition(|o| gone.binary_search(&o.id).is_ok());
        r.owned = kept;
        r.swept_at = r.owned.len();
        dropped
    });
    drop(dropped);
}

/// Forget a resource: the script removed it itself, or asked to keep it.
pub fn disown(id: OwnId) {
    REGISTRY.with(|r| r.borrow_mut().owned.retain(|o| o.id != id.0));
}

/// Is the resource still owned (not yet torn down or disowned)?
pub fn is_owned(id: OwnId) -> bool {
    REGISTRY.with(|r| r.borrow().owned.iter().any(|o| o.id == id.0))
}

/// Tear down everything still owned, newest first. Returns every failure.
pub fn teardown_all() -> Vec<(String, SysError)> {
    let mut failures = Vec::new();
    loop {
        // Take one at a time: a teardown may register or disown others.
        let Some(o) = REGISTRY.with(|r| r.borrow_mut().owned.pop()) else {
            break;
        };
        if let Err(e) = (o.teardown)() {
            failures.push((o.what, e));
        }
    }
    failures
}

/// Tear down everything and print each failure to stderr.
pub fn teardown_all_reporting() {
    for (what, e) in teardown_all() {
        eprintln!("ctrsh: cleanup of {what} failed: {e}");
    }
}

/// Drop every registration without running it: in a forked child, which does not own what
/// its parent created.
pub fn forget_all() {
    REGISTRY.with(|r| {
        // Leak the closures rather than drop them: dropping could close fds or run Drop
        // impls whose effects belong to the parent.
        let owned = std::mem::take(&mut r.borrow_mut().owned);
        std::mem::forget(owned);
    });
}

/// Descriptions of what is currently owned, oldest first (what went by itself is left out).
pub fn describe() -> Vec<String> {
    sweep();
    REGISTRY.with(|r| r.borrow().owned.iter().map(|o| o.what.clone()).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::rc::Rc;

    #[test]
    fn teardown_runs_newest_first_and_reports_all_failures() {
        let log = Rc::new(RefCell::new(Vec::new()));
        for i in 0..3 {
            let log = log.clone();
            own(format!("r{i}"), move || {
                log.borrow_mut().push(i);
                if i == 1 {
                    Err(SysError::invalid("test", "r1", "boom"))
                } else {
                    Ok(())
                }
            });
        }
        let kept = own("kept", || {
            panic!("disowned resources must not be torn down")
        });
        disown(kept);
        let failures = teardown_all();
        assert_eq!(*log.borrow(), vec![2, 1, 0]);
        assert_eq!(failures.len(), 1);
        assert_eq!(failures[0].0, "r1");
        assert!(describe().is_empty());
    }

    #[test]
    fn what_went_by_itself_is_forgotten_and_never_torn_down() {
        let there = Rc::new(std::cell::Cell::new(true));
        let t = there.clone();
        own_while(
            "goes by itself",
            move || t.get(),
            || panic!("a resource that went by itself must not be torn down"),
        );
        own("stays", || Ok(()));
        assert_eq!(describe(), ["goes by itself", "stays"]);
        there.set(false);
        assert_eq!(describe(), ["stays"]);
        assert!(teardown_all().is_empty());
    }
}
