//! `run`/`create` flags -> the body of `POST /containers/create`: docker's `parse()` (pure:
//! the environment, the working directory and files come in through `Env`), with
//! dockerd's field names in the order and with the empty values docker's JSON has.

use super::opts::{throttle_bps, throttle_iops, weight_device, UNSUPPORTED, WINDOWS_ONLY};
use crate::args::Parsed;
use crate::goparse::{parse_cpus, parse_duration, parse_i64, parse_ulimit, ram_in_bytes, swap_bytes};
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;

/// Looks an environment variable up.
pub type Lookup<'a> = &'a dyn Fn(&str) -> Option<String>;

/// What `parse` needs from outside: environment variables and files.
pub struct Env<'a> {
    pub lookup: Lookup<'a>,
    pub read_file: &'a dyn Fn(&str) -> std::io::Result<String>,
    /// the current directory, for relative bind sources (`./data:/data`)
    pub cwd: &'a str,
}

impl Env<'_> {
    /// The process's own environment and files.
    pub fn real(cwd: &str) -> Env<'_> {
        Env {
            lookup: &|k| std::env::var(k).ok(),
            read_file: &|p| std::fs::read_to_string(p),
            cwd,
        }
    }
}

/// A create request: the body and the query, and what the CLI does around it.
#[derive(Debug)]
pub struct Create {
    pub body: Value,
    pub name: Option<String>,
    pub platform: Option<String>,
    pub image: String,
    pub pull: String,
    pub quiet: bool,
    pub cidfile: Option<String>,
}

/// A parse error: the message after `berth: ` (docker's `withHelp`).
pub type Error = String;

fn strings(v: &[String]) -> Value {
    if v.is_empty() {
        Value::Null
    } else {
        json!(v)
    }
}

fn string_map(pairs: &[(String, String)]) -> Value {
    // Go marshals maps with sorted keys; the last value of a key wins
    let m: BTreeMap<&str, &str> = pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    json!(m)
}

fn kv(v: &str) -> (String, String) {
    let (k, val) = v.split_once('=').unwrap_or((v, ""));
    (k.to_string(), val.to_string())
}

fn num(p: &Parsed, long: &str) -> i64 {
    p.value(long).and_then(|v| parse_i64(v).ok()).unwrap_or(0)
}

fn bytes(p: &Parsed, long: &str) -> i64 {
    p.value(long).and_then(|v| ram_in_bytes(v).ok()).unwrap_or(0)
}

fn s(p: &Parsed, long: &str) -> String {
    p.value(long).unwrap_or("").to_string()
}

/// docker's kvfile parser: `KEY=value` lines, comments, and bare names looked up with
/// `lookup` (dropped when not found, or always without a lookup).
pub fn parse_kv_file(name: &str, text: &str, lookup: Option<Lookup<'_>>) -> Result<Vec<String>, Error> {
    let mut out = Vec::new();
    for (n, raw) in text.lines().enumerate() {
        let raw = if n == 0 {
            raw.trim_start_matches('\u{feff}')
        } else {
            raw
        };
        let line = raw.trim_start();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (key, has_value) = match line.split_once('=') {
            Some((k, _)) => (k, true),
            None => (line, false),
        };
        if key.is_empty() {
            return Err(format!(
                "invalid env file ({name}): no variable name on line '{line}'"
            ));
        }
        if key.contains([' ', '\t']) {
            return Err(format!(
                "invalid env file ({name}): variable '{key}' contains whitespaces"
            ));
        }
        if has_value {
            out.push(line.to_string());
        } else if let Some(v) = lookup.and_then(|f| f(line)) {
            out.push(format!("{key}={v}"));
        }
    }
    Ok(out)
}

fn read_kv_files(files: &[String], env: &Env<'_>, lookup: Option<Lookup<'_>>) -> Result<Vec<String>, Error> {
    let mut out = Vec::new();
    for f in files {
        let text = (env.read_file)(f).map_err(|e| format!("open {f}: {}", os_message(&e)))?;
        out.extend(parse_kv_file(f, &text, lookup)?);
    }
    Ok(out)
}

/// Go's text for an OS error: `no such file or directory`.
pub fn os_message(e: &std::io::Error) -> String {
    match e.raw_os_error() {
        Some(code) => nix::errno::Errno::from_raw(code).desc().to_lowercase(),
        None => e.to_string(),
    }
}

/// `-e` values: a bare name takes the variable's value when it is set; a name given
/// again replaces the earlier value.
fn env_list(p: &Parsed, env: &Env<'_>) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for v in p.values("env") {
        let v = match v.split_once('=') {
            Some(_) => v.clone(),
            None => match (env.lookup)(v) {
                Some(val) => format!("{v}={val}"),
                None => v.clone(),
            },
        };
        let key = v.split_once('=').map(|(k, _)| k).unwrap_or(&v).to_string();
        match out
            .iter_mut()
            .find(|e| e.split_once('=').map(|(k, _)| k).unwrap_or(e) == key)
        {
            Some(e) => *e = v,
            None => out.push(v),
        }
    }
    out
}

/// docker's `validateLinuxPath` for `--device` and its `parseLinuxDevice`.
fn device(v: &str) -> Result<Value, Error> {
    let mode_ok = |m: &str| {
        !m.is_empty()
            && m.len() <= 3
            && m.chars().all(|c| matches!(c, 'r' | 'w' | 'm'))
            && m.chars().collect::<std::collections::HashSet<_>>().len() == m.len()
    };
    if v.matches(':').count() > 2 || v.split(':').next() == Some("") {
        return Err(format!("bad format for path: {v}"));
    }
    let parts: Vec<&str> = v.split(':').collect();
    let (src, dst, perms) = match parts.as_slice() {
        [src] => (*src, *src, "rwm"),
        [src, m] if mode_ok(m) => (*src, *src, *m),
        [src, dst] => (*src, *dst, "rwm"),
        [src, dst, m] => {
            if !mode_ok(m) {
                return Err(format!("bad mode specified: {m}"));
            }
            (*src, *dst, *m)
        }
        _ => return Err(format!("bad format for path: {v}")),
    };
    if !dst.starts_with('/') {
        return Err(format!("{dst} is not an absolute path"));
    }
    let clean = |p: &str| crate::commands::container::paths::clean(p);
    let (src, dst) = if parts.len() == 3 {
        (src.to_string(), dst.to_string())
    } else {
        (
            if parts.len() == 1 {
                clean(src)
            } else {
                src.to_string()
            },
            clean(dst),
        )
    };
    Ok(json!({"PathOnHost": src, "PathInContainer": dst, "CgroupPermissions": perms}))
}

/// `-v`: (binds, anonymous volumes). `[SRC:]DST[:MODE]`; a relative source starting with
/// `.` is made absolute.
fn volumes(p: &Parsed, cwd: &str) -> Result<(Vec<String>, Vec<String>), Error> {
    let mut binds = Vec::new();
    let mut anon = Vec::new();
    for v in p.values("volume") {
        let parts: Vec<&str> = v.split(':').collect();
        match parts.as_slice() {
            [""] => return Err("invalid empty volume spec".into()),
            [dst] => anon.push(dst.to_string()),
            [src, rest @ ..] if rest.len() <= 2 => {
                if src.is_empty() || rest[0].is_empty() {
                    return Err(format!("invalid volume specification: '{v}'"));
                }
                let src = if src.starts_with('.') {
                    crate::commands::container::paths::clean(&format!("{cwd}/{src}"))
                } else {
                    src.to_string()
                };
                binds.push(format!("{src}:{}", rest.join(":")));
            }
            _ => return Err(format!("invalid spec: {v}: too many colons")),
        }
    }
    Ok((binds, anon))
}

/// `--expose`: `port[/proto]` or `start-end[/proto]`.
fn exposed(p: &Parsed) -> Result<Vec<String>, Error> {
    let mut out: Vec<String> = Vec::new();
    for e in p.values("expose") {
        if e.contains(':') {
            return Err(format!("invalid port format for --expose: {e}"));
        }
        let (port, proto) = e.split_once('/').unwrap_or((e, "tcp"));
        let range_err = |m: &str| format!("invalid range format for --expose: {e}, error: {m}");
        let parse = |x: &str| {
            x.parse::<u16>()
                .map_err(|_| range_err(&format!("strconv.ParseUint: parsing {x:?}: invalid syntax")))
        };
        let (start, end) = match port.split_once('-') {
            Some((a, b)) => (parse(a)?, parse(b)?),
            None => (parse(port)?, parse(port)?),
        };
        if end < start {
            return Err(range_err(&format!("invalid range specified for port: {port}")));
        }
        for n in start..=end {
            let k = format!("{n}/{}", proto.to_lowercase());
            if !out.contains(&k) {
                out.push(k);
            }
        }
    }
    Ok(out)
}

/// docker's `ParseRestartPolicy`.
pub fn restart_policy(policy: &str) -> Result<Value, Error> {
    if policy.is_empty() {
        return Ok(json!({"Name": "", "MaximumRetryCount": 0}));
    }
    let (name, count) = policy.split_once(':').unwrap_or((policy, ""));
    if policy.contains(':') && name.is_empty() {
        return Err("invalid restart policy format: no policy provided before colon".into());
    }
    let count: i64 = if count.is_empty() {
        0
    } else {
        count.parse().map_err(|_| {
            "invalid restart policy format: maximum retry count must be an integer".to_string()
        })?
    };
    Ok(json!({"Name": name, "MaximumRetryCount": count}))
}

/// docker's `parseSecurityOpts` (seccomp profiles from files are sent inline) and
/// `parseSystemPaths`: (options, masked paths, read-only paths).
fn security_opts(p: &Parsed, env: &Env<'_>) -> Result<(Value, Value, Value), Error> {
    let mut out = Vec::new();
    let mut unconfined = false;
    for opt in p.values("security-opt") {
        if opt == "systempaths=unconfined" {
            unconfined = true;
            continue;
        }
        let (k, v) = match opt.split_once('=') {
            Some(kv) => kv,
            None if opt != "no-new-privileges" => opt.split_once(':').unwrap_or((opt, "")),
            None => (opt.as_str(), ""),
        };
        if v.is_empty() && k != "no-new-privileges" {
            return Err(format!("Invalid --security-opt: {opt:?}"));
        }
        if k == "seccomp" && v != "builtin" && v != "unconfined" {
            let text = (env.read_file)(v).map_err(|e| {
                format!(
                    "opening seccomp profile ({v}) failed: open {v}: {}",
                    os_message(&e)
                )
            })?;
            let profile: Value = serde_json::from_str(&text)
                .map_err(|e| format!("compacting json for seccomp profile ({v}) failed: {e}"))?;
            out.push(format!("seccomp={profile}"));
            continue;
        }
        out.push(opt.clone());
    }
    let paths = if unconfined { json!([]) } else { Value::Null };
    Ok((strings(&out), paths.clone(), paths))
}

fn mode_valid(mode: &str, kind: &str) -> Result<(), Error> {
    let ok = match kind {
        "pid" | "uts" | "userns" => {
            matches!(mode, "" | "host") || (kind == "pid" && mode.starts_with("container:"))
        }
        "cgroupns" => matches!(mode, "" | "host" | "private"),
        _ => true,
    };
    if ok {
        return Ok(());
    }
    Err(match kind {
        "pid" => "--pid: invalid PID mode".into(),
        "uts" => "--uts: invalid UTS mode".into(),
        "userns" => "--userns: invalid USER mode".into(),
        _ => "--cgroupns: invalid CGROUP mode".into(),
    })
}

/// docker's health check options.
fn healthcheck(p: &Parsed) -> Result<Option<Value>, Error> {
    let dur = |k: &str| p.value(k).and_then(|v| parse_duration(v).ok()).unwrap_or(0);
    let (interval, timeout, start, start_int) = (
        dur("health-interval"),
        dur("health-timeout"),
        dur("health-start-period"),
        dur("health-start-interval"),
    );
    let retries = num(p, "health-retries");
    let cmd = s(p, "health-cmd");
    let have =
        !cmd.is_empty() || interval != 0 || timeout != 0 || start != 0 || retries != 0 || start_int != 0;
    if p.bool("no-healthcheck") {
        if have {
            return Err("--no-healthcheck conflicts with --health-* options".into());
        }
        return Ok(Some(json!({"Test": ["NONE"]})));
    }
    if !have {
        return Ok(None);
    }
    for (v, name) in [
        (interval, "--health-interval"),
        (timeout, "--health-timeout"),
        (retries, "--health-retries"),
        (start, "--health-start-period"),
        (start_int, "--health-start-interval"),
    ] {
        if v < 0 {
            return Err(format!("{name} cannot be negative"));
        }
    }
    let mut h = Map::new();
    if !cmd.is_empty() {
        h.insert("Test".into(), json!(["CMD-SHELL", cmd]));
    }
    for (k, v) in [
        ("Interval", interval),
        ("Timeout", timeout),
        ("StartPeriod", start),
        ("StartInterval", start_int),
        ("Retries", retries),
    ] {
        if v != 0 {
            h.insert(k.into(), json!(v));
        }
    }
    Ok(Some(Value::Object(h)))
}

/// docker's capability normalization: upper case, `CAP_` prefix (except `ALL`), unique,
/// sorted.
fn caps(v: &[String]) -> Value {
    let mut out: Vec<String> = v
        .iter()
        .map(|c| {
            let c = c.to_uppercase();
            if c == "ALL" || c.starts_with("CAP_") {
                c
            } else {
                format!("CAP_{c}")
            }
        })
        .collect();
    out.sort();
    out.dedup();
    strings(&out)
}

fn refuse_unsupported(p: &Parsed) -> Result<(), Error> {
    for (flag, why) in UNSUPPORTED {
        if p.is_set(flag) {
            return Err(format!("the --{flag} flag is not supported by berth yet: {why}"));
        }
    }
    for flag in WINDOWS_ONLY {
        if p.is_set(flag) {
            return Err(format!(
                "\"--{flag}\" is only supported on a berth daemon running on windows, but the berth daemon is running on linux"
            ));
        }
    }
    if let Some(d) = p
        .value("log-driver")
        .filter(|d| !d.is_empty() && *d != "json-file")
    {
        if d == "none" && !p.values("log-opt").is_empty() {
            return Err(format!("invalid logging opts for driver {d}"));
        }
        if d != "none" {
            return Err(format!(
                "the {d:?} logging driver is not supported by berth: use json-file (the default)"
            ));
        }
    }
    Ok(())
}

/// Turns the parsed flags of `run`/`create` into a create request. `console` is the
/// terminal's size (rows, columns), or zeros.
pub fn parse(p: &Parsed, env: &Env<'_>, console: (u16, u16)) -> Result<Create, Error> {
    refuse_unsupported(p)?;
    if let Some(mac) = p.value("mac-address").filter(|m| !m.is_empty()) {
        super::netopts::check_mac(mac)?;
    }
    let image = p.args[0].clone();
    let cmd: Vec<String> = p.args[1..].to_vec();
    let attach: Vec<String> = p.values("attach").iter().map(|a| a.to_lowercase()).collect();
    let stdin_flag = p.bool("interactive");
    let (attach_stdin, attach_stdout, attach_stderr) = if attach.is_empty() {
        (stdin_flag, true, true)
    } else {
        (
            stdin_flag || attach.iter().any(|a| a == "stdin"),
            attach.iter().any(|a| a == "stdout"),
            attach.iter().any(|a| a == "stderr"),
        )
    };
    let swappiness = p
        .value("memory-swappiness")
        .and_then(|v| parse_i64(v).ok())
        .unwrap_or(-1);
    if swappiness != -1 && !(0..=100).contains(&swappiness) {
        return Err(format!(
            "invalid value: {swappiness}. Valid memory swappiness range is 0-100"
        ));
    }
    let (binds, anon) = volumes(p, env.cwd)?;
    let tmpfs: Vec<(String, String)> = p
        .values("tmpfs")
        .iter()
        .map(|t| {
            let (k, v) = t.split_once(':').unwrap_or((t, ""));
            (k.to_string(), v.to_string())
        })
        .collect();
    let entrypoint = match p.value("entrypoint") {
        Some("") => json!([""]),
        Some(e) => json!([e]),
        None => Value::Null,
    };
    let (mut exposed_ports, bindings) = super::netopts::publish(p)?;
    for e in exposed(p)? {
        if !exposed_ports.contains(&e) {
            exposed_ports.push(e);
        }
    }
    let exposed = exposed_ports;
    let mounts = p
        .values("mount")
        .iter()
        .map(|m| super::mount::parse(m, env.cwd))
        .collect::<Result<Vec<_>, _>>()?;
    let devices = p
        .values("device")
        .iter()
        .map(|d| device(d))
        .collect::<Result<Vec<_>, _>>()?;
    let mut env_vars = read_kv_files(p.values("env-file"), env, Some(env.lookup))?;
    env_vars.extend(env_list(p, env));
    let mut labels = read_kv_files(p.values("label-file"), env, None)?;
    labels.extend(p.values("label").iter().cloned());
    for (k, kind) in [
        ("pid", "pid"),
        ("uts", "uts"),
        ("userns", "userns"),
        ("cgroupns", "cgroupns"),
    ] {
        mode_valid(p.value(k).unwrap_or(""), kind)?;
    }
    let restart = restart_policy(p.value("restart").unwrap_or("no"))?;
    let log_opts: Vec<(String, String)> = p.values("log-opt").iter().map(|o| kv(o)).collect();
    let (security, masked, readonly) = security_opts(p, env)?;
    let mut storage = Vec::new();
    for o in p.values("storage-opt") {
        let Some((k, v)) = o.split_once('=') else {
            return Err("invalid storage option".into());
        };
        storage.push((k.to_string(), v.to_string()));
    }
    let health = healthcheck(p)?;
    let auto_remove = p.bool("rm");
    if auto_remove && !matches!(p.value("restart").unwrap_or("no"), "" | "no") {
        return Err("conflicting options: cannot specify both --restart and --rm".into());
    }
    let ulimits: Vec<Value> = {
        let mut by_name: BTreeMap<String, (i64, i64)> = BTreeMap::new();
        for u in p.values("ulimit") {
            if let Ok((n, soft, hard)) = parse_ulimit(u) {
                by_name.insert(n, (soft, hard));
            }
        }
        by_name
            .into_iter()
            .map(|(n, (soft, hard))| json!({"Name": n, "Hard": hard, "Soft": soft}))
            .collect()
    };
    let device_list = |flag: &str, iops: bool| -> Vec<Value> {
        p.values(flag)
            .iter()
            .filter_map(|v| {
                if iops {
                    throttle_iops(v).ok()
                } else {
                    throttle_bps(v).ok()
                }
            })
            .map(|(path, rate)| json!({"Path": path, "Rate": rate}))
            .collect()
    };
    let weights: Vec<Value> = p
        .values("blkio-weight-device")
        .iter()
        .filter_map(|v| weight_device(v).ok())
        .map(|(path, w)| json!({"Path": path, "Weight": w}))
        .collect();
    let stdin_once = stdin_flag && attach_stdin;

    let mut config = Map::new();
    config.insert("Hostname".into(), json!(s(p, "hostname")));
    config.insert("Domainname".into(), json!(s(p, "domainname")));
    config.insert("User".into(), json!(s(p, "user")));
    config.insert("AttachStdin".into(), json!(attach_stdin));
    config.insert("AttachStdout".into(), json!(attach_stdout));
    config.insert("AttachStderr".into(), json!(attach_stderr));
    if !exposed.is_empty() {
        let m: BTreeMap<String, Value> = exposed.into_iter().map(|k| (k, json!({}))).collect();
        config.insert("ExposedPorts".into(), json!(m));
    }
    config.insert("Tty".into(), json!(p.bool("tty")));
    config.insert("OpenStdin".into(), json!(stdin_flag));
    config.insert("StdinOnce".into(), json!(stdin_once));
    config.insert("Env".into(), strings(&env_vars));
    config.insert("Cmd".into(), strings(&cmd));
    if let Some(h) = health {
        config.insert("Healthcheck".into(), h);
    }
    config.insert("Image".into(), json!(image));
    let vols: BTreeMap<&str, Value> = anon.iter().map(|v| (v.as_str(), json!({}))).collect();
    config.insert("Volumes".into(), json!(vols));
    config.insert("WorkingDir".into(), json!(s(p, "workdir")));
    config.insert("Entrypoint".into(), entrypoint);
    config.insert("OnBuild".into(), Value::Null);
    let label_pairs: Vec<(String, String)> = labels.iter().map(|l| kv(l)).collect();
    config.insert("Labels".into(), string_map(&label_pairs));
    if let Some(sig) = p.value("stop-signal").filter(|v| !v.is_empty()) {
        config.insert("StopSignal".into(), json!(sig));
    }
    if p.is_set("stop-timeout") {
        config.insert("StopTimeout".into(), json!(num(p, "stop-timeout")));
    }

    let mut h = Map::new();
    h.insert("Binds".into(), strings(&binds));
    h.insert("ContainerIDFile".into(), json!(s(p, "cidfile")));
    h.insert(
        "LogConfig".into(),
        json!({"Type": s(p, "log-driver"), "Config": string_map(&log_opts)}),
    );
    let (net_mode, networking) = super::netopts::networking(p)?;
    h.insert("NetworkMode".into(), json!(net_mode));
    h.insert("PortBindings".into(), json!(bindings));
    h.insert("RestartPolicy".into(), restart);
    h.insert("AutoRemove".into(), json!(auto_remove));
    h.insert("VolumeDriver".into(), json!(s(p, "volume-driver")));
    h.insert("VolumesFrom".into(), strings(p.values("volumes-from")));
    h.insert("ConsoleSize".into(), json!([console.0, console.1]));
    let annotations: Vec<(String, String)> = p.values("annotation").iter().map(|a| kv(a)).collect();
    if !annotations.is_empty() {
        h.insert("Annotations".into(), string_map(&annotations));
    }
    h.insert("CapAdd".into(), caps(p.values("cap-add")));
    h.insert("CapDrop".into(), caps(p.values("cap-drop")));
    h.insert("CgroupnsMode".into(), json!(s(p, "cgroupns")));
    h.insert("Dns".into(), json!(p.values("dns")));
    let mut dns_opts = p.values("dns-option").to_vec();
    dns_opts.extend(p.values("dns-opt").iter().cloned());
    h.insert("DnsOptions".into(), json!(dns_opts));
    h.insert("DnsSearch".into(), json!(p.values("dns-search")));
    let hosts: Vec<String> = p
        .values("add-host")
        .iter()
        .filter_map(|v| super::opts::extra_host(v).ok())
        .collect();
    h.insert("ExtraHosts".into(), strings(&hosts));
    h.insert("GroupAdd".into(), strings(p.values("group-add")));
    h.insert("IpcMode".into(), json!(s(p, "ipc")));
    h.insert("Cgroup".into(), json!(""));
    h.insert("Links".into(), Value::Null);
    h.insert("OomScoreAdj".into(), json!(num(p, "oom-score-adj")));
    h.insert("PidMode".into(), json!(s(p, "pid")));
    h.insert("Privileged".into(), json!(p.bool("privileged")));
    h.insert("PublishAllPorts".into(), json!(p.bool("publish-all")));
    h.insert("ReadonlyRootfs".into(), json!(p.bool("read-only")));
    h.insert("SecurityOpt".into(), security);
    if !storage.is_empty() {
        h.insert("StorageOpt".into(), string_map(&storage));
    }
    if !tmpfs.is_empty() {
        h.insert("Tmpfs".into(), string_map(&tmpfs));
    }
    h.insert("UTSMode".into(), json!(s(p, "uts")));
    h.insert("UsernsMode".into(), json!(s(p, "userns")));
    h.insert("ShmSize".into(), json!(bytes(p, "shm-size")));
    let sysctls: Vec<(String, String)> = p.values("sysctl").iter().map(|v| kv(v)).collect();
    if !sysctls.is_empty() {
        h.insert("Sysctls".into(), string_map(&sysctls));
    }
    if let Some(r) = p.value("runtime").filter(|r| !r.is_empty()) {
        h.insert("Runtime".into(), json!(r));
    }
    h.insert("Isolation".into(), json!(s(p, "isolation")));
    // Resources, inlined
    h.insert("CpuShares".into(), json!(num(p, "cpu-shares")));
    h.insert("Memory".into(), json!(bytes(p, "memory")));
    let cpus = p.value("cpus").and_then(|v| parse_cpus(v).ok()).unwrap_or(0);
    h.insert("NanoCpus".into(), json!(cpus));
    h.insert("CgroupParent".into(), json!(s(p, "cgroup-parent")));
    let weight = p
        .value("blkio-weight")
        .map(super::opts::blkio_weight)
        .unwrap_or(0);
    h.insert("BlkioWeight".into(), json!(weight));
    h.insert("BlkioWeightDevice".into(), json!(weights));
    h.insert(
        "BlkioDeviceReadBps".into(),
        json!(device_list("device-read-bps", false)),
    );
    h.insert(
        "BlkioDeviceWriteBps".into(),
        json!(device_list("device-write-bps", false)),
    );
    h.insert(
        "BlkioDeviceReadIOps".into(),
        json!(device_list("device-read-iops", true)),
    );
    h.insert(
        "BlkioDeviceWriteIOps".into(),
        json!(device_list("device-write-iops", true)),
    );
    h.insert("CpuPeriod".into(), json!(num(p, "cpu-period")));
    h.insert("CpuQuota".into(), json!(num(p, "cpu-quota")));
    h.insert("CpuRealtimePeriod".into(), json!(num(p, "cpu-rt-period")));
    h.insert("CpuRealtimeRuntime".into(), json!(num(p, "cpu-rt-runtime")));
    h.insert("CpusetCpus".into(), json!(s(p, "cpuset-cpus")));
    h.insert("CpusetMems".into(), json!(s(p, "cpuset-mems")));
    h.insert("Devices".into(), json!(devices));
    h.insert(
        "DeviceCgroupRules".into(),
        strings(p.values("device-cgroup-rule")),
    );
    h.insert("DeviceRequests".into(), Value::Null);
    h.insert("MemoryReservation".into(), json!(bytes(p, "memory-reservation")));
    let swap = p
        .value("memory-swap")
        .and_then(|v| swap_bytes(v).ok())
        .unwrap_or(0);
    h.insert("MemorySwap".into(), json!(swap));
    h.insert("MemorySwappiness".into(), json!(swappiness));
    h.insert("OomKillDisable".into(), json!(p.bool("oom-kill-disable")));
    h.insert("PidsLimit".into(), json!(num(p, "pids-limit")));
    h.insert("Ulimits".into(), json!(ulimits));
    h.insert("CpuCount".into(), json!(0));
    h.insert("CpuPercent".into(), json!(0));
    h.insert("IOMaximumIOps".into(), json!(0));
    h.insert("IOMaximumBandwidth".into(), json!(0));
    if !mounts.is_empty() {
        h.insert("Mounts".into(), json!(mounts));
    }
    h.insert("MaskedPaths".into(), masked);
    h.insert("ReadonlyPaths".into(), readonly);
    if p.is_set("init") {
        h.insert("Init".into(), json!(p.bool("init")));
    }
    config.insert("HostConfig".into(), Value::Object(h));
    config.insert("NetworkingConfig".into(), networking);

    let pull = p.value("pull").unwrap_or("missing").to_string();
    Ok(Create {
        body: Value::Object(config),
        name: p.value("name").filter(|n| !n.is_empty()).map(str::to_string),
        platform: p.value("platform").filter(|n| !n.is_empty()).map(str::to_string),
        image,
        pull,
        quiet: p.bool("quiet"),
        cidfile: p.value("cidfile").filter(|n| !n.is_empty()).map(str::to_string),
    })
}

/// docker's `validatePullOpt`.
pub fn check_pull(v: &str) -> Result<(), Error> {
    match v {
        "always" | "missing" | "never" | "" => Ok(()),
        _ => Err(format!(
            "invalid pull option: '{v}': must be one of \"always\", \"missing\" or \"never\""
        )),
    }
}
