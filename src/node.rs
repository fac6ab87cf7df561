//! Builds and runs one member: storage + Raft + peer network + HTTP server.
//!
//! Start-up order matters: open the log and the state (finishing any interrupted
//! snapshot install), start Raft, bind the listener, and only then bootstrap. A new
//! cluster needs no manual init step: the lowest-id member of `--initial-cluster`
//! proposes the first membership (the others too, later, if it never does; see
//! `bootstrap`); a member that already has state skips this and resumes from disk.
//! A member started with `--join` instead asks an existing cluster to add it.

use std::sync::Arc;
use std::time::Duration;

use openraft::{BasicNode, Config, SnapshotPolicy};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

use crate::admin::Admin;
use crate::api::{self, AppParts, AppState};
use crate::config::NodeConfig;
use crate::raft::identity::ClusterIdentity;
use crate::raft::log_store::LogStore;
use crate::raft::network::PeerNetwork;
use crate::raft::{NodeId, Raft, peer_server};
use crate::service::{Core, CoreParts};
use crate::state::StateMachine;
use crate::state::idempotency::IdempotencyBounds;

#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    #[error("invalid configuration: {0}")]
    Config(String),
    #[error("cannot open the log in {dir}: {source}")]
    Log { dir: String, source: crate::raft::log_store::OpenError },
    #[error("cannot open the state in {dir}: {source}")]
    State { dir: String, source: crate::state::machine::OpenError },
    #[error("cannot listen on {addr}: {source}")]
    Listen { addr: String, source: std::io::Error },
    #[error("raft: {0}")]
    Raft(String),
    #[error("I/O: {0}")]
    Io(#[from] std::io::Error),
}

fn raft_config(config: &NodeConfig) -> Result<Config, NodeError> {
    let timing = &config.timing;
    let raft = Config {
        cluster_name: "concord".into(),
        heartbeat_interval: timing.heartbeat_ms,
        election_timeout_min: timing.election_timeout_min_ms,
        election_timeout_max: timing.election_timeout_max_ms,
        max_payload_entries: timing.payload_entries_max,
        snapshot_policy: SnapshotPolicy::LogsSinceLast(timing.snapshot_after_entries),
        // Keep a tail of log behind a snapshot so briefly lagging followers need no snapshot.
        max_in_snapshot_log_to_keep: timing.snapshot_after_entries.min(1000),
        snapshot_max_chunk_size: 1 << 20,
        install_snapshot_timeout: 10_000,
        ..Default::default()
    };
    raft.validate().map_err(|e| NodeError::Config(e.to_string()))
}

/// A running member.
pub struct Node {
    pub id: NodeId,
    pub raft: Raft,
    pub local_addr: std::net::SocketAddr,
    /// Where the Redis door listens, when it is on.
    pub redis_addr: Option<std::net::SocketAddr>,
    /// Where the Consul door listens, if it is on.
    pub consul_addr: Option<std::net::SocketAddr>,
    server: tokio::task::JoinHandle<std::io::Result<()>>,
    stop: tokio::sync::watch::Sender<bool>,
}

impl Node {
    pub async fn start(config: NodeConfig) -> Result<Self, NodeError> {
        config.limits.validate(&config.timing).map_err(NodeError::Config)?;
        if !config.initial_cluster.is_empty() && !config.initial_cluster.contains_key(&config.id) {
            return Err(NodeError::Config(format!("--initial-cluster does not include this node's id {}", config.id)));
        }
        std::fs::create_dir_all(&config.data_dir)?;
        // How long reopening the stores took, for the start log (restart-to-ready).
        let opening = std::time::Instant::now();
        let log_dir = config.data_dir.join("log");
        let log = LogStore::open(&log_dir).map_err(|source| NodeError::Log { dir: log_dir.display().to_string(), source })?;
        let machine = StateMachine::open(&config.data_dir, IdempotencyBounds::default(), config.cache_bytes)
            .map_err(|source| NodeError::State { dir: config.data_dir.display().to_string(), source })?;
        let stores_open_ms = opening.elapsed().as_millis();
        let reader = machine.reader();
        let ticker_reader = reader.clone();
        let clock = Arc::new(crate::ticker::LeaderClock::default());
        let log_stats = log.stats();
        let identity = ClusterIdentity::open(&config.data_dir, &config.initial_cluster)?;
        let outgoing_tls = config.tls.as_ref().map(|tls| &tls.outgoing);
        let peer_contacts = crate::raft::peer_contacts::PeerContacts::default();
        let network =
            PeerNetwork::new(identity.clone(), config.peer_secret.clone(), outgoing_tls, peer_contacts.clone()).map_err(|e| NodeError::Raft(e.to_string()))?;
        let peers = network.clone();
        let raft = Raft::new(config.id, Arc::new(raft_config(&config)?), network, log, machine).await.map_err(|e| NodeError::Raft(e.to_string()))?;
        let raft_ready_ms = opening.elapsed().as_millis();

        let listener = TcpListener::bind(&config.listen).await.map_err(|source| NodeError::Listen { addr: config.listen.clone(), source })?;
        let local_addr = listener.local_addr()?;
        let (limits, timing) = (Arc::new(config.limits.clone()), Arc::new(config.timing.clone()));
        let core = Core::new(CoreParts {
            node_id: config.id,
            raft: raft.clone(),
            clock: clock.clone(),
            limits: limits.clone(),
            timing: timing.clone(),
            peers,
            reader: reader.clone(),
        });
        let (stop, stopped) = tokio::sync::watch::channel(false);
        let redis_addr = match &config.redis_listen {
            Some(addr) => {
                let listener = TcpListener::bind(addr).await.map_err(|source| NodeError::Listen { addr: addr.clone(), source })?;
                let bound = listener.local_addr()?;
                let door = crate::resp::Door::new(config.id, core.clone(), reader.clone(), raft.clone(), limits.clone(), bound.port());
                let acceptor = config.tls.as_ref().map(|tls| tls.acceptor.clone());
                tokio::spawn(crate::resp::serve(listener, Arc::new(door), acceptor, stopped.clone()));
                Some(bound)
            }
            None => None,
        };
        let admin = Admin { node_id: config.id, raft: raft.clone(), core: core.clone(), log_stats, identity: identity.clone(), peer_contacts };
        let app = AppState::new(AppParts {
            node_id: config.id,
            raft: raft.clone(),
            reader,
            core: core.clone(),
            limits,
            timing,
            in_flight: Arc::new(Semaphore::new(config.limits.concurrent_requests_max)),
            streams: Arc::new(Semaphore::new(config.limits.streams_max)),
            client_requests: crate::api::client_slots::ClientSlots::new(config.limits.requests_per_client_max, "requests in progress"),
            client_streams: crate::api::client_slots::ClientSlots::new(config.limits.streams_per_client_max, "open streams"),
            clock: clock.clone(),
            placements: Default::default(),
            admin: admin.clone(),
        });
        let peer_mtls = config.tls.as_ref().is_some_and(|tls| tls.peer_mtls);
        let peers = peer_server::routes(raft.clone(), core, admin, config.limits.bodies(true), identity.clone(), config.peer_secret.clone(), peer_mtls);
        let consul_addr = match &config.consul_listen {
            Some(addr) => {
                let listener = TcpListener::bind(addr).await.map_err(|source| NodeError::Listen { addr: addr.clone(), source })?;
                let bound = listener.local_addr()?;
                let acceptor = config.tls.as_ref().map(|tls| tls.acceptor.clone());
                let routes = crate::consul::router(app.clone());
                tokio::spawn(crate::server::serve(listener, routes, config.limits.connections(), acceptor, stopped.clone()));
                Some(bound)
            }
            None => None,
        };
        let routes = api::router(app).merge(peers);
        let acceptor = config.tls.as_ref().map(|tls| tls.acceptor.clone());
        let server = tokio::spawn(crate::server::serve(listener, routes, config.limits.connections(), acceptor, stopped));

        tokio::spawn(bootstrap(config.clone(), raft.clone()));
        crate::ticker::spawn(raft.clone(), ticker_reader, clock);
        if let Some(url) = config.join.clone() {
            let client = crate::client::Client::new(vec![url.clone()]).with_token(config.join_token.clone());
            let client = match &config.tls {
                Some(tls) => client.with_tls(&tls.outgoing).map_err(|e| NodeError::Config(e.to_string()))?,
                None => client,
            };
            tokio::spawn(join_cluster(url, client, config.id, config.advertise.clone(), raft.clone(), identity));
        }
        tracing::info!(id = config.id, listen = %local_addr, data_dir = %config.data_dir.display(), stores_open_ms, raft_ready_ms, "node started");
        Ok(Self { id: config.id, raft, local_addr, redis_addr, consul_addr, server, stop })
    }

    /// Stops serving and shuts Raft down.
    pub async fn shutdown(self) -> Result<(), NodeError> {
        let _ = self.stop.send(true);
        let _ = tokio::time::timeout(Duration::from_secs(5), self.server).await;
        self.raft.shutdown().await.map_err(|e| NodeError::Raft(e.to_string()))
    }
}

/// Proposes the initial membership if this node has never been initialized.
///
/// openraft allows every member to propose the same first membership, but concurrent
/// proposals race; so the member with the lowest id proposes at once, and the others
/// only if, after a few election timeouts, nobody has brought them into a cluster
/// (the lowest member may be down). No manual init step either way.
async fn bootstrap(config: NodeConfig, raft: Raft) {
    let Some(first) = config.initial_cluster.keys().next().copied() else {
        return;
    };
    match raft.is_initialized().await {
        Ok(true) => {
            tracing::info!("resuming from the data directory");
            return;
        }
        Ok(false) => {}
        Err(e) => {
            tracing::error!(error = %e, "cannot tell whether this node was initialized");
            return;
        }
    }
    if config.id != first {
        tokio::time::sleep(Duration::from_millis(config.timing.election_timeout_max_ms * 3)).await;
        if raft.is_initialized().await.unwrap_or(true) {
            return;
        }
        tracing::warn!(first, "no member has initialized the cluster; proposing the initial membership from this node");
    }
    wait_for_members_listening(&config).await;
    let members = config.initial_cluster.iter().map(|(id, addr)| (*id, BasicNode { addr: addr.clone() })).collect::<std::collections::BTreeMap<_, _>>();
    match raft.initialize(members).await {
        Ok(()) => tracing::info!("initialized a new cluster"),
        // Another member's identical initial membership reached us first: fine.
        Err(e) => tracing::info!(error = %e, "initial membership not proposed by this node"),
    }
}

/// How long a new cluster's first member waits for the others to listen before it
/// proposes the initial membership anyway (one may be down for good).
const MEMBERS_LISTENING_WAIT: Duration = Duration::from_secs(2);

/// Waits, at most `MEMBERS_LISTENING_WAIT`, until every other initial member accepts
/// a connection. Members started together (`concord dev`, a deployment) come up
/// within milliseconds of each other; proposing before they listen makes the first
/// election's vote requests and appends fail with "connection refused", which
/// openraft logs as errors, on a start where nothing is wrong.
async fn wait_for_members_listening(config: &NodeConfig) {
    let deadline = tokio::time::Instant::now() + MEMBERS_LISTENING_WAIT;
    let mut waiting: Vec<&String> = config.initial_cluster.iter().filter(|(id, _)| **id != config.id).map(|(_, addr)| addr).collect();
    while !waiting.is_empty() && tokio::time::Instant::now() < deadline {
        let mut still = Vec::new();
        for addr in waiting {
            let connect = tokio::time::timeout(Duration::from_millis(200), tokio::net::TcpStream::connect(addr.as_str())).await;
            if !matches!(connect, Ok(Ok(_))) {
                still.push(addr);
            }
        }
        waiting = still;
        if !waiting.is_empty() {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    if !waiting.is_empty() {
        tracing::warn!(?waiting, "initial members not listening yet; proposing the initial membership without them");
    }
}

/// Asks the cluster at `url` to add this node, until it is a member.
async fn join_cluster(url: String, client: crate::client::Client, id: NodeId, advertise: String, raft: Raft, identity: ClusterIdentity) {
    let mut delay = Duration::from_millis(200);
    // First learn which cluster this is, so its peers' RPCs are accepted.
    while identity.get().is_none() {
        match client.cluster_status(false).await.map(|status| status.value.cluster_id) {
            Ok(Some(cluster)) => match identity.learn(cluster) {
                Ok(()) => tracing::info!(cluster = identity.get().unwrap_or_default(), "learned the cluster's id"),
                Err(e) => tracing::warn!(error = %e, "cannot store the cluster id; retrying"),
            },
            Ok(None) => tracing::warn!(%url, "the cluster did not say its id; retrying"),
            Err(e) => tracing::warn!(%url, error = %e, "cannot reach the cluster to join; retrying"),
        }
        if identity.get().is_none() {
            tokio::time::sleep(delay).await;
            delay = (delay * 2).min(Duration::from_secs(5));
        }
    }
    loop {
        let is_member = raft.metrics().borrow().membership_config.membership().voter_ids().any(|voter| voter == id);
        if is_member {
            tracing::info!("joined the cluster as a voter");
            return;
        }
        match client.add_member(id, &advertise).await {
            Ok(_) => {
                tracing::info!(%url, "the cluster added this node");
                return;
            }
            Err(e) => tracing::warn!(%url, error = %e, "join failed; retrying"),
        }
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(Duration::from_secs(5));
    }
}
