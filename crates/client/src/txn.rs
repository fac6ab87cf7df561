//! The client's transaction call (`POST /v1/txn`), with the server's own body types
//! (`wire::txn`), so a program builds the request the server parses.

use reqwest::Method;

use super::{Client, ClientError, decode_json, new_idempotency_key};
use crate::wire::txn::{TxnRequest, TxnResponse};

impl Client {
    /// Runs `request` as one transaction. Retried with one `Idempotency-Key` (the
    /// given one, or a new one per call), so it applies at most once. A refusal (a
    /// condition naming a missing queue, an operation refused) is `ClientError::Api`
    /// and applied nothing; a condition that did not hold is `succeeded: false`.
    pub async fn txn(&self, request: &TxnRequest, idempotency_key: Option<&str>) -> Result<TxnResponse, ClientError> {
        let body = serde_json::to_vec(request).map_err(|e| ClientError::Protocol(e.to_string()))?;
        let key = idempotency_key.map_or_else(new_idempotency_key, str::to_string);
        let headers = [("content-type", "application/json".to_string()), ("idempotency-key", key)];
        let answer = self.call(Method::POST, "/v1/txn", &headers, Some(body)).await?;
        decode_json(&answer)
    }
}
