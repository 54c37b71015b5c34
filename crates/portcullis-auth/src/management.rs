//! Who may call the signed management APIs: a SigV4 signature by one of the `[management]
//! credentials` for the API's service (`execute-api` for `@connections` and `/admin/...`,
//! `cognito-idp` for the Cognito `Admin*` operations) and the configured region, within the
//! clock window, by a credential that holds the API's scope. One check for every such API, so
//! they cannot drift apart; signature comparison is constant-time (see [`crate::sigv4`]).

use std::time::Duration;

use chrono::{DateTime, Utc};
use portcullis_config::{CredentialScope, Management};

use crate::sigv4::{self, SignableRequest, VerifyParams};

/// SigV4 clock window: how far `X-Amz-Date` may be from the server's clock.
pub const MAX_CLOCK_SKEW: Duration = Duration::from_secs(300);

/// Why a signed API refused a caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// Unsigned, badly signed, unknown key or outside the clock window.
    Unsigned(sigv4::SigV4Error),
    /// A good signature by a credential whose `scopes` do not include the one needed.
    OutOfScope { access_key_id: String },
}

/// Verifies `request`'s SigV4 signature for `service` against the `[management] credentials`
/// at time `now`, then that the signing credential holds `scope`. Answers the access key id.
pub fn authenticate(
    management: &Management,
    request: &SignableRequest,
    service: &str,
    scope: CredentialScope,
    now: DateTime<Utc>,
) -> Result<String, Refusal> {
    let params = VerifyParams {
        region: &management.region,
        service,
        now,
        max_skew: MAX_CLOCK_SKEW,
    };
    let secret_for = |akid: &str| {
        management
            .credentials
            .iter()
            .find(|c| c.access_key_id == akid)
            .map(|c| c.secret_access_key.expose().to_owned())
    };
    let verified = sigv4::verify(request, &params, &secret_for).map_err(Refusal::Unsigned)?;
    let allowed = management
        .credentials
        .iter()
        .any(|c| c.access_key_id == verified.access_key_id && c.allows(scope));
    if allowed {
        Ok(verified.access_key_id)
    } else {
        Err(Refusal::OutOfScope {
            access_key_id: verified.access_key_id,
        })
    }
}
