//! The network routes of the Engine API: requests turned into calls on the engine's network
//! service (and the container service for connect and disconnect).

use std::sync::Arc;

use berth_engine::images::{Error, ImageFilters};
use berth_engine::networks::CreateRequest;
use hyper::body::Incoming;
use hyper::Request;
use serde_json::{json, Value};

use crate::api::State;
use crate::http::{self, error, json, Query, Resp};

fn fail(e: &Error) -> Resp {
    http::engine_error(e)
}

/// Routes `/networks...`; `None` when the path is not one of them.
pub async fn route(
    state: &Arc<State>,
    req: Request<Incoming>,
    m: &str,
    path: &str,
    q: &Query,
) -> Option<Resp> {
    let nets = state.networks.clone();
    let ctrs = state.containers.clone();
    let in_use = move |n: &str| ctrs.uses_network(n);
    match (m, path) {
        ("GET", "/networks") | ("GET", "/networks/") => {
            return Some(
                match ImageFilters::parse(
                    q.str("filters"),
                    &["name", "id", "driver", "label", "type", "dangling", "scope"],
                )
                .and_then(|f| nets.list(&f.0, &in_use))
                {
                    Ok(v) => json(200, &v),
                    Err(e) => fail(&e),
                },
            )
        }
        ("POST", "/networks/create") => {
            let r: CreateRequest = match http::read_json(req.into_body(), 1 << 20).await {
                Ok(r) => r,
                Err(r) => return Some(r),
            };
            return Some(match tokio::task::spawn_blocking(move || nets.create(r)).await {
                Ok(Ok(id)) => json(201, &json!({"Id": id, "Warning": ""})),
                Ok(Err(e)) => fail(&e),
                Err(e) => error(500, &e.to_string()),
            });
        }
        ("POST", "/networks/prune") => {
            let f = match ImageFilters::parse(q.str("filters"), &["until", "label", "label!"]) {
                Ok(f) => f,
                Err(e) => return Some(fail(&e)),
            };
            let r = tokio::task::spawn_blocking(move || nets.prune(&f.0, &in_use)).await;
            return Some(match r {
                Ok(Ok(names)) => json(200, &json!({"NetworksDeleted": names})),
                Ok(Err(e)) => fail(&e),
                Err(e) => error(500, &e.to_string()),
            });
        }
        _ => {}
    }
    let rest = path.strip_prefix("/networks/")?;
    let (id, action) = rest.split_once('/').unwrap_or((rest, ""));
    let id = id.to_string();
    Some(match (m, action) {
        ("GET", "") => match nets.inspect(&id) {
            Ok(v) => json(200, &v),
            Err(e) => fail(&e),
        },
        ("DELETE", "") => match tokio::task::spawn_blocking(move || nets.remove(&id)).await {
            Ok(Ok(())) => http::status(204),
            Ok(Err(e)) => fail(&e),
            Err(e) => error(500, &e.to_string()),
        },
        ("POST", "connect") | ("POST", "disconnect") => {
            let body: Value = match http::read_json(req.into_body(), 1 << 20).await {
                Ok(b) => b,
                Err(r) => return Some(r),
            };
            let Some(container) = body
                .get("Container")
                .and_then(Value::as_str)
                .filter(|c| !c.is_empty())
            else {
                return Some(error(400, "no container given: Container is empty"));
            };
            let r = if action == "connect" {
                state
                    .containers
                    .connect(
                        &id,
                        container,
                        body.get("EndpointConfig").filter(|v| !v.is_null()),
                    )
                    .await
            } else {
                state.containers.disconnect(&id, container).await
            };
            match r {
                Ok(()) => http::status(200),
                Err(e) => fail(&e),
            }
        }
        _ => error(404, "page not found"),
    })
}
