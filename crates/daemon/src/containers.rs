//! The container and exec routes of the Engine API: requests turned into calls on the engine's
//! container service; attach and exec start hijack the connection (`101 UPGRADED`, then raw bytes
//! or docker's multiplexed frames).

use std::sync::Arc;

use berth_engine::containers::attach::{parse_detach_keys, AttachOptions};
use berth_engine::containers::logs;
use berth_engine::containers::{ContainerService, CreateRequest, ListOptions};
use berth_engine::images::{Error, ImageFilters};
use bytes::Bytes;
use hyper::body::Incoming;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use serde_json::{json, Value};
use tokio::sync::mpsc;

use crate::api::State;
use crate::http::{self, error, json, Query, Resp};

fn fail(e: &Error) -> Resp {
    http::engine_error(e)
}

fn done(r: Result<(), Error>, code: u16) -> Resp {
    match r {
        Ok(()) => http::status(code),
        Err(e) => fail(&e),
    }
}

fn num<T: std::str::FromStr>(q: &Query, k: &str) -> Result<Option<T>, Resp> {
    match q.get(k).filter(|v| !v.is_empty()) {
        None => Ok(None),
        Some(v) => v
            .parse()
            .map(Some)
            .map_err(|_| error(400, &format!("invalid value for {k}: {v:?}"))),
    }
}

/// Routes `/containers/...` and `/exec/...`; `None` when the path is not one of them.
pub async fn route(
    state: &Arc<State>,
    req: Request<Incoming>,
    m: &str,
    path: &str,
    q: &Query,
) -> Option<Resp> {
    let svc = state.containers.clone();
    if let Some(rest) = path.strip_prefix("/exec/") {
        let (id, action) = rest.split_once('/').unwrap_or((rest, ""));
        return Some(match (m, action) {
            ("POST", "start") => exec_start(svc, req, id).await,
            ("POST", "resize") => {
                resize(q, |h, w| {
                    let svc = svc.clone();
                    let id = id.to_string();
                    async move { svc.exec_resize(&id, h, w).await }
                })
                .await
            }
            ("GET", "json") => match svc.exec_inspect(id) {
                Ok(v) => json(200, &v),
                Err(e) => fail(&e),
            },
            _ => error(404, "page not found"),
        });
    }
    match (m, path) {
        ("POST", "/containers/create") => return Some(create(svc, req, q).await),
        ("GET", "/containers/json") => return Some(list(&svc, q)),
        ("POST", "/containers/prune") => {
            return Some(
                match ImageFilters::parse(q.str("filters"), &["until", "label", "label!"]) {
                    Ok(f) => match svc.prune(&f).await {
                        Ok(v) => json(200, &v),
                        Err(e) => fail(&e),
                    },
                    Err(e) => fail(&e),
                },
            )
        }
        _ => {}
    }
    let rest = path.strip_prefix("/containers/")?;
    let (id, action) = rest.split_once('/').unwrap_or((rest, ""));
    let id = id.to_string();
    Some(match (m, action) {
        ("GET", "json") => match svc.inspect(&id, q.bool("size")) {
            Ok(v) => json(200, &v),
            Err(e) => fail(&e),
        },
        ("POST", "start") => match svc.start(&id).await {
            Ok(true) => http::status(204),
            Ok(false) => http::status(304),
            Err(e) => fail(&e),
        },
        ("POST", "stop") => {
            let t = match num::<i64>(q, "t") {
                Ok(t) => t,
                Err(r) => return Some(r),
            };
            match svc.stop(&id, t, q.get("signal")).await {
                Ok(true) => http::status(204),
                Ok(false) => http::status(304),
                Err(e) => fail(&e),
            }
        }
        ("POST", "restart") => {
            let t = match num::<i64>(q, "t") {
                Ok(t) => t,
                Err(r) => return Some(r),
            };
            done(svc.restart(&id, t, q.get("signal")).await, 204)
        }
        ("POST", "kill") => done(svc.kill(&id, q.get("signal")).await, 204),
        ("POST", "wait") => wait(&svc, &id, q),
        ("DELETE", "") => {
            if q.bool("link") {
                return Some(error(400, "berth has no container links"));
            }
            done(svc.remove_with(&id, q.bool("force"), q.bool("v")).await, 204)
        }
        ("POST", "attach") => attach(svc, req, &id, q).await,
        ("POST", "resize") => {
            resize(q, |h, w| {
                let svc = svc.clone();
                let id = id.clone();
                async move { svc.resize(&id, h, w).await }
            })
            .await
        }
        ("GET", "logs") => container_logs(&svc, &id, q),
        ("POST", "exec") => match http::read_body(req.into_body(), 1 << 20).await {
            Err(r) => r,
            Ok(b) => match serde_json::from_slice::<Value>(&b) {
                Err(e) => error(400, &format!("invalid JSON: {e}")),
                Ok(body) => match svc.exec_create(&id, &body) {
                    Ok(eid) => json(201, &json!({ "Id": eid })),
                    Err(e) => fail(&e),
                },
            },
        },
        ("GET", "top") => match svc.top(&id, q.str("ps_args")).await {
            Ok(v) => json(200, &v),
            Err(e) => fail(&e),
        },
        ("GET", "stats") => stats(svc, &id, q),
        ("POST", "pause") => done(svc.pause(&id, true).await, 204),
        ("POST", "unpause") => done(svc.pause(&id, false).await, 204),
        ("POST", "rename") => done(svc.rename(&id, q.str("name")), 204),
        ("GET", "changes") => match svc.changes(&id) {
            Ok(v) => json(200, &v),
            Err(e) => fail(&e),
        },
        ("POST", "update") => match http::read_body(req.into_body(), 1 << 20).await {
            Err(r) => r,
            Ok(b) => match serde_json::from_slice::<Value>(&b) {
                Err(e) => error(400, &format!("invalid JSON: {e}")),
                Ok(body) => match svc.update(&id, &body).await {
                    Ok(w) => json(200, &json!({ "Warnings": w })),
                    Err(e) => fail(&e),
                },
            },
        },
        ("GET", "export") => {
            if let Err(e) = svc.get(&id) {
                return Some(fail(&e));
            }
            tar_stream(move |w| svc.export(&id, w))
        }
        ("HEAD" | "GET", "archive") => {
            let path = q.str("path").to_string();
            if path.is_empty() {
                return Some(error(400, "bad parameter: path cannot be empty"));
            }
            let stat = match svc.archive_stat(&id, &path) {
                Ok(s) => s,
                Err(e) => return Some(fail(&e)),
            };
            let header = berth_registry::auth::base64_encode(&serde_json::to_vec(&stat).unwrap_or_default());
            let mut r = if m == "HEAD" {
                http::status(200)
            } else {
                tar_stream(move |w| svc.archive_get(&id, &path, w))
            };
            if let Ok(v) = header.parse() {
                r.headers_mut().insert("X-Docker-Container-Path-Stat", v);
            }
            r
        }
        ("PUT", "archive") => {
            let path = q.str("path").to_string();
            let mut body = http::body_reader(req.into_body());
            let r = tokio::task::spawn_blocking(move || svc.archive_put(&id, &path, &mut body)).await;
            match r {
                Ok(Ok(())) => http::status(200),
                Ok(Err(e)) => fail(&e),
                Err(e) => error(500, &e.to_string()),
            }
        }
        _ => error(404, "page not found"),
    })
}

async fn create(svc: Arc<ContainerService>, req: Request<Incoming>, q: &Query) -> Resp {
    let body: Value = match http::read_json(req.into_body(), 4 << 20).await {
        Ok(b) => b,
        Err(r) => return r,
    };
    let r = CreateRequest {
        name: q.get("name").map(String::from),
        platform: q.get("platform").map(String::from),
        body,
    };
    match svc.create(r).await {
        Ok((id, warnings)) => json(201, &json!({ "Id": id, "Warnings": warnings })),
        Err(e) => fail(&e),
    }
}

fn list(svc: &ContainerService, q: &Query) -> Resp {
    let filters = match ImageFilters::parse(
        q.str("filters"),
        &[
            "id", "name", "label", "status", "exited", "ancestor", "before", "since", "is-task", "health",
            "network", "volume", "publish", "expose",
        ],
    ) {
        Ok(f) => f,
        Err(e) => return fail(&e),
    };
    let limit = match num::<i64>(q, "limit") {
        Ok(l) => l.filter(|l| *l > 0).map(|l| l as usize),
        Err(r) => return r,
    };
    let o = ListOptions {
        all: q.bool("all") || limit.is_some(),
        limit,
        size: q.bool("size"),
        filters,
    };
    match svc.list(&o) {
        Ok(v) => json(200, &v),
        Err(e) => fail(&e),
    }
}

fn wait(svc: &ContainerService, id: &str, q: &Query) -> Resp {
    let fut = match svc.wait(id, q.str("condition")) {
        Ok(f) => f,
        Err(e) => return fail(&e),
    };
    let (tx, rx) = mpsc::channel::<Bytes>(1);
    tokio::spawn(async move {
        let (code, err) = fut.await;
        let body = json!({
            "StatusCode": code,
            "Error": err.map(|m| json!({ "Message": m })),
        });
        let mut b = serde_json::to_vec(&body).unwrap_or_default();
        b.push(b'\n');
        let _ = tx.send(Bytes::from(b)).await;
    });
    http::streamed("application/json", rx)
}

async fn resize<F, Fut>(q: &Query, f: F) -> Resp
where
    F: FnOnce(u16, u16) -> Fut,
    Fut: std::future::Future<Output = Result<(), Error>>,
{
    let (h, w) = match (num::<u16>(q, "h"), num::<u16>(q, "w")) {
        (Ok(h), Ok(w)) => (h.unwrap_or(0), w.unwrap_or(0)),
        (Err(r), _) | (_, Err(r)) => return r,
    };
    match f(h, w).await {
        Ok(()) => http::status(200),
        Err(e) => fail(&e),
    }
}

/// The 101 answer of a hijacked request.
fn upgraded(tty: bool) -> Resp {
    Response::builder()
        .status(101)
        .header("Connection", "Upgrade")
        .header("Upgrade", "tcp")
        .header(
            "Content-Type",
            if tty {
                "application/vnd.docker.raw-stream"
            } else {
                "application/vnd.docker.multiplexed-stream"
            },
        )
        .body(http::empty())
        .expect("static response parts")
}

fn wants_upgrade(req: &Request<Incoming>) -> bool {
    req.headers()
        .get("Upgrade")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("tcp"))
}

const NO_UPGRADE: &str =
    "this endpoint hijacks the connection: send \"Connection: Upgrade\" and \"Upgrade: tcp\"";

async fn attach(svc: Arc<ContainerService>, mut req: Request<Incoming>, id: &str, q: &Query) -> Resp {
    if !wants_upgrade(&req) {
        return error(400, NO_UPGRADE);
    }
    let keys = match parse_detach_keys(q.str("detachKeys")) {
        Ok(k) => k,
        Err(e) => return fail(&e),
    };
    let opts = AttachOptions {
        stdin: q.bool("stdin"),
        stdout: q.bool("stdout"),
        stderr: q.bool("stderr"),
        tty: false,
        stdin_once: false,
        detach_keys: keys,
    };
    let stream = q.bool("stream");
    let replay = q.bool("logs");
    let log_opts = logs::Options {
        stdout: opts.stdout,
        stderr: opts.stderr,
        ..Default::default()
    };
    let a = if stream {
        match svc.attach_prepare(id, opts).await {
            Ok(a) => Some(a),
            Err(e) => return fail(&e),
        }
    } else {
        if let Err(e) = svc.get(id) {
            return fail(&e);
        }
        None
    };
    let (path, tty, _) = match svc.log_source(id) {
        Ok(x) => x,
        Err(e) => return fail(&e),
    };
    let on_upgrade = hyper::upgrade::on(&mut req);
    tokio::spawn(async move {
        let Ok(up) = on_upgrade.await else { return };
        let mut io = TokioIo::new(up);
        if replay {
            let entries = tokio::task::spawn_blocking(move || {
                let mut out = Vec::new();
                logs::read(&path, &log_opts, &|| false, &mut |e| {
                    out.extend(logs::render(e, &log_opts, tty));
                    true
                });
                out
            })
            .await
            .unwrap_or_default();
            if tokio::io::AsyncWriteExt::write_all(&mut io, &entries)
                .await
                .is_err()
            {
                return;
            }
        }
        if let Some(a) = a {
            svc.attach_run(a, io).await;
        }
    });
    upgraded(tty)
}

async fn exec_start(svc: Arc<ContainerService>, mut req: Request<Incoming>, id: &str) -> Resp {
    let tty = match svc.exec_tty(id) {
        Ok(t) => t,
        Err(e) => return fail(&e),
    };
    let upgrade = wants_upgrade(&req);
    let on_upgrade = upgrade.then(|| hyper::upgrade::on(&mut req));
    let v: Value = match http::read_json(req.into_body(), 1 << 20).await {
        Ok(b) => b,
        Err(r) => return r,
    };
    let detach = v.get("Detach").and_then(Value::as_bool).unwrap_or(false);
    let id = id.to_string();
    if detach {
        return match svc
            .exec_start::<TokioIo<hyper::upgrade::Upgraded>>(&id, None)
            .await
        {
            Ok(()) => http::status(200),
            Err(e) => fail(&e),
        };
    }
    let Some(on_upgrade) = on_upgrade else {
        return error(400, NO_UPGRADE);
    };
    tokio::spawn(async move {
        let Ok(up) = on_upgrade.await else { return };
        let mut io = TokioIo::new(up);
        if let Err(e) = svc.exec_start(&id, Some(&mut io)).await {
            // The stream is already hijacked: the error goes to the client as output.
            let msg = format!("{e}\r\n");
            let out = if tty {
                msg.into_bytes()
            } else {
                logs::frame(1, msg.as_bytes())
            };
            let _ = tokio::io::AsyncWriteExt::write_all(&mut io, &out).await;
        }
    });
    upgraded(tty)
}

fn container_logs(svc: &ContainerService, id: &str, q: &Query) -> Resp {
    let (path, tty, entry) = match svc.log_source(id) {
        Ok(x) => x,
        Err(e) => return fail(&e),
    };
    let (stdout, stderr) = (q.bool("stdout"), q.bool("stderr"));
    if !stdout && !stderr {
        return error(400, "Bad parameters: you must choose at least one stream");
    }
    let time = |k: &str| -> Result<Option<i128>, Resp> {
        match q.get(k).filter(|v| !v.is_empty()) {
            None => Ok(None),
            Some(v) => berth_engine::time::parse_filter_time(v)
                .map(Some)
                .ok_or_else(|| error(400, &format!("invalid value for \"{k}\": {v:?}"))),
        }
    };
    let (since, until) = match (time("since"), time("until")) {
        (Ok(s), Ok(u)) => (s.filter(|s| *s > 0), u.filter(|u| *u > 0)),
        (Err(r), _) | (_, Err(r)) => return r,
    };
    let tail = match q.get("tail").filter(|t| !t.is_empty() && *t != "all") {
        None => None,
        Some(t) => match t.parse::<i64>() {
            Ok(n) if n >= 0 => Some(n as usize),
            Ok(_) => None,
            Err(_) => return error(400, &format!("invalid value for \"tail\": {t:?}")),
        },
    };
    let opts = logs::Options {
        stdout,
        stderr,
        since,
        until,
        tail,
        timestamps: q.bool("timestamps"),
        follow: q.bool("follow"),
    };
    let (tx, rx) = mpsc::channel::<Bytes>(64);
    tokio::task::spawn_blocking(move || {
        let running = || {
            let r = entry.record();
            r.state.running || r.state.restarting
        };
        logs::read(&path, &opts, &running, &mut |e| {
            tx.blocking_send(Bytes::from(logs::render(e, &opts, tty))).is_ok()
        });
    });
    http::streamed(
        if tty {
            "application/vnd.docker.raw-stream"
        } else {
            "application/vnd.docker.multiplexed-stream"
        },
        rx,
    )
}

fn stats(svc: Arc<ContainerService>, id: &str, q: &Query) -> Resp {
    if let Err(e) = svc.get(id) {
        return fail(&e);
    }
    let stream = q.get("stream").is_none_or(|s| matches!(s, "1" | "true" | "True"));
    let one_shot = q.bool("one-shot");
    let id = id.to_string();
    let (tx, rx) = mpsc::channel::<Bytes>(4);
    tokio::spawn(async move {
        let line = |v: &Value| {
            let mut b = serde_json::to_vec(v).unwrap_or_default();
            b.push(b'\n');
            Bytes::from(b)
        };
        let mut pre: Option<Value> = None;
        if !stream && !one_shot {
            // A first sample, so that the answer has a "precpu" to compute a CPU share from.
            pre = svc.stats(&id, None).ok();
            tokio::time::sleep(std::time::Duration::from_millis(500)).await;
        }
        loop {
            let s = match svc.stats(&id, pre.as_ref()) {
                Ok(s) => s,
                Err(_) => return,
            };
            if tx.send(line(&s)).await.is_err() || !stream {
                return;
            }
            pre = Some(s);
            tokio::time::sleep(std::time::Duration::from_secs(1)).await;
        }
    });
    http::streamed("application/json", rx)
}

/// A tar stream produced on a blocking thread.
fn tar_stream<F>(f: F) -> Resp
where
    F: FnOnce(&mut dyn std::io::Write) -> Result<(), Error> + Send + 'static,
{
    let (tx, rx) = mpsc::channel::<Bytes>(16);
    tokio::task::spawn_blocking(move || {
        let mut w = http::ChanWriter { tx, buf: Vec::new() };
        if let Err(e) = f(&mut w) {
            eprintln!("berthd: tar stream: {e}");
            return;
        }
        let _ = std::io::Write::flush(&mut w);
    });
    http::streamed("application/x-tar", rx)
}
