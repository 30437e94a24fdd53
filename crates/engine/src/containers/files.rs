//! The files dockerd writes for each container and bind-mounts over the image's: `/etc/hostname`,
//! `/etc/hosts` and `/etc/resolv.conf`. Pure text builders plus one writer.

use std::path::Path;

use berth_spec as oci;

/// The default `/etc/hosts` of a container with its own network namespace.
pub fn hosts(extra: &[(String, String)]) -> String {
    let mut s = String::from(
        "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\nfe00::0\tip6-localnet\nff00::0\tip6-mcastprefix\nff02::1\tip6-allnodes\nff02::2\tip6-allrouters\n",
    );
    for (ip, names) in extra {
        s.push_str(&format!("{ip}\t{names}\n"));
    }
    s
}

/// How a container's resolver is set up.
#[derive(Debug, Clone, Default)]
pub struct Dns {
    /// The embedded DNS at 127.0.0.11 (user-defined networks).
    pub embedded: bool,
    /// `--dns`, `--dns-search`, `--dns-option` (empty: the host's).
    pub servers: Vec<String>,
    pub search: Vec<String>,
    pub options: Vec<String>,
}

/// `/etc/resolv.conf` from the host's and the container's DNS settings. With a network namespace
/// of its own the container cannot reach the host's loopback resolvers, so those lines go (docker's
/// rule), and Google's public resolvers stand in when no nameserver is left. On a user-defined
/// network the only nameserver is the embedded DNS (which forwards to the others), with `ndots:0`.
pub fn resolv_conf(host: &str, own_netns: bool, dns: &Dns) -> String {
    if !own_netns {
        return host.to_string();
    }
    let mut servers: Vec<String> = Vec::new();
    let mut search: Vec<String> = Vec::new();
    let mut options: Vec<String> = Vec::new();
    let mut comments = String::new();
    for line in host.lines() {
        let t = line.trim();
        let mut words = t.split_whitespace();
        match words.next() {
            Some("nameserver") => {
                if let Some(a) = words.next() {
                    if !a.starts_with("127.") && a != "::1" {
                        servers.push(a.to_string());
                    }
                }
            }
            Some("search") | Some("domain") => search = words.map(String::from).collect(),
            Some("options") => options.extend(words.map(String::from)),
            Some(w) if w.starts_with('#') || w.starts_with(';') => {
                comments.push_str(line);
                comments.push('\n');
            }
            _ => {}
        }
    }
    if !dns.servers.is_empty() {
        servers = dns.servers.clone();
    }
    if servers.is_empty() {
        servers = vec!["8.8.8.8".into(), "8.8.4.4".into()];
    }
    if !dns.search.is_empty() {
        search = dns.search.iter().filter(|s| *s != ".").cloned().collect();
    }
    if !dns.options.is_empty() {
        options = dns.options.clone();
    }
    if dns.embedded {
        servers = vec!["127.0.0.11".into()];
        if !options.iter().any(|o| o.starts_with("ndots:")) {
            options.push("ndots:0".into());
        }
    }
    let mut out = comments;
    for s in &servers {
        out.push_str(&format!("nameserver {s}\n"));
    }
    if !search.is_empty() {
        out.push_str(&format!("search {}\n", search.join(" ")));
    }
    if !options.is_empty() {
        out.push_str(&format!("options {}\n", options.join(" ")));
    }
    out
}

/// `--add-host` entries (`name:ip`, `name=ip`) as hosts lines; `host-gateway` is `gateway`.
pub fn extra_hosts(entries: &[String], gateway: Option<&str>) -> Result<Vec<(String, String)>, String> {
    let mut out = Vec::new();
    for e in entries {
        let (name, ip) = e
            .split_once('=')
            .or_else(|| e.split_once(':'))
            .ok_or_else(|| format!("bad format for add-host: {e:?}"))?;
        let ip = match ip {
            "host-gateway" => gateway
                .ok_or_else(|| {
                    "unable to resolve host-gateway: the container has no bridge network".to_string()
                })?
                .to_string(),
            ip => ip.trim_start_matches('[').trim_end_matches(']').to_string(),
        };
        if ip.parse::<std::net::IpAddr>().is_err() {
            return Err(format!("invalid IP address in add-host: {ip:?}"));
        }
        out.push((ip, name.to_string()));
    }
    Ok(out)
}

/// What goes into the three files.
#[derive(Debug, Clone, Default)]
pub struct Plan {
    pub hostname: String,
    pub host_network: bool,
    pub read_only: bool,
    /// hosts lines after the defaults: `--add-host`s, then the container's own address.
    pub hosts: Vec<(String, String)>,
    pub dns: Dns,
}

fn host_resolv() -> String {
    std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default()
}

/// Writes `dir`'s resolv.conf again (in place: the container sees it through its bind mount), for
/// a container with a network namespace of its own.
pub fn write_resolv(dir: &Path, dns: &Dns) -> std::io::Result<()> {
    std::fs::write(dir.join("resolv.conf"), resolv_conf(&host_resolv(), true, dns))
}

/// Writes the three files into `dir` and returns the bind mounts that put them in place.
pub fn write(dir: &Path, plan: &Plan) -> std::io::Result<Vec<oci::Mount>> {
    let hosts_text = if plan.host_network {
        std::fs::read_to_string("/etc/hosts").unwrap_or_else(|_| hosts(&[]))
    } else {
        hosts(&plan.hosts)
    };
    let files = [
        ("hostname", format!("{}\n", plan.hostname), "/etc/hostname"),
        ("hosts", hosts_text, "/etc/hosts"),
        (
            "resolv.conf",
            resolv_conf(&host_resolv(), !plan.host_network, &plan.dns),
            "/etc/resolv.conf",
        ),
    ];
    let mut mounts = Vec::new();
    for (name, text, dest) in files {
        let p = dir.join(name);
        std::fs::write(&p, text)?;
        let mut options = vec!["rbind".to_string(), "rprivate".to_string()];
        if plan.read_only {
            options.push("ro".into());
        }
        mounts.push(oci::Mount {
            destination: dest.into(),
            typ: Some("bind".into()),
            source: Some(p.display().to_string()),
            options: Some(options),
            ..Default::default()
        });
    }
    Ok(mounts)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolv_conf_drops_loopback_servers() {
        let host =
            "# comment\nnameserver 127.0.0.53\nnameserver 10.0.0.2\nsearch example.org\noptions edns0\n";
        let none = Dns::default();
        assert_eq!(
            resolv_conf(host, true, &none),
            "# comment\nnameserver 10.0.0.2\nsearch example.org\noptions edns0\n"
        );
        assert_eq!(
            resolv_conf("nameserver 127.0.0.1\nnameserver ::1\n", true, &none),
            "nameserver 8.8.8.8\nnameserver 8.8.4.4\n"
        );
        assert_eq!(resolv_conf(host, false, &none), host);
        let user = Dns {
            servers: vec!["1.1.1.1".into()],
            search: vec!["lan".into()],
            options: vec!["ndots:2".into()],
            embedded: false,
        };
        assert_eq!(
            resolv_conf(host, true, &user),
            "# comment\nnameserver 1.1.1.1\nsearch lan\noptions ndots:2\n"
        );
        let embedded = Dns {
            embedded: true,
            ..Default::default()
        };
        assert_eq!(
            resolv_conf(host, true, &embedded),
            "# comment\nnameserver 127.0.0.11\nsearch example.org\noptions edns0 ndots:0\n"
        );
    }

    #[test]
    fn add_host_entries() {
        let got = extra_hosts(
            &["db:10.0.0.5".into(), "v6:[::1]".into(), "gw=host-gateway".into()],
            Some("172.17.0.1"),
        )
        .unwrap();
        assert_eq!(
            got,
            vec![
                ("10.0.0.5".to_string(), "db".to_string()),
                ("::1".to_string(), "v6".to_string()),
                ("172.17.0.1".to_string(), "gw".to_string())
            ]
        );
        assert!(extra_hosts(&["nohost".into()], None).is_err());
        assert!(extra_hosts(&["x:notanip".into()], None).is_err());
        assert!(extra_hosts(&["x:host-gateway".into()], None).is_err());
    }

    #[test]
    fn hosts_file() {
        let h = hosts(&[("10.1.0.2".into(), "abc web".into())]);
        assert!(h.starts_with("127.0.0.1\tlocalhost\n"));
        assert!(h.ends_with("10.1.0.2\tabc web\n"));
    }

    #[test]
    fn writes_and_mounts() {
        let d = tempfile::tempdir().unwrap();
        let plan = Plan {
            hostname: "box".into(),
            read_only: true,
            ..Default::default()
        };
        let m = write(d.path(), &plan).unwrap();
        assert_eq!(
            std::fs::read_to_string(d.path().join("hostname")).unwrap(),
            "box\n"
        );
        assert_eq!(m.len(), 3);
        assert_eq!(m[1].destination, "/etc/hosts");
        assert!(m[2].options.as_ref().unwrap().contains(&"ro".to_string()));
    }
}
