//! The client's queue calls (`/v1/queues`): typed wrappers with the same retry rules
//! as every other call (see the parent module). Enqueue, ack, nack, extend and
//! configure carry an `Idempotency-Key`; receive does not (a retried receive may get
//! other messages, and the ones an earlier attempt took come back after their
//! visibility timeout).

use std::time::Duration;

use reqwest::Method;
use serde_json::{Value, json};

use crate::wire::queues as wire;

use super::{Client, ClientError, decode_json, decode_payload, encode_segment, json_body, keyed_json_headers, new_idempotency_key};

/// How a queue behaves (`None` fields take the server's defaults on configure).
pub use crate::wire::queues::QueueSettingsBody as QueueSettings;
/// A queue's counters, settings and age.
pub use crate::wire::queues::QueueStatus as QueueStats;
pub use crate::wire::queues::{DeadLetteredFrom, QueueConfigured, QueueListing};

/// One delivery of one message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueMessage {
    pub id: u64,
    /// Pass to ack, nack or extend; valid while this delivery is in flight.
    pub receipt: String,
    /// 1 for the first delivery.
    pub delivery: u32,
    pub payload: Vec<u8>,
    pub in_flight_until_ms: u64,
    pub dead_lettered_from: Option<DeadLetteredFrom>,
}

/// Options of one receive.
#[derive(Debug, Clone, Copy)]
pub struct ReceiveOptions {
    /// Most messages to take (1 to 100).
    pub max: u32,
    /// In flight for this long; the queue's default if `None`.
    pub visibility_ms: Option<u64>,
    /// Long poll: wait up to this long for a message.
    pub wait_ms: u64,
}

impl Default for ReceiveOptions {
    fn default() -> Self {
        Self { max: 1, visibility_ms: None, wait_ms: 0 }
    }
}

fn queue_path(queue: &str, tail: &str) -> String {
    format!("/v1/queues/{}{tail}", encode_segment(queue))
}

impl Client {
    /// Creates `queue` or changes its settings.
    pub async fn queue_configure(&self, queue: &str, settings: &QueueSettings) -> Result<QueueConfigured, ClientError> {
        let body = serde_json::to_vec(settings).map_err(|e| ClientError::Protocol(e.to_string()))?;
        decode_json(&self.call(Method::PUT, &queue_path(queue, ""), &keyed_json_headers(), Some(body)).await?)
    }

    /// Appends a message, visible after `delay_ms`; returns its id.
    pub async fn enqueue(&self, queue: &str, payload: impl Into<Vec<u8>>, delay_ms: u64) -> Result<u64, ClientError> {
        self.enqueue_keyed(queue, payload, delay_ms, &new_idempotency_key()).await
    }

    /// `enqueue` with the caller's `Idempotency-Key`: retrying with the same key never
    /// adds the message twice.
    pub async fn enqueue_keyed(&self, queue: &str, payload: impl Into<Vec<u8>>, delay_ms: u64, key: &str) -> Result<u64, ClientError> {
        let headers = [("idempotency-key", key.to_string())];
        let path = queue_path(queue, &format!("/messages?delay_ms={delay_ms}"));
        let enqueued: wire::Enqueued = decode_json(&self.call(Method::POST, &path, &headers, Some(payload.into())).await?)?;
        Ok(enqueued.id)
    }

    /// Takes up to `options.max` visible messages, waiting up to `options.wait_ms`.
    pub async fn receive(&self, queue: &str, options: ReceiveOptions) -> Result<Vec<QueueMessage>, ClientError> {
        let body = json_body(&json!({ "max": options.max, "visibility_ms": options.visibility_ms, "wait_ms": options.wait_ms }));
        let headers = [("content-type", "application/json".to_string())];
        let wait = Duration::from_millis(options.wait_ms);
        let answer = self.call_waiting(Method::POST, &queue_path(queue, "/receive"), &headers, Some(body), wait).await?;
        let received: wire::Received = decode_json(&answer)?;
        received
            .messages
            .into_iter()
            .map(|m| {
                Ok(QueueMessage {
                    payload: decode_payload(m.payload, Some(&m.encoding))?,
                    id: m.id,
                    receipt: m.receipt,
                    delivery: m.delivery,
                    in_flight_until_ms: m.in_flight_until_ms,
                    dead_lettered_from: m.dead_lettered_from,
                })
            })
            .collect()
    }

    /// Deletes the message of an in-flight delivery (`stale_receipt` once it is not).
    pub async fn ack(&self, queue: &str, receipt: &str) -> Result<(), ClientError> {
        self.receipt_call::<wire::Acked>(queue, "/ack", json!({ "receipt": receipt })).await.map(drop)
    }

    /// Gives a delivery back, visible again after `delay_ms`; true when it was the
    /// last delivery allowed and the message went to the dead-letter queue.
    pub async fn nack(&self, queue: &str, receipt: &str, delay_ms: u64) -> Result<bool, ClientError> {
        let nacked: wire::Nacked = self.receipt_call(queue, "/nack", json!({ "receipt": receipt, "delay_ms": delay_ms })).await?;
        Ok(nacked.dead_lettered)
    }

    /// Keeps a delivery in flight for `visibility_ms` from now; returns until when.
    pub async fn extend(&self, queue: &str, receipt: &str, visibility_ms: u64) -> Result<u64, ClientError> {
        let extended: wire::Extended = self.receipt_call(queue, "/extend", json!({ "receipt": receipt, "visibility_ms": visibility_ms })).await?;
        Ok(extended.in_flight_until_ms)
    }

    async fn receipt_call<T: serde::de::DeserializeOwned>(&self, queue: &str, tail: &str, body: Value) -> Result<T, ClientError> {
        decode_json(&self.call(Method::POST, &queue_path(queue, tail), &keyed_json_headers(), Some(json_body(&body))).await?)
    }

    /// A queue's counters; `None` when it does not exist.
    pub async fn queue_stats(&self, queue: &str) -> Result<Option<QueueStats>, ClientError> {
        match self.call(Method::GET, &queue_path(queue, ""), &[], None).await {
            Ok(answer) => Ok(Some(decode_json(&answer)?)),
            Err(ClientError::Api { status: 404, code, .. }) if code == "queue_not_found" => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Deletes a queue and its messages; returns how many messages went.
    pub async fn queue_delete(&self, queue: &str) -> Result<u64, ClientError> {
        let deleted: wire::Deleted = decode_json(&self.call(Method::DELETE, &queue_path(queue, ""), &[], None).await?)?;
        Ok(deleted.deleted_messages)
    }

    /// Queue names and counters, in name order, after `after`.
    pub async fn queues(&self, after: Option<&str>) -> Result<QueueListing, ClientError> {
        let path = match after {
            Some(after) => format!("/v1/queues?after={}", encode_segment(after)),
            None => "/v1/queues".to_string(),
        };
        decode_json(&self.call(Method::GET, &path, &[], None).await?)
    }
}
