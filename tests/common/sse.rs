//! A reader of server-sent event streams (watches, topic subscriptions) for tests.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::Value;

/// Reads a server-sent event stream: `(event, id, data)` per event.
pub struct SseReader {
    response: reqwest::Response,
    buffer: String,
}

impl SseReader {
    pub async fn open(url: &str, last_event_id: Option<&str>) -> SseReader {
        let mut request = reqwest::Client::new().get(url);
        if let Some(id) = last_event_id {
            request = request.header("last-event-id", id);
        }
        SseReader::send(request).await
    }

    /// Sends `request` (a GET of a stream) and expects the stream.
    pub async fn send(request: reqwest::RequestBuilder) -> SseReader {
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), StatusCode::OK, "{}", response.url());
        assert_eq!(response.headers()["content-type"], "text/event-stream");
        SseReader { response, buffer: String::new() }
    }

    /// The next event (keep-alive comments skipped), within 10 s.
    pub async fn next(&mut self) -> (String, Option<String>, Value) {
        loop {
            if let Some(end) = self.buffer.find("\n\n") {
                let block: String = self.buffer.drain(..end + 2).collect();
                let (mut event, mut id, mut data) = (String::from("message"), None, String::new());
                for line in block.lines() {
                    if let Some(v) = line.strip_prefix("event:") {
                        event = v.trim().to_string();
                    } else if let Some(v) = line.strip_prefix("id:") {
                        id = Some(v.trim().to_string());
                    } else if let Some(v) = line.strip_prefix("data:") {
                        data.push_str(v.trim_start());
                    }
                }
                if data.is_empty() {
                    continue; // a comment
                }
                return (event, id, serde_json::from_str(&data).unwrap());
            }
            let chunk =
                tokio::time::timeout(Duration::from_secs(10), self.response.chunk()).await.expect("an event within 10 s").unwrap().expect("stream open");
            self.buffer.push_str(&String::from_utf8_lossy(&chunk));
        }
    }

    /// Whether the server closes the stream (within 10 s) with no event left to send.
    pub async fn closed(&mut self) -> bool {
        let chunk = tokio::time::timeout(Duration::from_secs(10), self.response.chunk()).await.expect("the stream ends within 10 s").unwrap();
        chunk.is_none() && self.buffer.trim().is_empty()
    }
}
