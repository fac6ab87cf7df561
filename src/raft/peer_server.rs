//! The server side of the peer transport: `/raft/*` routes on the node's listener:
//! openraft's RPCs (append, vote, snapshot) and a follower's calls at the command
//! level (`/raft/write`, `/raft/read_index`, see `service`; `/raft/admin`, see `admin`).
//!
//! Requests on a connection without a client certificate when `--peer-mtls` asks for
//! one (`tls`, 401), without the cluster secret (`peer_auth`, 401), from another cluster
//! (`identity`, 403) or in a protocol version this node does not speak (`protocol`,
//! 426) are refused before anything is decoded, and the body must arrive within the body read timeout
//! (`server::read_body_in_time`). Each handler decodes a frame in the version it came in (`frames`; bounded by the peer body limit), hands it to
//! openraft, and answers with the encoded `Result` in the same version. A frame that does not decode is a
//! 400 with a text reason and reaches openraft not at all.

use std::future::Future;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;

use super::Raft;
use super::frames::Frame;
use super::identity::{ClusterIdentity, require_same_cluster};
use super::peer_auth::{PeerSecret, require_peer_secret};
use crate::admin::Admin;
use crate::server::{BodyLimits, read_body_in_time};
use crate::service::Core;

pub fn routes(
    raft: Raft,
    core: Core,
    admin: Admin,
    body: BodyLimits,
    identity: ClusterIdentity,
    secret: PeerSecret,
    client_certificate_required: bool,
) -> Router {
    let administration = Router::new()
        .route(
            "/raft/admin",
            post(|State(admin): State<Admin>, headers: HeaderMap, body: Bytes| serve(headers, body, move |req| async move { admin.run_forwarded(req).await })),
        )
        .with_state(admin);
    // A follower's calls at the command level (`raft::leader_link`).
    let commands = Router::new()
        .route(
            "/raft/write",
            post(|State(core): State<Core>, headers: HeaderMap, body: Bytes| serve(headers, body, move |req| async move { core.write_forwarded(req).await })),
        )
        .route(
            "/raft/read_index",
            post(|State(core): State<Core>, headers: HeaderMap, body: Bytes| {
                serve(headers, body, move |authority| async move { core.read_index_forwarded(authority).await })
            }),
        )
        .with_state(core);
    Router::new()
        .route(
            "/raft/append",
            post(|State(raft): State<Raft>, headers: HeaderMap, body: Bytes| serve(headers, body, move |req| async move { raft.append_entries(req).await })),
        )
        .route(
            "/raft/vote",
            post(|State(raft): State<Raft>, headers: HeaderMap, body: Bytes| serve(headers, body, move |req| async move { raft.vote(req).await })),
        )
        .route(
            "/raft/snapshot",
            post(|State(raft): State<Raft>, headers: HeaderMap, body: Bytes| serve(headers, body, move |req| async move { raft.install_snapshot(req).await })),
        )
        .with_state(raft)
        .merge(commands)
        .merge(administration)
        .layer(DefaultBodyLimit::max(body.bytes_max))
        .layer(axum::middleware::from_fn_with_state(body, read_body_in_time))
        .layer(axum::middleware::from_fn_with_state(identity, require_same_cluster))
        .layer(axum::middleware::from_fn(super::protocol::require_known_protocol))
        .layer(axum::middleware::from_fn_with_state(secret, require_peer_secret))
        .layer(axum::middleware::from_fn_with_state(client_certificate_required, crate::tls::require_client_certificate))
}

/// Decodes the frame in the version its headers name (`protocol::require_known_protocol`
/// let only a version spoken here through), and answers in the same version.
async fn serve<Req, Answer, F, Fut>(headers: HeaderMap, body: Bytes, handle: F) -> Response
where
    Req: Frame,
    Answer: Frame,
    F: FnOnce(Req) -> Fut,
    Fut: Future<Output = Answer>,
{
    let version = match super::protocol::check(&headers) {
        Ok(version) => version,
        Err(message) => return (StatusCode::UPGRADE_REQUIRED, message).into_response(),
    };
    let request = match Req::decode_in(&body, version) {
        Ok(request) => request,
        Err(e) => return (StatusCode::BAD_REQUEST, format!("undecodable peer frame: {e}")).into_response(),
    };
    match handle(request).await.encode_in(version) {
        Ok(bytes) => ([(header::CONTENT_TYPE, "application/octet-stream")], bytes).into_response(),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, format!("cannot encode answer: {e}")).into_response(),
    }
}
