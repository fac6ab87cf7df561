//! Lists over HTTP, read only: `GET /v1/lists/{key}`. Lists are made and changed by
//! the Redis door's list commands (`resp::lists`); a list is a key, so
//! `DELETE /v1/kv/{key}` deletes one and a put replaces one with a string.

use axum::Json;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use super::AppState;
use super::access;
use super::error::{ApiError, ErrorBody};
use super::extract::{ApiPath, ApiQuery};
use super::kv::{Consistency, value_string};
use crate::state::kv;
use crate::state::list::ListRead;
use crate::wire::lists::{ListContents, ListItem};

#[derive(Deserialize, Debug, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    /// The first item to answer (from 0; negative: from the end, -1 the last).
    #[serde(default)]
    start: i64,
    /// The last item to answer, inclusive (default -1: the last; at most 100,000
    /// items are answered).
    #[serde(default = "last")]
    stop: i64,
    #[serde(default)]
    #[param(inline)]
    consistency: Consistency,
}

fn last() -> i64 {
    -1
}

#[utoipa::path(get, path = "/v1/lists/{*key}", tag = "lists", operation_id = "list_get", summary = "Read a list: its length and items (Redis's LRANGE)", params(("key" = String, Path, description = "The list's key (may contain slashes)"), ListQuery), responses((status = 200, description = "The list", body = ListContents), (status = "default", description = "An error; `code` says which (docs/api.md#error-codes)", body = ErrorBody)))]
pub async fn get(State(app): State<AppState>, ApiPath(key): ApiPath<String>, ApiQuery(query): ApiQuery<ListQuery>) -> Result<Response, ApiError> {
    access::read_name("key", &key)?;
    kv::validate_key(&key, app.limits.key_bytes_max)?;
    app.read_at(query.consistency).await?;
    let read = app.reader.list_items(&key, query.start, query.stop)?;
    let (list, expiry, items) = match read.value {
        ListRead::Items { list, expiry, items } => (list, expiry, items),
        ListRead::Absent => return Err(ApiError::not_found("list_not_found", format!("list {key:?} does not exist"))),
        ListRead::NotAList => {
            return Err(ApiError::new(axum::http::StatusCode::CONFLICT, "wrong_type", format!("key {key:?} holds a string: GET /v1/kv/{key}")));
        }
    };
    let ttl_ms = expiry.map(|expiry| expiry.left_ms(read.clock_ms));
    let items = items
        .iter()
        .map(|item| {
            let (value, encoding) = value_string(item);
            ListItem { encoding: encoding.to_string(), value }
        })
        .collect();
    let meta = list.meta;
    let answer = ListContents {
        applied_index: read.applied_index,
        create_revision: meta.create_revision,
        items,
        key,
        len: list.len,
        mod_revision: meta.mod_revision,
        revision: read.revision,
        ttl_ms,
        version: meta.version,
    };
    Ok(Json(answer).into_response())
}
