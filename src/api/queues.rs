//! `/v1/queues`: durable work queues (see `state::queue` for the model).
//!
//! Enqueue takes the raw body as the payload. Receive hands out messages with a
//! receipt `"<id>.<delivery>"`; ack, nack and extend take it back and answer 409
//! `stale_receipt` once that delivery is no longer in flight. Receive long-polls up to
//! `wait_ms`: it proposes only when this node, after confirming it leads (ReadIndex),
//! sees a visible message, so an empty poll writes nothing to the log. Receives are
//! not idempotent (a retried receive gets other messages; unacknowledged ones come
//! back after their visibility timeout), so they take no `Idempotency-Key`.

use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use super::AppState;
use super::access;
use super::blocking::{BlockingReadQuery, wait_bound, wait_past, wait_until};
use super::error::{ApiError, ErrorBody};
use super::extract::{ApiBody, ApiJson, ApiPath, ApiQuery};
use super::kv::{Consistency, WriteQuery, value_string};
use super::named;
use super::outcome::{propose, refuse_idempotency_key};
use crate::state::command::{Command, Outcome, Receipt};
use crate::state::kv;
use crate::state::queue::{self, Delivered, QueueRecord, QueueSettings};
use crate::state::queue::{QueueCommand, QueueOutcome};
use crate::wire::queues::{
    self as wire, Acked, DeadLetteredFrom, Deleted, Delivery, Enqueued, Extended, Nacked, QueueConfigured, QueueCounts, QueueListing, QueueSettingsBody,
    QueueStatus, Received,
};

#[derive(Deserialize, Debug, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct EnqueueQuery {
    #[serde(default)]
    delay_ms: u64,
}

#[derive(Deserialize, Debug, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReceiveBody {
    #[serde(default = "one")]
    max: u32,
    visibility_ms: Option<u64>,
    /// Long poll: how long to wait for a message when none is visible (default 0).
    #[serde(default)]
    wait_ms: u64,
}

fn one() -> u32 {
    1
}

#[derive(Deserialize, Debug, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AckBody {
    receipt: String,
}

#[derive(Deserialize, Debug, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NackBody {
    receipt: String,
    #[serde(default)]
    delay_ms: u64,
}

#[derive(Deserialize, Debug, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ExtendBody {
    receipt: String,
    visibility_ms: u64,
}

/// Parses `"<id>.<delivery>"`.
pub(super) fn parse_receipt(text: &str) -> Result<Receipt, ApiError> {
    let bad = || ApiError::bad_request("invalid_receipt", format!("receipt {text:?} is not of the form <message id>.<delivery>, as receive returns it"));
    let (id, delivery) = text.split_once('.').ok_or_else(bad)?;
    Ok(Receipt { id: id.parse().map_err(|_| bad())?, delivery: delivery.parse().map_err(|_| bad())? })
}

pub(super) fn receipt_text(receipt: Receipt) -> String {
    format!("{}.{}", receipt.id, receipt.delivery)
}

/// Checks a duration in ms against the queue bound (1 ..= 12 h, or 0 when `zero_ok`).
fn check_ms(name: &str, ms: u64, zero_ok: bool) -> Result<u64, ApiError> {
    let min = u64::from(!zero_ok);
    if !(min..=queue::VISIBILITY_MS_MAX).contains(&ms) {
        return Err(ApiError::bad_request("invalid_duration", format!("{name} must be between {min} and {} ms, got {ms}", queue::VISIBILITY_MS_MAX)));
    }
    Ok(ms)
}

fn settings_body(settings: &QueueSettings) -> wire::QueueSettings {
    wire::QueueSettings {
        visibility_ms: settings.visibility_ms,
        max_deliveries: settings.max_deliveries,
        dead_letter_queue: settings.dead_letter_queue.clone(),
        max_length: settings.max_length,
        max_message_bytes: settings.max_message_bytes,
    }
}

fn counts(name: &str, record: &QueueRecord) -> QueueCounts {
    QueueCounts {
        name: name.to_string(),
        visible: record.visible,
        in_flight: record.in_flight,
        delayed: record.delayed,
        length: record.length(),
        dead_lettered: record.dead_lettered,
        index: record.version,
    }
}

fn delivery(message: &Delivered) -> Delivery {
    let (payload, encoding) = value_string(&message.payload);
    Delivery {
        id: message.receipt.id,
        receipt: receipt_text(message.receipt),
        delivery: message.deliveries,
        payload,
        encoding: encoding.to_string(),
        enqueued_at_ms: message.enqueued_at_ms,
        in_flight_until_ms: message.until_ms,
        dead_lettered_from: message.dead_lettered_from.as_ref().map(|(queue, id)| DeadLetteredFrom { queue: queue.clone(), id: *id }),
    }
}

fn queue_answer(outcome: Outcome) -> Option<Response> {
    Some(match outcome {
        Outcome::Queue(QueueOutcome::Configured { queue, created, settings }) => {
            let status = if created { StatusCode::CREATED } else { StatusCode::OK };
            (status, Json(QueueConfigured { name: queue, created, settings: settings_body(&settings) })).into_response()
        }
        Outcome::Queue(QueueOutcome::Enqueued { queue, id }) => (StatusCode::CREATED, Json(Enqueued { queue, id })).into_response(),
        Outcome::Queue(QueueOutcome::Acked { queue, id }) => Json(Acked { queue, id, acked: true }).into_response(),
        Outcome::Queue(QueueOutcome::Nacked { queue, id, dead_lettered }) => Json(Nacked { queue, id, dead_lettered }).into_response(),
        Outcome::Queue(QueueOutcome::Extended { queue, receipt, until_ms }) => {
            Json(Extended { queue, receipt: receipt_text(receipt), in_flight_until_ms: until_ms }).into_response()
        }
        _ => return None,
    })
}

#[utoipa::path(put, path = "/v1/queues/{queue}", tag = "queues", operation_id = "queue_configure", summary = "Create a queue or replace its settings", params(("queue" = String, Path, description = "The queue name"), ("Idempotency-Key" = Option<String>, Header, description = "Makes retries of this write apply at most once")), request_body = QueueSettingsBody, responses((status = 200, description = "Replaced", body = QueueConfigured), (status = 201, description = "Created", body = QueueConfigured), (status = "default", description = "An error; `code` says which (docs/api.md#error-codes)", body = ErrorBody)))]
pub async fn configure(
    State(app): State<AppState>,
    ApiPath(name): ApiPath<String>,
    ApiQuery(_): ApiQuery<WriteQuery>,
    headers: HeaderMap,
    ApiJson(body): ApiJson<QueueSettingsBody>,
) -> Result<Response, ApiError> {
    kv::validate_key(&name, app.limits.key_bytes_max)?;
    if let Some(dlq) = &body.dead_letter_queue {
        // Dead-lettering writes to that queue: the command names it (`QueueCommand::access`).
        kv::validate_key(dlq, app.limits.key_bytes_max)?;
    }
    let defaults = QueueSettings::default();
    let settings = QueueSettings {
        visibility_ms: body.visibility_ms.unwrap_or(defaults.visibility_ms),
        max_deliveries: body.max_deliveries,
        dead_letter_queue: body.dead_letter_queue,
        max_length: body.max_length.unwrap_or(defaults.max_length),
        max_message_bytes: body.max_message_bytes.unwrap_or(defaults.max_message_bytes),
    };
    if let Some(reason) = settings.invalid(&name) {
        return Err(ApiError::bad_request("invalid_queue_settings", format!("queue {name:?}: {reason}")));
    }
    propose(&app, &headers, Command::Queue(QueueCommand::Configure { queue: name, settings }), queue_answer).await
}

#[utoipa::path(post, path = "/v1/queues/{queue}/messages", tag = "queues", operation_id = "queue_enqueue", summary = "Enqueue a message", params(("queue" = String, Path, description = "The queue name"), EnqueueQuery, ("Idempotency-Key" = Option<String>, Header, description = "Makes retries of this write apply at most once")), request_body(content = String, content_type = "application/octet-stream", description = "The raw bytes"), responses((status = 201, description = "Enqueued", body = Enqueued), (status = "default", description = "An error; `code` says which (docs/api.md#error-codes)", body = ErrorBody)))]
pub async fn enqueue(
    State(app): State<AppState>,
    ApiPath(name): ApiPath<String>,
    ApiQuery(query): ApiQuery<EnqueueQuery>,
    headers: HeaderMap,
    ApiBody(body): ApiBody,
) -> Result<Response, ApiError> {
    kv::validate_key(&name, app.limits.key_bytes_max)?;
    let delay_ms = check_ms("delay_ms", query.delay_ms, true)?;
    named::check_message_size(&body, queue::MESSAGE_BYTES_MAX)?;
    propose(&app, &headers, Command::Queue(QueueCommand::Enqueue { queue: name, payload: body.to_vec(), delay_ms }), queue_answer).await
}

/// True when this node's state shows a visible message in `name`.
fn visible_here(reader: &crate::state::StateReader, name: &str) -> Result<bool, crate::state::store::ViewError> {
    Ok(reader.queue(name)?.value.is_some_and(|q| q.record.visible > 0))
}

/// `visible_here` after a linearizable confirmation, so an empty answer is never stale.
async fn has_visible(app: &AppState, name: &str) -> Result<bool, ApiError> {
    app.read_at(Consistency::Linearizable).await?;
    Ok(visible_here(&app.reader, name)?)
}

#[utoipa::path(post, path = "/v1/queues/{queue}/receive", tag = "queues", operation_id = "queue_receive", summary = "Take visible messages and their receipts", params(("queue" = String, Path, description = "The queue name")), request_body = ReceiveBody, responses((status = 200, description = "The messages (maybe none)", body = Received), (status = "default", description = "An error; `code` says which (docs/api.md#error-codes)", body = ErrorBody)))]
pub async fn receive(
    State(app): State<AppState>,
    ApiPath(name): ApiPath<String>,
    ApiQuery(_): ApiQuery<WriteQuery>,
    headers: HeaderMap,
    ApiJson(body): ApiJson<ReceiveBody>,
) -> Result<Response, ApiError> {
    kv::validate_key(&name, app.limits.key_bytes_max)?;
    refuse_idempotency_key(&headers, "a retried receive gets other messages, and unacknowledged ones come back after their visibility timeout")?;
    if !(1..=queue::RECEIVE_MAX).contains(&body.max) {
        return Err(ApiError::bad_request("invalid_max", format!("max must be between 1 and {}, got {}", queue::RECEIVE_MAX, body.max)));
    }
    let visibility_ms = body.visibility_ms.map(|ms| check_ms("visibility_ms", ms, false)).transpose()?;
    let deadline = tokio::time::Instant::now() + wait_bound(&app, Some(body.wait_ms))?;
    loop {
        if has_visible(&app, &name).await? {
            let command = Command::Queue(QueueCommand::Receive { queue: name.clone(), max: body.max, visibility_ms });
            let response = app.core.write(command.into()).await?;
            let Outcome::Queue(QueueOutcome::Received { messages, .. }) = response.outcome else {
                return Err(ApiError::internal("receive produced an unexpected outcome"));
            };
            // Another consumer may have taken what was visible: then wait on.
            if !messages.is_empty() || tokio::time::Instant::now() >= deadline {
                return Ok(Json(Received { queue: name, messages: messages.iter().map(delivery).collect() }).into_response());
            }
        }
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        if left.is_zero() {
            return Ok(Json(Received { queue: name, messages: Vec::new() }).into_response());
        }
        let visible = |reader: &crate::state::StateReader| visible_here(reader, &name);
        // Looks again at least every second: a leadership change may have moved the queue.
        wait_until(&app, left.min(Duration::from_secs(1)), visible).await?;
    }
}

#[utoipa::path(post, path = "/v1/queues/{queue}/ack", tag = "queues", operation_id = "queue_ack", summary = "Delete the message of an in-flight delivery", params(("queue" = String, Path, description = "The queue name"), ("Idempotency-Key" = Option<String>, Header, description = "Makes retries of this write apply at most once")), request_body = AckBody, responses((status = 200, description = "Done", body = Acked), (status = "default", description = "An error; `code` says which (docs/api.md#error-codes)", body = ErrorBody)))]
pub async fn ack(
    State(app): State<AppState>,
    ApiPath(name): ApiPath<String>,
    ApiQuery(_): ApiQuery<WriteQuery>,
    headers: HeaderMap,
    ApiJson(body): ApiJson<AckBody>,
) -> Result<Response, ApiError> {
    kv::validate_key(&name, app.limits.key_bytes_max)?;
    let receipt = parse_receipt(&body.receipt)?;
    propose(&app, &headers, Command::Queue(QueueCommand::Ack { queue: name, receipt }), queue_answer).await
}

#[utoipa::path(post, path = "/v1/queues/{queue}/nack", tag = "queues", operation_id = "queue_nack", summary = "Give a delivery back", params(("queue" = String, Path, description = "The queue name"), ("Idempotency-Key" = Option<String>, Header, description = "Makes retries of this write apply at most once")), request_body = NackBody, responses((status = 200, description = "Done", body = Nacked), (status = "default", description = "An error; `code` says which (docs/api.md#error-codes)", body = ErrorBody)))]
pub async fn nack(
    State(app): State<AppState>,
    ApiPath(name): ApiPath<String>,
    ApiQuery(_): ApiQuery<WriteQuery>,
    headers: HeaderMap,
    ApiJson(body): ApiJson<NackBody>,
) -> Result<Response, ApiError> {
    kv::validate_key(&name, app.limits.key_bytes_max)?;
    let receipt = parse_receipt(&body.receipt)?;
    let delay_ms = check_ms("delay_ms", body.delay_ms, true)?;
    propose(&app, &headers, Command::Queue(QueueCommand::Nack { queue: name, receipt, delay_ms }), queue_answer).await
}

#[utoipa::path(post, path = "/v1/queues/{queue}/extend", tag = "queues", operation_id = "queue_extend", summary = "Keep a delivery in flight longer", params(("queue" = String, Path, description = "The queue name"), ("Idempotency-Key" = Option<String>, Header, description = "Makes retries of this write apply at most once")), request_body = ExtendBody, responses((status = 200, description = "Done", body = Extended), (status = "default", description = "An error; `code` says which (docs/api.md#error-codes)", body = ErrorBody)))]
pub async fn extend(
    State(app): State<AppState>,
    ApiPath(name): ApiPath<String>,
    ApiQuery(_): ApiQuery<WriteQuery>,
    headers: HeaderMap,
    ApiJson(body): ApiJson<ExtendBody>,
) -> Result<Response, ApiError> {
    kv::validate_key(&name, app.limits.key_bytes_max)?;
    let receipt = parse_receipt(&body.receipt)?;
    let visibility_ms = check_ms("visibility_ms", body.visibility_ms, false)?;
    propose(&app, &headers, Command::Queue(QueueCommand::Extend { queue: name, receipt, visibility_ms }), queue_answer).await
}

/// Deletes the queue and its messages, in bounded entries (`queue::DELETE_BATCH_MAX`
/// messages each) until it is gone.
#[utoipa::path(delete, path = "/v1/queues/{queue}", tag = "queues", operation_id = "queue_delete", summary = "Delete a queue and its messages", params(("queue" = String, Path, description = "The queue name")), responses((status = 200, description = "Done", body = Deleted), (status = "default", description = "An error; `code` says which (docs/api.md#error-codes)", body = ErrorBody)))]
pub async fn delete(
    State(app): State<AppState>,
    ApiPath(name): ApiPath<String>,
    ApiQuery(_): ApiQuery<WriteQuery>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    kv::validate_key(&name, app.limits.key_bytes_max)?;
    refuse_idempotency_key(&headers, named::DELETE_NOT_IDEMPOTENT)?;
    // Enough rounds for a full queue and what dead-lettering may have added.
    let rounds = 2 * queue::LENGTH_MAX / queue::DELETE_BATCH_MAX as u64 + 2;
    named::delete_in_rounds(&app, &name, rounds, || Command::Queue(QueueCommand::Delete { queue: name.clone() })).await
}

#[utoipa::path(get, path = "/v1/queues/{queue}", tag = "queues", operation_id = "queue_get", summary = "Read a queue's counters and settings", params(("queue" = String, Path, description = "The queue name"), BlockingReadQuery), responses((status = 200, description = "The queue", body = QueueStatus), (status = "default", description = "An error; `code` says which (docs/api.md#error-codes)", body = ErrorBody)))]
pub async fn get(State(app): State<AppState>, ApiPath(name): ApiPath<String>, ApiQuery(query): ApiQuery<BlockingReadQuery>) -> Result<Response, ApiError> {
    access::read_name("queue", &name)?;
    kv::validate_key(&name, app.limits.key_bytes_max)?;
    let version = |reader: &crate::state::StateReader| Ok(reader.queue(&name)?.value.map_or(0, |q| q.record.version));
    wait_past(&app, query.index, query.wait_ms, version).await?;
    app.read_at(query.consistency).await?;
    let read = app.reader.queue(&name)?;
    let Some(view) = read.value else {
        return Err(ApiError::not_found("queue_not_found", format!("queue {name:?} does not exist")));
    };
    // The leader's reading of the clock includes time not yet ticked.
    let now_ms = app.clock.now_ms().unwrap_or(read.clock_ms).max(read.clock_ms);
    let QueueCounts { name, visible, in_flight, delayed, length, dead_lettered, index } = counts(&name, &view.record);
    Ok(Json(QueueStatus {
        name,
        visible,
        in_flight,
        delayed,
        length,
        dead_lettered,
        index,
        settings: settings_body(&view.record.settings),
        next_id: view.record.next_id,
        oldest_enqueued_at_ms: view.oldest_enqueued_at_ms,
        oldest_age_ms: view.oldest_enqueued_at_ms.map(|at| now_ms.saturating_sub(at)),
        clock_ms: now_ms,
        applied_index: read.applied_index,
    })
    .into_response())
}

#[utoipa::path(get, path = "/v1/queues", tag = "queues", operation_id = "queue_list", summary = "List queues by name", params(named::ListQuery), responses((status = 200, description = "One page of queues", body = QueueListing), (status = "default", description = "An error; `code` says which (docs/api.md#error-codes)", body = ErrorBody)))]
pub async fn list(State(app): State<AppState>, ApiQuery(query): ApiQuery<named::ListQuery>) -> Result<Response, ApiError> {
    // Queues are named by their users: listing them all is listing under "".
    access::read_prefix("")?;
    let page = named::list(&app, query, |reader, after, limit| reader.queues(after, limit), counts).await?;
    Ok(Json(QueueListing { items: page.items, more: page.more, next_after: page.next_after, applied_index: page.applied_index }).into_response())
}
