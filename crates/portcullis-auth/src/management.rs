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

#[cfg(test)]
mod tests {
    use portcullis_config::{Credential, Secret};

    use super::*;

    fn management() -> Management {
        let credential = |akid: &str, secret: &str, scopes: Vec<CredentialScope>| Credential {
            access_key_id: akid.into(),
            secret_access_key: Secret::new(secret),
            scopes,
        };
        Management {
            credentials: vec![
                credential("AKIDADMIN", "admin-secret", vec![CredentialScope::Admin]),
                credential(
                    "AKIDPUSH",
                    "push-secret",
                    vec![CredentialScope::Connections],
                ),
            ],
            region: "us-east-1".into(),
            account_id: "000000000000".into(),
        }
    }

    /// Checks a call signed by `akid`/`secret` for `service` at `signed_at`, verified at `now`.
    fn check(
        akid: &str,
        secret: &str,
        service: &str,
        signed_at: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<String, Refusal> {
        let headers = [("host", "idp.local"), ("x-amz-target", "Svc.ListUsers")];
        let body = br#"{"UserPoolId":"us-east-1_main"}"#;
        let request = SignableRequest {
            method: "POST",
            path: "/",
            query: "",
            headers: &headers,
            body,
        };
        let added = sigv4::sign(&request, akid, secret, "us-east-1", service, signed_at);
        let mut all: Vec<(&str, &str)> = headers.to_vec();
        all.extend(added.iter().map(|(n, v)| (n.as_str(), v.as_str())));
        let signed = SignableRequest {
            headers: &all,
            ..request
        };
        authenticate(
            &management(),
            &signed,
            "cognito-idp",
            CredentialScope::Admin,
            now,
        )
    }

    #[test]
    fn a_signature_by_a_credential_of_the_scope_passes_and_nothing_else() {
        let now = Utc::now();
        let at = |secs: i64| now - chrono::Duration::seconds(secs);
        assert_eq!(
            check("AKIDADMIN", "admin-secret", "cognito-idp", now, now),
            Ok("AKIDADMIN".into())
        );
        assert_eq!(
            check("AKIDPUSH", "push-secret", "cognito-idp", now, now),
            Err(Refusal::OutOfScope {
                access_key_id: "AKIDPUSH".into()
            })
        );
        let unsigned = |r: Result<String, Refusal>| match r {
            Err(Refusal::Unsigned(e)) => e,
            other => panic!("expected a refusal, got {other:?}"),
        };
        assert_eq!(
            unsigned(check("AKIDADMIN", "wrong", "cognito-idp", now, now)),
            sigv4::SigV4Error::SignatureMismatch
        );
        assert_eq!(
            unsigned(check("AKIDNOBODY", "admin-secret", "cognito-idp", now, now)),
            sigv4::SigV4Error::UnknownAccessKey
        );
        assert_eq!(
            unsigned(check("AKIDADMIN", "admin-secret", "execute-api", now, now)),
            sigv4::SigV4Error::WrongScope
        );
        // within the window, and a replay after it
        assert!(check("AKIDADMIN", "admin-secret", "cognito-idp", at(290), now).is_ok());
        assert_eq!(
            unsigned(check(
                "AKIDADMIN",
                "admin-secret",
                "cognito-idp",
                at(301),
                now
            )),
            sigv4::SigV4Error::Expired
        );
    }
}
