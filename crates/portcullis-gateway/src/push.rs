//! Pushes to many connections at once: to every connection of a principal (`@users`) or every
//! subscriber of a topic (`@topics`), across the WebSocket APIs a stage selects.
//!
//! A push never waits for a receiver: the message is serialised once, every receiver's queue
//! gets a reference to the same bytes, and a receiver whose queue is full is skipped and
//! counted (`portcullis_push_skipped_total`). One caller's pushes reach each receiver in the
//! order they were made. A push to a principal is also kept in the replay log of each API
//! with `sse` (`Outbound::Logged`), connected or not.

use std::sync::Arc;

use crate::registry::{ConnectionSummary, Fanout, Outbound, Topic, Unavailable};
use crate::state::State;
use crate::websocket::WsApi;

/// Deliver `message` to every connection of `principal` in `apis`.
pub async fn to_user(
    state: &State,
    apis: &[&Arc<WsApi>],
    principal: &str,
    message: &Outbound,
) -> Result<Fanout, Unavailable> {
    let mut total = Fanout::default();
    for api in apis {
        // An API with SSE logs the push first, so a stream that resumes later replays it.
        let logged = match &api.replay {
            Some(replay) => replay.log(principal, message).await?,
            None => None,
        };
        let message = logged.as_ref().unwrap_or(message);
        let fanout = state
            .registry
            .push_principal(&api.name, principal, message)
            .await?;
        state
            .metrics
            .pushed(&api.name, "user", fanout.delivered, fanout.full);
        total.add(fanout);
    }
    Ok(total)
}

/// Deliver `message` to every subscriber of `topic` in `apis`.
pub async fn to_topic(
    state: &State,
    apis: &[&Arc<WsApi>],
    topic: &Topic,
    message: &Outbound,
) -> Result<Fanout, Unavailable> {
    let mut total = Fanout::default();
    for api in apis {
        let fanout = state.registry.push_topic(&api.name, topic, message).await?;
        state
            .metrics
            .pushed(&api.name, "topic", fanout.delivered, fanout.full);
        total.add(fanout);
    }
    Ok(total)
}

/// The connections of `principal` in `apis`.
pub async fn user_connections(
    state: &State,
    apis: &[&Arc<WsApi>],
    principal: &str,
) -> Result<Vec<ConnectionSummary>, Unavailable> {
    let mut found = Vec::new();
    for api in apis {
        found.extend(state.registry.by_principal(&api.name, principal).await?);
    }
    Ok(found)
}

/// The subscribers of `topic` in `apis`.
pub async fn topic_subscribers(
    state: &State,
    apis: &[&Arc<WsApi>],
    topic: &Topic,
) -> Result<Vec<ConnectionSummary>, Unavailable> {
    let mut found = Vec::new();
    for api in apis {
        found.extend(state.registry.by_topic(&api.name, topic).await?);
    }
    Ok(found)
}
