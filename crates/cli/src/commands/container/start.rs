//! `start` (with `-a`/`-i`: attached as `run` is) and `attach`.

use super::lifecycle::container_path;
use super::run::{attach_to, exit_with};
use super::session::{self, catch_signals, Local, Resize, Waiter};
use super::stream::End;
use crate::args::{bool_flag, value_flag, Count, Parsed};
use crate::commands::{fail, Ctx, Def, Fail, Result};
use crate::http::{Body, Error};
use serde_json::Value;

/// `GET /containers/{name}/json`.
pub fn inspect(ctx: &Ctx, name: &str) -> std::result::Result<Value, Error> {
    ctx.api.get_json(&container_path(name, "/json", &[]))
}

fn b(v: &Value, ptr: &str) -> bool {
    v.pointer(ptr).and_then(Value::as_bool).unwrap_or(false)
}

fn run_start(ctx: &Ctx, p: &Parsed) -> Result {
    if !(p.bool("attach") || p.bool("interactive")) {
        if p.value("checkpoint").is_some_and(|c| !c.is_empty()) {
            return Err(fail("berth: checkpoints are not supported"));
        }
        let mut failed = Vec::new();
        for name in &p.args {
            match ctx
                .api
                .request("POST", &container_path(name, "/start", &[]), &[], Body::Empty)
            {
                Ok(_) => ctx.print(&format!("{name}\n"))?,
                Err(e @ Error::Connect(..)) => return Err(e.into()),
                Err(e) => {
                    eprintln!("{e}");
                    failed.push(name.clone());
                }
            }
        }
        if failed.is_empty() {
            return Ok(());
        }
        return Err(fail(format!(
            "Error: failed to start containers: {}",
            failed.join(", ")
        )));
    }
    if p.args.len() > 1 {
        return Err(fail("you cannot start and attach multiple containers at once"));
    }
    let c = inspect(ctx, &p.args[0])?;
    let id = c.get("Id").and_then(Value::as_str).unwrap_or("").to_string();
    let tty = b(&c, "/Config/Tty");
    let local = Local {
        stdin: p.bool("interactive") && b(&c, "/Config/OpenStdin"),
        stdout: true,
        stderr: true,
        tty,
        keys: session::keys(ctx, p.value("detach-keys")),
    };
    let client = ctx.api.ready_client()?;
    let resize = (tty && ctx.out_tty).then(|| Resize {
        client: client.clone(),
        base: container_path(&id, "", &[]),
    });
    catch_signals(&client, &id, !tty, resize.clone());
    let h = attach_to(ctx, &id, &local)?;
    let condition = if b(&c, "/HostConfig/AutoRemove") {
        "removed"
    } else {
        "next-exit"
    };
    let waiter = Waiter::start(&client, &id, condition);
    ctx.api
        .request("POST", &container_path(&id, "/start", &[]), &[], Body::Empty)?;
    if let Some(r) = &resize {
        r.initial();
    }
    match local.run(ctx, h)? {
        End::Detached => Ok(()),
        End::Closed => exit_with(waiter.status()),
    }
}

/// docker's `inspectContainerAndCheckState`.
fn check_state(ctx: &Ctx, name: &str) -> std::result::Result<Value, Fail> {
    let c = inspect(ctx, name)?;
    if !b(&c, "/State/Running") {
        return Err(fail("You cannot attach to a stopped container, start it first"));
    }
    if b(&c, "/State/Paused") {
        return Err(fail("You cannot attach to a paused container, unpause it first"));
    }
    if b(&c, "/State/Restarting") {
        return Err(fail(
            "You cannot attach to a restarting container, wait until it is running",
        ));
    }
    Ok(c)
}

fn run_attach(ctx: &Ctx, p: &Parsed) -> Result {
    let name = &p.args[0];
    let client = ctx.api.ready_client()?;
    let waiter = Waiter::start(&client, name, "");
    let c = check_state(ctx, name)?;
    let tty = b(&c, "/Config/Tty");
    if !p.bool("no-stdin") && tty && !ctx.in_tty {
        return Err(fail("the input device is not a TTY"));
    }
    let local = Local {
        stdin: !p.bool("no-stdin") && b(&c, "/Config/OpenStdin"),
        stdout: true,
        stderr: true,
        tty,
        keys: session::keys(ctx, p.value("detach-keys")),
    };
    let resize = (tty && ctx.out_tty).then(|| Resize {
        client: client.clone(),
        base: container_path(name, "", &[]),
    });
    let sig_proxy = !p.is_set("sig-proxy") || p.bool("sig-proxy");
    catch_signals(&client, name, sig_proxy && !tty, resize.clone());
    let h = attach_to(ctx, name, &local)?;
    check_state(ctx, name)?;
    if let Some(r) = &resize {
        // docker's resizeTTY: one column and row more first, so that a shell redraws
        // its prompt on every attach
        let (h, w) = crate::tty::size();
        r.send_size(h.saturating_add(1), w.saturating_add(1));
        r.initial();
    }
    match local.run(ctx, h)? {
        End::Detached => Ok(()),
        End::Closed => exit_with(waiter.status()),
    }
}

pub const START: Def = Def {
    name: "start",
    args: "[OPTIONS] CONTAINER [CONTAINER...]",
    desc: "Start one or more stopped containers",
    aliases: "berth container start, berth start",
    options: "  -a, --attach               Attach STDOUT/STDERR and forward signals
      --detach-keys string   Override the key sequence for detaching a
                             container
  -i, --interactive          Attach container's STDIN
",
    flags: &[
        bool_flag(Some('a'), "attach"),
        value_flag(None, "checkpoint"),
        value_flag(None, "checkpoint-dir"),
        value_flag(None, "detach-keys"),
        bool_flag(Some('i'), "interactive"),
    ],
    count: Count::Min(1),
    run: run_start,
};

pub const ATTACH: Def = Def {
    name: "attach",
    args: "[OPTIONS] CONTAINER",
    desc: "Attach local standard input, output, and error streams to a running container",
    aliases: "berth container attach, berth attach",
    options: "      --detach-keys string   Override the key sequence for detaching a
                             container
      --no-stdin             Do not attach STDIN
      --sig-proxy            Proxy all received signals to the process
                             (default true)
",
    flags: &[
        value_flag(None, "detach-keys"),
        bool_flag(None, "no-stdin"),
        bool_flag(None, "sig-proxy"),
    ],
    count: Count::Exact(1),
    run: run_attach,
};
