//! Snapshot files: built from the state database, shipped in chunks, installed atomically.
//!
//! A snapshot is one file, so no step holds the whole state in memory: building
//! streams a RocksDB point-in-time view into it, openraft sends it to a lagging peer
//! chunk by chunk (`Config::snapshot_max_chunk_size`), the peer writes the chunks into
//! a file of its own, and installing streams that file back into RocksDB.
//!
//! Format: a magic line, the length-prefixed `SnapshotMeta`, then records
//! `[cf id u8][key len u32][key][value len u32][value]` for every column family, then
//! an end byte `0`, the record count and an FNV-1a checksum of the record bytes (all
//! integers little-endian). The file is checked end to end before anything is wiped.
//!
//! Atomicity of install: a synced `installing` marker goes in first, the old state is
//! wiped and the new one streamed in, the WAL is synced, and only then is the marker
//! removed. A crash in between leaves the marker, and opening the state machine
//! re-installs from the snapshot file (which was synced and renamed into place before
//! the marker was written). While the marker is present, reads refuse to answer.

use std::fs::{self, File};
use std::io::{self, BufReader, BufWriter, Read, Seek, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use rocksdb::WriteBatch;

use super::store::{Cf, KEY_INSTALLING, KEY_META, Meta, StateStore, ViewError};
use crate::codec;
use crate::raft::SnapshotMeta;

const MAGIC: &[u8] = b"CONCORD-SNAPSHOT-1\n";
const META_BYTES_MAX: u32 = 16 << 20;
pub const KEY_BYTES_MAX: u32 = 1 << 20;
/// Hard cap on one record's value and key; a configured limit above them is rejected at start-up.
pub const VALUE_BYTES_MAX: u32 = 64 << 20;
/// Bytes of records written to RocksDB per batch while installing.
const INSTALL_BATCH_BYTES: usize = 8 << 20;
const END: u8 = 0;

#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    #[error("snapshot file I/O: {0}")]
    Io(#[from] io::Error),
    #[error("snapshot state: {0}")]
    State(#[from] ViewError),
    #[error("snapshot store: {0}")]
    Store(#[from] rocksdb::Error),
    #[error("snapshot file is malformed: {0}")]
    Malformed(String),
}

impl From<codec::CodecError> for SnapshotError {
    fn from(e: codec::CodecError) -> Self {
        SnapshotError::Malformed(e.to_string())
    }
}

/// The snapshot directory of one node.
pub struct SnapshotFiles {
    dir: PathBuf,
    /// The file handed to openraft to receive a snapshot into, not yet installed.
    /// openraft receives one snapshot at a time; starting another abandons this one.
    incoming: Mutex<Option<PathBuf>>,
    next_file: AtomicU64,
    /// Held for a whole build and a whole install, so the two never interleave: a
    /// build's view is taken after any install has finished, so a build never
    /// replaces `current.snap` with an older snapshot, and never sees a half-installed
    /// state.
    exclusive: Mutex<()>,
}

struct Fnv(u64);

impl Fnv {
    fn new() -> Self {
        Fnv(0xcbf2_9ce4_8422_2325)
    }
    fn update(&mut self, bytes: &[u8]) {
        for byte in bytes {
            self.0 = (self.0 ^ u64::from(*byte)).wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
}

fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

fn read_u32(reader: &mut impl Read) -> io::Result<u32> {
    let mut bytes = [0u8; 4];
    reader.read_exact(&mut bytes)?;
    Ok(u32::from_le_bytes(bytes))
}

fn read_u64(reader: &mut impl Read) -> io::Result<u64> {
    let mut bytes = [0u8; 8];
    reader.read_exact(&mut bytes)?;
    Ok(u64::from_le_bytes(bytes))
}

fn read_bytes(reader: &mut impl Read, len: u32, max: u32, what: &str) -> Result<Vec<u8>, SnapshotError> {
    if len > max {
        return Err(SnapshotError::Malformed(format!("{what} of {len} bytes exceeds {max}")));
    }
    let mut bytes = vec![0u8; len as usize];
    reader.read_exact(&mut bytes)?;
    Ok(bytes)
}

/// Reads the header; leaves `reader` at the first record.
fn read_header(reader: &mut impl Read) -> Result<SnapshotMeta, SnapshotError> {
    let mut magic = [0u8; MAGIC.len()];
    reader.read_exact(&mut magic)?;
    if magic != MAGIC {
        return Err(SnapshotError::Malformed("not a Concord snapshot (bad magic)".into()));
    }
    let len = read_u32(reader)?;
    let bytes = read_bytes(reader, len, META_BYTES_MAX, "snapshot meta")?;
    Ok(codec::decode(&bytes)?)
}

/// One stored record: column family, key, value.
type Record = (Cf, Vec<u8>, Vec<u8>);

/// One record, or `None` at the end marker (whose trailer is then checked).
struct Records<R: Read> {
    reader: R,
    checksum: Fnv,
    count: u64,
}

impl<R: Read> Records<R> {
    fn next_record(&mut self) -> Result<Option<Record>, SnapshotError> {
        let mut id = [0u8; 1];
        self.reader.read_exact(&mut id)?;
        if id[0] == END {
            let count = read_u64(&mut self.reader)?;
            let checksum = read_u64(&mut self.reader)?;
            if count != self.count || checksum != self.checksum.0 {
                return Err(SnapshotError::Malformed(format!(
                    "trailer says {count} records / checksum {checksum:x}, file has {} / {:x}",
                    self.count, self.checksum.0
                )));
            }
            let mut rest = [0u8; 1];
            if self.reader.read(&mut rest)? != 0 {
                return Err(SnapshotError::Malformed("bytes after the trailer".into()));
            }
            return Ok(None);
        }
        let cf = Cf::from_id(id[0]).ok_or_else(|| SnapshotError::Malformed(format!("unknown column family {}", id[0])))?;
        let key_len = read_u32(&mut self.reader)?;
        let key = read_bytes(&mut self.reader, key_len, KEY_BYTES_MAX, "key")?;
        let value_len = read_u32(&mut self.reader)?;
        let value = read_bytes(&mut self.reader, value_len, VALUE_BYTES_MAX, "value")?;
        self.checksum.update(&id);
        self.checksum.update(&key_len.to_le_bytes());
        self.checksum.update(&key);
        self.checksum.update(&value_len.to_le_bytes());
        self.checksum.update(&value);
        self.count += 1;
        Ok(Some((cf, key, value)))
    }
}

fn lock(mutex: &Mutex<()>) -> std::sync::MutexGuard<'_, ()> {
    mutex.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Checks a whole snapshot file: magic, header (equal to `expected` when given),
/// every record, and the trailer's count and checksum. Returns the header.
fn verify(path: &Path, expected: Option<&SnapshotMeta>) -> Result<SnapshotMeta, SnapshotError> {
    let mut reader = BufReader::with_capacity(1 << 20, File::open(path)?);
    let found = read_header(&mut reader)?;
    if let Some(expected) = expected
        && found != *expected
    {
        return Err(SnapshotError::Malformed(format!("snapshot file holds {found}, expected {expected}")));
    }
    let mut records = Records { reader, checksum: Fnv::new(), count: 0 };
    while records.next_record()?.is_some() {}
    Ok(found)
}

impl SnapshotFiles {
    /// Opens `dir`, removing partial files a crash may have left.
    pub fn open(dir: &Path) -> io::Result<Self> {
        fs::create_dir_all(dir)?;
        for entry in fs::read_dir(dir)? {
            let path = entry?.path();
            if matches!(path.extension().and_then(|e| e.to_str()), Some("part" | "tmp")) {
                fs::remove_file(&path)?;
            }
        }
        Ok(Self { dir: dir.to_path_buf(), incoming: Mutex::new(None), next_file: AtomicU64::new(0), exclusive: Mutex::new(()) })
    }

    fn current_path(&self) -> PathBuf {
        self.dir.join("current.snap")
    }

    fn new_path(&self, kind: &str, extension: &str) -> PathBuf {
        self.dir.join(format!("{kind}-{}.{extension}", self.next_file.fetch_add(1, Ordering::Relaxed)))
    }

    /// Atomically makes the synced file at `path` the current snapshot.
    fn promote(&self, path: &Path) -> io::Result<()> {
        fs::rename(path, self.current_path())?;
        sync_dir(&self.dir)
    }

    /// Streams the current state into a new current snapshot whose id is
    /// `{term}-{index}-{id_suffix}`. Blocking.
    pub fn build(&self, store: &StateStore, id_suffix: &str) -> Result<SnapshotMeta, SnapshotError> {
        let _exclusive = lock(&self.exclusive);
        let view = store.view();
        let meta = view.meta()?;
        // The log may be purged up to this snapshot, so everything the view reflects
        // must be durable in the state store too: sync after taking the view.
        store.sync()?;
        let snapshot_id = match meta.last_applied {
            Some(log_id) => format!("{}-{}-{id_suffix}", log_id.leader_id.term, log_id.index),
            None => format!("0-0-{id_suffix}"),
        };
        let snapshot_meta = SnapshotMeta { last_log_id: meta.last_applied, last_membership: meta.membership.clone(), snapshot_id };
        let tmp = self.new_path("build", "tmp");
        let mut out = BufWriter::with_capacity(1 << 20, File::create(&tmp)?);
        out.write_all(MAGIC)?;
        let meta_bytes = codec::encode(&snapshot_meta)?;
        out.write_all(&(meta_bytes.len() as u32).to_le_bytes())?;
        out.write_all(&meta_bytes)?;
        let mut checksum = Fnv::new();
        let mut count = 0u64;
        for cf in Cf::ALL {
            for item in view.iter_from(cf, b"") {
                let (key, value) = item?;
                let (Ok(key_len), Ok(value_len)) = (u32::try_from(key.len()), u32::try_from(value.len())) else {
                    return Err(SnapshotError::Malformed("record too large for the format".into()));
                };
                for part in [&[cf as u8][..], &key_len.to_le_bytes(), &key, &value_len.to_le_bytes(), &value] {
                    out.write_all(part)?;
                    checksum.update(part);
                }
                count += 1;
            }
        }
        out.write_all(&[END])?;
        out.write_all(&count.to_le_bytes())?;
        out.write_all(&checksum.0.to_le_bytes())?;
        let file = out.into_inner().map_err(|e| e.into_error())?;
        file.sync_all()?;
        self.promote(&tmp)?;
        Ok(snapshot_meta)
    }

    /// The current snapshot's meta and a handle on its file at offset 0.
    pub fn current(&self) -> Result<Option<(SnapshotMeta, File)>, SnapshotError> {
        let mut file = match File::open(self.current_path()) {
            Ok(file) => file,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e.into()),
        };
        // One handle for both: a rename in between cannot pair one meta with other data.
        let meta = read_header(&mut BufReader::new(&file))?;
        file.seek(io::SeekFrom::Start(0))?;
        Ok(Some((meta, file)))
    }

    /// A new empty file for openraft to write a received snapshot into. A transfer
    /// openraft abandoned leaves its file here; it is removed now.
    pub fn begin_incoming(&self) -> io::Result<File> {
        let path = self.new_path("incoming", "part");
        let file = fs::OpenOptions::new().read(true).write(true).create(true).truncate(true).open(&path)?;
        let abandoned = self.incoming.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).replace(path);
        if let Some(abandoned) = abandoned {
            let _ = fs::remove_file(abandoned);
        }
        Ok(file)
    }

    /// Installs a fully received snapshot that must carry `expected`: checks the
    /// whole file, makes it the current snapshot, and replaces the state with it.
    /// A file that fails the check is deleted and changes nothing. A file that is not
    /// the one `begin_incoming` handed out (openraft may pass any snapshot data) is
    /// copied first. Blocking.
    pub fn install_incoming(&self, store: &StateStore, mut file: File, expected: &SnapshotMeta) -> Result<Meta, SnapshotError> {
        let _exclusive = lock(&self.exclusive);
        let inode = file.metadata()?.ino();
        let pending = self.incoming.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).take();
        let path = match pending {
            Some(path) if fs::metadata(&path).is_ok_and(|m| m.ino() == inode) => {
                file.sync_all()?;
                path
            }
            other => {
                if let Some(abandoned) = other {
                    let _ = fs::remove_file(abandoned);
                }
                let path = self.new_path("copy", "part");
                let mut copy = File::create(&path)?;
                file.seek(io::SeekFrom::Start(0))?;
                io::copy(&mut file, &mut copy)?;
                copy.sync_all()?;
                path
            }
        };
        if let Err(e) = verify(&path, Some(expected)) {
            let _ = fs::remove_file(&path);
            return Err(e);
        }
        self.promote(&path)?;
        self.load_current(store, expected)
    }

    /// Finishes an install a crash interrupted (see the module doc). Blocking.
    pub fn recover(&self, store: &StateStore) -> Result<Meta, SnapshotError> {
        let _exclusive = lock(&self.exclusive);
        let found = verify(&self.current_path(), None)?;
        self.load_current(store, &found)
    }

    /// Replaces the whole state with the (verified) current snapshot `found`.
    fn load_current(&self, store: &StateStore, found: &SnapshotMeta) -> Result<Meta, SnapshotError> {
        let db = store.db();
        let mut synced = rocksdb::WriteOptions::default();
        synced.set_sync(true);
        db.put_cf_opt(store.cf(Cf::Meta), KEY_INSTALLING, b"1", &synced)?;
        let mut wipe = WriteBatch::default();
        for cf in Cf::ALL {
            if cf == Cf::Meta {
                wipe.delete_cf(store.cf(cf), KEY_META);
                continue;
            }
            // Everything up to just past the last key (a range end is exclusive).
            if let Some(last) = db.iterator_cf(store.cf(cf), rocksdb::IteratorMode::End).next() {
                let (mut end, _) = last?;
                let mut end = std::mem::take(&mut end).into_vec();
                end.push(0);
                wipe.delete_range_cf(store.cf(cf), &b""[..], &end[..]);
            }
        }
        db.write(wipe)?;
        let mut reader = BufReader::with_capacity(1 << 20, File::open(self.current_path())?);
        if read_header(&mut reader)? != *found {
            return Err(SnapshotError::Malformed("the current snapshot changed during install".into()));
        }
        let mut records = Records { reader, checksum: Fnv::new(), count: 0 };
        let mut batch = WriteBatch::default();
        while let Some((cf, key, value)) = records.next_record()? {
            if cf == Cf::Meta && key == KEY_INSTALLING {
                continue;
            }
            batch.put_cf(store.cf(cf), key, value);
            if batch.size_in_bytes() >= INSTALL_BATCH_BYTES {
                db.write(std::mem::take(&mut batch))?;
            }
        }
        db.write(batch)?;
        store.sync()?;
        // Read-back invariant, checked while the marker still guards the state.
        let applied = match store.db().get_cf(store.cf(Cf::Meta), KEY_META)? {
            Some(bytes) => codec::decode::<Meta>(&bytes)?.last_applied,
            None => None,
        };
        if applied != found.last_log_id {
            return Err(SnapshotError::Malformed(format!("installed state is at {applied:?}, snapshot at {:?}", found.last_log_id)));
        }
        db.delete_cf_opt(store.cf(Cf::Meta), KEY_INSTALLING, &synced)?;
        Ok(store.view().meta()?)
    }

    /// True when a crash interrupted an install (see the module doc).
    pub fn install_interrupted(store: &StateStore) -> Result<bool, rocksdb::Error> {
        Ok(store.db().get_cf(store.cf(Cf::Meta), KEY_INSTALLING)?.is_some())
    }
}
