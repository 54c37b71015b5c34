//! Request details as events carry them: header-name casing and decoded query strings.
//!
//! API Gateway passes header names in the client's casing. HTTP/1 parsers lower-case names,
//! so events carry the conventional casing instead: a table for the names whose casing is not
//! plain title case (`Sec-WebSocket-Key`), title case (`X-Forwarded-For`) for the rest.

use std::borrow::Cow;

const SPECIAL: &[(&str, &str)] = &[
    ("sec-websocket-key", "Sec-WebSocket-Key"),
    ("sec-websocket-version", "Sec-WebSocket-Version"),
    ("sec-websocket-extensions", "Sec-WebSocket-Extensions"),
    ("sec-websocket-protocol", "Sec-WebSocket-Protocol"),
    ("x-amzn-trace-id", "X-Amzn-Trace-Id"),
    ("www-authenticate", "WWW-Authenticate"),
    ("dnt", "DNT"),
    ("te", "TE"),
];

/// Conventional casing of a lower-case header name.
pub fn canonical_name(lower: &str) -> String {
    if let Some((_, name)) = SPECIAL.iter().find(|(l, _)| *l == lower) {
        return (*name).to_owned();
    }
    let mut out = String::with_capacity(lower.len());
    let mut upper = true;
    for c in lower.chars() {
        if upper {
            out.extend(c.to_uppercase());
        } else {
            out.push(c);
        }
        upper = c == '-';
    }
    out
}

/// A query string decoded into pairs, in order (empty when there is none).
pub fn query_pairs(query: Option<&str>) -> Vec<(String, String)> {
    match query {
        Some(q) if !q.is_empty() => url::form_urlencoded::parse(q.as_bytes())
            .into_owned()
            .collect(),
        _ => Vec::new(),
    }
}

/// [`query_pairs`] borrowing from `query` where nothing needed decoding.
pub fn query_cows(query: Option<&str>) -> Vec<(Cow<'_, str>, Cow<'_, str>)> {
    match query {
        Some(q) if !q.is_empty() => url::form_urlencoded::parse(q.as_bytes()).collect(),
        _ => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn casing() {
        assert_eq!(canonical_name("host"), "Host");
        assert_eq!(canonical_name("x-forwarded-for"), "X-Forwarded-For");
        assert_eq!(canonical_name("sec-websocket-key"), "Sec-WebSocket-Key");
        assert_eq!(canonical_name("user-agent"), "User-Agent");
    }

    #[test]
    fn the_cookies_kept_from_backends_are_the_cookie_sessions() {
        use portcullis_core::forward::SESSION_COOKIES;
        use portcullis_idp::http::cookie_session::{ACCESS_COOKIE, REFRESH_COOKIE};
        assert!(SESSION_COOKIES.contains(&ACCESS_COOKIE));
        assert!(SESSION_COOKIES.contains(&REFRESH_COOKIE));
    }
}
