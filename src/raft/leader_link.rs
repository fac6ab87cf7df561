//! A follower's calls to the leader at the command level (`service::Core`): a typed
//! write (`POST /raft/write`: a `Request` in, `Result<Response, ConsensusError>` back)
//! and a read index (`POST /raft/read_index`), through the peer network's connection
//! pool with everything a Raft RPC carries (cluster id, protocol version, cluster
//! secret, TLS). So any door on any node works without proxying its own protocol.
//! Like a Raft RPC, the call goes in the newest protocol version the leader speaks
//! (a leader of the previous release refuses the newer one with a 426 naming its own,
//! and the call is sent again in that one), encoded for it (`frames`).
//!
//! What a failed call means for a write is the definite/unknown contract: an answer
//! refused before the leader's handler ran (no connection, a 4xx of the peer guards)
//! proves nothing was proposed; a call lost after it was sent, or a leader failing
//! after its handler ran (5xx, an undecodable answer), may have applied.

use std::time::Duration;

use super::NodeId;
use super::frames::Frame;
use super::network::PeerNetwork;
use super::protocol::PROTOCOL_VERSION;

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
    /// Sends `request` to `/raft/{rpc}` of `leader` at `addr` (through the peer
    /// network's connection pool, as a Raft RPC goes) and decodes its answer, within
    /// `timeout`.
    pub async fn call_leader<Req: Frame, Resp: Frame>(
        &self,
        leader: NodeId,
        addr: &str,
        rpc: &str,
        request: &Req,
        timeout: Duration,
    ) -> Result<Resp, LinkError> {
        let mut version = self.contacts.speaks(leader).unwrap_or(PROTOCOL_VERSION).min(PROTOCOL_VERSION);
        let response = loop {
            let body = request.encode_in(version).map_err(|e| LinkError::NotSent(format!("cannot encode the call for it: {e}")))?;
            let response = match self.post(addr, rpc, version).timeout(timeout).body(body).send().await {
                Ok(response) => response,
                Err(e) if e.is_connect() => return Err(LinkError::NotSent(format!("no connection: {e}"))),
                Err(e) => return Err(LinkError::Lost(format!("the call was lost: {e}"))),
            };
            if let Ok(spoken) = super::protocol::check(response.headers()) {
                self.contacts.spoke(leader, spoken);
                // An older leader refused the newer version: say it again in its own.
                if response.status() == reqwest::StatusCode::UPGRADE_REQUIRED && spoken < version {
                    version = spoken;
                    continue;
                }
            }
            break response;
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
        Resp::decode_in(&bytes, version).map_err(|e| LinkError::Lost(format!("its answer does not decode: {e}")))
    }
}

#[cfg(test)]
mod tests {
    use axum::http::StatusCode;

    use super::*;
    use crate::codec;
    use crate::raft::identity::ClusterIdentity;
    use crate::raft::peer_auth::PeerSecret;
    use crate::raft::protocol::PROTOCOL_HEADER;
    use crate::service::{Authority, ConsensusError, ForwardedWrite};
    use crate::state::command::{Outcome, Receipt, Request, Response};
    use crate::state::queue::{QueueCommand, QueueOutcome};
    use crate::state::v2;

    /// A leader that answers every call with `status` and `body`, saying it speaks
    /// `speaks`; a call in another version gets a 426.
    async fn leader(status: StatusCode, body: Vec<u8>, speaks: u32) -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let app = axum::Router::new().fallback(move |headers: axum::http::HeaderMap| {
            let body = body.clone();
            async move {
                let version = [(PROTOCOL_HEADER, speaks.to_string())];
                match headers.get(PROTOCOL_HEADER).and_then(|v| v.to_str().ok()) == Some(speaks.to_string().as_str()) {
                    true => (status, version, body),
                    false => (StatusCode::UPGRADE_REQUIRED, version, b"not spoken here".to_vec()),
                }
            }
        });
        tokio::spawn(async move { axum::serve(listener, app).await });
        addr
    }

    #[tokio::test]
    async fn a_refusal_before_the_handler_is_not_sent_and_anything_after_is_lost() {
        let link = PeerNetwork::new(ClusterIdentity::default(), PeerSecret::default(), None, Default::default()).unwrap();
        let timeout = Duration::from_secs(5);
        let call = |addr: String, rpc: &'static str| {
            let link = link.clone();
            async move { link.call_leader::<_, Result<u64, ConsensusError>>(1, &addr, rpc, &Authority::NoTokenRequired, timeout).await }
        };
        let answer = codec::encode(&Ok::<u64, ConsensusError>(42)).unwrap();
        assert_eq!(call(leader(StatusCode::OK, answer, PROTOCOL_VERSION).await, "read_index").await, Ok(Ok(42)));
        for (status, sent) in [(StatusCode::NOT_FOUND, false), (StatusCode::UPGRADE_REQUIRED, false), (StatusCode::INTERNAL_SERVER_ERROR, true)] {
            let failed = call(leader(status, b"no".to_vec(), PROTOCOL_VERSION).await, "write").await.unwrap_err();
            assert_eq!(matches!(failed, LinkError::Lost(_)), sent, "{status}: {failed}");
        }
        let garbled = call(leader(StatusCode::OK, vec![0xff; 3], PROTOCOL_VERSION).await, "write").await;
        assert!(matches!(garbled, Err(LinkError::Lost(_))), "an answer that does not decode may follow an applied write: {garbled:?}");
        // Nobody listening: nothing was sent.
        let closed = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap().local_addr().unwrap().to_string();
        assert!(matches!(call(closed, "write").await, Err(LinkError::NotSent(_))));
    }

    #[tokio::test]
    async fn a_leader_of_the_previous_release_is_asked_again_in_its_version() {
        let contacts = crate::raft::peer_contacts::PeerContacts::default();
        let link = PeerNetwork::new(ClusterIdentity::default(), PeerSecret::default(), None, contacts.clone()).unwrap();
        let request = Request::from(QueueCommand::Ack { queue: "jobs".into(), receipt: Receipt { id: 1, delivery: 2 } });
        let forwarded = ForwardedWrite { authority: Authority::NoTokenRequired, request };
        let acked = Response::fresh(Outcome::Queue(QueueOutcome::Acked { queue: "jobs".into(), id: 1 }));
        // The old leader answers in version 2's encoding, which the link decodes as such.
        let answer = codec::encode(&Ok::<v2::Response, ConsensusError>(acked.clone().into())).unwrap();
        let addr = leader(StatusCode::OK, answer, 2).await;
        let written: Result<Response, ConsensusError> = link.call_leader(7, &addr, "write", &forwarded, Duration::from_secs(5)).await.unwrap();
        assert_eq!((written, contacts.speaks(7)), (Ok(acked), Some(2)));
    }
}
