//! The pools' OAuth2/OIDC endpoints as an axum [`Router`] (mounted by the binary on the public
//! listener): discovery, JWKS, token (`authorization_code`, `client_credentials`,
//! `refresh_token`), revocation, and the hosted UI routes of [`crate::hosted`].
//!
//! Every body is read with a bound ([`MAX_BODY_BYTES`]); errors are RFC 6749 JSON; token
//! responses carry `Cache-Control: no-store`. The token and revocation endpoints are rate limited
//! per client IP when the server provides `ConnectInfo<SocketAddr>`.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::body::{Body, to_bytes};
use axum::extract::{ConnectInfo, Path, Request, State};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use http::{HeaderMap, HeaderValue, StatusCode, header};
use portcullis_config::Secret;
use serde_json::json;

use crate::{ClientAuth, IdentityProvider, OAuthError, unix_now};

/// Largest form body accepted by the token and revocation endpoints.
pub const MAX_BODY_BYTES: usize = 16 * 1024;
/// Most form parameters accepted.
const MAX_PARAMS: usize = 32;
/// `Cache-Control: max-age` of the JWKS.
const JWKS_MAX_AGE_SECS: u32 = 300;

/// The router for every configured pool under `/pools/{pool}/…`.
pub fn router(idp: Arc<IdentityProvider>) -> Router {
    Router::new()
        .route(
            "/pools/{pool}/.well-known/openid-configuration",
            get(discovery),
        )
        .route("/pools/{pool}/.well-known/jwks.json", get(jwks))
        .route("/pools/{pool}/oauth2/token", post(token))
        .route("/pools/{pool}/oauth2/revoke", post(revoke))
        .merge(crate::hosted::routes())
        .merge(crate::web_session::routes())
        .with_state(idp)
}

pub(crate) fn json_response(status: StatusCode, body: &serde_json::Value) -> Response {
    let mut response = (status, body.to_string()).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json;charset=UTF-8"),
    );
    response
}

pub(crate) fn not_found() -> Response {
    json_response(StatusCode::NOT_FOUND, &json!({"error": "not_found"}))
}

async fn discovery(State(idp): State<Arc<IdentityProvider>>, Path(pool): Path<String>) -> Response {
    let Ok(state) = idp.pool(&pool) else {
        return not_found();
    };
    let iss = &state.issuer;
    let mut scopes: Vec<String> = ["openid", "email", "phone", "profile"]
        .iter()
        .map(|s| (*s).to_owned())
        .collect();
    for (id, rs) in &state.config.resource_servers {
        let id = if rs.identifier.is_empty() {
            id
        } else {
            &rs.identifier
        };
        scopes.extend(rs.scopes.iter().map(|s| format!("{id}/{s}")));
    }
    let body = json!({
        "issuer": iss,
        "authorization_endpoint": format!("{iss}/oauth2/authorize"),
        "token_endpoint": format!("{iss}/oauth2/token"),
        "userinfo_endpoint": format!("{iss}/oauth2/userInfo"),
        "revocation_endpoint": format!("{iss}/oauth2/revoke"),
        "jwks_uri": format!("{iss}/.well-known/jwks.json"),
        "end_session_endpoint": format!("{iss}/logout"),
        "response_types_supported": crate::oauth_code::RESPONSE_TYPES,
        "grant_types_supported": ["authorization_code", "client_credentials", "refresh_token"],
        "scopes_supported": scopes,
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
        "code_challenge_methods_supported": ["S256"],
    });
    json_response(StatusCode::OK, &body)
}

async fn jwks(State(idp): State<Arc<IdentityProvider>>, Path(pool): Path<String>) -> Response {
    let Ok(state) = idp.pool(&pool) else {
        return not_found();
    };
    let keys = state.keys.jwks_at(unix_now());
    let mut response = json_response(StatusCode::OK, &json!({ "keys": keys }));
    if let Ok(v) = HeaderValue::from_str(&format!("public, max-age={JWKS_MAX_AGE_SECS}")) {
        response.headers_mut().insert(header::CACHE_CONTROL, v);
    }
    response
}

pub(crate) fn oauth_error(e: &OAuthError) -> Response {
    let status = match e {
        OAuthError::InvalidClient => StatusCode::UNAUTHORIZED,
        OAuthError::TooManyRequests => StatusCode::TOO_MANY_REQUESTS,
        OAuthError::Server(inner) => {
            tracing::error!(error = %inner, "identity provider failure at the token endpoint");
            StatusCode::INTERNAL_SERVER_ERROR
        }
        _ => StatusCode::BAD_REQUEST,
    };
    let mut body = json!({ "error": e.code() });
    match e {
        OAuthError::InvalidRequest(why) => body["error_description"] = json!(why),
        OAuthError::TooManyRequests => {
            body["error_description"] = json!("too many requests from this address; retry later");
        }
        _ => {}
    }
    let mut response = json_response(status, &body);
    let headers = response.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    match e {
        OAuthError::InvalidClient => {
            headers.insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Basic realm=\"portcullis\""),
            );
        }
        OAuthError::TooManyRequests => {
            headers.insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        _ => {}
    }
    response
}

/// A parsed form: each parameter at most once (RFC 6749 §3.2).
pub(crate) struct Form(Vec<(String, String)>);

impl Form {
    pub(crate) fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .filter(|v| !v.is_empty())
    }
}

/// Reads and parses the bounded form body; checks the content type.
pub(crate) async fn read_form(headers: &HeaderMap, body: Body) -> Result<Form, OAuthError> {
    let form_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| {
            v.trim()
                .eq_ignore_ascii_case("application/x-www-form-urlencoded")
        });
    if !form_type {
        return Err(OAuthError::InvalidRequest(
            "content type must be application/x-www-form-urlencoded",
        ));
    }
    let bytes = to_bytes(body, MAX_BODY_BYTES)
        .await
        .map_err(|_| OAuthError::InvalidRequest("request body too large"))?;
    let mut params: Vec<(String, String)> = Vec::new();
    for (k, v) in url::form_urlencoded::parse(&bytes) {
        if params.len() >= MAX_PARAMS {
            return Err(OAuthError::InvalidRequest("too many parameters"));
        }
        if params.iter().any(|(seen, _)| *seen == k) {
            return Err(OAuthError::InvalidRequest("repeated parameter"));
        }
        params.push((k.into_owned(), v.into_owned()));
    }
    Ok(Form(params))
}

/// Client credentials from `Authorization: Basic` or the form (never both).
fn client_auth(headers: &HeaderMap, form: &Form) -> Result<ClientAuth, OAuthError> {
    let basic = match headers.get(header::AUTHORIZATION) {
        None => None,
        Some(value) => {
            let value = value.to_str().map_err(|_| OAuthError::InvalidClient)?;
            let (scheme, rest) = value.split_once(' ').ok_or(OAuthError::InvalidClient)?;
            if !scheme.eq_ignore_ascii_case("basic") {
                return Err(OAuthError::InvalidClient);
            }
            let decoded = STANDARD
                .decode(rest.trim())
                .map_err(|_| OAuthError::InvalidClient)?;
            let decoded = String::from_utf8(decoded).map_err(|_| OAuthError::InvalidClient)?;
            let (id, secret) = decoded.split_once(':').ok_or(OAuthError::InvalidClient)?;
            Some(ClientAuth {
                client_id: id.to_owned(),
                secret: Some(Secret::new(secret)).filter(|s| !s.expose().is_empty()),
                basic: true,
            })
        }
    };
    let form_secret = form.get("client_secret");
    match basic {
        Some(auth) => {
            if form_secret.is_some() {
                return Err(OAuthError::InvalidRequest(
                    "client authenticated by more than one method",
                ));
            }
            if form.get("client_id").is_some_and(|id| id != auth.client_id) {
                return Err(OAuthError::InvalidClient);
            }
            Ok(auth)
        }
        None => {
            let client_id = form.get("client_id").ok_or(OAuthError::InvalidClient)?;
            Ok(ClientAuth {
                client_id: client_id.to_owned(),
                secret: form_secret.map(Secret::new),
                basic: false,
            })
        }
    }
}

/// True when the client's address has used up `pool`'s `rate_limit_per_ip`.
pub(crate) fn rate_limited(idp: &IdentityProvider, pool: &str, request: &Request) -> bool {
    match request.extensions().get::<ConnectInfo<SocketAddr>>() {
        Some(ConnectInfo(addr)) => !idp.allow_request(pool, addr.ip()),
        None => false,
    }
}

pub(crate) fn no_store(mut response: Response) -> Response {
    let headers = response.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    response
}

async fn token(
    State(idp): State<Arc<IdentityProvider>>,
    Path(pool): Path<String>,
    request: Request,
) -> Response {
    if idp.pool(&pool).is_err() {
        return not_found();
    }
    match token_inner(&idp, &pool, request).await {
        Ok(response) => response,
        Err(e) => oauth_error(&e),
    }
}

async fn token_inner(
    idp: &IdentityProvider,
    pool: &str,
    request: Request,
) -> Result<Response, OAuthError> {
    if rate_limited(idp, pool, &request) {
        return Err(OAuthError::TooManyRequests);
    }
    let (parts, body) = request.into_parts();
    let form = read_form(&parts.headers, body).await?;
    let grant_type = form
        .get("grant_type")
        .ok_or(OAuthError::InvalidRequest("grant_type is missing"))?;
    let grant = match grant_type {
        "client_credentials" => {
            let auth = client_auth(&parts.headers, &form)?;
            idp.client_credentials(pool, &auth, form.get("scope"))
                .await?
        }
        "refresh_token" => {
            let auth = client_auth(&parts.headers, &form)?;
            let refresh = form
                .get("refresh_token")
                .ok_or(OAuthError::InvalidRequest("refresh_token is missing"))?;
            idp.refresh(pool, &auth, &Secret::new(refresh)).await?
        }
        "authorization_code" => {
            let auth = client_auth(&parts.headers, &form)?;
            let granted = idp
                .code_flow()
                .redeem(
                    idp,
                    pool,
                    &auth,
                    form.get("code"),
                    form.get("redirect_uri"),
                    form.get("code_verifier"),
                )
                .await?;
            return Ok(no_store(json_response(StatusCode::OK, &granted.body())));
        }
        _ => return Err(OAuthError::UnsupportedGrantType),
    };
    let mut body = json!({
        "access_token": grant.access_token.expose(),
        "token_type": "Bearer",
        "expires_in": grant.expires_in,
    });
    if let Some(id) = &grant.id_token {
        body["id_token"] = json!(id.expose());
    }
    if let Some(next) = &grant.refresh_token {
        body["refresh_token"] = json!(next.expose());
    }
    Ok(no_store(json_response(StatusCode::OK, &body)))
}

async fn revoke(
    State(idp): State<Arc<IdentityProvider>>,
    Path(pool): Path<String>,
    request: Request,
) -> Response {
    if idp.pool(&pool).is_err() {
        return not_found();
    }
    let result = async {
        if rate_limited(&idp, &pool, &request) {
            return Err(OAuthError::TooManyRequests);
        }
        let (parts, body) = request.into_parts();
        let form = read_form(&parts.headers, body).await?;
        let token = form
            .get("token")
            .ok_or(OAuthError::InvalidRequest("token is missing"))?;
        let auth = client_auth(&parts.headers, &form)?;
        idp.revoke(&pool, &auth, &Secret::new(token)).await
    }
    .await;
    match result {
        Ok(()) => no_store(StatusCode::OK.into_response()),
        Err(e) => oauth_error(&e),
    }
}
