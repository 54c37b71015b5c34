//! `portcullis push`: one message to a user, a topic or a connection, through the management
//! API of a running gateway, for operators and scripts.
//!
//! The configuration file says where and how: the admin listener (`server.admin_listen`; a
//! wildcard address is reached on loopback, `--endpoint-url` replaces it), the stage of the
//! WebSocket API named by `--api` (the stage selects the API, CONTRACT.md §1), and the first
//! `[management]` credential with the `connections` scope, whose signature is SigV4 for service
//! `execute-api` in `[management] region`, as a backend's would be. With `admin_tls` the call
//! is `https://`, and the listener's certificate must chain to the system roots, to
//! `--ca-file`, or (without the flag) to the configuration's `server.ca_file`.
//!
//! On success it prints `{"connections": N}` (how many connections were handed the message; a
//! push to a single `--connection` that arrives prints `{"connections": 1}`) and exits 0. A
//! refusal prints the gateway's message and AWS error code (`push: … (GoneException, HTTP
//! 410)`) and exits 1, as do an unreachable listener and bad input; an invalid configuration
//! exits 2 with its diagnostics.

mod target;

use std::io::{IsTerminal, Read};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use bytes::Bytes;
use clap::{ArgGroup, Args};
use portcullis_auth::outbound_tls::{CA_FILE_KEY, read_roots};
use portcullis_client::{Certificate, ClientError, MAX_DATA_BYTES, Management};
use serde_json::json;

use crate::failure::{Failure, load_config};

#[derive(Args)]
#[command(group(ArgGroup::new("recipient").required(true).args(["user", "topic", "connection"])))]
#[command(group(ArgGroup::new("source").required(true).args(["data", "data_file"])))]
pub struct PushArgs {
    /// Configuration file of the gateway to push through.
    #[arg(long, short)]
    config: PathBuf,
    /// The WebSocket API (a `[websocket.NAME]`), whose stage selects where the push goes; may
    /// be left out when the configuration has only one.
    #[arg(long)]
    api: Option<String>,
    /// Every connection of this principal (the authorizer's principalId, or a JWT's `sub`).
    #[arg(long, value_name = "PRINCIPAL")]
    user: Option<String>,
    /// Every subscriber of this topic.
    #[arg(long, value_name = "NAME")]
    topic: Option<String>,
    /// One connection, by its id.
    #[arg(long, value_name = "ID", allow_hyphen_values = true)]
    connection: Option<String>,
    /// The message (at most 128 KiB); `-` reads it from standard input.
    #[arg(value_name = "DATA", allow_hyphen_values = true)]
    data: Option<String>,
    /// Read the message from a file (sent as is: text, or binary when it is not UTF-8).
    #[arg(long, value_name = "FILE")]
    data_file: Option<PathBuf>,
    /// The admin listener's URL (`http://host:9090`, no stage) when the configuration's
    /// `server.admin_listen` is not where the gateway is reached.
    #[arg(long, value_name = "URL")]
    endpoint_url: Option<String>,
    /// Certificates (PEM) to trust, besides the system roots, for an `https://` admin
    /// listener (`admin_tls`); without it, the configuration's `server.ca_file` is used.
    #[arg(long, value_name = "FILE")]
    ca_file: Option<PathBuf>,
}

/// Who gets the message.
enum Recipient {
    User(String),
    Topic(String),
    Connection(String),
}

pub fn run(args: PushArgs) -> ExitCode {
    match execute(args) {
        Ok(delivered) => {
            println!("{}", json!({ "connections": delivered }));
            ExitCode::SUCCESS
        }
        Err(failure) => failure.report("push"),
    }
}

fn execute(args: PushArgs) -> Result<usize, Failure> {
    let cfg = load_config(&args.config)?;
    let file = args.config.display().to_string();
    let target = target::resolve(
        &cfg,
        &file,
        args.api.as_deref(),
        args.endpoint_url.as_deref(),
    )
    .map_err(Failure::Error)?;
    let recipient = recipient(args.user, args.topic, args.connection).map_err(Failure::Error)?;
    let data = match (args.data.as_deref(), args.data_file.as_deref()) {
        (Some("-"), _) => read_stdin()?,
        (Some(text), _) => bounded(text.as_bytes().to_vec())?,
        (None, Some(path)) => read_file(path)?,
        (None, None) => return Err(Failure::Error("no data given".into())),
    };
    let roots = trusted_roots(args.ca_file.as_deref(), cfg.server.ca_file.as_deref())
        .map_err(Failure::Error)?;
    let management = Management::with_roots(&target.base_url, target.credentials, roots)
        .map_err(|e| Failure::Error(e.to_string()))?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Failure::Error(format!("cannot start the runtime: {e}")))?;
    let sent = runtime.block_on(async {
        match &recipient {
            Recipient::User(p) => management.push_to_user(p, data).await,
            Recipient::Topic(t) => management.publish(t, data).await,
            Recipient::Connection(id) => management.post_to_connection(id, data).await.map(|()| 1),
        }
    });
    sent.map_err(|e| Failure::Error(describe(e, &target.origin)))
}

/// The extra roots of the call: `--ca-file` when given, else the configuration's
/// `server.ca_file`; an unusable file is named with the flag or key it came from.
fn trusted_roots(
    flag: Option<&Path>,
    configured: Option<&str>,
) -> Result<Vec<Certificate>, String> {
    match (flag, configured) {
        (Some(file), _) => read_roots(file, "--ca-file"),
        (None, Some(file)) => read_roots(Path::new(file), CA_FILE_KEY),
        (None, None) => Ok(Vec::new()),
    }
}

/// The one recipient clap let through; an empty name would name a different resource.
fn recipient(
    user: Option<String>,
    topic: Option<String>,
    connection: Option<String>,
) -> Result<Recipient, String> {
    let (flag, recipient) = match (user, topic, connection) {
        (Some(user), _, _) => ("--user", Recipient::User(user)),
        (_, Some(topic), _) => ("--topic", Recipient::Topic(topic)),
        (_, _, Some(id)) => ("--connection", Recipient::Connection(id)),
        (None, None, None) => return Err("no recipient given".into()),
    };
    let name = match &recipient {
        Recipient::User(n) | Recipient::Topic(n) | Recipient::Connection(n) => n,
    };
    if name.is_empty() {
        return Err(format!("{flag} needs a non-empty value"));
    }
    Ok(recipient)
}

/// One line for a failed call: the gateway's refusal as it gave it, or where the call went.
fn describe(e: ClientError, origin: &str) -> String {
    match e {
        ClientError::Unreachable { reason, .. } if reason.contains("certificate") => {
            format!(
                "cannot reach {origin}: {reason}; trust the CA of the admin listener's \
                 certificate with --ca-file (or server.ca_file)"
            )
        }
        ClientError::Unreachable { reason, .. } => {
            format!("cannot reach {origin}: {reason}; is the gateway running?")
        }
        other => other.to_string(),
    }
}

/// The message, or a refusal when it is over the management API's limit.
fn bounded(data: Vec<u8>) -> Result<Bytes, Failure> {
    if data.len() > MAX_DATA_BYTES {
        return Err(Failure::Error(format!(
            "the message is over {MAX_DATA_BYTES} bytes (128 KiB), the most the management \
             API accepts"
        )));
    }
    Ok(Bytes::from(data))
}

/// Reads at most one byte more than the limit, so that an endless input is refused, not held.
fn read_limited(reader: impl Read, what: &str) -> Result<Bytes, Failure> {
    let mut data = Vec::new();
    reader
        .take(MAX_DATA_BYTES as u64 + 1)
        .read_to_end(&mut data)
        .map_err(|e| Failure::Error(format!("cannot read {what}: {e}")))?;
    bounded(data)
}

fn read_stdin() -> Result<Bytes, Failure> {
    let stdin = std::io::stdin();
    if stdin.is_terminal() {
        eprintln!("reading the message from standard input (end it with Ctrl-D)");
    }
    read_limited(stdin.lock(), "the message from standard input")
}

fn read_file(path: &Path) -> Result<Bytes, Failure> {
    let file = std::fs::File::open(path)
        .map_err(|e| Failure::Error(format!("cannot open {}: {e}", path.display())))?;
    read_limited(file, &path.display().to_string())
}

#[cfg(test)]
mod tests;
