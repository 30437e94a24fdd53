//! The OCI seccomp profile (`linux.seccomp`) compiled into a classic-BPF program through libseccomp,
//! with runc's semantics. Compilation happens in the runtime's parent process, before the container's
//! init is cloned; the init only hands the finished program to seccomp(2) ([`Program::load`]).

mod cache;
mod newer;

use std::io::{Read, Seek};
use std::os::fd::OwnedFd;
use std::str::FromStr;

use berth_spec::Seccomp;
use libseccomp::{ScmpAction, ScmpArch, ScmpArgCompare, ScmpCompareOp, ScmpFilterContext, ScmpSyscall};

pub use cache::compile_cached;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{field}: {message}")]
    Invalid { field: String, message: String },
    #[error("libseccomp: {0}")]
    Library(String),
    #[error("export the filter")]
    Export(#[source] std::io::Error),
    #[error("load the seccomp filter")]
    Load(#[source] std::io::Error),
}

fn invalid(field: String, message: String) -> Error {
    Error::Invalid { field, message }
}

fn lib(e: libseccomp::error::SeccompError) -> Error {
    Error::Library(e.to_string())
}

/// seccomp(2) filter flags by their OCI names.
const FLAGS: [(&str, u32); 4] = [
    ("SECCOMP_FILTER_FLAG_TSYNC", 1),
    ("SECCOMP_FILTER_FLAG_LOG", 2),
    ("SECCOMP_FILTER_FLAG_SPEC_ALLOW", 4),
    ("SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV", 32),
];

const ACTIONS: [&str; 10] = [
    "SCMP_ACT_KILL",
    "SCMP_ACT_KILL_PROCESS",
    "SCMP_ACT_KILL_THREAD",
    "SCMP_ACT_TRAP",
    "SCMP_ACT_ERRNO",
    "SCMP_ACT_TRACE",
    "SCMP_ACT_ALLOW",
    "SCMP_ACT_LOG",
    "SCMP_ACT_NOTIFY",
    "SCMP_ACT_KILL_THREAD",
];

const OPERATORS: [&str; 7] = [
    "SCMP_CMP_NE",
    "SCMP_CMP_LT",
    "SCMP_CMP_LE",
    "SCMP_CMP_EQ",
    "SCMP_CMP_GE",
    "SCMP_CMP_GT",
    "SCMP_CMP_MASKED_EQ",
];

/// A compiled filter, ready to load.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Program {
    /// Classic BPF instructions, 8 bytes each, in the kernel's layout.
    pub bytes: Vec<u8>,
    /// seccomp(2) flags.
    pub flags: u32,
}

impl Program {
    /// Installs the filter on the calling process (the last step before execve, or before the
    /// capabilities are dropped when no_new_privs is off). Returns the notification descriptor of
    /// filters with SCMP_ACT_NOTIFY.
    pub fn load(&self) -> Result<Option<OwnedFd>, Error> {
        berth_sys::seccomp::set_mode_filter(&self.bytes, self.flags).map_err(Error::Load)
    }

    pub fn instructions(&self) -> usize {
        self.bytes.len() / 8
    }
}

fn action(field: &str, name: &str, errno: Option<u32>) -> Result<ScmpAction, Error> {
    let ret = errno.map(|e| e as i32).unwrap_or(libc::EPERM);
    Ok(match name {
        "SCMP_ACT_KILL" | "SCMP_ACT_KILL_THREAD" => ScmpAction::KillThread,
        "SCMP_ACT_KILL_PROCESS" => ScmpAction::KillProcess,
        "SCMP_ACT_TRAP" => ScmpAction::Trap,
        "SCMP_ACT_ERRNO" => ScmpAction::Errno(ret),
        "SCMP_ACT_TRACE" => ScmpAction::Trace(ret as u16),
        "SCMP_ACT_ALLOW" => ScmpAction::Allow,
        "SCMP_ACT_LOG" => ScmpAction::Log,
        "SCMP_ACT_NOTIFY" => ScmpAction::Notify,
        _ => return Err(invalid(field.to_string(), format!("unknown action {name:?}"))),
    })
}

fn compare(field: &str, a: &berth_spec::SyscallArg) -> Result<ScmpArgCompare, Error> {
    if a.index > 5 {
        return Err(invalid(
            format!("{field}.index"),
            format!("{} is not an argument index (0-5)", a.index),
        ));
    }
    let op = match a.op.as_str() {
        "SCMP_CMP_NE" => ScmpCompareOp::NotEqual,
        "SCMP_CMP_LT" => ScmpCompareOp::Less,
        "SCMP_CMP_LE" => ScmpCompareOp::LessOrEqual,
        "SCMP_CMP_EQ" => ScmpCompareOp::Equal,
        "SCMP_CMP_GE" => ScmpCompareOp::GreaterEqual,
        "SCMP_CMP_GT" => ScmpCompareOp::Greater,
        "SCMP_CMP_MASKED_EQ" => ScmpCompareOp::MaskedEqual(a.value),
        op => return Err(invalid(format!("{field}.op"), format!("unknown operator {op:?}"))),
    };
    // For MASKED_EQ the value is the mask and valueTwo the datum, as in runc.
    let datum = if a.op == "SCMP_CMP_MASKED_EQ" {
        a.value_two.unwrap_or(0)
    } else {
        a.value
    };
    Ok(ScmpArgCompare::new(a.index, op, datum))
}

/// Validates and compiles a profile.
pub fn compile(s: &Seccomp) -> Result<Program, Error> {
    let default = action(
        "linux.seccomp.defaultAction",
        &s.default_action,
        s.default_errno_ret,
    )?;
    let mut flags = 0u32;
    for (i, f) in s.flags.iter().enumerate() {
        let bit = FLAGS.iter().find(|(n, _)| n == f).map(|(_, b)| *b);
        flags |=
            bit.ok_or_else(|| invalid(format!("linux.seccomp.flags[{i}]"), format!("unknown flag {f:?}")))?;
    }
    let mut ctx = ScmpFilterContext::new(default).map_err(lib)?;
    ctx.set_ctl_nnp(false).map_err(lib)?;
    for (i, a) in s.architectures.iter().enumerate() {
        let arch = ScmpArch::from_str(a).map_err(|_| {
            invalid(
                format!("linux.seccomp.architectures[{i}]"),
                format!("unknown architecture {a:?}"),
            )
        })?;
        ctx.add_arch(arch).map_err(lib)?;
    }
    let mut notify = default == ScmpAction::Notify;
    for (i, rule) in s.syscalls.iter().enumerate() {
        let field = format!("linux.seccomp.syscalls[{i}]");
        let act = action(&format!("{field}.action"), &rule.action, rule.errno_ret)?;
        notify |= act == ScmpAction::Notify;
        let conds = rule
            .args
            .iter()
            .enumerate()
            .map(|(j, a)| compare(&format!("{field}.args[{j}]"), a))
            .collect::<Result<Vec<_>, _>>()?;
        if rule.names.is_empty() {
            return Err(invalid(format!("{field}.names"), "no syscall named".into()));
        }
        for (j, name) in rule.names.iter().enumerate() {
            if name.is_empty() {
                return Err(invalid(
                    format!("{field}.names[{j}]"),
                    "empty syscall name".into(),
                ));
            }
            let sc = match ScmpSyscall::from_name(name) {
                Ok(sc) => sc,
                Err(_) => match newer::number(name) {
                    Some(nr) => ScmpSyscall::from(nr),
                    None => {
                        return Err(invalid(
                            format!("{field}.names[{j}]"),
                            format!("unknown syscall {name:?}"),
                        ))
                    }
                },
            };
            // A rule with the default action changes nothing (and libseccomp refuses it).
            if act == default {
                continue;
            }
            if let Err(e) = add_rule(&mut ctx, act, sc, &rule.args, &conds) {
                // A syscall newer than this libseccomp, added by number, may not translate to every
                // architecture of the filter: it is then left to the default action, as runc does
                // with the names it cannot resolve.
                if newer::number(name).is_none() {
                    return Err(invalid(format!("{field}.names[{j}]"), format!("{name}: {e}")));
                }
            }
        }
    }
    let has_listener = s.listener_path.as_deref().is_some_and(|p| !p.is_empty());
    if notify && !has_listener {
        return Err(invalid(
            "linux.seccomp.listenerPath".into(),
            "SCMP_ACT_NOTIFY needs a listener path".into(),
        ));
    }
    if notify {
        // The kernel hands the notification descriptor back at load time, for the listener.
        flags |= berth_sys::seccomp::FLAG_NEW_LISTENER;
    }
    if has_listener && !notify {
        return Err(invalid(
            "linux.seccomp.listenerPath".into(),
            "set, but no rule uses SCMP_ACT_NOTIFY".into(),
        ));
    }
    Ok(Program {
        bytes: export(&ctx)?,
        flags,
    })
}

/// runc's rule: several comparisons on the same argument are separate rules (any may match);
/// otherwise one rule with all comparisons (all must match).
fn add_rule(
    ctx: &mut ScmpFilterContext,
    act: ScmpAction,
    sc: ScmpSyscall,
    args: &[berth_spec::SyscallArg],
    conds: &[ScmpArgCompare],
) -> Result<(), String> {
    if conds.is_empty() {
        return ctx.add_rule(act, sc).map(|_| ()).map_err(|e| e.to_string());
    }
    let mut counts = [0usize; 6];
    for a in args {
        counts[a.index as usize] += 1;
    }
    if counts.iter().any(|c| *c > 1) {
        for c in conds {
            ctx.add_rule_conditional(act, sc, std::slice::from_ref(c))
                .map_err(|e| e.to_string())?;
        }
        Ok(())
    } else {
        ctx.add_rule_conditional(act, sc, conds)
            .map(|_| ())
            .map_err(|e| e.to_string())
    }
}

fn export(ctx: &ScmpFilterContext) -> Result<Vec<u8>, Error> {
    let fd = nix::sys::memfd::memfd_create(c"berth-seccomp", nix::sys::memfd::MemFdCreateFlag::MFD_CLOEXEC)
        .map_err(|e| Error::Export(e.into()))?;
    ctx.export_bpf(&fd)
        .map_err(|e| Error::Export(std::io::Error::other(e.to_string())))?;
    let mut f = std::fs::File::from(fd);
    f.rewind().map_err(Error::Export)?;
    let mut bytes = Vec::new();
    f.read_to_end(&mut bytes).map_err(Error::Export)?;
    if bytes.is_empty() || !bytes.len().is_multiple_of(8) {
        return Err(Error::Export(std::io::Error::other(format!(
            "libseccomp exported {} bytes",
            bytes.len()
        ))));
    }
    Ok(bytes)
}

/// The libseccomp version in use, as "major.minor.micro".
pub fn library_version() -> Option<String> {
    libseccomp::ScmpVersion::current()
        .ok()
        .map(|v| format!("{}.{}.{}", v.major, v.minor, v.micro))
}

/// The seccomp part of the OCI features document.
pub fn features() -> serde_json::Value {
    let mut actions: Vec<&str> = ACTIONS.iter().copied().filter(|a| !a.is_empty()).collect();
    actions.sort_unstable();
    actions.dedup();
    let flags: Vec<&str> = FLAGS.iter().map(|(n, _)| *n).collect();
    serde_json::json!({
        "enabled": true,
        "actions": actions,
        "operators": OPERATORS,
        "archs": ["SCMP_ARCH_AARCH64", "SCMP_ARCH_ARM", "SCMP_ARCH_MIPS", "SCMP_ARCH_MIPS64", "SCMP_ARCH_MIPS64N32", "SCMP_ARCH_MIPSEL", "SCMP_ARCH_MIPSEL64", "SCMP_ARCH_MIPSEL64N32", "SCMP_ARCH_PPC", "SCMP_ARCH_PPC64", "SCMP_ARCH_PPC64LE", "SCMP_ARCH_RISCV64", "SCMP_ARCH_S390", "SCMP_ARCH_S390X", "SCMP_ARCH_X32", "SCMP_ARCH_X86", "SCMP_ARCH_X86_64"],
        "knownFlags": flags,
        "supportedFlags": flags,
    })
}

#[cfg(test)]
mod tests;
