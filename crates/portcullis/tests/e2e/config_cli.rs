//! `portcullis check`: valid files pass, bad files list every problem with file:line:column.

use std::process::Command;

fn check(path: &std::path::Path) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_portcullis"))
        .args(["check", "--config"])
        .arg(path)
        .env_remove("PORTCULLIS_ADMIN_SECRET")
        .output()
        .expect("run");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn every_example_config_is_valid() {
    let examples = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples");
    let mut seen = 0;
    for dir in [examples.clone(), examples.join("seeds")] {
        for entry in std::fs::read_dir(&dir).expect("examples dir") {
            let path = entry.expect("entry").path();
            if path.extension().is_some_and(|e| e == "toml") {
                let (ok, stdout, stderr) = check(&path);
                assert!(ok, "{} is invalid:\n{stderr}", path.display());
                assert!(!stdout.is_empty());
                seen += 1;
            }
        }
    }
    assert!(seen >= 4, "no example configs found");
}

#[test]
fn check_reports_all_errors_with_positions() {
    let dir = tempfile::tempdir().expect("tmp");
    let path = dir.path().join("bad.toml");
    std::fs::write(
        &path,
        "[server]\nlisten = \"127.0.0.1:8080\"\nadmin_listen = \"127.0.0.1:9090\"\nlisen = 1\n\n\
         [websocket.chat]\nidle_timeout = \"ten minutes\"\n\n[websocket.chat.routes]\n\
         sendmessage = { integration = \"backnd\" }\n",
    )
    .expect("write");
    let (ok, _, stderr) = check(&path);
    assert!(!ok);
    assert!(stderr.contains("bad.toml:4:1: server.lisen"), "{stderr}");
    assert!(
        stderr.contains("bad.toml:7:16: websocket.chat.idle_timeout"),
        "{stderr}"
    );
    assert!(
        stderr.contains(
            "websocket.chat.routes.sendmessage.integration: no integration named \"backnd\""
        ),
        "{stderr}"
    );
    assert!(stderr.contains("bad.toml:10:"), "{stderr}");
}

#[test]
fn check_redacts_secrets_and_requires_env_vars() {
    let dir = tempfile::tempdir().expect("tmp");
    let path = dir.path().join("secret.toml");
    std::fs::write(
        &path,
        "[server]\nlisten = \"127.0.0.1:8080\"\nadmin_listen = \"127.0.0.1:9090\"\n\
         [management]\ncredentials = [{ access_key_id = \"AK\", secret_access_key = \"${PORTCULLIS_TEST_UNSET_VAR:-topsecretvalue}\" }]\n",
    )
    .expect("write");
    let (ok, stdout, stderr) = check(&path);
    assert!(ok, "{stderr}");
    assert!(!stdout.contains("topsecretvalue"), "{stdout}");
    assert!(stdout.contains("<redacted>"), "{stdout}");

    std::fs::write(
        &path,
        "[server]\nlisten = \"127.0.0.1:8080\"\nadmin_listen = \"127.0.0.1:9090\"\n\
         [management]\ncredentials = [{ access_key_id = \"AK\", secret_access_key = \"${PORTCULLIS_TEST_UNSET_VAR}\" }]\n",
    )
    .expect("write");
    let (ok, _, stderr) = check(&path);
    assert!(!ok);
    assert!(stderr.contains("PORTCULLIS_TEST_UNSET_VAR"), "{stderr}");
    assert!(stderr.contains("secret.toml:5:"), "{stderr}");
}

#[test]
fn serve_refuses_a_bad_config_with_exit_code_2() {
    let dir = tempfile::tempdir().expect("tmp");
    let path = dir.path().join("bad.toml");
    std::fs::write(&path, "[server]\nlisten = \"not an address\"\n").expect("write");
    let out = Command::new(env!("CARGO_BIN_EXE_portcullis"))
        .args(["serve", "--config"])
        .arg(&path)
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("bad.toml:2:"), "{stderr}");
}
