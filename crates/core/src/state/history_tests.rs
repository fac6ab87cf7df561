//! Unit tests of the change history behind watches (with the test-size bounds of
//! `history::REVISIONS_MAX` and `BYTES_MAX`).

use super::command::{Command, Precondition};
use super::history::{BYTES_MAX, Change, REVISIONS_MAX};
use super::kv::KvCommand;
use super::lease::LeaseCommand;
use super::tests::{Fixture, tick};

fn put(key: &str, value: &[u8]) -> Command {
    Command::Kv(KvCommand::Put { key: key.into(), value: value.to_vec(), precondition: Precondition::None, lease: None, fence: None })
}

/// `(revision, key, "put:<value>" | "delete")` of the events under `prefix` from `from`.
fn events(f: &Fixture, prefix: &str, from: u64, limit: usize) -> (Vec<(u64, String, String)>, u64) {
    let (events, next) = f.reader.history(prefix, from, limit).unwrap().value.expect("not compacted");
    let shown = events
        .into_iter()
        .map(|e| {
            let change = match e.change {
                Change::Put { value, .. } => format!("put:{}", String::from_utf8_lossy(&value)),
                Change::Delete => "delete".to_string(),
            };
            (e.revision, e.key, change)
        })
        .collect();
    (shown, next)
}

#[tokio::test]
async fn every_change_is_recorded_in_revision_order_including_lease_expiry() {
    let mut f = Fixture::new();
    assert_eq!(events(&f, "", 1, 100), (vec![], 1), "an empty history starts at the next revision");
    f.apply(put("a/1", b"x")).await;
    f.apply(put("b/1", b"y")).await;
    f.apply(put("a/1", b"z")).await;
    f.apply(Command::Kv(KvCommand::Delete { key: "a/1".into(), precondition: Precondition::None, fence: None })).await;
    f.apply(put("a/1", b"refused")).await;
    let refused =
        f.apply(Command::Kv(KvCommand::Put { key: "a/2".into(), value: b"no".to_vec(), precondition: Precondition::Exists, lease: None, fence: None })).await;
    assert!(matches!(refused, super::command::Outcome::Rejected(_)), "a refused write records nothing");
    // A lease takes two keys with it: both deletions at one revision.
    f.apply(Command::Lease(LeaseCommand::Grant { ttl_ms: 100 })).await;
    let lease = 7;
    f.apply(Command::Kv(KvCommand::Put { key: "a/3".into(), value: b"l".to_vec(), precondition: Precondition::None, lease: Some(lease), fence: None })).await;
    f.apply(Command::Kv(KvCommand::Put { key: "a/4".into(), value: b"l".to_vec(), precondition: Precondition::None, lease: Some(lease), fence: None })).await;
    tick(&mut f, 100).await;
    let (all, next) = events(&f, "a/", 1, 100);
    let expected: Vec<(u64, String, String)> = [
        (1, "a/1", "put:x"),
        (3, "a/1", "put:z"),
        (4, "a/1", "delete"),
        (5, "a/1", "put:refused"),
        (6, "a/3", "put:l"),
        (7, "a/4", "put:l"),
        (8, "a/3", "delete"),
        (8, "a/4", "delete"),
    ]
    .map(|(r, k, c)| (r, k.to_string(), c.to_string()))
    .to_vec();
    assert_eq!(all, expected);
    assert_eq!(next, 9);
    // A limit cuts at a revision boundary: both events of revision 8 come together.
    let (page, next) = events(&f, "a/", 6, 2);
    assert_eq!(page.iter().map(|e| e.0).collect::<Vec<_>>(), [6, 7]);
    let (page, _) = events(&f, "a/", next, 1);
    assert_eq!(page.iter().map(|e| e.0).collect::<Vec<_>>(), [8, 8]);
    assert_eq!(events(&f, "b/", 1, 100).0, vec![(2, "b/1".to_string(), "put:y".to_string())]);
}

#[tokio::test]
async fn the_history_is_bounded_by_revisions_and_by_bytes() {
    let mut f = Fixture::new();
    for i in 0..REVISIONS_MAX + 10 {
        f.apply(put("k", i.to_string().as_bytes())).await;
    }
    let first = f.reader.history("", 1, 1).unwrap().value.expect_err("revision 1 was dropped");
    assert_eq!(first, 11, "exactly the oldest 10 revisions went");
    let (kept, _) = events(&f, "", first, 1000);
    assert_eq!(kept.len() as u64, REVISIONS_MAX);
    assert_eq!(kept[0], (11, "k".to_string(), "put:10".to_string()));

    // Big values: the byte bound drops more, but never the revision just written.
    let big = vec![b'v'; (BYTES_MAX / 3) as usize];
    for _ in 0..4 {
        f.apply(put("big", &big)).await;
    }
    let revision = f.reader.position().unwrap().revision;
    let first = f.reader.history("", 1, 1).unwrap().value.expect_err("compacted");
    assert_eq!(first, revision - 1, "two big revisions fit in the byte bound, three do not");
    assert_eq!(events(&f, "", first, 10).0.len(), 2);
}
