//! `portcullis invoke`: one invocation of a `[functions.NAME]` handler, like `aws lambda
//! invoke`, for trying a handler without a gateway in front.
//!
//! Prints the handler's result JSON on stdout and exits 0. A function error (the handler
//! threw, failed to load, crashed or timed out) prints `{"errorType": …, "errorMessage": …}`
//! on stdout, as `aws lambda invoke` writes it to its output file, and exits 1. The START,
//! END and REPORT lines and the handler's own output are logged on stderr. An unknown
//! function or an unreadable event exits 1 with one line on stderr; an invalid configuration
//! exits 2 with its diagnostics.

use std::io::Read;
use std::path::PathBuf;
use std::process::ExitCode;

use bytes::Bytes;
use clap::Args;
use portcullis_functions::runtime_api::MAX_PAYLOAD;
use portcullis_functions::{Fault, FunctionError, Functions, Options};

use crate::failure::{Failure, load_config};

#[derive(Args)]
pub struct InvokeArgs {
    /// Configuration file declaring the function.
    #[arg(long, short)]
    config: PathBuf,
    /// The function (a `[functions.NAME]`).
    function: String,
    /// The event, a JSON file (at most 6 MiB); `-` reads standard input. Default: `{}`.
    #[arg(long, value_name = "FILE")]
    event: Option<PathBuf>,
}

pub fn run(args: InvokeArgs) -> ExitCode {
    match execute(args) {
        Ok(Ok(payload)) => {
            println!("{}", String::from_utf8_lossy(&payload));
            ExitCode::SUCCESS
        }
        Ok(Err(error)) => {
            println!("{}", error.to_json());
            ExitCode::FAILURE
        }
        Err(failure) => failure.report("invoke"),
    }
}

/// `Ok(Err(_))` is a function error, printed as its payload; `Err(_)` is anything else.
fn execute(args: InvokeArgs) -> Result<Result<Bytes, FunctionError>, Failure> {
    let cfg = load_config(&args.config)?;
    if !cfg.functions.contains_key(&args.function) {
        let known: Vec<&str> = cfg.functions.keys().map(String::as_str).collect();
        return Err(Failure::Error(format!(
            "no function named {:?} in {} (declared: {})",
            args.function,
            args.config.display(),
            if known.is_empty() {
                "none".to_owned()
            } else {
                known.join(", ")
            }
        )));
    }
    let event = read_event(args.event.as_ref())?;
    let functions = Functions::start(&cfg.functions, Options::for_config(&cfg))
        .map_err(|e| Failure::Error(e.to_string()))?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| Failure::Error(format!("cannot start the runtime: {e}")))?;
    let result = runtime.block_on(async { functions.invoke(&args.function, event).await });
    drop(functions);
    match result {
        Ok(invocation) => Ok(Ok(invocation.payload)),
        Err(e) if e.fault() == Fault::Function => Ok(Err(e)),
        Err(e) => Err(Failure::Error(e.to_string())),
    }
}

fn read_event(path: Option<&PathBuf>) -> Result<Bytes, Failure> {
    let Some(path) = path else {
        return Ok(Bytes::from_static(b"{}"));
    };
    let limit = u64::try_from(MAX_PAYLOAD).unwrap_or(u64::MAX) + 1;
    let mut bytes = Vec::new();
    let read = if path.as_os_str() == "-" {
        std::io::stdin().take(limit).read_to_end(&mut bytes)
    } else {
        std::fs::File::open(path).and_then(|f| f.take(limit).read_to_end(&mut bytes))
    };
    read.map_err(|e| Failure::Error(format!("cannot read {}: {e}", path.display())))?;
    if bytes.len() > MAX_PAYLOAD {
        return Err(Failure::Error(format!(
            "event larger than {MAX_PAYLOAD} bytes"
        )));
    }
    if serde_json::from_slice::<serde::de::IgnoredAny>(&bytes).is_err() {
        return Err(Failure::Error(format!(
            "{} is not a JSON document",
            path.display()
        )));
    }
    Ok(Bytes::from(bytes))
}
