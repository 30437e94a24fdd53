//! `-p`/`--publish` specs as docker reads them: `[ip:][hostPort[-end]:]containerPort[-end][/proto]`
//! (an IPv6 host address in brackets), turned into docker's port bindings
//! (`"80/tcp": [{"HostIp": "", "HostPort": "8080"}]`).

use std::net::IpAddr;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PortError {
    #[error("no port specified: {0}<empty>")]
    Empty(String),
    #[error("invalid ip address: {0}")]
    Ip(String),
    #[error("invalid containerPort: {0}")]
    ContainerPort(String),
    #[error("invalid hostPort: {0}")]
    HostPort(String),
    #[error("invalid proto: {0}")]
    Proto(String),
    #[error("invalid ranges specified for container and host Ports: {0} and {1}")]
    Ranges(String, String),
}

/// One binding: container port and protocol, host address and port ("" = any / a free one; a
/// range `a-b` when one container port may take any of them).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Binding {
    pub container_port: u16,
    pub proto: String,
    pub host_ip: String,
    pub host_port: String,
}

impl Binding {
    /// docker's key: `80/tcp`.
    pub fn key(&self) -> String {
        format!("{}/{}", self.container_port, self.proto)
    }
}

/// `a` or `a-b` -> (a, b).
fn range(s: &str) -> Option<(u16, u16)> {
    let (a, b) = match s.split_once('-') {
        Some((a, b)) => (a, b),
        None => (s, s),
    };
    let (a, b): (u16, u16) = (a.parse().ok()?, b.parse().ok()?);
    (a <= b).then_some((a, b))
}

/// Splits `ip:host:container` where the ip may be `[v6]`.
fn fields(spec: &str) -> (String, String, String) {
    let (ip, rest) = if let Some(r) = spec.strip_prefix('[') {
        match r.split_once("]:") {
            Some((ip, rest)) => (ip.to_string(), rest.to_string()),
            None => (String::new(), spec.to_string()),
        }
    } else {
        (String::new(), spec.to_string())
    };
    let parts: Vec<&str> = rest.split(':').collect();
    match (ip.is_empty(), parts.as_slice()) {
        (true, [c]) => (String::new(), String::new(), c.to_string()),
        (true, [h, c]) => (String::new(), h.to_string(), c.to_string()),
        (true, [i, h, c]) => (i.to_string(), h.to_string(), c.to_string()),
        (false, [h, c]) => (ip, h.to_string(), c.to_string()),
        (false, [c]) => (ip, String::new(), c.to_string()),
        // More colons: everything before the last two is the address.
        (_, many) => {
            let n = many.len();
            (
                many[..n - 2].join(":"),
                many[n - 2].to_string(),
                many[n - 1].to_string(),
            )
        }
    }
}

/// Parses one `-p` spec.
pub fn parse(spec: &str) -> Result<Vec<Binding>, PortError> {
    let (body, proto) = match spec.rsplit_once('/') {
        Some((b, p)) => (b, p.to_string()),
        None => (spec, "tcp".to_string()),
    };
    if !matches!(proto.as_str(), "tcp" | "udp" | "sctp") {
        return Err(PortError::Proto(proto));
    }
    let (ip, host, container) = fields(body);
    if container.is_empty() {
        return Err(PortError::Empty(spec.to_string()));
    }
    if !ip.is_empty() && ip.parse::<IpAddr>().is_err() {
        return Err(PortError::Ip(ip));
    }
    let (c0, c1) = range(&container).ok_or_else(|| PortError::ContainerPort(container.clone()))?;
    if c0 == 0 {
        return Err(PortError::ContainerPort(container));
    }
    let host_range = if host.is_empty() {
        None
    } else {
        Some(range(&host).ok_or_else(|| PortError::HostPort(host.clone()))?)
    };
    let n = u32::from(c1 - c0) + 1;
    let mut out = Vec::new();
    for i in 0..n {
        let cp = c0 + i as u16;
        let hp = match host_range {
            None => String::new(),
            Some((h0, h1)) if n == 1 && h0 != h1 => format!("{h0}-{h1}"),
            Some((h0, h1)) => {
                if u32::from(h1 - h0) + 1 != n {
                    return Err(PortError::Ranges(container.clone(), host.clone()));
                }
                (h0 + i as u16).to_string()
            }
        };
        out.push(Binding {
            container_port: cp,
            proto: proto.clone(),
            host_ip: ip.clone(),
            host_port: hp,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(spec: &str) -> (String, String, String) {
        let b = parse(spec).unwrap();
        assert_eq!(b.len(), 1, "{spec}");
        (b[0].key(), b[0].host_ip.clone(), b[0].host_port.clone())
    }

    #[test]
    fn forms() {
        let s = |a: &str, b: &str, c: &str| (a.to_string(), b.to_string(), c.to_string());
        assert_eq!(one("80"), s("80/tcp", "", ""));
        assert_eq!(one("8080:80"), s("80/tcp", "", "8080"));
        assert_eq!(one("127.0.0.1:8080:80/udp"), s("80/udp", "127.0.0.1", "8080"));
        assert_eq!(one("127.0.0.1::80"), s("80/tcp", "127.0.0.1", ""));
        assert_eq!(one("[::1]:8080:80"), s("80/tcp", "::1", "8080"));
        assert_eq!(one("8000-8010:80"), s("80/tcp", "", "8000-8010"));
        let r = parse("8000-8002:80-82").unwrap();
        let got: Vec<(String, String)> = r.iter().map(|b| (b.key(), b.host_port.clone())).collect();
        assert_eq!(
            got,
            [
                ("80/tcp".into(), "8000".into()),
                ("81/tcp".into(), "8001".into()),
                ("82/tcp".into(), "8002".into())
            ]
        );
    }

    #[test]
    fn errors_as_docker() {
        let e = |s: &str| parse(s).unwrap_err().to_string();
        assert_eq!(e("80/xyz"), "invalid proto: xyz");
        assert_eq!(e("x:80"), "invalid hostPort: x");
        assert_eq!(e("8080:y"), "invalid containerPort: y");
        assert_eq!(e("8080:0"), "invalid containerPort: 0");
        assert_eq!(e("1.2.3.999:80:80"), "invalid ip address: 1.2.3.999");
        assert_eq!(
            e("8000-8001:80-82"),
            "invalid ranges specified for container and host Ports: 80-82 and 8000-8001"
        );
        assert_eq!(e("8080:"), "no port specified: 8080:<empty>");
        assert_eq!(e("90-80"), "invalid containerPort: 90-80");
    }
}
