//! The backend's HTTP surface: `POST /events` (one AWS WebSocket event in, one Lambda proxy
//! result out) and `GET /healthz`.

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::json;

use crate::management::{Management, broadcast};
use crate::route::{Decision, decide};

/// The backend's routes, pushing through `management`.
pub fn router(management: Management) -> Router {
    Router::new()
        .route("/events", post(events))
        .route("/healthz", get(|| async { "ok\n" }))
        .with_state(Arc::new(management))
}

/// How long a join/leave notice waits for the gateway to register the new connection.
const NOTICE_DELAY: std::time::Duration = std::time::Duration::from_millis(250);

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
        Ok(Decision::ReplyThenBroadcast { reply, data }) => {
            // After the answer: a connection being accepted is registered only once its
            // `$connect` has been answered, and should hear its own arrival.
            let management = management.clone();
            tokio::spawn(async move {
                tokio::time::sleep(NOTICE_DELAY).await;
                if let Err(e) = broadcast(&management, Bytes::from(data)).await {
                    tracing::warn!(error = %e, "notice broadcast failed");
                }
            });
            json_response(StatusCode::OK, reply)
        }
        Ok(Decision::Broadcast { from, data }) => {
            match broadcast(&management, Bytes::from(data)).await {
                Ok(report) => {
                    tracing::info!(
                        from = %from,
                        delivered = report.delivered,
                        gone = report.gone,
                        failed = report.failed,
                        "broadcast"
                    );
                    json_response(StatusCode::OK, json!({ "statusCode": 200 }))
                }
                Err(e) => {
                    // The gateway ignores a one-way route's status; the log says what happened.
                    tracing::error!(from = %from, error = %e, "broadcast failed");
                    json_response(StatusCode::OK, json!({ "statusCode": 500 }))
                }
            }
        }
    }
}
