//! HTTP API route keys (`GET /pets/{id}`, `ANY /{proxy+}`, `$default`) and the route table that
//! picks the route for a request, with API Gateway's priority rules.
//!
//! # Priority
//!
//! Among the routes whose method and path match a request, the most specific *path* wins:
//! paths are compared segment by segment from the left, and at the first difference a literal
//! beats `{param}`, which beats `{greedy+}` (so `GET /pets/dog/1` beats `GET /pets/dog/{id}`, which
//! beats `GET /pets/{proxy+}`). Between two routes with the same path pattern, the route naming the
//! request's method beats `ANY`. `$default` is used only when nothing else matches.
//!
//! AWS documents `ANY` as covering "all methods that you haven't defined for a resource", so `ANY`
//! loses to an exact method on the *same* resource only: with `GET /{proxy+}` and `ANY /admin`,
//! `GET /admin` selects `ANY /admin` (a full match beats a greedy one). This matters for security
//! when the two routes have different authorizers.
//!
//! Methods are compared exactly and case-sensitively (HTTP methods are case-sensitive); `HEAD`
//! does not fall back to `GET` routes (AWS behaviour). Unknown methods (`TRACE`, `PROPFIND`) match
//! only `ANY` routes and `$default`.
//!
//! # Paths
//!
//! The path given to [`RouteTable::find`] is the request path (anything from a `?` on is ignored).
//! It is split on `/` and every segment is percent-decoded once (`+` stays `+`); literal segments
//! of route keys are decoded the same way, so `/%61dmin` matches `GET /admin` — a backend that
//! decodes paths must not see a different resource than the one the route (and its authorizer)
//! was chosen for.
//!
//! A path is rejected outright (no route, not even `$default`: the caller answers 404) when a
//! segment
//!
//! * decodes to bytes that are not UTF-8 (decoding lossily would let two different paths map to
//!   the same parameter value);
//! * decodes to something containing `/` or NUL (`%2F`, `%00`): parameters are whole segments, and
//!   a value like `..%2F..%2Fetc` must not reach a backend that joins it into a file path;
//! * is `.` or `..` (literally or encoded): clients normalise dot segments before sending, so these
//!   only come from path-traversal attempts.
//!
//! Other rules:
//!
//! * `{param}` matches exactly one non-empty segment, so `/pets//x` does not match `/pets/{id}/x`.
//! * `{greedy+}` matches one or more segments, the first of which must be non-empty; its value is
//!   the decoded segments joined with `/` (so `/files/a/b%20c/` gives `a/b c/`). `ANY /{proxy+}`
//!   therefore does not match `/`; use `$default` or a `/` route for that.
//! * A trailing slash is significant: `/pets/` does not match `GET /pets` (it would be a `{param}`
//!   with an empty value). AWS's behaviour here is unconfirmed.
//! * Literals compare case-sensitively after decoding.
//!
//! Matching allocates only the decoded segments that contained `%` and the parameter values; the
//! routes are pre-sorted per method so the first route that matches is the answer.

use std::borrow::Cow;
use std::cmp::Ordering;
use std::fmt;

use percent_encoding::percent_decode_str;

/// The method part of a route key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Method {
    Get,
    Post,
    Put,
    Patch,
    Delete,
    Head,
    Options,
    /// Every method that has no route of its own on the same path pattern.
    Any,
}

/// The concrete methods, in the order of their per-method route lists.
const CONCRETE: [Method; 7] = [
    Method::Get,
    Method::Post,
    Method::Put,
    Method::Patch,
    Method::Delete,
    Method::Head,
    Method::Options,
];

/// Index of the list used for methods that no route key can name.
const OTHER: usize = CONCRETE.len();

impl Method {
    /// Parses a route-key method (upper case, as API Gateway spells them; `ANY` included).
    pub fn parse(s: &str) -> Option<Method> {
        Some(match s {
            "GET" => Method::Get,
            "POST" => Method::Post,
            "PUT" => Method::Put,
            "PATCH" => Method::Patch,
            "DELETE" => Method::Delete,
            "HEAD" => Method::Head,
            "OPTIONS" => Method::Options,
            "ANY" => Method::Any,
            _ => return None,
        })
    }

    /// The upper-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Get => "GET",
            Method::Post => "POST",
            Method::Put => "PUT",
            Method::Patch => "PATCH",
            Method::Delete => "DELETE",
            Method::Head => "HEAD",
            Method::Options => "OPTIONS",
            Method::Any => "ANY",
        }
    }

    /// The per-method list a request method uses (`ANY` is never a request method).
    fn list_index(request_method: &str) -> usize {
        match Method::parse(request_method) {
            Some(m) => CONCRETE.iter().position(|c| *c == m).unwrap_or(OTHER),
            None => OTHER,
        }
    }
}

impl fmt::Display for Method {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One segment of a route key's path.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Segment {
    /// Matched against the percent-decoded request segment (stored decoded).
    Literal(String),
    /// `{name}`: one non-empty segment.
    Param(String),
    /// `{name+}`: the rest of the path (last segment only).
    Greedy(String),
}

impl Segment {
    /// Specificity rank: literal > param > greedy.
    fn rank(&self) -> u8 {
        match self {
            Segment::Literal(_) => 2,
            Segment::Param(_) => 1,
            Segment::Greedy(_) => 0,
        }
    }
}

/// A parsed HTTP API route key.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum RouteKey {
    /// `METHOD /path`; `segments` is empty for `/`.
    Route {
        method: Method,
        segments: Vec<Segment>,
    },
    /// `$default`.
    Default,
}

/// Why a route table could not be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RouteError {
    /// The key is not `$default` or `METHOD /path`.
    #[error("invalid route key {key:?}: {reason}")]
    InvalidKey { key: String, reason: &'static str },
    /// Two keys match exactly the same requests (`GET /a/{x}` and `GET /a/{y}`).
    #[error("route key {key:?} duplicates {other:?}")]
    Duplicate { key: String, other: String },
}

impl RouteKey {
    /// Parses `$default` or `METHOD /path/{param}/{greedy+}` with the same rules as the
    /// configuration loader.
    pub fn parse(key: &str) -> Result<RouteKey, RouteError> {
        let invalid = |reason| RouteError::InvalidKey {
            key: key.to_owned(),
            reason,
        };
        if key == "$default" {
            return Ok(RouteKey::Default);
        }
        let (method, path) = key
            .split_once(' ')
            .ok_or(invalid("expected \"$default\" or \"METHOD /path\""))?;
        let method = Method::parse(method).ok_or(invalid("unknown method"))?;
        let rest = path
            .strip_prefix('/')
            .ok_or(invalid("the path must start with \"/\""))?;
        let mut segments = Vec::new();
        if rest.is_empty() {
            return Ok(RouteKey::Route { method, segments });
        }
        let count = rest.split('/').count();
        for (i, raw) in rest.split('/').enumerate() {
            if raw.is_empty() {
                return Err(invalid("empty path segment"));
            }
            let segment = if let Some(inner) = raw.strip_prefix('{') {
                let inner = inner.strip_suffix('}').ok_or(invalid(
                    "a parameter must be a whole {name} or {name+} segment",
                ))?;
                let (name, greedy) = match inner.strip_suffix('+') {
                    Some(name) => (name, true),
                    None => (inner, false),
                };
                if name.is_empty()
                    || !name
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
                {
                    return Err(invalid("bad parameter name"));
                }
                if greedy && i + 1 != count {
                    return Err(invalid("a greedy parameter must be the last segment"));
                }
                let taken = segments.iter().any(|s| match s {
                    Segment::Param(n) | Segment::Greedy(n) => n == name,
                    Segment::Literal(_) => false,
                });
                if taken {
                    return Err(invalid("a parameter name appears twice"));
                }
                if greedy {
                    Segment::Greedy(name.to_owned())
                } else {
                    Segment::Param(name.to_owned())
                }
            } else if raw
                .contains(|c: char| matches!(c, '{' | '}' | '?' | '#') || c.is_whitespace())
            {
                return Err(invalid(
                    "a literal segment may not contain braces, '?', '#' or spaces",
                ));
            } else {
                // An undecodable literal is kept raw: it can never match (such request paths are
                // rejected), which is what the configuration loader's acceptance implies.
                let decoded = percent_decode_str(raw)
                    .decode_utf8()
                    .map_or_else(|_| raw.to_owned(), Cow::into_owned);
                Segment::Literal(decoded)
            };
            segments.push(segment);
        }
        Ok(RouteKey::Route { method, segments })
    }
}

impl fmt::Display for RouteKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RouteKey::Default => f.write_str("$default"),
            RouteKey::Route { method, segments } => {
                write!(f, "{method} ")?;
                if segments.is_empty() {
                    return f.write_str("/");
                }
                for s in segments {
                    match s {
                        Segment::Literal(l) => write!(f, "/{l}")?,
                        Segment::Param(n) => write!(f, "/{{{n}}}")?,
                        Segment::Greedy(n) => write!(f, "/{{{n}+}}")?,
                    }
                }
                Ok(())
            }
        }
    }
}

/// A route chosen for a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Match<'a, T> {
    pub value: &'a T,
    /// The key exactly as given to [`RouteTable::new`] (what `routeKey` in events carries).
    pub route_key: &'a str,
    /// Decoded parameter values in route order (empty for `$default` and literal routes).
    pub path_parameters: Vec<(String, String)>,
}

#[derive(Debug, Clone)]
struct Route<T> {
    key: String,
    method: Method,
    segments: Vec<Segment>,
    value: T,
}

impl<T> Route<T> {
    fn has_greedy(&self) -> bool {
        matches!(self.segments.last(), Some(Segment::Greedy(_)))
    }

    /// Path parameters when the route matches the decoded request segments.
    fn matches(&self, segs: &[Cow<'_, str>]) -> Option<Vec<(String, String)>> {
        let n = self.segments.len();
        if self.has_greedy() {
            if segs.len() < n {
                return None;
            }
        } else if segs.len() != n {
            return None;
        }
        let mut params = Vec::new();
        for (i, (pattern, seg)) in self.segments.iter().zip(segs).enumerate() {
            match pattern {
                Segment::Literal(lit) => {
                    if lit != seg {
                        return None;
                    }
                }
                Segment::Param(name) => {
                    if seg.is_empty() {
                        return None;
                    }
                    params.push((name.clone(), seg.as_ref().to_owned()));
                }
                Segment::Greedy(name) => {
                    if seg.is_empty() {
                        return None;
                    }
                    let tail = segs.get(i..).unwrap_or_default();
                    params.push((name.clone(), tail.join("/")));
                }
            }
        }
        Some(params)
    }
}

/// Routes of one HTTP API, ready for matching.
#[derive(Debug, Clone)]
pub struct RouteTable<T> {
    routes: Vec<Route<T>>,
    /// Per concrete method (then one list for other methods): indices into `routes` of the
    /// routes that can serve it, most specific first.
    by_method: [Vec<usize>; OTHER + 1],
    default: Option<(String, T)>,
}

fn cmp_specificity<T>(a: &Route<T>, b: &Route<T>) -> Ordering {
    // Descending by segment rank; among equal prefixes the longer first (two such routes never
    // match the same path, so this only makes the order total); then exact method before ANY.
    for (x, y) in a.segments.iter().zip(&b.segments) {
        match y.rank().cmp(&x.rank()) {
            Ordering::Equal => {}
            other => return other,
        }
    }
    b.segments
        .len()
        .cmp(&a.segments.len())
        .then_with(|| (a.method == Method::Any).cmp(&(b.method == Method::Any)))
}

/// Whether two parsed routes match exactly the same requests.
fn same_pattern<T>(a: &Route<T>, b: &Route<T>) -> bool {
    a.method == b.method
        && a.segments.len() == b.segments.len()
        && a.segments
            .iter()
            .zip(&b.segments)
            .all(|(x, y)| match (x, y) {
                (Segment::Literal(l), Segment::Literal(r)) => l == r,
                (Segment::Param(_), Segment::Param(_))
                | (Segment::Greedy(_), Segment::Greedy(_)) => true,
                _ => false,
            })
}

/// An empty table: every request falls through to `None`.
impl<T> Default for RouteTable<T> {
    fn default() -> Self {
        RouteTable {
            routes: Vec::new(),
            by_method: Default::default(),
            default: None,
        }
    }
}

impl<T> RouteTable<T> {
    /// Builds the table from `(route key, value)` pairs. Fails on the first invalid key or on
    /// two keys that match the same requests (including two `$default`s).
    pub fn new<I, S>(routes: I) -> Result<Self, RouteError>
    where
        I: IntoIterator<Item = (S, T)>,
        S: Into<String>,
    {
        let mut table = RouteTable {
            routes: Vec::new(),
            by_method: Default::default(),
            default: None,
        };
        for (key, value) in routes {
            let key: String = key.into();
            match RouteKey::parse(&key)? {
                RouteKey::Default => {
                    if let Some((other, _)) = &table.default {
                        return Err(RouteError::Duplicate {
                            other: other.clone(),
                            key,
                        });
                    }
                    table.default = Some((key, value));
                }
                RouteKey::Route { method, segments } => {
                    let route = Route {
                        key,
                        method,
                        segments,
                        value,
                    };
                    if let Some(other) = table.routes.iter().find(|r| same_pattern(r, &route)) {
                        return Err(RouteError::Duplicate {
                            other: other.key.clone(),
                            key: route.key,
                        });
                    }
                    table.routes.push(route);
                }
            }
        }
        let mut order: Vec<usize> = (0..table.routes.len()).collect();
        // Stable, so equal routes keep their configuration order (cannot happen after the
        // duplicate check, but keeps the result deterministic regardless).
        order.sort_by(|&a, &b| match (table.routes.get(a), table.routes.get(b)) {
            (Some(x), Some(y)) => cmp_specificity(x, y),
            _ => Ordering::Equal,
        });
        for (list, slot) in table.by_method.iter_mut().enumerate() {
            let wanted = CONCRETE.get(list).copied();
            slot.extend(order.iter().copied().filter(|&i| {
                table
                    .routes
                    .get(i)
                    .is_some_and(|r| r.method == Method::Any || Some(r.method) == wanted)
            }));
        }
        Ok(table)
    }

    /// The same table (keys, order, priorities) with every value replaced by `f(key, value)`;
    /// stops at the first error. Turns a compiled table of configured routes into runtime
    /// routes without parsing or checking the keys again.
    pub fn try_map<U, E>(
        &self,
        mut f: impl FnMut(&str, &T) -> Result<U, E>,
    ) -> Result<RouteTable<U>, E> {
        let mut routes = Vec::with_capacity(self.routes.len());
        for r in &self.routes {
            routes.push(Route {
                key: r.key.clone(),
                method: r.method,
                segments: r.segments.clone(),
                value: f(&r.key, &r.value)?,
            });
        }
        let default = match &self.default {
            Some((key, value)) => Some((key.clone(), f(key, value)?)),
            None => None,
        };
        Ok(RouteTable {
            routes,
            by_method: self.by_method.clone(),
            default,
        })
    }

    /// Number of routes, `$default` included.
    pub fn len(&self) -> usize {
        self.routes.len() + usize::from(self.default.is_some())
    }

    /// True when the table has no routes at all.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// All `(route key, value)` pairs in configuration order, `$default` last.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &T)> {
        self.routes
            .iter()
            .map(|r| (r.key.as_str(), &r.value))
            .chain(self.default.iter().map(|(k, v)| (k.as_str(), v)))
    }

    /// The route for a request, or `None` (the caller answers `404 {"message":"Not Found"}`).
    /// See the module documentation for the rules.
    pub fn find(&self, method: &str, path: &str) -> Option<Match<'_, T>> {
        let segs = decode_path(path)?;
        let list = self.by_method.get(Method::list_index(method))?;
        for &i in list {
            let Some(route) = self.routes.get(i) else {
                continue;
            };
            if let Some(path_parameters) = route.matches(&segs) {
                return Some(Match {
                    value: &route.value,
                    route_key: &route.key,
                    path_parameters,
                });
            }
        }
        self.default.as_ref().map(|(key, value)| Match {
            value,
            route_key: key,
            path_parameters: Vec::new(),
        })
    }
}

/// Splits and decodes a request path; `None` when it must be rejected (module docs).
fn decode_path(path: &str) -> Option<Vec<Cow<'_, str>>> {
    let path = path.split_once('?').map_or(path, |(p, _)| p);
    let rest = path.strip_prefix('/')?;
    if rest.is_empty() {
        return Some(Vec::new());
    }
    rest.split('/')
        .map(|raw| {
            let seg = percent_decode_str(raw).decode_utf8().ok()?;
            if seg == "." || seg == ".." || seg.contains(['/', '\0']) {
                return None;
            }
            Some(seg)
        })
        .collect()
}

/// Removes an API's `base_path` from a request path: `""` (or `"/"`) keeps the path as it is;
/// `"/api"` turns `/api` into `/` and `/api/x` into `/x`, and does not match `/apix` (`None`).
/// The comparison is exact (case-sensitive, no decoding); a trailing `/` on `base` is ignored.
pub fn strip_base_path<'a>(base: &str, path: &'a str) -> Option<&'a str> {
    let base = base.trim_end_matches('/');
    if base.is_empty() {
        return Some(path);
    }
    let rest = path.strip_prefix(base)?;
    match rest.as_bytes().first() {
        // `/api` itself; `/api?x=1` if a caller passed the query along (the query is dropped).
        None | Some(b'?') => Some("/"),
        Some(b'/') => Some(rest),
        Some(_) => None,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn table(keys: &[&'static str]) -> RouteTable<&'static str> {
        RouteTable::new(keys.iter().map(|k| (*k, *k))).unwrap()
    }

    fn found(t: &RouteTable<&'static str>, method: &str, path: &str) -> Option<&'static str> {
        t.find(method, path).map(|m| *m.value)
    }

    #[test]
    fn parse_keys() {
        assert_eq!(RouteKey::parse("$default").unwrap(), RouteKey::Default);
        assert_eq!(
            RouteKey::parse("GET /pets/{id}").unwrap(),
            RouteKey::Route {
                method: Method::Get,
                segments: vec![Segment::Literal("pets".into()), Segment::Param("id".into())],
            }
        );
        assert_eq!(
            RouteKey::parse("ANY /{proxy+}").unwrap(),
            RouteKey::Route {
                method: Method::Any,
                segments: vec![Segment::Greedy("proxy".into())],
            }
        );
        assert_eq!(
            RouteKey::parse("GET /").unwrap(),
            RouteKey::Route {
                method: Method::Get,
                segments: vec![],
            }
        );
        assert_eq!(
            RouteKey::parse("GET /a%20b").unwrap(),
            RouteKey::Route {
                method: Method::Get,
                segments: vec![Segment::Literal("a b".into())],
            }
        );
        for key in [
            "GET /a/{x}/b/{rest+}",
            "ANY /{proxy+}",
            "$default",
            "GET /",
            "OPTIONS /x",
        ] {
            assert_eq!(RouteKey::parse(key).unwrap().to_string(), key);
        }
        let bad = [
            "",
            "GET",
            "GET items",
            "FETCH /x",
            "get /x",
            "GET /a//b",
            "GET /a/",
            "GET /{proxy+}/x",
            "GET /{}",
            "GET /{a b}",
            "GET /{x}/{x}",
            "GET /{x}/{x+}",
            "GET /a{x}",
            "GET /{x",
            "GET /a?b",
            "GET /a#b",
            "$connect",
            "GET  /x",
        ];
        for key in bad {
            assert!(
                matches!(RouteKey::parse(key), Err(RouteError::InvalidKey { .. })),
                "{key}"
            );
        }
    }

    #[test]
    fn duplicates_rejected() {
        for keys in [
            ["GET /a/{x}", "GET /a/{y}"],
            ["$default", "$default"],
            ["ANY /{p+}", "ANY /{q+}"],
            ["GET /a%62", "GET /ab"],
        ] {
            assert!(
                matches!(
                    RouteTable::new(keys.iter().map(|k| (*k, ()))),
                    Err(RouteError::Duplicate { .. })
                ),
                "{keys:?}"
            );
        }
        // Same path, different methods, and param vs literal are distinct.
        table(&["GET /a/{x}", "ANY /a/{x}", "POST /a/{x}", "GET /a/b"]);
    }

    #[test]
    fn priority() {
        let t = table(&[
            "ANY /{proxy+}",
            "GET /pets/{proxy+}",
            "GET /pets/dog/{id}",
            "GET /pets/dog/1",
            "ANY /pets/dog/{id}",
            "POST /pets",
            "ANY /pets",
            "GET /",
            "GET /pets/{a}/x",
            "GET /pets/{b}/{c}",
            "ANY /admin",
            "GET /{x}/{y}",
            "$default",
        ]);
        let cases = [
            ("GET", "/pets/dog/1", Some("GET /pets/dog/1")),
            ("GET", "/pets/dog/2", Some("GET /pets/dog/{id}")),
            ("POST", "/pets/dog/2", Some("ANY /pets/dog/{id}")),
            ("GET", "/pets/dog/2/3", Some("GET /pets/{proxy+}")),
            ("DELETE", "/pets/dog/2/3", Some("ANY /{proxy+}")),
            ("POST", "/pets", Some("POST /pets")),
            ("GET", "/pets", Some("ANY /pets")),
            ("PROPFIND", "/pets", Some("ANY /pets")),
            ("GET", "/", Some("GET /")),
            ("POST", "/", Some("$default")),
            ("GET", "/pets/cat/x", Some("GET /pets/{a}/x")),
            ("GET", "/pets/cat/y", Some("GET /pets/{b}/{c}")),
            // A full match on ANY beats a greedy match on GET (ANY covers the methods the
            // resource does not define).
            ("GET", "/admin", Some("ANY /admin")),
            ("GET", "/other/thing", Some("GET /{x}/{y}")),
            ("PUT", "/other/thing", Some("ANY /{proxy+}")),
            // HEAD does not fall back to GET routes.
            ("HEAD", "/", Some("$default")),
            ("HEAD", "/pets/dog/1", Some("ANY /pets/dog/{id}")),
            // Methods are case-sensitive: `get` is an unknown method.
            ("get", "/pets/dog/1", Some("ANY /pets/dog/{id}")),
        ];
        for (method, path, want) in cases {
            assert_eq!(found(&t, method, path), want, "{method} {path}");
        }
    }

    #[test]
    fn no_match_without_default() {
        let t = table(&["GET /pets/{id}", "POST /pets", "GET /files/{p+}"]);
        let cases = [
            ("GET", "/pets"),
            ("PUT", "/pets/1"),
            ("GET", "/pets/"),
            ("GET", "/pets//"),
            ("GET", "/pets/1/"),
            ("GET", "//pets/1"),
            ("GET", "/files"),
            ("GET", "/files/"),
            ("GET", "/files//x"),
            ("GET", ""),
            ("GET", "pets/1"),
            ("GET", "*"),
            ("POST", "/pets/"),
        ];
        for (method, path) in cases {
            assert_eq!(found(&t, method, path), None, "{method} {path}");
        }
        assert!(table(&[]).find("GET", "/").is_none());
    }

    #[test]
    fn parameters() {
        let t = table(&[
            "GET /pets/{id}",
            "GET /files/{path+}",
            "GET /a/{x}/b/{rest+}",
            "GET /caf%C3%A9",
            "$default",
        ]);
        let params = |method: &str, path: &str| {
            let m = t.find(method, path).unwrap();
            (m.route_key.to_owned(), m.path_parameters)
        };
        let p = |list: &[(&str, &str)]| -> Vec<(String, String)> {
            list.iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect()
        };
        let cases = [
            ("/pets/42", "GET /pets/{id}", p(&[("id", "42")])),
            ("/pets/a%20b", "GET /pets/{id}", p(&[("id", "a b")])),
            ("/pets/a+b", "GET /pets/{id}", p(&[("id", "a+b")])),
            (
                "/pets/%E2%9C%93",
                "GET /pets/{id}",
                p(&[("id", "\u{2713}")]),
            ),
            ("/pets/%zz", "GET /pets/{id}", p(&[("id", "%zz")])),
            ("/pets/42?x=1", "GET /pets/{id}", p(&[("id", "42")])),
            ("/files/a", "GET /files/{path+}", p(&[("path", "a")])),
            (
                "/files/a/b%20c/d",
                "GET /files/{path+}",
                p(&[("path", "a/b c/d")]),
            ),
            ("/files/a/", "GET /files/{path+}", p(&[("path", "a/")])),
            ("/files/a//b", "GET /files/{path+}", p(&[("path", "a//b")])),
            (
                "/a/1/b/2/3",
                "GET /a/{x}/b/{rest+}",
                p(&[("x", "1"), ("rest", "2/3")]),
            ),
            ("/caf%C3%A9", "GET /caf%C3%A9", p(&[])),
            ("/caf\u{e9}", "GET /caf%C3%A9", p(&[])),
            ("/%70ets/1", "GET /pets/{id}", p(&[("id", "1")])),
            ("/nothing/here", "$default", p(&[])),
        ];
        for (path, key, want) in cases {
            assert_eq!(params("GET", path), (key.to_owned(), want), "{path}");
        }
    }

    #[test]
    fn hostile_paths_rejected() {
        let t = table(&["GET /pets/{id}", "ANY /{proxy+}", "$default"]);
        for path in [
            "/pets/%FF",
            "/pets/%C3",
            "/pets/a%2Fb",
            "/pets/a%2fb",
            "/pets/a%00",
            "/pets/..",
            "/pets/.",
            "/pets/%2E%2E",
            "/pets/%2e",
            "/x/../pets/1",
            "/%2E%2E%2Fetc%2Fpasswd",
        ] {
            assert!(t.find("GET", path).is_none(), "{path}");
        }
        // Dots inside a segment are fine.
        assert_eq!(found(&t, "GET", "/pets/a..b"), Some("GET /pets/{id}"));
        assert_eq!(found(&t, "GET", "/pets/.hidden"), Some("GET /pets/{id}"));
    }

    #[test]
    fn greedy_root_and_default() {
        let t = table(&["ANY /{proxy+}", "$default"]);
        assert_eq!(found(&t, "GET", "/"), Some("$default"));
        assert_eq!(found(&t, "GET", "/x"), Some("ANY /{proxy+}"));
        let m = t.find("GET", "/x/y").unwrap();
        assert_eq!(m.route_key, "ANY /{proxy+}");
        assert_eq!(m.path_parameters, vec![("proxy".into(), "x/y".into())]);
        assert_eq!(t.len(), 2);
        assert_eq!(
            t.iter().map(|(k, _)| k).collect::<Vec<_>>(),
            ["ANY /{proxy+}", "$default"]
        );
    }

    #[test]
    fn base_path() {
        let cases = [
            ("", "/x", Some("/x")),
            ("", "/", Some("/")),
            ("/", "/x", Some("/x")),
            ("/api", "/api", Some("/")),
            ("/api", "/api/", Some("/")),
            ("/api", "/api/x", Some("/x")),
            ("/api/", "/api/x", Some("/x")),
            ("/api", "/api//x", Some("//x")),
            ("/api", "/apix", None),
            ("/api", "/ap", None),
            ("/api", "/API/x", None),
            ("/api", "/", None),
            ("/api", "/api?x=1", Some("/")),
            ("/a/b", "/a/b/c", Some("/c")),
            ("/a/b", "/a/bc", None),
        ];
        for (base, path, want) in cases {
            assert_eq!(strip_base_path(base, path), want, "{base} {path}");
        }
    }

    #[test]
    fn try_map_keeps_keys_and_priorities() {
        let t = table(&[
            "ANY /{proxy+}",
            "GET /pets/{id}",
            "GET /pets/dog",
            "$default",
        ]);
        let mapped: RouteTable<String> = t
            .try_map(|key, value| Ok::<_, ()>(format!("{key}={value}")))
            .unwrap();
        assert_eq!(mapped.len(), t.len());
        let m = mapped.find("GET", "/pets/dog").unwrap();
        assert_eq!(m.value, "GET /pets/dog=GET /pets/dog");
        let m = mapped.find("GET", "/pets/7").unwrap();
        assert_eq!(m.route_key, "GET /pets/{id}");
        assert_eq!(m.path_parameters, [("id".to_owned(), "7".to_owned())]);
        assert_eq!(
            mapped.find("POST", "/x").unwrap().route_key,
            "ANY /{proxy+}"
        );
        let keys: Vec<&str> = mapped.iter().map(|(k, _)| k).collect();
        let original: Vec<&str> = t.iter().map(|(k, _)| k).collect();
        assert_eq!(keys, original);
        assert_eq!(
            t.try_map(|key, _| if key == "$default" {
                Err(key.to_owned())
            } else {
                Ok(())
            })
            .err(),
            Some("$default".to_owned())
        );
    }

    #[test]
    fn default_table_matches_nothing() {
        let t: RouteTable<()> = RouteTable::default();
        assert!(t.is_empty());
        assert!(t.find("GET", "/").is_none());
    }
}
