//! Which file of a static site a request path names: percent-decoding, traversal refusal,
//! index files and the trailing-slash redirect, without touching the file system.

use percent_encoding::percent_decode_str;

/// What a request path means for a site mounted at `prefix`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StaticTarget {
    /// Not under the site's prefix.
    Outside,
    /// The site root without its trailing slash (`/demo`): redirect to `/demo/` so relative
    /// links in the page resolve inside the site.
    AddSlash,
    /// A file, as relative path segments (each a plain, decoded name). `directory` is true
    /// when the path ended in `/`, so the index file of that directory is meant.
    File {
        segments: Vec<String>,
        directory: bool,
    },
    /// Under the prefix but not a safe file name (`..`, encoded `/`, NUL, hidden files,
    /// invalid UTF-8): answered 404, never looked up.
    Refused,
}

/// Longest path accepted; longer ones are refused without being decoded.
pub const MAX_PATH_BYTES: usize = 2048;

/// Maps `path` (the request URI's path, still percent-encoded) under `prefix` (`/demo`, or
/// `/` for a site at the root).
pub fn resolve(prefix: &str, path: &str) -> StaticTarget {
    let rest = if prefix == "/" {
        path
    } else {
        match path.strip_prefix(prefix) {
            Some("") => return StaticTarget::AddSlash,
            Some(rest) if rest.starts_with('/') => rest,
            _ => return StaticTarget::Outside,
        }
    };
    if path.len() > MAX_PATH_BYTES {
        return StaticTarget::Refused;
    }
    let rest = rest.trim_start_matches('/');
    let directory = rest.is_empty() || rest.ends_with('/');
    let mut segments = Vec::new();
    for raw in rest.split('/').filter(|s| !s.is_empty()) {
        let Ok(decoded) = percent_decode_str(raw).decode_utf8() else {
            return StaticTarget::Refused;
        };
        if !safe_segment(&decoded) {
            return StaticTarget::Refused;
        }
        segments.push(decoded.into_owned());
    }
    StaticTarget::File {
        segments,
        directory,
    }
}

/// A name that stays inside its directory on every platform: no separators, no `.`/`..`,
/// no hidden files (`.git`, `.env`), no control characters.
fn safe_segment(s: &str) -> bool {
    !s.is_empty()
        && !s.starts_with('.')
        && !s.contains(['/', '\\', ':'])
        && !s.chars().any(char::is_control)
}

/// `Content-Type` by file extension; unknown types are served as bytes.
pub fn content_type(file_name: &str) -> &'static str {
    let ext = file_name
        .rsplit_once('.')
        .map(|(_, e)| e.to_ascii_lowercase())
        .unwrap_or_default();
    match ext.as_str() {
        "html" | "htm" => "text/html; charset=utf-8",
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "json" | "map" => "application/json",
        "txt" => "text/plain; charset=utf-8",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "gif" => "image/gif",
        "webp" => "image/webp",
        "ico" => "image/x-icon",
        "woff2" => "font/woff2",
        "woff" => "font/woff",
        "wasm" => "application/wasm",
        "webmanifest" => "application/manifest+json",
        _ => "application/octet-stream",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(segments: &[&str], directory: bool) -> StaticTarget {
        StaticTarget::File {
            segments: segments.iter().map(|s| (*s).to_owned()).collect(),
            directory,
        }
    }

    #[test]
    fn maps_paths_under_the_prefix() {
        assert_eq!(resolve("/demo", "/demo"), StaticTarget::AddSlash);
        assert_eq!(resolve("/demo", "/demo/"), file(&[], true));
        assert_eq!(resolve("/demo", "/demo/app.js"), file(&["app.js"], false));
        assert_eq!(
            resolve("/demo", "/demo/img/a%20b.png"),
            file(&["img", "a b.png"], false)
        );
        assert_eq!(resolve("/demo", "/demo/img/"), file(&["img"], true));
        assert_eq!(resolve("/demo", "/demo//x"), file(&["x"], false));
        assert_eq!(resolve("/demo", "/demos"), StaticTarget::Outside);
        assert_eq!(resolve("/demo", "/other/x"), StaticTarget::Outside);
        assert_eq!(resolve("/", "/"), file(&[], true));
        assert_eq!(resolve("/", "/a/b.css"), file(&["a", "b.css"], false));
    }

    #[test]
    fn refuses_traversal_and_hidden_files() {
        for path in [
            "/demo/../secret",
            "/demo/%2e%2e/secret",
            "/demo/a/%2E%2E/%2E%2E/etc/passwd",
            "/demo/a%2fb",
            "/demo/a%5cb",
            "/demo/.env",
            "/demo/.git/config",
            "/demo/%00",
            "/demo/a%ffb",
            "/demo/./x",
            "/demo/c:/x",
        ] {
            assert_eq!(resolve("/demo", path), StaticTarget::Refused, "{path}");
        }
        let long = format!("/demo/{}", "a".repeat(MAX_PATH_BYTES));
        assert_eq!(resolve("/demo", &long), StaticTarget::Refused);
    }

    #[test]
    fn content_types() {
        assert_eq!(content_type("index.html"), "text/html; charset=utf-8");
        assert_eq!(content_type("APP.JS"), "text/javascript; charset=utf-8");
        assert_eq!(content_type("style.css"), "text/css; charset=utf-8");
        assert_eq!(content_type("noext"), "application/octet-stream");
    }
}
