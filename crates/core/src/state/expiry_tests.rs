//! Unit tests of keys' time to live: when a key expires on the replicated clock,
//! what keeps, moves or clears its expiry, and the bound on one tick's work.

use super::command::{Command, Outcome, Precondition, Request};
use super::expiry::{EXPIRIES_PER_TICK_MAX, Ttl};
use super::history::Event;
use super::kv::{KvCommand, KvOutcome};
use super::lease::{LeaseCommand, LeaseOutcome};
use super::tests::{Fixture, at, tick};
use super::txn::{Txn, TxnOp};

fn put(key: &str, value: &str, ttl: Ttl, now_ms: u64) -> Request {
    let command = KvCommand::PutWithTtl { key: key.into(), value: value.as_bytes().to_vec(), precondition: Precondition::None, lease: None, fence: None, ttl };
    at(now_ms, command)
}

fn after(ttl_ms: u64) -> Ttl {
    Ttl::After { ttl_ms }
}

/// `key`'s value and expiry, if it exists.
fn read(f: &Fixture, key: &str) -> Option<(String, Option<u64>)> {
    let expiring = f.reader.get_string(key).unwrap().value?;
    Some((String::from_utf8(expiring.record.value).unwrap(), expiring.expiry.map(|expiry| expiry.at_ms)))
}

#[tokio::test]
async fn a_key_expires_at_the_first_tick_that_reaches_its_ttl_after_the_later_of_clock_and_stamp() {
    let mut f = Fixture::new();
    tick(&mut f, 1_000).await;
    // Stamped behind the clock: counted from the clock (1000), as a lease is.
    f.apply(put("behind", "a", after(500), 400)).await;
    // Stamped ahead of it: counted from the stamp.
    f.apply(put("ahead", "b", after(500), 1_200)).await;
    assert_eq!(read(&f, "behind"), Some(("a".into(), Some(1_500))));
    assert_eq!(read(&f, "ahead"), Some(("b".into(), Some(1_700))));
    // What is left, read at the clock the stamp ran ahead of: never more than the TTL.
    let ahead = f.reader.get_string("ahead").unwrap();
    assert_eq!(ahead.value.and_then(|key| key.expiry).map(|expiry| expiry.left_ms(ahead.clock_ms)), Some(500));
    assert_eq!(tick(&mut f, 499).await, Outcome::Ticked { clock_ms: 1_499, expired: 0 });
    assert!(read(&f, "behind").is_some(), "one ms short of its expiry");
    let revision = f.reader.position().unwrap().revision;
    tick(&mut f, 1).await;
    assert_eq!(read(&f, "behind"), None, "gone at the tick that reaches it");
    assert!(read(&f, "ahead").is_some());
    let (events, _) = f.reader.history("", revision + 1, 10).unwrap().value.unwrap();
    assert_eq!(
        events.iter().map(|event: &Event| (event.key.as_str(), event.revision)).collect::<Vec<_>>(),
        [("behind", revision + 1)],
        "a watch sees the delete"
    );
    tick(&mut f, 200).await;
    assert_eq!(read(&f, "ahead"), None);
}

#[tokio::test]
async fn a_put_keeps_moves_or_clears_the_expiry_and_a_delete_takes_it_away() {
    let mut f = Fixture::new();
    f.apply(put("k", "1", after(1_000), 0)).await;
    f.apply(put("k", "2", Ttl::Keep, 0)).await;
    assert_eq!(read(&f, "k"), Some(("2".into(), Some(1_000))), "kept");
    f.apply(put("k", "3", after(5_000), 100)).await;
    assert_eq!(read(&f, "k"), Some(("3".into(), Some(5_100))), "moved");
    let plain = Command::Kv(KvCommand::Put { key: "k".into(), value: b"4".to_vec(), precondition: Precondition::None, lease: None, fence: None });
    f.apply(plain).await;
    assert_eq!(read(&f, "k"), Some(("4".into(), None)), "a plain put clears it");
    // Keep on a new key: no expiry.
    f.apply(put("new", "1", Ttl::Keep, 0)).await;
    assert_eq!(read(&f, "new"), Some(("1".into(), None)));
    // Deleted, then created again without one: it must not expire on the old time.
    f.apply(put("d", "1", after(100), 0)).await;
    f.apply(Command::Kv(KvCommand::Delete { key: "d".into(), precondition: Precondition::None, fence: None })).await;
    f.apply(put("d", "2", Ttl::Keep, 0)).await;
    assert_eq!(tick(&mut f, 10_000).await, Outcome::Ticked { clock_ms: 10_000, expired: 0 });
    assert_eq!(read(&f, "d"), Some(("2".into(), None)));
    assert_eq!(read(&f, "k"), Some(("4".into(), None)));
}

#[tokio::test]
async fn a_key_that_goes_with_its_lease_leaves_no_expiry_behind() {
    let mut f = Fixture::new();
    let Outcome::Lease(LeaseOutcome::Alive { id, .. }) = f.apply(at(0, LeaseCommand::Grant { ttl_ms: 100 })).await else { panic!("no lease") };
    let command =
        KvCommand::PutWithTtl { key: "k".into(), value: b"v".to_vec(), precondition: Precondition::None, lease: Some(id), fence: None, ttl: after(1_000) };
    f.apply(at(0, command)).await;
    tick(&mut f, 200).await;
    assert_eq!(read(&f, "k"), None, "the lease took it");
    f.apply(put("k", "again", Ttl::Keep, 0)).await;
    tick(&mut f, 2_000).await;
    assert_eq!(read(&f, "k"), Some(("again".into(), None)), "the old expiry did not take the new key");
}

#[tokio::test]
async fn a_transaction_sets_an_expiry_and_a_refused_one_sets_none() {
    let mut f = Fixture::new();
    let set = TxnOp::PutWithTtl { key: "t".into(), value: b"1".to_vec(), lease: None, ttl: after(300) };
    let txn = Txn { compare: Vec::new(), success: vec![set.clone()], failure: Vec::new() };
    assert!(matches!(f.apply(at(50, txn)).await, Outcome::Txn(outcome) if outcome.succeeded));
    assert_eq!(read(&f, "t"), Some(("1".into(), Some(350))));
    // Refused at its second operation: the first one's expiry is undone with it.
    let stale = TxnOp::LockRelease { lock: "none".into(), token: 9 };
    let set_other = TxnOp::PutWithTtl { key: "u".into(), value: b"1".to_vec(), lease: None, ttl: after(300) };
    let refused = Txn { compare: Vec::new(), success: vec![set_other, stale], failure: Vec::new() };
    assert!(matches!(f.apply(at(50, refused)).await, Outcome::Rejected(_)));
    assert_eq!(read(&f, "u"), None);
    assert_eq!(tick(&mut f, 10_000).await, Outcome::Ticked { clock_ms: 10_000, expired: 0 });
    assert_eq!(read(&f, "t"), None);
}

#[tokio::test]
async fn one_tick_expires_a_bounded_number_of_keys_and_the_next_the_rest() {
    let mut f = Fixture::new();
    let keys = EXPIRIES_PER_TICK_MAX + 5;
    let puts: Vec<_> = (0..keys).map(|i| openraft::EntryPayload::Normal(put(&format!("k/{i:05}"), "v", after(10), 0))).collect();
    f.apply_entries(puts).await;
    let revision = f.reader.position().unwrap().revision;
    tick(&mut f, 10).await;
    let left = f.reader.list("k/", None, 100).unwrap().value.items;
    assert_eq!(left.len(), 5, "the rest wait");
    assert_eq!(f.reader.position().unwrap().revision, revision + 1, "one revision for all the keys of a tick");
    tick(&mut f, 1).await;
    assert!(f.reader.list("k/", None, 100).unwrap().value.items.is_empty());
    assert!(matches!(f.apply(put("k/x", "v", Ttl::Clear, 0)).await, Outcome::Kv(KvOutcome::Put { created: true, .. })));
}
