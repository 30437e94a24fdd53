//! Path resolution that cannot leave a root: `openat2(2)` with `RESOLVE_IN_ROOT`.

use std::ffi::CString;
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};

/// `RESOLVE_*` flags of `openat2(2)`.
#[derive(Debug, Clone, Copy, Default)]
pub struct ResolveFlags(pub u64);

impl ResolveFlags {
    pub const NO_XDEV: u64 = 0x01;
    pub const NO_MAGICLINKS: u64 = 0x02;
    pub const NO_SYMLINKS: u64 = 0x04;
    pub const BENEATH: u64 = 0x08;
    pub const IN_ROOT: u64 = 0x10;
}

#[repr(C)]
struct OpenHow {
    flags: u64,
    mode: u64,
    resolve: u64,
}

/// Opens `path` relative to `root` with `openat2`, resolving every component (symlinks and `..`
/// included) as if `root` were `/`: the result can never be outside `root`. `flags` are `O_*` flags
/// (`O_CLOEXEC` is always added), `resolve` extra `RESOLVE_*` bits on top of `RESOLVE_IN_ROOT`.
pub fn openat2_in_root(
    root: BorrowedFd<'_>,
    path: &str,
    flags: i32,
    mode: u32,
    resolve: ResolveFlags,
) -> io::Result<OwnedFd> {
    let cpath = CString::new(path).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    let how = OpenHow {
        flags: (flags | libc::O_CLOEXEC) as u64,
        mode: if flags & (libc::O_CREAT | libc::O_TMPFILE) != 0 {
            mode as u64
        } else {
            0
        },
        resolve: resolve.0 | ResolveFlags::IN_ROOT | ResolveFlags::NO_MAGICLINKS,
    };
    loop {
        // SAFETY: `cpath` is a valid NUL-terminated string and `how` a valid open_how whose size we pass;
        // both outlive the call.
        let ret = unsafe {
            libc::syscall(
                libc::SYS_openat2,
                root.as_raw_fd(),
                cpath.as_ptr(),
                &how as *const OpenHow,
                std::mem::size_of::<OpenHow>(),
            )
        };
        if ret >= 0 {
            // SAFETY: the kernel returned a fresh descriptor that nothing else owns.
            return Ok(unsafe { OwnedFd::from_raw_fd(ret as RawFd) });
        }
        let err = io::Error::last_os_error();
        // EAGAIN: a concurrent rename raced the lookup; the kernel asks us to retry.
        if err.raw_os_error() != Some(libc::EAGAIN) {
            return Err(err);
        }
    }
}

/// `mount_setattr(2)` on `path` relative to `dirfd` (`AT_RECURSIVE` when `recursive`): sets the
/// `MOUNT_ATTR_*` bits in `set` after clearing those in `clear`.
pub fn mount_setattr(
    dirfd: BorrowedFd<'_>,
    path: &str,
    recursive: bool,
    set: u64,
    clear: u64,
) -> io::Result<()> {
    #[repr(C)]
    struct MountAttr {
        attr_set: u64,
        attr_clr: u64,
        propagation: u64,
        userns_fd: u64,
    }
    const AT_RECURSIVE: u32 = 0x8000;
    let cpath = CString::new(path).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    let attr = MountAttr {
        attr_set: set,
        attr_clr: clear,
        propagation: 0,
        userns_fd: 0,
    };
    let flags = libc::AT_EMPTY_PATH as u32 | if recursive { AT_RECURSIVE } else { 0 };
    // SAFETY: `cpath` is NUL-terminated and `attr` a valid mount_attr whose size we pass; both outlive
    // the call.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            dirfd.as_raw_fd(),
            cpath.as_ptr(),
            flags,
            &attr as *const MountAttr,
            std::mem::size_of::<MountAttr>(),
        )
    };
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// The filesystem type (`f_type`, a magic number) of the filesystem holding `path`.
pub fn statfs_type(path: &std::path::Path) -> io::Result<i64> {
    use std::os::unix::ffi::OsStrExt;
    let cpath = CString::new(path.as_os_str().as_bytes())
        .map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    // SAFETY: a zeroed statfs is a valid value for the kernel to fill in.
    let mut buf: libc::statfs = unsafe { std::mem::zeroed() };
    // SAFETY: `cpath` is NUL-terminated and `buf` is writable for the call.
    let ret = unsafe { libc::statfs(cpath.as_ptr(), &mut buf) };
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(buf.f_type)
    }
}

/// `fsetxattr(2)`: sets extended attribute `name` on the open file `fd`.
pub fn fsetxattr(fd: BorrowedFd<'_>, name: &str, value: &[u8]) -> io::Result<()> {
    let cname = CString::new(name).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    // SAFETY: `cname` is NUL-terminated and `value` a valid buffer of the given length; both outlive
    // the call.
    let ret = unsafe {
        libc::fsetxattr(
            fd.as_raw_fd(),
            cname.as_ptr(),
            value.as_ptr().cast(),
            value.len(),
            0,
        )
    };
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}
