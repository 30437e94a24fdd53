//! The Docker Engine API routes berthd serves, translated to the engine's services. Paths may carry a
//! version prefix (`/v1.44/images/json`); versions below [`MIN_API`] or above [`API_VERSION`] are
//! refused as dockerd refuses them.

use std::sync::Arc;

use berth_engine::events::Events;
use berth_engine::images::{Error, ImageFilters, ImageService};
use berth_engine::progress::{Message, Progress};
use berth_image::{Platform, Reference};
use berth_registry::auth::base64_decode;
use berth_registry::Credentials;
use bytes::Bytes;
use hyper::body::Incoming;
use hyper::{Method, Request, Response};
use serde_json::{json, Value};
use tokio::sync::mpsc;

use crate::http::{self, error, json, Query, Resp};
use crate::info;

pub const API_VERSION: &str = "1.47";
pub const MIN_API: &str = "1.40";

pub struct State {
    pub containers: Arc<berth_engine::containers::ContainerService>,
    pub networks: Arc<berth_engine::networks::NetworkService>,
    pub images: Arc<ImageService>,
    pub events: Arc<Events>,
    pub info: info::Static,
    pub debug: bool,
}

fn version_number(v: &str) -> Option<(u32, u32)> {
    let (a, b) = v.split_once('.')?;
    Some((a.parse().ok()?, b.parse().ok()?))
}

/// Splits `/v1.44/rest` into the version and `/rest`.
fn strip_version(path: &str) -> Result<(Option<String>, String), Resp> {
    let Some(rest) = path.strip_prefix("/v") else {
        return Ok((None, path.to_string()));
    };
    let (ver, tail) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let Some(n) = version_number(ver) else {
        return Ok((None, path.to_string()));
    };
    if n < version_number(MIN_API).expect("static") {
        return Err(error(
            400,
            &format!("client version {ver} is too old. Minimum supported API version is {MIN_API}, please upgrade your client to a newer version"),
        ));
    }
    if n > version_number(API_VERSION).expect("static") {
        return Err(error(
            400,
            &format!("client version {ver} is too new. Maximum supported API version is {API_VERSION}"),
        ));
    }
    Ok((Some(ver.to_string()), tail.to_string()))
}

fn with_api_headers(mut r: Resp) -> Resp {
    let h = r.headers_mut();
    h.insert("Api-Version", API_VERSION.parse().expect("static"));
    h.insert("Docker-Experimental", "false".parse().expect("static"));
    h.insert("Ostype", "linux".parse().expect("static"));
    h.insert(
        "Server",
        concat!("Berth/", env!("CARGO_PKG_VERSION"), " (linux)")
            .parse()
            .expect("static"),
    );
    r
}

pub async fn handle(state: Arc<State>, req: Request<Incoming>) -> Result<Resp, std::convert::Infallible> {
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    if state.debug {
        eprintln!("berthd: {method} {}", req.uri());
    }
    let resp = match strip_version(&path) {
        Err(r) => r,
        Ok((_, p)) => route(&state, req, &method, &p).await,
    };
    if state.debug && !resp.status().is_success() {
        eprintln!("berthd: {method} {path} -> {}", resp.status());
    }
    Ok(with_api_headers(resp))
}

/// Percent-decodes a path segment (image names may carry `%2F` and `%3A`).
pub(crate) fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            if let Ok(v) = u8::from_str_radix(&s[i + 1..i + 3], 16) {
                out.push(v);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

async fn route(state: &Arc<State>, req: Request<Incoming>, method: &Method, path: &str) -> Resp {
    let q = Query::parse(req.uri().query());
    let m = method.as_str();
    match (m, path) {
        ("GET" | "HEAD", "/_ping") => {
            let mut r = Response::builder()
                .status(200)
                .header("Content-Type", "text/plain; charset=utf-8")
                .header("Cache-Control", "no-cache, no-store, must-revalidate")
                .header("Pragma", "no-cache");
            r = r.header("Builder-Version", "");
            let body = if m == "HEAD" {
                http::empty()
            } else {
                http::full("OK")
            };
            return r.body(body).expect("static response parts");
        }
        ("GET", "/version") => return json(200, &info::version()),
        ("GET", "/info") => return info::info(state),
        ("GET", "/events") => return events(state, &q),
        ("GET", "/system/df") => return system_df(state),
        ("POST", "/auth") => return auth(state, req).await,
        ("GET", "/images/json") => return images_list(state, &q),
        ("POST", "/images/create") => return images_create(state, req, &q).await,
        ("GET", "/images/get") => return images_save(state, q.all("names").to_vec()),
        ("POST", "/images/load") => return images_load(state, req),
        ("POST", "/images/prune") => {
            return match ImageFilters::parse(q.str("filters"), &["dangling", "label", "label!", "until"]) {
                Ok(f) => match state.images.prune(&f).await {
                    Ok(r) => json(200, &r),
                    Err(e) => http::engine_error(&e),
                },
                Err(e) => http::engine_error(&e),
            };
        }
        _ => {}
    }
    if let Some(rest) = path.strip_prefix("/images/") {
        // The name may contain slashes: the action is the last segment.
        let (name, action) = match rest.rsplit_once('/') {
            Some((n, a)) if matches!(a, "json" | "history" | "tag" | "push" | "get") => (n, a),
            _ => (rest, ""),
        };
        let name = unescape(name);
        return match (m, action) {
            ("GET", "json") => result(state.images.inspect(&name)),
            ("GET", "history") => result(state.images.history(&name)),
            ("POST", "tag") => match state.images.tag(&name, q.str("repo"), q.str("tag")) {
                Ok(_) => http::status(201),
                Err(e) => http::engine_error(&e),
            },
            ("POST", "push") => images_push(state, &req, &name, &q).await,
            ("GET", "get") => images_save(state, vec![name]),
            ("DELETE", "") => match state.images.remove(&name, q.bool("force")).await {
                Ok(items) => json(200, &items),
                Err(e) => http::engine_error(&e),
            },
            _ => error(404, "page not found"),
        };
    }
    if path.starts_with("/containers") || path.starts_with("/exec/") {
        let q = Query::parse(req.uri().query());
        if let Some(r) = crate::containers::route(state, req, m, path, &q).await {
            return r;
        }
        return error(404, "page not found");
    }
    if path.starts_with("/networks") {
        let q = Query::parse(req.uri().query());
        let path = unescape(path);
        if let Some(r) = crate::networks::route(state, req, m, &path, &q).await {
            return r;
        }
        return error(404, "page not found");
    }
    if path.starts_with("/volumes") {
        let q = Query::parse(req.uri().query());
        return crate::volumes::route(state, req, m, path, &q)
            .await
            .unwrap_or_else(|| error(404, "page not found"));
    }
    error(404, "page not found")
}

fn result<T: serde::Serialize>(r: Result<T, Error>) -> Resp {
    match r {
        Ok(v) => json(200, &v),
        Err(e) => http::engine_error(&e),
    }
}

/// `X-Registry-Auth`: base64url JSON (`{"username","password","serveraddress"}`); `{}` or nothing
/// means anonymous.
pub fn registry_auth(header: Option<&str>) -> Result<Option<Credentials>, Resp> {
    let Some(h) = header.map(str::trim).filter(|h| !h.is_empty()) else {
        return Ok(None);
    };
    let std: String = h
        .chars()
        .map(|c| match c {
            '-' => '+',
            '_' => '/',
            c => c,
        })
        .collect();
    let padded = format!("{std}{}", "=".repeat((4 - std.len() % 4) % 4));
    let raw =
        base64_decode(&padded).ok_or_else(|| error(400, "invalid X-Registry-Auth header: not base64"))?;
    let v: Value = serde_json::from_slice(&raw)
        .map_err(|e| error(400, &format!("invalid X-Registry-Auth header: {e}")))?;
    let user = v.get("username").and_then(|x| x.as_str()).unwrap_or("");
    let pass = v.get("password").and_then(|x| x.as_str()).unwrap_or("");
    if user.is_empty() && pass.is_empty() {
        return Ok(None);
    }
    Ok(Some(Credentials {
        username: user.to_string(),
        password: pass.to_string(),
    }))
}

fn images_list(state: &Arc<State>, q: &Query) -> Resp {
    let mut filters = match ImageFilters::parse(
        q.str("filters"),
        &[
            "dangling",
            "label",
            "label!",
            "before",
            "since",
            "reference",
            "until",
        ],
    ) {
        Ok(f) => f,
        Err(e) => return http::engine_error(&e),
    };
    // The old `filter=NAME` parameter is a reference filter.
    if let Some(f) = q.get("filter").filter(|f| !f.is_empty()) {
        filters
            .0
            .entry("reference".into())
            .or_default()
            .push(f.to_string());
    }
    result(state.images.list(&filters))
}

async fn images_create(state: &Arc<State>, req: Request<Incoming>, q: &Query) -> Resp {
    let platform = match q.get("platform").filter(|p| !p.is_empty()) {
        Some(p) => match p.parse::<Platform>() {
            Ok(p) => Some(p),
            Err(e) => return error(400, &e.to_string()),
        },
        None => None,
    };
    if let Some(src) = q.get("fromSrc") {
        return images_import(state, req, q, src, platform).await;
    }
    let Some(from) = q.get("fromImage").filter(|f| !f.is_empty()) else {
        return error(400, "fromImage or fromSrc is required");
    };
    let tag = q.str("tag");
    // dockerd: a digest in `tag` is a digest; no tag at all means every tag.
    let (raw, all_tags) = if tag.is_empty() {
        (from.to_string(), !from.contains('@') && !has_tag(from))
    } else if tag.starts_with("sha256:") {
        (format!("{from}@{tag}"), false)
    } else {
        (format!("{from}:{tag}"), false)
    };
    let (reference, creds) = match reference_and_auth(&raw, &req) {
        Ok(x) => x,
        Err(r) => return r,
    };
    let (tx, rx) = mpsc::unbounded_channel::<Message>();
    let images = state.images.clone();
    http::progress_stream(
        async move {
            images
                .pull(&reference, all_tags, platform, creds, Progress::new(tx))
                .await
        },
        rx,
    )
    .await
}

/// The reference a pull or push names, and the credentials its `X-Registry-Auth` carries.
fn reference_and_auth(raw: &str, req: &Request<Incoming>) -> Result<(Reference, Option<Credentials>), Resp> {
    let reference: Reference = raw
        .parse()
        .map_err(|e: berth_image::ReferenceError| error(400, &e.to_string()))?;
    let creds = registry_auth(req.headers().get("X-Registry-Auth").and_then(|v| v.to_str().ok()))?;
    Ok((reference, creds))
}

/// Whether a repository string carries a tag (a `:` after the last `/`).
fn has_tag(s: &str) -> bool {
    let last = s.rsplit('/').next().unwrap_or(s);
    last.contains(':')
}

async fn images_import(
    state: &Arc<State>,
    req: Request<Incoming>,
    q: &Query,
    src: &str,
    platform: Option<Platform>,
) -> Resp {
    if src != "-" {
        return error(
            400,
            "berthd imports from the request body only (fromSrc=-): importing from a URL is not supported",
        );
    }
    let repo = q.str("repo");
    let name = if repo.is_empty() {
        None
    } else {
        let tag = q.str("tag");
        let raw = if tag.is_empty() {
            repo.to_string()
        } else {
            format!("{repo}:{tag}")
        };
        match raw.parse::<Reference>() {
            Ok(r) => Some(r),
            Err(e) => return error(400, &e.to_string()),
        }
    };
    let message = q.str("message").to_string();
    let changes = q.all("changes").to_vec();
    let images = state.images.clone();
    let mut body = http::body_reader(req.into_body());
    let r = tokio::task::spawn_blocking(move || {
        images.import(&mut body, name.as_ref(), &message, &changes, platform)
    })
    .await;
    match r {
        Ok(Ok(id)) => {
            let line = Message::status("", id.to_string()).line();
            Response::builder()
                .status(200)
                .header("Content-Type", "application/json")
                .body(http::full(line))
                .expect("static response parts")
        }
        Ok(Err(e)) => http::engine_error(&e),
        Err(e) => error(500, &e.to_string()),
    }
}

async fn images_push(state: &Arc<State>, req: &Request<Incoming>, name: &str, q: &Query) -> Resp {
    let tag = q.str("tag");
    let all_tags = tag.is_empty() && !has_tag(name);
    let raw = if tag.is_empty() {
        name.to_string()
    } else {
        format!("{name}:{tag}")
    };
    let (reference, creds) = match reference_and_auth(&raw, req) {
        Ok(x) => x,
        Err(r) => return r,
    };
    let (tx, rx) = mpsc::unbounded_channel::<Message>();
    let images = state.images.clone();
    http::progress_stream(
        async move { images.push(&reference, all_tags, creds, Progress::new(tx)).await },
        rx,
    )
    .await
}

fn images_save(state: &Arc<State>, names: Vec<String>) -> Resp {
    if names.is_empty() {
        return error(400, "no images to save: name one or more with names=");
    }
    // Resolve first, so an unknown name is a 404 rather than a broken stream.
    for n in &names {
        if let Err(e) = state.images.resolve(n) {
            return http::engine_error(&e);
        }
    }
    let (tx, rx) = mpsc::channel::<Bytes>(16);
    let images = state.images.clone();
    tokio::task::spawn_blocking(move || {
        let mut w = http::ChanWriter { tx, buf: Vec::new() };
        if let Err(e) = images.save(&names, &mut w) {
            eprintln!("berthd: save {names:?}: {e}");
            return;
        }
        let _ = std::io::Write::flush(&mut w);
    });
    http::streamed("application/x-tar", rx)
}

fn images_load(state: &Arc<State>, req: Request<Incoming>) -> Resp {
    let (tx, rx) = mpsc::unbounded_channel::<Message>();
    let images = state.images.clone();
    let mut body = http::body_reader(req.into_body());
    let (out_tx, out) = mpsc::channel::<Bytes>(16);
    tokio::spawn(async move {
        let work = tokio::task::spawn_blocking(move || images.load(&mut body, &Progress::new(tx)));
        let mut rx = rx;
        while let Some(m) = rx.recv().await {
            let _ = out_tx.send(Bytes::from(m.line())).await;
        }
        match work.await {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => {
                let _ = out_tx
                    .send(Bytes::from(Message::error(e.to_string()).line()))
                    .await;
            }
            Err(e) => {
                let _ = out_tx
                    .send(Bytes::from(Message::error(e.to_string()).line()))
                    .await;
            }
        }
    });
    http::streamed("application/json", out)
}

async fn auth(state: &Arc<State>, req: Request<Incoming>) -> Resp {
    let body = match http::read_body(req.into_body(), 1 << 20).await {
        Ok(b) => b,
        Err(r) => return r,
    };
    let v: Value = match serde_json::from_slice(&body) {
        Ok(v) => v,
        Err(e) => return error(400, &format!("invalid JSON: {e}")),
    };
    let s = |k: &str| v.get(k).and_then(|x| x.as_str()).unwrap_or("").to_string();
    let server = s("serveraddress");
    let domain = server
        .trim_start_matches("https://")
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .trim_end_matches("/v1")
        .trim_end_matches("/v2")
        .to_string();
    let domain = if domain.is_empty() || domain == "index.docker.io" || domain == "registry-1.docker.io" {
        "docker.io".to_string()
    } else {
        domain
    };
    let creds = Credentials {
        username: s("username"),
        password: s("password"),
    };
    match state.images.registry().login(&domain, &creds).await {
        Ok(()) => json(200, &json!({"Status": "Login Succeeded", "IdentityToken": ""})),
        Err(e) => error(401, &e.to_string()),
    }
}

fn system_df(state: &Arc<State>) -> Resp {
    match state.images.disk_usage() {
        Ok((layers, images)) => json(
            200,
            &json!({
                "LayersSize": layers,
                "Images": images,
                "Containers": [],
                "Volumes": state.containers.volumes().usage(),
                "BuildCache": [],
            }),
        ),
        Err(e) => http::engine_error(&e),
    }
}

fn events(state: &Arc<State>, q: &Query) -> Resp {
    let filters = match ImageFilters::parse(
        q.str("filters"),
        &[
            "type",
            "event",
            "image",
            "label",
            "container",
            "network",
            "volume",
            "daemon",
            "scope",
            "plugin",
            "node",
            "service",
            "secret",
            "config",
        ],
    ) {
        Ok(f) => f,
        Err(e) => return http::engine_error(&e),
    };
    let parse_time = |s: &str| -> Option<i128> {
        if s.is_empty() {
            return None;
        }
        if let Ok(f) = s.parse::<f64>() {
            return Some((f * 1e9) as i128);
        }
        berth_engine::time::parse_rfc3339(s).map(|t| t as i128 * 1_000_000_000)
    };
    let since = parse_time(q.str("since"));
    let until = parse_time(q.str("until"));
    let (past, mut rx) = state.events.subscribe(since);
    let keep = move |e: &berth_engine::events::Event| -> bool {
        let ok = |k: &str, v: &str| {
            let vals = filters.get(k);
            vals.is_empty() || vals.iter().any(|x| x == v)
        };
        let named = |k: &str| {
            filters.get(k).is_empty()
                || filters.get(k).iter().any(|i| {
                    *i == e.id
                        || (i.len() >= 12 && e.id.starts_with(i.as_str()))
                        || e.actor.attributes.get("name") == Some(i)
                        || (k == "image" && e.actor.attributes.get("image") == Some(i))
                })
        };
        let action = e.action.split(':').next().unwrap_or(&e.action);
        ok("type", &e.typ)
            && (filters.get("event").is_empty() || filters.get("event").iter().any(|x| x == action))
            && named("image")
            && (filters.get("container").is_empty() || (e.typ == "container" && named("container")))
            && (filters.get("volume").is_empty() || (e.typ == "volume" && named("volume")))
            && filters.get("label").iter().all(|l| match l.split_once('=') {
                Some((k, v)) => e.actor.attributes.get(k).map(String::as_str) == Some(v),
                None => e.actor.attributes.contains_key(l.as_str()),
            })
    };
    let (tx, out) = mpsc::channel::<Bytes>(64);
    tokio::spawn(async move {
        let line = |e: &berth_engine::events::Event| {
            let mut v = serde_json::to_vec(e).unwrap_or_default();
            v.push(b'\n');
            Bytes::from(v)
        };
        for e in past.iter().filter(|e| keep(e)) {
            if until.is_some_and(|u| e.time_nano > u) {
                return;
            }
            if tx.send(line(e)).await.is_err() {
                return;
            }
        }
        loop {
            let deadline = until.map(|u| {
                let now = berth_engine::time::now_nanos();
                std::time::Duration::from_nanos(u.saturating_sub(now).max(0) as u64)
            });
            let next = match deadline {
                Some(d) => match tokio::time::timeout(d, rx.recv()).await {
                    Ok(r) => r,
                    Err(_) => return,
                },
                None => rx.recv().await,
            };
            match next {
                Ok(e) if keep(&e) => {
                    if tx.send(line(&e)).await.is_err() {
                        return;
                    }
                }
                Ok(_) => {}
                Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                Err(_) => return,
            }
        }
    });
    http::streamed("application/json", out)
}
