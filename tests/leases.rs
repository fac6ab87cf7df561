//! Leases on a real 3-node cluster, timed against the test's own clock.
//!
//! The guarantees: a lease never expires earlier than its TTL after the keep-alive
//! that last renewed it (measured from when that keep-alive was *sent*), a leader
//! change neither resets a lease (etcd's behaviour) nor expires it early, and a lease
//! nobody renews does expire, taking its keys with it.

mod common;

use std::time::{Duration, Instant};

use common::{Cluster, expires_as_if_the_leader_never_died, watch_expiry};
use concord::client::WriteOptions;

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
    let client = cluster.client();
    let lease = client.lease_grant(10_000).await.unwrap();
    client.put_with("lock/owner", "me", &WriteOptions { lease: Some(lease.id), ..Default::default() }).await.unwrap();
    let sent = Instant::now();
    client.lease_keep_alive(lease.id).await.unwrap();
    expires_as_if_the_leader_never_died(&mut cluster, "lock/owner", sent).await;
}
