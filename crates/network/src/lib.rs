//! berth's networks (issue 6, in progress): pure planning first. IPv4 subnets and their arithmetic
//! (`net.rs`), address management with docker's rules and messages (`ipam.rs`), the choice of a
//! subnet for a new network that clashes with nothing (`pools.rs`), and `-p` port specs
//! (`ports.rs`). Nothing here touches the host.
//! `dns` is the embedded DNS server: its messages are pure, its server runs on tokio sockets.

pub mod dns;
pub mod ipam;
pub mod net;
pub mod pools;
pub mod ports;

pub use ipam::{Ipam, IpamError};
pub use net::{NetError, Subnet};
