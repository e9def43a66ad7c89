//! Everything a recipe creates (children, links, netns, cgroups, host-side mounts) is owned
//! by the recipe: registered here with a teardown action, and torn down in reverse order
//! when the recipe ends — normally, by error, by `exit`, or by a signal — unless the recipe
//! kept it. Teardown keeps going after a failure and reports every one.

use std::cell::RefCell;

use crate::sys::SysError;

type Teardown = Box<dyn FnOnce() -> Result<(), SysError>>;

struct Owned {
    id: u64,
    what: String,
    teardown: Teardown,
}

#[derive(Default)]
struct Registry {
    next: u64,
    owned: Vec<Owned>,
}

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
    REGISTRY.with(|r| {
        let mut r = r.borrow_mut();
        r.next += 1;
        let id = r.next;
        r.owned.push(Owned {
            id,
            what: what.into(),
            teardown: Box::new(teardown),
        });
        OwnId(id)
    })
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

/// Descriptions of what is currently owned, oldest first.
pub fn describe() -> Vec<String> {
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
}
