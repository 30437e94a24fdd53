//! `update`: resources and the restart policy of running or stopped containers.

use super::config::restart_policy;
use super::lifecycle::container_path;
use super::opts::resource_flags;
use crate::args::{value_flag, Count, Parsed};
use crate::commands::{fail, Ctx, Def, Result};
use crate::goparse::{
    check_cpus, check_i64, check_ram, check_swap, check_u16, parse_cpus, parse_i64, parse_u16, ram_in_bytes,
    swap_bytes,
};
use crate::http::Body;
use serde_json::{json, Map, Value};

/// docker's `UpdateConfig` body (the resources inlined, then `RestartPolicy`).
pub fn update_body(p: &Parsed) -> std::result::Result<Value, String> {
    let int = |k: &str| p.value(k).and_then(|v| parse_i64(v).ok()).unwrap_or(0);
    let ram = |k: &str| p.value(k).and_then(|v| ram_in_bytes(v).ok()).unwrap_or(0);
    let s = |k: &str| p.value(k).unwrap_or("").to_string();
    let restart = match p.value("restart").filter(|r| !r.is_empty()) {
        Some(r) => restart_policy(r)?,
        None => json!({"Name": "", "MaximumRetryCount": 0}),
    };
    let pids = int("pids-limit");
    let mut b = Map::new();
    for (k, v) in [
        ("CpuShares", json!(int("cpu-shares"))),
        ("Memory", json!(ram("memory"))),
        (
            "NanoCpus",
            json!(p.value("cpus").and_then(|v| parse_cpus(v).ok()).unwrap_or(0)),
        ),
        ("CgroupParent", json!("")),
        (
            "BlkioWeight",
            json!(p
                .value("blkio-weight")
                .and_then(|v| parse_u16(v).ok())
                .unwrap_or(0)),
        ),
        ("BlkioWeightDevice", Value::Null),
        ("BlkioDeviceReadBps", Value::Null),
        ("BlkioDeviceWriteBps", Value::Null),
        ("BlkioDeviceReadIOps", Value::Null),
        ("BlkioDeviceWriteIOps", Value::Null),
        ("CpuPeriod", json!(int("cpu-period"))),
        ("CpuQuota", json!(int("cpu-quota"))),
        ("CpuRealtimePeriod", json!(int("cpu-rt-period"))),
        ("CpuRealtimeRuntime", json!(int("cpu-rt-runtime"))),
        ("CpusetCpus", json!(s("cpuset-cpus"))),
        ("CpusetMems", json!(s("cpuset-mems"))),
        ("Devices", Value::Null),
        ("DeviceCgroupRules", Value::Null),
        ("DeviceRequests", Value::Null),
    ] {
        b.insert(k.into(), v);
    }
    let kernel = ram("kernel-memory");
    if kernel != 0 {
        b.insert("KernelMemory".into(), json!(kernel));
    }
    for (k, v) in [
        ("MemoryReservation", json!(ram("memory-reservation"))),
        (
            "MemorySwap",
            json!(p
                .value("memory-swap")
                .and_then(|v| swap_bytes(v).ok())
                .unwrap_or(0)),
        ),
        ("MemorySwappiness", Value::Null),
        ("OomKillDisable", Value::Null),
        ("PidsLimit", if pids != 0 { json!(pids) } else { Value::Null }),
        ("Ulimits", Value::Null),
        ("CpuCount", json!(0)),
        ("CpuPercent", json!(0)),
        ("IOMaximumIOps", json!(0)),
        ("IOMaximumBandwidth", json!(0)),
        ("RestartPolicy", restart),
    ] {
        b.insert(k.into(), v);
    }
    Ok(Value::Object(b))
}

fn run_update(ctx: &Ctx, p: &Parsed) -> Result {
    let any = UPDATE.flags.iter().any(|f| p.is_set(f.long));
    if !any {
        return Err(fail("you must provide one or more flags when using this command"));
    }
    let body = update_body(p).map_err(fail)?.to_string().into_bytes();
    let mut warnings = Vec::new();
    let mut errors = Vec::new();
    for name in &p.args {
        let r = ctx.api.request(
            "POST",
            &container_path(name, "/update", &[]),
            &[],
            Body::Json(body.clone()),
        );
        match r.and_then(|r| r.json()) {
            Ok(v) => {
                ctx.print(&format!("{name}\n"))?;
                for w in v.get("Warnings").and_then(Value::as_array).into_iter().flatten() {
                    warnings.push(w.as_str().unwrap_or("").to_string());
                }
            }
            Err(e @ crate::http::Error::Connect(..)) => return Err(e.into()),
            Err(e) => errors.push(e.to_string()),
        }
    }
    if !warnings.is_empty() {
        ctx.print(&format!("{}\n", warnings.join("\n")))?;
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(fail(errors.join("\n")))
    }
}

pub const UPDATE: Def = Def {
    name: "update",
    args: "[OPTIONS] CONTAINER [CONTAINER...]",
    desc: "Update configuration of one or more containers",
    aliases: "berth container update, berth update",
    options: "      --blkio-weight uint16        Block IO (relative weight), between 10
                                   and 1000, or 0 to disable (default 0)
      --cpu-period int             Limit CPU CFS (Completely Fair
                                   Scheduler) period
      --cpu-quota int              Limit CPU CFS (Completely Fair
                                   Scheduler) quota
      --cpu-rt-period int          Limit the CPU real-time period in
                                   microseconds
      --cpu-rt-runtime int         Limit the CPU real-time runtime in
                                   microseconds
  -c, --cpu-shares int             CPU shares (relative weight)
      --cpus decimal               Number of CPUs
      --cpuset-cpus string         CPUs in which to allow execution (0-3, 0,1)
      --cpuset-mems string         MEMs in which to allow execution (0-3, 0,1)
  -m, --memory bytes               Memory limit
      --memory-reservation bytes   Memory soft limit
      --memory-swap bytes          Swap limit equal to memory plus swap:
                                   -1 to enable unlimited swap
      --pids-limit int             Tune container pids limit (set -1 for
                                   unlimited)
      --restart string             Restart policy to apply when a
                                   container exits
",
    flags: resource_flags!(
        value_flag(None, "blkio-weight").checked(check_u16),
        value_flag(None, "restart"),
    ),
    count: Count::Min(1),
    run: run_update,
};
