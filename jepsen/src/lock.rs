//! The lock workload: clients take one lock with their leases, write to a resource
//! fenced by their token (`Concord-Fence`), and release. Some holders stall past
//! their lease's TTL before writing (a GC pause), so the lock passes on while they
//! still believe they hold it.
//!
//! Checks, all in real-time order (an operation that completed before another was
//! invoked comes first):
//! - tokens of successive grants strictly increase;
//! - the fenced resource never accepted a write with a smaller token after one with
//!   a larger token;
//! - no two holders: a grant to B must not complete before A's release is invoked
//!   when that release then succeeded (the server confirmed A still held the lock).

use std::time::Duration;

use serde_json::{Value, json};

use crate::client::{Conn, Outcome, outcome_type, send};
use crate::history::{Completed, History, Op, Type};

const LOCK: &str = "jepsen-lock";
const RESOURCE: &str = "jepsen/fenced-resource";
const LEASE_TTL_MS: u64 = 2000;

pub struct Client {
    pub conn: Conn,
    /// Planted bug: fenced writes are sent without their fence.
    pub unfenced: bool,
    lease: Option<u64>,
}

impl Client {
    pub fn new(conn: Conn, unfenced: bool) -> Self {
        Self { conn, unfenced, lease: None }
    }

    fn record(&self, history: &History, kind: Type, f: &str, value: Value, error: Option<String>) -> bool {
        self.conn.record(history, kind, f, Value::Null, value, error)
    }

    /// A live lease of this client's (granted or kept alive now); not in the history.
    async fn lease(&mut self) -> Option<u64> {
        if let Some(id) = self.lease {
            match send(self.conn.http.post(format!("{}/v1/leases/{id}/keepalive", self.conn.url))).await {
                Outcome::Ok(_) => return Some(id),
                _ => self.lease = None,
            }
        }
        if let Outcome::Ok(body) = send(self.conn.http.post(format!("{}/v1/leases", self.conn.url)).json(&json!({ "ttl_ms": LEASE_TTL_MS }))).await {
            self.lease = body["id"].as_u64();
        }
        self.lease
    }

    pub async fn step(&mut self, history: &History) -> bool {
        let Some(lease) = self.lease().await else {
            tokio::time::sleep(Duration::from_millis(100)).await;
            return true;
        };
        if !self.record(history, Type::Invoke, "acquire", json!({ "lease": lease }), None) {
            return false;
        }
        let outcome = send(self.conn.http.post(format!("{}/v1/locks/{LOCK}/acquire", self.conn.url)).json(&json!({ "lease": lease, "wait_ms": 1000 }))).await;
        let token = match &outcome {
            Outcome::Ok(body) => body["token"].as_u64(),
            _ => None,
        };
        let (kind, error) = outcome_type(&outcome);
        self.record(history, kind, "acquire", json!({ "lease": lease, "token": token }), error);
        let Some(token) = token else { return true };

        // Sometimes the holder stalls past its lease before it writes.
        if self.conn.rng.chance(15) {
            tokio::time::sleep(Duration::from_millis(LEASE_TTL_MS * 2)).await;
            self.lease = None;
        }
        let body = format!("{token} by {}", self.conn.process);
        self.record(history, Type::Invoke, "write", json!({ "token": token }), None);
        let mut request = self.conn.http.put(format!("{}/v1/kv/{RESOURCE}", self.conn.url)).body(body);
        if !self.unfenced {
            request = request.header("concord-fence", format!("{LOCK}:{token}"));
        }
        let outcome = send(request).await;
        let (kind, error) = outcome_type(&outcome);
        self.record(history, kind, "write", json!({ "token": token }), error);

        self.record(history, Type::Invoke, "release", json!({ "token": token }), None);
        let outcome = send(self.conn.http.post(format!("{}/v1/locks/{LOCK}/release", self.conn.url)).json(&json!({ "token": token }))).await;
        let (kind, error) = outcome_type(&outcome);
        self.record(history, kind, "release", json!({ "token": token }), error)
    }
}

fn token(c: &Completed) -> Option<u64> {
    c.invoke.value["token"].as_u64().or(c.complete.value["token"].as_u64())
}

fn pair_json(c: &Completed) -> Value {
    json!({ "invoke": c.invoke, "complete": c.complete })
}

/// Pairs `(a, b)` of `ok` operations where `a` completed before `b` was invoked and
/// `bad(a, b)` holds (at most 20, with how many there were).
fn ordered_violations(ops: &[&Completed], bad: impl Fn(&Completed, &Completed) -> bool) -> (usize, Vec<Value>) {
    let mut count = 0;
    let mut examples = Vec::new();
    for a in ops {
        for b in ops {
            if a.complete.time < b.invoke.time && bad(a, b) {
                count += 1;
                if examples.len() < 20 {
                    examples.push(json!({ "earlier": pair_json(a), "later": pair_json(b) }));
                }
            }
        }
    }
    (count, examples)
}

pub fn check(ops: &[Op]) -> Value {
    let pairs = crate::history::pair(ops);
    let ok = |f: &str| pairs.iter().filter(|c| c.invoke.f == f && c.complete.kind == Type::Ok && token(c).is_some()).collect::<Vec<_>>();
    let (grants, writes) = (ok("acquire"), ok("write"));
    let releases = ok("release");
    let (grant_count, grant_examples) = ordered_violations(&grants, |a, b| token(b) <= token(a));
    let (write_count, write_examples) = ordered_violations(&writes, |a, b| token(b) < token(a));
    let mut overlaps = Vec::new();
    for release in &releases {
        let Some(held) = grants.iter().find(|g| token(g) == token(release)) else { continue };
        for other in grants.iter().filter(|g| token(g) > token(release)) {
            // `other` was granted while `held` was still held (its release succeeded later).
            if other.complete.time < release.invoke.time && other.complete.time > held.complete.time {
                overlaps.push(json!({ "holder": pair_json(held), "its_release": pair_json(release), "granted_meanwhile": pair_json(other) }));
            }
        }
    }
    let mut anomalies = Vec::new();
    if grant_count > 0 {
        anomalies.push(json!({ "kind": "a later grant had a token not larger", "count": grant_count, "examples": grant_examples }));
    }
    if write_count > 0 {
        anomalies.push(json!({ "kind": "the fenced resource accepted a smaller token after a larger one", "count": write_count, "examples": write_examples }));
    }
    if !overlaps.is_empty() {
        let count = overlaps.len();
        overlaps.truncate(20);
        anomalies.push(json!({ "kind": "two holders at once", "count": count, "examples": overlaps }));
    }
    let fenced_out = pairs.iter().filter(|c| c.invoke.f == "write" && c.complete.error.as_deref().is_some_and(|e| e.contains("fence_rejected"))).count();
    json!({
        "checker": "lock",
        "valid": if anomalies.is_empty() { "valid" } else { "invalid" },
        "grants": grants.len(),
        "fenced_writes_accepted": writes.len(),
        "fenced_writes_rejected": fenced_out,
        "releases_ok": releases.len(),
        "anomalies": anomalies,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(time: u64, process: u64, kind: Type, f: &str, token: u64) -> Op {
        crate::history::op_at(time, process, kind, f, json!({ "token": token }))
    }

    #[test]
    fn flags_stale_fenced_writes_decreasing_grants_and_two_holders() {
        // A holds token 5, stalls; B gets 9 and writes; A's late write is accepted.
        let stale_write = vec![
            at(1, 0, Type::Invoke, "acquire", 5),
            at(2, 0, Type::Ok, "acquire", 5),
            at(3, 1, Type::Invoke, "acquire", 9),
            at(4, 1, Type::Ok, "acquire", 9),
            at(5, 1, Type::Invoke, "write", 9),
            at(6, 1, Type::Ok, "write", 9),
            at(7, 0, Type::Invoke, "write", 5),
            at(8, 0, Type::Ok, "write", 5),
        ];
        let result = check(&stale_write);
        assert_eq!(result["valid"], "invalid");
        assert_eq!(result["anomalies"][0]["kind"], "the fenced resource accepted a smaller token after a larger one");
        // The same, but the late write is refused by the fence: fine.
        let mut fenced = stale_write.clone();
        fenced[7] = Op { error: Some("409 fence_rejected".into()), ..at(8, 0, Type::Fail, "write", 5) };
        assert_eq!(check(&fenced)["valid"], "valid", "{}", check(&fenced));
        // B granted while A held, and A's release then succeeded: two holders.
        let two = vec![
            at(1, 0, Type::Invoke, "acquire", 5),
            at(2, 0, Type::Ok, "acquire", 5),
            at(3, 1, Type::Invoke, "acquire", 9),
            at(4, 1, Type::Ok, "acquire", 9),
            at(5, 0, Type::Invoke, "release", 5),
            at(6, 0, Type::Ok, "release", 5),
        ];
        assert_eq!(check(&two)["anomalies"][0]["kind"], "two holders at once");
        // A grant after another with a smaller token.
        let shrinking = vec![
            at(1, 0, Type::Invoke, "acquire", 9),
            at(2, 0, Type::Ok, "acquire", 9),
            at(3, 1, Type::Invoke, "acquire", 5),
            at(4, 1, Type::Ok, "acquire", 5),
        ];
        assert_eq!(check(&shrinking)["anomalies"][0]["kind"], "a later grant had a token not larger");
    }
}
