//! `POST /v1/txn`: transactions across primitives (`state::txn`), as JSON.
//!
//! The body (`wire::txn::TxnRequest`) is checked here the way each primitive's own
//! route checks it (names, keys, values, receipts and every bound) and against the
//! caller's token for every name it touches, then proposed as one `Command::Txn`
//! (which the core stamps with the leader's clock). The answer renders the core's results as
//! `wire::txn::TxnResponse`; a refusal anywhere in it is the refusal's own error, led
//! by which condition or operation met it (`outcome::rejection_error`).
//!
//! While a member is known to speak only peer protocol 1 (a rolling upgrade from the
//! release before transactions), the leader refuses a transaction with `503
//! upgrade_in_progress` (`service::Core`): that member could not decode its entry.

use axum::Json;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};

use super::AppState;
use super::error::{ApiError, ErrorBody};
use super::extract::{ApiJson, ApiQuery};
use super::kv::{WriteQuery, key_item};
use super::named::check_message_size;
use super::outcome::propose;
use super::queues::{parse_receipt, receipt_text};
use crate::state::command::{Command, Outcome};
use crate::state::kv;
use crate::state::kv::KvOutcome;
use crate::state::lease::LeaseOutcome;
use crate::state::lock::LockOutcome;
use crate::state::queue::QueueOutcome;
use crate::state::topic::TopicOutcome;
use crate::state::txn::TxnOutcome;
use crate::state::txn::{Condition, KeyTest, Txn, TxnOp, TxnResult};
use crate::state::{queue, topic};
use crate::wire::txn::{Compare, Op, OpResult, TxnRequest, TxnResponse};

/// Keys a list operation returns when it names no `limit`.
const LIST_LIMIT_DEFAULT: u32 = 100;

#[utoipa::path(post, path = "/v1/txn", tag = "txn", operation_id = "txn", summary = "Test conditions, then apply one of two lists of operations, all or nothing", params(WriteQuery, ("Idempotency-Key" = Option<String>, Header, description = "Makes retries of this write apply at most once")), request_body = TxnRequest, responses((status = 200, description = "Applied: `succeeded` says which branch ran", body = TxnResponse), (status = "default", description = "An error; `code` says which (docs/api.md#error-codes); nothing was applied", body = ErrorBody)))]
pub async fn txn(
    State(app): State<AppState>,
    ApiQuery(_): ApiQuery<WriteQuery>,
    headers: HeaderMap,
    ApiJson(body): ApiJson<TxnRequest>,
) -> Result<Response, ApiError> {
    let check = Checks { app: &app };
    let compare =
        body.compare.iter().enumerate().map(|(at, c)| check.condition(c).map_err(|e| e.with_prefix(&format!("compare[{at}]")))).collect::<Result<_, _>>()?;
    let success = check.ops("success", &body.success)?;
    let failure = check.ops("failure", &body.failure)?;
    let txn = Txn { compare, success, failure };
    txn.check_shape().map_err(|reason| ApiError::bad_request("invalid_txn", format!("the transaction is refused: {reason}; nothing was changed")))?;
    let branches = (txn.success.clone(), txn.failure.clone());
    propose(&app, &headers, Command::Txn(txn), |outcome| render(outcome, branches)).await
}

/// What one request may hold. Whether the caller may touch every name is decided on
/// the whole transaction (`Txn::access`, checked by `Core::write`).
struct Checks<'a> {
    app: &'a AppState,
}

impl Checks<'_> {
    /// A key, queue, topic, lock or ring name: valid.
    fn name(&self, name: &str) -> Result<(), ApiError> {
        Ok(kv::validate_key(name, self.app.limits.key_bytes_max)?)
    }

    fn value(&self, value: &str) -> Result<Vec<u8>, ApiError> {
        kv::validate_value(value.as_bytes(), self.app.limits.value_bytes_max)?;
        Ok(value.as_bytes().to_vec())
    }

    fn condition(&self, compare: &Compare) -> Result<Condition, ApiError> {
        let Compare { key, absent, exists, value, mod_revision, version, lease_alive, lock, token, ring, epoch, queue, receipt } = compare.clone();
        let shape = || {
            ApiError::bad_request(
                "invalid_condition",
                "a condition names one thing and one test of it: key with absent, exists, value, mod_revision or version; lease_alive; lock with token; ring with epoch; queue with receipt (docs/api.md)",
            )
        };
        let condition = match (key, lease_alive, lock, ring, queue) {
            (Some(key), None, None, None, None) if token.is_none() && epoch.is_none() && receipt.is_none() => {
                self.name(&key)?;
                let test = match (absent, exists, value, mod_revision, version) {
                    (Some(true), None, None, None, None) => KeyTest::Absent,
                    (None, Some(true), None, None, None) => KeyTest::Exists,
                    (None, None, Some(value), None, None) => KeyTest::Value(self.value(&value)?),
                    (None, None, None, Some(revision), None) => KeyTest::ModRevision(revision),
                    (None, None, None, None, Some(version)) => KeyTest::Version(version),
                    _ => return Err(shape()),
                };
                Condition::Key { key, test }
            }
            _ if absent.is_some() || exists.is_some() || value.is_some() || mod_revision.is_some() || version.is_some() => return Err(shape()),
            (None, Some(lease), None, None, None) if token.is_none() && epoch.is_none() && receipt.is_none() => Condition::LeaseAlive { lease },
            (None, None, Some(lock), None, None) if epoch.is_none() && receipt.is_none() => {
                self.name(&lock)?;
                Condition::LockHeld { lock, token: token.ok_or_else(shape)? }
            }
            (None, None, None, Some(ring), None) if token.is_none() && receipt.is_none() => {
                self.name(&ring)?;
                Condition::RingEpoch { ring, epoch: epoch.ok_or_else(shape)? }
            }
            (None, None, None, None, Some(queue)) if token.is_none() && epoch.is_none() => {
                self.name(&queue)?;
                Condition::ReceiptValid { queue, receipt: parse_receipt(&receipt.ok_or_else(shape)?)? }
            }
            _ => return Err(shape()),
        };
        Ok(condition)
    }

    fn ops(&self, branch: &str, ops: &[Op]) -> Result<Vec<TxnOp>, ApiError> {
        ops.iter().enumerate().map(|(at, op)| self.op(op).map_err(|e| e.with_prefix(&format!("{branch}[{at}]")))).collect()
    }

    fn op(&self, op: &Op) -> Result<TxnOp, ApiError> {
        Ok(match op.clone() {
            Op::Put { key, value, lease } => {
                self.name(&key)?;
                TxnOp::Put { key, value: self.value(&value)?, lease }
            }
            Op::Delete { key } => {
                self.name(&key)?;
                TxnOp::Delete { key }
            }
            Op::Get { key } => {
                self.name(&key)?;
                TxnOp::Get { key }
            }
            Op::List { prefix, limit } => {
                let limit = limit.unwrap_or(LIST_LIMIT_DEFAULT);
                if limit == 0 {
                    return Err(ApiError::bad_request("invalid_limit", "a list's limit is at least 1"));
                }
                TxnOp::List { prefix, limit }
            }
            Op::Enqueue { queue, value, delay_ms } => {
                self.name(&queue)?;
                check_message_size(value.as_bytes(), queue::MESSAGE_BYTES_MAX)?;
                TxnOp::Enqueue { queue, payload: value.into_bytes(), delay_ms }
            }
            Op::Ack { queue, receipt } => {
                self.name(&queue)?;
                TxnOp::Ack { queue, receipt: parse_receipt(&receipt)? }
            }
            Op::Nack { queue, receipt, delay_ms } => {
                self.name(&queue)?;
                TxnOp::Nack { queue, receipt: parse_receipt(&receipt)?, delay_ms }
            }
            Op::Extend { queue, receipt, visibility_ms } => {
                self.name(&queue)?;
                TxnOp::Extend { queue, receipt: parse_receipt(&receipt)?, visibility_ms }
            }
            Op::Publish { topic, value } => {
                self.name(&topic)?;
                check_message_size(value.as_bytes(), topic::MESSAGE_BYTES_MAX)?;
                TxnOp::Publish { topic, payload: value.into_bytes() }
            }
            Op::Release { lock, token } => {
                self.name(&lock)?;
                TxnOp::LockRelease { lock, token }
            }
            Op::Revoke { lease } => TxnOp::LeaseRevoke { lease },
        })
    }
}

/// One operation's result, from the operation and what the core answered for it.
fn result(op: TxnOp, result: TxnResult) -> Option<OpResult> {
    Some(match (op, result) {
        (TxnOp::Put { key, .. }, TxnResult::Wrote(Outcome::Kv(KvOutcome::Put { meta, created, .. }))) => {
            OpResult::Put { key, created, create_revision: meta.create_revision, mod_revision: meta.mod_revision, version: meta.version }
        }
        (TxnOp::Delete { key }, TxnResult::Wrote(Outcome::Kv(KvOutcome::Deleted { revision, .. }))) => OpResult::Delete { key, revision },
        (TxnOp::Get { .. }, TxnResult::Got { key, record }) => OpResult::Get { item: record.map(|record| key_item(key.clone(), &record, true)), key },
        (TxnOp::List { .. }, TxnResult::Listed { prefix, items, more }) => {
            OpResult::List { prefix, items: items.into_iter().map(|(key, record)| key_item(key, &record, true)).collect(), more }
        }
        (TxnOp::Enqueue { .. }, TxnResult::Wrote(Outcome::Queue(QueueOutcome::Enqueued { queue, id }))) => OpResult::Enqueue { queue, id },
        (TxnOp::Ack { .. }, TxnResult::Wrote(Outcome::Queue(QueueOutcome::Acked { queue, id }))) => OpResult::Ack { queue, id },
        (TxnOp::Nack { .. }, TxnResult::Wrote(Outcome::Queue(QueueOutcome::Nacked { queue, id, dead_lettered }))) => {
            OpResult::Nack { queue, id, dead_lettered }
        }
        (TxnOp::Extend { .. }, TxnResult::Wrote(Outcome::Queue(QueueOutcome::Extended { queue, receipt, until_ms }))) => {
            OpResult::Extend { queue, receipt: receipt_text(receipt), in_flight_until_ms: until_ms }
        }
        (TxnOp::Publish { .. }, TxnResult::Wrote(Outcome::Topic(TopicOutcome::Published { topic, offset }))) => OpResult::Publish { topic, offset },
        (TxnOp::LockRelease { .. }, TxnResult::Wrote(Outcome::Lock(LockOutcome::Released { name, next }))) => {
            OpResult::Release { lock: name, next_token: next.map(|h| h.token) }
        }
        (TxnOp::LeaseRevoke { .. }, TxnResult::Wrote(Outcome::Lease(LeaseOutcome::Revoked { id, deleted_keys, .. }))) => {
            OpResult::Revoke { lease: id, deleted_keys }
        }
        _ => return None,
    })
}

fn render(outcome: Outcome, (success, failure): (Vec<TxnOp>, Vec<TxnOp>)) -> Option<Response> {
    let Outcome::Txn(TxnOutcome { succeeded, failed_condition, revision, results }) = outcome else { return None };
    let ops = if succeeded { success } else { failure };
    if ops.len() != results.len() {
        return None;
    }
    let results = ops.into_iter().zip(results).map(|(op, outcome)| result(op, outcome)).collect::<Option<Vec<_>>>()?;
    Some(Json(TxnResponse { succeeded, failed_condition, revision, results }).into_response())
}
