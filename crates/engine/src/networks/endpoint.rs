//! A container's side of networks: its endpoint settings checked at create (dockerd's rules for
//! `--network`, `--ip`, `--network-alias`), interfaces given at start and taken back at its end,
//! `network connect`/`disconnect`, and the state reconciled after a daemon restart.

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use berth_network::{mac_for, mac_string};

use super::dataplane::Plug;
use super::ports::{self, PortMap};
use super::{Attachment, Network, NetworkService, State};
use crate::images::Error;

/// A container's settings on one network (part of docker's `EndpointSettings`), and while it runs
/// what it was given.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EndpointConfig {
    pub network_id: String,
    #[serde(default)]
    pub aliases: Vec<String>,
    /// `--ip`.
    #[serde(default)]
    pub ipv4: Option<Ipv4Addr>,
    /// `--ip6`.
    #[serde(default)]
    pub ipv6: Option<Ipv6Addr>,
    /// `--mac-address`.
    #[serde(default)]
    pub mac: Option<String>,
    #[serde(default)]
    pub driver_opts: Option<BTreeMap<String, String>>,
    #[serde(default)]
    pub endpoint_id: String,
    #[serde(default)]
    pub ip: Option<Ipv4Addr>,
    #[serde(default)]
    pub prefix: u8,
    #[serde(default)]
    pub gateway: Option<Ipv4Addr>,
    /// What a run gave on a network with IPv6.
    #[serde(default)]
    pub ip6: Option<Ipv6Addr>,
    #[serde(default)]
    pub prefix6: u8,
    #[serde(default)]
    pub gateway6: Option<Ipv6Addr>,
    #[serde(default)]
    pub mac_address: String,
    #[serde(default)]
    pub dns_names: Vec<String>,
    /// The interface inside the container (`eth0`).
    #[serde(default)]
    pub ifname: String,
}

impl EndpointConfig {
    /// docker's `EndpointSettings`.
    pub fn shown(&self) -> Value {
        json!({
            "IPAMConfig": self.ipam_config(),
            "Links": null,
            "Aliases": if self.aliases.is_empty() { Value::Null } else { json!(self.aliases) },
            "MacAddress": self.mac_address,
            "DriverOpts": self.driver_opts,
            "GwPriority": 0,
            "NetworkID": self.network_id,
            "EndpointID": self.endpoint_id,
            "Gateway": self.gateway.map(|g| g.to_string()).unwrap_or_default(),
            "IPAddress": self.ip.map(|g| g.to_string()).unwrap_or_default(),
            "IPPrefixLen": self.prefix,
            "IPv6Gateway": self.gateway6.map(|g| g.to_string()).unwrap_or_default(),
            "GlobalIPv6Address": self.ip6.map(|g| g.to_string()).unwrap_or_default(),
            "GlobalIPv6PrefixLen": self.prefix6,
            "DNSNames": if self.dns_names.is_empty() { Value::Null } else { json!(self.dns_names) },
        })
    }

    /// The addresses asked for (`--ip`, `--ip6`), null when none was.
    fn ipam_config(&self) -> Value {
        if self.ipv4.is_none() && self.ipv6.is_none() {
            return Value::Null;
        }
        let mut m = serde_json::Map::new();
        if let Some(a) = self.ipv4 {
            m.insert("IPv4Address".into(), json!(a.to_string()));
        }
        if let Some(a) = self.ipv6 {
            m.insert("IPv6Address".into(), json!(a.to_string()));
        }
        Value::Object(m)
    }

    /// Forgets what a run gave (the container stopped).
    pub fn clear_runtime(&mut self) {
        self.endpoint_id.clear();
        self.ip = None;
        self.prefix = 0;
        self.gateway = None;
        self.ip6 = None;
        self.prefix6 = 0;
        self.gateway6 = None;
        self.mac_address.clear();
        self.dns_names.clear();
        self.ifname.clear();
    }

    /// The settings of a create body's `EndpointsConfig` entry.
    fn from_request(v: &Value, network_id: &str) -> Result<EndpointConfig, Error> {
        let strs = |k: &str| -> Vec<String> {
            v.get(k)
                .and_then(Value::as_array)
                .map(|a| a.iter().filter_map(|x| x.as_str().map(String::from)).collect())
                .unwrap_or_default()
        };
        fn address<A: std::str::FromStr>(v: &Value, family: &str) -> Result<Option<A>, Error> {
            let key = format!("/IPAMConfig/{family}Address");
            match v.pointer(&key).and_then(Value::as_str).filter(|s| !s.is_empty()) {
                Some(s) => s
                    .parse()
                    .map(Some)
                    .map_err(|_| Error::Invalid(format!("invalid {family} address: {s}"))),
                None => Ok(None),
            }
        }
        let ipv4 = address::<Ipv4Addr>(v, "IPv4")?;
        let ipv6 = address::<Ipv6Addr>(v, "IPv6")?;
        let mac = v
            .get("MacAddress")
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .map(String::from);
        if let Some(m) = &mac {
            parse_mac(m)?;
        }
        let driver_opts = v
            .get("DriverOpts")
            .filter(|d| !d.is_null())
            .map(|d| serde_json::from_value(d.clone()))
            .transpose()
            .map_err(|e| Error::Invalid(format!("invalid DriverOpts: {e}")))?;
        Ok(EndpointConfig {
            network_id: network_id.to_string(),
            aliases: strs("Aliases"),
            ipv4,
            ipv6,
            mac,
            driver_opts,
            ..Default::default()
        })
    }
}

fn parse_mac(s: &str) -> Result<[u8; 6], Error> {
    let parts: Vec<&str> = s.split(':').collect();
    let bad = || Error::Invalid(format!("invalid MAC address: {s}"));
    if parts.len() != 6 {
        return Err(bad());
    }
    let mut m = [0u8; 6];
    for (i, p) in parts.iter().enumerate() {
        if p.len() != 2 {
            return Err(bad());
        }
        m[i] = u8::from_str_radix(p, 16).map_err(|_| bad())?;
    }
    Ok(m)
}

fn random_hex(n: usize) -> String {
    crate::containers::record::new_id()[..n].to_string()
}

/// A container about to start, as the network service needs it.
pub struct Attach<'a> {
    pub id: &'a str,
    /// Without the slash.
    pub name: &'a str,
    /// The network of `NetworkMode` (its interface gets the default route), then the others.
    pub primary: &'a str,
    pub networks: &'a BTreeMap<String, EndpointConfig>,
    pub port_bindings: &'a Value,
    pub exposed: Vec<String>,
    pub publish_all: bool,
}

/// What a start got.
#[derive(Debug, Clone)]
pub struct Attached {
    /// The namespace file (`NetworkSettings.SandboxKey`).
    pub sandbox: PathBuf,
    pub networks: BTreeMap<String, EndpointConfig>,
    pub ports: Vec<PortMap>,
    /// Whether the container is on a user-defined network (its resolver is the embedded DNS).
    pub embedded_dns: bool,
}

impl NetworkService {
    /// At create: `NetworkMode` normalized (`default` is `bridge`) and the container's endpoint
    /// settings by network name, checked with dockerd's rules.
    pub fn plan_container(
        &self,
        mode: &str,
        endpoints: Option<&Value>,
        mac: Option<&str>,
    ) -> Result<(String, BTreeMap<String, EndpointConfig>), Error> {
        let mode = match mode {
            "" | "default" => "bridge",
            m => m,
        };
        let st = self.lock();
        let mut out = BTreeMap::new();
        if mode.starts_with("container:") {
            if endpoints
                .and_then(Value::as_object)
                .is_some_and(|m| !m.is_empty())
            {
                return Err(Error::Invalid(
                    "conflicting options: container type network can't be used with other networks".into(),
                ));
            }
            return Ok((mode.to_string(), out));
        }
        let main = Self::find(&st, mode)?;
        let mode_name = if matches!(mode, "bridge" | "host" | "none") {
            mode.to_string()
        } else {
            main.name.clone()
        };
        let mut reqs: Vec<(&Network, Value)> = vec![(main, Value::Null)];
        if let Some(m) = endpoints.and_then(Value::as_object) {
            for (k, v) in m {
                let n = Self::find(&st, if k == "default" { "bridge" } else { k })?;
                if n.id == main.id {
                    reqs[0].1 = v.clone();
                } else {
                    reqs.push((n, v.clone()));
                }
            }
        }
        let special = |n: &Network| n.driver == "host" || n.driver == "null";
        if reqs.len() > 1 && reqs.iter().any(|(n, _)| special(n)) {
            return Err(Error::Invalid(
                "conflicting options: cannot attach both user-defined and non-user-defined network-modes"
                    .into(),
            ));
        }
        for (i, (n, v)) in reqs.iter().enumerate() {
            let mut cfg = EndpointConfig::from_request(v, &n.id)?;
            if i == 0 && cfg.mac.is_none() {
                cfg.mac = mac.filter(|m| !m.is_empty()).map(String::from);
                if let Some(m) = &cfg.mac {
                    parse_mac(m)?;
                }
            }
            check_endpoint(n, &cfg)?;
            let outside = |a: String| {
                Error::Invalid(format!(
                    "no configured subnet or ip-range contain the IP address {a}"
                ))
            };
            if let (Some(a), Some(i)) = (cfg.ipv4, n.ipam.as_ref()) {
                if !i.subnet.contains(a) {
                    return Err(outside(a.to_string()));
                }
            }
            if let (Some(a), Some(i)) = (cfg.ipv6, n.ipam6.as_ref()) {
                if !i.subnet.contains(a) {
                    return Err(outside(a.to_string()));
                }
            }
            if special(n) && cfg.mac.is_some() {
                return Err(Error::Invalid(format!(
                    "conflicting options: mac-address and the network mode {}",
                    n.name
                )));
            }
            let key = if i == 0 { mode_name.clone() } else { n.name.clone() };
            out.insert(key, cfg);
        }
        Ok((mode_name, out))
    }

    /// The namespace file of container `id`.
    pub fn sandbox_path(&self, id: &str) -> PathBuf {
        self.settings.netns_dir.join(&id[..12.min(id.len())])
    }

    /// At start: a network namespace with one interface per network, published ports. All or nothing.
    pub fn attach(&self, a: &Attach<'_>) -> Result<Attached, Error> {
        let sandbox = self.sandbox_path(a.id);
        // Leftovers of a start that died half-way are released first.
        self.detach(a.id, &sandbox);
        self.dp.sandbox_create(&sandbox).map_err(|e| {
            Error::Internal(format!("create the network namespace {}: {e}", sandbox.display()))
        })?;
        let mut done = Attached {
            sandbox: sandbox.clone(),
            networks: a.networks.clone(),
            ports: Vec::new(),
            embedded_dns: false,
        };
        match self.attach_all(a, &mut done) {
            Ok(()) => Ok(done),
            Err(e) => {
                self.detach(a.id, &sandbox);
                Err(e)
            }
        }
    }

    fn attach_all(&self, a: &Attach<'_>, done: &mut Attached) -> Result<(), Error> {
        let mut order: Vec<String> = vec![a.primary.to_string()];
        order.extend(a.networks.keys().filter(|k| *k != a.primary).cloned());
        for (i, name) in order.iter().enumerate() {
            let Some(cfg) = a.networks.get(name) else { continue };
            let got = self.plug_one(a.id, a.name, &done.sandbox, i, name, cfg, i == 0)?;
            let user = {
                let st = self.lock();
                st.nets.get(&got.network_id).is_some_and(|n| !n.default_bridge)
            };
            done.embedded_dns |= user;
            done.networks.insert(name.clone(), got);
        }
        // Ports go to the first network's address, as dockerd maps them.
        let wants = ports::wants(a.port_bindings, &a.exposed, a.publish_all)?;
        if !wants.is_empty() {
            let first = done.networks.get(a.primary).cloned().unwrap_or_default();
            let Some(cip) = first.ip else {
                return Err(Error::Invalid(format!(
                    "ports cannot be published on the network {}",
                    a.primary
                )));
            };
            let mut st = self.lock();
            let bridge = st
                .nets
                .get(&first.network_id)
                .map(|n| n.bridge.clone())
                .unwrap_or_default();
            let endpoint = format!("{} ({})", a.name, first.endpoint_id);
            let maps = st
                .ports
                .reserve(a.id, &endpoint, &bridge, (cip, first.ip6), &wants)?;
            if let Some(n) = st.nets.get_mut(&first.network_id) {
                if let Some(att) = n.endpoints.get_mut(a.id) {
                    att.ports = maps.clone();
                }
                let n = n.clone();
                self.save(&n)?;
            }
            self.sync_firewall(&st)?;
            done.ports = maps;
        }
        Ok(())
    }

    /// Gives the container one interface on network `name`.
    #[allow(clippy::too_many_arguments)]
    fn plug_one(
        &self,
        id: &str,
        cname: &str,
        sandbox: &Path,
        index: usize,
        name: &str,
        cfg: &EndpointConfig,
        default_route: bool,
    ) -> Result<EndpointConfig, Error> {
        let (plug, got) = {
            let mut st = self.lock();
            let n = Self::find(&st, &cfg.network_id)
                .or_else(|_| Self::find(&st, name))
                .map_err(|_| Error::NotFound(format!("network {name} not found")))?
                .clone();
            if !n.is_bridge() {
                return Err(Error::Invalid(format!(
                    "a container cannot be attached to the {} network together with others",
                    n.name
                )));
            }
            if n.endpoints.contains_key(id) {
                return Err(Error::Forbidden(format!(
                    "endpoint with name {cname} already exists in network {}",
                    n.name
                )));
            }
            let net = st.nets.get_mut(&n.id).expect("found above");
            let ipam = net
                .ipam
                .as_mut()
                .ok_or_else(|| Error::Internal(format!("network {} has no addresses", n.name)))?;
            let refused = |e: berth_network::IpamError| match e {
                berth_network::IpamError::InUse => Error::Forbidden("Address already in use".into()),
                e => Error::Forbidden(e.to_string()),
            };
            let ip = ipam.allocate(cfg.ipv4).map_err(refused)?;
            let (prefix, gateway) = (ipam.subnet.prefix(), ipam.gateway);
            let v6 = match net.ipam6.as_mut() {
                Some(i6) => match i6.allocate(cfg.ipv6) {
                    Ok(a) => Some((a, i6.subnet.prefix(), i6.gateway)),
                    Err(e) => {
                        if let Some(i) = net.ipam.as_mut() {
                            let _ = i.release(ip);
                        }
                        return Err(refused(e));
                    }
                },
                None => None,
            };
            let mac = match &cfg.mac {
                Some(m) => parse_mac(m)?,
                None => mac_for(ip),
            };
            let mut dns_names = vec![cname.to_string()];
            if !n.default_bridge {
                dns_names.extend(cfg.aliases.iter().cloned());
                dns_names.push(id[..12].to_string());
            }
            let att = Attachment {
                name: cname.to_string(),
                endpoint_id: random_hex(64),
                ip,
                ip6: v6.map(|v| v.0),
                mac: mac_string(&mac),
                veth: format!("veth{}", random_hex(7)),
                dns_names: dns_names.clone(),
                ports: Vec::new(),
            };
            net.endpoints.insert(id.to_string(), att.clone());
            let saved = net.clone();
            if let Err(e) = self.save(&saved) {
                let net = st.nets.get_mut(&n.id).expect("found above");
                net.endpoints.remove(id);
                net.release_addresses(&att);
                return Err(e);
            }
            let plug = Plug {
                sandbox: sandbox.to_path_buf(),
                bridge: n.bridge.clone(),
                veth: att.veth.clone(),
                ifname: format!("eth{index}"),
                mac,
                ip,
                prefix,
                gateway: (default_route && !n.internal).then_some(gateway),
                ip6: v6.map(|v| (v.0, v.1)),
                gateway6: v6.filter(|_| default_route && !n.internal).map(|v| v.2),
                mtu: if n.mtu == 0 { 1500 } else { n.mtu },
            };
            let got = EndpointConfig {
                endpoint_id: att.endpoint_id.clone(),
                ip: Some(ip),
                prefix,
                gateway: Some(gateway),
                ip6: v6.map(|v| v.0),
                prefix6: v6.map_or(0, |v| v.1),
                gateway6: v6.map(|v| v.2),
                mac_address: att.mac.clone(),
                dns_names: if n.default_bridge { Vec::new() } else { dns_names },
                ifname: plug.ifname.clone(),
                network_id: n.id.clone(),
                ..cfg.clone()
            };
            (plug, got)
        };
        if let Err(e) = self.dp.plug(&plug) {
            self.release_on(&got.network_id, id);
            return Err(Error::Internal(format!(
                "attach the container to network {name} ({} on {}): {e}",
                plug.ifname, plug.bridge
            )));
        }
        if let Ok(n) = self.get(&got.network_id) {
            self.event("connect", &n, Some(id));
        }
        Ok(got)
    }

    /// Takes container `id` off network `network_id`: its veth, address and ports.
    fn release_on(&self, network_id: &str, id: &str) -> Option<Attachment> {
        let mut st = self.lock();
        let n = st.nets.get_mut(network_id)?;
        let att = n.endpoints.remove(id)?;
        n.release_addresses(&att);
        let saved = n.clone();
        if let Err(e) = self.save(&saved) {
            eprintln!("berthd: save network {}: {e}", saved.name);
        }
        if !att.ports.is_empty() {
            st.ports.release(id);
            if let Err(e) = self.sync_firewall(&st) {
                eprintln!("berthd: {e}");
            }
        }
        drop(st);
        if let Err(e) = self.dp.unplug(&att.veth) {
            eprintln!("berthd: delete the interface {}: {e}", att.veth);
        }
        Some(att)
    }

    /// At a container's end (or a failed start): every interface, address and port it had, and its
    /// namespace file. Idempotent.
    pub fn detach(&self, id: &str, sandbox: &Path) {
        let on: Vec<(String, Network)> = {
            let st = self.lock();
            st.nets
                .values()
                .filter(|n| n.endpoints.contains_key(id))
                .map(|n| (n.id.clone(), n.clone()))
                .collect()
        };
        for (nid, n) in on {
            if self.release_on(&nid, id).is_some() {
                self.event("disconnect", &n, Some(id));
            }
        }
        if let Err(e) = self.dp.sandbox_remove(sandbox) {
            eprintln!("berthd: remove the network namespace {}: {e}", sandbox.display());
        }
    }

    /// `network connect` of a running container: a new interface in its namespace.
    pub fn connect_running(
        &self,
        id: &str,
        cname: &str,
        sandbox: &Path,
        name: &str,
        cfg: &EndpointConfig,
        index: usize,
    ) -> Result<EndpointConfig, Error> {
        self.plug_one(id, cname, sandbox, index, name, cfg, false)
    }

    /// `network disconnect` of a running container.
    pub fn disconnect_running(&self, id: &str, network_id: &str) {
        let n = self.get(network_id).ok();
        if self.release_on(network_id, id).is_some() {
            if let Some(n) = n {
                self.event("disconnect", &n, Some(id));
            }
        }
    }

    /// Checks a `network connect` request against the network and turns it into endpoint settings.
    pub fn plan_connect(
        &self,
        network: &str,
        endpoint: Option<&Value>,
    ) -> Result<(Network, EndpointConfig), Error> {
        let n = self.get(network)?;
        let cfg = EndpointConfig::from_request(endpoint.unwrap_or(&Value::Null), &n.id)?;
        if n.driver == "host" || n.driver == "null" {
            return Err(Error::Forbidden(
                "container cannot be disconnected from host network or connected to host network".into(),
            ));
        }
        check_endpoint(&n, &cfg)?;
        Ok((n, cfg))
    }

    /// After the containers were restored: endpoints of containers no longer running are released
    /// (their ports too), namespace files of no running container removed, the rules written again.
    /// `running` answers for a full container ID or a 12-digit prefix (a namespace file's name).
    pub fn reconcile(&self, running: &dyn Fn(&str) -> bool) {
        let stale: Vec<(String, String)> = {
            let st = self.lock();
            st.nets
                .values()
                .flat_map(|n| n.endpoints.keys().map(move |c| (n.id.clone(), c.clone())))
                .filter(|(_, c)| !running(c))
                .collect()
        };
        let released = !stale.is_empty();
        for (nid, c) in stale {
            self.release_on(&nid, &c);
        }
        {
            let st = self.lock();
            if let Err(e) = self.sync_firewall(&st) {
                eprintln!("berthd: {e}");
            }
        }
        // Changed default bridge settings that waited for these containers apply now.
        if released {
            if let Err(e) = self.predefined() {
                eprintln!("berthd: the default bridge: {e}");
            }
        }
        let live: Vec<String> = {
            let st = self.lock();
            st.nets
                .values()
                .flat_map(|n| n.endpoints.keys().map(|c| c[..12].to_string()))
                .collect()
        };
        if let Ok(rd) = std::fs::read_dir(&self.settings.netns_dir) {
            for ent in rd.flatten() {
                let name = ent.file_name().to_string_lossy().into_owned();
                if !live.contains(&name) && !running(&name) {
                    let _ = self.dp.sandbox_remove(&ent.path());
                }
            }
        }
    }

    /// The state, for the embedded DNS: names (and aliases) on the user networks `from` is on.
    pub fn resolve_name(&self, from: &str, name: &str) -> Option<Vec<std::net::IpAddr>> {
        let st = self.lock();
        lookup(&st, from, name)
    }

    pub fn resolve_addr(&self, from: &str, ip: std::net::IpAddr) -> Option<String> {
        let st = self.lock();
        st.nets
            .values()
            .filter(|n| !n.default_bridge && n.endpoints.contains_key(from))
            .flat_map(|n| n.endpoints.values().map(move |a| (n, a)))
            .find(|(_, a)| match ip {
                std::net::IpAddr::V4(v4) => a.ip == v4,
                std::net::IpAddr::V6(v6) => a.ip6 == Some(v6),
            })
            .map(|(n, a)| format!("{}.{}", a.name, n.name))
    }
}

/// dockerd's rules for aliases (user-defined networks) and `--ip` (user-defined networks with a
/// subnet the user gave).
fn check_endpoint(n: &Network, cfg: &EndpointConfig) -> Result<(), Error> {
    if n.predefined() && !cfg.aliases.is_empty() {
        return Err(Error::Invalid(
            "network-scoped alias is supported only for containers in user defined networks".into(),
        ));
    }
    if cfg.ipv4.is_none() && cfg.ipv6.is_none() {
        return Ok(());
    }
    if n.predefined() {
        return Err(Error::Invalid(
            "user specified IP address is supported on user defined networks only".into(),
        ));
    }
    if cfg.ipv6.is_some() && n.ipam6.is_none() {
        return Err(Error::Invalid(format!(
            "user specified IPv6 address is supported only on networks with IPv6 enabled, and {} has none",
            n.name
        )));
    }
    if cfg.ipv4.is_some() && !n.user_subnet {
        return Err(Error::Invalid(
            "user specified IP address is supported only when connecting to networks with user configured subnets".into(),
        ));
    }
    Ok(())
}

fn lookup(st: &State, from: &str, name: &str) -> Option<Vec<std::net::IpAddr>> {
    let name = name.trim_end_matches('.').to_ascii_lowercase();
    let mut out = Vec::new();
    for n in st
        .nets
        .values()
        .filter(|n| !n.default_bridge && n.endpoints.contains_key(from))
    {
        // `name` or `name.network`.
        let bare = name
            .strip_suffix(&format!(".{}", n.name.to_ascii_lowercase()))
            .unwrap_or(&name)
            .to_string();
        for a in n.endpoints.values() {
            if a.dns_names.iter().any(|d| d.eq_ignore_ascii_case(&bare)) {
                let v6 = a.ip6.map(std::net::IpAddr::V6);
                for ip in std::iter::once(std::net::IpAddr::V4(a.ip)).chain(v6) {
                    if !out.contains(&ip) {
                        out.push(ip);
                    }
                }
            }
        }
    }
    (!out.is_empty()).then_some(out)
}
