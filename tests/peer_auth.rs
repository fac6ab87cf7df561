//! The cluster secret (`--peer-secret-file`): members that share it replicate as usual;
//! anyone else who can reach the port, even knowing the (public) cluster id, cannot
//! get a forged Raft message to Raft, and a node with another secret is never caught
//! up nor promoted.

mod common;

use std::time::Duration;

use common::{Cluster, wait_for};
use concord::raft::TypeConfig;
use openraft::raft::{AppendEntriesRequest, VoteRequest};
use openraft::{CommittedLeaderId, LogId, Vote};

const SECRET: &str = "s3cret-peer-token-0123456789";

#[tokio::test]
async fn forged_raft_messages_without_the_secret_are_refused_and_change_nothing() {
    let secrets = tempfile::tempdir().unwrap();
    let file = secrets.path().join("peer-secret");
    std::fs::write(&file, format!("{SECRET}\n")).unwrap();
    let cluster = Cluster::start(3, &["--peer-secret-file", file.to_str().unwrap()]).await;
    let leader = cluster.wait_for_leader(Duration::from_secs(10)).await;
    // Replication works: the members send each other the secret.
    let client = cluster.client();
    client.put("before", "1").await.unwrap();

    let status = cluster.local_status(leader).await.unwrap();
    let term = status["term"].as_u64().unwrap();
    let cluster_id = status["cluster_id"].as_str().unwrap().to_string();
    // Messages of a made-up leader, node 99, 100 terms ahead: a vote request, and an
    // empty append that would make the real leader step down.
    let vote = VoteRequest::new(Vote::new(term + 100, 99), Some(LogId::new(CommittedLeaderId::new(term + 100, 99), 1 << 40)));
    let append: AppendEntriesRequest<TypeConfig> =
        AppendEntriesRequest { vote: Vote::new_committed(term + 100, 99), prev_log_id: None, leader_commit: None, entries: vec![] };
    let forged = [("vote", concord::codec::encode(&vote).unwrap()), ("append", concord::codec::encode(&append).unwrap())];
    let http = reqwest::Client::new();
    let send = |rpc: &str, body: &Vec<u8>, secret: Option<&str>| {
        let mut request = http
            .post(format!("{}/raft/{rpc}", cluster.node(leader).url()))
            .header("concord-cluster", &cluster_id)
            .header("concord-protocol", concord::raft::protocol::PROTOCOL_VERSION)
            .body(body.clone());
        if let Some(secret) = secret {
            request = request.header("concord-peer-secret", secret);
        }
        request.send()
    };
    for (rpc, body) in &forged {
        for (what, secret) in [("no secret", None), ("a wrong secret", Some("not-the-secret-0123456789")), ("a prefix", Some(&SECRET[..20]))] {
            let answer = send(rpc, body, secret).await.unwrap();
            assert_eq!(answer.status(), reqwest::StatusCode::UNAUTHORIZED, "{rpc} with {what}");
            assert!(answer.text().await.unwrap().contains("--peer-secret-file"), "{rpc} with {what}: says what to do");
        }
    }
    let after = cluster.local_status(leader).await.unwrap();
    assert_eq!(after["term"].as_u64(), Some(term), "a refused message changed the term");
    assert_eq!(after["node"]["state"], "leader", "a refused message unseated the leader");

    // The control: with the secret the forged append does reach Raft, and the leader
    // takes node 99 for its leader; so the 401s above are what protected it.
    let (_, append) = &forged[1];
    assert_eq!(send("append", append, Some(SECRET)).await.unwrap().status(), reqwest::StatusCode::OK);
    let unseated = cluster.local_status(leader).await.unwrap();
    assert_eq!(unseated["term"].as_u64(), Some(term + 100), "{unseated}");
    assert_eq!(unseated["leader"], 99, "{unseated}");
    // The cluster elects a real leader again and keeps what it had.
    wait_for("a write after the forged append", Duration::from_secs(30), || async { client.put("after", "2").await.ok() }).await;
    assert_eq!(client.get("before").await.unwrap().value.map(|kv| kv.value), Some(b"1".to_vec()));
}

#[tokio::test]
async fn a_node_without_the_secret_cannot_join() {
    let secrets = tempfile::tempdir().unwrap();
    let file = secrets.path().join("peer-secret");
    std::fs::write(&file, SECRET).unwrap();
    let mut cluster = Cluster::start(3, &["--peer-secret-file", file.to_str().unwrap()]).await;
    cluster.wait_for_leader(Duration::from_secs(10)).await;
    // Started with the cluster's flags but its own (wrong) secret file.
    let wrong = secrets.path().join("wrong-secret");
    std::fs::write(&wrong, "another-secret-0123456789").unwrap();
    cluster.start_joiner_with(4, 1, &["--peer-secret-file", wrong.to_str().unwrap()]);
    // It is added as a learner, but it refuses the leader's appends (401), so it
    // never catches up, the promotion times out, and its join keeps failing.
    wait_for("the joiner's first failed join", Duration::from_secs(30), || async { cluster.log_of(4).contains("join failed").then_some(()) }).await;
    let status = cluster.client_of(1).cluster_status(false).await.unwrap().value;
    let node4 = status.members.iter().find(|m| m.id == 4).cloned().expect("node 4 is a learner");
    assert_eq!(node4.role, "learner", "{status:?}");
    assert_eq!(node4.matched_index, None, "the leader replicated to a node with the wrong secret: {status:?}");
    let own = cluster.local_status(4).await.unwrap();
    assert!(own["applied_index"].is_null(), "{own}");
    cluster.client().put("still", "fine").await.unwrap();
}

/// A peer that speaks another protocol version is refused before its frame is
/// decoded, with what to do; every answer says the version it carries.
#[tokio::test]
async fn a_peer_of_an_unknown_protocol_version_is_refused_before_decoding() {
    let cluster = Cluster::start(3, &[]).await;
    let leader = cluster.wait_for_leader(Duration::from_secs(10)).await;
    let status = cluster.local_status(leader).await.unwrap();
    let (term, cluster_id) = (status["term"].as_u64().unwrap(), status["cluster_id"].as_str().unwrap().to_string());
    let vote = VoteRequest::new(Vote::new(term + 100, 99), None);
    let body = concord::codec::encode(&vote).unwrap();
    let http = reqwest::Client::new();
    let send = |version: Option<&str>, body: Vec<u8>| {
        let mut request = http.post(format!("{}/raft/vote", cluster.node(leader).url())).header("concord-cluster", &cluster_id).body(body);
        if let Some(version) = version {
            request = request.header("concord-protocol", version);
        }
        request.send()
    };
    let newer = (concord::raft::protocol::PROTOCOL_VERSION + 1).to_string();
    let refused = send(Some(&newer), body).await.unwrap();
    assert_eq!(refused.status(), reqwest::StatusCode::UPGRADE_REQUIRED);
    assert_eq!(refused.headers().get("concord-protocol").map(|v| v.to_str().unwrap()), Some(concord::raft::protocol::PROTOCOL_VERSION.to_string().as_str()));
    let message = refused.text().await.unwrap();
    assert!(message.contains(&format!("version {newer}")) && message.contains("speaks 2 to 5"), "{message}");
    let after = cluster.local_status(leader).await.unwrap();
    assert_eq!((after["term"].as_u64(), after["node"]["state"].as_str()), (Some(term), Some("leader")), "the refused vote reached nothing");
    // The control: in versions 5, 4, 3 and 2 the same route decodes, and refuses only the
    // garbage; version 1 (or none, as nodes from before the header send) is refused
    // before decoding, as the newer one was.
    for version in [Some("5"), Some("4"), Some("3"), Some("2")] {
        let decoded = send(version, b"not a frame".to_vec()).await.unwrap();
        assert_eq!(decoded.status(), reqwest::StatusCode::BAD_REQUEST, "{version:?}");
    }
    for version in [Some("1"), None] {
        let older = send(version, b"not a frame".to_vec()).await.unwrap();
        assert_eq!(older.status(), reqwest::StatusCode::UPGRADE_REQUIRED, "{version:?}");
        assert!(older.text().await.unwrap().contains("upgrade it first"), "{version:?}");
    }
}
