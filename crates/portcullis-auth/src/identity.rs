//! Identity sources: where in a request an authorizer finds its credentials
//! (`route.request.header.Authorization`, `$request.querystring.token`,
//! `route.request.cookie.id_token`, …) and how their values are read (reference §4.2).
//!
//! * Header names are case-insensitive; several headers of one name are joined with `", "`.
//! * Query-string names are case-sensitive; the last value of a name wins.
//! * `cookie.NAME` is one named cookie from all `Cookie` headers (first match wins).
//! * A header source naming `Sec-WebSocket-Protocol` yields the JWT-shaped entry of the offered
//!   protocol list (browsers smuggle the token there), not the whole header.
//! * Empty values count as missing.

use std::borrow::Cow;
use std::fmt;
use std::str::FromStr;

use portcullis_core::subprotocol;

use crate::cookie;

/// The header browsers can put a token into on a WebSocket upgrade.
const SEC_WEBSOCKET_PROTOCOL: &str = "sec-websocket-protocol";

/// One configured identity source.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum IdentitySource {
    /// A request header (name as configured; matched case-insensitively).
    Header(String),
    /// A query-string parameter (case-sensitive).
    Query(String),
    /// One named cookie of the `Cookie` header(s).
    Cookie(String),
}

/// A string that is not an identity source this gateway understands.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "invalid identity source {0:?}: expected route.request.{{header,querystring,cookie}}.NAME \
     or $request.{{header,querystring,cookie}}.NAME"
)]
pub struct IdentitySourceError(pub String);

impl IdentitySource {
    /// Parses `route.request.header.X`, `route.request.querystring.X`, `route.request.cookie.X`
    /// and the `$request.` forms of the same.
    pub fn parse(s: &str) -> Result<IdentitySource, IdentitySourceError> {
        let err = || IdentitySourceError(s.to_owned());
        let rest = s
            .strip_prefix("route.request.")
            .or_else(|| s.strip_prefix("$request."))
            .ok_or_else(err)?;
        let (kind, name) = rest.split_once('.').ok_or_else(err)?;
        if name.is_empty() || name.contains(char::is_whitespace) {
            return Err(err());
        }
        let name = name.to_owned();
        match kind {
            "header" => Ok(IdentitySource::Header(name)),
            "querystring" => Ok(IdentitySource::Query(name)),
            "cookie" => Ok(IdentitySource::Cookie(name)),
            _ => Err(err()),
        }
    }

    /// The source's value in `req`, or `None` when it is absent or empty.
    pub fn extract(&self, req: &RequestParts<'_>) -> Option<String> {
        let value = match self {
            IdentitySource::Header(name) if name.eq_ignore_ascii_case(SEC_WEBSOCKET_PROTOCOL) => {
                let offered: Vec<&str> = req.header_values(name).collect();
                return subprotocol::negotiate(&offered, &[]).token;
            }
            IdentitySource::Header(name) => req.header(name)?,
            IdentitySource::Query(name) => Cow::Borrowed(req.query_param(name)?),
            IdentitySource::Cookie(name) => Cow::Borrowed(req.cookie(name)?),
        };
        (!value.is_empty()).then(|| value.into_owned())
    }
}

impl FromStr for IdentitySource {
    type Err = IdentitySourceError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        IdentitySource::parse(s)
    }
}

impl fmt::Display for IdentitySource {
    /// The `route.request.` form.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            IdentitySource::Header(n) => write!(f, "route.request.header.{n}"),
            IdentitySource::Query(n) => write!(f, "route.request.querystring.{n}"),
            IdentitySource::Cookie(n) => write!(f, "route.request.cookie.{n}"),
        }
    }
}

/// The value of the first source that is present (JWT authorizers: "first source present wins").
pub fn first_present(sources: &[IdentitySource], req: &RequestParts<'_>) -> Option<String> {
    sources.iter().find_map(|s| s.extract(req))
}

/// The values of all sources in order, or `None` if any is missing (request authorizers: AWS
/// answers 401 without calling the authorizer).
pub fn all_present(sources: &[IdentitySource], req: &RequestParts<'_>) -> Option<Vec<String>> {
    sources.iter().map(|s| s.extract(req)).collect()
}

/// `value` without a case-insensitive `Bearer ` prefix (and the blanks after it).
pub fn bearer(value: &str) -> &str {
    const PREFIX: &str = "bearer ";
    match value.get(..PREFIX.len()) {
        Some(p) if p.eq_ignore_ascii_case(PREFIX) => value
            .get(PREFIX.len()..)
            .map_or("", |rest| rest.trim_start()),
        _ => value,
    }
}

/// A borrowed view of the request parts identity sources read.
#[derive(Debug, Clone, Copy, Default)]
pub struct RequestParts<'a> {
    /// Headers in arrival order, names as received (any case).
    pub headers: &'a [(&'a str, &'a str)],
    /// Query-string pairs, percent-decoded, in arrival order.
    pub query: &'a [(String, String)],
}

impl<'a> RequestParts<'a> {
    /// All values of header `name` (case-insensitive), in arrival order.
    pub fn header_values<'n>(&self, name: &'n str) -> impl Iterator<Item = &'a str> + use<'a, 'n> {
        self.headers
            .iter()
            .filter(move |(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| *v)
    }

    /// Header `name`, several occurrences joined with `", "`; `None` when absent.
    pub fn header(&self, name: &str) -> Option<Cow<'a, str>> {
        let mut values = self.header_values(name);
        let first = values.next()?;
        match values.next() {
            None => Some(Cow::Borrowed(first)),
            Some(second) => {
                let mut joined = format!("{first}, {second}");
                for v in values {
                    joined.push_str(", ");
                    joined.push_str(v);
                }
                Some(Cow::Owned(joined))
            }
        }
    }

    /// The last value of query parameter `name` (case-sensitive).
    pub fn query_param(&self, name: &str) -> Option<&'a str> {
        self.query
            .iter()
            .rev()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// Cookie `name` from all `Cookie` headers.
    pub fn cookie(&self, name: &str) -> Option<&'a str> {
        cookie::cookie(self.header_values("cookie"), name)
    }

    /// Cookie `name` from all `Cookie` headers, refused when it is sent more than once.
    pub fn unique_cookie(&self, name: &str) -> Result<Option<&'a str>, cookie::Ambiguous> {
        cookie::unique_cookie(self.header_values("cookie"), name)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const JWT: &str = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ1MSJ9.c2lnbmF0dXJl";

    #[test]
    fn parse_table() {
        use IdentitySource::*;
        let ok = [
            (
                "route.request.header.Authorization",
                Header("Authorization".into()),
            ),
            (
                "route.request.querystring.access_token",
                Query("access_token".into()),
            ),
            ("route.request.cookie.id_token", Cookie("id_token".into())),
            ("$request.header.X-Token", Header("X-Token".into())),
            ("$request.querystring.t", Query("t".into())),
            ("$request.cookie.session", Cookie("session".into())),
            ("route.request.header.a.b", Header("a.b".into())),
        ];
        for (s, want) in ok {
            assert_eq!(IdentitySource::parse(s).unwrap(), want, "{s}");
            assert_eq!(s.parse::<IdentitySource>().unwrap(), want, "{s}");
        }
        for bad in [
            "",
            "header.Authorization",
            "route.request.header.",
            "$request.header.",
            "route.request.body.x",
            "$request.header.a b",
            "method.request.header.Authorization",
            "$context.routeKey",
            "$stageVariables.x",
            "route.request.header",
            "$request.Header.x",
        ] {
            assert!(IdentitySource::parse(bad).is_err(), "{bad:?}");
        }
        assert_eq!(
            Header("Cookie".into()).to_string(),
            "route.request.header.Cookie"
        );
    }

    fn src(s: &str) -> IdentitySource {
        IdentitySource::parse(s).unwrap()
    }

    #[test]
    fn extract_table() {
        let jwt_protocols = format!("chat.v1, {JWT}");
        let headers: Vec<(&str, &str)> = vec![
            ("Authorization", "Bearer abc.def.ghi"),
            ("X-Multi", "a"),
            ("x-multi", "b"),
            ("X-Empty", ""),
            ("Cookie", "theme=dark; id_token=tok1"),
            ("cookie", "id_token=tok2; csrf=c1; blank="),
            ("Sec-WebSocket-Protocol", &jwt_protocols),
        ];
        let query = vec![
            ("token".to_owned(), "q1".to_owned()),
            ("token".to_owned(), "q2".to_owned()),
            ("Token".to_owned(), "upper".to_owned()),
            ("empty".to_owned(), String::new()),
        ];
        let req = RequestParts {
            headers: &headers,
            query: &query,
        };
        let cases: Vec<(&str, Option<&str>)> = vec![
            (
                "route.request.header.Authorization",
                Some("Bearer abc.def.ghi"),
            ),
            ("$request.header.authorization", Some("Bearer abc.def.ghi")),
            ("$request.header.AUTHORIZATION", Some("Bearer abc.def.ghi")),
            ("route.request.header.X-MULTI", Some("a, b")),
            ("route.request.header.X-Empty", None),
            ("route.request.header.Missing", None),
            (
                "route.request.header.Cookie",
                Some("theme=dark; id_token=tok1, id_token=tok2; csrf=c1; blank="),
            ),
            ("route.request.querystring.token", Some("q2")),
            ("route.request.querystring.Token", Some("upper")),
            ("route.request.querystring.TOKEN", None),
            ("route.request.querystring.empty", None),
            ("$request.querystring.missing", None),
            ("route.request.cookie.id_token", Some("tok1")),
            ("$request.cookie.csrf", Some("c1")),
            ("$request.cookie.blank", None),
            ("$request.cookie.ID_TOKEN", None),
            ("route.request.header.Sec-WebSocket-Protocol", Some(JWT)),
            ("route.request.header.sec-websocket-protocol", Some(JWT)),
        ];
        for (s, want) in cases {
            assert_eq!(src(s).extract(&req).as_deref(), want, "{s}");
        }
    }

    #[test]
    fn sec_websocket_protocol_without_jwt_is_missing() {
        let headers = [("Sec-WebSocket-Protocol", "chat.v1, json")];
        let req = RequestParts {
            headers: &headers,
            query: &[],
        };
        let s = src("route.request.header.Sec-WebSocket-Protocol");
        assert_eq!(s.extract(&req), None);
        // Entries spread over several headers.
        let headers = [
            ("Sec-WebSocket-Protocol", "chat.v1"),
            ("sec-websocket-protocol", JWT),
        ];
        let req = RequestParts {
            headers: &headers,
            query: &[],
        };
        assert_eq!(s.extract(&req).as_deref(), Some(JWT));
    }

    #[test]
    fn first_and_all() {
        let headers = [("Authorization", "h")];
        let query = vec![("t".to_owned(), "q".to_owned())];
        let req = RequestParts {
            headers: &headers,
            query: &query,
        };
        let sources = [
            src("route.request.querystring.missing"),
            src("route.request.header.Authorization"),
            src("route.request.querystring.t"),
        ];
        assert_eq!(first_present(&sources, &req).as_deref(), Some("h"));
        assert_eq!(all_present(&sources, &req), None);
        assert_eq!(
            all_present(&sources[1..], &req),
            Some(vec!["h".to_owned(), "q".to_owned()])
        );
        assert_eq!(all_present(&[], &req), Some(vec![]));
        assert_eq!(first_present(&[], &req), None);
    }

    #[test]
    fn bearer_prefix() {
        let cases = [
            ("Bearer abc", "abc"),
            ("bearer abc", "abc"),
            ("BEARER abc", "abc"),
            ("Bearer   abc", "abc"),
            ("Bearer ", ""),
            ("Bearer", "Bearer"),
            ("Bearerabc", "Bearerabc"),
            ("abc", "abc"),
            ("", ""),
            ("Basic abc", "Basic abc"),
            ("Béarer x", "Béarer x"),
            ("é", "é"),
        ];
        for (input, want) in cases {
            assert_eq!(bearer(input), want, "{input:?}");
        }
    }
}
