//! The echo handler run by Portcullis as a `provided` function: AWS's Rust runtime client
//! against the Runtime API of an execution environment.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use indexmap::IndexMap;
use portcullis_config::{Function, Runtime};
use portcullis_functions::{FunctionError, Functions, Identity, Options};
use serde_json::{Value, json};

const TIMEOUT: Duration = Duration::from_secs(30);

/// `echo` with its code in `code`, writing its marks in `state` (a write under `code` would
/// be a code change).
fn start(code: &std::path::Path, state: &std::path::Path) -> Functions {
    let function = Function {
        name: "echo".to_owned(),
        runtime: Runtime::Provided,
        handler: String::new(),
        code: code.to_path_buf(),
        timeout: TIMEOUT,
        memory_mb: 128,
        concurrency: 1,
        environment: vec![("STATE".to_owned(), state.display().to_string())],
        command: vec![env!("CARGO_BIN_EXE_portcullis-example-rust-handler").to_owned()],
    };
    let map: IndexMap<String, Function> = [("echo".to_owned(), function)].into();
    let options = Options {
        identity: Identity {
            region: "eu-west-1".to_owned(),
            account_id: "123456789012".to_owned(),
        },
        extra_env: Vec::new(),
        metrics: Default::default(),
    };
    Functions::start(&map, options).unwrap()
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis()
        .try_into()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lambda_runtime_handler_runs_warm_and_sees_its_invocation() {
    let (dir, state) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let functions = start(dir.path(), state.path());
    let mut pids = Vec::new();
    for n in 1..=2 {
        let before = now_ms();
        let invocation = functions
            .invoke("echo", Bytes::from(json!({"n": n}).to_string()))
            .await
            .unwrap();
        let out: Value = serde_json::from_slice(&invocation.payload).unwrap();
        assert_eq!(out["event"], json!({"n": n}));
        assert_eq!(out["calls"], n, "the process stays up between calls");
        assert_eq!(out["request_id"], invocation.request_id.as_str());
        assert_eq!(
            out["function_arn"],
            "arn:aws:lambda:eu-west-1:123456789012:function:echo"
        );
        let deadline = out["deadline_ms"].as_u64().unwrap();
        let timeout_ms = u64::try_from(TIMEOUT.as_millis()).unwrap();
        assert!(
            deadline > before && deadline <= now_ms() + timeout_ms,
            "the deadline is the call's start plus the timeout: {deadline}"
        );
        assert!(out["trace_id"].as_str().unwrap().starts_with("Root=1-"));
        assert_eq!(out["function_name"], "echo");
        assert_eq!(out["memory"], 128);
        assert_eq!(out["version"], "$LATEST");
        assert_eq!(out["log_group"], "/aws/lambda/echo");
        assert!(out["log_stream"].as_str().unwrap().contains("/[$LATEST]"));
        assert_eq!(
            out["env"],
            json!({
                "AWS_LAMBDA_FUNCTION_NAME": "echo",
                "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "128",
                "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
            })
        );
        pids.push(out["pid"].clone());
    }
    pids.dedup();
    assert_eq!(pids.len(), 1, "both calls ran in one environment");
    let inits = std::fs::read_to_string(state.path().join("inits.log")).unwrap();
    assert_eq!(inits, "init\n", "initialised once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_err_of_the_handler_is_the_error_the_gateway_sees() {
    let (dir, state) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let functions = start(dir.path(), state.path());
    let err = functions
        .invoke(
            "echo",
            Bytes::from(json!({"fail": "no echo today"}).to_string()),
        )
        .await
        .unwrap_err();
    assert_eq!(
        err,
        FunctionError::Handled {
            error_type: "EchoError".to_owned(),
            error_message: "no echo today".to_owned()
        }
    );
    let invocation = functions
        .invoke("echo", Bytes::from_static(b"{}"))
        .await
        .unwrap();
    let out: Value = serde_json::from_slice(&invocation.payload).unwrap();
    assert_eq!(out["calls"], 2, "the environment is kept after an error");
}
