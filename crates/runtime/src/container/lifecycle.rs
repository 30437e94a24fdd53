//! The verbs on an existing container: start, kill, delete, state, list, pause, resume, ps.

use std::fs;
use std::io::{self, Read};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;

use super::VerbError;
use crate::cgroup;
use crate::state::{self, State, StateError, Status};

/// `start`: opens exec.fifo for reading, which lets the init exec the program; then the poststart
/// hooks. Returns the hook failures (warnings, not errors, as the specification says).
pub fn start(root: &Path, id: &str) -> Result<Vec<crate::hooks::HookError>, VerbError> {
    let mut st = State::load(root, id)?;
    match st.status(root) {
        Status::Created => {}
        Status::Stopped => return Err(VerbError::StartStopped),
        Status::Running => return Err(VerbError::StartRunning),
        s => return Err(VerbError::StartState(s.as_str())),
    }
    let fifo_path = state::dir(root, id).join(state::EXEC_FIFO);
    let mut fifo = fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open(&fifo_path)
        .map_err(|e| VerbError::Fifo(fifo_path.clone(), e))?;
    // The init writes one byte once it has the fifo open. Wait for it, or for the init to die
    // (its pidfd becomes readable), whichever comes first.
    let pidfd = berth_sys::pidfd_open(st.pid).ok();
    let mut buf = [0u8; 8];
    loop {
        match fifo.read(&mut buf) {
            Ok(n) if n > 0 => break,
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            Err(e) => return Err(VerbError::Fifo(fifo_path, e)),
        }
        if !st.alive() {
            return Err(VerbError::StartStopped);
        }
        wait_readable(&fifo, pidfd.as_ref());
    }
    let _ = fs::remove_file(&fifo_path);
    st.started = true;
    st.save(root)?;
    let json = st.hook_json(Status::Running);
    Ok(crate::hooks::run_all_lenient(
        "poststart",
        &st.hooks.poststart,
        &json,
    ))
}

/// Sleeps until the fifo has data or the process behind `pidfd` exits (short timeout: a fifo that no
/// writer has opened yet never reports end-of-file to poll).
fn wait_readable(fifo: &fs::File, pidfd: Option<&std::os::fd::OwnedFd>) {
    use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
    use std::os::fd::AsFd;
    let mut fds = vec![PollFd::new(fifo.as_fd(), PollFlags::POLLIN)];
    if let Some(p) = pidfd {
        fds.push(PollFd::new(p.as_fd(), PollFlags::POLLIN));
    }
    let _ = poll(&mut fds, PollTimeout::from(5u8));
}

/// Sends `signal` to the init (through a pidfd, so a recycled pid is never hit), or to every process
/// of the container with `all`.
pub fn kill(root: &Path, id: &str, signal: i32, all: bool) -> Result<(), VerbError> {
    let st = State::load(root, id)?;
    if st.status(root) == Status::Stopped {
        return Err(VerbError::KillStopped);
    }
    if all {
        let cg = cgroup_of(&st)?;
        if signal == libc::SIGKILL && st.status(root) == Status::Paused {
            let _ = cg.thaw();
        }
        return Ok(cg.kill_all(signal)?);
    }
    signal_init(&st, signal)
}

fn signal_init(st: &State, signal: i32) -> Result<(), VerbError> {
    let kerr = |e: io::Error| VerbError::Kill {
        signal,
        pid: st.pid,
        source: nix::Error::from_raw(e.raw_os_error().unwrap_or(libc::ESRCH)),
    };
    let pidfd = berth_sys::pidfd_open(st.pid).map_err(kerr)?;
    // Same pid, same start time: the pidfd is the container's init, not a successor.
    if !st.alive() {
        return Err(VerbError::KillStopped);
    }
    berth_sys::pidfd_send_signal(std::os::fd::AsFd::as_fd(&pidfd), signal).map_err(kerr)
}

/// `delete`: a stopped or created container is removed; a running one only with `force` (killed
/// first). With `force`, a container that does not exist is not an error.
pub fn delete(root: &Path, id: &str, force: bool) -> Result<(), VerbError> {
    let st = match State::load(root, id) {
        Ok(s) => s,
        Err(StateError::NotFound) if force => {
            let _ = state::remove_dir(root, id);
            return Ok(());
        }
        Err(e) => return Err(e.into()),
    };
    match st.status(root) {
        Status::Stopped | Status::Created => {}
        s if !force => return Err(VerbError::DeleteRunning(id.to_string(), s.as_str())),
        _ => {}
    }
    destroy(root, &st)
}

/// Kills whatever is left, waits for the init to go, removes the cgroup, runs poststop hooks and
/// removes the state.
fn destroy(root: &Path, st: &State) -> Result<(), VerbError> {
    let cg = st.cgroup.as_ref().map(|_| cgroup_of(st)).transpose()?;
    if let Some(cg) = &cg {
        let _ = cg.thaw();
        let _ = cg.kill_all(libc::SIGKILL);
    }
    if st.alive() {
        let _ = signal_init(st, libc::SIGKILL);
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    while st.alive() && Instant::now() < deadline {
        // Reap it if it is our child (run); otherwise its parent does.
        let _ = nix::sys::wait::waitpid(
            nix::unistd::Pid::from_raw(st.pid),
            Some(nix::sys::wait::WaitPidFlag::WNOHANG),
        );
        std::thread::sleep(Duration::from_millis(1));
    }
    if let Some(cg) = &cg {
        cg.destroy()?;
    }
    let json = st.hook_json(Status::Stopped);
    for e in crate::hooks::run_all_lenient("poststop", &st.hooks.poststop, &json) {
        crate::warn(&e);
    }
    Ok(state::remove_dir(root, &st.id)?)
}

/// `state`: runc's JSON of the container.
pub fn state(root: &Path, id: &str) -> Result<serde_json::Value, VerbError> {
    Ok(State::load(root, id)?.oci_json(root))
}

/// `list`: the JSON of every container under `root`.
pub fn list(root: &Path) -> Result<Vec<serde_json::Value>, VerbError> {
    let mut out = Vec::new();
    for id in state::list_ids(root)? {
        if let Ok(st) = State::load(root, &id) {
            out.push(st.oci_json(root));
        }
    }
    Ok(out)
}

pub fn pause(root: &Path, id: &str) -> Result<(), VerbError> {
    let st = State::load(root, id)?;
    match st.status(root) {
        Status::Running | Status::Created => Ok(cgroup_of(&st)?.freeze()?),
        Status::Paused => Ok(()),
        _ => Err(VerbError::NotRunning),
    }
}

pub fn resume(root: &Path, id: &str) -> Result<(), VerbError> {
    let st = State::load(root, id)?;
    match st.status(root) {
        Status::Paused => Ok(cgroup_of(&st)?.thaw()?),
        _ => Err(VerbError::NotRunning),
    }
}

/// `ps`: the pids of every process in the container's cgroup.
pub fn ps(root: &Path, id: &str) -> Result<Vec<i32>, VerbError> {
    let st = State::load(root, id)?;
    if st.status(root) == Status::Stopped {
        return Err(VerbError::NotRunning);
    }
    Ok(cgroup_of(&st)?.pids()?)
}

/// Waits for a child process (the init under `run`) and returns its exit status the shell's way:
/// the code, or 128 + the signal that killed it.
pub fn wait_exit(pid: i32) -> io::Result<i32> {
    use nix::sys::wait::{waitpid, WaitStatus};
    loop {
        match waitpid(nix::unistd::Pid::from_raw(pid), None) {
            Ok(WaitStatus::Exited(_, code)) => return Ok(code),
            Ok(WaitStatus::Signaled(_, sig, _)) => return Ok(128 + sig as i32),
            Ok(_) => continue,
            Err(nix::Error::EINTR) => continue,
            Err(e) => return Err(e.into()),
        }
    }
}

fn cgroup_of(st: &State) -> Result<cgroup::Cgroup, VerbError> {
    let v = st.cgroup.as_ref().ok_or(VerbError::NoCgroup)?;
    Ok(cgroup::from_json(v)?)
}

/// Parses a signal as runc does: a number, or a name with or without the SIG prefix.
pub fn parse_signal(s: &str) -> Option<i32> {
    if let Ok(n) = s.parse::<i32>() {
        return (1..=64).contains(&n).then_some(n);
    }
    let upper = s.to_ascii_uppercase();
    let name = if upper.starts_with("SIG") {
        upper
    } else {
        format!("SIG{upper}")
    };
    if let Some(rt) = name.strip_prefix("SIGRTMIN") {
        let base = libc::SIGRTMIN();
        return match rt {
            "" => Some(base),
            _ => rt
                .strip_prefix('+')
                .and_then(|n| n.parse::<i32>().ok())
                .map(|n| base + n)
                .filter(|n| *n <= libc::SIGRTMAX()),
        };
    }
    if name == "SIGRTMAX" {
        return Some(libc::SIGRTMAX());
    }
    name.parse::<Signal>().ok().map(|s| s as i32)
}

/// `update`: new resource limits for a running (or created, or paused) container's cgroup.
pub fn update(root: &Path, id: &str, resources: &berth_spec::Resources) -> Result<(), VerbError> {
    let st = State::load(root, id)?;
    if st.status(root) == Status::Stopped {
        return Err(VerbError::NotRunning);
    }
    Ok(cgroup_of(&st)?.update(resources)?)
}

#[cfg(test)]
mod tests {
    use super::parse_signal;

    #[test]
    fn signals() {
        assert_eq!(parse_signal("9"), Some(9));
        assert_eq!(parse_signal("KILL"), Some(9));
        assert_eq!(parse_signal("SIGTERM"), Some(15));
        assert_eq!(parse_signal("term"), Some(15));
        assert_eq!(parse_signal("SIGRTMIN+1"), Some(libc::SIGRTMIN() + 1));
        assert_eq!(parse_signal("NOPE"), None);
        assert_eq!(parse_signal("0"), None);
        assert_eq!(parse_signal("65"), None);
    }
}
