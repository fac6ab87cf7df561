//! Unit tests of transactions (`state::txn`): branches, shared revisions, reads of
//! the transaction's own writes, and refusals that leave the state byte-identical.

use super::command::{Command, KeyMeta, Outcome, Precondition, Rejection};
use super::kv::{KvCommand, KvOutcome, KvRejection};
use super::lease::LeaseCommand;
use super::lock::{LockCommand, LockOutcome};
use super::queue::Receipt;
use super::queue::{QueueCommand, QueueOutcome, QueueRejection};
use super::ring::RingOutcome;
use super::tests::{Fixture, state_bytes};
use super::topic::TopicCommand;
use super::txn::{self, Condition, KeyTest, Txn, TxnOp, TxnResult};
use super::txn::{TxnOutcome, TxnRejection};

fn put(key: &str, value: &str) -> TxnOp {
    TxnOp::Put { key: key.into(), value: value.as_bytes().to_vec(), lease: None }
}

fn txn(compare: Vec<Condition>, success: Vec<TxnOp>, failure: Vec<TxnOp>) -> Txn {
    Txn { compare, success, failure }
}

/// Acks a delivery of queue `work`, writes its result, enqueues the follow-up and
/// publishes the news, only while the receipt is valid; otherwise records a duplicate.
pub(super) fn exactly_once(receipt: Receipt) -> Txn {
    Txn {
        compare: vec![Condition::ReceiptValid { queue: "work".into(), receipt }, Condition::Key { key: "result/1".into(), test: KeyTest::Absent }],
        success: vec![
            TxnOp::Ack { queue: "work".into(), receipt },
            put("result/1", "done"),
            put("result/count", "1"),
            TxnOp::Enqueue { queue: "follow-up".into(), payload: b"next".to_vec(), delay_ms: 0 },
            TxnOp::Get { key: "result/1".into() },
            TxnOp::List { prefix: "result/".into(), limit: 10 },
        ],
        failure: vec![put("duplicate/1", "seen again")],
    }
}

/// A put, then an ack of `receipt` (already acked): refused at its second operation.
pub(super) fn refused_at_second_op(receipt: Receipt) -> Txn {
    txn(Vec::new(), vec![put("half/1", "never"), TxnOp::Ack { queue: "work".into(), receipt }], Vec::new())
}

async fn receive_one(f: &mut Fixture, queue: &str) -> Receipt {
    f.apply(Command::Queue(QueueCommand::Enqueue { queue: queue.into(), payload: b"m".to_vec(), delay_ms: 0 })).await;
    match f.apply(Command::Queue(QueueCommand::Receive { queue: queue.into(), max: 1, visibility_ms: None })).await {
        Outcome::Queue(QueueOutcome::Received { messages, .. }) if messages.len() == 1 => messages[0].receipt,
        other => panic!("expected one message, got {other:?}"),
    }
}

fn value(f: &Fixture, key: &str) -> Option<Vec<u8>> {
    f.reader.get(key).unwrap().value.map(|record| record.value)
}

#[tokio::test]
async fn exactly_once_work_applies_once_and_its_writes_share_one_revision() {
    let mut f = Fixture::new();
    f.apply(Command::Kv(KvCommand::Put { key: "other".into(), value: b"x".to_vec(), precondition: Precondition::None, lease: None, fence: None })).await;
    let receipt = receive_one(&mut f, "work").await;
    let Outcome::Txn(TxnOutcome { succeeded: true, failed_condition: None, revision, results }) = f.apply(Command::Txn(exactly_once(receipt))).await else {
        panic!("the first run takes the success branch")
    };
    assert_eq!(revision, 2, "both puts at the one revision after the transaction began");
    let written = KeyMeta { create_revision: 2, mod_revision: 2, version: 1 };
    assert_eq!(results[1], TxnResult::Wrote(Outcome::Kv(KvOutcome::Put { revision: 2, meta: written, created: true })));
    assert!(matches!(results[2], TxnResult::Wrote(Outcome::Kv(KvOutcome::Put { revision: 2, .. }))));
    assert_eq!(results[0], TxnResult::Wrote(Outcome::Queue(QueueOutcome::Acked { queue: "work".into(), id: receipt.id })));
    assert!(matches!(&results[3], TxnResult::Wrote(Outcome::Queue(QueueOutcome::Enqueued { queue, .. })) if queue == "follow-up"));
    let TxnResult::Got { record: Some(record), .. } = &results[4] else { panic!("the get sees the put before it: {:?}", results[4]) };
    assert_eq!((record.value.as_slice(), record.meta), (&b"done"[..], written));
    let TxnResult::Listed { items, more: false, .. } = &results[5] else { panic!("{:?}", results[5]) };
    assert_eq!(items.iter().map(|(key, _)| key.as_str()).collect::<Vec<_>>(), ["result/1", "result/count"]);

    // Redelivered work: the receipt is no longer valid, so the failure branch runs.
    let again = f.apply(Command::Txn(exactly_once(receipt))).await;
    assert!(
        matches!(again, Outcome::Txn(TxnOutcome { succeeded: false, failed_condition: Some(0), revision: 3, ref results }) if results.len() == 1),
        "{again:?}"
    );
    assert_eq!(value(&f, "result/1"), Some(b"done".to_vec()));
    assert_eq!(f.reader.get("result/1").unwrap().value.unwrap().meta.version, 1, "written once");
    assert_eq!(value(&f, "duplicate/1"), Some(b"seen again".to_vec()));
}

/// The state after `setup` and then `last` equals the state after `setup` and a
/// delete of a missing key (a refusal known to change nothing), byte for byte.
async fn assert_changes_nothing(setup: &[Command], last: Command) -> Outcome {
    let mut refused = Fixture::new();
    let mut control = Fixture::new();
    for command in setup {
        refused.apply(command.clone()).await;
        control.apply(command.clone()).await;
    }
    let outcome = refused.apply(last).await;
    let nothing = Command::Kv(KvCommand::Delete { key: "missing".into(), precondition: Precondition::None, fence: None });
    assert!(matches!(control.apply(nothing).await, Outcome::Rejected(Rejection::Kv(KvRejection::NotFound { .. }))));
    assert!(state_bytes(&mut refused).await == state_bytes(&mut control).await, "{outcome:?} left the state changed");
    outcome
}

#[tokio::test]
async fn an_operation_refused_in_the_middle_leaves_the_state_byte_identical() {
    let setup = [
        Command::Lease(LeaseCommand::Grant { ttl_ms: 10_000 }),
        Command::Kv(KvCommand::Put { key: "leased".into(), value: b"v".to_vec(), precondition: Precondition::None, lease: Some(1), fence: None }),
        Command::Queue(QueueCommand::Enqueue { queue: "work".into(), payload: b"m".to_vec(), delay_ms: 0 }),
        Command::Queue(QueueCommand::Receive { queue: "work".into(), max: 1, visibility_ms: None }),
        Command::Topic(TopicCommand::Configure { topic: "news".into(), settings: Default::default() }),
    ];
    let receipt = Receipt { id: 1, delivery: 4 };
    let stale = Receipt { id: 1, delivery: 1 };
    // Every kind of write first, then a refusal: a put, a delete, an enqueue, an ack,
    // a publish and a lease revoke (its key goes too), then an extend of a receipt that
    // names no delivery of the message the transaction enqueued.
    let writes = vec![
        put("new", "v"),
        TxnOp::Delete { key: "leased".into() },
        TxnOp::Enqueue { queue: "other".into(), payload: b"x".to_vec(), delay_ms: 0 },
        TxnOp::Ack { queue: "work".into(), receipt },
        TxnOp::Publish { topic: "news".into(), payload: b"e".to_vec() },
        TxnOp::LeaseRevoke { lease: 1 },
    ];
    let mut refused_last = writes.clone();
    refused_last.push(TxnOp::Extend { queue: "other".into(), receipt: stale, visibility_ms: 1000 });
    let outcome = assert_changes_nothing(&setup, Command::Txn(txn(Vec::new(), refused_last, Vec::new()))).await;
    let Outcome::Rejected(Rejection::Txn(TxnRejection::OpRefused { succeeded: true, op: 6, rejection })) = outcome else { panic!("{outcome:?}") };
    assert!(matches!(*rejection, Rejection::Queue(QueueRejection::StaleReceipt { .. })));

    // In the failure branch too, and with a missing key's delete as the refusal.
    let mut failing = writes.clone();
    failing.push(TxnOp::Delete { key: "missing".into() });
    let compare = vec![Condition::Key { key: "new".into(), test: KeyTest::Exists }];
    let outcome = assert_changes_nothing(&setup, Command::Txn(txn(compare, Vec::new(), failing))).await;
    assert!(matches!(outcome, Outcome::Rejected(Rejection::Txn(TxnRejection::OpRefused { succeeded: false, op: 6, .. }))), "{outcome:?}");

    // Without the refusal the same writes do apply (so the test can fail).
    let mut f = Fixture::new();
    for command in &setup {
        f.apply(command.clone()).await;
    }
    assert!(matches!(f.apply(Command::Txn(txn(Vec::new(), writes, Vec::new()))).await, Outcome::Txn(TxnOutcome { succeeded: true, .. })));
    assert_eq!((value(&f, "new"), value(&f, "leased")), (Some(b"v".to_vec()), None));
}

#[tokio::test]
async fn malformed_transactions_are_refused_whole() {
    let setup = [Command::Kv(KvCommand::Put { key: "a".into(), value: b"1".to_vec(), precondition: Precondition::None, lease: None, fence: None })];
    let too_many = txn(Vec::new(), (0..=txn::OPS_MAX).map(|i| put(&format!("k{i}"), "v")).collect(), Vec::new());
    let release = || TxnOp::LockRelease { lock: "l".into(), token: 3 };
    let twice = txn(Vec::new(), vec![put("a", "2"), release(), release()], Vec::new());
    let big = txn(Vec::new(), vec![TxnOp::Put { key: "a".into(), value: vec![0; txn::BYTES_MAX + 1], lease: None }], Vec::new());
    let listing =
        txn(Vec::new(), vec![TxnOp::List { prefix: String::new(), limit: txn::LISTED_MAX }, TxnOp::List { prefix: "a".into(), limit: 1 }], Vec::new());
    let conditions = txn((0..=txn::CONDITIONS_MAX).map(|_| Condition::LeaseAlive { lease: 1 }).collect(), Vec::new(), Vec::new());
    for (malformed, expected) in [
        (too_many, "129 operations"),
        (twice, "success[2] (release) changes lock \"l\" again"),
        (big, "bytes of names"),
        (listing, "1001 keys"),
        (conditions, "65 conditions"),
    ] {
        let outcome = assert_changes_nothing(&setup, Command::Txn(malformed)).await;
        let Outcome::Rejected(Rejection::Txn(TxnRejection::Invalid { reason })) = outcome else { panic!("{outcome:?}") };
        assert!(reason.contains(expected), "{reason:?} should say {expected:?}");
    }
    // A condition on a queue that does not exist cannot be tested.
    let missing = txn(vec![Condition::ReceiptValid { queue: "nope".into(), receipt: Receipt { id: 1, delivery: 1 } }], vec![put("b", "1")], Vec::new());
    let outcome = assert_changes_nothing(&setup, Command::Txn(missing)).await;
    let Outcome::Rejected(Rejection::Txn(TxnRejection::ConditionRefused { condition: 0, rejection })) = outcome else { panic!("{outcome:?}") };
    assert_eq!(*rejection, Rejection::Queue(QueueRejection::NotFound { queue: "nope".into() }));
}

#[tokio::test]
async fn a_fenced_multi_key_write_applies_only_while_the_token_holds() {
    let mut f = Fixture::new();
    f.apply(Command::Lease(LeaseCommand::Grant { ttl_ms: 10_000 })).await;
    let Outcome::Lock(LockOutcome::Held { token, .. }) = f.apply(Command::Lock(LockCommand::Acquire { name: "ledger".into(), lease: 1, wait: false })).await
    else {
        panic!()
    };
    let fenced = |token| txn(vec![Condition::LockHeld { lock: "ledger".into(), token }], vec![put("ledger/a", "1"), put("ledger/b", "2")], Vec::new());
    assert!(matches!(f.apply(Command::Txn(fenced(token))).await, Outcome::Txn(TxnOutcome { succeeded: true, .. })));
    assert_eq!(value(&f, "ledger/b"), Some(b"2".to_vec()));
    f.apply(Command::Lock(LockCommand::Release { name: "ledger".into(), token })).await;
    let Outcome::Txn(TxnOutcome { succeeded: false, failed_condition: Some(0), results, .. }) = f.apply(Command::Txn(fenced(token))).await else { panic!() };
    assert!(results.is_empty());
}

#[tokio::test]
async fn every_condition_kind_tests_what_it_names() {
    let mut f = Fixture::new();
    f.apply(Command::Lease(LeaseCommand::Grant { ttl_ms: 10_000 })).await;
    f.apply(Command::Kv(KvCommand::Put { key: "k".into(), value: b"v".to_vec(), precondition: Precondition::None, lease: None, fence: None })).await;
    f.apply(Command::Kv(KvCommand::Put { key: "k".into(), value: b"w".to_vec(), precondition: Precondition::None, lease: None, fence: None })).await;
    let Outcome::Ring(RingOutcome::Changed { epoch, .. }) = f.apply(super::tests::join("r", "m1", None)).await else { panic!() };
    let key = |test| Condition::Key { key: "k".into(), test };
    let cases = [
        (key(KeyTest::Exists), true),
        (key(KeyTest::Absent), false),
        (key(KeyTest::Value(b"w".to_vec())), true),
        (key(KeyTest::Value(b"v".to_vec())), false),
        (key(KeyTest::ModRevision(2)), true),
        (key(KeyTest::ModRevision(1)), false),
        (key(KeyTest::Version(2)), true),
        (key(KeyTest::Version(1)), false),
        (Condition::Key { key: "none".into(), test: KeyTest::Version(0) }, false),
        (Condition::LeaseAlive { lease: 1 }, true),
        (Condition::LeaseAlive { lease: 2 }, false),
        (Condition::RingEpoch { ring: "r".into(), epoch }, true),
        (Condition::RingEpoch { ring: "r".into(), epoch: epoch + 1 }, false),
        (Condition::RingEpoch { ring: "never".into(), epoch: 0 }, true),
        (Condition::LockHeld { lock: "free".into(), token: 1 }, false),
    ];
    for (condition, holds) in cases {
        let outcome = f.apply(Command::Txn(txn(vec![condition.clone()], Vec::new(), Vec::new()))).await;
        assert!(matches!(outcome, Outcome::Txn(TxnOutcome { succeeded, .. }) if succeeded == holds), "{condition:?}: {outcome:?}");
    }
}

#[tokio::test]
async fn a_key_changed_again_in_one_transaction_sees_each_change_before_it() {
    use super::list::{End, ListCommand, ListOutcome, ListRead};
    let mut f = Fixture::new();
    let push = |items: &[&str]| {
        TxnOp::OnList(ListCommand::Push {
            key: "l".into(),
            items: items.iter().map(|item| item.as_bytes().to_vec()).collect(),
            end: End::Right,
            only_existing: false,
        })
    };
    let ops = vec![
        put("a", "1"),
        put("a", "2"),
        TxnOp::Get { key: "a".into() },
        push(&["x", "y"]),
        TxnOp::OnList(ListCommand::Trim { key: "l".into(), start: 1, stop: -1 }),
        push(&["z"]),
        TxnOp::Delete { key: "a".into() },
        put("a", "3"),
    ];
    let changes_again = txn(Vec::new(), ops, Vec::new());
    assert_eq!(changes_again.format_since(), 5, "a key changed twice is format 5's");
    assert_eq!(txn(Vec::new(), vec![put("a", "1"), put("b", "1")], Vec::new()).format_since(), 3);
    let Outcome::Txn(TxnOutcome { succeeded: true, results, revision, .. }) = f.apply(Command::Txn(changes_again)).await else { panic!() };
    assert!(matches!(&results[2], TxnResult::Got { record: Some(record), .. } if record.value == b"2"), "{:?}", results[2]);
    assert!(matches!(results[5], TxnResult::Wrote(Outcome::List(ListOutcome::Pushed { len: 2, .. }))), "{:?}", results[5]);
    assert_eq!(value(&f, "a"), Some(b"3".to_vec()));
    let ListRead::Items { items, list, .. } = f.reader.list_items("l", 0, -1).unwrap().value else { panic!() };
    assert_eq!(items, vec![b"y".to_vec(), b"z".to_vec()]);
    assert_eq!((list.meta.mod_revision, revision), (1, 1), "one revision for the whole transaction");
    assert_eq!(f.reader.key_counts().unwrap().value.keys, 2);
}
