//! Safe Linux wrappers. Knows nothing of Rhai: every function returns `SysError` naming the
//! operation, the object and the errno. All `unsafe` of the project lives below here.

pub mod error;
pub mod netaddr;
pub mod netlink;
pub mod nft;
pub mod ns;
pub mod nsfile;
pub mod pidfd;
pub mod signals;
pub mod thread;

pub use error::{Result, SysError};
pub mod fsmount;
pub mod loopdev;
pub mod mount;
pub mod mountinfo;
pub mod rootfs;
pub mod safepath;
pub mod sysctl;
