//! Request details as events carry them: header-name casing and decoded query strings.
//!
//! API Gateway passes header names in the client's casing. HTTP/1 parsers lower-case names,
//! so events carry the conventional casing instead: a table for the names whose casing is not
//! plain title case (`Sec-WebSocket-Key`), title case (`X-Forwarded-For`) for the rest.

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

/// A `Cookie` header value without the cookies named in `drop` (pairs separated by `;`), or
/// `None` when nothing is left. Used to keep the gateway's own session cookies (which hold
/// tokens) away from proxied backends.
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
    fn session_cookies_are_dropped_and_the_rest_kept() {
        let drop = ["portcullis_access", "portcullis_refresh"];
        assert_eq!(
            without_cookies(
                "theme=dark; portcullis_access=eyJ.x.y; portcullis_csrf=c",
                &drop
            ),
            Some("theme=dark; portcullis_csrf=c".to_owned())
        );
        assert_eq!(without_cookies("portcullis_access=eyJ.x.y", &drop), None);
        assert_eq!(
            without_cookies(" a=1 ;; b=2 ", &drop),
            Some("a=1; b=2".to_owned())
        );
        assert_eq!(without_cookies("flag", &drop), Some("flag".to_owned()));
    }
}
