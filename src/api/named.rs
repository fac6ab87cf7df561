//! What queues and topics share at the API: the message size check, listing them
//! by name, page by page, and deleting one in bounded entries until it is gone.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use super::AppState;
use super::error::ApiError;
use super::kv::Consistency;
use super::outcome::rejection_error;
use crate::state::StateReader;
use crate::state::command::{Command, Outcome, Request};
use crate::state::kv;
use crate::state::queue::QueueOutcome;
use crate::state::reader::AtIndex;
use crate::state::store::{NamedPage, ViewError};
use crate::state::topic::TopicOutcome;
use crate::wire::queues::Deleted;

#[derive(Deserialize, Debug, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    after: Option<String>,
    limit: Option<usize>,
    #[serde(default)]
    #[param(inline)]
    consistency: Consistency,
}

/// Refuses a message body over the hard bound `max` (a queue's or topic's own
/// `max_message_bytes` is checked when it applies).
pub fn check_message_size(body: &[u8], max: u64) -> Result<(), ApiError> {
    if body.len() as u64 > max {
        return Err(ApiError::too_large("message_too_large", format!("the message is {} bytes, over the limit of {max}", body.len())));
    }
    Ok(())
}

/// One page of a listing, each item as its resource renders it.
pub struct Listed<I> {
    pub items: Vec<I>,
    pub more: bool,
    pub next_after: Option<String>,
    pub applied_index: u64,
}

/// Reads a listing: `read` one page after `query.after`, each item as `render`s it.
pub async fn list<T, I>(
    app: &AppState,
    query: ListQuery,
    read: impl Fn(&StateReader, Option<&str>, usize) -> Result<AtIndex<NamedPage<T>>, ViewError>,
    render: impl Fn(&str, &T) -> I,
) -> Result<Listed<I>, ApiError> {
    let limit = super::kv::page_limit(app, query.limit)?;
    if let Some(after) = &query.after {
        kv::validate_key(after, app.limits.key_bytes_max)?;
    }
    app.read_at(query.consistency).await?;
    let read = read(&app.reader, query.after.as_deref(), limit)?;
    let (page, more) = read.value;
    let next_after = if more { page.last().map(|(name, _)| name.clone()) } else { None };
    let items = page.iter().map(|(name, record)| render(name, record)).collect();
    Ok(Listed { items, more, next_after, applied_index: read.applied_index })
}

/// Why a delete takes no `Idempotency-Key`.
pub const DELETE_NOT_IDEMPOTENT: &str = "a delete takes several entries; repeat it instead (a repeat after success answers 404)";

/// Proposes `command` (a bounded delete) until the resource is gone; at most `rounds`.
pub async fn delete_in_rounds(app: &AppState, name: &str, rounds: u64, command: impl Fn() -> Command) -> Result<Response, ApiError> {
    let mut deleted_messages = 0;
    for _ in 0..rounds {
        let response = app.core.write(Request::from(command())).await?;
        let (n, gone) = match response.outcome {
            Outcome::Queue(QueueOutcome::Deleted { deleted_messages, deleted, .. })
            | Outcome::Topic(TopicOutcome::Deleted { deleted_messages, deleted, .. }) => (deleted_messages, deleted),
            // Not found on the first round is a 404; later, someone else finished it.
            Outcome::Rejected(rejection) if deleted_messages == 0 => return Err(rejection_error(rejection)),
            Outcome::Rejected(_) => (0, true),
            _ => return Err(ApiError::internal("a delete produced an unexpected outcome")),
        };
        deleted_messages += n;
        if gone {
            return Ok(Json(Deleted { name: name.to_string(), deleted: true, deleted_messages }).into_response());
        }
    }
    Err(ApiError::new(
        StatusCode::CONFLICT,
        "busy",
        format!("{name:?} is being refilled as fast as it is deleted ({deleted_messages} messages deleted so far); stop its producers and retry"),
    ))
}
