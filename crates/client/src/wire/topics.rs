//! The bodies of `/v1/topics` (docs/api.md, topics). Offsets start at 1; times are
//! on the replicated clock, in milliseconds.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// `PUT /v1/topics/{topic}`: the retention to set; the server's default for each
/// bound left out.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TopicSettingsBody {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_messages: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_bytes: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_age_ms: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_message_bytes: Option<u64>,
}

/// The retention a topic has.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, ToSchema)]
pub struct TopicSettings {
    pub max_messages: u64,
    pub max_bytes: u64,
    pub max_age_ms: u64,
    pub max_message_bytes: u64,
}

/// `PUT /v1/topics/{topic}` (201 when it created the topic).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, ToSchema)]
pub struct TopicConfigured {
    pub name: String,
    pub created: bool,
    pub settings: TopicSettings,
}

/// `POST /v1/topics/{topic}/messages` (201).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, ToSchema)]
pub struct Published {
    pub topic: String,
    pub offset: u64,
}

/// One message, as a read returns it and a subscription's `message` event carries it
/// (fields in name order, as the event lines have always shown them).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, ToSchema)]
pub struct Message {
    /// `utf8` or `base64`.
    pub encoding: String,
    pub offset: u64,
    /// UTF-8 text as it is, other bytes in base64 (`encoding`).
    pub payload: String,
    pub published_at_ms: u64,
}

/// `GET /v1/topics/{topic}/messages`.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, ToSchema)]
pub struct Messages {
    pub topic: String,
    pub messages: Vec<Message>,
    /// The offset the next message published will take.
    pub next_offset: u64,
    pub applied_index: u64,
}

/// A topic's offsets and size, as `GET /v1/topics` lists them.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, ToSchema)]
pub struct TopicCounts {
    pub name: String,
    /// The oldest offset retained.
    pub first_offset: u64,
    pub next_offset: u64,
    pub messages: u64,
    pub bytes: u64,
}

/// `GET /v1/topics/{topic}`: its offsets, size and retention.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, ToSchema)]
pub struct TopicStatus {
    pub name: String,
    pub first_offset: u64,
    pub next_offset: u64,
    pub messages: u64,
    pub bytes: u64,
    pub settings: TopicSettings,
    pub applied_index: u64,
}

/// `GET /v1/topics`: one page of topics in name order.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, ToSchema)]
pub struct TopicListing {
    pub items: Vec<TopicCounts>,
    pub more: bool,
    /// Pass as `after` for the next page, when `more`.
    pub next_after: Option<String>,
    pub applied_index: u64,
}
