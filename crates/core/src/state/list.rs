//! Lists: Redis's deque of byte strings, a kind of key beside strings.
//!
//! A key names a string (`kv`) or a list, never both. A list command on a string is
//! refused (`WrongType`); a put on a list replaces it and a delete deletes it (`kv`),
//! as Redis's `SET` and `DEL` do. A list has the revision bookkeeping of any key
//! (`KeyMeta`): every change takes a new cluster revision, so preconditions,
//! transactions' conditions and Redis's `WATCH` see it. Watches see a list's
//! deletion, not its pushes and pops (the history records no list contents). An
//! emptied list is deleted, as in Redis.
//!
//! The list's record (`Cf::Lists`) says where its items are: `len` items at
//! consecutive sequence numbers from `first`, under `key ++ 0 ++ generation ++ seq`
//! in `Cf::ListItems` (keys have no control characters, so the `0` ends the key).
//! Pushing on the left takes the number before `first`, on the right the one after
//! the last, so both ends are one write. The generation is the revision that created
//! the list: deleting a whole list is one range delete of its generation (bounded
//! work whatever its length), and a list created again under the key has another
//! generation, so what the range delete hides is never read again.

use std::collections::BTreeSet;
use std::fmt;

use serde::{Deserialize, Serialize};

use super::access::Access;
use super::auth::Role;
use super::command::{KeyMeta, Outcome};
use super::history::{self, Change};
use super::kv::RevisionAt;
use super::store::{Batch, Cf, Meta, View, ViewError};
use super::{counts, expiry};
use crate::codec;

/// Most items one list holds (fixed, so every replica refuses the same push).
pub const LEN_MAX: u64 = 1_000_000;
/// Most items one push adds or one pop takes.
pub const ITEMS_PER_COMMAND_MAX: usize = 10_000;
/// Most items one read of a list answers.
pub const RANGE_MAX: u64 = 100_000;
/// Where a new list's items start: the middle of the sequence numbers, so either end
/// can grow by `LEN_MAX` many times over.
const FIRST_SEQ: u64 = 1 << 63;

/// An end of a list.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
pub enum End {
    Left,
    Right,
}

#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
pub struct ListRecord {
    pub meta: KeyMeta,
    /// The sequence number of the leftmost item.
    pub first: u64,
    pub len: u64,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub enum ListCommand {
    /// Adds `items` at `end`, one after the other (so a left push of `a b` leaves `b`
    /// first, as Redis's `LPUSH`); with `only_existing`, only to a list that exists
    /// (`LPUSHX`).
    Push { key: String, items: Vec<Vec<u8>>, end: End, only_existing: bool },
    /// Takes up to `count` items from `end`.
    Pop { key: String, end: End, count: u32 },
    /// Takes one item from `from` of `source` and adds it at `to` of `destination`
    /// (`LMOVE`; the same list rotates it).
    Move { source: String, destination: String, from: End, to: End },
    /// Replaces the item at `index` (negative: from the right, -1 the last).
    Set { key: String, index: i64, item: Vec<u8> },
    /// Removes the items equal to `item`: the first `count` from the left (positive),
    /// the last `-count` from the right (negative), or all (0), as `LREM`.
    Remove { key: String, count: i64, item: Vec<u8> },
    /// Keeps only the items from `start` to `stop`, inclusive (`LTRIM`'s indexes).
    Trim { key: String, start: i64, stop: i64 },
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub enum ListOutcome {
    /// The list's length after the push (0: nothing pushed, for `only_existing`).
    Pushed {
        len: u64,
        revision: u64,
    },
    /// The items taken, in the order they were taken (none: the list does not exist).
    Popped {
        items: Vec<Vec<u8>>,
        revision: u64,
    },
    /// The item moved, if the source had one.
    Moved {
        item: Option<Vec<u8>>,
        revision: u64,
    },
    Set {
        revision: u64,
    },
    Removed {
        removed: u64,
        revision: u64,
    },
    Trimmed {
        revision: u64,
    },
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub enum ListRejection {
    /// The key holds a string.
    WrongType {
        key: String,
    },
    /// `Set` on a list that does not exist.
    NoSuchKey {
        key: String,
    },
    IndexOutOfRange {
        key: String,
        index: i64,
    },
    /// The push would make the list longer than `limit`.
    TooLong {
        key: String,
        limit: u64,
    },
    /// Over a bound of one command.
    Invalid {
        reason: String,
    },
}

impl fmt::Display for ListCommand {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ListCommand::Push { key, items, end, only_existing } => {
                write!(f, "push {} items at {end:?} of list {key:?} (only existing: {only_existing})", items.len())
            }
            ListCommand::Pop { key, end, count } => write!(f, "pop {count} from {end:?} of list {key:?}"),
            ListCommand::Move { source, destination, from, to } => write!(f, "move from {from:?} of list {source:?} to {to:?} of {destination:?}"),
            ListCommand::Set { key, index, item } => write!(f, "set item {index} of list {key:?} ({} bytes)", item.len()),
            ListCommand::Remove { key, count, item } => write!(f, "remove {count} items of {} bytes from list {key:?}", item.len()),
            ListCommand::Trim { key, start, stop } => write!(f, "trim list {key:?} to {start}..={stop}"),
        }
    }
}

impl ListCommand {
    /// The keys it reads and changes.
    pub fn keys(&self) -> Vec<&str> {
        match self {
            ListCommand::Move { source, destination, .. } => vec![source, destination],
            ListCommand::Push { key, .. }
            | ListCommand::Pop { key, .. }
            | ListCommand::Set { key, .. }
            | ListCommand::Remove { key, .. }
            | ListCommand::Trim { key, .. } => vec![key],
        }
    }

    /// What it needs of a token (`state::access`): write on its keys, which share the
    /// key names of strings.
    pub fn access(&self) -> Access {
        self.keys().into_iter().map(|key| Access::name(Role::Write, "key", key)).fold(Access::unnamed(Role::Write), Access::and)
    }

    /// The bytes of its names and items, for a transaction's bound.
    pub fn bytes(&self) -> usize {
        let items = match self {
            ListCommand::Push { items, .. } => items.iter().map(Vec::len).sum(),
            ListCommand::Set { item, .. } | ListCommand::Remove { item, .. } => item.len(),
            ListCommand::Pop { .. } | ListCommand::Move { .. } | ListCommand::Trim { .. } => 0,
        };
        items + self.keys().iter().map(|key| key.len()).sum::<usize>()
    }
}

fn record_key(key: &str) -> &[u8] {
    key.as_bytes()
}

fn item_key(key: &str, generation: u64, seq: u64) -> Vec<u8> {
    let mut item = item_prefix(key, generation);
    item.extend_from_slice(&seq.to_be_bytes());
    item
}

fn item_prefix(key: &str, generation: u64) -> Vec<u8> {
    let mut prefix = Vec::with_capacity(key.len() + 9);
    prefix.extend_from_slice(key.as_bytes());
    prefix.push(0);
    prefix.extend_from_slice(&generation.to_be_bytes());
    prefix
}

/// List `key`, as `batch` sees it.
pub fn record(batch: &Batch<'_>, key: &str) -> Result<Option<ListRecord>, ViewError> {
    batch.get_decoded(Cf::Lists, record_key(key))
}

/// List `key`, for a reader.
pub fn get(view: &View<'_>, key: &str) -> Result<Option<ListRecord>, ViewError> {
    view.get(Cf::Lists, record_key(key))?.map(|bytes| codec::decode(&bytes)).transpose().map_err(ViewError::from)
}

/// List `key`, or `None` when it does not exist; refused when `key` holds a string.
fn list_at(batch: &Batch<'_>, key: &str) -> Result<Result<Option<ListRecord>, ListRejection>, ViewError> {
    if batch.get(Cf::Kv, key.as_bytes())?.is_some() {
        return Ok(Err(ListRejection::WrongType { key: key.to_string() }));
    }
    Ok(Ok(record(batch, key)?))
}

fn item(batch: &Batch<'_>, key: &str, list: &ListRecord, seq: u64) -> Result<Vec<u8>, ViewError> {
    batch.get(Cf::ListItems, &item_key(key, list.meta.create_revision, seq))?.ok_or_else(|| ViewError::Corrupt(format!("list {key:?} lacks its item {seq}")))
}

/// The items of `list` from `start` to `stop`, inclusive (positions from 0, already
/// within the list), for a reader.
fn range(view: &View<'_>, key: &str, list: &ListRecord, start: u64, stop: u64) -> Result<Vec<Vec<u8>>, ViewError> {
    let from = item_key(key, list.meta.create_revision, list.first + start);
    let mut items = Vec::new();
    for entry in view.iter_from(Cf::ListItems, &from).take((stop + 1 - start) as usize) {
        let (_, item) = entry?;
        items.push(item.to_vec());
    }
    Ok(items)
}

/// The positions `start` to `stop` (Redis's `LRANGE` indexes: negative from the
/// end) of a list of `len` items, clamped to it; `None` when none is in it.
pub fn clamp(start: i64, stop: i64, len: u64) -> Option<(u64, u64)> {
    let len = len as i64;
    let start = if start < 0 { (len + start).max(0) } else { start };
    let stop = (if stop < 0 { len + stop } else { stop }).min(len - 1);
    (start <= stop && start < len).then_some((start as u64, stop as u64))
}

/// What a read of a list found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ListRead {
    Absent,
    /// The key holds a string.
    NotAList,
    /// The list's record (its length, its revisions), its expiry, and the items
    /// asked for.
    Items {
        list: ListRecord,
        expiry: Option<expiry::Expiry>,
        items: Vec<Vec<u8>>,
    },
}

/// The items of list `key` from `start` to `stop` (Redis's `LRANGE` indexes: negative
/// from the end, clamped), at most `RANGE_MAX` of them.
pub fn read(view: &View<'_>, key: &str, start: i64, stop: i64) -> Result<ListRead, ViewError> {
    let Some(found) = get(view, key)? else {
        return Ok(if view.get(Cf::Kv, key.as_bytes())?.is_some() { ListRead::NotAList } else { ListRead::Absent });
    };
    let items = match clamp(start, stop, found.len) {
        Some((start, stop)) => range(view, key, &found, start, stop.min(start + RANGE_MAX - 1))?,
        None => Vec::new(),
    };
    Ok(ListRead::Items { list: found, expiry: expiry::get(view, key)?, items })
}

/// A list being changed by one command: its record once changed, and whether the
/// command created it.
struct Changing {
    list: ListRecord,
    created: bool,
}

impl Changing {
    /// `list`, or a new empty one at the revision `at` gives.
    fn open(list: Option<ListRecord>, meta: &mut Meta, at: RevisionAt) -> Self {
        at.advance(meta);
        let revision = meta.revision;
        match list {
            Some(mut list) => {
                list.meta = KeyMeta { create_revision: list.meta.create_revision, mod_revision: revision, version: list.meta.version + 1 };
                Self { list, created: false }
            }
            None => Self {
                list: ListRecord { meta: KeyMeta { create_revision: revision, mod_revision: revision, version: 1 }, first: FIRST_SEQ, len: 0 },
                created: true,
            },
        }
    }

    fn push(&mut self, batch: &mut Batch<'_>, key: &str, item: Vec<u8>, end: End) {
        let seq = match end {
            End::Left => {
                self.list.first -= 1;
                self.list.first
            }
            End::Right => self.list.first + self.list.len,
        };
        self.list.len += 1;
        batch.put(Cf::ListItems, &item_key(key, self.list.meta.create_revision, seq), item);
    }

    /// Takes the item at `end` (the list is not empty).
    fn pop(&mut self, batch: &mut Batch<'_>, key: &str, end: End) -> Result<Vec<u8>, ViewError> {
        let seq = match end {
            End::Left => self.list.first,
            End::Right => self.list.first + self.list.len - 1,
        };
        let taken = item(batch, key, &self.list, seq)?;
        batch.delete(Cf::ListItems, &item_key(key, self.list.meta.create_revision, seq));
        if end == End::Left {
            self.list.first += 1;
        }
        self.list.len -= 1;
        Ok(taken)
    }

    /// Stores the list, or deletes it when it is empty (its items are gone already).
    fn close(self, batch: &mut Batch<'_>, meta: &mut Meta, key: &str) -> Result<(), ViewError> {
        match (self.list.len, self.created) {
            (0, true) => Ok(()),
            (0, false) => {
                batch.delete(Cf::Lists, record_key(key));
                counts::add(batch, -1, 0)?;
                expiry::set(batch, key, None)?;
                history::record(batch, meta, key, Change::Delete)
            }
            (_, created) => {
                if created {
                    counts::add(batch, 1, 0)?;
                }
                batch.put_encoded(Cf::Lists, record_key(key), &self.list)
            }
        }
    }
}

/// Drops list `key` and all its items (one range delete), keeping its expiry and
/// recording nothing: for a put that replaces it (`kv`) and for `delete`.
pub fn discard(batch: &mut Batch<'_>, key: &str, list: &ListRecord) -> Result<(), ViewError> {
    batch.delete(Cf::Lists, record_key(key));
    let prefix = item_prefix(key, list.meta.create_revision);
    let mut end = prefix.clone();
    end.extend_from_slice(&[0xff; 9]);
    batch.delete_range_unread(Cf::ListItems, &prefix, &end);
    counts::add(batch, -1, 0)
}

/// Deletes list `key` at the revision `at` gives, as a delete of the key does.
pub fn delete(batch: &mut Batch<'_>, meta: &mut Meta, at: RevisionAt, key: &str, list: &ListRecord) -> Result<(), ViewError> {
    discard(batch, key, list)?;
    expiry::set(batch, key, None)?;
    at.advance(meta);
    history::record(batch, meta, key, Change::Delete)
}

/// Why a push of `count` items is refused, if it is.
pub(super) fn push_refused(count: usize) -> Option<ListRejection> {
    (count == 0 || count > ITEMS_PER_COMMAND_MAX)
        .then(|| ListRejection::Invalid { reason: format!("a push adds 1 to {ITEMS_PER_COMMAND_MAX} items, not {count}") })
}

/// The positions of `items` that `LREM count item` removes: the first `count` equal
/// to `item` (positive), the last `-count` (negative), or all (0).
pub(super) fn removing(items: &[impl AsRef<[u8]>], count: i64, item: &[u8]) -> BTreeSet<usize> {
    let matching = items.iter().enumerate().filter(|(_, candidate)| candidate.as_ref() == item).map(|(at, _)| at);
    match count {
        0 => matching.collect(),
        n if n > 0 => matching.take(n as usize).collect(),
        n => matching.rev().take(n.unsigned_abs() as usize).collect(),
    }
}

/// Where position `index` (negative: from the right) is in a list of `len` items.
pub(super) fn position(index: i64, len: u64) -> Option<u64> {
    let position = if index < 0 { len as i64 + index } else { index };
    (0..len as i64).contains(&position).then_some(position as u64)
}

/// Applies `command` at the revision `at` gives (every key it changes takes it).
pub fn apply(batch: &mut Batch<'_>, meta: &mut Meta, at: RevisionAt, command: ListCommand) -> Result<Outcome, ViewError> {
    // The keys of one command share its revision, as a transaction's do.
    let at = at.shared(meta);
    match command {
        ListCommand::Push { key, items, end, only_existing } => {
            if let Some(refused) = push_refused(items.len()) {
                return Ok(refused.into());
            }
            let list = match list_at(batch, &key)? {
                Err(refused) => return Ok(refused.into()),
                Ok(None) if only_existing => return Ok(ListOutcome::Pushed { len: 0, revision: meta.revision }.into()),
                Ok(list) => list,
            };
            if list.map_or(0, |list| list.len) + items.len() as u64 > LEN_MAX {
                return Ok(ListRejection::TooLong { key, limit: LEN_MAX }.into());
            }
            let mut changing = Changing::open(list, meta, at);
            for item in items {
                changing.push(batch, &key, item, end);
            }
            let len = changing.list.len;
            changing.close(batch, meta, &key)?;
            Ok(ListOutcome::Pushed { len, revision: meta.revision }.into())
        }
        ListCommand::Pop { key, end, count } => {
            let list = match list_at(batch, &key)? {
                Err(refused) => return Ok(refused.into()),
                Ok(None) => return Ok(ListOutcome::Popped { items: Vec::new(), revision: meta.revision }.into()),
                Ok(Some(list)) => list,
            };
            let taking = (count as usize).min(ITEMS_PER_COMMAND_MAX).min(list.len as usize);
            if taking == 0 {
                return Ok(ListOutcome::Popped { items: Vec::new(), revision: meta.revision }.into());
            }
            let mut changing = Changing::open(Some(list), meta, at);
            let items = (0..taking).map(|_| changing.pop(batch, &key, end)).collect::<Result<Vec<_>, _>>()?;
            changing.close(batch, meta, &key)?;
            Ok(ListOutcome::Popped { items, revision: meta.revision }.into())
        }
        ListCommand::Move { source, destination, from, to } => {
            let (from_list, to_list) = match (list_at(batch, &source)?, list_at(batch, &destination)?) {
                (Err(refused), _) | (_, Err(refused)) => return Ok(refused.into()),
                (Ok(None), _) => return Ok(ListOutcome::Moved { item: None, revision: meta.revision }.into()),
                (Ok(Some(from_list)), Ok(to_list)) => (from_list, to_list),
            };
            if source == destination {
                let mut changing = Changing::open(Some(from_list), meta, at);
                let item = changing.pop(batch, &source, from)?;
                changing.push(batch, &source, item.clone(), to);
                changing.close(batch, meta, &source)?;
                return Ok(ListOutcome::Moved { item: Some(item), revision: meta.revision }.into());
            }
            if to_list.is_some_and(|list| list.len >= LEN_MAX) {
                return Ok(ListRejection::TooLong { key: destination, limit: LEN_MAX }.into());
            }
            let mut taking = Changing::open(Some(from_list), meta, at);
            let item = taking.pop(batch, &source, from)?;
            taking.close(batch, meta, &source)?;
            let mut giving = Changing::open(to_list, meta, at);
            giving.push(batch, &destination, item.clone(), to);
            giving.close(batch, meta, &destination)?;
            Ok(ListOutcome::Moved { item: Some(item), revision: meta.revision }.into())
        }
        ListCommand::Set { key, index, item } => {
            let list = match list_at(batch, &key)? {
                Err(refused) => return Ok(refused.into()),
                Ok(None) => return Ok(ListRejection::NoSuchKey { key }.into()),
                Ok(Some(list)) => list,
            };
            let Some(at_position) = position(index, list.len) else {
                return Ok(ListRejection::IndexOutOfRange { key, index }.into());
            };
            let changing = Changing::open(Some(list), meta, at);
            batch.put(Cf::ListItems, &item_key(&key, list.meta.create_revision, list.first + at_position), item);
            changing.close(batch, meta, &key)?;
            Ok(ListOutcome::Set { revision: meta.revision }.into())
        }
        ListCommand::Remove { key, count, item } => {
            let list = match list_at(batch, &key)? {
                Err(refused) => return Ok(refused.into()),
                Ok(None) => return Ok(ListOutcome::Removed { removed: 0, revision: meta.revision }.into()),
                Ok(Some(list)) => list,
            };
            let items = (0..list.len).map(|at| self::item(batch, &key, &list, list.first + at)).collect::<Result<Vec<_>, _>>()?;
            let doomed = removing(&items, count, &item);
            if doomed.is_empty() {
                return Ok(ListOutcome::Removed { removed: 0, revision: meta.revision }.into());
            }
            let kept: Vec<Vec<u8>> = items.into_iter().enumerate().filter(|(at, _)| !doomed.contains(at)).map(|(_, kept)| kept).collect();
            rewrite(batch, meta, at, &key, list, kept)?;
            Ok(ListOutcome::Removed { removed: doomed.len() as u64, revision: meta.revision }.into())
        }
        ListCommand::Trim { key, start, stop } => {
            let list = match list_at(batch, &key)? {
                Err(refused) => return Ok(refused.into()),
                Ok(None) => return Ok(ListOutcome::Trimmed { revision: meta.revision }.into()),
                Ok(Some(list)) => list,
            };
            let (keep_from, keep_to) = clamp(start, stop, list.len).map_or((0, 0), |(start, stop)| (start, stop + 1));
            if (keep_from, keep_to) == (0, list.len) {
                return Ok(ListOutcome::Trimmed { revision: meta.revision }.into());
            }
            let mut changing = Changing::open(Some(list), meta, at);
            for seq in (list.first..list.first + keep_from).chain(list.first + keep_to.max(keep_from)..list.first + list.len) {
                batch.delete(Cf::ListItems, &item_key(&key, list.meta.create_revision, seq));
            }
            changing.list.first = list.first + keep_from;
            changing.list.len = keep_to.saturating_sub(keep_from);
            changing.close(batch, meta, &key)?;
            Ok(ListOutcome::Trimmed { revision: meta.revision }.into())
        }
    }
}

/// Makes list `key` hold `items` (fewer than it had), in place from its first item.
fn rewrite(batch: &mut Batch<'_>, meta: &mut Meta, at: RevisionAt, key: &str, list: ListRecord, items: Vec<Vec<u8>>) -> Result<(), ViewError> {
    let generation = list.meta.create_revision;
    let mut changing = Changing::open(Some(list), meta, at);
    for seq in list.first + items.len() as u64..list.first + list.len {
        batch.delete(Cf::ListItems, &item_key(key, generation, seq));
    }
    changing.list.len = items.len() as u64;
    for (at, item) in items.into_iter().enumerate() {
        batch.put(Cf::ListItems, &item_key(key, generation, list.first + at as u64), item);
    }
    changing.close(batch, meta, key)
}
