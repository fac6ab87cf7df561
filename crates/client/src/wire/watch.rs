//! The events of `GET /v1/watch` (docs/api.md, watches): `event: put` carries a
//! `KeyPut` as its JSON data, `event: delete` a `KeyDeleted`, and `type` says the
//! same. Fields are in alphabetical order, as in all the API's JSON.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// What happened to the key: the event's name and its data's `type`.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ChangeType {
    Put,
    Delete,
}

/// A key written: its new value and revisions, as a read would show them.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, ToSchema)]
pub struct KeyPut {
    pub create_revision: u64,
    /// `utf8` or `base64`: how `value` is written.
    pub encoding: String,
    pub key: String,
    /// The lease the key is attached to, if any.
    pub lease: Option<u64>,
    pub mod_revision: u64,
    /// The cluster revision of the change (the event's `id` on a revision's last event).
    pub revision: u64,
    /// `put`.
    pub r#type: ChangeType,
    pub value: String,
    pub version: u64,
}

/// A key deleted.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, ToSchema)]
pub struct KeyDeleted {
    pub key: String,
    pub revision: u64,
    /// `delete`.
    pub r#type: ChangeType,
}

/// The data of one watch event.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, ToSchema)]
#[serde(untagged)]
pub enum KeyChange {
    Put(KeyPut),
    Delete(KeyDeleted),
}
