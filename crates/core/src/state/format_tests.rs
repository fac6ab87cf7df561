//! The state machine's formats, pinned (`crate::golden`): every command as the log
//! carries it (`tests/golden/commands.txt`), every outcome and rejection as the
//! idempotency table stores it (the same file), and every record and key that a
//! workload of every primitive leaves in the state database, as a snapshot carries
//! them (`tests/golden/state.txt`).
//!
//! The `*_variant` matches have no wildcard on purpose: a new variant does not compile
//! here until it has a name, and the counts make the samples cover it.

use super::command::{Command, Fence, KeyMeta, Outcome, Precondition, Receipt, Rejection, Request, Response};
use super::lock::Holding;
use super::store::Cf;
use super::tests::{Fixture, every_primitive, state_bytes};
use super::txn::{Condition, KeyTest, Txn, TxnOp, TxnResult};
use crate::golden;

const COMMAND_VARIANTS: usize = 28;
const OUTCOME_VARIANTS: usize = 28;
const REJECTION_VARIANTS: usize = 31;

fn command_variant(command: &Command) -> &'static str {
    match command {
        Command::Put { .. } => "Put",
        Command::Delete { .. } => "Delete",
        Command::Tick { .. } => "Tick",
        Command::LeaseGrant { .. } => "LeaseGrant",
        Command::LeaseKeepAlive { .. } => "LeaseKeepAlive",
        Command::LeaseRevoke { .. } => "LeaseRevoke",
        Command::LockAcquire { .. } => "LockAcquire",
        Command::LockRelease { .. } => "LockRelease",
        Command::LockCancelWait { .. } => "LockCancelWait",
        Command::RingJoin(_) => "RingJoin",
        Command::RingLeave { .. } => "RingLeave",
        Command::QueueConfigure { .. } => "QueueConfigure",
        Command::QueueEnqueue { .. } => "QueueEnqueue",
        Command::QueueReceive { .. } => "QueueReceive",
        Command::QueueAck { .. } => "QueueAck",
        Command::QueueNack { .. } => "QueueNack",
        Command::QueueExtend { .. } => "QueueExtend",
        Command::QueueDelete { .. } => "QueueDelete",
        Command::TopicConfigure { .. } => "TopicConfigure",
        Command::TopicPublish { .. } => "TopicPublish",
        Command::TopicDelete { .. } => "TopicDelete",
        Command::Batch(_) => "Batch",
        Command::TokenCreate(_) => "TokenCreate",
        Command::TokenRevoke { .. } => "TokenRevoke",
        Command::AuthEnable { .. } => "AuthEnable",
        Command::AuthDisable => "AuthDisable",
        Command::DeletePrefix { .. } => "DeletePrefix",
        Command::Txn(_) => "Txn",
    }
}

fn outcome_variant(outcome: &Outcome) -> &'static str {
    match outcome {
        Outcome::Noop => "Noop",
        Outcome::Put { .. } => "Put",
        Outcome::Deleted { .. } => "Deleted",
        Outcome::Ticked { .. } => "Ticked",
        Outcome::Lease { .. } => "Lease",
        Outcome::LeaseRevoked { .. } => "LeaseRevoked",
        Outcome::LockHeld { .. } => "LockHeld",
        Outcome::LockWaiting { .. } => "LockWaiting",
        Outcome::LockReleased { .. } => "LockReleased",
        Outcome::LockWaitCancelled { .. } => "LockWaitCancelled",
        Outcome::RingChanged { .. } => "RingChanged",
        Outcome::QueueConfigured { .. } => "QueueConfigured",
        Outcome::Enqueued { .. } => "Enqueued",
        Outcome::Received { .. } => "Received",
        Outcome::Acked { .. } => "Acked",
        Outcome::Nacked { .. } => "Nacked",
        Outcome::Extended { .. } => "Extended",
        Outcome::QueueDeleted { .. } => "QueueDeleted",
        Outcome::TopicConfigured { .. } => "TopicConfigured",
        Outcome::Published { .. } => "Published",
        Outcome::TopicDeleted { .. } => "TopicDeleted",
        Outcome::Rejected(_) => "Rejected",
        Outcome::Batch(_) => "Batch",
        Outcome::TokenCreated { .. } => "TokenCreated",
        Outcome::TokenRevoked { .. } => "TokenRevoked",
        Outcome::AuthChanged { .. } => "AuthChanged",
        Outcome::PrefixDeleted { .. } => "PrefixDeleted",
        Outcome::Txn { .. } => "Txn",
    }
}

fn rejection_variant(rejection: &Rejection) -> &'static str {
    match rejection {
        Rejection::NotFound { .. } => "NotFound",
        Rejection::PreconditionFailed { .. } => "PreconditionFailed",
        Rejection::IdempotencyKeyReused { .. } => "IdempotencyKeyReused",
        Rejection::LeaseNotFound { .. } => "LeaseNotFound",
        Rejection::LeaseLimit { .. } => "LeaseLimit",
        Rejection::LockBusy { .. } => "LockBusy",
        Rejection::LockLimit { .. } => "LockLimit",
        Rejection::StaleToken { .. } => "StaleToken",
        Rejection::FenceRejected { .. } => "FenceRejected",
        Rejection::RingFull { .. } => "RingFull",
        Rejection::RingMemberNotFound { .. } => "RingMemberNotFound",
        Rejection::RingMemberInvalid { .. } => "RingMemberInvalid",
        Rejection::QueueNotFound { .. } => "QueueNotFound",
        Rejection::QueueLimit { .. } => "QueueLimit",
        Rejection::QueueFull { .. } => "QueueFull",
        Rejection::MessageTooLarge { .. } => "MessageTooLarge",
        Rejection::QueueInvalid { .. } => "QueueInvalid",
        Rejection::StaleReceipt { .. } => "StaleReceipt",
        Rejection::TopicNotFound { .. } => "TopicNotFound",
        Rejection::TopicLimit { .. } => "TopicLimit",
        Rejection::TopicMessageTooLarge { .. } => "TopicMessageTooLarge",
        Rejection::TopicInvalid { .. } => "TopicInvalid",
        Rejection::NotBatchable => "NotBatchable",
        Rejection::TokenInvalid { .. } => "TokenInvalid",
        Rejection::TokenLimit { .. } => "TokenLimit",
        Rejection::TokenNotFound { .. } => "TokenNotFound",
        Rejection::LastAdminToken { .. } => "LastAdminToken",
        Rejection::NotAdminToken { .. } => "NotAdminToken",
        Rejection::TxnInvalid { .. } => "TxnInvalid",
        Rejection::TxnConditionRefused { .. } => "TxnConditionRefused",
        Rejection::TxnOpRefused { .. } => "TxnOpRefused",
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

const TXN_PART_VARIANTS: usize = 9 + 11 + 3;

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
        now_ms: 84,
    }
}

fn txn_outcome_sample() -> Outcome {
    let record = super::kv::KvRecord { value: b"5".to_vec(), meta: KeyMeta { create_revision: 3, mod_revision: 9, version: 3 }, lease: None };
    Outcome::Txn {
        succeeded: false,
        failed_condition: Some(3),
        revision: 9,
        results: vec![
            TxnResult::Wrote(Outcome::Acked { queue: "jobs".into(), id: 7 }),
            TxnResult::Got { key: "acct/a".into(), record: Some(record.clone()) },
            TxnResult::Listed { prefix: "acct/".into(), items: vec![("acct/a".into(), record)], more: true },
        ],
    }
}

#[test]
fn the_transaction_samples_hold_every_condition_operation_and_result() {
    let txn = txn_sample();
    let Outcome::Txn { results, .. } = txn_outcome_sample() else { unreachable!("the sample is a transaction outcome") };
    let parts: Vec<TxnPart> = (txn.compare.into_iter().map(TxnPart::Condition))
        .chain(txn.success.into_iter().chain(txn.failure).map(TxnPart::Op))
        .chain(results.into_iter().map(TxnPart::Result))
        .collect();
    named(&parts, txn_part_variant, TXN_PART_VARIANTS, "transaction part");
}

fn commands() -> Vec<Command> {
    let receipt = Receipt { id: 7, delivery: 300 };
    let fence = Some(Fence { lock: "jobs/leader".into(), token: 42 });
    let put = Command::Put { key: "config/a".into(), value: vec![0, 1, 255], precondition: Precondition::ModRevision(9), lease: Some(12), fence };
    vec![
        put.clone(),
        Command::Delete { key: "config/b".into(), precondition: Precondition::Exists, fence: None },
        Command::Tick { advance_ms: 250 },
        Command::LeaseGrant { ttl_ms: 10_000, now_ms: 77 },
        Command::LeaseKeepAlive { id: 12, now_ms: 78 },
        Command::LeaseRevoke { id: 12 },
        Command::LockAcquire { name: "db".into(), lease: 12, wait: true },
        Command::LockRelease { name: "db".into(), token: 41 },
        Command::LockCancelWait { name: "db".into(), lease: 12 },
        Command::RingJoin(super::ring::Join {
            ring: "cache".into(),
            member: "m1".into(),
            address: "10.0.0.1:80".into(),
            weight: 2,
            metadata: "zone=a".into(),
            lease: Some(12),
        }),
        Command::RingLeave { ring: "cache".into(), member: "m1".into() },
        Command::QueueConfigure {
            queue: "jobs".into(),
            settings: super::queue::QueueSettings {
                visibility_ms: 30_000,
                max_deliveries: Some(5),
                dead_letter_queue: Some("jobs-dead".into()),
                max_length: 1000,
                max_message_bytes: 4096,
            },
        },
        Command::QueueEnqueue { queue: "jobs".into(), payload: b"job 1".to_vec(), delay_ms: 5, now_ms: 79 },
        Command::QueueReceive { queue: "jobs".into(), max: 10, visibility_ms: Some(30_000), now_ms: 80 },
        Command::QueueAck { queue: "jobs".into(), receipt },
        Command::QueueNack { queue: "jobs".into(), receipt, delay_ms: 1, now_ms: 81 },
        Command::QueueExtend { queue: "jobs".into(), receipt, visibility_ms: 1000, now_ms: 82 },
        Command::QueueDelete { queue: "jobs".into() },
        Command::TopicConfigure {
            topic: "news".into(),
            settings: super::topic::TopicSettings { max_messages: 100, max_bytes: 1 << 20, max_age_ms: 60_000, max_message_bytes: 512 },
        },
        Command::TopicPublish { topic: "news".into(), payload: b"event".to_vec(), now_ms: 83 },
        Command::TopicDelete { topic: "news".into() },
        Command::Batch(vec![Request { idempotency_key: None, command: put.clone() }, Request { idempotency_key: Some("b".into()), command: put }]),
        Command::TokenCreate(super::auth::TokenRecord {
            name: "ci".into(),
            role: super::auth::Role::Write,
            prefixes: vec!["app/".into()],
            secret_sha256: [0xab; 32],
        }),
        Command::TokenRevoke { id: 3 },
        Command::AuthEnable { by: 2 },
        Command::AuthDisable,
        Command::DeletePrefix { prefix: "jobs/".into() },
        Command::Txn(txn_sample()),
    ]
}

fn outcomes() -> Vec<Outcome> {
    let meta = KeyMeta { create_revision: 3, mod_revision: 5, version: 2 };
    let holding = Holding { token: 42, lease: 12 };
    let receipt = Receipt { id: 7, delivery: 300 };
    vec![
        Outcome::Noop,
        Outcome::Put { revision: 5, meta, created: false },
        Outcome::Deleted { revision: 6, prev: meta },
        Outcome::Ticked { clock_ms: 1250, expired: 1 },
        Outcome::Lease { id: 12, ttl_ms: 10_000, expires_at_ms: 11_250 },
        Outcome::LeaseRevoked { id: 12, deleted_keys: 2, revision: 8 },
        Outcome::LockHeld { name: "db".into(), token: 42, lease: 12 },
        Outcome::LockWaiting { name: "db".into(), position: 1 },
        Outcome::LockReleased { name: "db".into(), next: Some(holding) },
        Outcome::LockWaitCancelled { name: "db".into(), holder: None },
        Outcome::RingChanged { ring: "cache".into(), epoch: 4, members: 2 },
        Outcome::QueueConfigured { queue: "jobs".into(), created: true, settings: Default::default() },
        Outcome::Enqueued { queue: "jobs".into(), id: 7 },
        Outcome::Received {
            queue: "jobs".into(),
            messages: vec![super::queue::Delivered {
                receipt,
                deliveries: 1,
                payload: b"job 1".to_vec(),
                enqueued_at_ms: 79,
                until_ms: 30_080,
                dead_lettered_from: Some(("old".into(), 3)),
            }],
        },
        Outcome::Acked { queue: "jobs".into(), id: 7 },
        Outcome::Nacked { queue: "jobs".into(), id: 7, dead_lettered: true },
        Outcome::Extended { queue: "jobs".into(), receipt, until_ms: 31_000 },
        Outcome::QueueDeleted { queue: "jobs".into(), deleted_messages: 3, deleted: true },
        Outcome::TopicConfigured { topic: "news".into(), created: false, settings: Default::default() },
        Outcome::Published { topic: "news".into(), offset: 9 },
        Outcome::TopicDeleted { topic: "news".into(), deleted_messages: 2, deleted: false },
        Outcome::Rejected(Rejection::NotBatchable),
        Outcome::Batch(vec![Response { replayed: true, outcome: Outcome::Noop }]),
        Outcome::TokenCreated { id: 3 },
        Outcome::TokenRevoked { id: 3 },
        Outcome::AuthChanged { enabled: true },
        Outcome::PrefixDeleted { deleted: 1000, revision: 2000, more: true },
        txn_outcome_sample(),
    ]
}

fn rejections() -> Vec<Rejection> {
    let holding = Holding { token: 42, lease: 12 };
    let receipt = Receipt { id: 7, delivery: 300 };
    vec![
        Rejection::NotFound { key: "k".into() },
        Rejection::PreconditionFailed { key: "k".into(), current: Some(KeyMeta { create_revision: 1, mod_revision: 2, version: 2 }) },
        Rejection::IdempotencyKeyReused { key: "order-42".into() },
        Rejection::LeaseNotFound { id: 12 },
        Rejection::LeaseLimit { limit: 100_000 },
        Rejection::LockBusy { name: "db".into(), holder: holding, waiters: 2 },
        Rejection::LockLimit { name: "db".into(), limit: 1000 },
        Rejection::StaleToken { name: "db".into(), token: 41, current: Some(holding) },
        Rejection::FenceRejected { lock: "db".into(), token: 41, current: Some(42) },
        Rejection::RingFull { ring: "cache".into(), limit: 1000 },
        Rejection::RingMemberNotFound { ring: "cache".into(), member: "m9".into() },
        Rejection::RingMemberInvalid { ring: "cache".into(), member: "m9".into() },
        Rejection::QueueNotFound { queue: "jobs".into() },
        Rejection::QueueLimit { limit: 10_000 },
        Rejection::QueueFull { queue: "jobs".into(), limit: 1000 },
        Rejection::MessageTooLarge { queue: "jobs".into(), len: 5000, max: 4096 },
        Rejection::QueueInvalid { queue: "jobs".into(), reason: "its own dead-letter queue".into() },
        Rejection::StaleReceipt { queue: "jobs".into(), receipt, current_delivery: Some(301) },
        Rejection::TopicNotFound { topic: "news".into() },
        Rejection::TopicLimit { limit: 10_000 },
        Rejection::TopicMessageTooLarge { topic: "news".into(), len: 600, max: 512 },
        Rejection::TopicInvalid { topic: "news".into(), reason: "max_messages is 0".into() },
        Rejection::NotBatchable,
        Rejection::TokenInvalid { reason: "a name over 128 bytes".into() },
        Rejection::TokenLimit { limit: 1000 },
        Rejection::TokenNotFound { id: 3 },
        Rejection::LastAdminToken { id: 2 },
        Rejection::NotAdminToken { id: 3 },
        Rejection::TxnInvalid { reason: "129 operations".into() },
        Rejection::TxnConditionRefused { condition: 2, rejection: Box::new(Rejection::QueueNotFound { queue: "jobs".into() }) },
        Rejection::TxnOpRefused {
            succeeded: true,
            op: 1,
            rejection: Box::new(Rejection::StaleReceipt { queue: "jobs".into(), receipt, current_delivery: None }),
        },
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
    for (name, command) in named(&commands, command_variant, COMMAND_VARIANTS, "command").into_iter().zip(commands) {
        // As the log carries it: in the request envelope.
        let request = Request { idempotency_key: Some("key-1".into()), command };
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
    golden::check("commands.txt", &lines);
}

/// Every record a workload of every primitive leaves, one per line: the column
/// family, the key and the value, in the order a snapshot carries them.
#[tokio::test]
async fn the_state_of_every_primitive_encodes_as_pinned() {
    let mut fixture = Fixture::new();
    for request in every_primitive() {
        fixture.apply_keyed(request.idempotency_key.as_deref(), request.command).await;
    }
    let records = state_bytes(&mut fixture).await;
    let mut lines = Vec::new();
    let mut rest = &records[..];
    let take = |rest: &mut &[u8], n: usize| {
        let (head, tail) = rest.split_at(n);
        *rest = tail;
        head.to_vec()
    };
    let length = |bytes: Vec<u8>| u32::from_le_bytes(bytes.try_into().expect("4 bytes")) as usize;
    while rest.first().is_some_and(|cf| *cf != 0) {
        let cf = take(&mut rest, 1)[0];
        let name = Cf::ALL.iter().find(|c| **c as u8 == cf).map_or("?", |c| c.name());
        let key_len = length(take(&mut rest, 4));
        let key = take(&mut rest, key_len);
        let value_len = length(take(&mut rest, 4));
        let value = take(&mut rest, value_len);
        lines.push(format!("{} = {}", golden::line(name, &key), golden::line("", &value).trim_start()));
    }
    // The end byte, the record count and the checksum close the file.
    assert_eq!(rest.len(), 1 + 8 + 8, "after the records: end byte, count, checksum");
    assert_eq!(u64::from_le_bytes(rest[1..9].try_into().unwrap()) as usize, lines.len());
    golden::check("state.txt", &lines);
}

/// The commands that carry the leader's time stamp, and `as_requested` clearing it
/// (a retry of the same request is stamped anew and must still match).
#[test]
fn the_leader_stamp_is_what_as_requested_clears() {
    let mut stamped = Vec::new();
    for command in commands() {
        let mut requested = command.as_requested();
        if let Some(now_ms) = requested.clone().now_ms_mut() {
            stamped.push(command_variant(&command));
            assert_eq!(*now_ms, 0, "{command:?}");
            *requested.now_ms_mut().unwrap() = 77;
            assert_ne!(requested.as_requested(), requested);
        } else {
            assert_eq!(requested, command, "nothing else changes");
        }
    }
    assert_eq!(stamped, ["LeaseGrant", "LeaseKeepAlive", "QueueEnqueue", "QueueReceive", "QueueNack", "QueueExtend", "TopicPublish", "Txn"]);
}
