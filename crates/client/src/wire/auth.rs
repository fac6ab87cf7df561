//! The bodies of `/v1/auth` (docs/api.md, authentication). A role is `read`,
//! `write` or `admin`; a secret is never shown but once, at creation.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// A token as listed: everything but its secret.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, ToSchema)]
pub struct TokenInfo {
    pub id: u64,
    pub name: String,
    /// `read`, `write` or `admin`.
    pub role: String,
    /// The name prefixes it is confined to (none: every name).
    pub prefixes: Vec<String>,
}

/// `POST /v1/auth/tokens` (201): `token` (`<id>.<secret>`) is shown this once.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, ToSchema)]
pub struct CreatedToken {
    pub id: u64,
    pub name: String,
    pub role: String,
    pub prefixes: Vec<String>,
    pub token: String,
}

/// `GET /v1/auth/tokens`: one page of tokens by id.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, ToSchema)]
pub struct TokenListing {
    pub items: Vec<TokenInfo>,
    pub more: bool,
    /// Pass as `after` for the next page, when `more`.
    pub next_after: Option<u64>,
    pub applied_index: u64,
}

/// `DELETE /v1/auth/tokens/{id}`.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, ToSchema)]
pub struct TokenRevoked {
    pub id: u64,
    pub revoked: bool,
}

/// `GET /v1/auth`: whether tokens are required, and how many exist.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, ToSchema)]
pub struct AuthStatus {
    pub enabled: bool,
    pub tokens: u64,
    pub admin_tokens: u64,
    pub applied_index: u64,
}

/// `POST /v1/auth/enable` and `/v1/auth/disable`.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, ToSchema)]
pub struct AuthChanged {
    pub enabled: bool,
}

/// `GET /v1/auth/whoami`: the token sent, as the cluster knows it.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, ToSchema)]
pub struct WhoAmI {
    pub id: u64,
    pub name: String,
    pub role: String,
    pub prefixes: Vec<String>,
    /// Whether tokens are required now.
    pub auth_enabled: bool,
}
