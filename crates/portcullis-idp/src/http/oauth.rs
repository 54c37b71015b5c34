//! The pools' OAuth2/OIDC endpoints: discovery, JWKS, token (`authorization_code`,
//! `client_credentials`, `refresh_token`), revocation, `userInfo` and `logout` (cognito.md
//! §3.5).
//!
//! Every body is read with a bound ([`MAX_BODY_BYTES`]); errors are RFC 6749 JSON; token
//! responses carry `Cache-Control: no-store`. The token and revocation endpoints are rate limited
//! per client IP when the server provides `ConnectInfo<SocketAddr>`.

use std::sync::Arc;

use axum::Router;
use axum::extract::{Path, Request, State};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use http::{HeaderMap, HeaderValue, StatusCode, header};
use portcullis_config::Secret;
use serde_json::{Map, Value, json};

use super::page::{csrf_cookie, error_page, redirect, server_error};
use super::reply::{
    Form, FormRules, MAX_BODY_BYTES, json_response, no_store, not_found, oauth_error, rate_limited,
    read_form,
};
use crate::oauth_code::parse_query;
use crate::{ClientAuth, IdentityProvider, IdpError, OAuthError, unix_now};

/// How the token and revocation endpoints read their form.
const TOKEN_FORM: FormRules = FormRules {
    max_bytes: MAX_BODY_BYTES,
    utf8: false,
};
/// `Cache-Control: max-age` of the JWKS.
const JWKS_MAX_AGE_SECS: u32 = 300;

/// The OAuth routes (state: the identity provider).
pub(crate) fn routes() -> Router<Arc<IdentityProvider>> {
    Router::new()
        .route(
            "/pools/{pool}/.well-known/openid-configuration",
            get(discovery),
        )
        .route("/pools/{pool}/.well-known/jwks.json", get(jwks))
        .route("/pools/{pool}/oauth2/token", post(token))
        .route("/pools/{pool}/oauth2/revoke", post(revoke))
        .route(
            "/pools/{pool}/oauth2/userInfo",
            get(userinfo).post(userinfo),
        )
        .route("/pools/{pool}/logout", get(logout))
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
    let form = read_form(&parts.headers, body, TOKEN_FORM).await?;
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
        let form = read_form(&parts.headers, body, TOKEN_FORM).await?;
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

// ---- userInfo ----

fn bearer_error(status: StatusCode, code: &str, description: &str) -> Response {
    let mut response = json_response(
        status,
        &json!({"error": code, "error_description": description}),
    );
    let h = response.headers_mut();
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    if let Ok(v) = HeaderValue::from_str(&format!(
        "Bearer error=\"{code}\", error_description=\"{description}\""
    )) {
        h.insert(header::WWW_AUTHENTICATE, v);
    }
    response
}

fn invalid_token() -> Response {
    bearer_error(
        StatusCode::UNAUTHORIZED,
        "invalid_token",
        "Access token is expired, disabled, or deleted, or the user has globally signed out.",
    )
}

async fn userinfo(
    State(idp): State<Arc<IdentityProvider>>,
    Path(pool): Path<String>,
    request: Request,
) -> Response {
    if idp.pool(&pool).is_err() {
        return invalid_token();
    }
    let token = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, t)| t.trim().to_owned());
    let Some(token) = token.filter(|t| !t.is_empty()) else {
        return invalid_token();
    };
    let Some(verifier) = idp.access_verifier(&pool) else {
        return server_error(&IdpError::Config("userInfo verifier unavailable".into()));
    };
    let Ok(verified) = verifier.verify(&token).await else {
        return invalid_token();
    };
    let sub = verified.subject.clone().unwrap_or_default();
    let origin_jti = verified.claims.get("origin_jti").and_then(Value::as_str);
    let iat = verified
        .claims
        .get("iat")
        .and_then(Value::as_i64)
        .unwrap_or(0);
    if idp.is_revoked(origin_jti, &sub, iat).await {
        return invalid_token();
    }
    if !verified.scopes.iter().any(|s| s == "openid") {
        return bearer_error(
            StatusCode::FORBIDDEN,
            "insufficient_scope",
            "The access token does not have the openid scope.",
        );
    }
    let user = match idp.store().get_user_by_sub(&sub).await {
        Ok(Some(u)) if u.pool == pool && u.enabled => u,
        Ok(_) => return invalid_token(),
        Err(e) => return server_error(&e.into()),
    };
    let has = |s: &str| verified.scopes.iter().any(|x| x == s);
    let mut body = Map::new();
    for (name, value) in crate::attributes::token_claims(&user.attributes) {
        let allowed = match name.as_str() {
            "email" | "email_verified" => has("email") || has("profile"),
            "phone_number" | "phone_number_verified" => has("phone") || has("profile"),
            _ => has("profile"),
        };
        if !allowed {
            continue;
        }
        let v = if name.ends_with("_verified") {
            json!(value == "true")
        } else {
            json!(value)
        };
        body.insert(name.clone(), v);
    }
    if body.contains_key("email") && !body.contains_key("email_verified") {
        body.insert("email_verified".into(), json!(false));
    }
    body.insert("sub".into(), json!(user.sub));
    body.insert("username".into(), json!(user.username));
    let mut response = json_response(StatusCode::OK, &Value::Object(body));
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

// ---- logout ----

async fn logout(
    State(idp): State<Arc<IdentityProvider>>,
    Path(pool): Path<String>,
    request: Request,
) -> Response {
    if idp.pool(&pool).is_err() {
        return error_page(StatusCode::NOT_FOUND, "There is no such user pool.");
    }
    let query = match parse_query(request.uri().query().unwrap_or("")) {
        Ok(q) => q,
        Err(why) => return error_page(StatusCode::BAD_REQUEST, why),
    };
    let (Some(client_id), Some(logout_uri)) = (query.get("client_id"), query.get("logout_uri"))
    else {
        return error_page(
            StatusCode::BAD_REQUEST,
            "client_id and logout_uri are required.",
        );
    };
    let client = match idp.store().get_client(client_id).await {
        Ok(Some(c)) if c.pool == pool => c,
        Ok(_) => {
            return error_page(
                StatusCode::BAD_REQUEST,
                "The client is not known to this pool.",
            );
        }
        Err(e) => return server_error(&e.into()),
    };
    if !client.logout_urls.iter().any(|u| u == logout_uri) {
        return error_page(
            StatusCode::BAD_REQUEST,
            "logout_uri is not a registered sign-out URL of this client.",
        );
    }
    let mut response = redirect(logout_uri);
    if let Some(v) = csrf_cookie(&idp, &pool, "", Some(0)) {
        response.headers_mut().append(header::SET_COOKIE, v);
    }
    response
}
