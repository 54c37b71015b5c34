//! The gateway runtime: it owns every socket and every outbound call. It accepts client
//! connections, upgrades them to WebSocket sessions, serves HTTP APIs and static sites, calls
//! backends with the AWS-shaped events built by `portcullis-core`, and serves the admin
//! listener. It does not parse configuration files (that is `portcullis-config`) and holds no
//! pure protocol logic of its own (route selection, event shapes and SigV4 live in
//! `portcullis-core` and `portcullis-auth`).
//!
//! The modules follow a request:
//! - [`listener`]: binding, the accept loop and what protects it (connection budgets, a cap per
//!   client address, header and body deadlines);
//! - `abuse`: who the client is behind trusted proxies, and the limits on new sessions
//!   (total, per address, rate) decided before any authorizer runs;
//! - `router`: the one place saying which app answers a request, on either listener;
//! - the public apps: `websocket` (upgrade and sessions), `sse` (a WebSocket API's
//!   server-sent events), `http_api` (routing, `http` events, `http_proxy` forwarding),
//!   `static_site`, and the identity provider's own router;
//! - `admin`: the admin listener's apps (`/healthz`, `/metrics`, `@connections`, the identity
//!   admin API);
//! - shared below them: `state` (what every task shares), [`registry`] (live connections,
//!   indexed by id, principal and identity-provider session), `outbound` (each connection's
//!   bounded send queue), `replay` (the `@users` pushes SSE streams replay), `revocation`
//!   (closing the connections a revocation covers), `trigger_functions` (the functions a user
//!   pool's Lambda triggers name, run for the identity provider), `authorizers`, `integration` (calls to backends), [`metrics`](Metrics), `reply` (the
//!   gateway's own answers) and `error` (the gateway's failures and who caused them);
//! - `server`: the long-lived parts, starting, shutting down; `apps`: what one configuration
//!   builds; `reload`: replacing the apps live (SIGHUP, a watched file), through `live`.

#[macro_use]
mod error;

mod abuse;
mod admin;
mod answer;
mod apps;
mod authorizers;
mod cluster;
mod headers;
mod http_api;
mod iam;
mod integration;
mod listener;
mod live;
mod metrics;
mod outbound;
mod push;
pub mod registry;
mod reload;
mod replay;
mod reply;
mod revocation;
mod router;
mod server;
pub mod session_key;
mod sse;
mod state;
mod static_site;
mod trigger_functions;
mod upstream;
mod websocket;
mod workers;

pub use error::GatewayError;
/// `[server] tls`, `admin_tls` and `ca_file` as `portcullis check` and `serve` validate them.
pub use listener::tls::check as check_tls;
pub use metrics::Metrics;
pub use reload::{Changes, Counts};
pub use server::{RunningGateway, start};
