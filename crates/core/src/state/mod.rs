//! The state machine: what the replicated log means.
//!
//! Pure with respect to the outside world: no network, no clock, no randomness. Its
//! only I/O is its own RocksDB (`store`). One file per concern: `command` (the
//! vocabulary), `kv` (the key-value primitive), `list` (lists, a kind of key), `expiry` (keys' time to live), `counts` (how many keys), `history` (recent key changes, for watches), `lease` (the replicated clock and
//! leases), `lock` (fencing-token locks), `ring` (consistent-hash ring membership), `queue` (durable work queues), `topic` (publish/subscribe streams), `txn` (transactions across them),
//! `idempotency` (deduplicated retries), `auth` (client tokens),
//! `snapshot` (the snapshot file format and install), `machine` (openraft glue),
//! `reader` (reads for the API).

pub mod access;
pub mod auth;
pub mod command;
pub mod counts;
pub mod expiry;
pub mod flags;
pub mod history;
pub mod idempotency;
pub mod kv;
pub mod lease;
pub mod list;
pub mod list_model;
pub mod lock;
pub mod machine;
pub mod queue;
pub mod reader;
pub mod ring;
pub mod session;
pub mod snapshot;
pub mod store;
pub mod topic;
pub mod txn;
pub mod v2;

pub use machine::StateMachine;
pub use reader::StateReader;

#[cfg(test)]
mod auth_tests;
#[cfg(test)]
mod expiry_tests;
#[cfg(test)]
mod format_tests;
#[cfg(test)]
mod history_tests;
#[cfg(test)]
mod list_tests;
#[cfg(test)]
mod queue_tests;
#[cfg(test)]
mod session_tests;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod topic_tests;
#[cfg(test)]
mod txn_tests;
#[cfg(test)]
mod upgrade_tests;
