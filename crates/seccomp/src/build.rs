//! Applying a [`Plan`] to a libseccomp filter context and exporting the result as classic BPF.
//!
//! The filter context is only a compiler here: berth never calls `seccomp_load`, it exports the program
//! (`seccomp_export_bpf`, into a memfd since libseccomp 2.5 has no in-memory export) and loads it later
//! with seccomp(2) in the container's init. The attributes are set as runc sets them: the
//! no_new_privs bit off (the runtime sets no_new_privs itself, when the spec asks for it) and the
//! binary-tree optimisation for long rule lists.

use std::io::{Read, Seek};

use berth_sys::seccomp::{SockFilter, MAX_INSTRUCTIONS};
use libseccomp::error::SeccompError;
use libseccomp::ScmpFilterContext;

use crate::plan::{Plan, Rule};

/// runc's threshold for libseccomp's binary-tree optimisation (libseccomp <= 2.5.4 misbehaves with it on
/// an empty rule list).
const OPTIMIZE_ABOVE: usize = 32;

/// A failure of libseccomp or of the export.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error("create a libseccomp filter context")]
    Context(#[source] SeccompError),
    #[error("set the libseccomp filter attribute {0}")]
    Attribute(&'static str, #[source] SeccompError),
    #[error("{field}: add architecture {arch:?} to the filter")]
    Arch {
        field: String,
        arch: libseccomp::ScmpArch,
        #[source]
        source: SeccompError,
    },
    #[error("{field}: add the rule for syscall {name:?}")]
    Rule {
        field: String,
        name: String,
        #[source]
        source: SeccompError,
    },
    #[error("create a memfd for the exported filter")]
    Memfd(#[source] std::io::Error),
    #[error("export the filter as BPF")]
    Export(#[source] SeccompError),
    #[error("read the exported filter back")]
    ReadBack(#[source] std::io::Error),
    #[error("the exported filter has {0} bytes, not a whole number of 8-byte instructions")]
    Size(usize),
    #[error("the filter has {0} instructions, more than the kernel's limit of 4096")]
    TooLong(usize),
}

/// Builds the filter the plan describes and returns its instructions.
pub fn build(plan: &Plan) -> Result<Vec<SockFilter>, BuildError> {
    let mut ctx = ScmpFilterContext::new(plan.default).map_err(BuildError::Context)?;
    ctx.set_ctl_nnp(false)
        .map_err(|e| BuildError::Attribute("SCMP_FLTATR_CTL_NNP", e))?;
    for (field, arch) in &plan.arches {
        ctx.add_arch(*arch).map_err(|source| BuildError::Arch {
            field: field.clone(),
            arch: *arch,
            source,
        })?;
    }
    let mut added = 0;
    for rule in &plan.rules {
        added += add(&mut ctx, rule)?;
    }
    if added > OPTIMIZE_ABOVE {
        ctx.set_ctl_optimize(2)
            .map_err(|e| BuildError::Attribute("SCMP_FLTATR_CTL_OPTIMIZE", e))?;
    }
    let program = export(&ctx)?;
    if program.len() > MAX_INSTRUCTIONS {
        return Err(BuildError::TooLong(program.len()));
    }
    Ok(program)
}

/// Adds one rule (one libseccomp rule per condition set); returns how many were added.
fn add(ctx: &mut ScmpFilterContext, rule: &Rule) -> Result<usize, BuildError> {
    let mut added = 0;
    for conds in &rule.condition_sets {
        let result = if conds.is_empty() {
            ctx.add_rule(rule.action, rule.syscall)
        } else {
            ctx.add_rule_conditional(rule.action, rule.syscall, conds)
        };
        match result {
            Ok(_) => added += 1,
            // A syscall newer than this libseccomp, added by its native number, cannot be translated to
            // the filter's other architectures: it is left to the default action there, as runc leaves
            // the names its libseccomp does not know.
            Err(_) if rule.by_number => {}
            Err(source) => {
                return Err(BuildError::Rule {
                    field: rule.field.clone(),
                    name: rule.name.clone(),
                    source,
                })
            }
        }
    }
    Ok(added)
}

fn export(ctx: &ScmpFilterContext) -> Result<Vec<SockFilter>, BuildError> {
    let fd = nix::sys::memfd::memfd_create(c"berth-seccomp", nix::sys::memfd::MemFdCreateFlag::MFD_CLOEXEC)
        .map_err(|e| BuildError::Memfd(e.into()))?;
    ctx.export_bpf(&fd).map_err(BuildError::Export)?;
    let mut f = std::fs::File::from(fd);
    f.rewind().map_err(BuildError::ReadBack)?;
    let mut bytes = Vec::new();
    f.read_to_end(&mut bytes).map_err(BuildError::ReadBack)?;
    parse(&bytes)
}

/// Splits exported bytes into instructions (host byte order, 8 bytes each).
pub fn parse(bytes: &[u8]) -> Result<Vec<SockFilter>, BuildError> {
    if bytes.is_empty() || !bytes.len().is_multiple_of(SockFilter::SIZE) {
        return Err(BuildError::Size(bytes.len()));
    }
    Ok(bytes
        .chunks_exact(SockFilter::SIZE)
        .map(|c| SockFilter::from_ne_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]))
        .collect())
}
