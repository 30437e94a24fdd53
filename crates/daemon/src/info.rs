//! `GET /version` and `GET /info`: what the daemon is and what the host has, in dockerd's shapes.

use std::sync::Arc;

use serde_json::{json, Value};

use crate::api::{State, API_VERSION, MIN_API};
use crate::http::{json, Resp};

/// What does not change while the daemon runs.
#[derive(Debug, Clone)]
pub struct Static {
    pub id: String,
    pub data_root: String,
    pub insecure_registries: Vec<String>,
    pub debug: bool,
    pub runtime_path: String,
}

fn kernel_release() -> String {
    nix_uname().map(|u| u.1).unwrap_or_default()
}

/// (sysname, release, machine, nodename).
fn nix_uname() -> Option<(String, String, String, String)> {
    let r = std::fs::read_to_string("/proc/sys/kernel/osrelease").ok()?;
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
    Some((
        "Linux".into(),
        r.trim().to_string(),
        std::env::consts::ARCH.to_string(),
        host.trim().to_string(),
    ))
}

fn os_pretty_name() -> String {
    std::fs::read_to_string("/etc/os-release")
        .ok()
        .and_then(|s| {
            s.lines().find_map(|l| {
                l.strip_prefix("PRETTY_NAME=")
                    .map(|v| v.trim_matches('"').to_string())
            })
        })
        .unwrap_or_else(|| "Linux".into())
}

fn mem_total() -> u64 {
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|s| {
            s.lines().find_map(|l| {
                l.strip_prefix("MemTotal:")
                    .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            })
        })
        .map(|kb| kb * 1024)
        .unwrap_or(0)
}

fn cgroup_version() -> &'static str {
    if std::path::Path::new("/sys/fs/cgroup/cgroup.controllers").exists() {
        "2"
    } else {
        "1"
    }
}

pub fn version() -> Value {
    let v = env!("CARGO_PKG_VERSION");
    json!({
        "Platform": {"Name": "berth"},
        "Components": [{
            "Name": "Engine",
            "Version": v,
            "Details": {
                "ApiVersion": API_VERSION,
                "MinAPIVersion": MIN_API,
                "Os": "linux",
                "Arch": berth_image::Platform::host().architecture,
                "KernelVersion": kernel_release(),
                "Experimental": "false",
            }
        }],
        "Version": v,
        "ApiVersion": API_VERSION,
        "MinAPIVersion": MIN_API,
        "GitCommit": option_env!("BERTH_GIT_COMMIT").unwrap_or(""),
        "GoVersion": "",
        "Os": "linux",
        "Arch": berth_image::Platform::host().architecture,
        "KernelVersion": kernel_release(),
        "BuildTime": "",
        "Experimental": false,
    })
}

pub fn info(state: &Arc<State>) -> Resp {
    let s = &state.info;
    let images = state.images.all().map(|v| v.len()).unwrap_or(0);
    let host = nix_uname().map(|u| u.3).unwrap_or_default();
    let ncpu = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    let mut index_configs = serde_json::Map::new();
    index_configs.insert(
        "docker.io".into(),
        json!({"Name": "docker.io", "Mirrors": [], "Secure": true, "Official": true}),
    );
    for r in &s.insecure_registries {
        index_configs.insert(
            r.clone(),
            json!({"Name": r, "Mirrors": [], "Secure": false, "Official": false}),
        );
    }
    json(
        200,
        &json!({
            "ID": s.id,
            "Containers": 0,
            "ContainersRunning": 0,
            "ContainersPaused": 0,
            "ContainersStopped": 0,
            "Images": images,
            "Driver": state.images.storage_driver(),
            "DriverStatus": [["Backing Filesystem", backing_fs(&s.data_root)]],
            "Plugins": {"Volume": [], "Network": [], "Authorization": null, "Log": ["json-file"]},
            "MemoryLimit": true,
            "SwapLimit": true,
            "CpuCfsPeriod": true,
            "CpuCfsQuota": true,
            "CPUShares": true,
            "CPUSet": true,
            "PidsLimit": true,
            "IPv4Forwarding": true,
            "Debug": s.debug,
            "NFd": std::fs::read_dir("/proc/self/fd").map(|d| d.count()).unwrap_or(0),
            "OomKillDisable": false,
            "NGoroutines": 0,
            "SystemTime": berth_engine::time::now_rfc3339(),
            "LoggingDriver": "json-file",
            "CgroupDriver": "cgroupfs",
            "CgroupVersion": cgroup_version(),
            "NEventsListener": 0,
            "KernelVersion": kernel_release(),
            "OperatingSystem": os_pretty_name(),
            "OSVersion": "",
            "OSType": "linux",
            "Architecture": std::env::consts::ARCH,
            "IndexServerAddress": "https://index.docker.io/v1/",
            "RegistryConfig": {
                "AllowNondistributableArtifactsCIDRs": null,
                "AllowNondistributableArtifactsHostnames": null,
                "InsecureRegistryCIDRs": ["127.0.0.0/8", "::1/128"],
                "IndexConfigs": index_configs,
                "Mirrors": null,
            },
            "NCPU": ncpu,
            "MemTotal": mem_total(),
            "GenericResources": null,
            "DockerRootDir": s.data_root,
            "HttpProxy": "",
            "HttpsProxy": "",
            "NoProxy": "",
            "Name": host,
            "Labels": [],
            "ExperimentalBuild": false,
            "ServerVersion": env!("CARGO_PKG_VERSION"),
            "Runtimes": {"berth-runtime": {"path": s.runtime_path}},
            "DefaultRuntime": "berth-runtime",
            "Swarm": {
                "NodeID": "",
                "NodeAddr": "",
                "LocalNodeState": "inactive",
                "ControlAvailable": false,
                "Error": "",
                "RemoteManagers": null,
            },
            "LiveRestoreEnabled": false,
            "Isolation": "",
            "InitBinary": "",
            "ContainerdCommit": {"ID": ""},
            "RuncCommit": {"ID": ""},
            "InitCommit": {"ID": ""},
            "SecurityOptions": security_options(),
            "Warnings": [],
        }),
    )
}

/// The filesystem type of the data root (as dockerd's "Backing Filesystem").
fn backing_fs(root: &str) -> String {
    let Ok(mounts) = std::fs::read_to_string("/proc/self/mounts") else {
        return String::new();
    };
    let mut best = ("", "");
    for l in mounts.lines() {
        let f: Vec<&str> = l.split_whitespace().collect();
        if f.len() > 2 && root.starts_with(f[1]) && f[1].len() >= best.0.len() {
            best = (f[1], f[2]);
        }
    }
    best.1.to_string()
}

fn security_options() -> Vec<String> {
    let mut v = vec!["name=seccomp,profile=builtin".to_string()];
    if std::path::Path::new("/sys/kernel/security/apparmor").exists() {
        v.insert(0, "name=apparmor".into());
    }
    if cgroup_version() == "2" {
        v.push("name=cgroupns".into());
    }
    v
}
