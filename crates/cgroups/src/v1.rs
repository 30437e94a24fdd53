//! cgroup v1: OCI resources -> (controller, file, value) writes, in the order runc makes them.

use berth_spec::Resources;

use crate::devices::v1_rules;
use crate::Error;

/// One write: the controller whose directory holds the file, the file, the value.
pub type Write = (String, String, String);

fn w(ctrl: &str, file: &str, v: impl ToString) -> Write {
    (ctrl.to_string(), file.to_string(), v.to_string())
}

/// The writes for `r`; `has` tells whether a controller is mounted.
pub fn writes(r: &Resources, has: &dyn Fn(&str) -> bool) -> Result<Vec<Write>, Error> {
    let mut out = Vec::new();
    let need = |ctrl: &str, field: &str| -> Result<(), Error> {
        if has(ctrl) {
            Ok(())
        } else {
            Err(Error::invalid(
                field,
                format!("the {ctrl} controller is not mounted"),
            ))
        }
    };
    if let Some(c) = &r.cpu {
        if c.cpus.is_some() || c.mems.is_some() {
            need("cpuset", "linux.resources.cpu.cpus")?;
        }
        if let Some(v) = c.cpus.as_deref().filter(|s| !s.is_empty()) {
            out.push(w("cpuset", "cpuset.cpus", v));
        }
        if let Some(v) = c.mems.as_deref().filter(|s| !s.is_empty()) {
            out.push(w("cpuset", "cpuset.mems", v));
        }
    }
    if !r.devices.is_empty() && has("devices") {
        for (file, rule) in v1_rules(&r.devices)? {
            out.push(w("devices", &file, rule));
        }
    }
    if let Some(m) = &r.memory {
        let any = m.limit.is_some()
            || m.reservation.is_some()
            || m.swap.is_some()
            || m.swappiness.is_some()
            || m.disable_oom_killer == Some(true);
        if any {
            need("memory", "linux.resources.memory")?;
        }
        if let Some(l) = m.limit {
            out.push(w("memory", "memory.limit_in_bytes", l));
        }
        if let Some(s) = m.swap {
            if let (Some(l), true) = (m.limit, s != -1) {
                if s < l && s != 0 {
                    return Err(Error::invalid(
                        "linux.resources.memory.swap",
                        format!("{s} is below the memory limit {l}: it counts memory plus swap"),
                    ));
                }
            }
            if s != 0 {
                out.push(w("memory", "memory.memsw.limit_in_bytes", s));
            }
        }
        if let Some(v) = m.reservation {
            out.push(w("memory", "memory.soft_limit_in_bytes", v));
        }
        if let Some(v) = m.swappiness {
            if v > 100 {
                return Err(Error::invalid(
                    "linux.resources.memory.swappiness",
                    format!("{v} is above 100"),
                ));
            }
            out.push(w("memory", "memory.swappiness", v));
        }
        if m.disable_oom_killer == Some(true) {
            out.push(w("memory", "memory.oom_control", 1));
        }
    }
    if let Some(c) = &r.cpu {
        let any = c.shares.is_some()
            || c.quota.is_some()
            || c.period.is_some()
            || c.realtime_runtime.is_some()
            || c.realtime_period.is_some()
            || c.burst.is_some()
            || c.idle.is_some();
        if any {
            need("cpu", "linux.resources.cpu")?;
        }
        if let Some(s) = c.shares {
            if s < 2 {
                return Err(Error::invalid(
                    "linux.resources.cpu.shares",
                    format!("{s} is below the minimum of 2"),
                ));
            }
            out.push(w("cpu", "cpu.shares", s));
        }
        if let Some(p) = c.period {
            out.push(w("cpu", "cpu.cfs_period_us", p));
        }
        if let Some(q) = c.quota {
            out.push(w("cpu", "cpu.cfs_quota_us", q));
        }
        if let Some(b) = c.burst {
            out.push(w("cpu", "cpu.cfs_burst_us", b));
        }
        if let Some(p) = c.realtime_period {
            out.push(w("cpu", "cpu.rt_period_us", p));
        }
        if let Some(rt) = c.realtime_runtime {
            out.push(w("cpu", "cpu.rt_runtime_us", rt));
        }
        if let Some(i) = c.idle {
            out.push(w("cpu", "cpu.idle", i));
        }
    }
    if let Some(p) = &r.pids {
        need("pids", "linux.resources.pids")?;
        out.push(w(
            "pids",
            "pids.max",
            if p.limit > 0 {
                p.limit.to_string()
            } else {
                "max".into()
            },
        ));
    }
    if let Some(b) = &r.block_io {
        need("blkio", "linux.resources.blockIO")?;
        if let Some(v) = b.weight {
            out.push(w("blkio", "blkio.weight", v));
        }
        if let Some(v) = b.leaf_weight {
            out.push(w("blkio", "blkio.leaf_weight", v));
        }
        for d in &b.weight_device {
            if let Some(v) = d.weight {
                out.push(w(
                    "blkio",
                    "blkio.weight_device",
                    format!("{}:{} {v}", d.major, d.minor),
                ));
            }
            if let Some(v) = d.leaf_weight {
                out.push(w(
                    "blkio",
                    "blkio.leaf_weight_device",
                    format!("{}:{} {v}", d.major, d.minor),
                ));
            }
        }
        for (file, list) in [
            ("blkio.throttle.read_bps_device", &b.throttle_read_bps_device),
            ("blkio.throttle.write_bps_device", &b.throttle_write_bps_device),
            ("blkio.throttle.read_iops_device", &b.throttle_read_iops_device),
            ("blkio.throttle.write_iops_device", &b.throttle_write_iops_device),
        ] {
            for d in list {
                out.push(w("blkio", file, format!("{}:{} {}", d.major, d.minor, d.rate)));
            }
        }
    }
    for (i, h) in r.hugepage_limits.iter().enumerate() {
        need("hugetlb", &format!("linux.resources.hugepageLimits[{i}]"))?;
        crate::check_page_size(i, &h.page_size)?;
        out.push(w(
            "hugetlb",
            &format!("hugetlb.{}.limit_in_bytes", h.page_size),
            h.limit,
        ));
    }
    if let Some(n) = &r.network {
        if let Some(id) = n.class_id {
            need("net_cls", "linux.resources.network.classID")?;
            out.push(w("net_cls", "net_cls.classid", id));
        }
        for p in &n.priorities {
            need("net_prio", "linux.resources.network.priorities")?;
            out.push(w(
                "net_prio",
                "net_prio.ifpriomap",
                format!("{} {}", p.name, p.priority),
            ));
        }
    }
    if r.unified.as_ref().is_some_and(|u| !u.is_empty()) {
        return Err(Error::invalid(
            "linux.resources.unified",
            "needs cgroup v2, and this host runs cgroup v1".into(),
        ));
    }
    Ok(out)
}
