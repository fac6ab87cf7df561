//! Any node accepts any request. Writes and linearizable reads reach the leader at the
//! command level (`service::Core`: a follower sends the typed command, or asks for a
//! read index, over the peer transport), so every door works on every node. What is
//! left here are the cluster routes that need the leader's own view and its Raft
//! handle (`/v1/cluster` without `consistency=stale`, member changes, snapshots): a
//! follower forwards such a request once, as it came (method, path, query, headers,
//! body), to the leader it knows, and relays the answer; the leader's `Concord-Node`
//! header then names the node that served it. A forwarded request carries
//! `Concord-Forwarded-By` and is never forwarded again, so a stale view of the leader
//! cannot loop.
//!
//! Failure mapping keeps the definite/unknown contract: no leader known, or the
//! leader unreachable before the request was sent → 503 (not attempted); the
//! connection lost after sending a write → 504 (may have happened).

use std::time::Duration;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderName, Method, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::AppState;
use super::error::ApiError;

pub const FORWARDED_BY: &str = "concord-forwarded-by";
/// The API's description: the same on every node, so served by the node asked.
pub const OPENAPI_PATH: &str = "/v1/openapi.json";

/// The HTTP client a node uses to reach the leader (a pool of keep-alive connections).
#[derive(Clone)]
pub struct Forwarder {
    http: reqwest::Client,
    /// `http` or `https`, as the node's peers are reached.
    scheme: &'static str,
}

impl Forwarder {
    pub fn new(tls: Option<&crate::tls::ClientTls>) -> Result<Self, reqwest::Error> {
        Ok(Self { http: crate::http_client::pooled(Duration::from_millis(500), tls)?, scheme: crate::http_client::scheme(tls) })
    }
}

fn is_stale_read(request: &Request) -> bool {
    request.uri().query().is_some_and(|query| query.split('&').any(|pair| pair == "consistency=stale"))
}

/// A stream (SSE) is served by the node asked, from the entries it has applied:
/// relaying an endless answer through another node would tie up both.
pub fn is_stream(request: &Request) -> bool {
    let path = request.uri().path();
    // `/v1/topics/{topic}/stream`: a topic name is one (percent-encoded) segment.
    let topic_stream =
        path.strip_prefix("/v1/topics/").and_then(|rest| rest.split_once('/')).is_some_and(|(topic, tail)| !topic.is_empty() && tail == "stream");
    path == "/v1/watch" || topic_stream
}

/// The cluster routes: membership, snapshots and the leader's view of the cluster.
fn needs_leader(request: &Request) -> bool {
    let path = request.uri().path();
    (path == "/v1/cluster" || path.starts_with("/v1/cluster/")) && !is_stale_read(request)
}

/// Hop-by-hop headers that must not be relayed.
fn relayable(name: &HeaderName) -> bool {
    ![header::HOST, header::CONNECTION, header::CONTENT_LENGTH, header::TRANSFER_ENCODING, header::TE, header::UPGRADE].contains(name)
        && name.as_str() != "keep-alive"
}

pub async fn route_to_leader(State(app): State<AppState>, request: Request, next: Next) -> Response {
    if !needs_leader(&request) || request.headers().contains_key(FORWARDED_BY) {
        return next.run(request).await;
    }
    // Decide with the metrics borrowed, act after releasing them (the borrow is not Send).
    let leader = {
        let metrics = app.raft.metrics();
        let metrics = metrics.borrow();
        metrics.current_leader.map(|leader| (leader, metrics.membership_config.membership().get_node(&leader).map(|n| n.addr.clone())))
    };
    match leader {
        Some((leader, _)) if leader == app.node_id => next.run(request).await,
        None => ApiError::unavailable("the cluster has no leader right now (election in progress or no quorum); retry").into_response(),
        Some((leader, None)) => ApiError::unavailable(format!("leader {leader} is not in this node's membership yet; retry")).into_response(),
        Some((leader, Some(addr))) => forward(&app, leader, &addr, request).await.unwrap_or_else(IntoResponse::into_response),
    }
}

async fn forward(app: &AppState, leader: u64, addr: &str, request: Request) -> Result<Response, ApiError> {
    let (parts, body) = request.into_parts();
    let is_read = parts.method == Method::GET || parts.method == Method::HEAD;
    // `server::read_body_in_time` has already read the body, within its limits.
    let body = axum::body::to_bytes(body, app.limits.body_bytes_max)
        .await
        .map_err(|e| ApiError::internal(format!("cannot take the request body read before: {e}")))?;
    let path = parts.uri.path_and_query().map_or("/", |p| p.as_str());
    let mut outgoing = app
        .forwarder
        .http
        .request(parts.method.clone(), format!("{}://{addr}{path}", app.forwarder.scheme))
        .timeout(app.limits.forward_timeout())
        .header(FORWARDED_BY, app.node_id.to_string())
        .body(body);
    for (name, value) in parts.headers.iter().filter(|(name, _)| relayable(name)) {
        outgoing = outgoing.header(name, value);
    }
    let answer = match outgoing.send().await {
        Ok(answer) => answer,
        Err(e) if e.is_connect() => {
            return Err(ApiError::unavailable(format!("cannot reach leader {leader} at {addr}: {e}; retry")));
        }
        Err(e) if is_read => {
            return Err(ApiError::unavailable(format!("lost the connection to leader {leader}: {e}; retry")));
        }
        Err(e) => {
            return Err(ApiError::outcome_unknown(format!(
                "lost the connection to leader {leader} after forwarding the request ({e}); it may have applied. Retry with the same Idempotency-Key"
            )));
        }
    };
    let mut response = Response::builder().status(answer.status());
    for (name, value) in answer.headers().iter().filter(|(name, _)| relayable(name)) {
        response = response.header(name, value);
    }
    let status = answer.status();
    let bytes = answer.bytes().await.map_err(|e| {
        if is_read {
            ApiError::unavailable(format!("lost the leader's answer: {e}; retry"))
        } else {
            ApiError::outcome_unknown(format!("lost the leader's answer (status {status}): {e}; retry with the same Idempotency-Key"))
        }
    })?;
    response.body(Body::from(bytes)).map_err(|e| ApiError::internal(format!("cannot relay the leader's answer: {e}")))
}
