//! `portcullis invoke`: the real binary running Python and Node handlers from a configuration
//! whose code directories are relative to the file.

use std::path::PathBuf;

use serde_json::{Value, json};

use super::cli::portcullis;

const APP_PY: &str = r#"
def lambda_handler(event, context):
    print("handling", event.get("name"))
    if event.get("fail"):
        raise ValueError("no " + event["fail"])
    return {"hello": event.get("name"), "function": context.function_name}
"#;

const INDEX_JS: &str = r#"
exports.handler = async (event, context) => ({ node: true, got: event, fn: context.functionName });
"#;

struct Files {
    dir: tempfile::TempDir,
    config: PathBuf,
}

fn files() -> Files {
    let dir = tempfile::tempdir().expect("tmp");
    let py = dir.path().join("functions/hello");
    let js = dir.path().join("functions/node");
    std::fs::create_dir_all(&py).expect("mkdir");
    std::fs::create_dir_all(&js).expect("mkdir");
    std::fs::write(py.join("app.py"), APP_PY).expect("write");
    std::fs::write(js.join("index.js"), INDEX_JS).expect("write");
    let config = dir.path().join("portcullis.toml");
    std::fs::write(
        &config,
        r#"[server]
listen = "127.0.0.1:0"
admin_listen = "127.0.0.1:0"

[functions.hello]
runtime = "python3.11"
handler = "app.lambda_handler"
code = "functions/hello"

[functions.greeter]
runtime = "nodejs20.x"
handler = "index.handler"
code = "functions/node"
"#,
    )
    .expect("write config");
    Files { dir, config }
}

#[test]
fn invoke_prints_the_result_and_logs_like_cloudwatch() {
    let f = files();
    let event = f.dir.path().join("event.json");
    std::fs::write(&event, r#"{"name": "ada"}"#).expect("write");
    let out = portcullis(
        &["invoke"],
        &f.config,
        &["hello", "--event", event.to_str().expect("utf-8")],
        None,
    );
    assert_eq!(out.code, 0, "stderr: {}", out.stderr);
    let result: Value = serde_json::from_str(out.stdout.trim()).expect("json");
    assert_eq!(result, json!({"hello": "ada", "function": "hello"}));
    assert!(out.stderr.contains("START RequestId: "), "{}", out.stderr);
    assert!(out.stderr.contains("END RequestId: "), "{}", out.stderr);
    assert!(out.stderr.contains("REPORT RequestId: "), "{}", out.stderr);
    assert!(out.stderr.contains("Max Memory Used: "), "{}", out.stderr);
    assert!(out.stderr.contains("handling ada"), "{}", out.stderr);
}

#[test]
fn invoke_reads_the_event_from_stdin_and_runs_node() {
    let f = files();
    let out = portcullis(
        &["invoke"],
        &f.config,
        &["greeter", "--event", "-"],
        Some(br#"{"x": 1}"#),
    );
    assert_eq!(out.code, 0, "stderr: {}", out.stderr);
    let result: Value = serde_json::from_str(out.stdout.trim()).expect("json");
    assert_eq!(
        result,
        json!({"node": true, "got": {"x": 1}, "fn": "greeter"})
    );
}

#[test]
fn a_function_error_prints_its_type_and_message_and_exits_1() {
    let f = files();
    let out = portcullis(
        &["invoke"],
        &f.config,
        &["hello", "--event", "-"],
        Some(br#"{"fail": "way"}"#),
    );
    assert_eq!(out.code, 1, "stderr: {}", out.stderr);
    let error: Value = serde_json::from_str(out.stdout.trim()).expect("json");
    assert_eq!(
        error,
        json!({"errorType": "ValueError", "errorMessage": "no way"})
    );
    assert!(
        out.stderr.contains("Traceback"),
        "the trace is logged: {}",
        out.stderr
    );

    let out = portcullis(&["invoke"], &f.config, &["nobody"], None);
    assert_eq!(out.code, 1);
    assert!(
        out.stderr.contains("invoke: no function named \"nobody\""),
        "{}",
        out.stderr
    );
    let out = portcullis(
        &["invoke"],
        &f.config,
        &["hello", "--event", "-"],
        Some(b"{not json"),
    );
    assert_eq!(out.code, 1);
    assert!(out.stderr.contains("not a JSON document"), "{}", out.stderr);
}
