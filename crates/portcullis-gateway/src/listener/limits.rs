//! What keeps slow or greedy clients from taking a listener down: a connection budget per
//! listener, a cap per client address on the public listener, and a deadline on request
//! bodies. (What is admitted as a WebSocket or SSE session, and how fast, is `crate::abuse`.)

use std::any::Any;
use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::Body;
use bytes::Bytes;
use hyper::body::{Body as HttpBody, Frame, SizeHint};
use portcullis_core::proxies::{Cidr, is_trusted};
use tokio::sync::OwnedSemaphorePermit;

pub use portcullis_core::client::client_key;

/// Open connections per client address, at most `cap` each. An address is tracked only while
/// it has a connection open, so the table never holds more entries than the listener has
/// connections. Peers in `exempt` (the trusted proxies, which carry many clients each) are not
/// counted on accept; `crate::abuse` counts each of their sessions under its forwarded client
/// address instead, with [`PerClient::count`].
pub struct PerClient {
    cap: usize,
    exempt: Vec<Cidr>,
    open: Mutex<HashMap<IpAddr, usize>>,
}

impl PerClient {
    #[cfg(test)]
    pub fn new(cap: usize) -> Arc<PerClient> {
        PerClient::exempting(cap, Vec::new())
    }

    /// A table whose cap does not apply to peers in `exempt`.
    pub fn exempting(cap: usize, exempt: Vec<Cidr>) -> Arc<PerClient> {
        Arc::new(PerClient {
            cap,
            exempt,
            open: Mutex::new(HashMap::new()),
        })
    }

    /// A slot for one more connection from the peer `ip`, or `None` when its address already
    /// has `cap` open. An exempt peer always gets one, counted nowhere.
    pub fn try_open(self: &Arc<Self>, ip: IpAddr) -> Option<ClientSlot> {
        if is_trusted(ip, &self.exempt) {
            return Some(ClientSlot {
                table: self.clone(),
                key: None,
            });
        }
        self.count(ip)
    }

    /// A slot for one more connection from the client `ip`, exempt or not; `None` when its
    /// address already has `cap` open.
    pub fn count(self: &Arc<Self>, ip: IpAddr) -> Option<ClientSlot> {
        let key = client_key(ip);
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        let count = open.entry(key).or_insert(0);
        if *count >= self.cap {
            if *count == 0 {
                open.remove(&key);
            }
            return None;
        }
        *count += 1;
        Some(ClientSlot {
            table: self.clone(),
            key: Some(key),
        })
    }

    /// Connections open from `ip`'s address.
    #[cfg(test)]
    fn open_from(&self, ip: IpAddr) -> usize {
        let open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        open.get(&client_key(ip)).copied().unwrap_or(0)
    }

    /// Addresses tracked.
    #[cfg(test)]
    fn tracked(&self) -> usize {
        self.open.lock().unwrap_or_else(|e| e.into_inner()).len()
    }
}

/// One connection counted against its client address (none for an exempt peer); released
/// when dropped.
pub struct ClientSlot {
    table: Arc<PerClient>,
    key: Option<IpAddr>,
}

impl Drop for ClientSlot {
    fn drop(&mut self) {
        let Some(key) = self.key else { return };
        let mut open = self.table.open.lock().unwrap_or_else(|e| e.into_inner());
        if let Entry::Occupied(mut entry) = open.entry(key) {
            *entry.get_mut() = entry.get().saturating_sub(1);
            if *entry.get() == 0 {
                entry.remove();
            }
        }
    }
}

/// A connection's place in its listener's budget (and its address's cap). The connection task
/// holds it; a WebSocket session takes a clone from the upgrade request, so an upgraded
/// connection keeps counting until the session ends.
#[derive(Clone)]
pub struct ConnectionSlot {
    _held: Arc<dyn Any + Send + Sync>,
}

impl ConnectionSlot {
    pub fn new(permit: OwnedSemaphorePermit, client: Option<ClientSlot>) -> ConnectionSlot {
        ConnectionSlot {
            _held: Arc::new((permit, client)),
        }
    }

    /// `slot`, holding `more` as well for as long as it lives (the session's own places).
    pub fn holding<T: Send + Sync + 'static>(
        slot: Option<ConnectionSlot>,
        more: T,
    ) -> ConnectionSlot {
        ConnectionSlot {
            _held: Arc::new((slot, more)),
        }
    }
}

/// The error a request body gives once its deadline has passed.
#[derive(Debug)]
pub struct BodyReadTimeout;

impl std::fmt::Display for BodyReadTimeout {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("request body not received in time")
    }
}

impl std::error::Error for BodyReadTimeout {}

/// A request body that must arrive whole before a deadline that starts at the first read
/// (`start` makes it then). Past it, reading fails and `expired` is set, so the connection's
/// answer becomes 408. No timer runs for a body that is never read or is empty.
pub struct DeadlineBody<B, S, D> {
    inner: B,
    start: Option<S>,
    deadline: Option<Pin<Box<D>>>,
    expired: Arc<AtomicBool>,
    done: bool,
}

impl<B, S, D> DeadlineBody<B, S, D>
where
    S: FnOnce() -> D,
    D: Future<Output = ()>,
{
    pub fn new(inner: B, start: S, expired: Arc<AtomicBool>) -> DeadlineBody<B, S, D> {
        DeadlineBody {
            inner,
            start: Some(start),
            deadline: None,
            expired,
            done: false,
        }
    }
}

impl<B, S, D> HttpBody for DeadlineBody<B, S, D>
where
    B: HttpBody<Data = Bytes> + Unpin,
    B::Error: Into<axum::BoxError>,
    S: FnOnce() -> D + Unpin,
    D: Future<Output = ()>,
{
    type Data = Bytes;
    type Error = axum::BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = self.get_mut();
        if this.done {
            return Poll::Ready(None);
        }
        if !this.inner.is_end_stream() {
            if this.deadline.is_none()
                && let Some(start) = this.start.take()
            {
                this.deadline = Some(Box::pin(start()));
            }
            if let Some(deadline) = this.deadline.as_mut()
                && deadline.as_mut().poll(cx).is_ready()
            {
                this.expired.store(true, Ordering::Release);
                this.done = true;
                this.deadline = None;
                return Poll::Ready(Some(Err(Box::new(BodyReadTimeout))));
            }
        }
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(None) => {
                this.done = true;
                this.deadline = None;
                Poll::Ready(None)
            }
            Poll::Ready(Some(frame)) => Poll::Ready(Some(frame.map_err(Into::into))),
            Poll::Pending => Poll::Pending,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.done || self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// `body` with a read deadline `timeout` after its first read; `expired` is set if it passes.
pub fn with_deadline<B>(body: B, timeout: Duration, expired: Arc<AtomicBool>) -> Body
where
    B: HttpBody<Data = Bytes> + Unpin + Send + 'static,
    B::Error: Into<axum::BoxError>,
{
    Body::new(DeadlineBody::new(
        body,
        move || tokio::time::sleep(timeout),
        expired,
    ))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;

    #[test]
    fn the_cap_counts_per_address_and_slots_free_on_drop() {
        let table = PerClient::new(2);
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let b: IpAddr = "192.0.2.2".parse().unwrap();
        let first = table.try_open(a);
        let second = table.try_open(a);
        assert!(first.is_some() && second.is_some());
        assert!(table.try_open(a).is_none(), "third from one address");
        assert!(
            table.try_open(b).is_some(),
            "another address has its own cap"
        );
        assert_eq!(table.open_from(a), 2);
        drop(first);
        assert_eq!(table.open_from(a), 1);
        let third = table.try_open(a);
        assert!(third.is_some(), "a freed slot is reusable");
        drop((second, third));
        assert_eq!(
            table.tracked(),
            0,
            "addresses without connections are forgotten"
        );
    }

    #[test]
    fn exempt_peers_are_not_capped_but_their_clients_are() {
        let trusted = vec!["10.0.0.0/8".parse().unwrap()];
        let table = PerClient::exempting(1, trusted);
        let proxy: IpAddr = "10.0.0.2".parse().unwrap();
        let held: Vec<_> = (0..5).map(|_| table.try_open(proxy).unwrap()).collect();
        assert_eq!(
            table.tracked(),
            0,
            "the proxy's sockets are counted nowhere"
        );
        let client: IpAddr = "198.51.100.1".parse().unwrap();
        let session = table.count(client);
        assert!(session.is_some());
        assert!(table.count(client).is_none(), "the client's cap holds");
        assert!(table.try_open(client).is_none(), "directly too");
        drop((held, session));
        assert_eq!(table.tracked(), 0);
    }

    #[test]
    fn one_ipv6_subscriber_shares_one_cap() {
        let table = PerClient::new(1);
        let one: IpAddr = "2001:db8::1".parse().unwrap();
        let same_64: IpAddr = "2001:db8::ffff:2".parse().unwrap();
        let other_64: IpAddr = "2001:db8:0:1::1".parse().unwrap();
        let _held = table.try_open(one);
        assert!(table.try_open(same_64).is_none());
        assert!(table.try_open(other_64).is_some());
    }

    type Sent = Result<Frame<Bytes>, std::io::Error>;

    /// A body whose frames the test sends.
    fn sent_body() -> (Body, tokio::sync::mpsc::Sender<Sent>) {
        let (tx, mut rx) = tokio::sync::mpsc::channel::<Sent>(4);
        let stream = futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx));
        (Body::new(http_body_util::StreamBody::new(stream)), tx)
    }

    /// A deadline the test passes by hand, and whether it has been started.
    struct Clock {
        pass: tokio::sync::oneshot::Sender<()>,
        started: Arc<AtomicBool>,
    }

    fn deadline_body(body: Body) -> (Body, Clock, Arc<AtomicBool>) {
        let (pass, passed) = tokio::sync::oneshot::channel::<()>();
        let started = Arc::new(AtomicBool::new(false));
        let expired = Arc::new(AtomicBool::new(false));
        let on_start = started.clone();
        let body = Body::new(DeadlineBody::new(
            body,
            move || {
                on_start.store(true, Ordering::Release);
                async move {
                    let _ = passed.await;
                }
            },
            expired.clone(),
        ));
        (body, Clock { pass, started }, expired)
    }

    #[tokio::test]
    async fn a_body_that_stalls_fails_at_its_deadline() {
        let (body, tx) = sent_body();
        let (mut body, clock, expired) = deadline_body(body);
        assert!(
            !clock.started.load(Ordering::Acquire),
            "no deadline before the first read"
        );
        tx.send(Ok(Frame::data(Bytes::from_static(b"x"))))
            .await
            .unwrap();
        let first = body.frame().await.unwrap().unwrap();
        assert_eq!(first.into_data().unwrap(), Bytes::from_static(b"x"));
        assert!(clock.started.load(Ordering::Acquire));
        // The client sends nothing more; the deadline passes.
        let reader = tokio::spawn(async move { body.collect().await.map(|_| ()) });
        clock.pass.send(()).unwrap();
        let error = reader.await.unwrap().expect_err("the read fails");
        assert!(
            error.to_string().contains("not received in time"),
            "{error}"
        );
        assert!(expired.load(Ordering::Acquire));
        drop(tx);
    }

    #[tokio::test]
    async fn a_whole_body_reads_as_before() {
        let (body, clock, expired) = deadline_body(Body::from("hello"));
        assert_eq!(HttpBody::size_hint(&body).exact(), Some(5));
        let bytes = body.collect().await.unwrap().to_bytes();
        assert_eq!(&bytes[..], b"hello");
        let _ = clock.pass.send(());
        assert!(!expired.load(Ordering::Acquire));

        let (empty, clock, expired) = deadline_body(Body::empty());
        assert!(HttpBody::is_end_stream(&empty));
        assert!(empty.collect().await.unwrap().to_bytes().is_empty());
        assert!(
            !clock.started.load(Ordering::Acquire),
            "no timer for an empty body"
        );
        assert!(!expired.load(Ordering::Acquire));
    }

    #[tokio::test]
    async fn a_body_finished_before_the_deadline_is_not_expired_later() {
        let (body, tx) = sent_body();
        tx.send(Ok(Frame::data(Bytes::from_static(b"ab"))))
            .await
            .unwrap();
        drop(tx);
        let (mut body, clock, expired) = deadline_body(body);
        let first = body.frame().await.unwrap().unwrap();
        assert_eq!(first.into_data().unwrap(), Bytes::from_static(b"ab"));
        assert!(body.frame().await.is_none());
        let _ = clock.pass.send(());
        assert!(body.frame().await.is_none());
        assert!(!expired.load(Ordering::Acquire));
    }
}
