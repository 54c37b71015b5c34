//! The callback proxy over real sockets: HTTPS to the gateway's own name ends in the proxy
//! and reaches the admin listener unchanged (a real Python client with only the variables a
//! function gets), other targets are plain tunnels, and what is not a tunnel is refused.
#![allow(clippy::unwrap_used)]

use std::net::SocketAddr;

use portcullis_functions::CallbackProxy;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// A stand-in admin listener: answers each request with its head, as text.
async fn echo_http() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut head = Vec::new();
                let mut byte = [0u8; 1];
                while !head.ends_with(b"\r\n\r\n") {
                    if stream.read(&mut byte).await.unwrap_or(0) == 0 {
                        return;
                    }
                    head.push(byte[0]);
                }
                let reply = format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                    head.len()
                );
                let _ = stream.write_all(reply.as_bytes()).await;
                let _ = stream.write_all(&head).await;
            });
        }
    });
    addr
}

/// A plain TCP echo.
async fn echo_tcp() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let (mut r, mut w) = stream.split();
                let _ = tokio::io::copy(&mut r, &mut w).await;
            });
        }
    });
    addr
}

async fn connect(proxy: &CallbackProxy, target: &str) -> (TcpStream, String) {
    let mut stream = TcpStream::connect(proxy.addr()).await.unwrap();
    stream
        .write_all(format!("CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if stream.read(&mut byte).await.unwrap() == 0 {
            break;
        }
        head.push(byte[0]);
    }
    (stream, String::from_utf8_lossy(&head).into_owned())
}

#[tokio::test]
async fn https_to_the_gateway_name_reaches_the_admin_listener_unchanged() {
    let admin = echo_http().await;
    let proxy = CallbackProxy::start(admin, "localhost:18080", None)
        .await
        .unwrap();
    // Python's own HTTPS client, told nothing but the function's variables.
    let script = r#"
import os, ssl, urllib.request
context = ssl.create_default_context(cafile=os.environ["AWS_CA_BUNDLE"])
opener = urllib.request.build_opener(urllib.request.HTTPSHandler(context=context))
for url in ["https://localhost:18080/prod/@connections/abc", "https://127.0.0.1:18080/prod/x"]:
    print(opener.open(url, timeout=20).read().decode())
"#;
    let mut command = tokio::process::Command::new("python3");
    command
        .args(["-c", script])
        .env_clear()
        .envs(proxy.environment());
    if let Ok(path) = std::env::var("PATH") {
        command.env("PATH", path);
    }
    let output = command.output().await.unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let heads: Vec<&str> = stdout.split("GET ").skip(1).collect();
    assert_eq!(heads.len(), 2, "{stdout}");
    assert!(
        heads[0].starts_with("/prod/@connections/abc HTTP/1.1\r\n"),
        "{stdout}"
    );
    assert!(
        heads[0].contains("\r\nHost: localhost:18080\r\n"),
        "{stdout}"
    );
    assert!(heads[1].starts_with("/prod/x HTTP/1.1\r\n"), "{stdout}");
    assert!(
        heads[1].contains("\r\nHost: 127.0.0.1:18080\r\n"),
        "{stdout}"
    );
}

#[tokio::test]
async fn other_targets_are_plain_tunnels() {
    let admin = echo_http().await;
    let echo = echo_tcp().await;
    let proxy = CallbackProxy::start(admin, "localhost:18080", None)
        .await
        .unwrap();
    // Loopback, but another port than the gateway's: not intercepted.
    let (mut stream, head) = connect(&proxy, &echo.to_string()).await;
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    stream.write_all(b"not TLS at all\n").await.unwrap();
    let mut back = [0u8; 15];
    stream.read_exact(&mut back).await.unwrap();
    assert_eq!(&back, b"not TLS at all\n");
}

#[tokio::test]
async fn what_is_not_a_reachable_tunnel_is_refused() {
    let admin = echo_http().await;
    let proxy = CallbackProxy::start(admin, "localhost:18080", None)
        .await
        .unwrap();

    let mut stream = TcpStream::connect(proxy.addr()).await.unwrap();
    stream
        .write_all(b"GET http://example.com/ HTTP/1.1\r\nHost: example.com\r\n\r\n")
        .await
        .unwrap();
    let mut reply = String::new();
    stream.read_to_string(&mut reply).await.unwrap();
    assert!(reply.starts_with("HTTP/1.1 405"), "{reply}");

    let closed = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let (_, head) = connect(&proxy, &format!("127.0.0.1:{port}")).await;
    assert!(head.starts_with("HTTP/1.1 502"), "{head}");

    let mut stream = TcpStream::connect(proxy.addr()).await.unwrap();
    let mut huge = b"CONNECT a:1 HTTP/1.1\r\nX: ".to_vec();
    huge.resize(8 * 1024, b'a');
    let _ = stream.write_all(&huge).await;
    let mut reply = String::new();
    let _ = stream.read_to_string(&mut reply).await;
    assert!(reply.starts_with("HTTP/1.1 431"), "{reply}");
}

#[tokio::test]
async fn the_environment_names_the_proxy_the_ca_files_and_a_credential() {
    let proxy = CallbackProxy::start(echo_http().await, "localhost:18080", None)
        .await
        .unwrap();
    let env: std::collections::HashMap<String, String> = proxy.environment().into_iter().collect();
    let url = format!("http://{}", proxy.addr());
    assert_eq!(env["HTTPS_PROXY"], url);
    assert_eq!(env["https_proxy"], url);
    assert_eq!(env["NO_PROXY"], "");
    assert_eq!(env["no_proxy"], "");
    assert!(proxy.addr().ip().is_loopback());
    let ca = std::fs::read_to_string(&env["NODE_EXTRA_CA_CERTS"]).unwrap();
    let bundle = std::fs::read_to_string(&env["AWS_CA_BUNDLE"]).unwrap();
    assert!(bundle.starts_with(&ca));
    if std::path::Path::new("/etc/ssl/certs/ca-certificates.crt").exists() {
        assert!(bundle.matches("BEGIN CERTIFICATE").count() > 1);
    }
    assert_eq!(env["AWS_ACCESS_KEY_ID"], proxy.credential().access_key_id);
    assert_eq!(
        env["AWS_SECRET_ACCESS_KEY"],
        proxy.credential().secret_access_key.expose()
    );
}
