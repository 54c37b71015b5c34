//! Handlers calling back: the AWS-sample management client (boto3 `apigatewaymanagementapi`
//! with `endpoint_url=f"https://{domainName}/{stage}"`), run by a real Python with exactly the
//! variables a function gets, reaches a live WebSocket connection through the gateway; and a
//! real Python function does the same while the admin listener has TLS (`admin_tls`).

use std::path::PathBuf;
use std::time::Duration;

use portcullis_testkit::*;

/// The AWS sample, unchanged but for taking its inputs from argv.
const SAMPLE: &str = r#"
import sys
import boto3

domain, stage, connection_id = sys.argv[1:4]
client = boto3.client("apigatewaymanagementapi", endpoint_url=f"https://{domain}/{stage}")
client.post_to_connection(ConnectionId=connection_id, Data=b"hello from a handler")
print("SENT")
try:
    client.post_to_connection(ConnectionId="AAAAAAAAAAAAAAAAAAAA", Data=b"lost")
    print("DELIVERED")
except client.exceptions.GoneException:
    print("GONE")
"#;

fn venv_python() -> PathBuf {
    let python = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../.venv/bin/python");
    assert!(
        python.exists(),
        "{} is missing: python3 -m venv .venv && .venv/bin/pip install -r tests/python/requirements.txt",
        python.display()
    );
    python
}

fn config(backend: &Backend, code: &std::path::Path) -> String {
    format!(
        "[websocket.chat]\nstage = \"prod\"\n[websocket.chat.routes]\n\
         \"$connect\" = {{ integration = \"backend\" }}\n\
         \"$disconnect\" = {{ integration = \"backend\" }}\n\
         \"$default\" = {{ integration = \"backend\" }}\n\n\
         [integrations.backend]\ntype = \"http\"\nurl = \"{}\"\n\n\
         [functions.noop]\nruntime = \"python3.11\"\nhandler = \"app.lambda_handler\"\ncode = \"{}\"\n",
        backend.url,
        code.display()
    )
}

/// Runs `script` as a function's process would: a cleared environment with PATH and HOME,
/// the region the runtime sets, and the gateway's callback variables.
async fn run_as_function(gw: &TestGateway, script: &str, args: &[&str]) -> (bool, String, String) {
    let mut command = tokio::process::Command::new(venv_python());
    command
        .arg("-c")
        .arg(script)
        .args(args)
        .env_clear()
        .env("AWS_REGION", REGION)
        .env("AWS_DEFAULT_REGION", REGION)
        .envs(gw.function_environment());
    for inherited in ["PATH", "HOME"] {
        if let Ok(v) = std::env::var(inherited) {
            command.env(inherited, v);
        }
    }
    let output = tokio::time::timeout(Duration::from_secs(60), command.output())
        .await
        .expect("python finishes")
        .expect("python runs");
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[tokio::test]
async fn the_aws_sample_management_client_reaches_the_connection() {
    let backend = Backend::echo().await;
    let code = tempfile::tempdir().expect("tempdir");
    std::fs::write(
        code.path().join("app.py"),
        "def lambda_handler(event, context):\n    return {}\n",
    )
    .expect("write");
    let gw = TestGateway::start(&config(&backend, code.path())).await;
    let (mut client, id) = connect_and_id(&gw, "/chat", &backend).await;
    let event = backend.wait_event("CONNECT", &id).await;
    let domain = event["requestContext"]["domainName"]
        .as_str()
        .expect("domainName");
    let stage = event["requestContext"]["stage"].as_str().expect("stage");

    let (ok, stdout, stderr) = run_as_function(&gw, SAMPLE, &[domain, stage, &id]).await;
    assert!(ok, "the sample failed:\n{stdout}\n{stderr}");
    assert_eq!(next_text(&mut client).await, "hello from a handler");
    assert_eq!(
        stdout.lines().collect::<Vec<_>>(),
        ["SENT", "GONE"],
        "{stderr}"
    );
}

#[tokio::test]
async fn without_functions_nothing_is_given_and_no_credential_is_added() {
    let backend = Backend::echo().await;
    let gw = TestGateway::start(&format!(
        "[websocket.chat]\n[websocket.chat.routes]\n\"$default\" = {{ integration = \"backend\" }}\n\
         [integrations.backend]\ntype = \"http\"\nurl = \"{}\"\n",
        backend.url
    ))
    .await;
    assert!(gw.function_environment().is_empty());
}

#[tokio::test]
async fn the_minted_credential_may_not_call_the_admin_api() {
    let backend = Backend::echo().await;
    let code = tempfile::tempdir().expect("tempdir");
    let gw = TestGateway::start(&config(&backend, code.path())).await;
    // boto3 signing an identity-admin call with the functions' credential: refused.
    let script = r#"
import os, sys
import boto3
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
import urllib.request

url = sys.argv[1]
request = AWSRequest(method="GET", url=url)
SigV4Auth(boto3.Session().get_credentials(), "execute-api", os.environ["AWS_REGION"]).add_auth(request)
try:
    urllib.request.urlopen(urllib.request.Request(url, headers=dict(request.headers)))
    print("ALLOWED")
except urllib.error.HTTPError as e:
    print(e.code)
"#;
    let url = gw.admin_url("/admin/pools");
    let (ok, stdout, stderr) = run_as_function(&gw, script, &[&url]).await;
    assert!(ok, "{stdout}\n{stderr}");
    assert_eq!(stdout.trim(), "403", "{stderr}");
}

/// A `$default` handler that answers through the management API, as the AWS samples do.
const PUSHER_PY: &str = r#"
import boto3

def handler(event, context):
    rc = event["requestContext"]
    client = boto3.client("apigatewaymanagementapi",
                          endpoint_url=f"https://{rc['domainName']}/{rc['stage']}")
    client.post_to_connection(ConnectionId=rc["connectionId"],
                              Data=("pushed: " + event["body"]).encode())
    return {"statusCode": 200}
"#;

#[tokio::test]
async fn a_python_function_pushes_through_boto3_while_the_admin_listener_has_tls() {
    let dir = tempfile::tempdir().expect("tmp");
    let ca = super::tls::TestCa::new();
    let (cert, key, _) = ca.leaf("admin", 2100);
    let (cert, key) = super::tls::write_pair(dir.path(), "admin", &cert, &key);
    let code = dir.path().join("code");
    std::fs::create_dir_all(&code).expect("mkdir");
    std::fs::write(code.join("app.py"), PUSHER_PY).expect("write");
    let backend = Backend::echo().await;
    let toml = format!(
        "[server]\nlisten = \"127.0.0.1:0\"\nadmin_listen = \"127.0.0.1:0\"\nshutdown_grace = \"2s\"\n\
         admin_tls = {{ cert = {cert:?}, key = {key:?} }}\n\n\
         [websocket.chat]\nstage = \"prod\"\n[websocket.chat.routes]\n\
         \"$connect\" = {{ integration = \"backend\" }}\n\
         \"$default\" = {{ integration = \"pusher\" }}\n\n\
         [integrations.backend]\ntype = \"http\"\nurl = \"{}\"\n\n\
         [integrations.pusher]\ntype = \"lambda\"\nfunction = \"pusher\"\n\n\
         [functions.pusher]\nruntime = \"python3.11\"\nhandler = \"app.handler\"\n\
         code = \"{}\"\ntimeout = \"30s\"\n",
        backend.url,
        code.display()
    );
    let gw = TestGateway::start_full(&toml).await;
    // The admin listener speaks TLS only.
    let plain = reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("client")
        .get(gw.admin_url("/healthz"))
        .send()
        .await;
    assert!(plain.is_err(), "plain HTTP answered: {plain:?}");

    let (mut client, _) = connect_and_id(&gw, "/chat", &backend).await;
    send_text(&mut client, "hi").await;
    assert_eq!(next_text(&mut client).await, "pushed: hi");
    send_text(&mut client, "again").await;
    assert_eq!(next_text(&mut client).await, "pushed: again");
    gw.shutdown().await;
}
