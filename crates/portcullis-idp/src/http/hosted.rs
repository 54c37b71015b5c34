//! The hosted UI (cognito.md §3.1, §3.3): the sign-in page of the authorization-code flow
//! (`GET /oauth2/authorize`, `POST /login`), as routes merged into [`crate::router`].
//!
//! The page is plain HTML (labels, `autocomplete`, no JavaScript). It names the application by
//! its client's `name` (else the client id) and offers a way back: **Cancel** ends the request
//! and returns to the application with `error=access_denied` (RFC 6749 §4.1.2.1) and its
//! `state`, as a user declining would. Its form is protected by a
//! CSRF token that is both in the `portcullis_signin_csrf` cookie (HttpOnly, SameSite=Lax, scoped to
//! the pool's path, `Secure` under an https public URL) and in a hidden field, and is bound to
//! the pending request; all three must match (constant time). The authorization request itself
//! stays server-side ([`crate::oauth_code`]); the form only carries its random id.
//!
//! `GET /oauth2/authorize` takes from the pool's `rate_limit_per_ip` like the login form, and
//! each client address holds a bounded number of pending requests (429 page beyond it). Users
//! with a TOTP software token enter its code on a second form ([`mfa`]).

use std::sync::Arc;

use axum::Router;
use axum::extract::{Path, Request, State};
use axum::response::Response;
use axum::routing::{get, post};
use http::{StatusCode, header};
use portcullis_config::Secret;

use super::page::{
    CSRF_COOKIE, csrf_cookie, error_page, escape, html_page, html_response, redirect, server_error,
};
use super::reply::{
    Form, FormError, FormRules, client_ip, rate_limited, read_form, unique_request_cookie,
};
use crate::oauth_code::{AuthorizeError, PendingRequest, ct_eq, parse_query, random_id};
use crate::{IdentityProvider, IdpError, UserStatus};

mod mfa;

/// Largest sign-in form body.
const SIGN_IN_FORM: FormRules = FormRules {
    max_bytes: 8 * 1024,
    utf8: true,
};
const GENERIC_FAILURE: &str = "Incorrect username or password.";

/// The hosted routes (state: the identity provider).
pub(crate) fn routes() -> Router<Arc<IdentityProvider>> {
    Router::new()
        .route("/pools/{pool}/oauth2/authorize", get(authorize))
        .route("/pools/{pool}/login", post(login))
}

// ---- HTML ----

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

/// Sign-in's own button, then Cancel: Enter in a field presses the first one. Cancel skips the
/// fields' `required` check and goes back to the application (see [`cancel`]).
fn actions(submit: &str) -> String {
    format!(
        "<div class=\"actions\">\n<button type=\"submit\">{}</button>\n\
         <button type=\"submit\" name=\"cancel\" value=\"1\" class=\"secondary\" \
         formnovalidate>Cancel</button>\n</div>\n",
        escape(submit)
    )
}

/// What the pages call the application: the client's display name, else its id.
fn app_name(idp: &IdentityProvider, pool: &str, client_id: &str) -> String {
    idp.pool(pool)
        .ok()
        .and_then(|p| p.config.clients.get(client_id))
        .and_then(|c| c.name.clone())
        .unwrap_or_else(|| client_id.to_owned())
}

fn sign_in_page(
    idp: &IdentityProvider,
    pool: &str,
    id: &str,
    req: &PendingRequest,
    username: &str,
    error: Option<&str>,
) -> String {
    let body = format!(
        "<p class=\"app\">to continue to <strong>{client}</strong></p>\n{alert}\
         <form method=\"post\" action=\"/pools/{pool}/login\">\n{hidden}\
         <label for=\"username\">Username</label>\n\
         <input id=\"username\" name=\"username\" type=\"text\" autocomplete=\"username\" \
         autocapitalize=\"none\" spellcheck=\"false\" maxlength=\"128\" required value=\"{username}\">\n\
         <label for=\"password\">Password</label>\n\
         <input id=\"password\" name=\"password\" type=\"password\" autocomplete=\"current-password\" \
         maxlength=\"256\" required>\n{actions}</form>\n",
        client = escape(&app_name(idp, pool, &req.client_id)),
        actions = actions("Sign in"),
        alert = alert(error),
        pool = escape(pool),
        hidden = hidden_fields(id, &req.csrf),
        username = escape(username),
    );
    html_page("Sign in", &body)
}

fn new_password_page(
    idp: &IdentityProvider,
    pool: &str,
    id: &str,
    req: &PendingRequest,
    error: Option<&str>,
) -> String {
    let body = format!(
        "<p class=\"app\">You must choose a new password before you continue to \
         <strong>{client}</strong>.</p>\n{alert}\
         <form method=\"post\" action=\"/pools/{pool}/login\">\n{hidden}\
         <label for=\"new_password\">New password</label>\n\
         <input id=\"new_password\" name=\"new_password\" type=\"password\" \
         autocomplete=\"new-password\" maxlength=\"256\" required>\n\
         <label for=\"confirm_password\">Confirm the new password</label>\n\
         <input id=\"confirm_password\" name=\"confirm_password\" type=\"password\" \
         autocomplete=\"new-password\" maxlength=\"256\" required>\n{actions}</form>\n",
        client = escape(&app_name(idp, pool, &req.client_id)),
        actions = actions("Change password and sign in"),
        alert = alert(error),
        pool = escape(pool),
        hidden = hidden_fields(id, &req.csrf),
    );
    html_page("Choose a new password", &body)
}

// ---- helpers ----

/// A CSRF token is 256 bits, base64url (43 characters).
fn csrf_shaped(s: &str) -> bool {
    s.len() == 43
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
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
            let mut response = html_response(
                StatusCode::OK,
                sign_in_page(&idp, &pool, &id, &req, "", None),
            );
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
    let (parts, body) = request.into_parts();
    let headers = parts.headers;
    let form = match read_form(&headers, body, SIGN_IN_FORM).await {
        Ok(f) => f,
        Err(FormError::TooLarge) => {
            return error_page(StatusCode::BAD_REQUEST, "The form is too large.");
        }
        Err(_) => return error_page(StatusCode::BAD_REQUEST, "The form could not be read."),
    };
    let field = |name: &str| form.raw(name).unwrap_or("");
    let flow = idp.code_flow();
    let id = field("request_id");
    let req = match flow.pending(&pool, id).await {
        Ok(req) => req,
        Err(e) => return server_error(&e),
    };
    let Some(req) = req else {
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
    if form.has("cancel") {
        return cancel(&idp, &pool, id).await;
    }
    if form.has("new_password") {
        return new_password_step(&idp, &pool, id, &req, &form).await;
    }
    if let Some(code) = form.raw(mfa::CODE_FIELD) {
        return mfa::code_step(&idp, &pool, id, &req, code).await;
    }
    let username = field("username").trim();
    let password = Secret::new(field("password"));
    let fail = |msg: &str| {
        html_response(
            StatusCode::OK,
            sign_in_page(&idp, &pool, id, &req, username, Some(msg)),
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
        Ok(crate::PasswordCheck::Valid(user)) => *user,
        Ok(crate::PasswordCheck::Locked) => return fail(LOCKED_OUT),
        Ok(crate::PasswordCheck::Invalid) => return fail(GENERIC_FAILURE),
        Err(e) => return server_error(&e),
    };
    if !user.enabled {
        return fail(GENERIC_FAILURE);
    }
    match idp.pre_authentication(&req.client_id, &user, None).await {
        Ok(()) => {}
        // the trigger's own words, as Cognito's hosted UI shows them
        Err(IdpError::Trigger(e)) => return fail(&e.to_string()),
        Err(e) => return server_error(&e),
    }
    match user.status {
        UserStatus::Unconfirmed => fail("Your account is not confirmed yet."),
        UserStatus::ForceChangePassword => {
            if let Err(e) = flow.mark_password_verified(&pool, id, &user.username).await {
                return server_error(&e);
            }
            html_response(
                StatusCode::OK,
                new_password_page(&idp, &pool, id, &req, None),
            )
        }
        UserStatus::Confirmed => mfa::after_password(&idp, &pool, id, &req, &user.username).await,
    }
}

/// Shown while repeated failures lock the user out (as Cognito's "Password attempts exceeded").
const LOCKED_OUT: &str = "Too many failed attempts. Wait a moment and try again.";

async fn new_password_step(
    idp: &IdentityProvider,
    pool: &str,
    id: &str,
    req: &PendingRequest,
    form: &Form,
) -> Response {
    let Some(username) = req.password_verified_user.as_deref() else {
        return error_page(
            StatusCode::BAD_REQUEST,
            "Sign in with your current password first.",
        );
    };
    let new = form.raw("new_password").unwrap_or("");
    let confirm = form.raw("confirm_password").unwrap_or("");
    let again = |msg: &str| {
        html_response(
            StatusCode::OK,
            new_password_page(idp, pool, id, req, Some(msg)),
        )
    };
    if new.is_empty() || !ct_eq(new, confirm) {
        return again("The passwords do not match.");
    }
    match idp
        .set_password(pool, username, &Secret::new(new), true)
        .await
    {
        Ok(()) => mfa::after_password(idp, pool, id, req, username).await,
        Err(IdpError::InvalidPassword(v)) => again(&v.to_string()),
        Err(IdpError::UserNotFound) => error_page(StatusCode::BAD_REQUEST, GENERIC_FAILURE),
        Err(e) => server_error(&e),
    }
}

/// The user pressed Cancel: back to the application, which learns that the user declined.
async fn cancel(idp: &IdentityProvider, pool: &str, id: &str) -> Response {
    match idp.code_flow().cancel(pool, id).await {
        Ok(Some(location)) => redirect(&location),
        Err(e) => server_error(&e),
        Ok(None) => error_page(
            StatusCode::BAD_REQUEST,
            "This sign-in request has expired. Go back to the application and start again.",
        ),
    }
}

async fn finish(idp: &IdentityProvider, pool: &str, id: &str, username: &str) -> Response {
    match idp.code_flow().complete(pool, id, username).await {
        Ok(location) => redirect(&location),
        Err(IdpError::InvalidParameter(_)) => error_page(
            StatusCode::BAD_REQUEST,
            "This sign-in request has expired. Go back to the application and start again.",
        ),
        Err(e) => server_error(&e),
    }
}
