//! The connection and server commands of the Redis door: `PING`, `ECHO`, `HELLO`,
//! `AUTH`, `SELECT`, `QUIT`, `RESET`, `CLIENT`, `COMMAND`, `INFO`, `DBSIZE` and `TIME`.
//!
//! `HELLO` answers the fields clients check (`proto` above all; redis-py 8 starts
//! every connection with `HELLO 3` and falls back to RESP2 only on an error).
//! `server` and `version` say the Redis protocol level this door speaks, `concord`
//! the release. `TIME` is the cluster's replicated clock, as this node last applied
//! it, not this machine's wall clock: the clock that leases and locks follow.

use std::sync::atomic::Ordering;

use super::Door;
use super::commands::{self, COMMANDS};
use super::connection::Session;
use super::errors;
use super::reply::Reply;
use crate::authorize;

/// The Redis version whose protocol and commands this door follows.
pub const REDIS_VERSION: &str = "7.0.0";

pub async fn run(door: &Door, session: &mut Session, name: &str, args: &[Vec<u8>]) -> Reply {
    match name {
        "ping" => match args.get(1) {
            None => Reply::Simple("PONG".into()),
            Some(message) => Reply::Bulk(message.clone()),
        },
        "echo" => Reply::Bulk(args[1].clone()),
        "quit" => {
            session.closing = true;
            Reply::ok()
        }
        "reset" => {
            session.reset();
            Reply::Simple("RESET".into())
        }
        "select" => match args[1].as_slice() {
            b"0" => Reply::ok(),
            _ => Reply::err("Concord has one database: SELECT 0 only"),
        },
        "auth" => auth(door, session, &args[1..]),
        "hello" => hello(door, session, &args[1..]),
        "client" => client(door, session, &args[1..]),
        "command" => command(&args[1..]),
        "info" => info(door),
        "dbsize" => dbsize(door).await,
        "time" => match door.reader.position() {
            Ok(position) => {
                let (seconds, micros) = (position.clock_ms / 1000, (position.clock_ms % 1000) * 1000);
                Reply::Array(vec![Reply::bulk(seconds.to_string()), Reply::bulk(micros.to_string())])
            }
            Err(e) => errors::view(e),
        },
        _ => Reply::err(format!("the command '{name}' is in the table but not served here (a bug of Concord's)")),
    }
}

/// `AUTH [user] token`: the user name is ignored (tokens name their holder).
fn auth(door: &Door, session: &mut Session, args: &[Vec<u8>]) -> Reply {
    match args {
        [token] | [_, token] => match check_token(door, token) {
            Ok(token) => {
                session.token = Some(token);
                Reply::ok()
            }
            Err(refused) => refused,
        },
        _ => Reply::Error("ERR syntax error".into()),
    }
}

/// The token `presented`, if it names a token of this node's state.
fn check_token(door: &Door, presented: &[u8]) -> Result<String, Reply> {
    let wrong = || Reply::Error("WRONGPASS invalid username-password pair or user is disabled.".into());
    let text = std::str::from_utf8(presented).map_err(|_| wrong())?;
    let (id, secret) = authorize::parse_token(text).ok_or_else(wrong)?;
    match authorize::authenticate(&door.reader, id, secret) {
        Ok(Some(_)) => Ok(text.to_string()),
        Ok(None) => Err(wrong()),
        Err(e) => Err(errors::view(e)),
    }
}

/// `HELLO [protover [AUTH user token] [SETNAME name]]`.
fn hello(door: &Door, session: &mut Session, args: &[Vec<u8>]) -> Reply {
    let mut resp3 = session.resp3;
    let mut rest = args;
    if let [version, after @ ..] = args {
        resp3 = match version.as_slice() {
            b"2" => false,
            b"3" => true,
            _ => return Reply::Error("NOPROTO unsupported protocol version".into()),
        };
        rest = after;
    }
    let (mut token, mut name) = (None, None);
    loop {
        match rest {
            [] => break,
            [option, _user, presented, after @ ..] if option.eq_ignore_ascii_case(b"auth") => {
                match check_token(door, presented) {
                    Ok(checked) => token = Some(checked),
                    Err(refused) => return refused,
                }
                rest = after;
            }
            [option, client_name, after @ ..] if option.eq_ignore_ascii_case(b"setname") => {
                name = Some(client_name.clone());
                rest = after;
            }
            [option, ..] => return Reply::err(format!("Syntax error in HELLO option '{}'", String::from_utf8_lossy(option))),
        }
    }
    // Nothing changes unless the whole command is valid.
    session.resp3 = resp3;
    session.token = token.or(session.token.take());
    session.name = name.or(session.name.take());
    let role = if door.raft.metrics().borrow().state == openraft::ServerState::Leader { "master" } else { "replica" };
    Reply::Map(vec![
        (Reply::bulk("server"), Reply::bulk("redis")),
        (Reply::bulk("version"), Reply::bulk(REDIS_VERSION)),
        (Reply::bulk("proto"), Reply::Integer(if resp3 { 3 } else { 2 })),
        (Reply::bulk("id"), Reply::Integer(session.id as i64)),
        (Reply::bulk("mode"), Reply::bulk("standalone")),
        (Reply::bulk("role"), Reply::bulk(role)),
        (Reply::bulk("modules"), Reply::Array(Vec::new())),
        (Reply::bulk("concord"), Reply::bulk(env!("CARGO_PKG_VERSION"))),
    ])
}

/// The error of a subcommand of `command` that is not one of `known`, or that is
/// but was given the wrong number of arguments: Redis's two messages.
fn subcommand_refused(command: &str, subcommand: &[u8], known: &[&str]) -> Reply {
    match known.iter().find(|name| name.as_bytes().eq_ignore_ascii_case(subcommand)) {
        Some(name) => Reply::err(format!("wrong number of arguments for '{command}|{name}' command")),
        None => Reply::err(format!("unknown subcommand '{}'. Try {} HELP.", String::from_utf8_lossy(subcommand), command.to_uppercase())),
    }
}

const CLIENT_SUBCOMMANDS: &[&str] = &["id", "getname", "setname", "setinfo", "info"];
const COMMAND_SUBCOMMANDS: &[&str] = &["count", "info", "docs"];

/// `CLIENT SETNAME|GETNAME|ID|SETINFO|INFO`.
fn client(door: &Door, session: &mut Session, args: &[Vec<u8>]) -> Reply {
    let subcommand = args[0].to_ascii_lowercase();
    match (subcommand.as_slice(), &args[1..]) {
        (b"id", []) => Reply::Integer(session.id as i64),
        (b"getname", []) => Reply::maybe(session.name.clone()),
        (b"setname", [name]) => {
            if name.iter().any(|byte| !byte.is_ascii_graphic()) {
                return Reply::err("Client names cannot contain spaces, newlines or special characters.");
            }
            session.name = (!name.is_empty()).then(|| name.clone());
            Reply::ok()
        }
        (b"setinfo", [attribute, value]) => {
            match attribute.to_ascii_lowercase().as_slice() {
                b"lib-name" => session.lib_name = Some(value.clone()),
                b"lib-ver" => session.lib_ver = Some(value.clone()),
                _ => return Reply::err(format!("Unrecognized option '{}'", String::from_utf8_lossy(attribute))),
            }
            Reply::ok()
        }
        (b"info", []) => Reply::Bulk(client_info(door, session).into_bytes()),
        _ => subcommand_refused("client", &args[0], CLIENT_SUBCOMMANDS),
    }
}

/// `CLIENT INFO`'s line, with the fields Redis writes that this door knows.
fn client_info(door: &Door, session: &Session) -> String {
    let text = |value: &Option<Vec<u8>>| value.as_deref().map(String::from_utf8_lossy).unwrap_or_default().into_owned();
    format!(
        "id={} addr={} laddr=:{} name={} age={} db=0 resp={} lib-name={} lib-ver={} cmd=client|info\n",
        session.id,
        session.addr,
        door.port,
        text(&session.name),
        session.opened.elapsed().as_secs(),
        if session.resp3 { 3 } else { 2 },
        text(&session.lib_name),
        text(&session.lib_ver),
    )
}

/// `COMMAND`, `COMMAND COUNT`, `COMMAND INFO name...`, `COMMAND DOCS` (empty: this
/// door has no documentation to give a client's hints).
fn command(args: &[Vec<u8>]) -> Reply {
    let Some(subcommand) = args.first() else {
        return Reply::Array(COMMANDS.iter().map(commands::describe).collect());
    };
    match subcommand.to_ascii_lowercase().as_slice() {
        b"count" if args.len() == 1 => Reply::Integer(COMMANDS.len() as i64),
        b"info" => Reply::Array(args[1..].iter().map(|name| commands::find(name).map_or(Reply::NullArray, commands::describe)).collect()),
        b"docs" => Reply::Map(Vec::new()),
        _ => subcommand_refused("command", subcommand, COMMAND_SUBCOMMANDS),
    }
}

/// `INFO`: the server, clients and replication sections (the Raft role as Redis's).
/// `DBSIZE`: how many keys there are, by a linearizable read (one record: the state
/// keeps the count).
async fn dbsize(door: &Door) -> Reply {
    if let Err(e) = door.core.linearize().await {
        return errors::consensus(e);
    }
    match door.reader.key_counts() {
        Ok(counts) => Reply::Integer(counts.value.keys as i64),
        Err(e) => errors::view(e),
    }
}

fn info(door: &Door) -> Reply {
    let metrics = door.raft.metrics().borrow().clone();
    let leader = metrics.state == openraft::ServerState::Leader;
    let role = format!("{:?}", metrics.state).to_lowercase();
    let text = format!(
        "# Server\r\nredis_version:{REDIS_VERSION}\r\nredis_mode:standalone\r\nconcord_version:{}\r\nconcord_node_id:{}\r\nprocess_id:{}\r\ntcp_port:{}\r\nuptime_in_seconds:{}\r\n\r\n\
         # Clients\r\nconnected_clients:{}\r\nmaxclients:{}\r\n\r\n\
         # Replication\r\nrole:{}\r\nconcord_raft_role:{role}\r\nconcord_raft_term:{}\r\nconcord_leader_id:{}\r\nconcord_applied_index:{}\r\n",
        env!("CARGO_PKG_VERSION"),
        door.node_id,
        std::process::id(),
        door.port,
        door.started.elapsed().as_secs(),
        door.connected.load(Ordering::Relaxed),
        door.resp.clients_max,
        if leader { "master" } else { "slave" },
        metrics.current_term,
        metrics.current_leader.map_or(String::new(), |id| id.to_string()),
        metrics.last_applied.map_or(0, |id| id.index),
    );
    // As this node last applied them; Redis leaves the section empty with no keys.
    let keyspace = match door.reader.key_counts() {
        Ok(counts) if counts.value.keys > 0 => format!("db0:keys={},expires={},avg_ttl=0\r\n", counts.value.keys, counts.value.expiring),
        _ => String::new(),
    };
    Reply::Bulk(format!("{text}\r\n# Keyspace\r\n{keyspace}").into_bytes())
}
