//! docker's client configuration (`$DOCKER_CONFIG/config.json`, default `~/.docker`):
//! registry credentials in `auths` (`{"auth": base64(user:password)}`, optionally an
//! `identitytoken`), or in a credential helper (`credsStore`, `credHelpers`), and the
//! `X-Registry-Auth` header built from them.

use serde_json::{json, Map, Value};
use std::fs;
use std::io::{self, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

#[derive(Debug)]
pub enum Error {
    Read(PathBuf, io::Error),
    Parse(PathBuf, serde_json::Error),
    Write(PathBuf, io::Error),
    Helper(String),
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Error::Read(p, e) => write!(f, "loading config file {}: {e}", p.display()),
            Error::Parse(p, e) => write!(f, "loading config file: {}: {e}", p.display()),
            Error::Write(p, e) => write!(f, "Error saving credentials: {}: {e}", p.display()),
            Error::Helper(m) => f.write_str(m),
        }
    }
}

/// One registry's credentials (docker's `AuthConfig`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuthConfig {
    pub username: String,
    pub password: String,
    pub server_address: String,
    pub identity_token: String,
}

impl AuthConfig {
    /// docker's `registry.EncodeAuthConfig`: URL-safe base64 of the JSON, empty fields
    /// left out (`e30=` for no credentials).
    pub fn encode(&self) -> String {
        base64_encode(self.to_json().to_string().as_bytes(), URL_SAFE)
    }

    /// The JSON body of `POST /auth`.
    pub fn to_json(&self) -> Value {
        let mut m = Map::new();
        for (k, v) in [
            ("username", &self.username),
            ("password", &self.password),
            ("serveraddress", &self.server_address),
            ("identitytoken", &self.identity_token),
        ] {
            if !v.is_empty() {
                m.insert(k.into(), Value::String(v.clone()));
            }
        }
        Value::Object(m)
    }
}

pub struct ConfigFile {
    pub path: PathBuf,
    data: Map<String, Value>,
}

/// The configuration directory: `--config`, else `$DOCKER_CONFIG`, else `~/.docker`.
pub fn config_dir(flag: Option<&str>) -> PathBuf {
    if let Some(d) = flag {
        return PathBuf::from(d);
    }
    if let Some(d) = std::env::var_os("DOCKER_CONFIG").filter(|d| !d.is_empty()) {
        return PathBuf::from(d);
    }
    let home = std::env::var_os("HOME").unwrap_or_else(|| "/root".into());
    Path::new(&home).join(".docker")
}

impl ConfigFile {
    pub fn load(dir: &Path) -> Result<ConfigFile, Error> {
        let path = dir.join("config.json");
        let data = match fs::read(&path) {
            Ok(b) if b.iter().all(|c| c.is_ascii_whitespace()) => Map::new(),
            Ok(b) => match serde_json::from_slice::<Value>(&b) {
                Ok(Value::Object(m)) => m,
                Ok(_) => Map::new(),
                Err(e) => return Err(Error::Parse(path, e)),
            },
            Err(e) if e.kind() == io::ErrorKind::NotFound => Map::new(),
            Err(e) => return Err(Error::Read(path, e)),
        };
        Ok(ConfigFile { path, data })
    }

    /// `detachKeys`: the key sequence that detaches from a container.
    pub fn detach_keys(&self) -> Option<String> {
        self.data
            .get("detachKeys")
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
    }

    fn auths(&self) -> Option<&Map<String, Value>> {
        self.data.get("auths").and_then(Value::as_object)
    }

    /// The credential helper for a registry, if one is configured.
    fn helper(&self, server: &str) -> Option<String> {
        if let Some(h) = self
            .data
            .get("credHelpers")
            .and_then(|h| h.get(server))
            .and_then(Value::as_str)
        {
            return Some(h.to_string());
        }
        self.data
            .get("credsStore")
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
    }

    /// docker's `GetAuthConfig(server)`: an exact key, else a key whose hostname matches.
    pub fn get_auth(&self, server: &str) -> Result<AuthConfig, Error> {
        if let Some(helper) = self.helper(server) {
            return helper_get(&helper, server);
        }
        let Some(auths) = self.auths() else {
            return Ok(AuthConfig::default());
        };
        let entry = auths.get(server).map(|e| (server, e)).or_else(|| {
            auths
                .iter()
                .find(|(k, _)| crate::reference::convert_to_hostname(k) == server)
                .map(|(k, e)| (k.as_str(), e))
        });
        let Some((key, e)) = entry else {
            return Ok(AuthConfig::default());
        };
        let field = |k: &str| e.get(k).and_then(Value::as_str).unwrap_or("").to_string();
        let mut a = AuthConfig {
            username: field("username"),
            password: field("password"),
            server_address: key.to_string(),
            identity_token: field("identitytoken"),
        };
        let auth = field("auth");
        if !auth.is_empty() {
            let decoded = base64_decode(&auth)
                .and_then(|b| String::from_utf8(b).ok())
                .ok_or_else(|| {
                    Error::Helper(format!(
                        "invalid auth configuration file: {}",
                        self.path.display()
                    ))
                })?;
            let (u, p) = decoded.split_once(':').ok_or_else(|| {
                Error::Helper(format!(
                    "invalid auth configuration file: {}",
                    self.path.display()
                ))
            })?;
            a.username = u.to_string();
            a.password = p.trim_matches('\0').to_string();
        }
        Ok(a)
    }

    /// Stores credentials under `a.server_address` (docker's file store `Store` + `Save`).
    pub fn store_auth(&mut self, a: &AuthConfig) -> Result<(), Error> {
        if let Some(helper) = self.helper(&a.server_address) {
            return helper_store(&helper, a);
        }
        let mut entry = Map::new();
        entry.insert(
            "auth".into(),
            Value::String(base64_encode(
                format!("{}:{}", a.username, a.password).as_bytes(),
                STANDARD,
            )),
        );
        if !a.identity_token.is_empty() {
            entry.insert("identitytoken".into(), Value::String(a.identity_token.clone()));
        }
        let auths = self.data.entry("auths").or_insert_with(|| json!({}));
        if !auths.is_object() {
            *auths = json!({});
        }
        auths
            .as_object_mut()
            .expect("object")
            .insert(a.server_address.clone(), Value::Object(entry));
        self.save()
    }

    /// Removes a registry's credentials; true if there were some.
    pub fn erase_auth(&mut self, server: &str) -> Result<bool, Error> {
        if let Some(helper) = self.helper(server) {
            return helper_erase(&helper, server).map(|_| true);
        }
        let removed = self
            .data
            .get_mut("auths")
            .and_then(Value::as_object_mut)
            .and_then(|m| m.remove(server))
            .is_some();
        if removed {
            self.save()?;
        }
        Ok(removed)
    }

    /// Writes the file atomically (a temporary file renamed over it), mode 0600, indented
    /// with tabs as docker writes it.
    pub fn save(&self) -> Result<(), Error> {
        let werr = |e| Error::Write(self.path.clone(), e);
        let dir = self.path.parent().unwrap_or(Path::new("."));
        fs::create_dir_all(dir).map_err(werr)?;
        let mut buf = Vec::new();
        let fmt = serde_json::ser::PrettyFormatter::with_indent(b"\t");
        let mut ser = serde_json::Serializer::with_formatter(&mut buf, fmt);
        serde::Serialize::serialize(&self.data, &mut ser).map_err(|e| werr(io::Error::other(e)))?;
        let tmp = dir.join(format!(".config.json.{}.tmp", std::process::id()));
        let result = (|| {
            let mut f = fs::OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .mode(0o600)
                .open(&tmp)?;
            f.write_all(&buf)?;
            f.sync_all()?;
            fs::set_permissions(&tmp, fs::Permissions::from_mode(0o600))?;
            fs::rename(&tmp, &self.path)
        })();
        if result.is_err() {
            let _ = fs::remove_file(&tmp);
        }
        result.map_err(werr)
    }
}

fn run_helper(helper: &str, verb: &str, input: &str) -> Result<String, Error> {
    let prog = format!("docker-credential-{helper}");
    let mut child = Command::new(&prog)
        .arg(verb)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| Error::Helper(format!("error getting credentials - err: exec: {prog:?}: {e}")))?;
    if let Some(mut stdin) = child.stdin.take() {
        let _ = stdin.write_all(input.as_bytes());
    }
    let out = child
        .wait_with_output()
        .map_err(|e| Error::Helper(format!("{prog}: {e}")))?;
    let stdout = String::from_utf8_lossy(&out.stdout).trim().to_string();
    if !out.status.success() {
        return Err(Error::Helper(stdout));
    }
    Ok(stdout)
}

fn helper_get(helper: &str, server: &str) -> Result<AuthConfig, Error> {
    match run_helper(helper, "get", server) {
        Ok(out) => {
            let v: Value = serde_json::from_str(&out)
                .map_err(|e| Error::Helper(format!("error getting credentials: {e}")))?;
            let user = v.get("Username").and_then(Value::as_str).unwrap_or("");
            let secret = v.get("Secret").and_then(Value::as_str).unwrap_or("");
            let mut a = AuthConfig {
                server_address: server.into(),
                ..AuthConfig::default()
            };
            if user == "<token>" {
                a.identity_token = secret.into();
            } else {
                a.username = user.into();
                a.password = secret.into();
            }
            Ok(a)
        }
        Err(Error::Helper(m)) if m.contains("credentials not found") => Ok(AuthConfig::default()),
        Err(e) => Err(e),
    }
}

fn helper_store(helper: &str, a: &AuthConfig) -> Result<(), Error> {
    let (user, secret) = if a.identity_token.is_empty() {
        (a.username.as_str(), a.password.as_str())
    } else {
        ("<token>", a.identity_token.as_str())
    };
    let input = json!({"ServerURL": a.server_address, "Username": user, "Secret": secret});
    run_helper(helper, "store", &input.to_string()).map(|_| ())
}

fn helper_erase(helper: &str, server: &str) -> Result<(), Error> {
    run_helper(helper, "erase", server).map(|_| ())
}

pub const STANDARD: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
pub const URL_SAFE: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/// Padded base64 with the given alphabet.
pub fn base64_encode(data: &[u8], alphabet: &[u8; 64]) -> String {
    let mut out = String::new();
    for chunk in data.chunks(3) {
        let b = [chunk[0], *chunk.get(1).unwrap_or(&0), *chunk.get(2).unwrap_or(&0)];
        let n = (b[0] as u32) << 16 | (b[1] as u32) << 8 | b[2] as u32;
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(alphabet[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Decodes standard or URL-safe base64, padded or not.
pub fn base64_decode(s: &str) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    let mut acc = 0u32;
    let mut bits = 0;
    for c in s.trim_end_matches('=').bytes() {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' | b'-' => 62,
            b'/' | b'_' => 63,
            _ => return None,
        } as u32;
        acc = acc << 6 | v;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    pub fn temp_dir(name: &str) -> PathBuf {
        static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let d = std::env::temp_dir().join(format!("berth-cli-{name}-{}-{n}", std::process::id()));
        let _ = fs::remove_dir_all(&d);
        fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn base64_both_alphabets() {
        assert_eq!(base64_encode(b"{}", URL_SAFE), "e30=");
        assert_eq!(base64_encode(b"user:pass", STANDARD), "dXNlcjpwYXNz");
        assert_eq!(base64_encode(b"\xfb\xff", STANDARD), "+/8=");
        assert_eq!(base64_encode(b"\xfb\xff", URL_SAFE), "-_8=");
        assert_eq!(base64_decode("dXNlcjpwYXNz").unwrap(), b"user:pass");
        assert_eq!(base64_decode("-_8=").unwrap(), b"\xfb\xff");
        assert_eq!(base64_decode("+/8").unwrap(), b"\xfb\xff");
        assert!(base64_decode("a*b").is_none());
        assert_eq!(AuthConfig::default().encode(), "e30=");
    }

    #[test]
    fn round_trip_keeps_other_keys() {
        let dir = temp_dir("config");
        fs::write(
            dir.join("config.json"),
            r#"{"psFormat": "table {{.ID}}", "auths": {"https://index.docker.io/v1/": {"auth": "aHViOnNlY3JldA=="}}}"#,
        )
        .unwrap();
        let mut c = ConfigFile::load(&dir).unwrap();
        let hub = c.get_auth("https://index.docker.io/v1/").unwrap();
        assert_eq!((hub.username.as_str(), hub.password.as_str()), ("hub", "secret"));
        let a = AuthConfig {
            username: "u".into(),
            password: "p".into(),
            server_address: "127.0.0.1:5055".into(),
            ..AuthConfig::default()
        };
        c.store_auth(&a).unwrap();
        let mode = fs::metadata(dir.join("config.json"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        let text = fs::read_to_string(dir.join("config.json")).unwrap();
        assert!(text.contains("\t\"psFormat\": \"table {{.ID}}\""), "{text}");
        assert!(
            text.contains("\"127.0.0.1:5055\": {\n\t\t\t\"auth\": \"dTpw\"\n\t\t}"),
            "{text}"
        );
        let c2 = ConfigFile::load(&dir).unwrap();
        assert_eq!(c2.get_auth("127.0.0.1:5055").unwrap(), a);
        assert_eq!(
            a.encode(),
            base64_encode(
                br#"{"username":"u","password":"p","serveraddress":"127.0.0.1:5055"}"#,
                URL_SAFE
            )
        );
        let mut c3 = ConfigFile::load(&dir).unwrap();
        assert!(c3.erase_auth("127.0.0.1:5055").unwrap());
        assert!(!c3.erase_auth("127.0.0.1:5055").unwrap());
        let c4 = ConfigFile::load(&dir).unwrap();
        assert_eq!(c4.get_auth("127.0.0.1:5055").unwrap(), AuthConfig::default());
        assert!(c4.get_auth("https://index.docker.io/v1/").unwrap().username == "hub");
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn legacy_keys_match_by_hostname() {
        let dir = temp_dir("legacy");
        fs::write(
            dir.join("config.json"),
            r#"{"auths": {"https://reg.local:5000/v2/": {"auth": "YTpi", "identitytoken": "tok"}}}"#,
        )
        .unwrap();
        let c = ConfigFile::load(&dir).unwrap();
        let a = c.get_auth("reg.local:5000").unwrap();
        assert_eq!(a.username, "a");
        assert_eq!(a.identity_token, "tok");
        fs::write(dir.join("config.json"), "{bad").unwrap();
        assert!(ConfigFile::load(&dir).is_err());
        fs::remove_dir_all(&dir).unwrap();
    }
}
