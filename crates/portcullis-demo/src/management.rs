//! How the demo pushes: through [`portcullis_client::Management`], the management API client
//! that signs every call with SigV4 (service `execute-api`) as boto3's
//! `apigatewaymanagementapi` client does. It calls `@connections`, `@users` and `@topics`
//! alike (`push_to_user`, `publish`, `subscribe`, …); this module adds the demo's broadcast.

use axum::body::Bytes;
use futures_util::StreamExt;
pub use portcullis_client::{ClientError, Credentials, Management};

/// How many POSTs a broadcast keeps in flight at once.
const BROADCAST_CONCURRENCY: usize = 16;

/// What a broadcast did, for the log.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BroadcastReport {
    pub delivered: usize,
    pub gone: usize,
    pub failed: usize,
}

/// Pushes `data` to every open connection (`GET @connections`, then one `POST` each); a
/// connection that went away meanwhile is counted as gone, not as a failure.
pub async fn broadcast(
    management: &Management,
    data: Bytes,
) -> Result<BroadcastReport, ClientError> {
    let connections = management.list_connections().await?;
    let mut report = BroadcastReport::default();
    let mut posts = futures_util::stream::iter(connections)
        .map(|c| {
            let data = data.clone();
            async move {
                let result = management.post_to_connection(&c.connection_id, data).await;
                (result, c.connection_id)
            }
        })
        .buffer_unordered(BROADCAST_CONCURRENCY);
    while let Some((result, id)) = posts.next().await {
        match result {
            Ok(()) => report.delivered += 1,
            Err(e) if e.is_gone() => {
                tracing::debug!(connection_id = %id, "connection gone during broadcast");
                report.gone += 1;
            }
            Err(e) => {
                tracing::warn!(connection_id = %id, error = %e, "push failed");
                report.failed += 1;
            }
        }
    }
    Ok(report)
}
