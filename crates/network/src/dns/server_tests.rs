//! The server against a fake `Resolver` and fake upstreams, all on 127.0.0.1.

use std::collections::HashMap;
use std::sync::Mutex;

use super::*;
use crate::dns::tests::{query, query_edns};
use crate::dns::{reply, reply_code, RCODE_FORMERR, TYPE_A};

const MX: u16 = 15;

#[derive(Default)]
struct Names {
    addrs: HashMap<&'static str, Vec<IpAddr>>,
    ptrs: HashMap<IpAddr, &'static str>,
    asked: Mutex<Vec<(String, String)>>,
}

impl Resolver for Names {
    fn lookup(&self, from: &str, name: &str) -> Option<Vec<IpAddr>> {
        self.asked.lock().unwrap().push((from.into(), name.into()));
        self.addrs.get(name).cloned()
    }
    fn reverse(&self, from: &str, ip: IpAddr) -> Option<String> {
        self.asked.lock().unwrap().push((from.into(), ip.to_string()));
        self.ptrs.get(&ip).map(|n| n.to_string())
    }
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn names() -> Arc<Names> {
    let mut n = Names::default();
    n.addrs.insert("web", vec![ip("10.0.0.2"), ip("fd00::2")]);
    n.addrs.insert("db", vec![ip("10.0.0.3")]);
    n.addrs.insert(
        "many",
        (1..=40).map(|i| IpAddr::V4(Ipv4Addr::new(10, 1, 0, i))).collect(),
    );
    n.ptrs.insert(ip("10.0.0.2"), "web.mynet");
    Arc::new(n)
}

fn quick() -> Options {
    Options {
        forward_timeout: Duration::from_millis(300),
        tcp_idle: Duration::from_millis(300),
        ..Options::default()
    }
}

struct Running {
    handle: ServerHandle,
    udp: SocketAddr,
    tcp: SocketAddr,
}

fn start(resolver: Arc<Names>, upstreams: Vec<SocketAddr>, opts: Options) -> Running {
    let udp = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let tcp = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let (u, t) = (udp.local_addr().unwrap(), tcp.local_addr().unwrap());
    let handle = Server::spawn_with("ctr1".into(), udp, tcp, resolver, upstreams, opts).unwrap();
    Running {
        handle,
        udp: u,
        tcp: t,
    }
}

/// One query over UDP; None when no reply comes within a second.
async fn udp_ask(server: SocketAddr, msg: &[u8]) -> Option<Vec<u8>> {
    let sock = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    sock.send_to(msg, server).await.unwrap();
    let mut buf = vec![0u8; 65535];
    let (n, _) = timeout(Duration::from_secs(1), sock.recv_from(&mut buf))
        .await
        .ok()?
        .unwrap();
    Some(buf[..n].to_vec())
}

async fn tcp_read(stream: &mut TcpStream) -> Vec<u8> {
    let len = stream.read_u16().await.unwrap();
    let mut msg = vec![0u8; len as usize];
    stream.read_exact(&mut msg).await.unwrap();
    msg
}

/// What a fake upstream does with a query.
#[derive(Clone, Copy)]
enum Upstream {
    /// An A record 192.0.2.1 with TTL 1234.
    Answer,
    Silent,
    Rcode(u8),
    /// A reply under another id first, then the right one.
    WrongIdFirst,
}

/// The fake upstream's reply to `query`: its header and question, then one A record.
fn upstream_reply(query: &[u8], rcode: u8) -> Vec<u8> {
    let q = parse_query(query).unwrap();
    let mut resp = query[..12 + q.wire_name.len() + 4].to_vec();
    resp[2] = 0x81;
    resp[3] = 0x80 | rcode;
    resp[10..12].copy_from_slice(&[0, 0]);
    if rcode == 0 {
        resp[7] = 1;
        resp.extend_from_slice(&[0xc0, 12, 0, 1, 0, 1, 0, 0, 0x04, 0xd2, 0, 4, 192, 0, 2, 1]);
    }
    resp
}

/// A fake upstream listening on UDP and TCP on one port; it records what it was sent.
struct Fake {
    addr: SocketAddr,
    udp_seen: Arc<Mutex<Vec<Vec<u8>>>>,
    tcp_seen: Arc<Mutex<Vec<Vec<u8>>>>,
    tasks: Vec<JoinHandle<()>>,
}

impl Drop for Fake {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

async fn fake(how: Upstream) -> Fake {
    let (tcp, udp) = loop {
        let tcp = TcpListener::bind("127.0.0.1:0").await.unwrap();
        if let Ok(udp) = UdpSocket::bind(tcp.local_addr().unwrap()).await {
            break (tcp, udp);
        }
    };
    let addr = tcp.local_addr().unwrap();
    let (udp_seen, tcp_seen) = (Arc::default(), Arc::default());
    let seen: Arc<Mutex<Vec<Vec<u8>>>> = Arc::clone(&udp_seen);
    let udp_task = tokio::spawn(async move {
        let mut buf = vec![0u8; 65535];
        loop {
            let (n, peer) = udp.recv_from(&mut buf).await.unwrap();
            let msg = buf[..n].to_vec();
            seen.lock().unwrap().push(msg.clone());
            match how {
                Upstream::Answer => drop(udp.send_to(&upstream_reply(&msg, 0), peer).await),
                Upstream::Rcode(rc) => drop(udp.send_to(&upstream_reply(&msg, rc), peer).await),
                Upstream::WrongIdFirst => {
                    let resp = upstream_reply(&msg, 0);
                    let id = u16::from_be_bytes([resp[0], resp[1]]).wrapping_add(1);
                    udp.send_to(&with_id(&resp, id), peer).await.unwrap();
                    udp.send_to(&resp, peer).await.unwrap();
                }
                Upstream::Silent => {}
            }
        }
    });
    let seen: Arc<Mutex<Vec<Vec<u8>>>> = Arc::clone(&tcp_seen);
    let tcp_task = tokio::spawn(async move {
        loop {
            let (mut stream, _) = tcp.accept().await.unwrap();
            let msg = tcp_read(&mut stream).await;
            seen.lock().unwrap().push(msg.clone());
            if let Upstream::Answer = how {
                write_frame(&mut stream, &upstream_reply(&msg, 0)).await.unwrap();
            }
        }
    });
    Fake {
        addr,
        udp_seen,
        tcp_seen,
        tasks: vec![udp_task, tcp_task],
    }
}

fn seen(list: &Mutex<Vec<Vec<u8>>>) -> Vec<Vec<u8>> {
    list.lock().unwrap().clone()
}

#[tokio::test]
async fn answers_known_names_itself_and_never_forwards_them() {
    let up = fake(Upstream::Answer).await;
    let names = names();
    let s = start(names.clone(), vec![up.addr], quick());

    let msg = query(0x1111, "WeB", TYPE_A);
    let got = udp_ask(s.udp, &msg).await.unwrap();
    let q = parse_query(&msg).unwrap();
    assert_eq!(got, reply(&msg, &q, &Answer::Addrs(vec![ip("10.0.0.2")])));

    let msg = query(0x2222, "web.", TYPE_AAAA);
    let got = udp_ask(s.udp, &msg).await.unwrap();
    let q = parse_query(&msg).unwrap();
    assert_eq!(got, reply(&msg, &q, &Answer::Addrs(vec![ip("fd00::2")])));

    // Known, but no address of that family, or another type: no data, not forwarded.
    for msg in [query(3, "db", TYPE_AAAA), query(4, "db", MX)] {
        let got = udp_ask(s.udp, &msg).await.unwrap();
        assert_eq!(got, reply(&msg, &parse_query(&msg).unwrap(), &Answer::NoData));
    }
    assert!(seen(&up.udp_seen).is_empty());
    assert_eq!(
        names.asked.lock().unwrap()[0],
        ("ctr1".to_string(), "web".to_string())
    );
}

#[tokio::test]
async fn several_addresses_come_in_varying_order() {
    let s = start(names(), vec![], quick());
    let mut firsts = std::collections::HashSet::new();
    for id in 0..20 {
        let got = udp_ask(s.udp, &query_edns(id, "many", TYPE_A, 4096))
            .await
            .unwrap();
        assert_eq!(got[7], 40);
        // The first answer's address: after the header, "many" and its type and class, and the
        // record's pointer, type, class, TTL and length.
        firsts.insert(got[22 + 12..22 + 16].to_vec());
    }
    assert!(firsts.len() > 1, "always the same first address");
}

#[tokio::test]
async fn single_label_names_can_stay_unforwarded() {
    let up = fake(Upstream::Answer).await;
    let opts = Options {
        keep_single_label: true,
        ..quick()
    };
    let s = start(names(), vec![up.addr], opts);
    let msg = query(1, "printer", TYPE_A);
    let got = udp_ask(s.udp, &msg).await.unwrap();
    assert_eq!(got, reply(&msg, &parse_query(&msg).unwrap(), &Answer::NoData));
    assert!(seen(&up.udp_seen).is_empty());
    // Dotted names and other types are still forwarded.
    for msg in [query(2, "printer.lan", TYPE_A), query(3, "printer", MX)] {
        let got = udp_ask(s.udp, &msg).await.unwrap();
        assert_eq!(reply_code(&got), Some((0, false)));
        assert_eq!(&got[6..8], &[0, 1], "the upstream's answer");
    }
    assert_eq!(seen(&up.udp_seen).len(), 2);
}

#[tokio::test]
async fn ptr_of_a_container_address_gives_its_name() {
    let s = start(names(), vec![], quick());
    let msg = query(7, "2.0.0.10.in-addr.arpa", TYPE_PTR);
    let got = udp_ask(s.udp, &msg).await.unwrap();
    assert_eq!(
        got,
        reply(
            &msg,
            &parse_query(&msg).unwrap(),
            &Answer::Name("web.mynet".into())
        )
    );
}

#[tokio::test]
async fn forwards_unknown_names_and_relays_the_reply_under_the_client_id() {
    let up = fake(Upstream::Answer).await;
    let s = start(names(), vec![up.addr], quick());
    for (msg, rtype) in [
        (query(0x4242, "example.com", TYPE_A), TYPE_A),
        (query(0x4343, "1.2.0.192.in-addr.arpa", TYPE_PTR), TYPE_PTR),
        (query_edns(0x4444, "example.com", MX, 1232), MX),
    ] {
        let got = udp_ask(s.udp, &msg).await.unwrap();
        let sent = seen(&up.udp_seen).pop().unwrap();
        assert_eq!(sent[2..], msg[2..], "forwarded as sent, {rtype}");
        let id = u16::from_be_bytes([msg[0], msg[1]]);
        assert_eq!(got, with_id(&upstream_reply(&sent, 0), id), "relayed as received");
    }
    assert_eq!(seen(&up.udp_seen).len(), 3);
    assert!(seen(&up.tcp_seen).is_empty());
}

#[tokio::test]
async fn silent_or_failing_upstreams_are_skipped_in_order() {
    let silent = fake(Upstream::Silent).await;
    let failing = fake(Upstream::Rcode(RCODE_SERVFAIL)).await;
    let refusing = fake(Upstream::Rcode(5)).await;
    let good = fake(Upstream::Answer).await;
    let ups = vec![silent.addr, failing.addr, refusing.addr, good.addr];
    let s = start(names(), ups, quick());
    let msg = query(0x5151, "example.com", TYPE_A);
    let got = udp_ask(s.udp, &msg).await.unwrap();
    assert_eq!(got, with_id(&upstream_reply(&msg, 0), 0x5151));
    for up in [&silent, &failing, &refusing, &good] {
        assert_eq!(seen(&up.udp_seen).len(), 1);
    }
}

#[tokio::test]
async fn servfail_when_no_upstream_answers() {
    let silent = fake(Upstream::Silent).await;
    let closed = std::net::UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let msg = query(0x6161, "example.com", TYPE_A);
    let servfail = error_reply(&msg, RCODE_SERVFAIL);

    for ups in [vec![], vec![closed], vec![silent.addr, closed]] {
        let s = start(names(), ups.clone(), quick());
        let t0 = std::time::Instant::now();
        assert_eq!(udp_ask(s.udp, &msg).await.unwrap(), servfail, "{ups:?}");
        assert!(
            t0.elapsed() < Duration::from_millis(900),
            "{ups:?}: one timeout at most"
        );
    }
    assert_eq!(seen(&silent.udp_seen).len(), 1);

    // A non-authoritative NXDOMAIN is relayed when nothing better comes.
    let nx = fake(Upstream::Rcode(RCODE_NXDOMAIN)).await;
    let s = start(names(), vec![nx.addr, silent.addr], quick());
    let got = udp_ask(s.udp, &msg).await.unwrap();
    assert_eq!(got, with_id(&upstream_reply(&msg, RCODE_NXDOMAIN), 0x6161));
    assert_eq!(seen(&silent.udp_seen).len(), 2, "the next upstream was asked");
}

#[tokio::test]
async fn a_reply_under_another_id_is_ignored() {
    let up = fake(Upstream::WrongIdFirst).await;
    let s = start(names(), vec![up.addr], quick());
    let msg = query(0x7171, "example.com", TYPE_A);
    let got = udp_ask(s.udp, &msg).await.unwrap();
    assert_eq!(got, with_id(&upstream_reply(&msg, 0), 0x7171));
}

#[tokio::test]
async fn forwards_beyond_the_limit_get_servfail() {
    let silent = fake(Upstream::Silent).await;
    let opts = Options {
        max_forwards: 1,
        forward_timeout: Duration::from_millis(700),
        ..quick()
    };
    let s = start(names(), vec![silent.addr], opts);
    let first = query(1, "one.example", TYPE_A);
    let second = query(2, "two.example", TYPE_A);
    let sock = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    sock.send_to(&first, s.udp).await.unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    sock.send_to(&second, s.udp).await.unwrap();
    let mut buf = [0u8; 512];
    let (n, _) = sock.recv_from(&mut buf).await.unwrap();
    assert_eq!(
        buf[..n],
        error_reply(&second, RCODE_SERVFAIL),
        "the second, at once"
    );
    let (n, _) = sock.recv_from(&mut buf).await.unwrap();
    assert_eq!(
        buf[..n],
        error_reply(&first, RCODE_SERVFAIL),
        "the first, after its timeout"
    );
}

#[tokio::test]
async fn malformed_packets_get_formerr_or_nothing() {
    let s = start(names(), vec![], quick());
    assert_eq!(udp_ask(s.udp, &[1, 2, 3, 4, 5]).await, None);
    let header_only = [0x12, 0x34, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0];
    let got = udp_ask(s.udp, &header_only).await.unwrap();
    assert_eq!(
        got,
        [0x12, 0x34, 0x81, 0x80 | RCODE_FORMERR, 0, 0, 0, 0, 0, 0, 0, 0]
    );
    let mut response = query(9, "web", TYPE_A);
    response[2] |= 0x80;
    assert_eq!(
        udp_ask(s.udp, &response).await,
        None,
        "responses are never answered"
    );
    assert!(
        udp_ask(s.udp, &query(10, "web", TYPE_A)).await.is_some(),
        "still serving"
    );
}

#[tokio::test]
async fn udp_answers_that_do_not_fit_are_truncated() {
    let s = start(names(), vec![], quick());
    let got = udp_ask(s.udp, &query(1, "many", TYPE_A)).await.unwrap();
    assert!(got.len() <= 512);
    assert_eq!((got[2] & 0x02, got[7]), (0x02, 30));
    let got = udp_ask(s.udp, &query_edns(2, "many", TYPE_A, 4096))
        .await
        .unwrap();
    assert_eq!((got[2] & 0x02, got[7]), (0, 40));

    let mut tcp = TcpStream::connect(s.tcp).await.unwrap();
    write_frame(&mut tcp, &query(3, "many", TYPE_A)).await.unwrap();
    let got = tcp_read(&mut tcp).await;
    assert_eq!((got[2] & 0x02, got[7]), (0, 40));
}

#[tokio::test]
async fn tcp_serves_several_queries_and_forwards_over_tcp() {
    let up = fake(Upstream::Answer).await;
    let s = start(names(), vec![up.addr], quick());
    let mut tcp = TcpStream::connect(s.tcp).await.unwrap();
    let local = query(0x0101, "web", TYPE_A);
    let remote = query(0x0202, "example.com", TYPE_A);
    // Both written before either reply is read.
    write_frame(&mut tcp, &local).await.unwrap();
    write_frame(&mut tcp, &remote).await.unwrap();
    let got = tcp_read(&mut tcp).await;
    assert_eq!(
        got,
        reply(
            &local,
            &parse_query(&local).unwrap(),
            &Answer::Addrs(vec![ip("10.0.0.2")])
        )
    );
    let got = tcp_read(&mut tcp).await;
    assert_eq!(got, with_id(&upstream_reply(&remote, 0), 0x0202));
    assert_eq!(seen(&up.tcp_seen).len(), 1);
    assert!(seen(&up.udp_seen).is_empty());

    // A silent TCP upstream: SERVFAIL on the same connection.
    let silent = fake(Upstream::Silent).await;
    let s2 = start(names(), vec![silent.addr], quick());
    let mut tcp = TcpStream::connect(s2.tcp).await.unwrap();
    write_frame(&mut tcp, &remote).await.unwrap();
    assert_eq!(tcp_read(&mut tcp).await, error_reply(&remote, RCODE_SERVFAIL));
}

#[tokio::test]
async fn idle_tcp_connections_are_closed() {
    let s = start(names(), vec![], quick());
    let mut tcp = TcpStream::connect(s.tcp).await.unwrap();
    write_frame(&mut tcp, &query(1, "web", TYPE_A)).await.unwrap();
    tcp_read(&mut tcp).await;
    let mut rest = Vec::new();
    let read = timeout(Duration::from_secs(2), tcp.read_to_end(&mut rest)).await;
    assert!(matches!(read, Ok(Ok(0))), "closed by the server: {read:?}");

    // A frame too short for a header closes the connection too.
    let mut tcp = TcpStream::connect(s.tcp).await.unwrap();
    write_frame(&mut tcp, &[1, 2, 3]).await.unwrap();
    let read = timeout(Duration::from_millis(200), tcp.read_to_end(&mut rest)).await;
    assert!(matches!(read, Ok(Ok(0))), "{read:?}");
}

#[tokio::test]
async fn stop_closes_the_sockets() {
    let silent = fake(Upstream::Silent).await;
    let s = start(names(), vec![silent.addr], quick());
    assert!(udp_ask(s.udp, &query(1, "web", TYPE_A)).await.is_some());
    let idle = TcpStream::connect(s.tcp).await.unwrap();
    // A forward in flight (its task holds the UDP socket) when the server stops.
    let client = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    client
        .send_to(&query(2, "example.com", TYPE_A), s.udp)
        .await
        .unwrap();
    while seen(&silent.udp_seen).is_empty() {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    s.handle.stop().await;
    // Nothing holds the port any more: it can be bound again at once.
    std::net::UdpSocket::bind(s.udp).expect("the udp port is free after stop");
    let refused = TcpStream::connect(s.tcp).await.unwrap_err();
    assert_eq!(refused.kind(), io::ErrorKind::ConnectionRefused);
    assert_eq!(udp_ask(s.udp, &query(2, "web", TYPE_A)).await, None);
    // The connection accepted before the stop is closed as well.
    let mut idle = idle;
    let mut rest = Vec::new();
    let read = timeout(Duration::from_secs(1), idle.read_to_end(&mut rest)).await;
    assert!(matches!(read, Ok(Ok(0))), "{read:?}");
}

#[tokio::test]
async fn dropping_the_handle_ends_the_server() {
    let s = start(names(), vec![], quick());
    drop(s.handle);
    // The aborted tasks are dropped by the runtime, on its next turns.
    tokio::time::sleep(Duration::from_millis(50)).await;
    let refused = TcpStream::connect(s.tcp).await.unwrap_err();
    assert_eq!(refused.kind(), io::ErrorKind::ConnectionRefused);
    assert_eq!(udp_ask(s.udp, &query(1, "web", TYPE_A)).await, None);
}

#[tokio::test]
async fn spawn_without_a_runtime_is_an_error() {
    let udp = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let tcp = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let result = std::thread::spawn(move || Server::spawn("c".into(), udp, tcp, names(), vec![]).map(|_| ()))
        .join()
        .unwrap();
    assert!(result.is_err());
}

/// busybox's nslookup (when installed) as a real client: A and AAAA of a container, over UDP.
#[tokio::test]
async fn busybox_nslookup_resolves_through_the_server() {
    let Ok(busybox) = which("busybox") else {
        eprintln!("skipped: busybox is not installed");
        return;
    };
    let s = start(names(), vec![], quick());
    let text = nslookup(&busybox, "web", s.udp).await;
    assert!(text.contains("Address: 10.0.0.2"), "{text}");
    assert!(text.contains("Address: fd00::2"), "{text}");
    // A reverse lookup: busybox asks PTR of 2.0.0.10.in-addr.arpa.
    let text = nslookup(&busybox, "10.0.0.2", s.udp).await;
    assert!(text.contains("name = web.mynet"), "{text}");
}

/// `busybox nslookup NAME SERVER`'s output; it must succeed.
async fn nslookup(busybox: &std::path::Path, name: &str, server: SocketAddr) -> String {
    let mut cmd = std::process::Command::new(busybox);
    cmd.args(["nslookup", name, &server.to_string()]);
    let out = tokio::task::spawn_blocking(move || cmd.output())
        .await
        .unwrap()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "nslookup {name}: {text}{err}");
    text
}

fn which(tool: &str) -> Result<std::path::PathBuf, ()> {
    let path = std::env::var_os("PATH").ok_or(())?;
    std::env::split_paths(&path)
        .map(|d| d.join(tool))
        .find(|p| p.is_file())
        .ok_or(())
}
