//! Root tier: the rtnetlink client and namespace files against the kernel. Every test works in a
//! private network namespace of its own (a thread that unshares one), plus namespaces it makes with
//! `netns::create` under a temp dir, removed by a guard even when the test fails: the host's links,
//! addresses and routes are never touched. Skips with a notice when not root or when the machine
//! cannot unshare a network namespace.

use std::fs::File;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, UdpSocket};
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};
use std::thread;
use std::time::Duration;

use berth_network::link::{self, Netlink};
use berth_network::{netns, sysctl};
use nix::sched::{unshare, CloneFlags};

/// Runs `f` on a thread in a new network namespace of its own, which goes away with the thread
/// (and every link in it, the host side of a veth pair taking its peer along). None when skipped.
fn in_private_netns<T: Send + 'static>(
    test: &'static str,
    f: impl FnOnce() -> T + Send + 'static,
) -> Option<T> {
    if !nix::unistd::geteuid().is_root() {
        eprintln!("skipping {test}: needs root");
        return None;
    }
    let handle = thread::spawn(move || match unshare(CloneFlags::CLONE_NEWNET) {
        Ok(()) => Some(f()),
        Err(e) => {
            eprintln!("skipping {test}: cannot unshare a network namespace: {e}");
            None
        }
    });
    match handle.join() {
        Ok(v) => v,
        Err(panic) => std::panic::resume_unwind(panic),
    }
}

/// A namespace file made by `netns::create`, removed on drop.
struct NsFile(PathBuf);

impl NsFile {
    fn create(path: PathBuf) -> NsFile {
        netns::create(&path).unwrap();
        NsFile(path)
    }
}

impl Drop for NsFile {
    fn drop(&mut self) {
        if let Err(e) = netns::remove(&self.0) {
            eprintln!("cleanup: {e}");
        }
    }
}

fn mounted(path: &Path) -> bool {
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    let target = path.to_str().unwrap();
    mountinfo.lines().any(|l| l.split(' ').nth(4) == Some(target))
}

const BRIDGE_IP: Ipv4Addr = Ipv4Addr::new(10, 88, 0, 1);
const PEER_IP: Ipv4Addr = Ipv4Addr::new(10, 88, 0, 2);
const BRIDGE_IP6: Ipv6Addr = Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, 1);
const PEER_IP6: Ipv6Addr = Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, 2);

/// The host side: a bridge with the gateway addresses and the veth's host end on it, hairpin on.
fn host_side(nl: &mut Netlink, ns: &Path) -> (u32, u32) {
    let br = nl.create_bridge("br-test", Some(1400)).unwrap();
    let again = nl.create_bridge("br-test", None).unwrap_err();
    assert_eq!(again.kind(), io::ErrorKind::AlreadyExists, "{again}");
    let ns_file = File::open(ns).unwrap();
    nl.create_veth("vh-test", "vp-test", Some(ns_file.as_fd()), Some(1400))
        .unwrap();
    let vh = nl.index("vh-test").unwrap().expect("host end");
    assert_eq!(
        nl.index("vp-test").unwrap(),
        None,
        "the peer was made in the other namespace"
    );
    nl.set_master(vh, br).unwrap();
    assert_eq!(nl.hairpin(vh).unwrap(), Some(false));
    nl.set_hairpin(vh, true).unwrap();
    assert_eq!(nl.hairpin(vh).unwrap(), Some(true));
    assert_eq!(nl.hairpin(br).unwrap(), None, "a bridge is no port");
    nl.add_address(br, BRIDGE_IP.into(), 24).unwrap();
    nl.add_address(br, BRIDGE_IP6.into(), 64).unwrap();
    nl.set_up(vh).unwrap();
    nl.set_up(br).unwrap();
    (br, vh)
}

/// The container side, seen through a socket opened in its namespace: eth0 named, addressed, up.
fn container_side(ns: &Path) -> u32 {
    let mut nl = Netlink::open_in(ns).unwrap();
    let peer = nl.index("vp-test").unwrap().expect("the peer in its namespace");
    nl.rename(peer, "eth0").unwrap();
    nl.set_mac(peer, link::mac_for(PEER_IP)).unwrap();
    nl.set_mtu(peer, 1380).unwrap();
    nl.add_address(peer, PEER_IP.into(), 24).unwrap();
    nl.add_address(peer, PEER_IP6.into(), 64).unwrap();
    nl.set_up(peer).unwrap();
    nl.add_default_route(BRIDGE_IP.into(), peer).unwrap();
    nl.add_default_route(BRIDGE_IP6.into(), peer).unwrap();
    peer
}

/// A datagram from `from` (bound in this thread's namespace) to a socket bound at `to` inside
/// `ns`, and the answer back.
fn udp_round_trip(ns: &Path, from: IpAddr, to: IpAddr) {
    let server = netns::run_in(ns, move || UdpSocket::bind(SocketAddr::new(to, 0)))
        .unwrap()
        .unwrap();
    let client = UdpSocket::bind(SocketAddr::new(from, 0)).unwrap();
    for s in [&server, &client] {
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    }
    client.send_to(b"ping", server.local_addr().unwrap()).unwrap();
    let mut buf = [0u8; 16];
    let (n, sender) = server.recv_from(&mut buf).unwrap();
    assert_eq!((&buf[..n], sender), (&b"ping"[..], client.local_addr().unwrap()));
    server.send_to(b"pong", sender).unwrap();
    let (n, _) = client.recv_from(&mut buf).unwrap();
    assert_eq!(&buf[..n], b"pong");
}

#[test]
fn a_container_interface_from_bridge_to_eth0() {
    in_private_netns("a_container_interface_from_bridge_to_eth0", || {
        let dir = tempfile::tempdir().unwrap();
        let ns = NsFile::create(dir.path().join("ctr"));
        let mut nl = Netlink::open().unwrap();
        let (br, vh) = host_side(&mut nl, &ns.0);
        let eth0 = container_side(&ns.0);

        let links = nl.links().unwrap();
        let bridge = links.iter().find(|l| l.index == br).unwrap();
        assert_eq!(
            (
                bridge.name.as_str(),
                bridge.kind.as_deref(),
                bridge.mtu,
                bridge.up
            ),
            ("br-test", Some("bridge"), 1400, true)
        );
        let host_end = links.iter().find(|l| l.index == vh).unwrap();
        assert_eq!(
            (host_end.kind.as_deref(), host_end.master, host_end.up),
            (Some("veth"), Some(br), true)
        );
        let addrs = nl.addresses(br).unwrap();
        assert!(
            addrs.contains(&(BRIDGE_IP.into(), 24)) && addrs.contains(&(BRIDGE_IP6.into(), 64)),
            "{addrs:?}"
        );

        let mut inside = Netlink::open_in(&ns.0).unwrap();
        assert_eq!(inside.index("eth0").unwrap(), Some(eth0));
        let seen = inside.link(eth0).unwrap().unwrap();
        assert_eq!(
            seen.mac.map(|m| link::mac_string(&m)).as_deref(),
            Some("02:42:0a:58:00:02")
        );
        assert_eq!(
            (seen.mtu, seen.up, seen.kind.as_deref()),
            (1380, true, Some("veth"))
        );
        let lo = inside
            .links()
            .unwrap()
            .into_iter()
            .find(|l| l.name == "lo")
            .unwrap();
        assert!(lo.up, "netns::create brings lo up");
        let addrs = inside.addresses(eth0).unwrap();
        assert!(
            addrs.contains(&(PEER_IP.into(), 24)) && addrs.contains(&(PEER_IP6.into(), 64)),
            "{addrs:?}"
        );

        // The default route: a destination outside the subnet is reached through eth0 (a UDP
        // connect picks the route and sends nothing).
        let src = netns::run_in(&ns.0, || {
            let s = UdpSocket::bind("0.0.0.0:0")?;
            s.connect("192.0.2.1:9")?;
            s.local_addr()
        });
        assert_eq!(src.unwrap().unwrap().ip(), IpAddr::from(PEER_IP));

        udp_round_trip(&ns.0, BRIDGE_IP.into(), PEER_IP.into());
        udp_round_trip(&ns.0, BRIDGE_IP6.into(), PEER_IP6.into());

        // Deleting the host end takes the peer along; a second delete is NotFound.
        nl.delete(vh).unwrap();
        assert_eq!(inside.index("eth0").unwrap(), None);
        assert_eq!(nl.delete(vh).unwrap_err().kind(), io::ErrorKind::NotFound);
        nl.set_down(br).unwrap();
        assert!(!nl.link(br).unwrap().unwrap().up);
        nl.delete(br).unwrap();
        assert_eq!(nl.link(br).unwrap(), None);
    });
}

#[test]
fn namespace_files_are_made_entered_and_removed() {
    in_private_netns("namespace_files_are_made_entered_and_removed", || {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ns");
        let ns = NsFile::create(path.clone());
        assert!(mounted(&path));
        let again = netns::create(&path).unwrap_err();
        assert_eq!(again.kind(), io::ErrorKind::AlreadyExists, "{again}");
        assert!(
            mounted(&path),
            "a failed create leaves the existing namespace alone"
        );

        // A new namespace has lo only; its sysctls are its own.
        let names = netns::run_in(&path, || Netlink::open()?.links())
            .unwrap()
            .unwrap();
        assert_eq!(names.iter().map(|l| l.name.as_str()).collect::<Vec<_>>(), ["lo"]);
        const KEY: &str = "net.ipv4.ip_unprivileged_port_start";
        let own = sysctl::get(KEY).unwrap();
        let other = if own == "1000" { "1001" } else { "1000" };
        netns::run_in(&path, move || sysctl::set(KEY, other))
            .unwrap()
            .unwrap();
        assert_eq!(netns::run_in(&path, || sysctl::get(KEY)).unwrap().unwrap(), other);
        assert_eq!(
            sysctl::get(KEY).unwrap(),
            own,
            "the test's own namespace is untouched"
        );

        netns::remove(&path).unwrap();
        assert!(!mounted(&path) && !path.exists());
        netns::remove(&path).unwrap();
        drop(ns);
        let missing = netns::run_in(&path, || ()).unwrap_err();
        assert_eq!(missing.kind(), io::ErrorKind::NotFound);
        assert!(Netlink::open_in(&path).is_err());
        let not_a_netns = netns::run_in(dir.path(), || ()).unwrap_err();
        assert!(
            not_a_netns.to_string().starts_with("enter netns "),
            "{not_a_netns}"
        );
    });
}

#[test]
fn refusals_are_typed_and_named() {
    in_private_netns("refusals_are_typed_and_named", || {
        let mut nl = Netlink::open().unwrap();
        assert_eq!(nl.index("nothing0").unwrap(), None);
        assert_eq!(nl.link(4242).unwrap(), None);
        let gone = nl.delete(4242).unwrap_err();
        assert_eq!(gone.kind(), io::ErrorKind::NotFound);
        assert_eq!(link::errno(&gone), Some(libc::ENODEV));
        assert!(gone.to_string().starts_with("delete link 4242: "), "{gone}");
        let long = nl.create_bridge("a-name-too-long-0", None).unwrap_err();
        assert_eq!(long.kind(), io::ErrorKind::InvalidInput);
        let lo = nl.index("lo").unwrap().unwrap();
        let prefix = nl
            .add_address(lo, Ipv4Addr::new(127, 0, 0, 2).into(), 33)
            .unwrap_err();
        assert_eq!(prefix.kind(), io::ErrorKind::InvalidInput);
        nl.create_veth("va-test", "vb-test", None, None).unwrap();
        let dup = nl.create_veth("va-test", "vc-test", None, None).unwrap_err();
        assert_eq!(dup.kind(), io::ErrorKind::AlreadyExists);
        assert!(
            dup.to_string()
                .starts_with("create veth pair va-test <-> vc-test: "),
            "{dup}"
        );
        let va = nl.index("va-test").unwrap().unwrap();
        let bad_mtu = nl.set_mtu(va, 10).unwrap_err();
        assert_eq!(link::errno(&bad_mtu), Some(libc::EINVAL), "{bad_mtu}");
        // The kernel's own words (extended ack) come with the errno.
        let text = bad_mtu.to_string();
        assert!(
            text.starts_with(&format!("set the mtu of link {va} to 10: mtu ")),
            "{text}"
        );
        assert!(text.ends_with(": Invalid argument (os error 22)"), "{text}");
        // Not a bridge port: the bridge family has no handler for it.
        assert!(nl.set_hairpin(lo, true).is_err());
        // Loopback addresses get host scope and are listed back.
        nl.add_address(lo, Ipv4Addr::new(127, 0, 0, 2).into(), 8).unwrap();
        assert!(nl
            .addresses(lo)
            .unwrap()
            .contains(&(Ipv4Addr::new(127, 0, 0, 2).into(), 8)));
    });
}
