//! The only way state changes (`Command`) and the only way results come back (`Response`).
//!
//! A `Request` is what the leader proposes: a command in an envelope that carries the
//! client's optional idempotency key and the leader's time stamp. Commands are plain
//! data, grouped by primitive: each primitive's module (`kv`, `list`, `lease`, `lock`,
//! `ring`, `queue`, `topic`, `auth`, `txn`) owns its command, outcome and rejection types and
//! applies its own commands, so an operation is added in its primitive's module, not
//! here. Commands are validated at the API edge before they are proposed and
//! re-checked against the state in `apply` (the state may have moved between the
//! two). Deterministic failures (a failed precondition, a missing key) are not errors
//! of the log: they are `Outcome::Rejected`, applied like any other outcome, so every
//! replica computes the same answer and a retried request can be answered from the
//! idempotency table.
//!
//! The encoding of these types is the log's and the idempotency table's format
//! (`tests/golden/commands.txt`); the previous one, and the way up from it, is `v2`.

use std::fmt;

use serde::{Deserialize, Serialize};

use super::access::Access;
use super::auth::{AuthCommand, AuthOutcome, AuthRejection, Role};
use super::kv::{KvCommand, KvOutcome, KvRejection};
use super::lease::{LeaseCommand, LeaseOutcome, LeaseRejection};
use super::list::{ListCommand, ListOutcome, ListRejection};
use super::lock::{LockCommand, LockOutcome, LockRejection};
use super::queue::{QueueCommand, QueueOutcome, QueueRejection};
use super::ring::{RingCommand, RingOutcome, RingRejection};
use super::session::{SessionCommand, SessionOutcome};
use super::topic::{TopicCommand, TopicOutcome, TopicRejection};
use super::txn::{Txn, TxnOutcome, TxnRejection};

/// What the leader proposes to the log: a command in its envelope.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct Request {
    /// Client-chosen key that makes a retried write apply at most once.
    pub idempotency_key: Option<String>,
    /// The leader's replicated time when it proposed the command, for the commands
    /// that read the clock (`Command::reads_clock`); 0 for the others, and as a client
    /// or a door builds any command (`service::Core::write` stamps it).
    pub now_ms: u64,
    pub command: Command,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub enum Command {
    Kv(KvCommand),
    Lease(LeaseCommand),
    Lock(LockCommand),
    Ring(RingCommand),
    Queue(QueueCommand),
    Topic(TopicCommand),
    Auth(AuthCommand),
    /// Advance the replicated clock by `advance_ms`, ending every lease that expires
    /// by then and making due queue messages visible. Proposed only by the leader's
    /// ticker.
    Tick {
        advance_ms: u64,
    },
    /// Several independent requests in one entry, applied in order, each with its own
    /// idempotency key and outcome (`Outcome::Batch`). Only batchable commands belong
    /// here (`Command::is_batchable`); any other is refused, not applied.
    Batch(Vec<Request>),
    /// Conditions, then one of two lists of operations, all or nothing (`state::txn`).
    Txn(Txn),
    /// Format 4.
    List(ListCommand),
    /// Consul's sessions and the keys they hold (`state::session`). Format 5.
    Session(SessionCommand),
}

/// Where a command applies: its entry's log index (the identity of leases, lock
/// tokens, receipts and tokens it creates) and the envelope's `now_ms`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Stamp {
    pub index: u64,
    pub now_ms: u64,
}

pub use crate::state::queue::Receipt;

/// The log format of every command older than format 4, which is as far back as
/// `format_since` needs to tell apart.
pub const FORMAT_FIRST: u32 = 3;

/// A write made on behalf of a lock holder: it applies only while `token` still
/// holds `lock` (HTTP `Concord-Fence: <lock>:<token>`).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct Fence {
    pub lock: String,
    pub token: u64,
}

/// A compare-and-swap condition on a key's current state.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Precondition {
    /// No condition.
    None,
    /// The key exists and its `mod_revision` equals this (HTTP `If-Match`).
    ModRevision(u64),
    /// The key does not exist (HTTP `If-None-Match: *`).
    Absent,
    /// The key exists, whatever its revision (HTTP `If-Match: *`).
    Exists,
}

/// The revision bookkeeping every key carries (etcd's model).
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
pub struct KeyMeta {
    /// Cluster revision at which the key was created (since its last deletion).
    pub create_revision: u64,
    /// Cluster revision of the key's latest change.
    pub mod_revision: u64,
    /// Number of writes since creation; 1 for a new key.
    pub version: u64,
}

/// What applying one entry produced.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct Response {
    /// True when this is the stored result of an earlier request with the same
    /// idempotency key, returned without applying again.
    pub replayed: bool,
    pub outcome: Outcome,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// A blank or membership entry: nothing for a client.
    Noop,
    Kv(KvOutcome),
    Lease(LeaseOutcome),
    Lock(LockOutcome),
    Ring(RingOutcome),
    Queue(QueueOutcome),
    Topic(TopicOutcome),
    Auth(AuthOutcome),
    /// The clock now reads `clock_ms`; `expired` leases ended.
    Ticked {
        clock_ms: u64,
        expired: u64,
    },
    Rejected(Rejection),
    /// The outcomes of a `Command::Batch`, one per request, in order.
    Batch(Vec<Response>),
    Txn(TxnOutcome),
    /// Format 4.
    List(ListOutcome),
    /// Format 5.
    Session(SessionOutcome),
}

/// A deterministic refusal: the entry was applied and changed nothing.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub enum Rejection {
    Kv(KvRejection),
    Lease(LeaseRejection),
    Lock(LockRejection),
    Ring(RingRejection),
    Queue(QueueRejection),
    Topic(TopicRejection),
    Auth(AuthRejection),
    Txn(TxnRejection),
    /// The idempotency key was used before for a different command.
    IdempotencyKeyReused {
        key: String,
    },
    /// A command that may not share an entry with others was found in a batch.
    NotBatchable,
    /// Format 4.
    List(ListRejection),
}

/// `From` a primitive's command, outcome and rejection into the shared enums, so a
/// primitive's module writes `KvOutcome::Put { .. }.into()`.
macro_rules! primitive_into {
    ($($primitive:ident: $command:ty, $outcome:ty, $rejection:ty;)*) => {$(
        impl From<$command> for Command {
            fn from(command: $command) -> Self {
                Command::$primitive(command)
            }
        }
        impl From<$outcome> for Outcome {
            fn from(outcome: $outcome) -> Self {
                Outcome::$primitive(outcome)
            }
        }
        impl From<$rejection> for Rejection {
            fn from(rejection: $rejection) -> Self {
                Rejection::$primitive(rejection)
            }
        }
        impl From<$rejection> for Outcome {
            fn from(rejection: $rejection) -> Self {
                Outcome::Rejected(Rejection::$primitive(rejection))
            }
        }
    )*};
}

primitive_into! {
    Kv: KvCommand, KvOutcome, KvRejection;
    Lease: LeaseCommand, LeaseOutcome, LeaseRejection;
    Lock: LockCommand, LockOutcome, LockRejection;
    Ring: RingCommand, RingOutcome, RingRejection;
    Queue: QueueCommand, QueueOutcome, QueueRejection;
    Topic: TopicCommand, TopicOutcome, TopicRejection;
    Auth: AuthCommand, AuthOutcome, AuthRejection;
    List: ListCommand, ListOutcome, ListRejection;
}

impl From<SessionCommand> for Command {
    fn from(command: SessionCommand) -> Self {
        Command::Session(command)
    }
}

impl From<SessionOutcome> for Outcome {
    fn from(outcome: SessionOutcome) -> Self {
        Outcome::Session(outcome)
    }
}

impl From<Txn> for Command {
    fn from(txn: Txn) -> Self {
        Command::Txn(txn)
    }
}

impl From<TxnRejection> for Outcome {
    fn from(rejection: TxnRejection) -> Self {
        Outcome::Rejected(Rejection::Txn(rejection))
    }
}

impl From<Rejection> for Outcome {
    fn from(rejection: Rejection) -> Self {
        Outcome::Rejected(rejection)
    }
}

impl Response {
    pub fn fresh(outcome: Outcome) -> Self {
        Self { replayed: false, outcome }
    }
}

impl<C: Into<Command>> From<C> for Request {
    /// A request as a client or a door builds it: no idempotency key, no stamp yet.
    fn from(command: C) -> Self {
        Self { idempotency_key: None, now_ms: 0, command: command.into() }
    }
}

impl Command {
    /// What it needs of the caller's token (`state::access`), as its primitive says.
    pub fn access(&self) -> Access {
        match self {
            Command::Kv(command) => command.access(),
            Command::Lease(command) => command.access(),
            Command::Lock(command) => command.access(),
            Command::Ring(command) => command.access(),
            Command::Queue(command) => command.access(),
            Command::Topic(command) => command.access(),
            Command::Auth(command) => command.access(),
            // Proposed by the leader itself, never by a client.
            Command::Tick { .. } => Access::unnamed(Role::Admin),
            Command::Batch(requests) => requests.iter().map(|request| request.command.access()).fold(Access::unnamed(Role::Write), Access::and),
            Command::Txn(txn) => txn.access(),
            Command::List(command) => command.access(),
            Command::Session(command) => command.access(),
        }
    }

    /// True when its outcome depends on the replicated clock, so the leader stamps
    /// the envelope's `now_ms` as it proposes it.
    pub fn reads_clock(&self) -> bool {
        match self {
            Command::Lease(command) => command.reads_clock(),
            Command::Queue(command) => command.reads_clock(),
            Command::Topic(command) => command.reads_clock(),
            Command::Kv(command) => command.reads_clock(),
            Command::Session(command) => command.reads_clock(),
            Command::Txn(_) => true,
            Command::List(_) | Command::Lock(_) | Command::Ring(_) | Command::Auth(_) | Command::Tick { .. } | Command::Batch(_) => false,
        }
    }

    /// The first log format (`format_version::LOG_FORMAT`) that carries it: a leader
    /// proposes it only once every member reads that format (`service`), and a frame
    /// holding it is not sent to a peer of an older protocol (`raft::frames`).
    pub fn format_since(&self) -> u32 {
        match self {
            Command::Kv(command) => command.format_since(),
            Command::Batch(requests) => requests.iter().map(|request| request.command.format_since()).max().unwrap_or(FORMAT_FIRST),
            Command::Txn(txn) => txn.format_since(),
            Command::List(_) => 4,
            Command::Session(_) => 5,
            _ => FORMAT_FIRST,
        }
    }

    /// True when it may share an entry with other requests (`Command::Batch`): its
    /// outcome does not depend on the entry's log index, which other commands use as
    /// an identity (lease ids, lock tokens, receipts), and it scans nothing.
    pub fn is_batchable(&self) -> bool {
        matches!(
            self,
            Command::Kv(
                KvCommand::Put { .. } | KvCommand::PutWithTtl { .. } | KvCommand::PutWithFlags { .. } | KvCommand::Delete { .. } | KvCommand::Expire { .. },
            ) | Command::List(ListCommand::Push { .. } | ListCommand::Pop { .. })
        )
    }
}

impl fmt::Display for Request {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.command {
            Command::Kv(command) => command.fmt(f),
            Command::Lease(command) => command.fmt(f),
            Command::Lock(command) => command.fmt(f),
            Command::Ring(command) => command.fmt(f),
            Command::Queue(command) => command.fmt(f),
            Command::Topic(command) => command.fmt(f),
            Command::Auth(command) => command.fmt(f),
            Command::Tick { advance_ms } => write!(f, "tick +{advance_ms} ms"),
            Command::Batch(requests) => write!(f, "batch of {} requests", requests.len()),
            Command::Txn(txn) => txn.fmt(f),
            Command::List(command) => command.fmt(f),
            Command::Session(command) => command.fmt(f),
        }?;
        if self.now_ms > 0 {
            write!(f, " at {}", self.now_ms)?;
        }
        Ok(())
    }
}
