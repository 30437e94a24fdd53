//! `run`: create and start a container; in the foreground, wait for it (forwarding signals, holding
//! its terminal if it has one) and exit with its status (128 + N when killed by signal N), then
//! delete it unless `--keep`. With `--detach`, return once it runs.

use std::path::PathBuf;

use berth_runtime::container;

use super::Verb;
use crate::args::{flag, Flag, Parsed};
use crate::console::{self, ConsoleListener};
use crate::{Failure, Globals};

const FLAGS: &[Flag] = &[
    super::create::FLAGS[0],
    super::create::FLAGS[1],
    super::create::FLAGS[2],
    super::create::FLAGS[3],
    super::create::FLAGS[4],
    super::create::FLAGS[5],
    super::create::FLAGS[6],
    flag(&["detach", "d"], "detach from the container's process"),
    flag(&["keep"], "do not delete the container after it exits"),
    flag(
        &["no-subreaper"],
        "disable the use of the subreaper used to reap reparented processes",
    ),
];

pub const VERB: Verb = Verb {
    name: "run",
    summary: "create and run a container",
    synopsis: "[command options] <container-id>",
    flags: FLAGS,
    stop_at_arg: false,
    min_args: 1,
    max_args: Some(1),
    run,
};

fn run(p: &Parsed, g: &Globals) -> Result<u8, Failure> {
    let detach = p.has("detach");
    let mut o = super::create::options(p, g, detach)?;
    if detach {
        container::create(&o)?;
        start(g, &o.id)?;
        return Ok(0);
    }
    let spec = container::load_spec(&PathBuf::from(&o.bundle))?;
    let terminal = spec.process.as_ref().is_some_and(|p| p.terminal);
    let listener = if terminal && o.console_socket.is_none() {
        let l =
            ConsoleListener::new(&g.root, &o.id).map_err(|e| Failure::new(format!("console socket: {e}")))?;
        o.console_socket = Some(l.path());
        Some(l)
    } else {
        None
    };
    if !p.has("no-subreaper") {
        berth_sys::process::set_child_subreaper().map_err(|e| Failure::new(format!("set subreaper: {e}")))?;
    }
    let signals = console::block_signals().map_err(|e| Failure::new(format!("block signals: {e}")))?;
    let t0 = std::time::Instant::now();
    let pid = container::create(&o)?;
    g.log.debug(&format!("run: created in {:?}", t0.elapsed()));
    let master = match &listener {
        Some(l) => match l.receive() {
            Ok(m) => Some(m),
            Err(e) => {
                let _ = container::delete(&g.root, &o.id, true);
                return Err(Failure::new(format!("receive the console: {e}")));
            }
        },
        None => None,
    };
    if let Err(f) = start(g, &o.id) {
        let _ = container::delete(&g.root, &o.id, true);
        return Err(f);
    }
    g.log.debug(&format!("run: started at {:?}", t0.elapsed()));
    let code = console::wait_foreground(pid, &signals, master)
        .map_err(|e| Failure::new(format!("wait for the container: {e}")))?;
    g.log.debug(&format!("run: exited at {:?}", t0.elapsed()));
    if !p.has("keep") {
        container::delete(&g.root, &o.id, true)?;
    }
    g.log.debug(&format!("run: deleted at {:?}", t0.elapsed()));
    Ok(code.clamp(0, 255) as u8)
}

fn start(g: &Globals, id: &str) -> Result<(), Failure> {
    for w in container::start(&g.root, id)? {
        g.log.warn(&berth_runtime::error_chain(&w));
    }
    Ok(())
}
