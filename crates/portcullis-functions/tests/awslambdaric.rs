//! AWS's own Python runtime client, `awslambdaric` from PyPI, run as a `provided` function
//! against the Runtime API of an environment: what its handlers see and how their failures
//! surface. The client is installed in the repository's `.venv` (tests/python/requirements.txt).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::time::Duration;

use bytes::Bytes;
use indexmap::IndexMap;
use portcullis_config::{Function, Runtime};
use portcullis_functions::{FunctionError, Functions, Identity, Invocation, Options};
use serde_json::{Value, json};

const APP: &str = r#"
import os, time

with open(os.path.join(os.environ["STATE"], "inits.log"), "a") as f:
    f.write("init\n")
CALLS = 0

def handler(event, context):
    global CALLS
    CALLS += 1
    if event.get("sleep"):
        time.sleep(event["sleep"])
    if event.get("fail"):
        raise ValueError("bad input: " + event["fail"])
    return {
        "event": event,
        "calls": CALLS,
        "pid": os.getpid(),
        "request_id": context.aws_request_id,
        "function_name": context.function_name,
        "function_version": context.function_version,
        "memory": context.memory_limit_in_mb,
        "arn": context.invoked_function_arn,
        "log_group": context.log_group_name,
        "log_stream": context.log_stream_name,
        "remaining": context.get_remaining_time_in_millis(),
        "trace": os.environ.get("_X_AMZN_TRACE_ID"),
    }
"#;

/// The interpreter of the repository's `.venv`, which has `awslambdaric`.
fn venv_python() -> PathBuf {
    let venv = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../.venv");
    let python = venv.join("bin/python");
    let ok = std::process::Command::new(&python)
        .args(["-c", "import awslambdaric"])
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        ok,
        "{} with awslambdaric is needed: run `python3 -m venv .venv && .venv/bin/pip install -r \
         tests/python/requirements.txt` at the repository root (scripts/test does it)",
        python.display()
    );
    python
}

/// A `provided` function running `app.handler` under awslambdaric. `state` is where the
/// handler writes (a write under `code` would be a code change).
fn awslambdaric(name: &str, code: &Path, state: &Path, timeout: Duration) -> Function {
    Function {
        name: name.to_owned(),
        runtime: Runtime::Provided,
        handler: "app.handler".to_owned(),
        code: code.to_path_buf(),
        timeout,
        memory_mb: 512,
        concurrency: 1,
        environment: vec![("STATE".to_owned(), state.display().to_string())],
        command: vec![
            venv_python().display().to_string(),
            "-m".to_owned(),
            "awslambdaric".to_owned(),
            "app.handler".to_owned(),
        ],
    }
}

fn start(function: Function) -> Functions {
    let map: IndexMap<String, Function> = [(function.name.clone(), function)].into();
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

/// The code directory with `app.py`, and a directory for what the handler writes.
fn dirs() -> (tempfile::TempDir, tempfile::TempDir) {
    let code = tempfile::tempdir().unwrap();
    std::fs::write(code.path().join("app.py"), APP).unwrap();
    (code, tempfile::tempdir().unwrap())
}

async fn invoke(functions: &Functions, event: Value) -> Result<(Invocation, Value), FunctionError> {
    let out = functions
        .invoke("ric", Bytes::from(event.to_string()))
        .await?;
    let value = serde_json::from_slice(&out.payload).unwrap();
    Ok((out, value))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn awslambdaric_handlers_see_the_context_of_aws_and_init_once() {
    let (dir, state) = dirs();
    let functions = start(awslambdaric(
        "ric",
        dir.path(),
        state.path(),
        Duration::from_secs(30),
    ));
    let mut pids = Vec::new();
    for n in 1..=2 {
        let (invocation, out) = invoke(&functions, json!({"n": n})).await.unwrap();
        assert_eq!(out["event"], json!({"n": n}));
        assert_eq!(out["calls"], n, "the module stays loaded between calls");
        assert_eq!(out["request_id"], invocation.request_id.as_str());
        assert_eq!(out["function_name"], "ric");
        assert_eq!(out["function_version"], "$LATEST");
        assert_eq!(out["memory"], "512");
        assert_eq!(
            out["arn"],
            "arn:aws:lambda:eu-west-1:123456789012:function:ric"
        );
        assert_eq!(out["log_group"], "/aws/lambda/ric");
        assert!(
            out["log_stream"].as_str().unwrap().contains("/[$LATEST]"),
            "{out}"
        );
        let remaining = out["remaining"].as_i64().unwrap();
        assert!(remaining > 0 && remaining <= 30_000, "{remaining}");
        assert!(
            out["trace"].as_str().unwrap().starts_with("Root=1-"),
            "{out}"
        );
        pids.push(out["pid"].clone());
    }
    pids.dedup();
    assert_eq!(pids.len(), 1, "both calls ran in one environment");
    let inits = std::fs::read_to_string(state.path().join("inits.log")).unwrap();
    assert_eq!(inits, "init\n");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_awslambdaric_exception_is_the_error_the_gateway_sees() {
    let (dir, state) = dirs();
    let functions = start(awslambdaric(
        "ric",
        dir.path(),
        state.path(),
        Duration::from_secs(30),
    ));
    let (_, first) = invoke(&functions, json!({})).await.unwrap();
    let err = invoke(&functions, json!({"fail": "x"})).await.unwrap_err();
    assert_eq!(
        err,
        FunctionError::Handled {
            error_type: "ValueError".to_owned(),
            error_message: "bad input: x".to_owned()
        }
    );
    assert!(!err.to_json().to_string().contains("Traceback"));
    let (_, after) = invoke(&functions, json!({})).await.unwrap();
    assert_eq!(first["pid"], after["pid"], "the environment is kept");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_awslambdaric_timeout_kills_the_environment() {
    let (dir, state) = dirs();
    let functions = start(awslambdaric(
        "ric",
        dir.path(),
        state.path(),
        Duration::from_secs(1),
    ));
    let (_, first) = invoke(&functions, json!({})).await.unwrap();
    let err = invoke(&functions, json!({"sleep": 30})).await.unwrap_err();
    assert_eq!(err, FunctionError::Timeout(Duration::from_secs(1)));
    let (_, after) = invoke(&functions, json!({})).await.unwrap();
    assert_ne!(first["pid"], after["pid"], "a new environment replaced it");
    assert_eq!(after["calls"], 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_awslambdaric_init_failure_is_an_init_error() {
    let (dir, state) = dirs();
    let mut f = awslambdaric("ric", dir.path(), state.path(), Duration::from_secs(30));
    *f.command.last_mut().unwrap() = "app.nothing".to_owned();
    let functions = start(f);
    match invoke(&functions, json!({})).await.unwrap_err() {
        FunctionError::InitError { error_type, .. } => {
            assert_eq!(error_type, "Runtime.HandlerNotFound");
        }
        other => panic!("expected an init error, got {other:?}"),
    }
}
