//! A container's record: what berthd keeps about it on disk (`<data-root>/containers/<id>/
//! config.v2.json`, written atomically on every change) and shows in `inspect` and `ps`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::restart::RestartPolicy;
use super::spec::{Config, HostConfig};
use crate::images::{internal, Error};
use crate::networks::ports::PortMap;
use crate::networks::EndpointConfig;

/// Go's zero time, as dockerd prints an unset time.
pub const ZERO_TIME: &str = "0001-01-01T00:00:00Z";

/// `State` of `GET /containers/{id}/json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct State {
    pub status: String,
    pub running: bool,
    pub paused: bool,
    pub restarting: bool,
    #[serde(rename = "OOMKilled")]
    pub oom_killed: bool,
    pub dead: bool,
    pub pid: i64,
    pub exit_code: i64,
    pub error: String,
    pub started_at: String,
    pub finished_at: String,
}

impl Default for State {
    fn default() -> State {
        State {
            status: "created".into(),
            running: false,
            paused: false,
            restarting: false,
            oom_killed: false,
            dead: false,
            pid: 0,
            exit_code: 0,
            error: String::new(),
            started_at: ZERO_TIME.into(),
            finished_at: ZERO_TIME.into(),
        }
    }
}

impl State {
    pub fn set_running(&mut self, pid: i64, at: String) {
        self.status = "running".into();
        self.running = true;
        self.paused = false;
        self.restarting = false;
        self.oom_killed = false;
        self.dead = false;
        self.pid = pid;
        self.exit_code = 0;
        self.error.clear();
        self.started_at = at;
    }

    pub fn set_exited(&mut self, code: i64, oom: bool, at: String, error: Option<String>) {
        self.status = "exited".into();
        self.running = false;
        self.paused = false;
        self.restarting = false;
        self.oom_killed = oom;
        self.pid = 0;
        self.exit_code = code;
        self.error = error.unwrap_or_default();
        self.finished_at = at;
    }

    /// `ps`'s STATUS column as dockerd's `Status` field words it, given the time now (seconds).
    pub fn human(&self, now: i64) -> String {
        let since = |t: &str| crate::time::parse_rfc3339(t).map(|t| (now - t).max(0));
        match self.status.as_str() {
            "running" | "paused" => {
                let up = human_duration(since(&self.started_at).unwrap_or(0));
                if self.paused {
                    format!("Up {up} (Paused)")
                } else {
                    format!("Up {up}")
                }
            }
            "restarting" => format!(
                "Restarting ({}) {} ago",
                self.exit_code,
                human_duration(since(&self.finished_at).unwrap_or(0))
            ),
            "exited" if self.finished_at != ZERO_TIME => format!(
                "Exited ({}) {} ago",
                self.exit_code,
                human_duration(since(&self.finished_at).unwrap_or(0))
            ),
            "exited" | "created" => "Created".into(),
            "removing" => "Removal In Progress".into(),
            "dead" => "Dead".into(),
            other => other.to_string(),
        }
    }
}

/// go-units' `HumanDuration`.
pub fn human_duration(secs: i64) -> String {
    let s = secs;
    if s < 1 {
        return "Less than a second".into();
    }
    if s == 1 {
        return "1 second".into();
    }
    if s < 60 {
        return format!("{s} seconds");
    }
    let m = s / 60;
    if m == 1 {
        return "About a minute".into();
    }
    if m < 60 {
        return format!("{m} minutes");
    }
    let h = (s as f64 / 3600.0).round() as i64;
    if h == 1 {
        return "About an hour".into();
    }
    if h < 48 {
        return format!("{h} hours");
    }
    if h < 24 * 7 * 2 {
        return format!("{} days", h / 24);
    }
    if h < 24 * 30 * 2 {
        return format!("{} weeks", h / 24 / 7);
    }
    if h < 24 * 365 * 2 {
        return format!("{} months", h / 24 / 30);
    }
    format!("{} years", h / 24 / 365)
}

/// How a container's root filesystem is mounted (the snapshotter's answer, kept for every start).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct RootfsMount {
    pub fstype: String,
    pub source: String,
    pub options: Vec<String>,
}

/// What berthd keeps about a container.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Record {
    pub id: String,
    /// With docker's leading slash: `/name`.
    pub name: String,
    pub created: String,
    /// The image's ID (`sha256:...`).
    pub image: String,
    /// The client's `Config`, with the image's defaults merged in as dockerd merges them.
    pub config: Value,
    /// The client's `HostConfig` as given (defaults filled in).
    pub host_config: Value,
    pub state: State,
    pub restart_count: u32,
    pub manually_stopped: bool,
    pub has_been_started: bool,
    /// The snapshot holding the container's writable layer, and how it is mounted.
    pub snapshot: String,
    pub rootfs_mount: RootfsMount,
    pub driver: String,
    pub log_path: PathBuf,
    pub hostname_path: PathBuf,
    pub hosts_path: PathBuf,
    pub resolv_conf_path: PathBuf,
    /// The PID of the shim watching the running container.
    #[serde(default)]
    pub shim_pid: i32,
    #[serde(default)]
    pub warnings: Vec<String>,
    /// The container's settings on each network (by network name), and while it runs what it got.
    #[serde(default)]
    pub networks: BTreeMap<String, EndpointConfig>,
    /// While it runs with a network namespace of berth's: the namespace file.
    #[serde(default)]
    pub sandbox_key: String,
    /// While it runs: the host ports published to it.
    #[serde(default)]
    pub ports: Vec<PortMap>,
    /// Binds, volumes and tmpfs mounts (issue 6).
    #[serde(default)]
    pub mounts: Vec<super::mounts::MountPoint>,
}

impl Record {
    pub fn config(&self) -> Result<Config, Error> {
        serde_json::from_value(self.config.clone()).map_err(internal)
    }

    pub fn host_config(&self) -> Result<HostConfig, Error> {
        serde_json::from_value(self.host_config.clone()).map_err(internal)
    }

    pub fn restart_policy(&self) -> RestartPolicy {
        self.host_config
            .get("RestartPolicy")
            .and_then(|v| serde_json::from_value(v.clone()).ok())
            .unwrap_or_default()
    }

    pub fn auto_remove(&self) -> bool {
        self.host_config
            .get("AutoRemove")
            .and_then(Value::as_bool)
            .unwrap_or(false)
    }

    pub fn tty(&self) -> bool {
        self.config.get("Tty").and_then(Value::as_bool).unwrap_or(false)
    }

    pub fn network_mode(&self) -> String {
        self.host_config
            .get("NetworkMode")
            .and_then(Value::as_str)
            .unwrap_or("none")
            .to_string()
    }

    pub fn short_name(&self) -> &str {
        self.name.trim_start_matches('/')
    }

    pub fn labels(&self) -> serde_json::Map<String, Value> {
        self.config
            .get("Labels")
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default()
    }

    /// `Path` and `Args` (the process's command).
    pub fn path_and_args(&self) -> (String, Vec<String>) {
        let list = |k: &str| -> Vec<String> {
            self.config
                .get(k)
                .and_then(Value::as_array)
                .map(|a| a.iter().filter_map(|x| x.as_str().map(String::from)).collect())
                .unwrap_or_default()
        };
        let mut all = list("Entrypoint");
        all.extend(list("Cmd"));
        if all.is_empty() {
            return (String::new(), Vec::new());
        }
        let path = all.remove(0);
        (path, all)
    }

    pub fn save(&self, dir: &Path) -> Result<(), Error> {
        let p = dir.join("config.v2.json");
        let tmp = dir.join(".config.v2.json.tmp");
        let data = serde_json::to_vec(self).map_err(internal)?;
        std::fs::write(&tmp, data).map_err(internal)?;
        std::fs::rename(&tmp, &p).map_err(internal)
    }

    pub fn load(dir: &Path) -> Result<Record, Error> {
        let p = dir.join("config.v2.json");
        let data = std::fs::read(&p).map_err(|e| internal(format!("read {}: {e}", p.display())))?;
        serde_json::from_slice(&data).map_err(|e| internal(format!("parse {}: {e}", p.display())))
    }

    /// The exposed ports of the container's config (`80/tcp`).
    pub fn exposed_ports(&self) -> Vec<String> {
        self.config
            .get("ExposedPorts")
            .and_then(Value::as_object)
            .map(|m| m.keys().cloned().collect())
            .unwrap_or_default()
    }

    fn networks_shown(&self) -> Value {
        Value::Object(
            self.networks
                .iter()
                .map(|(k, e)| (k.clone(), e.shown()))
                .collect(),
        )
    }

    /// docker's `NetworkSettings`: the first network's address at the top level (dockerd fills
    /// those only for the default bridge), every network under `Networks`.
    fn network_settings(&self) -> Value {
        let bridge = self.networks.get("bridge").filter(|_| self.state.running);
        let top = |f: &dyn Fn(&EndpointConfig) -> Value, empty: Value| bridge.map(f).unwrap_or(empty);
        json!({
            "Bridge": "",
            "SandboxID": if self.sandbox_key.is_empty() { String::new() } else { self.id.clone() },
            "SandboxKey": self.sandbox_key,
            "Ports": if self.state.running && !self.sandbox_key.is_empty() {
                crate::networks::ports::shown(&self.ports, &self.exposed_ports())
            } else { json!({}) },
            "HairpinMode": false,
            "LinkLocalIPv6Address": "",
            "LinkLocalIPv6PrefixLen": 0,
            "SecondaryIPAddresses": null,
            "SecondaryIPv6Addresses": null,
            "EndpointID": top(&|e| json!(e.endpoint_id), json!("")),
            "Gateway": top(&|e| json!(e.gateway.map(|g| g.to_string()).unwrap_or_default()), json!("")),
            "GlobalIPv6Address": top(&|e| json!(e.ip6.map(|g| g.to_string()).unwrap_or_default()), json!("")),
            "GlobalIPv6PrefixLen": top(&|e| json!(e.prefix6), json!(0)),
            "IPAddress": top(&|e| json!(e.ip.map(|g| g.to_string()).unwrap_or_default()), json!("")),
            "IPPrefixLen": top(&|e| json!(e.prefix), json!(0)),
            "IPv6Gateway": top(&|e| json!(e.gateway6.map(|g| g.to_string()).unwrap_or_default()), json!("")),
            "MacAddress": top(&|e| json!(e.mac_address), json!("")),
            "Networks": self.networks_shown(),
        })
    }

    /// `GET /containers/json`'s `Ports`: published ones with their host side, exposed ones without.
    fn ports_summary(&self) -> Value {
        let mut out = Vec::new();
        if self.state.running {
            for p in &self.ports {
                out.push(json!({"IP": p.host_ip.to_string(), "PrivatePort": p.container_port, "PublicPort": p.host_port, "Type": p.proto}));
            }
        }
        for k in self.exposed_ports() {
            let (port, proto) = k.split_once('/').unwrap_or((&k, "tcp"));
            let Ok(port) = port.parse::<u16>() else { continue };
            if !out.iter().any(|o| o["PrivatePort"] == port && o["Type"] == proto) {
                out.push(json!({"PrivatePort": port, "Type": proto}));
            }
        }
        Value::Array(out)
    }

    /// `GET /containers/{id}/json`.
    pub fn inspect(&self, exec_ids: &[String], size: Option<(i64, i64)>) -> Value {
        let (path, args) = self.path_and_args();
        let mut host = self.host_config.clone();
        if let Some(h) = host.as_object_mut() {
            h.insert(
                "RestartPolicy".into(),
                serde_json::to_value(self.restart_policy().shown()).unwrap_or(Value::Null),
            );
        }
        let config = self.config.clone();
        let mut v = json!({
            "Id": self.id,
            "Created": self.created,
            "Path": path,
            "Args": args,
            "State": self.state,
            "Image": self.image,
            "ResolvConfPath": self.resolv_conf_path,
            "HostnamePath": self.hostname_path,
            "HostsPath": self.hosts_path,
            "LogPath": self.log_path,
            "Name": self.name,
            "RestartCount": self.restart_count,
            "Driver": self.driver,
            "Platform": "linux",
            "MountLabel": "",
            "ProcessLabel": "",
            "AppArmorProfile": "",
            "ExecIDs": if exec_ids.is_empty() { Value::Null } else { json!(exec_ids) },
            "HostConfig": host,
            "GraphDriver": {"Name": self.driver, "Data": null},
            "Mounts": self.mounts.iter().map(|m| m.shown()).collect::<Vec<_>>(),
            "Config": config,
            "NetworkSettings": self.network_settings(),
        });
        if let Some((rw, root)) = size {
            v["SizeRw"] = json!(rw);
            v["SizeRootFs"] = json!(root);
        }
        v
    }

    /// One entry of `GET /containers/json`.
    pub fn summary(&self, image_name: &str, now: i64, size: Option<(i64, i64)>) -> Value {
        let (path, args) = self.path_and_args();
        let mut command = path;
        for a in &args {
            command.push(' ');
            command.push_str(a);
        }
        let network_mode = self.network_mode();
        let mut v = json!({
            "Id": self.id,
            "Names": [self.name],
            "Image": image_name,
            "ImageID": self.image,
            "Command": command,
            "Created": crate::time::parse_rfc3339(&self.created).unwrap_or(0),
            "Ports": self.ports_summary(),
            "Labels": self.labels(),
            "State": self.state.status,
            "Status": self.state.human(now),
            "HostConfig": {"NetworkMode": network_mode},
            "NetworkSettings": {"Networks": self.networks_shown()},
            "Mounts": self.mounts.iter().map(|m| m.shown()).collect::<Vec<_>>(),
        });
        if let Some((rw, root)) = size {
            v["SizeRw"] = json!(rw);
            v["SizeRootFs"] = json!(root);
        }
        v
    }
}

/// A fresh random container ID: 64 hex digits, not all digits (docker avoids IDs that look like
/// numbers, which some tools would misread).
pub fn new_id() -> String {
    loop {
        let mut b = [0u8; 32];
        if let Ok(mut f) = std::fs::File::open("/dev/urandom") {
            let _ = std::io::Read::read_exact(&mut f, &mut b);
        }
        let id: String = b.iter().map(|x| format!("{x:02x}")).collect();
        if id[..12].bytes().any(|c| c.is_ascii_alphabetic()) {
            return id;
        }
    }
}

const LEFT: [&str; 24] = [
    "ample",
    "brisk",
    "calm",
    "deep",
    "eager",
    "fair",
    "gentle",
    "hardy",
    "keen",
    "lively",
    "mellow",
    "nimble",
    "proud",
    "quiet",
    "rapid",
    "steady",
    "swift",
    "tidal",
    "trusty",
    "vivid",
    "wandering",
    "windward",
    "young",
    "zesty",
];
const RIGHT: [&str; 24] = [
    "anchor", "beacon", "bollard", "buoy", "cabin", "compass", "current", "dinghy", "galley", "harbor",
    "hull", "jetty", "keel", "lantern", "mast", "mooring", "pier", "quay", "rudder", "sail", "schooner",
    "tide", "wharf", "wake",
];

/// A generated name (`adjective_noun`, a digit added after a clash), as docker names containers
/// that were given none.
pub fn generate_name(taken: &dyn Fn(&str) -> bool) -> String {
    let mut b = [0u8; 4];
    if let Ok(mut f) = std::fs::File::open("/dev/urandom") {
        let _ = std::io::Read::read_exact(&mut f, &mut b);
    }
    let base = format!(
        "{}_{}",
        LEFT[b[0] as usize % LEFT.len()],
        RIGHT[b[1] as usize % RIGHT.len()]
    );
    if !taken(&base) {
        return base;
    }
    for i in 1.. {
        let n = format!("{base}{i}");
        if !taken(&n) {
            return n;
        }
    }
    unreachable!("an unbounded loop returns")
}

/// docker's rule for names: `[a-zA-Z0-9][a-zA-Z0-9_.-]+` (a leading `/` is allowed).
pub fn valid_name(name: &str) -> bool {
    let n = name.strip_prefix('/').unwrap_or(name);
    let b = n.as_bytes();
    b.len() >= 2
        && b[0].is_ascii_alphanumeric()
        && b[1..]
            .iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.' | b'-'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn human_durations_as_go_units() {
        assert_eq!(human_duration(0), "Less than a second");
        assert_eq!(human_duration(1), "1 second");
        assert_eq!(human_duration(45), "45 seconds");
        assert_eq!(human_duration(90), "About a minute");
        assert_eq!(human_duration(600), "10 minutes");
        assert_eq!(human_duration(3600), "About an hour");
        assert_eq!(human_duration(5 * 3600), "5 hours");
        assert_eq!(human_duration(3 * 86400), "3 days");
    }

    #[test]
    fn status_words() {
        let mut s = State::default();
        assert_eq!(s.human(100), "Created");
        s.set_running(42, "1970-01-01T00:00:10Z".into());
        assert_eq!(s.human(13), "Up 3 seconds");
        s.set_exited(3, false, "1970-01-01T00:01:00Z".into(), None);
        assert_eq!(s.human(60 + 120), "Exited (3) 2 minutes ago");
    }

    #[test]
    fn names() {
        assert!(valid_name("web-1"));
        assert!(valid_name("/web_1.a"));
        assert!(!valid_name("a"));
        assert!(!valid_name("-x"));
        assert!(!valid_name("a b"));
        let n = generate_name(&|_| false);
        assert!(valid_name(&n), "{n}");
        let n2 = generate_name(&|n| !n.ends_with('3'));
        assert!(n2.ends_with('3'));
        let id = new_id();
        assert_eq!(id.len(), 64);
    }
}
