//! Transactions across primitives (`Command::Txn`): conditions, then one of two lists
//! of operations, all in one log entry, all or nothing.
//!
//! A transaction tests its `compare` conditions in order against the state before
//! it; when all hold it applies `success`, otherwise `failure` (etcd's `Txn`). Either
//! list may mix key writes and reads with queue, topic, lock and lease operations.
//! Operations run in order over the one write batch of the entry, so a read sees the
//! writes before it in the same transaction, and every key the transaction changes
//! takes the same new revision (history events are `revision ++ key`, so two changes
//! of one key in one transaction are refused as conflicting before anything runs).
//! An operation that is refused (an ack of a stale receipt, a revoke of a lease that
//! is gone) refuses the whole transaction: `machine::apply_all_or_nothing` rolls the
//! batch back, so nothing of it stays, and the refusal names the operation.
//!
//! Only operations whose effect does not depend on being alone in their entry are
//! offered: no receives (their receipts are the entry's index) and no lock acquires
//! or lease grants (ids and tokens are the index too). Every bound is a constant here
//! and is checked again in `apply`, so every replica refuses the same transactions.

use std::collections::HashSet;
use std::fmt;

use serde::{Deserialize, Serialize};

use super::access::Access;
use super::auth::Role;
use super::command::{FORMAT_FIRST, Outcome, Precondition, Receipt, Rejection, Stamp};
use super::expiry::Ttl;
use super::kv::{self, Holding, KvRecord, Put, RevisionAt};
use super::list::{self, ListCommand};
use super::store::{Batch, Cf, Meta, ViewError};
use super::{lease, lock, queue, ring, topic};

/// Most conditions one transaction tests.
pub const CONDITIONS_MAX: usize = 64;
/// Most operations in one transaction, both lists together.
pub const OPS_MAX: usize = 128;
/// Most bytes of names, keys, values and payloads in one transaction.
pub const BYTES_MAX: usize = 4 << 20;
/// Most keys the list operations of one branch may return together.
pub const LISTED_MAX: u32 = 1_000;

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct Txn {
    pub compare: Vec<Condition>,
    pub success: Vec<TxnOp>,
    pub failure: Vec<TxnOp>,
}

/// A test of the state before the transaction.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub enum Condition {
    Key {
        key: String,
        test: KeyTest,
    },
    /// The lease exists (granted and neither expired nor revoked).
    LeaseAlive {
        lease: u64,
    },
    /// `token` holds lock `lock`.
    LockHeld {
        lock: String,
        token: u64,
    },
    /// Ring `ring` is at `epoch` (0: it never had a member).
    RingEpoch {
        ring: String,
        epoch: u64,
    },
    /// `receipt` names a delivery in flight in queue `queue` (which must exist).
    ReceiptValid {
        queue: String,
        receipt: Receipt,
    },
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub enum KeyTest {
    Absent,
    Exists,
    Value(Vec<u8>),
    ModRevision(u64),
    Version(u64),
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub enum TxnOp {
    Put {
        key: String,
        value: Vec<u8>,
        lease: Option<u64>,
    },
    Delete {
        key: String,
    },
    Get {
        key: String,
    },
    List {
        prefix: String,
        limit: u32,
    },
    Enqueue {
        queue: String,
        payload: Vec<u8>,
        delay_ms: u64,
    },
    Ack {
        queue: String,
        receipt: Receipt,
    },
    Nack {
        queue: String,
        receipt: Receipt,
        delay_ms: u64,
    },
    Extend {
        queue: String,
        receipt: Receipt,
        visibility_ms: u64,
    },
    Publish {
        topic: String,
        payload: Vec<u8>,
    },
    LockRelease {
        lock: String,
        token: u64,
    },
    LeaseRevoke {
        lease: u64,
    },
    /// `Put`, and what becomes of the key's expiry (`expiry::Ttl`). Format 4.
    PutWithTtl {
        key: String,
        value: Vec<u8>,
        lease: Option<u64>,
        ttl: Ttl,
    },
    /// Changes only the expiry of a key (a string or a list). Format 4.
    Expire {
        key: String,
        ttl: Ttl,
    },
    /// A list command (`list`). Format 4.
    OnList(ListCommand),
}

/// What one operation of the branch that ran produced.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub enum TxnResult {
    /// A write's outcome, as the same command alone would have answered it.
    Wrote(Outcome),
    Got {
        key: String,
        record: Option<KvRecord>,
    },
    Listed {
        prefix: String,
        items: Vec<(String, KvRecord)>,
        more: bool,
    },
}

/// A transaction applied `success` (when every condition held) or `failure` (when
/// `failed_condition`, the first that did not hold, failed); `results` has one entry
/// per operation of that branch. `revision` is the cluster revision after it.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct TxnOutcome {
    pub succeeded: bool,
    pub failed_condition: Option<u32>,
    pub revision: u64,
    pub results: Vec<TxnResult>,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub enum TxnRejection {
    /// A transaction outside the bounds, or changing one thing twice.
    Invalid { reason: String },
    /// Condition `condition` (its position) could not be tested.
    ConditionRefused { condition: u32, rejection: Box<Rejection> },
    /// Operation `op` of the branch that ran (`succeeded`: success) was refused, so
    /// none of the transaction was applied.
    OpRefused { succeeded: bool, op: u32, rejection: Box<Rejection> },
}

impl Txn {
    /// `write`, and every name its conditions and operations touch.
    pub fn access(&self) -> Access {
        let conditions = self.compare.iter().filter_map(|condition| match condition {
            Condition::Key { key, .. } => Some(Access::name(Role::Write, "key", key)),
            Condition::LockHeld { lock, .. } => Some(Access::name(Role::Write, "lock", lock)),
            Condition::RingEpoch { ring, .. } => Some(Access::name(Role::Write, "ring", ring)),
            Condition::ReceiptValid { queue, .. } => Some(Access::name(Role::Write, "queue", queue)),
            Condition::LeaseAlive { .. } => None,
        });
        let ops = self.success.iter().chain(&self.failure).filter_map(|op| match op {
            TxnOp::Put { key, .. } | TxnOp::PutWithTtl { key, .. } | TxnOp::Expire { key, .. } | TxnOp::Delete { key } | TxnOp::Get { key } => {
                Some(Access::name(Role::Write, "key", key))
            }
            TxnOp::OnList(command) => Some(command.access()),
            TxnOp::List { prefix, .. } => Some(Access::prefix(Role::Write, prefix)),
            TxnOp::Enqueue { queue, .. } | TxnOp::Ack { queue, .. } | TxnOp::Nack { queue, .. } | TxnOp::Extend { queue, .. } => {
                Some(Access::name(Role::Write, "queue", queue))
            }
            TxnOp::Publish { topic, .. } => Some(Access::name(Role::Write, "topic", topic)),
            TxnOp::LockRelease { lock, .. } => Some(Access::name(Role::Write, "lock", lock)),
            TxnOp::LeaseRevoke { .. } => None,
        });
        conditions.chain(ops).fold(Access::unnamed(Role::Write), Access::and)
    }
}

impl fmt::Display for Txn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "transaction: {} conditions, {} + {} operations", self.compare.len(), self.success.len(), self.failure.len())
    }
}

impl TxnOp {
    /// What the operation changes, when it changes something another operation of
    /// the same transaction could also change and must not (two changes of one message,
    /// lock or lease conflict). Keys are not among them: since log format 5 a key may
    /// be changed again, each operation seeing the ones before (`changed_keys`).
    fn target(&self) -> Option<(&'static str, String)> {
        match self {
            TxnOp::Ack { queue, receipt } | TxnOp::Nack { queue, receipt, .. } | TxnOp::Extend { queue, receipt, .. } => {
                Some(("message", format!("{queue} {}", receipt.id)))
            }
            TxnOp::LockRelease { lock, .. } => Some(("lock", lock.clone())),
            TxnOp::LeaseRevoke { lease } => Some(("lease", lease.to_string())),
            TxnOp::Put { .. }
            | TxnOp::PutWithTtl { .. }
            | TxnOp::Expire { .. }
            | TxnOp::Delete { .. }
            | TxnOp::OnList(_)
            | TxnOp::Get { .. }
            | TxnOp::List { .. }
            | TxnOp::Enqueue { .. }
            | TxnOp::Publish { .. } => None,
        }
    }

    /// The keys it changes (a list move changes two).
    fn changed_keys(&self) -> Vec<&str> {
        match self {
            TxnOp::Put { key, .. } | TxnOp::PutWithTtl { key, .. } | TxnOp::Expire { key, .. } | TxnOp::Delete { key } => vec![key],
            TxnOp::OnList(command) => command.keys(),
            _ => Vec::new(),
        }
    }

    fn bytes(&self) -> usize {
        match self {
            TxnOp::Put { key, value, .. } | TxnOp::PutWithTtl { key, value, .. } => key.len() + value.len(),
            TxnOp::Expire { key, .. } => key.len(),
            TxnOp::OnList(command) => command.bytes(),
            TxnOp::Delete { key } | TxnOp::Get { key } => key.len(),
            TxnOp::List { prefix, .. } => prefix.len(),
            TxnOp::Enqueue { queue, payload, .. } => queue.len() + payload.len(),
            TxnOp::Ack { queue, .. } | TxnOp::Nack { queue, .. } | TxnOp::Extend { queue, .. } => queue.len(),
            TxnOp::Publish { topic, payload } => topic.len() + payload.len(),
            TxnOp::LockRelease { lock, .. } => lock.len(),
            TxnOp::LeaseRevoke { .. } => 0,
        }
    }

    /// The operation's name in the API (`docs/api.md`, transactions).
    pub fn name(&self) -> &'static str {
        match self {
            TxnOp::Put { .. } => "put",
            TxnOp::PutWithTtl { .. } => "put with ttl",
            TxnOp::Expire { .. } => "expire",
            TxnOp::OnList(_) => "list command",
            TxnOp::Delete { .. } => "delete",
            TxnOp::Get { .. } => "get",
            TxnOp::List { .. } => "list",
            TxnOp::Enqueue { .. } => "enqueue",
            TxnOp::Ack { .. } => "ack",
            TxnOp::Nack { .. } => "nack",
            TxnOp::Extend { .. } => "extend",
            TxnOp::Publish { .. } => "publish",
            TxnOp::LockRelease { .. } => "release",
            TxnOp::LeaseRevoke { .. } => "revoke",
        }
    }
}

impl Txn {
    /// The first log format that carries it (`Command::format_since`): 5 if a branch
    /// changes a key more than once, 4 if it holds an operation of format 4.
    pub fn format_since(&self) -> u32 {
        let again = [&self.success, &self.failure].into_iter().any(|ops| {
            let mut changed = HashSet::new();
            ops.iter().flat_map(TxnOp::changed_keys).any(|key| !changed.insert(key))
        });
        let format_4 = self.success.iter().chain(&self.failure).any(|op| matches!(op, TxnOp::PutWithTtl { .. } | TxnOp::Expire { .. } | TxnOp::OnList(_)));
        match (again, format_4) {
            (true, _) => 5,
            (false, true) => 4,
            (false, false) => FORMAT_FIRST,
        }
    }
}

impl Condition {
    fn bytes(&self) -> usize {
        match self {
            Condition::Key { key, test: KeyTest::Value(value) } => key.len() + value.len(),
            Condition::Key { key, .. } => key.len(),
            Condition::LockHeld { lock: name, .. } | Condition::RingEpoch { ring: name, .. } | Condition::ReceiptValid { queue: name, .. } => name.len(),
            Condition::LeaseAlive { .. } => 0,
        }
    }
}

impl Txn {
    /// Whether the transaction is within the bounds and free of conflicts; if not,
    /// why, in words for the client. Checked before proposing and again in `apply`.
    pub fn check_shape(&self) -> Result<(), String> {
        if self.compare.len() > CONDITIONS_MAX {
            return Err(format!("{} conditions, over the limit of {CONDITIONS_MAX}", self.compare.len()));
        }
        let ops = self.success.len() + self.failure.len();
        if ops > OPS_MAX {
            return Err(format!("{ops} operations, over the limit of {OPS_MAX} (success and failure together)"));
        }
        let bytes: usize = self.compare.iter().map(Condition::bytes).chain(self.success.iter().chain(&self.failure).map(TxnOp::bytes)).sum();
        if bytes > BYTES_MAX {
            return Err(format!("{bytes} bytes of names, keys, values and payloads, over the limit of {BYTES_MAX}"));
        }
        for (branch, ops) in [("success", &self.success), ("failure", &self.failure)] {
            let listed: u64 = ops.iter().map(|op| if let TxnOp::List { limit, .. } = op { u64::from(*limit) } else { 0 }).sum();
            if listed > u64::from(LISTED_MAX) {
                return Err(format!("the list operations of {branch} ask for {listed} keys together, over the limit of {LISTED_MAX}"));
            }
            let mut changed = HashSet::new();
            for (at, op) in ops.iter().enumerate() {
                if let Some((what, name)) = op.target()
                    && !changed.insert((what, name.clone()))
                {
                    return Err(format!("{branch}[{at}] ({}) changes {what} {name:?} again; one transaction changes each {what} at most once", op.name()));
                }
            }
        }
        Ok(())
    }
}

/// Applies `txn` as its entry's `stamp` says. A refusal leaves writes in `batch` that
/// the caller must roll back (`machine::apply_all_or_nothing` does).
pub fn apply(batch: &mut Batch<'_>, meta: &mut Meta, stamp: Stamp, txn: Txn) -> Result<Outcome, ViewError> {
    if let Err(reason) = txn.check_shape() {
        return Ok(TxnRejection::Invalid { reason }.into());
    }
    let mut failed_condition = None;
    for (at, condition) in txn.compare.iter().enumerate() {
        match holds(batch, condition)? {
            Ok(true) => {}
            Ok(false) => {
                failed_condition = Some(at as u32);
                break;
            }
            Err(rejection) => return Ok(TxnRejection::ConditionRefused { condition: at as u32, rejection: Box::new(rejection) }.into()),
        }
    }
    let succeeded = failed_condition.is_none();
    let ops = if succeeded { txn.success } else { txn.failure };
    let revision = RevisionAt::Shared { before: meta.revision };
    let mut results = Vec::with_capacity(ops.len());
    for (at, op) in ops.into_iter().enumerate() {
        match apply_op(batch, meta, stamp, revision, op)? {
            TxnResult::Wrote(Outcome::Rejected(rejection)) => {
                return Ok(TxnRejection::OpRefused { succeeded, op: at as u32, rejection: Box::new(rejection) }.into());
            }
            result => results.push(result),
        }
    }
    Ok(Outcome::Txn(TxnOutcome { succeeded, failed_condition, revision: meta.revision, results }))
}

/// Whether `condition` holds; a refusal when it names a queue that does not exist.
fn holds(batch: &Batch<'_>, condition: &Condition) -> Result<Result<bool, Rejection>, ViewError> {
    Ok(Ok(match condition {
        Condition::Key { key, test } => {
            // A list is a key too: its revisions are tested; it has no value.
            let holding = Holding::of(batch, key)?;
            match (test, holding.meta()) {
                (KeyTest::Absent, meta) => meta.is_none(),
                (KeyTest::Exists, meta) => meta.is_some(),
                (_, None) => false,
                (KeyTest::Value(value), Some(_)) => matches!(&holding, Holding::String(record) if record.value == *value),
                (KeyTest::ModRevision(revision), Some(meta)) => meta.mod_revision == *revision,
                (KeyTest::Version(version), Some(meta)) => meta.version == *version,
            }
        }
        Condition::LeaseAlive { lease: id } => lease::record(batch, *id)?.is_some(),
        Condition::LockHeld { lock: name, token } => lock::fence_holds(batch, name, *token)?.is_ok(),
        Condition::RingEpoch { ring: name, epoch } => ring::epoch(batch, name)? == *epoch,
        Condition::ReceiptValid { queue: name, receipt } => match queue::in_flight(batch, name, *receipt)? {
            Ok(_) => true,
            Err(Rejection::Queue(queue::QueueRejection::StaleReceipt { .. })) => false,
            Err(refusal) => return Ok(Err(refusal)),
        },
    }))
}

fn apply_op(batch: &mut Batch<'_>, meta: &mut Meta, stamp: Stamp, revision: RevisionAt, op: TxnOp) -> Result<TxnResult, ViewError> {
    let Stamp { index, now_ms } = stamp;
    let outcome = match op {
        TxnOp::Get { key } => {
            let record = batch.get_decoded(Cf::Kv, key.as_bytes())?;
            return Ok(TxnResult::Got { key, record });
        }
        TxnOp::List { prefix, limit } => {
            let page = kv::list_pending(batch, &prefix, limit as usize)?;
            return Ok(TxnResult::Listed { prefix, items: page.items, more: page.more });
        }
        TxnOp::Put { key, value, lease } => {
            kv::apply_put(batch, meta, revision, Put { key: &key, value, precondition: Precondition::None, lease, ttl: Ttl::Clear, flags: 0, now_ms })?
        }
        TxnOp::PutWithTtl { key, value, lease, ttl } => {
            kv::apply_put(batch, meta, revision, Put { key: &key, value, precondition: Precondition::None, lease, ttl, flags: 0, now_ms })?
        }
        TxnOp::Delete { key } => kv::apply_delete(batch, meta, revision, &key, Precondition::None)?,
        TxnOp::Expire { key, ttl } => kv::apply_expire(batch, meta, revision, &key, ttl, Precondition::None, now_ms)?,
        TxnOp::OnList(command) => list::apply(batch, meta, revision, command)?,
        TxnOp::Enqueue { queue, payload, delay_ms } => queue::enqueue(batch, meta, &queue, payload, delay_ms, now_ms)?,
        TxnOp::Ack { queue, receipt } => queue::ack(batch, &queue, receipt)?,
        TxnOp::Nack { queue, receipt, delay_ms } => queue::nack(batch, meta, &queue, receipt, delay_ms, now_ms)?,
        TxnOp::Extend { queue, receipt, visibility_ms } => queue::extend(batch, meta, &queue, receipt, visibility_ms, now_ms)?,
        TxnOp::Publish { topic, payload } => topic::publish(batch, meta, &topic, payload, now_ms)?,
        TxnOp::LockRelease { lock, token } => lock::release(batch, &lock, token, index)?,
        TxnOp::LeaseRevoke { lease } => lease::revoke(batch, meta, revision, lease, index)?,
    };
    Ok(TxnResult::Wrote(outcome))
}
