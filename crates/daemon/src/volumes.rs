//! The volume routes of the Engine API: `GET /volumes`, `POST /volumes/create`,
//! `GET /volumes/{name}`, `DELETE /volumes/{name}?force=`, `POST /volumes/prune`, turned into
//! calls on the engine's volume service.

use std::sync::Arc;

use berth_engine::images::ImageFilters;
use berth_engine::volumes::CreateOptions;
use hyper::body::Incoming;
use hyper::Request;

use crate::api::State;
use crate::http::{self, json, Query, Resp};

/// Routes `/volumes...`; `None` when the path is not a volume route.
pub async fn route(
    state: &Arc<State>,
    req: Request<Incoming>,
    m: &str,
    path: &str,
    q: &Query,
) -> Option<Resp> {
    let svc = state.containers.volumes().clone();
    let fail = |e: &berth_engine::images::Error| http::engine_error(e);
    Some(match (m, path) {
        ("GET", "/volumes") => {
            match ImageFilters::parse(
                q.str("filters"),
                &["name", "driver", "label", "label!", "dangling"],
            )
            .and_then(|f| svc.list(&f))
            {
                Ok(v) => json(200, &v),
                Err(e) => fail(&e),
            }
        }
        ("POST", "/volumes/create") => {
            let opts: CreateOptions = match http::read_json(req.into_body(), 1 << 20).await {
                Ok(o) => o,
                Err(r) => return Some(r),
            };
            match svc.create(opts) {
                Ok(meta) => json(201, &svc.shown(&meta)),
                Err(e) => fail(&e),
            }
        }
        ("POST", "/volumes/prune") => {
            match ImageFilters::parse(q.str("filters"), &["label", "label!", "all"])
                .and_then(|f| svc.prune(&f))
            {
                Ok(v) => json(200, &v),
                Err(e) => fail(&e),
            }
        }
        _ => {
            let name = path
                .strip_prefix("/volumes/")
                .filter(|n| !n.is_empty() && !n.contains('/'))?;
            let name = crate::api::unescape(name);
            match m {
                "GET" => match svc.inspect(&name) {
                    Ok(v) => json(200, &v),
                    Err(e) => fail(&e),
                },
                "DELETE" => match svc.remove(&name, q.bool("force")) {
                    Ok(()) => http::status(204),
                    Err(e) => fail(&e),
                },
                _ => return None,
            }
        }
    })
}
