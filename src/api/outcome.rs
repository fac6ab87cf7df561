//! The write path every resource shares: propose a command, answer with its outcome.
//!
//! `propose` reads the optional `Idempotency-Key`, sends the command through Raft,
//! and hands the outcome to the resource's renderer; refusals (`Rejection`) become
//! their HTTP errors here, in one place, and a replayed answer (success or refusal)
//! says so in `Idempotent-Replayed: true`.

use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::AppState;
use super::error::ApiError;
use crate::state::auth::AuthRejection;
use crate::state::command::{Command, KeyMeta, Outcome, Rejection, Request, Response as StateResponse};
use crate::state::kv::KvRejection;
use crate::state::lease::LeaseRejection;
use crate::state::list::ListRejection;
use crate::state::lock::Holding;
use crate::state::lock::LockRejection;
use crate::state::queue::QueueRejection;
use crate::state::ring::RingRejection;
use crate::state::topic::TopicRejection;
use crate::state::txn::TxnRejection;

pub const IDEMPOTENCY_KEY: &str = "idempotency-key";
pub const IDEMPOTENT_REPLAYED: &str = "idempotent-replayed";

pub fn meta_json(meta: &KeyMeta) -> Value {
    json!({ "create_revision": meta.create_revision, "mod_revision": meta.mod_revision, "version": meta.version })
}

/// Reads and checks the optional `Idempotency-Key` header.
pub fn idempotency_key(app: &AppState, headers: &HeaderMap) -> Result<Option<String>, ApiError> {
    let Some(value) = headers.get(IDEMPOTENCY_KEY) else {
        return Ok(None);
    };
    let max = app.limits.idempotency_key_bytes_max;
    let bytes = value.as_bytes();
    if bytes.is_empty() || bytes.len() > max || !bytes.iter().all(|b| (0x21..=0x7e).contains(b)) {
        return Err(ApiError::bad_request("invalid_idempotency_key", format!("Idempotency-Key must be 1 to {max} visible ASCII characters without spaces")));
    }
    Ok(Some(String::from_utf8_lossy(bytes).into_owned()))
}

/// For a write that cannot be replayed (a receive, a multi-entry delete): an
/// `Idempotency-Key` would promise what it cannot keep, so it is refused.
pub fn refuse_idempotency_key(headers: &HeaderMap, why: &str) -> Result<(), ApiError> {
    if headers.contains_key(IDEMPOTENCY_KEY) {
        return Err(ApiError::bad_request("not_idempotent", format!("this request takes no Idempotency-Key: {why}")));
    }
    Ok(())
}

pub fn rejection_error(rejection: Rejection) -> ApiError {
    match rejection {
        Rejection::Kv(KvRejection::NotFound { key }) => ApiError::not_found("key_not_found", format!("key {key:?} does not exist")),
        Rejection::Kv(KvRejection::PreconditionFailed { key, current }) => ApiError::new(
            StatusCode::PRECONDITION_FAILED,
            "precondition_failed",
            match current {
                Some(meta) => format!("key {key:?} is at mod_revision {}; the precondition does not hold", meta.mod_revision),
                None => format!("key {key:?} does not exist; the precondition does not hold"),
            },
        )
        .with_details(json!({ "current": current.as_ref().map(meta_json) })),
        Rejection::IdempotencyKeyReused { key } => ApiError::new(
            StatusCode::CONFLICT,
            "idempotency_key_reused",
            format!("Idempotency-Key {key:?} was already used for a different request; use a new key per distinct write"),
        ),
        Rejection::Lease(LeaseRejection::NotFound { id }) => {
            ApiError::not_found("lease_not_found", format!("lease {id} does not exist (never granted, expired or revoked)"))
        }
        Rejection::Lease(LeaseRejection::Limit { limit }) => ApiError::new(
            StatusCode::CONFLICT,
            "lease_limit",
            format!("the limit of {limit} is reached (leases in the cluster, keys on one lease, or locks and ring memberships on one lease)"),
        ),
        Rejection::Lock(LockRejection::Busy { name, holder, waiters }) => ApiError::new(
            StatusCode::CONFLICT,
            "lock_busy",
            format!("lock {name:?} is held by lease {} (token {}), with {waiters} waiting", holder.lease, holder.token),
        )
        .with_details(json!({ "holder": holding_json(Some(holder)), "waiters": waiters })),
        Rejection::Lock(LockRejection::Limit { name, limit }) => {
            ApiError::new(StatusCode::CONFLICT, "lock_limit", format!("lock {name:?} already has its maximum of {limit} waiters"))
        }
        Rejection::Lock(LockRejection::StaleToken { name, token, current }) => ApiError::new(
            StatusCode::CONFLICT,
            "stale_token",
            format!(
                "token {token} does not hold lock {name:?}{}",
                match current {
                    Some(holder) => format!("; token {} does", holder.token),
                    None => "; nobody holds it".to_string(),
                }
            ),
        )
        .with_details(json!({ "holder": holding_json(current) })),
        Rejection::Lock(LockRejection::FenceRejected { lock, token, current }) => ApiError::new(
            StatusCode::CONFLICT,
            "fence_rejected",
            format!("the write is fenced by lock {lock:?} token {token}, which no longer holds it; nothing was written"),
        )
        .with_details(json!({ "current_token": current })),
        Rejection::Ring(RingRejection::Full { ring, limit }) => {
            ApiError::new(StatusCode::CONFLICT, "ring_full", format!("ring {ring:?} already has its maximum of {limit} members"))
        }
        Rejection::Ring(RingRejection::MemberInvalid { ring, member }) => {
            ApiError::bad_request("invalid_member", format!("member {member:?} of ring {ring:?} is outside the bounds (weight, address or metadata size)"))
        }
        Rejection::Ring(RingRejection::MemberNotFound { ring, member }) => {
            ApiError::not_found("member_not_found", format!("ring {ring:?} has no member {member:?}"))
        }
        Rejection::Queue(QueueRejection::NotFound { queue }) => ApiError::not_found("queue_not_found", format!("queue {queue:?} does not exist")),
        Rejection::Queue(QueueRejection::Limit { limit }) => {
            ApiError::new(StatusCode::CONFLICT, "queue_limit", format!("the cluster already holds its maximum of {limit} queues"))
        }
        Rejection::Queue(QueueRejection::Full { queue, limit }) => {
            ApiError::new(StatusCode::CONFLICT, "queue_full", format!("queue {queue:?} holds its max_length of {limit} messages; nothing was enqueued"))
        }
        Rejection::Queue(QueueRejection::MessageTooLarge { queue, len, max }) => {
            ApiError::too_large("message_too_large", format!("the message is {len} bytes, over queue {queue:?}'s max_message_bytes of {max}"))
        }
        Rejection::Queue(QueueRejection::Invalid { queue, reason }) => ApiError::bad_request("invalid_queue_settings", format!("queue {queue:?}: {reason}")),
        Rejection::Queue(QueueRejection::StaleReceipt { queue, receipt, current_delivery }) => ApiError::new(
            StatusCode::CONFLICT,
            "stale_receipt",
            format!(
                "receipt {}.{} of queue {queue:?} does not name a delivery in flight{}",
                receipt.id,
                receipt.delivery,
                match current_delivery {
                    Some(n) if n > receipt.delivery => format!(" (the message was delivered again, receipt {}.{n})", receipt.id),
                    Some(n) if n == receipt.delivery => " (its visibility timeout passed, or it was given back)".to_string(),
                    Some(_) => " (no such delivery of this message)".to_string(),
                    None => " (the message is gone: acknowledged, dead-lettered or deleted)".to_string(),
                }
            ),
        )
        .with_details(json!({ "current_delivery": current_delivery })),
        Rejection::Topic(TopicRejection::NotFound { topic }) => ApiError::not_found("topic_not_found", format!("topic {topic:?} does not exist")),
        Rejection::Topic(TopicRejection::Limit { limit }) => {
            ApiError::new(StatusCode::CONFLICT, "topic_limit", format!("the cluster already holds its maximum of {limit} topics"))
        }
        Rejection::Topic(TopicRejection::MessageTooLarge { topic, len, max }) => {
            ApiError::too_large("message_too_large", format!("the message is {len} bytes, over topic {topic:?}'s max_message_bytes of {max}"))
        }
        Rejection::Topic(TopicRejection::Invalid { topic, reason }) => ApiError::bad_request("invalid_topic_settings", format!("topic {topic:?}: {reason}")),
        // The proposer batches only batchable commands: this is a bug of ours.
        Rejection::List(ListRejection::WrongType { key }) => {
            ApiError::new(StatusCode::CONFLICT, "wrong_type", format!("key {key:?} holds a string, not a list"))
        }
        Rejection::List(ListRejection::NoSuchKey { key }) => ApiError::not_found("list_not_found", format!("list {key:?} does not exist")),
        Rejection::List(ListRejection::IndexOutOfRange { key, index }) => {
            ApiError::bad_request("index_out_of_range", format!("list {key:?} has no item at index {index}"))
        }
        Rejection::List(ListRejection::TooLong { key, limit }) => {
            ApiError::new(StatusCode::CONFLICT, "list_too_long", format!("list {key:?} would hold more than its maximum of {limit} items"))
        }
        Rejection::List(ListRejection::Invalid { reason }) => ApiError::bad_request("invalid_list_command", reason),
        Rejection::NotBatchable => ApiError::internal("the request was proposed in a batch it may not be part of; nothing was changed"),
        Rejection::Auth(AuthRejection::TokenInvalid { reason }) => ApiError::bad_request("invalid_token_settings", reason),
        Rejection::Auth(AuthRejection::TokenLimit { limit }) => {
            ApiError::new(StatusCode::CONFLICT, "token_limit", format!("the cluster already holds its maximum of {limit} tokens; revoke some first"))
        }
        Rejection::Auth(AuthRejection::TokenNotFound { id }) => {
            ApiError::not_found("token_not_found", format!("token {id} does not exist (never created, or revoked)"))
        }
        Rejection::Auth(AuthRejection::LastAdminToken { id }) => ApiError::new(
            StatusCode::CONFLICT,
            "last_admin_token",
            format!("token {id} is the last admin token and tokens are required; create another admin token or disable auth first"),
        ),
        Rejection::Auth(AuthRejection::NotAdminToken { id }) => ApiError::new(
            StatusCode::FORBIDDEN,
            "not_admin_token",
            format!("token {id} is not an admin token (or was revoked); requiring tokens takes an admin token"),
        ),
        Rejection::Txn(TxnRejection::Invalid { reason }) => {
            ApiError::bad_request("invalid_txn", format!("the transaction is refused: {reason}; nothing was changed"))
        }
        Rejection::Txn(TxnRejection::ConditionRefused { condition, rejection }) => {
            within_txn(*rejection, format!("compare[{condition}] cannot be tested"), json!({ "condition": condition }))
        }
        Rejection::Txn(TxnRejection::OpRefused { succeeded, op, rejection }) => {
            let branch = if succeeded { "success" } else { "failure" };
            within_txn(*rejection, format!("{branch}[{op}] was refused, so none of the transaction was applied"), json!({ "branch": branch, "op": op }))
        }
    }
}

/// The error of a refusal met inside a transaction: its own status and code, the
/// message led by `where_`, and `position` (which condition or operation) added to
/// its details.
fn within_txn(rejection: Rejection, where_: String, position: Value) -> ApiError {
    let mut error = rejection_error(rejection).with_prefix(&where_);
    let mut details = error.details.take().unwrap_or_else(|| json!({}));
    if let (Some(details), Value::Object(position)) = (details.as_object_mut(), position) {
        details.extend(position);
    }
    error.with_details(details)
}

pub fn holding_json(holding: Option<Holding>) -> Value {
    holding.map_or(Value::Null, |h| json!({ "token": h.token, "lease": h.lease }))
}

/// Proposes `command` with the request's `Idempotency-Key` and returns what applying
/// it produced.
pub async fn submit(app: &AppState, headers: &HeaderMap, command: Command) -> Result<StateResponse, ApiError> {
    let request = Request { idempotency_key: idempotency_key(app, headers)?, ..Request::from(command) };
    Ok(app.core.write(request).await?)
}

/// Marks an answer that the idempotency table replayed.
pub fn mark_replayed(mut answer: Response, replayed: bool) -> Response {
    if replayed {
        answer.headers_mut().insert(IDEMPOTENT_REPLAYED, HeaderValue::from_static("true"));
    }
    answer
}

/// Proposes `command` and answers with `render(outcome)`; a refusal becomes its error.
/// `render` returns `None` for an outcome its resource never produces.
pub async fn propose(app: &AppState, headers: &HeaderMap, command: Command, render: impl FnOnce(Outcome) -> Option<Response>) -> Result<Response, ApiError> {
    let response = submit(app, headers, command).await?;
    let answer = match response.outcome {
        Outcome::Rejected(rejection) => rejection_error(rejection).into_response(),
        outcome => render(outcome).unwrap_or_else(|| ApiError::internal("the write produced an unexpected outcome").into_response()),
    };
    Ok(mark_replayed(answer, response.replayed))
}
