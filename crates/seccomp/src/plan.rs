//! The OCI seccomp object (`linux.seccomp`) validated and translated into a [`Plan`]: pure data that
//! says which libseccomp filter to build (default action, extra architectures, seccomp(2) flags, and
//! every rule with its conditions). Nothing here touches a filter context or the kernel, so all of the
//! profile's semantics (runc's) are unit-testable; [`crate::build`] applies the plan.
//!
//! runc's rules followed here:
//! - SCMP_ACT_ERRNO and SCMP_ACT_TRACE return `errnoRet` (`defaultErrnoRet` for the default action),
//!   EPERM when it is absent; SCMP_ACT_KILL is SCMP_ACT_KILL_THREAD.
//! - A rule whose action equals the default action is skipped (libseccomp refuses it).
//! - Comparisons on different arguments form one rule (all must hold); when two comparisons name the same
//!   argument, each comparison becomes a rule of its own (any may hold).
//! - For SCMP_CMP_MASKED_EQ, `value` is the mask and `valueTwo` the datum.
//! - SECCOMP_FILTER_FLAG_TSYNC is accepted and not passed on: the init is single-threaded, and the
//!   kernel refuses TSYNC together with NEW_LISTENER.
//! - SCMP_ACT_NOTIFY may not be the default action, nor apply to the call that hands the listener over.
//!
//! Where berth is stricter than runc: a syscall name unknown to libseccomp (and not in [`crate::newer`])
//! is an error rather than silently ignored, an `errnoRet` that does not fit in 16 bits is an error
//! rather than truncated, and a profile with NOTIFY rules must name a `listenerPath`.

use berth_spec::{Seccomp, Syscall, SyscallArg};
use libseccomp::{ScmpAction, ScmpArch, ScmpArgCompare, ScmpCompareOp, ScmpSyscall};
use std::str::FromStr;

use berth_sys::seccomp::{FLAG_LOG, FLAG_NEW_LISTENER, FLAG_SPEC_ALLOW, FLAG_WAIT_KILLABLE_RECV};

/// The seccomp(2) filter flags by their OCI names, with the bits passed to the kernel (TSYNC: none).
pub const FLAGS: [(&str, u32); 4] = [
    ("SECCOMP_FILTER_FLAG_TSYNC", 0),
    ("SECCOMP_FILTER_FLAG_LOG", FLAG_LOG),
    ("SECCOMP_FILTER_FLAG_SPEC_ALLOW", FLAG_SPEC_ALLOW),
    ("SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV", FLAG_WAIT_KILLABLE_RECV),
];

/// The OCI action names berth knows.
pub const ACTIONS: [&str; 9] = [
    "SCMP_ACT_KILL",
    "SCMP_ACT_KILL_PROCESS",
    "SCMP_ACT_KILL_THREAD",
    "SCMP_ACT_TRAP",
    "SCMP_ACT_ERRNO",
    "SCMP_ACT_TRACE",
    "SCMP_ACT_ALLOW",
    "SCMP_ACT_LOG",
    "SCMP_ACT_NOTIFY",
];

/// The OCI comparison operators berth knows.
pub const OPERATORS: [&str; 7] = [
    "SCMP_CMP_NE",
    "SCMP_CMP_LT",
    "SCMP_CMP_LE",
    "SCMP_CMP_EQ",
    "SCMP_CMP_GE",
    "SCMP_CMP_GT",
    "SCMP_CMP_MASKED_EQ",
];

/// System calls that may not have SCMP_ACT_NOTIFY: the container's init hands the listener descriptor
/// to the runtime with `sendmsg` after the filter is loaded, and a notification nobody can receive yet
/// would hang it (runc refuses `write` for the same reason in its own protocol).
pub const NOT_NOTIFIABLE: [&str; 1] = ["sendmsg"];

/// What is wrong with a profile; every message starts with the config.json field it concerns.
#[derive(Debug, thiserror::Error)]
pub enum InvalidError {
    #[error("{field}: unknown action {name:?}")]
    UnknownAction { field: String, name: String },
    #[error("{field}: {value} does not fit in the 16 bits of a seccomp return value")]
    ReturnValue { field: String, value: u32 },
    #[error("{field}: unknown architecture {name:?}")]
    UnknownArch { field: String, name: String },
    #[error("{field}: unknown flag {name:?}")]
    UnknownFlag { field: String, name: String },
    #[error("{field}: no syscall named (names needs at least one entry)")]
    NoNames { field: String },
    #[error("{field}: empty syscall name")]
    EmptyName { field: String },
    #[error("{field}: unknown syscall {name:?}")]
    UnknownSyscall { field: String, name: String },
    #[error("{field}: {index} is not a syscall argument index (0 to 5)")]
    ArgIndex { field: String, index: u32 },
    #[error("{field}: unknown operator {name:?}")]
    UnknownOperator { field: String, name: String },
    #[error("linux.seccomp.defaultAction: SCMP_ACT_NOTIFY cannot be the default action (the runtime's own calls after the load would wait for a listener)")]
    NotifyDefault,
    #[error("{field}: SCMP_ACT_NOTIFY cannot apply to {name:?}, which hands the listener to the runtime")]
    NotifyReserved { field: String, name: String },
    #[error("linux.seccomp.listenerPath: a rule uses SCMP_ACT_NOTIFY but no listener path is set")]
    NoListener,
}

/// A validated profile: what to build, with the field each part came from for later errors.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    pub default: ScmpAction,
    /// Extra architectures (the native one is always in the filter), with their fields.
    pub arches: Vec<(String, ScmpArch)>,
    /// seccomp(2) flags, NEW_LISTENER included when a rule notifies.
    pub flags: u32,
    pub rules: Vec<Rule>,
}

/// One syscall name of one OCI rule, ready for libseccomp.
#[derive(Debug, Clone, PartialEq)]
pub struct Rule {
    /// `linux.seccomp.syscalls[i].names[j]`.
    pub field: String,
    pub name: String,
    pub syscall: ScmpSyscall,
    /// Resolved from [`crate::newer`] by number rather than by libseccomp's name table.
    pub by_number: bool,
    pub action: ScmpAction,
    /// One libseccomp rule per entry, each with all of its comparisons (an empty entry: unconditional).
    pub condition_sets: Vec<Vec<ScmpArgCompare>>,
}

/// Validates `s` and computes the filter to build.
pub fn plan(s: &Seccomp) -> Result<Plan, InvalidError> {
    let default = action(
        "linux.seccomp.defaultAction",
        &s.default_action,
        "linux.seccomp.defaultErrnoRet",
        s.default_errno_ret,
    )?;
    if default == ScmpAction::Notify {
        return Err(InvalidError::NotifyDefault);
    }
    let arches = s
        .architectures
        .iter()
        .enumerate()
        .map(|(i, name)| arch(i, name))
        .collect::<Result<Vec<_>, _>>()?;
    let mut flags = 0;
    for (i, name) in s.flags.iter().enumerate() {
        flags |= flag(i, name)?;
    }
    let mut rules = Vec::new();
    for (i, call) in s.syscalls.iter().enumerate() {
        rules.extend(syscall_rules(i, call, default)?);
    }
    if rules.iter().any(|r| r.action == ScmpAction::Notify) {
        if s.listener_path.as_deref().unwrap_or("").is_empty() {
            return Err(InvalidError::NoListener);
        }
        flags |= FLAG_NEW_LISTENER;
    } else {
        // The kernel accepts WAIT_KILLABLE_RECV only with a listener; without notifications it has no
        // meaning, so it is dropped rather than turned into EINVAL at load time.
        flags &= !FLAG_WAIT_KILLABLE_RECV;
    }
    Ok(Plan {
        default,
        arches,
        flags,
        rules,
    })
}

/// The rules of `linux.seccomp.syscalls[i]`, one per name, none for a rule with the default action.
fn syscall_rules(i: usize, call: &Syscall, default: ScmpAction) -> Result<Vec<Rule>, InvalidError> {
    let field = format!("linux.seccomp.syscalls[{i}]");
    let act = action(
        &format!("{field}.action"),
        &call.action,
        &format!("{field}.errnoRet"),
        call.errno_ret,
    )?;
    let condition_sets = conditions(&field, &call.args)?;
    if call.names.is_empty() {
        return Err(InvalidError::NoNames {
            field: format!("{field}.names"),
        });
    }
    let mut rules = Vec::with_capacity(call.names.len());
    for (j, name) in call.names.iter().enumerate() {
        let field = format!("{field}.names[{j}]");
        let (syscall, by_number) = resolve(&field, name)?;
        if act == ScmpAction::Notify && NOT_NOTIFIABLE.contains(&name.as_str()) {
            return Err(InvalidError::NotifyReserved {
                field,
                name: name.clone(),
            });
        }
        // A rule with the default action changes nothing, and libseccomp refuses it.
        if act == default {
            continue;
        }
        rules.push(Rule {
            field,
            name: name.clone(),
            syscall,
            by_number,
            action: act,
            condition_sets: condition_sets.clone(),
        });
    }
    Ok(rules)
}

fn arch(i: usize, name: &str) -> Result<(String, ScmpArch), InvalidError> {
    let field = format!("linux.seccomp.architectures[{i}]");
    match ScmpArch::from_str(name) {
        Ok(a) => Ok((field, a)),
        Err(_) => Err(InvalidError::UnknownArch {
            field,
            name: name.to_string(),
        }),
    }
}

/// The libseccomp action for an OCI action name; `errno` is the return value of ERRNO and TRACE.
pub fn action(
    field: &str,
    name: &str,
    errno_field: &str,
    errno: Option<u32>,
) -> Result<ScmpAction, InvalidError> {
    let ret = match errno {
        None => libc::EPERM,
        Some(v) if v <= u32::from(u16::MAX) => v as i32,
        Some(value) => {
            return Err(InvalidError::ReturnValue {
                field: errno_field.to_string(),
                value,
            })
        }
    };
    Ok(match name {
        "SCMP_ACT_KILL" | "SCMP_ACT_KILL_THREAD" => ScmpAction::KillThread,
        "SCMP_ACT_KILL_PROCESS" => ScmpAction::KillProcess,
        "SCMP_ACT_TRAP" => ScmpAction::Trap,
        "SCMP_ACT_ERRNO" => ScmpAction::Errno(ret),
        "SCMP_ACT_TRACE" => ScmpAction::Trace(ret as u16),
        "SCMP_ACT_ALLOW" => ScmpAction::Allow,
        "SCMP_ACT_LOG" => ScmpAction::Log,
        "SCMP_ACT_NOTIFY" => ScmpAction::Notify,
        _ => {
            return Err(InvalidError::UnknownAction {
                field: field.to_string(),
                name: name.to_string(),
            })
        }
    })
}

fn flag(i: usize, name: &str) -> Result<u32, InvalidError> {
    FLAGS
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, bit)| *bit)
        .ok_or_else(|| InvalidError::UnknownFlag {
            field: format!("linux.seccomp.flags[{i}]"),
            name: name.to_string(),
        })
}

/// The syscall a name stands for on the native architecture, and whether it came from the table of
/// syscalls newer than this libseccomp.
pub fn resolve(field: &str, name: &str) -> Result<(ScmpSyscall, bool), InvalidError> {
    if name.is_empty() {
        return Err(InvalidError::EmptyName {
            field: field.to_string(),
        });
    }
    if let Ok(sc) = ScmpSyscall::from_name(name) {
        return Ok((sc, false));
    }
    match crate::newer::number(name) {
        Some(nr) => Ok((ScmpSyscall::from(nr), true)),
        None => Err(InvalidError::UnknownSyscall {
            field: field.to_string(),
            name: name.to_string(),
        }),
    }
}

/// The libseccomp rules (each a set of comparisons that must all hold) for one OCI rule's `args`.
pub fn conditions(field: &str, args: &[SyscallArg]) -> Result<Vec<Vec<ScmpArgCompare>>, InvalidError> {
    let mut per_index = [0usize; 6];
    let mut all = Vec::with_capacity(args.len());
    for (k, a) in args.iter().enumerate() {
        let field = format!("{field}.args[{k}]");
        all.push(compare(&field, a)?);
        per_index[a.index as usize] += 1;
    }
    if per_index.iter().any(|n| *n > 1) {
        // runc's rule for repeated arguments: every comparison is a rule of its own.
        Ok(all.into_iter().map(|c| vec![c]).collect())
    } else {
        Ok(vec![all])
    }
}

/// One OCI argument comparison as a libseccomp one (the index is checked to be 0-5).
pub fn compare(field: &str, a: &SyscallArg) -> Result<ScmpArgCompare, InvalidError> {
    if a.index > 5 {
        return Err(InvalidError::ArgIndex {
            field: format!("{field}.index"),
            index: a.index,
        });
    }
    let (op, datum) = match a.op.as_str() {
        "SCMP_CMP_NE" => (ScmpCompareOp::NotEqual, a.value),
        "SCMP_CMP_LT" => (ScmpCompareOp::Less, a.value),
        "SCMP_CMP_LE" => (ScmpCompareOp::LessOrEqual, a.value),
        "SCMP_CMP_EQ" => (ScmpCompareOp::Equal, a.value),
        "SCMP_CMP_GE" => (ScmpCompareOp::GreaterEqual, a.value),
        "SCMP_CMP_GT" => (ScmpCompareOp::Greater, a.value),
        "SCMP_CMP_MASKED_EQ" => (ScmpCompareOp::MaskedEqual(a.value), a.value_two.unwrap_or(0)),
        name => {
            return Err(InvalidError::UnknownOperator {
                field: format!("{field}.op"),
                name: name.to_string(),
            })
        }
    };
    Ok(ScmpArgCompare::new(a.index, op, datum))
}
