//! A cache of compiled programs, keyed by a hash of the profile and the libseccomp version: a
//! container engine starts many containers with the same profile, and compiling docker's default
//! profile costs far more than reading a few kilobytes.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use berth_spec::Seccomp;

use crate::{compile, Error, Program};

/// FNV-1a, 64 bits: stable across builds and platforms (std's hasher is not).
fn fnv1a(data: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in data {
        h ^= *b as u64;
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

fn key(s: &Seccomp) -> String {
    let mut data = serde_json::to_vec(s).unwrap_or_default();
    data.extend_from_slice(crate::library_version().unwrap_or_default().as_bytes());
    format!("{:016x}-{}", fnv1a(&data), data.len())
}

fn entry(dir: &Path, s: &Seccomp) -> PathBuf {
    dir.join(format!("{}.bpf", key(s)))
}

fn read_entry(path: &Path) -> Option<Program> {
    let data = fs::read(path).ok()?;
    if data.len() < 12 || !(data.len() - 4).is_multiple_of(8) {
        return None;
    }
    let flags = u32::from_le_bytes(data[..4].try_into().ok()?);
    Some(Program {
        bytes: data[4..].to_vec(),
        flags,
    })
}

fn write_entry(path: &Path, p: &Program) -> std::io::Result<()> {
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    let mut f = fs::File::create(&tmp)?;
    f.write_all(&p.flags.to_le_bytes())?;
    f.write_all(&p.bytes)?;
    drop(f);
    fs::rename(&tmp, path)
}

/// [`compile`] through the cache in `dir` (none: no cache). A missing or corrupt entry is compiled
/// and written again; a cache that cannot be written is not an error.
pub fn compile_cached(s: &Seccomp, dir: Option<&Path>) -> Result<Program, Error> {
    let Some(dir) = dir else { return compile(s) };
    let path = entry(dir, s);
    if let Some(p) = read_entry(&path) {
        return Ok(p);
    }
    let p = compile(s)?;
    if fs::create_dir_all(dir).is_ok() {
        let _ = write_entry(&path, &p);
    }
    Ok(p)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_corrupt_entries() {
        let t = tempfile::tempdir().unwrap();
        let s = Seccomp {
            default_action: "SCMP_ACT_ALLOW".into(),
            flags: vec!["SECCOMP_FILTER_FLAG_LOG".into()],
            syscalls: vec![crate::tests::rule(&["getcwd"], "SCMP_ACT_ERRNO")],
            ..Default::default()
        };
        let p1 = compile_cached(&s, Some(t.path())).unwrap();
        let path = entry(t.path(), &s);
        assert!(path.exists());
        assert_eq!(read_entry(&path).unwrap(), p1);
        assert_eq!(compile_cached(&s, Some(t.path())).unwrap(), p1);
        fs::write(&path, b"garbage").unwrap();
        assert_eq!(compile_cached(&s, Some(t.path())).unwrap(), p1);
        assert_eq!(read_entry(&path).unwrap(), p1, "the corrupt entry was rewritten");
        let mut other = s.clone();
        other.default_action = "SCMP_ACT_LOG".into();
        assert_ne!(key(&s), key(&other));
    }
}
