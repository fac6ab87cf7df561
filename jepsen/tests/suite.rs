//! The Jepsen suite in CI: a short run of each workload under partitions, kills and
//! pauses must be valid, and the same runs with a planted bug must be caught.
//!
//! Each test runs `concord-jepsen` as a separate process (it needs root for network
//! namespaces; without root the tests say so and skip). The concord binary is the
//! workspace's (`cargo test --workspace` builds it).

use std::path::PathBuf;
use std::process::Command;

/// Runs the suite; `None` (skip) when this machine cannot run it.
fn run(name: &str, args: &[&str]) -> Option<(i32, serde_json::Value)> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("skipping {name}: the Jepsen suite needs root (network namespaces, iptables)");
        return None;
    }
    let out: PathBuf = tempfile::tempdir().expect("a temp dir").keep().join(name);
    let output = Command::new(env!("CARGO_BIN_EXE_concord-jepsen")).args(args).arg("--out").arg(&out).output().expect("run concord-jepsen");
    println!("{}", String::from_utf8_lossy(&output.stdout));
    eprintln!("{}", String::from_utf8_lossy(&output.stderr));
    let results = std::fs::read_to_string(out.join("results.json")).map(|text| serde_json::from_str(&text).expect("results.json is JSON"));
    let code = output.status.code().unwrap_or(-1);
    match results {
        Ok(results) => {
            let _ = std::fs::remove_dir_all(out.parent().unwrap_or(&out));
            Some((code, results))
        }
        Err(e) => panic!("{name}: no results.json ({e}); exit {code}; run directory {}", out.display()),
    }
}

/// A run every checker found valid (exit 0).
fn expect_valid(code: i32, results: &serde_json::Value) {
    assert_eq!(results["valid"], "valid", "{}", serde_json::to_string_pretty(&results["checkers"]).unwrap_or_default());
    assert_eq!(code, 0);
}

/// A run with a planted bug that a checker caught (exit 1); `why` says what it must flag.
fn expect_caught(code: i32, results: &serde_json::Value, why: &str) {
    assert_eq!(results["valid"], "invalid", "the checker must flag {why}");
    assert_eq!(code, 1);
}

#[test]
fn register_under_partitions_kills_pauses_and_membership_changes_is_linearizable() {
    let Some((code, results)) =
        run("register", &["--workload", "register", "--nemesis", "partition,kill,pause,membership", "--time-limit", "60", "--seed", "42"])
    else {
        return;
    };
    expect_valid(code, &results);
    assert!(results["ops"]["ok"].as_u64().unwrap_or(0) > 500, "the run did work: {}", results["ops"]);
}

#[test]
fn stale_reads_during_partitions_are_caught() {
    let Some((code, results)) =
        run("register-stale", &["--workload", "register", "--nemesis", "partition", "--time-limit", "45", "--seed", "7", "--plant", "stale-reads"])
    else {
        return;
    };
    expect_caught(code, &results, "stale reads");
    let anomalies = results["checkers"][0]["anomalies"].as_array().map_or(0, Vec::len);
    assert!(anomalies > 0);
}

#[test]
fn register_through_the_redis_door_under_partitions_kills_and_pauses_is_linearizable() {
    let Some((code, results)) =
        run("redis-register", &["--workload", "redis-register", "--nemesis", "partition,kill,pause", "--time-limit", "45", "--seed", "44"])
    else {
        return;
    };
    expect_valid(code, &results);
    assert!(results["ops"]["ok"].as_u64().unwrap_or(0) > 500, "the run did work: {}", results["ops"]);
}

#[test]
fn redis_swaps_without_watch_are_caught() {
    let Some((code, results)) = run(
        "redis-register-unwatched",
        &["--workload", "redis-register", "--nemesis", "partition", "--time-limit", "30", "--seed", "7", "--plant", "unwatched-swaps"],
    ) else {
        return;
    };
    expect_caught(code, &results, "swaps that lose updates");
    let anomalies = results["checkers"][0]["anomalies"].as_array().map_or(0, Vec::len);
    assert!(anomalies > 0);
}

#[test]
fn a_queue_through_the_redis_door_under_faults_loses_and_duplicates_nothing() {
    let Some((code, results)) = run("redis-queue", &["--workload", "redis-queue", "--nemesis", "partition,kill,pause", "--time-limit", "45", "--seed", "45"])
    else {
        return;
    };
    expect_valid(code, &results);
    assert!(results["checkers"][0]["push_ok"].as_u64().unwrap_or(0) > 300, "the run did work: {}", results["checkers"][0]);
}

#[test]
fn redis_pops_in_two_steps_are_caught() {
    let Some((code, results)) =
        run("redis-queue-racy", &["--workload", "redis-queue", "--nemesis", "partition", "--time-limit", "30", "--seed", "8", "--plant", "racy-pops"])
    else {
        return;
    };
    expect_caught(code, &results, "items popped twice");
    let anomalies = results["checkers"][0]["anomalies"].as_array().map_or(0, Vec::len);
    assert!(anomalies > 0);
}

#[test]
fn queue_under_faults_loses_and_duplicates_nothing() {
    let Some((code, results)) = run("queue", &["--workload", "queue", "--nemesis", "partition,kill,pause", "--time-limit", "60", "--seed", "43"]) else {
        return;
    };
    expect_valid(code, &results);
    assert!(results["checkers"][0]["enqueue_ok"].as_u64().unwrap_or(0) > 100, "the run did work: {}", results["checkers"][0]);
}

#[test]
fn acks_reported_but_not_applied_are_caught() {
    let Some((code, results)) =
        run("queue-skip-acks", &["--workload", "queue", "--nemesis", "partition", "--time-limit", "30", "--seed", "3", "--plant", "skip-acks"])
    else {
        return;
    };
    expect_caught(code, &results, "acks that did not take effect");
    assert_eq!(results["checkers"][0]["anomalies"][0]["kind"], "received again after a successful ack");
}

#[test]
fn lock_under_faults_keeps_tokens_ordered_and_fences_stale_holders() {
    let Some((code, results)) = run("lock", &["--workload", "lock", "--nemesis", "partition,kill,pause", "--time-limit", "60", "--seed", "44"]) else { return };
    expect_valid(code, &results);
    assert!(results["checkers"][0]["grants"].as_u64().unwrap_or(0) > 20, "the run did work: {}", results["checkers"][0]);
}

#[test]
fn unfenced_writes_of_stale_holders_are_caught() {
    let Some((code, results)) =
        run("lock-unfenced", &["--workload", "lock", "--nemesis", "partition", "--time-limit", "45", "--seed", "5", "--plant", "unfenced"])
    else {
        return;
    };
    expect_caught(code, &results, "a stale holder's accepted write");
}

#[test]
fn a_lock_through_the_consul_door_under_faults_keeps_tokens_ordered_and_fences_stale_holders() {
    let Some((code, results)) = run("consul-lock", &["--workload", "consul-lock", "--nemesis", "partition,kill,pause", "--time-limit", "45", "--seed", "46"])
    else {
        return;
    };
    expect_valid(code, &results);
    assert!(results["checkers"][0]["grants"].as_u64().unwrap_or(0) > 10, "the run did work: {}", results["checkers"][0]);
}

#[test]
fn blind_writes_of_stale_consul_lock_holders_are_caught() {
    let Some((code, results)) =
        run("consul-lock-blind", &["--workload", "consul-lock", "--nemesis", "pause", "--time-limit", "45", "--seed", "6", "--plant", "blind-writes"])
    else {
        return;
    };
    expect_caught(code, &results, "a stale holder's blind write");
}

#[test]
fn ring_membership_epochs_and_lookups_stay_consistent() {
    let Some((code, results)) = run("ring", &["--workload", "ring", "--nemesis", "partition,kill,pause", "--time-limit", "60", "--seed", "45"]) else { return };
    expect_valid(code, &results);
    assert!(results["checkers"][0]["lookups_checked"].as_u64().unwrap_or(0) > 50, "the run did work: {}", results["checkers"][0]);
}

#[test]
fn stale_ring_reads_are_caught() {
    let Some((code, results)) =
        run("ring-stale", &["--workload", "ring", "--nemesis", "partition", "--time-limit", "45", "--seed", "21", "--plant", "stale-reads"])
    else {
        return;
    };
    expect_caught(code, &results, "stale membership reads");
}

#[test]
fn bank_transfers_in_transactions_keep_the_total() {
    let Some((code, results)) = run("bank", &["--workload", "bank", "--nemesis", "partition,kill,pause", "--time-limit", "45", "--seed", "46"]) else { return };
    expect_valid(code, &results);
    let checker = &results["checkers"][0];
    assert!(checker["reads_ok"].as_u64().unwrap_or(0) > 200 && checker["transfers_ok"].as_u64().unwrap_or(0) > 50, "the run did work: {checker}");
}

#[test]
fn transfers_split_into_two_writes_are_caught() {
    let Some((code, results)) =
        run("bank-split", &["--workload", "bank", "--nemesis", "partition", "--time-limit", "30", "--seed", "8", "--plant", "split-transfers"])
    else {
        return;
    };
    expect_caught(code, &results, "reads that miss money");
}

#[test]
fn work_acked_and_recorded_in_one_transaction_happens_exactly_once() {
    let Some((code, results)) = run("exactly-once", &["--workload", "exactly-once", "--nemesis", "partition,kill,pause", "--time-limit", "45", "--seed", "47"])
    else {
        return;
    };
    expect_valid(code, &results);
    let checker = &results["checkers"][0];
    assert!(checker["results"].as_u64().unwrap_or(0) > 50, "the run did work: {checker}");
    assert!(checker["commits_refused"].as_u64().unwrap_or(0) > 0, "some redelivered work was refused, not done twice: {checker}");
}

#[test]
fn work_acked_apart_from_its_result_is_caught_done_twice() {
    let Some((code, results)) =
        run("exactly-once-separate", &["--workload", "exactly-once", "--nemesis", "partition", "--time-limit", "30", "--seed", "9", "--plant", "separate-ack"])
    else {
        return;
    };
    expect_caught(code, &results, "a result written twice");
    assert_eq!(results["checkers"][0]["anomalies"][0]["kind"], "a result was written more than once");
}
