//! Networks through berthd, end to end, with the unmodified docker CLI (and berth's own for some
//! flows): the default bridge (an address of the daemon's subnet, a server on the host side of the
//! bridge reached), published ports reached from the host on loopback, a port already taken
//! refused with nothing left, user-defined networks whose containers ping and resolve each other
//! by name and alias, connect and disconnect of a running container, berthd restarted with a
//! published port, berthd killed in the middle of a start, and at the end no veth, namespace file
//! or port rule left.
//!
//! Traffic goes only to 127.0.0.1 and to addresses of bridges and namespaces the test's own
//! daemon made. Each test's daemon has its own bridge, subnet and nftables table (see `Daemon`).

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::time::Duration;

use berth_e2e::daemon::*;

const IMAGE: &str = "e2e-net-busybox";

/// berthd with busybox imported, and a page for httpd at /www/index.html.
/// The daemon comes last so that it is dropped first, while its directory (whose records say
/// which bridges to delete) still exists.
fn setup() -> Option<(Tools, tempfile::TempDir, Daemon)> {
    let t = tools()?;
    if berth_e2e::which("nft").is_none() || berth_e2e::which("ip").is_none() {
        eprintln!("skipped: nft and ip are needed (apt-get install nftables iproute2)");
        return None;
    }
    let dir = tempfile::tempdir().unwrap();
    let d = Daemon::start(&t, dir.path());
    let tar = busybox_tar(dir.path());
    ok(
        &t,
        &d,
        &["import", "--change", "CMD [\"sh\"]", tar.to_str().unwrap(), IMAGE],
    );
    Some((t, dir, d))
}

/// An HTTP GET of `/` on 127.0.0.1:`port`, the body.
fn get(port: u16) -> String {
    get_from(std::net::SocketAddr::from(([127, 0, 0, 1], port)))
}

/// An HTTP GET of `/` on `addr`, the body.
fn get_from(addr: std::net::SocketAddr) -> String {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(s, "GET / HTTP/1.0\r\nHost: x\r\n\r\n").unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    out.split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or(out)
}

/// Starts busybox httpd serving `text` on port 80 of a detached container; its name.
fn web(t: &Tools, d: &Daemon, name: &str, text: &str, extra: &[&str]) -> String {
    let mut args = vec!["run", "-d", "--name", name];
    args.extend_from_slice(extra);
    let script = format!("mkdir -p /www && echo {text} > /www/index.html && exec httpd -f -p 80 -h /www");
    args.extend_from_slice(&[IMAGE, "sh", "-c", &script]);
    ok(t, d, &args);
    name.to_string()
}

fn published(t: &Tools, d: &Daemon, name: &str, port: &str) -> u16 {
    let line = ok(t, d, &["port", name, port]);
    let first = line.lines().next().unwrap_or_default();
    first
        .rsplit(':')
        .next()
        .and_then(|p| p.trim().parse().ok())
        .unwrap_or_else(|| panic!("no published port in {line:?}"))
}

/// The ports of bridge `b` (its veths), from sysfs.
fn bridge_ports(b: &str) -> Vec<String> {
    std::fs::read_dir(format!("/sys/class/net/{b}/brif"))
        .map(|rd| {
            rd.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default()
}

fn netns_files(d: &Daemon) -> usize {
    std::fs::read_dir(d.dir.join("exec/netns"))
        .map(|rd| rd.count())
        .unwrap_or(0)
}

fn port_rules(d: &Daemon) -> String {
    let o = std::process::Command::new("nft")
        .args(["list", "chain", "inet", &d.net, "ports"])
        .output()
        .unwrap();
    String::from_utf8_lossy(&o.stdout)
        .lines()
        .filter(|l| l.contains("dnat"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Nothing of a container is left: no veth on the daemon's bridges, no namespace file, no rule.
fn nothing_left(d: &Daemon) {
    wait_for("the interfaces to go", Duration::from_secs(10), || {
        d.bridges().iter().all(|b| bridge_ports(b).is_empty()) && netns_files(d) == 0
    });
    assert_eq!(port_rules(d), "", "port rules left");
}

#[test]
fn the_default_bridge_gives_an_address_and_reaches_the_host_side() {
    let Some((t, _dir, d)) = setup() else { return };
    let _c = Cleanup::new(&t, &d);
    // A server on the host side of the bridge (the daemon's own gateway address).
    let gw = d.gateway().to_string();
    let l = TcpListener::bind((gw.as_str(), 0)).unwrap();
    let port = l.local_addr().unwrap().port();
    let server = std::thread::spawn(move || {
        let (mut s, _) = l.accept().unwrap();
        let mut buf = [0u8; 1024];
        let _ = s.read(&mut buf).unwrap();
        s.write_all(b"HTTP/1.0 200 OK\r\nContent-Length: 11\r\n\r\nhost-side\r\n")
            .unwrap();
    });
    let prefix = gw.rsplit_once('.').unwrap().0.to_string();
    let script = format!(
        "ip -4 -o addr show eth0; ip route; wget -qO- http://{gw}:{port}/; cat /etc/hosts; cat /etc/resolv.conf"
    );
    let out = ok(
        &t,
        &d,
        &[
            "run",
            "--rm",
            "--add-host",
            "db.lan:10.1.2.3",
            "--add-host",
            "gw:host-gateway",
            "--dns",
            "10.9.9.9",
            "--dns-search",
            "lan",
            IMAGE,
            "sh",
            "-c",
            &script,
        ],
    );
    assert!(out.contains("10.1.2.3\tdb.lan\n"), "{out}");
    assert!(out.contains(&format!("{gw}\tgw\n")), "{out}");
    assert!(out.contains("nameserver 10.9.9.9\nsearch lan\n"), "{out}");
    server.join().unwrap();
    assert!(out.contains(&format!("inet {prefix}.")), "{out}");
    assert!(out.contains(&format!("default via {gw} dev eth0")), "{out}");
    assert!(out.contains("host-side"), "{out}");
    assert!(
        !out.contains("nameserver 127.0.0.11"),
        "the default bridge has no embedded DNS: {out}"
    );
    // inspect while running: the address, gateway and MAC as docker shows them.
    ok(&t, &d, &["run", "-d", "--name", "idle", IMAGE, "sleep", "300"]);
    let ip = ok(&t, &d, &["inspect", "-f", "{{.NetworkSettings.IPAddress}} {{.NetworkSettings.Gateway}} {{.NetworkSettings.Networks.bridge.MacAddress}}", "idle"]);
    let f: Vec<&str> = ip.split_whitespace().collect();
    assert_eq!(f.len(), 3, "{ip}");
    assert!(f[0].starts_with(&format!("{prefix}.")), "{ip}");
    assert_eq!(f[1], gw);
    assert!(f[2].starts_with("02:42:"), "{ip}");
    let bridged = ok(
        &t,
        &d,
        &["network", "inspect", "-f", "{{len .Containers}}", "bridge"],
    );
    assert_eq!(bridged.trim(), "1");
    ok(&t, &d, &["rm", "-f", "idle"]);
    nothing_left(&d);
    assert_eq!(
        ok(
            &t,
            &d,
            &["network", "inspect", "-f", "{{len .Containers}}", "bridge"]
        )
        .trim(),
        "0"
    );
}

#[test]
fn published_ports_are_reached_from_the_host_and_a_taken_port_is_refused() {
    let Some((t, _dir, d)) = setup() else { return };
    let _c = Cleanup::new(&t, &d);
    let fixed = free_port();
    web(&t, &d, "w1", "page-one", &["-p", &format!("{fixed}:80")]);
    web(
        &t,
        &d,
        "w2",
        "page-two",
        &["-p", "127.0.0.1::80", "--expose", "443"],
    );
    let auto = published(&t, &d, "w2", "80");
    // Both on loopback: a fixed port on every address, a free one on 127.0.0.1.
    wait_for("httpd", Duration::from_secs(10), || {
        TcpStream::connect(("127.0.0.1", fixed)).is_ok_and(|_| get(fixed).contains("page-one"))
    });
    assert_eq!(get(auto).trim(), "page-two");
    assert_eq!(
        ok(&t, &d, &["port", "w1"]).trim(),
        format!("80/tcp -> 0.0.0.0:{fixed}")
    );
    let ps = ok(
        &t,
        &d,
        &["ps", "--format", "{{.Names}} {{.Ports}}", "--filter", "name=w2"],
    );
    // docker's CLI lists unpublished ports before mappings to another port number.
    assert_eq!(ps.trim(), format!("w2 443/tcp, 127.0.0.1:{auto}->80/tcp"));
    // One container reaches another's published port through the host's address (hairpin on the bridge).
    let gw = d.gateway().to_string();
    let via = ok(
        &t,
        &d,
        &["exec", "w2", "wget", "-qO-", &format!("http://{gw}:{fixed}/")],
    );
    assert_eq!(via.trim(), "page-one");
    // A port someone else holds: docker's message, no container left running, no rule.
    let holder = TcpListener::bind(("127.0.0.1", 0)).unwrap();
    let busy = holder.local_addr().unwrap().port();
    let (c, _, err) = code(
        &t,
        &d,
        &[
            "run",
            "-d",
            "--name",
            "w3",
            "-p",
            &format!("127.0.0.1:{busy}:80"),
            IMAGE,
            "sleep",
            "100",
        ],
    );
    assert_ne!(c, 0);
    assert!(err.contains("address already in use"), "{err}");
    assert!(
        !port_rules(&d).contains(&format!("dport {busy} ")),
        "{}",
        port_rules(&d)
    );
    // Another container asking a port one of ours has: dockerd's "already allocated".
    let (c, _, err) = code(
        &t,
        &d,
        &[
            "run",
            "-d",
            "--name",
            "w4",
            "-p",
            &format!("{fixed}:80"),
            IMAGE,
            "sleep",
            "100",
        ],
    );
    assert_ne!(c, 0);
    assert!(err.contains("port is already allocated"), "{err}");
    drop(holder);
    // A bad spec is the CLI's error.
    let (c, _, err) = code(&t, &d, &["run", "--rm", "-p", "80:99999", IMAGE, "true"]);
    assert_eq!(c, 125, "{err}");
    // -P: the exposed ports on free host ports.
    ok(
        &t,
        &d,
        &[
            "run",
            "-d",
            "--name",
            "w5",
            "-P",
            "--expose",
            "80",
            IMAGE,
            "sh",
            "-c",
            "echo all > /i.html && exec httpd -f -p 80 -h /",
        ],
    );
    let p5 = published(&t, &d, "w5", "80/tcp");
    wait_for("httpd -P", Duration::from_secs(10), || {
        TcpStream::connect(("127.0.0.1", p5)).is_ok()
    });
    // ps's filters: a published host port, an exposed container port.
    let names = |filter: &str| ok(&t, &d, &["ps", "--filter", filter, "--format", "{{.Names}}"]);
    assert_eq!(names(&format!("publish={p5}/tcp")), "w5\n");
    assert_eq!(names(&format!("publish={p5}/udp")), "");
    assert!(names("expose=80").contains("w5"), "{}", names("expose=80"));
    for n in ["w1", "w2", "w3", "w4", "w5"] {
        let _ = run_cli(&t.docker, &d, &["rm", "-f", n]);
    }
    nothing_left(&d);
    assert!(
        TcpStream::connect(("127.0.0.1", fixed)).is_err(),
        "the port is released"
    );
}

#[test]
fn user_networks_resolve_names_and_connect_running_containers() {
    let Some((t, _dir, d)) = setup() else { return };
    let _c = Cleanup::new(&t, &d);
    let b = berth_e2e::built_in("debug", "berth");
    // The subnet: a /24 next to the daemon's own bridge one.
    let base = d.gateway().rsplit_once('.').unwrap().0.to_string();
    let (a, bb) = base.rsplit_once('.').unwrap();
    let subnet = format!("{a}.{}.0/24", (bb.parse::<u32>().unwrap() + 128) % 256);
    let net = ok(
        &t,
        &d,
        &[
            "network", "create", "--subnet", &subnet, "--label", "e2e=1", "e2enet",
        ],
    )
    .trim()
    .to_string();
    assert_eq!(net.len(), 64);
    let (c, _, err) = code(&t, &d, &["network", "create", "--subnet", &subnet, "clash"]);
    assert_ne!(c, 0);
    assert!(
        err.contains("Pool overlaps with other one on this address space"),
        "{err}"
    );
    ok(
        &t,
        &d,
        &[
            "run",
            "-d",
            "--name",
            "db",
            "--network",
            "e2enet",
            "--network-alias",
            "database",
            IMAGE,
            "sleep",
            "300",
        ],
    );
    // By name, by alias, through the embedded DNS; ping works; the resolver is 127.0.0.11.
    let out = ok(
        &t,
        &d,
        &[
            "run",
            "--rm",
            "--network",
            "e2enet",
            IMAGE,
            "sh",
            "-c",
            "httpd -p 0.0.0.0:53 -h / && echo own-53; cat /etc/resolv.conf; nslookup database 127.0.0.11; ping -c1 -W2 db",
        ],
    );
    assert!(out.contains("nameserver 127.0.0.11"), "{out}");
    // Port 53 of the container's own addresses stays free for a server of its own (the embedded
    // DNS is reached through a redirection, as docker's).
    assert!(out.contains("own-53"), "{out}");
    let db_ip = ok(
        &t,
        &d,
        &[
            "inspect",
            "-f",
            "{{.NetworkSettings.Networks.e2enet.IPAddress}}",
            "db",
        ],
    )
    .trim()
    .to_string();
    assert!(out.contains(&format!("Address: {db_ip}")), "{out}");
    assert!(out.contains("1 packets received"), "{out}");
    // The same through berth's CLI, with a fixed address.
    let fixed = format!("{}.77", subnet.rsplit_once('.').unwrap().0);
    let out = ok_with(
        &b,
        &d,
        &[
            "run",
            "--rm",
            "--network",
            "e2enet",
            "--ip",
            &fixed,
            IMAGE,
            "sh",
            "-c",
            "ip -4 -o addr show eth0; ping -c1 -W2 database",
        ],
    );
    assert!(out.contains(&format!("inet {fixed}/24")), "{out}");
    assert!(out.contains("1 packets received"), "{out}");
    // Another container's namespace: the same interface and address.
    let out = ok(
        &t,
        &d,
        &[
            "run",
            "--rm",
            "--network",
            "container:db",
            IMAGE,
            "ip",
            "-4",
            "-o",
            "addr",
            "show",
            "eth0",
        ],
    );
    assert!(out.contains(&format!("inet {db_ip}/24")), "{out}");
    // The default bridge does not resolve container names.
    let (c, _, _) = code(&t, &d, &["run", "--rm", IMAGE, "nslookup", "db"]);
    assert_ne!(c, 0);
    // A running container on the default bridge connected to the network, then disconnected.
    ok(&t, &d, &["run", "-d", "--name", "app", IMAGE, "sleep", "300"]);
    ok(
        &t,
        &d,
        &["network", "connect", "--alias", "application", "e2enet", "app"],
    );
    let ifs = ok(&t, &d, &["exec", "app", "ls", "/sys/class/net"]);
    assert_eq!(ifs, "eth0\neth1\nlo\n");
    let out = ok(&t, &d, &["exec", "db", "ping", "-c1", "-W2", "application"]);
    assert!(out.contains("1 packets received"), "{out}");
    // Its first user-defined network gives it the embedded DNS: it finds the others by name.
    let out = ok(
        &t,
        &d,
        &[
            "exec",
            "app",
            "sh",
            "-c",
            "cat /etc/resolv.conf; ping -c1 -W2 database",
        ],
    );
    assert!(out.contains("nameserver 127.0.0.11"), "{out}");
    assert!(out.contains("1 packets received"), "{out}");
    assert_eq!(
        ok(
            &t,
            &d,
            &["network", "inspect", "-f", "{{len .Containers}}", "e2enet"]
        )
        .trim(),
        "2"
    );
    // ps --filter network: by name and by ID prefix.
    for f in ["network=e2enet".to_string(), format!("network={}", &net[..10])] {
        let mut on: Vec<String> = ok(&t, &d, &["ps", "--filter", &f, "--format", "{{.Names}}"])
            .lines()
            .map(String::from)
            .collect();
        on.sort();
        assert_eq!(on, ["app", "db"], "{f}");
    }
    let (c, _, err) = code(&t, &d, &["network", "rm", "e2enet"]);
    assert_ne!(c, 0);
    assert!(err.contains("has active endpoints"), "{err}");
    ok(&t, &d, &["network", "disconnect", "e2enet", "app"]);
    assert_eq!(ok(&t, &d, &["exec", "app", "ls", "/sys/class/net"]), "eth0\nlo\n");
    let ls = ok_with(
        &b,
        &d,
        &[
            "network",
            "ls",
            "--filter",
            "label=e2e=1",
            "--format",
            "{{.Name}} {{.Driver}}",
        ],
    );
    assert_eq!(ls.trim(), "e2enet bridge");
    for n in ["db", "app"] {
        ok(&t, &d, &["rm", "-f", n]);
    }
    ok(&t, &d, &["network", "rm", "e2enet"]);
    assert!(
        !Path::new(&format!("/sys/class/net/br-{}", &net[..12])).exists(),
        "the bridge is gone"
    );
    nothing_left(&d);
}

#[test]
fn published_ports_survive_a_daemon_restart_and_go_with_the_container() {
    let Some((t, _dir, mut d)) = setup() else { return };
    let _c = Cleanup::new(&t, &d);
    let port = free_port();
    web(
        &t,
        &d,
        "keep",
        "still-here",
        &["-p", &format!("127.0.0.1:{port}:80")],
    );
    wait_for("httpd", Duration::from_secs(10), || {
        TcpStream::connect(("127.0.0.1", port)).is_ok_and(|_| get(port).contains("still-here"))
    });
    d.restart();
    assert_eq!(get(port).trim(), "still-here");
    assert_eq!(
        ok(&t, &d, &["port", "keep", "80"]).trim(),
        format!("127.0.0.1:{port}")
    );
    // While berthd is away the container ends: on the next start its address and port are freed.
    let pid = ok(&t, &d, &["inspect", "-f", "{{.State.Pid}}", "keep"])
        .trim()
        .to_string();
    d.proc.kill();
    let _ = std::process::Command::new("kill").args(["-KILL", &pid]).status();
    d.restart();
    wait_for("the end to be noticed", Duration::from_secs(20), || {
        ok(&t, &d, &["inspect", "-f", "{{.State.Running}}", "keep"]).trim() == "false"
    });
    nothing_left(&d);
    ok(&t, &d, &["rm", "keep"]);
}

#[test]
fn ipv6_user_networks_give_both_families() {
    let Some((t, _dir, mut d)) = setup() else { return };
    let _c = Cleanup::new(&t, &d);
    // Subnets of this daemon's own: 10.X.(Y+32).0/24 and fd0b:X:Y::/64.
    let base = d.gateway().rsplit_once('.').unwrap().0.to_string();
    let (a, b) = base.rsplit_once('.').unwrap();
    let subnet = format!("{a}.{}.0/24", (b.parse::<u32>().unwrap() + 32) % 256);
    let x = a.rsplit('.').next().unwrap();
    // (Y+1: no zero group, so that the addresses below are written as the kernel writes them.)
    let y1 = b.parse::<u32>().unwrap() + 1;
    let prefix6 = format!("fd0b:{x}:{y1}:");
    let subnet6 = format!("{prefix6}:/64");
    ok(
        &t,
        &d,
        &[
            "network", "create", "--ipv6", "--subnet", &subnet, "--subnet", &subnet6, "six",
        ],
    );
    assert_eq!(
        ok(&t, &d, &["network", "inspect", "-f", "{{.EnableIPv6}}", "six"]).trim(),
        "true"
    );
    let fixed = format!("{prefix6}:a6");
    ok(
        &t,
        &d,
        &[
            "run",
            "-d",
            "--name",
            "a6",
            "--network",
            "six",
            "--ip6",
            &fixed,
            IMAGE,
            "sleep",
            "300",
        ],
    );
    assert_eq!(
        ok(
            &t,
            &d,
            &[
                "inspect",
                "-f",
                "{{.NetworkSettings.Networks.six.GlobalIPv6Address}}",
                "a6"
            ]
        )
        .trim(),
        fixed
    );
    // Another container: its own IPv6 address, the first one by name (AAAA from the embedded
    // DNS) and the gateway on the bridge.
    let script = format!(
        "ip -6 -o addr show eth0 scope global; ping -6 -c1 -W2 a6; ping -c1 -W2 {prefix6}:1; grep {prefix6} /etc/hosts"
    );
    let out = ok(
        &t,
        &d,
        &["run", "--rm", "--network", "six", IMAGE, "sh", "-c", &script],
    );
    assert!(
        out.contains(&format!("inet6 {prefix6}:1:")) || out.contains(&format!("inet6 {prefix6}:2/64")),
        "{out}"
    );
    assert_eq!(out.matches("1 packets received").count(), 2, "{out}");
    assert!(out.contains(&format!("PING a6 ({fixed})")), "{out}");
    // The host reaches the container through the bridge's IPv6 address.
    let ping = std::process::Command::new("/bin/busybox")
        .args(["ping", "-6", "-c1", "-W2", &fixed])
        .output()
        .unwrap();
    assert!(ping.status.success(), "{}", String::from_utf8_lossy(&ping.stdout));
    // A published port without a host address: on IPv4 and IPv6 alike (the same port), reached
    // over IPv6 at the bridge's address (a local address of the host).
    let port = free_port();
    web(
        &t,
        &d,
        "w6",
        "over-six",
        &["--network", "six", "-p", &format!("{port}:80")],
    );
    let shown = ok(&t, &d, &["port", "w6", "80"]);
    assert_eq!(shown, format!("0.0.0.0:{port}\n[::]:{port}\n"));
    let gw6: std::net::Ipv6Addr = format!("{prefix6}:1").parse().unwrap();
    let at6 = std::net::SocketAddr::from((gw6, port));
    wait_for("httpd over IPv6", Duration::from_secs(10), || {
        TcpStream::connect(at6).is_ok_and(|_| get_from(at6).contains("over-six"))
    });
    assert_eq!(get(port).trim(), "over-six");
    ok(&t, &d, &["rm", "-f", "w6"]);
    // The default bridge with IPv6 (daemon.json's ipv6 and fixed-cidr-v6): an address from it.
    d.args = vec![
        "--ipv6".into(),
        "--fixed-cidr-v6".into(),
        format!("fd0c:{x}:{y1}::/64"),
    ];
    d.restart();
    // The running container's embedded DNS came back with berthd (new sockets, the redirection
    // in its namespace written again).
    let out = ok(&t, &d, &["exec", "a6", "nslookup", "a6"]);
    assert!(out.contains(&fixed), "{out}");
    let out = ok(
        &t,
        &d,
        &[
            "run", "--rm", IMAGE, "ip", "-6", "-o", "addr", "show", "eth0", "scope", "global",
        ],
    );
    assert!(out.contains(&format!("inet6 fd0c:{x}:{y1}::")), "{out}");
    let bridge6 = ok(&t, &d, &["network", "inspect", "-f", "{{.EnableIPv6}}", "bridge"]);
    assert_eq!(bridge6.trim(), "true");
    // --ip6 on the default bridge is refused, as dockerd refuses it.
    let (c, _, err) = code(&t, &d, &["run", "--rm", "--ip6", &fixed, IMAGE, "true"]);
    assert_ne!(c, 0);
    assert!(
        err.contains("user specified IP address is supported on user defined networks only"),
        "{err}"
    );
    ok(&t, &d, &["rm", "-f", "a6"]);
    ok(&t, &d, &["network", "rm", "six"]);
    nothing_left(&d);
}

/// PIDs of processes whose command line names `id` (a container's shim does).
fn processes_naming(id: &str) -> Vec<String> {
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter(|e| {
            e.file_name()
                .to_string_lossy()
                .bytes()
                .all(|b| b.is_ascii_digit())
        })
        .filter(|e| {
            std::fs::read(e.path().join("cmdline")).is_ok_and(|c| String::from_utf8_lossy(&c).contains(id))
        })
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect()
}

#[test]
fn a_daemon_killed_in_the_middle_of_a_start_leaves_nothing_behind() {
    let Some((t, _dir, mut d)) = setup() else { return };
    let _c = Cleanup::new(&t, &d);
    // A user network with a subnet of our own, so that an address can be asked for again.
    let base = d.gateway().rsplit_once('.').unwrap().0.to_string();
    let (a, b) = base.rsplit_once('.').unwrap();
    let prefix = format!("{a}.{}", (b.parse::<u32>().unwrap() + 64) % 256);
    ok(
        &t,
        &d,
        &[
            "network",
            "create",
            "--subnet",
            &format!("{prefix}.0/24"),
            "crashnet",
        ],
    );
    let ip = format!("{prefix}.9");
    for (i, point) in ["network-attached", "container-created"].iter().enumerate() {
        // berthd dies (SIGKILL) with the container's interface, address and port rule made, then
        // again with the container created and waiting to start as well.
        d.restart_with(&[("BERTHD_CRASH_AT", point)]);
        let name = format!("crash{i}");
        let port = free_port();
        let publish = format!("127.0.0.1:{port}:80");
        let run = |d: &Daemon, name: &str| {
            code(
                &t,
                d,
                &[
                    "run",
                    "-d",
                    "--name",
                    name,
                    "--network",
                    "crashnet",
                    "--ip",
                    &ip,
                    "-p",
                    &publish,
                    IMAGE,
                    "sleep",
                    "300",
                ],
            )
        };
        assert_ne!(run(&d, &name).0, 0, "berthd was to die at {point}");
        d.restart();
        let id = ok(&t, &d, &["inspect", "-f", "{{.Id}}", &name])
            .trim()
            .to_string();
        assert_eq!(
            ok(&t, &d, &["inspect", "-f", "{{.State.Running}}", &name]).trim(),
            "false"
        );
        // No veth, namespace file, port rule, held port, runtime container or shim is left.
        nothing_left(&d);
        assert!(
            TcpListener::bind(("127.0.0.1", port)).is_ok(),
            "port {port} still held after a crash at {point}"
        );
        assert!(
            !d.dir.join("exec/runtime").join(&id).exists(),
            "the runtime's container is left after a crash at {point}"
        );
        wait_for("the shim to end", Duration::from_secs(10), || {
            processes_naming(&id).is_empty()
        });
        // The address and the port were given back: another container gets both.
        let other = format!("other{i}");
        let (c, _, err) = run(&d, &other);
        assert_eq!(c, 0, "after a crash at {point}: {err}");
        assert_eq!(
            ok(&t, &d, &["port", &other, "80"]).trim(),
            format!("127.0.0.1:{port}")
        );
        ok(&t, &d, &["rm", "-f", &other]);
        // And the crashed container starts again as it was asked.
        ok(&t, &d, &["start", &name]);
        assert_eq!(
            ok(
                &t,
                &d,
                &[
                    "inspect",
                    "-f",
                    "{{.NetworkSettings.Networks.crashnet.IPAddress}}",
                    &name
                ]
            )
            .trim(),
            ip
        );
        ok(&t, &d, &["rm", "-f", &name]);
        nothing_left(&d);
    }
    ok(&t, &d, &["network", "rm", "crashnet"]);
}
