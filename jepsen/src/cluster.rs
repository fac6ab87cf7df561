//! The database under test: one `concord serve` process per host, started inside its
//! namespace, and the process faults (kill -9 and restart from the same data
//! directory, SIGSTOP and SIGCONT). Every process is stopped by its pid when the
//! cluster is dropped; a child also gets SIGKILL if the suite itself dies.

use std::fs::File;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::net::Net;

/// The port every node listens on, inside its own namespace.
pub const PORT: u16 = 7000;
/// The port of every node's Redis door (`--redis-listen`), for `redis_register`.
pub const REDIS_PORT: u16 = 6379;
/// The port of every node's Consul door (`--consul-listen`), for `consul_lock`.
pub const CONSUL_PORT: u16 = 8500;

/// One host's node. Hosts are numbered 1..=n; the Raft id of the node on a host
/// starts equal to the host number and changes when the membership nemesis replaces
/// it with a fresh node.
pub struct Node {
    pub ip: String,
    /// The Raft id of the node running here now.
    pub id: u64,
    /// Set when the node joined a running cluster (`--join`) instead of forming it.
    joined_via: Option<String>,
    namespace: String,
    dir: PathBuf,
    log: PathBuf,
    child: Option<Child>,
    paused: bool,
}

pub struct Cluster {
    pub nodes: Vec<Node>,
    binary: PathBuf,
    initial_cluster: String,
    /// The Raft id the next replacement node gets.
    next_id: u64,
}

impl Node {
    pub fn url(&self) -> String {
        format!("http://{}:{PORT}", self.ip)
    }

    fn pid(&self) -> Option<libc::pid_t> {
        self.child.as_ref().map(|c| c.id() as libc::pid_t)
    }
}

impl Cluster {
    /// Starts one node per host of `net`, with data and logs under `dir`.
    pub fn start(net: &Net, binary: &Path, dir: &Path) -> Result<Cluster, String> {
        let initial_cluster = net.hosts.iter().map(|h| format!("{}={}:{PORT}", h.id, h.ip)).collect::<Vec<_>>().join(",");
        let nodes = net
            .hosts
            .iter()
            .map(|h| Node {
                ip: h.ip.clone(),
                id: h.id,
                joined_via: None,
                namespace: h.namespace.clone(),
                dir: dir.to_path_buf(),
                log: dir.join(format!("node-{}.log", h.id)),
                child: None,
                paused: false,
            })
            .collect();
        let next_id = net.hosts.len() as u64 + 1;
        let mut cluster = Cluster { nodes, binary: binary.to_path_buf(), initial_cluster, next_id };
        for id in 1..=cluster.nodes.len() as u64 {
            cluster.launch(id)?;
        }
        Ok(cluster)
    }

    fn node_mut(&mut self, host: u64) -> &mut Node {
        &mut self.nodes[(host - 1) as usize]
    }

    /// Starts the node of host `host` (again), on its existing data directory.
    pub fn launch(&mut self, host: u64) -> Result<(), String> {
        let (binary, initial_cluster) = (self.binary.clone(), self.initial_cluster.clone());
        let node = self.node_mut(host);
        let log = File::options().create(true).append(true).open(&node.log).map_err(|e| format!("{}: {e}", node.log.display()))?;
        let stderr = log.try_clone().map_err(|e| e.to_string())?;
        let listen = format!("{}:{PORT}", node.ip);
        let redis_listen = format!("{}:{REDIS_PORT}", node.ip);
        let consul_listen = format!("{}:{CONSUL_PORT}", node.ip);
        let data_dir = node.dir.join(format!("node-{host}-id{}", node.id));
        let mut command = Command::new("ip");
        command
            .args(["netns", "exec", &node.namespace])
            .arg(&binary)
            .args(["serve", "--id", &node.id.to_string(), "--listen", &listen, "--redis-listen", &redis_listen])
            .args(["--consul-listen", &consul_listen, "--data-dir"])
            .arg(&data_dir)
            .env("RUST_LOG", "info,openraft=warn")
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(stderr);
        match &node.joined_via {
            Some(url) => command.args(["--join", url]),
            None => command.args(["--initial-cluster", &initial_cluster]),
        };
        // SAFETY: runs in the forked child before exec; one async-signal-safe call.
        // (`ip netns exec` execs the server, so the signal reaches it.)
        unsafe {
            command.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                Ok(())
            });
        }
        let child = command.spawn().map_err(|e| format!("starting the node of host {host}: {e}"))?;
        node.child = Some(child);
        node.paused = false;
        Ok(())
    }

    /// The host the node with Raft id `id` runs on.
    pub fn host_of(&self, id: u64) -> Option<u64> {
        self.nodes.iter().position(|n| n.id == id).map(|i| i as u64 + 1)
    }

    /// Replaces the node of `host` by a fresh one (new id, empty data) that joins the
    /// cluster through `via`; returns the new id. The old one must have been removed.
    pub fn replace(&mut self, host: u64, via: String) -> Result<u64, String> {
        self.kill(host);
        let id = self.next_id;
        self.next_id += 1;
        let node = self.node_mut(host);
        node.id = id;
        node.joined_via = Some(via);
        self.launch(host)?;
        Ok(id)
    }

    pub fn is_up(&self, host: u64) -> bool {
        self.nodes[(host - 1) as usize].child.is_some()
    }

    /// kill -9: the process ends at once, with whatever it had not fsynced.
    pub fn kill(&mut self, host: u64) {
        let node = self.node_mut(host);
        if let Some(mut child) = node.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        node.paused = false;
    }

    pub fn pause(&mut self, host: u64) {
        let node = self.node_mut(host);
        if let Some(pid) = node.pid() {
            // SAFETY: a pid of a child we started and have not reaped.
            unsafe { libc::kill(pid, libc::SIGSTOP) };
            node.paused = true;
        }
    }

    pub fn resume(&mut self, host: u64) {
        let node = self.node_mut(host);
        if let Some(pid) = node.pid().filter(|_| node.paused) {
            // SAFETY: as in `pause`.
            unsafe { libc::kill(pid, libc::SIGCONT) };
        }
        node.paused = false;
    }

    /// Resumes paused nodes and restarts killed ones.
    pub fn heal(&mut self) -> Result<(), String> {
        for host in 1..=self.nodes.len() as u64 {
            self.resume(host);
            if !self.is_up(host) {
                self.launch(host)?;
            }
        }
        Ok(())
    }

    /// The leader as some reachable node reports it.
    pub async fn leader(&self, http: &reqwest::Client) -> Option<u64> {
        for node in &self.nodes {
            let answer = http.get(format!("{}/v1/cluster?consistency=stale", node.url())).timeout(Duration::from_millis(500)).send().await;
            if let Ok(answer) = answer
                && let Ok(body) = answer.json::<serde_json::Value>().await
                && let Some(leader) = body["leader"].as_u64()
            {
                return Some(leader);
            }
        }
        None
    }

    /// Waits until every node answers `/ready` and a leader is known.
    pub async fn wait_ready(&self, http: &reqwest::Client, timeout: Duration) -> Result<(), String> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let mut ready = 0;
            for node in &self.nodes {
                let answer = http.get(format!("{}/ready", node.url())).timeout(Duration::from_millis(500)).send().await;
                ready += usize::from(answer.is_ok_and(|a| a.status().is_success()));
            }
            if ready == self.nodes.len() && self.leader(http).await.is_some() {
                return Ok(());
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(format!("the cluster was not ready within {timeout:?} ({ready} of {} nodes ready)", self.nodes.len()));
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for host in 1..=self.nodes.len() as u64 {
            self.resume(host);
            self.kill(host);
        }
    }
}
