//! Safe Linux wrappers. Knows nothing of Rhai: every function returns `SysError` naming the
//! operation, the object and the errno. All `unsafe` of the project lives below here.

pub mod attach;
pub mod caps;
pub mod cgroup;
pub mod debug_shell;
pub mod error;
pub mod exec;
pub mod idmap;
pub mod init;
pub mod jobctl;
pub mod netaddr;
pub mod netlink;
pub mod nft;
pub mod ns;
pub mod nsfile;
pub mod pidfd;
pub mod proctree;
pub mod rlimit;
pub mod signals;
pub mod spawn;
pub mod thread;
pub mod wait;

pub use error::{Result, SysError};
pub mod fsmount;
pub mod fsview;
pub mod loopdev;
pub mod mount;
pub mod mountinfo;
pub mod named;
pub mod procfs;
pub mod rootfs;
pub mod safepath;
pub mod sysctl;
pub mod syslogd;
pub mod tty;
pub mod unixsock;
