//! The version-2 encoding of log entries' requests and of the idempotency table's
//! outcomes, frozen, and the conversions between it and the current one.
//!
//! A node reads version 2 where an older release wrote it: the log database, the
//! state database, snapshots and peer frames, which it converts as it reads them and
//! rewrites in the current format (the upgrade path of `docs/operations.md`). It also
//! speaks version 2 to a peer that has not been upgraded yet, so every current value
//! converts down as well as up.
//!
//! The types below keep the variant order, names, fields and field types of the
//! version-2 definitions, which is what makes their encoding the same. Delete this
//! module when version 2 is no longer read.

use serde::{Deserialize, Serialize};

use super::auth::{AuthCommand, AuthOutcome, AuthRejection, TokenRecord};
use super::command::{self as current, Fence, KeyMeta, Precondition, Receipt};
use super::kv::{KvCommand, KvOutcome, KvRecord, KvRejection};
use super::lease::{LeaseCommand, LeaseOutcome, LeaseRejection};
use super::lock::{Holding, LockCommand, LockOutcome, LockRejection};
use super::queue::{Delivered, QueueCommand, QueueOutcome, QueueRejection, QueueSettings};
use super::ring::{Join, RingCommand, RingOutcome, RingRejection};
use super::topic::{TopicCommand, TopicOutcome, TopicRejection, TopicSettings};
use super::txn::{self, Condition, TxnOp, TxnOutcome, TxnRejection};

/// A log entry's request as version 2 encodes it (frozen).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct Request {
    pub idempotency_key: Option<String>,
    pub command: Command,
}

/// A command as version 2 encodes it (frozen): the leader's time stamp is in the
/// variants that read the clock.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub enum Command {
    Put { key: String, value: Vec<u8>, precondition: Precondition, lease: Option<u64>, fence: Option<Fence> },
    Delete { key: String, precondition: Precondition, fence: Option<Fence> },
    Tick { advance_ms: u64 },
    LeaseGrant { ttl_ms: u64, now_ms: u64 },
    LeaseKeepAlive { id: u64, now_ms: u64 },
    LeaseRevoke { id: u64 },
    LockAcquire { name: String, lease: u64, wait: bool },
    LockRelease { name: String, token: u64 },
    LockCancelWait { name: String, lease: u64 },
    RingJoin(Join),
    RingLeave { ring: String, member: String },
    QueueConfigure { queue: String, settings: QueueSettings },
    QueueEnqueue { queue: String, payload: Vec<u8>, delay_ms: u64, now_ms: u64 },
    QueueReceive { queue: String, max: u32, visibility_ms: Option<u64>, now_ms: u64 },
    QueueAck { queue: String, receipt: Receipt },
    QueueNack { queue: String, receipt: Receipt, delay_ms: u64, now_ms: u64 },
    QueueExtend { queue: String, receipt: Receipt, visibility_ms: u64, now_ms: u64 },
    QueueDelete { queue: String },
    TopicConfigure { topic: String, settings: TopicSettings },
    TopicPublish { topic: String, payload: Vec<u8>, now_ms: u64 },
    TopicDelete { topic: String },
    Batch(Vec<Request>),
    TokenCreate(TokenRecord),
    TokenRevoke { id: u64 },
    AuthEnable { by: u64 },
    AuthDisable,
    DeletePrefix { prefix: String },
    Txn(Txn),
}

/// A transaction as version 2 encodes it (frozen): with the leader's time stamp.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct Txn {
    pub compare: Vec<Condition>,
    pub success: Vec<TxnOp>,
    pub failure: Vec<TxnOp>,
    pub now_ms: u64,
}

/// What applying one entry produced, as version 2 encodes it (frozen).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct Response {
    pub replayed: bool,
    pub outcome: Outcome,
}

/// An outcome as version 2 encodes it (frozen).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    Noop,
    Put { revision: u64, meta: KeyMeta, created: bool },
    Deleted { revision: u64, prev: KeyMeta },
    Ticked { clock_ms: u64, expired: u64 },
    Lease { id: u64, ttl_ms: u64, expires_at_ms: u64 },
    LeaseRevoked { id: u64, deleted_keys: u64, revision: u64 },
    LockHeld { name: String, token: u64, lease: u64 },
    LockWaiting { name: String, position: u64 },
    LockReleased { name: String, next: Option<Holding> },
    LockWaitCancelled { name: String, holder: Option<Holding> },
    RingChanged { ring: String, epoch: u64, members: u64 },
    QueueConfigured { queue: String, created: bool, settings: QueueSettings },
    Enqueued { queue: String, id: u64 },
    Received { queue: String, messages: Vec<Delivered> },
    Acked { queue: String, id: u64 },
    Nacked { queue: String, id: u64, dead_lettered: bool },
    Extended { queue: String, receipt: Receipt, until_ms: u64 },
    QueueDeleted { queue: String, deleted_messages: u64, deleted: bool },
    TopicConfigured { topic: String, created: bool, settings: TopicSettings },
    Published { topic: String, offset: u64 },
    TopicDeleted { topic: String, deleted_messages: u64, deleted: bool },
    Rejected(Rejection),
    Batch(Vec<Response>),
    TokenCreated { id: u64 },
    TokenRevoked { id: u64 },
    AuthChanged { enabled: bool },
    PrefixDeleted { deleted: u64, revision: u64, more: bool },
    Txn { succeeded: bool, failed_condition: Option<u32>, revision: u64, results: Vec<TxnResult> },
}

/// What one operation of a transaction produced, as version 2 encodes it (frozen).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub enum TxnResult {
    Wrote(Outcome),
    Got { key: String, record: Option<KvRecord> },
    Listed { prefix: String, items: Vec<(String, KvRecord)>, more: bool },
}

/// A rejection as version 2 encodes it (frozen).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub enum Rejection {
    NotFound { key: String },
    PreconditionFailed { key: String, current: Option<KeyMeta> },
    IdempotencyKeyReused { key: String },
    LeaseNotFound { id: u64 },
    LeaseLimit { limit: u64 },
    LockBusy { name: String, holder: Holding, waiters: u64 },
    LockLimit { name: String, limit: u64 },
    StaleToken { name: String, token: u64, current: Option<Holding> },
    FenceRejected { lock: String, token: u64, current: Option<u64> },
    RingFull { ring: String, limit: u64 },
    RingMemberNotFound { ring: String, member: String },
    RingMemberInvalid { ring: String, member: String },
    QueueNotFound { queue: String },
    QueueLimit { limit: u64 },
    QueueFull { queue: String, limit: u64 },
    MessageTooLarge { queue: String, len: u64, max: u64 },
    QueueInvalid { queue: String, reason: String },
    StaleReceipt { queue: String, receipt: Receipt, current_delivery: Option<u64> },
    TopicNotFound { topic: String },
    TopicLimit { limit: u64 },
    TopicMessageTooLarge { topic: String, len: u64, max: u64 },
    TopicInvalid { topic: String, reason: String },
    NotBatchable,
    TokenInvalid { reason: String },
    TokenLimit { limit: u64 },
    TokenNotFound { id: u64 },
    LastAdminToken { id: u64 },
    NotAdminToken { id: u64 },
    TxnInvalid { reason: String },
    TxnConditionRefused { condition: u32, rejection: Box<Rejection> },
    TxnOpRefused { succeeded: bool, op: u32, rejection: Box<Rejection> },
}

impl From<Request> for current::Request {
    fn from(request: Request) -> Self {
        let (now_ms, command) = request.command.into_current();
        current::Request { idempotency_key: request.idempotency_key, now_ms, command }
    }
}

impl From<current::Request> for Request {
    fn from(request: current::Request) -> Self {
        Request { idempotency_key: request.idempotency_key, command: Command::from_current(request.command, request.now_ms) }
    }
}

impl Command {
    /// The current command and the leader's time stamp it carried (0 if none).
    fn into_current(self) -> (u64, current::Command) {
        use current::Command as C;
        match self {
            Command::Put { key, value, precondition, lease, fence } => (0, C::Kv(KvCommand::Put { key, value, precondition, lease, fence })),
            Command::Delete { key, precondition, fence } => (0, C::Kv(KvCommand::Delete { key, precondition, fence })),
            Command::Tick { advance_ms } => (0, C::Tick { advance_ms }),
            Command::LeaseGrant { ttl_ms, now_ms } => (now_ms, C::Lease(LeaseCommand::Grant { ttl_ms })),
            Command::LeaseKeepAlive { id, now_ms } => (now_ms, C::Lease(LeaseCommand::KeepAlive { id })),
            Command::LeaseRevoke { id } => (0, C::Lease(LeaseCommand::Revoke { id })),
            Command::LockAcquire { name, lease, wait } => (0, C::Lock(LockCommand::Acquire { name, lease, wait })),
            Command::LockRelease { name, token } => (0, C::Lock(LockCommand::Release { name, token })),
            Command::LockCancelWait { name, lease } => (0, C::Lock(LockCommand::CancelWait { name, lease })),
            Command::RingJoin(join) => (0, C::Ring(RingCommand::Join(join))),
            Command::RingLeave { ring, member } => (0, C::Ring(RingCommand::Leave { ring, member })),
            Command::QueueConfigure { queue, settings } => (0, C::Queue(QueueCommand::Configure { queue, settings })),
            Command::QueueEnqueue { queue, payload, delay_ms, now_ms } => (now_ms, C::Queue(QueueCommand::Enqueue { queue, payload, delay_ms })),
            Command::QueueReceive { queue, max, visibility_ms, now_ms } => (now_ms, C::Queue(QueueCommand::Receive { queue, max, visibility_ms })),
            Command::QueueAck { queue, receipt } => (0, C::Queue(QueueCommand::Ack { queue, receipt })),
            Command::QueueNack { queue, receipt, delay_ms, now_ms } => (now_ms, C::Queue(QueueCommand::Nack { queue, receipt, delay_ms })),
            Command::QueueExtend { queue, receipt, visibility_ms, now_ms } => (now_ms, C::Queue(QueueCommand::Extend { queue, receipt, visibility_ms })),
            Command::QueueDelete { queue } => (0, C::Queue(QueueCommand::Delete { queue })),
            Command::TopicConfigure { topic, settings } => (0, C::Topic(TopicCommand::Configure { topic, settings })),
            Command::TopicPublish { topic, payload, now_ms } => (now_ms, C::Topic(TopicCommand::Publish { topic, payload })),
            Command::TopicDelete { topic } => (0, C::Topic(TopicCommand::Delete { topic })),
            Command::Batch(requests) => (0, C::Batch(requests.into_iter().map(current::Request::from).collect())),
            Command::TokenCreate(token) => (0, C::Auth(AuthCommand::TokenCreate(token))),
            Command::TokenRevoke { id } => (0, C::Auth(AuthCommand::TokenRevoke { id })),
            Command::AuthEnable { by } => (0, C::Auth(AuthCommand::Enable { by })),
            Command::AuthDisable => (0, C::Auth(AuthCommand::Disable)),
            Command::DeletePrefix { prefix } => (0, C::Kv(KvCommand::DeletePrefix { prefix })),
            Command::Txn(Txn { compare, success, failure, now_ms }) => (now_ms, C::Txn(txn::Txn { compare, success, failure })),
        }
    }

    /// `command` with the leader's time stamp `now_ms` put back into the variant that
    /// carries it (dropped for the others).
    fn from_current(command: current::Command, now_ms: u64) -> Self {
        use current::Command as C;
        match command {
            C::Kv(KvCommand::Put { key, value, precondition, lease, fence }) => Command::Put { key, value, precondition, lease, fence },
            C::Kv(KvCommand::Delete { key, precondition, fence }) => Command::Delete { key, precondition, fence },
            // Format 4 has no version-2 encoding, and is never sent to a version-2
            // peer (`raft::frames` refuses it first). An empty batch stands for it
            // where version 2's bytes are asked for (a fingerprint): no client sent
            // one, so no remembered version-2 request matches it.
            C::Kv(KvCommand::PutWithTtl { .. } | KvCommand::PutWithFlags { .. } | KvCommand::Expire { .. }) | C::List(_) | C::Session(_) => {
                Command::Batch(Vec::new())
            }
            C::Kv(KvCommand::DeletePrefix { prefix }) => Command::DeletePrefix { prefix },
            C::Lease(LeaseCommand::Grant { ttl_ms }) => Command::LeaseGrant { ttl_ms, now_ms },
            C::Lease(LeaseCommand::KeepAlive { id }) => Command::LeaseKeepAlive { id, now_ms },
            C::Lease(LeaseCommand::Revoke { id }) => Command::LeaseRevoke { id },
            C::Lock(LockCommand::Acquire { name, lease, wait }) => Command::LockAcquire { name, lease, wait },
            C::Lock(LockCommand::Release { name, token }) => Command::LockRelease { name, token },
            C::Lock(LockCommand::CancelWait { name, lease }) => Command::LockCancelWait { name, lease },
            C::Ring(RingCommand::Join(join)) => Command::RingJoin(join),
            C::Ring(RingCommand::Leave { ring, member }) => Command::RingLeave { ring, member },
            C::Queue(QueueCommand::Configure { queue, settings }) => Command::QueueConfigure { queue, settings },
            C::Queue(QueueCommand::Enqueue { queue, payload, delay_ms }) => Command::QueueEnqueue { queue, payload, delay_ms, now_ms },
            C::Queue(QueueCommand::Receive { queue, max, visibility_ms }) => Command::QueueReceive { queue, max, visibility_ms, now_ms },
            C::Queue(QueueCommand::Ack { queue, receipt }) => Command::QueueAck { queue, receipt },
            C::Queue(QueueCommand::Nack { queue, receipt, delay_ms }) => Command::QueueNack { queue, receipt, delay_ms, now_ms },
            C::Queue(QueueCommand::Extend { queue, receipt, visibility_ms }) => Command::QueueExtend { queue, receipt, visibility_ms, now_ms },
            C::Queue(QueueCommand::Delete { queue }) => Command::QueueDelete { queue },
            C::Topic(TopicCommand::Configure { topic, settings }) => Command::TopicConfigure { topic, settings },
            C::Topic(TopicCommand::Publish { topic, payload }) => Command::TopicPublish { topic, payload, now_ms },
            C::Topic(TopicCommand::Delete { topic }) => Command::TopicDelete { topic },
            C::Auth(AuthCommand::TokenCreate(token)) => Command::TokenCreate(token),
            C::Auth(AuthCommand::TokenRevoke { id }) => Command::TokenRevoke { id },
            C::Auth(AuthCommand::Enable { by }) => Command::AuthEnable { by },
            C::Auth(AuthCommand::Disable) => Command::AuthDisable,
            C::Tick { advance_ms } => Command::Tick { advance_ms },
            C::Batch(requests) => Command::Batch(requests.into_iter().map(Request::from).collect()),
            C::Txn(txn::Txn { compare, success, failure }) => Command::Txn(Txn { compare, success, failure, now_ms }),
        }
    }
}

/// The bytes version 2 fingerprinted for `command` (`state::idempotency`): its
/// encoding as the client asked for it, without the leader's stamp.
pub fn fingerprinted_bytes(command: &current::Command) -> Result<Vec<u8>, crate::codec::CodecError> {
    crate::codec::encode(&Command::from_current(command.clone(), 0))
}

openraft::declare_raft_types!(
    /// openraft's type configuration with version-2 requests: what a version-2 log
    /// entry and a version-2 append frame carry.
    pub Config:
        D = Request,
        R = Response,
        NodeId = crate::raft::NodeId,
        Node = crate::raft::Node,
        SnapshotData = tokio::fs::File,
);

/// A log entry as version 2 encodes it.
pub type Entry = openraft::Entry<Config>;

pub fn entry_up(entry: Entry) -> crate::raft::Entry {
    let payload = match entry.payload {
        openraft::EntryPayload::Blank => openraft::EntryPayload::Blank,
        openraft::EntryPayload::Normal(request) => openraft::EntryPayload::Normal(request.into()),
        openraft::EntryPayload::Membership(membership) => openraft::EntryPayload::Membership(membership),
    };
    crate::raft::Entry { log_id: entry.log_id, payload }
}

pub fn entry_down(entry: crate::raft::Entry) -> Entry {
    let payload = match entry.payload {
        openraft::EntryPayload::Blank => openraft::EntryPayload::Blank,
        openraft::EntryPayload::Normal(request) => openraft::EntryPayload::Normal(request.into()),
        openraft::EntryPayload::Membership(membership) => openraft::EntryPayload::Membership(membership),
    };
    Entry { log_id: entry.log_id, payload }
}

impl From<Response> for current::Response {
    fn from(response: Response) -> Self {
        current::Response { replayed: response.replayed, outcome: response.outcome.into() }
    }
}

impl From<current::Response> for Response {
    fn from(response: current::Response) -> Self {
        Response { replayed: response.replayed, outcome: response.outcome.into() }
    }
}

impl From<Outcome> for current::Outcome {
    fn from(outcome: Outcome) -> Self {
        use current::Outcome as O;
        match outcome {
            Outcome::Noop => O::Noop,
            Outcome::Put { revision, meta, created } => O::Kv(KvOutcome::Put { revision, meta, created }),
            Outcome::Deleted { revision, prev } => O::Kv(KvOutcome::Deleted { revision, prev }),
            Outcome::Ticked { clock_ms, expired } => O::Ticked { clock_ms, expired },
            Outcome::Lease { id, ttl_ms, expires_at_ms } => O::Lease(LeaseOutcome::Alive { id, ttl_ms, expires_at_ms }),
            Outcome::LeaseRevoked { id, deleted_keys, revision } => O::Lease(LeaseOutcome::Revoked { id, deleted_keys, revision }),
            Outcome::LockHeld { name, token, lease } => O::Lock(LockOutcome::Held { name, token, lease }),
            Outcome::LockWaiting { name, position } => O::Lock(LockOutcome::Waiting { name, position }),
            Outcome::LockReleased { name, next } => O::Lock(LockOutcome::Released { name, next }),
            Outcome::LockWaitCancelled { name, holder } => O::Lock(LockOutcome::WaitCancelled { name, holder }),
            Outcome::RingChanged { ring, epoch, members } => O::Ring(RingOutcome::Changed { ring, epoch, members }),
            Outcome::QueueConfigured { queue, created, settings } => O::Queue(QueueOutcome::Configured { queue, created, settings }),
            Outcome::Enqueued { queue, id } => O::Queue(QueueOutcome::Enqueued { queue, id }),
            Outcome::Received { queue, messages } => O::Queue(QueueOutcome::Received { queue, messages }),
            Outcome::Acked { queue, id } => O::Queue(QueueOutcome::Acked { queue, id }),
            Outcome::Nacked { queue, id, dead_lettered } => O::Queue(QueueOutcome::Nacked { queue, id, dead_lettered }),
            Outcome::Extended { queue, receipt, until_ms } => O::Queue(QueueOutcome::Extended { queue, receipt, until_ms }),
            Outcome::QueueDeleted { queue, deleted_messages, deleted } => O::Queue(QueueOutcome::Deleted { queue, deleted_messages, deleted }),
            Outcome::TopicConfigured { topic, created, settings } => O::Topic(TopicOutcome::Configured { topic, created, settings }),
            Outcome::Published { topic, offset } => O::Topic(TopicOutcome::Published { topic, offset }),
            Outcome::TopicDeleted { topic, deleted_messages, deleted } => O::Topic(TopicOutcome::Deleted { topic, deleted_messages, deleted }),
            Outcome::Rejected(rejection) => O::Rejected(rejection.into()),
            Outcome::Batch(responses) => O::Batch(responses.into_iter().map(current::Response::from).collect()),
            Outcome::TokenCreated { id } => O::Auth(AuthOutcome::TokenCreated { id }),
            Outcome::TokenRevoked { id } => O::Auth(AuthOutcome::TokenRevoked { id }),
            Outcome::AuthChanged { enabled } => O::Auth(AuthOutcome::Changed { enabled }),
            Outcome::PrefixDeleted { deleted, revision, more } => O::Kv(KvOutcome::PrefixDeleted { deleted, revision, more }),
            Outcome::Txn { succeeded, failed_condition, revision, results } => {
                O::Txn(TxnOutcome { succeeded, failed_condition, revision, results: results.into_iter().map(txn::TxnResult::from).collect() })
            }
        }
    }
}

impl From<current::Outcome> for Outcome {
    fn from(outcome: current::Outcome) -> Self {
        use current::Outcome as O;
        match outcome {
            // Never sent to a version-2 peer (its command is not, above).
            O::Noop | O::List(_) | O::Session(_) => Outcome::Noop,
            O::Kv(KvOutcome::Put { revision, meta, created }) => Outcome::Put { revision, meta, created },
            O::Kv(KvOutcome::Deleted { revision, prev }) => Outcome::Deleted { revision, prev },
            O::Kv(KvOutcome::PrefixDeleted { deleted, revision, more }) => Outcome::PrefixDeleted { deleted, revision, more },
            O::Lease(LeaseOutcome::Alive { id, ttl_ms, expires_at_ms }) => Outcome::Lease { id, ttl_ms, expires_at_ms },
            O::Lease(LeaseOutcome::Revoked { id, deleted_keys, revision }) => Outcome::LeaseRevoked { id, deleted_keys, revision },
            O::Lock(LockOutcome::Held { name, token, lease }) => Outcome::LockHeld { name, token, lease },
            O::Lock(LockOutcome::Waiting { name, position }) => Outcome::LockWaiting { name, position },
            O::Lock(LockOutcome::Released { name, next }) => Outcome::LockReleased { name, next },
            O::Lock(LockOutcome::WaitCancelled { name, holder }) => Outcome::LockWaitCancelled { name, holder },
            O::Ring(RingOutcome::Changed { ring, epoch, members }) => Outcome::RingChanged { ring, epoch, members },
            O::Queue(QueueOutcome::Configured { queue, created, settings }) => Outcome::QueueConfigured { queue, created, settings },
            O::Queue(QueueOutcome::Enqueued { queue, id }) => Outcome::Enqueued { queue, id },
            O::Queue(QueueOutcome::Received { queue, messages }) => Outcome::Received { queue, messages },
            O::Queue(QueueOutcome::Acked { queue, id }) => Outcome::Acked { queue, id },
            O::Queue(QueueOutcome::Nacked { queue, id, dead_lettered }) => Outcome::Nacked { queue, id, dead_lettered },
            O::Queue(QueueOutcome::Extended { queue, receipt, until_ms }) => Outcome::Extended { queue, receipt, until_ms },
            O::Queue(QueueOutcome::Deleted { queue, deleted_messages, deleted }) => Outcome::QueueDeleted { queue, deleted_messages, deleted },
            O::Topic(TopicOutcome::Configured { topic, created, settings }) => Outcome::TopicConfigured { topic, created, settings },
            O::Topic(TopicOutcome::Published { topic, offset }) => Outcome::Published { topic, offset },
            O::Topic(TopicOutcome::Deleted { topic, deleted_messages, deleted }) => Outcome::TopicDeleted { topic, deleted_messages, deleted },
            O::Auth(AuthOutcome::TokenCreated { id }) => Outcome::TokenCreated { id },
            O::Auth(AuthOutcome::TokenRevoked { id }) => Outcome::TokenRevoked { id },
            O::Auth(AuthOutcome::Changed { enabled }) => Outcome::AuthChanged { enabled },
            O::Ticked { clock_ms, expired } => Outcome::Ticked { clock_ms, expired },
            O::Rejected(rejection) => Outcome::Rejected(rejection.into()),
            O::Batch(responses) => Outcome::Batch(responses.into_iter().map(Response::from).collect()),
            O::Txn(TxnOutcome { succeeded, failed_condition, revision, results }) => {
                Outcome::Txn { succeeded, failed_condition, revision, results: results.into_iter().map(TxnResult::from).collect() }
            }
        }
    }
}

impl From<TxnResult> for txn::TxnResult {
    fn from(result: TxnResult) -> Self {
        match result {
            TxnResult::Wrote(outcome) => txn::TxnResult::Wrote(outcome.into()),
            TxnResult::Got { key, record } => txn::TxnResult::Got { key, record },
            TxnResult::Listed { prefix, items, more } => txn::TxnResult::Listed { prefix, items, more },
        }
    }
}

impl From<txn::TxnResult> for TxnResult {
    fn from(result: txn::TxnResult) -> Self {
        match result {
            txn::TxnResult::Wrote(outcome) => TxnResult::Wrote(outcome.into()),
            txn::TxnResult::Got { key, record } => TxnResult::Got { key, record },
            txn::TxnResult::Listed { prefix, items, more } => TxnResult::Listed { prefix, items, more },
        }
    }
}

impl From<Rejection> for current::Rejection {
    fn from(rejection: Rejection) -> Self {
        use current::Rejection as R;
        match rejection {
            Rejection::NotFound { key } => R::Kv(KvRejection::NotFound { key }),
            Rejection::PreconditionFailed { key, current } => R::Kv(KvRejection::PreconditionFailed { key, current }),
            Rejection::IdempotencyKeyReused { key } => R::IdempotencyKeyReused { key },
            Rejection::LeaseNotFound { id } => R::Lease(LeaseRejection::NotFound { id }),
            Rejection::LeaseLimit { limit } => R::Lease(LeaseRejection::Limit { limit }),
            Rejection::LockBusy { name, holder, waiters } => R::Lock(LockRejection::Busy { name, holder, waiters }),
            Rejection::LockLimit { name, limit } => R::Lock(LockRejection::Limit { name, limit }),
            Rejection::StaleToken { name, token, current } => R::Lock(LockRejection::StaleToken { name, token, current }),
            Rejection::FenceRejected { lock, token, current } => R::Lock(LockRejection::FenceRejected { lock, token, current }),
            Rejection::RingFull { ring, limit } => R::Ring(RingRejection::Full { ring, limit }),
            Rejection::RingMemberNotFound { ring, member } => R::Ring(RingRejection::MemberNotFound { ring, member }),
            Rejection::RingMemberInvalid { ring, member } => R::Ring(RingRejection::MemberInvalid { ring, member }),
            Rejection::QueueNotFound { queue } => R::Queue(QueueRejection::NotFound { queue }),
            Rejection::QueueLimit { limit } => R::Queue(QueueRejection::Limit { limit }),
            Rejection::QueueFull { queue, limit } => R::Queue(QueueRejection::Full { queue, limit }),
            Rejection::MessageTooLarge { queue, len, max } => R::Queue(QueueRejection::MessageTooLarge { queue, len, max }),
            Rejection::QueueInvalid { queue, reason } => R::Queue(QueueRejection::Invalid { queue, reason }),
            Rejection::StaleReceipt { queue, receipt, current_delivery } => R::Queue(QueueRejection::StaleReceipt { queue, receipt, current_delivery }),
            Rejection::TopicNotFound { topic } => R::Topic(TopicRejection::NotFound { topic }),
            Rejection::TopicLimit { limit } => R::Topic(TopicRejection::Limit { limit }),
            Rejection::TopicMessageTooLarge { topic, len, max } => R::Topic(TopicRejection::MessageTooLarge { topic, len, max }),
            Rejection::TopicInvalid { topic, reason } => R::Topic(TopicRejection::Invalid { topic, reason }),
            Rejection::NotBatchable => R::NotBatchable,
            Rejection::TokenInvalid { reason } => R::Auth(AuthRejection::TokenInvalid { reason }),
            Rejection::TokenLimit { limit } => R::Auth(AuthRejection::TokenLimit { limit }),
            Rejection::TokenNotFound { id } => R::Auth(AuthRejection::TokenNotFound { id }),
            Rejection::LastAdminToken { id } => R::Auth(AuthRejection::LastAdminToken { id }),
            Rejection::NotAdminToken { id } => R::Auth(AuthRejection::NotAdminToken { id }),
            Rejection::TxnInvalid { reason } => R::Txn(TxnRejection::Invalid { reason }),
            Rejection::TxnConditionRefused { condition, rejection } => {
                R::Txn(TxnRejection::ConditionRefused { condition, rejection: Box::new(R::from(*rejection)) })
            }
            Rejection::TxnOpRefused { succeeded, op, rejection } => R::Txn(TxnRejection::OpRefused { succeeded, op, rejection: Box::new(R::from(*rejection)) }),
        }
    }
}

impl From<current::Rejection> for Rejection {
    fn from(rejection: current::Rejection) -> Self {
        use current::Rejection as R;
        match rejection {
            R::Kv(KvRejection::NotFound { key }) => Rejection::NotFound { key },
            R::Kv(KvRejection::PreconditionFailed { key, current }) => Rejection::PreconditionFailed { key, current },
            R::Lease(LeaseRejection::NotFound { id }) => Rejection::LeaseNotFound { id },
            R::Lease(LeaseRejection::Limit { limit }) => Rejection::LeaseLimit { limit },
            R::Lock(LockRejection::Busy { name, holder, waiters }) => Rejection::LockBusy { name, holder, waiters },
            R::Lock(LockRejection::Limit { name, limit }) => Rejection::LockLimit { name, limit },
            R::Lock(LockRejection::StaleToken { name, token, current }) => Rejection::StaleToken { name, token, current },
            R::Lock(LockRejection::FenceRejected { lock, token, current }) => Rejection::FenceRejected { lock, token, current },
            R::Ring(RingRejection::Full { ring, limit }) => Rejection::RingFull { ring, limit },
            R::Ring(RingRejection::MemberNotFound { ring, member }) => Rejection::RingMemberNotFound { ring, member },
            R::Ring(RingRejection::MemberInvalid { ring, member }) => Rejection::RingMemberInvalid { ring, member },
            R::Queue(QueueRejection::NotFound { queue }) => Rejection::QueueNotFound { queue },
            R::Queue(QueueRejection::Limit { limit }) => Rejection::QueueLimit { limit },
            R::Queue(QueueRejection::Full { queue, limit }) => Rejection::QueueFull { queue, limit },
            R::Queue(QueueRejection::MessageTooLarge { queue, len, max }) => Rejection::MessageTooLarge { queue, len, max },
            R::Queue(QueueRejection::Invalid { queue, reason }) => Rejection::QueueInvalid { queue, reason },
            R::Queue(QueueRejection::StaleReceipt { queue, receipt, current_delivery }) => Rejection::StaleReceipt { queue, receipt, current_delivery },
            R::Topic(TopicRejection::NotFound { topic }) => Rejection::TopicNotFound { topic },
            R::Topic(TopicRejection::Limit { limit }) => Rejection::TopicLimit { limit },
            R::Topic(TopicRejection::MessageTooLarge { topic, len, max }) => Rejection::TopicMessageTooLarge { topic, len, max },
            R::Topic(TopicRejection::Invalid { topic, reason }) => Rejection::TopicInvalid { topic, reason },
            R::Auth(AuthRejection::TokenInvalid { reason }) => Rejection::TokenInvalid { reason },
            R::Auth(AuthRejection::TokenLimit { limit }) => Rejection::TokenLimit { limit },
            R::Auth(AuthRejection::TokenNotFound { id }) => Rejection::TokenNotFound { id },
            R::Auth(AuthRejection::LastAdminToken { id }) => Rejection::LastAdminToken { id },
            R::Auth(AuthRejection::NotAdminToken { id }) => Rejection::NotAdminToken { id },
            R::Txn(TxnRejection::Invalid { reason }) => Rejection::TxnInvalid { reason },
            R::Txn(TxnRejection::ConditionRefused { condition, rejection }) => {
                Rejection::TxnConditionRefused { condition, rejection: Box::new(Rejection::from(*rejection)) }
            }
            R::Txn(TxnRejection::OpRefused { succeeded, op, rejection }) => {
                Rejection::TxnOpRefused { succeeded, op, rejection: Box::new(Rejection::from(*rejection)) }
            }
            R::IdempotencyKeyReused { key } => Rejection::IdempotencyKeyReused { key },
            // Format 4's are never sent to a version-2 peer (their commands are not).
            R::NotBatchable | R::List(_) => Rejection::NotBatchable,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn requests() -> Vec<current::Request> {
        let receipt = Receipt { id: 7, delivery: 300 };
        let fence = Some(Fence { lock: "jobs/leader".into(), token: 42 });
        let put = KvCommand::Put { key: "config/a".into(), value: vec![0, 1, 255], precondition: Precondition::ModRevision(9), lease: Some(12), fence };
        let request = |command: current::Command, now_ms| current::Request { idempotency_key: Some("key-1".into()), now_ms, command };
        let transaction = txn::Txn {
            compare: vec![Condition::LeaseAlive { lease: 12 }, Condition::ReceiptValid { queue: "jobs".into(), receipt }],
            success: vec![TxnOp::Enqueue { queue: "jobs".into(), payload: b"next".to_vec(), delay_ms: 5 }],
            failure: vec![TxnOp::Publish { topic: "news".into(), payload: b"event".to_vec() }],
        };
        vec![
            request(put.clone().into(), 0),
            request(KvCommand::DeletePrefix { prefix: "jobs/".into() }.into(), 0),
            request(current::Command::Tick { advance_ms: 250 }, 0),
            request(LeaseCommand::Grant { ttl_ms: 10_000 }.into(), 77),
            request(LeaseCommand::KeepAlive { id: 12 }.into(), 78),
            request(LockCommand::Acquire { name: "db".into(), lease: 12, wait: true }.into(), 0),
            request(RingCommand::Leave { ring: "cache".into(), member: "m1".into() }.into(), 0),
            request(QueueCommand::Enqueue { queue: "jobs".into(), payload: b"job 1".to_vec(), delay_ms: 5 }.into(), 79),
            request(QueueCommand::Receive { queue: "jobs".into(), max: 10, visibility_ms: Some(30_000) }.into(), 80),
            request(QueueCommand::Nack { queue: "jobs".into(), receipt, delay_ms: 1 }.into(), 81),
            request(QueueCommand::Extend { queue: "jobs".into(), receipt, visibility_ms: 1000 }.into(), 82),
            request(QueueCommand::Ack { queue: "jobs".into(), receipt }.into(), 0),
            request(TopicCommand::Publish { topic: "news".into(), payload: b"event".to_vec() }.into(), 83),
            request(AuthCommand::Enable { by: 2 }.into(), 0),
            request(
                current::Command::Batch(vec![
                    current::Request { idempotency_key: None, now_ms: 0, command: put.clone().into() },
                    current::Request { idempotency_key: Some("b".into()), now_ms: 0, command: put.into() },
                ]),
                0,
            ),
            request(current::Command::Txn(transaction), 84),
        ]
    }

    fn outcomes() -> Vec<current::Outcome> {
        let meta = KeyMeta { create_revision: 3, mod_revision: 5, version: 2 };
        let record = KvRecord { value: b"5".to_vec(), meta, lease: None };
        let receipt = Receipt { id: 7, delivery: 300 };
        vec![
            current::Outcome::Noop,
            KvOutcome::Put { revision: 5, meta, created: false }.into(),
            LeaseOutcome::Alive { id: 12, ttl_ms: 10_000, expires_at_ms: 11_250 }.into(),
            LockOutcome::Released { name: "db".into(), next: Some(Holding { token: 42, lease: 12 }) }.into(),
            RingOutcome::Changed { ring: "cache".into(), epoch: 4, members: 2 }.into(),
            QueueOutcome::Extended { queue: "jobs".into(), receipt, until_ms: 31_000 }.into(),
            TopicOutcome::Published { topic: "news".into(), offset: 9 }.into(),
            AuthOutcome::Changed { enabled: true }.into(),
            current::Outcome::Ticked { clock_ms: 1250, expired: 1 },
            current::Outcome::Batch(vec![current::Response { replayed: true, outcome: KvRejection::NotFound { key: "k".into() }.into() }]),
            current::Outcome::Txn(TxnOutcome {
                succeeded: false,
                failed_condition: Some(3),
                revision: 9,
                results: vec![
                    txn::TxnResult::Wrote(QueueOutcome::Acked { queue: "jobs".into(), id: 7 }.into()),
                    txn::TxnResult::Got { key: "acct/a".into(), record: Some(record.clone()) },
                    txn::TxnResult::Listed { prefix: "acct/".into(), items: vec![("acct/a".into(), record)], more: true },
                ],
            }),
        ]
    }

    fn rejections() -> Vec<current::Rejection> {
        let receipt = Receipt { id: 7, delivery: 300 };
        vec![
            KvRejection::PreconditionFailed { key: "k".into(), current: None }.into(),
            LeaseRejection::Limit { limit: 100_000 }.into(),
            LockRejection::FenceRejected { lock: "db".into(), token: 41, current: Some(42) }.into(),
            RingRejection::MemberInvalid { ring: "cache".into(), member: "m9".into() }.into(),
            QueueRejection::MessageTooLarge { queue: "jobs".into(), len: 5000, max: 4096 }.into(),
            TopicRejection::Invalid { topic: "news".into(), reason: "max_messages is 0".into() }.into(),
            AuthRejection::LastAdminToken { id: 2 }.into(),
            current::Rejection::IdempotencyKeyReused { key: "order-42".into() },
            current::Rejection::NotBatchable,
            current::Rejection::Txn(TxnRejection::ConditionRefused {
                condition: 2,
                rejection: Box::new(QueueRejection::NotFound { queue: "jobs".into() }.into()),
            }),
            current::Rejection::Txn(TxnRejection::OpRefused {
                succeeded: true,
                op: 1,
                rejection: Box::new(QueueRejection::StaleReceipt { queue: "jobs".into(), receipt, current_delivery: None }.into()),
            }),
        ]
    }

    #[test]
    fn requests_convert_down_and_back_up_unchanged() {
        for request in requests() {
            let down = Request::from(request.clone());
            assert_eq!(current::Request::from(down), request);
        }
    }

    #[test]
    fn the_time_stamp_moves_between_the_envelope_and_the_command() {
        let stamped = current::Request { idempotency_key: None, now_ms: 77, command: LeaseCommand::Grant { ttl_ms: 10_000 }.into() };
        assert_eq!(Request::from(stamped).command, Command::LeaseGrant { ttl_ms: 10_000, now_ms: 77 });
        let unstamped = Request { idempotency_key: None, command: Command::LeaseRevoke { id: 12 } };
        assert_eq!(current::Request::from(unstamped).now_ms, 0);
    }

    #[test]
    fn outcomes_and_rejections_convert_down_and_back_up_unchanged() {
        for outcome in outcomes() {
            let response = current::Response { replayed: false, outcome };
            assert_eq!(current::Response::from(Response::from(response.clone())), response);
        }
        for rejection in rejections() {
            assert_eq!(current::Rejection::from(Rejection::from(rejection.clone())), rejection);
        }
    }
}
