//! The bodies of `/v1/kv` (docs/api.md, keys): what a put, a get, a delete, a listing
//! and a prefix delete answer. Values are text when they are UTF-8, else base64, and
//! `encoding` says which. Fields are in alphabetical order, as in all the API's JSON.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// A key's revision bookkeeping (etcd's model).
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, ToSchema)]
pub struct KeyRevisions {
    /// The cluster revision that created the key (since its last deletion).
    pub create_revision: u64,
    /// The cluster revision of its latest change.
    pub mod_revision: u64,
    /// Writes since creation; 1 for a new key.
    pub version: u64,
}

/// A key in a listing or a transaction's read: without `value` and `encoding` in a
/// `keys_only` listing.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, ToSchema)]
pub struct KeyItem {
    pub create_revision: u64,
    /// `utf8` or `base64`: how `value` is written.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encoding: Option<String>,
    pub key: String,
    /// The lease the key is attached to, if any.
    pub lease: Option<u64>,
    pub mod_revision: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    pub version: u64,
}

/// `GET /v1/kv/{key}`: the key, and the applied entry and revision the read reflects.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, ToSchema)]
pub struct KeyAnswer {
    pub applied_index: u64,
    pub create_revision: u64,
    /// `utf8` or `base64`: how `value` is written.
    pub encoding: String,
    /// The key's flags (`PUT ?flags=`, Consul's `Flags`); 0 when none were set.
    #[serde(default)]
    pub flags: u64,
    pub key: String,
    pub lease: Option<u64>,
    pub mod_revision: u64,
    /// The cluster revision at the read.
    pub revision: u64,
    /// How long the key has left to live, by the replicated clock of the read
    /// (`PUT ?ttl_ms=`); `null` when it has no expiry.
    #[serde(default)]
    pub ttl_ms: Option<u64>,
    pub value: String,
    pub version: u64,
}

/// `PUT /v1/kv/{key}`: the key as written (`201` when `created`).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, ToSchema)]
pub struct PutAnswer {
    pub create_revision: u64,
    pub created: bool,
    pub key: String,
    pub mod_revision: u64,
    /// The cluster revision of this write.
    pub revision: u64,
    pub version: u64,
}

/// `DELETE /v1/kv/{key}`: the key's revisions before it went.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, ToSchema)]
pub struct DeleteAnswer {
    pub deleted: bool,
    pub key: String,
    pub prev: KeyRevisions,
    /// The cluster revision of the deletion.
    pub revision: u64,
}

/// `GET /v1/kv`: one page of a listing.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, ToSchema)]
pub struct ListAnswer {
    pub applied_index: u64,
    pub items: Vec<KeyItem>,
    /// Keys with the prefix remain after this page: ask again with `after=next_after`.
    pub more: bool,
    pub next_after: Option<String>,
    pub revision: u64,
}

/// `DELETE /v1/kv?prefix=`: how many keys went; `more` when some remain (repeat it).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, ToSchema)]
pub struct PrefixDeletedAnswer {
    pub deleted: u64,
    pub more: bool,
    pub prefix: String,
    /// The cluster revision after the last key that went.
    pub revision: u64,
}
