//! Concord's Rust client (`concord-client`): endpoints, failover, retries, typed
//! calls. It builds without RocksDB and openraft: a program that talks to a cluster
//! depends on this crate alone. With it: `wire` (the HTTP bodies the server uses
//! too), `placement` (the ring placement, to compute owners yourself),
//! `http_client` and `tls` (the HTTP client setup the server shares).
//!
//! Any node serves any request (followers forward to the leader), so the client's job
//! is to keep going when a node is down or the cluster is electing, without ever
//! turning an unknown outcome into a duplicate write:
//!
//! - a request that could not be *sent* (connection refused) or got a 503 did not
//!   happen: try the next endpoint after a short backoff;
//! - a write that got a 504 or lost its connection *may* have happened: retry it with
//!   the same `Idempotency-Key`, which every write carries (one is generated per call
//!   unless the caller gives one), so the cluster applies it at most once and the
//!   retry returns the first result;
//! - every call has an overall deadline, after which the last error is returned,
//!   except that once an attempt may have applied a write, a later 503 or transport
//!   error is reported as `OutcomeUnknown` (it cannot undo the earlier attempt).

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use base64::Engine;
use reqwest::{Method, StatusCode};
use serde::Deserialize;
use serde_json::Value;

pub mod http_client;
pub mod placement;
pub mod tls;
pub mod wire;

mod auth;
mod queues;
mod sse;
mod topics;
mod txn;
mod unreachable;
pub use auth::{AuthChanged, AuthStatus, CreatedToken, TokenInfo, TokenRevoked, WhoAmI};
pub use queues::{DeadLetteredFrom, QueueConfigured, QueueListing, QueueMessage, QueueSettings, QueueStats, ReceiveOptions};
pub use sse::{EventStream, RawEvent, WatchEvent};
pub use topics::{TopicConfigured, TopicMessage, TopicPage, TopicSettings, TopicStatus};

/// What went wrong with a call.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ClientError {
    /// The cluster answered with a JSON error.
    #[error("{status} {code}: {message}")]
    Api { status: u16, code: String, message: String, details: Option<Value> },
    /// No endpoint could be reached, or the answer was lost.
    #[error("{0}")]
    Transport(String),
    /// The answer was not what the API promises.
    #[error("unexpected answer: {0}")]
    Protocol(String),
    /// An attempt may have applied the write (504, or the connection was lost after
    /// sending), and no later attempt settled it either way.
    #[error("outcome unknown: {0}")]
    OutcomeUnknown(String),
}

impl ClientError {
    /// The HTTP status, when the cluster answered.
    pub fn status(&self) -> Option<u16> {
        match self {
            ClientError::Api { status, .. } => Some(*status),
            _ => None,
        }
    }

    pub fn code(&self) -> Option<&str> {
        match self {
            ClientError::Api { code, .. } => Some(code),
            _ => None,
        }
    }

    /// True when the request definitely did not change anything: a 4xx refusal or a
    /// 503 (not attempted). A 504, a 500 or a lost connection may hide an applied write.
    pub fn is_definite(&self) -> bool {
        matches!(self, ClientError::Api { status, .. } if (400..500).contains(status) || *status == 503)
    }
}

/// A compare-and-swap condition for a write.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Precondition {
    #[default]
    None,
    /// The key's `mod_revision` must equal this.
    ModRevision(u64),
    /// The key must not exist.
    Absent,
    /// The key must exist.
    Exists,
}

/// A key as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyValue {
    pub key: String,
    pub value: Vec<u8>,
    pub create_revision: u64,
    pub mod_revision: u64,
    pub version: u64,
    /// The lease the key is attached to (deleted when it ends), if any.
    pub lease: Option<u64>,
}

/// The result of a put: the server's answer as it sends it.
pub use wire::kv::PutAnswer as PutResult;

/// What a prefix delete removed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PrefixDeleted {
    /// How many keys went.
    pub deleted: u64,
    /// The cluster revision after the last of them.
    pub revision: u64,
    /// Keys remained under the prefix after `DELETE_PREFIX_REQUESTS_MAX` requests.
    pub more: bool,
}

/// Most requests one `Client::delete_prefix` makes (each up to 100,000 keys).
pub const DELETE_PREFIX_REQUESTS_MAX: usize = 100;

/// A read and where it was served.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Served<T> {
    pub value: T,
    /// The node that answered (`Concord-Node`).
    pub node: Option<u64>,
    /// True when the answer was replayed from the idempotency table.
    pub replayed: bool,
}

/// One page of a listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListPage {
    pub items: Vec<KeyValue>,
    pub more: bool,
    pub next_after: Option<String>,
    pub revision: u64,
}

#[derive(Deserialize)]
struct ErrorBody {
    error: ErrorFields,
}

#[derive(Deserialize)]
struct ErrorFields {
    code: String,
    message: String,
    details: Option<Value>,
}

/// Bytes sent as JSON: text, or base64 when `encoding` says so.
fn decode_payload(text: String, encoding: Option<&str>) -> Result<Vec<u8>, ClientError> {
    match encoding {
        Some("base64") => base64::engine::general_purpose::STANDARD.decode(text).map_err(|e| ClientError::Protocol(format!("bad base64 value: {e}"))),
        _ => Ok(text.into_bytes()),
    }
}

/// A key as the server sent it, its value decoded (empty in a `keys_only` listing).
fn key_value(item: wire::kv::KeyItem) -> Result<KeyValue, ClientError> {
    let value = match item.value {
        None => Vec::new(),
        Some(text) => decode_payload(text, item.encoding.as_deref())?,
    };
    Ok(KeyValue { key: item.key, value, create_revision: item.create_revision, mod_revision: item.mod_revision, version: item.version, lease: item.lease })
}

/// Options of one write.
#[derive(Debug, Clone, Default)]
pub struct WriteOptions {
    pub precondition: Precondition,
    /// Used as is when given; otherwise one is generated for the call.
    pub idempotency_key: Option<String>,
    /// For puts: attach the key to this lease (deleted when the lease ends).
    pub lease: Option<u64>,
    /// For puts: delete the key this many ms after the write, on the replicated
    /// clock (`PUT ?ttl_ms=`); without it, a put takes away any expiry the key had.
    pub ttl_ms: Option<u64>,
    /// Apply only while this token holds this lock (`Concord-Fence`).
    pub fence: Option<(String, u64)>,
}

/// A ring member as read.
pub use wire::rings::RingMember;

/// What a member joins a ring with (a join replaces all of it).
#[derive(Debug, Clone, Copy)]
pub struct RingJoin<'a> {
    pub address: &'a str,
    pub weight: u32,
    pub metadata: &'a str,
    pub lease: Option<u64>,
}

/// A ring's membership at one epoch.
pub use wire::rings::RingStatus as Ring;

/// The owners of a key, computed at `epoch`.
pub use wire::rings::RingLookup as Lookup;

/// A lock held: its name, the fencing token and the lease (the server's answer).
pub use wire::locks::LockHeld as LockGrant;

/// A lease as granted or kept alive (`expires_at_ms` on the replicated clock).
pub use wire::leases::LeaseAnswer as Lease;

pub use wire::cluster::{ClusterStatus, LastContact, MemberAdded, MemberRemoved, MemberStatus};
/// A lease as read: time left, attached keys, locks and ring memberships.
pub use wire::leases::{LeaseRead as LeaseStatus, LeaseRingMember};

/// A client of one cluster. Cheap to share behind an `Arc`; calls may run concurrently.
pub struct Client {
    endpoints: Vec<String>,
    http: reqwest::Client,
    /// Index of the endpoint that answered last; tried first.
    preferred: AtomicUsize,
    /// Overall deadline of one call, retries included.
    pub call_timeout: Duration,
    /// Deadline of one attempt.
    pub attempt_timeout: Duration,
    /// Sent as `Authorization: Bearer` with every request, when set.
    token: Option<String>,
    /// Give up once every endpoint failed to connect this many times in a row,
    /// instead of retrying until `call_timeout` (the CLI: a person is waiting, and
    /// nodes that refuse connections are down, not electing). `None`: keep trying.
    pub unreachable_rounds_max: Option<u32>,
}

/// How long connecting to one endpoint may take before the next one is tried.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);

static KEY_COUNTER: AtomicU64 = AtomicU64::new(0);

/// A unique idempotency key: process id, start time and a counter (under 64 bytes,
/// the smallest key limit a node accepts).
/// The shortest `Idempotency-Key` limit a server may be configured with: every key
/// `new_idempotency_key` makes is shorter (the server's `config` refuses a smaller limit).
pub const IDEMPOTENCY_KEY_BYTES_MIN: usize = 64;

pub fn new_idempotency_key() -> String {
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0);
    format!("cc-{}-{nanos:x}-{}", std::process::id(), KEY_COUNTER.fetch_add(1, Ordering::Relaxed))
}

fn normalize(endpoint: &str) -> String {
    let trimmed = endpoint.trim().trim_end_matches('/');
    if trimmed.starts_with("http://") || trimmed.starts_with("https://") { trimmed.to_string() } else { format!("http://{trimmed}") }
}

/// Percent-encodes a key for use in a URL path (slashes stay: keys may be paths).
pub fn encode_key(key: &str) -> String {
    let mut out = String::with_capacity(key.len());
    for byte in key.bytes() {
        if byte.is_ascii_alphanumeric() || b"-_.~/".contains(&byte) {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// Percent-encodes a value for a query string or a single path segment (lock names:
/// `/v1/locks/{name}/acquire`), slashes included.
fn encode_segment(value: &str) -> String {
    encode_key(value).replace('/', "%2F")
}

struct Answer {
    status: StatusCode,
    node: Option<u64>,
    replayed: bool,
    body: bytes::Bytes,
}

impl Client {
    /// A client of the nodes at `endpoints` (`host:port` or URLs).
    pub fn new(endpoints: Vec<String>) -> Self {
        // Building fails only if the TLS backend or resolver cannot initialise; reqwest's
        // default client is the same minus our timeouts.
        let http = crate::http_client::pooled(CONNECT_TIMEOUT, None).unwrap_or_else(|_| reqwest::Client::new());
        Self {
            endpoints: endpoints.iter().map(|e| normalize(e)).collect(),
            http,
            preferred: AtomicUsize::new(0),
            call_timeout: Duration::from_secs(15),
            attempt_timeout: Duration::from_secs(16),
            token: None,
            unreachable_rounds_max: None,
        }
    }

    /// Sends `token` (`<id>.<secret>`, from `POST /v1/auth/tokens`) with every request.
    pub fn with_token(mut self, token: Option<String>) -> Self {
        self.token = token.filter(|t| !t.trim().is_empty()).map(|t| t.trim().to_string());
        self
    }

    /// Speaks TLS to `https://` endpoints, trusting only the CA (and presenting the
    /// certificate) in `tls`.
    pub fn with_tls(mut self, tls: &crate::tls::ClientTls) -> Result<Self, ClientError> {
        self.http = crate::http_client::pooled(CONNECT_TIMEOUT, Some(tls)).map_err(|e| ClientError::Transport(format!("cannot set up TLS: {e}")))?;
        Ok(self)
    }

    /// `request` with the client's token, if it has one.
    fn authorized(&self, request: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        match &self.token {
            Some(token) => request.bearer_auth(token),
            None => request,
        }
    }

    pub fn endpoints(&self) -> &[String] {
        &self.endpoints
    }

    /// Sends one logical request, retrying as the module doc describes.
    async fn call(&self, method: Method, path: &str, headers: &[(&str, String)], body: Option<Vec<u8>>) -> Result<Answer, ClientError> {
        self.call_waiting(method, path, headers, body, Duration::ZERO).await
    }

    /// `call` for a request the server may hold for up to `wait` (a long poll): every
    /// deadline is extended by it.
    async fn call_waiting(&self, method: Method, path: &str, headers: &[(&str, String)], body: Option<Vec<u8>>, wait: Duration) -> Result<Answer, ClientError> {
        if self.endpoints.is_empty() {
            return Err(ClientError::Transport("no endpoints configured".into()));
        }
        let deadline = Instant::now() + self.call_timeout + wait;
        let attempt_timeout = self.attempt_timeout + wait;
        let mut backoff = Duration::from_millis(50);
        let mut attempt = 0usize;
        let is_read = method == Method::GET;
        let idempotent = headers.iter().any(|(name, _)| name.eq_ignore_ascii_case("idempotency-key"));
        // Set once an attempt may have applied the write; see `settle`.
        let mut maybe_applied = false;
        // The error to report: definite only if nothing before it may have applied, or
        // if it is the idempotency table's replay of the first answer (a 4xx).
        let settle = |error: ClientError, maybe_applied: bool| match error {
            ClientError::Api { status, .. } if idempotent && (400..500).contains(&status) => error,
            error if maybe_applied => ClientError::OutcomeUnknown(format!("an earlier attempt may have applied; the last one ended: {error}")),
            error => error,
        };
        let mut unreachable = unreachable::Unreachable::new(self.endpoints.len());
        loop {
            let index = (self.preferred.load(Ordering::Relaxed) + attempt) % self.endpoints.len();
            attempt += 1;
            let url = format!("{}{path}", self.endpoints[index]);
            let remaining = deadline.saturating_duration_since(Instant::now());
            let mut request = self.authorized(self.http.request(method.clone(), &url).timeout(remaining.min(attempt_timeout)));
            for (name, value) in headers {
                request = request.header(*name, value);
            }
            if let Some(body) = &body {
                request = request.body(body.clone());
            }
            let error = match request.send().await {
                Ok(response) => {
                    unreachable.reached(index);
                    let status = response.status();
                    let header_u64 = |name: &str| response.headers().get(name).and_then(|v| v.to_str().ok()).and_then(|v| v.parse().ok());
                    let node = header_u64("concord-node");
                    let replayed = response.headers().contains_key("idempotent-replayed");
                    match response.bytes().await {
                        Ok(body) => {
                            let answer = Answer { status, node, replayed, body };
                            if status.is_success() {
                                self.preferred.store(index, Ordering::Relaxed);
                                return Ok(answer);
                            }
                            let error = api_error(&answer);
                            // 503: not attempted, retry. 504: retry the same write.
                            maybe_applied |= status == StatusCode::GATEWAY_TIMEOUT && !is_read;
                            if status != StatusCode::SERVICE_UNAVAILABLE && status != StatusCode::GATEWAY_TIMEOUT {
                                return Err(settle(error, maybe_applied));
                            }
                            error
                        }
                        Err(e) => {
                            maybe_applied |= !is_read;
                            ClientError::Transport(format!("{url}: answer lost: {e}"))
                        }
                    }
                }
                Err(e) => {
                    // Only a failed connect proves the request never left.
                    maybe_applied |= !is_read && !e.is_connect();
                    unreachable.send_failed(index, &self.endpoints[index], &e)
                }
            };
            // Every endpoint refused or timed out: say so, naming each and why.
            let error = unreachable.explain(error, &self.endpoints);
            let gave_up = self.unreachable_rounds_max.is_some_and(|rounds| unreachable.gave_every_endpoint(rounds));
            if gave_up || Instant::now() + backoff >= deadline {
                return Err(settle(error, maybe_applied));
            }
            // The next endpoint at once (another node may answer); a pause only after
            // a whole round of them failed.
            if attempt.is_multiple_of(self.endpoints.len()) {
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_millis(1000));
            }
        }
    }

    fn write_headers(options: &WriteOptions) -> Vec<(&'static str, String)> {
        let mut headers = vec![("idempotency-key", options.idempotency_key.clone().unwrap_or_else(new_idempotency_key))];
        if let Some((lock, token)) = &options.fence {
            headers.push(("concord-fence", format!("{lock}:{token}")));
        }
        match options.precondition {
            Precondition::None => {}
            Precondition::ModRevision(revision) => headers.push(("if-match", revision.to_string())),
            Precondition::Absent => headers.push(("if-none-match", "*".into())),
            Precondition::Exists => headers.push(("if-match", "*".into())),
        }
        headers
    }

    pub async fn put(&self, key: &str, value: impl Into<Vec<u8>>) -> Result<Served<PutResult>, ClientError> {
        self.put_with(key, value, &WriteOptions::default()).await
    }

    pub async fn put_with(&self, key: &str, value: impl Into<Vec<u8>>, options: &WriteOptions) -> Result<Served<PutResult>, ClientError> {
        let query: Vec<String> = [("lease", options.lease), ("ttl_ms", options.ttl_ms)]
            .into_iter()
            .filter_map(|(name, value)| value.map(|value| format!("{name}={value}")))
            .collect();
        let mut path = format!("/v1/kv/{}", encode_key(key));
        if !query.is_empty() {
            path.push_str(&format!("?{}", query.join("&")));
        }
        let answer = self.call(Method::PUT, &path, &Self::write_headers(options), Some(value.into())).await?;
        Ok(Served { value: decode_json(&answer)?, node: answer.node, replayed: answer.replayed })
    }

    /// Deletes `key`; returns the cluster revision of the deletion.
    pub async fn delete_with(&self, key: &str, options: &WriteOptions) -> Result<Served<u64>, ClientError> {
        let path = format!("/v1/kv/{}", encode_key(key));
        let answer = self.call(Method::DELETE, &path, &Self::write_headers(options), None).await?;
        let deleted: wire::kv::DeleteAnswer = decode_json(&answer)?;
        Ok(Served { value: deleted.revision, node: answer.node, replayed: answer.replayed })
    }

    pub async fn delete(&self, key: &str) -> Result<Served<u64>, ClientError> {
        self.delete_with(key, &WriteOptions::default()).await
    }

    /// Deletes every key starting with `prefix`, repeating the request while the
    /// cluster says more remain, at most `DELETE_PREFIX_REQUESTS_MAX` times (writers
    /// refilling the prefix could otherwise keep it going forever: `more` says so).
    /// Not atomic: each entry is (at most 1,000 keys), and a key written under the
    /// prefix meanwhile may survive. Not idempotent either, and needs not be: a repeat
    /// deletes what is left.
    pub async fn delete_prefix(&self, prefix: &str) -> Result<PrefixDeleted, ClientError> {
        let path = format!("/v1/kv?prefix={}", encode_segment(prefix));
        let (mut deleted, mut requests) = (0, 0);
        loop {
            let answer: wire::kv::PrefixDeletedAnswer = decode_json(&self.call(Method::DELETE, &path, &[], None).await?)?;
            deleted += answer.deleted;
            requests += 1;
            if !answer.more || requests == DELETE_PREFIX_REQUESTS_MAX {
                return Ok(PrefixDeleted { deleted, revision: answer.revision, more: answer.more });
            }
        }
    }

    /// Linearizable read; `None` when the key does not exist.
    pub async fn get(&self, key: &str) -> Result<Served<Option<KeyValue>>, ClientError> {
        self.get_with(key, false).await
    }

    /// Read with `stale = true` answers from whichever node is reached, without
    /// confirming leadership.
    pub async fn get_with(&self, key: &str, stale: bool) -> Result<Served<Option<KeyValue>>, ClientError> {
        let consistency = if stale { "stale" } else { "linearizable" };
        let path = format!("/v1/kv/{}?consistency={consistency}", encode_key(key));
        match self.call(Method::GET, &path, &[], None).await {
            Ok(answer) => {
                let found: wire::kv::KeyAnswer = decode_json(&answer)?;
                let value = decode_payload(found.value, Some(&found.encoding))?;
                let (create_revision, mod_revision, version) = (found.create_revision, found.mod_revision, found.version);
                let key_value = KeyValue { key: found.key, value, create_revision, mod_revision, version, lease: found.lease };
                Ok(Served { value: Some(key_value), node: answer.node, replayed: false })
            }
            Err(ClientError::Api { status: 404, code, .. }) if code == "key_not_found" => Ok(Served { value: None, node: None, replayed: false }),
            Err(e) => Err(e),
        }
    }

    pub async fn list(&self, prefix: &str, after: Option<&str>, limit: Option<usize>) -> Result<ListPage, ClientError> {
        let mut path = format!("/v1/kv?prefix={}", encode_segment(prefix));
        if let Some(after) = after {
            path.push_str(&format!("&after={}", encode_segment(after)));
        }
        if let Some(limit) = limit {
            path.push_str(&format!("&limit={limit}"));
        }
        let answer = self.call(Method::GET, &path, &[], None).await?;
        let page: wire::kv::ListAnswer = decode_json(&answer)?;
        let items = page.items.into_iter().map(key_value).collect::<Result<_, _>>()?;
        Ok(ListPage { items, more: page.more, next_after: page.next_after, revision: page.revision })
    }

    /// `GET /v1/cluster`: the leader's view (`stale`: the view of the node reached).
    pub async fn cluster_status(&self, stale: bool) -> Result<Served<ClusterStatus>, ClientError> {
        let path = if stale { "/v1/cluster?consistency=stale" } else { "/v1/cluster" };
        let answer = self.call(Method::GET, path, &[], None).await?;
        Ok(Served { value: decode_json(&answer)?, node: answer.node, replayed: false })
    }

    /// Grants a lease of `ttl_ms`.
    pub async fn lease_grant(&self, ttl_ms: u64) -> Result<Lease, ClientError> {
        let body = json_body(&serde_json::json!({ "ttl_ms": ttl_ms }));
        let headers = keyed_json_headers();
        decode_json(&self.call(Method::POST, "/v1/leases", &headers, Some(body)).await?)
    }

    /// Restarts a lease's TTL; `ClientError` with code `lease_not_found` once it ended.
    pub async fn lease_keep_alive(&self, id: u64) -> Result<Lease, ClientError> {
        // No Idempotency-Key: renewing twice is harmless, and a replayed renewal would
        // date from the first attempt instead of now.
        decode_json(&self.call(Method::POST, &format!("/v1/leases/{id}/keepalive"), &[], None).await?)
    }

    /// Ends a lease now; returns how many attached keys were deleted.
    pub async fn lease_revoke(&self, id: u64) -> Result<u64, ClientError> {
        let headers = [("idempotency-key", new_idempotency_key())];
        let revoked: wire::leases::LeaseRevoked = decode_json(&self.call(Method::DELETE, &format!("/v1/leases/{id}"), &headers, None).await?)?;
        Ok(revoked.deleted_keys)
    }

    /// Reads a lease; `None` when it does not exist (any more).
    pub async fn lease_get(&self, id: u64) -> Result<Option<LeaseStatus>, ClientError> {
        match self.call(Method::GET, &format!("/v1/leases/{id}"), &[], None).await {
            Ok(answer) => Ok(Some(decode_json(&answer)?)),
            Err(ClientError::Api { status: 404, code, .. }) if code == "lease_not_found" => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Takes lock `name` for `lease`, waiting in line up to `wait_ms` if it is held;
    /// a `lock_busy` error (409) when it was not granted in time.
    pub async fn lock_acquire(&self, name: &str, lease: u64, wait_ms: u64) -> Result<LockGrant, ClientError> {
        let body = json_body(&serde_json::json!({ "lease": lease, "wait_ms": wait_ms }));
        let headers = keyed_json_headers();
        let path = format!("/v1/locks/{}/acquire", encode_segment(name));
        decode_json(&self.call_waiting(Method::POST, &path, &headers, Some(body), Duration::from_millis(wait_ms)).await?)
    }

    /// Lets go of lock `name`; a `stale_token` error (409) if `token` no longer holds it.
    pub async fn lock_release(&self, name: &str, token: u64) -> Result<(), ClientError> {
        let body = json_body(&serde_json::json!({ "token": token }));
        let headers = keyed_json_headers();
        self.call(Method::POST, &format!("/v1/locks/{}/release", encode_segment(name)), &headers, Some(body)).await.map(|_| ())
    }

    /// Who holds lock `name`, if anyone.
    pub async fn lock_holder(&self, name: &str) -> Result<Option<LockGrant>, ClientError> {
        let read: wire::locks::LockRead = decode_json(&self.call(Method::GET, &format!("/v1/locks/{}", encode_segment(name)), &[], None).await?)?;
        Ok(read.holder.map(|holder| LockGrant { lease: holder.lease, name: read.name, token: holder.token }))
    }

    /// True when `token` holds lock `name` now.
    pub async fn lock_check(&self, name: &str, token: u64) -> Result<bool, ClientError> {
        match self.call(Method::GET, &format!("/v1/locks/{}/check?token={token}", encode_segment(name)), &[], None).await {
            Ok(_) => Ok(true),
            Err(ClientError::Api { status: 409, code, .. }) if code == "stale_token" => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Joins (or replaces) `member` of `ring`; returns the ring's new epoch.
    pub async fn ring_join(&self, ring: &str, member: &str, join: &RingJoin<'_>) -> Result<u64, ClientError> {
        let body = serde_json::json!({ "address": join.address, "weight": join.weight, "metadata": join.metadata, "lease": join.lease });
        let body = json_body(&body);
        let headers = keyed_json_headers();
        let path = format!("/v1/rings/{}/members/{}", encode_segment(ring), encode_segment(member));
        let changed: wire::rings::RingChanged = decode_json(&self.call(Method::PUT, &path, &headers, Some(body)).await?)?;
        Ok(changed.epoch)
    }

    /// Removes `member` from `ring`; returns the ring's new epoch.
    pub async fn ring_leave(&self, ring: &str, member: &str) -> Result<u64, ClientError> {
        let headers = [("idempotency-key", new_idempotency_key())];
        let path = format!("/v1/rings/{}/members/{}", encode_segment(ring), encode_segment(member));
        let changed: wire::rings::RingChanged = decode_json(&self.call(Method::DELETE, &path, &headers, None).await?)?;
        Ok(changed.epoch)
    }

    pub async fn ring(&self, ring: &str) -> Result<Ring, ClientError> {
        decode_json(&self.call(Method::GET, &format!("/v1/rings/{}", encode_segment(ring)), &[], None).await?)
    }

    /// The first `replicas` owners of `key` on `ring`.
    pub async fn ring_lookup(&self, ring: &str, key: &str, replicas: usize) -> Result<Lookup, ClientError> {
        let path = format!("/v1/rings/{}/lookup?key={}&replicas={replicas}", encode_segment(ring), encode_segment(key));
        decode_json(&self.call(Method::GET, &path, &[], None).await?)
    }

    pub async fn add_member(&self, id: u64, addr: &str) -> Result<MemberAdded, ClientError> {
        let body = json_body(&serde_json::json!({ "id": id, "addr": addr }));
        let headers = [("content-type", "application/json".to_string())];
        let answer = self.call(Method::POST, "/v1/cluster/members", &headers, Some(body)).await?;
        decode_json(&answer)
    }

    pub async fn remove_member(&self, id: u64) -> Result<MemberRemoved, ClientError> {
        let answer = self.call(Method::DELETE, &format!("/v1/cluster/members/{id}"), &[], None).await?;
        decode_json(&answer)
    }
}

/// A JSON request body (a `Value` always serializes).
fn json_body(value: &Value) -> Vec<u8> {
    value.to_string().into_bytes()
}

/// Headers of a JSON write that applies once however often it is retried.
fn keyed_json_headers() -> [(&'static str, String); 2] {
    [("content-type", "application/json".to_string()), ("idempotency-key", new_idempotency_key())]
}

fn decode_json<T: serde::de::DeserializeOwned>(answer: &Answer) -> Result<T, ClientError> {
    serde_json::from_slice(&answer.body).map_err(|e| ClientError::Protocol(format!("{e} in {}", String::from_utf8_lossy(&answer.body))))
}

fn api_error(answer: &Answer) -> ClientError {
    match serde_json::from_slice::<ErrorBody>(&answer.body) {
        Ok(body) => ClientError::Api { status: answer.status.as_u16(), code: body.error.code, message: body.error.message, details: body.error.details },
        Err(_) => ClientError::Api {
            status: answer.status.as_u16(),
            code: "unparsed".into(),
            message: String::from_utf8_lossy(&answer.body).chars().take(500).collect(),
            details: None,
        },
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    /// A loopback server answering each request with the next scripted status (the
    /// last one repeats), in Concord's error shape.
    async fn scripted(script: Vec<(u16, &'static str)>) -> Client {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let step = Arc::new(AtomicUsize::new(0));
        let app = axum::Router::new().fallback(move || {
            let (step, script) = (step.clone(), script.clone());
            async move {
                let (status, code) = script[step.fetch_add(1, Ordering::SeqCst).min(script.len() - 1)];
                let body = format!(r#"{{"error":{{"code":"{code}","message":"scripted"}}}}"#);
                (axum::http::StatusCode::from_u16(status).unwrap(), body)
            }
        });
        tokio::spawn(async move { axum::serve(listener, app).await });
        let mut client = Client::new(vec![addr.to_string()]);
        client.call_timeout = Duration::from_millis(800);
        client
    }

    #[tokio::test]
    async fn a_503_after_a_504_is_not_reported_as_definite() {
        let client = scripted(vec![(504, "outcome_unknown"), (503, "unavailable")]).await;
        let error = client.put("k", "v").await.unwrap_err();
        assert!(matches!(error, ClientError::OutcomeUnknown(_)), "{error:?}");
        assert!(!error.is_definite());
    }

    #[tokio::test]
    async fn only_503s_are_definite() {
        let client = scripted(vec![(503, "unavailable")]).await;
        let error = client.put("k", "v").await.unwrap_err();
        assert_eq!(error.status(), Some(503));
        assert!(error.is_definite());
    }

    #[tokio::test]
    async fn a_keyed_retry_refused_by_replay_is_definite() {
        // The 412 after a 504 is the idempotency table's replay of the first answer.
        let client = scripted(vec![(504, "outcome_unknown"), (412, "precondition_failed")]).await;
        let error = client.put("k", "v").await.unwrap_err();
        assert_eq!(error.code(), Some("precondition_failed"));
        assert!(error.is_definite());
    }

    #[tokio::test]
    async fn an_unkeyed_retry_refused_after_a_504_is_unknown() {
        // A membership removal that timed out and then finds the member gone.
        let client = scripted(vec![(504, "outcome_unknown"), (404, "member_not_found")]).await;
        let error = client.remove_member(3).await.unwrap_err();
        assert!(matches!(error, ClientError::OutcomeUnknown(_)), "{error:?}");
    }

    #[test]
    fn keys_are_percent_encoded_but_keep_slashes() {
        assert_eq!(encode_key("a/b c?d"), "a/b%20c%3Fd");
        assert_eq!(encode_segment("a/b&c"), "a%2Fb%26c");
        assert_eq!(normalize("127.0.0.1:1/"), "http://127.0.0.1:1");
        assert_ne!(new_idempotency_key(), new_idempotency_key());
        assert!(new_idempotency_key().len() < IDEMPOTENCY_KEY_BYTES_MIN);
    }
}
