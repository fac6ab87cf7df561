//! Consul's sessions (`/v1/session/*`) on Concord's (`state::session`): a session is
//! a lease on the replicated clock, so a leader change neither resets nor ends it
//! early, and the keys it holds are let go or deleted (its `Behavior`) in the same
//! entry that ends it.
//!
//! A session's id is its lease's, written as a UUID (`id_text`), as Consul's clients
//! expect one. A session without a `TTL` gets Consul's longest, 24 hours: Concord
//! has no node health checks to end it otherwise.

use std::collections::BTreeMap;
use std::time::Duration;

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use crate::api::AppState;
use crate::api::access;
use crate::api::error::ApiError;
use crate::api::extract::ApiPath;
use crate::state::auth::Role;
use crate::state::command::{Command, Outcome, Rejection, Request};
use crate::state::lease::{LeaseCommand, LeaseOutcome, LeaseRecord, LeaseRejection};
use crate::state::session::{Behavior, NAME_BYTES_MAX, SessionCommand, SessionRecord};

/// Consul's bounds on a session's TTL, and the TTL of a session that names none.
const TTL_MIN: Duration = Duration::from_secs(10);
const TTL_MAX: Duration = Duration::from_secs(24 * 3600);
/// Consul's default lock delay, and its longest.
const LOCK_DELAY_DEFAULT: Duration = Duration::from_secs(15);
const LOCK_DELAY_MAX: Duration = Duration::from_secs(60);
/// The first three groups of every session id: what is left holds the lease id.
const ID_HEAD: &str = "00000000-0000-4000-";

/// Session `id` as a UUID: `00000000-0000-4000-HHHH-LLLLLLLLLLLL`, the lease id's
/// high 16 bits and low 48 in hex.
pub fn id_text(id: u64) -> String {
    format!("{ID_HEAD}{:04x}-{:012x}", id >> 48, id & 0xffff_ffff_ffff)
}

/// The lease id a session id names, if it is one of `id_text`'s.
pub fn parse_id(text: &str) -> Option<u64> {
    let (high, low) = text.strip_prefix(ID_HEAD)?.split_once('-')?;
    if high.len() != 4 || low.len() != 12 {
        return None;
    }
    Some((u64::from_str_radix(high, 16).ok()? << 48) | u64::from_str_radix(low, 16).ok()?)
}

pub(super) fn unknown_session(text: &str) -> ApiError {
    ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "invalid_session", format!("invalid session {text:?}"))
}

/// A JSON body's fields, their names as Consul matches them: in any case, with or
/// without underscores (`LockDelay`, `lockdelay`, `lock_delay`). An empty body is `{}`.
pub fn fields(body: &[u8]) -> Result<BTreeMap<String, Value>, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(BTreeMap::new());
    }
    let parsed: Value = serde_json::from_slice(body).map_err(|e| ApiError::bad_request("invalid_json", format!("Request decode failed: {e}")))?;
    let Value::Object(object) = parsed else { return Err(ApiError::bad_request("invalid_json", "Request decode failed: the body is not a JSON object")) };
    Ok(object.into_iter().map(|(name, value)| (name.to_ascii_lowercase().replace('_', ""), value)).collect())
}

/// A duration field: a Go duration string, or a number of nanoseconds (below 1,000, of
/// seconds, as Consul reads a lock delay).
fn duration_field(fields: &BTreeMap<String, Value>, name: &str) -> Result<Option<Duration>, ApiError> {
    let invalid = || ApiError::bad_request("invalid_json", format!("Request decode failed: {name} is not a duration"));
    match fields.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(text)) if text.is_empty() => Ok(None),
        Some(Value::String(text)) => super::query::go_duration(text).map(Some).ok_or_else(invalid),
        Some(Value::Number(number)) => match number.as_u64() {
            Some(small) if small < 1000 => Ok(Some(Duration::from_secs(small))),
            Some(nanos) => Ok(Some(Duration::from_nanos(nanos))),
            None => Err(invalid()),
        },
        Some(_) => Err(invalid()),
    }
}

fn text_field(fields: &BTreeMap<String, Value>, name: &str) -> Result<String, ApiError> {
    let text = match fields.get(name) {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(text)) => text.clone(),
        Some(_) => return Err(ApiError::bad_request("invalid_json", format!("Request decode failed: {name} is not a string"))),
    };
    if text.len() > NAME_BYTES_MAX {
        return Err(ApiError::too_large("too_large", format!("{name} is {} bytes, over {NAME_BYTES_MAX}", text.len())));
    }
    Ok(text)
}

/// `PUT /v1/session/create`: a session from the body's `Name`, `Node`, `TTL`,
/// `LockDelay` and `Behavior` (`Checks` are accepted and have no effect: there are no
/// node checks here). Answers `{"ID": ...}`.
pub async fn create(State(app): State<AppState>, body: Bytes) -> Result<Response, ApiError> {
    let fields = fields(&body)?;
    let ttl = duration_field(&fields, "ttl")?.unwrap_or(TTL_MAX);
    if !(TTL_MIN..=TTL_MAX).contains(&ttl) {
        return Err(ApiError::bad_request("invalid_ttl", format!("Invalid Session TTL '{ttl:?}', must be between [10s=24h0m0s]")));
    }
    let lock_delay = duration_field(&fields, "lockdelay")?.unwrap_or(LOCK_DELAY_DEFAULT);
    if lock_delay > LOCK_DELAY_MAX {
        return Err(ApiError::bad_request("invalid_lock_delay", format!("Invalid LockDelay '{lock_delay:?}', at most 60s")));
    }
    let behavior = match text_field(&fields, "behavior")?.as_str() {
        "" | "release" => Behavior::Release,
        "delete" => Behavior::Delete,
        other => return Err(ApiError::bad_request("invalid_behavior", format!("Invalid Behavior setting '{other}'"))),
    };
    let name = text_field(&fields, "name")?;
    let node = match text_field(&fields, "node")?.as_str() {
        "" => format!("concord-{}", app.node_id),
        node => node.to_string(),
    };
    let create = SessionCommand::Create { ttl_ms: ttl.as_millis() as u64, name, node, behavior, lock_delay_ms: lock_delay.as_millis() as u64 };
    match app.core.write(Request::from(Command::Session(create))).await?.outcome {
        Outcome::Lease(LeaseOutcome::Alive { id, .. }) => Ok(Json(json!({ "ID": id_text(id) })).into_response()),
        other => Err(super::kv::unexpected(other)),
    }
}

/// `PUT /v1/session/destroy/{id}`: ends it (`true`, also when it had ended).
pub async fn destroy(State(app): State<AppState>, ApiPath(text): ApiPath<String>) -> Result<Response, ApiError> {
    access::need(Role::Write)?;
    let Some(id) = parse_id(&text) else { return Ok(Json(true).into_response()) };
    match app.core.write(Request::from(Command::Lease(LeaseCommand::Revoke { id }))).await?.outcome {
        Outcome::Lease(LeaseOutcome::Revoked { .. }) | Outcome::Rejected(Rejection::Lease(LeaseRejection::NotFound { .. })) => Ok(Json(true).into_response()),
        other => Err(super::kv::unexpected(other)),
    }
}

/// `PUT /v1/session/renew/{id}`: restarts its TTL; the session, or `404`.
pub async fn renew(State(app): State<AppState>, ApiPath(text): ApiPath<String>) -> Result<Response, ApiError> {
    let not_found = || ApiError::not_found("session_not_found", format!("Session id '{text}' not found"));
    let id = parse_id(&text).ok_or_else(not_found)?;
    if app.reader.session(id)?.value.is_none() {
        return Err(not_found());
    }
    match app.core.write(Request::from(Command::Lease(LeaseCommand::KeepAlive { id }))).await?.outcome {
        Outcome::Lease(LeaseOutcome::Alive { .. }) => {}
        Outcome::Rejected(Rejection::Lease(LeaseRejection::NotFound { .. })) => return Err(not_found()),
        other => return Err(super::kv::unexpected(other)),
    }
    let read = app.reader.session(id)?;
    Ok(Json(read.value.map(|(session, lease)| vec![entry(id, &session, &lease)]).ok_or_else(not_found)?).into_response())
}

/// `GET /v1/session/info/{id}`: `[session]`, or `[]`.
pub async fn info(State(app): State<AppState>, ApiPath(text): ApiPath<String>) -> Result<Response, ApiError> {
    access::need(Role::Read)?;
    app.core.linearize().await?;
    let found = match parse_id(&text) {
        Some(id) => app.reader.session(id)?.value.map(|(session, lease)| entry(id, &session, &lease)),
        None => None,
    };
    Ok(Json(found.into_iter().collect::<Vec<_>>()).into_response())
}

/// `GET /v1/session/list`: every session (at most `Limits::list_limit_max`).
pub async fn list(State(app): State<AppState>) -> Result<Response, ApiError> {
    listed(&app, None).await
}

/// `GET /v1/session/node/{node}`: the sessions of `node`.
pub async fn of_node(State(app): State<AppState>, ApiPath(node): ApiPath<String>) -> Result<Response, ApiError> {
    listed(&app, Some(&node)).await
}

async fn listed(app: &AppState, node: Option<&str>) -> Result<Response, ApiError> {
    access::need(Role::Read)?;
    app.core.linearize().await?;
    let limit = app.limits.list_limit_max;
    let (sessions, more) = app.reader.sessions(limit)?.value;
    if more {
        return Err(ApiError::too_large("too_many_sessions", format!("more than {limit} sessions: Concord lists at most {limit} (docs/consul.md)")));
    }
    let entries: Vec<Value> =
        sessions.iter().filter(|(_, session, _)| node.is_none_or(|node| session.node == node)).map(|(id, session, lease)| entry(*id, session, lease)).collect();
    Ok(Json(entries).into_response())
}

/// A session as Consul answers it.
fn entry(id: u64, session: &SessionRecord, lease: &LeaseRecord) -> Value {
    json!({
        "ID": id_text(id),
        "Name": session.name,
        "Node": session.node,
        "LockDelay": session.lock_delay_ms.saturating_mul(1_000_000),
        "Behavior": match session.behavior { Behavior::Release => "release", Behavior::Delete => "delete" },
        "TTL": format!("{}s", lease.ttl_ms / 1000),
        "NodeChecks": [],
        "ServiceChecks": null,
        "CreateIndex": session.create_index,
        "ModifyIndex": session.create_index,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_session_id_is_a_uuid_that_names_its_lease_and_nothing_else_is() {
        for id in [1, 42, 0xffff_ffff_ffff, 0x1_0000_0000_0000, u64::MAX] {
            let text = id_text(id);
            assert_eq!(text.len(), 36, "{text}");
            assert_eq!(parse_id(&text), Some(id), "{text}");
        }
        for text in ["", "adf4238a-882b-9ddc-4a9d-5b6758e4159e", "00000000-0000-4000-0000-00000000002", "00000000-0000-4000-zzzz-000000000001"] {
            assert_eq!(parse_id(text), None, "{text}");
        }
    }

    #[test]
    fn body_fields_match_in_any_case_with_or_without_underscores() {
        let fields = fields(br#"{"LockDelay": "1s", "ttl": "30s", "Node_Name": "n"}"#).unwrap();
        assert_eq!(duration_field(&fields, "lockdelay").unwrap(), Some(Duration::from_secs(1)));
        assert_eq!(duration_field(&fields, "ttl").unwrap(), Some(Duration::from_secs(30)));
        assert!(fields.contains_key("nodename"));
        let numbers = super::fields(br#"{"LockDelay": 15, "Other": 2000000000}"#).unwrap();
        assert_eq!(duration_field(&numbers, "lockdelay").unwrap(), Some(Duration::from_secs(15)), "below 1,000: seconds");
        assert_eq!(duration_field(&numbers, "other").unwrap(), Some(Duration::from_secs(2)), "nanoseconds");
        assert!(super::fields(b"").unwrap().is_empty());
        assert!(super::fields(b"[1]").is_err() && super::fields(b"{").is_err());
        assert!(duration_field(&super::fields(br#"{"ttl": "soon"}"#).unwrap(), "ttl").is_err());
        assert!(duration_field(&super::fields(br#"{"ttl": "1s&x"}"#).unwrap(), "ttl").is_err(), "read as itself, not as a query string");
    }
}
