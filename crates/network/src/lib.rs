//! berth's networks (issue 6). Pure planning: IPv4 and IPv6 subnets and their arithmetic
//! (`net.rs`), address management with docker's rules and messages (`ipam.rs`), the choice of a
//! subnet for a new network that clashes with nothing (`pools.rs`), and `-p` port specs
//! (`ports.rs`). Host plumbing: an rtnetlink client for links, addresses and routes (`link.rs`,
//! over the wire format of `nlmsg.rs` and the requests of `rtnl.rs`), network namespaces as
//! bind-mounted files (`netns.rs`), and /proc/sys (`sysctl.rs`). `dns` is the embedded DNS server:
//! its messages are pure, its server runs on tokio sockets.

pub mod dns;
pub mod firewall;
pub mod ipam;
pub mod link;
pub mod net;
pub mod netns;
mod nlmsg;
pub mod pools;
pub mod ports;
mod rtnl;
pub mod sysctl;

pub use ipam::{Ipam, Ipam6, IpamError};
pub use link::{mac_for, mac_string, LinkInfo, Netlink, NetlinkError};
pub use net::{Cidr, Family, NetError, Subnet, Subnet6};
