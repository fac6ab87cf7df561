//! Concord's core: the replicated state machine and what it is made of, with nothing
//! of HTTP or the network (the compiler keeps it so: this crate does not depend on
//! axum, hyper or reqwest).
//!
//! `state` (the primitives, their commands and `apply`), `codec` (the one binary
//! encoding of everything stored or sent to a peer), `format_version` (the versions
//! of the two databases), `raft` (openraft's type configuration, which the state
//! machine's storage traits need), and, for the tests of this crate and the server's,
//! `golden` (the pinned bytes of every format) and `wal_check` (the WAL bounds).

pub mod codec;
pub mod format_version;
pub mod golden;
pub mod raft;
pub mod state;
pub mod wal_check;
