//! Unit tests of sessions: one holder at a time, the lock index, the lock delay on
//! the replicated clock, and what a session's end does to its keys.

use super::command::{Command, Outcome, Precondition, Rejection};
use super::kv::KvCommand;
use super::lease::{LeaseCommand, LeaseOutcome, LeaseRejection};
use super::session::{Behavior, Hold, SessionCommand, SessionOutcome};
use super::tests::{Fixture, at, tick};

async fn create(f: &mut Fixture, behavior: Behavior, ttl_ms: u64, lock_delay_ms: u64) -> u64 {
    let create = SessionCommand::Create { ttl_ms, name: "n".into(), node: "host".into(), behavior, lock_delay_ms };
    let Outcome::Lease(LeaseOutcome::Alive { id, .. }) = f.apply(at(0, create)).await else { panic!("no session") };
    id
}

/// Whether `session` got `key` (`None`: refused, as for a session that does not exist).
async fn acquire(f: &mut Fixture, key: &str, session: u64) -> Option<bool> {
    match f.apply(at(0, SessionCommand::Acquire { key: key.into(), value: b"v".to_vec(), flags: 0, session })).await {
        Outcome::Session(SessionOutcome::Held { done, .. }) => Some(done),
        Outcome::Rejected(_) => None,
        other => panic!("{other:?}"),
    }
}

async fn release(f: &mut Fixture, key: &str, session: u64) -> bool {
    let Outcome::Session(SessionOutcome::Held { done, .. }) =
        f.apply(SessionCommand::Release { key: key.into(), value: b"r".to_vec(), flags: 0, session }).await
    else {
        panic!()
    };
    done
}

fn hold(f: &Fixture, key: &str) -> Option<Hold> {
    f.reader.get_string(key).unwrap().value.map(|string| string.hold)
}

#[tokio::test]
async fn one_session_holds_a_key_at_a_time_and_the_lock_index_counts_holders() {
    let mut f = Fixture::new();
    let (first, second) = (create(&mut f, Behavior::Release, 60_000, 0).await, create(&mut f, Behavior::Release, 60_000, 0).await);
    assert_eq!(acquire(&mut f, "k", first).await, Some(true));
    assert_eq!(acquire(&mut f, "k", second).await, Some(false));
    assert_eq!(acquire(&mut f, "k", first).await, Some(true), "the holder again");
    assert_eq!(hold(&f, "k"), Some(Hold { session: Some(first), lock_index: 1, delay_until_ms: 0 }));
    assert!(!release(&mut f, "k", second).await);
    assert!(release(&mut f, "k", first).await);
    assert_eq!(acquire(&mut f, "k", second).await, Some(true));
    assert_eq!(hold(&f, "k").map(|hold| hold.lock_index), Some(2));
    assert_eq!(acquire(&mut f, "other", 999).await, None, "no such session");
    assert_eq!(f.reader.get_string("other").unwrap().value, None, "nothing written");
    // A plain put keeps the hold; a delete takes it, and the session lets go of the key.
    f.apply(Command::Kv(KvCommand::Put { key: "k".into(), value: b"p".to_vec(), precondition: Precondition::None, lease: None, fence: None })).await;
    assert_eq!(hold(&f, "k").and_then(|hold| hold.session), Some(second));
    f.apply(Command::Kv(KvCommand::Delete { key: "k".into(), precondition: Precondition::None, fence: None })).await;
    assert_eq!(f.reader.lease(second, 10).unwrap().value.map(|lease| lease.record.key_count), Some(0));
    assert_eq!(acquire(&mut f, "k", first).await, Some(true));
    assert_eq!(hold(&f, "k").map(|hold| hold.lock_index), Some(1), "a new key counts from 1");
}

#[tokio::test]
async fn an_ended_session_lets_go_with_its_lock_delay_or_deletes_as_its_behavior_says() {
    let mut f = Fixture::new();
    let releasing = create(&mut f, Behavior::Release, 1_000, 500).await;
    let deleting = create(&mut f, Behavior::Delete, 60_000, 0).await;
    assert_eq!((acquire(&mut f, "r", releasing).await, acquire(&mut f, "d", deleting).await), (Some(true), Some(true)));
    let revision = f.reader.position().unwrap().revision;
    // The releasing session expires at the tick past its TTL; the other is revoked.
    tick(&mut f, 999).await;
    assert!(hold(&f, "r").is_some_and(|hold| hold.session == Some(releasing)), "not before its TTL");
    tick(&mut f, 1).await;
    assert_eq!(f.reader.session(releasing).unwrap().value, None);
    let Some(Hold { session: None, lock_index: 1, delay_until_ms }) = hold(&f, "r") else { panic!("{:?}", hold(&f, "r")) };
    assert_eq!(delay_until_ms, 1_500, "the clock at the end, and the lock delay");
    let read = f.reader.get_string("r").unwrap().value.unwrap();
    assert!(read.record.meta.mod_revision > revision && read.record.value == b"v", "let go: a change of the key, its value kept");
    assert!(matches!(f.apply(LeaseCommand::Revoke { id: deleting }).await, Outcome::Lease(LeaseOutcome::Revoked { deleted_keys: 1, .. })));
    assert_eq!(f.reader.get_string("d").unwrap().value, None);
    // Within the lock delay no one takes it; after it, anyone may.
    let taker = create(&mut f, Behavior::Release, 60_000, 0).await;
    assert_eq!(acquire(&mut f, "r", taker).await, Some(false));
    tick(&mut f, 499).await;
    assert_eq!(acquire(&mut f, "r", taker).await, Some(false));
    tick(&mut f, 1).await;
    assert_eq!(acquire(&mut f, "r", taker).await, Some(true));
    assert_eq!(hold(&f, "r").map(|hold| hold.lock_index), Some(2));
    assert_eq!(
        f.apply(LeaseCommand::Revoke { id: releasing }).await,
        Outcome::Rejected(Rejection::Lease(LeaseRejection::NotFound { id: releasing })),
        "a session's lease ends once"
    );
}
