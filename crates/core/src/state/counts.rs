//! How many keys the state holds, and how many of them have an expiry: kept as keys
//! come and go, so that counting them (Redis's `DBSIZE`, `INFO keyspace`) reads one
//! record instead of every key.
//!
//! The counts are one record of the metadata family (`KEY_COUNTS`), changed in the
//! same batch as the keys. A database of a format before 4 has no such record: it is
//! counted once, as it is opened or installed (`recount`).

use serde::{Deserialize, Serialize};

use super::store::{Batch, Cf, StateStore, View, ViewError};
use crate::codec;

/// Where the counts are kept, in the metadata family.
pub const KEY_COUNTS: &[u8] = b"key_counts";

#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct KeyCounts {
    /// Strings and lists.
    pub keys: u64,
    /// Keys with an expiry (`expiry`).
    pub expiring: u64,
}

/// Adds `keys` and `expiring` (each -1, 0 or 1) to the counts.
pub fn add(batch: &mut Batch<'_>, keys: i64, expiring: i64) -> Result<(), ViewError> {
    if keys == 0 && expiring == 0 {
        return Ok(());
    }
    let mut counts: KeyCounts = batch.get_decoded(Cf::Meta, KEY_COUNTS)?.unwrap_or_default();
    counts.keys = counts.keys.saturating_add_signed(keys);
    counts.expiring = counts.expiring.saturating_add_signed(expiring);
    batch.put_encoded(Cf::Meta, KEY_COUNTS, &counts)
}

pub fn get(view: &View<'_>) -> Result<KeyCounts, ViewError> {
    Ok(view.get(Cf::Meta, KEY_COUNTS)?.map(|bytes| codec::decode(&bytes)).transpose()?.unwrap_or_default())
}

/// Counts the keys and expiries of `store` and records them (after an upgrade from a
/// format that did not keep them).
pub fn recount(store: &StateStore) -> Result<KeyCounts, ViewError> {
    let view = store.view();
    let count = |cf| view.iter_from(cf, &[]).try_fold(0u64, |count, item| item.map(|_| count + 1));
    let counts = KeyCounts { keys: count(Cf::Kv)? + count(Cf::Lists)?, expiring: count(Cf::KeyExpiry)? };
    store.db().put_cf(store.cf(Cf::Meta), KEY_COUNTS, codec::encode(&counts)?)?;
    Ok(counts)
}
