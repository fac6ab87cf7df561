//! Redis's string commands on Concord's keys: a string set here is the key
//! `/v1/kv/{key}` shows, and the other way round. Keys must be UTF-8 text within the
//! node's key bound; values are any bytes within the value bound.
//!
//! Every read is linearizable (the core's read index, then this node's state), and
//! several keys (`MGET`, `EXISTS`) are read from one view, so together they are one
//! instant. A command that reads and writes (`GETSET`, `SET ... GET`, `GETDEL`,
//! `MSETNX`) is one core transaction, conditioned as it must be, so it is atomic. A
//! read-modify-write of one key (`INCR`, `APPEND`) reads the key and writes it on the
//! condition that its `mod_revision` has not moved, and reads again if it has, up to
//! `CAS_ATTEMPTS_MAX` times (`TRYAGAIN` then): linearizable without a command of its
//! own in the state machine. Like Redis, `INCR` and `APPEND` keep a key's lease, and
//! `SET` drops it. TTL options (`EX`, `PX`, ...) are refused until keys have TTLs.

use std::collections::HashMap;

use super::Door;
use super::errors;
use super::reply::Reply;
use crate::authorize::authorize;
use crate::state::access::Access;
use crate::state::auth::Role;
use crate::state::command::{Command, Outcome, Precondition, Rejection, Request};
use crate::state::kv::{self, KvCommand, KvOutcome, KvRecord, KvRejection};
use crate::state::txn::{Condition, KeyTest, Txn, TxnOp, TxnOutcome, TxnResult};

/// Reads and conditional writes one read-modify-write command tries before it gives up.
const CAS_ATTEMPTS_MAX: usize = 64;

/// A command's early answer: an error, or (for `SET NX`) a null.
type Step<T> = Result<T, Reply>;

pub async fn run(door: &Door, name: &str, args: &[Vec<u8>]) -> Reply {
    let answer = match name {
        "get" => get(door, &args[1]).await,
        "mget" => mget(door, &args[1..]).await,
        "exists" => exists(door, &args[1..]).await,
        "strlen" => read_one(door, &args[1]).await.map(|record| Reply::Integer(record.map_or(0, |r| r.value.len() as i64))),
        "type" => read_one(door, &args[1]).await.map(|record| Reply::Simple(if record.is_some() { "string" } else { "none" }.into())),
        "set" => set(door, args).await,
        "setnx" => set_if_absent(door, &args[1], &args[2]).await.map(|set| Reply::Integer(i64::from(set))),
        "getset" => swap(door, &args[1], &args[2], Precondition::None).await,
        "getdel" => getdel(door, &args[1]).await,
        "mset" => mset(door, &args[1..]).await,
        "msetnx" => msetnx(door, &args[1..]).await,
        "del" | "unlink" => del(door, &args[1..]).await,
        "incr" => add(door, &args[1], 1).await,
        "decr" => add(door, &args[1], -1).await,
        "incrby" => match integer(&args[2]) {
            Ok(by) => add(door, &args[1], by).await,
            Err(refused) => Err(refused),
        },
        "decrby" => match integer(&args[2]).and_then(|by| by.checked_neg().ok_or_else(|| Reply::err("decrement would overflow"))) {
            Ok(by) => add(door, &args[1], by).await,
            Err(refused) => Err(refused),
        },
        "append" => append(door, &args[1], &args[2]).await,
        _ => Err(Reply::err(format!("the command '{name}' is in the table but not served here (a bug of Concord's)"))),
    };
    answer.unwrap_or_else(|refused| refused)
}

fn key(door: &Door, arg: &[u8]) -> Step<String> {
    let key = std::str::from_utf8(arg).map_err(|_| errors::not_a_key("Concord keys are UTF-8 text"))?;
    kv::validate_key(key, door.limits.key_bytes_max).map_err(errors::not_a_key)?;
    Ok(key.to_string())
}

fn value(door: &Door, arg: &[u8]) -> Step<Vec<u8>> {
    kv::validate_value(arg, door.limits.value_bytes_max).map_err(|e| Reply::err(e.to_string()))?;
    Ok(arg.to_vec())
}

/// A signed 64-bit integer written as Redis writes one: digits with an optional
/// `-`, no `+`, no leading zero, no space (Redis's `string2ll`).
fn integer(arg: &[u8]) -> Step<i64> {
    let digits = arg.strip_prefix(b"-").unwrap_or(arg);
    let canonical = match digits {
        [b'0'] => arg.len() == 1,
        [first, rest @ ..] => (b'1'..=b'9').contains(first) && rest.iter().all(u8::is_ascii_digit),
        [] => false,
    };
    let parsed = canonical.then(|| std::str::from_utf8(arg).ok()?.parse().ok()).flatten();
    parsed.ok_or_else(|| Reply::err("value is not an integer or out of range"))
}

/// The keys, checked and with the caller's right to read each, after a
/// linearizable read point: their records from one view.
async fn read_keys(door: &Door, args: &[Vec<u8>]) -> Step<Vec<Option<KvRecord>>> {
    let keys = args.iter().map(|arg| key(door, arg)).collect::<Step<Vec<String>>>()?;
    for key in &keys {
        authorize(|| Access::name(Role::Read, "key", key)).map_err(errors::consensus)?;
    }
    door.core.linearize().await.map_err(errors::consensus)?;
    Ok(door.reader.get_all(&keys).map_err(errors::view)?.value)
}

async fn read_one(door: &Door, arg: &[u8]) -> Step<Option<KvRecord>> {
    Ok(read_keys(door, std::slice::from_ref(&arg.to_vec())).await?.pop().flatten())
}

async fn get(door: &Door, arg: &[u8]) -> Step<Reply> {
    Ok(Reply::maybe(read_one(door, arg).await?.map(|record| record.value)))
}

async fn mget(door: &Door, args: &[Vec<u8>]) -> Step<Reply> {
    // A key Concord cannot hold is a key that does not exist, as a wrong type is in Redis.
    let keys: Vec<Vec<u8>> = args.iter().filter(|arg| key(door, arg).is_ok()).cloned().collect();
    let mut found = read_keys(door, &keys).await?.into_iter();
    let values = args.iter().map(|arg| if key(door, arg).is_ok() { found.next().flatten().map(|r| r.value) } else { None });
    Ok(Reply::Array(values.map(Reply::maybe).collect()))
}

async fn exists(door: &Door, args: &[Vec<u8>]) -> Step<Reply> {
    Ok(Reply::Integer(read_keys(door, args).await?.iter().filter(|record| record.is_some()).count() as i64))
}

/// Proposes `command` and returns its outcome; a refusal is returned as an outcome
/// too, for the caller to read.
async fn propose(door: &Door, command: Command) -> Step<Outcome> {
    let response = door.core.write(Request::from(command)).await.map_err(errors::consensus)?;
    Ok(response.outcome)
}

/// Puts `key` on `precondition`; false when the precondition did not hold.
async fn put(door: &Door, key: String, value: Vec<u8>, precondition: Precondition, lease: Option<u64>) -> Step<bool> {
    match propose(door, Command::Kv(KvCommand::Put { key, value, precondition, lease, fence: None })).await? {
        Outcome::Kv(KvOutcome::Put { .. }) => Ok(true),
        Outcome::Rejected(Rejection::Kv(KvRejection::PreconditionFailed { .. })) => Ok(false),
        Outcome::Rejected(rejection) => Err(errors::rejection(rejection)),
        other => Err(unexpected(&other)),
    }
}

fn unexpected(outcome: &Outcome) -> Reply {
    Reply::err(format!("the write produced an unexpected outcome ({outcome:?}); a bug of Concord's"))
}

/// Runs `txn` and returns its outcome.
async fn transact(door: &Door, txn: Txn) -> Step<TxnOutcome> {
    match propose(door, Command::Txn(txn)).await? {
        Outcome::Txn(outcome) => Ok(outcome),
        Outcome::Rejected(rejection) => Err(errors::rejection(rejection)),
        other => Err(unexpected(&other)),
    }
}

/// The value a transaction's `Get` found, if it ran and found one.
fn got(outcome: &TxnOutcome) -> Option<Vec<u8>> {
    outcome.results.iter().find_map(|result| match result {
        TxnResult::Got { record: Some(record), .. } => Some(record.value.clone()),
        _ => None,
    })
}

/// `SET key value [NX|XX] [GET]`.
async fn set(door: &Door, args: &[Vec<u8>]) -> Step<Reply> {
    let (key_arg, value_arg) = (&args[1], &args[2]);
    let (mut precondition, mut get_old) = (Precondition::None, false);
    for option in &args[3..] {
        match option.to_ascii_uppercase().as_slice() {
            b"NX" if precondition == Precondition::None => precondition = Precondition::Absent,
            b"XX" if precondition == Precondition::None => precondition = Precondition::Exists,
            b"GET" => get_old = true,
            b"EX" | b"PX" | b"EXAT" | b"PXAT" | b"KEEPTTL" => {
                return Err(Reply::err("TTL options (EX, PX, EXAT, PXAT, KEEPTTL) are not supported yet: Concord keys have no TTL (docs/redis.md)"));
            }
            _ => return Err(Reply::err("syntax error")),
        }
    }
    if get_old {
        return swap(door, key_arg, value_arg, precondition).await;
    }
    let set = put(door, key(door, key_arg)?, value(door, value_arg)?, precondition, None).await?;
    Ok(if set { Reply::ok() } else { Reply::Null })
}

async fn set_if_absent(door: &Door, key_arg: &[u8], value_arg: &[u8]) -> Step<bool> {
    put(door, key(door, key_arg)?, value(door, value_arg)?, Precondition::Absent, None).await
}

/// Sets `key` on `precondition` and answers its old value, in one transaction
/// (`GETSET`, `SET ... GET`): null when it did not exist, whether or not it was set.
async fn swap(door: &Door, key_arg: &[u8], value_arg: &[u8], precondition: Precondition) -> Step<Reply> {
    let (key, value) = (key(door, key_arg)?, value(door, value_arg)?);
    let get = TxnOp::Get { key: key.clone() };
    let put = TxnOp::Put { key: key.clone(), value, lease: None };
    let txn = match precondition {
        Precondition::Absent => Txn { compare: vec![Condition::Key { key, test: KeyTest::Absent }], success: vec![put], failure: vec![get] },
        Precondition::Exists => Txn { compare: vec![Condition::Key { key, test: KeyTest::Exists }], success: vec![get, put], failure: Vec::new() },
        _ => Txn { compare: Vec::new(), success: vec![get, put], failure: Vec::new() },
    };
    Ok(Reply::maybe(got(&transact(door, txn).await?)))
}

async fn getdel(door: &Door, key_arg: &[u8]) -> Step<Reply> {
    let key = key(door, key_arg)?;
    let success = vec![TxnOp::Get { key: key.clone() }, TxnOp::Delete { key: key.clone() }];
    let txn = Txn { compare: vec![Condition::Key { key, test: KeyTest::Exists }], success, failure: Vec::new() };
    Ok(Reply::maybe(got(&transact(door, txn).await?)))
}

/// The pairs of `MSET` and `MSETNX`, the last value of a key repeated winning (as in
/// Redis), in the order the keys first appear.
fn pairs(door: &Door, args: &[Vec<u8>]) -> Step<Vec<(String, Vec<u8>)>> {
    if !args.len().is_multiple_of(2) {
        return Err(Reply::err("wrong number of arguments for 'mset' command"));
    }
    let mut order: Vec<String> = Vec::new();
    let mut values: HashMap<String, Vec<u8>> = HashMap::new();
    for pair in args.chunks(2) {
        let key = key(door, &pair[0])?;
        if values.insert(key.clone(), value(door, &pair[1])?).is_none() {
            order.push(key);
        }
    }
    Ok(order
        .into_iter()
        .map(|key| {
            let value = values.remove(&key).unwrap_or_default();
            (key, value)
        })
        .collect())
}

fn puts(pairs: Vec<(String, Vec<u8>)>) -> Vec<TxnOp> {
    pairs.into_iter().map(|(key, value)| TxnOp::Put { key, value, lease: None }).collect()
}

async fn mset(door: &Door, args: &[Vec<u8>]) -> Step<Reply> {
    transact(door, Txn { compare: Vec::new(), success: puts(pairs(door, args)?), failure: Vec::new() }).await?;
    Ok(Reply::ok())
}

async fn msetnx(door: &Door, args: &[Vec<u8>]) -> Step<Reply> {
    let pairs = pairs(door, args).map_err(|_| Reply::err("wrong number of arguments for 'msetnx' command"))?;
    let compare = pairs.iter().map(|(key, _)| Condition::Key { key: key.clone(), test: KeyTest::Absent }).collect();
    let outcome = transact(door, Txn { compare, success: puts(pairs), failure: Vec::new() }).await?;
    Ok(Reply::Integer(i64::from(outcome.succeeded)))
}

/// `DEL` and `UNLINK`: each key deleted on its own (together they may share one log
/// entry); the number that existed.
async fn del(door: &Door, args: &[Vec<u8>]) -> Step<Reply> {
    let keys = args.iter().map(|arg| key(door, arg)).collect::<Step<Vec<String>>>()?;
    let deletes = keys.into_iter().map(|key| propose(door, Command::Kv(KvCommand::Delete { key, precondition: Precondition::None, fence: None })));
    let mut deleted = 0;
    for outcome in futures_util::future::join_all(deletes).await {
        match outcome? {
            Outcome::Kv(KvOutcome::Deleted { .. }) => deleted += 1,
            Outcome::Rejected(Rejection::Kv(KvRejection::NotFound { .. })) => {}
            Outcome::Rejected(rejection) => return Err(errors::rejection(rejection)),
            other => return Err(unexpected(&other)),
        }
    }
    Ok(Reply::Integer(deleted))
}

/// Reads `key`, computes its new value from the old (`None`: absent), and writes it
/// on the condition that the key has not changed since; again if it has. Returns
/// what `change` returned with the value written.
async fn read_modify_write<T>(door: &Door, key_arg: &[u8], change: impl Fn(Option<&[u8]>) -> Step<(Vec<u8>, T)>) -> Step<T> {
    let key = key(door, key_arg)?;
    for _ in 0..CAS_ATTEMPTS_MAX {
        let current = read_one(door, key_arg).await?;
        let (new_value, answer) = change(current.as_ref().map(|record| record.value.as_slice()))?;
        let new_value = value(door, &new_value)?;
        let (precondition, lease) = match &current {
            Some(record) => (Precondition::ModRevision(record.meta.mod_revision), record.lease),
            None => (Precondition::Absent, None),
        };
        if put(door, key.clone(), new_value, precondition, lease).await? {
            return Ok(answer);
        }
    }
    Err(Reply::Error(format!("TRYAGAIN key {key:?} changed under each of {CAS_ATTEMPTS_MAX} attempts; retry")))
}

async fn add(door: &Door, key_arg: &[u8], by: i64) -> Step<Reply> {
    let sum = read_modify_write(door, key_arg, |current| {
        let old = match current {
            None => 0,
            Some(bytes) => integer(bytes)?,
        };
        let new = old.checked_add(by).ok_or_else(|| Reply::err("increment or decrement would overflow"))?;
        Ok((new.to_string().into_bytes(), new))
    })
    .await?;
    Ok(Reply::Integer(sum))
}

async fn append(door: &Door, key_arg: &[u8], suffix: &[u8]) -> Step<Reply> {
    let len = read_modify_write(door, key_arg, |current| {
        let mut joined = current.unwrap_or_default().to_vec();
        joined.extend_from_slice(suffix);
        let len = joined.len() as i64;
        Ok((joined, len))
    })
    .await?;
    Ok(Reply::Integer(len))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integers_are_read_as_redis_reads_them() {
        for (text, read) in [("0", Some(0)), ("-7", Some(-7)), ("9223372036854775807", Some(i64::MAX)), ("-9223372036854775808", Some(i64::MIN))] {
            assert_eq!(integer(text.as_bytes()).ok(), read, "{text}");
        }
        for text in ["", "-", "+1", "01", "-0", " 1", "1 ", "1.5", "9223372036854775808", "abc"] {
            assert!(integer(text.as_bytes()).is_err(), "{text:?} is not an integer to Redis");
        }
    }
}
