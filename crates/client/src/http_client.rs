//! The one way Concord builds outgoing HTTP clients (peers, forwarding, the Rust client),
//! over TLS when the node or client has a CA to trust (`tls`).
//!
//! HTTP/1.1 with a pool of keep-alive connections (no handshake per request), Nagle
//! off (small requests must not wait for an ACK), and a connect timeout so an
//! unreachable node fails fast and is reported as unreachable, not slow.
//!
//! An idle pooled connection is dropped after `POOL_IDLE_TIMEOUT`, well before a
//! node closes it (`Limits::header_read_timeout_ms`, 10 s by default): otherwise a
//! request sent just as the node closes the connection is lost in flight, and a
//! forwarded write would then have to answer "outcome unknown".
//!
//! When a request fails, `failure_reason` says why in a few words: reqwest's own text
//! (`error sending request for url (...)`) hides the cause several sources deep.

use std::io::ErrorKind;
use std::time::Duration;

use crate::tls::ClientTls;

/// `https` with TLS, `http` without: how this node addresses its peers.
pub fn scheme(tls: Option<&ClientTls>) -> &'static str {
    if tls.is_some() { "https" } else { "http" }
}

/// How long an idle connection stays in the pool: under the nodes' idle timeout.
pub const POOL_IDLE_TIMEOUT: Duration = Duration::from_secs(4);

/// A pooled client; over TLS (trusting only the cluster's CA) when `tls` is given.
pub fn pooled(connect_timeout: Duration, tls: Option<&ClientTls>) -> reqwest::Result<reqwest::Client> {
    let builder = match tls {
        Some(tls) => tls.configure(reqwest::Client::builder())?,
        None => reqwest::Client::builder(),
    };
    builder.connect_timeout(connect_timeout).pool_idle_timeout(POOL_IDLE_TIMEOUT).pool_max_idle_per_host(32).tcp_nodelay(true).http1_only().build()
}

/// The cause of a failed request, in a few words: "connection refused", "timed out
/// after 1 s", or the innermost error's own text.
pub fn failure_reason(e: &reqwest::Error, connect_timeout: Duration) -> String {
    if e.is_timeout() && e.is_connect() {
        return format!("connect timed out after {}", seconds(connect_timeout));
    }
    if e.is_timeout() {
        return "no answer before the deadline".to_string();
    }
    let mut innermost: Option<&dyn std::error::Error> = None;
    let mut source = std::error::Error::source(e);
    while let Some(cause) = source {
        if let Some(io) = cause.downcast_ref::<std::io::Error>() {
            match io.kind() {
                ErrorKind::ConnectionRefused => return "connection refused (no node listening there?)".to_string(),
                ErrorKind::ConnectionReset => return "connection reset".to_string(),
                ErrorKind::TimedOut => return format!("connect timed out after {}", seconds(connect_timeout)),
                _ => {}
            }
        }
        innermost = Some(cause);
        source = cause.source();
    }
    innermost.map_or_else(|| e.to_string(), |cause| cause.to_string())
}

fn seconds(duration: Duration) -> String {
    format!("{} s", duration.as_secs_f64())
}
