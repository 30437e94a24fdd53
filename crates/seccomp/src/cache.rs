//! A cache of compiled programs: a container engine starts many containers with the same profile, and
//! compiling docker's default profile through libseccomp costs far more than reading a few kilobytes.
//!
//! An entry is one file, `<dir>/<key>.bpf`, where the key is a 64-bit FNV-1a hash of the entry's
//! identity: the cache format, the libseccomp version and the profile serialised as JSON. The file
//! holds the identity itself, so a hash collision or a stale entry is recognised and recompiled rather
//! than trusted, plus a checksum that catches truncated or damaged files:
//!
//! ```text
//! "BSCP" | format u32 | flags u32 | instructions u32 | identity length u32 | checksum u64 |
//! identity bytes | instructions (8 bytes each, host byte order)
//! ```
//! (integers little-endian; the checksum is FNV-1a over everything after it). Entries are written to a
//! temporary file and renamed into place, so a reader sees a whole entry or none. The directory decides
//! which filter containers get: it must be writable by the runtime's user only (it is created 0700).

use std::fs;
use std::io::Write;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};

use berth_spec::Seccomp;
use berth_sys::seccomp::SockFilter;

use crate::{compile, Error, Program};

const MAGIC: &[u8; 4] = b"BSCP";
/// Bumped whenever the file layout or the meaning of a compiled profile changes.
const FORMAT: u32 = 2;
const HEADER: usize = 4 + 4 + 4 + 4 + 4 + 8;

/// FNV-1a, 64 bits: stable across builds and platforms (std's hasher is not).
fn fnv1a(data: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in data {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

/// What an entry was compiled from: format, libseccomp version, profile.
fn identity(s: &Seccomp) -> Option<Vec<u8>> {
    let version = crate::library_version().unwrap_or_default();
    let mut id = format!("berth-seccomp {FORMAT} libseccomp {version}\n").into_bytes();
    id.extend_from_slice(&serde_json::to_vec(s).ok()?);
    Some(id)
}

fn file_name(identity: &[u8]) -> String {
    format!("{:016x}.bpf", fnv1a(identity))
}

/// The bytes of an entry.
fn encode(identity: &[u8], p: &Program) -> Vec<u8> {
    let mut body = Vec::with_capacity(identity.len() + p.len() * SockFilter::SIZE);
    body.extend_from_slice(identity);
    for i in p.instructions() {
        body.extend_from_slice(&i.to_ne_bytes());
    }
    let mut out = Vec::with_capacity(HEADER + body.len());
    out.extend_from_slice(MAGIC);
    for n in [FORMAT, p.flags(), p.len() as u32, identity.len() as u32] {
        out.extend_from_slice(&n.to_le_bytes());
    }
    let mut check = Vec::with_capacity(16 + body.len());
    check.extend_from_slice(&out[4..]);
    check.extend_from_slice(&body);
    out.extend_from_slice(&fnv1a(&check).to_le_bytes());
    out.extend_from_slice(&body);
    out
}

/// The program in an entry, if the entry is whole and was compiled from `identity`.
fn decode(data: &[u8], identity: &[u8]) -> Option<Program> {
    let u32_at = |at: usize| Some(u32::from_le_bytes(data.get(at..at + 4)?.try_into().ok()?));
    if data.get(..4)? != MAGIC || u32_at(4)? != FORMAT {
        return None;
    }
    let flags = u32_at(8)?;
    let count = u32_at(12)? as usize;
    let id_len = u32_at(16)? as usize;
    let checksum = u64::from_le_bytes(data.get(20..28)?.try_into().ok()?);
    let body = &data[HEADER..];
    if count == 0 || body.len() != id_len.checked_add(count.checked_mul(SockFilter::SIZE)?)? {
        return None;
    }
    let mut check = data[4..20].to_vec();
    check.extend_from_slice(body);
    if fnv1a(&check) != checksum || &body[..id_len] != identity {
        return None;
    }
    let instructions = body[id_len..]
        .chunks_exact(SockFilter::SIZE)
        .map(|c| SockFilter::from_ne_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]))
        .collect();
    Some(Program::new(instructions, flags))
}

/// Writes `data` to `path` through a temporary file in the same directory and a rename.
fn write_atomically(path: &Path, data: &[u8]) -> std::io::Result<()> {
    static SEQ: AtomicU32 = AtomicU32::new(0);
    let tmp = path.with_extension(format!(
        "tmp.{}.{}",
        std::process::id(),
        SEQ.fetch_add(1, Ordering::Relaxed)
    ));
    let result = fs::File::create(&tmp)
        .and_then(|mut f| f.write_all(data))
        .and_then(|()| fs::rename(&tmp, path));
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

fn entry_path(dir: &Path, identity: &[u8]) -> PathBuf {
    dir.join(file_name(identity))
}

/// [`compile`] through the cache in `cache_dir` (none: no cache). A missing, stale or corrupt entry is
/// compiled and written again; a cache that cannot be read or written costs a compilation, never an
/// error. Errors are those of [`compile`].
pub fn compile_cached(s: &Seccomp, cache_dir: Option<&Path>) -> Result<Program, Error> {
    let Some(dir) = cache_dir else {
        return compile(s);
    };
    let Some(id) = identity(s) else {
        return compile(s);
    };
    let path = entry_path(dir, &id);
    if let Some(p) = fs::read(&path).ok().and_then(|d| decode(&d, &id)) {
        return Ok(p);
    }
    let p = compile(s)?;
    let made = fs::DirBuilder::new().recursive(true).mode(0o700).create(dir);
    if made.is_ok() {
        // Best effort: the next start compiles again if this fails.
        let _ = write_atomically(&path, &encode(&id, &p));
    }
    Ok(p)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tests::{docker_sized, rule};

    fn small() -> Seccomp {
        Seccomp {
            default_action: "SCMP_ACT_ALLOW".into(),
            flags: vec!["SECCOMP_FILTER_FLAG_LOG".into()],
            syscalls: vec![rule(&["getcwd"], "SCMP_ACT_ERRNO")],
            ..Default::default()
        }
    }

    #[test]
    fn round_trip() {
        let t = tempfile::tempdir().unwrap();
        let dir = t.path().join("cache");
        let s = small();
        let p1 = compile_cached(&s, Some(&dir)).unwrap();
        assert_eq!(p1, compile(&s).unwrap());
        let id = identity(&s).unwrap();
        let path = entry_path(&dir, &id);
        assert_eq!(decode(&fs::read(&path).unwrap(), &id).unwrap(), p1);
        assert_eq!(compile_cached(&s, Some(&dir)).unwrap(), p1);
        assert_eq!(fs::read_dir(&dir).unwrap().count(), 1, "no temporary left");
        assert_eq!(compile_cached(&s, None).unwrap(), p1);
    }

    #[test]
    fn corrupt_entries_are_ignored_and_rewritten() {
        let t = tempfile::tempdir().unwrap();
        let s = small();
        let id = identity(&s).unwrap();
        let path = entry_path(t.path(), &id);
        let good = compile_cached(&s, Some(t.path())).unwrap();
        let whole = fs::read(&path).unwrap();
        let mut flipped = whole.clone();
        let last = flipped.len() - 1;
        flipped[last] ^= 0x40;
        for bad in [
            b"garbage".to_vec(),
            whole[..whole.len() - 8].to_vec(),
            flipped,
            vec![],
        ] {
            fs::write(&path, &bad).unwrap();
            assert!(decode(&bad, &id).is_none());
            assert_eq!(compile_cached(&s, Some(t.path())).unwrap(), good);
            assert_eq!(fs::read(&path).unwrap(), whole, "the entry was rewritten");
        }
    }

    #[test]
    fn an_entry_answers_only_for_its_own_profile() {
        let s = small();
        let mut other = s.clone();
        other.default_action = "SCMP_ACT_LOG".into();
        let (a, b) = (identity(&s).unwrap(), identity(&other).unwrap());
        assert_ne!(file_name(&a), file_name(&b));
        // Even under the other's name (a hash collision), an entry is not taken for another profile.
        let entry = encode(&a, &compile(&s).unwrap());
        assert!(decode(&entry, &a).is_some());
        assert!(decode(&entry, &b).is_none());
    }

    #[test]
    fn a_cache_hit_is_much_faster_than_compiling() {
        let t = tempfile::tempdir().unwrap();
        let s = docker_sized();
        let start = std::time::Instant::now();
        let compiled = compile(&s).unwrap();
        let compile_time = start.elapsed();
        compile_cached(&s, Some(t.path())).unwrap();
        let start = std::time::Instant::now();
        let hit = compile_cached(&s, Some(t.path())).unwrap();
        let hit_time = start.elapsed();
        assert_eq!(hit, compiled);
        eprintln!(
            "docker-sized profile ({} rules, {} instructions): compile {compile_time:?}, cache hit {hit_time:?}",
            s.syscalls.iter().map(|r| r.names.len()).sum::<usize>(),
            compiled.len()
        );
        assert!(hit_time < compile_time, "{hit_time:?} vs {compile_time:?}");
    }
}
