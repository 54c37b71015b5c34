//! What goes to a backend (a request body: none, bytes, or the client's body streamed within
//! its limit) and what comes back (the answer's body, read from the connection by whoever
//! polls it, which hands the connection back to its pool at the end).

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use axum::body::Body;
use bytes::Bytes;
use http_body_util::Limited;
use hyper::body::Incoming;
use hyper::body::{Body as HttpBody, Frame, SizeHint};

use super::pool::{Conn, Pool};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// A request body sent to a backend.
pub enum RequestBody {
    Empty,
    Bytes(Option<Bytes>),
    /// The client's body, streamed; longer than the limit fails the exchange.
    Stream(Limited<Body>),
}

impl RequestBody {
    pub fn bytes(bytes: impl Into<Bytes>) -> RequestBody {
        RequestBody::Bytes(Some(bytes.into()))
    }

    /// The client's body, at most `limit` bytes; a body that is known to be empty is sent as
    /// none.
    pub fn stream(body: Body, limit: usize) -> RequestBody {
        if body.is_end_stream() {
            RequestBody::Empty
        } else {
            RequestBody::Stream(Limited::new(body, limit))
        }
    }
}

impl HttpBody for RequestBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        match self.get_mut() {
            RequestBody::Empty => Poll::Ready(None),
            RequestBody::Bytes(bytes) => Poll::Ready(bytes.take().map(|b| Ok(Frame::data(b)))),
            RequestBody::Stream(body) => Pin::new(body).poll_frame(cx),
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            RequestBody::Empty => true,
            RequestBody::Bytes(bytes) => bytes.is_none(),
            RequestBody::Stream(body) => body.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            RequestBody::Empty => SizeHint::with_exact(0),
            RequestBody::Bytes(bytes) => {
                SizeHint::with_exact(bytes.as_ref().map_or(0, |b| b.len() as u64))
            }
            RequestBody::Stream(body) => body.size_hint(),
        }
    }
}

/// An answer's body, read from its connection. At its end the connection goes back to the
/// pool; dropped before (the client left, a deadline passed) the connection is closed, since
/// the rest of the answer would be read as the next one's.
pub struct ResponseBody {
    body: Incoming,
    conn: Option<Box<Conn>>,
    pool: Arc<Pool>,
}

impl ResponseBody {
    pub(super) fn new(body: Incoming, conn: Box<Conn>, pool: Arc<Pool>) -> ResponseBody {
        ResponseBody {
            body,
            conn: Some(conn),
            pool,
        }
    }

    /// The whole body, at most `limit` bytes (`None` beyond).
    pub async fn read_to_end(mut self, limit: usize) -> Result<Option<Bytes>, hyper::Error> {
        let mut first: Option<Bytes> = None;
        let mut rest: Vec<u8> = Vec::new();
        while let Some(frame) = std::future::poll_fn(|cx| Pin::new(&mut self).poll_frame(cx)).await
        {
            let Ok(data) = frame?.into_data() else {
                continue;
            };
            let len = first.as_ref().map_or(0, Bytes::len) + rest.len() + data.len();
            if len > limit {
                return Ok(None);
            }
            match &mut first {
                None => first = Some(data),
                Some(head) => {
                    if rest.is_empty() {
                        rest.reserve(len);
                        rest.extend_from_slice(head);
                    }
                    rest.extend_from_slice(&data);
                }
            }
        }
        Ok(Some(if rest.is_empty() {
            first.unwrap_or_default()
        } else {
            Bytes::from(rest)
        }))
    }

    fn release(&mut self) {
        if let Some(conn) = self.conn.take()
            && !conn.is_done()
        {
            self.pool.put_back(conn);
        }
    }
}

impl std::fmt::Debug for ResponseBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResponseBody")
            .field("end", &self.body.is_end_stream())
            .finish()
    }
}

impl HttpBody for ResponseBody {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        let this = self.get_mut();
        // The connection reads what the body is waiting for.
        if let Some(conn) = this.conn.as_mut() {
            conn.poll_driver(cx);
        }
        let polled = Pin::new(&mut this.body).poll_frame(cx);
        match &polled {
            Poll::Ready(None) => this.release(),
            Poll::Ready(Some(Err(_))) => this.conn = None,
            _ => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

impl Drop for ResponseBody {
    /// A body nobody read because it is empty (a `HEAD`, a 204, `Content-Length: 0`) is
    /// complete: its connection is reusable.
    fn drop(&mut self) {
        if self.conn.is_some() && self.body.is_end_stream() {
            self.release();
        }
    }
}
