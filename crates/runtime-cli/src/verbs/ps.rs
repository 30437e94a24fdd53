//! `ps`: the container's processes: `--format json` prints their pids, the table runs the host's `ps`
//! and keeps the container's lines.

use berth_runtime::container;

use super::Verb;
use crate::args::{opt, Parsed};
use crate::{Failure, Globals};

pub const VERB: Verb = Verb {
    name: "ps",
    summary: "ps displays the processes running inside a container",
    synopsis: "[command options] <container-id> [ps options]",
    flags: &[opt(
        &["format", "f"],
        "select one of: table or json (default: \"table\")",
    )],
    stop_at_arg: true,
    min_args: 1,
    max_args: None,
    run,
};

fn run(p: &Parsed, g: &Globals) -> Result<u8, Failure> {
    let pids = container::ps(&g.root, super::id(p))?;
    match p.value("format").unwrap_or("table") {
        "json" => {
            println!("{}", serde_json::to_string(&pids).unwrap_or_default());
            Ok(0)
        }
        "table" => {
            let ps_args: Vec<String> = if p.args.len() > 1 {
                p.args[1..].to_vec()
            } else {
                vec!["-ef".into()]
            };
            let out = std::process::Command::new("ps")
                .args(&ps_args)
                .output()
                .map_err(|e| Failure::new(format!("run ps: {e}")))?;
            if !out.status.success() {
                return Err(Failure::new(format!(
                    "ps: {}",
                    String::from_utf8_lossy(&out.stderr).trim()
                )));
            }
            let text = String::from_utf8_lossy(&out.stdout);
            let mut lines = text.lines();
            let header = lines.next().unwrap_or("");
            let pid_col = header
                .split_whitespace()
                .position(|c| c == "PID")
                .ok_or_else(|| Failure::new("couldn't find PID field in ps output"))?;
            println!("{header}");
            for l in lines {
                let pid = l
                    .split_whitespace()
                    .nth(pid_col)
                    .and_then(|s| s.parse::<i32>().ok());
                if pid.is_some_and(|pid| pids.contains(&pid)) {
                    println!("{l}");
                }
            }
            Ok(0)
        }
        f => Err(Failure::new(format!("invalid format option {f:?}"))),
    }
}
