//! Redis's string commands on Concord's keys: a string set here is the key
//! `/v1/kv/{key}` shows, and the other way round. Keys must be UTF-8 text within the
//! node's key bound; values are any bytes within the value bound.
//!
//! Each command runs on the image of its keys (`keyspace`), which makes it atomic
//! and linearizable whatever it reads and writes: `MGET` sees one instant, `INCR`
//! never loses an increment, `MSETNX` sets all or none. Like Redis, `INCR` and
//! `APPEND` keep a key's expiry (and its Concord lease), and `SET` drops both unless
//! told otherwise (`KEEPTTL`, `EX`, ... in `expiry`).

use super::expiry::{self, Unit};
use super::keyspace::Keyspace;
use super::reply::Reply;
use crate::state::expiry::Ttl;

/// Runs string command `name` (its arity checked, its keys loaded into `space`).
pub fn run(space: &mut Keyspace, name: &str, args: &[Vec<u8>]) -> Reply {
    let key = |at: usize| String::from_utf8_lossy(&args[at]).into_owned();
    let answer = match name {
        "get" => space.get(&key(1)).map(Reply::maybe),
        "mget" => Ok(Reply::Array((1..args.len()).map(|at| Reply::maybe(space.string(&key(at)))).collect())),
        "exists" => Ok(Reply::Integer((1..args.len()).filter(|at| space.exists(&key(*at))).count() as i64)),
        "strlen" => space.get(&key(1)).map(|value| Reply::Integer(value.map_or(0, |value| value.len() as i64))),
        "type" => Ok(Reply::Simple(space.kind(&key(1)).into())),
        "set" => set(space, args),
        "setnx" => set_if(space, &key(1), &args[2], Some(false), Ttl::Clear).map(|set| Reply::Integer(i64::from(set))),
        "getset" => space.get(&key(1)).and_then(|old| space.set(&key(1), args[2].clone(), false, Ttl::Clear).map(|()| Reply::maybe(old))),
        "getdel" => space.get(&key(1)).map(|old| {
            space.delete(&key(1));
            Reply::maybe(old)
        }),
        "setex" | "psetex" => {
            let unit = if name == "setex" { Unit::Seconds } else { Unit::Millis };
            // A relative amount that is positive is never past.
            let ttl = option_ttl(&args[2], unit, name).map(|ttl| ttl.unwrap_or(Ttl::Clear));
            ttl.and_then(|ttl| space.set(&key(1), args[3].clone(), false, ttl)).map(|()| Reply::ok())
        }
        "mset" | "msetnx" => mset(space, name, args),
        "del" | "unlink" => Ok(Reply::Integer((1..args.len()).filter(|at| space.delete(&key(*at))).count() as i64)),
        "incr" => add(space, &key(1), Ok(1)),
        "decr" => add(space, &key(1), Ok(-1)),
        "incrby" => add(space, &key(1), integer(&args[2])),
        "decrby" => add(space, &key(1), integer(&args[2]).and_then(|by| by.checked_neg().ok_or_else(|| Reply::err("decrement would overflow")))),
        "append" => space.get(&key(1)).and_then(|old| {
            let mut joined = old.unwrap_or_default();
            joined.extend_from_slice(&args[2]);
            let len = joined.len() as i64;
            space.set(&key(1), joined, true, Ttl::Keep).map(|()| Reply::Integer(len))
        }),
        _ => Err(Reply::err(format!("the command '{name}' is in the table but not served here (a bug of Concord's)"))),
    };
    answer.unwrap_or_else(|refused| refused)
}

/// A signed 64-bit integer written as Redis writes one: digits with an optional
/// `-`, no `+`, no leading zero, no space (Redis's `string2ll`).
pub fn integer(arg: &[u8]) -> Result<i64, Reply> {
    let digits = arg.strip_prefix(b"-").unwrap_or(arg);
    let canonical = match digits {
        [b'0'] => arg.len() == 1,
        [first, rest @ ..] => (b'1'..=b'9').contains(first) && rest.iter().all(u8::is_ascii_digit),
        [] => false,
    };
    let parsed = canonical.then(|| std::str::from_utf8(arg).ok()?.parse().ok()).flatten();
    parsed.ok_or_else(|| Reply::err("value is not an integer or out of range"))
}

/// Sets `key` if `exists` is what it says (`None`: either way); whether it set it.
fn set_if(space: &mut Keyspace, key: &str, value: &[u8], exists: Option<bool>, ttl: Ttl) -> Result<bool, Reply> {
    if exists.is_some_and(|wanted| space.exists(key) != wanted) {
        return Ok(false);
    }
    space.set(key, value.to_vec(), false, ttl)?;
    Ok(true)
}

/// An expiry option of `command` (`EX`, `PXAT`, ...), whose amount must be positive
/// as Redis checks it: the TTL, or `None` for a Unix time already past (the key then
/// goes at once, as in Redis).
pub fn option_ttl(arg: &[u8], unit: Unit, command: &str) -> Result<Option<Ttl>, Reply> {
    if integer(arg)? <= 0 {
        return Err(Reply::err(format!("invalid expire time in '{command}' command")));
    }
    match expiry::from_now_ms(arg, unit, command)? {
        ttl_ms if ttl_ms > 0 => Ok(Some(Ttl::After { ttl_ms: ttl_ms as u64 })),
        _ => Ok(None),
    }
}

/// `SET key value [NX|XX] [GET] [EX s|PX ms|EXAT unix-s|PXAT unix-ms|KEEPTTL]`.
fn set(space: &mut Keyspace, args: &[Vec<u8>]) -> Result<Reply, Reply> {
    let (mut exists, mut get_old, mut ttl, mut past) = (None, false, None, false);
    let mut options = args[3..].iter();
    while let Some(option) = options.next() {
        let unit = match option.to_ascii_uppercase().as_slice() {
            b"NX" if exists.is_none() => {
                exists = Some(false);
                continue;
            }
            b"XX" if exists.is_none() => {
                exists = Some(true);
                continue;
            }
            b"GET" => {
                get_old = true;
                continue;
            }
            b"KEEPTTL" if ttl.is_none() => {
                ttl = Some(Ttl::Keep);
                continue;
            }
            b"EX" if ttl.is_none() => Unit::Seconds,
            b"PX" if ttl.is_none() => Unit::Millis,
            b"EXAT" if ttl.is_none() => Unit::UnixSeconds,
            b"PXAT" if ttl.is_none() => Unit::UnixMillis,
            _ => return Err(Reply::err("syntax error")),
        };
        let amount = options.next().ok_or_else(|| Reply::err("syntax error"))?;
        let option = option_ttl(amount, unit, "set")?;
        past = option.is_none();
        ttl = Some(option.unwrap_or(Ttl::Clear));
    }
    let key = String::from_utf8_lossy(&args[1]).into_owned();
    let old = if get_old { Some(space.get(&key)?) } else { None };
    let set = set_if(space, &key, &args[2], exists, ttl.unwrap_or(Ttl::Clear))?;
    if set && past {
        space.delete(&key);
    }
    Ok(match old {
        Some(old) => Reply::maybe(old),
        None if set => Reply::ok(),
        None => Reply::Null,
    })
}

/// `MSET` and `MSETNX`: pairs of a key and a value, the last value of a repeated key
/// winning; `MSETNX` only when none of the keys exists.
fn mset(space: &mut Keyspace, name: &str, args: &[Vec<u8>]) -> Result<Reply, Reply> {
    if !(args.len() - 1).is_multiple_of(2) {
        return Err(Reply::err(format!("wrong number of arguments for '{name}' command")));
    }
    let pairs: Vec<(String, &Vec<u8>)> = args[1..].chunks(2).map(|pair| (String::from_utf8_lossy(&pair[0]).into_owned(), &pair[1])).collect();
    if name == "msetnx" && pairs.iter().any(|(key, _)| space.exists(key)) {
        return Ok(Reply::Integer(0));
    }
    for (key, value) in pairs {
        space.set(&key, value.clone(), false, Ttl::Clear)?;
    }
    Ok(if name == "msetnx" { Reply::Integer(1) } else { Reply::ok() })
}

/// `INCR` and its kind: adds `by` to the integer at `key` (0 when absent).
fn add(space: &mut Keyspace, key: &str, by: Result<i64, Reply>) -> Result<Reply, Reply> {
    let by = by?;
    let old = match space.get(key)? {
        None => 0,
        Some(bytes) => integer(&bytes)?,
    };
    let new = old.checked_add(by).ok_or_else(|| Reply::err("increment or decrement would overflow"))?;
    space.set(key, new.to_string().into_bytes(), true, Ttl::Keep)?;
    Ok(Reply::Integer(new))
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
