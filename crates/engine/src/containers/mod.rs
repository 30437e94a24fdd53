//! Containers through the engine (issue 5): the container service behind the Engine API's
//! container routes. A container is a record on disk (`record.rs`), a writable snapshot, an OCI
//! spec composed at each start (`spec.rs`, `seccomp.rs`, `files.rs`), and while it runs a
//! `berth-shim` that holds its stdio, writes its log and reports its end (`shim.rs`). berthd never
//! clones into namespaces itself: the shim runs `berth-runtime`.
//!
//! ```text
//!   create ──> record + snapshot              (state: created)
//!   start  ──> mount rootfs, compose spec ──> berth-shim ──> runtime create
//!              pending attaches connected ──> START ──> runtime start   (running)
//!   monitor task: WAIT on the shim ──> exit ──> record, "die" event, waiters,
//!              restart policy (back-off) or auto-remove              (exited)
//! ```

pub mod attach;
mod create;
pub mod exec;
pub mod files;
mod fsops;
mod lifecycle;
pub mod logs;
pub mod mounts;
mod net;
mod query;
pub mod record;
pub mod restart;
pub mod seccomp;
pub mod shim;
pub mod spec;
mod start;
mod volumes;

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Instant;

use tokio::sync::{oneshot, watch};

use crate::events::Events;
use crate::images::{Error, ImageService};
use crate::networks::NetworkService;
use crate::volumes::{KernelMounter, VolumeService};
use record::Record;
use restart::Restarts;

pub use create::CreateRequest;
pub use query::ListOptions;

/// Where things live and which programs run containers.
#[derive(Debug, Clone)]
pub struct Config {
    /// `<data-root>/containers`: records, logs, hosts files.
    pub data: PathBuf,
    /// `<exec-root>/containers`: bundles, shim sockets (a tmpfs: gone after a reboot).
    pub run: PathBuf,
    /// `berth-runtime`'s state root.
    pub runtime_root: PathBuf,
    pub runtime: PathBuf,
    pub shim: PathBuf,
    pub cgroup_v2: bool,
    /// Whether the host has seccomp (containers get the default profile).
    pub seccomp: bool,
    /// Default `--log-opt max-size` / `max-file` (docker's defaults: unlimited, 1).
    pub log_max_size: Option<u64>,
    pub log_max_files: Option<u32>,
    /// `<data-root>/volumes`: the local driver's volumes.
    pub volumes: PathBuf,
}

/// Whether the host's cgroups are v2 only (docker's default cgroup namespace is private there).
pub fn host_cgroup_v2() -> bool {
    berth_cgroups::Hierarchy::detect().is_ok_and(|h| h.is_v2())
}

/// Whether the kernel has seccomp (containers then get the default profile).
pub fn host_seccomp() -> bool {
    std::fs::read_to_string("/proc/self/status").is_ok_and(|s| s.contains("\nSeccomp:"))
}

/// What waiters see change: the number of exits so far, the last exit code, and removal.
#[derive(Debug, Clone, Default)]
pub struct Gen {
    pub exits: u64,
    pub last_exit: i64,
    pub last_error: Option<String>,
    pub removed: bool,
}

/// A client waiting to be attached when the container starts: it receives the shim's socket and
/// answers once its attach connection is open.
pub(crate) type PendingAttach = oneshot::Sender<(shim::Conn, oneshot::Sender<()>)>;

/// A container in memory.
pub struct Entry {
    pub id: String,
    pub(crate) rec: Mutex<Record>,
    /// Serializes start, stop, restart and removal.
    pub(crate) op: tokio::sync::Mutex<()>,
    pub(crate) gen: watch::Sender<Gen>,
    pub(crate) pending: Mutex<Vec<PendingAttach>>,
    pub(crate) restarts: Mutex<Restarts>,
    pub(crate) started: Mutex<Option<Instant>>,
}

impl Entry {
    fn new(rec: Record) -> Arc<Entry> {
        Arc::new(Entry {
            id: rec.id.clone(),
            restarts: Mutex::new(Restarts {
                count: rec.restart_count,
                ..Default::default()
            }),
            rec: Mutex::new(rec),
            op: tokio::sync::Mutex::new(()),
            gen: watch::channel(Gen::default()).0,
            pending: Mutex::new(Vec::new()),
            started: Mutex::new(None),
        })
    }

    /// A copy of the record.
    pub fn record(&self) -> Record {
        self.rec.lock().expect("record lock").clone()
    }

    pub(crate) fn update<T>(&self, dir: &Path, f: impl FnOnce(&mut Record) -> T) -> Result<T, Error> {
        let mut r = self.rec.lock().expect("record lock");
        let out = f(&mut r);
        r.save(dir)?;
        Ok(out)
    }

    pub fn subscribe(&self) -> watch::Receiver<Gen> {
        self.gen.subscribe()
    }
}

#[derive(Default)]
struct Table {
    by_id: HashMap<String, Arc<Entry>>,
    /// Name (without the slash) -> ID.
    names: HashMap<String, String>,
}

pub struct ContainerService {
    pub(crate) cfg: Config,
    pub(crate) images: Arc<ImageService>,
    pub(crate) events: Arc<Events>,
    pub(crate) networks: Arc<NetworkService>,
    table: RwLock<Table>,
    pub(crate) execs: exec::Execs,
    pub(crate) volumes: Arc<VolumeService>,
}

impl ContainerService {
    /// Opens the service and loads every container berthd knew (see [`ContainerService::restore`]).
    pub fn open(
        cfg: Config,
        images: Arc<ImageService>,
        events: Arc<Events>,
        networks: Arc<NetworkService>,
    ) -> Result<Arc<ContainerService>, Error> {
        for d in [&cfg.data, &cfg.run, &cfg.runtime_root] {
            std::fs::create_dir_all(d)
                .map_err(|e| Error::Internal(format!("create {}: {e}", d.display())))?;
        }
        let volumes = VolumeService::open(&cfg.volumes, events.clone(), Box::new(KernelMounter))?;
        let svc = Arc::new(ContainerService {
            cfg,
            images,
            events,
            networks,
            table: RwLock::new(Table::default()),
            execs: exec::Execs::default(),
            volumes,
        });
        let mut t = Table::default();
        if let Ok(rd) = std::fs::read_dir(&svc.cfg.data) {
            for e in rd.flatten() {
                match Record::load(&e.path()) {
                    Ok(r) => {
                        t.names.insert(r.short_name().to_string(), r.id.clone());
                        t.by_id.insert(r.id.clone(), Entry::new(r));
                    }
                    Err(err) => eprintln!("berthd: skip container {}: {err}", e.path().display()),
                }
            }
        }
        *svc.table.write().expect("table lock") = t;
        let weak = Arc::downgrade(&svc);
        svc.images.set_users(Arc::new(move |image_id: &str| {
            weak.upgrade()
                .map(|s| s.users_of_image(image_id))
                .unwrap_or_default()
        }));
        let weak = Arc::downgrade(&svc);
        svc.volumes.set_users(Arc::new(move |name: &str| {
            weak.upgrade()
                .map(|s| s.users_of_volume(name))
                .unwrap_or_default()
        }));
        Ok(svc)
    }

    /// The volume service (the API's volume routes use it).
    pub fn volumes(&self) -> &Arc<VolumeService> {
        &self.volumes
    }

    pub fn data_dir(&self, id: &str) -> PathBuf {
        self.cfg.data.join(id)
    }

    pub fn run_dir(&self, id: &str) -> PathBuf {
        self.cfg.run.join(id)
    }

    pub(crate) fn conn(&self, id: &str) -> shim::Conn {
        shim::Conn::new(&self.run_dir(id).join("shim.sock"))
    }

    /// Finds a container by full ID, name (with or without `/`) or unique ID prefix, as dockerd.
    pub fn get(&self, input: &str) -> Result<Arc<Entry>, Error> {
        let t = self.table.read().expect("table lock");
        if let Some(e) = t.by_id.get(input) {
            return Ok(e.clone());
        }
        let name = input.strip_prefix('/').unwrap_or(input);
        if let Some(id) = t.names.get(name) {
            if let Some(e) = t.by_id.get(id) {
                return Ok(e.clone());
            }
        }
        if !input.is_empty() && input.bytes().all(|c| c.is_ascii_hexdigit()) {
            let hits: Vec<&Arc<Entry>> = t
                .by_id
                .iter()
                .filter(|(id, _)| id.starts_with(input))
                .map(|(_, e)| e)
                .collect();
            match hits.len() {
                1 => return Ok(hits[0].clone()),
                0 => {}
                _ => {
                    return Err(Error::Invalid(format!(
                        "multiple IDs found with provided prefix: {input}"
                    )))
                }
            }
        }
        Err(Error::NotFound(format!("No such container: {input}")))
    }

    pub fn all(&self) -> Vec<Arc<Entry>> {
        self.table
            .read()
            .expect("table lock")
            .by_id
            .values()
            .cloned()
            .collect()
    }

    /// Whether any container was made from image `id` (for image removal).
    pub fn users_of_image(&self, image_id: &str) -> Vec<(String, bool)> {
        self.all()
            .iter()
            .map(|e| e.record())
            .filter(|r| r.image == image_id)
            .map(|r| (r.id.clone(), r.state.running))
            .collect()
    }

    fn insert(&self, e: Arc<Entry>, name: &str) -> Result<(), Error> {
        let mut t = self.table.write().expect("table lock");
        if let Some(other) = t.names.get(name) {
            return Err(Error::Conflict(format!(
                "Conflict. The container name \"/{name}\" is already in use by container \"{other}\". You have to remove (or rename) that container to be able to reuse that name."
            )));
        }
        t.names.insert(name.to_string(), e.id.clone());
        t.by_id.insert(e.id.clone(), e);
        Ok(())
    }

    fn name_taken(&self, name: &str) -> bool {
        self.table.read().expect("table lock").names.contains_key(name)
    }

    fn forget(&self, id: &str) {
        let mut t = self.table.write().expect("table lock");
        if let Some(e) = t.by_id.remove(id) {
            let name = e.record().short_name().to_string();
            if t.names.get(&name).map(String::as_str) == Some(id) {
                t.names.remove(&name);
            }
        }
    }

    /// `POST /containers/{id}/rename`.
    pub fn rename(&self, input: &str, new_name: &str) -> Result<(), Error> {
        let e = self.get(input)?;
        let new_name = new_name.strip_prefix('/').unwrap_or(new_name);
        if !record::valid_name(new_name) {
            return Err(Error::Invalid(format!(
                "Invalid container name ({new_name}), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed"
            )));
        }
        let old = e.record().short_name().to_string();
        if old == new_name {
            return Err(Error::Invalid(
                "Renaming a container with the same name as its current name".into(),
            ));
        }
        {
            let mut t = self.table.write().expect("table lock");
            if let Some(other) = t.names.get(new_name) {
                return Err(Error::Conflict(format!(
                    "Conflict. The container name \"/{new_name}\" is already in use by container \"{other}\". You have to remove (or rename) that container to be able to reuse that name."
                )));
            }
            t.names.remove(&old);
            t.names.insert(new_name.to_string(), e.id.clone());
        }
        e.update(&self.data_dir(&e.id), |r| r.name = format!("/{new_name}"))?;
        let mut attrs = self.attrs(&e.record());
        attrs.insert("oldName".into(), format!("/{old}"));
        self.events.emit("container", "rename", &e.id, attrs);
        Ok(())
    }

    /// The attributes dockerd puts on container events: image, name and the labels.
    pub(crate) fn attrs(&self, r: &Record) -> BTreeMap<String, String> {
        let mut a = BTreeMap::new();
        for (k, v) in r.labels() {
            if let Some(s) = v.as_str() {
                a.insert(k, s.to_string());
            }
        }
        let image = r
            .config
            .get("Image")
            .and_then(|v| v.as_str())
            .unwrap_or(&r.image)
            .to_string();
        a.insert("image".into(), image);
        a.insert("name".into(), r.short_name().to_string());
        a
    }

    pub(crate) fn emit(&self, action: &str, r: &Record, extra: &[(&str, String)]) {
        let mut a = self.attrs(r);
        for (k, v) in extra {
            a.insert(k.to_string(), v.clone());
        }
        self.events.emit("container", action, &r.id, a);
    }
}
