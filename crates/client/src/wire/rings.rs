//! The bodies of `/v1/rings` (docs/api.md, rings): members, epochs, and the owners of
//! a key under consistent hashing.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// A member of a ring.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, ToSchema)]
pub struct RingMember {
    pub name: String,
    pub address: String,
    pub weight: u32,
    pub metadata: String,
    /// The lease it is attached to (it leaves when the lease ends).
    pub lease: Option<u64>,
}

/// `PUT` and `DELETE /v1/rings/{ring}/members/{member}`: the ring's epoch and size now.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, ToSchema)]
pub struct RingChanged {
    pub ring: String,
    pub member: String,
    pub epoch: u64,
    pub members: u64,
}

/// How members are placed on the circle, so a client can compute owners itself.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, ToSchema)]
pub struct Placement {
    /// `fnv1a64+splitmix64`.
    pub hash: String,
    pub vnodes_per_weight: u32,
    /// The text hashed for a member's `i`-th point: `{member}#{i}`.
    pub point: String,
}

/// `GET /v1/rings/{ring}`: its members at `epoch` (0: it never had one).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, ToSchema)]
pub struct RingStatus {
    pub ring: String,
    pub epoch: u64,
    pub members: Vec<RingMember>,
    pub placement: Placement,
    pub applied_index: u64,
}

/// `GET /v1/rings/{ring}/lookup`: the first owners of `key`, computed at `epoch`.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, ToSchema)]
pub struct RingLookup {
    pub ring: String,
    pub key: String,
    pub epoch: u64,
    pub owners: Vec<RingMember>,
}
