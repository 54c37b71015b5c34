//! An echo handler on AWS's `lambda_runtime` crate, to run as a `provided` function: it answers
//! with its event and what the runtime told it about the invocation. An event with `"fail":
//! "why"` is answered with an `EchoError` whose message is `why`.
//!
//! At start it appends `init` to `$STATE/inits.log` when `STATE` is set, so that a warm
//! environment can be told from a new one. (Not in its working directory, the function's code
//! directory: a write there is a code change, which recycles the environment.)

use std::io::Write;
use std::sync::atomic::{AtomicU64, Ordering};

use lambda_runtime::{Diagnostic, LambdaEvent, service_fn};
use serde_json::{Value, json};

/// Invocations served by this process.
static CALLS: AtomicU64 = AtomicU64::new(0);

async fn handler(event: LambdaEvent<Value>) -> Result<Value, Diagnostic> {
    let calls = CALLS.fetch_add(1, Ordering::Relaxed) + 1;
    let (payload, context) = event.into_parts();
    if let Some(why) = payload.get("fail").and_then(Value::as_str) {
        return Err(Diagnostic {
            error_type: "EchoError".to_owned(),
            error_message: why.to_owned(),
        });
    }
    let env = |name: &str| std::env::var(name).ok();
    Ok(json!({
        "event": payload,
        "calls": calls,
        "pid": std::process::id(),
        "request_id": context.request_id,
        "function_arn": context.invoked_function_arn,
        "deadline_ms": context.deadline,
        "trace_id": context.xray_trace_id,
        "function_name": context.env_config.function_name,
        "memory": context.env_config.memory,
        "version": context.env_config.version,
        "log_group": context.env_config.log_group,
        "log_stream": context.env_config.log_stream,
        "env": {
            "AWS_LAMBDA_FUNCTION_NAME": env("AWS_LAMBDA_FUNCTION_NAME"),
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE"),
            "AWS_LAMBDA_FUNCTION_VERSION": env("AWS_LAMBDA_FUNCTION_VERSION"),
        },
    }))
}

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    if let Some(state) = std::env::var_os("STATE") {
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(std::path::Path::new(&state).join("inits.log"))?
            .write_all(b"init\n")?;
    }
    lambda_runtime::run(service_fn(handler)).await
}
