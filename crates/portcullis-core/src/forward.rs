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

/// A header name's byte as a CGI-style backend would see it: lower-cased, `_` read as `-`.
fn fold(b: u8) -> u8 {
    match b {
        b'_' => b'-',
        b => b.to_ascii_lowercase(),
    }
}

/// Whether two header names are the same to a CGI-style backend.
fn same_name(a: &str, b: &str) -> bool {
    a.len() == b.len() && a.bytes().zip(b.bytes()).all(|(x, y)| fold(x) == fold(y))
}

/// Whether `name` folded starts with `prefix` (lower-case, with `-`).
fn name_starts_with(name: &str, prefix: &str) -> bool {
    name.len() >= prefix.len() && name.bytes().zip(prefix.bytes()).all(|(x, p)| fold(x) == p)
}

/// Whether `name`, in any casing and with `_` for `-`, is a header only the gateway may set.
pub fn is_gateway_owned(name: &str) -> bool {
    name_starts_with(name, "x-portcullis-")
        || name_starts_with(name, "x-forwarded-")
        || same_name(name, "forwarded")
        || same_name(name, "x-real-ip")
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

/// What `http_proxy` does with one of the client's headers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProxyFate {
    /// Forwarded unchanged.
    Keep,
    /// Not forwarded: hop-by-hop, named by `Connection`, or the gateway's.
    Drop,
    /// Its values come first in the gateway's `X-Forwarded-For`.
    ForwardedFor,
    /// The client's `Host`: sent as `X-Forwarded-Host` (the backend's URL names its host).
    Host,
    /// Forwarded without the gateway's session cookies ([`without_cookies`]).
    Cookie,
}

/// The fate of the client's header `name`; `connection` holds the values of the client's
/// `Connection` headers (each a comma-separated list of header names).
pub fn proxy_fate(name: &str, connection: &[&str]) -> ProxyFate {
    if name.eq_ignore_ascii_case("x-forwarded-for") {
        return ProxyFate::ForwardedFor;
    }
    if name.eq_ignore_ascii_case("host") {
        return ProxyFate::Host;
    }
    let named_by_connection = || {
        connection
            .iter()
            .flat_map(|v| v.split(','))
            .any(|token| same_name(token.trim(), name))
    };
    if HOP_BY_HOP.iter().any(|h| same_name(name, h))
        || is_gateway_owned(name)
        || named_by_connection()
    {
        return ProxyFate::Drop;
    }
    if name.eq_ignore_ascii_case("cookie") {
        return ProxyFate::Cookie;
    }
    ProxyFate::Keep
}

/// The headers the gateway adds to a proxied request, in order: `X-Forwarded-For` (the
/// client's own values, `prior`, then `ctx.source_ip`: the last entry is the one the gateway
/// vouches for), `X-Forwarded-Proto`, `X-Forwarded-Host` (the client's `Host`, if any), and
/// `X-Portcullis-Principal` / `X-Portcullis-Authorizer` when the route has an authorizer.
pub fn proxy_additions<'a>(
    prior: &[&str],
    host: Option<&'a [u8]>,
    ctx: &ProxyContext<'a>,
) -> impl Iterator<Item = (&'static str, std::borrow::Cow<'a, [u8]>)> {
    use std::borrow::Cow;
    let mut forwarded_for = String::with_capacity(
        prior.iter().map(|p| p.len() + 2).sum::<usize>() + ctx.source_ip.len(),
    );
    for value in prior
        .iter()
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .filter(|v| !v.is_empty())
    {
        forwarded_for.push_str(value);
        forwarded_for.push_str(", ");
    }
    forwarded_for.push_str(ctx.source_ip);
    let proto: &'static [u8] = if ctx.scheme == "https" {
        b"https"
    } else {
        b"http"
    };
    [
        Some(("x-forwarded-for", Cow::Owned(forwarded_for.into_bytes()))),
        Some(("x-forwarded-proto", Cow::Borrowed(proto))),
        host.map(|h| ("x-forwarded-host", Cow::Borrowed(h))),
        ctx.principal
            .map(|p| (PRINCIPAL_HEADER, Cow::Borrowed(p.as_bytes()))),
        ctx.authorizer
            .map(|a| (AUTHORIZER_HEADER, Cow::Borrowed(a.as_bytes()))),
    ]
    .into_iter()
    .flatten()
}

/// The headers `http_proxy` sends a backend, from the client's headers (values as bytes):
/// each as [`proxy_fate`] decides, then [`proxy_additions`]. The gateway applies the same
/// rules to its header map without this copy.
pub fn proxy_headers(headers: &[(&str, &[u8])], ctx: &ProxyContext<'_>) -> Vec<(String, Vec<u8>)> {
    let connection: Vec<&str> = headers
        .iter()
        .filter(|(n, _)| n.eq_ignore_ascii_case("connection"))
        .filter_map(|(_, v)| std::str::from_utf8(v).ok())
        .collect();
    let mut prior: Vec<&str> = Vec::new();
    let mut host: Option<&[u8]> = None;
    let mut out: Vec<(String, Vec<u8>)> = Vec::with_capacity(headers.len() + 5);
    for (name, value) in headers {
        match proxy_fate(name, &connection) {
            ProxyFate::Keep => out.push((name.to_ascii_lowercase(), value.to_vec())),
            ProxyFate::Drop => {}
            ProxyFate::ForwardedFor => prior.extend(std::str::from_utf8(value).ok()),
            ProxyFate::Host => {
                host.get_or_insert(*value);
            }
            ProxyFate::Cookie => {
                if let Some(kept) = std::str::from_utf8(value)
                    .ok()
                    .and_then(|v| without_cookies(v, SESSION_COOKIES))
                {
                    out.push((name.to_ascii_lowercase(), kept.into_bytes()));
                }
            }
        }
    }
    out.extend(
        proxy_additions(&prior, host, ctx)
            .map(|(name, value)| (name.to_owned(), value.into_owned())),
    );
    out
}

#[cfg(test)]
mod tests;
