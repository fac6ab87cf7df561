//! openraft glue: the type configuration, the RocksDB log store, the peer network,
//! the cluster identity that keeps other clusters' peers out, the cluster secret that
//! authenticates peers (`peer_auth`), and the batching of
//! writes into entries and of linearizable reads into leadership checks.
//!
//! Everything consensus-specific lives here; the state machine (`crate::state`) only
//! sees committed entries, and the HTTP API (`crate::api`) only sees a `Raft` handle.

#[cfg(test)]
mod format_tests;
pub mod identity;
pub mod log_store;
pub mod network;
pub mod peer_auth;
pub mod peer_contacts;
pub mod peer_server;
pub mod proposer;
pub mod protocol;
pub mod read_index;

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
