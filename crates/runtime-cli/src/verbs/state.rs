//! `state`: the container's state as runc prints it.

use berth_runtime::container;

use super::Verb;
use crate::args::Parsed;
use crate::{Failure, Globals};

pub const VERB: Verb = Verb {
    name: "state",
    summary: "output the state of a container",
    synopsis: "<container-id>",
    flags: &[],
    stop_at_arg: false,
    min_args: 1,
    max_args: Some(1),
    run,
};

fn run(p: &Parsed, g: &Globals) -> Result<u8, Failure> {
    let v = container::state(&g.root, super::id(p))?;
    println!(
        "{}",
        serde_json::to_string_pretty(&v).map_err(|e| Failure::new(e.to_string()))?
    );
    Ok(0)
}
