//! `concord kv ...` and `concord cluster ...`: calls through `concord::client`.

use std::io::Read;
use std::process::ExitCode;

use clap::{Args, Subcommand};
use concord::client::{Client, ClientError, KeyValue, LastContact, Precondition, RingJoin, WriteOptions};
use serde_json::json;

use super::out;

/// Where the cluster is and how to print.
#[derive(Args, Debug)]
pub struct Connection {
    /// Comma-separated node addresses (host:port or URLs); any node will do.
    #[arg(long, env = "CONCORD_ENDPOINTS", default_value = "127.0.0.1:7001,127.0.0.1:7002,127.0.0.1:7003", global = true)]
    pub endpoints: String,
    /// Print JSON instead of text.
    #[arg(long, global = true)]
    pub json: bool,
    /// Token (`<id>.<secret>`) to send, when the cluster requires tokens.
    #[arg(long, env = "CONCORD_TOKEN", hide_env_values = true, global = true)]
    pub token: Option<String>,
    /// Speak HTTPS, trusting only this CA (PEM); endpoints without a scheme get https://.
    #[arg(long, env = "CONCORD_CA_FILE", global = true)]
    pub ca_file: Option<std::path::PathBuf>,
}

impl Connection {
    /// The endpoints as URLs: `https://` for bare addresses when a CA is given.
    pub(super) fn urls(&self) -> Vec<String> {
        let scheme = if self.ca_file.is_some() { "https" } else { "http" };
        let endpoints = self.endpoints.split(',').map(str::trim).filter(|e| !e.is_empty());
        endpoints.map(|e| if e.contains("://") { e.to_string() } else { format!("{scheme}://{e}") }).collect()
    }

    /// The CA to trust, if one was given (exits with a message if it cannot be read).
    pub(super) fn tls(&self) -> Option<concord::tls::ClientTls> {
        let file = self.ca_file.as_ref()?;
        match concord::tls::ClientTls::read_ca(file) {
            Ok(tls) => Some(tls),
            Err(e) => {
                eprintln!("error: {e}");
                std::process::exit(super::EXIT_USAGE.into());
            }
        }
    }

    pub(super) fn client(&self) -> Client {
        let mut client = Client::new(self.urls()).with_token(self.token.clone());
        // A person is waiting: when no endpoint accepts a connection twice over, say
        // so at once rather than after the 15 s call deadline.
        client.unreachable_rounds_max = Some(2);
        match self.tls() {
            None => client,
            Some(tls) => client.with_tls(&tls).unwrap_or_else(|e| {
                eprintln!("error: {e}");
                std::process::exit(super::EXIT_USAGE.into());
            }),
        }
    }
}

#[derive(Args, Debug)]
pub struct KvArgs {
    #[command(flatten)]
    pub connection: Connection,
    #[command(subcommand)]
    pub command: KvCommand,
}

#[derive(Subcommand, Debug)]
pub enum KvCommand {
    /// Write a key. The value is the argument, or standard input when omitted.
    Put {
        /// The key (any printable text; `/` is an ordinary character).
        key: String,
        /// The value (default: read from standard input).
        value: Option<String>,
        /// Only if the key's mod_revision is REV (compare-and-swap).
        #[arg(long, value_name = "REV", conflicts_with = "if_absent")]
        if_match: Option<u64>,
        /// Only if the key does not exist yet.
        #[arg(long)]
        if_absent: bool,
        /// Make retries of this write apply once (a fresh one is generated when omitted).
        #[arg(long)]
        idempotency_key: Option<String>,
        /// Attach the key to this lease: it is deleted when the lease ends.
        #[arg(long, value_name = "LEASE_ID")]
        lease: Option<u64>,
        /// Delete the key MS after this write, on the cluster's replicated clock.
        #[arg(long, value_name = "MS", value_parser = clap::value_parser!(u64).range(1..))]
        ttl_ms: Option<u64>,
        /// Write only while TOKEN still holds LOCK (a fenced write).
        #[arg(long, value_name = "LOCK:TOKEN", value_parser = parse_fence)]
        fence: Option<(String, u64)>,
    },
    /// Read a key and print its value (metadata too with --json).
    Get {
        /// The key.
        key: String,
        /// Answer from the node reached, without confirming leadership.
        #[arg(long)]
        stale: bool,
    },
    /// Delete a key, or with --prefix every key that starts with KEY.
    Del {
        /// The key (with --prefix: the prefix; "" for every key).
        key: String,
        /// Delete every key starting with KEY (in entries of up to 1,000 keys; not atomic).
        #[arg(long, conflicts_with_all = ["if_match", "fence"])]
        prefix: bool,
        /// Only if the key's mod_revision is REV.
        #[arg(long, value_name = "REV")]
        if_match: Option<u64>,
        /// Delete only while TOKEN still holds LOCK (a fenced write).
        #[arg(long, value_name = "LOCK:TOKEN", value_parser = parse_fence)]
        fence: Option<(String, u64)>,
    },
    /// List keys with a prefix, in order.
    List {
        /// List keys starting with this (default: every key).
        #[arg(default_value = "")]
        prefix: String,
        /// Start after this key (for paging).
        #[arg(long)]
        after: Option<String>,
        /// At most this many keys (the cluster's default page is 100).
        #[arg(long)]
        limit: Option<usize>,
    },
}

#[derive(Args, Debug)]
pub struct LeaseArgs {
    #[command(flatten)]
    pub connection: Connection,
    #[command(subcommand)]
    pub command: LeaseCommand,
}

#[derive(Subcommand, Debug)]
pub enum LeaseCommand {
    /// Grant a lease and print its id.
    Grant {
        /// Time to live, in ms, restarted by every keep-alive.
        ttl_ms: u64,
    },
    /// Restart a lease's TTL; with --every, keep doing so until interrupted.
    Keepalive {
        /// The lease's id, as `lease grant` printed it.
        id: u64,
        /// Repeat every MS milliseconds (use about a third of the TTL).
        #[arg(long, value_name = "MS")]
        every: Option<u64>,
    },
    /// End a lease now, deleting the keys attached to it.
    Revoke {
        /// The lease's id.
        id: u64,
    },
    /// Show a lease: remaining time and attached keys.
    Get {
        /// The lease's id.
        id: u64,
    },
}

pub async fn run_lease(args: LeaseArgs) -> ExitCode {
    let client = args.connection.client();
    let json = args.connection.json;
    match args.command {
        LeaseCommand::Grant { ttl_ms } => match client.lease_grant(ttl_ms).await {
            Err(e) => fail(e),
            Ok(lease) if json => {
                print_json(&json!({ "id": lease.id, "ttl_ms": lease.ttl_ms, "expires_at_ms": lease.expires_at_ms }));
                ExitCode::SUCCESS
            }
            Ok(lease) => {
                out!("{}", lease.id);
                ExitCode::SUCCESS
            }
        },
        LeaseCommand::Keepalive { id, every } => loop {
            match client.lease_keep_alive(id).await {
                Err(e) => return fail(e),
                Ok(lease) if json => print_json(&json!({ "id": lease.id, "ttl_ms": lease.ttl_ms, "expires_at_ms": lease.expires_at_ms })),
                Ok(lease) => out!("OK lease {} renewed for {} ms", lease.id, lease.ttl_ms),
            }
            let Some(every) = every else {
                return ExitCode::SUCCESS;
            };
            tokio::select! {
                _ = tokio::signal::ctrl_c() => return ExitCode::SUCCESS,
                _ = tokio::time::sleep(std::time::Duration::from_millis(every.max(1))) => {}
            }
        },
        LeaseCommand::Revoke { id } => match client.lease_revoke(id).await {
            Err(e) => fail(e),
            Ok(deleted) if json => {
                print_json(&json!({ "id": id, "revoked": true, "deleted_keys": deleted }));
                ExitCode::SUCCESS
            }
            Ok(deleted) => {
                out!("OK revoked lease {id}; {deleted} attached keys deleted");
                ExitCode::SUCCESS
            }
        },
        LeaseCommand::Get { id } => match client.lease_get(id).await {
            Err(e) => fail(e),
            Ok(None) => not_found("lease_not_found", format!("lease {id} does not exist (never granted, expired or revoked)")),
            Ok(Some(lease)) if json => {
                let ring_members: Vec<_> = lease.ring_members.iter().map(|m| json!({ "ring": m.ring, "member": m.member })).collect();
                print_json(&json!({ "id": lease.id, "ttl_ms": lease.ttl_ms, "remaining_ms": lease.remaining_ms, "key_count": lease.key_count,
                    "keys": lease.keys, "lock_count": lease.lock_count, "locks": lease.locks, "ring_members": ring_members }));
                ExitCode::SUCCESS
            }
            Ok(Some(lease)) => {
                out!("lease {}: ttl {} ms, {} ms left, {} keys", lease.id, lease.ttl_ms, lease.remaining_ms, lease.key_count);
                for key in &lease.keys {
                    out!("  key  {key}");
                }
                for lock in &lease.locks {
                    out!("  lock {lock}");
                }
                for m in &lease.ring_members {
                    out!("  ring {} member {}", m.ring, m.member);
                }
                ExitCode::SUCCESS
            }
        },
    }
}

#[derive(Args, Debug)]
pub struct LockArgs {
    #[command(flatten)]
    pub connection: Connection,
    #[command(subcommand)]
    pub command: LockCommand,
}

#[derive(Subcommand, Debug)]
pub enum LockCommand {
    /// Take a lock for a lease and print its fencing token.
    Acquire {
        /// The lock's name (any printable text, `/` included).
        name: String,
        /// The lease that will hold it: the lock is let go when the lease ends.
        #[arg(long)]
        lease: u64,
        /// Wait in line up to MS if the lock is held (default: answer at once).
        #[arg(long, value_name = "MS", default_value_t = 0)]
        wait_ms: u64,
    },
    /// Let go of a lock held with TOKEN.
    Release {
        /// The lock's name.
        name: String,
        /// The fencing token `lock acquire` printed.
        // Not `token`: that is the global `--token` (the client token) of every command.
        #[arg(value_name = "TOKEN")]
        fencing_token: u64,
    },
    /// Show who holds a lock.
    Get {
        /// The lock's name.
        name: String,
    },
    /// Exit 0 if TOKEN holds the lock now, 1 if not.
    Check {
        /// The lock's name.
        name: String,
        /// The fencing token to check.
        #[arg(value_name = "TOKEN")]
        fencing_token: u64,
    },
}

pub async fn run_lock(args: LockArgs) -> ExitCode {
    let client = args.connection.client();
    let json = args.connection.json;
    match args.command {
        LockCommand::Acquire { name, lease, wait_ms } => match client.lock_acquire(&name, lease, wait_ms).await {
            Err(e) => fail(e),
            Ok(grant) if json => {
                print_json(&json!({ "name": grant.name, "token": grant.token, "lease": grant.lease }));
                ExitCode::SUCCESS
            }
            Ok(grant) => {
                out!("{}", grant.token);
                ExitCode::SUCCESS
            }
        },
        LockCommand::Release { name, fencing_token: token } => match client.lock_release(&name, token).await {
            Err(e) => fail(e),
            Ok(()) => {
                out!("OK released {name:?}");
                ExitCode::SUCCESS
            }
        },
        LockCommand::Get { name } => match client.lock_holder(&name).await {
            Err(e) => fail(e),
            Ok(holder) if json => {
                print_json(&json!({ "name": name, "holder": holder.map(|h| json!({ "token": h.token, "lease": h.lease })) }));
                ExitCode::SUCCESS
            }
            Ok(Some(holder)) => {
                out!("{name:?} is held by lease {} with token {}", holder.lease, holder.token);
                ExitCode::SUCCESS
            }
            Ok(None) => {
                out!("{name:?} is free");
                ExitCode::SUCCESS
            }
        },
        LockCommand::Check { name, fencing_token: token } => match client.lock_check(&name, token).await {
            Err(e) => fail(e),
            Ok(true) => {
                out!("token {token} holds {name:?}");
                ExitCode::SUCCESS
            }
            Ok(false) => {
                out!("token {token} does not hold {name:?}");
                ExitCode::from(1)
            }
        },
    }
}

#[derive(Args, Debug)]
pub struct RingArgs {
    #[command(flatten)]
    pub connection: Connection,
    #[command(subcommand)]
    pub command: RingCommand,
}

#[derive(Subcommand, Debug)]
pub enum RingCommand {
    /// Join (or update) a member; with --lease it leaves when the lease ends.
    Join {
        /// The ring's name (created on first join).
        ring: String,
        /// The member's name, unique in the ring.
        member: String,
        /// Where clients reach the member (host:port, or any text up to 256 bytes).
        #[arg(long)]
        address: String,
        /// Its share of the keys relative to the others (1 to 8).
        #[arg(long, default_value_t = 1)]
        weight: u32,
        /// Free-form text kept with the member (a join replaces it).
        #[arg(long, default_value = "")]
        metadata: String,
        /// Attach the member to this lease: it leaves the ring when the lease ends.
        #[arg(long)]
        lease: Option<u64>,
    },
    /// Remove a member.
    Leave {
        /// The ring's name.
        ring: String,
        /// The member's name.
        member: String,
    },
    /// Show a ring's epoch and members.
    Get {
        /// The ring's name.
        ring: String,
    },
    /// Print the owners of a key.
    Lookup {
        /// The ring's name.
        ring: String,
        /// The key to place (any text).
        key: String,
        /// How many distinct owners, first owner first (1 to 16).
        #[arg(long, default_value_t = 1)]
        replicas: usize,
    },
}

pub async fn run_ring(args: RingArgs) -> ExitCode {
    let client = args.connection.client();
    let json = args.connection.json;
    match args.command {
        RingCommand::Join { ring, member, address, weight, metadata, lease } => {
            match client.ring_join(&ring, &member, &RingJoin { address: &address, weight, metadata: &metadata, lease }).await {
                Err(e) => fail(e),
                Ok(epoch) => {
                    out!("OK {member:?} is in ring {ring:?} at epoch {epoch}");
                    ExitCode::SUCCESS
                }
            }
        }
        RingCommand::Leave { ring, member } => match client.ring_leave(&ring, &member).await {
            Err(e) => fail(e),
            Ok(epoch) => {
                out!("OK {member:?} left ring {ring:?} at epoch {epoch}");
                ExitCode::SUCCESS
            }
        },
        RingCommand::Get { ring } => match client.ring(&ring).await {
            Err(e) => fail(e),
            Ok(found) if json => {
                let members: Vec<_> = found
                    .members
                    .iter()
                    .map(|m| json!({ "name": m.name, "address": m.address, "weight": m.weight, "metadata": m.metadata, "lease": m.lease }))
                    .collect();
                print_json(&json!({ "ring": found.ring, "epoch": found.epoch, "members": members }));
                ExitCode::SUCCESS
            }
            Ok(found) => {
                out!("ring {:?} at epoch {}", found.ring, found.epoch);
                for m in &found.members {
                    out!("  {:<24} {:<24} weight {}", m.name, m.address, m.weight);
                }
                ExitCode::SUCCESS
            }
        },
        RingCommand::Lookup { ring, key, replicas } => match client.ring_lookup(&ring, &key, replicas).await {
            Err(e) => fail(e),
            Ok(found) if json => {
                let owners: Vec<_> = found.owners.iter().map(|m| json!({ "name": m.name, "address": m.address })).collect();
                print_json(&json!({ "ring": found.ring, "key": found.key, "epoch": found.epoch, "owners": owners }));
                ExitCode::SUCCESS
            }
            Ok(found) => {
                for m in &found.owners {
                    out!("{} {}", m.name, m.address);
                }
                ExitCode::SUCCESS
            }
        },
    }
}

#[derive(Args, Debug)]
pub struct ClusterArgs {
    #[command(flatten)]
    pub connection: Connection,
    #[command(subcommand)]
    pub command: ClusterCommand,
}

#[derive(Subcommand, Debug)]
pub enum ClusterCommand {
    /// Show members, roles, leader, term and progress.
    Status {
        /// Ask the node reached instead of the leader.
        #[arg(long)]
        stale: bool,
    },
    /// Add a member (joins as a learner, catches up, becomes a voter).
    Add {
        /// The new member's id: a positive number never used in this cluster.
        id: u64,
        /// The host:port it listens on (its `--listen`, or `--advertise`).
        addr: String,
    },
    /// Remove a member.
    Remove {
        /// The member's id.
        id: u64,
    },
}

fn parse_fence(text: &str) -> Result<(String, u64), String> {
    let (lock, token) = text.rsplit_once(':').ok_or("a fence is LOCK:TOKEN")?;
    let token = token.parse().map_err(|_| format!("token {token:?} is not a number"))?;
    Ok((lock.to_string(), token))
}

/// Prints `error: <status> <code>: <message>` (or why no node answered) and picks the
/// exit code: `EXIT_REFUSED` for a refusal (a 4xx: nothing changed), else
/// `EXIT_UNAVAILABLE` (unreachable, 503, or an outcome that is not known).
pub(super) fn fail(e: ClientError) -> ExitCode {
    eprintln!("error: {e}");
    match e.status() {
        Some(status) if (400..500).contains(&status) => ExitCode::from(super::EXIT_REFUSED),
        _ => ExitCode::from(super::EXIT_UNAVAILABLE),
    }
}

/// What is asked for does not exist: the same `error: 404 <code>: <message>` line as
/// a refusal, for the reads whose client call answers `None` instead of an error.
pub(super) fn not_found(code: &str, message: String) -> ExitCode {
    fail(ClientError::Api { status: 404, code: code.to_string(), message, details: None })
}

pub(super) fn print_json(value: &impl serde::Serialize) {
    out!("{}", serde_json::to_string_pretty(value).unwrap_or_else(|e| format!("(cannot print the answer: {e})")));
}

/// The same shape as the API's: binary values are base64 with `"encoding": "base64"`.
fn key_json(kv: &KeyValue) -> serde_json::Value {
    let (value, encoding) = concord::api::kv::value_json(&kv.value);
    json!({
        "key": kv.key,
        "value": value,
        "encoding": encoding,
        "create_revision": kv.create_revision,
        "mod_revision": kv.mod_revision,
        "version": kv.version,
        "lease": kv.lease,
    })
}

pub async fn run_kv(args: KvArgs) -> ExitCode {
    let client = args.connection.client();
    let json = args.connection.json;
    match args.command {
        KvCommand::Put { key, value, if_match, if_absent, idempotency_key, lease, ttl_ms, fence } => {
            let value = match value {
                Some(value) => value.into_bytes(),
                None => {
                    if std::io::IsTerminal::is_terminal(&std::io::stdin()) {
                        eprintln!("(no value given: reading it from standard input; end it with Ctrl-D)");
                    }
                    let mut buffer = Vec::new();
                    if let Err(e) = std::io::stdin().read_to_end(&mut buffer) {
                        eprintln!("error: cannot read the value from standard input: {e}");
                        return ExitCode::from(super::EXIT_USAGE);
                    }
                    buffer
                }
            };
            let precondition = match (if_match, if_absent) {
                (Some(revision), _) => Precondition::ModRevision(revision),
                (None, true) => Precondition::Absent,
                (None, false) => Precondition::None,
            };
            match client.put_with(&key, value, &WriteOptions { precondition, idempotency_key, lease, ttl_ms, fence }).await {
                Err(e) => fail(e),
                Ok(put) if json => {
                    print_json(&json!({ "key": put.value.key, "revision": put.value.revision, "mod_revision": put.value.mod_revision,
                        "version": put.value.version, "created": put.value.created, "node": put.node, "replayed": put.replayed }));
                    ExitCode::SUCCESS
                }
                Ok(put) => {
                    let what = if put.value.created { "created" } else { "updated" };
                    out!("OK {what} {:?} at revision {} (version {})", put.value.key, put.value.mod_revision, put.value.version);
                    ExitCode::SUCCESS
                }
            }
        }
        KvCommand::Get { key, stale } => match client.get_with(&key, stale).await {
            Err(e) => fail(e),
            Ok(found) => match found.value {
                None => not_found("key_not_found", format!("key {key:?} does not exist")),
                Some(kv) if json => {
                    print_json(&key_json(&kv));
                    ExitCode::SUCCESS
                }
                Some(kv) => {
                    super::write_bytes(&kv.value);
                    if !kv.value.ends_with(b"\n") {
                        super::write_bytes(b"\n");
                    }
                    ExitCode::SUCCESS
                }
            },
        },
        KvCommand::Del { key, prefix: true, .. } => match client.delete_prefix(&key).await {
            Err(e) => fail(e),
            Ok(gone) if json => {
                print_json(&json!({ "prefix": key, "deleted": gone.deleted, "revision": gone.revision, "more": gone.more }));
                ExitCode::SUCCESS
            }
            Ok(gone) => {
                out!("OK deleted {} keys under {key:?}; revision {}", gone.deleted, gone.revision);
                if gone.more {
                    eprintln!("(more: keys were written under {key:?} as fast as they were deleted; repeat to delete the rest)");
                }
                ExitCode::SUCCESS
            }
        },
        KvCommand::Del { key, if_match, fence, .. } => {
            let precondition = if_match.map_or(Precondition::None, Precondition::ModRevision);
            match client.delete_with(&key, &WriteOptions { precondition, fence, ..Default::default() }).await {
                Err(e) => fail(e),
                Ok(deleted) if json => {
                    print_json(&json!({ "key": key, "deleted": true, "revision": deleted.value }));
                    ExitCode::SUCCESS
                }
                Ok(deleted) => {
                    out!("OK deleted {key:?} at revision {}", deleted.value);
                    ExitCode::SUCCESS
                }
            }
        }
        KvCommand::List { prefix, after, limit } => match client.list(&prefix, after.as_deref(), limit).await {
            Err(e) => fail(e),
            Ok(page) if json => {
                let items: Vec<_> = page.items.iter().map(key_json).collect();
                print_json(&json!({ "items": items, "more": page.more, "next_after": page.next_after, "revision": page.revision }));
                ExitCode::SUCCESS
            }
            Ok(page) => {
                for kv in &page.items {
                    out!("{} = {}", kv.key, String::from_utf8_lossy(&kv.value));
                }
                if let Some(next) = page.next_after.filter(|_| page.more) {
                    eprintln!("(more: --after {next:?})");
                }
                ExitCode::SUCCESS
            }
        },
    }
}

pub async fn run_cluster(args: ClusterArgs) -> ExitCode {
    let client = args.connection.client();
    let json = args.connection.json;
    let result = match args.command {
        ClusterCommand::Status { stale } => client.cluster_status(stale).await.map(|served| served.value),
        ClusterCommand::Add { id, addr } => return answer(client.add_member(id, &addr).await),
        ClusterCommand::Remove { id } => return answer(client.remove_member(id).await),
    };
    match result {
        Err(e) if e.status() == Some(503) => {
            let code = fail(e);
            eprintln!("(with no leader, `concord cluster status --stale` shows what the node asked knows)");
            code
        }
        Err(e) => fail(e),
        Ok(status) if json => {
            print_json(&status);
            ExitCode::SUCCESS
        }
        Ok(status) => {
            let number = |value: Option<u64>| value.map_or("-".to_string(), |n| n.to_string());
            let leader = status.leader.map_or("none (an election is under way, or no quorum)".to_string(), |id| format!("node {id}"));
            out!("leader {leader}  term {}  commit {}  applied {}", status.term, number(status.commit_index), number(status.applied_index));
            for member in &status.members {
                // What the answering node's last Raft call to the member came to.
                let contact = match &member.last_contact {
                    Some(LastContact { ok: false, answered, error: Some(error), ms_ago }) => {
                        let age = if *ms_ago >= 1000 { format!(" ({} s ago)", ms_ago / 1000) } else { String::new() };
                        let what = if *answered { "REFUSING RAFT CALLS" } else { "UNREACHABLE" };
                        format!("  {what}: {error}{age}")
                    }
                    _ => String::new(),
                };
                out!("  node {:<3} {:<22} {:<9} matched {}{contact}", member.id, member.addr, member.role, number(member.matched_index));
            }
            ExitCode::SUCCESS
        }
    }
}

/// Prints an answer as JSON, or why the call failed.
pub(super) fn answer<T: serde::Serialize>(result: Result<T, ClientError>) -> ExitCode {
    match result {
        Ok(answer) => {
            print_json(&answer);
            ExitCode::SUCCESS
        }
        Err(e) => fail(e),
    }
}
