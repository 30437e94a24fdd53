//! Image references with docker's normalization: `alpine` is `docker.io/library/alpine:latest`,
//! `host:port/name:tag`, `name@sha256:...`. Parsing follows the grammar of the distribution project
//! (lowercase path components joined by `.`, `_`, `__` or dashes; tags of up to 128 word characters).

use std::fmt;
use std::str::FromStr;

use crate::digest::Digest;

/// docker's default registry domain.
pub const DEFAULT_DOMAIN: &str = "docker.io";
const LEGACY_DOMAIN: &str = "index.docker.io";
/// Where docker.io's API lives.
pub const DEFAULT_REGISTRY_HOST: &str = "registry-1.docker.io";
pub const DEFAULT_TAG: &str = "latest";

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ReferenceError {
    #[error("invalid reference format")]
    Format,
    #[error("invalid reference format: repository name ({0}) must be lowercase")]
    Uppercase(String),
    #[error("repository name must not be more than 255 characters")]
    TooLong,
    #[error("invalid repository name ({0}), cannot specify 64-byte hexadecimal strings")]
    Hex(String),
    #[error("invalid reference format: {0}")]
    Digest(#[from] crate::digest::DigestError),
}

/// A normalized reference.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Reference {
    domain: String,
    path: String,
    tag: Option<String>,
    digest: Option<Digest>,
}

fn is_component(s: &str) -> bool {
    // [a-z0-9]+ ( ( [._] | __ | -+ ) [a-z0-9]+ )*
    let b = s.as_bytes();
    if b.is_empty() || !b[0].is_ascii_alphanumeric() || !b[b.len() - 1].is_ascii_alphanumeric() {
        return false;
    }
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        if c.is_ascii_lowercase() || c.is_ascii_digit() {
            i += 1;
            continue;
        }
        // A separator: `.`, `_`, `__` or any run of `-`.
        let start = i;
        match c {
            b'.' => i += 1,
            b'_' => {
                i += 1;
                if i < b.len() && b[i] == b'_' {
                    i += 1;
                }
            }
            b'-' => {
                while i < b.len() && b[i] == b'-' {
                    i += 1;
                }
            }
            _ => return false,
        }
        if i == start || i >= b.len() || !b[i].is_ascii_alphanumeric() {
            return false;
        }
    }
    true
}

fn is_domain(s: &str) -> bool {
    if let Some(rest) = s.strip_prefix('[') {
        // [ipv6]:port
        let Some((ip, port)) = rest.split_once(']') else {
            return false;
        };
        return ip.parse::<std::net::Ipv6Addr>().is_ok() && (port.is_empty() || is_port(port));
    }
    let (host, port) = match s.rsplit_once(':') {
        Some((h, p)) => (h, Some(p)),
        None => (s, None),
    };
    let host_ok = !host.is_empty()
        && host.split('.').all(|l| {
            !l.is_empty()
                && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
                && !l.starts_with('-')
                && !l.ends_with('-')
        });
    host_ok && port.is_none_or(|p| is_port(&format!(":{p}")))
}

fn is_port(p: &str) -> bool {
    p.strip_prefix(':')
        .is_some_and(|d| !d.is_empty() && d.len() <= 5 && d.chars().all(|c| c.is_ascii_digit()))
}

fn is_tag(t: &str) -> bool {
    let mut chars = t.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphanumeric() || c == '_')
        && t.len() <= 128
        && chars.all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c))
}

impl FromStr for Reference {
    type Err = ReferenceError;

    fn from_str(s: &str) -> Result<Reference, ReferenceError> {
        if s.is_empty() {
            return Err(ReferenceError::Format);
        }
        if s.len() == 64
            && s.chars()
                .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase())
        {
            return Err(ReferenceError::Hex(s.to_string()));
        }
        let (rest, digest) = match s.split_once('@') {
            Some((r, d)) => (r, Some(d.parse::<Digest>()?)),
            None => (s, None),
        };
        let (name, tag) = match rest.rfind(':') {
            Some(i) if !rest[i..].contains('/') => (&rest[..i], Some(rest[i + 1..].to_string())),
            _ => (rest, None),
        };
        if let Some(t) = &tag {
            if !is_tag(t) {
                return Err(ReferenceError::Format);
            }
        }
        let (mut domain, mut path) = match name.split_once('/') {
            Some((first, remainder))
                if first.contains('.')
                    || first.contains(':')
                    || first == "localhost"
                    || first.chars().any(|c| c.is_ascii_uppercase()) =>
            {
                (first.to_string(), remainder.to_string())
            }
            _ => (DEFAULT_DOMAIN.to_string(), name.to_string()),
        };
        if domain == LEGACY_DOMAIN {
            domain = DEFAULT_DOMAIN.to_string();
        }
        if domain == DEFAULT_DOMAIN && !path.contains('/') {
            path = format!("library/{path}");
        }
        if !is_domain(&domain) {
            return Err(ReferenceError::Format);
        }
        if path.chars().any(|c| c.is_ascii_uppercase()) {
            return Err(ReferenceError::Uppercase(name.to_string()));
        }
        if !path.split('/').all(is_component) {
            return Err(ReferenceError::Format);
        }
        if domain.len() + 1 + path.len() > 255 {
            return Err(ReferenceError::TooLong);
        }
        let tag = if tag.is_none() && digest.is_none() {
            Some(DEFAULT_TAG.to_string())
        } else {
            tag
        };
        Ok(Reference {
            domain,
            path,
            tag,
            digest,
        })
    }
}

impl Reference {
    /// `docker.io`, `127.0.0.1:5000`, ...
    pub fn domain(&self) -> &str {
        &self.domain
    }

    /// The repository path on the registry: `library/alpine`.
    pub fn path(&self) -> &str {
        &self.path
    }

    pub fn tag(&self) -> Option<&str> {
        self.tag.as_deref()
    }

    pub fn digest(&self) -> Option<&Digest> {
        self.digest.as_ref()
    }

    /// The full repository name: `docker.io/library/alpine`.
    pub fn repository(&self) -> String {
        format!("{}/{}", self.domain, self.path)
    }

    /// The name as docker shows it: `alpine`, `user/app`, `127.0.0.1:5000/busybox`.
    pub fn familiar_name(&self) -> String {
        if self.domain == DEFAULT_DOMAIN {
            self.path
                .strip_prefix("library/")
                .unwrap_or(&self.path)
                .to_string()
        } else {
            self.repository()
        }
    }

    /// The reference as docker shows it: `alpine:latest`.
    pub fn familiar(&self) -> String {
        let mut s = self.familiar_name();
        if let Some(t) = &self.tag {
            s.push(':');
            s.push_str(t);
        }
        if let Some(d) = &self.digest {
            s.push('@');
            s.push_str(&d.to_string());
        }
        s
    }

    /// The host to talk to for this reference's registry.
    pub fn registry_host(&self) -> &str {
        if self.domain == DEFAULT_DOMAIN {
            DEFAULT_REGISTRY_HOST
        } else {
            &self.domain
        }
    }

    /// What to ask the registry for: the digest if there is one, else the tag.
    pub fn object(&self) -> String {
        match (&self.digest, &self.tag) {
            (Some(d), _) => d.to_string(),
            (None, Some(t)) => t.clone(),
            (None, None) => DEFAULT_TAG.to_string(),
        }
    }

    /// The same repository with another tag (and no digest).
    pub fn with_tag(&self, tag: &str) -> Result<Reference, ReferenceError> {
        if !is_tag(tag) {
            return Err(ReferenceError::Format);
        }
        Ok(Reference {
            tag: Some(tag.to_string()),
            digest: None,
            ..self.clone()
        })
    }
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.repository())?;
        if let Some(t) = &self.tag {
            write!(f, ":{t}")?;
        }
        if let Some(d) = &self.digest {
            write!(f, "@{d}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(s: &str) -> Reference {
        s.parse().unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    #[test]
    fn docker_normalization() {
        assert_eq!(r("alpine").to_string(), "docker.io/library/alpine:latest");
        assert_eq!(r("alpine").familiar(), "alpine:latest");
        assert_eq!(r("user/app:1.0").to_string(), "docker.io/user/app:1.0");
        assert_eq!(
            r("index.docker.io/library/busybox").to_string(),
            "docker.io/library/busybox:latest"
        );
        assert_eq!(r("docker.io/busybox").path(), "library/busybox");
        let local = r("127.0.0.1:5000/hello-world");
        assert_eq!(local.domain(), "127.0.0.1:5000");
        assert_eq!(local.path(), "hello-world");
        assert_eq!(local.familiar(), "127.0.0.1:5000/hello-world:latest");
        assert_eq!(local.registry_host(), "127.0.0.1:5000");
        assert_eq!(r("localhost/app").domain(), "localhost");
        assert_eq!(r("alpine").registry_host(), "registry-1.docker.io");
        assert_eq!(r("quay.io/a/b/c:v1").path(), "a/b/c");
        assert_eq!(r("[::1]:5000/x").domain(), "[::1]:5000");
    }

    #[test]
    fn digests_and_tags() {
        let d = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
        let x = r(&format!("alpine@{d}"));
        assert_eq!(x.tag(), None);
        assert_eq!(x.object(), d);
        assert_eq!(x.to_string(), format!("docker.io/library/alpine@{d}"));
        let y = r(&format!("alpine:3.19@{d}"));
        assert_eq!(y.tag(), Some("3.19"));
        assert_eq!(y.familiar(), format!("alpine:3.19@{d}"));
        assert_eq!(
            r("a:b").with_tag("c").unwrap().to_string(),
            "docker.io/library/a:c"
        );
    }

    #[test]
    fn invalid_references() {
        for bad in [
            "",
            "Alpine",
            "alpine:",
            "alpine:-x",
            "a//b",
            "a/",
            "-a",
            "a--",
            "a@sha256:123",
            "a:b:c",
            ":tag",
            "a/B",
        ] {
            assert!(bad.parse::<Reference>().is_err(), "{bad:?} should be refused");
        }
        assert!(matches!(
            "Alpine".parse::<Reference>(),
            Err(ReferenceError::Uppercase(_))
        ));
        assert_eq!(
            "Alpine".parse::<Reference>().unwrap_err().to_string(),
            "invalid reference format: repository name (Alpine) must be lowercase"
        );
        let hex = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
        assert!(matches!(hex.parse::<Reference>(), Err(ReferenceError::Hex(_))));
        assert!("a".repeat(300).parse::<Reference>().is_err());
        // Separators as the grammar allows them.
        assert!("a__b-c---d/e_f.g".parse::<Reference>().is_ok());
        assert!("a___b".parse::<Reference>().is_err());
    }
}
