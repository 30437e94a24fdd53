//! What `run`, `start -a`, `attach` and `exec` share around a hijacked stream: the wait
//! request issued before start, terminal resizes (at start and on SIGWINCH), the signal
//! proxy, and the streams wired to this process's stdio.

use super::stream::{self, detach_keys, End, Escape, Wiring, DEFAULT_DETACH_KEYS};
use crate::commands::{Ctx, Fail};
use crate::http::{encode_query, path_escape, Body, Client, Hijacked};
use crate::tty::{self, Raw};
use nix::sys::signal::Signal;
use std::io::Write;
use std::sync::mpsc::{channel, Receiver};
use std::sync::Arc;

/// The status a wait answered: the exit code, or 125 with docker's logged error.
pub struct Waiter {
    rx: Receiver<i32>,
}

impl Waiter {
    /// `POST /containers/{id}/wait?condition=...`, sent before the container starts:
    /// returns once the daemon has answered the request's head (it flushes it when the
    /// wait is registered), then reads the status on a thread.
    pub fn start(client: &Client, id: &str, condition: &str) -> Waiter {
        let (tx, rx) = channel();
        let (head_tx, head_rx) = channel();
        let client = client.clone();
        let mut path = format!("/containers/{}/wait", path_escape(id));
        if !condition.is_empty() {
            path.push_str(&format!("?condition={condition}"));
        }
        std::thread::spawn(move || {
            let resp = client.request("POST", &path, &[], Body::Empty);
            let _ = head_tx.send(());
            let status = match resp.and_then(|r| r.json()) {
                Ok(v) => match v.pointer("/Error/Message").and_then(|m| m.as_str()) {
                    Some(m) if !m.is_empty() => {
                        eprintln!("Error waiting for container: {m}");
                        125
                    }
                    _ => v.get("StatusCode").and_then(|c| c.as_i64()).unwrap_or(0) as i32,
                },
                Err(e) => {
                    eprintln!("error waiting for container: {e}");
                    125
                }
            };
            let _ = tx.send(status);
        });
        let _ = head_rx.recv_timeout(std::time::Duration::from_secs(10));
        Waiter { rx }
    }

    pub fn status(self) -> i32 {
        self.rx.recv().unwrap_or(125)
    }
}

/// Where resizes go: a container or an exec instance.
#[derive(Clone)]
pub struct Resize {
    pub client: Client,
    /// `/containers/{id}` or `/exec/{id}`
    pub base: String,
}

impl Resize {
    pub fn send(&self) -> bool {
        let (h, w) = tty::size();
        self.send_size(h, w)
    }

    /// `POST .../resize?h=&w=` (nothing for a zero size).
    pub fn send_size(&self, h: u16, w: u16) -> bool {
        if h == 0 && w == 0 {
            return true;
        }
        let q = encode_query(&[("h", h.to_string()), ("w", w.to_string())]);
        self.client
            .request("POST", &format!("{}/resize?{q}", self.base), &[], Body::Empty)
            .is_ok()
    }

    /// docker's `initTtySize`: once now, retried a few times while the process starts.
    pub fn initial(&self) {
        if self.send() {
            return;
        }
        let me = self.clone();
        std::thread::spawn(move || {
            for retry in 0..10u64 {
                std::thread::sleep(std::time::Duration::from_millis((retry + 1) * 10));
                if me.send() {
                    return;
                }
            }
            eprintln!("failed to resize tty, using default size");
        });
    }
}

/// Catches signals for a session: SIGWINCH resizes (when `resize` is given), and with
/// the proxy every catchable signal is sent to the container (`POST .../kill`).
pub fn catch_signals(client: &Client, id: &str, proxy: bool, resize: Option<Resize>) {
    let mut set: Vec<Signal> = Vec::new();
    if proxy {
        set.extend(tty::PROXIED.iter().map(|(s, _)| *s));
    } else if resize.is_some() {
        set.push(Signal::SIGWINCH);
    }
    if set.is_empty() {
        return;
    }
    let client = client.clone();
    let kill_path = format!("/containers/{}/kill", path_escape(id));
    let _ = tty::catch(&set, move |sig| {
        if sig == Signal::SIGWINCH {
            if let Some(r) = &resize {
                r.send();
            }
        }
        if proxy {
            if let Some(name) = tty::name(sig) {
                let q = encode_query(&[("signal", name.to_string())]);
                let _ = client.request("POST", &format!("{kill_path}?{q}"), &[], Body::Empty);
            }
        }
    });
}

/// The detach keys: the flag, else the config file's `detachKeys`, else docker's.
pub fn keys(ctx: &Ctx, flag: Option<&str>) -> Option<String> {
    flag.filter(|k| !k.is_empty()).map(str::to_string).or_else(|| {
        crate::config::ConfigFile::load(&ctx.config_dir)
            .ok()
            .and_then(|c| c.detach_keys())
    })
}

/// The streams of this process wired to a hijacked connection: stdin (raw when a
/// terminal and `tty`), stdout, and stderr (stdout's with a tty).
pub struct Local {
    pub stdin: bool,
    pub stdout: bool,
    pub stderr: bool,
    pub tty: bool,
    pub keys: Option<String>,
}

impl Local {
    /// Streams until the output ends or the user detaches.
    pub fn run(&self, ctx: &Ctx, h: Hijacked) -> Result<End, Fail> {
        let raw = if self.stdin && self.tty {
            Raw::stdin()
                .map_err(|e| {
                    crate::commands::fail(format!(
                        "unable to setup input stream: unable to set IO streams as raw terminal: {e}"
                    ))
                })?
                .map(Arc::new)
        } else {
            None
        };
        let escape = if self.stdin && self.tty {
            let keys = self
                .keys
                .as_deref()
                .and_then(|k| detach_keys(k).ok())
                .unwrap_or_else(|| DEFAULT_DETACH_KEYS.to_vec());
            Some(Escape::new(keys))
        } else {
            None
        };
        let mut out = ctx.stdout.borrow_mut();
        let mut err = std::io::stderr();
        let stdin: Option<Box<dyn std::io::Read + Send>> = if self.stdin {
            Some(Box::new(std::io::stdin()))
        } else {
            None
        };
        let wiring = Wiring {
            stdin,
            stdout: if self.stdout { Some(&mut **out) } else { None },
            stderr: if self.stderr {
                Some(&mut err as &mut dyn Write)
            } else {
                None
            },
            tty: self.tty,
            escape,
            raw: raw.clone(),
        };
        let r = stream::run(h, wiring);
        if let Some(r) = raw {
            r.restore();
        }
        r.map_err(|e| crate::commands::fail(e.to_string()))
    }
}
