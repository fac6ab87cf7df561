//! `/v1/auth`: client tokens and whether the cluster requires them.
//!
//! `POST /v1/auth/tokens` makes a token and shows its secret once (the cluster keeps
//! only its SHA-256); `GET` lists and reads tokens, `DELETE` revokes one;
//! `POST /v1/auth/enable` (with an admin token) and `/disable` turn the requirement on
//! and off; `GET /v1/auth` says whether it is on; `GET /v1/auth/whoami` checks the
//! token presented. While tokens are required, all of this but `whoami` needs an
//! admin token (`access`); before, anyone who can reach the port may make the first
//! admin token, which is how a cluster is set up.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use super::AppState;
use super::access::{self, Caller};
use super::error::{ApiError, ErrorBody};
use super::extract::{ApiJson, ApiPath, ApiQuery};
use super::kv::{Consistency, ConsistencyQuery, WriteQuery};
use super::outcome::{propose, refuse_idempotency_key};
use crate::state::auth::{AuthCommand, AuthOutcome};
use crate::state::auth::{Role, TokenRecord};
use crate::state::command::{Command, Outcome};
use crate::wire::auth::{AuthChanged, AuthStatus, CreatedToken, TokenInfo, TokenListing, TokenRevoked, WhoAmI};

#[derive(Deserialize, Debug, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateBody {
    /// A label for people; not unique.
    #[serde(default)]
    name: String,
    #[schema(inline)]
    role: Role,
    #[serde(default)]
    prefixes: Vec<String>,
}

#[derive(Deserialize, Debug, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    after: Option<u64>,
    limit: Option<usize>,
    #[serde(default)]
    #[param(inline)]
    consistency: Consistency,
}

fn info(id: u64, name: &str, role: Role, prefixes: &[String]) -> TokenInfo {
    TokenInfo { id, name: name.to_string(), role: role.name().to_string(), prefixes: prefixes.to_vec() }
}

#[utoipa::path(post, path = "/v1/auth/tokens", tag = "auth", operation_id = "token_create", summary = "Make a client token (its secret is shown once)", request_body = CreateBody, responses((status = 201, description = "The token", body = CreatedToken), (status = "default", description = "An error; `code` says which (docs/api.md#error-codes)", body = ErrorBody)))]
pub async fn create(
    State(app): State<AppState>,
    ApiQuery(_): ApiQuery<WriteQuery>,
    headers: HeaderMap,
    ApiJson(body): ApiJson<CreateBody>,
) -> Result<Response, ApiError> {
    refuse_idempotency_key(&headers, "the secret is drawn for this request and shown once; a retry would make another token")?;
    let (secret, secret_sha256) = access::new_secret()?;
    let token = TokenRecord { name: body.name, role: body.role, prefixes: body.prefixes, secret_sha256 };
    if let Some(reason) = token.invalid() {
        return Err(ApiError::bad_request("invalid_token_settings", reason));
    }
    let shown = |id| CreatedToken {
        id,
        name: token.name.clone(),
        role: token.role.name().to_string(),
        prefixes: token.prefixes.clone(),
        token: format!("{id}.{secret}"),
    };
    let command = Command::Auth(AuthCommand::TokenCreate(token.clone()));
    propose(&app, &headers, command, |outcome| match outcome {
        Outcome::Auth(AuthOutcome::TokenCreated { id }) => Some((StatusCode::CREATED, Json(shown(id))).into_response()),
        _ => None,
    })
    .await
}

#[utoipa::path(get, path = "/v1/auth/tokens", tag = "auth", operation_id = "token_list", summary = "List tokens, never their secrets", params(ListQuery), responses((status = 200, description = "One page of tokens", body = TokenListing), (status = "default", description = "An error; `code` says which (docs/api.md#error-codes)", body = ErrorBody)))]
pub async fn list(State(app): State<AppState>, ApiQuery(query): ApiQuery<ListQuery>) -> Result<Response, ApiError> {
    access::need(Role::Admin)?;
    let limit = super::kv::page_limit(&app, query.limit)?;
    app.read_at(query.consistency).await?;
    let read = app.reader.tokens(query.after, limit)?;
    let (page, more) = read.value;
    let next_after = if more { page.last().map(|(id, _)| *id) } else { None };
    let items = page.iter().map(|(id, record)| info(*id, &record.name, record.role, &record.prefixes)).collect();
    Ok(Json(TokenListing { items, more, next_after, applied_index: read.applied_index }).into_response())
}

#[utoipa::path(get, path = "/v1/auth/tokens/{id}", tag = "auth", operation_id = "token_get", summary = "Read a token", params(("id" = u64, Path, description = "The token id"), ConsistencyQuery), responses((status = 200, description = "The token", body = TokenInfo), (status = "default", description = "An error; `code` says which (docs/api.md#error-codes)", body = ErrorBody)))]
pub async fn get(State(app): State<AppState>, ApiPath(id): ApiPath<u64>, ApiQuery(query): ApiQuery<ConsistencyQuery>) -> Result<Response, ApiError> {
    access::need(Role::Admin)?;
    app.read_at(query.consistency).await?;
    match app.reader.token(id)?.value {
        Some(record) => Ok(Json(info(id, &record.name, record.role, &record.prefixes)).into_response()),
        None => Err(ApiError::not_found("token_not_found", format!("token {id} does not exist (never created, or revoked)"))),
    }
}

#[utoipa::path(delete, path = "/v1/auth/tokens/{id}", tag = "auth", operation_id = "token_revoke", summary = "Revoke a token", params(("id" = u64, Path, description = "The token id"), ("Idempotency-Key" = Option<String>, Header, description = "Makes retries of this write apply at most once")), responses((status = 200, description = "Done", body = TokenRevoked), (status = "default", description = "An error; `code` says which (docs/api.md#error-codes)", body = ErrorBody)))]
pub async fn revoke(
    State(app): State<AppState>,
    ApiPath(id): ApiPath<u64>,
    ApiQuery(_): ApiQuery<WriteQuery>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    propose(&app, &headers, Command::Auth(AuthCommand::TokenRevoke { id }), |outcome| match outcome {
        Outcome::Auth(AuthOutcome::TokenRevoked { id }) => Some(Json(TokenRevoked { id, revoked: true }).into_response()),
        _ => None,
    })
    .await
}

#[utoipa::path(get, path = "/v1/auth", tag = "auth", operation_id = "auth_status", summary = "Are tokens required? How many exist?", params(ConsistencyQuery), responses((status = 200, description = "The settings", body = AuthStatus), (status = "default", description = "An error; `code` says which (docs/api.md#error-codes)", body = ErrorBody)))]
pub async fn status(State(app): State<AppState>, ApiQuery(query): ApiQuery<ConsistencyQuery>) -> Result<Response, ApiError> {
    access::need(Role::Admin)?;
    app.read_at(query.consistency).await?;
    let read = app.reader.auth_settings()?;
    let settings = read.value;
    Ok(Json(AuthStatus { enabled: settings.enabled, tokens: settings.tokens, admin_tokens: settings.admins, applied_index: read.applied_index })
        .into_response())
}

fn changed(outcome: Outcome) -> Option<Response> {
    match outcome {
        Outcome::Auth(AuthOutcome::Changed { enabled }) => Some(Json(AuthChanged { enabled }).into_response()),
        _ => None,
    }
}

/// Requires tokens from now on. Takes an admin token even while none is required,
/// so whoever turns it on can still get in afterwards.
#[utoipa::path(post, path = "/v1/auth/enable", tag = "auth", operation_id = "auth_enable", summary = "Require tokens (takes an admin token)", params(("Idempotency-Key" = Option<String>, Header, description = "Makes retries of this write apply at most once")), responses((status = 200, description = "Done", body = AuthChanged), (status = "default", description = "An error; `code` says which (docs/api.md#error-codes)", body = ErrorBody)))]
pub async fn enable(State(app): State<AppState>, ApiQuery(_): ApiQuery<WriteQuery>, headers: HeaderMap) -> Result<Response, ApiError> {
    let caller = access::authenticate(&app, &headers)?;
    if caller.role != Role::Admin {
        return Err(ApiError::new(StatusCode::FORBIDDEN, "not_admin_token", format!("token {} is not an admin token; requiring tokens takes one", caller.id)));
    }
    propose(&app, &headers, Command::Auth(AuthCommand::Enable { by: caller.id }), changed).await
}

#[utoipa::path(post, path = "/v1/auth/disable", tag = "auth", operation_id = "auth_disable", summary = "Stop requiring tokens", params(("Idempotency-Key" = Option<String>, Header, description = "Makes retries of this write apply at most once")), responses((status = 200, description = "Done", body = AuthChanged), (status = "default", description = "An error; `code` says which (docs/api.md#error-codes)", body = ErrorBody)))]
pub async fn disable(State(app): State<AppState>, ApiQuery(_): ApiQuery<WriteQuery>, headers: HeaderMap) -> Result<Response, ApiError> {
    propose(&app, &headers, Command::Auth(AuthCommand::Disable), changed).await
}

/// The presented token, checked (whether or not tokens are required).
#[utoipa::path(get, path = "/v1/auth/whoami", tag = "auth", operation_id = "auth_whoami", summary = "Check the token sent", responses((status = 200, description = "The token", body = WhoAmI), (status = "default", description = "An error; `code` says which (docs/api.md#error-codes)", body = ErrorBody)))]
pub async fn whoami(State(app): State<AppState>, caller: Option<axum::Extension<Caller>>, headers: HeaderMap) -> Result<Response, ApiError> {
    access::need(Role::Read)?;
    let caller = match caller {
        Some(axum::Extension(caller)) => caller,
        None => access::authenticate(&app, &headers)?,
    };
    let enabled = app.reader.auth_settings()?.value.enabled;
    let TokenInfo { id, name, role, prefixes } = info(caller.id, &caller.name, caller.role, &caller.prefixes);
    Ok(Json(WhoAmI { id, name, role, prefixes, auth_enabled: enabled }).into_response())
}
