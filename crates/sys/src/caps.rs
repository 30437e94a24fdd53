//! Capabilities: `capset(2)` with the 64-bit (version 3) interface, and the bounding and ambient sets
//! through `prctl(2)`. Sets are bit masks: bit N is capability N.

use std::io;

#[repr(C)]
struct CapHeader {
    version: u32,
    pid: i32,
}

#[repr(C)]
#[derive(Clone, Copy, Default)]
struct CapData {
    effective: u32,
    permitted: u32,
    inheritable: u32,
}

const LINUX_CAPABILITY_VERSION_3: u32 = 0x2008_0522;

fn check(ret: libc::c_int) -> io::Result<()> {
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// Sets the calling thread's effective, permitted and inheritable sets in one `capset` call.
pub fn set_caps(effective: u64, permitted: u64, inheritable: u64) -> io::Result<()> {
    let mut hdr = CapHeader {
        version: LINUX_CAPABILITY_VERSION_3,
        pid: 0,
    };
    let data = [
        CapData {
            effective: effective as u32,
            permitted: permitted as u32,
            inheritable: inheritable as u32,
        },
        CapData {
            effective: (effective >> 32) as u32,
            permitted: (permitted >> 32) as u32,
            inheritable: (inheritable >> 32) as u32,
        },
    ];
    // SAFETY: the header and the two data structs are valid for the call; version 3 takes exactly two.
    check(unsafe {
        libc::syscall(libc::SYS_capset, &mut hdr as *mut CapHeader, data.as_ptr()) as libc::c_int
    })
}

/// Reads the calling thread's (effective, permitted, inheritable) sets.
pub fn get_caps() -> io::Result<(u64, u64, u64)> {
    let mut hdr = CapHeader {
        version: LINUX_CAPABILITY_VERSION_3,
        pid: 0,
    };
    let mut data = [CapData::default(); 2];
    // SAFETY: the header and the two-element buffer are valid and writable for the call.
    check(unsafe {
        libc::syscall(libc::SYS_capget, &mut hdr as *mut CapHeader, data.as_mut_ptr()) as libc::c_int
    })?;
    let join = |lo: u32, hi: u32| (lo as u64) | ((hi as u64) << 32);
    Ok((
        join(data[0].effective, data[1].effective),
        join(data[0].permitted, data[1].permitted),
        join(data[0].inheritable, data[1].inheritable),
    ))
}

/// Removes capability `cap` from the bounding set.
pub fn drop_bounding(cap: u8) -> io::Result<()> {
    // SAFETY: PR_CAPBSET_DROP takes integer arguments only.
    check(unsafe { libc::prctl(libc::PR_CAPBSET_DROP, cap as libc::c_ulong, 0, 0, 0) })
}

/// Raises capability `cap` in the ambient set (it must be permitted and inheritable).
pub fn raise_ambient(cap: u8) -> io::Result<()> {
    // SAFETY: PR_CAP_AMBIENT takes integer arguments only.
    check(unsafe {
        libc::prctl(
            libc::PR_CAP_AMBIENT,
            libc::PR_CAP_AMBIENT_RAISE as libc::c_ulong,
            cap as libc::c_ulong,
            0,
            0,
        )
    })
}

/// Empties the ambient set.
pub fn clear_ambient() -> io::Result<()> {
    // SAFETY: PR_CAP_AMBIENT takes integer arguments only.
    check(unsafe {
        libc::prctl(
            libc::PR_CAP_AMBIENT,
            libc::PR_CAP_AMBIENT_CLEAR_ALL as libc::c_ulong,
            0,
            0,
            0,
        )
    })
}

/// `PR_SET_KEEPCAPS`: whether permitted capabilities survive a change of uid away from 0.
pub fn set_keep_caps(keep: bool) -> io::Result<()> {
    // SAFETY: PR_SET_KEEPCAPS takes integer arguments only.
    check(unsafe { libc::prctl(libc::PR_SET_KEEPCAPS, keep as libc::c_ulong, 0, 0, 0) })
}

/// `PR_SET_NO_NEW_PRIVS`.
pub fn set_no_new_privs() -> io::Result<()> {
    // SAFETY: PR_SET_NO_NEW_PRIVS takes integer arguments only.
    check(unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) })
}

/// The highest capability number this kernel knows (`/proc/sys/kernel/cap_last_cap`, 40 if unreadable).
pub fn last_cap() -> u8 {
    std::fs::read_to_string("/proc/sys/kernel/cap_last_cap")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(40)
}
