//! The runtime's use of `berth_cgroups`: planning the container's cgroup from config.json, keeping it
//! in the state file, and describing what the container sees at a `cgroup` mount.

pub use berth_cgroups::Cgroup;

use berth_spec::DeviceCgroup;

use crate::plan::DevicePlan;
use crate::rootfs::CgroupMount;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Cgroups(#[from] berth_cgroups::Error),
    #[error("cgroup in the state file")]
    State(#[source] serde_json::Error),
}

/// The cgroup a container will get (nothing is created yet).
pub struct Planned(berth_cgroups::Plan);

impl Planned {
    pub fn create(&self) -> Result<Cgroup, Error> {
        Ok(self.0.create()?)
    }
}

/// Plans the container's cgroup on this host's hierarchy. `devices` are the nodes the container gets
/// (`linux.devices` and the defaults): access to them is allowed whatever the rules say, as in runc.
pub fn plan(
    id: &str,
    cgroups_path: Option<&str>,
    resources: Option<&berth_spec::Resources>,
    devices: &[DevicePlan],
    systemd: bool,
) -> Result<Planned, Error> {
    let h = berth_cgroups::Hierarchy::detect()?;
    let r = effective_resources(resources, devices);
    Ok(Planned(berth_cgroups::plan(
        &h,
        cgroups_path,
        id,
        Some(&r),
        systemd,
    )?))
}

fn rule(kind: &str, major: Option<i64>, minor: Option<i64>, access: &str) -> DeviceCgroup {
    DeviceCgroup {
        allow: true,
        typ: Some(kind.into()),
        major,
        minor,
        access: Some(access.into()),
    }
}

/// The resources with runc's always-allowed devices appended to the device rules (mknod of anything,
/// the standard nodes, ptys) and an allow rule per device node the container gets.
pub fn effective_resources(
    resources: Option<&berth_spec::Resources>,
    devices: &[DevicePlan],
) -> berth_spec::Resources {
    let mut r = resources.cloned().unwrap_or_default();
    if r.devices.is_empty() {
        // No rules at all: every device stays allowed (runc's behaviour for an empty list).
        return r;
    }
    r.devices.extend([
        rule("c", None, None, "m"),
        rule("b", None, None, "m"),
        rule("c", Some(1), Some(3), "rwm"),
        rule("c", Some(1), Some(8), "rwm"),
        rule("c", Some(1), Some(7), "rwm"),
        rule("c", Some(5), Some(0), "rwm"),
        rule("c", Some(1), Some(5), "rwm"),
        rule("c", Some(1), Some(9), "rwm"),
        rule("c", Some(136), None, "rwm"),
        rule("c", Some(5), Some(2), "rwm"),
    ]);
    for d in devices {
        if d.kind == 'c' || d.kind == 'b' {
            r.devices.push(rule(
                &d.kind.to_string(),
                Some(d.major as i64),
                Some(d.minor as i64),
                "rwm",
            ));
        }
    }
    r
}

pub fn to_json(cg: &Cgroup) -> serde_json::Value {
    serde_json::to_value(cg).unwrap_or_default()
}

pub fn from_json(v: &serde_json::Value) -> Result<Cgroup, Error> {
    serde_json::from_value(v.clone()).map_err(Error::State)
}

/// What a `cgroup` mount shows the container: its own cgroup directories.
pub fn mount_info(cg: &Cgroup, cgroupns: bool) -> CgroupMount {
    let mut m = CgroupMount {
        cgroupns,
        ..Default::default()
    };
    match cg.v2_path() {
        Some(p) => m.v2_dir = Some(p.to_path_buf()),
        None => {
            for (mountpoint, dir) in cg.v1_paths() {
                let name = mountpoint
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default();
                if !name.is_empty() {
                    m.v1.push((name, dir.to_path_buf()));
                }
            }
        }
    }
    m
}
