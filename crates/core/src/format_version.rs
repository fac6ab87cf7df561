//! Which version of its on-disk format each of a node's databases holds, and which
//! versions this binary reads.
//!
//! The state database and the log database each carry their version (a little-endian
//! `u32` at `FORMAT_VERSION_KEY` of their metadata family: raw bytes, so any later
//! binary can read it whatever became of `codec`). Opening checks it before anything
//! is decoded and refuses a version it does not read, saying what to do; a database
//! without one is either new or written before versions were stamped (that is, format
//! 1), and is stamped. The formats themselves are pinned in `tests/golden/`.
//!
//! The upgrade rule (docs/operations.md): a release that changes a format bumps its
//! version, reads the version before it and rewrites it at open (or as it applies),
//! so an upgrade between adjacent releases needs no other step. A downgrade across a
//! format change is refused. The rewrite (`Upgrade`) goes in atomic chunks, each
//! recording how far it got, and the new version is stamped with the last one, so a
//! crash during it resumes where it stopped.
//!
//! A snapshot carries the sender's state `format_version` with the rest of the meta
//! family, so an installed state is stamped with the version that wrote it; a release
//! that reads two versions upgrades what it installs as it upgrades at open.

use rocksdb::{ColumnFamily, DB, Direction, IteratorMode, WriteBatch};

pub const FORMAT_VERSION_KEY: &[u8] = b"format_version";
/// The last key an interrupted upgrade rewrote (in the metadata family).
const UPGRADE_PROGRESS_KEY: &[u8] = b"upgrade_progress";
/// Most bytes an upgrade rewrites in one atomic write.
const UPGRADE_CHUNK_BYTES: usize = 16 << 20;

/// One database's format: its current version, the oldest it reads, and the first
/// whose records need no rewrite (a later version only added to what may be written,
/// so upgrading from it is a new stamp).
pub struct Format {
    what: &'static str,
    current: u32,
    oldest: u32,
    rewritten_below: u32,
}

/// The state database (`state/`): records, keys and their layout. Version 2: the
/// idempotency table may hold transactions' outcomes. Version 3: outcomes grouped by
/// primitive, and each record says which encoding its fingerprint hashed. Version 4:
/// keys may have a time to live (two new families, `state::expiry`), the keys are
/// counted (`state::counts`), keys may hold lists (two new families, `state::list`),
/// and outcomes may be of format 4's commands. Version 5: keys may carry flags (a new
/// family, `state::flags`).
pub const STATE_FORMAT: Format = Format { what: "state database", current: 5, oldest: 1, rewritten_below: 3 };
/// The log database (`log/`): the vote, log ids and entries. Version 2: entries may
/// carry transactions. Version 3: commands grouped by primitive, the leader's stamp
/// in the request envelope. Version 4: entries may carry format 4's commands (puts
/// with a time to live, expiries, list commands). Version 5: a transaction may change
/// a key more than once, its operations applied in order (`txn::Txn::check_shape`),
/// and puts may set a key's flags (`KvCommand::PutWithFlags`).
pub const LOG_FORMAT: Format = Format { what: "log database", current: 5, oldest: 1, rewritten_below: 3 };

/// How a database of an older version becomes current: every value of `family` is
/// rewritten by `rewrite` (versions 1 and 2 differ only in what version 2 added, so
/// one rewrite serves both).
pub struct Upgrade<'a> {
    pub family: &'a ColumnFamily,
    pub rewrite: &'a Rewrite,
}

/// The upgrade of one stored value, or why it cannot be upgraded.
pub type Rewrite = dyn Fn(&[u8]) -> Result<Vec<u8>, String>;

#[derive(Debug, thiserror::Error)]
pub enum FormatError {
    #[error("the {what} is format version {found}, but this binary reads versions {oldest} to {current}: {advice} (docs/operations.md, upgrades)")]
    Unknown { what: &'static str, found: u32, oldest: u32, current: u32, advice: &'static str },
    #[error("the {what}'s format version is not 4 bytes ({len} found): the data directory is damaged or not Concord's")]
    Malformed { what: &'static str, len: usize },
    #[error("cannot read or stamp the {what}'s format version: {source}")]
    Store { what: &'static str, source: rocksdb::Error },
    #[error("cannot upgrade the {what} from format version {from}: {reason}")]
    Upgrade { what: &'static str, from: u32, reason: String },
}

impl Format {
    /// The version this binary writes.
    pub fn current(&self) -> u32 {
        self.current
    }

    /// Checks the version stamped in `family` of `db`, or stamps the current one on a
    /// database that has none; a database of an older version this binary reads is
    /// upgraded first (`upgrade`). Returns the version found.
    pub fn check_or_stamp(&self, db: &DB, family: &ColumnFamily, upgrade: Upgrade<'_>) -> Result<u32, FormatError> {
        let store = |source| FormatError::Store { what: self.what, source };
        let found = match db.get_cf(family, FORMAT_VERSION_KEY).map_err(store)? {
            Some(bytes) => u32::from_le_bytes(bytes.as_slice().try_into().map_err(|_| FormatError::Malformed { what: self.what, len: bytes.len() })?),
            // Written before versions were stamped (version 1), unless there is nothing
            // to upgrade: then it is new, or holds nothing of the changed formats.
            None if db.iterator_cf(upgrade.family, IteratorMode::Start).next().is_some() => 1,
            None => {
                db.put_cf(family, FORMAT_VERSION_KEY, self.current.to_le_bytes()).map_err(store)?;
                db.flush_wal(true).map_err(store)?;
                return Ok(self.current);
            }
        };
        if found == self.current {
            return Ok(found);
        }
        if (self.oldest..self.current).contains(&found) {
            let rewritten = self.upgrade(db, family, found, upgrade)?;
            tracing::info!(what = self.what, from = found, to = self.current, rewritten, "upgraded the format");
            return Ok(found);
        }
        let advice = if found > self.current {
            "it was written by a newer Concord; run that release (or a newer one) on this data directory"
        } else {
            "it was written by a release too old to upgrade from directly; upgrade through the releases in between"
        };
        Err(FormatError::Unknown { what: self.what, found, oldest: self.oldest, current: self.current, advice })
    }
}

impl Format {
    /// Rewrites every value of `upgrade.family` (unless `from` needs no rewrite) and
    /// stamps the current version (see the module doc); returns how many values it
    /// rewrote.
    fn upgrade(&self, db: &DB, meta: &ColumnFamily, from: u32, upgrade: Upgrade<'_>) -> Result<u64, FormatError> {
        let store = |source| FormatError::Store { what: self.what, source };
        if from >= self.rewritten_below {
            db.put_cf(meta, FORMAT_VERSION_KEY, self.current.to_le_bytes()).map_err(store)?;
            db.flush_wal(true).map_err(store)?;
            return Ok(0);
        }
        let resume = db.get_cf(meta, UPGRADE_PROGRESS_KEY).map_err(store)?;
        let start = match &resume {
            Some(key) => IteratorMode::From(key, Direction::Forward),
            None => IteratorMode::Start,
        };
        let mut rewritten = 0;
        let mut batch = WriteBatch::default();
        // An iterator reads the database as it was when it began, so the writes below
        // do not disturb it.
        for item in db.iterator_cf(upgrade.family, start) {
            let (key, value) = item.map_err(store)?;
            if resume.as_deref() == Some(&key[..]) {
                continue;
            }
            let value = (upgrade.rewrite)(&value).map_err(|reason| FormatError::Upgrade { what: self.what, from, reason })?;
            batch.put_cf(upgrade.family, &key, value);
            rewritten += 1;
            if batch.size_in_bytes() >= UPGRADE_CHUNK_BYTES {
                batch.put_cf(meta, UPGRADE_PROGRESS_KEY, &key);
                db.write(std::mem::take(&mut batch)).map_err(store)?;
            }
        }
        batch.put_cf(meta, FORMAT_VERSION_KEY, self.current.to_le_bytes());
        batch.delete_cf(meta, UPGRADE_PROGRESS_KEY);
        db.write(batch).map_err(store)?;
        db.flush_wal(true).map_err(store)?;
        Ok(rewritten)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn open(dir: &std::path::Path) -> DB {
        let mut options = rocksdb::Options::default();
        options.create_if_missing(true);
        options.create_missing_column_families(true);
        DB::open_cf(&options, dir, ["meta", "records"]).unwrap()
    }

    /// The test's upgrade: a record of the old format is lower case; one that is not
    /// cannot be upgraded.
    fn to_upper(value: &[u8]) -> Result<Vec<u8>, String> {
        match value.iter().all(u8::is_ascii_lowercase) {
            true => Ok(value.to_ascii_uppercase()),
            false => Err(format!("{value:?} is not of the old format")),
        }
    }

    fn records(db: &DB) -> Vec<String> {
        let family = db.cf_handle("records").unwrap();
        db.iterator_cf(family, IteratorMode::Start).map(|item| String::from_utf8(item.unwrap().1.to_vec()).unwrap()).collect()
    }

    #[test]
    fn a_database_is_stamped_once_upgraded_from_an_older_version_and_refused_in_one_not_read_here() {
        let dir = tempfile::tempdir().unwrap();
        let db = open(dir.path());
        let (meta, family) = (db.cf_handle("meta").unwrap(), db.cf_handle("records").unwrap());
        let upgrade = || Upgrade { family, rewrite: &to_upper };
        let stamped = || db.get_cf(meta, FORMAT_VERSION_KEY).unwrap();
        let current = 5u32.to_le_bytes().to_vec();
        // New: stamped with the current one.
        assert_eq!(STATE_FORMAT.check_or_stamp(&db, meta, upgrade()).unwrap(), 5);
        assert_eq!(stamped(), Some(current.clone()));
        // From before versions were stamped, with records: version 1, upgraded.
        db.put_cf(family, "z", "zz").unwrap();
        db.delete_cf(meta, FORMAT_VERSION_KEY).unwrap();
        assert_eq!(STATE_FORMAT.check_or_stamp(&db, meta, upgrade()).unwrap(), 1);
        assert_eq!((records(&db), stamped()), (vec!["ZZ".to_string()], Some(current.clone())));
        db.delete_cf(family, "z").unwrap();
        // An older version it reads: every record rewritten, then stamped.
        for key in ["a", "b", "c"] {
            db.put_cf(family, key, key.repeat(2)).unwrap();
        }
        db.put_cf(meta, FORMAT_VERSION_KEY, 2u32.to_le_bytes()).unwrap();
        assert_eq!(STATE_FORMAT.check_or_stamp(&db, meta, upgrade()).unwrap(), 2);
        assert_eq!((records(&db), stamped()), (vec!["AA".to_string(), "BB".into(), "CC".into()], Some(current.clone())));
        assert_eq!(STATE_FORMAT.check_or_stamp(&db, meta, upgrade()).unwrap(), 5, "nothing to do the second time");
        // A version whose records are current (3 and 4 only lack what came later):
        // stamped, nothing rewritten.
        db.put_cf(family, "e", "ee").unwrap();
        db.put_cf(meta, FORMAT_VERSION_KEY, 3u32.to_le_bytes()).unwrap();
        assert_eq!(STATE_FORMAT.check_or_stamp(&db, meta, upgrade()).unwrap(), 3);
        assert_eq!((records(&db), stamped()), (vec!["AA".to_string(), "BB".into(), "CC".into(), "ee".into()], Some(current.clone())));
        db.delete_cf(family, "e").unwrap();
        // An upgrade that stopped after "b" resumes after it (rewriting "a" or "b"
        // again would fail: they are upper case already).
        db.put_cf(family, "c", "cc").unwrap();
        db.put_cf(family, "d", "dd").unwrap();
        db.put_cf(meta, FORMAT_VERSION_KEY, 1u32.to_le_bytes()).unwrap();
        db.put_cf(meta, UPGRADE_PROGRESS_KEY, "b").unwrap();
        assert_eq!(STATE_FORMAT.check_or_stamp(&db, meta, upgrade()).unwrap(), 1);
        assert_eq!(records(&db), ["AA", "BB", "CC", "DD"]);
        assert_eq!(db.get_cf(meta, UPGRADE_PROGRESS_KEY).unwrap(), None);
        // A record that does not upgrade: refused, and the version stays.
        db.put_cf(meta, FORMAT_VERSION_KEY, 2u32.to_le_bytes()).unwrap();
        let refused = STATE_FORMAT.check_or_stamp(&db, meta, upgrade()).unwrap_err().to_string();
        assert!(refused.contains("cannot upgrade the state database from format version 2") && refused.contains("not of the old format"), "{refused}");
        assert_eq!(stamped(), Some(2u32.to_le_bytes().to_vec()));
        for (stamped, says) in [(6u32, "newer Concord"), (0, "too old")] {
            db.put_cf(meta, FORMAT_VERSION_KEY, stamped.to_le_bytes()).unwrap();
            let refused = STATE_FORMAT.check_or_stamp(&db, meta, upgrade()).unwrap_err().to_string();
            assert!(refused.contains(&format!("format version {stamped}")) && refused.contains(says), "{refused}");
        }
        db.put_cf(meta, FORMAT_VERSION_KEY, b"v1").unwrap();
        assert!(matches!(STATE_FORMAT.check_or_stamp(&db, meta, upgrade()), Err(FormatError::Malformed { len: 2, .. })));
    }
}
