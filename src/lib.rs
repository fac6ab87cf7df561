//! Concord: a Raft-replicated coordination store. This crate is the server.
//!
//! The workspace has three crates, so the compiler keeps the layers apart
//! (`docs/architecture.md`):
//! - `concord-core` (`crates/core`): the replicated state machine (`state`), its
//!   commands and the one binary encoding (`codec`), the on-disk format versions;
//!   no HTTP, no network;
//! - `concord-client` (`crates/client`): the Rust client, the HTTP bodies shared
//!   with the server (`wire`) and ring placement; no RocksDB, no openraft;
//! - this one: openraft's glue (`raft`), the typed core every door calls
//!   (`service`: writes and linearizable reads, with typed consensus errors), its
//!   typed streams of applied changes (`streams`: watches, subscriptions), the
//!   HTTP/JSON API (`api`), one member wired
//!   together from its configuration (`node`, `config`), its connections within their
//!   bounds (`server`), TLS (`tls`, with throwaway certificates from `dev_ca`), the
//!   leader's replicated clock (`ticker`) and the CLI.
//!
//! The other two are re-exported under their old paths (`concord::state`,
//! `concord::client`, ...), so programs and tests see one `concord`.

pub use concord_client::{http_client, placement, wire};
pub use concord_core::{codec, format_version, golden, state};

/// The Rust client (`concord-client`): a program that needs only the client
/// depends on that crate, which builds without RocksDB and openraft.
pub mod client {
    pub use concord_client::*;
}

pub mod admin;
pub mod api;
pub mod authorize;
pub mod config;
pub mod consul;
pub mod dev_ca;
pub mod node;
pub mod raft;
pub mod resp;
pub mod server;
pub mod service;
pub mod streams;
pub mod ticker;
pub mod tls;
