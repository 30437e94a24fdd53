//! `stats`: one stats stream per container (a thread each), the table redrawn every half
//! second, or printed once with `--no-stream`; the numbers computed as docker does.

use super::lifecycle::container_path;
use crate::args::{bool_flag, value_flag, Count, Parsed};
use crate::commands::images::truncate_id;
use crate::commands::{fail, Ctx, Def, Result};
use crate::format;
use crate::http::{Body, Client};
use crate::units::{bytes_size, human_size_precision};
use serde_json::{json, Value};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const DEFAULT: &str = "table {{.ID}}\t{{.Name}}\t{{.CPUPerc}}\t{{.MemUsage}}\t{{.MemPerc}}\t{{.NetIO}}\t{{.BlockIO}}\t{{.PIDs}}";

const HEADERS: &[(&str, &str)] = &[
    ("BlockIO", "BLOCK I/O"),
    ("CPUPerc", "CPU %"),
    ("Container", "CONTAINER"),
    ("ID", "CONTAINER ID"),
    ("MemPerc", "MEM %"),
    ("MemUsage", "MEM USAGE / LIMIT"),
    ("Name", "NAME"),
    ("NetIO", "NET I/O"),
    ("PIDs", "PIDS"),
];

/// docker's `StatsEntry`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Entry {
    pub container: String,
    pub name: String,
    pub id: String,
    pub cpu: f64,
    pub mem: f64,
    pub mem_limit: f64,
    pub mem_perc: f64,
    pub net_rx: f64,
    pub net_tx: f64,
    pub blk_read: f64,
    pub blk_write: f64,
    pub pids: u64,
    pub invalid: bool,
}

fn u(v: &Value, ptr: &str) -> u64 {
    v.pointer(ptr).and_then(Value::as_u64).unwrap_or(0)
}

/// One stats sample -> an entry, with docker's arithmetic.
pub fn entry(container: &str, v: &Value) -> Entry {
    let cpu_delta =
        u(v, "/cpu_stats/cpu_usage/total_usage") as f64 - u(v, "/precpu_stats/cpu_usage/total_usage") as f64;
    let sys_delta =
        u(v, "/cpu_stats/system_cpu_usage") as f64 - u(v, "/precpu_stats/system_cpu_usage") as f64;
    let mut online = u(v, "/cpu_stats/online_cpus") as f64;
    if online == 0.0 {
        online = v
            .pointer("/cpu_stats/cpu_usage/percpu_usage")
            .and_then(Value::as_array)
            .map_or(0, Vec::len) as f64;
    }
    let cpu = if sys_delta > 0.0 && cpu_delta > 0.0 {
        cpu_delta / sys_delta * online * 100.0
    } else {
        0.0
    };
    let usage = u(v, "/memory_stats/usage");
    let stat = |k: &str| {
        v.pointer(&format!("/memory_stats/stats/{k}"))
            .and_then(Value::as_u64)
    };
    let mem = match (stat("total_inactive_file"), stat("inactive_file").unwrap_or(0)) {
        (Some(x), _) if x < usage => (usage - x) as f64,
        (_, x) if x < usage => (usage - x) as f64,
        _ => usage as f64,
    };
    let limit = u(v, "/memory_stats/limit") as f64;
    let (mut rd, mut wr) = (0u64, 0u64);
    for e in v
        .pointer("/blkio_stats/io_service_bytes_recursive")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let value = e.get("value").and_then(Value::as_u64).unwrap_or(0);
        match e.get("op").and_then(Value::as_str).and_then(|o| o.chars().next()) {
            Some('r' | 'R') => rd += value,
            Some('w' | 'W') => wr += value,
            _ => {}
        }
    }
    let (mut rx, mut tx) = (0.0, 0.0);
    for n in v.get("networks").and_then(Value::as_object).into_iter().flatten() {
        rx += u(n.1, "/rx_bytes") as f64;
        tx += u(n.1, "/tx_bytes") as f64;
    }
    Entry {
        container: container.to_string(),
        name: v.get("name").and_then(Value::as_str).unwrap_or("").to_string(),
        id: v.get("id").and_then(Value::as_str).unwrap_or("").to_string(),
        cpu,
        mem,
        mem_limit: limit,
        mem_perc: if limit != 0.0 { mem / limit * 100.0 } else { 0.0 },
        net_rx: rx,
        net_tx: tx,
        blk_read: rd as f64,
        blk_write: wr as f64,
        pids: u(v, "/pids_stats/current"),
        invalid: false,
    }
}

fn perc(v: f64) -> String {
    format!("{v:.2}%")
}

/// docker's stats context as a row.
pub fn row(e: &Entry, trunc: bool) -> Value {
    let dash = |s: String| if e.invalid { "--".to_string() } else { s };
    json!({
        "BlockIO": dash(format!("{} / {}", human_size_precision(e.blk_read, 3), human_size_precision(e.blk_write, 3))),
        "CPUPerc": dash(perc(e.cpu)),
        "Container": e.container,
        "ID": if trunc { truncate_id(&e.id) } else { e.id.clone() },
        "MemPerc": dash(perc(e.mem_perc)),
        "MemUsage": if e.invalid { "-- / --".to_string() } else { format!("{} / {}", bytes_size(e.mem), bytes_size(e.mem_limit)) },
        "Name": if e.name.len() > 1 { e.name[1..].to_string() } else { "--".to_string() },
        "NetIO": dash(format!("{} / {}", human_size_precision(e.net_rx, 3), human_size_precision(e.net_tx, 3))),
        "PIDs": dash(e.pids.to_string()),
    })
}

/// A container's latest entry, its error, and whether a sample arrived.
type Slot = Arc<Mutex<(Entry, Option<String>, bool)>>;

/// A container's collector: reads its stats stream into `slot`.
fn collect(client: Client, name: String, stream: bool, slot: Slot) {
    let q = [("stream", if stream { "1" } else { "0" }.to_string())];
    let resp = match client.request("GET", &container_path(&name, "/stats", &q), &[], Body::Empty) {
        Ok(r) => r,
        Err(e) => {
            if let Ok(mut s) = slot.lock() {
                s.0.invalid = true;
                s.1 = Some(e.to_string());
                s.2 = true;
            }
            return;
        }
    };
    for v in serde_json::Deserializer::from_reader(resp.body).into_iter::<Value>() {
        let Ok(v) = v else { break };
        if let Ok(mut s) = slot.lock() {
            s.0 = entry(&name, &v);
            s.2 = true;
        }
        if !stream {
            return;
        }
    }
}

/// docker's redraw of a streamed table: cursor home, the table, then the same lines
/// again each with an erase-to-end-of-line (its own quirk, kept), and erase-below.
pub fn redraw(table: &str) -> String {
    let first = format!("\x1b[H{table}");
    let mut out = first.clone();
    for line in first.split('\n') {
        out.push_str(&format!("{line} \x1b[K\n"));
    }
    out.push_str("\x1b[J");
    out
}

fn run_stats(ctx: &Ctx, p: &Parsed) -> Result {
    let stream = !p.bool("no-stream");
    let names: Vec<String> = if p.args.is_empty() {
        let q = if p.bool("all") { "?all=1" } else { "" };
        let list = ctx.api.get_json(&format!("/containers/json{q}"))?;
        list.as_array()
            .into_iter()
            .flatten()
            .filter_map(|c| c.get("Id").and_then(Value::as_str).map(truncate_id))
            .collect()
    } else {
        p.args.clone()
    };
    let client = ctx.api.ready_client()?;
    let slots: Vec<Slot> = names
        .iter()
        .map(|n| {
            let slot = Arc::new(Mutex::new((
                Entry {
                    container: n.clone(),
                    ..Entry::default()
                },
                None,
                false,
            )));
            let (client, name, s) = (client.clone(), n.clone(), slot.clone());
            std::thread::spawn(move || collect(client, name, stream, s));
            slot
        })
        .collect();
    // the first sample of each, for at most two seconds
    let deadline = Instant::now() + Duration::from_secs(2);
    while Instant::now() < deadline && !slots.iter().all(|s| s.lock().map(|g| g.2).unwrap_or(true)) {
        std::thread::sleep(Duration::from_millis(20));
    }
    let errors: Vec<String> = slots
        .iter()
        .filter_map(|s| s.lock().ok().and_then(|g| g.1.clone()))
        .collect();
    if !p.args.is_empty() && !errors.is_empty() {
        return Err(fail(errors.join("\n")));
    }
    let fmt = format::resolve(p.value("format").unwrap_or(""), DEFAULT);
    let trunc = !p.bool("no-trunc");
    loop {
        let rows: Vec<Value> = slots
            .iter()
            .filter_map(|s| s.lock().ok().map(|g| g.clone()))
            .filter(|(_, err, _)| err.is_none())
            .map(|(e, _, got)| {
                let mut e = e.clone();
                e.invalid |= !got;
                row(&e, trunc)
            })
            .collect();
        let text = format::table(fmt, HEADERS, rows)?;
        if !stream {
            return ctx.print(&text);
        }
        ctx.print(&redraw(&text))?;
        if slots.is_empty() && !p.bool("all") {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(500));
    }
}

pub const STATS: Def = Def {
    name: "stats",
    args: "[OPTIONS] [CONTAINER...]",
    desc: "Display a live stream of container(s) resource usage statistics",
    aliases: "berth container stats, berth stats",
    options: concat!(
        "  -a, --all             Show all containers (default shows just running)\n      --format string   Format output using a custom template:\n",
        format_table_help!(),
        format_template_help!(),
        "      --no-stream       Disable streaming stats and only pull the first result
      --no-trunc        Do not truncate output
"
    ),
    flags: &[
        bool_flag(Some('a'), "all"),
        value_flag(None, "format"),
        bool_flag(None, "no-stream"),
        bool_flag(None, "no-trunc"),
    ],
    count: Count::Min(0),
    run: run_stats,
};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn computes_like_docker() {
        let v = json!({
            "name": "/web", "id": "5ad6254a21a63866dcb6c5f497bb808a63881482618c329df04dbd327b1aef2e",
            "cpu_stats": {"cpu_usage": {"total_usage": 2_000_000_000u64}, "system_cpu_usage": 20_000_000_000u64, "online_cpus": 2},
            "precpu_stats": {"cpu_usage": {"total_usage": 1_000_000_000u64}, "system_cpu_usage": 10_000_000_000u64},
            "memory_stats": {"usage": 10_485_760u64, "limit": 104_857_600u64, "stats": {"total_inactive_file": 2_097_152u64}},
            "blkio_stats": {"io_service_bytes_recursive": [
                {"op": "Read", "value": 4096}, {"op": "Write", "value": 1_000_000}, {"op": "Total", "value": 1_004_096}]},
            "networks": {"eth0": {"rx_bytes": 1500, "tx_bytes": 648}},
            "pids_stats": {"current": 3}
        });
        let e = entry("web", &v);
        assert_eq!(e.cpu, 20.0);
        assert_eq!(e.mem, 8_388_608.0);
        let r = row(&e, true);
        assert_eq!(
            r.to_string(),
            r#"{"BlockIO":"4.1kB / 1MB","CPUPerc":"20.00%","Container":"web","ID":"5ad6254a21a6","MemPerc":"8.00%","MemUsage":"8MiB / 100MiB","Name":"web","NetIO":"1.5kB / 648B","PIDs":"3"}"#
        );
        let t = format::table(DEFAULT, HEADERS, vec![r]).unwrap();
        assert_eq!(
            t,
            "CONTAINER ID   NAME      CPU %     MEM USAGE / LIMIT   MEM %     NET I/O        BLOCK I/O     PIDS\n\
             5ad6254a21a6   web       20.00%    8MiB / 100MiB       8.00%     1.5kB / 648B   4.1kB / 1MB   3\n"
        );
        let invalid = Entry {
            invalid: true,
            ..Entry::default()
        };
        assert_eq!(
            redraw("A\nb\n"),
            "\x1b[HA\nb\n\x1b[HA \x1b[K\nb \x1b[K\n \x1b[K\n\x1b[J"
        );
        let r = row(&invalid, true);
        assert_eq!(r["MemUsage"], "-- / --");
        assert_eq!(r["CPUPerc"], "--");
        assert_eq!(r["Name"], "--");
    }
}
