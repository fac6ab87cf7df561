//! Request extractors that fail with Concord's JSON errors instead of axum's text.
//!
//! Each wraps the axum extractor of the same name and maps its rejection to an
//! `ApiError`: a body over the limit (`DefaultBodyLimit`, set from
//! `Limits::body_bytes_max`) is a 413, a body sent as something other than JSON a
//! 415, anything else malformed (query, path, JSON syntax, JSON types) a 400. The
//! client gets a JSON answer it can parse, and the handler never runs.

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::StatusCode;
use axum::http::request::Parts;
use serde::de::DeserializeOwned;

use super::error::ApiError;

/// Query string, with unknown or malformed parameters rejected as 400.
pub struct ApiQuery<T>(pub T);
/// Path parameters.
pub struct ApiPath<T>(pub T);
/// A JSON body.
pub struct ApiJson<T>(pub T);
/// The raw body, bounded by the body limit (413 beyond it).
pub struct ApiBody(pub Bytes);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;
    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        axum::extract::Query::<T>::from_request_parts(parts, state)
            .await
            .map(|q| ApiQuery(q.0))
            .map_err(|e| ApiError::bad_request("invalid_query", e.body_text()))
    }
}

impl<T: DeserializeOwned + Send, S: Send + Sync> FromRequestParts<S> for ApiPath<T> {
    type Rejection = ApiError;
    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        axum::extract::Path::<T>::from_request_parts(parts, state).await.map(|p| ApiPath(p.0)).map_err(|e| ApiError::bad_request("invalid_path", e.body_text()))
    }
}

/// Whether a body sent with this `Content-Type` is read as JSON: JSON itself, none,
/// and `application/x-www-form-urlencoded`, which `curl -d` sends unless told
/// otherwise (no form field could be valid here, so reading it as JSON takes nothing
/// away). Any other type was chosen on purpose and is refused.
///
/// Not a form from a browser (`from_browser`: the request has an `Origin`): a web
/// page may send a form to any address without asking first (no CORS preflight), so
/// reading it would let any page a person visits acquire locks or add members on a
/// cluster that does not require tokens.
fn read_as_json(content_type: Option<&str>, from_browser: bool) -> bool {
    let Some(content_type) = content_type else { return true };
    let essence = content_type.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    essence == "application/json" || essence.ends_with("+json") || (essence == "application/x-www-form-urlencoded" && !from_browser)
}

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;
    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let content_type = req.headers().get(axum::http::header::CONTENT_TYPE).map(|v| v.to_str().unwrap_or("(not text)").to_string());
        if !read_as_json(content_type.as_deref(), req.headers().contains_key(axum::http::header::ORIGIN)) {
            let message = format!("the body must be JSON, sent as Content-Type: application/json, not {:?}", content_type.unwrap_or_default());
            return Err(ApiError::new(StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type", message));
        }
        let ApiBody(body) = ApiBody::from_request(req, state).await?;
        axum::Json::<T>::from_bytes(&body).map(|j| ApiJson(j.0)).map_err(|e| {
            let message = format!("the body must be a JSON object with this endpoint's fields (docs/api.md shows them): {}", e.body_text());
            ApiError::new(StatusCode::BAD_REQUEST, "invalid_json", message)
        })
    }
}

impl<S: Send + Sync> FromRequest<S> for ApiBody {
    type Rejection = ApiError;
    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        Bytes::from_request(req, state).await.map(ApiBody).map_err(|e| {
            if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::too_large("body_too_large", e.body_text())
            } else {
                ApiError::bad_request("invalid_body", e.body_text())
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::read_as_json;

    #[test]
    fn bodies_are_json_unless_declared_otherwise() {
        for accepted in [
            None,
            Some("application/json"),
            Some("Application/JSON; charset=utf-8"),
            Some("application/merge-patch+json"),
            Some("application/x-www-form-urlencoded"),
        ] {
            assert!(read_as_json(accepted, false), "{accepted:?}");
        }
        for refused in [Some("text/plain"), Some("multipart/form-data; boundary=x"), Some("application/octet-stream"), Some("")] {
            assert!(!read_as_json(refused, false), "{refused:?}");
        }
        assert!(!read_as_json(Some("application/x-www-form-urlencoded"), true), "a browser's form");
        assert!(read_as_json(Some("application/json"), true), "a browser's JSON (which needs a preflight)");
    }
}
