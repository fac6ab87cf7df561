//! The table of the commands the Redis door speaks, and the dispatch to them.
//!
//! Each entry says what `COMMAND` reports for it as Redis 7 does (arity, where
//! negative means "at least"; flags; where its keys are), and arity is checked here,
//! before a command runs, with Redis's message. A command not in the table is
//! `-ERR unknown command`, as in Redis, with nothing changed.

use std::collections::BTreeSet;

use super::connection::Session;
use super::keyspace::{self, Keyspace, Ran, Watched, Writes};
use super::reply::Reply;
use super::{Door, expiry, fencing, keys, lists, pubsub, scripts, server_commands, strings, transaction};

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
const PUBSUB: &[&str] = &["pubsub", "noscript", "loading", "stale"];
const CONNECTION: &[&str] = &["noscript", "loading", "stale", "fast", "no_auth"];

/// Every command the door speaks, in name order.
pub const COMMANDS: &[Spec] = &[
    spec("append", 3, WRITE, ONE_KEY),
    spec("auth", -2, CONNECTION, NO_KEYS),
    spec("blmove", 6, &["write", "denyoom", "noscript", "blocking"], (1, 2, 1)),
    spec("blpop", -3, &["write", "noscript", "blocking"], (1, -2, 1)),
    spec("brpop", -3, &["write", "noscript", "blocking"], (1, -2, 1)),
    spec("brpoplpush", 4, &["write", "denyoom", "noscript", "blocking"], (1, 2, 1)),
    spec("client", -2, &["noscript", "loading", "stale"], NO_KEYS),
    spec("command", -1, &["loading", "stale"], NO_KEYS),
    spec("concord.fence", 2, READ, ONE_KEY),
    spec("dbsize", 1, &["readonly", "fast"], NO_KEYS),
    spec("decr", 2, WRITE, ONE_KEY),
    spec("decrby", 3, WRITE, ONE_KEY),
    spec("del", -2, &["write"], ALL_KEYS),
    spec("discard", 1, &["noscript", "loading", "stale", "fast"], NO_KEYS),
    spec("echo", 2, &["fast"], NO_KEYS),
    spec("eval", -3, &["noscript", "skip_monitor", "may_replicate", "no_mandatory_keys", "stale", "movablekeys"], NO_KEYS),
    spec("evalsha", -3, &["noscript", "skip_monitor", "may_replicate", "no_mandatory_keys", "stale", "movablekeys"], NO_KEYS),
    spec("exec", 1, &["noscript", "loading", "stale"], NO_KEYS),
    spec("exists", -2, READ, ALL_KEYS),
    spec("expire", -3, &["write", "fast"], ONE_KEY),
    spec("expireat", -3, &["write", "fast"], ONE_KEY),
    spec("get", 2, READ, ONE_KEY),
    spec("getdel", 2, &["write", "fast"], ONE_KEY),
    spec("getex", -2, &["write", "fast"], ONE_KEY),
    spec("getset", 3, WRITE, ONE_KEY),
    spec("hello", -1, CONNECTION, NO_KEYS),
    spec("incr", 2, WRITE, ONE_KEY),
    spec("incrby", 3, WRITE, ONE_KEY),
    spec("info", -1, &["loading", "stale"], NO_KEYS),
    spec("keys", 2, &["readonly"], NO_KEYS),
    spec("lindex", 3, &["readonly"], ONE_KEY),
    spec("llen", 2, READ, ONE_KEY),
    spec("lmove", 5, WRITE, (1, 2, 1)),
    spec("lpop", -2, &["write", "fast"], ONE_KEY),
    spec("lpush", -3, &["write", "denyoom", "fast"], ONE_KEY),
    spec("lpushx", -3, &["write", "denyoom", "fast"], ONE_KEY),
    spec("lrange", 4, &["readonly"], ONE_KEY),
    spec("lrem", 4, &["write"], ONE_KEY),
    spec("lset", 4, WRITE, ONE_KEY),
    spec("ltrim", 4, &["write"], ONE_KEY),
    spec("mget", -2, READ, ALL_KEYS),
    spec("mset", -3, WRITE, PAIRS),
    spec("msetnx", -3, WRITE, PAIRS),
    spec("multi", 1, &["noscript", "loading", "stale", "fast"], NO_KEYS),
    spec("persist", 2, &["write", "fast"], ONE_KEY),
    spec("pexpire", -3, &["write", "fast"], ONE_KEY),
    spec("pexpireat", -3, &["write", "fast"], ONE_KEY),
    spec("ping", -1, &["fast"], NO_KEYS),
    spec("psetex", 4, WRITE, ONE_KEY),
    spec("psubscribe", -2, PUBSUB, NO_KEYS),
    spec("pttl", 2, READ, ONE_KEY),
    spec("publish", 3, &["pubsub", "loading", "stale", "fast"], NO_KEYS),
    spec("pubsub", -2, &["pubsub", "loading", "stale"], NO_KEYS),
    spec("punsubscribe", -1, PUBSUB, NO_KEYS),
    spec("quit", -1, CONNECTION, NO_KEYS),
    spec("reset", 1, CONNECTION, NO_KEYS),
    spec("rpop", -2, &["write", "fast"], ONE_KEY),
    spec("rpoplpush", 3, WRITE, (1, 2, 1)),
    spec("rpush", -3, &["write", "denyoom", "fast"], ONE_KEY),
    spec("rpushx", -3, &["write", "denyoom", "fast"], ONE_KEY),
    spec("scan", -2, &["readonly"], NO_KEYS),
    spec("script", -2, &["noscript"], NO_KEYS),
    spec("select", 2, &["loading", "stale", "fast"], NO_KEYS),
    spec("set", -3, WRITE, ONE_KEY),
    spec("setex", 4, WRITE, ONE_KEY),
    spec("setnx", 3, WRITE, ONE_KEY),
    spec("strlen", 2, READ, ONE_KEY),
    spec("subscribe", -2, PUBSUB, NO_KEYS),
    spec("time", 1, &["loading", "stale", "fast"], NO_KEYS),
    spec("ttl", 2, READ, ONE_KEY),
    spec("type", 2, READ, ONE_KEY),
    spec("unlink", -2, &["write", "fast"], ALL_KEYS),
    spec("unsubscribe", -1, PUBSUB, NO_KEYS),
    spec("unwatch", 1, &["noscript", "loading", "stale", "fast"], NO_KEYS),
    spec("watch", -2, &["noscript", "loading", "stale", "fast"], ALL_KEYS),
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

/// Whether `spec` is a command on keys: one that can run on the image of its keys
/// (`keyspace`), in a transaction or a script. `WATCH` names keys but only reads
/// revisions. Alone, a list command is a command of the core of its own (`lists`).
pub fn on_keys(spec: &Spec) -> bool {
    spec.keys != NO_KEYS && spec.name != "watch"
}

/// The arguments of `args` that are keys, by `spec`'s key positions.
pub fn key_args<'a>(spec: &Spec, args: &'a [Vec<u8>]) -> impl Iterator<Item = &'a [u8]> {
    let (first, last, step) = spec.keys;
    let last = if last < 0 { args.len() as i64 + last } else { last };
    // A command without keys has first = 0: an empty range.
    let (first, step) = if first > 0 && step > 0 { (first, step) } else { (last + 1, 1) };
    (first..=last).step_by(step as usize).filter_map(move |at| args.get(at as usize).map(Vec::as_slice))
}

/// Runs one queued or single command on the keyspace; what an error answer changed is
/// undone. `PING` and `ECHO` may be queued too, and touch nothing.
pub fn on_space(space: &mut Keyspace, spec: &Spec, args: &[Vec<u8>]) -> Reply {
    match spec.name {
        "ping" => args.get(1).map_or(Reply::Simple("PONG".into()), |message| Reply::Bulk(message.clone())),
        "echo" => Reply::Bulk(args[1].clone()),
        name if expiry::serves(name) => space.attempt(|space| expiry::run(space, name, args)),
        "concord.fence" => fencing::run(space, args),
        name if lists::serves(name) => lists::in_step(space, name, args),
        name => space.attempt(|space| strings::run(space, name, args)),
    }
}

/// Runs a command whose name and arity are checked.
pub async fn run(door: &Door, session: &mut Session, spec: &'static Spec, args: &[Vec<u8>]) -> Reply {
    match spec.name {
        "multi" if session.multi.is_some() => Reply::err("MULTI calls can not be nested"),
        "multi" => {
            session.multi = Some(transaction::Queue::default());
            Reply::ok()
        }
        "exec" => transaction::exec(door, session).await,
        "discard" => match session.multi.take() {
            Some(_) => transaction::unwatch(&mut session.watched),
            None => Reply::err("DISCARD without MULTI"),
        },
        "watch" => transaction::watch(door, session, args).await,
        "unwatch" => transaction::unwatch(&mut session.watched),
        "keys" => keys::keys(door, &args[1]).await,
        "publish" => pubsub::publish(door, &args[1], &args[2]).await,
        "subscribe" | "psubscribe" => Reply::Frames(pubsub::subscribe(door, session, &args[1..], spec.name == "psubscribe")),
        "unsubscribe" | "punsubscribe" => Reply::Frames(pubsub::unsubscribe(session, &args[1..], spec.name == "punsubscribe")),
        "pubsub" => pubsub::pubsub(door, args),
        // RESP2's subscribed context answers PING as a message.
        "ping" if session.subscriptions.is_some() && !session.resp3 => {
            Reply::Array(vec![Reply::bulk("pong"), Reply::Bulk(args.get(1).cloned().unwrap_or_default())])
        }
        "scan" => keys::scan(door, args).await,
        "eval" | "evalsha" => scripts::eval(door, args, spec.name == "evalsha").await,
        name if lists::serves(name) => lists::run(door, name, args).await,
        "script" => scripts::script(door, args),
        _ if on_keys(spec) => single(door, spec, args).await,
        name => server_commands::run(door, session, name, args).await,
    }
}

/// Runs commands on keys, in order, as one atomic step (`keyspace::run`): one command
/// alone, a pipeline's group, or `EXEC`'s queue with its `watched` keys.
pub async fn together(door: &Door, commands: &[(&Spec, &[Vec<u8>])], watched: &Watched) -> Result<Ran, Reply> {
    let keys_of = |commands: &mut dyn Iterator<Item = &(&Spec, &[Vec<u8>])>| {
        commands.flat_map(|(spec, args)| key_args(spec, args)).map(|arg| keyspace::key(door, arg)).collect::<Result<BTreeSet<String>, Reply>>()
    };
    let keys = keys_of(&mut commands.iter())?;
    // The lists that list commands reach are read whole at once.
    let lists = keys_of(&mut commands.iter().filter(|(spec, _)| lists::serves(spec.name)))?;
    let writes = if commands.iter().any(|(spec, _)| spec.flags.contains(&"write")) { Writes::Blindly } else { Writes::No };
    let run_all = |space: &mut Keyspace| commands.iter().map(|(spec, args)| on_space(space, spec, args)).collect();
    keyspace::run(door, keys, lists, writes, watched, run_all).await
}

/// One command on keys, alone: an atomic step of its own.
async fn single(door: &Door, spec: &Spec, args: &[Vec<u8>]) -> Reply {
    match together(door, &[(spec, args)], &Watched::new()).await {
        Ok(Ran::Replies(mut replies)) => replies.pop().unwrap_or_else(|| Reply::err("a command answered nothing (a bug of Concord's)")),
        Ok(Ran::Aborted) => Reply::err("a command watched nothing and was aborted (a bug of Concord's)"),
        Err(refused) => refused,
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

    #[test]
    fn key_arguments_follow_each_commands_key_positions() {
        let args = |words: &[&str]| words.iter().map(|word| word.as_bytes().to_vec()).collect::<Vec<_>>();
        let keys = |name: &str, words: &[&str]| {
            let words = args(words);
            key_args(find(name.as_bytes()).unwrap(), &words).map(<[u8]>::to_vec).collect::<Vec<_>>()
        };
        assert_eq!(keys("get", &["get", "k"]), args(&["k"]));
        assert_eq!(keys("set", &["set", "k", "v", "NX"]), args(&["k"]));
        assert_eq!(keys("mget", &["mget", "a", "b", "c"]), args(&["a", "b", "c"]));
        assert_eq!(keys("mset", &["mset", "a", "1", "b", "2"]), args(&["a", "b"]));
        assert_eq!(keys("ping", &["ping", "x"]), Vec::<Vec<u8>>::new());
    }
}
