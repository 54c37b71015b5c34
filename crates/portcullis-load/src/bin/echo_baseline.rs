//! `echo-baseline`: a bare tokio-tungstenite echo server, the same-run baseline for P1 (RSS per
//! idle connection) and P2 (connects/s). Its buffer sizes are flags so that it is compared with
//! the gateway at the same settings. It echoes text and binary messages and nothing else.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::Parser;
use futures_util::{SinkExt, StreamExt};
use tokio::net::TcpListener;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

#[derive(Parser)]
#[command(
    name = "echo-baseline",
    about = "Bare tokio-tungstenite echo server (benchmark baseline)"
)]
struct Cli {
    #[arg(long, default_value = "127.0.0.1:7000")]
    listen: SocketAddr,
    /// Per-connection read buffer, allocated eagerly (tungstenite's default is 128 KiB).
    #[arg(long, default_value_t = 4096)]
    read_buffer: usize,
    /// Bytes buffered before writing to the socket; 0 writes each message at once.
    #[arg(long, default_value_t = 0)]
    write_buffer: usize,
    /// Largest write buffer before sends fail (backpressure).
    #[arg(long, default_value_t = 256 * 1024)]
    max_write_buffer: usize,
    /// Largest frame payload accepted (AWS: 32 KB).
    #[arg(long, default_value_t = 32 * 1024)]
    max_frame: usize,
    /// Largest message accepted (AWS: 128 KB).
    #[arg(long, default_value_t = 128 * 1024)]
    max_message: usize,
}

#[tokio::main(flavor = "multi_thread")]
async fn main() -> Result<()> {
    let cli = Cli::parse();
    let limit = portcullis_load::process::raise_nofile_limit()?;
    let config = WebSocketConfig::default()
        .read_buffer_size(cli.read_buffer)
        .write_buffer_size(cli.write_buffer)
        .max_write_buffer_size(cli.max_write_buffer.max(cli.write_buffer + 1))
        .max_frame_size(Some(cli.max_frame))
        .max_message_size(Some(cli.max_message));
    let listener = TcpListener::bind(cli.listen)
        .await
        .with_context(|| format!("binding {}", cli.listen))?;
    println!(
        "echo-baseline listening on ws://{} (read buffer {}, write buffer {}, max write buffer {}, open files {limit})",
        listener.local_addr()?,
        cli.read_buffer,
        cli.write_buffer,
        cli.max_write_buffer
    );
    loop {
        let (stream, _peer) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(e) => {
                // Out of file descriptors and the like: back off instead of spinning.
                eprintln!("echo-baseline: accept failed: {e}");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        tokio::spawn(async move {
            let Ok(mut ws) =
                tokio_tungstenite::accept_async_with_config(stream, Some(config)).await
            else {
                return;
            };
            while let Some(Ok(message)) = ws.next().await {
                match message {
                    Message::Text(_) | Message::Binary(_) => {
                        if ws.send(message).await.is_err() {
                            return;
                        }
                    }
                    // Pings are answered by tungstenite; a close is answered when read.
                    Message::Ping(_) | Message::Pong(_) | Message::Frame(_) => {}
                    Message::Close(_) => {}
                }
            }
        });
    }
}
