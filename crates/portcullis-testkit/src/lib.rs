//! Test-only helpers: start a real gateway on loopback, real HTTP backends that record the
//! events they receive, a real WebSocket client, and a SigV4-signing management client.
//! Nothing here is used by the shipped binary.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::response::IntoResponse;
use futures_util::{SinkExt, StreamExt};
use http::StatusCode;
use portcullis_gateway::RunningGateway;
use serde_json::Value;
use tokio::net::TcpStream;
use tokio::sync::Notify;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

pub use portcullis_auth::sigv4;

pub mod counted;
pub mod jwt;
pub mod redis;
pub mod sse;

pub const ACCESS_KEY_ID: &str = "AKIDTEST";
pub const SECRET_ACCESS_KEY: &str = "test-secret-key-0123456789";
pub const REGION: &str = portcullis_config::defaults::REGION;

pub type Client = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// The head of a test configuration: `[server]` on ephemeral loopback ports with the lines
/// `server` adds (e.g. `shutdown_grace`, limits), and `[management]` with the test credential.
pub fn config_head(server: &str) -> String {
    format!(
        "[server]\nlisten = \"127.0.0.1:0\"\nadmin_listen = \"127.0.0.1:0\"\n{server}\n\n\
         [management]\nregion = \"{REGION}\"\ncredentials = [{{ access_key_id = \"{ACCESS_KEY_ID}\", secret_access_key = \"{SECRET_ACCESS_KEY}\" }}]\n\n"
    )
}

/// What [`TestGateway::start`] puts before the APIs (a reload that keeps it changes nothing
/// else).
pub fn start_head() -> String {
    config_head("shutdown_grace = \"5s\"")
}

/// `[integrations.backend]`: an HTTP integration to `url` (a [`Backend`]'s).
pub fn backend_integration(url: &str) -> String {
    format!("[integrations.backend]\ntype = \"http\"\nurl = \"{url}\"\n\n")
}

/// `[websocket.NAME]` with the API's own lines `api` (may be empty), whose `$connect`,
/// `$disconnect` and `$default` (answered) go to the integration `backend`.
pub fn backend_ws_api(name: &str, api: &str) -> String {
    format!(
        "[websocket.{name}]\n{api}\n[websocket.{name}.routes]\n\
         \"$connect\" = {{ integration = \"backend\" }}\n\
         \"$disconnect\" = {{ integration = \"backend\" }}\n\
         \"$default\" = {{ integration = \"backend\", response = true }}\n\n"
    )
}

/// A gateway running in this process on ephemeral loopback ports.
pub struct TestGateway {
    pub listen: SocketAddr,
    pub admin: SocketAddr,
    gateway: Option<RunningGateway>,
}

impl TestGateway {
    /// Start from a TOML snippet holding everything but `[server]` and `[management]`
    /// (those are added: ephemeral ports, the test credentials).
    pub async fn start(apis_toml: &str) -> TestGateway {
        let toml = format!("{}{apis_toml}", start_head());
        let config = match portcullis_config::load_str(&toml, "test.toml", &|_| None) {
            Ok(c) => c,
            Err(d) => panic!("test config invalid:\n{d}\n---\n{toml}"),
        };
        let gateway = portcullis_gateway::start(config)
            .await
            .expect("gateway starts");
        TestGateway {
            listen: gateway.listen_addr,
            admin: gateway.admin_addr,
            gateway: Some(gateway),
        }
    }

    /// Start from a complete configuration file (the caller writes `[server]` itself, e.g.
    /// with a fixed port when issuer URLs must name it).
    pub async fn start_full(toml: &str) -> TestGateway {
        let config = match portcullis_config::load_str(toml, "test.toml", &|_| None) {
            Ok(c) => c,
            Err(d) => panic!("test config invalid:\n{d}\n---\n{toml}"),
        };
        let gateway = portcullis_gateway::start(config)
            .await
            .expect("gateway starts");
        TestGateway {
            listen: gateway.listen_addr,
            admin: gateway.admin_addr,
            gateway: Some(gateway),
        }
    }

    pub fn ws_url(&self, path: &str) -> String {
        format!("ws://{}{}", self.listen, path)
    }

    /// `http://` URL of `path` on the public listener.
    pub fn http_url(&self, path: &str) -> String {
        format!("http://{}{}", self.listen, path)
    }

    pub fn admin_url(&self, path: &str) -> String {
        format!("http://{}{}", self.admin, path)
    }

    pub fn open_connections(&self) -> usize {
        self.gateway
            .as_ref()
            .map(|g| g.open_connections())
            .unwrap_or(0)
    }

    pub async fn metrics_text(&self) -> String {
        reqwest::get(self.admin_url("/metrics"))
            .await
            .expect("metrics")
            .text()
            .await
            .expect("text")
    }

    /// What functions are given to call this gateway back (see
    /// `RunningGateway::function_environment`).
    pub fn function_environment(&self) -> Vec<(String, String)> {
        self.gateway
            .as_ref()
            .map(RunningGateway::function_environment)
            .unwrap_or_default()
    }

    /// The running gateway, e.g. to reload its configuration.
    pub fn running(&self) -> &RunningGateway {
        self.gateway
            .as_ref()
            .expect("the gateway runs until shutdown")
    }

    /// Graceful shutdown, awaited.
    pub async fn shutdown(mut self) {
        if let Some(g) = self.gateway.take() {
            g.shutdown().await;
        }
    }
}

/// What a test backend answers.
#[derive(Clone, Debug)]
pub enum Reply {
    /// HTTP status and body (the body is the Lambda-proxy result JSON).
    Json(u16, String),
    /// Wait, then answer.
    Delay(Duration, Box<Reply>),
}

impl Reply {
    pub fn ok() -> Reply {
        Reply::Json(200, r#"{"statusCode":200}"#.into())
    }
    pub fn body(body: &str) -> Reply {
        Reply::Json(
            200,
            serde_json::json!({"statusCode": 200, "body": body}).to_string(),
        )
    }
    pub fn status(code: u16) -> Reply {
        Reply::Json(200, serde_json::json!({"statusCode": code}).to_string())
    }
}

type Responder = Arc<dyn Fn(&Value) -> Reply + Send + Sync>;

#[derive(Clone)]
struct BackendState {
    events: Arc<Mutex<Vec<Value>>>,
    notify: Arc<Notify>,
    responder: Responder,
}

/// A real HTTP backend on loopback that records every event it receives.
pub struct Backend {
    pub url: String,
    events: Arc<Mutex<Vec<Value>>>,
    notify: Arc<Notify>,
    open_sockets: Arc<std::sync::atomic::AtomicUsize>,
    accepted_sockets: Arc<std::sync::atomic::AtomicUsize>,
}

impl Backend {
    /// Start a backend answering with `responder(event)`.
    pub async fn start(responder: impl Fn(&Value) -> Reply + Send + Sync + 'static) -> Backend {
        let state = BackendState {
            events: Arc::new(Mutex::new(Vec::new())),
            notify: Arc::new(Notify::new()),
            responder: Arc::new(responder),
        };
        let app = Router::new()
            .fallback(backend_handler)
            .with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind backend");
        let addr = listener.local_addr().expect("addr");
        let (listener, open_sockets, accepted_sockets) = counted::CountingListener::new(listener);
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Backend {
            url: format!("http://{addr}/events"),
            events: state.events,
            notify: state.notify,
            open_sockets,
            accepted_sockets,
        }
    }

    /// TCP connections to this backend open right now (accepted and not yet closed).
    pub fn open_sockets(&self) -> usize {
        self.open_sockets.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// TCP connections this backend accepted since it started.
    pub fn accepted_sockets(&self) -> usize {
        self.accepted_sockets
            .load(std::sync::atomic::Ordering::SeqCst)
    }

    /// A backend that accepts everything and echoes MESSAGE bodies back.
    pub async fn echo() -> Backend {
        Backend::start(
            |event| match event["requestContext"]["eventType"].as_str() {
                Some("MESSAGE") => Reply::body(event["body"].as_str().unwrap_or_default()),
                _ => Reply::ok(),
            },
        )
        .await
    }

    pub fn events(&self) -> Vec<Value> {
        self.events.lock().map(|e| e.clone()).unwrap_or_default()
    }

    /// Wait (up to 10 s) for an event matching `pred`.
    pub async fn wait_for(&self, pred: impl Fn(&Value) -> bool) -> Value {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            let notified = self.notify.notified();
            if let Some(e) = self.events().into_iter().find(|e| pred(e)) {
                return e;
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                panic!("no matching event within 10 s; got: {:#?}", self.events());
            }
        }
    }

    /// Wait for an event of the given type (`CONNECT`, `MESSAGE`, `DISCONNECT`) for `connection_id`.
    pub async fn wait_event(&self, event_type: &str, connection_id: &str) -> Value {
        self.wait_for(|e| {
            e["requestContext"]["eventType"] == event_type
                && e["requestContext"]["connectionId"] == connection_id
        })
        .await
    }
}

async fn backend_handler(
    State(state): State<BackendState>,
    body: Bytes,
) -> axum::response::Response {
    let event: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let reply = (state.responder)(&event);
    if let Ok(mut events) = state.events.lock() {
        events.push(event);
    }
    state.notify.notify_waiters();
    let mut reply = reply;
    loop {
        match reply {
            Reply::Delay(d, next) => {
                tokio::time::sleep(d).await;
                reply = *next;
            }
            Reply::Json(status, body) => {
                let status =
                    StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
                return (
                    status,
                    [(http::header::CONTENT_TYPE, "application/json")],
                    body,
                )
                    .into_response();
            }
        }
    }
}

/// Connect a WebSocket client; panics if the handshake fails.
pub async fn connect(url: &str) -> Client {
    try_connect(url, &[]).await.expect("websocket handshake")
}

/// Connect with extra request headers; the error carries the HTTP status of a refusal.
pub async fn try_connect(
    url: &str,
    headers: &[(&str, &str)],
) -> Result<Client, tokio_tungstenite::tungstenite::Error> {
    let (client, _) = try_connect_response(url, headers).await?;
    Ok(client)
}

/// Connect and keep the 101 response (to inspect its headers).
pub async fn try_connect_response(
    url: &str,
    headers: &[(&str, &str)],
) -> Result<
    (
        Client,
        tokio_tungstenite::tungstenite::handshake::client::Response,
    ),
    tokio_tungstenite::tungstenite::Error,
> {
    let mut request = url.into_client_request()?;
    for (name, value) in headers {
        request.headers_mut().insert(
            http::HeaderName::from_bytes(name.as_bytes()).expect("header name"),
            http::HeaderValue::from_str(value).expect("header value"),
        );
    }
    tokio_tungstenite::connect_async(request).await
}

/// HTTP status of a refused handshake, or `None` if it succeeded.
pub async fn handshake_status(url: &str, headers: &[(&str, &str)]) -> Option<u16> {
    match try_connect(url, headers).await {
        Ok(_) => None,
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
            Some(response.status().as_u16())
        }
        Err(e) => panic!("unexpected handshake error: {e}"),
    }
}

/// Next text frame (skipping pings/pongs), within 10 s.
pub async fn next_text(client: &mut Client) -> String {
    loop {
        match tokio::time::timeout(Duration::from_secs(10), client.next()).await {
            Ok(Some(Ok(Message::Text(t)))) => return t.as_str().to_owned(),
            Ok(Some(Ok(Message::Ping(_) | Message::Pong(_)))) => continue,
            other => panic!("expected a text frame, got {other:?}"),
        }
    }
}

/// Next data or close message within 10 s (pings skipped).
pub async fn next_message(client: &mut Client) -> Option<Message> {
    loop {
        match tokio::time::timeout(Duration::from_secs(10), client.next()).await {
            Ok(Some(Ok(Message::Ping(_) | Message::Pong(_)))) => continue,
            Ok(Some(Ok(m))) => return Some(m),
            Ok(Some(Err(_))) | Ok(None) => return None,
            Err(_) => panic!("no message within 10 s"),
        }
    }
}

/// Wait for the server's close frame and return its code (None if the TCP just ended).
pub async fn close_code(client: &mut Client) -> Option<u16> {
    loop {
        match next_message(client).await {
            Some(Message::Close(frame)) => return frame.map(|f| u16::from(f.code)),
            Some(_) => continue,
            None => return None,
        }
    }
}

pub async fn send_text(client: &mut Client, text: &str) {
    client
        .send(Message::text(text.to_owned()))
        .await
        .expect("send");
}

/// Starts an upgrade to `path` in the background and waits for its `$connect` to reach
/// `backend` (the first one it receives): the upgrade, still under way while `$connect`
/// runs, and the connection's id.
pub async fn connect_under_way(
    gateway: &TestGateway,
    path: &str,
    backend: &Backend,
) -> (tokio::task::JoinHandle<Client>, String) {
    let url = gateway.ws_url(path);
    let connecting = tokio::spawn(async move { connect(&url).await });
    let event = backend
        .wait_for(|e| e["requestContext"]["eventType"] == "CONNECT")
        .await;
    let id = event["requestContext"]["connectionId"]
        .as_str()
        .expect("id")
        .to_owned();
    (connecting, id)
}

/// Ask the backend-visible connection id: connect, and read it from the CONNECT event.
pub async fn connect_and_id(
    gateway: &TestGateway,
    path: &str,
    backend: &Backend,
) -> (Client, String) {
    let before: Vec<String> = backend
        .events()
        .iter()
        .filter(|e| e["requestContext"]["eventType"] == "CONNECT")
        .filter_map(|e| {
            e["requestContext"]["connectionId"]
                .as_str()
                .map(str::to_owned)
        })
        .collect();
    let client = connect(&gateway.ws_url(path)).await;
    let event = backend
        .wait_for(|e| {
            e["requestContext"]["eventType"] == "CONNECT"
                && e["requestContext"]["connectionId"]
                    .as_str()
                    .is_some_and(|id| !before.iter().any(|b| b == id))
        })
        .await;
    let id = event["requestContext"]["connectionId"]
        .as_str()
        .expect("id")
        .to_owned();
    (client, id)
}

/// A management API request signed with SigV4 like boto3 signs it.
pub async fn management(
    gateway: &TestGateway,
    method: &str,
    path: &str,
    body: &[u8],
    secret: &str,
) -> reqwest::Response {
    let host = gateway.admin.to_string();
    let headers = [("host", host.as_str())];
    let request = sigv4::SignableRequest {
        method,
        path,
        query: "",
        headers: &headers,
        body,
    };
    let signed = sigv4::sign(
        &request,
        ACCESS_KEY_ID,
        secret,
        REGION,
        "execute-api",
        chrono::Utc::now(),
    );
    let client = reqwest::Client::new();
    let mut builder = client
        .request(
            http::Method::from_bytes(method.as_bytes()).expect("method"),
            format!("http://{host}{path}"),
        )
        .body(body.to_vec());
    for (name, value) in signed {
        builder = builder.header(name, value);
    }
    builder.send().await.expect("management request")
}

/// A loopback port that was free a moment ago.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

/// Percent-encode a connection id for a path, as botocore does.
pub fn encode_id(id: &str) -> String {
    percent_encoding::utf8_percent_encode(id, percent_encoding::NON_ALPHANUMERIC).to_string()
}

/// Consume frames until none arrives for a moment.
pub async fn drain(client: &mut Client) {
    while let Ok(Some(_)) = tokio::time::timeout(Duration::from_millis(200), client.next()).await {}
}
