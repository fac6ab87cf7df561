//! The bodies of `/v1/cluster`, `/health` and `/ready` (docs/api.md, cluster). The
//! same types travel between a follower and the leader (`admin`), in the peer
//! transport's binary encoding, which has no optional fields: an absent value is
//! `null` here, never a missing field.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// `GET /v1/cluster`: the members, roles, leader, term and progress, as the leader
/// sees them (or, with `consistency=stale`, as the node asked does).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, ToSchema)]
pub struct ClusterStatus {
    pub node: NodeStatus,
    /// The cluster's id, chosen when it was bootstrapped (none before this node
    /// learned it).
    pub cluster_id: Option<String>,
    pub leader: Option<u64>,
    pub term: u64,
    pub last_log_index: Option<u64>,
    pub commit_index: Option<u64>,
    pub applied_index: Option<u64>,
    pub snapshot_index: Option<u64>,
    pub purged_index: Option<u64>,
    /// The log index of the membership in effect.
    pub membership_log_index: Option<u64>,
    pub members: Vec<MemberStatus>,
}

/// The node that built the status.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, ToSchema)]
pub struct NodeStatus {
    pub id: u64,
    /// `leader`, `follower`, `candidate`, `learner` or `shutdown`.
    pub state: String,
    /// Log fsyncs since the node started (one covers many writes under load).
    pub log_fsyncs: u64,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, ToSchema)]
pub struct MemberStatus {
    pub id: u64,
    /// `host:port`, where its peers reach it.
    pub addr: String,
    /// `leader`, `follower` or `learner`.
    pub role: String,
    /// The last log index the leader knows it holds (on the leader only).
    pub matched_index: Option<u64>,
    /// How the serving node's last Raft call to it went (none for itself).
    pub last_contact: Option<LastContact>,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, ToSchema)]
pub struct LastContact {
    /// It answered, and not with a refusal.
    pub ok: bool,
    /// It answered at all (a refusal is an answer).
    pub answered: bool,
    /// Why not, when not ok.
    pub error: Option<String>,
    pub ms_ago: u64,
}

/// `POST /v1/cluster/members`: the member is a voter now.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, ToSchema)]
pub struct MemberAdded {
    pub id: u64,
    pub addr: String,
    /// Always `voter`.
    pub role: String,
    /// False when it was a voter at this address already (nothing was written).
    pub changed: bool,
    /// The membership entry that made it a voter, when `changed` (null otherwise).
    pub membership_log_index: Option<u64>,
}

/// `DELETE /v1/cluster/members/{id}`.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, ToSchema)]
pub struct MemberRemoved {
    pub id: u64,
    pub removed: bool,
    pub membership_log_index: u64,
}

/// `POST /v1/cluster/snapshot`: 200 when `built`, 202 while it is still being built.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, ToSchema)]
pub struct SnapshotBuilt {
    pub built: bool,
    /// The index the leader's snapshot covers now.
    pub snapshot_index: Option<u64>,
    /// The applied index it is being built to cover, while not `built` (null once built).
    pub requested_index: Option<u64>,
}

/// `GET /health`.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, ToSchema)]
pub struct Health {
    /// Always `ok`.
    pub status: String,
    pub id: u64,
}

/// `GET /ready` (in `details` of the 503 when not ready).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, ToSchema)]
pub struct Ready {
    pub id: u64,
    pub leader: Option<u64>,
    pub applied_index: Option<u64>,
    pub commit_index: Option<u64>,
}
