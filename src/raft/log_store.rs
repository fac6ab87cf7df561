//! The Raft log, the vote and the committed index, kept in their own RocksDB.
//!
//! The log has a database of its own (not shared with the state machine) so that its
//! writes can be synced while the state machine's are not: the log is the durable
//! record, the state can always be rebuilt from it or from a snapshot.
//!
//! Durability rule (the contract's "acknowledged means durable"): the vote is synced
//! before `save_vote` returns, and appended entries are synced before the append
//! callback tells openraft they are stored. Every write that changes what is durable
//! runs on the blocking pool, so an fsync never stalls the async runtime.
//!
//! Layout: column family `logs` maps a big-endian `u64` index to an encoded entry
//! (big-endian so RocksDB's byte order is log order); column family `meta` holds the
//! vote, the committed log id and the last purged log id.

#![allow(clippy::result_large_err)] // openraft's StorageError is large; it is openraft's type, not ours

use std::fmt::Debug;
use std::ops::{Bound, RangeBounds};
use std::path::Path;
use std::sync::Arc;

use openraft::storage::{LogFlushed, RaftLogStorage};
use openraft::{LogState, RaftLogReader, StorageIOError, Vote};
use rocksdb::{ColumnFamilyDescriptor, DB, Direction, IteratorMode, Options, WriteBatch, WriteOptions};

use super::{Entry, LogId, NodeId, StorageError, TypeConfig};
use crate::codec;

const CF_LOGS: &str = "logs";
const CF_META: &str = "meta";
const KEY_VOTE: &[u8] = b"vote";
const KEY_COMMITTED: &[u8] = b"committed";
const KEY_LAST_PURGED: &[u8] = b"last_purged";

/// The Raft log store. Cheap to clone: clones share one database.
#[derive(Clone)]
pub struct LogStore {
    db: Arc<DB>,
    options: Arc<Options>,
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
    let bytes: [u8; 8] = key
        .try_into()
        .map_err(|_| StorageIOError::read_logs(openraft::AnyError::error(format!("bad log key of {} bytes", key.len()))))?;
    Ok(u64::from_be_bytes(bytes))
}

fn synced() -> WriteOptions {
    let mut options = WriteOptions::default();
    options.set_sync(true);
    options
}

fn read_err(e: impl std::error::Error + 'static) -> StorageError {
    StorageIOError::read_logs(&e).into()
}

fn write_err(e: impl std::error::Error + 'static) -> StorageError {
    StorageIOError::write_logs(&e).into()
}

impl LogStore {
    /// Opens (or creates) the log database in `dir`.
    pub fn open(dir: &Path) -> Result<Self, rocksdb::Error> {
        let mut options = Options::default();
        options.create_if_missing(true);
        options.create_missing_column_families(true);
        options.enable_statistics();
        options.set_statistics_level(rocksdb::statistics::StatsLevel::ExceptTimers);
        let families = [CF_LOGS, CF_META].map(|name| ColumnFamilyDescriptor::new(name, Options::default()));
        let db = DB::open_cf_descriptors(&options, dir, families)?;
        Ok(Self { db: Arc::new(db), options: Arc::new(options) })
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

    /// Runs a synced write on the blocking pool and waits for it.
    async fn write_synced(&self, build: impl FnOnce(&Self, &mut WriteBatch) -> Result<(), StorageError>) -> Result<(), StorageError> {
        let mut batch = WriteBatch::default();
        build(self, &mut batch)?;
        let db = self.db.clone();
        tokio::task::spawn_blocking(move || db.write_opt(batch, &synced()))
            .await
            .map_err(write_err)?
            .map_err(write_err)
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
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + Send>(
        &mut self,
        range: RB,
    ) -> Result<Vec<Entry>, StorageError> {
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
        // Not synced: the committed index only lets a restart apply sooner; losing the
        // latest value is harmless because it is re-learnt from the leader.
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
        let result = self
            .write_synced(|store, batch| {
                for entry in entries {
                    let bytes = codec::encode(&entry).map_err(write_err)?;
                    batch.put_cf(store.cf(CF_LOGS), index_key(entry.log_id.index), bytes);
                }
                Ok(())
            })
            .await;
        // The entries are on disk (synced) only now: tell openraft.
        match &result {
            Ok(()) => callback.log_io_completed(Ok(())),
            Err(e) => callback.log_io_completed(Err(std::io::Error::other(e.to_string()))),
        }
        result
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

#[cfg(test)]
mod tests {
    use openraft::storage::RaftLogStorageExt;
    use openraft::{CommittedLeaderId, EntryPayload};

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
}
