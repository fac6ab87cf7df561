//! The state machine's RocksDB: column families, the metadata record, and `Batch`.
//!
//! All replicated state lives on disk, so the data set may exceed memory and a
//! restart resumes from the last applied entry instead of replaying the whole log.
//! Writes are not synced: the Raft log is the durable record, and everything here can
//! be rebuilt from it (or from a snapshot, whose file *is* synced).
//!
//! `Batch` is how `apply` writes: one RocksDB `WriteBatch` per `apply` call, holding
//! the changes of every entry in it together with the new metadata (applied log id,
//! membership, revision), so the data and the applied index can never disagree. Until
//! it commits, the batch keeps its pending writes in an ordered overlay, which reads
//! (`get`) and scans (`scan`, merged with the store in key order) see, because a later
//! entry in the same batch must see what an earlier one wrote, however it reads. The
//! overlay also makes writes revocable: `savepoint` and `rollback` undo everything
//! written since, so a command refused halfway leaves nothing behind. `commit` turns
//! the overlay into one `WriteBatch` of each key's last write.

use std::cmp::Ordering;
use std::collections::BTreeMap;
use std::iter::Peekable;
use std::path::Path;
use std::sync::Arc;

use rocksdb::{BlockBasedIndexType, BlockBasedOptions, Cache, ColumnFamilyDescriptor, DB, Options, WriteBatch, WriteBufferManager, WriteOptions};
use serde::{Deserialize, Serialize};

use crate::codec;
use crate::raft::{LogId, StoredMembership};

/// A column family of the state database.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[repr(u8)]
pub enum Cf {
    /// Small records: the `Meta` record and the snapshot-install marker.
    Meta = 1,
    /// Key → encoded `kv::KvRecord`.
    Kv = 2,
    /// Idempotency key → encoded `idempotency::Remembered`.
    Idem = 3,
    /// Dense sequence number (big-endian) → idempotency key, oldest first, for eviction.
    IdemOrder = 4,
    /// Lease id (big-endian) → encoded `lease::LeaseRecord`.
    Leases = 5,
    /// Expiry (big-endian clock ms) ++ lease id (big-endian) → empty: leases by expiry.
    LeaseExpiry = 6,
    /// Lease id (big-endian) ++ kind (0 key, 1 lock) ++ name → empty: what a lease
    /// takes with it when it ends.
    LeaseKeys = 7,
    /// Lock name → encoded `lock::LockRecord` (holder and waiters).
    Locks = 8,
    /// Ring name → `ring::RingMeta`; ring ++ `\0` ++ member → `ring::RingMember`.
    Rings = 9,
    /// Queue name → `queue::QueueRecord`.
    Queues = 10,
    /// Queue ++ `\0` ++ message id (big-endian) → `queue::Message`.
    QueueMessages = 11,
    /// Queue ++ `\0` ++ message id → empty: the visible messages, FIFO.
    QueueVisible = 12,
    /// Time (big-endian clock ms) ++ queue ++ `\0` ++ id → empty: when in-flight and
    /// delayed messages become visible.
    QueueTimers = 13,
    /// Revision (big-endian) ++ key → `history::Change`: recent key changes.
    History = 14,
    /// Revision → bytes of its history events (for dropping the oldest).
    HistorySizes = 15,
    /// Topic name → `topic::TopicRecord`.
    Topics = 16,
    /// Topic ++ `\0` ++ offset (big-endian) → `topic::TopicMessage`.
    TopicMessages = 17,
    /// `auth::AuthSettings` and client tokens (see `auth`).
    Auth = 18,
    /// Key → when it expires (big-endian clock ms) and its TTL (big-endian ms): the
    /// keys with a time to live (`expiry`). Format 4.
    KeyExpiry = 19,
    /// Expiry (big-endian clock ms) ++ key → empty: keys by expiry. Format 4.
    ExpiryOrder = 20,
    /// Key → `list::ListRecord`: the keys that hold lists. Format 4.
    Lists = 21,
    /// Key ++ `\0` ++ generation (big-endian) ++ sequence number (big-endian) → an
    /// item of a list (`list`). Format 4.
    ListItems = 22,
    /// Key → its flags (big-endian u64), for the keys whose flags are not 0 (`flags`).
    /// Format 5.
    KeyFlags = 23,
    /// Lease id (big-endian) → `session::SessionRecord`: Consul's sessions. Format 5.
    Sessions = 24,
    /// Key → `session::Hold`: the session holding it, its lock index and delay.
    /// Format 5.
    KeyHolds = 25,
}

impl Cf {
    pub const ALL: [Cf; 25] = [
        Cf::Meta,
        Cf::Kv,
        Cf::Idem,
        Cf::IdemOrder,
        Cf::Leases,
        Cf::LeaseExpiry,
        Cf::LeaseKeys,
        Cf::Locks,
        Cf::Rings,
        Cf::Queues,
        Cf::QueueMessages,
        Cf::QueueVisible,
        Cf::QueueTimers,
        Cf::History,
        Cf::HistorySizes,
        Cf::Topics,
        Cf::TopicMessages,
        Cf::Auth,
        Cf::KeyExpiry,
        Cf::ExpiryOrder,
        Cf::Lists,
        Cf::ListItems,
        Cf::KeyFlags,
        Cf::Sessions,
        Cf::KeyHolds,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Cf::Meta => "meta",
            Cf::Kv => "kv",
            Cf::Idem => "idem",
            Cf::IdemOrder => "idem_order",
            Cf::Leases => "leases",
            Cf::LeaseExpiry => "lease_expiry",
            Cf::LeaseKeys => "lease_keys",
            Cf::Locks => "locks",
            Cf::Rings => "rings",
            Cf::Queues => "queues",
            Cf::QueueMessages => "queue_messages",
            Cf::QueueVisible => "queue_visible",
            Cf::QueueTimers => "queue_timers",
            Cf::History => "history",
            Cf::HistorySizes => "history_sizes",
            Cf::Topics => "topics",
            Cf::TopicMessages => "topic_messages",
            Cf::Auth => "auth",
            Cf::KeyExpiry => "key_expiry",
            Cf::ExpiryOrder => "expiry_order",
            Cf::Lists => "lists",
            Cf::ListItems => "list_items",
            Cf::KeyFlags => "key_flags",
            Cf::Sessions => "sessions",
            Cf::KeyHolds => "key_holds",
        }
    }

    pub fn from_id(id: u8) -> Option<Cf> {
        Cf::ALL.into_iter().find(|cf| *cf as u8 == id)
    }
}

pub const KEY_META: &[u8] = b"meta";
/// Present while a snapshot is being installed; see `snapshot::install`.
pub const KEY_INSTALLING: &[u8] = b"installing";

/// Everything about the state machine that is not a primitive's data.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
pub struct Meta {
    pub last_applied: Option<LogId>,
    pub membership: StoredMembership,
    /// The cluster revision: grows by one with every change to a key.
    pub revision: u64,
    /// Idempotency table window: sequence numbers `first..next` are remembered.
    pub idem_first_seq: u64,
    pub idem_next_seq: u64,
    /// The replicated clock, in ms: advanced only by `Tick` entries (see `lease.rs`).
    pub clock_ms: u64,
    /// How many leases exist (bounded by `lease::LEASES_MAX`).
    pub lease_count: u64,
    /// How many queues exist (bounded by `queue::QUEUES_MAX`, see there).
    pub queue_count: u64,
    /// How many topics exist (bounded by `topic::TOPICS_MAX`).
    pub topic_count: u64,
    /// The oldest revision the change history holds (0: nothing recorded yet).
    pub history_first: u64,
    /// Bytes the change history holds (see `history::BYTES_MAX`).
    pub history_bytes: u64,
}

/// The state machine's database handle. Cheap to clone.
#[derive(Clone)]
pub struct StateStore {
    db: Arc<DB>,
}

pub type StoreError = rocksdb::Error;

/// Bits of bloom filter per key in the state's tables.
const BLOOM_BITS_PER_KEY: f64 = 10.0;
/// Size of one partition of a table file's index or filter.
const METADATA_BLOCK_BYTES: usize = 4096;

impl StateStore {
    /// Opens the database in `dir`. Its memory is bounded by `cache_bytes`, whatever
    /// the data set: one LRU cache holds the data, index and filter blocks of every
    /// column family, and the memtables are charged to it (at most half of it).
    pub fn open(dir: &Path, cache_bytes: usize) -> Result<Self, StoreError> {
        let cache = Cache::new_lru_cache(cache_bytes);
        let memtables = WriteBufferManager::new_write_buffer_manager_with_cache(cache_bytes / 2, false, cache.clone());
        let mut options = Options::default();
        options.create_if_missing(true);
        options.create_missing_column_families(true);
        options.set_write_buffer_manager(&memtables);
        // Reopening replays every live WAL file, and a WAL file lives until every
        // column family with writes in it has flushed. A family written rarely (the
        // auth table, a ring) would pin them all, up to RocksDB's default bound of
        // four times all memtables (over 4 GiB at `--cache-mb 256`): a restart spent
        // 5 of its 6.8 s at 1M keys opening this database, most of it replaying.
        // Capping the WAL at the memtable budget makes RocksDB flush such a family
        // instead, so a restart replays at most about what the memtables held.
        options.set_max_total_wal_size((cache_bytes / 2) as u64);
        let mut table = BlockBasedOptions::default();
        table.set_block_cache(&cache);
        table.set_cache_index_and_filter_blocks(true);
        table.set_pin_l0_filter_and_index_blocks_in_cache(true);
        // Applying a write reads the key's current record first; for a new key that
        // read finds nothing, and without a filter it costs an index search and a
        // decompressed data block in every level. A bloom filter (10 bits a key, about
        // 1% false positives; its blocks live in the same bounded cache) answers
        // "absent" from memory.
        table.set_bloom_filter(BLOOM_BITS_PER_KEY, false);
        // One filter and one index block per table file grow with the file: at 2.4M
        // keys a file's filter was megabytes, more than a shard of the cache keeps,
        // so every lookup read it from disk again and checksummed it (the collapse of
        // the 10M-key load, `docs/performance.md`). Partitioned, they are blocks of
        // `METADATA_BLOCK_BYTES` cached one by one; only their small top-level
        // index stays pinned.
        table.set_index_type(BlockBasedIndexType::TwoLevelIndexSearch);
        table.set_partition_filters(true);
        table.set_metadata_block_size(METADATA_BLOCK_BYTES);
        table.set_pin_top_level_index_and_filter(true);
        let mut family = Options::default();
        family.set_block_based_table_factory(&table);
        family.set_write_buffer_size((cache_bytes / 8).clamp(1 << 20, 64 << 20));
        let families = Cf::ALL.map(|cf| ColumnFamilyDescriptor::new(cf.name(), family.clone()));
        let db = DB::open_cf_descriptors(&options, dir, families)?;
        Ok(Self { db: Arc::new(db) })
    }

    pub fn db(&self) -> &DB {
        &self.db
    }

    pub fn cf(&self, cf: Cf) -> &rocksdb::ColumnFamily {
        // Every family in `Cf::ALL` is created in `open`.
        self.db.cf_handle(cf.name()).expect("column family created at open")
    }

    /// A consistent point-in-time view for reads.
    pub fn view(&self) -> View<'_> {
        View { store: self, snapshot: self.db.snapshot() }
    }

    pub fn begin(&self) -> Batch<'_> {
        Batch { store: self, overlay: BTreeMap::new(), range_deletes: Vec::new(), undo: Vec::new(), savepoints: Vec::new() }
    }

    /// Makes every write so far durable (used before a snapshot lets the log be purged).
    pub fn sync(&self) -> Result<(), StoreError> {
        self.db.flush_wal(true)
    }
}

/// Reads from one RocksDB snapshot: the data and the `Meta` it returns agree.
pub struct View<'a> {
    store: &'a StateStore,
    snapshot: rocksdb::Snapshot<'a>,
}

impl<'a> View<'a> {
    pub fn get(&self, cf: Cf, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        self.snapshot.get_cf(self.store.cf(cf), key)
    }

    /// The metadata this view reflects; fails while a snapshot install is under way,
    /// because the data is then only partly there.
    pub fn meta(&self) -> Result<Meta, ViewError> {
        if self.get(Cf::Meta, KEY_INSTALLING)?.is_some() {
            return Err(ViewError::Installing);
        }
        match self.get(Cf::Meta, KEY_META)? {
            None => Ok(Meta::default()),
            Some(bytes) => Ok(codec::decode(&bytes)?),
        }
    }

    /// Iterates `cf` in key order starting at `from` (inclusive).
    pub fn iter_from(&self, cf: Cf, from: &[u8]) -> rocksdb::DBIteratorWithThreadMode<'a, DB> {
        let mut options = rocksdb::ReadOptions::default();
        options.set_snapshot(&self.snapshot);
        self.store.db.iterator_cf_opt(self.store.cf(cf), options, rocksdb::IteratorMode::From(from, rocksdb::Direction::Forward))
    }
}

/// One page of named records (queues, topics) and whether more follow.
pub type NamedPage<T> = (Vec<(String, T)>, bool);

impl View<'_> {
    /// The record of `cf` at `key`, decoded, if there is one.
    pub fn get_decoded<T: serde::de::DeserializeOwned>(&self, cf: Cf, key: &[u8]) -> Result<Option<T>, ViewError> {
        self.get(cf, key)?.map(|bytes| codec::decode(&bytes).map_err(ViewError::from)).transpose()
    }

    /// Records of `cf` whose names (keys) come after `after`, in order, at most `limit`.
    pub fn named_page<T: serde::de::DeserializeOwned>(&self, cf: Cf, after: Option<&str>, limit: usize) -> Result<NamedPage<T>, ViewError> {
        let start = after.map(|a| format!("{a}\0")).unwrap_or_default();
        let mut page = Vec::new();
        for item in self.iter_from(cf, start.as_bytes()) {
            let (key, value) = item?;
            if page.len() == limit {
                return Ok((page, true));
            }
            let name = String::from_utf8(key.to_vec()).map_err(|_| ViewError::Corrupt(format!("a name in {} is not UTF-8", cf.name())))?;
            page.push((name, codec::decode(&value)?));
        }
        Ok((page, false))
    }
}

/// A read failed, or the stored bytes did not decode (corruption or a version skew).
#[derive(Debug, thiserror::Error)]
pub enum ViewError {
    #[error("state store: {0}")]
    Store(#[from] StoreError),
    #[error("state store holds a malformed record: {0}")]
    Codec(#[from] codec::CodecError),
    #[error("state store is inconsistent: {0}")]
    Corrupt(String),
    #[error("a snapshot is being installed on this node; try another node or retry shortly")]
    Installing,
}

/// A family and key, as the overlay orders them.
type FamilyKey = (Cf, Vec<u8>);
/// A key of one family and its pending write (`None`: a delete).
type PendingWrite = (Vec<u8>, Option<Vec<u8>>);

/// The pending writes of one `apply` call; see the module doc.
pub struct Batch<'a> {
    store: &'a StateStore,
    /// Each key's last pending write: a value, or `None` for a delete.
    overlay: BTreeMap<FamilyKey, Option<Vec<u8>>>,
    /// Pending range deletes (`delete_range_unread`), applied before the overlay.
    range_deletes: Vec<(Cf, Vec<u8>, Vec<u8>)>,
    /// While a savepoint is open: what each write replaced in the overlay (`None`:
    /// the key had no pending write), oldest first, for `rollback`.
    undo: Vec<(FamilyKey, Option<Option<Vec<u8>>>)>,
    /// Open savepoints, innermost last: the lengths of `undo` and `range_deletes` then.
    savepoints: Vec<(usize, usize)>,
}

impl<'a> Batch<'a> {
    pub fn get(&self, cf: Cf, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        match self.overlay.get(&(cf, key.to_vec())) {
            Some(pending) => Ok(pending.clone()),
            None => self.store.db.get_cf(self.store.cf(cf), key),
        }
    }

    pub fn get_decoded<T: serde::de::DeserializeOwned>(&self, cf: Cf, key: &[u8]) -> Result<Option<T>, ViewError> {
        match self.get(cf, key)? {
            None => Ok(None),
            Some(bytes) => Ok(Some(codec::decode(&bytes)?)),
        }
    }

    /// Iterates `cf` from `from`, in key order: the store with this batch's pending
    /// writes merged in, as they are when the scan starts (later writes, even to keys
    /// ahead of it, are not seen, so a caller may write as it goes).
    pub fn scan(&self, cf: Cf, from: &[u8]) -> Scan<'a> {
        let store: &'a StateStore = self.store;
        let stored = store.db.iterator_cf(store.cf(cf), rocksdb::IteratorMode::From(from, rocksdb::Direction::Forward));
        let start = (cf, from.to_vec());
        let pending: Vec<PendingWrite> =
            self.overlay.range(start..).take_while(|((family, _), _)| *family == cf).map(|((_, key), value)| (key.clone(), value.clone())).collect();
        Scan { stored: stored.peekable(), pending: pending.into_iter().peekable() }
    }

    pub fn put(&mut self, cf: Cf, key: &[u8], value: Vec<u8>) {
        self.write((cf, key.to_vec()), Some(value));
    }

    pub fn put_encoded<T: Serialize>(&mut self, cf: Cf, key: &[u8], value: &T) -> Result<(), ViewError> {
        let bytes = codec::encode(value)?;
        self.put(cf, key, bytes);
        Ok(())
    }

    pub fn delete(&mut self, cf: Cf, key: &[u8]) {
        self.write((cf, key.to_vec()), None);
    }

    fn write(&mut self, key: FamilyKey, value: Option<Vec<u8>>) {
        let replaced = self.overlay.insert(key.clone(), value);
        if !self.savepoints.is_empty() {
            self.undo.push((key, replaced));
        }
    }

    /// Deletes the keys of `cf` from `from` (inclusive) to `to` (exclusive), pending
    /// writes among them included. Reads of the store do not see it before the
    /// commit, so only for a family `apply` never reads back (`Cf::History`).
    pub fn delete_range_unread(&mut self, cf: Cf, from: &[u8], to: &[u8]) {
        let doomed: Vec<FamilyKey> = self.overlay.range((cf, from.to_vec())..(cf, to.to_vec())).map(|(key, _)| key.clone()).collect();
        for key in doomed {
            let replaced = self.overlay.remove(&key);
            if !self.savepoints.is_empty() {
                self.undo.push((key, replaced));
            }
        }
        self.range_deletes.push((cf, from.to_vec(), to.to_vec()));
    }

    /// Marks a point that `rollback` returns to. Savepoints nest.
    pub fn savepoint(&mut self) {
        self.savepoints.push((self.undo.len(), self.range_deletes.len()));
    }

    /// Undoes every write since the innermost savepoint, and closes it.
    pub fn rollback(&mut self) {
        let Some((undo_len, ranges_len)) = self.savepoints.pop() else { return };
        while self.undo.len() > undo_len {
            let Some((key, replaced)) = self.undo.pop() else { break };
            match replaced {
                Some(value) => self.overlay.insert(key, value),
                None => self.overlay.remove(&key),
            };
        }
        self.range_deletes.truncate(ranges_len);
    }

    /// Keeps the writes since the innermost savepoint, and closes it.
    pub fn release(&mut self) {
        self.savepoints.pop();
        if self.savepoints.is_empty() {
            self.undo.clear();
        }
    }

    /// Writes the batch atomically, unsynced (see the module doc): the range deletes,
    /// then each key's last write.
    pub fn commit(self) -> Result<(), StoreError> {
        let mut writes = WriteBatch::default();
        for (cf, from, to) in &self.range_deletes {
            writes.delete_range_cf(self.store.cf(*cf), from, to);
        }
        for ((cf, key), value) in &self.overlay {
            match value {
                Some(value) => writes.put_cf(self.store.cf(*cf), key, value),
                None => writes.delete_cf(self.store.cf(*cf), key),
            }
        }
        let mut options = WriteOptions::default();
        options.set_sync(false);
        self.store.db.write_opt(writes, &options)
    }
}

/// `Batch::scan`: the store's records merged with the batch's pending writes, in key
/// order; a pending write replaces the stored record, a pending delete hides it.
pub struct Scan<'a> {
    stored: Peekable<rocksdb::DBIteratorWithThreadMode<'a, DB>>,
    pending: Peekable<std::vec::IntoIter<PendingWrite>>,
}

impl Iterator for Scan<'_> {
    type Item = Result<(Box<[u8]>, Box<[u8]>), StoreError>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            let pending_first = match (self.stored.peek(), self.pending.peek()) {
                (_, None) | (Some(Err(_)), _) => return self.stored.next(),
                (None, Some(_)) => Ordering::Less,
                (Some(Ok((stored, _))), Some((pending, _))) => pending.as_slice().cmp(stored),
            };
            match pending_first {
                Ordering::Greater => return self.stored.next(),
                // The pending write replaces the stored record.
                Ordering::Equal => drop(self.stored.next()),
                Ordering::Less => {}
            }
            match self.pending.next() {
                Some((key, Some(value))) => return Some(Ok((key.into_boxed_slice(), value.into_boxed_slice()))),
                // A pending delete: nothing to yield here.
                Some((_, None)) => {}
                None => return self.stored.next(),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scanned(batch: &Batch<'_>, cf: Cf, from: &[u8]) -> Vec<(Vec<u8>, Vec<u8>)> {
        batch.scan(cf, from).map(|item| item.map(|(k, v)| (k.to_vec(), v.to_vec())).unwrap()).collect()
    }

    fn pair(key: &str, value: &str) -> (Vec<u8>, Vec<u8>) {
        (key.as_bytes().to_vec(), value.as_bytes().to_vec())
    }

    #[test]
    fn a_batch_scans_its_own_pending_writes_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let store = StateStore::open(dir.path(), 8 << 20).unwrap();
        let mut committed = store.begin();
        for key in ["a", "c", "e", "g"] {
            committed.put(Cf::Kv, key.as_bytes(), b"old".to_vec());
        }
        committed.put(Cf::Leases, b"b", b"other family".to_vec());
        committed.commit().unwrap();

        let mut batch = store.begin();
        batch.put(Cf::Kv, b"b", b"new".to_vec()); // between stored keys
        batch.put(Cf::Kv, b"c", b"new".to_vec()); // over a stored key
        batch.delete(Cf::Kv, b"e"); // hides a stored key
        batch.put(Cf::Kv, b"h", b"new".to_vec()); // after the last stored key
        batch.delete(Cf::Kv, b"z"); // deletes nothing
        let expected = [pair("a", "old"), pair("b", "new"), pair("c", "new"), pair("g", "old"), pair("h", "new")];
        assert_eq!(scanned(&batch, Cf::Kv, b""), expected);
        assert_eq!(scanned(&batch, Cf::Kv, b"c"), expected[2..]);
        assert_eq!(scanned(&batch, Cf::Leases, b""), [pair("b", "other family")], "other families stay apart");
        // Committed, the store holds what the scan showed.
        batch.commit().unwrap();
        assert_eq!(scanned(&store.begin(), Cf::Kv, b""), expected);
    }

    #[test]
    fn a_rollback_undoes_everything_since_its_savepoint_and_nothing_before() {
        let dir = tempfile::tempdir().unwrap();
        let store = StateStore::open(dir.path(), 8 << 20).unwrap();
        let mut committed = store.begin();
        committed.put(Cf::Kv, b"stored", b"1".to_vec());
        committed.put(Cf::History, b"h1", b"1".to_vec());
        committed.commit().unwrap();

        let mut batch = store.begin();
        batch.put(Cf::Kv, b"kept", b"1".to_vec());
        let before = scanned(&batch, Cf::Kv, b"");
        batch.savepoint();
        batch.put(Cf::Kv, b"kept", b"2".to_vec());
        batch.delete(Cf::Kv, b"stored");
        batch.put(Cf::Kv, b"new", b"1".to_vec());
        batch.savepoint(); // nested, released: its writes belong to the outer one
        batch.put(Cf::Kv, b"inner", b"1".to_vec());
        batch.release();
        batch.delete_range_unread(Cf::History, b"h", b"i");
        assert_ne!(scanned(&batch, Cf::Kv, b""), before);
        batch.rollback();
        assert_eq!(scanned(&batch, Cf::Kv, b""), before, "every write since the savepoint undone");
        assert_eq!(batch.get(Cf::Kv, b"stored").unwrap(), Some(b"1".to_vec()));
        // A write after the savepoint closed stays, and the range delete was undone.
        batch.put(Cf::Kv, b"after", b"1".to_vec());
        batch.commit().unwrap();
        let view = store.begin();
        assert_eq!(scanned(&view, Cf::Kv, b""), [pair("after", "1"), pair("kept", "1"), pair("stored", "1")]);
        assert_eq!(scanned(&view, Cf::History, b""), [pair("h1", "1")]);
    }

    /// A restart replays every live WAL file: one write to a family that is rarely
    /// written must not keep them all alive while another family takes 40 MB.
    #[test]
    fn a_family_written_once_does_not_keep_the_wal_growing() {
        let dir = tempfile::tempdir().unwrap();
        let cache_bytes = 8 << 20; // memtables: 4 MiB in all, 1 MiB each
        let store = StateStore::open(dir.path(), cache_bytes).unwrap();
        let mut once = store.begin();
        once.put(Cf::Rings, b"ring", vec![1]);
        once.commit().unwrap();
        for round in 0..2_000u32 {
            let mut batch = store.begin();
            for i in 0..10u32 {
                batch.put(Cf::Kv, format!("key/{round}/{i}").as_bytes(), vec![7; 2_000]);
            }
            batch.commit().unwrap();
        }
        // Without the cap the WAL stays at about the 40 MB written, forever.
        crate::wal_check::assert_wal_shrinks_to(dir.path(), 3 * (cache_bytes as u64 / 2));
    }
}
