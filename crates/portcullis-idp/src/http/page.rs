//! The HTML of the hosted pages: escaping, the page frame and its security headers, error
//! pages, redirects, and the sign-in form's CSRF cookie.

use axum::response::{IntoResponse, Response};
use http::{HeaderValue, StatusCode, header};

use super::reply::secure_cookies;
use crate::{IdentityProvider, IdpError};

/// Name of the CSRF cookie (no `__Host-` prefix: plain http on localhost must work).
pub const CSRF_COOKIE: &str = "portcullis_signin_csrf";

pub(crate) fn escape(s: &str) -> String {
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

/// The hosted pages' style: one centred card, light or dark as the system is set, readable
/// without it (the markup is plain labels, inputs and buttons).
const STYLE: &str = "\
:root{color-scheme:light dark;--bg:#f6f7f9;--card:#fff;--text:#1c2330;--muted:#5a6475;\
--border:#d5dae2;--accent:#2b4c7e;--accent-text:#fff;--bad:#b3261e;--bad-bg:#fdecea;\
font-family:system-ui,-apple-system,\"Segoe UI\",Roboto,sans-serif;line-height:1.5}\
@media (prefers-color-scheme:dark){:root{--bg:#14171c;--card:#1d2229;--text:#e6e9ee;\
--muted:#9aa4b2;--border:#343b46;--accent:#6d9be0;--accent-text:#0d1117;--bad:#ff8a80;\
--bad-bg:#3b1d1c}}\
*{box-sizing:border-box}\
body{margin:0;min-height:100vh;display:flex;align-items:flex-start;justify-content:center;\
background:var(--bg);color:var(--text);padding:3rem 1rem}\
main{width:100%;max-width:24rem;background:var(--card);border:1px solid var(--border);\
border-radius:12px;padding:1.75rem 1.75rem 1.5rem;box-shadow:0 2px 12px rgb(0 0 0/.06)}\
h1{font-size:1.4rem;margin:0 0 .25rem}\
.app{margin:0 0 1rem;color:var(--muted)}.app strong{color:var(--text)}\
label{display:block;margin-top:1rem;font-weight:600}\
input{width:100%;margin-top:.25rem;padding:.6rem .7rem;font:inherit;color:inherit;\
background:var(--bg);border:1px solid var(--border);border-radius:8px}\
input:focus{outline:2px solid var(--accent);outline-offset:1px;border-color:var(--accent)}\
.actions{display:flex;gap:.75rem;align-items:center;margin-top:1.5rem}\
button{font:inherit;padding:.6rem 1.2rem;border-radius:8px;border:1px solid var(--accent);\
background:var(--accent);color:var(--accent-text);cursor:pointer}\
button.secondary{background:transparent;color:var(--accent)}\
button:focus-visible{outline:2px solid var(--accent);outline-offset:2px}\
.error{color:var(--bad);background:var(--bad-bg);border:1px solid var(--bad);\
border-radius:8px;padding:.5rem .75rem}\
footer{margin-top:1.5rem;font-size:.85rem;color:var(--muted)}";

pub(crate) fn html_page(title: &str, body: &str) -> String {
    format!(
        "<!doctype html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>{title}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n<main>\n\
         <h1>{title}</h1>\n{body}</main>\n</body>\n</html>\n",
        title = escape(title),
    )
}

pub(crate) fn html_response(status: StatusCode, html: String) -> Response {
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

pub(crate) fn error_page(status: StatusCode, message: &str) -> Response {
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

pub(crate) fn redirect(location: &str) -> Response {
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

pub(crate) fn server_error(e: &IdpError) -> Response {
    tracing::error!(error = %e, "identity provider failure in the hosted UI");
    error_page(
        StatusCode::INTERNAL_SERVER_ERROR,
        "Something went wrong. Please try again later.",
    )
}

/// The `portcullis_signin_csrf` cookie; `max_age` 0 clears it.
pub(crate) fn csrf_cookie(
    idp: &IdentityProvider,
    pool: &str,
    value: &str,
    max_age: Option<i64>,
) -> Option<HeaderValue> {
    let mut text = format!("{CSRF_COOKIE}={value}; Path=/pools/{pool}; HttpOnly; SameSite=Lax");
    if let Some(age) = max_age {
        text.push_str(&format!("; Max-Age={age}"));
    }
    if secure_cookies(idp) {
        text.push_str("; Secure");
    }
    HeaderValue::from_str(&text).ok()
}
