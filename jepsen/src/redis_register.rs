//! The register workload through Concord's Redis door: the same keys, operations and
//! linearizability check as `register`, spoken as a Redis user would speak them.
//! A read is `GET`, a write `SET`, and a compare-and-swap is Redis's check-and-set:
//! `WATCH key`, `GET key`, and, if the value is the one expected, `MULTI`, `SET`,
//! `EXEC` (a null `EXEC`, because the key moved after `WATCH`, is a failed swap).
//!
//! Outcomes: `TRYAGAIN` and a refused `WATCH`, `GET` or `MULTI` are definite failures;
//! `UNCERTAIN`, and a connection lost after a write or an `EXEC` was sent, are
//! unknown. A connection that failed is dropped and opened again for the next
//! operation.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::client::Conn;
use crate::cluster::REDIS_PORT;
use crate::history::{History, Type};
use crate::resp::{Connection, Failure, Reply};

/// How long one operation may take before its outcome counts as unknown.
const OPERATION_TIMEOUT: Duration = Duration::from_secs(3);
/// How long one set of keys is in use (as in `register`).
const KEY_LIFETIME: Duration = Duration::from_secs(10);
/// Keys in use at once.
const KEYS_AT_ONCE: u64 = 4;

pub struct Client {
    pub conn: Conn,
    /// Planted bug: the swap reads and then writes without `WATCH` and `MULTI`.
    pub unwatched_swaps: bool,
    redis: Option<Connection>,
    /// A value each key was seen to hold.
    known: HashMap<u64, i64>,
}

/// How an operation ended: its history type, value and error.
type Ended = (Type, Value, Option<String>);

fn definite(error: String) -> Ended {
    (Type::Fail, Value::Null, Some(error))
}

fn unknown(error: String) -> Ended {
    (Type::Info, Value::Null, Some(error))
}

/// The outcome of an error reply to a command that may have changed something.
fn refused_write(error: &str) -> Ended {
    if error.starts_with("UNCERTAIN") { unknown(error.to_string()) } else { definite(error.to_string()) }
}

impl Client {
    pub fn new(conn: Conn, unwatched_swaps: bool) -> Self {
        Self { conn, unwatched_swaps, redis: None, known: HashMap::new() }
    }

    fn address(&self) -> String {
        let host = self.conn.url.trim_start_matches("http://").split(':').next().unwrap_or_default().to_string();
        format!("{host}:{REDIS_PORT}")
    }

    /// One random operation on one of the keys in use.
    pub async fn step(&mut self, history: &History, started: Instant, next_value: &std::sync::atomic::AtomicI64) -> bool {
        let generation = started.elapsed().as_secs() / KEY_LIFETIME.as_secs();
        let key = generation * KEYS_AT_ONCE + self.conn.rng.below(KEYS_AT_ONCE);
        let roll = self.conn.rng.below(100);
        let (f, value) = match self.known.get(&key) {
            _ if roll < 50 => ("read", Value::Null),
            Some(expected) if roll >= 80 => ("cas", json!([*expected, next_value.fetch_add(1, std::sync::atomic::Ordering::Relaxed)])),
            _ => ("write", json!(next_value.fetch_add(1, std::sync::atomic::Ordering::Relaxed))),
        };
        if !self.conn.record(history, Type::Invoke, f, json!(key), value.clone(), None) {
            return false;
        }
        let (kind, result, error) = match tokio::time::timeout(OPERATION_TIMEOUT, self.operate(f, key, &value)).await {
            Ok(ended) => ended,
            Err(_) => {
                self.redis = None;
                unknown("timed out".into())
            }
        };
        let recorded = if f == "read" { result } else { value };
        self.conn.record(history, kind, f, json!(key), recorded, error)
    }

    async fn operate(&mut self, f: &str, key: u64, value: &Value) -> Ended {
        if self.redis.is_none() {
            match Connection::open(&self.address()).await {
                Ok(connection) => self.redis = Some(connection),
                Err(e) => {
                    // The node is down: pause a little rather than spin against it.
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    return definite(e);
                }
            }
        }
        let name = format!("jepsen/register/{key}");
        let ended = match f {
            "read" => self.read(key, &name).await,
            "write" => self.set(key, &name, value.as_i64().unwrap_or_default()).await,
            _ => self.swap(key, &name, value[0].as_i64().unwrap_or_default(), value[1].as_i64().unwrap_or_default()).await,
        };
        if ended.0 != Type::Ok {
            // After a failure the connection's state (a WATCH, a MULTI) is not known.
            self.redis = None;
        }
        ended
    }

    async fn call(&mut self, args: &[&[u8]]) -> Result<Reply, Failure> {
        match self.redis.as_mut() {
            Some(redis) => redis.call(args).await,
            None => Err(Failure::Unsent("no connection".into())),
        }
    }

    /// `GET`: the value, or a definite failure (a read changes nothing).
    async fn get(&mut self, name: &str) -> Result<Option<i64>, Ended> {
        match self.call(&[b"GET", name.as_bytes()]).await {
            Ok(Reply::Bulk(value)) => Ok(std::str::from_utf8(&value).ok().and_then(|text| text.parse().ok())),
            Ok(Reply::Null) => Ok(None),
            Ok(other) => Err(definite(format!("GET answered {other:?}"))),
            Err(Failure::Unsent(e) | Failure::Lost(e)) => Err(definite(e)),
        }
    }

    async fn read(&mut self, key: u64, name: &str) -> Ended {
        match self.get(name).await {
            Ok(value) => {
                if let Some(value) = value {
                    self.known.insert(key, value);
                }
                (Type::Ok, json!(value), None)
            }
            Err(ended) => ended,
        }
    }

    /// A write whose reply was `+OK` is done; see `refused_write` for the others.
    async fn set(&mut self, key: u64, name: &str, value: i64) -> Ended {
        match self.call(&[b"SET", name.as_bytes(), value.to_string().as_bytes()]).await {
            Ok(Reply::Simple(ok)) if ok == "OK" => {
                self.known.insert(key, value);
                (Type::Ok, Value::Null, None)
            }
            Ok(Reply::Error(error)) => refused_write(&error),
            Ok(other) => unknown(format!("SET answered {other:?}")),
            Err(Failure::Unsent(e)) => definite(e),
            Err(Failure::Lost(e)) => unknown(e),
        }
    }

    async fn swap(&mut self, key: u64, name: &str, expected: i64, new: i64) -> Ended {
        if self.unwatched_swaps {
            return match self.get(name).await {
                Ok(Some(current)) if current == expected => self.set(key, name, new).await,
                Ok(_) => definite("the value was not the one expected".into()),
                Err(ended) => ended,
            };
        }
        // Until EXEC is sent, nothing can have changed: every failure is definite.
        match self.call(&[b"WATCH", name.as_bytes()]).await {
            Ok(Reply::Simple(ok)) if ok == "OK" => {}
            Ok(other) => return definite(format!("WATCH answered {other:?}")),
            Err(Failure::Unsent(e) | Failure::Lost(e)) => return definite(e),
        }
        match self.get(name).await {
            Ok(Some(current)) if current == expected => {}
            Ok(_) => return definite("the value was not the one expected".into()),
            Err(ended) => return ended,
        }
        let new_text = new.to_string();
        for (command, wanted) in [(&[&b"MULTI"[..]][..], "OK"), (&[b"SET", name.as_bytes(), new_text.as_bytes()][..], "QUEUED")] {
            match self.call(command).await {
                Ok(Reply::Simple(answer)) if answer == wanted => {}
                Ok(other) => return definite(format!("{} answered {other:?}", String::from_utf8_lossy(command[0]))),
                Err(Failure::Unsent(e) | Failure::Lost(e)) => return definite(e),
            }
        }
        match self.call(&[b"EXEC"]).await {
            Ok(Reply::Array(_)) => {
                self.known.insert(key, new);
                (Type::Ok, Value::Null, None)
            }
            Ok(Reply::Null) => definite("EXEC: the key moved after WATCH".into()),
            Ok(Reply::Error(error)) => refused_write(&error),
            Ok(other) => unknown(format!("EXEC answered {other:?}")),
            Err(Failure::Unsent(e)) => definite(e),
            Err(Failure::Lost(e)) => unknown(e),
        }
    }
}
