//! The content-addressed blob store: `<root>/blobs/sha256/<hex>`, written only through an ingest that
//! verifies the digest and size before the blob appears under its name. An ingest lives in
//! `<root>/ingest/<key>/` (`data`, plus `expected` with the digest and size) and survives a crash: a
//! later writer with the same key continues where the data ends (the bytes already there are hashed
//! again), so an interrupted download resumes.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use sha2::{Digest as _, Sha256};

use crate::digest::Digest;

#[derive(Debug, thiserror::Error)]
pub enum ContentError {
    #[error("blob {0} not found")]
    NotFound(Digest),
    #[error("blob {expected}: content has digest {actual}")]
    DigestMismatch { expected: Digest, actual: Digest },
    #[error("blob {digest}: expected {expected} bytes, got {actual}")]
    SizeMismatch {
        digest: String,
        expected: u64,
        actual: u64,
    },
    #[error("ingest {key}: more than the expected {expected} bytes")]
    TooLarge { key: String, expected: u64 },
    #[error("invalid ingest key {0:?}")]
    BadKey(String),
    #[error("{what} {path}")]
    Io {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

fn io_err<'a>(what: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> ContentError + 'a {
    move |source| ContentError::Io {
        what,
        path: path.to_path_buf(),
        source,
    }
}

/// The blob store rooted at a directory.
#[derive(Debug, Clone)]
pub struct Store {
    root: PathBuf,
}

impl Store {
    /// Opens (creating if needed) the store at `root`.
    pub fn open(root: &Path) -> Result<Store, ContentError> {
        for d in ["blobs/sha256", "ingest"] {
            let p = root.join(d);
            fs::create_dir_all(&p).map_err(io_err("create", &p))?;
        }
        Ok(Store {
            root: root.to_path_buf(),
        })
    }

    /// Where blob `d` lives.
    pub fn blob_path(&self, d: &Digest) -> PathBuf {
        self.root.join("blobs/sha256").join(d.hex())
    }

    pub fn exists(&self, d: &Digest) -> bool {
        self.blob_path(d).is_file()
    }

    /// The size of blob `d`.
    pub fn size(&self, d: &Digest) -> Result<u64, ContentError> {
        match fs::metadata(self.blob_path(d)) {
            Ok(m) => Ok(m.len()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Err(ContentError::NotFound(d.clone())),
            Err(e) => Err(io_err("stat", &self.blob_path(d))(e)),
        }
    }

    /// Opens blob `d` for reading.
    pub fn open_blob(&self, d: &Digest) -> Result<File, ContentError> {
        let p = self.blob_path(d);
        File::open(&p).map_err(|e| {
            if e.kind() == io::ErrorKind::NotFound {
                ContentError::NotFound(d.clone())
            } else {
                io_err("open", &p)(e)
            }
        })
    }

    /// Reads a whole (small) blob: manifests, configs.
    pub fn read(&self, d: &Digest) -> Result<Vec<u8>, ContentError> {
        let mut buf = Vec::new();
        self.open_blob(d)?
            .read_to_end(&mut buf)
            .map_err(io_err("read", &self.blob_path(d)))?;
        Ok(buf)
    }

    /// Stores `data` (verified against `expected` if given); returns its digest. Each call has an
    /// ingest of its own (never one an earlier, interrupted call left).
    pub fn write_all(&self, data: &[u8], expected: Option<&Digest>) -> Result<Digest, ContentError> {
        static SEQ: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let key = format!(
            "direct-{}-{}-{}",
            &Digest::of(data).hex()[..16],
            std::process::id(),
            SEQ.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        );
        self.abort(&key);
        let mut w = self.writer(&key, expected.cloned(), Some(data.len() as u64))?;
        if let Err(e) = w.write_all(data) {
            drop(w);
            self.abort(&key);
            return Err(io_err("write", &self.root)(e));
        }
        w.commit()
    }

    /// Drops every unfinished ingest except resumable downloads (those keyed by a digest's hex):
    /// what interrupted one-shot writes left. Call when nothing else writes to the store.
    pub fn clean_stale_ingests(&self) {
        for key in self.ingests() {
            let resumable = key.len() == 64 && key.chars().all(|c| c.is_ascii_hexdigit());
            if !resumable {
                self.abort(&key);
            }
        }
    }

    /// Every blob in the store.
    pub fn list(&self) -> Result<Vec<Digest>, ContentError> {
        let dir = self.root.join("blobs/sha256");
        let mut out: Vec<Digest> = fs::read_dir(&dir)
            .map_err(io_err("list", &dir))?
            .flatten()
            .filter_map(|e| format!("sha256:{}", e.file_name().to_string_lossy()).parse().ok())
            .collect();
        out.sort();
        Ok(out)
    }

    /// Removes blob `d` (not an error if it is gone).
    pub fn delete(&self, d: &Digest) -> Result<(), ContentError> {
        match fs::remove_file(self.blob_path(d)) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(io_err("remove", &self.blob_path(d))(e)),
        }
    }

    /// A writer for ingest `key` (e.g. the digest being downloaded). An unfinished ingest with the same
    /// key is continued: its bytes are kept and hashed again; [`Writer::offset`] says where to resume.
    pub fn writer(
        &self,
        key: &str,
        expected: Option<Digest>,
        size: Option<u64>,
    ) -> Result<Writer, ContentError> {
        if key.is_empty() || key.contains('/') || key.starts_with('.') || key.len() > 200 {
            return Err(ContentError::BadKey(key.to_string()));
        }
        let dir = self.root.join("ingest").join(key);
        fs::create_dir_all(&dir).map_err(io_err("create", &dir))?;
        let data = dir.join("data");
        let mut file = OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .open(&data)
            .map_err(io_err("open", &data))?;
        // Hash what an earlier attempt left.
        let mut hasher = Sha256::new();
        let mut offset = 0u64;
        let mut buf = vec![0u8; 1 << 16];
        loop {
            let n = file.read(&mut buf).map_err(io_err("read", &data))?;
            if n == 0 {
                break;
            }
            hasher.update(&buf[..n]);
            offset += n as u64;
        }
        if size.is_some_and(|s| offset > s) {
            // More than the whole blob: the earlier attempt was for something else. Start over.
            file.set_len(0).map_err(io_err("truncate", &data))?;
            hasher = Sha256::new();
            offset = 0;
        }
        Ok(Writer {
            store: self.clone(),
            key: key.to_string(),
            dir,
            file,
            hasher,
            offset,
            expected,
            size,
        })
    }

    /// Drops an unfinished ingest.
    pub fn abort(&self, key: &str) {
        let _ = fs::remove_dir_all(self.root.join("ingest").join(key));
    }

    /// The keys of unfinished ingests.
    pub fn ingests(&self) -> Vec<String> {
        fs::read_dir(self.root.join("ingest"))
            .map(|rd| {
                rd.flatten()
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default()
    }
}

/// An ingest in progress: bytes are hashed as they are written; [`Writer::commit`] checks the digest
/// and size and moves the data under its digest.
pub struct Writer {
    store: Store,
    key: String,
    dir: PathBuf,
    file: File,
    hasher: Sha256,
    offset: u64,
    expected: Option<Digest>,
    size: Option<u64>,
}

impl Writer {
    /// The ingest key this writer was opened with.
    pub fn key(&self) -> &str {
        &self.key
    }

    /// Bytes already ingested (where a download resumes).
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// Verifies and publishes the blob. On a mismatch the ingest is discarded: nothing is stored under
    /// the digest the content claimed, and the next attempt starts clean.
    pub fn commit(mut self) -> Result<Digest, ContentError> {
        self.file.flush().map_err(io_err("flush", &self.dir))?;
        let actual = Digest::from_hasher(self.hasher.clone());
        if let Some(size) = self.size {
            if self.offset != size {
                let e = ContentError::SizeMismatch {
                    digest: actual.to_string(),
                    expected: size,
                    actual: self.offset,
                };
                self.store.abort(&self.key);
                return Err(e);
            }
        }
        if let Some(expected) = &self.expected {
            if *expected != actual {
                let e = ContentError::DigestMismatch {
                    expected: expected.clone(),
                    actual,
                };
                self.store.abort(&self.key);
                return Err(e);
            }
        }
        self.file.sync_all().map_err(io_err("sync", &self.dir))?;
        let target = self.store.blob_path(&actual);
        let data = self.dir.join("data");
        fs::rename(&data, &target).map_err(io_err("publish", &target))?;
        self.store.abort(&self.key);
        Ok(actual)
    }
}

impl Write for Writer {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if let Some(size) = self.size {
            if self.offset + buf.len() as u64 > size {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    ContentError::TooLarge {
                        key: self.key.clone(),
                        expected: size,
                    },
                ));
            }
        }
        let n = self.file.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.offset += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.file.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store() -> (tempfile::TempDir, Store) {
        let t = tempfile::tempdir().unwrap();
        let s = Store::open(t.path()).unwrap();
        (t, s)
    }

    #[test]
    fn write_read_list_delete() {
        let (_t, s) = store();
        let d = s.write_all(b"hello", None).unwrap();
        assert_eq!(d, Digest::of(b"hello"));
        assert!(s.exists(&d));
        assert_eq!(s.read(&d).unwrap(), b"hello");
        assert_eq!(s.size(&d).unwrap(), 5);
        assert_eq!(s.list().unwrap(), vec![d.clone()]);
        s.delete(&d).unwrap();
        assert!(matches!(s.read(&d), Err(ContentError::NotFound(_))));
        assert!(s.ingests().is_empty());
    }

    #[test]
    fn lying_content_is_never_stored_under_the_claimed_digest() {
        let (_t, s) = store();
        let claimed = Digest::of(b"the real thing");
        let e = s.write_all(b"something else", Some(&claimed)).unwrap_err();
        assert!(matches!(e, ContentError::DigestMismatch { .. }), "{e}");
        assert!(!s.exists(&claimed));
        assert!(s.list().unwrap().is_empty());
        assert!(s.ingests().is_empty(), "the failed ingest is discarded");
        // Wrong size, right digest.
        let mut w = s.writer("k", Some(claimed.clone()), Some(3)).unwrap();
        assert!(w.write_all(b"the real thing").is_err());
        let mut w = s.writer("k2", None, Some(100)).unwrap();
        w.write_all(b"short").unwrap();
        assert!(matches!(w.commit(), Err(ContentError::SizeMismatch { .. })));
    }

    #[test]
    fn an_interrupted_ingest_resumes() {
        let (_t, s) = store();
        let blob: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
        let d = Digest::of(&blob);
        let mut w = s
            .writer(d.hex(), Some(d.clone()), Some(blob.len() as u64))
            .unwrap();
        w.write_all(&blob[..70_000]).unwrap();
        drop(w); // the "crash"
        assert_eq!(s.ingests(), vec![d.hex().to_string()]);
        let mut w = s
            .writer(d.hex(), Some(d.clone()), Some(blob.len() as u64))
            .unwrap();
        assert_eq!(w.offset(), 70_000);
        w.write_all(&blob[70_000..]).unwrap();
        assert_eq!(w.commit().unwrap(), d);
        assert_eq!(s.read(&d).unwrap(), blob);
    }

    #[test]
    fn bad_keys() {
        let (_t, s) = store();
        for k in ["", "../x", "a/b", ".hidden"] {
            assert!(
                matches!(s.writer(k, None, None), Err(ContentError::BadKey(_))),
                "{k}"
            );
        }
    }

    #[test]
    fn stale_one_shot_ingests_go_and_downloads_stay() {
        let (_t, s) = store();
        let d = Digest::of(b"a download");
        let mut w = s.writer(d.hex(), Some(d.clone()), Some(10)).unwrap();
        w.write_all(b"a down").unwrap();
        drop(w);
        let mut w = s.writer("direct-abc-1-0", None, Some(10)).unwrap();
        w.write_all(b"half").unwrap();
        drop(w);
        s.clean_stale_ingests();
        assert_eq!(s.ingests(), vec![d.hex().to_string()]);
        // Two one-shot writes of the same data do not share an ingest.
        assert_eq!(
            s.write_all(b"same", None).unwrap(),
            s.write_all(b"same", None).unwrap()
        );
    }
}
