//! Plan, then apply: the whole container is computed from config.json (and the command line) as pure
//! data before anything is cloned. Every validation error names the config.json field it is about.

pub mod mounts;
pub mod namespaces;
pub mod process;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use berth_spec::{Hooks, IdMapping, Spec};
use nix::mount::MsFlags;
use serde::{Deserialize, Serialize};

pub use mounts::{clean_container_path, parse_options, MountOptions};
pub use namespaces::{NamespacePlan, NsKind};
pub use process::{CapSets, ProcessPlan};

/// A config.json that cannot be run.
#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    #[error("{field}: {message}")]
    Invalid { field: String, message: String },
    #[error("{field}: {what} is not supported")]
    Unsupported { field: String, what: String },
    #[error("{field}: required")]
    Missing { field: &'static str },
}

impl PlanError {
    pub fn invalid(field: String, message: String) -> PlanError {
        PlanError::Invalid { field, message }
    }
}

/// One mount of `mounts[]`, validated.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MountPlan {
    /// Cleaned absolute path inside the container.
    pub destination: String,
    pub fstype: String,
    /// The source as given (a host path for binds: made absolute against the bundle).
    pub source: String,
    pub options: MountOptions,
}

/// A device node to create in the container's /dev.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DevicePlan {
    /// Cleaned absolute path, always under /dev.
    pub path: String,
    /// `c`, `b` (`u` is `c`) or `p`.
    pub kind: char,
    pub major: u64,
    pub minor: u64,
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
}

/// The devices every container gets (runc's list), unless /dev is bind-mounted from the host.
pub fn default_devices() -> Vec<DevicePlan> {
    [
        ("/dev/null", 1, 3),
        ("/dev/zero", 1, 5),
        ("/dev/full", 1, 7),
        ("/dev/random", 1, 8),
        ("/dev/urandom", 1, 9),
        ("/dev/tty", 5, 0),
    ]
    .iter()
    .map(|(p, ma, mi)| DevicePlan {
        path: p.to_string(),
        kind: 'c',
        major: *ma,
        minor: *mi,
        mode: 0o666,
        uid: 0,
        gid: 0,
    })
    .collect()
}

/// Everything `create` does, as data.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Plan {
    pub id: String,
    pub bundle: PathBuf,
    /// `root.path` as given (relative to the bundle, or absolute).
    pub root_path: String,
    pub root_readonly: bool,
    pub namespaces: NamespacePlan,
    pub uid_mappings: Vec<IdMapping>,
    pub gid_mappings: Vec<IdMapping>,
    pub mounts: Vec<MountPlan>,
    /// Propagation of the container's `/` after pivot_root (`rootfsPropagation`), if given.
    #[serde(with = "opt_flags")]
    pub rootfs_propagation: Option<MsFlags>,
    pub devices: Vec<DevicePlan>,
    /// Whether /dev is bind-mounted from the host (then no device nodes are created).
    pub dev_is_bind: bool,
    pub masked_paths: Vec<String>,
    pub readonly_paths: Vec<String>,
    pub hostname: Option<String>,
    pub domainname: Option<String>,
    pub sysctl: BTreeMap<String, String>,
    pub process: ProcessPlan,
    pub hooks: Hooks,
    pub annotations: BTreeMap<String, String>,
    pub oci_version: String,
    pub time_offsets: Vec<(String, i64, u32)>,
}

/// Builds the plan of a container from its config.json. `bundle` must be absolute.
pub fn plan(id: &str, bundle: &Path, spec: &Spec) -> Result<Plan, PlanError> {
    check_version(&spec.oci_version)?;
    let root = spec.root.as_ref().ok_or(PlanError::Missing { field: "root" })?;
    check_root_path(&root.path)?;
    let proc_spec = spec
        .process
        .as_ref()
        .ok_or(PlanError::Missing { field: "process" })?;
    let process = process::plan_process("process", proc_spec)?;
    check_unsupported(spec)?;
    let empty = berth_spec::Linux::default();
    let linux = spec.linux.as_ref().unwrap_or(&empty);
    let namespaces = namespaces::plan_namespaces(&linux.namespaces)?;
    plan_user_ns(&namespaces, linux)?;
    if spec.hostname.as_deref().is_some_and(|h| !h.is_empty()) && !namespaces.has(NsKind::Uts) {
        return Err(PlanError::invalid(
            "hostname".into(),
            "a hostname needs a uts namespace".into(),
        ));
    }
    if spec.domainname.as_deref().is_some_and(|h| !h.is_empty()) && !namespaces.has(NsKind::Uts) {
        return Err(PlanError::invalid(
            "domainname".into(),
            "a domainname needs a uts namespace".into(),
        ));
    }
    check_sysctls(&linux.sysctl, &namespaces)?;
    let mounts = plan_mounts(bundle, spec)?;
    let dev_is_bind = mounts
        .iter()
        .any(|m| m.destination == "/dev" && m.options.is_bind());
    let mut devices = if dev_is_bind {
        Vec::new()
    } else {
        default_devices()
    };
    for (i, d) in linux.devices.iter().enumerate() {
        let dev = plan_device(i, d)?;
        devices.retain(|x| x.path != dev.path);
        devices.push(dev);
    }
    let rootfs_propagation = match linux.rootfs_propagation.as_deref() {
        None | Some("") => None,
        Some(p) => Some(
            parse_options("linux.rootfsPropagation", &[p.to_string()])?
                .propagation
                .first()
                .copied()
                .ok_or_else(|| {
                    PlanError::invalid(
                        "linux.rootfsPropagation".into(),
                        format!("unknown propagation {p:?}"),
                    )
                })?,
        ),
    };
    if !namespaces.has(NsKind::Mount) {
        return Err(PlanError::Unsupported {
            field: "linux.namespaces".into(),
            what: "a container without a mount namespace".into(),
        });
    }
    let clean_list = |field: &str, list: &[String]| -> Result<Vec<String>, PlanError> {
        list.iter()
            .enumerate()
            .map(|(i, p)| clean_container_path(&format!("{field}[{i}]"), p))
            .collect()
    };
    let time_offsets = match &linux.time_offsets {
        Some(offsets) if !offsets.is_empty() => {
            if !namespaces.creates(NsKind::Time) {
                return Err(PlanError::invalid(
                    "linux.timeOffsets".into(),
                    "time offsets need a new time namespace".into(),
                ));
            }
            let mut v = Vec::new();
            for (clock, o) in offsets {
                if clock != "monotonic" && clock != "boottime" {
                    return Err(PlanError::invalid(
                        format!("linux.timeOffsets.{clock}"),
                        "unknown clock".into(),
                    ));
                }
                v.push((clock.clone(), o.secs, o.nanosecs));
            }
            v
        }
        _ => Vec::new(),
    };
    Ok(Plan {
        id: id.to_string(),
        bundle: bundle.to_path_buf(),
        root_path: root.path.clone(),
        root_readonly: root.readonly,
        namespaces,
        uid_mappings: linux.uid_mappings.clone(),
        gid_mappings: linux.gid_mappings.clone(),
        mounts,
        rootfs_propagation,
        devices,
        dev_is_bind,
        masked_paths: clean_list("linux.maskedPaths", &linux.masked_paths)?,
        readonly_paths: clean_list("linux.readonlyPaths", &linux.readonly_paths)?,
        hostname: spec.hostname.clone().filter(|h| !h.is_empty()),
        domainname: spec.domainname.clone().filter(|h| !h.is_empty()),
        sysctl: linux.sysctl.clone(),
        process,
        hooks: spec.hooks.clone().unwrap_or_default(),
        annotations: spec.annotations.clone(),
        oci_version: spec.oci_version.clone(),
        time_offsets,
    })
}

/// Fields berth-runtime does not implement yet: refused by name rather than silently ignored.
fn check_unsupported(spec: &Spec) -> Result<(), PlanError> {
    let unsupported = |field: &str, what: &str| PlanError::Unsupported {
        field: field.into(),
        what: what.into(),
    };
    if let Some(p) = &spec.process {
        if p.scheduler.is_some() {
            return Err(unsupported("process.scheduler", "a scheduling policy"));
        }
        if p.exec_cpu_affinity.is_some() {
            return Err(unsupported("process.execCPUAffinity", "cpu affinity"));
        }
        if p.io_priority.is_some() {
            return Err(unsupported("process.ioPriority", "an I/O priority"));
        }
    }
    if let Some(l) = &spec.linux {
        if l.personality.is_some() {
            return Err(unsupported("linux.personality", "an execution domain"));
        }
        if l.intel_rdt.is_some() {
            return Err(unsupported("linux.intelRdt", "Intel RDT"));
        }
    }
    Ok(())
}

fn check_version(v: &str) -> Result<(), PlanError> {
    if v.split('.').next() == Some("1") {
        Ok(())
    } else {
        Err(PlanError::invalid(
            "ociVersion".into(),
            format!("{v:?} is not a 1.x version of the runtime specification"),
        ))
    }
}

fn check_root_path(path: &str) -> Result<(), PlanError> {
    if path.is_empty() {
        return Err(PlanError::invalid("root.path".into(), "empty path".into()));
    }
    if !path.starts_with('/') {
        // Relative to the bundle: it must stay inside it.
        let mut depth = 0i32;
        for c in path.split('/') {
            match c {
                "" | "." => {}
                ".." => depth -= 1,
                _ => depth += 1,
            }
            if depth < 0 {
                return Err(PlanError::invalid(
                    "root.path".into(),
                    format!("{path:?} escapes the bundle through \"..\""),
                ));
            }
        }
    }
    Ok(())
}

fn plan_user_ns(ns: &NamespacePlan, linux: &berth_spec::Linux) -> Result<(), PlanError> {
    let has_maps = !linux.uid_mappings.is_empty() || !linux.gid_mappings.is_empty();
    if ns.creates(NsKind::User) {
        if linux.uid_mappings.is_empty() {
            return Err(PlanError::invalid(
                "linux.uidMappings".into(),
                "a new user namespace needs uid mappings".into(),
            ));
        }
        if linux.gid_mappings.is_empty() {
            return Err(PlanError::invalid(
                "linux.gidMappings".into(),
                "a new user namespace needs gid mappings".into(),
            ));
        }
    } else if has_maps && ns.joins(NsKind::User).is_none() {
        return Err(PlanError::invalid(
            "linux.uidMappings".into(),
            "id mappings given without a user namespace".into(),
        ));
    }
    namespaces::check_mappings("linux.uidMappings", &linux.uid_mappings)?;
    namespaces::check_mappings("linux.gidMappings", &linux.gid_mappings)
}

/// runc's rule: a sysctl may be set only when it belongs to a namespace the container has of its own.
fn check_sysctls(sysctl: &BTreeMap<String, String>, ns: &NamespacePlan) -> Result<(), PlanError> {
    const IPC: [&str; 7] = [
        "kernel.msgmax",
        "kernel.msgmnb",
        "kernel.msgmni",
        "kernel.sem",
        "kernel.shmall",
        "kernel.shmmax",
        "kernel.shmmni",
    ];
    for key in sysctl.keys() {
        let field = format!("linux.sysctl.{key}");
        if key.contains("..") || key.contains('\0') || key.starts_with('/') || key.is_empty() {
            return Err(PlanError::invalid(field, "not a sysctl name".into()));
        }
        let k = key.replace('/', ".");
        let ok = if IPC.contains(&k.as_str())
            || k.starts_with("kernel.shm_rmid_forced")
            || k.starts_with("fs.mqueue.")
        {
            ns.has(NsKind::Ipc)
        } else if k.starts_with("net.") {
            ns.has(NsKind::Network)
        } else if k == "kernel.hostname" || k == "kernel.domainname" {
            return Err(PlanError::invalid(
                field,
                "set the hostname with the hostname field instead".into(),
            ));
        } else {
            return Err(PlanError::invalid(
                field,
                "not in a namespace of the container's own".into(),
            ));
        };
        if !ok {
            return Err(PlanError::invalid(
                field,
                "needs a namespace of the container's own".into(),
            ));
        }
    }
    Ok(())
}

fn plan_mounts(bundle: &Path, spec: &Spec) -> Result<Vec<MountPlan>, PlanError> {
    let mut out = Vec::new();
    for (i, m) in spec.mounts.iter().enumerate() {
        let field = format!("mounts[{i}]");
        if m.destination.is_empty() {
            return Err(PlanError::invalid(
                format!("{field}.destination"),
                "empty destination".into(),
            ));
        }
        let destination = clean_container_path(&format!("{field}.destination"), &m.destination)?;
        let options = parse_options(&format!("{field}.options"), m.options.as_deref().unwrap_or(&[]))?;
        let mut fstype = m.typ.clone().unwrap_or_default();
        let is_bind = options.is_bind() || fstype == "bind";
        let mut options = options;
        if fstype == "bind" {
            options.flags.insert(MsFlags::MS_BIND);
        }
        if is_bind {
            fstype = "bind".into();
        } else if fstype.is_empty() || fstype == "none" {
            return Err(PlanError::invalid(
                format!("{field}.type"),
                "a mount that is not a bind mount needs a type".into(),
            ));
        }
        let mut source = m.source.clone().unwrap_or_default();
        if is_bind {
            if source.is_empty() {
                return Err(PlanError::invalid(
                    format!("{field}.source"),
                    "a bind mount needs a source".into(),
                ));
            }
            if !source.starts_with('/') {
                source = bundle.join(&source).to_string_lossy().into_owned();
            }
        }
        if !m.uid_mappings.is_empty() || !m.gid_mappings.is_empty() {
            return Err(PlanError::Unsupported {
                field: format!("{field}.uidMappings"),
                what: "id-mapped mounts".into(),
            });
        }
        out.push(MountPlan {
            destination,
            fstype,
            source,
            options,
        });
    }
    Ok(out)
}

fn plan_device(i: usize, d: &berth_spec::Device) -> Result<DevicePlan, PlanError> {
    let field = format!("linux.devices[{i}]");
    let path = clean_container_path(&format!("{field}.path"), &d.path)?;
    if !path.starts_with("/dev/") {
        return Err(PlanError::invalid(
            format!("{field}.path"),
            format!("{:?} is not under /dev", d.path),
        ));
    }
    let kind = match d.typ.as_str() {
        "c" | "u" => 'c',
        "b" => 'b',
        "p" => 'p',
        t => {
            return Err(PlanError::invalid(
                format!("{field}.type"),
                format!("unknown device type {t:?}"),
            ))
        }
    };
    if kind != 'p' && (d.major < 0 || d.minor < 0) {
        return Err(PlanError::invalid(field, "negative major or minor number".into()));
    }
    let mode = d.file_mode.unwrap_or(0o666);
    if mode & !0o7777 != 0 {
        return Err(PlanError::invalid(
            format!("{field}.fileMode"),
            format!("{mode:o} is not a permission mode"),
        ));
    }
    Ok(DevicePlan {
        path,
        kind,
        major: d.major.max(0) as u64,
        minor: d.minor.max(0) as u64,
        mode,
        uid: d.uid.unwrap_or(0),
        gid: d.gid.unwrap_or(0),
    })
}

mod opt_flags {
    use nix::mount::MsFlags;
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    pub fn serialize<S: Serializer>(f: &Option<MsFlags>, s: S) -> Result<S::Ok, S::Error> {
        f.map(|x| x.bits()).serialize(s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<MsFlags>, D::Error> {
        Ok(Option::<u64>::deserialize(d)?.map(MsFlags::from_bits_retain))
    }
}

#[cfg(test)]
mod tests;
