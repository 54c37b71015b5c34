//! The gateway runtime: listeners, WebSocket sessions, integrations, the connection registry
//! and the management API.
//!
//! It owns every socket and every outbound call: it accepts client connections, upgrades them
//! to WebSocket sessions, calls HTTP backends with the AWS-shaped events built by
//! `portcullis-core`, and serves `@connections`, `/metrics`, `/healthz` and the identity admin
//! API (`/admin/...`) on the admin listener. It does not parse configuration files (that is `portcullis-config`) and holds no
//! pure protocol logic of its own beyond wiring (route selection, event shapes and SigV4 live
//! in `portcullis-core` and `portcullis-auth`).

mod admin;
mod auth;
mod error;
mod headers;
mod http_api;
mod identity_admin;
mod integration;
mod listener;
mod management;
mod metrics;
mod outbound;
pub mod registry;
mod revocation;
mod server;
pub mod session_ref;
mod static_files;
mod websocket;

pub use error::{Fault, GatewayError};
pub use metrics::Metrics;
pub use server::{RunningGateway, start};
