//! rtnetlink requests and answers as data: which message, flags, family header and attributes each
//! operation of `link.rs` sends, and how links and addresses are read back from the kernel's
//! answers. Pure, so the bytes are tested without a socket. Values from `include/uapi/linux/
//! {rtnetlink,if_link,if_addr,veth}.h`.

use std::io;
use std::net::IpAddr;

use crate::nlmsg::{self, Message, NLM_F_ACK, NLM_F_CREATE, NLM_F_DUMP, NLM_F_EXCL};

pub const RTM_NEWLINK: u16 = 16;
pub const RTM_DELLINK: u16 = 17;
pub const RTM_GETLINK: u16 = 18;
pub const RTM_SETLINK: u16 = 19;
pub const RTM_NEWADDR: u16 = 20;
pub const RTM_GETADDR: u16 = 22;
pub const RTM_NEWROUTE: u16 = 24;

const AF_UNSPEC: u8 = 0;
const AF_INET: u8 = 2;
const AF_BRIDGE: u8 = 7;
const AF_INET6: u8 = 10;

const IFF_UP: u32 = 0x1;

const IFLA_ADDRESS: u16 = 1;
const IFLA_IFNAME: u16 = 3;
const IFLA_MTU: u16 = 4;
const IFLA_MASTER: u16 = 10;
const IFLA_PROTINFO: u16 = 12;
const IFLA_LINKINFO: u16 = 18;
const IFLA_NET_NS_FD: u16 = 28;
const IFLA_INFO_KIND: u16 = 1;
const IFLA_INFO_DATA: u16 = 2;
const IFLA_INFO_SLAVE_DATA: u16 = 5;
const VETH_INFO_PEER: u16 = 1;
const IFLA_BRPORT_MODE: u16 = 4;

const IFA_ADDRESS: u16 = 1;
const IFA_LOCAL: u16 = 2;
const IFA_BROADCAST: u16 = 4;
const IFA_F_NODAD: u8 = 0x02;

const RTA_GATEWAY: u16 = 5;
const RTA_OIF: u16 = 4;
const RT_TABLE_MAIN: u8 = 254;
const RTPROT_BOOT: u8 = 3;
const RT_SCOPE_UNIVERSE: u8 = 0;
const RT_SCOPE_HOST: u8 = 254;
const RTN_UNICAST: u8 = 1;

const NEW: u16 = NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL;

/// An interface name the kernel accepts: 1 to 15 bytes (IFNAMSIZ - 1), no '/', no whitespace.
pub fn check_name(name: &str) -> io::Result<()> {
    let ok = !name.is_empty()
        && name.len() < 16
        && name != "."
        && name != ".."
        && !name
            .bytes()
            .any(|b| b == b'/' || b == b':' || b.is_ascii_whitespace() || b == 0);
    if ok {
        Ok(())
    } else {
        Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("invalid interface name {name:?}"),
        ))
    }
}

/// `struct ifinfomsg`: family, pad, type, index, flags, change.
fn ifinfomsg(family: u8, index: u32, flags: u32, change: u32) -> [u8; 16] {
    let mut b = [0u8; 16];
    b[0] = family;
    b[4..8].copy_from_slice(&index.to_ne_bytes());
    b[8..12].copy_from_slice(&flags.to_ne_bytes());
    b[12..16].copy_from_slice(&change.to_ne_bytes());
    b
}

/// `RTM_GETLINK` of one link by name.
pub fn get_link_by_name(name: &str) -> Message {
    let mut m = Message::new(RTM_GETLINK, NLM_F_ACK, &ifinfomsg(AF_UNSPEC, 0, 0, 0));
    m.attr_str(IFLA_IFNAME, name);
    m
}

/// `RTM_GETLINK` of one link by index.
pub fn get_link(index: u32) -> Message {
    Message::new(RTM_GETLINK, NLM_F_ACK, &ifinfomsg(AF_UNSPEC, index, 0, 0))
}

/// `RTM_GETLINK` of every link.
pub fn dump_links() -> Message {
    Message::new(RTM_GETLINK, NLM_F_DUMP, &ifinfomsg(AF_UNSPEC, 0, 0, 0))
}

/// `RTM_NEWLINK` of a bridge.
pub fn new_bridge(name: &str, mtu: Option<u32>) -> Message {
    let mut m = Message::new(RTM_NEWLINK, NEW, &ifinfomsg(AF_UNSPEC, 0, 0, 0));
    m.attr_str(IFLA_IFNAME, name);
    if let Some(mtu) = mtu {
        m.attr_u32(IFLA_MTU, mtu);
    }
    m.begin(IFLA_LINKINFO).attr_str(IFLA_INFO_KIND, "bridge").end();
    m
}

/// `RTM_NEWLINK` of a veth pair: the peer is described inside `IFLA_INFO_DATA` by its own
/// `ifinfomsg` and attributes, among them `IFLA_NET_NS_FD` to create it in another namespace.
pub fn new_veth(host: &str, peer: &str, peer_netns: Option<u32>, mtu: Option<u32>) -> Message {
    let mut m = Message::new(RTM_NEWLINK, NEW, &ifinfomsg(AF_UNSPEC, 0, 0, 0));
    m.attr_str(IFLA_IFNAME, host);
    if let Some(mtu) = mtu {
        m.attr_u32(IFLA_MTU, mtu);
    }
    m.begin(IFLA_LINKINFO).attr_str(IFLA_INFO_KIND, "veth");
    m.begin(IFLA_INFO_DATA).begin(VETH_INFO_PEER);
    m.raw(&ifinfomsg(AF_UNSPEC, 0, 0, 0)).attr_str(IFLA_IFNAME, peer);
    if let Some(mtu) = mtu {
        m.attr_u32(IFLA_MTU, mtu);
    }
    if let Some(fd) = peer_netns {
        m.attr_u32(IFLA_NET_NS_FD, fd);
    }
    m.end().end().end();
    m
}

/// `RTM_SETLINK` of one link: the caller adds the attributes to change.
pub fn set_link(index: u32) -> Message {
    Message::new(RTM_SETLINK, NLM_F_ACK, &ifinfomsg(AF_UNSPEC, index, 0, 0))
}

pub fn set_master(index: u32, master: u32) -> Message {
    let mut m = set_link(index);
    m.attr_u32(IFLA_MASTER, master);
    m
}

/// `RTM_SETLINK` changing only `IFF_UP`.
pub fn set_up(index: u32, up: bool) -> Message {
    let flags = if up { IFF_UP } else { 0 };
    Message::new(
        RTM_SETLINK,
        NLM_F_ACK,
        &ifinfomsg(AF_UNSPEC, index, flags, IFF_UP),
    )
}

pub fn set_mtu(index: u32, mtu: u32) -> Message {
    let mut m = set_link(index);
    m.attr_u32(IFLA_MTU, mtu);
    m
}

pub fn set_mac(index: u32, mac: [u8; 6]) -> Message {
    let mut m = set_link(index);
    m.attr(IFLA_ADDRESS, &mac);
    m
}

pub fn rename(index: u32, name: &str) -> Message {
    let mut m = set_link(index);
    m.attr_str(IFLA_IFNAME, name);
    m
}

/// `RTM_SETLINK` to the bridge family: a port's flags go in `IFLA_PROTINFO`, which must carry the
/// nested bit (without it the kernel reads the payload as a port state).
pub fn set_hairpin(port: u32, on: bool) -> Message {
    let mut m = Message::new(RTM_SETLINK, NLM_F_ACK, &ifinfomsg(AF_BRIDGE, port, 0, 0));
    m.begin(IFLA_PROTINFO)
        .attr_u8(IFLA_BRPORT_MODE, u8::from(on))
        .end();
    m
}

pub fn delete(index: u32) -> Message {
    Message::new(RTM_DELLINK, NLM_F_ACK, &ifinfomsg(AF_UNSPEC, index, 0, 0))
}

fn family_of(addr: IpAddr) -> u8 {
    match addr {
        IpAddr::V4(_) => AF_INET,
        IpAddr::V6(_) => AF_INET6,
    }
}

fn octets(addr: IpAddr) -> Vec<u8> {
    match addr {
        IpAddr::V4(a) => a.octets().to_vec(),
        IpAddr::V6(a) => a.octets().to_vec(),
    }
}

/// The longest prefix of `addr`'s family.
pub fn max_prefix(addr: IpAddr) -> u8 {
    if addr.is_ipv4() {
        32
    } else {
        128
    }
}

/// `RTM_NEWADDR`. An IPv4 address carries `IFA_LOCAL`, `IFA_ADDRESS` and the subnet's broadcast
/// (as `ip addr add ... brd +`); an IPv6 one skips duplicate address detection, so it can be used
/// (as a route's source) at once, as netavark does. Loopback addresses get host scope.
pub fn new_address(index: u32, addr: IpAddr, prefix: u8) -> Message {
    let flags = if addr.is_ipv6() { IFA_F_NODAD } else { 0 };
    let scope = if addr.is_loopback() {
        RT_SCOPE_HOST
    } else {
        RT_SCOPE_UNIVERSE
    };
    let mut ifa = [0u8; 8];
    ifa[0] = family_of(addr);
    ifa[1] = prefix;
    ifa[2] = flags;
    ifa[3] = scope;
    ifa[4..8].copy_from_slice(&index.to_ne_bytes());
    let mut m = Message::new(RTM_NEWADDR, NEW, &ifa);
    match addr {
        IpAddr::V4(a) => {
            m.attr(IFA_LOCAL, &a.octets()).attr(IFA_ADDRESS, &a.octets());
            if prefix < 31 {
                let host_bits = u32::MAX.checked_shr(u32::from(prefix)).unwrap_or(0);
                m.attr(IFA_BROADCAST, &(u32::from(a) | host_bits).to_be_bytes());
            }
        }
        IpAddr::V6(a) => {
            m.attr(IFA_ADDRESS, &a.octets());
        }
    }
    m
}

/// `RTM_GETADDR` of every address (the kernel filters by index only in strict mode, so the
/// answer is filtered by `parse_address`'s caller).
pub fn dump_addresses() -> Message {
    Message::new(RTM_GETADDR, NLM_F_DUMP, &[AF_UNSPEC, 0, 0, 0, 0, 0, 0, 0])
}

/// `RTM_NEWROUTE` of a default route through `gateway` out of link `index`, in the main table.
pub fn new_default_route(gateway: IpAddr, index: u32) -> Message {
    let rtm = [
        family_of(gateway),
        0,
        0,
        0,
        RT_TABLE_MAIN,
        RTPROT_BOOT,
        RT_SCOPE_UNIVERSE,
        RTN_UNICAST,
    ];
    let mut family = [0u8; 12];
    family[..8].copy_from_slice(&rtm);
    let mut m = Message::new(RTM_NEWROUTE, NEW, &family);
    m.attr(RTA_GATEWAY, &octets(gateway)).attr_u32(RTA_OIF, index);
    m
}

/// One link as `RTM_NEWLINK` describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkInfo {
    pub index: u32,
    pub name: String,
    /// The driver: "bridge", "veth", ... (None for physical devices and `lo`).
    pub kind: Option<String>,
    /// The bridge (or bond) this link is a port of.
    pub master: Option<u32>,
    pub mtu: u32,
    /// The hardware address, when it is an Ethernet one (6 bytes).
    pub mac: Option<[u8; 6]>,
    /// Administratively up (`IFF_UP`).
    pub up: bool,
}

/// Reads an `RTM_NEWLINK` payload (ifinfomsg, then attributes).
pub fn parse_link(payload: &[u8]) -> io::Result<LinkInfo> {
    let (hdr, attrs) = split_family(payload, 16)?;
    let mut link = LinkInfo {
        index: nlmsg::u32_at(hdr, 4),
        name: String::new(),
        kind: None,
        master: None,
        mtu: 0,
        mac: None,
        up: nlmsg::u32_at(hdr, 8) & IFF_UP != 0,
    };
    for (ty, data) in nlmsg::attrs(attrs)? {
        match ty {
            IFLA_IFNAME => link.name = nlmsg::attr_string(data),
            IFLA_MTU => link.mtu = nlmsg::attr_u32(data)?,
            IFLA_MASTER => link.master = Some(nlmsg::attr_u32(data)?).filter(|&m| m != 0),
            IFLA_ADDRESS => link.mac = <[u8; 6]>::try_from(data).ok(),
            IFLA_LINKINFO => link.kind = info_attr(data, IFLA_INFO_KIND)?.map(nlmsg::attr_string),
            _ => {}
        }
    }
    Ok(link)
}

/// A bridge port's hairpin mode from an `RTM_NEWLINK` payload (`IFLA_LINKINFO` /
/// `IFLA_INFO_SLAVE_DATA` / `IFLA_BRPORT_MODE`); None when the link is no bridge port.
pub fn parse_hairpin(payload: &[u8]) -> io::Result<Option<bool>> {
    let (_, attrs) = split_family(payload, 16)?;
    for (ty, data) in nlmsg::attrs(attrs)? {
        if ty == IFLA_LINKINFO {
            if let Some(port) = info_attr(data, IFLA_INFO_SLAVE_DATA)? {
                return Ok(info_attr(port, IFLA_BRPORT_MODE)?
                    .and_then(|m| m.first())
                    .map(|&m| m != 0));
            }
        }
    }
    Ok(None)
}

fn info_attr(nest: &[u8], want: u16) -> io::Result<Option<&[u8]>> {
    Ok(nlmsg::attrs(nest)?
        .into_iter()
        .find(|(ty, _)| *ty == want)
        .map(|(_, d)| d))
}

fn split_family(payload: &[u8], len: usize) -> io::Result<(&[u8], &[u8])> {
    if payload.len() < len {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "malformed netlink answer: short family header",
        ));
    }
    Ok(payload.split_at(nlmsg::align(len)))
}

/// Reads an `RTM_NEWADDR` payload: (link index, address, prefix length). For IPv4 the local
/// address (`IFA_LOCAL`) is the interface's own; `IFA_ADDRESS` is the peer on point-to-point links.
pub fn parse_address(payload: &[u8]) -> io::Result<Option<(u32, IpAddr, u8)>> {
    let (hdr, attrs) = split_family(payload, 8)?;
    let (family, prefix, index) = (hdr[0], hdr[1], nlmsg::u32_at(hdr, 4));
    let mut local = None;
    let mut address = None;
    for (ty, data) in nlmsg::attrs(attrs)? {
        let ip = match (family, data.len()) {
            (AF_INET, 4) => IpAddr::from(<[u8; 4]>::try_from(data).expect("length checked")),
            (AF_INET6, 16) => IpAddr::from(<[u8; 16]>::try_from(data).expect("length checked")),
            _ => continue,
        };
        match ty {
            IFA_LOCAL => local = Some(ip),
            IFA_ADDRESS => address = Some(ip),
            _ => {}
        }
    }
    Ok(local.or(address).map(|ip| (index, ip, prefix)))
}

#[cfg(all(test, target_endian = "little"))]
mod tests {
    use std::net::{Ipv4Addr, Ipv6Addr};

    use super::*;

    /// Bytes from hex, whitespace and `#` comments ignored.
    fn hex(text: &str) -> Vec<u8> {
        let digits: String = text
            .lines()
            .map(|l| l.split('#').next().unwrap())
            .collect::<String>()
            .split_whitespace()
            .collect();
        (0..digits.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&digits[i..i + 2], 16).unwrap())
            .collect()
    }

    #[test]
    fn veth_with_its_peer_in_another_namespace() {
        let got = new_veth("vh0", "eth0", Some(7), Some(1500)).finish(1);
        let want = hex(
            "74000000 1000 0506 01000000 00000000   # len 116, RTM_NEWLINK, REQUEST|ACK|EXCL|CREATE, seq 1
             00000000 00000000 00000000 00000000    # ifinfomsg
             0800 0300 76683000                     # IFLA_IFNAME vh0
             0800 0400 dc050000                     # IFLA_MTU 1500
             4400 1280                              # IFLA_LINKINFO (nested), 68 bytes
               0900 0100 76657468 00000000          # IFLA_INFO_KIND veth
               3400 0280                            # IFLA_INFO_DATA (nested)
                 3000 0180                          # VETH_INFO_PEER (nested): ifinfomsg + attributes
                   00000000 00000000 00000000 00000000
                   0900 0300 65746830 00000000      # IFLA_IFNAME eth0
                   0800 0400 dc050000               # IFLA_MTU 1500
                   0800 1c00 07000000               # IFLA_NET_NS_FD 7",
        );
        assert_eq!(got, want);
    }

    #[test]
    fn bridge_without_mtu() {
        let got = new_bridge("berth0", None).finish(3);
        let want = hex("3c000000 1000 0506 03000000 00000000
             00000000 00000000 00000000 00000000
             0b00 0300 62657274 68300000            # IFLA_IFNAME berth0
             1000 1280 0b00 0100 62726964 67650000  # IFLA_LINKINFO { IFLA_INFO_KIND bridge }");
        assert_eq!(got, want);
    }

    #[test]
    fn ipv4_address_with_broadcast() {
        let got = new_address(3, Ipv4Addr::new(10, 88, 0, 2).into(), 24).finish(2);
        let want = hex("30000000 1400 0506 02000000 00000000   # RTM_NEWADDR
             02 18 00 00 03000000                   # ifaddrmsg: AF_INET, /24, no flags, universe, index 3
             0800 0200 0a580002                     # IFA_LOCAL
             0800 0100 0a580002                     # IFA_ADDRESS
             0800 0400 0a5800ff                     # IFA_BROADCAST");
        assert_eq!(got, want);
        let p31 = new_address(3, Ipv4Addr::new(10, 0, 0, 0).into(), 31).finish(2);
        assert_eq!(p31.len(), 0x30 - 8, "no broadcast on a /31");
        let lo = new_address(1, Ipv4Addr::new(127, 0, 0, 2).into(), 8).finish(2);
        assert_eq!(lo[16 + 3], RT_SCOPE_HOST);
    }

    #[test]
    fn ipv6_address_without_dad() {
        let got = new_address(3, "fd00::2".parse::<Ipv6Addr>().unwrap().into(), 64).finish(4);
        let want = hex("2c000000 1400 0506 04000000 00000000
             0a 40 02 00 03000000                   # AF_INET6, /64, IFA_F_NODAD, universe, index 3
             1400 0100 fd000000 00000000 00000000 00000002");
        assert_eq!(got, want);
    }

    #[test]
    fn default_route_through_a_gateway() {
        let got = new_default_route(Ipv4Addr::new(10, 88, 0, 1).into(), 3).finish(3);
        let want = hex(
            "2c000000 1800 0506 03000000 00000000   # RTM_NEWROUTE
             02 00 00 00 fe 03 00 01 00000000       # rtmsg: AF_INET, dst /0, main table, boot, universe, unicast
             0800 0500 0a580001                     # RTA_GATEWAY
             0800 0400 03000000                     # RTA_OIF",
        );
        assert_eq!(got, want);
        let v6 = new_default_route("fd00::1".parse::<Ipv6Addr>().unwrap().into(), 3).finish(3);
        assert_eq!(
            (v6.len(), v6[16], v6[28]),
            (0x38, AF_INET6, 20),
            "a 16-byte gateway"
        );
    }

    #[test]
    fn hairpin_is_a_nested_bridge_port_attribute() {
        let got = set_hairpin(4, true).finish(4);
        let want = hex("2c000000 1300 0500 04000000 00000000   # RTM_SETLINK, REQUEST|ACK
             07 00 0000 04000000 00000000 00000000  # ifinfomsg: AF_BRIDGE, index 4
             0c00 0c80 0500 0400 01000000           # IFLA_PROTINFO (nested) { IFLA_BRPORT_MODE 1 }");
        assert_eq!(got, want);
    }

    #[test]
    fn up_and_down_change_only_iff_up() {
        let up = set_up(5, true).finish(1);
        assert_eq!(&up[16..32], &hex("00000000 05000000 01000000 01000000")[..]);
        let down = set_up(5, false).finish(1);
        assert_eq!(&down[16..32], &hex("00000000 05000000 00000000 01000000")[..]);
    }

    /// `RTM_GETLINK` dump captured with Python's socket module (not this code) from a 6.18 kernel,
    /// in a fresh namespace after `ip link set lo up; ip link add br0 mtu 1400 type bridge;
    /// ip link add v0 type veth peer name v1; ip link set v0 master br0; ip link set v0 address
    /// 02:42:0a:58:00:02; ip link set br0 up; bridge link set dev v0 hairpin on`.
    const DUMP: &[u8] = include_bytes!("../testdata/getlink-dump.bin");

    fn captured() -> Vec<Vec<u8>> {
        let mut reply = nlmsg::Reply::dump(1, RTM_NEWLINK);
        // The capture is several datagrams back to back; each ends aligned, so it splits as one.
        match reply.feed(DUMP).unwrap() {
            Some(nlmsg::Outcome::Answers(a)) => a,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn links_are_read_from_a_captured_dump() {
        let links: Vec<LinkInfo> = captured().iter().map(|p| parse_link(p).unwrap()).collect();
        let mac = Some([0x02, 0x42, 0x0a, 0x58, 0x00, 0x02]);
        let want = vec![
            LinkInfo {
                index: 1,
                name: "lo".into(),
                kind: None,
                master: None,
                mtu: 65536,
                mac: Some([0; 6]),
                up: true,
            },
            LinkInfo {
                index: 2,
                name: "br0".into(),
                kind: Some("bridge".into()),
                master: None,
                mtu: 1500,
                mac,
                up: true,
            },
            LinkInfo {
                index: 3,
                name: "v1".into(),
                kind: Some("veth".into()),
                master: None,
                mtu: 1500,
                mac: Some([0x5e, 0x7d, 0x53, 0xbd, 0xc8, 0x13]),
                up: false,
            },
            LinkInfo {
                index: 4,
                name: "v0".into(),
                kind: Some("veth".into()),
                master: Some(2),
                mtu: 1500,
                mac,
                up: false,
            },
        ];
        assert_eq!(links, want);
    }

    #[test]
    fn hairpin_is_read_from_a_port_only() {
        let hairpin: Vec<Option<bool>> = captured().iter().map(|p| parse_hairpin(p).unwrap()).collect();
        assert_eq!(hairpin, vec![None, None, None, Some(true)]);
    }

    #[test]
    fn truncated_link_messages_are_errors() {
        let first = &captured()[0];
        assert!(parse_link(&first[..10]).is_err());
        let mut long = first.clone();
        long[16..18].copy_from_slice(&0xfff0u16.to_ne_bytes());
        assert!(parse_link(&long).is_err(), "an attribute longer than the message");
    }

    #[test]
    fn addresses_prefer_the_local_address() {
        let mut m = Message::new(RTM_NEWADDR, 0, &[AF_INET, 24, 0, 0, 9, 0, 0, 0]);
        m.attr(IFA_ADDRESS, &[10, 0, 0, 9])
            .attr(IFA_LOCAL, &[10, 0, 0, 2]);
        let b = m.finish(1);
        assert_eq!(
            parse_address(&b[16..]).unwrap(),
            Some((9, Ipv4Addr::new(10, 0, 0, 2).into(), 24))
        );
        let mut m = Message::new(RTM_NEWADDR, 0, &[AF_INET6, 64, 0, 0, 9, 0, 0, 0]);
        m.attr(IFA_ADDRESS, &"fd00::2".parse::<Ipv6Addr>().unwrap().octets());
        let b = m.finish(1);
        assert_eq!(
            parse_address(&b[16..]).unwrap(),
            Some((9, "fd00::2".parse().unwrap(), 64))
        );
    }

    #[test]
    fn interface_names_follow_the_kernels_rules() {
        for ok in ["eth0", "berth0", "veth1234567890a", "a.b-c_d"] {
            check_name(ok).unwrap();
        }
        for bad in ["", ".", "..", "veth1234567890ab", "a/b", "a:b", "a b"] {
            assert_eq!(
                check_name(bad).unwrap_err().kind(),
                io::ErrorKind::InvalidInput,
                "{bad:?}"
            );
        }
    }
}
