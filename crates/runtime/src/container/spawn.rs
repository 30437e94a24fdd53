//! Starting the container's init: the fast path (one `clone3` straight into every new namespace and,
//! on cgroup v2, into the cgroup) and the general path for namespaces joined by path (an intermediate
//! process joins them, unshares the new ones and forks the init).

use std::fs::File;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};
use std::path::PathBuf;

use berth_sys::Forked;
use nix::sched::{setns, unshare, CloneFlags};

use super::create::{fast_clone_flags, write_id_maps, Undo};
use super::CreateError;
use crate::init::{self, InitArgs};
use crate::plan::{NsKind, Plan};
use crate::sync::{Msg, SyncSocket};

/// The init, once it exists.
pub struct Spawned {
    /// Its pid in the runtime's pid namespace.
    pub pid: i32,
    /// Whether it was cloned straight into its cgroup (no cgroup.procs write needed).
    pub in_cgroup: bool,
}

pub fn spawn_init(
    plan: &Plan,
    args: InitArgs<'_>,
    parent: &SyncSocket,
    cgroup_fd: Option<BorrowedFd<'_>>,
    undo: &mut Undo<'_>,
) -> Result<Spawned, CreateError> {
    if plan.namespaces.creates(NsKind::Time) {
        enter_time_ns(plan)?;
    }
    if plan.namespaces.join.is_empty() {
        fast(plan, args, parent, cgroup_fd, undo)
    } else {
        general(plan, args, parent, undo)
    }
}

/// A new time namespace: the parent unshares it (it applies to the parent's next child only) and
/// writes the offsets before the init enters it.
fn enter_time_ns(plan: &Plan) -> Result<(), CreateError> {
    unshare(NsKind::Time.clone_flag())
        .map_err(|e| CreateError::Namespace("unshare time namespace".into(), e))?;
    if !plan.time_offsets.is_empty() {
        let text: String = plan
            .time_offsets
            .iter()
            .map(|(c, s, n)| format!("{c} {s} {n}\n"))
            .collect();
        std::fs::write("/proc/self/timens_offsets", text).map_err(CreateError::Io)?;
    }
    Ok(())
}

fn fast(
    plan: &Plan,
    args: InitArgs<'_>,
    parent: &SyncSocket,
    cgroup_fd: Option<BorrowedFd<'_>>,
    undo: &mut Undo<'_>,
) -> Result<Spawned, CreateError> {
    let flags = fast_clone_flags(plan).bits() as u64;
    let mut in_cgroup = cgroup_fd.is_some();
    let forked = match berth_sys::clone3(flags, cgroup_fd) {
        Err(_) if cgroup_fd.is_some() => {
            // CLONE_INTO_CGROUP refused (old kernel, threaded cgroup): clone, then join by pid.
            in_cgroup = false;
            berth_sys::clone3(flags, None)
        }
        r => r,
    }
    .map_err(CreateError::Clone)?;
    match forked {
        Forked::Child => {
            // The parent's end stays with the parent alone: the init must see end-of-file when the
            // parent dies.
            let _ = nix::unistd::close(parent.fd().as_raw_fd());
            init::run(args)
        }
        Forked::Parent(pid) => {
            drop(args);
            undo.pids.push(pid);
            if plan.namespaces.creates(NsKind::User) {
                write_id_maps(pid, plan)?;
            }
            Ok(Spawned { pid, in_cgroup })
        }
    }
}

/// Joins (by path) and creates namespaces in an intermediate process, which forks the init.
fn general(
    plan: &Plan,
    args: InitArgs<'_>,
    parent: &SyncSocket,
    undo: &mut Undo<'_>,
) -> Result<Spawned, CreateError> {
    // Open every namespace before joining any: joining the mount namespace changes what paths mean.
    let mut joins = Vec::new();
    for (kind, path) in &plan.namespaces.join {
        let f = File::open(path).map_err(|source| CreateError::OpenNamespace {
            path: path.clone(),
            source,
        })?;
        joins.push((*kind, path.clone(), f));
    }
    match berth_sys::fork().map_err(CreateError::Clone)? {
        Forked::Child => {
            let _ = nix::unistd::close(parent.fd().as_raw_fd());
            if let Err(e) = intermediate(plan, &joins, &args) {
                let _ = args.sync.send(&Msg::Error(crate::error_chain(&e)));
                berth_sys::exit_immediately(1);
            }
            match berth_sys::fork() {
                Ok(Forked::Child) => init::run(args),
                Ok(Forked::Parent(pid)) => {
                    let _ = args.sync.send(&Msg::Pid(pid));
                    berth_sys::exit_immediately(0)
                }
                Err(e) => {
                    let _ = args.sync.send(&Msg::Error(format!("fork the init: {e}")));
                    berth_sys::exit_immediately(1)
                }
            }
        }
        Forked::Parent(mid) => {
            drop(args);
            undo.pids.push(mid);
            let pid = loop {
                match parent.recv().map_err(CreateError::Io)? {
                    Some(Msg::MapIds(p)) => {
                        write_id_maps(p, plan)?;
                        parent.send(&Msg::MapsDone).map_err(CreateError::Io)?;
                    }
                    Some(Msg::Pid(p)) => break p,
                    Some(Msg::Error(e)) => return Err(CreateError::Init(e)),
                    other => {
                        return Err(CreateError::Init(format!(
                            "unexpected message {other:?} from the intermediate process"
                        )))
                    }
                }
            };
            undo.pids.push(pid);
            let _ = nix::sys::wait::waitpid(nix::unistd::Pid::from_raw(mid), None);
            undo.pids.retain(|p| *p != mid);
            Ok(Spawned {
                pid,
                in_cgroup: false,
            })
        }
    }
}

#[derive(Debug, thiserror::Error)]
enum MidError {
    #[error("join {kind} namespace {path}")]
    Join {
        kind: &'static str,
        path: PathBuf,
        #[source]
        source: nix::Error,
    },
    #[error("unshare {0:?}")]
    Unshare(CloneFlags, #[source] nix::Error),
    #[error("ask for the id maps")]
    Maps(#[source] std::io::Error),
    #[error("the parent did not write the id maps")]
    NoMaps,
}

/// The intermediate process: user namespace first (joined, or created and mapped by the parent), then
/// the other joined namespaces, then the new ones (a new pid namespace applies to the init it forks).
fn intermediate(plan: &Plan, joins: &[(NsKind, PathBuf, File)], args: &InitArgs<'_>) -> Result<(), MidError> {
    let join = |k: NsKind, p: &PathBuf, f: &File| {
        setns(f.as_fd(), k.clone_flag()).map_err(|source| MidError::Join {
            kind: k.spec_name(),
            path: p.clone(),
            source,
        })
    };
    for (k, p, f) in joins.iter().filter(|(k, _, _)| *k == NsKind::User) {
        join(*k, p, f)?;
    }
    if plan.namespaces.creates(NsKind::User) {
        unshare(CloneFlags::CLONE_NEWUSER).map_err(|e| MidError::Unshare(CloneFlags::CLONE_NEWUSER, e))?;
        args.sync
            .send(&Msg::MapIds(std::process::id() as i32))
            .map_err(MidError::Maps)?;
        match args.sync.recv() {
            Ok(Some(Msg::MapsDone)) => {}
            _ => return Err(MidError::NoMaps),
        }
    }
    for (k, p, f) in joins
        .iter()
        .filter(|(k, _, _)| *k != NsKind::User && *k != NsKind::Mount)
    {
        join(*k, p, f)?;
    }
    for (k, p, f) in joins.iter().filter(|(k, _, _)| *k == NsKind::Mount) {
        join(*k, p, f)?;
    }
    let rest = plan.namespaces.clone_flags()
        - CloneFlags::CLONE_NEWUSER
        - NsKind::Cgroup.clone_flag()
        - NsKind::Time.clone_flag();
    if !rest.is_empty() {
        unshare(rest).map_err(|e| MidError::Unshare(rest, e))?;
    }
    Ok(())
}
