//! rtnetlink from the process itself (netlink-packet-route on blocking netlink-sys
//! sockets): links, addresses and routes of any network namespace the shell holds a
//! handle on, with no `ip` process.

pub mod addr;
pub mod link;
pub mod pinned;
pub mod route;
pub mod socket;

pub use socket::{here, ns_name, Failure};
