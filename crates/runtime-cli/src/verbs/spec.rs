//! `spec`: writes runc's default config.json into the bundle (refusing to overwrite one).

use std::path::PathBuf;

use super::Verb;
use crate::args::{flag, opt, Parsed};
use crate::{Failure, Globals};

pub const VERB: Verb = Verb {
    name: "spec",
    summary: "create a new specification file",
    synopsis: "[command options]",
    flags: &[
        opt(&["bundle", "b"], "path to the root of the bundle directory"),
        flag(&["rootless"], "generate a configuration for a rootless container"),
    ],
    stop_at_arg: false,
    min_args: 0,
    max_args: Some(0),
    run,
};

fn run(p: &Parsed, _g: &Globals) -> Result<u8, Failure> {
    let bundle = PathBuf::from(p.value("bundle").unwrap_or("."));
    let path = bundle.join("config.json");
    if path.exists() {
        return Err(Failure::new("File config.json exists. Remove it first"));
    }
    let v2 = berth_cgroups::Hierarchy::detect()
        .map(|h| h.is_v2())
        .unwrap_or(false);
    let mut spec = berth_runtime::defaults::default_spec(v2);
    if p.has("rootless") {
        berth_runtime::defaults::make_rootless(
            &mut spec,
            nix::unistd::geteuid().as_raw(),
            nix::unistd::getegid().as_raw(),
        );
    }
    let mut text = serde_json::to_string_pretty(&spec).map_err(|e| Failure::new(e.to_string()))?;
    text.push('\n');
    std::fs::write(&path, text).map_err(|e| Failure::new(format!("write {}: {e}", path.display())))?;
    Ok(0)
}
