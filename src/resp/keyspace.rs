//! How the Redis door runs commands on keys: against an image of the keys they name,
//! read from one linearizable view, changed in memory, then committed as one
//! conditional write. Redis runs every command alone against its one copy of the
//! data; this gives a Concord cluster the same effect.
//!
//! `run` loads the keys (`Keyspace`), runs the commands on them synchronously (a
//! command reads with `get` or `exists`, which records what it saw, and writes with
//! `set` or `delete`), and commits what changed on the condition that nothing the
//! commands saw, nor any `WATCH`ed key, has moved since:
//!
//! - nothing changed: nothing to commit (the view was linearizable);
//! - one key changed, and only it was seen: one put or delete with its precondition
//!   (`mod_revision`, or absent), which the proposer can batch with others;
//! - otherwise: one core transaction (`Command::Txn`), its conditions the seen and
//!   watched keys, its operations the changes.
//!
//! Commands that look at no key (`SET`, `MSET`) skip the view: run on an empty image,
//! they answer the same, and their writes commit with no condition.
//!
//! List commands run here too when they are part of a step (`EXEC`, a script): the
//! lists they name are read whole with the view (at most `STEP_LIST_ITEMS_MAX` items
//! together), changed in memory by the model of the core's list commands
//! (`state::list_model`), and committed as those same commands, in order, in one core
//! transaction conditioned as above (log format 5 lets it change a key more than
//! once). A list a command reaches that was not read whole makes the step run again
//! on a view that reads it.
//!
//! If a condition fails, another client wrote in between: the commands run again on a
//! fresh view after a random wait (`backoff`), up to `ATTEMPTS_MAX` times (`TRYAGAIN`
//! then). Their replies are given
//! only once their effect is committed, so a client never sees an answer whose write
//! did not happen. A watched key that moved makes the batch abort instead (`EXEC`'s
//! null), as in Redis.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::time::Duration;

use super::Door;
use super::errors;
use super::reply::Reply;
use crate::authorize::authorize;
use crate::state::access::Access;
use crate::state::auth::Role;
use crate::state::command::{Command, Outcome, Precondition, Rejection};
use crate::state::expiry::{Expiry, Ttl};
use crate::state::kv::{self, KvCommand, KvOutcome, KvRejection};
use crate::state::list::{ListCommand, ListOutcome, ListRead};
use crate::state::list_model::{self, Lists};
use crate::state::reader::KeyRead;
use crate::state::txn::{Condition, KeyTest, Txn, TxnOp};

/// Views a batch of commands is run on before it gives up to contention.
const ATTEMPTS_MAX: usize = 64;
/// The bound of the first wait after a conflict, and of any.
const BACKOFF_FIRST: Duration = Duration::from_micros(500);
const BACKOFF_MAX: Duration = Duration::from_millis(50);
/// Most list items one step reads whole, all its lists together.
pub const STEP_LIST_ITEMS_MAX: u64 = 10_000;

/// A string's new value, lease and expiry.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Written {
    value: Vec<u8>,
    lease: Option<u64>,
    ttl: Ttl,
}

/// What a batch did to a key.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Change {
    /// It is this string now.
    Written(Written),
    /// Only its expiry changed (a string or a list).
    Expiry(Ttl),
    /// It is a list changed by list commands (its items in `Keyspace::lists`), its
    /// expiry what `ttl` makes of the one read.
    List {
        ttl: Ttl,
    },
    Deleted,
}

/// The keys a batch names as one view read them, and the replicated clock then.
pub struct Image {
    keys: BTreeMap<String, Option<KeyRead>>,
    clock_ms: u64,
    /// The lists read whole, as of the view.
    lists: Lists,
}

impl Image {
    /// Each key's `mod_revision` (`None`: absent).
    pub fn revisions(self) -> impl Iterator<Item = (String, Option<u64>)> {
        self.keys.into_iter().map(|(key, read)| (key, read.map(|read| read.meta().mod_revision)))
    }
}

/// The keys a batch names, as read and as changed.
pub struct Keyspace {
    read: BTreeMap<String, Option<KeyRead>>,
    /// The replicated clock of the read: expiries are reported against it.
    clock_ms: u64,
    changed: BTreeMap<String, Change>,
    /// The keys a command looked at: the commit is conditioned on them.
    seen: BTreeSet<String>,
    value_bytes_max: usize,
    key_bytes_max: usize,
    /// The lists read whole with the view.
    loaded: Lists,
    /// The items of each key whose change is `Change::List` (an entry of a key changed
    /// otherwise since is stale, never read, so an undone command leaves it right).
    lists: Lists,
    /// Lists a command reached that were not read whole: the step runs again.
    missing: BTreeSet<String>,
    /// Every change, in order, as the core transaction's operations: committed as is
    /// once a list command is among them.
    journal: Vec<TxnOp>,
}

/// A key as a command sees it: a string, or a list (whose items the door's list
/// commands reach, not these).
struct Current<'a> {
    string: Option<(&'a [u8], Option<u64>)>,
    expiry: Option<Expiry>,
}

/// A string's value and lease as read; `None` for a list.
fn string_of(read: &KeyRead) -> Option<(&[u8], Option<u64>)> {
    match read {
        KeyRead::String(string) => Some((string.record.value.as_slice(), string.record.lease)),
        KeyRead::List { .. } => None,
    }
}

/// The reply to a string command on a list.
pub fn wrong_type() -> Reply {
    Reply::Error("WRONGTYPE Operation against a key holding the wrong kind of value".into())
}

impl Keyspace {
    fn on(image: Image, door: &Door) -> Self {
        Self {
            read: image.keys,
            clock_ms: image.clock_ms,
            changed: BTreeMap::new(),
            seen: BTreeSet::new(),
            value_bytes_max: door.limits.value_bytes_max,
            key_bytes_max: door.limits.key_bytes_max,
            loaded: image.lists,
            lists: Lists::new(),
            missing: BTreeSet::new(),
            journal: Vec::new(),
        }
    }

    /// What `ttl` makes of an expiry `before` (`Keep`: it stays).
    fn after(&self, ttl: Ttl, before: Option<Expiry>) -> Option<Expiry> {
        match ttl {
            Ttl::Clear => None,
            Ttl::Keep => before,
            Ttl::After { ttl_ms } => Some(Expiry { at_ms: self.clock_ms.saturating_add(ttl_ms), ttl_ms }),
        }
    }

    fn record(&self, key: &str) -> Option<Current<'_>> {
        let read = self.read.get(key).and_then(Option::as_ref);
        match self.changed.get(key) {
            Some(Change::Deleted) => None,
            Some(Change::Written(written)) => {
                Some(Current { string: Some((&written.value, written.lease)), expiry: self.after(written.ttl, read.and_then(KeyRead::expiry)) })
            }
            Some(Change::Expiry(ttl)) => read.map(|read| Current { string: string_of(read), expiry: self.after(*ttl, read.expiry()) }),
            Some(Change::List { ttl }) => Some(Current { string: None, expiry: self.after(*ttl, read.and_then(KeyRead::expiry)) }),
            None => read.map(|read| Current { string: string_of(read), expiry: read.expiry() }),
        }
    }

    /// The value of string `key` (`None`: absent); `WRONGTYPE` for a list.
    pub fn get(&mut self, key: &str) -> Result<Option<Vec<u8>>, Reply> {
        self.seen.insert(key.to_string());
        match self.record(key) {
            None => Ok(None),
            Some(Current { string: Some((value, _)), .. }) => Ok(Some(value.to_vec())),
            Some(Current { string: None, .. }) => Err(wrong_type()),
        }
    }

    /// The value of `key` if it is a string (`MGET`'s view: a list is nil).
    pub fn string(&mut self, key: &str) -> Option<Vec<u8>> {
        self.get(key).ok().flatten()
    }

    pub fn exists(&mut self, key: &str) -> bool {
        self.seen.insert(key.to_string());
        self.record(key).is_some()
    }

    /// `TYPE`'s answer: `string`, `list` or `none`.
    pub fn kind(&mut self, key: &str) -> &'static str {
        self.seen.insert(key.to_string());
        match self.record(key) {
            None => "none",
            Some(Current { string: Some(_), .. }) => "string",
            Some(Current { string: None, .. }) => "list",
        }
    }

    /// The revision that created `key` as it stands (`None`: absent); an error if the
    /// key was written in this same step, whose revision is known only once it commits.
    pub fn create_revision(&mut self, key: &str) -> Result<Option<u64>, Reply> {
        self.seen.insert(key.to_string());
        if self.changed.contains_key(key) {
            return Err(Reply::err("the key was written earlier in this same atomic step; its revision is known once that commits"));
        }
        Ok(self.read.get(key).and_then(Option::as_ref).map(|read| read.meta().create_revision))
    }

    /// How long `key` has to live: `None` when it does not exist, `Some(None)` when
    /// it has no expiry.
    pub fn ttl_ms(&mut self, key: &str) -> Option<Option<u64>> {
        self.seen.insert(key.to_string());
        let clock_ms = self.clock_ms;
        self.record(key).map(|current| current.expiry.map(|expiry| expiry.left_ms(clock_ms)))
    }

    /// Sets string `key` (replacing a list, as `SET` does), with what `ttl` says of
    /// its expiry; `keep_lease` keeps the lease it has (as `INCR` keeps a TTL), else it
    /// is detached. An error if the value is over the node's bound.
    pub fn set(&mut self, key: &str, value: Vec<u8>, keep_lease: bool, ttl: Ttl) -> Result<(), Reply> {
        kv::validate_value(&value, self.value_bytes_max).map_err(|e| Reply::err(e.to_string()))?;
        let keeps = keep_lease || ttl == Ttl::Keep;
        if keeps {
            self.seen.insert(key.to_string());
        }
        let current = self.record(key).filter(|_| keeps);
        let lease = current.as_ref().and_then(|current| current.string).and_then(|(_, lease)| lease).filter(|_| keep_lease);
        // Keeping is keeping what this batch gave the key, if it gave it an expiry;
        // keeping none is clearing it (the commit is conditioned on the key, so the
        // plain put of every format serves).
        let ttl = match (ttl, self.changed.get(key)) {
            (Ttl::Keep, Some(Change::Expiry(pending) | Change::List { ttl: pending })) => *pending,
            (Ttl::Keep, Some(Change::Written(earlier))) => earlier.ttl,
            (Ttl::Keep, _) if current.is_none_or(|current| current.expiry.is_none()) => Ttl::Clear,
            (ttl, _) => ttl,
        };
        let written = Written { value, lease, ttl };
        self.journal.push(operation(key, Change::Written(written.clone())));
        self.changed.insert(key.to_string(), Change::Written(written));
        Ok(())
    }

    /// Gives `key` (which exists: the caller looked) the expiry `ttl` says.
    pub fn expire(&mut self, key: &str, ttl: Ttl) {
        self.journal.push(TxnOp::Expire { key: key.to_string(), ttl });
        match self.changed.get_mut(key) {
            Some(Change::Written(Written { ttl: pending, .. }) | Change::List { ttl: pending }) => *pending = ttl,
            _ => {
                self.changed.insert(key.to_string(), Change::Expiry(ttl));
            }
        }
    }

    /// Runs one command on the keyspace: if it answers an error, what it changed is
    /// undone, so a refused command changes nothing (as in Redis).
    /// (List commands need none of this: they refuse before they change anything.)
    pub fn attempt(&mut self, command: impl FnOnce(&mut Self) -> Reply) -> Reply {
        let (before, journaled) = (self.changed.clone(), self.journal.len());
        let reply = command(self);
        if matches!(reply, Reply::Error(_)) {
            self.changed = before;
            self.journal.truncate(journaled);
        }
        reply
    }

    /// Deletes `key`, a string or a list; whether it existed.
    pub fn delete(&mut self, key: &str) -> bool {
        let existed = self.exists(key);
        if existed {
            self.journal.push(TxnOp::Delete { key: key.to_string() });
            self.changed.insert(key.to_string(), Change::Deleted);
        }
        existed
    }

    /// The bounds of keys and values, for the list commands' arguments.
    pub fn bounds(&self) -> super::lists::Bounds {
        super::lists::Bounds { key_bytes_max: self.key_bytes_max, value_bytes_max: self.value_bytes_max }
    }

    /// The items of list `key` as they stand (`None`: absent); `WRONGTYPE` for a
    /// string, and an error (the step runs again) for a list not read whole.
    pub fn list(&mut self, key: &str) -> Result<Option<&VecDeque<Vec<u8>>>, Reply> {
        self.seen.insert(key.to_string());
        match (self.record(key), self.changed.get(key)) {
            (None, _) => Ok(None),
            (Some(Current { string: Some(_), .. }), _) => Err(wrong_type()),
            (Some(_), Some(Change::List { .. })) => Ok(self.lists.get(key)),
            (Some(_), _) if self.loaded.contains_key(key) => Ok(self.loaded.get(key)),
            (Some(_), _) => {
                self.missing.insert(key.to_string());
                Err(Reply::err(format!("list '{key}' is read again whole (a step of Concord's, never answered)")))
            }
        }
    }

    /// Runs list `command` on the lists it names (`state::list_model`), as the core will
    /// when the step commits: its outcome, or the reply to its refusal.
    pub fn on_list(&mut self, command: ListCommand) -> Result<ListOutcome, Reply> {
        let mut keys: Vec<String> = command.keys().into_iter().map(str::to_string).collect();
        // A move within one list names it twice.
        keys.dedup();
        for key in &keys {
            // Checks its kind, and marks a list to read whole.
            self.list(key)?;
        }
        // A list this step changed already is moved out, not copied (a step may run
        // many commands on one list); one as read is copied once, at its first change.
        let mut lists = Lists::new();
        for key in &keys {
            let items = match self.changed.get(key) {
                Some(Change::List { .. }) => self.lists.remove(key),
                Some(Change::Deleted | Change::Written(_)) => None,
                Some(Change::Expiry(_)) | None => self.loaded.get(key).cloned(),
            };
            lists.extend(items.map(|items| (key.clone(), items)));
        }
        let lengths = |lists: &Lists| keys.iter().map(|key| lists.get(key).map_or(0, VecDeque::len)).collect::<Vec<_>>();
        let before = lengths(&lists);
        let outcome = list_model::apply(&mut lists, &command, 0);
        let changed = outcome
            .as_ref()
            .is_ok_and(|outcome| lengths(&lists) != before || matches!(outcome, ListOutcome::Set { .. } | ListOutcome::Moved { item: Some(_), .. }));
        if !changed {
            // Unchanged (or refused before any change): what was moved out goes back.
            for (key, items) in lists {
                if matches!(self.changed.get(&key), Some(Change::List { .. })) {
                    self.lists.insert(key, items);
                }
            }
            return outcome.map_err(super::lists::refusal);
        }
        let outcome = outcome.map_err(super::lists::refusal)?;
        for key in &keys {
            let change = match lists.remove(key) {
                Some(items) => {
                    // A list keeps the expiry it has; one created here has none.
                    let ttl = match self.changed.get(key) {
                        Some(Change::List { ttl } | Change::Expiry(ttl)) => *ttl,
                        Some(Change::Deleted | Change::Written(_)) => Ttl::Clear,
                        None if self.read.get(key).is_some_and(Option::is_some) => Ttl::Keep,
                        None => Ttl::Clear,
                    };
                    self.lists.insert(key.clone(), items);
                    Change::List { ttl }
                }
                None => {
                    self.lists.remove(key);
                    Change::Deleted
                }
            };
            self.changed.insert(key.clone(), change);
        }
        self.journal.push(TxnOp::OnList(command));
        Ok(outcome)
    }

    /// The changes against what was read: a key deleted after being created within
    /// the batch is no change.
    fn changes(&self) -> Vec<(&String, &Change)> {
        let was_absent = |key: &String| self.read.get(key).is_none_or(Option::is_none);
        self.changed.iter().filter(|(key, change)| !(**change == Change::Deleted && was_absent(key))).collect()
    }

    /// The condition that `key` is still as read.
    fn unchanged(&self, key: &str) -> KeyTest {
        match self.read.get(key).and_then(Option::as_ref) {
            Some(read) => KeyTest::ModRevision(read.meta().mod_revision),
            None => KeyTest::Absent,
        }
    }
}

/// A key's `mod_revision` when a client `WATCH`ed it (`None`: absent).
pub type Watched = BTreeMap<String, Option<u64>>;

/// What a batch came to.
pub enum Ran {
    /// Committed: each command's reply, in order.
    Replies(Vec<Reply>),
    /// A watched key moved: nothing was done.
    Aborted,
}

/// Checks that `arg` names a key Concord can hold.
pub fn key(door: &Door, arg: &[u8]) -> Result<String, Reply> {
    key_within(arg, door.limits.key_bytes_max)
}

/// Checks that `arg` names a key of at most `key_bytes_max` bytes.
pub fn key_within(arg: &[u8], key_bytes_max: usize) -> Result<String, Reply> {
    let key = std::str::from_utf8(arg).map_err(|_| errors::not_a_key("Concord keys are UTF-8 text"))?;
    kv::validate_key(key, key_bytes_max).map_err(errors::not_a_key)?;
    Ok(key.to_string())
}

/// Reads `keys` from one linearizable view, after checking that the caller may read
/// each.
pub async fn read(door: &Door, keys: &BTreeSet<String>, whole: &BTreeSet<String>) -> Result<Image, Reply> {
    for key in keys {
        authorize(|| Access::name(Role::Read, "key", key)).map_err(errors::consensus)?;
    }
    door.core.linearize().await.map_err(errors::consensus)?;
    let names: Vec<String> = keys.iter().cloned().collect();
    let read = door.reader.get_all(&names).map_err(errors::view)?;
    let keys: BTreeMap<String, Option<KeyRead>> = names.into_iter().zip(read.value).collect();
    let mut lists = Lists::new();
    let mut items_read = 0;
    for key in whole {
        let Some(Some(KeyRead::List { list, .. })) = keys.get(key) else { continue };
        items_read += list.len;
        if items_read > STEP_LIST_ITEMS_MAX {
            return Err(Reply::err(format!(
                "a transaction or script on Concord reads the lists it changes whole, at most {STEP_LIST_ITEMS_MAX} items together; list '{key}' holds {}",
                list.len
            )));
        }
        // Read after the view: if the list has moved since, it is left out, and the
        // step reads again (its commit would be refused anyway).
        if let ListRead::Items { list: now, items, .. } = door.reader.list_items(key, 0, -1).map_err(errors::view)?.value
            && now.meta.mod_revision == list.meta.mod_revision
        {
            lists.insert(key.clone(), items.into());
        }
    }
    Ok(Image { keys, clock_ms: read.clock_ms, lists })
}

/// Whether a batch of commands may write, and whether to try it without a view first.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Writes {
    No,
    /// Commands on keys: those that look at nothing (`SET`, `MSET`) answer the same on
    /// any image, so they run first on an empty one and commit with no view.
    Blindly,
    /// A script: it nearly always reads, and a run on an empty image would only run it
    /// twice.
    AfterReading,
}

/// Runs `commands` (each given the keyspace, answering its reply) over `keys` as one
/// atomic step, aborted if a `watched` key has moved. Commands that may write first
/// take their keys' turns on this node (`key_locks`).
pub async fn run(
    door: &Door,
    keys: BTreeSet<String>,
    mut whole: BTreeSet<String>,
    writes: Writes,
    watched: &Watched,
    mut commands: impl FnMut(&mut Keyspace) -> Vec<Reply> + Send,
) -> Result<Ran, Reply> {
    // Commands that look at nothing (`SET`, `MSET`) answer the same on any image: run
    // them on an empty one, and commit their writes with no view, no turn and no
    // condition, as the HTTP API's puts are.
    if watched.is_empty() && writes == Writes::Blindly {
        let mut blind = Keyspace::on(Image { keys: BTreeMap::new(), clock_ms: 0, lists: Lists::new() }, door);
        let replies = commands(&mut blind);
        if blind.seen.is_empty() && commit(door, &blind, watched).await? {
            return Ok(Ran::Replies(replies));
        }
    }
    let keys: BTreeSet<String> = keys.into_iter().chain(watched.keys().cloned()).collect();
    let _turns = if writes != Writes::No { Some(door.key_locks.take(&keys).await) } else { None };
    let mut conflicted = false;
    for attempt in 0..ATTEMPTS_MAX {
        if conflicted {
            tokio::time::sleep(backoff(attempt)).await;
        }
        let read = read(door, &keys, &whole).await?;
        let moved = watched.iter().any(|(key, revision)| read.keys.get(key).and_then(Option::as_ref).map(|r| r.meta().mod_revision) != *revision);
        if moved {
            return Ok(Ran::Aborted);
        }
        let mut space = Keyspace::on(read, door);
        let replies = commands(&mut space);
        if !space.missing.is_empty() {
            // Lists to read whole: again at once, no conflict to wait out.
            whole.append(&mut space.missing);
            conflicted = false;
            continue;
        }
        if commit(door, &space, watched).await? {
            return Ok(Ran::Replies(replies));
        }
        conflicted = true;
    }
    Err(Reply::Error(format!("TRYAGAIN the keys changed under each of {ATTEMPTS_MAX} attempts; retry")))
}

/// The core operation that makes `key` what `change` says; a list's change is its
/// commands' (`Keyspace::journal`), never this.
fn operation(key: &str, change: Change) -> TxnOp {
    let key = key.to_string();
    match change {
        Change::Written(Written { value, lease, ttl: Ttl::Clear }) => TxnOp::Put { key, value, lease },
        Change::Written(Written { value, lease, ttl }) => TxnOp::PutWithTtl { key, value, lease, ttl },
        Change::Expiry(ttl) => TxnOp::Expire { key, ttl },
        Change::Deleted | Change::List { .. } => TxnOp::Delete { key },
    }
}

/// How long to wait before attempt `attempt` (from 1) after a conflict: a random part
/// of a bound that doubles up to `BACKOFF_MAX`, so writers on several nodes that keep
/// meeting on one key fall out of step instead of meeting again.
fn backoff(attempt: usize) -> Duration {
    let bound_us = (BACKOFF_FIRST.as_micros() << attempt.min(16)).min(BACKOFF_MAX.as_micros()) as u64;
    // The clock's nanoseconds are random enough to spread a few writers apart.
    let spread = u64::from(std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().subsec_nanos());
    Duration::from_micros(spread % bound_us.max(1))
}

/// Commits what `space` changed on the condition that what it saw and `watched` have
/// not moved; false when a condition failed.
async fn commit(door: &Door, space: &Keyspace, watched: &Watched) -> Result<bool, Reply> {
    let changes = space.changes();
    let conditioned: BTreeSet<&String> = space.seen.iter().chain(watched.keys()).collect();
    // Nothing to write: the view was linearizable, and the watched keys were as
    // watched in it.
    if changes.is_empty() {
        return Ok(true);
    }
    let journaled = space.journal.iter().any(|op| matches!(op, TxnOp::OnList(_)));
    if !journaled
        && let [(key, change)] = changes.as_slice()
        && conditioned.iter().all(|seen| seen == key)
    {
        let precondition = match space.unchanged(key) {
            _ if !conditioned.contains(key) => Precondition::None,
            KeyTest::ModRevision(revision) => Precondition::ModRevision(revision),
            _ => Precondition::Absent,
        };
        let (key, fence) = ((*key).clone(), None);
        let command = match (*change).clone() {
            Change::Written(Written { value, lease, ttl: Ttl::Clear }) => KvCommand::Put { key, value, precondition, lease, fence },
            Change::Written(Written { value, lease, ttl }) => KvCommand::PutWithTtl { key, value, precondition, lease, fence, ttl },
            Change::Expiry(ttl) => KvCommand::Expire { key, ttl, precondition },
            Change::Deleted | Change::List { .. } => KvCommand::Delete { key, precondition, fence },
        };
        return match door.propose(Command::Kv(command)).await? {
            Outcome::Kv(KvOutcome::Put { .. } | KvOutcome::Deleted { .. }) => Ok(true),
            Outcome::Rejected(Rejection::Kv(KvRejection::PreconditionFailed { .. } | KvRejection::NotFound { .. })) => Ok(false),
            other => Err(errors::unexpected(other)),
        };
    }

    let compare = conditioned.iter().map(|key| Condition::Key { key: (*key).clone(), test: space.unchanged(key) }).collect();
    // With list commands, every change in order (a list's items are known only as the
    // commands that made them); else each key's last state.
    let success = match journaled {
        true => space.journal.clone(),
        false => changes.into_iter().map(|(key, change)| operation(key, change.clone())).collect(),
    };
    match door.propose(Command::Txn(Txn { compare, success, failure: Vec::new() })).await? {
        Outcome::Txn(outcome) => Ok(outcome.succeeded),
        other => Err(errors::unexpected(other)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::kv::StringRead;
    use crate::state::list::ListRecord;

    #[test]
    fn waits_after_conflicts_stay_under_a_bound_that_doubles_to_its_cap() {
        for attempt in 1..40 {
            let bound = (BACKOFF_FIRST * 2u32.pow(attempt.min(16) as u32)).min(BACKOFF_MAX);
            assert!(backoff(attempt) < bound, "attempt {attempt}");
        }
    }

    /// "k" and "lasting" as read at clock 400: "k" expires at 1000, "lasting" never.
    fn keyspace(read: &[(&str, &str)]) -> Keyspace {
        let record = |value: &str| kv::KvRecord {
            value: value.as_bytes().to_vec(),
            meta: crate::state::command::KeyMeta { create_revision: 1, mod_revision: 7, version: 1 },
            lease: Some(3),
        };
        let expiring = |key: &str, value: &str| {
            KeyRead::String(StringRead {
                record: record(value),
                expiry: (key == "k").then_some(Expiry { at_ms: 1000, ttl_ms: 900 }),
                flags: 0,
                hold: Default::default(),
            })
        };
        Keyspace {
            read: read.iter().map(|(key, value)| (key.to_string(), Some(expiring(key, value)))).chain([("absent".to_string(), None)]).collect(),
            clock_ms: 400,
            changed: BTreeMap::new(),
            seen: BTreeSet::new(),
            value_bytes_max: 8,
            key_bytes_max: 8,
            loaded: Lists::new(),
            lists: Lists::new(),
            missing: BTreeSet::new(),
            journal: Vec::new(),
        }
    }

    fn written(value: &str, lease: Option<u64>, ttl: Ttl) -> Change {
        Change::Written(Written { value: value.as_bytes().to_vec(), lease, ttl })
    }

    #[test]
    fn commands_see_their_own_changes_and_only_real_changes_are_committed() {
        let mut space = keyspace(&[("k", "old")]);
        assert_eq!(space.get("k"), Ok(Some(b"old".to_vec())));
        space.set("k", b"new".to_vec(), true, Ttl::Keep).unwrap();
        assert_eq!(space.get("k"), Ok(Some(b"new".to_vec())));
        // Created and deleted within the batch: no change to commit.
        space.set("absent", b"x".to_vec(), false, Ttl::Clear).unwrap();
        assert!(space.delete("absent"));
        let changes: Vec<(String, Change)> = space.changes().into_iter().map(|(key, change)| (key.clone(), change.clone())).collect();
        assert_eq!(changes, vec![("k".to_string(), written("new", Some(3), Ttl::Keep))], "the lease and the expiry kept");
        assert_eq!(space.unchanged("k"), KeyTest::ModRevision(7));
        assert_eq!(space.unchanged("absent"), KeyTest::Absent);
        assert_eq!(space.seen, ["absent", "k"].iter().map(|key| key.to_string()).collect());
    }

    #[test]
    fn expiries_read_against_the_clock_of_the_view_and_keeping_none_is_a_plain_put() {
        let mut space = keyspace(&[("k", "old"), ("lasting", "v")]);
        assert_eq!((space.ttl_ms("k"), space.ttl_ms("lasting"), space.ttl_ms("absent")), (Some(Some(600)), Some(None), None));
        space.set("k", b"new".to_vec(), false, Ttl::After { ttl_ms: 50 }).unwrap();
        assert_eq!(space.ttl_ms("k"), Some(Some(50)), "as set within the batch");
        space.set("lasting", b"w".to_vec(), true, Ttl::Keep).unwrap();
        space.set("absent", b"x".to_vec(), false, Ttl::Keep).unwrap();
        let changes: BTreeMap<String, Change> = space.changes().into_iter().map(|(key, change)| (key.clone(), change.clone())).collect();
        assert_eq!(changes["lasting"], written("w", Some(3), Ttl::Clear), "no expiry to keep");
        assert_eq!(changes["absent"], written("x", None, Ttl::Clear));
        assert_eq!(changes["k"], written("new", None, Ttl::After { ttl_ms: 50 }));
    }

    #[test]
    fn a_list_is_a_key_of_another_kind_that_set_replaces_and_expire_reaches() {
        let mut space = keyspace(&[]);
        let list = ListRecord { meta: crate::state::command::KeyMeta { create_revision: 2, mod_revision: 5, version: 3 }, first: 0, len: 2 };
        space.read.insert("l".into(), Some(KeyRead::List { list, expiry: None }));
        assert_eq!(space.get("l"), Err(wrong_type()));
        assert_eq!((space.string("l"), space.exists("l"), space.kind("l"), space.kind("absent")), (None, true, "list", "none"));
        space.expire("l", Ttl::After { ttl_ms: 10 });
        assert_eq!(space.ttl_ms("l"), Some(Some(10)));
        assert_eq!(space.changes(), vec![(&"l".to_string(), &Change::Expiry(Ttl::After { ttl_ms: 10 }))]);
        assert_eq!(space.unchanged("l"), KeyTest::ModRevision(5));
        space.set("l", b"str".to_vec(), false, Ttl::Keep).unwrap();
        assert_eq!(space.get("l"), Ok(Some(b"str".to_vec())));
        assert_eq!(space.ttl_ms("l"), Some(Some(10)), "KEEPTTL keeps the expiry the batch gave");
        assert_eq!(space.changes(), vec![(&"l".to_string(), &written("str", None, Ttl::After { ttl_ms: 10 }))]);
    }

    #[test]
    fn a_command_that_answers_an_error_leaves_nothing_changed() {
        let mut space = keyspace(&[("k", "old")]);
        let reply = space.attempt(|space| {
            space.set("k", b"new".to_vec(), false, Ttl::Clear).unwrap();
            space.set("other", b"too long for the bound".to_vec(), false, Ttl::Clear).err().unwrap()
        });
        assert!(matches!(reply, Reply::Error(_)));
        assert_eq!(space.get("k"), Ok(Some(b"old".to_vec())));
        assert!(space.changes().is_empty());
    }
}
