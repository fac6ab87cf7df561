//! Blocking queries (`?index=R&wait_ms=W`) on a real 3-node cluster: a read waits for
//! the state to move past R, and answers at the timeout if nothing changed.

mod common;

use concord::client::RingJoin;
use std::time::{Duration, Instant};

use common::Cluster;
use serde_json::Value;

#[tokio::test]
async fn a_blocking_read_wakes_on_a_change_and_times_out_without_one() {
    let cluster = Cluster::start(3, &[]).await;
    let client = cluster.client();
    let first = client.put("config/flag", "off").await.unwrap().value.revision;
    let http = reqwest::Client::new();
    let url = format!("{}/v1/kv/config/flag?index={first}&wait_ms=10000", cluster.node(2).url());

    // Nothing changes for 400 ms: the read answers then, with the same revision.
    let started = Instant::now();
    let idle: Value = http.get(format!("{}/v1/kv/config/flag?index={first}&wait_ms=400", cluster.node(3).url())).send().await.unwrap().json().await.unwrap();
    assert!(started.elapsed() >= Duration::from_millis(400), "answered before wait_ms without a change");
    assert_eq!((idle["value"].as_str(), idle["revision"].as_u64()), (Some("off"), Some(first)));

    // A write 300 ms in wakes the waiting read, which sees it.
    let waiting = tokio::spawn({
        let request = http.get(&url).send();
        async move {
            let started = Instant::now();
            let body: Value = request.await.unwrap().json().await.unwrap();
            (started.elapsed(), body)
        }
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!waiting.is_finished(), "the blocking read answered before any change");
    let second = client.put("config/flag", "on").await.unwrap().value.revision;
    let (elapsed, body) = waiting.await.unwrap();
    assert!(elapsed < Duration::from_secs(5), "the change did not wake the read ({elapsed:?})");
    assert_eq!((body["value"].as_str(), body["revision"].as_u64()), (Some("on"), Some(second)));

    // Rings block on their epoch.
    let epoch = client.ring_join("r", "a", &RingJoin { address: "10.0.0.1:1", weight: 1, metadata: "", lease: None }).await.unwrap();
    let ring_wait = tokio::spawn(http.get(format!("{}/v1/rings/r?index={epoch}&wait_ms=10000", cluster.node(1).url())).send());
    tokio::time::sleep(Duration::from_millis(200)).await;
    let next = client.ring_join("r", "b", &RingJoin { address: "10.0.0.2:1", weight: 1, metadata: "", lease: None }).await.unwrap();
    let ring: Value = ring_wait.await.unwrap().unwrap().json().await.unwrap();
    assert_eq!(ring["epoch"].as_u64(), Some(next));
}
