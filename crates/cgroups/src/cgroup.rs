//! A container's cgroup once planned or created: the directories it has in each hierarchy, and the
//! operations the runtime does on it. Serialisable: the runtime keeps it in the container's state.

use std::fs;
use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::{devices, Error, Plan};

/// The container's directory in one v1 hierarchy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct V1Dir {
    pub mountpoint: PathBuf,
    pub controllers: Vec<String>,
    pub dir: PathBuf,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cgroup {
    /// v2: (mount point, the container's directory).
    v2: Option<(PathBuf, PathBuf)>,
    v1: Vec<V1Dir>,
    /// Directories this cgroup created, parents first: only these are removed.
    created: Vec<PathBuf>,
}

/// Usage figures for `events --stats` and the daemon's stats.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stats {
    pub memory_usage: Option<u64>,
    pub memory_limit: Option<u64>,
    pub pids_current: Option<u64>,
    pub pids_limit: Option<u64>,
    pub cpu_usage_ns: Option<u64>,
}

fn write(path: &Path, value: &str) -> Result<(), Error> {
    fs::write(path, value).map_err(|source| Error::Write {
        path: path.to_path_buf(),
        value: value.to_string(),
        source,
    })
}

fn read(path: &Path) -> Result<String, Error> {
    fs::read_to_string(path).map_err(|e| Error::Read(path.to_path_buf(), e))
}

/// mkdir -p that records the directories it made.
fn mkdir_all(dir: &Path, created: &mut Vec<PathBuf>) -> Result<(), Error> {
    let mut missing = Vec::new();
    let mut cur = Some(dir);
    while let Some(d) = cur {
        if d.exists() {
            break;
        }
        missing.push(d.to_path_buf());
        cur = d.parent();
    }
    for d in missing.into_iter().rev() {
        match fs::create_dir(&d) {
            Ok(()) => created.push(d),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(Error::Create(d, e)),
        }
    }
    Ok(())
}

/// Creates what `plan` describes; removes it again on failure.
pub(crate) fn create(plan: &Plan) -> Result<Cgroup, Error> {
    let mut cg = plan.cgroup.clone();
    cg.created.clear();
    let r = build(plan, &mut cg);
    if let Err(e) = r {
        let _ = cg.destroy();
        return Err(e);
    }
    Ok(cg)
}

fn build(plan: &Plan, cg: &mut Cgroup) -> Result<(), Error> {
    if let Some((mp, dir)) = cg.v2.clone() {
        mkdir_all(&dir, &mut cg.created)?;
        enable_controllers(&mp, &dir)?;
    }
    for d in cg.v1.clone() {
        mkdir_all(&d.dir, &mut cg.created)?;
        if d.controllers.iter().any(|c| c == "cpuset") {
            init_cpuset(&d.mountpoint, &d.dir)?;
        }
    }
    for (path, value) in &plan.writes {
        write_with_fallback(path, value)?;
    }
    if let (Some(rules), Some((_, dir))) = (&plan.device_rules, &cg.v2) {
        let code: Vec<u8> = devices::program(rules).iter().flat_map(|i| i.encode()).collect();
        let ferr = |e| Error::DeviceFilter(dir.clone(), e);
        let prog = berth_sys::bpf::load_cgroup_device_program(&code).map_err(ferr)?;
        let cgfd: OwnedFd = fs::File::open(dir).map_err(ferr)?.into();
        berth_sys::bpf::attach_cgroup_device_program(cgfd.as_fd(), prog.as_fd()).map_err(ferr)?;
    }
    Ok(())
}

/// Writes a control file; kernels without CFQ have `blkio.bfq.weight` (BFQ) instead of
/// `blkio.weight`, and likewise for the per-device weights: use those when the plain file is absent.
fn write_with_fallback(path: &Path, value: &str) -> Result<(), Error> {
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
    let alt = match name {
        "blkio.weight" => Some("blkio.bfq.weight"),
        "blkio.weight_device" => Some("blkio.bfq.weight_device"),
        _ => None,
    };
    match alt {
        Some(alt) if !path.exists() && path.with_file_name(alt).exists() => {
            write(&path.with_file_name(alt), value)
        }
        Some(alt) if !path.exists() => Err(Error::Unavailable(
            path.to_path_buf(),
            format!("neither {name} nor {alt} exists: the I/O scheduler has no weights"),
        )),
        _ => write(path, value),
    }
}

/// cgroup v2: every controller the root offers is enabled on the way down to the container's parent,
/// so the container's own directory has them all (as runc does).
fn enable_controllers(mountpoint: &Path, leaf: &Path) -> Result<(), Error> {
    let Ok(rel) = leaf.strip_prefix(mountpoint) else {
        return Ok(());
    };
    let mut cur = mountpoint.to_path_buf();
    for c in rel.components() {
        let available = read(&cur.join("cgroup.controllers")).unwrap_or_default();
        let enabled = read(&cur.join("cgroup.subtree_control")).unwrap_or_default();
        for ctrl in available.split_whitespace() {
            if !enabled.split_whitespace().any(|e| e == ctrl) {
                // A controller that cannot be enabled here (a threaded subtree, a busy parent) is
                // reported later, by the write that needs it.
                let _ = write(&cur.join("cgroup.subtree_control"), &format!("+{ctrl}"));
            }
        }
        cur.push(c);
    }
    Ok(())
}

/// cgroup v1: a new cpuset starts empty and refuses processes; copy the parent's cpus and mems down.
fn init_cpuset(mountpoint: &Path, dir: &Path) -> Result<(), Error> {
    let Ok(rel) = dir.strip_prefix(mountpoint) else {
        return Ok(());
    };
    let mut cur = mountpoint.to_path_buf();
    for c in rel.components() {
        let parent = cur.clone();
        cur.push(c);
        for f in ["cpuset.cpus", "cpuset.mems"] {
            let mine = read(&cur.join(f))?;
            if mine.trim().is_empty() {
                let v = read(&parent.join(f))?;
                write(&cur.join(f), v.trim())?;
            }
        }
    }
    Ok(())
}

impl Cgroup {
    pub(crate) fn new_v2(mountpoint: PathBuf, dir: PathBuf) -> Cgroup {
        Cgroup {
            v2: Some((mountpoint, dir)),
            v1: vec![],
            created: vec![],
        }
    }

    pub(crate) fn new_v1(dirs: Vec<V1Dir>) -> Cgroup {
        Cgroup {
            v2: None,
            v1: dirs,
            created: vec![],
        }
    }

    /// v2: the container's directory.
    pub fn v2_path(&self) -> Option<&Path> {
        self.v2.as_ref().map(|(_, d)| d.as_path())
    }

    /// v1: (mount point, container's directory) of every hierarchy.
    pub fn v1_paths(&self) -> Vec<(PathBuf, PathBuf)> {
        self.v1
            .iter()
            .map(|d| (d.mountpoint.clone(), d.dir.clone()))
            .collect()
    }

    /// v2: a descriptor of the container's directory, for `clone3(CLONE_INTO_CGROUP)`.
    pub fn open_v2_dir(&self) -> Result<Option<OwnedFd>, Error> {
        match &self.v2 {
            Some((_, d)) => Ok(Some(
                fs::File::open(d).map_err(|e| Error::Read(d.clone(), e))?.into(),
            )),
            None => Ok(None),
        }
    }

    fn dirs(&self) -> Vec<&Path> {
        self.v2
            .iter()
            .map(|(_, d)| d.as_path())
            .chain(self.v1.iter().map(|d| d.dir.as_path()))
            .collect()
    }

    /// Moves process `pid` into the container's cgroup in every hierarchy.
    pub fn add_pid(&self, pid: i32) -> Result<(), Error> {
        for d in self.dirs() {
            write(&d.join("cgroup.procs"), &pid.to_string())?;
        }
        Ok(())
    }

    /// cgroup v1: the `tasks` file of every hierarchy. A single-threaded process that writes "0"
    /// (itself) there moves without taking the kernel's global threadgroup lock, which otherwise waits
    /// for an RCU grace period (milliseconds) on every container start.
    pub fn v1_task_files(&self) -> Vec<PathBuf> {
        self.v1.iter().map(|d| d.dir.join("tasks")).collect()
    }

    /// The directory used to list processes and freeze: v2's, or the v1 freezer's (else pids', else any).
    fn main_dir(&self, want: &str) -> Option<&Path> {
        if let Some((_, d)) = &self.v2 {
            return Some(d);
        }
        self.v1
            .iter()
            .find(|d| d.controllers.iter().any(|c| c == want))
            .or_else(|| self.v1.iter().find(|d| d.controllers.iter().any(|c| c == "pids")))
            .or(self.v1.first())
            .map(|d| d.dir.as_path())
    }

    /// Every process in the container's cgroup and its sub-cgroups.
    pub fn pids(&self) -> Result<Vec<i32>, Error> {
        let Some(dir) = self.main_dir("freezer") else {
            return Ok(vec![]);
        };
        let mut out = Vec::new();
        collect_pids(dir, &mut out)?;
        out.sort_unstable();
        out.dedup();
        Ok(out)
    }

    fn freezer(&self) -> Option<(PathBuf, bool)> {
        if let Some((_, d)) = &self.v2 {
            return Some((d.clone(), true));
        }
        self.v1
            .iter()
            .find(|d| d.controllers.iter().any(|c| c == "freezer"))
            .map(|d| (d.dir.clone(), false))
    }

    pub fn freeze(&self) -> Result<(), Error> {
        self.set_frozen(true)
    }

    pub fn thaw(&self) -> Result<(), Error> {
        self.set_frozen(false)
    }

    fn set_frozen(&self, frozen: bool) -> Result<(), Error> {
        let (dir, v2) = self.freezer().ok_or_else(|| {
            Error::Controller(
                self.dirs().first().map(|p| p.to_path_buf()).unwrap_or_default(),
                "freezer".into(),
            )
        })?;
        let deadline = Instant::now() + Duration::from_secs(10);
        if v2 {
            write(&dir.join("cgroup.freeze"), if frozen { "1" } else { "0" })?;
            let want = if frozen { "frozen 1" } else { "frozen 0" };
            while !read(&dir.join("cgroup.events"))?.lines().any(|l| l == want) {
                if Instant::now() > deadline {
                    return Err(Error::Freeze(
                        dir,
                        if frozen { "thawed".into() } else { "frozen".into() },
                    ));
                }
                std::thread::sleep(Duration::from_millis(1));
            }
            return Ok(());
        }
        let want = if frozen { "FROZEN" } else { "THAWED" };
        loop {
            write(&dir.join("freezer.state"), want)?;
            let now = read(&dir.join("freezer.state"))?;
            if now.trim() == want {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(Error::Freeze(dir, now.trim().to_lowercase()));
            }
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    pub fn is_frozen(&self) -> Result<bool, Error> {
        match self.freezer() {
            Some((d, true)) => Ok(read(&d.join("cgroup.freeze"))
                .map(|s| s.trim() == "1")
                .unwrap_or(false)),
            Some((d, false)) => Ok(read(&d.join("freezer.state"))
                .map(|s| s.trim() == "FROZEN")
                .unwrap_or(false)),
            None => Ok(false),
        }
    }

    /// Sends `signal` to every process of the container (`cgroup.kill` for SIGKILL on v2).
    pub fn kill_all(&self, signal: i32) -> Result<(), Error> {
        if let (Some((_, d)), true) = (&self.v2, signal == libc::SIGKILL) {
            let kill = d.join("cgroup.kill");
            if kill.exists() {
                return match write(&kill, "1") {
                    Err(Error::Write { source, .. }) if source.kind() == io::ErrorKind::NotFound => Ok(()),
                    r => r,
                };
            }
        }
        for pid in self.pids()? {
            // Through a pidfd: a pid that exited and was reused in between is not hit.
            if let Ok(fd) = berth_sys::pidfd_open(pid) {
                let _ = berth_sys::pidfd_send_signal(fd.as_fd(), signal);
            }
        }
        Ok(())
    }

    /// Memory, pids and cpu usage.
    pub fn stats(&self) -> Result<Stats, Error> {
        let num = |p: PathBuf| read(&p).ok().and_then(|s| s.trim().parse::<u64>().ok());
        let mut s = Stats::default();
        if let Some((_, d)) = &self.v2 {
            s.memory_usage = num(d.join("memory.current"));
            s.memory_limit = num(d.join("memory.max"));
            s.pids_current = num(d.join("pids.current"));
            s.pids_limit = num(d.join("pids.max"));
            s.cpu_usage_ns = read(&d.join("cpu.stat")).ok().and_then(|t| {
                t.lines()
                    .find_map(|l| l.strip_prefix("usage_usec "))
                    .and_then(|v| v.trim().parse::<u64>().ok())
                    .map(|us| us * 1000)
            });
            return Ok(s);
        }
        for d in &self.v1 {
            let has = |c: &str| d.controllers.iter().any(|x| x == c);
            if has("memory") {
                s.memory_usage = num(d.dir.join("memory.usage_in_bytes"));
                s.memory_limit = num(d.dir.join("memory.limit_in_bytes"));
            }
            if has("pids") {
                s.pids_current = num(d.dir.join("pids.current"));
                s.pids_limit = num(d.dir.join("pids.max"));
            }
            if has("cpuacct") {
                s.cpu_usage_ns = num(d.dir.join("cpuacct.usage"));
            }
        }
        Ok(s)
    }

    /// Applies new resources to the running container (`update`).
    pub fn update(&self, r: &berth_spec::Resources) -> Result<(), Error> {
        if let Some((_, d)) = &self.v2 {
            for (f, v) in crate::v2::writes(r)? {
                write_with_fallback(&d.join(f), &v)?;
            }
            return Ok(());
        }
        let has = |c: &str| self.v1.iter().any(|d| d.controllers.iter().any(|x| x == c));
        for (ctrl, f, v) in crate::v1::writes(r, &has)? {
            if let Some(d) = self.v1.iter().find(|d| d.controllers.contains(&ctrl)) {
                write_with_fallback(&d.dir.join(f), &v)?;
            }
        }
        Ok(())
    }

    /// Removes the directories this cgroup created (sub-cgroups made inside them included), deepest
    /// first, retrying while the last processes leave. Missing directories are fine.
    pub fn destroy(&self) -> Result<(), Error> {
        let mut leaves: Vec<PathBuf> = self.dirs().iter().map(|p| p.to_path_buf()).collect();
        leaves.retain(|l| self.created.iter().any(|c| c == l));
        for l in &leaves {
            remove_tree(l)?;
        }
        for d in self.created.iter().rev() {
            match fs::remove_dir(d) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                // A parent shared with another container is still in use: leave it.
                Err(e)
                    if e.raw_os_error() == Some(libc::EBUSY) || e.raw_os_error() == Some(libc::ENOTEMPTY) => {
                }
                Err(e) => return Err(Error::Remove(d.clone(), e)),
            }
        }
        Ok(())
    }
}

fn collect_pids(dir: &Path, out: &mut Vec<i32>) -> Result<(), Error> {
    let text = match fs::read_to_string(dir.join("cgroup.procs")) {
        Ok(t) => t,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(Error::Read(dir.join("cgroup.procs"), e)),
    };
    out.extend(text.lines().filter_map(|l| l.trim().parse::<i32>().ok()));
    if let Ok(rd) = fs::read_dir(dir) {
        for e in rd.flatten() {
            if e.file_type().map(|t| t.is_dir()).unwrap_or(false) {
                collect_pids(&e.path(), out)?;
            }
        }
    }
    Ok(())
}

/// rmdir of a cgroup and its sub-cgroups, deepest first; EBUSY is retried for up to a second while
/// the last processes finish exiting.
fn remove_tree(dir: &Path) -> Result<(), Error> {
    if let Ok(rd) = fs::read_dir(dir) {
        for e in rd.flatten() {
            if e.file_type().map(|t| t.is_dir()).unwrap_or(false) {
                remove_tree(&e.path())?;
            }
        }
    }
    let deadline = Instant::now() + Duration::from_secs(1);
    loop {
        match fs::remove_dir(dir) {
            Ok(()) => return Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(e) if e.raw_os_error() == Some(libc::EBUSY) && Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(2))
            }
            // A fake cgroupfs (tests) holds files: remove them and try again.
            Err(e) if e.raw_os_error() == Some(libc::ENOTEMPTY) && is_fake(dir) => {
                fs::remove_dir_all(dir).map_err(|e| Error::Remove(dir.to_path_buf(), e))?;
                return Ok(());
            }
            Err(e) => return Err(Error::Remove(dir.to_path_buf(), e)),
        }
    }
}

/// Whether `dir` is on an ordinary filesystem (a test's fake cgroupfs) rather than cgroupfs.
fn is_fake(dir: &Path) -> bool {
    const CGROUP_SUPER_MAGIC: i64 = 0x27e0eb;
    const CGROUP2_SUPER_MAGIC: i64 = 0x6367_7270;
    match nix_statfs(dir) {
        Some(t) => t != CGROUP_SUPER_MAGIC && t != CGROUP2_SUPER_MAGIC,
        None => false,
    }
}

fn nix_statfs(dir: &Path) -> Option<i64> {
    berth_sys::fs::statfs_type(dir).ok()
}
