//! TLS on both listeners with a test CA: wss:// and https:// (h2 and HTTP/1.1 by ALPN), the
//! admin listener, a certificate renewed on disk under a live connection, unusable files
//! refused by `check` and `serve`, plain HTTP refused, and an https integration and an
//! identity provider's code webhook trusted through `ca_file`.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use portcullis_testkit::*;
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;

type Wss = WebSocketStream<tokio_rustls::client::TlsStream<TcpStream>>;

/// A certificate authority for the tests, and leaves it signs for `localhost`/127.0.0.1.
pub(crate) struct TestCa {
    issuer: Issuer<'static, KeyPair>,
    pem: String,
    der: CertificateDer<'static>,
}

impl TestCa {
    /// The CA's certificate (PEM), what a `ca_file` holds.
    pub(crate) fn pem(&self) -> &str {
        &self.pem
    }

    pub(crate) fn new() -> TestCa {
        let key = KeyPair::generate().expect("key");
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("params");
        params
            .distinguished_name
            .push(DnType::CommonName, "Portcullis test CA");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let cert = params.self_signed(&key).expect("self-signed");
        TestCa {
            pem: cert.pem(),
            der: cert.der().clone(),
            issuer: Issuer::new(params, key),
        }
    }

    /// A leaf named `cn`, valid from 2020 to `until` (year), as (chain PEM, key PEM, DER).
    pub(crate) fn leaf(&self, cn: &str, until: i32) -> (String, String, CertificateDer<'static>) {
        let key = KeyPair::generate().expect("key");
        let mut params =
            CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()])
                .expect("params");
        params.distinguished_name.push(DnType::CommonName, cn);
        params.not_before = rcgen::date_time_ymd(2020, 1, 1);
        params.not_after = rcgen::date_time_ymd(until, 1, 1);
        let cert = params.signed_by(&key, &self.issuer).expect("signed");
        (cert.pem(), key.serialize_pem(), cert.der().clone())
    }

    fn client_config(&self, alpn: &[&[u8]]) -> Arc<rustls::ClientConfig> {
        let mut roots = rustls::RootCertStore::empty();
        roots.add(self.der.clone()).expect("root");
        let mut config = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::aws_lc_rs::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
        config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
        Arc::new(config)
    }

    /// A reqwest client trusting only this CA.
    fn https_client(&self, http1_only: bool) -> reqwest::Client {
        let ca = reqwest::Certificate::from_pem(self.pem.as_bytes()).expect("ca");
        let builder = reqwest::Client::builder()
            .no_proxy()
            .tls_certs_only([ca])
            .timeout(Duration::from_secs(10));
        let builder = if http1_only {
            builder.http1_only()
        } else {
            builder
        };
        builder.build().expect("client")
    }

    /// TLS to `addr` (ALPN http/1.1): the stream and the certificate the server presented.
    pub(crate) async fn tls_connect(
        &self,
        addr: std::net::SocketAddr,
    ) -> (
        tokio_rustls::client::TlsStream<TcpStream>,
        CertificateDer<'static>,
    ) {
        let tcp = TcpStream::connect(addr).await.expect("tcp");
        let connector = TlsConnector::from(self.client_config(&[b"http/1.1"]));
        let name = ServerName::try_from("localhost").expect("name");
        let stream = connector.connect(name, tcp).await.expect("handshake");
        let presented = stream
            .get_ref()
            .1
            .peer_certificates()
            .expect("certificates")[0]
            .clone();
        (stream, presented)
    }

    /// A wss:// connection to `path`, and the certificate the server presented.
    async fn wss(&self, addr: std::net::SocketAddr, path: &str) -> (Wss, CertificateDer<'static>) {
        let (stream, presented) = self.tls_connect(addr).await;
        let url = format!("wss://localhost:{}{path}", addr.port());
        let (ws, response) = tokio_tungstenite::client_async(url, stream)
            .await
            .expect("upgrade");
        assert_eq!(response.status(), 101);
        (ws, presented)
    }
}

pub(crate) fn write_pair(dir: &Path, name: &str, cert: &str, key: &str) -> (PathBuf, PathBuf) {
    let (c, k) = (
        dir.join(format!("{name}.pem")),
        dir.join(format!("{name}.key")),
    );
    std::fs::write(&c, cert).expect("cert");
    std::fs::write(&k, key).expect("key");
    (c, k)
}

async fn echo_over(ws: &mut Wss, text: &str) -> String {
    ws.send(Message::text(text)).await.expect("send");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        match tokio::time::timeout_at(deadline, ws.next()).await {
            Ok(Some(Ok(Message::Text(t)))) => return t.to_string(),
            Ok(Some(Ok(_))) => continue,
            other => panic!("no echo: {other:?}"),
        }
    }
}

/// A gateway with TLS on both listeners, a WebSocket API `/chat` and an HTTP API `/api`.
async fn tls_gateway(dir: &Path, ca: &TestCa, backend: &Backend) -> TestGateway {
    let (cert, key, _) = ca.leaf("public one", 2100);
    let (c, k) = write_pair(dir, "public", &cert, &key);
    let (acert, akey, _) = ca.leaf("admin", 2100);
    let (ac, ak) = write_pair(dir, "admin", &acert, &akey);
    let toml = format!(
        "[server]\nlisten = \"127.0.0.1:0\"\nadmin_listen = \"127.0.0.1:0\"\nshutdown_grace = \"2s\"\n\
         tls = {{ cert = {c:?}, key = {k:?} }}\nadmin_tls = {{ cert = {ac:?}, key = {ak:?} }}\n\n\
         [management]\ncredentials = [{{ access_key_id = \"{ACCESS_KEY_ID}\", secret_access_key = \"{SECRET_ACCESS_KEY}\" }}]\n\n\
         [websocket.chat]\n[websocket.chat.routes]\n\"$connect\" = {{ integration = \"backend\" }}\n\
         \"$default\" = {{ integration = \"backend\", response = true }}\n\n\
         [http.api]\nbase_path = \"/api\"\n[http.api.routes]\n\"GET /hello\" = {{ integration = \"backend\" }}\n\n\
         [integrations.backend]\ntype = \"http\"\nurl = \"{}\"\ntimeout = \"5s\"\n",
        backend.url
    );
    TestGateway::start_full(&toml).await
}

fn backend_reply(e: &serde_json::Value) -> Reply {
    match e["requestContext"]["eventType"].as_str() {
        Some("MESSAGE") => Reply::body(e["body"].as_str().unwrap_or_default()),
        Some(_) => Reply::ok(),
        // An HTTP API event (payload 2.0).
        None => Reply::Json(
            200,
            json!({"statusCode": 200, "body": "hello over tls"}).to_string(),
        ),
    }
}

#[tokio::test]
async fn wss_and_https_over_h2_and_http1_with_the_events_saying_https() {
    let dir = tempfile::tempdir().expect("tmp");
    let ca = TestCa::new();
    let backend = Backend::start(backend_reply).await;
    let gw = tls_gateway(dir.path(), &ca, &backend).await;
    let port = gw.listen.port();

    let (mut ws, _) = ca.wss(gw.listen, "/chat").await;
    assert_eq!(echo_over(&mut ws, "over wss").await, "over wss");
    let connect = backend
        .wait_for(|e| e["requestContext"]["eventType"] == "CONNECT")
        .await;
    assert_eq!(
        connect["headers"]["X-Forwarded-Proto"], "https",
        "{connect:#}"
    );
    assert_eq!(
        connect["multiValueHeaders"]["X-Forwarded-Proto"][0],
        "https"
    );

    for (http1_only, version) in [
        (false, http::Version::HTTP_2),
        (true, http::Version::HTTP_11),
    ] {
        let response = ca
            .https_client(http1_only)
            .get(format!("https://localhost:{port}/api/hello"))
            .send()
            .await
            .expect("https request");
        assert_eq!(response.version(), version);
        assert_eq!(response.status(), 200);
        assert_eq!(response.text().await.expect("body"), "hello over tls");
    }

    // The admin listener speaks TLS too, with its own certificate.
    let (mut admin, presented) = ca.tls_connect(gw.admin).await;
    let (_, parsed) = x509_parser::parse_x509_certificate(&presented).expect("x509");
    assert!(parsed.subject().to_string().contains("admin"));
    admin
        .write_all(b"GET /healthz HTTP/1.1\r\nhost: localhost\r\nconnection: close\r\n\r\n")
        .await
        .expect("write");
    let mut answer = String::new();
    admin.read_to_string(&mut answer).await.ok();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");

    // TLS 1.2 clients are served too.
    let mut roots = rustls::RootCertStore::empty();
    roots.add(ca.der.clone()).expect("root");
    let tls12 = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::aws_lc_rs::default_provider(),
    ))
    .with_protocol_versions(&[&rustls::version::TLS12])
    .expect("versions")
    .with_root_certificates(roots)
    .with_no_client_auth();
    let tcp = TcpStream::connect(gw.listen).await.expect("tcp");
    let name = ServerName::try_from("localhost").expect("name");
    let stream = TlsConnector::from(Arc::new(tls12))
        .connect(name, tcp)
        .await
        .expect("TLS 1.2 handshake");
    assert_eq!(
        stream.get_ref().1.protocol_version(),
        Some(rustls::ProtocolVersion::TLSv1_2)
    );

    // Plain HTTP to a TLS listener is not served.
    let plain = reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(15))
        .build()
        .expect("client")
        .get(format!("http://127.0.0.1:{port}/api/hello"))
        .send()
        .await;
    assert!(plain.is_err(), "plain HTTP was answered: {plain:?}");

    assert_eq!(echo_over(&mut ws, "still there").await, "still there");
    gw.shutdown().await;
}

#[tokio::test]
async fn a_renewed_certificate_serves_new_handshakes_while_open_connections_keep_theirs() {
    let dir = tempfile::tempdir().expect("tmp");
    let ca = TestCa::new();
    let backend = Backend::start(backend_reply).await;
    let gw = tls_gateway(dir.path(), &ca, &backend).await;

    let (mut old, first) = ca.wss(gw.listen, "/chat").await;
    assert_eq!(echo_over(&mut old, "before").await, "before");

    // A broken renewal (a key of another certificate) is refused; the old pair stays.
    let (_, stray_key, _) = ca.leaf("stray", 2100);
    std::fs::write(dir.path().join("public.key"), &stray_key).expect("write");
    let metrics_url = format!("https://localhost:{}/metrics", gw.admin.port());
    let admin = ca.https_client(false);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let text = admin
            .get(&metrics_url)
            .send()
            .await
            .expect("metrics")
            .text()
            .await
            .expect("text");
        if text.contains(
            "portcullis_tls_certificate_reloads_total{listener=\"public\",result=\"failed\"} 1",
        ) {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no failed reload counted:\n{text}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let (_, still) = ca.tls_connect(gw.listen).await;
    assert_eq!(still, first, "a bad renewal replaced the certificate");

    // A good renewal, written by rename as certificate tools do.
    let (cert, key, renewed) = ca.leaf("public two", 2101);
    std::fs::write(dir.path().join("next.pem"), &cert).expect("write");
    std::fs::write(dir.path().join("next.key"), &key).expect("write");
    std::fs::rename(dir.path().join("next.key"), dir.path().join("public.key")).expect("mv");
    std::fs::rename(dir.path().join("next.pem"), dir.path().join("public.pem")).expect("mv");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let (_, presented) = ca.tls_connect(gw.listen).await;
        if presented == renewed {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the renewed certificate is not served"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let (mut new, presented) = ca.wss(gw.listen, "/chat").await;
    let (_, parsed) = x509_parser::parse_x509_certificate(&presented).expect("x509");
    assert!(parsed.subject().to_string().contains("public two"));
    assert_eq!(echo_over(&mut new, "after").await, "after");
    // The connection made before the renewal was not touched.
    assert_eq!(echo_over(&mut old, "old one").await, "old one");
    gw.shutdown().await;
}

fn run(args: &[&str], config: &Path) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_portcullis"))
        .args(args)
        .arg(config)
        .env("PORTCULLIS_LOG", "warn")
        .output()
        .expect("run");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn unusable_tls_files_fail_check_and_serve_with_one_line_naming_key_and_file() {
    let dir = tempfile::tempdir().expect("tmp");
    let ca = TestCa::new();
    let (cert, key, _) = ca.leaf("good", 2100);
    let (_, other_key, _) = ca.leaf("other", 2100);
    let (expired, expired_key, _) = ca.leaf("old", 2021);
    let secret_marker = "MIGHAgEAMBMGByqGSM49";
    let cases = [
        (
            "mismatch",
            cert.as_str(),
            other_key.as_str(),
            "server.tls.key: ",
            "does not belong to the certificate",
        ),
        (
            "expired",
            expired.as_str(),
            expired_key.as_str(),
            "server.tls.cert: ",
            "expired on 2021-01-01",
        ),
        (
            "badkey",
            cert.as_str(),
            "-----BEGIN PRIVATE KEY-----\nMIGHAgEAMBMGByqGSM49garbage\n-----END PRIVATE KEY-----\n",
            "server.tls.key: ",
            "private key",
        ),
        ("missing", "", "", "server.tls.cert: ", "No such file"),
    ];
    for (name, cert, key, key_path, reason) in cases {
        let (c, k) = if name == "missing" {
            (dir.path().join("absent.pem"), dir.path().join("absent.key"))
        } else {
            write_pair(dir.path(), name, cert, key)
        };
        let config = dir.path().join(format!("{name}.toml"));
        std::fs::write(
            &config,
            format!(
                "[server]\nlisten = \"127.0.0.1:0\"\nadmin_listen = \"127.0.0.1:0\"\n\
                 tls = {{ cert = {:?}, key = {:?} }}\n",
                c.file_name().expect("name"),
                k.file_name().expect("name")
            ),
        )
        .expect("config");
        let file = if key_path.contains("key") { &k } else { &c };
        for args in [&["check", "--config"][..], &["serve", "--config"][..]] {
            let (ok, stderr) = run(args, &config);
            assert!(!ok, "{name}: {args:?} accepted it:\n{stderr}");
            let line = format!("{}: {key_path}{}: ", config.display(), file.display());
            assert!(
                stderr.contains(&line),
                "{name} {args:?}: no line starting {line:?}:\n{stderr}"
            );
            assert!(
                stderr.contains(reason),
                "{name} {args:?}: {reason:?} not said:\n{stderr}"
            );
            assert!(
                !stderr.contains(secret_marker),
                "key material printed:\n{stderr}"
            );
        }
    }

    // A good pair passes `check`; a `ca_file` without certificates does not.
    let (c, k) = write_pair(dir.path(), "good", &cert, &key);
    std::fs::write(dir.path().join("empty-ca.pem"), "nothing here\n").expect("ca");
    let config = dir.path().join("good.toml");
    let server = format!(
        "[server]\nlisten = \"127.0.0.1:0\"\nadmin_listen = \"127.0.0.1:0\"\ntls = {{ cert = {c:?}, key = {k:?} }}\n"
    );
    std::fs::write(&config, &server).expect("config");
    let (ok, stderr) = run(&["check", "--config"], &config);
    assert!(ok, "{stderr}");
    std::fs::write(&config, format!("{server}ca_file = \"empty-ca.pem\"\n")).expect("config");
    let (ok, stderr) = run(&["check", "--config"], &config);
    assert!(!ok);
    assert!(
        stderr.contains("server.ca_file: ") && stderr.contains("no CERTIFICATE block"),
        "{stderr}"
    );
}

/// What [`https_server`] keeps for a client that refused its certificate.
const REFUSED: &str = "(TLS handshake refused)";

/// An https server with a certificate of `ca` (HTTP/1.1, one request per connection): keeps
/// every request it reads (head and body, as text; [`REFUSED`] for a failed handshake) and
/// answers each with `answer`. Returns its port and the requests.
async fn https_server(ca: &TestCa, answer: String) -> (u16, Arc<Mutex<Vec<String>>>) {
    let (cert, key, _) = ca.leaf("backend", 2100);
    let chain = vec![CertificateDer::from_pem_slice(cert.as_bytes()).expect("certificate")];
    let key = rustls::pki_types::PrivateKeyDer::from_pem_slice(key.as_bytes()).expect("key");
    let mut config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::aws_lc_rs::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("versions")
    .with_no_client_auth()
    .with_single_cert(chain, key)
    .expect("server config");
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let requests = Arc::new(Mutex::new(Vec::new()));
    let seen = requests.clone();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let (acceptor, answer, seen) = (acceptor.clone(), answer.clone(), seen.clone());
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(tcp).await else {
                    seen.lock().expect("requests").push(REFUSED.to_owned());
                    return;
                };
                let Some(request) = read_request(&mut tls).await else {
                    return;
                };
                seen.lock().expect("requests").push(request);
                let _ = tls.write_all(answer.as_bytes()).await;
                let _ = tls.shutdown().await;
            });
        }
    });
    (port, requests)
}

/// One HTTP/1.1 request: the head and the `content-length` bytes after it.
async fn read_request(tls: &mut tokio_rustls::server::TlsStream<TcpStream>) -> Option<String> {
    let mut read = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        if let Some(end) = read.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&read[..end]).to_ascii_lowercase();
            let length = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .and_then(|v| v.trim().parse::<usize>().ok())
                .unwrap_or(0);
            if read.len() >= end + 4 + length {
                return Some(String::from_utf8_lossy(&read).into_owned());
            }
        }
        match tls.read(&mut buf).await {
            Ok(0) | Err(_) => return None,
            Ok(n) => read.extend_from_slice(&buf[..n]),
        }
    }
}

/// An https backend with a certificate of `ca`: answers every request with a Lambda proxy
/// result.
async fn https_backend(ca: &TestCa) -> String {
    let body = json!({"statusCode": 200, "body": "from the https backend"}).to_string();
    let answer = format!(
        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    let (port, _) = https_server(ca, answer).await;
    format!("https://localhost:{port}/events")
}

#[tokio::test]
async fn an_https_integration_is_trusted_through_ca_file_only() {
    let dir = tempfile::tempdir().expect("tmp");
    let ca = TestCa::new();
    let url = https_backend(&ca).await;
    let ca_file = dir.path().join("ca.pem");
    std::fs::write(&ca_file, &ca.pem).expect("ca");
    let apis = format!(
        "[http.api]\nbase_path = \"/api\"\n[http.api.routes]\n\"GET /hello\" = {{ integration = \"secure\" }}\n\n\
         [integrations.secure]\ntype = \"http\"\nurl = \"{url}\"\ntimeout = \"5s\"\n"
    );
    let server = "[server]\nlisten = \"127.0.0.1:0\"\nadmin_listen = \"127.0.0.1:0\"\nshutdown_grace = \"1s\"\n";
    let with_ca =
        TestGateway::start_full(&format!("{server}ca_file = {ca_file:?}\n\n{apis}")).await;
    let response = reqwest::get(with_ca.http_url("/api/hello"))
        .await
        .expect("request");
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.text().await.expect("body"),
        "from the https backend"
    );
    with_ca.shutdown().await;

    // Without the CA the backend's certificate is not trusted.
    let without = TestGateway::start_full(&format!("{server}\n{apis}")).await;
    let response = reqwest::get(without.http_url("/api/hello"))
        .await
        .expect("request");
    assert!(response.status().is_server_error(), "{}", response.status());
    without.shutdown().await;
}

/// A sign-up on the gateway's own Cognito JSON API, whose confirmation code goes to the
/// pool's `code_webhook`.
async fn sign_up(gateway: &TestGateway, username: &str) {
    let response = reqwest::Client::new()
        .post(gateway.http_url("/"))
        .header("X-Amz-Target", "AWSCognitoIdentityProviderService.SignUp")
        .header("Content-Type", "application/x-amz-json-1.1")
        .body(
            json!({"ClientId": "web", "Username": username, "Password": "password1",
                   "UserAttributes": [{"Name": "email", "Value": "ann@example.com"}]})
            .to_string(),
        )
        .send()
        .await
        .expect("SignUp");
    assert_eq!(response.status(), 200);
}

/// Waits until `requests` holds `n` requests (10 s at most).
async fn until_requests(requests: &Mutex<Vec<String>>, n: usize) -> Vec<String> {
    for _ in 0..100 {
        let got = requests.lock().expect("requests").clone();
        if got.len() >= n {
            return got;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("fewer than {n} requests arrived");
}

#[tokio::test]
async fn a_code_webhook_over_https_is_trusted_through_ca_file_only() {
    let dir = tempfile::tempdir().expect("tmp");
    let ca = TestCa::new();
    let answer = "HTTP/1.1 204 No Content\r\nconnection: close\r\n\r\n".to_owned();
    let (port, requests) = https_server(&ca, answer).await;
    let ca_file = dir.path().join("ca.pem");
    std::fs::write(&ca_file, ca.pem()).expect("ca");
    let rest = |store: &str| {
        format!(
            "[store]\nurl = \"sqlite://{}/{store}.db\"\n\n\
             [pools.main]\nself_sign_up = true\n\
             password_policy = {{ min_length = 8, require_digits = true }}\ncode_webhook = \"https://localhost:{port}/codes\"\n\
             [pools.main.clients.web]\npublic = true\n",
            dir.path().display()
        )
    };
    let server = "[server]\nlisten = \"127.0.0.1:0\"\nadmin_listen = \"127.0.0.1:0\"\nshutdown_grace = \"1s\"\n";

    // Without the CA the webhook's certificate is not trusted: the gateway refuses the
    // handshake, nothing is delivered (a sign-up never waits for its delivery, so it still
    // succeeds).
    let without = TestGateway::start_full(&format!("{server}\n{}", rest("without"))).await;
    sign_up(&without, "bob").await;
    assert_eq!(until_requests(&requests, 1).await, vec![REFUSED.to_owned()]);
    without.shutdown().await;

    let with_ca = TestGateway::start_full(&format!(
        "{server}ca_file = {ca_file:?}\n\n{}",
        rest("with")
    ))
    .await;
    sign_up(&with_ca, "ann").await;
    let got = until_requests(&requests, 2).await;
    with_ca.shutdown().await;
    assert_eq!(got.len(), 2, "{got:?}");
    assert!(got[1].starts_with("POST /codes HTTP/1.1\r\n"), "{}", got[1]);
    assert!(got[1].contains("\"username\":\"ann\""), "{}", got[1]);
    assert!(got[1].contains("\"kind\":\"SIGN_UP\""), "{}", got[1]);
}
