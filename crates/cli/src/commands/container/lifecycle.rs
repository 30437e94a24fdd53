//! `stop`, `kill`, `restart`, `rm`, `wait`, `pause`, `unpause`, `rename`: one request per
//! container; the names that worked are printed in order, the errors after them.

use crate::args::{bool_flag, value_flag, Count, Parsed};
use crate::commands::{fail, Ctx, Def, Result};
use crate::goparse::check_i64;
use crate::http::{encode_query, path_escape, Body, Error};
use serde_json::Value;

/// `/containers/{name}{suffix}` with a query (none when empty).
pub fn container_path(name: &str, suffix: &str, q: &[(&str, String)]) -> String {
    let base = format!("/containers/{}{suffix}", path_escape(name));
    if q.is_empty() {
        base
    } else {
        format!("{base}?{}", encode_query(q))
    }
}

/// Runs `op` for every container: prints the name when it worked, collects the errors
/// (the errors `skip` accepts go to stderr at once and do not fail the command).
fn each(
    ctx: &Ctx,
    names: &[String],
    op: &dyn Fn(&str) -> std::result::Result<(), Error>,
    skip: &dyn Fn(&Error) -> bool,
) -> Result {
    let mut errors = Vec::new();
    for name in names {
        match op(name) {
            Ok(()) => ctx.print(&format!("{name}\n"))?,
            Err(e @ Error::Connect(..)) => return Err(e.into()),
            Err(e) if skip(&e) => eprintln!("{e}"),
            Err(e) => errors.push(e.to_string()),
        }
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(fail(errors.join("\n")))
    }
}

fn post(ctx: &Ctx, path: &str) -> std::result::Result<(), Error> {
    ctx.api.request("POST", path, &[], Body::Empty).map(drop)
}

fn never(_: &Error) -> bool {
    false
}

/// `-t/--timeout` and `-s/--signal` as stop's and restart's query.
fn stop_query(p: &Parsed) -> Vec<(&'static str, String)> {
    let mut q = Vec::new();
    if let Some(s) = p.value("signal").filter(|s| !s.is_empty()) {
        q.push(("signal", s.to_string()));
    }
    if let Some(t) = p.value("timeout").or(p.value("time")) {
        let t = crate::goparse::parse_i64(t).unwrap_or(0);
        q.push(("t", t.to_string()));
    }
    q
}

fn run_stop(ctx: &Ctx, p: &Parsed) -> Result {
    let q = stop_query(p);
    each(
        ctx,
        &p.args,
        &|n| post(ctx, &container_path(n, "/stop", &q)),
        &never,
    )
}

fn run_restart(ctx: &Ctx, p: &Parsed) -> Result {
    let q = stop_query(p);
    each(
        ctx,
        &p.args,
        &|n| post(ctx, &container_path(n, "/restart", &q)),
        &never,
    )
}

fn run_kill(ctx: &Ctx, p: &Parsed) -> Result {
    let mut q = Vec::new();
    if let Some(s) = p.value("signal").filter(|s| !s.is_empty()) {
        q.push(("signal", s.to_string()));
    }
    each(
        ctx,
        &p.args,
        &|n| post(ctx, &container_path(n, "/kill", &q)),
        &never,
    )
}

fn run_rm(ctx: &Ctx, p: &Parsed) -> Result {
    let mut q = Vec::new();
    if p.bool("volumes") {
        q.push(("v", "1".to_string()));
    }
    if p.bool("link") {
        q.push(("link", "1".to_string()));
    }
    if p.bool("force") {
        q.push(("force", "1".to_string()));
    }
    let force = p.bool("force");
    each(
        ctx,
        &p.args,
        &|n| {
            let n = n.trim_matches('/');
            if n.is_empty() {
                return Err(Error::Protocol("container name cannot be empty".into()));
            }
            ctx.api
                .request("DELETE", &container_path(n, "", &q), &[], Body::Empty)
                .map(drop)
        },
        &|e| force && matches!(e, Error::Api { status: 404, .. }),
    )
    .map_err(|f| {
        fail(f.message.replace(
            "error reading the daemon's answer: container name cannot be empty",
            "container name cannot be empty",
        ))
    })
}

fn run_pause(ctx: &Ctx, p: &Parsed) -> Result {
    each(
        ctx,
        &p.args,
        &|n| post(ctx, &container_path(n, "/pause", &[])),
        &never,
    )
}

fn run_unpause(ctx: &Ctx, p: &Parsed) -> Result {
    each(
        ctx,
        &p.args,
        &|n| post(ctx, &container_path(n, "/unpause", &[])),
        &never,
    )
}

fn run_wait(ctx: &Ctx, p: &Parsed) -> Result {
    let mut errors = Vec::new();
    for name in &p.args {
        let r = ctx
            .api
            .request("POST", &container_path(name, "/wait", &[]), &[], Body::Empty)
            .and_then(|r| r.json());
        match r {
            Ok(v) => {
                let code = v.get("StatusCode").and_then(Value::as_i64).unwrap_or(0);
                ctx.print(&format!("{code}\n"))?;
            }
            Err(e @ Error::Connect(..)) => return Err(e.into()),
            Err(e) => errors.push(e.to_string()),
        }
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(fail(errors.join("\n")))
    }
}

fn run_rename(ctx: &Ctx, p: &Parsed) -> Result {
    let (old, new) = (p.args[0].trim(), p.args[1].trim());
    if old.is_empty() || new.is_empty() {
        return Err(fail("Error: Neither old nor new names may be empty"));
    }
    let q = [("name", new.to_string())];
    match post(ctx, &container_path(old, "/rename", &q)) {
        Ok(()) => Ok(()),
        Err(e @ Error::Connect(..)) => Err(e.into()),
        Err(e) => {
            eprintln!("{e}");
            Err(fail(format!("Error: failed to rename container named {old}")))
        }
    }
}

const STOP_OPTIONS: &str = "  -s, --signal string   Signal to send to the container
  -t, --timeout int     Seconds to wait before killing the container
";

pub const STOP: Def = Def {
    name: "stop",
    args: "[OPTIONS] CONTAINER [CONTAINER...]",
    desc: "Stop one or more running containers",
    aliases: "berth container stop, berth stop",
    options: STOP_OPTIONS,
    flags: &[
        value_flag(Some('s'), "signal"),
        value_flag(Some('t'), "timeout").checked(check_i64),
        value_flag(None, "time").checked(check_i64),
    ],
    count: Count::Min(1),
    run: run_stop,
};

pub const RESTART: Def = Def {
    name: "restart",
    args: "[OPTIONS] CONTAINER [CONTAINER...]",
    desc: "Restart one or more containers",
    aliases: "berth container restart, berth restart",
    options: STOP_OPTIONS,
    flags: STOP.flags,
    count: Count::Min(1),
    run: run_restart,
};

pub const KILL: Def = Def {
    name: "kill",
    args: "[OPTIONS] CONTAINER [CONTAINER...]",
    desc: "Kill one or more running containers",
    aliases: "berth container kill, berth kill",
    options: "  -s, --signal string   Signal to send to the container\n",
    flags: &[value_flag(Some('s'), "signal")],
    count: Count::Min(1),
    run: run_kill,
};

pub const RM: Def = Def {
    name: "rm",
    args: "[OPTIONS] CONTAINER [CONTAINER...]",
    desc: "Remove one or more containers",
    aliases: "berth container rm, berth container remove, berth rm",
    options: "  -f, --force     Force the removal of a running container (uses SIGKILL)
  -l, --link      Remove the specified link
  -v, --volumes   Remove anonymous volumes associated with the container
",
    flags: &[
        bool_flag(Some('f'), "force"),
        bool_flag(Some('l'), "link"),
        bool_flag(Some('v'), "volumes"),
    ],
    count: Count::Min(1),
    run: run_rm,
};

pub const PAUSE: Def = Def {
    name: "pause",
    args: "CONTAINER [CONTAINER...]",
    desc: "Pause all processes within one or more containers",
    aliases: "berth container pause, berth pause",
    options: "",
    flags: &[],
    count: Count::Min(1),
    run: run_pause,
};

pub const UNPAUSE: Def = Def {
    name: "unpause",
    args: "CONTAINER [CONTAINER...]",
    desc: "Unpause all processes within one or more containers",
    aliases: "berth container unpause, berth unpause",
    options: "",
    flags: &[],
    count: Count::Min(1),
    run: run_unpause,
};

pub const WAIT: Def = Def {
    name: "wait",
    args: "CONTAINER [CONTAINER...]",
    desc: "Block until one or more containers stop, then print their exit codes",
    aliases: "berth container wait, berth wait",
    options: "",
    flags: &[],
    count: Count::Min(1),
    run: run_wait,
};

pub const RENAME: Def = Def {
    name: "rename",
    args: "CONTAINER NEW_NAME",
    desc: "Rename a container",
    aliases: "berth container rename, berth rename",
    options: "",
    flags: &[],
    count: Count::Exact(2),
    run: run_rename,
};
