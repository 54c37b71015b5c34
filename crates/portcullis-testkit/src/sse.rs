//! A server-sent events client for tests: reads a `text/event-stream` response over HTTP/1.1
//! or HTTP/2 (prior knowledge) and parses it as `EventSource` does (HTML §9.2.6).

use std::time::Duration;

use futures_util::StreamExt;
use futures_util::stream::BoxStream;

/// One dispatched event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// `message` unless the event named its type.
    pub event: String,
    pub data: String,
    /// The `id:` of this event, if it had one.
    pub id: Option<String>,
}

/// What the stream yields: events and comment lines (heartbeats).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Item {
    Event(Event),
    Comment(String),
}

/// An open stream.
pub struct SseClient {
    pub status: u16,
    pub headers: http::HeaderMap,
    pub version: http::Version,
    body: BoxStream<'static, reqwest::Result<bytes::Bytes>>,
    buffer: Vec<u8>,
    pending: Event,
    has_data: bool,
}

/// HTTP version to speak.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    Http1,
    /// HTTP/2 without TLS, prior knowledge (the public listener speaks it).
    Http2,
}

/// `GET url` with `headers`; the response whatever its status (`Err`: not a stream, with its
/// status and body).
pub async fn connect(
    url: &str,
    headers: &[(&str, &str)],
    protocol: Protocol,
) -> Result<SseClient, (u16, http::HeaderMap, String)> {
    let builder = reqwest::Client::builder();
    let builder = match protocol {
        Protocol::Http1 => builder.http1_only(),
        Protocol::Http2 => builder.http2_prior_knowledge(),
    };
    let client = builder.build().expect("client");
    let mut request = client.get(url);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = tokio::time::timeout(Duration::from_secs(10), request.send())
        .await
        .expect("answer within 10 s")
        .expect("request");
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let version = response.version();
    let is_stream = headers
        .get(http::header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"text/event-stream"));
    if status != 200 || !is_stream {
        let body = response.text().await.unwrap_or_default();
        return Err((status, headers, body));
    }
    Ok(SseClient {
        status,
        headers,
        version,
        body: response.bytes_stream().boxed(),
        buffer: Vec::new(),
        pending: empty_event(),
        has_data: false,
    })
}

fn empty_event() -> Event {
    Event {
        event: String::new(),
        data: String::new(),
        id: None,
    }
}

impl SseClient {
    /// The next event or comment within 10 s; `None` when the stream ended.
    pub async fn next_item(&mut self) -> Option<Item> {
        loop {
            if let Some(item) = self.parse_line() {
                return Some(item);
            }
            match tokio::time::timeout(Duration::from_secs(10), self.body.next()).await {
                Ok(Some(Ok(chunk))) => self.buffer.extend_from_slice(&chunk),
                Ok(Some(Err(_)) | None) => return None,
                Err(_) => panic!("nothing on the stream within 10 s"),
            }
        }
    }

    /// The next event (comments skipped) within 10 s; `None` when the stream ended.
    pub async fn next_event(&mut self) -> Option<Event> {
        loop {
            match self.next_item().await? {
                Item::Event(event) => return Some(event),
                Item::Comment(_) => continue,
            }
        }
    }

    /// The next event, which must exist.
    pub async fn event(&mut self) -> Event {
        self.next_event().await.expect("an event, not the end")
    }

    /// Whether the stream ends (within 10 s) with nothing but comments and events named in
    /// `allowed` before its end.
    pub async fn ends(&mut self, allowed: &[&str]) -> bool {
        while let Some(event) = self.next_event().await {
            if !allowed.contains(&event.event.as_str()) {
                return false;
            }
        }
        true
    }

    /// Parse one complete line from the buffer, returning an item when it completes one.
    fn parse_line(&mut self) -> Option<Item> {
        loop {
            let end = self.buffer.iter().position(|&b| b == b'\n')?;
            let line: Vec<u8> = self.buffer.drain(..=end).collect();
            let line = String::from_utf8_lossy(&line[..end]).into_owned();
            let line = line.strip_suffix('\r').unwrap_or(&line).to_owned();
            if line.is_empty() {
                if !self.has_data {
                    self.pending = empty_event();
                    continue;
                }
                let mut event = std::mem::replace(&mut self.pending, empty_event());
                self.has_data = false;
                event.data.pop();
                if event.event.is_empty() {
                    event.event = "message".to_owned();
                }
                return Some(Item::Event(event));
            }
            if let Some(comment) = line.strip_prefix(':') {
                return Some(Item::Comment(comment.trim_start().to_owned()));
            }
            let (field, value) = line.split_once(':').unwrap_or((&line, ""));
            let value = value.strip_prefix(' ').unwrap_or(value);
            match field {
                "event" => self.pending.event = value.to_owned(),
                "data" => {
                    self.pending.data.push_str(value);
                    self.pending.data.push('\n');
                    self.has_data = true;
                }
                "id" => self.pending.id = Some(value.to_owned()),
                _ => {}
            }
        }
    }
}
