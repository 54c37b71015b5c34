//! What every HTTP face of the identity provider shares: the one JSON reply, RFC 6749 error
//! answers, `no_store`, the bounded form reader, the per-address rate limit, and request and
//! response cookies.

use std::net::{IpAddr, SocketAddr};

use axum::body::{Body, to_bytes};
use axum::extract::{ConnectInfo, Request};
use axum::response::{IntoResponse, Response};
use http::{HeaderMap, HeaderValue, StatusCode, header};
use serde_json::json;

use crate::{IdentityProvider, OAuthError};

/// The content type of the JSON answers of the OAuth faces.
pub(crate) const JSON: &str = "application/json;charset=UTF-8";
/// Largest request body the faces accept (forms and Cognito JSON).
pub const MAX_BODY_BYTES: usize = 16 * 1024;
/// Most form parameters accepted.
const MAX_PARAMS: usize = 32;

/// `body` as JSON with `status` and the content type `content_type`.
pub(crate) fn json_as(
    status: StatusCode,
    content_type: &'static str,
    body: &serde_json::Value,
) -> Response {
    let mut response = (status, body.to_string()).into_response();
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
}

/// `body` as `application/json;charset=UTF-8` with `status`.
pub(crate) fn json_response(status: StatusCode, body: &serde_json::Value) -> Response {
    json_as(status, JSON, body)
}

/// 404 `{"error": "not_found"}`: the pool is not configured.
pub(crate) fn not_found() -> Response {
    json_response(StatusCode::NOT_FOUND, &json!({"error": "not_found"}))
}

/// `Cache-Control: no-store` and `Pragma: no-cache` (RFC 6749 §5.1).
pub(crate) fn no_store(mut response: Response) -> Response {
    let headers = response.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    response
}

/// An RFC 6749 error answer (§5.2): its status, body and headers.
pub(crate) fn oauth_error(e: &OAuthError) -> Response {
    if let OAuthError::Server(crate::IdpError::Trigger(refused)) = e {
        // the pool's trigger refused or failed: the client's answer, not the provider's failure
        let body = json!({"error": "invalid_request", "error_description": refused.to_string()});
        return no_store(json_response(StatusCode::BAD_REQUEST, &body));
    }
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

/// The client's address, when the server provides it (`ConnectInfo<SocketAddr>`).
pub(crate) fn client_ip(request: &Request) -> Option<IpAddr> {
    request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(addr)| addr.ip())
}

/// True when the client's address has used up `pool`'s `rate_limit_per_ip`.
pub(crate) fn rate_limited(idp: &IdentityProvider, pool: &str, request: &Request) -> bool {
    client_ip(request).is_some_and(|ip| !idp.allow_request(pool, ip))
}

/// A parsed form: each parameter at most once (RFC 6749 §3.2).
#[derive(Debug)]
pub(crate) struct Form(Vec<(String, String)>);

impl Form {
    /// A parameter's value; an empty one counts as absent.
    pub(crate) fn get(&self, name: &str) -> Option<&str> {
        self.raw(name).filter(|v| !v.is_empty())
    }

    /// A parameter's value as sent, empty or not.
    pub(crate) fn raw(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// Whether the parameter was sent (even empty).
    pub(crate) fn has(&self, name: &str) -> bool {
        self.raw(name).is_some()
    }
}

/// How a form body is read.
#[derive(Debug, Clone, Copy)]
pub(crate) struct FormRules {
    /// Largest body accepted.
    pub max_bytes: usize,
    /// Whether the body must be UTF-8 as sent (else bytes that are not are read lossily).
    pub utf8: bool,
}

/// Why a form was not read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub(crate) enum FormError {
    #[error("content type must be application/x-www-form-urlencoded")]
    NotAForm,
    #[error("request body too large")]
    TooLarge,
    #[error("request body is not UTF-8")]
    NotUtf8,
    #[error("too many parameters")]
    TooManyParameters,
    #[error("repeated parameter")]
    Repeated,
}

impl From<FormError> for OAuthError {
    fn from(e: FormError) -> Self {
        OAuthError::InvalidRequest(match e {
            FormError::NotAForm => "content type must be application/x-www-form-urlencoded",
            FormError::TooLarge => "request body too large",
            FormError::NotUtf8 => "request body is not UTF-8",
            FormError::TooManyParameters => "too many parameters",
            FormError::Repeated => "repeated parameter",
        })
    }
}

/// Reads and parses a bounded `application/x-www-form-urlencoded` body.
pub(crate) async fn read_form(
    headers: &HeaderMap,
    body: Body,
    rules: FormRules,
) -> Result<Form, FormError> {
    let form_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| {
            v.trim()
                .eq_ignore_ascii_case("application/x-www-form-urlencoded")
        });
    if !form_type {
        return Err(FormError::NotAForm);
    }
    let bytes = to_bytes(body, rules.max_bytes)
        .await
        .map_err(|_| FormError::TooLarge)?;
    parse_form(&bytes, rules.utf8)
}

/// Parses a form body: at most [`MAX_PARAMS`] parameters, each at most once.
pub(crate) fn parse_form(bytes: &[u8], utf8: bool) -> Result<Form, FormError> {
    if utf8 && std::str::from_utf8(bytes).is_err() {
        return Err(FormError::NotUtf8);
    }
    let mut params: Vec<(String, String)> = Vec::new();
    for (k, v) in url::form_urlencoded::parse(bytes) {
        if params.len() >= MAX_PARAMS {
            return Err(FormError::TooManyParameters);
        }
        if params.iter().any(|(seen, _)| *seen == k) {
            return Err(FormError::Repeated);
        }
        params.push((k.into_owned(), v.into_owned()));
    }
    Ok(Form(params))
}

/// A cookie of the request (the first of that name).
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

/// Whether the identity provider's cookies carry `Secure`: when its public URL is https.
pub(crate) fn secure_cookies(idp: &IdentityProvider) -> bool {
    idp.public_url
        .get(..8)
        .is_some_and(|scheme| scheme.eq_ignore_ascii_case("https://"))
}

#[cfg(test)]
mod tests;
