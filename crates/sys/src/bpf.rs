//! Loading a cgroup device program and attaching it to a cgroup (cgroup v2's device controller).

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

const BPF_PROG_LOAD: libc::c_long = 5;
const BPF_PROG_ATTACH: libc::c_long = 8;
const BPF_PROG_TYPE_CGROUP_DEVICE: u32 = 15;
const BPF_CGROUP_DEVICE: u32 = 6;
const BPF_F_ALLOW_MULTI: u32 = 2;

#[repr(C)]
#[derive(Default)]
struct ProgLoadAttr {
    prog_type: u32,
    insn_cnt: u32,
    insns: u64,
    license: u64,
    log_level: u32,
    log_size: u32,
    log_buf: u64,
    kern_version: u32,
    prog_flags: u32,
    _pad: [u64; 12],
}

#[repr(C)]
#[derive(Default)]
struct ProgAttachAttr {
    target_fd: u32,
    attach_bpf_fd: u32,
    attach_type: u32,
    attach_flags: u32,
    _pad: [u64; 4],
}

/// Loads `insns` (encoded `struct bpf_insn`s, 8 bytes each) as a `BPF_PROG_TYPE_CGROUP_DEVICE` program.
/// On a verifier refusal the error carries the end of the verifier's log.
pub fn load_cgroup_device_program(insns: &[u8]) -> io::Result<OwnedFd> {
    if !insns.len().is_multiple_of(8) {
        return Err(io::Error::from(io::ErrorKind::InvalidInput));
    }
    match prog_load(insns, None) {
        Ok(fd) => Ok(fd),
        Err(err) => {
            // Load again with the verifier's log, only to explain the refusal.
            let mut log = vec![0u8; 1 << 16];
            let _ = prog_load(insns, Some(&mut log));
            let text = String::from_utf8_lossy(&log[..log.iter().position(|b| *b == 0).unwrap_or(0)])
                .trim()
                .to_string();
            let tail: String = text
                .chars()
                .rev()
                .take(400)
                .collect::<Vec<_>>()
                .into_iter()
                .rev()
                .collect();
            Err(if tail.is_empty() {
                err
            } else {
                io::Error::new(err.kind(), format!("{err}: {tail}"))
            })
        }
    }
}

fn prog_load(insns: &[u8], log: Option<&mut [u8]>) -> io::Result<OwnedFd> {
    let license = c"Apache";
    let (log_level, log_size, log_buf) = match log {
        Some(l) => (1, l.len() as u32, l.as_mut_ptr() as u64),
        None => (0, 0, 0),
    };
    let attr = ProgLoadAttr {
        prog_type: BPF_PROG_TYPE_CGROUP_DEVICE,
        insn_cnt: (insns.len() / 8) as u32,
        insns: insns.as_ptr() as u64,
        license: license.as_ptr() as u64,
        log_level,
        log_size,
        log_buf,
        ..Default::default()
    };
    // SAFETY: `attr` points at the instructions, the license string and (if any) the log buffer, all
    // alive and sized as declared for the duration of the call.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            BPF_PROG_LOAD,
            &attr as *const ProgLoadAttr,
            std::mem::size_of::<ProgLoadAttr>(),
        )
    };
    if ret < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: the kernel returned a new descriptor that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(ret as i32) })
}

/// Attaches a device program to the cgroup directory `cgroup` (allowing other programs beside it).
pub fn attach_cgroup_device_program(cgroup: BorrowedFd<'_>, prog: BorrowedFd<'_>) -> io::Result<()> {
    let attr = ProgAttachAttr {
        target_fd: cgroup.as_raw_fd() as u32,
        attach_bpf_fd: prog.as_raw_fd() as u32,
        attach_type: BPF_CGROUP_DEVICE,
        attach_flags: BPF_F_ALLOW_MULTI,
        ..Default::default()
    };
    // SAFETY: `attr` is a valid, initialised bpf_attr prefix whose size we pass.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            BPF_PROG_ATTACH,
            &attr as *const ProgAttachAttr,
            std::mem::size_of::<ProgAttachAttr>(),
        )
    };
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}
