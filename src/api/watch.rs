//! `GET /v1/watch?prefix=P&from_revision=R`: a stream (SSE) of key changes.
//!
//! Every put and delete of a key under the prefix, from revision `R` on (the next
//! revision when omitted), in revision order and without gaps: the core's watch
//! (`streams::watch`) as server-sent events. Each event is `event: put|delete` with a
//! `KeyChange` as its JSON data; the
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
use super::access;
use super::error::{ApiError, ErrorBody};
use super::extract::ApiQuery;
use super::kv::value_string;
use super::stream;
use crate::server::ClientAddr;
use crate::state::history::{Change, Event};
use crate::streams::watch::{Compacted, RevisionChanges, Watch};
use crate::wire::watch::{ChangeType, KeyChange, KeyDeleted, KeyPut};

#[derive(Deserialize, Debug, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct WatchQuery {
    #[serde(default)]
    prefix: String,
    from_revision: Option<u64>,
}

fn compacted(Compacted { from, first_revision }: Compacted) -> ApiError {
    ApiError::new(
        StatusCode::GONE,
        "compacted",
        format!(
            "revision {from} is no longer in the change history, which starts at revision {first_revision}; read the current state and watch from its revision + 1"
        ),
    )
    .with_details(json!({ "first_revision": first_revision }))
}

fn key_change(event: Event) -> KeyChange {
    let Event { revision, key, change } = event;
    match change {
        Change::Put { value, meta, lease } => {
            let (value, encoding) = value_string(&value);
            KeyChange::Put(KeyPut {
                create_revision: meta.create_revision,
                encoding: encoding.to_string(),
                key,
                lease,
                mod_revision: meta.mod_revision,
                revision,
                r#type: ChangeType::Put,
                value,
                version: meta.version,
            })
        }
        Change::Delete => KeyChange::Delete(KeyDeleted { key, revision, r#type: ChangeType::Delete }),
    }
}

/// One revision's changes as events, the last with `id: <revision>`.
fn revision_events(RevisionChanges { revision, events }: RevisionChanges) -> Vec<SseEvent> {
    let count = events.len();
    events
        .into_iter()
        .enumerate()
        .map(|(i, event)| {
            let change = key_change(event);
            let name = match &change {
                KeyChange::Put(_) => "put",
                KeyChange::Delete(_) => "delete",
            };
            let sse = SseEvent::default().event(name).json_data(change).unwrap_or_default();
            if i + 1 == count { sse.id(revision.to_string()) } else { sse }
        })
        .collect()
}

#[utoipa::path(get, path = "/v1/watch", tag = "watch", operation_id = "watch", summary = "Stream every change under a prefix (server-sent events)", params(WatchQuery, ("Last-Event-ID" = Option<String>, Header, description = "Resume after this event id (sent by EventSource when it reconnects)")), responses((status = 200, description = "An event stream: each event's data is a key change", content_type = "text/event-stream", body = KeyChange), (status = "default", description = "An error; `code` says which (docs/api.md#error-codes)", body = ErrorBody)))]
pub async fn watch(
    State(app): State<AppState>,
    ApiQuery(query): ApiQuery<WatchQuery>,
    client: Option<Extension<ClientAddr>>,
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
    // A reconnecting client's Last-Event-ID wins over the URL it reconnects to.
    let from = resume.map(|last| last.saturating_add(1)).or(query.from_revision);
    if from == Some(0) {
        return Err(ApiError::bad_request("invalid_revision", "from_revision starts at 1"));
    }
    let watch = Watch::open(&app.reader, query.prefix, from)?.map_err(compacted)?;
    Ok(stream::serve(permit, app.core.follow(watch), revision_events, compacted))
}
