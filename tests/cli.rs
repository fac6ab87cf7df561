//! Every `concord` client subcommand, run as a person runs it (`bash -c`, the binary
//! under test on the PATH) against a real 3-node cluster: its text output, its
//! `--json` output, its error paths and their exit codes (0 done, 1 refused or not
//! found, 2 usage, 3 unreachable or unknown outcome), and the way it fails when no
//! node can be reached or its reader goes away.

mod common;
#[path = "common/shell.rs"]
mod shell;

use std::time::{Duration, Instant};

use common::Cluster;
use serde_json::Value;
use shell::{Ran, Shell};

const TIMEOUT: Duration = Duration::from_secs(30);

struct Cli {
    shell: Shell,
}

impl Cli {
    /// Runs `line`; checks it exited with `code`; returns what it printed.
    fn expect(&self, code: i32, line: &str) -> Ran {
        let ran = self.shell.run(line, TIMEOUT);
        assert_eq!(ran.code, Some(code), "`{line}` exited {:?}, not {code}: {ran:?}", ran.code);
        assert!(!ran.stderr.contains("panicked"), "`{line}` panicked: {}", ran.stderr);
        ran
    }

    fn ok(&self, line: &str) -> String {
        self.expect(0, line).stdout
    }

    fn json(&self, line: &str) -> Value {
        let out = self.ok(line);
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("`{line}` printed no JSON ({e}): {out}"))
    }

    /// A refusal: exit 1 and `error: <status> <code>: ...` on stderr.
    fn refused(&self, line: &str, status_and_code: &str) {
        let ran = self.expect(1, line);
        assert!(ran.stderr.starts_with(&format!("error: {status_and_code}: ")), "`{line}`: {}", ran.stderr);
    }
}

async fn cli() -> (Cluster, Cli) {
    let cluster = Cluster::start(3, &[]).await;
    let endpoints = cluster.nodes.iter().map(|n| n.addr.clone()).collect::<Vec<_>>().join(",");
    (cluster, Cli { shell: Shell::new(&endpoints, None) })
}

#[tokio::test(flavor = "multi_thread")]
async fn kv_commands_in_text_and_json() {
    let (cluster, cli) = cli().await;
    assert!(cli.ok("concord kv put a/1 one").starts_with("OK created \"a/1\" at revision "));
    assert!(cli.ok("echo -n two | concord kv put a/2").starts_with("OK created \"a/2\""), "the value from stdin");
    let put = cli.json("concord kv put a/1 uno --json");
    assert_eq!((put["key"].as_str(), put["version"].as_u64(), put["created"].as_bool()), (Some("a/1"), Some(2), Some(false)));
    let revision = put["mod_revision"].as_u64().unwrap();
    assert!(cli.ok(&format!("concord kv put a/1 eins --if-match {revision}")).starts_with("OK updated \"a/1\""));
    cli.refused(&format!("concord kv put a/1 late --if-match {revision}"), "412 precondition_failed");
    cli.refused("concord kv put a/1 again --if-absent", "412 precondition_failed");
    assert!(cli.ok("concord kv put a/3 x --idempotency-key k-1").starts_with("OK created"));
    assert!(cli.ok("concord kv put a/3 x --idempotency-key k-1").starts_with("OK created"), "a retry answers as the first");
    assert_eq!(cli.ok("concord kv get a/1"), "eins\n");
    assert_eq!(cli.ok("concord kv get a/1 --stale"), "eins\n");
    let got = cli.json("concord kv get a/1 --json");
    assert_eq!((got["value"].as_str(), got["encoding"].as_str(), got["version"].as_u64()), (Some("eins"), Some("utf8"), Some(3)));
    assert!(got.get("lease").is_some_and(Value::is_null), "kv get --json says the key has no lease: {got}");
    cli.refused("concord kv get nope", "404 key_not_found");
    assert!(cli.ok("concord kv put t/1 soon --ttl-ms 60000").starts_with("OK created \"t/1\""));
    let url = format!("{}/v1/kv/t/1", cluster.node(1).url());
    let left = reqwest::get(url).await.unwrap().json::<Value>().await.unwrap()["ttl_ms"].as_u64();
    assert!(left.is_some_and(|left| left > 0 && left <= 60000), "--ttl-ms gave the key a ttl: {left:?}");
    let zero = cli.expect(2, "concord kv put t/0 never --ttl-ms 0");
    assert!(zero.stderr.contains("--ttl-ms"), "{}", zero.stderr);
    cli.refused("concord kv get t/0", "404 key_not_found");

    assert_eq!(cli.ok("concord kv list a/"), "a/1 = eins\na/2 = two\na/3 = x\n");
    let ran = cli.expect(0, "concord kv list a/ --limit 2");
    assert_eq!(ran.stdout, "a/1 = eins\na/2 = two\n");
    assert!(ran.stderr.contains("--after \"a/2\""), "{}", ran.stderr);
    assert_eq!(cli.ok("concord kv list a/ --after a/2"), "a/3 = x\n");
    let page = cli.json("concord kv list a/ --json");
    assert_eq!(page["items"].as_array().map(Vec::len), Some(3));

    let deleted = cli.json("concord kv del a/3 --json");
    assert_eq!(deleted["deleted"], true);
    cli.refused("concord kv del a/3", "404 key_not_found");
    cli.refused("concord kv del a/1 --if-match 1", "412 precondition_failed");
    assert!(cli.ok("concord kv del a/2").starts_with("OK deleted \"a/2\" at revision "));
    for i in 0..5 {
        cli.ok(&format!("concord kv put b/{i} v"));
    }
    cli.ok("concord kv put bb not-under-b/");
    assert!(cli.ok("concord kv del b/ --prefix").starts_with("OK deleted 5 keys under \"b/\"; revision "));
    assert_eq!(cli.json("concord kv del b/ --prefix --json")["deleted"], 0);
    assert_eq!(cli.ok("concord kv get bb"), "not-under-b/\n");
    assert_eq!(cli.expect(2, "concord kv del b/ --prefix --if-match 3").code, Some(2), "--prefix with --if-match is a usage error");
}

#[tokio::test(flavor = "multi_thread")]
async fn lease_lock_and_ring_commands() {
    let (_cluster, cli) = cli().await;
    let lease = cli.ok("concord lease grant 60000").trim().to_string();
    let lease_json = cli.json("concord lease grant 60000 --json");
    assert_eq!(lease_json["ttl_ms"], 60000);
    assert!(cli.ok(&format!("concord kv put svc/1 addr --lease {lease}")).starts_with("OK created"));
    assert_eq!(cli.json("concord kv get svc/1 --json")["lease"].as_u64().map(|l| l.to_string()), Some(lease.clone()), "kv get --json shows the lease");
    assert_eq!(cli.ok(&format!("concord lease keepalive {lease}")), format!("OK lease {lease} renewed for 60000 ms\n"));
    assert_eq!(cli.json(&format!("concord lease keepalive {lease} --json"))["id"].as_u64().map(|l| l.to_string()), Some(lease.clone()));
    let every = cli.shell.run_stream(&format!("concord lease keepalive {lease} --every 100"), 2, |l| l.starts_with("OK lease"), TIMEOUT);
    assert!(every.len() >= 2, "keepalive --every renews again and again: {every:?}");
    let shown = cli.ok(&format!("concord lease get {lease}"));
    assert!(shown.starts_with(&format!("lease {lease}: ttl 60000 ms, ")) && shown.contains("  key  svc/1"), "{shown}");
    assert_eq!(cli.json(&format!("concord lease get {lease} --json"))["keys"], serde_json::json!(["svc/1"]));

    let token = cli.ok(&format!("concord lock acquire jobs/leader --lease {lease} --wait-ms 1000")).trim().to_string();
    let other = lease_json["id"].as_u64().unwrap();
    cli.refused(&format!("concord lock acquire jobs/leader --lease {other}"), "409 lock_busy");
    assert_eq!(cli.ok("concord lock get jobs/leader"), format!("\"jobs/leader\" is held by lease {lease} with token {token}\n"));
    assert_eq!(cli.json("concord lock get jobs/leader --json")["holder"]["token"].as_u64().map(|t| t.to_string()), Some(token.clone()));
    assert!(cli.ok(&format!("concord kv put jobs/state done --fence jobs/leader:{token}")).starts_with("OK created"));
    cli.refused("concord kv put jobs/state late --fence jobs/leader:1", "409 fence_rejected");
    assert_eq!(cli.ok(&format!("concord lock check jobs/leader {token}")), format!("token {token} holds \"jobs/leader\"\n"));
    assert_eq!(cli.ok(&format!("concord lock release jobs/leader {token}")), "OK released \"jobs/leader\"\n");
    assert_eq!(cli.expect(1, &format!("concord lock check jobs/leader {token}")).stdout, format!("token {token} does not hold \"jobs/leader\"\n"));
    cli.refused(&format!("concord lock release jobs/leader {token}"), "409 stale_token");
    assert_eq!(cli.ok("concord lock get jobs/leader"), "\"jobs/leader\" is free\n");
    let grant = cli.json(&format!("concord lock acquire jobs/leader --lease {other} --json"));
    assert_eq!((grant["name"].as_str(), grant["lease"].as_u64()), (Some("jobs/leader"), Some(other)));
    cli.ok(&format!("concord lock release jobs/leader {}", grant["token"]));
    // The global --token is still there beside the positional TOKEN.
    let help = cli.ok("concord lock release --help");
    assert!(help.contains("--token <TOKEN>") && help.contains("<TOKEN>") && help.contains("The fencing token"), "{help}");

    assert!(cli.ok(&format!("concord ring join web web-1 --address 10.0.0.7:8080 --lease {lease}")).starts_with("OK \"web-1\" is in ring \"web\" at epoch "));
    assert!(cli.ok("concord ring join web web-2 --address 10.0.0.8:8080 --weight 2 --metadata zone=b").contains("\"web-2\""));
    let ring = cli.ok("concord ring get web");
    assert!(ring.starts_with("ring \"web\" at epoch ") && ring.contains("web-2") && ring.contains("weight 2"), "{ring}");
    assert_eq!(cli.json("concord ring get web --json")["members"].as_array().map(Vec::len), Some(2));
    assert_eq!(cli.ok("concord ring lookup web user/42 --replicas 2").lines().count(), 2);
    assert_eq!(cli.json("concord ring lookup web user/42 --json")["owners"].as_array().map(Vec::len), Some(1));
    assert!(cli.ok("concord ring leave web web-2").starts_with("OK \"web-2\" left ring \"web\""));
    cli.refused("concord ring leave web web-2", "404 member_not_found");

    assert_eq!(cli.ok(&format!("concord lease revoke {lease}")), format!("OK revoked lease {lease}; 1 attached keys deleted\n"));
    assert_eq!(cli.json(&format!("concord lease revoke {other} --json"))["revoked"], true);
    cli.refused(&format!("concord lease get {lease}"), "404 lease_not_found");
    cli.refused(&format!("concord lease keepalive {lease}"), "404 lease_not_found");
    cli.refused("concord ring lookup web user/42 --replicas 0", "400 invalid_replicas");
}

#[tokio::test(flavor = "multi_thread")]
async fn queue_topic_and_watch_commands() {
    let (_cluster, cli) = cli().await;
    let configured = cli.ok("concord queue configure jobs --visibility-ms 30000 --max-deliveries 3 --dead-letter-queue jobs-dead");
    assert!(configured.starts_with("OK \"jobs\": "), "{configured}");
    assert!(cli.json("concord queue configure jobs --json")["settings"].is_object());
    cli.refused("concord queue configure jobs --visibility-ms 0", "400 invalid_queue_settings");
    let id = cli.ok("concord queue send jobs hello").trim().to_string();
    assert!(id.parse::<u64>().is_ok(), "send prints the id: {id}");
    assert_eq!(cli.json("echo -n from-stdin | concord queue send jobs - --json")["queue"], "jobs");
    let received = cli.ok("concord queue receive jobs --wait-ms 1000");
    let (receipt, payload) = received.trim().split_once(' ').expect("<receipt> <payload>");
    assert_eq!(payload, "hello");
    assert_eq!(cli.ok(&format!("concord queue extend jobs {receipt} 60000")).split(" in flight until ").next(), Some(format!("OK {receipt}").as_str()));
    assert_eq!(cli.ok(&format!("concord queue ack jobs {receipt}")), format!("OK acked {receipt}\n"));
    cli.refused(&format!("concord queue ack jobs {receipt}"), "409 stale_receipt");
    let second = cli.json("concord queue receive jobs --max 5 --visibility-ms 5000 --json");
    let receipt = second["messages"][0]["receipt"].as_str().expect("a receipt").to_string();
    assert_eq!(second["messages"][0]["payload"], "from-stdin");
    assert_eq!(cli.ok(&format!("concord queue nack jobs {receipt}")), format!("OK {receipt} given back\n"));
    cli.refused("concord queue ack jobs not-a-receipt", "400 invalid_receipt");
    let stats = cli.ok("concord queue stats jobs");
    assert!(stats.starts_with("\"jobs\": 1 visible, 0 in flight, 0 delayed, 0 dead-lettered"), "{stats}");
    assert_eq!(cli.json("concord queue stats jobs --json")["visible"], 1);
    cli.refused("concord queue stats nope", "404 queue_not_found");
    assert!(cli.ok("concord queue list").lines().any(|l| l == "jobs 1"));
    assert!(cli.json("concord queue list --after jobs --json")["items"].is_array());
    assert_eq!(cli.ok("concord queue delete jobs"), "OK deleted \"jobs\" and 1 messages\n");
    let empty = cli.expect(0, "concord queue receive idle --wait-ms 10");
    assert_eq!(
        (empty.stdout.as_str(), empty.stderr.as_str()),
        ("", "(no message was visible within 10 ms)\n"),
        "an empty receive says so, apart from the output"
    );
    cli.refused("concord queue delete jobs", "404 queue_not_found");

    assert!(cli.ok("concord topic configure news --max-messages 100").starts_with("OK \"news\": "));
    assert_eq!(cli.ok("concord topic publish news hello"), "1\n");
    assert_eq!(cli.ok("concord topic publish news again"), "2\n");
    assert_eq!(cli.ok("concord topic read news"), "1 hello\n2 again\n");
    assert_eq!(cli.ok("concord topic read news --from 2 --limit 1 --wait-ms 10"), "2 again\n");
    assert_eq!(cli.json("concord topic read news --json")["next_offset"], 3);
    let subscribed = cli.shell.run_stream("concord topic subscribe news --from 1", 2, |l| !l.is_empty(), TIMEOUT);
    assert_eq!(subscribed, ["1 hello", "2 again"]);
    assert_eq!(cli.json("concord topic stats news")["next_offset"], 3);
    cli.refused("concord topic stats nope", "404 topic_not_found");
    assert_eq!(cli.ok("concord topic delete news"), "OK deleted \"news\" and 2 messages\n");

    cli.ok("concord kv put config/mode fast");
    cli.ok("concord kv del config/mode");
    let watched = cli.shell.run_stream("concord watch config/ --from-revision 1", 2, |l| !l.is_empty(), TIMEOUT);
    assert_eq!(watched.len(), 2, "{watched:?}");
    assert!(watched[0].ends_with(" PUT config/mode fast") && watched[1].ends_with(" DELETE config/mode"), "{watched:?}");
    let events = cli.shell.run_stream("concord watch config/ --from-revision 1 --json", 2, |l| !l.is_empty(), TIMEOUT);
    let events: Vec<Value> = events.iter().map(|e| serde_json::from_str(e).expect("one JSON event per line")).collect();
    assert_eq!((events[0]["type"].as_str(), events[0]["value"].as_str()), (Some("put"), Some("fast")));
    assert_eq!(events[1]["type"], "delete", "a delete says so: {}", events[1]);
    assert!(events[1].get("value").is_none(), "{}", events[1]);
}

#[tokio::test(flavor = "multi_thread")]
async fn txn_from_stdin_and_from_a_file() {
    let (_cluster, cli) = cli().await;
    let create = r#"{"compare": [{"key": "t/a", "absent": true}], "success": [{"put": {"key": "t/a", "value": "1"}}, {"get": {"key": "t/a"}}]}"#;
    let out = cli.ok(&format!("echo '{create}' | concord txn"));
    let lines: Vec<&str> = out.lines().collect();
    assert!(lines[0].starts_with("SUCCESS at revision "), "{out}");
    assert!(
        lines[1].starts_with(r#"{"op":"put","create_revision":"#) && lines[1].contains(r#""created":true"#) && lines[2].contains(r#""value":"1""#),
        "{out}"
    );
    let file = std::env::temp_dir().join(format!("concord-txn-{}.json", std::process::id()));
    std::fs::write(&file, create).unwrap();
    let again = cli.json(&format!("concord txn {} --json --idempotency-key second", file.display()));
    assert_eq!((again["succeeded"].as_bool(), again["failed_condition"].as_u64()), (Some(false), Some(0)), "{again}");
    assert!(cli.ok(&format!("concord txn {}", file.display())).starts_with("FAILURE at revision "));
    std::fs::remove_file(&file).unwrap();
    let usage = cli.expect(2, "echo '{\"success\": [{\"frobnicate\": {}}]}' | concord txn");
    assert!(usage.stderr.starts_with("error: the transaction is not valid JSON"), "{}", usage.stderr);
    cli.refused(r#"echo '{"success": [{"delete": {"key": "t/none"}}]}' | concord txn"#, "404 key_not_found");
}

#[tokio::test(flavor = "multi_thread")]
async fn cluster_and_auth_commands() {
    let (mut cluster, cli) = cli().await;
    let status = cli.ok("concord cluster status");
    assert!(status.starts_with("leader node ") && status.lines().filter(|l| l.trim_start().starts_with("node ")).count() == 3, "{status}");
    assert!(!status.contains("UNREACHABLE"), "{status}");
    assert!(cli.json("concord cluster status --stale --json")["members"].is_array());
    cli.refused("concord cluster add 9 nowhere", "400 invalid_addr");
    cli.refused("concord cluster remove 9", "404 member_not_found");

    // A dead member is marked, with why the leader cannot reach it.
    let leader = cluster.wait_for_leader(Duration::from_secs(10)).await;
    let follower = (1..=3).find(|id| *id != leader).unwrap();
    cluster.kill(follower);
    let marked = common::wait_for("the dead member to be marked", Duration::from_secs(10), || async {
        let status = cli.ok("concord cluster status");
        status.lines().any(|l| l.contains(&format!("node {follower} ")) && l.contains("UNREACHABLE: connection refused")).then_some(status)
    })
    .await;
    assert_eq!(marked.matches("UNREACHABLE").count(), 1, "{marked}");
    let member = cli.json("concord cluster status --json")["members"].as_array().unwrap().iter().find(|m| m["id"] == follower).cloned().unwrap();
    assert_eq!(member["last_contact"]["ok"], false, "{member}");
    cluster.restart(follower);
    cluster.wait_caught_up(follower, Duration::from_secs(20)).await;

    let token = cli.ok("concord auth token create --role admin --name ops").trim().to_string();
    let created = cli.json("concord auth token create --role write --name svc --prefix svc/ --json");
    assert_eq!(created["prefixes"], serde_json::json!(["svc/"]));
    assert!(cli.ok("concord auth token list").lines().count() >= 2);
    assert_eq!(cli.json("concord auth status")["enabled"], false);
    cli.refused("concord auth token create --role emperor", "400 invalid_json");
    cli.ok(&format!("CONCORD_TOKEN={token} concord auth enable"));
    cli.refused("concord kv get x", "401 token_required");
    assert_eq!(cli.json(&format!("concord auth whoami --token {token}"))["role"], "admin");
    cli.ok(&format!("concord auth token revoke {} --token {token}", created["id"]));
    cli.ok(&format!("concord auth disable --token {token}"));
    cli.refused("concord kv get x", "404 key_not_found");

    // Last, as it shrinks the cluster: a member removed.
    let removed = cli.json(&format!("concord cluster remove {follower}"));
    assert!(removed.is_object(), "{removed}");
    let status = cli.json("concord cluster status --json");
    assert_eq!(status["members"].as_array().map(Vec::len), Some(2), "{status}");
}

#[tokio::test(flavor = "multi_thread")]
async fn unreachable_clusters_fail_fast_and_say_why() {
    // Nothing listens on these ports (handed to this test alone, never bound).
    let (a, b) = (common::free_port(), common::free_port());
    let cli = Cli { shell: Shell::new(&format!("127.0.0.1:{a},127.0.0.1:{b}"), None) };
    let started = Instant::now();
    let ran = cli.expect(3, "concord kv get x");
    // Within the client's 15 s call deadline: it gave up once every endpoint refused.
    assert!(started.elapsed() < Duration::from_secs(10), "took {:?}", started.elapsed());
    for port in [a, b] {
        assert!(ran.stderr.contains(&format!("http://127.0.0.1:{port}: connection refused")), "names each endpoint and why: {}", ran.stderr);
    }
    assert!(ran.stderr.starts_with("error: no node could be reached; tried "), "{}", ran.stderr);
    cli.expect(3, "concord kv put x y");
    let ran = cli.expect(3, "concord watch config/");
    assert!(ran.stderr.starts_with("error: no node could be reached; tried "), "a stream says the same: {}", ran.stderr);
    cli.expect(2, "concord kv put");
    cli.expect(2, "concord kv get x --ca-file /nonexistent.pem");
    let ran = cli.expect(1, "concord dev kill 1 --base-port 1");
    assert!(ran.stderr.contains("no dev cluster with base port 1 is running"), "{}", ran.stderr);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_closed_pipe_ends_quietly_and_bench_reports_each_kind() {
    let (cluster, cli) = cli().await;
    let client = cluster.client();
    // 300 kB: more than a pipe (64 kB) and `head`'s read hold, so `concord` is
    // still writing when `head` has gone.
    for i in 0..300 {
        client.put(&format!("many/{i:03}"), "v".repeat(1000)).await.unwrap();
    }
    let ran = cli.expect(0, "concord kv list many/ --limit 300 | head -n 1; echo \"exit ${PIPESTATUS[0]}\"");
    assert_eq!(ran.stdout.lines().last(), Some("exit 141"), "ended by SIGPIPE, as `cat` would: {ran:?}");
    assert!(ran.stderr.is_empty(), "nothing on stderr: {}", ran.stderr);

    let ran = cli.expect(0, "concord bench --workload queue --connections 2 --ops 20");
    assert!(ran.stdout.contains("  enqueue: ") && ran.stdout.contains("  receive+ack: "), "{}", ran.stdout);
    assert!(!ran.stdout.contains("read back"), "no read-back check ran: {}", ran.stdout);
    assert_eq!(ran.stderr.contains("debug build"), cfg!(debug_assertions), "{}", ran.stderr);
    let ran = cli.expect(0, "concord bench --workload put --connections 2 --ops 20 --json");
    let result: Value = serde_json::from_str(&ran.stdout).expect("JSON");
    assert_eq!(result["verified"]["missing_or_wrong"], 0, "{result}");
    assert!(result["verified"]["checked"].as_u64() > Some(0), "{result}");
    assert_eq!(result["by_operation"]["put"]["ok"], 20, "{result}");
}

/// `concord dev` outlives a node that dies by itself, says so, and keeps the
/// temporary data directory at exit (Ctrl-C) so the dead node's log can be read.
#[test]
fn dev_keeps_serving_when_a_node_crashes_and_keeps_its_log() {
    let mut dev = shell::Dev::start(common::free_dev_base_port());
    let data_line = dev.wait_for_line("its data directory", |l| l.trim_start().starts_with("data:"));
    let data_dir = std::path::PathBuf::from(data_line.trim_start().trim_start_matches("data:").split(" (").next().unwrap().trim());

    // A node dies by itself: kill -9 one child of `concord dev`, by its pid.
    let children = std::fs::read_to_string(format!("/proc/{}/task/{}/children", dev.pid(), dev.pid())).expect("children");
    let node: i32 = children.split_whitespace().next().expect("a node process").parse().unwrap();
    unsafe { libc::kill(node, libc::SIGKILL) };
    let exited = dev.wait_for_line("that a node exited", |l| l.contains(" exited (signal: 9"));
    assert!(exited.contains("The others keep serving") && exited.contains("concord dev restart"), "{exited}");
    let cli = Cli { shell: dev.shell() };
    assert!(cli.ok("concord kv put still serving").starts_with("OK created"), "the other two nodes still serve");

    assert!(dev.stop(libc::SIGINT).success(), "Ctrl-C stops it cleanly");
    let kept = dev.wait_for_line("that it kept the data directory", |l| l.starts_with("kept "));
    assert!(kept.contains(&data_dir.display().to_string()), "{kept}");
    let logs = (1..=3).filter(|n| data_dir.join(format!("node-{n}.log")).exists()).count();
    assert_eq!(logs, 3, "every node's log is kept in {}", data_dir.display());
    std::fs::remove_dir_all(&data_dir).expect("remove the kept directory");
}
