//! Watches (`GET /v1/watch`, server-sent events) on a real 3-node cluster.

mod common;

use common::sse::SseReader;
use common::{Cluster, expect_refusals};
use reqwest::StatusCode;
use serde_json::Value;

#[tokio::test]
async fn a_watch_streams_every_change_in_order_and_resumes_from_the_last_revision() {
    let cluster = Cluster::start(3, &[]).await;
    let client = cluster.client();
    let first = client.put("w/a", "1").await.unwrap().value.revision;
    client.put("other", "x").await.unwrap();
    client.put("w/b", "2").await.unwrap();
    // From the past, on a follower-or-leader alike: history first, then live changes.
    let url = format!("{}/v1/watch?prefix=w/&from_revision={first}", cluster.node(2).url());
    let mut watch = SseReader::open(&url, None).await;
    let (kind, id, data) = watch.next().await;
    assert_eq!((kind.as_str(), id.as_deref(), &data["key"], &data["value"]), ("put", Some(first.to_string().as_str()), &Value::from("w/a"), &Value::from("1")));
    assert_eq!(watch.next().await.2["key"], "w/b", "the other key is not under the prefix");
    let deleted = client.delete("w/a").await.unwrap().value;
    let (kind, _, data) = watch.next().await;
    assert_eq!((kind.as_str(), data["key"].as_str(), data["revision"].as_u64()), ("delete", Some("w/a"), Some(deleted)));
    // A lease takes two keys at one revision: only the last event carries the id.
    let lease = client.lease_grant(60_000).await.unwrap();
    for key in ["w/l1", "w/l2"] {
        client.put_with(key, "leased", &concord::client::WriteOptions { lease: Some(lease.id), ..Default::default() }).await.unwrap();
    }
    watch.next().await;
    let (_, last_put_id, _) = watch.next().await;
    client.lease_revoke(lease.id).await.unwrap();
    let (kind_1, id_1, gone_1) = watch.next().await;
    let (kind_2, id_2, gone_2) = watch.next().await;
    assert_eq!((kind_1.as_str(), kind_2.as_str()), ("delete", "delete"));
    assert_eq!(gone_1["revision"], gone_2["revision"]);
    assert_eq!(id_1, None, "mid-revision events carry no id");
    assert_eq!(id_2, gone_2["revision"].as_u64().map(|r| r.to_string()));
    // Reconnecting with the last id seen resumes right after it.
    let resume = format!("{}/v1/watch?prefix=w/", cluster.node(3).url());
    let mut resumed = SseReader::open(&resume, last_put_id.as_deref()).await;
    assert_eq!(resumed.next().await.2["key"], "w/l1");
    assert_eq!(resumed.next().await.2["key"], "w/l2");

    // The Rust client's watch: the same changes, typed, and where to resume.
    let mut typed = cluster.client().watch("w/", Some(first)).await.unwrap();
    let change = typed.next_change().await.unwrap().unwrap();
    assert_eq!((change.revision, change.key.as_str(), change.value.as_deref()), (first, "w/a", Some(b"1".as_slice())));
    assert_eq!(typed.resume_from(), Some(first + 1));
    typed.next_change().await.unwrap();
    let deletion = typed.next_change().await.unwrap().unwrap();
    assert_eq!((deletion.key.as_str(), deletion.value), ("w/a", None));
}

#[tokio::test]
async fn bad_watch_input_gets_a_json_4xx() {
    let cluster = Cluster::start(3, &["--key-bytes-max", "16", "--streams-max", "1"]).await;
    let base = cluster.node(1).url();
    let http = reqwest::Client::new();
    // The one stream this node serves is taken.
    let _held = SseReader::open(&format!("{base}/v1/watch"), None).await;
    let other = cluster.node(2).url();
    let cases: Vec<(&str, reqwest::RequestBuilder, StatusCode, &str)> = vec![
        ("oversized prefix", http.get(format!("{other}/v1/watch?prefix={}", "p".repeat(17))), StatusCode::PAYLOAD_TOO_LARGE, "key_too_large"),
        ("revision zero", http.get(format!("{other}/v1/watch?from_revision=0")), StatusCode::BAD_REQUEST, "invalid_revision"),
        ("revision not a number", http.get(format!("{other}/v1/watch?from_revision=soon")), StatusCode::BAD_REQUEST, "invalid_query"),
        ("unknown parameter", http.get(format!("{other}/v1/watch?recursive=true")), StatusCode::BAD_REQUEST, "invalid_query"),
        ("bad Last-Event-ID", http.get(format!("{other}/v1/watch")).header("last-event-id", "abc"), StatusCode::BAD_REQUEST, "invalid_last_event_id"),
        ("wrong method", http.post(format!("{other}/v1/watch")), StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed"),
        ("too many streams on one node", http.get(format!("{base}/v1/watch")), StatusCode::SERVICE_UNAVAILABLE, "unavailable"),
    ];
    expect_refusals(cases).await;
}
