//! JSON bodies of the HTTP API as types, shared by the server (`api`), the Rust client
//! (`client`) and the OpenAPI description, so the three cannot drift apart. One file
//! per resource, the event streams' events included (`watch`; a subscription's events
//! are `topics::Message`s).

pub mod auth;
pub mod cluster;
pub mod kv;
pub mod leases;
pub mod lists;
pub mod locks;
pub mod queues;
pub mod rings;
pub mod topics;
pub mod txn;
pub mod watch;
