//! The state machine's formats, pinned (`crate::golden`): every command as the log
//! carries it (`tests/golden/commands.txt`), every outcome and rejection as the
//! idempotency table stores it (the same file), and every record and key that a
//! workload of every primitive leaves in the state database, as a snapshot carries
//! them (`tests/golden/state.txt`).
//!
//! The `*_variant` matches have no wildcard on purpose: a new variant does not compile
//! here until it has a name, and the counts make the samples cover it.

use super::auth::{AuthCommand, AuthOutcome, AuthRejection};
use super::command::{Command, Fence, KeyMeta, Outcome, Precondition, Receipt, Rejection, Request, Response};
use super::expiry::Ttl;
use super::kv::{KvCommand, KvOutcome, KvRejection};
use super::lease::{LeaseCommand, LeaseOutcome, LeaseRejection};
use super::list::{End, ListCommand, ListOutcome, ListRejection};
use super::lock::Holding;
use super::lock::{LockCommand, LockOutcome, LockRejection};
use super::queue::{QueueCommand, QueueOutcome, QueueRejection};
use super::ring::{RingCommand, RingOutcome, RingRejection};
use super::session::{Behavior, SessionCommand, SessionOutcome};
use super::tests::{Fixture, additions_since_format_3, at, every_primitive, state_lines};
use super::topic::{TopicCommand, TopicOutcome, TopicRejection};
use super::txn::{Condition, KeyTest, Txn, TxnOp, TxnResult};
use super::txn::{TxnOutcome, TxnRejection};
use crate::golden;

const COMMAND_VARIANTS: usize = 40;
const OUTCOME_VARIANTS: usize = 35;
const REJECTION_VARIANTS: usize = 36;

fn command_variant(command: &Command) -> &'static str {
    match command {
        Command::Kv(KvCommand::Put { .. }) => "Put",
        Command::Kv(KvCommand::Delete { .. }) => "Delete",
        Command::Tick { .. } => "Tick",
        Command::Lease(LeaseCommand::Grant { .. }) => "LeaseGrant",
        Command::Lease(LeaseCommand::KeepAlive { .. }) => "LeaseKeepAlive",
        Command::Lease(LeaseCommand::Revoke { .. }) => "LeaseRevoke",
        Command::Lock(LockCommand::Acquire { .. }) => "LockAcquire",
        Command::Lock(LockCommand::Release { .. }) => "LockRelease",
        Command::Lock(LockCommand::CancelWait { .. }) => "LockCancelWait",
        Command::Ring(RingCommand::Join(_)) => "RingJoin",
        Command::Ring(RingCommand::Leave { .. }) => "RingLeave",
        Command::Queue(QueueCommand::Configure { .. }) => "QueueConfigure",
        Command::Queue(QueueCommand::Enqueue { .. }) => "QueueEnqueue",
        Command::Queue(QueueCommand::Receive { .. }) => "QueueReceive",
        Command::Queue(QueueCommand::Ack { .. }) => "QueueAck",
        Command::Queue(QueueCommand::Nack { .. }) => "QueueNack",
        Command::Queue(QueueCommand::Extend { .. }) => "QueueExtend",
        Command::Queue(QueueCommand::Delete { .. }) => "QueueDelete",
        Command::Topic(TopicCommand::Configure { .. }) => "TopicConfigure",
        Command::Topic(TopicCommand::Publish { .. }) => "TopicPublish",
        Command::Topic(TopicCommand::Delete { .. }) => "TopicDelete",
        Command::Batch(_) => "Batch",
        Command::Auth(AuthCommand::TokenCreate(_)) => "TokenCreate",
        Command::Auth(AuthCommand::TokenRevoke { .. }) => "TokenRevoke",
        Command::Auth(AuthCommand::Enable { .. }) => "AuthEnable",
        Command::Auth(AuthCommand::Disable) => "AuthDisable",
        Command::Kv(KvCommand::DeletePrefix { .. }) => "DeletePrefix",
        Command::Txn(_) => "Txn",
        Command::Kv(KvCommand::PutWithTtl { .. }) => "PutWithTtl",
        Command::Kv(KvCommand::Expire { .. }) => "Expire",
        Command::Kv(KvCommand::PutWithFlags { .. }) => "PutWithFlags",
        Command::List(ListCommand::Push { .. }) => "ListPush",
        Command::List(ListCommand::Pop { .. }) => "ListPop",
        Command::List(ListCommand::Move { .. }) => "ListMove",
        Command::List(ListCommand::Set { .. }) => "ListSet",
        Command::List(ListCommand::Remove { .. }) => "ListRemove",
        Command::List(ListCommand::Trim { .. }) => "ListTrim",
        Command::Session(SessionCommand::Create { .. }) => "SessionCreate",
        Command::Session(SessionCommand::Acquire { .. }) => "SessionAcquire",
        Command::Session(SessionCommand::Release { .. }) => "SessionRelease",
    }
}

fn outcome_variant(outcome: &Outcome) -> &'static str {
    match outcome {
        Outcome::Noop => "Noop",
        Outcome::Kv(KvOutcome::Put { .. }) => "Put",
        Outcome::Kv(KvOutcome::Deleted { .. }) => "Deleted",
        Outcome::Ticked { .. } => "Ticked",
        Outcome::Lease(LeaseOutcome::Alive { .. }) => "Lease",
        Outcome::Lease(LeaseOutcome::Revoked { .. }) => "LeaseRevoked",
        Outcome::Lock(LockOutcome::Held { .. }) => "LockHeld",
        Outcome::Lock(LockOutcome::Waiting { .. }) => "LockWaiting",
        Outcome::Lock(LockOutcome::Released { .. }) => "LockReleased",
        Outcome::Lock(LockOutcome::WaitCancelled { .. }) => "LockWaitCancelled",
        Outcome::Ring(RingOutcome::Changed { .. }) => "RingChanged",
        Outcome::Queue(QueueOutcome::Configured { .. }) => "QueueConfigured",
        Outcome::Queue(QueueOutcome::Enqueued { .. }) => "Enqueued",
        Outcome::Queue(QueueOutcome::Received { .. }) => "Received",
        Outcome::Queue(QueueOutcome::Acked { .. }) => "Acked",
        Outcome::Queue(QueueOutcome::Nacked { .. }) => "Nacked",
        Outcome::Queue(QueueOutcome::Extended { .. }) => "Extended",
        Outcome::Queue(QueueOutcome::Deleted { .. }) => "QueueDeleted",
        Outcome::Topic(TopicOutcome::Configured { .. }) => "TopicConfigured",
        Outcome::Topic(TopicOutcome::Published { .. }) => "Published",
        Outcome::Topic(TopicOutcome::Deleted { .. }) => "TopicDeleted",
        Outcome::Rejected(_) => "Rejected",
        Outcome::Batch(_) => "Batch",
        Outcome::Auth(AuthOutcome::TokenCreated { .. }) => "TokenCreated",
        Outcome::Auth(AuthOutcome::TokenRevoked { .. }) => "TokenRevoked",
        Outcome::Auth(AuthOutcome::Changed { .. }) => "AuthChanged",
        Outcome::Kv(KvOutcome::PrefixDeleted { .. }) => "PrefixDeleted",
        Outcome::Txn(TxnOutcome { .. }) => "Txn",
        Outcome::List(ListOutcome::Pushed { .. }) => "ListPushed",
        Outcome::List(ListOutcome::Popped { .. }) => "ListPopped",
        Outcome::List(ListOutcome::Moved { .. }) => "ListMoved",
        Outcome::List(ListOutcome::Set { .. }) => "ListSet",
        Outcome::List(ListOutcome::Removed { .. }) => "ListRemoved",
        Outcome::List(ListOutcome::Trimmed { .. }) => "ListTrimmed",
        Outcome::Session(SessionOutcome::Held { .. }) => "SessionHeld",
    }
}

fn rejection_variant(rejection: &Rejection) -> &'static str {
    match rejection {
        Rejection::Kv(KvRejection::NotFound { .. }) => "NotFound",
        Rejection::Kv(KvRejection::PreconditionFailed { .. }) => "PreconditionFailed",
        Rejection::IdempotencyKeyReused { .. } => "IdempotencyKeyReused",
        Rejection::Lease(LeaseRejection::NotFound { .. }) => "LeaseNotFound",
        Rejection::Lease(LeaseRejection::Limit { .. }) => "LeaseLimit",
        Rejection::Lock(LockRejection::Busy { .. }) => "LockBusy",
        Rejection::Lock(LockRejection::Limit { .. }) => "LockLimit",
        Rejection::Lock(LockRejection::StaleToken { .. }) => "StaleToken",
        Rejection::Lock(LockRejection::FenceRejected { .. }) => "FenceRejected",
        Rejection::Ring(RingRejection::Full { .. }) => "RingFull",
        Rejection::Ring(RingRejection::MemberNotFound { .. }) => "RingMemberNotFound",
        Rejection::Ring(RingRejection::MemberInvalid { .. }) => "RingMemberInvalid",
        Rejection::Queue(QueueRejection::NotFound { .. }) => "QueueNotFound",
        Rejection::Queue(QueueRejection::Limit { .. }) => "QueueLimit",
        Rejection::Queue(QueueRejection::Full { .. }) => "QueueFull",
        Rejection::Queue(QueueRejection::MessageTooLarge { .. }) => "MessageTooLarge",
        Rejection::Queue(QueueRejection::Invalid { .. }) => "QueueInvalid",
        Rejection::Queue(QueueRejection::StaleReceipt { .. }) => "StaleReceipt",
        Rejection::Topic(TopicRejection::NotFound { .. }) => "TopicNotFound",
        Rejection::Topic(TopicRejection::Limit { .. }) => "TopicLimit",
        Rejection::Topic(TopicRejection::MessageTooLarge { .. }) => "TopicMessageTooLarge",
        Rejection::Topic(TopicRejection::Invalid { .. }) => "TopicInvalid",
        Rejection::NotBatchable => "NotBatchable",
        Rejection::Auth(AuthRejection::TokenInvalid { .. }) => "TokenInvalid",
        Rejection::Auth(AuthRejection::TokenLimit { .. }) => "TokenLimit",
        Rejection::Auth(AuthRejection::TokenNotFound { .. }) => "TokenNotFound",
        Rejection::Auth(AuthRejection::LastAdminToken { .. }) => "LastAdminToken",
        Rejection::Auth(AuthRejection::NotAdminToken { .. }) => "NotAdminToken",
        Rejection::Txn(TxnRejection::Invalid { .. }) => "TxnInvalid",
        Rejection::Txn(TxnRejection::ConditionRefused { .. }) => "TxnConditionRefused",
        Rejection::Txn(TxnRejection::OpRefused { .. }) => "TxnOpRefused",
        Rejection::List(ListRejection::WrongType { .. }) => "WrongType",
        Rejection::List(ListRejection::NoSuchKey { .. }) => "ListNoSuchKey",
        Rejection::List(ListRejection::IndexOutOfRange { .. }) => "ListIndexOutOfRange",
        Rejection::List(ListRejection::TooLong { .. }) => "ListTooLong",
        Rejection::List(ListRejection::Invalid { .. }) => "ListInvalid",
    }
}

/// The parts of a transaction, each by its variant: the samples below hold one of each.
fn txn_part_variant(part: &TxnPart) -> &'static str {
    match part {
        TxnPart::Condition(Condition::Key { test, .. }) => match test {
            KeyTest::Absent => "key absent",
            KeyTest::Exists => "key exists",
            KeyTest::Value(_) => "key value",
            KeyTest::ModRevision(_) => "key mod_revision",
            KeyTest::Version(_) => "key version",
        },
        TxnPart::Condition(Condition::LeaseAlive { .. }) => "lease alive",
        TxnPart::Condition(Condition::LockHeld { .. }) => "lock held",
        TxnPart::Condition(Condition::RingEpoch { .. }) => "ring epoch",
        TxnPart::Condition(Condition::ReceiptValid { .. }) => "receipt valid",
        TxnPart::Op(op) => op.name(),
        TxnPart::Result(TxnResult::Wrote(_)) => "wrote",
        TxnPart::Result(TxnResult::Got { .. }) => "got",
        TxnPart::Result(TxnResult::Listed { .. }) => "listed",
    }
}

enum TxnPart {
    Condition(Condition),
    Op(TxnOp),
    Result(TxnResult),
}

const TXN_PART_VARIANTS: usize = 9 + 14 + 3;

fn txn_sample() -> Txn {
    let receipt = Receipt { id: 7, delivery: 300 };
    let key = |test| Condition::Key { key: "acct/a".into(), test };
    Txn {
        compare: vec![
            key(KeyTest::Absent),
            key(KeyTest::Exists),
            key(KeyTest::Value(b"10".to_vec())),
            key(KeyTest::ModRevision(5)),
            key(KeyTest::Version(2)),
            Condition::LeaseAlive { lease: 12 },
            Condition::LockHeld { lock: "db".into(), token: 42 },
            Condition::RingEpoch { ring: "cache".into(), epoch: 4 },
            Condition::ReceiptValid { queue: "jobs".into(), receipt },
        ],
        success: vec![
            TxnOp::Put { key: "acct/a".into(), value: b"5".to_vec(), lease: Some(12) },
            TxnOp::Delete { key: "acct/b".into() },
            TxnOp::Get { key: "acct/c".into() },
            TxnOp::List { prefix: "acct/".into(), limit: 10 },
            TxnOp::Enqueue { queue: "jobs".into(), payload: b"next".to_vec(), delay_ms: 5 },
            TxnOp::Ack { queue: "jobs".into(), receipt },
        ],
        failure: vec![
            TxnOp::Nack { queue: "jobs".into(), receipt, delay_ms: 1 },
            TxnOp::Extend { queue: "jobs".into(), receipt, visibility_ms: 1000 },
            TxnOp::Publish { topic: "news".into(), payload: b"event".to_vec() },
            TxnOp::LockRelease { lock: "db".into(), token: 42 },
            TxnOp::LeaseRevoke { lease: 12 },
        ],
    }
}

/// The operations log format 4 added, pinned on their own (the transaction sample
/// stays the one version 2 has a twin of).
fn format_4_txn_ops() -> Vec<(&'static str, TxnOp)> {
    vec![
        ("PutWithTtl", TxnOp::PutWithTtl { key: "acct/d".into(), value: b"6".to_vec(), lease: None, ttl: Ttl::After { ttl_ms: 5_000 } }),
        ("Expire", TxnOp::Expire { key: "acct/e".into(), ttl: Ttl::Clear }),
        ("OnList", TxnOp::OnList(ListCommand::Pop { key: "acct/log".into(), end: End::Left, count: 1 })),
    ]
}

/// Whether a sample of `commands.txt` is of format 4 or later (version 2 has no twin
/// of it).
pub(super) fn of_format_4(name: &str) -> bool {
    let format_4 = [
        "command.PutWithTtl",
        "command.Expire",
        "command.List",
        "command.PutWithFlags",
        "command.Session",
        "outcome.List",
        "outcome.Session",
        "rejection.List",
        "rejection.WrongType",
        "txn_op.",
    ];
    format_4.iter().any(|prefix| name.starts_with(prefix))
}

fn txn_outcome_sample() -> Outcome {
    let record = super::kv::KvRecord { value: b"5".to_vec(), meta: KeyMeta { create_revision: 3, mod_revision: 9, version: 3 }, lease: None };
    Outcome::Txn(TxnOutcome {
        succeeded: false,
        failed_condition: Some(3),
        revision: 9,
        results: vec![
            TxnResult::Wrote(Outcome::Queue(QueueOutcome::Acked { queue: "jobs".into(), id: 7 })),
            TxnResult::Got { key: "acct/a".into(), record: Some(record.clone()) },
            TxnResult::Listed { prefix: "acct/".into(), items: vec![("acct/a".into(), record)], more: true },
        ],
    })
}

#[test]
fn the_transaction_samples_hold_every_condition_operation_and_result() {
    let txn = txn_sample();
    let Outcome::Txn(TxnOutcome { results, .. }) = txn_outcome_sample() else { unreachable!("the sample is a transaction outcome") };
    let parts: Vec<TxnPart> = (txn.compare.into_iter().map(TxnPart::Condition))
        .chain(txn.success.into_iter().chain(txn.failure).chain(format_4_txn_ops().into_iter().map(|(_, op)| op)).map(TxnPart::Op))
        .chain(results.into_iter().map(TxnPart::Result))
        .collect();
    named(&parts, txn_part_variant, TXN_PART_VARIANTS, "transaction part");
}

/// Every command in its envelope, as the log carries it; the commands that read the
/// clock carry the leader's stamp.
fn commands() -> Vec<Request> {
    let receipt = Receipt { id: 7, delivery: 300 };
    let fence = Some(Fence { lock: "jobs/leader".into(), token: 42 });
    let put =
        Command::Kv(KvCommand::Put { key: "config/a".into(), value: vec![0, 1, 255], precondition: Precondition::ModRevision(9), lease: Some(12), fence });
    vec![
        put.clone().into(),
        Command::Kv(KvCommand::Delete { key: "config/b".into(), precondition: Precondition::Exists, fence: None }).into(),
        Command::Tick { advance_ms: 250 }.into(),
        at(77, LeaseCommand::Grant { ttl_ms: 10_000 }),
        at(78, LeaseCommand::KeepAlive { id: 12 }),
        Command::Lease(LeaseCommand::Revoke { id: 12 }).into(),
        Command::Lock(LockCommand::Acquire { name: "db".into(), lease: 12, wait: true }).into(),
        Command::Lock(LockCommand::Release { name: "db".into(), token: 41 }).into(),
        Command::Lock(LockCommand::CancelWait { name: "db".into(), lease: 12 }).into(),
        Command::Ring(RingCommand::Join(super::ring::Join {
            ring: "cache".into(),
            member: "m1".into(),
            address: "10.0.0.1:80".into(),
            weight: 2,
            metadata: "zone=a".into(),
            lease: Some(12),
        }))
        .into(),
        Command::Ring(RingCommand::Leave { ring: "cache".into(), member: "m1".into() }).into(),
        Command::Queue(QueueCommand::Configure {
            queue: "jobs".into(),
            settings: super::queue::QueueSettings {
                visibility_ms: 30_000,
                max_deliveries: Some(5),
                dead_letter_queue: Some("jobs-dead".into()),
                max_length: 1000,
                max_message_bytes: 4096,
            },
        })
        .into(),
        at(79, QueueCommand::Enqueue { queue: "jobs".into(), payload: b"job 1".to_vec(), delay_ms: 5 }),
        at(80, QueueCommand::Receive { queue: "jobs".into(), max: 10, visibility_ms: Some(30_000) }),
        Command::Queue(QueueCommand::Ack { queue: "jobs".into(), receipt }).into(),
        at(81, QueueCommand::Nack { queue: "jobs".into(), receipt, delay_ms: 1 }),
        at(82, QueueCommand::Extend { queue: "jobs".into(), receipt, visibility_ms: 1000 }),
        Command::Queue(QueueCommand::Delete { queue: "jobs".into() }).into(),
        Command::Topic(TopicCommand::Configure {
            topic: "news".into(),
            settings: super::topic::TopicSettings { max_messages: 100, max_bytes: 1 << 20, max_age_ms: 60_000, max_message_bytes: 512 },
        })
        .into(),
        at(83, TopicCommand::Publish { topic: "news".into(), payload: b"event".to_vec() }),
        Command::Topic(TopicCommand::Delete { topic: "news".into() }).into(),
        Command::Batch(vec![Request::from(put.clone()), Request { idempotency_key: Some("b".into()), ..Request::from(put) }]).into(),
        Command::Auth(AuthCommand::TokenCreate(super::auth::TokenRecord {
            name: "ci".into(),
            role: super::auth::Role::Write,
            prefixes: vec!["app/".into()],
            secret_sha256: [0xab; 32],
        }))
        .into(),
        Command::Auth(AuthCommand::TokenRevoke { id: 3 }).into(),
        Command::Auth(AuthCommand::Enable { by: 2 }).into(),
        Command::Auth(AuthCommand::Disable).into(),
        Command::Kv(KvCommand::DeletePrefix { prefix: "jobs/".into() }).into(),
        at(84, txn_sample()),
        at(
            85,
            KvCommand::PutWithTtl {
                key: "session/a".into(),
                value: b"on".to_vec(),
                precondition: Precondition::Absent,
                lease: None,
                fence: None,
                ttl: Ttl::After { ttl_ms: 30_000 },
            },
        ),
        at(86, KvCommand::Expire { key: "session/a".into(), ttl: Ttl::After { ttl_ms: 60_000 }, precondition: Precondition::ModRevision(9) }),
        Command::List(ListCommand::Push { key: "jobs".into(), items: vec![b"a".to_vec(), b"b".to_vec()], end: End::Left, only_existing: false }).into(),
        Command::List(ListCommand::Pop { key: "jobs".into(), end: End::Right, count: 2 }).into(),
        Command::List(ListCommand::Move { source: "jobs".into(), destination: "done".into(), from: End::Right, to: End::Left }).into(),
        Command::List(ListCommand::Set { key: "jobs".into(), index: -1, item: b"z".to_vec() }).into(),
        Command::List(ListCommand::Remove { key: "jobs".into(), count: -2, item: b"a".to_vec() }).into(),
        Command::List(ListCommand::Trim { key: "jobs".into(), start: 1, stop: -1 }).into(),
        KvCommand::PutWithFlags {
            key: "config/feature".into(),
            value: b"on".to_vec(),
            precondition: Precondition::ModRevision(4),
            lease: None,
            fence: None,
            ttl: Ttl::Clear,
            flags: 42,
        }
        .into(),
        at(87, SessionCommand::Create { ttl_ms: 10_000, name: "worker".into(), node: "host-7".into(), behavior: Behavior::Delete, lock_delay_ms: 15_000 }),
        at(88, SessionCommand::Acquire { key: "locks/leader".into(), value: b"me".to_vec(), flags: 3, session: 9 }),
        SessionCommand::Release { key: "locks/leader".into(), value: b"done".to_vec(), flags: 0, session: 9 }.into(),
    ]
}

fn outcomes() -> Vec<Outcome> {
    let meta = KeyMeta { create_revision: 3, mod_revision: 5, version: 2 };
    let holding = Holding { token: 42, lease: 12 };
    let receipt = Receipt { id: 7, delivery: 300 };
    vec![
        Outcome::Noop,
        Outcome::Kv(KvOutcome::Put { revision: 5, meta, created: false }),
        Outcome::Kv(KvOutcome::Deleted { revision: 6, prev: meta }),
        Outcome::Ticked { clock_ms: 1250, expired: 1 },
        Outcome::Lease(LeaseOutcome::Alive { id: 12, ttl_ms: 10_000, expires_at_ms: 11_250 }),
        Outcome::Lease(LeaseOutcome::Revoked { id: 12, deleted_keys: 2, revision: 8 }),
        Outcome::Lock(LockOutcome::Held { name: "db".into(), token: 42, lease: 12 }),
        Outcome::Lock(LockOutcome::Waiting { name: "db".into(), position: 1 }),
        Outcome::Lock(LockOutcome::Released { name: "db".into(), next: Some(holding) }),
        Outcome::Lock(LockOutcome::WaitCancelled { name: "db".into(), holder: None }),
        Outcome::Ring(RingOutcome::Changed { ring: "cache".into(), epoch: 4, members: 2 }),
        Outcome::Queue(QueueOutcome::Configured { queue: "jobs".into(), created: true, settings: Default::default() }),
        Outcome::Queue(QueueOutcome::Enqueued { queue: "jobs".into(), id: 7 }),
        Outcome::Queue(QueueOutcome::Received {
            queue: "jobs".into(),
            messages: vec![super::queue::Delivered {
                receipt,
                deliveries: 1,
                payload: b"job 1".to_vec(),
                enqueued_at_ms: 79,
                until_ms: 30_080,
                dead_lettered_from: Some(("old".into(), 3)),
            }],
        }),
        Outcome::Queue(QueueOutcome::Acked { queue: "jobs".into(), id: 7 }),
        Outcome::Queue(QueueOutcome::Nacked { queue: "jobs".into(), id: 7, dead_lettered: true }),
        Outcome::Queue(QueueOutcome::Extended { queue: "jobs".into(), receipt, until_ms: 31_000 }),
        Outcome::Queue(QueueOutcome::Deleted { queue: "jobs".into(), deleted_messages: 3, deleted: true }),
        Outcome::Topic(TopicOutcome::Configured { topic: "news".into(), created: false, settings: Default::default() }),
        Outcome::Topic(TopicOutcome::Published { topic: "news".into(), offset: 9 }),
        Outcome::Topic(TopicOutcome::Deleted { topic: "news".into(), deleted_messages: 2, deleted: false }),
        Outcome::Rejected(Rejection::NotBatchable),
        Outcome::Batch(vec![Response { replayed: true, outcome: Outcome::Noop }]),
        Outcome::Auth(AuthOutcome::TokenCreated { id: 3 }),
        Outcome::Auth(AuthOutcome::TokenRevoked { id: 3 }),
        Outcome::Auth(AuthOutcome::Changed { enabled: true }),
        Outcome::Kv(KvOutcome::PrefixDeleted { deleted: 1000, revision: 2000, more: true }),
        txn_outcome_sample(),
        Outcome::List(ListOutcome::Pushed { len: 3, revision: 10 }),
        Outcome::List(ListOutcome::Popped { items: vec![b"a".to_vec(), b"b".to_vec()], revision: 11 }),
        Outcome::List(ListOutcome::Moved { item: Some(b"a".to_vec()), revision: 12 }),
        Outcome::List(ListOutcome::Set { revision: 13 }),
        Outcome::List(ListOutcome::Removed { removed: 2, revision: 14 }),
        Outcome::List(ListOutcome::Trimmed { revision: 15 }),
        Outcome::Session(SessionOutcome::Held { done: true, revision: 16 }),
    ]
}

fn rejections() -> Vec<Rejection> {
    let holding = Holding { token: 42, lease: 12 };
    let receipt = Receipt { id: 7, delivery: 300 };
    vec![
        Rejection::Kv(KvRejection::NotFound { key: "k".into() }),
        Rejection::Kv(KvRejection::PreconditionFailed { key: "k".into(), current: Some(KeyMeta { create_revision: 1, mod_revision: 2, version: 2 }) }),
        Rejection::IdempotencyKeyReused { key: "order-42".into() },
        Rejection::Lease(LeaseRejection::NotFound { id: 12 }),
        Rejection::Lease(LeaseRejection::Limit { limit: 100_000 }),
        Rejection::Lock(LockRejection::Busy { name: "db".into(), holder: holding, waiters: 2 }),
        Rejection::Lock(LockRejection::Limit { name: "db".into(), limit: 1000 }),
        Rejection::Lock(LockRejection::StaleToken { name: "db".into(), token: 41, current: Some(holding) }),
        Rejection::Lock(LockRejection::FenceRejected { lock: "db".into(), token: 41, current: Some(42) }),
        Rejection::Ring(RingRejection::Full { ring: "cache".into(), limit: 1000 }),
        Rejection::Ring(RingRejection::MemberNotFound { ring: "cache".into(), member: "m9".into() }),
        Rejection::Ring(RingRejection::MemberInvalid { ring: "cache".into(), member: "m9".into() }),
        Rejection::Queue(QueueRejection::NotFound { queue: "jobs".into() }),
        Rejection::Queue(QueueRejection::Limit { limit: 10_000 }),
        Rejection::Queue(QueueRejection::Full { queue: "jobs".into(), limit: 1000 }),
        Rejection::Queue(QueueRejection::MessageTooLarge { queue: "jobs".into(), len: 5000, max: 4096 }),
        Rejection::Queue(QueueRejection::Invalid { queue: "jobs".into(), reason: "its own dead-letter queue".into() }),
        Rejection::Queue(QueueRejection::StaleReceipt { queue: "jobs".into(), receipt, current_delivery: Some(301) }),
        Rejection::Topic(TopicRejection::NotFound { topic: "news".into() }),
        Rejection::Topic(TopicRejection::Limit { limit: 10_000 }),
        Rejection::Topic(TopicRejection::MessageTooLarge { topic: "news".into(), len: 600, max: 512 }),
        Rejection::Topic(TopicRejection::Invalid { topic: "news".into(), reason: "max_messages is 0".into() }),
        Rejection::NotBatchable,
        Rejection::Auth(AuthRejection::TokenInvalid { reason: "a name over 128 bytes".into() }),
        Rejection::Auth(AuthRejection::TokenLimit { limit: 1000 }),
        Rejection::Auth(AuthRejection::TokenNotFound { id: 3 }),
        Rejection::Auth(AuthRejection::LastAdminToken { id: 2 }),
        Rejection::Auth(AuthRejection::NotAdminToken { id: 3 }),
        Rejection::Txn(TxnRejection::Invalid { reason: "129 operations".into() }),
        Rejection::Txn(TxnRejection::ConditionRefused {
            condition: 2,
            rejection: Box::new(Rejection::Queue(QueueRejection::NotFound { queue: "jobs".into() })),
        }),
        Rejection::Txn(TxnRejection::OpRefused {
            succeeded: true,
            op: 1,
            rejection: Box::new(Rejection::Queue(QueueRejection::StaleReceipt { queue: "jobs".into(), receipt, current_delivery: None })),
        }),
        Rejection::List(ListRejection::WrongType { key: "config/a".into() }),
        Rejection::List(ListRejection::NoSuchKey { key: "jobs".into() }),
        Rejection::List(ListRejection::IndexOutOfRange { key: "jobs".into(), index: -9 }),
        Rejection::List(ListRejection::TooLong { key: "jobs".into(), limit: 1_000_000 }),
        Rejection::List(ListRejection::Invalid { reason: "a push adds 1 to 10000 items, not 0".into() }),
    ]
}

/// Names each sample by its variant, checking that every variant has exactly one.
fn named<T>(samples: &[T], variant: fn(&T) -> &'static str, variants: usize, what: &str) -> Vec<&'static str> {
    let names: Vec<&'static str> = samples.iter().map(variant).collect();
    let distinct: std::collections::BTreeSet<_> = names.iter().collect();
    assert_eq!((names.len(), distinct.len()), (variants, variants), "one {what} sample per variant");
    names
}

#[test]
fn every_command_outcome_and_rejection_encodes_as_pinned() {
    let mut lines = Vec::new();
    let commands = commands();
    for (name, sample) in named(&commands, |request| command_variant(&request.command), COMMAND_VARIANTS, "command").into_iter().zip(commands) {
        let request = Request { idempotency_key: Some("key-1".into()), ..sample };
        lines.push(golden::line(&format!("command.{name}"), &crate::codec::encode(&request).unwrap()));
    }
    let outcomes = outcomes();
    for (name, outcome) in named(&outcomes, outcome_variant, OUTCOME_VARIANTS, "outcome").into_iter().zip(outcomes) {
        let response = Response { replayed: false, outcome };
        lines.push(golden::line(&format!("outcome.{name}"), &crate::codec::encode(&response).unwrap()));
    }
    let rejections = rejections();
    for (name, rejection) in named(&rejections, rejection_variant, REJECTION_VARIANTS, "rejection").into_iter().zip(rejections) {
        lines.push(golden::line(&format!("rejection.{name}"), &crate::codec::encode(&Outcome::Rejected(rejection)).unwrap()));
    }
    for (name, op) in format_4_txn_ops() {
        lines.push(golden::line(&format!("txn_op.{name}"), &crate::codec::encode(&op).unwrap()));
    }
    golden::check("commands.txt", &lines);
}

/// Every record a workload of every primitive leaves, one per line: the column
/// family, the key and the value, in the order a snapshot carries them.
#[tokio::test]
async fn the_state_of_every_primitive_encodes_as_pinned() {
    let mut fixture = Fixture::new();
    for request in every_primitive().into_iter().chain(additions_since_format_3()) {
        let key = request.idempotency_key.clone();
        fixture.apply_keyed(key.as_deref(), request).await;
    }
    let lines = state_lines(&mut fixture).await;
    golden::check("state.txt", &lines);
}

/// The commands the leader stamps are those that read the clock, and the samples
/// stamp exactly those.
#[test]
fn the_leader_stamps_the_commands_that_read_the_clock() {
    let stamped: Vec<&str> = commands().iter().filter(|request| request.command.reads_clock()).map(|request| command_variant(&request.command)).collect();
    assert_eq!(
        stamped,
        [
            "LeaseGrant",
            "LeaseKeepAlive",
            "QueueEnqueue",
            "QueueReceive",
            "QueueNack",
            "QueueExtend",
            "TopicPublish",
            "Txn",
            "PutWithTtl",
            "Expire",
            "SessionCreate",
            "SessionAcquire"
        ]
    );
    for request in commands() {
        assert_eq!(request.now_ms != 0, request.command.reads_clock(), "{request:?}");
    }
}
