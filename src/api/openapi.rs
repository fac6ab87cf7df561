//! The OpenAPI 3.1 description of the client API, served at `GET /v1/openapi.json`.
//!
//! It is generated from the code, so it cannot drift from the handlers: every route
//! of `api::router` is registered from a handler's `#[utoipa::path]` annotation
//! (`utoipa_axum::routes!`), which names its path, method, parameters and body; the
//! query and body schemas are derived from the very structs the handlers parse. The
//! one exception is `/v1/kv/` (an empty key), a route that only answers `400`.
//! Answers are described by status, with the shared error shape (`ErrorBody`); their
//! fields are documented in docs/api.md.

use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{OpenApi as Document, PathItem};
use utoipa::{Modify, OpenApi};

use super::error::ErrorBody;

/// Where the description is served: the same on every node, and open without a token.
pub const OPENAPI_PATH: &str = "/v1/openapi.json";

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Concord",
        description = "A Raft-replicated coordination store: keys, leases, fencing-token locks, rings, queues and topics. Every write is acknowledged once it is on a quorum; reads are linearizable unless consistency=stale. Full reference: docs/api.md.",
    ),
    components(schemas(ErrorBody)),
    modifiers(&BearerTokens),
    tags(
        (name = "kv", description = "Keys and values, with revisions and compare-and-swap"),
        (name = "watch", description = "Streams of key changes"),
        (name = "leases", description = "TTLs on the replicated clock"),
        (name = "locks", description = "Locks with fencing tokens"),
        (name = "lists", description = "Lists (made by the Redis door's list commands), read"),
        (name = "rings", description = "Consistent-hash ring membership"),
        (name = "queues", description = "Durable work queues"),
        (name = "topics", description = "Publish/subscribe topics"),
        (name = "txn", description = "Transactions across keys, queues, topics, locks and leases"),
        (name = "cluster", description = "Membership, snapshots, health"),
        (name = "auth", description = "Client tokens"),
    )
)]
pub struct ApiDoc;

/// Declares the bearer tokens of `/v1/auth` (needed once a cluster requires them).
struct BearerTokens;

impl Modify for BearerTokens {
    fn modify(&self, document: &mut Document) {
        let components = document.components.get_or_insert_with(Default::default);
        let scheme = HttpBuilder::new().scheme(HttpAuthScheme::Bearer).bearer_format("<id>.<secret>").build();
        components.add_security_scheme("token", SecurityScheme::Http(scheme));
    }
}

/// The finished description: axum's catch-all `{*key}` written as OpenAPI's `{key}`.
pub fn finish(mut document: Document) -> Document {
    let paths = std::mem::take(&mut document.paths.paths);
    document.paths.paths = paths.into_iter().map(|(path, item): (String, PathItem)| (path.replace("{*", "{"), item)).collect();
    document
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_route_is_described_with_unique_operation_ids() {
        let json = serde_json::to_value(crate::api::openapi_document()).expect("serializable");
        let paths = json["paths"].as_object().expect("paths");
        for path in ["/v1/kv/{key}", "/v1/kv", "/v1/leases/{id}/keepalive", "/v1/queues/{queue}/receive", "/v1/auth/tokens/{id}", "/health"] {
            assert!(paths.contains_key(path), "{path} missing");
        }
        assert!(!paths.keys().any(|p| p.contains('*')), "an axum wildcard leaked into the description");
        let mut ids: Vec<&str> =
            paths.values().flat_map(|item| item.as_object().into_iter().flatten()).filter_map(|(_, op)| op["operationId"].as_str()).collect();
        let count = ids.len();
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(ids.len(), count, "operation ids repeat");
        assert_eq!(count, 50, "one operation per handler");
        assert!(json["components"]["securitySchemes"]["token"].is_object());
        // The transaction's and the keys' bodies are typed all the way down.
        let schemas = json["components"]["schemas"].as_object().expect("schemas");
        for schema in [
            "TxnRequest",
            "Compare",
            "Op",
            "TxnResponse",
            "OpResult",
            "KeyItem",
            "KeyAnswer",
            "PutAnswer",
            "ListAnswer",
            "ListContents",
            "LeaseRead",
            "LockRead",
        ] {
            assert!(schemas.contains_key(schema), "{schema} missing");
        }
        let answer = &paths["/v1/txn"]["post"]["responses"]["200"]["content"]["application/json"]["schema"]["$ref"];
        assert_eq!(answer, "#/components/schemas/TxnResponse");
    }
}
