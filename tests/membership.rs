//! Membership changes under load, and catching up a node through a snapshot.

mod common;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use common::{Cluster, wait_for};
use concord::client::ClusterStatus;
use tokio::sync::Mutex;

#[tokio::test]
async fn add_a_fourth_node_and_remove_an_old_one_while_writes_continue() {
    let mut cluster = Cluster::start(3, &[]).await;
    let client = Arc::new(cluster.client());
    let stop = Arc::new(AtomicBool::new(false));
    let acked = Arc::new(Mutex::new(BTreeMap::new()));
    let writer = {
        let (client, stop, acked) = (client.clone(), stop.clone(), acked.clone());
        tokio::spawn(async move {
            let mut i = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let key = format!("m/{i:06}");
                if client.put(&key, i.to_string()).await.is_ok() {
                    acked.lock().await.insert(key, i.to_string());
                }
                i += 1;
            }
        })
    };
    wait_for("writes before the change", Duration::from_secs(10), || async { (acked.lock().await.len() > 30).then_some(()) }).await;

    cluster.start_joiner(4, 2);
    let voters = |status: ClusterStatus| -> Option<Vec<u64>> { Some(status.members.iter().filter(|m| m.role != "learner").map(|m| m.id).collect()) };
    wait_for("node 4 to become a voter", Duration::from_secs(30), || async {
        let status = client.cluster_status(false).await.ok()?.value;
        voters(status).filter(|v| v.contains(&4)).map(|_| ())
    })
    .await;

    // Remove node 1, whatever its role (it may be the leader).
    let removed = client.remove_member(1).await.expect("remove node 1");
    assert!(removed.removed, "{removed:?}");
    cluster.kill(1);
    let writes_before = acked.lock().await.len();
    wait_for("writes to continue after the change", Duration::from_secs(15), || async { (acked.lock().await.len() > writes_before + 30).then_some(()) }).await;
    stop.store(true, Ordering::Relaxed);
    writer.await.unwrap();

    let client = cluster.client();
    let status = client.cluster_status(false).await.unwrap().value;
    let mut members = voters(status).unwrap();
    members.sort();
    assert_eq!(members, [2, 3, 4]);
    let acked = acked.lock().await.clone();
    // Node 4's own state (stale reads there), once it has applied what the leader committed.
    cluster.wait_caught_up(4, Duration::from_secs(10)).await;
    let node4 = cluster.client_of(4);
    for (key, value) in &acked {
        let found = node4.get_with(key, true).await.unwrap().value.unwrap_or_else(|| panic!("{key} lost on node 4"));
        assert_eq!(found.value, value.as_bytes());
    }
}

#[tokio::test]
async fn a_node_that_missed_purged_log_catches_up_by_snapshot() {
    let mut cluster = Cluster::start(3, &["--snapshot-after-entries", "50"]).await;
    let leader = cluster.wait_for_leader(Duration::from_secs(10)).await;
    let lagging = (1..=3).find(|id| *id != leader).unwrap();
    cluster.kill(lagging);
    let client = cluster.client();
    // Every primitive's state, so the snapshot has to carry it all.
    let lease = client.lease_grant(600_000).await.unwrap();
    client.put_with("snap/leased", "v", &concord::client::WriteOptions { lease: Some(lease.id), ..Default::default() }).await.unwrap();
    client.lock_acquire("snap-lock", lease.id, 0).await.unwrap();
    let join = concord::client::RingJoin { address: "10.0.0.1:80", weight: 2, metadata: "m", lease: Some(lease.id) };
    client.ring_join("snap-ring", "m1", &join).await.unwrap();
    for i in 0..3 {
        client.enqueue("snap-queue", format!("job {i}"), 0).await.unwrap();
        client.publish("snap-topic", format!("event {i}")).await.unwrap();
    }
    client.receive("snap-queue", concord::client::ReceiveOptions { max: 1, visibility_ms: Some(600_000), wait_ms: 0 }).await.unwrap();
    for i in 0..400 {
        client.put(&format!("snap/{i:04}"), vec![b'x'; 200]).await.unwrap();
    }
    // The others took a snapshot and purged the log far past what the lagging node
    // has (it was killed before these 400 writes).
    wait_for("the leader to purge its log", Duration::from_secs(20), || async {
        let status = cluster.local_status(leader).await?;
        (status["purged_index"].as_u64()? > 100).then_some(())
    })
    .await;

    cluster.restart(lagging);
    let own = cluster.client_of(lagging);
    wait_for("the restarted node to install a snapshot and catch up", Duration::from_secs(30), || async {
        let status = cluster.local_status(lagging).await?;
        let caught_up = status["snapshot_index"].as_u64()? > 100 && own.get_with("snap/0399", true).await.ok()?.value.is_some();
        caught_up.then_some(())
    })
    .await;
    for i in (0..400).step_by(37) {
        let found = own.get_with(&format!("snap/{i:04}"), true).await.unwrap().value;
        assert_eq!(found.map(|kv| kv.value.len()), Some(200), "key {i} on the caught-up node");
    }
    assert!(cluster.log_of(lagging).contains("installed snapshot"), "caught up through a snapshot, not the log");
    // The primitives read the same on the caught-up node (locally) as on the leader.
    let time_dependent = ["applied_index", "remaining_ms", "oldest_age_ms", "clock_ms", "revision"];
    let read = |id: u64, path: String| {
        let url = format!("{}{path}{}consistency=stale", cluster.node(id).url(), if path.contains('?') { "&" } else { "?" });
        async move {
            let mut body: serde_json::Value = reqwest::get(url).await.unwrap().json().await.unwrap();
            for field in time_dependent {
                body.as_object_mut().map(|o| o.remove(field));
            }
            body
        }
    };
    for path in [
        format!("/v1/leases/{}", lease.id),
        "/v1/locks/snap-lock".to_string(),
        "/v1/rings/snap-ring".to_string(),
        "/v1/queues/snap-queue".to_string(),
        "/v1/topics/snap-topic".to_string(),
        "/v1/topics/snap-topic/messages?from=1".to_string(),
        "/v1/kv/snap/leased".to_string(),
    ] {
        let (on_leader, on_lagging) = (read(leader, path.clone()).await, read(lagging, path.clone()).await);
        assert!(on_leader.get("error").is_none(), "{path}: {on_leader}");
        assert_eq!(on_lagging, on_leader, "{path} after catching up by snapshot");
    }
}

#[tokio::test]
async fn peer_rpcs_from_another_cluster_are_refused_before_raft_sees_them() {
    let cluster = Cluster::start(3, &[]).await;
    let leader = cluster.wait_for_leader(Duration::from_secs(10)).await;
    let status = cluster.local_status(leader).await.unwrap();
    let own = status["cluster_id"].as_str().expect("the cluster reports its id").to_string();
    let http = reqwest::Client::new();
    let url = format!("{}/raft/append", cluster.node(leader).url());
    for (what, header) in [("no cluster id", None), ("another cluster's id", Some("0123456789abcdef"))] {
        let mut request = http.post(&url).header("concord-protocol", concord::raft::protocol::PROTOCOL_VERSION).body(vec![0u8; 16]);
        if let Some(id) = header {
            request = request.header("concord-cluster", id);
        }
        let answer = request.send().await.unwrap();
        assert_eq!(answer.status(), reqwest::StatusCode::FORBIDDEN, "{what}");
        assert!(answer.text().await.unwrap().contains(&own), "{what}: names the node's cluster");
    }
    // The right id gets through to the frame decoder (this body is not a frame).
    let answer = http
        .post(&url)
        .header("concord-cluster", &own)
        .header("concord-protocol", concord::raft::protocol::PROTOCOL_VERSION)
        .body(vec![0u8; 16])
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), reqwest::StatusCode::BAD_REQUEST);
    cluster.client().put("still/fine", "yes").await.unwrap();
}

#[tokio::test]
async fn a_snapshot_asked_for_covers_every_write_acknowledged_before() {
    let cluster = Cluster::start(3, &[]).await;
    let leader = cluster.wait_for_leader(Duration::from_secs(10)).await;
    let client = cluster.client();
    for i in 0..20 {
        client.put(&format!("snap/{i}"), "v").await.unwrap();
    }
    let applied = cluster.local_status(leader).await.unwrap()["applied_index"].as_u64().unwrap();
    assert!(cluster.local_status(leader).await.unwrap()["snapshot_index"].is_null(), "no snapshot by policy yet (50,000 entries)");
    // Asked of a follower: forwarded, and built by the leader.
    let follower = (1..=3).find(|id| *id != leader).unwrap();
    let http = reqwest::Client::new();
    let url = format!("{}/v1/cluster/snapshot", cluster.node(follower).url());
    let answer = http.post(&url).send().await.unwrap();
    let status_code = answer.status();
    let text = answer.text().await.unwrap();
    assert_eq!(status_code, reqwest::StatusCode::OK, "{text}");
    let body: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(body["built"], true, "{body}");
    assert!(body["snapshot_index"].as_u64().unwrap() >= applied, "{body} covers {applied}");
    let status = cluster.local_status(leader).await.unwrap();
    assert_eq!(status["snapshot_index"], body["snapshot_index"]);

    common::expect_refusals(vec![
        ("a query parameter", http.post(format!("{url}?now=1")), reqwest::StatusCode::BAD_REQUEST, "invalid_query"),
        ("GET", http.get(&url), reqwest::StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed"),
    ])
    .await;
    assert_eq!(client.get("snap/19").await.unwrap().value.map(|kv| kv.value), Some(b"v".to_vec()));
}

/// A retried join must not write the membership again: openraft restarts every
/// replication stream on a membership entry, a snapshot in transfer with them, so a
/// learner whose snapshot took longer than the joiner's retry interval never caught
/// up (a 1.4 GB snapshot at 10M keys, `docs/performance.md`).
#[tokio::test]
async fn retrying_the_addition_of_a_learner_writes_no_new_membership() {
    let cluster = Cluster::start(3, &[]).await;
    let leader = cluster.wait_for_leader(Duration::from_secs(10)).await;
    let url = format!("{}/v1/cluster/members", cluster.node(leader).url());
    let http = cluster.http();
    // Nothing listens there: node 4 becomes a learner that never catches up.
    let body = serde_json::json!({ "id": 4, "addr": format!("127.0.0.1:{}", common::free_port()) });
    let membership_index = || async { cluster.local_status(leader).await.unwrap()["membership_log_index"].as_u64().unwrap() };
    let before = membership_index().await;

    let first = http.post(&url).json(&body).send().await.unwrap();
    assert_eq!(first.status(), reqwest::StatusCode::GATEWAY_TIMEOUT, "not caught up: {}", first.text().await.unwrap());
    let added = membership_index().await;
    assert!(added > before, "the first attempt added the learner");

    let retry = http.post(&url).json(&body).send().await.unwrap();
    assert_eq!(retry.status(), reqwest::StatusCode::GATEWAY_TIMEOUT, "still not caught up: {}", retry.text().await.unwrap());
    assert_eq!(membership_index().await, added, "the retry wrote the membership again");
    let status = cluster.local_status(leader).await.unwrap();
    let node4 = status["members"].as_array().unwrap().iter().find(|m| m["id"] == 4).cloned().expect("node 4 is a member");
    assert_eq!(node4["role"], "learner", "{status}");
}
