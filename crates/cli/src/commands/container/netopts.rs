//! The network flags of `run`/`create`: `--network` (plain names and docker's advanced
//! `name=...,alias=...,ip=...` syntax), `--ip`, `--ip6`, `--network-alias`, `--mac-address`,
//! `--link-local-ip` (docker's `parseNetworkOpts`), and `-p`/`--publish` specs turned into
//! docker's port bindings.

use crate::args::Parsed;
use crate::commands::network::body::{endpoint, endpoint_ipam};
use crate::goparse::csv_record;
use serde_json::{json, Value};
use std::collections::BTreeMap;

/// One `--network` value (docker's `NetworkAttachmentOpts`).
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Attachment {
    pub target: String,
    pub aliases: Vec<String>,
    pub ipv4: String,
    pub ipv6: String,
    pub mac: String,
    pub link_local: Vec<String>,
    pub driver_opts: BTreeMap<String, String>,
    pub gw_priority: i64,
}

/// docker's long-syntax test, the regexp `\w+=\w+(,\w+=\w+)*` found anywhere.
fn long_syntax(v: &str) -> bool {
    let word = |c: u8| c.is_ascii_alphanumeric() || c == b'_';
    let b = v.as_bytes();
    (1..b.len().saturating_sub(1)).any(|i| b[i] == b'=' && word(b[i - 1]) && word(b[i + 1]))
}

/// docker's `NetworkOpt.Set` (keys and values lower-cased, as docker does).
pub fn attachment(v: &str) -> Result<Attachment, String> {
    if !long_syntax(v) {
        return Ok(Attachment {
            target: v.to_string(),
            ..Attachment::default()
        });
    }
    let mut a = Attachment::default();
    for field in csv_record(v)? {
        let lower = field.to_lowercase();
        let Some((key, val)) = lower.split_once('=').filter(|(k, _)| !k.is_empty()) else {
            return Err(format!("invalid field {field}"));
        };
        let (key, val) = (key.trim(), val.trim().to_string());
        match key {
            "name" => a.target = val,
            "alias" => a.aliases.push(val),
            "ip" => a.ipv4 = val,
            "ip6" => a.ipv6 = val,
            "mac-address" => a.mac = val,
            "link-local-ip" => a.link_local.push(val),
            "driver-opt" => {
                let Some((k, v)) = val.split_once('=').filter(|(k, _)| !k.is_empty()) else {
                    return Err("invalid key value pair format in driver options".into());
                };
                a.driver_opts.insert(k.trim().to_string(), v.trim().to_string());
            }
            "gw-priority" => {
                a.gw_priority = val.parse().map_err(|_| {
                    let why = if !val.is_empty()
                        && val.trim_start_matches('-').bytes().all(|b| b.is_ascii_digit())
                    {
                        "value out of range"
                    } else {
                        "invalid syntax"
                    };
                    format!("invalid gw-priority ({val}): {why}")
                })?
            }
            _ => return Err(format!("invalid field key {key}")),
        }
    }
    if a.target.is_empty() {
        return Err("network name/id is not specified".into());
    }
    Ok(a)
}

pub fn check_network(v: &str) -> Result<(), String> {
    attachment(v).map(drop)
}

/// Go's `net.ParseMAC` for the 6-byte forms docker uses.
fn valid_mac(m: &str) -> bool {
    let hex = |s: &str, n: usize| s.len() == n && s.bytes().all(|b| b.is_ascii_hexdigit());
    let groups = |sep: char, n: usize, width: usize| {
        let g: Vec<&str> = m.split(sep).collect();
        g.len() == n && g.iter().all(|x| hex(x, width))
    };
    groups(':', 6, 2) || groups('-', 6, 2) || groups('.', 3, 4)
}

pub fn check_mac(m: &str) -> Result<(), String> {
    if valid_mac(m) {
        Ok(())
    } else {
        Err(format!("{m} is not a valid mac address"))
    }
}

fn user_defined(n: &str) -> bool {
    !matches!(n, "default" | "bridge" | "host" | "none") && !n.starts_with("container:")
}

/// The attachments of `--network`/`--net`, in order.
pub fn attachments(p: &Parsed) -> Vec<Attachment> {
    p.values("network")
        .iter()
        .chain(p.values("net"))
        .filter_map(|v| attachment(v).ok())
        .collect()
}

/// docker's `applyContainerOptions`: the plain flags go to the first network.
fn apply_flags(n: &mut Attachment, p: &Parsed) -> Result<(), String> {
    let aliases: Vec<String> = p
        .values("network-alias")
        .iter()
        .chain(p.values("net-alias"))
        .cloned()
        .collect();
    let (ip, ip6, mac) = (
        p.value("ip").unwrap_or(""),
        p.value("ip6").unwrap_or(""),
        p.value("mac-address").unwrap_or(""),
    );
    let link_local = p.values("link-local-ip");
    let conflict = |what: &str| format!("conflicting options: cannot specify both {what}");
    if !n.aliases.is_empty() && !aliases.is_empty() {
        return Err(conflict("--network-alias and per-network alias"));
    }
    if !n.ipv4.is_empty() && !ip.is_empty() {
        return Err(conflict("--ip and per-network IPv4 address"));
    }
    if !n.ipv6.is_empty() && !ip6.is_empty() {
        return Err(conflict("--ip6 and per-network IPv6 address"));
    }
    if !n.mac.is_empty() && !mac.is_empty() {
        return Err(conflict("--mac-address and per-network MAC address"));
    }
    if !n.link_local.is_empty() && !link_local.is_empty() {
        return Err(conflict(
            "--link-local-ip and per-network link-local IP addresses",
        ));
    }
    if !aliases.is_empty() {
        n.aliases = aliases;
    }
    for (field, v) in [(&mut n.ipv4, ip), (&mut n.ipv6, ip6), (&mut n.mac, mac)] {
        if !v.is_empty() {
            *field = v.to_string();
        }
    }
    if !link_local.is_empty() {
        n.link_local = link_local.to_vec();
    }
    Ok(())
}

/// docker's `parseNetworkAttachmentOpt`: the endpoint, and whether it has no settings.
fn endpoint_of(a: &Attachment) -> Result<(Value, bool), String> {
    if a.target.trim().is_empty() {
        return Err("no name set for network".into());
    }
    if !user_defined(&a.target) && !a.aliases.is_empty() {
        return Err("network-scoped aliases are only supported for user-defined networks".into());
    }
    if !a.mac.is_empty() {
        check_mac(&a.mac)?;
    }
    let has_ipam = !a.ipv4.is_empty() || !a.ipv6.is_empty() || !a.link_local.is_empty();
    let empty = !has_ipam
        && a.aliases.is_empty()
        && a.driver_opts.is_empty()
        && a.mac.is_empty()
        && a.gw_priority == 0;
    let or_null = |empty: bool, v: Value| if empty { Value::Null } else { v };
    let ep = endpoint(
        or_null(!has_ipam, endpoint_ipam(&a.ipv4, &a.ipv6, &a.link_local)),
        Value::Null,
        or_null(a.aliases.is_empty(), json!(a.aliases)),
        &a.mac,
        or_null(a.driver_opts.is_empty(), json!(a.driver_opts)),
        a.gw_priority,
    );
    Ok((ep, empty))
}

/// docker's `parseNetworkOpts`: (network mode, `NetworkingConfig`). No `--network` is the
/// `default` endpoint; a single network without settings sends no endpoint (the daemon
/// makes it).
pub fn networking(p: &Parsed) -> Result<(String, Value), String> {
    let nets = attachments(p);
    let mut m: BTreeMap<String, Value> = BTreeMap::new();
    if nets.is_empty() {
        let mut n = Attachment {
            target: "default".into(),
            ..Attachment::default()
        };
        apply_flags(&mut n, p)?;
        m.insert("default".into(), endpoint_of(&n)?.0);
    }
    let (mut user, mut builtin) = (false, false);
    for (i, n) in nets.iter().enumerate() {
        let mut n = n.clone();
        if user_defined(&n.target) {
            user = true;
        } else {
            builtin = true;
        }
        if i == 0 {
            apply_flags(&mut n, p)?;
        }
        let (ep, empty) = endpoint_of(&n)?;
        if m.contains_key(&n.target) {
            return Err(format!("network {:?} is specified multiple times", n.target));
        }
        if i == 0 && nets.len() == 1 && empty {
            continue;
        }
        m.insert(n.target.clone(), ep);
    }
    if user && builtin {
        return Err(
            "conflicting options: cannot attach both user-defined and non-user-defined network-modes".into(),
        );
    }
    let mode = nets
        .first()
        .map(|n| n.target.clone())
        .unwrap_or_else(|| "default".into());
    Ok((mode, json!({ "EndpointsConfig": m })))
}

/// docker's `convertToStandardNotation`: `target=80,published=8080[,protocol=udp]` as
/// `8080:80/udp`; other specs as they are.
fn standard_notation(spec: &str) -> Result<String, String> {
    if !spec.contains('=') {
        return Ok(spec.to_string());
    }
    let mut params: BTreeMap<&str, &str> = BTreeMap::from([("protocol", "tcp")]);
    for param in spec.split(',') {
        match param.split_once('=') {
            Some((k, v)) if !k.is_empty() => {
                params.insert(k, v);
            }
            _ => {
                return Err(format!(
                    "invalid publish opts format (should be name=value but got '{param}')"
                ))
            }
        }
    }
    let get = |k: &str| params.get(k).copied().unwrap_or("");
    Ok(format!(
        "{}:{}/{}",
        get("published"),
        get("target"),
        get("protocol")
    ))
}

/// docker's `PortBindings`: `80/tcp` -> `[{"HostIp": "", "HostPort": "8080"}]`.
pub type Bindings = BTreeMap<String, Vec<Value>>;

/// `-p` values: (exposed ports, port bindings) as docker's `nat.ParsePortSpecs` makes them.
pub fn publish(p: &Parsed) -> Result<(Vec<String>, Bindings), String> {
    let mut exposed = Vec::new();
    let mut bindings = Bindings::new();
    for spec in p.values("publish") {
        let spec = standard_notation(spec)?;
        // docker takes the protocol in any case
        let spec = match spec.rsplit_once('/') {
            Some((body, proto)) => format!("{body}/{}", proto.to_lowercase()),
            None => spec,
        };
        let parsed = berth_network::ports::parse(&spec).map_err(|e| match e {
            berth_network::ports::PortError::Ip(ip) => format!("invalid IP address: {ip}"),
            e => e.to_string(),
        })?;
        for b in parsed {
            let key = b.key();
            if !exposed.contains(&key) {
                exposed.push(key.clone());
            }
            bindings
                .entry(key)
                .or_default()
                .push(json!({"HostIp": b.host_ip, "HostPort": b.host_port}));
        }
    }
    Ok((exposed, bindings))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn advanced_network_syntax() {
        let a = attachment("name=N1,alias=x,alias=y,ip=10.0.0.2,driver-opt=k=v,gw-priority=3").unwrap();
        assert_eq!(a.target, "n1");
        assert_eq!(a.aliases, ["x", "y"]);
        assert_eq!((a.ipv4.as_str(), a.gw_priority), ("10.0.0.2", 3));
        assert_eq!(a.driver_opts["k"], "v");
        assert_eq!(attachment("my-net").unwrap().target, "my-net");
        assert_eq!(
            attachment("alias=x").unwrap_err(),
            "network name/id is not specified"
        );
        assert_eq!(
            attachment("name=n,bogus=1").unwrap_err(),
            "invalid field key bogus"
        );
        assert_eq!(
            attachment("name=n,gw-priority=x").unwrap_err(),
            "invalid gw-priority (x): invalid syntax"
        );
        assert!(check_mac("92:d0:c6:0a:29:33").is_ok());
        assert_eq!(
            check_mac("92:d0").unwrap_err(),
            "92:d0 is not a valid mac address"
        );
    }

    #[test]
    fn long_publish_syntax() {
        assert_eq!(
            standard_notation("target=80,published=8080").unwrap(),
            "8080:80/tcp"
        );
        assert_eq!(
            standard_notation("target=80,x").unwrap_err(),
            "invalid publish opts format (should be name=value but got 'x')"
        );
    }
}
