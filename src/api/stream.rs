//! Server-sent events: how the HTTP API serves the core's typed streams (`streams`:
//! watches, topic subscriptions).
//!
//! Each item of a stream becomes one or more events; the reason a stream ended becomes
//! a last `event: error` in the API's error shape, and the connection closes.
//! Streams are served by the node asked; each holds one of `Limits::streams_max`
//! permits (and one of its client's `streams_per_client_max`) until the client goes
//! away, and a comment line every 15 s keeps idle connections alive through proxies.

use std::convert::Infallible;

use axum::Extension;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use tokio::sync::OwnedSemaphorePermit;

use futures_util::{Stream, StreamExt};

use super::access::unauthenticated;
use super::client_slots::ClientSlot;
use crate::server::ClientAddr;

use super::AppState;
use super::error::ApiError;
use crate::streams::Ended;

/// What an open stream holds: one of the node's stream permits and, when the
/// client's address is known, one of that client's.
pub struct StreamPermit {
    _node: OwnedSemaphorePermit,
    _client: Option<ClientSlot>,
}

/// Takes a stream permit for `client`: `429` if that client holds its
/// `streams_per_client_max`, `503` if the node serves its `streams_max`.
pub fn permit(app: &AppState, client: Option<Extension<ClientAddr>>) -> Result<StreamPermit, ApiError> {
    let client = client.map(|Extension(ClientAddr(addr))| app.client_streams.take(addr.ip())).transpose()?;
    let node =
        app.streams.clone().try_acquire_owned().map_err(|_| {
            ApiError::unavailable(format!("this node serves its maximum of {} streams; retry later or on another node", app.limits.streams_max))
        })?;
    Ok(StreamPermit { _node: node, _client: client })
}

/// The `Last-Event-ID` a reconnecting client sends: the last id (a number) it saw.
pub fn last_event_id(headers: &axum::http::HeaderMap) -> Result<Option<u64>, ApiError> {
    let Some(value) = headers.get("last-event-id") else {
        return Ok(None);
    };
    let id = value.to_str().ok().and_then(|text| text.parse::<u64>().ok());
    id.map(Some).ok_or_else(|| ApiError::bad_request("invalid_last_event_id", "Last-Event-ID must be a number, as this stream sends it"))
}

/// An event that ends a stream with an error, in the API's error shape.
fn error_event(error: ApiError) -> Event {
    Event::default().event("error").json_data(error.body()).unwrap_or_default()
}

/// The error a stream's end is sent as; `source_error` says the source's own.
fn end_error<E>(ended: Ended<E>, source_error: impl FnOnce(E) -> ApiError) -> ApiError {
    match ended {
        Ended::Source(end) => source_error(end),
        Ended::TokenRevoked(id) => unauthenticated("token_revoked", format!("token {id}, which opened this stream, was revoked; reconnect with another token")),
        Ended::TokenRequired => {
            unauthenticated("token_required", "this node now requires tokens, and this stream was opened without one; reconnect with a token")
        }
        Ended::Failed(e) => ApiError::from(e),
    }
}

/// Answers with `stream` as server-sent events, each item as `events` makes them and
/// the end as an error event (`source_error` for the source's own reasons), holding
/// `permit` while the client reads.
pub fn serve<T, E>(
    permit: StreamPermit,
    stream: impl Stream<Item = Result<T, Ended<E>>> + Send + 'static,
    events: impl Fn(T) -> Vec<Event> + Send + 'static,
    source_error: impl Fn(E) -> ApiError + Send + 'static,
) -> Response {
    let sse = stream.flat_map(move |item| {
        // The closure owns the permit: it is held for as long as the stream exists.
        let _held = &permit;
        let sent = match item {
            Ok(item) => events(item),
            Err(ended) => vec![error_event(end_error(ended, &source_error))],
        };
        futures_util::stream::iter(sent.into_iter().map(Ok::<_, Infallible>))
    });
    Sse::new(sse).keep_alive(KeepAlive::new().interval(std::time::Duration::from_secs(15))).into_response()
}
