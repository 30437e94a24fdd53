//! Process creation and process-wide attributes.

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};

/// Which side of a fork the caller is on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Forked {
    /// The original process; the child has this pid (in the caller's pid namespace).
    Parent(i32),
    /// The new process.
    Child,
}

/// Whether the calling process has exactly one thread (read from `/proc/self/stat`, field 20).
pub fn is_single_threaded() -> io::Result<bool> {
    let stat = std::fs::read_to_string("/proc/self/stat")?;
    // The command name (field 2) is in parentheses and may contain spaces: count fields after its end.
    let after = stat.rfind(')').map(|i| &stat[i + 1..]).unwrap_or("");
    // After ')' come fields 3.. ; num_threads is field 20, i.e. the 18th after the name.
    let threads = after
        .split_whitespace()
        .nth(17)
        .and_then(|s| s.parse::<u64>().ok());
    Ok(threads == Some(1))
}

fn require_single_thread(what: &str) -> io::Result<()> {
    if is_single_threaded()? {
        Ok(())
    } else {
        Err(io::Error::other(format!(
            "{what}: the calling process has more than one thread"
        )))
    }
}

#[repr(C)]
#[derive(Default)]
struct CloneArgs {
    flags: u64,
    pidfd: u64,
    child_tid: u64,
    parent_tid: u64,
    exit_signal: u64,
    stack: u64,
    stack_size: u64,
    tls: u64,
    set_tid: u64,
    set_tid_size: u64,
    cgroup: u64,
}

/// The `clone3` flag that places the child into the cgroup given by `cgroup_fd`.
pub const CLONE_INTO_CGROUP: u64 = 0x2_0000_0000;

/// Creates a child process like `fork`, with `flags` (namespace flags, `CLONE_INTO_CGROUP`) through
/// `clone3`. With `cgroup` given, `CLONE_INTO_CGROUP` is added and the child starts in that cgroup
/// (cgroup v2 only). Returns `ENOSYS`/`E2BIG`/`EINVAL` as the kernel does when it lacks a feature, so
/// the caller can fall back. Fails unless the process is single-threaded.
pub fn clone3(flags: u64, cgroup: Option<BorrowedFd<'_>>) -> io::Result<Forked> {
    require_single_thread("clone3")?;
    let mut args = CloneArgs {
        flags,
        exit_signal: libc::SIGCHLD as u64,
        ..Default::default()
    };
    if let Some(fd) = cgroup {
        args.flags |= CLONE_INTO_CGROUP;
        args.cgroup = fd.as_raw_fd() as u64;
    }
    // SAFETY: clone3 without CLONE_VM and with a null stack behaves like fork: the child gets a copy of
    // the address space and continues from here. The process is single-threaded (checked above), so no
    // lock held by another thread can be left locked in the child. `args` is a valid, initialised struct
    // whose size we pass.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_clone3,
            &mut args as *mut CloneArgs,
            std::mem::size_of::<CloneArgs>(),
        )
    };
    match ret {
        -1 => Err(io::Error::last_os_error()),
        0 => Ok(Forked::Child),
        pid => Ok(Forked::Parent(pid as i32)),
    }
}

/// `fork(2)`, refused unless the process is single-threaded.
pub fn fork() -> io::Result<Forked> {
    require_single_thread("fork")?;
    // SAFETY: the process has a single thread (checked above), so the child cannot inherit a lock held
    // by another thread; nix's fork is otherwise a plain fork.
    match unsafe { nix::unistd::fork() } {
        Ok(nix::unistd::ForkResult::Parent { child }) => Ok(Forked::Parent(child.as_raw())),
        Ok(nix::unistd::ForkResult::Child) => Ok(Forked::Child),
        Err(e) => Err(io::Error::from(e)),
    }
}

/// Ends the process at once with `code`, running no destructors or atexit handlers (for a forked child
/// whose parent owns the buffers and files).
pub fn exit_immediately(code: i32) -> ! {
    // SAFETY: _exit never returns and has no preconditions.
    unsafe { libc::_exit(code) }
}

/// `pidfd_open(2)`: a descriptor that refers to process `pid` and cannot be confused by pid reuse.
pub fn pidfd_open(pid: i32) -> io::Result<OwnedFd> {
    // SAFETY: plain syscall with integer arguments; on success it returns a new descriptor we own.
    let ret = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    if ret < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: the kernel returned a fresh descriptor that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(ret as RawFd) })
}

/// `pidfd_send_signal(2)` with no siginfo.
pub fn pidfd_send_signal(pidfd: BorrowedFd<'_>, signal: i32) -> io::Result<()> {
    // SAFETY: plain syscall; a null siginfo is allowed and means "as kill(2) would send it".
    let ret = unsafe {
        libc::syscall(
            libc::SYS_pidfd_send_signal,
            pidfd.as_raw_fd(),
            signal,
            std::ptr::null::<u8>(),
            0,
        )
    };
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// `setdomainname(2)`.
pub fn setdomainname(name: &str) -> io::Result<()> {
    // SAFETY: the pointer and length describe the bytes of `name`, which outlive the call.
    let ret = unsafe { libc::setdomainname(name.as_ptr().cast(), name.len()) };
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// `prlimit(2)` on the calling process with a raw resource number (all RLIMIT_* are accepted).
pub fn prlimit(resource: i32, soft: u64, hard: u64) -> io::Result<()> {
    let new = libc::rlimit64 {
        rlim_cur: soft,
        rlim_max: hard,
    };
    // SAFETY: `new` is a valid rlimit64 for the duration of the call; the old-limit pointer may be null.
    let ret = unsafe { libc::prlimit64(0, resource as _, &new, std::ptr::null_mut()) };
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// Restores every signal's disposition to the default and unblocks all signals: what a program
/// expects to inherit across `execve` (the Rust runtime ignores SIGPIPE, for one).
pub fn reset_signals() -> io::Result<()> {
    for sig in 1..=64 {
        if sig == libc::SIGKILL || sig == libc::SIGSTOP || (32..=33).contains(&sig) {
            continue;
        }
        // SAFETY: installing SIG_DFL runs no code of ours in signal context; a zeroed sigaction with
        // SIG_DFL as handler is valid.
        unsafe {
            let mut sa: libc::sigaction = std::mem::zeroed();
            sa.sa_sigaction = libc::SIG_DFL;
            libc::sigaction(sig, &sa, std::ptr::null_mut());
        }
    }
    let empty = nix::sys::signal::SigSet::empty();
    nix::sys::signal::sigprocmask(nix::sys::signal::SigmaskHow::SIG_SETMASK, Some(&empty), None)?;
    Ok(())
}

/// `PR_SET_CHILD_SUBREAPER`: orphaned descendants are re-parented to the caller.
pub fn set_child_subreaper() -> io::Result<()> {
    // SAFETY: PR_SET_CHILD_SUBREAPER takes integer arguments only.
    if unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// `PR_SET_PDEATHSIG`: the signal the caller receives when its parent dies.
pub fn set_parent_death_signal(sig: i32) -> io::Result<()> {
    // SAFETY: PR_SET_PDEATHSIG takes integer arguments only.
    if unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, sig as libc::c_ulong, 0, 0, 0) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// `keyctl(KEYCTL_JOIN_SESSION_KEYRING, name)`: the caller gets a new session keyring called `name`.
pub fn join_session_keyring(name: &str) -> io::Result<i64> {
    const KEYCTL_JOIN_SESSION_KEYRING: libc::c_long = 1;
    let cname = std::ffi::CString::new(name).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    // SAFETY: `cname` is a valid NUL-terminated string for the duration of the call.
    let ret = unsafe { libc::syscall(libc::SYS_keyctl, KEYCTL_JOIN_SESSION_KEYRING, cname.as_ptr()) };
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret)
    }
}

/// `waitpid(-1, WNOHANG)`: reaps one exited child, any child. `Ok(Some((pid, status)))` with the raw
/// wait status (decode it with `libc::WIFEXITED` and friends: nix's `WaitStatus` cannot represent a
/// death by a real-time signal and would lose the child), `Ok(None)` when children exist but none has
/// exited, `Err(ECHILD)` when there are no children.
pub fn reap_any_nohang() -> io::Result<Option<(i32, i32)>> {
    let mut status: libc::c_int = 0;
    // SAFETY: `status` is a valid, writable int for the duration of the call; no other memory is passed.
    let pid = unsafe { libc::waitpid(-1, &mut status, libc::WNOHANG) };
    match pid {
        -1 => Err(io::Error::last_os_error()),
        0 => Ok(None),
        pid => Ok(Some((pid, status))),
    }
}

/// Makes `cmd` run its program with every signal at its default disposition and none blocked
/// ([`reset_signals`], and glibc's internal signals 32 and 33 through the system call, between fork
/// and exec). Without it the standard library may start the program through glibc's `posix_spawn`,
/// whose child sets signal 32 to SIG_IGN; an ignored disposition survives `execve`, a Go runtime
/// (runc) keeps it, and a container would inherit it. A caller that was itself started that way has
/// them ignored too, and glibc's `sigaction` refuses to touch them.
pub fn default_signals_on_exec(cmd: &mut std::process::Command) {
    use std::os::unix::process::CommandExt;
    // SAFETY: the closure runs in the forked child just before execve; it only calls sigaction,
    // sigprocmask and rt_sigaction (async-signal-safe) and allocates nothing, so it is sound after
    // fork even in a multi-threaded parent.
    unsafe {
        cmd.pre_exec(|| {
            reset_signals()?;
            for sig in [32, 33] {
                default_disposition_raw(sig)?;
            }
            Ok(())
        });
    }
}

/// `rt_sigaction(sig, SIG_DFL)` without glibc, which keeps its internal signals to itself.
fn default_disposition_raw(sig: i32) -> io::Result<()> {
    /// The kernel's `struct sigaction` (with `sa_restorer`, the larger layout; all zero but the
    /// handler, so the layout without it reads the same).
    #[repr(C)]
    struct KernelSigaction {
        handler: libc::sighandler_t,
        flags: libc::c_ulong,
        restorer: usize,
        mask: u64,
    }
    let sa = KernelSigaction {
        handler: libc::SIG_DFL,
        flags: 0,
        restorer: 0,
        mask: 0,
    };
    // SAFETY: `sa` is a valid kernel sigaction that outlives the call; the old-action pointer may be
    // null; the last argument is the size of the kernel's sigset (8 bytes).
    let ret = unsafe {
        libc::syscall(
            libc::SYS_rt_sigaction,
            sig,
            &sa as *const KernelSigaction,
            std::ptr::null_mut::<KernelSigaction>(),
            8usize,
        )
    };
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}
