//! Published ports: which host ports a container gets (`PortBindings`, `-P` with the exposed ports),
//! held by a bound socket so that no other program (or container) takes them, and turned into the
//! DNAT rules of the firewall. A port is published through NAT, not a proxy: the socket is bound and
//! never listened on.

use std::net::Ipv4Addr;
use std::os::fd::OwnedFd;

use nix::sys::socket::{bind, setsockopt, socket, sockopt, AddressFamily, SockFlag, SockType, SockaddrIn};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::dataplane::FwPort;
use crate::images::Error;

/// One published port as it was given out.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PortMap {
    pub proto: String,
    pub host_ip: Ipv4Addr,
    pub host_port: u16,
    pub container_port: u16,
}

/// One port asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Want {
    pub proto: String,
    pub host_ip: Ipv4Addr,
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
                let host_ip = match hip {
                    "" => Ipv4Addr::UNSPECIFIED,
                    h => match h.parse::<std::net::IpAddr>() {
                        Ok(std::net::IpAddr::V4(a)) => a,
                        Ok(std::net::IpAddr::V6(_)) => {
                            return Err(invalid(format!(
                                "publishing on the IPv6 host address {h} is not supported by berth yet"
                            )))
                        }
                        Err(_) => return Err(invalid(format!("invalid IP address: {h}"))),
                    },
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
                    host_ip: Ipv4Addr::UNSPECIFIED,
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
    container_ip: Ipv4Addr,
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

/// Binds (never listens on) the host port so nothing else takes it.
fn hold_socket(proto: &str, ip: Ipv4Addr, port: u16) -> std::io::Result<OwnedFd> {
    let typ = if proto == "udp" {
        SockType::Datagram
    } else {
        SockType::Stream
    };
    let fd = socket(AddressFamily::Inet, typ, SockFlag::SOCK_CLOEXEC, None)?;
    if typ == SockType::Stream {
        setsockopt(&fd, sockopt::ReuseAddr, &true)?;
    }
    bind(
        std::os::fd::AsRawFd::as_raw_fd(&fd),
        &SockaddrIn::from(std::net::SocketAddrV4::new(ip, port)),
    )?;
    Ok(fd)
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

    fn taken(&self, proto: &str, ip: Ipv4Addr, port: u16) -> bool {
        self.holds.iter().any(|h| {
            h.map.proto == proto
                && h.map.host_port == port
                && (h.map.host_ip == ip || h.map.host_ip.is_unspecified() || ip.is_unspecified())
        })
    }

    /// Gives container `container` (at `cip` on `bridge`) the ports it wants, all or none.
    /// `endpoint` names it in dockerd's message when a port cannot be bound.
    pub fn reserve(
        &mut self,
        container: &str,
        endpoint: &str,
        bridge: &str,
        cip: Ipv4Addr,
        wants: &[Want],
    ) -> Result<Vec<PortMap>, Error> {
        let mut got: Vec<Hold> = Vec::new();
        let result = (|| {
            for w in wants {
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
                for i in 0..span {
                    let port = (u32::from(lo) + (u32::from(start - lo) + i) % span) as u16;
                    let clash = self.taken(&w.proto, w.host_ip, port)
                        || got
                            .iter()
                            .any(|h| h.map.proto == w.proto && h.map.host_port == port);
                    if clash {
                        last_err = Some(Error::Forbidden(format!(
                            "Bind for {}:{port} failed: port is already allocated",
                            w.host_ip
                        )));
                        continue;
                    }
                    match hold_socket(&w.proto, w.host_ip, port) {
                        Ok(s) => {
                            chosen = Some((port, s));
                            break;
                        }
                        Err(e) => {
                            last_err = Some(Error::Internal(format!(
                                "driver failed programming external connectivity on endpoint {endpoint}: failed to bind host port for {}:{port}:{cip}:{}/{}: {}",
                                w.host_ip, w.container_port, w.proto, io_reason(&e)
                            )));
                        }
                    }
                }
                let Some((port, sock)) = chosen else {
                    return Err(last_err.unwrap_or_else(|| Error::Internal("no free host port".into())));
                };
                if any {
                    self.cursor = if port == hi { lo } else { port + 1 };
                }
                got.push(Hold {
                    map: PortMap {
                        proto: w.proto.clone(),
                        host_ip: w.host_ip,
                        host_port: port,
                        container_port: w.container_port,
                    },
                    container: container.to_string(),
                    container_ip: cip,
                    bridge: bridge.to_string(),
                    _sock: Some(sock),
                });
            }
            Ok(())
        })();
        result?;
        let maps = got.iter().map(|h| h.map.clone()).collect();
        self.holds.extend(got);
        Ok(maps)
    }

    /// Takes back the ports of a container that was running before berthd restarted.
    pub fn restore(&mut self, container: &str, bridge: &str, cip: Ipv4Addr, maps: &[PortMap]) {
        for m in maps {
            let sock = hold_socket(&m.proto, m.host_ip, m.host_port)
                .map_err(|e| {
                    eprintln!(
                        "berthd: hold the host port {}:{}/{} again: {e}",
                        m.host_ip, m.host_port, m.proto
                    )
                })
                .ok();
            self.holds.push(Hold {
                map: m.clone(),
                container: container.to_string(),
                container_ip: cip,
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
                host_ip: Ipv4Addr::LOCALHOST,
                host_ports: (0, 0),
                container_port: 53
            }
        );
        assert_eq!(w[1].host_ports, (8080, 8080));
        assert_eq!(
            w[2],
            Want {
                proto: "tcp".into(),
                host_ip: Ipv4Addr::UNSPECIFIED,
                host_ports: (0, 0),
                container_port: 443
            }
        );
        assert!(wants(&json!({"80/icmp": []}), &[], false).is_err());
        assert!(wants(&json!({"80/tcp": [{"HostPort": "9-1"}]}), &[], false).is_err());
        assert!(wants(
            &json!({"80/tcp": [{"HostIp": "::1", "HostPort": "1"}]}),
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
            host_ip: lo,
            host_ports: (p, p),
            container_port: 80,
        };
        // The second port is held by someone else: nothing is kept.
        let e = t
            .reserve("c1", "c1", "br", Ipv4Addr::new(10, 0, 0, 2), &[w(free), w(busy)])
            .unwrap_err();
        assert!(e.to_string().contains("address already in use"), "{e}");
        assert!(t.rules().is_empty());
        let got = t
            .reserve("c1", "c1", "br", Ipv4Addr::new(10, 0, 0, 2), &[w(free)])
            .unwrap();
        assert_eq!(got[0].host_port, free);
        let e = t
            .reserve("c2", "c2", "br", Ipv4Addr::new(10, 0, 0, 3), &[w(free)])
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
            .reserve("c2", "c2", "br", Ipv4Addr::new(10, 0, 0, 3), &[any])
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
}
