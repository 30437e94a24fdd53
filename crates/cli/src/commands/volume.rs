//! `volume create|ls|inspect|rm|prune`: docker's volume commands, request bodies and output.

use super::images::{
    check_connect, confirm, deleted_block, filters_json, inspect_objects, inspect_template, print_reclaimed,
};
use super::network::body::kv_map;
use super::network::labels_text;
use super::{fail, Ctx, Def, Fail, Group, Result};
use crate::args::{bool_flag, list_flag, value_flag, Count, Parsed};
use crate::commands::container::opts::check_label;
use crate::format::{self, natural_cmp, row, Rows};
use crate::http::{encode_query, path_escape, Body, Error};
use serde_json::{json, Map, Value};

pub const VOLUME: Group = Group {
    name: "volume",
    desc: "Manage volumes",
    commands: &[
        ("create", &CREATE),
        ("inspect", &INSPECT),
        ("ls", &LS),
        ("list", &LS),
        ("prune", &PRUNE),
        ("rm", &RM),
        ("remove", &RM),
    ],
    listing: "  create      Create a volume
  inspect     Display detailed information on one or more volumes
  ls          List volumes
  prune       Remove unused local volumes
  rm          Remove one or more volumes
",
};

fn volume_path(name: &str) -> String {
    format!("/volumes/{}", path_escape(name))
}

// ---- create

/// The body of `POST /volumes/create` (docker's `CreateOptions`: empty fields left out).
pub fn create_body(p: &Parsed) -> std::result::Result<Value, String> {
    let mut name = p.value("name").unwrap_or("").to_string();
    if let Some(arg) = p.args.first() {
        if !name.is_empty() {
            return Err(
                "conflicting options: cannot specify a volume-name through both --name and as a positional arg"
                    .into(),
            );
        }
        name = arg.clone();
    }
    let mut b = Map::new();
    let driver = p.value("driver").unwrap_or("local");
    if !driver.is_empty() {
        b.insert("Driver".into(), json!(driver));
    }
    let opts = kv_map(p.values("opt"));
    if !opts.is_empty() {
        b.insert("DriverOpts".into(), json!(opts));
    }
    let labels = kv_map(p.values("label"));
    if !labels.is_empty() {
        b.insert("Labels".into(), json!(labels));
    }
    if !name.is_empty() {
        b.insert("Name".into(), json!(name));
    }
    Ok(Value::Object(b))
}

fn run_create(ctx: &Ctx, p: &Parsed) -> Result {
    let body = create_body(p).map_err(fail)?;
    let v = ctx
        .api
        .request(
            "POST",
            "/volumes/create",
            &[],
            Body::Json(serde_json::to_vec(&body).expect("json")),
        )?
        .json()?;
    ctx.print(&format!(
        "{}\n",
        v.get("Name").and_then(Value::as_str).unwrap_or("")
    ))
}

pub const CREATE: Def = Def {
    name: "create",
    args: "[OPTIONS] [VOLUME]",
    desc: "Create a volume",
    aliases: "",
    options: "  -d, --driver string   Specify volume driver name (default \"local\")
      --label list      Set metadata for a volume
  -o, --opt map         Set driver specific options (default map[])
",
    flags: &[
        value_flag(Some('d'), "driver"),
        list_flag(None, "label").checked(check_label),
        value_flag(None, "name"),
        list_flag(Some('o'), "opt"),
    ],
    count: Count::Max(1),
    run: run_create,
};

// ---- ls

const LS_DEFAULT: &str = "table {{.Driver}}\t{{.Name}}";

pub const VOLUME_HEADERS: &[(&str, &str)] = &[
    ("ID", "ID"),
    ("Name", "VOLUME NAME"),
    ("Group", "GROUP"),
    ("Driver", "DRIVER"),
    ("Scope", "SCOPE"),
    ("Availability", "AVAILABILITY"),
    ("Mountpoint", "MOUNTPOINT"),
    ("Labels", "LABELS"),
    ("Links", "LINKS"),
    ("Size", "SIZE"),
    ("Status", "STATUS"),
];

/// docker's `NewVolumeFormat`.
fn ls_format(format: &str, quiet: bool) -> String {
    match format {
        "" | "table" if quiet => "{{.Name}}".into(),
        "" | "table" => LS_DEFAULT.into(),
        "raw" if quiet => "name: {{.Name}}".into(),
        "raw" => "name: {{.Name}}\\ndriver: {{.Driver}}\\n".into(),
        f => format::resolve(f, LS_DEFAULT).into(),
    }
}

fn text<'a>(v: &'a Value, k: &str) -> &'a str {
    v.get(k).and_then(Value::as_str).unwrap_or("")
}

/// One row of docker's volume context (keys sorted, as its JSON has them).
pub fn volume_row(v: &Value) -> Value {
    let usage = v.get("UsageData").filter(|u| u.is_object());
    let na = || "N/A".to_string();
    let links = usage
        .map(|u| u.get("RefCount").and_then(Value::as_i64).unwrap_or(0).to_string())
        .unwrap_or_else(na);
    let size = usage
        .map(|u| {
            let s = u.get("Size").and_then(Value::as_i64).unwrap_or(0);
            crate::units::human_size(s as f64)
        })
        .unwrap_or_else(na);
    row(&[
        ("Availability", na()),
        ("Driver", text(v, "Driver").into()),
        ("Group", na()),
        ("Labels", labels_text(v.get("Labels"))),
        ("Links", links),
        ("Mountpoint", text(v, "Mountpoint").into()),
        ("Name", text(v, "Name").into()),
        ("Scope", text(v, "Scope").into()),
        ("Size", size),
        ("Status", na()),
    ])
}

fn run_ls(ctx: &Ctx, p: &Parsed) -> Result {
    let path = match filters_json(p.values("filter"), &[])? {
        Some(f) => format!("/volumes?{}", encode_query(&[("filters", f)])),
        None => "/volumes".to_string(),
    };
    let list = ctx.api.get_json(&path)?;
    let mut vols = list
        .get("Volumes")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    vols.sort_by(|a, b| natural_cmp(text(a, "Name"), text(b, "Name")));
    let fmt = ls_format(p.value("format").unwrap_or(""), p.bool("quiet"));
    let text = format::render(
        &fmt,
        &Rows {
            headers: VOLUME_HEADERS,
            rows: vols.iter().map(volume_row).collect(),
        },
    )?;
    ctx.print(&text)
}

pub const LS: Def = Def {
    name: "ls",
    args: "[OPTIONS]",
    desc: "List volumes",
    aliases: "berth volume ls, berth volume list",
    options: concat!(
        "  -f, --filter filter   Provide filter values (e.g. \"dangling=true\")\n      --format string   Format output using a custom template:\n",
        format_table_help!(),
        format_template_help!(),
        "  -q, --quiet           Only display volume names\n"
    ),
    flags: &[
        list_flag(Some('f'), "filter"),
        value_flag(None, "format"),
        bool_flag(Some('q'), "quiet"),
    ],
    count: Count::None,
    run: run_ls,
};

// ---- inspect

/// A volume as docker's CLI prints it: decoded into its `Volume` type and encoded again,
/// so the fields come in that type's order, `Labels` and `Options` always present.
pub fn typed_volume(v: &Value) -> Value {
    let mut m = Map::new();
    let mut keep = |k: &str, omit_empty: bool| {
        let val = v.get(k).cloned().unwrap_or(Value::Null);
        let empty = match &val {
            Value::Null => true,
            Value::String(s) => s.is_empty(),
            Value::Object(o) => o.is_empty(),
            _ => false,
        };
        if !(omit_empty && empty) {
            m.insert(k.to_string(), val);
        }
    };
    keep("ClusterVolume", true);
    keep("CreatedAt", true);
    for k in ["Driver", "Labels", "Mountpoint", "Name", "Options", "Scope"] {
        keep(k, false);
    }
    keep("Status", true);
    keep("UsageData", true);
    for k in ["Driver", "Mountpoint", "Name", "Scope"] {
        if m.get(k).is_some_and(Value::is_null) {
            m.insert(k.into(), json!(""));
        }
    }
    Value::Object(m)
}

fn fetch(ctx: &Ctx, name: &str) -> std::result::Result<String, String> {
    ctx.api
        .get_json(&volume_path(name))
        .map(|v| typed_volume(&v).to_string())
        .map_err(|e| e.to_string())
}

fn run_inspect(ctx: &Ctx, p: &Parsed) -> Result {
    let tmpl = inspect_template(p.value("format").unwrap_or(""))?;
    check_connect(ctx)?;
    inspect_objects(ctx, &p.args, tmpl, &|n| fetch(ctx, n))
}

pub const INSPECT: Def = Def {
    name: "inspect",
    args: "[OPTIONS] VOLUME [VOLUME...]",
    desc: "Display detailed information on one or more volumes",
    aliases: "",
    options: concat!(
        "  -f, --format string   Format output using a custom template:\n",
        format_template_help!(),
    ),
    flags: &[value_flag(Some('f'), "format")],
    count: Count::Min(1),
    run: run_inspect,
};

// ---- rm

fn run_rm(ctx: &Ctx, p: &Parsed) -> Result {
    let mut errors = Vec::new();
    for name in &p.args {
        let mut path = volume_path(name);
        if p.bool("force") {
            path.push_str("?force=1");
        }
        match ctx.api.request("DELETE", &path, &[], Body::Empty) {
            Ok(_) => ctx.print(&format!("{name}\n"))?,
            Err(e @ Error::Connect(..)) => return Err(e.into()),
            Err(e) => errors.push(e.to_string()),
        }
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(fail(errors.join("\n")))
    }
}

pub const RM: Def = Def {
    name: "rm",
    args: "[OPTIONS] VOLUME [VOLUME...]",
    desc: "Remove one or more volumes. You cannot remove a volume that is in use by a container.",
    aliases: "berth volume rm, berth volume remove",
    options: "  -f, --force   Force the removal of one or more volumes\n",
    flags: &[bool_flag(Some('f'), "force")],
    count: Count::Min(1),
    run: run_rm,
};

// ---- prune

const ANONYMOUS_WARNING: &str = "WARNING! This will remove anonymous local volumes not used by at least one container.\nAre you sure you want to continue?";
const ALL_WARNING: &str = "WARNING! This will remove all local volumes not used by at least one container.\nAre you sure you want to continue?";

fn run_prune(ctx: &Ctx, p: &Parsed) -> Result {
    let version = ctx.api.ready_client()?.version().to_string();
    let filters = p.values("filter");
    let mut extra = Vec::new();
    let mut warning = ALL_WARNING;
    if p.bool("all") && crate::http::version_less(&version, "1.42") {
        return Err(fail(format!(
            "\"--all\" requires API version 1.42, but the berth daemon API version is {version}"
        )));
    }
    if !crate::http::version_less(&version, "1.42") {
        warning = ANONYMOUS_WARNING;
        if p.bool("all") {
            if filters.iter().any(|f| {
                f.split_once('=')
                    .is_some_and(|(k, _)| k.trim().eq_ignore_ascii_case("all"))
            }) {
                return Err(fail(
                    "conflicting options: cannot specify both --all and --filter all=1",
                ));
            }
            extra.push(("all", "true".to_string()));
            warning = ALL_WARNING;
        }
    }
    let path = match filters_json(filters, &extra)? {
        Some(f) => format!("/volumes/prune?{}", encode_query(&[("filters", f)])),
        None => "/volumes/prune".to_string(),
    };
    if !p.bool("force") && !confirm(ctx, warning)? {
        return Ok(());
    }
    let report = ctx.api.request("POST", &path, &[], Body::Empty)?.json()?;
    prune_report(ctx, &report)
}

fn prune_report(ctx: &Ctx, report: &Value) -> std::result::Result<(), Fail> {
    let (text, any) = deleted_block(report, "VolumesDeleted", "Deleted Volumes:");
    let space = if any {
        report.get("SpaceReclaimed").and_then(Value::as_u64).unwrap_or(0)
    } else {
        0
    };
    print_reclaimed(ctx, text, space)
}

pub const PRUNE: Def = Def {
    name: "prune",
    args: "[OPTIONS]",
    desc: "Remove unused local volumes",
    aliases: "",
    options: "  -a, --all             Remove all unused volumes, not just anonymous ones
      --filter filter   Provide filter values (e.g. \"label=<label>\")
  -f, --force           Do not prompt for confirmation
",
    flags: &[
        bool_flag(Some('a'), "all"),
        list_flag(None, "filter"),
        bool_flag(Some('f'), "force"),
    ],
    count: Count::None,
    run: run_prune,
};
