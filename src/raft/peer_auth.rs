//! The cluster secret: who may send this node Raft RPCs.
//!
//! `identity` keeps out another cluster's nodes by accident; anyone can send its
//! header. With `--peer-secret-file`, every member holds the same secret, sends it
//! with each peer RPC (`Concord-Peer-Secret`), and answers `401`, before anything is
//! decoded or reaches Raft, to a request without it. A client that can reach the port
//! then cannot forge votes or appends (raise the term, unseat the leader, overwrite
//! the log).
//!
//! The secret travels as it is: against an eavesdropper on the peer network it needs
//! TLS underneath. It is compared in constant time, so timing does not reveal how
//! much of a guess was right.

use std::path::Path;
use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

pub const SECRET_HEADER: &str = "concord-peer-secret";
/// Shortest secret accepted: 16 bytes of text is about 80 bits from `openssl rand -base64`.
pub const SECRET_BYTES_MIN: usize = 16;
/// Longest secret accepted (it goes into every peer request's headers).
pub const SECRET_BYTES_MAX: usize = 1024;

/// The shared secret, or none (peers are then not authenticated).
#[derive(Clone, Default)]
pub struct PeerSecret {
    secret: Option<Arc<str>>,
}

impl std::fmt::Debug for PeerSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.secret.is_some() { "PeerSecret(set)" } else { "PeerSecret(none)" })
    }
}

impl PeerSecret {
    /// Reads the secret from `file`: its text with surrounding whitespace trimmed.
    pub fn read(file: &Path) -> Result<Self, String> {
        let text = std::fs::read_to_string(file).map_err(|e| format!("cannot read the peer secret file {}: {e}", file.display()))?;
        Self::new(text.trim())
    }

    pub fn new(secret: &str) -> Result<Self, String> {
        if !(SECRET_BYTES_MIN..=SECRET_BYTES_MAX).contains(&secret.len()) {
            return Err(format!("the peer secret must be {SECRET_BYTES_MIN} to {SECRET_BYTES_MAX} bytes, got {}", secret.len()));
        }
        // It goes into an HTTP header: visible ASCII only.
        if !secret.bytes().all(|b| b.is_ascii_graphic()) {
            return Err("the peer secret must be printable ASCII without spaces (e.g. from `openssl rand -base64 32`)".into());
        }
        Ok(Self { secret: Some(secret.into()) })
    }

    /// The header value to send, if there is a secret.
    pub fn header_value(&self) -> Option<&str> {
        self.secret.as_deref()
    }

    fn admits(&self, presented: Option<&[u8]>) -> bool {
        match (&self.secret, presented) {
            (None, _) => true,
            (Some(secret), Some(presented)) => constant_time_eq(secret.as_bytes(), presented),
            (Some(_), None) => false,
        }
    }
}

/// Equal contents, in a time that depends only on the lengths.
pub(crate) fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |differ, (x, y)| differ | (x ^ y)) == 0
}

/// The peer routes' guard: `401` without the cluster's secret.
pub async fn require_peer_secret(State(secret): State<PeerSecret>, request: Request, next: Next) -> Response {
    let presented = request.headers().get(SECRET_HEADER).map(|value| value.as_bytes());
    if !secret.admits(presented) {
        let message = match presented {
            None => "this node requires the cluster's peer secret (Concord-Peer-Secret); start every member with the same --peer-secret-file",
            Some(_) => "wrong peer secret; start every member with the same --peer-secret-file",
        };
        return (StatusCode::UNAUTHORIZED, message).into_response();
    }
    next.run(request).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_exact_secret_is_admitted() {
        let secret = PeerSecret::new("0123456789abcdef").unwrap();
        assert!(secret.admits(Some(b"0123456789abcdef")));
        assert!(!secret.admits(Some(b"0123456789abcdeF")));
        assert!(!secret.admits(Some(b"0123456789abcdef0")));
        assert!(!secret.admits(Some(b"")));
        assert!(!secret.admits(None));
        assert!(PeerSecret::default().admits(None), "no secret configured: peers are not authenticated");
    }

    #[test]
    fn short_or_unprintable_secrets_are_refused() {
        assert!(PeerSecret::new("short").unwrap_err().contains("16 to 1024"));
        assert!(PeerSecret::new("with spaces inside it").unwrap_err().contains("printable"));
        assert!(PeerSecret::new(&"x".repeat(SECRET_BYTES_MAX + 1)).is_err());
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("secret");
        std::fs::write(&file, "  0123456789abcdef\n").unwrap();
        assert_eq!(PeerSecret::read(&file).unwrap().header_value(), Some("0123456789abcdef"));
        assert!(PeerSecret::read(&dir.path().join("missing")).unwrap_err().contains("cannot read"));
    }
}
