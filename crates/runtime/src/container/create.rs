//! `create`: plan the container, make its state directory, fifo and cgroup, clone the init into its
//! namespaces and drive it through the protocol of [`crate::sync`] until it waits on exec.fifo.
//! Anything that fails removes everything made so far (the [`Undo`] guard).

use std::fs;
use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};

use nix::sched::CloneFlags;
use nix::sys::stat::Mode;

use super::{spawn, CreateError, CreateOptions};
use crate::cgroup;
use crate::init::InitArgs;
use crate::plan::{self, NsKind, Plan};
use crate::state::{self, State, Status};
use crate::sync::{Msg, SyncSocket};

/// The compiled seccomp filters, under the state root (a container id cannot start with a dot).
pub(crate) const SECCOMP_CACHE: &str = ".seccomp-cache";

/// Removes what a failed `create` made, in reverse order.
pub(crate) struct Undo<'a> {
    pub root: &'a Path,
    pub id: String,
    pub dir_made: bool,
    pub cgroup: Option<cgroup::Cgroup>,
    pub pids: Vec<i32>,
    pub armed: bool,
}

impl Drop for Undo<'_> {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        for pid in &self.pids {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(*pid),
                nix::sys::signal::Signal::SIGKILL,
            );
            let _ = nix::sys::wait::waitpid(nix::unistd::Pid::from_raw(*pid), None);
        }
        if let Some(cg) = &self.cgroup {
            let _ = cg.kill_all(libc::SIGKILL);
            let _ = cg.destroy();
        }
        if self.dir_made {
            let _ = state::remove_dir(self.root, &self.id);
        }
    }
}

/// Reads and parses `<bundle>/config.json`.
pub fn load_spec(bundle: &Path) -> Result<berth_spec::Spec, CreateError> {
    let path = bundle.join("config.json");
    let data = fs::read(&path).map_err(|source| CreateError::ReadConfig {
        path: path.clone(),
        source,
    })?;
    berth_spec::from_slice(&data).map_err(|source| CreateError::ParseConfig { path, source })
}

/// The rootfs directory: `root.path` relative to the bundle (it may not leave it, symlinks included)
/// or absolute.
pub fn resolve_rootfs(bundle: &Path, root_path: &str) -> Result<PathBuf, CreateError> {
    let err = |source| CreateError::Rootfs {
        path: root_path.to_string(),
        source,
    };
    let p = if root_path.starts_with('/') {
        PathBuf::from(root_path)
    } else {
        let resolved = crate::paths::resolve_in_root(bundle, &format!("/{root_path}")).map_err(|e| {
            CreateError::RootfsEscape {
                path: root_path.to_string(),
                message: e.to_string(),
            }
        })?;
        crate::paths::host_path(bundle, &resolved)
    };
    let real = fs::canonicalize(&p).map_err(err)?;
    if !real.is_dir() {
        return Err(err(io::Error::from_raw_os_error(libc::ENOTDIR)));
    }
    Ok(real)
}

pub fn create(o: &CreateOptions) -> Result<i32, CreateError> {
    state::check_id(&o.id)?;
    let bundle = fs::canonicalize(&o.bundle).map_err(|source| CreateError::Bundle {
        path: o.bundle.clone(),
        source,
    })?;
    let spec = load_spec(&bundle)?;
    let plan = plan::plan(&o.id, &bundle, &spec)?;
    let rootfs = resolve_rootfs(&bundle, &plan.root_path)?;
    let linux = spec.linux.clone().unwrap_or_default();
    let seccomp = match &linux.seccomp {
        Some(s) => Some(
            berth_seccomp::compile_cached(s, Some(&o.root.join(SECCOMP_CACHE)))
                .map_err(CreateError::Seccomp)?,
        ),
        None => None,
    };
    check_console(&plan, o)?;
    let cg_plan = cgroup::plan(
        &o.id,
        linux.cgroups_path.as_deref(),
        linux.resources.as_ref(),
        &plan.devices,
        o.systemd_cgroup,
    )?;

    // From here on, everything made is undone on failure.
    let dir = state::create_dir(&o.root, &o.id)?;
    let mut undo = Undo {
        root: &o.root,
        id: o.id.clone(),
        dir_made: true,
        cgroup: None,
        pids: vec![],
        armed: true,
    };
    let fifo_path = dir.join(state::EXEC_FIFO);
    nix::unistd::mkfifo(&fifo_path, Mode::from_bits_truncate(0o622))
        .map_err(|e| CreateError::Fifo(fifo_path.clone(), e.into()))?;
    // mkfifo's mode went through the umask; the init may run as a mapped, unprivileged user.
    fs::set_permissions(&fifo_path, std::os::unix::fs::PermissionsExt::from_mode(0o622))
        .map_err(|e| CreateError::Fifo(fifo_path.clone(), e))?;
    let fifo: OwnedFd = fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_PATH)
        .open(&fifo_path)
        .map_err(|e| CreateError::Fifo(fifo_path.clone(), e))?
        .into();
    let cg = cg_plan.create().map_err(CreateError::Cgroup)?;
    let cg_mount = cgroup::mount_info(&cg, plan.namespaces.creates(NsKind::Cgroup));
    let cg_fd = cg.open_v2_dir().ok().flatten();
    let cgroup_tasks = open_task_files(&cg)?;
    let init_joins = !cgroup_tasks.is_empty();
    undo.cgroup = Some(cg);
    let console = match &o.console_socket {
        Some(p) if plan.process.terminal => {
            Some(OwnedFd::from(UnixStream::connect(p).map_err(|source| {
                CreateError::Console {
                    path: p.clone(),
                    source,
                }
            })?))
        }
        _ => None,
    };
    let mut st = State {
        oci_version: plan.oci_version.clone(),
        id: o.id.clone(),
        pid: 0,
        pid_start: 0,
        bundle: bundle.clone(),
        rootfs: rootfs.clone(),
        created: state::now_rfc3339(),
        annotations: plan.annotations.clone(),
        namespaces: plan.namespaces.clone(),
        uid_mappings: plan.uid_mappings.clone(),
        gid_mappings: plan.gid_mappings.clone(),
        process: plan.process.clone(),
        seccomp: linux.seccomp.clone(),
        hooks: plan.hooks.clone(),
        cgroup: undo.cgroup.as_ref().map(cgroup::to_json),
        started: false,
    };
    let (parent_sock, child_sock) = SyncSocket::pair().map_err(CreateError::Io)?;
    let init_args = InitArgs {
        plan: &plan,
        rootfs,
        sync: child_sock,
        fifo,
        console,
        seccomp,
        cgroup_mount: cg_mount,
        no_pivot: o.no_pivot,
        preserve_fds: o.preserve_fds,
        hook_state: st.hook_json(Status::Creating),
        new_keyring: !o.no_new_keyring,
        cgroup_tasks,
    };
    let spawned = spawn::spawn_init(
        &plan,
        init_args,
        &parent_sock,
        cg_fd.as_ref().map(|f| f.as_fd()),
        &mut undo,
    )?;
    let pid = spawned.pid;
    st.pid = pid;
    st.pid_start = state::proc_stat(pid).map(|(_, s)| s).unwrap_or(0);
    drive(
        &plan,
        &parent_sock,
        &mut st,
        &undo,
        spawned.in_cgroup || init_joins,
    )?;
    st.save(&o.root)?;
    if let Some(pf) = &o.pid_file {
        write_pid_file(pf, pid)?;
    }
    undo.armed = false;
    Ok(pid)
}

/// cgroup v1: the container's `tasks` files, opened for the init to write itself into.
pub(crate) fn open_task_files(cg: &cgroup::Cgroup) -> Result<Vec<fs::File>, CreateError> {
    cg.v1_task_files()
        .into_iter()
        .map(|p| {
            fs::OpenOptions::new()
                .write(true)
                .open(&p)
                .map_err(|source| CreateError::Tasks { path: p, source })
        })
        .collect()
}

/// runc's rules on terminals and console sockets.
fn check_console(plan: &Plan, o: &CreateOptions) -> Result<(), CreateError> {
    match (plan.process.terminal, o.console_socket.is_some()) {
        (true, false) if o.detach => Err(CreateError::NeedConsoleSocket),
        (false, true) => Err(CreateError::ConsoleWithoutTerminal),
        _ => Ok(()),
    }
}

/// The parent's half of the protocol after the init exists.
fn drive(
    plan: &Plan,
    sock: &SyncSocket,
    st: &mut State,
    undo: &Undo<'_>,
    in_cgroup: bool,
) -> Result<(), CreateError> {
    // The init starts on its rootfs while the cgroup migration (slow on cgroup v1) happens.
    sock.send(&Msg::Go).map_err(CreateError::Io)?;
    let joined = match (&undo.cgroup, in_cgroup) {
        (Some(cg), false) => cg.add_pid(st.pid).map_err(|e| CreateError::Cgroup(e.into())),
        _ => Ok(()),
    };
    let sent = joined.and_then(|_| sock.send(&Msg::CgroupJoined).map_err(CreateError::Io));
    if let Err(e) = sent {
        // The init may have failed in the meantime: its own message says why.
        return Err(match sock.recv() {
            Ok(Some(Msg::Error(msg))) => CreateError::Init(msg),
            _ => e,
        });
    }
    loop {
        let (msg, fd) = sock.recv_with_fd().map_err(CreateError::Io)?;
        match msg {
            Some(Msg::SeccompFd) => {
                let (Some(fd), Some(s)) = (fd, st.seccomp.as_ref()) else {
                    return Err(CreateError::Init(
                        "a seccomp descriptor message without a descriptor".into(),
                    ));
                };
                let path = s.listener_path.clone().unwrap_or_default();
                let state = serde_json::json!({
                    "ociVersion": st.oci_version, "id": st.id, "status": "creating", "pid": st.pid, "bundle": st.bundle,
                    "annotations": st.annotations,
                });
                crate::seccomp_listener::forward(&path, s.listener_metadata.as_deref(), st.pid, state, &fd)
                    .map_err(|source| CreateError::Listener { path, source })?;
            }
            Some(Msg::Hooks) => {
                let json = st.hook_json(Status::Creating);
                let r = crate::hooks::run_all("prestart", &plan.hooks.prestart, &json)
                    .and_then(|_| crate::hooks::run_all("createRuntime", &plan.hooks.create_runtime, &json));
                if let Err(e) = r {
                    let _ = sock.send(&Msg::Error(e.to_string()));
                    return Err(CreateError::Hook(e));
                }
                sock.send(&Msg::HooksDone).map_err(CreateError::Io)?;
            }
            Some(Msg::Ready) => return Ok(()),
            Some(Msg::Error(e)) => return Err(CreateError::Init(e)),
            Some(m) => return Err(CreateError::Init(format!("unexpected message {m:?}"))),
            None => {
                return Err(CreateError::Init(
                    "the container's init exited without a word".into(),
                ))
            }
        }
    }
}

/// Writes the pid file atomically, as runc does.
pub fn write_pid_file(path: &Path, pid: i32) -> Result<(), CreateError> {
    let tmp = path.with_file_name(format!(
        ".{}.tmp",
        path.file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()
    ));
    fs::write(&tmp, pid.to_string())
        .and_then(|_| fs::rename(&tmp, path))
        .map_err(|source| CreateError::PidFile {
            path: path.to_path_buf(),
            source,
        })
}

/// Writes `/proc/PID/uid_map` and `gid_map` for a new user namespace.
pub fn write_id_maps(pid: i32, plan: &Plan) -> Result<(), CreateError> {
    let write = |file: &str, text: String| {
        let path = PathBuf::from(format!("/proc/{pid}/{file}"));
        fs::write(&path, text).map_err(|source| CreateError::IdMap { path, source })
    };
    write("uid_map", plan::namespaces::mapping_text(&plan.uid_mappings))?;
    write("gid_map", plan::namespaces::mapping_text(&plan.gid_mappings))
}

/// The clone flags of the fast path: every new namespace but cgroup (the init unshares it once it is
/// in its cgroup) and time (unshared by the parent so its offsets can be written first).
pub fn fast_clone_flags(plan: &Plan) -> CloneFlags {
    plan.namespaces.clone_flags() - NsKind::Cgroup.clone_flag() - NsKind::Time.clone_flag()
}
