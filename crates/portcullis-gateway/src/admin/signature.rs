//! Who may call the admin listener's signed APIs: a SigV4 signature by one of the
//! `[management] credentials` (service `execute-api`, the configured region), and a credential
//! that holds the API's scope (`connections` for `@connections`, `admin` for `/admin/...`).
//! The check itself is `portcullis_auth::management`'s, shared with the Cognito `Admin*`
//! operations of the identity provider.

use portcullis_auth::management;
use portcullis_auth::sigv4::SignableRequest;
use portcullis_config::{CredentialScope, Management};

pub use portcullis_auth::management::Refusal;

/// Verifies the request's SigV4 signature against the `[management] credentials`, then that
/// the signing credential holds `scope`.
pub fn authenticate(
    management: &Management,
    parts: &http::request::Parts,
    body: &[u8],
    scope: CredentialScope,
) -> Result<(), Refusal> {
    let headers: Vec<(&str, &str)> = parts
        .headers
        .iter()
        .filter_map(|(n, v)| v.to_str().ok().map(|v| (n.as_str(), v)))
        .collect();
    let request = SignableRequest {
        method: parts.method.as_str(),
        path: parts.uri.path(),
        query: parts.uri.query().unwrap_or(""),
        headers: &headers,
        body,
    };
    management::authenticate(
        management,
        &request,
        "execute-api",
        scope,
        chrono::Utc::now(),
    )
    .map(|_| ())
}
