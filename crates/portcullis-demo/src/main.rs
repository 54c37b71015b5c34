//! `portcullis-demo-backend`: the chat demo's stateless HTTP backend.
//!
//! Portcullis POSTs AWS WebSocket Lambda proxy events to `/events`; this answers with Lambda
//! proxy results and, for `sendmessage`, pushes the message to every open connection through
//! the gateway's SigV4-signed `@connections` API.

#![forbid(unsafe_code)]

use std::net::SocketAddr;

use anyhow::Context;
use clap::Parser;
use portcullis_demo::backend::router;
use portcullis_demo::management::{Credentials, Management};

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
    #[arg(long, default_value = portcullis_config::defaults::REGION)]
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
    let app = router(management);
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
