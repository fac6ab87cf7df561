//! TLS (`--tls-cert`, `--tls-key`, `--tls-ca`, `--peer-mtls`): a cluster that
//! replicates, forwards and answers over HTTPS only, trusted only through its CA,
//! and that takes Raft messages only from holders of a certificate its CA signed.

mod common;

use std::time::Duration;

use common::Cluster;
use concord::dev_ca::DevCa;
use concord::tls::ClientTls;
use reqwest::StatusCode;

fn client_with(ca_pem: Option<&str>, identity_pem: Option<String>) -> reqwest::Client {
    let mut builder = reqwest::Client::builder().use_rustls_tls().tls_built_in_root_certs(false).timeout(Duration::from_secs(5));
    if let Some(ca) = ca_pem {
        builder = builder.add_root_certificate(reqwest::Certificate::from_pem(ca.as_bytes()).unwrap());
    }
    if let Some(identity) = identity_pem {
        builder = builder.identity(reqwest::Identity::from_pem(identity.as_bytes()).unwrap());
    }
    builder.build().unwrap()
}

/// A fresh CA in `dir`, and the `--tls-*` flags of a node certificate it signed.
fn tls_flags(dir: &std::path::Path) -> (DevCa, Vec<String>) {
    let ca = DevCa::generate("test CA").unwrap();
    let files = ca.write_loopback_files(dir).unwrap();
    let path = |p: &std::path::Path| p.to_str().unwrap().to_string();
    let flags = vec!["--tls-cert".into(), path(&files.cert), "--tls-key".into(), path(&files.key), "--tls-ca".into(), path(&files.ca)];
    (ca, flags)
}

/// A cluster of `size` started with `tls` flags and `extra` ones, the harness trusting the CA.
async fn start(size: u64, tls: &[String], extra: &[&str]) -> Cluster {
    let ca_file = std::path::PathBuf::from(&tls[5]);
    let flags: Vec<&str> = tls.iter().map(String::as_str).chain(extra.iter().copied()).collect();
    Cluster::start_with_tls(size, &flags, ClientTls::read_ca(&ca_file).unwrap()).await
}

#[tokio::test]
async fn a_tls_cluster_serves_only_https_trusted_through_its_ca_and_only_certified_peers() {
    let certs = tempfile::tempdir().unwrap();
    let (ca, tls) = tls_flags(certs.path());
    let cluster = start(3, &tls, &["--peer-mtls"]).await;
    let leader = cluster.wait_for_leader(Duration::from_secs(10)).await;
    let followers: Vec<u64> = (1..=3).filter(|id| *id != leader).collect();

    // Replication and forwarding run over TLS: a write through one follower is read
    // back, stale, from the other.
    cluster.client_of(followers[0]).put("over-tls", "1").await.unwrap();
    cluster.wait_caught_up(followers[1], Duration::from_secs(10)).await;
    let read = cluster.client_of(followers[1]).get_with("over-tls", true).await.unwrap().value.unwrap();
    assert_eq!(read.value, b"1");

    let node = cluster.node(leader);
    let https = node.url();
    assert!(https.starts_with("https://"));
    // Plain HTTP gets no answer.
    let plain = reqwest::Client::new().get(format!("http://{}/health", node.addr)).timeout(Duration::from_secs(5)).send().await;
    assert!(plain.is_err(), "plain HTTP was answered: {:?}", plain.map(|r| r.status()));
    // A client that does not trust the CA, or trusts another one, refuses the node.
    let other_ca = DevCa::generate("another CA").unwrap();
    for (what, client) in [("no CA", client_with(None, None)), ("another CA", client_with(Some(&other_ca.certificate_pem()), None))] {
        let answer = client.get(format!("{https}/health")).send().await;
        assert!(answer.is_err(), "a client trusting {what} was served");
    }
    // The control: trusting the cluster's CA, the same request is served.
    let trusting = client_with(Some(&ca.certificate_pem()), None);
    assert_eq!(trusting.get(format!("{https}/health")).send().await.unwrap().status(), StatusCode::OK);

    // Peer RPCs need a client certificate from the cluster's CA.
    let vote = format!("{https}/raft/vote");
    let refused = trusting.post(&vote).body(vec![0u8; 8]).send().await.unwrap();
    assert_eq!(refused.status(), StatusCode::UNAUTHORIZED);
    assert!(refused.text().await.unwrap().contains("client_certificate_required"));
    let (other_cert, other_key) = other_ca.issue(&["127.0.0.1"]).unwrap();
    let foreign = client_with(Some(&ca.certificate_pem()), Some(format!("{other_cert}\n{other_key}")));
    assert!(foreign.post(&vote).body(vec![0u8; 8]).send().await.is_err(), "a certificate from another CA passed the handshake");
    // The control: with the cluster CA's certificate, the RPC gets past TLS to the
    // next check (no cluster id: 403), so the 401 above was the missing certificate.
    let (member_cert, member_key) = ca.issue(&["127.0.0.1"]).unwrap();
    let member = client_with(Some(&ca.certificate_pem()), Some(format!("{member_cert}\n{member_key}")));
    let version = concord::raft::protocol::PROTOCOL_VERSION;
    assert_eq!(member.post(&vote).header("concord-protocol", version).body(vec![0u8; 8]).send().await.unwrap().status(), StatusCode::FORBIDDEN);

    // The leader is still the leader: nothing above reached Raft.
    assert_eq!(cluster.local_status(leader).await.unwrap()["node"]["state"], "leader");
}

#[tokio::test]
async fn unusable_tls_files_stop_the_node_with_a_message() {
    let certs = tempfile::tempdir().unwrap();
    let files = DevCa::generate("test CA").unwrap().write_loopback_files(certs.path()).unwrap();
    let garbage = certs.path().join("garbage.pem");
    std::fs::write(&garbage, "not a certificate").unwrap();
    let data = tempfile::tempdir().unwrap();
    let run = |cert: &std::path::Path, key: &std::path::Path, ca: &std::path::Path| {
        std::process::Command::new(env!("CARGO_BIN_EXE_concord"))
            .args(["serve", "--id", "1", "--listen", "127.0.0.1:0", "--initial-cluster", "1=127.0.0.1:1", "--data-dir"])
            .arg(data.path())
            .arg("--tls-cert")
            .arg(cert)
            .arg("--tls-key")
            .arg(key)
            .arg("--tls-ca")
            .arg(ca)
            .output()
            .unwrap()
    };
    for (what, output, needle) in [
        ("a certificate file of garbage", run(&garbage, &files.key, &files.ca), "garbage.pem"),
        ("a key file of garbage", run(&files.cert, &garbage, &files.ca), "garbage.pem"),
        ("a CA file of garbage", run(&files.cert, &files.key, &garbage), "garbage.pem"),
        ("a key that is not the certificate's", run(&files.cert, &files.ca, &files.ca), "ca.pem"),
        ("a missing file", run(&certs.path().join("absent.pem"), &files.key, &files.ca), "absent.pem"),
    ] {
        assert!(!output.status.success(), "{what}: the node started");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains(needle), "{what}: the message names the file: {stderr}");
    }
    let half = std::process::Command::new(env!("CARGO_BIN_EXE_concord"))
        .args(["serve", "--id", "1", "--initial-cluster", "1=127.0.0.1:1", "--data-dir"])
        .arg(data.path())
        .arg("--tls-cert")
        .arg(&files.cert)
        .output()
        .unwrap();
    assert_eq!(half.status.code(), Some(2), "--tls-cert without --tls-key and --tls-ca is a usage error");
}

#[tokio::test]
async fn a_silent_tls_handshake_holds_its_connection_slot_only_until_the_header_deadline() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let certs = tempfile::tempdir().unwrap();
    let (ca, tls) = tls_flags(certs.path());
    let cluster = start(1, &tls, &["--connections-max", "2", "--header-read-timeout-ms", "5000"]).await;
    let addr = cluster.node(1).addr.clone();

    // Two connections that start a handshake and never finish it take both slots.
    let mut silent = Vec::new();
    for _ in 0..2 {
        let mut stream = tokio::net::TcpStream::connect(&addr).await.unwrap();
        stream.write_all(&[0x16, 0x03, 0x01]).await.unwrap(); // the first bytes of a ClientHello
        silent.push(stream);
    }
    let url = format!("{}/health", cluster.node(1).url());
    let trusting = client_with(Some(&ca.certificate_pem()), None);
    let honest = tokio::spawn(async move { trusting.get(url).timeout(Duration::from_secs(30)).send().await.map(|r| r.status()) });
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(!honest.is_finished(), "a third connection was served while two held the slots (limit 2)");
    // The handshake deadline closes both, and the honest request is served.
    for (i, stream) in silent.iter_mut().enumerate() {
        let mut buffer = [0u8; 64];
        let closed = tokio::time::timeout(Duration::from_secs(15), stream.read(&mut buffer)).await;
        assert!(matches!(closed, Ok(Ok(0)) | Ok(Err(_))), "silent handshake {i} still open 15 s after a 5 s deadline");
    }
    let status = tokio::time::timeout(Duration::from_secs(20), honest).await.expect("served once slots freed").unwrap().unwrap();
    assert_eq!(status, StatusCode::OK);
}
