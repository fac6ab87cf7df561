//! Redis's TTL commands on Concord's per-key expiry (`state::expiry`): `EXPIRE`,
//! `PEXPIRE`, `EXPIREAT`, `PEXPIREAT` (with `NX`, `XX`, `GT`, `LT`), `PERSIST`,
//! `TTL`, `PTTL`, `GETEX`, and the expiry options of `SET` and `SETEX`.
//!
//! An expiry is kept on the replicated clock, so a key lives at least its TTL after
//! the write that set it, whichever node leads, and goes at the first tick after
//! that. A relative TTL (`EX`, `PX`, `EXPIRE`) is passed on as it is. An absolute
//! one (`EXAT`, `PXAT`, `EXPIREAT`) is Unix time, which the replicated clock is not:
//! it becomes a TTL by this node's wall clock when the command runs. `TTL` and `PTTL`
//! count from the replicated clock of the view they read, which lags real time by up
//! to a tick, so they may report a little more than Redis would, never less.

use std::time::{SystemTime, UNIX_EPOCH};

use super::keyspace::Keyspace;
use super::reply::Reply;
use crate::state::expiry::Ttl;

/// Whether `name` is one of the commands served here.
pub fn serves(name: &str) -> bool {
    matches!(name, "expire" | "pexpire" | "expireat" | "pexpireat" | "persist" | "ttl" | "pttl" | "getex")
}

/// Runs command `name` (its arity checked, its keys loaded into `space`).
pub fn run(space: &mut Keyspace, name: &str, args: &[Vec<u8>]) -> Reply {
    let key = String::from_utf8_lossy(&args[1]).into_owned();
    let answer = match name {
        "ttl" | "pttl" => Ok(Reply::Integer(match space.ttl_ms(&key) {
            None => -2,
            Some(None) => -1,
            Some(Some(ttl_ms)) if name == "pttl" => ttl_ms as i64,
            // Redis rounds to the nearest second.
            Some(Some(ttl_ms)) => ttl_ms.saturating_add(500) as i64 / 1000,
        })),
        "persist" => persist(space, &key),
        "getex" => getex(space, &key, args),
        _ => expire(space, name, &key, args),
    };
    answer.unwrap_or_else(|refused| refused)
}

/// The unit and the reference of an expiry argument.
#[derive(Clone, Copy)]
pub enum Unit {
    /// Seconds from now (`EX`, `EXPIRE`).
    Seconds,
    /// Milliseconds from now (`PX`, `PEXPIRE`).
    Millis,
    /// A Unix time in seconds (`EXAT`, `EXPIREAT`).
    UnixSeconds,
    /// A Unix time in milliseconds (`PXAT`, `PEXPIREAT`).
    UnixMillis,
}

/// How many milliseconds from now `arg` (in `unit`) is, as Redis reads it for
/// `command`: may be 0 or negative (already due).
pub fn from_now_ms(arg: &[u8], unit: Unit, command: &str) -> Result<i64, Reply> {
    let amount = super::strings::integer(arg)?;
    let invalid = || Reply::err(format!("invalid expire time in '{command}' command"));
    let ms = match unit {
        Unit::Seconds | Unit::UnixSeconds => amount.checked_mul(1000).ok_or_else(invalid)?,
        Unit::Millis | Unit::UnixMillis => amount,
    };
    match unit {
        Unit::Seconds | Unit::Millis => Ok(ms),
        Unit::UnixSeconds | Unit::UnixMillis => {
            let now_ms = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |since| since.as_millis() as i64);
            ms.checked_sub(now_ms).ok_or_else(invalid)
        }
    }
}

/// `EXPIRE key amount [NX|XX|GT|LT]` and its kind: 1 when the expiry was set (or the
/// key deleted, for a time already past), 0 when the key is missing or a condition
/// did not hold.
fn expire(space: &mut Keyspace, name: &str, key: &str, args: &[Vec<u8>]) -> Result<Reply, Reply> {
    let unit = match name {
        "expire" => Unit::Seconds,
        "pexpire" => Unit::Millis,
        "expireat" => Unit::UnixSeconds,
        _ => Unit::UnixMillis,
    };
    let (mut nx, mut xx, mut gt, mut lt) = (false, false, false, false);
    for option in &args[3..] {
        match option.to_ascii_uppercase().as_slice() {
            b"NX" => nx = true,
            b"XX" => xx = true,
            b"GT" => gt = true,
            b"LT" => lt = true,
            _ => return Err(Reply::err(format!("Unsupported option {}", String::from_utf8_lossy(option)))),
        }
    }
    if nx && (xx || gt || lt) {
        return Err(Reply::err("NX and XX, GT or LT options at the same time are not compatible"));
    }
    if gt && lt {
        return Err(Reply::err("GT and LT options at the same time are not compatible"));
    }
    let from_now_ms = from_now_ms(&args[2], unit, name)?;
    let Some(current) = space.ttl_ms(key) else { return Ok(Reply::Integer(0)) };
    // No expiry counts as an infinite one, as in Redis.
    let holds = match current {
        None => !(xx || gt),
        Some(ttl_ms) => !nx && (!gt || from_now_ms > ttl_ms as i64) && (!lt || from_now_ms < ttl_ms as i64),
    };
    if !holds {
        return Ok(Reply::Integer(0));
    }
    if from_now_ms <= 0 {
        space.delete(key);
        return Ok(Reply::Integer(1));
    }
    space.expire(key, Ttl::After { ttl_ms: from_now_ms as u64 });
    Ok(Reply::Integer(1))
}

/// `GETEX key [EX s|PX ms|EXAT t|PXAT t|PERSIST]`: the value, and its expiry set or
/// taken away.
fn getex(space: &mut Keyspace, key: &str, args: &[Vec<u8>]) -> Result<Reply, Reply> {
    // `Some(None)`: a time already past, the key goes.
    let ttl = match &args[2..] {
        [] => None,
        [option] if option.eq_ignore_ascii_case(b"PERSIST") => Some(Some(Ttl::Clear)),
        [option, amount] => {
            let unit = match option.to_ascii_uppercase().as_slice() {
                b"EX" => Unit::Seconds,
                b"PX" => Unit::Millis,
                b"EXAT" => Unit::UnixSeconds,
                b"PXAT" => Unit::UnixMillis,
                _ => return Err(Reply::err("syntax error")),
            };
            Some(super::strings::option_ttl(amount, unit, "getex")?)
        }
        _ => return Err(Reply::err("syntax error")),
    };
    let Some(value) = space.get(key)? else { return Ok(Reply::Null) };
    match ttl {
        Some(None) => {
            space.delete(key);
        }
        // Persisting a key without an expiry writes nothing.
        Some(Some(Ttl::Clear)) if space.ttl_ms(key) == Some(None) => {}
        Some(Some(ttl)) => space.expire(key, ttl),
        None => {}
    }
    Ok(Reply::Bulk(value))
}

/// `PERSIST key`: 1 when it took an expiry away.
fn persist(space: &mut Keyspace, key: &str) -> Result<Reply, Reply> {
    let Some(Some(_)) = space.ttl_ms(key) else { return Ok(Reply::Integer(0)) };
    space.expire(key, Ttl::Clear);
    Ok(Reply::Integer(1))
}
