//! `portcullis-chat`: a tiny terminal WebSocket client for the chat demo.
//!
//! Each line read from stdin is sent as `{"action":"sendmessage","data":"<line>"}`; a line
//! `/raw {json}` sends the JSON as it is. Every received text frame is printed. The program
//! exits when the connection closes, printing the close code.

#![forbid(unsafe_code)]

use std::io::Write;

use anyhow::{Context, bail};
use clap::Parser;
use futures_util::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::{self, HeaderName, HeaderValue};
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};

/// Chat through a Portcullis WebSocket API from the terminal.
#[derive(Parser, Debug)]
#[command(name = "portcullis-chat", version)]
struct Args {
    /// WebSocket URL, e.g. ws://127.0.0.1:8080/chat (add ?access_token=... if the API needs one).
    url: String,
    /// Extra handshake header, `Name: value` (repeatable), e.g. a Cookie.
    #[arg(short = 'H', long = "header")]
    headers: Vec<String>,
}

/// What one input line becomes on the wire; `None` for an empty line.
fn outgoing(line: &str) -> Option<String> {
    let line = line.trim_end_matches(['\r', '\n']);
    if line.is_empty() {
        return None;
    }
    if let Some(raw) = line.strip_prefix("/raw ") {
        return Some(raw.to_owned());
    }
    Some(serde_json::json!({ "action": "sendmessage", "data": line }).to_string())
}

fn describe_close(frame: Option<&CloseFrame>) -> String {
    match frame {
        Some(f) if f.reason.is_empty() => format!("{}", u16::from(f.code)),
        Some(f) => format!("{} ({})", u16::from(f.code), f.reason),
        None => "1005 (no status)".to_owned(),
    }
}

/// Lines of stdin, read on a plain thread (the channel closes at end of input).
fn stdin_lines() -> tokio::sync::mpsc::Receiver<String> {
    let (tx, rx) = tokio::sync::mpsc::channel(16);
    std::thread::spawn(move || {
        for line in std::io::stdin().lines() {
            let Ok(line) = line else { break };
            if tx.blocking_send(line).is_err() {
                break;
            }
        }
    });
    rx
}

#[tokio::main]
async fn main() {
    let code = match run(Args::parse()).await {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("portcullis-chat: {e:#}");
            1
        }
    };
    // The stdin reader blocks a thread; exit without waiting for it.
    std::process::exit(code);
}

async fn run(args: Args) -> anyhow::Result<()> {
    let mut request = args
        .url
        .as_str()
        .into_client_request()
        .context("bad WebSocket URL")?;
    request.headers_mut().insert(
        http::header::USER_AGENT,
        HeaderValue::from_static(concat!("portcullis-chat/", env!("CARGO_PKG_VERSION"))),
    );
    for h in &args.headers {
        let Some((name, value)) = h.split_once(':') else {
            bail!("header {h:?} is not `Name: value`")
        };
        request.headers_mut().insert(
            HeaderName::from_bytes(name.trim().as_bytes()).context("bad header name")?,
            HeaderValue::from_str(value.trim()).context("bad header value")?,
        );
    }
    let (socket, _response) = match tokio_tungstenite::connect_async(request).await {
        Ok(ok) => ok,
        Err(WsError::Http(response)) => {
            let body = response
                .body()
                .as_deref()
                .map(String::from_utf8_lossy)
                .unwrap_or_default();
            bail!("handshake refused: HTTP {} {}", response.status(), body);
        }
        Err(e) => return Err(e).context(format!("connecting to {}", args.url)),
    };
    eprintln!(
        "connected to {} (type a line to chat, /raw {{json}} to send JSON, Ctrl-D to quit)",
        args.url
    );
    let (mut sink, mut stream) = socket.split();
    let mut lines = stdin_lines();
    let mut stdin_open = true;
    loop {
        tokio::select! {
            line = lines.recv(), if stdin_open => match line {
                Some(line) => {
                    if let Some(text) = outgoing(&line) {
                        sink.send(Message::text(text)).await.context("sending")?;
                    }
                }
                None => {
                    // End of input: close politely and wait for the server's close.
                    stdin_open = false;
                    let bye = CloseFrame { code: CloseCode::Normal, reason: "".into() };
                    let _ = sink.send(Message::Close(Some(bye))).await;
                }
            },
            message = stream.next() => match message {
                Some(Ok(Message::Text(text))) => {
                    let mut out = std::io::stdout().lock();
                    let _ = writeln!(out, "{}", text.as_str());
                    let _ = out.flush();
                }
                Some(Ok(Message::Binary(bytes))) => println!("<binary frame, {} bytes>", bytes.len()),
                Some(Ok(Message::Close(frame))) => {
                    println!("connection closed: {}", describe_close(frame.as_ref()));
                    return Ok(());
                }
                Some(Ok(_)) => {} // ping/pong are answered by the library
                Some(Err(WsError::ConnectionClosed | WsError::AlreadyClosed)) | None => {
                    println!("connection closed: 1006 (no close frame)");
                    return Ok(());
                }
                Some(Err(e)) => {
                    println!("connection closed: 1006 ({e})");
                    return Ok(());
                }
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_become_sendmessage_actions() {
        assert_eq!(
            outgoing("hi \"there\"\n").as_deref(),
            Some(r#"{"action":"sendmessage","data":"hi \"there\""}"#)
        );
        assert_eq!(
            outgoing("/raw {\"action\":\"whoami\"}").as_deref(),
            Some(r#"{"action":"whoami"}"#)
        );
        assert_eq!(outgoing(""), None);
        assert_eq!(outgoing("\r\n"), None);
    }
}
