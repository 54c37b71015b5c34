//! The Lambda Runtime API as seen by a bootstrap: which request is which. Pure; the server
//! that answers them is [`crate::endpoint`].

use http::Method;

/// Largest event and response body, as on AWS (6 MiB for synchronous invocations).
pub const MAX_PAYLOAD: usize = 6 * 1024 * 1024;
/// Largest error body a runtime may post.
pub(crate) const MAX_ERROR_BODY: usize = 1024 * 1024;

const PREFIX: &str = "/2018-06-01/runtime/";

/// A request of the Runtime API.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Call<'a> {
    /// `GET /2018-06-01/runtime/invocation/next`: wait for the next event.
    Next,
    /// `POST .../invocation/{id}/response`.
    Response(&'a str),
    /// `POST .../invocation/{id}/error`.
    Error(&'a str),
    /// `POST .../init/error`.
    InitError,
}

/// Which call `method path` is; `None` for anything else (answered 404).
pub(crate) fn call<'a>(method: &Method, path: &'a str) -> Option<Call<'a>> {
    let rest = path.strip_prefix(PREFIX)?;
    match (method, rest) {
        (&Method::GET, "invocation/next") => Some(Call::Next),
        (&Method::POST, "init/error") => Some(Call::InitError),
        (&Method::POST, rest) => {
            let rest = rest.strip_prefix("invocation/")?;
            let (id, action) = rest.split_once('/')?;
            if id.is_empty() || id.contains('/') {
                return None;
            }
            match action {
                "response" => Some(Call::Response(id)),
                "error" => Some(Call::Error(id)),
                _ => None,
            }
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runtime_api_paths() {
        let p = |m: Method, path: &'static str| call(&m, path);
        assert_eq!(
            p(Method::GET, "/2018-06-01/runtime/invocation/next"),
            Some(Call::Next)
        );
        assert_eq!(
            p(Method::POST, "/2018-06-01/runtime/invocation/abc/response"),
            Some(Call::Response("abc"))
        );
        assert_eq!(
            p(Method::POST, "/2018-06-01/runtime/invocation/abc/error"),
            Some(Call::Error("abc"))
        );
        assert_eq!(
            p(Method::POST, "/2018-06-01/runtime/init/error"),
            Some(Call::InitError)
        );
        assert_eq!(p(Method::POST, "/2018-06-01/runtime/invocation/next"), None);
        assert_eq!(
            p(Method::GET, "/2018-06-01/runtime/invocation/a/response"),
            None
        );
        assert_eq!(
            p(Method::POST, "/2018-06-01/runtime/invocation//response"),
            None
        );
        assert_eq!(
            p(Method::POST, "/2018-06-01/runtime/invocation/a/b/response"),
            None
        );
        assert_eq!(p(Method::GET, "/other"), None);
    }
}
