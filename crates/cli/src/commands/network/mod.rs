//! `network create|ls|inspect|rm|prune|connect|disconnect`: docker's network commands, their
//! flags, request bodies (`body`) and output.

pub mod body;
#[cfg(test)]
mod tests;

use super::images::{
    check_connect, confirm, deleted_block, filters_json, inspect_objects, inspect_template, truncate_id,
};
use super::{fail, Ctx, Def, Fail, Group, Result};
use crate::args::{bool_flag, list_flag, value_flag, Count, Parsed};
use crate::commands::container::opts::check_label;
use crate::format::{self, natural_cmp, row, Rows};
use crate::goparse::{check_i64, check_string_slice};
use crate::http::{encode_query, path_escape, Body, Error};
use serde_json::Value;

pub const NETWORK: Group = Group {
    name: "network",
    desc: "Manage networks",
    commands: &[
        ("connect", &CONNECT),
        ("create", &CREATE),
        ("disconnect", &DISCONNECT),
        ("inspect", &INSPECT),
        ("ls", &LS),
        ("list", &LS),
        ("prune", &PRUNE),
        ("rm", &RM),
        ("remove", &RM),
    ],
    listing: "  connect     Connect a container to a network
  create      Create a network
  disconnect  Disconnect a container from a network
  inspect     Display detailed information on one or more networks
  ls          List networks
  prune       Remove all unused networks
  rm          Remove one or more networks
",
};

fn network_path(name: &str, suffix: &str) -> String {
    format!("/networks/{}{suffix}", path_escape(name))
}

fn post_json(ctx: &Ctx, path: &str, body: &Value) -> std::result::Result<crate::http::Response, Error> {
    ctx.api.request(
        "POST",
        path,
        &[],
        Body::Json(serde_json::to_vec(body).expect("json")),
    )
}

// ---- create

fn run_create(ctx: &Ctx, p: &Parsed) -> Result {
    let version = ctx.api.ready_client()?.version().to_string();
    let body = body::create(p, &p.args[0], &version).map_err(fail)?;
    let resp = post_json(ctx, "/networks/create", &body)?.json()?;
    let id = resp.get("Id").and_then(Value::as_str).unwrap_or("");
    ctx.print(&format!("{id}\n"))
}

pub const CREATE: Def = Def {
    name: "create",
    args: "[OPTIONS] NETWORK",
    desc: "Create a network",
    aliases: "",
    options: "      --attachable           Enable manual container attachment
      --aux-address map      Auxiliary IPv4 or IPv6 addresses used by
                             Network driver (default map[])
      --config-from string   The network from which to copy the configuration
      --config-only          Create a configuration only network
  -d, --driver string        Driver to manage the Network (default \"bridge\")
      --gateway strings      IPv4 or IPv6 Gateway for the master subnet
      --ingress              Create swarm routing-mesh network
      --internal             Restrict external access to the network
      --ip-range strings     Allocate container ip from a sub-range
      --ipam-driver string   IP Address Management Driver (default \"default\")
      --ipam-opt map         Set IPAM driver specific options (default map[])
      --ipv4                 Enable or disable IPv4 address assignment
                             (default true)
      --ipv6                 Enable or disable IPv6 address assignment
      --label list           Set metadata on a network
  -o, --opt map              Set driver specific options (default map[])
      --scope string         Control the network's scope
      --subnet strings       Subnet in CIDR format that represents a
                             network segment
",
    flags: &[
        bool_flag(None, "attachable"),
        list_flag(None, "aux-address"),
        value_flag(None, "config-from"),
        bool_flag(None, "config-only"),
        value_flag(Some('d'), "driver"),
        list_flag(None, "gateway").checked(check_string_slice),
        bool_flag(None, "ingress"),
        bool_flag(None, "internal"),
        list_flag(None, "ip-range").checked(check_string_slice),
        value_flag(None, "ipam-driver"),
        list_flag(None, "ipam-opt"),
        bool_flag(None, "ipv4"),
        bool_flag(None, "ipv6"),
        list_flag(None, "label").checked(check_label),
        list_flag(Some('o'), "opt"),
        value_flag(None, "scope"),
        list_flag(None, "subnet").checked(check_string_slice),
    ],
    count: Count::Exact(1),
    run: run_create,
};

// ---- ls

const LS_DEFAULT: &str = "table {{.ID}}\t{{.Name}}\t{{.Driver}}\t{{.Scope}}";

pub const NETWORK_HEADERS: &[(&str, &str)] = &[
    ("ID", "NETWORK ID"),
    ("Name", "NAME"),
    ("Driver", "DRIVER"),
    ("Scope", "SCOPE"),
    ("IPv4", "IPV4"),
    ("IPv6", "IPV6"),
    ("Internal", "INTERNAL"),
    ("Labels", "LABELS"),
    ("CreatedAt", "CREATED AT"),
];

/// docker's network `NewFormat`.
fn ls_format(format: &str, quiet: bool) -> String {
    match format {
        "" | "table" if quiet => "{{.ID}}".into(),
        "" | "table" => LS_DEFAULT.into(),
        "raw" if quiet => "network_id: {{.ID}}".into(),
        "raw" => "network_id: {{.ID}}\\nname: {{.Name}}\\ndriver: {{.Driver}}\\nscope: {{.Scope}}\\n".into(),
        f => format::resolve(f, LS_DEFAULT).into(),
    }
}

/// `k=v` pairs of a labels object joined with commas (sorted: Go's map order is random).
pub fn labels_text(v: Option<&Value>) -> String {
    v.and_then(Value::as_object)
        .map(|m| {
            let mut pairs: Vec<String> = m
                .iter()
                .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or("")))
                .collect();
            pairs.sort();
            pairs.join(",")
        })
        .unwrap_or_default()
}

fn text<'a>(v: &'a Value, k: &str) -> &'a str {
    v.get(k).and_then(Value::as_str).unwrap_or("")
}

fn flag(v: &Value, k: &str) -> String {
    v.get(k).and_then(Value::as_bool).unwrap_or(false).to_string()
}

/// One row of docker's network context (keys sorted, as its JSON has them).
pub fn network_row(n: &Value, trunc: bool) -> Value {
    let id = text(n, "Id");
    row(&[
        ("CreatedAt", crate::units::go_time_text(text(n, "Created"))),
        ("Driver", text(n, "Driver").into()),
        ("ID", if trunc { truncate_id(id) } else { id.into() }),
        ("IPv4", flag(n, "EnableIPv4")),
        ("IPv6", flag(n, "EnableIPv6")),
        ("Internal", flag(n, "Internal")),
        ("Labels", labels_text(n.get("Labels"))),
        ("Name", text(n, "Name").into()),
        ("Scope", text(n, "Scope").into()),
    ])
}

/// `GET /networks[?filters=...]` with the `-f` values.
fn list_path(base: &str, filters: &[String]) -> std::result::Result<String, Fail> {
    Ok(match filters_json(filters, &[])? {
        Some(f) => format!("{base}?{}", encode_query(&[("filters", f)])),
        None => base.to_string(),
    })
}

fn run_ls(ctx: &Ctx, p: &Parsed) -> Result {
    let list = ctx.api.get_json(&list_path("/networks", p.values("filter"))?)?;
    let mut nets = list.as_array().cloned().unwrap_or_default();
    nets.sort_by(|a, b| natural_cmp(text(a, "Name"), text(b, "Name")));
    let trunc = !p.bool("no-trunc");
    let rows = nets.iter().map(|n| network_row(n, trunc)).collect();
    let fmt = ls_format(p.value("format").unwrap_or(""), p.bool("quiet"));
    let text = format::render(
        &fmt,
        &Rows {
            headers: NETWORK_HEADERS,
            rows,
        },
    )?;
    ctx.print(&text)
}

pub const LS: Def = Def {
    name: "ls",
    args: "[OPTIONS]",
    desc: "List networks",
    aliases: "berth network ls, berth network list",
    options: concat!(
        "  -f, --filter filter   Provide filter values (e.g. \"driver=bridge\")\n      --format string   Format output using a custom template:\n",
        format_table_help!(),
        format_template_help!(),
        "      --no-trunc        Do not truncate the output\n  -q, --quiet           Only display network IDs\n"
    ),
    flags: &[
        list_flag(Some('f'), "filter"),
        value_flag(None, "format"),
        bool_flag(None, "no-trunc"),
        bool_flag(Some('q'), "quiet"),
    ],
    count: Count::None,
    run: run_ls,
};

// ---- inspect

/// `GET /networks/{name}[?verbose=true]`: the raw JSON, or the error's text.
fn fetch(ctx: &Ctx, name: &str, verbose: bool) -> std::result::Result<String, String> {
    let mut path = network_path(name, "");
    if verbose {
        path.push_str("?verbose=true");
    }
    ctx.api
        .request("GET", &path, &[], Body::Empty)
        .and_then(|r| r.bytes())
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .map_err(|e| e.to_string())
}

fn run_inspect(ctx: &Ctx, p: &Parsed) -> Result {
    let tmpl = inspect_template(p.value("format").unwrap_or(""))?;
    check_connect(ctx)?;
    let verbose = p.bool("verbose");
    inspect_objects(ctx, &p.args, tmpl, &|n| fetch(ctx, n, verbose))
}

pub const INSPECT: Def = Def {
    name: "inspect",
    args: "[OPTIONS] NETWORK [NETWORK...]",
    desc: "Display detailed information on one or more networks",
    aliases: "",
    options: concat!(
        "  -f, --format string   Format output using a custom template:\n",
        format_template_help!(),
        "  -v, --verbose         Verbose output for diagnostics\n"
    ),
    flags: &[value_flag(Some('f'), "format"), bool_flag(Some('v'), "verbose")],
    count: Count::Min(1),
    run: run_inspect,
};

// ---- rm

const INGRESS_WARNING: &str = "WARNING! Before removing the routing-mesh network, make sure all the nodes in your swarm run the same docker engine version. Otherwise, removal may not be effective and functionality of newly create ingress networks will be impaired.\nAre you sure you want to continue?";

fn run_rm(ctx: &Ctx, p: &Parsed) -> Result {
    let mut failed = false;
    for name in &p.args {
        if let Ok(raw) = fetch(ctx, name, false) {
            let ingress = serde_json::from_str::<Value>(&raw)
                .ok()
                .and_then(|v| v.get("Ingress").and_then(Value::as_bool))
                .unwrap_or(false);
            if ingress && !confirm(ctx, INGRESS_WARNING)? {
                continue;
            }
        }
        match ctx
            .api
            .request("DELETE", &network_path(name, ""), &[], Body::Empty)
        {
            Ok(_) => ctx.print(&format!("{name}\n"))?,
            Err(e @ Error::Connect(..)) => return Err(e.into()),
            Err(Error::Api { status: 404, .. }) if p.bool("force") => {}
            Err(e) => {
                eprintln!("{e}");
                failed = true;
            }
        }
    }
    if failed {
        return Err(fail("exit status 1"));
    }
    Ok(())
}

pub const RM: Def = Def {
    name: "rm",
    args: "NETWORK [NETWORK...]",
    desc: "Remove one or more networks",
    aliases: "berth network rm, berth network remove",
    options: "  -f, --force   Do not error if the network does not exist\n",
    flags: &[bool_flag(Some('f'), "force")],
    count: Count::Min(1),
    run: run_rm,
};

// ---- prune

const PRUNE_WARNING: &str = "WARNING! This will remove all custom networks not used by at least one container.\nAre you sure you want to continue?";

fn run_prune(ctx: &Ctx, p: &Parsed) -> Result {
    let path = list_path("/networks/prune", p.values("filter"))?;
    if !p.bool("force") && !confirm(ctx, PRUNE_WARNING)? {
        return Ok(());
    }
    let report = ctx.api.request("POST", &path, &[], Body::Empty)?.json()?;
    let (text, _) = deleted_block(&report, "NetworksDeleted", "Deleted Networks:");
    ctx.print(&text)
}

pub const PRUNE: Def = Def {
    name: "prune",
    args: "[OPTIONS]",
    desc: "Remove all unused networks",
    aliases: "",
    options: "      --filter filter   Provide filter values (e.g. \"until=<timestamp>\")
  -f, --force           Do not prompt for confirmation
",
    flags: &[list_flag(None, "filter"), bool_flag(Some('f'), "force")],
    count: Count::None,
    run: run_prune,
};

// ---- connect, disconnect

fn run_connect(ctx: &Ctx, p: &Parsed) -> Result {
    let body = body::connect(p, &p.args[1]).map_err(fail)?;
    post_json(ctx, &network_path(&p.args[0], "/connect"), &body)?;
    Ok(())
}

/// docker's `ValidateLink`: `name[:alias]`.
fn check_link(v: &str) -> std::result::Result<(), String> {
    if v.is_empty() {
        return Err("empty string specified for links".into());
    }
    if v.splitn(3, ':').count() > 2 {
        return Err(format!("bad format for links: {v}"));
    }
    Ok(())
}

pub const CONNECT: Def = Def {
    name: "connect",
    args: "[OPTIONS] NETWORK CONTAINER",
    desc: "Connect a container to a network",
    aliases: "",
    options: "      --alias strings           Add network-scoped alias for the container
      --driver-opt strings      driver options for the network
      --gw-priority int         Highest gw-priority provides the default
                                gateway. Accepts positive and negative values.
      --ip string               IPv4 address (e.g., \"172.30.100.104\")
      --ip6 string              IPv6 address (e.g., \"2001:db8::33\")
      --link list               Add link to another container
      --link-local-ip strings   Add a link-local address for the container
",
    flags: &[
        list_flag(None, "alias").checked(check_string_slice),
        list_flag(None, "driver-opt").checked(check_string_slice),
        value_flag(None, "gw-priority").checked(check_i64),
        value_flag(None, "ip"),
        value_flag(None, "ip6"),
        list_flag(None, "link").checked(check_link),
        list_flag(None, "link-local-ip").checked(check_string_slice),
    ],
    count: Count::Exact(2),
    run: run_connect,
};

fn run_disconnect(ctx: &Ctx, p: &Parsed) -> Result {
    let body = serde_json::json!({"Container": p.args[1], "Force": p.bool("force")});
    post_json(ctx, &network_path(&p.args[0], "/disconnect"), &body)?;
    Ok(())
}

pub const DISCONNECT: Def = Def {
    name: "disconnect",
    args: "[OPTIONS] NETWORK CONTAINER",
    desc: "Disconnect a container from a network",
    aliases: "",
    options: "  -f, --force   Force the container to disconnect from a network\n",
    flags: &[bool_flag(Some('f'), "force")],
    count: Count::Exact(2),
    run: run_disconnect,
};
