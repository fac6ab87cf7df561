//! Command-line definitions (clap) and dispatch. One file per group of subcommands:
//! `serve` (one member), `dev` (a local cluster), `client` (kv, lease, lock, ring and
//! cluster calls), `auth` (tokens), `queue` (queue calls), `stream` (topics and watches), `bench` (load generator).

mod auth;
mod bench;
mod client;
mod dev;
mod queue;
mod stream;
mod serve;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser, Debug)]
#[command(
    name = "concord",
    version,
    about = "Concord: a Raft-replicated coordination store (linearizable, durable key-value over HTTP)",
    long_about = "Concord keeps a key-value map, leases, fencing-token locks and consistent-hash \
                  rings, durable work queues and publish/subscribe topics in one Raft-replicated state machine. Every write is fsynced on a quorum before it is \
                  acknowledged; every read is linearizable unless you ask for a stale one.\n\n\
                  Start a local 3-node cluster:   concord dev\n\
                  Write and read a key:           concord kv put greeting hello && concord kv get greeting"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run one cluster member.
    Serve(Box<serve::ServeArgs>),
    /// Run a whole local cluster (3 or 5 members) in one command, for trying Concord out.
    Dev(dev::DevArgs),
    /// Read and write keys.
    Kv(client::KvArgs),
    /// Grant, keep alive, revoke and inspect leases.
    Lease(client::LeaseArgs),
    /// Acquire and release locks with fencing tokens.
    Lock(client::LockArgs),
    /// Durable work queues: send, receive, ack, nack, extend, stats.
    Queue(queue::QueueArgs),
    /// Publish/subscribe topics: publish, read from an offset, subscribe.
    Topic(stream::TopicArgs),
    /// Follow key changes under a prefix (one line per change).
    Watch(stream::WatchArgs),
    /// Consistent-hash rings: join, leave, look up owners.
    Ring(client::RingArgs),
    /// Inspect and change cluster membership.
    Cluster(client::ClusterArgs),
    /// Client tokens: create, list, revoke; require them or not.
    Auth(auth::AuthArgs),
    /// Measure a running cluster: throughput, latency percentiles, errors.
    Bench(bench::BenchArgs),
}

pub async fn run(cli: Cli) -> ExitCode {
    match cli.command {
        Command::Serve(args) => serve::run(*args).await,
        Command::Dev(args) => dev::run(args).await,
        Command::Kv(args) => client::run_kv(args).await,
        Command::Lease(args) => client::run_lease(args).await,
        Command::Lock(args) => client::run_lock(args).await,
        Command::Queue(args) => queue::run(args).await,
        Command::Topic(args) => stream::run_topic(args).await,
        Command::Watch(args) => stream::run_watch(args).await,
        Command::Ring(args) => client::run_ring(args).await,
        Command::Cluster(args) => client::run_cluster(args).await,
        Command::Auth(args) => auth::run(args).await,
        Command::Bench(args) => bench::run(args).await,
    }
}

/// Logs to stderr; `RUST_LOG` overrides the default level.
pub fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,openraft=warn"));
    let _ = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).try_init();
}
