//! `concord-jepsen`: runs a workload against a real Concord cluster whose nodes live
//! in their own network namespaces, injects faults, records the history and checks
//! it. Exit code: 0 when every checker found the history valid, 1 when one found an
//! anomaly, 2 when a check was inconclusive or the run could not happen.
//!
//! A run: set up the hosts (`net`), start the nodes (`cluster`), run the clients and
//! the nemesis for `--time-limit` seconds, heal everything, let the workload finish
//! (final reads, draining), then write `history.jsonl`, `results.json` and the node
//! logs into the run directory.

mod bank;
mod client;
mod cluster;
mod consul_lock;
mod exactly_once;
mod history;
mod linear;
mod lock;
mod nemesis;
mod net;
mod queue;
mod redis_queue;
mod redis_register;
mod register;
mod report;
mod resp;
mod ring;
mod rng;

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::AtomicI64;
use std::time::{Duration, Instant};

use clap::{Parser, ValueEnum};
use serde_json::json;

use history::History;
use nemesis::{Fault, Nemesis};
use rng::Rng;

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Workload {
    Register,
    /// The register through the Redis door: GET, SET, and WATCH/MULTI/EXEC swaps.
    RedisRegister,
    /// A queue through the Redis door: LPUSH and BRPOP.
    RedisQueue,
    Queue,
    Lock,
    /// The lock through the Consul door: sessions, `acquire`, `LockIndex` as the token.
    ConsulLock,
    Ring,
    Bank,
    ExactlyOnce,
}

/// Deliberately wrong client behaviour, to show a checker catches it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Plant {
    /// Reads (register, ring) skip the linearizability check (`consistency=stale`).
    StaleReads,
    /// Queue acknowledgements are reported done without being sent.
    SkipAcks,
    /// Lock holders' writes are sent without their fence.
    Unfenced,
    /// Bank transfers are two separate writes instead of one transaction.
    SplitTransfers,
    /// Exactly-once workers write the result and ack the message in two requests.
    SeparateAck,
    /// Redis register swaps read and then write without WATCH and MULTI.
    UnwatchedSwaps,
    /// Redis queue pops look at the last item and remove it in a second command.
    RacyPops,
    /// Consul lock holders write the fenced resource with a plain put, no check.
    BlindWrites,
}

#[derive(Parser, Debug)]
#[command(name = "concord-jepsen", about = "Partitions, crashes and pauses against a real Concord cluster, with checked histories")]
struct Args {
    #[arg(long, value_enum, default_value = "register")]
    workload: Workload,
    /// Faults to inject, comma-separated (none: a fault-free run).
    #[arg(long, value_enum, value_delimiter = ',', default_value = "partition,kill,pause")]
    nemesis: Vec<Fault>,
    /// Seconds of workload under faults.
    #[arg(long, default_value_t = 60)]
    time_limit: u64,
    /// Cluster size.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u64).range(1..=9))]
    nodes: u64,
    /// Client processes (each bound to one node, round robin).
    #[arg(long, default_value_t = 6)]
    clients: u64,
    /// Seed of every random choice; printed, pass it back to repeat a run.
    #[arg(long)]
    seed: Option<u64>,
    /// The `concord` binary (default: next to this one).
    #[arg(long)]
    concord: Option<PathBuf>,
    /// Where the run directory goes (default: ./jepsen-runs/<workload>-<seed>).
    #[arg(long)]
    out: Option<PathBuf>,
    /// How long the checkers may search, in seconds, before saying "unknown".
    #[arg(long, default_value_t = 60)]
    check_budget: u64,
    /// Run with a planted bug (the checker must then report an anomaly).
    #[arg(long, value_enum)]
    plant: Option<Plant>,
}

/// How long one client request may take before its outcome counts as unknown.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(3);
/// How long the cluster may take to come back after the faults are healed.
const RECOVERY_TIMEOUT: Duration = Duration::from_secs(60);
/// How long the final drain of a queue may take.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(60);

/// One client process of the run's workload.
enum AnyClient {
    Register(register::Client),
    RedisRegister(redis_register::Client),
    RedisQueue(redis_queue::Client),
    Queue(queue::Client),
    Lock(lock::Client),
    ConsulLock(consul_lock::Client),
    Ring(ring::Client),
    Bank(bank::Client),
    ExactlyOnce(exactly_once::Client),
}

impl AnyClient {
    /// One operation (or cycle); false when the history is full.
    async fn step(&mut self, history: &History, started: Instant, next_value: &AtomicI64) -> bool {
        match self {
            AnyClient::Register(client) => client.step(history, started, next_value).await,
            AnyClient::RedisRegister(client) => client.step(history, started, next_value).await,
            AnyClient::RedisQueue(client) => client.step(history, next_value).await,
            AnyClient::Queue(client) => client.step(history, next_value).await,
            AnyClient::Lock(client) => client.step(history).await,
            AnyClient::ConsulLock(client) => client.step(history).await,
            AnyClient::Ring(client) => client.step(history).await,
            AnyClient::Bank(client) => client.step(history).await,
            AnyClient::ExactlyOnce(client) => client.step(history, next_value).await,
        }
    }

    /// The pause between operations (ring changes are kept slower, so each
    /// membership history stays small enough to check).
    fn pause(&self) -> Duration {
        match self {
            AnyClient::Ring(_) => Duration::from_millis(50),
            _ => Duration::from_millis(10),
        }
    }
}

fn concord_binary(args: &Args) -> Result<PathBuf, String> {
    let path = match &args.concord {
        Some(path) => path.clone(),
        None => std::env::current_exe().map_err(|e| e.to_string())?.with_file_name("concord"),
    };
    // Test binaries live one level down (target/debug/deps).
    let candidates = [path.clone(), path.parent().and_then(Path::parent).map(|p| p.join("concord")).unwrap_or_default()];
    candidates
        .into_iter()
        .find(|p| p.is_file())
        .ok_or_else(|| format!("no concord binary at {}; build it (cargo build --bin concord) or pass --concord", path.display()))
}

async fn run(args: Args, seed: u64, dir: PathBuf) -> Result<serde_json::Value, String> {
    let binary = concord_binary(&args)?;
    let run_number = (std::process::id() % 250) as u8 + 1;
    let mut net = net::Net::setup(run_number, args.nodes)?;
    let mut cluster = cluster::Cluster::start(&net, &binary, &dir)?;
    let http = reqwest::Client::builder().timeout(REQUEST_TIMEOUT).connect_timeout(Duration::from_millis(500)).build().map_err(|e| e.to_string())?;
    cluster.wait_ready(&http, Duration::from_secs(30)).await?;
    if args.workload == Workload::Bank {
        bank::setup(&http, &cluster.nodes[0].url(), Duration::from_secs(30)).await?;
    }

    let history = Arc::new(History::new());
    let mut rng = Rng::new(seed);
    let started = Instant::now();
    let deadline = started + Duration::from_secs(args.time_limit);
    let next_value = Arc::new(AtomicI64::new(1));
    let mut clients = Vec::new();
    for process in 0..args.clients {
        let node = process % args.nodes + 1;
        let url = cluster.nodes[(node - 1) as usize].url();
        let (history, next_value) = (history.clone(), next_value.clone());
        let conn = client::Conn { process, node, url, http: http.clone(), rng: rng.fork() };
        let mut client = match args.workload {
            Workload::Register => AnyClient::Register(register::Client::new(conn, args.plant == Some(Plant::StaleReads))),
            Workload::RedisRegister => AnyClient::RedisRegister(redis_register::Client::new(conn, args.plant == Some(Plant::UnwatchedSwaps))),
            Workload::RedisQueue => AnyClient::RedisQueue(redis_queue::Client::new(conn, args.plant == Some(Plant::RacyPops))),
            Workload::Queue => AnyClient::Queue(queue::Client { conn, skip_acks: args.plant == Some(Plant::SkipAcks), seed }),
            Workload::Lock => AnyClient::Lock(lock::Client::new(conn, args.plant == Some(Plant::Unfenced))),
            Workload::ConsulLock => AnyClient::ConsulLock(consul_lock::Client::new(conn, args.plant == Some(Plant::BlindWrites))),
            Workload::Ring => AnyClient::Ring(ring::Client { conn, stale_reads: args.plant == Some(Plant::StaleReads) }),
            Workload::Bank => AnyClient::Bank(bank::Client { conn, split_transfers: args.plant == Some(Plant::SplitTransfers) }),
            Workload::ExactlyOnce => AnyClient::ExactlyOnce(exactly_once::Client { conn, separate_ack: args.plant == Some(Plant::SeparateAck), seed }),
        };
        let handle = tokio::spawn(async move {
            while Instant::now() < deadline && client.step(&history, started, &next_value).await {
                tokio::time::sleep(client.pause()).await;
            }
        });
        clients.push(handle);
    }

    let mut nemesis = Nemesis::new(args.nemesis.clone(), rng.fork());
    while Instant::now() < deadline {
        let (healthy, faulty) = nemesis.durations();
        tokio::time::sleep(healthy.min(deadline.saturating_duration_since(Instant::now()))).await;
        if Instant::now() >= deadline {
            break;
        }
        nemesis.strike(&net, &mut cluster, &history, &http).await?;
        tokio::time::sleep(faulty.min(deadline.saturating_duration_since(Instant::now()))).await;
        nemesis.heal(&net, &mut cluster, &history)?;
    }
    nemesis.heal(&net, &mut cluster, &history)?;
    for client in clients {
        let _ = client.await;
    }
    cluster.wait_ready(&http, RECOVERY_TIMEOUT).await?;
    // The final phase, on the healed cluster, by one more client.
    let url = cluster.nodes[0].url();
    let conn = client::Conn { process: args.clients, node: 1, url, http: http.clone(), rng: rng.fork() };
    let drained = match args.workload {
        Workload::Register | Workload::RedisRegister | Workload::Lock | Workload::ConsulLock | Workload::Ring => true,
        Workload::Queue => queue::Client { conn, skip_acks: false, seed }.drain(&history, DRAIN_TIMEOUT).await,
        Workload::RedisQueue => redis_queue::Client::new(conn, false).drain(&history, DRAIN_TIMEOUT).await,
        Workload::Bank => bank::Client { conn, split_transfers: false }.read(&history).await.is_some(),
        Workload::ExactlyOnce => {
            let mut worker = exactly_once::Client { conn, separate_ack: args.plant == Some(Plant::SeparateAck), seed };
            let drained = worker.drain(&history, DRAIN_TIMEOUT).await;
            worker.read_results(&history).await && drained
        }
    };
    drop(cluster);
    net.teardown();

    history.write_jsonl(&dir.join("history.jsonl")).map_err(|e| e.to_string())?;
    let ops = history.ops();
    let checked = match args.workload {
        Workload::Register | Workload::RedisRegister => register::check(&ops, Duration::from_secs(args.check_budget)),
        Workload::Queue => queue::check(&ops, drained),
        Workload::RedisQueue => redis_queue::check(&ops, drained),
        Workload::Lock | Workload::ConsulLock => lock::check(&ops),
        Workload::Ring => ring::check(&ops, Duration::from_secs(args.check_budget)),
        Workload::Bank => bank::check(&ops),
        Workload::ExactlyOnce => exactly_once::check(&ops, drained),
    };
    let count = |kind: history::Type| ops.iter().filter(|o| o.kind == kind && o.process != history::Process::Nemesis).count();
    let results = json!({
        "workload": format!("{:?}", args.workload).to_lowercase(),
        "seed": seed,
        "nodes": args.nodes,
        "clients": args.clients,
        "time_limit_s": args.time_limit,
        "nemesis": args.nemesis.iter().map(|f| format!("{f:?}").to_lowercase()).collect::<Vec<_>>(),
        "plant": args.plant.map(|p| format!("{p:?}")),
        "ops": { "ok": count(history::Type::Ok), "fail": count(history::Type::Fail), "info": count(history::Type::Info) },
        "valid": checked["valid"],
        "checkers": [checked],
    });
    report::write(&dir, &ops, &results)?;
    Ok(results)
}

fn main() -> ExitCode {
    let args = Args::parse();
    if let Some(reason) = net::unavailable() {
        eprintln!("concord-jepsen cannot run here: {reason}");
        return ExitCode::from(2);
    }
    let seed = args.seed.unwrap_or_else(|| std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos() as u64).unwrap_or(1));
    let dir = args.out.clone().unwrap_or_else(|| PathBuf::from("jepsen-runs").join(format!("{:?}-{seed}", args.workload).to_lowercase()));
    if let Err(e) = std::fs::create_dir_all(&dir) {
        eprintln!("cannot create {}: {e}", dir.display());
        return ExitCode::from(2);
    }
    println!("concord-jepsen: workload {:?}, seed {seed}, run directory {}", args.workload, dir.display());
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("cannot start the runtime: {e}");
            return ExitCode::from(2);
        }
    };
    let outcome = runtime.block_on(async {
        tokio::select! {
            outcome = run(args, seed, dir.clone()) => outcome,
            // Dropping the run stops every node and removes every namespace and rule.
            _ = tokio::signal::ctrl_c() => Err("interrupted".to_string()),
        }
    });
    match outcome {
        Ok(results) => {
            let text = serde_json::to_string_pretty(&results).unwrap_or_default();
            if let Err(e) = std::fs::write(dir.join("results.json"), &text) {
                eprintln!("cannot write results.json: {e}");
                return ExitCode::from(2);
            }
            let verdict = results["valid"].as_str().unwrap_or("unknown");
            println!("ops: {}; verdict: {verdict} (details in {})", results["ops"], dir.join("results.json").display());
            match verdict {
                "valid" => ExitCode::SUCCESS,
                "invalid" => ExitCode::from(1),
                _ => ExitCode::from(2),
            }
        }
        Err(e) => {
            eprintln!("the run failed: {e} (seed {seed})");
            ExitCode::from(2)
        }
    }
}
