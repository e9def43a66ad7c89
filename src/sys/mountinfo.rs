//! /proc/PID/mountinfo, parsed (proc(5)): one `MountEntry` per line.

use super::error::{Result, SysError};

/// One line of mountinfo.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountEntry {
    pub id: u64,
    pub parent: u64,
    /// "major:minor" of the device.
    pub dev: String,
    /// The path inside the filesystem that is mounted (e.g. "/generic" for a subdirectory bind).
    pub root: String,
    /// Where it is mounted, relative to the reader's root.
    pub target: String,
    /// Per-mount options ("rw,nosuid,nodev").
    pub mount_opts: String,
    /// Optional fields: "shared:1", "master:2", "propagate_from:3", "unbindable".
    pub optional: Vec<String>,
    pub fstype: String,
    pub source: String,
    /// Per-superblock options ("rw,size=65536k,mode=755").
    pub super_opts: String,
}

impl MountEntry {
    /// "shared", "slave", "unbindable" or "private", from the optional fields.
    pub fn propagation(&self) -> &'static str {
        if self.optional.iter().any(|o| o.starts_with("shared:")) {
            "shared"
        } else if self.optional.iter().any(|o| o.starts_with("master:")) {
            "slave"
        } else if self.optional.iter().any(|o| o == "unbindable") {
            "unbindable"
        } else {
            "private"
        }
    }

    /// Whether the mount (not the superblock) is read-only.
    pub fn read_only(&self) -> bool {
        self.mount_opts.split(',').any(|o| o == "ro")
    }
}

/// Undo mountinfo's octal escapes (`\040` for a space, `\011`, `\012`, `\134`).
pub fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' {
            let oct = &b[i + 1..(i + 4).min(b.len())];
            if oct.len() == 3 && oct.iter().all(|c| (b'0'..=b'7').contains(c)) {
                let v = (oct[0] - b'0') as u32 * 64
                    + (oct[1] - b'0') as u32 * 8
                    + (oct[2] - b'0') as u32;
                if v <= 255 {
                    out.push(v as u8);
                    i += 4;
                    continue;
                }
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Parse one mountinfo line.
pub fn parse_line(line: &str) -> Option<MountEntry> {
    let (left, right) = line.split_once(" - ")?;
    let mut l = left.split(' ');
    let id = l.next()?.parse().ok()?;
    let parent = l.next()?.parse().ok()?;
    let dev = l.next()?.to_string();
    let root = unescape(l.next()?);
    let target = unescape(l.next()?);
    let mount_opts = l.next()?.to_string();
    let optional = l.filter(|s| !s.is_empty()).map(str::to_string).collect();
    let mut r = right.splitn(3, ' ');
    let fstype = r.next()?.to_string();
    let source = unescape(r.next()?);
    let super_opts = r.next().unwrap_or("").to_string();
    Some(MountEntry {
        id,
        parent,
        dev,
        root,
        target,
        mount_opts,
        optional,
        fstype,
        source,
        super_opts,
    })
}

/// Parse a whole mountinfo text; malformed lines are an error naming the line.
pub fn parse(text: &str) -> Result<Vec<MountEntry>> {
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .enumerate()
        .map(|(n, l)| {
            parse_line(l).ok_or_else(|| {
                SysError::protocol("mountinfo", format!("line {}: cannot parse {l:?}", n + 1))
            })
        })
        .collect()
}

/// The mounts of process `pid` (0 = the calling process).
pub fn read(pid: i32) -> Result<Vec<MountEntry>> {
    let path = if pid == 0 {
        "/proc/self/mountinfo".to_string()
    } else {
        format!("/proc/{pid}/mountinfo")
    };
    let text =
        std::fs::read_to_string(&path).map_err(|e| SysError::io("mounts", &e).path(&path))?;
    parse(&text).map_err(|e| e.path(&path))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_lines_with_optional_fields_and_escapes() {
        let l = "36 35 98:0 /mnt1 /mnt\\040two rw,noatime master:1 shared:7 - ext3 /dev/root rw,errors=continue";
        let m = parse_line(l).unwrap();
        assert_eq!(m.id, 36);
        assert_eq!(m.parent, 35);
        assert_eq!(m.root, "/mnt1");
        assert_eq!(m.target, "/mnt two");
        assert_eq!(m.optional, vec!["master:1", "shared:7"]);
        assert_eq!(m.fstype, "ext3");
        assert_eq!(m.source, "/dev/root");
        assert_eq!(m.super_opts, "rw,errors=continue");
        assert_eq!(m.propagation(), "shared");
        assert!(!m.read_only());
        let p = parse_line("1 0 0:5 / /x ro - tmpfs tmpfs rw").unwrap();
        assert!(p.optional.is_empty());
        assert_eq!(p.propagation(), "private");
        assert!(p.read_only());
    }

    #[test]
    fn unescape_handles_edges() {
        assert_eq!(unescape("a\\134b"), "a\\b");
        assert_eq!(unescape("tail\\"), "tail\\");
        assert_eq!(unescape("x\\04"), "x\\04");
        assert_eq!(unescape("\\011\\012"), "\t\n");
    }

    #[test]
    fn malformed_line_is_an_error() {
        assert!(parse("garbage\n").is_err());
        assert_eq!(parse("").unwrap().len(), 0);
    }

    #[test]
    fn reads_own_mountinfo() {
        let ms = read(0).unwrap();
        assert!(ms.iter().any(|m| m.target == "/"));
    }
}
