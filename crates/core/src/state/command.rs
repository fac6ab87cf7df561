//! The only way state changes (`Command`) and the only way results come back (`Response`).
//!
//! A `Request` is what the leader proposes: a command plus the client's optional
//! idempotency key. Commands are plain data, validated at the API edge before they
//! are proposed and re-checked against the state in `apply` (the state may have moved
//! between the two). Deterministic failures — a failed precondition, a missing key —
//! are not errors of the log: they are `Outcome::Rejected`, applied like any other
//! outcome, so every replica computes the same answer and a retried request can be
//! answered from the idempotency table.
//!
//! New primitives add variants here.

use std::fmt;

use serde::{Deserialize, Serialize};

/// What the leader proposes to the log.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct Request {
    /// Client-chosen key that makes a retried write apply at most once.
    pub idempotency_key: Option<String>,
    pub command: Command,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub enum Command {
    /// Create or replace `key` with `value`, if `precondition` holds; attached to
    /// `lease` (deleted when it ends) if given, detached from any lease otherwise.
    Put {
        key: String,
        value: Vec<u8>,
        precondition: Precondition,
        lease: Option<u64>,
        fence: Option<Fence>,
    },
    /// Remove `key`, if it exists and `precondition` (and `fence`, if given) holds.
    Delete {
        key: String,
        precondition: Precondition,
        fence: Option<Fence>,
    },
    /// Advance the replicated clock by `advance_ms` and end every lease that expires
    /// by then. Proposed only by the leader's ticker.
    Tick {
        advance_ms: u64,
    },
    /// Start a lease of `ttl_ms`; its id is this entry's log index. `now_ms` is the
    /// leader's replicated time when it proposed this (see `state::lease`).
    LeaseGrant {
        ttl_ms: u64,
        now_ms: u64,
    },
    /// Restart a lease's TTL from `now_ms`, the leader's replicated time at proposal.
    LeaseKeepAlive {
        id: u64,
        now_ms: u64,
    },
    /// End a lease now, deleting what is attached to it.
    LeaseRevoke {
        id: u64,
    },
    /// Take lock `name` for `lease`; if another lease holds it, queue when `wait`.
    LockAcquire {
        name: String,
        lease: u64,
        wait: bool,
    },
    /// Let go of lock `name`, if `token` still holds it.
    LockRelease {
        name: String,
        token: u64,
    },
    /// Leave the queue of lock `name` (a waiter that stopped waiting).
    LockCancelWait {
        name: String,
        lease: u64,
    },
    /// Join (or update) a ring member.
    RingJoin(crate::state::ring::Join),
    /// Remove a ring member.
    RingLeave {
        ring: String,
        member: String,
    },
    /// Create queue `queue` or change its settings.
    QueueConfigure {
        queue: String,
        settings: crate::state::queue::QueueSettings,
    },
    /// Append a message, visible after `delay_ms`; `now_ms` as for leases.
    QueueEnqueue {
        queue: String,
        payload: Vec<u8>,
        delay_ms: u64,
        now_ms: u64,
    },
    /// Take up to `max` visible messages, in flight for `visibility_ms` (the queue's
    /// default if none).
    QueueReceive {
        queue: String,
        max: u32,
        visibility_ms: Option<u64>,
        now_ms: u64,
    },
    /// Delete the message of an in-flight delivery.
    QueueAck {
        queue: String,
        receipt: Receipt,
    },
    /// Give an in-flight delivery back, visible again after `delay_ms`.
    QueueNack {
        queue: String,
        receipt: Receipt,
        delay_ms: u64,
        now_ms: u64,
    },
    /// Keep an in-flight delivery invisible for `visibility_ms` from now.
    QueueExtend {
        queue: String,
        receipt: Receipt,
        visibility_ms: u64,
        now_ms: u64,
    },
    /// Delete a queue (a bounded number of its messages per entry; see `queue::delete`).
    QueueDelete {
        queue: String,
    },
    /// Create topic `topic` or change its retention.
    TopicConfigure {
        topic: String,
        settings: crate::state::topic::TopicSettings,
    },
    /// Append a message to a topic; `now_ms` as for leases (for age retention).
    TopicPublish {
        topic: String,
        payload: Vec<u8>,
        now_ms: u64,
    },
    /// Delete a topic (a bounded number of its messages per entry).
    TopicDelete {
        topic: String,
    },
    /// Several independent requests in one entry, applied in order, each with its own
    /// idempotency key and outcome (`Outcome::Batch`). Only batchable commands belong
    /// here (`Command::is_batchable`); any other is refused, not applied.
    Batch(Vec<Request>),
    /// Create a client token (its id is this entry's log index); see `state::auth`.
    TokenCreate(crate::state::auth::TokenRecord),
    TokenRevoke {
        id: u64,
    },
    /// Require tokens from now on; `by` is the admin token that asked.
    AuthEnable {
        by: u64,
    },
    AuthDisable,
    /// Remove up to `kv::DELETE_PREFIX_BATCH_MAX` keys starting with `prefix` (the API
    /// proposes more entries until none is left). Last among the variants so the
    /// encoding of every earlier one is unchanged.
    DeletePrefix {
        prefix: String,
    },
    /// Conditions, then one of two lists of operations, all or nothing (`state::txn`).
    Txn(crate::state::txn::Txn),
}

pub use crate::state::queue::Receipt;

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
    Put {
        revision: u64,
        meta: KeyMeta,
        created: bool,
    },
    Deleted {
        revision: u64,
        prev: KeyMeta,
    },
    /// The clock now reads `clock_ms`; `expired` leases ended.
    Ticked {
        clock_ms: u64,
        expired: u64,
    },
    /// A lease exists (granted or kept alive) and expires at `expires_at_ms` on the
    /// replicated clock unless kept alive again.
    Lease {
        id: u64,
        ttl_ms: u64,
        expires_at_ms: u64,
    },
    /// A lease ended; `deleted_keys` keys went with it (at `revision`).
    LeaseRevoked {
        id: u64,
        deleted_keys: u64,
        revision: u64,
    },
    /// `lease` holds lock `name` with fencing token `token`.
    LockHeld {
        name: String,
        token: u64,
        lease: u64,
    },
    /// The lease is queued for lock `name`, at `position` (1 = next).
    LockWaiting {
        name: String,
        position: u64,
    },
    /// Lock `name` was let go; `next` is who holds it now, if anyone.
    LockReleased {
        name: String,
        next: Option<crate::state::lock::Holding>,
    },
    /// The lease left the queue of lock `name`, which `holder` holds.
    LockWaitCancelled {
        name: String,
        holder: Option<crate::state::lock::Holding>,
    },
    /// Ring `ring` changed: it is now at `epoch` with `members` members.
    RingChanged {
        ring: String,
        epoch: u64,
        members: u64,
    },
    QueueConfigured {
        queue: String,
        created: bool,
        settings: crate::state::queue::QueueSettings,
    },
    Enqueued {
        queue: String,
        id: u64,
    },
    Received {
        queue: String,
        messages: Vec<crate::state::queue::Delivered>,
    },
    Acked {
        queue: String,
        id: u64,
    },
    /// The delivery was given back; `dead_lettered` if it was the last one allowed.
    Nacked {
        queue: String,
        id: u64,
        dead_lettered: bool,
    },
    /// The delivery stays in flight until `until_ms` on the replicated clock.
    Extended {
        queue: String,
        receipt: Receipt,
        until_ms: u64,
    },
    /// `deleted_messages` went; the queue itself is gone when `deleted`.
    QueueDeleted {
        queue: String,
        deleted_messages: u64,
        deleted: bool,
    },
    TopicConfigured {
        topic: String,
        created: bool,
        settings: crate::state::topic::TopicSettings,
    },
    Published {
        topic: String,
        offset: u64,
    },
    TopicDeleted {
        topic: String,
        deleted_messages: u64,
        deleted: bool,
    },
    Rejected(Rejection),
    /// The outcomes of a `Command::Batch`, one per request, in order.
    Batch(Vec<Response>),
    TokenCreated {
        id: u64,
    },
    TokenRevoked {
        id: u64,
    },
    /// Tokens are now required (`enabled`) or not.
    AuthChanged {
        enabled: bool,
    },
    /// `deleted` keys went, the last at `revision`; `more` when keys with the prefix
    /// remain beyond this entry's bound.
    PrefixDeleted {
        deleted: u64,
        revision: u64,
        more: bool,
    },
    /// A transaction applied `success` (when every condition held) or `failure` (when
    /// `failed_condition`, the first that did not hold, failed); `results` has one
    /// entry per operation of that branch. `revision` is the cluster revision after it.
    Txn {
        succeeded: bool,
        failed_condition: Option<u32>,
        revision: u64,
        results: Vec<crate::state::txn::TxnResult>,
    },
}

/// A deterministic refusal: the entry was applied and changed nothing.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub enum Rejection {
    NotFound {
        key: String,
    },
    /// The precondition did not hold; `current` is the key's state, if it exists.
    PreconditionFailed {
        key: String,
        current: Option<KeyMeta>,
    },
    /// The idempotency key was used before for a different command.
    IdempotencyKeyReused {
        key: String,
    },
    /// No such lease (never granted, expired or revoked).
    LeaseNotFound {
        id: u64,
    },
    /// The cluster holds its maximum number of leases, or this lease its maximum
    /// number of attached keys or locks.
    LeaseLimit {
        limit: u64,
    },
    /// Lock `name` is held by another lease (and the caller did not ask to wait).
    LockBusy {
        name: String,
        holder: crate::state::lock::Holding,
        waiters: u64,
    },
    /// Lock `name` has its maximum number of waiters.
    LockLimit {
        name: String,
        limit: u64,
    },
    /// `token` does not hold lock `name` (any more); `current` does, if anyone.
    StaleToken {
        name: String,
        token: u64,
        current: Option<crate::state::lock::Holding>,
    },
    /// A fenced write whose token no longer holds its lock.
    FenceRejected {
        lock: String,
        token: u64,
        current: Option<u64>,
    },
    /// Ring `ring` has its maximum number of members.
    RingFull {
        ring: String,
        limit: u64,
    },
    RingMemberNotFound {
        ring: String,
        member: String,
    },
    /// A join outside the fixed bounds (weight, address, metadata).
    RingMemberInvalid {
        ring: String,
        member: String,
    },
    QueueNotFound {
        queue: String,
    },
    /// The cluster holds its maximum number of queues.
    QueueLimit {
        limit: u64,
    },
    /// The queue holds `max_length` messages.
    QueueFull {
        queue: String,
        limit: u64,
    },
    MessageTooLarge {
        queue: String,
        len: u64,
        max: u64,
    },
    /// Settings outside the bounds, or inconsistent.
    QueueInvalid {
        queue: String,
        reason: String,
    },
    /// The receipt's delivery is not in flight: the message was acked, timed out,
    /// was nacked or delivered again (`current_delivery`: its latest delivery, if it
    /// still exists; 0 if never delivered).
    StaleReceipt {
        queue: String,
        receipt: Receipt,
        current_delivery: Option<u64>,
    },
    TopicNotFound {
        topic: String,
    },
    /// The cluster holds its maximum number of topics.
    TopicLimit {
        limit: u64,
    },
    TopicMessageTooLarge {
        topic: String,
        len: u64,
        max: u64,
    },
    TopicInvalid {
        topic: String,
        reason: String,
    },
    /// A command that may not share an entry with others was found in a batch.
    NotBatchable,
    /// A token outside the fixed bounds (name, prefixes, an admin with prefixes).
    TokenInvalid {
        reason: String,
    },
    /// The cluster holds its maximum number of tokens.
    TokenLimit {
        limit: u64,
    },
    TokenNotFound {
        id: u64,
    },
    /// Tokens are required and `id` is the last admin token.
    LastAdminToken {
        id: u64,
    },
    /// Requiring tokens was asked with `id`, which is not (or no longer) an admin token.
    NotAdminToken {
        id: u64,
    },
    /// A transaction outside the bounds, or changing one thing twice.
    TxnInvalid {
        reason: String,
    },
    /// A transaction's condition `condition` (its position) could not be tested.
    TxnConditionRefused {
        condition: u32,
        rejection: Box<Rejection>,
    },
    /// Operation `op` of the branch that ran (`succeeded`: success) was refused, so
    /// none of the transaction was applied.
    TxnOpRefused {
        succeeded: bool,
        op: u32,
        rejection: Box<Rejection>,
    },
}

impl Response {
    pub fn fresh(outcome: Outcome) -> Self {
        Self { replayed: false, outcome }
    }
}

impl Command {
    /// The leader's time stamp the command carries, if it carries one: zero as a
    /// client (or a door) builds it, set by the leader as it proposes
    /// (`service::Core::write`), so a command can be built on any node.
    pub fn now_ms_mut(&mut self) -> Option<&mut u64> {
        match self {
            Command::LeaseGrant { now_ms, .. }
            | Command::LeaseKeepAlive { now_ms, .. }
            | Command::QueueEnqueue { now_ms, .. }
            | Command::QueueReceive { now_ms, .. }
            | Command::QueueNack { now_ms, .. }
            | Command::QueueExtend { now_ms, .. }
            | Command::TopicPublish { now_ms, .. } => Some(now_ms),
            Command::Txn(txn) => Some(&mut txn.now_ms),
            _ => None,
        }
    }

    /// The command as the client asked for it: without the leader's time stamp, which
    /// differs between retries of the same request (used for idempotency).
    pub fn as_requested(&self) -> Command {
        let mut requested = self.clone();
        if let Some(now_ms) = requested.now_ms_mut() {
            *now_ms = 0;
        }
        requested
    }

    /// True when it may share an entry with other requests (`Command::Batch`): its
    /// outcome does not depend on the entry's log index, which other commands use as
    /// an identity (lease ids, lock tokens, receipts), and it scans nothing.
    pub fn is_batchable(&self) -> bool {
        matches!(self, Command::Put { .. } | Command::Delete { .. })
    }
}

impl fmt::Display for Request {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.command {
            Command::Put { key, value, precondition, lease, fence } => {
                write!(f, "put {key:?} ({} bytes, {precondition:?}, lease {lease:?}, fence {fence:?})", value.len())
            }
            Command::Delete { key, precondition, fence } => write!(f, "delete {key:?} ({precondition:?}, fence {fence:?})"),
            Command::Tick { advance_ms } => write!(f, "tick +{advance_ms} ms"),
            Command::LeaseGrant { ttl_ms, now_ms } => write!(f, "grant lease of {ttl_ms} ms at {now_ms}"),
            Command::LeaseKeepAlive { id, now_ms } => write!(f, "keep lease {id} alive at {now_ms}"),
            Command::LeaseRevoke { id } => write!(f, "revoke lease {id}"),
            Command::LockAcquire { name, lease, wait } => write!(f, "acquire lock {name:?} for lease {lease} (wait {wait})"),
            Command::LockRelease { name, token } => write!(f, "release lock {name:?} token {token}"),
            Command::LockCancelWait { name, lease } => write!(f, "stop waiting for lock {name:?} (lease {lease})"),
            Command::RingJoin(join) => write!(f, "ring {:?}: join {:?} at {:?}", join.ring, join.member, join.address),
            Command::RingLeave { ring, member } => write!(f, "ring {ring:?}: {member:?} leaves"),
            Command::QueueConfigure { queue, settings } => write!(f, "configure queue {queue:?}: {settings:?}"),
            Command::QueueEnqueue { queue, payload, delay_ms, now_ms } => {
                write!(f, "enqueue {} bytes to {queue:?} (delay {delay_ms} ms at {now_ms})", payload.len())
            }
            Command::QueueReceive { queue, max, visibility_ms, now_ms } => {
                write!(f, "receive up to {max} from {queue:?} (visibility {visibility_ms:?} at {now_ms})")
            }
            Command::QueueAck { queue, receipt } => write!(f, "ack {}.{} on {queue:?}", receipt.id, receipt.delivery),
            Command::QueueNack { queue, receipt, delay_ms, .. } => write!(f, "nack {}.{} on {queue:?} (delay {delay_ms} ms)", receipt.id, receipt.delivery),
            Command::QueueExtend { queue, receipt, visibility_ms, .. } => {
                write!(f, "extend {}.{} on {queue:?} by {visibility_ms} ms", receipt.id, receipt.delivery)
            }
            Command::QueueDelete { queue } => write!(f, "delete queue {queue:?}"),
            Command::TopicConfigure { topic, settings } => write!(f, "configure topic {topic:?}: {settings:?}"),
            Command::TopicPublish { topic, payload, now_ms } => write!(f, "publish {} bytes to {topic:?} at {now_ms}", payload.len()),
            Command::TopicDelete { topic } => write!(f, "delete topic {topic:?}"),
            Command::Batch(requests) => write!(f, "batch of {} requests", requests.len()),
            // Never the secret's hash: logs are read by more people than tokens should be.
            Command::TokenCreate(token) => write!(f, "create token {:?} ({})", token.name, token.role.name()),
            Command::TokenRevoke { id } => write!(f, "revoke token {id}"),
            Command::AuthEnable { by } => write!(f, "require tokens (asked by token {by})"),
            Command::AuthDisable => write!(f, "stop requiring tokens"),
            Command::DeletePrefix { prefix } => write!(f, "delete keys under {prefix:?}"),
            Command::Txn(txn) => {
                write!(f, "transaction: {} conditions, {} + {} operations at {}", txn.compare.len(), txn.success.len(), txn.failure.len(), txn.now_ms)
            }
        }
    }
}
