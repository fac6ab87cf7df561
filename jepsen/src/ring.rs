//! The ring workload: clients join and leave members of one ring, read the ring, and
//! look keys up, concurrently.
//!
//! Checks:
//! - membership behaves as a linearizable set (joins, leaves, a leave refused
//!   because the member was absent, and reads of the member list), with the same
//!   search as the register (`linear.rs`);
//! - epochs are monotonic in real time: an operation invoked after another completed
//!   never reports a smaller epoch, and a change after another a larger one;
//! - every read of a given epoch reports the same members, and every lookup's owners
//!   are the placement (`concord_client::placement`) of the members a read reported for the
//!   epoch the lookup names.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use concord_client::placement::Placement;
use serde_json::{Value, json};

use crate::client::{Conn, Outcome, send};
use crate::history::{Completed, History, Op, Type, pair};
use crate::linear::{self, Entry, Model, Verdict};

const RING: &str = "jepsen-ring";
const MEMBERS: u64 = 5;
const REPLICAS: usize = 2;

pub struct Client {
    pub conn: Conn,
    /// Planted bug: reads and lookups skip the linearizability check.
    pub stale_reads: bool,
}

/// Member names from the API's member objects.
fn names(members: &Value) -> Option<Vec<String>> {
    members.as_array()?.iter().map(|m| m["name"].as_str().map(String::from)).collect()
}

/// A list of names as the history records it.
fn strings(list: &Value) -> Option<Vec<String>> {
    list.as_array()?.iter().map(|m| m.as_str().map(String::from)).collect()
}

impl Client {
    fn record(&self, history: &History, kind: Type, f: &str, value: Value, error: Option<String>) -> bool {
        self.conn.record(history, kind, f, Value::Null, value, error)
    }

    pub async fn step(&mut self, history: &History) -> bool {
        let member = format!("m{}", 1 + self.conn.rng.below(MEMBERS));
        let roll = self.conn.rng.below(100);
        let base = format!("{}/v1/rings/{RING}", self.conn.url);
        let stale = if self.stale_reads { "consistency=stale&" } else { "" };
        let (f, invoke_value, request) = if roll < 30 {
            let body = json!({ "address": format!("10.0.0.{}:80", &member[1..]) });
            ("join", json!({ "member": member }), self.conn.http.put(format!("{base}/members/{member}")).json(&body))
        } else if roll < 55 {
            ("leave", json!({ "member": member }), self.conn.http.delete(format!("{base}/members/{member}")))
        } else if roll < 80 {
            ("read", Value::Null, self.conn.http.get(format!("{base}?{stale}")))
        } else {
            let key = format!("k{}", self.conn.rng.below(1000));
            ("lookup", json!({ "key": key }), self.conn.http.get(format!("{base}/lookup?{stale}key={key}&replicas={REPLICAS}")))
        };
        if !self.record(history, Type::Invoke, f, invoke_value.clone(), None) {
            return false;
        }
        let (kind, value, error) = match send(request).await {
            Outcome::Ok(body) => {
                let value = match f {
                    "read" => json!({ "epoch": body["epoch"], "members": names(&body["members"]) }),
                    "lookup" => json!({ "key": invoke_value["key"], "epoch": body["epoch"], "owners": names(&body["owners"]) }),
                    _ => json!({ "member": member, "epoch": body["epoch"] }),
                };
                (Type::Ok, value, None)
            }
            Outcome::Fail(e) => (Type::Fail, invoke_value, Some(e)),
            Outcome::Info(e) => (Type::Info, invoke_value, Some(e)),
        };
        self.record(history, kind, f, value, error)
    }
}

/// Membership as a set of member numbers (bit i: member `m<i>`).
struct MemberSet;

#[derive(Debug, Clone)]
enum SetOp {
    Join(u8),
    Leave(u8),
    /// A leave refused because the member was not there.
    Absent(u8),
    Read(u8),
}

impl Model for MemberSet {
    type State = u8;
    type Op = SetOp;
    fn step(&self, state: &u8, op: &SetOp) -> Option<u8> {
        match *op {
            SetOp::Join(bit) => Some(state | bit),
            SetOp::Leave(bit) => (state & bit != 0).then_some(state & !bit),
            SetOp::Absent(bit) => (state & bit == 0).then_some(*state),
            SetOp::Read(set) => (*state == set).then_some(*state),
        }
    }
}

fn bit(name: &str) -> Option<u8> {
    let n: u32 = name.strip_prefix('m')?.parse().ok()?;
    (1..=8).contains(&n).then(|| 1u8 << (n - 1))
}

fn set_entry(c: &Completed) -> Option<Entry<SetOp>> {
    let member = || bit(c.invoke.value["member"].as_str()?);
    let op = match (c.invoke.f.as_str(), c.complete.kind) {
        ("join", Type::Ok | Type::Info) => SetOp::Join(member()?),
        ("leave", Type::Ok | Type::Info) => SetOp::Leave(member()?),
        ("leave", Type::Fail) if c.complete.error.as_deref().is_some_and(|e| e.contains("member_not_found")) => SetOp::Absent(member()?),
        ("read", Type::Ok) => SetOp::Read(strings(&c.complete.value["members"])?.iter().map(|n| bit(n)).sum::<Option<u8>>()?),
        _ => return None,
    };
    let return_ns = (c.complete.kind != Type::Info).then_some(c.complete.time);
    Some(Entry { op, call_ns: c.invoke.time, return_ns })
}

fn ex(c: &Completed) -> Value {
    json!({ "invoke": c.invoke, "complete": c.complete })
}

pub fn check(ops: &[Op], budget: Duration) -> Value {
    let pairs = pair(ops);
    let mut anomalies = Vec::new();

    let usable: Vec<&Completed> = pairs.iter().filter(|c| set_entry(c).is_some()).collect();
    let entries: Vec<Entry<SetOp>> = usable.iter().filter_map(|c| set_entry(c)).collect();
    let set_verdict = linear::check(&MemberSet, 0, &entries, Instant::now() + budget);
    if let Verdict::Invalid { stuck, .. } = &set_verdict {
        anomalies.push(json!({ "kind": "membership is not a linearizable set", "stuck_at": ex(usable[*stuck]) }));
    }

    // Epochs in real time.
    let epoch_ops: Vec<&Completed> = pairs.iter().filter(|c| c.complete.kind == Type::Ok && c.complete.value["epoch"].is_u64()).collect();
    let mut by_completion = epoch_ops.clone();
    by_completion.sort_by_key(|c| c.complete.time);
    let mut backwards = Vec::new();
    let (mut highest, mut highest_change, mut cursor) = (None::<&Completed>, None::<&Completed>, 0);
    let mut by_invocation = epoch_ops.clone();
    by_invocation.sort_by_key(|c| c.invoke.time);
    let epoch = |c: &Completed| c.complete.value["epoch"].as_u64().unwrap_or(0);
    let is_change = |c: &Completed| c.invoke.f == "join" || c.invoke.f == "leave";
    for later in by_invocation {
        // Everything that completed before `later` was invoked.
        while cursor < by_completion.len() && by_completion[cursor].complete.time < later.invoke.time {
            let done = by_completion[cursor];
            if highest.is_none_or(|h| epoch(done) > epoch(h)) {
                highest = Some(done);
            }
            if is_change(done) && highest_change.is_none_or(|h| epoch(done) > epoch(h)) {
                highest_change = Some(done);
            }
            cursor += 1;
        }
        let smaller = highest.filter(|h| epoch(later) < epoch(h));
        let not_larger = highest_change.filter(|h| is_change(later) && epoch(later) <= epoch(h));
        if let Some(earlier) = smaller.or(not_larger)
            && backwards.len() < 20
        {
            backwards.push(json!({ "earlier": ex(earlier), "later": ex(later) }));
        }
    }
    if !backwards.is_empty() {
        anomalies.push(json!({ "kind": "epoch went backwards in real time", "examples": backwards }));
    }

    // One membership per epoch; lookups agree with it.
    let mut membership: BTreeMap<u64, (BTreeSet<String>, &Completed)> = BTreeMap::new();
    let mut conflicting = Vec::new();
    for read in pairs.iter().filter(|c| c.invoke.f == "read" && c.complete.kind == Type::Ok) {
        let Some(members) = strings(&read.complete.value["members"]) else { continue };
        let members: BTreeSet<String> = members.into_iter().collect();
        match membership.get(&epoch(read)) {
            Some((seen, first)) if *seen != members => conflicting.push(json!({ "first": ex(first), "then": ex(read) })),
            Some(_) => {}
            None => {
                membership.insert(epoch(read), (members, read));
            }
        }
    }
    if !conflicting.is_empty() {
        anomalies.push(json!({ "kind": "two memberships at one epoch", "examples": conflicting }));
    }
    let (mut lookups_checked, mut lookups_unchecked, mut wrong) = (0, 0, Vec::new());
    for lookup in pairs.iter().filter(|c| c.invoke.f == "lookup" && c.complete.kind == Type::Ok) {
        let Some((members, _)) = membership.get(&epoch(lookup)) else {
            lookups_unchecked += 1;
            continue;
        };
        lookups_checked += 1;
        let placement = Placement::new(members.iter().map(|m| (m.as_str(), 1)));
        let key = lookup.complete.value["key"].as_str().unwrap_or_default();
        let expected: Vec<&str> = placement.owners(key, REPLICAS);
        let got = strings(&lookup.complete.value["owners"]).unwrap_or_default();
        if got != expected && wrong.len() < 20 {
            wrong.push(json!({ "lookup": ex(lookup), "expected": expected }));
        }
    }
    if !wrong.is_empty() {
        anomalies.push(json!({ "kind": "a lookup disagrees with the membership at its epoch", "examples": wrong }));
    }
    let verdict = if !anomalies.is_empty() {
        "invalid"
    } else if set_verdict == Verdict::Unknown {
        "unknown"
    } else {
        "valid"
    };
    json!({
        "checker": "ring",
        "valid": verdict,
        "set_operations": entries.len(),
        "epochs_seen": membership.len(),
        "lookups_checked": lookups_checked,
        "lookups_without_a_read_of_their_epoch": lookups_unchecked,
        "anomalies": anomalies,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::history::op_at as at;

    #[test]
    fn flags_a_lost_join_backwards_epochs_and_a_wrong_lookup() {
        let join = |t: u64, epoch: u64| {
            [at(t, 0, Type::Invoke, "join", json!({ "member": "m1" })), at(t + 1, 0, Type::Ok, "join", json!({ "member": "m1", "epoch": epoch }))]
        };
        let read = |t: u64, epoch: u64, members: Value| {
            [at(t, 1, Type::Invoke, "read", Value::Null), at(t + 1, 1, Type::Ok, "read", json!({ "epoch": epoch, "members": members }))]
        };
        let mut ops: Vec<Op> = join(0, 1).into();
        ops.extend(read(10, 1, json!(["m1"])));
        assert_eq!(check(&ops, Duration::from_secs(5))["valid"], "valid");
        // A read after the join that does not see it, at an older epoch.
        let mut lost = ops.clone();
        lost.extend(read(20, 0, json!([])));
        let result = check(&lost, Duration::from_secs(5));
        let kinds: Vec<&str> = result["anomalies"].as_array().unwrap().iter().map(|a| a["kind"].as_str().unwrap()).collect();
        assert_eq!(kinds, ["membership is not a linearizable set", "epoch went backwards in real time"]);
        // A lookup at epoch 1 naming an owner that is not a member.
        let mut wrong = ops.clone();
        wrong.push(at(30, 2, Type::Invoke, "lookup", json!({ "key": "k1" })));
        wrong.push(at(31, 2, Type::Ok, "lookup", json!({ "key": "k1", "epoch": 1, "owners": ["m2"] })));
        assert_eq!(check(&wrong, Duration::from_secs(5))["anomalies"][0]["kind"], "a lookup disagrees with the membership at its epoch");
    }
}
