//! One WebSocket connection, from the 101 to `$disconnect`.
//!
//! A single task owns the socket and runs one `select!` loop over: client frames, the bounded
//! outbound queue (pushes and replies), the idle and max-duration deadlines, server pings and
//! the shutdown signal. Integration calls run inside the same task, at most `max_inflight` per
//! connection; when all are busy the loop stops reading (backpressure on the client).

use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use futures_util::stream::FuturesUnordered;
use futures_util::{SinkExt, StreamExt};
use hyper::upgrade::Upgraded;
use hyper_util::rt::TokioIo;
use portcullis_config::BinaryFrames;
use portcullis_core::close::Close;
use portcullis_core::event::{
    self, ErrorFrame, EventType, WsEventContext, disconnect_event, error_frame, message_event,
    parse_proxy_result_ref,
};
use portcullis_core::id::{ConnectionId, request_id};
use portcullis_core::policy;
use serde_json::value::RawValue;
use tokio::time::{Instant, sleep_until};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::error::ProtocolError;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};
use tracing::{debug, info};

use super::WsApi;
use super::timers::{Due, Timers};
use crate::abuse::MessageRate;
use crate::answer;
use crate::authorizers::Identity;
use crate::error::GatewayError;
use crate::integration::CONNECT_FAILED;
use crate::metrics::{ApiLabel, DisconnectLabels};
use crate::registry::{ConnectionHandle, Data, Outbound};
use crate::state::State;

type Socket = WebSocketStream<TokioIo<Upgraded>>;

/// How long one outbound frame may take to reach the socket before the client counts as a
/// reader that never reads and is dropped.
const SEND_TIMEOUT: Duration = Duration::from_secs(10);
/// How long the gateway waits for the client's answer to its close frame.
const CLOSE_HANDSHAKE: Duration = Duration::from_secs(2);

pub struct Session {
    pub state: Arc<State>,
    pub api: Arc<WsApi>,
    pub handle: Arc<ConnectionHandle>,
    /// What the authorizer established on `$connect`: `requestContext.authorizer` of every
    /// event, and what per-message authorization checks.
    pub identity: Option<Arc<Identity>>,
}

pub async fn run(mut socket: Socket, session: Session) {
    let Session {
        state,
        api,
        handle,
        identity,
    } = session;
    // The upgrade registered the connection before answering 101.
    api.metrics.open.inc();
    api.metrics.connects.inc();

    // Integration calls of this connection; their replies are written by this task directly.
    let mut inflight = Inflight::default();
    let max_inflight = api.config.max_inflight;
    // `message_rate`: a message beyond it is answered with an error frame and dropped.
    let mut rate = MessageRate::new(api.config.message_rate);
    // One timer for the idle timeout, the maximum duration and the next ping: it sleeps until
    // the earliest of them. Activity only moves `timers.idle_at` later, so it never needs to
    // reset the timer; when the timer fires early, it is set again for what is due next.
    let mut timers = Timers::new(
        Instant::now(),
        api.config.idle_timeout,
        api.config.max_duration,
        api.config.ping_interval,
    );
    let timer = sleep_until(timers.next());
    tokio::pin!(timer);
    let shutdown = state.shutdown.clone();

    // How the connection ended: the close code and reason reported in `$disconnect`, and the
    // metric label.
    let ending: Close = loop {
        tokio::select! {
            biased;
            _ = shutdown.cancelled() => {
                break close(&mut socket, Close::GoingAway).await;
            }
            _ = handle.queue.ready() => {
                if handle.queue.is_killed() {
                    break Close::Killed;
                }
                // Everything queued is written, then flushed once: a burst of pushes costs one
                // write to the socket, not one per frame.
                let mut ending = None;
                let mut written = 0u64;
                while let Some(out) = handle.queue.pop() {
                    let message = match frame(out) {
                        Ok(message) => message,
                        Err(requested) => {
                            ending = flushed(&mut socket, written).await;
                            if ending.is_none() {
                                ending = Some(close(&mut socket, requested).await);
                            }
                            written = 0;
                            break;
                        }
                    };
                    match tokio::time::timeout(SEND_TIMEOUT, socket.feed(message)).await {
                        Ok(Ok(())) => written += 1,
                        Ok(Err(_)) => {
                            ending = Some(Close::WriteFailed);
                            break;
                        }
                        Err(_) => {
                            ending = Some(Close::SlowReader);
                            break;
                        }
                    }
                }
                if ending.is_none() {
                    ending = flushed(&mut socket, written).await;
                }
                if written > 0 && ending.is_none() {
                    api.metrics.messages_out.inc_by(written);
                    handle.touch(event::now_ms());
                    timers.active(Instant::now());
                }
                if let Some(ending) = ending {
                    break ending;
                }
            }
            Some(reply) = inflight.next(), if !inflight.is_empty() => {
                if let Some(out) = reply {
                    let message = match frame(out) {
                        Ok(message) => message,
                        Err(requested) => break close(&mut socket, requested).await,
                    };
                    match tokio::time::timeout(SEND_TIMEOUT, socket.send(message)).await {
                        Ok(Ok(())) => {
                            api.metrics.messages_out.inc();
                            handle.touch(event::now_ms());
                            timers.active(Instant::now());
                        }
                        Ok(Err(_)) => break Close::WriteFailed,
                        Err(_) => break Close::SlowReader,
                    }
                }
            }
            frame = socket.next(), if inflight.len() < max_inflight => {
                match frame {
                    Some(Ok(Message::Text(text))) => {
                        api.metrics.messages_in.inc();
                        handle.touch(event::now_ms());
                        timers.active(Instant::now());
                        let body = text.as_str().to_owned();
                        match dispatch(&state, &api, &handle, &identity, &mut rate, body, false) {
                            Dispatch::Call(call) => inflight.push(call),
                            Dispatch::Answer(frame) => {
                                if let Some(ending) = send_direct(&mut socket, &api, frame).await {
                                    break ending;
                                }
                            }
                            Dispatch::Nothing => {}
                        }
                    }
                    Some(Ok(Message::Binary(bytes))) => {
                        match api.config.binary_frames {
                            BinaryFrames::Close => {
                                break close(&mut socket, Close::BinaryFrame).await;
                            }
                            BinaryFrames::Base64 => {
                                api.metrics.messages_in.inc();
                                handle.touch(event::now_ms());
                                timers.active(Instant::now());
                                let body = base64::engine::general_purpose::STANDARD.encode(&bytes);
                                match dispatch(&state, &api, &handle, &identity, &mut rate, body, true) {
                                    Dispatch::Call(call) => inflight.push(call),
                                    Dispatch::Answer(frame) => {
                                        if let Some(ending) = send_direct(&mut socket, &api, frame).await {
                                            break ending;
                                        }
                                    }
                                    Dispatch::Nothing => {}
                                }
                            }
                        }
                    }
                    Some(Ok(Message::Close(frame))) => {
                        // The library has queued our answer; the next read flushes it and ends.
                        let ending = match frame {
                            Some(f) => Close::Client { code: u16::from(f.code), reason: f.reason.as_str().to_owned() },
                            None => Close::ClientWithoutStatus,
                        };
                        let _ = tokio::time::timeout(CLOSE_HANDSHAKE, async { while socket.next().await.is_some() {} }).await;
                        break ending;
                    }
                    Some(Ok(_)) => {} // ping (answered by the library), pong, raw frames
                    Some(Err(WsError::Capacity(_))) => {
                        break close(&mut socket, Close::TooBig).await;
                    }
                    Some(Err(
                        WsError::ConnectionClosed
                        | WsError::AlreadyClosed
                        | WsError::Io(_)
                        | WsError::Protocol(ProtocolError::ResetWithoutClosingHandshake),
                    ))
                    | None => {
                        break Close::Abnormal;
                    }
                    Some(Err(e)) => {
                        debug!(connection_id = %handle.id, error = %e, "protocol error");
                        break close(&mut socket, Close::ProtocolError).await;
                    }
                }
            }
            _ = &mut timer => {
                match timers.due(Instant::now()) {
                    Some(Due::MaxDuration) => {
                        break close(&mut socket, Close::MaxDuration).await;
                    }
                    Some(Due::Idle) => break close(&mut socket, Close::IdleTimeout).await,
                    Some(Due::Ping)
                        if tokio::time::timeout(SEND_TIMEOUT, socket.send(Message::Ping(Default::default())))
                            .await
                            .is_err() =>
                    {
                        break Close::SlowReader;
                    }
                    Some(Due::Ping) => {}
                    None => {}
                }
                timer.as_mut().reset(timers.next());
            }
        }
    };

    state.registry.unregister(&handle.id);
    handle.queue.close();
    drop(socket);
    // Messages already read were acknowledged to the client's TCP stack: their integration
    // calls finish (each bounded by its timeout) before `$disconnect` is delivered.
    if let Some(mut calls) = inflight.calls.take() {
        while calls.next().await.is_some() {}
    }
    api.metrics.open.dec();
    state
        .metrics
        .disconnects
        .get_or_create(&DisconnectLabels {
            api: api.name.to_string(),
            reason: ending.label().to_owned(),
        })
        .inc();
    info!(api = %api.name, connection_id = %handle.id, code = ending.code(), reason = ending.label(), "disconnected");
    deliver_disconnect(
        &state,
        &api,
        &handle,
        identity.as_ref().and_then(|i| i.event_authorizer()),
        &ending,
    )
    .await;
}

/// The connection's integration calls in flight. The set is allocated on the first message,
/// so an idle connection does not pay for it.
#[derive(Default)]
struct Inflight {
    calls: Option<FuturesUnordered<Call>>,
}

impl Inflight {
    fn len(&self) -> usize {
        self.calls.as_ref().map_or(0, FuturesUnordered::len)
    }

    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn push(&mut self, call: Call) {
        self.calls
            .get_or_insert_with(FuturesUnordered::new)
            .push(call);
    }

    /// The next finished call's reply; pending while nothing is in flight.
    async fn next(&mut self) -> Option<Option<Outbound>> {
        match self.calls.as_mut() {
            Some(calls) if !calls.is_empty() => calls.next().await,
            _ => std::future::pending().await,
        }
    }
}

/// The frame that delivers `out`, or the close it asks for.
fn frame(out: Outbound) -> Result<Message, Close> {
    match out {
        Outbound::Text(text)
        | Outbound::Logged {
            data: Data::Text(text),
            ..
        } => Ok(Message::Text(text)),
        Outbound::Binary(bytes)
        | Outbound::Logged {
            data: Data::Binary(bytes),
            ..
        } => Ok(Message::Binary(bytes)),
        Outbound::Close(requested) => Err(requested),
    }
}

/// Send a close frame for `close` and wait (bounded) for the client's answer.
async fn close(socket: &mut Socket, close: Close) -> Close {
    let frame = CloseFrame {
        code: CloseCode::from(close.code()),
        reason: close.reason().to_owned().into(),
    };
    let sent = tokio::time::timeout(CLOSE_HANDSHAKE, socket.close(Some(frame))).await;
    if matches!(sent, Ok(Ok(()))) {
        let _ = tokio::time::timeout(CLOSE_HANDSHAKE, async {
            while socket.next().await.is_some() {}
        })
        .await;
    }
    close
}

fn context<'a>(
    api: &'a WsApi,
    handle: &'a ConnectionHandle,
    authorizer: Option<&'a RawValue>,
    route_key: &'a str,
    event_type: EventType,
    request_id: &'a str,
) -> WsEventContext<'a> {
    WsEventContext {
        route_key,
        event_type,
        connection_id: handle.id.as_str(),
        connected_at_ms: handle.connected_at_ms,
        request_id,
        message_id: None,
        request_time_ms: event::now_ms(),
        stage: &api.config.stage,
        api_id: &api.config.api_id,
        domain_name: &api.domain_name,
        source_ip: &handle.source_ip,
        user_agent: if handle.user_agent.is_empty() {
            None
        } else {
            Some(&handle.user_agent)
        },
        authorizer,
        disconnect_status_code: None,
        disconnect_reason: None,
        connection_type: super::admission::connection_type(handle.transport),
        caller: handle.identity.as_ref().and_then(|i| i.caller()),
    }
}

/// An integration call in flight; resolves to the reply to send, if any.
type Call = std::pin::Pin<Box<dyn std::future::Future<Output = Option<Outbound>> + Send>>;

/// What to do with one message.
enum Dispatch {
    /// Call the route's integration.
    Call(Call),
    /// Answer at once (no route, or not authorized for it).
    Answer(String),
    /// A route without integration.
    Nothing,
}

/// Route one message, authorize it for its route, and prepare its integration call. A
/// message beyond the connection's `message_rate` goes no further than an error frame.
fn dispatch(
    state: &Arc<State>,
    api: &Arc<WsApi>,
    handle: &Arc<ConnectionHandle>,
    identity: &Option<Arc<Identity>>,
    rate: &mut MessageRate,
    body: String,
    is_base64: bool,
) -> Dispatch {
    let rid = request_id();
    if !rate.allow() {
        api.metrics.messages_throttled.inc();
        debug!(api = %api.name, connection_id = %handle.id, "message dropped: message_rate");
        return Dispatch::Answer(error_frame(
            ErrorFrame::TooManyRequests,
            handle.id.as_str(),
            &rid,
        ));
    }
    let key = if is_base64 {
        None
    } else {
        api.selection.evaluate(&body)
    };
    let route = api.message_route(key.as_deref());
    let Some(route) = route else {
        return Dispatch::Answer(error_frame(ErrorFrame::Forbidden, handle.id.as_str(), &rid));
    };
    // Beyond API Gateway: every message is authorized for its route, not only the connection.
    if let Some(identity) = identity {
        let scoped = identity.allows(&route.scopes, &route.groups);
        // An `AWS_IAM` caller's role policy is evaluated for every message route.
        let by_policy = !(api.config.message_policy || identity.iam.is_some())
            || identity.policy_allows(&policy::websocket_arn(
                &state.management.region,
                &state.management.account_id,
                &api.config.api_id,
                &api.config.stage,
                &route.key,
            ));
        if !(scoped && by_policy) {
            state
                .metrics
                .message_denials
                .get_or_create(&ApiLabel {
                    api: api.name.to_string(),
                })
                .inc();
            return Dispatch::Answer(error_frame(ErrorFrame::Forbidden, handle.id.as_str(), &rid));
        }
    }
    let Some(integration) = route.integration.clone() else {
        return Dispatch::Nothing;
    };
    let message_id = request_id();
    let event = {
        let mut ctx = context(
            api,
            handle,
            identity.as_ref().and_then(|i| i.event_authorizer()),
            &route.key,
            EventType::Message,
            &rid,
        );
        ctx.message_id = Some(&message_id);
        message_event(&ctx, &body, is_base64)
    };
    drop(body);
    let response = route.response;
    let route_key = route.key.clone();
    let connection_id = handle.id;
    let state = state.clone();
    Dispatch::Call(Box::pin(async move {
        // The answer is parsed in place: the reply text shares its buffer where the JSON
        // needed no unescaping.
        let raw = match integration.invoke_raw(event).await {
            Ok(raw) => raw,
            Err(e) => {
                return Some(integration_failed(
                    &state,
                    connection_id,
                    &route_key,
                    &rid,
                    e,
                ));
            }
        };
        let parsed = parse_proxy_result_ref(&raw)
            .map_err(|e| GatewayError::IntegrationInvalid(e.to_string()));
        match parsed {
            Ok(result) if response => match result.body {
                Some(body) if result.is_base64_encoded => {
                    match base64::engine::general_purpose::STANDARD.decode(body.as_bytes()) {
                        Ok(bytes) => Some(Outbound::Binary(bytes.into())),
                        Err(_) => {
                            state.metrics.error("integration_invalid");
                            Some(Outbound::Text(
                                error_frame(
                                    ErrorFrame::InternalServerError,
                                    connection_id.as_str(),
                                    &rid,
                                )
                                .into(),
                            ))
                        }
                    }
                }
                Some(body) => Some(Outbound::Text(answer::text(&raw, body))),
                None => None,
            },
            Ok(_) => None,
            Err(e) => Some(integration_failed(
                &state,
                connection_id,
                &route_key,
                &rid,
                e,
            )),
        }
    }))
}

/// The frame for a failed integration call, logged and counted: the client gets a fixed
/// frame; what the backend or handler said stays in the log.
fn integration_failed(
    state: &State,
    connection_id: ConnectionId,
    route_key: &str,
    rid: &str,
    e: GatewayError,
) -> Outbound {
    state.metrics.error(e.kind());
    let fault = portcullis_core::fault::HasFault::fault(&e);
    log_fault!(fault, connection_id = %connection_id, route = %route_key, request_id = %rid, error = %e, %fault, "integration failed");
    // Only the gateway giving up waiting is a timeout frame: a function that ran past its own
    // timeout failed, as a Lambda does.
    let kind = match e {
        GatewayError::IntegrationTimeout(_) => ErrorFrame::EndpointRequestTimedOut,
        _ => ErrorFrame::InternalServerError,
    };
    Outbound::Text(error_frame(kind, connection_id.as_str(), rid).into())
}

/// Flush what was fed to the socket (nothing to do when nothing was); `Some` when the
/// connection must end.
async fn flushed(socket: &mut Socket, written: u64) -> Option<Close> {
    if written == 0 {
        return None;
    }
    match tokio::time::timeout(SEND_TIMEOUT, socket.flush()).await {
        Ok(Ok(())) => None,
        Ok(Err(_)) => Some(Close::WriteFailed),
        Err(_) => Some(Close::SlowReader),
    }
}

async fn send_direct(socket: &mut Socket, api: &WsApi, text: String) -> Option<Close> {
    match tokio::time::timeout(SEND_TIMEOUT, socket.send(Message::text(text))).await {
        Ok(Ok(())) => {
            api.metrics.messages_out.inc();
            None
        }
        Ok(Err(_)) => Some(Close::WriteFailed),
        Err(_) => Some(Close::SlowReader),
    }
}

/// Call the `$disconnect` integration, if any, telling it how the connection ended. Best effort, like API Gateway; bounded by the
/// integration's timeout and tracked so a graceful shutdown waits for it.
pub async fn deliver_disconnect(
    state: &Arc<State>,
    api: &Arc<WsApi>,
    handle: &Arc<ConnectionHandle>,
    authorizer: Option<&RawValue>,
    ending: &Close,
) {
    let Some(integration) = api
        .routes
        .get("$disconnect")
        .and_then(|r| r.integration.clone())
    else {
        return;
    };
    let rid = request_id();
    let mut ctx = context(
        api,
        handle,
        authorizer,
        "$disconnect",
        EventType::Disconnect,
        &rid,
    );
    ctx.disconnect_status_code = Some(ending.code());
    ctx.disconnect_reason = Some(ending.reason());
    let event = disconnect_event(&ctx);
    // A connection that a dead node held is reported once, by one survivor, among many at
    // once: a backend that refuses connections for a moment is tried again (the event never
    // reached it, so it cannot arrive twice).
    let attempts = if *ending == Close::NodeLost { 4 } else { 1 };
    for attempt in 1..=attempts {
        match integration.invoke(event.clone()).await {
            Ok(_) => return,
            Err(GatewayError::IntegrationUnreachable(what))
                if attempt < attempts && what == CONNECT_FAILED =>
            {
                tokio::time::sleep(Duration::from_millis(250 << attempt)).await;
            }
            Err(e) => {
                state.metrics.error(e.kind());
                let fault = portcullis_core::fault::HasFault::fault(&e);
                log_fault!(fault, connection_id = %handle.id, request_id = %rid, error = %e, %fault, "$disconnect integration failed");
                return;
            }
        }
    }
}
