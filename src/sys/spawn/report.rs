//! The child's failure report on the error pipe: one SysError, written in one write(2)
//! before the child exits, read by the parent up to EOF.
//!
//! Layout: the errno as 4 little-endian bytes (0 = not a syscall error, -1 = invalid
//! argument, -2 = not found), then op, path, name, detail and hint, each as a u16 length
//! (0xffff = absent) followed by UTF-8 bytes.

use nix::errno::Errno;

use crate::sys::error::{ErrorKind, SysError};

pub fn encode(e: &SysError) -> Vec<u8> {
    let code: i32 = match e.kind {
        ErrorKind::Os(n) => n as i32,
        ErrorKind::InvalidArgument => -1,
        ErrorKind::NotFound => -2,
        ErrorKind::Protocol => 0,
    };
    let mut out = code.to_le_bytes().to_vec();
    let mut field = |s: Option<&str>| match s {
        None => out.extend_from_slice(&u16::MAX.to_le_bytes()),
        Some(s) => {
            let b = &s.as_bytes()[..s.len().min(4000)];
            out.extend_from_slice(&(b.len() as u16).to_le_bytes());
            out.extend_from_slice(b);
        }
    };
    field(Some(&e.op));
    field(e.path.as_deref());
    field(e.name.as_deref());
    field(e.detail.as_deref());
    field(e.hint.as_deref());
    out
}

pub fn decode(b: &[u8]) -> Option<SysError> {
    let code = i32::from_le_bytes(b.get(..4)?.try_into().ok()?);
    let mut at = 4;
    let mut next = || -> Option<Option<String>> {
        let len = u16::from_le_bytes(b.get(at..at + 2)?.try_into().ok()?);
        at += 2;
        if len == u16::MAX {
            return Some(None);
        }
        let s = b.get(at..at + len as usize)?;
        at += len as usize;
        Some(Some(String::from_utf8_lossy(s).into_owned()))
    };
    let op = next()??;
    let (path, name, detail, hint) = (next()?, next()?, next()?, next()?);
    let mut e = match code {
        -1 => SysError::invalid(op, name.clone().unwrap_or_default(), ""),
        -2 => SysError::not_found(op, ""),
        0 => SysError::protocol(op, ""),
        n => SysError::os(op, Errno::from_raw(n)),
    };
    e.path = path;
    e.name = name;
    e.detail = detail;
    e.hint = hint;
    Some(e)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let e = SysError::os("exec", Errno::ENOENT)
            .path("/bin/nope")
            .detail("not found in PATH /bin")
            .hint("check the rootfs");
        assert_eq!(decode(&encode(&e)).unwrap(), e);
        let i = SysError::invalid("spawn", "uid", "bad");
        assert_eq!(decode(&encode(&i)).unwrap(), i);
        assert!(decode(&[1, 2]).is_none());
    }
}
