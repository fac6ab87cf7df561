//! The client side of the peer transport: Raft RPCs to other members over HTTP.
//!
//! Each RPC is one `POST /raft/{append,vote,snapshot}` whose body and answer are
//! `codec` (postcard) frames, not JSON: entries carry binary values, and this is the
//! hot path of replication. One `reqwest::Client` (a pool of persistent keep-alive
//! connections) serves all peers; every call has openraft's per-RPC deadline.
//! Snapshots go through openraft's chunked transport (`install_snapshot`), so one
//! chunk at most is in memory.
//!
//! Every RPC names this node's cluster (`identity`) and its protocol version
//! (`protocol`), and carries the cluster secret when there is one (`peer_auth`); a
//! peer of another cluster refuses it, and so does one that does not speak the
//! version, as this node refuses an answer in a version it does not speak. The
//! version sent is the one the peer last answered in (this node's own until it has
//! answered): a peer of the previous release refuses the newer one with a 426 that
//! names its own, and the call is sent again in that one, encoded for it (`frames`),
//! unless that version cannot carry it (a snapshot), which the old peer could not read.
//!
//! Failure mapping matters to openraft: a connection that cannot be made is
//! `Unreachable` (openraft backs off), anything else transport-level is `Network`,
//! and a Raft-level refusal from the peer is `RemoteError`.

use std::time::Duration;

use openraft::error::{InstallSnapshotError, NetworkError, RPCError, RaftError, RemoteError, Unreachable};
use openraft::network::{RPCOption, RaftNetwork, RaftNetworkFactory};
use openraft::raft::{AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse, VoteRequest, VoteResponse};

use super::frames::{Frame, FrameError};
use super::identity::{CLUSTER_HEADER, ClusterIdentity};
use super::peer_auth::{PeerSecret, SECRET_HEADER};
use super::peer_contacts::PeerContacts;
use super::protocol::PROTOCOL_VERSION;
use super::{Node, NodeId, TypeConfig};

/// Creates per-peer clients that share one connection pool.
#[derive(Clone)]
pub struct PeerNetwork {
    http: reqwest::Client,
    identity: ClusterIdentity,
    secret: PeerSecret,
    /// `http` or `https` (`tls`).
    scheme: &'static str,
    /// How each peer's last RPC went, for `/v1/cluster`.
    pub(super) contacts: PeerContacts,
}

/// How long connecting to a peer may take.
const CONNECT_TIMEOUT: Duration = Duration::from_millis(500);

impl PeerNetwork {
    /// The newest peer protocol version `peer` was last heard speaking, if it was.
    pub fn speaks(&self, peer: NodeId) -> Option<u32> {
        self.contacts.speaks(peer)
    }

    pub fn new(identity: ClusterIdentity, secret: PeerSecret, tls: Option<&crate::tls::ClientTls>, contacts: PeerContacts) -> Result<Self, reqwest::Error> {
        let http = crate::http_client::pooled(CONNECT_TIMEOUT, tls)?;
        Ok(Self { http, identity, secret, scheme: crate::http_client::scheme(tls), contacts })
    }
}

impl PeerNetwork {
    /// A `POST /raft/{rpc}` to the node at `addr`, in protocol `version`, with what
    /// every peer call carries: the cluster id and, when there is one, the secret.
    pub(super) fn post(&self, addr: &str, rpc: &str, version: u32) -> reqwest::RequestBuilder {
        let sending = self
            .http
            .post(format!("{}://{addr}/raft/{rpc}", self.scheme))
            .header("content-type", "application/octet-stream")
            .header(CLUSTER_HEADER, self.identity.get().unwrap_or_default())
            .header(super::protocol::PROTOCOL_HEADER, version);
        match self.secret.header_value() {
            Some(secret) => sending.header(SECRET_HEADER, secret),
            None => sending,
        }
    }
}

/// The connection to one peer.
pub struct PeerClient {
    network: PeerNetwork,
    target: NodeId,
    addr: String,
}

impl RaftNetworkFactory<TypeConfig> for PeerNetwork {
    type Network = PeerClient;

    async fn new_client(&mut self, target: NodeId, node: &Node) -> PeerClient {
        PeerClient { network: self.clone(), target, addr: node.addr.clone() }
    }
}

impl PeerClient {
    /// Sends `request` in the newest protocol version the peer speaks, encoded for it.
    async fn call<Req, Resp, E>(&self, rpc: &str, request: &Req, option: &RPCOption) -> Result<Resp, RPCError<NodeId, Node, RaftError<NodeId, E>>>
    where
        Req: Frame,
        Result<Resp, RaftError<NodeId, E>>: Frame,
        E: std::error::Error,
    {
        let network_error = |message: String| RPCError::Network(NetworkError::new(&std::io::Error::other(message)));
        let mut version = self.network.contacts.speaks(self.target).unwrap_or(PROTOCOL_VERSION).min(PROTOCOL_VERSION);
        let response = loop {
            let body = match request.encode_in(version) {
                Ok(body) => body,
                Err(FrameError::NotCarried(message)) => {
                    self.network.contacts.refused(self.target, message.clone());
                    return Err(network_error(format!("peer {}: {message}", self.target)));
                }
                Err(FrameError::Codec(e)) => return Err(RPCError::Network(NetworkError::new(&e))),
            };
            let response = self.send(rpc, body, version, option).await?;
            let answered = super::protocol::check(response.headers());
            if let Ok(spoken) = answered {
                self.network.contacts.spoke(self.target, spoken);
                // An older peer refused the newer version: say it again in its own.
                if response.status() == reqwest::StatusCode::UPGRADE_REQUIRED && spoken < version {
                    version = spoken;
                    continue;
                }
            }
            match answered {
                Ok(_) => break response,
                Err(message) => {
                    self.network.contacts.refused(self.target, message.clone());
                    return Err(network_error(format!("peer {}: {message}", self.target)));
                }
            }
        };
        let status = response.status();
        match status.is_success() {
            true => self.network.contacts.answered(self.target),
            false => self.network.contacts.refused(self.target, format!("answered {status} to {rpc}")),
        }
        let bytes = response.bytes().await.map_err(|e| RPCError::Network(NetworkError::new(&e)))?;
        if !status.is_success() {
            let text = String::from_utf8_lossy(&bytes[..bytes.len().min(512)]).into_owned();
            let e = std::io::Error::other(format!("peer {} answered {status} to {rpc}: {text}", self.target));
            return Err(RPCError::Network(NetworkError::new(&e)));
        }
        let answer = <Result<Resp, RaftError<NodeId, E>>>::decode_in(&bytes, version).map_err(|e| RPCError::Network(NetworkError::new(&e)))?;
        answer.map_err(|e| RPCError::RemoteError(RemoteError::new(self.target, e)))
    }
}

impl PeerClient {
    async fn send<E>(
        &self,
        rpc: &str,
        body: Vec<u8>,
        version: u32,
        option: &RPCOption,
    ) -> Result<reqwest::Response, RPCError<NodeId, Node, RaftError<NodeId, E>>>
    where
        E: std::error::Error,
    {
        match self.network.post(&self.addr, rpc, version).timeout(option.hard_ttl()).body(body).send().await {
            Ok(response) => Ok(response),
            Err(e) => {
                self.network.contacts.unreachable(self.target, crate::http_client::failure_reason(&e, CONNECT_TIMEOUT));
                Err(if e.is_connect() { RPCError::Unreachable(Unreachable::new(&e)) } else { RPCError::Network(NetworkError::new(&e)) })
            }
        }
    }
}

impl RaftNetwork<TypeConfig> for PeerClient {
    async fn append_entries(
        &mut self,
        request: AppendEntriesRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<AppendEntriesResponse<NodeId>, RPCError<NodeId, Node, RaftError<NodeId>>> {
        self.call("append", &request, &option).await
    }

    async fn install_snapshot(
        &mut self,
        request: InstallSnapshotRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<InstallSnapshotResponse<NodeId>, RPCError<NodeId, Node, RaftError<NodeId, InstallSnapshotError>>> {
        self.call("snapshot", &request, &option).await
    }

    async fn vote(&mut self, request: VoteRequest<NodeId>, option: RPCOption) -> Result<VoteResponse<NodeId>, RPCError<NodeId, Node, RaftError<NodeId>>> {
        self.call("vote", &request, &option).await
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use axum::http::{HeaderMap, StatusCode};
    use openraft::raft::AppendEntriesResponse;
    use openraft::{CommittedLeaderId, EntryPayload, Vote};

    use super::*;
    use crate::codec;
    use crate::raft::protocol::PROTOCOL_HEADER;
    use crate::state::command::Request;
    use crate::state::topic::TopicCommand;
    use crate::state::v2;

    /// A peer of the previous release: it speaks version 2 only and refuses anything
    /// newer with a 426 naming its own, as `protocol::require_known_protocol` does.
    /// Records every append it read, decoded as version 2 frames.
    async fn old_peer() -> (std::net::SocketAddr, Arc<Mutex<Vec<AppendEntriesRequest<v2::Config>>>>) {
        let read = Arc::new(Mutex::new(Vec::new()));
        let seen = read.clone();
        let append = move |headers: HeaderMap, body: axum::body::Bytes| {
            let seen = seen.clone();
            async move {
                if headers.get(PROTOCOL_HEADER).and_then(|v| v.to_str().ok()) != Some("2") {
                    return (StatusCode::UPGRADE_REQUIRED, [(PROTOCOL_HEADER, "2")], b"peer protocol version 3 is not spoken here".to_vec());
                }
                seen.lock().unwrap().push(codec::decode(&body).expect("a version 2 frame"));
                let answer: Result<AppendEntriesResponse<NodeId>, RaftError<NodeId>> = Ok(AppendEntriesResponse::Success);
                (StatusCode::OK, [(PROTOCOL_HEADER, "2")], codec::encode(&answer).unwrap())
            }
        };
        let snapshot = || async { (StatusCode::INTERNAL_SERVER_ERROR, "no snapshot should reach an old peer") };
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let app = axum::Router::new().route("/raft/append", axum::routing::post(append)).route("/raft/snapshot", axum::routing::post(snapshot));
        tokio::spawn(async move { axum::serve(listener, app).await });
        (addr, read)
    }

    fn append_of(request: Request) -> AppendEntriesRequest<TypeConfig> {
        let log_id = openraft::LogId::new(CommittedLeaderId::new(1, 1), 5);
        let entry = crate::raft::Entry { log_id, payload: EntryPayload::Normal(request) };
        AppendEntriesRequest { vote: Vote::new_committed(1, 1), prev_log_id: None, leader_commit: None, entries: vec![entry] }
    }

    #[tokio::test]
    async fn an_old_peer_is_spoken_to_in_its_version_and_sent_no_snapshot() {
        let (addr, read) = old_peer().await;
        let contacts = PeerContacts::default();
        let mut network = PeerNetwork::new(ClusterIdentity::default(), PeerSecret::default(), None, contacts.clone()).unwrap();
        let mut peer = network.new_client(2, &Node { addr: addr.to_string() }).await;
        let option = RPCOption::new(Duration::from_secs(5));
        let publish = Request { now_ms: 1234, ..Request::from(TopicCommand::Publish { topic: "news".into(), payload: b"x".to_vec() }) };
        peer.append_entries(append_of(publish.clone()), option.clone()).await.expect("sent again in version 2 after the 426");
        assert_eq!(contacts.speaks(2), Some(2));
        peer.append_entries(append_of(publish.clone()), option.clone()).await.expect("version 2 straight away now");
        let read = read.lock().unwrap().clone();
        assert_eq!(read.len(), 2);
        let EntryPayload::Normal(carried) = &read[0].entries[0].payload else { panic!("{read:?}") };
        assert_eq!(*carried, v2::Request::from(publish), "the entry in its version-2 encoding, the stamp inside the command");

        let meta = openraft::SnapshotMeta::default();
        let snapshot = InstallSnapshotRequest { vote: Vote::new_committed(1, 1), meta, offset: 0, data: vec![1, 2, 3], done: true };
        let refused = peer.install_snapshot(snapshot, option).await.unwrap_err().to_string();
        assert!(refused.contains("speaks peer protocol 2, which cannot install"), "{refused}");
        assert!(contacts.last(2).unwrap().failure.unwrap().contains("once upgraded"));
    }
}
