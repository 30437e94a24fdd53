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
        tx.commit().map_err(dberr)?;
        Ok(MetaStore { db: database })
    }

    /// Sets (or moves) `name`.
    pub fn put(&self, name: &str, rec: &ImageRecord) -> Result<(), MetaError> {
        let bytes = serde_json::to_vec(rec).map_err(|source| MetaError::Record {
            name: name.into(),
            source,
        })?;
        let tx = self.db.begin_write().map_err(dberr)?;
        {
            let mut t = tx.open_table(IMAGES).map_err(dberr)?;
            t.insert(name, bytes.as_slice()).map_err(dberr)?;
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

    /// Deletes every blob no name reaches; returns what was removed. Blobs of a pull that has not set
    /// its name yet are not protected (leases are not implemented yet): the caller must not run this
    /// while a pull is in progress.
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
}
