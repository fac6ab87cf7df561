//! Durable work queues: at-least-once delivery with visibility timeouts, receipts
//! that go stale on redelivery, and dead-lettering (SQS's model, on the log).
//!
//! A message is in one of three states: *visible* (can be received), *in flight*
//! (received, invisible until its visibility timeout), or *delayed* (enqueued or
//! nacked with a delay). Receiving makes it in flight; the receipt `(id, delivery)`,
//! where `delivery` is the log index of the receive, is valid only while that
//! delivery is in flight, and is never reused (not even by a queue deleted and
//! created again, whose ids start over), so a
//! worker whose message timed out (or was nacked) cannot ack it any more: it learns
//! with a 409 that the message will be, or was, delivered again.
//!
//! Time is the replicated clock. Receive, nack, extend and delayed enqueues are
//! stamped with the leader's reading `now_ms` (like lease grants, see `lease.rs`), and
//! a message's invisibility ends at a *timer*: `Tick` entries make due messages visible
//! again, or move them to the dead-letter queue once they were delivered
//! `max_deliveries` times. The ticker ticks at each timer's time (see
//! `next_timer`), so a timed-out message comes back promptly, and never early.
//!
//! Layout: `Cf::Queues` name → `QueueRecord` (settings, counters, next id);
//! `Cf::QueueMessages` name ++ `\0` ++ id → `Message`; `Cf::QueueVisible`
//! name ++ `\0` ++ id → empty, the visible messages in id (FIFO) order;
//! `Cf::QueueTimers` time ++ name ++ `\0` ++ id → empty, the others by when they
//! become visible. Names are printable text (no `\0`).

use std::fmt;

use serde::{Deserialize, Serialize};

use super::access::Access;
use super::auth::Role;
use super::command::{Outcome, Rejection, Stamp};
use super::store::{Batch, Cf, Meta, View, ViewError};
use crate::codec;

/// Most queues the cluster holds (dead-letter queues created on demand may add up to
/// as many again).
pub const QUEUES_MAX: u64 = 10_000;
/// Largest `max_length` a queue may be configured with.
pub const LENGTH_MAX: u64 = 100_000;
/// Largest `max_message_bytes` (and the default).
pub const MESSAGE_BYTES_MAX: u64 = 1 << 20;
/// Longest visibility timeout or delay, in ms (12 hours, as SQS).
pub const VISIBILITY_MS_MAX: u64 = 12 * 3600 * 1000;
/// Largest `max_deliveries`.
pub const DELIVERIES_MAX: u32 = 1000;
/// Most messages one receive returns.
pub const RECEIVE_MAX: u32 = 100;
/// A receive stops adding messages once their payloads reach this many bytes (it
/// always returns at least one).
pub const RECEIVE_BYTES_MAX: usize = 4 << 20;
/// Most timers one tick handles; the rest fall to the next tick, proposed at once.
pub const TIMERS_PER_TICK_MAX: usize = 10_000;
/// Most messages one delete entry removes; the API repeats it until the queue is gone.
pub const DELETE_BATCH_MAX: usize = 10_000;

/// How a queue behaves; set on creation or with `QueueConfigure`.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct QueueSettings {
    /// How long a received message stays invisible unless the receive says otherwise.
    pub visibility_ms: u64,
    /// Deliveries without an ack after which a message moves to `dead_letter_queue`
    /// (unlimited if none).
    pub max_deliveries: Option<u32>,
    pub dead_letter_queue: Option<String>,
    /// Most messages in the queue (visible, in flight and delayed); enqueues beyond
    /// it are refused. Dead-lettering into this queue does not count against it.
    pub max_length: u64,
    pub max_message_bytes: u64,
}

impl Default for QueueSettings {
    fn default() -> Self {
        Self { visibility_ms: 30_000, max_deliveries: None, dead_letter_queue: None, max_length: LENGTH_MAX, max_message_bytes: 256 << 10 }
    }
}

impl QueueSettings {
    /// Why these settings cannot apply to queue `name`, if they cannot.
    pub fn invalid(&self, name: &str) -> Option<String> {
        if !(1..=VISIBILITY_MS_MAX).contains(&self.visibility_ms) {
            return Some(format!("visibility_ms must be between 1 and {VISIBILITY_MS_MAX}"));
        }
        if !(1..=LENGTH_MAX).contains(&self.max_length) {
            return Some(format!("max_length must be between 1 and {LENGTH_MAX}"));
        }
        if !(1..=MESSAGE_BYTES_MAX).contains(&self.max_message_bytes) {
            return Some(format!("max_message_bytes must be between 1 and {MESSAGE_BYTES_MAX}"));
        }
        if self.max_deliveries.is_some_and(|n| !(1..=DELIVERIES_MAX).contains(&n)) {
            return Some(format!("max_deliveries must be between 1 and {DELIVERIES_MAX}"));
        }
        match (&self.max_deliveries, &self.dead_letter_queue) {
            (Some(_), None) => Some("max_deliveries needs a dead_letter_queue (messages are moved there, never dropped)".into()),
            (None, Some(_)) => Some("dead_letter_queue needs max_deliveries (when to move a message there)".into()),
            (_, Some(dlq)) if dlq == name => Some("a queue cannot be its own dead_letter_queue".into()),
            _ => None,
        }
    }
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
pub struct QueueRecord {
    pub settings: QueueSettings,
    /// The id the next message gets (ids start at 1 and only grow).
    pub next_id: u64,
    pub visible: u64,
    pub in_flight: u64,
    pub delayed: u64,
    /// Messages moved out of this queue to its dead-letter queue, ever.
    pub dead_lettered: u64,
    /// Grows with every change to the queue (the index of blocking reads).
    pub version: u64,
}

impl QueueRecord {
    pub fn length(&self) -> u64 {
        self.visible + self.in_flight + self.delayed
    }
}

#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
pub enum MessageState {
    Visible,
    /// Received; invisible until `until_ms`.
    InFlight {
        until_ms: u64,
    },
    Delayed {
        until_ms: u64,
    },
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct Message {
    pub payload: Vec<u8>,
    pub enqueued_at_ms: u64,
    /// Deliveries so far.
    pub deliveries: u32,
    /// Log index of the receive that made the latest delivery (0: none yet): the
    /// `delivery` of its receipt.
    pub delivered_at: u64,
    pub state: MessageState,
    /// Where a dead-lettered message came from: queue and id there.
    pub dead_lettered_from: Option<(String, u64)>,
}

/// Names one delivery of one message: valid while that delivery is in flight.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
pub struct Receipt {
    pub id: u64,
    /// The log index of the receive that made the delivery.
    pub delivery: u64,
}

/// A message as a receive hands it out.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct Delivered {
    pub receipt: Receipt,
    /// 1 for the first delivery of the message.
    pub deliveries: u32,
    pub payload: Vec<u8>,
    pub enqueued_at_ms: u64,
    /// In flight until then, on the replicated clock.
    pub until_ms: u64,
    pub dead_lettered_from: Option<(String, u64)>,
}

fn message_key(queue: &str, id: u64) -> Vec<u8> {
    let mut key = Vec::with_capacity(queue.len() + 9);
    key.extend_from_slice(queue.as_bytes());
    key.push(0);
    key.extend_from_slice(&id.to_be_bytes());
    key
}

fn timer_key(until_ms: u64, queue: &str, id: u64) -> Vec<u8> {
    let mut key = until_ms.to_be_bytes().to_vec();
    key.extend_from_slice(&message_key(queue, id));
    key
}

/// Splits `time ++ name ++ \0 ++ id`.
fn parse_timer_key(key: &[u8]) -> Result<(u64, String, u64), ViewError> {
    let corrupt = || ViewError::Corrupt(format!("queue timer key of {} bytes", key.len()));
    if key.len() < 17 {
        return Err(corrupt());
    }
    let (time, rest) = key.split_at(8);
    let (name, id) = rest.split_at(rest.len() - 8);
    let name = name.strip_suffix(&[0]).ok_or_else(corrupt)?;
    let name = String::from_utf8(name.to_vec()).map_err(|_| corrupt())?;
    let be = |bytes: &[u8]| u64::from_be_bytes(bytes.try_into().unwrap_or_default());
    Ok((be(time), name, be(id)))
}

fn message_id(key: &[u8]) -> Result<u64, ViewError> {
    let tail = key.len().checked_sub(8).ok_or_else(|| ViewError::Corrupt("short queue message key".into()))?;
    Ok(u64::from_be_bytes(key[tail..].try_into().unwrap_or_default()))
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub enum QueueCommand {
    /// Create queue `queue` or change its settings.
    Configure { queue: String, settings: QueueSettings },
    /// Append a message, visible `delay_ms` after the envelope's `now_ms`.
    Enqueue { queue: String, payload: Vec<u8>, delay_ms: u64 },
    /// Take up to `max` visible messages, in flight for `visibility_ms` (the queue's
    /// default if none); their receipts carry the entry's log index.
    Receive { queue: String, max: u32, visibility_ms: Option<u64> },
    /// Delete the message of an in-flight delivery.
    Ack { queue: String, receipt: Receipt },
    /// Give an in-flight delivery back, visible again after `delay_ms`.
    Nack { queue: String, receipt: Receipt, delay_ms: u64 },
    /// Keep an in-flight delivery invisible for `visibility_ms` from now.
    Extend { queue: String, receipt: Receipt, visibility_ms: u64 },
    /// Delete a queue (a bounded number of its messages per entry; see `delete`).
    Delete { queue: String },
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub enum QueueOutcome {
    Configured {
        queue: String,
        created: bool,
        settings: QueueSettings,
    },
    Enqueued {
        queue: String,
        id: u64,
    },
    Received {
        queue: String,
        messages: Vec<Delivered>,
    },
    Acked {
        queue: String,
        id: u64,
    },
    /// The delivery was given back; `dead_lettered` if it was the last one allowed.
    Nacked {
        queue: String,
        id: u64,
        dead_lettered: bool,
    },
    /// The delivery stays in flight until `until_ms` on the replicated clock.
    Extended {
        queue: String,
        receipt: Receipt,
        until_ms: u64,
    },
    /// `deleted_messages` went; the queue itself is gone when `deleted`.
    Deleted {
        queue: String,
        deleted_messages: u64,
        deleted: bool,
    },
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub enum QueueRejection {
    NotFound {
        queue: String,
    },
    /// The cluster holds its maximum number of queues.
    Limit {
        limit: u64,
    },
    /// The queue holds `max_length` messages.
    Full {
        queue: String,
        limit: u64,
    },
    MessageTooLarge {
        queue: String,
        len: u64,
        max: u64,
    },
    /// Settings outside the bounds, or inconsistent.
    Invalid {
        queue: String,
        reason: String,
    },
    /// The receipt's delivery is not in flight: the message was acked, timed out,
    /// was nacked or delivered again (`current_delivery`: its latest delivery, if it
    /// still exists; 0 if never delivered).
    StaleReceipt {
        queue: String,
        receipt: Receipt,
        current_delivery: Option<u64>,
    },
}

impl QueueCommand {
    /// The queue; a configuration names its dead-letter queue too.
    pub fn access(&self) -> Access {
        match self {
            QueueCommand::Configure { queue, settings } => {
                let access = Access::name(Role::Write, "queue", queue);
                match &settings.dead_letter_queue {
                    Some(dead) => access.and(Access::name(Role::Write, "queue", dead)),
                    None => access,
                }
            }
            QueueCommand::Enqueue { queue, .. }
            | QueueCommand::Receive { queue, .. }
            | QueueCommand::Ack { queue, .. }
            | QueueCommand::Nack { queue, .. }
            | QueueCommand::Extend { queue, .. }
            | QueueCommand::Delete { queue } => Access::name(Role::Write, "queue", queue),
        }
    }

    pub fn reads_clock(&self) -> bool {
        matches!(self, QueueCommand::Enqueue { .. } | QueueCommand::Receive { .. } | QueueCommand::Nack { .. } | QueueCommand::Extend { .. })
    }
}

impl fmt::Display for QueueCommand {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            QueueCommand::Configure { queue, settings } => write!(f, "configure queue {queue:?}: {settings:?}"),
            QueueCommand::Enqueue { queue, payload, delay_ms } => write!(f, "enqueue {} bytes to {queue:?} (delay {delay_ms} ms)", payload.len()),
            QueueCommand::Receive { queue, max, visibility_ms } => write!(f, "receive up to {max} from {queue:?} (visibility {visibility_ms:?})"),
            QueueCommand::Ack { queue, receipt } => write!(f, "ack {}.{} on {queue:?}", receipt.id, receipt.delivery),
            QueueCommand::Nack { queue, receipt, delay_ms } => write!(f, "nack {}.{} on {queue:?} (delay {delay_ms} ms)", receipt.id, receipt.delivery),
            QueueCommand::Extend { queue, receipt, visibility_ms } => {
                write!(f, "extend {}.{} on {queue:?} by {visibility_ms} ms", receipt.id, receipt.delivery)
            }
            QueueCommand::Delete { queue } => write!(f, "delete queue {queue:?}"),
        }
    }
}

pub fn apply(batch: &mut Batch<'_>, meta: &mut Meta, stamp: Stamp, command: QueueCommand) -> Result<Outcome, ViewError> {
    let now_ms = stamp.now_ms;
    match command {
        QueueCommand::Configure { queue, settings } => configure(batch, meta, &queue, settings),
        QueueCommand::Enqueue { queue, payload, delay_ms } => enqueue(batch, meta, &queue, payload, delay_ms, now_ms),
        QueueCommand::Receive { queue, max, visibility_ms } => receive(batch, meta, stamp.index, &queue, max, visibility_ms, now_ms),
        QueueCommand::Ack { queue, receipt } => ack(batch, &queue, receipt),
        QueueCommand::Nack { queue, receipt, delay_ms } => nack(batch, meta, &queue, receipt, delay_ms, now_ms),
        QueueCommand::Extend { queue, receipt, visibility_ms } => extend(batch, meta, &queue, receipt, visibility_ms, now_ms),
        QueueCommand::Delete { queue } => delete(batch, meta, &queue),
    }
}

pub fn record(batch: &Batch<'_>, queue: &str) -> Result<Option<QueueRecord>, ViewError> {
    batch.get_decoded(Cf::Queues, queue.as_bytes())
}

fn save(batch: &mut Batch<'_>, queue: &str, record: &mut QueueRecord) -> Result<(), ViewError> {
    record.version += 1;
    batch.put_encoded(Cf::Queues, queue.as_bytes(), record)
}

fn message(batch: &Batch<'_>, queue: &str, id: u64) -> Result<Option<Message>, ViewError> {
    batch.get_decoded(Cf::QueueMessages, &message_key(queue, id))
}

/// When something stamped `now_ms` waits `ms`: counted from the later of the clock
/// and the stamp, as lease expiries are.
fn after(meta: &Meta, now_ms: u64, ms: u64) -> u64 {
    meta.clock_ms.max(now_ms).saturating_add(ms)
}

/// Takes a message out of the visible set or the timers, by its current state.
fn unindex(batch: &mut Batch<'_>, queue: &str, id: u64, state: MessageState, record: &mut QueueRecord) {
    match state {
        MessageState::Visible => {
            batch.delete(Cf::QueueVisible, &message_key(queue, id));
            record.visible = record.visible.saturating_sub(1);
        }
        MessageState::InFlight { until_ms } => {
            batch.delete(Cf::QueueTimers, &timer_key(until_ms, queue, id));
            record.in_flight = record.in_flight.saturating_sub(1);
        }
        MessageState::Delayed { until_ms } => {
            batch.delete(Cf::QueueTimers, &timer_key(until_ms, queue, id));
            record.delayed = record.delayed.saturating_sub(1);
        }
    }
}

/// Stores `message` under `id` and indexes it by its state.
fn store(batch: &mut Batch<'_>, queue: &str, id: u64, message: &Message, record: &mut QueueRecord) -> Result<(), ViewError> {
    match message.state {
        MessageState::Visible => {
            batch.put(Cf::QueueVisible, &message_key(queue, id), Vec::new());
            record.visible += 1;
        }
        MessageState::InFlight { until_ms } => {
            batch.put(Cf::QueueTimers, &timer_key(until_ms, queue, id), Vec::new());
            record.in_flight += 1;
        }
        MessageState::Delayed { until_ms } => {
            batch.put(Cf::QueueTimers, &timer_key(until_ms, queue, id), Vec::new());
            record.delayed += 1;
        }
    }
    batch.put_encoded(Cf::QueueMessages, &message_key(queue, id), message)
}

/// Creates or reconfigures `queue`. A dead-letter queue it names is created too.
fn configure(batch: &mut Batch<'_>, meta: &mut Meta, queue: &str, settings: QueueSettings) -> Result<Outcome, ViewError> {
    if let Some(reason) = settings.invalid(queue) {
        return Ok(QueueRejection::Invalid { queue: queue.to_string(), reason }.into());
    }
    let existing = record(batch, queue)?;
    let dlq_missing = match &settings.dead_letter_queue {
        Some(dlq) => record(batch, dlq)?.is_none(),
        None => false,
    };
    let new_queues = u64::from(existing.is_none()) + u64::from(dlq_missing);
    if meta.queue_count + new_queues > QUEUES_MAX {
        return Ok(QueueRejection::Limit { limit: QUEUES_MAX }.into());
    }
    if let Some(dlq) = settings.dead_letter_queue.as_deref().filter(|_| dlq_missing) {
        create(batch, meta, dlq, QueueSettings::default())?;
    }
    let created = existing.is_none();
    let mut record = existing.unwrap_or_else(|| new_record(meta, settings.clone()));
    record.settings = settings.clone();
    save(batch, queue, &mut record)?;
    Ok(QueueOutcome::Configured { queue: queue.to_string(), created, settings }.into())
}

/// A new, empty queue's record, counted in `meta` (not yet saved).
fn new_record(meta: &mut Meta, settings: QueueSettings) -> QueueRecord {
    meta.queue_count += 1;
    QueueRecord { settings, next_id: 1, ..QueueRecord::default() }
}

/// Creates and saves a new, empty queue.
fn create(batch: &mut Batch<'_>, meta: &mut Meta, queue: &str, settings: QueueSettings) -> Result<QueueRecord, ViewError> {
    let mut record = new_record(meta, settings);
    save(batch, queue, &mut record)?;
    Ok(record)
}

/// Appends a message (creating the queue with default settings on first use, unless
/// the message is refused).
pub fn enqueue(batch: &mut Batch<'_>, meta: &mut Meta, queue: &str, payload: Vec<u8>, delay_ms: u64, now_ms: u64) -> Result<Outcome, ViewError> {
    let existing = record(batch, queue)?;
    if existing.is_none() && meta.queue_count >= QUEUES_MAX {
        return Ok(QueueRejection::Limit { limit: QUEUES_MAX }.into());
    }
    let settings = existing.as_ref().map_or_else(QueueSettings::default, |record| record.settings.clone());
    if payload.len() as u64 > settings.max_message_bytes {
        return Ok(QueueRejection::MessageTooLarge { queue: queue.to_string(), len: payload.len() as u64, max: settings.max_message_bytes }.into());
    }
    let mut record = match existing {
        Some(record) if record.length() >= record.settings.max_length => {
            return Ok(QueueRejection::Full { queue: queue.to_string(), limit: record.settings.max_length }.into());
        }
        Some(record) => record,
        None => create(batch, meta, queue, settings)?,
    };
    let state = if delay_ms == 0 { MessageState::Visible } else { MessageState::Delayed { until_ms: after(meta, now_ms, delay_ms) } };
    let message = Message { payload, enqueued_at_ms: meta.clock_ms.max(now_ms), deliveries: 0, delivered_at: 0, state, dead_lettered_from: None };
    let id = append(batch, queue, &mut record, message)?;
    save(batch, queue, &mut record)?;
    Ok(QueueOutcome::Enqueued { queue: queue.to_string(), id }.into())
}

fn append(batch: &mut Batch<'_>, queue: &str, record: &mut QueueRecord, message: Message) -> Result<u64, ViewError> {
    let id = record.next_id;
    record.next_id += 1;
    store(batch, queue, id, &message, record)?;
    Ok(id)
}

/// Hands out up to `max` visible messages in id order, in flight for `visibility_ms`
/// (the queue's default if none).
fn receive(batch: &mut Batch<'_>, meta: &Meta, index: u64, queue: &str, max: u32, visibility_ms: Option<u64>, now_ms: u64) -> Result<Outcome, ViewError> {
    let Some(mut record) = record(batch, queue)? else {
        return Ok(QueueOutcome::Received { queue: queue.to_string(), messages: Vec::new() }.into());
    };
    let until_ms = after(meta, now_ms, visibility_ms.unwrap_or(record.settings.visibility_ms));
    let prefix = message_key(queue, 0);
    let prefix = &prefix[..queue.len() + 1];
    let mut ids = Vec::new();
    for item in batch.scan(Cf::QueueVisible, prefix) {
        let (key, _) = item?;
        if !key.starts_with(prefix) || ids.len() >= max.min(RECEIVE_MAX) as usize {
            break;
        }
        ids.push(message_id(&key)?);
    }
    let mut messages = Vec::new();
    let mut bytes = 0;
    for id in ids {
        let mut message = message(batch, queue, id)?.ok_or_else(|| ViewError::Corrupt(format!("queue {queue:?} lists missing message {id}")))?;
        if !messages.is_empty() && bytes + message.payload.len() > RECEIVE_BYTES_MAX {
            break;
        }
        bytes += message.payload.len();
        unindex(batch, queue, id, message.state, &mut record);
        message.deliveries += 1;
        message.delivered_at = index;
        message.state = MessageState::InFlight { until_ms };
        store(batch, queue, id, &message, &mut record)?;
        let receipt = Receipt { id, delivery: index };
        messages.push(Delivered {
            receipt,
            deliveries: message.deliveries,
            enqueued_at_ms: message.enqueued_at_ms,
            until_ms,
            dead_lettered_from: message.dead_lettered_from,
            payload: message.payload,
        });
    }
    if !messages.is_empty() {
        save(batch, queue, &mut record)?;
    }
    Ok(QueueOutcome::Received { queue: queue.to_string(), messages }.into())
}

/// The in-flight message `receipt` names, or why the receipt is not valid.
pub(super) fn in_flight(batch: &Batch<'_>, queue: &str, receipt: Receipt) -> Result<Result<(QueueRecord, Message), Rejection>, ViewError> {
    let Some(record) = record(batch, queue)? else {
        return Ok(Err(QueueRejection::NotFound { queue: queue.to_string() }.into()));
    };
    let message = message(batch, queue, receipt.id)?;
    let current = message.as_ref().map(|m| m.delivered_at);
    match message {
        Some(message) if message.delivered_at == receipt.delivery && matches!(message.state, MessageState::InFlight { .. }) => Ok(Ok((record, message))),
        _ => Ok(Err(QueueRejection::StaleReceipt { queue: queue.to_string(), receipt, current_delivery: current }.into())),
    }
}

/// Deletes the message `receipt` names, if that delivery is still in flight.
pub fn ack(batch: &mut Batch<'_>, queue: &str, receipt: Receipt) -> Result<Outcome, ViewError> {
    let (mut record, message) = match in_flight(batch, queue, receipt)? {
        Ok(found) => found,
        Err(rejection) => return Ok(Outcome::Rejected(rejection)),
    };
    unindex(batch, queue, receipt.id, message.state, &mut record);
    batch.delete(Cf::QueueMessages, &message_key(queue, receipt.id));
    save(batch, queue, &mut record)?;
    Ok(QueueOutcome::Acked { queue: queue.to_string(), id: receipt.id }.into())
}

/// Gives a delivery back: visible again after `delay_ms`, or dead-lettered if it was
/// the last delivery allowed.
pub fn nack(batch: &mut Batch<'_>, meta: &mut Meta, queue: &str, receipt: Receipt, delay_ms: u64, now_ms: u64) -> Result<Outcome, ViewError> {
    let (mut record, mut message) = match in_flight(batch, queue, receipt)? {
        Ok(found) => found,
        Err(rejection) => return Ok(Outcome::Rejected(rejection)),
    };
    unindex(batch, queue, receipt.id, message.state, &mut record);
    let dead_lettered = if exhausted(&record, &message) {
        dead_letter(batch, meta, queue, receipt.id, message, &mut record)?;
        true
    } else {
        message.state = if delay_ms == 0 { MessageState::Visible } else { MessageState::Delayed { until_ms: after(meta, now_ms, delay_ms) } };
        store(batch, queue, receipt.id, &message, &mut record)?;
        false
    };
    save(batch, queue, &mut record)?;
    Ok(QueueOutcome::Nacked { queue: queue.to_string(), id: receipt.id, dead_lettered }.into())
}

/// Keeps a delivery in flight for `visibility_ms` from now (never shortens it).
pub fn extend(batch: &mut Batch<'_>, meta: &Meta, queue: &str, receipt: Receipt, visibility_ms: u64, now_ms: u64) -> Result<Outcome, ViewError> {
    let (mut record, mut message) = match in_flight(batch, queue, receipt)? {
        Ok(found) => found,
        Err(rejection) => return Ok(Outcome::Rejected(rejection)),
    };
    let MessageState::InFlight { until_ms: current } = message.state else {
        return Err(ViewError::Corrupt("in_flight returned a message not in flight".into()));
    };
    unindex(batch, queue, receipt.id, message.state, &mut record);
    let until_ms = current.max(after(meta, now_ms, visibility_ms));
    message.state = MessageState::InFlight { until_ms };
    store(batch, queue, receipt.id, &message, &mut record)?;
    save(batch, queue, &mut record)?;
    Ok(QueueOutcome::Extended { queue: queue.to_string(), receipt, until_ms }.into())
}

fn exhausted(record: &QueueRecord, message: &Message) -> bool {
    record.settings.max_deliveries.is_some_and(|max| message.deliveries >= max)
}

/// Moves message `id` (already unindexed from `queue`) to the dead-letter queue,
/// creating that queue if it was deleted since. Nothing is dropped: the move ignores
/// the dead-letter queue's `max_length`.
fn dead_letter(batch: &mut Batch<'_>, meta: &mut Meta, queue: &str, id: u64, message: Message, record: &mut QueueRecord) -> Result<(), ViewError> {
    batch.delete(Cf::QueueMessages, &message_key(queue, id));
    record.dead_lettered += 1;
    let Some(dlq) = record.settings.dead_letter_queue.clone() else {
        return Err(ViewError::Corrupt(format!("queue {queue:?} dead-letters without a dead-letter queue")));
    };
    let mut target = match self::record(batch, &dlq)? {
        Some(target) => target,
        None => create(batch, meta, &dlq, QueueSettings::default())?,
    };
    let moved = Message { deliveries: 0, delivered_at: 0, state: MessageState::Visible, dead_lettered_from: Some((queue.to_string(), id)), ..message };
    append(batch, &dlq, &mut target, moved)?;
    save(batch, &dlq, &mut target)
}

/// At a tick: messages whose timers are due become visible again, or are
/// dead-lettered after their last allowed delivery.
pub fn tick(batch: &mut Batch<'_>, meta: &mut Meta) -> Result<u64, ViewError> {
    let mut due = Vec::new();
    for item in batch.scan(Cf::QueueTimers, &[]) {
        let (key, _) = item?;
        let (until_ms, queue, id) = parse_timer_key(&key)?;
        if until_ms > meta.clock_ms || due.len() >= TIMERS_PER_TICK_MAX {
            break;
        }
        due.push((queue, id));
    }
    let handled = due.len() as u64;
    for (queue, id) in due {
        let (Some(mut record), Some(mut message)) = (record(batch, &queue)?, message(batch, &queue, id)?) else {
            return Err(ViewError::Corrupt(format!("a timer names missing message {id} of queue {queue:?}")));
        };
        unindex(batch, &queue, id, message.state, &mut record);
        let timed_out = matches!(message.state, MessageState::InFlight { .. });
        if timed_out && exhausted(&record, &message) {
            dead_letter(batch, meta, &queue, id, message, &mut record)?;
        } else {
            message.state = MessageState::Visible;
            store(batch, &queue, id, &message, &mut record)?;
        }
        save(batch, &queue, &mut record)?;
    }
    Ok(handled)
}

/// Deletes up to `DELETE_BATCH_MAX` messages of `queue`, and the queue once it has
/// none left.
fn delete(batch: &mut Batch<'_>, meta: &mut Meta, queue: &str) -> Result<Outcome, ViewError> {
    let Some(mut record) = record(batch, queue)? else {
        return Ok(QueueRejection::NotFound { queue: queue.to_string() }.into());
    };
    let prefix = message_key(queue, 0);
    let prefix = &prefix[..queue.len() + 1];
    let mut doomed = Vec::new();
    for item in batch.scan(Cf::QueueMessages, prefix) {
        let (key, value) = item?;
        if !key.starts_with(prefix) || doomed.len() >= DELETE_BATCH_MAX {
            break;
        }
        doomed.push((message_id(&key)?, codec::decode::<Message>(&value)?.state));
    }
    let deleted_messages = doomed.len() as u64;
    for (id, state) in doomed {
        unindex(batch, queue, id, state, &mut record);
        batch.delete(Cf::QueueMessages, &message_key(queue, id));
    }
    let deleted = record.length() == 0;
    if deleted {
        batch.delete(Cf::Queues, queue.as_bytes());
        meta.queue_count = meta.queue_count.saturating_sub(1);
    } else {
        save(batch, queue, &mut record)?;
    }
    Ok(QueueOutcome::Deleted { queue: queue.to_string(), deleted_messages, deleted }.into())
}

/// A queue as read: its record and its oldest message's enqueue time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueView {
    pub record: QueueRecord,
    pub oldest_enqueued_at_ms: Option<u64>,
}

pub fn get(view: &View<'_>, queue: &str) -> Result<Option<QueueView>, ViewError> {
    let Some(bytes) = view.get(Cf::Queues, queue.as_bytes())? else {
        return Ok(None);
    };
    let record: QueueRecord = codec::decode(&bytes)?;
    let prefix = message_key(queue, 0);
    let prefix = &prefix[..queue.len() + 1];
    let oldest = match view.iter_from(Cf::QueueMessages, prefix).next() {
        Some(item) => {
            let (key, value) = item?;
            if key.starts_with(prefix) { Some(codec::decode::<Message>(&value)?.enqueued_at_ms) } else { None }
        }
        None => None,
    };
    Ok(Some(QueueView { record, oldest_enqueued_at_ms: oldest }))
}

/// The earliest queue timer on the replicated clock, if any message is in flight or delayed.
pub fn next_timer(view: &View<'_>) -> Result<Option<u64>, ViewError> {
    match view.iter_from(Cf::QueueTimers, &[]).next() {
        None => Ok(None),
        Some(item) => Ok(Some(parse_timer_key(&item?.0)?.0)),
    }
}
