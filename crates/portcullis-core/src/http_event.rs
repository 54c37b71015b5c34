//! HTTP API Lambda-proxy payload format 2.0: the request event an integration receives and the
//! mapping of its result back to an HTTP response.
//!
//! The event is written straight from borrowed input into one buffer (no `serde_json::Value`
//! tree, no intermediate copies), members in the order of AWS's documented example. Header and
//! query maps are sorted by name (headers are lower-cased first) so the bytes are deterministic;
//! duplicates are joined with `,` in arrival order. `Cookie` headers are not in `headers`: their `;`-separated pairs form `cookies`.
//! Optional members (`cookies`, `queryStringParameters`, `pathParameters`, `body`,
//! `requestContext.authorizer`) are omitted when empty; `stageVariables` is never emitted.

use std::borrow::Cow;
use std::cmp::Ordering;

use base64::Engine as _;
use base64::alphabet;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use serde_json::value::RawValue;

use crate::event::ClfTime;
use crate::forward;
use crate::json;
use crate::proxy_result::{self, Doc, Field, Status, Text};

/// Everything a payload 2.0 event is built from.
#[derive(Debug, Clone, Copy)]
pub struct HttpEventInput<'a> {
    /// The matched route key as configured (`GET /orders/{id}`, `$default`).
    pub route_key: &'a str,
    /// The request path as received (still percent-encoded); also `requestContext.http.path`.
    /// Includes the stage segment for a named stage, as on AWS.
    pub raw_path: &'a str,
    /// The query string without `?`, as received (`""` when none).
    pub raw_query_string: &'a str,
    /// Request headers in arrival order, any casing. `Cookie` headers go to `cookies`, without
    /// the gateway's session cookies ([`forward::SESSION_COOKIES`]); the `User-Agent` value(s) also
    /// become `requestContext.http.userAgent` (`""` when absent); the first `Content-Type`
    /// decides whether the body is sent as text or base64.
    pub headers: &'a [(&'a str, &'a str)],
    /// The forwarding headers the gateway vouches for, replacing the client's; `None` passes
    /// the client's `X-Forwarded-*` headers through.
    pub forwarding: Option<Forwarding<'a>>,
    /// Query pairs already percent-decoded, in arrival order.
    pub query: &'a [(Cow<'a, str>, Cow<'a, str>)],
    /// Decoded path parameters from the route match, in route order.
    pub path_parameters: &'a [(String, String)],
    pub account_id: &'a str,
    pub api_id: &'a str,
    /// `requestContext.authorizer` (e.g. `{"jwt":{...}}` or `{"lambda":{...}}`), omitted if `None`.
    pub authorizer: Option<&'a RawValue>,
    /// `requestContext.domainName`; `domainPrefix` is its first label (without a port).
    pub domain_name: &'a str,
    pub method: &'a str,
    /// `HTTP/1.1`, `HTTP/2.0`.
    pub protocol: &'a str,
    pub source_ip: &'a str,
    pub request_id: &'a str,
    /// `$default` or the stage name.
    pub stage: &'a str,
    /// Request arrival time, epoch milliseconds (`time` and `timeEpoch`).
    pub time_epoch_ms: i64,
    pub body: &'a [u8],
}

/// How the request reached the gateway: an event's `x-forwarded-for` is the client's
/// `X-Forwarded-For` values then `hop` (the address the request came from), `x-forwarded-port`
/// and `x-forwarded-proto` say how the client reached the gateway; the client's own
/// `X-Forwarded-Port` / `X-Forwarded-Proto` are dropped, as API Gateway drops them.
#[derive(Debug, Clone, Copy)]
pub struct Forwarding<'a> {
    pub hop: &'a str,
    pub port: u16,
    /// `https` or `http` (anything else is sent as `http`).
    pub scheme: &'a str,
}

fn cmp_ignore_case(a: &str, b: &str) -> Ordering {
    a.bytes()
        .map(|c| c.to_ascii_lowercase())
        .cmp(b.bytes().map(|c| c.to_ascii_lowercase()))
}

/// Writes `{name: value}` from pairs sorted by name (stable), joining the values of one name
/// with `,`; names lower-cased when `fold_case` (then compared case-insensitively).
fn write_grouped(out: &mut Vec<u8>, pairs: &[(&str, &str)], fold_case: bool) {
    let same = |a: &str, b: &str| {
        if fold_case {
            a.eq_ignore_ascii_case(b)
        } else {
            a == b
        }
    };
    out.push(b'{');
    for (i, run) in pairs.chunk_by(|a, b| same(a.0, b.0)).enumerate() {
        let Some(&(name, _)) = run.first() else {
            continue;
        };
        if i > 0 {
            out.push(b',');
        }
        let at = out.len();
        json::string(out, name);
        if fold_case {
            // Escapes are lower-case already: lower-casing the escaped name is escaping the
            // lower-cased one.
            if let Some(written) = out.get_mut(at..) {
                written.make_ascii_lowercase();
            }
        }
        out.extend_from_slice(b":\"");
        for (j, (_, value)) in run.iter().enumerate() {
            if j > 0 {
                out.push(b',');
            }
            json::contents(out, value);
        }
        out.push(b'"');
    }
    out.push(b'}');
}

/// `n` in decimal, written into `digits`.
fn decimal(n: u16, digits: &mut [u8; 5]) -> &str {
    let mut at = digits.len();
    let mut v = n;
    loop {
        at -= 1;
        if let Some(slot) = digits.get_mut(at) {
            // `v % 10` is below 10.
            *slot = b'0' + (v % 10) as u8;
        }
        v /= 10;
        if v == 0 || at == 0 {
            break;
        }
    }
    digits
        .get(at..)
        .and_then(|d| std::str::from_utf8(d).ok())
        .unwrap_or_default()
}

/// `{name: value}` in order.
fn write_pairs(out: &mut Vec<u8>, pairs: &[(String, String)]) {
    out.push(b'{');
    for (i, (name, value)) in pairs.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        json::key(out, name);
        json::string(out, value);
    }
    out.push(b'}');
}

/// First DNS label of a domain name: `abc.execute-api...` → `abc`, `localhost:8080` →
/// `localhost`; a bracketed IPv6 literal is returned whole (with the port removed).
fn domain_prefix(domain: &str) -> &str {
    if domain.starts_with('[') {
        return domain.split_once(']').map_or(domain, |(host, _)| {
            domain.get(..host.len() + 1).unwrap_or(domain)
        });
    }
    let label = domain.split('.').next().unwrap_or(domain);
    label.split(':').next().unwrap_or(label)
}

/// Whether a `Content-Type` names text that API Gateway passes without base64 (`text/*`, JSON,
/// XML and JavaScript types). Everything else — including a missing type and
/// `application/x-www-form-urlencoded`, as observed on AWS — is sent base64-encoded.
pub fn is_textual_content_type(content_type: &str) -> bool {
    let essence = content_type.split(';').next().unwrap_or("").trim();
    let Some((kind, sub)) = essence.split_once('/') else {
        return false;
    };
    let ends_with = |suffix: &str| {
        sub.len() >= suffix.len()
            && sub
                .get(sub.len() - suffix.len()..)
                .is_some_and(|end| end.eq_ignore_ascii_case(suffix))
    };
    if kind.eq_ignore_ascii_case("text") {
        !sub.is_empty()
    } else if kind.eq_ignore_ascii_case("application") {
        ["json", "xml", "javascript", "ecmascript"]
            .iter()
            .any(|t| sub.eq_ignore_ascii_case(t))
            || ends_with("+json")
            || ends_with("+xml")
    } else {
        false
    }
}

/// Writes the payload format 2.0 event.
pub fn http_event(input: &HttpEventInput) -> Vec<u8> {
    let estimate: usize = input
        .headers
        .iter()
        .map(|(k, v)| k.len() + v.len())
        .chain(input.query.iter().map(|(k, v)| k.len() + v.len()))
        .chain(input.path_parameters.iter().map(|(k, v)| k.len() + v.len()))
        .map(|n| n + 8)
        .sum();
    let body_len = input.body.len();
    let mut out = Vec::with_capacity(
        800 + estimate
            + input.authorizer.map_or(0, |a| a.get().len())
            + body_len
            + body_len / 3
            + 4,
    );
    let out = &mut out;

    // Cookies first (their member comes before `headers`), then the other headers, sorted.
    let mut user_agents = 0usize;
    let mut content_type = None;
    let mut prior_forwarded_for = false;
    let mut cookies_open = false;
    out.extend_from_slice(br#"{"version":"2.0","routeKey":"#);
    json::string(out, input.route_key);
    out.extend_from_slice(br#","rawPath":"#);
    json::string(out, input.raw_path);
    out.extend_from_slice(br#","rawQueryString":"#);
    json::string(out, input.raw_query_string);
    let mut headers: Vec<(&str, &str)> = Vec::with_capacity(input.headers.len() + 3);
    for &(name, value) in input.headers {
        if name.eq_ignore_ascii_case("cookie") {
            let pairs = value
                .split(';')
                .map(str::trim)
                .filter(|c| !c.is_empty() && !forward::is_session_cookie(c));
            for cookie in pairs {
                out.extend_from_slice(if cookies_open {
                    b","
                } else {
                    br#","cookies":["#
                });
                cookies_open = true;
                json::string(out, cookie);
            }
            continue;
        }
        if input.forwarding.is_some() {
            if name.eq_ignore_ascii_case("x-forwarded-for") {
                prior_forwarded_for = true;
                continue;
            }
            if name.eq_ignore_ascii_case("x-forwarded-port")
                || name.eq_ignore_ascii_case("x-forwarded-proto")
            {
                continue;
            }
        }
        if name.eq_ignore_ascii_case("user-agent") {
            user_agents += 1;
        } else if content_type.is_none() && name.eq_ignore_ascii_case("content-type") {
            content_type = Some(value);
        }
        headers.push((name, value));
    }
    if cookies_open {
        out.push(b']');
    }
    // The gateway's forwarding headers (their text outlives `headers`).
    let mut port_digits = [0u8; 5];
    let mut port_text = "";
    let mut forwarded_for = String::new();
    if let Some(f) = &input.forwarding {
        if prior_forwarded_for {
            let prior_len: usize = input
                .headers
                .iter()
                .filter(|(n, _)| n.eq_ignore_ascii_case("x-forwarded-for"))
                .map(|(_, v)| v.len() + 2)
                .sum();
            forwarded_for.reserve(prior_len + f.hop.len());
            let prior = input
                .headers
                .iter()
                .filter(|(n, _)| n.eq_ignore_ascii_case("x-forwarded-for"))
                .flat_map(|(_, v)| v.split(',').map(str::trim).filter(|v| !v.is_empty()));
            for value in prior {
                forwarded_for.push_str(value);
                forwarded_for.push_str(", ");
            }
        }
        forwarded_for.push_str(f.hop);
        port_text = decimal(f.port, &mut port_digits);
    }
    if let Some(f) = &input.forwarding {
        headers.push(("x-forwarded-for", &forwarded_for));
        headers.push(("x-forwarded-port", port_text));
        headers.push((
            "x-forwarded-proto",
            if f.scheme == "https" { "https" } else { "http" },
        ));
    }
    headers.sort_by(|a, b| cmp_ignore_case(a.0, b.0));
    out.extend_from_slice(br#","headers":"#);
    write_grouped(out, &headers, true);
    if !input.query.is_empty() {
        let mut query: Vec<(&str, &str)> = input
            .query
            .iter()
            .map(|(k, v)| (k.as_ref(), v.as_ref()))
            .collect();
        query.sort_by(|a, b| a.0.cmp(b.0));
        out.extend_from_slice(br#","queryStringParameters":"#);
        write_grouped(out, &query, false);
    }
    if !input.path_parameters.is_empty() {
        out.extend_from_slice(br#","pathParameters":"#);
        write_pairs(out, input.path_parameters);
    }
    out.extend_from_slice(br#","requestContext":{"accountId":"#);
    json::string(out, input.account_id);
    out.extend_from_slice(br#","apiId":"#);
    json::string(out, input.api_id);
    if let Some(authorizer) = input.authorizer {
        out.extend_from_slice(br#","authorizer":"#);
        out.extend_from_slice(authorizer.get().as_bytes());
    }
    out.extend_from_slice(br#","domainName":"#);
    json::string(out, input.domain_name);
    out.extend_from_slice(br#","domainPrefix":"#);
    json::string(out, domain_prefix(input.domain_name));
    out.extend_from_slice(br#","http":{"method":"#);
    json::string(out, input.method);
    out.extend_from_slice(br#","path":"#);
    json::string(out, input.raw_path);
    out.extend_from_slice(br#","protocol":"#);
    json::string(out, input.protocol);
    out.extend_from_slice(br#","sourceIp":"#);
    json::string(out, input.source_ip);
    out.extend_from_slice(br#","userAgent":""#);
    if user_agents > 0 {
        let values = headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case("user-agent"));
        for (i, (_, value)) in values.enumerate() {
            if i > 0 {
                out.push(b',');
            }
            json::contents(out, value);
        }
    }
    out.extend_from_slice(br#""},"requestId":"#);
    json::string(out, input.request_id);
    out.extend_from_slice(br#","routeKey":"#);
    json::string(out, input.route_key);
    out.extend_from_slice(br#","stage":"#);
    json::string(out, input.stage);
    out.extend_from_slice(br#","time":"#);
    ClfTime(input.time_epoch_ms).write_json(out);
    out.extend_from_slice(br#","timeEpoch":"#);
    json::int(out, input.time_epoch_ms);
    out.push(b'}');
    let is_base64 = if input.body.is_empty() {
        false
    } else {
        out.extend_from_slice(br#","body":"#);
        match std::str::from_utf8(input.body) {
            Ok(text) if content_type.is_some_and(is_textual_content_type) => {
                json::string(out, text);
                false
            }
            _ => {
                out.push(b'"');
                let at = out.len();
                let len = base64::encoded_len(input.body.len(), true).unwrap_or(0);
                out.resize(at + len, 0);
                let written = out
                    .get_mut(at..)
                    .and_then(|slot| {
                        base64::engine::general_purpose::STANDARD
                            .encode_slice(input.body, slot)
                            .ok()
                    })
                    .unwrap_or(0);
                out.truncate(at + written);
                out.push(b'"');
                true
            }
        }
    };
    out.extend_from_slice(br#","isBase64Encoded":"#);
    json::boolean(out, is_base64);
    out.push(b'}');
    std::mem::take(out)
}

// ---------------------------------------------------------------------------------------------
// Results

/// A payload 2.0 result mapped to an HTTP response.
///
/// Borrows from the result's bytes wherever the JSON had no escapes (and the body was not
/// base64): a body slice can be handed on without a copy.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HttpResult<'a> {
    pub status: u16,
    /// `headers` in the order given, then `multiValueHeaders` (names as sent). Every name is an
    /// RFC 9110 token and every value free of control characters other than tab.
    pub headers: Vec<(Cow<'a, str>, Cow<'a, str>)>,
    /// One `set-cookie` header each (sent after `headers`).
    pub cookies: Vec<Cow<'a, str>>,
    pub body: Cow<'a, [u8]>,
}

/// Why a result is unusable; API Gateway answers `500 {"message":"Internal Server Error"}`.
#[derive(Debug, thiserror::Error)]
pub enum HttpResultError {
    /// The bytes are not JSON (an empty result included).
    #[error("integration result is not valid JSON: {0}")]
    InvalidJson(#[from] serde_json::Error),
    /// `statusCode` is present but not an integer in 100..=599.
    #[error("integration result has an invalid statusCode")]
    InvalidStatusCode,
    /// A field has the wrong type.
    #[error("integration result field `{0}` has the wrong type")]
    InvalidField(&'static str),
    /// `isBase64Encoded` is true and `body` is not base64.
    #[error("integration result body is not valid base64")]
    InvalidBase64,
    /// A header name is not a token, or a header or cookie value contains control characters.
    #[error("integration result has an invalid header name or value")]
    InvalidHeader,
}

/// Standard alphabet, padding optional (runtimes differ).
pub(crate) const BASE64: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

pub(crate) fn is_token(name: &str) -> bool {
    !name.is_empty()
        && name.bytes().all(|c| {
            c.is_ascii_alphanumeric()
                || matches!(
                    c,
                    b'!' | b'#'
                        | b'$'
                        | b'%'
                        | b'&'
                        | b'\''
                        | b'*'
                        | b'+'
                        | b'-'
                        | b'.'
                        | b'^'
                        | b'_'
                        | b'`'
                        | b'|'
                        | b'~'
                )
        })
}

/// What `http::HeaderValue` accepts: no control characters except tab, no DEL.
pub(crate) fn is_header_value(value: &str) -> bool {
    value
        .bytes()
        .all(|c| c == b'\t' || (c >= 0x20 && c != 0x7f))
}

fn push_header<'a>(
    out: &mut Vec<(Cow<'a, str>, Cow<'a, str>)>,
    name: Cow<'a, str>,
    value: Cow<'a, str>,
) -> Result<(), HttpResultError> {
    if !is_token(&name) || !is_header_value(&value) {
        return Err(HttpResultError::InvalidHeader);
    }
    out.push((name, value));
    Ok(())
}

fn decode_base64(text: &str) -> Result<Vec<u8>, HttpResultError> {
    let cleaned: Cow<'_, [u8]> = if text.bytes().any(|c| c.is_ascii_whitespace()) {
        Cow::Owned(
            text.bytes()
                .filter(|c| !c.is_ascii_whitespace())
                .collect::<Vec<u8>>(),
        )
    } else {
        Cow::Borrowed(text.as_bytes())
    };
    BASE64
        .decode(cleaned)
        .map_err(|_| HttpResultError::InvalidBase64)
}

/// Maps an integration's payload 2.0 result to a response.
///
/// * A JSON object with a `statusCode` member is a structured result: `statusCode` (integer or
///   integer string, 100..=599; `null` is invalid), `headers` (object; non-string values as their
///   JSON text, `null` values dropped), `multiValueHeaders` (object of arrays or single values,
///   appended after `headers`, skipping pairs `headers` already has), `cookies` (array of
///   strings), `body` (string; other JSON as its text) and `isBase64Encoded` (boolean; when true
///   `body` must be a base64 string, padding optional, whitespace ignored). `null` members count
///   as absent; unknown members are ignored.
/// * Any other valid JSON (an object without `statusCode`, a string, number, boolean, array or
///   `null`) → `200`, `content-type: application/json`, and as body the JSON text as sent
///   (surrounding whitespace trimmed) — except a JSON string, whose contents are the body.
/// * Invalid JSON (including an empty result), wrong member types, a bad status, bad base64 or a
///   header that could not be sent → an error.
///
/// The whole input must be valid JSON (ignored members included); a member given twice counts
/// with its last value.
pub fn parse_http_result(bytes: &[u8]) -> Result<HttpResult<'_>, HttpResultError> {
    let m = match proxy_result::parse(bytes)? {
        Doc::Object(m) if m.status_code.is_some() => m,
        Doc::Str(s) => {
            return Ok(json_result(match s {
                Cow::Borrowed(s) => Cow::Borrowed(s.as_bytes()),
                Cow::Owned(s) => Cow::Owned(s.into_bytes()),
            }));
        }
        _ => return Ok(json_result(Cow::Borrowed(bytes.trim_ascii()))),
    };
    let status = match m.status_code {
        Some(Status::Int(n)) => u16::try_from(n).ok(),
        Some(Status::Str(s)) => s.trim().parse::<u16>().ok(),
        _ => None,
    }
    .filter(|c| (100..=599).contains(c))
    .ok_or(HttpResultError::InvalidStatusCode)?;
    let mut out = HttpResult {
        status,
        ..HttpResult::default()
    };
    match m.headers {
        None | Some(Field::Null) => {}
        Some(Field::Value(h)) => {
            out.headers.reserve(h.len());
            for (k, v) in h {
                if let Some(v) = v.header_value() {
                    push_header(&mut out.headers, k, v)?;
                }
            }
        }
        Some(Field::Wrong) => return Err(HttpResultError::InvalidField("headers")),
    }
    let single = out.headers.len();
    match m.multi_value_headers {
        None | Some(Field::Null) => {}
        Some(Field::Value(h)) => {
            for (k, vs) in h {
                let values: Vec<Cow<'_, str>> = match vs {
                    Text::List(items) => items.into_iter().filter_map(Text::header_value).collect(),
                    other => other.header_value().into_iter().collect(),
                };
                for v in values {
                    let seen = out
                        .headers
                        .get(..single)
                        .unwrap_or_default()
                        .iter()
                        .any(|(hk, hv)| hk.eq_ignore_ascii_case(&k) && *hv == v);
                    if !seen {
                        push_header(&mut out.headers, k.clone(), v)?;
                    }
                }
            }
        }
        Some(Field::Wrong) => return Err(HttpResultError::InvalidField("multiValueHeaders")),
    }
    match m.cookies {
        None | Some(Field::Null) => {}
        Some(Field::Value(items)) => {
            out.cookies.reserve(items.len());
            for item in items {
                let Text::Str(c) = item else {
                    return Err(HttpResultError::InvalidField("cookies"));
                };
                if !is_header_value(&c) {
                    return Err(HttpResultError::InvalidHeader);
                }
                out.cookies.push(c);
            }
        }
        Some(Field::Wrong) => return Err(HttpResultError::InvalidField("cookies")),
    }
    let is_base64 = match m.is_base64_encoded {
        None | Some(Field::Null) => false,
        Some(Field::Value(b)) => b,
        Some(Field::Wrong) => return Err(HttpResultError::InvalidField("isBase64Encoded")),
    };
    out.body = match (m.body, is_base64) {
        (None | Some(Text::Null), _) => Cow::Borrowed(&[]),
        (Some(Text::Str(s)), true) => Cow::Owned(decode_base64(&s)?),
        (Some(Text::Str(Cow::Borrowed(s))), false) => Cow::Borrowed(s.as_bytes()),
        (Some(Text::Str(Cow::Owned(s))), false) => Cow::Owned(s.into_bytes()),
        (Some(_), true) => return Err(HttpResultError::InvalidField("body")),
        (Some(other), false) => Cow::Owned(
            other
                .header_value()
                .unwrap_or_default()
                .into_owned()
                .into_bytes(),
        ),
    };
    Ok(out)
}

fn json_result(body: Cow<'_, [u8]>) -> HttpResult<'_> {
    HttpResult {
        status: 200,
        headers: vec![(
            Cow::Borrowed("content-type"),
            Cow::Borrowed("application/json"),
        )],
        cookies: Vec::new(),
        body,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    fn query_pairs<'a>(list: &[(&'a str, &'a str)]) -> Vec<(Cow<'a, str>, Cow<'a, str>)> {
        list.iter()
            .map(|(k, v)| (Cow::Borrowed(*k), Cow::Borrowed(*v)))
            .collect()
    }

    fn input<'a>(
        headers: &'a [(&'a str, &'a str)],
        query: &'a [(Cow<'a, str>, Cow<'a, str>)],
        params: &'a [(String, String)],
    ) -> HttpEventInput<'a> {
        HttpEventInput {
            route_key: "GET /orders/{id}",
            raw_path: "/orders/42",
            raw_query_string: "expand=lines&expand=notes",
            headers,
            forwarding: None,
            query,
            path_parameters: params,
            account_id: "111122223333",
            api_id: "h4t8w2k9mz",
            authorizer: None,
            domain_name: "h4t8w2k9mz.execute-api.eu-west-1.amazonaws.com",
            method: "GET",
            protocol: "HTTP/1.1",
            source_ip: "198.51.100.23",
            request_id: "Yq5aB1cDoAMEbcd=",
            stage: "$default",
            time_epoch_ms: 1_740_996_131_004,
            body: b"",
        }
    }

    #[test]
    fn event_matches_reference() {
        let headers = [
            ("Accept", "application/json"),
            ("X-Multi", "a"),
            ("Cookie", "session=9f2c; theme=dark"),
            ("Host", "h4t8w2k9mz.execute-api.eu-west-1.amazonaws.com"),
            ("x-multi", "b"),
            ("User-Agent", "curl/8.5.0"),
            ("Content-Type", "application/octet-stream"),
        ];
        let query = query_pairs(&[("expand", "lines"), ("expand", "notes")]);
        let params = pairs(&[("id", "42")]);
        let auth = json!({"jwt": {"claims": {"sub": "u-1", "scope": "orders/read"}, "scopes": ["orders/read"]}});
        let mut i = input(&headers, &query, &params);
        let raw = serde_json::value::to_raw_value(&auth).unwrap();
        i.authorizer = Some(&raw);
        i.body = br#"{"k":"v"}"#;
        let bytes = http_event(&i);
        let want = concat!(
            r#"{"version":"2.0","routeKey":"GET /orders/{id}","rawPath":"/orders/42","rawQueryString":"expand=lines&expand=notes","#,
            r#""cookies":["session=9f2c","theme=dark"],"#,
            r#""headers":{"accept":"application/json","content-type":"application/octet-stream","host":"h4t8w2k9mz.execute-api.eu-west-1.amazonaws.com","user-agent":"curl/8.5.0","x-multi":"a,b"},"#,
            r#""queryStringParameters":{"expand":"lines,notes"},"#,
            r#""pathParameters":{"id":"42"},"#,
            r#""requestContext":{"accountId":"111122223333","apiId":"h4t8w2k9mz","#,
            r#""authorizer":{"jwt":{"claims":{"sub":"u-1","scope":"orders/read"},"scopes":["orders/read"]}},"#,
            r#""domainName":"h4t8w2k9mz.execute-api.eu-west-1.amazonaws.com","domainPrefix":"h4t8w2k9mz","#,
            r#""http":{"method":"GET","path":"/orders/42","protocol":"HTTP/1.1","sourceIp":"198.51.100.23","userAgent":"curl/8.5.0"},"#,
            r#""requestId":"Yq5aB1cDoAMEbcd=","routeKey":"GET /orders/{id}","stage":"$default","#,
            r#""time":"03/Mar/2025:10:02:11 +0000","timeEpoch":1740996131004},"#,
            r#""body":"eyJrIjoidiJ9","isBase64Encoded":true}"#
        );
        assert_eq!(std::str::from_utf8(&bytes).unwrap(), want);
    }

    #[test]
    fn event_minimal_omits_optional_members() {
        let mut i = input(&[], &[], &[]);
        i.route_key = "$default";
        i.raw_query_string = "";
        i.domain_name = "localhost:8080";
        let bytes = http_event(&i);
        let want = concat!(
            r#"{"version":"2.0","routeKey":"$default","rawPath":"/orders/42","rawQueryString":"","headers":{},"#,
            r#""requestContext":{"accountId":"111122223333","apiId":"h4t8w2k9mz","domainName":"localhost:8080","domainPrefix":"localhost","#,
            r#""http":{"method":"GET","path":"/orders/42","protocol":"HTTP/1.1","sourceIp":"198.51.100.23","userAgent":""},"#,
            r#""requestId":"Yq5aB1cDoAMEbcd=","routeKey":"$default","stage":"$default","#,
            r#""time":"03/Mar/2025:10:02:11 +0000","timeEpoch":1740996131004},"isBase64Encoded":false}"#
        );
        assert_eq!(std::str::from_utf8(&bytes).unwrap(), want);
    }

    #[test]
    fn event_cookies_headers_and_bodies() {
        let headers = [
            ("cookie", " a=1 ;b=2;; "),
            ("COOKIE", "c=3"),
            ("content-type", "Application/JSON; charset=utf-8"),
            ("X-Dup", "1"),
            ("x-dup", "2"),
            ("X-DUP", "3"),
        ];
        let query = query_pairs(&[("b", "2"), ("a", "1"), ("A", "x"), ("a", "3")]);
        let mut i = input(&headers, &query, &[]);
        i.body = "{\"caf\u{e9}\":1}".as_bytes();
        let v: Value = serde_json::from_slice(&http_event(&i)).unwrap();
        assert_eq!(v["cookies"], json!(["a=1", "b=2", "c=3"]));
        assert_eq!(
            v["headers"],
            json!({"content-type": "Application/JSON; charset=utf-8", "x-dup": "1,2,3"})
        );
        assert_eq!(
            v["queryStringParameters"],
            json!({"A": "x", "a": "1,3", "b": "2"})
        );
        assert!(v.get("pathParameters").is_none());
        assert!(v.get("stageVariables").is_none());
        assert_eq!(v["body"], json!("{\"caf\u{e9}\":1}"));
        assert_eq!(v["isBase64Encoded"], json!(false));

        // Textual type but not UTF-8 → base64.
        i.body = &[0xff, 0xfe];
        let v: Value = serde_json::from_slice(&http_event(&i)).unwrap();
        assert_eq!(v["body"], json!("//4="));
        assert_eq!(v["isBase64Encoded"], json!(true));

        // No content type → base64 even for text.
        let mut i = input(&[], &[], &[]);
        i.body = b"hi";
        let v: Value = serde_json::from_slice(&http_event(&i)).unwrap();
        assert_eq!(v["body"], json!("aGk="));
        assert_eq!(v["isBase64Encoded"], json!(true));
    }

    #[test]
    fn event_escaping_is_json_safe() {
        let headers = [("x-evil", "\"}\u{1}"), ("content-type", "text/plain")];
        let mut i = input(&headers, &[], &[]);
        i.body = b"\"}\0</script>";
        i.raw_path = "/a\"b";
        let v: Value = serde_json::from_slice(&http_event(&i)).unwrap();
        assert_eq!(v["headers"]["x-evil"], json!("\"}\u{1}"));
        assert_eq!(v["body"], json!("\"}\0</script>"));
        assert_eq!(v["rawPath"], json!("/a\"b"));
    }

    #[test]
    fn events_carry_the_gateways_forwarding_headers_not_the_clients() {
        let headers = [
            ("x-forwarded-for", "198.51.100.7, 10.0.0.1"),
            ("X-Forwarded-Proto", "https"),
            ("x-forwarded-port", "1"),
            ("x-forwarded-for", "10.0.0.2"),
            ("accept", "*/*"),
            ("cookie", "portcullis_access=secret; theme=dark"),
            ("Cookie", " portcullis_refresh=r "),
        ];
        let mut i = input(&headers, &[], &[]);
        i.forwarding = Some(Forwarding {
            hop: "203.0.113.9",
            port: 8443,
            scheme: "http",
        });
        let v: Value = serde_json::from_slice(&http_event(&i)).unwrap();
        assert_eq!(
            v["headers"],
            json!({
                "accept": "*/*",
                "x-forwarded-for": "198.51.100.7, 10.0.0.1, 10.0.0.2, 203.0.113.9",
                "x-forwarded-port": "8443",
                "x-forwarded-proto": "http",
            })
        );
        assert_eq!(v["cookies"], json!(["theme=dark"]));
        // Without any from the client: the hop alone.
        let mut i = input(&[], &[], &[]);
        i.forwarding = Some(Forwarding {
            hop: "::1",
            port: 443,
            scheme: "https",
        });
        let v: Value = serde_json::from_slice(&http_event(&i)).unwrap();
        assert_eq!(
            v["headers"],
            json!({"x-forwarded-for": "::1", "x-forwarded-port": "443", "x-forwarded-proto": "https"})
        );
        assert!(v.get("cookies").is_none());
        // Session cookies never reach a backend, forwarding headers or not.
        let headers = [("cookie", "portcullis_access=a; portcullis_refresh=b")];
        let v: Value = serde_json::from_slice(&http_event(&input(&headers, &[], &[]))).unwrap();
        assert!(v.get("cookies").is_none());
    }

    #[test]
    fn user_agents_escapes_and_odd_names() {
        let headers = [
            ("User-Agent", "a\"b"),
            ("X-\u{1}", "v"),
            ("user-agent", "c"),
            ("content-type", "text/plain; charset=utf-8"),
        ];
        let mut i = input(&headers, &[], &[]);
        i.body = "line\nnext \u{1f600}".as_bytes();
        let v: Value = serde_json::from_slice(&http_event(&i)).unwrap();
        assert_eq!(v["requestContext"]["http"]["userAgent"], json!("a\"b,c"));
        assert_eq!(v["headers"]["user-agent"], json!("a\"b,c"));
        assert_eq!(v["headers"]["x-\u{1}"], json!("v"));
        assert_eq!(v["body"], json!("line\nnext \u{1f600}"));
        // A binary body of every length mod 3 round-trips through base64.
        for len in 0..7 {
            let body: Vec<u8> = (0..len).map(|b| 0xf0 + b).collect();
            let mut i = input(&[], &[], &[]);
            i.body = &body;
            let v: Value = serde_json::from_slice(&http_event(&i)).unwrap();
            let decoded = v
                .get("body")
                .and_then(Value::as_str)
                .map(|b| base64::engine::general_purpose::STANDARD.decode(b).unwrap())
                .unwrap_or_default();
            assert_eq!(decoded, body);
            assert_eq!(v["isBase64Encoded"], json!(len > 0));
        }
    }

    #[test]
    fn ports_in_decimal() {
        for port in [0u16, 1, 9, 10, 443, 8080, 65535] {
            assert_eq!(decimal(port, &mut [0; 5]), port.to_string());
        }
    }

    #[test]
    fn textual_types() {
        let cases = [
            ("text/plain", true),
            ("TEXT/HTML; charset=utf-8", true),
            ("application/json", true),
            (" application/json ;charset=utf-8", true),
            ("application/problem+json", true),
            ("application/atom+xml", true),
            ("application/xml", true),
            ("application/javascript", true),
            ("Application/Problem+JSON", true),
            ("application/json5", false),
            ("application/+json", true),
            ("image/svg+xml", false),
            ("application/x-www-form-urlencoded", false),
            ("application/octet-stream", false),
            ("multipart/form-data; boundary=x", false),
            ("image/png", false),
            ("text/", false),
            ("json", false),
            ("", false),
        ];
        for (ct, want) in cases {
            assert_eq!(is_textual_content_type(ct), want, "{ct}");
        }
    }

    #[test]
    fn domain_prefixes() {
        let cases = [
            ("abc.execute-api.eu-west-1.amazonaws.com", "abc"),
            ("localhost", "localhost"),
            ("localhost:8080", "localhost"),
            ("127.0.0.1:8080", "127"),
            ("[::1]:8080", "[::1]"),
            ("[::1", "[::1"),
            ("", ""),
        ];
        for (domain, want) in cases {
            assert_eq!(domain_prefix(domain), want, "{domain}");
        }
    }

    fn ok(s: &str) -> HttpResult<'_> {
        parse_http_result(s.as_bytes()).unwrap()
    }

    fn cows<'a>(list: &[(&'a str, &'a str)]) -> Vec<(Cow<'a, str>, Cow<'a, str>)> {
        list.iter()
            .map(|(k, v)| (Cow::Borrowed(*k), Cow::Borrowed(*v)))
            .collect()
    }

    fn json_ok(body: &str) -> HttpResult<'_> {
        HttpResult {
            status: 200,
            headers: cows(&[("content-type", "application/json")]),
            cookies: vec![],
            body: Cow::Borrowed(body.as_bytes()),
        }
    }

    #[test]
    fn structured_results() {
        let r = ok(
            r#"{"statusCode":201,"headers":{"Content-Type":"text/plain","X-N":5,"X-B":true,"X-Null":null},"cookies":["a=1; Path=/","b=2"],"body":"hi","isBase64Encoded":false,"extra":1}"#,
        );
        assert_eq!(
            r,
            HttpResult {
                status: 201,
                headers: cows(&[
                    ("Content-Type", "text/plain"),
                    ("X-N", "5"),
                    ("X-B", "true")
                ]),
                cookies: vec!["a=1; Path=/".into(), "b=2".into()],
                body: Cow::Borrowed(b"hi"),
            }
        );
        let r = ok(
            r#"{"statusCode":"404","headers":{"X":"y","Vary":"a"},"multiValueHeaders":{"vary":["a","b"],"Z":"single","N":[1,null]}}"#,
        );
        assert_eq!(r.status, 404);
        assert_eq!(
            r.headers,
            cows(&[
                ("X", "y"),
                ("Vary", "a"),
                ("vary", "b"),
                ("Z", "single"),
                ("N", "1")
            ])
        );
        assert!(r.body.is_empty());
        assert!(r.cookies.is_empty());

        let r = ok(r#"{"statusCode":200,"body":"AAEC/w==","isBase64Encoded":true}"#);
        assert_eq!(r.body, vec![0, 1, 2, 0xff]);
        let r = ok(r#"{"statusCode":200,"body":"AAEC/w","isBase64Encoded":true}"#);
        assert_eq!(r.body, vec![0, 1, 2, 0xff]);
        let r = ok(r#"{"statusCode":200,"body":"AAEC\n/w==","isBase64Encoded":true}"#);
        assert_eq!(r.body, vec![0, 1, 2, 0xff]);
        let r = ok(
            r#"{"statusCode":204,"body":null,"headers":null,"cookies":null,"isBase64Encoded":null}"#,
        );
        assert_eq!(r.status, 204);
        assert!(r.body.is_empty());
        assert_eq!(
            *ok(r#"{"statusCode":200,"body":{"a":1}}"#).body,
            *br#"{"a":1}"#
        );
        assert_eq!(*ok(r#"{"statusCode":200,"body":12}"#).body, *b"12");
        assert_eq!(ok(r#"{"statusCode":100}"#).status, 100);
        assert_eq!(ok(r#"{"statusCode":599}"#).status, 599);
    }

    #[test]
    fn results_without_status_code() {
        let cases = [
            (r#"{"message":"hi"}"#, r#"{"message":"hi"}"#),
            (" {\"a\": [1, 2]}\n", r#"{"a": [1, 2]}"#),
            (r#""just a string""#, "just a string"),
            (r#""{\"a\":1}""#, r#"{"a":1}"#),
            (" 42 ", "42"),
            ("1.50", "1.50"),
            ("[1, 2]", "[1, 2]"),
            ("true", "true"),
            ("null", "null"),
            (r#""""#, ""),
            (r#"{"StatusCode":500}"#, r#"{"StatusCode":500}"#),
        ];
        for (input, body) in cases {
            assert_eq!(ok(input), json_ok(body), "{input}");
        }
    }

    #[test]
    fn bad_results() {
        let bad = [
            "",
            "  ",
            "{",
            "nope",
            r#"{"statusCode":99}"#,
            r#"{"statusCode":600}"#,
            r#"{"statusCode":-1}"#,
            r#"{"statusCode":200.5}"#,
            r#"{"statusCode":"abc"}"#,
            r#"{"statusCode":true}"#,
            r#"{"statusCode":null}"#,
            r#"{"statusCode":70000}"#,
            r#"{"statusCode":200,"headers":[]}"#,
            r#"{"statusCode":200,"headers":"x"}"#,
            r#"{"statusCode":200,"multiValueHeaders":1}"#,
            r#"{"statusCode":200,"cookies":"a=1"}"#,
            r#"{"statusCode":200,"cookies":[1]}"#,
            r#"{"statusCode":200,"isBase64Encoded":"yes"}"#,
            r#"{"statusCode":200,"body":"not base64!","isBase64Encoded":true}"#,
            r#"{"statusCode":200,"body":{"a":1},"isBase64Encoded":true}"#,
            r#"{"statusCode":200,"headers":{"X-A":"a\r\nSet-Cookie: evil=1"}}"#,
            r#"{"statusCode":200,"headers":{"X A":"a"}}"#,
            r#"{"statusCode":200,"headers":{"":"a"}}"#,
            r#"{"statusCode":200,"headers":{"X:A":"a"}}"#,
            r#"{"statusCode":200,"multiValueHeaders":{"X":["ok","bad\n"]}}"#,
            r#"{"statusCode":200,"cookies":["a=1\r\nX: y"]}"#,
            r#"{"statusCode":200,"headers":{"X":"a\u0000"}}"#,
        ];
        for b in bad {
            assert!(parse_http_result(b.as_bytes()).is_err(), "{b}");
        }
        assert!(parse_http_result(&[0xff, 0xfe]).is_err());
        assert!(matches!(
            parse_http_result(br#"{"statusCode":200,"body":"%%","isBase64Encoded":true}"#),
            Err(HttpResultError::InvalidBase64)
        ));
        assert!(matches!(
            parse_http_result(br#"{"statusCode":200,"headers":{"X":"\n"}}"#),
            Err(HttpResultError::InvalidHeader)
        ));
    }
}
