//! Double-submit CSRF check run before a request authorizer's webhook (seed 001's pattern): the
//! site sets a readable `CSRF-TOKEN` cookie next to its http-only session cookie, and the page
//! echoes the cookie's value in a query parameter (WebSocket: browsers cannot set headers) or a
//! header. A cross-site page can make the browser send the cookie but cannot read it, so it
//! cannot echo it.
//!
//! The two values are compared in constant time over their SHA-256 digests, so neither the
//! content nor the length of the expected token leaks through timing. A CSRF cookie sent more
//! than once is refused: a sibling subdomain can add a cookie of the same name, with a value it
//! knows, that the browser sends first ("cookie tossing").

use portcullis_config::Csrf;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::identity::RequestParts;

/// Why a request failed the double-submit check (all map to 403).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum CsrfError {
    /// The CSRF cookie is absent or empty.
    #[error("CSRF cookie missing")]
    MissingCookie,
    /// The CSRF cookie was sent more than once (one of them set by another site).
    #[error("CSRF cookie sent more than once")]
    DuplicateCookie,
    /// The echoed copy (query parameter or header) is absent or empty, or none is configured.
    #[error("CSRF token missing from the request")]
    MissingToken,
    /// Both present but different.
    #[error("CSRF token does not match its cookie")]
    Mismatch,
}

/// Checks that cookie `csrf.cookie` is present once, non-empty and equal to the query
/// parameter `csrf.query` (or, when no query parameter is configured, the header
/// `csrf.header`).
pub fn check(csrf: &Csrf, req: &RequestParts<'_>) -> Result<(), CsrfError> {
    let expected = req
        .unique_cookie(&csrf.cookie)
        .map_err(|_| CsrfError::DuplicateCookie)?
        .filter(|v| !v.is_empty())
        .ok_or(CsrfError::MissingCookie)?;
    let submitted = match (&csrf.query, &csrf.header) {
        (Some(q), _) => req.query_param(q).map(std::borrow::Cow::Borrowed),
        (None, Some(h)) => req.header(h),
        (None, None) => None,
    };
    let submitted = submitted
        .filter(|v| !v.is_empty())
        .ok_or(CsrfError::MissingToken)?;
    if tokens_equal(expected.as_bytes(), submitted.as_bytes()) {
        Ok(())
    } else {
        Err(CsrfError::Mismatch)
    }
}

/// Constant-time equality (over digests, so lengths do not leak either).
fn tokens_equal(a: &[u8], b: &[u8]) -> bool {
    let (da, db) = (Sha256::digest(a), Sha256::digest(b));
    bool::from(da.as_slice().ct_eq(db.as_slice()))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn csrf_query() -> Csrf {
        Csrf {
            cookie: "CSRF-TOKEN".into(),
            query: Some("csrf".into()),
            header: None,
        }
    }

    fn csrf_header() -> Csrf {
        Csrf {
            cookie: "CSRF-TOKEN".into(),
            query: None,
            header: Some("X-CSRF-Token".into()),
        }
    }

    fn q(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn query_table() {
        type Case = (
            Vec<(&'static str, &'static str)>,
            Vec<(&'static str, &'static str)>,
            Result<(), CsrfError>,
        );
        let cases: Vec<Case> = vec![
            (
                vec![("Cookie", "JWT=x; CSRF-TOKEN=t0k")],
                vec![("csrf", "t0k")],
                Ok(()),
            ),
            // Quoted cookie value is unquoted before comparing.
            (
                vec![("Cookie", "CSRF-TOKEN=\"t0k\"")],
                vec![("csrf", "t0k")],
                Ok(()),
            ),
            (
                vec![("Cookie", "CSRF-TOKEN=t0k")],
                vec![("csrf", "t0K")],
                Err(CsrfError::Mismatch),
            ),
            (
                vec![("Cookie", "CSRF-TOKEN=t0k")],
                vec![("csrf", "t0k2")],
                Err(CsrfError::Mismatch),
            ),
            (
                vec![("Cookie", "CSRF-TOKEN=t0k")],
                vec![("csrf", "evil"), ("csrf", "t0k")],
                Ok(()),
            ),
            (
                vec![("Cookie", "JWT=x")],
                vec![("csrf", "t0k")],
                Err(CsrfError::MissingCookie),
            ),
            (vec![], vec![("csrf", "t0k")], Err(CsrfError::MissingCookie)),
            (
                vec![("Cookie", "CSRF-TOKEN=")],
                vec![("csrf", "")],
                Err(CsrfError::MissingCookie),
            ),
            (
                vec![("Cookie", "csrf-token=t0k")],
                vec![("csrf", "t0k")],
                Err(CsrfError::MissingCookie),
            ),
            (
                vec![("Cookie", "CSRF-TOKEN=t0k")],
                vec![],
                Err(CsrfError::MissingToken),
            ),
            (
                vec![("Cookie", "CSRF-TOKEN=t0k")],
                vec![("csrf", "")],
                Err(CsrfError::MissingToken),
            ),
            // A second CSRF cookie (tossed by a sibling subdomain) is refused, whichever matches.
            (
                vec![("Cookie", "CSRF-TOKEN=tossed; CSRF-TOKEN=t0k")],
                vec![("csrf", "tossed")],
                Err(CsrfError::DuplicateCookie),
            ),
            (
                vec![("Cookie", "CSRF-TOKEN=t0k"), ("cookie", "CSRF-TOKEN=t0k")],
                vec![("csrf", "t0k")],
                Err(CsrfError::DuplicateCookie),
            ),
            // Query names are case-sensitive; a header does not count when a query is configured.
            (
                vec![("Cookie", "CSRF-TOKEN=t0k"), ("csrf", "t0k")],
                vec![("CSRF", "t0k")],
                Err(CsrfError::MissingToken),
            ),
        ];
        for (i, (headers, query, want)) in cases.into_iter().enumerate() {
            let query = q(&query);
            let req = RequestParts {
                headers: &headers,
                query: &query,
            };
            assert_eq!(check(&csrf_query(), &req), want, "case {i}");
        }
    }

    #[test]
    fn header_variant() {
        let headers = [("cookie", "CSRF-TOKEN=abc"), ("x-csrf-token", "abc")];
        let req = RequestParts {
            headers: &headers,
            query: &[],
        };
        assert_eq!(check(&csrf_header(), &req), Ok(()));
        let headers = [("cookie", "CSRF-TOKEN=abc"), ("X-CSRF-Token", "abd")];
        let req = RequestParts {
            headers: &headers,
            query: &[],
        };
        assert_eq!(check(&csrf_header(), &req), Err(CsrfError::Mismatch));
        let query = q(&[("X-CSRF-Token", "abc")]);
        let headers = [("cookie", "CSRF-TOKEN=abc")];
        let req = RequestParts {
            headers: &headers,
            query: &query,
        };
        assert_eq!(check(&csrf_header(), &req), Err(CsrfError::MissingToken));
        let neither = Csrf {
            cookie: "CSRF-TOKEN".into(),
            query: None,
            header: None,
        };
        assert_eq!(check(&neither, &req), Err(CsrfError::MissingToken));
    }

    #[test]
    fn constant_time_compare_is_used() {
        assert!(tokens_equal(b"abc", b"abc"));
        assert!(!tokens_equal(b"abc", b"abd"));
        assert!(!tokens_equal(b"abc", b"abcd"));
        assert!(!tokens_equal(b"", b"a"));
        // Guard against a refactor back to `==`: `check` must go through `tokens_equal`, which
        // must use `subtle`.
        let src = include_str!("csrf.rs");
        let check_body = src
            .split("pub fn check(")
            .nth(1)
            .and_then(|s| s.split("\n}\n").next())
            .unwrap();
        assert!(check_body.contains("tokens_equal("));
        assert!(!check_body.contains("expected == submitted"));
        let eq_body = src
            .split("fn tokens_equal(")
            .nth(1)
            .and_then(|s| s.split("\n}\n").next())
            .unwrap();
        assert!(eq_body.contains(".ct_eq("));
    }
}
