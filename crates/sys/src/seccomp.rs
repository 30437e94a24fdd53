//! Installing a seccomp filter: `seccomp(SECCOMP_SET_MODE_FILTER, flags, &sock_fprog)`.

use std::io;
use std::os::fd::{FromRawFd, OwnedFd};

/// `SECCOMP_FILTER_FLAG_NEW_LISTENER`: the call returns a notification descriptor.
pub const FLAG_NEW_LISTENER: u32 = 8;

#[repr(C)]
struct SockFprog {
    len: u16,
    filter: *const u8,
}

/// Loads `program` (classic BPF, 8 bytes an instruction) on the calling thread with `flags`; returns the
/// notification descriptor when `flags` has [`FLAG_NEW_LISTENER`]. The caller must have set
/// no_new_privs or hold CAP_SYS_ADMIN, as the kernel requires.
pub fn set_mode_filter(program: &[u8], flags: u32) -> io::Result<Option<OwnedFd>> {
    const SECCOMP_SET_MODE_FILTER: libc::c_long = 1;
    if program.is_empty() || !program.len().is_multiple_of(8) || program.len() / 8 > u16::MAX as usize {
        return Err(io::Error::from(io::ErrorKind::InvalidInput));
    }
    let prog = SockFprog {
        len: (program.len() / 8) as u16,
        filter: program.as_ptr(),
    };
    // SAFETY: `prog` describes `program`, which stays alive and unchanged for the call; the kernel
    // copies the instructions.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_seccomp,
            SECCOMP_SET_MODE_FILTER,
            flags as libc::c_ulong,
            &prog as *const SockFprog,
        )
    };
    if ret < 0 {
        return Err(io::Error::last_os_error());
    }
    if flags & FLAG_NEW_LISTENER != 0 {
        // SAFETY: with NEW_LISTENER the kernel returned a new descriptor that nothing else owns.
        return Ok(Some(unsafe { OwnedFd::from_raw_fd(ret as i32) }));
    }
    Ok(None)
}
