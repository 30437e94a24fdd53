//! The firewall against a real kernel, as root, only inside network namespaces these tests create
//! (`ip netns add`, removed by drop guards): the goldens apply, twice, and list back; teardown
//! removes the table and nothing else, and succeeds on an absent table; nft's refusal reaches the
//! error; and a published port really works end to end (loopback, a host address, from outside,
//! hairpin), with outbound NAT and the isolation of the bridge checked on the way.
//!
//! Every test skips with a printed notice when not root or when `nft` or `ip` is missing. nft and
//! the sockets run in threads that entered a namespace with setns(2) (a network namespace is
//! per thread, and a child inherits its thread's), so nothing reaches the host's ruleset.

use std::fs::File;
use std::io::{Read, Write};
use std::net::{IpAddr, Ipv6Addr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use berth_network::firewall::{self, Firewall, NetRules, PortRule, Proto, CHAINS};
use serde_json::Value;

const NFT: &str = "nft";

/// Whether these tests can run here; prints why not.
fn can_run(test: &str) -> bool {
    let why = if !nix::unistd::geteuid().is_root() {
        "not root"
    } else if !ok(Command::new(NFT).arg("--version")) {
        "nft is missing (apt-get install nftables)"
    } else if !ok(Command::new("ip").arg("-V")) {
        "ip is missing (apt-get install iproute2)"
    } else {
        return true;
    };
    println!("skipping {test}: {why}");
    false
}

fn ok(cmd: &mut Command) -> bool {
    cmd.output().is_ok_and(|o| o.status.success())
}

fn run(args: &[&str]) {
    let out = Command::new(args[0]).args(&args[1..]).output().unwrap();
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A named network namespace, deleted (with the links in it) on drop.
struct Netns {
    name: String,
}

impl Netns {
    fn new(role: &str) -> Netns {
        static N: AtomicUsize = AtomicUsize::new(0);
        let n = N.fetch_add(1, Ordering::Relaxed);
        let name = format!("bnft-{}-{n}-{role}", std::process::id());
        run(&["ip", "netns", "add", &name]);
        let ns = Netns { name };
        ns.ip(&["link", "set", "lo", "up"]);
        ns
    }

    fn ip(&self, args: &[&str]) {
        let mut all = vec!["ip", "-n", &self.name];
        all.extend_from_slice(args);
        run(&all);
    }

    fn sysctl(&self, key: &str, value: &str) {
        let kv = format!("{key}={value}");
        run(&["ip", "netns", "exec", &self.name, "sysctl", "-qw", &kv]);
    }

    fn path(&self) -> PathBuf {
        Path::new("/run/netns").join(&self.name)
    }

    /// Runs `f` on a thread inside this namespace.
    fn run<T: Send + 'static>(&self, f: impl FnOnce() -> T + Send + 'static) -> T {
        berth_network::netns::run_in(&self.path(), f).expect("enter the namespace")
    }

    /// Starts `f` on a thread inside this namespace (for servers).
    fn spawn<T: Send + 'static>(&self, f: impl FnOnce() -> T + Send + 'static) -> JoinHandle<T> {
        let file = File::open(self.path()).unwrap();
        std::thread::spawn(move || {
            nix::sched::setns(&file, nix::sched::CloneFlags::CLONE_NEWNET).unwrap();
            f()
        })
    }

    /// `nft ARGS` in this namespace: (success, stdout, stderr).
    fn nft(&self, args: &[&str]) -> (bool, String, String) {
        let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
        self.run(move || {
            let out = Command::new(NFT).args(&args).output().unwrap();
            let s = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
            (out.status.success(), s(&out.stdout), s(&out.stderr))
        })
    }

    fn apply(&self, doc: &Value) -> Result<(), firewall::FirewallError> {
        let doc = doc.clone();
        self.run(move || firewall::apply(Path::new(NFT), &doc))
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.name]).status();
    }
}

fn golden_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden/firewall")
}

/// (chain, comment) of the rules of table `inet berth` as nft lists them in `ns`.
fn listed_rules(ns: &Netns) -> Option<Vec<(String, String)>> {
    let (ok, out, _) = ns.nft(&["-j", "list", "table", "inet", "berth"]);
    if !ok {
        return None;
    }
    let v: Value = serde_json::from_str(&out).unwrap();
    let objs = v["nftables"].as_array().unwrap();
    let chains: Vec<&str> = objs
        .iter()
        .filter_map(|o| o.get("chain"))
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(chains, CHAINS);
    let rules = objs.iter().filter_map(|o| o.get("rule"));
    let pair = |r: &Value| {
        let s = |k: &str| r[k].as_str().unwrap_or_default().to_string();
        (s("chain"), s("comment"))
    };
    Some(rules.map(pair).collect())
}

/// (chain, comment) of the rules a document adds.
fn document_rules(doc: &Value) -> Vec<(String, String)> {
    let adds = doc["nftables"].as_array().unwrap().iter();
    let rules = adds.filter_map(|o| o["add"].get("rule"));
    let pair = |r: &Value| {
        let s = |k: &str| r[k].as_str().unwrap().to_string();
        (s("chain"), s("comment"))
    };
    let mut rules: Vec<_> = rules.map(pair).collect();
    // nft lists chains in the order they were added; rules keep their order within a chain.
    rules.sort_by_key(|(chain, _)| CHAINS.iter().position(|c| c == chain).unwrap());
    rules
}

#[test]
fn the_dns_redirect_applies_twice_in_its_own_table() {
    if !can_run("the_dns_redirect_applies_twice_in_its_own_table") {
        return;
    }
    let ns = Netns::new("dns");
    let doc: Value =
        serde_json::from_slice(&std::fs::read(golden_dir().join("dns_redirect.json")).unwrap()).unwrap();
    for round in 1..=2 {
        ns.apply(&doc).unwrap_or_else(|e| panic!("round {round}: {e}"));
        let (ok, out, err) = ns.nft(&["list", "table", "ip", "berth-dns"]);
        assert!(ok, "{err}");
        for want in [
            "ip daddr 127.0.0.11 udp dport 53 dnat to 127.0.0.11:40001",
            "ip daddr 127.0.0.11 tcp dport 53 dnat to 127.0.0.11:40002",
        ] {
            assert_eq!(out.matches(want).count(), 1, "round {round}: {out}");
        }
    }
}

#[test]
fn goldens_apply_twice_list_back_and_tear_down() {
    if !can_run("goldens_apply_twice_list_back_and_tear_down") {
        return;
    }
    let mut goldens: Vec<PathBuf> = std::fs::read_dir(golden_dir())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.file_stem()
                .is_some_and(|s| s != "teardown" && s != "dns_redirect")
        })
        .collect();
    goldens.sort();
    assert!(goldens.len() >= 5, "{goldens:?}");
    for path in goldens {
        let ns = Netns::new("golden");
        // A table berth does not own, which nothing here may touch.
        let (ok, _, err) = ns.nft(&["add", "table", "inet", "other"]);
        assert!(ok, "{err}");
        let (ok, _, err) = ns.nft(&["add", "chain", "inet", "other", "keep"]);
        assert!(ok, "{err}");

        let doc: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        let want = document_rules(&doc);
        for round in 1..=2 {
            ns.apply(&doc)
                .unwrap_or_else(|e| panic!("{} round {round}: {e}", path.display()));
            let got = listed_rules(&ns).expect("the table exists after apply");
            assert_eq!(got, want, "{} round {round}", path.display());
        }
        ns.apply(&Firewall::teardown("berth")).unwrap();
        assert!(listed_rules(&ns).is_none(), "{}: table left", path.display());
        // Tearing down an absent table succeeds too.
        ns.apply(&Firewall::teardown("berth")).unwrap();
        let (ok, out, err) = ns.nft(&["list", "chain", "inet", "other", "keep"]);
        assert!(ok, "the other table went with berth's: {out} {err}");
    }
}

#[test]
fn nfts_refusal_is_the_error_and_changes_nothing() {
    if !can_run("nfts_refusal_is_the_error_and_changes_nothing") {
        return;
    }
    let ns = Netns::new("refuse");
    let good = Firewall {
        networks: vec![bridge("berth0", "172.17.0.0/16")],
        ..Firewall::new("berth")
    };
    ns.apply(&good.document()).unwrap();
    let before = listed_rules(&ns).unwrap();
    // check() refuses this; nft does too, and the transaction leaves the old table as it was.
    let mixed = Firewall {
        ports: vec![PortRule {
            proto: Proto::Tcp,
            host_ip: Some("127.0.0.1".parse().unwrap()),
            host_port: 80,
            container_ip: IpAddr::V6(Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, 2)),
            container_port: 80,
            bridge: "berth0".into(),
        }],
        ..good
    };
    assert!(mixed.check().is_err());
    let err = ns.apply(&mixed.document()).unwrap_err().to_string();
    assert!(
        err.starts_with("nft -j -f /proc/self/fd/0: exit status: 1: "),
        "{err}"
    );
    assert!(err.contains("conflicting protocols"), "{err}");
    assert_eq!(listed_rules(&ns).unwrap(), before);
}

fn bridge(name: &str, subnet: &str) -> NetRules {
    NetRules {
        bridge: name.into(),
        subnet: subnet.parse().unwrap(),
        subnet6: None,
        internal: false,
        masquerade: true,
        icc: true,
    }
}

/// A TCP server on a thread inside a namespace (`[::]` takes IPv4 too): every client gets the
/// address it came from, as the server saw it. Stops when dropped (or after a minute).
struct Server {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Server {
    fn start(ns: &Netns, addr: &str) -> Server {
        let addr: SocketAddr = addr.parse().unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let (tx, rx) = std::sync::mpsc::channel();
        let thread = ns.spawn(move || {
            let listener = TcpListener::bind(addr).unwrap();
            listener.set_nonblocking(true).unwrap();
            tx.send(()).unwrap();
            let end = Instant::now() + Duration::from_secs(60);
            while !flag.load(Ordering::Relaxed) && Instant::now() < end {
                match listener.accept() {
                    Ok((mut conn, peer)) => {
                        let _ = conn.write_all(peer.ip().to_canonical().to_string().as_bytes());
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(5)),
                }
            }
        });
        rx.recv_timeout(Duration::from_secs(10))
            .expect("the server listens");
        Server {
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Connects from inside `ns`; the server's answer (the client address it saw), or the error.
fn connect(ns: &Netns, to: &str, timeout: Duration) -> Result<String, String> {
    let to: SocketAddr = to.parse().unwrap();
    ns.run(move || {
        let mut conn = TcpStream::connect_timeout(&to, timeout).map_err(|e| e.to_string())?;
        conn.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let mut answer = String::new();
        conn.read_to_string(&mut answer).map_err(|e| e.to_string())?;
        Ok(answer)
    })
}

/// Four namespaces: `host` holds the ruleset and is the router; `ctr` and `ctr2` play
/// containers on the bridge `bt0` (10.99.0.0/24, fd00:99::/64); `out` plays the world behind
/// the veth `ho0` (10.98.0.0/24, fd00:98::/64).
///
/// ```text
///   ctr  eth0 .2 ── veth1 ┐
///                         bt0 .1  host  .1 ho0 ── eth0 .2  out
///   ctr2 eth0 .3 ── veth2 ┘
/// ```
struct Topology {
    host: Netns,
    ctr: Netns,
    ctr2: Netns,
    out: Netns,
}

impl Topology {
    fn new() -> Topology {
        let t = Topology {
            host: Netns::new("host"),
            ctr: Netns::new("ctr"),
            ctr2: Netns::new("ctr2"),
            out: Netns::new("out"),
        };
        t.host.ip(&["link", "add", "bt0", "type", "bridge"]);
        t.host.ip(&["link", "set", "bt0", "up"]);
        let veth = |host_if: &str, peer: &Netns| {
            let mut args = vec!["link", "add", host_if, "type", "veth", "peer", "name", "eth0"];
            args.extend(["netns", &peer.name]);
            t.host.ip(&args);
            peer.ip(&["link", "set", "eth0", "up"]);
        };
        let addrs = |ns: &Netns, dev: &str, v4: &str, v6: &str| {
            ns.ip(&["addr", "add", v4, "dev", dev]);
            ns.ip(&["-6", "addr", "add", v6, "dev", dev, "nodad"]);
        };
        for (i, ctr) in [(2, &t.ctr), (3, &t.ctr2)] {
            let port = format!("veth{i}");
            veth(&port, ctr);
            t.host.ip(&["link", "set", &port, "master", "bt0", "up"]);
            // As the engine does: with br_netfilter, a DNATed packet back to the container it
            // came from is bridged out of the port it came in by.
            t.host
                .ip(&["link", "set", &port, "type", "bridge_slave", "hairpin", "on"]);
            addrs(
                ctr,
                "eth0",
                &format!("10.99.0.{i}/24"),
                &format!("fd00:99::{i}/64"),
            );
            ctr.ip(&["route", "add", "default", "via", "10.99.0.1"]);
            ctr.ip(&["-6", "route", "add", "default", "via", "fd00:99::1"]);
        }
        addrs(&t.host, "bt0", "10.99.0.1/24", "fd00:99::1/64");
        veth("ho0", &t.out);
        t.host.ip(&["link", "set", "ho0", "up"]);
        addrs(&t.host, "ho0", "10.98.0.1/24", "fd00:98::1/64");
        addrs(&t.out, "eth0", "10.98.0.2/24", "fd00:98::2/64");
        // Only for the isolation checks: `out` knows the way to the container subnet.
        t.out.ip(&["route", "add", "10.99.0.0/24", "via", "10.98.0.1"]);
        t.host.sysctl("net.ipv4.ip_forward", "1");
        t.host.sysctl("net.ipv6.conf.all.forwarding", "1");
        t.host.sysctl("net.ipv4.conf.bt0.route_localnet", "1");
        t
    }
}

fn published(container_ip: &str) -> PortRule {
    PortRule {
        proto: Proto::Tcp,
        host_ip: None,
        host_port: 8080,
        container_ip: container_ip.parse().unwrap(),
        container_port: 80,
        bridge: "bt0".into(),
    }
}

/// Hairpin: a container reaches its own published port through a host address, and so does its
/// neighbour on the bridge (whose answer would otherwise skip the host).
fn hairpin(t: &Topology, seen: &dyn Fn(&Netns, &str) -> String) {
    assert_eq!(seen(&t.ctr, "10.98.0.1:8080"), "10.99.0.1");
    assert_eq!(seen(&t.ctr, "[fd00:98::1]:8080"), "fd00:99::1");
    assert_eq!(seen(&t.ctr2, "10.98.0.1:8080"), "10.99.0.1");
    assert_eq!(seen(&t.ctr2, "[fd00:98::1]:8080"), "fd00:99::1");
}

#[test]
fn a_published_port_works_end_to_end() {
    if !can_run("a_published_port_works_end_to_end") {
        return;
    }
    let t = Topology::new();
    let fw = Firewall {
        networks: vec![NetRules {
            subnet6: Some("fd00:99::/64".parse().unwrap()),
            ..bridge("bt0", "10.99.0.0/24")
        }],
        ports: vec![published("10.99.0.2"), published("fd00:99::2")],
        forward_guard: true,
        forward_guard6: true,
        ..Firewall::new("berth")
    };
    fw.check().unwrap();
    t.host.apply(&fw.document()).unwrap();
    let _web = Server::start(&t.ctr, "[::]:80");
    let _world = Server::start(&t.out, "[::]:9000");
    let wait = Duration::from_secs(5);
    let seen = |from: &Netns, to: &str| {
        connect(from, to, wait).unwrap_or_else(|e| panic!("{} -> {to}: {e}", from.name))
    };

    // The host itself, on loopback: DNAT in output, out through bt0 with the loopback source
    // masqueraded to bt0's address.
    assert_eq!(seen(&t.host, "127.0.0.1:8080"), "10.99.0.1");
    // The host itself, on one of its addresses: the source stays that address.
    assert_eq!(seen(&t.host, "10.98.0.1:8080"), "10.98.0.1");
    assert_eq!(seen(&t.host, "[fd00:98::1]:8080"), "fd00:98::1");
    // From outside: DNAT in prerouting, forwarded (ct status dnat), the client's own address.
    assert_eq!(seen(&t.out, "10.98.0.1:8080"), "10.98.0.2");
    assert_eq!(seen(&t.out, "[fd00:98::1]:8080"), "fd00:98::2");
    hairpin(&t, &seen);
    // br_netfilter (when loaded) passes bridged frames through the IP hooks; the hairpin must
    // work with it and without it. The switch is per network namespace.
    let knob = "/proc/sys/net/bridge/bridge-nf-call-iptables";
    if t.host.run(move || Path::new(knob).exists()) {
        t.host.sysctl("net.bridge.bridge-nf-call-iptables", "0");
        t.host.sysctl("net.bridge.bridge-nf-call-ip6tables", "0");
        hairpin(&t, &seen);
    } else {
        println!("br_netfilter is not loaded: hairpin checked without it only");
    }
    // Outbound NAT: the world sees the host's address, not the container's.
    assert_eq!(seen(&t.ctr, "10.98.0.2:9000"), "10.98.0.1");
    assert_eq!(seen(&t.ctr, "[fd00:98::2]:9000"), "fd00:98::1");
    // Nothing else gets in: the container's address routed to directly is dropped.
    let short = Duration::from_millis(700);
    let direct = connect(&t.out, "10.99.0.2:80", short);
    assert!(direct.is_err(), "reached the container directly: {direct:?}");

    // Without the table, the port is gone (and the direct route works: the drop was ours).
    t.host.apply(&Firewall::teardown("berth")).unwrap();
    assert!(connect(&t.out, "10.98.0.1:8080", short).is_err());
    assert_eq!(seen(&t.out, "10.99.0.2:80"), "10.98.0.2");
}

#[test]
fn internal_networks_and_the_forward_guard_drop() {
    if !can_run("internal_networks_and_the_forward_guard_drop") {
        return;
    }
    let t = Topology::new();
    let _world = Server::start(&t.out, "[::]:9000");
    let _web = Server::start(&t.ctr, "[::]:80");
    let short = Duration::from_millis(700);
    let wait = Duration::from_secs(5);
    let internal = Firewall {
        networks: vec![NetRules {
            internal: true,
            ..bridge("bt0", "10.99.0.0/24")
        }],
        ..Firewall::new("berth")
    };
    t.host.apply(&internal.document()).unwrap();
    assert!(connect(&t.ctr, "10.98.0.2:9000", short).is_err());
    assert!(connect(&t.out, "10.99.0.2:80", short).is_err());

    // The guard: berth's only bridge here is br-none, so traffic from ho0 to bt0 touches no
    // berth bridge and is dropped; without the guard the same firewall lets it through.
    let guarded = Firewall {
        networks: vec![bridge("br-none", "10.97.0.0/24")],
        forward_guard: true,
        forward_guard6: true,
        ..Firewall::new("berth")
    };
    t.host.apply(&guarded.document()).unwrap();
    assert!(connect(&t.out, "10.99.0.2:80", short).is_err());
    let unguarded = Firewall {
        forward_guard: false,
        forward_guard6: false,
        ..guarded
    };
    t.host.apply(&unguarded.document()).unwrap();
    assert_eq!(connect(&t.out, "10.99.0.2:80", wait).unwrap(), "10.98.0.2");
}

#[test]
fn no_icc_drops_traffic_between_containers_of_a_bridge() {
    if !can_run("no_icc_drops_traffic_between_containers_of_a_bridge") {
        return;
    }
    let t = Topology::new();
    // Frames between two ports of a bridge reach the IP hooks only through br_netfilter (as
    // with docker, --icc=false needs it).
    let knob = "/proc/sys/net/bridge/bridge-nf-call-iptables";
    if !t.host.run(move || Path::new(knob).exists()) {
        println!("skipping no_icc_drops_traffic_between_containers_of_a_bridge: no br_netfilter");
        return;
    }
    t.host.sysctl("net.bridge.bridge-nf-call-iptables", "1");
    let _web = Server::start(&t.ctr, "[::]:80");
    let no_icc = Firewall {
        networks: vec![NetRules {
            icc: false,
            ..bridge("bt0", "10.99.0.0/24")
        }],
        ports: vec![published("10.99.0.2")],
        ..Firewall::new("berth")
    };
    t.host.apply(&no_icc.document()).unwrap();
    let direct = connect(&t.ctr2, "10.99.0.2:80", Duration::from_millis(700));
    assert!(direct.is_err(), "icc off, yet: {direct:?}");
    // A published port stays published to the neighbour too.
    let via_host = connect(&t.ctr2, "10.98.0.1:8080", Duration::from_secs(5));
    assert_eq!(via_host.unwrap(), "10.99.0.1");
    let icc = Firewall {
        networks: vec![bridge("bt0", "10.99.0.0/24")],
        ..no_icc
    };
    t.host.apply(&icc.document()).unwrap();
    let direct = connect(&t.ctr2, "10.99.0.2:80", Duration::from_secs(5));
    assert_eq!(direct.unwrap(), "10.99.0.3");
}
