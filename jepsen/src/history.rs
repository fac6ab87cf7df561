//! The history of a run: every operation's invocation and completion, and every
//! nemesis event, in the JSON-lines shape Jepsen uses.
//!
//! `type` is `invoke` when a client starts an operation, then `ok` (it happened),
//! `fail` (it definitely did not happen: a 503 before proposing, a refused
//! precondition) or `info` (unknown: a timeout, a 504, a lost connection; it may
//! have happened, and may still). Times are nanoseconds since the run started.

use std::io::Write;
use std::path::Path;
use std::sync::Mutex;
use std::time::Instant;

use serde::Serialize;
use serde_json::Value;

#[derive(Serialize, Clone, Copy, Debug, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Type {
    Invoke,
    Ok,
    Fail,
    Info,
}

/// Who did it: a client process, or the nemesis.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Process {
    Client(u64),
    Nemesis,
}

impl Serialize for Process {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Process::Client(n) => serializer.serialize_u64(*n),
            Process::Nemesis => serializer.serialize_str("nemesis"),
        }
    }
}

#[derive(Serialize, Clone, Debug)]
pub struct Op {
    pub process: Process,
    #[serde(rename = "type")]
    pub kind: Type,
    pub f: String,
    #[serde(skip_serializing_if = "Value::is_null")]
    pub key: Value,
    pub value: Value,
    pub time: u64,
    /// The node a client sent it to.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub node: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// Most operations one run records; a client stops invoking beyond it.
pub const OPS_MAX: usize = 2_000_000;

pub struct History {
    start: Instant,
    ops: Mutex<Vec<Op>>,
}

impl History {
    pub fn new() -> Self {
        Self { start: Instant::now(), ops: Mutex::new(Vec::new()) }
    }

    pub fn now_ns(&self) -> u64 {
        u64::try_from(self.start.elapsed().as_nanos()).unwrap_or(u64::MAX)
    }

    /// Records `op` stamped now; false when the history is full.
    pub fn record(&self, mut op: Op) -> bool {
        op.time = self.now_ns();
        let mut ops = self.ops.lock().unwrap_or_else(|p| p.into_inner());
        if ops.len() >= OPS_MAX {
            return false;
        }
        ops.push(op);
        true
    }

    pub fn ops(&self) -> Vec<Op> {
        self.ops.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    pub fn write_jsonl(&self, path: &Path) -> std::io::Result<()> {
        let mut file = std::io::BufWriter::new(std::fs::File::create(path)?);
        for op in self.ops.lock().unwrap_or_else(|p| p.into_inner()).iter() {
            serde_json::to_writer(&mut file, op)?;
            file.write_all(b"\n")?;
        }
        file.flush()
    }
}

/// An operation's invocation and its completion, paired.
#[derive(Clone, Debug)]
pub struct Completed {
    pub invoke: Op,
    pub complete: Op,
}

/// Pairs each client's invocations with their completions (a process has one
/// operation at a time). An invocation never completed counts as `info`.
pub fn pair(ops: &[Op]) -> Vec<Completed> {
    let mut open: std::collections::HashMap<u64, Op> = std::collections::HashMap::new();
    let mut done = Vec::new();
    for op in ops {
        let Process::Client(process) = op.process else { continue };
        match op.kind {
            Type::Invoke => {
                open.insert(process, op.clone());
            }
            _ => {
                if let Some(invoke) = open.remove(&process) {
                    done.push(Completed { invoke, complete: op.clone() });
                }
            }
        }
    }
    for (_, invoke) in open {
        let complete = Op { kind: Type::Info, time: u64::MAX, error: Some("never completed".into()), ..invoke.clone() };
        done.push(Completed { invoke, complete });
    }
    done.sort_by_key(|c| c.invoke.time);
    done
}

/// A client operation at `time`, for checkers' tests.
#[cfg(test)]
pub fn op_at(time: u64, process: u64, kind: Type, f: &str, value: Value) -> Op {
    Op { process: Process::Client(process), kind, f: f.into(), key: Value::Null, value, time, node: None, error: None }
}
