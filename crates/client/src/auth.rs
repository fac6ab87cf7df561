//! The client's token calls (`/v1/auth`): create, list and revoke tokens, require
//! them or not, and check the token this client sends. Creating a token carries no
//! `Idempotency-Key` (the server refuses one: the secret is shown once), so a create
//! retried after a lost answer may leave behind a token whose secret nobody saw:
//! harmless, listed, and revoked like any other.

use reqwest::Method;
use serde_json::json;

use super::{Client, ClientError, decode_json, json_body, keyed_json_headers};

pub use crate::wire::auth::{AuthChanged, AuthStatus, CreatedToken, TokenInfo, TokenRevoked, WhoAmI};

impl Client {
    /// Makes a token with `role` (`read`, `write`, `admin`), confined to `prefixes` if any.
    pub async fn token_create(&self, name: &str, role: &str, prefixes: &[String]) -> Result<CreatedToken, ClientError> {
        let body = json_body(&json!({ "name": name, "role": role, "prefixes": prefixes }));
        let headers = [("content-type", "application/json".to_string())];
        decode_json(&self.call(Method::POST, "/v1/auth/tokens", &headers, Some(body)).await?)
    }

    /// Every token (page by page; at most 1000 exist).
    pub async fn tokens(&self) -> Result<Vec<TokenInfo>, ClientError> {
        let mut tokens = Vec::new();
        let mut after = None;
        loop {
            let path = match after {
                None => "/v1/auth/tokens".to_string(),
                Some(after) => format!("/v1/auth/tokens?after={after}"),
            };
            let page: crate::wire::auth::TokenListing = decode_json(&self.call(Method::GET, &path, &[], None).await?)?;
            tokens.extend(page.items);
            match page.next_after {
                Some(next) => after = Some(next),
                None => return Ok(tokens),
            }
        }
    }

    pub async fn token_revoke(&self, id: u64) -> Result<TokenRevoked, ClientError> {
        decode_json(&self.call(Method::DELETE, &format!("/v1/auth/tokens/{id}"), &keyed_json_headers(), None).await?)
    }

    /// Requires tokens from now on (this client's token must be an admin token).
    pub async fn auth_enable(&self) -> Result<AuthChanged, ClientError> {
        decode_json(&self.call(Method::POST, "/v1/auth/enable", &keyed_json_headers(), None).await?)
    }

    pub async fn auth_disable(&self) -> Result<AuthChanged, ClientError> {
        decode_json(&self.call(Method::POST, "/v1/auth/disable", &keyed_json_headers(), None).await?)
    }

    /// Whether tokens are required, and how many exist (admin).
    pub async fn auth_status(&self) -> Result<AuthStatus, ClientError> {
        decode_json(&self.call(Method::GET, "/v1/auth", &[], None).await?)
    }

    /// The token this client sends, as the cluster knows it.
    pub async fn whoami(&self) -> Result<WhoAmI, ClientError> {
        decode_json(&self.call(Method::GET, "/v1/auth/whoami", &[], None).await?)
    }
}
