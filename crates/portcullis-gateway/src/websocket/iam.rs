//! `$connect` of an `authorization = "AWS_IAM"` API: the upgrade (or SSE request) must be
//! signed with identity-pool credentials (presigned query or `Authorization` header), and the
//! role's policy must allow `execute-api:Invoke` on `.../{stage}/$connect`. Anything else is a
//! 403 `{"message":"Forbidden"}` with the reason in an info log line.

use std::sync::Arc;

use axum::body::Body;
use http::Request;
use portcullis_auth::sigv4::SignableRequest;
use portcullis_core::policy;

use super::WsApi;
use crate::authorizers::Identity;
use crate::state::State;

/// The parts of the request a signature covers, as they arrived.
pub struct Signed {
    method: String,
    path: String,
    query: String,
    headers: Vec<(String, String)>,
}

impl Signed {
    pub fn of(req: &Request<Body>) -> Self {
        Signed {
            method: req.method().as_str().to_owned(),
            path: req.uri().path().to_owned(),
            query: req.uri().query().unwrap_or("").to_owned(),
            headers: req
                .headers()
                .iter()
                .filter_map(|(n, v)| Some((n.as_str().to_owned(), v.to_str().ok()?.to_owned())))
                .collect(),
        }
    }
}

/// The caller's identity when the signature, the credentials and the role's policy for
/// `$connect` all check out; else why not (for the log).
pub(super) async fn authorize(
    state: &State,
    api: &WsApi,
    signed: Option<&Signed>,
) -> Result<Arc<Identity>, String> {
    let (Some(iam), Some(signed)) = (&state.iam, signed) else {
        return Err("no identity pool to verify credentials with".to_owned());
    };
    let headers: Vec<(&str, &str)> = signed
        .headers
        .iter()
        .map(|(n, v)| (n.as_str(), v.as_str()))
        .collect();
    let request = SignableRequest {
        method: &signed.method,
        path: &signed.path,
        query: &signed.query,
        headers: &headers,
        body: &[],
    };
    let arn = policy::websocket_arn(
        &state.management.region,
        &state.management.account_id,
        &api.config.api_id,
        &api.config.stage,
        "$connect",
    );
    iam.authenticate(&request, &arn)
        .await
        .map(Arc::new)
        .map_err(|reason| reason.to_string())
}
