//! `pause` and `resume`: freeze and thaw every process of the container (its cgroup's freezer).

use berth_runtime::container;

use super::Verb;
use crate::args::Parsed;
use crate::{Failure, Globals};

pub const PAUSE: Verb = Verb {
    name: "pause",
    summary: "pause suspends all processes inside the container",
    synopsis: "<container-id>",
    flags: &[],
    stop_at_arg: false,
    min_args: 1,
    max_args: Some(1),
    run: pause,
};

pub const RESUME: Verb = Verb {
    name: "resume",
    summary: "resumes all processes that have been previously paused",
    synopsis: "<container-id>",
    flags: &[],
    stop_at_arg: false,
    min_args: 1,
    max_args: Some(1),
    run: resume,
};

fn pause(p: &Parsed, g: &Globals) -> Result<u8, Failure> {
    container::pause(&g.root, super::id(p))?;
    Ok(0)
}

fn resume(p: &Parsed, g: &Globals) -> Result<u8, Failure> {
    container::resume(&g.root, super::id(p))?;
    Ok(0)
}
