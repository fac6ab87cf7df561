//! Concord: a Raft-replicated coordination store.
//!
//! One replicated state machine (`state`) behind openraft (`raft`), served over
//! HTTP/JSON (`api`) and used through a Rust client (`client`). `node` wires one
//! member together from its configuration (`config`) and `server` accepts its
//! connections within their bounds, over TLS with `tls` (`dev_ca` makes throwaway
//! certificates); on the leader, `ticker` advances the replicated clock. See
//! `docs/architecture.md`.

pub mod api;
pub mod client;
pub mod codec;
pub mod config;
pub mod dev_ca;
pub mod format_version;
#[cfg(test)]
mod golden;
pub mod http_client;
pub mod node;
pub mod placement;
pub mod raft;
pub mod server;
pub mod state;
pub mod ticker;
pub mod tls;
pub mod wire;
