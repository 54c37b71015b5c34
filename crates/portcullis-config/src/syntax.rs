//! Checks of the small languages embedded in values: HTTP route keys, WebSocket route keys,
//! identity sources, URLs and names. Each returns a message ready for a diagnostic.

use url::Url;

/// Methods allowed in an HTTP route key (`ANY` matches every method).
pub(crate) const HTTP_METHODS: [&str; 8] = [
    "GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS", "ANY",
];

/// Checks `$default` or `METHOD /path/{param}/{greedy+}` and returns the key with parameter
/// names erased (`GET /a/{}`), so two keys that match the same requests compare equal.
pub(crate) fn http_route_key(key: &str) -> Result<String, String> {
    if key == "$default" {
        return Ok(key.to_owned());
    }
    let Some((method, path)) = key.split_once(' ') else {
        return Err(format!(
            "invalid route key {key:?}: expected \"$default\" or \"METHOD /path\", e.g. \"GET /items/{{id}}\""
        ));
    };
    if !HTTP_METHODS.contains(&method) {
        return Err(format!(
            "invalid route key {key:?}: unknown method {method:?}; expected one of {}",
            HTTP_METHODS.join(", ")
        ));
    }
    let Some(rest) = path.strip_prefix('/') else {
        return Err(format!(
            "invalid route key {key:?}: the path must start with \"/\""
        ));
    };
    let mut normalized = format!("{method} ");
    if rest.is_empty() {
        normalized.push('/');
        return Ok(normalized);
    }
    let segments: Vec<&str> = rest.split('/').collect();
    let mut names: Vec<&str> = Vec::new();
    for (i, segment) in segments.iter().enumerate() {
        let last = i + 1 == segments.len();
        normalized.push('/');
        if segment.is_empty() {
            return Err(format!("invalid route key {key:?}: empty path segment"));
        }
        if let Some(inner) = segment.strip_prefix('{') {
            let Some(inner) = inner.strip_suffix('}') else {
                return Err(format!(
                    "invalid route key {key:?}: segment {segment:?} must be a whole {{name}} or {{name+}}"
                ));
            };
            let (name, greedy) = match inner.strip_suffix('+') {
                Some(name) => (name, true),
                None => (inner, false),
            };
            if name.is_empty()
                || !name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-' || c == '.')
            {
                return Err(format!(
                    "invalid route key {key:?}: bad parameter name {name:?} (letters, digits, '_', '-', '.')"
                ));
            }
            if greedy && !last {
                return Err(format!(
                    "invalid route key {key:?}: greedy parameter {{{name}+}} must be the last segment"
                ));
            }
            if names.contains(&name) {
                return Err(format!(
                    "invalid route key {key:?}: parameter {name:?} appears twice"
                ));
            }
            names.push(name);
            normalized.push_str(if greedy { "{+}" } else { "{}" });
        } else if segment
            .contains(|c: char| matches!(c, '{' | '}' | '?' | '#') || c.is_whitespace())
        {
            return Err(format!(
                "invalid route key {key:?}: segment {segment:?} may not contain braces, '?', '#' or spaces (parameters are whole segments)"
            ));
        } else {
            normalized.push_str(segment);
        }
    }
    Ok(normalized)
}

/// The kind of a WebSocket route key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum WsRouteKind {
    Connect,
    Disconnect,
    Default,
    Custom,
}

pub(crate) fn ws_route_key(key: &str) -> Result<WsRouteKind, String> {
    match key {
        "$connect" => Ok(WsRouteKind::Connect),
        "$disconnect" => Ok(WsRouteKind::Disconnect),
        "$default" => Ok(WsRouteKind::Default),
        "" => Err("route key must not be empty".to_owned()),
        _ if key.starts_with('$') => Err(format!(
            "unknown route key {key:?}: the special keys are $connect, $disconnect and $default, \
             and custom route keys must not start with \"$\""
        )),
        _ => Ok(WsRouteKind::Custom),
    }
}

const IDENTITY_PREFIXES: [&str; 6] = [
    "route.request.header.",
    "route.request.querystring.",
    "route.request.cookie.",
    "$request.header.",
    "$request.querystring.",
    "$request.cookie.",
];

pub(crate) fn identity_source(source: &str) -> Result<(), String> {
    let name = IDENTITY_PREFIXES
        .iter()
        .find_map(|prefix| source.strip_prefix(prefix));
    match name {
        Some(name) if !name.is_empty() && !name.contains(char::is_whitespace) => Ok(()),
        _ => Err(format!(
            "invalid identity source {source:?}: expected route.request.header.NAME, \
             route.request.querystring.NAME, route.request.cookie.NAME (WebSocket) or \
             $request.header.NAME, $request.querystring.NAME, $request.cookie.NAME (HTTP)"
        )),
    }
}

/// An absolute `http://` or `https://` URL with a host.
pub(crate) fn http_url(text: &str) -> Result<Url, String> {
    // Messages show the URL without any password it carries.
    let shown = redact_url(text);
    let url = Url::parse(text).map_err(|e| format!("invalid URL {shown:?}: {e}"))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(format!(
            "invalid URL {shown:?}: expected an http:// or https:// URL"
        ));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(format!("invalid URL {shown:?}: missing host"));
    }
    Ok(url)
}

/// A name used in URLs and ARNs: letters, digits, `_`, `-`.
pub(crate) fn url_name(name: &str) -> Result<(), String> {
    if !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    {
        Ok(())
    } else {
        Err(format!(
            "invalid name {name:?}: use letters, digits, '_' and '-'"
        ))
    }
}

/// `apiId` derived from an API's kind and name: 10 lower-case alphanumerics, stable across
/// restarts and builds (FNV-1a 64 with a final mix, rendered in base 36).
pub(crate) fn derive_api_id(kind: &str, name: &str) -> String {
    const ALPHABET: &[u8; 36] = b"0123456789abcdefghijklmnopqrstuvwxyz";
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in kind.bytes().chain([0]).chain(name.bytes()) {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    // splitmix64 finaliser: spreads FNV's weak low bits over the whole word.
    hash ^= hash >> 30;
    hash = hash.wrapping_mul(0xbf58_476d_1ce4_e5b9);
    hash ^= hash >> 27;
    hash = hash.wrapping_mul(0x94d0_49bb_1331_11eb);
    hash ^= hash >> 31;
    let mut id = String::with_capacity(10);
    for _ in 0..10 {
        let digit = usize::try_from(hash % 36).unwrap_or(0);
        id.push(char::from(ALPHABET.get(digit).copied().unwrap_or(b'0')));
        hash /= 36;
    }
    id
}

/// `postgres://user:secret@host/db?password=x` → password parts replaced by `<redacted>`.
pub(crate) fn redact_url(url: &str) -> String {
    let Some(scheme_end) = url.find("://") else {
        return url.to_owned();
    };
    let authority_start = scheme_end + 3;
    let authority_len = url[authority_start..]
        .find(['/', '?', '#'])
        .unwrap_or(url.len() - authority_start);
    let authority = &url[authority_start..authority_start + authority_len];
    let mut out = url[..authority_start].to_owned();
    match authority.rfind('@') {
        Some(at) => {
            let userinfo = &authority[..at];
            match userinfo.split_once(':') {
                Some((user, _)) => out.push_str(&format!("{user}:<redacted>")),
                None => out.push_str(userinfo),
            }
            out.push_str(&authority[at..]);
        }
        None => out.push_str(authority),
    }
    let rest = &url[authority_start + authority_len..];
    match rest.split_once('?') {
        Some((path, query)) => {
            out.push_str(path);
            out.push('?');
            let (query, fragment) = match query.split_once('#') {
                Some((q, f)) => (q, Some(f)),
                None => (query, None),
            };
            let pairs: Vec<String> = query
                .split('&')
                .map(|pair| match pair.split_once('=') {
                    Some((k, _)) if k.eq_ignore_ascii_case("password") => format!("{k}=<redacted>"),
                    _ => pair.to_owned(),
                })
                .collect();
            out.push_str(&pairs.join("&"));
            if let Some(fragment) = fragment {
                out.push('#');
                out.push_str(fragment);
            }
        }
        None => out.push_str(rest),
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn http_route_keys() {
        assert_eq!(http_route_key("$default").unwrap(), "$default");
        assert_eq!(http_route_key("GET /").unwrap(), "GET /");
        assert_eq!(http_route_key("GET /items/{id}").unwrap(), "GET /items/{}");
        assert_eq!(http_route_key("ANY /{proxy+}").unwrap(), "ANY /{+}");
        assert_eq!(
            http_route_key("POST /a/{x}/b/{rest+}").unwrap(),
            "POST /a/{}/b/{+}"
        );
        for bad in [
            "GET",
            "get /x",
            "FETCH /x",
            "GET x",
            "GET /a//b",
            "GET /{proxy+}/x",
            "GET /{}",
            "GET /a{id}",
            "GET /{id",
            "GET /{a}/{a}",
            "GET /a b",
            "$connect",
        ] {
            assert!(http_route_key(bad).is_err(), "{bad:?} should be rejected");
        }
    }

    #[test]
    fn ws_route_keys() {
        assert_eq!(ws_route_key("$connect"), Ok(WsRouteKind::Connect));
        assert_eq!(ws_route_key("$disconnect"), Ok(WsRouteKind::Disconnect));
        assert_eq!(ws_route_key("$default"), Ok(WsRouteKind::Default));
        assert_eq!(ws_route_key("sendmessage"), Ok(WsRouteKind::Custom));
        assert!(ws_route_key("$connected").is_err());
        assert!(ws_route_key("").is_err());
    }

    #[test]
    fn identity_sources() {
        for ok in [
            "route.request.header.Authorization",
            "route.request.querystring.access_token",
            "route.request.cookie.id_token",
            "$request.header.Authorization",
            "$request.querystring.token",
            "$request.cookie.session",
        ] {
            assert!(identity_source(ok).is_ok(), "{ok}");
        }
        for bad in [
            "header.Authorization",
            "$request.header.",
            "route.request.body.x",
            "$request.header.a b",
        ] {
            assert!(identity_source(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn http_urls() {
        assert!(http_url("http://127.0.0.1:9000/events").is_ok());
        assert!(http_url("https://example.com").is_ok());
        assert!(http_url("ftp://example.com").is_err());
        assert!(http_url("/relative").is_err());
        assert!(http_url("example.com").is_err());
    }

    #[test]
    fn api_ids_are_stable_and_well_formed() {
        let id = derive_api_id("websocket", "chat");
        assert_eq!(id.len(), 10);
        assert!(
            id.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
        );
        assert_eq!(id, derive_api_id("websocket", "chat"));
        assert_ne!(id, derive_api_id("http", "chat"));
        assert_ne!(id, derive_api_id("websocket", "chat2"));
    }

    #[test]
    fn urls_lose_their_passwords() {
        assert_eq!(
            redact_url("sqlite://portcullis.db"),
            "sqlite://portcullis.db"
        );
        assert_eq!(redact_url("sqlite::memory:"), "sqlite::memory:");
        assert_eq!(
            redact_url("postgres://app:hunter2@db:5432/gw?sslmode=require&password=x#f"),
            "postgres://app:<redacted>@db:5432/gw?sslmode=require&password=<redacted>#f"
        );
        assert_eq!(redact_url("postgres://app@db/gw"), "postgres://app@db/gw");
        assert_eq!(redact_url("http://host/a?b=c"), "http://host/a?b=c");
    }
}
