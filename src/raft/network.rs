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
//! names its own, and the call is sent again in that one, unless its entries need
//! the newer version, which an old peer could not read.
//!
//! Failure mapping matters to openraft: a connection that cannot be made is
//! `Unreachable` (openraft backs off), anything else transport-level is `Network`,
//! and a Raft-level refusal from the peer is `RemoteError`.

use std::time::Duration;

use openraft::error::{InstallSnapshotError, NetworkError, RPCError, RaftError, RemoteError, Unreachable};
use openraft::network::{RPCOption, RaftNetwork, RaftNetworkFactory};
use openraft::raft::{AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse, VoteRequest, VoteResponse};
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::identity::{CLUSTER_HEADER, ClusterIdentity};
use super::peer_auth::{PeerSecret, SECRET_HEADER};
use super::peer_contacts::PeerContacts;
use super::protocol::{PROTOCOL_VERSION, PROTOCOL_VERSION_OLDEST};
use super::{Node, NodeId, TypeConfig};
use crate::codec;

/// Creates per-peer clients that share one connection pool.
#[derive(Clone)]
pub struct PeerNetwork {
    http: reqwest::Client,
    identity: ClusterIdentity,
    secret: PeerSecret,
    /// `http` or `https` (`tls`).
    scheme: &'static str,
    /// How each peer's last RPC went, for `/v1/cluster`.
    contacts: PeerContacts,
}

/// How long connecting to a peer may take.
const CONNECT_TIMEOUT: Duration = Duration::from_millis(500);

impl PeerNetwork {
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
    /// Sends `request` in the newest protocol version the peer speaks, which must be
    /// at least `needed` (the oldest that can carry it).
    async fn call<Req, Resp, E>(&self, rpc: &str, request: &Req, needed: u32, option: &RPCOption) -> Result<Resp, RPCError<NodeId, Node, RaftError<NodeId, E>>>
    where
        Req: Serialize,
        Resp: DeserializeOwned,
        E: std::error::Error + DeserializeOwned,
    {
        let network_error = |message: String| RPCError::Network(NetworkError::new(&std::io::Error::other(message)));
        let body = codec::encode(request).map_err(|e| RPCError::Network(NetworkError::new(&e)))?;
        let mut version = self.network.contacts.speaks(self.target).unwrap_or(PROTOCOL_VERSION).min(PROTOCOL_VERSION);
        let response = loop {
            if version < needed {
                let message = format!("it speaks peer protocol {version}, which cannot carry these entries (a transaction); upgrade it (docs/operations.md)");
                self.network.contacts.refused(self.target, message.clone());
                return Err(network_error(format!("peer {}: {message}", self.target)));
            }
            let response = self.send(rpc, body.clone(), version, option).await?;
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
        let answer: Result<Resp, RaftError<NodeId, E>> = codec::decode(&bytes).map_err(|e| RPCError::Network(NetworkError::new(&e)))?;
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
        let needed = super::protocol::needed_for(&request.entries);
        self.call("append", &request, needed, &option).await
    }

    async fn install_snapshot(
        &mut self,
        request: InstallSnapshotRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<InstallSnapshotResponse<NodeId>, RPCError<NodeId, Node, RaftError<NodeId, InstallSnapshotError>>> {
        self.call("snapshot", &request, PROTOCOL_VERSION_OLDEST, &option).await
    }

    async fn vote(&mut self, request: VoteRequest<NodeId>, option: RPCOption) -> Result<VoteResponse<NodeId>, RPCError<NodeId, Node, RaftError<NodeId>>> {
        self.call("vote", &request, PROTOCOL_VERSION_OLDEST, &option).await
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use axum::http::{HeaderMap, StatusCode};
    use openraft::raft::AppendEntriesResponse;
    use openraft::{CommittedLeaderId, EntryPayload, Vote};

    use super::*;
    use crate::raft::protocol::PROTOCOL_HEADER;
    use crate::state::command::{Command, Request};

    /// A peer of the previous release: it speaks version 1 only and refuses anything
    /// newer with a 426 naming its own, as `protocol::require_known_protocol` did then.
    /// Records the version of every append it read.
    async fn old_peer() -> (std::net::SocketAddr, Arc<Mutex<Vec<String>>>) {
        let read = Arc::new(Mutex::new(Vec::new()));
        let seen = read.clone();
        let append = move |headers: HeaderMap| {
            let seen = seen.clone();
            async move {
                let version = headers.get(PROTOCOL_HEADER).and_then(|v| v.to_str().ok()).unwrap_or("1").to_string();
                if version != "1" {
                    return (StatusCode::UPGRADE_REQUIRED, [(PROTOCOL_HEADER, "1")], b"peer protocol version 2 is not spoken here".to_vec());
                }
                seen.lock().unwrap().push(version);
                let answer: Result<AppendEntriesResponse<NodeId>, RaftError<NodeId>> = Ok(AppendEntriesResponse::Success);
                (StatusCode::OK, [(PROTOCOL_HEADER, "1")], codec::encode(&answer).unwrap())
            }
        };
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let app = axum::Router::new().route("/raft/append", axum::routing::post(append));
        tokio::spawn(async move { axum::serve(listener, app).await });
        (addr, read)
    }

    fn append_of(command: Command) -> AppendEntriesRequest<TypeConfig> {
        let log_id = openraft::LogId::new(CommittedLeaderId::new(1, 1), 5);
        let entry = crate::raft::Entry { log_id, payload: EntryPayload::Normal(Request::from(command)) };
        AppendEntriesRequest { vote: Vote::new_committed(1, 1), prev_log_id: None, leader_commit: None, entries: vec![entry] }
    }

    #[tokio::test]
    async fn an_old_peer_is_spoken_to_in_its_version_and_sent_no_transaction() {
        let (addr, read) = old_peer().await;
        let contacts = PeerContacts::default();
        let mut network = PeerNetwork::new(ClusterIdentity::default(), PeerSecret::default(), None, contacts.clone()).unwrap();
        let mut peer = network.new_client(2, &Node { addr: addr.to_string() }).await;
        let option = RPCOption::new(Duration::from_secs(5));
        let tick = append_of(Command::Tick { advance_ms: 1 });
        peer.append_entries(tick.clone(), option.clone()).await.expect("sent again in version 1 after the 426");
        assert_eq!((contacts.speaks(2), read.lock().unwrap().clone()), (Some(1), vec!["1".to_string()]));
        peer.append_entries(tick, option.clone()).await.expect("version 1 straight away now");
        assert_eq!(read.lock().unwrap().len(), 2);

        let txn = crate::state::txn::Txn { compare: Vec::new(), success: Vec::new(), failure: Vec::new() };
        let refused = peer.append_entries(append_of(Command::Txn(txn)), option).await.unwrap_err().to_string();
        assert!(refused.contains("speaks peer protocol 1, which cannot carry"), "{refused}");
        assert_eq!(read.lock().unwrap().len(), 2, "nothing the old peer cannot read was sent");
        assert!(contacts.last(2).unwrap().failure.unwrap().contains("upgrade it"));
    }
}
