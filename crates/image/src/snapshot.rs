//! The snapshotter: each layer unpacked once into `<root>/layers/<chain-id hex>/` (shared by every
//! image whose stack has that chain ID), and per container a writable upper directory. It *returns*
//! mounts (overlayfs: the layers read-only below, the container's upper above) rather than mounting:
//! whoever starts the container puts them into its OCI spec. Where overlayfs cannot be used (a
//! kernel without it, a data root on a filesystem it refuses), [`Snapshotter::prepare_copy`] gives
//! the container a plain directory with every layer applied in order, and a bind mount.

use std::fs;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use crate::digest::Digest;
use crate::manifest::Compression;
use crate::unpack::{self, Applied, Options, UnpackError};

#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    #[error("layer {0} is not unpacked")]
    MissingLayer(Digest),
    #[error("invalid snapshot key {0:?}")]
    BadKey(String),
    #[error("snapshot {0} exists")]
    Exists(String),
    #[error("unpack layer {chain}")]
    Unpack {
        chain: Digest,
        #[source]
        source: UnpackError,
    },
    #[error("layer {chain}: {message}")]
    Check { chain: Digest, message: String },
    #[error("{what} {path}")]
    Io {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

fn io_err<'a>(what: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> SnapshotError + 'a {
    move |source| SnapshotError::Io {
        what,
        path: path.to_path_buf(),
        source,
    }
}

/// A mount, as an OCI `mounts[]` entry needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mount {
    pub fstype: String,
    pub source: String,
    pub options: Vec<String>,
}

#[derive(Debug, Clone)]
pub struct Snapshotter {
    root: PathBuf,
}

impl Snapshotter {
    pub fn open(root: &Path) -> Result<Snapshotter, SnapshotError> {
        for d in ["layers", "containers", "tmp"] {
            let p = root.join(d);
            fs::create_dir_all(&p).map_err(io_err("create", &p))?;
        }
        Ok(Snapshotter {
            root: root.to_path_buf(),
        })
    }

    fn layer_dir(&self, chain: &Digest) -> PathBuf {
        self.root.join("layers").join(chain.hex())
    }

    pub fn has_layer(&self, chain: &Digest) -> bool {
        self.layer_dir(chain).is_dir()
    }

    /// Unpacks the layer whose stack has `chain` as chain ID, once: into a temporary directory, renamed
    /// into place only when it is complete (a failed or interrupted unpack leaves no half layer).
    pub fn unpack(
        &self,
        chain: &Digest,
        blob: impl Read,
        compression: Compression,
        opts: &Options,
    ) -> Result<Option<Applied>, SnapshotError> {
        self.unpack_checked(chain, blob, compression, opts, |_, _| Ok(()))
    }

    /// [`Snapshotter::unpack`], with `check` run on the result before the layer is published: the
    /// place to compare the diff ID with the image config's and to verify the compressed stream's
    /// digest. A check that fails removes the unpacked directory.
    pub fn unpack_checked<R: Read>(
        &self,
        chain: &Digest,
        mut blob: R,
        compression: Compression,
        opts: &Options,
        check: impl FnOnce(&Applied, &mut R) -> Result<(), String>,
    ) -> Result<Option<Applied>, SnapshotError> {
        if self.has_layer(chain) {
            return Ok(None);
        }
        static SEQ: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let tmp = self.root.join("tmp").join(format!(
            "{}-{}-{}",
            chain.hex(),
            std::process::id(),
            SEQ.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        ));
        let _ = fs::remove_dir_all(&tmp);
        fs::create_dir_all(&tmp).map_err(io_err("create", &tmp))?;
        let applied = match unpack::apply(&mut blob, compression, &tmp, opts) {
            Ok(a) => a,
            Err(source) => {
                let _ = fs::remove_dir_all(&tmp);
                return Err(SnapshotError::Unpack {
                    chain: chain.clone(),
                    source,
                });
            }
        };
        if let Err(message) = check(&applied, &mut blob) {
            let _ = fs::remove_dir_all(&tmp);
            return Err(SnapshotError::Check {
                chain: chain.clone(),
                message,
            });
        }
        let dest = self.layer_dir(chain);
        match fs::rename(&tmp, &dest) {
            Ok(()) => Ok(Some(applied)),
            // Another unpack of the same layer won: keep theirs.
            Err(_) if dest.is_dir() => {
                let _ = fs::remove_dir_all(&tmp);
                Ok(None)
            }
            Err(e) => {
                let _ = fs::remove_dir_all(&tmp);
                Err(io_err("publish", &dest)(e))
            }
        }
    }

    /// Removes what interrupted unpacks left (call when no unpack is running, e.g. at start).
    pub fn clean_tmp(&self) {
        let tmp = self.root.join("tmp");
        if let Ok(rd) = fs::read_dir(&tmp) {
            for e in rd.flatten() {
                let _ = fs::remove_dir_all(e.path());
            }
        }
    }

    /// The chain IDs of the unpacked layers.
    pub fn layers(&self) -> Vec<Digest> {
        fs::read_dir(self.root.join("layers"))
            .map(|rd| {
                rd.flatten()
                    .filter_map(|e| format!("sha256:{}", e.file_name().to_string_lossy()).parse().ok())
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The directory of an unpacked layer.
    pub fn layer_path(&self, chain: &Digest) -> PathBuf {
        self.layer_dir(chain)
    }

    /// Prepares container `key` on the layer stack `chain_ids` (bottom first): creates its upper and
    /// work directories and returns the root filesystem's mount.
    pub fn prepare(&self, key: &str, chain_ids: &[Digest]) -> Result<Mount, SnapshotError> {
        if key.is_empty() || key.contains('/') || key.starts_with('.') {
            return Err(SnapshotError::BadKey(key.to_string()));
        }
        for c in chain_ids {
            if !self.has_layer(c) {
                return Err(SnapshotError::MissingLayer(c.clone()));
            }
        }
        let dir = self.root.join("containers").join(key);
        match fs::create_dir(&dir) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                return Err(SnapshotError::Exists(key.to_string()))
            }
            Err(e) => return Err(io_err("create", &dir)(e)),
        }
        for d in ["upper", "work"] {
            let p = dir.join(d);
            if let Err(e) = fs::create_dir(&p) {
                let _ = fs::remove_dir_all(&dir);
                return Err(io_err("create", &p)(e));
            }
        }
        Ok(self.mount_of(&dir, chain_ids))
    }

    fn mount_of(&self, dir: &Path, chain_ids: &[Digest]) -> Mount {
        if chain_ids.is_empty() {
            // No layers: the upper directory alone is the root filesystem.
            return Mount {
                fstype: "bind".into(),
                source: dir.join("upper").display().to_string(),
                options: vec!["rbind".into(), "rw".into()],
            };
        }
        // overlayfs lists lower directories top first.
        let lower: Vec<String> = chain_ids
            .iter()
            .rev()
            .map(|c| self.layer_dir(c).display().to_string())
            .collect();
        Mount {
            fstype: "overlay".into(),
            source: "overlay".into(),
            options: vec![
                format!("lowerdir={}", lower.join(":")),
                format!("upperdir={}", dir.join("upper").display()),
                format!("workdir={}", dir.join("work").display()),
            ],
        }
    }

    /// The copy fallback: container `key` gets `containers/<key>/rootfs`, a plain directory with the
    /// layers (their blobs, bottom first) applied in order, whiteouts as deletions. Slower to prepare
    /// and not shared, but it needs nothing from the kernel beyond a bind mount.
    pub fn prepare_copy<R: Read>(
        &self,
        key: &str,
        layers: impl IntoIterator<Item = (R, Compression)>,
        opts: &Options,
    ) -> Result<Mount, SnapshotError> {
        if key.is_empty() || key.contains('/') || key.starts_with('.') {
            return Err(SnapshotError::BadKey(key.to_string()));
        }
        let dir = self.root.join("containers").join(key);
        match fs::create_dir(&dir) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                return Err(SnapshotError::Exists(key.to_string()))
            }
            Err(e) => return Err(io_err("create", &dir)(e)),
        }
        let rootfs = dir.join("rootfs");
        let flat = Options {
            mode: unpack::Mode2::Flatten,
            ..opts.clone()
        };
        let result = fs::create_dir(&rootfs)
            .map_err(io_err("create", &rootfs))
            .and_then(|()| {
                for (i, (blob, c)) in layers.into_iter().enumerate() {
                    unpack::apply(blob, c, &rootfs, &flat).map_err(|source| SnapshotError::Unpack {
                        chain: Digest::of(format!("{key} layer {i}").as_bytes()),
                        source,
                    })?;
                }
                Ok(())
            });
        if let Err(e) = result {
            let _ = fs::remove_dir_all(&dir);
            return Err(e);
        }
        Ok(Mount {
            fstype: "bind".into(),
            source: rootfs.display().to_string(),
            options: vec!["rbind".into(), "rw".into()],
        })
    }

    /// Whether overlayfs works here with this root: a real mount of two scratch directories (root
    /// only; anyone else gets false).
    pub fn overlay_works(&self) -> bool {
        if !nix::unistd::geteuid().is_root() {
            return false;
        }
        let probe = self
            .root
            .join("tmp")
            .join(format!("overlay-probe-{}", std::process::id()));
        let _ = fs::remove_dir_all(&probe);
        let ok = (|| -> io::Result<bool> {
            for d in ["lower", "upper", "work", "merged"] {
                fs::create_dir_all(probe.join(d))?;
            }
            fs::write(probe.join("lower/file"), b"x")?;
            let opts = format!(
                "lowerdir={},upperdir={},workdir={}",
                probe.join("lower").display(),
                probe.join("upper").display(),
                probe.join("work").display()
            );
            let merged = probe.join("merged");
            if nix::mount::mount(
                Some("overlay"),
                &merged,
                Some("overlay"),
                nix::mount::MsFlags::empty(),
                Some(opts.as_str()),
            )
            .is_err()
            {
                return Ok(false);
            }
            let seen = merged.join("file").exists();
            let _ = nix::mount::umount2(&merged, nix::mount::MntFlags::MNT_DETACH);
            Ok(seen)
        })()
        .unwrap_or(false);
        let _ = fs::remove_dir_all(&probe);
        ok
    }

    /// Where container `key`'s snapshot lives (`upper/` holds its changes on overlay).
    pub fn container_dir(&self, key: &str) -> PathBuf {
        self.root.join("containers").join(key)
    }

    /// Removes container `key`'s writable layer (missing is fine).
    pub fn remove(&self, key: &str) -> Result<(), SnapshotError> {
        if key.is_empty() || key.contains('/') || key.starts_with('.') {
            return Err(SnapshotError::BadKey(key.to_string()));
        }
        let dir = self.root.join("containers").join(key);
        match fs::remove_dir_all(&dir) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(io_err("remove", &dir)(e)),
        }
    }

    /// Removes an unpacked layer (when no image uses it any more).
    pub fn remove_layer(&self, chain: &Digest) -> Result<(), SnapshotError> {
        let dir = self.layer_dir(chain);
        match fs::remove_dir_all(&dir) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(io_err("remove", &dir)(e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::chain_ids;

    fn layer(name: &str, data: &[u8]) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_entry_type(tar::EntryType::Regular);
        b.append_data(&mut h, name, data).unwrap();
        b.into_inner().unwrap()
    }

    fn opts() -> Options {
        Options {
            preserve_owner: nix::unistd::geteuid().is_root(),
            ..Options::default()
        }
    }

    #[test]
    fn layers_once_and_overlay_mounts() {
        let t = tempfile::tempdir().unwrap();
        let s = Snapshotter::open(t.path()).unwrap();
        let (l1, l2) = (layer("a", b"1"), layer("b", b"2"));
        let chains = chain_ids(&[Digest::of(&l1), Digest::of(&l2)]);
        let applied = s
            .unpack(&chains[0], &l1[..], Compression::None, &opts())
            .unwrap()
            .unwrap();
        assert_eq!(applied.diff_id, Digest::of(&l1));
        assert!(
            s.unpack(&chains[0], &l1[..], Compression::None, &opts())
                .unwrap()
                .is_none(),
            "unpacked once"
        );
        assert!(matches!(
            s.prepare("c1", &chains),
            Err(SnapshotError::MissingLayer(_))
        ));
        s.unpack(&chains[1], &l2[..], Compression::None, &opts()).unwrap();
        let m = s.prepare("c1", &chains).unwrap();
        assert_eq!(m.fstype, "overlay");
        let lower = m.options[0].strip_prefix("lowerdir=").unwrap();
        let dirs: Vec<&str> = lower.split(':').collect();
        assert!(
            dirs[0].ends_with(chains[1].hex()) && dirs[1].ends_with(chains[0].hex()),
            "top layer first: {lower}"
        );
        assert!(t.path().join("containers/c1/upper").is_dir());
        assert!(matches!(s.prepare("c1", &chains), Err(SnapshotError::Exists(_))));
        s.remove("c1").unwrap();
        assert!(!t.path().join("containers/c1").exists());
        assert!(matches!(
            s.prepare("../x", &chains),
            Err(SnapshotError::BadKey(_))
        ));
    }

    #[test]
    fn a_failed_unpack_leaves_no_layer() {
        let t = tempfile::tempdir().unwrap();
        let s = Snapshotter::open(t.path()).unwrap();
        let d = Digest::of(b"x");
        assert!(s
            .unpack(
                &d,
                &b"this is not a tar archive, not at all......"[..],
                Compression::Gzip,
                &opts()
            )
            .is_err());
        assert!(!s.has_layer(&d));
        assert_eq!(fs::read_dir(t.path().join("tmp")).unwrap().count(), 0);
    }
}

#[cfg(test)]
mod root_tests {
    use super::*;

    /// With root: the returned mount really is an overlay of the layers with a writable upper.
    #[test]
    fn the_mount_works() {
        if !nix::unistd::geteuid().is_root() {
            eprintln!("skipped: mounting needs root");
            return;
        }
        let t = tempfile::tempdir().unwrap();
        let s = Snapshotter::open(&t.path().join("snap")).unwrap();
        let mut b = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_gnu();
        h.set_size(5);
        h.set_mode(0o644);
        b.append_data(&mut h, "hello", &b"world"[..]).unwrap();
        let l = b.into_inner().unwrap();
        let chain = Digest::of(&l);
        s.unpack(&chain, &l[..], Compression::None, &Options::default())
            .unwrap();
        let m = s.prepare("c", std::slice::from_ref(&chain)).unwrap();
        let merged = t.path().join("merged");
        fs::create_dir(&merged).unwrap();
        let data = m.options.join(",");
        if let Err(e) = nix::mount::mount(
            Some("overlay"),
            &merged,
            Some("overlay"),
            nix::mount::MsFlags::empty(),
            Some(data.as_str()),
        ) {
            eprintln!("skipped: overlayfs unavailable here: {e}");
            return;
        }
        let seen = fs::read_to_string(merged.join("hello"));
        let wrote = fs::write(merged.join("new"), b"x");
        // Unmounted before any assertion, so a failing test leaves no mount behind.
        nix::mount::umount(&merged).unwrap();
        assert_eq!(seen.unwrap(), "world");
        wrote.unwrap();
        assert!(
            t.path().join("snap/containers/c/upper/new").exists(),
            "writes land in the upper directory"
        );
        assert!(
            !t.path()
                .join("snap/layers")
                .join(chain.hex())
                .join("new")
                .exists(),
            "the layer stays untouched"
        );
    }

    #[test]
    fn the_copy_fallback_applies_layers_in_order_with_whiteouts() {
        let t = tempfile::tempdir().unwrap();
        let s = Snapshotter::open(t.path()).unwrap();
        let l1 = {
            let mut b = tar::Builder::new(Vec::new());
            for (name, data) in [("keep", &b"1"[..]), ("gone", &b"2"[..])] {
                let mut h = tar::Header::new_gnu();
                h.set_size(data.len() as u64);
                h.set_mode(0o644);
                h.set_entry_type(tar::EntryType::Regular);
                b.append_data(&mut h, name, data).unwrap();
            }
            b.into_inner().unwrap()
        };
        let l2 = {
            let mut b = tar::Builder::new(Vec::new());
            let mut h = tar::Header::new_gnu();
            h.set_size(0);
            h.set_mode(0o644);
            h.set_entry_type(tar::EntryType::Regular);
            b.append_data(&mut h, ".wh.gone", &b""[..]).unwrap();
            let mut h = tar::Header::new_gnu();
            h.set_size(3);
            h.set_mode(0o644);
            h.set_entry_type(tar::EntryType::Regular);
            b.append_data(&mut h, "keep", &b"new"[..]).unwrap();
            b.into_inner().unwrap()
        };
        let m = s
            .prepare_copy(
                "c2",
                [(&l1[..], Compression::None), (&l2[..], Compression::None)],
                &Options {
                    preserve_owner: nix::unistd::geteuid().is_root(),
                    ..Options::default()
                },
            )
            .unwrap();
        assert_eq!(m.fstype, "bind");
        let root = Path::new(&m.source);
        assert_eq!(fs::read(root.join("keep")).unwrap(), b"new");
        assert!(!root.join("gone").exists() && !root.join(".wh.gone").exists());
        assert!(matches!(
            s.prepare_copy(
                "c2",
                std::iter::empty::<(&[u8], Compression)>(),
                &Options {
                    preserve_owner: nix::unistd::geteuid().is_root(),
                    ..Options::default()
                }
            ),
            Err(SnapshotError::Exists(_))
        ));
        // A bad layer leaves nothing behind.
        let r = s.prepare_copy(
            "c3",
            [(&b"not a tar"[..], Compression::Gzip)],
            &Options {
                preserve_owner: nix::unistd::geteuid().is_root(),
                ..Options::default()
            },
        );
        assert!(r.is_err());
        assert!(!t.path().join("containers/c3").exists());
        s.remove("c2").unwrap();
        assert!(!root.exists());
        // Whether overlayfs works depends on the machine; the probe must clean up either way.
        eprintln!("overlayfs works here: {}", s.overlay_works());
        assert_eq!(fs::read_dir(t.path().join("tmp")).unwrap().count(), 0);
    }
}
