//! HTTP API Lambda-proxy payload format 2.0: the request event an integration receives and the
//! mapping of its result back to an HTTP response.
//!
//! The event is serialised straight from borrowed input (no `serde_json::Value` tree), members in
//! the order of AWS's documented example. Header and query maps are sorted by name (headers are
//! lower-cased first) so the bytes are deterministic; duplicates are joined with `,` in arrival
//! order. `Cookie` headers are not in `headers`: their `;`-separated pairs form `cookies`.
//! Optional members (`cookies`, `queryStringParameters`, `pathParameters`, `body`,
//! `requestContext.authorizer`) are omitted when empty; `stageVariables` is never emitted.

use std::borrow::Cow;
use std::cmp::Ordering;

use base64::Engine as _;
use base64::alphabet;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use serde::Serialize;
use serde::ser::Serializer;
use serde_json::Value;
use serde_json::value::RawValue;

use crate::event::ClfTime;

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
    /// Request headers in arrival order, any casing. `Cookie` headers go to `cookies`; the
    /// `User-Agent` value(s) also become `requestContext.http.userAgent` (`""` when absent); the
    /// first `Content-Type` decides whether the body is sent as text or base64.
    pub headers: &'a [(String, String)],
    /// Query pairs already percent-decoded, in arrival order.
    pub query: &'a [(String, String)],
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

/// `{name: value}` from pre-grouped pairs, in order.
struct Pairs<'a>(Vec<(Cow<'a, str>, Cow<'a, str>)>);

impl Serialize for Pairs<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_map(self.0.iter().map(|(k, v)| (k.as_ref(), v.as_ref())))
    }
}

/// `{name: value}` straight from the input slice.
struct PairsRef<'a>(&'a [(String, String)]);

impl Serialize for PairsRef<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_map(self.0.iter().map(|(k, v)| (k.as_str(), v.as_str())))
    }
}

fn cmp_ignore_case(a: &str, b: &str) -> Ordering {
    a.bytes()
        .map(|c| c.to_ascii_lowercase())
        .cmp(b.bytes().map(|c| c.to_ascii_lowercase()))
}

/// Sorts (stably) and groups pairs by name, joining the values of one name with `,`.
fn group<'a>(mut pairs: Vec<(&'a str, &'a str)>, fold_case: bool) -> Pairs<'a> {
    let cmp = |a: &str, b: &str| {
        if fold_case {
            cmp_ignore_case(a, b)
        } else {
            a.cmp(b)
        }
    };
    pairs.sort_by(|a, b| cmp(a.0, b.0));
    let mut out = Vec::new();
    for run in pairs.chunk_by(|a, b| cmp(a.0, b.0) == Ordering::Equal) {
        let Some(&(name, first)) = run.first() else {
            continue;
        };
        let name = if fold_case && name.bytes().any(|c| c.is_ascii_uppercase()) {
            Cow::Owned(name.to_ascii_lowercase())
        } else {
            Cow::Borrowed(name)
        };
        let value = if run.len() == 1 {
            Cow::Borrowed(first)
        } else {
            Cow::Owned(run.iter().map(|(_, v)| *v).collect::<Vec<_>>().join(","))
        };
        out.push((name, value));
    }
    Pairs(out)
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Event<'a> {
    version: &'static str,
    route_key: &'a str,
    raw_path: &'a str,
    raw_query_string: &'a str,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    cookies: Vec<&'a str>,
    headers: Pairs<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    query_string_parameters: Option<Pairs<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    path_parameters: Option<PairsRef<'a>>,
    request_context: RequestContext<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    body: Option<Cow<'a, str>>,
    is_base64_encoded: bool,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct RequestContext<'a> {
    account_id: &'a str,
    api_id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    authorizer: Option<&'a RawValue>,
    domain_name: &'a str,
    domain_prefix: &'a str,
    http: HttpContext<'a>,
    request_id: &'a str,
    route_key: &'a str,
    stage: &'a str,
    time: ClfTime,
    time_epoch: i64,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct HttpContext<'a> {
    method: &'a str,
    path: &'a str,
    protocol: &'a str,
    source_ip: &'a str,
    user_agent: Cow<'a, str>,
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
    let essence = content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    let Some((kind, sub)) = essence.split_once('/') else {
        return false;
    };
    match kind {
        "text" => !sub.is_empty(),
        "application" => {
            matches!(sub, "json" | "xml" | "javascript" | "ecmascript")
                || sub.ends_with("+json")
                || sub.ends_with("+xml")
        }
        _ => false,
    }
}

/// Serialises the payload format 2.0 event.
pub fn http_event(input: &HttpEventInput) -> Vec<u8> {
    let mut cookies = Vec::new();
    let mut headers = Vec::with_capacity(input.headers.len());
    let mut user_agent: Vec<&str> = Vec::new();
    let mut content_type = None;
    for (name, value) in input.headers {
        if name.eq_ignore_ascii_case("cookie") {
            cookies.extend(value.split(';').map(str::trim).filter(|c| !c.is_empty()));
            continue;
        }
        if name.eq_ignore_ascii_case("user-agent") {
            user_agent.push(value);
        } else if content_type.is_none() && name.eq_ignore_ascii_case("content-type") {
            content_type = Some(value.as_str());
        }
        headers.push((name.as_str(), value.as_str()));
    }
    let user_agent = match user_agent.as_slice() {
        [] => Cow::Borrowed(""),
        [one] => Cow::Borrowed(*one),
        many => Cow::Owned(many.join(",")),
    };
    let query: Vec<(&str, &str)> = input
        .query
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let (body, is_base64_encoded) = if input.body.is_empty() {
        (None, false)
    } else {
        match std::str::from_utf8(input.body) {
            Ok(text) if content_type.is_some_and(is_textual_content_type) => {
                (Some(Cow::Borrowed(text)), false)
            }
            _ => (
                Some(Cow::Owned(
                    base64::engine::general_purpose::STANDARD.encode(input.body),
                )),
                true,
            ),
        }
    };
    let body_len = body.as_ref().map_or(0, |b| b.len());
    let ev = Event {
        version: "2.0",
        route_key: input.route_key,
        raw_path: input.raw_path,
        raw_query_string: input.raw_query_string,
        cookies,
        headers: group(headers, true),
        query_string_parameters: (!query.is_empty()).then(|| group(query, false)),
        path_parameters: (!input.path_parameters.is_empty())
            .then_some(PairsRef(input.path_parameters)),
        request_context: RequestContext {
            account_id: input.account_id,
            api_id: input.api_id,
            authorizer: input.authorizer,
            domain_name: input.domain_name,
            domain_prefix: domain_prefix(input.domain_name),
            http: HttpContext {
                method: input.method,
                path: input.raw_path,
                protocol: input.protocol,
                source_ip: input.source_ip,
                user_agent,
            },
            request_id: input.request_id,
            route_key: input.route_key,
            stage: input.stage,
            time: ClfTime(input.time_epoch_ms),
            time_epoch: input.time_epoch_ms,
        },
        body,
        is_base64_encoded,
    };
    let estimate: usize = input
        .headers
        .iter()
        .chain(input.query)
        .chain(input.path_parameters)
        .map(|(k, v)| k.len() + v.len() + 8)
        .sum();
    let mut out = Vec::with_capacity(800 + estimate + body_len + body_len / 8);
    // Only string-keyed maps and plain values are serialised, so this cannot fail; an empty
    // vector would be rejected downstream rather than panic here.
    if serde_json::to_writer(&mut out, &ev).is_err() {
        out.clear();
    }
    out
}

// ---------------------------------------------------------------------------------------------
// Results

/// A payload 2.0 result mapped to an HTTP response.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HttpResult {
    pub status: u16,
    /// `headers` in the order given, then `multiValueHeaders` (names as sent). Every name is an
    /// RFC 9110 token and every value free of control characters other than tab.
    pub headers: Vec<(String, String)>,
    /// One `set-cookie` header each (sent after `headers`).
    pub cookies: Vec<String>,
    pub body: Vec<u8>,
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
const BASE64: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

fn is_token(name: &str) -> bool {
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
fn is_header_value(value: &str) -> bool {
    value
        .bytes()
        .all(|c| c == b'\t' || (c >= 0x20 && c != 0x7f))
}

fn header_value(v: &Value) -> Option<String> {
    match v {
        Value::Null => None,
        Value::String(s) => Some(s.clone()),
        other => Some(other.to_string()),
    }
}

fn push_header(
    out: &mut Vec<(String, String)>,
    name: &str,
    value: String,
) -> Result<(), HttpResultError> {
    if !is_token(name) || !is_header_value(&value) {
        return Err(HttpResultError::InvalidHeader);
    }
    out.push((name.to_owned(), value));
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
pub fn parse_http_result(bytes: &[u8]) -> Result<HttpResult, HttpResultError> {
    let value: Value = serde_json::from_slice(bytes)?;
    let map = match value {
        Value::Object(map) if map.contains_key("statusCode") => map,
        Value::String(s) => return Ok(json_result(s.into_bytes())),
        _ => return Ok(json_result(bytes.trim_ascii().to_vec())),
    };
    let status = match map.get("statusCode") {
        Some(Value::Number(n)) => n.as_u64().and_then(|c| u16::try_from(c).ok()),
        Some(Value::String(s)) => s.trim().parse::<u16>().ok(),
        _ => None,
    }
    .filter(|c| (100..=599).contains(c))
    .ok_or(HttpResultError::InvalidStatusCode)?;
    let mut out = HttpResult {
        status,
        ..HttpResult::default()
    };
    match map.get("headers") {
        None | Some(Value::Null) => {}
        Some(Value::Object(h)) => {
            for (k, v) in h {
                if let Some(v) = header_value(v) {
                    push_header(&mut out.headers, k, v)?;
                }
            }
        }
        Some(_) => return Err(HttpResultError::InvalidField("headers")),
    }
    let single = out.headers.len();
    match map.get("multiValueHeaders") {
        None | Some(Value::Null) => {}
        Some(Value::Object(h)) => {
            for (k, vs) in h {
                let values: Vec<String> = match vs {
                    Value::Array(items) => items.iter().filter_map(header_value).collect(),
                    other => header_value(other).into_iter().collect(),
                };
                for v in values {
                    let seen = out
                        .headers
                        .get(..single)
                        .unwrap_or_default()
                        .iter()
                        .any(|(hk, hv)| hk.eq_ignore_ascii_case(k) && *hv == v);
                    if !seen {
                        push_header(&mut out.headers, k, v)?;
                    }
                }
            }
        }
        Some(_) => return Err(HttpResultError::InvalidField("multiValueHeaders")),
    }
    match map.get("cookies") {
        None | Some(Value::Null) => {}
        Some(Value::Array(items)) => {
            for item in items {
                let Value::String(c) = item else {
                    return Err(HttpResultError::InvalidField("cookies"));
                };
                if !is_header_value(c) {
                    return Err(HttpResultError::InvalidHeader);
                }
                out.cookies.push(c.clone());
            }
        }
        Some(_) => return Err(HttpResultError::InvalidField("cookies")),
    }
    let is_base64 = match map.get("isBase64Encoded") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(_) => return Err(HttpResultError::InvalidField("isBase64Encoded")),
    };
    out.body = match (map.get("body"), is_base64) {
        (None | Some(Value::Null), _) => Vec::new(),
        (Some(Value::String(s)), true) => decode_base64(s)?,
        (Some(Value::String(s)), false) => s.clone().into_bytes(),
        (Some(_), true) => return Err(HttpResultError::InvalidField("body")),
        (Some(other), false) => other.to_string().into_bytes(),
    };
    Ok(out)
}

fn json_result(body: Vec<u8>) -> HttpResult {
    HttpResult {
        status: 200,
        headers: vec![("content-type".to_owned(), "application/json".to_owned())],
        cookies: Vec::new(),
        body,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    fn input<'a>(
        headers: &'a [(String, String)],
        query: &'a [(String, String)],
        params: &'a [(String, String)],
    ) -> HttpEventInput<'a> {
        HttpEventInput {
            route_key: "GET /orders/{id}",
            raw_path: "/orders/42",
            raw_query_string: "expand=lines&expand=notes",
            headers,
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
        let headers = pairs(&[
            ("Accept", "application/json"),
            ("X-Multi", "a"),
            ("Cookie", "session=9f2c; theme=dark"),
            ("Host", "h4t8w2k9mz.execute-api.eu-west-1.amazonaws.com"),
            ("x-multi", "b"),
            ("User-Agent", "curl/8.5.0"),
            ("Content-Type", "application/octet-stream"),
        ]);
        let query = pairs(&[("expand", "lines"), ("expand", "notes")]);
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
        let headers = pairs(&[
            ("cookie", " a=1 ;b=2;; "),
            ("COOKIE", "c=3"),
            ("content-type", "Application/JSON; charset=utf-8"),
            ("X-Dup", "1"),
            ("x-dup", "2"),
            ("X-DUP", "3"),
        ]);
        let query = pairs(&[("b", "2"), ("a", "1"), ("A", "x"), ("a", "3")]);
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
        let headers = pairs(&[("x-evil", "\"}\u{1}"), ("content-type", "text/plain")]);
        let mut i = input(&headers, &[], &[]);
        i.body = b"\"}\0</script>";
        i.raw_path = "/a\"b";
        let v: Value = serde_json::from_slice(&http_event(&i)).unwrap();
        assert_eq!(v["headers"]["x-evil"], json!("\"}\u{1}"));
        assert_eq!(v["body"], json!("\"}\0</script>"));
        assert_eq!(v["rawPath"], json!("/a\"b"));
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

    fn ok(s: &str) -> HttpResult {
        parse_http_result(s.as_bytes()).unwrap()
    }

    fn json_ok(body: &str) -> HttpResult {
        HttpResult {
            status: 200,
            headers: pairs(&[("content-type", "application/json")]),
            cookies: vec![],
            body: body.as_bytes().to_vec(),
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
                headers: pairs(&[
                    ("Content-Type", "text/plain"),
                    ("X-N", "5"),
                    ("X-B", "true")
                ]),
                cookies: vec!["a=1; Path=/".into(), "b=2".into()],
                body: b"hi".to_vec(),
            }
        );
        let r = ok(
            r#"{"statusCode":"404","headers":{"X":"y","Vary":"a"},"multiValueHeaders":{"vary":["a","b"],"Z":"single","N":[1,null]}}"#,
        );
        assert_eq!(r.status, 404);
        assert_eq!(
            r.headers,
            pairs(&[
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
            ok(r#"{"statusCode":200,"body":{"a":1}}"#).body,
            br#"{"a":1}"#
        );
        assert_eq!(ok(r#"{"statusCode":200,"body":12}"#).body, b"12");
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
