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

/// `/etc/resolv.conf` from the host's: with a network namespace of its own the container cannot
/// reach the host's loopback resolvers, so those lines go (docker's rule), and Google's public
/// resolvers stand in when no nameserver is left.
pub fn resolv_conf(host: &str, own_netns: bool) -> String {
    if !own_netns {
        return host.to_string();
    }
    let mut out = String::new();
    let mut servers = 0;
    for line in host.lines() {
        let t = line.trim();
        if let Some(addr) = t.strip_prefix("nameserver") {
            let addr = addr.trim();
            if addr.starts_with("127.") || addr == "::1" {
                continue;
            }
            servers += 1;
        }
        out.push_str(line);
        out.push('\n');
    }
    if servers == 0 {
        out.push_str("nameserver 8.8.8.8\nnameserver 8.8.4.4\n");
    }
    out
}

/// Writes the three files into `dir` and returns the bind mounts that put them in place.
pub fn write(
    dir: &Path,
    hostname: &str,
    host_network: bool,
    read_only: bool,
) -> std::io::Result<Vec<oci::Mount>> {
    let hosts_text = if host_network {
        std::fs::read_to_string("/etc/hosts").unwrap_or_else(|_| hosts(&[]))
    } else {
        hosts(&[])
    };
    let host_resolv = std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
    let files = [
        ("hostname", format!("{hostname}\n"), "/etc/hostname"),
        ("hosts", hosts_text, "/etc/hosts"),
        (
            "resolv.conf",
            resolv_conf(&host_resolv, !host_network),
            "/etc/resolv.conf",
        ),
    ];
    let mut mounts = Vec::new();
    for (name, text, dest) in files {
        let p = dir.join(name);
        std::fs::write(&p, text)?;
        let mut options = vec!["rbind".to_string(), "rprivate".to_string()];
        if read_only {
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
        assert_eq!(
            resolv_conf(host, true),
            "# comment\nnameserver 10.0.0.2\nsearch example.org\noptions edns0\n"
        );
        assert_eq!(
            resolv_conf("nameserver 127.0.0.1\nnameserver ::1\n", true),
            "nameserver 8.8.8.8\nnameserver 8.8.4.4\n"
        );
        assert_eq!(resolv_conf(host, false), host);
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
        let m = write(d.path(), "box", false, true).unwrap();
        assert_eq!(
            std::fs::read_to_string(d.path().join("hostname")).unwrap(),
            "box\n"
        );
        assert_eq!(m.len(), 3);
        assert_eq!(m[1].destination, "/etc/hosts");
        assert!(m[2].options.as_ref().unwrap().contains(&"ro".to_string()));
    }
}
