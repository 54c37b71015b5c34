//! Keeping secrets out of logs: URL query values and header values that carry credentials.

use std::borrow::Cow;

use percent_encoding::percent_decode_str;

/// What replaces a secret.
pub const REDACTED: &str = "<redacted>";

/// Query parameter names (compared ASCII case-insensitively) whose values are secrets.
pub const SENSITIVE_PARAMS: &[&str] = &[
    "access_token",
    "token",
    "id_token",
    "refresh_token",
    "code",
    "client_secret",
    "password",
    "csrf",
    "X-Amz-Signature",
    "X-Amz-Security-Token",
    "X-Amz-Credential",
];

/// Header names (lower-case) whose values are secrets.
pub const SENSITIVE_HEADERS: &[&str] = &[
    "authorization",
    "proxy-authorization",
    "cookie",
    "set-cookie",
    "sec-websocket-protocol",
    "x-amz-security-token",
    "x-csrf-token",
    "x-api-key",
];

/// Replaces the non-empty values of sensitive query parameters with `<redacted>`.
///
/// Accepts a full URL, a path with a query, or a bare query-less path. The fragment is treated
/// the same way as the query when it looks like one (OAuth implicit-flow redirects carry
/// `#access_token=...`). Parameter names are percent-decoded before comparison. Borrows when
/// there is nothing to redact.
pub fn redact_url(url: &str) -> Cow<'_, str> {
    let (before_frag, fragment) = match url.split_once('#') {
        Some((a, f)) => (a, Some(f)),
        None => (url, None),
    };
    let (head, query) = match before_frag.split_once('?') {
        Some((h, q)) => (h, Some(q)),
        None => (before_frag, None),
    };
    let q_hit = query.is_some_and(needs_redaction);
    let f_hit = fragment.is_some_and(needs_redaction);
    if !q_hit && !f_hit {
        return Cow::Borrowed(url);
    }
    let mut out = String::with_capacity(url.len() + 16);
    out.push_str(head);
    if let Some(q) = query {
        out.push('?');
        push_redacted(&mut out, q);
    }
    if let Some(f) = fragment {
        out.push('#');
        push_redacted(&mut out, f);
    }
    Cow::Owned(out)
}

fn is_sensitive_param(raw_name: &str) -> bool {
    let name = percent_decode_str(raw_name).decode_utf8_lossy();
    SENSITIVE_PARAMS
        .iter()
        .any(|s| s.eq_ignore_ascii_case(&name))
}

fn needs_redaction(query: &str) -> bool {
    query.split('&').any(|pair| match pair.split_once('=') {
        Some((name, value)) => !value.is_empty() && is_sensitive_param(name),
        None => false,
    })
}

fn push_redacted(out: &mut String, query: &str) {
    for (i, pair) in query.split('&').enumerate() {
        if i > 0 {
            out.push('&');
        }
        match pair.split_once('=') {
            Some((name, value)) if !value.is_empty() && is_sensitive_param(name) => {
                out.push_str(name);
                out.push('=');
                out.push_str(REDACTED);
            }
            _ => out.push_str(pair),
        }
    }
}

/// Whether a header's value is a secret (name compared case-insensitively).
pub fn is_sensitive_header(name: &str) -> bool {
    SENSITIVE_HEADERS
        .iter()
        .any(|s| s.eq_ignore_ascii_case(name))
}

/// The value to log for a header: `<redacted>` when the header is sensitive.
pub fn redact_header<'a>(name: &str, value: &'a str) -> &'a str {
    if is_sensitive_header(name) {
        REDACTED
    } else {
        value
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        let cases = [
            ("/prod", "/prod"),
            ("/prod?room=lobby", "/prod?room=lobby"),
            ("/prod?token=abc", "/prod?token=<redacted>"),
            (
                "/prod?room=1&TOKEN=abc&x=2",
                "/prod?room=1&TOKEN=<redacted>&x=2",
            ),
            ("/prod?token=&x=1", "/prod?token=&x=1"),
            ("/prod?token", "/prod?token"),
            ("/cb?code=xyz&state=s", "/cb?code=<redacted>&state=s"),
            (
                "wss://h.example/prod?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKID%2F20250303%2Feu-west-1%2Fexecute-api%2Faws4_request&X-Amz-Date=20250303T091600Z&X-Amz-Security-Token=FQo&X-Amz-SignedHeaders=host&X-Amz-Signature=abcd",
                "wss://h.example/prod?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=<redacted>&X-Amz-Date=20250303T091600Z&X-Amz-Security-Token=<redacted>&X-Amz-SignedHeaders=host&X-Amz-Signature=<redacted>",
            ),
            ("/x?access%5Ftoken=a", "/x?access%5Ftoken=<redacted>"),
            ("/x?tokens=a&mytoken=b", "/x?tokens=a&mytoken=b"),
            ("/x?a=b=c&password=p=q", "/x?a=b=c&password=<redacted>"),
            (
                "https://app.example/cb#access_token=t&id_token=i&token_type=Bearer",
                "https://app.example/cb#access_token=<redacted>&id_token=<redacted>&token_type=Bearer",
            ),
            (
                "/x?client_secret=s#frag",
                "/x?client_secret=<redacted>#frag",
            ),
            ("/x#section", "/x#section"),
            (
                "?refresh_token=r&csrf=c",
                "?refresh_token=<redacted>&csrf=<redacted>",
            ),
            ("", ""),
        ];
        for (input, want) in cases {
            assert_eq!(redact_url(input), want, "{input}");
        }
        assert!(matches!(redact_url("/prod?room=1"), Cow::Borrowed(_)));
    }

    #[test]
    fn headers() {
        for name in [
            "Authorization",
            "cookie",
            "Set-Cookie",
            "Sec-WebSocket-Protocol",
            "X-Api-Key",
            "x-amz-security-token",
            "X-CSRF-Token",
            "Proxy-Authorization",
        ] {
            assert!(is_sensitive_header(name), "{name}");
            assert_eq!(redact_header(name, "secret"), REDACTED);
        }
        for name in ["Host", "User-Agent", "X-Amz-Date", "authorization2", ""] {
            assert!(!is_sensitive_header(name), "{name}");
            assert_eq!(redact_header(name, "v"), "v");
        }
    }
}
