//! Start, stop, kill, restart, wait and remove, the monitor that learns of a container's end from
//! its shim, restart policies, and finding running containers again when berthd starts.

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::shim::{self, Exit};
use super::start::unmount;
use super::{ContainerService, Entry, Gen};
use crate::images::Error;

/// How long a container gets after SIGKILL before berthd gives up waiting.
const KILL_GRACE: Duration = Duration::from_secs(30);

/// `KILL`, `SIGKILL`, `9`, `sigterm` -> the number; docker's message otherwise.
pub fn parse_signal(s: &str) -> Result<i32, Error> {
    let t = s.trim();
    if let Ok(n) = t.parse::<i32>() {
        if (1..=64).contains(&n) {
            return Ok(n);
        }
        return Err(Error::Invalid(format!("Invalid signal: {s}")));
    }
    let up = t.to_ascii_uppercase();
    let name = if up.starts_with("SIG") {
        up
    } else {
        format!("SIG{up}")
    };
    if let Some(rt) = name.strip_prefix("SIGRTMIN") {
        let base = libc::SIGRTMIN();
        let off = if rt.is_empty() {
            Some(0)
        } else {
            rt.strip_prefix('+').and_then(|n| n.parse::<i32>().ok())
        };
        if let Some(o) = off.filter(|o| base + o <= libc::SIGRTMAX()) {
            return Ok(base + o);
        }
    }
    name.parse::<nix::sys::signal::Signal>()
        .map(|s| s as i32)
        .map_err(|_| Error::Invalid(format!("Invalid signal: {s}")))
}

impl ContainerService {
    /// Watches a running container's shim until the container ends.
    pub(crate) fn monitor(self: &Arc<Self>, e: Arc<Entry>) {
        let svc = self.clone();
        tokio::spawn(async move {
            let conn = svc.conn(&e.id);
            let exit = match conn.wait().await {
                Ok(Some(x)) => x,
                _ => {
                    // The shim writes its exit file before it closes connections, so a WAIT it
                    // never read (a container that ended at once) finds the file there; only a
                    // shim that died leaves none (looked for a few times, briefly).
                    let file = svc.run_dir(&e.id).join("exit.json");
                    let mut found = shim::read_exit(&file);
                    for _ in 0..10 {
                        if found.is_some() {
                            break;
                        }
                        tokio::time::sleep(Duration::from_millis(10)).await;
                        found = shim::read_exit(&file);
                    }
                    match found {
                        Some(x) => x,
                        None => svc.shim_died(&e).await,
                    }
                }
            };
            svc.on_exit(&e, exit).await;
        });
    }

    /// The shim is gone without a word (killed): the container has lost its monitor, so it is
    /// killed and cleaned up here, and recorded as such.
    async fn shim_died(&self, e: &Entry) -> Exit {
        eprintln!(
            "berthd: the shim of container {} died; killing the container",
            e.id
        );
        let _ = self
            .runtime_cmd()
            .args(["kill", "--all", &e.id, "KILL"])
            .status()
            .await;
        // The orphan is gone once its new parent reaps it; wait for that (a few seconds at most).
        let pid = e.record().state.pid;
        for _ in 0..50 {
            let alive = std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| {
                s.rsplit_once(") ")
                    .is_some_and(|(_, rest)| !rest.starts_with('Z'))
            });
            if pid <= 0 || !alive {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        self.runtime_delete(&e.id).await;
        unmount(&self.run_dir(&e.id).join("rootfs"));
        Exit {
            exit_code: 137,
            signal: Some(libc::SIGKILL),
            oom_killed: false,
            finished_at: crate::time::now_rfc3339(),
            error: Some("the container's monitor (berth-shim) died; the container was killed".into()),
        }
    }

    /// Records an end, tells waiters, and applies the restart policy or auto-removal.
    pub(crate) async fn on_exit(self: &Arc<Self>, e: &Arc<Entry>, exit: Exit) {
        let ran = e
            .started
            .lock()
            .expect("started lock")
            .take()
            .map(|t| t.elapsed())
            .unwrap_or_default();
        let at = if exit.finished_at.is_empty() {
            crate::time::now_rfc3339()
        } else {
            exit.finished_at.clone()
        };
        self.release_network(e).await;
        let Ok(rec) = e.update(&self.data_dir(&e.id), |r| {
            r.state
                .set_exited(exit.exit_code, exit.oom_killed, at, exit.error.clone());
            r.shim_pid = 0;
            r.clone()
        }) else {
            return;
        };
        self.execs.container_ended(&e.id);
        self.release_volumes(&rec);
        if exit.oom_killed {
            self.emit("oom", &rec, &[]);
        }
        self.emit("die", &rec, &[("exitCode", exit.exit_code.to_string())]);
        let delay = e.restarts.lock().expect("restarts lock").after_exit(
            &rec.restart_policy(),
            exit.exit_code,
            ran,
            rec.manually_stopped,
        );
        e.gen.send_modify(|g: &mut Gen| {
            g.exits += 1;
            g.last_exit = exit.exit_code;
            g.last_error = exit.error.clone();
        });
        if let Some(delay) = delay {
            let count = e.restarts.lock().expect("restarts lock").count;
            let _ = e.update(&self.data_dir(&e.id), |r| {
                r.state.status = "restarting".into();
                r.state.restarting = true;
                r.restart_count = count;
            });
            let svc = self.clone();
            let e = e.clone();
            tokio::spawn(async move {
                tokio::time::sleep(delay).await;
                let _op = e.op.lock().await;
                let r = e.record();
                if !r.state.restarting || r.manually_stopped || svc.get(&e.id).is_err() {
                    return;
                }
                if let Err(err) = svc.start_locked(&e).await {
                    eprintln!("berthd: restart container {}: {err}", e.id);
                    let _ = e.update(&svc.data_dir(&e.id), |r| {
                        r.state.restarting = false;
                        r.state.status = "exited".into();
                    });
                } else {
                    let r = e.record();
                    svc.emit("restart", &r, &[]);
                }
            });
        } else if rec.auto_remove() {
            let svc = self.clone();
            let id = e.id.clone();
            tokio::spawn(async move {
                if let Err(err) = svc.remove_with(&id, true, true).await {
                    eprintln!("berthd: remove container {id}: {err}");
                }
            });
        }
    }

    /// Waits until `e` has exited more than `seen` times, for at most `limit`.
    async fn wait_exit(e: &Entry, seen: u64, limit: Option<Duration>) -> bool {
        let mut rx = e.subscribe();
        let done = async {
            loop {
                if rx.borrow_and_update().exits > seen {
                    return;
                }
                if rx.changed().await.is_err() {
                    return;
                }
            }
        };
        match limit {
            Some(l) => tokio::time::timeout(l, done).await.is_ok(),
            None => {
                done.await;
                true
            }
        }
    }

    /// `POST /containers/{id}/stop`. `Ok(false)`: it was not running (dockerd's 304).
    pub async fn stop(
        self: &Arc<Self>,
        input: &str,
        timeout: Option<i64>,
        signal: Option<&str>,
    ) -> Result<bool, Error> {
        let e = self.get(input)?;
        let _op = e.op.lock().await;
        self.stop_locked(&e, timeout, signal).await
    }

    async fn stop_locked(
        self: &Arc<Self>,
        e: &Arc<Entry>,
        timeout: Option<i64>,
        signal: Option<&str>,
    ) -> Result<bool, Error> {
        let r = e.record();
        if r.state.restarting && !r.state.running {
            e.update(&self.data_dir(&e.id), |r| {
                r.manually_stopped = true;
                r.state.restarting = false;
                r.state.status = "exited".into();
            })?;
            return Ok(true);
        }
        if !r.state.running {
            return Ok(false);
        }
        let cfg = r.config()?;
        let sig = match signal.filter(|s| !s.is_empty()) {
            Some(s) => parse_signal(s)?,
            None => match cfg.stop_signal.as_deref().filter(|s| !s.is_empty()) {
                Some(s) => parse_signal(s)?,
                None => libc::SIGTERM,
            },
        };
        let t = timeout.or(cfg.stop_timeout).unwrap_or(10);
        e.update(&self.data_dir(&e.id), |r| r.manually_stopped = true)?;
        let seen = e.gen.borrow().exits;
        let conn = self.conn(&e.id);
        if r.state.paused {
            self.thaw(&e.id).await;
        }
        let _ = conn.kill(sig, false).await;
        self.emit("kill", &r, &[("signal", sig.to_string())]);
        let limit = (t >= 0).then(|| Duration::from_secs(t as u64));
        if !Self::wait_exit(e, seen, limit).await {
            let _ = conn.kill(libc::SIGKILL, true).await;
            self.emit("kill", &r, &[("signal", libc::SIGKILL.to_string())]);
            if !Self::wait_exit(e, seen, Some(KILL_GRACE)).await {
                return Err(Error::Internal(format!(
                    "container {} did not stop after SIGKILL",
                    e.id
                )));
            }
        }
        self.emit("stop", &e.record(), &[]);
        Ok(true)
    }

    /// `POST /containers/{id}/kill`.
    pub async fn kill(self: &Arc<Self>, input: &str, signal: Option<&str>) -> Result<(), Error> {
        let e = self.get(input)?;
        let sig = parse_signal(signal.filter(|s| !s.is_empty()).unwrap_or("KILL"))?;
        let r = e.record();
        if !r.state.running {
            return Err(Error::Conflict(format!(
                "cannot kill container: {input}: container {} is not running",
                e.id
            )));
        }
        let cfg = r.config()?;
        let stop_sig = cfg
            .stop_signal
            .as_deref()
            .and_then(|s| parse_signal(s).ok())
            .unwrap_or(libc::SIGTERM);
        if sig == libc::SIGKILL || sig == stop_sig {
            e.update(&self.data_dir(&e.id), |r| r.manually_stopped = true)?;
        }
        if r.state.paused && sig == libc::SIGKILL {
            self.thaw(&e.id).await;
        }
        self.conn(&e.id)
            .kill(sig, sig == libc::SIGKILL)
            .await
            .map_err(|err| Error::Internal(format!("cannot kill container: {input}: {err}")))?;
        self.emit("kill", &r, &[("signal", sig.to_string())]);
        Ok(())
    }

    /// `POST /containers/{id}/restart`.
    pub async fn restart(
        self: &Arc<Self>,
        input: &str,
        timeout: Option<i64>,
        signal: Option<&str>,
    ) -> Result<(), Error> {
        let e = self.get(input)?;
        let _op = e.op.lock().await;
        self.stop_locked(&e, timeout, signal).await?;
        self.user_start(&e).await?;
        self.emit("restart", &e.record(), &[]);
        Ok(())
    }

    /// `POST /containers/{id}/wait`: checks the request at once (and notes the exits so far, so
    /// that a start right after the call is not missed), then resolves to the exit code (and
    /// error) when `condition` holds.
    pub fn wait(
        &self,
        input: &str,
        condition: &str,
    ) -> Result<impl std::future::Future<Output = (i64, Option<String>)> + Send + 'static, Error> {
        let e = self.get(input)?;
        let mut rx = e.subscribe();
        let seen = rx.borrow().exits;
        let r = e.record();
        let removed = match condition {
            "" | "not-running" => {
                if !r.state.running && !r.state.restarting {
                    let done = (
                        r.state.exit_code,
                        (!r.state.error.is_empty()).then(|| r.state.error.clone()),
                    );
                    return Ok(futures_util::future::Either::Left(std::future::ready(done)));
                }
                false
            }
            "next-exit" => false,
            "removed" => true,
            other => return Err(Error::Invalid(format!("invalid condition: \"{other}\""))),
        };
        Ok(futures_util::future::Either::Right(async move {
            loop {
                {
                    let g = rx.borrow_and_update();
                    if (removed && g.removed) || (!removed && g.exits > seen) {
                        return (g.last_exit, g.last_error.clone());
                    }
                }
                if rx.changed().await.is_err() {
                    let g = rx.borrow();
                    return (g.last_exit, g.last_error.clone());
                }
            }
        }))
    }

    /// `POST /containers/{id}/resize`.
    pub async fn resize(&self, input: &str, rows: u16, cols: u16) -> Result<(), Error> {
        let e = self.get(input)?;
        if !e.record().state.running {
            return Err(Error::Conflict(format!("Container {} is not running", e.id)));
        }
        self.conn(&e.id)
            .resize(rows, cols)
            .await
            .map_err(|err| Error::Invalid(err.to_string()))
    }

    /// `DELETE /containers/{id}`.
    pub async fn remove(self: &Arc<Self>, input: &str, force: bool) -> Result<(), Error> {
        self.remove_with(input, force, false).await
    }

    /// `DELETE /containers/{id}?v=true`: also the container's anonymous volumes.
    pub async fn remove_with(self: &Arc<Self>, input: &str, force: bool, volumes: bool) -> Result<(), Error> {
        let e = self.get(input)?;
        let _op = e.op.lock().await;
        if self.get(&e.id).is_err() {
            return Ok(());
        }
        let r = e.record();
        if r.state.running {
            if !force {
                let what = if r.state.paused { "paused" } else { "running" };
                return Err(Error::Conflict(format!(
                    "cannot remove container \"{}\": container is {what}: {} the container before removing or force remove",
                    r.name,
                    if r.state.paused { "unpause and then stop" } else { "stop" }
                )));
            }
            let seen = e.gen.borrow().exits;
            e.update(&self.data_dir(&e.id), |r| r.manually_stopped = true)?;
            if r.state.paused {
                self.thaw(&e.id).await;
            }
            let _ = self.conn(&e.id).kill(libc::SIGKILL, true).await;
            self.emit("kill", &r, &[("signal", libc::SIGKILL.to_string())]);
            if !Self::wait_exit(&e, seen, Some(KILL_GRACE)).await {
                return Err(Error::Internal(format!(
                    "could not kill running container {}, cannot remove",
                    e.id
                )));
            }
        }
        e.update(&self.data_dir(&e.id), |r| {
            r.manually_stopped = true;
            r.state.restarting = false;
        })?;
        self.destroy(&e).await;
        if volumes {
            self.remove_anonymous_volumes(&e.record());
        }
        Ok(())
    }

    async fn destroy(&self, e: &Entry) {
        let run = self.run_dir(&e.id);
        unmount(&run.join("rootfs"));
        self.runtime_delete(&e.id).await;
        self.execs.container_removed(&e.id);
        if let Err(err) = self.images.snapshotter().remove(&e.id) {
            eprintln!("berthd: remove the writable layer of {}: {err}", e.id);
        }
        let _ = std::fs::remove_dir_all(&run);
        let _ = std::fs::remove_dir_all(self.data_dir(&e.id));
        let rec = e.record();
        self.forget(&e.id);
        self.emit("destroy", &rec, &[]);
        e.gen.send_modify(|g| g.removed = true);
    }

    /// After berthd starts: running containers are watched again (live restore), containers that
    /// ended while berthd was away get their end recorded, and `always`/`unless-stopped`
    /// containers are started.
    pub async fn restore(self: &Arc<Self>) {
        for e in self.all() {
            let r = e.record();
            if r.state.running || r.state.restarting {
                if r.state.running && self.conn(&e.id).alive().await {
                    *e.started.lock().expect("started lock") = Some(Instant::now());
                    let _ = self.serve_dns(&e);
                    self.monitor(e.clone());
                    continue;
                }
                let exit = match shim::read_exit(&self.run_dir(&e.id).join("exit.json")) {
                    Some(x) => x,
                    None if r.state.running => self.shim_died(&e).await,
                    None => Exit {
                        exit_code: r.state.exit_code,
                        finished_at: r.state.finished_at.clone(),
                        ..Default::default()
                    },
                };
                self.on_exit(&e, exit).await;
            } else if self.cfg.runtime_root.join(&e.id).exists() {
                // berthd died in the middle of this container's start: the runtime's container
                // (its init waiting to be started, and so its shim) and the root mount go.
                self.runtime_delete(&e.id).await;
                unmount(&self.run_dir(&e.id).join("rootfs"));
            }
        }
        // Volumes with options still mounted for the containers that run.
        let held: Vec<(String, String)> = self
            .all()
            .iter()
            .map(|e| e.record())
            .filter(|r| r.state.running)
            .flat_map(|r| {
                r.mounts
                    .iter()
                    .filter(|m| m.typ == "volume")
                    .map(|m| (m.name.clone(), r.id.clone()))
                    .collect::<Vec<_>>()
            })
            .collect();
        self.volumes.restore(&held);
        // Addresses, veths and namespace files of containers that ended while berthd was away.
        let svc = self.clone();
        let running = move |id: &str| {
            svc.all()
                .iter()
                .any(|e| e.id.starts_with(id) && e.record().state.running)
        };
        let nets = self.networks.clone();
        let _ = tokio::task::spawn_blocking(move || nets.reconcile(&running)).await;
        for e in self.all() {
            let r = e.record();
            if r.state.running || r.state.restarting {
                continue;
            }
            if r.has_been_started && r.restart_policy().start_with_daemon(r.manually_stopped) {
                let _op = e.op.lock().await;
                if let Err(err) = self.start_locked(&e).await {
                    eprintln!("berthd: start container {} (restart policy): {err}", e.id);
                }
            }
        }
    }

    /// Thaws a paused container (before it is signalled to end).
    pub(crate) async fn thaw(&self, id: &str) {
        let _ = self.runtime_cmd().args(["resume", id]).status().await;
        if let Ok(e) = self.get(id) {
            let _ = e.update(&self.data_dir(id), |r| {
                r.state.paused = false;
                if r.state.running {
                    r.state.status = "running".into();
                }
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::start::{read_in_root, start_failure_code, Accounts};
    use super::*;

    #[test]
    fn signals_like_docker() {
        assert_eq!(parse_signal("KILL").unwrap(), 9);
        assert_eq!(parse_signal("SIGTERM").unwrap(), 15);
        assert_eq!(parse_signal("hup").unwrap(), 1);
        assert_eq!(parse_signal("10").unwrap(), 10);
        assert_eq!(parse_signal("SIGRTMIN+1").unwrap(), libc::SIGRTMIN() + 1);
        assert_eq!(
            parse_signal("FOO").unwrap_err().to_string(),
            "Invalid signal: FOO"
        );
        assert!(parse_signal("0").is_err());
        assert!(parse_signal("65").is_err());
    }

    #[test]
    fn start_failure_codes() {
        assert_eq!(
            start_failure_code("exec: \"nope\": executable file not found in $PATH"),
            127
        );
        assert_eq!(start_failure_code("exec /x: no such file or directory"), 127);
        assert_eq!(start_failure_code("exec /etc: permission denied"), 126);
        assert_eq!(start_failure_code("cgroup: EBUSY"), 128);
    }

    #[test]
    fn accounts_from_the_image() {
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir(d.path().join("etc")).unwrap();
        std::fs::write(
            d.path().join("etc/passwd"),
            "root:x:0:0:root:/root:/bin/sh\nwww:x:33:33::/var/www:/bin/false\n",
        )
        .unwrap();
        std::fs::write(
            d.path().join("etc/group"),
            "root:x:0:\nwww:x:33:\nextra:x:50:www,other\n",
        )
        .unwrap();
        let a = Accounts::read(d.path());
        assert_eq!(a.passwd[1], ("www".into(), 33, 33));
        assert_eq!(a.groups[2].2, vec!["www".to_string(), "other".to_string()]);
        // A symlink in the image to a host file is resolved inside the root.
        std::fs::remove_file(d.path().join("etc/group")).unwrap();
        std::os::unix::fs::symlink("/etc/hostname", d.path().join("etc/group")).unwrap();
        assert!(read_in_root(d.path(), "etc/group").is_none());
    }
}
