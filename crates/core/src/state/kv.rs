//! The key-value map: records with revisions, compare-and-swap, ordered listing.
//!
//! Keys are UTF-8 strings (they travel in URL paths and JSON), values are arbitrary
//! bytes. Every change bumps the cluster revision by one (etcd's model): a key's
//! `mod_revision` is the revision of its latest change, `create_revision` the one
//! that created it, `version` counts its writes since creation. A failed precondition
//! changes nothing, not even the revision. A put may attach the key to a lease (it is
//! deleted when the lease ends); a put without one detaches it.

use serde::{Deserialize, Serialize};

use std::fmt;

use super::access::Access;
use super::auth::Role;
use super::command::{FORMAT_FIRST, Fence, KeyMeta, Outcome, Precondition, Rejection};
use super::expiry::{self, Ttl};
use super::history::{self, Change};
use super::list::{self, ListRecord};
use super::store::{Batch, Cf, Meta, View, ViewError};
use super::{counts, flags, lease, lock, session};
use crate::codec;

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub enum KvCommand {
    /// Create or replace `key` with `value`, if `precondition` holds; attached to
    /// `lease` (deleted when it ends) if given, detached from any lease otherwise.
    Put { key: String, value: Vec<u8>, precondition: Precondition, lease: Option<u64>, fence: Option<Fence> },
    /// Remove `key`, if it exists and `precondition` (and `fence`, if given) holds.
    Delete { key: String, precondition: Precondition, fence: Option<Fence> },
    /// Remove up to `DELETE_PREFIX_BATCH_MAX` keys starting with `prefix` (the API
    /// proposes more entries until none is left).
    DeletePrefix { prefix: String },
    /// `Put`, and what becomes of the key's expiry (`expiry::Ttl`; a `Put` clears it).
    /// Format 4.
    PutWithTtl { key: String, value: Vec<u8>, precondition: Precondition, lease: Option<u64>, fence: Option<Fence>, ttl: Ttl },
    /// Changes only the expiry of `key` (a string or a list), if it exists and
    /// `precondition` holds: a change of the key (a new revision). Format 4.
    Expire { key: String, ttl: Ttl, precondition: Precondition },
    /// `PutWithTtl`, and the key's flags (`flags`; every other put sets 0). Format 5.
    PutWithFlags { key: String, value: Vec<u8>, precondition: Precondition, lease: Option<u64>, fence: Option<Fence>, ttl: Ttl, flags: u64 },
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub enum KvOutcome {
    Put {
        revision: u64,
        meta: KeyMeta,
        created: bool,
    },
    Deleted {
        revision: u64,
        prev: KeyMeta,
    },
    /// `deleted` keys went, the last at `revision`; `more` when keys with the prefix
    /// remain beyond this entry's bound.
    PrefixDeleted {
        deleted: u64,
        revision: u64,
        more: bool,
    },
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub enum KvRejection {
    NotFound {
        key: String,
    },
    /// The precondition did not hold; `current` is the key's state, if it exists.
    PreconditionFailed {
        key: String,
        current: Option<KeyMeta>,
    },
}

impl fmt::Display for KvCommand {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KvCommand::Put { key, value, precondition, lease, fence } => {
                write!(f, "put {key:?} ({} bytes, {precondition:?}, lease {lease:?}, fence {fence:?})", value.len())
            }
            KvCommand::Delete { key, precondition, fence } => write!(f, "delete {key:?} ({precondition:?}, fence {fence:?})"),
            KvCommand::DeletePrefix { prefix } => write!(f, "delete keys under {prefix:?}"),
            KvCommand::PutWithTtl { key, value, precondition, lease, fence, ttl } => {
                write!(f, "put {key:?} ({} bytes, {precondition:?}, lease {lease:?}, fence {fence:?}, {ttl:?})", value.len())
            }
            KvCommand::Expire { key, ttl, precondition } => write!(f, "expire {key:?} ({ttl:?}, {precondition:?})"),
            KvCommand::PutWithFlags { key, value, precondition, lease, fence, ttl, flags } => {
                write!(f, "put {key:?} ({} bytes, {precondition:?}, lease {lease:?}, fence {fence:?}, {ttl:?}, flags {flags})", value.len())
            }
        }
    }
}

impl KvCommand {
    /// What it needs of a token (`state::access`): the key, or the prefix; a fenced
    /// write reads the lock too.
    pub fn access(&self) -> Access {
        match self {
            KvCommand::Put { key, fence, .. }
            | KvCommand::PutWithTtl { key, fence, .. }
            | KvCommand::PutWithFlags { key, fence, .. }
            | KvCommand::Delete { key, fence, .. } => {
                let access = Access::name(Role::Write, "key", key);
                match fence {
                    Some(fence) => access.and(Access::name(Role::Write, "lock", &fence.lock)),
                    None => access,
                }
            }
            KvCommand::DeletePrefix { prefix } => Access::prefix(Role::Write, prefix),
            KvCommand::Expire { key, .. } => Access::name(Role::Write, "key", key),
        }
    }

    /// The first log format that carries it (`Command::format_since`).
    pub fn format_since(&self) -> u32 {
        match self {
            KvCommand::PutWithFlags { .. } => 5,
            KvCommand::PutWithTtl { .. } | KvCommand::Expire { .. } => 4,
            KvCommand::Put { .. } | KvCommand::Delete { .. } | KvCommand::DeletePrefix { .. } => FORMAT_FIRST,
        }
    }

    /// Whether applying it reads the clock: a put that sets an expiry.
    pub fn reads_clock(&self) -> bool {
        matches!(self, KvCommand::PutWithTtl { ttl, .. } | KvCommand::PutWithFlags { ttl, .. } | KvCommand::Expire { ttl, .. } if ttl.reads_clock())
    }
}

pub fn apply(batch: &mut Batch<'_>, meta: &mut Meta, now_ms: u64, command: KvCommand) -> Result<Outcome, ViewError> {
    let fence = match &command {
        KvCommand::Put { fence, .. } | KvCommand::PutWithTtl { fence, .. } | KvCommand::PutWithFlags { fence, .. } | KvCommand::Delete { fence, .. } => {
            fence.as_ref()
        }
        KvCommand::DeletePrefix { .. } | KvCommand::Expire { .. } => None,
    };
    if let Some(Err(rejection)) = fence.map(|f| lock::fence_holds(batch, &f.lock, f.token)).transpose()? {
        return Ok(rejection.into());
    }
    match command {
        KvCommand::Put { key, value, precondition, lease, .. } => {
            let put = Put { key: &key, value, precondition, lease, ttl: Ttl::Clear, flags: 0, now_ms };
            apply_put(batch, meta, RevisionAt::Next, put)
        }
        KvCommand::PutWithTtl { key, value, precondition, lease, ttl, .. } => {
            apply_put(batch, meta, RevisionAt::Next, Put { key: &key, value, precondition, lease, ttl, flags: 0, now_ms })
        }
        KvCommand::PutWithFlags { key, value, precondition, lease, ttl, flags, .. } => {
            apply_put(batch, meta, RevisionAt::Next, Put { key: &key, value, precondition, lease, ttl, flags, now_ms })
        }
        KvCommand::Delete { key, precondition, .. } => apply_delete(batch, meta, RevisionAt::Next, &key, precondition),
        KvCommand::DeletePrefix { prefix } => apply_delete_prefix(batch, meta, &prefix),
        KvCommand::Expire { key, ttl, precondition } => apply_expire(batch, meta, RevisionAt::Next, &key, ttl, precondition, now_ms),
    }
}

/// A string key as read: its record, when it expires, its flags, and its hold by a
/// session (`session`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StringRead {
    pub record: KvRecord,
    /// `None`: never.
    pub expiry: Option<expiry::Expiry>,
    pub flags: u64,
    pub hold: session::Hold,
}

/// `key` with its expiry, flags and hold, if it holds a string.
pub fn get_string(view: &View<'_>, key: &str) -> Result<Option<StringRead>, ViewError> {
    let Some(record) = get(view, key)? else { return Ok(None) };
    with_attachments(view, key, record).map(Some)
}

/// `record` of `key` with its expiry, flags and hold.
pub fn with_attachments(view: &View<'_>, key: &str, record: KvRecord) -> Result<StringRead, ViewError> {
    Ok(StringRead { record, expiry: expiry::get(view, key)?, flags: flags::get(view, key)?, hold: session::hold(view, key)? })
}

/// A stored key: its value and its revision bookkeeping.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct KvRecord {
    pub value: Vec<u8>,
    pub meta: KeyMeta,
    /// The lease the key is attached to: the key is deleted when the lease ends.
    pub lease: Option<u64>,
}

/// Why a key or value is refused before anything is proposed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidInput {
    #[error("the key is empty")]
    EmptyKey,
    #[error("the key is {len} bytes, over the limit of {max} bytes")]
    KeyTooLarge { len: usize, max: usize },
    #[error("the key contains a control character at byte {at}; keys must be printable text")]
    KeyNotPrintable { at: usize },
    #[error("the value is {len} bytes, over the limit of {max} bytes")]
    ValueTooLarge { len: usize, max: usize },
}

/// Whether `key` is a key (or a lock, queue, topic, ring or member name) of at most
/// `key_bytes_max` bytes (the server's `--key-bytes-max`).
pub fn validate_key(key: &str, key_bytes_max: usize) -> Result<(), InvalidInput> {
    if key.is_empty() {
        return Err(InvalidInput::EmptyKey);
    }
    if key.len() > key_bytes_max {
        return Err(InvalidInput::KeyTooLarge { len: key.len(), max: key_bytes_max });
    }
    if let Some((at, _)) = key.char_indices().find(|(_, c)| c.is_control()) {
        return Err(InvalidInput::KeyNotPrintable { at });
    }
    Ok(())
}

pub fn validate_value(value: &[u8], value_bytes_max: usize) -> Result<(), InvalidInput> {
    if value.len() > value_bytes_max {
        return Err(InvalidInput::ValueTooLarge { len: value.len(), max: value_bytes_max });
    }
    Ok(())
}

fn check(key: &str, current: Option<&KeyMeta>, precondition: Precondition) -> Result<(), Rejection> {
    let holds = match precondition {
        Precondition::None => true,
        Precondition::Absent => current.is_none(),
        Precondition::Exists => current.is_some(),
        Precondition::ModRevision(expected) => current.is_some_and(|meta| meta.mod_revision == expected),
    };
    if holds { Ok(()) } else { Err(KvRejection::PreconditionFailed { key: key.to_string(), current: current.copied() }.into()) }
}

/// Which revision a key change takes: the next one, or the one every change of its
/// transaction shares (`state::txn`).
#[derive(Clone, Copy, Debug)]
pub enum RevisionAt {
    Next,
    /// The first change of a transaction that began at revision `before` takes the
    /// next revision; the later ones take the same.
    Shared {
        before: u64,
    },
}

impl RevisionAt {
    /// For one command that changes several keys, all at one revision (a lease's end,
    /// a tick's expiries, a list move): the next revision, shared, or the shared one
    /// this already is.
    pub fn shared(self, meta: &Meta) -> Self {
        match self {
            RevisionAt::Next => RevisionAt::Shared { before: meta.revision },
            shared => shared,
        }
    }

    /// Moves `meta.revision` to the revision of the change about to be recorded.
    pub fn advance(self, meta: &mut Meta) {
        match self {
            RevisionAt::Shared { before } if meta.revision > before => {}
            _ => meta.revision += 1,
        }
    }
}

/// A put as `apply_put` takes it: the key and what it becomes, its precondition, and
/// the leader's stamp (for an expiry).
pub struct Put<'a> {
    pub key: &'a str,
    pub value: Vec<u8>,
    pub precondition: Precondition,
    pub lease: Option<u64>,
    pub ttl: Ttl,
    /// The key's flags from now on (`flags`).
    pub flags: u64,
    pub now_ms: u64,
}

/// What `key` holds, as `batch` sees it: a string, a list (`list`), or nothing.
pub(super) enum Holding {
    Nothing,
    String(KvRecord),
    List(ListRecord),
}

impl Holding {
    pub(super) fn of(batch: &Batch<'_>, key: &str) -> Result<Self, ViewError> {
        if let Some(record) = batch.get_decoded::<KvRecord>(Cf::Kv, key.as_bytes())? {
            return Ok(Holding::String(record));
        }
        Ok(list::record(batch, key)?.map_or(Holding::Nothing, Holding::List))
    }

    pub(super) fn meta(&self) -> Option<KeyMeta> {
        match self {
            Holding::Nothing => None,
            Holding::String(record) => Some(record.meta),
            Holding::List(list) => Some(list.meta),
        }
    }
}

pub fn apply_put(batch: &mut Batch<'_>, meta: &mut Meta, at: RevisionAt, put: Put<'_>) -> Result<Outcome, ViewError> {
    let Put { key, value, precondition, lease, ttl, flags, now_ms } = put;
    let holding = Holding::of(batch, key)?;
    if let Err(rejection) = check(key, holding.meta().as_ref(), precondition) {
        return Ok(Outcome::Rejected(rejection));
    }
    // A put replaces a list with a new string, as Redis's `SET` does.
    let current = match holding {
        Holding::String(record) => Some(record),
        Holding::List(list) => {
            list::discard(batch, key, &list)?;
            None
        }
        Holding::Nothing => None,
    };
    let current_meta = current.as_ref().map(|record| record.meta);
    let current_lease = current.as_ref().and_then(|record| record.lease);
    if let Some(id) = lease
        && current_lease != lease
        && let Err(rejection) = lease::check_attach_kind(batch, id, lease::Attached::Key)?
    {
        return Ok(Outcome::Rejected(rejection));
    }
    at.advance(meta);
    let revision = meta.revision;
    let key_meta = match current_meta {
        Some(old) => KeyMeta { create_revision: old.create_revision, mod_revision: revision, version: old.version + 1 },
        None => KeyMeta { create_revision: revision, mod_revision: revision, version: 1 },
    };
    history::record(batch, meta, key, Change::Put { value: value.clone(), meta: key_meta, lease })?;
    if current_meta.is_none() {
        counts::add(batch, 1, 0)?;
    }
    batch.put_encoded(Cf::Kv, key.as_bytes(), &KvRecord { value, meta: key_meta, lease })?;
    lease::reattach(batch, key, current_lease, lease)?;
    flags::set(batch, key, flags);
    if let Some(expiry) = expiry::after_put(ttl, meta.clock_ms, now_ms) {
        expiry::set(batch, key, expiry)?;
    }
    Ok(KvOutcome::Put { revision, meta: key_meta, created: current_meta.is_none() }.into())
}

/// Deletes `key`, a string or a list.
pub fn apply_delete(batch: &mut Batch<'_>, meta: &mut Meta, at: RevisionAt, key: &str, precondition: Precondition) -> Result<Outcome, ViewError> {
    let holding = Holding::of(batch, key)?;
    let Some(prev) = holding.meta() else {
        return Ok(KvRejection::NotFound { key: key.to_string() }.into());
    };
    if let Err(rejection) = check(key, Some(&prev), precondition) {
        return Ok(Outcome::Rejected(rejection));
    }
    match holding {
        Holding::String(record) => remove(batch, meta, at, key, record.lease)?,
        Holding::List(list) => list::delete(batch, meta, at, key, &list)?,
        Holding::Nothing => {}
    }
    Ok(KvOutcome::Deleted { revision: meta.revision, prev }.into())
}

/// Gives `key` (a string or a list) the expiry `ttl` says, as a change of the key.
pub fn apply_expire(
    batch: &mut Batch<'_>,
    meta: &mut Meta,
    at: RevisionAt,
    key: &str,
    ttl: Ttl,
    precondition: Precondition,
    now_ms: u64,
) -> Result<Outcome, ViewError> {
    let holding = Holding::of(batch, key)?;
    let Some(old) = holding.meta() else {
        return Ok(KvRejection::NotFound { key: key.to_string() }.into());
    };
    if let Err(rejection) = check(key, Some(&old), precondition) {
        return Ok(Outcome::Rejected(rejection));
    }
    at.advance(meta);
    let key_meta = KeyMeta { create_revision: old.create_revision, mod_revision: meta.revision, version: old.version + 1 };
    match holding {
        Holding::String(record) => {
            history::record(batch, meta, key, Change::Put { value: record.value.clone(), meta: key_meta, lease: record.lease })?;
            batch.put_encoded(Cf::Kv, key.as_bytes(), &KvRecord { meta: key_meta, ..record })?;
        }
        Holding::List(list) => batch.put_encoded(Cf::Lists, key.as_bytes(), &ListRecord { meta: key_meta, ..list })?,
        Holding::Nothing => {}
    }
    if let Some(expiry) = expiry::after_put(ttl, meta.clock_ms, now_ms) {
        expiry::set(batch, key, expiry)?;
    }
    Ok(KvOutcome::Put { revision: meta.revision, meta: key_meta, created: false }.into())
}

/// Deletes `key` at the revision `at` says, detaching it from `lease` and clearing
/// its expiry.
pub(super) fn remove(batch: &mut Batch<'_>, meta: &mut Meta, at: RevisionAt, key: &str, lease: Option<u64>) -> Result<(), ViewError> {
    at.advance(meta);
    history::record(batch, meta, key, Change::Delete)?;
    batch.delete(Cf::Kv, key.as_bytes());
    counts::add(batch, -1, 0)?;
    expiry::set(batch, key, None)?;
    flags::set(batch, key, 0);
    session::key_removed(batch, key)?;
    lease::reattach(batch, key, lease, None)
}

/// Most keys one prefix-delete entry removes. Each is a history record and a lease
/// detach, so the entry stays a bounded write however many keys the prefix covers.
pub const DELETE_PREFIX_BATCH_MAX: usize = 1_000;

/// Deletes up to `DELETE_PREFIX_BATCH_MAX` keys starting with `prefix`, in key order,
/// each at its own revision (a watch sees one delete per key).
pub fn apply_delete_prefix(batch: &mut Batch<'_>, meta: &mut Meta, prefix: &str) -> Result<Outcome, ViewError> {
    // Only the leases are kept: a thousand values could be a gigabyte.
    let (doomed, more) = prefixed(batch.scan(Cf::Kv, prefix.as_bytes()), prefix, DELETE_PREFIX_BATCH_MAX, |record| record.lease)?;
    for (key, lease) in &doomed {
        remove(batch, meta, RevisionAt::Next, key, *lease)?;
    }
    Ok(KvOutcome::PrefixDeleted { deleted: doomed.len() as u64, revision: meta.revision, more }.into())
}

/// The first `limit` records of `items` (the key family, read forward from a point at
/// or after `prefix`) whose keys start with `prefix`, each as `keep` makes it, and
/// whether more such follow.
fn prefixed<E, T>(
    items: impl Iterator<Item = Result<(Box<[u8]>, Box<[u8]>), E>>,
    prefix: &str,
    limit: usize,
    keep: impl Fn(KvRecord) -> T,
) -> Result<(Vec<(String, T)>, bool), ViewError>
where
    ViewError: From<E>,
{
    let mut records = Vec::new();
    for item in items {
        let (key, value) = item?;
        if !key.starts_with(prefix.as_bytes()) {
            return Ok((records, false));
        }
        if records.len() == limit {
            return Ok((records, true));
        }
        let key = String::from_utf8(key.to_vec()).map_err(|_| ViewError::Corrupt("a stored key is not UTF-8".to_string()))?;
        records.push((key, keep(codec::decode(&value)?)));
    }
    Ok((records, false))
}

/// The first `limit` keys starting with `prefix` as `batch` sees them (its pending
/// writes included), for reads inside a transaction.
pub fn list_pending(batch: &Batch<'_>, prefix: &str, limit: usize) -> Result<Page, ViewError> {
    let (items, more) = prefixed(batch.scan(Cf::Kv, prefix.as_bytes()), prefix, limit, |record| record)?;
    Ok(Page { items, more })
}

pub fn get(view: &View<'_>, key: &str) -> Result<Option<KvRecord>, ViewError> {
    match view.get(Cf::Kv, key.as_bytes())? {
        None => Ok(None),
        Some(bytes) => Ok(Some(codec::decode(&bytes)?)),
    }
}

/// One page of a prefix listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page {
    pub items: Vec<(String, KvRecord)>,
    /// True when keys with the prefix remain after the last item.
    pub more: bool,
}

/// Keys starting with `prefix` and strictly after `after` (if given), in byte order,
/// at most `limit` of them.
pub fn list(view: &View<'_>, prefix: &str, after: Option<&str>, limit: usize) -> Result<Page, ViewError> {
    let start = match after {
        // The smallest key strictly after `after` is `after` + "\0".
        Some(after) if after >= prefix => format!("{after}\0"),
        _ => prefix.to_string(),
    };
    let (items, more) = prefixed(view.iter_from(Cf::Kv, start.as_bytes()), prefix, limit, |record| record)?;
    Ok(Page { items, more })
}
