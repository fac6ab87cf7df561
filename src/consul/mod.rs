//! Consul's HTTP API, on a listener of its own (`concord serve --consul-listen ADDR`;
//! its paths, `/v1/kv/...`, collide with Concord's), so programs written against
//! Consul's KV (python-consul, py-consul, `curl`) run unchanged against a Concord
//! cluster, with Concord's guarantees underneath (docs/consul.md).
//!
//! It is a door onto the same core as the HTTP API: the same `AppState`, the same
//! commands and reads, the same token check. What is Consul's is only the dialect:
//!
//! - the routes and their query flags (`kv`, `sessions`, `status`), read as Consul
//!   reads them (`query`): a flag like `recurse` is true when present, whatever its
//!   value; JSON bodies' field names in any case (`sessions::fields`);
//! - blocking queries (`?index=&wait=`) that wait for a change of the keys asked for,
//!   not of the whole store (`blocking`);
//! - a token in `X-Consul-Token`, `?token=` or `Authorization: Bearer`, checked as
//!   Concord's (`forward_token`);
//! - every answer carries `X-Consul-Index`, `X-Consul-KnownLeader` and
//!   `X-Consul-LastContact` (clients read the index even from a 404), and an error is
//!   a status with a plain-text message, as Consul's are; a missing or bad token is
//!   `403`, as in Consul (`in_dialect`).
//!
//! Any node serves any request: writes go through the leader as Concord's do, and
//! reads are linearizable unless `?stale` is given.

mod blocking;
mod kv;
mod query;
mod sessions;
mod status;

use axum::Router;
use axum::body::{Body, to_bytes};
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, put};

use crate::api::AppState;
use crate::api::access;

/// The header that carries the index a read reflects (a cluster revision here).
pub const INDEX: &str = "x-consul-index";
/// Most bytes of an error body the dialect layer reads to turn it into text.
const ERROR_BODY_BYTES_MAX: usize = 64 * 1024;

/// The Consul door's routes and layers.
pub fn router(app: AppState) -> Router {
    let body_bytes_max = app.limits.body_bytes_max.max(app.limits.value_bytes_max);
    Router::new()
        .route("/v1/kv/", get(kv::get_root).put(kv::put_root).delete(kv::delete_root))
        .route("/v1/kv/{*key}", get(kv::get).put(kv::put).delete(kv::delete))
        .route("/v1/session/create", put(sessions::create))
        .route("/v1/session/destroy/{id}", put(sessions::destroy))
        .route("/v1/session/renew/{id}", put(sessions::renew))
        .route("/v1/session/info/{id}", get(sessions::info))
        .route("/v1/session/list", get(sessions::list))
        .route("/v1/session/node/{node}", get(sessions::of_node))
        .route("/v1/status/leader", get(status::leader))
        .route("/v1/status/peers", get(status::peers))
        .route("/v1/agent/self", get(status::agent_self))
        .fallback(unknown_route)
        .layer(DefaultBodyLimit::max(body_bytes_max))
        .layer(middleware::from_fn_with_state(app.clone(), access::require_token))
        .layer(middleware::from_fn(forward_token))
        .layer(middleware::from_fn_with_state(app.limits.bodies(false), crate::server::read_body_in_time))
        .layer(middleware::from_fn_with_state(app.clone(), in_dialect))
        .with_state(app)
}

async fn unknown_route(request: Request) -> Response {
    let path = request.uri().path();
    (StatusCode::NOT_FOUND, format!("{path} is not part of Concord's Consul API (docs/consul.md)")).into_response()
}

/// Presents the token a Consul client sent (`X-Consul-Token`, or `?token=`) as
/// Concord's `Authorization: Bearer`, which the token check reads.
async fn forward_token(mut request: Request, next: Next) -> Response {
    let from_header = request.headers().get("x-consul-token").and_then(|value| value.to_str().ok()).map(str::to_string);
    let from_query = query::Flags::parse(request.uri().query()).value("token").map(str::to_string);
    if let Some(token) = from_header.or(from_query).filter(|token| !token.is_empty())
        && !request.headers().contains_key(header::AUTHORIZATION)
        && let Ok(value) = HeaderValue::from_str(&format!("Bearer {token}"))
    {
        request.headers_mut().insert(header::AUTHORIZATION, value);
    }
    next.run(request).await
}

/// Adds Consul's headers to every answer, and turns Concord's JSON errors into
/// Consul's: the message as plain text, and `403` for a token refused.
async fn in_dialect(State(app): State<AppState>, request: Request, next: Next) -> Response {
    let response = next.run(request).await;
    let mut response = match response.status() {
        status if status.is_client_error() || status.is_server_error() => as_text(response).await,
        _ => response,
    };
    let leader = app.raft.metrics().borrow().current_leader.is_some();
    let headers = response.headers_mut();
    if !headers.contains_key(INDEX) {
        // Clients read it even from a 404; Consul's is never 0. (Reads set their own,
        // so only the other answers read the revision here.)
        let revision = app.reader.position().map(|read| read.revision).unwrap_or(0);
        headers.insert(HeaderName::from_static(INDEX), HeaderValue::from(revision.max(1)));
    }
    headers.insert(HeaderName::from_static("x-consul-knownleader"), HeaderValue::from_static(if leader { "true" } else { "false" }));
    headers.insert(HeaderName::from_static("x-consul-lastcontact"), HeaderValue::from(0));
    response
}

/// An error answer as Consul words it: its message alone, as text.
async fn as_text(response: Response) -> Response {
    let (mut parts, body) = response.into_parts();
    let is_json = parts.headers.get(header::CONTENT_TYPE).is_some_and(|value| value.as_bytes().starts_with(b"application/json"));
    if !is_json {
        return Response::from_parts(parts, body);
    }
    let bytes = to_bytes(body, ERROR_BODY_BYTES_MAX).await.unwrap_or_default();
    let parsed: Option<serde_json::Value> = serde_json::from_slice(&bytes).ok();
    let message =
        parsed.as_ref().and_then(|body| body["error"]["message"].as_str()).map_or_else(|| String::from_utf8_lossy(&bytes).into_owned(), str::to_string);
    // Consul answers a missing or unknown token with 403 ("ACL not found").
    if parts.status == StatusCode::UNAUTHORIZED {
        parts.status = StatusCode::FORBIDDEN;
        parts.headers.remove(header::WWW_AUTHENTICATE);
    }
    parts.headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain; charset=utf-8"));
    parts.headers.remove(header::CONTENT_LENGTH);
    Response::from_parts(parts, Body::from(message))
}
