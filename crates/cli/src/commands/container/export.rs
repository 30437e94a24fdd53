//! `export` (the container's filesystem as a tar) and `container prune`.

use super::lifecycle::container_path;
use crate::args::{bool_flag, list_flag, value_flag, Count, Parsed};
use crate::commands::images::{confirm, deleted_block, filters_json, print_reclaimed};
use crate::commands::transfer::{check_output_path, write_output};
use crate::commands::{Ctx, Def, Result};
use crate::http::{encode_query, Body};
use serde_json::Value;

fn run_export(ctx: &Ctx, p: &Parsed) -> Result {
    let output = p.value("output").unwrap_or("");
    check_output_path(ctx, output, "failed to export container")?;
    let resp = ctx.api.request(
        "GET",
        &container_path(&p.args[0], "/export", &[]),
        &[],
        Body::Empty,
    )?;
    write_output(ctx, output, resp.body)
}

pub const EXPORT: Def = Def {
    name: "export",
    args: "[OPTIONS] CONTAINER",
    desc: "Export a container's filesystem as a tar archive",
    aliases: "berth container export, berth export",
    options: "  -o, --output string   Write to a file, instead of STDOUT\n",
    flags: &[value_flag(Some('o'), "output")],
    count: Count::Exact(1),
    run: run_export,
};

const PRUNE_WARNING: &str =
    "WARNING! This will remove all stopped containers.\nAre you sure you want to continue?";

fn run_prune(ctx: &Ctx, p: &Parsed) -> Result {
    let filters = filters_json(p.values("filter"), &[])?;
    if !p.bool("force") && !confirm(ctx, PRUNE_WARNING)? {
        return Ok(());
    }
    let path = match filters {
        Some(f) => format!("/containers/prune?{}", encode_query(&[("filters", f)])),
        None => "/containers/prune".to_string(),
    };
    let report = ctx.api.request("POST", &path, &[], Body::Empty)?.json()?;
    let (text, any) = deleted_block(&report, "ContainersDeleted", "Deleted Containers:");
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
    desc: "Remove all stopped containers",
    aliases: "",
    options: "      --filter filter   Provide filter values (e.g. \"until=<timestamp>\")
  -f, --force           Do not prompt for confirmation
",
    flags: &[list_flag(None, "filter"), bool_flag(Some('f'), "force")],
    count: Count::None,
    run: run_prune,
};
