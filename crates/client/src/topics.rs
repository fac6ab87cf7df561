//! The client's topic calls (`/v1/topics`): publish (with an `Idempotency-Key`, so
//! a retried publish appends once), read from an offset with a long poll, subscribe
//! as a stream, configure, inspect, delete.

use std::time::Duration;

use crate::wire::topics as wire;
use reqwest::Method;

use super::sse::EventStream;
use super::{Client, ClientError, decode_json, decode_payload, encode_segment, keyed_json_headers, new_idempotency_key};

/// Retention of a topic (`None` fields take the server's defaults on configure).
pub use crate::wire::topics::TopicSettingsBody as TopicSettings;
pub use crate::wire::topics::{TopicConfigured, TopicStatus};

/// One message of a topic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicMessage {
    pub offset: u64,
    pub payload: Vec<u8>,
    pub published_at_ms: u64,
}

/// A message as the API sends it, its payload decoded.
fn decoded(message: wire::Message) -> Result<TopicMessage, ClientError> {
    Ok(TopicMessage { offset: message.offset, payload: decode_payload(message.payload, Some(&message.encoding))?, published_at_ms: message.published_at_ms })
}

/// Messages read from an offset, and the topic's next offset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicPage {
    pub messages: Vec<TopicMessage>,
    pub next_offset: u64,
}

fn topic_path(topic: &str, tail: &str) -> String {
    format!("/v1/topics/{}{tail}", encode_segment(topic))
}

impl Client {
    /// Creates `topic` or changes its retention.
    pub async fn topic_configure(&self, topic: &str, settings: &TopicSettings) -> Result<TopicConfigured, ClientError> {
        let body = serde_json::to_vec(settings).map_err(|e| ClientError::Protocol(e.to_string()))?;
        decode_json(&self.call(Method::PUT, &topic_path(topic, ""), &keyed_json_headers(), Some(body)).await?)
    }

    /// Appends a message; returns its offset.
    pub async fn publish(&self, topic: &str, payload: impl Into<Vec<u8>>) -> Result<u64, ClientError> {
        let headers = [("idempotency-key", new_idempotency_key())];
        let published: wire::Published = decode_json(&self.call(Method::POST, &topic_path(topic, "/messages"), &headers, Some(payload.into())).await?)?;
        Ok(published.offset)
    }

    /// Up to `limit` messages from offset `from` (the oldest retained if `None`),
    /// waiting up to `wait_ms` for the first; `offset_compacted` (410) when retention
    /// dropped `from`.
    pub async fn topic_read(&self, topic: &str, from: Option<u64>, limit: usize, wait_ms: u64) -> Result<TopicPage, ClientError> {
        let from = from.map(|from| format!("&from={from}")).unwrap_or_default();
        let path = topic_path(topic, &format!("/messages?limit={limit}&wait_ms={wait_ms}{from}"));
        let answer = self.call_waiting(Method::GET, &path, &[], None, Duration::from_millis(wait_ms)).await?;
        let read: wire::Messages = decode_json(&answer)?;
        let messages = read.messages.into_iter().map(decoded).collect::<Result<_, _>>()?;
        Ok(TopicPage { messages, next_offset: read.next_offset })
    }

    /// Subscribes from offset `from` (the next one published if `None`).
    pub async fn subscribe(&self, topic: &str, from: Option<u64>) -> Result<EventStream, ClientError> {
        let tail = match from {
            Some(from) => format!("/stream?from={from}"),
            None => "/stream".to_string(),
        };
        self.open_stream(&topic_path(topic, &tail)).await
    }

    /// A topic's offsets, size and retention; `None` when it does not exist.
    pub async fn topic_stats(&self, topic: &str) -> Result<Option<TopicStatus>, ClientError> {
        match self.call(Method::GET, &topic_path(topic, ""), &[], None).await {
            Ok(answer) => Ok(Some(decode_json(&answer)?)),
            Err(ClientError::Api { status: 404, code, .. }) if code == "topic_not_found" => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Deletes a topic and its messages; returns how many messages went.
    pub async fn topic_delete(&self, topic: &str) -> Result<u64, ClientError> {
        let deleted: crate::wire::queues::Deleted = decode_json(&self.call(Method::DELETE, &topic_path(topic, ""), &[], None).await?)?;
        Ok(deleted.deleted_messages)
    }
}

impl EventStream {
    /// The next message of a subscription.
    pub async fn next_message(&mut self) -> Result<Option<TopicMessage>, ClientError> {
        let Some(raw) = self.next_raw().await? else { return Ok(None) };
        let message: wire::Message = serde_json::from_value(raw.data).map_err(|e| ClientError::Protocol(e.to_string()))?;
        decoded(message).map(Some)
    }
}
