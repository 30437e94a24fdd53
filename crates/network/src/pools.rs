//! The subnet of a new network: the first one from the address pools (docker's defaults, or
//! daemon.json's `default-address-pools`) that overlaps no existing network and no route of the
//! host; a subnet given by the user is checked against the same.

use serde::{Deserialize, Serialize};

use crate::net::Subnet;

/// One `default-address-pools` entry: `{"base": "172.17.0.0/16", "size": 16}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pool {
    pub base: Subnet,
    pub size: u8,
}

/// docker's default pools: 172.17-31.0.0/16 one by one, then 192.168.0.0/16 in /20s.
pub fn default_pools() -> Vec<Pool> {
    let mut v: Vec<Pool> = (17..=31)
        .map(|b| Pool {
            base: format!("172.{b}.0.0/16").parse().expect("static"),
            size: 16,
        })
        .collect();
    v.push(Pool {
        base: "192.168.0.0/16".parse().expect("static"),
        size: 20,
    });
    v
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PoolError {
    #[error("all predefined address pools have been fully subnetted")]
    Exhausted,
    #[error("invalid pool request: Pool overlaps with other one on this address space")]
    Overlaps(Subnet),
}

/// The first free subnet of `pools` next to `taken` (other networks and the host's routes).
pub fn choose(pools: &[Pool], taken: &[Subnet]) -> Result<Subnet, PoolError> {
    for p in pools {
        for s in p.base.split(p.size) {
            if !taken.iter().any(|t| t.overlaps(&s)) {
                return Ok(s);
            }
        }
    }
    Err(PoolError::Exhausted)
}

/// A user's `--subnet` against the networks that exist (docker refuses overlaps with them).
pub fn check(subnet: Subnet, networks: &[Subnet]) -> Result<(), PoolError> {
    if networks.iter().any(|n| n.overlaps(&subnet)) {
        return Err(PoolError::Overlaps(subnet));
    }
    Ok(())
}

/// The IPv4 destinations of the host's routes, from `/proc/net/route` (hex, little-endian), the
/// default route left out.
pub fn host_routes(proc_net_route: &str) -> Vec<Subnet> {
    // The kernel prints each address as the raw (network-order) word in host byte order.
    let word = |s: &str| u32::from_str_radix(s, 16).ok();
    proc_net_route
        .lines()
        .skip(1)
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            let (dest, mask) = (word(f.get(1)?)?, word(f.get(7)?)?);
            let dest = std::net::Ipv4Addr::from(dest.to_ne_bytes());
            let prefix = mask.count_ones() as u8;
            (prefix > 0).then(|| Subnet::new(dest, prefix)).flatten()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn net(s: &str) -> Subnet {
        s.parse().unwrap()
    }

    #[test]
    fn picks_the_first_free_subnet() {
        let pools = default_pools();
        assert_eq!(choose(&pools, &[]).unwrap(), net("172.17.0.0/16"));
        // A host route inside 172.17/16 and a network on 172.18/16: the next one.
        let taken = [net("172.17.3.0/24"), net("172.18.0.0/16")];
        assert_eq!(choose(&pools, &taken).unwrap(), net("172.19.0.0/16"));
        // Everything of 172.16/12 taken: 192.168 in /20s.
        assert_eq!(
            choose(&pools, &[net("172.16.0.0/12")]).unwrap(),
            net("192.168.0.0/20")
        );
        let all = [net("172.16.0.0/12"), net("192.168.0.0/16")];
        assert_eq!(choose(&pools, &all), Err(PoolError::Exhausted));
    }

    #[test]
    fn user_subnets_must_not_overlap() {
        assert!(check(net("10.5.0.0/16"), &[net("10.6.0.0/16")]).is_ok());
        assert_eq!(
            check(net("10.5.0.0/16"), &[net("10.5.1.0/24")])
                .unwrap_err()
                .to_string(),
            "invalid pool request: Pool overlaps with other one on this address space"
        );
    }

    #[test]
    fn reads_the_route_table() {
        let t = "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\neth0\t00000000\t0100A8C0\t0003\t0\t0\t0\t00000000\t0\t0\t0\neth0\t0000A8C0\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0\ndocker0\t000011AC\t00000000\t0001\t0\t0\t0\t0000FFFF\t0\t0\t0\n";
        assert_eq!(host_routes(t), vec![net("192.168.0.0/24"), net("172.17.0.0/16")]);
    }
}
