//! Server-sent event streams for the client: watches (`/v1/watch`) and topic
//! subscriptions (`/v1/topics/{t}/stream`).
//!
//! A stream is one long HTTP answer from one node (streams are not forwarded), read
//! event by event. It remembers the last `id` it saw, so after an error the caller
//! can reopen with `resume_from()` and miss nothing the server still holds.

use reqwest::Method;
use serde_json::Value;

use super::{Client, ClientError, decode_payload, encode_segment};
use crate::wire::watch::{KeyDeleted, KeyPut};

/// Most bytes buffered for one event: the largest value a node can be configured to
/// take (64 MiB), as base64, and its framing.
const EVENT_BYTES_MAX: usize = 96 << 20;

/// A raw event: its type, its id if it carried one, and its JSON data.
#[derive(Debug, Clone, PartialEq)]
pub struct RawEvent {
    pub event: String,
    pub id: Option<u64>,
    pub data: Value,
}

pub struct EventStream {
    response: reqwest::Response,
    buffer: Vec<u8>,
    last_id: Option<u64>,
}

impl EventStream {
    /// The next event; `Ok(None)` when the server closed the stream. An `error` event
    /// (for example `compacted`) comes back as `ClientError::Api`.
    pub async fn next_raw(&mut self) -> Result<Option<RawEvent>, ClientError> {
        loop {
            if let Some(end) = self.buffer.windows(2).position(|w| w == b"\n\n") {
                let block: Vec<u8> = self.buffer.drain(..end + 2).collect();
                let text = String::from_utf8_lossy(&block);
                let (mut event, mut id, mut data) = ("message".to_string(), None, String::new());
                for line in text.lines() {
                    if let Some(value) = line.strip_prefix("event:") {
                        event = value.trim().to_string();
                    } else if let Some(value) = line.strip_prefix("id:") {
                        id = value.trim().parse().ok();
                    } else if let Some(value) = line.strip_prefix("data:") {
                        data.push_str(value.trim_start());
                    }
                }
                if data.is_empty() {
                    continue; // a keep-alive comment
                }
                let data: Value = serde_json::from_str(&data).map_err(|e| ClientError::Protocol(format!("event data is not JSON: {e}")))?;
                if event == "error" {
                    let error = &data["error"];
                    let code = error["code"].as_str().unwrap_or("stream_error");
                    // The status the same refusal has before a stream starts.
                    let status = match code {
                        "compacted" | "offset_compacted" => 410,
                        "topic_not_found" => 404,
                        "token_revoked" | "token_required" => 401,
                        "unavailable" => 503,
                        _ => 500,
                    };
                    return Err(ClientError::Api {
                        status,
                        code: code.to_string(),
                        message: error["message"].as_str().unwrap_or_default().to_string(),
                        details: error.get("details").cloned(),
                    });
                }
                if id.is_some() {
                    self.last_id = id;
                }
                return Ok(Some(RawEvent { event, id, data }));
            }
            if self.buffer.len() > EVENT_BYTES_MAX {
                return Err(ClientError::Protocol(format!("an event is over {EVENT_BYTES_MAX} bytes")));
            }
            match self.response.chunk().await {
                Ok(Some(chunk)) => self.buffer.extend_from_slice(&chunk),
                Ok(None) => return Ok(None),
                Err(e) => return Err(ClientError::Transport(format!("stream lost: {e}"))),
            }
        }
    }

    /// Where to reopen after this stream broke: the position after the last id seen.
    pub fn resume_from(&self) -> Option<u64> {
        self.last_id.map(|id| id + 1)
    }
}

/// One change to one key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WatchEvent {
    pub revision: u64,
    pub key: String,
    /// The new value; `None` for a deletion.
    pub value: Option<Vec<u8>>,
}

impl EventStream {
    /// The next key change of a watch.
    pub async fn next_change(&mut self) -> Result<Option<WatchEvent>, ClientError> {
        let Some(raw) = self.next_raw().await? else { return Ok(None) };
        let protocol = |e: serde_json::Error| ClientError::Protocol(format!("a watch event's data is not what its name says: {e}"));
        Ok(Some(match raw.event.as_str() {
            "put" => {
                let put: KeyPut = serde_json::from_value(raw.data).map_err(protocol)?;
                WatchEvent { revision: put.revision, value: Some(decode_payload(put.value, Some(&put.encoding))?), key: put.key }
            }
            "delete" => {
                let deleted: KeyDeleted = serde_json::from_value(raw.data).map_err(protocol)?;
                WatchEvent { revision: deleted.revision, key: deleted.key, value: None }
            }
            other => return Err(ClientError::Protocol(format!("unexpected watch event {other:?}"))),
        }))
    }
}

impl Client {
    /// Opens a stream on the first endpoint that answers (streams are served by the
    /// node asked, so no retry after it opened).
    pub(super) async fn open_stream(&self, path: &str) -> Result<EventStream, ClientError> {
        let mut last = ClientError::Transport("no endpoints configured".into());
        let mut unreachable = super::unreachable::Unreachable::new(self.endpoints.len());
        for (index, endpoint) in self.endpoints.iter().enumerate() {
            let request = self.authorized(self.http.request(Method::GET, format!("{endpoint}{path}")).timeout(std::time::Duration::from_secs(24 * 3600)));
            match request.send().await {
                Ok(response) if response.status().is_success() => return Ok(EventStream { response, buffer: Vec::new(), last_id: None }),
                Ok(response) => {
                    unreachable.reached(index);
                    let status = response.status();
                    let body = response.bytes().await.unwrap_or_default();
                    let error = super::api_error(&super::Answer { status, node: None, replayed: false, body });
                    if status != reqwest::StatusCode::SERVICE_UNAVAILABLE {
                        return Err(error);
                    }
                    last = error;
                }
                Err(e) => last = unreachable.send_failed(index, endpoint, &e),
            }
        }
        Err(unreachable.explain(last, &self.endpoints))
    }

    /// Watches keys under `prefix` from revision `from` (the next one if `None`).
    pub async fn watch(&self, prefix: &str, from_revision: Option<u64>) -> Result<EventStream, ClientError> {
        let mut path = format!("/v1/watch?prefix={}", encode_segment(prefix));
        if let Some(from) = from_revision {
            path.push_str(&format!("&from_revision={from}"));
        }
        self.open_stream(&path).await
    }
}
