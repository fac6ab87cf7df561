//! Clients that try to exhaust a node through its HTTP listener: too many connections,
//! headers sent slowly or never, oversized headers, bodies that never finish. Each is
//! bounded (`src/server.rs`), and the node keeps serving everyone else.

mod common;

use std::time::{Duration, Instant};

use common::Cluster;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Reads until the server closes the connection (or `timeout` passes); returns what
/// it sent and whether it closed.
async fn read_until_closed(stream: &mut TcpStream, timeout: Duration) -> (String, bool) {
    let deadline = Instant::now() + timeout;
    let mut received = Vec::new();
    let mut buffer = [0u8; 4096];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, stream.read(&mut buffer)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return (String::from_utf8_lossy(&received).into_owned(), true),
            Ok(Ok(n)) => received.extend_from_slice(&buffer[..n]),
            Err(_) => return (String::from_utf8_lossy(&received).into_owned(), false),
        }
    }
}

#[tokio::test]
async fn slow_header_connections_are_closed_and_the_connection_limit_holds() {
    let cluster = Cluster::start(1, &["--connections-max", "4", "--header-read-timeout-ms", "5000"]).await;
    cluster.wait_for_leader(Duration::from_secs(10)).await;
    let addr = cluster.node(1).addr.clone();

    // Four slow lorises: each sends half a request head and then nothing.
    let mut lorises = Vec::new();
    for _ in 0..4 {
        let mut stream = TcpStream::connect(&addr).await.unwrap();
        stream.write_all(b"GET /health HTTP/1.1\r\nHost: concord\r\n").await.unwrap();
        lorises.push(stream);
    }
    // Every connection slot is taken: an honest request waits for one.
    let url = format!("{}/health", cluster.node(1).url());
    let honest = tokio::spawn(async move {
        let client = reqwest::Client::new();
        client.get(url).timeout(Duration::from_secs(30)).send().await.map(|r| r.status())
    });
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(!honest.is_finished(), "a fifth connection was served while four were open (limit 4)");

    // The header deadline closes every loris without an answer...
    for (i, loris) in lorises.iter_mut().enumerate() {
        let (received, closed) = read_until_closed(loris, Duration::from_secs(15)).await;
        assert!(closed, "loris {i} still open 15 s after a 5 s header deadline");
        assert!(!received.contains("200 OK"), "loris {i} was answered: {received}");
    }
    // ...which frees the slots for the honest request.
    let status = tokio::time::timeout(Duration::from_secs(20), honest).await.expect("served once slots freed").unwrap().unwrap();
    assert_eq!(status, reqwest::StatusCode::OK);

    // An idle keep-alive connection is closed after the same deadline.
    let mut idle = TcpStream::connect(&addr).await.unwrap();
    idle.write_all(b"GET /health HTTP/1.1\r\nHost: concord\r\n\r\n").await.unwrap();
    let (received, closed) = read_until_closed(&mut idle, Duration::from_secs(15)).await;
    assert!(received.starts_with("HTTP/1.1 200"), "{received}");
    assert!(closed, "an idle keep-alive connection stays open past the header deadline");
}

#[tokio::test]
async fn oversized_headers_and_slow_bodies_are_refused_and_change_nothing() {
    let cluster = Cluster::start(1, &["--header-bytes-max", "8192", "--body-read-timeout-ms", "1000"]).await;
    cluster.wait_for_leader(Duration::from_secs(10)).await;
    let addr = cluster.node(1).addr.clone();
    let http = reqwest::Client::new();
    let url = |path: &str| format!("{}{path}", cluster.node(1).url());

    let big = http.put(url("/v1/kv/big-header")).header("x-padding", "p".repeat(16 << 10)).body("v").send().await.unwrap();
    assert_eq!(big.status(), reqwest::StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE);

    // A body that promises 100 bytes and sends 10.
    let mut slow = TcpStream::connect(&addr).await.unwrap();
    slow.write_all(b"PUT /v1/kv/slow-body HTTP/1.1\r\nHost: concord\r\nContent-Length: 100\r\n\r\n0123456789").await.unwrap();
    let (received, closed) = read_until_closed(&mut slow, Duration::from_secs(10)).await;
    assert!(received.starts_with("HTTP/1.1 408"), "{received}");
    assert!(received.contains("\"body_timeout\"") && received.contains("concord-node"), "{received}");
    assert!(closed, "the connection of a timed-out body is closed");

    // The same to a peer route, with the right cluster id: refused before Raft.
    let status = cluster.local_status(1).await.unwrap();
    let cluster_id = status["cluster_id"].as_str().unwrap().to_string();
    let mut slow_peer = TcpStream::connect(&addr).await.unwrap();
    let head = format!(
        "POST /raft/append HTTP/1.1\r\nHost: concord\r\nConcord-Cluster: {cluster_id}\r\nConcord-Protocol: {}\r\nContent-Length: 1000\r\n\r\nxx",
        concord::raft::protocol::PROTOCOL_VERSION
    );
    slow_peer.write_all(head.as_bytes()).await.unwrap();
    let (received, _) = read_until_closed(&mut slow_peer, Duration::from_secs(10)).await;
    assert!(received.starts_with("HTTP/1.1 408"), "{received}");

    for key in ["big-header", "slow-body"] {
        let answer = http.get(url(&format!("/v1/kv/{key}"))).send().await.unwrap();
        assert_eq!(answer.status(), reqwest::StatusCode::NOT_FOUND, "{key} was written by a refused request");
    }
    // Ordinary requests still work, bodies included.
    let put = http.put(url("/v1/kv/fine")).body("yes").send().await.unwrap();
    assert_eq!(put.status(), reqwest::StatusCode::CREATED);
}

/// A client that sends from `ip` (any 127.x.y.z address reaches the loopback nodes).
fn client_from(ip: &str) -> reqwest::Client {
    reqwest::Client::builder().local_address(ip.parse::<std::net::IpAddr>().unwrap()).timeout(Duration::from_secs(30)).build().unwrap()
}

#[tokio::test]
async fn one_client_address_cannot_hold_every_long_poll_or_stream() {
    let cluster = Cluster::start(3, &["--requests-per-client-max", "2", "--streams-per-client-max", "1"]).await;
    let leader = cluster.wait_for_leader(Duration::from_secs(10)).await;
    let follower = (1..=3).find(|id| *id != leader).unwrap();
    let via = cluster.node(follower).url();
    let revision = cluster.client().put("polled", "0").await.unwrap().value.revision;
    let (greedy, other) = (client_from("127.0.0.2"), client_from("127.0.0.3"));

    // Each client parks two long polls on the follower, which serves them itself and
    // counts them against each client, not against one address.
    let poll = format!("{via}/v1/kv/polled?index={revision}&wait_ms=20000");
    let mut polls = Vec::new();
    for client in [&greedy, &greedy, &other, &other] {
        let request = client.get(&poll);
        polls.push(tokio::spawn(async move { request.send().await.map(|r| r.status()) }));
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(polls.iter().all(|p| !p.is_finished()), "every long poll is waiting: {} of 4 ended", polls.iter().filter(|p| p.is_finished()).count());

    // A third request from the greedy address is refused; the node serves the others.
    let refused = greedy.put(format!("{via}/v1/kv/greedy")).body("x").send().await.unwrap();
    assert_eq!(refused.status(), reqwest::StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(refused.json::<serde_json::Value>().await.unwrap()["error"]["code"], "client_limit");
    let third = client_from("127.0.0.4");
    assert_eq!(third.get(format!("{via}/v1/kv/polled")).send().await.unwrap().status(), reqwest::StatusCode::OK);
    assert!(cluster.client().get("greedy").await.unwrap().value.is_none(), "the refused put wrote nothing");

    // A write ends the long polls, which gives the slots back.
    cluster.client().put("polled", "1").await.unwrap();
    for poll in polls {
        assert_eq!(poll.await.unwrap().unwrap(), reqwest::StatusCode::OK);
    }
    assert_eq!(greedy.put(format!("{via}/v1/kv/greedy")).body("x").send().await.unwrap().status(), reqwest::StatusCode::CREATED);

    // Streams: one per address here.
    let watch = format!("{via}/v1/watch?prefix=w/");
    let open = greedy.get(&watch).send().await.unwrap();
    assert_eq!(open.status(), reqwest::StatusCode::OK);
    let second = greedy.get(&watch).send().await.unwrap();
    assert_eq!(second.status(), reqwest::StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(other.get(&watch).send().await.unwrap().status(), reqwest::StatusCode::OK, "another address may still watch");
    drop(open);
}
