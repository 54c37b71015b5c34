//! Portcullis core: the pure, I/O-free heart of the gateway. It owns identifiers (connection and
//! request ids), WebSocket route selection expressions, the exact AWS Lambda-proxy event and
//! result shapes and the gateway's error frames, IAM policy evaluation, the WebSocket opening
//! handshake and subprotocol negotiation, the close-code table, the proxy's header rules and log
//! redaction; for HTTP APIs, route keys and route matching, the payload format 2.0 event
//! and result mapping, CORS answers and token-bucket throttling. Everything here is a plain
//! function over bytes and values — no tokio, no sockets, no clocks except the explicit `now_ms`
//! helper — so it can be table-tested and fuzzed in isolation. It does not move traffic, talk to
//! backends, or verify credentials (see `portcullis-auth` and `portcullis-gateway`).
#![forbid(unsafe_code)]

pub mod addr;
pub mod caller;
pub mod client;
pub mod close;
pub mod cors;
pub mod event;
pub mod fault;
pub mod forward;
pub mod handshake;
pub mod http_event;
pub mod http_route;
pub mod id;
mod json;
pub mod policy;
pub mod proxies;
mod proxy_result;
pub mod redact;
pub mod selection;
pub mod sse;
pub mod static_path;
pub mod subprotocol;
pub mod throttle;
