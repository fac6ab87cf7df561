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
//! version, as this node refuses an answer in a version it does not speak.
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

/// The connection to one peer.
pub struct PeerClient {
    http: reqwest::Client,
    target: NodeId,
    base_url: String,
    identity: ClusterIdentity,
    secret: PeerSecret,
    contacts: PeerContacts,
}

impl RaftNetworkFactory<TypeConfig> for PeerNetwork {
    type Network = PeerClient;

    async fn new_client(&mut self, target: NodeId, node: &Node) -> PeerClient {
        let base_url = format!("{}://{}/raft", self.scheme, node.addr);
        PeerClient { http: self.http.clone(), target, base_url, identity: self.identity.clone(), secret: self.secret.clone(), contacts: self.contacts.clone() }
    }
}

impl PeerClient {
    async fn call<Req, Resp, E>(&self, rpc: &str, request: &Req, option: &RPCOption) -> Result<Resp, RPCError<NodeId, Node, RaftError<NodeId, E>>>
    where
        Req: Serialize,
        Resp: DeserializeOwned,
        E: std::error::Error + DeserializeOwned,
    {
        let body = codec::encode(request).map_err(|e| RPCError::Network(NetworkError::new(&e)))?;
        let mut sending = self
            .http
            .post(format!("{}/{rpc}", self.base_url))
            .header("content-type", "application/octet-stream")
            .header(CLUSTER_HEADER, self.identity.get().unwrap_or_default())
            .header(super::protocol::PROTOCOL_HEADER, super::protocol::PROTOCOL_VERSION);
        if let Some(secret) = self.secret.header_value() {
            sending = sending.header(SECRET_HEADER, secret);
        }
        let sent = sending.timeout(option.hard_ttl()).body(body).send().await;
        let response = match sent {
            Ok(response) => response,
            Err(e) => {
                self.contacts.unreachable(self.target, crate::http_client::failure_reason(&e, CONNECT_TIMEOUT));
                return Err(if e.is_connect() { RPCError::Unreachable(Unreachable::new(&e)) } else { RPCError::Network(NetworkError::new(&e)) });
            }
        };
        let status = response.status();
        if let Err(message) = super::protocol::check(response.headers()) {
            self.contacts.refused(self.target, message.clone());
            return Err(RPCError::Network(NetworkError::new(&std::io::Error::other(format!("peer {}: {message}", self.target)))));
        }
        match status.is_success() {
            true => self.contacts.answered(self.target),
            false => self.contacts.refused(self.target, format!("answered {status} to {rpc}")),
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
