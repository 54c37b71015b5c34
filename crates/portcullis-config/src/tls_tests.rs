//! `server.tls`, `server.admin_tls`, `server.ca_file`: parsed, defaulted, resolved, rendered.

use crate::{load_file, load_str, render_redacted};

const BASE: &str = "[server]\nlisten = \"127.0.0.1:8443\"\nadmin_listen = \"127.0.0.1:9090\"\n";

#[test]
fn tls_makes_the_default_public_url_https() {
    let source = format!("{BASE}tls = {{ cert = \"c.pem\", key = \"k.pem\" }}\n");
    let config = load_str(&source, "t.toml", &|_| None).unwrap();
    assert_eq!(config.server.public_url, "https://127.0.0.1:8443");
    let plain = load_str(BASE, "t.toml", &|_| None).unwrap();
    assert_eq!(plain.server.public_url, "http://127.0.0.1:8443");
    assert!(plain.server.admin_tls.is_none() && plain.server.ca_file.is_none());
}

#[test]
fn admin_tls_and_ca_file_are_read_and_rendered() {
    let source = format!(
        "{BASE}admin_tls = {{ cert = \"a.pem\", key = \"a.key\" }}\nca_file = \"ca.pem\"\n"
    );
    let config = load_str(&source, "t.toml", &|_| None).unwrap();
    let admin = config.server.admin_tls.as_ref().unwrap();
    assert_eq!(
        (admin.cert.as_str(), admin.key.as_str()),
        ("a.pem", "a.key")
    );
    assert_eq!(config.server.ca_file.as_deref(), Some("ca.pem"));
    let rendered = render_redacted(&config);
    assert!(
        rendered.contains("admin_tls = { cert = \"a.pem\", key = \"a.key\" }"),
        "{rendered}"
    );
    assert!(rendered.contains("ca_file = \"ca.pem\""), "{rendered}");
    // The rendering is a valid file with the same meaning.
    let again = load_str(&rendered, "r.toml", &|_| None).unwrap();
    assert_eq!(again.server.ca_file.as_deref(), Some("ca.pem"));
}

#[test]
fn a_tls_table_needs_both_files() {
    let source = format!("{BASE}tls = {{ cert = \"c.pem\" }}\nca_file = \"\"\n");
    let errors = load_str(&source, "t.toml", &|_| None)
        .unwrap_err()
        .to_string();
    assert!(errors.contains("server.tls.key"), "{errors}");
    assert!(
        errors.contains("server.ca_file: must not be empty"),
        "{errors}"
    );
}

#[test]
fn relative_files_belong_to_the_configuration_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("gw.toml");
    std::fs::write(
        &path,
        format!(
            "{BASE}tls = {{ cert = \"certs/c.pem\", key = \"/etc/k.pem\" }}\n\
             admin_tls = {{ cert = \"a.pem\", key = \"a.key\" }}\nca_file = \"ca.pem\"\n"
        ),
    )
    .unwrap();
    let config = load_file(&path).unwrap();
    let tls = config.server.tls.as_ref().unwrap();
    assert_eq!(
        tls.cert,
        dir.path().join("certs/c.pem").to_string_lossy().as_ref()
    );
    assert_eq!(tls.key, "/etc/k.pem");
    let admin = config.server.admin_tls.as_ref().unwrap();
    assert_eq!(
        admin.key,
        dir.path().join("a.key").to_string_lossy().as_ref()
    );
    assert_eq!(
        config.server.ca_file.as_deref(),
        Some(dir.path().join("ca.pem").to_string_lossy().as_ref())
    );
}
