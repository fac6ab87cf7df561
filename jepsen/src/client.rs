//! What every workload's client shares: its connection to one node (process
//! number, node, HTTP client, random generator), recording operations, and the one
//! rule that turns an HTTP answer into a history outcome.

use serde_json::Value;

use crate::history::{History, Op, Process, Type};
use crate::rng::Rng;

/// A client process bound to one node.
pub struct Conn {
    pub process: u64,
    pub node: u64,
    /// The node's base URL.
    pub url: String,
    pub http: reqwest::Client,
    pub rng: Rng,
}

impl Conn {
    /// Records an operation of this process; false when the history is full.
    pub fn record(&self, history: &History, kind: Type, f: &str, key: Value, value: Value, error: Option<String>) -> bool {
        history.record(Op { process: Process::Client(self.process), kind, f: f.into(), key, value, time: 0, node: Some(self.node), error })
    }
}

/// The result of one request: ok with a body, definitely failed, or unknown.
pub enum Outcome {
    Ok(Value),
    Fail(String),
    Info(String),
}

/// Sends a request; 503 (not attempted) and 4xx are definite failures, anything
/// else that is not a success is unknown.
pub async fn send(request: reqwest::RequestBuilder) -> Outcome {
    match request.send().await {
        Ok(answer) => {
            let status = answer.status().as_u16();
            let body: Value = answer.json().await.unwrap_or(Value::Null);
            match status {
                200..=299 => Outcome::Ok(body),
                503 | 400..=499 => Outcome::Fail(format!("{status} {}", body["error"]["code"].as_str().unwrap_or(""))),
                _ => Outcome::Info(format!("{status} {}", body["error"]["code"].as_str().unwrap_or(""))),
            }
        }
        // A connect failure proves the request was never sent. (The node is down:
        // pause a little rather than spin against it.)
        Err(e) if e.is_connect() => {
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            Outcome::Fail(format!("connect: {e}"))
        }
        Err(e) => Outcome::Info(e.to_string()),
    }
}

/// The history type of an outcome, with the error it carries.
pub fn outcome_type(outcome: &Outcome) -> (Type, Option<String>) {
    match outcome {
        Outcome::Ok(_) => (Type::Ok, None),
        Outcome::Fail(e) => (Type::Fail, Some(e.clone())),
        Outcome::Info(e) => (Type::Info, Some(e.clone())),
    }
}
