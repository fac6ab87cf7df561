//! Server-sent event streams (watches, topic subscriptions): one loop for all.
//!
//! A `Source` reads what is new from this node's applied state. The loop sends what it
//! returns, and when there is nothing new it waits until this node applies another
//! entry (Raft's metrics change), so a stream never polls on a timer and never misses
//! a change (a change made between a read and the wait wakes the wait at once).
//! Streams are served by the node asked; each holds one of
//! `Limits::streams_max` permits until the client goes away, and a comment line every
//! 15 s keeps idle connections alive through proxies.
//!
//! A stream opened with a token (`access::Caller`) ends with a `401 token_revoked`
//! error event once this node applies that token's revoke, and a stream opened while
//! no token was required ends with `401 token_required` once this node applies the
//! enable: the check runs again whenever the stream is woken, which every applied
//! entry does, the revoke and the enable included. Token ids never repeat, so "the id
//! still exists" is "not revoked".

use std::collections::VecDeque;
use std::convert::Infallible;

use axum::Extension;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use tokio::sync::OwnedSemaphorePermit;

use super::access::{Caller, unauthenticated};
use super::client_slots::ClientSlot;
use crate::server::ClientAddr;

use super::AppState;
use super::error::ApiError;
use crate::state::StateReader;
use crate::state::store::ViewError;

/// What a source has for the stream now.
pub enum Step {
    /// Events to send (possibly none, when the source wants to be asked again at once).
    Events(Vec<Event>),
    /// Nothing new: ask again after the next applied entry.
    Wait,
    /// Send this last event and close the stream.
    End(Event),
}

pub trait Source: Send + 'static {
    fn next(&mut self, reader: &StateReader) -> Result<Step, ViewError>;
}

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
pub fn error_event(error: ApiError) -> Event {
    let body = serde_json::json!({ "error": { "code": error.code, "message": error.message, "details": error.details } });
    Event::default().event("error").data(body.to_string())
}

struct Driver<S> {
    source: S,
    pending: VecDeque<Event>,
    reader: StateReader,
    applied: tokio::sync::watch::Receiver<openraft::RaftMetrics<crate::raft::NodeId, crate::raft::Node>>,
    /// The id of the token that opened the stream, if one did.
    token_id: Option<u64>,
    ended: bool,
    _permit: StreamPermit,
}

impl<S: Source> Driver<S> {
    /// The next event, or `None` when the stream is over.
    async fn next_event(&mut self) -> Option<Event> {
        loop {
            if let Some(event) = self.pending.pop_front() {
                return Some(event);
            }
            if self.ended {
                return None;
            }
            if let Some(refused) = self.access_ended() {
                self.pending.push_back(error_event(refused));
                self.ended = true;
                continue;
            }
            match self.source.next(&self.reader) {
                Ok(Step::Events(events)) => self.pending.extend(events),
                // A snapshot being installed: the state is back after the next entry.
                Ok(Step::Wait) | Err(ViewError::Installing) => {
                    if self.applied.changed().await.is_err() {
                        return None;
                    }
                }
                Ok(Step::End(event)) => {
                    self.pending.push_back(event);
                    self.ended = true;
                }
                Err(e) => {
                    self.pending.push_back(error_event(ApiError::from(e)));
                    self.ended = true;
                }
            }
        }
    }
}

impl<S> Driver<S> {
    /// The error that ends the stream when tokens are required and the stream was
    /// opened without one, or its token is gone. A read that fails (a snapshot being
    /// installed) decides nothing: the source meets the same state and waits for the
    /// next entry, and the check runs again.
    fn access_ended(&self) -> Option<ApiError> {
        if !self.reader.tokens_required() {
            return None;
        }
        let Some(id) = self.token_id else {
            return Some(unauthenticated("token_required", "this node now requires tokens, and this stream was opened without one; reconnect with a token"));
        };
        match self.reader.token(id) {
            Ok(found) if found.value.is_none() => {
                Some(unauthenticated("token_revoked", format!("token {id}, which opened this stream, was revoked; reconnect with another token")))
            }
            _ => None,
        }
    }
}

/// Answers with the stream of `source`'s events, for as long as `caller`'s token (if
/// the request carried one) is not revoked.
pub fn serve(app: &AppState, permit: StreamPermit, caller: Option<Extension<Caller>>, source: impl Source) -> Response {
    let token_id = caller.map(|Extension(caller)| caller.id);
    let driver = Driver { source, pending: VecDeque::new(), reader: app.reader.clone(), applied: app.raft.metrics(), token_id, ended: false, _permit: permit };
    let events = futures_util::stream::unfold(driver, |mut driver| async move {
        let event = driver.next_event().await?;
        Some((Ok::<_, Infallible>(event), driver))
    });
    Sse::new(events).keep_alive(KeepAlive::new().interval(std::time::Duration::from_secs(15))).into_response()
}
