//! `/v1/cluster`, `/health` and `/ready`: the HTTP door of cluster administration
//! (`admin`), which runs on the leader whichever node is asked.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use super::error::{ApiError, ErrorBody};
use super::extract::{ApiJson, ApiPath, ApiQuery};
use super::kv::{Consistency, ConsistencyQuery, WriteQuery};
use super::{AppState, access};
use crate::admin::{AdminAnswer, AdminError, AdminRequest};
use crate::raft::NodeId;
use crate::state::auth::Role;
use crate::wire::cluster::{ClusterStatus, Health, MemberAdded, MemberRemoved, Ready, SnapshotBuilt};

#[derive(Deserialize, Debug, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AddMember {
    id: NodeId,
    /// `host:port` the new node listens on.
    addr: String,
}

impl From<AdminError> for ApiError {
    fn from(e: AdminError) -> Self {
        let message = e.to_string();
        match e {
            AdminError::Consensus(e) => e.into(),
            AdminError::InvalidId => ApiError::bad_request("invalid_id", message),
            AdminError::InvalidAddr(_) => ApiError::bad_request("invalid_addr", message),
            AdminError::MemberIdInUse { .. } => ApiError::new(StatusCode::CONFLICT, "member_id_in_use", message),
            AdminError::MemberNotFound(_) => ApiError::not_found("member_not_found", message),
            AdminError::LastVoter => ApiError::new(StatusCode::CONFLICT, "last_voter", message),
            AdminError::MembershipConflict(_) => ApiError::new(StatusCode::CONFLICT, "membership_conflict", message),
            AdminError::Unavailable(_) => ApiError::unavailable(message),
            AdminError::OutcomeUnknown(_) => ApiError::outcome_unknown(message),
        }
    }
}

/// The leader answered another kind of request than was asked: a bug of ours.
fn mismatched(answer: AdminAnswer) -> ApiError {
    ApiError::internal(format!("the leader answered with {answer:?}, not what was asked"))
}

#[utoipa::path(get, path = "/v1/cluster", tag = "cluster", operation_id = "cluster_status", summary = "Members, roles, leader, term and progress", params(ConsistencyQuery), responses((status = 200, description = "The cluster, as the leader sees it (with `consistency=stale`, as the node asked does)", body = ClusterStatus), (status = "default", description = "An error; `code` says which (docs/api.md#error-codes)", body = ErrorBody)))]
pub async fn status(State(app): State<AppState>, ApiQuery(query): ApiQuery<ConsistencyQuery>) -> Result<Json<ClusterStatus>, ApiError> {
    if query.consistency == Consistency::Stale {
        access::need(Role::Read)?;
        return Ok(Json(app.admin.status().await?));
    }
    match app.admin.run(AdminRequest::Status).await? {
        AdminAnswer::Status(status) => Ok(Json(status)),
        other => Err(mismatched(other)),
    }
}

#[utoipa::path(post, path = "/v1/cluster/members", tag = "cluster", operation_id = "cluster_add_member", summary = "Add a member (learner, catch up, then voter)", request_body = AddMember, responses((status = 200, description = "Done", body = MemberAdded), (status = "default", description = "An error; `code` says which (docs/api.md#error-codes)", body = ErrorBody)))]
pub async fn add_member(
    State(app): State<AppState>,
    ApiQuery(_): ApiQuery<WriteQuery>,
    ApiJson(body): ApiJson<AddMember>,
) -> Result<Json<MemberAdded>, ApiError> {
    match app.admin.run(AdminRequest::AddMember { id: body.id, addr: body.addr }).await? {
        AdminAnswer::Added(added) => Ok(Json(added)),
        other => Err(mismatched(other)),
    }
}

#[utoipa::path(delete, path = "/v1/cluster/members/{id}", tag = "cluster", operation_id = "cluster_remove_member", summary = "Remove a member", params(("id" = u64, Path, description = "The member's node id")), responses((status = 200, description = "Done", body = MemberRemoved), (status = "default", description = "An error; `code` says which (docs/api.md#error-codes)", body = ErrorBody)))]
pub async fn remove_member(
    State(app): State<AppState>,
    ApiPath(id): ApiPath<NodeId>,
    ApiQuery(_): ApiQuery<WriteQuery>,
) -> Result<Json<MemberRemoved>, ApiError> {
    match app.admin.run(AdminRequest::RemoveMember { id }).await? {
        AdminAnswer::Removed(removed) => Ok(Json(removed)),
        other => Err(mismatched(other)),
    }
}

/// Builds a snapshot on the leader now and waits, up to `wait_ms_max`, until it
/// covers everything applied when the request arrived (`admin`).
#[utoipa::path(post, path = "/v1/cluster/snapshot", tag = "cluster", operation_id = "cluster_snapshot", summary = "Build a snapshot on the leader now", responses((status = 200, description = "Built", body = SnapshotBuilt), (status = 202, description = "Still being built", body = SnapshotBuilt), (status = "default", description = "An error; `code` says which (docs/api.md#error-codes)", body = ErrorBody)))]
pub async fn snapshot(State(app): State<AppState>, ApiQuery(_): ApiQuery<WriteQuery>) -> Result<Response, ApiError> {
    match app.admin.run(AdminRequest::Snapshot).await? {
        AdminAnswer::Snapshot(built) if built.built => Ok(Json(built).into_response()),
        AdminAnswer::Snapshot(building) => Ok((StatusCode::ACCEPTED, Json(building)).into_response()),
        other => Err(mismatched(other)),
    }
}

#[utoipa::path(get, path = "/health", tag = "cluster", operation_id = "health", summary = "Is this process serving HTTP?", responses((status = 200, description = "Serving", body = Health), (status = "default", description = "An error; `code` says which (docs/api.md#error-codes)", body = ErrorBody)))]
pub async fn health(State(app): State<AppState>) -> Json<Health> {
    Json(Health { status: "ok".into(), id: app.node_id })
}

#[utoipa::path(get, path = "/ready", tag = "cluster", operation_id = "ready", summary = "Does this node know a leader and has it applied what is committed?", responses((status = 200, description = "Ready", body = Ready), (status = "default", description = "An error; `code` says which (docs/api.md#error-codes); `details` is the `Ready` body", body = ErrorBody)))]
pub async fn ready(State(app): State<AppState>) -> Response {
    let committed = app.raft.with_raft_state(|state| state.committed).await.ok().flatten();
    let metrics = app.raft.metrics().borrow().clone();
    let body = Ready {
        id: app.node_id,
        leader: metrics.current_leader,
        applied_index: metrics.last_applied.map(|id| id.index),
        commit_index: committed.map(|id| id.index),
    };
    let problem = if body.leader.is_none() {
        Some("no leader is known")
    } else if body.applied_index < body.commit_index {
        Some("this node has not yet applied everything committed")
    } else {
        None
    };
    match problem {
        None => Json(body).into_response(),
        Some(problem) => ApiError::unavailable(format!("not ready: {problem}")).with_details(serde_json::to_value(&body).unwrap_or_default()).into_response(),
    }
}
