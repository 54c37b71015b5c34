//! `[static.NAME]` sites: files from a directory on the public listener (GET and HEAD),
//! streamed, with validators (`ETag`, `Last-Modified` → 304) and headers that keep a page
//! served next to an identity provider safe: a strict Content-Security-Policy, no referrer
//! (authorization codes travel in page URLs), no sniffing, no framing.

use std::path::{Path, PathBuf};
use std::time::SystemTime;

use axum::body::Body;
use http::{HeaderValue, Method, Request, Response, StatusCode, header};
use portcullis_config::StaticSite;
use portcullis_core::static_path::{self, StaticTarget};
use tracing::warn;

use crate::error::GatewayError;
use crate::reply;

/// A site ready to serve: its prefix and the canonical directory every file must stay in.
pub struct Site {
    prefix: String,
    root: PathBuf,
    index: String,
}

/// Headers on every answer of a static site.
const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
                   connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'; \
                   object-src 'none'";

impl Site {
    /// Checks that the directory exists, once, at start-up.
    pub fn new(config: &StaticSite) -> Result<Self, GatewayError> {
        let root = std::fs::canonicalize(&config.dir).map_err(|e| {
            GatewayError::Internal(format!(
                "static.{}: cannot open directory {}: {e}",
                config.name,
                config.dir.display()
            ))
        })?;
        if !root.is_dir() {
            return Err(GatewayError::Internal(format!(
                "static.{}: {} is not a directory",
                config.name,
                config.dir.display()
            )));
        }
        Ok(Site {
            prefix: config.path.clone(),
            root,
            index: config.index.clone(),
        })
    }

    /// Whether `path` belongs to this site.
    pub fn matches(&self, path: &str) -> bool {
        !matches!(
            static_path::resolve(&self.prefix, path),
            StaticTarget::Outside
        )
    }

    pub async fn serve(&self, req: Request<Body>) -> Response<Body> {
        let (req, _body) = req.into_parts();
        if req.method != Method::GET && req.method != Method::HEAD {
            let mut response = plain(StatusCode::METHOD_NOT_ALLOWED, "Method Not Allowed");
            response
                .headers_mut()
                .insert(header::ALLOW, HeaderValue::from_static("GET, HEAD"));
            return response;
        }
        let (segments, directory) = match static_path::resolve(&self.prefix, req.uri.path()) {
            StaticTarget::AddSlash => {
                let query = req.uri.query().map(|q| format!("?{q}")).unwrap_or_default();
                return redirect(&format!("{}/{query}", self.prefix));
            }
            StaticTarget::File {
                segments,
                directory,
            } => (segments, directory),
            StaticTarget::Outside | StaticTarget::Refused => return not_found(),
        };
        let mut path = self.root.clone();
        path.extend(&segments);
        if directory {
            path.push(&self.index);
        }
        match self.open(&path).await {
            Ok(Some(file)) => file.respond(&req),
            Ok(None)
                if !directory && !req.uri.path().contains("//") && self.is_dir(&path).await =>
            {
                // `/demo/sub` names a directory: send the browser to `/demo/sub/`.
                let query = req.uri.query().map(|q| format!("?{q}")).unwrap_or_default();
                redirect(&format!("{}/{query}", req.uri.path()))
            }
            Ok(None) => not_found(),
            Err(e) => {
                warn!(file = %path.display(), error = %e, "static file could not be read");
                plain(StatusCode::INTERNAL_SERVER_ERROR, "Internal Server Error")
            }
        }
    }

    async fn is_dir(&self, path: &Path) -> bool {
        match tokio::fs::canonicalize(path).await {
            Ok(real) => real.starts_with(&self.root) && real.is_dir(),
            Err(_) => false,
        }
    }

    /// The regular file at `path`, if it exists inside the site's directory (a symbolic
    /// link that leads outside is treated as missing).
    async fn open(&self, path: &Path) -> std::io::Result<Option<OpenFile>> {
        let real = match tokio::fs::canonicalize(path).await {
            Ok(real) => real,
            Err(e) if is_missing(&e) => return Ok(None),
            Err(e) => return Err(e),
        };
        if !real.starts_with(&self.root) {
            return Ok(None);
        }
        let file = match tokio::fs::File::open(&real).await {
            Ok(file) => file,
            Err(e) if is_missing(&e) => return Ok(None),
            Err(e) => return Err(e),
        };
        let meta = file.metadata().await?;
        if !meta.is_file() {
            return Ok(None);
        }
        let name = real
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        Ok(Some(OpenFile {
            file,
            len: meta.len(),
            modified: meta.modified().ok(),
            content_type: static_path::content_type(&name),
        }))
    }
}

fn is_missing(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        std::io::ErrorKind::NotFound | std::io::ErrorKind::NotADirectory
    )
}

struct OpenFile {
    file: tokio::fs::File,
    len: u64,
    modified: Option<SystemTime>,
    content_type: &'static str,
}

impl OpenFile {
    fn respond(self, req: &http::request::Parts) -> Response<Body> {
        let mtime = self
            .modified
            .and_then(|m| m.duration_since(SystemTime::UNIX_EPOCH).ok());
        let etag = mtime.map(|m| format!("W/\"{:x}-{:x}\"", self.len, m.as_secs()));
        let last_modified = self.modified.map(httpdate);
        let not_modified = match (req.headers.get(header::IF_NONE_MATCH), &etag) {
            (Some(candidates), Some(etag)) => candidates
                .to_str()
                .unwrap_or_default()
                .split(',')
                .any(|c| c.trim() == etag || c.trim() == "*"),
            (None, _) => match (req.headers.get(header::IF_MODIFIED_SINCE), &last_modified) {
                (Some(since), Some(modified)) => since.as_bytes() == modified.as_bytes(),
                _ => false,
            },
            _ => false,
        };
        let body = if not_modified || req.method == Method::HEAD {
            Body::empty()
        } else {
            Body::from_stream(tokio_util::io::ReaderStream::new(self.file))
        };
        let mut response = Response::new(body);
        if not_modified {
            *response.status_mut() = StatusCode::NOT_MODIFIED;
        }
        let h = response.headers_mut();
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static(self.content_type),
        );
        if !not_modified {
            h.insert(header::CONTENT_LENGTH, HeaderValue::from(self.len));
        }
        // Revalidate every time: a changed page is picked up at once, an unchanged one is a 304.
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
        if let Some(v) = etag.and_then(|e| HeaderValue::from_str(&e).ok()) {
            h.insert(header::ETAG, v);
        }
        if let Some(v) = last_modified.and_then(|m| HeaderValue::from_str(&m).ok()) {
            h.insert(header::LAST_MODIFIED, v);
        }
        security_headers(h);
        response
    }
}

fn security_headers(h: &mut http::HeaderMap) {
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
}

/// An IMF-fixdate (`Sun, 06 Nov 1994 08:49:37 GMT`).
fn httpdate(t: SystemTime) -> String {
    chrono::DateTime::<chrono::Utc>::from(t)
        .format("%a, %d %b %Y %H:%M:%S GMT")
        .to_string()
}

fn plain(status: StatusCode, text: &'static str) -> Response<Body> {
    let mut response = reply::text(status, text);
    security_headers(response.headers_mut());
    response
}

fn not_found() -> Response<Body> {
    plain(StatusCode::NOT_FOUND, "Not Found")
}

fn redirect(location: &str) -> Response<Body> {
    let mut response = plain(StatusCode::MOVED_PERMANENTLY, "Moved Permanently");
    if let Ok(v) = HeaderValue::from_str(location) {
        response.headers_mut().insert(header::LOCATION, v);
    }
    response
}
