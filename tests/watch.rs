//! Watches (`GET /v1/watch`, server-sent events) on a real 3-node cluster.

mod common;

use std::time::Duration;

use common::{Cluster, expect_refusals};
use reqwest::StatusCode;
use serde_json::Value;

/// Reads a server-sent event stream: `(event, id, data)` per event.
struct SseReader {
    response: reqwest::Response,
    buffer: String,
}

impl SseReader {
    async fn open(url: &str, last_event_id: Option<&str>) -> SseReader {
        let mut request = reqwest::Client::new().get(url);
        if let Some(id) = last_event_id {
            request = request.header("last-event-id", id);
        }
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), StatusCode::OK, "{url}");
        assert_eq!(response.headers()["content-type"], "text/event-stream");
        SseReader { response, buffer: String::new() }
    }

    /// The next event (keep-alive comments skipped), within 10 s.
    async fn next(&mut self) -> (String, Option<String>, Value) {
        loop {
            if let Some(end) = self.buffer.find("\n\n") {
                let block: String = self.buffer.drain(..end + 2).collect();
                let (mut event, mut id, mut data) = (String::from("message"), None, String::new());
                for line in block.lines() {
                    if let Some(v) = line.strip_prefix("event:") {
                        event = v.trim().to_string();
                    } else if let Some(v) = line.strip_prefix("id:") {
                        id = Some(v.trim().to_string());
                    } else if let Some(v) = line.strip_prefix("data:") {
                        data.push_str(v.trim_start());
                    }
                }
                if data.is_empty() {
                    continue; // a comment
                }
                return (event, id, serde_json::from_str(&data).unwrap());
            }
            let chunk = tokio::time::timeout(Duration::from_secs(10), self.response.chunk()).await.expect("an event within 10 s").unwrap().expect("stream open");
            self.buffer.push_str(&String::from_utf8_lossy(&chunk));
        }
    }
}

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
