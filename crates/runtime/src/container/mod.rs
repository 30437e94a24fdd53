//! The runtime's verbs on containers: create, start, kill, delete, state, pause/resume, ps, exec.
//! Each verb is a function over the state root; the CLI maps flags to their options.

mod create;
mod exec;
mod lifecycle;
mod spawn;

use std::io;
use std::path::PathBuf;

pub(crate) use create::open_task_files;
pub use create::{create, load_spec, resolve_rootfs, write_pid_file};
pub use exec::{exec, ExecOptions};
pub use lifecycle::{
    delete, kill, list, parse_signal as lifecycle_signal, pause, ps, resume, start, state, update, wait_exit,
};

use crate::plan::PlanError;
use crate::state::StateError;

/// Options of `create` (and `run`).
#[derive(Debug, Clone, Default)]
pub struct CreateOptions {
    pub root: PathBuf,
    pub id: String,
    pub bundle: PathBuf,
    pub console_socket: Option<PathBuf>,
    pub pid_file: Option<PathBuf>,
    pub no_pivot: bool,
    pub no_new_keyring: bool,
    pub preserve_fds: u32,
    pub systemd_cgroup: bool,
    /// Whether the caller will not stay attached (create, run --detach): a terminal then needs a
    /// console socket.
    pub detach: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum CreateError {
    #[error(transparent)]
    State(#[from] StateError),
    #[error("bundle {path}")]
    Bundle {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("read {path}")]
    ReadConfig {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("parse {path}")]
    ParseConfig {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error("invalid config.json: {0}")]
    Plan(#[from] PlanError),
    #[error("root.path {path}")]
    Rootfs {
        path: String,
        #[source]
        source: io::Error,
    },
    #[error("root.path {path}: {message}")]
    RootfsEscape { path: String, message: String },
    #[error(transparent)]
    Seccomp(berth_seccomp::Error),
    #[error(transparent)]
    Cgroup(#[from] crate::cgroup::Error),
    #[error("cannot allocate tty if berth-runtime will detach without setting console socket")]
    NeedConsoleSocket,
    #[error("cannot use console socket if berth-runtime will not detach or allocate tty")]
    ConsoleWithoutTerminal,
    #[error("connect to console socket {path}")]
    Console {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("create exec fifo {0}")]
    Fifo(PathBuf, #[source] io::Error),
    #[error("open namespace {path}")]
    OpenNamespace {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("{0}")]
    Namespace(String, #[source] nix::Error),
    #[error("clone the container's init")]
    Clone(#[source] io::Error),
    #[error("write {path}")]
    IdMap {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("{0}")]
    Hook(#[source] crate::hooks::HookError),
    #[error("container init: {0}")]
    Init(String),
    #[error("send the seccomp notification descriptor to {path}")]
    Listener {
        path: String,
        #[source]
        source: io::Error,
    },
    #[error("open {path}")]
    Tasks {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("write pid file {path}")]
    PidFile {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error(transparent)]
    Io(#[from] io::Error),
}

#[derive(Debug, thiserror::Error)]
pub enum VerbError {
    #[error(transparent)]
    State(#[from] StateError),
    #[error("cannot start a container that has stopped")]
    StartStopped,
    #[error("cannot start an already running container")]
    StartRunning,
    #[error("cannot start a container in the {0} state")]
    StartState(&'static str),
    #[error("open exec fifo {0}")]
    Fifo(PathBuf, #[source] io::Error),
    #[error("container is not running")]
    NotRunning,
    #[error("container is paused")]
    Paused,
    #[error("cannot delete container {0} that is not stopped: {1}")]
    DeleteRunning(String, &'static str),
    #[error("send signal {signal} to {pid}")]
    Kill {
        signal: i32,
        pid: i32,
        #[source]
        source: nix::Error,
    },
    #[error("container not running")]
    KillStopped,
    #[error(transparent)]
    Cgroup(#[from] crate::cgroup::Error),
    #[error("the container has no cgroup")]
    NoCgroup,
    #[error("{0}")]
    Hook(#[source] crate::hooks::HookError),
    #[error(transparent)]
    Io(#[from] io::Error),
}

impl From<berth_cgroups::Error> for VerbError {
    fn from(e: berth_cgroups::Error) -> Self {
        VerbError::Cgroup(e.into())
    }
}
