//! The one error shape every client-facing endpoint answers with.
//!
//! `{"error":{"code":"...","message":"...","details":{...}}}` and a status that
//! tells the client what happened to its request:
//! 4xx — refused, nothing changed; 503 — not attempted (no leader, no quorum,
//! overloaded), safe to retry, with `Retry-After`; 504 — the write was proposed and no
//! answer came in time, so it *may* have happened (retry with the same
//! `Idempotency-Key` to find out without applying twice).

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde_json::Value;

#[derive(Debug, Clone)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    pub details: Option<Value>,
}

impl ApiError {
    /// The error as its answer's body shows it.
    pub fn body(self) -> ErrorBody {
        ErrorBody { error: ErrorFields { code: self.code, details: self.details, message: self.message } }
    }

    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self { status, code, message: message.into(), details: None }
    }

    pub fn with_details(mut self, details: Value) -> Self {
        self.details = Some(details);
        self
    }

    /// Leads the message with where the error was met (`success[2]`).
    pub fn with_prefix(mut self, prefix: &str) -> Self {
        self.message = format!("{prefix}: {}", self.message);
        self
    }

    pub fn with_message_suffix(mut self, suffix: &str) -> Self {
        self.message.push_str(suffix);
        self
    }

    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, message)
    }

    pub fn too_large(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::PAYLOAD_TOO_LARGE, code, message)
    }

    pub fn not_found(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, code, message)
    }

    /// Not attempted; retry (possibly elsewhere) after a moment.
    pub fn unavailable(message: impl Into<String>) -> Self {
        Self::new(StatusCode::SERVICE_UNAVAILABLE, "unavailable", message)
    }

    /// Proposed, but no answer: the write may or may not have been applied.
    pub fn outcome_unknown(message: impl Into<String>) -> Self {
        Self::new(StatusCode::GATEWAY_TIMEOUT, "outcome_unknown", message)
    }

    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", message)
    }
}

/// The body of every error answer (fields in alphabetical order, like all our JSON).
#[derive(Serialize, utoipa::ToSchema)]
pub struct ErrorBody {
    pub error: ErrorFields,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct ErrorFields {
    /// What went wrong, for programs: see docs/api.md, "Error codes".
    pub code: &'static str,
    /// Facts about the error that a program can act on (a current holder, a revision).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub details: Option<Value>,
    /// What went wrong and what to do, for people.
    pub message: String,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status;
        let mut response = (status, Json(self.body())).into_response();
        if status == StatusCode::SERVICE_UNAVAILABLE {
            response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        response
    }
}

impl From<crate::state::store::ViewError> for ApiError {
    fn from(e: crate::state::store::ViewError) -> Self {
        match e {
            crate::state::store::ViewError::Installing => ApiError::unavailable(e.to_string()),
            other => ApiError::internal(other.to_string()),
        }
    }
}
