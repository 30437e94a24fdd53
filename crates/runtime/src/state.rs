//! A container's state on disk: `<root>/<id>/state.json` (written atomically), the `exec.fifo` that
//! holds a created container until `start`, and the status computed from the live process.

use std::collections::BTreeMap;
use std::fs;
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use berth_spec::{Hooks, IdMapping};
use serde::{Deserialize, Serialize};

use crate::plan::{NamespacePlan, ProcessPlan};

/// The file name of the state inside the container's directory.
pub const STATE_FILE: &str = "state.json";
/// The fifo a created container's init blocks on until `start`.
pub const EXEC_FIFO: &str = "exec.fifo";

#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("container with id exists: {0}")]
    Exists(String),
    #[error("container does not exist")]
    NotFound,
    #[error("invalid container id {0:?}: it must be 1 to 1024 characters of [A-Za-z0-9_+.-] and not start with '.'")]
    BadId(String),
    #[error("create state directory {path}")]
    CreateDir {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("read state {path}")]
    Read {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("parse state {path}")]
    Parse {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error("write state {path}")]
    Write {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("remove state directory {path}")]
    Remove {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

/// The status of a container, as runc reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Creating,
    Created,
    Running,
    Paused,
    Stopped,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Creating => "creating",
            Status::Created => "created",
            Status::Running => "running",
            Status::Paused => "paused",
            Status::Stopped => "stopped",
        }
    }
}

/// What berth keeps about a container (its own format; `runc state`'s JSON is derived from it).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct State {
    pub oci_version: String,
    pub id: String,
    /// The init's pid in the runtime's pid namespace.
    pub pid: i32,
    /// The init's start time (field 22 of /proc/PID/stat), to tell it from a later process with its pid.
    pub pid_start: u64,
    pub bundle: PathBuf,
    pub rootfs: PathBuf,
    /// RFC 3339 with nanoseconds, UTC.
    pub created: String,
    pub annotations: BTreeMap<String, String>,
    pub namespaces: NamespacePlan,
    pub uid_mappings: Vec<IdMapping>,
    pub gid_mappings: Vec<IdMapping>,
    /// The container's process as planned: the defaults of `exec`.
    pub process: ProcessPlan,
    /// The seccomp profile of the container, applied to `exec`'d processes too.
    pub seccomp: Option<berth_spec::Seccomp>,
    pub hooks: Hooks,
    /// The container's cgroup (berth_cgroups::Cgroup as JSON).
    pub cgroup: Option<serde_json::Value>,
    /// Whether `start` has run the poststart hooks already.
    #[serde(default)]
    pub started: bool,
}

/// `runc state`'s document.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct OciState<'a> {
    oci_version: &'a str,
    id: &'a str,
    pid: i32,
    status: &'a str,
    bundle: &'a Path,
    rootfs: &'a Path,
    created: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    annotations: Option<&'a BTreeMap<String, String>>,
    owner: String,
}

/// Checks a container id the way runc does.
pub fn check_id(id: &str) -> Result<(), StateError> {
    let ok = !id.is_empty()
        && id.len() <= 1024
        && !id.starts_with('.')
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_+-.".contains(c));
    if ok {
        Ok(())
    } else {
        Err(StateError::BadId(id.to_string()))
    }
}

/// The directory of container `id` under the state root.
pub fn dir(root: &Path, id: &str) -> PathBuf {
    root.join(id)
}

/// Creates the container's directory; fails if it exists, touching nothing of the other container.
pub fn create_dir(root: &Path, id: &str) -> Result<PathBuf, StateError> {
    check_id(id)?;
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o711)
        .create(root)
        .map_err(|source| StateError::CreateDir {
            path: root.to_path_buf(),
            source,
        })?;
    let d = dir(root, id);
    match fs::DirBuilder::new().mode(0o711).create(&d) {
        Ok(()) => Ok(d),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Err(StateError::Exists(id.to_string())),
        Err(source) => Err(StateError::CreateDir { path: d, source }),
    }
}

impl State {
    /// Loads the state of container `id`.
    pub fn load(root: &Path, id: &str) -> Result<State, StateError> {
        check_id(id).map_err(|_| StateError::NotFound)?;
        let path = dir(root, id).join(STATE_FILE);
        let data = match fs::read(&path) {
            Ok(d) => d,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Err(StateError::NotFound),
            Err(source) => return Err(StateError::Read { path, source }),
        };
        serde_json::from_slice(&data).map_err(|source| StateError::Parse { path, source })
    }

    /// Writes the state atomically (a temporary file renamed over the old one).
    pub fn save(&self, root: &Path) -> Result<(), StateError> {
        let d = dir(root, &self.id);
        let path = d.join(STATE_FILE);
        let tmp = d.join(".state.json.tmp");
        let write = || -> io::Result<()> {
            let mut f = fs::OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .mode(0o600)
                .open(&tmp)?;
            f.write_all(&serde_json::to_vec(self).map_err(io::Error::other)?)?;
            fs::rename(&tmp, &path)
        };
        write().map_err(|source| StateError::Write { path, source })
    }

    /// The container's status now.
    pub fn status(&self, root: &Path) -> Status {
        if !self.alive() {
            return Status::Stopped;
        }
        if dir(root, &self.id).join(EXEC_FIFO).exists() {
            return Status::Created;
        }
        if self.cgroup_frozen() {
            return Status::Paused;
        }
        Status::Running
    }

    /// Whether the init process still exists (and is the same process, not a zombie).
    pub fn alive(&self) -> bool {
        if self.pid <= 0 {
            return false;
        }
        match proc_stat(self.pid) {
            Some((state, start)) => state != 'Z' && state != 'X' && start == self.pid_start,
            None => false,
        }
    }

    fn cgroup_frozen(&self) -> bool {
        self.cgroup
            .as_ref()
            .and_then(|v| serde_json::from_value::<berth_cgroups::Cgroup>(v.clone()).ok())
            .and_then(|c| c.is_frozen().ok())
            .unwrap_or(false)
    }

    /// The JSON `runc state` prints (field order as runc's).
    pub fn oci_json(&self, root: &Path) -> serde_json::Value {
        let status = self.status(root);
        let pid = if status == Status::Stopped { 0 } else { self.pid };
        let doc = OciState {
            oci_version: &self.oci_version,
            id: &self.id,
            pid,
            status: status.as_str(),
            bundle: &self.bundle,
            rootfs: &self.rootfs,
            created: &self.created,
            annotations: (!self.annotations.is_empty()).then_some(&self.annotations),
            owner: owner_name(&dir(root, &self.id)),
        };
        serde_json::to_value(doc).unwrap_or_default()
    }

    /// The state given to hooks on stdin (the OCI state document).
    pub fn hook_json(&self, status: Status) -> String {
        let mut v = serde_json::json!({
            "ociVersion": self.oci_version,
            "id": self.id,
            "status": status.as_str(),
            "pid": self.pid,
            "bundle": self.bundle,
        });
        if !self.annotations.is_empty() {
            v["annotations"] = serde_json::to_value(&self.annotations).unwrap_or_default();
        }
        v.to_string()
    }
}

/// Removes a container's directory (state, fifo, everything).
pub fn remove_dir(root: &Path, id: &str) -> Result<(), StateError> {
    let d = dir(root, id);
    match fs::remove_dir_all(&d) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(source) => Err(StateError::Remove { path: d, source }),
    }
}

/// The ids of every container under `root`, sorted.
pub fn list_ids(root: &Path) -> io::Result<Vec<String>> {
    let mut ids = Vec::new();
    match fs::read_dir(root) {
        Ok(rd) => {
            for e in rd.flatten() {
                let name = e.file_name().to_string_lossy().into_owned();
                if e.path().join(STATE_FILE).exists() {
                    ids.push(name);
                }
            }
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    ids.sort();
    Ok(ids)
}

/// The state letter and the start time (in clock ticks since boot) of a process.
pub fn proc_stat(pid: i32) -> Option<(char, u64)> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after = &stat[stat.rfind(')')? + 1..];
    let mut fields = after.split_whitespace();
    let state = fields.next()?.chars().next()?;
    // After the name: state is field 3; starttime is field 22, i.e. the 19th after state.
    let start = fields.nth(18)?.parse().ok()?;
    Some((state, start))
}

fn owner_name(path: &Path) -> String {
    let uid = fs::metadata(path).map(|m| m.uid()).unwrap_or(0);
    nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(uid))
        .ok()
        .flatten()
        .map(|u| u.name)
        .unwrap_or_else(|| uid.to_string())
}

/// Now as RFC 3339 with nanoseconds in UTC, as Go's time.RFC3339Nano prints it.
pub fn now_rfc3339() -> String {
    let d = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    format_rfc3339(d.as_secs() as i64, d.subsec_nanos())
}

/// Formats a Unix time as RFC 3339 in UTC, trailing zeros of the fraction trimmed as Go does.
pub fn format_rfc3339(secs: i64, nanos: u32) -> String {
    let days = secs.div_euclid(86400);
    let rem = secs.rem_euclid(86400);
    let (y, m, d) = civil_from_days(days);
    let mut s = format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}",
        rem / 3600,
        (rem % 3600) / 60,
        rem % 60
    );
    if nanos > 0 {
        let frac = format!("{nanos:09}");
        s.push('.');
        s.push_str(frac.trim_end_matches('0'));
    }
    s.push('Z');
    s
}

// Howard Hinnant's days -> civil date algorithm.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339() {
        assert_eq!(format_rfc3339(0, 0), "1970-01-01T00:00:00Z");
        assert_eq!(
            format_rfc3339(1_700_000_000, 123_000_000),
            "2023-11-14T22:13:20.123Z"
        );
        assert_eq!(format_rfc3339(951_782_400, 1), "2000-02-29T00:00:00.000000001Z");
    }

    #[test]
    fn ids() {
        assert!(check_id("abc-1_2.3+x").is_ok());
        for bad in ["", ".hidden", "a/b", "..", "a b"] {
            assert!(check_id(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn create_twice_fails_and_keeps_the_first() {
        let tmp = tempfile::tempdir().unwrap();
        let d = create_dir(tmp.path(), "c1").unwrap();
        fs::write(d.join("marker"), b"x").unwrap();
        assert!(matches!(create_dir(tmp.path(), "c1"), Err(StateError::Exists(_))));
        assert!(d.join("marker").exists());
        assert_eq!(
            create_dir(tmp.path(), "c1").unwrap_err().to_string(),
            "container with id exists: c1"
        );
    }

    #[test]
    fn own_process_is_alive_and_a_bogus_one_is_not() {
        let (_, start) = proc_stat(std::process::id() as i32).unwrap();
        let mut s = State {
            oci_version: "1.2.0".into(),
            id: "x".into(),
            pid: std::process::id() as i32,
            pid_start: start,
            bundle: "/b".into(),
            rootfs: "/b/rootfs".into(),
            created: now_rfc3339(),
            annotations: Default::default(),
            namespaces: Default::default(),
            uid_mappings: vec![],
            gid_mappings: vec![],
            process: Default::default(),
            seccomp: None,
            hooks: Default::default(),
            cgroup: None,
            started: false,
        };
        assert!(s.alive());
        s.pid_start += 1;
        assert!(!s.alive());
        let tmp = tempfile::tempdir().unwrap();
        create_dir(tmp.path(), "x").unwrap();
        s.save(tmp.path()).unwrap();
        let back = State::load(tmp.path(), "x").unwrap();
        assert_eq!(back.pid, s.pid);
        assert_eq!(back.status(tmp.path()), Status::Stopped);
        assert_eq!(list_ids(tmp.path()).unwrap(), vec!["x".to_string()]);
        assert!(matches!(
            State::load(tmp.path(), "nope"),
            Err(StateError::NotFound)
        ));
    }
}
