//! The lock workload through Consul's API (docs/consul.md), as a Consul user writes
//! it: each client keeps a session (`PUT /v1/session/create`, a 10 s TTL, no lock
//! delay, renewed before each attempt), takes the lock key with `PUT
//! /v1/kv/{LOCK}?acquire=`, reads the key's `LockIndex` as its fencing token, writes a
//! resource fenced by that token, and lets go with `?release=`. Some holders stall
//! past their session's TTL before they write, until the lock has passed on, so they
//! write while they still believe they hold it.
//!
//! The fenced write is a check-and-set on the resource, all through Consul's KV: read
//! it (its value starts with the token of the write it last took; its `ModifyIndex`),
//! give up if that token is larger than ours (`fence_rejected`), else `PUT ?cas=` that
//! index; a failed `cas` means another write came in between, and it reads again.
//!
//! Checked as the lock workload is (`lock::check`): tokens of successive grants
//! strictly increase, the resource never takes a smaller token after a larger one,
//! and no grant completes while an earlier holder's release that then succeeded was
//! still to come. The planted bug (`--plant blind-writes`): the write is a plain `PUT`.

use std::time::Duration;

use base64::Engine;
use serde_json::{Value, json};

use crate::client::{Conn, Outcome, outcome_type, send};
use crate::cluster::CONSUL_PORT;
use crate::history::{History, Type};

const LOCK: &str = "jepsen/consul-lock";
const RESOURCE: &str = "jepsen/consul-fenced-resource";
/// Consul's shortest session TTL.
const SESSION_TTL_S: u64 = 10;
/// How often a stalled holder looks whether the lock has passed on.
const STALL_POLL: Duration = Duration::from_millis(250);
/// Check-and-set attempts of one fenced write.
const CAS_ATTEMPTS_MAX: usize = 20;

pub struct Client {
    pub conn: Conn,
    /// Planted bug: the fenced write is a plain put.
    pub blind_writes: bool,
    /// The node's Consul door.
    base: String,
    session: Option<String>,
}

impl Client {
    pub fn new(conn: Conn, blind_writes: bool) -> Self {
        let host = conn.url.trim_start_matches("http://").split(':').next().unwrap_or_default();
        let base = format!("http://{host}:{CONSUL_PORT}");
        Self { conn, blind_writes, base, session: None }
    }

    fn record(&self, history: &History, kind: Type, f: &str, value: Value, error: Option<String>) -> bool {
        self.conn.record(history, kind, f, Value::Null, value, error)
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// A live session of this client's (renewed or created now); not in the history.
    async fn session(&mut self) -> Option<String> {
        if let Some(id) = &self.session {
            match send(self.conn.http.put(self.url(&format!("/v1/session/renew/{id}")))).await {
                Outcome::Ok(_) => return self.session.clone(),
                _ => self.session = None,
            }
        }
        let body = json!({ "TTL": format!("{SESSION_TTL_S}s"), "LockDelay": "0s", "Name": format!("jepsen-{}", self.conn.process) });
        if let Outcome::Ok(answer) = send(self.conn.http.put(self.url("/v1/session/create")).json(&body)).await {
            self.session = answer["ID"].as_str().map(str::to_string);
        }
        self.session.clone()
    }

    /// The key `key` as Consul answers it (its one entry), if it exists.
    async fn entry(&self, key: &str) -> Result<Option<Value>, String> {
        match send(self.conn.http.get(self.url(&format!("/v1/kv/{key}")))).await {
            Outcome::Ok(body) => Ok(body.get(0).cloned()),
            Outcome::Fail(e) if e.starts_with("404") => Ok(None),
            Outcome::Fail(e) | Outcome::Info(e) => Err(e),
        }
    }

    pub async fn step(&mut self, history: &History) -> bool {
        let Some(session) = self.session().await else {
            tokio::time::sleep(Duration::from_millis(100)).await;
            return true;
        };
        if !self.record(history, Type::Invoke, "acquire", json!({ "session": session }), None) {
            return false;
        }
        let acquired = send(self.conn.http.put(self.url(&format!("/v1/kv/{LOCK}?acquire={session}"))).body(self.conn.process.to_string())).await;
        // The token is the key's LockIndex while this session holds it; read after the
        // acquire, it is ours only if the key still names this session.
        let token = match &acquired {
            Outcome::Ok(Value::Bool(true)) => match self.entry(LOCK).await {
                Ok(Some(entry)) if entry["Session"].as_str() == Some(session.as_str()) => entry["LockIndex"].as_u64(),
                _ => None,
            },
            _ => None,
        };
        let (kind, error) = match (&acquired, token) {
            (Outcome::Ok(Value::Bool(true)), Some(_)) => (Type::Ok, None),
            // Acquired, then lost before its token could be read: not a grant to check.
            (Outcome::Ok(Value::Bool(true)), None) => (Type::Info, Some("lost before its token was read".into())),
            (Outcome::Ok(_), _) => (Type::Fail, Some("held by another session".into())),
            (outcome, _) => outcome_type(outcome),
        };
        self.record(history, kind, "acquire", json!({ "session": session, "token": token }), error);
        let Some(token) = token else { return true };

        // Sometimes the holder stalls (a pause of its process) past its session's TTL,
        // until the lock has passed on, and then writes as if it still held it.
        if self.conn.rng.chance(15) {
            self.stall_until_the_lock_passes_on(&session).await;
            self.session = None;
        }
        self.record(history, Type::Invoke, "write", json!({ "token": token }), None);
        let (kind, error) = self.fenced_write(token).await;
        self.record(history, kind, "write", json!({ "token": token }), error);

        self.record(history, Type::Invoke, "release", json!({ "token": token }), None);
        let released = send(self.conn.http.put(self.url(&format!("/v1/kv/{LOCK}?release={session}")))).await;
        let (kind, error) = match &released {
            Outcome::Ok(Value::Bool(true)) => (Type::Ok, None),
            Outcome::Ok(_) => (Type::Fail, Some("not held by this session".into())),
            outcome => outcome_type(outcome),
        };
        if kind == Type::Info {
            // The release may not have happened: a new session, so the next grant's
            // LockIndex is a new one, not this session's again.
            self.session = None;
        }
        self.record(history, kind, "release", json!({ "token": token }), error)
    }

    /// Waits until another session holds the lock (at most three session TTLs), and a
    /// moment more for the new holder to write.
    async fn stall_until_the_lock_passes_on(&self, session: &str) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(SESSION_TTL_S * 3);
        while tokio::time::Instant::now() < deadline {
            if let Ok(Some(entry)) = self.entry(LOCK).await
                && entry["Session"].as_str().is_some_and(|holder| holder != session)
            {
                break;
            }
            tokio::time::sleep(STALL_POLL).await;
        }
        tokio::time::sleep(STALL_POLL * 2).await;
    }

    /// Writes the resource with `token`, unless it took a larger one already.
    async fn fenced_write(&self, token: u64) -> (Type, Option<String>) {
        let value = format!("{token} by {}", self.conn.process);
        if self.blind_writes {
            return outcome_type(&send(self.conn.http.put(self.url(&format!("/v1/kv/{RESOURCE}"))).body(value)).await);
        }
        for _ in 0..CAS_ATTEMPTS_MAX {
            let entry = match self.entry(RESOURCE).await {
                Ok(entry) => entry,
                Err(e) => return (Type::Fail, Some(e)),
            };
            let (index, taken) = match &entry {
                Some(entry) => (entry["ModifyIndex"].as_u64().unwrap_or(0), token_of(entry)),
                None => (0, None),
            };
            if taken.is_some_and(|taken| taken > token) {
                return (Type::Fail, Some(format!("fence_rejected: the resource took token {taken:?}")));
            }
            match send(self.conn.http.put(self.url(&format!("/v1/kv/{RESOURCE}?cas={index}"))).body(value.clone())).await {
                Outcome::Ok(Value::Bool(true)) => return (Type::Ok, None),
                Outcome::Ok(_) => continue,
                outcome => return outcome_type(&outcome),
            }
        }
        (Type::Fail, Some(format!("the resource changed under each of {CAS_ATTEMPTS_MAX} attempts")))
    }
}

/// The token a resource entry was written with (its value starts with it).
fn token_of(entry: &Value) -> Option<u64> {
    let value = base64::engine::general_purpose::STANDARD.decode(entry["Value"].as_str()?).ok()?;
    String::from_utf8(value).ok()?.split_whitespace().next()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_token_is_read_from_the_start_of_the_value() {
        let entry = |text: &str| json!({ "Value": base64::engine::general_purpose::STANDARD.encode(text) });
        assert_eq!(token_of(&entry("12 by 3")), Some(12));
        assert_eq!(token_of(&entry("x")), None);
        assert_eq!(token_of(&json!({ "Value": null })), None);
    }
}
