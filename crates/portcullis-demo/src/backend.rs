//! The backend's HTTP surface: `POST /events` (one AWS WebSocket event in, one Lambda proxy
//! result out) and `GET /healthz`; the management calls a [`Decision`] asks for.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::json;

use crate::management::{Management, broadcast};
use crate::route::{Action, Decision, decide, direct_receipt};

/// The backend's routes, pushing through `management`.
pub fn router(management: Management) -> Router {
    Router::new()
        .route("/events", post(events))
        .route("/healthz", get(|| async { "ok\n" }))
        .with_state(Arc::new(management))
}

/// How often a subscription is tried while the gateway does not know the connection yet (it
/// registers a connection just after its `$connect` is answered), and how long apart.
const SUBSCRIBE_ATTEMPTS: u32 = 40;
const SUBSCRIBE_RETRY: Duration = Duration::from_millis(25);

fn json_response(status: StatusCode, value: serde_json::Value) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        value.to_string(),
    )
        .into_response()
}

async fn events(State(management): State<Arc<Management>>, body: Bytes) -> Response {
    let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    match decide(&body, &now) {
        Err(bad) => {
            tracing::warn!(error = %bad, "bad event");
            json_response(
                StatusCode::BAD_REQUEST,
                json!({ "message": bad.to_string() }),
            )
        }
        Ok(Decision::Reply(result)) => json_response(StatusCode::OK, result),
        Ok(Decision::ActAfterReply { actions }) => {
            let management = management.clone();
            tokio::spawn(async move { act(&management, actions).await });
            json_response(StatusCode::OK, json!({ "statusCode": 200 }))
        }
        Ok(Decision::Act { reply, actions }) => {
            // The gateway ignores a one-way route's status; the log says what happened.
            act(&management, actions).await;
            json_response(StatusCode::OK, reply)
        }
        Ok(Decision::Direct { to, data, text }) => {
            match management.push_to_user(&to, Bytes::from(data)).await {
                Ok(connections) => {
                    tracing::info!(to = %to, connections, "direct message");
                    json_response(
                        StatusCode::OK,
                        direct_receipt(&to, &text, connections, &now),
                    )
                }
                Err(e) => {
                    tracing::error!(to = %to, error = %e, "direct message failed");
                    json_response(StatusCode::OK, json!({ "statusCode": 500 }))
                }
            }
        }
    }
}

/// Makes the calls in order; a failed one is logged and the next ones still run.
async fn act(management: &Management, actions: Vec<Action>) {
    for action in actions {
        match action {
            Action::Subscribe { connection, topic } => {
                subscribe(management, &connection, &topic).await;
            }
            Action::Unsubscribe { connection, topic } => {
                if let Err(e) = management.unsubscribe(&connection, &topic).await {
                    tracing::warn!(%topic, error = %e, "unsubscribe failed");
                }
            }
            Action::Publish { topic, data } => {
                match management.publish(&topic, Bytes::from(data)).await {
                    Ok(connections) => tracing::info!(%topic, connections, "published"),
                    Err(e) => tracing::error!(%topic, error = %e, "publish failed"),
                }
            }
            Action::Broadcast { data } => match broadcast(management, Bytes::from(data)).await {
                Ok(report) => tracing::info!(
                    delivered = report.delivered,
                    gone = report.gone,
                    failed = report.failed,
                    "broadcast"
                ),
                Err(e) => tracing::error!(error = %e, "broadcast failed"),
            },
        }
    }
}

/// Subscribes, waiting a bounded while for a connection the gateway is still registering.
async fn subscribe(management: &Management, connection: &str, topic: &str) {
    for attempt in 1..=SUBSCRIBE_ATTEMPTS {
        match management.subscribe(connection, topic).await {
            Ok(()) => return,
            Err(e) if e.is_gone() && attempt < SUBSCRIBE_ATTEMPTS => {
                tokio::time::sleep(SUBSCRIBE_RETRY).await;
            }
            Err(e) if e.is_gone() => {
                tracing::warn!(%topic, "the connection closed before it could be subscribed");
                return;
            }
            Err(e) => {
                tracing::error!(%topic, error = %e, "subscribe failed");
                return;
            }
        }
    }
}
