//! The queue workload through Concord's Redis door, as Redis users write one: a
//! producer `LPUSH`es unique values, a worker `BRPOP`s them; after the faults are
//! healed, what is left is drained with `RPOP`. The checker looks for an
//! acknowledged push never popped (lost), a value popped twice, and a value popped
//! that was never pushed.
//!
//! A pop whose reply was lost (`UNCERTAIN`, a connection lost after it was sent) may
//! have taken an item: such a pop can account for one value never seen again, as a
//! Redis user would lose it too, and is counted. `TRYAGAIN` and a command that could
//! not be sent are definite: nothing happened.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::client::Conn;
use crate::cluster::REDIS_PORT;
use crate::history::{History, Op, Type};
use crate::resp::{Connection, Failure, Reply};

const QUEUE: &[u8] = b"jepsen/redis-queue";
/// How long one operation may take before its outcome counts as unknown.
const OPERATION_TIMEOUT: Duration = Duration::from_secs(3);
/// How long a worker's `BRPOP` waits for an item (its timeout, in seconds).
const POP_WAIT: &[u8] = b"0.5";
/// The planted bug's gap between looking at the last item and removing it.
const RACY_GAP: Duration = Duration::from_millis(20);

pub struct Client {
    pub conn: Conn,
    /// Planted bug: a pop looks at the last item (`LINDEX`) and removes it in a second
    /// command (`LREM`), so two workers can both take one item.
    pub racy_pops: bool,
    redis: Option<Connection>,
}

/// How an operation ended: its history type, value and error.
type Ended = (Type, Value, Option<String>);

impl Client {
    pub fn new(conn: Conn, racy_pops: bool) -> Self {
        Self { conn, racy_pops, redis: None }
    }

    fn address(&self) -> String {
        let host = self.conn.url.trim_start_matches("http://").split(':').next().unwrap_or_default().to_string();
        format!("{host}:{REDIS_PORT}")
    }

    pub async fn step(&mut self, history: &History, next_value: &AtomicI64) -> bool {
        if self.conn.rng.chance(50) {
            let value = next_value.fetch_add(1, Ordering::Relaxed);
            self.operation(history, "enqueue", json!(value)).await
        } else {
            self.operation(history, "dequeue", Value::Null).await
        }
    }

    /// Records `f` with `value`, runs it, and records how it ended; false when the
    /// history is full.
    async fn operation(&mut self, history: &History, f: &str, value: Value) -> bool {
        if !self.conn.record(history, Type::Invoke, f, Value::Null, value.clone(), None) {
            return false;
        }
        let (kind, result, error) = match tokio::time::timeout(OPERATION_TIMEOUT, self.operate(f, &value)).await {
            Ok(ended) => ended,
            Err(_) => (Type::Info, Value::Null, Some("timed out".into())),
        };
        if kind != Type::Ok {
            self.redis = None;
        }
        let recorded = if f == "enqueue" { value } else { result };
        self.conn.record(history, kind, f, Value::Null, recorded, error)
    }

    async fn operate(&mut self, f: &str, value: &Value) -> Ended {
        if self.redis.is_none() {
            match Connection::open(&self.address()).await {
                Ok(connection) => self.redis = Some(connection),
                Err(e) => {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    return (Type::Fail, Value::Null, Some(e));
                }
            }
        }
        match f {
            "enqueue" => self.push(value.as_i64().unwrap_or_default()).await,
            _ if self.racy_pops => self.racy_pop().await,
            _ => self.pop(&[b"BRPOP", QUEUE, POP_WAIT]).await,
        }
    }

    async fn call(&mut self, args: &[&[u8]]) -> Result<Reply, Failure> {
        match self.redis.as_mut() {
            Some(redis) => redis.call(args).await,
            None => Err(Failure::Unsent("no connection".into())),
        }
    }

    async fn push(&mut self, value: i64) -> Ended {
        match self.call(&[b"LPUSH", QUEUE, value.to_string().as_bytes()]).await {
            Ok(Reply::Integer(_)) => (Type::Ok, Value::Null, None),
            reply => after_write(reply),
        }
    }

    /// `BRPOP` or `RPOP`: the value taken (null when there was none).
    async fn pop(&mut self, command: &[&[u8]]) -> Ended {
        match self.call(command).await {
            Ok(Reply::Array(pair)) => match pair.get(1) {
                Some(Reply::Bulk(item)) => (Type::Ok, value_of(item), None),
                _ => (Type::Info, Value::Null, Some(format!("{} answered {pair:?}", String::from_utf8_lossy(command[0])))),
            },
            Ok(Reply::Bulk(item)) => (Type::Ok, value_of(&item), None),
            Ok(Reply::Null) => (Type::Ok, Value::Null, None),
            reply => after_write(reply),
        }
    }

    /// The planted bug: look, wait, remove, and report the item whatever the removal
    /// found.
    async fn racy_pop(&mut self) -> Ended {
        let item = match self.call(&[b"LINDEX", QUEUE, b"-1"]).await {
            Ok(Reply::Bulk(item)) => item,
            Ok(Reply::Null) => return (Type::Ok, Value::Null, None),
            reply => return after_write(reply),
        };
        tokio::time::sleep(RACY_GAP).await;
        match self.call(&[b"LREM", QUEUE, b"-1", &item]).await {
            Ok(Reply::Integer(_)) => (Type::Ok, value_of(&item), None),
            reply => after_write(reply),
        }
    }

    /// After healing: pops until the queue is empty, or `limit`. True when it emptied.
    pub async fn drain(&mut self, history: &History, limit: Duration) -> bool {
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline {
            if !self.conn.record(history, Type::Invoke, "dequeue", Value::Null, Value::Null, None) {
                return false;
            }
            let (kind, value, error) = match self.redis {
                Some(_) => self.pop(&[b"RPOP", QUEUE]).await,
                None => match Connection::open(&self.address()).await {
                    Ok(connection) => {
                        self.redis = Some(connection);
                        self.pop(&[b"RPOP", QUEUE]).await
                    }
                    Err(e) => (Type::Fail, Value::Null, Some(e)),
                },
            };
            let emptied = kind == Type::Ok && value.is_null();
            if kind != Type::Ok {
                self.redis = None;
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            self.conn.record(history, kind, "dequeue", Value::Null, value, error);
            if emptied {
                return true;
            }
        }
        false
    }
}

fn value_of(item: &[u8]) -> Value {
    std::str::from_utf8(item).ok().and_then(|text| text.parse::<i64>().ok()).map_or_else(|| json!(String::from_utf8_lossy(item)), |value| json!(value))
}

/// How a write (a push or a pop) ended when it did not answer as it should.
fn after_write(reply: Result<Reply, Failure>) -> Ended {
    match reply {
        Ok(Reply::Error(error)) if error.starts_with("UNCERTAIN") => (Type::Info, Value::Null, Some(error)),
        Ok(Reply::Error(error)) => (Type::Fail, Value::Null, Some(error)),
        Ok(other) => (Type::Info, Value::Null, Some(format!("unexpected reply {other:?}"))),
        Err(Failure::Unsent(e)) => (Type::Fail, Value::Null, Some(e)),
        Err(Failure::Lost(e)) => (Type::Info, Value::Null, Some(e)),
    }
}

/// Checks a history of this workload (see the module doc). `drained`: the final
/// drain emptied the queue (otherwise "lost" cannot be told from "still there").
pub fn check(ops: &[Op], drained: bool) -> Value {
    let pairs = crate::history::pair(ops);
    let (mut pushed, mut acknowledged) = (BTreeSet::new(), BTreeSet::new());
    let mut popped: BTreeMap<i64, u64> = BTreeMap::new();
    let mut unexpected = Vec::new();
    let (mut uncertain_pops, mut empty_pops) = (0u64, 0u64);
    for pair in &pairs {
        match (pair.invoke.f.as_str(), pair.complete.kind) {
            ("enqueue", kind) => {
                let value = pair.invoke.value.as_i64().unwrap_or_default();
                pushed.insert(value);
                if kind == Type::Ok {
                    acknowledged.insert(value);
                }
            }
            ("dequeue", Type::Ok) => match pair.complete.value.as_i64() {
                Some(value) => *popped.entry(value).or_default() += 1,
                None if pair.complete.value.is_null() => empty_pops += 1,
                None => unexpected.push(pair.complete.value.clone()),
            },
            ("dequeue", Type::Info) => uncertain_pops += 1,
            _ => {}
        }
    }
    unexpected.extend(popped.keys().filter(|value| !pushed.contains(value)).map(|value| json!(value)));
    let twice: Vec<Value> = popped.iter().filter(|(_, times)| **times > 1).map(|(value, times)| json!({ "value": value, "times": times })).collect();
    let never_popped: Vec<i64> = acknowledged.iter().filter(|value| !popped.contains_key(value)).copied().collect();
    // Each uncertain pop may have taken one of them.
    let lost: Vec<i64> = match drained && never_popped.len() as u64 > uncertain_pops {
        true => never_popped.clone(),
        false => Vec::new(),
    };
    let mut anomalies = Vec::new();
    if !lost.is_empty() {
        anomalies.push(json!({ "kind": "lost (acknowledged pushes never popped, more than the uncertain pops)", "values": lost }));
    }
    if !twice.is_empty() {
        anomalies.push(json!({ "kind": "popped twice", "values": twice }));
    }
    if !unexpected.is_empty() {
        anomalies.push(json!({ "kind": "popped but never pushed", "values": unexpected }));
    }
    let verdict = match (anomalies.is_empty(), drained) {
        (false, _) => "invalid",
        (true, false) => "unknown",
        (true, true) => "valid",
    };
    json!({
        "checker": "redis-queue",
        "valid": verdict,
        "drained": drained,
        "push_invoked": pushed.len(),
        "push_ok": acknowledged.len(),
        "popped": popped.len(),
        "empty_pops": empty_pops,
        "uncertain_pops": uncertain_pops,
        "unaccounted_by_uncertain_pops": if never_popped.len() as u64 <= uncertain_pops { never_popped.len() } else { 0 },
        "anomalies": anomalies,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::history::op_at as at;

    #[test]
    fn finds_lost_twice_popped_and_unexpected_values_and_lets_uncertain_pops_explain_losses() {
        let ops = vec![
            at(1, 0, Type::Invoke, "enqueue", json!(1)),
            at(2, 0, Type::Ok, "enqueue", json!(1)),
            at(3, 0, Type::Invoke, "enqueue", json!(2)),
            at(4, 0, Type::Ok, "enqueue", json!(2)),
            at(5, 1, Type::Invoke, "dequeue", Value::Null),
            at(6, 1, Type::Ok, "dequeue", json!(1)),
            at(7, 2, Type::Invoke, "dequeue", Value::Null),
            at(8, 2, Type::Ok, "dequeue", json!(1)),
            at(9, 2, Type::Invoke, "dequeue", Value::Null),
            at(10, 2, Type::Ok, "dequeue", json!(99)),
        ];
        let result = check(&ops, true);
        assert_eq!(result["valid"], "invalid");
        let kinds: Vec<&str> = result["anomalies"].as_array().unwrap().iter().map(|a| a["kind"].as_str().unwrap()).collect();
        assert_eq!(kinds, ["lost (acknowledged pushes never popped, more than the uncertain pops)", "popped twice", "popped but never pushed"]);
        assert_eq!(result["anomalies"][0]["values"], json!([2]));
        // Clean: one value popped once; another taken by a pop whose reply was lost.
        let ok = vec![
            at(1, 0, Type::Invoke, "enqueue", json!(1)),
            at(2, 0, Type::Ok, "enqueue", json!(1)),
            at(3, 0, Type::Invoke, "enqueue", json!(2)),
            at(4, 0, Type::Ok, "enqueue", json!(2)),
            at(5, 0, Type::Invoke, "enqueue", json!(3)),
            at(6, 0, Type::Info, "enqueue", Value::Null),
            at(7, 1, Type::Invoke, "dequeue", Value::Null),
            at(8, 1, Type::Ok, "dequeue", json!(1)),
            at(9, 1, Type::Invoke, "dequeue", Value::Null),
            at(10, 1, Type::Info, "dequeue", Value::Null),
            at(11, 1, Type::Invoke, "dequeue", Value::Null),
            at(12, 1, Type::Ok, "dequeue", json!(3)),
            at(13, 1, Type::Invoke, "dequeue", Value::Null),
            at(14, 1, Type::Ok, "dequeue", Value::Null),
        ];
        let result = check(&ok, true);
        assert_eq!(result["valid"], "valid", "{result}");
        assert_eq!((result["uncertain_pops"].as_u64(), result["unaccounted_by_uncertain_pops"].as_u64()), (Some(1), Some(1)));
        assert_eq!(check(&ok, false)["valid"], "unknown");
    }
}
