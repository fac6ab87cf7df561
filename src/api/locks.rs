//! `/v1/locks/{name}`: acquire (with a bounded long poll), release, inspect, check.
//!
//! A lock is held by a lease and its grant carries a fencing token (see
//! `state::lock`). `acquire` with `wait_ms` queues the lease in the lock's replicated,
//! first-come-first-served queue and waits until the lock is granted to it or the time
//! is up; then it leaves the queue with a `LockCancelWait` entry, which reports a grant
//! that raced the timeout instead of losing it. Writes fenced with
//! `Concord-Fence: <lock>:<token>` (see `kv.rs`) apply only while the token holds.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use super::AppState;
use super::access;
use super::blocking::{BlockingReadQuery, wait_bound, wait_past, wait_until};
use super::error::{ApiError, ErrorBody};
use super::extract::{ApiJson, ApiPath, ApiQuery};
use super::kv::{Consistency, WriteQuery};
use super::outcome::{mark_replayed, propose, rejection_error, submit};
use crate::state::command::{Command, Outcome, Rejection, Request};
use crate::state::kv;
use crate::state::lock::Holding;
use crate::state::lock::{LockCommand, LockOutcome, LockRejection};
use crate::wire::locks::{Holder, LockCheck, LockHeld, LockRead, LockReleased};

#[derive(Deserialize, Debug, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AcquireBody {
    lease: u64,
    /// How long to wait in line if the lock is held (0: answer at once).
    #[serde(default)]
    wait_ms: u64,
}

#[derive(Deserialize, Debug, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReleaseBody {
    token: u64,
}

#[derive(Deserialize, Debug, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct CheckQuery {
    token: u64,
    #[serde(default)]
    #[param(inline)]
    consistency: Consistency,
}

fn held(name: &str, token: u64, lease: u64) -> Response {
    Json(LockHeld { lease, name: name.to_string(), token }).into_response()
}

fn holder(holding: Option<Holding>) -> Option<Holder> {
    holding.map(|h| Holder { lease: h.lease, token: h.token })
}

fn lock_answer(outcome: Outcome) -> Option<Response> {
    match outcome {
        Outcome::Lock(LockOutcome::Held { name, token, lease }) => Some(held(&name, token, lease)),
        Outcome::Lock(LockOutcome::Released { name, next }) => Some(Json(LockReleased { holder: holder(next), name, released: true }).into_response()),
        _ => None,
    }
}

#[utoipa::path(post, path = "/v1/locks/{name}/acquire", tag = "locks", operation_id = "lock_acquire", summary = "Take a lock for a lease, optionally waiting in line", params(("name" = String, Path, description = "The lock name"), ("Idempotency-Key" = Option<String>, Header, description = "Makes retries of this write apply at most once")), request_body = AcquireBody, responses((status = 200, description = "Held: the fencing token", body = LockHeld), (status = "default", description = "An error; `code` says which (docs/api.md#error-codes)", body = ErrorBody)))]
pub async fn acquire(
    State(app): State<AppState>,
    ApiPath(name): ApiPath<String>,
    ApiQuery(_): ApiQuery<WriteQuery>,
    headers: HeaderMap,
    ApiJson(body): ApiJson<AcquireBody>,
) -> Result<Response, ApiError> {
    kv::validate_key(&name, app.limits.key_bytes_max)?;
    let wait = wait_bound(&app, Some(body.wait_ms))?;
    let command = Command::Lock(LockCommand::Acquire { name: name.clone(), lease: body.lease, wait: body.wait_ms > 0 });
    let first = submit(&app, &headers, command).await?;
    match first.outcome {
        Outcome::Lock(LockOutcome::Waiting { .. }) => {}
        Outcome::Rejected(rejection) => return Ok(mark_replayed(rejection_error(rejection).into_response(), first.replayed)),
        outcome => {
            let answer = lock_answer(outcome).ok_or_else(|| ApiError::internal("acquire produced an unexpected outcome"))?;
            return Ok(mark_replayed(answer, first.replayed));
        }
    }
    // Queued: wait for the grant. A failed read ends the wait (the cancel below
    // settles the outcome); it is never a 503, since the lease is queued now.
    let granted_to_us = |reader: &crate::state::StateReader| Ok(reader.lock(&name)?.value.holder.is_some_and(|h| h.lease == body.lease));
    if wait_until(&app, wait, granted_to_us).await.unwrap_or(false)
        && let Ok(Some(holder)) = app.reader.lock(&name).map(|read| read.value.holder.filter(|h| h.lease == body.lease))
    {
        return Ok(held(&name, holder.token, body.lease));
    }
    // Time is up: leave the queue, unless the lock was granted meanwhile.
    let cancel = Command::Lock(LockCommand::CancelWait { name: name.clone(), lease: body.lease });
    let outcome = app.core.write(Request::from(cancel)).await.map_err(|e| {
        ApiError::outcome_unknown(format!(
            "the wait ended but leaving the queue failed ({}); the lease may still be queued or granted: check GET /v1/locks/{name}",
            e
        ))
    })?;
    match outcome.outcome {
        Outcome::Lock(LockOutcome::Held { name, token, lease }) => Ok(held(&name, token, lease)),
        Outcome::Lock(LockOutcome::WaitCancelled { name, holder: Some(holder) }) => {
            let waiters = app.reader.lock(&name).map(|read| read.value.waiters.len() as u64).unwrap_or(0);
            Err(rejection_error(Rejection::Lock(LockRejection::Busy { name, holder, waiters })).with_message_suffix(" (gave up waiting)"))
        }
        Outcome::Lock(LockOutcome::WaitCancelled { name, holder: None }) => {
            Err(ApiError::new(StatusCode::CONFLICT, "lock_busy", format!("lock {name:?} was not granted within {} ms; it is free now, retry", body.wait_ms)))
        }
        _ => Err(ApiError::internal("leaving the queue produced an unexpected outcome")),
    }
}

#[utoipa::path(post, path = "/v1/locks/{name}/release", tag = "locks", operation_id = "lock_release", summary = "Let go of a lock held with a token", params(("name" = String, Path, description = "The lock name"), ("Idempotency-Key" = Option<String>, Header, description = "Makes retries of this write apply at most once")), request_body = ReleaseBody, responses((status = 200, description = "Done", body = LockReleased), (status = "default", description = "An error; `code` says which (docs/api.md#error-codes)", body = ErrorBody)))]
pub async fn release(
    State(app): State<AppState>,
    ApiPath(name): ApiPath<String>,
    ApiQuery(_): ApiQuery<WriteQuery>,
    headers: HeaderMap,
    ApiJson(body): ApiJson<ReleaseBody>,
) -> Result<Response, ApiError> {
    kv::validate_key(&name, app.limits.key_bytes_max)?;
    propose(&app, &headers, Command::Lock(LockCommand::Release { name, token: body.token }), lock_answer).await
}

#[utoipa::path(get, path = "/v1/locks/{name}", tag = "locks", operation_id = "lock_get", summary = "Read a lock: holder and waiters", params(("name" = String, Path, description = "The lock name"), BlockingReadQuery), responses((status = 200, description = "The lock", body = LockRead), (status = "default", description = "An error; `code` says which (docs/api.md#error-codes)", body = ErrorBody)))]
pub async fn get(State(app): State<AppState>, ApiPath(name): ApiPath<String>, ApiQuery(query): ApiQuery<BlockingReadQuery>) -> Result<Response, ApiError> {
    access::read_name("lock", &name)?;
    kv::validate_key(&name, app.limits.key_bytes_max)?;
    wait_past(&app, query.index, query.wait_ms, |reader| Ok(reader.position()?.applied_index)).await?;
    app.read_at(query.consistency).await?;
    let read = app.reader.lock(&name)?;
    Ok(Json(LockRead { applied_index: read.applied_index, holder: holder(read.value.holder), name, waiters: read.value.waiters }).into_response())
}

/// For an outside resource: does `token` hold the lock now? 200 if so, 409 if not.
#[utoipa::path(get, path = "/v1/locks/{name}/check", tag = "locks", operation_id = "lock_check", summary = "Does this token hold the lock now?", params(("name" = String, Path, description = "The lock name"), CheckQuery), responses((status = 200, description = "It does", body = LockCheck), (status = "default", description = "An error; `code` says which (docs/api.md#error-codes)", body = ErrorBody)))]
pub async fn check(State(app): State<AppState>, ApiPath(name): ApiPath<String>, ApiQuery(query): ApiQuery<CheckQuery>) -> Result<Response, ApiError> {
    access::read_name("lock", &name)?;
    kv::validate_key(&name, app.limits.key_bytes_max)?;
    app.read_at(query.consistency).await?;
    let holder = app.reader.lock(&name)?.value.holder;
    match holder {
        Some(h) if h.token == query.token => Ok(Json(LockCheck { lease: h.lease, name, token: query.token, valid: true }).into_response()),
        current => Err(rejection_error(Rejection::Lock(LockRejection::StaleToken { name, token: query.token, current }))),
    }
}
