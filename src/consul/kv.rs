//! Consul's KV endpoints (`/v1/kv/{key}`) on Concord's keys: a key written here is
//! the same key `GET /v1/kv/{key}` reads on Concord's own API, and the other way
//! round.
//!
//! - `GET` answers a list of entries (`CreateIndex` and `ModifyIndex` are the key's
//!   create and mod revisions, `Flags` its flags, `Value` base64 or null when empty),
//!   or `404` with an empty body; `?raw` the bare value, `?recurse` every key under
//!   the prefix, `?keys` their names (cut after `?separator`), `?stale` a read of this
//!   node's state, `?index`+`?wait` a blocking query (`blocking`). `X-Consul-Index` is
//!   the cluster revision of the read.
//! - `PUT` writes the body as the value, with `?flags`; `?cas=N` only if the key's
//!   mod revision is `N` (0: only if it does not exist); `?acquire=S` only if no
//!   other session holds the key (then session `S` does), `?release=S` only if `S`
//!   holds it (`state::session`). It answers `true` or `false`.
//! - `DELETE` deletes the key, or with `?recurse` every key under it; `?cas=N` as for
//!   `PUT`. It answers `true` or `false`.
//!
//! Lists (Redis's) are keys Consul has no word for: they are left out of listings and
//! read as absent. An entry's `LockIndex` and `Session` are the key's hold.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use serde::Serialize;

use super::blocking::{self, Watched};
use super::query::Flags;
use super::sessions;
use crate::api::AppState;
use crate::api::access;
use crate::api::error::ApiError;
use crate::api::extract::ApiPath;
use crate::api::kv::{Consistency, delete_prefix_rounds};
use crate::state::command::{Command, Outcome, Precondition, Rejection, Request};
use crate::state::expiry::Ttl;
use crate::state::kv::{self, KvCommand, KvOutcome, KvRejection, StringRead};
use crate::state::lease::LeaseRejection;
use crate::state::session::{SessionCommand, SessionOutcome};

/// One key as Consul answers it.
#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct Entry {
    create_index: u64,
    modify_index: u64,
    lock_index: u64,
    key: String,
    flags: u64,
    value: Option<String>,
    /// The session holding it, if one does.
    #[serde(skip_serializing_if = "Option::is_none")]
    session: Option<String>,
}

impl Entry {
    fn of(key: String, string: &StringRead) -> Self {
        let record = &string.record;
        let value = (!record.value.is_empty()).then(|| base64::engine::general_purpose::STANDARD.encode(&record.value));
        Entry {
            create_index: record.meta.create_revision,
            modify_index: record.meta.mod_revision,
            lock_index: string.hold.lock_index,
            key,
            flags: string.flags,
            value,
            session: string.hold.session.map(sessions::id_text),
        }
    }
}

/// `consistency` as the query asks: `?stale` reads this node's state; `?consistent`
/// and the default are linearizable.
fn consistency(flags: &Flags) -> Consistency {
    if flags.has("stale") { Consistency::Stale } else { Consistency::Linearizable }
}

/// An answer carrying the index its read reflects.
fn with_index(mut response: Response, revision: u64) -> Response {
    response.headers_mut().insert(super::INDEX, HeaderValue::from(revision.max(1)));
    response
}

fn not_found(revision: u64) -> Response {
    with_index(StatusCode::NOT_FOUND.into_response(), revision)
}

pub async fn get(State(app): State<AppState>, ApiPath(key): ApiPath<String>, RawQuery(query): RawQuery) -> Result<Response, ApiError> {
    read(app, key, Flags::parse(query.as_deref())).await
}

/// `GET /v1/kv/`: the root, for `?recurse` and `?keys` over every key.
pub async fn get_root(State(app): State<AppState>, RawQuery(query): RawQuery) -> Result<Response, ApiError> {
    read(app, String::new(), Flags::parse(query.as_deref())).await
}

async fn read(app: AppState, key: String, flags: Flags) -> Result<Response, ApiError> {
    let listing = flags.has("recurse") || flags.has("keys");
    match listing {
        true => access::read_prefix(&key)?,
        false => access::read_name("key", &key)?,
    }
    if !key.is_empty() {
        kv::validate_key(&key, app.limits.key_bytes_max)?;
    } else if !listing {
        return Err(ApiError::bad_request("empty_key", "Missing key name"));
    }
    let unchanged_since = match blocking::requested(&app, &flags)? {
        Some((index, wait)) => {
            let watched = if listing { Watched::Prefix(&key) } else { Watched::Key(&key) };
            (!blocking::wait_for_change(&app, watched, index, wait).await?).then_some(index)
        }
        None => None,
    };
    app.read_at(consistency(&flags)).await?;
    let answer = answer(&app, key, &flags)?;
    // Nothing it covers changed: the index it was given still holds.
    Ok(match unchanged_since {
        Some(index) => with_index(answer, index),
        None => answer,
    })
}

/// The answer to a read, once any wait is over.
fn answer(app: &AppState, key: String, flags: &Flags) -> Result<Response, ApiError> {
    if flags.has("keys") {
        return names(app, &key, flags.value("separator").filter(|separator| !separator.is_empty()));
    }
    if flags.has("recurse") {
        return entries(app, &key);
    }
    let read = app.reader.get_string(&key)?;
    let Some(string) = read.value else { return Ok(not_found(read.revision)) };
    let response = match flags.has("raw") {
        true => ([(header::CONTENT_TYPE, "application/octet-stream")], string.record.value.clone()).into_response(),
        false => Json([Entry::of(key, &string)]).into_response(),
    };
    Ok(with_index(response, read.revision))
}

/// Every key under `prefix` with its value (`?recurse`), read from one view; at most
/// `Limits::list_limit_max` of them, else an error rather than a silent cut.
fn entries(app: &AppState, prefix: &str) -> Result<Response, ApiError> {
    let limit = app.limits.list_limit_max;
    let read = app.reader.list_strings(prefix, limit)?;
    let (items, more) = read.value;
    if more {
        return Err(too_many(prefix, limit));
    }
    if items.is_empty() {
        return Ok(not_found(read.revision));
    }
    let entries: Vec<Entry> = items.into_iter().map(|(key, string)| Entry::of(key, &string)).collect();
    Ok(with_index(Json(entries).into_response(), read.revision))
}

fn too_many(prefix: &str, limit: usize) -> ApiError {
    ApiError::too_large("too_many_keys", format!("more than {limit} keys under {prefix:?}: Concord answers at most {limit} at once (docs/consul.md)"))
}

/// The names of the string keys under `prefix` (`?keys`), each cut after the first
/// `separator` past the prefix, once.
fn names(app: &AppState, prefix: &str, separator: Option<&str>) -> Result<Response, ApiError> {
    let limit = app.limits.list_limit_max;
    let read = app.reader.key_names(prefix, None, limit)?;
    let (found, more) = read.value;
    if more {
        return Err(too_many(prefix, limit));
    }
    let mut names: Vec<String> = Vec::new();
    for (name, kind) in found {
        if kind != crate::state::reader::KeyKind::String {
            continue;
        }
        let cut = separator.and_then(|separator| name[prefix.len()..].find(separator).map(|at| prefix.len() + at + separator.len()));
        let name = cut.map_or(name.clone(), |end| name[..end].to_string());
        if names.last() != Some(&name) {
            names.push(name);
        }
    }
    if names.is_empty() {
        return Ok(not_found(read.revision));
    }
    Ok(with_index(Json(names).into_response(), read.revision))
}

pub async fn put(State(app): State<AppState>, ApiPath(key): ApiPath<String>, RawQuery(query): RawQuery, body: Bytes) -> Result<Response, ApiError> {
    write_value(app, key, Flags::parse(query.as_deref()), body).await
}

/// `PUT /v1/kv/`: Consul's answer to a key without a name.
pub async fn put_root(RawQuery(_): RawQuery) -> Result<Response, ApiError> {
    Err(ApiError::bad_request("empty_key", "Missing key name"))
}

async fn write_value(app: AppState, key: String, flags: Flags, body: Bytes) -> Result<Response, ApiError> {
    kv::validate_key(&key, app.limits.key_bytes_max)?;
    kv::validate_value(&body, app.limits.value_bytes_max)?;
    let key_flags = flags.number("flags")?.unwrap_or(0);
    let cas = flags.number("cas")?;
    let given: Vec<&str> = ["cas", "acquire", "release"].into_iter().filter(|name| flags.has(name)).collect();
    if given.len() > 1 {
        return Err(ApiError::bad_request("invalid_query", format!("Conflicting flags: {}", given.join(", "))));
    }
    if let Some((name, text)) = ["acquire", "release"].into_iter().find_map(|name| flags.value(name).map(|text| (name, text))) {
        return hold(&app, key, body.to_vec(), key_flags, name == "acquire", text).await;
    }
    let precondition = cas_precondition(cas);
    let (value, lease, fence) = (body.to_vec(), None, None);
    let command = match key_flags {
        // A plain put, which every release reads (no flags to keep).
        0 => KvCommand::Put { key, value, precondition, lease, fence },
        flags => KvCommand::PutWithFlags { key, value, precondition, lease, fence, ttl: Ttl::Clear, flags },
    };
    let applied = match app.core.write(Request::from(Command::Kv(command))).await?.outcome {
        Outcome::Kv(KvOutcome::Put { .. }) => true,
        Outcome::Rejected(Rejection::Kv(KvRejection::PreconditionFailed { .. })) => false,
        other => return Err(unexpected(other)),
    };
    Ok(Json(applied).into_response())
}

/// `PUT ?acquire=` or `?release=`: the session takes the key or lets it go.
async fn hold(app: &AppState, key: String, value: Vec<u8>, flags: u64, acquire: bool, session_text: &str) -> Result<Response, ApiError> {
    let session = sessions::parse_id(session_text).ok_or_else(|| sessions::unknown_session(session_text))?;
    let command = match acquire {
        true => SessionCommand::Acquire { key, value, flags, session },
        false => SessionCommand::Release { key, value, flags, session },
    };
    match app.core.write(Request::from(Command::Session(command))).await?.outcome {
        Outcome::Session(SessionOutcome::Held { done, .. }) => Ok(Json(done).into_response()),
        Outcome::Rejected(Rejection::Lease(LeaseRejection::NotFound { .. })) => Err(sessions::unknown_session(session_text)),
        other => Err(unexpected(other)),
    }
}

pub async fn delete(State(app): State<AppState>, ApiPath(key): ApiPath<String>, RawQuery(query): RawQuery) -> Result<Response, ApiError> {
    remove(app, key, Flags::parse(query.as_deref())).await
}

/// `DELETE /v1/kv/?recurse`: every key.
pub async fn delete_root(State(app): State<AppState>, RawQuery(query): RawQuery) -> Result<Response, ApiError> {
    let flags = Flags::parse(query.as_deref());
    if !flags.has("recurse") {
        return Err(ApiError::bad_request("empty_key", "Missing key name"));
    }
    remove(app, String::new(), flags).await
}

async fn remove(app: AppState, key: String, flags: Flags) -> Result<Response, ApiError> {
    let cas = flags.number("cas")?;
    if flags.has("recurse") {
        if cas.is_some() {
            return Err(ApiError::bad_request("invalid_query", "Conflicting flags: cas and recurse"));
        }
        if !key.is_empty() {
            kv::validate_key(&key, app.limits.key_bytes_max)?;
        }
        let deleted = delete_prefix_rounds(&app, &key).await?;
        if deleted.more {
            let message = format!("keys under {key:?} remain after {} were deleted in the time one request takes; repeat the request", deleted.deleted);
            return Err(ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "more_to_delete", message));
        }
        return Ok(Json(true).into_response());
    }
    kv::validate_key(&key, app.limits.key_bytes_max)?;
    let command = KvCommand::Delete { key, precondition: cas_precondition(cas), fence: None };
    let applied = match app.core.write(Request::from(Command::Kv(command))).await?.outcome {
        Outcome::Kv(KvOutcome::Deleted { .. }) => true,
        // Deleting what is not there succeeds, as in Consul, unless a `cas` said
        // which revision to delete.
        Outcome::Rejected(Rejection::Kv(KvRejection::NotFound { .. })) => cas.is_none_or(|cas| cas == 0),
        Outcome::Rejected(Rejection::Kv(KvRejection::PreconditionFailed { .. })) => false,
        other => return Err(unexpected(other)),
    };
    Ok(Json(applied).into_response())
}

/// `?cas=N`: only at mod revision `N`; 0, only if the key does not exist.
fn cas_precondition(cas: Option<u64>) -> Precondition {
    match cas {
        None => Precondition::None,
        Some(0) => Precondition::Absent,
        Some(revision) => Precondition::ModRevision(revision),
    }
}

pub(super) fn unexpected(outcome: Outcome) -> ApiError {
    match outcome {
        Outcome::Rejected(rejection) => crate::api::outcome::rejection_error(rejection),
        other => ApiError::internal(format!("a key write produced an unexpected outcome ({other:?})")),
    }
}
