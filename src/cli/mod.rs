//! Command-line definitions (clap) and dispatch. One file per group of subcommands:
//! `serve` (one member), `dev` (a local cluster), `client` (kv, lease, lock, ring and
//! cluster calls), `auth` (tokens), `queue` (queue calls), `stream` (topics and watches), `bench` (load generator).

mod auth;
mod bench;
mod client;
mod dev;
mod dev_control;
mod queue;
mod serve;
mod stream;
mod txn;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Exit status of a client command when the cluster refused the request or what it
/// names does not exist (a 4xx: nothing changed), and of `lock check` when the token
/// does not hold the lock. 0 is success.
pub const EXIT_REFUSED: u8 = 1;
/// Bad usage: arguments (clap exits with 2 too), an unreadable CA file or stdin.
pub const EXIT_USAGE: u8 = 2;
/// No node could be reached, the cluster was unavailable (503), or the outcome of a
/// write is not known (504, a lost answer): retrying with the same idempotency key
/// is safe.
pub const EXIT_UNAVAILABLE: u8 = 3;

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
    /// Run one transaction (JSON from a file or stdin): conditions, then operations on
    /// keys, queues, topics, locks and leases, all or nothing.
    Txn(txn::TxnArgs),
    /// Inspect and change cluster membership.
    Cluster(client::ClusterArgs),
    /// Client tokens: create, list, revoke; require them or not.
    Auth(auth::AuthArgs),
    /// Measure a running cluster: throughput, latency percentiles, errors.
    Bench(bench::BenchArgs),
}

/// Exit status of a client command whose reader went away (`concord watch | head -1`):
/// the status a shell shows for a process that SIGPIPE ended (128 + 13), as `cat`
/// would end.
pub const EXIT_CLOSED_PIPE: i32 = 141;

/// `println!` for what a client command prints: when the reader has gone it ends the
/// command there, quietly, with `EXIT_CLOSED_PIPE`, where `println!` would panic.
/// SIGPIPE itself stays ignored (Rust's default): the HTTP client writes sockets
/// with `writev`, which would raise it when a node resets a connection, and the
/// command must then fail over, not die.
macro_rules! out {
    ($($arg:tt)*) => {
        $crate::cli::write_out(format_args!($($arg)*))
    };
}
pub(crate) use out;

/// The one place client commands write standard output; see `out!`.
pub fn write_out(args: std::fmt::Arguments<'_>) {
    write_bytes(format!("{args}\n").as_bytes());
}

/// Writes `bytes` to standard output, ending the command quietly if the reader has gone.
pub fn write_bytes(bytes: &[u8]) {
    use std::io::Write;
    let mut stdout = std::io::stdout().lock();
    if stdout.write_all(bytes).and_then(|()| stdout.flush()).is_err() {
        std::process::exit(EXIT_CLOSED_PIPE);
    }
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
        Command::Txn(args) => txn::run(args).await,
        Command::Cluster(args) => client::run_cluster(args).await,
        Command::Auth(args) => auth::run(args).await,
        Command::Bench(args) => bench::run(args).await,
    }
}

/// Logs to stderr; `RUST_LOG` overrides the default level. Colour only on a terminal:
/// a node of `concord dev` logs to a file, where escape codes are noise.
pub fn init_logging() {
    use std::io::IsTerminal;
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,openraft=warn"));
    let ansi = std::io::stderr().is_terminal();
    let _ = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).with_ansi(ansi).try_init();
}

#[cfg(test)]
mod tests {
    use clap::{CommandFactory, Parser};

    use super::Cli;

    /// clap's own consistency check, and one it does not make: an argument named
    /// like a global one inherited from above (the positional `<TOKEN>` of `lock
    /// release` beside the global `--token`) panics when its value is read, in a
    /// user's shell. Here it fails at `cargo test` instead.
    #[test]
    fn the_command_line_definition_is_consistent() {
        fn clashes(command: &clap::Command, inherited: &[String], path: &str, found: &mut Vec<String>) {
            let mut globals = inherited.to_vec();
            for arg in command.get_arguments() {
                let id = arg.get_id().to_string();
                if arg.is_global_set() {
                    globals.push(id);
                } else if inherited.contains(&id) {
                    found.push(format!("{path}: {id}"));
                }
            }
            for sub in command.get_subcommands() {
                clashes(sub, &globals, &format!("{path} {}", sub.get_name()), found);
            }
        }
        let command = Cli::command();
        command.clone().debug_assert();
        let mut found = Vec::new();
        clashes(&command, &[], "concord", &mut found);
        assert!(found.is_empty(), "arguments named like an inherited global one: {found:?}");
    }

    #[test]
    fn lock_tokens_parse_beside_the_client_token() {
        for line in ["concord lock release jobs/leader 42 --token 1.s", "concord lock check jobs/leader 42"] {
            let parsed = Cli::try_parse_from(line.split(' ')).unwrap_or_else(|e| panic!("{line}: {e}"));
            assert!(format!("{parsed:?}").contains("fencing_token: 42"), "{parsed:?}");
        }
    }

    /// Every argument of every subcommand says what it is in `--help`.
    #[test]
    fn every_argument_has_help_text() {
        fn undocumented(command: &clap::Command, path: &str, found: &mut Vec<String>) {
            for arg in command.get_arguments() {
                let id = arg.get_id().as_str();
                if id != "help" && id != "version" && arg.get_help().is_none() && arg.get_long_help().is_none() {
                    found.push(format!("{path} {id}"));
                }
            }
            for sub in command.get_subcommands() {
                undocumented(sub, &format!("{path} {}", sub.get_name()), found);
            }
        }
        let mut found = Vec::new();
        undocumented(&Cli::command(), "concord", &mut found);
        assert!(found.is_empty(), "arguments without help text: {found:#?}");
    }
}
