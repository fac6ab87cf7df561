//! The bodies of `/v1/locks` (docs/api.md, locks).

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// Who holds a lock: the lease, and the fencing token of its grant.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, ToSchema)]
pub struct Holder {
    pub lease: u64,
    pub token: u64,
}

/// `POST /v1/locks/{name}/acquire`: held, with its fencing token.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, ToSchema)]
pub struct LockHeld {
    pub lease: u64,
    pub name: String,
    pub token: u64,
}

/// `POST /v1/locks/{name}/release`: let go; `holder` is who holds it now, if anyone.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, ToSchema)]
pub struct LockReleased {
    pub holder: Option<Holder>,
    pub name: String,
    pub released: bool,
}

/// `GET /v1/locks/{name}`: the holder and the leases waiting, first in line first.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, ToSchema)]
pub struct LockRead {
    pub applied_index: u64,
    pub holder: Option<Holder>,
    pub name: String,
    pub waiters: Vec<u64>,
}

/// `GET /v1/locks/{name}/check`: the token holds the lock.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, ToSchema)]
pub struct LockCheck {
    pub lease: u64,
    pub name: String,
    pub token: u64,
    pub valid: bool,
}
