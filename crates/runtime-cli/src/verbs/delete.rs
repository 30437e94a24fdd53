//! `delete`: removes a stopped (or created) container; `--force` kills a running one first.

use berth_runtime::container;

use super::Verb;
use crate::args::{flag, Parsed};
use crate::{Failure, Globals};

pub const VERB: Verb = Verb {
    name: "delete",
    summary: "delete any resources held by the container often used with detached container",
    synopsis: "[command options] <container-id>",
    flags: &[flag(
        &["force", "f"],
        "forcibly deletes the container if it is still running (uses SIGKILL)",
    )],
    stop_at_arg: false,
    min_args: 1,
    max_args: Some(1),
    run,
};

fn run(p: &Parsed, g: &Globals) -> Result<u8, Failure> {
    container::delete(&g.root, super::id(p), p.has("force"))?;
    Ok(0)
}
