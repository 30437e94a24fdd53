//! Namespaces: which ones the container creates, which it joins by path, and the user-namespace id
//! mappings. Pure validation of `linux.namespaces`, `linux.uidMappings` and `linux.gidMappings`.

use std::path::PathBuf;

use berth_spec::{IdMapping, Namespace};
use nix::sched::CloneFlags;
use serde::{Deserialize, Serialize};

use super::PlanError;

/// The namespace kinds of the OCI specification.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NsKind {
    User,
    Pid,
    Network,
    Ipc,
    Uts,
    Mount,
    Cgroup,
    Time,
}

impl NsKind {
    pub const ALL: [NsKind; 8] = [
        NsKind::User,
        NsKind::Pid,
        NsKind::Network,
        NsKind::Ipc,
        NsKind::Uts,
        NsKind::Mount,
        NsKind::Cgroup,
        NsKind::Time,
    ];

    /// Parses the spec's `type` string.
    pub fn parse(s: &str) -> Option<NsKind> {
        Some(match s {
            "user" => NsKind::User,
            "pid" => NsKind::Pid,
            "network" => NsKind::Network,
            "ipc" => NsKind::Ipc,
            "uts" => NsKind::Uts,
            "mount" => NsKind::Mount,
            "cgroup" => NsKind::Cgroup,
            "time" => NsKind::Time,
            _ => return None,
        })
    }

    /// The spec's name of the kind.
    pub fn spec_name(self) -> &'static str {
        match self {
            NsKind::User => "user",
            NsKind::Pid => "pid",
            NsKind::Network => "network",
            NsKind::Ipc => "ipc",
            NsKind::Uts => "uts",
            NsKind::Mount => "mount",
            NsKind::Cgroup => "cgroup",
            NsKind::Time => "time",
        }
    }

    /// The name of the kind's link under `/proc/PID/ns/`.
    pub fn proc_name(self) -> &'static str {
        match self {
            NsKind::User => "user",
            NsKind::Pid => "pid",
            NsKind::Network => "net",
            NsKind::Ipc => "ipc",
            NsKind::Uts => "uts",
            NsKind::Mount => "mnt",
            NsKind::Cgroup => "cgroup",
            NsKind::Time => "time",
        }
    }

    /// The `CLONE_NEW*` flag of the kind.
    pub fn clone_flag(self) -> CloneFlags {
        match self {
            NsKind::User => CloneFlags::CLONE_NEWUSER,
            NsKind::Pid => CloneFlags::CLONE_NEWPID,
            NsKind::Network => CloneFlags::CLONE_NEWNET,
            NsKind::Ipc => CloneFlags::CLONE_NEWIPC,
            NsKind::Uts => CloneFlags::CLONE_NEWUTS,
            NsKind::Mount => CloneFlags::CLONE_NEWNS,
            NsKind::Cgroup => CloneFlags::CLONE_NEWCGROUP,
            // CLONE_NEWTIME (0x80) is not in nix's CloneFlags.
            NsKind::Time => CloneFlags::from_bits_retain(0x80),
        }
    }
}

/// What the container does with its namespaces.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NamespacePlan {
    /// Namespaces created for the container, in [`NsKind::ALL`] order.
    pub new: Vec<NsKind>,
    /// Namespaces joined through a path (a `/proc/PID/ns/x` link or a bind mount of one).
    pub join: Vec<(NsKind, PathBuf)>,
}

impl NamespacePlan {
    pub fn creates(&self, kind: NsKind) -> bool {
        self.new.contains(&kind)
    }

    pub fn joins(&self, kind: NsKind) -> Option<&PathBuf> {
        self.join.iter().find(|(k, _)| *k == kind).map(|(_, p)| p)
    }

    /// Whether the container has a namespace of this kind of its own (new or joined).
    pub fn has(&self, kind: NsKind) -> bool {
        self.creates(kind) || self.joins(kind).is_some()
    }

    /// The `CLONE_NEW*` flags of every namespace created.
    pub fn clone_flags(&self) -> CloneFlags {
        self.new
            .iter()
            .fold(CloneFlags::empty(), |acc, k| acc | k.clone_flag())
    }
}

/// Validates `linux.namespaces`.
pub fn plan_namespaces(list: &[Namespace]) -> Result<NamespacePlan, PlanError> {
    let mut plan = NamespacePlan::default();
    let mut seen = Vec::new();
    for (i, ns) in list.iter().enumerate() {
        let field = format!("linux.namespaces[{i}]");
        let kind = NsKind::parse(&ns.typ).ok_or_else(|| {
            PlanError::invalid(
                format!("{field}.type"),
                format!("unknown namespace type {:?}", ns.typ),
            )
        })?;
        if seen.contains(&kind) {
            return Err(PlanError::invalid(
                format!("{field}.type"),
                format!("duplicate namespace type {:?}", ns.typ),
            ));
        }
        seen.push(kind);
        match ns.path.as_deref() {
            None | Some("") => plan.new.push(kind),
            Some(p) if !p.starts_with('/') => {
                return Err(PlanError::invalid(
                    format!("{field}.path"),
                    format!("{p:?} is not an absolute path"),
                ))
            }
            Some(p) => plan.join.push((kind, PathBuf::from(p))),
        }
    }
    plan.new.sort();
    plan.join.sort_by_key(|(k, _)| *k);
    Ok(plan)
}

/// Validates a list of id mappings (`linux.uidMappings` or `linux.gidMappings`): non-empty sizes, no
/// overflow of the 32-bit id space, no overlap on either side, at most 340 lines (the kernel's limit).
pub fn check_mappings(field: &str, maps: &[IdMapping]) -> Result<(), PlanError> {
    if maps.len() > 340 {
        return Err(PlanError::invalid(
            field.to_string(),
            "more than 340 mappings".to_string(),
        ));
    }
    for (i, m) in maps.iter().enumerate() {
        let f = format!("{field}[{i}]");
        if m.size == 0 {
            return Err(PlanError::invalid(f, "size is 0".to_string()));
        }
        let fits = |start: u32| (start as u64) + (m.size as u64) <= (u32::MAX as u64);
        if !fits(m.container_id) || !fits(m.host_id) {
            return Err(PlanError::invalid(
                f,
                "the range does not fit in 32-bit ids".to_string(),
            ));
        }
        for (j, o) in maps.iter().enumerate().take(i) {
            let overlap = |a: u32, b: u32| a < b.saturating_add(o.size) && b < a.saturating_add(m.size);
            if overlap(m.container_id, o.container_id) || overlap(m.host_id, o.host_id) {
                return Err(PlanError::invalid(f, format!("overlaps {field}[{j}]")));
            }
        }
    }
    Ok(())
}

/// The text written to `/proc/PID/uid_map` or `gid_map`.
pub fn mapping_text(maps: &[IdMapping]) -> String {
    maps.iter()
        .map(|m| format!("{} {} {}\n", m.container_id, m.host_id, m.size))
        .collect()
}

/// Maps a container id to the host through `maps` (identity when there are no mappings).
pub fn to_host(maps: &[IdMapping], id: u32) -> Option<u32> {
    if maps.is_empty() {
        return Some(id);
    }
    maps.iter()
        .find(|m| id >= m.container_id && (id - m.container_id) < m.size)
        .map(|m| m.host_id + (id - m.container_id))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ns(t: &str, p: Option<&str>) -> Namespace {
        Namespace {
            typ: t.into(),
            path: p.map(Into::into),
        }
    }

    #[test]
    fn new_and_joined() {
        let p = plan_namespaces(&[
            ns("pid", None),
            ns("network", Some("/var/run/netns/x")),
            ns("mount", None),
        ])
        .unwrap();
        assert_eq!(p.new, vec![NsKind::Pid, NsKind::Mount]);
        assert_eq!(
            p.joins(NsKind::Network).unwrap(),
            &PathBuf::from("/var/run/netns/x")
        );
        assert!(p
            .clone_flags()
            .contains(CloneFlags::CLONE_NEWPID | CloneFlags::CLONE_NEWNS));
        assert!(!p.clone_flags().contains(CloneFlags::CLONE_NEWNET));
    }

    #[test]
    fn unknown_and_duplicate_types_name_the_field() {
        let e = plan_namespaces(&[ns("pid", None), ns("bogus", None)])
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("linux.namespaces[1].type") && e.contains("bogus"),
            "{e}"
        );
        let e = plan_namespaces(&[ns("pid", None), ns("pid", None)])
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("duplicate") && e.contains("linux.namespaces[1]"),
            "{e}"
        );
        let e = plan_namespaces(&[ns("network", Some("relative"))])
            .unwrap_err()
            .to_string();
        assert!(e.contains("linux.namespaces[0].path"), "{e}");
    }

    #[test]
    fn mappings_are_checked() {
        let m = |c, h, s| IdMapping {
            container_id: c,
            host_id: h,
            size: s,
        };
        assert!(check_mappings("linux.uidMappings", &[m(0, 100000, 65536)]).is_ok());
        assert!(check_mappings("linux.uidMappings", &[m(0, 1, 0)]).is_err());
        let e = check_mappings("linux.uidMappings", &[m(0, u32::MAX - 5, 10)])
            .unwrap_err()
            .to_string();
        assert!(e.contains("linux.uidMappings[0]"), "{e}");
        let e = check_mappings("linux.gidMappings", &[m(0, 1000, 10), m(5, 5000, 10)])
            .unwrap_err()
            .to_string();
        assert!(e.contains("overlaps linux.gidMappings[0]"), "{e}");
        assert_eq!(
            mapping_text(&[m(0, 1000, 1), m(1, 100000, 65536)]),
            "0 1000 1\n1 100000 65536\n"
        );
        assert_eq!(to_host(&[m(0, 1000, 1), m(1, 100000, 65536)], 5), Some(100004));
        assert_eq!(to_host(&[m(0, 1000, 1)], 5), None);
    }
}
