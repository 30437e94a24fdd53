//! The container's process: arguments, environment, user, capabilities, rlimits, terminal. Pure
//! validation of `process`; capability sets become bit masks.

use berth_spec::{Capabilities, Process};
use serde::{Deserialize, Serialize};

use super::PlanError;

/// Capability names in kernel order: the index is the capability number.
pub use berth_spec::CAPABILITIES as CAP_NAMES;

/// The capability number of a `CAP_*` name (case-insensitive, `CAP_` prefix optional as in docker).
pub fn cap_number(name: &str) -> Option<u8> {
    let upper = name.to_ascii_uppercase();
    let full = if upper.starts_with("CAP_") {
        upper
    } else {
        format!("CAP_{upper}")
    };
    CAP_NAMES.iter().position(|n| *n == full).map(|i| i as u8)
}

/// Capability sets as bit masks (bit N = capability N).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CapSets {
    pub bounding: u64,
    pub effective: u64,
    pub inheritable: u64,
    pub permitted: u64,
    pub ambient: u64,
}

fn cap_mask(field: &str, names: &Option<Vec<String>>) -> Result<u64, PlanError> {
    let mut mask = 0u64;
    for (i, n) in names.iter().flatten().enumerate() {
        let bit = cap_number(n).ok_or_else(|| {
            PlanError::invalid(format!("{field}[{i}]"), format!("unknown capability {n:?}"))
        })?;
        mask |= 1 << bit;
    }
    Ok(mask)
}

/// Turns `process.capabilities` into masks; an absent object means "no capabilities at all", as runc.
pub fn plan_caps(field: &str, caps: Option<&Capabilities>) -> Result<CapSets, PlanError> {
    let Some(c) = caps else {
        return Ok(CapSets::default());
    };
    Ok(CapSets {
        bounding: cap_mask(&format!("{field}.bounding"), &c.bounding)?,
        effective: cap_mask(&format!("{field}.effective"), &c.effective)?,
        inheritable: cap_mask(&format!("{field}.inheritable"), &c.inheritable)?,
        permitted: cap_mask(&format!("{field}.permitted"), &c.permitted)?,
        ambient: cap_mask(&format!("{field}.ambient"), &c.ambient)?,
    })
}

/// `RLIMIT_*` names and their numbers on Linux.
const RLIMITS: [(&str, i32); 16] = [
    ("RLIMIT_CPU", 0),
    ("RLIMIT_FSIZE", 1),
    ("RLIMIT_DATA", 2),
    ("RLIMIT_STACK", 3),
    ("RLIMIT_CORE", 4),
    ("RLIMIT_RSS", 5),
    ("RLIMIT_NPROC", 6),
    ("RLIMIT_NOFILE", 7),
    ("RLIMIT_MEMLOCK", 8),
    ("RLIMIT_AS", 9),
    ("RLIMIT_LOCKS", 10),
    ("RLIMIT_SIGPENDING", 11),
    ("RLIMIT_MSGQUEUE", 12),
    ("RLIMIT_NICE", 13),
    ("RLIMIT_RTPRIO", 14),
    ("RLIMIT_RTTIME", 15),
];

/// One resource limit to set.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct RlimitPlan {
    pub resource: i32,
    pub soft: u64,
    pub hard: u64,
}

/// The process part of the plan.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProcessPlan {
    pub args: Vec<String>,
    pub env: Vec<String>,
    pub cwd: String,
    pub uid: u32,
    pub gid: u32,
    pub additional_gids: Vec<u32>,
    pub umask: Option<u32>,
    pub terminal: bool,
    pub console_size: Option<(u16, u16)>,
    pub caps: CapSets,
    pub rlimits: Vec<RlimitPlan>,
    pub no_new_privileges: bool,
    pub oom_score_adj: Option<i32>,
    pub apparmor_profile: Option<String>,
}

/// Validates `process` (named `field` in errors: `process`, or the `--process` file of exec).
pub fn plan_process(field: &str, p: &Process) -> Result<ProcessPlan, PlanError> {
    if p.args.is_empty() || p.args[0].is_empty() {
        return Err(PlanError::invalid(
            format!("{field}.args"),
            "no command given".to_string(),
        ));
    }
    if !p.cwd.starts_with('/') {
        return Err(PlanError::invalid(
            format!("{field}.cwd"),
            format!("{:?} is not an absolute path", p.cwd),
        ));
    }
    for (i, e) in p.env.iter().enumerate() {
        if !e.contains('=') || e.starts_with('=') || e.contains('\0') {
            return Err(PlanError::invalid(
                format!("{field}.env[{i}]"),
                format!("{e:?} is not NAME=value"),
            ));
        }
    }
    let mut rlimits = Vec::new();
    for (i, r) in p.rlimits.iter().enumerate() {
        let f = format!("{field}.rlimits[{i}]");
        let resource = RLIMITS
            .iter()
            .find(|(n, _)| *n == r.typ)
            .map(|(_, v)| *v)
            .ok_or_else(|| PlanError::invalid(format!("{f}.type"), format!("unknown rlimit {:?}", r.typ)))?;
        if r.soft > r.hard {
            return Err(PlanError::invalid(
                f,
                "soft limit is above the hard limit".to_string(),
            ));
        }
        if rlimits.iter().any(|x: &RlimitPlan| x.resource == resource) {
            return Err(PlanError::invalid(
                format!("{f}.type"),
                format!("duplicate rlimit {:?}", r.typ),
            ));
        }
        rlimits.push(RlimitPlan {
            resource,
            soft: r.soft,
            hard: r.hard,
        });
    }
    if let Some(adj) = p.oom_score_adj {
        if !(-1000..=1000).contains(&adj) {
            return Err(PlanError::invalid(
                format!("{field}.oomScoreAdj"),
                format!("{adj} is not in -1000..1000"),
            ));
        }
    }
    let console_size = p.console_size.map(|c| {
        (
            c.height.min(u16::MAX as u32) as u16,
            c.width.min(u16::MAX as u32) as u16,
        )
    });
    Ok(ProcessPlan {
        args: p.args.clone(),
        env: p.env.clone(),
        cwd: p.cwd.clone(),
        uid: p.user.uid,
        gid: p.user.gid,
        additional_gids: p.user.additional_gids.clone(),
        umask: p.user.umask,
        terminal: p.terminal,
        console_size,
        caps: plan_caps(&format!("{field}.capabilities"), p.capabilities.as_ref())?,
        rlimits,
        no_new_privileges: p.no_new_privileges,
        oom_score_adj: p.oom_score_adj,
        apparmor_profile: p.apparmor_profile.clone().filter(|s| !s.is_empty()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use berth_spec::{Rlimit, User};

    fn base() -> Process {
        Process {
            args: vec!["sh".into()],
            cwd: "/".into(),
            user: User::default(),
            ..Default::default()
        }
    }

    #[test]
    fn capability_names() {
        assert_eq!(cap_number("CAP_SYS_ADMIN"), Some(21));
        assert_eq!(cap_number("net_raw"), Some(13));
        assert_eq!(cap_number("CAP_CHECKPOINT_RESTORE"), Some(40));
        assert_eq!(cap_number("CAP_NOPE"), None);
        let mut p = base();
        p.capabilities = Some(Capabilities {
            bounding: Some(vec!["CAP_KILL".into(), "CAP_NET_BIND_SERVICE".into()]),
            effective: Some(vec!["CAP_KILL".into()]),
            ..Default::default()
        });
        let plan = plan_process("process", &p).unwrap();
        assert_eq!(plan.caps.bounding, (1 << 5) | (1 << 10));
        assert_eq!(plan.caps.effective, 1 << 5);
        assert_eq!(plan.caps.ambient, 0);
    }

    #[test]
    fn unknown_capability_names_the_field() {
        let mut p = base();
        p.capabilities = Some(Capabilities {
            permitted: Some(vec!["CAP_KILL".into(), "CAP_BOGUS".into()]),
            ..Default::default()
        });
        let e = plan_process("process", &p).unwrap_err().to_string();
        assert!(
            e.contains("process.capabilities.permitted[1]") && e.contains("CAP_BOGUS"),
            "{e}"
        );
    }

    #[test]
    fn rlimits_and_bad_fields() {
        let mut p = base();
        p.rlimits = vec![Rlimit {
            typ: "RLIMIT_NOFILE".into(),
            hard: 1024,
            soft: 1024,
        }];
        assert_eq!(plan_process("process", &p).unwrap().rlimits[0].resource, 7);
        p.rlimits.push(Rlimit {
            typ: "RLIMIT_BOGUS".into(),
            hard: 1,
            soft: 1,
        });
        assert!(plan_process("process", &p)
            .unwrap_err()
            .to_string()
            .contains("process.rlimits[1].type"));
        let mut p = base();
        p.cwd = "relative".into();
        assert!(plan_process("process", &p)
            .unwrap_err()
            .to_string()
            .contains("process.cwd"));
        let mut p = base();
        p.args.clear();
        assert!(plan_process("process", &p)
            .unwrap_err()
            .to_string()
            .contains("process.args"));
        let mut p = base();
        p.env = vec!["NOEQUALS".into()];
        assert!(plan_process("process", &p)
            .unwrap_err()
            .to_string()
            .contains("process.env[0]"));
    }
}
