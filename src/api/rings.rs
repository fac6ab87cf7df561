//! `/v1/rings/{ring}`: join, leave, read and look up consistent-hash rings.
//!
//! Membership is replicated state (`state::ring`); placement is computed here, at read
//! time, from the membership of one point-in-time view, so a lookup's owners always
//! match the epoch it reports. A circle has 1024 points per unit of weight (up to
//! about a million for a full ring), so the latest circle of each ring is cached by
//! epoch, bounded by the total number of points kept, and built one at a time on the
//! blocking pool (concurrent lookups after a change share that one build).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::Json;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use super::AppState;
use super::access;
use super::blocking::{BlockingReadQuery, wait_past};
use super::error::{ApiError, ErrorBody};
use super::extract::{ApiJson, ApiPath, ApiQuery};
use super::kv::{Consistency, WriteQuery};
use super::outcome::propose;
use crate::placement::{Placement, VNODES_PER_WEIGHT};
use crate::state::command::{Command, Outcome};
use crate::state::kv;
use crate::state::ring::{ADDRESS_BYTES_MAX, Join, METADATA_BYTES_MAX, RingView, WEIGHT_MAX};
use crate::state::ring::{RingCommand, RingMember as RingMemberRecord, RingOutcome};
use crate::wire::rings::{self as wire, RingChanged, RingLookup, RingMember, RingStatus};

/// Most circle points kept in memory across rings (16 bytes each: 64 MiB).
const CACHED_POINTS_MAX: usize = 4 << 20;
/// Most owners one lookup may ask for.
const REPLICAS_MAX: usize = 16;

/// The latest circle of each ring, by epoch.
#[derive(Default)]
pub struct PlacementCache {
    rings: Mutex<HashMap<String, (u64, Arc<Placement>)>>,
    /// One circle is built at a time, so concurrent lookups after a change wait for
    /// that one build instead of each building (and holding) a copy.
    building: tokio::sync::Mutex<()>,
}

impl PlacementCache {
    fn cached(&self, ring: &str, epoch: u64) -> Option<Arc<Placement>> {
        let rings = self.rings.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        rings.get(ring).filter(|(cached, _)| *cached == epoch).map(|(_, placement)| placement.clone())
    }

    async fn get(&self, ring: &str, view: &RingView) -> Result<Arc<Placement>, ApiError> {
        if let Some(placement) = self.cached(ring, view.epoch) {
            return Ok(placement);
        }
        let _building = self.building.lock().await;
        if let Some(placement) = self.cached(ring, view.epoch) {
            return Ok(placement);
        }
        let members: Vec<(String, u32)> = view.members.iter().map(|(name, m)| (name.clone(), m.weight)).collect();
        // Up to a million points: built on the blocking pool, not an async worker.
        let placement = tokio::task::spawn_blocking(move || Arc::new(Placement::new(members.iter().map(|(n, w)| (n.as_str(), *w)))))
            .await
            .map_err(|e| ApiError::internal(format!("building the ring's circle failed: {e}")))?;
        let mut rings = self.rings.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        rings.remove(ring);
        let kept: usize = rings.values().map(|(_, p)| p.len()).sum();
        if kept + placement.len() > CACHED_POINTS_MAX {
            rings.clear();
        }
        rings.insert(ring.to_string(), (view.epoch, placement.clone()));
        Ok(placement)
    }
}

#[derive(Deserialize, Debug, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct JoinBody {
    address: String,
    #[serde(default = "default_weight")]
    weight: u32,
    #[serde(default)]
    metadata: String,
    lease: Option<u64>,
}

fn default_weight() -> u32 {
    1
}

#[derive(Deserialize, Debug, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct LookupQuery {
    key: String,
    #[serde(default = "default_replicas")]
    replicas: usize,
    #[serde(default)]
    #[param(inline)]
    consistency: Consistency,
}

fn default_replicas() -> usize {
    1
}

fn changed(ring: &str, member: &str, outcome: Outcome) -> Option<Response> {
    match outcome {
        Outcome::Ring(RingOutcome::Changed { epoch, members, .. }) => {
            Some(Json(RingChanged { ring: ring.to_string(), member: member.to_string(), epoch, members }).into_response())
        }
        _ => None,
    }
}

#[utoipa::path(put, path = "/v1/rings/{ring}/members/{member}", tag = "rings", operation_id = "ring_join", summary = "Join a ring, or update a member", params(("ring" = String, Path, description = "The ring name"), ("member" = String, Path, description = "The member name"), ("Idempotency-Key" = Option<String>, Header, description = "Makes retries of this write apply at most once")), request_body = JoinBody, responses((status = 200, description = "Done", body = RingChanged), (status = "default", description = "An error; `code` says which (docs/api.md#error-codes)", body = ErrorBody)))]
pub async fn join(
    State(app): State<AppState>,
    ApiPath((ring, member)): ApiPath<(String, String)>,
    ApiQuery(_): ApiQuery<WriteQuery>,
    headers: HeaderMap,
    ApiJson(body): ApiJson<JoinBody>,
) -> Result<Response, ApiError> {
    kv::validate_key(&ring, app.limits.key_bytes_max)?;
    kv::validate_key(&member, app.limits.key_bytes_max)?;
    if body.address.is_empty() || body.address.len() > ADDRESS_BYTES_MAX {
        return Err(ApiError::bad_request("invalid_address", format!("address must be 1 to {ADDRESS_BYTES_MAX} bytes")));
    }
    if !(1..=WEIGHT_MAX).contains(&body.weight) {
        return Err(ApiError::bad_request("invalid_weight", format!("weight must be between 1 and {WEIGHT_MAX}, got {}", body.weight)));
    }
    if body.metadata.len() > METADATA_BYTES_MAX {
        return Err(ApiError::too_large("metadata_too_large", format!("metadata is {} bytes, over the limit of {METADATA_BYTES_MAX}", body.metadata.len())));
    }
    let join = Join { ring: ring.clone(), member: member.clone(), address: body.address, weight: body.weight, metadata: body.metadata, lease: body.lease };
    propose(&app, &headers, Command::Ring(RingCommand::Join(join)), |outcome| changed(&ring, &member, outcome)).await
}

#[utoipa::path(delete, path = "/v1/rings/{ring}/members/{member}", tag = "rings", operation_id = "ring_leave", summary = "Leave a ring", params(("ring" = String, Path, description = "The ring name"), ("member" = String, Path, description = "The member name"), ("Idempotency-Key" = Option<String>, Header, description = "Makes retries of this write apply at most once")), responses((status = 200, description = "Done", body = RingChanged), (status = "default", description = "An error; `code` says which (docs/api.md#error-codes)", body = ErrorBody)))]
pub async fn leave(
    State(app): State<AppState>,
    ApiPath((ring, member)): ApiPath<(String, String)>,
    ApiQuery(_): ApiQuery<WriteQuery>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    kv::validate_key(&ring, app.limits.key_bytes_max)?;
    kv::validate_key(&member, app.limits.key_bytes_max)?;
    let command = Command::Ring(RingCommand::Leave { ring: ring.clone(), member: member.clone() });
    propose(&app, &headers, command, |outcome| changed(&ring, &member, outcome)).await
}

fn member(name: &str, m: &RingMemberRecord) -> RingMember {
    RingMember { name: name.to_string(), address: m.address.clone(), weight: m.weight, metadata: m.metadata.clone(), lease: m.lease }
}

#[utoipa::path(get, path = "/v1/rings/{ring}", tag = "rings", operation_id = "ring_get", summary = "Read a ring: epoch and members", params(("ring" = String, Path, description = "The ring name"), BlockingReadQuery), responses((status = 200, description = "The ring", body = RingStatus), (status = "default", description = "An error; `code` says which (docs/api.md#error-codes)", body = ErrorBody)))]
pub async fn get(State(app): State<AppState>, ApiPath(ring): ApiPath<String>, ApiQuery(query): ApiQuery<BlockingReadQuery>) -> Result<Response, ApiError> {
    access::read_name("ring", &ring)?;
    kv::validate_key(&ring, app.limits.key_bytes_max)?;
    wait_past(&app, query.index, query.wait_ms, |reader| Ok(reader.ring(&ring)?.value.epoch)).await?;
    app.read_at(query.consistency).await?;
    let read = app.reader.ring(&ring)?;
    let members = read.value.members.iter().map(|(name, m)| member(name, m)).collect();
    let placement = wire::Placement { hash: "fnv1a64+splitmix64".into(), vnodes_per_weight: VNODES_PER_WEIGHT, point: "{member}#{i}".into() };
    Ok(Json(RingStatus { ring, epoch: read.value.epoch, members, placement, applied_index: read.applied_index }).into_response())
}

#[utoipa::path(get, path = "/v1/rings/{ring}/lookup", tag = "rings", operation_id = "ring_lookup", summary = "The members that own a key", params(("ring" = String, Path, description = "The ring name"), LookupQuery), responses((status = 200, description = "The owners", body = RingLookup), (status = "default", description = "An error; `code` says which (docs/api.md#error-codes)", body = ErrorBody)))]
pub async fn lookup(State(app): State<AppState>, ApiPath(ring): ApiPath<String>, ApiQuery(query): ApiQuery<LookupQuery>) -> Result<Response, ApiError> {
    access::read_name("ring", &ring)?;
    kv::validate_key(&ring, app.limits.key_bytes_max)?;
    kv::validate_key(&query.key, app.limits.key_bytes_max)?;
    if !(1..=REPLICAS_MAX).contains(&query.replicas) {
        return Err(ApiError::bad_request("invalid_replicas", format!("replicas must be between 1 and {REPLICAS_MAX}, got {}", query.replicas)));
    }
    app.read_at(query.consistency).await?;
    let read = app.reader.ring(&ring)?;
    let placement = app.placements.get(&ring, &read.value).await?;
    let owners = placement
        .owners(&query.key, query.replicas)
        .into_iter()
        .filter_map(|name| read.value.members.iter().find(|(n, _)| n == name))
        .map(|(name, m)| member(name, m))
        .collect();
    Ok(Json(RingLookup { ring, key: query.key, epoch: read.value.epoch, owners }).into_response())
}
