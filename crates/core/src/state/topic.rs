//! Topics: durable publish/subscribe streams with retention.
//!
//! A topic is an append-only sequence of messages numbered by `offset` (from 1, only
//! growing). Publishing never waits for subscribers; subscribers read from any
//! offset still retained, at their own pace, and keep their own position (Kafka's
//! model, on the log). Retention is by count, bytes and age, applied when a message
//! is published (so an idle topic keeps its messages until the next publish): the
//! oldest messages are dropped first, and a read from a dropped offset is told where
//! the topic now starts.
//!
//! Layout: `Cf::Topics` name → `TopicRecord`; `Cf::TopicMessages` name ++ `\0` ++
//! offset (big-endian) → `TopicMessage`.

use std::fmt;

use serde::{Deserialize, Serialize};

use super::access::Access;
use super::auth::Role;
use super::command::{Outcome, Stamp};
use super::store::{Batch, Cf, Meta, View, ViewError};
use crate::codec;

/// Most topics the cluster holds.
pub const TOPICS_MAX: u64 = 10_000;
/// Largest `max_messages`.
pub const MESSAGES_MAX: u64 = 1_000_000;
/// Largest `max_bytes` (retained payload bytes of one topic).
pub const BYTES_MAX: u64 = 1 << 30;
/// Largest `max_message_bytes`.
pub const MESSAGE_BYTES_MAX: u64 = 1 << 20;
/// Longest `max_age_ms` (30 days).
pub const AGE_MS_MAX: u64 = 30 * 24 * 3600 * 1000;
/// Most old messages one publish drops; the rest go with the next publishes.
pub const TRIMS_PER_PUBLISH_MAX: u64 = 1000;
/// Most messages one delete entry removes; the API repeats it until the topic is gone.
pub const DELETE_BATCH_MAX: u64 = 10_000;

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct TopicSettings {
    /// Most messages retained.
    pub max_messages: u64,
    /// Most payload bytes retained.
    pub max_bytes: u64,
    /// Messages older than this (on the replicated clock) are dropped.
    pub max_age_ms: u64,
    pub max_message_bytes: u64,
}

impl Default for TopicSettings {
    fn default() -> Self {
        Self { max_messages: 10_000, max_bytes: 64 << 20, max_age_ms: 7 * 24 * 3600 * 1000, max_message_bytes: 256 << 10 }
    }
}

impl TopicSettings {
    /// Why these settings cannot apply, if they cannot.
    pub fn invalid(&self) -> Option<String> {
        let bounds = [
            ("max_messages", self.max_messages, MESSAGES_MAX),
            ("max_bytes", self.max_bytes, BYTES_MAX),
            ("max_age_ms", self.max_age_ms, AGE_MS_MAX),
            ("max_message_bytes", self.max_message_bytes, MESSAGE_BYTES_MAX),
        ];
        bounds.iter().find(|(_, value, max)| !(1..=*max).contains(value)).map(|(name, _, max)| format!("{name} must be between 1 and {max}"))
    }
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct TopicRecord {
    pub settings: TopicSettings,
    /// The oldest retained offset (equal to `next_offset` when none is retained).
    pub first_offset: u64,
    pub next_offset: u64,
    /// Payload bytes retained.
    pub bytes: u64,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct TopicMessage {
    pub payload: Vec<u8>,
    pub published_at_ms: u64,
}

fn message_key(topic: &str, offset: u64) -> Vec<u8> {
    let mut key = Vec::with_capacity(topic.len() + 9);
    key.extend_from_slice(topic.as_bytes());
    key.push(0);
    key.extend_from_slice(&offset.to_be_bytes());
    key
}

fn record(batch: &Batch<'_>, topic: &str) -> Result<Option<TopicRecord>, ViewError> {
    batch.get_decoded(Cf::Topics, topic.as_bytes())
}

fn new_record(meta: &mut Meta, settings: TopicSettings) -> TopicRecord {
    meta.topic_count += 1;
    TopicRecord { settings, first_offset: 1, next_offset: 1, bytes: 0 }
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub enum TopicCommand {
    /// Create topic `topic` or change its retention.
    Configure { topic: String, settings: TopicSettings },
    /// Append a message; the envelope's `now_ms` dates it (for age retention).
    Publish { topic: String, payload: Vec<u8> },
    /// Delete a topic (a bounded number of its messages per entry).
    Delete { topic: String },
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub enum TopicOutcome {
    Configured { topic: String, created: bool, settings: TopicSettings },
    Published { topic: String, offset: u64 },
    Deleted { topic: String, deleted_messages: u64, deleted: bool },
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub enum TopicRejection {
    NotFound {
        topic: String,
    },
    /// The cluster holds its maximum number of topics.
    Limit {
        limit: u64,
    },
    MessageTooLarge {
        topic: String,
        len: u64,
        max: u64,
    },
    Invalid {
        topic: String,
        reason: String,
    },
}

impl TopicCommand {
    pub fn access(&self) -> Access {
        match self {
            TopicCommand::Configure { topic, .. } | TopicCommand::Publish { topic, .. } | TopicCommand::Delete { topic } => {
                Access::name(Role::Write, "topic", topic)
            }
        }
    }

    pub fn reads_clock(&self) -> bool {
        matches!(self, TopicCommand::Publish { .. })
    }
}

impl fmt::Display for TopicCommand {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TopicCommand::Configure { topic, settings } => write!(f, "configure topic {topic:?}: {settings:?}"),
            TopicCommand::Publish { topic, payload } => write!(f, "publish {} bytes to {topic:?}", payload.len()),
            TopicCommand::Delete { topic } => write!(f, "delete topic {topic:?}"),
        }
    }
}

pub fn apply(batch: &mut Batch<'_>, meta: &mut Meta, stamp: Stamp, command: TopicCommand) -> Result<Outcome, ViewError> {
    match command {
        TopicCommand::Configure { topic, settings } => configure(batch, meta, &topic, settings),
        TopicCommand::Publish { topic, payload } => publish(batch, meta, &topic, payload, stamp.now_ms),
        TopicCommand::Delete { topic } => delete(batch, meta, &topic),
    }
}

fn configure(batch: &mut Batch<'_>, meta: &mut Meta, topic: &str, settings: TopicSettings) -> Result<Outcome, ViewError> {
    if let Some(reason) = settings.invalid() {
        return Ok(TopicRejection::Invalid { topic: topic.to_string(), reason }.into());
    }
    let existing = record(batch, topic)?;
    let created = existing.is_none();
    if created && meta.topic_count >= TOPICS_MAX {
        return Ok(TopicRejection::Limit { limit: TOPICS_MAX }.into());
    }
    let mut record = existing.unwrap_or_else(|| new_record(meta, settings.clone()));
    record.settings = settings.clone();
    batch.put_encoded(Cf::Topics, topic.as_bytes(), &record)?;
    Ok(TopicOutcome::Configured { topic: topic.to_string(), created, settings }.into())
}

/// Appends a message (creating the topic with default settings on first use, unless
/// the message is refused) and drops what retention no longer allows.
pub fn publish(batch: &mut Batch<'_>, meta: &mut Meta, topic: &str, payload: Vec<u8>, now_ms: u64) -> Result<Outcome, ViewError> {
    let existing = record(batch, topic)?;
    if existing.is_none() && meta.topic_count >= TOPICS_MAX {
        return Ok(TopicRejection::Limit { limit: TOPICS_MAX }.into());
    }
    let len = payload.len() as u64;
    let max = existing.as_ref().map_or(TopicSettings::default().max_message_bytes, |record| record.settings.max_message_bytes);
    if len > max {
        return Ok(TopicRejection::MessageTooLarge { topic: topic.to_string(), len, max }.into());
    }
    // Created only now that the message is accepted.
    let mut record = existing.unwrap_or_else(|| new_record(meta, TopicSettings::default()));
    let now_ms = meta.clock_ms.max(now_ms);
    let offset = record.next_offset;
    batch.put_encoded(Cf::TopicMessages, &message_key(topic, offset), &TopicMessage { payload, published_at_ms: now_ms })?;
    record.next_offset += 1;
    record.bytes += len;
    let settings = record.settings.clone();
    for _ in 0..TRIMS_PER_PUBLISH_MAX {
        // The message just published always stays.
        if record.first_offset >= offset {
            break;
        }
        let key = message_key(topic, record.first_offset);
        let oldest: TopicMessage =
            batch.get_decoded(Cf::TopicMessages, &key)?.ok_or_else(|| ViewError::Corrupt(format!("topic {topic:?} lost offset {}", record.first_offset)))?;
        let count = record.next_offset - record.first_offset;
        let too_old = now_ms.saturating_sub(oldest.published_at_ms) > settings.max_age_ms;
        if count <= settings.max_messages && record.bytes <= settings.max_bytes && !too_old {
            break;
        }
        batch.delete(Cf::TopicMessages, &key);
        record.bytes = record.bytes.saturating_sub(oldest.payload.len() as u64);
        record.first_offset += 1;
    }
    batch.put_encoded(Cf::Topics, topic.as_bytes(), &record)?;
    Ok(TopicOutcome::Published { topic: topic.to_string(), offset }.into())
}

/// Deletes up to `DELETE_BATCH_MAX` of the topic's messages, and the topic once none
/// is left. Needs no scan: retained offsets are contiguous.
fn delete(batch: &mut Batch<'_>, meta: &mut Meta, topic: &str) -> Result<Outcome, ViewError> {
    let Some(mut record) = record(batch, topic)? else {
        return Ok(TopicRejection::NotFound { topic: topic.to_string() }.into());
    };
    let end = record.next_offset.min(record.first_offset.saturating_add(DELETE_BATCH_MAX));
    let deleted_messages = end - record.first_offset;
    for offset in record.first_offset..end {
        batch.delete(Cf::TopicMessages, &message_key(topic, offset));
    }
    record.first_offset = end;
    let deleted = record.first_offset == record.next_offset;
    if deleted {
        batch.delete(Cf::Topics, topic.as_bytes());
        meta.topic_count = meta.topic_count.saturating_sub(1);
    } else {
        batch.put_encoded(Cf::Topics, topic.as_bytes(), &record)?;
    }
    Ok(TopicOutcome::Deleted { topic: topic.to_string(), deleted_messages, deleted }.into())
}

pub fn get(view: &View<'_>, topic: &str) -> Result<Option<TopicRecord>, ViewError> {
    view.get(Cf::Topics, topic.as_bytes())?.map(|bytes| codec::decode(&bytes)).transpose().map_err(ViewError::from)
}

/// What a read from an offset found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TopicRead {
    NotFound,
    /// The offset is older than the topic's first retained one.
    Compacted {
        first_offset: u64,
    },
    /// Messages from the offset on (possibly none yet), and the topic's next offset.
    Messages {
        messages: Vec<(u64, TopicMessage)>,
        next_offset: u64,
    },
}

/// Up to `limit` messages (and about `bytes_max` payload bytes, at least one) from
/// offset `from`.
pub fn read(view: &View<'_>, topic: &str, from: u64, limit: usize, bytes_max: usize) -> Result<TopicRead, ViewError> {
    let Some(record) = get(view, topic)? else {
        return Ok(TopicRead::NotFound);
    };
    if from < record.first_offset {
        return Ok(TopicRead::Compacted { first_offset: record.first_offset });
    }
    let mut messages = Vec::new();
    let mut bytes = 0;
    let prefix = &message_key(topic, 0)[..topic.len() + 1];
    for item in view.iter_from(Cf::TopicMessages, &message_key(topic, from)) {
        let (key, value) = item?;
        if !key.starts_with(prefix) || messages.len() >= limit || (!messages.is_empty() && bytes >= bytes_max) {
            break;
        }
        let offset = u64::from_be_bytes(key[prefix.len()..].try_into().map_err(|_| ViewError::Corrupt("bad topic message key".into()))?);
        let message: TopicMessage = codec::decode(&value)?;
        bytes += message.payload.len();
        messages.push((offset, message));
    }
    Ok(TopicRead::Messages { messages, next_offset: record.next_offset })
}
