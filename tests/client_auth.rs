//! Client tokens (`/v1/auth`): once a cluster requires them, every request but
//! `/health` and `/ready` needs one whose role and prefixes cover it, on any node;
//! refused requests change nothing; tokens and the requirement are replicated state
//! (they survive kill -9 and reach a node that catches up by snapshot); a stream ends
//! when the token that opened it is revoked.

mod common;

use concord::state::kv::KvCommand;
use std::time::Duration;

use common::sse::SseReader;
use common::{Cluster, expect_refusals, wait_for};
use reqwest::StatusCode;
use serde_json::{Value, json};

/// Makes a token through `base` (sending `admin`, if given) and returns its `<id>.<secret>`.
async fn create_token(http: &reqwest::Client, base: &str, admin: Option<&str>, body: Value) -> String {
    let mut request = http.post(format!("{base}/v1/auth/tokens")).json(&body);
    if let Some(admin) = admin {
        request = request.bearer_auth(admin);
    }
    let answer = request.send().await.unwrap();
    assert_eq!(answer.status(), StatusCode::CREATED, "create {body}");
    let created: Value = answer.json().await.unwrap();
    assert_eq!(created["role"], body["role"]);
    created["token"].as_str().unwrap().to_string()
}

/// The status of a stale read of `k/199` on `node` (the node's own state).
async fn stale_read(http: &reqwest::Client, node: String, token: Option<&str>) -> StatusCode {
    let mut request = http.get(format!("{node}/v1/kv/k/199?consistency=stale"));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    request.send().await.unwrap().status()
}

async fn token_count(http: &reqwest::Client, base: &str, admin: &str) -> u64 {
    let status: Value = http.get(format!("{base}/v1/auth")).bearer_auth(admin).send().await.unwrap().json().await.unwrap();
    status["tokens"].as_u64().unwrap()
}

/// A 3-node cluster, a follower's id, the leader's URL and the follower's.
async fn three_nodes() -> (Cluster, u64, String, String) {
    let cluster = Cluster::start(3, &[]).await;
    let leader = cluster.wait_for_leader(Duration::from_secs(10)).await;
    let follower = (1..=3).find(|id| *id != leader).unwrap();
    let (base, other) = (cluster.node(leader).url(), cluster.node(follower).url());
    (cluster, follower, base, other)
}

#[tokio::test]
async fn tokens_roles_and_prefixes_are_enforced_on_every_node_and_refusals_change_nothing() {
    let (cluster, follower, base, other) = three_nodes().await;
    let http = reqwest::Client::new();

    // Off by default: no token needed.
    assert_eq!(http.put(format!("{base}/v1/kv/open")).body("1").send().await.unwrap().status(), StatusCode::CREATED);
    let admin = create_token(&http, &other, None, json!({ "name": "ops", "role": "admin" })).await;
    let reader = create_token(&http, &base, None, json!({ "name": "dash", "role": "read" })).await;
    let app = create_token(&http, &base, None, json!({ "name": "app", "role": "write", "prefixes": ["app/"] })).await;
    assert_eq!(token_count(&http, &base, &admin).await, 3);

    // Bad requests to make one: refused, and no token made.
    let create = || http.post(format!("{base}/v1/auth/tokens"));
    let too_many: Vec<String> = (0..17).map(|i| format!("p{i}/")).collect();
    expect_refusals(vec![
        ("unknown role", create().json(&json!({ "role": "root" })), StatusCode::BAD_REQUEST, "invalid_json"),
        ("role missing", create().json(&json!({ "name": "x" })), StatusCode::BAD_REQUEST, "invalid_json"),
        ("role of the wrong type", create().json(&json!({ "role": 2 })), StatusCode::BAD_REQUEST, "invalid_json"),
        ("unknown field", create().json(&json!({ "role": "read", "secret": "mine" })), StatusCode::BAD_REQUEST, "invalid_json"),
        ("not JSON", create().header("content-type", "application/json").body("{role"), StatusCode::BAD_REQUEST, "invalid_json"),
        ("an admin confined to prefixes", create().json(&json!({ "role": "admin", "prefixes": ["a/"] })), StatusCode::BAD_REQUEST, "invalid_token_settings"),
        ("an empty prefix", create().json(&json!({ "role": "read", "prefixes": [""] })), StatusCode::BAD_REQUEST, "invalid_token_settings"),
        ("17 prefixes", create().json(&json!({ "role": "read", "prefixes": too_many })), StatusCode::BAD_REQUEST, "invalid_token_settings"),
        ("a 129-byte name", create().json(&json!({ "role": "read", "name": "n".repeat(129) })), StatusCode::BAD_REQUEST, "invalid_token_settings"),
        ("an Idempotency-Key", create().header("idempotency-key", "k1").json(&json!({ "role": "read" })), StatusCode::BAD_REQUEST, "not_idempotent"),
    ])
    .await;
    assert_eq!(token_count(&http, &base, &admin).await, 3, "a refused create made a token");

    // Turning it on takes an admin token, even while it is off.
    let enable = || http.post(format!("{other}/v1/auth/enable"));
    expect_refusals(vec![
        ("no token", enable(), StatusCode::UNAUTHORIZED, "token_required"),
        ("a read token", enable().bearer_auth(&reader), StatusCode::FORBIDDEN, "not_admin_token"),
        ("a wrong secret", enable().bearer_auth(format!("{}.wrong", admin.split('.').next().unwrap())), StatusCode::UNAUTHORIZED, "invalid_token"),
    ])
    .await;
    assert_eq!(http.put(format!("{base}/v1/kv/still-open")).body("1").send().await.unwrap().status(), StatusCode::CREATED, "still off");
    let enabled = enable().bearer_auth(&admin).send().await.unwrap();
    assert_eq!(enabled.status(), StatusCode::OK);
    assert_eq!(enabled.json::<Value>().await.unwrap()["enabled"], true);

    // Now every node refuses a request without a valid token: forwarded writes and
    // reads, stale reads and streams served by the follower itself.
    let (admin_id, _) = admin.split_once('.').unwrap();
    for node in [&base, &other] {
        let unauthenticated = [
            ("a put", http.put(format!("{node}/v1/kv/app/x")).body("2"), "token_required"),
            ("a read", http.get(format!("{node}/v1/kv/open")), "token_required"),
            ("a stale read", http.get(format!("{node}/v1/kv/open?consistency=stale")), "token_required"),
            ("a watch", http.get(format!("{node}/v1/watch?prefix=app/")), "token_required"),
            ("cluster status", http.get(format!("{node}/v1/cluster?consistency=stale")), "token_required"),
            ("a wrong secret", http.get(format!("{node}/v1/kv/open")).bearer_auth(format!("{admin_id}.AAAA")), "invalid_token"),
            ("an unknown token id", http.get(format!("{node}/v1/kv/open")).bearer_auth("999999.AAAA"), "invalid_token"),
            ("a malformed token", http.get(format!("{node}/v1/kv/open")).bearer_auth("not-a-token"), "invalid_token"),
            ("another scheme", http.get(format!("{node}/v1/kv/open")).header("authorization", format!("Basic {admin}")), "invalid_token"),
        ];
        for (what, request, code) in unauthenticated {
            let answer = request.send().await.unwrap();
            assert_eq!(answer.status(), StatusCode::UNAUTHORIZED, "{what} on {node}");
            assert!(answer.headers().get("www-authenticate").is_some_and(|v| v.to_str().unwrap().starts_with("Bearer")), "{what}: says how");
            let body: Value = answer.json().await.unwrap();
            assert_eq!(body["error"]["code"], code, "{what} on {node}: {body}");
        }
        for open in ["/health", "/ready"] {
            assert!(http.get(format!("{node}{open}")).send().await.unwrap().status().is_success(), "{open} stays open");
        }
    }

    // Roles: read reads, write writes (inside its prefixes), admin administers.
    let put = |node: &str, key: &str, token: &str| http.put(format!("{node}/v1/kv/{key}")).bearer_auth(token).body("v");
    expect_refusals(vec![
        ("a read token writing", put(&other, "open", &reader), StatusCode::FORBIDDEN, "forbidden"),
        ("a read token deleting", http.delete(format!("{base}/v1/kv/open")).bearer_auth(&reader), StatusCode::FORBIDDEN, "forbidden"),
        ("a write token outside its prefix", put(&other, "open", &app), StatusCode::FORBIDDEN, "forbidden"),
        ("a write token listing everything", http.get(format!("{base}/v1/kv")).bearer_auth(&app), StatusCode::FORBIDDEN, "forbidden"),
        ("a write token watching everything", http.get(format!("{other}/v1/watch")).bearer_auth(&app), StatusCode::FORBIDDEN, "forbidden"),
        ("a write token listing queues", http.get(format!("{base}/v1/queues")).bearer_auth(&app), StatusCode::FORBIDDEN, "forbidden"),
        (
            "a dead-letter queue outside the prefix",
            http.put(format!("{base}/v1/queues/app%2Fjobs")).bearer_auth(&app).json(&json!({ "max_deliveries": 3, "dead_letter_queue": "billing/dlq" })),
            StatusCode::FORBIDDEN,
            "forbidden",
        ),
        ("a write token taking a snapshot", http.post(format!("{base}/v1/cluster/snapshot")).bearer_auth(&app), StatusCode::FORBIDDEN, "forbidden"),
        (
            "a write token removing a member",
            http.delete(format!("{other}/v1/cluster/members/{follower}")).bearer_auth(&app),
            StatusCode::FORBIDDEN,
            "forbidden",
        ),
        ("a read token listing tokens", http.get(format!("{base}/v1/auth/tokens")).bearer_auth(&reader), StatusCode::FORBIDDEN, "forbidden"),
        ("a write token making a token", create().bearer_auth(&app).json(&json!({ "role": "admin" })), StatusCode::FORBIDDEN, "forbidden"),
    ])
    .await;
    // What they were refused did not happen.
    let open: Value = http.get(format!("{base}/v1/kv/open")).bearer_auth(&reader).send().await.unwrap().json().await.unwrap();
    assert_eq!((open["value"].as_str(), open["version"].as_u64()), (Some("1"), Some(1)), "{open}");
    let jobs = http.get(format!("{base}/v1/queues/app%2Fjobs")).bearer_auth(&app).send().await.unwrap();
    assert_eq!(jobs.status(), StatusCode::NOT_FOUND, "the refused queue was not created");
    assert_eq!(token_count(&http, &base, &admin).await, 3);

    assert_eq!(put(&other, "app/x", &app).send().await.unwrap().status(), StatusCode::CREATED, "write token inside its prefix");
    let listed = http.get(format!("{other}/v1/kv?prefix=app/")).bearer_auth(&app).send().await.unwrap();
    assert_eq!(listed.status(), StatusCode::OK);
    let dlq = json!({ "max_deliveries": 3, "dead_letter_queue": "app/dlq" });
    assert!(http.put(format!("{base}/v1/queues/app%2Fjobs")).bearer_auth(&app).json(&dlq).send().await.unwrap().status().is_success());
    assert_eq!(http.get(format!("{other}/v1/kv/app/x?consistency=stale")).bearer_auth(&reader).send().await.unwrap().status(), StatusCode::OK);
    assert_eq!(put(&base, "open", &admin).send().await.unwrap().status(), StatusCode::OK, "admin writes anywhere");
    let me: Value = http.get(format!("{other}/v1/auth/whoami")).bearer_auth(&app).send().await.unwrap().json().await.unwrap();
    assert_eq!((me["role"].as_str(), me["prefixes"].clone(), me["auth_enabled"].as_bool()), (Some("write"), json!(["app/"]), Some(true)));

    // The list shows every token and no secret.
    let listed = http.get(format!("{other}/v1/auth/tokens")).bearer_auth(&admin).send().await.unwrap().text().await.unwrap();
    let items = serde_json::from_str::<Value>(&listed).unwrap()["items"].as_array().unwrap().len();
    assert_eq!(items, 3, "{listed}");
    for token in [&admin, &reader, &app] {
        let secret = token.split_once('.').unwrap().1;
        assert!(!listed.contains(secret), "a secret was listed");
    }

    // The Rust client sends its token.
    let client = cluster.client().with_token(Some(app.clone()));
    client.put("app/from-client", "1").await.unwrap();
    let refused = client.put("elsewhere", "1").await.unwrap_err();
    assert_eq!((refused.status(), refused.code()), (Some(403), Some("forbidden")));

    // Revoking: the token stops working at once on the leader that answered; the last
    // admin token cannot go while tokens are required; revoking twice is a 404.
    let (app_id, _) = app.split_once('.').unwrap();
    let revoked = http.delete(format!("{other}/v1/auth/tokens/{app_id}")).bearer_auth(&admin).send().await.unwrap();
    assert_eq!(revoked.status(), StatusCode::OK);
    expect_refusals(vec![
        ("a revoked token", put(&base, "app/y", &app), StatusCode::UNAUTHORIZED, "invalid_token"),
        ("revoking it again", http.delete(format!("{base}/v1/auth/tokens/{app_id}")).bearer_auth(&admin), StatusCode::NOT_FOUND, "token_not_found"),
        (
            "revoking the last admin token",
            http.delete(format!("{base}/v1/auth/tokens/{admin_id}")).bearer_auth(&admin),
            StatusCode::CONFLICT,
            "last_admin_token",
        ),
        ("a token id that is not a number", http.delete(format!("{base}/v1/auth/tokens/x")).bearer_auth(&admin), StatusCode::BAD_REQUEST, "invalid_path"),
    ])
    .await;
    assert_eq!(http.get(format!("{base}/v1/kv/open")).bearer_auth(&admin).send().await.unwrap().status(), StatusCode::OK, "the admin token still works");

    // Turning it off needs an admin token too; then anyone may call again.
    expect_refusals(vec![(
        "disabling with a read token",
        http.post(format!("{base}/v1/auth/disable")).bearer_auth(&reader),
        StatusCode::FORBIDDEN,
        "forbidden",
    )])
    .await;
    let disabled = http.post(format!("{other}/v1/auth/disable")).bearer_auth(&admin).send().await.unwrap();
    assert_eq!(disabled.json::<Value>().await.unwrap()["enabled"], false);
    assert_eq!(http.put(format!("{base}/v1/kv/elsewhere")).body("1").send().await.unwrap().status(), StatusCode::CREATED);
}

#[tokio::test]
async fn a_stream_ends_when_tokens_become_required_or_its_token_is_revoked_and_other_streams_go_on() {
    let (_cluster, _, base, other) = three_nodes().await;
    let http = reqwest::Client::new();
    let watch = format!("{other}/v1/watch?prefix=s/");
    // Opened while no token is required: it ends once the follower applies the enable.
    let mut anonymous_stream = SseReader::send(http.get(&watch)).await;
    let admin = create_token(&http, &base, None, json!({ "name": "ops", "role": "admin" })).await;
    let reader = create_token(&http, &base, None, json!({ "name": "dash", "role": "read" })).await;
    assert_eq!(http.post(format!("{base}/v1/auth/enable")).bearer_auth(&admin).send().await.unwrap().status(), StatusCode::OK);
    // The follower serves streams from its own state, and takes a token only once it
    // requires them: wait until it refuses a read without one.
    wait_for("the follower to apply the enable", Duration::from_secs(30), || async {
        let read = http.get(format!("{other}/v1/kv/none?consistency=stale")).send().await.unwrap();
        (read.status() == StatusCode::UNAUTHORIZED).then_some(())
    })
    .await;
    let (kind, _, data) = anonymous_stream.next().await;
    assert_eq!((kind.as_str(), data["error"]["code"].as_str()), ("error", Some("token_required")), "{data}");
    assert!(anonymous_stream.closed().await, "the stream opened without a token stays open");

    let mut read_stream = SseReader::send(http.get(&watch).bearer_auth(&reader)).await;
    let mut admin_stream = SseReader::send(http.get(&watch).bearer_auth(&admin)).await;
    let put = |key: &str| http.put(format!("{base}/v1/kv/{key}")).bearer_auth(&admin).body("1").send();
    assert_eq!(put("s/1").await.unwrap().status(), StatusCode::CREATED);
    for stream in [&mut read_stream, &mut admin_stream] {
        assert_eq!(stream.next().await.2["key"], "s/1");
    }

    let (reader_id, _) = reader.split_once('.').unwrap();
    assert_eq!(http.delete(format!("{base}/v1/auth/tokens/{reader_id}")).bearer_auth(&admin).send().await.unwrap().status(), StatusCode::OK);
    // The follower ends the stream when it applies the revoke; under load, its log may
    // trail the leader's by seconds (the revoke commits with the other follower).
    wait_for("the follower to apply the revoke", Duration::from_secs(30), || async {
        let tokens: Value = http.get(format!("{other}/v1/auth/tokens?consistency=stale")).bearer_auth(&admin).send().await.ok()?.json().await.ok()?;
        let revoked: u64 = reader_id.parse().ok()?;
        tokens["items"].as_array()?.iter().all(|t| t["id"].as_u64() != Some(revoked)).then_some(())
    })
    .await;
    let (kind, _, data) = read_stream.next().await;
    assert_eq!((kind.as_str(), data["error"]["code"].as_str()), ("error", Some("token_revoked")), "{data}");
    assert!(read_stream.closed().await, "the revoked token's stream stays open");

    // The admin's stream is untouched, and reconnecting with the revoked token fails.
    assert_eq!(put("s/2").await.unwrap().status(), StatusCode::CREATED);
    assert_eq!(admin_stream.next().await.2["key"], "s/2");
    expect_refusals(vec![("a stream with the revoked token", http.get(&watch).bearer_auth(&reader), StatusCode::UNAUTHORIZED, "invalid_token")]).await;
}

#[tokio::test]
async fn required_tokens_survive_kill_9_and_reach_nodes_by_snapshot_and_by_join() {
    let mut cluster = Cluster::start(3, &["--snapshot-after-entries", "50"]).await;
    let leader = cluster.wait_for_leader(Duration::from_secs(10)).await;
    let lagging = (1..=3).find(|id| *id != leader).unwrap();
    cluster.kill(lagging);
    let http = reqwest::Client::new();
    let base = cluster.node(leader).url();
    let admin = create_token(&http, &base, None, json!({ "role": "admin" })).await;
    let reader = create_token(&http, &base, None, json!({ "role": "read" })).await;
    assert_eq!(http.post(format!("{base}/v1/auth/enable")).bearer_auth(&admin).send().await.unwrap().status(), StatusCode::OK);
    cluster.token = Some(admin.clone());
    let client = cluster.client();
    for i in 0..200 {
        client.put(&format!("k/{i:03}"), "v").await.unwrap();
    }
    wait_for("the leader to purge its log", Duration::from_secs(20), || async {
        (cluster.local_status(leader).await?["purged_index"].as_u64()? > 100).then_some(())
    })
    .await;

    // The lagging node learns the tokens and the requirement from a snapshot.
    cluster.restart(lagging);
    cluster.wait_caught_up(lagging, Duration::from_secs(30)).await;
    assert!(cluster.log_of(lagging).contains("installed snapshot"), "caught up through a snapshot, not the log");
    assert_eq!(stale_read(&http, cluster.node(lagging).url(), None).await, StatusCode::UNAUTHORIZED, "the snapshot carried the requirement");
    assert_eq!(stale_read(&http, cluster.node(lagging).url(), Some(&reader)).await, StatusCode::OK, "and the tokens");

    // kill -9 the whole cluster: both survive.
    for id in 1..=3 {
        cluster.kill(id);
    }
    for id in 1..=3 {
        cluster.restart(id);
    }
    let leader = cluster.wait_for_leader(Duration::from_secs(20)).await;
    assert_eq!(stale_read(&http, cluster.node(leader).url(), None).await, StatusCode::UNAUTHORIZED, "still required after a restart");
    assert_eq!(stale_read(&http, cluster.node(leader).url(), Some(&reader)).await, StatusCode::OK);

    // A new member joins with an admin token (`--token`); without one it is refused.
    cluster.start_joiner_with(4, leader, &["--snapshot-after-entries", "50", "--token", &admin]);
    wait_for("node 4 to become a voting follower", Duration::from_secs(30), || async {
        let status = cluster.local_status(leader).await?;
        let members = status["members"].as_array()?.clone();
        members.iter().any(|m| m["id"] == 4 && m["role"] == "follower").then_some(())
    })
    .await;
    cluster.wait_caught_up(4, Duration::from_secs(30)).await;
    assert_eq!(stale_read(&http, cluster.node(4).url(), None).await, StatusCode::UNAUTHORIZED);
    assert_eq!(stale_read(&http, cluster.node(4).url(), Some(&reader)).await, StatusCode::OK);
    cluster.start_joiner_with(5, leader, &["--snapshot-after-entries", "50"]);
    wait_for("node 5 to be refused for want of a token", Duration::from_secs(10), || async { cluster.log_of(5).contains("token_required").then_some(()) })
        .await;
    let members = cluster.local_status(leader).await.unwrap()["members"].clone();
    assert!(!members.as_array().unwrap().iter().any(|m| m["id"] == 5), "node 5 was added without a token: {members}");
}

/// What a follower that had not applied the latest token changes would send: the
/// leader re-checks the follower's decision against its own state and refuses it,
/// writing nothing; the same write with a token that still holds goes through.
#[tokio::test]
async fn the_leader_rechecks_the_token_decision_a_follower_sends_with_a_write() {
    use concord::service::{Authority, ConsensusError, ForwardedWrite};
    use concord::state::command::{Command, Precondition, Request, Response};

    let (cluster, _, base, _) = three_nodes().await;
    let http = reqwest::Client::new();
    let admin = create_token(&http, &base, None, json!({ "name": "ops", "role": "admin" })).await;
    let writer = create_token(&http, &base, None, json!({ "name": "app", "role": "write" })).await;
    assert_eq!(http.post(format!("{base}/v1/auth/enable")).bearer_auth(&admin).send().await.unwrap().status(), StatusCode::OK);
    let (writer_id, _) = writer.split_once('.').unwrap();
    let writer_id: u64 = writer_id.parse().unwrap();
    assert_eq!(http.delete(format!("{base}/v1/auth/tokens/{writer_id}")).bearer_auth(&admin).send().await.unwrap().status(), StatusCode::OK);
    let (admin_id, _) = admin.split_once('.').unwrap();

    let status: Value = http.get(format!("{base}/v1/cluster?consistency=stale")).bearer_auth(&admin).send().await.unwrap().json().await.unwrap();
    let cluster_id = status["cluster_id"].as_str().unwrap().to_string();
    let send = |authority: Authority, key: &str| {
        let command = Command::Kv(KvCommand::Put { key: key.into(), value: b"x".to_vec(), precondition: Precondition::None, lease: None, fence: None });
        let body = concord::codec::encode(&ForwardedWrite { authority, request: Request::from(command) }).unwrap();
        http.post(format!("{base}/raft/write"))
            .header("concord-cluster", &cluster_id)
            .header("concord-protocol", concord::raft::protocol::PROTOCOL_VERSION)
            .body(body)
            .send()
    };
    let answer = |bytes: &[u8]| concord::codec::decode::<Result<Response, ConsensusError>>(bytes).unwrap();
    let unaware = send(Authority::NoTokenRequired, "unaware").await.unwrap().bytes().await.unwrap();
    assert_eq!(answer(&unaware), Err(ConsensusError::TokenRequired), "a follower that had not applied the enable");
    let revoked = send(Authority::Token(writer_id), "revoked").await.unwrap().bytes().await.unwrap();
    assert_eq!(answer(&revoked), Err(ConsensusError::TokenRevoked(writer_id)), "a follower that had not applied the revoke");
    let held = send(Authority::Token(admin_id.parse().unwrap()), "held").await.unwrap().bytes().await.unwrap();
    assert!(answer(&held).is_ok(), "a token that still holds");
    let client = cluster.client().with_token(Some(admin.clone()));
    assert!(client.get("unaware").await.unwrap().value.is_none() && client.get("revoked").await.unwrap().value.is_none(), "refusals wrote nothing");
    assert!(client.get("held").await.unwrap().value.is_some());
}

/// Every route of the API, asked by a read token confined to `app/` about names
/// outside it, is refused (`403`, or a `4xx` for the request itself), never served
/// (but the two any token may call) and never a `500`; asked by an admin token, none is withheld for not checking the
/// token. So every route checks the token on its typed request (`authorize`), and
/// one that forgot would fail closed.
#[tokio::test]
async fn every_route_checks_the_token_on_what_it_asks() {
    let cluster = Cluster::start(1, &[]).await;
    cluster.wait_for_leader(Duration::from_secs(10)).await;
    let base = cluster.node(1).url();
    let http = reqwest::Client::builder().timeout(Duration::from_secs(5)).build().unwrap();
    let admin = create_token(&http, &base, None, json!({ "name": "ops", "role": "admin" })).await;
    let confined = create_token(&http, &base, None, json!({ "name": "dash", "role": "read", "prefixes": ["app/"] })).await;
    assert_eq!(http.post(format!("{base}/v1/auth/enable")).bearer_auth(&admin).send().await.unwrap().status(), StatusCode::OK);

    let description: Value = http.get(format!("{base}/v1/openapi.json")).send().await.unwrap().json().await.unwrap();
    let mut routes = Vec::new();
    // `/health` and `/ready` are open to anyone.
    for (path, item) in description["paths"].as_object().unwrap().iter().filter(|(path, _)| path.starts_with("/v1/")) {
        for method in item.as_object().unwrap().keys().filter(|m| ["get", "put", "post", "delete"].contains(&m.as_str())) {
            let concrete = path.replace("{key}", "other/k").replace("{member}", "m").replace("{id}", "1");
            let concrete = ["{name}", "{queue}", "{topic}", "{ring}"].iter().fold(concrete, |p, param| p.replace(param, "other"));
            let query = if path == "/v1/kv" || path == "/v1/watch" { "?prefix=other/" } else { "" };
            routes.push((method.to_uppercase(), format!("{base}{concrete}{query}")));
        }
    }
    assert!(routes.len() >= 40, "{} routes", routes.len());
    let mut forbidden = 0;
    for (method, url) in &routes {
        let ask = |token: &str| http.request(method.parse().unwrap(), url).bearer_auth(token).header("content-type", "application/json").body("{}").send();
        // Any token may ask who it is and read the cluster's status.
        let open_to_any = method == "GET" && (url.ends_with("/v1/auth/whoami") || url.ends_with("/v1/cluster"));
        match ask(&confined).await {
            Ok(answer) => {
                let status = answer.status();
                assert_eq!(status.is_success(), open_to_any, "{method} {url}: {status} for a confined read token");
                assert_ne!(status, StatusCode::INTERNAL_SERVER_ERROR, "{method} {url}");
                forbidden += usize::from(status == StatusCode::FORBIDDEN);
            }
            Err(e) => panic!("{method} {url}: {e}"),
        }
        // A stream or a long poll may outlast the client's timeout: it was served, so checked.
        if let Ok(answer) = ask(&admin).await {
            let status = answer.status();
            let text = if status == StatusCode::INTERNAL_SERVER_ERROR { answer.text().await.unwrap_or_default() } else { String::new() };
            assert!(!text.contains("did not check the token"), "{method} {url}: {text}");
        }
    }
    assert!(forbidden * 2 > routes.len(), "{forbidden} of {} routes refused with 403", routes.len());
}
