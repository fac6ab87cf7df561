//! openraft's type configuration for Concord, and short names for the types built
//! from it: what the log carries (`Request`), what applying it returns (`Response`),
//! who the members are. The state machine needs them to implement openraft's
//! storage traits; the server's Raft glue (`concord::raft`) re-exports them.

use crate::state::command::{Request, Response};

/// Cluster-wide node identifier, chosen by the operator (`--id`).
pub type NodeId = u64;
/// What Raft remembers about a member: its advertised `host:port`.
pub type Node = openraft::BasicNode;

openraft::declare_raft_types!(
    /// The openraft type configuration of Concord.
    pub TypeConfig:
        D = Request,
        R = Response,
        NodeId = NodeId,
        Node = Node,
        // Snapshots are files, so neither building, sending nor installing one
        // holds the whole state in memory.
        SnapshotData = tokio::fs::File,
);

pub type Raft = openraft::Raft<TypeConfig>;
pub type Entry = openraft::Entry<TypeConfig>;
pub type LogId = openraft::LogId<NodeId>;
pub type StorageError = openraft::StorageError<NodeId>;
pub type StoredMembership = openraft::StoredMembership<NodeId, Node>;
pub type SnapshotMeta = openraft::SnapshotMeta<NodeId, Node>;
pub type Snapshot = openraft::Snapshot<TypeConfig>;
