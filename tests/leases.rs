//! Leases on a real 3-node cluster, timed against the test's own clock.
//!
//! The guarantees: a lease never expires earlier than its TTL after the keep-alive
//! that last renewed it (measured from when that keep-alive was *sent*), a leader
//! change neither resets a lease (etcd's behaviour) nor expires it early, and a lease
//! nobody renews does expire, taking its keys with it.

mod common;

use std::time::{Duration, Instant};

use common::{Cluster, wait_for};
use concord::client::{Client, WriteOptions};

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

#[tokio::test]
async fn kept_alive_keys_live_and_abandoned_ones_expire_after_their_ttl() {
    let cluster = Cluster::start(3, &[]).await;
    let client = cluster.client();
    let lease = client.lease_grant(1500).await.unwrap();
    let leased = WriteOptions { lease: Some(lease.id), ..Default::default() };
    client.put_with("svc/a", "10.0.0.1", &leased).await.unwrap();
    client.put("plain", "stays").await.unwrap();

    // Keep it alive for three TTLs: the key stays.
    let until = Instant::now() + Duration::from_millis(4500);
    let mut last_sent = Instant::now();
    while Instant::now() < until {
        last_sent = Instant::now();
        client.lease_keep_alive(lease.id).await.unwrap();
        assert!(client.get("svc/a").await.unwrap().value.is_some(), "a kept-alive key vanished");
        tokio::time::sleep(Duration::from_millis(400)).await;
    }
    let status = client.lease_get(lease.id).await.unwrap().expect("lease exists");
    assert_eq!(status.keys, ["svc/a"]);
    assert!(status.remaining_ms <= 1500);

    // Stop: it expires, no earlier than the TTL after the last keep-alive was sent.
    let gone = watch_expiry(&client, "svc/a", last_sent + Duration::from_millis(1500), Duration::from_secs(10)).await;
    eprintln!("expired {:?} after the last keep-alive (ttl 1500 ms)", gone - last_sent);
    assert!(client.lease_get(lease.id).await.unwrap().is_none());
    assert!(client.get("plain").await.unwrap().value.is_some());
    let refused = client.lease_keep_alive(lease.id).await.unwrap_err();
    assert_eq!(refused.code(), Some("lease_not_found"));
}

#[tokio::test]
async fn a_leader_change_neither_resets_nor_early_expires_a_lease() {
    let mut cluster = Cluster::start(3, &[]).await;
    let leader = cluster.wait_for_leader(Duration::from_secs(10)).await;
    let client = cluster.client();
    let ttl = Duration::from_secs(10);
    let lease = client.lease_grant(ttl.as_millis() as u64).await.unwrap();
    client.put_with("lock/owner", "me", &WriteOptions { lease: Some(lease.id), ..Default::default() }).await.unwrap();
    let sent = Instant::now();
    client.lease_keep_alive(lease.id).await.unwrap();

    // Let 7 of the 10 s run out, then kill the leader.
    wait_for("7 s of the lease to pass, the key present throughout", Duration::from_secs(9), || async {
        assert!(client.get("lock/owner").await.unwrap().value.is_some());
        (sent.elapsed() >= Duration::from_secs(7)).then_some(())
    })
    .await;
    let killed = Instant::now();
    cluster.kill(leader);
    let client = cluster.client();
    cluster.wait_for_leader(Duration::from_secs(15)).await;
    let failover = killed.elapsed();

    // The clock paused during the election and resumed where it was: about 3 s of the
    // lease were left, so it ends about 3 s (plus a tick) after the new leader took
    // over. A reset would have given it a fresh 10 s.
    let gone = watch_expiry(&client, "lock/owner", sent + ttl, Duration::from_secs(30)).await;
    let after_failover = gone - (killed + failover);
    eprintln!("failover took {failover:?}; the lease ended {after_failover:?} after it (3 s were left)");
    assert!(after_failover < Duration::from_millis(7000), "the lease was reset by the leader change: it lived {after_failover:?} past the failover");
}
