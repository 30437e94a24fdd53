//! The seam between the network service's bookkeeping and the host: bridges, network namespaces,
//! veth pairs, addresses and routes, berth's nftables table, the sockets of the embedded DNS. The
//! real implementation is [`Host`] (netlink, `nft -j`); [`Recording`] notes the calls for tests
//! that run without root.

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, TcpListener, UdpSocket};
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use berth_network::{firewall, netns, sysctl, Netlink, Subnet, Subnet6};

use super::Network;

/// A bridge to bring up: the interface, its address (the network's gateway), MTU.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BridgeSpec {
    pub name: String,
    pub gateway: Ipv4Addr,
    pub prefix: u8,
    /// The IPv6 gateway and prefix (networks with IPv6).
    pub gateway6: Option<(Ipv6Addr, u8)>,
    pub mtu: u32,
}

impl BridgeSpec {
    pub fn of(n: &Network) -> BridgeSpec {
        let (gateway, prefix) = n
            .ipam
            .as_ref()
            .map_or((Ipv4Addr::UNSPECIFIED, 0), |i| (i.gateway, i.subnet.prefix()));
        BridgeSpec {
            name: n.bridge.clone(),
            gateway,
            prefix,
            gateway6: n.ipam6.as_ref().map(|i| (i.gateway, i.subnet.prefix())),
            mtu: n.mtu,
        }
    }
}

/// One container interface: a veth pair from `bridge` to `ifname` inside the namespace file `sandbox`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plug {
    pub sandbox: PathBuf,
    pub bridge: String,
    pub veth: String,
    pub ifname: String,
    pub mac: [u8; 6],
    pub ip: Ipv4Addr,
    pub prefix: u8,
    /// The default route's gateway (the container's first network only).
    pub gateway: Option<Ipv4Addr>,
    /// The IPv6 address and prefix (networks with IPv6), and the IPv6 default route's gateway.
    pub ip6: Option<(Ipv6Addr, u8)>,
    pub gateway6: Option<Ipv6Addr>,
    pub mtu: u32,
}

/// A bridge network as the firewall sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FwNet {
    pub bridge: String,
    pub subnet: Subnet,
    pub subnet6: Option<Subnet6>,
    pub internal: bool,
    pub masquerade: bool,
    pub icc: bool,
}

/// The families whose forwarding berthd turned on: the firewall drops their forwarded traffic
/// that no berth bridge has a part in.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Guards {
    pub v4: bool,
    pub v6: bool,
}

/// A published port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FwPort {
    pub proto: String,
    /// None: every host address of the container address's family.
    pub host_ip: Option<IpAddr>,
    pub host_port: u16,
    pub container_ip: IpAddr,
    pub container_port: u16,
    pub bridge: String,
}

/// What the network service asks of the host.
pub trait Dataplane: Send + Sync + 'static {
    /// Turns IPv4 (or IPv6) forwarding on; true when it was off (berth then guards other
    /// forwarding of that family).
    fn enable_forwarding(&self, v6: bool) -> io::Result<bool>;
    /// Makes the bridge when missing, gives it its address, MTU, and brings it up.
    fn bridge_up(&self, b: &BridgeSpec) -> io::Result<()>;
    /// Deletes the bridge (gone already is fine).
    fn bridge_down(&self, name: &str) -> io::Result<()>;
    /// A new network namespace kept alive by the file `path`.
    fn sandbox_create(&self, path: &Path) -> io::Result<()>;
    /// Releases the namespace file (gone already is fine).
    fn sandbox_remove(&self, path: &Path) -> io::Result<()>;
    fn plug(&self, p: &Plug) -> io::Result<()>;
    /// Deletes the host side of a veth pair (gone already is fine).
    fn unplug(&self, veth: &str) -> io::Result<()>;
    /// Replaces berth's nftables table with the rules of these networks and ports.
    fn firewall(&self, table: &str, nets: &[FwNet], ports: &[FwPort], guard: Guards) -> io::Result<()>;
    /// UDP and TCP sockets at 127.0.0.11 inside the namespace `sandbox` that queries to port 53
    /// reach, for the embedded DNS.
    fn dns_sockets(&self, sandbox: &Path) -> io::Result<(UdpSocket, TcpListener)>;
}

/// Notes every call; namespaces are plain files. For tests without root.
#[derive(Default)]
pub struct Recording {
    pub calls: Mutex<Vec<String>>,
    /// Makes `plug` fail (to test that nothing is left half-made).
    pub fail_plug: Mutex<bool>,
}

impl Recording {
    fn note(&self, s: String) {
        self.calls.lock().expect("calls lock").push(s);
    }

    pub fn take(&self) -> Vec<String> {
        std::mem::take(&mut *self.calls.lock().expect("calls lock"))
    }
}

impl Dataplane for Recording {
    fn enable_forwarding(&self, v6: bool) -> io::Result<bool> {
        self.note(if v6 { "forwarding6" } else { "forwarding" }.into());
        Ok(false)
    }

    fn bridge_up(&self, b: &BridgeSpec) -> io::Result<()> {
        let v6 = b.gateway6.map(|(g, l)| format!(" {g}/{l}")).unwrap_or_default();
        self.note(format!(
            "bridge_up {} {}/{}{v6} mtu {}",
            b.name, b.gateway, b.prefix, b.mtu
        ));
        Ok(())
    }

    fn bridge_down(&self, name: &str) -> io::Result<()> {
        self.note(format!("bridge_down {name}"));
        Ok(())
    }

    fn sandbox_create(&self, path: &Path) -> io::Result<()> {
        std::fs::write(path, b"")?;
        self.note(format!("sandbox_create {}", path.display()));
        Ok(())
    }

    fn sandbox_remove(&self, path: &Path) -> io::Result<()> {
        match std::fs::remove_file(path) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
            _ => {}
        }
        self.note(format!("sandbox_remove {}", path.display()));
        Ok(())
    }

    fn plug(&self, p: &Plug) -> io::Result<()> {
        if *self.fail_plug.lock().expect("fail lock") {
            return Err(io::Error::other("plug refused by the test"));
        }
        let v6 = p
            .ip6
            .map(|(a, l)| format!(" {a}/{l} gw6 {:?}", p.gateway6))
            .unwrap_or_default();
        self.note(format!(
            "plug {} {} {}/{} gw {:?}{v6} on {}",
            p.ifname, p.veth, p.ip, p.prefix, p.gateway, p.bridge
        ));
        Ok(())
    }

    fn unplug(&self, veth: &str) -> io::Result<()> {
        self.note(format!("unplug {veth}"));
        Ok(())
    }

    fn firewall(&self, table: &str, nets: &[FwNet], ports: &[FwPort], guard: Guards) -> io::Result<()> {
        let v6 = if guard.v6 { " guard6 true" } else { "" };
        let guard = guard.v4;
        let ports: Vec<String> = ports
            .iter()
            .map(|p| {
                format!(
                    "{}:{}->{}:{}/{}",
                    p.host_ip.map(|i| i.to_string()).unwrap_or_default(),
                    p.host_port,
                    p.container_ip,
                    p.container_port,
                    p.proto
                )
            })
            .collect();
        self.note(format!(
            "firewall {table} nets {} ports [{}] guard {guard}{v6}",
            nets.len(),
            ports.join(" ")
        ));
        Ok(())
    }

    fn dns_sockets(&self, _sandbox: &Path) -> io::Result<(UdpSocket, TcpListener)> {
        Ok((UdpSocket::bind("127.0.0.1:0")?, TcpListener::bind("127.0.0.1:0")?))
    }
}

/// The host: netlink, namespace files, `/proc/sys`, `nft`.
pub struct Host {
    /// The `nft` program.
    pub nft: PathBuf,
    /// Whether the embedded DNS listens on other ports than 53, with an nftables redirection in the
    /// container's namespace (docker's scheme; needs nft), or on port 53 itself.
    pub redirect_dns: bool,
}

fn missing(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::NotFound, format!("{what} not found"))
}

/// NotFound is success for removals.
fn gone_ok(r: io::Result<()>) -> io::Result<()> {
    match r {
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        r => r,
    }
}

impl Host {
    fn delete_link(name: &str) -> io::Result<()> {
        let mut nl = Netlink::open()?;
        match nl.index(name)? {
            Some(i) => gone_ok(nl.delete(i)),
            None => Ok(()),
        }
    }

    /// The container side of `plug`, in its namespace.
    fn plug_inside(p: &Plug) -> io::Result<()> {
        let mut nl = Netlink::open_in(&p.sandbox)?;
        let i = nl.index(&p.ifname)?.ok_or_else(|| missing(&p.ifname))?;
        nl.set_mac(i, p.mac)?;
        nl.add_address(i, IpAddr::V4(p.ip), p.prefix)?;
        nl.set_up(i)?;
        if let Some((a, l)) = p.ip6 {
            nl.add_address(i, IpAddr::V6(a), l)?;
        }
        if let Some(gw) = p.gateway {
            nl.add_default_route(IpAddr::V4(gw), i)?;
        }
        if let Some(gw) = p.gateway6 {
            nl.add_default_route(IpAddr::V6(gw), i)?;
        }
        Ok(())
    }
}

impl Dataplane for Host {
    fn enable_forwarding(&self, v6: bool) -> io::Result<bool> {
        let key = if v6 {
            "net.ipv6.conf.all.forwarding"
        } else {
            "net.ipv4.ip_forward"
        };
        if sysctl::get(key)? == "1" {
            return Ok(false);
        }
        sysctl::set(key, "1")?;
        Ok(true)
    }

    fn bridge_up(&self, b: &BridgeSpec) -> io::Result<()> {
        let mut nl = Netlink::open()?;
        let (index, made) = match nl.index(&b.name)? {
            Some(i) => (i, false),
            None => (nl.create_bridge(&b.name, Some(b.mtu).filter(|m| *m > 0))?, true),
        };
        let r = (|| {
            let have = nl.addresses(index)?;
            let v6 = b.gateway6.map(|(g, l)| (IpAddr::V6(g), l));
            for want in std::iter::once((IpAddr::V4(b.gateway), b.prefix)).chain(v6) {
                if !have.contains(&want) {
                    nl.add_address(index, want.0, want.1)?;
                }
            }
            if b.gateway6.is_some() {
                sysctl::set(&format!("net.ipv6.conf.{}.disable_ipv6", b.name), "0")?;
            }
            nl.set_up(index)?;
            // Published ports reached on the host's loopback are DNATed out of the bridge.
            sysctl::set(&format!("net.ipv4.conf.{}.route_localnet", b.name), "1")
        })();
        if r.is_err() && made {
            let _ = nl.delete(index);
        }
        r
    }

    fn bridge_down(&self, name: &str) -> io::Result<()> {
        Self::delete_link(name)
    }

    fn sandbox_create(&self, path: &Path) -> io::Result<()> {
        netns::create(path)
    }

    fn sandbox_remove(&self, path: &Path) -> io::Result<()> {
        gone_ok(netns::remove(path))
    }

    fn plug(&self, p: &Plug) -> io::Result<()> {
        let mut nl = Netlink::open()?;
        let bridge = nl
            .index(&p.bridge)?
            .ok_or_else(|| missing(&format!("bridge {}", p.bridge)))?;
        let ns = std::fs::File::open(&p.sandbox)?;
        // 1. The pair, its inner end made directly in the container's namespace under its final name.
        nl.create_veth(&p.veth, &p.ifname, Some(ns.as_fd()), Some(p.mtu))?;
        let r = (|| {
            let v = nl.index(&p.veth)?.ok_or_else(|| missing(&p.veth))?;
            // 2. The host end on the bridge, hairpin on (a container reaching its own published port).
            nl.set_master(v, bridge)?;
            nl.set_hairpin(v, true)?;
            nl.set_up(v)?;
            // 3. Inside: MAC, address, up, default route.
            Self::plug_inside(p)
        })();
        if r.is_err() {
            let _ = Self::delete_link(&p.veth);
        }
        r
    }

    fn unplug(&self, veth: &str) -> io::Result<()> {
        Self::delete_link(veth)
    }

    fn firewall(&self, table: &str, nets: &[FwNet], ports: &[FwPort], guard: Guards) -> io::Result<()> {
        let fw = firewall::Firewall {
            table: table.to_string(),
            networks: nets
                .iter()
                .map(|n| firewall::NetRules {
                    bridge: n.bridge.clone(),
                    subnet: n.subnet,
                    subnet6: n.subnet6,
                    internal: n.internal,
                    masquerade: n.masquerade,
                    icc: n.icc,
                })
                .collect(),
            ports: ports
                .iter()
                .map(|p| firewall::PortRule {
                    proto: if p.proto == "udp" {
                        firewall::Proto::Udp
                    } else {
                        firewall::Proto::Tcp
                    },
                    host_ip: p.host_ip,
                    host_port: p.host_port,
                    container_ip: p.container_ip,
                    container_port: p.container_port,
                    bridge: p.bridge.clone(),
                })
                .collect(),
            forward_guard: guard.v4,
            forward_guard6: guard.v6,
        };
        fw.check().map_err(io::Error::other)?;
        firewall::apply(&self.nft, &fw.document()).map_err(io::Error::other)
    }

    fn dns_sockets(&self, sandbox: &Path) -> io::Result<(UdpSocket, TcpListener)> {
        let (nft, redirect) = (self.nft.clone(), self.redirect_dns);
        // nft runs from the thread inside the namespace, so its rules land there.
        netns::run_in(sandbox, move || -> io::Result<(UdpSocket, TcpListener)> {
            let port = if redirect { 0 } else { 53 };
            let udp = UdpSocket::bind((firewall::DNS_ADDR, port))?;
            let tcp = TcpListener::bind((firewall::DNS_ADDR, port))?;
            if redirect {
                let doc = firewall::DnsRedirect {
                    udp_port: udp.local_addr()?.port(),
                    tcp_port: tcp.local_addr()?.port(),
                }
                .document();
                firewall::apply(&nft, &doc).map_err(io::Error::other)?;
            }
            Ok((udp, tcp))
        })?
    }
}
