//! `list`: the containers under the state root, as a table, JSON, or ids only.

use berth_runtime::container;

use super::Verb;
use crate::args::{flag, opt, Parsed};
use crate::{Failure, Globals};

pub const VERB: Verb = Verb {
    name: "list",
    summary: "lists containers started by berth-runtime with the given root",
    synopsis: "[command options]",
    flags: &[
        opt(
            &["format", "f"],
            "select one of: table or json (default: \"table\")",
        ),
        flag(&["quiet", "q"], "display only container IDs"),
    ],
    stop_at_arg: false,
    min_args: 0,
    max_args: Some(0),
    run,
};

fn run(p: &Parsed, g: &Globals) -> Result<u8, Failure> {
    let all = container::list(&g.root)?;
    if p.has("quiet") {
        for c in &all {
            println!("{}", c["id"].as_str().unwrap_or(""));
        }
        return Ok(0);
    }
    match p.value("format").unwrap_or("table") {
        "table" => print!("{}", table(&all)),
        "json" => {
            // runc prints `null` for no containers (a nil Go slice).
            let out = if all.is_empty() {
                "null".to_string()
            } else {
                serde_json::to_string(&all).unwrap_or_default()
            };
            println!("{out}");
        }
        f => return Err(Failure::new(format!("invalid format option {f:?}"))),
    }
    Ok(0)
}

/// Go's tabwriter with runc's settings: minimum width 12, padding 3.
fn table(all: &[serde_json::Value]) -> String {
    let mut rows = vec![["ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER"]
        .map(String::from)
        .to_vec()];
    for c in all {
        let s = |k: &str| c[k].as_str().unwrap_or("").to_string();
        rows.push(vec![
            s("id"),
            c["pid"].to_string(),
            s("status"),
            s("bundle"),
            s("created"),
            s("owner"),
        ]);
    }
    let cols = rows[0].len();
    let widths: Vec<usize> = (0..cols)
        .map(|i| rows.iter().map(|r| r[i].len() + 3).max().unwrap_or(0).max(12))
        .collect();
    let mut out = String::new();
    for r in &rows {
        for (i, cell) in r.iter().enumerate() {
            if i + 1 == cols {
                out.push_str(cell);
            } else {
                out.push_str(&format!("{cell:<w$}", w = widths[i]));
            }
        }
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn empty_table_matches_runc() {
        assert_eq!(
            super::table(&[]),
            "ID          PID         STATUS      BUNDLE      CREATED     OWNER\n"
        );
    }
}
