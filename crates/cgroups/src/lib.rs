//! cgroups v1 and v2 for berth, with runc's semantics: where the host's hierarchies are
//! ([`Hierarchy`]), where a container's cgroup goes (`cgroupsPath`), what its resources mean as files
//! (a pure [`Plan`]), and the operations on a created [`Cgroup`] (join, freeze, kill, stats, destroy).

mod cgroup;
pub mod devices;
mod hierarchy;
mod v1;
mod v2;

use std::path::PathBuf;

use berth_spec::Resources;

pub use cgroup::{Cgroup, Stats, V1Dir};
pub use hierarchy::{dir_of, Hierarchy, V1Mount};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{field}: {message}")]
    Invalid { field: String, message: String },
    #[error("systemd cgroup driver is not supported: use cgroupfs paths (no --systemd-cgroup)")]
    Systemd,
    #[error("no cgroup filesystem is mounted")]
    NoHierarchy,
    #[error("read {0}")]
    Read(PathBuf, #[source] std::io::Error),
    #[error("create cgroup {0}")]
    Create(PathBuf, #[source] std::io::Error),
    #[error("write {value:?} to {path}")]
    Write {
        path: PathBuf,
        value: String,
        #[source]
        source: std::io::Error,
    },
    #[error("remove cgroup {0}")]
    Remove(PathBuf, #[source] std::io::Error),
    #[error("load the device filter of {0}")]
    DeviceFilter(PathBuf, #[source] std::io::Error),
    #[error("cgroup {0}: the {1} controller is not available")]
    Controller(PathBuf, String),
    #[error("{0}: {1}")]
    Unavailable(PathBuf, String),
    #[error("freeze {0}: still {1} after 10 s")]
    Freeze(PathBuf, String),
}

impl Error {
    pub(crate) fn invalid(field: &str, message: String) -> Error {
        Error::Invalid {
            field: field.to_string(),
            message,
        }
    }
}

pub(crate) fn check_page_size(i: usize, size: &str) -> Result<(), Error> {
    let ok = size.len() > 2
        && size.ends_with('B')
        && size[..size.len() - 2].chars().all(|c| c.is_ascii_digit())
        && matches!(&size[size.len() - 2..size.len() - 1], "K" | "M" | "G");
    if ok {
        Ok(())
    } else {
        Err(Error::invalid(
            &format!("linux.resources.hugepageLimits[{i}].pageSize"),
            format!("{size:?} is not a page size like 2MB"),
        ))
    }
}

/// runc's rule for the cgroup path of a container: an absolute `cgroupsPath` is taken from the root of
/// each hierarchy; a relative one (or the container id when there is none) from the caller's own
/// cgroup. A `..` that climbs above the root is refused.
pub fn cgroup_path(cgroups_path: Option<&str>, id: &str, own: &str, systemd: bool) -> Result<String, Error> {
    if systemd || cgroups_path.is_some_and(|p| !p.starts_with('/') && p.split(':').count() == 3) {
        return Err(Error::Systemd);
    }
    let given = cgroups_path.filter(|p| !p.is_empty()).unwrap_or(id);
    let joined = if given.starts_with('/') {
        given.to_string()
    } else {
        format!("{}/{}", own.trim_end_matches('/'), given)
    };
    let mut parts: Vec<&str> = Vec::new();
    for c in joined.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                if parts.pop().is_none() {
                    return Err(Error::invalid(
                        "linux.cgroupsPath",
                        format!("{given:?} climbs above the cgroup root"),
                    ));
                }
            }
            c => parts.push(c),
        }
    }
    if parts.is_empty() {
        return Err(Error::invalid(
            "linux.cgroupsPath",
            format!("{given:?} is the cgroup root itself"),
        ));
    }
    Ok(format!("/{}", parts.join("/")))
}

/// What creating the container's cgroup will do: pure data, inspectable by tests.
#[derive(Debug, Clone)]
pub struct Plan {
    pub cgroup: Cgroup,
    /// cgroup v1: (directory, file, value); cgroup v2: the leaf directory with its files.
    pub writes: Vec<(PathBuf, String)>,
    /// v2: the device rules for the eBPF filter (None when every device is allowed).
    pub device_rules: Option<Vec<devices::Rule>>,
}

impl Plan {
    pub fn writes(&self) -> &[(PathBuf, String)] {
        &self.writes
    }

    /// Creates the cgroup: directories, controllers, writes, device filter. On failure, what was
    /// created is removed.
    pub fn create(&self) -> Result<Cgroup, Error> {
        cgroup::create(self)
    }
}

/// Plans the cgroup of container `id` on hierarchy `h`.
pub fn plan(
    h: &Hierarchy,
    cgroups_path: Option<&str>,
    id: &str,
    resources: Option<&Resources>,
    systemd: bool,
) -> Result<Plan, Error> {
    let empty = Resources::default();
    let r = resources.unwrap_or(&empty);
    match h {
        Hierarchy::V2 {
            mountpoint,
            root,
            own,
        } => {
            let path = cgroup_path(cgroups_path, id, own, systemd)?;
            let dir = dir_of(mountpoint, root, &path);
            let writes = v2::writes(r)?
                .into_iter()
                .map(|(f, v)| (dir.join(f), v))
                .collect();
            let rules = devices::parse(&r.devices)?;
            let device_rules = (!devices::allows_all(&rules)).then_some(rules);
            Ok(Plan {
                cgroup: Cgroup::new_v2(mountpoint.clone(), dir),
                writes,
                device_rules,
            })
        }
        Hierarchy::V1 { mounts, unified } => {
            let mut dirs = Vec::new();
            for m in mounts {
                let path = cgroup_path(cgroups_path, id, &m.own, systemd)?;
                dirs.push(V1Dir {
                    mountpoint: m.mountpoint.clone(),
                    controllers: m.controllers.clone(),
                    dir: dir_of(&m.mountpoint, &m.root, &path),
                });
            }
            let has = |c: &str| mounts.iter().any(|m| m.controllers.iter().any(|x| x == c));
            let mut writes = Vec::new();
            for (ctrl, file, value) in v1::writes(r, &has)? {
                if let Some(d) = dirs.iter().find(|d| d.controllers.contains(&ctrl)) {
                    writes.push((d.dir.join(file), value));
                }
            }
            // The controller-less cgroup2 mount of a hybrid host is not joined: nothing is accounted
            // there, and a migration into it costs an RCU grace period on the start path.
            let _ = unified;
            Ok(Plan {
                cgroup: Cgroup::new_v1(dirs),
                writes,
                device_rules: None,
            })
        }
    }
}

#[cfg(test)]
mod tests;
