//! `@users/{principalId}` (`POST` to all of a principal's connections, `GET` them, `DELETE`
//! them) and `@topics/{topic}` (`POST` to every subscriber, `GET` them).

use axum::body::Body;
use http::{Method, Response, StatusCode};
use portcullis_core::close::Close;
use portcullis_core::event::iso8601_millis;
use serde_json::json;

use super::{Call, ManagementError};
use crate::push;
use crate::registry::{ConnectionSummary, Fanout, Topic};

type Answer = Result<Response<Body>, ManagementError>;

pub(super) async fn user(call: &Call<'_>, principal: &str) -> Answer {
    let state = call.state;
    match call.method {
        Method::POST => {
            let message = call.message()?;
            let fanout = push::to_user(state, &call.apis, principal, &message).await?;
            Ok(delivered(call, fanout))
        }
        Method::GET => {
            let found = push::user_connections(state, &call.apis, principal).await?;
            Ok(listing(call, &found))
        }
        _ => {
            for api in &call.apis {
                state
                    .registry
                    .close_principal(&api.name, principal, Close::Deleted)
                    .await?;
            }
            Ok(call.empty(StatusCode::NO_CONTENT))
        }
    }
}

pub(super) async fn topic(call: &Call<'_>, raw_topic: &str) -> Answer {
    let topic = Topic::parse(raw_topic).map_err(|e| ManagementError::BadRequest(e.to_string()))?;
    match call.method {
        Method::POST => {
            let message = call.message()?;
            let fanout = push::to_topic(call.state, &call.apis, &topic, &message).await?;
            Ok(delivered(call, fanout))
        }
        _ => {
            let found = push::topic_subscribers(call.state, &call.apis, &topic).await?;
            Ok(listing(call, &found))
        }
    }
}

/// `{"connections": N}`: how many connections were handed the message (0 is not an error).
fn delivered(call: &Call<'_>, fanout: Fanout) -> Response<Body> {
    call.json(
        StatusCode::OK,
        json!({"connections": fanout.delivered}).to_string(),
    )
}

/// `{"connections": [{"connectionId", "connectedAt", "transport"}]}`.
fn listing(call: &Call<'_>, found: &[ConnectionSummary]) -> Response<Body> {
    let list: Vec<_> = found
        .iter()
        .map(|c| {
            json!({
                "connectionId": c.id.as_str(),
                "connectedAt": iso8601_millis(c.connected_at_ms),
                "transport": c.transport.as_str(),
            })
        })
        .collect();
    call.json(StatusCode::OK, json!({"connections": list}).to_string())
}
