//! Keys with a time to live on a real 3-node cluster, timed against the test's own
//! clock.
//!
//! The guarantees (`state::expiry`): a key never expires earlier than its TTL after
//! the put that set it was sent, a leader change neither resets nor shortens it, and
//! a put without a TTL takes the expiry away.

mod common;

use std::time::{Duration, Instant};

use common::{Cluster, wait_for};
use concord::client::{Client, WriteOptions};

fn ttl(ttl_ms: u64) -> WriteOptions {
    WriteOptions { ttl_ms: Some(ttl_ms), ..Default::default() }
}

/// Polls until `key` is gone, asserting it is present before `not_before`; returns
/// when it disappeared.
async fn watch_expiry(client: &Client, key: &str, not_before: Instant, give_up: Duration) -> Instant {
    wait_for(&format!("{key} to expire"), give_up, || async {
        // A read may fail during an election; only a definite answer counts.
        let found = client.get(key).await.ok()?.value;
        let now = Instant::now();
        if found.is_none() {
            assert!(now >= not_before, "{key} expired {:?} before its TTL ran out", not_before - now);
            return Some(now);
        }
        None
    })
    .await
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
    let leader = cluster.wait_for_leader(Duration::from_secs(10)).await;
    let client = cluster.client();
    let lifetime = Duration::from_secs(10);
    let sent = Instant::now();
    client.put_with("lock/owner", "me", &ttl(lifetime.as_millis() as u64)).await.unwrap();

    // Let 7 of the 10 s run out, then kill the leader.
    wait_for("7 s of the ttl to pass, the key present throughout", Duration::from_secs(9), || async {
        assert!(client.get("lock/owner").await.unwrap().value.is_some());
        (sent.elapsed() >= Duration::from_secs(7)).then_some(())
    })
    .await;
    let killed = Instant::now();
    cluster.kill(leader);
    let client = cluster.client();
    cluster.wait_for_leader(Duration::from_secs(15)).await;
    let failover = killed.elapsed();

    // The clock paused during the election and resumed where it was: about 3 s were
    // left, so the key goes about 3 s (plus a tick) after the new leader took over. A
    // reset would have given it a fresh 10 s.
    let gone = watch_expiry(&client, "lock/owner", sent + lifetime, Duration::from_secs(30)).await;
    let after_failover = gone - (killed + failover);
    eprintln!("failover took {failover:?}; the key went {after_failover:?} after it (3 s were left)");
    assert!(after_failover < Duration::from_millis(7000), "the ttl was reset by the leader change: it lived {after_failover:?} past the failover");
}
