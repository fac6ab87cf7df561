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

use std::fmt;

use serde::{Deserialize, Serialize};

use super::access::Access;
use super::auth::Role;
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

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub enum LockCommand {
    /// Take lock `name` for `lease`; if another lease holds it, queue when `wait`.
    Acquire { name: String, lease: u64, wait: bool },
    /// Let go of lock `name`, if `token` still holds it.
    Release { name: String, token: u64 },
    /// Leave the queue of lock `name` (a waiter that stopped waiting).
    CancelWait { name: String, lease: u64 },
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub enum LockOutcome {
    /// `lease` holds lock `name` with fencing token `token`.
    Held { name: String, token: u64, lease: u64 },
    /// The lease is queued for lock `name`, at `position` (1 = next).
    Waiting { name: String, position: u64 },
    /// Lock `name` was let go; `next` is who holds it now, if anyone.
    Released { name: String, next: Option<Holding> },
    /// The lease left the queue of lock `name`, which `holder` holds.
    WaitCancelled { name: String, holder: Option<Holding> },
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub enum LockRejection {
    /// Lock `name` is held by another lease (and the caller did not ask to wait).
    Busy { name: String, holder: Holding, waiters: u64 },
    /// Lock `name` has its maximum number of waiters.
    Limit { name: String, limit: u64 },
    /// `token` does not hold lock `name` (any more); `current` does, if anyone.
    StaleToken { name: String, token: u64, current: Option<Holding> },
    /// A fenced write whose token no longer holds its lock.
    FenceRejected { lock: String, token: u64, current: Option<u64> },
}

impl LockCommand {
    pub fn access(&self) -> Access {
        match self {
            LockCommand::Acquire { name, .. } | LockCommand::Release { name, .. } | LockCommand::CancelWait { name, .. } => {
                Access::name(Role::Write, "lock", name)
            }
        }
    }
}

impl fmt::Display for LockCommand {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LockCommand::Acquire { name, lease, wait } => write!(f, "acquire lock {name:?} for lease {lease} (wait {wait})"),
            LockCommand::Release { name, token } => write!(f, "release lock {name:?} token {token}"),
            LockCommand::CancelWait { name, lease } => write!(f, "stop waiting for lock {name:?} (lease {lease})"),
        }
    }
}

pub fn apply(batch: &mut Batch<'_>, index: u64, command: LockCommand) -> Result<Outcome, ViewError> {
    match command {
        LockCommand::Acquire { name, lease, wait } => acquire(batch, &name, lease, wait, index),
        LockCommand::Release { name, token } => release(batch, &name, token, index),
        LockCommand::CancelWait { name, lease } => cancel_wait(batch, &name, lease),
    }
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

fn acquire(batch: &mut Batch<'_>, name: &str, lease_id: u64, wait: bool, index: u64) -> Result<Outcome, ViewError> {
    if lease::record(batch, lease_id)?.is_none() {
        return Ok(lease::LeaseRejection::NotFound { id: lease_id }.into());
    }
    let mut lock = load(batch, name)?;
    if let Some(holder) = lock.holder {
        if holder.lease == lease_id {
            return Ok(LockOutcome::Held { name: name.to_string(), token: holder.token, lease: lease_id }.into());
        }
        if let Some(position) = lock.waiters.iter().position(|waiter| *waiter == lease_id) {
            return Ok(LockOutcome::Waiting { name: name.to_string(), position: position as u64 + 1 }.into());
        }
        if !wait {
            return Ok(Outcome::from(LockRejection::Busy { name: name.to_string(), holder, waiters: lock.waiters.len() as u64 }));
        }
        if lock.waiters.len() >= WAITERS_PER_LOCK_MAX {
            return Ok(Outcome::from(LockRejection::Limit { name: name.to_string(), limit: WAITERS_PER_LOCK_MAX as u64 }));
        }
    }
    if let Err(rejection) = lease::attach_lock(batch, lease_id, name)? {
        return Ok(Outcome::Rejected(rejection));
    }
    if lock.holder.is_some() {
        lock.waiters.push(lease_id);
        store(batch, name, &lock)?;
        return Ok(LockOutcome::Waiting { name: name.to_string(), position: lock.waiters.len() as u64 }.into());
    }
    lock.holder = Some(Holding { token: index, lease: lease_id });
    store(batch, name, &lock)?;
    Ok(LockOutcome::Held { name: name.to_string(), token: index, lease: lease_id }.into())
}

pub fn release(batch: &mut Batch<'_>, name: &str, token: u64, index: u64) -> Result<Outcome, ViewError> {
    let mut lock = load(batch, name)?;
    match lock.holder {
        Some(holder) if holder.token == token => {
            lease::detach(batch, holder.lease, lease::Attached::Lock, name)?;
            grant_next(&mut lock, index);
            store(batch, name, &lock)?;
            Ok(LockOutcome::Released { name: name.to_string(), next: lock.holder }.into())
        }
        current => Ok(Outcome::from(LockRejection::StaleToken { name: name.to_string(), token, current })),
    }
}

/// A waiter gives up. If the lock was granted to it meanwhile, says so instead.
fn cancel_wait(batch: &mut Batch<'_>, name: &str, lease_id: u64) -> Result<Outcome, ViewError> {
    let mut lock = load(batch, name)?;
    if let Some(holder) = lock.holder.filter(|holder| holder.lease == lease_id) {
        return Ok(LockOutcome::Held { name: name.to_string(), token: holder.token, lease: lease_id }.into());
    }
    if let Some(position) = lock.waiters.iter().position(|waiter| *waiter == lease_id) {
        lock.waiters.remove(position);
        lease::detach(batch, lease_id, lease::Attached::Lock, name)?;
        store(batch, name, &lock)?;
    }
    Ok(LockOutcome::WaitCancelled { name: name.to_string(), holder: lock.holder }.into())
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
        current => Err(LockRejection::FenceRejected { lock: name.to_string(), token, current: current.map(|h| h.token) }.into()),
    })
}

pub fn get(view: &View<'_>, name: &str) -> Result<LockRecord, ViewError> {
    match view.get(Cf::Locks, name.as_bytes())? {
        None => Ok(LockRecord::default()),
        Some(bytes) => Ok(codec::decode(&bytes)?),
    }
}
