//! IPv4 subnets: `172.17.0.0/16` parsed, checked, compared and counted.

use std::fmt;
use std::net::Ipv4Addr;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum NetError {
    #[error("invalid CIDR address: {0}")]
    Cidr(String),
}

/// An IPv4 subnet: a network address and a prefix length (host bits zero).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Subnet {
    base: u32,
    prefix: u8,
}

impl Subnet {
    pub fn new(addr: Ipv4Addr, prefix: u8) -> Option<Subnet> {
        if prefix > 32 {
            return None;
        }
        let base = u32::from(addr) & Self::mask_of(prefix);
        Some(Subnet { base, prefix })
    }

    fn mask_of(prefix: u8) -> u32 {
        if prefix == 0 {
            0
        } else {
            u32::MAX << (32 - prefix)
        }
    }

    pub fn prefix(&self) -> u8 {
        self.prefix
    }

    pub fn network(&self) -> Ipv4Addr {
        Ipv4Addr::from(self.base)
    }

    pub fn mask(&self) -> u32 {
        Self::mask_of(self.prefix)
    }

    /// How many addresses the subnet spans (2^(32-prefix)).
    pub fn size(&self) -> u64 {
        1u64 << (32 - u32::from(self.prefix))
    }

    pub fn broadcast(&self) -> Ipv4Addr {
        Ipv4Addr::from(self.base | !self.mask())
    }

    pub fn contains(&self, a: Ipv4Addr) -> bool {
        u32::from(a) & self.mask() == self.base
    }

    /// Whether the two subnets share any address.
    pub fn overlaps(&self, o: &Subnet) -> bool {
        let p = self.prefix.min(o.prefix);
        let m = Self::mask_of(p);
        self.base & m == o.base & m
    }

    /// The `n`th address of the subnet (0 is the network address).
    pub fn nth(&self, n: u64) -> Option<Ipv4Addr> {
        (n < self.size()).then(|| Ipv4Addr::from(self.base.wrapping_add(n as u32)))
    }

    /// The offset of `a` in the subnet.
    pub fn offset(&self, a: Ipv4Addr) -> Option<u64> {
        self.contains(a).then(|| u64::from(u32::from(a) - self.base))
    }

    /// The subnets of prefix `len` this subnet splits into, in order.
    pub fn split(&self, len: u8) -> impl Iterator<Item = Subnet> + '_ {
        let count = if len < self.prefix || len > 32 {
            0
        } else {
            1u64 << (len - self.prefix)
        };
        let step = if len >= 32 { 1 } else { 1u64 << (32 - len) };
        (0..count).map(move |i| Subnet {
            base: self.base.wrapping_add((i * step) as u32),
            prefix: len,
        })
    }
}

impl FromStr for Subnet {
    type Err = NetError;

    /// `a.b.c.d/n`; host bits must be zero (docker refuses `172.18.0.1/16` as a subnet too).
    fn from_str(s: &str) -> Result<Subnet, NetError> {
        let bad = || NetError::Cidr(s.to_string());
        let (a, p) = s.split_once('/').ok_or_else(bad)?;
        let addr: Ipv4Addr = a.parse().map_err(|_| bad())?;
        let prefix: u8 = p.parse().map_err(|_| bad())?;
        if p.starts_with('+') || prefix > 32 {
            return Err(bad());
        }
        Subnet::new(addr, prefix).ok_or_else(bad)
    }
}

impl fmt::Display for Subnet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.network(), self.prefix)
    }
}

impl Serialize for Subnet {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_string())
    }
}

impl<'de> Deserialize<'de> for Subnet {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Subnet, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_and_arithmetic() {
        let s: Subnet = "172.17.0.0/16".parse().unwrap();
        assert_eq!(s.to_string(), "172.17.0.0/16");
        assert_eq!(s.size(), 65536);
        assert_eq!(s.broadcast(), Ipv4Addr::new(172, 17, 255, 255));
        assert!(s.contains(Ipv4Addr::new(172, 17, 3, 4)));
        assert!(!s.contains(Ipv4Addr::new(172, 18, 0, 1)));
        assert_eq!(s.nth(1), Some(Ipv4Addr::new(172, 17, 0, 1)));
        assert_eq!(s.offset(Ipv4Addr::new(172, 17, 1, 2)), Some(258));
        // Host bits are cleared by `new`; parsing keeps what was written.
        assert_eq!(
            Subnet::new(Ipv4Addr::new(10, 1, 2, 3), 8).unwrap().to_string(),
            "10.0.0.0/8"
        );
        assert_eq!("10.1.2.3/8".parse::<Subnet>().unwrap().to_string(), "10.0.0.0/8");
        for bad in ["10.0.0.0", "10.0.0.0/33", "10.0.0/8", "x/8", "10.0.0.0/+8", ""] {
            assert_eq!(bad.parse::<Subnet>(), Err(NetError::Cidr(bad.into())), "{bad}");
        }
    }

    #[test]
    fn overlaps() {
        let a: Subnet = "172.17.0.0/16".parse().unwrap();
        let b: Subnet = "172.17.5.0/24".parse().unwrap();
        let c: Subnet = "172.18.0.0/16".parse().unwrap();
        assert!(a.overlaps(&b) && b.overlaps(&a));
        assert!(!a.overlaps(&c));
        assert!("0.0.0.0/0".parse::<Subnet>().unwrap().overlaps(&c));
    }

    #[test]
    fn splits() {
        let s: Subnet = "192.168.0.0/16".parse().unwrap();
        let parts: Vec<String> = s.split(20).take(3).map(|x| x.to_string()).collect();
        assert_eq!(parts, ["192.168.0.0/20", "192.168.16.0/20", "192.168.32.0/20"]);
        assert_eq!(s.split(20).count(), 16);
        assert_eq!(s.split(8).count(), 0);
        let j: Subnet = serde_json::from_str("\"10.9.0.0/24\"").unwrap();
        assert_eq!(serde_json::to_string(&j).unwrap(), "\"10.9.0.0/24\"");
    }
}
