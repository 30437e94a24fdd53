//! Address management of one network, with docker's rules: the gateway (the first host address
//! unless given) is reserved, the network address is never handed out (nor IPv4's broadcast), an
//! `--ip-range` narrows what is allocated automatically, a requested address must be inside the
//! subnet and free. Allocation continues after the last address handed out (as libnetwork's
//! bitmap does), so a released address is not reused at once. The state is plain data for berthd to
//! persist; one generic type serves both families (`Ipam`, `Ipam6`).

use std::collections::BTreeSet;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use serde::{Deserialize, Serialize};

use crate::net::{Cidr, Family};

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum IpamError {
    #[error("no available {0} addresses on this network's address pools: {1}")]
    Exhausted(&'static str, String),
    #[error("Address already in use")]
    InUse,
    #[error("invalid address {0}: It does not belong to any of this network's subnets")]
    Outside(IpAddr),
    #[error("no configured subnet or ip-range contain the IP address {0}")]
    NotAllocated(IpAddr),
    #[error("invalid pool request: the gateway {0} is not in the subnet {1}")]
    GatewayOutside(IpAddr, String),
    #[error("invalid pool request: the ip range {0} is not in the subnet {1}")]
    RangeOutside(String, String),
    #[error("invalid subnet {0}: a network needs room for at least one address besides the gateway")]
    TooSmall(String),
}

/// One network's addresses of family `A`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(bound(
    serialize = "A: Family + Serialize",
    deserialize = "A: Family + Deserialize<'de>"
))]
pub struct IpamOf<A> {
    /// The network's name, for messages.
    pub name: String,
    pub subnet: Cidr<A>,
    pub gateway: A,
    /// Where automatic allocation picks from (the subnet when not given).
    pub range: Cidr<A>,
    /// Offsets (in the subnet) of addresses in use, the gateway included.
    used: BTreeSet<u128>,
    /// Where the next automatic allocation starts looking.
    next: u128,
}

/// A network's IPv4 addresses.
pub type Ipam = IpamOf<Ipv4Addr>;
/// A network's IPv6 addresses.
pub type Ipam6 = IpamOf<Ipv6Addr>;

impl<A: Family + Into<IpAddr>> IpamOf<A> {
    pub fn new(
        name: &str,
        subnet: Cidr<A>,
        gateway: Option<A>,
        range: Option<Cidr<A>>,
    ) -> Result<Self, IpamError> {
        if subnet.size() < 4 {
            return Err(IpamError::TooSmall(subnet.to_string()));
        }
        let gateway = gateway.unwrap_or_else(|| subnet.nth(1).expect("a subnet of 4 or more"));
        let first_or_last = gateway == subnet.network() || (Self::v4() && gateway == subnet.broadcast());
        if !subnet.contains(gateway) || first_or_last {
            return Err(IpamError::GatewayOutside(gateway.into(), subnet.to_string()));
        }
        let range = range.unwrap_or(subnet);
        if !(subnet.contains(range.network()) && range.prefix() >= subnet.prefix()) {
            return Err(IpamError::RangeOutside(range.to_string(), subnet.to_string()));
        }
        let mut used = BTreeSet::new();
        used.insert(subnet.offset(gateway).expect("inside"));
        Ok(IpamOf {
            name: name.to_string(),
            subnet,
            gateway,
            range,
            used,
            next: 0,
        })
    }

    fn v4() -> bool {
        A::BITS == 32
    }

    fn usable(&self, off: u128) -> bool {
        off != 0 && !(Self::v4() && off == self.subnet.size() - 1)
    }

    /// An address: `want` when given (it must be in the subnet and free), else the next free one
    /// of the range.
    pub fn allocate(&mut self, want: Option<A>) -> Result<A, IpamError> {
        if let Some(a) = want {
            let off = self.subnet.offset(a).ok_or(IpamError::Outside(a.into()))?;
            if !self.usable(off) {
                return Err(IpamError::Outside(a.into()));
            }
            if !self.used.insert(off) {
                return Err(IpamError::InUse);
            }
            return Ok(a);
        }
        let start = self.subnet.offset(self.range.network()).expect("range inside");
        let len = self.range.size();
        let from = self.next.clamp(start, start + (len - 1));
        let mut i = 0u128;
        while i < len {
            let off = start + (from - start).wrapping_add(i) % len;
            if self.usable(off) && !self.used.contains(&off) {
                self.used.insert(off);
                self.next = off + 1;
                return Ok(self.subnet.nth(off).expect("inside"));
            }
            i += 1;
        }
        let family = if Self::v4() { "IPv4" } else { "IPv6" };
        Err(IpamError::Exhausted(family, self.name.clone()))
    }

    /// Gives an address back (the gateway stays).
    pub fn release(&mut self, a: A) -> Result<(), IpamError> {
        let off = self.subnet.offset(a).ok_or(IpamError::NotAllocated(a.into()))?;
        if a == self.gateway || !self.used.remove(&off) {
            return Err(IpamError::NotAllocated(a.into()));
        }
        Ok(())
    }

    /// The addresses in use besides the gateway.
    pub fn in_use(&self) -> Vec<A> {
        self.used
            .iter()
            .filter_map(|o| self.subnet.nth(*o))
            .filter(|a| *a != self.gateway)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::net::Subnet;

    fn net(s: &str) -> Subnet {
        s.parse().unwrap()
    }

    #[test]
    fn allocates_after_the_gateway_and_skips_broadcast() {
        let mut i = Ipam::new("small", net("10.9.0.0/29"), None, None).unwrap();
        assert_eq!(i.gateway, Ipv4Addr::new(10, 9, 0, 1));
        let got: Vec<Ipv4Addr> = (0..5).map(|_| i.allocate(None).unwrap()).collect();
        assert_eq!(got.first(), Some(&Ipv4Addr::new(10, 9, 0, 2)));
        assert_eq!(got.last(), Some(&Ipv4Addr::new(10, 9, 0, 6)));
        assert_eq!(
            i.allocate(None).unwrap_err().to_string(),
            "no available IPv4 addresses on this network's address pools: small"
        );
        // A released address comes back once the others are taken.
        i.release(Ipv4Addr::new(10, 9, 0, 4)).unwrap();
        assert_eq!(i.allocate(None).unwrap(), Ipv4Addr::new(10, 9, 0, 4));
        assert!(
            i.release(Ipv4Addr::new(10, 9, 0, 1)).is_err(),
            "the gateway stays"
        );
        assert!(i.release(Ipv4Addr::new(10, 8, 0, 1)).is_err());
    }

    #[test]
    fn requested_addresses() {
        let mut i = Ipam::new(
            "n",
            net("172.20.0.0/16"),
            Some(Ipv4Addr::new(172, 20, 0, 254)),
            None,
        )
        .unwrap();
        assert_eq!(
            i.allocate(Some(Ipv4Addr::new(172, 20, 5, 5))).unwrap(),
            Ipv4Addr::new(172, 20, 5, 5)
        );
        assert_eq!(
            i.allocate(Some(Ipv4Addr::new(172, 20, 5, 5))),
            Err(IpamError::InUse)
        );
        assert_eq!(
            i.allocate(Some(Ipv4Addr::new(172, 20, 0, 254))),
            Err(IpamError::InUse)
        );
        assert_eq!(
            i.allocate(Some(Ipv4Addr::new(10, 0, 0, 1)))
                .unwrap_err()
                .to_string(),
            "invalid address 10.0.0.1: It does not belong to any of this network's subnets"
        );
        assert_eq!(i.allocate(None).unwrap(), Ipv4Addr::new(172, 20, 0, 1));
    }

    #[test]
    fn ranges_and_bad_pools() {
        let mut i = Ipam::new("r", net("10.1.0.0/16"), None, Some(net("10.1.7.0/24"))).unwrap();
        assert_eq!(i.allocate(None).unwrap(), Ipv4Addr::new(10, 1, 7, 0));
        assert!(matches!(
            Ipam::new("r", net("10.1.0.0/16"), None, Some(net("10.2.0.0/24"))),
            Err(IpamError::RangeOutside(..))
        ));
        assert!(matches!(
            Ipam::new("g", net("10.1.0.0/16"), Some(Ipv4Addr::new(10, 2, 0, 1)), None),
            Err(IpamError::GatewayOutside(..))
        ));
        assert!(matches!(
            Ipam::new("t", net("10.1.0.0/31"), None, None),
            Err(IpamError::TooSmall(_))
        ));
    }

    #[test]
    fn state_round_trips() {
        let mut i = Ipam::new("p", net("10.3.0.0/24"), None, None).unwrap();
        i.allocate(None).unwrap();
        let j: Ipam = serde_json::from_str(&serde_json::to_string(&i).unwrap()).unwrap();
        assert_eq!(i, j);
        assert_eq!(j.in_use(), vec![Ipv4Addr::new(10, 3, 0, 2)]);
    }
}

#[cfg(test)]
mod tests6 {
    use super::*;
    use crate::net::Subnet6;

    fn v6(s: &str) -> Ipv6Addr {
        s.parse().unwrap()
    }

    #[test]
    fn ipv6_allocation() {
        let sub: Subnet6 = "fd00:9::/64".parse().unwrap();
        let mut i = Ipam6::new("six", sub, None, None).unwrap();
        assert_eq!(i.gateway, v6("fd00:9::1"));
        assert_eq!(i.allocate(None).unwrap(), v6("fd00:9::2"));
        assert_eq!(i.allocate(Some(v6("fd00:9::77"))).unwrap(), v6("fd00:9::77"));
        assert_eq!(i.allocate(Some(v6("fd00:9::77"))), Err(IpamError::InUse));
        assert_eq!(
            i.allocate(Some(v6("fd00:8::1"))).unwrap_err().to_string(),
            "invalid address fd00:8::1: It does not belong to any of this network's subnets"
        );
        // The last address is an ordinary one in IPv6 (no broadcast).
        let last = v6("fd00:9::ffff:ffff:ffff:ffff");
        assert_eq!(i.allocate(Some(last)).unwrap(), last);
        i.release(v6("fd00:9::2")).unwrap();
        let j: Ipam6 = serde_json::from_str(&serde_json::to_string(&i).unwrap()).unwrap();
        assert_eq!(i, j);
        assert_eq!(j.in_use(), vec![v6("fd00:9::77"), last]);
        let mut tiny = Ipam6::new("tiny", "fd00::/126".parse().unwrap(), None, None).unwrap();
        assert_eq!(tiny.allocate(None).unwrap(), v6("fd00::2"));
        assert_eq!(tiny.allocate(None).unwrap(), v6("fd00::3"));
        assert_eq!(
            tiny.allocate(None).unwrap_err().to_string(),
            "no available IPv6 addresses on this network's address pools: tiny"
        );
    }
}
