//! Image metadata in one embedded transactional store (redb): which names point at which images.
//! A name (`docker.io/library/alpine:latest`) maps to an [`ImageRecord`]; several names may share an
//! image. Garbage collection keeps exactly what some name references.

use std::collections::BTreeSet;
use std::path::Path;

use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};
use serde::{Deserialize, Serialize};

use crate::content::Store;
use crate::digest::Digest;
use crate::manifest::{self, Parsed};

const IMAGES: TableDefinition<&str, &[u8]> = TableDefinition::new("images");
/// Images that lost their last name (a tag moved away): image ID (config hex) -> record.
const DANGLING: TableDefinition<&str, &[u8]> = TableDefinition::new("dangling");
/// Leases: blobs and layers an operation in progress needs kept (lease id -> JSON [`Lease`]).
const LEASES: TableDefinition<&str, &[u8]> = TableDefinition::new("leases");
/// Unpacked layers: chain ID hex -> uncompressed size in bytes.
const LAYERS: TableDefinition<&str, u64> = TableDefinition::new("layers");

/// How long a lease protects its blobs when its holder never removes it (a daemon killed mid-pull).
pub const LEASE_TTL_SECS: u64 = 24 * 3600;

/// What an operation in progress holds.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lease {
    pub digests: Vec<Digest>,
    /// Seconds since the epoch when the lease was taken.
    pub taken: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum MetaError {
    #[error("metadata store: {0}")]
    Db(String),
    #[error("metadata record {name}")]
    Record {
        name: String,
        #[source]
        source: serde_json::Error,
    },
}

fn dberr<E: std::fmt::Display>(e: E) -> MetaError {
    MetaError::Db(e.to_string())
}

/// What a name points at.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageRecord {
    /// The manifest or index the name was pulled or tagged at (its digest is the repo digest).
    pub target: Digest,
    pub media_type: String,
    /// The platform manifest chosen from an index (equal to `target` for a plain manifest).
    pub manifest: Digest,
    /// The image config: its digest is the image ID.
    pub config: Digest,
    /// RFC 3339, when the name was set.
    pub created: String,
}

pub struct MetaStore {
    db: Database,
}

impl MetaStore {
    pub fn open(path: &Path) -> Result<MetaStore, MetaError> {
        let database = Database::create(path).map_err(dberr)?;
        let tx = database.begin_write().map_err(dberr)?;
        tx.open_table(IMAGES).map_err(dberr)?;
        tx.open_table(DANGLING).map_err(dberr)?;
        tx.open_table(LEASES).map_err(dberr)?;
        tx.open_table(LAYERS).map_err(dberr)?;
        tx.commit().map_err(dberr)?;
        Ok(MetaStore { db: database })
    }

    /// Sets (or moves) `name`. An image that loses its last name this way is kept as dangling (as
    /// docker keeps `<none>:<none>` images); an image that gets a name is no longer dangling.
    pub fn put(&self, name: &str, rec: &ImageRecord) -> Result<(), MetaError> {
        let bytes = serde_json::to_vec(rec).map_err(|source| MetaError::Record {
            name: name.into(),
            source,
        })?;
        let tx = self.db.begin_write().map_err(dberr)?;
        {
            let mut t = tx.open_table(IMAGES).map_err(dberr)?;
            let old = t
                .insert(name, bytes.as_slice())
                .map_err(dberr)?
                .map(|v| v.value().to_vec());
            let mut d = tx.open_table(DANGLING).map_err(dberr)?;
            d.remove(rec.config.hex()).map_err(dberr)?;
            if let Some(old) = old {
                let old: ImageRecord = serde_json::from_slice(&old).map_err(|source| MetaError::Record {
                    name: name.into(),
                    source,
                })?;
                if old.config != rec.config {
                    let mut still_named = false;
                    for item in t.iter().map_err(dberr)? {
                        let (_, v) = item.map_err(dberr)?;
                        if let Ok(r) = serde_json::from_slice::<ImageRecord>(v.value()) {
                            if r.config == old.config {
                                still_named = true;
                                break;
                            }
                        }
                    }
                    if !still_named {
                        let ob = serde_json::to_vec(&old).map_err(|source| MetaError::Record {
                            name: name.into(),
                            source,
                        })?;
                        d.insert(old.config.hex(), ob.as_slice()).map_err(dberr)?;
                    }
                }
            }
        }
        tx.commit().map_err(dberr)
    }

    /// Images without a name, by image ID.
    pub fn dangling(&self) -> Result<Vec<ImageRecord>, MetaError> {
        let tx = self.db.begin_read().map_err(dberr)?;
        let t = tx.open_table(DANGLING).map_err(dberr)?;
        let mut out = Vec::new();
        for item in t.iter().map_err(dberr)? {
            let (k, v) = item.map_err(dberr)?;
            out.push(
                serde_json::from_slice(v.value()).map_err(|source| MetaError::Record {
                    name: k.value().to_string(),
                    source,
                })?,
            );
        }
        Ok(out)
    }

    /// Keeps `rec` as a dangling image (its last name was removed but the image must stay).
    pub fn put_dangling(&self, rec: &ImageRecord) -> Result<(), MetaError> {
        let bytes = serde_json::to_vec(rec).map_err(|source| MetaError::Record {
            name: rec.config.to_string(),
            source,
        })?;
        let tx = self.db.begin_write().map_err(dberr)?;
        {
            let mut d = tx.open_table(DANGLING).map_err(dberr)?;
            d.insert(rec.config.hex(), bytes.as_slice()).map_err(dberr)?;
        }
        tx.commit().map_err(dberr)
    }

    /// Forgets a dangling image; whether it was one.
    pub fn remove_dangling(&self, config: &Digest) -> Result<bool, MetaError> {
        let tx = self.db.begin_write().map_err(dberr)?;
        let existed = {
            let mut d = tx.open_table(DANGLING).map_err(dberr)?;
            let r = d.remove(config.hex()).map_err(dberr)?;
            r.is_some()
        };
        tx.commit().map_err(dberr)?;
        Ok(existed)
    }

    /// Takes (or replaces) lease `id` on `digests`.
    pub fn lease(&self, id: &str, digests: &[Digest]) -> Result<(), MetaError> {
        let lease = Lease {
            digests: digests.to_vec(),
            taken: now_secs(),
        };
        let bytes = serde_json::to_vec(&lease).map_err(|source| MetaError::Record {
            name: id.into(),
            source,
        })?;
        let tx = self.db.begin_write().map_err(dberr)?;
        {
            let mut t = tx.open_table(LEASES).map_err(dberr)?;
            t.insert(id, bytes.as_slice()).map_err(dberr)?;
        }
        tx.commit().map_err(dberr)
    }

    pub fn release(&self, id: &str) -> Result<(), MetaError> {
        let tx = self.db.begin_write().map_err(dberr)?;
        {
            let mut t = tx.open_table(LEASES).map_err(dberr)?;
            t.remove(id).map_err(dberr)?;
        }
        tx.commit().map_err(dberr)
    }

    /// The digests of leases younger than [`LEASE_TTL_SECS`]; older ones are dropped.
    pub fn leased(&self) -> Result<BTreeSet<Digest>, MetaError> {
        let now = now_secs();
        let tx = self.db.begin_write().map_err(dberr)?;
        let mut out = BTreeSet::new();
        {
            let mut t = tx.open_table(LEASES).map_err(dberr)?;
            let mut expired = Vec::new();
            for item in t.iter().map_err(dberr)? {
                let (k, v) = item.map_err(dberr)?;
                match serde_json::from_slice::<Lease>(v.value()) {
                    Ok(l) if now.saturating_sub(l.taken) < LEASE_TTL_SECS => out.extend(l.digests),
                    _ => expired.push(k.value().to_string()),
                }
            }
            for k in expired {
                t.remove(k.as_str()).map_err(dberr)?;
            }
        }
        tx.commit().map_err(dberr)?;
        Ok(out)
    }

    /// Records an unpacked layer's uncompressed size.
    pub fn set_layer_size(&self, chain: &Digest, size: u64) -> Result<(), MetaError> {
        let tx = self.db.begin_write().map_err(dberr)?;
        {
            let mut t = tx.open_table(LAYERS).map_err(dberr)?;
            t.insert(chain.hex(), size).map_err(dberr)?;
        }
        tx.commit().map_err(dberr)
    }

    pub fn layer_size(&self, chain: &Digest) -> Result<Option<u64>, MetaError> {
        let tx = self.db.begin_read().map_err(dberr)?;
        let t = tx.open_table(LAYERS).map_err(dberr)?;
        Ok(t.get(chain.hex()).map_err(dberr)?.map(|v| v.value()))
    }

    pub fn forget_layer(&self, chain: &Digest) -> Result<(), MetaError> {
        let tx = self.db.begin_write().map_err(dberr)?;
        {
            let mut t = tx.open_table(LAYERS).map_err(dberr)?;
            t.remove(chain.hex()).map_err(dberr)?;
        }
        tx.commit().map_err(dberr)
    }

    pub fn get(&self, name: &str) -> Result<Option<ImageRecord>, MetaError> {
        let tx = self.db.begin_read().map_err(dberr)?;
        let t = tx.open_table(IMAGES).map_err(dberr)?;
        match t.get(name).map_err(dberr)? {
            Some(v) => serde_json::from_slice(v.value())
                .map(Some)
                .map_err(|source| MetaError::Record {
                    name: name.into(),
                    source,
                }),
            None => Ok(None),
        }
    }

    /// Removes `name`; whether it existed.
    pub fn remove(&self, name: &str) -> Result<bool, MetaError> {
        let tx = self.db.begin_write().map_err(dberr)?;
        let existed = {
            let mut t = tx.open_table(IMAGES).map_err(dberr)?;
            let r = t.remove(name).map_err(dberr)?;
            r.is_some()
        };
        tx.commit().map_err(dberr)?;
        Ok(existed)
    }

    /// Every (name, record), sorted by name.
    pub fn list(&self) -> Result<Vec<(String, ImageRecord)>, MetaError> {
        let tx = self.db.begin_read().map_err(dberr)?;
        let t = tx.open_table(IMAGES).map_err(dberr)?;
        let mut out = Vec::new();
        for item in t.iter().map_err(dberr)? {
            let (k, v) = item.map_err(dberr)?;
            let name = k.value().to_string();
            let rec = serde_json::from_slice(v.value()).map_err(|source| MetaError::Record {
                name: name.clone(),
                source,
            })?;
            out.push((name, rec));
        }
        Ok(out)
    }

    /// The blobs some name reaches: targets, the manifests of indexes, configs and layers. A blob that
    /// cannot be read or parsed keeps only itself.
    pub fn referenced(&self, store: &Store) -> Result<BTreeSet<Digest>, MetaError> {
        let mut keep = BTreeSet::new();
        let mut todo: Vec<Digest> = Vec::new();
        for (_, rec) in self.list()? {
            todo.extend([rec.target, rec.manifest, rec.config]);
        }
        for rec in self.dangling()? {
            todo.extend([rec.target, rec.manifest, rec.config]);
        }
        todo.extend(self.leased()?);
        while let Some(d) = todo.pop() {
            if !keep.insert(d.clone()) {
                continue;
            }
            let Ok(data) = store.read(&d) else { continue };
            match manifest::parse("", &data) {
                Ok(Parsed::Index(i)) => todo.extend(i.manifests.into_iter().map(|m| m.digest)),
                Ok(Parsed::Manifest(m)) => {
                    todo.push(m.config.digest);
                    todo.extend(m.layers.into_iter().map(|l| l.digest));
                }
                Err(_) => {}
            }
        }
        Ok(keep)
    }

    /// Deletes every blob no name, dangling image or live lease reaches; returns what was removed.
    pub fn gc(&self, store: &Store) -> Result<Vec<Digest>, MetaError> {
        let keep = self.referenced(store)?;
        let mut removed = Vec::new();
        for d in store.list().map_err(dberr)? {
            if !keep.contains(&d) {
                store.delete(&d).map_err(dberr)?;
                removed.push(d);
            }
        }
        Ok(removed)
    }
}

fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::media;

    fn manifest_json(config: &Digest, layers: &[&Digest]) -> Vec<u8> {
        let layers: Vec<String> = layers
            .iter()
            .map(|d| {
                format!(
                    r#"{{"mediaType":"{}","digest":"{d}","size":1}}"#,
                    media::OCI_LAYER_GZIP
                )
            })
            .collect();
        format!(
            r#"{{"schemaVersion":2,"mediaType":"{}","config":{{"mediaType":"{}","digest":"{config}","size":1}},"layers":[{}]}}"#,
            media::OCI_MANIFEST,
            media::OCI_CONFIG,
            layers.join(",")
        )
        .into_bytes()
    }

    #[test]
    fn names_persist_and_gc_keeps_what_is_named() {
        let t = tempfile::tempdir().unwrap();
        let store = Store::open(&t.path().join("content")).unwrap();
        let layer = store.write_all(b"layer", None).unwrap();
        let config = store.write_all(b"{}", None).unwrap();
        let manifest = store.write_all(&manifest_json(&config, &[&layer]), None).unwrap();
        let orphan = store.write_all(b"orphan", None).unwrap();
        let rec = ImageRecord {
            target: manifest.clone(),
            media_type: media::OCI_MANIFEST.into(),
            manifest: manifest.clone(),
            config: config.clone(),
            created: "2026-01-01T00:00:00Z".into(),
        };
        {
            let meta = MetaStore::open(&t.path().join("meta.db")).unwrap();
            meta.put("docker.io/library/a:latest", &rec).unwrap();
            meta.put("docker.io/library/a:v1", &rec).unwrap();
        }
        // Reopened: the names are still there.
        let meta = MetaStore::open(&t.path().join("meta.db")).unwrap();
        assert_eq!(meta.get("docker.io/library/a:latest").unwrap(), Some(rec.clone()));
        assert_eq!(meta.list().unwrap().len(), 2);
        let removed = meta.gc(&store).unwrap();
        assert_eq!(removed, vec![orphan.clone()]);
        assert!(store.exists(&layer) && store.exists(&config) && store.exists(&manifest));
        assert!(meta.remove("docker.io/library/a:latest").unwrap());
        assert!(!meta.remove("docker.io/library/a:latest").unwrap());
        assert!(meta.gc(&store).unwrap().is_empty(), "still named by a:v1");
        meta.remove("docker.io/library/a:v1").unwrap();
        let mut gone = meta.gc(&store).unwrap();
        gone.sort();
        let mut want = vec![layer, config, manifest];
        want.sort();
        assert_eq!(gone, want);
        assert!(store.list().unwrap().is_empty());
    }

    #[test]
    fn moved_names_leave_dangling_images_and_leases_protect_blobs() {
        let t = tempfile::tempdir().unwrap();
        let store = Store::open(&t.path().join("content")).unwrap();
        let meta = MetaStore::open(&t.path().join("meta.db")).unwrap();
        let rec = |c: &Digest| ImageRecord {
            target: c.clone(),
            media_type: media::OCI_MANIFEST.into(),
            manifest: c.clone(),
            config: c.clone(),
            created: String::new(),
        };
        let one = store.write_all(b"one", None).unwrap();
        let two = store.write_all(b"two", None).unwrap();
        meta.put("x:latest", &rec(&one)).unwrap();
        meta.put("x:v1", &rec(&one)).unwrap();
        meta.put("x:latest", &rec(&two)).unwrap();
        assert!(meta.dangling().unwrap().is_empty(), "one is still named x:v1");
        meta.put("x:v1", &rec(&two)).unwrap();
        assert_eq!(meta.dangling().unwrap(), vec![rec(&one)]);
        assert!(meta.gc(&store).unwrap().is_empty(), "dangling images are kept");
        meta.put("y:latest", &rec(&one)).unwrap();
        assert!(meta.dangling().unwrap().is_empty(), "named again");
        let leased = store.write_all(b"in flight", None).unwrap();
        meta.lease("pull-1", std::slice::from_ref(&leased)).unwrap();
        assert!(meta.gc(&store).unwrap().is_empty());
        meta.release("pull-1").unwrap();
        assert_eq!(meta.gc(&store).unwrap(), vec![leased]);
        let chain = Digest::of(b"chain");
        meta.set_layer_size(&chain, 42).unwrap();
        assert_eq!(meta.layer_size(&chain).unwrap(), Some(42));
        meta.forget_layer(&chain).unwrap();
        assert_eq!(meta.layer_size(&chain).unwrap(), None);
    }
}
