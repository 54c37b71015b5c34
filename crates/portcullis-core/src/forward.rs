//! What a backend is told about a request, and what it is never told.
//!
//! The gateway owns a few headers: `X-Portcullis-*` (who called, as the authorizer decided),
//! `X-Forwarded-*` (the client's address, scheme and host), and the `Forwarded` / `X-Real-IP`
//! headers other proxies use for the same facts. A client can never set any of them, in any
//! spelling: CGI, WSGI, PHP-FPM and Rack turn both `X-Real-IP` and `X_Real_IP` into
//! `HTTP_X_REAL_IP`, so names are compared ASCII case-insensitively with `_` equal to `-`.
//!
//! The gateway's session cookies (the identity provider's cookie session) hold tokens: they
//! are the gateway's, never a backend's, whether the backend gets the request itself
//! (`http_proxy`) or an event (`$connect`, `http` integrations). One rule strips them from both.

/// Cookies of the identity provider's cookie session: the access token (`portcullis_access`)
/// and the refresh token (`portcullis_refresh`). Never forwarded to a backend.
pub const SESSION_COOKIES: &[&str] = &["portcullis_access", "portcullis_refresh"];

/// Header through which `http_proxy` backends learn the caller's principal id.
pub const PRINCIPAL_HEADER: &str = "x-portcullis-principal";
/// Header through which `http_proxy` backends get the authorizer's context (JSON).
pub const AUTHORIZER_HEADER: &str = "x-portcullis-authorizer";

/// Hop-by-hop headers: never forwarded in either direction (RFC 9110 §7.6.1).
pub const HOP_BY_HOP: &[&str] = &[
    "connection",
    "keep-alive",
    "proxy-connection",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
];

/// `name` lower-cased with `_` read as `-`: the name a CGI-style backend would see.
fn normalised(name: &str) -> String {
    name.chars()
        .map(|c| match c {
            '_' => '-',
            c => c.to_ascii_lowercase(),
        })
        .collect()
}

/// Whether `name`, in any casing and with `_` for `-`, is a header only the gateway may set.
pub fn is_gateway_owned(name: &str) -> bool {
    let n = normalised(name);
    n.starts_with("x-portcullis-")
        || n.starts_with("x-forwarded-")
        || n == "forwarded"
        || n == "x-real-ip"
}

/// Whether one `name=value` pair of a `Cookie` header is one of the gateway's
/// [`SESSION_COOKIES`].
pub fn is_session_cookie(pair: &str) -> bool {
    let name = pair.split_once('=').map_or(pair, |(n, _)| n).trim();
    SESSION_COOKIES.contains(&name)
}

/// A `Cookie` header value without the cookies named in `drop` (pairs separated by `;`), or
/// `None` when nothing is left.
pub fn without_cookies(value: &str, drop: &[&str]) -> Option<String> {
    let kept: Vec<&str> = value
        .split(';')
        .map(str::trim)
        .filter(|pair| !pair.is_empty())
        .filter(|pair| {
            let name = pair.split_once('=').map_or(*pair, |(n, _)| n).trim();
            !drop.contains(&name)
        })
        .collect();
    (!kept.is_empty()).then(|| kept.join("; "))
}

/// Request headers as an event carries them: every `Cookie` header without the gateway's
/// session cookies (dropped when nothing is left); everything else unchanged and in order.
pub fn event_headers(headers: &[(String, String)]) -> Vec<(String, String)> {
    headers
        .iter()
        .filter_map(|(name, value)| {
            if name.eq_ignore_ascii_case("cookie") {
                without_cookies(value, SESSION_COOKIES).map(|v| (name.clone(), v))
            } else {
                Some((name.clone(), value.clone()))
            }
        })
        .collect()
}

/// What `http_proxy` knows about a request besides its headers.
#[derive(Debug, Clone, Copy)]
pub struct ProxyContext<'a> {
    /// The client's address (the TCP peer).
    pub source_ip: &'a str,
    /// `http` or `https`: how the client reached the gateway.
    pub scheme: &'a str,
    /// The authorizer's principal id, when a route has an authorizer.
    pub principal: Option<&'a str>,
    /// The authorizer's context as JSON, when a route has an authorizer.
    pub authorizer: Option<&'a str>,
}

/// The headers `http_proxy` sends a backend, from the client's headers (lower-case names as
/// HTTP/1 parsers give them; values as bytes):
///
/// - dropped: hop-by-hop headers and those the `Connection` header names; `Host` (the backend's
///   URL names its host; the client's goes in `X-Forwarded-Host`); every header the gateway
///   owns, in any spelling ([`is_gateway_owned`]);
/// - `Cookie` without the gateway's session cookies ([`SESSION_COOKIES`]);
/// - set by the gateway: `X-Forwarded-For` (the client's own `X-Forwarded-For` values, then the
///   client's address: the last entry is the one the gateway vouches for), `X-Forwarded-Proto`,
///   `X-Forwarded-Host` (the client's `Host`), and `X-Portcullis-Principal` /
///   `X-Portcullis-Authorizer` when the route has an authorizer.
pub fn proxy_headers(headers: &[(&str, &[u8])], ctx: &ProxyContext<'_>) -> Vec<(String, Vec<u8>)> {
    let connection_tokens: Vec<String> = headers
        .iter()
        .filter(|(n, _)| n.eq_ignore_ascii_case("connection"))
        .filter_map(|(_, v)| std::str::from_utf8(v).ok())
        .flat_map(|v| v.split(',').map(|t| normalised(t.trim())))
        .collect();
    let mut prior_forwarded_for: Vec<&str> = Vec::new();
    let mut host: Option<&[u8]> = None;
    let mut out: Vec<(String, Vec<u8>)> = Vec::with_capacity(headers.len() + 5);
    for (name, value) in headers {
        let lower = name.to_ascii_lowercase();
        if lower == "x-forwarded-for" {
            if let Ok(v) = std::str::from_utf8(value) {
                prior_forwarded_for.extend(v.split(',').map(str::trim).filter(|s| !s.is_empty()));
            }
            continue;
        }
        if lower == "host" {
            host.get_or_insert(*value);
            continue;
        }
        let n = normalised(name);
        if HOP_BY_HOP.contains(&n.as_str())
            || connection_tokens.contains(&n)
            || is_gateway_owned(&n)
        {
            continue;
        }
        if lower == "cookie" {
            if let Some(kept) = std::str::from_utf8(value)
                .ok()
                .and_then(|v| without_cookies(v, SESSION_COOKIES))
            {
                out.push((lower, kept.into_bytes()));
            }
            continue;
        }
        out.push((lower, value.to_vec()));
    }
    prior_forwarded_for.push(ctx.source_ip);
    out.push((
        "x-forwarded-for".to_owned(),
        prior_forwarded_for.join(", ").into_bytes(),
    ));
    let proto = if ctx.scheme == "https" {
        "https"
    } else {
        "http"
    };
    out.push(("x-forwarded-proto".to_owned(), proto.as_bytes().to_vec()));
    if let Some(host) = host {
        out.push(("x-forwarded-host".to_owned(), host.to_vec()));
    }
    if let Some(principal) = ctx.principal {
        out.push((PRINCIPAL_HEADER.to_owned(), principal.as_bytes().to_vec()));
    }
    if let Some(context) = ctx.authorizer {
        out.push((AUTHORIZER_HEADER.to_owned(), context.as_bytes().to_vec()));
    }
    out
}

#[cfg(test)]
mod tests;
