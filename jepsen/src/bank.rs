//! The bank workload: money moves between accounts in transactions, and every read
//! of all accounts must find it all.
//!
//! `ACCOUNTS` keys hold balances summing to `TOTAL` (set up once, in one
//! transaction). Clients read every account in one transaction (`get` of each), or
//! transfer: read, then one transaction conditioned on both accounts' `mod_revision`
//! that writes both new balances. After the faults are healed, one last read.
//!
//! Anomalies: an `ok` read whose balances do not sum to `TOTAL`, miss an account, or
//! hold a negative balance. Planted bug (`--plant split-transfers`): a transfer as two
//! separate compare-and-swap writes, so a read between them (or a second write that
//! fails) sees money missing.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::client::{Conn, Outcome, outcome_type, send};
use crate::history::{History, Op, Type};

pub const ACCOUNTS: u64 = 5;
pub const TOTAL: i64 = 100;

fn account(n: u64) -> String {
    format!("jepsen/bank/{n}")
}

/// One account as a read saw it.
#[derive(Clone, Copy)]
pub struct Balance {
    amount: i64,
    mod_revision: u64,
}

pub struct Client {
    pub conn: Conn,
    /// Planted bug: transfers as two separate writes.
    pub split_transfers: bool,
}

/// Creates the accounts (`TOTAL / ACCOUNTS` each) unless they exist, retrying until
/// `limit`. Not part of the history.
pub async fn setup(http: &reqwest::Client, url: &str, limit: Duration) -> Result<(), String> {
    let each = TOTAL / ACCOUNTS as i64;
    let body = json!({
        "compare": (0..ACCOUNTS).map(|n| json!({ "key": account(n), "absent": true })).collect::<Vec<_>>(),
        "success": (0..ACCOUNTS).map(|n| json!({ "put": { "key": account(n), "value": each.to_string() } })).collect::<Vec<_>>(),
    });
    let deadline = Instant::now() + limit;
    loop {
        match send(http.post(format!("{url}/v1/txn")).header("idempotency-key", "jepsen-bank-setup").json(&body)).await {
            Outcome::Ok(_) => return Ok(()),
            outcome if Instant::now() >= deadline => return Err(format!("cannot set up the bank accounts: {}", outcome_type(&outcome).1.unwrap_or_default())),
            _ => tokio::time::sleep(Duration::from_millis(200)).await,
        }
    }
}

impl Client {
    pub async fn step(&mut self, history: &History) -> bool {
        let Some(balances) = self.read(history).await else { return false };
        if self.conn.rng.chance(50) {
            return true;
        }
        match balances {
            Some(balances) => self.transfer(history, &balances).await,
            None => true,
        }
    }

    /// Reads every account in one transaction, recorded as `read`. `None` when the
    /// history is full; `Some(None)` when the read failed.
    pub async fn read(&mut self, history: &History) -> Option<Option<Vec<Balance>>> {
        if !self.conn.record(history, Type::Invoke, "read", Value::Null, Value::Null, None) {
            return None;
        }
        let body = json!({ "success": (0..ACCOUNTS).map(|n| json!({ "get": { "key": account(n) } })).collect::<Vec<_>>() });
        let outcome = send(self.conn.http.post(format!("{}/v1/txn", self.conn.url)).json(&body)).await;
        let balances: Option<Vec<Option<Balance>>> = match &outcome {
            Outcome::Ok(answer) => answer["results"].as_array().map(|results| {
                results
                    .iter()
                    .map(|r| Some(Balance { amount: r["item"]["value"].as_str()?.parse().ok()?, mod_revision: r["item"]["mod_revision"].as_u64()? }))
                    .collect()
            }),
            _ => None,
        };
        let (kind, error) = outcome_type(&outcome);
        let value = balances.as_ref().map_or(Value::Null, |b| json!(b.iter().map(|b| b.map(|b| b.amount)).collect::<Vec<_>>()));
        self.conn.record(history, kind, "read", Value::Null, value, error);
        Some(balances.and_then(|b| b.into_iter().collect()))
    }

    /// Moves a random amount between two random accounts, as the read saw them.
    async fn transfer(&mut self, history: &History, balances: &[Balance]) -> bool {
        let from = self.conn.rng.below(ACCOUNTS) as usize;
        let to = (from + 1 + self.conn.rng.below(ACCOUNTS - 1) as usize) % ACCOUNTS as usize;
        if balances[from].amount <= 0 {
            return true;
        }
        let amount = 1 + self.conn.rng.below(balances[from].amount.min(5) as u64) as i64;
        let value = json!({ "from": from, "to": to, "amount": amount });
        if !self.conn.record(history, Type::Invoke, "transfer", Value::Null, value.clone(), None) {
            return false;
        }
        let (from_balance, to_balance) = (balances[from], balances[to]);
        let puts = [(from, from_balance, from_balance.amount - amount), (to, to_balance, to_balance.amount + amount)];
        let outcome = if self.split_transfers {
            let mut outcome = Outcome::Ok(Value::Null);
            for (n, seen, amount) in puts {
                let put = self.conn.http.put(format!("{}/v1/kv/{}", self.conn.url, account(n as u64))).header("if-match", seen.mod_revision.to_string());
                outcome = send(put.body(amount.to_string())).await;
                if !matches!(outcome, Outcome::Ok(_)) {
                    break;
                }
            }
            outcome
        } else {
            let body = json!({
                "compare": puts.iter().map(|(n, seen, _)| json!({ "key": account(*n as u64), "mod_revision": seen.mod_revision })).collect::<Vec<_>>(),
                "success": puts.iter().map(|(n, _, amount)| json!({ "put": { "key": account(*n as u64), "value": amount.to_string() } })).collect::<Vec<_>>(),
            });
            match send(self.conn.http.post(format!("{}/v1/txn", self.conn.url)).json(&body)).await {
                Outcome::Ok(answer) if answer["succeeded"] != true => Outcome::Fail("a balance changed since the read".into()),
                outcome => outcome,
            }
        };
        let (kind, error) = outcome_type(&outcome);
        self.conn.record(history, kind, "transfer", Value::Null, value, error);
        true
    }
}

/// Checks a bank history (see the module doc).
pub fn check(ops: &[Op]) -> Value {
    let pairs = crate::history::pair(ops);
    let (mut reads, mut transfers_ok, mut transfers_failed, mut transfers_unknown) = (0u64, 0u64, 0u64, 0u64);
    let mut wrong = Vec::new();
    for pair in &pairs {
        match (pair.invoke.f.as_str(), pair.complete.kind) {
            ("read", Type::Ok) => {
                reads += 1;
                let balances: Vec<Option<i64>> = pair.complete.value.as_array().into_iter().flatten().map(Value::as_i64).collect();
                let complete = balances.len() == ACCOUNTS as usize && balances.iter().all(|b| b.is_some_and(|b| b >= 0));
                let sum: i64 = balances.iter().flatten().sum();
                if !complete || sum != TOTAL {
                    wrong.push(json!({ "balances": balances, "sum": sum, "read": pair.complete }));
                }
            }
            ("transfer", Type::Ok) => transfers_ok += 1,
            ("transfer", Type::Fail) => transfers_failed += 1,
            ("transfer", Type::Info) => transfers_unknown += 1,
            _ => {}
        }
    }
    let wrong_reads = wrong.len();
    wrong.truncate(20);
    let anomalies = if wrong.is_empty() {
        Vec::new()
    } else {
        vec![json!({ "kind": format!("a read did not find all {TOTAL} in {ACCOUNTS} non-negative accounts"), "count": wrong_reads, "examples": wrong })]
    };
    let verdict = match (anomalies.is_empty(), reads) {
        (false, _) => "invalid",
        (true, 0) => "unknown",
        (true, _) => "valid",
    };
    json!({
        "checker": "bank",
        "valid": verdict,
        "reads_ok": reads,
        "transfers_ok": transfers_ok,
        "transfers_failed": transfers_failed,
        "transfers_unknown": transfers_unknown,
        "anomalies": anomalies,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::op_at as at;

    #[test]
    fn a_read_that_misses_money_or_an_account_is_caught() {
        let ops = vec![
            at(1, 0, Type::Invoke, "read", Value::Null),
            at(2, 0, Type::Ok, "read", json!([20, 20, 20, 20, 20])),
            at(3, 1, Type::Invoke, "transfer", json!({ "from": 0, "to": 1, "amount": 3 })),
            at(4, 1, Type::Ok, "transfer", json!({ "from": 0, "to": 1, "amount": 3 })),
            at(5, 0, Type::Invoke, "read", Value::Null),
            at(6, 0, Type::Ok, "read", json!([17, 23, 20, 20, 20])),
            at(7, 2, Type::Invoke, "read", Value::Null),
            at(8, 2, Type::Fail, "read", Value::Null),
        ];
        let valid = check(&ops);
        assert_eq!((valid["valid"].as_str(), valid["reads_ok"].as_u64(), valid["transfers_ok"].as_u64()), (Some("valid"), Some(2), Some(1)), "{valid}");
        for bad in [json!([17, 20, 20, 20, 20]), json!([17, 23, 20, 20]), json!([-3, 43, 20, 20, 20]), json!([17, 23, 20, 20, null])] {
            let mut with_bad = ops.clone();
            with_bad.push(at(9, 3, Type::Invoke, "read", Value::Null));
            with_bad.push(at(10, 3, Type::Ok, "read", bad.clone()));
            assert_eq!(check(&with_bad)["valid"], "invalid", "{bad}");
        }
        assert_eq!(check(&ops[2..4])["valid"], "unknown", "no read, no verdict");
    }
}
