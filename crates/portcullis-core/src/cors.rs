//! CORS for HTTP APIs: the gateway's answer to preflight requests and the headers it adds to
//! actual responses, as API Gateway does when an API has a CORS configuration.
//!
//! How the caller uses it (AWS behaviour):
//!
//! * A request is a preflight when its method is `OPTIONS` and it carries both `Origin` and
//!   `Access-Control-Request-Method` ([`is_preflight`]). With CORS configured, the gateway answers
//!   every preflight itself with `204 No Content` — no route, authorizer or integration runs, even
//!   when an `OPTIONS` route exists. [`CorsPolicy::preflight`] gives the headers of that answer,
//!   or `None` when the origin, method or a requested header is not allowed; the gateway then
//!   still answers `204` but without CORS headers, and the browser blocks the actual request. A
//!   denied preflight is not forwarded: a backend never has to handle preflights.
//! * Every other response (including gateway errors like 401/403/404/500) gets
//!   [`CorsPolicy::response_headers`]. The backend's own `access-control-*` headers are
//!   dropped first, so the configuration is the single source of truth; a `vary` from this
//!   module is merged with the backend's `vary` rather than replacing it.
//!
//! Comparisons: origins ASCII case-insensitively (a trailing `/` on a configured origin is
//! ignored), methods and header names case-insensitively. `"*"` in `allow_origins` allows every
//! origin; it is answered as `*` unless credentials are allowed, in which case the origin is
//! echoed (browsers reject `*` with credentials). `"*"` in `allow_methods` / `allow_headers`
//! allows any method / header and is answered by echoing what the browser asked for, which also
//! works with credentials and for `authorization` (which a literal `*` never covers). An empty
//! `allow_methods` allows only the CORS-safelisted `GET`, `HEAD` and `POST` (what a browser
//! assumes when `access-control-allow-methods` is absent); an empty `allow_origins` allows none.

/// A validated CORS configuration (the caller converts `portcullis_config::Cors`; `max_age` in
/// whole seconds).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CorsPolicy {
    pub allow_origins: Vec<String>,
    pub allow_methods: Vec<String>,
    pub allow_headers: Vec<String>,
    pub expose_headers: Vec<String>,
    pub allow_credentials: bool,
    pub max_age_secs: Option<u64>,
}

/// Whether a request is a CORS preflight (`OPTIONS` with `Origin` and
/// `Access-Control-Request-Method`).
pub fn is_preflight(method: &str, origin: Option<&str>, request_method: Option<&str>) -> bool {
    method == "OPTIONS" && origin.is_some() && request_method.is_some()
}

const SAFELISTED_METHODS: [&str; 3] = ["GET", "HEAD", "POST"];

fn has_star(list: &[String]) -> bool {
    list.iter().any(|v| v.trim() == "*")
}

fn join(list: &[String]) -> String {
    list.iter()
        .map(|v| v.trim())
        .filter(|v| !v.is_empty())
        .collect::<Vec<_>>()
        .join(",")
}

impl CorsPolicy {
    /// Whether `origin` may make CORS requests.
    pub fn origin_allowed(&self, origin: &str) -> bool {
        !origin.is_empty()
            && self.allow_origins.iter().any(|allowed| {
                let allowed = allowed.trim();
                allowed == "*"
                    || allowed
                        .strip_suffix('/')
                        .unwrap_or(allowed)
                        .eq_ignore_ascii_case(origin)
            })
    }

    /// True when the `access-control-allow-origin` answer is `*` (the same for every origin).
    fn wildcard_origin(&self) -> bool {
        !self.allow_credentials && has_star(&self.allow_origins)
    }

    fn method_allowed(&self, method: &str) -> bool {
        if self.allow_methods.is_empty() {
            return SAFELISTED_METHODS
                .iter()
                .any(|m| m.eq_ignore_ascii_case(method));
        }
        self.allow_methods
            .iter()
            .any(|m| m.trim() == "*" || m.trim().eq_ignore_ascii_case(method))
    }

    fn header_allowed(&self, name: &str) -> bool {
        self.allow_headers
            .iter()
            .any(|h| h.trim() == "*" || h.trim().eq_ignore_ascii_case(name))
    }

    /// The headers of the gateway's `204` answer to a preflight, or `None` when the request is
    /// not an allowed CORS preflight (no or disallowed `Origin`, no or disallowed
    /// `Access-Control-Request-Method`, or a header in `Access-Control-Request-Headers` that is
    /// not allowed). Names are lower case.
    pub fn preflight(
        &self,
        origin: Option<&str>,
        request_method: Option<&str>,
        request_headers: Option<&str>,
    ) -> Option<Vec<(String, String)>> {
        let origin = origin.filter(|o| self.origin_allowed(o))?;
        let request_method = request_method.map(str::trim).filter(|m| !m.is_empty())?;
        if !self.method_allowed(request_method) {
            return None;
        }
        let requested: Vec<String> = request_headers
            .unwrap_or("")
            .split(',')
            .map(|h| h.trim().to_ascii_lowercase())
            .filter(|h| !h.is_empty())
            .collect();
        if !requested.iter().all(|h| self.header_allowed(h)) {
            return None;
        }

        let mut out = Vec::with_capacity(7);
        let mut vary = vec!["origin"];
        out.push(self.allow_origin_header(origin));
        if self.allow_credentials {
            out.push((
                "access-control-allow-credentials".to_owned(),
                "true".to_owned(),
            ));
        }
        if has_star(&self.allow_methods) {
            out.push((
                "access-control-allow-methods".to_owned(),
                request_method.to_owned(),
            ));
            vary.push("access-control-request-method");
        } else if !self.allow_methods.is_empty() {
            out.push((
                "access-control-allow-methods".to_owned(),
                join(&self.allow_methods),
            ));
        }
        if has_star(&self.allow_headers) {
            if !requested.is_empty() {
                out.push((
                    "access-control-allow-headers".to_owned(),
                    requested.join(","),
                ));
            }
            vary.push("access-control-request-headers");
        } else if !self.allow_headers.is_empty() {
            out.push((
                "access-control-allow-headers".to_owned(),
                join(&self.allow_headers),
            ));
        }
        if let Some(age) = self.max_age_secs {
            out.push(("access-control-max-age".to_owned(), age.to_string()));
        }
        out.push(("vary".to_owned(), vary.join(", ")));
        Some(out)
    }

    /// Headers to add to an actual (non-preflight) response. For an allowed origin:
    /// `access-control-allow-origin`, `access-control-allow-credentials` (when enabled) and
    /// `access-control-expose-headers` (when configured). `vary: origin` is included whenever
    /// the answer depends on the origin (i.e. unless the policy answers `*`), also when the
    /// origin is missing or not allowed, so shared caches keep the variants apart.
    pub fn response_headers(&self, origin: Option<&str>) -> Vec<(String, String)> {
        let mut out = Vec::new();
        if let Some(origin) = origin.filter(|o| self.origin_allowed(o)) {
            out.push(self.allow_origin_header(origin));
            if self.allow_credentials {
                out.push((
                    "access-control-allow-credentials".to_owned(),
                    "true".to_owned(),
                ));
            }
            let expose = join(&self.expose_headers);
            if !expose.is_empty() {
                out.push(("access-control-expose-headers".to_owned(), expose));
            }
        }
        if !self.wildcard_origin() {
            out.push(("vary".to_owned(), "origin".to_owned()));
        }
        out
    }

    fn allow_origin_header(&self, origin: &str) -> (String, String) {
        let value = if self.wildcard_origin() {
            "*".to_owned()
        } else {
            origin.to_owned()
        };
        ("access-control-allow-origin".to_owned(), value)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn strings(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| (*s).to_owned()).collect()
    }

    fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    fn listed() -> CorsPolicy {
        CorsPolicy {
            allow_origins: strings(&["https://app.example.org", "http://localhost:8080/"]),
            allow_methods: strings(&["GET", "POST", "DELETE"]),
            allow_headers: strings(&["authorization", "Content-Type"]),
            expose_headers: strings(&["x-request-id", "etag"]),
            allow_credentials: true,
            max_age_secs: Some(600),
        }
    }

    fn wildcard() -> CorsPolicy {
        CorsPolicy {
            allow_origins: strings(&["*"]),
            allow_methods: strings(&["*"]),
            allow_headers: strings(&["*"]),
            ..CorsPolicy::default()
        }
    }

    #[test]
    fn preflight_allowed_listed() {
        let p = listed();
        let got = p
            .preflight(
                Some("https://app.example.org"),
                Some("DELETE"),
                Some("Authorization, content-type"),
            )
            .unwrap();
        assert_eq!(
            got,
            pairs(&[
                ("access-control-allow-origin", "https://app.example.org"),
                ("access-control-allow-credentials", "true"),
                ("access-control-allow-methods", "GET,POST,DELETE"),
                ("access-control-allow-headers", "authorization,Content-Type"),
                ("access-control-max-age", "600"),
                ("vary", "origin"),
            ])
        );
        // Case-insensitive origin, configured trailing slash, method case, no requested headers.
        let got = p
            .preflight(Some("HTTP://LOCALHOST:8080"), Some("post"), None)
            .unwrap();
        assert_eq!(
            got.first().unwrap(),
            &(
                "access-control-allow-origin".to_owned(),
                "HTTP://LOCALHOST:8080".to_owned()
            )
        );
        assert!(
            p.preflight(Some("https://app.example.org"), Some("GET"), Some(" , "))
                .is_some()
        );
    }

    #[test]
    fn preflight_denied() {
        let p = listed();
        let cases: [(Option<&str>, Option<&str>, Option<&str>); 9] = [
            (None, Some("GET"), None),
            (Some("https://evil.example"), Some("GET"), None),
            (
                Some("https://app.example.org.evil.example"),
                Some("GET"),
                None,
            ),
            (Some("https://app.example.or"), Some("GET"), None),
            (Some(""), Some("GET"), None),
            (Some("https://app.example.org"), None, None),
            (Some("https://app.example.org"), Some(""), None),
            (Some("https://app.example.org"), Some("PUT"), None),
            (
                Some("https://app.example.org"),
                Some("GET"),
                Some("authorization, x-secret"),
            ),
        ];
        for (origin, method, headers) in cases {
            assert_eq!(
                p.preflight(origin, method, headers),
                None,
                "{origin:?} {method:?} {headers:?}"
            );
        }
        // An empty origin list allows nothing.
        let none = CorsPolicy {
            allow_methods: strings(&["*"]),
            ..CorsPolicy::default()
        };
        assert_eq!(
            none.preflight(Some("https://a.example"), Some("GET"), None),
            None
        );
        assert_eq!(
            none.response_headers(Some("https://a.example")),
            pairs(&[("vary", "origin")])
        );
    }

    #[test]
    fn preflight_wildcards() {
        let p = wildcard();
        let got = p
            .preflight(
                Some("https://any.example"),
                Some("PATCH"),
                Some("X-Custom, Authorization"),
            )
            .unwrap();
        assert_eq!(
            got,
            pairs(&[
                ("access-control-allow-origin", "*"),
                ("access-control-allow-methods", "PATCH"),
                ("access-control-allow-headers", "x-custom,authorization"),
                (
                    "vary",
                    "origin, access-control-request-method, access-control-request-headers"
                ),
            ])
        );
        assert!(p.preflight(Some("null"), Some("GET"), None).is_some());
        // Credentials with a wildcard origin list (rejected by config, handled anyway): echo.
        let creds = CorsPolicy {
            allow_credentials: true,
            ..wildcard()
        };
        let got = creds
            .preflight(Some("https://any.example"), Some("GET"), None)
            .unwrap();
        assert_eq!(
            got,
            pairs(&[
                ("access-control-allow-origin", "https://any.example"),
                ("access-control-allow-credentials", "true"),
                ("access-control-allow-methods", "GET"),
                (
                    "vary",
                    "origin, access-control-request-method, access-control-request-headers"
                ),
            ])
        );
    }

    #[test]
    fn preflight_default_methods_are_safelisted() {
        let p = CorsPolicy {
            allow_origins: strings(&["https://app.example.org"]),
            allow_headers: strings(&["authorization"]),
            ..CorsPolicy::default()
        };
        for (method, allowed) in [
            ("GET", true),
            ("post", true),
            ("HEAD", true),
            ("PUT", false),
            ("DELETE", false),
        ] {
            assert_eq!(
                p.preflight(Some("https://app.example.org"), Some(method), None)
                    .is_some(),
                allowed,
                "{method}"
            );
        }
        let got = p
            .preflight(
                Some("https://app.example.org"),
                Some("POST"),
                Some("authorization"),
            )
            .unwrap();
        assert_eq!(
            got,
            pairs(&[
                ("access-control-allow-origin", "https://app.example.org"),
                ("access-control-allow-headers", "authorization"),
                ("vary", "origin"),
            ])
        );
        // No headers allowed at all: any requested header denies.
        let bare = CorsPolicy {
            allow_headers: vec![],
            ..p
        };
        assert!(
            bare.preflight(Some("https://app.example.org"), Some("GET"), Some("x-a"))
                .is_none()
        );
    }

    #[test]
    fn actual_response_headers() {
        let p = listed();
        assert_eq!(
            p.response_headers(Some("https://app.example.org")),
            pairs(&[
                ("access-control-allow-origin", "https://app.example.org"),
                ("access-control-allow-credentials", "true"),
                ("access-control-expose-headers", "x-request-id,etag"),
                ("vary", "origin"),
            ])
        );
        assert_eq!(
            p.response_headers(Some("https://evil.example")),
            pairs(&[("vary", "origin")])
        );
        assert_eq!(p.response_headers(None), pairs(&[("vary", "origin")]));
        let w = wildcard();
        assert_eq!(
            w.response_headers(Some("https://any.example")),
            pairs(&[("access-control-allow-origin", "*")])
        );
        assert!(w.response_headers(None).is_empty());
    }

    #[test]
    fn preflight_detection() {
        assert!(is_preflight("OPTIONS", Some("https://a"), Some("GET")));
        assert!(!is_preflight("OPTIONS", None, Some("GET")));
        assert!(!is_preflight("OPTIONS", Some("https://a"), None));
        assert!(!is_preflight("GET", Some("https://a"), Some("GET")));
    }
}
