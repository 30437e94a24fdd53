//! The container's init: the child of `create`, already inside the new namespaces. It follows the
//! protocol drawn in [`crate::sync`], builds the rootfs, prepares the process, waits on exec.fifo for
//! `start`, and execs the container's program. It never returns: on failure it reports the error to
//! the parent and exits.

use std::io::Write;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::PathBuf;

use nix::sched::{unshare, CloneFlags};

use crate::plan::{NsKind, Plan};
use crate::procsetup::{self, ProcError};
use crate::rootfs::{self, CgroupMount, RootfsError};
use crate::sync::{Msg, SyncSocket};

#[derive(Debug, thiserror::Error)]
pub enum InitError {
    #[error("read from the parent")]
    Sync(#[source] std::io::Error),
    #[error("the parent went away before {0}")]
    ParentGone(&'static str),
    #[error("unexpected message from the parent: {0:?}")]
    Unexpected(Msg),
    #[error("{0}")]
    Parent(String),
    #[error("join the container's cgroup")]
    CgroupJoin(#[source] std::io::Error),
    #[error("unshare the cgroup namespace")]
    CgroupNs(#[source] nix::Error),
    #[error(transparent)]
    Rootfs(#[from] RootfsError),
    #[error(transparent)]
    Process(#[from] ProcError),
    #[error(transparent)]
    Hook(#[from] crate::hooks::HookError),
    #[error("set hostname {0:?}")]
    Hostname(String, #[source] nix::Error),
    #[error("set domainname {0:?}")]
    Domainname(String, #[source] std::io::Error),
    #[error("write sysctl {0}")]
    Sysctl(String, #[source] std::io::Error),
    #[error("become root of the user namespace (is uid/gid 0 mapped?)")]
    NsRoot(#[source] nix::Error),
    #[error("open exec fifo")]
    Fifo(#[source] std::io::Error),
}

/// What the parent hands its init besides the plan.
pub struct InitArgs<'a> {
    pub plan: &'a Plan,
    pub rootfs: PathBuf,
    pub sync: SyncSocket,
    /// `O_PATH` descriptor of exec.fifo.
    pub fifo: OwnedFd,
    /// The connected `--console-socket`, when the process has a terminal.
    pub console: Option<OwnedFd>,
    pub seccomp: Option<berth_seccomp::Program>,
    pub cgroup_mount: CgroupMount,
    pub no_pivot: bool,
    pub preserve_fds: u32,
    /// The hook state JSON (status "creating") for createContainer and startContainer hooks.
    pub hook_state: String,
    /// Join a new session keyring (runc's default; `--no-new-keyring` turns it off).
    pub new_keyring: bool,
    /// cgroup v1: the container's `tasks` files, opened by the parent; the init moves itself.
    pub cgroup_tasks: Vec<std::fs::File>,
}

/// Runs the init; never returns.
pub fn run(args: InitArgs<'_>) -> ! {
    let err = match init(&args) {
        Ok(never) => match never {},
        Err(e) => e,
    };
    let _ = args.sync.send(&Msg::Error(crate::error_chain(&err)));
    berth_sys::exit_immediately(1)
}

fn expect(sync: &SyncSocket, want: Msg, when: &'static str) -> Result<(), InitError> {
    match sync.recv().map_err(InitError::Sync)? {
        Some(m) if m == want => Ok(()),
        Some(Msg::Error(e)) => Err(InitError::Parent(e)),
        Some(m) => Err(InitError::Unexpected(m)),
        None => Err(InitError::ParentGone(when)),
    }
}

fn init(a: &InitArgs<'_>) -> Result<std::convert::Infallible, InitError> {
    let plan = a.plan;
    // 1. Wait for the parent: id maps written, cgroup joined. If the parent dies, the socket reads
    //    end-of-file and the init exits: an interrupted `create` leaves no process.
    expect(&a.sync, Msg::Go, "the go-ahead")?;
    // 1a. cgroup v1: move into the container's cgroup. A thread moving itself skips the kernel's
    //     global threadgroup lock (and its RCU grace period) that moving another process takes.
    join_own_cgroup(&a.cgroup_tasks)?;
    if a.new_keyring {
        // Each container gets its own session keyring, so it never sees the host's keys.
        let _ = berth_sys::process::join_session_keyring(&format!("_ses.{}", plan.id));
    }
    // 1b. In a user namespace, become its root: the credentials cloned from the parent (host root)
    //     are not mapped inside, and files cannot be created with unmapped ids (EOVERFLOW).
    if plan.namespaces.has(NsKind::User) {
        become_ns_root()?;
    }
    // 2. A cgroup namespace is created once the init is in its cgroup, so that its root is the
    //    container's cgroup, and before the mounts (a cgroup2 mount shows the namespace's root).
    //    Without one, the cgroup join overlaps the rootfs work below.
    let cgroupns = plan.namespaces.creates(NsKind::Cgroup);
    if cgroupns {
        expect(&a.sync, Msg::CgroupJoined, "the cgroup join")?;
        unshare(CloneFlags::CLONE_NEWCGROUP).map_err(InitError::CgroupNs)?;
    }
    // 3. The rootfs: propagation, mounts, devices.
    let root_fd = rootfs::prepare_root(&a.rootfs, plan.rootfs_propagation)?;
    rootfs::mount_all(plan, &a.rootfs, &root_fd, &a.cgroup_mount)?;
    let in_userns = plan.namespaces.has(NsKind::User);
    rootfs::create_devices(plan, &a.rootfs, &root_fd, in_userns)?;
    drop(root_fd);
    if !cgroupns {
        // Nothing of the container's own may run before it is in its cgroup.
        expect(&a.sync, Msg::CgroupJoined, "the cgroup join")?;
    }
    // 4. Hooks: prestart and createRuntime run in the parent, createContainer here before pivot_root.
    if !plan.hooks.prestart.is_empty() || !plan.hooks.create_runtime.is_empty() {
        a.sync.send(&Msg::Hooks).map_err(InitError::Sync)?;
        expect(&a.sync, Msg::HooksDone, "the hooks")?;
    }
    crate::hooks::run_all("createContainer", &plan.hooks.create_container, &a.hook_state)?;
    // 5. Switch to the rootfs; masked and read-only paths; the rootfs' final propagation and mode.
    rootfs::switch_root(&a.rootfs, a.no_pivot)?;
    rootfs::mask_and_protect(plan)?;
    rootfs::finish_root(plan)?;
    // 6. Names and kernel parameters of the container's own namespaces.
    if let Some(h) = &plan.hostname {
        nix::unistd::sethostname(h).map_err(|e| InitError::Hostname(h.clone(), e))?;
    }
    if let Some(d) = &plan.domainname {
        berth_sys::setdomainname(d).map_err(|e| InitError::Domainname(d.clone(), e))?;
    }
    for (k, v) in &plan.sysctl {
        let path = format!("/proc/sys/{}", k.replace('.', "/"));
        std::fs::write(&path, v).map_err(|e| InitError::Sysctl(k.clone(), e))?;
    }
    // 7. The process: terminal, limits, working directory, user, capabilities, seccomp.
    let p = &plan.process;
    if let Some(console) = &a.console {
        procsetup::setup_console(console, p.console_size)?;
    }
    let (exe, listener) = procsetup::prepare_process(p, a.seccomp.as_ref(), a.preserve_fds)?;
    if let Some(fd) = &listener {
        // The runtime forwards it to linux.seccomp.listenerPath, which this process cannot reach.
        a.sync
            .send_with_fd(&Msg::SeccompFd, std::os::fd::AsFd::as_fd(fd))
            .map_err(InitError::Sync)?;
    }
    drop(listener);
    // 8. Created: tell the parent, then wait for `start` to open the fifo.
    a.sync.send(&Msg::Ready).map_err(InitError::Sync)?;
    let fifo_path = format!("/proc/self/fd/{}", a.fifo.as_raw_fd());
    let mut fifo = std::fs::OpenOptions::new()
        .write(true)
        .open(&fifo_path)
        .map_err(InitError::Fifo)?;
    fifo.write_all(b"0").map_err(InitError::Fifo)?;
    drop(fifo);
    if let Err(e) = crate::hooks::run_all("startContainer", &plan.hooks.start_container, &a.hook_state) {
        return Err(late(e.into()));
    }
    match procsetup::exec(&exe, p) {
        Ok(never) => match never {},
        Err(e) => Err(late(e.into())),
    }
}

/// A failure after `create` returned (the parent is gone): the container's stderr is the only place
/// left to say it.
fn late(e: InitError) -> InitError {
    eprintln!("berth-runtime: {}", crate::error_chain(&e));
    e
}

/// Writes "0" (the calling thread) to every pre-opened cgroup `tasks` file.
pub fn join_own_cgroup(tasks: &[std::fs::File]) -> Result<(), InitError> {
    for f in tasks {
        (&*f).write_all(b"0").map_err(InitError::CgroupJoin)?;
    }
    Ok(())
}

fn become_ns_root() -> Result<(), InitError> {
    let root_gid = nix::unistd::Gid::from_raw(0);
    let root_uid = nix::unistd::Uid::from_raw(0);
    if procsetup::setgroups_allowed() {
        nix::unistd::setgroups(&[]).map_err(InitError::NsRoot)?;
    }
    nix::unistd::setresgid(root_gid, root_gid, root_gid).map_err(InitError::NsRoot)?;
    nix::unistd::setresuid(root_uid, root_uid, root_uid).map_err(InitError::NsRoot)
}
