//! Tagging and removing images, and pruning, with dockerd's rules: removing a name untags it and
//! deletes the image only with its last name; removing by ID untags everything (refused without
//! `force` when the image is in several repositories); layers and blobs nothing uses any more go.

use std::collections::BTreeSet;

use berth_image::{manifest, Digest, Reference};

use super::{internal, name_key, DeleteItem, Error, Image, ImageFilters, ImageService, PruneReport};

impl ImageService {
    /// `POST /images/{name}/tag?repo=&tag=`.
    pub fn tag(&self, source: &str, repo: &str, tag: &str) -> Result<Reference, Error> {
        let img = self.resolve(source)?;
        let target = if tag.is_empty() {
            repo.to_string()
        } else {
            format!("{repo}:{tag}")
        };
        let r: Reference = target.parse()?;
        if r.digest().is_some() {
            return Err(Error::Invalid(
                "refusing to create a tag with a digest reference".into(),
            ));
        }
        let mut rec = img.record.clone();
        rec.created = crate::time::now_rfc3339();
        self.set_name(&name_key(&r), &rec)?;
        self.events.image("tag", &img.id.to_string(), Some(&r.familiar()));
        Ok(r)
    }

    /// `DELETE /images/{name}`.
    pub async fn remove(&self, input: &str, force: bool) -> Result<Vec<DeleteItem>, Error> {
        let _g = self.gc_lock.lock().await;
        let img = self.resolve(input)?;
        let by_name = input
            .parse::<Reference>()
            .ok()
            .map(|r| name_key(&r))
            .filter(|k| img.names.contains(k));
        let mut out = Vec::new();
        let untag = |name: &str, out: &mut Vec<DeleteItem>| -> Result<(), Error> {
            self.meta.remove(name).map_err(internal)?;
            let shown = name
                .parse::<Reference>()
                .map(|r| r.familiar())
                .unwrap_or(name.to_string());
            self.events.image("untag", &img.id.to_string(), Some(&shown));
            out.push(DeleteItem::Untagged(shown));
            Ok(())
        };
        let users = self.users(&img.id);
        let short = &img.id.hex()[..12];
        let running = users.iter().find(|u| u.1);
        match by_name {
            Some(name) => {
                let repo = name
                    .parse::<Reference>()
                    .map(|r| r.repository())
                    .unwrap_or_default();
                let rest: Vec<&String> = img.names.iter().filter(|n| **n != name).collect();
                // Only digests of the same repository left: they go with the tag (as dockerd does).
                let only_digests_here = rest.iter().all(|n| {
                    n.contains('@')
                        && n.parse::<Reference>().map(|r| r.repository()).ok().as_deref() == Some(&repo)
                });
                let last = !name.contains('@') && only_digests_here || rest.is_empty();
                if last && !force {
                    if let Some((cid, _)) = users.first() {
                        return Err(Error::Conflict(format!(
                            "conflict: unable to remove repository reference \"{input}\" (must force) - container {} is using its referenced image {short}",
                            &cid[..12]
                        )));
                    }
                }
                untag(&name, &mut out)?;
                if !name.contains('@') && only_digests_here {
                    for n in rest {
                        untag(n, &mut out)?;
                    }
                } else if !rest.is_empty() {
                    return Ok(out);
                }
            }
            None => {
                if let Some((cid, _)) = running {
                    return Err(Error::Conflict(format!(
                        "conflict: unable to delete {short} (cannot be forced) - image is being used by running container {}",
                        &cid[..12]
                    )));
                }
                if let (Some((cid, _)), false) = (users.first(), force) {
                    return Err(Error::Conflict(format!(
                        "conflict: unable to delete {short} (must be forced) - image is being used by stopped container {}",
                        &cid[..12]
                    )));
                }
                let repos: BTreeSet<String> = img
                    .names
                    .iter()
                    .filter_map(|n| n.parse::<Reference>().ok())
                    .map(|r| r.repository())
                    .collect();
                if repos.len() > 1 && !force {
                    return Err(Error::Conflict(format!(
                        "conflict: unable to delete {short} (must be forced) - image is referenced in multiple repositories"
                    )));
                }
                for n in &img.names {
                    untag(n, &mut out)?;
                }
            }
        }
        if !users.is_empty() {
            // Still used by a container: it stays, without names (as dockerd leaves it).
            self.meta.put_dangling(&img.record).map_err(internal)?;
            return Ok(out);
        }
        let (deleted, _) = self.delete_image(&img)?;
        out.extend(deleted);
        Ok(out)
    }

    /// Deletes an image that has no names left, then the layers and blobs nothing else uses.
    /// Returns the answer's entries and the bytes freed.
    fn delete_image(&self, img: &Image) -> Result<(Vec<DeleteItem>, u64), Error> {
        self.meta.remove_dangling(&img.id).map_err(internal)?;
        let mut out = vec![DeleteItem::Deleted(img.id.to_string())];
        self.events.image("delete", &img.id.to_string(), None);
        let freed = self.collect_layers(&mut out)?;
        self.meta.gc(&self.store).map_err(internal)?;
        Ok((out, freed))
    }

    /// Removes unpacked layers no image and no pull in progress uses.
    fn collect_layers(&self, out: &mut Vec<DeleteItem>) -> Result<u64, Error> {
        let mut used: BTreeSet<Digest> = self.meta.leased().map_err(internal)?;
        for i in self.all()? {
            if let Ok((cfg, _)) = self.config(&i) {
                used.extend(manifest::chain_ids(&cfg.rootfs.diff_ids));
            }
        }
        let mut freed = 0;
        for c in self.snaps.layers() {
            if used.contains(&c) {
                continue;
            }
            freed += self.meta.layer_size(&c).map_err(internal)?.unwrap_or(0);
            self.snaps.remove_layer(&c).map_err(internal)?;
            self.meta.forget_layer(&c).map_err(internal)?;
            out.push(DeleteItem::Deleted(c.to_string()));
        }
        Ok(freed)
    }

    /// `POST /images/prune`: dangling images, or with `dangling=false` every image.
    pub async fn prune(&self, filters: &ImageFilters) -> Result<PruneReport, Error> {
        let _g = self.gc_lock.lock().await;
        let all = filters.dangling()? == Some(false);
        let until = filters.until()?;
        let mut report = PruneReport::default();
        for img in self.all()? {
            if (!all && !img.repo_tags().is_empty()) || !self.users(&img.id).is_empty() {
                continue;
            }
            let cfg = self.config(&img).ok().map(|(c, _)| c);
            let labels = cfg
                .as_ref()
                .and_then(|c| c.config.labels.clone())
                .unwrap_or_default();
            let created = cfg
                .as_ref()
                .and_then(|c| c.created.as_deref())
                .and_then(crate::time::parse_rfc3339)
                .unwrap_or(0);
            if !filters.labels_match(&labels) || until.is_some_and(|u| created >= u) {
                continue;
            }
            for n in &img.names {
                self.meta.remove(n).map_err(internal)?;
                let shown = n.parse::<Reference>().map(|r| r.familiar()).unwrap_or(n.clone());
                report.images_deleted.push(DeleteItem::Untagged(shown));
            }
            let (items, freed) = self.delete_image(&img)?;
            report.images_deleted.extend(items);
            report.space_reclaimed += freed;
        }
        self.events.emit("image", "prune", "", Default::default());
        Ok(report)
    }
}
