//! Redis's list commands on Concord's lists (`state::list`): `LPUSH`, `RPUSH`,
//! `LPUSHX`, `RPUSHX`, `LPOP`, `RPOP`, `LLEN`, `LRANGE`, `LINDEX`, `LSET`, `LREM`,
//! `LTRIM`, `LMOVE`, `RPOPLPUSH`, and the blocking `BLPOP`, `BRPOP`, `BLMOVE` and
//! `BRPOPLPUSH`.
//!
//! Each write is one list command of the core, through the log like any write (a
//! push and a pop share log entries with other writes), so it is atomic and
//! linearizable, and `WRONGTYPE` comes from the state machine itself. A read is a
//! linearizable read of one view.
//!
//! A blocking pop waits on the node the client is connected to. It looks at its keys
//! in this node's state (a hint only) each time the node applies an entry, and when
//! one has items it proposes the pop, which the log decides: if another client took
//! the item first, the pop finds the list empty and the wait goes on. The wait
//! outlives a leader change: a pop the cluster could not take (no leader, say) is
//! tried again, until the timeout. A pop whose outcome is unknown (the connection to
//! the leader was lost after it was sent) ends the wait with `UNCERTAIN`, since the
//! item may have been taken.

use std::time::Duration;

use tokio::time::Instant;

use super::Door;
use super::errors;
use super::keyspace::{self, wrong_type};
use super::reply::Reply;
use super::strings::integer;
use crate::authorize::authorize;
use crate::service::ConsensusError;
use crate::state::access::Access;
use crate::state::auth::Role;
use crate::state::command::{Command, Outcome, Rejection};
use crate::state::kv;
use crate::state::list::{End, ITEMS_PER_COMMAND_MAX, ListCommand, ListOutcome, ListRead, ListRejection};

/// How often a blocked pop looks again even when nothing was applied (after a pop the
/// cluster could not take, say).
const BLOCKED_RECHECK: Duration = Duration::from_millis(250);

/// Whether `name` is one of the commands served here.
pub fn serves(name: &str) -> bool {
    matches!(
        name,
        "lpush"
            | "rpush"
            | "lpushx"
            | "rpushx"
            | "lpop"
            | "rpop"
            | "llen"
            | "lrange"
            | "lindex"
            | "lset"
            | "lrem"
            | "ltrim"
            | "lmove"
            | "rpoplpush"
            | "blpop"
            | "brpop"
            | "blmove"
            | "brpoplpush"
    )
}

/// Runs list command `name` (its arity checked).
pub async fn run(door: &Door, name: &str, args: &[Vec<u8>]) -> Reply {
    answer(door, name, args).await.unwrap_or_else(|refused| refused)
}

async fn answer(door: &Door, name: &str, args: &[Vec<u8>]) -> Result<Reply, Reply> {
    let key = keyspace::key(door, &args[1])?;
    let end = |name: &str| if name.starts_with('l') || name.starts_with("bl") { End::Left } else { End::Right };
    match name {
        "lpush" | "rpush" | "lpushx" | "rpushx" => {
            let items = args[2..].to_vec();
            if items.len() > ITEMS_PER_COMMAND_MAX {
                return Err(Reply::err(format!("one push adds at most {ITEMS_PER_COMMAND_MAX} items on Concord")));
            }
            for item in &items {
                kv::validate_value(item, door.limits.value_bytes_max).map_err(|e| Reply::err(e.to_string()))?;
            }
            let push = ListCommand::Push { key, items, end: end(name), only_existing: name.ends_with('x') };
            match write(door, push).await? {
                ListOutcome::Pushed { len, .. } => Ok(Reply::Integer(len as i64)),
                other => Err(unexpected(other)),
            }
        }
        "lpop" | "rpop" => pop(door, key, end(name), args.get(2)).await,
        "llen" => match read(door, &key, 0, 0).await? {
            ListRead::Items { list, .. } => Ok(Reply::Integer(list.len as i64)),
            _ => Ok(Reply::Integer(0)),
        },
        "lrange" => match read(door, &key, integer(&args[2])?, integer(&args[3])?).await? {
            ListRead::Items { items, .. } => Ok(Reply::Array(items.into_iter().map(Reply::Bulk).collect())),
            _ => Ok(Reply::Array(Vec::new())),
        },
        "lindex" => {
            let index = integer(&args[2])?;
            match read(door, &key, index, index).await? {
                ListRead::Items { items, .. } => Ok(Reply::maybe(items.into_iter().next())),
                _ => Ok(Reply::Null),
            }
        }
        "lset" => {
            let set = ListCommand::Set { key, index: integer(&args[2])?, item: args[3].clone() };
            kv::validate_value(&args[3], door.limits.value_bytes_max).map_err(|e| Reply::err(e.to_string()))?;
            write(door, set).await.map(|_| Reply::ok())
        }
        "lrem" => match write(door, ListCommand::Remove { key, count: integer(&args[2])?, item: args[3].clone() }).await? {
            ListOutcome::Removed { removed, .. } => Ok(Reply::Integer(removed as i64)),
            other => Err(unexpected(other)),
        },
        "ltrim" => write(door, ListCommand::Trim { key, start: integer(&args[2])?, stop: integer(&args[3])? }).await.map(|_| Reply::ok()),
        "lmove" | "rpoplpush" | "blmove" | "brpoplpush" => {
            let destination = keyspace::key(door, &args[2])?;
            let (from, to) = match name {
                "lmove" | "blmove" => (direction(&args[3])?, direction(&args[4])?),
                _ => (End::Right, End::Left),
            };
            let timeout = match name {
                "blmove" => Some(timeout(&args[5])?),
                "brpoplpush" => Some(timeout(&args[3])?),
                _ => None,
            };
            let moving = |source: &str| ListCommand::Move { source: source.to_string(), destination: destination.clone(), from, to };
            match timeout {
                None => moved(write(door, moving(&key)).await?),
                Some(timeout) => match blocking(door, std::slice::from_ref(&key), timeout, moving).await? {
                    Some((_, outcome)) => moved(outcome),
                    None => Ok(Reply::NullArray),
                },
            }
        }
        _ => {
            // BLPOP and BRPOP: keys, then the timeout.
            let keys = args[1..args.len() - 1].iter().map(|arg| keyspace::key(door, arg)).collect::<Result<Vec<_>, _>>()?;
            let timeout = timeout(&args[args.len() - 1])?;
            let popping = |key: &str| ListCommand::Pop { key: key.to_string(), end: end(name), count: 1 };
            match blocking(door, &keys, timeout, popping).await? {
                Some((key, ListOutcome::Popped { mut items, .. })) if !items.is_empty() => {
                    Ok(Reply::Array(vec![Reply::bulk(key), Reply::Bulk(items.remove(0))]))
                }
                Some((_, other)) => Err(unexpected(other)),
                None => Ok(Reply::NullArray),
            }
        }
    }
}

/// `LPOP key [count]`: one item (or null), or up to `count` (a null array when the
/// key does not exist).
async fn pop(door: &Door, key: String, end: End, count: Option<&Vec<u8>>) -> Result<Reply, Reply> {
    let wanted = match count.map(|count| integer(count)).transpose()? {
        Some(wanted) if wanted < 0 => return Err(Reply::err("value is out of range, must be positive")),
        Some(0) => {
            return match read(door, &key, 0, 0).await? {
                ListRead::Items { .. } => Ok(Reply::Array(Vec::new())),
                _ => Ok(Reply::NullArray),
            };
        }
        wanted => wanted,
    };
    let taking = wanted.map_or(1, |wanted| wanted.min(ITEMS_PER_COMMAND_MAX as i64) as u32);
    match (write(door, ListCommand::Pop { key, end, count: taking }).await?, wanted) {
        (ListOutcome::Popped { items, .. }, None) => Ok(Reply::maybe(items.into_iter().next())),
        (ListOutcome::Popped { items, .. }, Some(_)) if items.is_empty() => Ok(Reply::NullArray),
        (ListOutcome::Popped { items, .. }, Some(_)) => Ok(Reply::Array(items.into_iter().map(Reply::Bulk).collect())),
        (other, _) => Err(unexpected(other)),
    }
}

fn moved(outcome: ListOutcome) -> Result<Reply, Reply> {
    match outcome {
        ListOutcome::Moved { item, .. } => Ok(Reply::maybe(item)),
        other => Err(unexpected(other)),
    }
}

/// `LEFT` or `RIGHT`.
fn direction(arg: &[u8]) -> Result<End, Reply> {
    match arg.to_ascii_uppercase().as_slice() {
        b"LEFT" => Ok(End::Left),
        b"RIGHT" => Ok(End::Right),
        _ => Err(Reply::err("syntax error")),
    }
}

/// A blocking command's timeout in seconds (0: none), as Redis reads it.
fn timeout(arg: &[u8]) -> Result<Option<Duration>, Reply> {
    let seconds: f64 = std::str::from_utf8(arg)
        .ok()
        .and_then(|text| text.parse().ok())
        .filter(|seconds: &f64| seconds.is_finite())
        .ok_or_else(|| Reply::err("timeout is not a float or out of range"))?;
    if seconds < 0.0 {
        return Err(Reply::err("timeout is negative"));
    }
    Ok((seconds > 0.0).then(|| Duration::from_secs_f64(seconds.min(1e9))))
}

/// Proposes `command`: its outcome, or the reply to its refusal.
async fn write(door: &Door, command: ListCommand) -> Result<ListOutcome, Reply> {
    match door.propose(Command::List(command)).await? {
        Outcome::List(outcome) => Ok(outcome),
        Outcome::Rejected(Rejection::List(refused)) => Err(refusal(refused)),
        other => Err(errors::unexpected(other)),
    }
}

fn refusal(refused: ListRejection) -> Reply {
    match refused {
        ListRejection::WrongType { .. } => wrong_type(),
        ListRejection::NoSuchKey { .. } => Reply::err("no such key"),
        ListRejection::IndexOutOfRange { .. } => Reply::err("index out of range"),
        ListRejection::TooLong { key, limit } => Reply::err(format!("list '{key}' would hold more than Concord's {limit} items")),
        ListRejection::Invalid { reason } => Reply::err(reason),
    }
}

fn unexpected(outcome: ListOutcome) -> Reply {
    Reply::err(format!("a list command produced an unexpected outcome ({outcome:?}); a bug of Concord's"))
}

/// Reads list `key` from `start` to `stop` in a linearizable view; `WRONGTYPE` for a
/// string.
async fn read(door: &Door, key: &str, start: i64, stop: i64) -> Result<ListRead, Reply> {
    authorize(|| Access::name(Role::Read, "key", key)).map_err(errors::consensus)?;
    door.core.linearize().await.map_err(errors::consensus)?;
    match door.reader.list_items(key, start, stop).map_err(errors::view)?.value {
        ListRead::NotAList => Err(wrong_type()),
        read => Ok(read),
    }
}

/// Waits until `command` (built for one of `keys`, in order) takes an item, or
/// `timeout` passes (`None`: forever): the key and the outcome, or `None` at the
/// timeout.
async fn blocking(
    door: &Door,
    keys: &[String],
    timeout: Option<Duration>,
    command: impl Fn(&str) -> ListCommand,
) -> Result<Option<(String, ListOutcome)>, Reply> {
    for key in keys {
        authorize(|| Access::name(Role::Write, "key", key)).map_err(errors::consensus)?;
    }
    let deadline = timeout.map(|timeout| Instant::now() + timeout);
    let mut applied = door.raft.metrics();
    loop {
        for key in keys {
            // This node's state, as a hint: the pop through the log decides.
            match door.reader.list_items(key, 0, 0).map_err(errors::view)?.value {
                ListRead::NotAList => return Err(wrong_type()),
                ListRead::Absent => continue,
                ListRead::Items { list, .. } if list.len == 0 => continue,
                ListRead::Items { .. } => {}
            }
            match door.core.write(crate::state::command::Request::from(Command::List(command(key)))).await {
                Ok(response) => match response.outcome {
                    Outcome::List(ListOutcome::Popped { items, .. }) if items.is_empty() => {}
                    Outcome::List(ListOutcome::Moved { item: None, .. }) => {}
                    Outcome::List(outcome) => return Ok(Some((key.clone(), outcome))),
                    Outcome::Rejected(Rejection::List(refused)) => return Err(refusal(refused)),
                    other => return Err(errors::unexpected(other)),
                },
                // Nothing was taken (no leader, a leader taking over, busy): wait on.
                Err(refused)
                    if refused.is_definite()
                        && !matches!(refused, ConsensusError::Forbidden(_) | ConsensusError::TokenRequired | ConsensusError::TokenRevoked(_)) => {}
                Err(refused) => return Err(errors::consensus(refused)),
            }
        }
        let wait = deadline.map_or(BLOCKED_RECHECK, |deadline| deadline.saturating_duration_since(Instant::now()).min(BLOCKED_RECHECK));
        if deadline.is_some_and(|deadline| Instant::now() >= deadline) {
            return Ok(None);
        }
        tokio::select! {
            changed = applied.changed() => if changed.is_err() { return Err(Reply::Error("TRYAGAIN this node is shutting down".into())) },
            () = tokio::time::sleep(wait) => {}
        }
    }
}
