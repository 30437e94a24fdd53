//! Reading the image store as dockerd answers: the list (`GET /images/json`) with its filters, inspect,
//! history, and the image part of `system df`.

use std::collections::BTreeMap;

use berth_image::manifest;
use berth_image::Reference;
use serde_json::{json, Value};

use super::{internal, Error, Image, ImageService};
use crate::time;

/// An entry of a removal's answer (`{"Untagged": ...}` or `{"Deleted": ...}`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub enum DeleteItem {
    Untagged(String),
    Deleted(String),
}

/// What a prune removed.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct PruneReport {
    #[serde(rename = "ImagesDeleted")]
    pub images_deleted: Vec<DeleteItem>,
    #[serde(rename = "SpaceReclaimed")]
    pub space_reclaimed: u64,
}

/// The `filters` query parameter: `{"key":{"value":true}}` or the older `{"key":["value"]}`.
#[derive(Debug, Clone, Default)]
pub struct ImageFilters(pub BTreeMap<String, Vec<String>>);

impl ImageFilters {
    pub fn parse(raw: &str, allowed: &[&str]) -> Result<ImageFilters, Error> {
        if raw.trim().is_empty() {
            return Ok(ImageFilters::default());
        }
        let v: Value =
            serde_json::from_str(raw).map_err(|e| Error::Invalid(format!("invalid filter: {e}")))?;
        let Value::Object(map) = v else {
            return Err(Error::Invalid("invalid filter: expected a JSON object".into()));
        };
        let mut out = BTreeMap::new();
        for (k, v) in map {
            if !allowed.contains(&k.as_str()) {
                return Err(Error::Invalid(format!("invalid filter '{k}'")));
            }
            let values: Vec<String> = match v {
                Value::Object(m) => m
                    .into_iter()
                    .filter(|(_, b)| b.as_bool() == Some(true))
                    .map(|(k, _)| k)
                    .collect(),
                Value::Array(a) => a
                    .into_iter()
                    .filter_map(|x| x.as_str().map(String::from))
                    .collect(),
                _ => return Err(Error::Invalid(format!("invalid filter '{k}'"))),
            };
            out.insert(k, values);
        }
        Ok(ImageFilters(out))
    }

    pub fn get(&self, key: &str) -> &[String] {
        self.0.get(key).map(|v| v.as_slice()).unwrap_or(&[])
    }

    /// The `dangling` filter: Some(true) for `dangling=true`.
    pub fn dangling(&self) -> Result<Option<bool>, Error> {
        match self.get("dangling") {
            [] => Ok(None),
            [v] if v == "true" || v == "1" => Ok(Some(true)),
            [v] if v == "false" || v == "0" => Ok(Some(false)),
            [v] => Err(Error::Invalid(format!("Invalid filter 'dangling=[{v}]'"))),
            _ => Err(Error::Invalid("invalid filter: dangling takes one value".into())),
        }
    }
}

impl ImageFilters {
    /// `label=key` / `label=key=value` must all hold, `label!=...` must all fail.
    pub fn labels_match(&self, labels: &std::collections::BTreeMap<String, String>) -> bool {
        let holds = |l: &String| match l.split_once('=') {
            Some((k, v)) => labels.get(k).is_some_and(|x| x == v),
            None => labels.contains_key(l.as_str()),
        };
        self.get("label").iter().all(holds) && !self.get("label!").iter().any(holds)
    }

    /// The `until` filter as unix seconds: a timestamp (`1700000000`, RFC 3339) or a duration before
    /// now (`24h`, `1h30m`, `90s`), as dockerd reads it.
    pub fn until(&self) -> Result<Option<i64>, Error> {
        let Some(v) = self.get("until").first() else {
            return Ok(None);
        };
        time::parse_filter_time(v)
            .map(|n| Some((n / 1_000_000_000) as i64))
            .ok_or_else(|| Error::Invalid(format!("invalid filter 'until={v}'")))
    }
}

/// `path.Match`-style globbing with `*` and `?` (`*` does not cross `/`).
pub(crate) fn glob(pattern: &str, s: &str) -> bool {
    fn go(p: &[u8], s: &[u8]) -> bool {
        match (p.first(), s.first()) {
            (None, None) => true,
            (Some(b'*'), _) => go(&p[1..], s) || (!s.is_empty() && s[0] != b'/' && go(p, &s[1..])),
            (Some(b'?'), Some(c)) if *c != b'/' => go(&p[1..], &s[1..]),
            (Some(a), Some(b)) if a == b => go(&p[1..], &s[1..]),
            _ => false,
        }
    }
    go(pattern.as_bytes(), s.as_bytes())
}

/// docker's reference filter: the pattern against `name:tag` and against `name`.
fn reference_matches(pattern: &str, img: &Image) -> bool {
    img.names
        .iter()
        .filter_map(|n| n.parse::<Reference>().ok())
        .any(|r| {
            glob(pattern, &r.familiar()) || glob(pattern, &r.familiar_name()) || glob(pattern, &r.to_string())
        })
}

impl ImageService {
    fn created_unix(&self, img: &Image) -> i64 {
        self.config(img)
            .ok()
            .and_then(|(c, _)| c.created)
            .and_then(|c| time::parse_rfc3339(&c))
            .unwrap_or(0)
    }

    /// `GET /images/json`.
    pub fn list(&self, filters: &ImageFilters) -> Result<Vec<Value>, Error> {
        let dangling = filters.dangling()?;
        let bound = |key: &str| -> Result<Option<i64>, Error> {
            match filters.get(key).first() {
                None => Ok(None),
                Some(r) => {
                    let img = self.resolve(r)?;
                    Ok(Some(self.created_unix(&img)))
                }
            }
        };
        let before = bound("before")?;
        let since = bound("since")?;
        let until = filters.until()?;
        let mut out = Vec::new();
        for img in self.all()? {
            let tags = img.repo_tags();
            if let Some(d) = dangling {
                if d != tags.is_empty() {
                    continue;
                }
            }
            let refs = filters.get("reference");
            if !refs.is_empty() && !refs.iter().any(|p| reference_matches(p, &img)) {
                continue;
            }
            let created = self.created_unix(&img);
            if before.is_some_and(|b| created >= b)
                || since.is_some_and(|s| created <= s)
                || until.is_some_and(|u| created >= u)
            {
                continue;
            }
            let (cfg, _) = self.config(&img)?;
            let labels = cfg.config.labels.clone().unwrap_or_default();
            if !filters.labels_match(&labels) {
                continue;
            }
            out.push(json!({
                "Containers": -1,
                "Created": created,
                "Id": img.id.to_string(),
                "Labels": if labels.is_empty() { Value::Null } else { json!(labels) },
                "ParentId": "",
                "RepoDigests": img.repo_digests(),
                "RepoTags": tags,
                "SharedSize": -1,
                "Size": self.size(&img)?,
            }));
        }
        out.sort_by_key(|v| std::cmp::Reverse(v["Created"].as_i64().unwrap_or(0)));
        Ok(out)
    }

    /// `GET /images/{name}/json`.
    pub fn inspect(&self, name: &str) -> Result<Value, Error> {
        let img = self.resolve(name)?;
        let (cfg, raw) = self.config(&img)?;
        let chains = manifest::chain_ids(&cfg.rootfs.diff_ids);
        let dirs: Vec<String> = chains
            .iter()
            .rev()
            .map(|c| self.snaps.layer_path(c).display().to_string())
            .collect();
        let mut graph = serde_json::Map::new();
        if let Some((upper, lower)) = dirs.split_first() {
            graph.insert("UpperDir".into(), json!(upper));
            if !lower.is_empty() {
                graph.insert("LowerDir".into(), json!(lower.join(":")));
            }
        }
        let mut v = json!({
            "Id": img.id.to_string(),
            "RepoTags": img.repo_tags(),
            "RepoDigests": img.repo_digests(),
            "Parent": "",
            "Comment": raw.get("comment").and_then(|c| c.as_str()).unwrap_or(""),
            "Created": cfg.created.clone().unwrap_or_default(),
            "DockerVersion": raw.get("docker_version").and_then(|c| c.as_str()).unwrap_or(""),
            "Author": cfg.author.clone().unwrap_or_default(),
            "Config": raw.get("config").cloned().unwrap_or(Value::Null),
            "Architecture": cfg.architecture,
            "Os": cfg.os,
            "Size": self.size(&img)?,
            "GraphDriver": {"Data": graph, "Name": "overlayfs"},
            "RootFS": {"Type": "layers", "Layers": cfg.rootfs.diff_ids.iter().map(|d| d.to_string()).collect::<Vec<_>>()},
            "Metadata": {"LastTagTime": img.record.created},
        });
        if let Some(var) = &cfg.variant {
            v["Variant"] = json!(var);
        }
        Ok(v)
    }

    /// `GET /images/{name}/history`: newest first, one entry per history item; layers get their size.
    pub fn history(&self, name: &str) -> Result<Vec<Value>, Error> {
        let img = self.resolve(name)?;
        let (cfg, _) = self.config(&img)?;
        let chains = manifest::chain_ids(&cfg.rootfs.diff_ids);
        let mut sizes = Vec::new();
        for c in &chains {
            sizes.push(self.meta.layer_size(c).map_err(internal)?.unwrap_or(0));
        }
        let mut items = Vec::new();
        let mut layer = 0usize;
        let history = if cfg.history.is_empty() {
            // No history: one entry per layer.
            chains.iter().map(|_| Default::default()).collect()
        } else {
            cfg.history.clone()
        };
        for h in &history {
            let size = if h.empty_layer {
                0
            } else {
                let s = sizes.get(layer).copied().unwrap_or(0);
                layer += 1;
                s
            };
            items.push(json!({
                "Id": "<missing>",
                "Created": h.created.as_deref().and_then(time::parse_rfc3339).unwrap_or(0),
                "CreatedBy": h.created_by.clone().unwrap_or_default(),
                "Tags": Value::Null,
                "Size": size,
                "Comment": h.comment.clone().unwrap_or_default(),
            }));
        }
        items.reverse();
        if let Some(top) = items.first_mut() {
            top["Id"] = json!(img.id.to_string());
            let tags = img.repo_tags();
            top["Tags"] = if tags.is_empty() { Value::Null } else { json!(tags) };
        }
        Ok(items)
    }

    /// The image part of `GET /system/df`: (total size of unpacked layers, image summaries).
    pub fn disk_usage(&self) -> Result<(u64, Vec<Value>), Error> {
        let mut layers_size = 0;
        for c in self.snaps.layers() {
            layers_size += self.meta.layer_size(&c).map_err(internal)?.unwrap_or(0);
        }
        let mut images = self.list(&ImageFilters::default())?;
        for i in &mut images {
            i["Containers"] = json!(0);
            i["SharedSize"] = json!(0);
        }
        Ok((layers_size, images))
    }
}
