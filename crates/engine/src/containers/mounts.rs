//! A container's mount points, planned from `HostConfig.Binds`, `HostConfig.Mounts`,
//! `HostConfig.VolumesFrom` and `Config.Volumes` (the image's `VOLUME`s merged with `-v /path`)
//! with dockerd's rules and messages, and turned into OCI mounts at start. Pure: what needs the
//! host (does a bind source exist, which mounts has another container) comes in through
//! [`Lookups`].
//!
//! Order of precedence, as dockerd: `--volumes-from` first, then binds (which replace a
//! volumes-from mount at the same destination; two binds at one destination are an error), then
//! `Mounts` (a duplicate of a bind or another mount is an error), then anonymous volumes for the
//! `Config.Volumes` destinations nothing else covers.

use std::collections::BTreeMap;

use berth_spec as oci;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::images::Error;
use crate::volumes::local;

/// One mount point of a container, kept in its record.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct MountPoint {
    /// `bind`, `volume` or `tmpfs`.
    #[serde(rename = "type")]
    pub typ: String,
    /// The volume's name (volumes only).
    pub name: String,
    /// The host path: a bind's source, a volume's `_data` (filled when the volume is resolved).
    pub source: String,
    pub destination: String,
    pub mode: String,
    pub rw: bool,
    pub propagation: String,
    /// Copy the image's content at the destination into the volume when it is empty.
    pub copy_data: bool,
    /// A `-v` bind: a missing host directory is created at start (a `--mount` bind must exist).
    pub create_source: bool,
    /// `bind-nonrecursive`: `bind` rather than `rbind`.
    pub non_recursive: bool,
    /// A tmpfs mount's options (`size=64m,mode=1777`).
    pub tmpfs_data: String,
    /// A volume this container made without a name (removed with `rm -v`).
    pub anonymous: bool,
    /// For a volume created by this mount: its labels and driver options.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub volume_labels: BTreeMap<String, String>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub volume_options: BTreeMap<String, String>,
}

impl MountPoint {
    /// The entry of `Mounts` in `GET /containers/{id}/json` and `/containers/json`.
    pub fn shown(&self) -> Value {
        let mut v = json!({
            "Type": self.typ,
            "Source": self.source,
            "Destination": self.destination,
            "Mode": self.mode,
            "RW": self.rw,
            "Propagation": self.propagation,
        });
        if self.typ == "volume" {
            v["Name"] = json!(self.name);
            v["Driver"] = json!("local");
        }
        v
    }

    /// The OCI mount for this point, its source resolved to `source` on the host.
    pub fn to_oci(&self, source: &str) -> oci::Mount {
        if self.typ == "tmpfs" {
            let mut o: Vec<String> = ["noexec", "nosuid", "nodev", "rprivate"]
                .iter()
                .map(|s| s.to_string())
                .collect();
            o.extend(
                self.tmpfs_data
                    .split(',')
                    .filter(|s| !s.is_empty())
                    .map(String::from),
            );
            return oci::Mount {
                destination: self.destination.clone(),
                typ: Some("tmpfs".into()),
                source: Some("tmpfs".into()),
                options: Some(o),
                ..Default::default()
            };
        }
        let mut o = vec![if self.non_recursive { "bind" } else { "rbind" }.to_string()];
        if !self.rw {
            o.push("ro".into());
        }
        o.push(if self.propagation.is_empty() {
            "rprivate".to_string()
        } else {
            self.propagation.clone()
        });
        oci::Mount {
            destination: self.destination.clone(),
            typ: Some("bind".into()),
            source: Some(source.to_string()),
            options: Some(o),
            ..Default::default()
        }
    }
}

/// What planning needs from outside.
pub struct Lookups<'a> {
    /// Whether a host path exists (for `--mount type=bind`).
    pub path_exists: &'a dyn Fn(&str) -> bool,
    /// The mount points of another container (`--volumes-from`), or dockerd's error.
    pub container_mounts: &'a dyn Fn(&str) -> Result<Vec<MountPoint>, Error>,
    /// A fresh name for an anonymous volume.
    pub new_name: &'a dyn Fn() -> String,
}

/// What a container asks for.
#[derive(Debug, Clone, Default)]
pub struct Request {
    pub binds: Vec<String>,
    pub mounts: Vec<Value>,
    pub volumes_from: Vec<String>,
    /// The destinations of `Config.Volumes`.
    pub volumes: Vec<String>,
}

const PROPAGATIONS: [&str; 6] = ["private", "rprivate", "slave", "rslave", "shared", "rshared"];

fn invalid(m: impl Into<String>) -> Error {
    Error::Invalid(m.into())
}

/// dockerd's `validMountMode`: known words, at most one of each kind.
pub fn valid_mode(mode: &str) -> bool {
    if mode.is_empty() {
        return true;
    }
    let mut counts = [0u8; 5];
    for o in mode.split(',') {
        let kind = match o {
            "rw" | "ro" => 0,
            "z" | "Z" => 1,
            p if PROPAGATIONS.contains(&p) => 2,
            "nocopy" => 3,
            "consistent" | "cached" | "delegated" => 4,
            _ => return false,
        };
        counts[kind] += 1;
    }
    counts.iter().all(|c| *c <= 1)
}

fn clean(p: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for c in p.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            c => parts.push(c),
        }
    }
    format!("/{}", parts.join("/"))
}

/// The destination checks every type shares, with dockerd's wording.
fn check_target(typ: &str, target: &str) -> Result<(), String> {
    if target.is_empty() {
        return Err("field Target must not be empty".into());
    }
    if !target.starts_with('/') {
        return Err(format!(
            "invalid mount path: '{target}' mount path must be absolute"
        ));
    }
    if clean(target) == "/" {
        let _ = typ;
        return Err("invalid specification: destination can't be '/'".into());
    }
    Ok(())
}

fn mount_config(typ: &str, m: impl std::fmt::Display) -> Error {
    invalid(format!("invalid mount config for type {typ:?}: {m}"))
}

/// One `-v`/`Binds` entry (`host:ctr[:mode]`, `name:ctr[:mode]`, `ctr`), as dockerd's
/// `ParseMountRaw`; the bind source need not exist (it is created at start).
pub fn parse_bind(raw: &str, lk: &Lookups) -> Result<MountPoint, Error> {
    let spec_err = || invalid(format!("invalid volume specification: '{raw}'"));
    let arr: Vec<&str> = raw.splitn(4, ':').collect();
    if arr[0].is_empty() {
        return Err(spec_err());
    }
    let (source, target, mode) = match arr.len() {
        1 => ("", arr[0], ""),
        2 if valid_mode(arr[1]) => return Err(spec_err()),
        2 => (arr[0], arr[1], ""),
        3 => (arr[0], arr[1], arr[2]),
        _ => return Err(spec_err()),
    };
    if !valid_mode(mode) {
        return Err(invalid(format!("invalid mode: {mode}")));
    }
    let typ = if source.starts_with('/') { "bind" } else { "volume" };
    check_target(typ, target).map_err(|e| {
        invalid(format!(
            "invalid volume specification: '{raw}': invalid mount config for type {typ:?}: {e}"
        ))
    })?;
    let words: Vec<&str> = mode.split(',').collect();
    let rw = !words.contains(&"ro");
    let propagation = words
        .iter()
        .find(|w| PROPAGATIONS.contains(w))
        .map(|s| s.to_string());
    let mut mp = MountPoint {
        typ: typ.into(),
        destination: clean(target),
        mode: mode.to_string(),
        rw,
        ..Default::default()
    };
    if typ == "bind" {
        mp.source = clean(source);
        mp.propagation = propagation.unwrap_or_else(|| "rprivate".into());
        mp.create_source = true;
    } else {
        mp.copy_data = !words.contains(&"nocopy");
        if source.is_empty() {
            mp.name = (lk.new_name)();
            mp.anonymous = true;
        } else {
            local::check_name(source)?;
            mp.name = source.to_string();
        }
        if mp.mode.is_empty() {
            mp.mode = "z".into();
        }
    }
    Ok(mp)
}

/// docker's API `Mount` object.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
struct ApiMount {
    #[serde(rename = "Type")]
    typ: String,
    source: String,
    target: String,
    read_only: bool,
    bind_options: Option<BindOptions>,
    volume_options: Option<VolumeOptions>,
    tmpfs_options: Option<TmpfsOptions>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
struct BindOptions {
    propagation: String,
    non_recursive: bool,
    create_mountpoint: bool,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
struct VolumeOptions {
    no_copy: bool,
    labels: Option<BTreeMap<String, String>>,
    driver_config: Option<DriverConfig>,
    subpath: String,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
struct DriverConfig {
    name: String,
    options: Option<BTreeMap<String, String>>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
struct TmpfsOptions {
    size_bytes: i64,
    mode: u32,
    options: Option<Vec<Vec<String>>>,
}

/// dockerd's `ConvertTmpfsOptions`: `ro`, `mode=` in octal, `size=` with the largest exact suffix,
/// then `exec`/`noexec`.
fn tmpfs_data(o: Option<&TmpfsOptions>, read_only: bool) -> Result<String, String> {
    let mut raw: Vec<String> = Vec::new();
    if read_only {
        raw.push("ro".into());
    }
    if let Some(o) = o {
        if o.mode != 0 {
            raw.push(format!("mode={:o}", o.mode));
        }
        if o.size_bytes != 0 {
            let (mut size, mut suffix) = (o.size_bytes, "");
            for (s, d) in [("g", 1i64 << 30), ("m", 1 << 20), ("k", 1 << 10)] {
                if size % d == 0 {
                    size /= d;
                    suffix = s;
                    break;
                }
            }
            raw.push(format!("size={size}{suffix}"));
        }
        for opt in o.options.iter().flatten() {
            if opt.is_empty() || opt.len() > 2 {
                return Err("invalid option array length".into());
            }
            if !matches!(opt[0].as_str(), "exec" | "noexec") {
                return Err(format!("invalid option: {}", opt[0]));
            }
            raw.push(opt.join("="));
        }
    }
    Ok(raw.join(","))
}

/// One `HostConfig.Mounts` entry, validated as dockerd's `ValidateMountConfig`.
pub fn parse_mount(v: &Value, lk: &Lookups) -> Result<MountPoint, Error> {
    let m: ApiMount =
        serde_json::from_value(v.clone()).map_err(|e| invalid(format!("invalid mount: {e}")))?;
    let typ = m.typ.as_str();
    let err = |e: &str| mount_config(typ, e);
    check_target(typ, &m.target).map_err(|e| err(&e))?;
    let mut mp = MountPoint {
        typ: typ.into(),
        destination: clean(&m.target),
        rw: !m.read_only,
        ..Default::default()
    };
    match typ {
        "bind" => {
            if m.source.is_empty() {
                return Err(err("field Source must not be empty"));
            }
            if m.volume_options.is_some() {
                return Err(err("field VolumeOptions must not be specified"));
            }
            let b = m.bind_options.unwrap_or_default();
            if !b.propagation.is_empty() && !PROPAGATIONS.contains(&b.propagation.as_str()) {
                return Err(err(&format!("invalid propagation mode: {}", b.propagation)));
            }
            if !m.source.starts_with('/') {
                return Err(err(&format!(
                    "invalid mount path: '{}' mount path must be absolute",
                    m.source
                )));
            }
            if !b.create_mountpoint && !(lk.path_exists)(&m.source) {
                return Err(err(&format!("bind source path does not exist: {}", m.source)));
            }
            mp.source = clean(&m.source);
            mp.propagation = if b.propagation.is_empty() {
                "rprivate".into()
            } else {
                b.propagation
            };
            mp.non_recursive = b.non_recursive;
            mp.create_source = b.create_mountpoint;
        }
        "volume" => {
            if m.bind_options.is_some() {
                return Err(err("field BindOptions must not be specified"));
            }
            let anonymous = m.source.is_empty();
            let vo = m.volume_options.unwrap_or_default();
            if !vo.subpath.is_empty() {
                return Err(err("berth does not support volume subpaths yet"));
            }
            if m.read_only && anonymous {
                return Err(err("must not set ReadOnly mode when using anonymous volumes"));
            }
            if let Some(d) = vo
                .driver_config
                .as_ref()
                .filter(|d| !matches!(d.name.as_str(), "" | "local"))
            {
                return Err(Error::NotFound(format!(
                    "error looking up volume plugin {}: plugin {:?} not found",
                    d.name, d.name
                )));
            }
            mp.volume_options = vo.driver_config.and_then(|d| d.options).unwrap_or_default();
            local::plan(&mp.volume_options)?;
            mp.volume_labels = vo.labels.unwrap_or_default();
            mp.copy_data = !vo.no_copy;
            mp.mode = "z".into();
            if anonymous {
                mp.name = (lk.new_name)();
                mp.anonymous = true;
            } else {
                local::check_name(&m.source)?;
                mp.name = m.source.clone();
            }
        }
        "tmpfs" => {
            if m.bind_options.is_some() {
                return Err(err("field BindOptions must not be specified"));
            }
            if !m.source.is_empty() {
                return Err(err("field Source must not be specified"));
            }
            mp.tmpfs_data = tmpfs_data(m.tmpfs_options.as_ref(), m.read_only).map_err(|e| err(&e))?;
        }
        "image" | "npipe" | "cluster" => {
            return Err(err(&format!("berth does not support {typ} mounts")));
        }
        _ => return Err(err("mount type unknown")),
    }
    Ok(mp)
}

/// `--volumes-from NAME[:ro|rw]`, as dockerd's `ParseVolumesFrom`.
pub fn parse_volumes_from(spec: &str) -> Result<(String, bool), Error> {
    if spec.is_empty() {
        return Err(invalid("volumes-from specification cannot be an empty string"));
    }
    let (id, mode) = spec.split_once(':').unwrap_or((spec, ""));
    if mode.is_empty() {
        return Ok((id.to_string(), true));
    }
    let words: Vec<&str> = mode.split(',').collect();
    if !valid_mode(mode) || words.iter().any(|w| PROPAGATIONS.contains(w) || *w == "nocopy") {
        return Err(invalid(format!("invalid mode: {mode}")));
    }
    Ok((id.to_string(), !words.contains(&"ro")))
}

/// A container's mount points (see the module's doc for the order).
pub fn plan(req: &Request, lk: &Lookups) -> Result<Vec<MountPoint>, Error> {
    let mut out: Vec<MountPoint> = Vec::new();
    for spec in &req.volumes_from {
        let (name, rw) = parse_volumes_from(spec)?;
        for mut m in (lk.container_mounts)(&name)? {
            m.rw = m.rw && rw;
            m.copy_data = false;
            m.anonymous = false;
            out.retain(|o| o.destination != m.destination);
            out.push(m);
        }
    }
    // Binds, then `Mounts`: each replaces a volumes-from mount, but not another bind or mount.
    let explicit = req
        .binds
        .iter()
        .map(|raw| parse_bind(raw, lk))
        .chain(req.mounts.iter().map(|v| parse_mount(v, lk)));
    let mut taken: Vec<String> = Vec::new();
    for m in explicit {
        let m = m?;
        if taken.contains(&m.destination) {
            return Err(invalid(format!("Duplicate mount point: {}", m.destination)));
        }
        taken.push(m.destination.clone());
        out.retain(|o| o.destination != m.destination);
        out.push(m);
    }
    for dest in &req.volumes {
        check_target("volume", dest).map_err(|e| mount_config("volume", e))?;
        let d = clean(dest);
        if out.iter().any(|o| o.destination == d) {
            continue;
        }
        out.push(MountPoint {
            typ: "volume".into(),
            name: (lk.new_name)(),
            destination: d,
            rw: true,
            copy_data: true,
            anonymous: true,
            ..Default::default()
        });
    }
    Ok(out)
}

/// Puts the user's mounts into `spec_mounts` (docker's defaults, already there) with `files` (the
/// hosts files): a default at the same destination as a user mount goes (and the defaults under
/// `/dev` when the user mounts `/dev`), then the files and the user's mounts follow, sorted by
/// the depth of their destination (stable), as dockerd sorts them.
pub fn merge(spec_mounts: &mut Vec<oci::Mount>, files: Vec<oci::Mount>, user: Vec<oci::Mount>) {
    let user_dests: Vec<String> = user.iter().map(|m| m.destination.clone()).collect();
    let dev = user_dests.iter().any(|d| d == "/dev");
    spec_mounts
        .retain(|m| !(user_dests.contains(&m.destination) || (dev && m.destination.starts_with("/dev/"))));
    let mut rest: Vec<oci::Mount> = files
        .into_iter()
        .filter(|f| !user_dests.contains(&f.destination))
        .chain(user)
        .collect();
    rest.sort_by_key(|m| clean(&m.destination).matches('/').count());
    spec_mounts.extend(rest);
}

#[cfg(test)]
mod tests;
