//! `portcullis-demo-backend`: the chat demo's stateless HTTP backend.
//!
//! Portcullis POSTs AWS WebSocket Lambda proxy events to `/events`; this answers with Lambda
//! proxy results and, for `sendmessage`, pushes the message to every open connection through
//! the gateway's SigV4-signed `@connections` API.

#![forbid(unsafe_code)]

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context;
use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use clap::Parser;
use portcullis_demo::management::{Credentials, Management};
use portcullis_demo::route::{Decision, decide};
use serde_json::json;

/// The chat demo backend for Portcullis.
#[derive(Parser, Debug)]
#[command(name = "portcullis-demo-backend", version)]
struct Args {
    /// Address to receive events on (POST /events).
    #[arg(long, default_value = "127.0.0.1:9000")]
    listen: SocketAddr,
    /// The gateway's management API, as boto3's endpoint_url.
    #[arg(
        long,
        env = "PORTCULLIS_MANAGEMENT_URL",
        default_value = "http://127.0.0.1:9090/prod"
    )]
    management_url: String,
    /// Region the gateway expects SigV4 signatures for.
    #[arg(long, default_value = "us-east-1")]
    region: String,
    /// SigV4 access key id.
    #[arg(long, default_value = "AKIDLOCAL")]
    access_key_id: String,
    /// SigV4 secret access key.
    #[arg(
        long,
        env = "PORTCULLIS_ADMIN_SECRET",
        default_value = "local-dev-secret",
        hide_env_values = true,
        hide_default_value = true
    )]
    secret_access_key: String,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    let args = Args::parse();
    let management = Management::new(
        &args.management_url,
        Credentials {
            access_key_id: args.access_key_id,
            secret_access_key: args.secret_access_key,
            region: args.region,
        },
    )?;
    let app = Router::new()
        .route("/events", post(events))
        .route("/healthz", get(|| async { "ok\n" }))
        .with_state(Arc::new(management));
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("binding {}", args.listen))?;
    tracing::info!(listen = %args.listen, management_url = %args.management_url, "demo backend ready");
    axum::serve(listener, app)
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await
        .context("serving")?;
    Ok(())
}

fn json_response(status: StatusCode, value: serde_json::Value) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        value.to_string(),
    )
        .into_response()
}

async fn events(State(management): State<Arc<Management>>, body: Bytes) -> Response {
    match decide(&body) {
        Err(bad) => {
            tracing::warn!(error = %bad, "bad event");
            json_response(
                StatusCode::BAD_REQUEST,
                json!({ "message": bad.to_string() }),
            )
        }
        Ok(Decision::Reply(result)) => json_response(StatusCode::OK, result),
        Ok(Decision::Broadcast { from, data }) => {
            match management.broadcast(Bytes::from(data)).await {
                Ok(report) => {
                    tracing::info!(
                        from = %from,
                        delivered = report.delivered,
                        gone = report.gone,
                        failed = report.failed,
                        "broadcast"
                    );
                    json_response(StatusCode::OK, json!({ "statusCode": 200 }))
                }
                Err(e) => {
                    tracing::error!(from = %from, error = %format!("{e:#}"), "broadcast failed");
                    json_response(StatusCode::OK, json!({ "statusCode": 500 }))
                }
            }
        }
    }
}
