//! Keeping secrets out of logs: URL query values (all but a few names known to be harmless) and
//! header values that carry credentials.

use std::borrow::Cow;

use percent_encoding::percent_decode_str;

/// What replaces a secret.
pub const REDACTED: &str = "<redacted>";

/// Query parameter names (compared ASCII case-insensitively) whose values are logged as
/// sent: names known never to carry a secret. Every other value is logged as `<redacted>`,
/// whatever its name, so a token in a parameter that a configuration chose (a `jwt`
/// authorizer's `route.request.querystring.jwt`, a request authorizer's `?session=`, a CSRF
/// echo) can never reach a log.
pub const LOGGED_PARAMS: &[&str] = &[
    "X-Amz-Algorithm",
    "X-Amz-Date",
    "X-Amz-Expires",
    "X-Amz-SignedHeaders",
    "client_id",
    "response_type",
    "scope",
    "grant_type",
    "token_type",
    "expires_in",
    "error",
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

/// Replaces every non-empty query parameter value with `<redacted>`, except those of
/// [`LOGGED_PARAMS`]; a bare entry (no `=`) counts as a value.
///
/// Accepts a full URL, a path with a query, or a bare query-less path. The fragment is treated
/// the same way as the query when it has an `=` (OAuth implicit-flow redirects carry
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
    let fragment = fragment.map(|f| (f, f.contains('=')));
    let f_hit = fragment.is_some_and(|(f, query_like)| query_like && needs_redaction(f));
    if !q_hit && !f_hit {
        return Cow::Borrowed(url);
    }
    let mut out = String::with_capacity(url.len() + 16);
    out.push_str(head);
    if let Some(q) = query {
        out.push('?');
        push_redacted(&mut out, q);
    }
    if let Some((f, query_like)) = fragment {
        out.push('#');
        if query_like {
            push_redacted(&mut out, f);
        } else {
            out.push_str(f);
        }
    }
    Cow::Owned(out)
}

fn is_logged_param(raw_name: &str) -> bool {
    let name = percent_decode_str(raw_name).decode_utf8_lossy();
    LOGGED_PARAMS.iter().any(|s| s.eq_ignore_ascii_case(&name))
}

/// Whether one `name=value` entry (or a bare entry) would be logged as `<redacted>`.
fn is_secret_entry(pair: &str) -> bool {
    match pair.split_once('=') {
        Some((name, value)) => !value.is_empty() && !is_logged_param(name),
        None => !pair.is_empty() && !is_logged_param(pair),
    }
}

fn needs_redaction(query: &str) -> bool {
    query.split('&').any(is_secret_entry)
}

fn push_redacted(out: &mut String, query: &str) {
    for (i, pair) in query.split('&').enumerate() {
        if i > 0 {
            out.push('&');
        }
        if !is_secret_entry(pair) {
            out.push_str(pair);
            continue;
        }
        match pair.split_once('=') {
            Some((name, _)) => {
                out.push_str(name);
                out.push('=');
                out.push_str(REDACTED);
            }
            None => out.push_str(REDACTED),
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
            ("/prod?room=lobby", "/prod?room=<redacted>"),
            ("/prod?token=abc", "/prod?token=<redacted>"),
            // Whatever a configuration names its token parameter.
            ("/chat?jwt=eyJ.a.b", "/chat?jwt=<redacted>"),
            (
                "/chat?session=s3cret&csrf=c",
                "/chat?session=<redacted>&csrf=<redacted>",
            ),
            (
                "/prod?room=1&TOKEN=abc&x=2",
                "/prod?room=<redacted>&TOKEN=<redacted>&x=<redacted>",
            ),
            ("/prod?token=&x=", "/prod?token=&x="),
            ("/prod?eyJhbGciOiJSUzI1NiJ9", "/prod?<redacted>"),
            ("/prod?&", "/prod?&"),
            (
                "/cb?code=xyz&state=s",
                "/cb?code=<redacted>&state=<redacted>",
            ),
            (
                "/oauth2/authorize?client_id=web&response_type=code&scope=openid",
                "/oauth2/authorize?client_id=web&response_type=code&scope=openid",
            ),
            (
                "wss://h.example/prod?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKID%2F20250303%2Feu-west-1%2Fexecute-api%2Faws4_request&X-Amz-Date=20250303T091600Z&X-Amz-Security-Token=FQo&X-Amz-SignedHeaders=host&X-Amz-Signature=abcd",
                "wss://h.example/prod?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=<redacted>&X-Amz-Date=20250303T091600Z&X-Amz-Security-Token=<redacted>&X-Amz-SignedHeaders=host&X-Amz-Signature=<redacted>",
            ),
            ("/x?access%5Ftoken=a", "/x?access%5Ftoken=<redacted>"),
            ("/x?client%5Fid=web", "/x?client%5Fid=web"),
            (
                "/x?CLIENT_ID=web&client_ids=a",
                "/x?CLIENT_ID=web&client_ids=<redacted>",
            ),
            (
                "/x?a=b=c&password=p=q",
                "/x?a=<redacted>&password=<redacted>",
            ),
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
        assert!(matches!(
            redact_url("/prod?client_id=web#top"),
            Cow::Borrowed(_)
        ));
        assert!(matches!(redact_url("/prod"), Cow::Borrowed(_)));
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
