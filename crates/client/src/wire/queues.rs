//! The bodies of `/v1/queues` (docs/api.md, queues). A receipt is `"<id>.<delivery>"`;
//! times are on the replicated clock, in milliseconds.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// `PUT /v1/queues/{queue}`: the settings to set; the server's default for each one
/// left out.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct QueueSettingsBody {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub visibility_ms: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_deliveries: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dead_letter_queue: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_length: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_message_bytes: Option<u64>,
}

/// The settings a queue has.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, ToSchema)]
pub struct QueueSettings {
    pub visibility_ms: u64,
    /// Deliveries before a message is dead-lettered (none: no limit).
    pub max_deliveries: Option<u32>,
    pub dead_letter_queue: Option<String>,
    pub max_length: u64,
    pub max_message_bytes: u64,
}

/// `PUT /v1/queues/{queue}` (201 when it created the queue).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, ToSchema)]
pub struct QueueConfigured {
    pub name: String,
    pub created: bool,
    pub settings: QueueSettings,
}

/// `POST /v1/queues/{queue}/messages` (201).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, ToSchema)]
pub struct Enqueued {
    pub queue: String,
    pub id: u64,
}

/// Where a dead-lettered message came from.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, ToSchema)]
pub struct DeadLetteredFrom {
    pub queue: String,
    pub id: u64,
}

/// One delivery of one message.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, ToSchema)]
pub struct Delivery {
    pub id: u64,
    /// Pass to ack, nack or extend; valid while this delivery is in flight.
    pub receipt: String,
    /// 1 for the first delivery.
    pub delivery: u32,
    /// The payload: UTF-8 text as it is, other bytes in base64 (`encoding`).
    pub payload: String,
    /// `utf8` or `base64`.
    pub encoding: String,
    pub enqueued_at_ms: u64,
    pub in_flight_until_ms: u64,
    pub dead_lettered_from: Option<DeadLetteredFrom>,
}

/// `POST /v1/queues/{queue}/receive`: up to `max` deliveries, none when none came.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, ToSchema)]
pub struct Received {
    pub queue: String,
    pub messages: Vec<Delivery>,
}

/// `POST /v1/queues/{queue}/ack`.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, ToSchema)]
pub struct Acked {
    pub queue: String,
    pub id: u64,
    pub acked: bool,
}

/// `POST /v1/queues/{queue}/nack`: `dead_lettered` when it was the last delivery allowed.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, ToSchema)]
pub struct Nacked {
    pub queue: String,
    pub id: u64,
    pub dead_lettered: bool,
}

/// `POST /v1/queues/{queue}/extend`.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, ToSchema)]
pub struct Extended {
    pub queue: String,
    pub receipt: String,
    pub in_flight_until_ms: u64,
}

/// A queue's counters, as `GET /v1/queues` lists them.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, ToSchema)]
pub struct QueueCounts {
    pub name: String,
    pub visible: u64,
    pub in_flight: u64,
    pub delayed: u64,
    pub length: u64,
    pub dead_lettered: u64,
    /// Grows with every change (for blocking reads).
    pub index: u64,
}

/// `GET /v1/queues/{queue}`: its counters, settings and age.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, ToSchema)]
pub struct QueueStatus {
    pub name: String,
    pub visible: u64,
    pub in_flight: u64,
    pub delayed: u64,
    pub length: u64,
    pub dead_lettered: u64,
    pub index: u64,
    pub settings: QueueSettings,
    pub next_id: u64,
    pub oldest_enqueued_at_ms: Option<u64>,
    pub oldest_age_ms: Option<u64>,
    pub clock_ms: u64,
    pub applied_index: u64,
}

/// `GET /v1/queues`: one page of queues in name order.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, ToSchema)]
pub struct QueueListing {
    pub items: Vec<QueueCounts>,
    pub more: bool,
    /// Pass as `after` for the next page, when `more`.
    pub next_after: Option<String>,
    pub applied_index: u64,
}

/// `DELETE /v1/queues/{queue}` and `DELETE /v1/topics/{topic}`: gone, with its messages.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, ToSchema)]
pub struct Deleted {
    pub name: String,
    pub deleted: bool,
    pub deleted_messages: u64,
}
