//! `ps` (`container ls`): docker's container context, table, JSON and templates.

use crate::args::{bool_flag, list_flag, value_flag, Count, Parsed};
use crate::commands::images::{ellipsis, filters_json, truncate_id};
use crate::commands::{Ctx, Def, Result};
use crate::format;
use crate::goparse::{check_i64, parse_i64};
use crate::http::encode_query;
use crate::reference::Reference;
use crate::units;
use serde_json::{json, Value};

const DEFAULT: &str =
    "table {{.ID}}\t{{.Image}}\t{{.Command}}\t{{.RunningFor}}\t{{.Status}}\t{{.Ports}}\t{{.Names}}";

pub const HEADERS: &[(&str, &str)] = &[
    ("Command", "COMMAND"),
    ("CreatedAt", "CREATED AT"),
    ("ID", "CONTAINER ID"),
    ("Image", "IMAGE"),
    ("Labels", "LABELS"),
    ("LocalVolumes", "LOCAL VOLUMES"),
    ("Mounts", "MOUNTS"),
    ("Names", "NAMES"),
    ("Networks", "NETWORKS"),
    ("Platform", "PLATFORM"),
    ("Ports", "PORTS"),
    ("RunningFor", "CREATED"),
    ("Size", "SIZE"),
    ("State", "STATE"),
    ("Status", "STATUS"),
];

/// Go's `strconv.Quote`.
pub fn go_quote(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            '\u{7}' => out.push_str("\\a"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\u{b}' => out.push_str("\\v"),
            c if (c as u32) < 0x20 || c as u32 == 0x7f => out.push_str(&format!("\\x{:02x}", c as u32)),
            c if c.is_control() => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn text<'a>(v: &'a Value, k: &str) -> &'a str {
    v.get(k).and_then(Value::as_str).unwrap_or("")
}

/// docker's `ContainerContext.Image`.
fn image(c: &Value, trunc: bool) -> String {
    let img = text(c, "Image");
    if img.is_empty() {
        return "<no image>".into();
    }
    if trunc {
        let id = truncate_id(text(c, "ImageID"));
        if id == truncate_id(img) {
            return id;
        }
        if let Ok(r) = Reference::parse(img) {
            return match &r.tag {
                Some(t) => format!("{}:{t}", r.familiar_name()),
                None => r.familiar_name(),
            };
        }
    }
    img.to_string()
}

/// docker's `ContainerContext.Names`: without the leading `/`; truncated, the first name
/// that is no link name.
fn names(c: &Value, trunc: bool) -> String {
    let all: Vec<String> = c
        .get("Names")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(|n| n.get(1..).unwrap_or("").to_string())
                .collect()
        })
        .unwrap_or_default();
    if trunc {
        if let Some(n) = all.iter().find(|n| !n.contains('/')) {
            return n.clone();
        }
    }
    all.join(",")
}

/// docker's `DisplayablePorts`.
pub fn ports(c: &Value) -> String {
    let mut list: Vec<(u16, String, u16, String)> = c
        .get("Ports")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .map(|p| {
                    let n = |k: &str| p.get(k).and_then(Value::as_u64).unwrap_or(0) as u16;
                    (
                        n("PrivatePort"),
                        text(p, "IP").to_string(),
                        n("PublicPort"),
                        text(p, "Type").to_string(),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    list.sort();
    let join = |ip: &str, port: &str| {
        if ip.contains(':') {
            format!("[{ip}]:{port}")
        } else {
            format!("{ip}:{port}")
        }
    };
    let mut groups: Vec<(String, u16, u16)> = Vec::new();
    let mut result = Vec::new();
    let mut mappings = Vec::new();
    for (private, ip, public, kind) in &list {
        let key = if ip.is_empty() {
            kind.clone()
        } else if public != private {
            mappings.push(format!("{}->{private}/{kind}", join(ip, &public.to_string())));
            continue;
        } else {
            format!("{ip}/{kind}")
        };
        match groups.iter_mut().find(|(k, _, _)| *k == key) {
            None => groups.push((key, *private, *private)),
            Some(g) if *private == g.2 + 1 => g.2 = *private,
            Some(g) => {
                result.push(form_group(&g.0, g.1, g.2, &join));
                *g = (key, *private, *private);
            }
        }
    }
    for (k, first, last) in &groups {
        result.push(form_group(k, *first, *last, &join));
    }
    result.extend(mappings);
    result.join(", ")
}

fn form_group(key: &str, start: u16, last: u16, join: &dyn Fn(&str, &str) -> String) -> String {
    let (ip, kind) = key.rsplit_once('/').unwrap_or(("", key));
    let mut group = start.to_string();
    if start != last {
        group = format!("{group}-{last}");
    }
    if !ip.is_empty() {
        group = format!("{}->{group}", join(ip, &group));
    }
    format!("{group}/{kind}")
}

/// One row of docker's container context (its JSON has these keys, sorted).
pub fn row(c: &Value, trunc: bool, now: i64) -> Value {
    let created = c.get("Created").and_then(Value::as_i64).unwrap_or(0);
    let command = text(c, "Command");
    let command = if trunc {
        ellipsis(command, 20)
    } else {
        command.to_string()
    };
    let mut labels: Vec<String> = c
        .get("Labels")
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or("")))
                .collect()
        })
        .unwrap_or_default();
    labels.sort();
    let mounts: Vec<&Value> = c
        .get("Mounts")
        .and_then(Value::as_array)
        .map(|a| a.iter().collect())
        .unwrap_or_default();
    let mount_names: Vec<String> = mounts
        .iter()
        .map(|m| {
            let n = match text(m, "Name") {
                "" => text(m, "Source"),
                n => n,
            };
            if trunc {
                ellipsis(n, 15)
            } else {
                n.to_string()
            }
        })
        .collect();
    let local = mounts.iter().filter(|m| text(m, "Driver") == "local").count();
    let mut networks: Vec<String> = c
        .pointer("/NetworkSettings/Networks")
        .and_then(Value::as_object)
        .map(|m| m.keys().cloned().collect())
        .unwrap_or_default();
    networks.sort();
    let size_rw = c.get("SizeRw").and_then(Value::as_i64).unwrap_or(0);
    let size_root = c.get("SizeRootFs").and_then(Value::as_i64).unwrap_or(0);
    let mut size = units::human_size_precision(size_rw as f64, 3);
    if size_root > 0 {
        size = format!(
            "{size} (virtual {})",
            units::human_size_precision(size_root as f64, 3)
        );
    }
    let id = text(c, "Id");
    json!({
        "Command": go_quote(&command),
        "CreatedAt": units::go_time_string(created),
        "ID": if trunc { truncate_id(id) } else { id.to_string() },
        "Image": image(c, trunc),
        "Labels": labels.join(","),
        "LocalVolumes": local.to_string(),
        "Mounts": mount_names.join(","),
        "Names": names(c, trunc),
        "Networks": networks.join(","),
        "Platform": Value::Null,
        "Ports": ports(c),
        "RunningFor": units::since(created, now),
        "Size": size,
        "State": text(c, "State"),
        "Status": text(c, "Status"),
    })
}

fn run_ps(ctx: &Ctx, p: &Parsed) -> Result {
    let quiet = p.bool("quiet");
    let user_format = p.value("format").unwrap_or("");
    if !user_format.is_empty() && quiet {
        eprintln!("WARNING: Ignoring custom format, because both --format and --quiet are set.");
    }
    let mut size = p.bool("size");
    if !quiet && !p.is_set("size") && user_format.contains(".Size") {
        size = true;
    }
    let mut limit = p.value("last").and_then(|v| parse_i64(v).ok()).unwrap_or(-1);
    if p.bool("latest") && limit == -1 {
        limit = 1;
    }
    let mut q = Vec::new();
    if p.bool("all") {
        q.push(("all", "1".to_string()));
    }
    if limit > 0 {
        q.push(("limit", limit.to_string()));
    }
    if size {
        q.push(("size", "1".to_string()));
    }
    if let Some(f) = filters_json(p.values("filter"), &[])? {
        q.push(("filters", f));
    }
    let path = if q.is_empty() {
        "/containers/json".to_string()
    } else {
        format!("/containers/json?{}", encode_query(&q))
    };
    let list = ctx.api.get_json(&path)?;
    let fmt = match user_format {
        "" | "table" if quiet => "{{.ID}}".to_string(),
        "" | "table" if size => format!("{DEFAULT}\t{{{{.Size}}}}"),
        "" | "table" => DEFAULT.to_string(),
        _ if quiet => "{{.ID}}".to_string(),
        "json" => format::JSON_FORMAT.to_string(),
        f => f.to_string(),
    };
    let trunc = !p.bool("no-trunc");
    let now = units::now_unix();
    let rows = list
        .as_array()
        .map(|a| a.iter().map(|c| row(c, trunc, now)).collect())
        .unwrap_or_default();
    let text = format::table(&fmt, HEADERS, rows)?;
    ctx.print(&text)
}

pub const PS: Def = Def {
    name: "ps",
    args: "[OPTIONS]",
    desc: "List containers",
    aliases: "berth container ls, berth container list, berth container ps, berth ps",
    options: concat!(
        "  -a, --all             Show all containers (default shows just running)\n  -f, --filter filter   Filter output based on conditions provided\n      --format string   Format output using a custom template:\n",
        format_table_help!(),
        format_template_help!(),
        "  -n, --last int        Show n last created containers (includes all
                        states) (default -1)
  -l, --latest          Show the latest created container (includes all
                        states)
      --no-trunc        Don't truncate output
  -q, --quiet           Only display container IDs
  -s, --size            Display total file sizes
"
    ),
    flags: &[
        bool_flag(Some('a'), "all"),
        list_flag(Some('f'), "filter"),
        value_flag(None, "format"),
        value_flag(Some('n'), "last").checked(check_i64),
        bool_flag(Some('l'), "latest"),
        bool_flag(None, "no-trunc"),
        bool_flag(Some('q'), "quiet"),
        bool_flag(Some('s'), "size"),
    ],
    count: Count::None,
    run: run_ps,
};

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Value {
        json!({
            "Id": "5ad6254a21a63866dcb6c5f497bb808a63881482618c329df04dbd327b1aef2e",
            "Names": ["/pstest"],
            "Image": "busybox",
            "ImageID": "sha256:b7746c5a17f1aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
            "Command": "sleep 1000",
            "Created": 1_700_000_000,
            "Ports": [],
            "Labels": {"b": "2", "a": "1"},
            "State": "running",
            "Status": "Up 3 seconds",
            "NetworkSettings": {"Networks": {"none": {}}},
            "Mounts": []
        })
    }

    #[test]
    fn json_row_like_docker() {
        let r = row(&sample(), true, 1_700_000_003);
        assert_eq!(
            r.to_string(),
            r#"{"Command":"\"sleep 1000\"","CreatedAt":"2023-11-14 22:13:20 +0000 UTC","ID":"5ad6254a21a6","Image":"busybox","Labels":"a=1,b=2","LocalVolumes":"0","Mounts":"","Names":"pstest","Networks":"none","Platform":null,"Ports":"","RunningFor":"3 seconds ago","Size":"0B","State":"running","Status":"Up 3 seconds"}"#
        );
    }

    #[test]
    fn table_like_docker() {
        let mut exited = sample();
        exited["Id"] = json!("835ff5761dc7aaaa");
        exited["Names"] = json!(["/optimistic_grothendieck"]);
        exited["Command"] = json!("sh -c 'exit 3'");
        exited["Status"] = json!("Exited (3) 9 minutes ago");
        exited["Created"] = json!(1_700_000_003 - 9 * 60);
        let rows = vec![
            row(&sample(), true, 1_700_000_003),
            row(&exited, true, 1_700_000_003),
        ];
        let t = format::table(DEFAULT, HEADERS, rows).unwrap();
        assert_eq!(
            t,
            "CONTAINER ID   IMAGE     COMMAND            CREATED         STATUS                     PORTS     NAMES
5ad6254a21a6   busybox   \"sleep 1000\"       3 seconds ago   Up 3 seconds                         pstest
835ff5761dc7   busybox   \"sh -c 'exit 3'\"   9 minutes ago   Exited (3) 9 minutes ago             optimistic_grothendieck
"
        );
    }

    #[test]
    fn commands_and_images() {
        let mut c = sample();
        c["Command"] = json!("/bin/sh -c 'while true; do echo hello; done'");
        c["Image"] = json!("127.0.0.1:5000/busybox:latest@sha256:955e706a81219fc2d4893075c887f048c489515ad819afca269a91bbdd24180f");
        let r = row(&c, true, 1_700_000_003);
        assert_eq!(r["Command"], "\"/bin/sh -c 'while t…\"");
        assert_eq!(r["Image"], "127.0.0.1:5000/busybox:latest");
        c["Image"] = json!("sha256:b7746c5a17f1aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa");
        assert_eq!(row(&c, true, 0)["Image"], "b7746c5a17f1");
        assert_eq!(go_quote("a\"b\\\n\u{1}"), "\"a\\\"b\\\\\\n\\x01\"");
    }

    #[test]
    fn ports_like_docker() {
        let c = json!({"Ports": [
            {"PrivatePort": 80, "Type": "tcp"},
            {"PrivatePort": 81, "Type": "tcp"},
            {"PrivatePort": 53, "Type": "udp"},
            {"PrivatePort": 443, "PublicPort": 8443, "IP": "0.0.0.0", "Type": "tcp"},
            {"PrivatePort": 22, "PublicPort": 22, "IP": "127.0.0.1", "Type": "tcp"}
        ]});
        assert_eq!(
            ports(&c),
            "127.0.0.1:22->22/tcp, 53/udp, 80-81/tcp, 0.0.0.0:8443->443/tcp"
        );
    }
}
