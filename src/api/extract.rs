//! Request extractors that fail with Concord's JSON errors instead of axum's text.
//!
//! Each wraps the axum extractor of the same name and maps its rejection to an
//! `ApiError`: a body over the limit (`DefaultBodyLimit`, set from
//! `Limits::body_bytes_max`) is a 413, anything else malformed (query, path, JSON
//! syntax, JSON types, content type) is a 400. The client gets a JSON answer it can
//! parse, and the handler never runs.

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
        axum::extract::Path::<T>::from_request_parts(parts, state)
            .await
            .map(|p| ApiPath(p.0))
            .map_err(|e| ApiError::bad_request("invalid_path", e.body_text()))
    }
}

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;
    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        axum::Json::<T>::from_request(req, state).await.map(|j| ApiJson(j.0)).map_err(|e| {
            if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::too_large("body_too_large", e.body_text())
            } else {
                ApiError::new(StatusCode::BAD_REQUEST, "invalid_json", e.body_text())
            }
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
