//! The hosted UI (cognito.md §3.1, §3.3, §3.5): the sign-in page of the authorization-code
//! flow, `userInfo` and `logout`, as routes merged into [`crate::router`].
//!
//! The page is plain HTML (labels, `autocomplete`, no JavaScript). Its form is protected by a
//! CSRF token that is both in the `portcullis_signin_csrf` cookie (HttpOnly, SameSite=Lax, scoped to
//! the pool's path, `Secure` under an https public URL) and in a hidden field, and is bound to
//! the pending request; all three must match (constant time). The authorization request itself
//! stays server-side ([`crate::oauth_code`]); the form only carries its random id.
//!
//! `GET /oauth2/authorize` takes from the pool's `rate_limit_per_ip` like the login form, and
//! each client address holds a bounded number of pending requests (429 page beyond it).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::body::{Body, to_bytes};
use axum::extract::{ConnectInfo, Path, Request, State};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use http::{HeaderMap, HeaderValue, StatusCode, header};
use portcullis_config::Secret;
use serde_json::{Map, Value, json};

use crate::oauth_code::{AuthorizeError, PendingRequest, ct_eq, parse_query, random_id};
use crate::{IdentityProvider, IdpError, UserStatus};

/// Name of the CSRF cookie (no `__Host-` prefix: plain http on localhost must work).
pub const CSRF_COOKIE: &str = "portcullis_signin_csrf";
/// Largest sign-in form body.
const MAX_FORM_BYTES: usize = 8 * 1024;
const GENERIC_FAILURE: &str = "Incorrect username or password.";

/// The hosted routes (state: the identity provider).
pub(crate) fn routes() -> Router<Arc<IdentityProvider>> {
    Router::new()
        .route("/pools/{pool}/oauth2/authorize", get(authorize))
        .route("/pools/{pool}/login", post(login))
        .route(
            "/pools/{pool}/oauth2/userInfo",
            get(userinfo).post(userinfo),
        )
        .route("/pools/{pool}/logout", get(logout))
}

// ---- HTML ----

fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn html_page(title: &str, body: &str) -> String {
    format!(
        "<!doctype html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>{title}</title>\n<style>\
         body{{font-family:system-ui,sans-serif;max-width:24rem;margin:3rem auto;padding:0 1rem;line-height:1.5}}\
         label{{display:block;margin-top:1rem;font-weight:600}}\
         input{{width:100%;box-sizing:border-box;padding:.5rem;font-size:1rem}}\
         button{{margin-top:1.5rem;padding:.6rem 1.2rem;font-size:1rem}}\
         .error{{color:#a00;border:1px solid #a00;padding:.5rem}}\
         </style>\n</head>\n<body>\n<main>\n<h1>{title}</h1>\n{body}</main>\n</body>\n</html>\n",
        title = escape(title),
    )
}

fn html_response(status: StatusCode, html: String) -> Response {
    let mut response = (status, html).into_response();
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'",
        ),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    response
}

fn error_page(status: StatusCode, message: &str) -> Response {
    html_response(
        status,
        html_page(
            "Sign-in error",
            &format!(
                "<p role=\"alert\" class=\"error\">{}</p>\n",
                escape(message)
            ),
        ),
    )
}

fn alert(error: Option<&str>) -> String {
    error.map_or_else(String::new, |e| {
        format!("<p role=\"alert\" class=\"error\">{}</p>\n", escape(e))
    })
}

fn hidden_fields(id: &str, csrf: &Secret) -> String {
    format!(
        "<input type=\"hidden\" name=\"csrf\" value=\"{}\">\n\
         <input type=\"hidden\" name=\"request_id\" value=\"{}\">\n",
        escape(csrf.expose()),
        escape(id)
    )
}

fn sign_in_page(
    pool: &str,
    id: &str,
    req: &PendingRequest,
    username: &str,
    error: Option<&str>,
) -> String {
    let body = format!(
        "<p>Sign in to continue to <strong>{client}</strong>.</p>\n{alert}\
         <form method=\"post\" action=\"/pools/{pool}/login\">\n{hidden}\
         <label for=\"username\">Username</label>\n\
         <input id=\"username\" name=\"username\" type=\"text\" autocomplete=\"username\" \
         autocapitalize=\"none\" spellcheck=\"false\" maxlength=\"128\" required value=\"{username}\">\n\
         <label for=\"password\">Password</label>\n\
         <input id=\"password\" name=\"password\" type=\"password\" autocomplete=\"current-password\" \
         maxlength=\"256\" required>\n\
         <button type=\"submit\">Sign in</button>\n</form>\n",
        client = escape(&req.client_id),
        alert = alert(error),
        pool = escape(pool),
        hidden = hidden_fields(id, &req.csrf),
        username = escape(username),
    );
    html_page("Sign in", &body)
}

fn new_password_page(pool: &str, id: &str, req: &PendingRequest, error: Option<&str>) -> String {
    let body = format!(
        "<p>You must choose a new password before you continue.</p>\n{alert}\
         <form method=\"post\" action=\"/pools/{pool}/login\">\n{hidden}\
         <label for=\"new_password\">New password</label>\n\
         <input id=\"new_password\" name=\"new_password\" type=\"password\" \
         autocomplete=\"new-password\" maxlength=\"256\" required>\n\
         <label for=\"confirm_password\">Confirm the new password</label>\n\
         <input id=\"confirm_password\" name=\"confirm_password\" type=\"password\" \
         autocomplete=\"new-password\" maxlength=\"256\" required>\n\
         <button type=\"submit\">Change password and sign in</button>\n</form>\n",
        alert = alert(error),
        pool = escape(pool),
        hidden = hidden_fields(id, &req.csrf),
    );
    html_page("Choose a new password", &body)
}

// ---- helpers ----

/// The `portcullis_signin_csrf` cookie; `max_age` 0 clears it.
fn csrf_cookie(
    idp: &IdentityProvider,
    pool: &str,
    value: &str,
    max_age: Option<i64>,
) -> Option<HeaderValue> {
    let mut text = format!("{CSRF_COOKIE}={value}; Path=/pools/{pool}; HttpOnly; SameSite=Lax");
    if let Some(age) = max_age {
        text.push_str(&format!("; Max-Age={age}"));
    }
    if crate::web_session::secure_cookies(idp) {
        text.push_str("; Secure");
    }
    HeaderValue::from_str(&text).ok()
}

pub(crate) fn request_cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    portcullis_auth::cookie::cookie(
        headers
            .get_all(header::COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok()),
        name,
    )
}

/// A cookie that must be sent once: `None` when it is absent or sent more than once (a sibling
/// subdomain can toss in a second cookie of the same name, which the browser may send first).
pub(crate) fn unique_request_cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    portcullis_auth::cookie::unique_cookie(
        headers
            .get_all(header::COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok()),
        name,
    )
    .ok()
    .flatten()
}

/// A CSRF token is 256 bits, base64url (43 characters).
fn csrf_shaped(s: &str) -> bool {
    s.len() == 43
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

fn redirect(location: &str) -> Response {
    match HeaderValue::from_str(location) {
        Ok(v) => {
            let mut response = StatusCode::FOUND.into_response();
            response.headers_mut().insert(header::LOCATION, v);
            response
                .headers_mut()
                .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            response
        }
        Err(_) => error_page(
            StatusCode::BAD_REQUEST,
            "The redirect address is not valid.",
        ),
    }
}

fn server_error(e: &IdpError) -> Response {
    tracing::error!(error = %e, "identity provider failure in the hosted UI");
    error_page(
        StatusCode::INTERNAL_SERVER_ERROR,
        "Something went wrong. Please try again later.",
    )
}

/// The client's address, when the server provides it.
fn client_ip(request: &Request) -> Option<std::net::IpAddr> {
    request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(addr)| addr.ip())
}

/// True when the client's address has used up `pool`'s `rate_limit_per_ip`.
fn rate_limited(idp: &IdentityProvider, pool: &str, request: &Request) -> bool {
    client_ip(request).is_some_and(|ip| !idp.allow_request(pool, ip))
}

fn too_many_attempts() -> Response {
    error_page(
        StatusCode::TOO_MANY_REQUESTS,
        "Too many attempts. Wait a moment and try again.",
    )
}

// ---- GET /oauth2/authorize ----

async fn authorize(
    State(idp): State<Arc<IdentityProvider>>,
    Path(pool): Path<String>,
    request: Request,
) -> Response {
    if idp.pool(&pool).is_err() {
        return error_page(StatusCode::NOT_FOUND, "There is no such user pool.");
    }
    if rate_limited(&idp, &pool, &request) {
        return too_many_attempts();
    }
    let query = match parse_query(request.uri().query().unwrap_or("")) {
        Ok(q) => q,
        Err(why) => return error_page(StatusCode::BAD_REQUEST, why),
    };
    // reuse the browser's CSRF token so several sign-in tabs work
    let csrf =
        match unique_request_cookie(request.headers(), CSRF_COOKIE).filter(|c| csrf_shaped(c)) {
            Some(c) => Secret::new(c),
            None => match random_id() {
                Ok(c) => Secret::new(c),
                Err(e) => return server_error(&e),
            },
        };
    let client = client_ip(&request);
    match idp
        .code_flow()
        .authorize(&idp, &pool, &query, csrf, client)
        .await
    {
        Ok((id, req)) => {
            let mut response =
                html_response(StatusCode::OK, sign_in_page(&pool, &id, &req, "", None));
            if let Some(cookie) = csrf_cookie(&idp, &pool, req.csrf.expose(), None) {
                response.headers_mut().insert(header::SET_COOKIE, cookie);
            }
            response
        }
        Err(AuthorizeError::Page(why)) => error_page(StatusCode::BAD_REQUEST, why),
        Err(AuthorizeError::TooMany(_)) => error_page(
            StatusCode::TOO_MANY_REQUESTS,
            "Too many sign-ins are in progress from your network. Finish one, or wait a few \
             minutes and try again.",
        ),
        Err(AuthorizeError::Server(e)) => server_error(&e),
        Err(e) => match e.location() {
            Some(location) => redirect(&location),
            None => error_page(StatusCode::BAD_REQUEST, "The request is not valid."),
        },
    }
}

// ---- POST /login ----

async fn read_form(request: Request) -> Result<(HeaderMap, HashMap<String, String>), &'static str> {
    let (parts, body): (_, Body) = request.into_parts();
    let is_form = parts
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| {
            v.trim()
                .eq_ignore_ascii_case("application/x-www-form-urlencoded")
        });
    if !is_form {
        return Err("The form could not be read.");
    }
    let bytes = to_bytes(body, MAX_FORM_BYTES)
        .await
        .map_err(|_| "The form is too large.")?;
    let text = std::str::from_utf8(&bytes).map_err(|_| "The form could not be read.")?;
    let form = parse_query(text).map_err(|_| "The form could not be read.")?;
    Ok((parts.headers, form))
}

async fn login(
    State(idp): State<Arc<IdentityProvider>>,
    Path(pool): Path<String>,
    request: Request,
) -> Response {
    if idp.pool(&pool).is_err() {
        return error_page(StatusCode::NOT_FOUND, "There is no such user pool.");
    }
    if rate_limited(&idp, &pool, &request) {
        return too_many_attempts();
    }
    let (headers, form) = match read_form(request).await {
        Ok(f) => f,
        Err(why) => return error_page(StatusCode::BAD_REQUEST, why),
    };
    let field = |name: &str| form.get(name).map(String::as_str).unwrap_or("");
    let flow = idp.code_flow();
    let id = field("request_id");
    let Some(req) = flow.pending(&pool, id) else {
        return error_page(
            StatusCode::BAD_REQUEST,
            "This sign-in request has expired or is not valid. Go back to the application and \
             start again.",
        );
    };
    let form_csrf = field("csrf");
    let cookie_csrf = unique_request_cookie(&headers, CSRF_COOKIE).unwrap_or("");
    // evaluate both comparisons (no short-circuit on the first)
    let cookie_ok = ct_eq(form_csrf, cookie_csrf);
    let bound_ok = ct_eq(form_csrf, req.csrf.expose());
    if form_csrf.is_empty() || !(cookie_ok & bound_ok) {
        return error_page(
            StatusCode::FORBIDDEN,
            "The sign-in form expired or was not sent by this site. Go back to the application \
             and start again.",
        );
    }
    if form.contains_key("new_password") {
        return new_password_step(&idp, &pool, id, &req, &form).await;
    }
    let username = field("username").trim();
    let password = Secret::new(field("password"));
    let fail = |msg: &str| {
        html_response(
            StatusCode::OK,
            sign_in_page(&pool, id, &req, username, Some(msg)),
        )
    };
    if username.is_empty() || password.expose().is_empty() {
        return fail(GENERIC_FAILURE);
    }
    let user = match idp
        .store()
        .get_user(&pool, &crate::username::lookup(username))
        .await
    {
        Ok(u) => u,
        Err(e) => return server_error(&e.into()),
    };
    let check = match user {
        Some(user) => idp.verify_password_with_lockout(user, &password).await,
        // counted and locked out like a real user, with the same work and answers
        None => {
            idp.verify_unknown_user_password(&pool, username, &password)
                .await
        }
    };
    let user = match check {
        Ok(crate::PasswordCheck::Valid(user)) => user,
        Ok(crate::PasswordCheck::Locked) => return fail(LOCKED_OUT),
        Ok(crate::PasswordCheck::Invalid) => return fail(GENERIC_FAILURE),
        Err(e) => return server_error(&e),
    };
    if !user.enabled {
        return fail(GENERIC_FAILURE);
    }
    match user.status {
        UserStatus::Unconfirmed => fail("Your account is not confirmed yet."),
        UserStatus::ForceChangePassword => {
            flow.mark_password_verified(&pool, id, &user.username);
            html_response(StatusCode::OK, new_password_page(&pool, id, &req, None))
        }
        UserStatus::Confirmed => finish(&idp, &pool, id, &user.username),
    }
}

/// Shown while repeated failures lock the user out (as Cognito's "Password attempts exceeded").
const LOCKED_OUT: &str = "Too many failed attempts. Wait a moment and try again.";

async fn new_password_step(
    idp: &IdentityProvider,
    pool: &str,
    id: &str,
    req: &PendingRequest,
    form: &HashMap<String, String>,
) -> Response {
    let Some(username) = req.password_verified_user.as_deref() else {
        return error_page(
            StatusCode::BAD_REQUEST,
            "Sign in with your current password first.",
        );
    };
    let new = form.get("new_password").map(String::as_str).unwrap_or("");
    let confirm = form
        .get("confirm_password")
        .map(String::as_str)
        .unwrap_or("");
    let again =
        |msg: &str| html_response(StatusCode::OK, new_password_page(pool, id, req, Some(msg)));
    if new.is_empty() || !ct_eq(new, confirm) {
        return again("The passwords do not match.");
    }
    match idp
        .set_password(pool, username, &Secret::new(new), true)
        .await
    {
        Ok(()) => finish(idp, pool, id, username),
        Err(IdpError::InvalidPassword(v)) => again(&v.to_string()),
        Err(IdpError::UserNotFound) => error_page(StatusCode::BAD_REQUEST, GENERIC_FAILURE),
        Err(e) => server_error(&e),
    }
}

fn finish(idp: &IdentityProvider, pool: &str, id: &str, username: &str) -> Response {
    match idp.code_flow().complete(pool, id, username) {
        Ok(location) => redirect(&location),
        Err(IdpError::InvalidParameter(_)) => error_page(
            StatusCode::BAD_REQUEST,
            "This sign-in request has expired. Go back to the application and start again.",
        ),
        Err(e) => server_error(&e),
    }
}

// ---- userInfo ----

fn bearer_error(status: StatusCode, code: &str, description: &str) -> Response {
    let mut response = (
        status,
        json!({"error": code, "error_description": description}).to_string(),
    )
        .into_response();
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json;charset=UTF-8"),
    );
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
    let mut response = (StatusCode::OK, Value::Object(body).to_string()).into_response();
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json;charset=UTF-8"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
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
