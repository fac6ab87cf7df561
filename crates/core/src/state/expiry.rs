//! Per-key time to live on the replicated clock.
//!
//! A put may give its key a TTL (`Ttl::After`): the key then expires at
//! `max(clock, now_ms) + ttl_ms`, where `now_ms` is the leader's stamp of the put, the
//! rule leases follow (`lease`), so a key never expires earlier than its TTL after the
//! put that set it, and a leader change neither resets nor shortens it. The key is
//! deleted by the first tick whose clock reaches its expiry (a watch sees the delete),
//! in order of expiry, at most `EXPIRIES_PER_TICK_MAX` keys a tick.
//!
//! A key's expiry (when, and the TTL that set it) lives beside its record, not in it
//! (`Cf::KeyExpiry`, and
//! `Cf::ExpiryOrder` to find the due ones in order), so keys without one cost nothing
//! and the record's format is unchanged. Every way a key changes says what becomes of
//! its expiry: a put clears it unless it sets one or keeps it (`Ttl`), a delete clears
//! it.

use serde::{Deserialize, Serialize};

use super::command::{Outcome, Precondition};
use super::counts;
use super::kv::{self, KvOutcome, RevisionAt};
use super::store::{Batch, Cf, Meta, View, ViewError};

/// Most keys one tick expires; the rest go on the next tick. Bounds the work of
/// applying one entry.
pub const EXPIRIES_PER_TICK_MAX: usize = 10_000;

/// What a put does to its key's expiry.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ttl {
    /// No expiry (a plain put: Redis's `SET`, `PERSIST`).
    Clear,
    /// The expiry the key has, if any (Redis's `KEEPTTL`, `INCR`, `APPEND`).
    Keep,
    /// Expires `ttl_ms` after the put, on the replicated clock.
    After { ttl_ms: u64 },
}

impl Ttl {
    /// Whether applying it reads the clock (the leader then stamps the command).
    pub fn reads_clock(self) -> bool {
        matches!(self, Ttl::After { .. })
    }
}

/// When a key expires, and the TTL that set it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Expiry {
    /// On the replicated clock.
    pub at_ms: u64,
    pub ttl_ms: u64,
}

impl Expiry {
    /// How long it has left at `clock_ms`: 0 when due (the key goes at the next
    /// tick). The clock of a read lags the leader's stamp by up to a tick, so this
    /// never reports less than is left, and never more than the TTL set.
    pub fn left_ms(&self, clock_ms: u64) -> u64 {
        self.at_ms.saturating_sub(clock_ms).min(self.ttl_ms)
    }

    fn encode(&self) -> Vec<u8> {
        [self.at_ms.to_be_bytes(), self.ttl_ms.to_be_bytes()].concat()
    }

    fn decode(bytes: &[u8]) -> Result<Self, ViewError> {
        let corrupt = || ViewError::Corrupt(format!("a key expiry of {} bytes", bytes.len()));
        let (at, ttl) = bytes.split_at_checked(8).ok_or_else(corrupt)?;
        Ok(Self { at_ms: decode_ms(at)?, ttl_ms: decode_ms(ttl)? })
    }
}

/// What a put stamped `now_ms` at `clock_ms` makes of its key's expiry under `ttl`:
/// `None` to keep the one it has, `Some(None)` for none.
pub fn after_put(ttl: Ttl, clock_ms: u64, now_ms: u64) -> Option<Option<Expiry>> {
    match ttl {
        Ttl::Clear => Some(None),
        Ttl::Keep => None,
        Ttl::After { ttl_ms } => Some(Some(Expiry { at_ms: clock_ms.max(now_ms).saturating_add(ttl_ms), ttl_ms })),
    }
}

fn order_key(expires_at_ms: u64, key: &str) -> Vec<u8> {
    let mut order = expires_at_ms.to_be_bytes().to_vec();
    order.extend_from_slice(key.as_bytes());
    order
}

fn decode_ms(bytes: &[u8]) -> Result<u64, ViewError> {
    let bytes: [u8; 8] = bytes.try_into().map_err(|_| ViewError::Corrupt(format!("a key expiry of {} bytes", bytes.len())))?;
    Ok(u64::from_be_bytes(bytes))
}

/// When `key` expires, as `batch` sees it.
fn pending(batch: &Batch<'_>, key: &str) -> Result<Option<Expiry>, ViewError> {
    batch.get(Cf::KeyExpiry, key.as_bytes())?.map(|bytes| Expiry::decode(&bytes)).transpose()
}

/// When `key` expires (`None`: it does not).
pub fn get(view: &View<'_>, key: &str) -> Result<Option<Expiry>, ViewError> {
    view.get(Cf::KeyExpiry, key.as_bytes())?.map(|bytes| Expiry::decode(&bytes)).transpose()
}

/// Gives `key` this expiry, or none.
pub fn set(batch: &mut Batch<'_>, key: &str, expiry: Option<Expiry>) -> Result<(), ViewError> {
    let current = pending(batch, key)?;
    if current == expiry {
        return Ok(());
    }
    if let Some(current) = current {
        batch.delete(Cf::ExpiryOrder, &order_key(current.at_ms, key));
    }
    counts::add(batch, 0, i64::from(expiry.is_some()) - i64::from(current.is_some()))?;
    match expiry {
        Some(expiry) => {
            batch.put(Cf::KeyExpiry, key.as_bytes(), expiry.encode());
            batch.put(Cf::ExpiryOrder, &order_key(expiry.at_ms, key), Vec::new());
        }
        None => batch.delete(Cf::KeyExpiry, key.as_bytes()),
    }
    Ok(())
}

/// The earliest key expiry, if any (a deadline of the ticker's).
pub fn next(view: &View<'_>) -> Result<Option<u64>, ViewError> {
    match view.iter_from(Cf::ExpiryOrder, &[]).next() {
        None => Ok(None),
        Some(item) => {
            let (order, _) = item?;
            order.get(..8).map(decode_ms).transpose()
        }
    }
}

/// At a tick: deletes the keys whose expiry the clock has reached, oldest first, all
/// at one new revision; how many went.
pub fn tick(batch: &mut Batch<'_>, meta: &mut Meta) -> Result<u64, ViewError> {
    let mut due = Vec::new();
    for item in batch.scan(Cf::ExpiryOrder, &[]) {
        let (order, _) = item?;
        let (at, key) = order.split_at_checked(8).ok_or_else(|| ViewError::Corrupt(format!("a key expiry order of {} bytes", order.len())))?;
        if decode_ms(at)? > meta.clock_ms || due.len() == EXPIRIES_PER_TICK_MAX {
            break;
        }
        let key = String::from_utf8(key.to_vec()).map_err(|_| ViewError::Corrupt("an expiring key is not UTF-8".to_string()))?;
        due.push(key);
    }
    let at = RevisionAt::Next.shared(meta);
    for key in &due {
        // A delete of the key, whatever it holds (`kv`).
        if !matches!(kv::apply_delete(batch, meta, at, key, Precondition::None)?, Outcome::Kv(KvOutcome::Deleted { .. })) {
            return Err(ViewError::Corrupt(format!("key {key:?} has an expiry but no record")));
        }
    }
    Ok(due.len() as u64)
}
