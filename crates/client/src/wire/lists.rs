//! `GET /v1/lists/{key}`: a list (Redis's `LPUSH`, `RPUSH`, ... make them) as read.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// One item of a list.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, ToSchema)]
pub struct ListItem {
    /// `utf8` or `base64`: how `value` is written.
    pub encoding: String,
    pub value: String,
}

/// A list: its length, revisions and expiry, and the items from `start` to `stop`.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, ToSchema)]
pub struct ListContents {
    pub applied_index: u64,
    pub create_revision: u64,
    pub items: Vec<ListItem>,
    pub key: String,
    /// How many items the list holds (all of them, not only those answered).
    pub len: u64,
    pub mod_revision: u64,
    /// The cluster revision at the read.
    pub revision: u64,
    /// How long the list has left to live, if it has an expiry.
    pub ttl_ms: Option<u64>,
    pub version: u64,
}
