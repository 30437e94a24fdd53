//! `start`: lets a created container's process run.

use berth_runtime::container;

use super::Verb;
use crate::args::Parsed;
use crate::{Failure, Globals};

pub const VERB: Verb = Verb {
    name: "start",
    summary: "executes the user defined process in a created container",
    synopsis: "<container-id>",
    flags: &[],
    stop_at_arg: false,
    min_args: 1,
    max_args: Some(1),
    run,
};

fn run(p: &Parsed, g: &Globals) -> Result<u8, Failure> {
    for w in container::start(&g.root, super::id(p))? {
        g.log.warn(&berth_runtime::error_chain(&w));
    }
    Ok(0)
}
