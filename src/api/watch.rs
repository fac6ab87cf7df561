//! `GET /v1/watch?prefix=P&from_revision=R`: a stream (SSE) of key changes.
//!
//! Every put and delete of a key under the prefix, from revision `R` on (the next
//! revision when omitted), in revision order and without gaps, read from the change
//! history (`state::history`). Each event is `event: put|delete` with JSON data; the
//! last event of each revision carries `id: <revision>`, so a client that reconnects
//! with `Last-Event-ID` resumes after the last whole revision it saw. Asking for a
//! revision the bounded history no longer holds is a 410 `compacted` (or, for a
//! watcher that fell that far behind, a final `error` event), with the first revision
//! still held. Served by the node asked, from the entries it has applied.

use axum::extract::{Extension, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::response::sse::Event as SseEvent;
use serde::Deserialize;
use serde_json::json;

use super::AppState;
use super::access::{self, Caller};
use super::error::{ApiError, ErrorBody};
use super::extract::ApiQuery;
use super::kv::value_json;
use super::stream::{self, Source, Step, error_event};
use crate::server::ClientAddr;
use crate::state::StateReader;
use crate::state::history::{Change, Event};
use crate::state::store::ViewError;

/// Most events one history read hands to the stream.
const EVENTS_PER_READ: usize = 1000;

#[derive(Deserialize, Debug, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct WatchQuery {
    #[serde(default)]
    prefix: String,
    from_revision: Option<u64>,
}

fn compacted(from: u64, first: u64) -> ApiError {
    ApiError::new(
        StatusCode::GONE,
        "compacted",
        format!("revision {from} is no longer in the change history, which starts at revision {first}; read the current state and watch from its revision + 1"),
    )
    .with_details(json!({ "first_revision": first }))
}

fn event_json(event: &Event) -> serde_json::Value {
    match &event.change {
        Change::Put { value, meta, lease } => {
            let (value, encoding) = value_json(value);
            json!({
                "type": "put", "key": event.key, "revision": event.revision, "value": value, "encoding": encoding,
                "create_revision": meta.create_revision, "mod_revision": meta.mod_revision, "version": meta.version, "lease": lease,
            })
        }
        Change::Delete => json!({ "type": "delete", "key": event.key, "revision": event.revision }),
    }
}

struct Watch {
    prefix: String,
    next_revision: u64,
}

impl Source for Watch {
    fn next(&mut self, reader: &StateReader) -> Result<Step, ViewError> {
        let read = reader.history(&self.prefix, self.next_revision, EVENTS_PER_READ)?;
        let (events, next) = match read.value {
            Err(first) => return Ok(Step::End(error_event(compacted(self.next_revision, first)))),
            Ok(found) => found,
        };
        self.next_revision = next;
        if events.is_empty() {
            // Caught up, or a stretch of other keys was skipped: then read on at once.
            return Ok(if next > read.revision { Step::Wait } else { Step::Events(Vec::new()) });
        }
        let sse = events
            .iter()
            .enumerate()
            .map(|(i, event)| {
                let sse =
                    SseEvent::default().event(if matches!(event.change, Change::Put { .. }) { "put" } else { "delete" }).data(event_json(event).to_string());
                // A read ends at a revision boundary, so the last event closes its revision.
                let closes_revision = events.get(i + 1).is_none_or(|after| after.revision != event.revision);
                if closes_revision { sse.id(event.revision.to_string()) } else { sse }
            })
            .collect();
        Ok(Step::Events(sse))
    }
}

#[utoipa::path(get, path = "/v1/watch", tag = "watch", operation_id = "watch", summary = "Stream every change under a prefix (server-sent events)", params(WatchQuery, ("Last-Event-ID" = Option<String>, Header, description = "Resume after this event id (sent by EventSource when it reconnects)")), responses((status = 200, description = "An event stream (text/event-stream)", body = Object), (status = "default", description = "An error; `code` says which (docs/api.md#error-codes)", body = ErrorBody)))]
pub async fn watch(
    State(app): State<AppState>,
    ApiQuery(query): ApiQuery<WatchQuery>,
    client: Option<Extension<ClientAddr>>,
    caller: Option<Extension<Caller>>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    access::read_prefix(&query.prefix)?;
    if query.prefix.len() > app.limits.key_bytes_max {
        return Err(ApiError::too_large(
            "key_too_large",
            format!("prefix is {} bytes, over the key limit of {}", query.prefix.len(), app.limits.key_bytes_max),
        ));
    }
    let resume = stream::last_event_id(&headers)?;
    let permit = stream::permit(&app, client)?;
    let position = app.reader.position()?;
    // A reconnecting client's Last-Event-ID wins over the URL it reconnects to.
    let from = resume.map(|last| last.saturating_add(1)).or(query.from_revision).unwrap_or(position.revision + 1);
    if from == 0 {
        return Err(ApiError::bad_request("invalid_revision", "from_revision starts at 1"));
    }
    if let Err(first) = app.reader.history(&query.prefix, from, 1)?.value {
        return Err(compacted(from, first));
    }
    Ok(stream::serve(&app, permit, caller, Watch { prefix: query.prefix, next_revision: from }))
}
