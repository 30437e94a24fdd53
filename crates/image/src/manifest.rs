//! Manifests and image configs: OCI image manifest and index, Docker v2 schema 2 manifest and manifest
//! list (the same shapes under other media types), schema 1 refused with a clear error, and the chain
//! IDs that name unpacked layers.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::digest::Digest;
use crate::platform::Platform;

pub mod media {
    pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
    pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
    pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
    pub const OCI_LAYER: &str = "application/vnd.oci.image.layer.v1.tar";
    pub const OCI_LAYER_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
    pub const OCI_LAYER_ZSTD: &str = "application/vnd.oci.image.layer.v1.tar+zstd";
    pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
    pub const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
    pub const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";
    pub const DOCKER_LAYER_GZIP: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";
    pub const DOCKER_SCHEMA1: &str = "application/vnd.docker.distribution.manifest.v1+json";
    pub const DOCKER_SCHEMA1_SIGNED: &str = "application/vnd.docker.distribution.manifest.v1+prettyjws";

    /// What a pull asks the registry for, in order of preference.
    pub const ACCEPT: [&str; 4] = [OCI_INDEX, DOCKER_LIST, OCI_MANIFEST, DOCKER_MANIFEST];
}

#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    #[error("parse manifest: {0}")]
    Json(#[from] serde_json::Error),
    #[error("Docker Image Format v1 and Docker Image manifest version 2, schema 1 are not supported: the image must be pushed again with a newer client")]
    Schema1,
    #[error("unsupported manifest media type {0:?}")]
    MediaType(String),
    #[error("unsupported manifest schema version {0}")]
    SchemaVersion(u32),
    #[error("no matching manifest for {0} in the manifest list entries")]
    NoPlatform(String),
    #[error("unsupported layer media type {0:?}")]
    LayerType(String),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Descriptor {
    #[serde(default)]
    pub media_type: String,
    pub digest: Digest,
    pub size: u64,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub urls: Vec<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<Platform>,
}

/// An image manifest (OCI or Docker v2 schema 2).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Manifest {
    pub schema_version: u32,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub media_type: String,
    pub config: Descriptor,
    pub layers: Vec<Descriptor>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

/// An image index (OCI) or manifest list (Docker).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Index {
    pub schema_version: u32,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub media_type: String,
    pub manifests: Vec<Descriptor>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

/// What a manifest document turned out to be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Parsed {
    Manifest(Box<Manifest>),
    Index(Index),
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Probe {
    #[serde(default)]
    schema_version: u32,
    #[serde(default)]
    media_type: String,
    #[serde(default)]
    manifests: Option<serde_json::Value>,
    #[serde(default)]
    config: Option<serde_json::Value>,
}

/// Parses a manifest document; `content_type` is the registry's Content-Type (may be empty).
pub fn parse(content_type: &str, data: &[u8]) -> Result<Parsed, ManifestError> {
    let probe: Probe = serde_json::from_slice(data)?;
    let media = if probe.media_type.is_empty() {
        content_type.split(';').next().unwrap_or("").trim().to_string()
    } else {
        probe.media_type.clone()
    };
    if probe.schema_version == 1 || media == media::DOCKER_SCHEMA1 || media == media::DOCKER_SCHEMA1_SIGNED {
        return Err(ManifestError::Schema1);
    }
    if probe.schema_version != 2 {
        return Err(ManifestError::SchemaVersion(probe.schema_version));
    }
    match media.as_str() {
        media::OCI_INDEX | media::DOCKER_LIST => Ok(Parsed::Index(serde_json::from_slice(data)?)),
        media::OCI_MANIFEST | media::DOCKER_MANIFEST => {
            Ok(Parsed::Manifest(Box::new(serde_json::from_slice(data)?)))
        }
        // OCI allows the media type to be absent: tell them apart by shape.
        "" | "application/json" if probe.manifests.is_some() => {
            Ok(Parsed::Index(serde_json::from_slice(data)?))
        }
        "" | "application/json" if probe.config.is_some() => {
            Ok(Parsed::Manifest(Box::new(serde_json::from_slice(data)?)))
        }
        other => Err(ManifestError::MediaType(other.to_string())),
    }
}

impl Index {
    /// The manifest for `platform`, as docker picks it.
    pub fn select(&self, platform: &Platform) -> Result<&Descriptor, ManifestError> {
        platform
            .choose(&self.manifests, |d| d.platform.as_ref())
            .ok_or_else(|| ManifestError::NoPlatform(platform.to_string()))
    }
}

/// How a layer blob is compressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    None,
    Gzip,
    Zstd,
}

/// The compression of a layer from its media type.
pub fn layer_compression(media_type: &str) -> Result<Compression, ManifestError> {
    Ok(match media_type {
        media::OCI_LAYER | "application/vnd.oci.image.layer.nondistributable.v1.tar" => Compression::None,
        media::OCI_LAYER_GZIP
        | media::DOCKER_LAYER_GZIP
        | "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip" => Compression::Gzip,
        media::OCI_LAYER_ZSTD => Compression::Zstd,
        other => return Err(ManifestError::LayerType(other.to_string())),
    })
}

/// The image configuration (the parts berth uses; the rest is kept as it is).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ImageConfig {
    #[serde(default)]
    pub architecture: String,
    #[serde(default)]
    pub os: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub author: Option<String>,
    #[serde(default)]
    pub config: RunConfig,
    pub rootfs: RootFs,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub history: Vec<History>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct RunConfig {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub env: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entrypoint: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cmd: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub working_dir: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exposed_ports: Option<BTreeMap<String, serde_json::Value>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub volumes: Option<BTreeMap<String, serde_json::Value>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub labels: Option<BTreeMap<String, String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop_signal: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RootFs {
    #[serde(rename = "type")]
    pub typ: String,
    pub diff_ids: Vec<Digest>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct History {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_by: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub empty_layer: bool,
}

/// Chain IDs of a layer stack: the first is the first diff ID, each next one
/// `sha256(previous + " " + diff_id)`. A chain ID names a layer *with everything below it*, so an
/// unpacked layer is shared by every image with the same stack.
pub fn chain_ids(diff_ids: &[Digest]) -> Vec<Digest> {
    let mut out: Vec<Digest> = Vec::with_capacity(diff_ids.len());
    for d in diff_ids {
        let next = match out.last() {
            None => d.clone(),
            Some(prev) => Digest::of(format!("{prev} {d}").as_bytes()),
        };
        out.push(next);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const D1: &str = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    #[test]
    fn manifests_and_indexes() {
        let m = format!(
            r#"{{"schemaVersion":2,"mediaType":"{}","config":{{"mediaType":"{}","digest":"{D1}","size":7}},"layers":[{{"mediaType":"{}","digest":"{D1}","size":9}}]}}"#,
            media::DOCKER_MANIFEST,
            media::DOCKER_CONFIG,
            media::DOCKER_LAYER_GZIP
        );
        let Parsed::Manifest(m) = parse("", m.as_bytes()).unwrap() else {
            panic!()
        };
        assert_eq!(m.layers.len(), 1);
        assert_eq!(
            layer_compression(&m.layers[0].media_type).unwrap(),
            Compression::Gzip
        );
        let idx = format!(
            r#"{{"schemaVersion":2,"manifests":[{{"mediaType":"{0}","digest":"{D1}","size":1,"platform":{{"architecture":"arm64","os":"linux","variant":"v8"}}}},{{"mediaType":"{0}","digest":"{D1}","size":2,"platform":{{"architecture":"amd64","os":"linux"}}}}]}}"#,
            media::OCI_MANIFEST
        );
        let Parsed::Index(i) = parse(media::OCI_INDEX, idx.as_bytes()).unwrap() else {
            panic!()
        };
        assert_eq!(i.select(&"linux/amd64".parse().unwrap()).unwrap().size, 2);
        assert_eq!(i.select(&"linux/arm64".parse().unwrap()).unwrap().size, 1);
        let e = i.select(&"linux/s390x".parse().unwrap()).unwrap_err().to_string();
        assert_eq!(
            e,
            "no matching manifest for linux/s390x in the manifest list entries"
        );
    }

    #[test]
    fn refusals() {
        assert!(matches!(
            parse("", br#"{"schemaVersion":1,"name":"x"}"#),
            Err(ManifestError::Schema1)
        ));
        assert!(matches!(
            parse(media::DOCKER_SCHEMA1_SIGNED, br#"{"schemaVersion":1}"#),
            Err(ManifestError::Schema1)
        ));
        assert!(matches!(parse("", b"{not json"), Err(ManifestError::Json(_))));
        assert!(matches!(
            parse("", br#"{"schemaVersion":3}"#),
            Err(ManifestError::SchemaVersion(3))
        ));
        assert!(matches!(
            parse("text/html", br#"{"schemaVersion":2}"#),
            Err(ManifestError::MediaType(_))
        ));
        assert!(parse(
            "",
            br#"{"schemaVersion":2,"config":{"digest":"sha256:zz","size":1},"layers":[]}"#
        )
        .is_err());
        assert!(layer_compression("application/x-bogus").is_err());
    }

    #[test]
    fn chain_ids_follow_the_spec() {
        let a = Digest::of(b"a");
        let b = Digest::of(b"b");
        let ids = chain_ids(&[a.clone(), b.clone()]);
        assert_eq!(ids[0], a);
        assert_eq!(ids[1], Digest::of(format!("{a} {b}").as_bytes()));
        assert!(chain_ids(&[]).is_empty());
    }

    #[test]
    fn image_config_round_trip() {
        let text = format!(
            r#"{{"architecture":"amd64","os":"linux","config":{{"Env":["PATH=/bin"],"Cmd":["sh"],"WorkingDir":"/"}},"rootfs":{{"type":"layers","diff_ids":["{D1}"]}},"history":[{{"created_by":"x","empty_layer":true}}]}}"#
        );
        let c: ImageConfig = serde_json::from_str(&text).unwrap();
        assert_eq!(c.config.cmd.as_deref(), Some(&["sh".to_string()][..]));
        assert_eq!(c.rootfs.diff_ids.len(), 1);
        assert!(c.history[0].empty_layer);
        let back: ImageConfig = serde_json::from_str(&serde_json::to_string(&c).unwrap()).unwrap();
        assert_eq!(back, c);
    }
}
