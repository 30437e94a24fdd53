//! An rtnetlink client: links (bridges, veth pairs), their addresses and routes, over a
//! `NETLINK_ROUTE` socket, without `ip` and without the netlink crates.
//!
//! Messages used (bytes built in `rtnl.rs`, framing in `nlmsg.rs`):
//! - `RTM_GETLINK`: one link by name or index (answer: `RTM_NEWLINK`), or a dump of all;
//! - `RTM_NEWLINK` with `IFLA_LINKINFO`/`IFLA_INFO_KIND` "bridge" or "veth" (the veth peer inside
//!   `IFLA_INFO_DATA`/`VETH_INFO_PEER`, with `IFLA_NET_NS_FD` to create it in another namespace);
//! - `RTM_SETLINK`: `IFF_UP`, `IFLA_MASTER`, `IFLA_MTU`, `IFLA_ADDRESS` (MAC), `IFLA_IFNAME`
//!   (rename), and in the `AF_BRIDGE` family `IFLA_PROTINFO`/`IFLA_BRPORT_MODE` (hairpin);
//! - `RTM_DELLINK`; `RTM_NEWADDR` and a dump of `RTM_GETADDR`; `RTM_NEWROUTE` (default route).
//!
//! Every change is sent with `NLM_F_ACK` and waits for the kernel's `NLMSG_ERROR` answer: 0 is
//! success, else the negated errno, turned into an `io::Error` whose kind callers can match
//! (`AlreadyExists` for EEXIST; `NotFound` for ENOENT and ENODEV, the kernel's "no such link") and
//! whose message names the request.
//!
//! Namespaces: a netlink socket acts in the network namespace it was created in, whatever thread
//! later uses it. `open_in` therefore creates the socket on a short-lived thread that `setns()`es
//! into the target namespace; the caller's threads (tokio's among them) never change namespace.

use std::io;
use std::net::{IpAddr, Ipv4Addr};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::path::Path;

use nix::errno::Errno;
use nix::sys::socket::{self, AddressFamily, MsgFlags, NetlinkAddr, SockFlag, SockProtocol, SockType};

use crate::nlmsg::{Message, Outcome, Reply};
use crate::rtnl::{self, RTM_NEWADDR, RTM_NEWLINK};

pub use crate::rtnl::LinkInfo;

/// A request the kernel refused: what was asked, its errno, and its explanation when it gave one
/// (extended ack).
#[derive(Debug, thiserror::Error)]
#[error("{request}: {}{}", detail.as_deref().map(|d| format!("{d}: ")).unwrap_or_default(), io::Error::from_raw_os_error(*errno))]
pub struct NetlinkError {
    pub request: String,
    pub errno: i32,
    pub detail: Option<String>,
}

impl NetlinkError {
    /// The io::Error callers get: its kind follows the errno (ENODEV counts as NotFound).
    fn into_io(self) -> io::Error {
        let kind = match self.errno {
            libc::ENODEV => io::ErrorKind::NotFound,
            e => io::Error::from_raw_os_error(e).kind(),
        };
        io::Error::new(kind, self)
    }
}

/// The errno behind an error returned here, when the kernel refused a request.
pub fn errno(err: &io::Error) -> Option<i32> {
    err.get_ref()
        .and_then(|e| e.downcast_ref::<NetlinkError>())
        .map(|e| e.errno)
        .or_else(|| err.raw_os_error())
}

const SOL_NETLINK: i32 = 270;
const NETLINK_CAP_ACK: i32 = 10;
const NETLINK_EXT_ACK: i32 = 11;

/// Dumps the kernel interrupted (the table changed under it) are retried this many times.
const DUMP_ATTEMPTS: usize = 5;
/// Bigger than the largest datagram the kernel sends (it caps dumps at 32 KiB).
const RECV_BUF: usize = 64 * 1024;

/// A `NETLINK_ROUTE` socket and its request sequence.
pub struct Netlink {
    fd: OwnedFd,
    seq: u32,
    buf: Vec<u8>,
}

impl Netlink {
    /// A socket in the calling thread's network namespace.
    pub fn open() -> io::Result<Netlink> {
        let fd = socket::socket(
            AddressFamily::Netlink,
            SockType::Raw,
            SockFlag::SOCK_CLOEXEC,
            SockProtocol::NetlinkRoute,
        )
        .map_err(|e| io::Error::new(io::Error::from(e).kind(), format!("open a netlink socket: {e}")))?;
        socket::bind(fd.as_raw_fd(), &NetlinkAddr::new(0, 0))
            .map_err(|e| io::Error::new(io::Error::from(e).kind(), format!("bind a netlink socket: {e}")))?;
        // The kernel's explanations of refusals (4.12+), and only the header of a refused request
        // echoed back. Both are comforts: an older kernel without them still answers with errnos.
        let _ = berth_sys::fd::set_int_sockopt(fd.as_fd(), SOL_NETLINK, NETLINK_EXT_ACK, 1);
        let _ = berth_sys::fd::set_int_sockopt(fd.as_fd(), SOL_NETLINK, NETLINK_CAP_ACK, 1);
        Ok(Netlink {
            fd,
            seq: 0,
            buf: vec![0; RECV_BUF],
        })
    }

    /// A socket in the namespace of the file `netns` (e.g. /run/berth/netns/ID or
    /// /proc/PID/ns/net): a short-lived thread setns()es into it and opens the socket there (a
    /// netlink socket stays bound to the namespace it was created in), so the caller's threads
    /// never change namespace.
    pub fn open_in(netns: &Path) -> io::Result<Netlink> {
        crate::netns::run_in(netns, Netlink::open)?
    }

    /// Sends `msg` and waits for its acknowledgement; the answers before it (a `get`) are returned.
    fn ack(&mut self, msg: &Message, request: impl FnOnce() -> String) -> io::Result<Vec<Vec<u8>>> {
        let seq = self.send(msg)?;
        match self.wait(Reply::ack(seq))? {
            Outcome::Answers(answers) => Ok(answers),
            Outcome::Refused(errno, detail) => Err(NetlinkError {
                request: request(),
                errno,
                detail,
            }
            .into_io()),
            Outcome::Interrupted => unreachable!("only dumps are interrupted"),
        }
    }

    /// Sends a dump request and collects its entries (messages of type `entries`), starting over
    /// when the kernel says the dump was interrupted by a change.
    fn dump(&mut self, msg: &Message, entries: u16, what: &str) -> io::Result<Vec<Vec<u8>>> {
        for _ in 0..DUMP_ATTEMPTS {
            let seq = self.send(msg)?;
            match self.wait(Reply::dump(seq, entries))? {
                Outcome::Answers(answers) => return Ok(answers),
                Outcome::Refused(errno, detail) => {
                    return Err(NetlinkError {
                        request: what.to_string(),
                        errno,
                        detail,
                    }
                    .into_io())
                }
                Outcome::Interrupted => continue,
            }
        }
        Err(io::Error::new(
            io::ErrorKind::Interrupted,
            format!("{what}: the dump kept changing"),
        ))
    }

    fn wait(&mut self, mut reply: Reply) -> io::Result<Outcome> {
        loop {
            let n = self.recv()?;
            if let Some(outcome) = reply.feed(&self.buf[..n])? {
                return Ok(outcome);
            }
        }
    }

    fn send(&mut self, msg: &Message) -> io::Result<u32> {
        self.seq = self.seq.wrapping_add(1);
        let bytes = msg.finish(self.seq);
        let kernel = NetlinkAddr::new(0, 0);
        let sent = socket::sendto(self.fd.as_raw_fd(), &bytes, &kernel, MsgFlags::empty())
            .map_err(|e| io::Error::new(io::Error::from(e).kind(), format!("send to netlink: {e}")))?;
        if sent != bytes.len() {
            return Err(io::Error::new(io::ErrorKind::WriteZero, "short send to netlink"));
        }
        Ok(self.seq)
    }

    /// One datagram into `self.buf`; MSG_TRUNC makes a datagram larger than the buffer an error
    /// rather than a silently cut answer.
    fn recv(&mut self) -> io::Result<usize> {
        loop {
            match socket::recv(self.fd.as_raw_fd(), &mut self.buf, MsgFlags::MSG_TRUNC) {
                Ok(n) if n > self.buf.len() => {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        "netlink answer truncated",
                    ))
                }
                Ok(n) => return Ok(n),
                Err(Errno::EINTR) => continue,
                Err(e) => {
                    return Err(io::Error::new(
                        io::Error::from(e).kind(),
                        format!("receive from netlink: {e}"),
                    ))
                }
            }
        }
    }

    /// The index of the link named `name`, None when there is none (RTM_GETLINK).
    pub fn index(&mut self, name: &str) -> io::Result<Option<u32>> {
        rtnl::check_name(name)?;
        match self.ack(&rtnl::get_link_by_name(name), || format!("get link {name}")) {
            Ok(answers) => first_link(answers).map(|l| l.map(|l| l.index)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// One link by index, None when there is none.
    pub fn link(&mut self, index: u32) -> io::Result<Option<LinkInfo>> {
        match self.ack(&rtnl::get_link(index), || format!("get link {index}")) {
            Ok(answers) => first_link(answers),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Creates a bridge and returns its index; AlreadyExists if a link has that name.
    pub fn create_bridge(&mut self, name: &str, mtu: Option<u32>) -> io::Result<u32> {
        rtnl::check_name(name)?;
        self.ack(&rtnl::new_bridge(name, mtu), || format!("create bridge {name}"))?;
        self.index(name)?.ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::NotFound,
                format!("bridge {name} vanished after creation"),
            )
        })
    }

    /// A veth pair `host` <-> `peer`, the peer created directly inside `peer_netns`
    /// (IFLA_NET_NS_FD) when given.
    pub fn create_veth(
        &mut self,
        host: &str,
        peer: &str,
        peer_netns: Option<BorrowedFd<'_>>,
        mtu: Option<u32>,
    ) -> io::Result<()> {
        rtnl::check_name(host)?;
        rtnl::check_name(peer)?;
        let fd = peer_netns.map(|fd| fd.as_raw_fd() as u32);
        self.ack(&rtnl::new_veth(host, peer, fd, mtu), || {
            format!("create veth pair {host} <-> {peer}")
        })?;
        Ok(())
    }

    pub fn set_master(&mut self, index: u32, master: u32) -> io::Result<()> {
        self.change(&rtnl::set_master(index, master), || {
            format!("attach link {index} to {master}")
        })
    }

    pub fn set_up(&mut self, index: u32) -> io::Result<()> {
        self.change(&rtnl::set_up(index, true), || format!("set link {index} up"))
    }

    pub fn set_down(&mut self, index: u32) -> io::Result<()> {
        self.change(&rtnl::set_up(index, false), || format!("set link {index} down"))
    }

    pub fn set_mtu(&mut self, index: u32, mtu: u32) -> io::Result<()> {
        self.change(&rtnl::set_mtu(index, mtu), || {
            format!("set the mtu of link {index} to {mtu}")
        })
    }

    pub fn set_mac(&mut self, index: u32, mac: [u8; 6]) -> io::Result<()> {
        self.change(&rtnl::set_mac(index, mac), || {
            format!("set the mac of link {index} to {}", mac_string(&mac))
        })
    }

    /// Renames a link; the kernel refuses (EBUSY) while it is up.
    pub fn rename(&mut self, index: u32, name: &str) -> io::Result<()> {
        rtnl::check_name(name)?;
        self.change(&rtnl::rename(index, name), || {
            format!("rename link {index} to {name}")
        })
    }

    /// Turns a bridge port's hairpin mode (traffic sent back out of the port it came in by) on or off.
    pub fn set_hairpin(&mut self, port_index: u32, on: bool) -> io::Result<()> {
        let state = if on { "on" } else { "off" };
        self.change(&rtnl::set_hairpin(port_index, on), || {
            format!("set hairpin {state} on link {port_index}")
        })
    }

    /// A bridge port's hairpin mode; None when the link is not a bridge port, NotFound when gone.
    pub fn hairpin(&mut self, port_index: u32) -> io::Result<Option<bool>> {
        let answers = self.ack(&rtnl::get_link(port_index), || format!("get link {port_index}"))?;
        match answers.first() {
            Some(payload) => rtnl::parse_hairpin(payload),
            None => Ok(None),
        }
    }

    /// Deletes a link (a veth's peer goes with it); NotFound if it is gone.
    pub fn delete(&mut self, index: u32) -> io::Result<()> {
        self.change(&rtnl::delete(index), || format!("delete link {index}"))
    }

    /// Adds an IPv4 or IPv6 address; an IPv4 one gets its subnet's broadcast address.
    pub fn add_address(&mut self, index: u32, addr: IpAddr, prefix: u8) -> io::Result<()> {
        if prefix > rtnl::max_prefix(addr) {
            let msg = format!("invalid prefix length {prefix} for {addr}");
            return Err(io::Error::new(io::ErrorKind::InvalidInput, msg));
        }
        self.change(&rtnl::new_address(index, addr, prefix), || {
            format!("add address {addr}/{prefix} to link {index}")
        })
    }

    /// The addresses of a link, with their prefix lengths, in the kernel's order (IPv4 first).
    pub fn addresses(&mut self, index: u32) -> io::Result<Vec<(IpAddr, u8)>> {
        let answers = self.dump(&rtnl::dump_addresses(), RTM_NEWADDR, "list addresses")?;
        let mut out = Vec::new();
        for payload in answers {
            if let Some((i, ip, prefix)) = rtnl::parse_address(&payload)? {
                if i == index {
                    out.push((ip, prefix));
                }
            }
        }
        Ok(out)
    }

    /// Adds a default route (IPv4 or IPv6, after the gateway's family) through `gateway` out of `index`.
    pub fn add_default_route(&mut self, gateway: IpAddr, index: u32) -> io::Result<()> {
        let request = || format!("add default route via {gateway} dev {index}");
        self.change(&rtnl::new_default_route(gateway, index), request)
    }

    /// Every link of the namespace.
    pub fn links(&mut self) -> io::Result<Vec<LinkInfo>> {
        let answers = self.dump(&rtnl::dump_links(), RTM_NEWLINK, "list links")?;
        answers.iter().map(|p| rtnl::parse_link(p)).collect()
    }

    fn change(&mut self, msg: &Message, request: impl FnOnce() -> String) -> io::Result<()> {
        self.ack(msg, request).map(drop)
    }
}

impl AsFd for Netlink {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

fn first_link(answers: Vec<Vec<u8>>) -> io::Result<Option<LinkInfo>> {
    answers.first().map(|p| rtnl::parse_link(p)).transpose()
}

/// The MAC docker gives a container for its IPv4 address: `02:42:` and the address's 4 bytes.
pub fn mac_for(ip: Ipv4Addr) -> [u8; 6] {
    let [a, b, c, d] = ip.octets();
    [0x02, 0x42, a, b, c, d]
}

/// A MAC as "02:42:ac:11:00:02".
pub fn mac_string(mac: &[u8; 6]) -> String {
    mac.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn macs_as_docker_makes_them() {
        let mac = mac_for(Ipv4Addr::new(172, 17, 0, 2));
        assert_eq!(mac, [0x02, 0x42, 0xac, 0x11, 0x00, 0x02]);
        assert_eq!(mac_string(&mac), "02:42:ac:11:00:02");
        assert_eq!(
            mac_string(&mac_for(Ipv4Addr::new(10, 255, 0, 254))),
            "02:42:0a:ff:00:fe"
        );
    }

    fn refused(request: &str, errno: i32) -> io::Error {
        NetlinkError {
            request: request.into(),
            errno,
            detail: None,
        }
        .into_io()
    }

    #[test]
    fn refusals_keep_their_errno_and_name_the_request() {
        let exists = refused("create bridge berth0", libc::EEXIST);
        assert_eq!(exists.kind(), io::ErrorKind::AlreadyExists);
        assert_eq!(
            exists.to_string(),
            "create bridge berth0: File exists (os error 17)"
        );
        assert_eq!(errno(&exists), Some(libc::EEXIST));
        let gone = refused("delete link 9", libc::ENODEV);
        assert_eq!(
            gone.kind(),
            io::ErrorKind::NotFound,
            "ENODEV is the kernel's no such link"
        );
        let perm = refused("set link 1 up", libc::EPERM);
        assert_eq!(perm.kind(), io::ErrorKind::PermissionDenied);
        assert_eq!(
            errno(&io::Error::from_raw_os_error(libc::EBUSY)),
            Some(libc::EBUSY)
        );
        assert_eq!(errno(&io::Error::other("x")), None);
        let explained = NetlinkError {
            request: "set the mtu of link 5 to 10".into(),
            errno: libc::EINVAL,
            detail: Some("mtu less than device minimum".into()),
        };
        assert_eq!(
            explained.to_string(),
            "set the mtu of link 5 to 10: mtu less than device minimum: Invalid argument (os error 22)"
        );
    }
}
