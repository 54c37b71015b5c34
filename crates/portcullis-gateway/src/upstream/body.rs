//! What goes to a backend: a request body (none, bytes, or the client's body streamed within
//! its limit).

use std::pin::Pin;
use std::task::{Context, Poll};

use axum::body::Body;
use bytes::Bytes;
use http_body_util::Limited;
use hyper::body::{Body as HttpBody, Frame, SizeHint};

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
