//! One blocking NETLINK_ROUTE socket per network namespace.
//!
//! A netlink socket talks to the namespace it was created in, whatever namespace the
//! process is in later. So a socket for namespace X is opened by entering X (under an
//! `NsGuard`) only for the `socket(2)` call; all later work happens from home. Sockets are
//! cached by the namespace's inode for as long as some `NsFd` handle of the namespace is
//! alive (a socket holds its namespace alive, so the cache must not outlive the handles).
//!
//! Requests check sequence numbers, loop over multi-part dumps until NLMSG_DONE, and turn
//! NLMSG_ERROR into an errno plus the kernel's extended-ack message when it sends one.

use std::cell::RefCell;
use std::rc::{Rc, Weak};

use netlink_packet_core::{
    NetlinkHeader, NetlinkMessage, NetlinkPayload, NLM_F_ACK, NLM_F_DUMP, NLM_F_REQUEST,
};
use netlink_packet_route::RouteNetlinkMessage;
use netlink_sys::{protocols::NETLINK_ROUTE, Socket, SocketAddr};
use nix::errno::Errno;

use super::super::error::{Result, SysError};
use super::super::ns::{self, NsFd, NsGuard, NsKind};

/// A failed netlink request: the errno the kernel answered with and its extended-ack text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NlError {
    pub errno: Errno,
    pub msg: Option<String>,
}

/// What a request can fail with: the kernel said no (`Nack`), or talking failed (`Sys`).
#[derive(Debug)]
pub enum Failure {
    Nack(NlError),
    Sys(SysError),
}

impl Failure {
    /// Turn into the `SysError` of `op` on `name` (an interface, an address ...), with the
    /// kernel's own explanation as the detail when it gave one.
    pub fn into_sys(self, op: &str, name: &str) -> SysError {
        match self {
            Failure::Nack(n) => {
                let e = SysError::os(op, n.errno).name(name);
                match n.msg {
                    Some(m) => e.detail(m),
                    None => e,
                }
            }
            Failure::Sys(e) => e.name(name),
        }
    }

    pub fn errno(&self) -> Option<Errno> {
        match self {
            Failure::Nack(n) => Some(n.errno),
            Failure::Sys(e) => e.errno(),
        }
    }
}

pub type NlResult<T> = std::result::Result<T, Failure>;

const NETLINK_EXT_ACK_ATTR_MSG: u16 = 1;
const NLM_F_CAPPED: u16 = 0x100;
const NLM_F_ACK_TLVS: u16 = 0x200;
const NLMSG_HDRLEN: usize = 16;

/// A blocking NETLINK_ROUTE socket bound to one network namespace.
pub struct RtSocket {
    sock: Socket,
    seq: u32,
    buf: Vec<u8>,
}

impl RtSocket {
    /// A socket in the namespace the process is in now.
    fn open_here() -> Result<RtSocket> {
        let sock =
            Socket::new(NETLINK_ROUTE).map_err(|e| SysError::io("socket(NETLINK_ROUTE)", &e))?;
        sock.connect(&SocketAddr::new(0, 0))
            .map_err(|e| SysError::io("connect(netlink)", &e))?;
        // Best effort: kernel explanations in errors, and acks that do not echo requests.
        let _ = sock.set_ext_ack(true);
        let _ = sock.set_cap_ack(true);
        Ok(RtSocket {
            sock,
            seq: 0,
            buf: vec![0; 64 * 1024],
        })
    }

    /// A socket in namespace `ns`: enter it just for the socket(2) call.
    fn open_in(ns: &NsFd) -> Result<RtSocket> {
        let guard = NsGuard::enter(&[ns])?;
        let sock = Self::open_here();
        guard.restore()?;
        sock
    }

    fn send(&mut self, msg: RouteNetlinkMessage, flags: u16) -> NlResult<u32> {
        self.seq = self.seq.wrapping_add(1).max(1);
        let mut packet = NetlinkMessage::new(NetlinkHeader::default(), NetlinkPayload::from(msg));
        packet.header.flags = NLM_F_REQUEST | flags;
        packet.header.sequence_number = self.seq;
        packet.finalize();
        let len = packet.buffer_len();
        let mut out = vec![0u8; len];
        packet.serialize(&mut out);
        loop {
            match self.sock.send(&out, 0) {
                Ok(_) => return Ok(self.seq),
                Err(e) if e.raw_os_error() == Some(libc::EINTR) => continue,
                Err(e) => return Err(Failure::Sys(SysError::io("send(netlink)", &e))),
            }
        }
    }

    fn recv(&mut self) -> NlResult<usize> {
        loop {
            match self.sock.recv(&mut &mut self.buf[..], libc::MSG_TRUNC) {
                Ok(n) if n > self.buf.len() => {
                    return Err(Failure::Sys(SysError::protocol(
                        "recv(netlink)",
                        format!("a {n}-byte netlink reply did not fit the buffer"),
                    )))
                }
                Ok(n) => return Ok(n),
                Err(e) if e.raw_os_error() == Some(libc::EINTR) => continue,
                Err(e) => return Err(Failure::Sys(SysError::io("recv(netlink)", &e))),
            }
        }
    }

    /// Send one request and collect its replies: for a dump every part until NLMSG_DONE,
    /// otherwise until the ACK (or a reply, for a GET without NLM_F_ACK semantics).
    pub fn request(
        &mut self,
        msg: RouteNetlinkMessage,
        flags: u16,
    ) -> NlResult<Vec<RouteNetlinkMessage>> {
        let dump = flags & NLM_F_DUMP == NLM_F_DUMP;
        let seq = self.send(msg, flags | NLM_F_ACK)?;
        let mut out = Vec::new();
        loop {
            let n = self.recv()?;
            let mut off = 0;
            while off + NLMSG_HDRLEN <= n {
                let len = u32::from_ne_bytes(self.buf[off..off + 4].try_into().unwrap_or_default())
                    as usize;
                if len < NLMSG_HDRLEN || off + len > n {
                    return Err(Failure::Sys(SysError::protocol(
                        "recv(netlink)",
                        "a truncated netlink message",
                    )));
                }
                let bytes = &self.buf[off..off + len];
                off += (len + 3) & !3;
                let msg_seq = u32::from_ne_bytes(bytes[8..12].try_into().unwrap_or_default());
                if msg_seq != seq {
                    // A late reply to an earlier request (e.g. interrupted): not ours.
                    continue;
                }
                let msg_flags = u16::from_ne_bytes([bytes[6], bytes[7]]);
                let parsed = NetlinkMessage::<RouteNetlinkMessage>::deserialize(bytes);
                let parsed = match parsed {
                    Ok(p) => p,
                    // A message this crate cannot parse (a newer kernel attribute): in a
                    // dump skip it, elsewhere it is a protocol failure.
                    Err(_) if dump => continue,
                    Err(e) => {
                        return Err(Failure::Sys(SysError::protocol(
                            "recv(netlink)",
                            format!("cannot parse the kernel's reply: {e}"),
                        )))
                    }
                };
                match parsed.payload {
                    NetlinkPayload::Done(_) => return Ok(out),
                    NetlinkPayload::Error(e) => match e.code {
                        None => {
                            if !dump {
                                return Ok(out);
                            }
                        }
                        Some(code) => {
                            return Err(Failure::Nack(NlError {
                                errno: Errno::from_raw(-code.get()),
                                msg: ext_ack_msg(msg_flags, &e.header),
                            }))
                        }
                    },
                    NetlinkPayload::InnerMessage(m) => out.push(m),
                    _ => {}
                }
            }
        }
    }

    /// Send a request that expects only an ACK.
    pub fn ack(&mut self, msg: RouteNetlinkMessage, flags: u16) -> NlResult<()> {
        self.request(msg, flags).map(|_| ())
    }
}

/// The NLMSGERR_ATTR_MSG text of an error message whose payload after the errno is
/// `rest` (the echoed request header, the whole request unless capped, then TLVs).
fn ext_ack_msg(flags: u16, rest: &[u8]) -> Option<String> {
    if flags & NLM_F_ACK_TLVS == 0 || rest.len() < NLMSG_HDRLEN {
        return None;
    }
    let echoed = if flags & NLM_F_CAPPED != 0 {
        NLMSG_HDRLEN
    } else {
        u32::from_ne_bytes(rest[0..4].try_into().ok()?) as usize
    };
    let mut off = (echoed + 3) & !3;
    while off + 4 <= rest.len() {
        let len = u16::from_ne_bytes([rest[off], rest[off + 1]]) as usize;
        let ty = u16::from_ne_bytes([rest[off + 2], rest[off + 3]]) & 0x3fff;
        if len < 4 || off + len > rest.len() {
            return None;
        }
        if ty == NETLINK_EXT_ACK_ATTR_MSG {
            let s = &rest[off + 4..off + len];
            let s = s.split(|b| *b == 0).next().unwrap_or(s);
            return Some(String::from_utf8_lossy(s).into_owned());
        }
        off += (len + 3) & !3;
    }
    None
}

struct Entry {
    /// Held by the handles it was used for (`NsFd::tie`), so it is closed with the last of
    /// them and the namespace can die at once.
    sock: Weak<RefCell<RtSocket>>,
    netns: u64,
    /// Those handles.
    owners: Vec<Weak<NsFd>>,
}

thread_local! {
    static SOCKETS: RefCell<Vec<Entry>> = const { RefCell::new(Vec::new()) };
    static HERE: RefCell<Option<Rc<NsFd>>> = const { RefCell::new(None) };
    /// The process the cached sockets belong to: a forked child must not share its
    /// parent's sockets (replies could be read by either process).
    static OWNER: std::cell::Cell<u32> = const { std::cell::Cell::new(0) };
}

/// The socket for namespace `ns`, opened on first use and cached by the namespace inode.
pub fn socket_for(ns: &Rc<NsFd>) -> Result<Rc<RefCell<RtSocket>>> {
    SOCKETS.with(|cell| {
        let mut all = cell.borrow_mut();
        let me = std::process::id();
        if OWNER.with(|o| o.replace(me)) != me {
            // First use, or first use in a forked child: start with sockets of our own.
            all.clear();
        }
        // Forget sockets of namespaces no handle refers to any more (and so, inode reuse
        // cannot hand out a socket of a dead namespace).
        prune(&mut all);
        if let Some(e) = all.iter_mut().find(|e| e.netns == ns.inode) {
            if let Some(sock) = e.sock.upgrade() {
                if !e
                    .owners
                    .iter()
                    .any(|w| std::ptr::eq(w.as_ptr(), Rc::as_ptr(ns)))
                {
                    e.owners.push(Rc::downgrade(ns));
                    ns.tie(sock.clone());
                }
                return Ok(sock);
            }
        }
        let sock = Rc::new(RefCell::new(RtSocket::open_in(ns)?));
        ns.tie(sock.clone());
        all.push(Entry {
            sock: Rc::downgrade(&sock),
            netns: ns.inode,
            owners: vec![Rc::downgrade(ns)],
        });
        Ok(sock)
    })
}

/// Forget the sockets that were closed with their handles.
fn prune(all: &mut Vec<Entry>) {
    all.retain_mut(|e| {
        e.owners.retain(|w| w.strong_count() > 0);
        e.sock.strong_count() > 0 && !e.owners.is_empty()
    });
}

/// A live handle on the network namespace with `inode`, among those the cached sockets were
/// used for (the shell's handles that did netlink work there).
pub fn live_handle(inode: u64) -> Option<Rc<NsFd>> {
    if OWNER.with(|o| o.get()) != std::process::id() {
        return None;
    }
    SOCKETS.with(|cell| {
        let mut all = cell.borrow_mut();
        prune(&mut all);
        all.iter()
            .filter(|e| e.netns == inode)
            .flat_map(|e| e.owners.iter())
            .find_map(Weak::upgrade)
    })
}

/// Run `f` with the socket of `ns`.
pub fn with<T>(ns: &Rc<NsFd>, f: impl FnOnce(&mut RtSocket) -> NlResult<T>) -> NlResult<T> {
    let sock = socket_for(ns).map_err(Failure::Sys)?;
    let mut s = sock.borrow_mut();
    f(&mut s)
}

/// A handle on the network namespace the shell is in now (reused while the shell stays).
pub fn here() -> Result<Rc<NsFd>> {
    let inode = ns::inode_of(0, NsKind::Net)?;
    HERE.with(|h| {
        let mut h = h.borrow_mut();
        match h.as_ref() {
            Some(n) if n.inode == inode => Ok(n.clone()),
            _ => {
                let n = Rc::new(NsFd::of_pid(0, NsKind::Net)?);
                *h = Some(n.clone());
                Ok(n)
            }
        }
    })
}

/// How sockets are cached now: (namespace inode, live handles) per open socket.
#[cfg(test)]
fn cached() -> Vec<(u64, usize)> {
    SOCKETS.with(|c| {
        c.borrow()
            .iter()
            .filter(|e| e.sock.strong_count() > 0)
            .map(|e| {
                (
                    e.netns,
                    e.owners.iter().filter(|w| w.strong_count() > 0).count(),
                )
            })
            .collect()
    })
}

/// "net:[4026532]", the way /proc/PID/ns links name a namespace.
pub fn ns_name(ns: &NsFd) -> String {
    format!("net:[{}]", ns.inode)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_socket_is_cached_while_a_handle_lives_and_dropped_after() {
        // The namespace the test runs in: no setns needed (tests run multi-threaded).
        let ns = Rc::new(NsFd::of_pid(0, NsKind::Net).unwrap());
        let s1 = socket_for(&ns).unwrap();
        let s2 = socket_for(&ns).unwrap();
        assert!(Rc::ptr_eq(&s1, &s2), "one socket per namespace");
        assert!(cached().contains(&(ns.inode, 1)));
        // A real request over it: the loopback link exists everywhere.
        let links = s1
            .borrow_mut()
            .request(
                RouteNetlinkMessage::GetLink(Default::default()),
                netlink_packet_core::NLM_F_DUMP,
            )
            .unwrap();
        assert!(!links.is_empty());
        let inode = ns.inode;
        drop((s1, s2, ns));
        // Closed with the last handle, not at the next lookup.
        assert!(!cached().iter().any(|(i, _)| *i == inode));
        let other = Rc::new(NsFd::of_pid(0, NsKind::Net).unwrap());
        // The next lookup sweeps the dead entry and opens a fresh one for the new handle.
        let _s = socket_for(&other).unwrap();
        assert_eq!(cached().iter().filter(|(i, _)| *i == inode).count(), 1);
        assert!(cached().contains(&(inode, 1)));
    }

    #[test]
    fn ext_ack_text_is_found_after_a_capped_header() {
        let mut rest = vec![0u8; 16];
        rest[0..4].copy_from_slice(&16u32.to_ne_bytes());
        let text = b"Invalid prefix\0";
        let len = 4 + text.len();
        rest.extend_from_slice(&(len as u16).to_ne_bytes());
        rest.extend_from_slice(&NETLINK_EXT_ACK_ATTR_MSG.to_ne_bytes());
        rest.extend_from_slice(text);
        assert_eq!(
            ext_ack_msg(NLM_F_ACK_TLVS | NLM_F_CAPPED, &rest).as_deref(),
            Some("Invalid prefix")
        );
        assert_eq!(ext_ack_msg(0, &rest), None);
    }
}
