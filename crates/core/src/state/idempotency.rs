//! The idempotency table: results of requests that carried an `Idempotency-Key`.
//!
//! A client that lost the answer to a write (timeout, 504, dropped connection) retries
//! with the same key; `apply` finds the remembered outcome and returns it, marked
//! `replayed`, without applying the command again. That turns "may have happened"
//! into "happened exactly once".
//!
//! The table is bounded two ways, both deterministic (counted in log entries, never in
//! wall-clock time, so every replica evicts the same records at the same entry): at
//! most `entries_max` records, and none older than `window_entries` log entries.
//! Records are numbered densely in arrival order (`Meta::idem_first_seq..idem_next_seq`)
//! so eviction pops the oldest by a point lookup instead of a scan.
//!
//! A key reused with a *different* command is refused rather than answered with the
//! other command's result: that is a client bug, and saying so is kinder than a
//! success that did not do what was asked. A record tells the command by a
//! fingerprint of its encoding; a record written before the upgrade to state format 3
//! holds the fingerprint of the version-2 encoding (`Fingerprint::V2`), so a retry
//! that crosses the upgrade is still recognised.

use serde::{Deserialize, Serialize};

use super::command::{Command, Outcome};
use super::store::{Batch, Cf, Meta, ViewError};
use super::v2;
use crate::codec;

/// How much the table remembers. Identical on every replica (not a runtime flag).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IdempotencyBounds {
    pub entries_max: u64,
    pub window_entries: u64,
}

/// A million records (about 100 MB of state at most) outlast the Rust client's 15 s
/// retry window up to about 65,000 keyed writes per second; the window of ten million
/// entries keeps a record at least that long at any write rate the log sustains.
impl Default for IdempotencyBounds {
    fn default() -> Self {
        Self { entries_max: 1_000_000, window_entries: 10_000_000 }
    }
}

/// Most records evicted while applying one entry: bounds the work per entry, and
/// suffices because each entry adds at most one record.
const EVICTIONS_PER_ENTRY_MAX: usize = 8;

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
struct Remembered {
    fingerprint: Fingerprint,
    index: u64,
    outcome: Outcome,
}

/// Which encoding of the command a record's fingerprint hashed.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
enum Fingerprint {
    Current(u64),
    /// Written before the upgrade to state format 3 (`v2::fingerprinted_bytes`).
    V2(u64),
}

/// A record as state format 2 (and 1) stored it.
#[derive(Deserialize)]
struct RememberedV2 {
    fingerprint: u64,
    index: u64,
    outcome: v2::Outcome,
}

/// Rewrites a record of state format 2 in the current format (`format_version`).
pub fn upgrade_record(bytes: &[u8]) -> Result<Vec<u8>, String> {
    let old: RememberedV2 = codec::decode(bytes).map_err(|e| format!("an idempotency record does not decode as version 2: {e}"))?;
    let record = Remembered { fingerprint: Fingerprint::V2(old.fingerprint), index: old.index, outcome: old.outcome.into() };
    codec::encode(&record).map_err(|e| e.to_string())
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
struct OrderRecord {
    key: String,
    index: u64,
}

pub enum Lookup {
    /// Never seen (or forgotten): apply the command.
    Fresh,
    /// Seen with the same command: this was its outcome.
    Replay(Outcome),
    /// Seen with another command.
    Reused,
}

/// The fingerprint of `command` (the envelope's leader stamp, which differs between
/// retries, is not part of it): stable across runs, replicas and retries.
pub fn fingerprint(command: &Command) -> Result<u64, ViewError> {
    Ok(fnv1a(&codec::encode(command)?))
}

fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325u64, |hash, byte| (hash ^ u64::from(*byte)).wrapping_mul(0x0000_0100_0000_01b3))
}

/// What the table says of `key` for `command`, whose `fingerprint` the caller took.
pub fn lookup(batch: &Batch<'_>, key: &str, command: &Command, fingerprint: u64) -> Result<Lookup, ViewError> {
    let Some(found) = batch.get_decoded::<Remembered>(Cf::Idem, key.as_bytes())? else {
        return Ok(Lookup::Fresh);
    };
    let same = match found.fingerprint {
        Fingerprint::Current(hash) => hash == fingerprint,
        Fingerprint::V2(hash) => hash == fnv1a(&v2::fingerprinted_bytes(command)?),
    };
    Ok(if same { Lookup::Replay(found.outcome) } else { Lookup::Reused })
}

pub fn remember(batch: &mut Batch<'_>, meta: &mut Meta, key: &str, fingerprint: u64, index: u64, outcome: &Outcome) -> Result<(), ViewError> {
    let seq = meta.idem_next_seq;
    meta.idem_next_seq += 1;
    let fingerprint = Fingerprint::Current(fingerprint);
    batch.put_encoded(Cf::Idem, key.as_bytes(), &Remembered { fingerprint, index, outcome: outcome.clone() })?;
    batch.put_encoded(Cf::IdemOrder, &seq.to_be_bytes(), &OrderRecord { key: key.to_string(), index })?;
    Ok(())
}

/// Forgets records that are too old or too many, as of applying entry `index`.
/// Called before a lookup (so an expired record is never replayed) and after a
/// record is added (so the count stays within `entries_max`).
pub fn evict(batch: &mut Batch<'_>, meta: &mut Meta, index: u64, bounds: IdempotencyBounds) -> Result<(), ViewError> {
    for _ in 0..EVICTIONS_PER_ENTRY_MAX {
        if meta.idem_first_seq == meta.idem_next_seq {
            return Ok(());
        }
        let seq_key = meta.idem_first_seq.to_be_bytes();
        let Some(oldest) = batch.get_decoded::<OrderRecord>(Cf::IdemOrder, &seq_key)? else {
            // Invariant: every sequence number in the window has its record.
            return Err(ViewError::Corrupt(format!("idempotency record {} is missing", meta.idem_first_seq)));
        };
        let Some(count) = meta.idem_next_seq.checked_sub(meta.idem_first_seq) else {
            return Err(ViewError::Corrupt(format!("idempotency window {}..{} is inverted", meta.idem_first_seq, meta.idem_next_seq)));
        };
        let expired = index.saturating_sub(oldest.index) > bounds.window_entries;
        if count <= bounds.entries_max && !expired {
            return Ok(());
        }
        batch.delete(Cf::IdemOrder, &seq_key);
        batch.delete(Cf::Idem, oldest.key.as_bytes());
        meta.idem_first_seq += 1;
    }
    Ok(())
}
