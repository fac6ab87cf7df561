//! One client's session on the Redis door: read what arrived, answer every whole
//! command in it in order (a pipeline), write the answers, read on.
//!
//! Each command is looked up (`commands`), its arity checked, and then it runs with
//! the token decision of this session (`authorize::decided`): no token required, or
//! the token the session presented with `AUTH` or `HELLO`, checked again against this
//! node's state before every command, so a revoke takes effect at the next command.
//! A framing error is answered and the connection closed (`frame`); a connection
//! silent for `RespLimits::idle_timeout`, or over the node's client bound, is closed.

use std::net::SocketAddr;
use std::time::Instant;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::watch;

use super::Door;
use super::commands::{self, Spec};
use super::errors;
use super::frame::{self, ProtocolError};
use super::keyspace::{self, Watched};
use super::lists;
use super::pubsub::{self, Subscriptions};
use super::reply::Reply;
use super::transaction;
use crate::authorize::{self, Decision};

/// Bytes asked of the socket per read.
const READ_CHUNK_BYTES: usize = 16 * 1024;
/// How long a subscribed connection may stay silent (a day: in effect, while the
/// client lives; the kernel's keep-alive finds dead peers).
const SUBSCRIBER_IDLE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(24 * 3600);
/// What a RESP2 connection may run while subscribed, as in Redis.
const SUBSCRIBED_COMMANDS: &[&str] = &["subscribe", "unsubscribe", "psubscribe", "punsubscribe", "ping", "quit", "reset"];

/// What the door knows of one connection.
pub struct Session {
    pub id: u64,
    pub addr: SocketAddr,
    /// RESP3 after `HELLO 3`; RESP2 before and after `HELLO 2`.
    pub resp3: bool,
    pub name: Option<Vec<u8>>,
    pub lib_name: Option<Vec<u8>>,
    pub lib_ver: Option<Vec<u8>>,
    /// The token presented with `AUTH` or `HELLO ... AUTH`, if any.
    pub token: Option<String>,
    pub opened: Instant,
    /// The last command run, for `CLIENT INFO`.
    pub last_command: &'static str,
    /// Set by `QUIT`: close once its answer is written.
    pub closing: bool,
    /// The commands queued since `MULTI`, while one is open.
    pub multi: Option<transaction::Queue>,
    /// The keys `WATCH`ed for the next `EXEC`.
    pub watched: Watched,
    /// The channels and patterns subscribed to, and their feed, once any is.
    pub subscriptions: Option<Subscriptions>,
}

impl Session {
    fn new(id: u64, addr: SocketAddr) -> Self {
        Self {
            id,
            addr,
            resp3: false,
            name: None,
            lib_name: None,
            lib_ver: None,
            token: None,
            opened: Instant::now(),
            last_command: "",
            closing: false,
            multi: None,
            watched: Watched::new(),
            subscriptions: None,
        }
    }

    /// Back to a new connection's state (`RESET`), keeping its id and address.
    pub fn reset(&mut self) {
        *self = Self { opened: self.opened, ..Self::new(self.id, self.addr) };
    }
}

/// Serves one connection until the client leaves, sends bad framing, stays idle too
/// long, or the node stops. `admitted` is false over the node's client bound.
pub async fn run<S: AsyncRead + AsyncWrite + Unpin>(
    door: &Door,
    stream: S,
    addr: SocketAddr,
    id: u64,
    admitted: bool,
    mut stop: watch::Receiver<bool>,
) -> std::io::Result<()> {
    let (mut input, mut output) = tokio::io::split(stream);
    if !admitted {
        return output.write_all(b"-ERR max number of clients reached\r\n").await;
    }
    let mut session = Session::new(id, addr);
    let (mut buffer, mut out) = (Vec::with_capacity(READ_CHUNK_BYTES), Vec::new());
    loop {
        // Every whole command that arrived (a pipeline), up to the depth bound.
        let (mut at, mut commands, mut broken) = (0, Vec::new(), None);
        while commands.len() < door.resp.pipeline_depth_max {
            match frame::parse(&buffer[at..], &door.resp.frame) {
                Ok(Some(parsed)) => {
                    at += parsed.consumed;
                    if !parsed.args.is_empty() {
                        commands.push(parsed.args);
                    }
                }
                Ok(None) => break,
                Err(ProtocolError(text)) => {
                    broken = Some(text);
                    break;
                }
            }
        }
        let mut rest = commands.as_slice();
        while !rest.is_empty() {
            let (count, replies) = match (groupable_run(door, &session, rest), list_batch_run(door, &session, rest)) {
                (count, _) if count > 1 => (count, execute_group(door, &mut session, &rest[..count], Group::OnKeys).await),
                (_, count) if count > 1 => (count, execute_group(door, &mut session, &rest[..count], Group::ListWrites).await),
                _ => (1, vec![execute(door, &mut session, &rest[0]).await]),
            };
            rest = &rest[count..];
            replies.iter().for_each(|reply| reply.encode(session.resp3, &mut out));
            if session.closing {
                return output.write_all(&out).await;
            }
        }
        if let Some(text) = broken {
            Reply::err(text).encode(session.resp3, &mut out);
            return output.write_all(&out).await;
        }
        buffer.drain(..at);
        if !out.is_empty() {
            output.write_all(&out).await?;
            out.clear();
        }
        // A pipeline deeper than the bound: answer the rest before reading more.
        if commands.len() == door.resp.pipeline_depth_max {
            continue;
        }
        buffer.reserve(READ_CHUNK_BYTES);
        // A subscriber may wait for messages for as long as it likes.
        let idle_timeout = if session.subscriptions.is_some() { SUBSCRIBER_IDLE_TIMEOUT } else { door.resp.idle_timeout };
        let read = tokio::select! {
            read = tokio::time::timeout(idle_timeout, input.read_buf(&mut buffer)) => read,
            message = pubsub::next_message(&mut session.subscriptions) => {
                match message {
                    Ok(frames) => frames.iter().for_each(|frame| frame.encode(session.resp3, &mut out)),
                    Err(ended) => {
                        ended.encode(session.resp3, &mut out);
                        return output.write_all(&out).await;
                    }
                }
                output.write_all(&out).await?;
                out.clear();
                continue;
            }
            () = super::stopped(&mut stop) => return Ok(()),
        };
        match read {
            Err(_) | Ok(Ok(0)) => return Ok(()),
            Ok(Ok(_)) => {}
            Ok(Err(e)) => return Err(e),
        }
    }
}

/// Most commands of a pipeline run as one group.
const GROUP_COMMANDS_MAX: usize = 64;
/// Most key arguments in one group: its commit is one transaction, conditioned on at
/// most 64 keys (`txn::CONDITIONS_MAX`).
const GROUP_KEYS_MAX: usize = 64;
/// Most argument bytes in one group: a quarter of a transaction's 4 MiB
/// (`txn::BYTES_MAX`), which counts a little more than the bytes of each operation.
const GROUP_BYTES_MAX: usize = 1 << 20;

/// How many commands at the head of `commands` can run as one group: commands on keys,
/// outside `MULTI` and subscriptions, within the group bounds.
fn groupable_run(door: &Door, session: &Session, commands: &[Vec<Vec<u8>>]) -> usize {
    if session.multi.is_some() || session.subscriptions.is_some() {
        return 0;
    }
    let (mut count, mut keys, mut bytes) = (0, 0, 0);
    for args in commands.iter().take(GROUP_COMMANDS_MAX) {
        // List commands go alone: through the log as themselves, with no view.
        let grouped = |spec: &&Spec| commands::on_keys(spec) && !lists::serves(spec.name) && commands::arity_holds(spec, args);
        let Some(spec) = commands::find(&args[0]).filter(grouped) else {
            break;
        };
        let named: Vec<&[u8]> = commands::key_args(spec, args).collect();
        let size: usize = args.iter().map(Vec::len).sum();
        if keys + named.len() > GROUP_KEYS_MAX || bytes + size > GROUP_BYTES_MAX || named.iter().any(|arg| keyspace::key(door, arg).is_err()) {
            break;
        }
        keys += named.len();
        bytes += size;
        count += 1;
    }
    count
}

/// How many commands at the head of `commands` are list pushes and pops that can
/// share one log entry (`lists::batchable`), outside `MULTI` and subscriptions,
/// within the group bounds.
fn list_batch_run(door: &Door, session: &Session, commands: &[Vec<Vec<u8>>]) -> usize {
    if session.multi.is_some() || session.subscriptions.is_some() {
        return 0;
    }
    let bounds = lists::Bounds { key_bytes_max: door.limits.key_bytes_max, value_bytes_max: door.limits.value_bytes_max };
    let mut bytes = 0;
    let fits = |args: &&Vec<Vec<u8>>| {
        bytes += args.iter().map(Vec::len).sum::<usize>();
        let batchable = |spec: &Spec| lists::serves(spec.name) && commands::arity_holds(spec, args) && lists::batchable(bounds, spec.name, args);
        bytes <= GROUP_BYTES_MAX && commands::find(&args[0]).is_some_and(batchable)
    };
    commands.iter().take(GROUP_COMMANDS_MAX).take_while(fits).count()
}

/// What a group of pipelined commands is.
enum Group {
    /// Commands on keys (`groupable_run`): one step, one view, one commit.
    OnKeys,
    /// List pushes and pops (`list_batch_run`): one log entry, each its own command.
    ListWrites,
}

/// Runs a group of pipelined commands, their replies in order, as if each ran alone in
/// turn. The group bounds keep its commit within those of one transaction or entry,
/// so the group as a whole is never refused for its size.
async fn execute_group(door: &Door, session: &mut Session, commands: &[Vec<Vec<u8>>], group: Group) -> Vec<Reply> {
    let grouped: Vec<(&'static Spec, &[Vec<u8>])> = commands.iter().filter_map(|args| Some((commands::find(&args[0])?, args.as_slice()))).collect();
    let decision = match decide(door, session.token.as_deref(), grouped[0].0).await {
        Ok(decision) => decision,
        Err(refused) => return vec![refused; commands.len()],
    };
    session.last_command = grouped[grouped.len() - 1].0.name;
    let ran = match group {
        Group::ListWrites => return authorize::decided(decision, lists::run_batch(door, commands)).await.0,
        Group::OnKeys => authorize::decided(decision, commands::together(door, &grouped, &Watched::new())).await.0,
    };
    match ran {
        Ok(keyspace::Ran::Replies(replies)) => replies,
        Ok(keyspace::Ran::Aborted) => vec![Reply::err("a group watched nothing and was aborted (a bug of Concord's)"); commands.len()],
        // Nothing of the group was done (or, for UNCERTAIN, perhaps all of it): each
        // command gets the one answer.
        Err(refused) => vec![refused; commands.len()],
    }
}

/// Redis's answer to a command it does not know.
fn unknown(args: &[Vec<u8>]) -> Reply {
    let quoted: String = args[1..].iter().map(|arg| format!("'{}' ", String::from_utf8_lossy(arg))).collect();
    Reply::err(format!("unknown command '{}', with args beginning with: {quoted}", String::from_utf8_lossy(&args[0])))
}

/// Runs one command and returns its answer.
async fn execute(door: &Door, session: &mut Session, args: &[Vec<u8>]) -> Reply {
    let checked = match commands::find(&args[0]) {
        None => Err(unknown(args)),
        Some(spec) if !commands::arity_holds(spec, args) => Err(Reply::err(format!("wrong number of arguments for '{}' command", spec.name))),
        Some(spec) => Ok(spec),
    };
    let spec = match (checked, session.multi.as_mut()) {
        (Ok(spec), _) if matches!(spec.name, "exec" | "discard" | "multi" | "watch" | "quit" | "reset") => spec,
        (Ok(spec), Some(queue)) => return transaction::queue(door, queue, spec, args),
        (Err(refused), Some(queue)) => {
            transaction::spoil(queue);
            return refused;
        }
        (Ok(spec), None) => spec,
        (Err(refused), None) => return refused,
    };
    if session.subscriptions.is_some() && !session.resp3 && !SUBSCRIBED_COMMANDS.contains(&spec.name) {
        return Reply::err(format!("Can't execute '{}': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET are allowed in this context", spec.name));
    }
    session.last_command = spec.name;
    let decision = match decide(door, session.token.as_deref(), spec).await {
        Ok(decision) => decision,
        Err(refused) => return refused,
    };
    authorize::decided(decision, commands::run(door, session, spec, args)).await.0
}

/// The token decision a command runs with (`token`: the one its session presented),
/// once this node can decide
/// (`Core::wait_tokens_decidable`).
async fn decide(door: &Door, token: Option<&str>, spec: &Spec) -> Result<Decision, Reply> {
    door.core.wait_tokens_decidable().await.map_err(errors::consensus)?;
    if !door.reader.tokens_required() {
        return Ok(Decision::NoTokenRequired);
    }
    let Some(token) = token else {
        // `AUTH`, `HELLO`, `QUIT` and `RESET` read nothing of the state: they run without a token.
        if spec.flags.contains(&"no_auth") {
            return Ok(Decision::NoTokenRequired);
        }
        return Err(Reply::Error("NOAUTH Authentication required.".into()));
    };
    let (id, secret) = authorize::parse_token(token).ok_or_else(|| Reply::Error("NOAUTH the token this connection presented is malformed".into()))?;
    match authorize::authenticate(&door.reader, id, secret) {
        Ok(Some(caller)) => Ok(Decision::Token(caller)),
        Ok(None) => Err(Reply::Error(format!("NOAUTH token {id} does not exist, was revoked, or its secret is wrong; AUTH again"))),
        Err(e) => Err(errors::view(e)),
    }
}
