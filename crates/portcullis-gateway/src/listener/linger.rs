//! Closing a plain-TCP connection the way a client can read the last answer: when the gateway
//! ends a connection while the client is still sending (an early 413, 401 or 429 to a request
//! whose body was not read), closing at once would make the kernel answer the unread bytes
//! with a reset, which destroys the answer before the client reads it. Instead the write side
//! is shut (the client sees the answer, then the end) and whatever still arrives is read and
//! thrown away for a short while, as nginx's lingering close does.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

use super::ConnectionSlot;

/// Longest a closed connection is read from after its last answer.
const LINGER_TOTAL: Duration = Duration::from_secs(5);
/// Longest wait for the client's next bytes while lingering.
const LINGER_IDLE: Duration = Duration::from_secs(1);

/// A served connection's socket; see the module's description for what happens when it is
/// dropped.
pub(super) struct Lingering {
    /// `None` only once dropped.
    stream: Option<TcpStream>,
    /// The connection's place in the listener's budgets, held while lingering too (a flood of
    /// lingering sockets still counts).
    slot: ConnectionSlot,
}

impl Lingering {
    pub(super) fn new(stream: TcpStream, slot: ConnectionSlot) -> Lingering {
        Lingering {
            stream: Some(stream),
            slot,
        }
    }

    fn stream(&mut self) -> io::Result<Pin<&mut TcpStream>> {
        match self.stream.as_mut() {
            Some(stream) => Ok(Pin::new(stream)),
            None => Err(io::ErrorKind::NotConnected.into()),
        }
    }
}

impl AsyncRead for Lingering {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut().stream() {
            Ok(stream) => stream.poll_read(cx, buf),
            Err(e) => Poll::Ready(Err(e)),
        }
    }
}

impl AsyncWrite for Lingering {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut().stream() {
            Ok(stream) => stream.poll_write(cx, buf),
            Err(e) => Poll::Ready(Err(e)),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut().stream() {
            Ok(stream) => stream.poll_write_vectored(cx, bufs),
            Err(e) => Poll::Ready(Err(e)),
        }
    }

    fn is_write_vectored(&self) -> bool {
        true
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut().stream() {
            Ok(stream) => stream.poll_flush(cx),
            Err(e) => Poll::Ready(Err(e)),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut().stream() {
            Ok(stream) => stream.poll_shutdown(cx),
            Err(e) => Poll::Ready(Err(e)),
        }
    }
}

impl Drop for Lingering {
    fn drop(&mut self) {
        let Some(stream) = self.stream.take() else {
            return;
        };
        // Most connections end with nothing unread (the client closed, or was answered in
        // full): one look at the socket, and it is closed.
        let Ok(std) = stream.into_std() else {
            return;
        };
        if !matches!(std.peek(&mut [0u8; 1]), Ok(n) if n > 0) {
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let _ = std.shutdown(std::net::Shutdown::Write);
        let slot = self.slot.clone();
        runtime.spawn(async move {
            let Ok(mut stream) = TcpStream::from_std(std) else {
                return;
            };
            let _ = tokio::time::timeout(LINGER_TOTAL, discard(&mut stream)).await;
            drop(slot);
        });
    }
}

/// Read and drop what arrives until the client closes or pauses for [`LINGER_IDLE`].
async fn discard(stream: &mut TcpStream) {
    let mut buf = vec![0u8; 16 * 1024];
    while let Ok(Ok(n)) = tokio::time::timeout(LINGER_IDLE, stream.read(&mut buf)).await {
        if n == 0 {
            return;
        }
    }
}
