//! The Raft log, the vote and the committed index, kept in their own RocksDB.
//!
//! The log has a database of its own (not shared with the state machine) so that its
//! writes can be synced while the state machine's are not: the log is the durable
//! record, the state can always be rebuilt from it or from a snapshot.
//!
//! Durability rule (the contract's "acknowledged means durable"): the vote is synced
//! before `save_vote` returns, and appended entries are synced before the append
//! callback tells openraft they are stored.
//!
//! Group commit: a write goes into RocksDB at once (readable at once) but unsynced;
//! its WAL bytes wait in RocksDB's buffer (`manual_wal_flush`). One thread, the
//! syncer (`WalSyncer`), then writes and fsyncs the WAL for every write that queued
//! while the previous fsync ran, and only then reports those writes stored. Under
//! load one fsync covers many entries; alone, a write waits for one fsync as before.
//! The fsync never runs on the async runtime.
//!
//! Layout: column family `logs` maps a big-endian `u64` index to an encoded entry
//! (big-endian so RocksDB's byte order is log order); column family `meta` holds the
//! vote, the committed log id, the last purged log id and the format version
//! (`format_version`).

#![allow(clippy::result_large_err)] // openraft's StorageError is large; it is openraft's type, not ours

use std::fmt::Debug;
use std::ops::{Bound, RangeBounds};
use std::path::Path;
use std::sync::{Arc, Weak};

use openraft::storage::{LogFlushed, RaftLogStorage};
use openraft::{LogState, RaftLogReader, StorageIOError, Vote};
use rocksdb::{ColumnFamilyDescriptor, DB, Direction, IteratorMode, Options, WriteBatch};
use tokio::sync::{mpsc, oneshot};

use super::{Entry, LogId, NodeId, StorageError, TypeConfig};
use crate::codec;
use crate::format_version::Upgrade;

const CF_LOGS: &str = "logs";
const CF_META: &str = "meta";
const KEY_VOTE: &[u8] = b"vote";
const KEY_COMMITTED: &[u8] = b"committed";
const KEY_LAST_PURGED: &[u8] = b"last_purged";
/// Memory of the log database: block cache, and each family's memtable (two at most).
const LOG_CACHE_BYTES: usize = 8 << 20;
const LOG_MEMTABLE_BYTES: usize = 16 << 20;
/// Most writes waiting for the syncer; an append beyond it waits for room.
const SYNC_QUEUE_MAX: usize = 4096;

/// The Raft log store. Cheap to clone: clones share one database and one syncer.
#[derive(Clone)]
pub struct LogStore {
    db: Arc<DB>,
    options: Arc<Options>,
    syncer: WalSyncer,
}

#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error("{0}")]
    Db(#[from] rocksdb::Error),
    #[error("cannot start the WAL syncer thread: {0}")]
    Syncer(#[from] std::io::Error),
    #[error("{0}")]
    Format(#[from] crate::format_version::FormatError),
}

/// Who waits for a sync: openraft's append callback, or a vote, truncate or purge.
enum SyncWaiter {
    Append(LogFlushed<TypeConfig>),
    Write(oneshot::Sender<Result<(), String>>),
}

impl SyncWaiter {
    fn complete(self, synced: Result<(), String>) {
        match self {
            SyncWaiter::Append(callback) => callback.log_io_completed(synced.map_err(std::io::Error::other)),
            // A writer that stopped waiting is gone; its write is synced all the same.
            SyncWaiter::Write(done) => drop(done.send(synced)),
        }
    }
}

/// The queue of the syncer thread, which fsyncs the WAL once for every write queued
/// since its last fsync. The thread ends when the last clone is dropped. It holds the
/// database only while it syncs, so the database closes when the last `LogStore`
/// drops, and a restart in the same process can open it again.
#[derive(Clone)]
struct WalSyncer {
    queue: mpsc::Sender<SyncWaiter>,
}

impl WalSyncer {
    fn spawn(db: Weak<DB>) -> std::io::Result<Self> {
        let (queue, mut waiting) = mpsc::channel::<SyncWaiter>(SYNC_QUEUE_MAX);
        std::thread::Builder::new().name("concord-wal-sync".into()).spawn(move || {
            let mut batch = Vec::new();
            while waiting.blocking_recv_many(&mut batch, SYNC_QUEUE_MAX) > 0 {
                // Each waiter was queued after its write went into RocksDB, so this one
                // flush-and-fsync of the WAL makes every write of the batch durable.
                let synced = match db.upgrade() {
                    Some(db) => db.flush_wal(true).map_err(|e| e.to_string()),
                    None => Err("the log database is closed".to_string()),
                };
                for waiter in batch.drain(..) {
                    waiter.complete(synced.clone());
                }
            }
        })?;
        Ok(Self { queue })
    }
}

/// Counters of the log database, readable while it runs.
#[derive(Clone)]
pub struct LogStats {
    options: Arc<Options>,
}

impl LogStats {
    /// WAL syncs (fsyncs) so far: at least one per durable write. Many entries per
    /// sync means writes share fsyncs (group commit).
    pub fn fsyncs(&self) -> u64 {
        self.options.get_ticker_count(rocksdb::statistics::Ticker::WalFileSynced)
    }
}

fn index_key(index: u64) -> [u8; 8] {
    index.to_be_bytes()
}

fn key_index(key: &[u8]) -> Result<u64, StorageError> {
    let bytes: [u8; 8] = key.try_into().map_err(|_| StorageIOError::read_logs(openraft::AnyError::error(format!("bad log key of {} bytes", key.len()))))?;
    Ok(u64::from_be_bytes(bytes))
}

fn read_err(e: impl std::error::Error + 'static) -> StorageError {
    StorageIOError::read_logs(&e).into()
}

fn write_err(e: impl std::error::Error + 'static) -> StorageError {
    StorageIOError::write_logs(&e).into()
}

impl LogStore {
    /// Opens (or creates) the log database in `dir` and starts its syncer.
    pub fn open(dir: &Path) -> Result<Self, OpenError> {
        let mut options = Options::default();
        options.create_if_missing(true);
        options.create_missing_column_families(true);
        // WAL bytes stay in RocksDB's buffer until the syncer flushes and fsyncs them.
        options.set_manual_wal_flush(true);
        // The vote and metadata family is written rarely and would keep every WAL
        // file alive until it flushed (reopening replays them all): cap the WAL at
        // the two families' memtables so RocksDB flushes it instead.
        options.set_max_total_wal_size(2 * LOG_MEMTABLE_BYTES as u64);
        options.enable_statistics();
        options.set_statistics_level(rocksdb::statistics::StatsLevel::ExceptTimers);
        // The log is read mostly at its tail, from memtables: small fixed buffers
        // and one small cache bound its memory.
        let mut table = rocksdb::BlockBasedOptions::default();
        table.set_block_cache(&rocksdb::Cache::new_lru_cache(LOG_CACHE_BYTES));
        let mut family = Options::default();
        family.set_block_based_table_factory(&table);
        family.set_write_buffer_size(LOG_MEMTABLE_BYTES);
        let families = [CF_LOGS, CF_META].map(|name| ColumnFamilyDescriptor::new(name, family.clone()));
        let db = Arc::new(DB::open_cf_descriptors(&options, dir, families)?);
        let meta = db.cf_handle(CF_META).expect("column family created at open");
        let logs = db.cf_handle(CF_LOGS).expect("column family created at open");
        crate::format_version::LOG_FORMAT.check_or_stamp(&db, meta, Upgrade { family: logs, rewrite: &upgrade_entry })?;
        let syncer = WalSyncer::spawn(Arc::downgrade(&db))?;
        Ok(Self { db, options: Arc::new(options), syncer })
    }

    pub fn stats(&self) -> LogStats {
        LogStats { options: self.options.clone() }
    }

    fn cf(&self, name: &str) -> &rocksdb::ColumnFamily {
        // The families are created in `open`; a missing one is a programming error.
        self.db.cf_handle(name).expect("column family created at open")
    }

    fn get_meta<T: serde::de::DeserializeOwned>(&self, key: &[u8]) -> Result<Option<T>, StorageError> {
        match self.db.get_cf(self.cf(CF_META), key).map_err(read_err)? {
            None => Ok(None),
            Some(bytes) => codec::decode(&bytes).map(Some).map_err(read_err),
        }
    }

    /// Writes `batch` now (readable at once, durable only after the next sync) and
    /// queues `waiter` for that sync.
    async fn write_then_sync(&self, batch: WriteBatch, waiter: SyncWaiter) -> Result<(), StorageError> {
        self.db.write(batch).map_err(write_err)?;
        self.syncer.queue.send(waiter).await.map_err(|_| write_err(std::io::Error::other("the WAL syncer has stopped")))
    }

    /// Writes what `build` puts in a batch and waits until it is synced.
    async fn write_synced(&self, build: impl FnOnce(&Self, &mut WriteBatch) -> Result<(), StorageError>) -> Result<(), StorageError> {
        let mut batch = WriteBatch::default();
        build(self, &mut batch)?;
        let (done, synced) = oneshot::channel();
        self.write_then_sync(batch, SyncWaiter::Write(done)).await?;
        match synced.await {
            Ok(result) => result.map_err(|e| write_err(std::io::Error::other(e))),
            Err(_) => Err(write_err(std::io::Error::other("the WAL syncer stopped before syncing"))),
        }
    }

    fn last_entry_log_id(&self) -> Result<Option<LogId>, StorageError> {
        let mut iter = self.db.iterator_cf(self.cf(CF_LOGS), IteratorMode::End);
        match iter.next() {
            None => Ok(None),
            Some(item) => {
                let (_, value) = item.map_err(read_err)?;
                let entry: Entry = codec::decode(&value).map_err(read_err)?;
                Ok(Some(entry.log_id))
            }
        }
    }
}

impl RaftLogReader<TypeConfig> for LogStore {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + Send>(&mut self, range: RB) -> Result<Vec<Entry>, StorageError> {
        let start = match range.start_bound() {
            Bound::Included(index) => *index,
            Bound::Excluded(index) => index.saturating_add(1),
            Bound::Unbounded => 0,
        };
        let mut entries = Vec::new();
        let from = index_key(start);
        for item in self.db.iterator_cf(self.cf(CF_LOGS), IteratorMode::From(&from, Direction::Forward)) {
            let (key, value) = item.map_err(read_err)?;
            let index = key_index(&key)?;
            if !range.contains(&index) {
                break;
            }
            let entry: Entry = codec::decode(&value).map_err(read_err)?;
            // Read-side invariant: the key and the entry agree on the index.
            if entry.log_id.index != index {
                return Err(StorageIOError::read_log_at_index(index, openraft::AnyError::error("entry stored under another index")).into());
            }
            entries.push(entry);
        }
        Ok(entries)
    }
}

impl RaftLogStorage<TypeConfig> for LogStore {
    type LogReader = Self;

    async fn get_log_state(&mut self) -> Result<LogState<TypeConfig>, StorageError> {
        let last_purged_log_id: Option<LogId> = self.get_meta(KEY_LAST_PURGED)?;
        let last_log_id = self.last_entry_log_id()?.or(last_purged_log_id);
        Ok(LogState { last_purged_log_id, last_log_id })
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        self.clone()
    }

    async fn save_vote(&mut self, vote: &Vote<NodeId>) -> Result<(), StorageError> {
        let bytes = codec::encode(vote).map_err(|e| StorageIOError::write_vote(&e))?;
        self.write_synced(|store, batch| {
            batch.put_cf(store.cf(CF_META), KEY_VOTE, bytes);
            Ok(())
        })
        .await
    }

    async fn read_vote(&mut self) -> Result<Option<Vote<NodeId>>, StorageError> {
        self.get_meta(KEY_VOTE)
    }

    async fn save_committed(&mut self, committed: Option<LogId>) -> Result<(), StorageError> {
        // Not synced (the next sync takes it along): the committed index only lets a
        // restart apply sooner; losing the latest value is harmless because it is
        // re-learnt from the leader.
        let bytes = codec::encode(&committed).map_err(write_err)?;
        self.db.put_cf(self.cf(CF_META), KEY_COMMITTED, bytes).map_err(write_err)
    }

    async fn read_committed(&mut self) -> Result<Option<LogId>, StorageError> {
        Ok(self.get_meta::<Option<LogId>>(KEY_COMMITTED)?.flatten())
    }

    async fn append<I>(&mut self, entries: I, callback: LogFlushed<TypeConfig>) -> Result<(), StorageError>
    where
        I: IntoIterator<Item = Entry> + Send,
        I::IntoIter: Send,
    {
        let mut batch = WriteBatch::default();
        for entry in entries {
            let bytes = codec::encode(&entry).map_err(write_err)?;
            batch.put_cf(self.cf(CF_LOGS), index_key(entry.log_id.index), bytes);
        }
        // The syncer calls back once the entries are on disk (synced), not before.
        self.write_then_sync(batch, SyncWaiter::Append(callback)).await
    }

    async fn truncate(&mut self, log_id: LogId) -> Result<(), StorageError> {
        self.write_synced(|store, batch| {
            batch.delete_range_cf(store.cf(CF_LOGS), index_key(log_id.index), index_key(u64::MAX));
            // delete_range's end is exclusive; u64::MAX itself is never a real index.
            Ok(())
        })
        .await
    }

    async fn purge(&mut self, log_id: LogId) -> Result<(), StorageError> {
        let bytes = codec::encode(&log_id).map_err(write_err)?;
        // One atomic batch: the purge marker and the deletion land together.
        self.write_synced(|store, batch| {
            batch.put_cf(store.cf(CF_META), KEY_LAST_PURGED, bytes);
            batch.delete_range_cf(store.cf(CF_LOGS), index_key(0), index_key(log_id.index.saturating_add(1)));
            Ok(())
        })
        .await
    }
}

/// Rewrites a log entry of log format 2 (or 1) in the current format.
fn upgrade_entry(bytes: &[u8]) -> Result<Vec<u8>, String> {
    let old: crate::state::v2::Entry = codec::decode(bytes).map_err(|e| format!("a log entry does not decode as version 2: {e}"))?;
    codec::encode(&crate::state::v2::entry_up(old)).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use openraft::storage::RaftLogStorageExt;
    use openraft::{CommittedLeaderId, EntryPayload};

    use crate::state::command::{Command, Precondition, Request};
    use crate::state::kv::KvCommand;

    use super::*;

    fn entry(index: u64) -> Entry {
        Entry { log_id: LogId::new(CommittedLeaderId::new(1, 1), index), payload: EntryPayload::Blank }
    }

    /// kill -9 cannot show a missing fsync (the page cache survives a process), so
    /// this checks the syncs themselves, through RocksDB's own counter.
    #[tokio::test]
    async fn votes_and_appends_are_synced_before_they_are_reported_stored() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = LogStore::open(dir.path()).unwrap();
        let stats = store.stats();

        let before = stats.fsyncs();
        store.save_vote(&Vote::new(1, 1)).await.unwrap();
        assert!(stats.fsyncs() > before, "save_vote returned before an fsync");

        let before = stats.fsyncs();
        store.blocking_append([entry(1), entry(2), entry(3)]).await.unwrap();
        assert!(stats.fsyncs() > before, "append reported stored before an fsync");

        let before = stats.fsyncs();
        store.truncate(LogId::new(CommittedLeaderId::new(1, 1), 3)).await.unwrap();
        store.purge(LogId::new(CommittedLeaderId::new(1, 1), 1)).await.unwrap();
        assert!(stats.fsyncs() >= before + 2, "truncate and purge are synced");

        let state = store.get_log_state().await.unwrap();
        assert_eq!(state.last_log_id.map(|id| id.index), Some(2));
        assert_eq!(state.last_purged_log_id.map(|id| id.index), Some(1));
    }

    /// The vote is written rarely; it must not keep every WAL file alive (a restart
    /// replays them all) while 160 MB of entries go through.
    #[tokio::test]
    async fn a_vote_written_once_does_not_keep_the_wal_growing() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = LogStore::open(dir.path()).unwrap();
        store.save_vote(&Vote::new(1, 1)).await.unwrap();
        for index in 1..=160 {
            let command =
                Command::Kv(KvCommand::Put { key: format!("k{index}"), value: vec![7; 1 << 20], precondition: Precondition::None, lease: None, fence: None });
            let payload = EntryPayload::Normal(Request::from(command));
            store.blocking_append([Entry { log_id: LogId::new(CommittedLeaderId::new(1, 1), index), payload }]).await.unwrap();
        }
        // Without the cap, up to RocksDB's default of 256 MB stays.
        concord_core::wal_check::assert_wal_shrinks_to(dir.path(), 3 * 2 * LOG_MEMTABLE_BYTES as u64);
    }
}
