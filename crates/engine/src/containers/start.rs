//! Starting a container: its root filesystem mounted, its spec composed with the image's accounts
//! and the hosts files, its shim spawned, attached clients connected, then the process started.

use std::os::fd::AsFd;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use berth_spec as oci;

use super::shim::{self, Mode, Spawn};
use super::spec::{self, Context};
use super::{files, ContainerService, Entry};
use crate::images::{internal, Error};
use crate::networks::Attached;

/// docker's exit code for a start that failed: 127 when the command is missing, 126 when it
/// cannot be run, 128 otherwise.
pub fn start_failure_code(msg: &str) -> i64 {
    if msg.contains("executable file not found") || msg.contains("no such file or directory") {
        127
    } else if msg.contains("permission denied") || msg.contains("is a directory") {
        126
    } else {
        128
    }
}

/// A file of the image read through `openat2(RESOLVE_IN_ROOT)`: a symlink in the image cannot
/// lead outside its root.
pub(crate) fn read_in_root(root: &Path, rel: &str) -> Option<String> {
    let dir = std::fs::File::open(root).ok()?;
    let fd = berth_sys::fs::openat2_in_root(
        dir.as_fd(),
        rel,
        libc::O_RDONLY,
        0,
        berth_sys::fs::ResolveFlags::default(),
    )
    .ok()?;
    let mut s = String::new();
    std::io::Read::read_to_string(&mut std::fs::File::from(fd), &mut s).ok()?;
    Some(s)
}

/// `/etc/passwd` and `/etc/group` of an image.
pub(crate) struct Accounts {
    pub(crate) passwd: Vec<(String, u32, u32)>,
    pub(crate) groups: Vec<(String, u32, Vec<String>)>,
}

impl Accounts {
    pub(crate) fn read(root: &Path) -> Accounts {
        let fields = |text: Option<String>| -> Vec<Vec<String>> {
            text.unwrap_or_default()
                .lines()
                .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
                .map(|l| l.split(':').map(String::from).collect())
                .collect()
        };
        let passwd = fields(read_in_root(root, "etc/passwd"))
            .into_iter()
            .filter(|f| f.len() >= 4)
            .filter_map(|f| Some((f[0].clone(), f[2].parse().ok()?, f[3].parse().ok()?)))
            .collect();
        let groups = fields(read_in_root(root, "etc/group"))
            .into_iter()
            .filter(|f| f.len() >= 3)
            .filter_map(|f| {
                let members = f
                    .get(3)
                    .map(|m| m.split(',').filter(|x| !x.is_empty()).map(String::from).collect())
                    .unwrap_or_default();
                Some((f[0].clone(), f[2].parse().ok()?, members))
            })
            .collect();
        Accounts { passwd, groups }
    }
}

pub(crate) fn mount_rootfs(m: &super::record::RootfsMount, target: &Path) -> Result<(), Error> {
    use nix::mount::{mount, MsFlags};
    let _ = nix::mount::umount2(target, nix::mount::MntFlags::MNT_DETACH);
    let r = if m.fstype == "bind" {
        mount(
            Some(m.source.as_str()),
            target,
            None::<&str>,
            MsFlags::MS_BIND | MsFlags::MS_REC,
            None::<&str>,
        )
    } else {
        mount(
            Some(m.source.as_str()),
            target,
            Some(m.fstype.as_str()),
            MsFlags::empty(),
            Some(m.options.join(",").as_str()),
        )
    };
    r.map_err(|e| Error::Internal(format!("mount the root filesystem at {}: {e}", target.display())))
}

/// Where `--init` finds its init: a static program (tini's static build, which is what docker ships
/// as `docker-init`), `BERTH_INIT` first.
fn find_init() -> Option<std::path::PathBuf> {
    let mut c: Vec<std::path::PathBuf> = std::env::var_os("BERTH_INIT")
        .map(Into::into)
        .into_iter()
        .collect();
    let path = std::env::var("PATH").unwrap_or_else(|_| "/usr/local/bin:/usr/bin:/bin".into());
    for name in ["docker-init", "tini-static"] {
        for d in path.split(':').chain(["/usr/bin", "/usr/libexec/docker"]) {
            c.push(Path::new(d).join(name));
        }
    }
    c.into_iter().find(|p| p.is_file())
}

/// `--init`: the init bound read-only at `/sbin/docker-init` and put before the command (as docker).
fn add_init(spec: &mut oci::Spec) -> Result<(), Error> {
    let init = find_init().ok_or_else(|| {
        Error::Invalid(
            "--init: no static init program found (install Debian's tini package for tini-static, or set BERTH_INIT)".into(),
        )
    })?;
    spec.mounts.push(oci::Mount {
        destination: "/sbin/docker-init".into(),
        typ: Some("bind".into()),
        source: Some(init.display().to_string()),
        options: Some(vec!["bind".into(), "ro".into()]),
        ..Default::default()
    });
    if let Some(p) = spec.process.as_mut() {
        let mut args = vec!["/sbin/docker-init".to_string(), "--".to_string()];
        args.append(&mut p.args);
        p.args = args;
    }
    Ok(())
}

/// A test hook: with `BERTHD_CRASH_AT=<point>` in its environment berthd kills itself with SIGKILL
/// at that point of a container's start, as a crash would; the e2e suite checks what the next
/// berthd finds. Points: `network-attached`, `container-created`.
fn crash_point(point: &str) {
    if std::env::var_os("BERTHD_CRASH_AT").is_some_and(|p| p == point) {
        let _ = nix::sys::signal::raise(nix::sys::signal::Signal::SIGKILL);
    }
}

/// A runtime failure as dockerd words it, with the status its kind deserves (a command that cannot
/// be found or run is the request's fault: 400).
fn runtime_failure(verb: &str, err: shim::ShimError) -> Error {
    match err {
        shim::ShimError::Failed(m) => {
            let full = format!(
                "failed to create task for container: OCI runtime {verb} failed: berth-runtime {verb} failed: {m}: unknown"
            );
            if start_failure_code(&m) < 128 {
                Error::Invalid(full)
            } else {
                Error::Internal(full)
            }
        }
        other => Error::Internal(other.to_string()),
    }
}

pub(crate) fn unmount(target: &Path) {
    let _ = nix::mount::umount2(target, nix::mount::MntFlags::MNT_DETACH);
}

impl ContainerService {
    pub(crate) fn runtime_cmd(&self) -> tokio::process::Command {
        let mut c = tokio::process::Command::new(&self.cfg.runtime);
        c.arg("--root").arg(&self.cfg.runtime_root);
        c.stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null());
        c
    }

    /// Removes the runtime's state of container `id` (and its cgroup, and kills what is left).
    pub(crate) async fn runtime_delete(&self, id: &str) {
        if self.cfg.runtime_root.join(id).exists() {
            let _ = self.runtime_cmd().args(["delete", "--force", id]).status().await;
        }
    }

    /// `POST /containers/{id}/start`. `Ok(false)`: it was running already (dockerd's 304).
    pub async fn start(self: &Arc<Self>, input: &str) -> Result<bool, Error> {
        let e = self.get(input)?;
        let _op = e.op.lock().await;
        let r = e.record();
        if r.state.paused {
            return Err(Error::Conflict(
                "cannot start a paused container, try unpause instead".into(),
            ));
        }
        if r.state.running {
            return Ok(false);
        }
        if r.state.status == "removing" || r.state.dead {
            return Err(Error::Conflict(format!(
                "container is marked for removal and cannot be started: {}",
                r.short_name()
            )));
        }
        self.user_start(&e).await?;
        Ok(true)
    }

    /// A start asked for by a user: the restart count and back-off begin again, and a manual stop
    /// no longer holds.
    pub(crate) async fn user_start(self: &Arc<Self>, e: &Arc<Entry>) -> Result<(), Error> {
        e.restarts.lock().expect("restarts lock").reset();
        e.update(&self.data_dir(&e.id), |r| {
            r.manually_stopped = false;
            r.restart_count = 0;
        })?;
        self.start_locked(e).await
    }

    /// Starts a container whose operation lock the caller holds.
    pub(crate) async fn start_locked(self: &Arc<Self>, e: &Arc<Entry>) -> Result<(), Error> {
        let rec = e.record();
        let run = self.run_dir(&e.id);
        let rootfs = run.join("rootfs");
        std::fs::create_dir_all(&rootfs).map_err(internal)?;
        let _ = std::fs::remove_file(run.join("exit.json"));
        self.runtime_delete(&e.id).await;
        let started = match mount_rootfs(&rec.rootfs_mount, &rootfs) {
            Ok(()) => self.launch(e, &run, &rootfs).await,
            Err(err) => Err(err),
        };
        match started {
            Ok(()) => Ok(()),
            Err(err) => {
                unmount(&rootfs);
                self.release_network(e).await;
                self.release_volumes(&rec);
                let msg = err.to_string();
                let code = start_failure_code(&msg);
                let rec = e.update(&self.data_dir(&e.id), |r| {
                    r.state.exit_code = code;
                    r.state.error = msg.clone();
                    r.state.running = false;
                    r.state.restarting = false;
                    if r.state.status == "restarting" || r.state.status == "running" {
                        r.state.status = "exited".into();
                    }
                    r.clone()
                });
                // Clients attached for this start see their stream end; waiters see the failure.
                e.pending.lock().expect("pending lock").clear();
                e.gen.send_modify(|g| {
                    g.exits += 1;
                    g.last_exit = code;
                    g.last_error = None;
                });
                // As dockerd: an auto-remove container whose start failed is removed.
                if rec.is_ok_and(|r| r.auto_remove()) {
                    let svc = self.clone();
                    let id = e.id.clone();
                    tokio::spawn(async move {
                        if let Err(err) = svc.remove_with(&id, true, true).await {
                            eprintln!("berthd: remove container {id}: {err}");
                        }
                    });
                }
                Err(err)
            }
        }
    }

    /// The spec composed for this start, with the image's accounts and the hosts files.
    fn compose_for_start(
        &self,
        e: &Entry,
        run: &Path,
        rootfs: &Path,
        net: Option<&Attached>,
    ) -> Result<oci::Spec, Error> {
        let rec = e.record();
        let img = self.images.resolve(&rec.image)?;
        let (img_cfg, _) = self.images.config(&img)?;
        let cfg = rec.config()?;
        let hc = rec.host_config()?;
        let mut spec = self.with_context(&e.id, rootfs, |ctx| {
            spec::compose(&img_cfg.config, &cfg, &hc, ctx)
        })?;
        let hostname = spec.hostname.clone().unwrap_or_else(|| {
            nix::unistd::gethostname()
                .map(|h| h.to_string_lossy().into_owned())
                .unwrap_or_default()
        });
        let data = self.data_dir(&e.id);
        let plan = self.files_plan(e, &hostname, hc.readonly_rootfs, net)?;
        let mounts = files::write(&data, &plan).map_err(internal)?;
        let user = self.mount_volumes(&rec, rootfs)?;
        super::mounts::merge(&mut spec.mounts, mounts, user);
        if let Some(l) = spec.linux.as_mut() {
            l.cgroups_path = Some(format!("/berth/{}", e.id));
            // The namespace berth made and plugged the interfaces into.
            if let Some(a) = net {
                for ns in l.namespaces.iter_mut().filter(|n| n.typ == "network") {
                    ns.path = Some(a.sandbox.display().to_string());
                }
            }
        }
        if hc.init == Some(true) {
            add_init(&mut spec)?;
        }
        let json = serde_json::to_vec_pretty(&spec).map_err(internal)?;
        std::fs::write(run.join("config.json"), json).map_err(internal)?;
        Ok(spec)
    }

    /// Runs `f` with the composition context of container `id` whose root filesystem is mounted
    /// at `rootfs`: the image's accounts, other containers' PIDs, host devices.
    pub(crate) fn with_context<T>(&self, id: &str, rootfs: &Path, f: impl FnOnce(&Context) -> T) -> T {
        let acc = Accounts::read(rootfs);
        let rootfs_s = rootfs.display().to_string();
        let container_pid = |name: &str| -> Option<u32> {
            let other = self.get(name).ok()?.record();
            other.state.running.then_some(other.state.pid as u32)
        };
        let ctx = Context {
            id,
            rootfs: &rootfs_s,
            cgroup_v2: self.cfg.cgroup_v2,
            user: &|n| acc.passwd.iter().find(|p| p.0 == n).map(|p| (p.1, p.2)),
            group: &|n| acc.groups.iter().find(|g| g.0 == n).map(|g| g.1),
            groups_of: &|name, gid| {
                acc.groups
                    .iter()
                    .filter(|g| g.1 != gid && g.2.iter().any(|m| m == name))
                    .map(|g| g.1)
                    .collect()
            },
            container_pid: &container_pid,
            host_device: &super::create::spec_host_device,
            default_seccomp: self.cfg.seccomp,
        };
        f(&ctx)
    }

    async fn launch(self: &Arc<Self>, e: &Arc<Entry>, run: &Path, rootfs: &Path) -> Result<(), Error> {
        let net = self.attach_network(e).await?;
        crash_point("network-attached");
        let spec = self.compose_for_start(e, run, rootfs, net.as_ref())?;
        let rec = e.record();
        let (max_size, max_files) = super::create::log_options(&rec.host_config)?;
        let open_stdin = rec
            .config
            .get("OpenStdin")
            .and_then(|v| v.as_bool())
            .unwrap_or(false);
        let tty = spec.process.as_ref().is_some_and(|p| p.terminal);
        let sp = Spawn {
            shim: self.cfg.shim.clone(),
            runtime: self.cfg.runtime.clone(),
            runtime_root: self.cfg.runtime_root.clone(),
            id: e.id.clone(),
            dir: run.to_path_buf(),
            mode: Mode::Container {
                bundle: run.to_path_buf(),
                log: rec.log_path.clone(),
                log_max_size: max_size.or(self.cfg.log_max_size),
                log_max_files: max_files.or(self.cfg.log_max_files),
                unmount: Some(rootfs.to_path_buf()),
            },
            tty,
            stdin: open_stdin,
        };
        let ready = sp.run().await.map_err(|err| runtime_failure("create", err))?;
        crash_point("container-created");
        let conn = self.conn(&e.id);
        // Clients that attached before the start get their connection before the process runs.
        let pending: Vec<_> = std::mem::take(&mut *e.pending.lock().expect("pending lock"));
        for p in pending {
            let (ack_tx, ack_rx) = tokio::sync::oneshot::channel();
            if p.send((conn.clone(), ack_tx)).is_ok() {
                let _ = tokio::time::timeout(Duration::from_secs(5), ack_rx).await;
            }
        }
        // A failed START leaves nothing running: the shim kills the waiting init and ends.
        let pid = conn.start().await.map_err(|err| runtime_failure("start", err))?;
        let now = crate::time::now_rfc3339();
        let rec = e.update(&self.data_dir(&e.id), |r| {
            r.state
                .set_running(i64::from(if pid > 0 { pid } else { ready.pid }), now);
            r.shim_pid = ready.shim_pid;
            r.has_been_started = true;
            r.clone()
        })?;
        *e.started.lock().expect("started lock") = Some(Instant::now());
        self.emit("start", &rec, &[]);
        self.monitor(e.clone());
        Ok(())
    }
}
