//! Exclusive locks with fencing tokens.
//!
//! A lock is held by a lease. Its token is the log index of the entry that granted
//! it, so tokens only grow: every later grant of the same lock carries a larger one,
//! on every replica. A resource that remembers the largest token it has seen can
//! therefore refuse a late write from a holder whose lease expired (Kleppmann's
//! fencing token, Chubby's sequencer); Concord does exactly that for its own keys
//! when a write carries a fence (`fence_holds`).
//!
//! Waiters queue in the lock's record, in order, one entry per lease: a release, or
//! the end of the holder's lease, grants the lock to the first waiter in the same
//! entry. The queue is part of the replicated state, so it survives leader changes and
//! is fair. A waiter is itself attached to its lease, so a waiter that goes away (its
//! lease ends) leaves the queue too. A lock with no holder and no waiters has no record.

use serde::{Deserialize, Serialize};

use super::command::{Outcome, Rejection};
use super::lease;
use super::store::{Batch, Cf, View, ViewError};
use crate::codec;

/// Most waiters queued on one lock.
pub const WAITERS_PER_LOCK_MAX: usize = 1024;

#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
pub struct Holding {
    /// The fencing token: the log index of the granting entry.
    pub token: u64,
    pub lease: u64,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
pub struct LockRecord {
    pub holder: Option<Holding>,
    /// Leases waiting, first in line first.
    pub waiters: Vec<u64>,
}

fn load(batch: &Batch<'_>, name: &str) -> Result<LockRecord, ViewError> {
    Ok(batch.get_decoded(Cf::Locks, name.as_bytes())?.unwrap_or_default())
}

fn store(batch: &mut Batch<'_>, name: &str, lock: &LockRecord) -> Result<(), ViewError> {
    if lock.holder.is_none() && lock.waiters.is_empty() {
        batch.delete(Cf::Locks, name.as_bytes());
        Ok(())
    } else {
        batch.put_encoded(Cf::Locks, name.as_bytes(), lock)
    }
}

/// Hands the lock to the first waiter, if any, with token `index`.
fn grant_next(lock: &mut LockRecord, index: u64) {
    lock.holder = (!lock.waiters.is_empty()).then(|| Holding { token: index, lease: lock.waiters.remove(0) });
}

pub fn acquire(batch: &mut Batch<'_>, name: &str, lease_id: u64, wait: bool, index: u64) -> Result<Outcome, ViewError> {
    if lease::record(batch, lease_id)?.is_none() {
        return Ok(Outcome::Rejected(Rejection::LeaseNotFound { id: lease_id }));
    }
    let mut lock = load(batch, name)?;
    if let Some(holder) = lock.holder {
        if holder.lease == lease_id {
            return Ok(Outcome::LockHeld { name: name.to_string(), token: holder.token, lease: lease_id });
        }
        if let Some(position) = lock.waiters.iter().position(|waiter| *waiter == lease_id) {
            return Ok(Outcome::LockWaiting { name: name.to_string(), position: position as u64 + 1 });
        }
        if !wait {
            return Ok(Outcome::Rejected(Rejection::LockBusy { name: name.to_string(), holder, waiters: lock.waiters.len() as u64 }));
        }
        if lock.waiters.len() >= WAITERS_PER_LOCK_MAX {
            return Ok(Outcome::Rejected(Rejection::LockLimit { name: name.to_string(), limit: WAITERS_PER_LOCK_MAX as u64 }));
        }
    }
    if let Err(rejection) = lease::attach_lock(batch, lease_id, name)? {
        return Ok(Outcome::Rejected(rejection));
    }
    if lock.holder.is_some() {
        lock.waiters.push(lease_id);
        store(batch, name, &lock)?;
        return Ok(Outcome::LockWaiting { name: name.to_string(), position: lock.waiters.len() as u64 });
    }
    lock.holder = Some(Holding { token: index, lease: lease_id });
    store(batch, name, &lock)?;
    Ok(Outcome::LockHeld { name: name.to_string(), token: index, lease: lease_id })
}

pub fn release(batch: &mut Batch<'_>, name: &str, token: u64, index: u64) -> Result<Outcome, ViewError> {
    let mut lock = load(batch, name)?;
    match lock.holder {
        Some(holder) if holder.token == token => {
            lease::detach(batch, holder.lease, lease::Attached::Lock, name)?;
            grant_next(&mut lock, index);
            store(batch, name, &lock)?;
            Ok(Outcome::LockReleased { name: name.to_string(), next: lock.holder })
        }
        current => Ok(Outcome::Rejected(Rejection::StaleToken { name: name.to_string(), token, current })),
    }
}

/// A waiter gives up. If the lock was granted to it meanwhile, says so instead.
pub fn cancel_wait(batch: &mut Batch<'_>, name: &str, lease_id: u64) -> Result<Outcome, ViewError> {
    let mut lock = load(batch, name)?;
    if let Some(holder) = lock.holder.filter(|holder| holder.lease == lease_id) {
        return Ok(Outcome::LockHeld { name: name.to_string(), token: holder.token, lease: lease_id });
    }
    if let Some(position) = lock.waiters.iter().position(|waiter| *waiter == lease_id) {
        lock.waiters.remove(position);
        lease::detach(batch, lease_id, lease::Attached::Lock, name)?;
        store(batch, name, &lock)?;
    }
    Ok(Outcome::LockWaitCancelled { name: name.to_string(), holder: lock.holder })
}

/// Lease `lease_id` ended: it no longer holds or waits for `name` (its attachment is
/// already gone). Entry `index` grants the lock on.
pub fn lease_ended(batch: &mut Batch<'_>, name: &str, lease_id: u64, index: u64) -> Result<(), ViewError> {
    let mut lock = load(batch, name)?;
    lock.waiters.retain(|waiter| *waiter != lease_id);
    if lock.holder.is_some_and(|holder| holder.lease == lease_id) {
        grant_next(&mut lock, index);
    }
    store(batch, name, &lock)
}

/// True when `token` still holds `name`.
pub fn fence_holds(batch: &Batch<'_>, name: &str, token: u64) -> Result<Result<(), Rejection>, ViewError> {
    let current = load(batch, name)?.holder;
    Ok(match current {
        Some(holder) if holder.token == token => Ok(()),
        current => Err(Rejection::FenceRejected { lock: name.to_string(), token, current: current.map(|h| h.token) }),
    })
}

pub fn get(view: &View<'_>, name: &str) -> Result<LockRecord, ViewError> {
    match view.get(Cf::Locks, name.as_bytes())? {
        None => Ok(LockRecord::default()),
        Some(bytes) => Ok(codec::decode(&bytes)?),
    }
}
