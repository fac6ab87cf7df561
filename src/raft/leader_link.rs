//! A follower's calls to the leader at the command level (`service::Core`): a typed
//! write (`POST /raft/write`: a `Request` in, `Result<Response, ConsensusError>` back)
//! and a read index (`POST /raft/read_index`), through the peer network's connection
//! pool with everything a Raft RPC carries (cluster id, protocol version, cluster
//! secret, TLS). So any door on any node works without proxying its own protocol.
//!
//! What a failed call means for a write is the definite/unknown contract: an answer
//! refused before the leader's handler ran (no connection, a 4xx of the peer guards)
//! proves nothing was proposed; a call lost after it was sent, or a leader failing
//! after its handler ran (5xx, an undecodable answer), may have applied.

use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::network::PeerNetwork;
use super::protocol::PROTOCOL_VERSION;
use crate::codec;

/// Why a call to the leader brought no answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LinkError {
    /// Refused before the leader's handler ran: nothing was done.
    #[error("{0}")]
    NotSent(String),
    /// Sent, then lost (or the leader failed after its handler ran): it may have been done.
    #[error("{0}")]
    Lost(String),
}

impl PeerNetwork {
    /// Sends `request` to `/raft/{rpc}` of the node at `addr` (through the peer
    /// network's connection pool, as a Raft RPC goes) and decodes its answer, within
    /// `timeout`.
    pub async fn call_leader<Req: Serialize, Resp: DeserializeOwned>(
        &self,
        addr: &str,
        rpc: &str,
        request: &Req,
        timeout: Duration,
    ) -> Result<Resp, LinkError> {
        let body = codec::encode(request).map_err(|e| LinkError::NotSent(e.to_string()))?;
        let response = match self.post(addr, rpc, PROTOCOL_VERSION).timeout(timeout).body(body).send().await {
            Ok(response) => response,
            Err(e) if e.is_connect() => return Err(LinkError::NotSent(format!("no connection: {e}"))),
            Err(e) => return Err(LinkError::Lost(format!("the call was lost: {e}"))),
        };
        let status = response.status();
        let bytes = response.bytes().await.map_err(|e| LinkError::Lost(format!("the answer was lost: {e}")))?;
        if status.is_client_error() {
            let text = String::from_utf8_lossy(&bytes[..bytes.len().min(512)]).into_owned();
            return Err(LinkError::NotSent(format!("it refused the call ({status}): {text}")));
        }
        if !status.is_success() {
            return Err(LinkError::Lost(format!("it failed after taking the call ({status})")));
        }
        codec::decode(&bytes).map_err(|e| LinkError::Lost(format!("its answer does not decode: {e}")))
    }
}

#[cfg(test)]
mod tests {
    use axum::http::StatusCode;

    use super::*;
    use crate::raft::identity::ClusterIdentity;
    use crate::raft::peer_auth::PeerSecret;

    /// A leader that answers every call with `status` and `body`.
    async fn leader(status: StatusCode, body: Vec<u8>) -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let app = axum::Router::new().fallback(move || {
            let body = body.clone();
            async move { (status, body) }
        });
        tokio::spawn(async move { axum::serve(listener, app).await });
        addr
    }

    #[tokio::test]
    async fn a_refusal_before_the_handler_is_not_sent_and_anything_after_is_lost() {
        let link = PeerNetwork::new(ClusterIdentity::default(), PeerSecret::default(), None, Default::default()).unwrap();
        let timeout = Duration::from_secs(5);
        let answer = codec::encode(&Ok::<u64, String>(42)).unwrap();
        let ok: Result<Result<u64, String>, _> = link.call_leader(&leader(StatusCode::OK, answer).await, "read_index", &(), timeout).await;
        assert_eq!(ok, Ok(Ok(42)));
        for (status, sent) in [(StatusCode::NOT_FOUND, false), (StatusCode::UPGRADE_REQUIRED, false), (StatusCode::INTERNAL_SERVER_ERROR, true)] {
            let failed = link.call_leader::<_, Result<u64, String>>(&leader(status, b"no".to_vec()).await, "write", &(), timeout).await.unwrap_err();
            assert_eq!(matches!(failed, LinkError::Lost(_)), sent, "{status}: {failed}");
        }
        let garbled = link.call_leader::<_, Result<u64, String>>(&leader(StatusCode::OK, vec![0xff; 3]).await, "write", &(), timeout).await;
        assert!(matches!(garbled, Err(LinkError::Lost(_))), "an answer that does not decode may follow an applied write: {garbled:?}");
        // Nobody listening: nothing was sent.
        let closed = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap().local_addr().unwrap().to_string();
        let refused = link.call_leader::<_, Result<u64, String>>(&closed, "write", &(), timeout).await;
        assert!(matches!(refused, Err(LinkError::NotSent(_))), "{refused:?}");
    }
}
