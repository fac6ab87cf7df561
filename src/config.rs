//! Node configuration and the limits every input is checked against.
//!
//! Every configurable bound on client input is a field of `Limits`, with its default
//! here and its flag in `cli/serve.rs`, so `docs/api.md` can list them in one place.
//! (Fixed bounds live next to what they bound: the idempotency table's in
//! `state::idempotency`, the snapshot format's in `state::snapshot`.)
//! Limits are checked at the API edge before anything is proposed; the state machine
//! re-checks only what depends on the state, never a node-local setting (replicas
//! with different flags must still apply identically).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use crate::raft::NodeId;
use crate::state::snapshot::{KEY_BYTES_MAX, VALUE_BYTES_MAX};

/// Bytes a log entry or a stored record adds around a value (keys, revisions, framing).
const RECORD_OVERHEAD_BYTES: usize = 4096;

/// Bounds of the header size limit: room for a request with the longest key in its
/// path and every header a client sends, and below hyper's read buffer (about 400 KB).
const HEADER_BYTES_MIN: usize = 8 << 10;
const HEADER_BYTES_MAX: usize = 256 << 10;

/// Shortest `Idempotency-Key` limit accepted: room for the keys the client generates.
pub use concord_client::IDEMPOTENCY_KEY_BYTES_MIN;

/// Bounds on client input and on waiting.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Longest key, in bytes of UTF-8.
    pub key_bytes_max: usize,
    /// Largest value, in bytes.
    pub value_bytes_max: usize,
    /// Largest request body of any client request, in bytes.
    pub body_bytes_max: usize,
    /// Most keys one list call returns.
    pub list_limit_max: usize,
    /// Longest `Idempotency-Key` header, in bytes.
    pub idempotency_key_bytes_max: usize,
    /// How long a write waits to be committed before answering 504 (outcome unknown).
    pub write_timeout_ms: u64,
    /// How long a linearizable read waits for leadership confirmation before 503.
    pub read_timeout_ms: u64,
    /// How long a node waits for the leader when it forwards a request.
    pub forward_timeout_ms: u64,
    /// Most client requests served at once by one node; more get 503.
    pub concurrent_requests_max: usize,
    /// Largest peer (Raft RPC) request body, in bytes.
    pub peer_body_bytes_max: usize,
    /// Shortest lease TTL a client may ask for, in ms.
    pub lease_ttl_ms_min: u64,
    /// Longest lease TTL a client may ask for, in ms.
    pub lease_ttl_ms_max: u64,
    /// Longest any long poll (a lock acquire waiting in line, a blocking read) may
    /// wait, in ms.
    pub wait_ms_max: u64,
    /// Most open streams (watches and topic subscriptions) one node serves; more get 503.
    pub streams_max: usize,
    /// Most requests in progress (long polls included) from one client address on
    /// one node; more get 429.
    pub requests_per_client_max: usize,
    /// Most open streams from one client address on one node; more get 429.
    pub streams_per_client_max: usize,
    /// Most open HTTP connections (clients and peers) one node keeps; more wait to be
    /// accepted until one closes.
    pub connections_max: usize,
    /// How long a connection may take to send a request's headers (and how long an
    /// idle keep-alive connection stays open), in ms; then it is closed.
    pub header_read_timeout_ms: u64,
    /// Largest request head (request line and headers), in bytes (431 beyond it).
    pub header_bytes_max: usize,
    /// How long a request's body may take to arrive, in ms (408 beyond it).
    pub body_read_timeout_ms: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            key_bytes_max: 1024,
            value_bytes_max: 1 << 20,
            body_bytes_max: (1 << 20) + (1 << 16),
            list_limit_max: 1000,
            idempotency_key_bytes_max: 128,
            write_timeout_ms: 5000,
            read_timeout_ms: 5000,
            forward_timeout_ms: 50_000,
            concurrent_requests_max: 4096,
            peer_body_bytes_max: 128 << 20,
            lease_ttl_ms_min: 500,
            lease_ttl_ms_max: 24 * 3600 * 1000,
            wait_ms_max: 30_000,
            streams_max: 1024,
            requests_per_client_max: 1024,
            streams_per_client_max: 256,
            connections_max: 4096,
            header_read_timeout_ms: 10_000,
            header_bytes_max: 64 << 10,
            body_read_timeout_ms: 30_000,
        }
    }
}

impl Limits {
    pub fn write_timeout(&self) -> Duration {
        Duration::from_millis(self.write_timeout_ms)
    }
    pub fn read_timeout(&self) -> Duration {
        Duration::from_millis(self.read_timeout_ms)
    }
    pub fn forward_timeout(&self) -> Duration {
        Duration::from_millis(self.forward_timeout_ms)
    }
    pub fn connections(&self) -> crate::server::ConnectionLimits {
        crate::server::ConnectionLimits {
            connections_max: self.connections_max,
            header_read_timeout: Duration::from_millis(self.header_read_timeout_ms),
            header_bytes_max: self.header_bytes_max,
        }
    }
    /// The body bound of the client API (`peer` false) or of the peer routes.
    pub fn bodies(&self, peer: bool) -> crate::server::BodyLimits {
        let bytes_max = if peer { self.peer_body_bytes_max } else { self.body_bytes_max };
        crate::server::BodyLimits { bytes_max, read_timeout: Duration::from_millis(self.body_read_timeout_ms) }
    }

    /// Rejects combinations that cannot work with `timing`.
    pub fn validate(&self, timing: &RaftTiming) -> Result<(), String> {
        // A stored record is the value plus its revisions: leave room under the cap.
        let value_cap = VALUE_BYTES_MAX as usize - RECORD_OVERHEAD_BYTES;
        if self.value_bytes_max > value_cap {
            return Err(format!("value limit {} exceeds the hard cap of {value_cap} bytes", self.value_bytes_max));
        }
        if self.key_bytes_max > KEY_BYTES_MAX as usize {
            return Err(format!("key limit {} exceeds the hard cap of {KEY_BYTES_MAX} bytes", self.key_bytes_max));
        }
        if self.body_bytes_max < self.value_bytes_max {
            return Err("the body limit must be at least the value limit".into());
        }
        if self.requests_per_client_max == 0 || self.streams_per_client_max == 0 {
            return Err("the per-client request and stream limits must be positive".into());
        }
        if self.key_bytes_max == 0 || self.list_limit_max == 0 || self.concurrent_requests_max == 0 || self.streams_max == 0 {
            return Err("key, list, concurrency and stream limits must be positive".into());
        }
        // The CLI and the Rust client send a generated key with every write.
        if self.idempotency_key_bytes_max < IDEMPOTENCY_KEY_BYTES_MIN {
            return Err(format!("the Idempotency-Key limit must be at least {IDEMPOTENCY_KEY_BYTES_MIN} bytes"));
        }
        if self.lease_ttl_ms_min == 0 || self.lease_ttl_ms_min > self.lease_ttl_ms_max {
            return Err("lease TTL bounds must satisfy 0 < min <= max".into());
        }
        if self.write_timeout_ms == 0 || self.read_timeout_ms == 0 {
            return Err("write and read timeouts must be positive".into());
        }
        if self.connections_max == 0 || self.body_read_timeout_ms == 0 {
            return Err("the connection limit and the body read timeout must be positive".into());
        }
        // Peers and followers keep idle connections for `POOL_IDLE_TIMEOUT`: a node
        // that closed them sooner would race their next request.
        let pool_idle_ms = u64::try_from(crate::http_client::POOL_IDLE_TIMEOUT.as_millis()).unwrap_or(u64::MAX);
        if self.header_read_timeout_ms <= pool_idle_ms {
            return Err(format!("the header read timeout must be longer than {pool_idle_ms} ms, how long peers keep an idle connection"));
        }
        if !(HEADER_BYTES_MIN..=HEADER_BYTES_MAX).contains(&self.header_bytes_max) {
            return Err(format!("the header size limit must be between {HEADER_BYTES_MIN} and {HEADER_BYTES_MAX} bytes"));
        }
        // A forwarded request must outlast the leader's own deadlines, so the caller
        // gets the leader's definite 503 or 504 rather than a cut connection.
        // The longest handler: a long poll waits, then may confirm leadership (a read),
        // tick the clock and propose (two writes), as a queue receive does; a lock
        // acquire proposes, waits and proposes again.
        let step_ms = self.write_timeout_ms.max(self.read_timeout_ms);
        let longest_wait_ms = self.wait_ms_max.saturating_add(step_ms.saturating_mul(3));
        if self.forward_timeout_ms <= longest_wait_ms {
            return Err(format!(
                "the forward timeout must be longer than a full long poll: wait_ms_max plus three write or read timeouts ({longest_wait_ms} ms)"
            ));
        }
        // A full append batch (`payload_entries_max` values) must fit a peer request.
        let entries = usize::try_from(timing.payload_entries_max).unwrap_or(usize::MAX);
        let batch_bytes = self.body_bytes_max.saturating_add(RECORD_OVERHEAD_BYTES).saturating_mul(entries);
        if self.peer_body_bytes_max < batch_bytes {
            return Err(format!("--peer-body-bytes-max must be at least {batch_bytes} bytes ({entries} entries of the body limit) for this body limit"));
        }
        Ok(())
    }
}

/// Consensus timing and snapshot policy.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RaftTiming {
    pub heartbeat_ms: u64,
    pub election_timeout_min_ms: u64,
    pub election_timeout_max_ms: u64,
    /// Build a snapshot (and purge the log behind it) after this many new entries.
    pub snapshot_after_entries: u64,
    /// Most entries per append RPC.
    pub payload_entries_max: u64,
}

impl Default for RaftTiming {
    fn default() -> Self {
        Self {
            // openraft 0.9 also uses this as the deadline of every append RPC, including
            // the follower's fsync, so it must fit a full batch (`payload_entries_max`).
            heartbeat_ms: 150,
            election_timeout_min_ms: 800,
            election_timeout_max_ms: 1600,
            snapshot_after_entries: 50_000,
            payload_entries_max: 32,
        }
    }
}

/// Everything one node needs to start.
#[derive(Clone, Debug)]
pub struct NodeConfig {
    pub id: NodeId,
    /// Address the HTTP listener binds.
    pub listen: String,
    /// Address peers and clients use to reach this node (`host:port`).
    pub advertise: String,
    /// Address the Redis door (`resp`) binds, if it is on.
    pub redis_listen: Option<String>,
    /// Address the Consul door (`consul`) binds, if it is on.
    pub consul_listen: Option<String>,
    pub data_dir: PathBuf,
    /// The first membership of a new cluster (id → `host:port`); empty with `join`.
    pub initial_cluster: BTreeMap<NodeId, String>,
    /// URL of a member of an existing cluster to ask to add this node.
    pub join: Option<String>,
    /// The admin token to join with, when the cluster requires tokens.
    pub join_token: Option<String>,
    pub limits: Limits,
    pub timing: RaftTiming,
    /// Memory for the state database's caches and memtables, in bytes.
    pub cache_bytes: usize,
    /// The secret peers must present (`--peer-secret-file`), if any.
    pub peer_secret: crate::raft::peer_auth::PeerSecret,
    /// TLS for the listener and for reaching peers (`--tls-cert`, ...), if any.
    pub tls: Option<crate::tls::NodeTls>,
}

/// Parses `1=127.0.0.1:7001,2=127.0.0.1:7002`.
pub fn parse_initial_cluster(text: &str) -> Result<BTreeMap<NodeId, String>, String> {
    let mut members = BTreeMap::new();
    for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (id, addr) = part.split_once('=').ok_or_else(|| format!("initial cluster entry {part:?} is not ID=HOST:PORT"))?;
        let id: NodeId = id.trim().parse().map_err(|_| format!("node id {id:?} is not a number"))?;
        let addr = addr.trim().trim_start_matches("http://").to_string();
        if addr.is_empty() {
            return Err(format!("node {id} has an empty address"));
        }
        if members.insert(id, addr).is_some() {
            return Err(format!("node id {id} appears twice"));
        }
    }
    if members.is_empty() {
        return Err("the initial cluster is empty".into());
    }
    Ok(members)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn initial_cluster_parsing() {
        let members = parse_initial_cluster("1=127.0.0.1:7001, 2=http://127.0.0.1:7002").unwrap();
        assert_eq!(members.get(&2).map(String::as_str), Some("127.0.0.1:7002"));
        assert!(parse_initial_cluster("").is_err());
        assert!(parse_initial_cluster("1=a:1,1=b:2").unwrap_err().contains("twice"));
        assert!(parse_initial_cluster("x=a:1").unwrap_err().contains("not a number"));
        assert!(parse_initial_cluster("1").unwrap_err().contains("ID=HOST:PORT"));
    }

    #[test]
    fn defaults_are_consistent_and_bad_limits_rejected() {
        Limits::default().validate(&RaftTiming::default()).unwrap();
        let too_small_body = Limits { body_bytes_max: 10, ..Limits::default() };
        assert!(too_small_body.validate(&RaftTiming::default()).is_err());
        let short_keys = Limits { idempotency_key_bytes_max: 8, ..Limits::default() };
        assert!(short_keys.validate(&RaftTiming::default()).unwrap_err().contains("Idempotency-Key"));
        let short_forward = Limits { forward_timeout_ms: 20_000, ..Limits::default() };
        assert!(short_forward.validate(&RaftTiming::default()).unwrap_err().contains("forward timeout"));
        let idle_race = Limits { header_read_timeout_ms: 4000, ..Limits::default() };
        assert!(idle_race.validate(&RaftTiming::default()).unwrap_err().contains("header read timeout"));
        let tiny_headers = Limits { header_bytes_max: 1024, ..Limits::default() };
        assert!(tiny_headers.validate(&RaftTiming::default()).unwrap_err().contains("header size"));
        let huge_value = Limits { value_bytes_max: usize::MAX / 2, body_bytes_max: usize::MAX / 2, ..Limits::default() };
        assert!(huge_value.validate(&RaftTiming::default()).is_err());
    }
}
