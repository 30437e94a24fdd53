//! Installing a seccomp filter: `seccomp(SECCOMP_SET_MODE_FILTER, flags, &sock_fprog)`.
//!
//! The filter is a classic-BPF program that was compiled earlier (in the runtime's parent, before the
//! container's init exists); this module only hands it to the kernel. It is a direct system call rather
//! than libseccomp's `seccomp_load` so that the init links no policy and does no allocation-heavy work
//! between fork and exec, and so that the flags (notably `SECCOMP_FILTER_FLAG_NEW_LISTENER`) are exactly
//! the ones the caller computed.

use std::io;
use std::os::fd::{FromRawFd, OwnedFd};

/// `SECCOMP_FILTER_FLAG_TSYNC`: synchronise the filter to every thread of the process.
pub const FLAG_TSYNC: u32 = 1;
/// `SECCOMP_FILTER_FLAG_LOG`: log every action but `SECCOMP_RET_ALLOW`.
pub const FLAG_LOG: u32 = 1 << 1;
/// `SECCOMP_FILTER_FLAG_SPEC_ALLOW`: do not enable the speculative store bypass mitigation.
pub const FLAG_SPEC_ALLOW: u32 = 1 << 2;
/// `SECCOMP_FILTER_FLAG_NEW_LISTENER`: the call returns a user-notification descriptor.
pub const FLAG_NEW_LISTENER: u32 = 1 << 3;
/// `SECCOMP_FILTER_FLAG_TSYNC_ESRCH`: with TSYNC, fail with ESRCH rather than a thread id.
pub const FLAG_TSYNC_ESRCH: u32 = 1 << 4;
/// `SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV`: a notifying task waits killably once its notification was
/// received (only valid together with [`FLAG_NEW_LISTENER`]).
pub const FLAG_WAIT_KILLABLE_RECV: u32 = 1 << 5;

/// `BPF_MAXINSNS`: the longest classic-BPF program the kernel accepts.
pub const MAX_INSTRUCTIONS: usize = 4096;

/// One classic-BPF instruction, laid out as the kernel's `struct sock_filter`.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash)]
pub struct SockFilter {
    /// Opcode.
    pub code: u16,
    /// Jump offset when the condition holds.
    pub jt: u8,
    /// Jump offset when it does not.
    pub jf: u8,
    /// Operand.
    pub k: u32,
}

// The kernel reads `SockFilter`s as `struct sock_filter`: same size and alignment, checked at build time.
const _: () = assert!(std::mem::size_of::<SockFilter>() == std::mem::size_of::<libc::sock_filter>());
const _: () = assert!(std::mem::align_of::<SockFilter>() == std::mem::align_of::<libc::sock_filter>());

impl SockFilter {
    /// The size of one instruction in bytes.
    pub const SIZE: usize = 8;

    /// Decodes an instruction stored in the host's byte order (as libseccomp exports them).
    pub fn from_ne_bytes(b: [u8; 8]) -> Self {
        SockFilter {
            code: u16::from_ne_bytes([b[0], b[1]]),
            jt: b[2],
            jf: b[3],
            k: u32::from_ne_bytes([b[4], b[5], b[6], b[7]]),
        }
    }

    /// Encodes the instruction in the host's byte order (the inverse of [`SockFilter::from_ne_bytes`]).
    pub fn to_ne_bytes(self) -> [u8; 8] {
        let c = self.code.to_ne_bytes();
        let k = self.k.to_ne_bytes();
        [c[0], c[1], self.jt, self.jf, k[0], k[1], k[2], k[3]]
    }
}

/// Loads `instructions` on the calling thread with the seccomp(2) `flags`; returns the notification
/// descriptor when `flags` has [`FLAG_NEW_LISTENER`]. The caller must have set no_new_privs or hold
/// CAP_SYS_ADMIN, as the kernel requires. An empty program or one longer than [`MAX_INSTRUCTIONS`] is
/// refused with `InvalidInput` before the call.
pub fn set_mode_filter(instructions: &[SockFilter], flags: u32) -> io::Result<Option<OwnedFd>> {
    const SECCOMP_SET_MODE_FILTER: libc::c_ulong = 1;
    if instructions.is_empty() || instructions.len() > MAX_INSTRUCTIONS {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!(
                "a seccomp filter has 1 to {MAX_INSTRUCTIONS} instructions, not {}",
                instructions.len()
            ),
        ));
    }
    let prog = libc::sock_fprog {
        // Fits: checked against MAX_INSTRUCTIONS above.
        len: instructions.len() as u16,
        filter: instructions.as_ptr() as *mut libc::sock_filter,
    };
    // SAFETY: `prog` points at `instructions`, which has the layout of `struct sock_filter` (asserted at
    // build time), holds `len` elements and outlives the call; the kernel only reads (copies) them. The
    // call takes no other pointers.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_seccomp,
            SECCOMP_SET_MODE_FILTER,
            flags as libc::c_ulong,
            &prog as *const libc::sock_fprog,
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instructions_round_trip_through_bytes() {
        let i = SockFilter {
            code: 0x15,
            jt: 1,
            jf: 2,
            k: 0xc000_003e,
        };
        assert_eq!(SockFilter::from_ne_bytes(i.to_ne_bytes()), i);
    }

    #[test]
    fn empty_and_oversized_programs_are_refused_before_the_call() {
        let e = set_mode_filter(&[], 0).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidInput);
        let big = vec![SockFilter::default(); MAX_INSTRUCTIONS + 1];
        let e = set_mode_filter(&big, 0).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidInput);
    }
}
