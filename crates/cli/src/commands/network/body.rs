//! The request bodies of `network create` and `network connect`, as docker's CLI builds them
//! (`createIPAMConfig`, `convertDriverOpt`): pure, checked against bodies docker 28.2.2 sent.

use crate::args::Parsed;
use crate::goparse::slice_values;
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;
use std::net::IpAddr;

/// docker's `ConvertKVStringsToMap`: `k=v` -> k: v, a bare `k` -> k: "".
pub fn kv_map(values: &[String]) -> BTreeMap<String, String> {
    values
        .iter()
        .map(|v| {
            let (k, val) = v.split_once('=').unwrap_or((v, ""));
            (k.to_string(), val.to_string())
        })
        .collect()
}

/// Go's `net.ParseCIDR` as (address, prefix length), with its error text.
fn parse_cidr(s: &str) -> Result<(IpAddr, u8), String> {
    let bad = || format!("invalid CIDR address: {s}");
    let (ip, len) = s.split_once('/').ok_or_else(bad)?;
    let ip: IpAddr = ip.parse().map_err(|_| bad())?;
    let max = if ip.is_ipv4() { 32 } else { 128 };
    if len.is_empty() || len.len() > 3 || !len.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    let len: u8 = len.parse().map_err(|_| bad())?;
    if len > max {
        return Err(bad());
    }
    Ok((ip, len))
}

fn contains(net: (IpAddr, u8), ip: IpAddr) -> bool {
    let bits = |ip: IpAddr| -> (u128, u32) {
        match ip {
            IpAddr::V4(a) => (u32::from(a) as u128, 32),
            IpAddr::V6(a) => (u128::from(a), 128),
        }
    };
    let ((n, nw), (a, aw)) = (bits(net.0), bits(ip));
    if nw != aw {
        return false;
    }
    let shift = nw - u32::from(net.1);
    let mask = if shift >= 128 { 0 } else { u128::MAX << shift };
    (n & mask) == (a & mask)
}

/// docker's `subnetMatches`: is `data` (an address, or a CIDR's address) inside `subnet`.
fn subnet_matches(subnet: &str, data: &str) -> Result<bool, String> {
    let net = parse_cidr(subnet).map_err(|e| format!("invalid subnet: {e}"))?;
    let ip = if data.contains('/') {
        Some(parse_cidr(data)?.0)
    } else {
        data.parse().ok()
    };
    Ok(ip.is_some_and(|ip| contains(net, ip)))
}

#[derive(Default)]
struct Pool {
    subnet: String,
    range: String,
    gateway: String,
    aux: BTreeMap<String, String>,
}

/// docker's `createIPAMConfig`: one config per subnet, ranges, gateways and auxiliary
/// addresses placed in the subnet that holds them.
fn ipam_pools(
    subnets: &[String],
    ranges: &[String],
    gateways: &[String],
    aux: &BTreeMap<String, String>,
) -> Result<Vec<Pool>, String> {
    if subnets.len() < ranges.len() || subnets.len() < gateways.len() {
        return Err("every ip-range or gateway must have a corresponding subnet".into());
    }
    let mut pools: Vec<Pool> = Vec::new();
    for s in subnets {
        for p in &pools {
            if subnet_matches(s, &p.subnet)? || subnet_matches(&p.subnet, s)? {
                return Err("multiple overlapping subnet configuration is not supported".into());
            }
        }
        pools.push(Pool {
            subnet: s.clone(),
            ..Pool::default()
        });
    }
    for r in ranges {
        let mut matched = false;
        for p in pools.iter_mut() {
            parse_cidr(r)?;
            if !subnet_matches(&p.subnet, r)? {
                continue;
            }
            if !p.range.is_empty() {
                return Err(format!(
                    "cannot configure multiple ranges ({r}, {}) on the same subnet ({})",
                    p.range, p.subnet
                ));
            }
            p.range = r.clone();
            matched = true;
        }
        if !matched {
            return Err(format!("no matching subnet for range {r}"));
        }
    }
    for g in gateways {
        let mut matched = false;
        for p in pools.iter_mut() {
            if !subnet_matches(&p.subnet, g)? {
                continue;
            }
            if !p.gateway.is_empty() {
                return Err(format!(
                    "cannot configure multiple gateways ({g}, {}) for the same subnet ({})",
                    p.gateway, p.subnet
                ));
            }
            p.gateway = g.clone();
            matched = true;
        }
        if !matched {
            return Err(format!("no matching subnet for gateway {g}"));
        }
    }
    for (k, a) in aux {
        let mut matched = false;
        for p in pools.iter_mut() {
            if subnet_matches(&p.subnet, a)? {
                p.aux.insert(k.clone(), a.clone());
                matched = true;
            }
        }
        if !matched {
            return Err(format!("no matching subnet for aux-address {a}"));
        }
    }
    Ok(pools)
}

/// The body of `POST /networks/create` for `network create`'s flags and the name.
pub fn create(p: &Parsed, name: &str, api_version: &str) -> Result<Value, String> {
    let pools = ipam_pools(
        &slice_values(p.values("subnet")),
        &slice_values(p.values("ip-range")),
        &slice_values(p.values("gateway")),
        &kv_map(p.values("aux-address")),
    )?;
    let config: Vec<Value> = pools
        .into_iter()
        .map(|pool| {
            let mut m = Map::new();
            for (k, v) in [
                ("Subnet", pool.subnet),
                ("IPRange", pool.range),
                ("Gateway", pool.gateway),
            ] {
                if !v.is_empty() {
                    m.insert(k.into(), json!(v));
                }
            }
            if !pool.aux.is_empty() {
                m.insert("AuxiliaryAddresses".into(), json!(pool.aux));
            }
            Value::Object(m)
        })
        .collect();
    let mut b = Map::new();
    b.insert("Driver".into(), json!(p.value("driver").unwrap_or("bridge")));
    b.insert("Scope".into(), json!(p.value("scope").unwrap_or("")));
    if p.is_set("ipv4") {
        b.insert("EnableIPv4".into(), json!(p.bool("ipv4")));
    }
    if p.is_set("ipv6") {
        b.insert("EnableIPv6".into(), json!(p.bool("ipv6")));
    }
    b.insert(
        "IPAM".into(),
        json!({
            "Driver": p.value("ipam-driver").unwrap_or("default"),
            "Options": kv_map(p.values("ipam-opt")),
            "Config": config,
        }),
    );
    b.insert("Internal".into(), json!(p.bool("internal")));
    b.insert("Attachable".into(), json!(p.bool("attachable")));
    b.insert("Ingress".into(), json!(p.bool("ingress")));
    b.insert("ConfigOnly".into(), json!(p.bool("config-only")));
    let from = match p.value("config-from").filter(|v| !v.is_empty()) {
        Some(n) => json!({ "Network": n }),
        None => Value::Null,
    };
    b.insert("ConfigFrom".into(), from);
    b.insert("Options".into(), json!(kv_map(p.values("opt"))));
    b.insert("Labels".into(), json!(kv_map(p.values("label"))));
    b.insert("Name".into(), json!(name));
    if crate::http::version_less(api_version, "1.44") {
        b.insert("CheckDuplicate".into(), json!(true));
    }
    Ok(Value::Object(b))
}

/// An endpoint's settings as docker's `EndpointSettings` marshals them (the fields the
/// daemon fills in sent empty).
pub fn endpoint(
    ipam: Value,
    links: Value,
    aliases: Value,
    mac: &str,
    driver_opts: Value,
    gw_priority: i64,
) -> Value {
    json!({
        "IPAMConfig": ipam, "Links": links, "Aliases": aliases, "MacAddress": mac,
        "DriverOpts": driver_opts, "GwPriority": gw_priority, "NetworkID": "", "EndpointID": "",
        "Gateway": "", "IPAddress": "", "IPPrefixLen": 0, "IPv6Gateway": "",
        "GlobalIPv6Address": "", "GlobalIPv6PrefixLen": 0, "DNSNames": null
    })
}

/// `EndpointIPAMConfig` with its empty fields left out.
pub fn endpoint_ipam(v4: &str, v6: &str, link_local: &[String]) -> Value {
    let mut m = Map::new();
    if !v4.is_empty() {
        m.insert("IPv4Address".into(), json!(v4));
    }
    if !v6.is_empty() {
        m.insert("IPv6Address".into(), json!(v6));
    }
    if !link_local.is_empty() {
        m.insert("LinkLocalIPs".into(), json!(link_local));
    }
    Value::Object(m)
}

/// docker's `convertDriverOpt`: `k=v` pairs, keys and values trimmed.
fn driver_opts(values: &[String]) -> Result<BTreeMap<String, String>, String> {
    let mut m = BTreeMap::new();
    for o in values {
        match o.split_once('=') {
            Some((k, v)) if !k.trim().is_empty() => {
                m.insert(k.trim().to_string(), v.trim().to_string());
            }
            _ => return Err("invalid key/value pair format in driver options".into()),
        }
    }
    Ok(m)
}

/// The body of `POST /networks/{id}/connect`.
pub fn connect(p: &Parsed, container: &str) -> Result<Value, String> {
    let opts = driver_opts(&slice_values(p.values("driver-opt")))?;
    let links = p.values("link");
    let gw = p
        .value("gw-priority")
        .and_then(|v| crate::goparse::parse_i64(v).ok())
        .unwrap_or(0);
    let ep = endpoint(
        endpoint_ipam(
            p.value("ip").unwrap_or(""),
            p.value("ip6").unwrap_or(""),
            &slice_values(p.values("link-local-ip")),
        ),
        if links.is_empty() {
            Value::Null
        } else {
            json!(links)
        },
        json!(slice_values(p.values("alias"))),
        "",
        json!(opts),
        gw,
    );
    Ok(json!({ "Container": container, "EndpointConfig": ep }))
}
