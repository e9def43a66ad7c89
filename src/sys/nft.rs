//! nftables over netlink from the process: just enough to set up source NAT (masquerade)
//! in a network namespace, without an `nft` process and without libnftnl.
//!
//! One batch creates a table, a `nat` chain hooked at postrouting, and one rule
//! `ip saddr <net>/<len> oifname "<out>" masquerade`; deleting the table removes it all.
//! Message layout: linux/netfilter/nf_tables.h and nfnetlink.h.

use std::net::IpAddr;

use netlink_sys::{protocols::NETLINK_NETFILTER, Socket, SocketAddr};
use nix::errno::Errno;

use super::error::{Result, SysError};
use super::ns::{NsFd, NsGuard};

const NFNL_SUBSYS_NFTABLES: u16 = 10;
const NFNL_MSG_BATCH_BEGIN: u16 = 0x10;
const NFNL_MSG_BATCH_END: u16 = 0x11;
const NFT_MSG_NEWTABLE: u16 = 0;
const NFT_MSG_DELTABLE: u16 = 2;
const NFT_MSG_NEWCHAIN: u16 = 3;
const NFT_MSG_NEWRULE: u16 = 6;

const NLM_F_REQUEST: u16 = 0x1;
const NLM_F_ACK: u16 = 0x4;
const NLM_F_EXCL: u16 = 0x200;
const NLM_F_CREATE: u16 = 0x400;
const NLM_F_APPEND: u16 = 0x800;
const NLMSG_ERROR: u16 = 0x2;
const NLA_F_NESTED: u16 = 0x8000;

const NFTA_TABLE_NAME: u16 = 1;
const NFTA_CHAIN_TABLE: u16 = 1;
const NFTA_CHAIN_NAME: u16 = 3;
const NFTA_CHAIN_HOOK: u16 = 4;
const NFTA_CHAIN_TYPE: u16 = 7;
const NFTA_HOOK_HOOKNUM: u16 = 1;
const NFTA_HOOK_PRIORITY: u16 = 2;
const NF_INET_POST_ROUTING: u32 = 4;
const NFTA_RULE_TABLE: u16 = 1;
const NFTA_RULE_CHAIN: u16 = 2;
const NFTA_RULE_EXPRESSIONS: u16 = 4;
const NFTA_LIST_ELEM: u16 = 1;
const NFTA_EXPR_NAME: u16 = 1;
const NFTA_EXPR_DATA: u16 = 2;
const NFTA_DATA_VALUE: u16 = 1;
const NFT_REG_1: u32 = 1;
const NFT_PAYLOAD_NETWORK_HEADER: u32 = 1;
const NFT_META_OIFNAME: u32 = 7;
const NFT_CMP_EQ: u32 = 0;

/// The address family of an nftables table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    Ipv4,
    Ipv6,
}

impl Family {
    fn nfproto(self) -> u8 {
        match self {
            Family::Ipv4 => libc::NFPROTO_IPV4 as u8,
            Family::Ipv6 => libc::NFPROTO_IPV6 as u8,
        }
    }
    pub fn name(self) -> &'static str {
        match self {
            Family::Ipv4 => "ip",
            Family::Ipv6 => "ip6",
        }
    }
}

/// A netlink attribute tree being written into a buffer.
struct Msg {
    buf: Vec<u8>,
    nests: Vec<usize>,
}

impl Msg {
    fn new(ty: u16, flags: u16, seq: u32, family: u8, res_id: u16) -> Msg {
        let mut buf = Vec::with_capacity(256);
        buf.extend_from_slice(&0u32.to_ne_bytes()); // length, patched in finish
        buf.extend_from_slice(&ty.to_ne_bytes());
        buf.extend_from_slice(&flags.to_ne_bytes());
        buf.extend_from_slice(&seq.to_ne_bytes());
        buf.extend_from_slice(&0u32.to_ne_bytes());
        // struct nfgenmsg
        buf.push(family);
        buf.push(0); // NFNETLINK_V0
        buf.extend_from_slice(&res_id.to_be_bytes());
        Msg {
            buf,
            nests: Vec::new(),
        }
    }
    fn attr(&mut self, ty: u16, data: &[u8]) -> &mut Self {
        let len = 4 + data.len();
        self.buf.extend_from_slice(&(len as u16).to_ne_bytes());
        self.buf.extend_from_slice(&ty.to_ne_bytes());
        self.buf.extend_from_slice(data);
        self.pad();
        self
    }
    fn str(&mut self, ty: u16, s: &str) -> &mut Self {
        let mut v = s.as_bytes().to_vec();
        v.push(0);
        self.attr(ty, &v)
    }
    fn u32(&mut self, ty: u16, v: u32) -> &mut Self {
        self.attr(ty, &v.to_be_bytes())
    }
    fn begin(&mut self, ty: u16) -> &mut Self {
        self.nests.push(self.buf.len());
        self.buf.extend_from_slice(&0u16.to_ne_bytes());
        self.buf
            .extend_from_slice(&(ty | NLA_F_NESTED).to_ne_bytes());
        self
    }
    fn end(&mut self) -> &mut Self {
        let start = self.nests.pop().expect("balanced nests");
        let len = (self.buf.len() - start) as u16;
        self.buf[start..start + 2].copy_from_slice(&len.to_ne_bytes());
        self
    }
    fn pad(&mut self) {
        while !self.buf.len().is_multiple_of(4) {
            self.buf.push(0);
        }
    }
    fn finish(mut self) -> Vec<u8> {
        let len = self.buf.len() as u32;
        self.buf[0..4].copy_from_slice(&len.to_ne_bytes());
        self.buf
    }
    /// One expression: name plus its data attributes written by `data`.
    fn expr(&mut self, name: &str, data: impl FnOnce(&mut Msg)) -> &mut Self {
        self.begin(NFTA_LIST_ELEM)
            .str(NFTA_EXPR_NAME, name)
            .begin(NFTA_EXPR_DATA);
        data(self);
        self.end().end()
    }
}

/// The rule `<saddr>/<len> oifname <out> masquerade`, source NAT out of `out`.
#[derive(Debug, Clone)]
pub struct Masquerade {
    pub table: String,
    pub family: Family,
    pub src: IpAddr,
    pub prefix_len: u8,
    pub out: String,
}

/// Create the table, chain and rule of `m` in one atomic batch, inside `ns` (or here).
pub fn add_masquerade(ns: Option<&NsFd>, m: &Masquerade) -> Result<()> {
    let family = m.family.nfproto();
    let (offset, addr_bytes): (u32, Vec<u8>) = match m.src {
        IpAddr::V4(a) => (12, a.octets().to_vec()),
        IpAddr::V6(a) => (8, a.octets().to_vec()),
    };
    let mask = prefix_mask(addr_bytes.len(), m.prefix_len);
    let net: Vec<u8> = addr_bytes.iter().zip(&mask).map(|(a, k)| a & k).collect();
    let mut oif = [0u8; 16];
    oif[..m.out.len()].copy_from_slice(m.out.as_bytes());

    let mut msgs = Vec::new();
    // EXCL: never add to (and later delete) a table someone else made.
    let mut t = Msg::new(
        subsys(NFT_MSG_NEWTABLE),
        NLM_F_REQUEST | NLM_F_CREATE | NLM_F_EXCL | NLM_F_ACK,
        1,
        family,
        0,
    );
    t.str(NFTA_TABLE_NAME, &m.table);
    msgs.push(t.finish());
    let mut c = Msg::new(
        subsys(NFT_MSG_NEWCHAIN),
        NLM_F_REQUEST | NLM_F_CREATE | NLM_F_ACK,
        2,
        family,
        0,
    );
    c.str(NFTA_CHAIN_TABLE, &m.table)
        .str(NFTA_CHAIN_NAME, "postrouting");
    c.begin(NFTA_CHAIN_HOOK)
        .u32(NFTA_HOOK_HOOKNUM, NF_INET_POST_ROUTING)
        .u32(NFTA_HOOK_PRIORITY, 100)
        .end();
    c.str(NFTA_CHAIN_TYPE, "nat");
    msgs.push(c.finish());
    let mut r = Msg::new(
        subsys(NFT_MSG_NEWRULE),
        NLM_F_REQUEST | NLM_F_CREATE | NLM_F_APPEND | NLM_F_ACK,
        3,
        family,
        0,
    );
    r.str(NFTA_RULE_TABLE, &m.table)
        .str(NFTA_RULE_CHAIN, "postrouting");
    r.begin(NFTA_RULE_EXPRESSIONS);
    // payload load: source address → reg 1
    r.expr("payload", |e| {
        e.u32(1, NFT_REG_1)
            .u32(2, NFT_PAYLOAD_NETWORK_HEADER)
            .u32(3, offset)
            .u32(4, addr_bytes.len() as u32);
    });
    // bitwise: reg 1 = reg 1 & mask ^ 0
    r.expr("bitwise", |e| {
        e.u32(1, NFT_REG_1)
            .u32(2, NFT_REG_1)
            .u32(3, addr_bytes.len() as u32);
        e.begin(4).attr(NFTA_DATA_VALUE, &mask).end();
        e.begin(5)
            .attr(NFTA_DATA_VALUE, &vec![0u8; addr_bytes.len()])
            .end();
    });
    // cmp: reg 1 == network
    r.expr("cmp", |e| {
        e.u32(1, NFT_REG_1).u32(2, NFT_CMP_EQ);
        e.begin(3).attr(NFTA_DATA_VALUE, &net).end();
    });
    // meta oifname → reg 1; cmp == out
    r.expr("meta", |e| {
        e.u32(2, NFT_META_OIFNAME).u32(1, NFT_REG_1);
    });
    r.expr("cmp", |e| {
        e.u32(1, NFT_REG_1).u32(2, NFT_CMP_EQ);
        e.begin(3).attr(NFTA_DATA_VALUE, &oif).end();
    });
    r.expr("masq", |_| {});
    r.end();
    msgs.push(r.finish());
    batch(ns, "masquerade", &m.table, &msgs)
}

/// Delete a table (and everything in it) of `family` named `table`.
pub fn delete_table(ns: Option<&NsFd>, family: Family, table: &str) -> Result<()> {
    let mut t = Msg::new(
        subsys(NFT_MSG_DELTABLE),
        NLM_F_REQUEST | NLM_F_ACK,
        1,
        family.nfproto(),
        0,
    );
    t.str(NFTA_TABLE_NAME, table);
    batch(ns, "nft delete table", table, &[t.finish()])
}

fn subsys(msg: u16) -> u16 {
    (NFNL_SUBSYS_NFTABLES << 8) | msg
}

fn prefix_mask(len: usize, prefix: u8) -> Vec<u8> {
    (0..len)
        .map(|i| {
            let bits = (prefix as usize).saturating_sub(i * 8).min(8);
            if bits == 0 {
                0
            } else {
                0xffu8 << (8 - bits)
            }
        })
        .collect()
}

/// Send `msgs` wrapped in a batch on a NETLINK_NETFILTER socket opened in `ns`, and check
/// that every message was acknowledged without error.
fn batch(ns: Option<&NsFd>, op: &str, object: &str, msgs: &[Vec<u8>]) -> Result<()> {
    let socket = {
        let guard = match ns {
            Some(n) => Some(NsGuard::enter(&[n])?),
            None => None,
        };
        let s = Socket::new(NETLINK_NETFILTER)
            .map_err(|e| SysError::io("socket(NETLINK_NETFILTER)", &e));
        if let Some(g) = guard {
            g.restore()?;
        }
        s?
    };
    socket
        .connect(&SocketAddr::new(0, 0))
        .map_err(|e| SysError::io("connect(netlink)", &e))?;
    let mut buf = Msg::new(
        NFNL_MSG_BATCH_BEGIN,
        NLM_F_REQUEST,
        0,
        libc::AF_UNSPEC as u8,
        NFNL_SUBSYS_NFTABLES,
    )
    .finish();
    for m in msgs {
        buf.extend_from_slice(m);
    }
    buf.extend_from_slice(
        &Msg::new(
            NFNL_MSG_BATCH_END,
            NLM_F_REQUEST,
            0,
            libc::AF_UNSPEC as u8,
            NFNL_SUBSYS_NFTABLES,
        )
        .finish(),
    );
    socket
        .send(&buf, 0)
        .map_err(|e| SysError::io(op, &e).name(object))?;
    let mut acked = 0;
    let mut rbuf = vec![0u8; 8192];
    while acked < msgs.len() {
        let n = socket
            .recv(&mut &mut rbuf[..], 0)
            .map_err(|e| SysError::io(op, &e).name(object))?;
        let mut off = 0;
        while off + 16 <= n {
            let len =
                u32::from_ne_bytes(rbuf[off..off + 4].try_into().unwrap_or_default()) as usize;
            let ty = u16::from_ne_bytes([rbuf[off + 4], rbuf[off + 5]]);
            if len < 16 || off + len > n {
                return Err(SysError::protocol(op, "truncated netlink reply").name(object));
            }
            if ty == NLMSG_ERROR && len >= 20 {
                let code =
                    i32::from_ne_bytes(rbuf[off + 16..off + 20].try_into().unwrap_or_default());
                if code != 0 {
                    let err = SysError::os(op, Errno::from_raw(-code)).name(object);
                    return Err(match Errno::from_raw(-code) {
                        Errno::EOPNOTSUPP | Errno::ENOENT if op == "masquerade" => err.hint(
                            "the kernel may lack nf_tables NAT (modules nft_chain_nat, nft_masq)",
                        ),
                        Errno::EEXIST => {
                            err.hint("a table of that name exists already; pick another `table`")
                        }
                        _ => err,
                    });
                }
                acked += 1;
            }
            off += (len + 3) & !3;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks() {
        assert_eq!(prefix_mask(4, 24), vec![255, 255, 255, 0]);
        assert_eq!(prefix_mask(4, 20), vec![255, 255, 240, 0]);
        assert_eq!(prefix_mask(4, 0), vec![0, 0, 0, 0]);
        assert_eq!(prefix_mask(16, 64)[7..9], [255, 0]);
    }

    #[test]
    fn message_lengths_are_patched_and_aligned() {
        let mut m = Msg::new(subsys(NFT_MSG_NEWTABLE), NLM_F_REQUEST, 1, 2, 0);
        m.str(NFTA_TABLE_NAME, "abc");
        let b = m.finish();
        assert_eq!(
            u32::from_ne_bytes(b[0..4].try_into().unwrap()) as usize,
            b.len()
        );
        assert_eq!(b.len() % 4, 0);
        assert_eq!(b.len(), 16 + 4 + 8);
    }
}
