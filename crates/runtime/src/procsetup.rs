//! The last steps before `execve`, shared by the container's init and by `exec`: terminal, rlimits,
//! user and groups, capabilities, no_new_privs, seccomp, working directory, and the executable lookup.

use std::ffi::CString;
use std::io;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use nix::fcntl::OFlag;
use nix::pty::{grantpt, posix_openpt, ptsname_r, unlockpt};
use nix::unistd::{dup2, setsid, Gid, Uid};

use crate::plan::{CapSets, ProcessPlan};

#[derive(Debug, thiserror::Error)]
pub enum ProcError {
    #[error("open the container's pty")]
    Pty(#[source] nix::Error),
    #[error("send the pty master to the console socket")]
    SendConsole(#[source] io::Error),
    #[error("make the pty the controlling terminal")]
    Ctty(#[source] io::Error),
    #[error("set rlimit {resource}")]
    Rlimit {
        resource: i32,
        #[source]
        source: io::Error,
    },
    #[error("write oom_score_adj {0}")]
    Oom(i32, #[source] io::Error),
    #[error("set user {uid}:{gid}")]
    User {
        uid: u32,
        gid: u32,
        #[source]
        source: io::Error,
    },
    #[error("set additional groups {0:?}")]
    Groups(Vec<u32>, #[source] nix::Error),
    #[error("set capabilities")]
    Caps(#[source] io::Error),
    #[error("set no_new_privs")]
    NoNewPrivs(#[source] io::Error),
    #[error("load the seccomp filter")]
    Seccomp(#[source] berth_seccomp::Error),
    #[error("chdir to cwd {0}")]
    Cwd(String, #[source] nix::Error),
    #[error("exec: {0:?}: executable file not found in $PATH")]
    NotFound(String),
    #[error("exec: {0:?}: permission denied")]
    NotExecutable(String),
    #[error("exec {path}")]
    Exec {
        path: String,
        #[source]
        source: nix::Error,
    },
    #[error("apply apparmor profile {0:?}")]
    AppArmor(String, #[source] io::Error),
    #[error("prepare the process")]
    Io(#[source] io::Error),
}

/// Opens a pty in the container's /dev/pts (after pivot_root), sends the master to `console_socket`
/// as runc does (SCM_RIGHTS, the payload naming the master), and makes the slave the process's
/// controlling terminal and stdio.
pub fn setup_console(console_socket: &OwnedFd, size: Option<(u16, u16)>) -> Result<(), ProcError> {
    let master = posix_openpt(OFlag::O_RDWR | OFlag::O_NOCTTY | OFlag::O_CLOEXEC).map_err(ProcError::Pty)?;
    grantpt(&master).map_err(ProcError::Pty)?;
    unlockpt(&master).map_err(ProcError::Pty)?;
    let name = ptsname_r(&master).map_err(ProcError::Pty)?;
    let slave = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(libc::O_NOCTTY)
        .open(&name)
        .map_err(|e| ProcError::Pty(nix::Error::from_raw(e.raw_os_error().unwrap_or(libc::EIO))))?;
    if let Some((rows, cols)) = size {
        let _ = berth_sys::term::set_window_size(slave.as_fd(), rows, cols);
    }
    berth_sys::send_fd(console_socket.as_fd(), b"/dev/ptmx", master.as_fd())
        .map_err(ProcError::SendConsole)?;
    drop(master);
    setsid().map_err(|e| ProcError::Ctty(e.into()))?;
    berth_sys::term::set_controlling_terminal(slave.as_fd()).map_err(ProcError::Ctty)?;
    for fd in 0..3 {
        dup2(slave.as_raw_fd(), fd).map_err(|e| ProcError::Ctty(e.into()))?;
    }
    Ok(())
}

/// rlimits and oom_score_adj (done while still privileged).
pub fn set_limits(p: &ProcessPlan) -> Result<(), ProcError> {
    for r in &p.rlimits {
        berth_sys::prlimit(r.resource, r.soft, r.hard).map_err(|source| ProcError::Rlimit {
            resource: r.resource,
            source,
        })?;
    }
    if let Some(adj) = p.oom_score_adj {
        std::fs::write("/proc/self/oom_score_adj", adj.to_string()).map_err(|e| ProcError::Oom(adj, e))?;
    }
    Ok(())
}

/// Drops the bounding set to `caps.bounding`, switches to the process's user (keeping the permitted
/// capabilities across the switch), then sets the other sets and the ambient set.
pub fn set_user_and_caps(p: &ProcessPlan, setgroups_allowed: bool) -> Result<(), ProcError> {
    let last = berth_sys::caps::last_cap();
    for cap in 0..=last {
        if p.caps.bounding & (1u64 << cap) == 0 {
            berth_sys::caps::drop_bounding(cap).map_err(ProcError::Caps)?;
        }
    }
    if setgroups_allowed {
        let groups: Vec<Gid> = p.additional_gids.iter().map(|g| Gid::from_raw(*g)).collect();
        nix::unistd::setgroups(&groups).map_err(|e| ProcError::Groups(p.additional_gids.clone(), e))?;
    }
    berth_sys::caps::set_keep_caps(true).map_err(ProcError::Caps)?;
    let uerr = |e: nix::Error| ProcError::User {
        uid: p.uid,
        gid: p.gid,
        source: e.into(),
    };
    let gid = Gid::from_raw(p.gid);
    nix::unistd::setresgid(gid, gid, gid).map_err(uerr)?;
    let uid = Uid::from_raw(p.uid);
    nix::unistd::setresuid(uid, uid, uid).map_err(uerr)?;
    berth_sys::caps::set_keep_caps(false).map_err(ProcError::Caps)?;
    apply_caps(&p.caps, last)
}

fn apply_caps(c: &CapSets, last: u8) -> Result<(), ProcError> {
    let known = if last >= 63 {
        u64::MAX
    } else {
        (1u64 << (last + 1)) - 1
    };
    berth_sys::caps::set_caps(c.effective & known, c.permitted & known, c.inheritable & known)
        .map_err(ProcError::Caps)?;
    berth_sys::caps::clear_ambient().map_err(ProcError::Caps)?;
    // The kernel only lets a capability be ambient if it is permitted and inheritable. runc's own
    // default spec lists ambient capabilities without inheritable ones, and runc skips those
    // silently: so does berth.
    let raisable = c.ambient & c.permitted & c.inheritable;
    for cap in 0..=last {
        if raisable & (1u64 << cap) != 0 {
            berth_sys::caps::raise_ambient(cap).map_err(ProcError::Caps)?;
        }
    }
    Ok(())
}

/// Everything between the namespaces and the exec, for the init and for `exec` alike: limits, umask,
/// working directory, the program's path, AppArmor, descriptors and signals, then the seccomp filter
/// and the user and capabilities in the order the kernel needs (without no_new_privs, loading a
/// filter takes CAP_SYS_ADMIN, so it comes before the capabilities are dropped). Returns the path to
/// exec, and the seccomp notification descriptor when the filter has SCMP_ACT_NOTIFY rules.
pub fn prepare_process(
    p: &ProcessPlan,
    seccomp: Option<&berth_seccomp::Program>,
    preserve_fds: u32,
) -> Result<(PathBuf, Option<OwnedFd>), ProcError> {
    set_limits(p)?;
    if let Some(mask) = p.umask {
        nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(mask));
    }
    // As root first; if that is refused (a directory only the user may enter), again as the user.
    let cwd_early = nix::unistd::chdir(p.cwd.as_str());
    let exe = find_executable(&p.args[0], &p.env)?;
    set_apparmor(p.apparmor_profile.as_deref())?;
    prepare_exec(preserve_fds)?;
    let load = || -> Result<Option<OwnedFd>, ProcError> {
        match seccomp {
            Some(prog) => prog.load().map_err(ProcError::Seccomp),
            None => Ok(None),
        }
    };
    let mut listener = None;
    if !p.no_new_privileges {
        listener = load()?;
    }
    set_user_and_caps(p, setgroups_allowed())?;
    if cwd_early.is_err() {
        nix::unistd::chdir(p.cwd.as_str()).map_err(|e| ProcError::Cwd(p.cwd.clone(), e))?;
    }
    if p.no_new_privileges {
        berth_sys::caps::set_no_new_privs().map_err(ProcError::NoNewPrivs)?;
        listener = load()?;
    }
    Ok((exe, listener))
}

/// setgroups(2) is refused in a user namespace whose `setgroups` file says "deny".
pub fn setgroups_allowed() -> bool {
    std::fs::read_to_string("/proc/self/setgroups")
        .map(|s| s.trim() != "deny")
        .unwrap_or(true)
}

/// Whether the host runs AppArmor (the module is loaded and enabled).
pub fn apparmor_enabled() -> bool {
    std::fs::read_to_string("/sys/module/apparmor/parameters/enabled")
        .map(|s| s.trim() == "Y")
        .unwrap_or(false)
}

/// Asks AppArmor to confine the next exec with `profile`; an error when the host has no AppArmor.
pub fn set_apparmor(profile: Option<&str>) -> Result<(), ProcError> {
    let Some(profile) = profile else {
        return Ok(());
    };
    if !apparmor_enabled() {
        return Err(ProcError::AppArmor(
            profile.to_string(),
            io::Error::other("AppArmor is not enabled on this host"),
        ));
    }
    let attr = if Path::new("/proc/self/attr/apparmor/exec").exists() {
        "/proc/self/attr/apparmor/exec"
    } else {
        "/proc/self/attr/exec"
    };
    std::fs::write(attr, format!("exec {profile}")).map_err(|e| ProcError::AppArmor(profile.to_string(), e))
}

/// Finds the program to run: a path with a `/` as is, otherwise searched in the PATH of the process's
/// environment (a default PATH when it has none), as execvp would.
pub fn find_executable(arg0: &str, env: &[String]) -> Result<PathBuf, ProcError> {
    if arg0.contains('/') {
        let p = PathBuf::from(arg0);
        return match std::fs::metadata(&p) {
            Ok(m) if m.is_file() && m.permissions().mode() & 0o111 != 0 => Ok(p),
            Ok(_) => Err(ProcError::NotExecutable(arg0.into())),
            Err(_) => Err(ProcError::NotFound(arg0.into())),
        };
    }
    let path = env
        .iter()
        .rev()
        .find_map(|e| e.strip_prefix("PATH="))
        .unwrap_or("/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");
    for dir in path.split(':') {
        let dir = if dir.is_empty() { "." } else { dir };
        let cand = Path::new(dir).join(arg0);
        if let Ok(m) = std::fs::metadata(&cand) {
            if m.is_file() && m.permissions().mode() & 0o111 != 0 {
                return Ok(cand);
            }
        }
    }
    Err(ProcError::NotFound(arg0.into()))
}

/// What must happen before the program runs but may not happen after the seccomp filter is loaded
/// (the profile may not allow it): signals back to their defaults, every descriptor from
/// `3 + preserve_fds` up marked close-on-exec.
pub fn prepare_exec(preserve_fds: u32) -> Result<(), ProcError> {
    berth_sys::process::reset_signals().map_err(ProcError::Io)?;
    berth_sys::close_range_from(3 + preserve_fds).map_err(ProcError::Io)
}

/// Replaces the process with the program (after [`prepare_exec`]).
pub fn exec(path: &Path, p: &ProcessPlan) -> Result<std::convert::Infallible, ProcError> {
    let cpath = CString::new(path.as_os_str().as_encoded_bytes())
        .map_err(|_| ProcError::NotFound(path.display().to_string()))?;
    let args: Vec<CString> = p
        .args
        .iter()
        .map(|a| CString::new(a.as_str()).unwrap_or_default())
        .collect();
    let env: Vec<CString> = p
        .env
        .iter()
        .map(|a| CString::new(a.as_str()).unwrap_or_default())
        .collect();
    nix::unistd::execve(&cpath, &args, &env).map_err(|source| ProcError::Exec {
        path: path.display().to_string(),
        source,
    })
}
