//! `kill`: sends a signal (default SIGTERM) to the container's init, or to all its processes.

use berth_runtime::container::{self, lifecycle_signal};

use super::Verb;
use crate::args::{flag, Parsed};
use crate::{Failure, Globals};

pub const VERB: Verb = Verb {
    name: "kill",
    summary: "kill sends the specified signal (default: SIGTERM) to the container's init process",
    synopsis: "[command options] <container-id> [signal]",
    flags: &[flag(
        &["all", "a"],
        "send the specified signal to all processes inside the container",
    )],
    stop_at_arg: false,
    min_args: 1,
    max_args: Some(2),
    run,
};

fn run(p: &Parsed, g: &Globals) -> Result<u8, Failure> {
    let name = p.args.get(1).map(String::as_str).unwrap_or("SIGTERM");
    let sig = lifecycle_signal(name).ok_or_else(|| Failure::new(format!("unknown signal {name:?}")))?;
    container::kill(&g.root, super::id(p), sig, p.has("all"))?;
    Ok(0)
}
