//! `/v1/kv`: get, put, delete and list keys, and delete every key under a prefix.
//!
//! Values are bytes. Reads answer JSON by default, with the value as a UTF-8 string
//! when it is valid UTF-8 and as base64 otherwise (`"encoding"` says which), or the
//! raw bytes with `?raw=true` (metadata then travels in headers). Compare-and-swap is
//! plain HTTP: `If-Match: <mod_revision>` (or `*`: the key exists) and
//! `If-None-Match: *` (create only); the ETag of a key is its `mod_revision`.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use serde::Deserialize;
use serde_json::Value;

use super::AppState;
use super::access;
use super::blocking::wait_past;
use super::error::{ApiError, ErrorBody};
use super::extract::{ApiBody, ApiPath, ApiQuery};
use super::outcome::{propose, refuse_idempotency_key};
use crate::state::command::{Command, Fence, KeyMeta, Outcome, Precondition, Request};
use crate::state::expiry::Ttl;
use crate::state::kv::{self, InvalidInput, KvRecord, StringRead};
use crate::state::kv::{KvCommand, KvOutcome};
use crate::state::list::ListRead;
use crate::state::reader::AtIndex;
use crate::wire::kv::{DeleteAnswer, KeyAnswer, KeyItem, KeyRevisions, ListAnswer, PrefixDeletedAnswer, PutAnswer};

#[derive(Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Consistency {
    #[default]
    Linearizable,
    Stale,
}

/// The query of a read that takes nothing but `consistency`.
#[derive(Deserialize, Debug, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ConsistencyQuery {
    #[serde(default)]
    #[param(inline)]
    pub consistency: Consistency,
}

#[derive(Deserialize, Debug, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct GetQuery {
    #[serde(default)]
    #[param(inline)]
    consistency: Consistency,
    #[serde(default)]
    raw: bool,
    /// Blocking query: wait until the cluster revision is past this.
    index: Option<u64>,
    wait_ms: Option<u64>,
}

#[derive(Deserialize, Debug, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    #[serde(default)]
    prefix: String,
    after: Option<String>,
    limit: Option<usize>,
    #[serde(default)]
    #[param(inline)]
    consistency: Consistency,
    #[serde(default)]
    keys_only: bool,
    /// Blocking query: wait until the cluster revision is past this.
    index: Option<u64>,
    wait_ms: Option<u64>,
}

/// Writes without parameters: any given is an error rather than ignored.
#[derive(Deserialize, Debug, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct WriteQuery {}

#[derive(Deserialize, Debug, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct PutQuery {
    /// Attach the key to this lease (it is deleted when the lease ends).
    lease: Option<u64>,
    /// Delete the key this many ms after the write, on the replicated clock (at the
    /// first tick after; a leader change neither resets nor shortens it). Without it,
    /// a put takes away any expiry the key had.
    ttl_ms: Option<u64>,
    /// A 64-bit number the key carries beside its value (Consul's `Flags`); a put
    /// without it sets 0.
    flags: Option<u64>,
}

impl From<InvalidInput> for ApiError {
    fn from(e: InvalidInput) -> Self {
        match e {
            InvalidInput::EmptyKey => ApiError::bad_request("empty_key", e.to_string()),
            InvalidInput::KeyNotPrintable { .. } => ApiError::bad_request("invalid_key", e.to_string()),
            InvalidInput::KeyTooLarge { .. } => ApiError::too_large("key_too_large", e.to_string()),
            InvalidInput::ValueTooLarge { .. } => ApiError::too_large("value_too_large", e.to_string()),
        }
    }
}

/// A strong entity tag: the quoted `mod_revision` (`If-Match` takes it quoted or bare).
fn etag(meta: &KeyMeta) -> HeaderValue {
    HeaderValue::from_str(&format!("\"{}\"", meta.mod_revision)).unwrap_or_else(|_| HeaderValue::from_static("\"0\""))
}

/// The value as JSON: text when it is UTF-8, base64 otherwise (the second element
/// names the encoding).
pub fn value_json(value: &[u8]) -> (Value, &'static str) {
    let (text, encoding) = value_string(value);
    (Value::String(text), encoding)
}

/// `value` as JSON text: as it is when UTF-8 (`utf8`), in base64 otherwise.
pub fn value_string(value: &[u8]) -> (String, &'static str) {
    match std::str::from_utf8(value) {
        Ok(text) => (text.to_string(), "utf8"),
        Err(_) => (base64::engine::general_purpose::STANDARD.encode(value), "base64"),
    }
}

/// A stored key as the API shows it, with its value unless `with_value` is false.
pub fn key_item(key: String, record: &KvRecord, with_value: bool) -> KeyItem {
    let (value, encoding) = match with_value {
        true => value_text(&record.value),
        false => (None, None),
    };
    let meta = record.meta;
    KeyItem { create_revision: meta.create_revision, encoding, key, lease: record.lease, mod_revision: meta.mod_revision, value, version: meta.version }
}

/// The value as text and the name of its encoding (`value_json`'s, as strings).
fn value_text(value: &[u8]) -> (Option<String>, Option<String>) {
    let (value, encoding) = value_json(value);
    (value.as_str().map(str::to_string), Some(encoding.to_string()))
}

pub fn key_revisions(meta: &KeyMeta) -> KeyRevisions {
    KeyRevisions { create_revision: meta.create_revision, mod_revision: meta.mod_revision, version: meta.version }
}

/// Says which applied entry and revision a read reflects, and how it was read.
fn add_read_headers<T>(response: &mut Response, read: &AtIndex<T>, consistency: Consistency) {
    let consistency = match consistency {
        Consistency::Linearizable => "linearizable",
        Consistency::Stale => "stale",
    };
    let headers = response.headers_mut();
    headers.insert("concord-applied-index", HeaderValue::from(read.applied_index));
    headers.insert("concord-revision", HeaderValue::from(read.revision));
    headers.insert("concord-consistency", HeaderValue::from_static(consistency));
}

/// Parses `If-Match` / `If-None-Match` into a precondition.
pub fn precondition(headers: &HeaderMap) -> Result<Precondition, ApiError> {
    let text = |name: header::HeaderName| -> Result<Option<String>, ApiError> {
        headers
            .get(&name)
            .map(|v| v.to_str().map(|s| s.trim().to_string()))
            .transpose()
            .map_err(|_| ApiError::bad_request("invalid_precondition", format!("{name} is not visible ASCII")))
    };
    match (text(header::IF_MATCH)?, text(header::IF_NONE_MATCH)?) {
        (None, None) => Ok(Precondition::None),
        (Some(_), Some(_)) => Err(ApiError::bad_request("invalid_precondition", "give If-Match or If-None-Match, not both")),
        (None, Some(value)) if value == "*" => Ok(Precondition::Absent),
        (None, Some(value)) => Err(ApiError::bad_request("invalid_precondition", format!("If-None-Match supports only \"*\" (create only), got {value:?}"))),
        (Some(value), None) if value == "*" => Ok(Precondition::Exists),
        (Some(value), None) => {
            let revision = value.trim_start_matches("W/").trim_matches('"');
            revision.parse::<u64>().map(Precondition::ModRevision).map_err(|_| {
                ApiError::bad_request("invalid_precondition", format!("If-Match must be a mod_revision (a number, e.g. If-Match: 42) or *, got {value:?}"))
            })
        }
    }
}

pub const FENCE: &str = "concord-fence";

/// Parses `Concord-Fence: <lock>:<token>` (the token after the last colon).
pub fn fence(app: &AppState, headers: &HeaderMap) -> Result<Option<Fence>, ApiError> {
    let Some(value) = headers.get(FENCE) else {
        return Ok(None);
    };
    let bad = || ApiError::bad_request("invalid_fence", "Concord-Fence must be <lock name>:<token>, e.g. Concord-Fence: jobs/leader:1234");
    // Lock names are UTF-8, so the header is too (not only ASCII).
    let text = std::str::from_utf8(value.as_bytes()).map_err(|_| bad())?;
    let (lock, token) = text.rsplit_once(':').ok_or_else(bad)?;
    let token = token.trim().parse::<u64>().map_err(|_| bad())?;
    kv::validate_key(lock, app.limits.key_bytes_max)?;
    Ok(Some(Fence { lock: lock.to_string(), token }))
}

/// Renders a KV write's outcome.
fn kv_answer(key: &str, outcome: Outcome) -> Option<Response> {
    match outcome {
        Outcome::Kv(KvOutcome::Put { revision, meta, created }) => {
            let body = PutAnswer {
                create_revision: meta.create_revision,
                created,
                key: key.to_string(),
                mod_revision: meta.mod_revision,
                revision,
                version: meta.version,
            };
            let status = if created { StatusCode::CREATED } else { StatusCode::OK };
            Some((status, [(header::ETAG, etag(&meta))], Json(body)).into_response())
        }
        Outcome::Kv(KvOutcome::Deleted { revision, prev }) => {
            Some(Json(DeleteAnswer { deleted: true, key: key.to_string(), prev: key_revisions(&prev), revision }).into_response())
        }
        _ => None,
    }
}

#[utoipa::path(put, path = "/v1/kv/{*key}", tag = "kv", operation_id = "kv_put", summary = "Create or replace a key, optionally compare-and-swap", params(("key" = String, Path, description = "The key (may contain slashes)"), PutQuery, ("If-Match" = Option<String>, Header, description = "`<mod_revision>` or `*`: only if the key is at that revision, or exists"), ("If-None-Match" = Option<String>, Header, description = "`*`: only if the key does not exist"), ("Idempotency-Key" = Option<String>, Header, description = "Makes retries of this write apply at most once"), ("Concord-Fence" = Option<String>, Header, description = "`<lock>:<token>`: apply only while this token holds the lock")), request_body(content = String, content_type = "application/octet-stream", description = "The raw bytes"), responses((status = 200, description = "Replaced", body = PutAnswer), (status = 201, description = "Created", body = PutAnswer), (status = "default", description = "An error; `code` says which (docs/api.md#error-codes)", body = ErrorBody)))]
pub async fn put(
    State(app): State<AppState>,
    ApiPath(key): ApiPath<String>,
    ApiQuery(query): ApiQuery<PutQuery>,
    headers: HeaderMap,
    ApiBody(body): ApiBody,
) -> Result<Response, ApiError> {
    kv::validate_key(&key, app.limits.key_bytes_max)?;
    kv::validate_value(&body, app.limits.value_bytes_max)?;
    let precondition = precondition(&headers)?;
    let fence = fence(&app, &headers)?;
    let (value, lease) = (body.to_vec(), query.lease);
    let ttl = match query.ttl_ms {
        None => Ttl::Clear,
        Some(0) => return Err(ApiError::bad_request("invalid_ttl", "ttl_ms must be at least 1")),
        Some(ttl_ms) => Ttl::After { ttl_ms },
    };
    let command = match (query.flags.unwrap_or(0), ttl) {
        (0, Ttl::Clear) => KvCommand::Put { key: key.clone(), value, precondition, lease, fence },
        (0, ttl) => KvCommand::PutWithTtl { key: key.clone(), value, precondition, lease, fence, ttl },
        (flags, ttl) => KvCommand::PutWithFlags { key: key.clone(), value, precondition, lease, fence, ttl, flags },
    };
    let command = Command::Kv(command);
    propose(&app, &headers, command, |outcome| kv_answer(&key, outcome)).await
}

#[utoipa::path(delete, path = "/v1/kv/{*key}", tag = "kv", operation_id = "kv_delete", summary = "Delete a key, optionally compare-and-delete", params(("key" = String, Path, description = "The key (may contain slashes)"), ("If-Match" = Option<String>, Header, description = "`<mod_revision>` or `*`: only if the key is at that revision, or exists"), ("Idempotency-Key" = Option<String>, Header, description = "Makes retries of this write apply at most once"), ("Concord-Fence" = Option<String>, Header, description = "`<lock>:<token>`: apply only while this token holds the lock")), responses((status = 200, description = "Done", body = DeleteAnswer), (status = "default", description = "An error; `code` says which (docs/api.md#error-codes)", body = ErrorBody)))]
pub async fn delete(
    State(app): State<AppState>,
    ApiPath(key): ApiPath<String>,
    ApiQuery(_): ApiQuery<WriteQuery>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    kv::validate_key(&key, app.limits.key_bytes_max)?;
    let precondition = precondition(&headers)?;
    let fence = fence(&app, &headers)?;
    let command = Command::Kv(KvCommand::Delete { key: key.clone(), precondition, fence });
    propose(&app, &headers, command, |outcome| kv_answer(&key, outcome)).await
}

#[utoipa::path(get, path = "/v1/kv/{*key}", tag = "kv", operation_id = "kv_get", summary = "Read a key (JSON, or the raw bytes with raw=true)", params(("key" = String, Path, description = "The key (may contain slashes)"), GetQuery), responses((status = 200, description = "The key (JSON; with raw=true, its bytes)", body = KeyAnswer), (status = "default", description = "An error; `code` says which (docs/api.md#error-codes)", body = ErrorBody)))]
pub async fn get(State(app): State<AppState>, ApiPath(key): ApiPath<String>, ApiQuery(query): ApiQuery<GetQuery>) -> Result<Response, ApiError> {
    access::read_name("key", &key)?;
    kv::validate_key(&key, app.limits.key_bytes_max)?;
    wait_past(&app, query.index, query.wait_ms, |reader| Ok(reader.position()?.revision)).await?;
    app.read_at(query.consistency).await?;
    let read = app.reader.get_string(&key)?;
    let Some(StringRead { record, expiry, flags, .. }) = &read.value else {
        if let ListRead::Items { .. } = app.reader.list_items(&key, 0, 0)?.value {
            return Err(ApiError::new(StatusCode::CONFLICT, "wrong_type", format!("key {key:?} holds a list: GET /v1/lists/{key}")));
        }
        let mut error = ApiError::not_found("key_not_found", format!("key {key:?} does not exist")).into_response();
        add_read_headers(&mut error, &read, query.consistency);
        return Ok(error);
    };
    let mut response = if query.raw {
        let meta = [
            ("concord-create-revision", record.meta.create_revision),
            ("concord-mod-revision", record.meta.mod_revision),
            ("concord-version", record.meta.version),
        ];
        let mut response = ([(header::CONTENT_TYPE, "application/octet-stream")], record.value.clone()).into_response();
        let ttl_ms = expiry.map(|expiry| ("concord-ttl-ms", expiry.left_ms(read.clock_ms)));
        let flags = (*flags != 0).then_some(("concord-flags", *flags));
        for (name, value) in meta.into_iter().chain(ttl_ms).chain(flags) {
            response.headers_mut().insert(name, HeaderValue::from(value));
        }
        response
    } else {
        let (value, encoding) = value_json(&record.value);
        let meta = record.meta;
        Json(KeyAnswer {
            applied_index: read.applied_index,
            create_revision: meta.create_revision,
            encoding: encoding.to_string(),
            flags: *flags,
            key: key.clone(),
            lease: record.lease,
            mod_revision: meta.mod_revision,
            revision: read.revision,
            ttl_ms: expiry.map(|expiry| expiry.left_ms(read.clock_ms)),
            value: value.as_str().unwrap_or_default().to_string(),
            version: meta.version,
        })
        .into_response()
    };
    response.headers_mut().insert(header::ETAG, etag(&record.meta));
    add_read_headers(&mut response, &read, query.consistency);
    Ok(response)
}

/// The page size a listing asks for (default 100, capped by the limit), or 400.
pub fn page_limit(app: &AppState, requested: Option<usize>) -> Result<usize, ApiError> {
    let max = app.limits.list_limit_max;
    let limit = requested.unwrap_or(max.min(100));
    if limit == 0 || limit > max {
        return Err(ApiError::bad_request("invalid_limit", format!("limit must be between 1 and {max}, got {limit}")));
    }
    Ok(limit)
}

#[derive(Deserialize, Debug, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct DeletePrefixQuery {
    /// Delete every key that starts with this (`""`: every key).
    prefix: String,
}

/// Entries one prefix delete proposes before it answers: up to 100,000 keys (at
/// `kv::DELETE_PREFIX_BATCH_MAX` each), and no new one once `write_timeout_ms` has
/// passed. Past either the answer says `"more": true` and the caller repeats the
/// request, so no request holds the leader, or outlasts a client's deadline, for long.
const DELETE_PREFIX_ROUNDS_MAX: usize = 100;

#[utoipa::path(delete, path = "/v1/kv", tag = "kv", operation_id = "kv_delete_prefix", summary = "Delete every key under a prefix, in bounded entries", params(DeletePrefixQuery), responses((status = 200, description = "How many keys went, and whether more remain", body = PrefixDeletedAnswer), (status = "default", description = "An error; `code` says which (docs/api.md#error-codes)", body = ErrorBody)))]
pub async fn delete_prefix(State(app): State<AppState>, ApiQuery(query): ApiQuery<DeletePrefixQuery>, headers: HeaderMap) -> Result<Response, ApiError> {
    if !query.prefix.is_empty() {
        kv::validate_key(&query.prefix, app.limits.key_bytes_max)?;
    }
    refuse_idempotency_key(&headers, "a prefix delete may take several entries; repeat it instead (a repeat deletes what is left)")?;
    // Refused rather than ignored: a holder whose token went stale must not get an
    // unfenced mass delete.
    for header in [FENCE, header::IF_MATCH.as_str(), header::IF_NONE_MATCH.as_str()] {
        if headers.contains_key(header) {
            return Err(ApiError::bad_request("not_conditional", format!("a prefix delete takes no {header} header: it cannot be fenced or conditional")));
        }
    }
    let deleted = delete_prefix_rounds(&app, &query.prefix).await?;
    Ok(Json(PrefixDeletedAnswer { deleted: deleted.deleted, more: deleted.more, prefix: query.prefix, revision: deleted.revision }).into_response())
}

/// What `delete_prefix_rounds` did.
pub struct PrefixDeleted {
    pub deleted: u64,
    pub revision: u64,
    /// Keys with the prefix remain (the rounds' bounds were met).
    pub more: bool,
}

/// Deletes the keys starting with `prefix`, an entry at a time, within the bounds
/// above (the HTTP API's prefix delete, and Consul's `DELETE ?recurse`).
pub async fn delete_prefix_rounds(app: &AppState, prefix: &str) -> Result<PrefixDeleted, ApiError> {
    let started = tokio::time::Instant::now();
    let (mut deleted_total, mut rounds) = (0, 0);
    loop {
        let request = Request::from(KvCommand::DeletePrefix { prefix: prefix.to_string() });
        let Outcome::Kv(KvOutcome::PrefixDeleted { deleted, revision, more }) = app.core.write(request).await?.outcome else {
            return Err(ApiError::internal("a prefix delete produced an unexpected outcome"));
        };
        deleted_total += deleted;
        rounds += 1;
        if !more || rounds == DELETE_PREFIX_ROUNDS_MAX || started.elapsed() >= app.limits.write_timeout() {
            return Ok(PrefixDeleted { deleted: deleted_total, revision, more });
        }
    }
}

#[utoipa::path(get, path = "/v1/kv", tag = "kv", operation_id = "kv_list", summary = "List keys by prefix, paginated", params(ListQuery), responses((status = 200, description = "One page of keys", body = ListAnswer), (status = "default", description = "An error; `code` says which (docs/api.md#error-codes)", body = ErrorBody)))]
pub async fn list(State(app): State<AppState>, ApiQuery(query): ApiQuery<ListQuery>) -> Result<Response, ApiError> {
    access::read_prefix(&query.prefix)?;
    let limit = page_limit(&app, query.limit)?;
    for (name, text) in [("prefix", Some(query.prefix.as_str())), ("after", query.after.as_deref())] {
        if let Some(text) = text
            && text.len() > app.limits.key_bytes_max
        {
            return Err(ApiError::too_large("key_too_large", format!("{name} is {} bytes, over the key limit of {}", text.len(), app.limits.key_bytes_max)));
        }
    }
    wait_past(&app, query.index, query.wait_ms, |reader| Ok(reader.position()?.revision)).await?;
    app.read_at(query.consistency).await?;
    let read = app.reader.list(&query.prefix, query.after.as_deref(), limit)?;
    let next_after = if read.value.more { read.value.items.last().map(|(key, _)| key.clone()) } else { None };
    let items = read.value.items.iter().map(|(key, record)| key_item(key.clone(), record, !query.keys_only)).collect();
    let body = ListAnswer { applied_index: read.applied_index, items, more: read.value.more, next_after, revision: read.revision };
    let mut response = Json(body).into_response();
    add_read_headers(&mut response, &read, query.consistency);
    Ok(response)
}

pub async fn empty_key() -> ApiError {
    InvalidInput::EmptyKey.into()
}
