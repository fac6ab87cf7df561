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
use serde_json::json;

use super::AppState;
use super::error::ApiError;
use super::extract::{ApiJson, ApiPath, ApiQuery};
use super::kv::{Consistency, WriteQuery};
use super::outcome::propose;
use crate::state::command::{Command, Outcome};

/// Most attached keys a lease read lists (`key_count` says how many there are).
const KEYS_LISTED_MAX: usize = 1000;

#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
pub struct GrantBody {
    ttl_ms: u64,
}

#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
pub struct ReadQuery {
    #[serde(default)]
    consistency: Consistency,
}

fn lease_answer(status: StatusCode, outcome: Outcome) -> Option<Response> {
    match outcome {
        Outcome::Lease { id, ttl_ms, expires_at_ms } => {
            Some((status, Json(json!({ "id": id, "ttl_ms": ttl_ms, "expires_at_ms": expires_at_ms }))).into_response())
        }
        Outcome::LeaseRevoked { id, deleted_keys, revision } => {
            Some(Json(json!({ "id": id, "revoked": true, "deleted_keys": deleted_keys, "revision": revision })).into_response())
        }
        _ => None,
    }
}

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
    propose(&app, &headers, Command::LeaseGrant { ttl_ms: body.ttl_ms }, |outcome| lease_answer(StatusCode::CREATED, outcome)).await
}

pub async fn keep_alive(
    State(app): State<AppState>,
    ApiPath(id): ApiPath<u64>,
    ApiQuery(_): ApiQuery<WriteQuery>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    propose(&app, &headers, Command::LeaseKeepAlive { id }, |outcome| lease_answer(StatusCode::OK, outcome)).await
}

pub async fn revoke(
    State(app): State<AppState>,
    ApiPath(id): ApiPath<u64>,
    ApiQuery(_): ApiQuery<WriteQuery>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    propose(&app, &headers, Command::LeaseRevoke { id }, |outcome| lease_answer(StatusCode::OK, outcome)).await
}

pub async fn get(State(app): State<AppState>, ApiPath(id): ApiPath<u64>, ApiQuery(query): ApiQuery<ReadQuery>) -> Result<Response, ApiError> {
    if query.consistency == Consistency::Linearizable {
        app.linearize().await?;
    }
    let read = app.reader.lease(id, KEYS_LISTED_MAX)?;
    let Some(lease) = read.value else {
        return Err(ApiError::not_found("lease_not_found", format!("lease {id} does not exist (never granted, expired or revoked)")));
    };
    let record = lease.record;
    Ok(Json(json!({
        "id": id,
        "ttl_ms": record.ttl_ms,
        "expires_at_ms": record.expires_at_ms,
        // The replicated clock advances in ticks, so this may overstate by up to a tick interval.
        "remaining_ms": record.expires_at_ms.saturating_sub(read.clock_ms),
        "clock_ms": read.clock_ms,
        "key_count": record.key_count,
        "keys": lease.keys,
        "applied_index": read.applied_index,
    }))
    .into_response())
}
