//! The bodies of `POST /v1/txn` (docs/api.md, "Transactions"): what a client sends
//! (`TxnRequest`) and what it gets back (`TxnResponse`). Values are UTF-8 text here;
//! the core (`state::txn`) holds them as bytes.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::kv::KeyItem;

/// Conditions, then the operations to apply when all hold (`success`) or when one
/// does not (`failure`): all in one log entry, all or nothing.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TxnRequest {
    #[serde(default)]
    pub compare: Vec<Compare>,
    #[serde(default)]
    pub success: Vec<Op>,
    #[serde(default)]
    pub failure: Vec<Op>,
}

/// One condition. It names one thing and one test of it: a `key` with one of
/// `absent`, `exists`, `value`, `mod_revision` or `version`; `lease_alive`; a
/// `lock` with the `token` that must hold it; a `ring` with its `epoch`; a `queue`
/// with a `receipt` that must name a delivery in flight.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Compare {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    /// `true`: the key does not exist.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub absent: Option<bool>,
    /// `true`: the key exists.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exists: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mod_revision: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<u64>,
    /// The lease exists (neither expired nor revoked).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lease_alive: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lock: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ring: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub epoch: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub queue: Option<String>,
    /// `<message id>.<delivery>`, as a receive returned it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub receipt: Option<String>,
}

/// One operation, named by its only field: `{"put": {"key": "a", "value": "1"}}`.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, ToSchema)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Op {
    /// Create or replace a key, attached to `lease` if given.
    Put {
        key: String,
        value: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        lease: Option<u64>,
    },
    /// Delete a key; refused (and the transaction with it) if it does not exist.
    Delete {
        key: String,
    },
    /// Read a key as the transaction sees it (after the writes before it).
    Get {
        key: String,
    },
    /// Read up to `limit` keys under `prefix` (100 if not given).
    List {
        prefix: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        limit: Option<u32>,
    },
    Enqueue {
        queue: String,
        value: String,
        #[serde(default)]
        delay_ms: u64,
    },
    Ack {
        queue: String,
        receipt: String,
    },
    Nack {
        queue: String,
        receipt: String,
        #[serde(default)]
        delay_ms: u64,
    },
    Extend {
        queue: String,
        receipt: String,
        visibility_ms: u64,
    },
    Publish {
        topic: String,
        value: String,
    },
    /// Let go of a lock, if `token` still holds it.
    Release {
        lock: String,
        token: u64,
    },
    /// End a lease now, with its keys and locks.
    Revoke {
        lease: u64,
    },
}

/// What a transaction did: the branch that ran and each of its operations' results.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, ToSchema)]
pub struct TxnResponse {
    /// The position in `compare` of the first condition that did not hold.
    pub failed_condition: Option<u32>,
    /// One per operation of the branch that ran, in order.
    pub results: Vec<OpResult>,
    /// The cluster revision after the transaction (every key it changed is at it).
    pub revision: u64,
    /// True when every condition held and `success` ran; false when `failure` ran.
    pub succeeded: bool,
}

/// One operation's result, named by `op` (then its fields in alphabetical order, as
/// in all of the API's JSON).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, ToSchema)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum OpResult {
    Put {
        create_revision: u64,
        created: bool,
        key: String,
        mod_revision: u64,
        version: u64,
    },
    Delete {
        key: String,
        revision: u64,
    },
    /// `item` is null when the key does not exist.
    Get {
        item: Option<KeyItem>,
        key: String,
    },
    List {
        items: Vec<KeyItem>,
        more: bool,
        prefix: String,
    },
    Enqueue {
        id: u64,
        queue: String,
    },
    Ack {
        id: u64,
        queue: String,
    },
    Nack {
        dead_lettered: bool,
        id: u64,
        queue: String,
    },
    Extend {
        in_flight_until_ms: u64,
        queue: String,
        receipt: String,
    },
    Publish {
        offset: u64,
        topic: String,
    },
    /// `next_token`: the token of the waiter the lock went to, if any.
    Release {
        lock: String,
        next_token: Option<u64>,
    },
    Revoke {
        deleted_keys: u64,
        lease: u64,
    },
}
