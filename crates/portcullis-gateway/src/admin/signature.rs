//! Who may call the admin listener's signed APIs: a SigV4 signature by one of the
//! `[management] credentials` (service `execute-api`, the configured region), and a credential
//! that holds the API's scope (`connections` for `@connections`, `admin` for `/admin/...`).

use std::time::Duration;

use portcullis_auth::sigv4::{self, SignableRequest, VerifyParams};
use portcullis_config::{CredentialScope, Management};

/// SigV4 clock window.
const MAX_CLOCK_SKEW: Duration = Duration::from_secs(300);

/// Why a signed API refused a caller.
#[derive(Debug)]
pub enum Refusal {
    /// Unsigned, badly signed, unknown key or outside the clock window: told nothing more.
    Unsigned(sigv4::SigV4Error),
    /// A good signature by a credential whose `scopes` do not include the one needed.
    OutOfScope { access_key_id: String },
}

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
    let params = VerifyParams {
        region: &management.region,
        service: "execute-api",
        now: chrono::Utc::now(),
        max_skew: MAX_CLOCK_SKEW,
    };
    let secret_for = |akid: &str| {
        management
            .credentials
            .iter()
            .find(|c| c.access_key_id == akid)
            .map(|c| c.secret_access_key.expose().to_owned())
    };
    let verified = sigv4::verify(&request, &params, &secret_for).map_err(Refusal::Unsigned)?;
    let allowed = management
        .credentials
        .iter()
        .any(|c| c.access_key_id == verified.access_key_id && c.allows(scope));
    if allowed {
        Ok(())
    } else {
        Err(Refusal::OutOfScope {
            access_key_id: verified.access_key_id,
        })
    }
}
