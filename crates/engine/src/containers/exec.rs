//! `docker exec`: a process started in a running container. Each session gets its own shim in
//! exec mode (`berth-shim --exec`), which holds the process's stdio and reports its end; berthd
//! keeps the sessions in memory (as dockerd does: they do not outlive the daemon).

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use berth_spec as oci;
use serde::Deserialize;
use serde_json::{json, Value};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::watch;

use super::attach::{self, AttachOptions};
use super::shim::{self, Mode, Spawn};
use super::{spec, ContainerService};
use crate::images::{internal, Error};

/// The body of `POST /containers/{id}/exec`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct ExecConfig {
    pub attach_stdin: bool,
    pub attach_stdout: bool,
    pub attach_stderr: bool,
    pub detach_keys: String,
    pub tty: bool,
    pub env: Option<Vec<String>>,
    pub cmd: Option<Vec<String>>,
    pub privileged: bool,
    pub user: String,
    pub working_dir: String,
}

#[derive(Debug, Clone, Default)]
pub struct ExecState {
    pub started: bool,
    pub running: bool,
    pub pid: i32,
    pub exit_code: Option<i64>,
}

pub struct Exec {
    pub id: String,
    pub container: String,
    pub cfg: ExecConfig,
    pub state: watch::Sender<ExecState>,
}

#[derive(Default)]
pub struct Execs(Mutex<HashMap<String, Arc<Exec>>>);

impl Execs {
    fn get(&self, id: &str) -> Result<Arc<Exec>, Error> {
        self.0
            .lock()
            .expect("execs lock")
            .get(id)
            .cloned()
            .ok_or_else(|| Error::NotFound(format!("No such exec instance: {id}")))
    }

    /// The IDs of container `cid`'s sessions (for inspect's `ExecIDs`).
    pub fn of(&self, cid: &str) -> Vec<String> {
        let mut v: Vec<String> = self
            .0
            .lock()
            .expect("execs lock")
            .values()
            .filter(|e| e.container == cid)
            .map(|e| e.id.clone())
            .collect();
        v.sort();
        v
    }

    /// The container ended: sessions that never started are dropped (dockerd forgets them).
    pub fn container_ended(&self, cid: &str) {
        self.0
            .lock()
            .expect("execs lock")
            .retain(|_, e| e.container != cid || e.state.borrow().started);
    }

    pub fn container_removed(&self, cid: &str) {
        self.0
            .lock()
            .expect("execs lock")
            .retain(|_, e| e.container != cid);
    }
}

impl ContainerService {
    /// `POST /containers/{id}/exec`: returns the session's ID.
    pub fn exec_create(&self, input: &str, body: &Value) -> Result<String, Error> {
        let c = self.get(input)?;
        let r = c.record();
        if r.state.paused {
            return Err(Error::Conflict(format!(
                "Container {} is paused, unpause the container before exec",
                c.id
            )));
        }
        if !r.state.running || r.state.restarting {
            return Err(Error::Conflict(format!("container {} is not running", c.id)));
        }
        let cfg: ExecConfig = serde_json::from_value(body.clone())
            .map_err(|e| Error::Invalid(format!("invalid exec config: {e}")))?;
        if cfg.cmd.as_ref().is_none_or(|c| c.is_empty()) {
            return Err(Error::Invalid("No exec command specified".into()));
        }
        attach::parse_detach_keys(&cfg.detach_keys)?;
        let id = super::record::new_id();
        let cmd = cfg.cmd.clone().unwrap_or_default().join(" ");
        let exec = Arc::new(Exec {
            id: id.clone(),
            container: c.id.clone(),
            cfg,
            state: watch::channel(ExecState::default()).0,
        });
        self.execs.0.lock().expect("execs lock").insert(id.clone(), exec);
        self.emit(&format!("exec_create: {cmd}"), &r, &[("execID", id.clone())]);
        Ok(id)
    }

    /// The process of an exec session: the container's process with the session's changes.
    fn exec_process(&self, exec: &Exec) -> Result<oci::Process, Error> {
        let run = self.run_dir(&exec.container);
        let spec: oci::Spec =
            serde_json::from_slice(&std::fs::read(run.join("config.json")).map_err(internal)?)
                .map_err(internal)?;
        let mut p = spec.process.unwrap_or_default();
        let c = self.get(&exec.container)?;
        let hc = c.record().host_config()?;
        p.args = exec.cfg.cmd.clone().unwrap_or_default();
        p.terminal = exec.cfg.tty;
        p.console_size = None;
        for e in exec.cfg.env.iter().flatten() {
            let key = e.split_once('=').map(|(k, _)| k).unwrap_or(e);
            p.env
                .retain(|x| x.split_once('=').map(|(k, _)| k).unwrap_or(x) != key);
            p.env.push(e.clone());
        }
        if !exec.cfg.working_dir.is_empty() {
            p.cwd = exec.cfg.working_dir.clone();
        }
        if !exec.cfg.user.is_empty() {
            let rootfs = run.join("rootfs");
            p.user = self.with_context(&exec.container, &rootfs, |ctx| {
                spec::user(&exec.cfg.user, &hc, ctx)
            })?;
        }
        if exec.cfg.privileged {
            let all: Vec<String> = spec::ALL_CAPS.iter().map(|s| s.to_string()).collect();
            p.capabilities = Some(oci::Capabilities {
                bounding: Some(all.clone()),
                effective: Some(all.clone()),
                permitted: Some(all),
                inheritable: Some(Vec::new()),
                ambient: Some(Vec::new()),
            });
        }
        Ok(p)
    }

    /// `POST /exec/{id}/start`. With a client the session is attached to it and this returns when
    /// the process's output ends or the client detaches; without one (`Detach`), once it runs.
    pub async fn exec_start<C>(self: &Arc<Self>, id: &str, client: Option<C>) -> Result<(), Error>
    where
        C: AsyncRead + AsyncWrite + Unpin + Send,
    {
        let exec = self.execs.get(id)?;
        {
            let mut already = false;
            exec.state.send_modify(|s| {
                already = s.started;
                s.started = true;
            });
            if already {
                return Err(Error::Conflict(format!(
                    "Error: Exec command {id} has already run"
                )));
            }
        }
        let c = self.get(&exec.container)?;
        if !c.record().state.running {
            return Err(Error::Conflict(format!("container {} is not running", c.id)));
        }
        let process = self.exec_process(&exec)?;
        let run = self.run_dir(&exec.container);
        let pfile = run.join(format!("exec-{id}.json"));
        std::fs::write(&pfile, serde_json::to_vec(&process).map_err(internal)?).map_err(internal)?;
        let sp = Spawn {
            shim: self.cfg.shim.clone(),
            runtime: self.cfg.runtime.clone(),
            runtime_root: self.cfg.runtime_root.clone(),
            id: exec.container.clone(),
            dir: run.clone(),
            mode: Mode::Exec {
                exec_id: id.to_string(),
                process: pfile.clone(),
            },
            tty: exec.cfg.tty,
            stdin: exec.cfg.attach_stdin,
        };
        sp.run()
            .await
            .map_err(|e| Error::Internal(format!("exec: {e}")))?;
        let conn = shim::Conn::new(&run.join(format!("exec-{id}.sock")));
        let attached = match &client {
            Some(_) => Some(
                conn.attach(
                    exec.cfg.attach_stdin,
                    exec.cfg.attach_stdout,
                    exec.cfg.attach_stderr,
                )
                .await
                .map_err(|e| Error::Internal(format!("exec: {e}")))?,
            ),
            None => None,
        };
        let pid = match conn.start().await {
            Ok(p) => p,
            Err(e) => {
                let msg = e.to_string();
                exec.state
                    .send_modify(|s| s.exit_code = Some(super::start::start_failure_code(&msg)));
                let _ = std::fs::remove_file(&pfile);
                return Err(Error::Internal(format!(
                    "OCI runtime exec failed: exec failed: {msg}: unknown"
                )));
            }
        };
        exec.state.send_modify(|s| {
            s.running = true;
            s.pid = pid;
        });
        let r = c.record();
        let cmd = exec.cfg.cmd.clone().unwrap_or_default().join(" ");
        self.emit(&format!("exec_start: {cmd}"), &r, &[("execID", id.to_string())]);
        let svc = self.clone();
        let (exec2, run2, id2) = (exec.clone(), run.clone(), id.to_string());
        let waiter = tokio::spawn(async move {
            let exit = match conn.wait().await {
                Ok(Some(x)) => x,
                _ => shim::read_exit(&run2.join(format!("exit-{id2}.json"))).unwrap_or(shim::Exit {
                    exit_code: 137,
                    ..Default::default()
                }),
            };
            let _ = std::fs::remove_file(run2.join(format!("exit-{id2}.json")));
            let _ = std::fs::remove_file(run2.join(format!("exec-{id2}.json")));
            exec2.state.send_modify(|s| {
                s.running = false;
                s.exit_code = Some(exit.exit_code);
            });
            if let Ok(c) = svc.get(&exec2.container) {
                svc.emit(
                    "exec_die",
                    &c.record(),
                    &[("execID", id2.clone()), ("exitCode", exit.exit_code.to_string())],
                );
            }
        });
        if let (Some(client), Some(stream)) = (client, attached) {
            let opts = AttachOptions {
                stdin: exec.cfg.attach_stdin,
                stdout: exec.cfg.attach_stdout,
                stderr: exec.cfg.attach_stderr,
                tty: exec.cfg.tty,
                stdin_once: true,
                detach_keys: attach::parse_detach_keys(&exec.cfg.detach_keys)?,
            };
            // The exit code is recorded before the client learns the stream ended.
            attach::pump(client, stream, &opts, async {
                let _ = waiter.await;
            })
            .await;
        }
        Ok(())
    }

    /// `POST /exec/{id}/resize`.
    pub async fn exec_resize(&self, id: &str, rows: u16, cols: u16) -> Result<(), Error> {
        let exec = self.execs.get(id)?;
        let sock: PathBuf = self.run_dir(&exec.container).join(format!("exec-{id}.sock"));
        shim::Conn::new(&sock)
            .resize(rows, cols)
            .await
            .map_err(|e| Error::Invalid(e.to_string()))
    }

    /// `GET /exec/{id}/json`.
    pub fn exec_inspect(&self, id: &str) -> Result<Value, Error> {
        let exec = self.execs.get(id)?;
        let s = exec.state.borrow().clone();
        let mut args = exec.cfg.cmd.clone().unwrap_or_default();
        let entry = if args.is_empty() {
            String::new()
        } else {
            args.remove(0)
        };
        Ok(json!({
            "ID": exec.id,
            "Running": s.running,
            "ExitCode": s.exit_code,
            "ProcessConfig": {
                "tty": exec.cfg.tty,
                "entrypoint": entry,
                "arguments": args,
                "privileged": exec.cfg.privileged,
                "user": exec.cfg.user,
            },
            "OpenStdin": exec.cfg.attach_stdin,
            "OpenStderr": exec.cfg.attach_stderr,
            "OpenStdout": exec.cfg.attach_stdout,
            "CanRemove": false,
            "ContainerID": exec.container,
            "DetachKeys": exec.cfg.detach_keys,
            "Pid": s.pid,
        }))
    }

    /// Whether an exec session has a terminal (the daemon picks raw or multiplexed output).
    pub fn exec_tty(&self, id: &str) -> Result<bool, Error> {
        Ok(self.execs.get(id)?.cfg.tty)
    }
}
