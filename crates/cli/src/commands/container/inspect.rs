//! Read-only views of a container: `container inspect`, `top`, `diff`, `port`.

use super::lifecycle::container_path;
use super::start::inspect;
use crate::args::{bool_flag, value_flag, Count, Parsed};
use crate::commands::images::{check_connect, inspect_objects, inspect_template};
use crate::commands::{fail, Ctx, Def, Result};
use crate::http::{Body, Error};
use crate::tabwriter::TabWriter;
use serde_json::Value;

/// The outcome of looking a container up for `inspect`.
pub enum Found {
    /// its raw JSON, as the daemon wrote it
    Yes(String),
    /// no such container: the daemon's message
    No(String),
    /// any other failure
    Error(String),
}

/// `GET /containers/{name}/json[?size=1]`.
pub fn fetch_container(ctx: &Ctx, name: &str, size: bool) -> Found {
    let q: Vec<(&str, String)> = if size { vec![("size", "1".into())] } else { vec![] };
    match ctx
        .api
        .request("GET", &container_path(name, "/json", &q), &[], Body::Empty)
    {
        Ok(r) => match r.bytes() {
            Ok(b) => Found::Yes(String::from_utf8_lossy(&b).into_owned()),
            Err(e) => Found::Error(e.to_string()),
        },
        Err(e @ Error::Api { status: 404, .. }) => Found::No(e.to_string()),
        Err(e) => Found::Error(e.to_string()),
    }
}

fn run_inspect(ctx: &Ctx, p: &Parsed) -> Result {
    let tmpl = inspect_template(p.value("format").unwrap_or(""))?;
    check_connect(ctx)?;
    let size = p.bool("size");
    inspect_objects(ctx, &p.args, tmpl, &|n| match fetch_container(ctx, n, size) {
        Found::Yes(raw) => Ok(raw),
        Found::No(e) | Found::Error(e) => Err(e),
    })
}

pub const INSPECT: Def = Def {
    name: "inspect",
    args: "[OPTIONS] CONTAINER [CONTAINER...]",
    desc: "Display detailed information on one or more containers",
    aliases: "",
    options: concat!(
        "  -f, --format string   Format output using a custom template:\n",
        format_template_help!(),
        "  -s, --size            Display total file sizes\n"
    ),
    flags: &[value_flag(Some('f'), "format"), bool_flag(Some('s'), "size")],
    count: Count::Min(1),
    run: run_inspect,
};

fn run_top(ctx: &Ctx, p: &Parsed) -> Result {
    let mut q = Vec::new();
    if p.args.len() > 1 {
        q.push(("ps_args", p.args[1..].join(" ")));
    }
    let v = ctx.api.get_json(&container_path(&p.args[0], "/top", &q))?;
    let line = |a: Option<&Value>| -> String {
        a.and_then(Value::as_array)
            .map(|xs| {
                xs.iter()
                    .map(|x| x.as_str().unwrap_or("").to_string())
                    .collect::<Vec<_>>()
                    .join("\t")
            })
            .unwrap_or_default()
    };
    let mut text = format!("{}\n", line(v.get("Titles")));
    for proc in v.get("Processes").and_then(Value::as_array).into_iter().flatten() {
        text.push_str(&line(Some(proc)));
        text.push('\n');
    }
    let tw = TabWriter {
        minwidth: 20,
        padding: 3,
    };
    ctx.print(&tw.format(&text))
}

pub const TOP: Def = Def {
    name: "top",
    args: "CONTAINER [ps OPTIONS]",
    desc: "Display the running processes of a container",
    aliases: "berth container top, berth top",
    options: "",
    flags: &[],
    count: Count::Command(1),
    run: run_top,
};

/// The letter of a filesystem change: 0 modified, 1 added, 2 deleted.
pub fn change_kind(kind: i64) -> &'static str {
    match kind {
        1 => "A",
        2 => "D",
        _ => "C",
    }
}

fn run_diff(ctx: &Ctx, p: &Parsed) -> Result {
    let v = ctx.api.get_json(&container_path(&p.args[0], "/changes", &[]))?;
    let mut text = String::new();
    for c in v.as_array().into_iter().flatten() {
        let kind = c.get("Kind").and_then(Value::as_i64).unwrap_or(0);
        let path = c.get("Path").and_then(Value::as_str).unwrap_or("");
        text.push_str(&format!("{} {path}\n", change_kind(kind)));
    }
    ctx.print(&text)
}

pub const DIFF: Def = Def {
    name: "diff",
    args: "CONTAINER",
    desc: "Inspect changes to files or directories on a container's filesystem",
    aliases: "berth container diff, berth diff",
    options: "",
    flags: &[],
    count: Count::Exact(1),
    run: run_diff,
};

/// The host side of one port binding: `0.0.0.0:8080`, `[::]:8080`.
fn binding(b: &Value) -> String {
    let ip = b.get("HostIp").and_then(Value::as_str).unwrap_or("");
    let port = b.get("HostPort").and_then(Value::as_str).unwrap_or("");
    if ip.contains(':') {
        format!("[{ip}]:{port}")
    } else {
        format!("{ip}:{port}")
    }
}

/// docker's `port` output: `80/tcp -> 0.0.0.0:8080` lines (or the host sides of one port),
/// in natural order.
pub fn port_lines(
    ports: &serde_json::Map<String, Value>,
    want: Option<&str>,
    name: &str,
) -> std::result::Result<String, String> {
    let mut out: Vec<String> = Vec::new();
    if let Some(want) = want {
        let (port, proto) = want.split_once('/').unwrap_or((want, ""));
        let proto = if proto.is_empty() { "tcp" } else { proto };
        if let Err(e) = crate::goparse::parse_u16(port) {
            return Err(format!("Error: invalid port ({port}): {e}"));
        }
        match ports.get(&format!("{port}/{proto}")).and_then(Value::as_array) {
            Some(bs) if !bs.is_empty() => out.extend(bs.iter().map(binding)),
            _ => return Err(format!("Error: No public port '{want}' published for {name}")),
        }
    } else {
        for (k, bs) in ports {
            for b in bs.as_array().into_iter().flatten() {
                out.push(format!("{k} -> {}", binding(b)));
            }
        }
    }
    out.sort_by(|a, b| crate::format::natural_cmp(a, b));
    Ok(out.iter().map(|l| format!("{l}\n")).collect())
}

fn run_port(ctx: &Ctx, p: &Parsed) -> Result {
    let c = inspect(ctx, &p.args[0])?;
    let ports = c
        .pointer("/NetworkSettings/Ports")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    let text = port_lines(&ports, p.args.get(1).map(String::as_str), &p.args[0]).map_err(fail)?;
    ctx.print(&text)
}

pub const PORT: Def = Def {
    name: "port",
    args: "CONTAINER [PRIVATE_PORT[/PROTO]]",
    desc: "List port mappings or a specific mapping for the container",
    aliases: "berth container port, berth port",
    options: "",
    flags: &[],
    count: Count::Min(1),
    run: run_port,
};

#[cfg(test)]
mod tests {
    use super::port_lines;
    use serde_json::json;

    #[test]
    fn port_like_docker() {
        let ports = json!({
            "80/tcp": [{"HostIp": "0.0.0.0", "HostPort": "8080"}, {"HostIp": "::", "HostPort": "8080"}],
            "9/udp": [{"HostIp": "127.0.0.1", "HostPort": "9"}],
            "443/tcp": null
        });
        let ports = ports.as_object().unwrap();
        assert_eq!(
            port_lines(ports, None, "c").unwrap(),
            "9/udp -> 127.0.0.1:9\n80/tcp -> 0.0.0.0:8080\n80/tcp -> [::]:8080\n"
        );
        assert_eq!(
            port_lines(ports, Some("80"), "c").unwrap(),
            "0.0.0.0:8080\n[::]:8080\n"
        );
        assert_eq!(
            port_lines(ports, Some("81/tcp"), "c").unwrap_err(),
            "Error: No public port '81/tcp' published for c"
        );
        assert_eq!(
            port_lines(ports, Some("443"), "c").unwrap_err(),
            "Error: No public port '443' published for c"
        );
        assert_eq!(
            port_lines(ports, Some("x"), "c").unwrap_err(),
            "Error: invalid port (x): strconv.ParseUint: parsing \"x\": invalid syntax"
        );
    }
}
