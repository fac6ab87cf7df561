//! Redis's publish/subscribe on the Redis door: `PUBLISH`, `SUBSCRIBE`,
//! `UNSUBSCRIBE`, `PSUBSCRIBE`, `PUNSUBSCRIBE` and `PUBSUB`.
//!
//! Every message goes through the Raft log as a publish to one Concord topic,
//! `PUBSUB_TOPIC`, so subscribers on every node see the messages of all channels in
//! one order, the order of the log. Each subscribed connection follows that topic
//! from the moment it subscribed (the core's typed stream, `streams`), and keeps the
//! messages of its channels and patterns. A subscriber that falls behind the topic's
//! retention (10,000 messages or 64 MiB) is disconnected with an error, as Redis
//! disconnects one whose output buffer overflows.
//!
//! A message is stored as `PAYLOAD_VERSION` (one byte), the channel's length (a
//! big-endian `u32`), the channel, then the message; a payload in another form (one
//! published to the topic over HTTP, say) is skipped. `PUBLISH` answers how many
//! subscriptions on the node that took it match the channel (Redis answers the count
//! on its one server; no node knows the others'); `PUBSUB` likewise counts this node's.

use std::collections::{BTreeSet, HashMap};
use std::pin::Pin;
use std::sync::{Arc, Mutex};

use futures_util::{Stream, StreamExt};

use super::Door;
use super::connection::Session;
use super::errors;
use super::glob;
use super::reply::Reply;
use crate::authorize::authorize;
use crate::state::StateReader;
use crate::state::access::Access;
use crate::state::auth::Role;
use crate::state::command::{Command, Outcome};
use crate::state::store::ViewError;
use crate::state::topic::{TopicCommand, TopicOutcome, TopicRead};
use crate::streams::{Ended, Source, Step};

/// The Concord topic every channel's messages go through.
pub const PUBSUB_TOPIC: &str = "redis:pubsub";
/// The form of a stored message (the first byte of its payload).
const PAYLOAD_VERSION: u8 = 1;
/// Messages one read of the topic hands a subscriber.
const MESSAGES_PER_READ: usize = 100;
/// Payload bytes one read of the topic hands a subscriber (one message may exceed it).
const BYTES_PER_READ: usize = 4 << 20;

/// A channel and a message.
pub type Message = (Vec<u8>, Vec<u8>);

/// The topic payload of `message` on `channel`.
fn encode(channel: &[u8], message: &[u8]) -> Vec<u8> {
    let mut payload = Vec::with_capacity(5 + channel.len() + message.len());
    payload.push(PAYLOAD_VERSION);
    payload.extend_from_slice(&(channel.len() as u32).to_be_bytes());
    payload.extend_from_slice(channel);
    payload.extend_from_slice(message);
    payload
}

/// The channel and message of a payload `encode` made; `None` for any other.
fn decode(payload: &[u8]) -> Option<Message> {
    let (&version, rest) = payload.split_first()?;
    let length = u32::from_be_bytes(rest.get(..4)?.try_into().ok()?) as usize;
    let channel = rest.get(4..4 + length)?;
    (version == PAYLOAD_VERSION).then(|| (channel.to_vec(), rest[4 + length..].to_vec()))
}

/// The topic's messages from an offset on, for one subscriber.
pub struct Feed {
    /// The next offset to read; `None` while the topic does not exist (then its first
    /// message, once it does).
    next_offset: Option<u64>,
}

/// The subscriber fell behind: offset `from` was dropped by retention.
#[derive(Debug)]
pub struct FellBehind {
    pub from: u64,
}

impl Source for Feed {
    type Item = Message;
    type End = FellBehind;

    fn next(&mut self, reader: &StateReader) -> Result<Step<Message, FellBehind>, ViewError> {
        let from = match self.next_offset {
            Some(from) => from,
            None => match reader.topic(PUBSUB_TOPIC)?.value {
                Some(record) => record.first_offset,
                None => return Ok(Step::Wait),
            },
        };
        Ok(match reader.topic_messages(PUBSUB_TOPIC, from, MESSAGES_PER_READ, BYTES_PER_READ)?.value {
            TopicRead::NotFound => {
                self.next_offset = None;
                Step::Wait
            }
            TopicRead::Compacted { .. } => Step::End(FellBehind { from }),
            TopicRead::Messages { messages, next_offset } => {
                self.next_offset = Some(next_offset.max(from));
                if messages.is_empty() { Step::Wait } else { Step::Items(messages.into_iter().filter_map(|(_, stored)| decode(&stored.payload)).collect()) }
            }
        })
    }
}

/// How many of this node's subscriptions there are to each channel and pattern.
#[derive(Default)]
pub struct Registry {
    channels: Mutex<HashMap<Vec<u8>, usize>>,
    patterns: Mutex<HashMap<Vec<u8>, usize>>,
}

fn count(table: &Mutex<HashMap<Vec<u8>, usize>>, name: &[u8], add: bool) {
    let mut table = table.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    if add {
        *table.entry(name.to_vec()).or_default() += 1;
    } else if let Some(count) = table.get_mut(name) {
        *count -= 1;
        if *count == 0 {
            table.remove(name);
        }
    }
}

impl Registry {
    /// Subscriptions on this node that a message on `channel` reaches.
    fn receivers(&self, channel: &[u8]) -> usize {
        let channels = self.channels.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let patterns = self.patterns.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        channels.get(channel).copied().unwrap_or(0) + patterns.iter().filter(|(pattern, _)| glob::matches(pattern, channel)).map(|(_, n)| n).sum::<usize>()
    }
}

type FeedStream = Pin<Box<dyn Stream<Item = Result<Message, Ended<FellBehind>>> + Send>>;

/// A connection's subscriptions and the feed that serves them. Dropping it (the
/// connection closing) takes its subscriptions off the node's counts.
pub struct Subscriptions {
    registry: Arc<Registry>,
    channels: BTreeSet<Vec<u8>>,
    patterns: BTreeSet<Vec<u8>>,
    feed: FeedStream,
}

impl Drop for Subscriptions {
    fn drop(&mut self) {
        for channel in &self.channels {
            count(&self.registry.channels, channel, false);
        }
        for pattern in &self.patterns {
            count(&self.registry.patterns, pattern, false);
        }
    }
}

impl Subscriptions {
    fn total(&self) -> i64 {
        (self.channels.len() + self.patterns.len()) as i64
    }

    /// Adds (or with `add` false removes) a channel or a pattern, counting it on the
    /// node; the connection's subscriptions after it.
    fn change(&mut self, name: &[u8], patterns: bool, add: bool) -> i64 {
        let (set, table) = if patterns { (&mut self.patterns, &self.registry.patterns) } else { (&mut self.channels, &self.registry.channels) };
        let changed = if add { set.insert(name.to_vec()) } else { set.remove(name) };
        if changed {
            count(table, name, add);
        }
        self.total()
    }

    /// The next message for this connection, as its push frames; or the reason the
    /// feed ended (the connection is then closed).
    pub async fn next(&mut self) -> Result<Vec<Reply>, Reply> {
        loop {
            match self.feed.next().await {
                Some(Ok((channel, message))) => {
                    let mut frames = Vec::new();
                    if self.channels.contains(&channel) {
                        frames.push(Reply::Push(vec![Reply::bulk("message"), Reply::Bulk(channel.clone()), Reply::Bulk(message.clone())]));
                    }
                    for pattern in self.patterns.iter().filter(|pattern| glob::matches(pattern, &channel)) {
                        frames.push(Reply::Push(vec![
                            Reply::bulk("pmessage"),
                            Reply::Bulk(pattern.clone()),
                            Reply::Bulk(channel.clone()),
                            Reply::Bulk(message.clone()),
                        ]));
                    }
                    if !frames.is_empty() {
                        return Ok(frames);
                    }
                }
                Some(Err(Ended::Source(FellBehind { from }))) => {
                    return Err(Reply::err(format!("this subscriber fell behind: message {from} of {PUBSUB_TOPIC} is gone; subscribe again")));
                }
                Some(Err(Ended::TokenRevoked(id))) => return Err(Reply::Error(format!("NOAUTH token {id}, which subscribed, was revoked"))),
                Some(Err(Ended::TokenRequired)) => return Err(Reply::Error("NOAUTH this node now requires tokens; AUTH and subscribe again".into())),
                Some(Err(Ended::Failed(e))) => return Err(errors::view(e)),
                None => return Err(Reply::err("this node is shutting down")),
            }
        }
    }
}

/// Waits for the next message of `subscriptions`, or forever when there are none.
pub async fn next_message(subscriptions: &mut Option<Subscriptions>) -> Result<Vec<Reply>, Reply> {
    match subscriptions {
        Some(subscriptions) => subscriptions.next().await,
        None => std::future::pending().await,
    }
}

/// `PUBLISH channel message`.
pub async fn publish(door: &Door, channel: &[u8], message: &[u8]) -> Reply {
    let command = Command::Topic(TopicCommand::Publish { topic: PUBSUB_TOPIC.to_string(), payload: encode(channel, message) });
    match door.propose(command).await {
        Ok(Outcome::Topic(TopicOutcome::Published { .. })) => Reply::Integer(door.pubsub.receivers(channel) as i64),
        Ok(other) => errors::unexpected(other),
        Err(refused) => refused,
    }
}

/// `SUBSCRIBE` and `PSUBSCRIBE` (`patterns`): one confirmation for each name.
pub fn subscribe(door: &Door, session: &mut Session, names: &[Vec<u8>], patterns: bool) -> Vec<Reply> {
    if let Err(e) = authorize(|| Access::name(Role::Read, "topic", PUBSUB_TOPIC)) {
        return vec![errors::consensus(e)];
    }
    let subscriptions = match session.subscriptions.take() {
        Some(subscriptions) => subscriptions,
        None => {
            let next_offset = match door.reader.topic(PUBSUB_TOPIC) {
                Ok(read) => read.value.map(|record| record.next_offset),
                Err(e) => return vec![errors::view(e)],
            };
            let feed: FeedStream = Box::pin(door.core.follow(Feed { next_offset }));
            Subscriptions { registry: door.pubsub.clone(), channels: BTreeSet::new(), patterns: BTreeSet::new(), feed }
        }
    };
    let subscriptions = session.subscriptions.insert(subscriptions);
    let kind = if patterns { "psubscribe" } else { "subscribe" };
    names
        .iter()
        .map(|name| Reply::Push(vec![Reply::bulk(kind), Reply::Bulk(name.clone()), Reply::Integer(subscriptions.change(name, patterns, true))]))
        .collect()
}

/// `UNSUBSCRIBE` and `PUNSUBSCRIBE` (`patterns`): every name given, or all when none
/// is; one confirmation for each, with what is left after it. With no subscription
/// left, the feed stops.
pub fn unsubscribe(session: &mut Session, names: &[Vec<u8>], patterns: bool) -> Vec<Reply> {
    let kind = if patterns { "punsubscribe" } else { "unsubscribe" };
    let Some(subscriptions) = session.subscriptions.as_mut() else {
        return vec![Reply::Push(vec![Reply::bulk(kind), Reply::Null, Reply::Integer(0)])];
    };
    let names: Vec<Vec<u8>> = match (names.is_empty(), patterns) {
        (false, _) => names.to_vec(),
        (true, true) => subscriptions.patterns.iter().cloned().collect(),
        (true, false) => subscriptions.channels.iter().cloned().collect(),
    };
    let replies = if names.is_empty() {
        vec![Reply::Push(vec![Reply::bulk(kind), Reply::Null, Reply::Integer(subscriptions.total())])]
    } else {
        names
            .into_iter()
            .map(|name| {
                let left = subscriptions.change(&name, patterns, false);
                Reply::Push(vec![Reply::bulk(kind), Reply::Bulk(name), Reply::Integer(left)])
            })
            .collect()
    };
    if subscriptions.total() == 0 {
        session.subscriptions = None;
    }
    replies
}

/// `PUBSUB CHANNELS [pattern]`, `PUBSUB NUMSUB [channel...]`, `PUBSUB NUMPAT`: this node's.
pub fn pubsub(door: &Door, args: &[Vec<u8>]) -> Reply {
    let channels = door.pubsub.channels.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).clone();
    match (args[1].to_ascii_lowercase().as_slice(), &args[2..]) {
        (b"channels", rest) if rest.len() <= 1 => {
            let mut names: Vec<&Vec<u8>> = channels.keys().filter(|name| rest.first().is_none_or(|pattern| glob::matches(pattern, name))).collect();
            names.sort();
            Reply::Array(names.into_iter().map(|name| Reply::Bulk(name.clone())).collect())
        }
        (b"numsub", names) => {
            Reply::Array(names.iter().flat_map(|name| [Reply::Bulk(name.clone()), Reply::Integer(channels.get(name).copied().unwrap_or(0) as i64)]).collect())
        }
        (b"numpat", []) => Reply::Integer(door.pubsub.patterns.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).values().sum::<usize>() as i64),
        (subcommand, _) => match ["channels", "numsub", "numpat"].iter().find(|name| name.as_bytes() == subcommand) {
            Some(name) => Reply::err(format!("wrong number of arguments for 'pubsub|{name}' command")),
            None => Reply::err(format!("unknown subcommand '{}'. Try PUBSUB HELP.", String::from_utf8_lossy(&args[1]))),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_message_is_stored_with_its_channel_and_read_back() {
        let payload = encode(b"news", b"\x00hello");
        assert_eq!(payload, b"\x01\x00\x00\x00\x04news\x00hello");
        assert_eq!(decode(&payload), Some((b"news".to_vec(), b"\x00hello".to_vec())));
        assert_eq!(decode(&encode(b"", b"")), Some((Vec::new(), Vec::new())));
        for other in [&b""[..], b"\x02\x00\x00\x00\x00", b"\x01\x00\x00\x00\x09abc", b"plain text published over HTTP"] {
            assert_eq!(decode(other), None, "{other:?}");
        }
    }
}
