//! Pull: resolve the manifest (an index is narrowed to the platform), fetch the config, then every
//! missing layer in parallel. A layer is unpacked *while* it downloads (the bytes go to the blob
//! store's ingest and through the decompressor into the snapshotter at once); the layer is published
//! only when both the compressed digest and the diff ID check out. A download that breaks resumes with
//! `Range` from what the ingest holds, and that layer is then unpacked from the stored blob.

use std::io::{self, Read, Write};
use std::sync::Arc;
use std::time::{Duration, Instant};

use berth_image::manifest::{self, Parsed};
use berth_image::meta::ImageRecord;
use berth_image::{Descriptor, Digest, ImageConfig, Platform, Reference, Writer};
use berth_registry::{Credentials, RegistryError, Repo};
use bytes::Bytes;
use futures_util::StreamExt;
use tokio::sync::{mpsc, Semaphore};

use super::{internal, name_key, Error, ImageService};
use crate::progress::{Message, Progress};

/// Attempts per layer download (the first and the resumptions).
const ATTEMPTS: u32 = 5;

/// How a pull ended.
#[derive(Debug, Clone)]
pub struct Pulled {
    pub record: ImageRecord,
    /// Whether anything new was stored (a layer, the config, or the name moved).
    pub changed: bool,
}

fn registry_error(e: RegistryError) -> Error {
    match e {
        RegistryError::ManifestNotFound { .. } => Error::NotFound(e.to_string()),
        RegistryError::Auth(_) => Error::Internal(e.to_string()),
        other => Error::Internal(other.to_string()),
    }
}

impl ImageService {
    /// Pulls `reference` (every tag of the repository when `all_tags`).
    pub async fn pull(
        self: &Arc<Self>,
        reference: &Reference,
        all_tags: bool,
        platform: Option<Platform>,
        creds: Option<Credentials>,
        progress: Progress,
    ) -> Result<(), Error> {
        if !all_tags {
            let pulled = self.pull_one(reference, platform, creds, &progress).await?;
            let shown = reference.familiar();
            progress.send(Message::status(
                "",
                if pulled.changed {
                    format!("Status: Downloaded newer image for {shown}")
                } else {
                    format!("Status: Image is up to date for {shown}")
                },
            ));
            return Ok(());
        }
        let repo = self.client.repo(reference, creds.clone(), false);
        let tags = repo.tags().await.map_err(registry_error)?;
        let mut changed = false;
        for t in tags {
            let r = reference.with_tag(&t)?;
            changed |= self
                .pull_one(&r, platform.clone(), creds.clone(), &progress)
                .await?
                .changed;
        }
        let shown = reference.familiar_name();
        progress.send(Message::status(
            "",
            if changed {
                format!("Status: Downloaded newer image for {shown}")
            } else {
                format!("Status: Image is up to date for {shown}")
            },
        ));
        Ok(())
    }

    /// Pulls one reference; sends the per-layer lines and `Digest:`, not the final `Status:`.
    pub async fn pull_one(
        self: &Arc<Self>,
        reference: &Reference,
        platform: Option<Platform>,
        creds: Option<Credentials>,
        progress: &Progress,
    ) -> Result<Pulled, Error> {
        let platform = platform.unwrap_or_else(Platform::host);
        let repo = self.client.repo(reference, creds, false);
        let object = reference.object();
        let top = repo
            .manifest(&object, &reference.familiar())
            .await
            .map_err(registry_error)?;
        let target = top.digest.clone();
        let lease = format!("pull-{}-{}", target.hex(), std::process::id());
        self.meta
            .lease(&lease, std::slice::from_ref(&target))
            .map_err(internal)?;
        let result = self
            .pull_manifest(reference, &repo, top, &platform, progress, &lease)
            .await;
        let _ = self.meta.release(&lease);
        let pulled = result?;
        progress.send(Message::status("", format!("Digest: {}", pulled.record.target)));
        self.events
            .image("pull", &reference.familiar(), Some(&reference.familiar_name()));
        Ok(pulled)
    }

    async fn pull_manifest(
        self: &Arc<Self>,
        reference: &Reference,
        repo: &Repo,
        top: berth_registry::Fetched,
        platform: &Platform,
        progress: &Progress,
        lease: &str,
    ) -> Result<Pulled, Error> {
        let id_line = match reference.digest() {
            Some(d) => d.to_string(),
            None => reference.tag().unwrap_or("latest").to_string(),
        };
        let parsed = manifest::parse(&top.media_type, &top.data).map_err(|e| match e {
            manifest::ManifestError::Schema1 => Error::Invalid(format!(
                "{}: image manifest schema 1 is not supported: the image must be pushed again with a current client (Docker v2 schema 2 or OCI)",
                reference.familiar()
            )),
            other => Error::Internal(format!("{}: {other}", reference.familiar())),
        })?;
        let mut changed = false;
        let (manifest_digest, manifest_data, media_type, m) = match parsed {
            Parsed::Manifest(m) => (top.digest.clone(), top.data.clone(), top.media_type.clone(), *m),
            Parsed::Index(index) => {
                let desc = index.select(platform).map_err(|_| {
                    Error::NotFound(format!(
                        "no matching manifest for {platform} in the manifest list entries"
                    ))
                })?;
                let f = repo
                    .manifest(&desc.digest.to_string(), &reference.familiar())
                    .await
                    .map_err(registry_error)?;
                let parsed = manifest::parse(&f.media_type, &f.data)
                    .map_err(|e| Error::Internal(format!("{}: {e}", reference.familiar())))?;
                let Parsed::Manifest(m) = parsed else {
                    return Err(Error::Internal(format!(
                        "{}: the index entry for {platform} is itself an index",
                        reference.familiar()
                    )));
                };
                (f.digest, f.data, f.media_type, *m)
            }
        };
        let mut keep = vec![
            top.digest.clone(),
            manifest_digest.clone(),
            m.config.digest.clone(),
        ];
        keep.extend(m.layers.iter().map(|l| l.digest.clone()));
        self.meta.lease(lease, &keep).map_err(internal)?;
        progress.send(Message::status(
            &id_line,
            format!("Pulling from {}", reference.path()),
        ));

        // The config: small, fetched whole and verified.
        let config_data = self.fetch_small(repo, &m.config).await?;
        let config: ImageConfig = serde_json::from_slice(&config_data)
            .map_err(|e| Error::Internal(format!("image config {}: {e}", m.config.digest)))?;
        if config.rootfs.diff_ids.len() != m.layers.len() {
            return Err(Error::Internal(format!(
                "image config {} lists {} layers but the manifest has {}",
                m.config.digest,
                config.rootfs.diff_ids.len(),
                m.layers.len()
            )));
        }
        for l in &m.layers {
            manifest::layer_compression(&l.media_type).map_err(|e| Error::Internal(e.to_string()))?;
        }
        let chains = manifest::chain_ids(&config.rootfs.diff_ids);
        // The layers this pull may unpack or reuse stay while it runs.
        keep.extend(chains.iter().cloned());
        self.meta.lease(lease, &keep).map_err(internal)?;

        // Layers: what is there already, then the rest in parallel. An image that is complete
        // already gets no layer lines (as dockerd shows an up-to-date image).
        let have = |i: usize| self.snaps.has_layer(&chains[i]) && self.store.exists(&m.layers[i].digest);
        let complete = (0..m.layers.len()).all(have);
        let mut todo = Vec::new();
        for (i, l) in m.layers.iter().enumerate() {
            let id = l.digest.short().to_string();
            if have(i) {
                if !complete {
                    progress.send(Message::layer(&id, "Already exists"));
                }
            } else {
                progress.send(Message::layer(&id, "Pulling fs layer"));
                todo.push(i);
            }
        }
        let limit = self.cfg.max_concurrent_downloads.max(1);
        for &i in todo.iter().skip(limit) {
            progress.send(Message::layer(m.layers[i].digest.short(), "Waiting"));
        }
        changed |= !todo.is_empty();
        let sem = Arc::new(Semaphore::new(limit));
        let mut tasks = Vec::new();
        for i in todo {
            let this = self.clone();
            let desc = m.layers[i].clone();
            let chain = chains[i].clone();
            let diff_id = config.rootfs.diff_ids[i].clone();
            let sem = sem.clone();
            let progress = progress.clone();
            let repo = repo.clone();
            tasks.push(tokio::spawn(async move {
                let _permit = sem.acquire_owned().await.map_err(internal)?;
                this.fetch_layer(&repo, &desc, &chain, &diff_id, &progress).await
            }));
        }
        let mut first_err = None;
        for t in tasks {
            let r = match t.await {
                Ok(r) => r,
                Err(e) => Err(Error::Internal(format!("layer task: {e}"))),
            };
            if let Err(e) = r {
                first_err.get_or_insert(e);
            }
        }
        if let Some(e) = first_err {
            return Err(e);
        }

        // Everything is in: store the manifests and set the names.
        if !self.store.exists(&manifest_digest) {
            self.store
                .write_all(&manifest_data, Some(&manifest_digest))
                .map_err(internal)?;
        }
        if !self.store.exists(&top.digest) {
            self.store
                .write_all(&top.data, Some(&top.digest))
                .map_err(internal)?;
        }
        let media_type = if media_type.is_empty() {
            m.media_type.clone()
        } else {
            media_type
        };
        let record = ImageRecord {
            target: top.digest.clone(),
            media_type: if top.digest == manifest_digest {
                media_type
            } else {
                top.media_type.clone()
            },
            manifest: manifest_digest,
            config: m.config.digest.clone(),
            created: crate::time::now_rfc3339(),
        };
        let mut names = vec![format!("{}@{}", reference.repository(), top.digest)];
        if reference.digest().is_none() {
            names.push(name_key(reference));
        }
        for n in names {
            let before = self.meta.get(&n).map_err(internal)?;
            if before.as_ref().map(|b| &b.config) != Some(&record.config) {
                changed = true;
                self.set_name(&n, &record)?;
            }
        }
        Ok(Pulled { record, changed })
    }

    /// Fetches a small blob (a config) whole, verifies and stores it.
    async fn fetch_small(&self, repo: &Repo, desc: &Descriptor) -> Result<Vec<u8>, Error> {
        if self.store.exists(&desc.digest) {
            return self.store.read(&desc.digest).map_err(internal);
        }
        if desc.size > berth_registry::client::MAX_MANIFEST as u64 {
            return Err(Error::Internal(format!(
                "image config {} is {} bytes, more than berth accepts",
                desc.digest, desc.size
            )));
        }
        let resp = repo.blob(&desc.digest, 0).await.map_err(registry_error)?;
        let mut data = Vec::with_capacity(desc.size as usize);
        let mut s = resp.bytes_stream();
        while let Some(c) = s.next().await {
            let c = c.map_err(|e| Error::Internal(format!("fetch {}: {e}", desc.digest)))?;
            if data.len() + c.len() > desc.size as usize {
                return Err(Error::Internal(format!(
                    "the registry sent more than the {} bytes of {}",
                    desc.size, desc.digest
                )));
            }
            data.extend_from_slice(&c);
        }
        self.store
            .write_all(&data, Some(&desc.digest))
            .map_err(internal)?;
        Ok(data)
    }

    /// Downloads and unpacks one layer (see the module's doc).
    async fn fetch_layer(
        self: &Arc<Self>,
        repo: &Repo,
        desc: &Descriptor,
        chain: &Digest,
        diff_id: &Digest,
        progress: &Progress,
    ) -> Result<(), Error> {
        let id = desc.digest.short().to_string();
        let lock = self.blob_lock(&desc.digest);
        let _held = lock.lock().await;
        let compression =
            manifest::layer_compression(&desc.media_type).map_err(|e| Error::Internal(e.to_string()))?;
        let mut attempt = 0;
        let mut unpacked = false;
        while !self.store.exists(&desc.digest) {
            attempt += 1;
            let writer = {
                let store = self.store.clone();
                let key = desc.digest.hex().to_string();
                let (d, s) = (desc.digest.clone(), desc.size);
                tokio::task::spawn_blocking(move || store.writer(&key, Some(d), Some(s)))
                    .await
                    .map_err(internal)?
                    .map_err(internal)?
            };
            let offset = writer.offset();
            let resp = match repo.blob(&desc.digest, offset).await {
                Ok(r) => r,
                Err(RegistryError::BadRange { .. }) => {
                    // The registry cannot resume: start this blob over.
                    drop(writer);
                    self.store.abort(desc.digest.hex());
                    if attempt >= ATTEMPTS {
                        return Err(Error::Internal(format!(
                            "download {}: the registry does not resume",
                            desc.digest
                        )));
                    }
                    continue;
                }
                Err(e) if e.transient() && attempt < ATTEMPTS => {
                    tokio::time::sleep(backoff(attempt)).await;
                    continue;
                }
                Err(e) => return Err(registry_error(e)),
            };
            // Unpack while downloading only on a clean first pass.
            let stream_unpack = offset == 0 && !self.snaps.has_layer(chain);
            let (tx, rx) = mpsc::channel::<Result<Bytes, String>>(64);
            let consumer = {
                let this = self.clone();
                let (chain, diff_id, desc_size) = (chain.clone(), diff_id.clone(), desc.size);
                tokio::task::spawn_blocking(move || {
                    let mut feed = Feed::new(rx, writer);
                    if stream_unpack {
                        let r = this.snaps.unpack_checked(
                            &chain,
                            &mut feed,
                            compression,
                            &this.opts_for(desc_size),
                            |applied, feed| {
                                feed.drain().map_err(|e| e.to_string())?;
                                if applied.diff_id != diff_id {
                                    return Err(format!(
                                    "the layer's content has diff ID {} but the image config says {diff_id}",
                                    applied.diff_id
                                ));
                                }
                                feed.commit()
                            },
                        );
                        match r {
                            Ok(applied) => {
                                if let Some(a) = applied {
                                    let _ = this.meta.set_layer_size(&chain, a.size);
                                }
                                Ok(true)
                            }
                            Err(e) => match feed.transport_error.take() {
                                Some(t) => Err(Outcome::Retry(t)),
                                None => {
                                    feed.discard(&this.store);
                                    Err(Outcome::Fatal(e.to_string()))
                                }
                            },
                        }
                    } else {
                        match feed.drain() {
                            Ok(()) => feed.commit().map(|_| false).map_err(Outcome::Fatal),
                            Err(e) => match feed.transport_error.take() {
                                Some(t) => Err(Outcome::Retry(t)),
                                None => Err(Outcome::Fatal(e.to_string())),
                            },
                        }
                    }
                })
            };
            // Feed the consumer from the network, reporting progress now and then.
            let total = desc.size;
            let mut current = offset;
            let mut last = Instant::now() - Duration::from_secs(1);
            let mut stream = resp.bytes_stream();
            while let Some(chunk) = stream.next().await {
                match chunk {
                    Ok(b) => {
                        current += b.len() as u64;
                        if last.elapsed() >= Duration::from_millis(100) || current == total {
                            last = Instant::now();
                            progress.send(Message::progress(&id, "Downloading", current, total));
                        }
                        if tx.send(Ok(b)).await.is_err() {
                            break; // the consumer stopped (a bad layer): its error says why
                        }
                    }
                    Err(e) => {
                        let _ = tx.send(Err(format!("download {}: {e}", desc.digest))).await;
                        break;
                    }
                }
            }
            drop(tx);
            match consumer.await.map_err(internal)? {
                Ok(did_unpack) => {
                    unpacked = did_unpack;
                    progress.send(Message::layer(&id, "Verifying Checksum"));
                    progress.send(Message::layer(&id, "Download complete"));
                }
                Err(Outcome::Retry(_)) if attempt < ATTEMPTS => {
                    progress.send(Message::status(
                        &id,
                        match backoff(attempt).as_secs() {
                            1 => "Retrying in 1 second".to_string(),
                            n => format!("Retrying in {n} seconds"),
                        },
                    ));
                    tokio::time::sleep(backoff(attempt)).await;
                }
                Err(Outcome::Retry(m)) | Err(Outcome::Fatal(m)) => {
                    return Err(Error::Internal(format!("layer {}: {m}", desc.digest)));
                }
            }
        }
        if !unpacked && !self.snaps.has_layer(chain) {
            self.unpack_stored(desc, chain, diff_id, &id, progress).await?;
        }
        progress.send(Message::layer(&id, "Pull complete"));
        Ok(())
    }

    /// Unpacks a layer from the stored blob (after a resumed download, or a blob that was there).
    async fn unpack_stored(
        self: &Arc<Self>,
        desc: &Descriptor,
        chain: &Digest,
        diff_id: &Digest,
        id: &str,
        progress: &Progress,
    ) -> Result<(), Error> {
        let this = self.clone();
        let (desc, chain, diff_id) = (desc.clone(), chain.clone(), diff_id.clone());
        let (id, progress) = (id.to_string(), progress.clone());
        tokio::task::spawn_blocking(move || {
            let compression =
                manifest::layer_compression(&desc.media_type).map_err(|e| Error::Internal(e.to_string()))?;
            let file = this.store.open_blob(&desc.digest).map_err(internal)?;
            let reader = Counting {
                inner: io::BufReader::with_capacity(1 << 20, file),
                done: 0,
                total: desc.size,
                id: id.clone(),
                progress: progress.clone(),
                last: Instant::now() - Duration::from_secs(1),
            };
            let applied = this
                .snaps
                .unpack_checked(
                    &chain,
                    reader,
                    compression,
                    &this.opts_for(desc.size),
                    |applied, _| {
                        if applied.diff_id != diff_id {
                            Err(format!(
                                "the layer's content has diff ID {} but the image config says {diff_id}",
                                applied.diff_id
                            ))
                        } else {
                            Ok(())
                        }
                    },
                )
                .map_err(|e| Error::Internal(format!("{e}: {}", error_chain(&e))))?;
            if let Some(a) = applied {
                this.meta.set_layer_size(&chain, a.size).map_err(internal)?;
            }
            Ok(())
        })
        .await
        .map_err(internal)?
    }
}

/// A source error's causes, for messages.
pub(crate) fn error_chain(e: &dyn std::error::Error) -> String {
    let mut parts = Vec::new();
    let mut cur = e.source();
    while let Some(c) = cur {
        parts.push(c.to_string());
        cur = c.source();
    }
    parts.join(": ")
}

fn backoff(attempt: u32) -> Duration {
    Duration::from_secs(u64::from(attempt.min(5)))
}

enum Outcome {
    /// The network failed: the ingest keeps what arrived; try again from there.
    Retry(String),
    /// The content is bad (digest, size, a hostile layer): nothing is kept.
    Fatal(String),
}

/// The bytes of one download as a `Read`, written to the blob ingest as they are read.
struct Feed {
    rx: mpsc::Receiver<Result<Bytes, String>>,
    cur: Bytes,
    writer: Option<Writer>,
    transport_error: Option<String>,
}

impl Feed {
    fn new(rx: mpsc::Receiver<Result<Bytes, String>>, writer: Writer) -> Feed {
        Feed {
            rx,
            cur: Bytes::new(),
            writer: Some(writer),
            transport_error: None,
        }
    }

    /// Reads (and so ingests) everything that is left.
    fn drain(&mut self) -> io::Result<()> {
        let mut sink = [0u8; 1 << 16];
        while self.read(&mut sink)? > 0 {}
        Ok(())
    }

    /// Verifies and publishes the blob.
    fn commit(&mut self) -> Result<(), String> {
        match self.writer.take() {
            Some(w) => w.commit().map(|_| ()).map_err(|e| e.to_string()),
            None => Err("the blob was already committed".into()),
        }
    }

    /// Drops the ingest (the content was bad).
    fn discard(&mut self, store: &berth_image::Store) {
        if let Some(w) = self.writer.take() {
            let key = w.key().to_string();
            drop(w);
            store.abort(&key);
        }
    }
}

impl Read for Feed {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.cur.is_empty() {
            match self.rx.blocking_recv() {
                None => return Ok(0),
                Some(Ok(b)) => {
                    if let Some(w) = self.writer.as_mut() {
                        w.write_all(&b)?;
                    }
                    self.cur = b;
                }
                Some(Err(m)) => {
                    self.transport_error = Some(m.clone());
                    return Err(io::Error::new(io::ErrorKind::ConnectionAborted, m));
                }
            }
        }
        let n = buf.len().min(self.cur.len());
        buf[..n].copy_from_slice(&self.cur[..n]);
        let _ = self.cur.split_to(n);
        Ok(n)
    }
}

/// Reports "Extracting" progress as a stored blob is read.
struct Counting<R> {
    inner: R,
    done: u64,
    total: u64,
    id: String,
    progress: Progress,
    last: Instant,
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.done += n as u64;
        if self.last.elapsed() >= Duration::from_millis(100) || (n == 0 && self.done == self.total) {
            self.last = Instant::now();
            self.progress
                .send(Message::progress(&self.id, "Extracting", self.done, self.total));
        }
        Ok(n)
    }
}
