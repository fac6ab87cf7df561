//! `/v1/cluster`, `/health` and `/ready`: membership, roles and progress.
//!
//! Adding a member is the safe two-step openraft way: join as a learner and wait
//! until it has caught up (so the new voter cannot stall commits), then promote it
//! with a joint-consensus membership change. Removing a voter is one membership
//! change; a removed leader steps down once the change commits.
//!
//! A snapshot can be asked for (`POST /v1/cluster/snapshot`) as well as waited for by
//! policy: an operator compacts the log before copying a data directory, and a
//! benchmark makes sure a joining node is sent a snapshot rather than the log.

use std::collections::BTreeSet;
use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use openraft::error::{ClientWriteError, RaftError};
use openraft::{ChangeMembers, ServerState};
use serde::Deserialize;
use serde_json::{Value, json};

use super::AppState;
use super::error::{ApiError, ErrorBody};
use super::extract::{ApiJson, ApiPath, ApiQuery};
use super::kv::{ConsistencyQuery, WriteQuery};
use crate::raft::{Node, NodeId};

/// How long adding a member waits for the learner to catch up. With the settle waits,
/// shorter than the
/// forwarding deadline (`Limits::forward_timeout_ms`) and the client's per-attempt
/// deadline, so the caller gets this clear 504 rather than a lost connection; the
/// learner keeps catching up and a retry promotes it (`--join` retries by itself).
const CATCH_UP_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a membership change waits for an earlier one to finish. Before its final
/// commit (milliseconds when healthy) an add waits at most twice this plus
/// `CATCH_UP_TIMEOUT`: 9 s, well inside the default forward timeout (50 s).
const SETTLE_TIMEOUT: Duration = Duration::from_secs(2);
const ADDR_BYTES_MAX: usize = 256;

#[derive(Deserialize, Debug, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AddMember {
    id: NodeId,
    /// `host:port` the new node listens on.
    addr: String,
}

fn role_name(state: ServerState) -> &'static str {
    match state {
        ServerState::Leader => "leader",
        ServerState::Follower => "follower",
        ServerState::Candidate => "candidate",
        ServerState::Learner => "learner",
        ServerState::Shutdown => "shutdown",
    }
}

/// The last log index the leader knows member `id` holds (`None` off the leader, or
/// before anything reached it).
fn matched_index(metrics: &openraft::RaftMetrics<NodeId, Node>, id: NodeId) -> Option<u64> {
    metrics.replication.as_ref().and_then(|r| r.get(&id).cloned().flatten()).map(|log_id| log_id.index)
}

/// Whether a learner may be promoted, for a first add and a retry alike: the leader
/// has replicated to it (`matched`) the log up to its own addition (`learner_since`),
/// and it lags the leader's log (`leader_last`) by at most `lag_max` entries
/// (openraft's `replication_lag_threshold`). openraft's own blocking add checks only
/// the lag, counting a learner that has received nothing as at index 0: in a young
/// cluster, passed at once.
fn learner_caught_up(matched: Option<u64>, learner_since: u64, leader_last: Option<u64>, lag_max: u64) -> bool {
    matched.is_some_and(|matched| matched >= learner_since && leader_last.unwrap_or(0).saturating_sub(matched) <= lag_max)
}

#[utoipa::path(get, path = "/v1/cluster", tag = "cluster", operation_id = "cluster_status", summary = "Members, roles, leader, term and progress", params(ConsistencyQuery), responses((status = 200, description = "The cluster", body = Object), (status = "default", description = "An error; `code` says which (docs/api.md#error-codes)", body = ErrorBody)))]
// `consistency` is acted on by the forwarding layer; accepted here so it is not "unknown".
pub async fn status(State(app): State<AppState>, ApiQuery(_): ApiQuery<ConsistencyQuery>) -> Result<Json<Value>, ApiError> {
    let committed = app.raft.with_raft_state(|state| state.committed).await.map_err(|e| ApiError::unavailable(format!("raft is not running: {e}")))?;
    let metrics = app.raft.metrics().borrow().clone();
    let membership = metrics.membership_config.membership();
    let voters: BTreeSet<NodeId> = membership.voter_ids().collect();
    let members: Vec<Value> = membership
        .nodes()
        .map(|(id, node)| {
            let role = if !voters.contains(id) {
                "learner"
            } else if metrics.current_leader == Some(*id) {
                "leader"
            } else {
                "follower"
            };
            let matched = matched_index(&metrics, *id);
            let contact = (*id != app.node_id).then(|| app.peer_contacts.last(*id)).flatten().map(|contact| {
                json!({ "ok": contact.failure.is_none(), "answered": contact.answered, "error": contact.failure, "ms_ago": contact.at.elapsed().as_millis() as u64 })
            });
            json!({ "id": id, "addr": node.addr, "role": role, "matched_index": matched, "last_contact": contact })
        })
        .collect();
    Ok(Json(json!({
        "node": { "id": app.node_id, "state": role_name(metrics.state), "log_fsyncs": app.log_stats.fsyncs() },
        "cluster_id": app.identity.get(),
        "leader": metrics.current_leader,
        "term": metrics.current_term,
        "last_log_index": metrics.last_log_index,
        "commit_index": committed.map(|id| id.index),
        "applied_index": metrics.last_applied.map(|id| id.index),
        "snapshot_index": metrics.snapshot.map(|id| id.index),
        "purged_index": metrics.purged.map(|id| id.index),
        "membership_log_index": metrics.membership_config.log_id().map(|id| id.index),
        "members": members,
    })))
}

/// Waits until no membership change is in flight (the effective configuration is
/// committed and not joint), so back-to-back changes queue up instead of failing.
async fn settle_membership(app: &AppState) -> Result<(), ApiError> {
    let deadline = tokio::time::Instant::now() + SETTLE_TIMEOUT;
    loop {
        let settled = app
            .raft
            .with_raft_state(|state| {
                let effective = state.membership_state.effective();
                effective.log_id() == state.membership_state.committed().log_id() && effective.get_joint_config().len() == 1
            })
            .await
            .map_err(|e| ApiError::unavailable(format!("raft is not running: {e}")))?;
        if settled {
            return Ok(());
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(ApiError::unavailable(format!("another membership change is still in progress after {} s; retry", SETTLE_TIMEOUT.as_secs())));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The membership on a leader with quorum and no change in flight, as it concerns
/// node `id`.
async fn settled_membership(app: &AppState, id: NodeId) -> Result<SettledMembership, ApiError> {
    app.core.ensure_leader_with_quorum()?;
    settle_membership(app).await?;
    let metrics = app.raft.metrics();
    let metrics = metrics.borrow();
    let config = &metrics.membership_config;
    let membership = config.membership();
    Ok(SettledMembership {
        voters: membership.voter_ids().collect(),
        addr: membership.get_node(&id).map(|n| n.addr.clone()),
        log_index: config.log_id().map_or(0, |log_id| log_id.index),
    })
}

/// The membership once settled, as seen for one node id.
struct SettledMembership {
    voters: BTreeSet<NodeId>,
    /// The node's address, when it is a member (voter or learner).
    addr: Option<String>,
    /// The log index of the membership entry.
    log_index: u64,
}

fn membership_error(e: RaftError<NodeId, ClientWriteError<NodeId, Node>>) -> ApiError {
    match e {
        RaftError::APIError(ClientWriteError::ChangeMembershipError(e)) => {
            ApiError::new(StatusCode::CONFLICT, "membership_conflict", format!("membership change refused: {e}"))
        }
        RaftError::APIError(ClientWriteError::ForwardToLeader(_)) => {
            ApiError::outcome_unknown("leadership changed during the membership change; check /v1/cluster and retry")
        }
        RaftError::Fatal(e) => ApiError::outcome_unknown(format!("raft stopped during the membership change: {e}")),
    }
}

#[utoipa::path(post, path = "/v1/cluster/members", tag = "cluster", operation_id = "cluster_add_member", summary = "Add a member (learner, catch up, then voter)", request_body = AddMember, responses((status = 200, description = "Done", body = Object), (status = "default", description = "An error; `code` says which (docs/api.md#error-codes)", body = ErrorBody)))]
pub async fn add_member(State(app): State<AppState>, ApiQuery(_): ApiQuery<WriteQuery>, ApiJson(body): ApiJson<AddMember>) -> Result<Response, ApiError> {
    if body.id == 0 {
        return Err(ApiError::bad_request("invalid_id", "node ids are positive numbers; 0 is not a valid id"));
    }
    let addr = body.addr.trim().trim_start_matches("http://").to_string();
    if addr.is_empty() || addr.len() > ADDR_BYTES_MAX || !addr.contains(':') {
        return Err(ApiError::bad_request("invalid_addr", format!("addr must be host:port of at most {ADDR_BYTES_MAX} bytes, got {:?}", body.addr)));
    }
    let settled = settled_membership(&app, body.id).await?;
    match &settled.addr {
        Some(known) if *known != addr => {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                "member_id_in_use",
                format!("node {} is already a member at {known}; remove it first or pick another id", body.id),
            ));
        }
        Some(_) if settled.voters.contains(&body.id) => {
            return Ok(Json(json!({ "id": body.id, "addr": addr, "role": "voter", "changed": false })).into_response());
        }
        _ => {}
    }
    let not_caught_up = || {
        ApiError::outcome_unknown(format!(
            "node {} joined as a learner but did not catch up within {} s; it stays a learner, retry to promote it",
            body.id,
            CATCH_UP_TIMEOUT.as_secs()
        ))
    };
    let deadline = tokio::time::Instant::now() + CATCH_UP_TIMEOUT;
    // A retry for a node that is already a learner here adds nothing: adding it again
    // would write a new membership entry, and openraft restarts every replication
    // stream on one, a snapshot in transfer with them. With a snapshot that takes
    // longer than a retry interval to send, the learner never caught up.
    let learner_since = if settled.addr.is_some() {
        settled.log_index
    } else {
        let add = app.raft.add_learner(body.id, Node { addr: addr.clone() }, false);
        match tokio::time::timeout_at(deadline, add).await {
            Err(_) => return Err(not_caught_up()),
            Ok(result) => result.map_err(membership_error)?.log_id.index,
        }
    };
    let lag_max = app.raft.config().replication_lag_threshold;
    let caught_up =
        |metrics: &openraft::RaftMetrics<NodeId, Node>| learner_caught_up(matched_index(metrics, body.id), learner_since, metrics.last_log_index, lag_max);
    let received = app.raft.wait(Some(deadline.saturating_duration_since(tokio::time::Instant::now()))).metrics(caught_up, "the new learner to catch up").await;
    if received.is_err() {
        return Err(not_caught_up());
    }
    // From here on the learner is in the membership: a failure is not "nothing happened".
    let joined =
        |e: ApiError| ApiError::outcome_unknown(format!("node {} joined as a learner but was not promoted: {}; retry to promote it", body.id, e.message));
    settle_membership(&app).await.map_err(joined)?;
    let promote = app.raft.change_membership(ChangeMembers::AddVoterIds(BTreeSet::from([body.id])), false);
    let written = match tokio::time::timeout(app.limits.write_timeout(), promote).await {
        Ok(result) => result.map_err(membership_error)?,
        Err(_) => return Err(ApiError::outcome_unknown(format!("promoting node {} did not commit in time; check /v1/cluster and retry", body.id))),
    };
    Ok(Json(json!({ "id": body.id, "addr": addr, "role": "voter", "changed": true, "membership_log_index": written.log_id.index })).into_response())
}

#[utoipa::path(delete, path = "/v1/cluster/members/{id}", tag = "cluster", operation_id = "cluster_remove_member", summary = "Remove a member", params(("id" = u64, Path, description = "The member's node id")), responses((status = 200, description = "Done", body = Object), (status = "default", description = "An error; `code` says which (docs/api.md#error-codes)", body = ErrorBody)))]
pub async fn remove_member(State(app): State<AppState>, ApiPath(id): ApiPath<NodeId>, ApiQuery(_): ApiQuery<WriteQuery>) -> Result<Json<Value>, ApiError> {
    let SettledMembership { voters, addr: known, .. } = settled_membership(&app, id).await?;
    if known.is_none() {
        return Err(ApiError::not_found("member_not_found", format!("node {id} is not a member of this cluster")));
    }
    let change = if voters.contains(&id) {
        if voters.len() == 1 {
            return Err(ApiError::new(StatusCode::CONFLICT, "last_voter", "cannot remove the last voter of the cluster"));
        }
        ChangeMembers::RemoveVoters(BTreeSet::from([id]))
    } else {
        ChangeMembers::RemoveNodes(BTreeSet::from([id]))
    };
    let written = match tokio::time::timeout(app.limits.write_timeout(), app.raft.change_membership(change, false)).await {
        Ok(result) => result.map_err(membership_error)?,
        Err(_) => return Err(ApiError::outcome_unknown(format!("removing node {id} did not commit in time; check /v1/cluster"))),
    };
    Ok(Json(json!({ "id": id, "removed": true, "membership_log_index": written.log_id.index })))
}

/// Builds a snapshot on the leader now (openraft's trigger) and waits, up to
/// `wait_ms_max`, until it covers everything applied when the request arrived. The log
/// behind it is then purged by openraft's usual rule (`max_in_snapshot_log_to_keep`).
#[utoipa::path(post, path = "/v1/cluster/snapshot", tag = "cluster", operation_id = "cluster_snapshot", summary = "Build a snapshot on the leader now", responses((status = 200, description = "Built", body = Object), (status = 202, description = "Still being built", body = Object), (status = "default", description = "An error; `code` says which (docs/api.md#error-codes)", body = ErrorBody)))]
pub async fn snapshot(State(app): State<AppState>, ApiQuery(_): ApiQuery<WriteQuery>) -> Result<Response, ApiError> {
    app.core.ensure_leader_with_quorum()?;
    let applied = app.raft.metrics().borrow().last_applied.map(|id| id.index);
    app.raft.trigger().snapshot().await.map_err(|e| ApiError::unavailable(format!("raft is not running: {e}")))?;
    let wait = Duration::from_millis(app.limits.wait_ms_max);
    let covered = app.raft.wait(Some(wait)).metrics(|metrics| metrics.snapshot.map(|id| id.index) >= applied, "a snapshot covering the applied index").await;
    match covered {
        Ok(metrics) => Ok(Json(json!({ "snapshot_index": metrics.snapshot.map(|id| id.index), "built": true })).into_response()),
        // Still being built: it goes on, and `snapshot_index` in `/v1/cluster` shows it.
        Err(_) => {
            let current = app.raft.metrics().borrow().snapshot.map(|id| id.index);
            Ok((StatusCode::ACCEPTED, Json(json!({ "snapshot_index": current, "requested_index": applied, "built": false }))).into_response())
        }
    }
}

#[utoipa::path(get, path = "/health", tag = "cluster", operation_id = "health", summary = "Is this process serving HTTP?", responses((status = 200, description = "Serving", body = Object), (status = "default", description = "An error; `code` says which (docs/api.md#error-codes)", body = ErrorBody)))]
pub async fn health(State(app): State<AppState>) -> Json<Value> {
    Json(json!({ "status": "ok", "id": app.node_id }))
}

#[utoipa::path(get, path = "/ready", tag = "cluster", operation_id = "ready", summary = "Does this node know a leader and has it applied what is committed?", responses((status = 200, description = "Ready", body = Object), (status = "default", description = "An error; `code` says which (docs/api.md#error-codes)", body = ErrorBody)))]
pub async fn ready(State(app): State<AppState>) -> Response {
    let committed = app.raft.with_raft_state(|state| state.committed).await.ok().flatten();
    let metrics = app.raft.metrics().borrow().clone();
    let applied = metrics.last_applied.map(|id| id.index);
    let committed = committed.map(|id| id.index);
    let body = json!({ "id": app.node_id, "leader": metrics.current_leader, "applied_index": applied, "commit_index": committed });
    let problem = if metrics.current_leader.is_none() {
        Some("no leader is known")
    } else if applied < committed {
        Some("this node has not yet applied everything committed")
    } else {
        None
    };
    match problem {
        None => Json(body).into_response(),
        Some(problem) => ApiError::unavailable(format!("not ready: {problem}")).with_details(body).into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::learner_caught_up;

    #[test]
    fn a_learner_is_caught_up_only_past_its_addition_and_within_the_lag() {
        // Nothing received yet: never, however young the cluster.
        assert!(!learner_caught_up(None, 3, Some(3), 5000));
        // Received less than its own addition.
        assert!(!learner_caught_up(Some(2), 3, Some(3), 5000));
        assert!(learner_caught_up(Some(3), 3, Some(3), 5000));
        // Past its addition, but the log grew on while it caught up: the lag decides.
        assert!(learner_caught_up(Some(10), 3, Some(5010), 5000));
        assert!(!learner_caught_up(Some(10), 3, Some(5011), 5000));
        // A learner ahead of the leader's metrics (they lag the replication report).
        assert!(learner_caught_up(Some(12), 3, Some(10), 5000));
    }
}
