//! Cookie sessions for browser pages on the gateway's own origin (a "backend for frontend"):
//! the page runs authorization code + PKCE as usual but redeems the code here, and the tokens
//! go into cookies the page's scripts cannot read. A script injected into the page can use the
//! session while the page is open, but cannot carry a token away.
//!
//! - `POST /pools/{pool}/session` — form `client_id`, `code`, `redirect_uri`, `code_verifier`
//!   (the token endpoint's `authorization_code` parameters). The `Origin` header must be the
//!   origin of one of the client's callback URLs. Sets `portcullis_access` (the access token;
//!   HttpOnly, `Path=/`), `portcullis_refresh` (HttpOnly, only sent to this endpoint's path)
//!   and `portcullis_csrf` (readable, for double-submit checks), all `SameSite=Strict` and
//!   `Secure` when the public URL is https. Answers the session's description (below).
//! - `GET /pools/{pool}/session` — the description when the access cookie holds a valid,
//!   unrevoked token, else 401.
//! - `POST /pools/{pool}/session/refresh` — header `X-CSRF-Token` = the CSRF cookie; form
//!   `client_id`. A new access cookie from the refresh cookie; 401 `invalid_grant` (and the
//!   cookies cleared) when the session has ended.
//! - `POST /pools/{pool}/session/logout` — header `X-CSRF-Token`; form `client_id`. Revokes
//!   the session (which closes its WebSocket connections) and clears the cookies; 204.
//!
//! The description is `{"username", "scope", "expires_in", "csrf"}`: never a token.
//!
//! The readable `portcullis_csrf` cookie lives as long as the session's refresh cookie and is
//! cleared with it, so a page can tell from it whether a session may exist and ask
//! `GET /session` only then: a signed-out visit makes no request that fails.

use std::sync::Arc;

use axum::Router;
use axum::extract::{Path, Request, State};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use http::{HeaderMap, HeaderValue, StatusCode, header};
use portcullis_config::Secret;
use serde_json::{Value, json};

use super::reply::{
    Form, FormRules, MAX_BODY_BYTES, json_response, no_store, not_found, oauth_error, rate_limited,
    read_form, request_cookie, secure_cookies, unique_request_cookie,
};
use crate::oauth_code::ct_eq;
use crate::{ClientAuth, IdentityProvider, OAuthError, unix_now};

/// The access token (what a `jwt` authorizer reads with `route.request.cookie.portcullis_access`).
pub const ACCESS_COOKIE: &str = "portcullis_access";
/// The refresh token; sent only to `/pools/{pool}/session`.
pub const REFRESH_COOKIE: &str = "portcullis_refresh";
/// The double-submit value: readable by the page, echoed in `X-CSRF-Token` or `?csrf=`.
pub const CSRF_COOKIE: &str = "portcullis_csrf";
/// Header carrying the CSRF cookie's value on refresh and logout.
pub const CSRF_HEADER: &str = "x-csrf-token";

/// How the session endpoints read their form (as the token endpoint does).
const SESSION_FORM: FormRules = FormRules {
    max_bytes: MAX_BODY_BYTES,
    utf8: false,
};

/// The cookie-session routes (state: the identity provider).
pub(crate) fn routes() -> Router<Arc<IdentityProvider>> {
    Router::new()
        .route("/pools/{pool}/session", post(start).get(describe))
        .route("/pools/{pool}/session/refresh", post(refresh))
        .route("/pools/{pool}/session/logout", post(logout))
}

/// Why a session request was refused, as RFC 6749 JSON.
fn refused(status: StatusCode, error: &'static str, description: &'static str) -> Response {
    no_store(json_response(
        status,
        &json!({ "error": error, "error_description": description }),
    ))
}

/// `scheme://host[:port]` of an absolute URL.
fn origin_of(url: &str) -> Option<String> {
    let parsed = url::Url::parse(url).ok()?;
    match parsed.origin() {
        origin @ url::Origin::Tuple(..) => Some(origin.ascii_serialization()),
        url::Origin::Opaque(_) => None,
    }
}

fn cookie(
    name: &str,
    value: &str,
    path: &str,
    max_age: i64,
    http_only: bool,
    secure: bool,
) -> Option<HeaderValue> {
    let mut text = format!("{name}={value}; Path={path}; Max-Age={max_age}; SameSite=Strict");
    if http_only {
        text.push_str("; HttpOnly");
    }
    if secure {
        text.push_str("; Secure");
    }
    HeaderValue::from_str(&text).ok()
}

struct CookieJar {
    pool: String,
    secure: bool,
}

impl CookieJar {
    fn new(idp: &IdentityProvider, pool: &str) -> Self {
        CookieJar {
            pool: pool.to_owned(),
            secure: secure_cookies(idp),
        }
    }

    fn refresh_path(&self) -> String {
        format!("/pools/{}/session", self.pool)
    }

    fn set_access(&self, headers: &mut HeaderMap, token: &Secret, max_age: i64) {
        if let Some(v) = cookie(
            ACCESS_COOKIE,
            token.expose(),
            "/",
            max_age,
            true,
            self.secure,
        ) {
            headers.append(header::SET_COOKIE, v);
        }
    }

    fn set_refresh(&self, headers: &mut HeaderMap, token: &Secret, max_age: i64) {
        let path = self.refresh_path();
        if let Some(v) = cookie(
            REFRESH_COOKIE,
            token.expose(),
            &path,
            max_age,
            true,
            self.secure,
        ) {
            headers.append(header::SET_COOKIE, v);
        }
    }

    fn set_csrf(&self, headers: &mut HeaderMap, value: &str, max_age: i64) {
        if let Some(v) = cookie(CSRF_COOKIE, value, "/", max_age, false, self.secure) {
            headers.append(header::SET_COOKIE, v);
        }
    }

    fn clear(&self, headers: &mut HeaderMap) {
        let refresh_path = self.refresh_path();
        for (name, path, http_only) in [
            (ACCESS_COOKIE, "/", true),
            (REFRESH_COOKIE, refresh_path.as_str(), true),
            (CSRF_COOKIE, "/", false),
        ] {
            if let Some(v) = cookie(name, "", path, 0, http_only, self.secure) {
                headers.append(header::SET_COOKIE, v);
            }
        }
    }
}

/// The claims of a token this provider has just minted (no verification needed).
fn minted_claims(token: &Secret) -> Value {
    token
        .expose()
        .split('.')
        .nth(1)
        .and_then(|payload| URL_SAFE_NO_PAD.decode(payload).ok())
        .and_then(|bytes| serde_json::from_slice(&bytes).ok())
        .unwrap_or(Value::Null)
}

fn description(claims: &Value, expires_in: i64, csrf: &str) -> Value {
    json!({
        "username": claims.get("username").and_then(Value::as_str).unwrap_or_default(),
        "scope": claims.get("scope").and_then(Value::as_str).unwrap_or_default(),
        "expires_in": expires_in,
        "csrf": csrf,
    })
}

/// A new CSRF value: 256 random bits, base64url.
fn new_csrf() -> Result<String, OAuthError> {
    crate::oauth_code::random_id().map_err(OAuthError::Server)
}

/// The double-submit check of refresh and logout: header and cookie present and equal, the
/// cookie sent once (a second one may have been set by a sibling subdomain).
fn csrf_ok(headers: &HeaderMap) -> bool {
    let cookie = unique_request_cookie(headers, CSRF_COOKIE).filter(|v| !v.is_empty());
    let echoed = headers
        .get(CSRF_HEADER)
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty());
    match (cookie, echoed) {
        (Some(cookie), Some(echoed)) => ct_eq(cookie, echoed),
        _ => false,
    }
}

fn public_client(form: &Form) -> Result<ClientAuth, OAuthError> {
    let client_id = form.get("client_id").ok_or(OAuthError::InvalidClient)?;
    Ok(ClientAuth {
        client_id: client_id.to_owned(),
        secret: None,
        basic: false,
    })
}

// ---- POST /session ----

async fn start(
    State(idp): State<Arc<IdentityProvider>>,
    Path(pool): Path<String>,
    request: Request,
) -> Response {
    if idp.pool(&pool).is_err() {
        return not_found();
    }
    match start_inner(&idp, &pool, request).await {
        Ok(response) => response,
        Err(e) => oauth_error(&e),
    }
}

async fn start_inner(
    idp: &IdentityProvider,
    pool: &str,
    request: Request,
) -> Result<Response, OAuthError> {
    if rate_limited(idp, pool, &request) {
        return Err(OAuthError::TooManyRequests);
    }
    let (parts, body) = request.into_parts();
    let form = read_form(&parts.headers, body, SESSION_FORM).await?;
    let auth = public_client(&form)?;
    // Only pages of the client's own origins may open a session: this is what keeps another
    // site from signing a visitor in with a code of its choosing.
    let client = match idp.store().get_client(&auth.client_id).await? {
        Some(c) if c.pool == pool => c,
        _ => return Err(OAuthError::InvalidClient),
    };
    let origin = parts
        .headers
        .get(header::ORIGIN)
        .and_then(|v| v.to_str().ok());
    let allowed = origin.is_some_and(|origin| {
        client
            .callback_urls
            .iter()
            .filter_map(|u| origin_of(u))
            .any(|o| o == origin)
    });
    if !allowed {
        return Ok(refused(
            StatusCode::FORBIDDEN,
            "invalid_request",
            "the Origin header must be the origin of one of the client's callback URLs",
        ));
    }
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
    let tokens = &granted.tokens;
    let claims = minted_claims(&tokens.access_token);
    let csrf = new_csrf()?;
    let refresh_ttl =
        i64::try_from(idp.pool(pool)?.config.refresh_token_ttl.as_secs()).unwrap_or(i64::MAX);
    let mut response = json_response(
        StatusCode::OK,
        &description(&claims, tokens.expires_in, &csrf),
    );
    let jar = CookieJar::new(idp, pool);
    let headers = response.headers_mut();
    jar.set_access(headers, &tokens.access_token, tokens.expires_in);
    if let Some(refresh) = &tokens.refresh_token {
        jar.set_refresh(headers, refresh, refresh_ttl);
    }
    jar.set_csrf(headers, &csrf, refresh_ttl);
    Ok(no_store(response))
}

// ---- GET /session ----

async fn describe(
    State(idp): State<Arc<IdentityProvider>>,
    Path(pool): Path<String>,
    request: Request,
) -> Response {
    if idp.pool(&pool).is_err() {
        return not_found();
    }
    let headers = request.headers();
    let no_session = || {
        refused(
            StatusCode::UNAUTHORIZED,
            "invalid_token",
            "there is no signed-in session",
        )
    };
    let Some(token) = request_cookie(headers, ACCESS_COOKIE) else {
        return no_session();
    };
    let Some(verifier) = idp.access_verifier(&pool) else {
        return refused(
            StatusCode::INTERNAL_SERVER_ERROR,
            "server_error",
            "the session could not be checked",
        );
    };
    let Ok(verified) = verifier.verify(token).await else {
        return no_session();
    };
    let origin_jti = verified.claims.get("origin_jti").and_then(Value::as_str);
    let iat = verified
        .claims
        .get("iat")
        .and_then(Value::as_i64)
        .unwrap_or(0);
    let sub = verified.subject.as_deref().unwrap_or_default();
    if idp.is_revoked(origin_jti, sub, iat).await {
        return no_session();
    }
    let csrf = request_cookie(headers, CSRF_COOKIE).unwrap_or_default();
    let claims = Value::Object(verified.claims.clone());
    let expires_in = (verified.expires_at - unix_now()).max(0);
    no_store(json_response(
        StatusCode::OK,
        &description(&claims, expires_in, csrf),
    ))
}

// ---- POST /session/refresh ----

async fn refresh(
    State(idp): State<Arc<IdentityProvider>>,
    Path(pool): Path<String>,
    request: Request,
) -> Response {
    if idp.pool(&pool).is_err() {
        return not_found();
    }
    if rate_limited(&idp, &pool, &request) {
        return oauth_error(&OAuthError::TooManyRequests);
    }
    let (parts, body) = request.into_parts();
    if !csrf_ok(&parts.headers) {
        return refused(
            StatusCode::FORBIDDEN,
            "invalid_request",
            "the X-CSRF-Token header must equal the CSRF cookie",
        );
    }
    let jar = CookieJar::new(&idp, &pool);
    let ended = |jar: &CookieJar| {
        let mut response = refused(
            StatusCode::UNAUTHORIZED,
            "invalid_grant",
            "the session has ended; sign in again",
        );
        jar.clear(response.headers_mut());
        response
    };
    let Some(refresh_token) = request_cookie(&parts.headers, REFRESH_COOKIE).map(Secret::new)
    else {
        return ended(&jar);
    };
    let csrf = request_cookie(&parts.headers, CSRF_COOKIE)
        .unwrap_or_default()
        .to_owned();
    let result = async {
        let form = read_form(&parts.headers, body, SESSION_FORM).await?;
        let auth = public_client(&form)?;
        idp.refresh(&pool, &auth, &refresh_token).await
    }
    .await;
    match result {
        Ok(grant) => {
            let claims = minted_claims(&grant.access_token);
            let mut response = json_response(
                StatusCode::OK,
                &description(&claims, grant.expires_in, &csrf),
            );
            jar.set_access(
                response.headers_mut(),
                &grant.access_token,
                grant.expires_in,
            );
            // a rotating client's next refresh token replaces the used one
            if let Some(next) = &grant.refresh_token {
                let ttl = idp.pool(&pool).map_or(0, |p| {
                    i64::try_from(p.config.refresh_token_ttl.as_secs()).unwrap_or(i64::MAX)
                });
                jar.set_refresh(response.headers_mut(), next, ttl);
            }
            no_store(response)
        }
        Err(OAuthError::InvalidGrant) => ended(&jar),
        Err(e) => oauth_error(&e),
    }
}

// ---- POST /session/logout ----

async fn logout(
    State(idp): State<Arc<IdentityProvider>>,
    Path(pool): Path<String>,
    request: Request,
) -> Response {
    if idp.pool(&pool).is_err() {
        return not_found();
    }
    let (parts, body) = request.into_parts();
    if !csrf_ok(&parts.headers) {
        return refused(
            StatusCode::FORBIDDEN,
            "invalid_request",
            "the X-CSRF-Token header must equal the CSRF cookie",
        );
    }
    let refresh_token = request_cookie(&parts.headers, REFRESH_COOKIE).map(Secret::new);
    if let Some(token) = refresh_token {
        let result = async {
            let form = read_form(&parts.headers, body, SESSION_FORM).await?;
            let auth = public_client(&form)?;
            idp.revoke(&pool, &auth, &token).await
        }
        .await;
        if let Err(e) = result {
            return oauth_error(&e);
        }
    }
    let mut response = StatusCode::NO_CONTENT.into_response();
    CookieJar::new(&idp, &pool).clear(response.headers_mut());
    no_store(response)
}
