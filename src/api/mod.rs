//! The client HTTP API (axum): routes, shared handler state, and the layers around them.
//!
//! One file per resource (`kv`, `watch`, `leases`, `locks`, `queues`, `topics`, `rings`, `cluster`, `auth`), plus the machinery every route
//! shares: `error` (the JSON error shape), `extract` (extractors that fail with it),
//! `outcome` (propose a command and answer with its outcome), `stream` (SSE streams), `named` (listing and deleting queues and topics),
//! `forward` (send to the leader), `access` (client tokens, checked per request),
//! `consensus` (propose a write, linearize a read).
//! The API never touches RocksDB: it reads through `StateReader` and writes through
//! Raft.
//!
//! Layers, outermost first: the `Concord-Node` header naming the node that served the
//! answer, reading the body within its deadline and size (`server::read_body_in_time`:
//! a slow body holds no request slot), a bound on concurrent requests (503 beyond
//! it), a bound per client address (429 beyond it, `client_slots`), forwarding to
//! the leader, and the token check (`access`; on the node that serves the request).

pub mod access;
pub mod auth;
pub mod blocking;
pub mod client_slots;
pub mod cluster;
pub mod consensus;
pub mod error;
pub mod extract;
pub mod forward;
pub mod kv;
pub mod leases;
pub mod locks;
pub mod named;
pub mod queues;
pub mod rings;
pub mod topics;
pub mod stream;
pub mod watch;
pub mod outcome;

use std::sync::Arc;

use axum::Router;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use tokio::sync::Semaphore;

use crate::config::{Limits, RaftTiming};
use crate::raft::log_store::LogStats;
use crate::raft::{NodeId, Raft};
use crate::state::StateReader;
use crate::ticker::LeaderClock;
use error::ApiError;
use forward::Forwarder;

pub const NODE_HEADER: &str = "concord-node";

/// What every handler can reach. Cheap to clone.
#[derive(Clone)]
pub struct AppState {
    pub node_id: NodeId,
    pub raft: Raft,
    pub reader: StateReader,
    pub limits: Arc<Limits>,
    pub timing: Arc<RaftTiming>,
    pub forwarder: Forwarder,
    pub in_flight: Arc<Semaphore>,
    /// Open streams (watches, topic subscriptions), bounded by `Limits::streams_max`.
    pub streams: Arc<Semaphore>,
    /// Requests in progress per client address (`Limits::requests_per_client_max`).
    pub client_requests: Arc<client_slots::ClientSlots>,
    /// Open streams per client address (`Limits::streams_per_client_max`).
    pub client_streams: Arc<client_slots::ClientSlots>,
    /// Counters of this node's log database (fsyncs), for `/v1/cluster`.
    pub log_stats: LogStats,
    /// The leader's reading of the replicated clock, for stamping leases.
    pub clock: Arc<LeaderClock>,
    /// Consistent-hash circles of recently looked-up rings.
    pub placements: Arc<rings::PlacementCache>,
    /// The cluster this node belongs to (reported in `/v1/cluster`).
    pub identity: crate::raft::identity::ClusterIdentity,
    /// One leadership check for many linearizable reads.
    pub read_index: crate::raft::read_index::ReadIndex,
    /// One entry for many puts and deletes.
    pub proposer: crate::raft::proposer::Proposer,
}

pub fn router(app: AppState) -> Router {
    let v1 = Router::new()
        .route("/v1/kv", get(kv::list))
        .route("/v1/kv/", get(kv::empty_key).put(kv::empty_key).delete(kv::empty_key))
        .route("/v1/kv/{*key}", get(kv::get).put(kv::put).delete(kv::delete))
        .route("/v1/leases", post(leases::grant))
        .route("/v1/leases/{id}", get(leases::get).delete(leases::revoke))
        .route("/v1/leases/{id}/keepalive", post(leases::keep_alive))
        .route("/v1/locks/{name}", get(locks::get))
        .route("/v1/locks/{name}/acquire", post(locks::acquire))
        .route("/v1/locks/{name}/release", post(locks::release))
        .route("/v1/locks/{name}/check", get(locks::check))
        .route("/v1/queues", get(queues::list))
        .route("/v1/queues/{queue}", get(queues::get).put(queues::configure).delete(queues::delete))
        .route("/v1/queues/{queue}/messages", post(queues::enqueue))
        .route("/v1/queues/{queue}/receive", post(queues::receive))
        .route("/v1/queues/{queue}/ack", post(queues::ack))
        .route("/v1/queues/{queue}/nack", post(queues::nack))
        .route("/v1/queues/{queue}/extend", post(queues::extend))
        .route("/v1/topics", get(topics::list))
        .route("/v1/topics/{topic}", get(topics::get).put(topics::configure).delete(topics::delete))
        .route("/v1/topics/{topic}/messages", get(topics::read).post(topics::publish))
        .route("/v1/topics/{topic}/stream", get(topics::subscribe))
        .route("/v1/rings/{ring}", get(rings::get))
        .route("/v1/rings/{ring}/lookup", get(rings::lookup))
        .route("/v1/rings/{ring}/members/{member}", axum::routing::put(rings::join).delete(rings::leave))
        .route("/v1/watch", get(watch::watch))
        .route("/v1/cluster", get(cluster::status))
        .route("/v1/cluster/members", post(cluster::add_member))
        .route("/v1/cluster/snapshot", post(cluster::snapshot))
        .route("/v1/cluster/members/{id}", axum::routing::delete(cluster::remove_member))
        .route("/v1/auth", get(auth::status))
        .route("/v1/auth/enable", post(auth::enable))
        .route("/v1/auth/disable", post(auth::disable))
        .route("/v1/auth/whoami", get(auth::whoami))
        .route("/v1/auth/tokens", get(auth::list).post(auth::create))
        .route("/v1/auth/tokens/{id}", get(auth::get).delete(auth::revoke))
        .route("/health", get(cluster::health))
        .route("/ready", get(cluster::ready))
        .fallback(unknown_route)
        .method_not_allowed_fallback(wrong_method)
        .layer(DefaultBodyLimit::max(app.limits.body_bytes_max));
    v1.layer(middleware::from_fn_with_state(app.clone(), access::require_token))
        .layer(middleware::from_fn_with_state(app.clone(), forward::route_to_leader))
        .layer(middleware::from_fn_with_state(app.clone(), bound_per_client))
        .layer(middleware::from_fn_with_state(app.clone(), bound_in_flight))
        .layer(middleware::from_fn_with_state(app.limits.bodies(false), crate::server::read_body_in_time))
        .layer(middleware::from_fn_with_state(app.clone(), name_the_node))
        .with_state(app)
}

async fn unknown_route(request: Request) -> ApiError {
    ApiError::not_found("route_not_found", format!("no route for {} {}; see docs/api.md", request.method(), request.uri().path()))
}

async fn wrong_method(request: Request) -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        format!("{} is not supported on {}; see docs/api.md", request.method(), request.uri().path()),
    )
}

/// Adds `Concord-Node: <id>` unless a forwarded answer already names its server.
async fn name_the_node(State(app): State<AppState>, request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    response.headers_mut().entry(NODE_HEADER).or_insert_with(|| HeaderValue::from(app.node_id));
    response
}

/// A request a member forwarded: its client was counted by that member.
fn forwarded_by_member(app: &AppState, request: &Request, client: std::net::IpAddr) -> bool {
    if !request.headers().contains_key(forward::FORWARDED_BY) {
        return false;
    }
    let metrics = app.raft.metrics();
    let metrics = metrics.borrow();
    let mut members = metrics.membership_config.membership().nodes();
    members.any(|(_, node)| node.addr.parse::<std::net::SocketAddr>().is_ok_and(|addr| addr.ip() == client))
}

/// Holds one of the client's `requests_per_client_max` slots while its request is
/// served (`429` beyond it; see `client_slots`).
async fn bound_per_client(State(app): State<AppState>, request: Request, next: Next) -> Response {
    let client = request.extensions().get::<crate::server::ClientAddr>().map(|addr| addr.0.ip());
    let Some(client) = client.filter(|client| !forwarded_by_member(&app, &request, *client)) else {
        return next.run(request).await;
    };
    match app.client_requests.take(client) {
        Ok(_slot) => next.run(request).await,
        Err(refused) => refused.into_response(),
    }
}

async fn bound_in_flight(State(app): State<AppState>, request: Request, next: Next) -> Response {
    match app.in_flight.clone().try_acquire_owned() {
        Ok(_permit) => next.run(request).await,
        Err(_) => ApiError::unavailable(format!(
            "this node is serving its maximum of {} concurrent requests; retry shortly",
            app.limits.concurrent_requests_max
        ))
        .into_response(),
    }
}
