//! The replicated clock and leases.
//!
//! A replicated state machine cannot read a clock, so time is an entry: the leader
//! proposes `Tick { advance_ms }` with the time its own *monotonic* clock measured since
//! its previous tick (or since it became leader), and `tick` adds it to `Meta::clock_ms`.
//! A new leader starts measuring when it takes over, so the clock pauses during an
//! election and never jumps; committed ticks never cover overlapping stretches of real
//! time (a deposed leader's tick can commit only through a later leader that already
//! held it when it was elected, so the tick was proposed before that leader took over
//! and started measuring). The replicated clock therefore runs no faster than real time.
//!
//! The clock moves only at ticks, but real time does not wait for them: when a grant or
//! keep-alive is applied, time may have passed since the last tick that the *next* tick
//! will count. So the leader stamps those commands with `now_ms`, its own reading of
//! the replicated time (ticks it has proposed plus the time since the last one), and
//! a lease expires at `max(clock, now_ms) + ttl`. `now_ms` is never below the clock
//! value that will eventually cover that instant (the leader starts stamping only
//! after it has applied every earlier term's ticks), so with the clock never faster
//! than real time: a lease never expires earlier than its TTL after the keep-alive
//! that last renewed it was sent.
//!
//! A lease's id is the log index of the entry that granted it: unique, deterministic
//! and increasing. What is attached to a lease is listed under it (`Cf::LeaseKeys`):
//! keys, deleted when it ends, and locks it holds or waits for, released (to the next
//! waiter) when it ends; both in the same entry that ends it. Leases are indexed by
//! expiry (`Cf::LeaseExpiry`) so a tick finds what it ends in order, without a scan.

use std::fmt;

use serde::{Deserialize, Serialize};

use super::access::Access;
use super::auth::Role;
use super::command::{Outcome, Rejection, Stamp};
use super::kv::{self, KvRecord, RevisionAt};
use super::lock;
use super::ring;
use super::session;
use super::store::{Batch, Cf, Meta, View, ViewError};
use crate::codec;

/// Most leases the cluster holds (fixed, so every replica refuses the same grant).
pub const LEASES_MAX: u64 = 1_000_000;
/// Most keys attached to one lease.
pub const KEYS_PER_LEASE_MAX: u64 = 10_000;
/// Most locks one lease holds or waits for, with its ring memberships.
pub const LOCKS_PER_LEASE_MAX: u64 = 1_000;
/// A tick ends no more leases once it has let go of this many attachments; the rest
/// end on the next tick. With the per-lease bounds, one entry's work stays under
/// about `2 * ATTACHMENTS_PER_TICK_MAX` deletes.
pub const ATTACHMENTS_PER_TICK_MAX: u64 = KEYS_PER_LEASE_MAX + LOCKS_PER_LEASE_MAX;
/// Most leases one tick ends; the rest end on the next tick, which the ticker then
/// proposes at once. Bounds the work of applying one entry.
pub const EXPIRIES_PER_TICK_MAX: usize = 10_000;

#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
pub struct LeaseRecord {
    pub ttl_ms: u64,
    /// On the replicated clock.
    pub expires_at_ms: u64,
    pub key_count: u64,
    /// Locks held or waited for, and ring memberships (bounded together by
    /// `LOCKS_PER_LEASE_MAX`).
    pub lock_count: u64,
}

/// What an attachment is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Attached {
    Key = 0,
    Lock = 1,
    /// A ring membership, named `ring::attachment(ring, member)`.
    RingMember = 2,
    /// A key held by the lease's session (`session`). Format 5.
    HeldKey = 3,
}

fn id_key(id: u64) -> [u8; 8] {
    id.to_be_bytes()
}

fn expiry_key(expires_at_ms: u64, id: u64) -> [u8; 16] {
    let mut key = [0u8; 16];
    key[..8].copy_from_slice(&expires_at_ms.to_be_bytes());
    key[8..].copy_from_slice(&id.to_be_bytes());
    key
}

fn parse_expiry_key(key: &[u8]) -> Result<(u64, u64), ViewError> {
    let bytes: [u8; 16] = key.try_into().map_err(|_| ViewError::Corrupt(format!("lease expiry key of {} bytes", key.len())))?;
    let (at, id) = bytes.split_at(8);
    Ok((u64::from_be_bytes(at.try_into().unwrap_or_default()), u64::from_be_bytes(id.try_into().unwrap_or_default())))
}

fn item_key(id: u64, kind: Attached, name: &str) -> Vec<u8> {
    let mut item = id_key(id).to_vec();
    item.push(kind as u8);
    item.extend_from_slice(name.as_bytes());
    item
}

/// Splits an attachment key into its kind and name (after the 8-byte lease id).
fn parse_item(item: &[u8]) -> Result<(Attached, String), ViewError> {
    let kind = match item.get(8) {
        Some(0) => Attached::Key,
        Some(1) => Attached::Lock,
        Some(2) => Attached::RingMember,
        Some(3) => Attached::HeldKey,
        other => return Err(ViewError::Corrupt(format!("lease attachment of kind {other:?}"))),
    };
    let name = String::from_utf8(item[9..].to_vec()).map_err(|_| ViewError::Corrupt("a lease attachment is not UTF-8".into()))?;
    Ok((kind, name))
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub enum LeaseCommand {
    /// Start a lease of `ttl_ms` from the envelope's `now_ms`; its id is the entry's
    /// log index.
    Grant { ttl_ms: u64 },
    /// Restart a lease's TTL from the envelope's `now_ms`.
    KeepAlive { id: u64 },
    /// End a lease now, deleting what is attached to it.
    Revoke { id: u64 },
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub enum LeaseOutcome {
    /// A lease exists (granted or kept alive) and expires at `expires_at_ms` on the
    /// replicated clock unless kept alive again.
    Alive { id: u64, ttl_ms: u64, expires_at_ms: u64 },
    /// A lease ended; `deleted_keys` keys went with it (at `revision`).
    Revoked { id: u64, deleted_keys: u64, revision: u64 },
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub enum LeaseRejection {
    /// No such lease (never granted, expired or revoked).
    NotFound { id: u64 },
    /// The cluster holds its maximum number of leases, or this lease its maximum
    /// number of attached keys or locks.
    Limit { limit: u64 },
}

impl LeaseCommand {
    /// Leases carry no name: any `write` token may use them.
    pub fn access(&self) -> Access {
        Access::unnamed(Role::Write)
    }

    pub fn reads_clock(&self) -> bool {
        matches!(self, LeaseCommand::Grant { .. } | LeaseCommand::KeepAlive { .. })
    }
}

impl fmt::Display for LeaseCommand {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LeaseCommand::Grant { ttl_ms } => write!(f, "grant lease of {ttl_ms} ms"),
            LeaseCommand::KeepAlive { id } => write!(f, "keep lease {id} alive"),
            LeaseCommand::Revoke { id } => write!(f, "revoke lease {id}"),
        }
    }
}

pub fn apply(batch: &mut Batch<'_>, meta: &mut Meta, stamp: Stamp, command: LeaseCommand) -> Result<Outcome, ViewError> {
    match command {
        LeaseCommand::Grant { ttl_ms } => grant(batch, meta, stamp.index, ttl_ms, stamp.now_ms),
        LeaseCommand::KeepAlive { id } => keep_alive(batch, meta, id, stamp.now_ms),
        LeaseCommand::Revoke { id } => revoke(batch, meta, RevisionAt::Next, id, stamp.index),
    }
}

pub fn record(batch: &Batch<'_>, id: u64) -> Result<Option<LeaseRecord>, ViewError> {
    batch.get_decoded(Cf::Leases, &id_key(id))
}

/// Lease `id`'s record as `view` sees it.
pub fn read(view: &View<'_>, id: u64) -> Result<Option<LeaseRecord>, ViewError> {
    view.get_decoded(Cf::Leases, &id_key(id))
}

fn save(batch: &mut Batch<'_>, id: u64, lease: &LeaseRecord) -> Result<(), ViewError> {
    batch.put_encoded(Cf::Leases, &id_key(id), lease)
}

/// When a lease stamped `now_ms` with `ttl_ms` ends (see the module doc).
fn expiry(meta: &Meta, now_ms: u64, ttl_ms: u64) -> u64 {
    meta.clock_ms.max(now_ms).saturating_add(ttl_ms)
}

fn grant(batch: &mut Batch<'_>, meta: &mut Meta, id: u64, ttl_ms: u64, now_ms: u64) -> Result<Outcome, ViewError> {
    if meta.lease_count >= LEASES_MAX {
        return Ok(LeaseRejection::Limit { limit: LEASES_MAX }.into());
    }
    let expires_at_ms = expiry(meta, now_ms, ttl_ms);
    save(batch, id, &LeaseRecord { ttl_ms, expires_at_ms, key_count: 0, lock_count: 0 })?;
    batch.put(Cf::LeaseExpiry, &expiry_key(expires_at_ms, id), Vec::new());
    meta.lease_count += 1;
    Ok(LeaseOutcome::Alive { id, ttl_ms, expires_at_ms }.into())
}

fn keep_alive(batch: &mut Batch<'_>, meta: &Meta, id: u64, now_ms: u64) -> Result<Outcome, ViewError> {
    let Some(mut lease) = record(batch, id)? else {
        return Ok(LeaseRejection::NotFound { id }.into());
    };
    batch.delete(Cf::LeaseExpiry, &expiry_key(lease.expires_at_ms, id));
    // Never shortens a lease (a new leader's reading may trail its predecessor's).
    lease.expires_at_ms = lease.expires_at_ms.max(expiry(meta, now_ms, lease.ttl_ms));
    batch.put(Cf::LeaseExpiry, &expiry_key(lease.expires_at_ms, id), Vec::new());
    save(batch, id, &lease)?;
    Ok(LeaseOutcome::Alive { id, ttl_ms: lease.ttl_ms, expires_at_ms: lease.expires_at_ms }.into())
}

/// Moves `key` from lease `from` to lease `to` (either may be none).
pub fn reattach(batch: &mut Batch<'_>, key: &str, from: Option<u64>, to: Option<u64>) -> Result<(), ViewError> {
    if from == to {
        return Ok(());
    }
    if let Some(id) = from {
        detach(batch, id, Attached::Key, key)?;
    }
    if let Some(id) = to {
        attach(batch, id, Attached::Key, key)?;
    }
    Ok(())
}

/// The counter an attachment of `kind` is bounded by: keys, or locks and ring members.
fn count_of(lease: &mut LeaseRecord, kind: Attached) -> &mut u64 {
    match kind {
        Attached::Key | Attached::HeldKey => &mut lease.key_count,
        Attached::Lock | Attached::RingMember => &mut lease.lock_count,
    }
}

fn is_key(kind: Attached) -> bool {
    matches!(kind, Attached::Key | Attached::HeldKey)
}

/// Checks that lease `id` exists and can take one more attachment of `kind`.
pub fn check_attach_kind(batch: &Batch<'_>, id: u64, kind: Attached) -> Result<Result<(), Rejection>, ViewError> {
    Ok(match record(batch, id)? {
        None => Err(LeaseRejection::NotFound { id }.into()),
        Some(lease) if is_key(kind) && lease.key_count >= KEYS_PER_LEASE_MAX => Err(LeaseRejection::Limit { limit: KEYS_PER_LEASE_MAX }.into()),
        Some(lease) if !is_key(kind) && lease.lock_count >= LOCKS_PER_LEASE_MAX => Err(LeaseRejection::Limit { limit: LOCKS_PER_LEASE_MAX }.into()),
        Some(_) => Ok(()),
    })
}

/// Attaches `name` of `kind` to lease `id`; check first (`check_attach_kind`).
pub fn attach(batch: &mut Batch<'_>, id: u64, kind: Attached, name: &str) -> Result<(), ViewError> {
    let mut lease = record(batch, id)?.ok_or_else(|| ViewError::Corrupt(format!("attaching to missing lease {id}")))?;
    batch.put(Cf::LeaseKeys, &item_key(id, kind, name), Vec::new());
    *count_of(&mut lease, kind) += 1;
    save(batch, id, &lease)
}

/// Detaches `name` of `kind` from lease `id`.
pub fn detach(batch: &mut Batch<'_>, id: u64, kind: Attached, name: &str) -> Result<(), ViewError> {
    if let Some(mut lease) = record(batch, id)? {
        batch.delete(Cf::LeaseKeys, &item_key(id, kind, name));
        let count = count_of(&mut lease, kind);
        *count = count.saturating_sub(1);
        save(batch, id, &lease)?;
    }
    Ok(())
}

/// Attaches lock `name` to lease `id` (held or waited for), within the per-lease bound.
pub fn attach_lock(batch: &mut Batch<'_>, id: u64, name: &str) -> Result<Result<(), Rejection>, ViewError> {
    if let Err(rejection) = check_attach_kind(batch, id, Attached::Lock)? {
        return Ok(Err(rejection));
    }
    attach(batch, id, Attached::Lock, name)?;
    Ok(Ok(()))
}

/// Ends lease `id`: deletes its keys and lets go of its locks (entry `index` grants
/// them to their next waiters).
fn end(batch: &mut Batch<'_>, meta: &mut Meta, at: RevisionAt, id: u64, lease: &LeaseRecord, index: u64) -> Result<u64, ViewError> {
    let prefix = id_key(id);
    // All the keys a lease takes with it go at one new revision.
    let at = at.shared(meta);
    let mut deleted = 0;
    for item in batch.scan(Cf::LeaseKeys, &prefix) {
        let (item, _) = item?;
        if !item.starts_with(&prefix) {
            break;
        }
        batch.delete(Cf::LeaseKeys, &item);
        match parse_item(&item)? {
            (Attached::Key, key) => {
                // Read-side invariant: the key names this lease as its own.
                let owned = batch.get_decoded::<KvRecord>(Cf::Kv, key.as_bytes())?.is_some_and(|record| record.lease == Some(id));
                if owned {
                    // Its attachment went above.
                    kv::remove(batch, meta, at, &key, None)?;
                    deleted += 1;
                }
            }
            (Attached::Lock, name) => lock::lease_ended(batch, &name, id, index)?,
            (Attached::RingMember, name) => ring::lease_ended(batch, &name, id)?,
            (Attached::HeldKey, key) => {
                if session::held_key_released(batch, meta, at, id, &key)? {
                    deleted += 1;
                }
            }
        }
    }
    session::lease_ended(batch, id);
    batch.delete(Cf::Leases, &prefix);
    batch.delete(Cf::LeaseExpiry, &expiry_key(lease.expires_at_ms, id));
    meta.lease_count = meta.lease_count.saturating_sub(1);
    Ok(deleted)
}

pub fn revoke(batch: &mut Batch<'_>, meta: &mut Meta, at: RevisionAt, id: u64, index: u64) -> Result<Outcome, ViewError> {
    let Some(lease) = record(batch, id)? else {
        return Ok(LeaseRejection::NotFound { id }.into());
    };
    let deleted_keys = end(batch, meta, at, id, &lease, index)?;
    Ok(LeaseOutcome::Revoked { id, deleted_keys, revision: meta.revision }.into())
}

/// Advances the clock and ends the leases that expire by the new time.
pub fn tick(batch: &mut Batch<'_>, meta: &mut Meta, advance_ms: u64, index: u64) -> Result<Outcome, ViewError> {
    meta.clock_ms = meta.clock_ms.saturating_add(advance_ms);
    let mut due = Vec::new();
    for item in batch.scan(Cf::LeaseExpiry, &[]) {
        let (key, _) = item?;
        let (expires_at_ms, id) = parse_expiry_key(&key)?;
        if expires_at_ms > meta.clock_ms || due.len() == EXPIRIES_PER_TICK_MAX {
            break;
        }
        due.push(id);
    }
    let mut expired = 0;
    let mut attachments = 0;
    for id in due {
        if attachments >= ATTACHMENTS_PER_TICK_MAX {
            break;
        }
        if let Some(lease) = record(batch, id)? {
            end(batch, meta, RevisionAt::Next, id, &lease, index)?;
            attachments += lease.key_count + lease.lock_count;
            expired += 1;
        }
    }
    Ok(Outcome::Ticked { clock_ms: meta.clock_ms, expired })
}

/// A lease as read: its record and up to `limit` of its keys and of its locks, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaseView {
    pub record: LeaseRecord,
    pub keys: Vec<String>,
    pub locks: Vec<String>,
    /// `(ring, member)` pairs.
    pub ring_members: Vec<(String, String)>,
}

pub fn get(view: &View<'_>, id: u64, keys_limit: usize) -> Result<Option<LeaseView>, ViewError> {
    let Some(bytes) = view.get(Cf::Leases, &id_key(id))? else {
        return Ok(None);
    };
    let record: LeaseRecord = codec::decode(&bytes)?;
    let prefix = id_key(id);
    let (mut keys, mut locks, mut ring_members) = (Vec::new(), Vec::new(), Vec::new());
    for item in view.iter_from(Cf::LeaseKeys, &prefix) {
        let (item, _) = item?;
        if !item.starts_with(&prefix) || (keys.len() >= keys_limit && locks.len() >= keys_limit && ring_members.len() >= keys_limit) {
            break;
        }
        match parse_item(&item)? {
            (Attached::Key, key) if keys.len() < keys_limit => keys.push(key),
            (Attached::Lock, name) if locks.len() < keys_limit => locks.push(name),
            (Attached::RingMember, name) if ring_members.len() < keys_limit => {
                if let Some((ring, member)) = name.split_once('\0') {
                    ring_members.push((ring.to_string(), member.to_string()));
                }
            }
            _ => {}
        }
    }
    Ok(Some(LeaseView { record, keys, locks, ring_members }))
}

/// The earliest lease expiry on the replicated clock, if any lease exists.
pub fn next_expiry(view: &View<'_>) -> Result<Option<u64>, ViewError> {
    match view.iter_from(Cf::LeaseExpiry, &[]).next() {
        None => Ok(None),
        Some(item) => Ok(Some(parse_expiry_key(&item?.0)?.0)),
    }
}
