//! The container service's side of volumes: mount points planned at create (nothing made when
//! the request is bad), volumes created for them, sources resolved and volumes mounted at each
//! start (copy-up of the image's content into an empty volume), released when the container
//! stops, anonymous volumes removed with `rm -v`.

use std::os::fd::AsFd;
use std::path::Path;

use berth_spec as oci;
use serde_json::{Map, Value};

use super::mounts::{self, Lookups, MountPoint};
use super::record::Record;
use super::ContainerService;
use crate::images::{internal, Error};
use crate::volumes::{copy, CreateOptions, ANONYMOUS_LABEL};

fn strings(v: Option<&Value>) -> Vec<String> {
    v.and_then(Value::as_array)
        .map(|a| a.iter().filter_map(|s| s.as_str().map(String::from)).collect())
        .unwrap_or_default()
}

impl ContainerService {
    /// The volumes named by some container's mount points (container IDs), for the volume service.
    pub fn users_of_volume(&self, name: &str) -> Vec<String> {
        let mut ids: Vec<String> = self
            .all()
            .iter()
            .map(|e| e.record())
            .filter(|r| r.mounts.iter().any(|m| m.typ == "volume" && m.name == name))
            .map(|r| r.id)
            .collect();
        ids.sort();
        ids
    }

    /// The mount points a create request asks for, checked (no volume is made here).
    pub(crate) fn plan_mounts(
        &self,
        config: &Map<String, Value>,
        host: &Map<String, Value>,
    ) -> Result<Vec<MountPoint>, Error> {
        let req = mounts::Request {
            binds: strings(host.get("Binds")),
            mounts: host
                .get("Mounts")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default(),
            volumes_from: strings(host.get("VolumesFrom")),
            volumes: config
                .get("Volumes")
                .and_then(Value::as_object)
                .map(|o| o.keys().cloned().collect())
                .unwrap_or_default(),
        };
        let from = |name: &str| -> Result<Vec<MountPoint>, Error> { Ok(self.get(name)?.record().mounts) };
        let lk = Lookups {
            path_exists: &|p| Path::new(p).exists(),
            container_mounts: &from,
            new_name: &super::record::new_id,
        };
        mounts::plan(&req, &lk)
    }

    /// Creates the volumes the mount points name that do not exist yet, and fills in their
    /// sources; returns the volumes made (for [`ContainerService::undo_volumes`]).
    pub(crate) fn create_volumes(&self, points: &mut [MountPoint]) -> Result<Vec<String>, Error> {
        let mut made = Vec::new();
        for m in points.iter_mut().filter(|m| m.typ == "volume") {
            if !self.volumes.exists(&m.name) {
                let mut labels = m.volume_labels.clone();
                if m.anonymous {
                    labels.insert(ANONYMOUS_LABEL.into(), String::new());
                }
                let opts = CreateOptions {
                    name: m.name.clone(),
                    driver: "local".into(),
                    driver_opts: (!m.volume_options.is_empty()).then(|| m.volume_options.clone()),
                    labels: Some(labels),
                };
                if let Err(e) = self.volumes.create(opts) {
                    self.undo_volumes(&made);
                    return Err(e);
                }
                made.push(m.name.clone());
            }
            m.source = self.volumes.data_path(&m.name).display().to_string();
        }
        Ok(made)
    }

    pub(crate) fn undo_volumes(&self, made: &[String]) {
        for n in made {
            let _ = self.volumes.remove(n, true);
        }
    }

    /// At start: the volumes mounted (and filled from the image when new and empty), bind
    /// sources checked or created; the OCI mounts in the record's order.
    pub(crate) fn mount_volumes(&self, rec: &Record, rootfs: &Path) -> Result<Vec<oci::Mount>, Error> {
        let mut out = Vec::new();
        let mut held: Vec<&str> = Vec::new();
        let result = (|| -> Result<(), Error> {
            for m in &rec.mounts {
                let source = match m.typ.as_str() {
                    "volume" => {
                        let path = self.volumes.mount(&m.name, &rec.id)?;
                        held.push(&m.name);
                        if m.copy_data {
                            copy_up(rootfs, &m.destination, &path)?;
                        }
                        self.volumes.event(
                            "mount",
                            &m.name,
                            &[
                                ("container", rec.id.clone()),
                                ("destination", m.destination.clone()),
                                ("propagation", m.propagation.clone()),
                                ("read/write", m.rw.to_string()),
                            ],
                        );
                        path.display().to_string()
                    }
                    "bind" => {
                        let p = Path::new(&m.source);
                        if !p.exists() {
                            if !m.create_source {
                                return Err(Error::Invalid(format!(
                                    "invalid mount config for type \"bind\": bind source path does not exist: {}",
                                    m.source
                                )));
                            }
                            std::fs::create_dir_all(p)
                                .map_err(|e| internal(format!("create the bind source {}: {e}", m.source)))?;
                        }
                        m.source.clone()
                    }
                    _ => String::new(),
                };
                out.push(m.to_oci(&source));
            }
            Ok(())
        })();
        if let Err(e) = result {
            for n in held {
                self.volumes.unmount(n, &rec.id);
            }
            return Err(e);
        }
        Ok(out)
    }

    /// The container stopped (or failed to start): its volumes are released.
    pub(crate) fn release_volumes(&self, rec: &Record) {
        for m in rec.mounts.iter().filter(|m| m.typ == "volume") {
            self.volumes.unmount(&m.name, &rec.id);
            self.volumes
                .event("unmount", &m.name, &[("container", rec.id.clone())]);
        }
    }

    /// `rm -v` (and auto-removal): the anonymous volumes this container made go, unless another
    /// container uses them; named volumes stay.
    pub(crate) fn remove_anonymous_volumes(&self, rec: &Record) {
        for m in rec.mounts.iter().filter(|m| m.typ == "volume" && m.anonymous) {
            if let Err(e) = self.volumes.remove(&m.name, false) {
                if e.status() != 409 {
                    eprintln!("berthd: remove volume {}: {e}", m.name);
                }
            }
        }
    }
}

/// Copies the image's directory at `dest` (resolved inside `rootfs`, a symlink there cannot lead
/// out) into the volume at `volume` when the volume is empty.
fn copy_up(rootfs: &Path, dest: &str, volume: &Path) -> Result<(), Error> {
    if !copy::is_empty(volume).map_err(internal)? {
        return Ok(());
    }
    let Ok(root) = std::fs::File::open(rootfs) else {
        return Ok(());
    };
    let rel = dest.trim_start_matches('/');
    let fd = match berth_sys::fs::openat2_in_root(
        root.as_fd(),
        rel,
        libc::O_RDONLY | libc::O_DIRECTORY | libc::O_CLOEXEC,
        0,
        berth_sys::fs::ResolveFlags::default(),
    ) {
        Ok(fd) => fd,
        // Nothing (or no directory) there in the image: nothing to copy.
        Err(_) => return Ok(()),
    };
    let src = format!("/proc/self/fd/{}/.", std::os::fd::AsRawFd::as_raw_fd(&fd));
    copy::copy_tree(Path::new(&src), volume).map_err(|e| {
        internal(format!(
            "copy the image's {dest} into volume {}: {e}",
            volume.display()
        ))
    })
}
