//! `exec`: a new process in a running container. The runtime joins the container's pid (and time)
//! namespace itself, which applies to its next child only, then forks once; the child joins the
//! container's cgroup (through the parent), its user namespace first and then the others, sets up
//! the process exactly as the init did, and execs.

use std::fs::File;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};

use berth_sys::Forked;
use nix::sched::setns;

use super::{CreateError, VerbError};
use crate::plan::{NsKind, ProcessPlan};
use crate::procsetup::{self, ProcError};
use crate::state::{State, Status};
use crate::sync::{Msg, SyncSocket};

#[derive(Debug, Clone, Default)]
pub struct ExecOptions {
    pub root: PathBuf,
    pub id: String,
    pub process: ProcessPlan,
    pub console_socket: Option<PathBuf>,
    pub pid_file: Option<PathBuf>,
    pub detach: bool,
    pub preserve_fds: u32,
    pub ignore_paused: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum ExecError {
    #[error(transparent)]
    Verb(#[from] VerbError),
    #[error("cannot exec in a stopped container")]
    Stopped,
    #[error("cannot exec in a paused container (use --ignore-paused to override)")]
    Paused,
    #[error("open namespace {path}")]
    OpenNs {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("join {0} namespace")]
    Join(&'static str, #[source] nix::Error),
    #[error(transparent)]
    Seccomp(berth_seccomp::Error),
    #[error("connect to console socket {path}")]
    Console {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Create(#[from] CreateError),
    #[error(transparent)]
    Cgroup(#[from] crate::cgroup::Error),
    #[error("fork")]
    Fork(#[source] std::io::Error),
    #[error("send the seccomp notification descriptor to {path}")]
    Listener {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("exec failed: {0}")]
    Child(String),
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

/// Starts the process; returns its pid (the caller waits for it unless detached).
pub fn exec(o: &ExecOptions) -> Result<i32, ExecError> {
    let st = State::load(&o.root, &o.id).map_err(VerbError::from)?;
    match st.status(&o.root) {
        Status::Stopped => return Err(ExecError::Stopped),
        Status::Paused if !o.ignore_paused => return Err(ExecError::Paused),
        _ => {}
    }
    let seccomp = match &st.seccomp {
        Some(s) => Some(
            berth_seccomp::compile_cached(s, Some(&o.root.join(super::create::SECCOMP_CACHE)))
                .map_err(ExecError::Seccomp)?,
        ),
        None => None,
    };
    // Every namespace the container has of its own, opened through its init.
    let mut ns = Vec::new();
    for kind in NsKind::ALL {
        if st.namespaces.has(kind) {
            let path = format!("/proc/{}/ns/{}", st.pid, kind.proc_name());
            let f = File::open(&path).map_err(|source| ExecError::OpenNs { path, source })?;
            ns.push((kind, f));
        }
    }
    if !st.alive() {
        return Err(ExecError::Stopped);
    }
    for (kind, f) in ns.iter().filter(|(k, _)| matches!(k, NsKind::Pid | NsKind::Time)) {
        setns(f.as_fd(), kind.clone_flag()).map_err(|e| ExecError::Join(kind.spec_name(), e))?;
    }
    let console: Option<OwnedFd> = match (&o.console_socket, o.process.terminal) {
        (Some(p), true) => Some(
            UnixStream::connect(p)
                .map_err(|source| ExecError::Console {
                    path: p.clone(),
                    source,
                })?
                .into(),
        ),
        _ => None,
    };
    let cg = st.cgroup.as_ref().map(crate::cgroup::from_json).transpose()?;
    // cgroup v1: the child writes itself into the cgroup (fast); v2: the parent adds it.
    let tasks = match &cg {
        Some(cg) => super::open_task_files(cg)?,
        None => vec![],
    };
    let (parent, child) = SyncSocket::pair()?;
    match berth_sys::fork().map_err(ExecError::Fork)? {
        Forked::Child => {
            let _ = nix::unistd::close(parent.fd().as_raw_fd());
            let err = match exec_child(o, &child, &ns, &tasks, console.as_ref(), seccomp.as_ref()) {
                Ok(never) => match never {},
                Err(e) => e,
            };
            let _ = child.send(&Msg::Error(crate::error_chain(&err)));
            berth_sys::exit_immediately(255)
        }
        Forked::Parent(pid) => {
            drop(child);
            let undo = |e: ExecError| {
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(pid),
                    nix::sys::signal::Signal::SIGKILL,
                );
                let _ = nix::sys::wait::waitpid(nix::unistd::Pid::from_raw(pid), None);
                e
            };
            if let (Some(cg), true) = (&cg, tasks.is_empty()) {
                cg.add_pid(pid).map_err(|e| undo(ExecError::Cgroup(e.into())))?;
            }
            parent.send(&Msg::Go).map_err(|e| undo(e.into()))?;
            let mut msg = parent.recv_with_fd().map_err(|e| undo(e.into()))?;
            if let (Some(Msg::SeccompFd), Some(fd)) = &msg {
                forward_listener(&st, pid, fd).map_err(&undo)?;
                msg = parent.recv_with_fd().map_err(|e| undo(e.into()))?;
            }
            match msg.0 {
                Some(Msg::Ready) | None => {}
                Some(Msg::Error(e)) => {
                    let _ = nix::sys::wait::waitpid(nix::unistd::Pid::from_raw(pid), None);
                    return Err(ExecError::Child(e));
                }
                Some(m) => return Err(undo(ExecError::Child(format!("unexpected message {m:?}")))),
            }
            if let Some(pf) = &o.pid_file {
                super::write_pid_file(pf, pid)?;
            }
            Ok(pid)
        }
    }
}

/// Sends the seccomp notification descriptor of an exec'd process to the container's listener.
fn forward_listener(st: &State, pid: i32, fd: &std::os::fd::OwnedFd) -> Result<(), ExecError> {
    let Some(s) = &st.seccomp else { return Ok(()) };
    let Some(path) = s.listener_path.as_deref() else {
        return Ok(());
    };
    crate::seccomp_listener::forward(
        path,
        s.listener_metadata.as_deref(),
        pid,
        st.oci_json(Path::new("/")),
        fd,
    )
    .map_err(|source| ExecError::Listener {
        path: path.to_string(),
        source,
    })
}

#[derive(Debug, thiserror::Error)]
enum ChildError {
    #[error("wait for the parent")]
    Sync,
    #[error("join the container's cgroup")]
    Cgroup,
    #[error("join {0} namespace")]
    Join(&'static str, #[source] nix::Error),
    #[error(transparent)]
    Proc(#[from] ProcError),
}

fn exec_child(
    o: &ExecOptions,
    sock: &SyncSocket,
    ns: &[(NsKind, File)],
    tasks: &[File],
    console: Option<&OwnedFd>,
    seccomp: Option<&berth_seccomp::Program>,
) -> Result<std::convert::Infallible, ChildError> {
    if sock.recv().ok().flatten() != Some(Msg::Go) {
        return Err(ChildError::Sync);
    }
    // Into the container's cgroup before joining anything (the user namespace would take away the
    // right to write the host's cgroup files).
    crate::init::join_own_cgroup(tasks).map_err(|_| ChildError::Cgroup)?;
    // User namespace first (it grants the rights to join the others), the mount namespace last.
    let order = [
        NsKind::User,
        NsKind::Ipc,
        NsKind::Uts,
        NsKind::Network,
        NsKind::Cgroup,
        NsKind::Mount,
    ];
    for kind in order {
        if let Some((_, f)) = ns.iter().find(|(k, _)| *k == kind) {
            setns(f.as_fd(), kind.clone_flag()).map_err(|e| ChildError::Join(kind.spec_name(), e))?;
        }
    }
    let p = &o.process;
    let _ = nix::unistd::chdir("/");
    if let Some(c) = console {
        procsetup::setup_console(c, p.console_size)?;
    }
    let (exe, listener) = procsetup::prepare_process(p, seccomp, o.preserve_fds)?;
    if let Some(fd) = &listener {
        sock.send_with_fd(&Msg::SeccompFd, std::os::fd::AsFd::as_fd(fd))
            .map_err(|_| ChildError::Sync)?;
    }
    drop(listener);
    sock.send(&Msg::Ready).map_err(|_| ChildError::Sync)?;
    Ok(procsetup::exec(&exe, p)?)
}
