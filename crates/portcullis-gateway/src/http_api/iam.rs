//! `authorization = "AWS_IAM"` on an HTTP route: the request must carry a SigV4
//! `Authorization` header (with `X-Amz-Date` and `X-Amz-Security-Token`) by identity-pool
//! credentials, whose payload hash covers the body (read first, within `max_body_bytes`), and
//! the role's policy must allow `execute-api:Invoke` on
//! `arn:aws:execute-api:{region}:{account}:{api_id}/{stage}/{METHOD}/{path}`. Unsigned, badly
//! signed, revoked or denied requests get 403 `{"message":"Forbidden"}` (HTTP APIs' answer;
//! REST APIs' "Missing Authentication Token" is not used), the reason in an info log line.

use axum::body::Body;
use http::{Request, Response, StatusCode};
use portcullis_auth::sigv4::SignableRequest;
use portcullis_core::{policy, redact};
use tracing::info;

use super::HttpApi;
use super::body::read_body;
use crate::authorizers::Identity;
use crate::iam;
use crate::reply;
use crate::state::State;

/// The caller of an `AWS_IAM` route, and the request to go on with (its body read).
pub(super) async fn authorize(
    state: &State,
    api: &HttpApi,
    route_key: &str,
    path: &str,
    req: Request<Body>,
) -> Result<(Identity, Request<Body>), Response<Body>> {
    let (parts, body) = req.into_parts();
    let body = read_body(body, &parts.headers, api.config.max_body_bytes).await?;
    let headers: Vec<(&str, &str)> = parts
        .headers
        .iter()
        .filter_map(|(n, v)| Some((n.as_str(), v.to_str().ok()?)))
        .collect();
    // Over HTTP/2 the host a client signed is the `:authority`.
    let authority = parts.uri.authority().map(|a| a.as_str().to_owned());
    let mut signed_headers = headers.clone();
    if let Some(authority) = &authority
        && !headers.iter().any(|(n, _)| n.eq_ignore_ascii_case("host"))
    {
        signed_headers.push(("host", authority));
    }
    let request = SignableRequest {
        method: parts.method.as_str(),
        path: parts.uri.path(),
        query: parts.uri.query().unwrap_or(""),
        headers: &signed_headers,
        body: &body,
    };
    let arn = policy::http_arn(
        &state.management.region,
        &state.management.account_id,
        &api.config.api_id,
        &api.config.stage,
        parts.method.as_str(),
        path,
    );
    let decided = match &state.iam {
        Some(iam) => iam
            .authenticate(&request, &arn)
            .await
            .map_err(|e| e.to_string()),
        None => Err("no identity pool to verify credentials with".to_owned()),
    };
    match decided {
        Ok(mut identity) => {
            if let Some(access) = &identity.iam {
                identity.context = iam::http_context(access);
            }
            Ok((identity, Request::from_parts(parts, Body::from(body))))
        }
        Err(reason) => {
            info!(api = %api.name, route = %route_key, path = %redact::redact_url(parts.uri.path()), status = 403, reason = %reason, "request refused: AWS_IAM");
            Err(reply::message(StatusCode::FORBIDDEN, "Forbidden"))
        }
    }
}
