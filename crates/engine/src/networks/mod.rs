//! Networks through the engine (issue 6): the network service behind the Engine API's network
//! routes, and the part of a container's start and end that gives it interfaces.
//!
//! A network is a record on disk (`<data-root>/network/<id>.json`) holding its configuration, its
//! address management state (`berth_network::Ipam`) and the endpoints of the running containers
//! on it, so that addresses survive a daemon restart and are released when a container ends.
//! Everything that touches the host goes through a [`Dataplane`] (`dataplane.rs`: netlink, network
//! namespaces, nftables), so the bookkeeping here is tested without root.
//!
//! ```text
//!   berthd starts ──> predefined networks (bridge, host, none) loaded or made,
//!                     bridges up, firewall rules from the records, orphans swept
//!   container start ─> netns file ──> per network: address, veth (peer made inside the netns as
//!                     ethN), MAC, route ──> host ports reserved, DNAT rules ──> DNS (user networks)
//!   container end ───> veth deleted, netns removed, addresses released, rules and ports dropped
//! ```

pub mod dataplane;
pub mod endpoint;
pub mod ports;

use std::collections::{BTreeMap, HashMap};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, Weak};

use berth_network::dns::{Resolver, Server, ServerHandle};

use berth_network::ipam::IpamOf;
use berth_network::pools::{self, Pool};
use berth_network::{Cidr, Family, Ipam, Ipam6, Subnet, Subnet6};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::events::Events;
use crate::images::Error;
pub use dataplane::Dataplane;
pub use endpoint::{Attach, Attached, EndpointConfig};

/// How berthd's networks are set up (dockerd's daemon.json keys in brackets).
#[derive(Debug, Clone)]
pub struct Settings {
    /// `<data-root>/network`: network records.
    pub data: PathBuf,
    /// `<exec-root>/netns`: the network namespace files of running containers.
    pub netns_dir: PathBuf,
    /// The default bridge's interface (`bridge`; berth makes it when missing).
    pub bridge: String,
    /// berth's nftables table (`inet <table>`).
    pub table: String,
    /// The default bridge's gateway address and prefix (`bip`).
    pub bip: Option<(Ipv4Addr, u8)>,
    /// The default bridge's IPv6 subnet (`ipv6` with `fixed-cidr-v6`).
    pub ipv6: Option<Subnet6>,
    /// Where subnets of new networks come from (`default-address-pools`).
    pub pools: Vec<Pool>,
    /// `mtu` (0: 1500).
    pub mtu: u32,
    /// `icc`, `ip-masq`, `ip-forward`, `iptables`.
    pub icc: bool,
    pub ip_masq: bool,
    pub ip_forward: bool,
    pub firewall: bool,
}

impl Settings {
    /// dockerd's defaults under the given roots.
    pub fn new(data_root: &Path, exec_root: &Path) -> Settings {
        Settings {
            data: data_root.join("network"),
            netns_dir: exec_root.join("netns"),
            bridge: "berth0".into(),
            table: "berth".into(),
            bip: None,
            ipv6: None,
            pools: pools::default_pools(),
            mtu: 1500,
            icc: true,
            ip_masq: true,
            ip_forward: true,
            firewall: true,
        }
    }
}

/// A running container's place on a network.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attachment {
    /// The container's name, without the slash.
    pub name: String,
    pub endpoint_id: String,
    pub ip: Ipv4Addr,
    /// Its IPv6 address (networks with IPv6).
    #[serde(default)]
    pub ip6: Option<Ipv6Addr>,
    pub mac: String,
    /// The host side of the veth pair.
    pub veth: String,
    /// Names the embedded DNS answers for it: the container's name, aliases, short ID.
    #[serde(default)]
    pub dns_names: Vec<String>,
    /// Host ports published to it (on the container's first network).
    #[serde(default)]
    pub ports: Vec<ports::PortMap>,
}

/// A network as berthd keeps it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Network {
    pub id: String,
    pub name: String,
    /// `bridge`, `host` or `null`.
    pub driver: String,
    pub created: String,
    #[serde(default)]
    pub internal: bool,
    #[serde(default)]
    pub attachable: bool,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    #[serde(default)]
    pub options: BTreeMap<String, String>,
    #[serde(default)]
    pub ipam_options: BTreeMap<String, String>,
    /// The bridge interface (bridge driver).
    #[serde(default)]
    pub bridge: String,
    #[serde(default)]
    pub ipam: Option<Ipam>,
    /// The IPv6 addresses (`--ipv6`).
    #[serde(default)]
    pub ipam6: Option<Ipam6>,
    /// Whether the user gave the subnet (`--ip` needs one) and the ip range.
    #[serde(default)]
    pub user_subnet: bool,
    #[serde(default)]
    pub user_range: bool,
    #[serde(default)]
    pub default_bridge: bool,
    #[serde(default)]
    pub mtu: u32,
    #[serde(default = "yes")]
    pub icc: bool,
    #[serde(default = "yes")]
    pub masquerade: bool,
    /// Running containers on it, by container ID.
    #[serde(default)]
    pub endpoints: BTreeMap<String, Attachment>,
}

fn yes() -> bool {
    true
}

impl Network {
    pub fn is_bridge(&self) -> bool {
        self.driver == "bridge"
    }

    /// Gives back the addresses of an endpoint.
    pub(crate) fn release_addresses(&mut self, a: &Attachment) {
        if let Some(i) = self.ipam.as_mut() {
            let _ = i.release(a.ip);
        }
        if let (Some(i), Some(ip6)) = (self.ipam6.as_mut(), a.ip6) {
            let _ = i.release(ip6);
        }
    }

    /// Predefined networks cannot be removed, and take no aliases or addresses.
    pub fn predefined(&self) -> bool {
        self.default_bridge || self.driver == "host" || self.driver == "null"
    }

    fn ipam_config(&self) -> Value {
        fn pool<A: Family>(i: &IpamOf<A>, show_range: bool) -> Value {
            let mut c = json!({"Subnet": i.subnet.to_string()});
            if show_range {
                c["IPRange"] = json!(i.range.to_string());
            }
            c["Gateway"] = json!(i.gateway.to_string());
            c
        }
        let v4 = self.ipam.as_ref().map(|i| pool(i, self.user_range));
        let v6 = self.ipam6.as_ref().map(|i| pool(i, i.range != i.subnet));
        Value::Array(v4.into_iter().chain(v6).collect())
    }

    /// dockerd's shape (`GET /networks/{id}`; `GET /networks` has no containers).
    pub fn inspect(&self, with_containers: bool) -> Value {
        let containers: serde_json::Map<String, Value> = if with_containers {
            let prefix = self.ipam.as_ref().map_or(0, |i| i.subnet.prefix());
            let prefix6 = self.ipam6.as_ref().map_or(0, |i| i.subnet.prefix());
            self.endpoints
                .iter()
                .map(|(id, a)| {
                    let v6 = a.ip6.map(|ip| format!("{ip}/{prefix6}")).unwrap_or_default();
                    (
                        id.clone(),
                        json!({
                            "Name": a.name, "EndpointID": a.endpoint_id, "MacAddress": a.mac,
                            "IPv4Address": format!("{}/{prefix}", a.ip), "IPv6Address": v6
                        }),
                    )
                })
                .collect()
        } else {
            Default::default()
        };
        json!({
            "Name": self.name,
            "Id": self.id,
            "Created": self.created,
            "Scope": "local",
            "Driver": self.driver,
            "EnableIPv4": self.is_bridge(),
            "EnableIPv6": self.ipam6.is_some(),
            "IPAM": {
                "Driver": "default",
                "Options": if self.predefined() { Value::Null } else { json!(self.ipam_options) },
                "Config": self.ipam_config(),
            },
            "Internal": self.internal,
            "Attachable": self.attachable,
            "Ingress": false,
            "ConfigFrom": {"Network": ""},
            "ConfigOnly": false,
            "Containers": containers,
            "Options": self.options,
            "Labels": self.labels,
        })
    }

    fn save(&self, dir: &Path) -> Result<(), Error> {
        let tmp = dir.join(format!(".{}.tmp", self.id));
        let data = serde_json::to_vec_pretty(self).map_err(internal)?;
        std::fs::write(&tmp, data).map_err(internal)?;
        std::fs::rename(&tmp, dir.join(format!("{}.json", self.id))).map_err(internal)
    }
}

fn internal<E: std::fmt::Display>(e: E) -> Error {
    Error::Internal(e.to_string())
}

fn forbidden(m: impl Into<String>) -> Error {
    Error::Forbidden(m.into())
}

/// `POST /networks/create`'s body (the parts berth reads).
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct CreateRequest {
    pub name: String,
    pub driver: String,
    pub internal: bool,
    pub attachable: bool,
    #[serde(rename = "EnableIPv6")]
    pub enable_ipv6: Option<bool>,
    #[serde(rename = "EnableIPv4")]
    pub enable_ipv4: Option<bool>,
    #[serde(rename = "IPAM")]
    pub ipam: Option<IpamRequest>,
    pub options: Option<BTreeMap<String, String>>,
    pub labels: Option<BTreeMap<String, String>>,
    pub ingress: bool,
    pub config_only: bool,
    pub config_from: Option<Value>,
    pub scope: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct IpamRequest {
    pub driver: String,
    pub config: Option<Vec<IpamPool>>,
    pub options: Option<BTreeMap<String, String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct IpamPool {
    #[serde(rename = "Subnet")]
    pub subnet: String,
    #[serde(rename = "IPRange")]
    pub ip_range: String,
    #[serde(rename = "Gateway")]
    pub gateway: String,
    #[serde(rename = "AuxiliaryAddresses")]
    pub aux: Option<BTreeMap<String, String>>,
}

/// The options of the bridge driver berth reads.
const OPT_NAME: &str = "com.docker.network.bridge.name";
const OPT_MTU: &str = "com.docker.network.driver.mtu";
const OPT_ICC: &str = "com.docker.network.bridge.enable_icc";
const OPT_MASQ: &str = "com.docker.network.bridge.enable_ip_masquerade";

pub(crate) struct State {
    pub(crate) nets: BTreeMap<String, Network>,
    pub(crate) ports: ports::Table,
    /// The families whose forwarding berthd turned on (the firewall then guards other forwarding).
    guards: dataplane::Guards,
}

/// The network service.
pub struct NetworkService {
    pub(crate) settings: Settings,
    pub(crate) dp: Arc<dyn Dataplane>,
    pub(crate) state: Mutex<State>,
    events: Arc<Events>,
    /// The embedded DNS of each running container on a user-defined network.
    dns: Mutex<HashMap<String, ServerHandle>>,
}

/// The embedded DNS's view of the networks.
struct Names(Weak<NetworkService>);

impl Resolver for Names {
    fn lookup(&self, from: &str, name: &str) -> Option<Vec<std::net::IpAddr>> {
        self.0.upgrade()?.resolve_name(from, name)
    }

    fn reverse(&self, from: &str, ip: std::net::IpAddr) -> Option<String> {
        self.0.upgrade()?.resolve_addr(from, ip)
    }
}

impl NetworkService {
    /// Loads the networks, makes the predefined ones, brings the bridges up and writes the rules.
    pub fn open(
        settings: Settings,
        dp: Arc<dyn Dataplane>,
        events: Arc<Events>,
    ) -> Result<Arc<NetworkService>, Error> {
        for d in [&settings.data, &settings.netns_dir] {
            std::fs::create_dir_all(d).map_err(|e| internal(format!("create {}: {e}", d.display())))?;
        }
        let mut nets = BTreeMap::new();
        for ent in std::fs::read_dir(&settings.data).map_err(internal)? {
            let p = ent.map_err(internal)?.path();
            if p.extension().and_then(|e| e.to_str()) != Some("json") {
                continue;
            }
            let data = std::fs::read(&p).map_err(internal)?;
            match serde_json::from_slice::<Network>(&data) {
                Ok(n) => {
                    nets.insert(n.id.clone(), n);
                }
                Err(e) => eprintln!("berthd: skip the network record {}: {e}", p.display()),
            }
        }
        // The ports of containers that were running: held again before the first rules are
        // written, so a restart of berthd never drops a published port (`reconcile` then releases
        // those of containers that ended meanwhile).
        let mut held = ports::Table::default();
        for n in nets.values() {
            for (c, a) in n.endpoints.iter().filter(|(_, a)| !a.ports.is_empty()) {
                held.restore(c, &n.bridge, (a.ip, a.ip6), &a.ports);
            }
        }
        let guards = dataplane::Guards {
            v4: forwarding(dp.as_ref(), &settings, false)?,
            v6: if settings.ipv6.is_some() || nets.values().any(|n| n.ipam6.is_some()) {
                forwarding(dp.as_ref(), &settings, true)?
            } else {
                false
            },
        };
        let svc = Arc::new(NetworkService {
            settings,
            dp,
            state: Mutex::new(State {
                nets,
                ports: held,
                guards,
            }),
            events,
            dns: Mutex::new(HashMap::new()),
        });
        svc.predefined()?;
        Ok(svc)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().expect("network state lock")
    }

    /// Makes `bridge`, `host` and `none` when missing, and brings the default bridge up.
    pub(crate) fn predefined(&self) -> Result<(), Error> {
        let mut st = self.lock();
        for (name, driver) in [("host", "host"), ("none", "null")] {
            if !st.nets.values().any(|n| n.name == name) {
                let n = Network {
                    id: crate::containers::record::new_id(),
                    name: name.into(),
                    driver: driver.into(),
                    created: crate::time::now_rfc3339(),
                    internal: false,
                    attachable: false,
                    labels: BTreeMap::new(),
                    options: BTreeMap::new(),
                    ipam_options: BTreeMap::new(),
                    bridge: String::new(),
                    ipam: None,
                    ipam6: None,
                    user_subnet: false,
                    user_range: false,
                    default_bridge: false,
                    mtu: 0,
                    icc: true,
                    masquerade: true,
                    endpoints: BTreeMap::new(),
                };
                n.save(&self.settings.data)?;
                st.nets.insert(n.id.clone(), n);
            }
        }
        let existing = st.nets.values().find(|n| n.default_bridge).cloned();
        let s = &self.settings;
        let want: Option<(Subnet, Ipv4Addr)> = s
            .bip
            .map(|(gw, p)| {
                Subnet::new(gw, p)
                    .map(|sub| (sub, gw))
                    .ok_or_else(|| Error::Invalid(format!("invalid bip {gw}/{p}")))
            })
            .transpose()?;
        let bridge = match existing {
            Some(mut n)
                if n.bridge == s.bridge
                    && want.is_none_or(|(sub, gw)| {
                        n.ipam
                            .as_ref()
                            .is_some_and(|i| i.subnet == sub && i.gateway == gw)
                    })
                    && n.ipam6.as_ref().map(|i| i.subnet) == s.ipv6 =>
            {
                n.mtu = s.mtu;
                n.options.insert(OPT_MTU.into(), s.mtu.to_string());
                n
            }
            Some(n) if !n.endpoints.is_empty() => {
                // The settings changed while containers have addresses on it: it stays as it is
                // (their addresses, ports and rules keep working) until none has (`reconcile`
                // after a restart, or the next start of berthd).
                eprintln!(
                    "berthd: the default bridge's settings (bridge, bip, fixed-cidr-v6) changed, but {} container(s) still have addresses on {} ({}): they apply once none has",
                    n.endpoints.len(),
                    n.bridge,
                    n.ipam.as_ref().map(|i| i.subnet.to_string()).unwrap_or_default()
                );
                n
            }
            existing => {
                // New, or the bridge settings changed with nothing on it: a fresh default bridge.
                let others: Vec<Subnet> = st
                    .nets
                    .values()
                    .filter(|n| !n.default_bridge)
                    .filter_map(|n| n.ipam.as_ref().map(|i| i.subnet))
                    .collect();
                let (subnet, gateway) = match want {
                    Some((sub, gw)) => (sub, Some(gw)),
                    None => {
                        let mut taken = others.clone();
                        taken.extend(self.host_routes(&s.bridge));
                        let sub = pools::choose(&s.pools, &taken).map_err(|e| forbidden(e.to_string()))?;
                        (sub, None)
                    }
                };
                let ipam =
                    Ipam::new("bridge", subnet, gateway, None).map_err(|e| Error::Invalid(e.to_string()))?;
                let ipam6 = s
                    .ipv6
                    .map(|sub| Ipam6::new("bridge", sub, None, None))
                    .transpose()
                    .map_err(|e| Error::Invalid(format!("fixed-cidr-v6: {e}")))?;
                let mut options = BTreeMap::new();
                options.insert("com.docker.network.bridge.default_bridge".into(), "true".into());
                options.insert(OPT_ICC.into(), s.icc.to_string());
                options.insert(OPT_MASQ.into(), s.ip_masq.to_string());
                options.insert(
                    "com.docker.network.bridge.host_binding_ipv4".into(),
                    "0.0.0.0".into(),
                );
                options.insert(OPT_NAME.into(), s.bridge.clone());
                options.insert(OPT_MTU.into(), s.mtu.to_string());
                let (id, created) = match &existing {
                    Some(e) => (e.id.clone(), e.created.clone()),
                    None => (crate::containers::record::new_id(), crate::time::now_rfc3339()),
                };
                if let Some(old) = existing.filter(|o| o.bridge != s.bridge) {
                    let _ = self.dp.bridge_down(&old.bridge);
                }
                Network {
                    id,
                    name: "bridge".into(),
                    driver: "bridge".into(),
                    created,
                    internal: false,
                    attachable: false,
                    labels: BTreeMap::new(),
                    options,
                    ipam_options: BTreeMap::new(),
                    bridge: s.bridge.clone(),
                    ipam: Some(ipam),
                    ipam6,
                    user_subnet: s.bip.is_some(),
                    user_range: false,
                    default_bridge: true,
                    mtu: s.mtu,
                    icc: s.icc,
                    masquerade: s.ip_masq,
                    endpoints: BTreeMap::new(),
                }
            }
        };
        bridge.save(&self.settings.data)?;
        st.nets.insert(bridge.id.clone(), bridge);
        for n in st.nets.values().filter(|n| n.is_bridge()) {
            self.dp.bridge_up(&dataplane::BridgeSpec::of(n)).map_err(|e| {
                internal(format!(
                    "bring up the bridge {} of network {}: {e}",
                    n.bridge, n.name
                ))
            })?;
        }
        self.sync_firewall(&st)
    }

    /// The host's routes, those of bridge `own` left out (it is ours).
    fn host_routes(&self, own: &str) -> Vec<Subnet> {
        let text = std::fs::read_to_string("/proc/net/route").unwrap_or_default();
        let filtered: String = text
            .lines()
            .filter(|l| l.split_whitespace().next() != Some(own))
            .map(|l| format!("{l}\n"))
            .collect();
        pools::host_routes(&filtered)
    }

    /// Writes berth's whole firewall table from the state.
    pub(crate) fn sync_firewall(&self, st: &State) -> Result<(), Error> {
        if !self.settings.firewall {
            return Ok(());
        }
        let nets: Vec<dataplane::FwNet> = st
            .nets
            .values()
            .filter(|n| n.is_bridge())
            .filter_map(|n| {
                Some(dataplane::FwNet {
                    bridge: n.bridge.clone(),
                    subnet: n.ipam.as_ref()?.subnet,
                    subnet6: n.ipam6.as_ref().map(|i| i.subnet),
                    internal: n.internal,
                    masquerade: n.masquerade,
                    icc: n.icc,
                })
            })
            .collect();
        let ports = st.ports.rules();
        self.dp
            .firewall(&self.settings.table, &nets, &ports, st.guards)
            .map_err(|e| {
                internal(format!(
                    "write the firewall rules (nftables table inet {}): {e}",
                    self.settings.table
                ))
            })
    }

    /// Finds a network by full ID, name, or unique ID prefix (dockerd's order).
    pub(crate) fn find<'a>(st: &'a State, input: &str) -> Result<&'a Network, Error> {
        if let Some(n) = st.nets.get(input) {
            return Ok(n);
        }
        if let Some(n) = st.nets.values().find(|n| n.name == input) {
            return Ok(n);
        }
        let by_prefix: Vec<&Network> = st.nets.values().filter(|n| n.id.starts_with(input)).collect();
        match by_prefix.as_slice() {
            [n] if !input.is_empty() => Ok(n),
            [] | [_] => Err(Error::NotFound(format!("network {input} not found"))),
            many => Err(Error::NotFound(format!(
                "network {input} is ambiguous ({} matches found based on ID prefix)",
                many.len()
            ))),
        }
    }

    /// `GET /networks/{id}`.
    pub fn inspect(&self, input: &str) -> Result<Value, Error> {
        let st = self.lock();
        Ok(Self::find(&st, input)?.inspect(true))
    }

    /// A network's record.
    pub fn get(&self, input: &str) -> Result<Network, Error> {
        let st = self.lock();
        Self::find(&st, input).cloned()
    }

    /// `GET /networks`, with dockerd's filters (`name`, `id`, `driver`, `label`, `type`, `dangling`).
    pub fn list(
        &self,
        filters: &BTreeMap<String, Vec<String>>,
        in_use: &dyn Fn(&str) -> bool,
    ) -> Result<Value, Error> {
        for k in filters.keys() {
            if !matches!(
                k.as_str(),
                "name" | "id" | "driver" | "label" | "type" | "dangling" | "scope"
            ) {
                return Err(Error::Invalid(format!("invalid filter '{k}'")));
            }
        }
        let st = self.lock();
        let mut out = Vec::new();
        for n in st.nets.values() {
            if !matches_filters(n, filters, in_use)? {
                continue;
            }
            out.push(n.inspect(false));
        }
        Ok(Value::Array(out))
    }

    /// `POST /networks/create`: the new network's ID.
    pub fn create(&self, req: CreateRequest) -> Result<String, Error> {
        let name = req.name.trim().to_string();
        if name.is_empty() {
            return Err(Error::Invalid("network name must not be empty".into()));
        }
        if !valid_name(&name) {
            return Err(Error::Invalid(format!(
                "invalid network name {name:?}: only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed"
            )));
        }
        let driver = if req.driver.is_empty() {
            "bridge".to_string()
        } else {
            req.driver.clone()
        };
        if matches!(driver.as_str(), "host" | "null") {
            return Err(forbidden(format!(
                "only one instance of \"{driver}\" network is allowed"
            )));
        }
        if driver != "bridge" {
            return Err(Error::NotFound(format!("plugin \"{driver}\" not found")));
        }
        if req.ingress || req.config_only || req.config_from.as_ref().is_some_and(|v| !v.is_null()) {
            return Err(Error::Invalid(
                "swarm networks (ingress, config-only, config-from) are not supported by berth".into(),
            ));
        }
        if !req.scope.is_empty() && req.scope != "local" {
            return Err(Error::Invalid(format!(
                "invalid scope {:?}: berth networks are local",
                req.scope
            )));
        }
        if req.enable_ipv4 == Some(false) {
            return Err(Error::Invalid(
                "IPv4 cannot be disabled on a berth bridge network".into(),
            ));
        }
        let ipam_req = req.ipam.unwrap_or_default();
        if !ipam_req.driver.is_empty() && ipam_req.driver != "default" {
            return Err(Error::NotFound(format!(
                "plugin \"{}\" not found",
                ipam_req.driver
            )));
        }
        let (pools6, pools_req): (Vec<IpamPool>, Vec<IpamPool>) = ipam_req
            .config
            .unwrap_or_default()
            .into_iter()
            .partition(|p| p.subnet.contains(':'));
        if pools_req.len() > 1 || pools6.len() > 1 {
            return Err(Error::Invalid(
                "berth networks take one IPv4 subnet and one IPv6 subnet (several of a family are not supported yet)".into(),
            ));
        }
        let enable6 = req.enable_ipv6 == Some(true);
        if !pools6.is_empty() && !enable6 {
            return Err(Error::Invalid(format!(
                "the IPv6 subnet {} needs IPv6 enabled on the network (--ipv6)",
                pools6[0].subnet
            )));
        }
        if enable6 && pools6.is_empty() {
            return Err(forbidden(
                "could not find an available, non-overlapping IPv6 address pool among the defaults to assign to the network (berth has no default IPv6 pool: give one with --subnet)",
            ));
        }
        let options = req.options.unwrap_or_default();
        let flag = |k: &str| -> Result<bool, Error> {
            match options.get(k).map(String::as_str) {
                None => Ok(true),
                Some(v) => v.parse().map_err(|_| {
                    Error::Invalid(format!(
                        "invalid value {v:?} for option {k}: expected true or false"
                    ))
                }),
            }
        };
        let icc = flag(OPT_ICC)?;
        let masquerade = flag(OPT_MASQ)?;
        let mtu = match options.get(OPT_MTU) {
            None => self.settings.mtu,
            Some(v) => v
                .parse::<u32>()
                .ok()
                .filter(|m| (68..=65535).contains(m))
                .ok_or_else(|| Error::Invalid(format!("invalid MTU {v:?}: must be between 68 and 65535")))?,
        };
        let id = crate::containers::record::new_id();
        let bridge = match options.get(OPT_NAME) {
            Some(b) if b.is_empty() || b.len() > 15 || b.contains('/') || b.contains(char::is_whitespace) => {
                return Err(Error::Invalid(format!("invalid bridge name {b:?}")));
            }
            Some(b) => b.clone(),
            None => format!("br-{}", &id[..12]),
        };
        let mut st = self.lock();
        if st.nets.values().any(|n| n.name == name) {
            return Err(Error::Conflict(format!(
                "network with name {name} already exists"
            )));
        }
        if st.nets.values().any(|n| n.bridge == bridge) {
            return Err(Error::Conflict(format!(
                "bridge name {bridge} is already used by another network"
            )));
        }
        let others: Vec<Subnet> = st
            .nets
            .values()
            .filter_map(|n| n.ipam.as_ref().map(|i| i.subnet))
            .collect();
        let pool = pools_req.into_iter().next();
        let (subnet, user_subnet) = match pool.as_ref().filter(|p| !p.subnet.is_empty()) {
            Some(p) => {
                let sub: Subnet = parse_cidr(&p.subnet)?;
                pools::check(sub, &others).map_err(|e| forbidden(e.to_string()))?;
                (sub, true)
            }
            None => {
                if pool
                    .as_ref()
                    .is_some_and(|p| !p.ip_range.is_empty() || !p.gateway.is_empty())
                {
                    return Err(Error::Invalid("an ip-range or gateway needs a subnet".into()));
                }
                let mut taken = others.clone();
                taken.extend(self.host_routes(""));
                (
                    pools::choose(&self.settings.pools, &taken).map_err(|e| forbidden(e.to_string()))?,
                    false,
                )
            }
        };
        let ipam = ipam_of(&name, subnet, pool.as_ref())?;
        let ipam6 = match pools6.first() {
            Some(p) => {
                let sub: Subnet6 = parse_cidr(&p.subnet)?;
                let clash = st
                    .nets
                    .values()
                    .filter_map(|n| n.ipam6.as_ref())
                    .any(|i| i.subnet.overlaps(&sub));
                if clash {
                    return Err(forbidden(
                        "invalid pool request: Pool overlaps with other one on this address space",
                    ));
                }
                Some(ipam_of(&name, sub, Some(p))?)
            }
            None => None,
        };
        let n = Network {
            id: id.clone(),
            name: name.clone(),
            driver,
            created: crate::time::now_rfc3339(),
            internal: req.internal,
            attachable: req.attachable,
            labels: req.labels.unwrap_or_default(),
            options,
            ipam_options: ipam_req.options.unwrap_or_default(),
            bridge,
            user_range: pool.as_ref().is_some_and(|p| !p.ip_range.is_empty()),
            ipam: Some(ipam),
            ipam6,
            user_subnet,
            default_bridge: false,
            mtu,
            icc,
            masquerade,
            endpoints: BTreeMap::new(),
        };
        if n.ipam6.is_some() && !st.guards.v6 {
            st.guards.v6 = forwarding(self.dp.as_ref(), &self.settings, true)?;
        }
        // Host first, then the record: a failure leaves neither.
        self.dp
            .bridge_up(&dataplane::BridgeSpec::of(&n))
            .map_err(|e| internal(format!("create the bridge {} of network {name}: {e}", n.bridge)))?;
        st.nets.insert(id.clone(), n.clone());
        if let Err(e) = self.sync_firewall(&st).and_then(|_| n.save(&self.settings.data)) {
            st.nets.remove(&id);
            let _ = self.sync_firewall(&st);
            let _ = self.dp.bridge_down(&n.bridge);
            return Err(e);
        }
        drop(st);
        self.event("create", &n, None);
        Ok(id)
    }

    /// `DELETE /networks/{id}`.
    pub fn remove(&self, input: &str) -> Result<(), Error> {
        let mut st = self.lock();
        let n = Self::find(&st, input)?.clone();
        if n.predefined() {
            return Err(forbidden(format!(
                "{} is a pre-defined network and cannot be removed",
                n.name
            )));
        }
        if !n.endpoints.is_empty() {
            let list: Vec<String> = n
                .endpoints
                .iter()
                .map(|(id, a)| format!("name:{:?} id:{:?}", a.name, &id[..12]))
                .collect();
            return Err(forbidden(format!(
                "error while removing network: network {} id {} has active endpoints ({})",
                n.name,
                n.id,
                list.join(", ")
            )));
        }
        st.nets.remove(&n.id);
        self.sync_firewall(&st)?;
        let _ = std::fs::remove_file(self.settings.data.join(format!("{}.json", n.id)));
        if let Err(e) = self.dp.bridge_down(&n.bridge) {
            eprintln!("berthd: remove the bridge {}: {e}", n.bridge);
        }
        drop(st);
        self.event("destroy", &n, None);
        Ok(())
    }

    /// `POST /networks/prune`: removes user networks with no endpoints; their names.
    pub fn prune(
        &self,
        filters: &BTreeMap<String, Vec<String>>,
        in_use: &dyn Fn(&str) -> bool,
    ) -> Result<Vec<String>, Error> {
        for k in filters.keys() {
            if !matches!(k.as_str(), "until" | "label" | "label!") {
                return Err(Error::Invalid(format!("invalid filter '{k}'")));
            }
        }
        let candidates: Vec<Network> = {
            let st = self.lock();
            st.nets
                .values()
                .filter(|n| !n.predefined() && n.endpoints.is_empty() && !in_use(&n.id) && !in_use(&n.name))
                .cloned()
                .collect()
        };
        let mut removed = Vec::new();
        for n in candidates {
            if !prune_filters(&n, filters)? {
                continue;
            }
            if self.remove(&n.id).is_ok() {
                removed.push(n.name);
            }
        }
        Ok(removed)
    }

    /// Starts the embedded DNS of container `id` inside its namespace `sandbox`, forwarding to
    /// `upstreams` (its `--dns` servers or the host's). Needs the tokio runtime.
    pub fn start_dns(
        self: &Arc<Self>,
        id: &str,
        sandbox: &Path,
        upstreams: Vec<std::net::SocketAddr>,
    ) -> Result<(), Error> {
        let (udp, tcp) = self.dp.dns_sockets(sandbox).map_err(|e| {
            internal(format!(
                "open the embedded DNS's sockets in {}: {e}",
                sandbox.display()
            ))
        })?;
        let resolver: Arc<dyn Resolver> = Arc::new(Names(Arc::downgrade(self)));
        let h = Server::spawn(id.to_string(), udp, tcp, resolver, upstreams)
            .map_err(|e| internal(format!("start the embedded DNS: {e}")))?;
        self.dns.lock().expect("dns lock").insert(id.to_string(), h);
        Ok(())
    }

    /// Whether the embedded DNS of container `id` runs.
    pub fn serves_dns(&self, id: &str) -> bool {
        self.dns.lock().expect("dns lock").contains_key(id)
    }

    /// Stops the embedded DNS of container `id` (none is fine).
    pub async fn stop_dns(&self, id: &str) {
        let h = self.dns.lock().expect("dns lock").remove(id);
        if let Some(h) = h {
            h.stop().await;
        }
    }

    pub(crate) fn event(&self, action: &str, n: &Network, container: Option<&str>) {
        let mut a = BTreeMap::new();
        if let Some(c) = container {
            a.insert("container".to_string(), c.to_string());
        }
        a.insert("name".to_string(), n.name.clone());
        a.insert("type".to_string(), n.driver.clone());
        self.events.emit("network", action, &n.id, a);
    }

    pub(crate) fn save(&self, n: &Network) -> Result<(), Error> {
        n.save(&self.settings.data)
    }
}

/// Turns forwarding of a family on (dockerd's `ip-forward`) and says whether berthd did it, now or
/// before a restart (a marker file remembers): the firewall then drops forwarded traffic of that
/// family that berth's bridges have no part in.
fn forwarding(dp: &dyn Dataplane, settings: &Settings, v6: bool) -> Result<bool, Error> {
    if !(settings.ip_forward && settings.firewall) {
        return Ok(false);
    }
    let (family, marker) = if v6 {
        ("IPv6", "ip6_forward-enabled-by-berthd")
    } else {
        ("IPv4", "ip_forward-enabled-by-berthd")
    };
    let marker = settings.data.join(marker);
    if dp
        .enable_forwarding(v6)
        .map_err(|e| internal(format!("enable {family} forwarding: {e}")))?
    {
        std::fs::write(&marker, b"").map_err(internal)?;
    }
    Ok(marker.exists())
}

fn valid_name(n: &str) -> bool {
    let mut cs = n.chars();
    cs.next().is_some_and(|c| c.is_ascii_alphanumeric())
        && cs.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
}

fn parse_cidr<A: Family>(s: &str) -> Result<Cidr<A>, Error> {
    s.parse()
        .map_err(|e: berth_network::NetError| Error::Invalid(e.to_string()))
}

/// A network's address management of one family from its pool request (`--subnet` given or
/// chosen, `--gateway`, `--ip-range`, `--aux-address`).
fn ipam_of<A: Family + Into<IpAddr>>(
    name: &str,
    subnet: Cidr<A>,
    pool: Option<&IpamPool>,
) -> Result<IpamOf<A>, Error> {
    let gateway = match pool.map(|p| p.gateway.as_str()).filter(|g| !g.is_empty()) {
        Some(g) => Some(
            g.parse::<A>()
                .map_err(|_| Error::Invalid(format!("invalid gateway address {g:?}")))?,
        ),
        None => None,
    };
    let range = match pool.map(|p| p.ip_range.as_str()).filter(|r| !r.is_empty()) {
        Some(r) => Some(parse_cidr(r)?),
        None => None,
    };
    let mut ipam = IpamOf::new(name, subnet, gateway, range).map_err(|e| forbidden(e.to_string()))?;
    for (host, a) in pool.and_then(|p| p.aux.clone()).unwrap_or_default() {
        let ip: A = a
            .parse()
            .map_err(|_| Error::Invalid(format!("invalid auxiliary address {host}={a}")))?;
        ipam.allocate(Some(ip))
            .map_err(|e| forbidden(format!("auxiliary address {host}={a}: {e}")))?;
    }
    Ok(ipam)
}

fn label_matches(labels: &BTreeMap<String, String>, f: &str) -> bool {
    match f.split_once('=') {
        Some((k, v)) => labels.get(k).is_some_and(|x| x == v),
        None => labels.contains_key(f),
    }
}

fn matches_filters(
    n: &Network,
    f: &BTreeMap<String, Vec<String>>,
    in_use: &dyn Fn(&str) -> bool,
) -> Result<bool, Error> {
    let any = |k: &str, test: &dyn Fn(&str) -> bool| f.get(k).is_none_or(|vs| vs.iter().any(|v| test(v)));
    let mut ok = any("name", &|v| n.name.contains(v))
        && any("id", &|v| n.id.starts_with(v))
        && any("driver", &|v| n.driver == v)
        && any("scope", &|v| v == "local")
        && f.get("label")
            .is_none_or(|vs| vs.iter().all(|v| label_matches(&n.labels, v)));
    if let Some(ts) = f.get("type") {
        for t in ts {
            if t != "custom" && t != "builtin" {
                return Err(Error::Invalid(format!("invalid filter: 'type'='{t}'")));
            }
        }
        ok &= ts.iter().any(|t| (t == "builtin") == n.predefined());
    }
    if let Some(ds) = f.get("dangling") {
        let want = match ds.first().map(String::as_str) {
            Some("true") | Some("1") => true,
            Some("false") | Some("0") => false,
            Some(v) => return Err(Error::Invalid(format!("invalid filter 'dangling={v}'"))),
            None => true,
        };
        let dangling = !n.predefined() && n.endpoints.is_empty() && !in_use(&n.id) && !in_use(&n.name);
        ok &= dangling == want;
    }
    Ok(ok)
}

fn prune_filters(n: &Network, f: &BTreeMap<String, Vec<String>>) -> Result<bool, Error> {
    if let Some(vs) = f.get("label") {
        if !vs.iter().all(|v| label_matches(&n.labels, v)) {
            return Ok(false);
        }
    }
    if let Some(vs) = f.get("label!") {
        if vs.iter().any(|v| label_matches(&n.labels, v)) {
            return Ok(false);
        }
    }
    if let Some(u) = f.get("until").and_then(|v| v.first()) {
        let until = crate::time::parse_filter_time(u)
            .ok_or_else(|| Error::Invalid(format!("invalid filter 'until={u}'")))?;
        let created = crate::time::parse_rfc3339_nanos(&n.created).unwrap_or(0);
        if created >= until {
            return Ok(false);
        }
    }
    Ok(true)
}

#[cfg(test)]
mod tests;
