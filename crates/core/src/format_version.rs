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
//! format change is refused.
//!
//! A snapshot carries the sender's state `format_version` with the rest of the meta
//! family, so an installed state is stamped with the version that wrote it; a release
//! that reads two versions upgrades what it installs as it upgrades at open.

use rocksdb::{ColumnFamily, DB};

pub const FORMAT_VERSION_KEY: &[u8] = b"format_version";

/// One database's format: its current version, and the oldest it reads.
pub struct Format {
    what: &'static str,
    current: u32,
    oldest: u32,
}

/// The state database (`state/`): records, keys and their layout. Version 2: the
/// idempotency table may hold transactions' outcomes (`Outcome::Txn`).
pub const STATE_FORMAT: Format = Format { what: "state database", current: 2, oldest: 1 };
/// The log database (`log/`): the vote, log ids and entries. Version 2: entries may
/// carry transactions (`Command::Txn`).
pub const LOG_FORMAT: Format = Format { what: "log database", current: 2, oldest: 1 };

#[derive(Debug, thiserror::Error)]
pub enum FormatError {
    #[error("the {what} is format version {found}, but this binary reads versions {oldest} to {current}: {advice} (docs/operations.md, upgrades)")]
    Unknown { what: &'static str, found: u32, oldest: u32, current: u32, advice: &'static str },
    #[error("the {what}'s format version is not 4 bytes ({len} found): the data directory is damaged or not Concord's")]
    Malformed { what: &'static str, len: usize },
    #[error("cannot read or stamp the {what}'s format version: {source}")]
    Store { what: &'static str, source: rocksdb::Error },
}

impl Format {
    /// The version this binary writes.
    pub fn current(&self) -> u32 {
        self.current
    }

    /// Checks the version stamped in `family` of `db`, or stamps the current one on a
    /// database that has none or an older one it reads. Returns the version now stamped.
    pub fn check_or_stamp(&self, db: &DB, family: &ColumnFamily) -> Result<u32, FormatError> {
        let store = |source| FormatError::Store { what: self.what, source };
        let found = match db.get_cf(family, FORMAT_VERSION_KEY).map_err(store)? {
            Some(bytes) => u32::from_le_bytes(bytes.as_slice().try_into().map_err(|_| FormatError::Malformed { what: self.what, len: bytes.len() })?),
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
            // Version 1 is version 2 without transactions: nothing to rewrite. Stamped
            // now, so the previous release refuses the database from here on instead
            // of failing on the first transaction it cannot decode.
            db.put_cf(family, FORMAT_VERSION_KEY, self.current.to_le_bytes()).map_err(store)?;
            db.flush_wal(true).map_err(store)?;
            tracing::info!(what = self.what, from = found, to = self.current, "upgraded the format version");
            return Ok(self.current);
        }
        let advice = if found > self.current {
            "it was written by a newer Concord; run that release (or a newer one) on this data directory"
        } else {
            "it was written by a release too old to upgrade from directly; upgrade through the releases in between"
        };
        Err(FormatError::Unknown { what: self.what, found, oldest: self.oldest, current: self.current, advice })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_database_is_stamped_once_and_refused_in_a_version_not_read_here() {
        let dir = tempfile::tempdir().unwrap();
        let mut options = rocksdb::Options::default();
        options.create_if_missing(true);
        options.create_missing_column_families(true);
        let db = DB::open_cf(&options, dir.path(), ["meta"]).unwrap();
        let meta = db.cf_handle("meta").unwrap();
        // New (or from before versions were stamped): stamped with the current one.
        assert_eq!(STATE_FORMAT.check_or_stamp(&db, meta).unwrap(), 2);
        assert_eq!(db.get_cf(meta, FORMAT_VERSION_KEY).unwrap(), Some(2u32.to_le_bytes().to_vec()));
        assert_eq!(STATE_FORMAT.check_or_stamp(&db, meta).unwrap(), 2);
        // The previous version is read, and upgraded.
        db.put_cf(meta, FORMAT_VERSION_KEY, 1u32.to_le_bytes()).unwrap();
        assert_eq!(STATE_FORMAT.check_or_stamp(&db, meta).unwrap(), 2);
        assert_eq!(db.get_cf(meta, FORMAT_VERSION_KEY).unwrap(), Some(2u32.to_le_bytes().to_vec()));
        for (stamped, says) in [(3u32, "newer Concord"), (0, "too old")] {
            db.put_cf(meta, FORMAT_VERSION_KEY, stamped.to_le_bytes()).unwrap();
            let refused = STATE_FORMAT.check_or_stamp(&db, meta).unwrap_err().to_string();
            assert!(refused.contains(&format!("format version {stamped}")) && refused.contains(says), "{refused}");
        }
        db.put_cf(meta, FORMAT_VERSION_KEY, b"v1").unwrap();
        assert!(matches!(STATE_FORMAT.check_or_stamp(&db, meta), Err(FormatError::Malformed { len: 2, .. })));
    }
}
