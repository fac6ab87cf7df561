//! Keys with a time to live on a real 3-node cluster, timed against the test's own
//! clock.
//!
//! The guarantees (`state::expiry`): a key never expires earlier than its TTL after
//! the put that set it was sent, a leader change neither resets nor shortens it, and
//! a put without a TTL takes the expiry away.

mod common;

use std::time::{Duration, Instant};

use common::{Cluster, expires_as_if_the_leader_never_died, watch_expiry};
use concord::client::WriteOptions;

fn ttl(ttl_ms: u64) -> WriteOptions {
    WriteOptions { ttl_ms: Some(ttl_ms), ..Default::default() }
}

/// `GET /v1/kv/{key}` as JSON from node 1.
async fn key_json(cluster: &Cluster, key: &str) -> serde_json::Value {
    let url = format!("{}/v1/kv/{key}", cluster.node(1).url());
    cluster.http().get(url).send().await.unwrap().json().await.unwrap()
}

#[tokio::test]
async fn a_key_lives_its_ttl_says_what_is_left_and_a_plain_put_takes_the_expiry_away() {
    let cluster = Cluster::start(3, &[]).await;
    let client = cluster.client();
    let sent = Instant::now();
    client.put_with("session/a", "x", &ttl(1500)).await.unwrap();
    client.put_with("session/b", "y", &ttl(1500)).await.unwrap();
    client.put("session/b", "kept").await.unwrap();
    let left = key_json(&cluster, "session/a").await["ttl_ms"].as_u64().expect("a ttl");
    assert!(left <= 1500 && left > 0, "{left} ms left");
    let b = key_json(&cluster, "session/b").await;
    assert_eq!(b["ttl_ms"], serde_json::Value::Null, "the plain put took it away: {b}");

    let gone = watch_expiry(&client, "session/a", sent + Duration::from_millis(1500), Duration::from_secs(10)).await;
    eprintln!("expired {:?} after the put was sent (ttl 1500 ms)", gone - sent);
    assert!(client.get("session/b").await.unwrap().value.is_some());

    let refused = cluster.http().put(format!("{}/v1/kv/zero?ttl_ms=0", cluster.node(1).url())).body("v").send().await.unwrap();
    assert_eq!(refused.status(), reqwest::StatusCode::BAD_REQUEST);
    assert!(client.get("zero").await.unwrap().value.is_none(), "nothing written");
}

#[tokio::test]
async fn a_leader_change_neither_resets_nor_shortens_a_ttl() {
    let mut cluster = Cluster::start(3, &[]).await;
    let sent = Instant::now();
    cluster.client().put_with("lock/owner", "me", &ttl(10_000)).await.unwrap();
    expires_as_if_the_leader_never_died(&mut cluster, "lock/owner", sent).await;
}
