//! Kernel parameters under /proc/sys, named as sysctl(8) names them: "net.ipv4.ip_forward" is
//! /proc/sys/net/ipv4/ip_forward. As in sysctl(8), a '/' in a key stands for a '.' in the path, for
//! interface names with dots ("net.ipv4.conf.eth0/100.forwarding"). The files under
//! /proc/sys/net belong to the network namespace of the thread that opens them: run these inside
//! `netns::run_in` to reach a container's.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

/// Writes /proc/sys/<key with dots as slashes> ("net.ipv4.ip_forward",
/// "net.ipv4.conf.berth0.route_localnet").
pub fn set(key: &str, value: &str) -> io::Result<()> {
    Sysctl::default().set(key, value)
}

/// Reads /proc/sys/<key with dots as slashes>, trimmed.
pub fn get(key: &str) -> io::Result<String> {
    Sysctl::default().get(key)
}

/// Sysctls under a root directory (/proc/sys, or a temp dir in tests).
#[derive(Debug, Clone)]
pub struct Sysctl {
    root: PathBuf,
}

impl Default for Sysctl {
    fn default() -> Self {
        Sysctl::new("/proc/sys")
    }
}

impl Sysctl {
    pub fn new(root: impl Into<PathBuf>) -> Sysctl {
        Sysctl { root: root.into() }
    }

    pub fn set(&self, key: &str, value: &str) -> io::Result<()> {
        let path = self.path(key)?;
        fs::write(&path, value).map_err(|e| context(e, format!("set sysctl {key} to {value}")))
    }

    pub fn get(&self, key: &str) -> io::Result<String> {
        let path = self.path(key)?;
        let text = fs::read_to_string(&path).map_err(|e| context(e, format!("read sysctl {key}")))?;
        Ok(text.trim().to_string())
    }

    /// The file of `key`: every component non-empty and no "..", so a key never leaves the root.
    pub fn path(&self, key: &str) -> io::Result<PathBuf> {
        let mut path = self.root.clone();
        for part in key.split('.') {
            let part = part.replace('/', ".");
            if part.is_empty() || part == ".." || part == "." {
                let msg = format!("invalid sysctl key {key:?}");
                return Err(io::Error::new(io::ErrorKind::InvalidInput, msg));
            }
            path.push(Path::new(&part));
        }
        Ok(path)
    }
}

fn context(e: io::Error, what: String) -> io::Error {
    io::Error::new(e.kind(), format!("{what}: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_map_to_paths_under_the_root() {
        let s = Sysctl::new("/r");
        assert_eq!(
            s.path("net.ipv4.ip_forward").unwrap(),
            Path::new("/r/net/ipv4/ip_forward")
        );
        assert_eq!(
            s.path("net.ipv4.conf.eth0/100.forwarding").unwrap(),
            Path::new("/r/net/ipv4/conf/eth0.100/forwarding")
        );
        // "net./.x": a lone "/" is "." after the swap.
        for bad in ["", "net..x", ".net", "net.ipv4.", "net./.x", "net.//.x"] {
            let e = s.path(bad).unwrap_err();
            assert_eq!(e.kind(), io::ErrorKind::InvalidInput, "{bad}");
        }
    }

    #[test]
    fn set_and_get_through_an_injected_root() {
        let dir = tempfile::tempdir().unwrap();
        fs::create_dir_all(dir.path().join("net/ipv4/conf/berth0")).unwrap();
        fs::write(dir.path().join("net/ipv4/ip_forward"), "0\n").unwrap();
        let s = Sysctl::new(dir.path());
        assert_eq!(s.get("net.ipv4.ip_forward").unwrap(), "0");
        s.set("net.ipv4.ip_forward", "1").unwrap();
        assert_eq!(s.get("net.ipv4.ip_forward").unwrap(), "1");
        s.set("net.ipv4.conf.berth0.route_localnet", "1").unwrap();
        assert_eq!(
            fs::read_to_string(dir.path().join("net/ipv4/conf/berth0/route_localnet")).unwrap(),
            "1"
        );
        let e = s.get("net.ipv4.nothing").unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::NotFound);
        assert!(e.to_string().starts_with("read sysctl net.ipv4.nothing: "), "{e}");
    }
}
