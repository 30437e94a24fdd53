//! The image service: what berthd does with images, over the content store, the metadata store, the
//! snapshotter and the registry client. The HTTP layer (crates/daemon) only translates.
//!
//! Names are kept fully qualified: `docker.io/library/busybox:latest` for a tag and
//! `docker.io/library/busybox@sha256:...` for a repository digest (what docker shows as RepoDigests);
//! an image's ID is its config's digest.

mod archive;
mod pull;
mod push;
mod query;
mod remove;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use berth_image::manifest::{self, Parsed};
use berth_image::meta::{ImageRecord, MetaStore};
use berth_image::snapshot::Snapshotter;
use berth_image::unpack::Options;
use berth_image::{Digest, ImageConfig, Manifest, Reference, ReferenceError, Store};
use berth_registry::Client;

pub use archive::LoadResult;
pub use query::{DeleteItem, ImageFilters, PruneReport};

use crate::events::Events;

/// Errors with the HTTP status dockerd gives them.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    Unauthorized(String),
    /// dockerd's 403: refused by the state of things (a network in use, a pool overlap).
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    Internal(String),
}

impl Error {
    pub fn status(&self) -> u16 {
        match self {
            Error::NotFound(_) => 404,
            Error::Conflict(_) => 409,
            Error::Invalid(_) => 400,
            Error::Unauthorized(_) => 401,
            Error::Forbidden(_) => 403,
            Error::Internal(_) => 500,
        }
    }
}

pub(crate) fn internal<E: std::fmt::Display>(e: E) -> Error {
    Error::Internal(e.to_string())
}

impl From<ReferenceError> for Error {
    fn from(e: ReferenceError) -> Error {
        Error::Invalid(e.to_string())
    }
}

/// How the image service is set up.
#[derive(Debug, Clone)]
pub struct Config {
    /// Where blobs, metadata and snapshots live (`<data-root>/image`).
    pub root: PathBuf,
    /// Registries allowed over plain HTTP besides loopback ones.
    pub insecure_registries: Vec<String>,
    /// Layers downloaded at once per pull (dockerd's `max-concurrent-downloads`).
    pub max_concurrent_downloads: usize,
    /// Layers uploaded at once per push.
    pub max_concurrent_uploads: usize,
    /// How containers get their root filesystem: `overlayfs`, `copy`, or `None` to pick overlayfs
    /// when a probe mount works here and the copy otherwise.
    pub storage_driver: Option<String>,
}

/// A resolved image: its ID, how it is stored, and every name it has.
#[derive(Debug, Clone)]
pub struct Image {
    pub id: Digest,
    pub record: ImageRecord,
    pub names: Vec<String>,
}

impl Image {
    /// Names that are tags (`repo:tag`), as docker shows them.
    pub fn repo_tags(&self) -> Vec<String> {
        self.names
            .iter()
            .filter(|n| !n.contains('@'))
            .filter_map(|n| n.parse::<Reference>().ok())
            .map(|r| r.familiar())
            .collect()
    }

    /// Names that are repository digests (`repo@sha256:...`).
    pub fn repo_digests(&self) -> Vec<String> {
        self.names
            .iter()
            .filter(|n| n.contains('@'))
            .filter_map(|n| n.parse::<Reference>().ok())
            .map(|r| r.familiar())
            .collect()
    }
}

pub struct ImageService {
    pub(crate) cfg: Config,
    pub(crate) store: Store,
    pub(crate) meta: MetaStore,
    pub(crate) snaps: Snapshotter,
    pub(crate) client: Client,
    pub(crate) events: Arc<Events>,
    /// One download of a blob at a time (two pulls sharing a layer wait for each other).
    blob_locks: Mutex<HashMap<Digest, Arc<tokio::sync::Mutex<()>>>>,
    /// Serializes removals and garbage collection against each other.
    pub(crate) gc_lock: tokio::sync::Mutex<()>,
    pub(crate) unpack_opts: Options,
    /// Root filesystems as overlay mounts (else as copies).
    overlay: bool,
    /// Which containers use an image (set by the container service).
    users: std::sync::RwLock<Option<ImageUsers>>,
}

/// For an image ID (`sha256:...`): the containers made from it, `(id, running)`.
pub type ImageUsers = Arc<dyn Fn(&str) -> Vec<(String, bool)> + Send + Sync>;

/// How many times its compressed size a layer may expand to (real layers stay far below: text and
/// binaries compress 3-10x).
pub const EXPANSION: u64 = 1000;
/// The smallest uncompressed limit, whatever the compressed size.
pub const MIN_LIMIT: u64 = 1 << 30;

/// Whether `s` can only be an image ID (or a prefix of one).
fn looks_like_id(s: &str) -> bool {
    let hex = s.strip_prefix("sha256:").unwrap_or(s);
    s.starts_with("sha256:") || (hex.len() >= 12 && hex.chars().all(|c| c.is_ascii_hexdigit()))
}

/// The key a reference is stored under.
pub fn name_key(r: &Reference) -> String {
    match r.digest() {
        Some(d) => format!("{}@{d}", r.repository()),
        None => format!("{}:{}", r.repository(), r.tag().unwrap_or("latest")),
    }
}

impl ImageService {
    pub fn open(cfg: Config, events: Arc<Events>) -> Result<ImageService, Error> {
        std::fs::create_dir_all(&cfg.root)
            .map_err(|e| Error::Internal(format!("create {}: {e}", cfg.root.display())))?;
        let store = Store::open(&cfg.root.join("content")).map_err(internal)?;
        let meta = MetaStore::open(&cfg.root.join("meta.db")).map_err(internal)?;
        let snaps = Snapshotter::open(&cfg.root.join("snapshots")).map_err(internal)?;
        // Nothing is unpacking or writing yet: what an interrupted unpack or one-shot write left
        // goes (interrupted downloads stay, to be resumed).
        snaps.clean_tmp();
        store.clean_stale_ingests();
        let client = Client::new(cfg.insecure_registries.clone()).map_err(internal)?;
        let overlay = match cfg.storage_driver.as_deref() {
            None | Some("") => snaps.overlay_works(),
            Some("overlayfs") | Some("overlay") | Some("overlay2") => true,
            Some("copy") | Some("vfs") => false,
            Some(other) => {
                return Err(Error::Invalid(format!(
                    "unknown storage driver {other:?}: berth has overlayfs and copy"
                )))
            }
        };
        let unpack_opts = Options {
            // dockerd creates the device nodes a layer has (the device cgroup guards their use).
            allow_devices: nix::unistd::geteuid().is_root(),
            preserve_owner: nix::unistd::geteuid().is_root(),
            ..Options::default()
        };
        Ok(ImageService {
            cfg,
            store,
            meta,
            snaps,
            client,
            events,
            blob_locks: Mutex::new(HashMap::new()),
            gc_lock: tokio::sync::Mutex::new(()),
            users: std::sync::RwLock::new(None),
            unpack_opts,
            overlay,
        })
    }

    /// The storage driver in use (`overlayfs` or `copy`).
    pub fn storage_driver(&self) -> &'static str {
        if self.overlay {
            "overlayfs"
        } else {
            "copy"
        }
    }

    /// A container's root filesystem on image `img`, as a mount for its OCI spec: overlayfs with a
    /// writable upper layer, or a private copy where overlayfs cannot be used.
    pub fn prepare_rootfs(&self, key: &str, img: &Image) -> Result<berth_image::snapshot::Mount, Error> {
        if self.overlay {
            return self.snaps.prepare(key, &self.chain_ids(img)?).map_err(internal);
        }
        let m = self.manifest(img)?;
        let mut layers = Vec::new();
        for l in &m.layers {
            let c = manifest::layer_compression(&l.media_type).map_err(internal)?;
            let f = self.store.open_blob(&l.digest).map_err(internal)?;
            layers.push((std::io::BufReader::with_capacity(1 << 20, f), c));
        }
        self.snaps
            .prepare_copy(key, layers, &self.unpack_opts)
            .map_err(internal)
    }

    /// Tells the image service which containers use an image: such an image is not deleted.
    pub fn set_users(&self, f: ImageUsers) {
        *self.users.write().expect("users lock") = Some(f);
    }

    pub(crate) fn users(&self, id: &Digest) -> Vec<(String, bool)> {
        match &*self.users.read().expect("users lock") {
            Some(f) => f(&id.to_string()),
            None => Vec::new(),
        }
    }

    pub fn root(&self) -> &Path {
        &self.cfg.root
    }

    pub fn registry(&self) -> &Client {
        &self.client
    }

    /// Unpack options for a layer whose compressed size is `compressed`: the uncompressed stream may
    /// grow to [`EXPANSION`] times that (at least [`MIN_LIMIT`]), which stops a decompression bomb
    /// long before it fills the disk.
    pub(crate) fn opts_for(&self, compressed: u64) -> Options {
        let mut o = self.unpack_opts.clone();
        o.max_bytes = compressed
            .saturating_mul(EXPANSION)
            .max(MIN_LIMIT)
            .min(o.max_bytes);
        o
    }

    pub(crate) fn blob_lock(&self, d: &Digest) -> Arc<tokio::sync::Mutex<()>> {
        let mut m = self.blob_locks.lock().unwrap_or_else(|p| p.into_inner());
        m.retain(|_, v| Arc::strong_count(v) > 1);
        m.entry(d.clone()).or_default().clone()
    }

    /// Every image: (id, record, names), named ones and dangling ones.
    pub fn all(&self) -> Result<Vec<Image>, Error> {
        let mut by_id: HashMap<Digest, Image> = HashMap::new();
        for (name, rec) in self.meta.list().map_err(internal)? {
            by_id
                .entry(rec.config.clone())
                .or_insert_with(|| Image {
                    id: rec.config.clone(),
                    record: rec.clone(),
                    names: Vec::new(),
                })
                .names
                .push(name);
        }
        for rec in self.meta.dangling().map_err(internal)? {
            by_id.entry(rec.config.clone()).or_insert_with(|| Image {
                id: rec.config.clone(),
                record: rec.clone(),
                names: Vec::new(),
            });
        }
        let mut v: Vec<Image> = by_id.into_values().collect();
        v.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(v)
    }

    /// Finds an image as dockerd does: a name (normalized), an ID (`sha256:...`), or a unique prefix of
    /// an ID.
    pub fn resolve(&self, input: &str) -> Result<Image, Error> {
        let parsed = input.parse::<Reference>().ok();
        // dockerd names a missing reference in its normalized familiar form (`nope:latest`).
        let shown = match &parsed {
            Some(r) if !looks_like_id(input) => r.familiar(),
            _ => input.to_string(),
        };
        let not_found = || Error::NotFound(format!("No such image: {shown}"));
        if let Some(r) = &parsed {
            if let Some(rec) = self.meta.get(&name_key(r)).map_err(internal)? {
                return self.image_of(rec);
            }
        }
        let hex = input.strip_prefix("sha256:").unwrap_or(input);
        if hex.is_empty()
            || hex.len() > 64
            || !hex
                .chars()
                .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase())
        {
            return Err(not_found());
        }
        let matches: Vec<Image> = self
            .all()?
            .into_iter()
            .filter(|i| i.id.hex().starts_with(hex))
            .collect();
        match matches.len() {
            0 => Err(not_found()),
            1 => Ok(matches.into_iter().next().expect("one")),
            _ => Err(Error::Invalid(format!(
                "multiple IDs found with provided prefix: {input}"
            ))),
        }
    }

    fn image_of(&self, rec: ImageRecord) -> Result<Image, Error> {
        let names = self
            .meta
            .list()
            .map_err(internal)?
            .into_iter()
            .filter(|(_, r)| r.config == rec.config)
            .map(|(n, _)| n)
            .collect();
        Ok(Image {
            id: rec.config.clone(),
            record: rec,
            names,
        })
    }

    /// The image's config, parsed, and as raw JSON (for the fields berth does not model).
    pub fn config(&self, img: &Image) -> Result<(ImageConfig, serde_json::Value), Error> {
        let data = self.store.read(&img.id).map_err(internal)?;
        let raw: serde_json::Value = serde_json::from_slice(&data).map_err(internal)?;
        let cfg: ImageConfig = serde_json::from_slice(&data).map_err(internal)?;
        Ok((cfg, raw))
    }

    /// The platform manifest of an image.
    pub fn manifest(&self, img: &Image) -> Result<Manifest, Error> {
        let data = self.store.read(&img.record.manifest).map_err(internal)?;
        match manifest::parse(&img.record.media_type, &data).map_err(internal)? {
            Parsed::Manifest(m) => Ok(*m),
            Parsed::Index(_) => match manifest::parse("", &data).map_err(internal)? {
                Parsed::Manifest(m) => Ok(*m),
                Parsed::Index(_) => Err(Error::Internal(format!(
                    "image {} points at an index, not a manifest",
                    img.id
                ))),
            },
        }
    }

    /// The chain IDs of an image's layers, bottom first.
    pub fn chain_ids(&self, img: &Image) -> Result<Vec<Digest>, Error> {
        let (cfg, _) = self.config(img)?;
        Ok(manifest::chain_ids(&cfg.rootfs.diff_ids))
    }

    /// The unpacked size of an image (the sum of its layers').
    pub fn size(&self, img: &Image) -> Result<u64, Error> {
        let mut total = 0;
        for c in self.chain_ids(img)? {
            total += self.meta.layer_size(&c).map_err(internal)?.unwrap_or(0);
        }
        Ok(total)
    }

    /// The snapshotter (the container service prepares root filesystems with it).
    pub fn snapshotter(&self) -> &Snapshotter {
        &self.snaps
    }

    /// Sets (or moves) `name` to the image of `rec`.
    pub(crate) fn set_name(&self, name: &str, rec: &ImageRecord) -> Result<(), Error> {
        self.meta.put(name, rec).map_err(internal)
    }
}

#[cfg(test)]
mod tests;
