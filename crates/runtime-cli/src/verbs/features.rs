//! `features`: what this runtime implements, as the OCI features document.

use super::Verb;
use crate::args::Parsed;
use crate::{Failure, Globals};

pub const VERB: Verb = Verb {
    name: "features",
    summary: "show the enabled features",
    synopsis: "",
    flags: &[],
    stop_at_arg: false,
    min_args: 0,
    max_args: Some(0),
    run,
};

fn run(_p: &Parsed, _g: &Globals) -> Result<u8, Failure> {
    let v = berth_runtime::features::features();
    println!(
        "{}",
        serde_json::to_string_pretty(&v).map_err(|e| Failure::new(e.to_string()))?
    );
    Ok(0)
}
