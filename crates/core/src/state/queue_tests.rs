//! Unit tests of the queue primitive: feed entries (time only through `Tick`s and
//! stamps), check outcomes and the counters.

use openraft::EntryPayload;

use super::command::{Command, Outcome, Receipt, Rejection, Request};
use super::queue::{DELETE_BATCH_MAX, Delivered, QueueSettings};
use super::queue::{QueueCommand, QueueOutcome, QueueRejection};
use super::tests::{Fixture, apply_one_by_one_and_batched, at, receive as install, snapshot_into_bytes, state_bytes, tick};

fn enqueue(queue: &str, payload: &str) -> Command {
    Command::Queue(QueueCommand::Enqueue { queue: queue.into(), payload: payload.as_bytes().to_vec(), delay_ms: 0 })
}

fn receive(queue: &str, max: u32, visibility_ms: u64) -> Command {
    Command::Queue(QueueCommand::Receive { queue: queue.into(), max, visibility_ms: Some(visibility_ms) })
}

fn receipt(id: u64, delivery: u64) -> Receipt {
    Receipt { id, delivery }
}

async fn received(f: &mut Fixture, request: impl Into<Request>) -> Vec<Delivered> {
    match f.apply(request).await {
        Outcome::Queue(QueueOutcome::Received { messages, .. }) => messages,
        other => panic!("expected messages, got {other:?}"),
    }
}

/// `(id, deliveries so far, payload)` of each message.
fn payloads(messages: &[Delivered]) -> Vec<(u64, u32, String)> {
    messages.iter().map(|m| (m.receipt.id, m.deliveries, String::from_utf8_lossy(&m.payload).into_owned())).collect()
}

/// (visible, in flight, delayed, dead-lettered out)
fn counts(f: &Fixture, queue: &str) -> (u64, u64, u64, u64) {
    let record = f.reader.queue(queue).unwrap().value.expect("queue exists").record;
    (record.visible, record.in_flight, record.delayed, record.dead_lettered)
}

fn with_dlq(max_deliveries: u32) -> QueueSettings {
    QueueSettings { max_deliveries: Some(max_deliveries), dead_letter_queue: Some("jobs.dead".into()), ..QueueSettings::default() }
}

#[tokio::test]
async fn messages_are_received_in_order_and_acked_once() {
    let mut f = Fixture::new();
    for (i, payload) in ["a", "b", "c"].iter().enumerate() {
        assert_eq!(f.apply(enqueue("jobs", payload)).await, Outcome::Queue(QueueOutcome::Enqueued { queue: "jobs".into(), id: i as u64 + 1 }));
    }
    let first = received(&mut f, receive("jobs", 2, 1000)).await;
    assert_eq!(payloads(&first), vec![(1, 1, "a".into()), (2, 1, "b".into())]);
    assert_eq!(counts(&f, "jobs"), (1, 2, 0, 0));
    assert_eq!(payloads(&received(&mut f, receive("jobs", 10, 1000)).await), vec![(3, 1, "c".into())]);
    assert!(received(&mut f, receive("jobs", 10, 1000)).await.is_empty(), "everything is in flight");
    assert_eq!(
        f.apply(Command::Queue(QueueCommand::Ack { queue: "jobs".into(), receipt: receipt(2, 4) })).await,
        Outcome::Queue(QueueOutcome::Acked { queue: "jobs".into(), id: 2 })
    );
    let again = f.apply(Command::Queue(QueueCommand::Ack { queue: "jobs".into(), receipt: receipt(2, 4) })).await;
    assert_eq!(
        again,
        Outcome::Rejected(Rejection::Queue(QueueRejection::StaleReceipt { queue: "jobs".into(), receipt: receipt(2, 4), current_delivery: None }))
    );
    assert_eq!(counts(&f, "jobs"), (0, 2, 0, 0));
}

#[tokio::test]
async fn a_timed_out_message_comes_back_only_after_its_visibility_and_its_old_receipt_is_stale() {
    let mut f = Fixture::new();
    f.apply(enqueue("jobs", "work")).await;
    received(&mut f, receive("jobs", 1, 1000)).await;
    tick(&mut f, 999).await;
    assert!(received(&mut f, receive("jobs", 1, 1000)).await.is_empty(), "still in flight at 999 ms");
    tick(&mut f, 1).await;
    assert_eq!(counts(&f, "jobs"), (1, 0, 0, 0));
    // Visible again but not yet redelivered: the first receipt already lost its claim.
    let early = f.apply(Command::Queue(QueueCommand::Ack { queue: "jobs".into(), receipt: receipt(1, 2) })).await;
    assert!(matches!(early, Outcome::Rejected(Rejection::Queue(QueueRejection::StaleReceipt { current_delivery: Some(2), .. }))), "{early:?}");
    assert_eq!(payloads(&received(&mut f, receive("jobs", 1, 1000)).await), vec![(1, 2, "work".into())]);
    let stale = f.apply(Command::Queue(QueueCommand::Ack { queue: "jobs".into(), receipt: receipt(1, 2) })).await;
    assert_eq!(
        stale,
        Outcome::Rejected(Rejection::Queue(QueueRejection::StaleReceipt { queue: "jobs".into(), receipt: receipt(1, 2), current_delivery: Some(7) }))
    );
    assert_eq!(
        f.apply(Command::Queue(QueueCommand::Ack { queue: "jobs".into(), receipt: receipt(1, 7) })).await,
        Outcome::Queue(QueueOutcome::Acked { queue: "jobs".into(), id: 1 })
    );
}

#[tokio::test]
async fn visibility_counts_from_the_leaders_stamp() {
    let mut f = Fixture::new();
    f.apply(enqueue("jobs", "work")).await;
    // Stamped at 500 while the committed clock still reads 0: in flight until 1500.
    let messages = received(&mut f, at(500, QueueCommand::Receive { queue: "jobs".into(), max: 1, visibility_ms: None })).await;
    assert_eq!(messages[0].until_ms, 500 + QueueSettings::default().visibility_ms);
    let extended = f.apply(at(600, QueueCommand::Extend { queue: "jobs".into(), receipt: receipt(1, 2), visibility_ms: 100_000 })).await;
    assert_eq!(extended, Outcome::Queue(QueueOutcome::Extended { queue: "jobs".into(), receipt: receipt(1, 2), until_ms: 100_600 }));
    // Extending never shortens.
    let shorter = f.apply(at(700, QueueCommand::Extend { queue: "jobs".into(), receipt: receipt(1, 2), visibility_ms: 1 })).await;
    assert_eq!(shorter, Outcome::Queue(QueueOutcome::Extended { queue: "jobs".into(), receipt: receipt(1, 2), until_ms: 100_600 }));
    tick(&mut f, 100_599).await;
    assert_eq!(counts(&f, "jobs"), (0, 1, 0, 0));
    tick(&mut f, 1).await;
    assert_eq!(counts(&f, "jobs"), (1, 0, 0, 0));
}

#[tokio::test]
async fn delayed_and_nacked_messages_wait_for_their_delay() {
    let mut f = Fixture::new();
    f.apply(Command::Queue(QueueCommand::Enqueue { queue: "jobs".into(), payload: b"later".to_vec(), delay_ms: 500 })).await;
    f.apply(enqueue("jobs", "now")).await;
    assert_eq!(counts(&f, "jobs"), (1, 0, 1, 0));
    assert_eq!(payloads(&received(&mut f, receive("jobs", 10, 1000)).await), vec![(2, 1, "now".into())]);
    let nacked = f.apply(Command::Queue(QueueCommand::Nack { queue: "jobs".into(), receipt: receipt(2, 3), delay_ms: 0 })).await;
    assert_eq!(nacked, Outcome::Queue(QueueOutcome::Nacked { queue: "jobs".into(), id: 2, dead_lettered: false }));
    tick(&mut f, 500).await;
    // Both visible now, and FIFO by id: the delayed one was enqueued first.
    assert_eq!(payloads(&received(&mut f, receive("jobs", 10, 1000)).await), vec![(1, 1, "later".into()), (2, 2, "now".into())]);
    let nack_later = f.apply(Command::Queue(QueueCommand::Nack { queue: "jobs".into(), receipt: receipt(1, 6), delay_ms: 300 })).await;
    assert!(matches!(nack_later, Outcome::Queue(QueueOutcome::Nacked { dead_lettered: false, .. })));
    assert_eq!(counts(&f, "jobs"), (0, 1, 1, 0));
    // A nacked receipt is spent.
    let spent = f.apply(Command::Queue(QueueCommand::Ack { queue: "jobs".into(), receipt: receipt(1, 6) })).await;
    assert!(matches!(spent, Outcome::Rejected(Rejection::Queue(QueueRejection::StaleReceipt { .. }))));
}

#[tokio::test]
async fn a_message_delivered_max_deliveries_times_moves_to_the_dead_letter_queue() {
    let mut f = Fixture::new();
    assert!(matches!(
        f.apply(Command::Queue(QueueCommand::Configure { queue: "jobs".into(), settings: with_dlq(2) })).await,
        Outcome::Queue(QueueOutcome::Configured { created: true, .. })
    ));
    assert_eq!(counts(&f, "jobs.dead"), (0, 0, 0, 0), "the dead-letter queue is created with its source");
    f.apply(enqueue("jobs", "poison")).await;
    received(&mut f, receive("jobs", 1, 100)).await;
    tick(&mut f, 100).await;
    assert_eq!(counts(&f, "jobs"), (1, 0, 0, 0), "one delivery of two: back in the queue");
    received(&mut f, receive("jobs", 1, 100)).await;
    tick(&mut f, 100).await;
    assert_eq!(counts(&f, "jobs"), (0, 0, 0, 1));
    let dead = received(&mut f, receive("jobs.dead", 1, 100)).await;
    assert_eq!(payloads(&dead), vec![(1, 1, "poison".into())]);
    assert_eq!(dead[0].dead_lettered_from, Some(("jobs".into(), 1)));
    // A nack of the last allowed delivery dead-letters at once.
    f.apply(enqueue("jobs", "bad")).await;
    received(&mut f, receive("jobs", 1, 100)).await;
    f.apply(Command::Queue(QueueCommand::Nack { queue: "jobs".into(), receipt: receipt(2, 9), delay_ms: 0 })).await;
    let last = f.apply(Command::Queue(QueueCommand::Receive { queue: "jobs".into(), max: 1, visibility_ms: Some(100) })).await;
    assert!(matches!(&last, Outcome::Queue(QueueOutcome::Received { messages, .. }) if messages[0].receipt == receipt(2, 11)), "{last:?}");
    let nacked = f.apply(Command::Queue(QueueCommand::Nack { queue: "jobs".into(), receipt: receipt(2, 11), delay_ms: 0 })).await;
    assert_eq!(nacked, Outcome::Queue(QueueOutcome::Nacked { queue: "jobs".into(), id: 2, dead_lettered: true }));
    assert_eq!(counts(&f, "jobs"), (0, 0, 0, 2));
    assert_eq!(counts(&f, "jobs.dead"), (1, 1, 0, 0));
}

#[tokio::test]
async fn bounds_and_bad_settings_are_refused_and_change_nothing() {
    let mut f = Fixture::new();
    let small = QueueSettings { max_length: 2, max_message_bytes: 4, ..QueueSettings::default() };
    f.apply(Command::Queue(QueueCommand::Configure { queue: "q".into(), settings: small })).await;
    f.apply(enqueue("q", "1")).await;
    f.apply(enqueue("q", "2")).await;
    assert_eq!(f.apply(enqueue("q", "3")).await, Outcome::Rejected(Rejection::Queue(QueueRejection::Full { queue: "q".into(), limit: 2 })));
    let big = Command::Queue(QueueCommand::Enqueue { queue: "q".into(), payload: b"12345".to_vec(), delay_ms: 0 });
    assert_eq!(f.apply(big).await, Outcome::Rejected(Rejection::Queue(QueueRejection::MessageTooLarge { queue: "q".into(), len: 5, max: 4 })));
    assert_eq!(counts(&f, "q"), (2, 0, 0, 0));
    let bad = [
        QueueSettings { visibility_ms: 0, ..QueueSettings::default() },
        QueueSettings { max_length: 0, ..QueueSettings::default() },
        QueueSettings { max_length: super::queue::LENGTH_MAX + 1, ..QueueSettings::default() },
        QueueSettings { max_message_bytes: 0, ..QueueSettings::default() },
        QueueSettings { max_deliveries: Some(3), ..QueueSettings::default() },
        QueueSettings { dead_letter_queue: Some("d".into()), ..QueueSettings::default() },
        QueueSettings { max_deliveries: Some(3), dead_letter_queue: Some("q".into()), ..QueueSettings::default() },
        QueueSettings { max_deliveries: Some(0), dead_letter_queue: Some("d".into()), ..QueueSettings::default() },
    ];
    for settings in bad {
        let outcome = f.apply(Command::Queue(QueueCommand::Configure { queue: "q".into(), settings: settings.clone() })).await;
        assert!(matches!(outcome, Outcome::Rejected(Rejection::Queue(QueueRejection::Invalid { .. }))), "{settings:?}: {outcome:?}");
    }
    assert_eq!(f.reader.queue("q").unwrap().value.unwrap().record.settings.max_length, 2, "settings unchanged");
    assert!(f.reader.queue("d").unwrap().value.is_none(), "no dead-letter queue created by a refused configure");
    for stale in [receipt(1, 1), receipt(9, 1)] {
        for command in [
            Command::Queue(QueueCommand::Ack { queue: "q".into(), receipt: stale }),
            Command::Queue(QueueCommand::Nack { queue: "q".into(), receipt: stale, delay_ms: 0 }),
            Command::Queue(QueueCommand::Extend { queue: "q".into(), receipt: stale, visibility_ms: 10 }),
        ] {
            assert!(matches!(f.apply(command).await, Outcome::Rejected(Rejection::Queue(QueueRejection::StaleReceipt { .. }))));
        }
    }
    let missing = f.apply(Command::Queue(QueueCommand::Ack { queue: "nope".into(), receipt: receipt(1, 1) })).await;
    assert_eq!(missing, Outcome::Rejected(Rejection::Queue(QueueRejection::NotFound { queue: "nope".into() })));
    assert_eq!(counts(&f, "q"), (2, 0, 0, 0));
}

#[tokio::test]
async fn deleting_a_queue_takes_bounded_steps() {
    let mut f = Fixture::new();
    let n = DELETE_BATCH_MAX as u64 + 5;
    let entries = (0..n).map(|i| EntryPayload::Normal(enqueue("big", &i.to_string()).into())).collect();
    f.apply_entries(entries).await;
    let old = received(&mut f, receive("big", 3, 1000)).await[0].receipt;
    let first = f.apply(Command::Queue(QueueCommand::Delete { queue: "big".into() })).await;
    assert_eq!(first, Outcome::Queue(QueueOutcome::Deleted { queue: "big".into(), deleted_messages: DELETE_BATCH_MAX as u64, deleted: false }));
    let second = f.apply(Command::Queue(QueueCommand::Delete { queue: "big".into() })).await;
    assert_eq!(second, Outcome::Queue(QueueOutcome::Deleted { queue: "big".into(), deleted_messages: 5, deleted: true }));
    assert!(f.reader.queue("big").unwrap().value.is_none());
    assert_eq!(f.reader.next_deadline().unwrap().value, None, "no timer of an in-flight message survives the delete");
    assert!(received(&mut f, receive("big", 3, 1000)).await.is_empty());
    // A new queue of the same name starts over.
    assert_eq!(f.apply(enqueue("big", "fresh")).await, Outcome::Queue(QueueOutcome::Enqueued { queue: "big".into(), id: 1 }));
    // A receipt of the old queue's message 1 does not fit the new message 1.
    let fresh = received(&mut f, receive("big", 1, 1000)).await;
    assert_eq!(fresh[0].receipt.id, old.id);
    let stale = f.apply(Command::Queue(QueueCommand::Ack { queue: "big".into(), receipt: old })).await;
    assert!(matches!(stale, Outcome::Rejected(Rejection::Queue(QueueRejection::StaleReceipt { .. }))), "{stale:?}");
}

#[tokio::test]
async fn queues_travel_in_snapshots_and_apply_deterministically() {
    let mut requests: Vec<Request> = vec![
        QueueCommand::Configure { queue: "jobs".into(), settings: with_dlq(1) }.into(),
        enqueue("jobs", "a").into(),
        enqueue("jobs", "b").into(),
        QueueCommand::Enqueue { queue: "jobs".into(), payload: b"c".to_vec(), delay_ms: 50 }.into(),
        receive("jobs", 1, 100).into(),
        Command::Tick { advance_ms: 100 }.into(), // "a" dead-lettered, "c" visible
        receive("jobs", 5, 100).into(),
        QueueCommand::Ack { queue: "jobs".into(), receipt: receipt(2, 7) }.into(),
        at(100, QueueCommand::Extend { queue: "jobs".into(), receipt: receipt(3, 7), visibility_ms: 500 }),
        QueueCommand::Ack { queue: "jobs".into(), receipt: receipt(1, 5) }.into(), // stale
        enqueue("other", "x").into(),
        QueueCommand::Delete { queue: "other".into() }.into(),
    ];
    for (i, request) in requests.iter_mut().enumerate() {
        request.idempotency_key = (i % 2 == 0).then(|| format!("k{i}"));
    }
    let (mut one_by_one, mut all_at_once, _) = apply_one_by_one_and_batched(&requests).await;
    assert_eq!(counts(&one_by_one, "jobs"), (0, 1, 0, 1));
    assert_eq!(state_bytes(&mut one_by_one).await, state_bytes(&mut all_at_once).await);

    let (meta, bytes) = snapshot_into_bytes(&mut one_by_one).await;
    let mut restored = Fixture::new();
    install(&mut restored, &meta, &bytes).await.unwrap();
    assert_eq!(counts(&restored, "jobs"), (0, 1, 0, 1));
    assert_eq!(restored.reader.next_deadline().unwrap().value, Some(600), "the in-flight message's timer came along");
    tick(&mut restored, 500).await;
    assert_eq!(counts(&restored, "jobs"), (0, 0, 0, 2), "its one delivery timed out: dead-lettered");
    let dead = received(&mut restored, receive("jobs.dead", 5, 100)).await;
    assert_eq!(payloads(&dead), vec![(1, 1, "a".into()), (2, 1, "c".into())]);
}
