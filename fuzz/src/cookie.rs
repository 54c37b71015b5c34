//! Cookie headers, identity sources and the CSRF check see raw client headers.
use portcullis_auth::identity::{IdentitySource, RequestParts};

/// One input; panics (the finding) when a property fails.
pub fn run(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let _ = portcullis_auth::cookie::parse_cookies(text).count();
    let headers = [
        ("Cookie", text),
        ("Sec-WebSocket-Protocol", text),
        ("Authorization", text),
    ];
    let query = vec![("csrf".to_owned(), text.to_owned())];
    let parts = RequestParts {
        headers: &headers,
        query: &query,
    };
    for source in [
        "route.request.cookie.id_token",
        "route.request.header.Sec-WebSocket-Protocol",
        "$request.header.Authorization",
    ] {
        if let Ok(source) = IdentitySource::parse(source) {
            let _ = source.extract(&parts);
        }
    }
    let csrf = portcullis_config::Csrf {
        cookie: "CSRF-TOKEN".into(),
        query: Some("csrf".into()),
        header: None,
    };
    let _ = portcullis_auth::csrf::check(&csrf, &parts);
}
