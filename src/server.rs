//! The node's HTTP listener: accepts connections for the client API and the peer
//! routes, and keeps any one client from exhausting the node.
//!
//! `axum::serve` puts no bound on connections and no deadline on a request's headers,
//! so a client that opens thousands of connections, or sends its headers one byte at
//! a time (slow loris), holds memory and file descriptors for as long as it likes.
//! This loop serves the same router with four bounds (`ConnectionLimits`):
//!
//! - at most `connections_max` open connections: beyond it a node stops accepting,
//!   and new connections wait in the kernel's accept queue until one closes;
//! - a request's headers must arrive within `header_read_timeout_ms`, counted from
//!   the moment the connection waits for them (so an idle keep-alive connection is
//!   closed after the same time), else the connection is closed;
//! - headers larger than `header_bytes_max` get `431` and the connection is closed;
//! - a request's body must arrive within `body_read_timeout_ms` (`read_body_in_time`,
//!   a layer on both routers), else `408`; its size stays bounded by each router's
//!   body limit (`413`).
//!
//! Every request carries its connection's address (`ClientAddr`), for the per-client
//! bounds (`api::client_slots`). With TLS (`tls`), each connection's handshake runs in its own task within the
//! header timeout, and its requests carry whether it presented a client certificate.
//!
//! Streams (watches, subscriptions) and long polls are not cut: the deadlines cover
//! reading the request, never writing the answer.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http_body_util::{BodyExt, Limited};
use hyper::body::Body as _;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};
use tokio_rustls::TlsAcceptor;

use crate::api::error::ApiError;

/// How long open connections get to finish their requests once the node stops.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(5);
/// Pause after a failed accept (out of file descriptors, say) before the next one.
const ACCEPT_RETRY_DELAY: Duration = Duration::from_millis(50);

/// The address a request's connection came from (an extension on every request).
#[derive(Clone, Copy, Debug)]
pub struct ClientAddr(pub std::net::SocketAddr);

/// The bounds on connections and on reading requests.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConnectionLimits {
    pub connections_max: usize,
    pub header_read_timeout: Duration,
    pub header_bytes_max: usize,
}

/// Serves `router` on `listener` (over TLS with `tls`) until `stop` turns true, then
/// lets open connections finish for up to `DRAIN_TIMEOUT`.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: ConnectionLimits,
    tls: Option<TlsAcceptor>,
    mut stop: watch::Receiver<bool>,
) -> std::io::Result<()> {
    let stopping = async move {
        let _ = stop.wait_for(|stop| *stop).await;
    };
    tokio::pin!(stopping);
    let open = Arc::new(Semaphore::new(limits.connections_max));
    let graceful = GracefulShutdown::new();
    let mut http = http1::Builder::new();
    http.timer(TokioTimer::new()).header_read_timeout(limits.header_read_timeout).max_header_size(limits.header_bytes_max);
    loop {
        // A free slot first: without one the node does not accept at all.
        let slot = tokio::select! {
            slot = open.clone().acquire_owned() => slot.map_err(std::io::Error::other)?,
            () = &mut stopping => break,
        };
        let (stream, remote) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed; retrying");
                    tokio::time::sleep(ACCEPT_RETRY_DELAY).await;
                    continue;
                }
            },
            () = &mut stopping => break,
        };
        // Answers are small and latency matters more than packet count.
        let _ = stream.set_nodelay(true);
        let router = router.clone().layer(axum::Extension(ClientAddr(remote)));
        let Some(acceptor) = &tls else {
            let connection = graceful.watch(http.serve_connection(TokioIo::new(stream), TowerToHyperService::new(router)));
            tokio::spawn(async move {
                if let Err(e) = connection.await {
                    tracing::debug!(error = %e, "connection ended with an error");
                }
                drop(slot);
            });
            continue;
        };
        let (acceptor, http, watcher) = (acceptor.clone(), http.clone(), graceful.watcher());
        let handshake_timeout = limits.header_read_timeout;
        tokio::spawn(async move {
            // The handshake is bounded like a request head: a silent client cannot
            // hold the slot.
            let stream = match tokio::time::timeout(handshake_timeout, acceptor.accept(stream)).await {
                Ok(Ok(stream)) => stream,
                Ok(Err(e)) => return tracing::debug!(error = %e, "TLS handshake failed"),
                Err(_) => return tracing::debug!("TLS handshake timed out"),
            };
            // A certificate presented has been verified against the CA by the handshake.
            let presented = stream.get_ref().1.peer_certificates().is_some_and(|chain| !chain.is_empty());
            let router = router.layer(axum::Extension(crate::tls::ClientCertificate { presented }));
            let connection = watcher.watch(http.serve_connection(TokioIo::new(stream), TowerToHyperService::new(router)));
            if let Err(e) = connection.await {
                tracing::debug!(error = %e, "connection ended with an error");
            }
            drop(slot);
        });
    }
    if tokio::time::timeout(DRAIN_TIMEOUT, graceful.shutdown()).await.is_err() {
        tracing::info!("connections still open after the drain timeout are dropped");
    }
    Ok(())
}

/// The body bound of one router: its size limit and how long it may take to arrive.
#[derive(Clone, Copy, Debug)]
pub struct BodyLimits {
    pub bytes_max: usize,
    pub read_timeout: Duration,
}

/// Reads the whole request body before the handler runs, within `read_timeout` (else
/// `408`) and `bytes_max` (else `413`); the handler then gets it from memory.
pub async fn read_body_in_time(State(limits): State<BodyLimits>, request: Request, next: Next) -> Response {
    // Most requests (every GET) have no body: no timer, no copy.
    if request.body().is_end_stream() {
        return next.run(request).await;
    }
    let (parts, body) = request.into_parts();
    let read = tokio::time::timeout(limits.read_timeout, Limited::new(body, limits.bytes_max).collect()).await;
    let bytes = match read {
        Ok(Ok(collected)) => collected.to_bytes(),
        Ok(Err(e)) if e.downcast_ref::<http_body_util::LengthLimitError>().is_some() => {
            return ApiError::too_large("body_too_large", format!("request body exceeds {} bytes", limits.bytes_max)).into_response();
        }
        Ok(Err(e)) => return ApiError::bad_request("invalid_body", format!("cannot read the request body: {e}")).into_response(),
        Err(_) => {
            let message = format!("the request body did not arrive within {} ms; send it at once", limits.read_timeout.as_millis());
            let mut response = ApiError::new(StatusCode::REQUEST_TIMEOUT, "body_timeout", message).into_response();
            // The rest of the body may still be on its way: this connection is done.
            response.headers_mut().insert(header::CONNECTION, header::HeaderValue::from_static("close"));
            return response;
        }
    };
    next.run(Request::from_parts(parts, Body::from(bytes))).await
}
