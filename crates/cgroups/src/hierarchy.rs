//! Where the cgroup filesystems are: parsed from `/proc/self/mountinfo` and `/proc/self/cgroup` (or
//! from texts given by a test, with every mount point re-rooted under a prefix).

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::Error;

/// One mounted v1 hierarchy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct V1Mount {
    pub mountpoint: PathBuf,
    /// The hierarchy's root as seen in this mount (mountinfo field 4), usually `/`.
    pub root: String,
    /// Controllers (`cpu`, `memory`, ...) and named hierarchies (`name=systemd`).
    pub controllers: Vec<String>,
    /// The calling process's cgroup in this hierarchy (from /proc/self/cgroup).
    pub own: String,
}

/// The cgroup layout of the host.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Hierarchy {
    /// Pure cgroup v2: one hierarchy mounted at the cgroup root.
    V2 {
        mountpoint: PathBuf,
        root: String,
        own: String,
    },
    /// cgroup v1 (legacy or hybrid): one mount per hierarchy, and in hybrid mode a cgroup2 mount
    /// without controllers.
    V1 {
        mounts: Vec<V1Mount>,
        unified: Option<(PathBuf, String, String)>,
    },
}

struct MountLine {
    root: String,
    mountpoint: String,
    fstype: String,
    super_opts: String,
}

fn unescape(s: &str) -> String {
    // mountinfo escapes space, tab, newline and backslash as \ooo.
    let mut out = String::new();
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && i + 3 < b.len() && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c)) {
            let v = u8::from_str_radix(&s[i + 1..i + 4], 8).unwrap_or(b'?');
            out.push(v as char);
            i += 4;
        } else {
            out.push(b[i] as char);
            i += 1;
        }
    }
    out
}

fn parse_mountinfo(text: &str) -> Vec<MountLine> {
    let mut out = Vec::new();
    for line in text.lines() {
        let Some((left, right)) = line.split_once(" - ") else {
            continue;
        };
        let l: Vec<&str> = left.split(' ').collect();
        let r: Vec<&str> = right.split(' ').collect();
        if l.len() < 5 || r.len() < 3 {
            continue;
        }
        out.push(MountLine {
            root: unescape(l[3]),
            mountpoint: unescape(l[4]),
            fstype: r[0].to_string(),
            super_opts: r[2].to_string(),
        });
    }
    out
}

/// The calling process's cgroup per hierarchy: (controllers of the line, path). v2 has no controllers.
fn parse_proc_cgroup(text: &str) -> Vec<(Vec<String>, String)> {
    text.lines()
        .filter_map(|l| {
            let mut parts = l.splitn(3, ':');
            let _id = parts.next()?;
            let ctrls = parts.next()?;
            let path = parts.next()?;
            let list = if ctrls.is_empty() {
                vec![]
            } else {
                ctrls.split(',').map(str::to_string).collect()
            };
            Some((list, path.to_string()))
        })
        .collect()
}

fn reroot(prefix: &Path, mountpoint: &str) -> PathBuf {
    prefix.join(mountpoint.trim_start_matches('/'))
}

impl Hierarchy {
    /// The host's layout.
    pub fn detect() -> Result<Hierarchy, Error> {
        let mi = std::fs::read_to_string("/proc/self/mountinfo")
            .map_err(|e| Error::Read("/proc/self/mountinfo".into(), e))?;
        let cg = std::fs::read_to_string("/proc/self/cgroup")
            .map_err(|e| Error::Read("/proc/self/cgroup".into(), e))?;
        Hierarchy::from_texts(&mi, &cg, Path::new("/"))
    }

    /// The layout described by a mountinfo and a /proc/self/cgroup text, mount points under `prefix`.
    pub fn from_texts(mountinfo: &str, proc_cgroup: &str, prefix: &Path) -> Result<Hierarchy, Error> {
        let mounts = parse_mountinfo(mountinfo);
        let own = parse_proc_cgroup(proc_cgroup);
        let own_v2 = own
            .iter()
            .find(|(c, _)| c.is_empty())
            .map(|(_, p)| p.clone())
            .unwrap_or_else(|| "/".into());
        let v1: Vec<V1Mount> = mounts
            .iter()
            .filter(|m| m.fstype == "cgroup")
            .map(|m| {
                let controllers: Vec<String> = m
                    .super_opts
                    .split(',')
                    .filter(|o| !matches!(*o, "rw" | "ro") && (o.starts_with("name=") || !o.contains('=')))
                    .filter(|o| {
                        !matches!(
                            *o,
                            "xattr"
                                | "noprefix"
                                | "clone_children"
                                | "cpuset_v2_mode"
                                | "nsdelegate"
                                | "memory_recursiveprot"
                                | "favordynmods"
                        )
                    })
                    .map(str::to_string)
                    .collect();
                let own_path = own
                    .iter()
                    .find(|(c, _)| !c.is_empty() && c.iter().any(|x| controllers.contains(x)))
                    .map(|(_, p)| p.clone())
                    .unwrap_or_else(|| "/".into());
                V1Mount {
                    mountpoint: reroot(prefix, &m.mountpoint),
                    root: m.root.clone(),
                    controllers,
                    own: own_path,
                }
            })
            .filter(|m| !m.controllers.is_empty())
            .collect();
        let v2 = mounts.iter().find(|m| m.fstype == "cgroup2");
        if v1.is_empty() {
            let m = v2.ok_or(Error::NoHierarchy)?;
            return Ok(Hierarchy::V2 {
                mountpoint: reroot(prefix, &m.mountpoint),
                root: m.root.clone(),
                own: own_v2,
            });
        }
        let unified = v2.map(|m| (reroot(prefix, &m.mountpoint), m.root.clone(), own_v2.clone()));
        Ok(Hierarchy::V1 { mounts: v1, unified })
    }

    pub fn is_v2(&self) -> bool {
        matches!(self, Hierarchy::V2 { .. })
    }
}

/// The directory of cgroup `path` (a path in the hierarchy) under a mount whose root is `mount_root`.
pub fn dir_of(mountpoint: &Path, mount_root: &str, path: &str) -> PathBuf {
    let rel = if mount_root != "/" {
        path.strip_prefix(mount_root).unwrap_or(path)
    } else {
        path
    };
    mountpoint.join(rel.trim_start_matches('/'))
}

#[cfg(test)]
mod tests {
    use super::*;

    const HYBRID: &str = "\
25 1 0:23 / / rw,relatime - ext4 /dev/vda rw
30 25 0:26 / /sys/fs/cgroup ro,nosuid - tmpfs tmpfs ro,mode=755
31 30 0:27 / /sys/fs/cgroup/unified rw,nosuid - cgroup2 cgroup2 rw
32 30 0:28 / /sys/fs/cgroup/systemd rw,nosuid - cgroup cgroup rw,xattr,name=systemd
33 30 0:29 / /sys/fs/cgroup/cpu rw,nosuid - cgroup cgroup rw,cpu
34 30 0:30 / /sys/fs/cgroup/cpuacct rw,nosuid - cgroup cgroup rw,cpuacct
35 30 0:31 / /sys/fs/cgroup/memory rw,nosuid - cgroup cgroup rw,memory
36 30 0:32 / /sys/fs/cgroup/pids rw,nosuid - cgroup cgroup rw,pids
";
    const HYBRID_SELF: &str =
        "5:pids:/user\n4:memory:/user\n3:cpuacct:/\n2:cpu:/\n1:name=systemd:/init.scope\n0::/init.scope\n";

    #[test]
    fn hybrid_layout() {
        let h = Hierarchy::from_texts(HYBRID, HYBRID_SELF, Path::new("/fake")).unwrap();
        let Hierarchy::V1 { mounts, unified } = &h else {
            panic!("not v1: {h:?}")
        };
        assert_eq!(mounts.len(), 5);
        assert_eq!(mounts[0].controllers, vec!["name=systemd"]);
        assert_eq!(mounts[0].own, "/init.scope");
        let mem = mounts.iter().find(|m| m.controllers == ["memory"]).unwrap();
        assert_eq!(mem.mountpoint, PathBuf::from("/fake/sys/fs/cgroup/memory"));
        assert_eq!(mem.own, "/user");
        assert_eq!(
            unified.as_ref().unwrap().0,
            PathBuf::from("/fake/sys/fs/cgroup/unified")
        );
        assert!(!h.is_v2());
    }

    #[test]
    fn pure_v2_and_combined_controllers() {
        let mi = "30 25 0:26 / /sys/fs/cgroup rw,nosuid - cgroup2 cgroup2 rw,nsdelegate\n";
        let h = Hierarchy::from_texts(mi, "0::/user.slice\n", Path::new("/")).unwrap();
        assert_eq!(
            h,
            Hierarchy::V2 {
                mountpoint: "/sys/fs/cgroup".into(),
                root: "/".into(),
                own: "/user.slice".into()
            }
        );
        let mi = "33 30 0:29 / /sys/fs/cgroup/cpu,cpuacct rw - cgroup cgroup rw,cpu,cpuacct\n";
        let h = Hierarchy::from_texts(mi, "2:cpu,cpuacct:/x\n", Path::new("/")).unwrap();
        let Hierarchy::V1 { mounts, unified } = h else {
            panic!()
        };
        assert_eq!(mounts[0].controllers, vec!["cpu", "cpuacct"]);
        assert_eq!(mounts[0].own, "/x");
        assert!(unified.is_none());
        assert!(matches!(
            Hierarchy::from_texts("", "", Path::new("/")),
            Err(Error::NoHierarchy)
        ));
    }

    #[test]
    fn mount_roots_are_stripped() {
        assert_eq!(
            dir_of(
                Path::new("/sys/fs/cgroup/memory"),
                "/docker/abc",
                "/docker/abc/c1"
            ),
            PathBuf::from("/sys/fs/cgroup/memory/c1")
        );
        assert_eq!(
            dir_of(Path::new("/sys/fs/cgroup"), "/", "/a/b"),
            PathBuf::from("/sys/fs/cgroup/a/b")
        );
        assert_eq!(unescape("/a\\040b"), "/a b");
    }
}
