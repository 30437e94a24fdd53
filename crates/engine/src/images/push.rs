//! Push: every layer the registry lacks is mounted from another repository of the same registry
//! when one of the image's names is there, else uploaded; then the config and the manifest (the
//! platform manifest berth holds, as dockerd pushes it). docker's lines: "The push refers to
//! repository [...]", per layer "Preparing", "Pushing", "Pushed" / "Layer already exists" /
//! "Mounted from ...", and "TAG: digest: sha256:... size: N".

use std::sync::Arc;
use std::time::{Duration, Instant};

use berth_image::{Descriptor, Reference};
use berth_registry::{Credentials, Repo};
use bytes::Bytes;
use futures_util::StreamExt;
use serde_json::json;
use tokio::sync::Semaphore;

use super::{internal, Error, Image, ImageService};
use crate::progress::{Message, Progress};

impl ImageService {
    /// Pushes `reference` (every tag of its repository when `all_tags`).
    pub async fn push(
        self: &Arc<Self>,
        reference: &Reference,
        all_tags: bool,
        creds: Option<Credentials>,
        progress: Progress,
    ) -> Result<(), Error> {
        let mut refs = Vec::new();
        if all_tags {
            let repo = reference.repository();
            for (name, _) in self.meta.list().map_err(internal)? {
                if let Ok(r) = name.parse::<Reference>() {
                    if r.repository() == repo && r.digest().is_none() {
                        refs.push(r);
                    }
                }
            }
            if refs.is_empty() {
                return Err(Error::NotFound(format!(
                    "An image does not exist locally with the tag: {}",
                    reference.familiar_name()
                )));
            }
        } else {
            refs.push(reference.clone());
        }
        // Resolve everything before the stream starts, so a missing tag is a plain error.
        let mut images = Vec::new();
        for r in refs {
            let img = self.resolve(&super::name_key(&r)).map_err(|_| {
                Error::NotFound(format!(
                    "An image does not exist locally with the tag: {}",
                    r.familiar_name()
                ))
            })?;
            images.push((r, img));
        }
        progress.send(Message::status(
            "",
            format!("The push refers to repository [{}]", reference.repository()),
        ));
        let repo = self.client.repo(reference, creds, true);
        for (r, img) in images {
            self.push_one(&repo, &r, &img, &progress).await?;
        }
        Ok(())
    }

    async fn push_one(
        self: &Arc<Self>,
        repo: &Repo,
        reference: &Reference,
        img: &Image,
        progress: &Progress,
    ) -> Result<(), Error> {
        let m = self.manifest(img)?;
        let manifest_data = self.store.read(&img.record.manifest).map_err(internal)?;
        // Where a mount could come from: the image's other repositories on the same registry.
        let sources: Vec<String> = img
            .names
            .iter()
            .filter_map(|n| n.parse::<Reference>().ok())
            .filter(|r| r.domain() == reference.domain() && r.path() != reference.path())
            .map(|r| r.path().to_string())
            .collect();
        for l in m.layers.iter().rev() {
            progress.send(Message::layer(l.digest.short(), "Preparing"));
        }
        let sem = Arc::new(Semaphore::new(self.cfg.max_concurrent_uploads.max(1)));
        let mut tasks = Vec::new();
        for l in m.layers.iter().rev() {
            let this = self.clone();
            let (repo, l, sources, progress, sem) = (
                repo.clone(),
                l.clone(),
                sources.clone(),
                progress.clone(),
                sem.clone(),
            );
            tasks.push(tokio::spawn(async move {
                let _p = sem.acquire_owned().await.map_err(internal)?;
                this.push_blob(&repo, &l, &sources, Some(&progress)).await
            }));
        }
        let mut first_err = None;
        for t in tasks {
            let r = t.await.map_err(internal).and_then(|r| r);
            if let Err(e) = r {
                first_err.get_or_insert(e);
            }
        }
        if let Some(e) = first_err {
            return Err(e);
        }
        self.push_blob(repo, &m.config, &sources, None).await?;
        let tag = reference.tag().unwrap_or("latest").to_string();
        let object = match reference.digest() {
            Some(d) => d.to_string(),
            None => tag.clone(),
        };
        let media_type = if m.media_type.is_empty() {
            img.record.media_type.clone()
        } else {
            m.media_type.clone()
        };
        repo.put_manifest(&object, &media_type, Bytes::from(manifest_data.clone()))
            .await
            .map_err(|e| Error::Internal(e.to_string()))?;
        let size = manifest_data.len();
        progress.send(Message::status(
            "",
            format!("{tag}: digest: {} size: {size}", img.record.manifest),
        ));
        progress.send(Message {
            progress_detail: Some(Default::default()),
            aux: Some(json!({"Tag": tag, "Digest": img.record.manifest.to_string(), "Size": size})),
            ..Default::default()
        });
        self.events
            .image("push", &reference.familiar(), Some(&reference.familiar_name()));
        Ok(())
    }

    /// One blob: there already, mounted, or uploaded (with progress lines for layers).
    async fn push_blob(
        &self,
        repo: &Repo,
        desc: &Descriptor,
        sources: &[String],
        progress: Option<&Progress>,
    ) -> Result<(), Error> {
        let id = desc.digest.short().to_string();
        let say = |m: Message| {
            if let Some(p) = progress {
                p.send(m);
            }
        };
        let reg = |e: berth_registry::RegistryError| Error::Internal(e.to_string());
        if repo.has_blob(&desc.digest).await.map_err(reg)? {
            say(Message::layer(&id, "Layer already exists"));
            return Ok(());
        }
        for from in sources {
            if repo.mount_blob(&desc.digest, from).await.map_err(reg)? {
                say(Message::layer(&id, &format!("Mounted from {from}")));
                return Ok(());
            }
        }
        let path = self.store.blob_path(&desc.digest);
        if !path.exists() {
            return Err(Error::Internal(format!(
                "blob {} is not in the local store (the image was not pulled whole)",
                desc.digest
            )));
        }
        let total = desc.size;
        let progress = progress.cloned();
        let make_body = || {
            let path = path.clone();
            let progress = progress.clone();
            let id = id.clone();
            let stream = futures_util::stream::once(async move { tokio::fs::File::open(path).await })
                .map(move |f| {
                    let progress = progress.clone();
                    let id = id.clone();
                    let mut sent = 0u64;
                    let mut last = Instant::now() - Duration::from_secs(1);
                    match f {
                        Ok(f) => tokio_util::io::ReaderStream::with_capacity(f, 1 << 20)
                            .map(move |c| {
                                if let (Ok(b), Some(p)) = (&c, &progress) {
                                    sent += b.len() as u64;
                                    if last.elapsed() >= Duration::from_millis(100) || sent == total {
                                        last = Instant::now();
                                        p.send(Message::progress(&id, "Pushing", sent, total));
                                    }
                                }
                                c
                            })
                            .boxed(),
                        Err(e) => futures_util::stream::once(async move { Err(e) }).boxed(),
                    }
                })
                .flatten();
            reqwest::Body::wrap_stream(stream)
        };
        repo.upload_blob(&desc.digest, desc.size, make_body)
            .await
            .map_err(reg)?;
        say(Message::layer(&id, "Pushed"));
        Ok(())
    }
}
