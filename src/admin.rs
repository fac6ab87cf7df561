//! Cluster administration as typed requests (`AdminRequest`): the leader's view of the
//! cluster, adding and removing members, building a snapshot. They need the leader's
//! own Raft handle, so they run on the leader; a follower sends the request over the
//! peer transport (`POST /raft/admin`, `raft::leader_link`) and gets the typed answer
//! back, as writes go (`service::Core`). So any door on any node can offer them, and
//! no request is proxied as HTTP.
//!
//! Adding a member is the safe two-step openraft way: join as a learner and wait until
//! it has caught up (so the new voter cannot stall commits), then promote it with a
//! joint-consensus membership change. Removing a voter is one membership change; a
//! removed leader steps down once the change commits. A snapshot can be asked for as
//! well as waited for by policy: an operator compacts the log before copying a data
//! directory, and a benchmark makes sure a joining node is sent a snapshot.
//!
//! Failures keep the definite/unknown contract: `Consensus` errors and the refusals
//! changed nothing; `OutcomeUnknown` may have.

use std::collections::BTreeSet;
use std::time::Duration;

use openraft::error::{ClientWriteError, RaftError};
use openraft::{ChangeMembers, ServerState};
use serde::{Deserialize, Serialize};

use crate::raft::identity::ClusterIdentity;
use crate::raft::leader_link::LinkError;
use crate::raft::log_store::LogStats;
use crate::raft::peer_contacts::PeerContacts;
use crate::raft::{Node, NodeId, Raft};
use crate::service::{Authority, ConsensusError, Core, Leader};
use crate::state::access::Access;
use crate::state::auth::Role;
use crate::wire::cluster::{ClusterStatus, LastContact, MemberAdded, MemberRemoved, MemberStatus, NodeStatus, SnapshotBuilt};

/// How long adding a member waits for the learner to catch up. With the settle waits,
/// shorter than the forwarding deadline (`Limits::forward_timeout_ms`) and the
/// client's per-attempt deadline, so the caller gets this clear 504 rather than a lost
/// connection; the learner keeps catching up and a retry promotes it (`--join` retries
/// by itself).
const CATCH_UP_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a membership change waits for an earlier one to finish. Before its final
/// commit (milliseconds when healthy) an add waits at most twice this plus
/// `CATCH_UP_TIMEOUT`: 9 s, well inside the default forward timeout (50 s).
const SETTLE_TIMEOUT: Duration = Duration::from_secs(2);
pub const ADDR_BYTES_MAX: usize = 256;

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub enum AdminRequest {
    Status,
    AddMember { id: NodeId, addr: String },
    RemoveMember { id: NodeId },
    Snapshot,
}

impl AdminRequest {
    /// Any token may read the cluster's status; changing it needs `admin`.
    pub fn access(&self) -> Access {
        match self {
            AdminRequest::Status => Access::unnamed(Role::Read),
            AdminRequest::AddMember { .. } | AdminRequest::RemoveMember { .. } | AdminRequest::Snapshot => Access::unnamed(Role::Admin),
        }
    }
}

/// An administration request a follower sends the leader, with the token decision it
/// took it with (as `service::ForwardedWrite`).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct ForwardedAdmin {
    pub authority: Authority,
    pub request: AdminRequest,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub enum AdminAnswer {
    Status(ClusterStatus),
    Added(MemberAdded),
    Removed(MemberRemoved),
    Snapshot(SnapshotBuilt),
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum AdminError {
    #[error("{0}")]
    Consensus(#[from] ConsensusError),
    #[error("node ids are positive numbers; 0 is not a valid id")]
    InvalidId,
    #[error("addr must be host:port of at most {ADDR_BYTES_MAX} bytes, got {0:?}")]
    InvalidAddr(String),
    #[error("node {id} is already a member at {known}; remove it first or pick another id")]
    MemberIdInUse { id: NodeId, known: String },
    #[error("node {0} is not a member of this cluster")]
    MemberNotFound(NodeId),
    #[error("cannot remove the last voter of the cluster")]
    LastVoter,
    #[error("membership change refused: {0}")]
    MembershipConflict(String),
    /// Nothing was done (raft is not running, a change still in flight); retry.
    #[error("{0}")]
    Unavailable(String),
    /// It may have been done: check `/v1/cluster` and retry.
    #[error("{0}")]
    OutcomeUnknown(String),
}

/// What the node gives its administration.
#[derive(Clone)]
pub struct Admin {
    pub node_id: NodeId,
    pub raft: Raft,
    pub core: Core,
    pub log_stats: LogStats,
    pub identity: ClusterIdentity,
    pub peer_contacts: PeerContacts,
}

impl Admin {
    /// Runs `request` on the leader: here, or sent to it.
    pub async fn run(&self, request: AdminRequest) -> Result<AdminAnswer, AdminError> {
        crate::authorize::authorize(|| request.access())?;
        let (id, addr) = match self.core.leader()? {
            Leader::Here => return self.run_here(request).await,
            Leader::At { id, addr } => (id, addr),
        };
        let changes = request != AdminRequest::Status;
        let timeout = self.core.limits().forward_timeout();
        let forwarded = ForwardedAdmin { authority: crate::authorize::authority(), request };
        match self.core.peers().call_leader(id, &addr, "admin", &forwarded, timeout).await {
            Ok(answer) => answer,
            Err(LinkError::NotSent(why)) => {
                Err(ConsensusError::LeaderUnreachable(format!("cannot ask leader {id} at {addr}: {why}; nothing was changed, retry")).into())
            }
            Err(LinkError::Lost(why)) if changes => Err(AdminError::OutcomeUnknown(format!("leader {id} at {addr}: {why}; check /v1/cluster and retry"))),
            Err(LinkError::Lost(why)) => Err(AdminError::Unavailable(format!("lost leader {id}'s answer: {why}; retry"))),
        }
    }

    /// A request another node sent here (`POST /raft/admin`): run only if this node is
    /// the leader, never sent on.
    pub async fn run_forwarded(&self, forwarded: ForwardedAdmin) -> Result<AdminAnswer, AdminError> {
        let _permit = self.core.admit_forwarded(forwarded.authority)?;
        match self.core.leader()? {
            Leader::Here => self.run_here(forwarded.request).await,
            Leader::At { id, .. } => Err(ConsensusError::NotLeader(id).into()),
        }
    }

    /// Runs `request` here, on the leader.
    async fn run_here(&self, request: AdminRequest) -> Result<AdminAnswer, AdminError> {
        match request {
            AdminRequest::Status => self.status().await.map(AdminAnswer::Status),
            AdminRequest::AddMember { id, addr } => self.add_member(id, &addr).await.map(AdminAnswer::Added),
            AdminRequest::RemoveMember { id } => self.remove_member(id).await.map(AdminAnswer::Removed),
            AdminRequest::Snapshot => self.snapshot().await.map(AdminAnswer::Snapshot),
        }
    }

    fn not_running(e: impl std::fmt::Display) -> AdminError {
        AdminError::Unavailable(format!("raft is not running: {e}"))
    }

    /// The cluster as this node sees it (the leader's view when run on the leader).
    pub async fn status(&self) -> Result<ClusterStatus, AdminError> {
        let committed = self.raft.with_raft_state(|state| state.committed).await.map_err(Self::not_running)?;
        let metrics = self.raft.metrics().borrow().clone();
        let membership = metrics.membership_config.membership();
        let voters: BTreeSet<NodeId> = membership.voter_ids().collect();
        let members = membership
            .nodes()
            .map(|(id, node)| {
                let role = if !voters.contains(id) {
                    "learner"
                } else if metrics.current_leader == Some(*id) {
                    "leader"
                } else {
                    "follower"
                };
                let last_contact = (*id != self.node_id).then(|| self.peer_contacts.last(*id)).flatten().map(|contact| LastContact {
                    ok: contact.failure.is_none(),
                    answered: contact.answered,
                    error: contact.failure,
                    ms_ago: contact.at.elapsed().as_millis() as u64,
                });
                MemberStatus { id: *id, addr: node.addr.clone(), role: role.into(), matched_index: matched_index(&metrics, *id), last_contact }
            })
            .collect();
        Ok(ClusterStatus {
            node: NodeStatus { id: self.node_id, state: role_name(metrics.state).into(), log_fsyncs: self.log_stats.fsyncs() },
            cluster_id: self.identity.get().map(String::from),
            leader: metrics.current_leader,
            term: metrics.current_term,
            last_log_index: metrics.last_log_index,
            commit_index: committed.map(|id| id.index),
            applied_index: metrics.last_applied.map(|id| id.index),
            snapshot_index: metrics.snapshot.map(|id| id.index),
            purged_index: metrics.purged.map(|id| id.index),
            membership_log_index: metrics.membership_config.log_id().map(|id| id.index),
            members,
        })
    }

    /// Waits until no membership change is in flight (the effective configuration is
    /// committed and not joint), so back-to-back changes queue up instead of failing.
    async fn settle_membership(&self) -> Result<(), AdminError> {
        let deadline = tokio::time::Instant::now() + SETTLE_TIMEOUT;
        loop {
            let settled = self
                .raft
                .with_raft_state(|state| {
                    let effective = state.membership_state.effective();
                    effective.log_id() == state.membership_state.committed().log_id() && effective.get_joint_config().len() == 1
                })
                .await
                .map_err(Self::not_running)?;
            if settled {
                return Ok(());
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(AdminError::Unavailable(format!("another membership change is still in progress after {} s; retry", SETTLE_TIMEOUT.as_secs())));
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// The membership on a leader with quorum and no change in flight, as it concerns
    /// node `id`.
    async fn settled_membership(&self, id: NodeId) -> Result<SettledMembership, AdminError> {
        self.core.ensure_leader_with_quorum()?;
        self.settle_membership().await?;
        let metrics = self.raft.metrics();
        let metrics = metrics.borrow();
        let config = &metrics.membership_config;
        let membership = config.membership();
        Ok(SettledMembership {
            voters: membership.voter_ids().collect(),
            addr: membership.get_node(&id).map(|n| n.addr.clone()),
            log_index: config.log_id().map_or(0, |log_id| log_id.index),
        })
    }

    async fn add_member(&self, id: NodeId, addr: &str) -> Result<MemberAdded, AdminError> {
        if id == 0 {
            return Err(AdminError::InvalidId);
        }
        let addr = addr.trim().trim_start_matches("http://").to_string();
        if addr.is_empty() || addr.len() > ADDR_BYTES_MAX || !addr.contains(':') {
            return Err(AdminError::InvalidAddr(addr));
        }
        let settled = self.settled_membership(id).await?;
        match &settled.addr {
            Some(known) if *known != addr => return Err(AdminError::MemberIdInUse { id, known: known.clone() }),
            Some(_) if settled.voters.contains(&id) => {
                return Ok(MemberAdded { id, addr, role: "voter".into(), changed: false, membership_log_index: None });
            }
            _ => {}
        }
        let not_caught_up = || {
            AdminError::OutcomeUnknown(format!(
                "node {id} joined as a learner but did not catch up within {} s; it stays a learner, retry to promote it",
                CATCH_UP_TIMEOUT.as_secs()
            ))
        };
        let deadline = tokio::time::Instant::now() + CATCH_UP_TIMEOUT;
        // A retry for a node that is already a learner here adds nothing: adding it
        // again would write a new membership entry, and openraft restarts every
        // replication stream on one, a snapshot in transfer with them. With a snapshot
        // that takes longer than a retry interval to send, the learner never caught up.
        let learner_since = if settled.addr.is_some() {
            settled.log_index
        } else {
            let add = self.raft.add_learner(id, Node { addr: addr.clone() }, false);
            match tokio::time::timeout_at(deadline, add).await {
                Err(_) => return Err(not_caught_up()),
                Ok(result) => result.map_err(membership_error)?.log_id.index,
            }
        };
        let lag_max = self.raft.config().replication_lag_threshold;
        let caught_up =
            |metrics: &openraft::RaftMetrics<NodeId, Node>| learner_caught_up(matched_index(metrics, id), learner_since, metrics.last_log_index, lag_max);
        let remaining = deadline.saturating_duration_since(tokio::time::Instant::now());
        if self.raft.wait(Some(remaining)).metrics(caught_up, "the new learner to catch up").await.is_err() {
            return Err(not_caught_up());
        }
        // From here on the learner is in the membership: a failure is not "nothing happened".
        let joined = |e: AdminError| AdminError::OutcomeUnknown(format!("node {id} joined as a learner but was not promoted: {e}; retry to promote it"));
        self.settle_membership().await.map_err(joined)?;
        let promote = self.raft.change_membership(ChangeMembers::AddVoterIds(BTreeSet::from([id])), false);
        let written = match tokio::time::timeout(self.core.limits().write_timeout(), promote).await {
            Ok(result) => result.map_err(membership_error)?,
            Err(_) => return Err(AdminError::OutcomeUnknown(format!("promoting node {id} did not commit in time; check /v1/cluster and retry"))),
        };
        Ok(MemberAdded { id, addr, role: "voter".into(), changed: true, membership_log_index: Some(written.log_id.index) })
    }

    async fn remove_member(&self, id: NodeId) -> Result<MemberRemoved, AdminError> {
        let SettledMembership { voters, addr: known, .. } = self.settled_membership(id).await?;
        if known.is_none() {
            return Err(AdminError::MemberNotFound(id));
        }
        let change = if voters.contains(&id) {
            if voters.len() == 1 {
                return Err(AdminError::LastVoter);
            }
            ChangeMembers::RemoveVoters(BTreeSet::from([id]))
        } else {
            ChangeMembers::RemoveNodes(BTreeSet::from([id]))
        };
        let written = match tokio::time::timeout(self.core.limits().write_timeout(), self.raft.change_membership(change, false)).await {
            Ok(result) => result.map_err(membership_error)?,
            Err(_) => return Err(AdminError::OutcomeUnknown(format!("removing node {id} did not commit in time; check /v1/cluster"))),
        };
        Ok(MemberRemoved { id, removed: true, membership_log_index: written.log_id.index })
    }

    /// Builds a snapshot on the leader now (openraft's trigger) and waits, up to
    /// `wait_ms_max`, until it covers everything applied when the request arrived. The
    /// log behind it is then purged by openraft's usual rule
    /// (`max_in_snapshot_log_to_keep`).
    async fn snapshot(&self) -> Result<SnapshotBuilt, AdminError> {
        self.core.ensure_leader_with_quorum()?;
        let applied = self.raft.metrics().borrow().last_applied.map(|id| id.index);
        self.raft.trigger().snapshot().await.map_err(Self::not_running)?;
        let wait = Duration::from_millis(self.core.limits().wait_ms_max);
        let covered =
            self.raft.wait(Some(wait)).metrics(|metrics| metrics.snapshot.map(|id| id.index) >= applied, "a snapshot covering the applied index").await;
        Ok(match covered {
            Ok(metrics) => SnapshotBuilt { built: true, snapshot_index: metrics.snapshot.map(|id| id.index), requested_index: None },
            // Still being built: it goes on, and `snapshot_index` in `/v1/cluster` shows it.
            Err(_) => SnapshotBuilt { built: false, snapshot_index: self.raft.metrics().borrow().snapshot.map(|id| id.index), requested_index: applied },
        })
    }
}

/// The membership once settled, as seen for one node id.
struct SettledMembership {
    voters: BTreeSet<NodeId>,
    /// The node's address, when it is a member (voter or learner).
    addr: Option<String>,
    /// The log index of the membership entry.
    log_index: u64,
}

pub fn role_name(state: ServerState) -> &'static str {
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

fn membership_error(e: RaftError<NodeId, ClientWriteError<NodeId, Node>>) -> AdminError {
    match e {
        RaftError::APIError(ClientWriteError::ChangeMembershipError(e)) => AdminError::MembershipConflict(e.to_string()),
        RaftError::APIError(ClientWriteError::ForwardToLeader(_)) => {
            AdminError::OutcomeUnknown("leadership changed during the membership change; check /v1/cluster and retry".into())
        }
        RaftError::Fatal(e) => AdminError::OutcomeUnknown(format!("raft stopped during the membership change: {e}")),
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
