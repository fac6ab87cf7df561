//! `/v1/topics`: durable publish/subscribe streams (see `state::topic`).
//!
//! Publish appends the raw body and answers its offset. Subscribers read from an
//! offset, either by long poll (`GET .../messages?from=&wait_ms=`, linearizable by
//! default) or as a server-sent event stream (`GET .../stream?from=`, served by the
//! node asked; each event's `id` is its offset, so `Last-Event-ID` resumes). A read
//! from an offset retention has dropped is a 410 `offset_compacted` with the first
//! offset still held.

use axum::Json;
use axum::extract::{Extension, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::sse::Event as SseEvent;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;

use super::AppState;
use super::access;
use super::blocking::{wait_bound, wait_until};
use super::error::{ApiError, ErrorBody};
use super::extract::{ApiBody, ApiJson, ApiPath, ApiQuery};
use super::kv::{Consistency, ConsistencyQuery, WriteQuery, value_string};
use super::named;
use super::outcome::{propose, refuse_idempotency_key};
use super::stream;
use crate::server::ClientAddr;
use crate::state::StateReader;
use crate::state::command::{Command, Outcome};
use crate::state::kv;
use crate::state::topic::{self, TopicMessage, TopicRead, TopicRecord, TopicSettings};
use crate::state::topic::{TopicCommand, TopicOutcome};
use crate::streams::subscription::{Subscription, SubscriptionEnd};
use crate::wire::queues::Deleted;
use crate::wire::topics::{self as wire, Message, Messages, Published, TopicConfigured, TopicCounts, TopicListing, TopicSettingsBody, TopicStatus};

/// Payload bytes one read returns (at least one message).
const READ_BYTES_MAX: usize = 4 << 20;

#[derive(Deserialize, Debug, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ReadQuery {
    /// First offset wanted (default: the oldest retained).
    from: Option<u64>,
    limit: Option<usize>,
    /// Long poll: wait up to this long for a message at or after `from`.
    #[serde(default)]
    wait_ms: u64,
    #[serde(default)]
    #[param(inline)]
    consistency: Consistency,
}

#[derive(Deserialize, Debug, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct StreamQuery {
    /// First offset wanted (default: the next one published).
    from: Option<u64>,
}

fn settings_body(settings: &TopicSettings) -> wire::TopicSettings {
    wire::TopicSettings {
        max_messages: settings.max_messages,
        max_bytes: settings.max_bytes,
        max_age_ms: settings.max_age_ms,
        max_message_bytes: settings.max_message_bytes,
    }
}

fn counts(name: &str, record: &TopicRecord) -> TopicCounts {
    TopicCounts {
        name: name.to_string(),
        first_offset: record.first_offset,
        next_offset: record.next_offset,
        messages: record.next_offset - record.first_offset,
        bytes: record.bytes,
    }
}

fn message(offset: u64, message: &TopicMessage) -> Message {
    let (payload, encoding) = value_string(&message.payload);
    Message { offset, payload, encoding: encoding.to_string(), published_at_ms: message.published_at_ms }
}

fn not_found(name: &str) -> ApiError {
    ApiError::not_found("topic_not_found", format!("topic {name:?} does not exist; publish to it or create it with PUT /v1/topics/{name}"))
}

fn compacted(name: &str, from: u64, first_offset: u64) -> ApiError {
    ApiError::new(
        StatusCode::GONE,
        "offset_compacted",
        format!("offset {from} of topic {name:?} is no longer retained; the oldest retained offset is {first_offset}"),
    )
    .with_details(json!({ "first_offset": first_offset }))
}

/// Offsets start at 1.
fn check_offset(from: u64) -> Result<(), ApiError> {
    if from == 0 {
        return Err(ApiError::bad_request("invalid_offset", "offsets start at 1"));
    }
    Ok(())
}

fn topic_answer(outcome: Outcome) -> Option<Response> {
    Some(match outcome {
        Outcome::Topic(TopicOutcome::Configured { topic, created, settings }) => {
            let status = if created { StatusCode::CREATED } else { StatusCode::OK };
            (status, Json(TopicConfigured { name: topic, created, settings: settings_body(&settings) })).into_response()
        }
        Outcome::Topic(TopicOutcome::Published { topic, offset }) => (StatusCode::CREATED, Json(Published { topic, offset })).into_response(),
        _ => return None,
    })
}

#[utoipa::path(put, path = "/v1/topics/{topic}", tag = "topics", operation_id = "topic_configure", summary = "Create a topic or replace its retention", params(("topic" = String, Path, description = "The topic name"), ("Idempotency-Key" = Option<String>, Header, description = "Makes retries of this write apply at most once")), request_body = TopicSettingsBody, responses((status = 200, description = "Replaced", body = TopicConfigured), (status = 201, description = "Created", body = TopicConfigured), (status = "default", description = "An error; `code` says which (docs/api.md#error-codes)", body = ErrorBody)))]
pub async fn configure(
    State(app): State<AppState>,
    ApiPath(name): ApiPath<String>,
    ApiQuery(_): ApiQuery<WriteQuery>,
    headers: HeaderMap,
    ApiJson(body): ApiJson<TopicSettingsBody>,
) -> Result<Response, ApiError> {
    kv::validate_key(&name, app.limits.key_bytes_max)?;
    let defaults = TopicSettings::default();
    let settings = TopicSettings {
        max_messages: body.max_messages.unwrap_or(defaults.max_messages),
        max_bytes: body.max_bytes.unwrap_or(defaults.max_bytes),
        max_age_ms: body.max_age_ms.unwrap_or(defaults.max_age_ms),
        max_message_bytes: body.max_message_bytes.unwrap_or(defaults.max_message_bytes),
    };
    if let Some(reason) = settings.invalid() {
        return Err(ApiError::bad_request("invalid_topic_settings", format!("topic {name:?}: {reason}")));
    }
    propose(&app, &headers, Command::Topic(TopicCommand::Configure { topic: name, settings }), topic_answer).await
}

#[utoipa::path(post, path = "/v1/topics/{topic}/messages", tag = "topics", operation_id = "topic_publish", summary = "Publish a message", params(("topic" = String, Path, description = "The topic name"), ("Idempotency-Key" = Option<String>, Header, description = "Makes retries of this write apply at most once")), request_body(content = String, content_type = "application/octet-stream", description = "The raw bytes"), responses((status = 201, description = "Published: its offset", body = Published), (status = "default", description = "An error; `code` says which (docs/api.md#error-codes)", body = ErrorBody)))]
pub async fn publish(
    State(app): State<AppState>,
    ApiPath(name): ApiPath<String>,
    ApiQuery(_): ApiQuery<WriteQuery>,
    headers: HeaderMap,
    ApiBody(body): ApiBody,
) -> Result<Response, ApiError> {
    kv::validate_key(&name, app.limits.key_bytes_max)?;
    named::check_message_size(&body, topic::MESSAGE_BYTES_MAX)?;
    propose(&app, &headers, Command::Topic(TopicCommand::Publish { topic: name, payload: body.to_vec() }), topic_answer).await
}

#[utoipa::path(get, path = "/v1/topics/{topic}/messages", tag = "topics", operation_id = "topic_read", summary = "Read messages from an offset", params(("topic" = String, Path, description = "The topic name"), ReadQuery), responses((status = 200, description = "The messages", body = Messages), (status = "default", description = "An error; `code` says which (docs/api.md#error-codes)", body = ErrorBody)))]
pub async fn read(State(app): State<AppState>, ApiPath(name): ApiPath<String>, ApiQuery(query): ApiQuery<ReadQuery>) -> Result<Response, ApiError> {
    access::read_name("topic", &name)?;
    kv::validate_key(&name, app.limits.key_bytes_max)?;
    let limit = super::kv::page_limit(&app, query.limit)?;
    let wait = wait_bound(&app, Some(query.wait_ms))?;
    query.from.map(check_offset).transpose()?;
    let from = match query.from {
        Some(from) => from,
        None => app.reader.topic(&name)?.value.map_or(1, |record| record.first_offset),
    };
    // Long poll: until a message at `from` exists here (or the topic is gone).
    let has_from = |reader: &StateReader| Ok(reader.topic(&name)?.value.is_none_or(|record| record.next_offset > from));
    wait_until(&app, wait, has_from).await?;
    app.read_at(query.consistency).await?;
    let read = app.reader.topic_messages(&name, from, limit, READ_BYTES_MAX)?;
    match read.value {
        TopicRead::NotFound => Err(not_found(&name)),
        TopicRead::Compacted { first_offset } => Err(compacted(&name, from, first_offset)),
        TopicRead::Messages { messages, next_offset } => {
            let messages = messages.iter().map(|(offset, stored)| message(*offset, stored)).collect();
            Ok(Json(Messages { topic: name, messages, next_offset, applied_index: read.applied_index }).into_response())
        }
    }
}

/// Why a subscription cannot open or go on, as the API says it.
fn subscription_error(topic: &str, end: SubscriptionEnd) -> ApiError {
    match end {
        SubscriptionEnd::TopicNotFound => not_found(topic),
        SubscriptionEnd::Compacted { from, first_offset } => compacted(topic, from, first_offset),
    }
}

/// A message as its event: `event: message`, `id: <offset>`.
fn message_event((offset, stored): (u64, TopicMessage)) -> SseEvent {
    SseEvent::default().event("message").id(offset.to_string()).json_data(message(offset, &stored)).unwrap_or_default()
}

#[utoipa::path(get, path = "/v1/topics/{topic}/stream", tag = "topics", operation_id = "topic_subscribe", summary = "Stream the messages from an offset on (server-sent events)", params(("topic" = String, Path, description = "The topic name"), StreamQuery, ("Last-Event-ID" = Option<String>, Header, description = "Resume after this event id (sent by EventSource when it reconnects)")), responses((status = 200, description = "An event stream: each event's data is a message", content_type = "text/event-stream", body = Message), (status = "default", description = "An error; `code` says which (docs/api.md#error-codes)", body = ErrorBody)))]
pub async fn subscribe(
    State(app): State<AppState>,
    ApiPath(name): ApiPath<String>,
    ApiQuery(query): ApiQuery<StreamQuery>,
    client: Option<Extension<ClientAddr>>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    access::read_name("topic", &name)?;
    kv::validate_key(&name, app.limits.key_bytes_max)?;
    let resume = stream::last_event_id(&headers)?;
    let permit = stream::permit(&app, client)?;
    // A reconnecting client's Last-Event-ID wins over the URL it reconnects to.
    let from = resume.map(|last| last.saturating_add(1)).or(query.from);
    from.map(check_offset).transpose()?;
    let subscription = Subscription::open(&app.reader, name.clone(), from)?.map_err(|end| subscription_error(&name, end))?;
    let events = move |message| vec![message_event(message)];
    Ok(stream::serve(permit, app.core.follow(subscription), events, move |end| subscription_error(&name, end)))
}

#[utoipa::path(get, path = "/v1/topics/{topic}", tag = "topics", operation_id = "topic_get", summary = "Read a topic's offsets, size and settings", params(("topic" = String, Path, description = "The topic name"), ConsistencyQuery), responses((status = 200, description = "The topic", body = TopicStatus), (status = "default", description = "An error; `code` says which (docs/api.md#error-codes)", body = ErrorBody)))]
pub async fn get(State(app): State<AppState>, ApiPath(name): ApiPath<String>, ApiQuery(query): ApiQuery<ConsistencyQuery>) -> Result<Response, ApiError> {
    access::read_name("topic", &name)?;
    kv::validate_key(&name, app.limits.key_bytes_max)?;
    app.read_at(query.consistency).await?;
    let read = app.reader.topic(&name)?;
    let record = read.value.ok_or_else(|| not_found(&name))?;
    let TopicCounts { name, first_offset, next_offset, messages, bytes } = counts(&name, &record);
    let settings = settings_body(&record.settings);
    Ok(Json(TopicStatus { name, first_offset, next_offset, messages, bytes, settings, applied_index: read.applied_index }).into_response())
}

#[utoipa::path(get, path = "/v1/topics", tag = "topics", operation_id = "topic_list", summary = "List topics by name", params(named::ListQuery), responses((status = 200, description = "One page of topics", body = TopicListing), (status = "default", description = "An error; `code` says which (docs/api.md#error-codes)", body = ErrorBody)))]
pub async fn list(State(app): State<AppState>, ApiQuery(query): ApiQuery<named::ListQuery>) -> Result<Response, ApiError> {
    access::read_prefix("")?;
    let page = named::list(&app, query, |reader, after, limit| reader.topics(after, limit), counts).await?;
    Ok(Json(TopicListing { items: page.items, more: page.more, next_after: page.next_after, applied_index: page.applied_index }).into_response())
}

/// Deletes the topic and its messages, in bounded entries until it is gone.
#[utoipa::path(delete, path = "/v1/topics/{topic}", tag = "topics", operation_id = "topic_delete", summary = "Delete a topic and its messages", params(("topic" = String, Path, description = "The topic name")), responses((status = 200, description = "Done", body = Deleted), (status = "default", description = "An error; `code` says which (docs/api.md#error-codes)", body = ErrorBody)))]
pub async fn delete(
    State(app): State<AppState>,
    ApiPath(name): ApiPath<String>,
    ApiQuery(_): ApiQuery<WriteQuery>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    kv::validate_key(&name, app.limits.key_bytes_max)?;
    refuse_idempotency_key(&headers, named::DELETE_NOT_IDEMPOTENT)?;
    let rounds = topic::MESSAGES_MAX / topic::DELETE_BATCH_MAX + 2;
    named::delete_in_rounds(&app, &name, rounds, || Command::Topic(TopicCommand::Delete { topic: name.clone() })).await
}
