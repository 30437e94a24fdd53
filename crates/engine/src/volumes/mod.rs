//! Volumes (issue 6): the `local` driver's named and anonymous volumes behind the Engine API's
//! volume routes and the containers' volume mounts.
//!
//! ```text
//!   <data-root>/volumes/<name>/opts.json   driver, labels, options, creation time
//!   <data-root>/volumes/<name>/_data        the data (or the mount point of `type`/`device`/`o`)
//! ```
//!
//! Who uses a volume is not stored here: the container service answers it from the containers'
//! records (`set_users`), so a volume is in use exactly while a container names it. A volume with
//! options is mounted when its first container starts and unmounted when its last one stops
//! (the set of containers holding it is kept in memory).

pub mod copy;
pub mod local;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::events::Events;
use crate::images::{internal, Error, ImageFilters};
pub use local::ANONYMOUS_LABEL;

/// The side effects of mounting a volume with options: a seam so the service's bookkeeping is
/// tested without root.
pub trait Mounter: Send + Sync {
    fn mount(&self, plan: &local::MountPlan, target: &Path) -> Result<(), String>;
    fn unmount(&self, target: &Path) -> Result<(), String>;
}

/// mount(2) and umount2(2).
pub struct KernelMounter;

impl Mounter for KernelMounter {
    fn mount(&self, p: &local::MountPlan, target: &Path) -> Result<(), String> {
        let fstype = (!p.fstype.is_empty() && p.fstype != "none").then_some(p.fstype.as_str());
        let data = (!p.data.is_empty()).then_some(p.data.as_str());
        nix::mount::mount(Some(p.device.as_str()), target, fstype, p.flags, data).map_err(|e| {
            format!(
                "failed to mount local volume: mount {}:{}: {e}",
                p.device,
                target.display()
            )
        })?;
        // A bind ignores MS_RDONLY on its first call; a remount applies it.
        if p.flags.contains(nix::mount::MsFlags::MS_BIND) && p.flags.contains(nix::mount::MsFlags::MS_RDONLY)
        {
            let f = p.flags | nix::mount::MsFlags::MS_REMOUNT;
            nix::mount::mount(None::<&str>, target, None::<&str>, f, None::<&str>)
                .map_err(|e| format!("failed to mount local volume read-only: {e}"))?;
        }
        Ok(())
    }

    fn unmount(&self, target: &Path) -> Result<(), String> {
        nix::mount::umount2(target, nix::mount::MntFlags::MNT_DETACH)
            .map_err(|e| format!("unmount {}: {e}", target.display()))
    }
}

/// What `opts.json` keeps about a volume.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Meta {
    pub name: String,
    pub driver: String,
    pub labels: Option<BTreeMap<String, String>>,
    pub options: Option<BTreeMap<String, String>>,
    pub created_at: String,
}

impl Meta {
    pub fn anonymous(&self) -> bool {
        self.labels
            .as_ref()
            .is_some_and(|l| l.contains_key(ANONYMOUS_LABEL))
    }
}

/// `POST /volumes/create`'s body.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct CreateOptions {
    pub name: String,
    pub driver: String,
    pub driver_opts: Option<BTreeMap<String, String>>,
    pub labels: Option<BTreeMap<String, String>>,
}

/// Which containers name a volume (container IDs).
pub type Users = Arc<dyn Fn(&str) -> Vec<String> + Send + Sync>;

pub struct VolumeService {
    root: PathBuf,
    events: Arc<Events>,
    mounter: Box<dyn Mounter>,
    table: Mutex<BTreeMap<String, Meta>>,
    users: RwLock<Option<Users>>,
    /// Volumes with options that are mounted: the containers holding each.
    active: Mutex<HashMap<String, BTreeSet<String>>>,
}

fn no_such(name: &str) -> Error {
    Error::NotFound(format!("get {name}: no such volume"))
}

impl VolumeService {
    /// Opens `root` (`<data-root>/volumes`) and loads the volumes there.
    pub fn open(
        root: &Path,
        events: Arc<Events>,
        mounter: Box<dyn Mounter>,
    ) -> Result<Arc<VolumeService>, Error> {
        std::fs::create_dir_all(root).map_err(|e| internal(format!("create {}: {e}", root.display())))?;
        let mut table = BTreeMap::new();
        for e in std::fs::read_dir(root).map_err(internal)?.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if !local::valid_name(&name) || !e.path().join("_data").is_dir() {
                continue;
            }
            let meta = std::fs::read(e.path().join("opts.json"))
                .ok()
                .and_then(|b| serde_json::from_slice::<Meta>(&b).ok())
                .unwrap_or_else(|| Meta {
                    name: name.clone(),
                    driver: "local".into(),
                    labels: None,
                    options: None,
                    created_at: crate::time::now_rfc3339(),
                });
            table.insert(name, meta);
        }
        Ok(Arc::new(VolumeService {
            root: root.to_path_buf(),
            events,
            mounter,
            table: Mutex::new(table),
            users: RwLock::new(None),
            active: Mutex::new(HashMap::new()),
        }))
    }

    /// Tells the service how to find the containers that use a volume.
    pub fn set_users(&self, f: Users) {
        *self.users.write().expect("users lock") = Some(f);
    }

    fn users_of(&self, name: &str) -> Vec<String> {
        match &*self.users.read().expect("users lock") {
            Some(f) => f(name),
            None => Vec::new(),
        }
    }

    /// The `_data` directory of volume `name` (its `Mountpoint`).
    pub fn data_path(&self, name: &str) -> PathBuf {
        self.root.join(name).join("_data")
    }

    pub fn get(&self, name: &str) -> Result<Meta, Error> {
        self.table
            .lock()
            .expect("volume table")
            .get(name)
            .cloned()
            .ok_or_else(|| no_such(name))
    }

    pub fn exists(&self, name: &str) -> bool {
        self.table.lock().expect("volume table").contains_key(name)
    }

    /// Emits a volume event with `driver` and the given attributes.
    pub fn event(&self, action: &str, name: &str, extra: &[(&str, String)]) {
        let mut a = BTreeMap::new();
        a.insert("driver".to_string(), "local".to_string());
        for (k, v) in extra {
            a.insert(k.to_string(), v.clone());
        }
        self.events.emit("volume", action, name, a);
    }

    /// Checks a creation without making anything: the driver, the name, the options.
    pub fn check(&self, opts: &CreateOptions) -> Result<(), Error> {
        if !matches!(opts.driver.as_str(), "" | "local") {
            return Err(Error::NotFound(format!(
                "error looking up volume plugin {}: plugin {:?} not found",
                opts.driver, opts.driver
            )));
        }
        if !opts.name.is_empty() {
            local::check_name(&opts.name)?;
        }
        local::plan(opts.driver_opts.as_ref().unwrap_or(&BTreeMap::new()))
            .map_err(|e| Error::Invalid(format!("create {}: {e}", opts.name)))?;
        Ok(())
    }

    /// `POST /volumes/create`: an existing volume of that name is returned as it is (dockerd); an
    /// empty name makes an anonymous volume.
    pub fn create(&self, mut opts: CreateOptions) -> Result<Meta, Error> {
        self.check(&opts)?;
        if opts.name.is_empty() {
            opts.name = crate::containers::record::new_id();
            opts.labels
                .get_or_insert_with(BTreeMap::new)
                .insert(ANONYMOUS_LABEL.into(), String::new());
        }
        let mut t = self.table.lock().expect("volume table");
        if let Some(m) = t.get(&opts.name) {
            return Ok(m.clone());
        }
        let dir = self.root.join(&opts.name);
        let meta = Meta {
            name: opts.name.clone(),
            driver: "local".into(),
            labels: opts.labels,
            options: opts.driver_opts,
            created_at: crate::time::format_rfc3339_nanos(crate::time::now_unix(), 0),
        };
        let made = (|| -> std::io::Result<()> {
            std::fs::create_dir(&dir)?;
            std::fs::create_dir(dir.join("_data"))?;
            let tmp = dir.join(".opts.json.tmp");
            std::fs::write(&tmp, serde_json::to_vec(&meta).map_err(std::io::Error::other)?)?;
            std::fs::rename(tmp, dir.join("opts.json"))
        })();
        if let Err(e) = made {
            let _ = std::fs::remove_dir_all(&dir);
            return Err(internal(format!("create {}: {e}", opts.name)));
        }
        t.insert(meta.name.clone(), meta.clone());
        drop(t);
        self.event("create", &meta.name, &[]);
        Ok(meta)
    }

    /// A volume in dockerd's shape (`GET /volumes/{name}`).
    pub fn shown(&self, m: &Meta) -> Value {
        json!({
            "CreatedAt": m.created_at,
            "Driver": m.driver,
            "Labels": m.labels,
            "Mountpoint": self.data_path(&m.name),
            "Name": m.name,
            "Options": m.options,
            "Scope": "local",
        })
    }

    pub fn inspect(&self, name: &str) -> Result<Value, Error> {
        Ok(self.shown(&self.get(name)?))
    }

    /// `GET /volumes` with dockerd's filters: `name` (a substring), `driver`, `label`, `label!`,
    /// `dangling`.
    pub fn list(&self, f: &ImageFilters) -> Result<Value, Error> {
        let dangling = f.dangling()?;
        let all: Vec<Meta> = self
            .table
            .lock()
            .expect("volume table")
            .values()
            .cloned()
            .collect();
        let mut out = Vec::new();
        for m in all {
            if !f.get("name").is_empty() && !f.get("name").iter().any(|n| m.name.contains(n.as_str())) {
                continue;
            }
            if !f.get("driver").is_empty() && !f.get("driver").contains(&m.driver) {
                continue;
            }
            if !f.labels_match(&m.labels.clone().unwrap_or_default()) {
                continue;
            }
            if let Some(d) = dangling {
                if self.users_of(&m.name).is_empty() != d {
                    continue;
                }
            }
            out.push(self.shown(&m));
        }
        Ok(json!({"Volumes": out, "Warnings": null}))
    }

    /// `DELETE /volumes/{name}`: refused while a container names it; `force` makes a missing volume
    /// no error (as dockerd).
    pub fn remove(&self, name: &str, force: bool) -> Result<(), Error> {
        let m = match self.get(name) {
            Ok(m) => m,
            Err(_) if force => return Ok(()),
            Err(e) => return Err(e),
        };
        let users = self.users_of(name);
        if !users.is_empty() {
            return Err(Error::Conflict(format!(
                "remove {name}: volume is in use - [{}]",
                users.join(", ")
            )));
        }
        self.destroy(&m)
    }

    fn destroy(&self, m: &Meta) -> Result<(), Error> {
        let dir = self.root.join(&m.name);
        if self
            .active
            .lock()
            .expect("active volumes")
            .remove(&m.name)
            .is_some()
        {
            let _ = self.mounter.unmount(&dir.join("_data"));
        }
        // Renamed first, so a removal cut short leaves no half-volume under the name.
        let trash = self.root.join(format!(".rm-{}", m.name));
        std::fs::rename(&dir, &trash).map_err(|e| internal(format!("remove {}: {e}", m.name)))?;
        self.table.lock().expect("volume table").remove(&m.name);
        if let Err(e) = std::fs::remove_dir_all(&trash) {
            eprintln!("berthd: remove volume {}: {e}", m.name);
        }
        self.event("destroy", &m.name, &[]);
        Ok(())
    }

    /// `POST /volumes/prune`: unused anonymous volumes, or every unused volume with `all=true`,
    /// narrowed by `label`/`label!`.
    pub fn prune(&self, f: &ImageFilters) -> Result<Value, Error> {
        let all = match f.get("all") {
            [] => false,
            [v] if v == "true" || v == "1" => true,
            [v] if v == "false" || v == "0" => false,
            [v] => return Err(Error::Invalid(format!("invalid filter 'all={v}'"))),
            _ => return Err(Error::Invalid("invalid filter: all takes one value".into())),
        };
        let candidates: Vec<Meta> = self
            .table
            .lock()
            .expect("volume table")
            .values()
            .cloned()
            .collect();
        let mut deleted = Vec::new();
        let mut space = 0u64;
        for m in candidates {
            if (!all && !m.anonymous())
                || !f.labels_match(&m.labels.clone().unwrap_or_default())
                || !self.users_of(&m.name).is_empty()
            {
                continue;
            }
            let size = copy::size(&self.data_path(&m.name));
            if self.destroy(&m).is_ok() {
                space += size;
                deleted.push(m.name.clone());
            }
        }
        Ok(json!({
            "VolumesDeleted": if deleted.is_empty() { Value::Null } else { json!(deleted) },
            "SpaceReclaimed": space,
        }))
    }

    /// The volumes with their `UsageData` (size, containers naming them), for `GET /system/df`.
    pub fn usage(&self) -> Vec<Value> {
        let all: Vec<Meta> = self
            .table
            .lock()
            .expect("volume table")
            .values()
            .cloned()
            .collect();
        all.iter()
            .map(|m| {
                let mut v = self.shown(m);
                v["UsageData"] = json!({
                    "Size": copy::size(&self.data_path(&m.name)),
                    "RefCount": self.users_of(&m.name).len(),
                });
                v
            })
            .collect()
    }

    /// Makes volume `name` ready for container `container` and returns its data directory: a
    /// volume with options is mounted by its first user.
    pub fn mount(&self, name: &str, container: &str) -> Result<PathBuf, Error> {
        let m = self.get(name)?;
        let path = self.data_path(name);
        let Some(plan) = local::plan(m.options.as_ref().unwrap_or(&BTreeMap::new()))? else {
            return Ok(path);
        };
        let mut active = self.active.lock().expect("active volumes");
        let holders = active.entry(name.to_string()).or_default();
        if holders.is_empty() {
            if let Err(e) = self.mounter.mount(&plan, &path) {
                active.remove(name);
                return Err(Error::Internal(format!(
                    "error while mounting volume '{}': {e}",
                    path.display()
                )));
            }
        }
        holders.insert(container.to_string());
        Ok(path)
    }

    /// After berthd starts: the running containers' volumes (`(volume, container)`) are held again
    /// without mounting them anew (their mounts outlived the old berthd), and a volume with options
    /// that no running container holds is unmounted (left mounted by a berthd that died).
    pub fn restore(&self, held: &[(String, String)]) {
        let mut active = self.active.lock().expect("active volumes");
        let with_options: Vec<String> = {
            let table = self.table.lock().expect("volume table");
            table
                .values()
                .filter(|m| {
                    local::plan(m.options.as_ref().unwrap_or(&BTreeMap::new())).is_ok_and(|p| p.is_some())
                })
                .map(|m| m.name.clone())
                .collect()
        };
        for (volume, container) in held {
            if with_options.contains(volume) {
                active
                    .entry(volume.clone())
                    .or_default()
                    .insert(container.clone());
            }
        }
        for name in with_options.iter().filter(|n| !active.contains_key(*n)) {
            // Not mounted (the usual case) is fine: nothing to undo.
            let _ = self.mounter.unmount(&self.data_path(name));
        }
    }

    /// Container `container` no longer uses volume `name`: its last user unmounts it.
    pub fn unmount(&self, name: &str, container: &str) {
        let mut active = self.active.lock().expect("active volumes");
        let Some(holders) = active.get_mut(name) else {
            return;
        };
        holders.remove(container);
        if holders.is_empty() {
            active.remove(name);
            if let Err(e) = self.mounter.unmount(&self.data_path(name)) {
                eprintln!("berthd: volume {name}: {e}");
            }
        }
    }
}

#[cfg(test)]
mod tests;
