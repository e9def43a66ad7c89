//! Loop devices for image files: a free device from /dev/loop-control, configured in one
//! LOOP_CONFIGURE call, read-only and with autoclear, so the kernel releases it as soon as
//! the last user (the mount) is gone. Only 8 loop devices exist on these machines and other
//! work shares them: we never pick a number ourselves.

use std::os::fd::{AsRawFd, OwnedFd};

use nix::errno::Errno;
use rustix::fs::{Mode, OFlags};

use super::error::{Result, SysError};
use super::safepath::rx;

const LOOP_CTL_GET_FREE: libc::c_ulong = 0x4C82;
const LOOP_CONFIGURE: libc::c_ulong = 0x4C0A;
const LO_FLAGS_READ_ONLY: u32 = 1;
const LO_FLAGS_AUTOCLEAR: u32 = 4;
const LO_NAME_SIZE: usize = 64;

/// struct loop_info64 (linux/loop.h).
#[repr(C)]
struct LoopInfo64 {
    lo_device: u64,
    lo_inode: u64,
    lo_rdevice: u64,
    lo_offset: u64,
    lo_sizelimit: u64,
    lo_number: u32,
    lo_encrypt_type: u32,
    lo_encrypt_key_size: u32,
    lo_flags: u32,
    lo_file_name: [u8; LO_NAME_SIZE],
    lo_crypt_name: [u8; LO_NAME_SIZE],
    lo_encrypt_key: [u8; 32],
    lo_init: [u64; 2],
}

/// struct loop_config (linux/loop.h).
#[repr(C)]
struct LoopConfig {
    fd: u32,
    block_size: u32,
    info: LoopInfo64,
    reserved: [u64; 8],
}

/// A configured loop device; the fd keeps it from being cleared until the image is mounted.
pub struct LoopDev {
    /// Held (never read) until the image is mounted: closing it earlier lets autoclear free the device.
    pub _hold: OwnedFd,
    pub path: String,
}

/// Refuse anything but a regular file as an image, before a loop device is taken: the
/// kernel's answer to a directory or a device is a bare EINVAL from LOOP_CONFIGURE (and
/// opening a FIFO would block).
fn image_is_a_file(image: &str) -> Result<()> {
    use rustix::fs::FileType;
    let st = rustix::fs::stat(image).map_err(|e| rx("squashfs", e).path(image).name("image"))?;
    let (what, hint) = match FileType::from_raw_mode(st.st_mode) {
        FileType::RegularFile => return Ok(()),
        FileType::Directory => (
            "a directory",
            "a directory is used as it is: bind(dir, target, #{ ro: true }); mksquashfs DIR \
             IMAGE makes an image of it",
        ),
        FileType::BlockDevice => (
            "a block device",
            "a device holding a squashfs mounts directly: mount(#{ source: DEV, target, \
             fstype: \"squashfs\", flags: [\"ro\"] })",
        ),
        FileType::CharacterDevice => ("a character device", ""),
        FileType::Fifo => ("a FIFO", ""),
        FileType::Socket => ("a socket", ""),
        _ => ("not a regular file", ""),
    };
    let err = SysError::invalid(
        "squashfs",
        "image",
        format!("{what}: the image must be a regular file"),
    )
    .path(image);
    Err(if hint.is_empty() { err } else { err.hint(hint) })
}

/// Attach `image` read-only with autoclear to a free loop device.
pub fn attach_ro(image: &str) -> Result<LoopDev> {
    image_is_a_file(image)?;
    let img = rustix::fs::open(image, OFlags::RDONLY | OFlags::CLOEXEC, Mode::empty())
        .map_err(|e| rx("squashfs", e).path(image).name("image"))?;
    let ctl = rustix::fs::open(
        "/dev/loop-control",
        OFlags::RDWR | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| rx("loop-control", e).path("/dev/loop-control"))?;
    let mut name = [0u8; LO_NAME_SIZE];
    for (d, s) in name.iter_mut().zip(image.bytes().take(LO_NAME_SIZE - 1)) {
        *d = s;
    }
    for _ in 0..16 {
        // SAFETY: LOOP_CTL_GET_FREE takes no argument and returns a device number or -1.
        let n = unsafe { libc::ioctl(ctl.as_raw_fd(), LOOP_CTL_GET_FREE) };
        if n < 0 {
            return Err(SysError::last("loop-control")
                .detail("LOOP_CTL_GET_FREE")
                .hint("no free loop device: see losetup -a"));
        }
        let path = format!("/dev/loop{n}");
        let dev =
            match rustix::fs::open(path.as_str(), OFlags::RDWR | OFlags::CLOEXEC, Mode::empty()) {
                Ok(d) => d,
                // The node may appear a moment after the control call: try again.
                Err(rustix::io::Errno::NOENT) => continue,
                Err(e) => return Err(rx("loop", e).path(&path)),
            };
        let cfg = LoopConfig {
            fd: img.as_raw_fd() as u32,
            block_size: 0,
            info: LoopInfo64 {
                lo_device: 0,
                lo_inode: 0,
                lo_rdevice: 0,
                lo_offset: 0,
                lo_sizelimit: 0,
                lo_number: 0,
                lo_encrypt_type: 0,
                lo_encrypt_key_size: 0,
                lo_flags: LO_FLAGS_READ_ONLY | LO_FLAGS_AUTOCLEAR,
                lo_file_name: name,
                lo_crypt_name: [0; LO_NAME_SIZE],
                lo_encrypt_key: [0; 32],
                lo_init: [0; 2],
            },
            reserved: [0; 8],
        };
        // SAFETY: `cfg` is a fully initialised struct loop_config that outlives the call; the
        // kernel only reads it.
        let r = unsafe { libc::ioctl(dev.as_raw_fd(), LOOP_CONFIGURE, &cfg as *const LoopConfig) };
        if r == 0 {
            return Ok(LoopDev { _hold: dev, path });
        }
        let e = Errno::last();
        if e != Errno::EBUSY {
            return Err(SysError::os("loop", e)
                .path(&path)
                .detail(format!("LOOP_CONFIGURE with {image}")));
        }
        // Someone else took it between GET_FREE and CONFIGURE: ask again.
    }
    Err(SysError::os("loop", Errno::EBUSY)
        .detail("every free loop device was taken while we tried"))
}

#[cfg(test)]
mod tests {
    #[test]
    fn struct_sizes_match_the_kernel() {
        assert_eq!(std::mem::size_of::<super::LoopInfo64>(), 232);
        assert_eq!(std::mem::size_of::<super::LoopConfig>(), 304);
    }
}
