//! cgroup v2: OCI resources -> (file, value) writes with runc's conversions from v1 units.

use berth_spec::Resources;

use crate::Error;

pub type Write = (String, String);

fn w(file: &str, v: impl ToString) -> Write {
    (file.to_string(), v.to_string())
}

/// runc's conversion of cpu shares (2..262144) to cpu.weight (1..10000).
pub fn shares_to_weight(shares: u64) -> u64 {
    if shares == 0 {
        return 0;
    }
    1 + ((shares.clamp(2, 262_144) - 2) * 9999) / 262_142
}

/// runc's conversion of blkio weight (10..1000) to io.weight (1..10000).
pub fn blkio_to_io_weight(weight: u16) -> u64 {
    if weight == 0 {
        return 0;
    }
    1 + (weight.clamp(10, 1000) as u64 - 10) * 9999 / 990
}

/// The memory.swap.max value for the OCI swap (memory + swap) and limit, as runc computes it;
/// `None` when nothing is to be written.
pub fn swap_value(swap: Option<i64>, limit: Option<i64>) -> Result<Option<String>, Error> {
    let Some(swap) = swap else { return Ok(None) };
    if swap == -1 {
        return Ok(Some("max".into()));
    }
    if swap == 0 {
        return Ok(None);
    }
    let limit = match limit {
        None | Some(0) => {
            return Err(Error::invalid(
                "linux.resources.memory.swap",
                "a swap limit needs a memory limit on cgroup v2".into(),
            ))
        }
        Some(-1) => {
            return Err(Error::invalid(
                "linux.resources.memory.swap",
                "a swap limit with an unlimited memory limit".into(),
            ))
        }
        Some(l) => l,
    };
    if swap < limit {
        return Err(Error::invalid(
            "linux.resources.memory.swap",
            format!("{swap} is below the memory limit {limit}: it counts memory plus swap"),
        ));
    }
    Ok(Some((swap - limit).to_string()))
}

fn max_or(v: i64) -> String {
    if v < 0 {
        "max".into()
    } else {
        v.to_string()
    }
}

pub fn writes(r: &Resources) -> Result<Vec<Write>, Error> {
    let mut out = Vec::new();
    if let Some(c) = &r.cpu {
        if let Some(v) = c.cpus.as_deref().filter(|s| !s.is_empty()) {
            out.push(w("cpuset.cpus", v));
        }
        if let Some(v) = c.mems.as_deref().filter(|s| !s.is_empty()) {
            out.push(w("cpuset.mems", v));
        }
    }
    if let Some(m) = &r.memory {
        if let Some(v) = m.reservation {
            out.push(w("memory.low", max_or(v)));
        }
        if let Some(v) = swap_value(m.swap, m.limit)? {
            out.push(w("memory.swap.max", v));
        }
        if let Some(l) = m.limit {
            out.push(w("memory.max", max_or(l)));
        }
    }
    if let Some(c) = &r.cpu {
        if let Some(s) = c.shares {
            if s != 0 {
                out.push(w("cpu.weight", shares_to_weight(s)));
            }
        }
        if c.quota.is_some() || c.period.is_some() {
            let quota = match c.quota {
                Some(q) if q > 0 => q.to_string(),
                _ => "max".into(),
            };
            let period = c.period.filter(|p| *p != 0).unwrap_or(100_000);
            out.push(w("cpu.max", format!("{quota} {period}")));
        }
        if let Some(b) = c.burst {
            out.push(w("cpu.max.burst", b));
        }
        if let Some(i) = c.idle {
            out.push(w("cpu.idle", i));
        }
        if c.realtime_runtime.is_some_and(|v| v != 0) || c.realtime_period.is_some_and(|v| v != 0) {
            return Err(Error::invalid(
                "linux.resources.cpu.realtimeRuntime",
                "real-time scheduling limits are not available on cgroup v2".into(),
            ));
        }
    }
    if let Some(p) = &r.pids {
        out.push(w(
            "pids.max",
            if p.limit > 0 {
                p.limit.to_string()
            } else {
                "max".into()
            },
        ));
    }
    if let Some(b) = &r.block_io {
        if let Some(v) = b.weight {
            out.push(w("io.weight", format!("default {}", blkio_to_io_weight(v))));
        }
        for d in &b.weight_device {
            if let Some(v) = d.weight {
                out.push(w(
                    "io.weight",
                    format!("{}:{} {}", d.major, d.minor, blkio_to_io_weight(v)),
                ));
            }
        }
        for (key, list) in [
            ("rbps", &b.throttle_read_bps_device),
            ("wbps", &b.throttle_write_bps_device),
            ("riops", &b.throttle_read_iops_device),
            ("wiops", &b.throttle_write_iops_device),
        ] {
            for d in list {
                let rate = if d.rate == 0 {
                    "max".to_string()
                } else {
                    d.rate.to_string()
                };
                out.push(w("io.max", format!("{}:{} {key}={rate}", d.major, d.minor)));
            }
        }
    }
    for (i, h) in r.hugepage_limits.iter().enumerate() {
        crate::check_page_size(i, &h.page_size)?;
        out.push(w(&format!("hugetlb.{}.max", h.page_size), h.limit));
    }
    if let Some(u) = &r.unified {
        for (k, v) in u {
            if k.is_empty() || k.contains('/') || k.contains("..") || !k.contains('.') {
                return Err(Error::invalid(
                    &format!("linux.resources.unified.{k}"),
                    "not a cgroup v2 interface file name".into(),
                ));
            }
            // The unified map wins over the structured fields, as in runc.
            out.retain(|(f, _)| f != k);
            out.push(w(k, v));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conversions_match_runc() {
        assert_eq!(shares_to_weight(2), 1);
        assert_eq!(shares_to_weight(1024), 39);
        assert_eq!(shares_to_weight(262_144), 10_000);
        assert_eq!(blkio_to_io_weight(10), 1);
        assert_eq!(blkio_to_io_weight(500), 4950);
        assert_eq!(blkio_to_io_weight(1000), 10_000);
        assert_eq!(swap_value(Some(-1), Some(100)).unwrap().as_deref(), Some("max"));
        assert_eq!(swap_value(Some(300), Some(100)).unwrap().as_deref(), Some("200"));
        assert_eq!(swap_value(Some(0), Some(100)).unwrap(), None);
        assert!(swap_value(Some(50), Some(100)).is_err());
        assert!(swap_value(Some(50), None).is_err());
    }
}
