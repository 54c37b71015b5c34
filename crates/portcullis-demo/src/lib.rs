//! The bundled chat demo: a stateless HTTP backend and a terminal WebSocket client.
//!
//! The backend is the classic "serverless chat": it receives the AWS WebSocket Lambda proxy
//! events that Portcullis POSTs to it and pushes messages through the gateway's management API
//! (`@users`, `@topics`, `@connections`), signed with SigV4 exactly as boto3 would sign them
//! (by `portcullis-client`, which any Rust backend can use the same way). It keeps no state of
//! its own: rooms are the gateway's topics, users its principals, and for anonymous
//! connections the list of open ones comes from the gateway (`GET /@connections`, a
//! Portcullis extension).
//!
//! This crate owns no gateway logic; it is a client of the gateway like any user's backend.
//! [`route`] is pure (event in, decision out) so it is unit-tested without sockets;
//! [`management`] pushes through the gateway and [`backend`] serves `POST /events`.

#![forbid(unsafe_code)]

pub mod backend;
pub mod management;
pub mod route;
