//! Building images from directories (berth's own hello-world and busybox images, test images) and
//! writing them as an OCI image layout (`oci-layout`, `index.json`, `blobs/sha256/...`) that registries
//! tools and `berth load` understand. Layers are deterministic: entries sorted, times zeroed, owners
//! root, so the same directory always gives the same digests.

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use flate2::write::GzEncoder;
use serde_json::json;

use crate::content::{ContentError, Store};
use crate::digest::Digest;
use crate::manifest::{media, Descriptor, History, ImageConfig, Manifest, RootFs, RunConfig};
use crate::platform::Platform;

#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error("read {0}")]
    Read(PathBuf, #[source] io::Error),
    #[error("write the layer")]
    Tar(#[source] io::Error),
    #[error(transparent)]
    Content(#[from] ContentError),
    #[error("write {0}")]
    Write(PathBuf, #[source] io::Error),
}

/// A layer ready to store: the gzip blob and the diff ID of its uncompressed tar.
pub struct Layer {
    pub blob: Vec<u8>,
    pub diff_id: Digest,
}

fn append_dir(b: &mut tar::Builder<Vec<u8>>, root: &Path, rel: &Path) -> Result<(), BuildError> {
    let dir = root.join(rel);
    let mut entries: Vec<_> = fs::read_dir(&dir)
        .map_err(|e| BuildError::Read(dir.clone(), e))?
        .flatten()
        .collect();
    entries.sort_by_key(|e| e.file_name());
    for e in entries {
        let path = e.path();
        let name = rel.join(e.file_name());
        let meta = fs::symlink_metadata(&path).map_err(|err| BuildError::Read(path.clone(), err))?;
        let mut h = tar::Header::new_gnu();
        h.set_mtime(0);
        h.set_uid(0);
        h.set_gid(0);
        h.set_mode(std::os::unix::fs::PermissionsExt::mode(&meta.permissions()) & 0o7777);
        if meta.file_type().is_symlink() {
            let target = fs::read_link(&path).map_err(|err| BuildError::Read(path.clone(), err))?;
            h.set_entry_type(tar::EntryType::Symlink);
            h.set_size(0);
            b.append_link(&mut h, &name, &target).map_err(BuildError::Tar)?;
        } else if meta.is_dir() {
            h.set_entry_type(tar::EntryType::Directory);
            h.set_size(0);
            b.append_data(&mut h, &name, io::empty())
                .map_err(BuildError::Tar)?;
            append_dir(b, root, &name)?;
        } else if meta.is_file() {
            h.set_entry_type(tar::EntryType::Regular);
            h.set_size(meta.len());
            let f = fs::File::open(&path).map_err(|err| BuildError::Read(path.clone(), err))?;
            b.append_data(&mut h, &name, f).map_err(BuildError::Tar)?;
        }
    }
    Ok(())
}

/// A deterministic gzip layer of everything under `dir`.
pub fn layer_from_dir(dir: &Path) -> Result<Layer, BuildError> {
    let mut b = tar::Builder::new(Vec::new());
    b.mode(tar::HeaderMode::Deterministic);
    append_dir(&mut b, dir, Path::new(""))?;
    let tar_bytes = b.into_inner().map_err(BuildError::Tar)?;
    let diff_id = Digest::of(&tar_bytes);
    let mut gz = GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(&tar_bytes).map_err(BuildError::Tar)?;
    Ok(Layer {
        blob: gz.finish().map_err(BuildError::Tar)?,
        diff_id,
    })
}

/// Stores layers, config and manifest; returns the manifest's digest and the manifest. `created`
/// (RFC 3339) is the image's creation time: a fixed one keeps the image reproducible.
pub fn store_image(
    store: &Store,
    layers: &[Layer],
    run: RunConfig,
    platform: &Platform,
    created: &str,
) -> Result<(Digest, Manifest), BuildError> {
    let mut descs = Vec::new();
    for l in layers {
        let d = store.write_all(&l.blob, None)?;
        descs.push(Descriptor {
            media_type: media::OCI_LAYER_GZIP.into(),
            digest: d,
            size: l.blob.len() as u64,
            urls: vec![],
            annotations: Default::default(),
            platform: None,
        });
    }
    let config = ImageConfig {
        architecture: platform.architecture.clone(),
        os: platform.os.clone(),
        variant: platform.variant.clone(),
        created: Some(created.into()),
        author: None,
        config: run,
        rootfs: RootFs {
            typ: "layers".into(),
            diff_ids: layers.iter().map(|l| l.diff_id.clone()).collect(),
        },
        history: layers
            .iter()
            .map(|_| History {
                created: Some(created.into()),
                created_by: Some("berth image builder".into()),
                ..Default::default()
            })
            .collect(),
    };
    let config_bytes = serde_json::to_vec(&config).map_err(|e| BuildError::Tar(io::Error::other(e)))?;
    let config_digest = store.write_all(&config_bytes, None)?;
    let manifest = Manifest {
        schema_version: 2,
        media_type: media::OCI_MANIFEST.into(),
        config: Descriptor {
            media_type: media::OCI_CONFIG.into(),
            digest: config_digest,
            size: config_bytes.len() as u64,
            urls: vec![],
            annotations: Default::default(),
            platform: None,
        },
        layers: descs,
        annotations: Default::default(),
    };
    let bytes = serde_json::to_vec(&manifest).map_err(|e| BuildError::Tar(io::Error::other(e)))?;
    let digest = store.write_all(&bytes, None)?;
    Ok((digest, manifest))
}

/// Writes an OCI image layout at `dest` holding the image `manifest_digest`, named `ref_name`.
pub fn write_layout(
    store: &Store,
    manifest_digest: &Digest,
    ref_name: &str,
    dest: &Path,
) -> Result<(), BuildError> {
    let blobs = dest.join("blobs/sha256");
    fs::create_dir_all(&blobs).map_err(|e| BuildError::Write(blobs.clone(), e))?;
    let manifest_bytes = store.read(manifest_digest)?;
    let manifest: Manifest =
        serde_json::from_slice(&manifest_bytes).map_err(|e| BuildError::Tar(io::Error::other(e)))?;
    let mut all = vec![manifest_digest.clone(), manifest.config.digest.clone()];
    all.extend(manifest.layers.iter().map(|l| l.digest.clone()));
    for d in all {
        let out = blobs.join(d.hex());
        fs::write(&out, store.read(&d)?).map_err(|e| BuildError::Write(out.clone(), e))?;
    }
    let write = |name: &str, v: serde_json::Value| {
        let p = dest.join(name);
        fs::write(&p, v.to_string()).map_err(|e| BuildError::Write(p.clone(), e))
    };
    write("oci-layout", json!({"imageLayoutVersion": "1.0.0"}))?;
    write(
        "index.json",
        json!({
            "schemaVersion": 2,
            "mediaType": media::OCI_INDEX,
            "manifests": [{
                "mediaType": media::OCI_MANIFEST,
                "digest": manifest_digest.to_string(),
                "size": manifest_bytes.len(),
                "annotations": {"org.opencontainers.image.ref.name": ref_name}
            }]
        }),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::{chain_ids, layer_compression, parse, Parsed};
    use crate::snapshot::Snapshotter;
    use crate::unpack::Options;

    #[test]
    fn build_store_unpack_and_lay_out() {
        let t = tempfile::tempdir().unwrap();
        let src = t.path().join("src");
        fs::create_dir_all(src.join("bin")).unwrap();
        fs::write(src.join("bin/hello"), b"#!/bin/sh\necho hi\n").unwrap();
        std::os::unix::fs::symlink("hello", src.join("bin/hi")).unwrap();
        let l1 = layer_from_dir(&src).unwrap();
        let again = layer_from_dir(&src).unwrap();
        assert_eq!(l1.diff_id, again.diff_id, "deterministic");
        let store = Store::open(&t.path().join("content")).unwrap();
        let run = RunConfig {
            cmd: Some(vec!["/bin/hello".into()]),
            ..Default::default()
        };
        let (digest, manifest) =
            store_image(&store, &[l1], run, &Platform::host(), "1970-01-01T00:00:00Z").unwrap();
        let Parsed::Manifest(m) = parse("", &store.read(&digest).unwrap()).unwrap() else {
            panic!()
        };
        assert_eq!(*m, manifest);
        let config: ImageConfig = serde_json::from_slice(&store.read(&m.config.digest).unwrap()).unwrap();
        assert_eq!(
            config.config.cmd.as_deref(),
            Some(&["/bin/hello".to_string()][..])
        );
        // Unpacked through the snapshotter, the diff ID matches the config's.
        let snap = Snapshotter::open(&t.path().join("snap")).unwrap();
        let chains = chain_ids(&config.rootfs.diff_ids);
        let blob = store.open_blob(&m.layers[0].digest).unwrap();
        let opts = Options {
            preserve_owner: nix::unistd::geteuid().is_root(),
            ..Options::default()
        };
        let applied = snap
            .unpack(
                &chains[0],
                blob,
                layer_compression(&m.layers[0].media_type).unwrap(),
                &opts,
            )
            .unwrap()
            .unwrap();
        assert_eq!(applied.diff_id, config.rootfs.diff_ids[0]);
        // The OCI layout has every blob and names the image.
        let out = t.path().join("layout");
        write_layout(&store, &digest, "hello-world:latest", &out).unwrap();
        let index: serde_json::Value =
            serde_json::from_slice(&fs::read(out.join("index.json")).unwrap()).unwrap();
        assert_eq!(index["manifests"][0]["digest"], digest.to_string());
        assert!(out.join("blobs/sha256").join(m.layers[0].digest.hex()).is_file());
        assert!(out.join("oci-layout").is_file());
    }
}
