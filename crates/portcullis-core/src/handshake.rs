//! The WebSocket opening handshake (RFC 6455 §4.2) as the gateway answers it, over plain
//! values: the upgrade checks of `docs/life-of-a-connection.md` ("Upgrade checks"), in their
//! order, the Origin allow-list, subprotocol negotiation, the accept key and the headers of
//! the `101 Switching Protocols`.
//!
//! Header lists are `(name, value)` pairs in the order the client sent them; names compare
//! ASCII case-insensitively. Where a check reads one header (`Sec-WebSocket-Version`,
//! `Sec-WebSocket-Key`, `Origin`) the first one counts; `Connection`, `Upgrade` and
//! `Sec-WebSocket-Protocol` are read from every occurrence, split on commas. A value that is
//! not visible ASCII is ignored where it would be read as text.

use base64::Engine;
use sha1::{Digest, Sha1};

use crate::subprotocol::{self, Negotiated};

/// The GUID RFC 6455 appends to the client's key.
const WEBSOCKET_GUID: &[u8] = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

/// What the API's configuration says about upgrades.
#[derive(Debug, Clone, Copy)]
pub struct UpgradePolicy<'a> {
    /// Origins a browser may connect from; empty: any.
    pub allowed_origins: &'a [String],
    /// Subprotocols the API speaks, in no particular order.
    pub subprotocols: &'a [String],
}

/// An upgrade request that passed every check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Accepted {
    /// The `Sec-WebSocket-Accept` value.
    pub accept: String,
    /// The client's token (a JWT-shaped offered subprotocol) and the subprotocol to echo.
    pub protocol: Negotiated,
}

/// Why an upgrade request is refused, in the order the checks run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// Not a `GET` with `Connection: upgrade` and `Upgrade: websocket`.
    NotUpgrade,
    /// `Sec-WebSocket-Version` is not `13`.
    UnsupportedVersion,
    /// No `Sec-WebSocket-Key`.
    MissingKey,
    /// The browser's `Origin` is not in the API's `allowed_origins`.
    OriginNotAllowed,
}

impl Refusal {
    /// The HTTP status of the answer.
    pub fn status(self) -> u16 {
        match self {
            Refusal::NotUpgrade | Refusal::UnsupportedVersion => 426,
            Refusal::MissingKey => 400,
            Refusal::OriginNotAllowed => 403,
        }
    }

    /// The `message` of the JSON body.
    pub fn message(self) -> &'static str {
        match self {
            Refusal::NotUpgrade => "Upgrade Required",
            Refusal::UnsupportedVersion => "Unsupported WebSocket version",
            Refusal::MissingKey => "Missing Sec-WebSocket-Key",
            Refusal::OriginNotAllowed => "Forbidden",
        }
    }

    /// The JSON body of the answer.
    pub fn body(self) -> String {
        format!("{{\"message\":\"{}\"}}", self.message())
    }

    /// The header telling the client what the gateway would accept, if any (after
    /// `Content-Type: application/json`).
    pub fn header(self) -> Option<(&'static str, &'static str)> {
        match self {
            Refusal::NotUpgrade => Some(("upgrade", "websocket")),
            Refusal::UnsupportedVersion => Some(("sec-websocket-version", "13")),
            Refusal::MissingKey | Refusal::OriginNotAllowed => None,
        }
    }
}

/// `value` as text when every byte is visible ASCII (or a tab), as HTTP libraries read
/// header values.
fn visible_ascii(value: &[u8]) -> Option<&str> {
    value
        .iter()
        .all(|&b| (32..127).contains(&b) || b == b'\t')
        .then(|| std::str::from_utf8(value).ok())
        .flatten()
}

/// The first value of header `name`.
fn first<'h>(headers: &[(&str, &'h [u8])], name: &str) -> Option<&'h [u8]> {
    headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| *v)
}

/// Every textual value of header `name`, in order.
fn all<'h>(headers: &'h [(&str, &'h [u8])], name: &'h str) -> impl Iterator<Item = &'h str> {
    headers
        .iter()
        .filter(move |(n, _)| n.eq_ignore_ascii_case(name))
        .filter_map(|(_, v)| visible_ascii(v))
}

/// Whether some `name` header lists `token` (comma-separated, case-insensitive).
fn has_token(headers: &[(&str, &[u8])], name: &str, token: &str) -> bool {
    all(headers, name).any(|v| v.split(',').any(|t| t.trim().eq_ignore_ascii_case(token)))
}

/// `Sec-WebSocket-Accept` for the client's `Sec-WebSocket-Key` (RFC 6455 §4.2.2): the base64
/// of the SHA-1 of the key followed by the protocol's GUID.
pub fn accept_key(key: &[u8]) -> String {
    let mut sha1 = Sha1::new();
    sha1.update(key);
    sha1.update(WEBSOCKET_GUID);
    base64::engine::general_purpose::STANDARD.encode(sha1.finalize())
}

/// Run the upgrade checks on a request (`method` as sent, e.g. `GET`), in the documented
/// order; the first that fails decides the refusal.
pub fn check(
    method: &str,
    headers: &[(&str, &[u8])],
    policy: &UpgradePolicy<'_>,
) -> Result<Accepted, Refusal> {
    if method != "GET"
        || !has_token(headers, "connection", "upgrade")
        || !has_token(headers, "upgrade", "websocket")
    {
        return Err(Refusal::NotUpgrade);
    }
    if first(headers, "sec-websocket-version") != Some(b"13".as_slice()) {
        return Err(Refusal::UnsupportedVersion);
    }
    let Some(key) = first(headers, "sec-websocket-key") else {
        return Err(Refusal::MissingKey);
    };
    if !origin_allowed(headers, policy.allowed_origins) {
        return Err(Refusal::OriginNotAllowed);
    }
    let offered: Vec<&str> = all(headers, "sec-websocket-protocol").collect();
    Ok(Accepted {
        accept: accept_key(key),
        protocol: subprotocol::negotiate(&offered, policy.subprotocols),
    })
}

/// Whether a request may come from its `Origin`: an API without `allowed_origins` takes any,
/// one with a list takes the origins listed. A browser always sends `Origin` on a WebSocket
/// upgrade and on a cross-origin `EventSource`; a request without one (a non-browser client,
/// a same-origin `EventSource`) is not a cross-site request and passes.
pub fn origin_allowed(headers: &[(&str, &[u8])], allowed_origins: &[String]) -> bool {
    listed_origin(headers, allowed_origins).is_some()
        || allowed_origins.is_empty()
        || first(headers, "origin").is_none()
}

/// The request's `Origin` when `allowed_origins` lists it (an origin the API trusts by name,
/// e.g. to answer a cross-origin `EventSource` with CORS headers).
pub fn listed_origin<'h>(
    headers: &[(&str, &'h [u8])],
    allowed_origins: &[String],
) -> Option<&'h str> {
    let origin = first(headers, "origin")?;
    allowed_origins
        .iter()
        .any(|o| o.as_bytes() == origin)
        .then(|| visible_ascii(origin))
        .flatten()
}

/// Headers of the handshake itself: the gateway's, never a backend's.
const HANDSHAKE_HEADERS: &[&str] = &[
    "connection",
    "upgrade",
    "sec-websocket-accept",
    "content-length",
    "transfer-encoding",
];

/// Whether `name` is a valid header name (RFC 9110 token characters, 1 to 65536 bytes).
pub fn is_header_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 1 << 16
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

/// Whether `value` may be sent as a header value (no control characters but tab).
pub fn is_header_value(value: &str) -> bool {
    value.bytes().all(|b| (b >= 32 && b != 127) || b == b'\t')
}

/// The headers of the `101 Switching Protocols`, in order, names in lower case:
///
/// - the `$connect` result's headers, except the handshake's own and those that are not valid
///   header names or values; a `Sec-WebSocket-Protocol` there chooses the protocol, but never
///   the client's token;
/// - else the negotiated subprotocol, if any;
/// - `Connection: upgrade`, `Upgrade: websocket` and `Sec-WebSocket-Accept`.
pub fn switching_protocols(
    accepted: &Accepted,
    connect_headers: &[(String, String)],
) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::with_capacity(connect_headers.len() + 4);
    let mut protocol_set = false;
    for (name, value) in connect_headers {
        let lower = name.to_ascii_lowercase();
        if HANDSHAKE_HEADERS.contains(&lower.as_str())
            || !is_header_name(&lower)
            || !is_header_value(value)
        {
            continue;
        }
        if lower == "sec-websocket-protocol" {
            // Never echo the token back, whoever asks.
            if accepted.protocol.token.as_deref() == Some(value.as_str()) {
                continue;
            }
            protocol_set = true;
        }
        out.push((lower, value.clone()));
    }
    if !protocol_set
        && let Some(echo) = &accepted.protocol.echo
        && is_header_value(echo)
    {
        out.push(("sec-websocket-protocol".to_owned(), echo.clone()));
    }
    out.push(("connection".to_owned(), "upgrade".to_owned()));
    out.push(("upgrade".to_owned(), "websocket".to_owned()));
    out.push(("sec-websocket-accept".to_owned(), accepted.accept.clone()));
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests;
