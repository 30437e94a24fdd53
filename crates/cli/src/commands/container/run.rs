//! `run` and `create`: flags -> create request (pulling a missing image as docker does),
//! then for `run` attach, wait, start, stream, and the container's exit status.

use super::config::{self, check_pull, Create, Env};
use super::opts::{CREATE_FLAGS, CREATE_OPTIONS, RUN_FLAGS, RUN_OPTIONS};
use super::session::{self, catch_signals, Local, Resize, Waiter};
use super::stream::End;
use crate::args::{Count, Parsed};
use crate::commands::transfer::registry_auth;
use crate::commands::{Ctx, Def, Fail, Result};
use crate::http::{encode_query, path_escape, Body, Error};
use crate::jsonmessage::{self, Target};
use crate::reference::Reference;
use serde_json::Value;
use std::io::{IsTerminal, Write};

/// docker's `withHelp` with an exit code.
fn with_help(message: &str, code: i32) -> Fail {
    Fail {
        message: format!("berth: {message}\n\nRun 'berth run --help' for more information"),
        code,
    }
}

fn with_help_for(cmd: &str, message: &str) -> Fail {
    Fail {
        message: format!("berth: {message}\n\nRun 'berth {cmd} --help' for more information"),
        code: 125,
    }
}

/// docker's `toStatusError`: 127 when the program was not found, 126 when it could not
/// be executed, 125 for anything else.
pub fn status_code(message: &str) -> i32 {
    if message.contains("executable file not found")
        || message.contains("no such file or directory")
        || message.contains("system cannot find the file specified")
    {
        127
    } else if message.contains("permission denied") || message.contains("is a directory") {
        126
    } else {
        125
    }
}

fn to_status_error(message: &str) -> Fail {
    with_help(message, status_code(message))
}

/// A 64-hex image ID (with or without `sha256:`): docker's `ParseAnyReference` gives no
/// name for it, so nothing is pulled.
fn is_image_id(s: &str) -> bool {
    let h = s.strip_prefix("sha256:").unwrap_or(s);
    h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit())
}

/// Pulls `r` for create/run: progress on stderr (nothing with `quiet`).
fn pull(ctx: &Ctx, r: &Reference, platform: Option<&str>, quiet: bool) -> std::result::Result<(), String> {
    let tag = r
        .digest
        .clone()
        .or_else(|| r.tag.clone())
        .unwrap_or_else(|| "latest".into());
    let mut q = vec![("fromImage", r.name()), ("tag", tag)];
    if let Some(p) = platform {
        q.push(("platform", p.to_lowercase()));
    }
    let auth = registry_auth(ctx, r).map_err(|f| f.message)?;
    let resp = ctx
        .api
        .request(
            "POST",
            &format!("/images/create?{}", encode_query(&q)),
            &[("X-Registry-Auth", auth)],
            Body::Empty,
        )
        .map_err(|e| e.to_string())?;
    let stderr = std::io::stderr();
    let target = Target {
        terminal: stderr.is_terminal(),
        width: ctx.width,
    };
    let mut aux = |_: &Value| {};
    let result = if quiet {
        jsonmessage::display_stream(resp.body, &mut std::io::sink(), target, &mut aux)
    } else {
        jsonmessage::display_stream(resp.body, &mut stderr.lock(), target, &mut aux)
    };
    result.map_err(|e| e.to_string())
}

fn post_create(ctx: &Ctx, c: &Create) -> std::result::Result<Value, Error> {
    let mut q = Vec::new();
    if let Some(p) = &c.platform {
        q.push(("platform", p.clone()));
    }
    if let Some(n) = &c.name {
        q.push(("name", n.clone()));
    }
    let path = if q.is_empty() {
        "/containers/create".to_string()
    } else {
        format!("/containers/create?{}", encode_query(&q))
    };
    let body = serde_json::to_vec(&c.body).expect("create body");
    ctx.api.request("POST", &path, &[], Body::Json(body))?.json()
}

/// docker's `createContainer`: the ID, after pulling the image when it is missing (or
/// always, with `--pull always`); warnings go to stderr. Errors are the message.
pub fn create_container(ctx: &Ctx, c: &Create) -> std::result::Result<String, String> {
    if let Some(path) = &c.cidfile {
        if std::path::Path::new(path).exists() {
            return Err(format!(
                "container ID file found, make sure the other container isn't running or delete {path}"
            ));
        }
    }
    let named = if is_image_id(&c.image) {
        None
    } else {
        Some(
            Reference::parse(&c.image)
                .map_err(|e| e.to_string())?
                .with_default_tag(),
        )
    };
    let platform = c.platform.as_deref();
    if let (Some(r), "always") = (&named, c.pull.as_str()) {
        pull(ctx, r, platform, c.quiet)?;
    }
    let created = match post_create(ctx, c) {
        Ok(v) => v,
        Err(Error::Api { status: 404, message })
            if named.is_some() && c.pull == "missing" && message.contains("No such image") =>
        {
            let r = named.as_ref().expect("named");
            if !c.quiet {
                eprintln!("Unable to find image '{}' locally", r.familiar_string());
            }
            pull(ctx, r, platform, c.quiet)?;
            post_create(ctx, c).map_err(|e| e.to_string())?
        }
        Err(e) => return Err(e.to_string()),
    };
    let id = created
        .get("Id")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    let mut warnings: Vec<String> = created
        .get("Warnings")
        .and_then(Value::as_array)
        .map(|w| w.iter().filter_map(|x| x.as_str().map(str::to_string)).collect())
        .unwrap_or_default();
    let dns = c.body.pointer("/HostConfig/Dns").and_then(Value::as_array);
    if let Some(ip) = dns
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .find(|d| d.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback()))
    {
        warnings.push(format!("Localhost DNS ({ip}) may fail in containers."));
    }
    for w in warnings {
        eprintln!("WARNING: {w}");
    }
    if let Some(path) = &c.cidfile {
        std::fs::write(path, &id)
            .map_err(|e| format!("failed to write the container ID to the file: {e}"))?;
    }
    Ok(id)
}

fn parse_create(ctx: &Ctx, p: &Parsed, cmd: &str) -> std::result::Result<Create, Fail> {
    check_pull(p.value("pull").unwrap_or("missing")).map_err(|e| with_help_for(cmd, &e))?;
    let cwd = std::env::current_dir()
        .map(|d| d.to_string_lossy().into_owned())
        .unwrap_or_else(|_| "/".into());
    let console = if ctx.out_tty { crate::tty::size() } else { (0, 0) };
    config::parse(p, &Env::real(&cwd), console).map_err(|e| with_help_for(cmd, &e))
}

fn run_create(ctx: &Ctx, p: &Parsed) -> Result {
    let c = parse_create(ctx, p, "create")?;
    let id = create_container(ctx, &c).map_err(crate::commands::fail)?;
    ctx.print(&format!("{id}\n"))
}

/// Sets a field of the create body's Config.
fn set(c: &mut Create, key: &str, v: bool) {
    if let Some(o) = c.body.as_object_mut() {
        o.insert(key.into(), Value::Bool(v));
    }
}

fn flag(c: &Create, key: &str) -> bool {
    c.body.get(key).and_then(Value::as_bool).unwrap_or(false)
}

fn run_run(ctx: &Ctx, p: &Parsed) -> Result {
    let mut c = parse_create(ctx, p, "run")?;
    let detach = p.bool("detach");
    let tty = flag(&c, "Tty");
    if !detach {
        if flag(&c, "AttachStdin") && tty && !ctx.in_tty {
            return Err(crate::commands::fail("the input device is not a TTY"));
        }
    } else {
        if !p.values("attach").is_empty() {
            return Err(crate::commands::fail(
                "conflicting options: cannot specify both --attach and --detach",
            ));
        }
        for k in ["AttachStdin", "AttachStdout", "AttachStderr", "StdinOnce"] {
            set(&mut c, k, false);
        }
    }
    let id = create_container(ctx, &c).map_err(|e| to_status_error(&e))?;
    let local = Local {
        stdin: flag(&c, "AttachStdin"),
        stdout: flag(&c, "AttachStdout"),
        stderr: flag(&c, "AttachStderr"),
        tty,
        keys: session::keys(ctx, p.value("detach-keys")),
    };
    let attach = local.stdin || local.stdout || local.stderr;
    let client = ctx.api.ready_client()?;
    let resize = (tty && ctx.out_tty).then(|| Resize {
        client: client.clone(),
        base: format!("/containers/{}", path_escape(&id)),
    });
    let sig_proxy = !p.is_set("sig-proxy") || p.bool("sig-proxy");
    catch_signals(&client, &id, sig_proxy, resize.clone());
    let hijacked = if attach {
        Some(attach_to(ctx, &id, &local).map_err(|e| crate::commands::fail(e.to_string()))?)
    } else {
        None
    };
    let auto_remove = c
        .body
        .pointer("/HostConfig/AutoRemove")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let waiter = Waiter::start(&client, &id, if auto_remove { "removed" } else { "next-exit" });
    if let Err(e) = ctx.api.request(
        "POST",
        &format!("/containers/{}/start", path_escape(&id)),
        &[],
        Body::Empty,
    ) {
        if auto_remove {
            waiter.status();
        }
        return Err(to_status_error(&e.to_string()));
    }
    let Some(h) = hijacked else {
        return ctx.print(&format!("{id}\n"));
    };
    if let Some(r) = &resize {
        r.initial();
    }
    match local.run(ctx, h)? {
        End::Detached => Ok(()),
        End::Closed => exit_with(waiter.status()),
    }
}

/// A non-zero container status as this command's exit code, without a message.
pub fn exit_with(status: i32) -> Result {
    if status == 0 {
        Ok(())
    } else {
        Err(Fail {
            message: String::new(),
            code: status,
        })
    }
}

/// `POST /containers/{id}/attach?stream=1&...`, hijacked.
pub fn attach_to(ctx: &Ctx, id: &str, l: &Local) -> std::result::Result<crate::http::Hijacked, Error> {
    let one = |b: bool| if b { "1" } else { "0" }.to_string();
    let mut q = vec![("stream", "1".to_string())];
    if l.stdin {
        q.push(("stdin", one(true)));
    }
    if l.stdout {
        q.push(("stdout", one(true)));
    }
    if l.stderr {
        q.push(("stderr", one(true)));
    }
    if let Some(k) = &l.keys {
        q.push(("detachKeys", k.clone()));
    }
    let _ = std::io::stdout().flush();
    ctx.api.hijack(
        "POST",
        &format!("/containers/{}/attach?{}", path_escape(id), encode_query(&q)),
        None,
    )
}

pub const RUN: Def = Def {
    name: "run",
    args: "[OPTIONS] IMAGE [COMMAND] [ARG...]",
    desc: "Create and run a new container from an image",
    aliases: "berth container run, berth run",
    options: RUN_OPTIONS,
    flags: RUN_FLAGS,
    count: Count::Command(1),
    run: run_run,
};

pub const CREATE: Def = Def {
    name: "create",
    args: "[OPTIONS] IMAGE [COMMAND] [ARG...]",
    desc: "Create a new container",
    aliases: "berth container create, berth create",
    options: CREATE_OPTIONS,
    flags: CREATE_FLAGS,
    count: Count::Command(1),
    run: run_create,
};
