//! HTTP API route matching (`[http.NAME.routes]` keys against a request's method and path):
//! never panics; a match names one of the table's keys, and its path parameters are the
//! route's, non-empty.
//!
//! Input: every line but the last is a route key (`METHOD /path/{param}/{rest+}`, `$default`);
//! the last is the request, `METHOD /raw/path`. Invalid keys are refused by the table.
use portcullis_core::http_route::{RouteTable, strip_base_path};

/// One input; panics (the finding) when a property fails.
pub fn run(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let mut lines: Vec<&str> = text.split('\n').collect();
    let request = lines.pop().unwrap_or_default();
    let (method, path) = request.split_once(' ').unwrap_or((request, "/"));
    if let Some(rest) = strip_base_path("/api", path) {
        assert!(path.starts_with("/api"));
        assert!(rest.len() <= path.len());
    }
    let Ok(table) = RouteTable::new(lines.iter().enumerate().map(|(i, k)| (*k, i))) else {
        return;
    };
    if let Some(found) = table.find(method, path) {
        let key = lines.get(*found.value).copied().unwrap_or_default();
        assert_eq!(found.route_key, key);
        for (name, value) in &found.path_parameters {
            assert!(
                key.contains(&format!("{{{name}")),
                "{name} is not a parameter of {key}"
            );
            assert!(!value.is_empty(), "empty value for {name} in {key}");
        }
    }
}
