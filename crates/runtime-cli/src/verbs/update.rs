//! `update`: changes the resource limits of a container: from a JSON file of OCI
//! `linux.resources` (`--resources FILE`, `-` for stdin) and/or runc's individual flags.

use std::io::Read;

use berth_runtime::container;
use berth_spec::{BlockIo, Cpu, Memory, Pids, Resources};

use super::Verb;
use crate::args::{opt, Flag, Parsed};
use crate::{Failure, Globals};

const FLAGS: &[Flag] = &[
    opt(
        &["resources", "r"],
        "path to the file containing the resources to update or '-' to read from the standard input",
    ),
    opt(
        &["blkio-weight"],
        "specifies per cgroup weight, range is from 10 to 1000",
    ),
    opt(
        &["cpu-period"],
        "CPU CFS period to be used for hardcapping (in usecs). 0 to use system default",
    ),
    opt(
        &["cpu-quota"],
        "CPU CFS hardcap limit (in usecs). Allowed cpu time in a given period",
    ),
    opt(
        &["cpu-share"],
        "CPU shares (relative weight vs. other containers)",
    ),
    opt(
        &["cpu-rt-period"],
        "CPU realtime period to be used for hardcapping (in usecs). 0 to use system default",
    ),
    opt(
        &["cpu-rt-runtime"],
        "CPU realtime hardcap limit (in usecs). Allowed cpu time in a given period",
    ),
    opt(&["cpuset-cpus"], "CPU(s) to use"),
    opt(&["cpuset-mems"], "Memory node(s) to use"),
    opt(
        &["cpu-idle"],
        "set cgroup SCHED_IDLE or not, 0: default behavior, 1: SCHED_IDLE",
    ),
    opt(
        &["memory"],
        "Memory limit (in bytes, or with a unit suffix: k, m, g)",
    ),
    opt(
        &["memory-reservation"],
        "Memory reservation or soft_limit (in bytes)",
    ),
    opt(
        &["memory-swap"],
        "Total memory usage (memory + swap); set '-1' to enable unlimited swap",
    ),
    opt(&["pids-limit"], "Maximum number of pids allowed in the container"),
    opt(
        &["kernel-memory"],
        "(ignored: kernel memory limits are deprecated)",
    ),
    opt(
        &["kernel-memory-tcp"],
        "(ignored: kernel memory limits are deprecated)",
    ),
];

pub const VERB: Verb = Verb {
    name: "update",
    summary: "update container resource constraints",
    synopsis: "[command options] <container-id>",
    flags: FLAGS,
    stop_at_arg: false,
    min_args: 1,
    max_args: Some(1),
    run,
};

/// A size in bytes: a number with an optional binary unit (k, m, g, t; `b` and `ib` accepted), or -1.
pub fn parse_size(s: &str) -> Option<i64> {
    if s == "-1" {
        return Some(-1);
    }
    let lower = s.trim().to_ascii_lowercase();
    let body = lower.trim_end_matches('b').trim_end_matches('i');
    let (digits, mult) = match body.chars().last()? {
        'k' => (&body[..body.len() - 1], 1i64 << 10),
        'm' => (&body[..body.len() - 1], 1 << 20),
        'g' => (&body[..body.len() - 1], 1 << 30),
        't' => (&body[..body.len() - 1], 1 << 40),
        _ => (body, 1),
    };
    let n: f64 = digits.parse().ok()?;
    (n >= 0.0).then_some((n * mult as f64) as i64)
}

fn num<T: std::str::FromStr>(p: &Parsed, flag: &str) -> Result<Option<T>, Failure> {
    p.value(flag)
        .map(|v| {
            v.parse::<T>()
                .map_err(|_| Failure::new(format!("invalid value {v:?} for --{flag}")))
        })
        .transpose()
}

fn size(p: &Parsed, flag: &str) -> Result<Option<i64>, Failure> {
    p.value(flag)
        .map(|v| parse_size(v).ok_or_else(|| Failure::new(format!("invalid value {v:?} for --{flag}"))))
        .transpose()
}

fn run(p: &Parsed, g: &Globals) -> Result<u8, Failure> {
    let mut r = match p.value("resources") {
        Some(file) => {
            let mut data = Vec::new();
            if file == "-" {
                std::io::stdin()
                    .read_to_end(&mut data)
                    .map_err(|e| Failure::new(format!("read resources from stdin: {e}")))?;
            } else {
                data = std::fs::read(file).map_err(|e| Failure::new(format!("read {file}: {e}")))?;
            }
            serde_json::from_slice::<Resources>(&data)
                .map_err(|e| Failure::new(format!("decode resources: {e}")))?
        }
        None => Resources::default(),
    };
    let mut mem = r.memory.take().unwrap_or_default();
    mem.limit = size(p, "memory")?.or(mem.limit);
    mem.reservation = size(p, "memory-reservation")?.or(mem.reservation);
    mem.swap = size(p, "memory-swap")?.or(mem.swap);
    if mem != Memory::default() {
        r.memory = Some(mem);
    }
    let mut cpu = r.cpu.take().unwrap_or_default();
    cpu.period = num(p, "cpu-period")?.or(cpu.period);
    cpu.quota = num(p, "cpu-quota")?.or(cpu.quota);
    cpu.shares = num(p, "cpu-share")?.or(cpu.shares);
    cpu.realtime_period = num(p, "cpu-rt-period")?.or(cpu.realtime_period);
    cpu.realtime_runtime = num(p, "cpu-rt-runtime")?.or(cpu.realtime_runtime);
    cpu.idle = num(p, "cpu-idle")?.or(cpu.idle);
    cpu.cpus = p.value("cpuset-cpus").map(str::to_string).or(cpu.cpus);
    cpu.mems = p.value("cpuset-mems").map(str::to_string).or(cpu.mems);
    if cpu != Cpu::default() {
        r.cpu = Some(cpu);
    }
    if let Some(limit) = num::<i64>(p, "pids-limit")? {
        r.pids = Some(Pids { limit });
    }
    if let Some(w) = num::<u16>(p, "blkio-weight")? {
        r.block_io.get_or_insert_with(BlockIo::default).weight = Some(w);
    }
    container::update(&g.root, super::id(p), &r)?;
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::parse_size;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("1024"), Some(1024));
        assert_eq!(parse_size("100m"), Some(100 << 20));
        assert_eq!(parse_size("1G"), Some(1 << 30));
        assert_eq!(parse_size("2kb"), Some(2048));
        assert_eq!(parse_size("1.5g"), Some(3 << 29));
        assert_eq!(parse_size("-1"), Some(-1));
        assert_eq!(parse_size("x"), None);
        assert_eq!(parse_size("-5"), None);
    }
}
