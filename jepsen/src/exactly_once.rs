//! The exactly-once workload: workers take messages from a queue and, in one
//! transaction, acknowledge each and write its result, so a message delivered twice
//! (a slow worker, a pause, a partition) still has its effect once.
//!
//! Clients enqueue unique values (as the queue workload does) or work: receive one
//! message (visibility `VISIBILITY_MS`), sometimes stall past its visibility timeout
//! so it is delivered again, then commit: a transaction conditioned on the receipt
//! that acks the message and writes `RESULTS/<value>`. After the faults are healed,
//! one worker drains the queue, then every result key is read with its `version`.
//!
//! Anomalies: an acknowledged enqueue without a result (lost work; only once the
//! drain emptied the queue), a result written more than once (`version` over 1: the
//! effect happened twice), a result of a value never enqueued. Planted bug
//! (`--plant separate-ack`): the result is written and the message acked in two
//! separate requests, so a redelivered message is processed twice.

use std::collections::BTreeMap;
use std::sync::atomic::AtomicI64;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::client::{Conn, Outcome, outcome_type, send};
use crate::history::{History, Op, Type};

const QUEUE: &str = "jepsen-work";
const RESULTS: &str = "jepsen/results/";
/// Visibility of a received message: short, so stalled workers lose their delivery.
const VISIBILITY_MS: u64 = 1000;
/// Result keys read per page at the end.
const PAGE: u64 = 1000;

pub struct Client {
    pub conn: Conn,
    /// Planted bug: the result is written and the message acked separately.
    pub separate_ack: bool,
    pub seed: u64,
}

/// A message a worker holds: its id, receipt, delivery and value.
struct Work {
    id: u64,
    receipt: String,
    delivery: u64,
    value: i64,
}

impl Client {
    pub async fn step(&mut self, history: &History, next_value: &AtomicI64) -> bool {
        if self.conn.rng.chance(40) {
            return crate::queue::enqueue_unique(&self.conn, history, QUEUE, self.seed, next_value).await;
        }
        let stall = self.conn.rng.chance(25);
        self.work(history, 500, stall).await.is_some()
    }

    /// Receives one message and, unless none came, processes it (stalling past its
    /// visibility first when `stall`). Whether a message came; `None` when the
    /// history is full.
    async fn work(&mut self, history: &History, wait_ms: u64, stall: bool) -> Option<bool> {
        let body = json!({ "max": 1, "visibility_ms": VISIBILITY_MS, "wait_ms": wait_ms });
        let received = send(self.conn.http.post(format!("{}/v1/queues/{QUEUE}/receive", self.conn.url)).json(&body)).await;
        let Outcome::Ok(answer) = received else { return Some(false) };
        let Some(message) = answer["messages"].as_array().and_then(|m| m.first()) else { return Some(false) };
        let work = Work {
            id: message["id"].as_u64().unwrap_or_default(),
            receipt: message["receipt"].as_str().unwrap_or_default().to_string(),
            delivery: message["delivery"].as_u64().unwrap_or_default(),
            value: message["payload"].as_str().and_then(|v| v.parse().ok()).unwrap_or(-1),
        };
        if stall {
            tokio::time::sleep(Duration::from_millis(VISIBILITY_MS + 500)).await;
        }
        let value = json!({ "id": work.id, "value": work.value, "delivery": work.delivery });
        if !self.conn.record(history, Type::Invoke, "process", Value::Null, value.clone(), None) {
            return None;
        }
        let outcome = self.commit(&work).await;
        let (kind, error) = outcome_type(&outcome);
        self.conn.record(history, kind, "process", Value::Null, value, error);
        Some(true)
    }

    /// Acks the message and writes its result: in one transaction, or (planted) in two
    /// requests.
    async fn commit(&self, work: &Work) -> Outcome {
        let key = format!("{RESULTS}{}", work.value);
        let result = format!("{} by process {} (delivery {})", work.value, self.conn.process, work.delivery);
        if self.separate_ack {
            let put = send(self.conn.http.put(format!("{}/v1/kv/{key}", self.conn.url)).body(result)).await;
            if !matches!(put, Outcome::Ok(_)) {
                return put;
            }
            return send(self.conn.http.post(format!("{}/v1/queues/{QUEUE}/ack", self.conn.url)).json(&json!({ "receipt": work.receipt }))).await;
        }
        let body = json!({
            "compare": [{ "queue": QUEUE, "receipt": work.receipt }],
            "success": [{ "ack": { "queue": QUEUE, "receipt": work.receipt } }, { "put": { "key": key, "value": result } }],
        });
        match send(self.conn.http.post(format!("{}/v1/txn", self.conn.url)).json(&body)).await {
            Outcome::Ok(answer) if answer["succeeded"] != true => Outcome::Fail("the delivery was no longer in flight".into()),
            outcome => outcome,
        }
    }

    /// After healing: works until the queue is empty, or `limit`. True when it emptied.
    pub async fn drain(&mut self, history: &History, limit: Duration) -> bool {
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline {
            match self.work(history, 1000, false).await {
                None => return false,
                Some(true) => continue,
                Some(false) => {}
            }
            let stats = send(self.conn.http.get(format!("{}/v1/queues/{QUEUE}", self.conn.url))).await;
            match stats {
                Outcome::Ok(stats) if stats["length"] == 0 => return true,
                Outcome::Fail(e) if e.starts_with("404") => return true,
                _ => {}
            }
        }
        false
    }

    /// Reads every result key with its version, recorded as one `results` operation
    /// (its value: `{"<value>": version}`). False when it could not.
    pub async fn read_results(&mut self, history: &History) -> bool {
        let mut versions = BTreeMap::new();
        let mut after: Option<String> = None;
        loop {
            let mut url = format!("{}/v1/kv?prefix={RESULTS}&limit={PAGE}&keys_only=true", self.conn.url);
            if let Some(after) = &after {
                url.push_str(&format!("&after={after}"));
            }
            let Outcome::Ok(page) = send(self.conn.http.get(url)).await else { return false };
            for item in page["items"].as_array().into_iter().flatten() {
                let (Some(key), Some(version)) = (item["key"].as_str(), item["version"].as_u64()) else { return false };
                versions.insert(key.trim_start_matches(RESULTS).to_string(), version);
            }
            match page["next_after"].as_str() {
                Some(next) if page["more"] == true => after = Some(next.to_string()),
                _ => break,
            }
        }
        self.conn.record(history, Type::Invoke, "results", Value::Null, Value::Null, None);
        self.conn.record(history, Type::Ok, "results", Value::Null, json!(versions), None)
    }
}

/// Checks an exactly-once history (see the module doc). `drained`: the final drain
/// emptied the queue.
pub fn check(ops: &[Op], drained: bool) -> Value {
    let pairs = crate::history::pair(ops);
    let mut invoked = BTreeMap::new();
    let (mut enqueued, mut processed, mut refused, mut unknown, mut redeliveries) = (Vec::new(), 0u64, 0u64, 0u64, 0u64);
    let mut results: Option<BTreeMap<String, u64>> = None;
    for pair in &pairs {
        match (pair.invoke.f.as_str(), pair.complete.kind) {
            ("enqueue", kind) => {
                if let Some(value) = pair.invoke.value.as_i64() {
                    invoked.insert(value, ());
                    if kind == Type::Ok {
                        enqueued.push(value);
                    }
                }
            }
            ("process", kind) => {
                redeliveries += u64::from(pair.invoke.value["delivery"].as_u64().unwrap_or(1) > 1);
                match kind {
                    Type::Ok => processed += 1,
                    Type::Fail => refused += 1,
                    _ => unknown += 1,
                }
            }
            ("results", Type::Ok) => results = serde_json::from_value(pair.complete.value.clone()).ok(),
            _ => {}
        }
    }
    let Some(results) = results else {
        return json!({ "checker": "exactly-once", "valid": "unknown", "why": "the result keys could not be read at the end" });
    };
    let lost: Vec<i64> = if drained { enqueued.iter().copied().filter(|v| !results.contains_key(&v.to_string())).collect() } else { Vec::new() };
    let twice: Vec<Value> = results.iter().filter(|(_, version)| **version > 1).map(|(value, version)| json!({ "value": value, "writes": version })).collect();
    let unexpected: Vec<&String> = results.keys().filter(|v| v.parse::<i64>().map_or(true, |v| !invoked.contains_key(&v))).collect();
    let mut anomalies = Vec::new();
    if !lost.is_empty() {
        anomalies.push(json!({ "kind": "an acknowledged enqueue has no result", "count": lost.len(), "values": lost.iter().take(50).collect::<Vec<_>>() }));
    }
    if !twice.is_empty() {
        anomalies.push(json!({ "kind": "a result was written more than once", "count": twice.len(), "examples": twice.iter().take(20).collect::<Vec<_>>() }));
    }
    if !unexpected.is_empty() {
        anomalies.push(json!({ "kind": "a result of a value never enqueued", "values": unexpected.iter().take(50).collect::<Vec<_>>() }));
    }
    let verdict = match (anomalies.is_empty(), drained) {
        (false, _) => "invalid",
        (true, false) => "unknown",
        (true, true) => "valid",
    };
    json!({
        "checker": "exactly-once",
        "valid": verdict,
        "drained": drained,
        "enqueue_ok": enqueued.len(),
        "results": results.len(),
        "processed": processed,
        "commits_refused": refused,
        "commits_unknown": unknown,
        "redeliveries": redeliveries,
        "anomalies": anomalies,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::op_at as at;

    fn history(results: Value) -> Vec<Op> {
        vec![
            at(1, 0, Type::Invoke, "enqueue", json!(1)),
            at(2, 0, Type::Ok, "enqueue", json!(1)),
            at(3, 0, Type::Invoke, "enqueue", json!(2)),
            at(4, 0, Type::Ok, "enqueue", json!(2)),
            at(5, 1, Type::Invoke, "process", json!({ "id": 1, "value": 1, "delivery": 1 })),
            at(6, 1, Type::Ok, "process", json!({ "id": 1, "value": 1, "delivery": 1 })),
            at(7, 2, Type::Invoke, "process", json!({ "id": 1, "value": 1, "delivery": 2 })),
            at(8, 2, Type::Fail, "process", json!({ "id": 1, "value": 1, "delivery": 2 })),
            at(9, 3, Type::Invoke, "results", Value::Null),
            at(10, 3, Type::Ok, "results", results),
        ]
    }

    #[test]
    fn lost_doubled_and_unexpected_results_are_caught() {
        let valid = check(&history(json!({ "1": 1, "2": 1 })), true);
        assert_eq!((valid["valid"].as_str(), valid["redeliveries"].as_u64(), valid["commits_refused"].as_u64()), (Some("valid"), Some(1), Some(1)), "{valid}");
        assert_eq!(check(&history(json!({ "1": 1, "2": 1 })), false)["valid"], "unknown", "an undrained queue proves nothing");
        for (results, kind) in [
            (json!({ "1": 1 }), "an acknowledged enqueue has no result"),
            (json!({ "1": 2, "2": 1 }), "a result was written more than once"),
            (json!({ "1": 1, "2": 1, "7": 1 }), "a result of a value never enqueued"),
        ] {
            let caught = check(&history(results.clone()), true);
            assert_eq!((caught["valid"].as_str(), caught["anomalies"][0]["kind"].as_str()), (Some("invalid"), Some(kind)), "{results}: {caught}");
        }
        assert_eq!(check(&history(json!({ "1": 1, "2": 1 }))[..8], true)["valid"], "unknown", "no final read, no verdict");
    }
}
