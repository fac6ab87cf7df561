//! `concord bench`: drives a running cluster over HTTP (puts, gets, CAS, queue and
//! lock cycles, ring lookups, a mix) and reports throughput,
//! latency percentiles (HDR histogram, in µs) and errors by kind.
//!
//! N tasks each hold one keep-alive connection and send requests back to back for a
//! duration or until a total count. Requests go to the leader (asked once at the
//! start) unless `--spread` sends each connection to the endpoints in turn, which
//! then forward writes. A put (or mixed) run checks its own results: afterwards it reads back a
//! sample of the keys it was told were written and counts any that are missing or
//! hold another value. Workloads of two kinds of operation (a queue's enqueue and its
//! receive + ack, the mix's gets, puts and CAS) report each kind's latency apart.

use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use clap::{Args, ValueEnum};
use hdrhistogram::Histogram;
use serde_json::{Value, json};

use super::client::Connection;

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum BenchWorkload {
    /// Unique keys, `--value-bytes` values.
    Put,
    /// Linearizable reads of keys the run writes first.
    Get,
    /// Reads with `consistency=stale`.
    GetStale,
    /// Compare-and-swap: each connection rewrites its own key with `If-Match`.
    Cas,
    /// Enqueue, then receive + ack, alternately (one queue per connection).
    Queue,
    /// Acquire + release of a lock per connection, with its own lease.
    Lock,
    /// Lookups of random keys in a ring of 5 members.
    RingLookup,
    /// 50% linearizable gets, 40% puts, 10% compare-and-swaps.
    Mixed,
}

#[derive(Args, Debug)]
pub struct BenchArgs {
    #[command(flatten)]
    pub connection: Connection,
    /// What each operation does.
    #[arg(long, value_enum, default_value = "put")]
    pub workload: BenchWorkload,
    /// Concurrent connections.
    #[arg(long, default_value_t = 16, value_parser = clap::value_parser!(u64).range(1..=4096))]
    pub connections: u64,
    /// Seconds to run (unless --ops is reached first).
    #[arg(long, default_value_t = 10)]
    pub duration_s: u64,
    /// Stop after this many operations in all.
    #[arg(long)]
    pub ops: Option<u64>,
    /// Value size for writes.
    #[arg(long, default_value_t = 100)]
    pub value_bytes: usize,
    /// Keys a read run reads (written before it starts).
    #[arg(long, default_value_t = 1000)]
    pub keys: u64,
    /// Prefix of the keys a put run writes, `<prefix>/<connection>/<n>`: a new prefix
    /// writes new keys (as when loading a data set in steps).
    #[arg(long, default_value = "bench")]
    pub key_prefix: String,
    /// Send each connection to the endpoints in turn instead of to the leader.
    #[arg(long)]
    pub spread: bool,
}

/// Most keys a put run reads back to check itself.
const VERIFY_SAMPLE: usize = 1000;

struct Shared {
    /// Latency of every successful operation, and of each kind apart.
    latency_us: std::sync::Mutex<Histogram<u64>>,
    latency_us_by_kind: std::sync::Mutex<std::collections::BTreeMap<&'static str, Histogram<u64>>>,
    errors: std::sync::Mutex<std::collections::BTreeMap<String, u64>>,
    done: AtomicU64,
    stop: AtomicBool,
    /// Keys a put run was told were written, with their values' first bytes.
    written: std::sync::Mutex<Vec<String>>,
}

async fn leader_url(http: &reqwest::Client, endpoints: &[String]) -> Option<String> {
    for endpoint in endpoints {
        let status: Value = http.get(format!("{endpoint}/v1/cluster")).send().await.ok()?.json().await.ok()?;
        let leader = status["leader"].as_u64()?;
        let members = status["members"].as_array()?;
        if let Some(addr) = members.iter().find(|m| m["id"].as_u64() == Some(leader)).and_then(|m| m["addr"].as_str()) {
            // The leader is reached the way the endpoint was (http or https).
            let scheme = endpoint.split_once("://").map_or("http", |(scheme, _)| scheme);
            return Some(format!("{scheme}://{addr}"));
        }
    }
    None
}

fn error_kind(status: Option<u16>, body: &str) -> String {
    let code = serde_json::from_str::<Value>(body).ok().and_then(|b| b["error"]["code"].as_str().map(String::from));
    match (status, code) {
        (Some(status), Some(code)) => format!("{status} {code}"),
        (Some(status), None) => status.to_string(),
        (None, _) => body.to_string(),
    }
}

/// What one operation of a connection does: its requests, in order (a queue cycle
/// or a lock cycle is two), and the key a put wrote.
struct Step {
    /// What kind of operation it is, as reported ("put", "enqueue", "receive+ack"...).
    kind: &'static str,
    requests: Vec<reqwest::RequestBuilder>,
    written: Option<String>,
    /// A compare-and-swap of the connection's own key.
    cas: bool,
}

/// Per-connection state some workloads need: the revision of its CAS key, its lease.
#[derive(Default)]
struct ConnectionState {
    cas_revision: Option<u64>,
    lease: Option<u64>,
    token: Option<u64>,
}

fn next_step(args: &BenchArgs, http: &reqwest::Client, url: &str, worker: u64, n: u64, value: &str, state: &ConnectionState) -> Step {
    let read_key = (worker * 7919 + n) % args.keys;
    let one = |kind, request| Step { kind, requests: vec![request], written: None, cas: false };
    let key = |n: u64| format!("{}/{worker}/{n}", args.key_prefix);
    let put =
        |key: String| Step { kind: "put", requests: vec![http.put(format!("{url}/v1/kv/{key}")).body(value.to_string())], written: Some(key), cas: false };
    let cas = || {
        let request = http.put(format!("{url}/v1/kv/bench-cas/{worker}")).body(value.to_string());
        let request = match state.cas_revision {
            Some(revision) => request.header("if-match", revision.to_string()),
            None => request,
        };
        Step { kind: "cas", requests: vec![request], written: None, cas: true }
    };
    match args.workload {
        BenchWorkload::Put => put(key(n)),
        BenchWorkload::Get => one("get", http.get(format!("{url}/v1/kv/bench-read/{read_key}"))),
        BenchWorkload::GetStale => one("get-stale", http.get(format!("{url}/v1/kv/bench-read/{read_key}?consistency=stale"))),
        BenchWorkload::Cas => cas(),
        BenchWorkload::Queue if n.is_multiple_of(2) => one("enqueue", http.post(format!("{url}/v1/queues/bench-{worker}/messages")).body(value.to_string())),
        BenchWorkload::Queue => one("receive+ack", http.post(format!("{url}/v1/queues/bench-{worker}/receive")).json(&json!({ "max": 1 }))),
        BenchWorkload::Lock => {
            let lease = state.lease.unwrap_or(0);
            one("acquire+release", http.post(format!("{url}/v1/locks/bench-{worker}/acquire")).json(&json!({ "lease": lease })))
        }
        BenchWorkload::RingLookup => one("lookup", http.get(format!("{url}/v1/rings/bench-ring/lookup?key=k{read_key}&replicas=2"))),
        BenchWorkload::Mixed => match n % 10 {
            0..=4 => one("get", http.get(format!("{url}/v1/kv/bench-read/{read_key}"))),
            5..=8 => put(key(n)),
            _ => cas(),
        },
    }
}

/// Sends one request; the answer's body on success, the error kind otherwise.
async fn send(request: reqwest::RequestBuilder) -> Result<Value, String> {
    match request.send().await {
        Ok(answer) if answer.status().is_success() => Ok(answer.json().await.unwrap_or(Value::Null)),
        Ok(answer) => {
            let status = answer.status().as_u16();
            Err(error_kind(Some(status), &answer.text().await.unwrap_or_default()))
        }
        Err(e) => Err(error_kind(
            None,
            if e.is_timeout() {
                "timeout"
            } else if e.is_connect() {
                "connect"
            } else {
                "transport"
            },
        )),
    }
}

async fn run_connection(shared: Arc<Shared>, http: reqwest::Client, url: String, args: Arc<BenchArgs>, worker: u64) {
    let value = "v".repeat(args.value_bytes);
    let mut state = ConnectionState::default();
    if args.workload == BenchWorkload::Lock {
        state.lease = send(http.post(format!("{url}/v1/leases")).json(&json!({ "ttl_ms": 600_000 }))).await.ok().and_then(|b| b["id"].as_u64());
    }
    let mut n = 0u64;
    while !shared.stop.load(Ordering::Relaxed) {
        if args.ops.is_some_and(|max| shared.done.fetch_add(1, Ordering::Relaxed) >= max) {
            break;
        }
        let step = next_step(&args, &http, &url, worker, n, &value, &state);
        n += 1;
        let started = Instant::now();
        let mut outcome = Ok(Value::Null);
        for request in step.requests {
            outcome = send(request).await;
            if outcome.is_err() {
                break;
            }
        }
        // The second half of a cycle.
        match (&outcome, args.workload) {
            (Ok(body), BenchWorkload::Queue) => {
                if let Some(receipt) = body["messages"][0]["receipt"].as_str() {
                    outcome = send(http.post(format!("{url}/v1/queues/bench-{worker}/ack")).json(&json!({ "receipt": receipt }))).await;
                }
            }
            (Ok(body), BenchWorkload::Lock) => {
                state.token = body["token"].as_u64();
                outcome = send(http.post(format!("{url}/v1/locks/bench-{worker}/release")).json(&json!({ "token": state.token }))).await;
            }
            (Ok(body), _) if step.cas => state.cas_revision = body["mod_revision"].as_u64().or(state.cas_revision),
            // A refused CAS: learn the current revision for the next one.
            (Err(kind), _) if step.cas && kind.starts_with("412") => {
                state.cas_revision = send(http.get(format!("{url}/v1/kv/bench-cas/{worker}"))).await.ok().and_then(|b| b["mod_revision"].as_u64());
            }
            _ => {}
        }
        let micros = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX);
        if args.ops.is_none() {
            shared.done.fetch_add(1, Ordering::Relaxed);
        }
        match outcome {
            Ok(_) => {
                let _ = shared.latency_us.lock().unwrap_or_else(|p| p.into_inner()).record(micros.max(1));
                let mut by_kind = shared.latency_us_by_kind.lock().unwrap_or_else(|p| p.into_inner());
                if let Some(histogram) = by_kind.get_mut(step.kind) {
                    let _ = histogram.record(micros.max(1));
                } else if let Ok(mut histogram) = latency_histogram() {
                    let _ = histogram.record(micros.max(1));
                    by_kind.insert(step.kind, histogram);
                }
                drop(by_kind);
                if let Some(key) = step.written {
                    let mut written = shared.written.lock().unwrap_or_else(|p| p.into_inner());
                    if written.len() < VERIFY_SAMPLE * 10 {
                        written.push(key);
                    }
                }
            }
            Err(kind) => *shared.errors.lock().unwrap_or_else(|p| p.into_inner()).entry(kind).or_default() += 1,
        }
    }
}

/// Reads back a sample of the written keys; how many were missing or wrong.
async fn verify(http: &reqwest::Client, url: &str, keys: &[String], value: &str) -> (usize, usize) {
    let step = (keys.len() / VERIFY_SAMPLE).max(1);
    let (mut checked, mut bad) = (0, 0);
    for key in keys.iter().step_by(step) {
        checked += 1;
        let body = match http.get(format!("{url}/v1/kv/{key}?raw=true")).send().await {
            Ok(answer) if answer.status().is_success() => answer.text().await.unwrap_or_default(),
            _ => String::new(),
        };
        bad += usize::from(body != value);
    }
    (checked, bad)
}

/// Latencies from 1 µs to 60 s, to 3 significant digits.
fn latency_histogram() -> Result<Histogram<u64>, hdrhistogram::CreationError> {
    Histogram::new_with_bounds(1, 60_000_000, 3)
}

/// Throughput and percentiles of one histogram, in ms, as JSON.
fn summary(histogram: &Histogram<u64>, elapsed_s: f64) -> Value {
    let ms = |q: f64| histogram.value_at_quantile(q) as f64 / 1000.0;
    json!({
        "ok": histogram.len(),
        "ops_per_s": histogram.len() as f64 / elapsed_s,
        "latency_ms": { "p50": ms(0.5), "p90": ms(0.9), "p99": ms(0.99), "p99.9": ms(0.999), "max": histogram.max() as f64 / 1000.0 },
    })
}

/// `summary` as a line of text.
fn summary_text(summary: &Value) -> String {
    let latency = &summary["latency_ms"];
    let ms = |q: &str| latency[q].as_f64().unwrap_or(0.0);
    format!(
        "{} ok = {:.0} ops/s; latency ms p50 {:.2} p90 {:.2} p99 {:.2} p99.9 {:.2} max {:.2}",
        summary["ok"],
        summary["ops_per_s"].as_f64().unwrap_or(0.0),
        ms("p50"),
        ms("p90"),
        ms("p99"),
        ms("p99.9"),
        ms("max")
    )
}

pub async fn run(args: BenchArgs) -> ExitCode {
    if cfg!(debug_assertions) {
        eprintln!(
            "warning: this concord is a debug build, several times slower than a release build, and so is a cluster it started \
             (`concord dev`); for figures worth keeping, build with `cargo build --release` and use target/release/concord"
        );
    }
    let endpoints = args.connection.urls();
    let mut headers = reqwest::header::HeaderMap::new();
    if let Some(token) = &args.connection.token {
        match reqwest::header::HeaderValue::from_str(&format!("Bearer {}", token.trim())) {
            Ok(value) => headers.insert(reqwest::header::AUTHORIZATION, value),
            Err(_) => {
                eprintln!("error: the token is not a valid header value");
                return ExitCode::from(1);
            }
        };
    }
    let mut builder = reqwest::Client::builder().default_headers(headers);
    if let Some(tls) = args.connection.tls() {
        builder = match tls.configure(builder) {
            Ok(builder) => builder,
            Err(e) => {
                eprintln!("error: cannot set up TLS: {e}");
                return ExitCode::from(1);
            }
        };
    }
    let http = match builder.pool_max_idle_per_host(args.connections as usize).tcp_nodelay(true).timeout(Duration::from_secs(10)).build() {
        Ok(http) => http,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(1);
        }
    };
    let Some(leader) = leader_url(&http, &endpoints).await else {
        eprintln!("error: no leader found at {}", endpoints.join(", "));
        return ExitCode::from(1);
    };
    if matches!(args.workload, BenchWorkload::Get | BenchWorkload::GetStale | BenchWorkload::Mixed) {
        eprintln!("writing {} keys to read...", args.keys);
        for i in 0..args.keys {
            let _ = http.put(format!("{leader}/v1/kv/bench-read/{i}")).body("v".repeat(args.value_bytes)).send().await;
        }
    }
    if args.workload == BenchWorkload::RingLookup {
        for m in 1..=5 {
            let _ = http.put(format!("{leader}/v1/rings/bench-ring/members/m{m}")).json(&json!({ "address": format!("10.0.0.{m}:80") })).send().await;
        }
    }
    let shared = Arc::new(Shared {
        latency_us: std::sync::Mutex::new(latency_histogram().unwrap_or_else(|_| Histogram::new(3).expect("a histogram"))),
        latency_us_by_kind: Default::default(),
        errors: Default::default(),
        done: AtomicU64::new(0),
        stop: AtomicBool::new(false),
        written: Default::default(),
    });
    let args = Arc::new(args);
    let started = Instant::now();
    let tasks: Vec<_> = (0..args.connections)
        .map(|worker| {
            let url = if args.spread { endpoints[(worker as usize) % endpoints.len()].clone() } else { leader.clone() };
            tokio::spawn(run_connection(shared.clone(), http.clone(), url, args.clone(), worker))
        })
        .collect();
    let deadline = started + Duration::from_secs(args.duration_s);
    while Instant::now() < deadline && !tasks.iter().all(|t| t.is_finished()) {
        tokio::time::sleep(Duration::from_millis(250)).await;
        let (done, elapsed) = (shared.done.load(Ordering::Relaxed), started.elapsed().as_secs_f64());
        eprint!("\r{elapsed:6.1} s  {done:>10} ops  {:>9.0} ops/s   ", done as f64 / elapsed.max(0.001));
    }
    shared.stop.store(true, Ordering::Relaxed);
    for task in tasks {
        let _ = task.await;
    }
    eprintln!();
    let elapsed = started.elapsed().as_secs_f64();
    let histogram = shared.latency_us.lock().unwrap_or_else(|p| p.into_inner()).clone();
    let by_kind = shared.latency_us_by_kind.lock().unwrap_or_else(|p| p.into_inner()).clone();
    let errors = shared.errors.lock().unwrap_or_else(|p| p.into_inner()).clone();
    let written = shared.written.lock().unwrap_or_else(|p| p.into_inner()).clone();
    // Only puts are read back: other workloads write nothing a read can check.
    let verified = if matches!(args.workload, BenchWorkload::Put | BenchWorkload::Mixed) {
        Some(verify(&http, &leader, &written, &"v".repeat(args.value_bytes)).await)
    } else {
        None
    };
    let workload = args.workload.to_possible_value().map(|v| v.get_name().to_string()).unwrap_or_default();
    let all = summary(&histogram, elapsed);
    let kinds: serde_json::Map<String, Value> = by_kind.iter().map(|(kind, histogram)| (kind.to_string(), summary(histogram, elapsed))).collect();
    let mut result = json!({
        "workload": workload,
        "connections": args.connections,
        "seconds": elapsed,
        "by_operation": kinds,
        "errors": errors,
        "verified": verified.map(|(checked, bad)| json!({ "checked": checked, "missing_or_wrong": bad })),
    });
    if let (Some(result), Some(all)) = (result.as_object_mut(), all.as_object()) {
        result.extend(all.clone());
    }
    if args.connection.json {
        println!("{result}");
    } else {
        println!("{workload} x{}, {elapsed:.1} s: {}", args.connections, summary_text(&all));
        if kinds.len() > 1 {
            for (kind, summary) in &kinds {
                println!("  {kind}: {}", summary_text(summary));
            }
        }
        println!("errors: {}", if errors.is_empty() { "none".to_string() } else { format!("{errors:?}") });
        if let Some((checked, bad)) = verified {
            println!("read back {checked} of the written keys: {bad} missing or wrong");
        }
    }
    let bad = verified.map_or(0, |(_, bad)| bad);
    if bad > 0 { ExitCode::from(1) } else { ExitCode::SUCCESS }
}
