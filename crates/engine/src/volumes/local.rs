//! The `local` driver's rules, pure: volume names, the `type`/`device`/`o`/`size` options checked as
//! dockerd checks them, and the mount(2) call a volume with options needs (device, type, flags and
//! data parsed from `o` the way `mount(8)` reads them).

use std::collections::BTreeMap;

use nix::mount::MsFlags;

use crate::images::Error;

/// docker's pattern for names of local volumes (and containers).
pub const NAME_CHARS: &str = "[a-zA-Z0-9][a-zA-Z0-9_.-]";

/// The label that marks an anonymous volume.
pub const ANONYMOUS_LABEL: &str = "com.docker.volume.anonymous";

/// Whether `name` matches `[a-zA-Z0-9][a-zA-Z0-9_.-]+`.
pub fn valid_name(name: &str) -> bool {
    let b = name.as_bytes();
    b.len() >= 2
        && b[0].is_ascii_alphanumeric()
        && b[1..]
            .iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.' | b'-'))
}

/// dockerd's error for a bad name (wrapped as `create NAME: ...` by the caller).
pub fn check_name(name: &str) -> Result<(), Error> {
    if valid_name(name) {
        return Ok(());
    }
    Err(Error::Invalid(format!(
        "create {name}: {name:?} includes invalid characters for a local volume name, only {NAME_CHARS:?} are allowed. If you intended to pass a host directory, use absolute path"
    )))
}

/// How a volume with options is mounted on its `_data` directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountPlan {
    pub device: String,
    pub fstype: String,
    pub flags: MsFlags,
    /// The options the kernel's filesystem reads (`size=64m`, `addr=...`), comma-separated.
    pub data: String,
}

/// The `o` option split as `mount(8)` splits it: flags the kernel takes as bits, the rest as data.
pub fn parse_o(o: &str) -> (MsFlags, String) {
    let mut flags = MsFlags::empty();
    let mut data: Vec<&str> = Vec::new();
    for opt in o.split(',').filter(|s| !s.is_empty()) {
        let (set, clear) = match opt {
            "defaults" => (MsFlags::empty(), MsFlags::empty()),
            "ro" => (MsFlags::MS_RDONLY, MsFlags::empty()),
            "rw" => (MsFlags::empty(), MsFlags::MS_RDONLY),
            "bind" => (MsFlags::MS_BIND, MsFlags::empty()),
            "rbind" => (MsFlags::MS_BIND | MsFlags::MS_REC, MsFlags::empty()),
            "nosuid" => (MsFlags::MS_NOSUID, MsFlags::empty()),
            "suid" => (MsFlags::empty(), MsFlags::MS_NOSUID),
            "nodev" => (MsFlags::MS_NODEV, MsFlags::empty()),
            "dev" => (MsFlags::empty(), MsFlags::MS_NODEV),
            "noexec" => (MsFlags::MS_NOEXEC, MsFlags::empty()),
            "exec" => (MsFlags::empty(), MsFlags::MS_NOEXEC),
            "sync" => (MsFlags::MS_SYNCHRONOUS, MsFlags::empty()),
            "async" => (MsFlags::empty(), MsFlags::MS_SYNCHRONOUS),
            "dirsync" => (MsFlags::MS_DIRSYNC, MsFlags::empty()),
            "noatime" => (MsFlags::MS_NOATIME, MsFlags::empty()),
            "atime" => (MsFlags::empty(), MsFlags::MS_NOATIME),
            "nodiratime" => (MsFlags::MS_NODIRATIME, MsFlags::empty()),
            "diratime" => (MsFlags::empty(), MsFlags::MS_NODIRATIME),
            "relatime" => (MsFlags::MS_RELATIME, MsFlags::empty()),
            "norelatime" => (MsFlags::empty(), MsFlags::MS_RELATIME),
            "strictatime" => (MsFlags::MS_STRICTATIME, MsFlags::empty()),
            "mand" => (MsFlags::MS_MANDLOCK, MsFlags::empty()),
            "nomand" => (MsFlags::empty(), MsFlags::MS_MANDLOCK),
            other => {
                data.push(other);
                continue;
            }
        };
        flags.insert(set);
        flags.remove(clear);
    }
    (flags, data.join(","))
}

/// The value of `key=` in a comma-separated option string.
fn option_value<'a>(o: &'a str, key: &str) -> Option<&'a str> {
    o.split(',')
        .find_map(|kv| kv.strip_prefix(key)?.strip_prefix('='))
}

/// Checks a local volume's options as dockerd does (`invalid option`, `missing required option`)
/// and returns how to mount it, or `None` when it is a plain directory.
pub fn plan(opts: &BTreeMap<String, String>) -> Result<Option<MountPlan>, Error> {
    if opts.is_empty() {
        return Ok(None);
    }
    for k in opts.keys() {
        if !matches!(k.as_str(), "type" | "o" | "device" | "size") {
            return Err(Error::Invalid(format!("invalid option: {k:?}")));
        }
    }
    if let Some(size) = opts.get("size") {
        // dockerd sets sizes through project quotas on xfs only; berth has no quota support.
        return Err(Error::Invalid(format!(
            "quota size requested but no quota support (size={size}); for a size-limited volume use type=tmpfs with o=size={size}"
        )));
    }
    for (opt, needs) in [
        ("device", &["type"][..]),
        ("type", &["device"][..]),
        ("o", &["device", "type"][..]),
    ] {
        if opts.contains_key(opt) {
            for n in needs {
                if !opts.contains_key(*n) {
                    return Err(Error::Invalid(format!("missing required option: {n:?}")));
                }
            }
        }
    }
    let typ = opts.get("type").cloned().unwrap_or_default();
    let device = opts.get("device").cloned().unwrap_or_default();
    let o = opts.get("o").cloned().unwrap_or_default();
    if device.is_empty() {
        return Err(Error::Invalid("missing device in volume options".into()));
    }
    let addr = option_value(&o, "addr");
    match typ.as_str() {
        "nfs" | "nfs4" | "cifs" => {
            if let Some(a) = addr {
                if a.parse::<std::net::IpAddr>().is_err() {
                    return Err(Error::Invalid(format!(
                        "addr={a}: berth does not resolve host names for {typ} volumes; give the server's IP address"
                    )));
                }
            } else if typ != "cifs" {
                return Err(Error::Invalid(format!(
                    "a {typ} volume needs the server's address in o=addr=IP (the kernel's {typ} client does not resolve {device:?})"
                )));
            }
        }
        _ if addr.is_some() => {
            return Err(Error::Invalid(format!(
                "o=addr= is an option of nfs and cifs volumes, not of type {typ:?}"
            )));
        }
        _ => {}
    }
    let (flags, data) = parse_o(&o);
    if flags.contains(MsFlags::MS_BIND) && !device.starts_with('/') {
        return Err(Error::Invalid(format!(
            "invalid device {device:?} for a bind volume: it must be an absolute path"
        )));
    }
    Ok(Some(MountPlan {
        device,
        fstype: typ,
        flags,
        data,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(kv: &[(&str, &str)]) -> BTreeMap<String, String> {
        kv.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn names() {
        assert!(valid_name("data"));
        assert!(valid_name("a.b_c-1"));
        assert!(!valid_name("a"));
        assert!(!valid_name("_x"));
        assert!(!valid_name("foo/bar"));
        assert!(!valid_name("../x"));
        let e = check_name("foo/bar").unwrap_err();
        assert_eq!(e.status(), 400);
        assert_eq!(
            e.to_string(),
            "create foo/bar: \"foo/bar\" includes invalid characters for a local volume name, only \"[a-zA-Z0-9][a-zA-Z0-9_.-]\" are allowed. If you intended to pass a host directory, use absolute path"
        );
    }

    #[test]
    fn option_rules() {
        assert_eq!(plan(&opts(&[])).unwrap(), None);
        assert_eq!(
            plan(&opts(&[("foo", "1")])).unwrap_err().to_string(),
            "invalid option: \"foo\""
        );
        assert_eq!(
            plan(&opts(&[("device", "/x")])).unwrap_err().to_string(),
            "missing required option: \"type\""
        );
        assert_eq!(
            plan(&opts(&[("type", "tmpfs")])).unwrap_err().to_string(),
            "missing required option: \"device\""
        );
        assert!(plan(&opts(&[("size", "10m")]))
            .unwrap_err()
            .to_string()
            .starts_with("quota size requested but no quota support"));
    }

    #[test]
    fn bind_and_tmpfs_plans() {
        let p = plan(&opts(&[("type", "none"), ("device", "/srv/x"), ("o", "bind")]))
            .unwrap()
            .unwrap();
        assert_eq!(p.device, "/srv/x");
        assert!(p.flags.contains(MsFlags::MS_BIND));
        assert_eq!(p.data, "");
        let p = plan(&opts(&[
            ("type", "tmpfs"),
            ("device", "tmpfs"),
            ("o", "size=64m,uid=1000,noexec"),
        ]))
        .unwrap()
        .unwrap();
        assert_eq!(p.fstype, "tmpfs");
        assert_eq!(p.flags, MsFlags::MS_NOEXEC);
        assert_eq!(p.data, "size=64m,uid=1000");
        assert!(plan(&opts(&[("type", "none"), ("device", "rel"), ("o", "bind")])).is_err());
    }

    #[test]
    fn nfs_needs_an_address() {
        let e = plan(&opts(&[("type", "nfs"), ("device", ":/export")])).unwrap_err();
        assert!(e.to_string().contains("o=addr=IP"), "{e}");
        let e = plan(&opts(&[
            ("type", "nfs"),
            ("device", ":/e"),
            ("o", "addr=nas.lan"),
        ]))
        .unwrap_err();
        assert!(e.to_string().contains("does not resolve host names"), "{e}");
        let p = plan(&opts(&[
            ("type", "nfs"),
            ("device", ":/e"),
            ("o", "addr=127.0.0.1,rw"),
        ]))
        .unwrap()
        .unwrap();
        assert_eq!(p.data, "addr=127.0.0.1");
        let e = plan(&opts(&[
            ("type", "ext4"),
            ("device", "/dev/x"),
            ("o", "addr=1.2.3.4"),
        ]))
        .unwrap_err();
        assert!(e.to_string().contains("not of type"), "{e}");
    }

    #[test]
    fn o_flags_toggle() {
        let (f, d) = parse_o("ro,rw,nosuid,defaults,mode=0755");
        assert_eq!(f, MsFlags::MS_NOSUID);
        assert_eq!(d, "mode=0755");
    }
}
