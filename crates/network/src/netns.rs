//! Network namespaces as files, as `ip netns` keeps them: a namespace lives as long as something
//! holds it, and a bind mount of its `nsfs` file onto an ordinary file holds it without a process.
//!
//! Why threads: a network namespace belongs to a thread, not to a process, so a short-lived thread
//! can `unshare(CLONE_NEWNET)` or `setns()` into a namespace, do its work there and exit, while the
//! caller's threads (berthd's tokio workers among them) stay where they are. Sockets made on that
//! thread keep acting in its namespace after it exits. Files under /proc/sys/net opened there show
//! that namespace's sysctls. (Mounts are not per thread: the bind mount lands in the process's
//! mount namespace.)

use std::fs::{self, File, OpenOptions};
use std::io;
use std::path::{Path, PathBuf};
use std::thread;

use nix::mount::{self, MntFlags, MsFlags};
use nix::sched::{self, CloneFlags};

use crate::link::Netlink;

fn err(what: String, e: nix::Error) -> io::Error {
    io::Error::new(io::Error::from(e).kind(), format!("{what}: {e}"))
}

/// Creates a new, empty network namespace and keeps it alive by bind-mounting it onto `path` (an
/// empty file made here; the parent directory must exist). Done in a short-lived thread that
/// unshare(CLONE_NEWNET)s and bind-mounts /proc/thread-self/ns/net, so the calling process is
/// untouched. `lo` is brought up inside.
pub fn create(path: &Path) -> io::Result<()> {
    let owned = path.to_path_buf();
    on_thread(move || create_here(&owned))?
}

/// The body of `create`, on its own thread. On failure nothing is left at `path`.
fn create_here(path: &Path) -> io::Result<()> {
    // 1. The mount point: a new empty file (an existing one may be another namespace's).
    OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
        .map_err(|e| io::Error::new(e.kind(), format!("create netns file {}: {e}", path.display())))?;
    let undo = Remove(path);
    // 2. A new namespace for this thread only (threads share no network namespace state).
    sched::unshare(CloneFlags::CLONE_NEWNET).map_err(|e| err("unshare the network namespace".into(), e))?;
    // 3. Pin it: the bind mount keeps the namespace after this thread exits.
    let ns = Path::new("/proc/thread-self/ns/net");
    mount::mount(Some(ns), path, None::<&str>, MsFlags::MS_BIND, None::<&str>)
        .map_err(|e| err(format!("bind {} onto {}", ns.display(), path.display()), e))?;
    // 4. `lo` up, as docker's namespaces have it (127.0.0.1 and ::1 come with it).
    let mut nl = Netlink::open()?;
    let lo = nl
        .index("lo")?
        .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, "no lo in a new netns"))?;
    nl.set_up(lo)?;
    std::mem::forget(undo);
    Ok(())
}

/// Undoes `create_here` when it fails half-way.
struct Remove<'a>(&'a Path);

impl Drop for Remove<'_> {
    fn drop(&mut self) {
        let _ = remove(self.0);
    }
}

/// Unmounts (MNT_DETACH) and removes the file; NotFound-tolerant (idempotent).
pub fn remove(path: &Path) -> io::Result<()> {
    match mount::umount2(path, MntFlags::MNT_DETACH) {
        // EINVAL: not a mount point (already unmounted, or `create` failed before mounting).
        Ok(()) | Err(nix::Error::ENOENT) | Err(nix::Error::EINVAL) => {}
        Err(e) => return Err(err(format!("unmount netns {}", path.display()), e)),
    }
    match fs::remove_file(path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(io::Error::new(
            e.kind(),
            format!("remove netns file {}: {e}", path.display()),
        )),
        _ => Ok(()),
    }
}

/// Runs `f` on a thread that has setns()ed into `path`'s namespace and returns its result (for
/// the lead's DNS server: binding a socket inside the container's namespace; and for running
/// `nft` in it).
pub fn run_in<T: Send + 'static>(path: &Path, f: impl FnOnce() -> T + Send + 'static) -> io::Result<T> {
    // Opened here, so that a missing file is the caller's error before any thread starts.
    let ns = File::open(path)
        .map_err(|e| io::Error::new(e.kind(), format!("open netns {}: {e}", path.display())))?;
    let shown: PathBuf = path.to_path_buf();
    on_thread(move || {
        sched::setns(&ns, CloneFlags::CLONE_NEWNET)
            .map_err(|e| err(format!("enter netns {}", shown.display()), e))?;
        drop(ns);
        Ok(f())
    })?
}

/// Runs `f` on a new thread and waits for it; a panic there is resumed here.
fn on_thread<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> io::Result<T> {
    let handle = thread::Builder::new()
        .name("berth-netns".into())
        .spawn(f)
        .map_err(|e| io::Error::new(e.kind(), format!("start a netns thread: {e}")))?;
    match handle.join() {
        Ok(v) => Ok(v),
        Err(panic) => std::panic::resume_unwind(panic),
    }
}
