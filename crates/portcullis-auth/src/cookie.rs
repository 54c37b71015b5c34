//! `Cookie` request headers, parsed leniently in the spirit of RFC 6265 §5.4 / §5.2: pairs are
//! `;`-separated, whitespace around names and values is trimmed, a pair without `=` or with an
//! empty name is skipped, a value wrapped in double quotes is unquoted, and names are
//! case-sensitive. When a name repeats, the first occurrence wins (browsers send the most
//! specific cookie first) — except for cookies that must be unique ([`unique_cookie`]): a
//! sibling subdomain can set a second cookie of the same name that the browser sends first
//! ("cookie tossing"), so a CSRF cookie sent twice is refused rather than guessed at. No
//! percent-decoding: values are returned as sent.
//!
//! Work is bounded: at most [`MAX_PAIRS_PER_HEADER`] pairs of one header are looked at.

/// Pairs considered per `Cookie` header; the rest of an absurdly long header is ignored.
pub const MAX_PAIRS_PER_HEADER: usize = 256;

/// The `(name, value)` pairs of one `Cookie` header value, in order.
pub fn parse_cookies(header: &str) -> impl Iterator<Item = (&str, &str)> {
    header
        .split(';')
        .take(MAX_PAIRS_PER_HEADER)
        .filter_map(|pair| {
            let (name, value) = pair.split_once('=')?;
            let name = name.trim();
            if name.is_empty() {
                return None;
            }
            Some((name, unquote(value.trim())))
        })
}

/// The value of cookie `name` across several `Cookie` header values (first match wins).
pub fn cookie<'a>(headers: impl Iterator<Item = &'a str>, name: &str) -> Option<&'a str> {
    headers
        .flat_map(parse_cookies)
        .find_map(|(n, v)| (n == name).then_some(v))
}

/// A cookie that must be sent once was not: it came twice or more, or a `Cookie` header had
/// more than [`MAX_PAIRS_PER_HEADER`] pairs (so a second occurrence could hide past them).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("cookie sent more than once")]
pub struct Ambiguous;

/// The value of cookie `name` across several `Cookie` header values, `None` when absent;
/// [`Ambiguous`] when it is not sent exactly once.
pub fn unique_cookie<'a>(
    headers: impl Iterator<Item = &'a str>,
    name: &str,
) -> Result<Option<&'a str>, Ambiguous> {
    let mut found = None;
    for header in headers {
        if header.split(';').nth(MAX_PAIRS_PER_HEADER).is_some() {
            return Err(Ambiguous);
        }
        for (n, v) in parse_cookies(header) {
            if n == name {
                if found.is_some() {
                    return Err(Ambiguous);
                }
                found = Some(v);
            }
        }
    }
    Ok(found)
}

/// The raw `name=value` entries of a `Cookie` header (trimmed, empty entries dropped), as in the
/// `cookies` array of an HTTP payload 2.0 event.
pub(crate) fn raw_entries(header: &str) -> impl Iterator<Item = &str> {
    header
        .split(';')
        .take(MAX_PAIRS_PER_HEADER)
        .map(str::trim)
        .filter(|e| !e.is_empty())
}

fn unquote(value: &str) -> &str {
    value
        .strip_prefix('"')
        .and_then(|v| v.strip_suffix('"'))
        .unwrap_or(value)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn parse_table() {
        let cases: &[(&str, &[(&str, &str)])] = &[
            ("", &[]),
            ("a=1", &[("a", "1")]),
            ("a=1; b=2", &[("a", "1"), ("b", "2")]),
            ("a=1;b=2", &[("a", "1"), ("b", "2")]),
            ("  a = 1 ;\tb=2  ", &[("a", "1"), ("b", "2")]),
            ("a=", &[("a", "")]),
            ("a=\"quoted value\"", &[("a", "quoted value")]),
            ("a=\"\"", &[("a", "")]),
            ("a=\"", &[("a", "\"")]),
            ("a=\"open", &[("a", "\"open")]),
            ("novalue; a=1", &[("a", "1")]),
            ("=orphan; a=1", &[("a", "1")]),
            (";;; a=1 ;;", &[("a", "1")]),
            ("jwt=x.y.z==; b=c=d", &[("jwt", "x.y.z=="), ("b", "c=d")]),
            ("A=1; a=2", &[("A", "1"), ("a", "2")]),
            ("é=ü", &[("é", "ü")]),
        ];
        for (header, want) in cases {
            let got: Vec<_> = parse_cookies(header).collect();
            assert_eq!(&got, want, "{header:?}");
        }
    }

    #[test]
    fn lookup_first_match_across_headers() {
        let headers = ["theme=dark; sid=first", "sid=second; csrf=\"tok\""];
        assert_eq!(cookie(headers.iter().copied(), "sid"), Some("first"));
        assert_eq!(cookie(headers.iter().copied(), "csrf"), Some("tok"));
        assert_eq!(cookie(headers.iter().copied(), "SID"), None);
        assert_eq!(cookie(headers.iter().copied(), "missing"), None);
        assert_eq!(cookie(std::iter::empty(), "sid"), None);
        assert_eq!(cookie(["sid=; sid=2"].into_iter(), "sid"), Some(""));
    }

    #[test]
    fn unique_cookies_refuse_a_second_occurrence() {
        let unique =
            |headers: &[&'static str], name: &str| unique_cookie(headers.iter().copied(), name);
        assert_eq!(unique(&["a=1; csrf=t"], "csrf"), Ok(Some("t")));
        assert_eq!(unique(&["a=1", "csrf=\"t\""], "csrf"), Ok(Some("t")));
        assert_eq!(unique(&["a=1"], "csrf"), Ok(None));
        assert_eq!(unique(&[], "csrf"), Ok(None));
        assert_eq!(unique(&["csrf=tossed; csrf=real"], "csrf"), Err(Ambiguous));
        assert_eq!(
            unique(&["csrf=tossed", "csrf=real"], "csrf"),
            Err(Ambiguous)
        );
        assert_eq!(unique(&["csrf=; csrf=real"], "csrf"), Err(Ambiguous));
        // Other names may repeat; names are case-sensitive.
        assert_eq!(unique(&["a=1; a=2; csrf=t; CSRF=u"], "csrf"), Ok(Some("t")));
        // A second occurrence cannot hide past the pairs a header is read for.
        let mut padded = "csrf=tossed;".to_owned();
        padded.push_str(&"x=1;".repeat(MAX_PAIRS_PER_HEADER));
        padded.push_str("csrf=real");
        assert_eq!(
            unique_cookie([padded.as_str()].into_iter(), "csrf"),
            Err(Ambiguous)
        );
    }

    #[test]
    fn bounded_work() {
        let mut header = "x=1;".repeat(MAX_PAIRS_PER_HEADER);
        header.push_str("late=1");
        assert_eq!(parse_cookies(&header).count(), MAX_PAIRS_PER_HEADER);
        assert_eq!(cookie([header.as_str()].into_iter(), "late"), None);
    }

    #[test]
    fn raw_entries_for_payload_v2() {
        let got: Vec<_> = raw_entries(" a=1 ;b=\"2\";; novalue ").collect();
        assert_eq!(got, ["a=1", "b=\"2\"", "novalue"]);
    }
}
