//! Locks with fencing tokens on a real 3-node cluster.

mod common;

use std::time::{Duration, Instant};

use common::{Cluster, wait_for};
use concord::client::WriteOptions;

#[tokio::test]
async fn a_lock_held_across_a_leader_kill_keeps_its_token() {
    let mut cluster = Cluster::start(3, &[]).await;
    let leader = cluster.wait_for_leader(Duration::from_secs(10)).await;
    let client = cluster.client();
    let lease = client.lease_grant(60_000).await.unwrap();
    let grant = client.lock_acquire("jobs/leader", lease.id, 0).await.unwrap();
    assert_eq!(client.lease_get(lease.id).await.unwrap().unwrap().locks, ["jobs/leader"]);
    cluster.kill(leader);
    cluster.wait_for_leader(Duration::from_secs(15)).await;
    let client = cluster.client();
    let holder = client.lock_holder("jobs/leader").await.unwrap().expect("still held");
    assert_eq!((holder.token, holder.lease), (grant.token, lease.id));
    assert!(client.lock_check("jobs/leader", grant.token).await.unwrap());
    let other = client.lease_grant(60_000).await.unwrap();
    let busy = client.lock_acquire("jobs/leader", other.id, 0).await.unwrap_err();
    assert_eq!(busy.code(), Some("lock_busy"));
}

#[tokio::test]
async fn an_expired_holder_is_fenced_out_and_the_next_grant_has_a_larger_token() {
    let cluster = Cluster::start(3, &[]).await;
    let client = cluster.client();
    let short = client.lease_grant(1000).await.unwrap();
    let first = client.lock_acquire("res", short.id, 0).await.unwrap();
    let fenced = |token: u64| WriteOptions { fence: Some(("res".to_string(), token)), ..Default::default() };
    client.put_with("res/data", "first holder", &fenced(first.token)).await.unwrap();

    // The first holder "pauses": no keep-alives. Its lease ends and the lock frees.
    wait_for("the first holder's lease to expire", Duration::from_secs(10), || async { client.lock_holder("res").await.ok()?.is_none().then_some(()) }).await;
    let other = client.lease_grant(60_000).await.unwrap();
    let second = client.lock_acquire("res", other.id, 0).await.unwrap();
    assert!(second.token > first.token, "tokens grow: {} then {}", first.token, second.token);

    // The paused holder wakes up and writes with its old token: refused, nothing changed.
    let late = client.put_with("res/data", "late write", &fenced(first.token)).await.unwrap_err();
    assert_eq!((late.status(), late.code()), (Some(409), Some("fence_rejected")));
    assert_eq!(client.get("res/data").await.unwrap().value.unwrap().value, b"first holder");
    assert!(!client.lock_check("res", first.token).await.unwrap());
    assert!(client.lock_check("res", second.token).await.unwrap());
    client.put_with("res/data", "second holder", &fenced(second.token)).await.unwrap();
    // A release with the stale token is refused, not a silent success.
    let stale = client.lock_release("res", first.token).await.unwrap_err();
    assert_eq!(stale.code(), Some("stale_token"));
    client.lock_release("res", second.token).await.unwrap();
    assert!(client.lock_holder("res").await.unwrap().is_none());
}

#[tokio::test]
async fn waiters_are_served_in_order_and_give_up_after_wait_ms() {
    let cluster = Cluster::start(3, &[]).await;
    let client = std::sync::Arc::new(cluster.client());
    let (a, b, c) = (client.lease_grant(60_000).await.unwrap().id, client.lease_grant(60_000).await.unwrap().id, client.lease_grant(60_000).await.unwrap().id);
    let held = client.lock_acquire("q", a, 0).await.unwrap();
    // b waits in line (long poll) while a holds the lock.
    let waiting = {
        let client = client.clone();
        tokio::spawn(async move { client.lock_acquire("q", b, 10_000).await })
    };
    wait_for("b to be queued", Duration::from_secs(5), || async {
        let body: serde_json::Value = reqwest::get(format!("{}/v1/locks/q", cluster.node(1).url())).await.ok()?.json().await.ok()?;
        (body["waiters"] == serde_json::json!([b])).then_some(())
    })
    .await;
    // c waits briefly and gives up: 409, and it leaves the line.
    let started = Instant::now();
    let gave_up = client.lock_acquire("q", c, 600).await.unwrap_err();
    assert_eq!(gave_up.code(), Some("lock_busy"));
    assert!(started.elapsed() >= Duration::from_millis(600), "answered before wait_ms");
    client.lock_release("q", held.token).await.unwrap();
    let granted = waiting.await.unwrap().expect("b is granted the lock when a releases it");
    assert_eq!(granted.lease, b);
    assert!(granted.token > held.token);
    let holder = client.lock_holder("q").await.unwrap().unwrap();
    assert_eq!(holder.lease, b);
    let state: serde_json::Value = reqwest::get(format!("{}/v1/locks/q", cluster.node(2).url())).await.unwrap().json().await.unwrap();
    assert_eq!(state["waiters"], serde_json::json!([]), "c left the line when it gave up");
}
