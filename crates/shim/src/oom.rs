//! Whether the kernel's OOM killer struck inside the container: the `oom_kill` counter of its
//! memory cgroup (cgroup v2 `memory.events`, v1 `memory.oom_control`), read when the container is
//! created and again when it has ended, before the runtime deletes the cgroup.

use std::path::{Path, PathBuf};

/// The counter's file and its value when watching began.
#[derive(Debug, Clone)]
pub struct OomWatch {
    file: PathBuf,
    before: u64,
}

/// The memory cgroup's counter file for a process, from its `/proc/PID/cgroup` lines and the
/// cgroup root (`/sys/fs/cgroup`): the v2 line `0::/path` when the root is a unified hierarchy,
/// else the v1 `memory` line.
pub fn counter_file(proc_cgroup: &str, root: &Path, unified: bool) -> Option<PathBuf> {
    for line in proc_cgroup.lines() {
        let mut parts = line.splitn(3, ':');
        let (_, ctrls, path) = (parts.next()?, parts.next()?, parts.next()?);
        let rel = path.trim_start_matches('/');
        if unified && ctrls.is_empty() {
            return Some(root.join(rel).join("memory.events"));
        }
        if !unified && ctrls.split(',').any(|c| c == "memory") {
            return Some(root.join("memory").join(rel).join("memory.oom_control"));
        }
    }
    None
}

/// `oom_kill N` in a counter file's text.
pub fn oom_kills(text: &str) -> u64 {
    text.lines()
        .find_map(|l| l.strip_prefix("oom_kill "))
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or(0)
}

impl OomWatch {
    /// Starts watching process `pid`'s memory cgroup; `None` when it cannot be found.
    pub fn of(pid: i32) -> Option<OomWatch> {
        let root = Path::new("/sys/fs/cgroup");
        let unified = root.join("cgroup.controllers").exists();
        let text = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).ok()?;
        let file = counter_file(&text, root, unified)?;
        let before = oom_kills(&std::fs::read_to_string(&file).ok()?);
        Some(OomWatch { file, before })
    }

    /// Whether the counter went up since watching began.
    pub fn struck(&self) -> bool {
        std::fs::read_to_string(&self.file).is_ok_and(|t| oom_kills(&t) > self.before)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_counter() {
        let root = Path::new("/sys/fs/cgroup");
        assert_eq!(
            counter_file("0::/berth/abc\n", root, true).unwrap(),
            PathBuf::from("/sys/fs/cgroup/berth/abc/memory.events")
        );
        let v1 = "12:pids:/berth/abc\n5:memory:/berth/abc\n0::/berth/abc\n";
        assert_eq!(
            counter_file(v1, root, false).unwrap(),
            PathBuf::from("/sys/fs/cgroup/memory/berth/abc/memory.oom_control")
        );
        assert!(counter_file("1:cpu:/x\n", root, false).is_none());
    }

    #[test]
    fn counts() {
        assert_eq!(oom_kills("low 0\nhigh 0\nmax 3\noom 2\noom_kill 2\n"), 2);
        assert_eq!(oom_kills("oom_kill_disable 0\nunder_oom 0\noom_kill 1\n"), 1);
        assert_eq!(oom_kills(""), 0);
    }
}
