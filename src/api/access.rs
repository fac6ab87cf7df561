//! Who may call what: the per-request check of client tokens (`state::auth` stores them).
//!
//! While the cluster requires tokens (`POST /v1/auth/enable`), every request except
//! `/health`, `/ready` and `/v1/openapi.json` carries `Authorization: Bearer <id>.<secret>`: `401` without
//! a valid one, `403` when its role or name prefixes do not cover the route. GET and
//! HEAD need `read`, other methods `write`; membership, snapshots and `/v1/auth` need
//! `admin` (except `GET /v1/cluster` and `GET /v1/auth/whoami`, which any token may
//! call). A token confined to prefixes may touch only keys, locks, queues, topics and
//! rings whose names start with one of them, list and watch only under one of them,
//! and not list all queues or topics. Leases carry no name: any `write` token may use
//! them.
//!
//! The node that serves a request decides, from its applied state, and runs the
//! handler with what it decided (`service::AUTHORITY`: no token required, or token
//! N). When a follower sends the write on, or asks the leader for a read index, the
//! leader re-checks both facts against its own state (`Core::check_authority`):
//! tokens never change once made, so the follower's check of role and names holds,
//! and only "required" and "still exists" can have moved. So a write or a
//! linearizable read is decided as of the leader's state; stale reads and streams,
//! which a node serves from its own state, are decided from that, which may trail the
//! leader's by the entries in flight. A leader decides only once it has applied an
//! entry of its own term: a new leader's applied state may still lack a revoke (or
//! the enable) its predecessor committed, and a write checked against it would apply
//! after that revoke. The cluster routes still forwarded to the leader (`forward`)
//! are decided there. The
//! secret is compared by its SHA-256, in constant time.

use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use base64::Engine;
use percent_encoding::percent_decode_str;
use sha2::{Digest, Sha256};

use super::AppState;
use super::error::ApiError;
use crate::raft::peer_auth::constant_time_eq;
use crate::service::{AUTHORITY, Authority, tokens_decidable};
use crate::state::auth::Role;

/// Longest secret part of a presented token (ours are 43 characters).
const SECRET_CHARS_MAX: usize = 256;
/// Random bytes in a new token's secret.
const SECRET_BYTES: usize = 32;

/// A caller whose token was checked; in the request's extensions for handlers that
/// meet names in bodies (a queue's dead-letter queue).
#[derive(Clone, Debug)]
pub struct Caller {
    pub id: u64,
    pub name: String,
    pub role: Role,
    pub prefixes: Vec<String>,
}

impl Caller {
    /// May this caller touch the resource called `name`?
    pub fn may_name(&self, name: &str) -> bool {
        self.prefixes.is_empty() || self.prefixes.iter().any(|prefix| name.starts_with(prefix.as_str()))
    }

    /// Refuses a name outside this caller's prefixes.
    pub fn check_name(&self, what: &str, name: &str) -> Result<(), ApiError> {
        match self.may_name(name) {
            true => Ok(()),
            false => Err(forbidden(format!("token {} may only name {what}s starting with {:?}, not {name:?}", self.id, self.prefixes))),
        }
    }
}

/// A new token's secret (URL-safe base64 of 32 random bytes) and its SHA-256.
pub fn new_secret() -> Result<(String, [u8; 32]), ApiError> {
    let mut bytes = [0u8; SECRET_BYTES];
    getrandom::fill(&mut bytes).map_err(|e| ApiError::internal(format!("cannot draw random bytes for a token: {e}")))?;
    let secret = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
    let hash = sha256(&secret);
    Ok((secret, hash))
}

fn sha256(secret: &str) -> [u8; 32] {
    Sha256::digest(secret.as_bytes()).into()
}

pub(super) fn unauthenticated(code: &'static str, message: impl Into<String>) -> ApiError {
    ApiError::new(StatusCode::UNAUTHORIZED, code, message)
}

fn forbidden(message: impl Into<String>) -> ApiError {
    ApiError::new(StatusCode::FORBIDDEN, "forbidden", message)
}

/// The token id and secret of `Authorization: Bearer <id>.<secret>`.
fn bearer(headers: &HeaderMap) -> Result<(u64, &str), ApiError> {
    let Some(value) = headers.get(header::AUTHORIZATION) else {
        return Err(unauthenticated("token_required", "this cluster requires a token: send Authorization: Bearer <token>"));
    };
    let malformed = || unauthenticated("invalid_token", "Authorization must be Bearer <id>.<secret>, as POST /v1/auth/tokens returned it");
    let text = value.to_str().map_err(|_| malformed())?;
    let (scheme, token) = text.split_once(' ').ok_or_else(malformed)?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Err(malformed());
    }
    let (id, secret) = token.trim().split_once('.').ok_or_else(malformed)?;
    let id = id.parse::<u64>().map_err(|_| malformed())?;
    if secret.is_empty() || secret.len() > SECRET_CHARS_MAX {
        return Err(malformed());
    }
    Ok((id, secret))
}

/// Checks the request's bearer token against the applied state: `401` unless it
/// names a token that exists and its secret matches.
pub fn authenticate(app: &AppState, headers: &HeaderMap) -> Result<Caller, ApiError> {
    let (id, secret) = bearer(headers)?;
    let record = app.reader.token(id)?.value;
    // Hash even for an unknown id, so timing does not tell which ids exist.
    let presented = sha256(secret);
    match record {
        Some(record) if constant_time_eq(&record.secret_sha256, &presented) => {
            Ok(Caller { id, name: record.name, role: record.role, prefixes: record.prefixes })
        }
        _ => Err(unauthenticated("invalid_token", format!("token {id} does not exist, was revoked, or its secret is wrong"))),
    }
}

/// What a route needs from the caller's token.
#[derive(Debug, PartialEq, Eq)]
struct Need {
    role: Role,
    scope: Scope,
}

/// Which names a request touches.
#[derive(Debug, PartialEq, Eq)]
enum Scope {
    /// None (leases, cluster status, unknown routes).
    Unnamed,
    /// The resource with this name.
    Name(String),
    /// Everything whose name starts with this (listings, watches).
    Prefix(String),
}

fn decode(segment: &str) -> String {
    percent_decode_str(segment).decode_utf8_lossy().into_owned()
}

fn query_prefix(query: Option<&str>) -> String {
    let pairs: Vec<(String, String)> = query.and_then(|q| serde_urlencoded::from_str(q).ok()).unwrap_or_default();
    pairs.into_iter().find(|(name, _)| name == "prefix").map(|(_, value)| value).unwrap_or_default()
}

/// What `method path?query` needs; `None` for the routes open to anyone.
fn need(method: &Method, path: &str, query: Option<&str>) -> Option<Need> {
    let reading = method == Method::GET || method == Method::HEAD;
    let data_role = if reading { Role::Read } else { Role::Write };
    if path == super::openapi::OPENAPI_PATH {
        return None;
    }
    let Some(rest) = path.strip_prefix("/v1/") else {
        return match path {
            "/health" | "/ready" => None,
            _ => Some(Need { role: data_role, scope: Scope::Unnamed }),
        };
    };
    let (resource, tail) = rest.split_once('/').unwrap_or((rest, ""));
    let first_segment = || tail.split('/').next().unwrap_or("");
    let named = |name: &str| if name.is_empty() { Scope::Prefix(String::new()) } else { Scope::Name(decode(name)) };
    let need = match resource {
        "cluster" if reading && tail.is_empty() => Need { role: Role::Read, scope: Scope::Unnamed },
        "auth" if reading && tail == "whoami" => Need { role: Role::Read, scope: Scope::Unnamed },
        "cluster" | "auth" => Need { role: Role::Admin, scope: Scope::Unnamed },
        "kv" if tail.is_empty() && !rest.ends_with('/') => Need { role: data_role, scope: Scope::Prefix(query_prefix(query)) },
        "kv" => Need { role: data_role, scope: named(tail) },
        "watch" => Need { role: data_role, scope: Scope::Prefix(query_prefix(query)) },
        "locks" | "queues" | "topics" | "rings" => Need { role: data_role, scope: named(first_segment()) },
        _ => Need { role: data_role, scope: Scope::Unnamed },
    };
    Some(need)
}

fn permits(caller: &Caller, need: &Need) -> Result<(), ApiError> {
    if caller.role < need.role {
        return Err(forbidden(format!("token {} has role {}; this request needs {}", caller.id, caller.role.name(), need.role.name())));
    }
    match &need.scope {
        Scope::Unnamed => Ok(()),
        Scope::Name(name) => caller.check_name("resource", name),
        Scope::Prefix(prefix) if caller.may_name(prefix) => Ok(()),
        Scope::Prefix(prefix) => Err(forbidden(format!(
            "token {} may only list, watch and delete under {:?}; ask with a prefix inside one of them, not {prefix:?}",
            caller.id, caller.prefixes
        ))),
    }
}

/// Waits, within the read timeout, until `service::tokens_decidable`; `503` if not.
async fn wait_tokens_applied(app: &AppState) -> Result<(), ApiError> {
    if tokens_decidable(&app.raft.metrics().borrow()) {
        return Ok(());
    }
    let timeout = app.limits.read_timeout();
    app.raft
        .wait(Some(timeout))
        .metrics(tokens_decidable, "the new leader to apply the log of earlier terms")
        .await
        .map(drop)
        .map_err(|_| ApiError::unavailable(format!("this node became leader and has not applied the earlier log within {} ms; retry", timeout.as_millis())))
}

/// The layer: passes the request on when tokens are not required or the caller's
/// token covers it (recording the `Caller`), answers `401`/`403` otherwise.
pub async fn require_token(State(app): State<AppState>, mut request: Request, next: Next) -> Response {
    let Some(need) = need(request.method(), request.uri().path(), request.uri().query()) else {
        return next.run(request).await;
    };
    // Before anything is decided from the applied state, even whether tokens are
    // required: a new leader may not have applied an enable its predecessor committed,
    // and a follower may not have applied what the leader has.
    if let Err(error) = wait_tokens_applied(&app).await {
        return error.into_response();
    }
    // Most clusters require no token: no read of the auth table at all then.
    if !app.reader.tokens_required() {
        return AUTHORITY.scope(Authority::NoTokenRequired, next.run(request)).await;
    }
    let checked = app.reader.auth_settings().map_err(ApiError::from).and_then(|settings| {
        if !settings.value.enabled {
            return Ok(None);
        }
        let caller = authenticate(&app, request.headers())?;
        permits(&caller, &need)?;
        Ok(Some(caller))
    });
    match checked {
        Ok(caller) => {
            let authority = caller.as_ref().map_or(Authority::NoTokenRequired, |caller| Authority::Token(caller.id));
            if let Some(caller) = caller {
                request.extensions_mut().insert(caller);
            }
            AUTHORITY.scope(authority, next.run(request)).await
        }
        Err(error) => {
            let unauthorized = error.status == StatusCode::UNAUTHORIZED;
            let mut response = error.into_response();
            if unauthorized {
                response.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer realm=\"concord\""));
            }
            response
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn need_of(method: Method, target: &str) -> Option<Need> {
        let (path, query) = target.split_once('?').map_or((target, None), |(p, q)| (p, Some(q)));
        need(&method, path, query)
    }

    fn named(role: Role, name: &str) -> Option<Need> {
        Some(Need { role, scope: Scope::Name(name.into()) })
    }

    #[test]
    fn routes_map_to_roles_and_names() {
        assert_eq!(need_of(Method::GET, "/health"), None);
        assert_eq!(need_of(Method::GET, "/ready"), None);
        assert_eq!(need_of(Method::GET, "/v1/openapi.json"), None);
        assert_eq!(need_of(Method::GET, "/v1/kv/app/a%2Fb%20c"), named(Role::Read, "app/a/b c"));
        assert_eq!(need_of(Method::PUT, "/v1/kv/app/x"), named(Role::Write, "app/x"));
        assert_eq!(need_of(Method::GET, "/v1/kv?prefix=app%2F&limit=3"), Some(Need { role: Role::Read, scope: Scope::Prefix("app/".into()) }));
        assert_eq!(need_of(Method::GET, "/v1/kv"), Some(Need { role: Role::Read, scope: Scope::Prefix(String::new()) }));
        assert_eq!(need_of(Method::GET, "/v1/kv/"), Some(Need { role: Role::Read, scope: Scope::Prefix(String::new()) }));
        assert_eq!(need_of(Method::GET, "/v1/watch?prefix=jobs"), Some(Need { role: Role::Read, scope: Scope::Prefix("jobs".into()) }));
        assert_eq!(need_of(Method::POST, "/v1/queues/q%2F1/receive"), named(Role::Write, "q/1"));
        assert_eq!(need_of(Method::GET, "/v1/queues"), Some(Need { role: Role::Read, scope: Scope::Prefix(String::new()) }));
        assert_eq!(need_of(Method::POST, "/v1/locks/l/acquire"), named(Role::Write, "l"));
        assert_eq!(need_of(Method::GET, "/v1/topics/t/stream"), named(Role::Read, "t"));
        assert_eq!(need_of(Method::DELETE, "/v1/rings/r/members/m"), named(Role::Write, "r"));
        assert_eq!(need_of(Method::POST, "/v1/leases"), Some(Need { role: Role::Write, scope: Scope::Unnamed }));
        assert_eq!(need_of(Method::GET, "/v1/cluster"), Some(Need { role: Role::Read, scope: Scope::Unnamed }));
        assert_eq!(need_of(Method::POST, "/v1/cluster/members"), Some(Need { role: Role::Admin, scope: Scope::Unnamed }));
        assert_eq!(need_of(Method::GET, "/v1/cluster/anything"), Some(Need { role: Role::Admin, scope: Scope::Unnamed }));
        assert_eq!(need_of(Method::GET, "/v1/auth/tokens"), Some(Need { role: Role::Admin, scope: Scope::Unnamed }));
        assert_eq!(need_of(Method::GET, "/v1/auth/whoami"), Some(Need { role: Role::Read, scope: Scope::Unnamed }));
        assert_eq!(need_of(Method::GET, "/nowhere"), Some(Need { role: Role::Read, scope: Scope::Unnamed }));
    }

    fn caller(role: Role, prefixes: &[&str]) -> Caller {
        Caller { id: 7, name: "t".into(), role, prefixes: prefixes.iter().map(|p| p.to_string()).collect() }
    }

    #[test]
    fn roles_include_lower_roles_and_prefixes_confine_names() {
        let write_app = caller(Role::Write, &["app/"]);
        assert!(permits(&write_app, &Need { role: Role::Read, scope: Scope::Name("app/x".into()) }).is_ok());
        assert!(permits(&write_app, &Need { role: Role::Write, scope: Scope::Name("app/x".into()) }).is_ok());
        assert!(permits(&write_app, &Need { role: Role::Write, scope: Scope::Name("ap".into()) }).is_err());
        assert!(permits(&write_app, &Need { role: Role::Admin, scope: Scope::Unnamed }).is_err());
        assert!(permits(&write_app, &Need { role: Role::Read, scope: Scope::Prefix("app/sub".into()) }).is_ok());
        assert!(permits(&write_app, &Need { role: Role::Read, scope: Scope::Prefix(String::new()) }).is_err());
        let read_any = caller(Role::Read, &[]);
        assert!(permits(&read_any, &Need { role: Role::Read, scope: Scope::Prefix(String::new()) }).is_ok());
        assert_eq!(permits(&read_any, &Need { role: Role::Write, scope: Scope::Unnamed }).map_err(|e| e.status), Err(StatusCode::FORBIDDEN));
    }

    #[test]
    fn bearer_parsing_refuses_malformed_tokens() {
        let headers = |value: &str| {
            let mut headers = HeaderMap::new();
            headers.insert(header::AUTHORIZATION, HeaderValue::from_str(value).expect("test header"));
            headers
        };
        assert_eq!(bearer(&headers("Bearer 12.abc")).ok(), Some((12, "abc")));
        assert_eq!(bearer(&headers("bearer 12.abc")).ok(), Some((12, "abc")));
        for bad in ["Basic 12.abc", "Bearer 12", "Bearer x.abc", "Bearer 12.", "Bearer", "Bearer -1.abc"] {
            assert_eq!(bearer(&headers(bad)).map_err(|e| e.code), Err("invalid_token"), "{bad}");
        }
        assert_eq!(bearer(&headers(&format!("Bearer 1.{}", "a".repeat(SECRET_CHARS_MAX + 1)))).map_err(|e| e.code), Err("invalid_token"));
        assert_eq!(bearer(&HeaderMap::new()).map_err(|e| e.code), Err("token_required"));
    }

    #[test]
    fn a_leader_decides_only_after_applying_an_entry_of_its_term() {
        let applied_in = |term: u64| Some(openraft::LogId::new(openraft::CommittedLeaderId::new(term, 1), 10));
        let metrics = |state, current_term, last_applied| {
            let mut metrics = openraft::RaftMetrics::new_initial(1);
            (metrics.state, metrics.current_term, metrics.last_applied) = (state, current_term, last_applied);
            metrics
        };
        use openraft::ServerState::{Follower, Leader};
        assert!(!tokens_decidable(&metrics(Leader, 3, applied_in(2))), "a new leader with its predecessor's entries only");
        assert!(!tokens_decidable(&metrics(Leader, 1, None)));
        assert!(tokens_decidable(&metrics(Leader, 3, applied_in(3))));
        assert!(tokens_decidable(&metrics(Follower, 3, applied_in(2))), "a follower decides from its own state");
    }

    #[test]
    fn new_secrets_differ_and_hash_as_checked() {
        let (a, hash_a) = new_secret().expect("random bytes");
        let (b, _) = new_secret().expect("random bytes");
        assert_ne!(a, b);
        assert_eq!(a.len(), 43);
        assert_eq!(sha256(&a), hash_a);
    }
}
