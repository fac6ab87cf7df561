//! Consistent-hash rings on a real 3-node cluster.

mod common;

use concord::client::RingJoin;
use std::time::Duration;

use common::{Cluster, wait_for};
use concord::placement::Placement;

#[tokio::test]
async fn lookups_match_the_membership_at_their_epoch() {
    let cluster = Cluster::start(3, &[]).await;
    let client = cluster.client();
    let mut last_epoch = 0;
    for (i, weight) in [1, 2, 1, 1].into_iter().enumerate() {
        let epoch = client
            .ring_join("cache", &format!("cache-{i}"), &RingJoin { address: &format!("10.0.0.{i}:11211"), weight, metadata: "zone=a", lease: None })
            .await
            .unwrap();
        assert!(epoch > last_epoch, "epochs grow");
        last_epoch = epoch;
    }
    let ring = client.ring("cache").await.unwrap();
    assert_eq!(ring.epoch, last_epoch);
    assert!(ring.members.iter().all(|m| m.metadata == "zone=a"), "metadata is kept");
    // A client computes placement itself from the ring and gets the server's answer.
    let local = Placement::new(ring.members.iter().map(|m| (m.name.as_str(), m.weight)));
    for key in ["user/1", "user/2", "session/abc", "😀", "a/b/c"] {
        let lookup = client.ring_lookup("cache", key, 2).await.unwrap();
        assert_eq!(lookup.epoch, ring.epoch);
        let owners: Vec<&str> = lookup.owners.iter().map(|m| m.name.as_str()).collect();
        assert_eq!(owners, local.owners(key, 2), "owners of {key}");
        assert_ne!(owners[0], owners[1]);
    }
    let left = client.ring_leave("cache", "cache-1").await.unwrap();
    assert!(left > last_epoch);
    let after = client.ring_lookup("cache", "user/1", 4).await.unwrap();
    assert_eq!(after.epoch, left);
    assert_eq!(after.owners.len(), 3);
    assert!(after.owners.iter().all(|m| m.name != "cache-1"));
}

#[tokio::test]
async fn a_member_on_a_lease_leaves_when_its_holder_stops_renewing() {
    let cluster = Cluster::start(3, &[]).await;
    let client = cluster.client();
    client.ring_join("svc", "stable", &RingJoin { address: "10.0.0.1:80", weight: 1, metadata: "", lease: None }).await.unwrap();
    let lease = client.lease_grant(1500).await.unwrap();
    let joined = client.ring_join("svc", "flaky", &RingJoin { address: "10.0.0.2:80", weight: 1, metadata: "", lease: Some(lease.id) }).await.unwrap();
    // No keep-alives: the member leaves with its lease, and the epoch grows.
    let ring = wait_for("the leased member to leave", Duration::from_secs(10), || async {
        let ring = client.ring("svc").await.ok()?;
        ring.members.iter().all(|m| m.name != "flaky").then_some(ring)
    })
    .await;
    assert!(ring.epoch > joined);
    assert_eq!(ring.members.len(), 1);
    let lookup = client.ring_lookup("svc", "anything", 3).await.unwrap();
    assert_eq!(lookup.owners.iter().map(|m| m.name.as_str()).collect::<Vec<_>>(), ["stable"]);

    // Metadata is bounded (4096 bytes); over it, a 413 and no change.
    let http = reqwest::Client::new();
    let body = serde_json::json!({ "address": "10.0.0.3:80", "metadata": "m".repeat(4097) });
    let refused = http.put(format!("{}/v1/rings/svc/members/big", cluster.node(1).url())).json(&body).send().await.unwrap();
    assert_eq!(refused.status(), reqwest::StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(client.ring("svc").await.unwrap().epoch, ring.epoch);
}
