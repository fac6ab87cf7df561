//! The bodies of `/v1/leases` (docs/api.md, leases). Times are on the replicated
//! clock, in milliseconds.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// A lease as granted (`POST /v1/leases`, 201) or kept alive.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, ToSchema)]
pub struct LeaseAnswer {
    /// When it ends unless kept alive again.
    pub expires_at_ms: u64,
    pub id: u64,
    pub ttl_ms: u64,
}

/// `DELETE /v1/leases/{id}`: the lease ended, with its keys.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, ToSchema)]
pub struct LeaseRevoked {
    pub deleted_keys: u64,
    pub id: u64,
    /// The cluster revision at which its keys went.
    pub revision: u64,
    pub revoked: bool,
}

/// A ring membership a lease holds.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, ToSchema)]
pub struct LeaseRingMember {
    pub member: String,
    pub ring: String,
}

/// `GET /v1/leases/{id}`: the lease, its time left and what is attached to it.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, ToSchema)]
pub struct LeaseRead {
    pub applied_index: u64,
    /// The replicated clock as this node reads it (the leader's live reading; a stale
    /// read's clock as last ticked).
    pub clock_ms: u64,
    pub expires_at_ms: u64,
    pub id: u64,
    pub key_count: u64,
    /// Up to 1,000 attached keys, in order.
    pub keys: Vec<String>,
    /// Locks held or waited for, plus ring memberships.
    pub lock_count: u64,
    /// Up to 1,000 locks it holds or waits for.
    pub locks: Vec<String>,
    pub remaining_ms: u64,
    /// Up to 1,000 ring memberships.
    pub ring_members: Vec<LeaseRingMember>,
    pub ttl_ms: u64,
}
