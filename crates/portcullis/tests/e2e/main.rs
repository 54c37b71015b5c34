//! End-to-end tests: a real gateway on loopback, real HTTP backends, a real WebSocket client
//! (tokio-tungstenite) and SigV4-signed management calls. One test binary (see Cargo.toml).

mod abuse_limits;
mod authorizers;
mod callback;
mod cli;
mod cluster;
mod cluster_sse;
mod config_cli;
mod functions;
mod http_api;
mod iam;
mod identity_admin;
mod identity_provider;
mod invoke_cli;
mod limits;
mod management;
mod operations;
mod push;
mod push_cli;
mod readiness;
mod reload;
mod slow_clients;
mod sse;
mod static_site;
mod tls;
mod tls_sse;
mod token_cli;
mod trust;
mod upstream_pool;
mod websocket;
