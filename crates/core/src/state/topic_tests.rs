//! Unit tests of topics: offsets, retention by count, bytes and age (on the
//! replicated clock), bounded deletes.

use super::command::{Command, Outcome, Rejection, Request};
use super::tests::{Fixture, at, tick};
use super::topic::{TopicCommand, TopicOutcome, TopicRejection};
use super::topic::{TopicRead, TopicSettings};

fn publish(topic: &str, payload: &str, now_ms: u64) -> Request {
    at(now_ms, TopicCommand::Publish { topic: topic.into(), payload: payload.as_bytes().to_vec() })
}

/// Offsets and payloads readable from `from`.
fn read(f: &Fixture, topic: &str, from: u64) -> Result<Vec<(u64, String)>, u64> {
    match f.reader.topic_messages(topic, from, 1000, 1 << 20).unwrap().value {
        TopicRead::Messages { messages, .. } => Ok(messages.into_iter().map(|(o, m)| (o, String::from_utf8_lossy(&m.payload).into_owned())).collect()),
        TopicRead::Compacted { first_offset } => Err(first_offset),
        TopicRead::NotFound => panic!("topic {topic} not found"),
    }
}

fn settings(max_messages: u64, max_bytes: u64, max_age_ms: u64) -> TopicSettings {
    TopicSettings { max_messages, max_bytes, max_age_ms, ..TopicSettings::default() }
}

#[tokio::test]
async fn offsets_grow_and_retention_drops_the_oldest_by_count_and_bytes() {
    let mut f = Fixture::new();
    f.apply(Command::Topic(TopicCommand::Configure { topic: "t".into(), settings: settings(3, 10, 60_000) })).await;
    for (i, payload) in ["a", "b", "c", "d"].iter().enumerate() {
        assert_eq!(f.apply(publish("t", payload, 0)).await, Outcome::Topic(TopicOutcome::Published { topic: "t".into(), offset: i as u64 + 1 }));
    }
    assert_eq!(read(&f, "t", 1), Err(2), "count bound: offset 1 dropped");
    assert_eq!(read(&f, "t", 2).unwrap(), vec![(2, "b".into()), (3, "c".into()), (4, "d".into())]);
    // 8 bytes more: 1 + 1 + 1 + 8 = 11 > 10, so "b" goes, and the count is 3 again.
    f.apply(publish("t", "12345678", 0)).await;
    assert_eq!(read(&f, "t", 1), Err(3));
    assert_eq!(read(&f, "t", 3).unwrap(), vec![(3, "c".into()), (4, "d".into()), (5, "12345678".into())]);
    // A message alone over max_bytes is still kept: the newest always stays.
    f.apply(publish("t", "0123456789ab", 0)).await;
    assert_eq!(read(&f, "t", 6).unwrap(), vec![(6, "0123456789ab".into())]);
    assert_eq!(read(&f, "t", 7).unwrap(), vec![], "reading at the next offset waits for it");
}

#[tokio::test]
async fn retention_by_age_follows_the_replicated_clock() {
    let mut f = Fixture::new();
    f.apply(Command::Topic(TopicCommand::Configure { topic: "t".into(), settings: settings(100, 1 << 20, 1000) })).await;
    f.apply(publish("t", "old", 0)).await;
    tick(&mut f, 500).await;
    f.apply(publish("t", "mid", 0)).await;
    tick(&mut f, 500).await;
    f.apply(publish("t", "new", 0)).await;
    assert_eq!(read(&f, "t", 1).unwrap().len(), 3, "exactly max_age_ms old is still kept");
    // Stamped 1 ms later by the leader, before any tick: "old" is now too old.
    f.apply(publish("t", "newer", 1001)).await;
    assert_eq!(read(&f, "t", 1), Err(2));
}

#[tokio::test]
async fn bad_settings_and_oversized_messages_are_refused_and_deletes_are_bounded() {
    let mut f = Fixture::new();
    for bad in [settings(0, 1, 1), settings(1, 0, 1), settings(1, 1, 0), settings(super::topic::MESSAGES_MAX + 1, 1, 1)] {
        assert!(matches!(
            f.apply(Command::Topic(TopicCommand::Configure { topic: "t".into(), settings: bad })).await,
            Outcome::Rejected(Rejection::Topic(TopicRejection::Invalid { .. }))
        ));
    }
    assert!(f.reader.topic("t").unwrap().value.is_none(), "no topic created by a refused configure");
    let small = TopicSettings { max_message_bytes: 2, ..TopicSettings::default() };
    f.apply(Command::Topic(TopicCommand::Configure { topic: "t".into(), settings: small })).await;
    assert_eq!(
        f.apply(publish("t", "abc", 0)).await,
        Outcome::Rejected(Rejection::Topic(TopicRejection::MessageTooLarge { topic: "t".into(), len: 3, max: 2 }))
    );
    assert_eq!(f.reader.topic("t").unwrap().value.unwrap().next_offset, 1);
    let batch = super::topic::DELETE_BATCH_MAX;
    f.apply(Command::Topic(TopicCommand::Configure { topic: "big".into(), settings: settings(2 * batch, 1 << 30, 60_000) })).await;
    let entries = (0..batch + 3).map(|_| openraft::EntryPayload::Normal(publish("big", "x", 0))).collect();
    f.apply_entries(entries).await;
    assert_eq!(
        f.apply(Command::Topic(TopicCommand::Delete { topic: "big".into() })).await,
        Outcome::Topic(TopicOutcome::Deleted { topic: "big".into(), deleted_messages: batch, deleted: false })
    );
    assert_eq!(
        f.apply(Command::Topic(TopicCommand::Delete { topic: "big".into() })).await,
        Outcome::Topic(TopicOutcome::Deleted { topic: "big".into(), deleted_messages: 3, deleted: true })
    );
    assert_eq!(
        f.apply(Command::Topic(TopicCommand::Delete { topic: "big".into() })).await,
        Outcome::Rejected(Rejection::Topic(TopicRejection::NotFound { topic: "big".into() }))
    );
    assert_eq!(f.apply(publish("big", "again", 0)).await, Outcome::Topic(TopicOutcome::Published { topic: "big".into(), offset: 1 }));
}
