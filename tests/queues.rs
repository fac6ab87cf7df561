//! Durable queues on a real 3-node cluster: failover, redelivery, stale receipts,
//! dead-lettering, long polls, idempotent enqueues, and bad input.

mod common;

use std::time::Duration;

use common::{Cluster, expect_refusals};
use concord::client::{QueueSettings, ReceiveOptions};
use reqwest::StatusCode;

/// The delivery part of a receipt `<id>.<delivery>`.
fn delivery_of(receipt: &str) -> u64 {
    receipt.split_once('.').and_then(|(_, d)| d.parse().ok()).expect("a receipt is <id>.<delivery>")
}

fn wait(max: u32, visibility_ms: u64, wait_ms: u64) -> ReceiveOptions {
    ReceiveOptions { max, visibility_ms: Some(visibility_ms), wait_ms }
}

#[tokio::test]
async fn a_queued_message_survives_a_leader_kill_and_is_delivered_once_when_acked() {
    let mut cluster = Cluster::start(3, &[]).await;
    let leader = cluster.wait_for_leader(Duration::from_secs(10)).await;
    let client = cluster.client();
    for i in 0..5 {
        client.enqueue("jobs", format!("job {i}"), 0).await.unwrap();
    }
    // An enqueue retried with the same key adds nothing.
    let first = client.enqueue_keyed("jobs", "once", 0, "send-once").await.unwrap();
    assert_eq!(client.enqueue_keyed("jobs", "once", 0, "send-once").await.unwrap(), first);
    cluster.kill(leader);
    cluster.wait_for_leader(Duration::from_secs(15)).await;
    let client = cluster.client();
    let messages = client.receive("jobs", wait(10, 30_000, 0)).await.unwrap();
    let payloads: Vec<String> = messages.iter().map(|m| String::from_utf8_lossy(&m.payload).into_owned()).collect();
    assert_eq!(payloads, ["job 0", "job 1", "job 2", "job 3", "job 4", "once"], "all there, in order, once");
    for message in &messages {
        assert_eq!(message.delivery, 1);
        client.ack("jobs", &message.receipt).await.unwrap();
    }
    let stats = client.queue_stats("jobs").await.unwrap().unwrap();
    assert_eq!((stats.length, stats.in_flight), (0, 0));
    // Acked means gone: nothing comes back, even after the visibility timeout would have passed.
    assert!(client.receive("jobs", wait(10, 30_000, 1500)).await.unwrap().is_empty());
    let again = client.ack("jobs", &messages[0].receipt).await.unwrap_err();
    assert_eq!((again.status(), again.code()), (Some(409), Some("stale_receipt")));
}

#[tokio::test]
async fn redelivery_makes_the_old_receipt_stale_and_max_deliveries_dead_letters() {
    let cluster = Cluster::start(3, &[]).await;
    let client = cluster.client();
    let settings = QueueSettings { max_deliveries: Some(2), dead_letter_queue: Some("work.dead".into()), ..QueueSettings::default() };
    client.queue_configure("work", &settings).await.unwrap();
    client.enqueue("work", "flaky", 0).await.unwrap();

    let first = client.receive("work", wait(1, 500, 0)).await.unwrap().remove(0);
    // The worker stalls past its visibility timeout; a long poll gets the message again.
    let second = client.receive("work", wait(1, 500, 10_000)).await.unwrap().remove(0);
    assert_eq!((second.id, second.delivery), (first.id, 2));
    assert!(second.in_flight_until_ms >= first.in_flight_until_ms + 500 - 1, "redelivered no earlier than the first visibility ran out");
    let stale = client.ack("work", &first.receipt).await.unwrap_err();
    assert_eq!((stale.status(), stale.code()), (Some(409), Some("stale_receipt")));
    let stale = client.extend("work", &first.receipt, 10_000).await.unwrap_err();
    assert_eq!(stale.code(), Some("stale_receipt"));

    // The second delivery also times out: that was the last one allowed.
    let dead = client.receive("work.dead", wait(1, 30_000, 10_000)).await.unwrap();
    assert_eq!(dead.len(), 1, "dead-lettered after two deliveries");
    assert_eq!(dead[0].payload, b"flaky");
    assert_eq!(dead[0].dead_lettered_from.as_ref().map(|f| (f.queue.as_str(), f.id)), Some(("work", first.id)));
    let stats = client.queue_stats("work").await.unwrap().unwrap();
    assert_eq!((stats.length, stats.dead_lettered), (0, 1));
    let late = client.ack("work", &second.receipt).await.unwrap_err();
    assert_eq!(late.code(), Some("stale_receipt"));
}

#[tokio::test]
async fn long_polls_delays_and_the_cli() {
    let cluster = Cluster::start(3, &[]).await;
    let client = std::sync::Arc::new(cluster.client());
    let waiting = {
        let client = client.clone();
        tokio::spawn(async move { client.receive("inbox", wait(1, 30_000, 20_000)).await })
    };
    // Give the receiver time to ask; had it asked after the enqueue, it would still get
    // the message, so this only makes the test exercise the wait, never flaky.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(!waiting.is_finished(), "an empty queue answers only after wait_ms");
    // A blocking read of the queue's stats returns once its index moves.
    let index = client.queue_stats("inbox").await.unwrap().map_or(0, |s| s.index);
    let blocked = tokio::spawn(reqwest::get(format!("{}/v1/queues/inbox?index={index}&wait_ms=20000", cluster.node(3).url())));
    let id = client.enqueue("inbox", "hello", 0).await.unwrap();
    let got = waiting.await.unwrap().unwrap();
    let stats: serde_json::Value = blocked.await.unwrap().unwrap().json().await.unwrap();
    assert!(stats["index"].as_u64().unwrap() > index, "{stats}");
    assert_eq!(got.len(), 1);
    assert_eq!((got[0].id, got[0].payload.as_slice()), (id, b"hello".as_slice()));
    // A delayed message is not handed out before its delay.
    client.enqueue("inbox", "later", 800).await.unwrap();
    assert!(client.receive("inbox", wait(1, 30_000, 0)).await.unwrap().is_empty());
    let later = client.receive("inbox", wait(1, 30_000, 10_000)).await.unwrap();
    assert_eq!(later[0].payload, b"later");
    assert_eq!(client.queue_delete("inbox").await.unwrap(), 2);
    assert!(client.queue_stats("inbox").await.unwrap().is_none());

    let endpoints = cluster.nodes.iter().map(|n| n.addr.clone()).collect::<Vec<_>>().join(",");
    let concord = |args: &[&str]| {
        let output = std::process::Command::new(env!("CARGO_BIN_EXE_concord")).args(args).env("CONCORD_ENDPOINTS", &endpoints).output().expect("run concord");
        (output.status.code(), String::from_utf8_lossy(&output.stdout).into_owned(), String::from_utf8_lossy(&output.stderr).into_owned())
    };
    let (code, id, _) = concord(&["queue", "send", "cli", "from the shell"]);
    assert_eq!((code, id.trim()), (Some(0), "1"));
    let (_, received, _) = concord(&["queue", "receive", "cli", "--wait-ms", "1000"]);
    let (receipt, payload) = received.trim().split_once(' ').expect("<receipt> <payload>");
    assert!(receipt.starts_with("1."), "message 1's receipt: {receipt}");
    assert_eq!(payload, "from the shell");
    let (_, stats, _) = concord(&["queue", "stats", "cli", "--json"]);
    let stats: serde_json::Value = serde_json::from_str(&stats).expect("stats --json is JSON");
    assert_eq!((stats["in_flight"].as_u64(), stats["visible"].as_u64()), (Some(1), Some(0)));
    assert_eq!(concord(&["queue", "ack", "cli", receipt]).0, Some(0));
    let (code, _, stderr) = concord(&["queue", "ack", "cli", receipt]);
    assert_eq!(code, Some(1));
    assert!(stderr.contains("stale_receipt"), "{stderr}");
}

#[tokio::test]
async fn bad_queue_input_gets_a_json_4xx_and_changes_nothing() {
    let cluster = Cluster::start(3, &["--key-bytes-max", "64"]).await;
    let base = cluster.node(2).url();
    let http = reqwest::Client::new();
    let client = cluster.client();
    let small = QueueSettings { max_length: Some(1), max_message_bytes: Some(8), ..QueueSettings::default() };
    client.queue_configure("q", &small).await.unwrap();
    client.enqueue("q", "only", 0).await.unwrap();
    let held = client.receive("q", wait(1, 60_000, 0)).await.unwrap().remove(0);
    let before = client.queue_stats("q").await.unwrap().unwrap();

    let json = |builder: reqwest::RequestBuilder, body: &str| builder.header("content-type", "application/json").body(body.to_string());
    let long = "q".repeat(65);
    let cases: Vec<(&str, reqwest::RequestBuilder, StatusCode, &str)> = vec![
        ("enqueue to a full queue", http.post(format!("{base}/v1/queues/q/messages")).body("x"), StatusCode::CONFLICT, "queue_full"),
        ("oversized queue name", http.post(format!("{base}/v1/queues/{long}/messages")).body("x"), StatusCode::PAYLOAD_TOO_LARGE, "key_too_large"),
        ("control character in a queue name", http.post(format!("{base}/v1/queues/a%0Ab/messages")).body("x"), StatusCode::BAD_REQUEST, "invalid_key"),
        ("delay too long", http.post(format!("{base}/v1/queues/q/messages?delay_ms=99999999999")).body("x"), StatusCode::BAD_REQUEST, "invalid_duration"),
        ("delay not a number", http.post(format!("{base}/v1/queues/q/messages?delay_ms=soon")).body("x"), StatusCode::BAD_REQUEST, "invalid_query"),
        (
            "message over the queue's max_message_bytes",
            http.post(format!("{base}/v1/queues/q/messages")).body("123456789"),
            StatusCode::PAYLOAD_TOO_LARGE,
            "message_too_large",
        ),
        (
            "message over a new queue's default max_message_bytes",
            http.post(format!("{base}/v1/queues/fresh/messages")).body(vec![b'x'; 300 << 10]),
            StatusCode::PAYLOAD_TOO_LARGE,
            "message_too_large",
        ),
        // Its own connection: the server closes one whose body it refused unread.
        (
            "message over the body limit",
            reqwest::Client::new().post(format!("{base}/v1/queues/other/messages")).body(vec![b'x'; 2 << 20]),
            StatusCode::PAYLOAD_TOO_LARGE,
            "body_too_large",
        ),
        ("receive of zero messages", json(http.post(format!("{base}/v1/queues/q/receive")), "{\"max\":0}"), StatusCode::BAD_REQUEST, "invalid_max"),
        ("receive of too many", json(http.post(format!("{base}/v1/queues/q/receive")), "{\"max\":1000}"), StatusCode::BAD_REQUEST, "invalid_max"),
        ("receive waiting too long", json(http.post(format!("{base}/v1/queues/q/receive")), "{\"wait_ms\":99999999}"), StatusCode::BAD_REQUEST, "invalid_wait"),
        (
            "receive with zero visibility",
            json(http.post(format!("{base}/v1/queues/q/receive")), "{\"visibility_ms\":0}"),
            StatusCode::BAD_REQUEST,
            "invalid_duration",
        ),
        (
            "receive with an Idempotency-Key",
            json(http.post(format!("{base}/v1/queues/q/receive")), "{}").header("idempotency-key", "k1"),
            StatusCode::BAD_REQUEST,
            "not_idempotent",
        ),
        ("receive with bad JSON", json(http.post(format!("{base}/v1/queues/q/receive")), "{\"max\":"), StatusCode::BAD_REQUEST, "invalid_json"),
        ("receive with a wrong type", json(http.post(format!("{base}/v1/queues/q/receive")), "{\"max\":\"two\"}"), StatusCode::BAD_REQUEST, "invalid_json"),
        ("ack without a receipt", json(http.post(format!("{base}/v1/queues/q/ack")), "{}"), StatusCode::BAD_REQUEST, "invalid_json"),
        (
            "ack with a malformed receipt",
            json(http.post(format!("{base}/v1/queues/q/ack")), "{\"receipt\":\"abc\"}"),
            StatusCode::BAD_REQUEST,
            "invalid_receipt",
        ),
        (
            "ack with a receipt of a missing message",
            json(http.post(format!("{base}/v1/queues/q/ack")), "{\"receipt\":\"99.1\"}"),
            StatusCode::CONFLICT,
            "stale_receipt",
        ),
        (
            "ack with a receipt of another delivery",
            json(http.post(format!("{base}/v1/queues/q/ack")), &format!("{{\"receipt\":\"{}.{}\"}}", held.id, delivery_of(&held.receipt) + 1000)),
            StatusCode::CONFLICT,
            "stale_receipt",
        ),
        ("ack on an unknown queue", json(http.post(format!("{base}/v1/queues/nope/ack")), "{\"receipt\":\"1.1\"}"), StatusCode::NOT_FOUND, "queue_not_found"),
        (
            "nack with a delay too long",
            json(http.post(format!("{base}/v1/queues/q/nack")), &format!("{{\"receipt\":\"{}\",\"delay_ms\":99999999999}}", held.receipt)),
            StatusCode::BAD_REQUEST,
            "invalid_duration",
        ),
        (
            "extend by zero",
            json(http.post(format!("{base}/v1/queues/q/extend")), &format!("{{\"receipt\":\"{}\",\"visibility_ms\":0}}", held.receipt)),
            StatusCode::BAD_REQUEST,
            "invalid_duration",
        ),
        ("settings with an unknown field", json(http.put(format!("{base}/v1/queues/q")), "{\"fifo\":true}"), StatusCode::BAD_REQUEST, "invalid_json"),
        (
            "max_deliveries without a dead-letter queue",
            json(http.put(format!("{base}/v1/queues/q")), "{\"max_deliveries\":3}"),
            StatusCode::BAD_REQUEST,
            "invalid_queue_settings",
        ),
        (
            "a queue as its own dead-letter queue",
            json(http.put(format!("{base}/v1/queues/q")), "{\"max_deliveries\":3,\"dead_letter_queue\":\"q\"}"),
            StatusCode::BAD_REQUEST,
            "invalid_queue_settings",
        ),
        ("max_length zero", json(http.put(format!("{base}/v1/queues/q")), "{\"max_length\":0}"), StatusCode::BAD_REQUEST, "invalid_queue_settings"),
        ("stats of an unknown queue", http.get(format!("{base}/v1/queues/nope")), StatusCode::NOT_FOUND, "queue_not_found"),
        (
            "delete with an Idempotency-Key",
            http.delete(format!("{base}/v1/queues/q")).header("idempotency-key", "d1"),
            StatusCode::BAD_REQUEST,
            "not_idempotent",
        ),
        ("delete of an unknown queue", http.delete(format!("{base}/v1/queues/nope")), StatusCode::NOT_FOUND, "queue_not_found"),
        ("list limit zero", http.get(format!("{base}/v1/queues?limit=0")), StatusCode::BAD_REQUEST, "invalid_limit"),
        ("wrong method", http.get(format!("{base}/v1/queues/q/receive")), StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed"),
    ];
    expect_refusals(cases).await;
    let after = client.queue_stats("q").await.unwrap().unwrap();
    // What time and other entries move: the age, the clock and the applied index.
    let without_age = |stats: concord::client::QueueStats| concord::client::QueueStats { oldest_age_ms: None, clock_ms: 0, applied_index: 0, ..stats };
    assert_eq!(without_age(after), without_age(before), "no bad request changed the queue");
    for refused in ["other", "fresh"] {
        assert!(client.queue_stats(refused).await.unwrap().is_none(), "a refused enqueue created no queue {refused:?}");
    }
    // The receipt that was never refused still works.
    client.ack("q", &held.receipt).await.unwrap();
}
