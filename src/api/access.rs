//! The HTTP door's token check: who the caller is (`Authorization: Bearer
//! <id>.<secret>`), and what it may do, decided on the typed request
//! (`crate::authorize`, `state::access`), not on the route.
//!
//! While the cluster requires tokens (`POST /v1/auth/enable`), every request except
//! `/health`, `/ready` and `/v1/openapi.json` must carry a valid token: `401`
//! without one. The handler then runs with the caller's token as its decision: each
//! command it proposes is checked by `Core::write` (`Command::access`), each cluster
//! request by `Admin::run`, and each read by the handler (`authorize`) before it
//! reads; `403` when the role or the name prefixes do not cover it. A handler that
//! answers success without any check is a bug, and its answer is replaced by a `500`
//! (fail closed).
//!
//! The node that serves a request decides from its applied state. When a follower
//! sends the write on, or asks the leader for a read index, the leader re-checks
//! against its own state (`Core::check_authority`): tokens never change once made, so
//! the follower's check of role and names holds, and only "required" and "still
//! exists" can have moved. So a write or a linearizable read is decided as of the
//! leader's state; stale reads and streams, which a node serves from its own state,
//! are decided from that, which may trail the leader's by the entries in flight. A
//! leader decides only once it has applied an entry of its own term
//! (`Core::wait_tokens_decidable`): a new leader's applied state may still lack a
//! revoke (or the enable) its predecessor committed, and a write checked against it
//! would apply after that revoke. The token itself is checked by
//! `authorize::authenticate`, as every door checks it.

use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use base64::Engine;

use super::AppState;
use super::error::ApiError;
use crate::authorize::{self, Decision, authorize, decided};
use crate::state::access::Access;
pub use crate::state::access::Caller;
use crate::state::auth::Role;

/// Random bytes in a new token's secret.
const SECRET_BYTES: usize = 32;

/// A new token's secret (URL-safe base64 of 32 random bytes) and its SHA-256.
pub fn new_secret() -> Result<(String, [u8; 32]), ApiError> {
    let mut bytes = [0u8; SECRET_BYTES];
    getrandom::fill(&mut bytes).map_err(|e| ApiError::internal(format!("cannot draw random bytes for a token: {e}")))?;
    let secret = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
    let hash = authorize::secret_sha256(&secret);
    Ok((secret, hash))
}

pub(super) fn unauthenticated(code: &'static str, message: impl Into<String>) -> ApiError {
    ApiError::new(StatusCode::UNAUTHORIZED, code, message)
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
    authorize::parse_token(token).ok_or_else(malformed)
}

/// Checks the request's bearer token against the applied state: `401` unless it
/// names a token that exists and its secret matches.
pub fn authenticate(app: &AppState, headers: &HeaderMap) -> Result<Caller, ApiError> {
    let (id, secret) = bearer(headers)?;
    authorize::authenticate(&app.reader, id, secret)?
        .ok_or_else(|| unauthenticated("invalid_token", format!("token {id} does not exist, was revoked, or its secret is wrong")))
}

/// Checks that the request may read the `what` called `name` (`authorize`).
pub fn read_name(what: &'static str, name: &str) -> Result<(), ApiError> {
    Ok(authorize(|| Access::name(Role::Read, what, name))?)
}

/// Checks that the request may read everything under `prefix`.
pub fn read_prefix(prefix: &str) -> Result<(), ApiError> {
    Ok(authorize(|| Access::prefix(Role::Read, prefix))?)
}

/// Checks that the request's token has `role` (for what has no name).
pub fn need(role: Role) -> Result<(), ApiError> {
    Ok(authorize(|| Access::unnamed(role))?)
}

/// The routes open to anyone, tokens or not.
fn is_public(path: &str) -> bool {
    matches!(path, "/health" | "/ready" | super::openapi::OPENAPI_PATH)
}

/// The layer: runs the handler with "no token required" while tokens are not
/// required, and with the caller once its token is authenticated (recording the
/// `Caller` for handlers that show it); `401` without a valid token.
pub async fn require_token(State(app): State<AppState>, mut request: Request, next: Next) -> Response {
    if is_public(request.uri().path()) {
        return next.run(request).await;
    }
    // Before anything is decided from the applied state, even whether tokens are
    // required: a new leader may not have applied an enable its predecessor committed,
    // and a follower may not have applied what the leader has.
    if let Err(error) = app.core.wait_tokens_decidable().await {
        return ApiError::from(error).into_response();
    }
    // Most clusters require no token: no read of the auth table at all then.
    if !app.reader.tokens_required() {
        return decided(Decision::NoTokenRequired, next.run(request)).await.0;
    }
    let checked = app.reader.auth_settings().map_err(ApiError::from).and_then(|settings| match settings.value.enabled {
        true => authenticate(&app, request.headers()).map(Some),
        false => Ok(None),
    });
    match checked {
        Ok(None) => decided(Decision::NoTokenRequired, next.run(request)).await.0,
        Ok(Some(caller)) => {
            request.extensions_mut().insert(caller.clone());
            match decided(Decision::Token(caller), next.run(request)).await {
                (response, false) if response.status().is_success() => {
                    tracing::error!("a route answered success without checking the token; its answer was withheld");
                    ApiError::internal("this route did not check the token (a bug of Concord's: please report it); its answer was withheld").into_response()
                }
                (response, _) => response,
            }
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
        assert_eq!(bearer(&headers(&format!("Bearer 1.{}", "a".repeat(256 + 1)))).map_err(|e| e.code), Err("invalid_token"));
        assert_eq!(bearer(&HeaderMap::new()).map_err(|e| e.code), Err("token_required"));
    }

    #[test]
    fn new_secrets_differ_and_hash_as_checked() {
        let (a, hash_a) = new_secret().expect("random bytes");
        let (b, _) = new_secret().expect("random bytes");
        assert_ne!(a, b);
        assert_eq!(a.len(), 43);
        assert_eq!(authorize::secret_sha256(&a), hash_a);
    }
}
