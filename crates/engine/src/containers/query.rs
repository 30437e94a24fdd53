//! Reading containers: `ps` (list with docker's filters), inspect, the log's location, `top`,
//! `stats`, plus pause/unpause and prune, which act on several or on the cgroup.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde_json::{json, Value};

use super::record::Record;
use super::{ContainerService, Entry};
use crate::images::{internal, Error, ImageFilters};

/// `GET /containers/json`'s parameters.
#[derive(Debug, Clone, Default)]
pub struct ListOptions {
    pub all: bool,
    pub limit: Option<usize>,
    pub size: bool,
    pub filters: ImageFilters,
}

const STATUSES: [&str; 7] = [
    "created",
    "restarting",
    "running",
    "removing",
    "paused",
    "exited",
    "dead",
];

/// Disk use of a directory tree (regular files, each inode once; nothing followed).
pub fn du(p: &Path) -> u64 {
    use std::os::unix::fs::MetadataExt;
    let mut seen = std::collections::HashSet::new();
    let mut total = 0;
    let mut stack = vec![p.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else { continue };
        for e in rd.flatten() {
            let Ok(m) = e.path().symlink_metadata() else {
                continue;
            };
            if m.is_dir() {
                stack.push(e.path());
            } else if seen.insert((m.dev(), m.ino())) {
                total += m.len();
            }
        }
    }
    total
}

/// The `exited` filter: no values, or the container exited with one of the codes.
fn exited_matches(codes: &[String], status: &str, code: i64) -> bool {
    codes.is_empty() || (status == "exited" && codes.iter().any(|c| c.parse() == Ok(code)))
}

/// `network=`: on a network of that name, or whose ID starts with it (as dockerd's filter).
fn on_network(r: &Record, v: &str) -> bool {
    r.networks.contains_key(v)
        || r.networks
            .values()
            .any(|e| !e.network_id.is_empty() && e.network_id.starts_with(v))
}

/// `volume=`: a volume of that name (a bind of that source) or a mount at that destination.
fn has_volume(r: &Record, v: &str) -> bool {
    r.mounts.iter().any(|m| {
        m.destination == v
            || if m.name.is_empty() {
                m.source == v
            } else {
                m.name == v
            }
    })
}

/// The `publish`/`expose` filter values as (port, protocol): `80`, `80/udp`, `8000-8010/tcp`.
fn port_filter(key: &str, values: &[String]) -> Result<Vec<(u16, String)>, Error> {
    let mut out = Vec::new();
    for v in values {
        let bad = || Error::Invalid(format!("invalid filter '{key}={v}'"));
        let (ports, proto) = v.split_once('/').unwrap_or((v, "tcp"));
        if !matches!(proto, "tcp" | "udp" | "sctp") {
            return Err(bad());
        }
        let (lo, hi) = ports.split_once('-').unwrap_or((ports, ports));
        let (lo, hi): (u16, u16) = (lo.parse().map_err(|_| bad())?, hi.parse().map_err(|_| bad())?);
        if lo == 0 || hi < lo {
            return Err(bad());
        }
        out.extend((lo..=hi).map(|p| (p, proto.to_string())));
    }
    Ok(out)
}

/// `publish=`/`expose=`: a published host port, or a container port (exposed or published).
fn ports_match(r: &Record, publish: &[(u16, String)], expose: &[(u16, String)]) -> bool {
    if publish.is_empty() && expose.is_empty() {
        return true;
    }
    let running = if r.state.running { r.ports.as_slice() } else { &[] };
    let published = running
        .iter()
        .any(|p| publish.contains(&(p.host_port, p.proto.clone())));
    let private = running
        .iter()
        .map(|p| (p.container_port, p.proto.clone()))
        .chain(r.exposed_ports().iter().filter_map(|k| {
            let (port, proto) = k.split_once('/').unwrap_or((k, "tcp"));
            Some((port.parse().ok()?, proto.to_string()))
        }))
        .any(|p| expose.contains(&p));
    published || private
}

fn label_matches(labels: &serde_json::Map<String, Value>, f: &str) -> bool {
    match f.split_once('=') {
        Some((k, v)) => labels.get(k).and_then(Value::as_str) == Some(v),
        None => labels.contains_key(f),
    }
}

impl ContainerService {
    /// The friendly image name a container shows (`Config.Image`, or its ID when that name now
    /// points at another image).
    fn image_name(&self, r: &Record) -> String {
        let given = r.config.get("Image").and_then(Value::as_str).unwrap_or("");
        match self.images.resolve(given) {
            Ok(img) if img.id.to_string() == r.image => given.to_string(),
            _ => r.image.clone(),
        }
    }

    fn sizes(&self, r: &Record) -> (i64, i64) {
        let rw = du(&self.images.snapshotter().container_dir(&r.snapshot).join("upper")) as i64;
        let image = self
            .images
            .resolve(&r.image)
            .and_then(|i| self.images.size(&i))
            .unwrap_or(0) as i64;
        (rw, rw + image)
    }

    /// `GET /containers/json`.
    pub fn list(&self, o: &ListOptions) -> Result<Vec<Value>, Error> {
        for k in o.filters.0.keys() {
            if !matches!(
                k.as_str(),
                "id" | "name"
                    | "label"
                    | "status"
                    | "exited"
                    | "ancestor"
                    | "before"
                    | "since"
                    | "is-task"
                    | "health"
                    | "network"
                    | "volume"
                    | "publish"
                    | "expose"
            ) {
                return Err(Error::Invalid(format!("invalid filter '{k}'")));
            }
        }
        for s in o.filters.get("status") {
            if !STATUSES.contains(&s.as_str()) {
                return Err(Error::Invalid(format!("invalid filter 'status={s}'")));
            }
        }
        // berth has no health checks (every container's health is "none") and no swarm tasks.
        for h in o.filters.get("health") {
            if !matches!(h.as_str(), "starting" | "healthy" | "unhealthy" | "none") {
                return Err(Error::Invalid(format!(
                    "Unrecognised filter value for health: {h}"
                )));
            }
        }
        let mut tasks_only = false;
        for t in o.filters.get("is-task") {
            match t.as_str() {
                "true" | "1" => tasks_only = true,
                "false" | "0" => {}
                _ => return Err(Error::Invalid(format!("invalid filter 'is-task={t}'"))),
            }
        }
        let unhealthy_only =
            !o.filters.get("health").is_empty() && !o.filters.get("health").iter().any(|h| h == "none");
        let publish = port_filter("publish", o.filters.get("publish"))?;
        let expose = port_filter("expose", o.filters.get("expose"))?;
        let mut recs: Vec<Record> = self.all().iter().map(|e| e.record()).collect();
        recs.sort_by(|a, b| b.created.cmp(&a.created).then(b.id.cmp(&a.id)));
        let created_of = |input: &str| -> Result<String, Error> { Ok(self.get(input)?.record().created) };
        let before = o
            .filters
            .get("before")
            .first()
            .map(|s| created_of(s))
            .transpose()?;
        let since = o
            .filters
            .get("since")
            .first()
            .map(|s| created_of(s))
            .transpose()?;
        let ancestors: Vec<String> = o
            .filters
            .get("ancestor")
            .iter()
            .filter_map(|a| self.images.resolve(a).ok().map(|i| i.id.to_string()))
            .collect();
        let now = crate::time::now_unix();
        let mut out = Vec::new();
        for r in recs {
            let f = &o.filters;
            let status = &r.state.status;
            let shown = o.all || !f.get("status").is_empty() || r.state.running || r.state.restarting;
            if !shown
                || (!f.get("status").is_empty() && !f.get("status").contains(status))
                || (!f.get("id").is_empty() && !f.get("id").iter().any(|i| r.id.starts_with(i.as_str())))
                || (!f.get("name").is_empty()
                    && !f
                        .get("name")
                        .iter()
                        .any(|n| r.short_name().contains(n.trim_start_matches('/'))))
                || !f.get("label").iter().all(|l| label_matches(&r.labels(), l))
                || !exited_matches(f.get("exited"), status, r.state.exit_code)
                || (!f.get("ancestor").is_empty() && !ancestors.contains(&r.image))
                || tasks_only
                || unhealthy_only
                || (!f.get("network").is_empty() && !f.get("network").iter().any(|v| on_network(&r, v)))
                || (!f.get("volume").is_empty() && !f.get("volume").iter().any(|v| has_volume(&r, v)))
                || !ports_match(&r, &publish, &expose)
                || before.as_ref().is_some_and(|b| r.created >= *b)
                || since.as_ref().is_some_and(|s| r.created <= *s)
            {
                continue;
            }
            let size = o.size.then(|| self.sizes(&r));
            out.push(r.summary(&self.image_name(&r), now, size));
            if o.limit.is_some_and(|l| out.len() >= l) {
                break;
            }
        }
        Ok(out)
    }

    /// `GET /containers/{id}/json`.
    pub fn inspect(&self, input: &str, size: bool) -> Result<Value, Error> {
        let e = self.get(input)?;
        let r = e.record();
        let s = size.then(|| self.sizes(&r));
        Ok(r.inspect(&self.execs.of(&e.id), s))
    }

    /// Where a container's log is, whether it has a terminal, and its entry (to know when a
    /// follower should stop).
    pub fn log_source(&self, input: &str) -> Result<(PathBuf, bool, Arc<Entry>), Error> {
        let e = self.get(input)?;
        let r = e.record();
        Ok((r.log_path.clone(), r.tty(), e))
    }

    fn cgroup(&self, id: &str) -> Result<berth_cgroups::Cgroup, Error> {
        let h = berth_cgroups::Hierarchy::detect().map_err(internal)?;
        let path = format!("/berth/{id}");
        Ok(berth_cgroups::plan(&h, Some(&path), id, None, false)
            .map_err(internal)?
            .cgroup)
    }

    fn running(&self, input: &str) -> Result<Arc<Entry>, Error> {
        let e = self.get(input)?;
        if !e.record().state.running {
            return Err(Error::Conflict(format!("Container {} is not running", e.id)));
        }
        Ok(e)
    }

    /// `GET /containers/{id}/top`: the host's `ps` (with `ps_args`, default `-ef`) narrowed to
    /// the container's processes, as dockerd does.
    pub async fn top(&self, input: &str, ps_args: &str) -> Result<Value, Error> {
        let e = self.running(input)?;
        let pids = self.cgroup(&e.id)?.pids().map_err(internal)?;
        let args: Vec<&str> = if ps_args.is_empty() {
            vec!["-ef"]
        } else {
            ps_args.split_whitespace().collect()
        };
        let out = tokio::process::Command::new("ps")
            .args(&args)
            .output()
            .await
            .map_err(|err| Error::Internal(format!("run ps: {err}")))?;
        if !out.status.success() {
            return Err(Error::Internal(format!(
                "ps: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            )));
        }
        parse_ps(&String::from_utf8_lossy(&out.stdout), &pids)
    }

    /// `POST /containers/{id}/pause` and `unpause`.
    pub async fn pause(&self, input: &str, pause: bool) -> Result<(), Error> {
        let e = self.running(input)?;
        let r = e.record();
        if pause && r.state.paused {
            return Err(Error::Conflict(format!("Container {} is already paused", e.id)));
        }
        if !pause && !r.state.paused {
            return Err(Error::Conflict(format!("Container {} is not paused", e.id)));
        }
        let verb = if pause { "pause" } else { "resume" };
        let out = tokio::process::Command::new(&self.cfg.runtime)
            .arg("--root")
            .arg(&self.cfg.runtime_root)
            .args([verb, &e.id])
            .output()
            .await
            .map_err(internal)?;
        if !out.status.success() {
            return Err(Error::Internal(format!(
                "{verb} container {}: {}",
                e.id,
                String::from_utf8_lossy(&out.stderr).trim()
            )));
        }
        let r = e.update(&self.data_dir(&e.id), |r| {
            r.state.paused = pause;
            r.state.status = if pause { "paused" } else { "running" }.into();
            r.clone()
        })?;
        self.emit(if pause { "pause" } else { "unpause" }, &r, &[]);
        Ok(())
    }

    /// One `stats` sample in dockerd's shape.
    pub fn stats(&self, input: &str, pre: Option<&Value>) -> Result<Value, Error> {
        let e = self.get(input)?;
        let r = e.record();
        let read = crate::time::now_rfc3339();
        let zero = json!({"cpu_usage": {"total_usage": 0, "usage_in_kernelmode": 0, "usage_in_usermode": 0}, "throttling_data": {"periods": 0, "throttled_periods": 0, "throttled_time": 0}});
        let pre_cpu = pre
            .and_then(|p| p.get("cpu_stats"))
            .cloned()
            .unwrap_or(zero.clone());
        let preread = pre
            .and_then(|p| p.get("read"))
            .cloned()
            .unwrap_or(json!(super::record::ZERO_TIME));
        if !r.state.running {
            return Ok(json!({
                "read": super::record::ZERO_TIME, "preread": super::record::ZERO_TIME,
                "pids_stats": {}, "blkio_stats": {}, "num_procs": 0, "storage_stats": {},
                "cpu_stats": zero, "precpu_stats": zero, "memory_stats": {},
                "name": r.name, "id": r.id,
            }));
        }
        let s = self.cgroup(&e.id)?.stats().map_err(internal)?;
        let online = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
        let mem_limit = s
            .memory_limit
            .filter(|l| *l < (1 << 62))
            .unwrap_or_else(host_memory);
        Ok(json!({
            "read": read,
            "preread": preread,
            "pids_stats": {"current": s.pids_current.unwrap_or(0), "limit": s.pids_limit},
            "blkio_stats": {"io_service_bytes_recursive": null},
            "num_procs": 0,
            "storage_stats": {},
            "cpu_stats": {
                "cpu_usage": {"total_usage": s.cpu_usage_ns.unwrap_or(0), "usage_in_kernelmode": 0, "usage_in_usermode": 0},
                "system_cpu_usage": system_cpu_ns(),
                "online_cpus": online,
                "throttling_data": {"periods": 0, "throttled_periods": 0, "throttled_time": 0},
            },
            "precpu_stats": pre_cpu,
            "memory_stats": {"usage": s.memory_usage.unwrap_or(0), "limit": mem_limit, "stats": {}},
            "name": r.name,
            "id": r.id,
        }))
    }

    /// `POST /containers/prune`: removes stopped containers (filters `until`, `label`, `label!`).
    pub async fn prune(self: &Arc<Self>, filters: &ImageFilters) -> Result<Value, Error> {
        let until = filters
            .get("until")
            .first()
            .map(|u| {
                crate::time::parse_filter_time(u)
                    .ok_or_else(|| Error::Invalid(format!("invalid filter 'until={u}'")))
            })
            .transpose()?;
        let mut deleted = Vec::new();
        let mut space = 0u64;
        for e in self.all() {
            let r = e.record();
            if r.state.running || r.state.restarting || r.state.paused {
                continue;
            }
            if until.is_some_and(|u| crate::time::parse_rfc3339_nanos(&r.created).unwrap_or(0) >= u) {
                continue;
            }
            let labels = r.labels();
            if !filters.get("label").iter().all(|l| label_matches(&labels, l))
                || filters.get("label!").iter().any(|l| label_matches(&labels, l))
            {
                continue;
            }
            let size = du(&self.images.snapshotter().container_dir(&r.snapshot));
            if self.remove(&e.id, false).await.is_ok() {
                deleted.push(e.id.clone());
                space += size;
            }
        }
        Ok(
            json!({"ContainersDeleted": if deleted.is_empty() { Value::Null } else { json!(deleted) }, "SpaceReclaimed": space}),
        )
    }
}

/// The host's memory (the limit `stats` shows for a container without one).
fn host_memory() -> u64 {
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines()
                .find_map(|l| l.strip_prefix("MemTotal:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        })
        .map(|kb| kb * 1024)
        .unwrap_or(0)
}

/// The host's CPU time in nanoseconds, from `/proc/stat` (as dockerd's `system_cpu_usage`).
fn system_cpu_ns() -> u64 {
    let Ok(s) = std::fs::read_to_string("/proc/stat") else {
        return 0;
    };
    let Some(line) = s.lines().find(|l| l.starts_with("cpu ")) else {
        return 0;
    };
    let ticks: u64 = line
        .split_whitespace()
        .skip(1)
        .take(7)
        .filter_map(|v| v.parse::<u64>().ok())
        .sum();
    ticks * (1_000_000_000 / 100)
}

/// `ps` output narrowed to `pids`: the PID column is found by its title.
pub fn parse_ps(out: &str, pids: &[i32]) -> Result<Value, Error> {
    let mut lines = out.lines();
    let header = lines.next().unwrap_or("");
    let titles: Vec<&str> = header.split_whitespace().collect();
    let pid_col = titles
        .iter()
        .position(|t| *t == "PID")
        .ok_or_else(|| Error::Internal(format!("Couldn't find PID field in ps output: {header}")))?;
    let mut procs = Vec::new();
    for l in lines {
        let fields: Vec<&str> = l.split_whitespace().collect();
        if fields.len() < titles.len() {
            continue;
        }
        let Ok(pid) = fields[pid_col].parse::<i32>() else {
            continue;
        };
        if !pids.contains(&pid) {
            continue;
        }
        // The last column (the command) keeps its spaces.
        let mut row: Vec<String> = fields[..titles.len() - 1].iter().map(|s| s.to_string()).collect();
        row.push(fields[titles.len() - 1..].join(" "));
        procs.push(row);
    }
    Ok(json!({"Titles": titles, "Processes": procs}))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn port_filters() {
        let v = |s: &[&str]| s.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        assert_eq!(
            port_filter("publish", &v(&["80", "53/udp", "8000-8001/tcp"])).unwrap(),
            [(80, "tcp"), (53, "udp"), (8000, "tcp"), (8001, "tcp")].map(|(p, t)| (p, t.to_string()))
        );
        for bad in ["x", "80/icmp", "0", "9-8", "70000"] {
            assert_eq!(
                port_filter("expose", &v(&[bad])).unwrap_err().to_string(),
                format!("invalid filter 'expose={bad}'")
            );
        }
    }

    #[test]
    fn ps_output_narrowed_to_the_container() {
        let out = "UID          PID    PPID  C STIME TTY          TIME CMD\nroot           1       0  0 10:00 ?        00:00:01 /sbin/init\nroot         420     400  0 10:01 ?        00:00:00 sleep 100 now\n";
        let v = parse_ps(out, &[420]).unwrap();
        assert_eq!(v["Titles"][1], "PID");
        assert_eq!(v["Processes"].as_array().unwrap().len(), 1);
        assert_eq!(v["Processes"][0][7], "sleep 100 now");
        assert!(parse_ps("A B\n", &[]).is_err());
    }

    #[test]
    fn labels() {
        let l = json!({"a": "1", "b": ""}).as_object().unwrap().clone();
        assert!(label_matches(&l, "a"));
        assert!(label_matches(&l, "a=1"));
        assert!(!label_matches(&l, "a=2"));
        assert!(!label_matches(&l, "c"));
    }
}
