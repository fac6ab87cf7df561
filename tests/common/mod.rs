//! Test harness: real clusters of `concord serve` processes on 127.0.0.1.
//!
//! Each node gets its own port (`free_port`) and a directory under the cluster's temp dir; its
//! stdout/stderr go to `node-N.log` there (printed when a test fails, for debugging).
//! Every process started here is killed by its pid when the `Cluster` is dropped, so
//! a failing test leaves nothing running. Waiting is always polling for a condition
//! under a deadline, never sleeping and hoping.

#![allow(dead_code)] // each test binary uses a different part of the harness

pub mod sse;

use std::fs::File;
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use concord::client::Client;
use serde_json::Value;
use tempfile::TempDir;

pub struct NodeProc {
    pub id: u64,
    pub addr: String,
    pub data_dir: PathBuf,
    child: Option<Child>,
    args: Vec<String>,
    /// `http`, or `https` in a cluster started with TLS.
    scheme: &'static str,
}

pub struct Cluster {
    pub nodes: Vec<NodeProc>,
    pub dir: TempDir,
    initial_cluster: String,
    extra_args: Vec<String>,
    /// Sent by the harness's own requests and clients once the cluster requires tokens.
    pub token: Option<String>,
    /// The CA the harness trusts in a cluster started with TLS.
    tls: Option<concord::tls::ClientTls>,
}

/// Ports handed out so far by this test process.
static PORTS_TAKEN: std::sync::atomic::AtomicU16 = std::sync::atomic::AtomicU16::new(0);

/// A port for a node: below the kernel's ephemeral range (32768 and up), so no
/// outgoing connection can take it between now and the node binding it, and never
/// the same twice in one test process (tests of one binary run in parallel; cargo
/// runs the binaries one after another). Each process starts at its own offset.
pub fn free_port() -> u16 {
    free_ports(1)
}

/// `n` consecutive free ports, the first returned (a `concord dev` cluster takes its
/// base port and the next ones).
pub fn free_ports(n: u16) -> u16 {
    const FIRST: u16 = 10_000;
    const SPAN: u16 = 22_000;
    let offset = (std::process::id() % 200) as u16 * 100;
    loop {
        let taken = PORTS_TAKEN.fetch_add(n, std::sync::atomic::Ordering::Relaxed);
        let first = FIRST + (offset + taken) % SPAN;
        // Not across the end of the span, and none held by something else.
        if first + n <= FIRST + SPAN && (first..first + n).all(|port| TcpListener::bind(("127.0.0.1", port)).is_ok()) {
            return first;
        }
    }
}

/// A base port for `concord dev` with three nodes: free itself and the two after it,
/// and so are the Redis doors' ports 1000 below and the Consul doors' 1500 above.
pub fn free_dev_base_port() -> u16 {
    loop {
        let base = free_ports(3);
        let doors = [base.checked_sub(1000), base.checked_add(1500)];
        let free = |first: u16| (first..first + 3).all(|port| TcpListener::bind(("127.0.0.1", port)).is_ok());
        if doors.iter().all(|first| first.is_some_and(free)) {
            return base;
        }
    }
}

/// Polls `check` until it returns `Some` or `timeout` passes.
pub async fn wait_for<T, F, Fut>(what: &str, timeout: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(Instant::now() < deadline, "timed out after {timeout:?} waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Sends each bad request and checks it gets `status` with the JSON error `code`, a
/// message, and the `Concord-Node` header.
pub async fn expect_refusals(cases: Vec<(&str, reqwest::RequestBuilder, reqwest::StatusCode, &str)>) {
    for (what, request, status, code) in cases {
        let response = request.send().await.unwrap_or_else(|e| panic!("{what}: {e}"));
        assert_eq!(response.status(), status, "{what}");
        assert!(response.headers().contains_key("concord-node"), "{what}: names the node");
        let body: Value = response.json().await.unwrap_or_else(|e| panic!("{what}: not JSON: {e}"));
        assert_eq!(body["error"]["code"], code, "{what}: {body}");
        assert!(body["error"]["message"].as_str().is_some_and(|m| !m.is_empty()), "{what}: has a message");
    }
}

impl NodeProc {
    fn spawn(&mut self, log_dir: &std::path::Path) {
        let log = File::options().create(true).append(true).open(log_dir.join(format!("node-{}.log", self.id))).expect("log file");
        let child = Command::new(env!("CARGO_BIN_EXE_concord"))
            .args(&self.args)
            .env("RUST_LOG", "info,openraft=warn")
            .stdout(Stdio::from(log.try_clone().expect("log fd")))
            .stderr(Stdio::from(log))
            .spawn()
            .expect("spawn concord serve");
        self.child = Some(child);
    }

    pub fn url(&self) -> String {
        format!("{}://{}", self.scheme, self.addr)
    }

    pub fn is_running(&self) -> bool {
        self.child.is_some()
    }
}

impl Cluster {
    /// Starts `size` members of a new cluster with extra `concord serve` flags.
    pub async fn start(size: u64, extra_args: &[&str]) -> Cluster {
        Self::start_without(size, &[], extra_args).await
    }

    /// Like `start`, but the members in `absent` are configured and never started.
    pub async fn start_without(size: u64, absent: &[u64], extra_args: &[&str]) -> Cluster {
        Self::start_inner(size, absent, extra_args, None).await
    }

    /// Like `start`, over TLS: `extra_args` carry the `--tls-*` flags, and the
    /// harness trusts the CA in `tls`.
    pub async fn start_with_tls(size: u64, extra_args: &[&str], tls: concord::tls::ClientTls) -> Cluster {
        Self::start_inner(size, &[], extra_args, Some(tls)).await
    }

    async fn start_inner(size: u64, absent: &[u64], extra_args: &[&str], tls: Option<concord::tls::ClientTls>) -> Cluster {
        let dir = tempfile::tempdir().expect("temp dir");
        let scheme = if tls.is_some() { "https" } else { "http" };
        let addrs: Vec<String> = (0..size).map(|_| format!("127.0.0.1:{}", free_port())).collect();
        let initial_cluster = addrs.iter().enumerate().map(|(i, a)| format!("{}={a}", i + 1)).collect::<Vec<_>>().join(",");
        let mut cluster = Cluster { nodes: Vec::new(), dir, initial_cluster, extra_args: extra_args.iter().map(|s| s.to_string()).collect(), token: None, tls };
        for (i, addr) in addrs.into_iter().enumerate() {
            let id = i as u64 + 1;
            let data_dir = cluster.dir.path().join(format!("node-{id}"));
            let mut args = vec!["serve".to_string(), "--id".into(), id.to_string(), "--listen".into(), addr.clone()];
            args.extend(["--data-dir".into(), data_dir.display().to_string(), "--initial-cluster".into(), cluster.initial_cluster.clone()]);
            args.extend(cluster.extra_args.iter().cloned());
            let mut node = NodeProc { id, addr, data_dir, child: None, args, scheme };
            if !absent.contains(&id) {
                node.spawn(cluster.dir.path());
            }
            cluster.nodes.push(node);
        }
        // Every running member has applied what the leader committed (its membership
        // included): a member that knows who leads but not yet where answers 503.
        let running: Vec<u64> = cluster.nodes.iter().filter(|n| n.is_running()).map(|n| n.id).collect();
        for id in running {
            cluster.wait_caught_up(id, Duration::from_secs(20)).await;
        }
        cluster
    }

    /// Starts a new node that joins through `via` (an existing member's id).
    pub fn start_joiner(&mut self, id: u64, via: u64) -> &NodeProc {
        let extra_args = self.extra_args.clone();
        self.start_joiner_with(id, via, &extra_args)
    }

    /// Like `start_joiner`, with `extra_args` instead of the cluster's own flags.
    pub fn start_joiner_with(&mut self, id: u64, via: u64, extra_args: &[impl AsRef<str>]) -> &NodeProc {
        let addr = format!("127.0.0.1:{}", free_port());
        let data_dir = self.dir.path().join(format!("node-{id}"));
        let mut args = vec!["serve".to_string(), "--id".into(), id.to_string(), "--listen".into(), addr.clone()];
        args.extend(["--data-dir".into(), data_dir.display().to_string(), "--join".into(), self.node(via).url()]);
        args.extend(extra_args.iter().map(|arg| arg.as_ref().to_string()));
        let scheme = if self.tls.is_some() { "https" } else { "http" };
        let mut node = NodeProc { id, addr, data_dir, child: None, args, scheme };
        node.spawn(self.dir.path());
        self.nodes.push(node);
        self.nodes.last().expect("just pushed")
    }

    pub fn node(&self, id: u64) -> &NodeProc {
        self.nodes.iter().find(|n| n.id == id).expect("node id")
    }

    fn node_mut(&mut self, id: u64) -> &mut NodeProc {
        self.nodes.iter_mut().find(|n| n.id == id).expect("node id")
    }

    /// A client of every running node.
    pub fn client(&self) -> Client {
        self.client_for(self.nodes.iter().filter(|n| n.is_running()).map(|n| n.url()).collect())
    }

    /// A client of one node only.
    pub fn client_of(&self, id: u64) -> Client {
        self.client_for(vec![self.node(id).url()])
    }

    fn client_for(&self, urls: Vec<String>) -> Client {
        let client = Client::new(urls).with_token(self.token.clone());
        match &self.tls {
            Some(tls) => client.with_tls(tls).expect("TLS client"),
            None => client,
        }
    }

    /// A plain HTTP client that trusts the cluster's CA, if it has one.
    pub fn http(&self) -> reqwest::Client {
        concord::http_client::pooled(Duration::from_secs(1), self.tls.as_ref()).expect("HTTP client")
    }

    /// kill -9.
    pub fn kill(&mut self, id: u64) {
        let node = self.node_mut(id);
        if let Some(mut child) = node.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts a node that was killed or never started, with its flags and data directory.
    pub fn restart(&mut self, id: u64) {
        let dir = self.dir.path().to_path_buf();
        let node = self.node_mut(id);
        assert!(node.child.is_none(), "node {id} is still running");
        node.spawn(&dir);
    }

    /// This node's own view of the cluster (`/v1/cluster?consistency=stale`).
    pub async fn local_status(&self, id: u64) -> Option<Value> {
        let url = format!("{}/v1/cluster?consistency=stale", self.node(id).url());
        let mut request = self.http().get(url);
        if let Some(token) = &self.token {
            request = request.bearer_auth(token);
        }
        let response = request.send().await.ok()?;
        response.json().await.ok()
    }

    /// Waits until every running node agrees on one leader that is running; returns it.
    pub async fn wait_for_leader(&self, timeout: Duration) -> u64 {
        wait_for("a leader all running nodes agree on", timeout, || async {
            let mut leaders = Vec::new();
            for node in self.nodes.iter().filter(|n| n.is_running()) {
                leaders.push(self.local_status(node.id).await?["leader"].as_u64()?);
            }
            let first = *leaders.first()?;
            let running = self.nodes.iter().any(|n| n.id == first && n.is_running());
            (running && leaders.iter().all(|l| *l == first)).then_some(first)
        })
        .await
    }

    /// Waits until node `id` has applied everything the leader had committed when
    /// this was called, so stale reads on `id` show the node's own state.
    pub async fn wait_caught_up(&self, id: u64, timeout: Duration) {
        let leader = self.wait_for_leader(timeout).await;
        let target = wait_for("the leader's commit index", timeout, || async { self.local_status(leader).await?["commit_index"].as_u64() }).await;
        wait_for(&format!("node {id} to apply up to {target}"), timeout, || async {
            (self.local_status(id).await?["applied_index"].as_u64()? >= target).then_some(())
        })
        .await;
    }

    pub fn log_of(&self, id: u64) -> String {
        std::fs::read_to_string(self.dir.path().join(format!("node-{id}.log"))).unwrap_or_default()
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let ids: Vec<u64> = self.nodes.iter().map(|n| n.id).collect();
        if std::thread::panicking() {
            for id in &ids {
                let log = self.log_of(*id);
                // Panics and errors first (replication noise can flood the tail), then the tail.
                eprintln!("---- node {id} log: panics and first errors ----");
                for line in log.lines().filter(|l| l.contains("panicked") || l.contains("ERROR")).take(15) {
                    eprintln!("{line}");
                }
                let tail: Vec<&str> = log.lines().rev().take(40).collect();
                eprintln!("---- node {id} log (last lines) ----");
                for line in tail.into_iter().rev() {
                    eprintln!("{line}");
                }
            }
        }
        for id in ids {
            self.kill(id);
        }
    }
}

/// Polls until `key` is gone, asserting it is present before `not_before`; returns
/// when it disappeared.
pub async fn watch_expiry(client: &Client, key: &str, not_before: Instant, give_up: Duration) -> Instant {
    wait_for(&format!("{key} to expire"), give_up, || async {
        // A read may fail during an election; only a definite answer counts.
        let found = client.get(key).await.ok()?.value;
        let now = Instant::now();
        if found.is_none() {
            assert!(now >= not_before, "{key} expired {:?} before its time ran out", not_before - now);
            return Some(now);
        }
        None
    })
    .await
}

/// With `key` written at `sent` to live 10 s (a lease's TTL, or its own), lets 7 s
/// pass with the key present, kills the leader, and checks that the key goes no
/// earlier than 10 s after `sent` and within 7 s of the new leader taking over: the
/// replicated clock paused during the election and resumed where it was (about 3 s
/// were left), where a reset would have given the key a fresh 10 s.
pub async fn expires_as_if_the_leader_never_died(cluster: &mut Cluster, key: &str, sent: Instant) {
    let (lifetime, client) = (Duration::from_secs(10), cluster.client());
    wait_for("7 s of the 10 to pass, the key present throughout", Duration::from_secs(9), || async {
        assert!(client.get(key).await.unwrap().value.is_some());
        (sent.elapsed() >= Duration::from_secs(7)).then_some(())
    })
    .await;
    let leader = cluster.wait_for_leader(Duration::from_secs(10)).await;
    let killed = Instant::now();
    cluster.kill(leader);
    let client = cluster.client();
    cluster.wait_for_leader(Duration::from_secs(15)).await;
    let failover = killed.elapsed();
    let gone = watch_expiry(&client, key, sent + lifetime, Duration::from_secs(30)).await;
    let after_failover = gone - (killed + failover);
    eprintln!("failover took {failover:?}; {key} went {after_failover:?} after it (3 s were left)");
    assert!(after_failover < Duration::from_millis(7000), "{key}'s time was reset by the leader change: it lived {after_failover:?} past the failover");
}
