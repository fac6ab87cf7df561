//! Lua scripts: `EVAL`, `EVALSHA` and `SCRIPT LOAD|EXISTS|FLUSH|KILL`, run on the
//! keyspace machinery so that a script is one atomic, linearizable step.
//!
//! A script runs on the image of the keys it declares (`KEYS`), read from one
//! linearizable view, as a command on keys does (`keyspace`): its `redis.call`s run
//! the door's own commands on that image, and what it changed is committed as one
//! write conditioned on everything it read. If another client wrote one of those
//! keys in between, the script runs again on a fresh view, so it must not depend on
//! anything but its keys and arguments: the interpreter has no clock, no random
//! numbers, no files and no globals that outlive a run (each run gets a new one).
//!
//! Where this differs from Redis (`docs/redis.md`): a script may touch only the keys
//! it declares; a script that fails changes nothing (Redis keeps the writes made
//! before the error); a script is bounded in work (`INSTRUCTIONS_MAX`) and memory
//! (`MEMORY_BYTES_MAX`) and is stopped with an error past either; and `redis.call`
//! reaches the commands on keys (strings and expiries) and `PING`/`ECHO`. The cache of
//! loaded scripts is the node's own, as a Redis server's is its own.

use std::cell::{Cell, RefCell};
use std::collections::{BTreeSet, HashMap};
use std::rc::Rc;
use std::sync::{Arc, Mutex};

use mlua::chunk::ChunkMode;
use mlua::{HookTriggers, Lua, LuaOptions, LuaString, StdLib, Value, Variadic, VmState};
use sha1::{Digest, Sha1};

use super::Door;
use super::commands::{self, Spec};
use super::keyspace::{self, Keyspace, Ran, Watched, Writes};
use super::reply::Reply;
use super::transaction;

/// Most Lua VM instructions one run of a script executes.
pub const INSTRUCTIONS_MAX: u64 = 10_000_000;
/// Most memory one run of a script's interpreter holds.
pub const MEMORY_BYTES_MAX: usize = 32 << 20;
/// Most scripts a node's cache holds; loading one more empties it first (`EVALSHA`
/// of a forgotten script answers `NOSCRIPT`, which clients answer by loading it).
pub const SCRIPTS_MAX: usize = 1_000;
/// How often (in instructions) the work bound is checked.
const INSTRUCTIONS_PER_CHECK: u32 = 10_000;

/// The scripts loaded on this node, by their SHA-1 in lower-case hex.
#[derive(Default)]
pub struct Cache {
    scripts: Mutex<HashMap<String, Arc<[u8]>>>,
}

impl Cache {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<[u8]>>> {
        self.scripts.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Remembers `body`; its SHA-1.
    fn load(&self, body: &[u8]) -> String {
        let sha = sha1_hex(body);
        let mut scripts = self.lock();
        if scripts.len() >= SCRIPTS_MAX && !scripts.contains_key(&sha) {
            scripts.clear();
        }
        scripts.insert(sha.clone(), Arc::from(body));
        sha
    }

    fn get(&self, sha: &[u8]) -> Option<Arc<[u8]>> {
        self.lock().get(&String::from_utf8_lossy(sha).to_ascii_lowercase()).cloned()
    }
}

fn sha1_hex(body: &[u8]) -> String {
    Sha1::digest(body).iter().map(|byte| format!("{byte:02x}")).collect()
}

/// `EVAL script numkeys key... arg...` and `EVALSHA sha numkeys ...`.
pub async fn eval(door: &Door, args: &[Vec<u8>], by_sha: bool) -> Reply {
    let body = match by_sha {
        true => match door.scripts.get(&args[1]) {
            Some(body) => body,
            None => return Reply::Error("NOSCRIPT No matching script. Please use EVAL.".into()),
        },
        false => {
            door.scripts.load(&args[1]);
            Arc::from(args[1].as_slice())
        }
    };
    let keys_given = match super::strings::integer(&args[2]) {
        Ok(count) if count < 0 => return Reply::err("Number of keys can't be negative"),
        Ok(count) if count as usize > args.len() - 3 => return Reply::err("Number of keys can't be greater than number of args"),
        Ok(count) => count as usize,
        Err(refused) => return refused,
    };
    let (keys, argv) = args[3..].split_at(keys_given);
    let names = match keys.iter().map(|key| keyspace::key(door, key)).collect::<Result<BTreeSet<String>, Reply>>() {
        Ok(names) => names,
        Err(refused) => return refused,
    };
    let sha = sha1_hex(&body);
    let script = Script { body: &body, sha: &sha, keys, argv };
    let run = |space: &mut Keyspace| vec![space.attempt(|space| script.run(space))];
    match keyspace::run(door, names, BTreeSet::new(), Writes::AfterReading, &Watched::new(), run).await {
        Ok(Ran::Replies(mut replies)) => replies.pop().unwrap_or(Reply::Null),
        Ok(Ran::Aborted) => Reply::err("a script watched nothing and was aborted (a bug of Concord's)"),
        Err(refused) => refused,
    }
}

/// `SCRIPT LOAD|EXISTS|FLUSH|KILL`.
pub fn script(door: &Door, args: &[Vec<u8>]) -> Reply {
    let subcommand = String::from_utf8_lossy(&args[1]).to_ascii_uppercase();
    match (subcommand.as_str(), args.len()) {
        ("LOAD", 3) => Reply::Bulk(door.scripts.load(&args[2]).into_bytes()),
        ("EXISTS", 3..) => Reply::Array(args[2..].iter().map(|sha| Reply::Integer(i64::from(door.scripts.get(sha).is_some()))).collect()),
        ("FLUSH", 2) => flush(door),
        ("FLUSH", 3) if [&b"ASYNC"[..], b"SYNC"].iter().any(|mode| args[2].eq_ignore_ascii_case(mode)) => flush(door),
        ("FLUSH", 3) => Reply::err("SCRIPT FLUSH only support SYNC|ASYNC option"),
        ("KILL", 2) => Reply::Error("NOTBUSY No scripts in execution right now.".into()),
        ("LOAD" | "EXISTS" | "FLUSH" | "KILL", _) => Reply::err(format!("wrong number of arguments for 'script|{}' command", subcommand.to_ascii_lowercase())),
        _ => Reply::err(format!("unknown subcommand '{}'. Try SCRIPT HELP.", String::from_utf8_lossy(&args[1]))),
    }
}

fn flush(door: &Door) -> Reply {
    door.scripts.lock().clear();
    Reply::ok()
}

/// One script with its keys and arguments.
struct Script<'a> {
    body: &'a [u8],
    sha: &'a str,
    keys: &'a [Vec<u8>],
    argv: &'a [Vec<u8>],
}

impl Script<'_> {
    /// Runs the script on `space` in a fresh interpreter: its reply, or its error.
    fn run(&self, space: &mut Keyspace) -> Reply {
        match self.run_in(space, &interpreter()) {
            Ok(reply) => reply,
            Err(e) => Reply::Error(format!("ERR {} script: {}", message(&e), self.sha)),
        }
    }

    fn run_in(&self, space: &mut Keyspace, lua: &Result<Lua, mlua::Error>) -> mlua::Result<Reply> {
        let lua = lua.as_ref().map_err(|e| mlua::Error::runtime(format!("cannot start the interpreter: {e}")))?;
        let globals = lua.globals();
        globals.set("KEYS", lua.create_sequence_from(self.keys.iter().map(|key| lua.create_string(key)).collect::<Result<Vec<_>, _>>()?)?)?;
        globals.set("ARGV", lua.create_sequence_from(self.argv.iter().map(|arg| lua.create_string(arg)).collect::<Result<Vec<_>, _>>()?)?)?;
        let declared: BTreeSet<&[u8]> = self.keys.iter().map(Vec::as_slice).collect();
        let space = RefCell::new(space);
        lua.scope(|scope| {
            let redis = lua.create_table()?;
            let call = |raise: bool| {
                let (space, declared) = (&space, &declared);
                scope.create_function(move |lua, words: Variadic<Value>| {
                    let reply = match arguments(lua, &words) {
                        Ok(args) => call_command(&mut space.borrow_mut(), declared, &args),
                        Err(refused) => Reply::err(refused),
                    };
                    match (reply, raise) {
                        (Reply::Error(error), true) => Err(mlua::Error::runtime(error)),
                        (reply, _) => to_lua(lua, reply),
                    }
                })
            };
            redis.set("call", call(true)?)?;
            redis.set("pcall", call(false)?)?;
            redis.set("sha1hex", lua.create_function(|_, body: LuaString| Ok(sha1_hex(&body.as_bytes())))?)?;
            let reply_table = |field: &'static str| lua.create_function(move |lua, text: LuaString| lua.create_table_from([(field, text)]));
            redis.set("status_reply", reply_table("ok")?)?;
            redis.set("error_reply", reply_table("err")?)?;
            redis.set("log", lua.create_function(|_, _: Variadic<Value>| Ok(()))?)?;
            for (level, name) in ["LOG_DEBUG", "LOG_VERBOSE", "LOG_NOTICE", "LOG_WARNING"].into_iter().enumerate() {
                redis.set(name, level)?;
            }
            globals.set("redis", redis)?;
            let value: Value = lua.load(self.body).set_name("@user_script").set_mode(ChunkMode::Text).call(())?;
            Ok(from_lua(&value))
        })
    }
}

/// A fresh interpreter: Lua 5.1's base, table, string and math libraries without
/// what reads files, the clock or random numbers, bounded in work and memory.
fn interpreter() -> Result<Lua, mlua::Error> {
    let lua = Lua::new_with(StdLib::TABLE | StdLib::STRING | StdLib::MATH, LuaOptions::default())?;
    lua.set_memory_limit(MEMORY_BYTES_MAX)?;
    let globals = lua.globals();
    for name in ["dofile", "loadfile", "print"] {
        globals.set(name, Value::Nil)?;
    }
    let math: mlua::Table = globals.get("math")?;
    for name in ["random", "randomseed"] {
        math.set(name, Value::Nil)?;
    }
    let executed = Rc::new(Cell::new(0u64));
    lua.set_hook(HookTriggers::new().every_nth_instruction(INSTRUCTIONS_PER_CHECK), move |_, _| {
        executed.set(executed.get() + u64::from(INSTRUCTIONS_PER_CHECK));
        match executed.get() > INSTRUCTIONS_MAX {
            true => Err(mlua::Error::runtime(format!("the script ran past its bound of {INSTRUCTIONS_MAX} instructions and was stopped; nothing was changed"))),
            false => Ok(VmState::Continue),
        }
    })?;
    Ok(lua)
}

/// A `redis.call`'s arguments as a command's words: strings as they are, numbers as
/// Lua writes them.
fn arguments(lua: &Lua, words: &[Value]) -> Result<Vec<Vec<u8>>, String> {
    if words.is_empty() {
        return Err("Please specify at least one argument for this redis lib call".into());
    }
    words
        .iter()
        .map(|word| match word {
            Value::String(_) | Value::Integer(_) | Value::Number(_) => match lua.coerce_string(word.clone()) {
                Ok(Some(text)) => Ok(text.as_bytes().to_vec()),
                _ => Err("Lua redis lib command arguments must be strings or integers".to_string()),
            },
            _ => Err("Lua redis lib command arguments must be strings or integers".to_string()),
        })
        .collect()
}

/// Runs one command of a script on its image, if the script may.
fn call_command(space: &mut Keyspace, declared: &BTreeSet<&[u8]>, args: &[Vec<u8>]) -> Reply {
    let Some(spec) = commands::find(&args[0]) else {
        return Reply::err("Unknown Redis command called from script");
    };
    if !callable(spec) {
        return Reply::err(format!("the command '{}' cannot be called from a script on Concord (docs/redis.md, scripts)", spec.name));
    }
    if !commands::arity_holds(spec, args) {
        return Reply::err("Wrong number of args calling Redis command from script");
    }
    if let Some(key) = commands::key_args(spec, args).find(|key| !declared.contains(key)) {
        return Reply::err(format!(
            "the script touched key '{}', which it did not declare in KEYS: Concord runs a script on the keys it declares",
            String::from_utf8_lossy(key)
        ));
    }
    commands::on_space(space, spec, args)
}

/// Whether a script may call `spec`: the commands a transaction may queue.
fn callable(spec: &Spec) -> bool {
    transaction::queueable(spec)
}

/// A command's reply as a script sees it (Redis's conversion).
fn to_lua(lua: &Lua, reply: Reply) -> mlua::Result<Value> {
    Ok(match reply {
        Reply::Integer(n) => Value::Number(n as f64),
        Reply::Bulk(bytes) => Value::String(lua.create_string(bytes)?),
        Reply::Null | Reply::NullArray => Value::Boolean(false),
        Reply::Simple(text) => Value::Table(lua.create_table_from([("ok", text)])?),
        Reply::Error(text) => Value::Table(lua.create_table_from([("err", text)])?),
        Reply::Array(items) | Reply::Set(items) | Reply::Push(items) => {
            Value::Table(lua.create_sequence_from(items.into_iter().map(|item| to_lua(lua, item)).collect::<mlua::Result<Vec<_>>>()?)?)
        }
        Reply::Map(pairs) => {
            let flat = pairs.into_iter().flat_map(|(key, value)| [key, value]);
            Value::Table(lua.create_sequence_from(flat.map(|item| to_lua(lua, item)).collect::<mlua::Result<Vec<_>>>()?)?)
        }
        Reply::Frames(_) => Value::Boolean(false),
    })
}

/// A script's value as a reply (Redis's conversion): a number is an integer (its
/// fraction dropped), a table with `ok` or `err` a status or an error, another table
/// an array up to its first nil, `true` 1, `false` and nil a null.
fn from_lua(value: &Value) -> Reply {
    match value {
        Value::Integer(n) => Reply::Integer(*n),
        Value::Number(n) => Reply::Integer(*n as i64),
        Value::String(text) => Reply::Bulk(text.as_bytes().to_vec()),
        Value::Boolean(true) => Reply::Integer(1),
        Value::Table(table) => {
            if let Ok(Value::String(error)) = table.raw_get::<Value>("err") {
                return Reply::Error(error.to_string_lossy());
            }
            if let Ok(Value::String(status)) = table.raw_get::<Value>("ok") {
                return Reply::Simple(status.to_string_lossy());
            }
            let mut items = Vec::new();
            for at in 1.. {
                match table.raw_get::<Value>(at) {
                    Ok(Value::Nil) | Err(_) => break,
                    Ok(item) => items.push(from_lua(&item)),
                }
            }
            Reply::Array(items)
        }
        _ => Reply::Null,
    }
}

/// What went wrong in a script, without the interpreter's traceback.
fn message(error: &mlua::Error) -> String {
    match error {
        mlua::Error::CallbackError { cause, .. } => message(cause),
        mlua::Error::RuntimeError(text) | mlua::Error::MemoryError(text) => text.lines().next().unwrap_or_default().to_string(),
        mlua::Error::SyntaxError { message, .. } => format!("Error compiling script: {message}"),
        other => other.to_string().lines().next().unwrap_or_default().to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scripts_are_named_by_their_sha1_as_redis_names_them() {
        // `redis-cli SCRIPT LOAD "return 1"` answers this.
        assert_eq!(sha1_hex(b"return 1"), "e0e1f9fabfc9d4800c877a703b823ac0578ff8db");
    }

    #[test]
    fn values_cross_between_lua_and_replies_as_redis_converts_them() {
        let lua = interpreter().unwrap();
        let round_trip = |reply: Reply| from_lua(&to_lua(&lua, reply).unwrap());
        assert_eq!(round_trip(Reply::Integer(-7)), Reply::Integer(-7));
        assert_eq!(round_trip(Reply::Bulk(b"\x00\xff".to_vec())), Reply::Bulk(b"\x00\xff".to_vec()));
        assert_eq!(round_trip(Reply::Simple("OK".into())), Reply::Simple("OK".into()));
        assert_eq!(round_trip(Reply::Error("ERR no".into())), Reply::Error("ERR no".into()));
        assert_eq!(round_trip(Reply::Array(vec![Reply::Integer(1), Reply::bulk("a")])), Reply::Array(vec![Reply::Integer(1), Reply::bulk("a")]));
        // A null is false to a script, and false a null again; an array stops at its
        // first nil.
        assert_eq!(round_trip(Reply::Null), Reply::Null);
        let with_null = Reply::Array(vec![Reply::Integer(1), Reply::Null, Reply::Integer(3)]);
        assert_eq!(round_trip(with_null.clone()), with_null);
        let value: Value = lua.load("return {1, nil, 3}").eval().unwrap();
        assert_eq!(from_lua(&value), Reply::Array(vec![Reply::Integer(1)]));
        let value: Value = lua.load("return 3.9").eval().unwrap();
        assert_eq!(from_lua(&value), Reply::Integer(3));
        let value: Value = lua.load("return true").eval().unwrap();
        assert_eq!(from_lua(&value), Reply::Integer(1));
    }

    #[test]
    fn the_interpreter_has_no_clock_files_or_randomness_and_stops_a_runaway_script() {
        let lua = interpreter().unwrap();
        for global in ["os", "io", "dofile", "loadfile", "require", "print"] {
            let value: Value = lua.globals().get(global).unwrap();
            assert!(value.is_nil(), "{global} is there");
        }
        let random: Value = lua.load("return math.random").eval().unwrap();
        assert!(random.is_nil());
        let stopped = lua.load("while true do end").exec().unwrap_err();
        assert!(message(&stopped).contains("bound of 10000000 instructions"), "{stopped}");
        let grown = lua.load("local s = 'x' while true do s = s .. s end").exec().unwrap_err();
        assert!(matches!(grown, mlua::Error::MemoryError(_)), "{grown}");
        let bytecode = lua.load(&b"\x1bLua"[..]).set_mode(ChunkMode::Text).exec();
        assert!(bytecode.is_err(), "binary chunks are refused");
    }
}
