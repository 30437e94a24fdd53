//! The flags of `run` and `create` (docker's `addFlags` plus each command's own), with the
//! checks pflag's typed values and docker's list validators do while parsing.

use crate::args::{bool_flag, list_flag, value_flag, Flag};
use crate::goparse::{
    check_cpus, check_duration, check_i64, check_ram, check_swap, check_u16, check_u64, check_ulimit,
    parse_u16, ram_in_bytes,
};

/// docker's `validateAttach`.
fn check_attach(v: &str) -> Result<(), String> {
    match v.to_lowercase().as_str() {
        "stdin" | "stdout" | "stderr" => Ok(()),
        _ => Err("valid streams are STDIN, STDOUT and STDERR".into()),
    }
}

/// docker's `ValidateEnv` (the lookup of a bare name happens when the body is built).
fn check_env(v: &str) -> Result<(), String> {
    match v.split_once('=').map(|(k, _)| k).unwrap_or(v) {
        "" => Err(format!("invalid environment variable: {v}")),
        _ => Ok(()),
    }
}

/// docker's `ValidateLabel`.
pub fn check_label(v: &str) -> Result<(), String> {
    let key = v.split_once('=').map(|(k, _)| k).unwrap_or(v);
    let key = key.trim_start_matches([' ', '\t', '\n', '\u{b}', '\u{c}', '\r']);
    if key.is_empty() {
        return Err(format!("invalid label '{v}': empty name"));
    }
    if key.contains(char::is_whitespace) {
        return Err(format!("label '{key}' contains whitespaces"));
    }
    Ok(())
}

/// docker's `ValidateSysctl`.
fn check_sysctl(v: &str) -> Result<(), String> {
    const ALLOWED: &[&str] = &[
        "kernel.msgmax",
        "kernel.msgmnb",
        "kernel.msgmni",
        "kernel.sem",
        "kernel.shmall",
        "kernel.shmmax",
        "kernel.shmmni",
        "kernel.shm_rmid_forced",
    ];
    match v.split_once('=') {
        Some((k, _))
            if !k.is_empty()
                && (ALLOWED.contains(&k) || k.starts_with("net.") || k.starts_with("fs.mqueue.")) =>
        {
            Ok(())
        }
        _ => Err(format!("sysctl '{v}' is not allowed")),
    }
}

/// Go's `net.ParseIP` acceptance.
pub fn is_ip(v: &str) -> bool {
    v.parse::<std::net::IpAddr>().is_ok()
}

/// docker's `ValidateIPAddress`.
fn check_ip(v: &str) -> Result<(), String> {
    if is_ip(v.trim()) {
        Ok(())
    } else {
        Err(format!("IP address is not correctly formatted: {v}"))
    }
}

/// docker's `ValidateDNSSearch`.
fn check_dns_search(v: &str) -> Result<(), String> {
    let v = v.trim_matches(' ');
    if v == "." {
        return Ok(());
    }
    let d = v.strip_prefix('.').unwrap_or(v);
    let ok = v.chars().any(|c| c.is_ascii_alphabetic())
        && !d.is_empty()
        && d.len() < 255
        && d.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
                && !label.starts_with('-')
                && !label.ends_with('-')
        });
    if ok {
        Ok(())
    } else {
        Err(format!("{v} is not a valid domain"))
    }
}

/// docker's `ValidateExtraHost`; the value sent is `host:ip`.
pub fn extra_host(v: &str) -> Result<String, String> {
    let (k, ip) = v
        .split_once('=')
        .or_else(|| v.split_once(':'))
        .ok_or_else(|| format!("bad format for add-host: {v:?}"))?;
    if k.is_empty() || k.contains(':') {
        return Err(format!("bad format for add-host: {v:?}"));
    }
    let mut ip = ip;
    if ip != "host-gateway" {
        if ip.len() > 2 && ip.starts_with('[') && ip.ends_with(']') {
            ip = &ip[1..ip.len() - 1];
        }
        if !is_ip(ip) {
            return Err(format!("invalid IP address in add-host: {ip:?}"));
        }
    }
    Ok(format!("{k}:{ip}"))
}

fn check_extra_host(v: &str) -> Result<(), String> {
    extra_host(v).map(drop)
}

/// docker's `validateDeviceCgroupRule`: `^[acb] ([0-9]+|\*):([0-9]+|\*) [rwm]{1,3}$`.
fn check_cgroup_rule(v: &str) -> Result<(), String> {
    let bad = || format!("invalid device cgroup format '{v}'");
    let parts: Vec<&str> = v.split(' ').collect();
    let [kind, nums, modes] = parts.as_slice() else {
        return Err(bad());
    };
    let num = |n: &str| n == "*" || (!n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()));
    let ok = matches!(*kind, "a" | "b" | "c")
        && nums.split_once(':').is_some_and(|(a, b)| num(a) && num(b))
        && (1..=3).contains(&modes.len())
        && modes.bytes().all(|b| matches!(b, b'r' | b'w' | b'm'));
    if ok {
        Ok(())
    } else {
        Err(bad())
    }
}

/// The device part of `PATH:VALUE` device options.
fn device_path(v: &str) -> Result<(&str, &str), String> {
    match v.split_once(':') {
        Some((k, rest)) if !k.is_empty() => {
            if !k.starts_with("/dev/") {
                return Err(format!("bad format for device path: {v}"));
            }
            Ok((k, rest))
        }
        _ => Err(format!("bad format: {v}")),
    }
}

/// docker's `ValidateWeightDevice`: (path, weight).
pub fn weight_device(v: &str) -> Result<(String, u16), String> {
    let (k, w) = device_path(v)?;
    let bad = || format!("invalid weight for device: {v}");
    let w: u64 = w.parse().map_err(|_| bad())?;
    if w > u16::MAX as u64 || (w > 0 && !(10..=1000).contains(&w)) {
        return Err(bad());
    }
    Ok((k.to_string(), w as u16))
}

/// docker's `ValidateThrottleBpsDevice`: (path, bytes per second).
pub fn throttle_bps(v: &str) -> Result<(String, u64), String> {
    let (k, r) = device_path(v)?;
    let rate = ram_in_bytes(r).map_err(|_| format!("invalid rate for device: {v}. The correct format is <device-path>:<number>[<unit>]. Number must be a positive integer. Unit is optional and can be kb, mb, or gb"))?;
    Ok((k.to_string(), rate as u64))
}

/// docker's `ValidateThrottleIOpsDevice`: (path, IO per second).
pub fn throttle_iops(v: &str) -> Result<(String, u64), String> {
    let (k, r) = device_path(v)?;
    let rate = r.parse::<u64>().map_err(|_| {
        format!("invalid rate for device: {v}. The correct format is <device-path>:<number>. Number must be a positive integer")
    })?;
    Ok((k.to_string(), rate))
}

fn check_weight_device(v: &str) -> Result<(), String> {
    weight_device(v).map(drop)
}

fn check_bps(v: &str) -> Result<(), String> {
    throttle_bps(v).map(drop)
}

fn check_iops(v: &str) -> Result<(), String> {
    throttle_iops(v).map(drop)
}

/// `--blkio-weight`: pflag's uint16.
pub fn blkio_weight(v: &str) -> u16 {
    parse_u16(v).unwrap_or(0)
}

/// The resource flags `run`, `create` and `update` share.
macro_rules! resource_flags {
    ($($extra:expr),* $(,)?) => {
        &[
            $($extra,)*
            value_flag(None, "cpu-period").checked(check_i64),
            value_flag(None, "cpu-quota").checked(check_i64),
            value_flag(None, "cpu-rt-period").checked(check_i64),
            value_flag(None, "cpu-rt-runtime").checked(check_i64),
            value_flag(Some('c'), "cpu-shares").checked(check_i64),
            value_flag(None, "cpus").checked(check_cpus),
            value_flag(None, "cpuset-cpus"),
            value_flag(None, "cpuset-mems"),
            value_flag(None, "kernel-memory").checked(check_ram),
            value_flag(Some('m'), "memory").checked(check_ram),
            value_flag(None, "memory-reservation").checked(check_ram),
            value_flag(None, "memory-swap").checked(check_swap),
            value_flag(None, "pids-limit").checked(check_i64),
        ]
    };
}
pub(crate) use resource_flags;

/// The flags `run` and `create` share (docker's `addFlags`, plus name, pull, platform,
/// quiet and content trust). Flags berth cannot honour yet are accepted here and refused
/// with a clear message (`UNSUPPORTED`).
macro_rules! container_flags {
    ($($extra:expr),* $(,)?) => {
        resource_flags!(
            $($extra,)*
            list_flag(None, "add-host").checked(check_extra_host),
            list_flag(None, "annotation"),
            list_flag(Some('a'), "attach").checked(check_attach),
            value_flag(None, "blkio-weight").checked(check_u16),
            list_flag(None, "blkio-weight-device").checked(check_weight_device),
            list_flag(None, "cap-add"),
            list_flag(None, "cap-drop"),
            value_flag(None, "cgroup-parent"),
            value_flag(None, "cgroupns"),
            value_flag(None, "cidfile"),
            value_flag(None, "cpu-count").checked(check_i64),
            value_flag(None, "cpu-percent").checked(check_i64),
            list_flag(None, "device"),
            list_flag(None, "device-cgroup-rule").checked(check_cgroup_rule),
            list_flag(None, "device-read-bps").checked(check_bps),
            list_flag(None, "device-read-iops").checked(check_iops),
            list_flag(None, "device-write-bps").checked(check_bps),
            list_flag(None, "device-write-iops").checked(check_iops),
            bool_flag(None, "disable-content-trust"),
            list_flag(None, "dns").checked(check_ip),
            list_flag(None, "dns-opt"),
            list_flag(None, "dns-option"),
            list_flag(None, "dns-search").checked(check_dns_search),
            value_flag(None, "domainname"),
            value_flag(None, "entrypoint"),
            list_flag(Some('e'), "env").checked(check_env),
            list_flag(None, "env-file"),
            list_flag(None, "expose"),
            value_flag(None, "gpus"),
            list_flag(None, "group-add"),
            value_flag(None, "health-cmd"),
            value_flag(None, "health-interval").checked(check_duration),
            value_flag(None, "health-retries").checked(check_i64),
            value_flag(None, "health-start-interval").checked(check_duration),
            value_flag(None, "health-start-period").checked(check_duration),
            value_flag(None, "health-timeout").checked(check_duration),
            value_flag(Some('h'), "hostname"),
            bool_flag(None, "init"),
            bool_flag(Some('i'), "interactive"),
            value_flag(None, "io-maxbandwidth").checked(check_ram),
            value_flag(None, "io-maxiops").checked(check_u64),
            value_flag(None, "ip"),
            value_flag(None, "ip6"),
            value_flag(None, "ipc"),
            value_flag(None, "isolation"),
            list_flag(Some('l'), "label").checked(check_label),
            list_flag(None, "label-file"),
            list_flag(None, "link"),
            list_flag(None, "link-local-ip"),
            value_flag(None, "log-driver"),
            list_flag(None, "log-opt"),
            value_flag(None, "mac-address"),
            value_flag(None, "memory-swappiness").checked(check_i64),
            list_flag(None, "mount").checked(super::mount::check_mount),
            value_flag(None, "name"),
            list_flag(None, "net").checked(super::netopts::check_network),
            list_flag(None, "net-alias"),
            list_flag(None, "network").checked(super::netopts::check_network),
            list_flag(None, "network-alias"),
            bool_flag(None, "no-healthcheck"),
            bool_flag(None, "oom-kill-disable"),
            value_flag(None, "oom-score-adj").checked(check_i64),
            value_flag(None, "pid"),
            value_flag(None, "platform"),
            bool_flag(None, "privileged"),
            list_flag(Some('p'), "publish"),
            bool_flag(Some('P'), "publish-all"),
            value_flag(None, "pull"),
            bool_flag(Some('q'), "quiet"),
            bool_flag(None, "read-only"),
            value_flag(None, "restart"),
            bool_flag(None, "rm"),
            value_flag(None, "runtime"),
            list_flag(None, "security-opt"),
            value_flag(None, "shm-size").checked(check_ram),
            value_flag(None, "stop-signal"),
            value_flag(None, "stop-timeout").checked(check_i64),
            list_flag(None, "storage-opt"),
            list_flag(None, "sysctl").checked(check_sysctl),
            list_flag(None, "tmpfs"),
            bool_flag(Some('t'), "tty"),
            list_flag(None, "ulimit").checked(check_ulimit),
            bool_flag(None, "use-api-socket"),
            value_flag(Some('u'), "user"),
            value_flag(None, "userns"),
            value_flag(None, "uts"),
            list_flag(Some('v'), "volume"),
            value_flag(None, "volume-driver"),
            list_flag(None, "volumes-from"),
            value_flag(Some('w'), "workdir"),
        )
    };
}

pub const RUN_FLAGS: &[Flag] = container_flags!(
    bool_flag(Some('d'), "detach"),
    value_flag(None, "detach-keys"),
    bool_flag(None, "sig-proxy"),
);

pub const CREATE_FLAGS: &[Flag] = container_flags!();

/// docker flags berth does not honour yet: refused by name rather than ignored.
pub const UNSUPPORTED: &[(&str, &str)] = &[
    ("gpus", "GPU devices are not supported"),
    ("use-api-socket", "it is not supported"),
    ("link", "container links are not supported"),
];

/// Flags docker accepts for Windows daemons only.
pub const WINDOWS_ONLY: &[&str] = &["cpu-count", "cpu-percent", "io-maxbandwidth", "io-maxiops"];

pub const RUN_OPTIONS: &str = include_str!("help/run.txt");
pub const CREATE_OPTIONS: &str = include_str!("help/create.txt");
