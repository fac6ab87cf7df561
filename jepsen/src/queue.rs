//! The queue workload: clients enqueue unique values (retrying an unknown outcome
//! with the same `Idempotency-Key`), and receive and acknowledge; after the faults
//! are healed, everything left is drained. The checker then looks for lost work and
//! duplicated or resurrected work.
//!
//! Anomalies: an acknowledged enqueue that was never received (lost); a value
//! received that was never enqueued; one value under two message ids (a duplicate
//! enqueue, which idempotency keys must prevent); and a message received by a
//! receive that started after an acknowledgement of that message had succeeded (an
//! ack that was not applied). Redeliveries of unacknowledged messages are expected
//! (at-least-once) and only counted.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::client::{Conn, Outcome, outcome_type, send};
use crate::history::{History, Op, Type};

pub const QUEUE: &str = "jepsen-queue";
/// Visibility of a received message: short, so unacknowledged ones come back soon.
const VISIBILITY_MS: u64 = 3000;

pub struct Client {
    pub conn: Conn,
    /// Planted bug: acknowledgements are reported done without being sent.
    pub skip_acks: bool,
    pub seed: u64,
}

impl Client {
    fn base(&self) -> String {
        format!("{}/v1/queues/{QUEUE}", self.conn.url)
    }

    pub async fn step(&mut self, history: &History, next_value: &AtomicI64) -> bool {
        if self.conn.rng.chance(50) { self.enqueue(history, next_value).await } else { self.receive_and_ack(history, 3, 500).await.is_some() }
    }

    async fn enqueue(&mut self, history: &History, next_value: &AtomicI64) -> bool {
        enqueue_unique(&self.conn, history, QUEUE, self.seed, next_value).await
    }

    /// One receive, then an ack of each message it got; how many it got (`None`
    /// when the history is full).
    pub async fn receive_and_ack(&mut self, history: &History, max: u32, wait_ms: u64) -> Option<usize> {
        if !self.conn.record(history, Type::Invoke, "receive", Value::Null, Value::Null, None) {
            return None;
        }
        let body = json!({ "max": max, "visibility_ms": VISIBILITY_MS, "wait_ms": wait_ms });
        let outcome = send(self.conn.http.post(format!("{}/receive", self.base())).json(&body)).await;
        let messages: Vec<Value> = match &outcome {
            Outcome::Ok(answer) => answer["messages"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|m| json!({ "id": m["id"], "delivery": m["delivery"], "receipt": m["receipt"], "value": m["payload"].as_str().and_then(|v| v.parse::<i64>().ok()) }))
                .collect(),
            _ => Vec::new(),
        };
        let (kind, error) = outcome_type(&outcome);
        self.conn.record(history, kind, "receive", Value::Null, json!(messages), error);
        for message in &messages {
            if !self.conn.record(history, Type::Invoke, "ack", Value::Null, message.clone(), None) {
                return None;
            }
            let outcome = if self.skip_acks {
                Outcome::Ok(Value::Null)
            } else {
                send(self.conn.http.post(format!("{}/ack", self.base())).json(&json!({ "receipt": message["receipt"] }))).await
            };
            let (kind, error) = outcome_type(&outcome);
            self.conn.record(history, kind, "ack", Value::Null, message.clone(), error);
        }
        Some(messages.len())
    }

    /// After healing: receives (and acks) until the queue is empty, or `limit`.
    /// True when it emptied.
    pub async fn drain(&mut self, history: &History, limit: Duration) -> bool {
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline {
            let got = self.receive_and_ack(history, 10, 1000).await;
            if got == Some(0) {
                let stats = self.conn.http.get(self.base()).send().await;
                let length = match stats {
                    Ok(answer) if answer.status() == 404 => Some(0),
                    Ok(answer) => answer.json::<Value>().await.ok().and_then(|s| s["length"].as_u64()),
                    Err(_) => None,
                };
                if length == Some(0) {
                    return true;
                }
            }
        }
        false
    }
}

/// Enqueues the next unique value to `queue`, recorded as `enqueue`; an unknown
/// outcome is retried with the same `Idempotency-Key`, which must not enqueue twice.
/// False when the history is full.
pub async fn enqueue_unique(conn: &Conn, history: &History, queue: &str, seed: u64, next_value: &AtomicI64) -> bool {
    let value = next_value.fetch_add(1, Ordering::Relaxed);
    if !conn.record(history, Type::Invoke, "enqueue", Value::Null, json!(value), None) {
        return false;
    }
    let key = format!("jepsen-{seed}-{value}");
    let mut outcome = Outcome::Info("not sent".into());
    for attempt in 0..3 {
        if attempt > 0 {
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        outcome = send(conn.http.post(format!("{}/v1/queues/{queue}/messages", conn.url)).header("idempotency-key", &key).body(value.to_string())).await;
        if !matches!(outcome, Outcome::Info(_)) {
            break;
        }
    }
    let (kind, error) = outcome_type(&outcome);
    conn.record(history, kind, "enqueue", Value::Null, json!(value), error);
    true
}

/// Checks a queue history (see the module doc). `drained`: the final drain emptied
/// the queue (otherwise "lost" cannot be told from "still there").
pub fn check(ops: &[Op], drained: bool) -> Value {
    let pairs = crate::history::pair(ops);
    let mut invoked = BTreeSet::new();
    let mut enqueued = BTreeSet::new();
    // value → message ids it was received under; id → receive invocation times.
    let mut ids_of: BTreeMap<i64, BTreeSet<u64>> = BTreeMap::new();
    let mut receives: HashMap<u64, Vec<(u64, Value)>> = HashMap::new();
    let mut acked_at: HashMap<u64, (u64, Value)> = HashMap::new();
    let (mut deliveries, mut redeliveries, mut acks_refused) = (0u64, 0u64, 0u64);
    for pair in &pairs {
        match pair.invoke.f.as_str() {
            "enqueue" => {
                if let Some(v) = pair.invoke.value.as_i64() {
                    invoked.insert(v);
                    if pair.complete.kind == Type::Ok {
                        enqueued.insert(v);
                    }
                }
            }
            "receive" if pair.complete.kind == Type::Ok => {
                for message in pair.complete.value.as_array().into_iter().flatten() {
                    let (Some(id), Some(value)) = (message["id"].as_u64(), message["value"].as_i64()) else { continue };
                    deliveries += 1;
                    redeliveries += u64::from(message["delivery"].as_u64().unwrap_or(1) > 1);
                    ids_of.entry(value).or_default().insert(id);
                    receives.entry(id).or_default().push((pair.invoke.time, json!({ "invoke": pair.invoke, "complete": pair.complete })));
                }
            }
            "ack" => match pair.complete.kind {
                Type::Ok => {
                    if let Some(id) = pair.invoke.value["id"].as_u64() {
                        let earliest = acked_at.get(&id).is_none_or(|(t, _)| pair.complete.time < *t);
                        if earliest {
                            acked_at.insert(id, (pair.complete.time, json!({ "invoke": pair.invoke, "complete": pair.complete })));
                        }
                    }
                }
                Type::Fail => acks_refused += 1,
                _ => {}
            },
            _ => {}
        }
    }
    let received: BTreeSet<i64> = ids_of.keys().copied().collect();
    let lost: Vec<i64> = if drained { enqueued.difference(&received).copied().collect() } else { Vec::new() };
    let unexpected: Vec<i64> = received.difference(&invoked).copied().collect();
    let duplicated: Vec<Value> = ids_of.iter().filter(|(_, ids)| ids.len() > 1).map(|(v, ids)| json!({ "value": v, "ids": ids })).collect();
    let mut resurrected = Vec::new();
    for (id, (acked, ack)) in &acked_at {
        for (invoked_at, receive) in receives.get(id).into_iter().flatten() {
            if invoked_at > acked {
                resurrected.push(json!({ "id": id, "ack": ack, "later_receive": receive }));
            }
        }
    }
    let mut anomalies = Vec::new();
    if !lost.is_empty() {
        anomalies.push(json!({ "kind": "lost", "values": lost }));
    }
    if !unexpected.is_empty() {
        anomalies.push(json!({ "kind": "received but never enqueued", "values": unexpected }));
    }
    if !duplicated.is_empty() {
        anomalies.push(json!({ "kind": "duplicated (one value, several messages)", "values": duplicated }));
    }
    if !resurrected.is_empty() {
        resurrected.truncate(20);
        anomalies.push(json!({ "kind": "received again after a successful ack", "examples": resurrected }));
    }
    let verdict = if !anomalies.is_empty() {
        "invalid"
    } else if !drained {
        "unknown"
    } else {
        "valid"
    };
    json!({
        "checker": "queue",
        "valid": verdict,
        "drained": drained,
        "enqueue_invoked": invoked.len(),
        "enqueue_ok": enqueued.len(),
        "distinct_received": received.len(),
        "deliveries": deliveries,
        "redeliveries": redeliveries,
        "acks_refused": acks_refused,
        "anomalies": anomalies,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::history::op_at as at;

    #[test]
    fn finds_lost_duplicated_unexpected_and_resurrected_work() {
        let m = |id: u64, value: i64, delivery: u64| json!({ "id": id, "value": value, "delivery": delivery, "receipt": format!("{id}.{delivery}") });
        let ops = vec![
            at(1, 0, Type::Invoke, "enqueue", json!(1)),
            at(2, 0, Type::Ok, "enqueue", json!(1)),
            at(3, 0, Type::Invoke, "enqueue", json!(2)),
            at(4, 0, Type::Ok, "enqueue", json!(2)),
            at(5, 1, Type::Invoke, "receive", Value::Null),
            at(6, 1, Type::Ok, "receive", json!([m(10, 1, 1), m(11, 1, 1), m(12, 99, 1)])),
            at(7, 1, Type::Invoke, "ack", m(10, 1, 1)),
            at(8, 1, Type::Ok, "ack", m(10, 1, 1)),
            at(9, 1, Type::Invoke, "receive", Value::Null),
            at(10, 1, Type::Ok, "receive", json!([m(10, 1, 2)])),
        ];
        let result = check(&ops, true);
        assert_eq!(result["valid"], "invalid");
        let kinds: Vec<&str> = result["anomalies"].as_array().unwrap().iter().map(|a| a["kind"].as_str().unwrap()).collect();
        assert_eq!(kinds, ["lost", "received but never enqueued", "duplicated (one value, several messages)", "received again after a successful ack"]);
        assert_eq!(result["anomalies"][0]["values"], json!([2]));
        // Clean: enqueue, receive, ack; a redelivery of an unacked message is fine.
        let ok = vec![
            at(1, 0, Type::Invoke, "enqueue", json!(1)),
            at(2, 0, Type::Ok, "enqueue", json!(1)),
            at(3, 1, Type::Invoke, "receive", Value::Null),
            at(4, 1, Type::Ok, "receive", json!([m(10, 1, 1)])),
            at(5, 1, Type::Invoke, "receive", Value::Null),
            at(6, 1, Type::Ok, "receive", json!([m(10, 1, 2)])),
            at(7, 1, Type::Invoke, "ack", m(10, 1, 2)),
            at(8, 1, Type::Ok, "ack", m(10, 1, 2)),
        ];
        let result = check(&ok, true);
        assert_eq!(result["valid"], "valid", "{result}");
        assert_eq!(result["redeliveries"], 1);
        assert_eq!(check(&ok, false)["valid"], "unknown", "an undrained queue cannot prove nothing was lost");
    }
}
