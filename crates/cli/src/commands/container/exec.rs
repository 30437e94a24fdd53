//! `exec`: `POST /containers/{id}/exec`, then `POST /exec/{id}/start` (hijacked unless
//! detached), resizes through `/exec/{id}/resize`, the exit code from `GET /exec/{id}/json`.

use super::config::{os_message, parse_kv_file};
use super::lifecycle::container_path;
use super::run::exit_with;
use super::session::{self, catch_signals, Local, Resize};
use super::stream::End;
use crate::args::{bool_flag, list_flag, value_flag, Count, Parsed};
use crate::commands::{fail, Ctx, Def, Fail, Result};
use crate::http::{path_escape, Body};
use serde_json::{json, Map, Value};

/// docker's `parseExec`: the body of `POST /containers/{id}/exec`.
pub fn exec_body(
    p: &Parsed,
    lookup: &dyn Fn(&str) -> Option<String>,
    read: &dyn Fn(&str) -> std::io::Result<String>,
    detach_keys: Option<String>,
    console: Option<(u16, u16)>,
) -> std::result::Result<Value, String> {
    let mut env = Vec::new();
    for f in p.values("env-file") {
        let text = read(f).map_err(|e| format!("open {f}: {}", os_message(&e)))?;
        env.extend(parse_kv_file(f, &text, Some(lookup))?);
    }
    for e in p.values("env") {
        match (e.contains('='), lookup(e)) {
            (false, Some(v)) => env.push(format!("{e}={v}")),
            _ => env.push(e.clone()),
        }
    }
    let detach = p.bool("detach");
    let tty = p.bool("tty");
    let mut b = Map::new();
    b.insert("User".into(), json!(p.value("user").unwrap_or("")));
    b.insert("Privileged".into(), json!(p.bool("privileged")));
    b.insert("Tty".into(), json!(tty));
    if let (true, Some((h, w))) = (tty, console) {
        b.insert("ConsoleSize".into(), json!([h, w]));
    }
    b.insert("AttachStdin".into(), json!(!detach && p.bool("interactive")));
    b.insert("AttachStderr".into(), json!(!detach));
    b.insert("AttachStdout".into(), json!(!detach));
    b.insert("Detach".into(), json!(detach));
    b.insert("DetachKeys".into(), json!(detach_keys.unwrap_or_default()));
    b.insert(
        "Env".into(),
        if env.is_empty() { Value::Null } else { json!(env) },
    );
    b.insert("WorkingDir".into(), json!(p.value("workdir").unwrap_or("")));
    b.insert("Cmd".into(), json!(p.args[1..]));
    Ok(Value::Object(b))
}

fn run_exec(ctx: &Ctx, p: &Parsed) -> Result {
    let name = &p.args[0];
    let keys = session::keys(ctx, p.value("detach-keys"));
    let console = (p.bool("tty")).then(crate::tty::size);
    let body = exec_body(
        p,
        &|k| std::env::var(k).ok(),
        &|f| std::fs::read_to_string(f),
        keys.clone(),
        console,
    )
    .map_err(fail)?;
    let c = super::start::inspect(ctx, name)?;
    let cid = c.get("Id").and_then(Value::as_str).unwrap_or(name).to_string();
    let flag = |k: &str| body.get(k).and_then(Value::as_bool).unwrap_or(false);
    let detach = flag("Detach");
    let tty = flag("Tty");
    if !detach && flag("AttachStdin") && tty && !ctx.in_tty {
        return Err(fail("the input device is not a TTY"));
    }
    let created = ctx
        .api
        .request(
            "POST",
            &container_path(name, "/exec", &[]),
            &[],
            Body::Json(body.to_string().into_bytes()),
        )?
        .json()?;
    let id = created
        .get("Id")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    if id.is_empty() {
        return Err(fail("exec ID empty"));
    }
    let mut start = Map::new();
    start.insert("Detach".into(), json!(detach));
    start.insert("Tty".into(), json!(tty));
    if let (true, Some((h, w))) = (tty, console) {
        start.insert("ConsoleSize".into(), json!([h, w]));
    }
    let start_path = format!("/exec/{}/start", path_escape(&id));
    let start_body = Value::Object(start).to_string().into_bytes();
    if detach {
        ctx.api
            .request("POST", &start_path, &[], Body::Json(start_body))?;
        return Ok(());
    }
    let local = Local {
        stdin: flag("AttachStdin"),
        stdout: true,
        stderr: true,
        tty,
        keys,
    };
    let client = ctx.api.ready_client()?;
    let resize = (tty && ctx.in_tty).then(|| Resize {
        client: client.clone(),
        base: format!("/exec/{}", path_escape(&id)),
    });
    catch_signals(&client, &cid, false, resize.clone());
    let h = ctx.api.hijack("POST", &start_path, Some(start_body))?;
    if let Some(r) = &resize {
        r.initial();
    }
    if local.run(ctx, h)? == End::Detached {
        return Ok(());
    }
    match ctx.api.get_json(&format!("/exec/{}/json", path_escape(&id))) {
        Ok(v) => exit_with(v.get("ExitCode").and_then(Value::as_i64).unwrap_or(0) as i32),
        Err(e @ crate::http::Error::Connect(..)) => Err(Fail {
            message: e.to_string(),
            code: 255,
        }),
        Err(e) => Err(e.into()),
    }
}

pub const EXEC: Def = Def {
    name: "exec",
    args: "[OPTIONS] CONTAINER COMMAND [ARG...]",
    desc: "Execute a command in a running container",
    aliases: "berth container exec, berth exec",
    options: "  -d, --detach               Detached mode: run command in the background
      --detach-keys string   Override the key sequence for detaching a
                             container
  -e, --env list             Set environment variables
      --env-file list        Read in a file of environment variables
  -i, --interactive          Keep STDIN open even if not attached
      --privileged           Give extended privileges to the command
  -t, --tty                  Allocate a pseudo-TTY
  -u, --user string          Username or UID (format:
                             \"<name|uid>[:<group|gid>]\")
  -w, --workdir string       Working directory inside the container
",
    flags: &[
        bool_flag(Some('d'), "detach"),
        value_flag(None, "detach-keys"),
        list_flag(Some('e'), "env"),
        list_flag(None, "env-file"),
        bool_flag(Some('i'), "interactive"),
        bool_flag(None, "privileged"),
        bool_flag(Some('t'), "tty"),
        value_flag(Some('u'), "user"),
        value_flag(Some('w'), "workdir"),
    ],
    count: Count::Command(2),
    run: run_exec,
};
