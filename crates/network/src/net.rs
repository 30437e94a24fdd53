//! IP subnets: `172.17.0.0/16` and `fd00:1::/64` parsed, checked, compared and counted. One type,
//! `Cidr<A>`, for both families: its arithmetic works on the address's bits as a `u128`.

use std::fmt;
use std::hash::Hash;
use std::marker::PhantomData;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum NetError {
    #[error("invalid CIDR address: {0}")]
    Cidr(String),
}

/// An address family: its addresses as bits.
pub trait Family: Copy + Eq + Ord + Hash + fmt::Debug + fmt::Display + FromStr {
    /// The address length in bits (32 or 128).
    const BITS: u8;
    fn bits(self) -> u128;
    fn from_bits(b: u128) -> Self;
}

impl Family for Ipv4Addr {
    const BITS: u8 = 32;
    fn bits(self) -> u128 {
        u128::from(u32::from(self))
    }
    fn from_bits(b: u128) -> Self {
        Ipv4Addr::from(b as u32)
    }
}

impl Family for Ipv6Addr {
    const BITS: u8 = 128;
    fn bits(self) -> u128 {
        u128::from(self)
    }
    fn from_bits(b: u128) -> Self {
        Ipv6Addr::from(b)
    }
}

/// A subnet of family `A`: a network address and a prefix length (host bits zero).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Cidr<A> {
    base: u128,
    prefix: u8,
    family: PhantomData<A>,
}

/// An IPv4 subnet.
pub type Subnet = Cidr<Ipv4Addr>;
/// An IPv6 subnet.
pub type Subnet6 = Cidr<Ipv6Addr>;

/// The mask of the low `n` bits.
fn low_bits(n: u32) -> u128 {
    u128::MAX.checked_shr(128 - n).filter(|_| n > 0).unwrap_or(0)
}

impl<A: Family> Cidr<A> {
    pub fn new(addr: A, prefix: u8) -> Option<Self> {
        if prefix > A::BITS {
            return None;
        }
        let base = addr.bits() & Self::mask_of(prefix);
        Some(Cidr {
            base,
            prefix,
            family: PhantomData,
        })
    }

    fn host_bits(prefix: u8) -> u32 {
        u32::from(A::BITS - prefix)
    }

    fn mask_of(prefix: u8) -> u128 {
        low_bits(u32::from(A::BITS)) & !low_bits(Self::host_bits(prefix))
    }

    pub fn prefix(&self) -> u8 {
        self.prefix
    }

    pub fn network(&self) -> A {
        A::from_bits(self.base)
    }

    /// How many addresses the subnet spans (2^host bits; u128::MAX for ::/0).
    pub fn size(&self) -> u128 {
        1u128
            .checked_shl(Self::host_bits(self.prefix))
            .filter(|_| Self::host_bits(self.prefix) < 128)
            .unwrap_or(u128::MAX)
    }

    /// The last address (IPv4's broadcast).
    pub fn broadcast(&self) -> A {
        A::from_bits(self.base | low_bits(Self::host_bits(self.prefix)))
    }

    pub fn contains(&self, a: A) -> bool {
        a.bits() & Self::mask_of(self.prefix) == self.base
    }

    /// Whether the two subnets share any address.
    pub fn overlaps(&self, o: &Self) -> bool {
        let m = Self::mask_of(self.prefix.min(o.prefix));
        self.base & m == o.base & m
    }

    /// The `n`th address of the subnet (0 is the network address).
    pub fn nth(&self, n: u128) -> Option<A> {
        (n <= low_bits(Self::host_bits(self.prefix))).then(|| A::from_bits(self.base | n))
    }

    /// The offset of `a` in the subnet.
    pub fn offset(&self, a: A) -> Option<u128> {
        self.contains(a).then(|| a.bits() - self.base)
    }

    /// The subnets of prefix `len` this subnet splits into, in order.
    pub fn split(&self, len: u8) -> impl Iterator<Item = Self> + '_ {
        let count = if len < self.prefix || len > A::BITS {
            0
        } else {
            1u128
                .checked_shl(u32::from(len - self.prefix))
                .unwrap_or(u128::MAX)
        };
        let step = low_bits(Self::host_bits(len.min(A::BITS))).wrapping_add(1);
        (0..count).map(move |i| Cidr {
            base: self.base.wrapping_add(i.wrapping_mul(step)),
            prefix: len,
            family: PhantomData,
        })
    }
}

impl<A: Family> FromStr for Cidr<A> {
    type Err = NetError;

    /// `address/n`; the address's host bits are cleared (docker takes `172.18.0.1/16` as
    /// 172.18.0.0/16 too).
    fn from_str(s: &str) -> Result<Self, NetError> {
        let bad = || NetError::Cidr(s.to_string());
        let (a, p) = s.split_once('/').ok_or_else(bad)?;
        let addr: A = a.parse().map_err(|_| bad())?;
        let prefix: u8 = p.parse().map_err(|_| bad())?;
        if p.starts_with('+') || prefix > A::BITS {
            return Err(bad());
        }
        Cidr::new(addr, prefix).ok_or_else(bad)
    }
}

impl<A: Family> fmt::Display for Cidr<A> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.network(), self.prefix)
    }
}

impl<A: Family> Serialize for Cidr<A> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_string())
    }
}

impl<'de, A: Family> Deserialize<'de> for Cidr<A> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
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
        assert_eq!("10.0.0.0/31".parse::<Subnet>().unwrap().split(32).count(), 2);
    }

    #[test]
    fn ipv6() {
        let s: Subnet6 = "fd00:1:2::/64".parse().unwrap();
        assert_eq!(s.to_string(), "fd00:1:2::/64");
        assert_eq!(s.size(), 1u128 << 64);
        assert_eq!(s.nth(1), Some("fd00:1:2::1".parse().unwrap()));
        assert_eq!(
            s.broadcast(),
            "fd00:1:2:0:ffff:ffff:ffff:ffff".parse::<Ipv6Addr>().unwrap()
        );
        assert_eq!(s.offset("fd00:1:2::1:5".parse().unwrap()), Some(0x1_0005));
        assert!(!s.contains("fd00:1:3::1".parse().unwrap()));
        assert!(s.overlaps(&"fd00::/16".parse().unwrap()));
        assert!(!s.overlaps(&"fd00:1:3::/64".parse().unwrap()));
        assert_eq!(
            "fd00:1:2::9/64".parse::<Subnet6>().unwrap().to_string(),
            "fd00:1:2::/64"
        );
        let parts: Vec<String> = s.split(66).map(|x| x.to_string()).collect();
        assert_eq!(parts[1], "fd00:1:2:0:4000::/66");
        assert_eq!(parts.len(), 4);
        assert_eq!("::/0".parse::<Subnet6>().unwrap().size(), u128::MAX);
        assert_eq!("fd00::1/128".parse::<Subnet6>().unwrap().size(), 1);
        for bad in ["fd00::/129", "10.0.0.0/8", "fd00::", "fd00::/+64"] {
            assert_eq!(bad.parse::<Subnet6>(), Err(NetError::Cidr(bad.into())), "{bad}");
        }
        let j: Subnet6 = serde_json::from_str("\"fd00::/64\"").unwrap();
        assert_eq!(serde_json::to_string(&j).unwrap(), "\"fd00::/64\"");
    }
}
