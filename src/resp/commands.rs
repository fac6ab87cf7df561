//! The table of the commands the Redis door speaks, and the dispatch to them.
//!
//! Each entry says what `COMMAND` reports for it as Redis 7 does (arity, where
//! negative means "at least"; flags; where its keys are), and arity is checked here,
//! before a command runs, with Redis's message. A command not in the table is
//! `-ERR unknown command`, as in Redis, with nothing changed.

use super::connection::Session;
use super::reply::Reply;
use super::{Door, server_commands, strings};

/// What `COMMAND` says of one command.
pub struct Spec {
    pub name: &'static str,
    /// The number of arguments with the name; negative: at least its absolute value.
    pub arity: i64,
    pub flags: &'static [&'static str],
    /// Position of the first key, of the last (-1: the last argument), and the step.
    pub keys: (i64, i64, i64),
}

const fn spec(name: &'static str, arity: i64, flags: &'static [&'static str], keys: (i64, i64, i64)) -> Spec {
    Spec { name, arity, flags, keys }
}

const NO_KEYS: (i64, i64, i64) = (0, 0, 0);
const ONE_KEY: (i64, i64, i64) = (1, 1, 1);
const ALL_KEYS: (i64, i64, i64) = (1, -1, 1);
const PAIRS: (i64, i64, i64) = (1, -1, 2);
const READ: &[&str] = &["readonly", "fast"];
const WRITE: &[&str] = &["write", "denyoom"];
const CONNECTION: &[&str] = &["noscript", "loading", "stale", "fast", "no_auth"];

/// Every command the door speaks, in name order.
pub const COMMANDS: &[Spec] = &[
    spec("append", 3, WRITE, ONE_KEY),
    spec("auth", -2, CONNECTION, NO_KEYS),
    spec("client", -2, &["noscript", "loading", "stale"], NO_KEYS),
    spec("command", -1, &["loading", "stale"], NO_KEYS),
    spec("decr", 2, WRITE, ONE_KEY),
    spec("decrby", 3, WRITE, ONE_KEY),
    spec("del", -2, &["write"], ALL_KEYS),
    spec("echo", 2, &["fast"], NO_KEYS),
    spec("exists", -2, READ, ALL_KEYS),
    spec("get", 2, READ, ONE_KEY),
    spec("getdel", 2, &["write", "fast"], ONE_KEY),
    spec("getset", 3, WRITE, ONE_KEY),
    spec("hello", -1, CONNECTION, NO_KEYS),
    spec("incr", 2, WRITE, ONE_KEY),
    spec("incrby", 3, WRITE, ONE_KEY),
    spec("info", -1, &["loading", "stale"], NO_KEYS),
    spec("mget", -2, READ, ALL_KEYS),
    spec("mset", -3, WRITE, PAIRS),
    spec("msetnx", -3, WRITE, PAIRS),
    spec("ping", -1, &["fast"], NO_KEYS),
    spec("quit", -1, CONNECTION, NO_KEYS),
    spec("reset", 1, CONNECTION, NO_KEYS),
    spec("select", 2, &["loading", "stale", "fast"], NO_KEYS),
    spec("set", -3, WRITE, ONE_KEY),
    spec("setnx", 3, WRITE, ONE_KEY),
    spec("strlen", 2, READ, ONE_KEY),
    spec("time", 1, &["loading", "stale", "fast"], NO_KEYS),
    spec("type", 2, READ, ONE_KEY),
    spec("unlink", -2, &["write", "fast"], ALL_KEYS),
];

/// The entry of `name` (any case).
pub fn find(name: &[u8]) -> Option<&'static Spec> {
    COMMANDS.iter().find(|spec| spec.name.as_bytes().eq_ignore_ascii_case(name))
}

/// Whether `args` has as many arguments as `spec` takes.
pub fn arity_holds(spec: &Spec, args: &[Vec<u8>]) -> bool {
    let count = args.len() as i64;
    if spec.arity >= 0 { count == spec.arity } else { count >= -spec.arity }
}

/// Runs a command whose name and arity are checked.
pub async fn run(door: &Door, session: &mut Session, spec: &Spec, args: &[Vec<u8>]) -> Reply {
    match spec.name {
        "auth" | "client" | "command" | "echo" | "hello" | "info" | "ping" | "quit" | "reset" | "select" | "time" => {
            server_commands::run(door, session, spec.name, args).await
        }
        _ => strings::run(door, spec.name, args).await,
    }
}

/// `COMMAND`'s description of one command.
pub fn describe(spec: &Spec) -> Reply {
    let (first, last, step) = spec.keys;
    Reply::Array(vec![
        Reply::bulk(spec.name),
        Reply::Integer(spec.arity),
        Reply::Set(spec.flags.iter().map(|flag| Reply::Simple((*flag).into())).collect()),
        Reply::Integer(first),
        Reply::Integer(last),
        Reply::Integer(step),
        Reply::Set(Vec::new()),
        Reply::Set(Vec::new()),
        Reply::Array(Vec::new()),
        Reply::Array(Vec::new()),
    ])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_is_in_name_order_and_each_name_is_found_in_any_case() {
        assert!(COMMANDS.windows(2).all(|pair| pair[0].name < pair[1].name));
        assert_eq!(find(b"GeT").map(|spec| spec.name), Some("get"));
        assert!(find(b"flushall").is_none());
        let set = find(b"set").unwrap();
        assert!(!arity_holds(set, &[b"set".to_vec(), b"k".to_vec()]));
        assert!(arity_holds(set, &[b"set".to_vec(), b"k".to_vec(), b"v".to_vec(), b"NX".to_vec()]));
    }
}
