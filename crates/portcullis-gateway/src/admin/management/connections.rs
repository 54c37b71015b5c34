//! `@connections`: one connection by id (`POST` data, `GET` its description, `DELETE` it),
//! the list of an API's connections, and a connection's topic subscriptions.

use http::{Method, Response, StatusCode};
use portcullis_core::close::Close;
use portcullis_core::event::iso8601_millis;
use portcullis_core::id::ConnectionId;
use serde_json::json;

use super::{Call, ManagementError};
use crate::registry::{SubscribeError, Topic, TopicLimits};
use axum::body::Body;

type Answer = Result<Response<Body>, ManagementError>;

/// `GET @connections`: the ids of every connection of the stage's APIs.
pub(super) async fn list(call: &Call<'_>) -> Answer {
    let registry = call.state.registry.as_ref();
    let mut ids = Vec::new();
    for api in &call.apis {
        ids.extend(registry.list(&api.name).await?);
    }
    let list: Vec<_> = ids
        .iter()
        .map(|id| json!({"connectionId": id.as_str()}))
        .collect();
    Ok(call.json(StatusCode::OK, json!({"connections": list}).to_string()))
}

/// `POST`, `GET` or `DELETE @connections/{id}`.
pub(super) async fn one(call: &Call<'_>, raw_id: &str) -> Answer {
    let id = ConnectionId::parse(raw_id).ok_or(ManagementError::Gone)?;
    let registry = call.state.registry.as_ref();
    match call.method {
        Method::POST => {
            let message = call.message()?;
            match registry.post(&id, message).await {
                Ok(()) => Ok(call.empty(StatusCode::OK)),
                Err(e) => Err(e.into()),
            }
        }
        Method::GET => {
            let info = registry.info(&id).await?;
            let mut doc = json!({
                "connectedAt": iso8601_millis(info.connected_at_ms),
                "identity": {"sourceIp": info.source_ip, "userAgent": info.user_agent},
                "lastActiveAt": iso8601_millis(info.last_active_ms),
            });
            if let (Some(principal), Some(obj)) = (info.principal, doc.as_object_mut()) {
                obj.insert("principalId".to_owned(), json!(principal));
            }
            Ok(call.json(StatusCode::OK, doc.to_string()))
        }
        _ => {
            registry.close(&id, Close::Deleted).await?;
            Ok(call.empty(StatusCode::NO_CONTENT))
        }
    }
}

/// `PUT` (subscribe) or `DELETE` (unsubscribe) `@connections/{id}/topics/{topic}`. The
/// connection must belong to an API of the path's stage; the caps are its API's.
pub(super) async fn subscription(call: &Call<'_>, raw_id: &str, raw_topic: &str) -> Answer {
    let topic = Topic::parse(raw_topic).map_err(|e| ManagementError::BadRequest(e.to_string()))?;
    let id = ConnectionId::parse(raw_id).ok_or(ManagementError::Gone)?;
    let registry = call.state.registry.as_ref();
    let info = registry.info(&id).await?;
    let api = call
        .apis
        .iter()
        .find(|api| *api.name == *info.api)
        .ok_or(ManagementError::Gone)?;
    if call.method == Method::DELETE {
        registry.unsubscribe(&id, &topic).await?;
        return Ok(call.empty(StatusCode::NO_CONTENT));
    }
    let limits = TopicLimits {
        per_connection: api.config.max_topics_per_connection,
        per_topic: api.config.max_subscribers_per_topic,
    };
    match registry.subscribe(&id, &topic, limits).await {
        Ok(()) => Ok(call.empty(StatusCode::NO_CONTENT)),
        Err(SubscribeError::Gone) => Err(ManagementError::Gone),
        Err(SubscribeError::Unavailable) => Err(ManagementError::Unavailable),
        Err(e) => Err(ManagementError::LimitExceeded(format!("{e}"))),
    }
}
