//! The recent history of key changes, for watches (`GET /v1/watch`).
//!
//! Every change to a key is recorded at the cluster revision it made, with the new
//! value (a put) or as a deletion (a delete, or a key that went with its lease). A
//! watcher reads it in revision order from any revision still held, so it sees every
//! change, without gaps, and learns clearly when it asked for one that is gone.
//!
//! The history is bounded (`REVISIONS_MAX` revisions and `BYTES_MAX` bytes, whichever
//! is reached first): the oldest revisions are dropped as new ones come, and
//! `Meta::history_first` says where it now starts. Both bounds are fixed constants, so
//! every replica keeps exactly the same history.
//!
//! Layout: `Cf::History` revision (big-endian) ++ key → `Event`; `Cf::HistorySizes`
//! revision → the bytes its events take, so dropping a revision needs no scan: its
//! events go with one range delete (which `apply` never reads back).

use serde::{Deserialize, Serialize};

use super::command::KeyMeta;
use super::store::{Batch, Cf, Meta, View, ViewError};
use crate::codec;

/// Most revisions the history holds (small in unit tests, to reach it).
#[cfg(not(test))]
pub const REVISIONS_MAX: u64 = 100_000;
#[cfg(test)]
pub const REVISIONS_MAX: u64 = 50;
/// Most bytes of events (keys and values) the history holds.
#[cfg(not(test))]
pub const BYTES_MAX: u64 = 256 << 20;
#[cfg(test)]
pub const BYTES_MAX: u64 = 64 << 10;
/// Bytes an event counts beyond its key and value.
const EVENT_OVERHEAD_BYTES: u64 = 64;

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub enum Change {
    Put { value: Vec<u8>, meta: KeyMeta, lease: Option<u64> },
    Delete,
}

/// One change to one key, as a watcher receives it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    pub revision: u64,
    pub key: String,
    pub change: Change,
}

fn revision_key(revision: u64) -> [u8; 8] {
    revision.to_be_bytes()
}

fn event_key(revision: u64, key: &str) -> Vec<u8> {
    let mut bytes = revision_key(revision).to_vec();
    bytes.extend_from_slice(key.as_bytes());
    bytes
}

/// Records that `key` changed at the current revision (`meta.revision`), then drops
/// the oldest revisions beyond the bounds.
pub fn record(batch: &mut Batch<'_>, meta: &mut Meta, key: &str, change: Change) -> Result<(), ViewError> {
    let revision = meta.revision;
    let encoded = codec::encode(&change)?;
    let bytes = key.len() as u64 + encoded.len() as u64 + EVENT_OVERHEAD_BYTES;
    batch.put(Cf::History, &event_key(revision, key), encoded);
    let size: u64 = batch.get_decoded(Cf::HistorySizes, &revision_key(revision))?.unwrap_or(0);
    batch.put_encoded(Cf::HistorySizes, &revision_key(revision), &(size + bytes))?;
    if meta.history_first == 0 {
        meta.history_first = revision;
    }
    meta.history_bytes += bytes;
    // Never drops the revision just written: a watcher can always start at the latest.
    while meta.history_first < revision && (revision - meta.history_first >= REVISIONS_MAX || meta.history_bytes > BYTES_MAX) {
        let first = meta.history_first;
        let size: u64 = batch.get_decoded(Cf::HistorySizes, &revision_key(first))?.unwrap_or(0);
        batch.delete(Cf::HistorySizes, &revision_key(first));
        batch.delete_range_unread(Cf::History, &revision_key(first), &revision_key(first + 1));
        meta.history_bytes = meta.history_bytes.saturating_sub(size);
        meta.history_first = first + 1;
    }
    Ok(())
}

/// What a read found: events and where to continue, or the first revision still
/// held when the one asked for is gone.
pub type HistoryRead = Result<(Vec<Event>, u64), u64>;

/// Most history records one read looks at (matching the prefix or not).
const SCANNED_MAX: usize = 10_000;

/// Events of keys starting with `prefix`, from revision `from` on, in revision (then
/// key) order, and the revision to continue from. A read stops at a revision boundary
/// once it has `limit` events or has looked at `SCANNED_MAX` records. `Err(first)` when
/// `from` is older than the history's first revision.
pub fn read(view: &View<'_>, meta: &Meta, prefix: &str, from: u64, limit: usize) -> Result<HistoryRead, ViewError> {
    // Before anything was ever recorded, the history starts at the next revision.
    let first = if meta.history_first == 0 { meta.revision + 1 } else { meta.history_first };
    if from < first {
        return Ok(Err(first));
    }
    let mut events = Vec::new();
    let mut continue_at = meta.revision + 1;
    let mut current = None;
    for (scanned, item) in view.iter_from(Cf::History, &revision_key(from)).enumerate() {
        let (stored, value) = item?;
        let Some((revision, key)) = stored.split_first_chunk::<8>() else {
            return Err(ViewError::Corrupt("short history key".into()));
        };
        let revision = u64::from_be_bytes(*revision);
        if revision > meta.revision {
            break;
        }
        if (events.len() >= limit || scanned >= SCANNED_MAX) && current != Some(revision) {
            continue_at = revision;
            break;
        }
        current = Some(revision);
        let key = std::str::from_utf8(key).map_err(|_| ViewError::Corrupt("a history key is not UTF-8".into()))?;
        if key.starts_with(prefix) {
            events.push(Event { revision, key: key.to_string(), change: codec::decode(&value)? });
        }
    }
    Ok(Ok((events, continue_at.max(from))))
}
