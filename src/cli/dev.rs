//! `concord dev`: a whole local cluster in one command, and the way to watch it fail
//! over.
//!
//! Starts N `concord serve` child processes on consecutive loopback ports (their
//! logs go to `node-N.log` in the data directory), waits until they elect a leader,
//! prints the endpoints and a few commands to try, then supervises them until Ctrl-C
//! or SIGTERM: it says when a node exits and when the leader changes, and it carries
//! out `concord dev kill N|leader` and `concord dev restart [N]` sent from another
//! terminal (`dev_control`). A node that dies does not stop the others, since
//! surviving that is the point. On exit it stops the children (SIGTERM, then SIGKILL
//! after a grace period); if it is killed outright, the kernel stops them. Without
//! `--data-dir` the data lives in a fresh temporary directory, removed at exit unless
//! a node crashed (its log says why); with it, the cluster resumes from that
//! directory next time.
//!
//! Every member also speaks Redis's protocol (`--redis-listen`), on the ports 1000
//! below the HTTP ones (6001, 6002, 6003 by default), and the banner prints a
//! `redis-cli` line for each. And Consul's HTTP API (`--consul-listen`), on the ports
//! 1500 above the HTTP ones (8501, 8502, 8503 by default).
//!
//! With `--tls`, it first makes a throwaway CA and a certificate for 127.0.0.1 in
//! `<data dir>/tls` (`dev_ca`; kept and reused with `--data-dir`), and starts the
//! members with HTTPS and mutual TLS between them.

use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, ExitCode};
use std::time::{Duration, Instant};

use clap::{Args, Subcommand};
use concord::client::Client;

use super::dev_control::{self, NodeChoice, Request};

#[derive(Args, Debug)]
#[command(args_conflicts_with_subcommands = true)]
pub struct DevArgs {
    /// Act on the dev cluster running in another terminal (without one: start a cluster).
    #[command(subcommand)]
    pub action: Option<DevAction>,
    /// How many members: 3 or 5.
    #[arg(long, default_value_t = 3, value_parser = parse_cluster_size)]
    pub nodes: u64,
    /// Keep the data here (resumed on the next run) instead of a temporary directory.
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// Port of node 1; node N listens on PORT+N-1. `kill` and `restart` use it to find the cluster.
    #[arg(long, env = "CONCORD_DEV_BASE_PORT", default_value_t = 7001, global = true)]
    pub base_port: u16,
    /// Serve HTTPS, with certificates from a throwaway CA, and mutual TLS between members.
    #[arg(long)]
    pub tls: bool,
}

#[derive(Subcommand, Debug)]
pub enum DevAction {
    /// Kill one node of the running dev cluster with SIGKILL, as a crash would.
    Kill {
        /// A node id, or `leader` for whichever node leads now.
        #[arg(value_parser = parse_node_choice, value_name = "ID|leader")]
        node: NodeChoice,
    },
    /// Start a killed or crashed node of the running dev cluster again.
    Restart {
        /// The node id (default: every node that is not running).
        node: Option<u64>,
    },
}

fn parse_node_choice(text: &str) -> Result<NodeChoice, String> {
    match text {
        "leader" => Ok(NodeChoice::Leader),
        _ => text.parse().map(NodeChoice::Id).map_err(|_| format!("a node is its id (1, 2, ...) or `leader`, not {text:?}")),
    }
}

/// The TLS files in `dir`: reused if a previous `--tls` run left them, else made.
fn dev_tls_files(dir: &std::path::Path) -> Result<concord::dev_ca::DevFiles, String> {
    let existing = concord::dev_ca::DevFiles::in_dir(dir);
    if [&existing.ca, &existing.cert, &existing.key].iter().all(|file| file.exists()) {
        return Ok(existing);
    }
    concord::dev_ca::DevCa::generate("Concord dev CA")?.write_loopback_files(dir)
}

fn parse_cluster_size(text: &str) -> Result<u64, String> {
    match text {
        "3" => Ok(3),
        "5" => Ok(5),
        _ => Err(format!("a dev cluster has 3 or 5 nodes, not {text:?}")),
    }
}

/// One member: how to start it, and its process while it runs.
struct Member {
    id: u64,
    /// The `concord serve` arguments, the same at every start.
    args: Vec<std::ffi::OsString>,
    log: PathBuf,
    /// Where it serves clients.
    url: String,
    child: Option<Child>,
}

impl Member {
    /// Starts the node, its output appended to its log (a restart keeps what the
    /// crashed run wrote). Returns its pid.
    fn start(&mut self, exe: &std::path::Path) -> Result<u32, String> {
        let log = std::fs::File::options().create(true).append(true).open(&self.log);
        let log = log.map_err(|e| format!("cannot open the log file of node {}, {}: {e}", self.id, self.log.display()))?;
        let stderr = log.try_clone().map_err(|e| format!("cannot open the log file of node {}: {e}", self.id))?;
        let mut command = Command::new(exe);
        // Its own process group: the terminal's Ctrl-C reaches only `concord dev`,
        // which then stops the nodes itself, rather than every node at once (which
        // would look like crashes).
        command.stdout(log).stderr(stderr).args(&self.args).process_group(0);
        // If this process dies without stopping them (kill -9), the kernel sends each
        // child SIGTERM: no orphaned nodes holding the ports. (The signal follows the
        // thread that spawned: this runs on the main thread, which lives as long as
        // the process, never on a short-lived blocking-pool thread.)
        // SAFETY: the closure runs in the forked child before exec and only makes one
        // async-signal-safe system call.
        unsafe {
            command.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM);
                Ok(())
            });
        }
        let child = command.spawn().map_err(|e| format!("cannot start node {}: {e}", self.id))?;
        let pid = child.id();
        self.child = Some(child);
        Ok(pid)
    }

    /// SIGKILL, as a crash or a power cut would stop it; returns the pid it had.
    fn kill(&mut self) -> Result<u32, String> {
        let mut child = self.child.take().ok_or_else(|| format!("node {} is not running; `concord dev restart {}` starts it", self.id, self.id))?;
        let pid = child.id();
        let _ = child.kill();
        let _ = child.wait();
        Ok(pid)
    }

    /// How it ended, if it exited since the last look (it is then no longer running).
    fn exited(&mut self) -> Option<std::process::ExitStatus> {
        let status = self.child.as_mut().and_then(|child| child.try_wait().ok().flatten())?;
        self.child = None;
        Some(status)
    }
}

struct Members(Vec<Member>);

impl Drop for Members {
    fn drop(&mut self) {
        for child in self.0.iter().filter_map(|m| m.child.as_ref()) {
            // SIGTERM lets each node stop cleanly; a pid we started ourselves.
            unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGTERM) };
        }
        let deadline = Instant::now() + Duration::from_secs(5);
        for child in self.0.iter_mut().filter_map(|m| m.child.as_mut()) {
            while Instant::now() < deadline && matches!(child.try_wait(), Ok(None)) {
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

pub async fn run(args: DevArgs) -> ExitCode {
    match args.action {
        Some(action) => control(args.base_port, action).await,
        None => supervise(args).await,
    }
}

/// `concord dev kill|restart`: asks the running cluster's supervisor.
async fn control(base_port: u16, action: DevAction) -> ExitCode {
    let request = match action {
        DevAction::Kill { node } => Request::Kill(node),
        DevAction::Restart { node } => Request::Restart(node),
    };
    match dev_control::send(base_port, &request).await {
        Ok(text) => {
            println!("{text}");
            ExitCode::SUCCESS
        }
        Err(text) => {
            eprintln!("error: {text}");
            ExitCode::from(super::EXIT_REFUSED)
        }
    }
}

/// How far below its HTTP port a member's Redis door listens.
const REDIS_PORT_OFFSET: u16 = 1000;
/// How far above a member's HTTP port its Consul door listens.
const CONSUL_PORT_OFFSET: u16 = 1500;
/// How long `restart` waits for the node to serve again before answering.
const RESTART_SERVING_WAIT: Duration = Duration::from_secs(20);

/// Waits until the node at `url` answers and knows a leader, so that what the person
/// types next reaches it; `false` if it did not within `RESTART_SERVING_WAIT`.
async fn wait_serving(url: &str, tls: Option<&concord::dev_ca::DevFiles>) -> bool {
    let Ok(client) = status_client(vec![url.to_string()], tls) else { return false };
    let deadline = Instant::now() + RESTART_SERVING_WAIT;
    while Instant::now() < deadline {
        if current_leader(&client).await.is_some() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    false
}

/// What the supervisor asks the cluster: with short deadlines, since it answers a
/// person and must not stall its loop while no leader is elected.
fn status_client(urls: Vec<String>, tls: Option<&concord::dev_ca::DevFiles>) -> Result<Client, String> {
    let mut client = match tls {
        None => Client::new(urls),
        Some(files) => concord::tls::ClientTls::read_ca(&files.ca).and_then(|ca| Client::new(urls).with_tls(&ca).map_err(|e| e.to_string()))?,
    };
    client.call_timeout = Duration::from_millis(400);
    client.attempt_timeout = Duration::from_millis(400);
    client.unreachable_rounds_max = Some(1);
    Ok(client)
}

/// The leader as the nodes that answer see it (`None`: no leader right now).
async fn current_leader(client: &Client) -> Option<u64> {
    client.cluster_status(true).await.ok().and_then(|status| status.value.leader)
}

/// Starts every member in `members` again, then waits, for all of them at once, until
/// they serve: a node that cannot (no quorum yet) does not hold up the others.
async fn restart(members: Vec<&mut Member>, exe: &std::path::Path, tls: Option<&concord::dev_ca::DevFiles>) -> Result<String, String> {
    let mut started = Vec::new();
    for member in members {
        started.push((member.id, member.start(exe)?, member.url.clone(), member.log.clone()));
    }
    let serving = futures_util::future::join_all(started.iter().map(|(_, _, url, _)| wait_serving(url, tls))).await;
    let said: Vec<String> = started
        .iter()
        .zip(&serving)
        .map(|((id, pid, _, log), serving)| match serving {
            true => format!("node {id} (pid {pid}) is serving again"),
            false => format!("node {id} (pid {pid}) started but knows no leader after {} s; its log is {}", RESTART_SERVING_WAIT.as_secs(), log.display()),
        })
        .collect();
    match serving.iter().all(|serving| *serving) {
        true => Ok(said.join("; ")),
        false => Err(said.join("; ")),
    }
}

/// Carries out one request from `concord dev kill|restart`.
async fn handle(
    request: Request,
    members: &mut Members,
    exe: &std::path::Path,
    client: &Client,
    tls: Option<&concord::dev_ca::DevFiles>,
) -> Result<String, String> {
    let log_hint = |m: &Member| format!("its log is {}", m.log.display());
    match request {
        Request::Kill(choice) => {
            let (id, what) = match choice {
                NodeChoice::Id(id) => (id, ""),
                NodeChoice::Leader => {
                    (current_leader(client).await.ok_or("no node leads right now (an election is under way?); try again, or name a node")?, "the leader, ")
                }
            };
            let member = members.0.iter_mut().find(|m| m.id == id).ok_or_else(|| format!("there is no node {id}"))?;
            let pid = member.kill()?;
            Ok(format!("killed node {id} ({what}pid {pid}) with SIGKILL; {}; `concord dev restart {id}` starts it again", log_hint(member)))
        }
        Request::Restart(Some(id)) => {
            let member = members.0.iter_mut().find(|m| m.id == id).ok_or_else(|| format!("there is no node {id}"))?;
            if member.child.is_some() {
                return Err(format!("node {id} is running"));
            }
            restart(vec![member], exe, tls).await
        }
        Request::Restart(None) => {
            let stopped: Vec<&mut Member> = members.0.iter_mut().filter(|m| m.child.is_none()).collect();
            if stopped.is_empty() {
                return Err("every node is running".into());
            }
            restart(stopped, exe, tls).await
        }
    }
}

/// `concord dev`: starts the nodes, then keeps them: says when one exits and who
/// leads, and carries out `kill` and `restart` from other terminals, until Ctrl-C.
async fn supervise(args: DevArgs) -> ExitCode {
    // A temporary directory is removed when `temporary` drops, after the children stop.
    let (data_dir, mut temporary) = match &args.data_dir {
        Some(dir) => (dir.clone(), None),
        None => match tempfile::Builder::new().prefix("concord-dev-").tempdir() {
            Ok(dir) => (dir.path().to_path_buf(), Some(dir)),
            Err(e) => {
                eprintln!("error: cannot create a temporary data directory: {e}");
                return ExitCode::from(1);
            }
        },
    };
    let exe = match std::env::current_exe() {
        Ok(exe) => exe,
        Err(e) => {
            eprintln!("error: cannot find the concord executable: {e}");
            return ExitCode::from(1);
        }
    };
    let Some(last_port) = args.base_port.checked_add(args.nodes as u16 - 1) else {
        eprintln!("error: --base-port {} leaves no room for {} nodes", args.base_port, args.nodes);
        return ExitCode::from(2);
    };
    let (mut requests, _socket_file) = match dev_control::listen(args.base_port).await {
        Ok(control) => control,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(1);
        }
    };
    if let Err(e) = std::fs::create_dir_all(&data_dir) {
        eprintln!("error: cannot create {}: {e}", data_dir.display());
        return ExitCode::from(1);
    }
    let addrs: Vec<String> = (args.base_port..=last_port).map(|port| format!("127.0.0.1:{port}")).collect();
    let Some(redis_ports) = redis_ports(&args) else {
        eprintln!("error: --base-port {} leaves no room for the Redis ports, {REDIS_PORT_OFFSET} below the HTTP ones", args.base_port);
        return ExitCode::from(2);
    };
    let Some(consul_ports) = consul_ports(&args) else {
        eprintln!("error: --base-port {} leaves no room for the Consul ports, {CONSUL_PORT_OFFSET} above the HTTP ones", args.base_port);
        return ExitCode::from(2);
    };
    let initial_cluster = addrs.iter().enumerate().map(|(i, addr)| format!("{}={addr}", i + 1)).collect::<Vec<_>>().join(",");
    let tls = match args.tls.then(|| dev_tls_files(&data_dir.join("tls"))).transpose() {
        Ok(tls) => tls,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(1);
        }
    };
    let scheme = if tls.is_some() { "https" } else { "http" };
    let mut members = Members(Vec::new());
    for (i, addr) in addrs.iter().enumerate() {
        let id = i as u64 + 1;
        let mut serve_args: Vec<std::ffi::OsString> =
            ["serve", "--id", &id.to_string(), "--listen", addr, "--initial-cluster", &initial_cluster, "--data-dir"].map(Into::into).into();
        serve_args.push(data_dir.join(format!("node-{id}")).into());
        serve_args.extend(["--redis-listen".into(), format!("127.0.0.1:{}", redis_ports[i]).into()]);
        serve_args.extend(["--consul-listen".into(), format!("127.0.0.1:{}", consul_ports[i]).into()]);
        if let Some(files) = &tls {
            serve_args.extend(["--tls-cert".into(), files.cert.clone().into(), "--tls-key".into(), files.key.clone().into()]);
            serve_args.extend(["--tls-ca".into(), files.ca.clone().into(), "--peer-mtls".into()]);
        }
        let url = format!("{scheme}://{addr}");
        let mut member = Member { id, args: serve_args, log: data_dir.join(format!("node-{id}.log")), url, child: None };
        if let Err(e) = member.start(&exe) {
            eprintln!("error: {e}");
            return ExitCode::from(1);
        }
        members.0.push(member);
    }

    let urls: Vec<String> = members.0.iter().map(|m| m.url.clone()).collect();
    let client = match status_client(urls.clone(), tls.as_ref()) {
        Ok(client) => client,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(1);
        }
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    let leader = loop {
        if let Some(leader) = current_leader(&client).await {
            break Some(leader);
        }
        if Instant::now() > deadline || members.0.iter_mut().any(|m| m.exited().is_some()) {
            break None;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let Some(leader) = leader else {
        eprintln!("error: the cluster did not elect a leader within 30 s (is a port in {addrs:?} in use?); the logs are in {}", data_dir.display());
        // Keep them: they say why.
        if let Some(dir) = temporary.take() {
            let _ = dir.keep();
        }
        return ExitCode::from(1);
    };
    print_banner(&args, leader, &urls, &addrs, &data_dir, temporary.is_some(), tls.as_ref());

    // Ctrl-C, or SIGTERM (from a supervisor, `timeout` or `kill`). Listened for once,
    // here: a signal that arrives while the loop handles a request is kept for it.
    let signals = [tokio::signal::unix::SignalKind::interrupt(), tokio::signal::unix::SignalKind::terminate()].map(tokio::signal::unix::signal);
    let [Ok(mut interrupt), Ok(mut terminate)] = signals else {
        eprintln!("error: cannot listen for Ctrl-C and SIGTERM");
        return ExitCode::from(1);
    };

    let mut leader_seen = Some(leader);
    let mut crashed = false;
    loop {
        tokio::select! {
            _ = interrupt.recv() => break,
            _ = terminate.recv() => break,
            Some((request, answerer)) = requests.recv() => {
                let result = handle(request, &mut members, &exe, &client, tls.as_ref()).await;
                match &result {
                    Ok(text) => println!("{text}"),
                    Err(text) => println!("refused: {text}"),
                }
                answerer.answer(result).await;
            }
            _ = tokio::time::sleep(Duration::from_millis(500)) => {
                for member in &mut members.0 {
                    if let Some(status) = member.exited() {
                        crashed = true;
                        println!("node {} exited ({status}); its log is {}. The others keep serving; `concord dev restart {}` starts it again.", member.id, member.log.display(), member.id);
                    }
                }
                let leader = current_leader(&client).await;
                if leader != leader_seen {
                    match leader {
                        Some(id) => println!("leader is now node {id}"),
                        None => println!("no leader: an election is under way, or a majority of the nodes is down"),
                    }
                    leader_seen = leader;
                }
            }
        }
    }
    println!("stopping the cluster...");
    drop(members);
    println!("stopped");
    // A node crashed by itself: its log says why, so the directory outlives the run.
    if crashed && let Some(dir) = temporary.take() {
        println!("kept {} for the logs of the node that crashed", dir.keep().display());
    }
    ExitCode::SUCCESS
}

/// The port of each member's Redis door, `REDIS_PORT_OFFSET` below its HTTP port.
fn redis_ports(args: &DevArgs) -> Option<Vec<u16>> {
    let first = args.base_port.checked_sub(REDIS_PORT_OFFSET)?;
    Some((0..args.nodes as u16).map(|i| first + i).collect())
}

/// The port of each member's Consul door, `CONSUL_PORT_OFFSET` above its HTTP port.
fn consul_ports(args: &DevArgs) -> Option<Vec<u16>> {
    let first = args.base_port.checked_add(CONSUL_PORT_OFFSET)?;
    (0..args.nodes as u16).map(|i| first.checked_add(i)).collect()
}

fn print_banner(
    args: &DevArgs,
    leader: u64,
    urls: &[String],
    addrs: &[String],
    data_dir: &std::path::Path,
    temporary: bool,
    tls: Option<&concord::dev_ca::DevFiles>,
) {
    let (first, last) = (&urls[0], &urls[urls.len() - 1]);
    println!("\nConcord dev cluster: {} nodes, leader is node {leader}", args.nodes);
    println!("  endpoints: {}", urls.join(" "));
    let redis: Vec<String> = redis_ports(args).unwrap_or_default().iter().map(|port| format!("redis-cli -p {port}")).collect();
    println!("  redis:     {}{}", redis.join(" | "), if tls.is_some() { " (with --tls --cacert <CA>)" } else { "" });
    let consul: Vec<String> =
        consul_ports(args).unwrap_or_default().iter().map(|port| format!("{}://127.0.0.1:{port}", if tls.is_some() { "https" } else { "http" })).collect();
    println!("  consul:    {}", consul.join(" "));
    println!("  data:      {}{}", data_dir.display(), if temporary { " (temporary: removed at exit, unless a node crashed)" } else { "" });
    println!("  logs:      {}/node-N.log", data_dir.display());
    let curl = match tls {
        Some(files) => {
            println!("  CA:        {} (members use mutual TLS with certificates it signed)", files.ca.display());
            format!("curl --cacert {}", files.ca.display())
        }
        None => "curl".to_string(),
    };
    println!("\nTry, in another terminal:");
    println!("  {curl} -X PUT --data-binary 'hello' {first}/v1/kv/greeting");
    println!("  {curl} {last}/v1/kv/greeting");
    println!("  {curl} {first}/v1/cluster");
    let env = match tls {
        Some(files) => format!("CONCORD_CA_FILE={} CONCORD_ENDPOINTS={} ", files.ca.display(), urls.join(",")),
        None if args.base_port != 7001 => format!("CONCORD_ENDPOINTS={} ", addrs.join(",")),
        None => String::new(),
    };
    println!("  {env}concord kv get greeting");
    let port = if args.base_port != 7001 { format!(" --base-port {}", args.base_port) } else { String::new() };
    println!("\nWatch it fail over:");
    println!("  concord dev kill leader{port}     # kill -9 whichever node leads; another takes over");
    println!("  concord dev restart{port}         # start it again; it catches up");
    println!("\nCtrl-C stops the cluster.");
}
