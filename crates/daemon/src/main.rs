//! berthd: the daemon serving the Docker Engine API (see api.rs) on a unix socket.
//!
//! Flags as dockerd's where they apply: `-H/--host` (repeatable: `unix:///path`, `tcp://host:port`),
//! `--data-root`, `--exec-root`, `--pidfile`, `--config-file` (daemon.json), `--insecure-registry`,
//! `--max-concurrent-downloads`, `--max-concurrent-uploads`, `-D/--debug`, `--group`. Several daemons
//! with their own roots, sockets and pidfiles can run side by side.

#![recursion_limit = "256"]
// Handlers return ready responses as their errors: a hyper Response is the natural error type here.
#![allow(clippy::result_large_err)]

mod api;
mod config;
mod containers;
mod http;
mod info;
mod networks;
#[cfg(test)]
mod tests;
mod volumes;

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use berth_engine::containers::{self as ctr, ContainerService};
use berth_engine::events::Events;
use berth_engine::images::{self, ImageService};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;

use crate::config::{Config, Listen};

fn main() -> ExitCode {
    let cfg = match config::from_args(std::env::args().skip(1).collect()) {
        Ok(config::Parsed::Run(c)) => *c,
        Ok(config::Parsed::Exit(code)) => return ExitCode::from(code as u8),
        Err(e) => {
            eprintln!("berthd: {e}");
            return ExitCode::from(1);
        }
    };
    let rt = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("berthd: start the runtime: {e}");
            return ExitCode::from(1);
        }
    };
    let code = rt.block_on(run(cfg));
    // Background tasks (open connections, event streams) end with the runtime.
    rt.shutdown_timeout(std::time::Duration::from_secs(1));
    ExitCode::from(code as u8)
}

/// A pidfile that names a live process means another daemon owns this root.
fn take_pidfile(path: &Path) -> Result<(), String> {
    if let Ok(s) = std::fs::read_to_string(path) {
        if let Ok(pid) = s.trim().parse::<i32>() {
            if pid > 0 && pid != std::process::id() as i32 && Path::new(&format!("/proc/{pid}")).exists() {
                return Err(format!(
                    "pid file found, ensure berthd is not running or delete {}",
                    path.display()
                ));
            }
        }
    }
    if let Some(d) = path.parent() {
        std::fs::create_dir_all(d).map_err(|e| format!("create {}: {e}", d.display()))?;
    }
    std::fs::write(path, format!("{}", std::process::id()))
        .map_err(|e| format!("write {}: {e}", path.display()))
}

fn group_id(name: &str) -> Option<u32> {
    let s = std::fs::read_to_string("/etc/group").ok()?;
    s.lines().find_map(|l| {
        let mut f = l.split(':');
        (f.next()? == name).then(|| f.nth(1)?.parse().ok())?
    })
}

enum Listener {
    Unix(tokio::net::UnixListener, PathBuf),
    Tcp(tokio::net::TcpListener),
}

/// A socket nobody answers on is stale; one that answers belongs to a running daemon.
fn in_use(path: &Path) -> bool {
    std::os::unix::net::UnixStream::connect(path).is_ok()
}

fn bind_unix(path: &Path, group: &str) -> Result<tokio::net::UnixListener, String> {
    if let Some(d) = path.parent() {
        std::fs::create_dir_all(d).map_err(|e| format!("create {}: {e}", d.display()))?;
    }
    if path.exists() {
        if in_use(path) {
            return Err(format!("{} is in use by another daemon", path.display()));
        }
        std::fs::remove_file(path).map_err(|e| format!("remove stale {}: {e}", path.display()))?;
    }
    let l = tokio::net::UnixListener::bind(path).map_err(|e| format!("listen on {}: {e}", path.display()))?;
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o660))
        .map_err(|e| format!("chmod {}: {e}", path.display()))?;
    if let Some(gid) = group_id(group) {
        let _ = std::os::unix::fs::chown(path, None, Some(gid));
    }
    Ok(l)
}

async fn run(cfg: Config) -> i32 {
    if let Err(e) = take_pidfile(&cfg.pidfile) {
        eprintln!("berthd: {e}");
        return 1;
    }
    let code = serve(&cfg).await;
    let _ = std::fs::remove_file(&cfg.pidfile);
    code
}

async fn serve(cfg: &Config) -> i32 {
    // Another daemon on one of our sockets: refused before anything (bridges, rules) is touched.
    for h in &cfg.hosts {
        if let Listen::Unix(p) = h {
            if in_use(p) {
                eprintln!("berthd: {} is in use by another daemon", p.display());
                return 1;
            }
        }
    }
    let events = Arc::new(Events::new());
    let images = match ImageService::open(
        images::Config {
            root: cfg.data_root.join("image"),
            insecure_registries: cfg.insecure_registries.clone(),
            max_concurrent_downloads: cfg.max_concurrent_downloads,
            max_concurrent_uploads: cfg.max_concurrent_uploads,
            storage_driver: cfg.storage_driver.clone(),
        },
        events.clone(),
    ) {
        Ok(s) => Arc::new(s),
        Err(e) => {
            eprintln!(
                "berthd: open the image store under {}: {e}",
                cfg.data_root.display()
            );
            return 1;
        }
    };
    if let Err(e) = std::fs::create_dir_all(&cfg.exec_root) {
        eprintln!("berthd: create {}: {e}", cfg.exec_root.display());
        return 1;
    }
    let id = daemon_id(&cfg.data_root);
    let runtime_path = std::env::current_exe()
        .ok()
        .and_then(|p| p.parent().map(|d| d.join("berth-runtime")))
        .map(|p| p.display().to_string())
        .unwrap_or_else(|| "berth-runtime".into());
    let beside = |name: &str, env: &str| -> std::path::PathBuf {
        if let Some(p) = std::env::var_os(env).filter(|p| !p.is_empty()) {
            return p.into();
        }
        std::env::current_exe()
            .ok()
            .and_then(|p| p.parent().map(|d| d.join(name)))
            .filter(|p| p.exists())
            .unwrap_or_else(|| name.into())
    };
    let networks = match open_networks(cfg, events.clone()) {
        Ok(n) => n,
        Err(e) => {
            eprintln!("berthd: set up the networks: {e}");
            return 1;
        }
    };
    let containers = match ContainerService::open(
        ctr::Config {
            data: cfg.data_root.join("containers"),
            run: cfg.exec_root.join("containers"),
            runtime_root: cfg.exec_root.join("runtime"),
            runtime: beside("berth-runtime", "BERTH_RUNTIME"),
            shim: beside("berth-shim", "BERTH_SHIM"),
            cgroup_v2: ctr::host_cgroup_v2(),
            seccomp: ctr::host_seccomp(),
            log_max_size: None,
            log_max_files: None,
            volumes: cfg.data_root.join("volumes"),
        },
        images.clone(),
        events.clone(),
        networks.clone(),
    ) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("berthd: open the container store: {e}");
            return 1;
        }
    };
    {
        let c = containers.clone();
        tokio::spawn(async move { c.restore().await });
    }
    let state = Arc::new(api::State {
        containers,
        networks,
        images,
        events,
        info: info::Static {
            id,
            data_root: cfg.data_root.display().to_string(),
            insecure_registries: cfg.insecure_registries.clone(),
            debug: cfg.debug,
            runtime_path,
        },
        debug: cfg.debug,
    });
    let mut listeners = Vec::new();
    for h in &cfg.hosts {
        match h {
            Listen::Unix(p) => match bind_unix(p, &cfg.group) {
                Ok(l) => listeners.push(Listener::Unix(l, p.clone())),
                Err(e) => {
                    eprintln!("berthd: {e}");
                    return 1;
                }
            },
            Listen::Tcp(addr) => match tokio::net::TcpListener::bind(addr).await {
                Ok(l) => {
                    eprintln!("berthd: WARNING: the API is served on tcp://{addr} without TLS: anyone who can reach it controls this machine");
                    listeners.push(Listener::Tcp(l));
                }
                Err(e) => {
                    eprintln!("berthd: listen on tcp://{addr}: {e}");
                    return 1;
                }
            },
        }
    }
    let mut socks = Vec::new();
    for l in listeners {
        let state = state.clone();
        match l {
            Listener::Unix(l, p) => {
                socks.push(p);
                tokio::spawn(async move {
                    loop {
                        let Ok((s, _)) = l.accept().await else { continue };
                        serve_connection(s, state.clone());
                    }
                });
            }
            Listener::Tcp(l) => {
                tokio::spawn(async move {
                    loop {
                        let Ok((s, _)) = l.accept().await else { continue };
                        let _ = s.set_nodelay(true);
                        serve_connection(s, state.clone());
                    }
                });
            }
        }
    }
    eprintln!(
        "berthd {} serving API {} on {} (data root {})",
        env!("CARGO_PKG_VERSION"),
        api::API_VERSION,
        cfg.hosts
            .iter()
            .map(|h| h.to_string())
            .collect::<Vec<_>>()
            .join(", "),
        cfg.data_root.display()
    );
    let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("berthd: signals: {e}");
            return 1;
        }
    };
    tokio::select! {
        _ = term.recv() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
    eprintln!("berthd: shutting down");
    for p in socks {
        let _ = std::fs::remove_file(p);
    }
    0
}

/// Serves one client connection (HTTP/1.1, with upgrades for the hijacked routes).
fn serve_connection<S>(s: S, state: Arc<api::State>)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    tokio::spawn(async move {
        let svc = service_fn(move |req| api::handle(state.clone(), req));
        let _ = http1::Builder::new()
            .serve_connection(TokioIo::new(s), svc)
            .with_upgrades()
            .await;
    });
}

/// A stable ID for this daemon's data root (dockerd keeps one in `engine-id`).
fn daemon_id(root: &Path) -> String {
    let p = root.join("engine-id");
    if let Ok(s) = std::fs::read_to_string(&p) {
        if !s.trim().is_empty() {
            return s.trim().to_string();
        }
    }
    let seed = format!(
        "{}-{}-{}",
        root.display(),
        std::process::id(),
        berth_engine::time::now_nanos()
    );
    let id = berth_image::Digest::of(seed.as_bytes()).hex()[..36].to_string();
    let id = format!(
        "{}-{}-{}-{}-{}",
        &id[0..8],
        &id[8..12],
        &id[12..16],
        &id[16..20],
        &id[20..32]
    );
    let _ = std::fs::create_dir_all(root);
    let _ = std::fs::write(&p, &id);
    id
}

/// The network service with the host's dataplane and the daemon's network settings.
fn open_networks(
    cfg: &config::Config,
    events: Arc<berth_engine::events::Events>,
) -> Result<Arc<berth_engine::networks::NetworkService>, String> {
    use berth_engine::networks::{dataplane::Host, NetworkService, Settings};
    let n = &cfg.net;
    let mut s = Settings::new(&cfg.data_root, &cfg.exec_root);
    s.bridge = n.bridge.clone();
    s.table = n.firewall_table.clone();
    s.bip = n.bip;
    s.ipv6 = n.ipv6;
    if !n.pools.is_empty() {
        s.pools = n
            .pools
            .iter()
            .map(|(base, size)| {
                let base: berth_network::Subnet = base
                    .parse()
                    .map_err(|e| format!("invalid default address pool {base}: {e}"))?;
                if *size < base.prefix() {
                    return Err(format!(
                        "invalid default address pool {base}: size {size} is larger than the pool"
                    ));
                }
                Ok(berth_network::pools::Pool { base, size: *size })
            })
            .collect::<Result<_, String>>()?;
    }
    s.mtu = n.mtu;
    s.icc = n.icc;
    s.ip_masq = n.ip_masq;
    s.ip_forward = n.ip_forward;
    s.firewall = n.iptables;
    let nft = ["/usr/sbin/nft", "/sbin/nft", "/usr/bin/nft"]
        .iter()
        .map(std::path::PathBuf::from)
        .find(|p| p.exists())
        .unwrap_or_else(|| "nft".into());
    if s.firewall && !berth_network::firewall::available(&nft) {
        return Err("nft (nftables) is needed for berth's NAT and published ports: install the nftables package, or start berthd with --iptables=false".into());
    }
    let redirect_dns = s.firewall;
    NetworkService::open(s, Arc::new(Host { nft, redirect_dns }), events).map_err(|e| e.to_string())
}
