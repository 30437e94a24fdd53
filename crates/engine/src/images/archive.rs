//! `save`, `load` and `import`.
//!
//! `save` writes what docker 25+ writes: an OCI image layout (`oci-layout`, `index.json`,
//! `blobs/sha256/...`) that is also a docker archive (`manifest.json`, `repositories`). `load` reads
//! both forms, and the older docker archive (`<id>/layer.tar`); every file of the archive goes
//! through the content store, so every blob is verified against the name it claims. `import` makes a
//! one-layer image from a root filesystem tarball.

use std::collections::{BTreeMap, HashMap};
use std::io::{self, Read, Write};
use std::sync::Arc;

use berth_image::manifest::{self, media, Compression, Parsed, RootFs};
use berth_image::meta::ImageRecord;
use berth_image::{Descriptor, Digest, ImageConfig, Manifest, Platform, Reference};
use serde_json::{json, Value};
use sha2::Digest as _;

use super::{internal, name_key, Error, ImageService};
use crate::progress::{Message, Progress};

/// Small files of an archive that are read, not stored (`manifest.json`, `index.json`, ...).
const MAX_INDEX: u64 = 4 << 20;

/// What a load produced.
#[derive(Debug, Clone, Default)]
pub struct LoadResult {
    /// `Loaded image: name:tag` or `Loaded image ID: sha256:...` lines.
    pub lines: Vec<String>,
}

fn sniff(data: &[u8]) -> Compression {
    if data.starts_with(&[0x1f, 0x8b]) {
        Compression::Gzip
    } else if data.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        Compression::Zstd
    } else {
        Compression::None
    }
}

fn layer_media(c: Compression) -> &'static str {
    match c {
        Compression::None => media::OCI_LAYER,
        Compression::Gzip => media::OCI_LAYER_GZIP,
        Compression::Zstd => media::OCI_LAYER_ZSTD,
    }
}

impl ImageService {
    /// `GET /images/get`: writes the archive of `names` to `out`.
    pub fn save(&self, names: &[String], out: &mut dyn Write) -> Result<(), Error> {
        let mut images = Vec::new();
        for n in names {
            let img = self.resolve(n)?;
            // The tag asked for; none when asked by ID or digest (as dockerd: such an archive loads
            // as an untagged image).
            let tags: Vec<String> = match n.parse::<Reference>() {
                Ok(r) if img.names.contains(&name_key(&r)) && r.digest().is_none() => vec![r.familiar()],
                _ => vec![],
            };
            images.push((img, tags));
        }
        let mut tar = tar::Builder::new(out);
        let mut written = std::collections::BTreeSet::new();
        let add = |tar: &mut tar::Builder<&mut dyn Write>,
                   path: &str,
                   data: &mut dyn Read,
                   size: u64|
         -> Result<(), Error> {
            let mut h = tar::Header::new_ustar();
            h.set_size(size);
            h.set_mode(0o444);
            h.set_mtime(0);
            h.set_entry_type(tar::EntryType::Regular);
            tar.append_data(&mut h, path, data)
                .map_err(|e| Error::Internal(format!("write the archive: {e}")))
        };
        let dir = |tar: &mut tar::Builder<&mut dyn Write>, path: &str| -> Result<(), Error> {
            let mut h = tar::Header::new_ustar();
            h.set_size(0);
            h.set_mode(0o755);
            h.set_mtime(0);
            h.set_entry_type(tar::EntryType::Directory);
            tar.append_data(&mut h, path, io::empty())
                .map_err(|e| Error::Internal(format!("write the archive: {e}")))
        };
        dir(&mut tar, "blobs/")?;
        dir(&mut tar, "blobs/sha256/")?;
        let mut index = Vec::new();
        let mut legacy = Vec::new();
        let mut repositories: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
        for (img, tags) in &images {
            let m = self.manifest(img)?;
            let mut blobs = vec![img.record.manifest.clone(), m.config.digest.clone()];
            blobs.extend(m.layers.iter().map(|l| l.digest.clone()));
            for d in blobs {
                if !written.insert(d.clone()) {
                    continue;
                }
                let mut f = self.store.open_blob(&d).map_err(internal)?;
                let size = self.store.size(&d).map_err(internal)?;
                add(&mut tar, &format!("blobs/sha256/{}", d.hex()), &mut f, size)?;
            }
            let msize = self.store.size(&img.record.manifest).map_err(internal)?;
            let media_type = if m.media_type.is_empty() {
                media::OCI_MANIFEST.to_string()
            } else {
                m.media_type.clone()
            };
            if tags.is_empty() {
                index.push(json!({"mediaType": media_type, "digest": img.record.manifest.to_string(), "size": msize}));
            }
            for t in tags {
                let r: Reference = t.parse()?;
                index.push(json!({
                    "mediaType": media_type,
                    "digest": img.record.manifest.to_string(),
                    "size": msize,
                    "annotations": {
                        "io.containerd.image.name": r.to_string(),
                        "org.opencontainers.image.ref.name": r.tag().unwrap_or("latest"),
                    }
                }));
                repositories
                    .entry(r.familiar_name())
                    .or_default()
                    .insert(r.tag().unwrap_or("latest").to_string(), img.id.hex().to_string());
            }
            legacy.push(json!({
                "Config": format!("blobs/sha256/{}", m.config.digest.hex()),
                "RepoTags": tags,
                "Layers": m.layers.iter().map(|l| format!("blobs/sha256/{}", l.digest.hex())).collect::<Vec<_>>(),
            }));
        }
        let files: Vec<(&str, Vec<u8>)> = vec![
            (
                "index.json",
                serde_json::to_vec(
                    &json!({"schemaVersion": 2, "mediaType": media::OCI_INDEX, "manifests": index}),
                )
                .map_err(internal)?,
            ),
            ("manifest.json", serde_json::to_vec(&legacy).map_err(internal)?),
            ("oci-layout", br#"{"imageLayoutVersion":"1.0.0"}"#.to_vec()),
            (
                "repositories",
                serde_json::to_vec(&repositories).map_err(internal)?,
            ),
        ];
        for (name, data) in files {
            add(&mut tar, name, &mut data.as_slice(), data.len() as u64)?;
        }
        tar.finish()
            .map_err(|e| Error::Internal(format!("write the archive: {e}")))?;
        for (img, _) in &images {
            self.events.image("save", &img.id.to_string(), None);
        }
        Ok(())
    }

    /// `POST /images/load`: reads an archive from `input` (blocking).
    pub fn load(self: &Arc<Self>, input: &mut dyn Read, progress: &Progress) -> Result<LoadResult, Error> {
        let bad = |m: String| Error::Invalid(m);
        let lease = format!("load-{}-{}", std::process::id(), crate::time::now_nanos());
        let mut files: HashMap<String, (Digest, u64)> = HashMap::new();
        let mut small: HashMap<String, Vec<u8>> = HashMap::new();
        let mut archive = tar::Archive::new(input);
        let entries = archive
            .entries()
            .map_err(|e| bad(format!("read the archive: {e}")))?;
        let mut seq = 0u64;
        for entry in entries {
            let mut entry = entry.map_err(|e| bad(format!("read the archive: {e}")))?;
            if entry.header().entry_type() != tar::EntryType::Regular {
                continue;
            }
            let path = entry
                .path()
                .map_err(|e| bad(format!("read the archive: {e}")))?
                .to_string_lossy()
                .trim_start_matches("./")
                .to_string();
            if path.split('/').any(|c| c == "..") || path.starts_with('/') {
                return Err(bad(format!("invalid path in the archive: {path:?}")));
            }
            let size = entry
                .header()
                .size()
                .map_err(|e| bad(format!("read the archive: {e}")))?;
            if matches!(
                path.as_str(),
                "manifest.json" | "index.json" | "repositories" | "oci-layout"
            ) {
                if size > MAX_INDEX {
                    return Err(bad(format!("{path} in the archive is too large")));
                }
                let mut v = Vec::new();
                entry
                    .read_to_end(&mut v)
                    .map_err(|e| bad(format!("read {path}: {e}")))?;
                small.insert(path, v);
                continue;
            }
            // Anything else is content: into the store, verified when its name is a digest.
            let claimed = path
                .strip_prefix("blobs/sha256/")
                .and_then(|h| format!("sha256:{h}").parse::<Digest>().ok());
            seq += 1;
            let key = format!("load-{}-{seq}", std::process::id());
            let mut w = self
                .store
                .writer(&key, claimed.clone(), Some(size))
                .map_err(internal)?;
            if w.offset() > 0 {
                self.store.abort(&key);
                w = self
                    .store
                    .writer(&key, claimed.clone(), Some(size))
                    .map_err(internal)?;
            }
            io::copy(&mut entry, &mut w).map_err(|e| bad(format!("read {path}: {e}")))?;
            let d = w.commit().map_err(|e| bad(format!("{path}: {e}")))?;
            let mut held: Vec<Digest> = files.values().map(|(d, _)| d.clone()).collect();
            held.push(d.clone());
            self.meta.lease(&lease, &held).map_err(internal)?;
            files.insert(path, (d, size));
        }
        let result = self.load_indexes(&files, &small, progress);
        let _ = self.meta.release(&lease);
        result
    }

    fn load_indexes(
        self: &Arc<Self>,
        files: &HashMap<String, (Digest, u64)>,
        small: &HashMap<String, Vec<u8>>,
        progress: &Progress,
    ) -> Result<LoadResult, Error> {
        let bad = |m: String| Error::Invalid(m);
        let mut out = LoadResult::default();
        let mut say = |line: String, out: &mut LoadResult| {
            progress.send(Message::stream(format!("{line}\n")));
            out.lines.push(line);
        };
        if let Some(mj) = small.get("manifest.json") {
            #[derive(serde::Deserialize)]
            struct Entry {
                #[serde(rename = "Config")]
                config: String,
                #[serde(rename = "RepoTags", default)]
                repo_tags: Option<Vec<String>>,
                #[serde(rename = "Layers")]
                layers: Vec<String>,
            }
            let entries: Vec<Entry> =
                serde_json::from_slice(mj).map_err(|e| bad(format!("manifest.json: {e}")))?;
            for e in entries {
                let lookup = |p: &str| {
                    files
                        .get(p.trim_start_matches("./"))
                        .cloned()
                        .ok_or_else(|| bad(format!("the archive has no {p} (named in manifest.json)")))
                };
                let (config, config_size) = lookup(&e.config)?;
                let mut layers = Vec::new();
                for l in &e.layers {
                    let (d, size) = lookup(l)?;
                    let mut head = [0u8; 4];
                    let n = self
                        .store
                        .open_blob(&d)
                        .map_err(internal)?
                        .read(&mut head)
                        .unwrap_or(0);
                    layers.push(Descriptor {
                        media_type: layer_media(sniff(&head[..n])).into(),
                        digest: d,
                        size,
                        urls: vec![],
                        annotations: Default::default(),
                        platform: None,
                    });
                }
                let m = Manifest {
                    schema_version: 2,
                    media_type: media::OCI_MANIFEST.into(),
                    config: Descriptor {
                        media_type: media::OCI_CONFIG.into(),
                        digest: config,
                        size: config_size,
                        urls: vec![],
                        annotations: Default::default(),
                        platform: None,
                    },
                    layers,
                    annotations: Default::default(),
                };
                let data = serde_json::to_vec(&m).map_err(internal)?;
                let md = self.store.write_all(&data, None).map_err(internal)?;
                let rec = self.adopt(&md, media::OCI_MANIFEST, &m)?;
                let tags = e.repo_tags.unwrap_or_default();
                self.name_loaded(&rec, &tags, &mut out, &mut say)?;
            }
            return Ok(out);
        }
        let Some(ij) = small.get("index.json") else {
            return Err(bad(
                "the archive has neither manifest.json nor index.json: not an image archive".into(),
            ));
        };
        let index: manifest::Index =
            serde_json::from_slice(ij).map_err(|e| bad(format!("index.json: {e}")))?;
        for desc in &index.manifests {
            let data = self
                .store
                .read(&desc.digest)
                .map_err(|_| bad(format!("the archive lacks blob {}", desc.digest)))?;
            let (md, mt, m) =
                match manifest::parse(&desc.media_type, &data).map_err(|e| bad(e.to_string()))? {
                    Parsed::Manifest(m) => (desc.digest.clone(), desc.media_type.clone(), *m),
                    Parsed::Index(i) => {
                        let d = i.select(&Platform::host()).map_err(|e| bad(e.to_string()))?;
                        let data = self
                            .store
                            .read(&d.digest)
                            .map_err(|_| bad(format!("the archive lacks blob {}", d.digest)))?;
                        match manifest::parse(&d.media_type, &data).map_err(|e| bad(e.to_string()))? {
                            Parsed::Manifest(m) => (d.digest.clone(), d.media_type.clone(), *m),
                            Parsed::Index(_) => return Err(bad("nested indexes are not supported".into())),
                        }
                    }
                };
            let mt = if mt.is_empty() { m.media_type.clone() } else { mt };
            let rec = self.adopt(&md, &mt, &m)?;
            let name = desc
                .annotations
                .get("io.containerd.image.name")
                .cloned()
                .or_else(|| {
                    desc.annotations
                        .get("org.opencontainers.image.ref.name")
                        .filter(|n| n.contains('/') || n.contains(':'))
                        .cloned()
                });
            self.name_loaded(&rec, &name.into_iter().collect::<Vec<_>>(), &mut out, &mut say)?;
        }
        Ok(out)
    }

    /// Checks a loaded manifest's config and unpacks its layers; returns the record for its names.
    fn adopt(&self, manifest_digest: &Digest, media_type: &str, m: &Manifest) -> Result<ImageRecord, Error> {
        let bad = |m: String| Error::Invalid(m);
        let cdata = self
            .store
            .read(&m.config.digest)
            .map_err(|_| bad(format!("the archive lacks the config {}", m.config.digest)))?;
        let cfg: ImageConfig = serde_json::from_slice(&cdata)
            .map_err(|e| bad(format!("image config {}: {e}", m.config.digest)))?;
        if cfg.rootfs.diff_ids.len() != m.layers.len() {
            return Err(bad(format!(
                "image config {} lists {} layers but the archive has {}",
                m.config.digest,
                cfg.rootfs.diff_ids.len(),
                m.layers.len()
            )));
        }
        let chains = manifest::chain_ids(&cfg.rootfs.diff_ids);
        for (i, l) in m.layers.iter().enumerate() {
            if self.snaps.has_layer(&chains[i]) {
                continue;
            }
            let c = manifest::layer_compression(&l.media_type).map_err(|e| bad(e.to_string()))?;
            let f = self
                .store
                .open_blob(&l.digest)
                .map_err(|_| bad(format!("the archive lacks layer {}", l.digest)))?;
            let want = cfg.rootfs.diff_ids[i].clone();
            let applied = self
                .snaps
                .unpack_checked(
                    &chains[i],
                    io::BufReader::with_capacity(1 << 20, f),
                    c,
                    &self.opts_for(l.size),
                    |a, _| {
                        if a.diff_id == want {
                            Ok(())
                        } else {
                            Err(format!(
                                "the layer's content has diff ID {} but the image config says {want}",
                                a.diff_id
                            ))
                        }
                    },
                )
                .map_err(|e| bad(format!("{e}: {}", super::pull::error_chain(&e))))?;
            if let Some(a) = applied {
                self.meta.set_layer_size(&chains[i], a.size).map_err(internal)?;
            }
        }
        Ok(ImageRecord {
            target: manifest_digest.clone(),
            media_type: media_type.to_string(),
            manifest: manifest_digest.clone(),
            config: m.config.digest.clone(),
            created: crate::time::now_rfc3339(),
        })
    }

    fn name_loaded(
        &self,
        rec: &ImageRecord,
        names: &[String],
        out: &mut LoadResult,
        say: &mut dyn FnMut(String, &mut LoadResult),
    ) -> Result<(), Error> {
        if names.is_empty() {
            if self.all()?.iter().all(|i| i.id != rec.config) {
                self.meta.put_dangling(rec).map_err(internal)?;
            }
            say(format!("Loaded image ID: {}", rec.config), out);
        }
        for n in names {
            let r: Reference = n.parse()?;
            self.set_name(&name_key(&r), rec)?;
            say(format!("Loaded image: {}", r.familiar()), out);
        }
        self.events.image("load", &rec.config.to_string(), None);
        Ok(())
    }

    /// `POST /images/create?fromSrc=-`: a one-layer image from a root filesystem tarball (plain,
    /// gzip or zstd) read from `input` (blocking).
    pub fn import(
        &self,
        input: &mut dyn Read,
        name: Option<&Reference>,
        message: &str,
        changes: &[String],
        platform: Option<Platform>,
    ) -> Result<Digest, Error> {
        let mut run = berth_image::manifest::RunConfig::default();
        for c in changes {
            apply_change(&mut run, c)?;
        }
        let key = format!("import-{}-{}", std::process::id(), crate::time::now_nanos());
        let mut w = self.store.writer(&key, None, None).map_err(internal)?;
        io::copy(input, &mut w).map_err(|e| Error::Invalid(format!("read the import stream: {e}")))?;
        let layer = w.commit().map_err(internal)?;
        let lease = key.clone();
        self.meta
            .lease(&lease, std::slice::from_ref(&layer))
            .map_err(internal)?;
        let result = (|| {
            let size = self.store.size(&layer).map_err(internal)?;
            let mut head = [0u8; 4];
            let n = self
                .store
                .open_blob(&layer)
                .map_err(internal)?
                .read(&mut head)
                .unwrap_or(0);
            let c = sniff(&head[..n]);
            // The diff ID first (it names the layer), then the unpack that checks it.
            let diff_id = {
                let f =
                    io::BufReader::with_capacity(1 << 20, self.store.open_blob(&layer).map_err(internal)?);
                let mut r: Box<dyn Read> = match c {
                    Compression::None => Box::new(f),
                    Compression::Gzip => Box::new(flate2::read::GzDecoder::new(f)),
                    Compression::Zstd => Box::new(zstd::stream::read::Decoder::new(f).map_err(internal)?),
                };
                let mut h = sha2::Sha256::new();
                let mut buf = vec![0u8; 1 << 16];
                loop {
                    let n = r.read(&mut buf).map_err(|e| {
                        Error::Invalid(format!("the import stream is not a valid archive: {e}"))
                    })?;
                    if n == 0 {
                        break;
                    }
                    h.update(&buf[..n]);
                }
                let hex: String = h.finalize().iter().map(|b| format!("{b:02x}")).collect();
                format!("sha256:{hex}").parse::<Digest>().map_err(internal)?
            };
            if !self.snaps.has_layer(&diff_id) {
                let f =
                    io::BufReader::with_capacity(1 << 20, self.store.open_blob(&layer).map_err(internal)?);
                let applied = self
                    .snaps
                    .unpack_checked(&diff_id, f, c, &self.opts_for(size), |a, _| {
                        if a.diff_id == diff_id {
                            Ok(())
                        } else {
                            Err("the stream changed while importing".into())
                        }
                    })
                    .map_err(|e| Error::Invalid(format!("{e}: {}", super::pull::error_chain(&e))))?;
                if let Some(a) = applied {
                    self.meta.set_layer_size(&diff_id, a.size).map_err(internal)?;
                }
            }
            let p = platform.unwrap_or_else(Platform::host);
            let now = crate::time::now_rfc3339();
            let cfg = ImageConfig {
                architecture: p.architecture.clone(),
                os: p.os.clone(),
                variant: p.variant.clone(),
                created: Some(now.clone()),
                author: None,
                config: run,
                rootfs: RootFs {
                    typ: "layers".into(),
                    diff_ids: vec![diff_id.clone()],
                },
                history: vec![berth_image::manifest::History {
                    created: Some(now),
                    created_by: None,
                    comment: Some(if message.is_empty() {
                        "Imported from -".to_string()
                    } else {
                        message.to_string()
                    }),
                    empty_layer: false,
                }],
            };
            let cdata = serde_json::to_vec(&cfg).map_err(internal)?;
            let config = self.store.write_all(&cdata, None).map_err(internal)?;
            let m = Manifest {
                schema_version: 2,
                media_type: media::OCI_MANIFEST.into(),
                config: Descriptor {
                    media_type: media::OCI_CONFIG.into(),
                    digest: config.clone(),
                    size: cdata.len() as u64,
                    urls: vec![],
                    annotations: Default::default(),
                    platform: None,
                },
                layers: vec![Descriptor {
                    media_type: layer_media(c).into(),
                    digest: layer.clone(),
                    size,
                    urls: vec![],
                    annotations: Default::default(),
                    platform: None,
                }],
                annotations: Default::default(),
            };
            let mdata = serde_json::to_vec(&m).map_err(internal)?;
            let md = self.store.write_all(&mdata, None).map_err(internal)?;
            let rec = ImageRecord {
                target: md.clone(),
                media_type: media::OCI_MANIFEST.into(),
                manifest: md,
                config: config.clone(),
                created: crate::time::now_rfc3339(),
            };
            match name {
                Some(r) => self.set_name(&name_key(r), &rec)?,
                None => self.meta.put_dangling(&rec).map_err(internal)?,
            }
            self.events.image("import", &config.to_string(), None);
            Ok(config)
        })();
        let _ = self.meta.release(&lease);
        result
    }
}

/// One `--change` (a Dockerfile instruction that only changes the config).
fn apply_change(run: &mut berth_image::manifest::RunConfig, change: &str) -> Result<(), Error> {
    let (instr, rest) = change
        .trim()
        .split_once(char::is_whitespace)
        .unwrap_or((change.trim(), ""));
    let rest = rest.trim();
    let list = |s: &str| -> Vec<String> {
        match serde_json::from_str::<Vec<String>>(s) {
            Ok(v) => v,
            Err(_) => vec!["/bin/sh".into(), "-c".into(), s.to_string()],
        }
    };
    match instr.to_ascii_uppercase().as_str() {
        "CMD" => run.cmd = Some(list(rest)),
        "ENTRYPOINT" => run.entrypoint = Some(list(rest)),
        "ENV" => {
            let kv = match rest.split_once('=') {
                Some((k, v)) => format!("{}={}", k.trim(), v.trim().trim_matches('"')),
                None => match rest.split_once(char::is_whitespace) {
                    Some((k, v)) => format!("{k}={}", v.trim()),
                    None => return Err(Error::Invalid(format!("ENV names a variable without a value: {change:?}"))),
                },
            };
            run.env.get_or_insert_with(Vec::new).push(kv);
        }
        "WORKDIR" => run.working_dir = Some(rest.to_string()),
        "USER" => run.user = Some(rest.to_string()),
        "STOPSIGNAL" => run.stop_signal = Some(rest.to_string()),
        "EXPOSE" => {
            for p in rest.split_whitespace() {
                let p = if p.contains('/') { p.to_string() } else { format!("{p}/tcp") };
                run.exposed_ports.get_or_insert_with(Default::default).insert(p, json!({}));
            }
        }
        "VOLUME" => {
            let vols = serde_json::from_str::<Vec<String>>(rest).unwrap_or_else(|_| rest.split_whitespace().map(String::from).collect());
            for v in vols {
                run.volumes.get_or_insert_with(Default::default).insert(v, Value::Object(Default::default()));
            }
        }
        "LABEL" => {
            let (k, v) = rest.split_once('=').ok_or_else(|| Error::Invalid(format!("LABEL needs key=value: {change:?}")))?;
            run.labels.get_or_insert_with(Default::default).insert(k.trim().to_string(), v.trim().trim_matches('"').to_string());
        }
        other => {
            return Err(Error::Invalid(format!(
                "{other} is not a valid change command (CMD, ENTRYPOINT, ENV, EXPOSE, LABEL, STOPSIGNAL, USER, VOLUME, WORKDIR)"
            )))
        }
    }
    Ok(())
}
