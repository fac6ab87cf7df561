//! The client HTTP API (axum): routes, shared handler state, and the layers around them.
//!
//! One file per resource (`kv`, `watch`, `leases`, `locks`, `queues`, `topics`, `rings`, `txn`, `cluster`, `auth`), plus the machinery every route
//! shares: `error` (the JSON error shape), `extract` (extractors that fail with it),
//! `outcome` (propose a command and answer with its outcome), `stream` (SSE streams), `named` (listing and deleting queues and topics),
//! `access` (client tokens, checked per request), `consensus` (propose a write,
//! linearize a read). Any node serves any request: writes, linearizable reads and
//! cluster administration reach the leader through the typed core (`service`,
//! `admin`), never as proxied HTTP.
//! The API never touches RocksDB: it reads through `StateReader` and writes through
//! Raft.
//!
//! Layers, outermost first: the `Concord-Node` header naming the node that served the
//! answer, reading the body within its deadline and size (`server::read_body_in_time`:
//! a slow body holds no request slot), the bounds on requests in progress, for the
//! node (503 beyond it) and per client address (429, `client_slots`), and the token
//! check (`access`; on the node asked, re-checked by the leader for what it runs).

pub mod access;
pub mod auth;
pub mod blocking;
pub mod client_slots;
pub mod cluster;
pub mod consensus;
pub mod error;
pub mod extract;
pub mod kv;
pub mod leases;
pub mod lists;
pub mod locks;
pub mod named;
pub mod openapi;
pub mod outcome;
pub mod queues;
pub mod rings;
pub mod stream;
pub mod topics;
pub mod txn;
pub mod watch;

use std::sync::Arc;

use axum::Router;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use tokio::sync::Semaphore;

use crate::config::{Limits, RaftTiming};
use crate::raft::{NodeId, Raft};
use crate::state::StateReader;
use crate::ticker::LeaderClock;
use error::ApiError;

pub const NODE_HEADER: &str = "concord-node";

/// What every handler can reach: one `Arc`, because every layer and handler clones
/// it for every request (a struct of a dozen `Arc`s cost a dozen contended atomic
/// increments per clone: 9% of a leader's CPU under 64 connections of reads).
#[derive(Clone)]
pub struct AppState(Arc<AppParts>);

impl AppState {
    pub fn new(parts: AppParts) -> Self {
        Self(Arc::new(parts))
    }
}

impl std::ops::Deref for AppState {
    type Target = AppParts;
    fn deref(&self) -> &AppParts {
        &self.0
    }
}

/// The parts of `AppState`.
pub struct AppParts {
    pub node_id: NodeId,
    pub raft: Raft,
    pub reader: StateReader,
    pub limits: Arc<Limits>,
    pub timing: Arc<RaftTiming>,
    pub in_flight: Arc<Semaphore>,
    /// Open streams (watches, topic subscriptions), bounded by `Limits::streams_max`.
    pub streams: Arc<Semaphore>,
    /// Requests in progress per client address (`Limits::requests_per_client_max`).
    pub client_requests: Arc<client_slots::ClientSlots>,
    /// Open streams per client address (`Limits::streams_per_client_max`).
    pub client_streams: Arc<client_slots::ClientSlots>,
    /// The leader's live reading of the replicated clock, for the time left that
    /// reads report (`service::Core` stamps writes with it).
    pub clock: Arc<LeaderClock>,
    /// Consistent-hash circles of recently looked-up rings.
    pub placements: Arc<rings::PlacementCache>,
    /// Writes and linearizable reads through Raft (`service`).
    pub core: crate::service::Core,
    /// Cluster administration, on the leader (`admin`).
    pub admin: crate::admin::Admin,
}

/// The client API's routes, each from its annotated handler, and their description.
fn routes() -> (Router<AppState>, utoipa::openapi::OpenApi) {
    use utoipa::OpenApi;
    use utoipa_axum::router::OpenApiRouter;
    use utoipa_axum::routes;
    let (router, document) = OpenApiRouter::with_openapi(openapi::ApiDoc::openapi())
        .routes(routes!(kv::list, kv::delete_prefix))
        .routes(routes!(kv::get, kv::put, kv::delete))
        .routes(routes!(leases::grant))
        .routes(routes!(leases::get, leases::revoke))
        .routes(routes!(leases::keep_alive))
        .routes(routes!(lists::get))
        .routes(routes!(locks::get))
        .routes(routes!(locks::acquire))
        .routes(routes!(locks::release))
        .routes(routes!(locks::check))
        .routes(routes!(queues::list))
        .routes(routes!(queues::get, queues::configure, queues::delete))
        .routes(routes!(queues::enqueue))
        .routes(routes!(queues::receive))
        .routes(routes!(queues::ack))
        .routes(routes!(queues::nack))
        .routes(routes!(queues::extend))
        .routes(routes!(topics::list))
        .routes(routes!(topics::get, topics::configure, topics::delete))
        .routes(routes!(topics::read, topics::publish))
        .routes(routes!(topics::subscribe))
        .routes(routes!(rings::get))
        .routes(routes!(rings::lookup))
        .routes(routes!(rings::join, rings::leave))
        .routes(routes!(txn::txn))
        .routes(routes!(watch::watch))
        .routes(routes!(cluster::status))
        .routes(routes!(cluster::add_member))
        .routes(routes!(cluster::snapshot))
        .routes(routes!(cluster::remove_member))
        .routes(routes!(auth::status))
        .routes(routes!(auth::enable))
        .routes(routes!(auth::disable))
        .routes(routes!(auth::whoami))
        .routes(routes!(auth::list, auth::create))
        .routes(routes!(auth::get, auth::revoke))
        .routes(routes!(cluster::health))
        .routes(routes!(cluster::ready))
        // Only a 400 (`empty_key`): not an operation worth describing.
        .route("/v1/kv/", get(kv::empty_key).put(kv::empty_key).delete(kv::empty_key))
        .split_for_parts();
    (router, openapi::finish(document))
}

/// The OpenAPI description served at `/v1/openapi.json`.
pub fn openapi_document() -> utoipa::openapi::OpenApi {
    routes().1
}

pub fn router(app: AppState) -> Router {
    let (routes, document) = routes();
    let description = document.to_json().unwrap_or_else(|e| {
        tracing::error!(error = %e, "cannot serialize the OpenAPI description");
        String::from("{}")
    });
    let description = axum::body::Bytes::from(description);
    let v1 = routes
        .route(openapi::OPENAPI_PATH, get(move || async move { ([(axum::http::header::CONTENT_TYPE, "application/json")], description) }))
        .fallback(unknown_route)
        .method_not_allowed_fallback(wrong_method)
        .layer(DefaultBodyLimit::max(app.limits.body_bytes_max));
    v1.layer(middleware::from_fn_with_state(app.clone(), access::require_token))
        .layer(middleware::from_fn_with_state(app.clone(), bound_in_flight))
        .layer(middleware::from_fn_with_state(app.limits.bodies(false), crate::server::read_body_in_time))
        .layer(middleware::from_fn_with_state(app.clone(), name_the_node))
        .with_state(app)
}

async fn unknown_route(request: Request) -> ApiError {
    let path = request.uri().path();
    ApiError::not_found("route_not_found", format!("no route for {} {path}; {}", request.method(), route_hint(path)))
}

/// What to try instead. A lock, queue, topic or ring name is one path segment, so a
/// `/` in it must be sent as `%2F`; the commonest way to miss every route.
fn route_hint(path: &str) -> String {
    const NAMED: [(&str, &str); 4] = [("/v1/locks/", "lock"), ("/v1/queues/", "queue"), ("/v1/topics/", "topic"), ("/v1/rings/", "ring")];
    match NAMED.iter().find(|(prefix, _)| path.starts_with(prefix)) {
        Some((prefix, what)) => {
            let name = path[prefix.len()..].split('/').take(2).collect::<Vec<_>>().join("%2F");
            format!("a / inside a {what} name is written %2F in the URL (e.g. {prefix}{name}); see docs/api.md")
        }
        None => "see docs/api.md".to_string(),
    }
}

async fn wrong_method(request: Request) -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        format!("{} is not supported on {}; see docs/api.md", request.method(), request.uri().path()),
    )
}

/// Adds `Concord-Node: <id>`, the node that served the answer.
async fn name_the_node(State(app): State<AppState>, request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    response.headers_mut().insert(NODE_HEADER, HeaderValue::from(app.node_id));
    response
}

/// Holds one of the node's `concurrent_requests_max` slots (`503` beyond it) and one
/// of the client's `requests_per_client_max` (`429` beyond it; see `client_slots`)
/// while the request is served. One layer for both: every layer costs allocations
/// on every request.
async fn bound_in_flight(State(app): State<AppState>, request: Request, next: Next) -> Response {
    let Ok(_permit) = app.in_flight.clone().try_acquire_owned() else {
        let message = format!("this node is serving its maximum of {} concurrent requests; retry shortly", app.limits.concurrent_requests_max);
        return ApiError::unavailable(message).into_response();
    };
    let Some(client) = request.extensions().get::<crate::server::ClientAddr>().map(|addr| addr.0.ip()) else {
        return next.run(request).await;
    };
    match app.client_requests.take(client) {
        Ok(_slot) => next.run(request).await,
        Err(refused) => refused.into_response(),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_slash_in_a_name_gets_the_percent_encoding_hint() {
        let hint = super::route_hint("/v1/locks/jobs/leader/acquire");
        assert!(hint.contains("/v1/locks/jobs%2Fleader"), "{hint}");
        assert_eq!(super::route_hint("/v1/nothing"), "see docs/api.md");
    }
}
