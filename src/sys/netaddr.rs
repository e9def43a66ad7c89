//! Network names and addresses checked before any kernel call: interface names, CIDRs,
//! plain IP addresses, MAC addresses and socket addresses. Every rejection is an
//! invalid-argument `SysError` naming the operation and the argument.

use std::fmt;
use std::net::{IpAddr, SocketAddr};

use super::error::{Result, SysError};

/// The kernel's limit on interface names (IFNAMSIZ - 1).
pub const IFNAME_MAX: usize = 15;

/// Check an interface name: 1 to 15 bytes, not "." or "..", no '/', ':', '%', whitespace or
/// NUL (the kernel's `dev_valid_name` rules; ':' is reserved for aliases). '%' is refused
/// because the kernel reads a name holding it as a template ("eth%d" becomes eth0, eth1 ...):
/// a link created or renamed so would get a name ctrsh never asked for, and could not find
/// or clean up.
pub fn ifname(op: &str, arg: &str, name: &str) -> Result<()> {
    let bad = |d: String| Err(SysError::invalid(op, arg, d));
    if name.is_empty() {
        return bad("an interface name cannot be empty".to_string());
    }
    if name.len() > IFNAME_MAX {
        return bad(format!(
            "{name:?} is {} bytes; interface names are at most {IFNAME_MAX}",
            name.len()
        ));
    }
    if name == "." || name == ".." {
        return bad(format!("{name:?} is not a valid interface name"));
    }
    if let Some(c) = name
        .chars()
        .find(|&c| c == '/' || c == ':' || c == '%' || c.is_whitespace() || c == '\0')
    {
        let why = if c == '%' {
            " ('%' makes the kernel pick the name from a template)"
        } else {
            ""
        };
        return bad(format!(
            "{name:?} contains {c:?}; interface names cannot hold '/', ':', '%', spaces or NUL{why}"
        ));
    }
    Ok(())
}

/// An address with a prefix length: "10.0.0.1/24", "fd00::1/64".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    pub addr: IpAddr,
    pub len: u8,
}

impl Cidr {
    pub fn is_v4(&self) -> bool {
        self.addr.is_ipv4()
    }

    /// The network address: the host bits cleared.
    pub fn network(&self) -> IpAddr {
        match self.addr {
            IpAddr::V4(a) => {
                let bits = u32::from(a);
                let mask = if self.len == 0 {
                    0
                } else {
                    u32::MAX << (32 - u32::from(self.len))
                };
                IpAddr::V4((bits & mask).into())
            }
            IpAddr::V6(a) => {
                let bits = u128::from(a);
                let mask = if self.len == 0 {
                    0
                } else {
                    u128::MAX << (128 - u32::from(self.len))
                };
                IpAddr::V6((bits & mask).into())
            }
        }
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.len)
    }
}

/// Parse "address/prefix-length" (IPv4 or IPv6). Host bits may be set ("10.0.0.1/24").
pub fn cidr(op: &str, arg: &str, s: &str) -> Result<Cidr> {
    let (a, l) = s.split_once('/').ok_or_else(|| {
        SysError::invalid(
            op,
            arg,
            format!("{s:?} is not address/prefix-length (like \"10.0.0.1/24\" or \"fd00::1/64\")"),
        )
    })?;
    let addr: IpAddr = a
        .parse()
        .map_err(|_| SysError::invalid(op, arg, format!("{a:?} in {s:?} is not an IP address")))?;
    let max: u8 = if addr.is_ipv4() { 32 } else { 128 };
    let len: u8 = l
        .parse()
        .ok()
        .filter(|n| *n <= max && !l.starts_with('+'))
        .ok_or_else(|| {
            SysError::invalid(
                op,
                arg,
                format!("prefix length in {s:?} must be 0 to {max}"),
            )
        })?;
    Ok(Cidr { addr, len })
}

/// Parse a destination prefix: "default", a CIDR without host bits, or a plain address
/// (a host route, /32 or /128). `None` means the default route.
pub fn prefix(op: &str, arg: &str, s: &str) -> Result<Option<Cidr>> {
    if s == "default" {
        return Ok(None);
    }
    let c = if s.contains('/') {
        cidr(op, arg, s)?
    } else {
        let addr = ip(op, arg, s)?;
        Cidr {
            addr,
            len: if addr.is_ipv4() { 32 } else { 128 },
        }
    };
    if c.network() != c.addr {
        return Err(SysError::invalid(
            op,
            arg,
            format!(
                "{s:?} has host bits set; the prefix is {}/{}",
                c.network(),
                c.len
            ),
        ));
    }
    Ok(Some(c))
}

/// Parse a plain IP address (IPv4 or IPv6), no prefix length.
pub fn ip(op: &str, arg: &str, s: &str) -> Result<IpAddr> {
    s.parse().map_err(|_| {
        let d = if s.contains('/') {
            format!("{s:?} is not an IP address (give it without a prefix length)")
        } else {
            format!("{s:?} is not an IP address")
        };
        SysError::invalid(op, arg, d)
    })
}

/// Parse a MAC address "02:00:00:00:00:01" (six hex pairs separated by ':' or '-').
/// The multicast bit must be clear: no interface can have a multicast address.
pub fn mac(op: &str, arg: &str, s: &str) -> Result<[u8; 6]> {
    let bad = || {
        SysError::invalid(
            op,
            arg,
            format!("{s:?} is not a MAC address (six hex pairs like 02:00:00:00:00:01)"),
        )
    };
    let parts: Vec<&str> = s.split([':', '-']).collect();
    if parts.len() != 6 {
        return Err(bad());
    }
    let mut out = [0u8; 6];
    for (o, p) in out.iter_mut().zip(&parts) {
        if p.len() != 2 {
            return Err(bad());
        }
        *o = u8::from_str_radix(p, 16).map_err(|_| bad())?;
    }
    if out[0] & 1 != 0 {
        return Err(SysError::invalid(
            op,
            arg,
            format!(
                "{s:?} is a multicast address; an interface needs a unicast one (even first byte)"
            ),
        ));
    }
    if out == [0; 6] {
        return Err(SysError::invalid(
            op,
            arg,
            format!("{s:?} is the all-zero address"),
        ));
    }
    Ok(out)
}

/// Format a hardware address as ip(8) does: lower-case hex pairs joined by ':'.
pub fn mac_string(bytes: &[u8]) -> String {
    bytes
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// Parse "10.0.0.1:80", "[fd00::1]:80" or ":80" / "*:80" (any address of `v6`'s family).
pub fn sockaddr(op: &str, arg: &str, s: &str, v6: bool) -> Result<SocketAddr> {
    let any = if v6 { "[::]" } else { "0.0.0.0" };
    let full = match s.strip_prefix('*').unwrap_or(s) {
        p if p.starts_with(':') && !p.starts_with("::") => format!("{any}{p}"),
        _ => s.to_string(),
    };
    let sa: SocketAddr = full.parse().map_err(|_| {
        SysError::invalid(
            op,
            arg,
            format!("{s:?} is not address:port (like \"0.0.0.0:80\", \"[::1]:80\" or \":80\")"),
        )
    })?;
    if sa.is_ipv6() != v6 {
        let fam = if v6 { "inet6" } else { "inet" };
        return Err(SysError::invalid(
            op,
            arg,
            format!("{s:?} is not an address of family {fam}"),
        ));
    }
    Ok(sa)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interface_names() {
        for ok in ["eth0", "h1-eth0", "a", "abcdefghijklmno", "br.100"] {
            ifname("t", "name", ok).unwrap();
        }
        for bad in [
            "",
            "abcdefghijklmnop",
            "a/b",
            "a b",
            "a:1",
            ".",
            "..",
            "a\tb",
            "np%d",
            "eth%",
        ] {
            let e = ifname("t", "name", bad).unwrap_err();
            assert_eq!(e.name.as_deref(), Some("name"), "{bad:?}");
        }
        let e = ifname("veth", "name_a", "sixteen-chars-xx").unwrap_err();
        assert!(e.to_string().contains("at most 15"), "{e}");
    }

    #[test]
    fn cidrs_and_prefixes() {
        let c = cidr("t", "cidr", "10.0.0.7/24").unwrap();
        assert_eq!(c.to_string(), "10.0.0.7/24");
        assert_eq!(c.network().to_string(), "10.0.0.0");
        let c = cidr("t", "cidr", "fd00::1/64").unwrap();
        assert_eq!(c.network().to_string(), "fd00::");
        for bad in [
            "10.0.0.1/33",
            "fe80::zz/64",
            "10.0.0.1",
            "10.0.0/24",
            "::1/129",
            "1.2.3.4/+8",
            "1.2.3.4/",
        ] {
            assert!(cidr("t", "cidr", bad).is_err(), "{bad}");
        }
        let e = cidr("t", "cidr", "fe80::zz/64").unwrap_err();
        assert!(e.to_string().contains("\"fe80::zz\""), "{e}");
        assert_eq!(prefix("t", "dst", "default").unwrap(), None);
        assert_eq!(prefix("t", "dst", "10.1.0.0/16").unwrap().unwrap().len, 16);
        assert_eq!(prefix("t", "dst", "10.1.0.9").unwrap().unwrap().len, 32);
        let e = prefix("t", "dst", "10.1.0.9/16").unwrap_err();
        assert!(e.to_string().contains("10.1.0.0/16"), "{e}");
    }

    #[test]
    fn macs() {
        assert_eq!(
            mac("t", "mac", "02:00:0a:0B:00:01").unwrap(),
            [2, 0, 10, 11, 0, 1]
        );
        assert_eq!(mac_string(&[2, 0, 10, 11, 0, 1]), "02:00:0a:0b:00:01");
        for bad in [
            "02:00:00:00:00",
            "02:00:00:00:00:0g",
            "01:00:00:00:00:01",
            "00:00:00:00:00:00",
            "2:0:0:0:0:1",
        ] {
            assert!(mac("t", "mac", bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn socket_addresses() {
        assert_eq!(
            sockaddr("t", "bind", ":80", false).unwrap().to_string(),
            "0.0.0.0:80"
        );
        assert_eq!(
            sockaddr("t", "bind", "*:80", true).unwrap().to_string(),
            "[::]:80"
        );
        assert_eq!(
            sockaddr("t", "bind", "[fd00::1]:8", true).unwrap().port(),
            8
        );
        assert!(sockaddr("t", "bind", "10.0.0.1:80", true).is_err());
        assert!(sockaddr("t", "bind", "10.0.0.1", false).is_err());
    }
}
