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
use super::keyspace::Watched;
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
        let mut at = 0;
        let mut answered = 0;
        loop {
            let parsed = match frame::parse(&buffer[at..], &door.resp.frame) {
                Ok(Some(parsed)) => parsed,
                Ok(None) => break,
                Err(ProtocolError(text)) => {
                    Reply::err(text).encode(session.resp3, &mut out);
                    return output.write_all(&out).await;
                }
            };
            at += parsed.consumed;
            if parsed.args.is_empty() {
                continue;
            }
            execute(door, &mut session, &parsed.args).await.encode(session.resp3, &mut out);
            answered += 1;
            if session.closing {
                return output.write_all(&out).await;
            }
            if answered == door.resp.pipeline_depth_max {
                output.write_all(&out).await?;
                out.clear();
                answered = 0;
            }
        }
        buffer.drain(..at);
        if !out.is_empty() {
            output.write_all(&out).await?;
            out.clear();
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
    if let Err(e) = door.core.wait_tokens_decidable().await {
        return errors::consensus(e);
    }
    let decision = match decide(door, session, spec) {
        Ok(decision) => decision,
        Err(refused) => return refused,
    };
    authorize::decided(decision, commands::run(door, session, spec, args)).await.0
}

/// The token decision a command of this session runs with, once this node can decide.
fn decide(door: &Door, session: &Session, spec: &Spec) -> Result<Decision, Reply> {
    if !door.reader.tokens_required() {
        return Ok(Decision::NoTokenRequired);
    }
    let Some(token) = session.token.as_deref() else {
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
