//! Transactions (`POST /v1/txn`) on a real 3-node cluster: the two patterns users
//! come for (exactly-once work, a fenced multi-key write), through a follower, with
//! an `Idempotency-Key`, and every malformed transaction refused with nothing changed.

mod common;

use std::time::Duration;

use common::{Cluster, expect_refusals};
use concord::client::ReceiveOptions;
use concord::wire::txn::{Compare, Op, OpResult, TxnRequest};
use reqwest::StatusCode;
use serde_json::{Value, json};

fn key_absent(key: &str) -> Compare {
    Compare { key: Some(key.into()), absent: Some(true), ..Compare::default() }
}

fn put(key: &str, value: &str) -> Op {
    Op::Put { key: key.into(), value: value.into(), lease: None }
}

#[tokio::test]
async fn transactions_do_exactly_once_work_and_fenced_writes_through_any_node() {
    let cluster = Cluster::start(3, &[]).await;
    let leader = cluster.wait_for_leader(Duration::from_secs(10)).await;
    let follower = (1..=3).find(|id| *id != leader).unwrap();
    // Through a follower: it forwards the transaction to the leader.
    let client = cluster.client_of(follower);

    // Exactly-once work: ack, write the result and enqueue the follow-up together.
    client.enqueue("work", "job 1", 0).await.unwrap();
    let message = client.receive("work", ReceiveOptions { max: 1, visibility_ms: Some(30_000), wait_ms: 0 }).await.unwrap().remove(0);
    let work = TxnRequest {
        compare: vec![Compare { queue: Some("work".into()), receipt: Some(message.receipt.clone()), ..Compare::default() }, key_absent("result/1")],
        success: vec![
            Op::Ack { queue: "work".into(), receipt: message.receipt.clone() },
            put("result/1", "42"),
            Op::Enqueue { queue: "report".into(), value: "result 1 is 42".into(), delay_ms: 0 },
            Op::Get { key: "result/1".into() },
        ],
        failure: vec![Op::Get { key: "result/1".into() }],
    };
    let done = client.txn(&work, None).await.unwrap();
    assert!(done.succeeded, "{done:?}");
    assert!(matches!(&done.results[1], OpResult::Put { created: true, mod_revision, .. } if *mod_revision == done.revision));
    assert!(matches!(&done.results[3], OpResult::Get { item: Some(item), .. } if item.value.as_deref() == Some("42")), "reads see the writes before them");
    // The same work again (a redelivery would look like this): the failure branch.
    let again = client.txn(&work, None).await.unwrap();
    assert_eq!((again.succeeded, again.failed_condition), (false, Some(0)));
    assert_eq!(client.get("result/1").await.unwrap().value.unwrap().version, 1, "the result was written once");
    let follow_up = client.receive("report", ReceiveOptions { max: 10, visibility_ms: None, wait_ms: 0 }).await.unwrap();
    assert_eq!(follow_up.len(), 1);
    assert!(client.receive("work", ReceiveOptions { max: 10, visibility_ms: None, wait_ms: 0 }).await.unwrap().is_empty(), "acked");

    // A retry with the same Idempotency-Key is answered from the first, not applied again.
    let keyed = TxnRequest { success: vec![Op::Enqueue { queue: "once".into(), value: "x".into(), delay_ms: 0 }], ..TxnRequest::default() };
    let first = client.txn(&keyed, Some("txn-once")).await.unwrap();
    assert_eq!(client.txn(&keyed, Some("txn-once")).await.unwrap(), first);
    assert_eq!(client.receive("once", ReceiveOptions { max: 10, visibility_ms: None, wait_ms: 0 }).await.unwrap().len(), 1);

    // A fenced multi-key write: applies only while the token holds the lock.
    let lease = client.lease_grant(30_000).await.unwrap().id;
    let token = client.lock_acquire("ledger", lease, 0).await.unwrap().token;
    let fenced = |token| TxnRequest {
        compare: vec![Compare { lock: Some("ledger".into()), token: Some(token), ..Compare::default() }],
        success: vec![put("ledger/a", "1"), put("ledger/b", "2")],
        failure: Vec::new(),
    };
    assert!(client.txn(&fenced(token), None).await.unwrap().succeeded);
    client.lock_release("ledger", token).await.unwrap();
    let late = client.txn(&fenced(token), None).await.unwrap();
    assert!(!late.succeeded && late.results.is_empty(), "{late:?}");
}

#[tokio::test]
async fn malformed_transactions_get_a_clear_4xx_and_change_nothing() {
    let cluster = Cluster::start(3, &[]).await;
    let leader = cluster.wait_for_leader(Duration::from_secs(10)).await;
    let (http, base) = (cluster.http(), cluster.node(leader).url());
    let client = cluster.client();
    client.put("a", "1").await.unwrap();
    let before = client.list("", None, None).await.unwrap();
    let post = |body: Value| http.post(format!("{base}/v1/txn")).json(&body);
    let many: Vec<Value> = (0..129).map(|i| json!({ "put": { "key": format!("k{i}"), "value": "v" } })).collect();
    expect_refusals(vec![
        ("an unknown operation", post(json!({ "success": [{ "frobnicate": { "key": "a" } }] })), StatusCode::BAD_REQUEST, "invalid_json"),
        ("too many operations", post(json!({ "success": many })), StatusCode::BAD_REQUEST, "invalid_txn"),
        (
            "two releases of one lock",
            post(json!({ "success": [{ "release": { "lock": "l", "token": 1 } }, { "release": { "lock": "l", "token": 1 } }] })),
            StatusCode::BAD_REQUEST,
            "invalid_txn",
        ),
        (
            "a condition on a missing queue",
            post(json!({ "compare": [{ "queue": "nope", "receipt": "1.1" }], "success": [{ "put": { "key": "b", "value": "1" } }] })),
            StatusCode::NOT_FOUND,
            "queue_not_found",
        ),
        (
            "a condition with two tests",
            post(json!({ "compare": [{ "key": "a", "absent": true, "version": 1 }] })),
            StatusCode::BAD_REQUEST,
            "invalid_condition",
        ),
        ("a condition naming nothing", post(json!({ "compare": [{ "token": 3 }] })), StatusCode::BAD_REQUEST, "invalid_condition"),
        ("a bad receipt", post(json!({ "success": [{ "ack": { "queue": "q", "receipt": "x" } }] })), StatusCode::BAD_REQUEST, "invalid_receipt"),
        ("an empty key", post(json!({ "success": [{ "get": { "key": "" } }] })), StatusCode::BAD_REQUEST, "empty_key"),
        (
            "an operation refused halfway",
            post(json!({ "success": [{ "put": { "key": "b", "value": "1" } }, { "delete": { "key": "missing" } }] })),
            StatusCode::NOT_FOUND,
            "key_not_found",
        ),
    ])
    .await;
    // The refusal says where it was met.
    let halfway = post(json!({ "success": [{ "put": { "key": "b", "value": "1" } }, { "revoke": { "lease": 999 } }] })).send().await.unwrap();
    let body: Value = halfway.json().await.unwrap();
    assert_eq!((body["error"]["code"].as_str(), body["error"]["details"]["op"].as_u64()), (Some("lease_not_found"), Some(1)), "{body}");
    assert!(body["error"]["message"].as_str().unwrap().starts_with("success[1] was refused"), "{body}");
    let after = client.list("", None, None).await.unwrap();
    assert_eq!(after.items, before.items, "nothing changed");
    assert!(client.receive("q", ReceiveOptions { max: 1, visibility_ms: None, wait_ms: 0 }).await.unwrap().is_empty());
}
