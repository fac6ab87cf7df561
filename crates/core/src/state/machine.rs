//! The replicated state machine: openraft's `RaftStateMachine` over `StateStore`.
//!
//! `apply` is deterministic: it reads only the entries and the stored state (no clock,
//! no randomness, no I/O but its own store), so every replica that applies the same
//! log holds the same state and returns the same responses. All entries of one
//! `apply` call are written in one atomic batch together with the new applied log id.

#![allow(clippy::result_large_err)] // openraft's StorageError is large; it is openraft's type, not ours

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use openraft::storage::RaftStateMachine;
use openraft::{EntryPayload, RaftSnapshotBuilder, StorageIOError};

use super::auth::{self, AuthCommand};
use super::command::{Command, Outcome, Rejection, Request, Response, Stamp};
use super::counts;
use super::expiry;
use super::idempotency::{self, IdempotencyBounds, Lookup};
use super::kv;
use super::lease;
use super::list;
use super::lock;
use super::queue;
use super::reader::StateReader;
use super::ring;
use super::session;
use super::snapshot::{SnapshotError, SnapshotFiles};
use super::store::{Batch, Cf, KEY_META, Meta, StateStore, ViewError};
use super::topic;
use super::txn;
use crate::raft::{Entry, LogId, Snapshot, SnapshotMeta, StorageError, StoredMembership, TypeConfig};

/// The state database's memory bound unless configured (`--cache-mb`).
pub const CACHE_BYTES_DEFAULT: usize = 256 << 20;

pub struct StateMachine {
    store: StateStore,
    files: Arc<SnapshotFiles>,
    /// In-memory copy of the stored `Meta` (the store stays authoritative).
    meta: Meta,
    /// Whether tokens are required, as last applied: lets every request of a cluster
    /// without tokens skip reading the auth table (`StateReader::tokens_required`).
    tokens_required: Arc<AtomicBool>,
    bounds: IdempotencyBounds,
}

/// Builds snapshots off the apply path, from a point-in-time view of the store.
pub struct SnapshotBuilder {
    store: StateStore,
    files: Arc<SnapshotFiles>,
}

#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error("cannot open the state database: {0}")]
    Store(#[from] rocksdb::Error),
    #[error("cannot recover the state: {0}")]
    Snapshot(#[from] SnapshotError),
    #[error("cannot read the state: {0}")]
    View(#[from] ViewError),
    #[error("cannot open the snapshot directory: {0}")]
    Io(#[from] std::io::Error),
    #[error("{0}")]
    Format(#[from] crate::format_version::FormatError),
}

impl StateMachine {
    /// Opens the state under `dir` (`state/` and `snapshots/`), finishing an install
    /// a crash interrupted.
    /// `cache_bytes` bounds the memory of the state database (`StateStore::open`).
    pub fn open(dir: &Path, bounds: IdempotencyBounds, cache_bytes: usize) -> Result<Self, OpenError> {
        let store = StateStore::open(&dir.join("state"), cache_bytes)?;
        check_format(&store)?;
        let files = Arc::new(SnapshotFiles::open(&dir.join("snapshots"))?);
        if SnapshotFiles::install_interrupted(&store)? {
            tracing::warn!("a snapshot install was interrupted; installing it again");
            files.recover(&store)?;
            check_format(&store)?;
        }
        let meta = store.view().meta()?;
        let machine = Self { store, files, meta, bounds, tokens_required: Arc::default() };
        machine.publish_tokens_required()?;
        Ok(machine)
    }

    /// The state database, for tests that write what no command would.
    #[cfg(test)]
    pub(super) fn store(&self) -> StateStore {
        self.store.clone()
    }

    pub fn reader(&self) -> StateReader {
        StateReader::new(self.store.clone(), self.tokens_required.clone())
    }

    /// Copies the stored "tokens required" setting to memory; after every change to it
    /// (an enable, a disable, a snapshot installed), before the change is answered.
    fn publish_tokens_required(&self) -> Result<(), ViewError> {
        let enabled = auth::settings(&self.store.view())?.enabled;
        self.tokens_required.store(enabled, Ordering::Release);
        Ok(())
    }

    fn apply_request(&self, batch: &mut Batch<'_>, meta: &mut Meta, index: u64, request: Request) -> Result<Response, ViewError> {
        if let Command::Batch(requests) = request.command {
            let mut responses = Vec::with_capacity(requests.len());
            for request in requests {
                responses.push(match request.command.is_batchable() {
                    true => self.apply_request(batch, meta, index, request)?,
                    false => Response::fresh(Outcome::Rejected(Rejection::NotBatchable)),
                });
            }
            return Ok(Response::fresh(Outcome::Batch(responses)));
        }
        let stamp = Stamp { index, now_ms: request.now_ms };
        idempotency::evict(batch, meta, index, self.bounds)?;
        let Some(key) = request.idempotency_key else {
            return Ok(Response::fresh(apply_all_or_nothing(batch, meta, stamp, request.command)?));
        };
        let fingerprint = idempotency::fingerprint(&request.command)?;
        match idempotency::lookup(batch, &key, &request.command, fingerprint)? {
            Lookup::Replay(outcome) => Ok(Response { replayed: true, outcome }),
            Lookup::Reused => Ok(Response::fresh(Outcome::Rejected(Rejection::IdempotencyKeyReused { key }))),
            Lookup::Fresh => {
                let outcome = apply_all_or_nothing(batch, meta, stamp, request.command)?;
                idempotency::remember(batch, meta, &key, fingerprint, index, &outcome)?;
                idempotency::evict(batch, meta, index, self.bounds)?;
                Ok(Response::fresh(outcome))
            }
        }
    }
}

/// `apply_command`, undone if it is refused: a refusal changes nothing (the contract
/// of `Outcome::Rejected`), even one a command reaches after it began writing.
fn apply_all_or_nothing(batch: &mut Batch<'_>, meta: &mut Meta, stamp: Stamp, command: Command) -> Result<Outcome, ViewError> {
    let meta_before = meta.clone();
    batch.savepoint();
    let outcome = apply_command(batch, meta, stamp, command)?;
    match outcome {
        Outcome::Rejected(_) => {
            batch.rollback();
            *meta = meta_before;
        }
        _ => batch.release(),
    }
    Ok(outcome)
}

fn apply_command(batch: &mut Batch<'_>, meta: &mut Meta, stamp: Stamp, command: Command) -> Result<Outcome, ViewError> {
    match command {
        Command::Kv(command) => kv::apply(batch, meta, stamp.now_ms, command),
        Command::Lease(command) => lease::apply(batch, meta, stamp, command),
        Command::Lock(command) => lock::apply(batch, stamp.index, command),
        Command::Ring(command) => ring::apply(batch, command),
        Command::Queue(command) => queue::apply(batch, meta, stamp, command),
        Command::Topic(command) => topic::apply(batch, meta, stamp, command),
        Command::Auth(command) => auth::apply(batch, stamp.index, command),
        Command::Tick { advance_ms } => {
            let outcome = lease::tick(batch, meta, advance_ms, stamp.index)?;
            queue::tick(batch, meta)?;
            expiry::tick(batch, meta)?;
            Ok(outcome)
        }
        // `apply_request` unpacks a batch; one met here was nested in another.
        Command::Batch(_) => Ok(Outcome::Rejected(Rejection::NotBatchable)),
        Command::Txn(txn) => txn::apply(batch, meta, stamp, txn),
        Command::List(command) => list::apply(batch, meta, kv::RevisionAt::Next, command),
        Command::Session(command) => session::apply(batch, meta, stamp, command),
    }
}

/// Checks the state database's format version, upgrading an older one (at open, and
/// after installing a snapshot, which carries the version of the node that built it).
/// Formats before 4 did not count their keys: they are counted now.
fn check_format(store: &StateStore) -> Result<(), OpenError> {
    let upgrade = crate::format_version::Upgrade { family: store.cf(Cf::Idem), rewrite: &idempotency::upgrade_record };
    if crate::format_version::STATE_FORMAT.check_or_stamp(store.db(), store.cf(Cf::Meta), upgrade)? < 4 {
        let counted = counts::recount(store)?;
        tracing::info!(keys = counted.keys, expiring = counted.expiring, "counted the keys of a state database of an older format");
    }
    Ok(())
}

fn snapshot_err(meta: Option<&SnapshotMeta>, e: impl std::error::Error + 'static) -> StorageError {
    StorageIOError::write_snapshot(meta.map(|m| m.signature()), &e).into()
}

fn current_snapshot(files: &SnapshotFiles) -> Result<Option<Snapshot>, StorageError> {
    let current = files.current().map_err(|e| StorageError::from(StorageIOError::read_snapshot(None, &e)))?;
    Ok(current.map(|(meta, file)| Snapshot { meta, snapshot: Box::new(tokio::fs::File::from_std(file)) }))
}

impl RaftSnapshotBuilder<TypeConfig> for SnapshotBuilder {
    async fn build_snapshot(&mut self) -> Result<Snapshot, StorageError> {
        let (store, files) = (self.store.clone(), self.files.clone());
        // A wall-clock suffix only makes ids unique across restarts; it never reaches `apply`.
        let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0);
        let built = tokio::task::spawn_blocking(move || files.build(&store, &nanos.to_string()))
            .await
            .map_err(|e| snapshot_err(None, e))?
            .map_err(|e| snapshot_err(None, e))?;
        tracing::info!(snapshot = %built, "built snapshot");
        current_snapshot(&self.files)?.ok_or_else(|| snapshot_err(Some(&built), std::io::Error::other("snapshot vanished after build")))
    }
}

impl RaftStateMachine<TypeConfig> for StateMachine {
    type SnapshotBuilder = SnapshotBuilder;

    async fn applied_state(&mut self) -> Result<(Option<LogId>, StoredMembership), StorageError> {
        Ok((self.meta.last_applied, self.meta.membership.clone()))
    }

    async fn apply<I>(&mut self, entries: I) -> Result<Vec<Response>, StorageError>
    where
        I: IntoIterator<Item = Entry> + Send,
        I::IntoIter: Send,
    {
        let mut meta = self.meta.clone();
        let mut batch = self.store.begin();
        let mut responses = Vec::new();
        let mut auth_switched = false;
        let write_err = |e: &dyn std::error::Error| StorageError::from(StorageIOError::write_state_machine(openraft::AnyError::error(e)));
        for entry in entries {
            let log_id = entry.log_id;
            let apply_err = |e: ViewError| StorageError::from(StorageIOError::apply(log_id, &e));
            meta.last_applied = Some(log_id);
            if let EntryPayload::Normal(request) = &entry.payload {
                auth_switched |= matches!(request.command, Command::Auth(AuthCommand::Enable { .. } | AuthCommand::Disable));
            }
            let response = match entry.payload {
                EntryPayload::Blank => Response::fresh(Outcome::Noop),
                EntryPayload::Normal(request) => self.apply_request(&mut batch, &mut meta, log_id.index, request).map_err(apply_err)?,
                EntryPayload::Membership(membership) => {
                    meta.membership = StoredMembership::new(Some(log_id), membership);
                    Response::fresh(Outcome::Noop)
                }
            };
            responses.push(response);
        }
        batch.put_encoded(Cf::Meta, KEY_META, &meta).map_err(|e| write_err(&e))?;
        batch.commit().map_err(|e| write_err(&e))?;
        self.meta = meta;
        if auth_switched {
            self.publish_tokens_required().map_err(|e| write_err(&e))?;
        }
        Ok(responses)
    }

    async fn get_snapshot_builder(&mut self) -> Self::SnapshotBuilder {
        SnapshotBuilder { store: self.store.clone(), files: self.files.clone() }
    }

    async fn begin_receiving_snapshot(&mut self) -> Result<Box<tokio::fs::File>, StorageError> {
        let file = self.files.begin_incoming().map_err(|e| snapshot_err(None, e))?;
        Ok(Box::new(tokio::fs::File::from_std(file)))
    }

    async fn install_snapshot(&mut self, meta: &SnapshotMeta, snapshot: Box<tokio::fs::File>) -> Result<(), StorageError> {
        let file = snapshot.into_std().await;
        let (store, files, expected) = (self.store.clone(), self.files.clone(), meta.clone());
        let installed = tokio::task::spawn_blocking(move || files.install_incoming(&store, file, &expected))
            .await
            .map_err(|e| snapshot_err(Some(meta), e))?
            .map_err(|e| snapshot_err(Some(meta), e))?;
        tracing::info!(snapshot = %meta, "installed snapshot");
        check_format(&self.store).map_err(|e| snapshot_err(Some(meta), e))?;
        self.meta = installed;
        self.publish_tokens_required().map_err(|e| snapshot_err(Some(meta), e))?;
        Ok(())
    }

    async fn get_current_snapshot(&mut self) -> Result<Option<Snapshot>, StorageError> {
        current_snapshot(&self.files)
    }
}
