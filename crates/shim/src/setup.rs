//! From the command line to a running monitor (PROTOCOL.md, "Invocation"):
//!
//! ```text
//!  berthd                 shim (first)             shim (second, the monitor)         runtime
//!    | spawn, stdout=sync pipe |                         |                                |
//!    |------------------------>| fork ------------------>| setsid, stderr -> shim.log,     |
//!    |<-- exits, reaped -------|                         | subreaper, socket, shim.pid     |
//!    |                                                   | create --pid-file init.pid ---->|
//!    |                                                   |<-- exit status, stderr ---------|
//!    |<-------------- one JSON line, pipe closed --------|                                |
//!    |                                                   | poll loop ...                   |
//! ```

use std::fs;
use std::io::{self, Write};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

use nix::sys::signal::{SigSet, SigmaskHow, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};

use crate::args::{Args, Mode};
use crate::runtime::{error_message, Runtime};
use crate::sock::{Console, SockError};
use crate::stdio::Stdio;

#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    #[error("fork the shim")]
    Fork(#[source] io::Error),
    #[error("setsid")]
    Setsid(#[source] nix::Error),
    #[error("open diagnostics {0}")]
    Diagnostics(PathBuf, #[source] io::Error),
    #[error("become a child subreaper")]
    Subreaper(#[source] io::Error),
    #[error("write pid file {0}")]
    PidFile(PathBuf, #[source] io::Error),
    #[error("read pid file {0}")]
    ReadPid(PathBuf, #[source] io::Error),
    #[error("pid file {0} holds no pid")]
    BadPid(PathBuf),
    #[error("block signals")]
    Signals(#[source] nix::Error),
    #[error("make the process's stdio")]
    Stdio(#[source] io::Error),
    #[error(transparent)]
    Sock(#[from] SockError),
    #[error("run {0}")]
    Spawn(PathBuf, #[source] io::Error),
    /// The runtime's own message.
    #[error("{0}")]
    Runtime(String),
    #[error("set up the terminal")]
    Terminal(#[source] io::Error),
    #[error(transparent)]
    Log(#[from] crate::log::LogError),
}

/// Forks; the original process exits at once, the second goes on as the monitor in a session of its
/// own, with its diagnostics in `shim.log`, as a child subreaper.
pub fn daemonize(a: &Args) -> Result<(), SetupError> {
    // 1. fork: berthd reaps the first process at once and is not the monitor's parent.
    if let berth_sys::Forked::Parent(_) = berth_sys::fork().map_err(SetupError::Fork)? {
        berth_sys::exit_immediately(0);
    }
    // 2. a session of its own: no terminal, no signals for berthd's process group.
    nix::unistd::setsid().map_err(SetupError::Setsid)?;
    // 3. diagnostics; stdout stays the sync pipe until the sync line is written.
    let log_path = a.file("shim", "log");
    let log = fs::OpenOptions::new()
        .append(true)
        .create(true)
        .open(&log_path)
        .map_err(|e| SetupError::Diagnostics(log_path.clone(), e))?;
    nix::unistd::dup2(log.as_raw_fd(), 2).map_err(|e| SetupError::Diagnostics(log_path, e.into()))?;
    // 4. the cwd of berthd might be unmounted later; every path is absolute.
    let _ = nix::unistd::chdir("/");
    // 5. the container's init (and an exec'd process) is re-parented to us when the runtime exits.
    berth_sys::process::set_child_subreaper().map_err(SetupError::Subreaper)
}

/// `shim.pid` (exec: `shim-EXECID.pid`), written once the socket is ours.
pub fn write_pid_file(a: &Args) -> Result<(), SetupError> {
    let path = a.file("shim", "pid");
    write_atomically(&path, format!("{}\n", std::process::id()).as_bytes())
        .map_err(|e| SetupError::PidFile(path, e))
}

/// Blocks SIGCHLD (read from the signalfd) and SIGTERM, SIGINT, SIGHUP (read and ignored: berthd
/// stops containers with KILL requests). SIGPIPE is already ignored by the Rust runtime. Children get
/// an empty mask and SIGPIPE back from `std::process::Command`.
pub fn signals() -> Result<SignalFd, SetupError> {
    let mut set = SigSet::empty();
    for s in [Signal::SIGCHLD, Signal::SIGTERM, Signal::SIGINT, Signal::SIGHUP] {
        set.add(s);
    }
    nix::sys::signal::sigprocmask(SigmaskHow::SIG_BLOCK, Some(&set), None).map_err(SetupError::Signals)?;
    SignalFd::with_flags(&set, SfdFlags::SFD_CLOEXEC | SfdFlags::SFD_NONBLOCK).map_err(SetupError::Signals)
}

/// Writes `path` through a temporary file and a rename.
pub fn write_atomically(path: &Path, data: &[u8]) -> io::Result<()> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    let mut f = fs::File::create(&tmp)?;
    f.write_all(data)?;
    f.sync_data()?;
    fs::rename(&tmp, path)
}

pub fn read_pid(path: &Path) -> Result<i32, SetupError> {
    let text = fs::read_to_string(path).map_err(|e| SetupError::ReadPid(path.to_path_buf(), e))?;
    match text.trim().parse::<i32>() {
        Ok(p) if p > 0 => Ok(p),
        _ => Err(SetupError::BadPid(path.to_path_buf())),
    }
}

/// The console socket for the runtime, with a terminal: `console.sock` (exec: `console-EXECID.sock`).
pub fn console(a: &Args) -> Result<Option<Console>, SetupError> {
    if !a.tty {
        return Ok(None);
    }
    Ok(Some(Console::new(&a.file("console", "sock"))?))
}

/// Runs the runtime's create (container mode) or exec (exec mode) with the process's stdio. On
/// success the runtime has made something (a container, a process) and [`collect`] takes it over.
pub fn run_runtime(a: &Args, rt: &Runtime, io: &mut Stdio) -> Result<Option<Console>, SetupError> {
    let console = console(a)?;
    let socket = console.as_ref().map(|c| c.path.as_path());
    let pid_file = a.process_pid_file();
    let _ = fs::remove_file(&pid_file);
    let argv = match &a.mode {
        Mode::Container { bundle, .. } => rt.create(bundle, &pid_file, socket),
        Mode::Exec { process, .. } => rt.exec(&pid_file, process, socket),
    };
    let child = io
        .take_child()
        .ok_or_else(|| SetupError::Runtime("the process was started already".into()))?;
    // The Command owns the child's ends and closes them when it is dropped after the wait, so that
    // the shim holds none of them.
    let status = rt
        .command(&argv)
        .stdin(child.stdin)
        .stdout(child.stdout)
        .stderr(child.stderr)
        .status()
        .map_err(|e| SetupError::Spawn(rt.path.clone(), e))?;
    if !status.success() {
        let out = io.runtime_output();
        return Err(SetupError::Runtime(
            error_message(&out).unwrap_or_else(|| format!("{} failed: {status}", rt.path.display())),
        ));
    }
    Ok(console)
}

/// After a successful [`run_runtime`]: the pid the runtime wrote and, with a terminal, the master
/// it sent.
pub fn collect(a: &Args, io: &mut Stdio, console: Option<Console>) -> Result<i32, SetupError> {
    let pid = read_pid(&a.process_pid_file())?;
    if let Some(c) = console {
        let master = c.receive()?;
        io.set_master(master).map_err(SetupError::Terminal)?;
    }
    Ok(pid)
}

/// What a failed set-up removes: the socket and pid file it made, the container it created.
#[derive(Default)]
pub struct Undo {
    pub files: Vec<PathBuf>,
    pub container: bool,
}

impl Undo {
    pub fn run(&self, rt: &Runtime) {
        if self.container {
            if let Err(e) = rt.run(&rt.verb(&["delete", "--force"], &[])) {
                crate::diag(&format!("runtime delete: {e}"));
            }
        }
        for f in &self.files {
            let _ = fs::remove_file(f);
        }
    }
}
