//! The one way Concord builds outgoing HTTP clients (peers, forwarding, the Rust client).
//!
//! HTTP/1.1 with a pool of keep-alive connections (no handshake per request), Nagle
//! off (small requests must not wait for an ACK), and a connect timeout so an
//! unreachable node fails fast and is reported as unreachable, not slow.

use std::time::Duration;

pub fn pooled(connect_timeout: Duration) -> reqwest::Result<reqwest::Client> {
    reqwest::Client::builder()
        .connect_timeout(connect_timeout)
        .pool_idle_timeout(Duration::from_secs(60))
        .pool_max_idle_per_host(32)
        .tcp_nodelay(true)
        .http1_only()
        .build()
}
