//! The Redis door: Redis's protocol (RESP2 and RESP3) on its own listener
//! (`concord serve --redis-listen ADDR`), so programs written against Redis (redis-py,
//! redis-cli) talk to a Concord cluster unchanged. `docs/redis.md` lists what it
//! speaks and how it maps onto Concord.
//!
//! It is a thin adapter over the typed core (`service::Core`), as the HTTP API is:
//! every command becomes core commands and linearizable reads, so any node serves any
//! command (a follower sends writes to the leader at the command level) and a string
//! set here is the key `/v1/kv/{key}` shows. Tokens apply as everywhere: while the
//! cluster requires them, a connection must `AUTH <token>` (or `HELLO 3 AUTH user
//! <token>`), and each command runs with that token's decision (`authorize`), checked
//! on the typed command like the HTTP API's.
//!
//! Files: `frame` reads commands off the stream, `reply` writes answers in either
//! protocol, `connection` runs one client's session, `commands` is the table of
//! commands and their dispatch, `keyspace` runs commands on keys as atomic steps (`key_locks` lines up this
//! node's writers of a key),
//! `strings`, `expiry`, `fencing`, `lists`, `keys` (with `glob`) and `server_commands` implement the commands, `transaction` is
//! `MULTI`/`EXEC`/`WATCH`, `pubsub` is publish/subscribe, `scripts` is `EVAL`, and `errors` says Concord's failures in Redis's error
//! classes.

mod commands;
mod connection;
mod errors;
mod expiry;
mod fencing;
mod frame;
mod glob;
mod key_locks;
mod keys;
mod keyspace;
mod lists;
mod pubsub;
mod reply;
mod scripts;
mod server_commands;
mod strings;
mod transaction;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};
use tokio_rustls::TlsAcceptor;

use crate::config::Limits;
use crate::raft::{NodeId, Raft};
use crate::service::Core;
use crate::state::StateReader;
use crate::state::command::{Command, Outcome, Request};
pub use frame::FrameLimits;

/// Pause after a failed accept (out of file descriptors, say) before the next one.
const ACCEPT_RETRY_DELAY: Duration = Duration::from_millis(50);

/// The bounds of the Redis door, beyond those of the core's limits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RespLimits {
    pub frame: FrameLimits,
    /// Most connections open at once; beyond it a new client gets
    /// `-ERR max number of clients reached` and is closed.
    pub clients_max: usize,
    /// How long a connection may stay silent between commands; then it is closed.
    pub idle_timeout: Duration,
    /// Most commands answered from one read before the answers are written out: a
    /// pipeline deeper than this is answered in parts, never buffered whole.
    pub pipeline_depth_max: usize,
}

impl RespLimits {
    /// The door's bounds for a node with `limits`: an argument may be as large as a
    /// value, a command as large as a request body.
    pub fn for_node(limits: &Limits) -> Self {
        Self {
            frame: FrameLimits {
                args_max: 1024 * 1024,
                bulk_bytes_max: limits.value_bytes_max.max(limits.key_bytes_max),
                command_bytes_max: limits.body_bytes_max,
                line_bytes_max: 64 * 1024,
            },
            clients_max: limits.connections_max,
            idle_timeout: Duration::from_secs(300),
            pipeline_depth_max: 1024,
        }
    }
}

/// What every connection of the door shares.
pub struct Door {
    pub node_id: NodeId,
    pub core: Core,
    pub reader: StateReader,
    pub raft: Raft,
    pub limits: Arc<Limits>,
    pub resp: RespLimits,
    /// The port clients reach this door on, for `INFO`.
    pub port: u16,
    started: Instant,
    /// This node's writers of a key take turns (`key_locks`).
    key_locks: key_locks::KeyLocks,
    /// Where this node's unfinished `SCAN`s are (`keys`).
    scans: keys::Cursors,
    /// This node's subscriptions, counted for `PUBLISH` and `PUBSUB` (`pubsub`).
    pubsub: Arc<pubsub::Registry>,
    /// The scripts loaded on this node (`scripts`).
    scripts: scripts::Cache,
    next_client_id: AtomicU64,
    connected: AtomicUsize,
}

impl Door {
    /// Proposes `command` through the core: its outcome (a refusal included), or the
    /// consensus error as a reply.
    pub async fn propose(&self, command: Command) -> Result<Outcome, reply::Reply> {
        Ok(self.core.write(Request::from(command)).await.map_err(errors::consensus)?.outcome)
    }

    pub fn new(node_id: NodeId, core: Core, reader: StateReader, raft: Raft, limits: Arc<Limits>, port: u16) -> Self {
        let resp = RespLimits::for_node(&limits);
        Self {
            node_id,
            core,
            reader,
            raft,
            limits,
            resp,
            port,
            started: Instant::now(),
            key_locks: Default::default(),
            scans: Default::default(),
            pubsub: Default::default(),
            scripts: Default::default(),
            next_client_id: AtomicU64::new(1),
            connected: AtomicUsize::new(0),
        }
    }
}

/// Returns once `stop` turns true (or its sender is gone).
async fn stopped(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|stop| *stop).await;
}

/// Serves the Redis door on `listener` (over TLS with `tls`) until `stop` turns true.
pub async fn serve(listener: TcpListener, door: Arc<Door>, tls: Option<TlsAcceptor>, mut stop: watch::Receiver<bool>) -> std::io::Result<()> {
    let open = Arc::new(Semaphore::new(door.resp.clients_max));
    loop {
        let (stream, remote) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    tracing::warn!(error = %e, "redis door: accept failed; retrying");
                    tokio::time::sleep(ACCEPT_RETRY_DELAY).await;
                    continue;
                }
            },
            () = stopped(&mut stop) => return Ok(()),
        };
        let _ = stream.set_nodelay(true);
        let slot = open.clone().try_acquire_owned().ok();
        let (door, tls, stop) = (door.clone(), tls.clone(), stop.clone());
        tokio::spawn(async move {
            let id = door.next_client_id.fetch_add(1, Ordering::Relaxed);
            door.connected.fetch_add(1, Ordering::Relaxed);
            let result = match tls {
                None => connection::run(&door, stream, remote, id, slot.is_some(), stop).await,
                Some(acceptor) => match tokio::time::timeout(door.resp.idle_timeout, acceptor.accept(stream)).await {
                    Ok(Ok(stream)) => connection::run(&door, stream, remote, id, slot.is_some(), stop).await,
                    Ok(Err(e)) => Err(e),
                    Err(_) => Err(std::io::Error::new(std::io::ErrorKind::TimedOut, "TLS handshake timed out")),
                },
            };
            door.connected.fetch_sub(1, Ordering::Relaxed);
            drop(slot);
            if let Err(e) = result {
                tracing::debug!(error = %e, client = %remote, "redis connection ended with an error");
            }
        });
    }
}
