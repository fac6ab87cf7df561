//! Topics on a real 3-node cluster: offsets, long-poll reads, subscriptions (SSE)
//! from any node, retention, failover, the CLI, and bad input.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{Cluster, expect_refusals};
use concord::client::{Client, TopicSettings, TopicStatus};
use reqwest::StatusCode;

#[tokio::test]
async fn subscribers_get_every_message_in_order_across_a_leader_kill() {
    let mut cluster = Cluster::start(3, &[]).await;
    let leader = cluster.wait_for_leader(Duration::from_secs(10)).await;
    let client = cluster.client();
    for i in 1..=3 {
        assert_eq!(client.publish("events", format!("e{i}")).await.unwrap(), i);
    }
    // A subscriber on a node that survives, from the start.
    let survivor = if leader == 1 { 2 } else { 1 };
    let mut subscription = Client::new(vec![cluster.node(survivor).addr.clone()]).subscribe("events", Some(1)).await.unwrap();
    for i in 1..=3u64 {
        let message = subscription.next_message().await.unwrap().unwrap();
        assert_eq!((message.offset, message.payload), (i, format!("e{i}").into_bytes()));
    }
    cluster.kill(leader);
    cluster.wait_for_leader(Duration::from_secs(15)).await;
    let client = cluster.client();
    assert_eq!(client.publish("events", "after failover").await.unwrap(), 4);
    let message = tokio::time::timeout(Duration::from_secs(10), subscription.next_message()).await.expect("in time").unwrap().unwrap();
    assert_eq!((message.offset, message.payload.as_slice()), (4, b"after failover".as_slice()));
    let page = client.topic_read("events", Some(1), 100, 0).await.unwrap();
    assert_eq!(page.messages.iter().map(|m| m.offset).collect::<Vec<_>>(), [1, 2, 3, 4]);
    assert_eq!(page.next_offset, 5);
}

#[tokio::test]
async fn long_polls_retention_and_the_cli() {
    let cluster = Cluster::start(3, &[]).await;
    let client = Arc::new(cluster.client());
    client.topic_configure("t", &TopicSettings { max_messages: Some(3), ..TopicSettings::default() }).await.unwrap();
    let waiting = {
        let client = client.clone();
        tokio::spawn(async move { client.topic_read("t", Some(1), 10, 20_000).await })
    };
    // Had the read arrived after the publish it would still get it; this only makes
    // the test exercise the wait.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(!waiting.is_finished(), "an empty topic answers only after wait_ms");
    client.publish("t", "first").await.unwrap();
    let page = waiting.await.unwrap().unwrap();
    assert_eq!(page.messages[0].payload, b"first");
    for i in 2..=5 {
        client.publish("t", format!("m{i}")).await.unwrap();
    }
    // Only the newest three are kept: offset 1 is gone, and says where to restart.
    let gone = client.topic_read("t", Some(1), 10, 0).await.unwrap_err();
    assert_eq!((gone.status(), gone.code()), (Some(410), Some("offset_compacted")));
    let first_offset = match &gone {
        concord::client::ClientError::Api { details: Some(details), .. } => details["first_offset"].as_u64(),
        _ => None,
    };
    assert_eq!(first_offset, Some(3));
    let late = client.subscribe("t", Some(2)).await.err().expect("a subscription from a dropped offset is refused");
    assert_eq!(late.code(), Some("offset_compacted"));
    assert_eq!(client.topic_read("t", Some(3), 10, 0).await.unwrap().messages.len(), 3);

    let endpoints = cluster.nodes.iter().map(|n| n.addr.clone()).collect::<Vec<_>>().join(",");
    let concord = |args: &[&str]| {
        let output = std::process::Command::new(env!("CARGO_BIN_EXE_concord")).args(args).env("CONCORD_ENDPOINTS", &endpoints).output().expect("run concord");
        (output.status.code(), String::from_utf8_lossy(&output.stdout).into_owned(), String::from_utf8_lossy(&output.stderr).into_owned())
    };
    assert_eq!(concord(&["topic", "publish", "t", "from the shell"]).1.trim(), "6");
    let (_, read, _) = concord(&["topic", "read", "t", "--from", "6"]);
    assert_eq!(read.trim(), "6 from the shell");
    let (code, _, stderr) = concord(&["topic", "read", "t", "--from", "1"]);
    assert_eq!(code, Some(1));
    assert!(stderr.contains("offset_compacted"), "{stderr}");
    assert_eq!(client.topic_delete("t").await.unwrap(), 3);
    // A topic named "stream" is an ordinary resource: followers forward its writes.
    for node in &cluster.nodes {
        let answer =
            reqwest::Client::new().put(format!("{}/v1/topics/stream", node.url())).header("content-type", "application/json").body("{}").send().await.unwrap();
        assert!(answer.status().is_success(), "node {}: {}", node.id, answer.status());
    }
}

#[tokio::test]
async fn bad_topic_input_gets_a_json_4xx_and_changes_nothing() {
    let cluster = Cluster::start(3, &["--key-bytes-max", "16"]).await;
    let base = cluster.node(3).url();
    let http = reqwest::Client::new();
    let client = cluster.client();
    client.topic_configure("t", &TopicSettings { max_message_bytes: Some(4), ..TopicSettings::default() }).await.unwrap();
    client.publish("t", "ok").await.unwrap();
    let before = client.topic_stats("t").await.unwrap().unwrap();
    let json = |builder: reqwest::RequestBuilder, body: &str| builder.header("content-type", "application/json").body(body.to_string());
    let cases: Vec<(&str, reqwest::RequestBuilder, StatusCode, &str)> = vec![
        (
            "message over the topic's max_message_bytes",
            http.post(format!("{base}/v1/topics/t/messages")).body("12345"),
            StatusCode::PAYLOAD_TOO_LARGE,
            "message_too_large",
        ),
        (
            "message over a new topic's default max",
            http.post(format!("{base}/v1/topics/fresh/messages")).body(vec![b'x'; 300 << 10]),
            StatusCode::PAYLOAD_TOO_LARGE,
            "message_too_large",
        ),
        ("oversized topic name", http.post(format!("{base}/v1/topics/{}/messages", "t".repeat(17))).body("x"), StatusCode::PAYLOAD_TOO_LARGE, "key_too_large"),
        ("read of an unknown topic", http.get(format!("{base}/v1/topics/nope/messages")), StatusCode::NOT_FOUND, "topic_not_found"),
        ("read with limit zero", http.get(format!("{base}/v1/topics/t/messages?limit=0")), StatusCode::BAD_REQUEST, "invalid_limit"),
        ("read waiting too long", http.get(format!("{base}/v1/topics/t/messages?wait_ms=99999999")), StatusCode::BAD_REQUEST, "invalid_wait"),
        ("read from offset zero", http.get(format!("{base}/v1/topics/t/messages?from=0")), StatusCode::BAD_REQUEST, "invalid_offset"),
        ("read from a non-number", http.get(format!("{base}/v1/topics/t/messages?from=start")), StatusCode::BAD_REQUEST, "invalid_query"),
        ("subscription to an unknown topic", http.get(format!("{base}/v1/topics/nope/stream")), StatusCode::NOT_FOUND, "topic_not_found"),
        (
            "subscription with a bad Last-Event-ID",
            http.get(format!("{base}/v1/topics/t/stream")).header("last-event-id", "x"),
            StatusCode::BAD_REQUEST,
            "invalid_last_event_id",
        ),
        (
            "settings with max_messages zero",
            json(http.put(format!("{base}/v1/topics/t")), "{\"max_messages\":0}"),
            StatusCode::BAD_REQUEST,
            "invalid_topic_settings",
        ),
        ("settings with an unknown field", json(http.put(format!("{base}/v1/topics/t")), "{\"partitions\":3}"), StatusCode::BAD_REQUEST, "invalid_json"),
        ("settings of the wrong type", json(http.put(format!("{base}/v1/topics/t")), "{\"max_age_ms\":\"1d\"}"), StatusCode::BAD_REQUEST, "invalid_json"),
        ("stats of an unknown topic", http.get(format!("{base}/v1/topics/nope")), StatusCode::NOT_FOUND, "topic_not_found"),
        (
            "delete with an Idempotency-Key",
            http.delete(format!("{base}/v1/topics/t")).header("idempotency-key", "d1"),
            StatusCode::BAD_REQUEST,
            "not_idempotent",
        ),
        ("delete of an unknown topic", http.delete(format!("{base}/v1/topics/nope")), StatusCode::NOT_FOUND, "topic_not_found"),
        ("wrong method", http.post(format!("{base}/v1/topics/t/stream")), StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed"),
    ];
    expect_refusals(cases).await;
    let after = client.topic_stats("t").await.unwrap().unwrap();
    // Other entries move the applied index, nothing else.
    assert_eq!(TopicStatus { applied_index: 0, ..after }, TopicStatus { applied_index: 0, ..before }, "no bad request changed the topic");
    assert!(client.topic_stats("fresh").await.unwrap().is_none(), "a refused publish created no topic");
}
