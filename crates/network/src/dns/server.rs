//! The embedded DNS server of one container, as docker's (moby `libnetwork/resolver.go`): it
//! answers the names berth knows (containers and aliases on the asking container's networks,
//! through a `Resolver`) and forwards everything else to the host's nameservers.
//!
//! ```text
//!  container netns             berthd (host netns)                      host resolvers
//!  127.0.0.11:53 udp/tcp ──▶ parse_query ─▶ Resolver::lookup/reverse
//!                              │ known: reply (A/AAAA/PTR/no data)
//!                              └ unknown: fresh id, ask each upstream ──▶ 127.0.0.53:53 ...
//!                                in order (same transport), relay the ◀──
//!                                reply under the client's id, or SERVFAIL
//! ```
//!
//! The listening sockets are bound by the caller inside the container's network namespace; the
//! sockets that forward are opened here, in berthd's namespace, so a resolver on the host's
//! loopback (systemd-resolved's 127.0.0.53) is reachable.

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::sync::{watch, Semaphore};
use tokio::task::{JoinHandle, JoinSet};
use tokio::time::timeout;

use super::{
    error_reply, is_reply_to, parse_query, ptr_addr, reply_code, reply_sized, with_id, Answer, Query,
    RCODE_NXDOMAIN, RCODE_SERVFAIL, TYPE_A, TYPE_AAAA, TYPE_PTR, UDP_SIZE,
};

/// The largest DNS message (a TCP frame's length is 16 bits).
const MAX_MESSAGE: usize = u16::MAX as usize;

/// What berth knows about names, as seen from one container.
pub trait Resolver: Send + Sync + 'static {
    /// Addresses (A: v4, AAAA: v6) of `name` as seen by the container `from` (its id), or None to
    /// forward. `name` is lowercased, without a trailing dot; an empty list means "known, no
    /// address" (answered with no data).
    fn lookup(&self, from: &str, name: &str) -> Option<Vec<IpAddr>>;
    /// The name for a PTR query of a container address, or None to forward.
    fn reverse(&self, from: &str, ip: IpAddr) -> Option<String>;
}

/// Limits of a server; `Default` gives docker's behaviour.
#[derive(Debug, Clone)]
pub struct Options {
    /// How long one upstream has to answer a forwarded query before the next is tried.
    pub forward_timeout: Duration,
    /// A TCP connection with no complete query for this long is closed.
    pub tcp_idle: Duration,
    /// Forwarded queries in flight at once (docker's `maxConcurrent`); more get SERVFAIL.
    pub max_forwards: usize,
    /// Open TCP connections at once; more are closed as they come.
    pub max_tcp: usize,
    /// A and AAAA queries of single-label names berth does not know get NOERROR without answers
    /// instead of being forwarded, so the client goes on with its search domains: docker does
    /// this when the container's `--dns-option` sets `ndots`.
    pub keep_single_label: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            forward_timeout: Duration::from_secs(2),
            tcp_idle: Duration::from_secs(10),
            max_forwards: 100,
            max_tcp: 100,
            keep_single_label: false,
        }
    }
}

/// Starts servers; see `spawn`.
pub struct Server {
    from: String,
    resolver: Arc<dyn Resolver>,
    upstreams: Vec<SocketAddr>,
    opts: Options,
    forwards: Arc<Semaphore>,
}

/// A running server: dropping it ends it (its sockets are closed soon after, by the runtime);
/// `stop` ends it and returns once every socket it held is closed.
#[must_use = "the server stops when its handle is dropped"]
pub struct ServerHandle {
    tasks: Vec<JoinHandle<()>>,
    stop: watch::Sender<bool>,
}

impl ServerHandle {
    /// Ends the server: the listening sockets, the TCP connections and the forwards in flight
    /// are all closed when this returns.
    pub async fn stop(mut self) {
        self.stop.send_replace(true);
        for task in std::mem::take(&mut self.tasks) {
            let _ = task.await;
        }
    }
}

impl Drop for ServerHandle {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

/// What to do with one message.
enum Step {
    Reply(Vec<u8>),
    Forward(Query),
    /// No reply: no header, or a response.
    Drop,
}

/// The answer berth gives itself to `q` from the container `from`, or None to forward it. A name
/// berth knows is never forwarded: a type other than A, AAAA (or PTR of a known address) gets
/// no data, as docker. Several addresses come in a random order each time (round-robin over the
/// containers sharing an alias, as docker shuffles them).
pub fn answer(resolver: &dyn Resolver, from: &str, q: &Query) -> Option<Answer> {
    if q.name.is_empty() {
        return None;
    }
    let known = || resolver.lookup(from, &q.name).map(|_| Answer::NoData);
    match q.qtype {
        TYPE_A | TYPE_AAAA => {
            let v4 = q.qtype == TYPE_A;
            let mut addrs: Vec<IpAddr> = resolver
                .lookup(from, &q.name)?
                .into_iter()
                .filter(|ip| ip.is_ipv4() == v4)
                .collect();
            fastrand::shuffle(&mut addrs);
            Some(if addrs.is_empty() {
                Answer::NoData
            } else {
                Answer::Addrs(addrs)
            })
        }
        TYPE_PTR => match ptr_addr(&q.name).and_then(|ip| resolver.reverse(from, ip)) {
            Some(name) => Some(Answer::Name(name)),
            None => known(),
        },
        _ => known(),
    }
}

impl Server {
    /// Serves one container: UDP and TCP sockets already bound (the lead binds them inside the
    /// container's network namespace, on 127.0.0.11), until the returned handle is dropped or
    /// `stop()`ed. Needs a tokio runtime context (with I/O enabled).
    pub fn spawn(
        from: String,
        udp: std::net::UdpSocket,
        tcp: std::net::TcpListener,
        resolver: Arc<dyn Resolver>,
        upstreams: Vec<SocketAddr>,
    ) -> io::Result<ServerHandle> {
        Self::spawn_with(from, udp, tcp, resolver, upstreams, Options::default())
    }

    /// `spawn` with other limits.
    pub fn spawn_with(
        from: String,
        udp: std::net::UdpSocket,
        tcp: std::net::TcpListener,
        resolver: Arc<dyn Resolver>,
        upstreams: Vec<SocketAddr>,
        opts: Options,
    ) -> io::Result<ServerHandle> {
        let rt = tokio::runtime::Handle::try_current().map_err(io::Error::other)?;
        udp.set_nonblocking(true)?;
        tcp.set_nonblocking(true)?;
        let _guard = rt.enter();
        let udp = Arc::new(UdpSocket::from_std(udp)?);
        let tcp = TcpListener::from_std(tcp)?;
        let server = Arc::new(Server {
            from,
            resolver,
            upstreams,
            forwards: Arc::new(Semaphore::new(opts.max_forwards)),
            opts,
        });
        let (stop, stopped) = watch::channel(false);
        Ok(ServerHandle {
            tasks: vec![
                rt.spawn(server.clone().serve_udp(udp, stopped.clone())),
                rt.spawn(server.serve_tcp(tcp, stopped)),
            ],
            stop,
        })
    }

    fn step(&self, msg: &[u8], tcp: bool) -> Step {
        let q = match parse_query(msg) {
            Ok(q) => q,
            Err(e) => {
                return match e.rcode() {
                    Some(rcode) => Step::Reply(error_reply(msg, rcode)),
                    None => Step::Drop,
                }
            }
        };
        let max = match tcp {
            true => MAX_MESSAGE,
            false => usize::from(q.udp_size.unwrap_or(0)).max(UDP_SIZE),
        };
        let single_label = matches!(q.qtype, TYPE_A | TYPE_AAAA) && !q.name.contains('.');
        match answer(&*self.resolver, &self.from, &q) {
            Some(a) => Step::Reply(reply_sized(msg, &q, &a, max)),
            None if self.opts.keep_single_label && single_label => {
                Step::Reply(reply_sized(msg, &q, &Answer::NoData, max))
            }
            None => Step::Forward(q),
        }
    }

    async fn serve_udp(self: Arc<Self>, sock: Arc<UdpSocket>, mut stopped: watch::Receiver<bool>) {
        // The forwards in flight, each holding the socket to send its reply.
        let mut forwards = JoinSet::new();
        let mut buf = vec![0u8; MAX_MESSAGE];
        loop {
            while forwards.try_join_next().is_some() {}
            let received = tokio::select! {
                _ = stopped.wait_for(|stop| *stop) => break,
                received = sock.recv_from(&mut buf) => received,
            };
            let (n, peer) = match received {
                Ok(got) => got,
                Err(e) => {
                    pause_after(&e).await;
                    continue;
                }
            };
            let msg = &buf[..n];
            match self.step(msg, false) {
                Step::Reply(reply) => {
                    let _ = sock.send_to(&reply, peer).await;
                }
                Step::Forward(q) => {
                    let Ok(permit) = self.forwards.clone().try_acquire_owned() else {
                        let _ = sock.send_to(&error_reply(msg, RCODE_SERVFAIL), peer).await;
                        continue;
                    };
                    let (server, sock, msg) = (self.clone(), sock.clone(), msg.to_vec());
                    forwards.spawn(async move {
                        let reply = server.forward(&msg, &q, false).await;
                        drop(permit);
                        let _ = sock.send_to(&reply, peer).await;
                    });
                }
                Step::Drop => {}
            }
        }
        forwards.shutdown().await;
    }

    async fn serve_tcp(self: Arc<Self>, listener: TcpListener, mut stopped: watch::Receiver<bool>) {
        let mut conns = JoinSet::new();
        loop {
            while conns.try_join_next().is_some() {}
            let accepted = tokio::select! {
                _ = stopped.wait_for(|stop| *stop) => break,
                accepted = listener.accept() => accepted,
            };
            let stream = match accepted {
                Ok((stream, _)) => stream,
                Err(e) => {
                    pause_after(&e).await;
                    continue;
                }
            };
            if conns.len() < self.opts.max_tcp {
                conns.spawn(self.clone().serve_conn(stream));
            }
        }
        conns.shutdown().await;
    }

    /// One TCP connection: length-prefixed queries answered in order until the client closes,
    /// sends something with no header, or stays idle too long.
    async fn serve_conn(self: Arc<Self>, mut stream: TcpStream) {
        let idle = self.opts.tcp_idle;
        loop {
            let Ok(Ok(len)) = timeout(idle, stream.read_u16()).await else {
                return;
            };
            let mut msg = vec![0u8; len as usize];
            let Ok(Ok(_)) = timeout(idle, stream.read_exact(&mut msg)).await else {
                return;
            };
            let reply = match self.step(&msg, true) {
                Step::Reply(reply) => reply,
                Step::Forward(q) => match self.forwards.clone().try_acquire_owned() {
                    Ok(_permit) => self.forward(&msg, &q, true).await,
                    Err(_) => error_reply(&msg, RCODE_SERVFAIL),
                },
                Step::Drop => return,
            };
            if !matches!(timeout(idle, write_frame(&mut stream, &reply)).await, Ok(Ok(()))) {
                return;
            }
        }
    }

    /// Asks the upstreams in order, under a fresh id, over the client's transport. A reply with
    /// NOERROR (or an authoritative NXDOMAIN) is relayed under the client's id; SERVFAIL,
    /// REFUSED and other errors move on to the next, as docker (a non-authoritative NXDOMAIN is
    /// kept in case no other answers). Nothing usable: SERVFAIL.
    async fn forward(&self, msg: &[u8], q: &Query, tcp: bool) -> Vec<u8> {
        let mut fallback = None;
        for &upstream in &self.upstreams {
            let id = fastrand::u16(..);
            let query = with_id(msg, id);
            let asked = match tcp {
                true => timeout(self.opts.forward_timeout, ask_tcp(upstream, &query, id, q)).await,
                false => timeout(self.opts.forward_timeout, ask_udp(upstream, &query, id, q)).await,
            };
            let Ok(Ok(resp)) = asked else {
                continue;
            };
            match reply_code(&resp) {
                Some((0, _)) | Some((RCODE_NXDOMAIN, true)) => return with_id(&resp, q.id),
                Some((RCODE_NXDOMAIN, false)) => fallback = Some(resp),
                _ => {}
            }
        }
        match fallback {
            Some(resp) => with_id(&resp, q.id),
            None => error_reply(msg, RCODE_SERVFAIL),
        }
    }
}

/// After a failed accept or receive: go on at once when the error concerns one peer, after a
/// pause otherwise (out of descriptors), so a persistent error does not spin.
async fn pause_after(e: &io::Error) {
    use io::ErrorKind::*;
    if !matches!(
        e.kind(),
        ConnectionRefused | ConnectionReset | ConnectionAborted | Interrupted | WouldBlock
    ) {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn write_frame(stream: &mut TcpStream, msg: &[u8]) -> io::Result<()> {
    let len = u16::try_from(msg.len()).map_err(|_| io::Error::other("dns reply too long"))?;
    let mut frame = Vec::with_capacity(2 + msg.len());
    frame.extend_from_slice(&len.to_be_bytes());
    frame.extend_from_slice(msg);
    stream.write_all(&frame).await
}

fn unspecified(upstream: SocketAddr) -> SocketAddr {
    match upstream {
        SocketAddr::V4(_) => (Ipv4Addr::UNSPECIFIED, 0).into(),
        SocketAddr::V6(_) => (Ipv6Addr::UNSPECIFIED, 0).into(),
    }
}

/// One query over UDP from a fresh socket (a random source port) connected to `upstream`, so the
/// kernel drops datagrams from elsewhere; datagrams that are not the reply are ignored.
async fn ask_udp(upstream: SocketAddr, query: &[u8], id: u16, q: &Query) -> io::Result<Vec<u8>> {
    let sock = UdpSocket::bind(unspecified(upstream)).await?;
    sock.connect(upstream).await?;
    sock.send(query).await?;
    let mut buf = vec![0u8; MAX_MESSAGE];
    loop {
        let n = sock.recv(&mut buf).await?;
        if is_reply_to(&buf[..n], id, q) {
            return Ok(buf[..n].to_vec());
        }
    }
}

/// One query over a new TCP connection to `upstream`.
async fn ask_tcp(upstream: SocketAddr, query: &[u8], id: u16, q: &Query) -> io::Result<Vec<u8>> {
    let mut stream = TcpStream::connect(upstream).await?;
    write_frame(&mut stream, query).await?;
    let len = stream.read_u16().await?;
    let mut resp = vec![0u8; len as usize];
    stream.read_exact(&mut resp).await?;
    if !is_reply_to(&resp, id, q) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("dns reply from {upstream} does not match the query"),
        ));
    }
    Ok(resp)
}

#[cfg(test)]
#[path = "server_tests.rs"]
mod tests;
