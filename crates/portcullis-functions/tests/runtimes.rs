//! Real handlers under the real runtimes of this machine (python3, node): what a handler
//! sees, warm reuse, the concurrency cap, and how each failure is reported.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use indexmap::IndexMap;
use portcullis_config::{Function, Runtime};
use portcullis_functions::{FunctionError, FunctionMetrics, Functions, Identity, Options};
use serde_json::{Value, json};

const PY_APP: &str = r#"
import json, os, time

def lambda_handler(event, context):
    if event.get("sleep"):
        time.sleep(event["sleep"])
    if event.get("crash"):
        os._exit(3)
    if event.get("fail"):
        raise ValueError("bad input: " + event["fail"])
    if event.get("unserialisable"):
        return {"when": object()}
    return {
        "event": event,
        "pid": os.getpid(),
        "request_id": context.aws_request_id,
        "function_name": context.function_name,
        "function_version": context.function_version,
        "arn": context.invoked_function_arn,
        "memory": context.memory_limit_in_mb,
        "log_group": context.log_group_name,
        "log_stream": context.log_stream_name,
        "remaining_positive": context.get_remaining_time_in_millis() > 0,
        "env": {k: os.environ.get(k) for k in ["TABLE", "AWS_REGION", "AWS_DEFAULT_REGION", "_HANDLER", "LAMBDA_TASK_ROOT", "TZ", "AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "EXTRA", "SECRET_OF_GATEWAY"]},
        "cwd": os.getcwd(),
    }
"#;

fn function(name: &str, runtime: Runtime, handler: &str, code: &Path) -> Function {
    Function {
        name: name.to_owned(),
        runtime,
        handler: handler.to_owned(),
        code: code.to_path_buf(),
        timeout: Duration::from_secs(30),
        memory_mb: 256,
        concurrency: 1,
        environment: vec![("TABLE".to_owned(), "chat".to_owned())],
        command: Vec::new(),
    }
}

fn python(name: &str, code: &Path) -> Function {
    function(
        name,
        Runtime::Python("python3.11".to_owned()),
        "app.lambda_handler",
        code,
    )
}

fn start(functions: Vec<Function>) -> Functions {
    start_counted(functions, Arc::default())
}

fn start_counted(functions: Vec<Function>, metrics: Arc<FunctionMetrics>) -> Functions {
    let map: IndexMap<String, Function> =
        functions.into_iter().map(|f| (f.name.clone(), f)).collect();
    let options = Options {
        identity: Identity {
            region: "eu-west-1".to_owned(),
            account_id: "123456789012".to_owned(),
        },
        extra_env: vec![("EXTRA".to_owned(), "from-gateway".to_owned())],
        metrics,
    };
    Functions::start(&map, options).unwrap()
}

/// A directory for what handlers write (markers, counters), apart from their code: a write
/// under `code` is a code change.
fn state_dir(f: &mut Function) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    f.environment
        .push(("STATE".to_owned(), dir.path().display().to_string()));
    dir
}

fn code_dir(files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for (name, text) in files {
        std::fs::write(dir.path().join(name), text).unwrap();
    }
    dir
}

async fn call(functions: &Functions, name: &str, event: Value) -> Result<Value, FunctionError> {
    let out = functions
        .invoke(name, Bytes::from(event.to_string()))
        .await?;
    Ok(serde_json::from_slice(&out.payload).unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_python_handler_sees_the_context_and_variables_of_aws() {
    let dir = code_dir(&[("app.py", PY_APP)]);
    let functions = start(vec![python("chat", dir.path())]);
    let out = call(&functions, "chat", json!({"hello": "world"}))
        .await
        .unwrap();
    assert_eq!(out["event"], json!({"hello": "world"}));
    assert_eq!(out["function_name"], "chat");
    assert_eq!(out["function_version"], "$LATEST");
    assert_eq!(
        out["arn"],
        "arn:aws:lambda:eu-west-1:123456789012:function:chat"
    );
    assert_eq!(out["memory"], "256");
    assert_eq!(out["log_group"], "/aws/lambda/chat");
    assert!(out["log_stream"].as_str().unwrap().contains("[$LATEST]"));
    assert_eq!(out["request_id"].as_str().unwrap().len(), 36);
    assert_eq!(out["remaining_positive"], true);
    let env = &out["env"];
    assert_eq!(env["TABLE"], "chat");
    assert_eq!(env["AWS_REGION"], "eu-west-1");
    assert_eq!(env["AWS_DEFAULT_REGION"], "eu-west-1");
    assert_eq!(env["_HANDLER"], "app.lambda_handler");
    assert_eq!(env["TZ"], ":UTC");
    assert_eq!(env["EXTRA"], "from-gateway");
    assert_eq!(env["SECRET_OF_GATEWAY"], Value::Null);
    let root = dir.path().canonicalize().unwrap();
    assert_eq!(
        Path::new(env["LAMBDA_TASK_ROOT"].as_str().unwrap())
            .canonicalize()
            .unwrap(),
        root
    );
    assert_eq!(
        Path::new(out["cwd"].as_str().unwrap())
            .canonicalize()
            .unwrap(),
        root
    );
}

const NODE_APP: &str = r#"
exports.handler = async (event, context) => ({
  event,
  requestId: context.awsRequestId,
  functionName: context.functionName,
  arn: context.invokedFunctionArn,
  memory: context.memoryLimitInMB,
  remainingPositive: context.getRemainingTimeInMillis() > 0,
  table: process.env.TABLE,
  region: process.env.AWS_REGION,
  handler: process.env._HANDLER,
});
exports.callback = (event, context, callback) => {
  setTimeout(() => callback(null, { viaCallback: event.n + 1, id: context.awsRequestId }), 1);
};
exports.throws = async () => { const e = new TypeError("nope"); throw e; };
"#;

const NODE_ESM: &str = r#"
export const handler = async (event) => ({ esm: true, got: event.x });
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn node_handlers_async_callback_and_esm() {
    let dir = code_dir(&[("index.js", NODE_APP), ("mod.mjs", NODE_ESM)]);
    let node = || Runtime::Node("nodejs20.x".to_owned());
    let functions = start(vec![
        function("asyncfn", node(), "index.handler", dir.path()),
        function("cb", node(), "index.callback", dir.path()),
        function("esm", node(), "mod.handler", dir.path()),
        function("throws", node(), "index.throws", dir.path()),
    ]);
    let out = call(&functions, "asyncfn", json!({"a": 1})).await.unwrap();
    assert_eq!(out["event"], json!({"a": 1}));
    assert_eq!(out["functionName"], "asyncfn");
    assert_eq!(
        out["arn"],
        "arn:aws:lambda:eu-west-1:123456789012:function:asyncfn"
    );
    assert_eq!(out["memory"], "256");
    assert_eq!(out["remainingPositive"], true);
    assert_eq!(out["table"], "chat");
    assert_eq!(out["region"], "eu-west-1");
    assert_eq!(out["handler"], "index.handler");
    assert_eq!(out["requestId"].as_str().unwrap().len(), 36);

    let out = call(&functions, "cb", json!({"n": 41})).await.unwrap();
    assert_eq!(out["viaCallback"], 42);
    let out = call(&functions, "esm", json!({"x": "y"})).await.unwrap();
    assert_eq!(out, json!({"esm": true, "got": "y"}));

    let err = call(&functions, "throws", json!({})).await.unwrap_err();
    assert_eq!(
        err,
        FunctionError::Handled {
            error_type: "TypeError".to_owned(),
            error_message: "nope".to_owned()
        }
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn init_runs_once_across_calls() {
    let app = r#"
import os
with open(os.path.join(os.environ["STATE"], "inits.log"), "a") as f:
    f.write("init\n")
CALLS = 0

def lambda_handler(event, context):
    global CALLS
    CALLS += 1
    return {"calls": CALLS, "pid": os.getpid()}
"#;
    let dir = code_dir(&[("app.py", app)]);
    let mut f = python("warm", dir.path());
    let state = state_dir(&mut f);
    let functions = start(vec![f]);
    let mut pids = Vec::new();
    for expected in 1..=3 {
        let out = call(&functions, "warm", json!({})).await.unwrap();
        assert_eq!(out["calls"], expected);
        pids.push(out["pid"].clone());
    }
    pids.dedup();
    assert_eq!(pids.len(), 1);
    let inits = std::fs::read_to_string(state.path().join("inits.log")).unwrap();
    assert_eq!(inits, "init\n");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn at_most_concurrency_environments_run_and_a_third_call_waits() {
    let app = r#"
import os, time

STATE = os.environ["STATE"]

def lambda_handler(event, context):
    with open(os.path.join(STATE, "calls.log"), "a") as f:
        f.write("start %d\n" % os.getpid())
    while not os.path.exists(os.path.join(STATE, "release")):
        time.sleep(0.01)
    return {"pid": os.getpid()}
"#;
    let code = code_dir(&[("app.py", app)]);
    let mut f = python("capped", code.path());
    let dir = state_dir(&mut f);
    f.concurrency = 2;
    let functions = std::sync::Arc::new(start(vec![f]));
    let calls: Vec<_> = (0..3)
        .map(|_| {
            let functions = functions.clone();
            tokio::spawn(async move { call(&functions, "capped", json!({})).await })
        })
        .collect();
    let log = dir.path().join("calls.log");
    let starts = || {
        std::fs::read_to_string(&log)
            .unwrap_or_default()
            .lines()
            .count()
    };
    // Two handlers running and the third call queued: it waits rather than starting a third
    // environment.
    while starts() < 2 || functions.queued("capped") != Some(1) {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(starts(), 2, "only two environments run at once");
    std::fs::write(dir.path().join("release"), "").unwrap();
    let mut pids = Vec::new();
    for c in calls {
        pids.push(c.await.unwrap().unwrap()["pid"].as_i64().unwrap());
    }
    pids.sort_unstable();
    pids.dedup();
    assert_eq!(pids.len(), 2, "the third call reused a warm environment");
    assert_eq!(starts(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_timeout_kills_the_environment_and_the_next_call_works() {
    let dir = code_dir(&[("app.py", PY_APP)]);
    let mut f = python("slow", dir.path());
    f.timeout = Duration::from_secs(1);
    let functions = start(vec![f]);
    let first = call(&functions, "slow", json!({})).await.unwrap();
    let err = call(&functions, "slow", json!({"sleep": 30}))
        .await
        .unwrap_err();
    assert_eq!(err, FunctionError::Timeout(Duration::from_secs(1)));
    assert_eq!(err.to_json()["errorType"], "Sandbox.Timedout");
    let after = call(&functions, "slow", json!({})).await.unwrap();
    assert_ne!(first["pid"], after["pid"], "a new environment replaced it");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_is_reported_and_the_next_call_gets_a_new_environment() {
    let dir = code_dir(&[("app.py", PY_APP)]);
    let functions = start(vec![python("crashy", dir.path())]);
    let first = call(&functions, "crashy", json!({})).await.unwrap();
    let err = call(&functions, "crashy", json!({"crash": true}))
        .await
        .unwrap_err();
    assert!(matches!(err, FunctionError::Crashed(_)), "{err:?}");
    let after = call(&functions, "crashy", json!({})).await.unwrap();
    assert_ne!(first["pid"], after["pid"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_handler_exception_is_handled_without_its_trace_and_keeps_the_environment() {
    let dir = code_dir(&[("app.py", PY_APP)]);
    let functions = start(vec![python("picky", dir.path())]);
    let first = call(&functions, "picky", json!({})).await.unwrap();
    let err = call(&functions, "picky", json!({"fail": "x"}))
        .await
        .unwrap_err();
    assert_eq!(
        err,
        FunctionError::Handled {
            error_type: "ValueError".to_owned(),
            error_message: "bad input: x".to_owned()
        }
    );
    assert!(!err.to_json().to_string().contains("Traceback"));
    let err = call(&functions, "picky", json!({"unserialisable": true}))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, FunctionError::Handled { error_type, .. } if error_type == "Runtime.MarshalError"),
        "{err:?}"
    );
    let after = call(&functions, "picky", json!({})).await.unwrap();
    assert_eq!(first["pid"], after["pid"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn init_errors_are_reported_with_the_aws_error_types() {
    let dir = code_dir(&[
        (
            "broken.py",
            "def lambda_handler(event, context)\n    return 1\n",
        ),
        ("app.py", PY_APP),
        ("index.js", NODE_APP),
    ]);
    let node = Runtime::Node("nodejs20.x".to_owned());
    let mut syntax = python("syntax", dir.path());
    syntax.handler = "broken.lambda_handler".to_owned();
    let mut missing = python("missing", dir.path());
    missing.handler = "app.nothing".to_owned();
    let mut no_module = python("nomodule", dir.path());
    no_module.handler = "absent.handler".to_owned();
    let functions = start(vec![
        syntax,
        missing,
        no_module,
        function("nodemissing", node, "index.nothing", dir.path()),
    ]);
    for (name, error_type) in [
        ("syntax", "Runtime.UserCodeSyntaxError"),
        ("missing", "Runtime.HandlerNotFound"),
        ("nomodule", "Runtime.ImportModuleError"),
        ("nodemissing", "Runtime.HandlerNotFound"),
    ] {
        let err = call(&functions, name, json!({})).await.unwrap_err();
        match err {
            FunctionError::InitError { error_type: t, .. } => assert_eq!(t, error_type, "{name}"),
            other => panic!("{name}: expected an init error, got {other:?}"),
        }
    }
    assert!(matches!(
        call(&functions, "unknown", json!({})).await,
        Err(FunctionError::UnknownFunction(_))
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_beyond_the_queue_are_refused_as_overloaded() {
    let app = r#"
import os, time

STATE = os.environ["STATE"]

def lambda_handler(event, context):
    open(os.path.join(STATE, "started"), "w").close()
    while not os.path.exists(os.path.join(STATE, "release")):
        time.sleep(0.01)
    return {}
"#;
    let code = code_dir(&[("app.py", app)]);
    let mut f = python("busy", code.path());
    let dir = state_dir(&mut f);
    let functions = std::sync::Arc::new(start(vec![f]));
    let spawn = || {
        let functions = functions.clone();
        tokio::spawn(async move { call(&functions, "busy", json!({})).await })
    };
    let mut calls = vec![spawn()];
    while !dir.path().join("started").exists() {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let bound = portcullis_functions::QUEUE_PER_ENVIRONMENT;
    calls.extend((0..bound).map(|_| spawn()));
    while functions.queued("busy") != Some(bound) {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let err = call(&functions, "busy", json!({})).await.unwrap_err();
    assert_eq!(err, FunctionError::Overloaded("busy".to_owned()));
    assert_eq!(err.fault(), portcullis_functions::Fault::Capacity);
    std::fs::write(dir.path().join("release"), "").unwrap();
    for c in calls {
        c.await.unwrap().unwrap();
    }
    assert_eq!(functions.queued("busy"), Some(0));
}

/// A `provided` runtime: the command is the bootstrap and speaks the Runtime API itself.
const CUSTOM_BOOTSTRAP: &str = r#"
import json, os, urllib.request
api = "http://" + os.environ["AWS_LAMBDA_RUNTIME_API"] + "/2018-06-01/runtime/invocation/"
while True:
    with urllib.request.urlopen(api + "next") as r:
        request_id = r.headers["Lambda-Runtime-Aws-Request-Id"]
        event = json.loads(r.read())
    body = json.dumps({"custom": event, "cwd_has_bootstrap": os.path.exists("bootstrap.py"), "handler": os.environ["_HANDLER"]}).encode()
    urllib.request.urlopen(urllib.request.Request(api + request_id + "/response", data=body, method="POST")).read()
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_provided_runtime_runs_its_command_in_the_code_directory() {
    let dir = code_dir(&[("bootstrap.py", CUSTOM_BOOTSTRAP)]);
    let mut f = function("custom", Runtime::Provided, "", dir.path());
    f.command = vec!["python3".to_owned(), "bootstrap.py".to_owned()];
    let functions = start(vec![f]);
    for n in 0..2 {
        let out = call(&functions, "custom", json!({"n": n})).await.unwrap();
        assert_eq!(
            out,
            json!({"custom": {"n": n}, "cwd_has_bootstrap": true, "handler": ""})
        );
    }
}

/// Reads one series from the registry's exposition text, as a scraper would; 0 when absent.
fn series(registry: &prometheus_client::registry::Registry, name: &str) -> f64 {
    let mut text = String::new();
    prometheus_client::encoding::text::encode(&mut text, registry).unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' '))
        .map_or(0.0, |v| v.trim().parse().unwrap())
}

fn registered() -> (prometheus_client::registry::Registry, Arc<FunctionMetrics>) {
    let mut registry = prometheus_client::registry::Registry::with_prefix("portcullis");
    let metrics = FunctionMetrics::register(&mut registry);
    (registry, metrics)
}

/// Calls `name` until `done` holds for its result, for at most 30 s.
async fn call_until(functions: &Functions, name: &str, done: impl Fn(&Value) -> bool) -> Value {
    for _ in 0..600 {
        let out = call(functions, name, json!({})).await.unwrap();
        if done(&out) {
            return out;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{name} never gave the expected result");
}

const VERSIONED_PY: &str = r#"
import os, time
STATE = os.environ["STATE"]
with open(os.path.join(STATE, "inits"), "a") as f:
    f.write("init\n")
VERSION = "one"

def lambda_handler(event, context):
    if event.get("sleep"):
        open(os.path.join(STATE, "sleeping"), "w").close()
        time.sleep(event["sleep"])
    return {"version": VERSION, "pid": os.getpid()}
"#;

fn inits(state: &Path) -> usize {
    std::fs::read_to_string(state.join("inits"))
        .unwrap_or_default()
        .lines()
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_edited_python_handler_is_picked_up_and_calls_in_flight_finish_on_the_old_code() {
    let code = code_dir(&[("app.py", VERSIONED_PY)]);
    let mut f = python("edited", code.path());
    f.concurrency = 2;
    let state = state_dir(&mut f);
    let (registry, metrics) = registered();
    let functions = Arc::new(start_counted(vec![f], metrics));
    let first = call(&functions, "edited", json!({})).await.unwrap();
    assert_eq!(first["version"], "one");
    assert_eq!(inits(state.path()), 1);

    let in_flight = {
        let functions = functions.clone();
        tokio::spawn(async move { call(&functions, "edited", json!({"sleep": 1})).await })
    };
    while !state.path().join("sleeping").exists() {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let edited = VERSIONED_PY.replace(r#"VERSION = "one""#, r#"VERSION = "second""#);
    std::fs::write(code.path().join("app.py"), edited).unwrap();

    let after = call_until(&functions, "edited", |v| v["version"] == "second").await;
    assert_ne!(
        after["pid"], first["pid"],
        "a new environment runs the new code"
    );
    let old = in_flight.await.unwrap().unwrap();
    assert_eq!(
        old["version"], "one",
        "the call in flight finished on the old code"
    );
    let recycles = r#"portcullis_function_recycles_total{function="edited"}"#;
    while series(&registry, recycles) < 1.0 {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(series(&registry, recycles), 1.0, "one edit, one recycle");

    // The environment of the call in flight was stopped, not put back: from now on every
    // call runs the new code in one warm environment, whose init ran once.
    let warm = call(&functions, "edited", json!({})).await.unwrap();
    let inits_now = inits(state.path());
    assert!(inits_now >= 2, "the new code's init ran");
    for _ in 0..3 {
        let out = call(&functions, "edited", json!({})).await.unwrap();
        assert_eq!(out["version"], "second");
        assert_eq!(out["pid"], warm["pid"]);
    }
    assert_eq!(inits(state.path()), inits_now);
    let envs = |state: &str| {
        series(
            &registry,
            &format!("portcullis_function_environments{{function=\"edited\",state=\"{state}\"}}"),
        )
    };
    assert_eq!((envs("busy"), envs("idle")), (0.0, 1.0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_edited_node_handler_is_picked_up() {
    let app = "exports.handler = async () => ({ version: 'one', pid: process.pid });\n";
    let code = code_dir(&[("index.js", app)]);
    let node = Runtime::Node("nodejs20.x".to_owned());
    let functions = start(vec![function(
        "nodeedit",
        node,
        "index.handler",
        code.path(),
    )]);
    let first = call(&functions, "nodeedit", json!({})).await.unwrap();
    assert_eq!(first["version"], "one");
    std::fs::write(
        code.path().join("index.js"),
        app.replace("'one'", "'second'"),
    )
    .unwrap();
    let after = call_until(&functions, "nodeedit", |v| v["version"] == "second").await;
    assert_ne!(after["pid"], first["pid"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn byte_code_and_editor_files_do_not_recycle() {
    let quiet_code = code_dir(&[("app.py", VERSIONED_PY)]);
    let marker_code = code_dir(&[("app.py", VERSIONED_PY)]);
    let mut quiet = python("quiet", quiet_code.path());
    let quiet_state = state_dir(&mut quiet);
    let mut marker = python("marker", marker_code.path());
    let _marker_state = state_dir(&mut marker);
    let (registry, metrics) = registered();
    let functions = start_counted(vec![quiet, marker], metrics);
    // The first call has Python write `__pycache__/app.*.pyc` into the code directory.
    let first = call(&functions, "quiet", json!({})).await.unwrap();
    assert!(quiet_code.path().join("__pycache__").is_dir());
    let root = quiet_code.path();
    std::fs::write(root.join("__pycache__/other.cpython-311.pyc"), "x").unwrap();
    std::fs::write(root.join("stale.pyc"), "x").unwrap();
    std::fs::write(root.join(".app.py.swp"), "x").unwrap();
    std::fs::write(root.join("app.py~"), "x").unwrap();
    std::fs::write(root.join(".#app.py"), "x").unwrap();
    // A real change elsewhere, seen after the noise (one watcher, events in order): once it
    // has been acted on, so has the noise.
    std::fs::write(marker_code.path().join("app.py"), VERSIONED_PY).unwrap();
    for _ in 0..600 {
        if series(
            &registry,
            r#"portcullis_function_recycles_total{function="marker"}"#,
        ) >= 1.0
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        series(
            &registry,
            r#"portcullis_function_recycles_total{function="marker"}"#
        ),
        1.0
    );
    assert_eq!(
        series(
            &registry,
            r#"portcullis_function_recycles_total{function="quiet"}"#
        ),
        0.0
    );
    let again = call(&functions, "quiet", json!({})).await.unwrap();
    assert_eq!(again["pid"], first["pid"], "the warm environment was kept");
    assert_eq!(inits(quiet_state.path()), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_outcome_is_counted_and_environments_return_to_their_state() {
    let code = code_dir(&[("app.py", PY_APP)]);
    let mut f = python("acct", code.path());
    f.timeout = Duration::from_secs(1);
    let mut broken = python("broken", code.path());
    broken.handler = "app.nothing".to_owned();
    let (registry, metrics) = registered();
    let functions = start_counted(vec![f, broken], metrics);
    let value = |metric: &str, labels: &str| {
        series(
            &registry,
            &format!("portcullis_function_{metric}{{function=\"acct\"{labels}}}"),
        )
    };
    let envs = |state: &str| value("environments", &format!(",state=\"{state}\""));
    let errors = |kind: &str| value("errors_total", &format!(",kind=\"{kind}\""));

    call(&functions, "acct", json!({})).await.unwrap();
    assert_eq!(value("invocations_total", ""), 1.0);
    assert_eq!(value("cold_starts_total", ""), 1.0);
    assert_eq!(value("init_duration_seconds_count", ""), 1.0);
    assert_eq!(value("duration_seconds_count", ""), 1.0);
    assert_eq!((envs("busy"), envs("idle")), (0.0, 1.0));

    call(&functions, "acct", json!({"fail": "x"}))
        .await
        .unwrap_err();
    assert_eq!(errors("handled"), 1.0);
    assert_eq!(
        value("cold_starts_total", ""),
        1.0,
        "the environment was kept"
    );
    assert_eq!((envs("busy"), envs("idle")), (0.0, 1.0));

    call(&functions, "acct", json!({"sleep": 30}))
        .await
        .unwrap_err();
    assert_eq!(errors("timeout"), 1.0);
    assert_eq!(value("timeouts_total", ""), 1.0);
    assert_eq!((envs("busy"), envs("idle")), (0.0, 0.0));

    call(&functions, "acct", json!({})).await.unwrap();
    assert_eq!(value("cold_starts_total", ""), 2.0);
    call(&functions, "acct", json!({"crash": true}))
        .await
        .unwrap_err();
    assert_eq!(errors("crash"), 1.0);
    assert_eq!((envs("busy"), envs("idle")), (0.0, 0.0));

    call(&functions, "acct", json!({})).await.unwrap();
    assert_eq!(value("cold_starts_total", ""), 3.0);
    assert_eq!((envs("busy"), envs("idle")), (0.0, 1.0));

    let huge = Bytes::from(vec![
        b' ';
        portcullis_functions::runtime_api::MAX_PAYLOAD + 1
    ]);
    functions.invoke("acct", huge).await.unwrap_err();
    assert_eq!(errors("event_too_large"), 1.0);

    // A code change stops the idle environment; the next call starts a new one.
    std::fs::write(code.path().join("app.py"), format!("{PY_APP}\n# edited\n")).unwrap();
    for _ in 0..600 {
        if value("recycles_total", "") >= 1.0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(value("recycles_total", ""), 1.0);
    assert_eq!((envs("busy"), envs("idle")), (0.0, 0.0));
    call(&functions, "acct", json!({})).await.unwrap();
    assert_eq!(value("cold_starts_total", ""), 4.0);
    assert_eq!((envs("busy"), envs("idle")), (0.0, 1.0));
    assert_eq!(value("invocations_total", ""), 8.0);
    assert_eq!(value("duration_seconds_count", ""), 7.0);
    assert_eq!(value("queued", ""), 0.0);

    call(&functions, "broken", json!({})).await.unwrap_err();
    let broken = |m: &str| series(&registry, &format!("portcullis_function_{m}"));
    assert_eq!(
        broken(r#"errors_total{function="broken",kind="init"}"#),
        1.0
    );
    assert_eq!(broken(r#"cold_starts_total{function="broken"}"#), 0.0);
    assert_eq!(
        broken(r#"environments{function="broken",state="busy"}"#),
        0.0
    );
}
