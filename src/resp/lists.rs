//! Redis's list commands on Concord's lists (`state::list`): `LPUSH`, `RPUSH`,
//! `LPUSHX`, `RPUSHX`, `LPOP`, `RPOP`, `LLEN`, `LRANGE`, `LINDEX`, `LSET`, `LREM`,
//! `LTRIM`, `LMOVE`, `RPOPLPUSH`, and the blocking `BLPOP`, `BRPOP`, `BLMOVE` and
//! `BRPOPLPUSH`.
//!
//! Each write is one list command of the core, through the log like any write (a
//! push and a pop share log entries with other writes, and the pushes and pops of one
//! pipeline go as one entry, `run_batch`), so it is atomic and linearizable, and
//! `WRONGTYPE` comes from the state machine itself. A read is a linearizable read of
//! one view. In a transaction or a script, the same commands run on the step's lists
//! instead (`in_step`, `keyspace`).
//!
//! A blocking pop waits on the node the client is connected to. It looks at its keys
//! in this node's state (a hint only) each time the node applies an entry, and when
//! one has items it proposes the pop, which the log decides: if another client took
//! the item first, the pop finds the list empty and the wait goes on. The wait
//! outlives a leader change: a pop the cluster could not take (no leader, say) is
//! tried again, until the timeout. A pop whose outcome is unknown (the connection to
//! the leader was lost after it was sent) ends the wait with `UNCERTAIN`, since the
//! item may have been taken.

use std::collections::VecDeque;
use std::time::Duration;

use tokio::time::Instant;

use super::Door;
use super::errors;
use super::keyspace::{self, Keyspace, wrong_type};
use super::reply::Reply;
use super::strings::integer;
use crate::authorize::authorize;
use crate::service::ConsensusError;
use crate::state::access::Access;
use crate::state::auth::Role;
use crate::state::command::{Command, Outcome, Rejection};
use crate::state::kv;
use crate::state::list::{End, ITEMS_PER_COMMAND_MAX, ListCommand, ListOutcome, ListRead, ListRejection, RANGE_MAX, clamp};

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

/// The bounds a list command's arguments are checked against.
#[derive(Clone, Copy)]
pub struct Bounds {
    pub key_bytes_max: usize,
    pub value_bytes_max: usize,
}

/// A list command as parsed: what it asks of the core, and how its answer is shaped.
enum Call {
    /// A write through the log.
    Write(ListCommand, Shape),
    /// A read of `key`'s items from `start` to `stop`.
    Read { key: String, start: i64, stop: i64, shape: Shape },
    /// A blocking pop or move: one command per key, tried in order, until `timeout`
    /// (`None`: forever).
    Blocking { keys: Vec<String>, commands: Vec<ListCommand>, timeout: Option<Duration>, shape: Shape },
}

/// How a list command answers.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Shape {
    /// The length after a push (`LPUSH`), or the number removed (`LREM`).
    Count,
    /// `OK` (`LSET`, `LTRIM`).
    Done,
    /// One item or null (`LPOP` without a count, `LMOVE`, `BLMOVE`).
    Item,
    /// An array of items, null when the list does not exist (`LPOP` with a count).
    Items,
    /// An empty array if the list exists, else null (`LPOP key 0`).
    NoneIfExists,
    /// `LLEN`.
    Length,
    /// `LRANGE`.
    Range,
    /// `LINDEX`.
    Index,
    /// The key and the item (`BLPOP`).
    KeyAndItem,
}

impl Shape {
    /// The answer to a write's outcome (`key`: the key it took from, for `BLPOP`).
    fn written(self, key: &str, outcome: ListOutcome) -> Reply {
        match (self, outcome) {
            (Shape::Count, ListOutcome::Pushed { len: count, .. } | ListOutcome::Removed { removed: count, .. }) => Reply::Integer(count as i64),
            (Shape::Done, ListOutcome::Set { .. } | ListOutcome::Trimmed { .. }) => Reply::ok(),
            (Shape::Item, ListOutcome::Popped { items, .. }) => Reply::maybe(items.into_iter().next()),
            (Shape::Item, ListOutcome::Moved { item, .. }) => Reply::maybe(item),
            (Shape::Items, ListOutcome::Popped { items, .. }) if items.is_empty() => Reply::NullArray,
            (Shape::Items, ListOutcome::Popped { items, .. }) => Reply::Array(items.into_iter().map(Reply::Bulk).collect()),
            (Shape::KeyAndItem, ListOutcome::Popped { items, .. }) => match items.into_iter().next() {
                Some(item) => Reply::Array(vec![Reply::bulk(key), Reply::Bulk(item)]),
                None => Reply::NullArray,
            },
            (_, outcome) => unexpected(outcome),
        }
    }

    /// The answer to a read: the list's length and the items asked for (`None`: no list).
    fn read(self, found: Option<(u64, Vec<Vec<u8>>)>) -> Reply {
        match (self, found) {
            (Shape::NoneIfExists, Some(_)) => Reply::Array(Vec::new()),
            (Shape::NoneIfExists, None) => Reply::NullArray,
            (Shape::Length, found) => Reply::Integer(found.map_or(0, |(len, _)| len as i64)),
            (Shape::Range, found) => Reply::Array(found.map(|(_, items)| items.into_iter().map(Reply::Bulk).collect()).unwrap_or_default()),
            (_, found) => Reply::maybe(found.and_then(|(_, items)| items.into_iter().next())),
        }
    }
}

/// Whether a blocking command's `outcome` took an item.
fn took(outcome: &ListOutcome) -> bool {
    match outcome {
        ListOutcome::Popped { items, .. } => !items.is_empty(),
        ListOutcome::Moved { item, .. } => item.is_some(),
        _ => true,
    }
}

/// Parses list command `name` (its arity checked).
fn parse(bounds: Bounds, name: &str, args: &[Vec<u8>]) -> Result<Call, Reply> {
    let key_of = |arg: &[u8]| keyspace::key_within(arg, bounds.key_bytes_max);
    let item = |arg: &Vec<u8>| kv::validate_value(arg, bounds.value_bytes_max).map(|()| arg.clone()).map_err(|e| Reply::err(e.to_string()));
    let key = key_of(&args[1])?;
    let end = if name.starts_with('l') || name.starts_with("bl") { End::Left } else { End::Right };
    Ok(match name {
        "lpush" | "rpush" | "lpushx" | "rpushx" => {
            if args.len() - 2 > ITEMS_PER_COMMAND_MAX {
                return Err(Reply::err(format!("one push adds at most {ITEMS_PER_COMMAND_MAX} items on Concord")));
            }
            let items = args[2..].iter().map(item).collect::<Result<_, _>>()?;
            Call::Write(ListCommand::Push { key, items, end, only_existing: name.ends_with('x') }, Shape::Count)
        }
        "lpop" | "rpop" => match args.get(2).map(|count| integer(count)).transpose()? {
            None => Call::Write(ListCommand::Pop { key, end, count: 1 }, Shape::Item),
            Some(count) if count < 0 => return Err(Reply::err("value is out of range, must be positive")),
            Some(0) => Call::Read { key, start: 0, stop: 0, shape: Shape::NoneIfExists },
            Some(count) => Call::Write(ListCommand::Pop { key, end, count: count.min(ITEMS_PER_COMMAND_MAX as i64) as u32 }, Shape::Items),
        },
        "llen" => Call::Read { key, start: 0, stop: 0, shape: Shape::Length },
        "lrange" => Call::Read { key, start: integer(&args[2])?, stop: integer(&args[3])?, shape: Shape::Range },
        "lindex" => {
            let index = integer(&args[2])?;
            Call::Read { key, start: index, stop: index, shape: Shape::Index }
        }
        "lset" => {
            let index = integer(&args[2])?;
            Call::Write(ListCommand::Set { key, index, item: item(&args[3])? }, Shape::Done)
        }
        "lrem" => Call::Write(ListCommand::Remove { key, count: integer(&args[2])?, item: args[3].clone() }, Shape::Count),
        "ltrim" => Call::Write(ListCommand::Trim { key, start: integer(&args[2])?, stop: integer(&args[3])? }, Shape::Done),
        "lmove" | "rpoplpush" | "blmove" | "brpoplpush" => {
            let destination = key_of(&args[2])?;
            let (from, to) = match name {
                "lmove" | "blmove" => (direction(&args[3])?, direction(&args[4])?),
                _ => (End::Right, End::Left),
            };
            let moving = ListCommand::Move { source: key.clone(), destination, from, to };
            match name {
                "blmove" => Call::Blocking { keys: vec![key], commands: vec![moving], timeout: timeout(&args[5])?, shape: Shape::Item },
                "brpoplpush" => Call::Blocking { keys: vec![key], commands: vec![moving], timeout: timeout(&args[3])?, shape: Shape::Item },
                _ => Call::Write(moving, Shape::Item),
            }
        }
        _ => {
            // BLPOP and BRPOP: keys, then the timeout.
            let keys = args[1..args.len() - 1].iter().map(|arg| key_of(arg)).collect::<Result<Vec<_>, _>>()?;
            let commands = keys.iter().map(|key| ListCommand::Pop { key: key.clone(), end, count: 1 }).collect();
            Call::Blocking { keys, commands, timeout: timeout(&args[args.len() - 1])?, shape: Shape::KeyAndItem }
        }
    })
}

/// Runs list command `name` (its arity checked) alone.
pub async fn run(door: &Door, name: &str, args: &[Vec<u8>]) -> Reply {
    let bounds = Bounds { key_bytes_max: door.limits.key_bytes_max, value_bytes_max: door.limits.value_bytes_max };
    let answer = async {
        Ok(match parse(bounds, name, args)? {
            Call::Write(command, shape) => {
                let key = command.keys()[0].to_string();
                shape.written(&key, write(door, command).await?)
            }
            Call::Read { key, start, stop, shape } => shape.read(match read(door, &key, start, stop).await? {
                ListRead::Items { list, items, .. } => Some((list.len, items)),
                _ => None,
            }),
            Call::Blocking { keys, commands, timeout, shape } => match blocking(door, &keys, &commands, timeout).await? {
                Some((key, outcome)) => shape.written(&key, outcome),
                // Timed out: a null array, whatever the command, as in Redis.
                None => Reply::NullArray,
            },
        })
    };
    answer.await.unwrap_or_else(|refused: Reply| refused)
}

/// Whether pipelined command `args` (a list command, its arity checked) may share a
/// log entry with the list commands around it (`run_batch`): a push or a pop, or one
/// whose arguments are refused before anything is proposed.
pub fn batchable(bounds: Bounds, name: &str, args: &[Vec<u8>]) -> bool {
    match parse(bounds, name, args) {
        Ok(Call::Write(command, _)) => Command::List(command).is_batchable(),
        Ok(_) => false,
        Err(_) => true,
    }
}

/// Runs pipelined list commands (each `batchable`) as one log entry, in order: each
/// applies as if alone and gets its own answer (a pipeline is not a transaction).
pub async fn run_batch(door: &Door, commands: &[Vec<Vec<u8>>]) -> Vec<Reply> {
    let bounds = Bounds { key_bytes_max: door.limits.key_bytes_max, value_bytes_max: door.limits.value_bytes_max };
    let mut replies: Vec<Option<Reply>> = Vec::with_capacity(commands.len());
    let (mut requests, mut shapes) = (Vec::new(), Vec::new());
    for args in commands {
        let name = String::from_utf8_lossy(&args[0]).to_ascii_lowercase();
        match parse(bounds, &name, args) {
            Ok(Call::Write(command, shape)) => {
                shapes.push((command.keys()[0].to_string(), shape));
                requests.push(crate::state::command::Request::from(Command::List(command)));
                replies.push(None);
            }
            Ok(_) => replies.push(Some(Reply::err("a list command that cannot share a log entry was batched (a bug of Concord's)"))),
            Err(refused) => replies.push(Some(refused)),
        }
    }
    let answers: Vec<Reply> = match requests.is_empty() {
        true => Vec::new(),
        false => match door.propose(Command::Batch(requests)).await {
            Ok(Outcome::Batch(responses)) if responses.len() == shapes.len() => responses
                .into_iter()
                .zip(shapes)
                .map(|(response, (key, shape))| match response.outcome {
                    Outcome::List(outcome) => shape.written(&key, outcome),
                    Outcome::Rejected(Rejection::List(refused)) => refusal(refused),
                    other => errors::unexpected(other),
                })
                .collect(),
            Ok(other) => vec![errors::unexpected(other); shapes.len()],
            // Nothing of the batch was done (or, for UNCERTAIN, perhaps all of it).
            Err(refused) => vec![refused; shapes.len()],
        },
    };
    let mut answers = answers.into_iter();
    replies
        .into_iter()
        .map(|reply| reply.or_else(|| answers.next()).unwrap_or_else(|| Reply::err("a batched command went unanswered (a bug of Concord's)")))
        .collect()
}

/// Runs list command `name` (its arity checked) as part of a step (`EXEC`, a script):
/// on the step's lists (`Keyspace::on_list`). A blocking command does not block there,
/// as in Redis: it answers at once.
pub fn in_step(space: &mut Keyspace, name: &str, args: &[Vec<u8>]) -> Reply {
    let mut answer = || {
        Ok(match parse(space.bounds(), name, args)? {
            Call::Write(command, shape) => {
                let key = command.keys()[0].to_string();
                shape.written(&key, space.on_list(command)?)
            }
            Call::Read { key, start, stop, shape } => shape.read(space.list(&key)?.map(|list| (list.len() as u64, range(list, start, stop)))),
            Call::Blocking { keys, commands, shape, .. } => {
                for (key, command) in keys.iter().zip(commands) {
                    let outcome = space.on_list(command)?;
                    if took(&outcome) {
                        return Ok(shape.written(key, outcome));
                    }
                }
                // Redis answers BLPOP's null as an array, BLMOVE's as a string.
                if shape == Shape::KeyAndItem { Reply::NullArray } else { Reply::Null }
            }
        })
    };
    answer().unwrap_or_else(|refused: Reply| refused)
}

/// The items of `list` from `start` to `stop` (`LRANGE`'s indexes), at most
/// `RANGE_MAX`, as a read of a stored list answers.
fn range(list: &VecDeque<Vec<u8>>, start: i64, stop: i64) -> Vec<Vec<u8>> {
    match clamp(start, stop, list.len() as u64) {
        Some((start, stop)) => list.range(start as usize..=stop.min(start + RANGE_MAX - 1) as usize).cloned().collect(),
        None => Vec::new(),
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

pub fn refusal(refused: ListRejection) -> Reply {
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
async fn blocking(door: &Door, keys: &[String], commands: &[ListCommand], timeout: Option<Duration>) -> Result<Option<(String, ListOutcome)>, Reply> {
    for key in keys {
        authorize(|| Access::name(Role::Write, "key", key)).map_err(errors::consensus)?;
    }
    let deadline = timeout.map(|timeout| Instant::now() + timeout);
    let mut applied = door.raft.metrics();
    loop {
        for (key, command) in keys.iter().zip(commands) {
            // This node's state, as a hint: the pop through the log decides.
            match door.reader.list_items(key, 0, 0).map_err(errors::view)?.value {
                ListRead::NotAList => return Err(wrong_type()),
                ListRead::Absent => continue,
                ListRead::Items { list, .. } if list.len == 0 => continue,
                ListRead::Items { .. } => {}
            }
            match door.core.write(crate::state::command::Request::from(Command::List(command.clone()))).await {
                Ok(response) => match response.outcome {
                    Outcome::List(outcome) if !took(&outcome) => {}
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
