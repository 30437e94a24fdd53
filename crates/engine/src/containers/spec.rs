//! The OCI spec of a container, composed from the image's config and docker's `Config` and
//! `HostConfig` (the body of `POST /containers/create`) by small options applied in order, each
//! doing what dockerd does for its part: process, user, capabilities, namespaces, mounts, masked and
//! read-only paths, devices, resources, rlimits, sysctls, security options.
//!
//! Pure: no file is read and nothing is created here; what needs the host or the image's files (user
//! names, other containers' namespaces) comes in through [`Context`].

use std::collections::BTreeMap;

use berth_image::manifest::RunConfig;
use berth_spec as oci;
use serde::{Deserialize, Serialize};

use crate::images::Error;

/// docker's `Config` (the parts that shape the spec).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct Config {
    pub hostname: String,
    pub domainname: String,
    pub user: String,
    pub env: Option<Vec<String>>,
    pub cmd: Option<Vec<String>>,
    pub entrypoint: Option<Vec<String>>,
    pub working_dir: String,
    pub tty: bool,
    pub open_stdin: bool,
    pub labels: Option<BTreeMap<String, String>>,
    pub stop_signal: Option<String>,
    pub stop_timeout: Option<i64>,
    pub image: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct Ulimit {
    pub name: String,
    pub soft: i64,
    pub hard: i64,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct DeviceMapping {
    pub path_on_host: String,
    pub path_in_container: String,
    pub cgroup_permissions: String,
}

/// docker's `HostConfig` (the parts that shape the spec).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct HostConfig {
    pub dns: Option<Vec<String>>,
    pub dns_search: Option<Vec<String>>,
    pub dns_options: Option<Vec<String>>,
    pub extra_hosts: Option<Vec<String>>,
    pub privileged: bool,
    pub cap_add: Option<Vec<String>>,
    pub cap_drop: Option<Vec<String>>,
    pub security_opt: Option<Vec<String>>,
    pub readonly_rootfs: bool,
    pub tmpfs: Option<BTreeMap<String, String>>,
    pub shm_size: i64,
    pub sysctls: Option<BTreeMap<String, String>>,
    pub memory: i64,
    pub memory_swap: i64,
    pub memory_reservation: i64,
    pub nano_cpus: i64,
    pub cpu_shares: i64,
    pub cpu_period: i64,
    pub cpu_quota: i64,
    pub cpuset_cpus: String,
    pub cpuset_mems: String,
    pub pids_limit: Option<i64>,
    pub blkio_weight: u16,
    pub ulimits: Option<Vec<Ulimit>>,
    pub pid_mode: String,
    pub ipc_mode: String,
    pub uts_mode: String,
    pub cgroupns_mode: String,
    pub network_mode: String,
    pub oom_score_adj: i32,
    pub devices: Option<Vec<DeviceMapping>>,
    pub group_add: Option<Vec<String>>,
    pub init: Option<bool>,
}

/// A device node of the host, as `--device` needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostDevice {
    /// `c` or `b`.
    pub kind: String,
    pub major: i64,
    pub minor: i64,
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
}

/// What composing needs from outside.
pub struct Context<'a> {
    /// The container's ID (64 hex); its first 12 are the default hostname.
    pub id: &'a str,
    /// The root filesystem's path (the runtime bundle's `root.path`).
    pub rootfs: &'a str,
    /// Whether the host's cgroups are v2 (docker's default cgroup namespace is private there).
    pub cgroup_v2: bool,
    /// `/etc/passwd`-style lookups in the image: user name -> (uid, gid), group name -> gid.
    pub user: &'a dyn Fn(&str) -> Option<(u32, u32)>,
    pub group: &'a dyn Fn(&str) -> Option<u32>,
    /// The supplementary groups of a uid in the image.
    pub groups_of: &'a dyn Fn(&str, u32) -> Vec<u32>,
    /// `container:NAME` namespaces: the running container's init PID.
    pub container_pid: &'a dyn Fn(&str) -> Option<u32>,
    /// A host device for `--device`.
    pub host_device: &'a dyn Fn(&str) -> Option<HostDevice>,
    /// Whether containers get berth's default seccomp profile (when no `seccomp=` option says
    /// otherwise); false where the host has no seccomp.
    pub default_seccomp: bool,
}

/// The capabilities a docker container has by default.
pub const DEFAULT_CAPS: [&str; 14] = [
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_FSETID",
    "CAP_FOWNER",
    "CAP_MKNOD",
    "CAP_NET_RAW",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETFCAP",
    "CAP_SETPCAP",
    "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT",
    "CAP_KILL",
    "CAP_AUDIT_WRITE",
];

/// Every capability this kernel generation knows (what `ALL` and `--privileged` mean).
pub use berth_spec::CAPABILITIES as ALL_CAPS;

/// Paths hidden from a non-privileged container.
pub const MASKED_PATHS: [&str; 11] = [
    "/proc/asound",
    "/proc/acpi",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/sys/firmware",
    "/sys/devices/virtual/powercap",
];

/// Paths read-only in a non-privileged container.
pub const READONLY_PATHS: [&str; 5] = [
    "/proc/bus",
    "/proc/fs",
    "/proc/irq",
    "/proc/sys",
    "/proc/sysrq-trigger",
];

/// `$PATH` when neither the image nor the user sets one.
pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// docker's default `/dev/shm` size (64 MiB).
pub const DEFAULT_SHM: i64 = 64 << 20;

fn invalid(m: impl Into<String>) -> Error {
    Error::Invalid(m.into())
}

/// `chown`, `CAP_CHOWN`, `Chown` -> `CAP_CHOWN`; an unknown name is docker's error.
pub fn normalize_cap(c: &str, what: &str) -> Result<String, Error> {
    let up = c.trim().to_ascii_uppercase();
    if up == "ALL" {
        return Ok(up);
    }
    let full = if up.starts_with("CAP_") {
        up
    } else {
        format!("CAP_{up}")
    };
    if ALL_CAPS.contains(&full.as_str()) {
        Ok(full)
    } else {
        Err(invalid(format!("invalid {what}: unknown capability: \"{full}\"")))
    }
}

/// The capability set after `--cap-add`/`--cap-drop` (docker's rules: `ALL` in add grants every
/// capability, `ALL` in drop starts from none, an explicit add wins over a drop).
pub fn capabilities(host: &HostConfig) -> Result<Vec<String>, Error> {
    if host.privileged {
        return Ok(ALL_CAPS.iter().map(|s| s.to_string()).collect());
    }
    let add: Vec<String> = host
        .cap_add
        .iter()
        .flatten()
        .map(|c| normalize_cap(c, "CapAdd"))
        .collect::<Result<_, _>>()?;
    let drop: Vec<String> = host
        .cap_drop
        .iter()
        .flatten()
        .map(|c| normalize_cap(c, "CapDrop"))
        .collect::<Result<_, _>>()?;
    let base: Vec<&str> = if add.iter().any(|c| c == "ALL") {
        ALL_CAPS.to_vec()
    } else {
        DEFAULT_CAPS.to_vec()
    };
    let mut out: Vec<String> = if drop.iter().any(|c| c == "ALL") {
        Vec::new()
    } else {
        base.iter()
            .filter(|c| !drop.iter().any(|d| d == *c))
            .map(|c| c.to_string())
            .collect()
    };
    for a in add.iter().filter(|a| *a != "ALL") {
        if !out.contains(a) {
            out.push(a.clone());
        }
    }
    Ok(out)
}

/// The process's arguments: the entrypoint then the command (a given entrypoint drops the image's
/// command unless a command is given too, as docker does).
fn args(image: &RunConfig, cfg: &Config) -> Result<Vec<String>, Error> {
    let entry = cfg
        .entrypoint
        .clone()
        .or_else(|| image.entrypoint.clone())
        .unwrap_or_default();
    let cmd = match (&cfg.cmd, &cfg.entrypoint) {
        (Some(c), _) => c.clone(),
        (None, Some(_)) => Vec::new(),
        (None, None) => image.cmd.clone().unwrap_or_default(),
    };
    let mut a = entry;
    a.extend(cmd);
    if a.is_empty() {
        return Err(invalid("no command specified"));
    }
    Ok(a)
}

/// The environment: the image's, then the container's (later names win), `PATH` defaulted,
/// `HOSTNAME` and `TERM` as docker sets them.
fn env(image: &RunConfig, cfg: &Config, hostname: &str) -> Vec<String> {
    let mut order: Vec<String> = Vec::new();
    let mut vals: BTreeMap<String, String> = BTreeMap::new();
    let mut set = |kv: &str| {
        let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
        if !vals.contains_key(k) {
            order.push(k.to_string());
        }
        vals.insert(k.to_string(), v.to_string());
    };
    set(&format!("PATH={DEFAULT_PATH}"));
    set(&format!("HOSTNAME={hostname}"));
    if cfg.tty {
        set("TERM=xterm");
    }
    for e in image.env.iter().flatten() {
        set(e);
    }
    for e in cfg.env.iter().flatten() {
        // `-e NAME` without a value passes nothing when the client did not resolve it.
        if e.contains('=') {
            set(e);
        }
    }
    order.into_iter().map(|k| format!("{k}={}", vals[&k])).collect()
}

/// `user`, `uid`, `user:group`, `uid:gid` -> (uid, gid, additional gids).
pub(crate) fn user(spec: &str, host: &HostConfig, ctx: &Context) -> Result<oci::User, Error> {
    let (u, g) = match spec.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (spec, None),
    };
    let (uid, mut gid) = if u.is_empty() {
        (0, 0)
    } else if let Ok(n) = u.parse::<u32>() {
        // A uid with no passwd entry gets gid 0, as docker gives it.
        (n, (ctx.user)(u).map(|(_, g)| g).unwrap_or(0))
    } else {
        (ctx.user)(u).ok_or_else(|| {
            invalid(format!(
                "unable to find user {u}: no matching entries in passwd file"
            ))
        })?
    };
    if let Some(g) = g {
        gid = match g.parse::<u32>() {
            Ok(n) => n,
            Err(_) => (ctx.group)(g).ok_or_else(|| {
                invalid(format!(
                    "unable to find group {g}: no matching entries in group file"
                ))
            })?,
        };
    }
    let mut additional = (ctx.groups_of)(u, uid);
    for g in host.group_add.iter().flatten() {
        let n = match g.parse::<u32>() {
            Ok(n) => n,
            Err(_) => (ctx.group)(g).ok_or_else(|| {
                invalid(format!(
                    "unable to find group {g}: no matching entries in group file"
                ))
            })?,
        };
        if !additional.contains(&n) {
            additional.push(n);
        }
    }
    Ok(oci::User {
        uid,
        gid,
        additional_gids: additional,
        ..Default::default()
    })
}

fn mount(dest: &str, typ: &str, source: &str, opts: &[&str]) -> oci::Mount {
    oci::Mount {
        destination: dest.into(),
        typ: Some(typ.into()),
        source: Some(source.into()),
        options: Some(opts.iter().map(|s| s.to_string()).collect()),
        ..Default::default()
    }
}

/// docker's default mounts, `/dev/shm` sized, and `--tmpfs` ones.
fn mounts(host: &HostConfig) -> Result<Vec<oci::Mount>, Error> {
    let shm = if host.shm_size > 0 {
        host.shm_size
    } else {
        DEFAULT_SHM
    };
    let sys_ro = if host.privileged { "rw" } else { "ro" };
    let mut m = vec![
        mount("/proc", "proc", "proc", &["nosuid", "noexec", "nodev"]),
        mount(
            "/dev",
            "tmpfs",
            "tmpfs",
            &["nosuid", "strictatime", "mode=755", "size=65536k"],
        ),
        mount(
            "/dev/pts",
            "devpts",
            "devpts",
            &[
                "nosuid",
                "noexec",
                "newinstance",
                "ptmxmode=0666",
                "mode=0620",
                "gid=5",
            ],
        ),
        mount("/sys", "sysfs", "sysfs", &["nosuid", "noexec", "nodev", sys_ro]),
        mount(
            "/sys/fs/cgroup",
            "cgroup",
            "cgroup",
            &["nosuid", "noexec", "nodev", "relatime", sys_ro],
        ),
        mount("/dev/mqueue", "mqueue", "mqueue", &["nosuid", "noexec", "nodev"]),
    ];
    if host.ipc_mode != "host" && !host.ipc_mode.starts_with("container:") {
        let size = format!("size={}k", shm / 1024);
        m.push(mount(
            "/dev/shm",
            "tmpfs",
            "shm",
            &["nosuid", "noexec", "nodev", "mode=1777", &size],
        ));
    }
    for (dest, opts) in host.tmpfs.iter().flatten() {
        if !dest.starts_with('/') {
            return Err(invalid(format!(
                "invalid mount path for tmpfs: {dest:?} must be absolute"
            )));
        }
        let mut o: Vec<&str> = vec!["nosuid", "nodev", "noexec"];
        o.extend(opts.split(',').filter(|s| !s.is_empty()));
        m.retain(|x| x.destination != *dest);
        m.push(mount(dest, "tmpfs", "tmpfs", &o));
    }
    Ok(m)
}

/// The namespaces for docker's modes (`host`, `container:NAME`, private).
fn namespaces(host: &HostConfig, ctx: &Context) -> Result<Vec<oci::Namespace>, Error> {
    let ns = |typ: &str, path: Option<String>| oci::Namespace {
        typ: typ.into(),
        path,
    };
    let mut out = vec![ns("mount", None)];
    let joined = |mode: &str, typ: &str, what: &str| -> Result<Option<oci::Namespace>, Error> {
        match mode {
            "host" => Ok(None),
            "" | "private" | "shareable" | "none" => Ok(Some(ns(typ, None))),
            m if m.starts_with("container:") => {
                let name = &m["container:".len()..];
                let pid = (ctx.container_pid)(name).ok_or_else(|| {
                    Error::Conflict(format!("cannot join {what} of a non running container: {name}"))
                })?;
                Ok(Some(ns(
                    typ,
                    Some(format!(
                        "/proc/{pid}/ns/{}",
                        if typ == "network" { "net" } else { typ }
                    )),
                )))
            }
            other => Err(invalid(format!("invalid {what} mode: {other}"))),
        }
    };
    for (mode, typ, what) in [
        (&host.pid_mode, "pid", "PID namespace"),
        (&host.ipc_mode, "ipc", "IPC namespace"),
        (&host.uts_mode, "uts", "UTS namespace"),
    ] {
        if let Some(n) = joined(mode, typ, what)? {
            out.push(n);
        }
    }
    match host.network_mode.as_str() {
        "host" => {}
        "" | "none" | "default" | "bridge" => out.push(ns("network", None)),
        m if m.starts_with("container:") => {
            if let Some(n) = joined(m, "network", "network namespace")? {
                out.push(n);
            }
        }
        // A user-defined network (issue 6) also gets a namespace of its own.
        _ => out.push(ns("network", None)),
    }
    let private_cgroup = match host.cgroupns_mode.as_str() {
        "" => ctx.cgroup_v2,
        "private" => true,
        "host" => false,
        other => return Err(invalid(format!("invalid cgroup namespace mode: {other}"))),
    };
    if private_cgroup {
        out.push(ns("cgroup", None));
    }
    Ok(out)
}

/// Resources from docker's flags.
fn resources(host: &HostConfig) -> Result<oci::Resources, Error> {
    let mut r = oci::Resources::default();
    if host.memory < 0 || host.memory_reservation < 0 {
        return Err(invalid("invalid memory: must be positive"));
    }
    if host.memory > 0 && host.memory < 6 << 20 {
        return Err(invalid("Minimum memory limit allowed is 6MB"));
    }
    if host.memory_swap > 0 && host.memory > 0 && host.memory_swap < host.memory {
        return Err(invalid(
            "Minimum memoryswap limit should be larger than memory limit, see usage",
        ));
    }
    if host.memory_swap > 0 && host.memory == 0 {
        return Err(invalid(
            "You should always set the Memory limit when using Memoryswap limit, see usage",
        ));
    }
    if host.memory > 0 || host.memory_reservation > 0 || host.memory_swap != 0 {
        r.memory = Some(oci::Memory {
            limit: (host.memory > 0).then_some(host.memory),
            reservation: (host.memory_reservation > 0).then_some(host.memory_reservation),
            swap: match host.memory_swap {
                0 if host.memory > 0 => Some(host.memory * 2),
                0 => None,
                s => Some(s),
            },
            ..Default::default()
        });
    }
    let mut cpu = oci::Cpu::default();
    if host.nano_cpus < 0 {
        return Err(invalid("invalid value for cpus: must be positive"));
    }
    if host.nano_cpus > 0 && (host.cpu_quota > 0 || host.cpu_period > 0) {
        return Err(invalid(
            "Conflicting options: Nano CPUs and CPU Period cannot both be set",
        ));
    }
    if host.nano_cpus > 0 {
        let ncpu = std::thread::available_parallelism()
            .map(|n| n.get() as i64)
            .unwrap_or(1);
        if host.nano_cpus > ncpu * 1_000_000_000 {
            return Err(invalid(format!(
                "range of CPUs is from 0.01 to {ncpu}.00, as there are only {ncpu} CPUs available"
            )));
        }
        cpu.period = Some(100_000);
        cpu.quota = Some(host.nano_cpus * 100_000 / 1_000_000_000);
    }
    if host.cpu_quota > 0 {
        cpu.quota = Some(host.cpu_quota);
    }
    if host.cpu_period > 0 {
        cpu.period = Some(host.cpu_period as u64);
    }
    if host.cpu_shares < 0 {
        return Err(invalid("invalid CPU shares: must be positive"));
    }
    if host.cpu_shares > 0 {
        cpu.shares = Some(host.cpu_shares as u64);
    }
    if !host.cpuset_cpus.is_empty() {
        cpu.cpus = Some(host.cpuset_cpus.clone());
    }
    if !host.cpuset_mems.is_empty() {
        cpu.mems = Some(host.cpuset_mems.clone());
    }
    if cpu != oci::Cpu::default() {
        r.cpu = Some(cpu);
    }
    if let Some(p) = host.pids_limit.filter(|p| *p != 0) {
        r.pids = Some(oci::Pids {
            limit: if p < 0 { -1 } else { p },
        });
    }
    if host.blkio_weight != 0 {
        if !(10..=1000).contains(&host.blkio_weight) {
            return Err(invalid("Range of blkio weight is from 10 to 1000"));
        }
        r.block_io = Some(oci::BlockIo {
            weight: Some(host.blkio_weight),
            ..Default::default()
        });
    }
    // Devices: nothing but docker's defaults (the runtime adds the standard nodes).
    let rule = |allow: bool, typ: Option<&str>, major: Option<i64>, minor: Option<i64>, access: &str| {
        oci::DeviceCgroup {
            allow,
            typ: typ.map(String::from),
            major,
            minor,
            access: Some(access.into()),
        }
    };
    r.devices = if host.privileged {
        vec![rule(true, None, None, None, "rwm")]
    } else {
        vec![
            rule(false, None, None, None, "rwm"),
            rule(true, Some("c"), None, None, "m"),
            rule(true, Some("b"), None, None, "m"),
            rule(true, Some("c"), Some(1), Some(3), "rwm"),
            rule(true, Some("c"), Some(1), Some(8), "rwm"),
            rule(true, Some("c"), Some(1), Some(7), "rwm"),
            rule(true, Some("c"), Some(5), Some(0), "rwm"),
            rule(true, Some("c"), Some(1), Some(5), "rwm"),
            rule(true, Some("c"), Some(1), Some(9), "rwm"),
            rule(true, Some("c"), Some(5), Some(1), "rwm"),
            rule(true, Some("c"), Some(136), None, "rwm"),
            rule(true, Some("c"), Some(5), Some(2), "rwm"),
            rule(true, Some("c"), Some(10), Some(200), "rwm"),
        ]
    };
    Ok(r)
}

/// `--ulimit`: docker's names (`nofile`) to RLIMIT_*.
fn rlimits(host: &HostConfig) -> Result<Vec<oci::Rlimit>, Error> {
    // No default: like dockerd, a container inherits the limits of whoever starts it.
    let mut out: BTreeMap<String, oci::Rlimit> = BTreeMap::new();
    const NAMES: [&str; 16] = [
        "as",
        "core",
        "cpu",
        "data",
        "fsize",
        "locks",
        "memlock",
        "msgqueue",
        "nice",
        "nofile",
        "nproc",
        "rss",
        "rtprio",
        "rttime",
        "sigpending",
        "stack",
    ];
    for u in host.ulimits.iter().flatten() {
        let name = u.name.to_ascii_lowercase();
        if !NAMES.contains(&name.as_str()) {
            return Err(invalid(format!("invalid ulimit type: {}", u.name)));
        }
        if u.soft > u.hard && u.hard >= 0 {
            return Err(invalid(format!(
                "ulimit soft limit must be less than or equal to hard limit: {} > {}",
                u.soft, u.hard
            )));
        }
        let typ = format!("RLIMIT_{}", name.to_ascii_uppercase());
        let v = |x: i64| if x < 0 { u64::MAX } else { x as u64 };
        out.insert(
            typ.clone(),
            oci::Rlimit {
                typ,
                hard: v(u.hard),
                soft: v(u.soft),
            },
        );
    }
    Ok(out.into_values().collect())
}

/// `--device /dev/x[:/dev/y[:rwm]]` (already split by the client into a mapping).
fn devices(host: &HostConfig, ctx: &Context, spec: &mut oci::Spec) -> Result<(), Error> {
    for d in host.devices.iter().flatten() {
        let hd = (ctx.host_device)(&d.path_on_host).ok_or_else(|| {
            invalid(format!(
                "error gathering device information while adding custom device {:?}: no such file or directory",
                d.path_on_host
            ))
        })?;
        let perms = if d.cgroup_permissions.is_empty() {
            "rwm"
        } else {
            d.cgroup_permissions.as_str()
        };
        if !perms.chars().all(|c| "rwm".contains(c)) {
            return Err(invalid(format!("invalid device cgroup permissions: {perms}")));
        }
        let path = if d.path_in_container.is_empty() {
            &d.path_on_host
        } else {
            &d.path_in_container
        };
        let linux = spec.linux.get_or_insert_with(Default::default);
        linux.devices.push(oci::Device {
            typ: hd.kind.clone(),
            path: path.clone(),
            major: hd.major,
            minor: hd.minor,
            file_mode: Some(hd.mode),
            uid: Some(hd.uid),
            gid: Some(hd.gid),
        });
        if let Some(r) = linux.resources.as_mut() {
            r.devices.push(oci::DeviceCgroup {
                allow: true,
                typ: Some(hd.kind.clone()),
                major: Some(hd.major),
                minor: Some(hd.minor),
                access: Some(perms.into()),
            });
        }
    }
    Ok(())
}

/// `--security-opt`: `no-new-privileges[=true|false]`, `seccomp=unconfined|<profile JSON>`,
/// `apparmor=PROFILE|unconfined`, `label=disable`; anything else is docker's error.
fn security(host: &HostConfig, ctx: &Context, caps: &[String], spec: &mut oci::Spec) -> Result<(), Error> {
    let mut seccomp: Option<oci::Seccomp> = if host.privileged || !ctx.default_seccomp {
        None
    } else {
        // The host platform's architecture is normalized to Go's names (`amd64`), as the profile wants.
        Some(super::seccomp::default_profile(
            &berth_image::Platform::host().architecture,
            caps,
        ))
    };
    let process = spec.process.get_or_insert_with(Default::default);
    for o in host.security_opt.iter().flatten() {
        let (k, v) = o.split_once(['=', ':']).unwrap_or((o.as_str(), ""));
        match k {
            "no-new-privileges" => {
                process.no_new_privileges = match v {
                    "" | "true" => true,
                    "false" => false,
                    _ => return Err(invalid(format!("invalid --security-opt 2: {o:?}"))),
                }
            }
            "seccomp" => {
                seccomp = match v {
                    "unconfined" => None,
                    "" => return Err(invalid(format!("invalid --security-opt: {o:?}"))),
                    json => Some(
                        serde_json::from_str::<oci::Seccomp>(json)
                            .map_err(|e| invalid(format!("decoding seccomp profile failed: {e}")))?,
                    ),
                }
            }
            "apparmor" => {
                process.apparmor_profile = (v != "unconfined" && !v.is_empty()).then(|| v.to_string());
            }
            "label" if v == "disable" || v.starts_with("disable") => {}
            "label" => {
                return Err(invalid(
                    "SELinux labels are not supported by berth (this host has no SELinux): use label=disable",
                ))
            }
            _ => return Err(invalid(format!("invalid --security-opt 1: {o:?}"))),
        }
    }
    spec.linux.get_or_insert_with(Default::default).seccomp = seccomp;
    Ok(())
}

/// Composes the spec (see the module's doc).
pub fn compose(
    image: &RunConfig,
    cfg: &Config,
    host: &HostConfig,
    ctx: &Context,
) -> Result<oci::Spec, Error> {
    if ctx.id.len() < 12 {
        return Err(invalid("container IDs have 64 hex digits"));
    }
    let hostname = if cfg.hostname.is_empty() {
        if host.uts_mode == "host" || host.network_mode == "host" {
            String::new()
        } else {
            ctx.id[..12].to_string()
        }
    } else {
        cfg.hostname.clone()
    };
    let user_spec = if cfg.user.is_empty() {
        image.user.clone().unwrap_or_default()
    } else {
        cfg.user.clone()
    };
    let caps = capabilities(host)?;
    let cwd = if !cfg.working_dir.is_empty() {
        cfg.working_dir.clone()
    } else {
        image
            .working_dir
            .clone()
            .filter(|w| !w.is_empty())
            .unwrap_or_else(|| "/".into())
    };
    if !cwd.starts_with('/') {
        return Err(invalid(format!(
            "the working directory '{cwd}' is invalid, it needs to be an absolute path"
        )));
    }
    let user = user(&user_spec, host, ctx)?;
    // Capabilities: a non-root user keeps only the bounding set (docker's rule), root has them all.
    let effective = if user.uid == 0 { caps.clone() } else { Vec::new() };
    let process = oci::Process {
        terminal: cfg.tty,
        user,
        args: args(image, cfg)?,
        env: env(
            image,
            cfg,
            if hostname.is_empty() {
                "localhost"
            } else {
                &hostname
            },
        ),
        cwd,
        capabilities: Some(oci::Capabilities {
            bounding: Some(caps.clone()),
            effective: Some(effective.clone()),
            permitted: Some(effective),
            inheritable: Some(Vec::new()),
            ambient: Some(Vec::new()),
        }),
        rlimits: rlimits(host)?,
        oom_score_adj: (host.oom_score_adj != 0).then_some(host.oom_score_adj),
        ..Default::default()
    };
    if !(-1000..=1000).contains(&host.oom_score_adj) {
        return Err(invalid(format!(
            "Invalid value {}, range for oom score adj is [-1000, 1000]",
            host.oom_score_adj
        )));
    }
    let linux = oci::Linux {
        namespaces: namespaces(host, ctx)?,
        resources: Some(resources(host)?),
        sysctl: host.sysctls.clone().unwrap_or_default(),
        masked_paths: if host.privileged {
            vec![]
        } else {
            MASKED_PATHS.iter().map(|s| s.to_string()).collect()
        },
        readonly_paths: if host.privileged {
            vec![]
        } else {
            READONLY_PATHS.iter().map(|s| s.to_string()).collect()
        },
        ..Default::default()
    };
    let mut annotations = BTreeMap::new();
    for (k, v) in cfg.labels.iter().flatten() {
        annotations.insert(format!("org.opencontainers.image.label.{k}"), v.clone());
    }
    let mut spec = oci::Spec {
        oci_version: oci::OCI_VERSION.into(),
        process: Some(process),
        root: Some(oci::Root {
            path: ctx.rootfs.into(),
            readonly: host.readonly_rootfs,
        }),
        hostname: (!hostname.is_empty()).then_some(hostname),
        domainname: (!cfg.domainname.is_empty()).then(|| cfg.domainname.clone()),
        mounts: mounts(host)?,
        annotations,
        linux: Some(linux),
        ..Default::default()
    };
    devices(host, ctx, &mut spec)?;
    security(host, ctx, &caps, &mut spec)?;
    Ok(spec)
}

#[cfg(test)]
mod tests;
