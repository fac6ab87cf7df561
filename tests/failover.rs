//! Crashes: kill -9 of the leader under a stream of writes, of the whole cluster, and
//! of a minority and a majority of a 5-node cluster. Acknowledged writes must survive.

mod common;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use common::{Cluster, wait_for};
use concord::client::Client;
use tokio::sync::Mutex;

/// Writes `writer-N/i` keys until told to stop; records every acknowledged one.
fn spawn_writer(client: Arc<Client>, writer: usize, stop: Arc<AtomicBool>, acked: Arc<Mutex<BTreeMap<String, String>>>) -> tokio::task::JoinHandle<usize> {
    tokio::spawn(async move {
        let mut failures = 0;
        let mut i = 0u64;
        while !stop.load(Ordering::Relaxed) {
            let key = format!("writer-{writer}/{i:06}");
            let value = format!("value {i}");
            match client.put(&key, value.clone()).await {
                Ok(_) => {
                    acked.lock().await.insert(key, value);
                }
                Err(_) => failures += 1,
            }
            i += 1;
        }
        failures
    })
}

/// Reads every acknowledged key; `stale` reads the state of the node reached itself.
async fn assert_all_readable(client: &Client, acked: &BTreeMap<String, String>, stale: bool) {
    for (key, value) in acked {
        let found = client.get_with(key, stale).await.unwrap_or_else(|e| panic!("read {key}: {e}"));
        let found = found.value.unwrap_or_else(|| panic!("acknowledged write {key} is lost"));
        assert_eq!(found.value, value.as_bytes(), "{key}");
    }
}

#[tokio::test]
async fn killing_the_leader_under_writes_loses_no_acknowledged_write() {
    let mut cluster = Cluster::start(3, &[]).await;
    let leader = cluster.wait_for_leader(Duration::from_secs(10)).await;
    let client = Arc::new(cluster.client());
    let stop = Arc::new(AtomicBool::new(false));
    let acked = Arc::new(Mutex::new(BTreeMap::new()));
    let writers: Vec<_> = (0..4).map(|w| spawn_writer(client.clone(), w, stop.clone(), acked.clone())).collect();

    wait_for("some writes before the crash", Duration::from_secs(10), || async { (acked.lock().await.len() >= 50).then_some(()) }).await;
    let before_kill = acked.lock().await.len();
    let killed_at = Instant::now();
    cluster.kill(leader);
    let new_leader = cluster.wait_for_leader(Duration::from_secs(10)).await;
    let failover = killed_at.elapsed();
    assert_ne!(new_leader, leader);
    // Writes resume under the new leader.
    wait_for("writes to resume after failover", Duration::from_secs(10), || async { (acked.lock().await.len() >= before_kill + 50).then_some(()) }).await;
    let resumed = killed_at.elapsed();
    stop.store(true, Ordering::Relaxed);
    for writer in writers {
        writer.await.unwrap();
    }
    eprintln!("failover: new leader {new_leader} after {failover:?}; writes resumed within {resumed:?}");

    // Bring the old leader back: it rejoins as a follower and converges, which its own
    // (stale, local) reads show.
    cluster.restart(leader);
    let acked = acked.lock().await.clone();
    assert_all_readable(&cluster.client(), &acked, false).await;
    cluster.wait_caught_up(leader, Duration::from_secs(10)).await;
    assert_all_readable(&cluster.client_of(leader), &acked, true).await;
}

#[tokio::test]
async fn killing_every_node_and_restarting_keeps_acknowledged_data() {
    let mut cluster = Cluster::start(3, &[]).await;
    let client = cluster.client();
    let mut acked = BTreeMap::new();
    for i in 0..200 {
        let key = format!("durable/{i:04}");
        client.put(&key, format!("v{i}")).await.unwrap();
        acked.insert(key, format!("v{i}"));
    }
    client.delete("durable/0007").await.unwrap();
    acked.remove("durable/0007");
    for id in 1..=3 {
        cluster.kill(id);
    }
    for id in 1..=3 {
        cluster.restart(id);
    }
    cluster.wait_for_leader(Duration::from_secs(20)).await;
    let client = cluster.client();
    assert_all_readable(&client, &acked, false).await;
    assert!(client.get("durable/0007").await.unwrap().value.is_none(), "a deletion is durable too");
    let page = client.list("durable/", None, Some(1000)).await.unwrap();
    assert_eq!(page.items.len(), acked.len());
}

#[tokio::test]
async fn five_nodes_serve_with_two_down_and_refuse_with_three_down() {
    let mut cluster = Cluster::start(5, &[]).await;
    let leader = cluster.wait_for_leader(Duration::from_secs(10)).await;
    // Take down two followers.
    let followers: Vec<u64> = (1..=5).filter(|id| *id != leader).collect();
    cluster.kill(followers[0]);
    cluster.kill(followers[1]);
    let client = cluster.client();
    for i in 0..20 {
        client.put(&format!("q/{i}"), "v").await.expect("3 of 5 is a quorum");
    }
    assert!(client.get("q/19").await.unwrap().value.is_some());

    // A third node down: no quorum. Every survivor ends up refusing with 503 (nothing
    // proposed). Writes sent before the leader noticed may get 504 (proposed, outcome
    // unknown), so each attempt uses its own key and only the 503s are checked later.
    cluster.kill(followers[2]);
    let survivors = [leader, followers[3]];
    let http = reqwest::Client::new();
    let mut refused = Vec::new();
    let mut attempt = 0;
    for id in survivors {
        let key = wait_for("a 503 from a node without quorum", Duration::from_secs(20), || {
            attempt += 1;
            let key = format!("q/attempt-{id}-{attempt}");
            let request = http.put(format!("{}/v1/kv/{key}", cluster.node(id).url())).body("x").send();
            async move {
                let response = request.await.ok()?;
                let refused = response.status() == reqwest::StatusCode::SERVICE_UNAVAILABLE;
                assert!(!refused || response.headers().contains_key("retry-after"), "503 carries Retry-After");
                refused.then_some(key)
            }
        })
        .await;
        refused.push(key);
    }
    // With a majority back, the refused writes are absent: a 503 never became a write.
    cluster.restart(followers[0]);
    cluster.restart(followers[1]);
    cluster.wait_for_leader(Duration::from_secs(20)).await;
    let client = cluster.client();
    for key in &refused {
        match client.get(key).await {
            Ok(found) => assert!(found.value.is_none(), "{key} was refused with 503 but appeared"),
            Err(e) => panic!("read {key} failed: {e}"),
        }
    }
    assert!(client.get("q/0").await.unwrap().value.is_some());
}

#[tokio::test]
async fn a_new_cluster_forms_even_if_its_first_member_never_starts() {
    // Node 1 would propose the first membership; without it, the others do.
    let mut cluster = Cluster::start_without(3, &[1], &[]).await;
    let leader = cluster.wait_for_leader(Duration::from_secs(20)).await;
    assert_ne!(leader, 1);
    cluster.client().put("formed", "yes").await.unwrap();
    // When node 1 finally starts, it joins the cluster the others formed.
    cluster.restart(1);
    cluster.wait_caught_up(1, Duration::from_secs(20)).await;
    assert_eq!(cluster.client_of(1).get_with("formed", true).await.unwrap().value.map(|kv| kv.value), Some(b"yes".to_vec()));
}
