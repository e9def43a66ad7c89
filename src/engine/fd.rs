//! The `Fd` handle: an open file descriptor held by the script (a socket from `socket_in`,
//! a file from `open_in`, an fd taken with `.getfd`). It closes when the last copy is dropped
//! and can be passed to children with `spawn(#{ fds: #{ 3: fd } })`.

use std::os::fd::{AsRawFd, OwnedFd};
use std::rc::Rc;

use super::api::Api;

#[derive(Clone)]
pub struct Fd {
    pub fd: Rc<OwnedFd>,
    /// What it is, for printing: "socket tcp 0.0.0.0:80 in net:[4026532]" ...
    pub what: Rc<str>,
}

impl Fd {
    pub fn new(fd: OwnedFd, what: impl Into<String>) -> Fd {
        Fd {
            fd: Rc::new(fd),
            what: Rc::from(what.into()),
        }
    }
    fn show(&self) -> String {
        format!("Fd({}: {})", self.fd.as_raw_fd(), self.what)
    }
}

pub fn register(api: &mut Api) {
    api.ty::<Fd>("Fd");
    api.getter("Fd", "fd", "The descriptor number in the shell process.\nExample:\n    let s = socket_in(netns_new(), #{ family: \"unix\", type: \"stream\" }); print(s.fd);", |f: &mut Fd| -> i64 {
        i64::from(f.fd.as_raw_fd())
    });
    api.engine.register_fn("to_string", |f: &mut Fd| f.show());
    api.engine.register_fn("to_debug", |f: &mut Fd| f.show());
}
