//! `concord serve`: run one member until SIGINT or SIGTERM.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;
use concord::config::{Limits, NodeConfig, RaftTiming, parse_initial_cluster};
use concord::node::Node;
use concord::raft::peer_auth::PeerSecret;

#[derive(Args, Debug)]
pub struct ServeArgs {
    /// This member's id: a positive number, unique in the cluster, never reused.
    #[arg(long)]
    pub id: u64,
    /// Address to listen on for clients and peers.
    #[arg(long, default_value = "127.0.0.1:7001")]
    pub listen: String,
    /// Address other members and clients use to reach this one (default: --listen).
    #[arg(long)]
    pub advertise: Option<String>,
    /// Also speak Redis's protocol (RESP2 and RESP3) on this address, for Redis
    /// clients such as redis-py and redis-cli (docs/redis.md). Off unless given.
    #[arg(long)]
    pub redis_listen: Option<String>,
    /// Also serve Consul's HTTP API (KV, status) on this address, for Consul clients
    /// such as python-consul (docs/consul.md). Off unless given.
    #[arg(long)]
    pub consul_listen: Option<String>,
    /// Directory for the Raft log, the state and snapshots (created if missing).
    #[arg(long)]
    pub data_dir: PathBuf,
    /// Members of a new cluster, e.g. 1=127.0.0.1:7001,2=127.0.0.1:7002,3=127.0.0.1:7003.
    /// Give every member the same list; restarting with it resumes from disk.
    #[arg(long, conflicts_with = "join")]
    pub initial_cluster: Option<String>,
    /// URL of a member of an existing cluster that should add this node.
    #[arg(long)]
    pub join: Option<String>,
    /// Admin token to join with, when the cluster requires tokens (see `concord auth`).
    #[arg(long, env = "CONCORD_TOKEN", hide_env_values = true, requires = "join")]
    pub token: Option<String>,
    /// Memory for the state database's block cache and memtables, in MiB: the bound
    /// on this node's memory however many keys it holds.
    #[arg(long, default_value_t = (concord::state::machine::CACHE_BYTES_DEFAULT >> 20) as u64)]
    pub cache_mb: u64,
    /// File holding the cluster's peer secret (16 to 1024 printable bytes). Every member
    /// must get the same one; peer RPCs without it are refused (401).
    #[arg(long)]
    pub peer_secret_file: Option<PathBuf>,
    /// Serve HTTPS with this certificate chain (PEM), for clients and peers alike; it
    /// must name the host of `--advertise`. Needs `--tls-key` and `--tls-ca`.
    #[arg(long, requires_all = ["tls_key", "tls_ca"], help_heading = "TLS")]
    pub tls_cert: Option<PathBuf>,
    /// The private key of `--tls-cert` (PEM).
    #[arg(long, requires = "tls_cert", help_heading = "TLS")]
    pub tls_key: Option<PathBuf>,
    /// The CA (PEM) that signed every member's certificate: peers are trusted only if
    /// it signed theirs.
    #[arg(long, requires = "tls_cert", help_heading = "TLS")]
    pub tls_ca: Option<PathBuf>,
    /// Accept peer RPCs only on connections that present a certificate from `--tls-ca`
    /// (mutual TLS); others get 401.
    #[arg(long, requires = "tls_cert", help_heading = "TLS")]
    pub peer_mtls: bool,
    #[command(flatten)]
    pub limits: LimitArgs,
    #[command(flatten)]
    pub timing: TimingArgs,
}

/// Limits on client input (see docs/api.md, "Limits").
#[derive(Args, Debug)]
pub struct LimitArgs {
    /// Longest key, in bytes (413 beyond it).
    #[arg(long, default_value_t = Limits::default().key_bytes_max, help_heading = "Limits")]
    pub key_bytes_max: usize,
    /// Largest value, in bytes (413 beyond it; at most 64 MiB).
    #[arg(long, default_value_t = Limits::default().value_bytes_max, help_heading = "Limits")]
    pub value_bytes_max: usize,
    /// Largest client request body, in bytes (413 beyond it; at least the value limit).
    #[arg(long, default_value_t = Limits::default().body_bytes_max, help_heading = "Limits")]
    pub body_bytes_max: usize,
    /// Most keys one list call may return.
    #[arg(long, default_value_t = Limits::default().list_limit_max, help_heading = "Limits")]
    pub list_limit_max: usize,
    /// How long a write waits to commit before answering 504 (outcome unknown).
    #[arg(long, default_value_t = Limits::default().write_timeout_ms, help_heading = "Limits")]
    pub write_timeout_ms: u64,
    /// How long a linearizable read waits for leadership confirmation before 503.
    #[arg(long, default_value_t = Limits::default().read_timeout_ms, help_heading = "Limits")]
    pub read_timeout_ms: u64,
    /// Most client requests served at once; more get 503.
    #[arg(long, default_value_t = Limits::default().concurrent_requests_max, help_heading = "Limits")]
    pub concurrent_requests_max: usize,
    /// Longest Idempotency-Key header, in bytes.
    #[arg(long, default_value_t = Limits::default().idempotency_key_bytes_max, help_heading = "Limits")]
    pub idempotency_key_bytes_max: usize,
    /// How long a follower waits for the leader when forwarding a request.
    #[arg(long, default_value_t = Limits::default().forward_timeout_ms, help_heading = "Limits")]
    pub forward_timeout_ms: u64,
    /// Largest Raft RPC body accepted from a peer; must fit a full append batch.
    #[arg(long, default_value_t = Limits::default().peer_body_bytes_max, help_heading = "Limits")]
    pub peer_body_bytes_max: usize,
    /// Shortest lease TTL a client may ask for, in ms.
    #[arg(long, default_value_t = Limits::default().lease_ttl_ms_min, help_heading = "Limits")]
    pub lease_ttl_ms_min: u64,
    /// Longest lease TTL a client may ask for, in ms.
    #[arg(long, default_value_t = Limits::default().lease_ttl_ms_max, help_heading = "Limits")]
    pub lease_ttl_ms_max: u64,
    /// Longest any long poll (lock acquire, blocking read) may wait, in ms.
    #[arg(long, default_value_t = Limits::default().wait_ms_max, help_heading = "Limits")]
    pub wait_ms_max: u64,
    /// Most open streams (watches, topic subscriptions) served at once; more get 503.
    #[arg(long, default_value_t = Limits::default().streams_max, help_heading = "Limits")]
    pub streams_max: usize,
    /// Most requests in progress (long polls included) from one client address; more get 429.
    #[arg(long, default_value_t = Limits::default().requests_per_client_max, help_heading = "Limits")]
    pub requests_per_client_max: usize,
    /// Most open streams from one client address; more get 429.
    #[arg(long, default_value_t = Limits::default().streams_per_client_max, help_heading = "Limits")]
    pub streams_per_client_max: usize,
    /// Most open connections (clients and peers); more wait to be accepted.
    #[arg(long, default_value_t = Limits::default().connections_max, help_heading = "Limits")]
    pub connections_max: usize,
    /// How long a request's headers may take to arrive (and an idle connection may stay open), in ms.
    #[arg(long, default_value_t = Limits::default().header_read_timeout_ms, help_heading = "Limits")]
    pub header_read_timeout_ms: u64,
    /// Largest request line and headers, in bytes (431 beyond it).
    #[arg(long, default_value_t = Limits::default().header_bytes_max, help_heading = "Limits")]
    pub header_bytes_max: usize,
    /// How long a request's body may take to arrive, in ms (408 beyond it).
    #[arg(long, default_value_t = Limits::default().body_read_timeout_ms, help_heading = "Limits")]
    pub body_read_timeout_ms: u64,
}

/// Raft timing and snapshots.
#[derive(Args, Debug)]
pub struct TimingArgs {
    /// Leader heartbeat interval; also the deadline of one append RPC.
    #[arg(long, default_value_t = RaftTiming::default().heartbeat_ms, help_heading = "Raft")]
    pub heartbeat_ms: u64,
    /// Shortest time without a leader before a follower stands for election.
    #[arg(long, default_value_t = RaftTiming::default().election_timeout_min_ms, help_heading = "Raft")]
    pub election_timeout_min_ms: u64,
    /// Longest such time (the actual one is random in between).
    #[arg(long, default_value_t = RaftTiming::default().election_timeout_max_ms, help_heading = "Raft")]
    pub election_timeout_max_ms: u64,
    /// Take a snapshot (and purge the log behind it) after this many entries.
    #[arg(long, default_value_t = RaftTiming::default().snapshot_after_entries, help_heading = "Raft")]
    pub snapshot_after_entries: u64,
}

impl ServeArgs {
    fn config(self) -> Result<NodeConfig, String> {
        if self.id == 0 {
            return Err("--id must be a positive number".into());
        }
        let initial_cluster = match &self.initial_cluster {
            Some(text) => parse_initial_cluster(text)?,
            None if self.join.is_some() => Default::default(),
            None => return Err("give --initial-cluster (a new or restarting member) or --join URL (a new member of a running cluster)".into()),
        };
        let advertise = self.advertise.or_else(|| initial_cluster.get(&self.id).cloned()).unwrap_or_else(|| self.listen.clone());
        let limits = Limits {
            key_bytes_max: self.limits.key_bytes_max,
            value_bytes_max: self.limits.value_bytes_max,
            body_bytes_max: self.limits.body_bytes_max,
            list_limit_max: self.limits.list_limit_max,
            write_timeout_ms: self.limits.write_timeout_ms,
            read_timeout_ms: self.limits.read_timeout_ms,
            concurrent_requests_max: self.limits.concurrent_requests_max,
            idempotency_key_bytes_max: self.limits.idempotency_key_bytes_max,
            forward_timeout_ms: self.limits.forward_timeout_ms,
            peer_body_bytes_max: self.limits.peer_body_bytes_max,
            lease_ttl_ms_min: self.limits.lease_ttl_ms_min,
            lease_ttl_ms_max: self.limits.lease_ttl_ms_max,
            wait_ms_max: self.limits.wait_ms_max,
            streams_max: self.limits.streams_max,
            requests_per_client_max: self.limits.requests_per_client_max,
            streams_per_client_max: self.limits.streams_per_client_max,
            connections_max: self.limits.connections_max,
            header_read_timeout_ms: self.limits.header_read_timeout_ms,
            header_bytes_max: self.limits.header_bytes_max,
            body_read_timeout_ms: self.limits.body_read_timeout_ms,
        };
        let timing = RaftTiming {
            heartbeat_ms: self.timing.heartbeat_ms,
            election_timeout_min_ms: self.timing.election_timeout_min_ms,
            election_timeout_max_ms: self.timing.election_timeout_max_ms,
            snapshot_after_entries: self.timing.snapshot_after_entries,
            ..RaftTiming::default()
        };
        if self.cache_mb == 0 {
            return Err("--cache-mb must be positive".into());
        }
        let cache_bytes = usize::try_from(self.cache_mb).ok().and_then(|mb| mb.checked_mul(1 << 20)).ok_or("--cache-mb is too large")?;
        let peer_secret = match &self.peer_secret_file {
            Some(file) => PeerSecret::read(file)?,
            None => PeerSecret::default(),
        };
        let tls = match (&self.tls_cert, &self.tls_key, &self.tls_ca) {
            (Some(cert), Some(key), Some(ca)) => Some(concord::tls::NodeTls::load(cert, key, ca, self.peer_mtls)?),
            _ => None,
        };
        Ok(NodeConfig {
            id: self.id,
            listen: self.listen,
            advertise,
            redis_listen: self.redis_listen,
            consul_listen: self.consul_listen,
            data_dir: self.data_dir,
            initial_cluster,
            join: self.join,
            join_token: self.token,
            limits,
            timing,
            cache_bytes,
            peer_secret,
            tls,
        })
    }
}

pub async fn run(args: ServeArgs) -> ExitCode {
    super::init_logging();
    let config = match args.config() {
        Ok(config) => config,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let node = match Node::start(config).await {
        Ok(node) => node,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(1);
        }
    };
    wait_for_stop_signal().await;
    tracing::info!("stopping");
    match node.shutdown().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error while stopping: {e}");
            ExitCode::from(1)
        }
    }
}

async fn wait_for_stop_signal() {
    let mut terminate = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(signal) => signal,
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
            return;
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = terminate.recv() => {}
    }
}
