//! The SigV4 headers of one management call, as botocore's `SigV4Auth` computes them for
//! service `execute-api`: `host` is signed, the body's SHA-256 is part of the signature.

use chrono::{DateTime, Utc};
use portcullis_auth::sigv4::{self, SignableRequest};

use crate::Credentials;

/// The service name management calls are signed for.
pub const SERVICE: &str = "execute-api";

/// The headers to add to a request (`x-amz-date` and `authorization`) for `method` on the raw
/// `path` (as sent, still percent-encoded) of `authority` (`host[:port]`, sent as `host`) with
/// `body`, signed at `now`.
pub fn headers(
    credentials: &Credentials,
    authority: &str,
    method: &str,
    path: &str,
    body: &[u8],
    now: DateTime<Utc>,
) -> Vec<(String, String)> {
    sigv4::sign(
        &SignableRequest {
            method,
            path,
            query: "",
            headers: &[("host", authority)],
            body,
        },
        &credentials.access_key_id,
        &credentials.secret_access_key,
        &credentials.region,
        SERVICE,
        now,
    )
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    const SECRET: &str = "local-dev-secret";

    fn credentials() -> Credentials {
        Credentials {
            access_key_id: "AKIDLOCAL".into(),
            secret_access_key: SECRET.into(),
            region: "eu-west-1".into(),
        }
    }

    fn verify(
        method: &str,
        path: &str,
        sent: &[(String, String)],
        body: &[u8],
    ) -> Result<(), sigv4::SigV4Error> {
        let mut headers = vec![("host", "127.0.0.1:9090")];
        headers.extend(sent.iter().map(|(n, v)| (n.as_str(), v.as_str())));
        let params = sigv4::VerifyParams {
            region: "eu-west-1",
            service: SERVICE,
            now: Utc::now(),
            max_skew: Duration::from_secs(300),
        };
        let secret = |id: &str| (id == "AKIDLOCAL").then(|| SECRET.to_owned());
        sigv4::verify(
            &SignableRequest {
                method,
                path,
                query: "",
                headers: &headers,
                body,
            },
            &params,
            &secret,
        )
        .map(|_| ())
    }

    #[test]
    fn the_gateway_verifies_what_is_signed_and_nothing_else() {
        let path = "/prod/@users/user%2042";
        let sent = headers(
            &credentials(),
            "127.0.0.1:9090",
            "POST",
            path,
            b"hi",
            Utc::now(),
        );
        let names: Vec<&str> = sent.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["x-amz-date", "authorization"]);
        assert_eq!(verify("POST", path, &sent, b"hi"), Ok(()));
        assert_eq!(
            verify("POST", path, &sent, b"ho"),
            Err(sigv4::SigV4Error::SignatureMismatch)
        );
        assert_eq!(
            verify("POST", "/prod/@users/bob", &sent, b"hi"),
            Err(sigv4::SigV4Error::SignatureMismatch)
        );
        assert_eq!(
            verify("DELETE", path, &sent, b"hi"),
            Err(sigv4::SigV4Error::SignatureMismatch)
        );
    }

    #[test]
    fn the_secret_never_appears_in_headers_or_debug() {
        let sent = headers(&credentials(), "h", "GET", "/", b"", Utc::now());
        assert!(sent.iter().all(|(_, v)| !v.contains(SECRET)));
        assert!(!format!("{:?}", credentials()).contains(SECRET));
    }
}
