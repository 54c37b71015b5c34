//! One execution environment's loopback Runtime API server. The environment hands it one
//! [`Job`] at a time; the bootstrap takes it with `/next` and answers on `/response` or
//! `/error`, which completes the job's reply.
//!
//! Invariants: at most one job is in flight (the environment is held by one caller), so the
//! job channel has capacity 1; connections are few (a bootstrap uses one or two), so more
//! than [`MAX_CONNECTIONS`] at once are dropped.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinSet;

use crate::error::parse_error_body;
use crate::runtime_api::{Call, MAX_ERROR_BODY, MAX_PAYLOAD, call};

const MAX_CONNECTIONS: usize = 8;

/// An invocation handed to the bootstrap.
pub(crate) struct Job {
    pub(crate) request_id: String,
    pub(crate) event: Bytes,
    pub(crate) deadline_ms: u64,
    pub(crate) function_arn: String,
    pub(crate) trace_id: String,
    pub(crate) reply: oneshot::Sender<Reply>,
}

/// How the bootstrap answered a job.
#[derive(Debug)]
pub(crate) enum Reply {
    Response(Bytes),
    Error {
        error_type: String,
        error_message: String,
    },
    TooLarge,
}

/// State shared by the server and its environment.
pub(crate) struct Shared {
    jobs: tokio::sync::Mutex<mpsc::Receiver<Job>>,
    /// The job taken by `/next` and not yet answered.
    current: Mutex<Option<(String, oneshot::Sender<Reply>)>>,
    /// Completed by the first `/next`: the handler is loaded.
    ready: Mutex<Option<oneshot::Sender<()>>>,
    /// What `/init/error` said.
    init_error: Mutex<Option<(String, String)>>,
    /// The request id being served, to tag the process's log lines.
    pub(crate) request_id: Mutex<Option<String>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Shared {
    pub(crate) fn new() -> (Arc<Shared>, mpsc::Sender<Job>, oneshot::Receiver<()>) {
        let (jobs_tx, jobs_rx) = mpsc::channel(1);
        let (ready_tx, ready_rx) = oneshot::channel();
        let shared = Arc::new(Shared {
            jobs: tokio::sync::Mutex::new(jobs_rx),
            current: Mutex::new(None),
            ready: Mutex::new(Some(ready_tx)),
            init_error: Mutex::new(None),
            request_id: Mutex::new(None),
        });
        (shared, jobs_tx, ready_rx)
    }

    pub(crate) fn init_error(&self) -> Option<(String, String)> {
        lock(&self.init_error).clone()
    }

    pub(crate) fn current_request(&self) -> Option<String> {
        lock(&self.request_id).clone()
    }
}

/// Binds `127.0.0.1:0` and serves the Runtime API until the returned task is aborted.
pub(crate) async fn serve(
    shared: Arc<Shared>,
) -> std::io::Result<(SocketAddr, tokio::task::JoinHandle<()>)> {
    let listener = TcpListener::bind(("127.0.0.1", 0)).await?;
    let addr = listener.local_addr()?;
    let task = tokio::spawn(async move {
        // Dropped with the task: aborting the server ends its connections too.
        let mut connections = JoinSet::new();
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                // Out of descriptors, most likely: wait instead of spinning.
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                continue;
            };
            while connections.try_join_next().is_some() {}
            if connections.len() >= MAX_CONNECTIONS {
                continue;
            }
            let shared = shared.clone();
            connections.spawn(async move {
                let service = hyper::service::service_fn(move |req| {
                    let shared = shared.clone();
                    async move { Ok::<_, Infallible>(handle(&shared, req).await) }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    // awslambdaric sends an X-Ray error cause of up to 1 MiB in a header.
                    .max_buf_size(MAX_HEAD_BYTES)
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    Ok((addr, task))
}

/// Largest request head accepted from a runtime client: room for the error-cause header
/// third-party clients send with a failed invocation.
const MAX_HEAD_BYTES: usize = 2 * 1024 * 1024;

fn reply(status: StatusCode, body: &'static str) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from_static(body.as_bytes())));
    *response.status_mut() = status;
    response
}

async fn handle(shared: &Shared, req: Request<Incoming>) -> Response<Full<Bytes>> {
    let path = req.uri().path().to_owned();
    let Some(which) = call(req.method(), &path) else {
        return reply(StatusCode::NOT_FOUND, r#"{"errorType":"NotFound"}"#);
    };
    match which {
        Call::Next => next(shared).await,
        Call::Response(id) => {
            let body = Limited::new(req.into_body(), MAX_PAYLOAD).collect().await;
            let answer = match body {
                Ok(b) => Reply::Response(b.to_bytes()),
                Err(_) => Reply::TooLarge,
            };
            let too_large = matches!(answer, Reply::TooLarge);
            if !complete(shared, id, answer) {
                return reply(
                    StatusCode::BAD_REQUEST,
                    r#"{"errorType":"InvalidRequestID"}"#,
                );
            }
            if too_large {
                return reply(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    r#"{"errorType":"RequestEntityTooLarge"}"#,
                );
            }
            reply(StatusCode::ACCEPTED, r#"{"status":"OK"}"#)
        }
        Call::Error(id) => {
            let (error_type, error_message) = read_error(req).await;
            if !complete(
                shared,
                id,
                Reply::Error {
                    error_type,
                    error_message,
                },
            ) {
                return reply(
                    StatusCode::BAD_REQUEST,
                    r#"{"errorType":"InvalidRequestID"}"#,
                );
            }
            reply(StatusCode::ACCEPTED, r#"{"status":"OK"}"#)
        }
        Call::InitError => {
            let error = read_error(req).await;
            *lock(&shared.init_error) = Some(error);
            reply(StatusCode::ACCEPTED, r#"{"status":"OK"}"#)
        }
    }
}

async fn read_error(req: Request<Incoming>) -> (String, String) {
    let header = req
        .headers()
        .get("lambda-runtime-function-error-type")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let body = Limited::new(req.into_body(), MAX_ERROR_BODY)
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    parse_error_body(&body, header.as_deref())
}

/// Completes the current job if `id` is its request id.
fn complete(shared: &Shared, id: &str, answer: Reply) -> bool {
    let mut current = lock(&shared.current);
    match current.take() {
        Some((current_id, tx)) if current_id == id => {
            let _ = tx.send(answer);
            true
        }
        other => {
            *current = other;
            false
        }
    }
}

async fn next(shared: &Shared) -> Response<Full<Bytes>> {
    if let Some(ready) = lock(&shared.ready).take() {
        let _ = ready.send(());
    }
    let job = shared.jobs.lock().await.recv().await;
    let Some(job) = job else {
        return reply(StatusCode::GONE, r#"{"errorType":"Shutdown"}"#);
    };
    let mut response = Response::new(Full::new(job.event));
    let headers = response.headers_mut();
    let pairs = [
        ("lambda-runtime-aws-request-id", job.request_id.clone()),
        ("lambda-runtime-deadline-ms", job.deadline_ms.to_string()),
        ("lambda-runtime-invoked-function-arn", job.function_arn),
        ("lambda-runtime-trace-id", job.trace_id),
        ("content-type", "application/json".to_owned()),
    ];
    for (name, value) in pairs {
        if let Ok(value) = http::HeaderValue::from_str(&value) {
            headers.insert(name, value);
        }
    }
    *lock(&shared.request_id) = Some(job.request_id.clone());
    *lock(&shared.current) = Some((job.request_id, job.reply));
    response
}
