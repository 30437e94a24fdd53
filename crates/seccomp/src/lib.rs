//! The OCI seccomp profile (`linux.seccomp`) compiled into a classic-BPF program through libseccomp,
//! with runc's semantics. Compilation happens in the runtime's parent process, before the container's
//! init is cloned ([`compile`], or [`compile_cached`] to reuse earlier results); the init only hands the
//! finished [`Program`] to seccomp(2) ([`Program::load`]), as its last step before execve.
//!
//! The work is split plan-then-apply: [`plan`] validates the profile and computes the rules (pure),
//! `build` applies them to a libseccomp filter context and exports the BPF, `cache` stores programs by
//! a hash of the profile.

mod build;
mod cache;
mod newer;
mod plan;

use std::os::fd::OwnedFd;

use berth_spec::Seccomp;
use berth_sys::seccomp::{SockFilter, FLAG_NEW_LISTENER};

pub use build::BuildError;
pub use cache::compile_cached;
pub use plan::InvalidError;

/// Why a profile could not be compiled or a program not loaded.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The profile is invalid; the message names the config.json field.
    #[error(transparent)]
    Invalid(#[from] InvalidError),
    /// libseccomp could not build or export the filter.
    #[error("compile the seccomp profile")]
    Build(#[from] BuildError),
    #[error("seccomp(SECCOMP_SET_MODE_FILTER) with {instructions} instructions and flags {flags:#x}")]
    Load {
        instructions: usize,
        flags: u32,
        #[source]
        source: std::io::Error,
    },
}

/// A compiled filter, ready to load: classic-BPF instructions and the seccomp(2) flags.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Program {
    instructions: Vec<SockFilter>,
    flags: u32,
}

impl Program {
    /// A program from its parts (as read back from a cache, for example).
    pub fn new(instructions: Vec<SockFilter>, flags: u32) -> Self {
        Program { instructions, flags }
    }

    /// Installs the filter on the calling process: the last step before execve, or before the
    /// capabilities are dropped when no_new_privs is off (loading then needs CAP_SYS_ADMIN). Returns the
    /// notification descriptor of filters with SCMP_ACT_NOTIFY rules, for the caller to pass on.
    pub fn load(&self) -> Result<Option<OwnedFd>, Error> {
        berth_sys::seccomp::set_mode_filter(&self.instructions, self.flags).map_err(|source| Error::Load {
            instructions: self.instructions.len(),
            flags: self.flags,
            source,
        })
    }

    /// The BPF instructions.
    pub fn instructions(&self) -> &[SockFilter] {
        &self.instructions
    }

    /// The number of instructions.
    pub fn len(&self) -> usize {
        self.instructions.len()
    }

    /// Whether the program has no instruction (never true of a compiled one).
    pub fn is_empty(&self) -> bool {
        self.instructions.is_empty()
    }

    /// The seccomp(2) flags the program is loaded with.
    pub fn flags(&self) -> u32 {
        self.flags
    }

    /// Whether [`Program::load`] returns a notification descriptor.
    pub fn has_listener(&self) -> bool {
        self.flags & FLAG_NEW_LISTENER != 0
    }
}

/// Validates and compiles a profile.
pub fn compile(s: &Seccomp) -> Result<Program, Error> {
    let plan = plan::plan(s)?;
    let instructions = build::build(&plan)?;
    Ok(Program {
        instructions,
        flags: plan.flags,
    })
}

/// The libseccomp version in use, as "major.minor.micro".
pub fn library_version() -> Option<String> {
    libseccomp::ScmpVersion::current()
        .ok()
        .map(|v| format!("{}.{}.{}", v.major, v.minor, v.micro))
}

/// The architectures berth accepts in `linux.seccomp.architectures`, for the features document.
const ARCHES: [&str; 17] = [
    "SCMP_ARCH_AARCH64",
    "SCMP_ARCH_ARM",
    "SCMP_ARCH_MIPS",
    "SCMP_ARCH_MIPS64",
    "SCMP_ARCH_MIPS64N32",
    "SCMP_ARCH_MIPSEL",
    "SCMP_ARCH_MIPSEL64",
    "SCMP_ARCH_MIPSEL64N32",
    "SCMP_ARCH_PPC",
    "SCMP_ARCH_PPC64",
    "SCMP_ARCH_PPC64LE",
    "SCMP_ARCH_RISCV64",
    "SCMP_ARCH_S390",
    "SCMP_ARCH_S390X",
    "SCMP_ARCH_X32",
    "SCMP_ARCH_X86",
    "SCMP_ARCH_X86_64",
];

/// The seccomp part of the OCI features document.
pub fn features() -> serde_json::Value {
    let mut actions = plan::ACTIONS.to_vec();
    actions.sort_unstable();
    let flags: Vec<&str> = plan::FLAGS.iter().map(|(n, _)| *n).collect();
    serde_json::json!({
        "enabled": true,
        "actions": actions,
        "operators": plan::OPERATORS,
        "archs": ARCHES,
        "knownFlags": flags,
        "supportedFlags": flags,
    })
}

#[cfg(test)]
mod tests;
