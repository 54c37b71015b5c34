#![allow(clippy::unwrap_used)]

use std::path::Path;

use chrono::Datelike;
use rcgen::{CertificateParams, KeyPair, SignatureAlgorithm};

use super::*;

const FAR: i64 = 4_102_444_800; // 2100-01-01

/// A self-signed certificate for `name` ending at `not_after` (Unix seconds, rounded to the
/// day), and its key.
fn self_signed(alg: &'static SignatureAlgorithm, name: &str, not_after: i64) -> (String, String) {
    let key = KeyPair::generate_for(alg).unwrap();
    let mut params = CertificateParams::new(vec![name.to_owned()]).unwrap();
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, name);
    params.not_before = rcgen::date_time_ymd(2020, 1, 1);
    let end = chrono::DateTime::from_timestamp(not_after, 0).unwrap();
    params.not_after = rcgen::date_time_ymd(end.year(), end.month() as u8, end.day() as u8);
    (params.self_signed(&key).unwrap().pem(), key.serialize_pem())
}

fn write(dir: &Path, cert: &str, key: &str) -> TlsFiles {
    std::fs::write(dir.join("cert.pem"), cert).unwrap();
    std::fs::write(dir.join("key.pem"), key).unwrap();
    TlsFiles {
        config_key: "server.tls",
        cert: dir.join("cert.pem"),
        key: dir.join("key.pem"),
    }
}

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

#[test]
fn ecdsa_ed25519_and_rsa_pairs_load() {
    let dir = tempfile::tempdir().unwrap();
    for alg in [
        &rcgen::PKCS_ECDSA_P256_SHA256,
        &rcgen::PKCS_ECDSA_P384_SHA384,
        &rcgen::PKCS_ED25519,
        &rcgen::PKCS_RSA_SHA256,
    ] {
        let (cert, key) = self_signed(alg, "gw.example", FAR);
        let files = write(dir.path(), &cert, &key);
        let loaded = load(&files, now()).unwrap_or_else(|e| panic!("{alg:?}: {e}"));
        assert!(loaded.subject.contains("gw.example"), "{}", loaded.subject);
        assert!(loaded.expiry_warning(&files, now()).is_none());
    }
}

#[test]
fn a_key_of_another_certificate_is_refused_naming_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, _) = self_signed(&rcgen::PKCS_ECDSA_P256_SHA256, "a", FAR);
    let (_, other_key) = self_signed(&rcgen::PKCS_ECDSA_P256_SHA256, "b", FAR);
    let files = write(dir.path(), &cert, &other_key);
    let problem = load(&files, now()).unwrap_err();
    assert!(
        problem.starts_with(&format!("server.tls.key: {}: ", files.key.display())),
        "{problem}"
    );
    assert!(
        problem.contains("does not belong to the certificate"),
        "{problem}"
    );
}

#[test]
fn an_expired_certificate_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = self_signed(&rcgen::PKCS_ECDSA_P256_SHA256, "old", 1_609_459_200);
    let files = write(dir.path(), &cert, &key);
    let problem = load(&files, now()).unwrap_err();
    assert!(problem.starts_with("server.tls.cert: "), "{problem}");
    assert!(problem.contains("expired on 2021-01-01"), "{problem}");
}

#[test]
fn a_certificate_ending_within_two_weeks_is_warned_about() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = self_signed(
        &rcgen::PKCS_ECDSA_P256_SHA256,
        "soon",
        now() + 5 * 24 * 3600,
    );
    let files = write(dir.path(), &cert, &key);
    let loaded = load(&files, now()).unwrap();
    let warning = loaded.expiry_warning(&files, now()).unwrap();
    assert!(warning.contains("certificate expires in"), "{warning}");
}

#[test]
fn missing_and_garbage_files_are_named_and_key_text_is_never_echoed() {
    let dir = tempfile::tempdir().unwrap();
    let files = TlsFiles {
        config_key: "server.admin_tls",
        cert: dir.path().join("nope.pem"),
        key: dir.path().join("nope.key"),
    };
    let problem = load(&files, now()).unwrap_err();
    assert!(
        problem.starts_with(&format!(
            "server.admin_tls.cert: {}: ",
            files.cert.display()
        )),
        "{problem}"
    );

    let (cert, _) = self_signed(&rcgen::PKCS_ECDSA_P256_SHA256, "a", FAR);
    let secret = "-----BEGIN PRIVATE KEY-----\nTOPSECRETMATERIAL!!\n-----END PRIVATE KEY-----\n";
    let files = write(dir.path(), &cert, secret);
    let problem = load(&files, now()).unwrap_err();
    assert!(problem.starts_with("server.tls.key: "), "{problem}");
    assert!(!problem.contains("TOPSECRET"), "{problem}");

    let files = write(dir.path(), "not a certificate", secret);
    let problem = load(&files, now()).unwrap_err();
    assert!(
        problem.contains("server.tls.cert") && problem.contains("no CERTIFICATE block"),
        "{problem}"
    );
}

#[tokio::test]
async fn the_watcher_swaps_in_a_good_new_pair_and_keeps_the_old_one_on_a_bad_one() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = self_signed(&rcgen::PKCS_ECDSA_P256_SHA256, "first", FAR);
    let files = write(dir.path(), &cert, &key);
    let loaded = load(&files, now()).unwrap();
    let first = loaded.key.cert[0].clone();
    let current = Arc::new(CurrentCert::new(loaded.key));
    let metrics = Arc::new(Metrics::new());
    let watcher = Watcher {
        listener: "public",
        stamp: stamp(&files),
        files: files.clone(),
        current: current.clone(),
        metrics: metrics.clone(),
    };
    let stop = CancellationToken::new();
    let task = tokio::spawn(watcher.run(Duration::from_millis(20), stop.clone()));

    // A key that does not match: logged, counted, the first certificate stays.
    let (_, wrong_key) = self_signed(&rcgen::PKCS_ECDSA_P256_SHA256, "x", FAR);
    std::fs::write(&files.key, format!("{wrong_key}\n")).unwrap();
    wait_for(|| metrics.render().contains("result=\"failed\"} 1")).await;
    assert_eq!(current.get().cert[0], first);

    // A renewal: the new pair is used.
    let (cert, key) = self_signed(&rcgen::PKCS_ED25519, "second", FAR);
    write(dir.path(), &cert, &key);
    wait_for(|| current.get().cert[0] != first).await;
    assert!(metrics.render().contains("result=\"ok\"} 1"));
    stop.cancel();
    task.await.unwrap();
}

async fn wait_for(done: impl Fn() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while !done() {
        assert!(tokio::time::Instant::now() < deadline, "not in time");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[test]
fn check_names_every_unusable_file_and_accepts_admin_tls_with_functions() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = self_signed(&rcgen::PKCS_ECDSA_P256_SHA256, "good", FAR);
    let files = write(dir.path(), &cert, &key);
    let source = format!(
        "[server]\nlisten = \"127.0.0.1:0\"\nadmin_listen = \"127.0.0.1:0\"\n\
         tls = {{ cert = {:?}, key = {:?} }}\n\
         admin_tls = {{ cert = {:?}, key = \"/nonexistent/admin.key\" }}\n\
         ca_file = {:?}\n\n\
         [functions.f]\nruntime = \"python3.11\"\nhandler = \"app.handler\"\ncode = \"f\"\n",
        files.cert, files.key, files.cert, files.key
    );
    let config = portcullis_config::load_str(&source, "t.toml", &|_| None).unwrap();
    let (problems, warnings) = check(&config);
    assert!(warnings.is_empty(), "{warnings:?}");
    // `admin_tls` with `[functions]` is no problem: their callbacks reach it over TLS.
    assert_eq!(problems.len(), 2, "{problems:#?}");
    assert!(problems[0].starts_with("server.admin_tls.key: /nonexistent/admin.key: "));
    // A key file is no CA bundle.
    assert!(
        problems[1].starts_with("server.ca_file: "),
        "{}",
        problems[1]
    );
    assert!(
        problems[1].contains("no CERTIFICATE block"),
        "{}",
        problems[1]
    );
}

/// A TLS handshake over an in-memory pipe: the server serves `served`, the client is the
/// gateway's own admin client pinned to `pinned`.
async fn own_admin_handshake(served: &Arc<CurrentCert>, pinned: &Arc<CurrentCert>) -> bool {
    let acceptor = TlsAcceptor::from(Arc::new(server_config(served.clone()).unwrap()));
    let connector =
        tokio_rustls::TlsConnector::from(own_admin_client_config(pinned.clone()).unwrap());
    let (client, server) = tokio::io::duplex(64 * 1024);
    let name = rustls::pki_types::ServerName::try_from("127.0.0.1").unwrap();
    let (client, server) = tokio::join!(connector.connect(name, client), acceptor.accept(server));
    client.is_ok() && server.is_ok()
}

#[tokio::test]
async fn the_own_admin_client_trusts_the_served_certificate_and_no_other() {
    let dir = tempfile::tempdir().unwrap();
    let current = |name: &str| {
        let (cert, key) = self_signed(&rcgen::PKCS_ECDSA_P256_SHA256, name, FAR);
        let files = write(dir.path(), &cert, &key);
        Arc::new(CurrentCert::new(load(&files, now()).unwrap().key))
    };
    // Names and CAs do not matter (self-signed, for another name than the one dialled)...
    let admin = current("admin.example");
    assert!(own_admin_handshake(&admin, &admin).await);
    // ...the certificate does: another one, even for the same name, is refused.
    let impostor = current("admin.example");
    assert!(!own_admin_handshake(&impostor, &admin).await);
    // A renewal swaps what is trusted along with what is served.
    admin.set(impostor.get());
    assert!(own_admin_handshake(&admin, &admin).await);
}
