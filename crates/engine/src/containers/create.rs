//! `POST /containers/create`: the request checked as dockerd checks it, the image's config merged
//! into the container's, a writable snapshot, and the record saved.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde_json::{json, Map, Value};

use super::record::{self, Record, RootfsMount, State};
use super::spec::{self, Config, Context, HostConfig};
use super::{ContainerService, Entry};
use crate::images::{internal, Error};
use crate::networks::EndpointConfig;

/// The parts of a create request.
#[derive(Debug, Clone, Default)]
pub struct CreateRequest {
    pub name: Option<String>,
    pub platform: Option<String>,
    /// The JSON body: docker's `Config` fields, `HostConfig`, `NetworkingConfig`.
    pub body: Value,
}

fn invalid(m: impl Into<String>) -> Error {
    Error::Invalid(m.into())
}

/// docker's `Config` merged with the image's, as dockerd's `merge`: the user's values win;
/// the image's environment fills in names the user did not set; the image's entrypoint and command
/// apply unless the user gave an entrypoint (a user command keeps the image's entrypoint).
pub fn merge_config(user: &mut Map<String, Value>, image: &berth_image::manifest::RunConfig) {
    let empty = |v: Option<&Value>| match v {
        None | Some(Value::Null) => true,
        Some(Value::String(s)) => s.is_empty(),
        Some(Value::Array(a)) => a.is_empty(),
        Some(Value::Object(o)) => o.is_empty(),
        _ => false,
    };
    if empty(user.get("User")) {
        if let Some(u) = &image.user {
            user.insert("User".into(), json!(u));
        }
    }
    let mut env: Vec<String> = user
        .get("Env")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(|s| s.as_str().map(String::from)).collect())
        .unwrap_or_default();
    for ie in image.env.iter().flatten() {
        let key = ie.split_once('=').map(|(k, _)| k).unwrap_or(ie);
        if !env
            .iter()
            .any(|e| e.split_once('=').map(|(k, _)| k).unwrap_or(e) == key)
        {
            env.push(ie.clone());
        }
    }
    user.insert("Env".into(), json!(env));
    if empty(user.get("Entrypoint")) {
        if empty(user.get("Cmd")) {
            user.insert("Cmd".into(), json!(image.cmd));
        }
        user.insert("Entrypoint".into(), json!(image.entrypoint));
    }
    if empty(user.get("WorkingDir")) {
        user.insert(
            "WorkingDir".into(),
            json!(image.working_dir.clone().unwrap_or_default()),
        );
    }
    let mut labels: Map<String, Value> = Map::new();
    for (k, v) in image.labels.iter().flatten() {
        labels.insert(k.clone(), json!(v));
    }
    if let Some(Value::Object(l)) = user.get("Labels") {
        for (k, v) in l {
            labels.insert(k.clone(), v.clone());
        }
    }
    user.insert("Labels".into(), Value::Object(labels));
    if empty(user.get("StopSignal")) {
        if let Some(s) = &image.stop_signal {
            user.insert("StopSignal".into(), json!(s));
        }
    }
    if empty(user.get("ExposedPorts")) {
        if let Some(p) = &image.exposed_ports {
            user.insert("ExposedPorts".into(), json!(p));
        }
    }
    // The image's volumes join the user's (dockerd merges the two sets).
    if let Some(v) = &image.volumes {
        let mut vols = match user.get("Volumes") {
            Some(Value::Object(o)) => o.clone(),
            _ => Map::new(),
        };
        for (k, x) in v {
            vols.entry(k.clone()).or_insert(json!(x));
        }
        user.insert("Volumes".into(), Value::Object(vols));
    }
    for (k, d) in [
        ("Hostname", json!("")),
        ("Domainname", json!("")),
        ("User", json!("")),
        ("AttachStdin", json!(false)),
        ("AttachStdout", json!(false)),
        ("AttachStderr", json!(false)),
        ("Tty", json!(false)),
        ("OpenStdin", json!(false)),
        ("StdinOnce", json!(false)),
        ("OnBuild", Value::Null),
    ] {
        user.entry(k).or_insert(d);
    }
}

/// `HostConfig.LogConfig` checked: json-file (the default) with `max-size` and `max-file`.
pub fn log_options(host: &Value) -> Result<(Option<u64>, Option<u32>), Error> {
    let lc = host.get("LogConfig").cloned().unwrap_or(Value::Null);
    let typ = lc.get("Type").and_then(Value::as_str).unwrap_or("");
    if !matches!(typ, "" | "json-file") {
        return Err(invalid(format!(
            "logger: no log driver named '{typ}' is registered (berth has json-file only)"
        )));
    }
    let mut size = None;
    let mut files = None;
    if let Some(Value::Object(opts)) = lc.get("Config") {
        for (k, v) in opts {
            let v = v.as_str().unwrap_or("");
            match k.as_str() {
                "max-size" => {
                    if v != "-1" {
                        size = Some(
                            parse_size(v)
                                .ok_or_else(|| invalid(format!("invalid value for max-size: {v:?}")))?,
                        );
                    }
                }
                "max-file" => {
                    let n: u32 = v
                        .parse()
                        .ok()
                        .filter(|n| *n >= 1)
                        .ok_or_else(|| invalid(format!("max-file must be a number >= 1: {v:?}")))?;
                    files = Some(n);
                }
                "compress" | "labels" | "env" | "tag" => {}
                other => {
                    return Err(invalid(format!(
                        "unknown log opt '{other}' for json-file log driver"
                    )))
                }
            }
        }
    }
    if files.is_some_and(|n| n > 1) && size.is_none() {
        return Err(invalid("max-file cannot be set without max-size"));
    }
    Ok((size, files))
}

/// go-units' `RAMInBytes`: `10m`, `1g`, `512k`, `100`.
fn parse_size(s: &str) -> Option<u64> {
    let t = s.trim().to_ascii_lowercase();
    let t = t.strip_suffix('b').unwrap_or(&t);
    let (num, mult) = match t.chars().last()? {
        'k' => (&t[..t.len() - 1], 1u64 << 10),
        'm' => (&t[..t.len() - 1], 1 << 20),
        'g' => (&t[..t.len() - 1], 1 << 30),
        't' => (&t[..t.len() - 1], 1 << 40),
        _ => (t, 1),
    };
    let n: f64 = num.parse().ok()?;
    (n > 0.0).then_some((n * mult as f64) as u64)
}

impl ContainerService {
    /// `NetworkMode` normalized into `host` and the container's settings on each of its networks
    /// (dockerd's checks: the networks exist, `--ip`/aliases only where allowed, the container of
    /// `container:NAME` exists).
    fn plan_network(
        &self,
        host: &mut Map<String, Value>,
        body: &Map<String, Value>,
        networking: Option<&Value>,
        warnings: &mut Vec<String>,
    ) -> Result<BTreeMap<String, EndpointConfig>, Error> {
        let mode = host
            .get("NetworkMode")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        if let Some(other) = mode.strip_prefix("container:") {
            if other.is_empty() {
                return Err(invalid(
                    "invalid network mode: container: needs a container name or ID",
                ));
            }
            self.get(other)?;
            if body
                .get("Hostname")
                .and_then(Value::as_str)
                .is_some_and(|h| !h.is_empty())
            {
                return Err(invalid("conflicting options: hostname and the network mode"));
            }
        }
        let endpoints = networking.and_then(|n| n.get("EndpointsConfig"));
        let mac = body.get("MacAddress").and_then(Value::as_str);
        let (mode, eps) = self.networks.plan_container(&mode, endpoints, mac)?;
        let publishes = host
            .get("PortBindings")
            .and_then(Value::as_object)
            .is_some_and(|m| !m.is_empty())
            || host.get("PublishAllPorts").and_then(Value::as_bool) == Some(true);
        if publishes && mode == "host" {
            warnings.push("Published ports are discarded when using host network mode".into());
        }
        if publishes && mode.starts_with("container:") {
            return Err(invalid(
                "conflicting options: port publishing and the container type network mode",
            ));
        }
        host.insert("NetworkMode".into(), json!(mode));
        Ok(eps)
    }

    /// Creates a container; returns its ID and dockerd's warnings.
    pub async fn create(self: &Arc<Self>, req: CreateRequest) -> Result<(String, Vec<String>), Error> {
        let Value::Object(mut body) = req.body else {
            return Err(invalid("invalid JSON: the body must be an object"));
        };
        if let Some(n) = &req.name {
            if !n.is_empty() && !record::valid_name(n) {
                return Err(invalid(format!(
                    "Invalid container name ({n}), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed"
                )));
            }
        }
        let mut host = match body.remove("HostConfig") {
            Some(Value::Object(h)) => h,
            None | Some(Value::Null) => Map::new(),
            Some(_) => return Err(invalid("invalid JSON: HostConfig must be an object")),
        };
        let networking = body.remove("NetworkingConfig");
        let image_name = body
            .get("Image")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        if image_name.is_empty() {
            return Err(invalid("no image given: Config.Image is empty"));
        }
        let images = self.images.clone();
        let name_for_lookup = image_name.clone();
        let img = tokio::task::spawn_blocking(move || images.resolve(&name_for_lookup))
            .await
            .map_err(internal)??;
        let (img_cfg, _) = self.images.config(&img)?;
        if let Some(p) = req.platform.as_deref().filter(|p| !p.is_empty()) {
            let want: berth_image::Platform = p
                .parse()
                .map_err(|e: berth_image::platform::PlatformError| invalid(e.to_string()))?;
            if want.os != img_cfg.os || want.architecture != img_cfg.architecture {
                return Err(Error::NotFound(format!(
                    "image with reference {image_name} was found but its platform ({}/{}) does not match the specified platform ({p})",
                    img_cfg.os, img_cfg.architecture
                )));
            }
        }
        let mut warnings = Vec::new();
        let networks = self.plan_network(&mut host, &body, networking.as_ref(), &mut warnings)?;
        log_options(&Value::Object(host.clone()))?;
        let hc: HostConfig = serde_json::from_value(Value::Object(host.clone()))
            .map_err(|e| invalid(format!("invalid HostConfig: {e}")))?;
        let policy: super::restart::RestartPolicy = host
            .get("RestartPolicy")
            .cloned()
            .map(serde_json::from_value)
            .transpose()
            .map_err(|e| invalid(format!("invalid RestartPolicy: {e}")))?
            .unwrap_or_default();
        let auto_remove = host.get("AutoRemove").and_then(Value::as_bool).unwrap_or(false);
        policy.validate(auto_remove)?;
        if hc.memory > 0 && hc.memory < 6 << 20 {
            return Err(invalid("Minimum memory limit allowed is 6MB"));
        }
        merge_config(&mut body, &img_cfg.config);
        let id = record::new_id();
        let host_net =
            hc.network_mode == "host" || host.get("NetworkMode").and_then(Value::as_str) == Some("host");
        if body
            .get("Hostname")
            .and_then(Value::as_str)
            .unwrap_or("")
            .is_empty()
            && !host_net
            && hc.uts_mode != "host"
        {
            body.insert("Hostname".into(), json!(id[..12]));
        }
        let cfg: Config = serde_json::from_value(Value::Object(body.clone()))
            .map_err(|e| invalid(format!("invalid container config: {e}")))?;
        // A trial composition with permissive lookups: what would fail at every start fails now.
        self.trial_compose(&id, &img_cfg.config, &cfg, &hc)?;
        let mut mount_points = self.plan_mounts(&body, &host)?;

        let name = match req.name.filter(|n| !n.is_empty()) {
            Some(n) => n.trim_start_matches('/').to_string(),
            None => record::generate_name(&|n| self.name_taken(n)),
        };
        let data = self.data_dir(&id);
        std::fs::create_dir_all(&data).map_err(internal)?;
        let images = self.images.clone();
        let (key, img2) = (id.clone(), img.clone());
        let mount = tokio::task::spawn_blocking(move || images.prepare_rootfs(&key, &img2))
            .await
            .map_err(internal)?;
        let mount = match mount {
            Ok(m) => m,
            Err(e) => {
                let _ = std::fs::remove_dir_all(&data);
                return Err(e);
            }
        };
        let made = match self.create_volumes(&mut mount_points) {
            Ok(m) => m,
            Err(e) => {
                let _ = self.images.snapshotter().remove(&id);
                let _ = std::fs::remove_dir_all(&data);
                return Err(e);
            }
        };
        host.entry("LogConfig")
            .or_insert(json!({"Type": "json-file", "Config": {}}));
        let rec = Record {
            id: id.clone(),
            name: format!("/{name}"),
            created: crate::time::now_rfc3339(),
            image: img.id.to_string(),
            config: Value::Object(body),
            host_config: Value::Object(host),
            state: State::default(),
            restart_count: 0,
            manually_stopped: false,
            has_been_started: false,
            snapshot: id.clone(),
            rootfs_mount: RootfsMount {
                fstype: mount.fstype,
                source: mount.source,
                options: mount.options,
            },
            driver: if self.images.storage_driver() == "overlay" {
                "overlay2".into()
            } else {
                self.images.storage_driver().into()
            },
            log_path: data.join(format!("{id}-json.log")),
            hostname_path: data.join("hostname"),
            hosts_path: data.join("hosts"),
            resolv_conf_path: data.join("resolv.conf"),
            shim_pid: 0,
            warnings: warnings.clone(),
            networks,
            sandbox_key: String::new(),
            ports: Vec::new(),
            mounts: mount_points,
        };
        let undo = |svc: &ContainerService| {
            let _ = svc.images.snapshotter().remove(&id);
            let _ = std::fs::remove_dir_all(&data);
            svc.undo_volumes(&made);
        };
        if let Err(e) = rec.save(&data) {
            undo(self);
            return Err(e);
        }
        let entry = Entry::new(rec.clone());
        if let Err(e) = self.insert(entry, &name) {
            undo(self);
            return Err(e);
        }
        self.emit("create", &rec, &[]);
        Ok((id, warnings))
    }

    fn trial_compose(
        &self,
        id: &str,
        image: &berth_image::manifest::RunConfig,
        cfg: &Config,
        hc: &HostConfig,
    ) -> Result<(), Error> {
        spec::compose(image, cfg, hc, &self.permissive_context(id)).map(drop)
    }

    /// A composition context that accepts every user, group and container name: for checking a
    /// configuration without the container's files.
    pub(crate) fn permissive_context<'a>(&self, id: &'a str) -> Context<'a> {
        fn any_user(_: &str) -> Option<(u32, u32)> {
            Some((0, 0))
        }
        fn any_group(_: &str) -> Option<u32> {
            Some(0)
        }
        fn no_groups(_: &str, _: u32) -> Vec<u32> {
            Vec::new()
        }
        fn any_container(_: &str) -> Option<u32> {
            Some(1)
        }
        Context {
            id,
            rootfs: "/",
            cgroup_v2: self.cfg.cgroup_v2,
            user: &any_user,
            group: &any_group,
            groups_of: &no_groups,
            container_pid: &any_container,
            host_device: &spec_host_device,
            default_seccomp: self.cfg.seccomp,
        }
    }
}

/// A host device node for `--device`, from `stat(2)`.
pub(crate) fn spec_host_device(path: &str) -> Option<spec::HostDevice> {
    use std::os::unix::fs::{FileTypeExt, MetadataExt};
    let m = std::fs::metadata(path).ok()?;
    let ft = m.file_type();
    let kind = if ft.is_char_device() {
        "c"
    } else if ft.is_block_device() {
        "b"
    } else {
        return None;
    };
    let rdev = m.rdev();
    Some(spec::HostDevice {
        kind: kind.into(),
        major: nix::sys::stat::major(rdev) as i64,
        minor: nix::sys::stat::minor(rdev) as i64,
        mode: m.mode() & 0o7777,
        uid: m.uid(),
        gid: m.gid(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use berth_image::manifest::RunConfig;

    fn image() -> RunConfig {
        RunConfig {
            env: Some(vec!["PATH=/bin".into(), "A=image".into()]),
            cmd: Some(vec!["sh".into()]),
            entrypoint: None,
            working_dir: Some("/srv".into()),
            labels: Some([("l1".to_string(), "image".to_string())].into()),
            ..Default::default()
        }
    }

    #[test]
    fn merge_like_dockerd() {
        let mut u = json!({"Env": ["A=user"], "Labels": {"l2": "user"}})
            .as_object()
            .unwrap()
            .clone();
        merge_config(&mut u, &image());
        assert_eq!(u["Env"], json!(["A=user", "PATH=/bin"]));
        assert_eq!(u["Cmd"], json!(["sh"]));
        assert_eq!(u["WorkingDir"], json!("/srv"));
        assert_eq!(u["Labels"], json!({"l1": "image", "l2": "user"}));
        assert_eq!(u["Tty"], json!(false));

        let mut with_entry = json!({"Entrypoint": ["/bin/echo"]}).as_object().unwrap().clone();
        merge_config(&mut with_entry, &image());
        assert!(with_entry.get("Cmd").is_none());

        let mut with_cmd = json!({"Cmd": ["ls"]}).as_object().unwrap().clone();
        let mut img = image();
        img.entrypoint = Some(vec!["/init".into()]);
        merge_config(&mut with_cmd, &img);
        assert_eq!(with_cmd["Cmd"], json!(["ls"]));
        assert_eq!(with_cmd["Entrypoint"], json!(["/init"]));
    }

    #[test]
    fn log_config_checked() {
        assert_eq!(log_options(&json!({})).unwrap(), (None, None));
        assert_eq!(
            log_options(
                &json!({"LogConfig": {"Type": "json-file", "Config": {"max-size": "10m", "max-file": "3"}}})
            )
            .unwrap(),
            (Some(10 << 20), Some(3))
        );
        assert!(log_options(&json!({"LogConfig": {"Type": "syslog"}}))
            .unwrap_err()
            .to_string()
            .contains("no log driver named 'syslog'"));
        assert!(log_options(&json!({"LogConfig": {"Config": {"max-file": "3"}}})).is_err());
        assert!(log_options(&json!({"LogConfig": {"Config": {"max-size": "5x"}}})).is_err());
    }
}
