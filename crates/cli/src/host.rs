//! Finding the daemon: `-H`, then `$BERTH_HOST`, then the default socket. When the default
//! socket does not answer and we are root, berthd is started (found next to this program,
//! else on PATH), detached in its own process group with its output appended to
//! `/run/berth/berthd.log`, and `GET /_ping` is polled for up to 15 seconds.

use crate::http::{Body, Client, Endpoint, Error};
use std::cell::Cell;
use std::fs;
use std::io;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

pub const DEFAULT_HOST: &str = "unix:///run/berth/berth.sock";
const RUN_DIR: &str = "/run/berth";
const START_TIMEOUT: Duration = Duration::from_secs(15);

/// The API endpoint, and whether berth may start the daemon for it.
pub struct Api {
    pub client: Client,
    autostart: bool,
    checked: Cell<bool>,
    /// negotiate the API version with the daemon before the first request
    negotiate: Cell<bool>,
}

/// `-H` (the last one given), then `$BERTH_HOST`, then the default.
pub fn choose(flag: Option<&str>, env: Option<&str>) -> Result<(Endpoint, bool), String> {
    let (host, default) = match (flag, env.filter(|e| !e.is_empty())) {
        (Some(h), _) => (h, false),
        (None, Some(e)) => (e, false),
        (None, None) => (DEFAULT_HOST, true),
    };
    Ok((Endpoint::parse(host)?, default))
}

impl Api {
    pub fn new(endpoint: Endpoint, default_host: bool) -> Api {
        let autostart = default_host && nix::unistd::geteuid().is_root();
        Api {
            client: Client::new(endpoint),
            autostart,
            checked: Cell::new(false),
            negotiate: Cell::new(true),
        }
    }

    /// An API that always speaks this client's version (tests with canned answers).
    #[cfg(test)]
    pub fn fixed(endpoint: Endpoint) -> Api {
        let api = Api::new(endpoint, false);
        api.negotiate.set(false);
        api
    }

    /// Starts the daemon if needed, then negotiates the API version once.
    fn ready(&self) -> Result<(), Error> {
        self.ensure()?;
        if self.negotiate.replace(false) {
            self.client.negotiate()?;
        }
        Ok(())
    }

    /// The client for requests from other threads, once the daemon is up and the API
    /// version negotiated.
    pub fn ready_client(&self) -> Result<Client, Error> {
        self.ready()?;
        Ok(self.client.clone())
    }

    /// A hijacked request (attach, exec start).
    pub fn hijack(
        &self,
        method: &str,
        path: &str,
        body: Option<Vec<u8>>,
    ) -> Result<crate::http::Hijacked, Error> {
        self.ready()?;
        self.client.hijack(method, path, body)
    }

    /// Starts the daemon first if it is ours to start and does not answer.
    fn ensure(&self) -> Result<(), Error> {
        if !self.autostart || self.checked.get() {
            return Ok(());
        }
        self.checked.set(true);
        let Endpoint::Unix(path) = &self.client.endpoint else {
            return Ok(());
        };
        match std::os::unix::net::UnixStream::connect(path) {
            Ok(_) => Ok(()),
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::NotFound | io::ErrorKind::ConnectionRefused
                ) =>
            {
                let connect_err = || Error::Connect(self.client.endpoint.clone(), e);
                let Some(berthd) = find_berthd() else {
                    return Err(connect_err());
                };
                if start_daemon(&berthd, &self.client.endpoint).is_err() {
                    return Err(connect_err());
                }
                let deadline = Instant::now() + START_TIMEOUT;
                loop {
                    if self.ping() {
                        return Ok(());
                    }
                    if Instant::now() > deadline {
                        return Err(Error::Connect(
                            self.client.endpoint.clone(),
                            io::Error::from(io::ErrorKind::ConnectionRefused),
                        ));
                    }
                    std::thread::sleep(Duration::from_millis(100));
                }
            }
            Err(_) => Ok(()), // permission and other errors are reported by the request
        }
    }

    fn ping(&self) -> bool {
        matches!(self.client.send("GET", "/_ping", &[], Body::Empty), Ok(r) if r.status == 200)
    }

    pub fn send(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, String)],
        body: Body<'_>,
    ) -> Result<crate::http::Response, Error> {
        self.ready()?;
        self.client.send(method, path, headers, body)
    }

    pub fn request(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, String)],
        body: Body<'_>,
    ) -> Result<crate::http::Response, Error> {
        self.ready()?;
        self.client.request(method, path, headers, body)
    }

    pub fn get_json(&self, path: &str) -> Result<serde_json::Value, Error> {
        self.ready()?;
        self.client.get_json(path)
    }
}

/// `berthd` next to this program, else on PATH.
fn find_berthd() -> Option<PathBuf> {
    if let Some(dir) = std::env::current_exe()
        .ok()
        .and_then(|p| p.parent().map(Path::to_path_buf))
    {
        let p = dir.join("berthd");
        if p.is_file() {
            return Some(p);
        }
    }
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|d| d.join("berthd"))
            .find(|p| p.is_file())
    })
}

/// Starts berthd detached: its own process group (no signals from our terminal), stdin
/// from /dev/null, stdout and stderr appended to the log. It is not waited for.
fn start_daemon(berthd: &Path, endpoint: &Endpoint) -> io::Result<()> {
    fs::create_dir_all(RUN_DIR)?;
    let log = fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(Path::new(RUN_DIR).join("berthd.log"))?;
    let err = log.try_clone()?;
    Command::new(berthd)
        .arg("-H")
        .arg(endpoint.to_string())
        .stdin(Stdio::null())
        .stdout(log)
        .stderr(err)
        .process_group(0)
        .spawn()
        .map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_precedence() {
        assert_eq!(
            choose(None, None).unwrap(),
            (Endpoint::Unix("/run/berth/berth.sock".into()), true)
        );
        assert_eq!(
            choose(None, Some("unix:///tmp/x.sock")).unwrap(),
            (Endpoint::Unix("/tmp/x.sock".into()), false)
        );
        assert_eq!(
            choose(Some("tcp://127.0.0.1:1"), Some("unix:///tmp/x.sock")).unwrap(),
            (Endpoint::Tcp("127.0.0.1:1".into()), false)
        );
        assert!(choose(None, Some("")).unwrap().1);
        assert!(choose(Some("bogus"), None).is_err());
    }
}
