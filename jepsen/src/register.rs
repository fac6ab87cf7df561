//! The register workload: many independent keys, each a register that clients read,
//! write (unique values) and compare-and-swap; checked for linearizability per key.
//!
//! Keys rotate every `KEY_LIFETIME`, so each key's history stays small enough to
//! check. A compare-and-swap names the value it expects by that value's
//! `mod_revision` (`If-Match`), which the client learned from a read or write of that
//! value: values are unique, so revision and value name the same write.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::client::{Conn, Outcome, outcome_type, send};
use crate::history::{Completed, History, Op, Type};
use crate::linear::{self, Entry, Register, RegisterOp, Verdict};

/// How long one set of keys is in use.
const KEY_LIFETIME: Duration = Duration::from_secs(10);
/// Keys in use at once.
const KEYS_AT_ONCE: u64 = 4;

/// What a client knows about a key: a value it saw and that value's revision.
type Known = HashMap<u64, (i64, u64)>;

pub struct Client {
    pub conn: Conn,
    /// Planted bug: reads skip the linearizability check (`consistency=stale`).
    pub stale_reads: bool,
    known: Known,
}

impl Client {
    pub fn new(conn: Conn, stale_reads: bool) -> Self {
        Self { conn, stale_reads, known: Known::new() }
    }

    fn record(&self, history: &History, kind: Type, f: &str, key: u64, value: Value, error: Option<String>) -> bool {
        self.conn.record(history, kind, f, json!(key), value, error)
    }

    /// One random operation on one of the keys in use.
    pub async fn step(&mut self, history: &History, started: Instant, next_value: &std::sync::atomic::AtomicI64) -> bool {
        let generation = started.elapsed().as_secs() / KEY_LIFETIME.as_secs();
        let key = generation * KEYS_AT_ONCE + self.conn.rng.below(KEYS_AT_ONCE);
        let url = format!("{}/v1/kv/jepsen/register/{key}", self.conn.url);
        let roll = self.conn.rng.below(100);
        let known = self.known.get(&key).copied();
        if roll < 50 {
            if !self.record(history, Type::Invoke, "read", key, Value::Null, None) {
                return false;
            }
            let read_url = if self.stale_reads { format!("{url}?consistency=stale") } else { url };
            let (kind, value, error) = match send(self.conn.http.get(read_url)).await {
                Outcome::Ok(body) => {
                    let value = body["value"].as_str().and_then(|v| v.parse::<i64>().ok());
                    if let (Some(value), Some(revision)) = (value, body["mod_revision"].as_u64()) {
                        self.known.insert(key, (value, revision));
                    }
                    (Type::Ok, json!(value), None)
                }
                Outcome::Fail(e) if e.starts_with("404") => (Type::Ok, Value::Null, None),
                Outcome::Fail(e) => (Type::Fail, Value::Null, Some(e)),
                Outcome::Info(e) => (Type::Info, Value::Null, Some(e)),
            };
            self.record(history, kind, "read", key, value, error);
        } else if roll < 80 || known.is_none() {
            let value = next_value.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            if !self.record(history, Type::Invoke, "write", key, json!(value), None) {
                return false;
            }
            let outcome = send(self.conn.http.put(&url).body(value.to_string())).await;
            let (kind, error) = self.settle(key, value, outcome);
            self.record(history, kind, "write", key, json!(value), error);
        } else if let Some((expected, revision)) = known {
            let value = next_value.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            if !self.record(history, Type::Invoke, "cas", key, json!([expected, value]), None) {
                return false;
            }
            let outcome = send(self.conn.http.put(&url).header("if-match", revision.to_string()).body(value.to_string())).await;
            let (kind, error) = self.settle(key, value, outcome);
            self.record(history, kind, "cas", key, json!([expected, value]), error);
        }
        true
    }

    /// The history type of a write's outcome; remembers the value it wrote.
    fn settle(&mut self, key: u64, value: i64, outcome: Outcome) -> (Type, Option<String>) {
        match outcome {
            Outcome::Ok(body) => {
                if let Some(revision) = body["mod_revision"].as_u64() {
                    self.known.insert(key, (value, revision));
                }
                (Type::Ok, None)
            }
            other => outcome_type(&other),
        }
    }
}

/// The per-key linearizability check of a register history.
pub fn check(ops: &[Op], budget: Duration) -> Value {
    let mut by_key: BTreeMap<u64, Vec<Completed>> = BTreeMap::new();
    for done in crate::history::pair(ops) {
        if let Some(key) = done.invoke.key.as_u64() {
            by_key.entry(key).or_default().push(done);
        }
    }
    let deadline = Instant::now() + budget;
    let (mut valid, mut unknown, mut anomalies) = (0, Vec::new(), Vec::new());
    for (key, done) in &by_key {
        let usable: Vec<&Completed> = done
            .iter()
            .filter(|c| c.complete.kind != Type::Fail)
            // A read with no answer tells nothing.
            .filter(|c| !(c.invoke.f == "read" && c.complete.kind == Type::Info))
            .collect();
        let entries: Vec<Entry<RegisterOp>> = usable
            .iter()
            .filter_map(|c| {
                let op = match c.invoke.f.as_str() {
                    "read" => RegisterOp::Read(c.complete.value.as_i64()),
                    "write" => RegisterOp::Write(c.invoke.value.as_i64()?),
                    "cas" => RegisterOp::Cas { expected: c.invoke.value[0].as_i64()?, new: c.invoke.value[1].as_i64()? },
                    _ => return None,
                };
                let return_ns = (c.complete.kind == Type::Ok).then_some(c.complete.time);
                Some(Entry { op, call_ns: c.invoke.time, return_ns })
            })
            .collect();
        match linear::check(&Register, None, &entries, deadline) {
            Verdict::Valid => valid += 1,
            Verdict::Unknown => unknown.push(*key),
            Verdict::Invalid { stuck, linearized } => {
                let stuck_op = usable[stuck];
                // The operations that overlap the one no order could place, and it.
                let window: Vec<Value> = usable
                    .iter()
                    .filter(|c| c.invoke.time <= stuck_op.complete.time && c.complete.time >= stuck_op.invoke.time.saturating_sub(1_000_000_000))
                    .map(|c| json!({ "invoke": c.invoke, "complete": c.complete }))
                    .collect();
                anomalies.push(json!({
                    "key": key,
                    "kind": "not linearizable",
                    "stuck_at": { "invoke": stuck_op.invoke, "complete": stuck_op.complete },
                    "linearized_before_stuck": linearized,
                    "ops": window,
                }));
            }
        }
    }
    let verdict = if !anomalies.is_empty() {
        "invalid"
    } else if !unknown.is_empty() {
        "unknown"
    } else {
        "valid"
    };
    json!({
        "checker": "linearizable-register",
        "valid": verdict,
        "keys": by_key.len(),
        "keys_valid": valid,
        "keys_unknown": unknown,
        "anomalies": anomalies,
    })
}
