//! Published ports: which host ports a container gets (`PortBindings`, `-P` with the exposed ports),
//! held by a bound socket so that no other program (or container) takes them, and turned into the
//! DNAT rules of the firewall. A port is published through NAT, not a proxy: the socket is bound and
//! never listened on. A port asked for without a host address is published on IPv4's `0.0.0.0`
//! and, when the container has an IPv6 address, on IPv6's `::` too (the same port), as dockerd does.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::os::fd::OwnedFd;

use nix::sys::socket::{
    bind, setsockopt, socket, sockopt, AddressFamily, SockFlag, SockType, SockaddrIn, SockaddrIn6,
};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::dataplane::FwPort;
use crate::images::Error;

/// One published port as it was given out.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PortMap {
    pub proto: String,
    pub host_ip: IpAddr,
    pub host_port: u16,
    pub container_port: u16,
}

/// One port asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Want {
    pub proto: String,
    /// None: every host address of each family the container has.
    pub host_ip: Option<IpAddr>,
    /// The host ports acceptable: `(0, 0)` for any free one.
    pub host_ports: (u16, u16),
    pub container_port: u16,
}

fn invalid(m: impl Into<String>) -> Error {
    Error::Invalid(m.into())
}

/// `80/tcp` -> (80, "tcp").
fn port_key(k: &str) -> Result<(u16, String), Error> {
    let (p, proto) = k.split_once('/').unwrap_or((k, "tcp"));
    let proto = proto.to_ascii_lowercase();
    if !matches!(proto.as_str(), "tcp" | "udp" | "sctp") {
        return Err(invalid(format!("invalid proto: {proto}")));
    }
    if proto == "sctp" {
        return Err(invalid("sctp ports are not supported by berth"));
    }
    let p: u16 = p
        .parse()
        .ok()
        .filter(|p| *p > 0)
        .ok_or_else(|| invalid(format!("invalid port: {k}")))?;
    Ok((p, proto))
}

/// The ports a container asks for: its `PortBindings`, and with `-P` its exposed ports that have none.
pub fn wants(bindings: &Value, exposed: &[String], publish_all: bool) -> Result<Vec<Want>, Error> {
    let mut out = Vec::new();
    let mut bound = Vec::new();
    if let Some(m) = bindings.as_object() {
        for (k, list) in m {
            let (cport, proto) = port_key(k)?;
            bound.push((cport, proto.clone()));
            for b in list.as_array().into_iter().flatten() {
                let hip = b.get("HostIp").and_then(Value::as_str).unwrap_or("");
                let hport = b.get("HostPort").and_then(Value::as_str).unwrap_or("");
                let host_ip = match hip.trim_start_matches('[').trim_end_matches(']') {
                    "" => None,
                    h => Some(
                        h.parse::<IpAddr>()
                            .map_err(|_| invalid(format!("invalid IP address: {h}")))?,
                    ),
                };
                let host_ports = match hport {
                    "" | "0" => (0, 0),
                    h => {
                        let (a, b) = h.split_once('-').unwrap_or((h, h));
                        let a: u16 = a.parse().map_err(|_| invalid(format!("invalid hostPort: {h}")))?;
                        let b: u16 = b.parse().map_err(|_| invalid(format!("invalid hostPort: {h}")))?;
                        if a == 0 || b < a {
                            return Err(invalid(format!("invalid hostPort: {h}")));
                        }
                        (a, b)
                    }
                };
                out.push(Want {
                    proto: proto.clone(),
                    host_ip,
                    host_ports,
                    container_port: cport,
                });
            }
        }
    }
    if publish_all {
        for k in exposed {
            let (cport, proto) = port_key(k)?;
            if !bound.contains(&(cport, proto.clone())) {
                out.push(Want {
                    proto,
                    host_ip: None,
                    host_ports: (0, 0),
                    container_port: cport,
                });
            }
        }
    }
    Ok(out)
}

/// docker's `NetworkSettings.Ports`: every exposed or published port, with its host bindings or null.
pub fn shown(maps: &[PortMap], exposed: &[String]) -> Value {
    let mut m = serde_json::Map::new();
    for k in exposed {
        if let Ok((p, proto)) = port_key(k) {
            m.insert(format!("{p}/{proto}"), Value::Null);
        }
    }
    for p in maps {
        let e = m
            .entry(format!("{}/{}", p.container_port, p.proto))
            .or_insert_with(|| Value::Array(vec![]));
        if !e.is_array() {
            *e = Value::Array(vec![]);
        }
        if let Value::Array(a) = e {
            a.push(serde_json::json!({"HostIp": p.host_ip.to_string(), "HostPort": p.host_port.to_string()}));
        }
    }
    Value::Object(m)
}

struct Hold {
    map: PortMap,
    container: String,
    container_ip: IpAddr,
    bridge: String,
    _sock: Option<OwnedFd>,
}

/// The ports held for running containers.
#[derive(Default)]
pub struct Table {
    holds: Vec<Hold>,
    /// Where the search for a free port goes on (dockerd hands ports out in turn).
    cursor: u16,
}

fn ephemeral_range() -> (u16, u16) {
    std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|s| {
            let mut it = s.split_whitespace().map(|x| x.parse::<u16>().ok());
            Some((it.next()??, it.next()??))
        })
        .filter(|(a, b)| a <= b && *a > 0)
        .unwrap_or((32768, 60999))
}

/// Binds (never listens on) the host port so nothing else takes it; an IPv6 socket holds only
/// IPv6's port (`IPV6_V6ONLY`), the IPv4 one being held by its own socket.
fn hold_socket(proto: &str, ip: IpAddr, port: u16) -> std::io::Result<OwnedFd> {
    let typ = if proto == "udp" {
        SockType::Datagram
    } else {
        SockType::Stream
    };
    let family = if ip.is_ipv4() {
        AddressFamily::Inet
    } else {
        AddressFamily::Inet6
    };
    let fd = socket(family, typ, SockFlag::SOCK_CLOEXEC, None)?;
    if typ == SockType::Stream {
        setsockopt(&fd, sockopt::ReuseAddr, &true)?;
    }
    let raw = std::os::fd::AsRawFd::as_raw_fd(&fd);
    match ip {
        IpAddr::V4(a) => bind(raw, &SockaddrIn::from(std::net::SocketAddrV4::new(a, port)))?,
        IpAddr::V6(a) => {
            setsockopt(&fd, sockopt::Ipv6V6Only, &true)?;
            bind(
                raw,
                &SockaddrIn6::from(std::net::SocketAddrV6::new(a, port, 0, 0)),
            )?
        }
    }
    Ok(fd)
}

/// `0.0.0.0:80`, `[::]:80`: an address and port as docker's messages write them.
fn host_port(ip: IpAddr, port: u16) -> String {
    std::net::SocketAddr::new(ip, port).to_string()
}

/// The container's address of `host_ip`'s family.
fn container_ip_for(host_ip: IpAddr, cip: Ipv4Addr, cip6: Option<Ipv6Addr>) -> Option<IpAddr> {
    match host_ip {
        IpAddr::V4(_) => Some(IpAddr::V4(cip)),
        IpAddr::V6(_) => cip6.map(IpAddr::V6),
    }
}

impl Table {
    pub fn rules(&self) -> Vec<FwPort> {
        self.holds
            .iter()
            .map(|h| FwPort {
                proto: h.map.proto.clone(),
                host_ip: (!h.map.host_ip.is_unspecified()).then_some(h.map.host_ip),
                host_port: h.map.host_port,
                container_ip: h.container_ip,
                container_port: h.map.container_port,
                bridge: h.bridge.clone(),
            })
            .collect()
    }

    fn taken(&self, proto: &str, ip: IpAddr, port: u16) -> bool {
        self.holds.iter().any(|h| {
            h.map.proto == proto
                && h.map.host_port == port
                && h.map.host_ip.is_ipv4() == ip.is_ipv4()
                && (h.map.host_ip == ip || h.map.host_ip.is_unspecified() || ip.is_unspecified())
        })
    }

    /// Gives container `container` (at `cip`, and `cip6` when it has IPv6, on `bridge`) the ports
    /// it wants, all or none. `endpoint` names it in dockerd's message when a port cannot be bound.
    pub fn reserve(
        &mut self,
        container: &str,
        endpoint: &str,
        bridge: &str,
        (cip, cip6): (Ipv4Addr, Option<Ipv6Addr>),
        wants: &[Want],
    ) -> Result<Vec<PortMap>, Error> {
        let mut got: Vec<Hold> = Vec::new();
        let result = (|| {
            for w in wants {
                // The host addresses of this want, each with the container address it leads to.
                let targets: Vec<(IpAddr, IpAddr)> = match w.host_ip {
                    None => std::iter::once(IpAddr::V4(Ipv4Addr::UNSPECIFIED))
                        .chain(cip6.map(|_| IpAddr::V6(Ipv6Addr::UNSPECIFIED)))
                        .filter_map(|h| Some((h, container_ip_for(h, cip, cip6)?)))
                        .collect(),
                    Some(h) => {
                        let c = container_ip_for(h, cip, cip6).ok_or_else(|| {
                            invalid(format!(
                                "cannot publish on the IPv6 host address {h}: the container has no IPv6 address (connect it to a network with --ipv6)"
                            ))
                        })?;
                        vec![(h, c)]
                    }
                };
                let (lo, hi, any) = match w.host_ports {
                    (0, 0) => {
                        let (a, b) = ephemeral_range();
                        (a, b, true)
                    }
                    (a, b) => (a, b, false),
                };
                let span = u32::from(hi - lo) + 1;
                let start = if any && (lo..=hi).contains(&self.cursor) {
                    self.cursor
                } else {
                    lo
                };
                let mut chosen = None;
                let mut last_err = None;
                'ports: for i in 0..span {
                    let port = (u32::from(lo) + (u32::from(start - lo) + i) % span) as u16;
                    let mut socks = Vec::new();
                    for &(hip, cip_of) in &targets {
                        let clash = self.taken(&w.proto, hip, port)
                            || got.iter().any(|h| {
                                h.map.proto == w.proto
                                    && h.map.host_port == port
                                    && h.map.host_ip.is_ipv4() == hip.is_ipv4()
                            });
                        if clash {
                            last_err = Some(Error::Forbidden(format!(
                                "Bind for {} failed: port is already allocated",
                                host_port(hip, port)
                            )));
                            continue 'ports;
                        }
                        match hold_socket(&w.proto, hip, port) {
                            Ok(s) => socks.push(s),
                            Err(e) => {
                                last_err = Some(Error::Internal(format!(
                                    "driver failed programming external connectivity on endpoint {endpoint}: failed to bind host port for {}:{cip_of}:{}/{}: {}",
                                    host_port(hip, port), w.container_port, w.proto, io_reason(&e)
                                )));
                                continue 'ports;
                            }
                        }
                    }
                    chosen = Some((port, socks));
                    break;
                }
                let Some((port, socks)) = chosen else {
                    return Err(last_err.unwrap_or_else(|| Error::Internal("no free host port".into())));
                };
                if any {
                    self.cursor = if port == hi { lo } else { port + 1 };
                }
                for ((hip, c), sock) in targets.into_iter().zip(socks) {
                    got.push(Hold {
                        map: PortMap {
                            proto: w.proto.clone(),
                            host_ip: hip,
                            host_port: port,
                            container_port: w.container_port,
                        },
                        container: container.to_string(),
                        container_ip: c,
                        bridge: bridge.to_string(),
                        _sock: Some(sock),
                    });
                }
            }
            Ok(())
        })();
        result?;
        let maps = got.iter().map(|h| h.map.clone()).collect();
        self.holds.extend(got);
        Ok(maps)
    }

    /// Takes back the ports of a container that was running before berthd restarted.
    pub fn restore(
        &mut self,
        container: &str,
        bridge: &str,
        (cip, cip6): (Ipv4Addr, Option<Ipv6Addr>),
        maps: &[PortMap],
    ) {
        for m in maps {
            let Some(c) = container_ip_for(m.host_ip, cip, cip6) else {
                continue;
            };
            let sock = hold_socket(&m.proto, m.host_ip, m.host_port)
                .map_err(|e| {
                    eprintln!(
                        "berthd: hold the host port {}/{} again: {e}",
                        host_port(m.host_ip, m.host_port),
                        m.proto
                    )
                })
                .ok();
            self.holds.push(Hold {
                map: m.clone(),
                container: container.to_string(),
                container_ip: c,
                bridge: bridge.to_string(),
                _sock: sock,
            });
        }
    }

    pub fn release(&mut self, container: &str) {
        self.holds.retain(|h| h.container != container);
    }
}

fn io_reason(e: &std::io::Error) -> String {
    match e.raw_os_error() {
        Some(libc::EADDRINUSE) => "address already in use".into(),
        Some(libc::EACCES) => "permission denied".into(),
        Some(libc::EADDRNOTAVAIL) => "cannot assign requested address".into(),
        _ => e.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn wants_from_bindings_and_publish_all() {
        let b = json!({"80/tcp": [{"HostIp": "", "HostPort": "8080"}], "53/udp": [{"HostIp": "127.0.0.1", "HostPort": ""}]});
        let mut w = wants(&b, &["80/tcp".into(), "443/tcp".into()], true).unwrap();
        w.sort_by_key(|w| w.container_port);
        assert_eq!(w.len(), 3);
        assert_eq!(
            w[0],
            Want {
                proto: "udp".into(),
                host_ip: Some(Ipv4Addr::LOCALHOST.into()),
                host_ports: (0, 0),
                container_port: 53
            }
        );
        assert_eq!(w[1].host_ports, (8080, 8080));
        assert_eq!(
            w[2],
            Want {
                proto: "tcp".into(),
                host_ip: None,
                host_ports: (0, 0),
                container_port: 443
            }
        );
        assert!(wants(&json!({"80/icmp": []}), &[], false).is_err());
        assert!(wants(&json!({"80/tcp": [{"HostPort": "9-1"}]}), &[], false).is_err());
        assert_eq!(
            wants(
                &json!({"80/tcp": [{"HostIp": "[::1]", "HostPort": "1"}]}),
                &[],
                false
            )
            .unwrap()[0]
                .host_ip,
            Some("::1".parse().unwrap())
        );
        assert!(wants(
            &json!({"80/tcp": [{"HostIp": "nowhere", "HostPort": "1"}]}),
            &[],
            false
        )
        .is_err());
    }

    #[test]
    fn reserves_all_or_nothing_and_refuses_doubles() {
        let mut t = Table::default();
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let busy = l.local_addr().unwrap().port();
        let lo = Ipv4Addr::LOCALHOST;
        let free = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let w = |p: u16| Want {
            proto: "tcp".into(),
            host_ip: Some(lo.into()),
            host_ports: (p, p),
            container_port: 80,
        };
        // The second port is held by someone else: nothing is kept.
        let e = t
            .reserve(
                "c1",
                "c1",
                "br",
                (Ipv4Addr::new(10, 0, 0, 2), None),
                &[w(free), w(busy)],
            )
            .unwrap_err();
        assert!(e.to_string().contains("address already in use"), "{e}");
        assert!(t.rules().is_empty());
        let got = t
            .reserve("c1", "c1", "br", (Ipv4Addr::new(10, 0, 0, 2), None), &[w(free)])
            .unwrap();
        assert_eq!(got[0].host_port, free);
        let e = t
            .reserve("c2", "c2", "br", (Ipv4Addr::new(10, 0, 0, 3), None), &[w(free)])
            .unwrap_err();
        assert_eq!(
            e.to_string(),
            format!("Bind for 127.0.0.1:{free} failed: port is already allocated")
        );
        // Any free port.
        let any = Want {
            host_ports: (0, 0),
            ..w(0)
        };
        let got = t
            .reserve("c2", "c2", "br", (Ipv4Addr::new(10, 0, 0, 3), None), &[any])
            .unwrap();
        assert_ne!(got[0].host_port, 0);
        assert_eq!(t.rules().len(), 2);
        t.release("c1");
        assert_eq!(t.rules().len(), 1);
        assert_eq!(
            shown(&got, &["80/tcp".into(), "90/udp".into()]),
            json!({"80/tcp": [{"HostIp": "127.0.0.1", "HostPort": got[0].host_port.to_string()}], "90/udp": null})
        );
    }

    #[test]
    fn both_families_get_the_same_port() {
        let mut t = Table::default();
        let any = |host_ip: Option<IpAddr>| Want {
            proto: "tcp".into(),
            host_ip,
            host_ports: (0, 0),
            container_port: 80,
        };
        let c4 = Ipv4Addr::new(10, 0, 0, 2);
        let c6: Ipv6Addr = "fd00::2".parse().unwrap();
        let got = t.reserve("c1", "c1", "br", (c4, Some(c6)), &[any(None)]).unwrap();
        assert_eq!(got.len(), 2);
        assert_eq!(got[0].host_ip, IpAddr::V4(Ipv4Addr::UNSPECIFIED));
        assert_eq!(got[1].host_ip, IpAddr::V6(Ipv6Addr::UNSPECIFIED));
        assert_eq!(got[0].host_port, got[1].host_port);
        let rules = t.rules();
        assert_eq!(rules[1].container_ip, IpAddr::V6(c6));
        assert_eq!(rules[1].host_ip, None);
        // The same port on IPv6 for another container: dockerd's message, with brackets.
        let p = got[0].host_port;
        let want6 = Want {
            host_ports: (p, p),
            ..any(Some(IpAddr::V6(Ipv6Addr::UNSPECIFIED)))
        };
        let e = t
            .reserve(
                "c2",
                "c2",
                "br",
                (Ipv4Addr::new(10, 0, 0, 3), Some("fd00::3".parse().unwrap())),
                std::slice::from_ref(&want6),
            )
            .unwrap_err();
        assert_eq!(
            e.to_string(),
            format!("Bind for [::]:{p} failed: port is already allocated")
        );
        // No IPv6 address: an IPv6 host address is refused; without a host address, IPv4 only.
        let e = t
            .reserve("c3", "c3", "br", (Ipv4Addr::new(10, 0, 0, 4), None), &[want6])
            .unwrap_err();
        assert!(e.to_string().contains("the container has no IPv6 address"), "{e}");
        let got = t
            .reserve("c3", "c3", "br", (Ipv4Addr::new(10, 0, 0, 4), None), &[any(None)])
            .unwrap();
        assert_eq!(got.len(), 1);
        assert_eq!(
            shown(&got, &[]),
            json!({"80/tcp": [{"HostIp": "0.0.0.0", "HostPort": got[0].host_port.to_string()}]})
        );
    }
}
