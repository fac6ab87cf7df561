//! A topic subscription: the topic's messages from an offset on, as they are
//! published, each with its offset. It ends when the topic is deleted, or when
//! retention drops the next offset before the subscriber reads it (or had already
//! dropped it when the subscription opened): `Compacted`, with the first offset held.

use super::{Source, Step};
use crate::state::StateReader;
use crate::state::store::ViewError;
use crate::state::topic::{TopicMessage, TopicRead};

/// Most messages one read hands to the stream.
const MESSAGES_PER_READ: usize = 100;
/// Most payload bytes one read hands to the stream (one message may exceed it alone).
const BYTES_PER_READ: usize = 4 << 20;

/// Why a subscription cannot go on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SubscriptionEnd {
    TopicNotFound,
    /// Offset `from` is no longer retained; the topic starts at `first_offset`.
    Compacted {
        from: u64,
        first_offset: u64,
    },
}

pub struct Subscription {
    topic: String,
    next_offset: u64,
}

impl Subscription {
    /// A subscription to `topic` from offset `from` (at least 1), or from the next
    /// message published.
    pub fn open(reader: &StateReader, topic: String, from: Option<u64>) -> Result<Result<Self, SubscriptionEnd>, ViewError> {
        let Some(record) = reader.topic(&topic)?.value else {
            return Ok(Err(SubscriptionEnd::TopicNotFound));
        };
        let from = from.unwrap_or(record.next_offset);
        if from < record.first_offset {
            return Ok(Err(SubscriptionEnd::Compacted { from, first_offset: record.first_offset }));
        }
        Ok(Ok(Self { topic, next_offset: from }))
    }
}

impl Source for Subscription {
    /// A message and its offset.
    type Item = (u64, TopicMessage);
    type End = SubscriptionEnd;

    fn next(&mut self, reader: &StateReader) -> Result<Step<(u64, TopicMessage), SubscriptionEnd>, ViewError> {
        Ok(match reader.topic_messages(&self.topic, self.next_offset, MESSAGES_PER_READ, BYTES_PER_READ)?.value {
            TopicRead::NotFound => Step::End(SubscriptionEnd::TopicNotFound),
            TopicRead::Compacted { first_offset } => Step::End(SubscriptionEnd::Compacted { from: self.next_offset, first_offset }),
            TopicRead::Messages { messages, .. } if messages.is_empty() => Step::Wait,
            TopicRead::Messages { messages, .. } => {
                self.next_offset = messages.last().map_or(self.next_offset, |(offset, _)| offset + 1);
                Step::Items(messages)
            }
        })
    }
}
