//! AWS WebSocket Lambda-proxy events (CONNECT, MESSAGE, DISCONNECT), proxy results, and the
//! gateway's own error frames — byte-for-byte the shapes API Gateway produces.
//!
//! Events are written straight from borrowed input into one buffer (no `serde_json::Value`
//! tree). Header
//! and query maps are emitted sorted by name (headers case-insensitively, as AWS's captures are),
//! grouped so that `headers` carries the last value per name (in the casing of the name's first
//! occurrence) and `multiValueHeaders` all values in arrival order.

use std::borrow::Cow;
use std::cmp::Ordering;
use std::fmt;

use chrono::{DateTime, Datelike as _, Timelike as _, Utc};
use serde::Serialize;
use serde::ser::{SerializeMap as _, SerializeStruct as _, Serializer};
use serde_json::value::RawValue;

use crate::caller::CallerIdentity;
use crate::json;
use crate::proxy_result::{self, Doc, Field, Status, Text};

/// Which kind of event an integration receives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EventType {
    /// `$connect`.
    Connect,
    /// `$default` or a custom route.
    Message,
    /// `$disconnect`.
    Disconnect,
}

impl EventType {
    /// The `requestContext.eventType` string.
    pub fn as_str(self) -> &'static str {
        match self {
            EventType::Connect => "CONNECT",
            EventType::Message => "MESSAGE",
            EventType::Disconnect => "DISCONNECT",
        }
    }
}

/// Everything `requestContext` is built from. Fields that do not apply to an event kind are
/// ignored by that kind's builder (`message_id` is only emitted on MESSAGE, falling back to
/// `request_id` when `None`; the disconnect fields only on DISCONNECT, where a missing reason is
/// emitted as `""`). The `eventType` emitted is the
/// one of the builder called, not `event_type`.
#[derive(Debug, Clone, Copy)]
pub struct WsEventContext<'a> {
    pub route_key: &'a str,
    pub event_type: EventType,
    pub connection_id: &'a str,
    pub connected_at_ms: i64,
    pub request_id: &'a str,
    pub message_id: Option<&'a str>,
    pub request_time_ms: i64,
    pub stage: &'a str,
    pub api_id: &'a str,
    pub domain_name: &'a str,
    pub source_ip: &'a str,
    pub user_agent: Option<&'a str>,
    /// `requestContext.authorizer`, as compact JSON (kept raw so a connection stores it once).
    pub authorizer: Option<&'a RawValue>,
    pub disconnect_status_code: Option<u16>,
    pub disconnect_reason: Option<&'a str>,
    /// `requestContext.connectionType`: `Some("sse")` for a server-sent events stream; absent
    /// for a WebSocket, as on API Gateway.
    pub connection_type: Option<&'a str>,
    /// The signer of an `AWS_IAM` connection: its fields join `requestContext.identity`.
    pub caller: Option<&'a CallerIdentity>,
}

/// `requestContext`, written by [`RequestContext::write`] in the member order of AWS's captures.
struct RequestContext<'a> {
    route_key: &'a str,
    message_id: Option<&'a str>,
    disconnect_status_code: Option<u16>,
    event_type: &'static str,
    extended_request_id: &'a str,
    request_time: ClfTime,
    message_direction: &'static str,
    disconnect_reason: Option<&'a str>,
    stage: &'a str,
    connected_at: i64,
    request_time_epoch: i64,
    identity: Identity<'a>,
    request_id: &'a str,
    domain_name: &'a str,
    connection_id: &'a str,
    connection_type: Option<&'a str>,
    api_id: &'a str,
    authorizer: Option<&'a RawValue>,
}

impl<'a> RequestContext<'a> {
    fn new(ctx: &WsEventContext<'a>, kind: EventType) -> Self {
        let (message_id, disconnect_status_code, disconnect_reason) = match kind {
            EventType::Connect => (None, None, None),
            EventType::Message => (Some(ctx.message_id.unwrap_or(ctx.request_id)), None, None),
            EventType::Disconnect => (
                None,
                ctx.disconnect_status_code,
                Some(ctx.disconnect_reason.unwrap_or("")),
            ),
        };
        RequestContext {
            route_key: ctx.route_key,
            message_id,
            disconnect_status_code,
            event_type: kind.as_str(),
            extended_request_id: ctx.request_id,
            request_time: ClfTime(ctx.request_time_ms),
            message_direction: "IN",
            disconnect_reason,
            stage: ctx.stage,
            connected_at: ctx.connected_at_ms,
            request_time_epoch: ctx.request_time_ms,
            identity: Identity {
                source_ip: ctx.source_ip,
                user_agent: ctx.user_agent,
                user_agent_first: kind == EventType::Message,
                caller: ctx.caller,
            },
            request_id: ctx.request_id,
            domain_name: ctx.domain_name,
            connection_id: ctx.connection_id,
            connection_type: ctx.connection_type,
            api_id: ctx.api_id,
            authorizer: ctx.authorizer,
        }
    }

    /// Appends the object; optional members are omitted when `None`.
    fn write(&self, out: &mut Vec<u8>) -> Result<(), serde_json::Error> {
        out.extend_from_slice(br#"{"routeKey":"#);
        json::string(out, self.route_key);
        if let Some(id) = self.message_id {
            out.extend_from_slice(br#","messageId":"#);
            json::string(out, id);
        }
        if let Some(code) = self.disconnect_status_code {
            out.extend_from_slice(br#","disconnectStatusCode":"#);
            json::int(out, i64::from(code));
        }
        out.extend_from_slice(br#","eventType":"#);
        json::string(out, self.event_type);
        out.extend_from_slice(br#","extendedRequestId":"#);
        json::string(out, self.extended_request_id);
        out.extend_from_slice(br#","requestTime":"#);
        self.request_time.write_json(out);
        out.extend_from_slice(br#","messageDirection":"#);
        json::string(out, self.message_direction);
        if let Some(reason) = self.disconnect_reason {
            out.extend_from_slice(br#","disconnectReason":"#);
            json::string(out, reason);
        }
        out.extend_from_slice(br#","stage":"#);
        json::string(out, self.stage);
        out.extend_from_slice(br#","connectedAt":"#);
        json::int(out, self.connected_at);
        out.extend_from_slice(br#","requestTimeEpoch":"#);
        json::int(out, self.request_time_epoch);
        out.extend_from_slice(br#","identity":"#);
        self.identity.write(out)?;
        out.extend_from_slice(br#","requestId":"#);
        json::string(out, self.request_id);
        out.extend_from_slice(br#","domainName":"#);
        json::string(out, self.domain_name);
        out.extend_from_slice(br#","connectionId":"#);
        json::string(out, self.connection_id);
        if let Some(kind) = self.connection_type {
            out.extend_from_slice(br#","connectionType":"#);
            json::string(out, kind);
        }
        out.extend_from_slice(br#","apiId":"#);
        json::string(out, self.api_id);
        if let Some(authorizer) = self.authorizer {
            out.extend_from_slice(br#","authorizer":"#);
            out.extend_from_slice(authorizer.get().as_bytes());
        }
        out.push(b'}');
        Ok(())
    }
}

/// `{sourceIp[, userAgent]}`; MESSAGE captures list `userAgent` first, the others `sourceIp`.
/// An `AWS_IAM` caller's fields follow.
struct Identity<'a> {
    source_ip: &'a str,
    user_agent: Option<&'a str>,
    user_agent_first: bool,
    caller: Option<&'a CallerIdentity>,
}

impl Identity<'_> {
    /// Appends the object (an `AWS_IAM` caller's through [`Serialize`]).
    fn write(&self, out: &mut Vec<u8>) -> Result<(), serde_json::Error> {
        if self.caller.is_some() {
            return serde_json::to_writer(out, self);
        }
        match (self.user_agent, self.user_agent_first) {
            (Some(ua), true) => {
                out.extend_from_slice(br#"{"userAgent":"#);
                json::string(out, ua);
                out.extend_from_slice(br#","sourceIp":"#);
                json::string(out, self.source_ip);
            }
            (Some(ua), false) => {
                out.extend_from_slice(br#"{"sourceIp":"#);
                json::string(out, self.source_ip);
                out.extend_from_slice(br#","userAgent":"#);
                json::string(out, ua);
            }
            (None, _) => {
                out.extend_from_slice(br#"{"sourceIp":"#);
                json::string(out, self.source_ip);
            }
        }
        out.push(b'}');
        Ok(())
    }
}

impl Serialize for Identity<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let len = 1 + usize::from(self.user_agent.is_some());
        if let Some(caller) = self.caller {
            let mut map = s.serialize_map(None)?;
            map.serialize_entry("sourceIp", self.source_ip)?;
            if let Some(ua) = self.user_agent {
                map.serialize_entry("userAgent", ua)?;
            }
            let f = caller.identity_fields();
            map.serialize_entry("cognitoIdentityPoolId", f.cognito_identity_pool_id)?;
            map.serialize_entry("accountId", f.account_id)?;
            map.serialize_entry("cognitoIdentityId", f.cognito_identity_id)?;
            map.serialize_entry("caller", &f.caller)?;
            map.serialize_entry("accessKey", f.access_key)?;
            map.serialize_entry("cognitoAuthenticationType", f.cognito_authentication_type)?;
            map.serialize_entry(
                "cognitoAuthenticationProvider",
                &f.cognito_authentication_provider,
            )?;
            map.serialize_entry("userArn", &f.user_arn)?;
            map.serialize_entry("user", &f.user)?;
            return map.end();
        }
        let mut st = s.serialize_struct("Identity", len)?;
        match (self.user_agent, self.user_agent_first) {
            (Some(ua), true) => {
                st.serialize_field("userAgent", ua)?;
                st.serialize_field("sourceIp", self.source_ip)?;
            }
            (Some(ua), false) => {
                st.serialize_field("sourceIp", self.source_ip)?;
                st.serialize_field("userAgent", ua)?;
            }
            (None, _) => st.serialize_field("sourceIp", self.source_ip)?,
        }
        st.end()
    }
}

/// Name/value pairs sorted and grouped by name.
struct Grouped<'a> {
    pairs: Vec<(&'a str, &'a str)>,
    fold_case: bool,
}

impl<'a> Grouped<'a> {
    fn new(input: &'a [(String, String)], fold_case: bool) -> Self {
        let mut pairs: Vec<(&str, &str)> = input
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        // Stable: values of one name keep their arrival order.
        pairs.sort_by(|a, b| cmp_name(a.0, b.0, fold_case));
        Grouped { pairs, fold_case }
    }

    /// Runs of pairs sharing a name.
    fn runs(&self) -> impl Iterator<Item = &[(&'a str, &'a str)]> {
        let fold = self.fold_case;
        self.pairs
            .chunk_by(move |a, b| cmp_name(a.0, b.0, fold) == Ordering::Equal)
    }
}

fn cmp_name(a: &str, b: &str, fold_case: bool) -> Ordering {
    if fold_case {
        a.bytes()
            .map(|c| c.to_ascii_lowercase())
            .cmp(b.bytes().map(|c| c.to_ascii_lowercase()))
    } else {
        a.cmp(b)
    }
}

/// `{name: last value}`.
struct LastValues<'g, 'a>(&'g Grouped<'a>);
/// `{name: [values...]}`.
struct MultiValues<'g, 'a>(&'g Grouped<'a>);
struct Values<'g, 'a>(&'g [(&'a str, &'a str)]);

impl Serialize for LastValues<'_, '_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(None)?;
        for run in self.0.runs() {
            if let (Some(first), Some(last)) = (run.first(), run.last()) {
                map.serialize_entry(first.0, last.1)?;
            }
        }
        map.end()
    }
}

impl Serialize for MultiValues<'_, '_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(None)?;
        for run in self.0.runs() {
            if let Some(first) = run.first() {
                map.serialize_entry(first.0, &Values(run))?;
            }
        }
        map.end()
    }
}

impl Serialize for Values<'_, '_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.0.iter().map(|(_, v)| v))
    }
}

/// Runs `write` on a buffer of `capacity` bytes. Only string-keyed maps and plain values are
/// written, so this cannot fail; an empty vector would be rejected downstream rather than
/// panic here.
fn written(
    capacity: usize,
    write: impl FnOnce(&mut Vec<u8>) -> Result<(), serde_json::Error>,
) -> Vec<u8> {
    let mut out = Vec::with_capacity(capacity);
    if write(&mut out).is_err() {
        out.clear();
    }
    out
}

/// The `$connect` event. `headers` in arrival order with the client's casing; `query` already
/// percent-decoded, in arrival order.
pub fn connect_event(
    ctx: &WsEventContext,
    headers: &[(String, String)],
    query: &[(String, String)],
) -> Vec<u8> {
    let h = Grouped::new(headers, true);
    let q = Grouped::new(query, false);
    let size: usize = headers
        .iter()
        .chain(query)
        .map(|(k, v)| 2 * (k.len() + v.len()) + 12)
        .sum();
    let context = RequestContext::new(ctx, EventType::Connect);
    written(640 + size, |out| {
        out.extend_from_slice(br#"{"headers":"#);
        serde_json::to_writer(&mut *out, &LastValues(&h))?;
        out.extend_from_slice(br#","multiValueHeaders":"#);
        serde_json::to_writer(&mut *out, &MultiValues(&h))?;
        if !query.is_empty() {
            out.extend_from_slice(br#","queryStringParameters":"#);
            serde_json::to_writer(&mut *out, &LastValues(&q))?;
            out.extend_from_slice(br#","multiValueQueryStringParameters":"#);
            serde_json::to_writer(&mut *out, &MultiValues(&q))?;
        }
        out.extend_from_slice(br#","requestContext":"#);
        context.write(out)?;
        out.extend_from_slice(br#","isBase64Encoded":false}"#);
        Ok(())
    })
}

/// A MESSAGE event for `$default` or a custom route.
pub fn message_event(ctx: &WsEventContext, body: &str, is_base64_encoded: bool) -> Vec<u8> {
    let context = RequestContext::new(ctx, EventType::Message);
    let capacity = 640 + ctx.authorizer.map_or(0, |a| a.get().len()) + body.len() + body.len() / 8;
    written(capacity, |out| {
        out.extend_from_slice(br#"{"requestContext":"#);
        context.write(out)?;
        out.extend_from_slice(br#","body":"#);
        json::string(out, body);
        out.extend_from_slice(br#","isBase64Encoded":"#);
        json::boolean(out, is_base64_encoded);
        out.push(b'}');
        Ok(())
    })
}

/// The `$disconnect` event, with AWS's fixed header set.
pub fn disconnect_event(ctx: &WsEventContext) -> Vec<u8> {
    let context = RequestContext::new(ctx, EventType::Disconnect);
    written(900, |out| {
        out.extend_from_slice(br#"{"headers":{"Host":"#);
        json::string(out, ctx.domain_name);
        out.extend_from_slice(
            br#","x-api-key":"","X-Forwarded-For":"","x-restapi":""},"multiValueHeaders":{"Host":["#,
        );
        json::string(out, ctx.domain_name);
        out.extend_from_slice(
            br#"],"x-api-key":[""],"X-Forwarded-For":[""],"x-restapi":[""]},"requestContext":"#,
        );
        context.write(out)?;
        out.extend_from_slice(br#","isBase64Encoded":false}"#);
        Ok(())
    })
}

// ---------------------------------------------------------------------------------------------
// Proxy results

/// What a Lambda-proxy style integration returned.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProxyResult {
    pub status_code: Option<u16>,
    /// In the order given: `headers` first, then `multiValueHeaders`.
    pub headers: Vec<(String, String)>,
    pub body: Option<String>,
    pub is_base64_encoded: bool,
}

/// A [`ProxyResult`] borrowing from the result's bytes wherever the JSON had no escapes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProxyResultRef<'a> {
    pub status_code: Option<u16>,
    /// In the order given: `headers` first, then `multiValueHeaders`.
    pub headers: Vec<(Cow<'a, str>, Cow<'a, str>)>,
    pub body: Option<Cow<'a, str>>,
    pub is_base64_encoded: bool,
}

impl ProxyResultRef<'_> {
    pub fn into_owned(self) -> ProxyResult {
        ProxyResult {
            status_code: self.status_code,
            headers: self
                .headers
                .into_iter()
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect(),
            body: self.body.map(Cow::into_owned),
            is_base64_encoded: self.is_base64_encoded,
        }
    }
}

/// Why a proxy result is malformed (API Gateway answers these with an internal error).
#[derive(Debug, thiserror::Error)]
pub enum ResultError {
    /// The bytes are not JSON.
    #[error("integration result is not valid JSON: {0}")]
    InvalidJson(#[from] serde_json::Error),
    /// `statusCode` is not an integer in 100..=599.
    #[error("integration result has an invalid statusCode")]
    InvalidStatusCode,
    /// A field has the wrong type.
    #[error("integration result field `{0}` has the wrong type")]
    InvalidField(&'static str),
}

/// Parses an integration's result; see [`ProxyResult`] and [`parse_proxy_result_ref`].
pub fn parse_proxy_result(bytes: &[u8]) -> Result<ProxyResult, ResultError> {
    parse_proxy_result_ref(bytes).map(ProxyResultRef::into_owned)
}

/// Parses an integration's result without copying what needs no unescaping:
///
/// * empty (or all-whitespace) input and `null` → the all-`None` default;
/// * an object → `statusCode` (integer or integer string, 100..=599), `headers` (values that are
///   not strings are stringified as JSON text; `null` values dropped), `multiValueHeaders`
///   (merged after `headers`; a `headers` entry repeated with the same name and value in
///   `multiValueHeaders` appears once), `body` (a string as-is, other JSON as its text),
///   `isBase64Encoded` (boolean); other keys are ignored and `null` counts as absent;
/// * any other JSON (string, number, boolean, array) → `body` only: a string's contents, else
///   the JSON text as sent.
///
/// The whole input must be valid JSON (ignored members included); a member given twice counts
/// with its last value.
pub fn parse_proxy_result_ref(bytes: &[u8]) -> Result<ProxyResultRef<'_>, ResultError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(ProxyResultRef::default());
    }
    let m = match proxy_result::parse(bytes)? {
        Doc::Null => return Ok(ProxyResultRef::default()),
        Doc::Object(m) => m,
        Doc::Str(s) => {
            return Ok(ProxyResultRef {
                body: Some(s),
                ..ProxyResultRef::default()
            });
        }
        Doc::Other => {
            // Valid JSON other than a string is ASCII: its text as sent.
            let text = match std::str::from_utf8(bytes) {
                Ok(text) => Cow::Borrowed(text.trim()),
                Err(_) => Cow::Owned(String::from_utf8_lossy(bytes).trim().to_owned()),
            };
            return Ok(ProxyResultRef {
                body: Some(text),
                ..ProxyResultRef::default()
            });
        }
    };
    let mut out = ProxyResultRef {
        status_code: match m.status_code {
            None | Some(Status::Null) => None,
            Some(Status::Int(n)) => Some(
                u16::try_from(n)
                    .ok()
                    .filter(|c| (100..=599).contains(c))
                    .ok_or(ResultError::InvalidStatusCode)?,
            ),
            Some(Status::Str(s)) => Some(
                s.trim()
                    .parse::<u16>()
                    .ok()
                    .filter(|c| (100..=599).contains(c))
                    .ok_or(ResultError::InvalidStatusCode)?,
            ),
            Some(Status::Wrong) => return Err(ResultError::InvalidStatusCode),
        },
        ..ProxyResultRef::default()
    };
    match m.headers {
        None | Some(Field::Null) => {}
        Some(Field::Value(h)) => {
            out.headers.reserve(h.len());
            for (k, v) in h {
                if let Some(v) = v.header_value() {
                    out.headers.push((k, v));
                }
            }
        }
        Some(Field::Wrong) => return Err(ResultError::InvalidField("headers")),
    }
    match m.multi_value_headers {
        None | Some(Field::Null) => {}
        Some(Field::Value(h)) => {
            for (k, vs) in h {
                let values: Vec<Cow<'_, str>> = match vs {
                    Text::Null => continue,
                    Text::List(items) => items.into_iter().filter_map(Text::header_value).collect(),
                    single => single.header_value().into_iter().collect(),
                };
                out.headers.retain(|(hk, hv)| {
                    !(hk.eq_ignore_ascii_case(&k) && values.iter().any(|v| v == hv))
                });
                out.headers
                    .extend(values.into_iter().map(|v| (k.clone(), v)));
            }
        }
        Some(Field::Wrong) => return Err(ResultError::InvalidField("multiValueHeaders")),
    }
    out.body = match m.body {
        None | Some(Text::Null) => None,
        Some(text) => text.header_value(),
    };
    out.is_base64_encoded = match m.is_base64_encoded {
        None | Some(Field::Null) => false,
        Some(Field::Value(b)) => b,
        Some(Field::Wrong) => return Err(ResultError::InvalidField("isBase64Encoded")),
    };
    Ok(out)
}

// ---------------------------------------------------------------------------------------------
// Error frames

/// A gateway-generated error frame sent on an open connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorFrame {
    /// No route matched and there is no `$default`.
    Forbidden,
    /// The integration failed or returned a malformed result.
    InternalServerError,
    /// The integration exceeded its timeout.
    EndpointRequestTimedOut,
    /// The connection sent more messages than its API's `message_rate` allows; the message
    /// was dropped.
    TooManyRequests,
}

impl ErrorFrame {
    /// The `message` text.
    pub fn message(self) -> &'static str {
        match self {
            ErrorFrame::Forbidden => "Forbidden",
            ErrorFrame::InternalServerError => "Internal server error",
            ErrorFrame::EndpointRequestTimedOut => "Endpoint request timed out",
            ErrorFrame::TooManyRequests => "Too Many Requests",
        }
    }
}

/// The exact frame text, including AWS's irregular spacing:
/// `{"message": "Forbidden", "connectionId":"<id>", "requestId":"<rid>"}`.
///
/// Ids are gateway-generated (base64 alphabets) and inserted verbatim.
pub fn error_frame(kind: ErrorFrame, connection_id: &str, request_id: &str) -> String {
    format!(
        "{{\"message\": \"{}\", \"connectionId\":\"{}\", \"requestId\":\"{}\"}}",
        kind.message(),
        connection_id,
        request_id
    )
}

// ---------------------------------------------------------------------------------------------
// Time

const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

fn datetime(epoch_ms: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(epoch_ms).unwrap_or_default()
}

/// Formats epoch milliseconds in Common Log Format, `03/Mar/2025:09:14:02 +0000`, without
/// allocating (use with `write!` or serde's `collect_str`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClfTime(pub i64);

impl ClfTime {
    /// The text without `fmt`, for years 0 to 9999 (`None` outside them).
    fn text(self) -> Option<[u8; 26]> {
        let t = datetime(self.0);
        let year = u32::try_from(t.year()).ok().filter(|y| *y <= 9999)?;
        let month = MONTHS.get(t.month0() as usize).copied().unwrap_or("Jan");
        let mut b = *b"dd/Mmm/yyyy:HH:MM:SS +0000";
        let two = |n: u32| [b'0' + (n / 10 % 10) as u8, b'0' + (n % 10) as u8];
        b[0..2].copy_from_slice(&two(t.day()));
        b[3..6].copy_from_slice(month.as_bytes());
        b[7..9].copy_from_slice(&two(year / 100));
        b[9..11].copy_from_slice(&two(year % 100));
        b[12..14].copy_from_slice(&two(t.hour()));
        b[15..17].copy_from_slice(&two(t.minute()));
        b[18..20].copy_from_slice(&two(t.second()));
        Some(b)
    }

    /// The time as a JSON string.
    pub(crate) fn write_json(self, out: &mut Vec<u8>) {
        out.push(b'"');
        match self.text() {
            Some(text) => out.extend_from_slice(&text),
            None => out.extend_from_slice(self.to_string().as_bytes()),
        }
        out.push(b'"');
    }
}

impl fmt::Display for ClfTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(text) = self.text()
            && let Ok(text) = std::str::from_utf8(&text)
        {
            return f.write_str(text);
        }
        let t = datetime(self.0);
        let month = MONTHS.get(t.month0() as usize).copied().unwrap_or("Jan");
        write!(
            f,
            "{:02}/{}/{:04}:{:02}:{:02}:{:02} +0000",
            t.day(),
            month,
            t.year(),
            t.hour(),
            t.minute(),
            t.second()
        )
    }
}

impl Serialize for ClfTime {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// `dd/MMM/yyyy:HH:mm:ss +0000` (UTC).
pub fn clf_time(epoch_ms: i64) -> String {
    ClfTime(epoch_ms).to_string()
}

/// `2025-03-03T09:14:02.118Z` (UTC, millisecond precision).
pub fn iso8601_millis(epoch_ms: i64) -> String {
    let t = datetime(epoch_ms);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
        t.year(),
        t.month(),
        t.day(),
        t.hour(),
        t.minute(),
        t.second(),
        t.timestamp_subsec_millis()
    )
}

/// Milliseconds since the Unix epoch, now.
pub fn now_ms() -> i64 {
    Utc::now().timestamp_millis()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    fn ctx<'a>() -> WsEventContext<'a> {
        WsEventContext {
            route_key: "$connect",
            event_type: EventType::Connect,
            connection_id: "Yq3jQfP1oAMCJzA=",
            connected_at_ms: 1_740_993_242_118,
            request_id: "Yq3jQhTboAMFa1w=",
            message_id: None,
            request_time_ms: 1_740_993_242_120,
            stage: "prod",
            api_id: "k3v9q2m7xa",
            domain_name: "k3v9q2m7xa.execute-api.eu-west-1.amazonaws.com",
            source_ip: "198.51.100.23",
            user_agent: Some("Mozilla/5.0 (X11; Linux x86_64)"),
            authorizer: None,
            disconnect_status_code: None,
            disconnect_reason: None,
            connection_type: None,
            caller: None,
        }
    }

    fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn connect_event_matches_reference() {
        let headers = pairs(&[
            ("Host", "k3v9q2m7xa.execute-api.eu-west-1.amazonaws.com"),
            ("Sec-WebSocket-Version", "13"),
            ("Origin", "https://app.example.org"),
            ("User-Agent", "Mozilla/5.0 (X11; Linux x86_64)"),
            ("X-Forwarded-For", "198.51.100.23"),
        ]);
        let query = pairs(&[("room", "lobby"), ("token", "abc")]);
        let bytes = connect_event(&ctx(), &headers, &query);
        let text = std::str::from_utf8(&bytes).unwrap();
        let want = concat!(
            r#"{"headers":{"Host":"k3v9q2m7xa.execute-api.eu-west-1.amazonaws.com","Origin":"https://app.example.org","Sec-WebSocket-Version":"13","User-Agent":"Mozilla/5.0 (X11; Linux x86_64)","X-Forwarded-For":"198.51.100.23"},"#,
            r#""multiValueHeaders":{"Host":["k3v9q2m7xa.execute-api.eu-west-1.amazonaws.com"],"Origin":["https://app.example.org"],"Sec-WebSocket-Version":["13"],"User-Agent":["Mozilla/5.0 (X11; Linux x86_64)"],"X-Forwarded-For":["198.51.100.23"]},"#,
            r#""queryStringParameters":{"room":"lobby","token":"abc"},"#,
            r#""multiValueQueryStringParameters":{"room":["lobby"],"token":["abc"]},"#,
            r#""requestContext":{"routeKey":"$connect","eventType":"CONNECT","extendedRequestId":"Yq3jQhTboAMFa1w=","requestTime":"03/Mar/2025:09:14:02 +0000","messageDirection":"IN","stage":"prod","connectedAt":1740993242118,"requestTimeEpoch":1740993242120,"identity":{"sourceIp":"198.51.100.23","userAgent":"Mozilla/5.0 (X11; Linux x86_64)"},"requestId":"Yq3jQhTboAMFa1w=","domainName":"k3v9q2m7xa.execute-api.eu-west-1.amazonaws.com","connectionId":"Yq3jQfP1oAMCJzA=","apiId":"k3v9q2m7xa"},"#,
            r#""isBase64Encoded":false}"#
        );
        assert_eq!(text, want);
    }

    #[test]
    fn connect_event_grouping_and_no_query() {
        let headers = pairs(&[
            ("x-b", "1"),
            ("X-A", "first"),
            ("Cookie", "a=1"),
            ("x-a", "second"),
            ("cookie", "b=2"),
        ]);
        let mut c = ctx();
        c.user_agent = None;
        let auth = json!({"principalId": "u1", "integrationLatency": 12, "tenant": "acme"});
        let raw = serde_json::value::to_raw_value(&auth).unwrap();
        c.authorizer = Some(&raw);
        let v: Value = serde_json::from_slice(&connect_event(&c, &headers, &[])).unwrap();
        assert_eq!(
            v["headers"],
            json!({"Cookie": "b=2", "X-A": "second", "x-b": "1"})
        );
        assert_eq!(
            v["multiValueHeaders"],
            json!({"Cookie": ["a=1", "b=2"], "X-A": ["first", "second"], "x-b": ["1"]})
        );
        let keys: Vec<&str> = v["headers"]
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(keys.len(), 3);
        assert!(v.get("queryStringParameters").is_none());
        assert!(v.get("multiValueQueryStringParameters").is_none());
        assert_eq!(
            v["requestContext"]["identity"],
            json!({"sourceIp": "198.51.100.23"})
        );
        assert_eq!(v["requestContext"]["authorizer"], auth);
        assert!(v["requestContext"].get("messageId").is_none());
        assert!(v["requestContext"].get("disconnectStatusCode").is_none());
        assert!(v.get("body").is_none());
    }

    #[test]
    fn connect_query_multi_values_case_sensitive() {
        let query = pairs(&[("b", "2"), ("a", "1"), ("A", "x"), ("a", "3")]);
        let v: Value = serde_json::from_slice(&connect_event(&ctx(), &[], &query)).unwrap();
        assert_eq!(
            v["queryStringParameters"],
            json!({"A": "x", "a": "3", "b": "2"})
        );
        assert_eq!(
            v["multiValueQueryStringParameters"],
            json!({"A": ["x"], "a": ["1", "3"], "b": ["2"]})
        );
        assert_eq!(v["headers"], json!({}));
    }

    #[test]
    fn message_event_matches_reference() {
        let mut c = ctx();
        c.route_key = "sendmessage";
        c.event_type = EventType::Message;
        c.message_id = Some("Yq3mA9pHoAMCJzA=");
        c.request_id = "Yq3mA8xQoAMFu2Q=";
        c.request_time_ms = 1_740_993_340_551;
        let bytes = message_event(&c, r#"{"action":"sendmessage","text":"hi"}"#, false);
        let want = concat!(
            r#"{"requestContext":{"routeKey":"sendmessage","messageId":"Yq3mA9pHoAMCJzA=","eventType":"MESSAGE","extendedRequestId":"Yq3mA8xQoAMFu2Q=","requestTime":"03/Mar/2025:09:15:40 +0000","messageDirection":"IN","stage":"prod","connectedAt":1740993242118,"requestTimeEpoch":1740993340551,"identity":{"userAgent":"Mozilla/5.0 (X11; Linux x86_64)","sourceIp":"198.51.100.23"},"requestId":"Yq3mA8xQoAMFu2Q=","domainName":"k3v9q2m7xa.execute-api.eu-west-1.amazonaws.com","connectionId":"Yq3jQfP1oAMCJzA=","apiId":"k3v9q2m7xa"},"#,
            r#""body":"{\"action\":\"sendmessage\",\"text\":\"hi\"}","isBase64Encoded":false}"#
        );
        assert_eq!(std::str::from_utf8(&bytes).unwrap(), want);
        let v: Value = serde_json::from_slice(&message_event(&c, "aGk=", true)).unwrap();
        assert_eq!(v["isBase64Encoded"], json!(true));
        assert_eq!(v["body"], json!("aGk="));
    }

    #[test]
    fn disconnect_event_matches_reference() {
        let mut c = ctx();
        c.route_key = "$disconnect";
        c.event_type = EventType::Disconnect;
        c.request_id = "Yq3pLk0_oAMF2xg=";
        c.request_time_ms = 1_740_994_267_311;
        c.user_agent = None;
        c.message_id = Some("ignored");
        c.disconnect_status_code = Some(1005);
        c.disconnect_reason = Some("Client-side close frame status not set");
        let want = concat!(
            r#"{"headers":{"Host":"k3v9q2m7xa.execute-api.eu-west-1.amazonaws.com","x-api-key":"","X-Forwarded-For":"","x-restapi":""},"#,
            r#""multiValueHeaders":{"Host":["k3v9q2m7xa.execute-api.eu-west-1.amazonaws.com"],"x-api-key":[""],"X-Forwarded-For":[""],"x-restapi":[""]},"#,
            r#""requestContext":{"routeKey":"$disconnect","disconnectStatusCode":1005,"eventType":"DISCONNECT","extendedRequestId":"Yq3pLk0_oAMF2xg=","requestTime":"03/Mar/2025:09:31:07 +0000","messageDirection":"IN","disconnectReason":"Client-side close frame status not set","stage":"prod","connectedAt":1740993242118,"requestTimeEpoch":1740994267311,"identity":{"sourceIp":"198.51.100.23"},"requestId":"Yq3pLk0_oAMF2xg=","domainName":"k3v9q2m7xa.execute-api.eu-west-1.amazonaws.com","connectionId":"Yq3jQfP1oAMCJzA=","apiId":"k3v9q2m7xa"},"#,
            r#""isBase64Encoded":false}"#
        );
        assert_eq!(std::str::from_utf8(&disconnect_event(&c)).unwrap(), want);
        c.disconnect_reason = None;
        let v: Value = serde_json::from_slice(&disconnect_event(&c)).unwrap();
        assert_eq!(v["requestContext"]["disconnectReason"], json!(""));
    }

    #[test]
    fn an_sse_stream_says_so_in_every_event() {
        let mut c = ctx();
        let plain: Value = serde_json::from_slice(&disconnect_event(&c)).unwrap();
        assert!(plain["requestContext"].get("connectionType").is_none());
        c.connection_type = Some("sse");
        let connect: Value = serde_json::from_slice(&connect_event(&c, &[], &[])).unwrap();
        assert_eq!(connect["requestContext"]["connectionType"], json!("sse"));
        c.event_type = EventType::Disconnect;
        let disconnect: Value = serde_json::from_slice(&disconnect_event(&c)).unwrap();
        assert_eq!(disconnect["requestContext"]["connectionType"], json!("sse"));
    }

    #[test]
    fn escaping_is_json_safe() {
        let mut c = ctx();
        c.user_agent = Some("evil\"\n\u{1}");
        let bytes = message_event(&c, "\"}\u{0}</script>", false);
        let v: Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(v["body"], json!("\"}\u{0}</script>"));
        assert_eq!(
            v["requestContext"]["identity"]["userAgent"],
            json!("evil\"\n\u{1}")
        );
    }

    #[test]
    fn proxy_results() {
        let ok = |s: &str| parse_proxy_result(s.as_bytes()).unwrap();
        assert_eq!(ok(""), ProxyResult::default());
        assert_eq!(ok("  \n"), ProxyResult::default());
        assert_eq!(ok("null"), ProxyResult::default());
        assert_eq!(ok("{}"), ProxyResult::default());
        assert_eq!(ok(r#"{"statusCode":200}"#).status_code, Some(200));
        assert_eq!(ok(r#"{"statusCode":"404"}"#).status_code, Some(404));
        assert_eq!(ok(r#"{"statusCode":null}"#).status_code, None);
        let r = ok(
            r#"{"statusCode":201,"headers":{"Sec-WebSocket-Protocol":"chat","X-N":5,"X-B":true,"X-Null":null},"body":"hi","isBase64Encoded":false,"extra":1}"#,
        );
        assert_eq!(
            r,
            ProxyResult {
                status_code: Some(201),
                headers: pairs(&[
                    ("Sec-WebSocket-Protocol", "chat"),
                    ("X-N", "5"),
                    ("X-B", "true")
                ]),
                body: Some("hi".into()),
                is_base64_encoded: false,
            }
        );
        let r = ok(
            r#"{"headers":{"Set-Cookie":"a=1","X":"y"},"multiValueHeaders":{"set-cookie":["a=1","b=2"],"Z":"single"}}"#,
        );
        assert_eq!(
            r.headers,
            pairs(&[
                ("X", "y"),
                ("set-cookie", "a=1"),
                ("set-cookie", "b=2"),
                ("Z", "single")
            ])
        );
        assert_eq!(
            ok(r#"{"body":{"a":1}}"#).body.as_deref(),
            Some(r#"{"a":1}"#)
        );
        assert_eq!(ok(r#"{"body":12}"#).body.as_deref(), Some("12"));
        assert_eq!(ok(r#"{"body":null}"#).body, None);
        assert!(ok(r#"{"body":"x","isBase64Encoded":true}"#).is_base64_encoded);
        assert_eq!(
            ok(r#""just a string""#).body.as_deref(),
            Some("just a string")
        );
        assert_eq!(ok(" 42 ").body.as_deref(), Some("42"));
        assert_eq!(ok("[1, 2]").body.as_deref(), Some("[1, 2]"));
        assert_eq!(ok("true").body.as_deref(), Some("true"));
        assert_eq!(ok("[1, 2]").status_code, None);

        let bad = [
            "{",
            "nope",
            r#"{"statusCode":99}"#,
            r#"{"statusCode":600}"#,
            r#"{"statusCode":-1}"#,
            r#"{"statusCode":200.5}"#,
            r#"{"statusCode":"abc"}"#,
            r#"{"statusCode":true}"#,
            r#"{"statusCode":70000}"#,
            r#"{"headers":[]}"#,
            r#"{"headers":"x"}"#,
            r#"{"multiValueHeaders":1}"#,
            r#"{"isBase64Encoded":"yes"}"#,
        ];
        for b in bad {
            assert!(parse_proxy_result(b.as_bytes()).is_err(), "{b}");
        }
        assert!(parse_proxy_result(&[0xff, 0xfe]).is_err());
    }

    #[test]
    fn error_frames_exact() {
        let cases = [
            (
                ErrorFrame::Forbidden,
                r#"{"message": "Forbidden", "connectionId":"Yq3kXfP1oAMCJzA=", "requestId":"Yq3lC2xGoAMFt4g="}"#,
            ),
            (
                ErrorFrame::InternalServerError,
                r#"{"message": "Internal server error", "connectionId":"Yq3kXfP1oAMCJzA=", "requestId":"Yq3lC2xGoAMFt4g="}"#,
            ),
            (
                ErrorFrame::EndpointRequestTimedOut,
                r#"{"message": "Endpoint request timed out", "connectionId":"Yq3kXfP1oAMCJzA=", "requestId":"Yq3lC2xGoAMFt4g="}"#,
            ),
            (
                ErrorFrame::TooManyRequests,
                r#"{"message": "Too Many Requests", "connectionId":"Yq3kXfP1oAMCJzA=", "requestId":"Yq3lC2xGoAMFt4g="}"#,
            ),
        ];
        for (kind, want) in cases {
            assert_eq!(
                error_frame(kind, "Yq3kXfP1oAMCJzA=", "Yq3lC2xGoAMFt4g="),
                want
            );
        }
    }

    #[test]
    fn times() {
        let cases = [
            (
                1_740_993_242_118,
                "03/Mar/2025:09:14:02 +0000",
                "2025-03-03T09:14:02.118Z",
            ),
            (0, "01/Jan/1970:00:00:00 +0000", "1970-01-01T00:00:00.000Z"),
            (
                1_705_751_700_000,
                "20/Jan/2024:11:55:00 +0000",
                "2024-01-20T11:55:00.000Z",
            ),
            (
                1_735_689_599_999,
                "31/Dec/2024:23:59:59 +0000",
                "2024-12-31T23:59:59.999Z",
            ),
            (
                i64::MAX,
                "01/Jan/1970:00:00:00 +0000",
                "1970-01-01T00:00:00.000Z",
            ),
        ];
        for (ms, clf, iso) in cases {
            assert_eq!(clf_time(ms), clf, "{ms}");
            assert_eq!(iso8601_millis(ms), iso, "{ms}");
        }
        assert!(now_ms() > 1_700_000_000_000);
    }
}
