//! openraft glue: the RocksDB log store, the peer network,
//! the cluster identity that keeps other clusters' peers out, the cluster secret that
//! authenticates peers (`peer_auth`), and the batching of
//! writes into entries and of linearizable reads into leadership checks.
//!
//! Everything consensus-specific lives here; the state machine (`crate::state`) only
//! sees committed entries, and the HTTP API (`crate::api`) only sees a `Raft` handle.

#[cfg(test)]
mod format_tests;
pub mod frames;
pub mod identity;
pub mod leader_link;
pub mod log_store;
pub mod network;
pub mod peer_auth;
pub mod peer_contacts;
pub mod peer_server;
pub mod proposer;
pub mod protocol;
pub mod read_index;
#[cfg(test)]
mod upgrade_tests;

/// The type configuration and the types built from it live with the state machine,
/// which implements openraft's storage traits with them.
pub use concord_core::raft::*;
