//! What reads or changes a container's files and settings from outside: `diff` (the writable
//! layer against the image's layers), `export` (the merged root filesystem as a tar stream), and
//! `update` (resources and restart policy, applied to the running container's cgroup).

use std::io::Write;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde_json::{json, Map, Value};

use super::spec;
use super::ContainerService;
use crate::images::{internal, Error};

/// One entry of `GET /containers/{id}/changes`: docker's kinds 0 modified, 1 added, 2 deleted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    pub path: String,
    pub kind: u8,
}

/// Changes of an overlay upper directory against its lower directories (top first).
pub fn diff(upper: &Path, lowers: &[PathBuf]) -> Vec<Change> {
    let mut out = Vec::new();
    let mut stack = vec![PathBuf::new()];
    while let Some(rel) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(upper.join(&rel)) else {
            continue;
        };
        let mut entries: Vec<_> = rd.flatten().collect();
        entries.sort_by_key(|e| e.file_name());
        for e in entries {
            let r = rel.join(e.file_name());
            let Ok(m) = e.path().symlink_metadata() else {
                continue;
            };
            let shown = format!("/{}", r.display());
            // overlayfs whiteout: a character device 0:0.
            if m.file_type().is_char_device() && m.rdev() == 0 {
                out.push(Change { path: shown, kind: 2 });
                continue;
            }
            let in_lower = lowers.iter().any(|l| l.join(&r).symlink_metadata().is_ok());
            out.push(Change {
                path: shown,
                kind: if in_lower { 0 } else { 1 },
            });
            if m.is_dir() {
                stack.push(r);
            }
        }
    }
    out.sort_by(|a, b| a.path.cmp(&b.path));
    hide_runtime_paths(out)
}

/// What the runtime and berth put in every writable layer (mount points and the hosts files) is
/// not the container's change, as docker's init layer keeps it out of `diff`: those entries go,
/// and so do their parent directories when nothing else changed under them.
fn hide_runtime_paths(changes: Vec<Change>) -> Vec<Change> {
    const PLACED: [&str; 6] = [
        "/dev",
        "/proc",
        "/sys",
        "/etc/hostname",
        "/etc/hosts",
        "/etc/resolv.conf",
    ];
    let kept: Vec<Change> = changes
        .into_iter()
        .filter(|c| !PLACED.contains(&c.path.as_str()) || c.kind == 2)
        .collect();
    let parents: Vec<&str> = PLACED
        .iter()
        .filter_map(|p| p.rsplit_once('/').map(|(d, _)| d))
        .filter(|d| !d.is_empty())
        .collect();
    kept.iter()
        .filter(|c| {
            !parents.contains(&c.path.as_str())
                || kept.iter().any(|o| o.path.starts_with(&format!("{}/", c.path)))
        })
        .cloned()
        .collect()
}

impl ContainerService {
    /// `GET /containers/{id}/changes`.
    pub fn changes(&self, input: &str) -> Result<Value, Error> {
        let e = self.get(input)?;
        let r = e.record();
        if r.rootfs_mount.fstype != "overlay" && r.rootfs_mount.fstype != "bind" {
            return Err(Error::Internal(format!(
                "cannot list changes of a {} root filesystem",
                r.rootfs_mount.fstype
            )));
        }
        let dir = self.images.snapshotter().container_dir(&r.snapshot);
        if !dir.join("upper").is_dir() {
            return Err(Error::Internal(
                "berth cannot list changes with the copy storage driver".into(),
            ));
        }
        let img = self.images.resolve(&r.image)?;
        let lowers: Vec<PathBuf> = self
            .images
            .chain_ids(&img)?
            .iter()
            .rev()
            .map(|c| self.images.snapshotter().layer_path(c))
            .collect();
        let changes = diff(&dir.join("upper"), &lowers);
        Ok(json!(changes
            .iter()
            .map(|c| json!({"Path": c.path, "Kind": c.kind}))
            .collect::<Vec<_>>()))
    }

    /// Runs `f` with the container's merged root filesystem mounted (its live mount while it runs,
    /// else a private mount made for the call).
    pub fn with_rootfs<T>(&self, input: &str, f: impl FnOnce(&Path) -> Result<T, Error>) -> Result<T, Error> {
        let e = self.get(input)?;
        let r = e.record();
        let live = self.run_dir(&e.id).join("rootfs");
        if r.state.running {
            return f(&live);
        }
        let tmp = self
            .run_dir(&e.id)
            .join(format!("view-{}", &super::record::new_id()[..12]));
        std::fs::create_dir_all(&tmp).map_err(internal)?;
        let res = super::start::mount_rootfs(&r.rootfs_mount, &tmp).and_then(|()| {
            let out = f(&tmp);
            super::start::unmount(&tmp);
            out
        });
        let _ = std::fs::remove_dir(&tmp);
        res
    }

    /// `GET /containers/{id}/export`: the root filesystem as a tar stream into `w`.
    pub fn export(&self, input: &str, w: &mut dyn Write) -> Result<(), Error> {
        self.with_rootfs(input, |root| {
            let mut b = tar::Builder::new(w);
            b.follow_symlinks(false);
            b.mode(tar::HeaderMode::Complete);
            b.append_dir_all(".", root).map_err(internal)?;
            b.finish().map_err(internal)
        })
    }

    /// `POST /containers/{id}/update`: new resources and restart policy; a running container's
    /// cgroup is changed through `berth-runtime update`.
    pub async fn update(self: &Arc<Self>, input: &str, body: &Value) -> Result<Vec<String>, Error> {
        let e = self.get(input)?;
        let _op = e.op.lock().await;
        let r = e.record();
        let Value::Object(changes) = body else {
            return Err(Error::Invalid("invalid JSON: the body must be an object".into()));
        };
        let mut host: Map<String, Value> = r.host_config.as_object().cloned().unwrap_or_default();
        for (k, v) in changes {
            if k == "RestartPolicy" {
                let p: super::restart::RestartPolicy = serde_json::from_value(v.clone())
                    .map_err(|err| Error::Invalid(format!("invalid RestartPolicy: {err}")))?;
                if p.name.is_empty() {
                    continue;
                }
                p.validate(r.auto_remove())?;
            }
            // Zero means "unchanged" for every resource field, as in dockerd.
            let zero = matches!(v, Value::Null) || v.as_i64() == Some(0) || v.as_str() == Some("");
            if !zero {
                host.insert(k.clone(), v.clone());
            }
        }
        let hc: spec::HostConfig = serde_json::from_value(Value::Object(host.clone()))
            .map_err(|err| Error::Invalid(format!("invalid HostConfig: {err}")))?;
        let cfg = r.config()?;
        let img = self.images.resolve(&r.image)?;
        let (img_cfg, _) = self.images.config(&img)?;
        let composed = spec::compose(&img_cfg.config, &cfg, &hc, &self.permissive_context(&e.id))?;
        if r.state.running {
            let res = composed
                .linux
                .as_ref()
                .and_then(|l| l.resources.clone())
                .unwrap_or_default();
            let file = self.run_dir(&e.id).join("update.json");
            std::fs::write(&file, serde_json::to_vec(&res).map_err(internal)?).map_err(internal)?;
            let out = self
                .runtime_cmd()
                .stderr(std::process::Stdio::piped())
                .args(["update", "-r"])
                .arg(&file)
                .arg(&e.id)
                .output()
                .await
                .map_err(internal)?;
            let _ = std::fs::remove_file(&file);
            if !out.status.success() {
                return Err(Error::Internal(format!(
                    "Cannot update container {}: {}",
                    e.id,
                    String::from_utf8_lossy(&out.stderr).trim()
                )));
            }
        }
        let rec = e.update(&self.data_dir(&e.id), |r| {
            r.host_config = Value::Object(host);
            r.clone()
        })?;
        self.emit("update", &rec, &[]);
        Ok(Vec::new())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runtime_paths_hidden() {
        let c = |p: &str, k: u8| Change {
            path: p.into(),
            kind: k,
        };
        let got = hide_runtime_paths(vec![c("/dev", 1), c("/etc", 0), c("/etc/hosts", 1), c("/tmp", 1)]);
        assert_eq!(got, vec![c("/tmp", 1)]);
    }

    #[test]
    fn diff_against_lower_layers() {
        let d = tempfile::tempdir().unwrap();
        let lower = d.path().join("lower");
        let upper = d.path().join("upper");
        std::fs::create_dir_all(lower.join("etc")).unwrap();
        std::fs::write(lower.join("etc/passwd"), "x").unwrap();
        std::fs::write(lower.join("gone"), "x").unwrap();
        std::fs::create_dir_all(upper.join("etc")).unwrap();
        std::fs::write(upper.join("etc/passwd"), "y").unwrap();
        // Mount points the runtime made: not changes.
        std::fs::create_dir_all(upper.join("proc")).unwrap();
        std::fs::write(upper.join("etc/hosts"), "").unwrap();
        std::fs::create_dir_all(upper.join("new/deep")).unwrap();
        std::fs::write(upper.join("new/deep/f"), "z").unwrap();
        // A whiteout needs mknod (root): without it the deletion is not listed.
        let whiteout = nix::sys::stat::mknod(
            &upper.join("gone"),
            nix::sys::stat::SFlag::S_IFCHR,
            nix::sys::stat::Mode::from_bits_truncate(0o600),
            0,
        )
        .is_ok();
        let got: Vec<(String, u8)> = diff(&upper, &[lower])
            .into_iter()
            .map(|c| (c.path, c.kind))
            .collect();
        let mut want = vec![
            ("/etc".to_string(), 0),
            ("/etc/passwd".to_string(), 0),
            ("/new".to_string(), 1),
            ("/new/deep".to_string(), 1),
            ("/new/deep/f".to_string(), 1),
        ];
        if whiteout {
            want.insert(2, ("/gone".to_string(), 2));
        }
        assert_eq!(got, want);
    }
}

/// Go's `os.FileMode` bits of a file, as the archive stat header carries them.
fn go_mode(m: &std::fs::Metadata) -> u32 {
    let ft = m.file_type();
    let mut mode = m.mode() & 0o777;
    if ft.is_dir() {
        mode |= 1 << 31;
    } else if ft.is_symlink() {
        mode |= 1 << 27;
    } else if ft.is_fifo() {
        mode |= 1 << 25;
    } else if ft.is_socket() {
        mode |= 1 << 24;
    } else if ft.is_char_device() {
        mode |= (1 << 26) | (1 << 21);
    } else if ft.is_block_device() {
        mode |= 1 << 26;
    }
    if m.mode() & 0o4000 != 0 {
        mode |= 1 << 23;
    }
    if m.mode() & 0o2000 != 0 {
        mode |= 1 << 22;
    }
    if m.mode() & 0o1000 != 0 {
        mode |= 1 << 20;
    }
    mode
}

/// Resolves `path` inside the root filesystem at `root` (symlinks and `..` resolved as if `root`
/// were `/`, never through the host's) to the host path of what it names.
fn resolve_in(root: &Path, path: &str, input: &str) -> Result<PathBuf, Error> {
    use std::os::fd::{AsFd, AsRawFd};
    let rel = path.trim_start_matches('/');
    let rel = if rel.is_empty() { "." } else { rel };
    let dir = std::fs::File::open(root).map_err(internal)?;
    let fd = berth_sys::fs::openat2_in_root(
        dir.as_fd(),
        rel,
        libc::O_PATH,
        0,
        berth_sys::fs::ResolveFlags::default(),
    )
    .map_err(|_| Error::NotFound(format!("Could not find the file {path} in container {input}")))?;
    std::fs::read_link(format!("/proc/self/fd/{}", fd.as_raw_fd())).map_err(internal)
}

/// The archive's name for `path`: its last element (`.` for `dir/.`).
fn archive_name(path: &str) -> String {
    if path.ends_with("/.") || path == "." {
        return ".".into();
    }
    let t = path.trim_end_matches('/');
    t.rsplit('/')
        .next()
        .filter(|s| !s.is_empty())
        .unwrap_or("/")
        .to_string()
}

impl ContainerService {
    /// `HEAD /containers/{id}/archive`: the stat of `path` (the `X-Docker-Container-Path-Stat`
    /// header's JSON).
    pub fn archive_stat(&self, input: &str, path: &str) -> Result<Value, Error> {
        self.with_rootfs(input, |root| {
            let real = resolve_in(root, path, input)?;
            let m = real.symlink_metadata().map_err(internal)?;
            let link = if m.file_type().is_symlink() {
                std::fs::read_link(&real)
                    .map(|l| l.display().to_string())
                    .unwrap_or_default()
            } else {
                String::new()
            };
            Ok(json!({
                "name": archive_name(path),
                "size": m.len(),
                "mode": go_mode(&m),
                "mtime": crate::time::format_rfc3339_nanos(m.mtime(), m.mtime_nsec() as u32),
                "linkTarget": link,
            }))
        })
    }

    /// `GET /containers/{id}/archive`: `path` as a tar stream rooted at its last element.
    pub fn archive_get(&self, input: &str, path: &str, w: &mut dyn Write) -> Result<(), Error> {
        self.with_rootfs(input, |root| {
            let real = resolve_in(root, path, input)?;
            let name = archive_name(path);
            let mut b = tar::Builder::new(w);
            b.follow_symlinks(false);
            b.mode(tar::HeaderMode::Complete);
            let m = real.symlink_metadata().map_err(internal)?;
            if m.is_dir() {
                b.append_dir_all(&name, &real).map_err(internal)?;
            } else {
                b.append_path_with_name(&real, &name).map_err(internal)?;
            }
            b.finish().map_err(internal)
        })
    }

    /// `PUT /containers/{id}/archive`: a tar stream unpacked into directory `path`.
    pub fn archive_put(&self, input: &str, path: &str, r: &mut dyn std::io::Read) -> Result<(), Error> {
        self.with_rootfs(input, |root| {
            let real = resolve_in(root, path, input)?;
            if !real.is_dir() {
                return Err(Error::Invalid("extraction point is not a directory".into()));
            }
            let opts = berth_image::unpack::Options {
                mode: berth_image::unpack::Mode2::Flatten,
                ..Default::default()
            };
            berth_image::unpack::apply(r, berth_image::manifest::Compression::None, &real, &opts)
                .map_err(|e| Error::Invalid(format!("extract the archive: {e}")))?;
            Ok(())
        })
    }
}

#[cfg(test)]
mod archive_tests {
    use super::*;

    #[test]
    fn names_and_modes() {
        assert_eq!(archive_name("/etc/hosts"), "hosts");
        assert_eq!(archive_name("/etc/"), "etc");
        assert_eq!(archive_name("/etc/."), ".");
        assert_eq!(archive_name("/"), "/");
        let d = tempfile::tempdir().unwrap();
        let m = d.path().symlink_metadata().unwrap();
        assert_eq!(go_mode(&m) & (1 << 31), 1 << 31);
    }

    #[test]
    fn resolution_stays_inside_the_root() {
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir(d.path().join("etc")).unwrap();
        std::fs::write(d.path().join("etc/f"), "x").unwrap();
        std::os::unix::fs::symlink("/etc/hostname", d.path().join("escape")).unwrap();
        std::os::unix::fs::symlink("../../../etc/f", d.path().join("up")).unwrap();
        assert_eq!(
            resolve_in(d.path(), "/etc/f", "c").unwrap(),
            d.path().join("etc/f").canonicalize().unwrap()
        );
        assert_eq!(
            resolve_in(d.path(), "/up", "c").unwrap(),
            d.path().join("etc/f").canonicalize().unwrap()
        );
        assert!(resolve_in(d.path(), "/escape", "c")
            .unwrap_err()
            .to_string()
            .contains("Could not find"));
    }
}
