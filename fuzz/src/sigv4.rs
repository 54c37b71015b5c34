//! SigV4 verification sees every management request's headers, path and query.
use portcullis_auth::sigv4::{SignableRequest, VerifyParams, verify};

/// One input; panics (the finding) when a property fails.
pub fn run(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let mut parts = text.splitn(4, '\n');
    let authorization = parts.next().unwrap_or("");
    let date = parts.next().unwrap_or("");
    let path = parts.next().unwrap_or("/");
    let query = parts.next().unwrap_or("");
    let headers = [
        ("authorization", authorization),
        ("x-amz-date", date),
        ("host", "localhost"),
    ];
    let request = SignableRequest {
        method: "POST",
        path,
        query,
        headers: &headers,
        body: data,
    };
    let params = VerifyParams {
        region: "us-east-1",
        service: "execute-api",
        now: chrono::Utc::now(),
        max_skew: std::time::Duration::from_secs(300),
    };
    let _ = verify(&request, &params, &|_| Some("secret".to_owned()));
}
