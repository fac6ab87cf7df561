//! Sessions: Consul's, on Concord's leases. Format 5.
//!
//! A session is a lease (its id is the lease's, and it lives as long as the lease:
//! renewing a session keeps its lease alive, destroying it revokes it) with what
//! Consul says of it: a name, a node, a lock delay, and what becomes of the keys it
//! holds when it ends (`Behavior`).
//!
//! A session holds a key by acquiring it (`Acquire`, Consul's `PUT ?acquire=`): the
//! write happens only if no other session holds the key and its lock delay has
//! passed, and each acquisition by a new holder counts one more in the key's
//! `lock_index` (Consul's `LockIndex`, a fencing token that only grows while the key
//! exists). `Release` lets go. A held key is attached to the session's lease
//! (`lease::Attached::HeldKey`), so when the lease ends, in the same entry, each of
//! its keys is deleted (`Behavior::Delete`) or let go (`Behavior::Release`); let go
//! that way, it cannot be acquired again for the session's lock delay, on the
//! replicated clock.
//!
//! What a key carries for this is its hold (`Cf::KeyHolds`: the holding session, the
//! lock index, the end of a lock delay), kept while any of it is set and removed
//! with the key.

use std::fmt;

use serde::{Deserialize, Serialize};

use super::access::Access;
use super::auth::Role;
use super::command::{Outcome, Precondition, Stamp};
use super::expiry::Ttl;
use super::flags;
use super::kv::{self, Put, RevisionAt};
use super::lease::{self, Attached, LeaseOutcome, LeaseRecord};
use super::store::{Batch, Cf, Meta, View, ViewError};
use crate::codec;

/// Most bytes of a session's name or node.
pub const NAME_BYTES_MAX: usize = 256;

/// What becomes of the keys a session holds when it ends.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Behavior {
    /// They stay, held by no one, for no one to take until the lock delay passes.
    Release,
    /// They are deleted.
    Delete,
}

/// A session beside its lease.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct SessionRecord {
    pub name: String,
    pub node: String,
    pub behavior: Behavior,
    pub lock_delay_ms: u64,
    /// The entry that created it (Consul's `CreateIndex`).
    pub create_index: u64,
}

/// What a key carries as a lock: who holds it, how many holders it has had, and until
/// when it may not be taken after a holder's session ended.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Hold {
    pub session: Option<u64>,
    pub lock_index: u64,
    /// On the replicated clock; 0 when none.
    pub delay_until_ms: u64,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub enum SessionCommand {
    /// Grants a lease of `ttl_ms` from the envelope's `now_ms` (its id, and the
    /// session's, is the entry's log index) and records the session.
    Create { ttl_ms: u64, name: String, node: String, behavior: Behavior, lock_delay_ms: u64 },
    /// Puts `value` (with `flags`) in `key`, held by `session`, if no other session
    /// holds it and its lock delay has passed.
    Acquire { key: String, value: Vec<u8>, flags: u64, session: u64 },
    /// Puts `value` (with `flags`) in `key` and lets go of it, if `session` holds it.
    Release { key: String, value: Vec<u8>, flags: u64, session: u64 },
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub enum SessionOutcome {
    /// Acquired or released (`done`), or not (held by another, in its lock delay, or
    /// not held by this session), as of `revision`.
    Held { done: bool, revision: u64 },
}

impl SessionCommand {
    /// Creating a session needs `write`; acquiring or releasing a key, write on it.
    pub fn access(&self) -> Access {
        match self {
            SessionCommand::Create { .. } => Access::unnamed(Role::Write),
            SessionCommand::Acquire { key, .. } | SessionCommand::Release { key, .. } => Access::name(Role::Write, "key", key),
        }
    }

    /// Creating reads the clock (a lease's end), and so does acquiring (the delay).
    pub fn reads_clock(&self) -> bool {
        matches!(self, SessionCommand::Create { .. } | SessionCommand::Acquire { .. })
    }
}

impl fmt::Display for SessionCommand {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SessionCommand::Create { ttl_ms, name, node, behavior, lock_delay_ms } => {
                write!(f, "create session {name:?} of node {node:?} ({ttl_ms} ms, {behavior:?}, lock delay {lock_delay_ms} ms)")
            }
            SessionCommand::Acquire { key, value, session, .. } => write!(f, "acquire {key:?} for session {session} ({} bytes)", value.len()),
            SessionCommand::Release { key, value, session, .. } => write!(f, "release {key:?} from session {session} ({} bytes)", value.len()),
        }
    }
}

fn id_key(id: u64) -> [u8; 8] {
    id.to_be_bytes()
}

pub fn apply(batch: &mut Batch<'_>, meta: &mut Meta, stamp: Stamp, command: SessionCommand) -> Result<Outcome, ViewError> {
    match command {
        SessionCommand::Create { ttl_ms, name, node, behavior, lock_delay_ms } => {
            let granted = lease::apply(batch, meta, stamp, lease::LeaseCommand::Grant { ttl_ms })?;
            if let Outcome::Lease(LeaseOutcome::Alive { id, .. }) = granted {
                let record = SessionRecord { name, node, behavior, lock_delay_ms, create_index: stamp.index };
                batch.put_encoded(Cf::Sessions, &id_key(id), &record)?;
            }
            Ok(granted)
        }
        SessionCommand::Acquire { key, value, flags, session } => {
            if let Err(refused) = lease::check_attach_kind(batch, session, Attached::HeldKey)? {
                return Ok(refused.into());
            }
            let mut hold = hold_pending(batch, &key)?;
            let now_ms = meta.clock_ms.max(stamp.now_ms);
            if hold.session.is_some_and(|holder| holder != session) || now_ms < hold.delay_until_ms {
                return Ok(SessionOutcome::Held { done: false, revision: meta.revision }.into());
            }
            let written = put(batch, meta, &key, value, flags)?;
            if !matches!(written, Outcome::Kv(_)) {
                return Ok(written);
            }
            if hold.session.is_none() {
                hold.lock_index += 1;
                lease::attach(batch, session, Attached::HeldKey, &key)?;
            }
            hold.session = Some(session);
            set_hold(batch, &key, hold)?;
            Ok(SessionOutcome::Held { done: true, revision: meta.revision }.into())
        }
        SessionCommand::Release { key, value, flags, session } => {
            let mut hold = hold_pending(batch, &key)?;
            if hold.session != Some(session) {
                return Ok(SessionOutcome::Held { done: false, revision: meta.revision }.into());
            }
            let written = put(batch, meta, &key, value, flags)?;
            if !matches!(written, Outcome::Kv(_)) {
                return Ok(written);
            }
            lease::detach(batch, session, Attached::HeldKey, &key)?;
            hold.session = None;
            set_hold(batch, &key, hold)?;
            Ok(SessionOutcome::Held { done: true, revision: meta.revision }.into())
        }
    }
}

/// A put of `key` as Consul's KV makes it: no lease, no expiry.
fn put(batch: &mut Batch<'_>, meta: &mut Meta, key: &str, value: Vec<u8>, flags: u64) -> Result<Outcome, ViewError> {
    let put = Put { key, value, precondition: Precondition::None, lease: None, ttl: Ttl::Clear, flags, now_ms: 0 };
    kv::apply_put(batch, meta, RevisionAt::Next, put)
}

/// The hold of `key` as `batch` sees it (default: none).
fn hold_pending(batch: &Batch<'_>, key: &str) -> Result<Hold, ViewError> {
    Ok(batch.get_decoded(Cf::KeyHolds, key.as_bytes())?.unwrap_or_default())
}

fn set_hold(batch: &mut Batch<'_>, key: &str, hold: Hold) -> Result<(), ViewError> {
    match hold == Hold::default() {
        true => {
            batch.delete(Cf::KeyHolds, key.as_bytes());
            Ok(())
        }
        false => batch.put_encoded(Cf::KeyHolds, key.as_bytes(), &hold),
    }
}

/// The hold of `key` (default: none).
pub fn hold(view: &View<'_>, key: &str) -> Result<Hold, ViewError> {
    Ok(view.get_decoded(Cf::KeyHolds, key.as_bytes())?.unwrap_or_default())
}

/// Session `id` with its lease, if it exists.
pub fn get(view: &View<'_>, id: u64) -> Result<Option<(SessionRecord, LeaseRecord)>, ViewError> {
    let Some(session) = view.get_decoded::<SessionRecord>(Cf::Sessions, &id_key(id))? else { return Ok(None) };
    Ok(lease::read(view, id)?.map(|lease| (session, lease)))
}

/// Up to `limit` sessions, by id, with their leases; and whether more exist.
pub fn list(view: &View<'_>, limit: usize) -> Result<super::reader::SessionPage, ViewError> {
    let mut sessions = Vec::new();
    for item in view.iter_from(Cf::Sessions, &[]) {
        let (key, value) = item?;
        if sessions.len() == limit {
            return Ok((sessions, true));
        }
        let id = u64::from_be_bytes(key.as_ref().try_into().map_err(|_| ViewError::Corrupt(format!("a session id of {} bytes", key.len())))?);
        let session: SessionRecord = codec::decode(&value)?;
        if let Some(lease) = lease::read(view, id)? {
            sessions.push((id, session, lease));
        }
    }
    Ok((sessions, false))
}

/// Lease `id` is ending and held `key`: the key is deleted or let go, as the session's
/// behavior says (true: deleted); `at` is the revision the ending takes. The session's
/// record goes after its keys (`lease_ended`).
pub fn held_key_released(batch: &mut Batch<'_>, meta: &mut Meta, at: RevisionAt, id: u64, key: &str) -> Result<bool, ViewError> {
    let Some(session) = batch.get_decoded::<SessionRecord>(Cf::Sessions, &id_key(id))? else { return Ok(false) };
    let mut hold = hold_pending(batch, key)?;
    if hold.session != Some(id) {
        return Ok(false);
    }
    let Some(record) = batch.get_decoded::<kv::KvRecord>(Cf::Kv, key.as_bytes())? else { return Ok(false) };
    match session.behavior {
        Behavior::Delete => {
            kv::remove(batch, meta, at, key, record.lease)?;
            Ok(true)
        }
        Behavior::Release => {
            hold.session = None;
            hold.delay_until_ms = meta.clock_ms.saturating_add(session.lock_delay_ms);
            set_hold(batch, key, hold)?;
            // Its holder changed: a change of the key, which watches and blocking
            // queries see, its value and flags as they were.
            let flags = flags::pending(batch, key)?;
            let put = Put { key, value: record.value, precondition: Precondition::None, lease: record.lease, ttl: Ttl::Keep, flags, now_ms: 0 };
            kv::apply_put(batch, meta, at, put)?;
            Ok(false)
        }
    }
}

/// Lease `id` ended: its session record goes.
pub fn lease_ended(batch: &mut Batch<'_>, id: u64) {
    batch.delete(Cf::Sessions, &id_key(id));
}

/// `key` is gone: its hold goes with it, and the session holding it lets go.
pub fn key_removed(batch: &mut Batch<'_>, key: &str) -> Result<(), ViewError> {
    let hold = hold_pending(batch, key)?;
    if let Some(session) = hold.session {
        lease::detach(batch, session, Attached::HeldKey, key)?;
    }
    if hold != Hold::default() {
        batch.delete(Cf::KeyHolds, key.as_bytes());
    }
    Ok(())
}
