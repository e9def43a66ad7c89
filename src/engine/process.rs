//! Processes: the `Process` handle (a pid plus a pidfd), spawn/run/fork/exec.

use std::os::fd::OwnedFd;
use std::rc::Rc;

use crate::sys::ns::{NsFd, NsKind};
use crate::sys::{Result, SysError};

/// A process the script holds: its pid and a pidfd, so signals and namespace lookups never
/// hit a reused pid.
#[derive(Clone)]
pub struct Process {
    pub pid: i32,
    pub pidfd: Option<Rc<OwnedFd>>,
}

impl Process {
    /// The namespace of `kind` the process is in.
    pub fn ns(&self, kind: NsKind) -> Result<NsFd> {
        let ns = NsFd::of_pid(self.pid, kind).map_err(|e| e.name(format!("pid {}", self.pid)))?;
        // The pid could have been reused between our last look and the open: the pidfd
        // says whether our process is still the one behind it.
        if let Some(fd) = &self.pidfd {
            if !crate::sys::pidfd::is_alive(std::os::fd::AsFd::as_fd(fd.as_ref())) {
                return Err(SysError::os("ns", nix::errno::Errno::ESRCH)
                    .name(format!("pid {}", self.pid))
                    .detail("the process has exited"));
            }
        }
        Ok(ns)
    }
}

pub fn register(_api: &mut super::api::Api) {}
