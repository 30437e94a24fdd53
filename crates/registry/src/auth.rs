//! Authentication: the `WWW-Authenticate` challenge of a registry (Bearer with realm, service and
//! scope, or Basic), the token endpoint's answer, and the credentials docker keeps in
//! `~/.docker/config.json` (`auths.<registry>.auth` = base64 of `user:password`).

use std::collections::BTreeMap;
use std::path::Path;

use serde::Deserialize;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum AuthError {
    #[error("unsupported authentication challenge {0:?}")]
    Challenge(String),
    #[error("read credentials {path}: {message}")]
    Config { path: String, message: String },
    #[error("the token endpoint answered without a token")]
    NoToken,
}

/// What the registry asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Challenge {
    Basic {
        realm: Option<String>,
    },
    Bearer {
        realm: String,
        service: Option<String>,
        scope: Option<String>,
    },
}

/// Parses `key="value"` pairs (quoted values may contain commas and escaped quotes).
fn params(s: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        while i < b.len() && (b[i] == b' ' || b[i] == b',') {
            i += 1;
        }
        let ks = i;
        while i < b.len() && b[i] != b'=' && b[i] != b',' {
            i += 1;
        }
        let key = s[ks..i].trim().to_ascii_lowercase();
        if i >= b.len() || b[i] != b'=' {
            continue;
        }
        i += 1;
        let mut value = String::new();
        if i < b.len() && b[i] == b'"' {
            i += 1;
            while i < b.len() && b[i] != b'"' {
                if b[i] == b'\\' && i + 1 < b.len() {
                    i += 1;
                }
                value.push(b[i] as char);
                i += 1;
            }
            i += 1;
        } else {
            let vs = i;
            while i < b.len() && b[i] != b',' {
                i += 1;
            }
            value = s[vs..i].trim().to_string();
        }
        if !key.is_empty() {
            out.insert(key, value);
        }
    }
    out
}

impl Challenge {
    /// Parses a `WWW-Authenticate` header value.
    pub fn parse(header: &str) -> Result<Challenge, AuthError> {
        let h = header.trim();
        let (scheme, rest) = h.split_once(' ').unwrap_or((h, ""));
        let p = params(rest);
        match scheme.to_ascii_lowercase().as_str() {
            "basic" => Ok(Challenge::Basic {
                realm: p.get("realm").cloned(),
            }),
            "bearer" => {
                let realm = p
                    .get("realm")
                    .filter(|r| !r.is_empty())
                    .cloned()
                    .ok_or_else(|| AuthError::Challenge(header.to_string()))?;
                Ok(Challenge::Bearer {
                    realm,
                    service: p.get("service").cloned(),
                    scope: p.get("scope").cloned(),
                })
            }
            _ => Err(AuthError::Challenge(header.to_string())),
        }
    }

    /// The token request URL for a Bearer challenge, asking for `scope` (e.g.
    /// `repository:library/alpine:pull`) when the challenge did not name one.
    pub fn token_url(&self, scope: &str) -> Option<String> {
        let Challenge::Bearer {
            realm,
            service,
            scope: given,
        } = self
        else {
            return None;
        };
        let mut q = Vec::new();
        if let Some(s) = service {
            q.push(format!("service={}", encode(s)));
        }
        q.push(format!("scope={}", encode(given.as_deref().unwrap_or(scope))));
        let sep = if realm.contains('?') { '&' } else { '?' };
        Some(format!("{realm}{sep}{}", q.join("&")))
    }
}

/// Percent-encoding for query values.
pub fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The token endpoint's JSON answer (`token` or `access_token`).
pub fn token_from_response(body: &[u8]) -> Result<String, AuthError> {
    #[derive(Deserialize)]
    struct Answer {
        token: Option<String>,
        access_token: Option<String>,
    }
    let a: Answer = serde_json::from_slice(body).map_err(|_| AuthError::NoToken)?;
    a.token
        .or(a.access_token)
        .filter(|t| !t.is_empty())
        .ok_or(AuthError::NoToken)
}

/// A user name and password.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credentials {
    pub username: String,
    pub password: String,
}

const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// Standard base64 with padding.
pub fn base64_encode(data: &[u8]) -> String {
    let mut out = String::new();
    for chunk in data.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |acc, (i, b)| acc | (*b as u32) << (16 - 8 * i));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(B64[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Standard base64 (padding optional); `None` on anything else.
pub fn base64_decode(s: &str) -> Option<Vec<u8>> {
    let mut bits = 0u32;
    let mut nbits = 0;
    let mut out = Vec::new();
    for c in s.trim_end_matches('=').bytes() {
        let v = B64.iter().position(|x| *x == c)? as u32;
        bits = (bits << 6) | v;
        nbits += 6;
        if nbits >= 8 {
            nbits -= 8;
            out.push((bits >> nbits) as u8);
            bits &= (1 << nbits) - 1;
        }
    }
    Some(out)
}

impl Credentials {
    /// The `Authorization: Basic` value.
    pub fn basic_header(&self) -> String {
        format!(
            "Basic {}",
            base64_encode(format!("{}:{}", self.username, self.password).as_bytes())
        )
    }
}

/// docker's key for a registry in config.json (`https://index.docker.io/v1/` for Docker Hub).
pub fn config_key(domain: &str) -> String {
    if domain == berth_image::reference::DEFAULT_DOMAIN {
        "https://index.docker.io/v1/".to_string()
    } else {
        domain.to_string()
    }
}

/// The credentials for registry `domain` in a docker config.json, if any (keys may carry a scheme).
pub fn credentials_from_config(path: &Path, domain: &str) -> Result<Option<Credentials>, AuthError> {
    let err = |message: String| AuthError::Config {
        path: path.display().to_string(),
        message,
    };
    let data = match std::fs::read(path) {
        Ok(d) => d,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(err(e.to_string())),
    };
    let v: serde_json::Value = serde_json::from_slice(&data).map_err(|e| err(e.to_string()))?;
    let Some(auths) = v.get("auths").and_then(|a| a.as_object()) else {
        return Ok(None);
    };
    let want = config_key(domain);
    let strip = |k: &str| {
        k.trim_start_matches("https://")
            .trim_start_matches("http://")
            .trim_end_matches('/')
            .to_string()
    };
    let entry = auths
        .iter()
        .find(|(k, _)| *k == &want || strip(k) == strip(&want));
    let Some((_, e)) = entry else { return Ok(None) };
    let Some(auth) = e.get("auth").and_then(|a| a.as_str()).filter(|a| !a.is_empty()) else {
        return Ok(None);
    };
    let decoded = base64_decode(auth).ok_or_else(|| err(format!("auths.{want}.auth is not base64")))?;
    let text = String::from_utf8(decoded).map_err(|_| err(format!("auths.{want}.auth is not text")))?;
    let (u, p) = text
        .split_once(':')
        .ok_or_else(|| err(format!("auths.{want}.auth is not user:password")))?;
    Ok(Some(Credentials {
        username: u.to_string(),
        password: p.to_string(),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_and_basic_challenges() {
        let c = Challenge::parse(r#"Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/alpine:pull""#).unwrap();
        assert_eq!(
            c,
            Challenge::Bearer {
                realm: "https://auth.docker.io/token".into(),
                service: Some("registry.docker.io".into()),
                scope: Some("repository:library/alpine:pull".into())
            }
        );
        assert_eq!(
            c.token_url("ignored").unwrap(),
            "https://auth.docker.io/token?service=registry.docker.io&scope=repository%3Alibrary%2Falpine%3Apull"
        );
        let c = Challenge::parse(r#"Bearer realm="http://127.0.0.1:5001/auth?x=1",scope="a,b""#).unwrap();
        assert_eq!(
            c.token_url("s").unwrap(),
            "http://127.0.0.1:5001/auth?x=1&scope=a%2Cb"
        );
        assert_eq!(
            Challenge::parse(r#"Basic realm="Registry Realm""#).unwrap(),
            Challenge::Basic {
                realm: Some("Registry Realm".into())
            }
        );
        assert!(Challenge::parse("Negotiate abc").is_err());
        assert!(Challenge::parse("Bearer service=x").is_err());
    }

    #[test]
    fn tokens() {
        assert_eq!(token_from_response(br#"{"token":"abc"}"#).unwrap(), "abc");
        assert_eq!(
            token_from_response(br#"{"access_token":"xyz","expires_in":300}"#).unwrap(),
            "xyz"
        );
        assert!(token_from_response(br#"{}"#).is_err());
        assert!(token_from_response(b"<html>").is_err());
    }

    #[test]
    fn base64_round_trip() {
        for s in ["", "a", "ab", "abc", "user:pa:ss", "émoji ✓"] {
            assert_eq!(base64_decode(&base64_encode(s.as_bytes())).unwrap(), s.as_bytes());
        }
        assert_eq!(base64_encode(b"user:pass"), "dXNlcjpwYXNz");
        assert!(base64_decode("not base64!").is_none());
        let c = Credentials {
            username: "user".into(),
            password: "pass".into(),
        };
        assert_eq!(c.basic_header(), "Basic dXNlcjpwYXNz");
    }

    #[test]
    fn docker_config_credentials() {
        let t = tempfile::tempdir().unwrap();
        let p = t.path().join("config.json");
        std::fs::write(
            &p,
            r#"{"auths":{"https://index.docker.io/v1/":{"auth":"aHViOnNlY3JldA=="},"127.0.0.1:5000":{"auth":"dXNlcjpwYXNz"},"http://reg.example:5000/":{"auth":"YTpi"}}}"#,
        )
        .unwrap();
        assert_eq!(
            credentials_from_config(&p, "docker.io")
                .unwrap()
                .unwrap()
                .username,
            "hub"
        );
        assert_eq!(
            credentials_from_config(&p, "127.0.0.1:5000")
                .unwrap()
                .unwrap()
                .password,
            "pass"
        );
        assert_eq!(
            credentials_from_config(&p, "reg.example:5000")
                .unwrap()
                .unwrap()
                .username,
            "a"
        );
        assert_eq!(credentials_from_config(&p, "other.example").unwrap(), None);
        assert_eq!(
            credentials_from_config(&t.path().join("missing.json"), "docker.io").unwrap(),
            None
        );
        std::fs::write(&p, r#"{"auths":{"x.example":{"auth":"!!!"}}}"#).unwrap();
        assert!(credentials_from_config(&p, "x.example").is_err());
    }
}
