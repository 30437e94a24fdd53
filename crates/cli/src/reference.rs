//! Image references normalized as docker's `reference.ParseNormalizedNamed` does
//! (`busybox` -> `docker.io/library/busybox`), with the familiar forms the CLI prints and
//! sends, and the docker config.json key of a registry.

use std::fmt;

pub const DEFAULT_DOMAIN: &str = "docker.io";
pub const INDEX_SERVER: &str = "https://index.docker.io/v1/";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reference {
    pub domain: String,
    pub path: String,
    pub tag: Option<String>,
    pub digest: Option<String>,
}

#[derive(Debug, PartialEq, Eq)]
pub struct Error(pub String);

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

fn invalid() -> Error {
    Error("invalid reference format".into())
}

fn valid_component(c: &str) -> bool {
    // [a-z0-9]+(?:(?:[._]|__|[-]+)[a-z0-9]+)*
    let b = c.as_bytes();
    if b.is_empty() || !is_alnum(b[0]) || !is_alnum(b[b.len() - 1]) {
        return false;
    }
    let mut i = 0;
    while i < b.len() {
        if is_alnum(b[i]) {
            i += 1;
            continue;
        }
        let start = i;
        while i < b.len() && !is_alnum(b[i]) {
            i += 1;
        }
        let sep = &c[start..i];
        let ok = sep == "." || sep == "_" || sep == "__" || sep.bytes().all(|x| x == b'-');
        if !ok {
            return false;
        }
    }
    true
}

fn is_alnum(b: u8) -> bool {
    b.is_ascii_lowercase() || b.is_ascii_digit()
}

fn valid_tag(t: &str) -> bool {
    let b = t.as_bytes();
    !b.is_empty()
        && b.len() <= 128
        && (b[0].is_ascii_alphanumeric() || b[0] == b'_')
        && b.iter()
            .all(|&c| c.is_ascii_alphanumeric() || c == b'_' || c == b'.' || c == b'-')
}

fn valid_digest(d: &str) -> bool {
    match d.split_once(':') {
        Some((alg, hex)) => {
            !alg.is_empty()
                && alg
                    .bytes()
                    .all(|c| c.is_ascii_alphanumeric() || b"+._-".contains(&c))
                && hex.len() >= 32
                && hex.bytes().all(|c| c.is_ascii_hexdigit())
        }
        None => false,
    }
}

fn valid_domain(d: &str) -> bool {
    let host = match d.rsplit_once(':') {
        Some((h, port)) if !h.ends_with(']') || d.starts_with('[') => {
            if !port.bytes().all(|c| c.is_ascii_digit()) || port.is_empty() {
                return false;
            }
            h
        }
        _ => d,
    };
    if host.starts_with('[') {
        return host.ends_with(']');
    }
    !host.is_empty()
        && host
            .split('.')
            .all(|p| !p.is_empty() && p.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'-'))
}

impl Reference {
    /// docker's `ParseNormalizedNamed`.
    pub fn parse(s: &str) -> Result<Reference, Error> {
        if s.is_empty() {
            return Err(invalid());
        }
        let (rest, digest) = match s.split_once('@') {
            Some((r, d)) => {
                if !valid_digest(d) {
                    return Err(invalid());
                }
                (r, Some(d.to_string()))
            }
            None => (s, None),
        };
        let last_slash = rest.rfind('/').map(|i| i + 1).unwrap_or(0);
        let (name, tag) = match rest[last_slash..].rfind(':') {
            Some(i) => {
                let t = &rest[last_slash + i + 1..];
                if !valid_tag(t) {
                    return Err(invalid());
                }
                (&rest[..last_slash + i], Some(t.to_string()))
            }
            None => (rest, None),
        };
        let (mut domain, mut path) = match name.find('/') {
            Some(i)
                if name[..i].contains(['.', ':'])
                    || &name[..i] == "localhost"
                    || name[..i].to_lowercase() != name[..i] =>
            {
                (name[..i].to_string(), name[i + 1..].to_string())
            }
            _ => (DEFAULT_DOMAIN.to_string(), name.to_string()),
        };
        if domain == "index.docker.io" {
            domain = DEFAULT_DOMAIN.into();
        }
        if domain == DEFAULT_DOMAIN && !path.contains('/') {
            path = format!("library/{path}");
        }
        if path.to_lowercase() != path && path.split('/').all(|c| valid_component(&c.to_lowercase())) {
            return Err(Error(format!(
                "invalid reference format: repository name ({path}) must be lowercase"
            )));
        }
        if !valid_domain(&domain) || !path.split('/').all(valid_component) {
            return Err(invalid());
        }
        if domain.len() + 1 + path.len() > 255 {
            return Err(Error(
                "invalid reference format: repository name must not be more than 255 characters".into(),
            ));
        }
        Ok(Reference {
            domain,
            path,
            tag,
            digest,
        })
    }

    /// `docker.io/library/busybox`
    pub fn name(&self) -> String {
        format!("{}/{}", self.domain, self.path)
    }

    /// `busybox`, `user/app`, `127.0.0.1:5000/busybox` (docker's `FamiliarName`).
    pub fn familiar_name(&self) -> String {
        if self.domain == DEFAULT_DOMAIN {
            match self.path.strip_prefix("library/") {
                Some(rest) if !rest.contains('/') => rest.to_string(),
                _ => self.path.clone(),
            }
        } else {
            self.name()
        }
    }

    pub fn is_name_only(&self) -> bool {
        self.tag.is_none() && self.digest.is_none()
    }

    /// docker's `TagNameOnly`: adds `latest` to a bare name.
    pub fn with_default_tag(mut self) -> Reference {
        if self.is_name_only() {
            self.tag = Some("latest".into());
        }
        self
    }

    fn suffix(&self) -> String {
        let mut s = String::new();
        if let Some(t) = &self.tag {
            s.push(':');
            s.push_str(t);
        }
        if let Some(d) = &self.digest {
            s.push('@');
            s.push_str(d);
        }
        s
    }

    /// `busybox:latest` (docker's `FamiliarString`).
    pub fn familiar_string(&self) -> String {
        format!("{}{}", self.familiar_name(), self.suffix())
    }

    /// The key of this reference's registry in docker's config.json `auths`.
    pub fn auth_key(&self) -> String {
        auth_key_for_domain(&self.domain)
    }
}

impl fmt::Display for Reference {
    /// `docker.io/library/busybox:latest`
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{}", self.name(), self.suffix())
    }
}

/// docker's `getAuthConfigKey`.
pub fn auth_key_for_domain(domain: &str) -> String {
    if domain == DEFAULT_DOMAIN || domain == "index.docker.io" {
        INDEX_SERVER.into()
    } else {
        domain.into()
    }
}

/// docker's `credentials.ConvertToHostname`: `https://host:5000/v2/` -> `host:5000`.
pub fn convert_to_hostname(url: &str) -> String {
    let s = url
        .strip_prefix("http://")
        .or_else(|| url.strip_prefix("https://"))
        .unwrap_or(url);
    s.split('/').next().unwrap_or(s).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalizes_like_docker() {
        let r = Reference::parse("busybox").unwrap();
        assert_eq!(r.to_string(), "docker.io/library/busybox");
        assert_eq!(r.familiar_name(), "busybox");
        assert!(r.is_name_only());
        assert_eq!(
            r.with_default_tag().to_string(),
            "docker.io/library/busybox:latest"
        );
        let r = Reference::parse("127.0.0.1:5055/busybox:1.36").unwrap();
        assert_eq!(r.domain, "127.0.0.1:5055");
        assert_eq!(r.familiar_name(), "127.0.0.1:5055/busybox");
        assert_eq!(r.tag.as_deref(), Some("1.36"));
        assert_eq!(r.auth_key(), "127.0.0.1:5055");
        let r = Reference::parse("user/app").unwrap();
        assert_eq!(r.to_string(), "docker.io/user/app");
        assert_eq!(r.familiar_string(), "user/app");
        assert_eq!(r.auth_key(), INDEX_SERVER);
        let r = Reference::parse("localhost/app:v1").unwrap();
        assert_eq!(r.domain, "localhost");
        let r = Reference::parse("index.docker.io/library/busybox").unwrap();
        assert_eq!(r.familiar_name(), "busybox");
        let d = "sha256:".to_string() + &"a".repeat(64);
        let r = Reference::parse(&format!("busybox@{d}")).unwrap();
        assert_eq!(r.digest.as_deref(), Some(d.as_str()));
        assert_eq!(r.familiar_string(), format!("busybox@{d}"));
    }

    #[test]
    fn refuses_bad_references() {
        assert_eq!(
            Reference::parse("Busybox").unwrap_err().0,
            "invalid reference format: repository name (library/Busybox) must be lowercase"
        );
        assert!(Reference::parse("").is_err());
        assert!(Reference::parse("a:b:c").is_err());
        assert!(Reference::parse("busybox@sha256:zz").is_err());
        assert!(Reference::parse("bad..name").is_err());
        assert!(Reference::parse("busybox:").is_err());
    }

    #[test]
    fn hostnames() {
        assert_eq!(
            convert_to_hostname("https://127.0.0.1:5055/v2/"),
            "127.0.0.1:5055"
        );
        assert_eq!(convert_to_hostname("reg.example"), "reg.example");
    }
}
