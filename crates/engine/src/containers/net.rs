//! A container's networking through the network service: interfaces and ports at start, given back
//! at its end, the embedded DNS of user-defined networks, the hosts and resolv.conf files, and
//! `network connect`/`disconnect`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use serde_json::Value;

use super::files;
use super::{ContainerService, Entry};
use crate::images::{internal, Error};
use crate::networks::{Attach, Attached};

/// A container's resolver settings; `embedded`: the embedded DNS answers at 127.0.0.11.
fn dns_of(hc: &super::spec::HostConfig, embedded: bool) -> files::Dns {
    files::Dns {
        embedded,
        servers: hc.dns.clone().unwrap_or_default(),
        search: hc.dns_search.clone().unwrap_or_default(),
        options: hc.dns_options.clone().unwrap_or_default(),
    }
}

/// The network modes in which berth makes no interfaces (the runtime or another container does).
fn plugless(mode: &str) -> bool {
    matches!(mode, "host" | "none") || mode.starts_with("container:")
}

impl ContainerService {
    /// Gives a starting container its interfaces and ports (nothing for host, none and
    /// `container:`), and records what it got.
    pub(crate) async fn attach_network(self: &Arc<Self>, e: &Arc<Entry>) -> Result<Option<Attached>, Error> {
        let r = e.record();
        let mode = r.network_mode();
        if plugless(&mode) || r.networks.is_empty() {
            return Ok(None);
        }
        let nets = self.networks.clone();
        let (id, name) = (r.id.clone(), r.short_name().to_string());
        let bindings = r.host_config.get("PortBindings").cloned().unwrap_or(Value::Null);
        let publish_all = r.host_config.get("PublishAllPorts").and_then(Value::as_bool) == Some(true);
        let exposed = r.exposed_ports();
        let networks = r.networks.clone();
        let got = tokio::task::spawn_blocking(move || {
            nets.attach(&Attach {
                id: &id,
                name: &name,
                primary: &mode,
                networks: &networks,
                port_bindings: &bindings,
                exposed,
                publish_all,
            })
        })
        .await
        .map_err(internal)??;
        e.update(&self.data_dir(&e.id), |r| {
            r.networks = got.networks.clone();
            r.sandbox_key = got.sandbox.display().to_string();
            r.ports = got.ports.clone();
        })?;
        if got.embedded_dns {
            if let Err(err) = self.serve_dns(e) {
                self.release_network(e).await;
                return Err(err);
            }
        }
        Ok(Some(got))
    }

    /// Starts the embedded DNS of a running container on a user-defined network (at start, and
    /// again when berthd restarts).
    pub(crate) fn serve_dns(&self, e: &Entry) -> Result<(), Error> {
        let r = e.record();
        if r.sandbox_key.is_empty() {
            return Ok(());
        }
        let user_net = r.networks.values().any(|ep| {
            self.networks
                .get(&ep.network_id)
                .is_ok_and(|n| !n.default_bridge && ep.ip.is_some())
        });
        if !user_net {
            return Ok(());
        }
        let hc = r.host_config()?;
        let mut upstreams: Vec<SocketAddr> = hc
            .dns
            .iter()
            .flatten()
            .filter_map(|s| s.parse::<std::net::IpAddr>().ok())
            .map(|ip| SocketAddr::new(ip, 53))
            .collect();
        if upstreams.is_empty() {
            let host = std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
            upstreams = berth_network::dns::nameservers(&host);
        }
        let res = self
            .networks
            .start_dns(&e.id, &PathBuf::from(&r.sandbox_key), upstreams);
        if let Err(err) = &res {
            eprintln!("berthd: container {}: {err}", e.id);
        }
        res
    }

    /// Gives back a container's interfaces, addresses, ports and namespace file. Idempotent.
    pub(crate) async fn release_network(&self, e: &Entry) {
        let r = e.record();
        let sandbox = if r.sandbox_key.is_empty() {
            self.networks.sandbox_path(&e.id)
        } else {
            PathBuf::from(&r.sandbox_key)
        };
        self.networks.stop_dns(&e.id).await;
        let nets = self.networks.clone();
        let id = e.id.clone();
        let _ = tokio::task::spawn_blocking(move || nets.detach(&id, &sandbox)).await;
        let _ = e.update(&self.data_dir(&e.id), |r| {
            r.sandbox_key.clear();
            r.ports.clear();
            for ep in r.networks.values_mut() {
                ep.clear_runtime();
            }
        });
    }

    /// The hosts and resolv.conf contents of a start.
    pub(crate) fn files_plan(
        &self,
        e: &Entry,
        hostname: &str,
        read_only: bool,
        net: Option<&Attached>,
    ) -> Result<files::Plan, Error> {
        let r = e.record();
        let hc = r.host_config()?;
        let mode = r.network_mode();
        let extra = hc.extra_hosts.as_deref().unwrap_or(&[]);
        // `host-gateway` is the default bridge's address (looked up only when asked for).
        let gateway = extra
            .iter()
            .any(|h| h.ends_with("host-gateway"))
            .then(|| {
                self.networks
                    .get("bridge")
                    .ok()?
                    .ipam
                    .map(|i| i.gateway.to_string())
            })
            .flatten();
        let mut hosts = files::extra_hosts(extra, gateway.as_deref()).map_err(Error::Invalid)?;
        if let Some(ep) = net.and_then(|a| a.networks.get(&mode)) {
            let v4 = ep.ip.map(std::net::IpAddr::V4);
            for ip in v4.into_iter().chain(ep.ip6.map(std::net::IpAddr::V6)) {
                hosts.push((ip.to_string(), hostname.to_string()));
            }
        }
        Ok(files::Plan {
            hostname: hostname.to_string(),
            host_network: mode == "host",
            read_only,
            hosts,
            dns: dns_of(&hc, net.is_some_and(|a| a.embedded_dns)),
        })
    }

    /// `POST /networks/{id}/connect`.
    pub async fn connect(
        self: &Arc<Self>,
        network: &str,
        container: &str,
        endpoint: Option<&Value>,
    ) -> Result<(), Error> {
        let e = self.get(container)?;
        let _op = e.op.lock().await;
        let r = e.record();
        let mode = r.network_mode();
        let (n, cfg) = self.networks.plan_connect(network, endpoint)?;
        if mode == "host" {
            return Err(Error::Forbidden(
                "container cannot be disconnected from host network or connected to host network".into(),
            ));
        }
        if mode == "none" || mode.starts_with("container:") {
            return Err(Error::Forbidden(format!(
                "container cannot be connected to multiple networks with one of the networks in private ({mode}) mode"
            )));
        }
        if r.networks.values().any(|ep| ep.network_id == n.id) || r.networks.contains_key(&n.name) {
            return Err(Error::Forbidden(format!(
                "endpoint with name {} already exists in network {}",
                r.short_name(),
                n.name
            )));
        }
        let got = if r.state.running && !r.sandbox_key.is_empty() {
            let used: Vec<String> = r.networks.values().map(|ep| ep.ifname.clone()).collect();
            let index = (0..).find(|i| !used.contains(&format!("eth{i}"))).unwrap_or(0);
            let nets = self.networks.clone();
            let (id, cname, sandbox, name) = (
                r.id.clone(),
                r.short_name().to_string(),
                PathBuf::from(&r.sandbox_key),
                n.name.clone(),
            );
            tokio::task::spawn_blocking(move || {
                nets.connect_running(&id, &cname, &sandbox, &name, &cfg, index)
            })
            .await
            .map_err(internal)??
        } else {
            cfg
        };
        e.update(&self.data_dir(&e.id), |r| {
            r.networks.insert(n.name.clone(), got);
        })?;
        // A running container's first user-defined network: its embedded DNS starts and its
        // resolv.conf is rewritten to use it, as dockerd does.
        if r.state.running
            && !r.sandbox_key.is_empty()
            && !n.default_bridge
            && !self.networks.serves_dns(&e.id)
        {
            self.serve_dns(&e)?;
            let hc = r.host_config()?;
            files::write_resolv(&self.data_dir(&e.id), &dns_of(&hc, true)).map_err(internal)?;
        }
        Ok(())
    }

    /// `POST /networks/{id}/disconnect`.
    pub async fn disconnect(self: &Arc<Self>, network: &str, container: &str) -> Result<(), Error> {
        let e = self.get(container)?;
        let _op = e.op.lock().await;
        let r = e.record();
        let n = self.networks.get(network)?;
        if n.driver == "host" {
            return Err(Error::Forbidden(
                "container cannot be disconnected from host network or connected to host network".into(),
            ));
        }
        let Some(key) = r
            .networks
            .iter()
            .find(|(k, ep)| ep.network_id == n.id || **k == n.name)
            .map(|(k, _)| k.clone())
        else {
            return Err(Error::Forbidden(format!(
                "container {} is not connected to network {}",
                r.id, n.name
            )));
        };
        if r.state.running {
            let nets = self.networks.clone();
            let (id, nid) = (r.id.clone(), n.id.clone());
            tokio::task::spawn_blocking(move || nets.disconnect_running(&id, &nid))
                .await
                .map_err(internal)?;
        }
        e.update(&self.data_dir(&e.id), |r| {
            r.networks.remove(&key);
        })?;
        Ok(())
    }

    /// Whether some container (running or not) is configured on network `id_or_name`.
    pub fn uses_network(&self, id_or_name: &str) -> bool {
        self.all().iter().any(|e| {
            let r = e.record();
            r.networks
                .iter()
                .any(|(k, ep)| k == id_or_name || ep.network_id == id_or_name)
        })
    }
}
