//! `/v1/leases`: grant, keep alive, revoke and read leases.
//!
//! A lease is a TTL on the replicated clock (see `state::lease`). Keys attach to one
//! with `PUT /v1/kv/{key}?lease=ID` and are deleted, in the same entry, when it is
//! revoked or expires without a keep-alive. The TTL is bounded by
//! `Limits::lease_ttl_ms_min` / `lease_ttl_ms_max`.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use super::AppState;
use super::access;
use super::error::{ApiError, ErrorBody};
use super::extract::{ApiJson, ApiPath, ApiQuery};
use super::kv::{ConsistencyQuery, WriteQuery};
use super::outcome::propose;
use crate::state::auth::Role;
use crate::state::command::{Command, Outcome};
use crate::state::lease::{LeaseCommand, LeaseOutcome};
use crate::wire::leases::{LeaseAnswer, LeaseRead, LeaseRevoked, LeaseRingMember};

/// Most attached keys a lease read lists (`key_count` says how many there are).
const KEYS_LISTED_MAX: usize = 1000;

#[derive(Deserialize, Debug, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct GrantBody {
    ttl_ms: u64,
}

fn lease_answer(status: StatusCode, outcome: Outcome) -> Option<Response> {
    match outcome {
        Outcome::Lease(LeaseOutcome::Alive { id, ttl_ms, expires_at_ms }) => Some((status, Json(LeaseAnswer { expires_at_ms, id, ttl_ms })).into_response()),
        Outcome::Lease(LeaseOutcome::Revoked { id, deleted_keys, revision }) => {
            Some(Json(LeaseRevoked { deleted_keys, id, revision, revoked: true }).into_response())
        }
        _ => None,
    }
}

#[utoipa::path(post, path = "/v1/leases", tag = "leases", operation_id = "lease_grant", summary = "Grant a lease", params(("Idempotency-Key" = Option<String>, Header, description = "Makes retries of this write apply at most once")), request_body = GrantBody, responses((status = 201, description = "Granted", body = LeaseAnswer), (status = "default", description = "An error; `code` says which (docs/api.md#error-codes)", body = ErrorBody)))]
pub async fn grant(
    State(app): State<AppState>,
    ApiQuery(_): ApiQuery<WriteQuery>,
    headers: HeaderMap,
    ApiJson(body): ApiJson<GrantBody>,
) -> Result<Response, ApiError> {
    let (min, max) = (app.limits.lease_ttl_ms_min, app.limits.lease_ttl_ms_max);
    if !(min..=max).contains(&body.ttl_ms) {
        return Err(ApiError::bad_request("invalid_ttl", format!("ttl_ms must be between {min} and {max}, got {}", body.ttl_ms)));
    }
    propose(&app, &headers, Command::Lease(LeaseCommand::Grant { ttl_ms: body.ttl_ms }), |outcome| lease_answer(StatusCode::CREATED, outcome)).await
}

#[utoipa::path(post, path = "/v1/leases/{id}/keepalive", tag = "leases", operation_id = "lease_keep_alive", summary = "Restart a lease's TTL", params(("id" = u64, Path, description = "The lease id"), ("Idempotency-Key" = Option<String>, Header, description = "Makes retries of this write apply at most once")), responses((status = 200, description = "Done", body = LeaseAnswer), (status = "default", description = "An error; `code` says which (docs/api.md#error-codes)", body = ErrorBody)))]
pub async fn keep_alive(
    State(app): State<AppState>,
    ApiPath(id): ApiPath<u64>,
    ApiQuery(_): ApiQuery<WriteQuery>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    propose(&app, &headers, Command::Lease(LeaseCommand::KeepAlive { id }), |outcome| lease_answer(StatusCode::OK, outcome)).await
}

#[utoipa::path(delete, path = "/v1/leases/{id}", tag = "leases", operation_id = "lease_revoke", summary = "End a lease now, deleting its keys", params(("id" = u64, Path, description = "The lease id"), ("Idempotency-Key" = Option<String>, Header, description = "Makes retries of this write apply at most once")), responses((status = 200, description = "Done", body = LeaseRevoked), (status = "default", description = "An error; `code` says which (docs/api.md#error-codes)", body = ErrorBody)))]
pub async fn revoke(
    State(app): State<AppState>,
    ApiPath(id): ApiPath<u64>,
    ApiQuery(_): ApiQuery<WriteQuery>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    propose(&app, &headers, Command::Lease(LeaseCommand::Revoke { id }), |outcome| lease_answer(StatusCode::OK, outcome)).await
}

#[utoipa::path(get, path = "/v1/leases/{id}", tag = "leases", operation_id = "lease_get", summary = "Read a lease", params(("id" = u64, Path, description = "The lease id"), ConsistencyQuery), responses((status = 200, description = "The lease", body = LeaseRead), (status = "default", description = "An error; `code` says which (docs/api.md#error-codes)", body = ErrorBody)))]
pub async fn get(State(app): State<AppState>, ApiPath(id): ApiPath<u64>, ApiQuery(query): ApiQuery<ConsistencyQuery>) -> Result<Response, ApiError> {
    access::need(Role::Read)?;
    app.read_at(query.consistency).await?;
    let read = app.reader.lease(id, KEYS_LISTED_MAX)?;
    let Some(lease) = read.value else {
        return Err(ApiError::not_found("lease_not_found", format!("lease {id} does not exist (never granted, expired or revoked)")));
    };
    let record = lease.record;
    // On the leader, its live reading of the clock; elsewhere (stale reads) the clock
    // as last ticked, which may trail real time by up to a tick interval.
    let clock_ms = app.clock.now_ms().unwrap_or(read.clock_ms).max(read.clock_ms);
    Ok(Json(LeaseRead {
        applied_index: read.applied_index,
        clock_ms,
        expires_at_ms: record.expires_at_ms,
        id,
        key_count: record.key_count,
        keys: lease.keys,
        lock_count: record.lock_count,
        locks: lease.locks,
        remaining_ms: record.expires_at_ms.saturating_sub(clock_ms),
        ring_members: lease.ring_members.into_iter().map(|(ring, member)| LeaseRingMember { member, ring }).collect(),
        ttl_ms: record.ttl_ms,
    })
    .into_response())
}
