//! berth's firewall: the whole nftables ruleset for its bridge networks and published ports,
//! generated as nft JSON (libnftables-json(5), typed through the `nftables` crate) from pure data,
//! and applied in one transaction with `nft -j -f -`.
//!
//! berth owns exactly one table, `inet berth` (the name is a field, so tests use their own), and
//! never reads, flushes or changes any other. A document (re)creates that table from scratch:
//! `add table; delete table; add table; chains...; rules...` in one transaction, so applying it is
//! atomic (the kernel sees the old table or the new one, never half of it) and idempotent (the
//! first `add` makes the `delete` succeed when the table is absent). Established connections
//! survive a re-apply: their NAT mappings live in conntrack, not in the rules.
//!
//! The chains (`inet` family, so one rule serves IPv4 and IPv6 wherever it matches interfaces
//! only):
//!
//! ```text
//!  prerouting  nat    hook prerouting  prio -100 (dstnat)  fib daddr type local jump ports
//!  output      nat    hook output      prio -100           fib daddr type local jump ports
//!  ports       (regular)  per published port:
//!                     [ip daddr HOST_IP | meta nfproto ipv4] PROTO dport HPORT dnat ip to CIP:CPORT
//!  postrouting nat    hook postrouting prio 100 (srcnat), per network that is not internal:
//!                     ip saddr SUBNET oifname != BRIDGE masquerade        outbound NAT (if masquerade)
//!                     ip saddr 127.0.0.0/8 oifname BRIDGE masquerade       host -> 127.0.0.1:HPORT
//!                     ip saddr SUBNET oifname BRIDGE ct status dnat masquerade   hairpin
//!  forward     filter hook forward     prio 0 (filter), policy accept, in this order:
//!                     oifname BRIDGE ct state established,related accept  replies
//!                     oifname BRIDGE ct status dnat accept                 published ports
//!                     iifname BRIDGE oifname BRIDGE accept|drop            icc
//!                     iifname BRIDGE drop; oifname BRIDGE drop             internal networks
//!                     oifname BRIDGE drop                                  nothing else in
//!                     iifname BRIDGE accept                                out (not internal)
//!                     iifname != {BRIDGES} oifname != {BRIDGES} drop       forward_guard
//! ```
//!
//! Why each piece:
//! - The DNAT rules sit in one regular chain jumped to from prerouting (traffic from outside and
//!   from containers) and from output (the host itself) only for `fib daddr type local`: a
//!   published port is a port of the host's addresses, so traffic merely routed through the host
//!   (a container reaching port 80 of some web server) is never rewritten. Loopback is local too,
//!   so `curl 127.0.0.1:HPORT` on the host works: the output hook rewrites it, the packet leaves
//!   through the bridge with a 127.x source (the engine sets `route_localnet=1` on the bridge),
//!   and the loopback masquerade gives it the bridge's address so the container can answer. IPv6
//!   has no `route_localnet`: `[::1]:HPORT` is not reachable this way.
//! - Hairpin: a container reaching a published port (its own, or a neighbour's on the same bridge)
//!   through a host address is DNATed back out of the bridge it came from; without the masquerade
//!   the answer would go straight back to it (same bridge, no routing) with a source it never
//!   talked to. Masquerading DNATed traffic that leaves through the bridge it belongs to covers
//!   both cases without per-port rules, with or without `br_netfilter` (which hands bridged
//!   frames to these hooks with the bridge as in/out interface). With `br_netfilter` loaded, the
//!   packet to a container's own port is bridged back out of the port it came in by, so the
//!   engine turns on `hairpin` mode on each container's bridge port (as docker does).
//! - forward accepts only end berth's chain; other tables' chains still see the packet. Drops are
//!   final, so this chain drops only traffic that touches a berth bridge, and (with
//!   `forward_guard`, when berthd turned `net.ipv4.ip_forward` on itself, `forward_guard6` for
//!   IPv6's forwarding; one family only: the rule matches that family) forwarded traffic that
//!   touches none, so the host forwards nothing it did not forward before. Its policy stays
//!   accept: berth's table never decides for anyone else's traffic by default. The "nothing else
//!   in" drop keeps networks apart (docker's isolation) and refuses traffic routed straight at a
//!   container address from outside; published ports and replies were accepted before it.

mod expr;

use std::borrow::Cow;
use std::fmt;
use std::io::Write;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::str::FromStr;

use nftables::schema::{Chain, NfCmd, NfListObject, NfObject, Nftables, Rule, Table};
use nftables::types::{NfChainPolicy, NfChainType, NfFamily, NfHook};

use crate::net::{Subnet, Subnet6};
use expr::{Dir, Stmt};

/// The regular chain holding the DNAT rules of published ports.
pub const PORTS_CHAIN: &str = "ports";

/// Every chain of the table, in the order a document adds them: the base chains, then `ports`.
pub const CHAINS: [&str; 5] = ["prerouting", "output", "postrouting", "forward", PORTS_CHAIN];

/// The base chains: (name, type, hook, priority). dstnat is -100, srcnat 100, filter 0.
const BASE_CHAINS: [(&str, NfChainType, NfHook, i32); 4] = [
    ("prerouting", NfChainType::NAT, NfHook::Prerouting, -100),
    ("output", NfChainType::NAT, NfHook::Output, -100),
    ("postrouting", NfChainType::NAT, NfHook::Postrouting, 100),
    ("forward", NfChainType::Filter, NfHook::Forward, 0),
];

#[derive(Debug, thiserror::Error)]
pub enum FirewallError {
    #[error("run {}: {source}", nft.display())]
    Spawn {
        nft: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("write the ruleset to {}: {source}", nft.display())]
    Write {
        nft: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{} -j -f /proc/self/fd/0: {status}: {stderr}", nft.display())]
    Failed {
        nft: PathBuf,
        status: ExitStatus,
        stderr: String,
    },
    #[error("invalid nftables table name {0:?}")]
    TableName(String),
    #[error("invalid interface name {0:?}")]
    InterfaceName(String),
    #[error("published port {port}/{proto}: host address {host_ip} and container address {container_ip} are of different families")]
    Families {
        port: u16,
        proto: Proto,
        host_ip: IpAddr,
        container_ip: IpAddr,
    },
}

/// A transport protocol of a published port.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Proto {
    Tcp,
    Udp,
    Sctp,
}

impl Proto {
    /// The name nft (and docker) use: `tcp`, `udp`, `sctp`.
    pub fn as_str(&self) -> &'static str {
        match self {
            Proto::Tcp => "tcp",
            Proto::Udp => "udp",
            Proto::Sctp => "sctp",
        }
    }
}

impl fmt::Display for Proto {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Proto {
    type Err = String;

    /// `tcp`, `udp` or `sctp` (the protocols `ports::parse` accepts); the error is the input.
    fn from_str(s: &str) -> Result<Proto, String> {
        match s {
            "tcp" => Ok(Proto::Tcp),
            "udp" => Ok(Proto::Udp),
            "sctp" => Ok(Proto::Sctp),
            _ => Err(s.to_string()),
        }
    }
}

/// Everything berth's table holds: all networks and all published ports, at once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Firewall {
    /// The table's name in the `inet` family ("berth").
    pub table: String,
    pub networks: Vec<NetRules>,
    pub ports: Vec<PortRule>,
    /// Drop forwarded traffic that neither enters nor leaves a berth bridge (set when berthd
    /// enabled IP forwarding itself).
    pub forward_guard: bool,
    /// The same for IPv6 (`net.ipv6.conf.all.forwarding`).
    pub forward_guard6: bool,
}

/// One bridge network.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetRules {
    /// The bridge's name: "berth0", "br-0123456789ab".
    pub bridge: String,
    pub subnet: Subnet,
    pub subnet6: Option<Subnet6>,
    /// `--internal`: no traffic in or out of the bridge except among its members.
    pub internal: bool,
    /// Outbound NAT (docker's `com.docker.network.bridge.enable_ip_masquerade`).
    pub masquerade: bool,
    /// Inter-container traffic on the same bridge.
    pub icc: bool,
}

/// One published port: host address and port -> container address and port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortRule {
    pub proto: Proto,
    /// None: every host address of the container address's family. An unspecified address
    /// (`0.0.0.0`, `::`) means the same, for its family.
    pub host_ip: Option<IpAddr>,
    pub host_port: u16,
    pub container_ip: IpAddr,
    pub container_port: u16,
    /// The bridge the container is reached through.
    pub bridge: String,
}

/// One rule, before it becomes JSON.
struct R {
    chain: &'static str,
    expr: Vec<Stmt>,
    comment: String,
}

fn rule(chain: &'static str, expr: Vec<Stmt>, comment: String) -> R {
    R { chain, expr, comment }
}

const LOOPBACK: (IpAddr, u8) = (IpAddr::V4(Ipv4Addr::new(127, 0, 0, 0)), 8);

impl NetRules {
    /// The network's subnets as (address, prefix length), IPv4 first.
    fn subnets(&self) -> Vec<(IpAddr, u8)> {
        let v4 = (IpAddr::V4(self.subnet.network()), self.subnet.prefix());
        let v6 = self.subnet6.map(|s| (IpAddr::V6(s.network()), s.prefix()));
        std::iter::once(v4).chain(v6).collect()
    }
}

impl Firewall {
    /// An empty firewall for `table`: no networks, no ports, no guard.
    pub fn new(table: &str) -> Firewall {
        Firewall {
            table: table.to_string(),
            networks: Vec::new(),
            ports: Vec::new(),
            forward_guard: false,
            forward_guard6: false,
        }
    }

    /// What nft would refuse, found before anything runs: a bad table or interface name, or a
    /// published port whose host and container addresses are of different families.
    pub fn check(&self) -> Result<(), FirewallError> {
        let table_ok = !self.table.is_empty()
            && self.table.len() <= 255
            && self.table.starts_with(|c: char| c.is_ascii_alphabetic())
            && self
                .table
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
        if !table_ok {
            return Err(FirewallError::TableName(self.table.clone()));
        }
        let bridges = self.networks.iter().map(|n| &n.bridge);
        for name in bridges.chain(self.ports.iter().map(|p| &p.bridge)) {
            check_ifname(name)?;
        }
        for p in &self.ports {
            match p.host_ip {
                Some(h) if h.is_ipv4() != p.container_ip.is_ipv4() => {
                    return Err(FirewallError::Families {
                        port: p.host_port,
                        proto: p.proto,
                        host_ip: h,
                        container_ip: p.container_ip,
                    })
                }
                _ => {}
            }
        }
        Ok(())
    }

    /// The whole document: one transaction that (re)creates table `inet <table>` from scratch
    /// (add table; delete table; add table; chains; rules), so applying it is atomic and
    /// idempotent. Call `check` first: nft refuses the document of a firewall it finds wrong.
    pub fn document(&self) -> serde_json::Value {
        let table = || NfListObject::Table(self.table_object());
        let mut objects = vec![
            NfObject::CmdObject(NfCmd::Add(table())),
            NfObject::CmdObject(NfCmd::Delete(table())),
            NfObject::CmdObject(NfCmd::Add(table())),
        ];
        for chain in self.chains() {
            objects.push(NfObject::CmdObject(NfCmd::Add(NfListObject::Chain(chain))));
        }
        for r in self.rules() {
            let rule = Rule {
                family: NfFamily::INet,
                table: Cow::Owned(self.table.clone()),
                chain: Cow::Borrowed(r.chain),
                expr: Cow::Owned(r.expr),
                handle: None,
                index: None,
                comment: Some(Cow::Owned(r.comment)),
            };
            objects.push(NfObject::CmdObject(NfCmd::Add(NfListObject::Rule(rule))));
        }
        to_json(objects)
    }

    /// The document that removes the table (nothing else), tolerant of the table being absent:
    /// `add table; delete table`.
    pub fn teardown(table: &str) -> serde_json::Value {
        let t = || NfListObject::Table(Firewall::new(table).table_object());
        to_json(vec![
            NfObject::CmdObject(NfCmd::Add(t())),
            NfObject::CmdObject(NfCmd::Delete(t())),
        ])
    }

    fn table_object(&self) -> Table<'static> {
        Table {
            family: NfFamily::INet,
            name: Cow::Owned(self.table.clone()),
            handle: None,
        }
    }

    fn chains(&self) -> Vec<Chain<'static>> {
        let chain = |name: &'static str| Chain {
            family: NfFamily::INet,
            table: Cow::Owned(self.table.clone()),
            name: Cow::Borrowed(name),
            ..Chain::default()
        };
        let mut chains = Vec::new();
        for (name, kind, hook, prio) in BASE_CHAINS {
            chains.push(Chain {
                _type: Some(kind),
                hook: Some(hook),
                prio: Some(prio),
                policy: Some(NfChainPolicy::Accept),
                ..chain(name)
            });
        }
        chains.push(chain(PORTS_CHAIN));
        chains
    }

    /// Every rule, grouped by chain in the order of `chains`.
    fn rules(&self) -> Vec<R> {
        let mut rules = Vec::new();
        for (chain, _, _, _) in &BASE_CHAINS[..2] {
            let expr = vec![expr::daddr_local(), expr::jump(PORTS_CHAIN)];
            rules.push(rule(chain, expr, "published ports".into()));
        }
        rules.extend(self.postrouting());
        rules.extend(self.forward());
        rules.extend(self.ports.iter().map(dnat_rule));
        rules
    }

    fn postrouting(&self) -> Vec<R> {
        let mut rules = Vec::new();
        for n in self.networks.iter().filter(|n| !n.internal) {
            let br = n.bridge.as_str();
            let post = |expr, what: &str| rule("postrouting", expr, format!("{br}: {what}"));
            for (addr, len) in n.subnets().into_iter().filter(|_| n.masquerade) {
                let expr = vec![
                    expr::saddr(addr, len),
                    expr::not_iface(Dir::Out, br),
                    expr::masquerade(),
                ];
                rules.push(post(expr, "outbound NAT"));
            }
            let expr = vec![
                expr::saddr(LOOPBACK.0, LOOPBACK.1),
                expr::iface(Dir::Out, br),
                expr::masquerade(),
            ];
            rules.push(post(expr, "loopback to published ports"));
            for (addr, len) in n.subnets() {
                let expr = vec![
                    expr::saddr(addr, len),
                    expr::iface(Dir::Out, br),
                    expr::ct_dnat(),
                    expr::masquerade(),
                ];
                rules.push(post(expr, "hairpin to published ports"));
            }
        }
        rules
    }

    fn forward(&self) -> Vec<R> {
        let nets = &self.networks;
        let open = || nets.iter().filter(|n| !n.internal);
        let fwd = |n: &NetRules, expr, what: &str| rule("forward", expr, format!("{}: {what}", n.bridge));
        let out = |n: &NetRules| expr::iface(Dir::Out, &n.bridge);
        let inn = |n: &NetRules| expr::iface(Dir::In, &n.bridge);
        let mut rules = Vec::new();
        for n in open() {
            let expr = vec![out(n), expr::ct_established(), expr::accept()];
            rules.push(fwd(n, expr, "replies"));
        }
        for n in open() {
            let expr = vec![out(n), expr::ct_dnat(), expr::accept()];
            rules.push(fwd(n, expr, "published ports"));
        }
        for n in nets {
            let verdict = if n.icc { expr::accept() } else { expr::drop() };
            let what = if n.icc { "icc" } else { "no icc" };
            rules.push(fwd(n, vec![inn(n), out(n), verdict], what));
        }
        for n in nets.iter().filter(|n| n.internal) {
            rules.push(fwd(n, vec![inn(n), expr::drop()], "internal, nothing out"));
            rules.push(fwd(n, vec![out(n), expr::drop()], "internal, nothing in"));
        }
        for n in open() {
            rules.push(fwd(n, vec![out(n), expr::drop()], "nothing else in"));
        }
        for n in open() {
            rules.push(fwd(n, vec![inn(n), expr::accept()], "out"));
        }
        if self.forward_guard || self.forward_guard6 {
            rules.push(self.guard());
        }
        rules
    }

    /// The last forward rule: drop what neither enters nor leaves a berth bridge, of the families
    /// whose forwarding berthd turned on (both: no family match).
    fn guard(&self) -> R {
        let comment = "forward guard: only berth's bridges".to_string();
        let mut expr = Vec::new();
        match (self.forward_guard, self.forward_guard6) {
            (true, false) => expr.push(expr::nfproto(IpAddr::V4(Ipv4Addr::UNSPECIFIED))),
            (false, true) => expr.push(expr::nfproto(IpAddr::V6(Ipv6Addr::UNSPECIFIED))),
            _ => {}
        }
        let names: Vec<&str> = self.networks.iter().map(|n| n.bridge.as_str()).collect();
        if !names.is_empty() {
            expr.push(expr::not_ifaces(Dir::In, &names));
            expr.push(expr::not_ifaces(Dir::Out, &names));
        }
        expr.push(expr::drop());
        rule("forward", expr, comment)
    }
}

/// `[ip daddr HOST_IP | meta nfproto ipv4] PROTO dport HOST_PORT dnat ip to CIP:CPORT`.
fn dnat_rule(p: &PortRule) -> R {
    let select = match p.host_ip {
        Some(h) if !h.is_unspecified() => expr::daddr(h),
        Some(h) => expr::nfproto(h),
        None => expr::nfproto(p.container_ip),
    };
    let proto = p.proto.as_str();
    let expr = vec![
        select,
        expr::dport(proto, p.host_port),
        expr::dnat(p.container_ip, p.container_port),
    ];
    let host = match p.host_ip {
        Some(IpAddr::V6(h)) => format!("[{h}]:"),
        Some(h) => format!("{h}:"),
        None => String::new(),
    };
    let target = match p.container_ip {
        IpAddr::V6(c) => format!("[{c}]"),
        c => c.to_string(),
    };
    let comment = format!(
        "{host}{}/{proto} -> {target}:{} on {}",
        p.host_port, p.container_port, p.bridge
    );
    rule(PORTS_CHAIN, expr, comment)
}

/// The embedded DNS's address inside a container.
pub const DNS_ADDR: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 11);

/// The table, in each container's own network namespace, that takes DNS queries to
/// `127.0.0.11:53` to the embedded DNS's sockets on other ports of that address (docker's scheme:
/// port 53 of the container's addresses stays free for a DNS server of its own). Replies are
/// translated back by conntrack.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DnsRedirect {
    pub udp_port: u16,
    pub tcp_port: u16,
}

impl DnsRedirect {
    pub const TABLE: &'static str = "berth-dns";

    /// `table ip berth-dns` made afresh (add, delete, add) with one nat output chain and a DNAT
    /// rule per transport.
    pub fn document(&self) -> serde_json::Value {
        let table = || {
            NfListObject::Table(Table {
                family: NfFamily::IP,
                name: Cow::Borrowed(Self::TABLE),
                handle: None,
            })
        };
        let mut objects = vec![
            NfObject::CmdObject(NfCmd::Add(table())),
            NfObject::CmdObject(NfCmd::Delete(table())),
            NfObject::CmdObject(NfCmd::Add(table())),
            NfObject::CmdObject(NfCmd::Add(NfListObject::Chain(Chain {
                family: NfFamily::IP,
                table: Cow::Borrowed(Self::TABLE),
                name: Cow::Borrowed("output"),
                _type: Some(NfChainType::NAT),
                hook: Some(NfHook::Output),
                prio: Some(-100),
                policy: Some(NfChainPolicy::Accept),
                ..Chain::default()
            }))),
        ];
        for (proto, port) in [("udp", self.udp_port), ("tcp", self.tcp_port)] {
            let dns = IpAddr::V4(DNS_ADDR);
            let rule = Rule {
                family: NfFamily::IP,
                table: Cow::Borrowed(Self::TABLE),
                chain: Cow::Borrowed("output"),
                expr: Cow::Owned(vec![
                    expr::daddr(dns),
                    expr::dport(proto, 53),
                    expr::dnat(dns, port),
                ]),
                handle: None,
                index: None,
                comment: Some(Cow::Owned(format!("embedded DNS over {proto}"))),
            };
            objects.push(NfObject::CmdObject(NfCmd::Add(NfListObject::Rule(rule))));
        }
        to_json(objects)
    }
}

fn check_ifname(name: &str) -> Result<(), FirewallError> {
    // IFNAMSIZ is 16 with the NUL; the kernel refuses "/", whitespace, "." and "..".
    let ok = !name.is_empty()
        && name.len() < 16
        && name != "."
        && name != ".."
        && !name.contains(|c: char| c == '/' || c == ':' || c.is_whitespace());
    if ok {
        Ok(())
    } else {
        Err(FirewallError::InterfaceName(name.to_string()))
    }
}

fn to_json(objects: Vec<NfObject<'static>>) -> serde_json::Value {
    let doc = Nftables {
        objects: Cow::Owned(objects),
    };
    serde_json::to_value(&doc).expect("an nftables document is plain JSON")
}

/// Runs `nft -j -f /proc/self/fd/0` with the document on stdin (not `-f -`: nft opens `/dev/stdin`
/// for that, which minimal systems lack); the error names nft's stderr.
pub fn apply(nft: &Path, doc: &serde_json::Value) -> Result<(), FirewallError> {
    let mut child = Command::new(nft)
        .args(["-j", "-f", "/proc/self/fd/0"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|source| FirewallError::Spawn {
            nft: nft.to_path_buf(),
            source,
        })?;
    let text = doc.to_string();
    // Write from another thread, so an nft that talks before it has read everything cannot
    // block against us.
    let mut stdin = child.stdin.take().expect("stdin is piped");
    let written = std::thread::scope(|s| {
        let writer = s.spawn(move || stdin.write_all(text.as_bytes()));
        let output = child.wait_with_output();
        (writer.join().expect("the writer does not panic"), output)
    });
    let output = match written {
        (_, Err(source)) => {
            return Err(FirewallError::Spawn {
                nft: nft.to_path_buf(),
                source,
            })
        }
        (write, Ok(output)) => {
            // A failed nft may close its stdin early; its own message says more than EPIPE.
            if let (Err(source), true) = (write, output.status.success()) {
                return Err(FirewallError::Write {
                    nft: nft.to_path_buf(),
                    source,
                });
            }
            output
        }
    };
    if output.status.success() {
        return Ok(());
    }
    Err(FirewallError::Failed {
        nft: nft.to_path_buf(),
        status: output.status,
        stderr: String::from_utf8_lossy(&output.stderr).trim().to_string(),
    })
}

/// Whether `nft` runs and can talk to the kernel's nf_tables here (`nft -j list tables`; needs
/// CAP_NET_ADMIN), i.e. whether `apply` can work.
pub fn available(nft: &Path) -> bool {
    Command::new(nft)
        .args(["-j", "list", "tables"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

#[cfg(test)]
mod tests;
