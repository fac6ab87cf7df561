//! Key-value API on a real 3-node cluster: forwarding, linearizable and stale reads,
//! idempotent retries, and every kind of bad input answered with a JSON 4xx that
//! changes nothing.

mod common;

use std::time::Duration;

use common::{Cluster, expect_refusals, wait_for};
use reqwest::StatusCode;
use serde_json::Value;

async fn json(response: reqwest::Response) -> Value {
    response.json().await.expect("JSON body")
}

fn follower_of(leader: u64) -> u64 {
    if leader == 1 { 2 } else { 1 }
}

#[tokio::test]
async fn writes_through_a_follower_reach_the_leader_and_reads_see_them_everywhere() {
    let cluster = Cluster::start(3, &[]).await;
    let leader = cluster.wait_for_leader(Duration::from_secs(10)).await;
    let follower = follower_of(leader);
    let http = reqwest::Client::new();

    let url = format!("{}/v1/kv/app/config", cluster.node(follower).url());
    let put = http.put(&url).body("v1").send().await.unwrap();
    assert_eq!(put.status(), StatusCode::CREATED);
    // The follower serves it: it sent the typed command to the leader, which applied it.
    assert_eq!(put.headers()["concord-node"].to_str().unwrap(), follower.to_string(), "served by the node asked");
    let body = json(put).await;
    assert_eq!((body["version"].as_u64(), body["created"].as_bool()), (Some(1), Some(true)));
    let revision = body["mod_revision"].as_u64().unwrap();

    // A linearizable read from every node, including followers, sees the write at once.
    for node in &cluster.nodes {
        let got = http.get(format!("{}/v1/kv/app/config", node.url())).send().await.unwrap();
        assert_eq!(got.status(), StatusCode::OK);
        assert_eq!(got.headers()["concord-consistency"], "linearizable");
        let body = json(got).await;
        assert_eq!(body["value"], "v1");
        assert_eq!(body["mod_revision"].as_u64(), Some(revision));
    }

    // Overwrite through the other follower, then read through the first: never the old value.
    let other = (1..=3).find(|id| *id != leader && *id != follower).unwrap();
    for round in 0..20 {
        let value = format!("v{}", round + 2);
        let put = http.put(format!("{}/v1/kv/app/config", cluster.node(other).url())).body(value.clone()).send().await.unwrap();
        assert_eq!(put.status(), StatusCode::OK);
        let got = json(http.get(&url).send().await.unwrap()).await;
        assert_eq!(got["value"], value.as_str(), "linearizable read after acknowledged write");
    }

    // Acknowledged writes were fsynced on the node that served them, and the cluster
    // status says how often its log has synced.
    let status = json(http.get(format!("{}/v1/cluster", cluster.node(leader).url())).send().await.unwrap()).await;
    assert!(status["node"]["log_fsyncs"].as_u64().unwrap() >= 21, "{status}");
    // Asked of a follower, the status is the leader's (sent to it as a typed request,
    // not proxied): built by the leader, with what it has replicated to each member;
    // with `consistency=stale`, the follower's own.
    let through = http.get(format!("{}/v1/cluster", cluster.node(follower).url())).send().await.unwrap();
    assert_eq!(through.headers()["concord-node"].to_str().unwrap(), follower.to_string(), "served by the node asked");
    let through = json(through).await;
    assert_eq!(through["node"]["id"].as_u64(), Some(leader), "{through}");
    assert!(through["members"].as_array().unwrap().iter().all(|m| m["matched_index"].as_u64().is_some()), "{through}");
    let own = json(http.get(format!("{}/v1/cluster?consistency=stale", cluster.node(follower).url())).send().await.unwrap()).await;
    assert_eq!(own["node"]["id"].as_u64(), Some(follower), "{own}");

    // A stale read answers locally and says what it reflects.
    let stale = wait_for("a stale read on a follower to catch up", Duration::from_secs(5), || async {
        let response = http.get(format!("{url}?consistency=stale")).send().await.ok()?;
        let node = response.headers()["concord-node"].to_str().ok()?.to_string();
        let applied: u64 = response.headers()["concord-applied-index"].to_str().ok()?.parse().ok()?;
        let body = json(response).await;
        (body["value"] == "v21").then_some((node, applied, body))
    })
    .await;
    assert_eq!(stale.0, follower.to_string(), "stale reads are served by the node asked");
    assert!(stale.1 > 0 && stale.2["applied_index"].as_u64() == Some(stale.1));

    // Binary values survive, raw and as base64.
    let binary: Vec<u8> = (0..=255u8).collect();
    let put = http.put(format!("{}/v1/kv/bin", cluster.node(follower).url())).body(binary.clone()).send().await.unwrap();
    assert!(put.status().is_success());
    let raw = http.get(format!("{}/v1/kv/bin?raw=true", cluster.node(leader).url())).send().await.unwrap();
    assert_eq!(raw.bytes().await.unwrap().to_vec(), binary);
    let as_json = json(http.get(format!("{}/v1/kv/bin", cluster.node(leader).url())).send().await.unwrap()).await;
    assert_eq!(as_json["encoding"], "base64");
}

#[tokio::test]
async fn compare_and_swap_and_listing_over_http() {
    let cluster = Cluster::start(3, &[]).await;
    let base = cluster.node(1).url();
    let http = reqwest::Client::new();
    let created = http.put(format!("{base}/v1/kv/lock/a")).header("if-none-match", "*").body("x").send().await.unwrap();
    assert_eq!(created.status(), StatusCode::CREATED);
    let etag = created.headers()["etag"].to_str().unwrap().to_string();
    assert!(etag.starts_with('"') && etag.ends_with('"'), "a strong entity tag: {etag}");
    let again = http.put(format!("{base}/v1/kv/lock/a")).header("if-none-match", "*").body("y").send().await.unwrap();
    assert_eq!(again.status(), StatusCode::PRECONDITION_FAILED);
    assert_eq!(json(again).await["error"]["details"]["current"]["mod_revision"].as_u64(), etag.trim_matches('"').parse().ok());
    let stale_cas = http.put(format!("{base}/v1/kv/lock/a")).header("if-match", "999").body("y").send().await.unwrap();
    assert_eq!(stale_cas.status(), StatusCode::PRECONDITION_FAILED);
    let good_cas = http.put(format!("{base}/v1/kv/lock/a")).header("if-match", &etag).body("y").send().await.unwrap();
    assert_eq!(good_cas.status(), StatusCode::OK);
    let bad_delete = http.delete(format!("{base}/v1/kv/lock/a")).header("if-match", &etag).send().await.unwrap();
    assert_eq!(bad_delete.status(), StatusCode::PRECONDITION_FAILED);
    let missing = http.delete(format!("{base}/v1/kv/lock/none")).send().await.unwrap();
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);
    assert_eq!(json(missing).await["error"]["code"], "key_not_found");

    for i in 0..5 {
        http.put(format!("{base}/v1/kv/list/{i}")).body(i.to_string()).send().await.unwrap();
    }
    let page = json(http.get(format!("{base}/v1/kv?prefix=list/&limit=2")).send().await.unwrap()).await;
    let keys: Vec<&str> = page["items"].as_array().unwrap().iter().map(|i| i["key"].as_str().unwrap()).collect();
    assert_eq!(keys, ["list/0", "list/1"]);
    assert_eq!(page["more"], true);
    let next = page["next_after"].as_str().unwrap();
    let rest = json(http.get(format!("{base}/v1/kv?prefix=list/&after={next}&limit=10")).send().await.unwrap()).await;
    assert_eq!(rest["items"].as_array().unwrap().len(), 3);
    assert_eq!(rest["more"], false);
}

#[tokio::test]
async fn a_retried_write_with_the_same_idempotency_key_applies_once() {
    let cluster = Cluster::start(3, &[]).await;
    let http = reqwest::Client::new();
    let send =
        |node: u64, body: &'static str| http.put(format!("{}/v1/kv/counter", cluster.node(node).url())).header("idempotency-key", "retry-42").body(body).send();
    let first = send(1, "1").await.unwrap();
    assert_eq!(first.status(), StatusCode::CREATED);
    assert!(first.headers().get("idempotent-replayed").is_none());
    let first = json(first).await;
    // The retry goes to another node, as a failing-over client's would.
    let retry = send(3, "1").await.unwrap();
    assert_eq!(retry.status(), StatusCode::CREATED, "the first result, replayed");
    assert_eq!(retry.headers()["idempotent-replayed"], "true");
    assert_eq!(json(retry).await, first);
    let current = json(http.get(format!("{}/v1/kv/counter", cluster.node(2).url())).send().await.unwrap()).await;
    assert_eq!(current["version"].as_u64(), Some(1), "applied exactly once");
    // A refusal is replayed as the first answer too, and says so.
    let delete = |node: u64| http.delete(format!("{}/v1/kv/never-there", cluster.node(node).url())).header("idempotency-key", "retry-43").send();
    let first_refusal = delete(1).await.unwrap();
    assert_eq!(first_refusal.status(), StatusCode::NOT_FOUND);
    assert!(first_refusal.headers().get("idempotent-replayed").is_none());
    http.put(format!("{}/v1/kv/never-there", cluster.node(1).url())).body("now it is").send().await.unwrap();
    let replayed_refusal = delete(2).await.unwrap();
    assert_eq!(replayed_refusal.status(), StatusCode::NOT_FOUND, "the first answer, not a fresh delete");
    assert_eq!(replayed_refusal.headers()["idempotent-replayed"], "true");
    // Same key, different request: refused.
    let reused = send(2, "2").await.unwrap();
    assert_eq!(reused.status(), StatusCode::CONFLICT);
    assert_eq!(json(reused).await["error"]["code"], "idempotency_key_reused");
}

/// Puts that arrive together share log entries (`raft::proposer`), yet each is
/// answered for itself: its own revision, its value stored, read back linearizably.
#[tokio::test]
async fn concurrent_puts_share_entries_and_each_gets_its_own_answer() {
    const WRITES: usize = 200;
    let cluster = Cluster::start(3, &[]).await;
    let leader = cluster.wait_for_leader(Duration::from_secs(10)).await;
    let base = cluster.node(leader).url();
    let http = reqwest::Client::new();
    let last_log_index = |status: Value| status["last_log_index"].as_u64().expect("last_log_index");
    let before = last_log_index(json(http.get(format!("{base}/v1/cluster")).send().await.unwrap()).await);

    let puts = (0..WRITES).map(|i| {
        let request = http.put(format!("{base}/v1/kv/together/{i}")).body(format!("value {i}"));
        async move { json(request.send().await.unwrap()).await }
    });
    let answers = futures_util::future::join_all(puts).await;
    let mut revisions: Vec<u64> = answers.iter().map(|a| a["revision"].as_u64().unwrap_or_else(|| panic!("not a put answer: {a}"))).collect();
    revisions.sort_unstable();
    revisions.dedup();
    assert_eq!(revisions.len(), WRITES, "every put has a revision of its own");
    assert_eq!(revisions[WRITES - 1] - revisions[0] + 1, WRITES as u64, "and no revision went to anything else");

    let after = last_log_index(json(http.get(format!("{base}/v1/cluster")).send().await.unwrap()).await);
    assert!(after - before < (WRITES / 2) as u64, "{WRITES} concurrent puts took {} log entries", after - before);
    for i in 0..WRITES {
        let read = json(http.get(format!("{base}/v1/kv/together/{i}")).send().await.unwrap()).await;
        assert_eq!(read["value"], format!("value {i}"), "together/{i}");
    }
}

#[tokio::test]
async fn bad_input_gets_a_json_4xx_and_changes_nothing() {
    let cluster = Cluster::start(3, &["--key-bytes-max", "64", "--value-bytes-max", "1024", "--body-bytes-max", "2048"]).await;
    let base = cluster.node(2).url();
    let http = reqwest::Client::new();
    let put = http.put(format!("{base}/v1/kv/existing")).body("original").send().await.unwrap();
    assert_eq!(put.status(), StatusCode::CREATED);
    let before = json(http.get(format!("{base}/v1/kv?prefix=")).send().await.unwrap()).await;

    let long_key = "k".repeat(65);
    let cases: Vec<(&str, reqwest::RequestBuilder, StatusCode, &str)> = vec![
        ("empty key", http.put(format!("{base}/v1/kv/")).body("v"), StatusCode::BAD_REQUEST, "empty_key"),
        ("empty key delete", http.delete(format!("{base}/v1/kv/")), StatusCode::BAD_REQUEST, "empty_key"),
        ("oversized key", http.put(format!("{base}/v1/kv/{long_key}")).body("v"), StatusCode::PAYLOAD_TOO_LARGE, "key_too_large"),
        ("oversized key read", http.get(format!("{base}/v1/kv/{long_key}")), StatusCode::PAYLOAD_TOO_LARGE, "key_too_large"),
        ("control character in key", http.put(format!("{base}/v1/kv/a%0Ab")).body("v"), StatusCode::BAD_REQUEST, "invalid_key"),
        ("oversized value", http.put(format!("{base}/v1/kv/existing")).body(vec![b'x'; 1025]), StatusCode::PAYLOAD_TOO_LARGE, "value_too_large"),
        ("oversized body", http.put(format!("{base}/v1/kv/existing")).body(vec![b'x'; 4096]), StatusCode::PAYLOAD_TOO_LARGE, "body_too_large"),
        (
            "non-numeric If-Match",
            http.put(format!("{base}/v1/kv/existing")).header("if-match", "abc").body("v"),
            StatusCode::BAD_REQUEST,
            "invalid_precondition",
        ),
        (
            "If-None-Match other than *",
            http.put(format!("{base}/v1/kv/existing")).header("if-none-match", "7").body("v"),
            StatusCode::BAD_REQUEST,
            "invalid_precondition",
        ),
        (
            "both preconditions",
            http.delete(format!("{base}/v1/kv/existing")).header("if-match", "1").header("if-none-match", "*"),
            StatusCode::BAD_REQUEST,
            "invalid_precondition",
        ),
        (
            "empty idempotency key",
            http.put(format!("{base}/v1/kv/existing")).header("idempotency-key", "").body("v"),
            StatusCode::BAD_REQUEST,
            "invalid_idempotency_key",
        ),
        (
            "oversized idempotency key",
            http.put(format!("{base}/v1/kv/existing")).header("idempotency-key", "i".repeat(129)).body("v"),
            StatusCode::BAD_REQUEST,
            "invalid_idempotency_key",
        ),
        ("unknown query parameter", http.put(format!("{base}/v1/kv/existing?ttl=5")).body("v"), StatusCode::BAD_REQUEST, "invalid_query"),
        ("bad consistency", http.get(format!("{base}/v1/kv/existing?consistency=eventual")), StatusCode::BAD_REQUEST, "invalid_query"),
        ("list limit zero", http.get(format!("{base}/v1/kv?limit=0")), StatusCode::BAD_REQUEST, "invalid_limit"),
        ("list limit too big", http.get(format!("{base}/v1/kv?limit=100000")), StatusCode::BAD_REQUEST, "invalid_limit"),
        ("list limit not a number", http.get(format!("{base}/v1/kv?limit=lots")), StatusCode::BAD_REQUEST, "invalid_query"),
        ("unknown route", http.get(format!("{base}/v1/nothing-here")), StatusCode::NOT_FOUND, "route_not_found"),
        ("wrong method", http.post(format!("{base}/v1/kv/existing")).body("v"), StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed"),
        ("missing key", http.get(format!("{base}/v1/kv/absent")), StatusCode::NOT_FOUND, "key_not_found"),
        (
            "bad JSON for a member",
            http.post(format!("{base}/v1/cluster/members")).header("content-type", "application/json").body("{\"id\":"),
            StatusCode::BAD_REQUEST,
            "invalid_json",
        ),
        (
            "wrong JSON types for a member",
            http.post(format!("{base}/v1/cluster/members")).header("content-type", "application/json").body("{\"id\":\"four\",\"addr\":1}"),
            StatusCode::BAD_REQUEST,
            "invalid_json",
        ),
        (
            "member id zero",
            http.post(format!("{base}/v1/cluster/members")).header("content-type", "application/json").body("{\"id\":0,\"addr\":\"127.0.0.1:1\"}"),
            StatusCode::BAD_REQUEST,
            "invalid_id",
        ),
        (
            "bad member address",
            http.post(format!("{base}/v1/cluster/members")).header("content-type", "application/json").body("{\"id\":9,\"addr\":\"\"}"),
            StatusCode::BAD_REQUEST,
            "invalid_addr",
        ),
        (
            "query parameter on a member change",
            http.post(format!("{base}/v1/cluster/members?force=1")).header("content-type", "application/json").body("{\"id\":9,\"addr\":\"127.0.0.1:1\"}"),
            StatusCode::BAD_REQUEST,
            "invalid_query",
        ),
        (
            "lease TTL too short",
            http.post(format!("{base}/v1/leases")).header("content-type", "application/json").body("{\"ttl_ms\":1}"),
            StatusCode::BAD_REQUEST,
            "invalid_ttl",
        ),
        (
            "lease TTL too long",
            http.post(format!("{base}/v1/leases")).header("content-type", "application/json").body("{\"ttl_ms\":999999999999}"),
            StatusCode::BAD_REQUEST,
            "invalid_ttl",
        ),
        (
            "lease TTL of the wrong type",
            http.post(format!("{base}/v1/leases")).header("content-type", "application/json").body("{\"ttl_ms\":\"soon\"}"),
            StatusCode::BAD_REQUEST,
            "invalid_json",
        ),
        (
            "lease body with an unknown field",
            http.post(format!("{base}/v1/leases")).header("content-type", "application/json").body("{\"ttl_ms\":5000,\"owner\":1}"),
            StatusCode::BAD_REQUEST,
            "invalid_json",
        ),
        ("keep-alive of an unknown lease", http.post(format!("{base}/v1/leases/4242/keepalive")), StatusCode::NOT_FOUND, "lease_not_found"),
        ("revoke of an unknown lease", http.delete(format!("{base}/v1/leases/4242")), StatusCode::NOT_FOUND, "lease_not_found"),
        ("read of an unknown lease", http.get(format!("{base}/v1/leases/4242")), StatusCode::NOT_FOUND, "lease_not_found"),
        ("lease id not a number", http.get(format!("{base}/v1/leases/abc")), StatusCode::BAD_REQUEST, "invalid_path"),
        ("put attached to an unknown lease", http.put(format!("{base}/v1/kv/existing?lease=4242")).body("v"), StatusCode::NOT_FOUND, "lease_not_found"),
        ("put with a lease that is not a number", http.put(format!("{base}/v1/kv/existing?lease=x")).body("v"), StatusCode::BAD_REQUEST, "invalid_query"),
        (
            "lock wait too long",
            http.post(format!("{base}/v1/locks/l/acquire")).header("content-type", "application/json").body("{\"lease\":1,\"wait_ms\":99999999}"),
            StatusCode::BAD_REQUEST,
            "invalid_wait",
        ),
        (
            "lock acquire without a lease",
            http.post(format!("{base}/v1/locks/l/acquire")).header("content-type", "application/json").body("{\"wait_ms\":0}"),
            StatusCode::BAD_REQUEST,
            "invalid_json",
        ),
        (
            "lock acquire with an unknown lease",
            http.post(format!("{base}/v1/locks/l/acquire")).header("content-type", "application/json").body("{\"lease\":4242}"),
            StatusCode::NOT_FOUND,
            "lease_not_found",
        ),
        (
            "release of a lock nobody holds",
            http.post(format!("{base}/v1/locks/l/release")).header("content-type", "application/json").body("{\"token\":7}"),
            StatusCode::CONFLICT,
            "stale_token",
        ),
        ("check of a token that holds nothing", http.get(format!("{base}/v1/locks/l/check?token=7")), StatusCode::CONFLICT, "stale_token"),
        ("check without a token", http.get(format!("{base}/v1/locks/l/check")), StatusCode::BAD_REQUEST, "invalid_query"),
        ("malformed fence", http.put(format!("{base}/v1/kv/existing")).header("concord-fence", "no-token").body("v"), StatusCode::BAD_REQUEST, "invalid_fence"),
        (
            "fence with a token that is not a number",
            http.put(format!("{base}/v1/kv/existing")).header("concord-fence", "l:abc").body("v"),
            StatusCode::BAD_REQUEST,
            "invalid_fence",
        ),
        (
            "fenced write by a token that holds nothing",
            http.put(format!("{base}/v1/kv/existing")).header("concord-fence", "l:7").body("v"),
            StatusCode::CONFLICT,
            "fence_rejected",
        ),
        (
            "ring member without an address",
            http.put(format!("{base}/v1/rings/r/members/m")).header("content-type", "application/json").body("{\"weight\":1}"),
            StatusCode::BAD_REQUEST,
            "invalid_json",
        ),
        (
            "ring member with weight zero",
            http.put(format!("{base}/v1/rings/r/members/m")).header("content-type", "application/json").body("{\"address\":\"a:1\",\"weight\":0}"),
            StatusCode::BAD_REQUEST,
            "invalid_weight",
        ),
        (
            "ring member with an empty address",
            http.put(format!("{base}/v1/rings/r/members/m")).header("content-type", "application/json").body("{\"address\":\"\"}"),
            StatusCode::BAD_REQUEST,
            "invalid_address",
        ),
        (
            "ring member on an unknown lease",
            http.put(format!("{base}/v1/rings/r/members/m")).header("content-type", "application/json").body("{\"address\":\"a:1\",\"lease\":4242}"),
            StatusCode::NOT_FOUND,
            "lease_not_found",
        ),
        ("leave of an unknown ring member", http.delete(format!("{base}/v1/rings/r/members/nobody")), StatusCode::NOT_FOUND, "member_not_found"),
        ("lookup without a key", http.get(format!("{base}/v1/rings/r/lookup")), StatusCode::BAD_REQUEST, "invalid_query"),
        ("lookup with zero replicas", http.get(format!("{base}/v1/rings/r/lookup?key=k&replicas=0")), StatusCode::BAD_REQUEST, "invalid_replicas"),
        ("blocking read waiting too long", http.get(format!("{base}/v1/kv/existing?index=1&wait_ms=99999999")), StatusCode::BAD_REQUEST, "invalid_wait"),
        ("blocking read with a bad index", http.get(format!("{base}/v1/kv/existing?index=soon")), StatusCode::BAD_REQUEST, "invalid_query"),
        ("unknown member", http.delete(format!("{base}/v1/cluster/members/77")), StatusCode::NOT_FOUND, "member_not_found"),
        ("member id not a number", http.delete(format!("{base}/v1/cluster/members/seven")), StatusCode::BAD_REQUEST, "invalid_path"),
        ("a lock name with an unencoded /", http.post(format!("{base}/v1/locks/jobs/leader/acquire")), StatusCode::NOT_FOUND, "route_not_found"),
        (
            "a JSON body declared as text",
            http.post(format!("{base}/v1/leases")).header("content-type", "text/plain").body("{\"ttl_ms\":5000}"),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
        ),
        (
            "a form sent by a browser",
            http.post(format!("{base}/v1/leases"))
                .header("content-type", "application/x-www-form-urlencoded")
                .header("origin", "http://evil.example")
                .body("{\"ttl_ms\":5000}"),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
        ),
        ("a prefix delete without a prefix", http.delete(format!("{base}/v1/kv")), StatusCode::BAD_REQUEST, "invalid_query"),
        ("a fenced prefix delete", http.delete(format!("{base}/v1/kv?prefix=")).header("concord-fence", "l:7"), StatusCode::BAD_REQUEST, "not_conditional"),
        ("a conditional prefix delete", http.delete(format!("{base}/v1/kv?prefix=")).header("if-match", "1"), StatusCode::BAD_REQUEST, "not_conditional"),
        ("a keyed prefix delete", http.delete(format!("{base}/v1/kv?prefix=")).header("idempotency-key", "k"), StatusCode::BAD_REQUEST, "not_idempotent"),
    ];
    expect_refusals(cases).await;
    // As `curl -d` sends it: a form type, no Origin. Read as JSON.
    let granted =
        http.post(format!("{base}/v1/leases")).header("content-type", "application/x-www-form-urlencoded").body("{\"ttl_ms\":5000}").send().await.unwrap();
    assert_eq!(granted.status(), StatusCode::CREATED);
    let hint = http.post(format!("{base}/v1/locks/jobs/leader/acquire")).send().await.unwrap().text().await.unwrap();
    assert!(hint.contains("/v1/locks/jobs%2Fleader"), "{hint}");
    let after = json(http.get(format!("{base}/v1/kv?prefix=")).send().await.unwrap()).await;
    assert_eq!(after["revision"], before["revision"], "no bad request changed the revision");
    assert_eq!(after["items"], before["items"]);
    let status = json(http.get(format!("{base}/v1/cluster")).send().await.unwrap()).await;
    assert_eq!(status["members"].as_array().unwrap().len(), 3, "membership unchanged");
}

#[tokio::test]
async fn the_cli_talks_to_the_cluster() {
    let cluster = Cluster::start(3, &[]).await;
    let endpoints = cluster.nodes.iter().map(|n| n.addr.clone()).collect::<Vec<_>>().join(",");
    let concord = |args: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_concord")).args(args).env("CONCORD_ENDPOINTS", &endpoints).output().expect("run concord")
    };
    let put = concord(&["kv", "put", "cli/key", "hello world"]);
    assert!(put.status.success(), "{}", String::from_utf8_lossy(&put.stderr));
    assert!(String::from_utf8_lossy(&put.stdout).contains("created"));
    let get = concord(&["kv", "get", "cli/key"]);
    assert_eq!(String::from_utf8_lossy(&get.stdout), "hello world\n");
    let cas = concord(&["kv", "put", "cli/key", "again", "--if-match", "999"]);
    assert_eq!(cas.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&cas.stderr).contains("precondition_failed"));
    let list = concord(&["kv", "list", "cli/", "--json"]);
    let listed: Value = serde_json::from_slice(&list.stdout).expect("list --json is JSON");
    assert_eq!(listed["items"][0]["value"], "hello world");
    let del = concord(&["kv", "del", "cli/key"]);
    assert!(del.status.success());
    let gone = concord(&["kv", "get", "cli/key"]);
    assert_eq!(gone.status.code(), Some(1));
    // The load generator checks its own writes.
    let bench = concord(&["bench", "--ops", "200", "--connections", "4", "--json"]);
    assert!(bench.status.success(), "{}", String::from_utf8_lossy(&bench.stderr));
    let bench: Value = serde_json::from_slice(&bench.stdout).expect("bench --json is JSON");
    assert_eq!((bench["ok"].as_u64(), bench["verified"]["missing_or_wrong"].as_u64()), (Some(200), Some(0)), "{bench}");
    assert!(bench["verified"]["checked"].as_u64() > Some(100));
    let status = concord(&["cluster", "status", "--json"]);
    let status: Value = serde_json::from_slice(&status.stdout).expect("status --json is JSON");
    assert_eq!(status["members"].as_array().map(Vec::len), Some(3));
}

#[tokio::test]
async fn flags_go_with_the_value_a_put_without_them_clears_them() {
    let cluster = Cluster::start(3, &[]).await;
    let leader = cluster.wait_for_leader(Duration::from_secs(10)).await;
    let http = reqwest::Client::new();
    let url = format!("{}/v1/kv/config/feature", cluster.node(follower_of(leader)).url());
    let flags = |body: &Value| body["flags"].as_u64();
    assert_eq!(http.put(format!("{url}?flags=18446744073709551615")).body("on").send().await.unwrap().status(), StatusCode::CREATED);
    assert_eq!(flags(&json(http.get(&url).send().await.unwrap()).await), Some(u64::MAX));
    let raw = http.get(format!("{url}?raw=true")).send().await.unwrap();
    assert_eq!(raw.headers()["concord-flags"], "18446744073709551615");
    assert_eq!(http.put(&url).body("off").send().await.unwrap().status(), StatusCode::OK);
    assert_eq!(flags(&json(http.get(&url).send().await.unwrap()).await), Some(0), "a put without flags sets 0, as Consul's does");
    let raw = http.get(format!("{url}?raw=true")).send().await.unwrap();
    assert!(raw.headers().get("concord-flags").is_none());
    let bad = http.put(format!("{url}?flags=-1")).body("x").send().await.unwrap();
    assert_eq!(bad.status(), StatusCode::BAD_REQUEST);
    assert_eq!(json(http.get(&url).send().await.unwrap()).await["value"], "off", "nothing changed");
}
