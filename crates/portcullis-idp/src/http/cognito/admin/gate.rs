//! Who may call the Admin API: a SigV4 signature (service `cognito-idp`, the `[management]`
//! region, within 5 minutes of the clock, over the exact body) by a `[management]` credential
//! with the `admin` scope — `portcullis_auth::management`'s check, shared with `@connections`
//! and the identity admin API.
//!
//! Answers, as CONTRACT §6–7 has them: anything short of a good signature is
//! `NotAuthorizedException` (400) with AWS's message for the case (unsigned, unknown key, bad
//! signature, outside the clock window); a good signature by a credential without the `admin`
//! scope is `AccessDeniedException` (403). Neither tells which credentials exist.

use http::request::Parts;
use portcullis_auth::management::{self, Refusal};
use portcullis_auth::sigv4::{SigV4Error, SignableRequest};
use portcullis_config::{CredentialScope, Management};

use super::super::errors::{CognitoError, ErrorType as E, err, not_authorized};

/// The service name clients sign Cognito calls for.
pub const SERVICE: &str = "cognito-idp";

/// Checks the signature of a call of `operation` and the scope of its credential.
pub(super) fn check(
    management: Option<&Management>,
    operation: &str,
    parts: &Parts,
    body: &[u8],
) -> Result<(), CognitoError> {
    let Some(management) = management else {
        return Err(not_authorized(
            "The security token included in the request is invalid.",
        ));
    };
    let mut headers: Vec<(&str, &str)> = parts
        .headers
        .iter()
        .filter_map(|(n, v)| v.to_str().ok().map(|v| (n.as_str(), v)))
        .collect();
    // over HTTP/2 the host is the URI's authority
    let authority = parts.uri.authority().map(|a| a.as_str());
    if !parts.headers.contains_key(http::header::HOST)
        && let Some(authority) = authority
    {
        headers.push(("host", authority));
    }
    let request = SignableRequest {
        method: parts.method.as_str(),
        path: parts.uri.path(),
        query: parts.uri.query().unwrap_or(""),
        headers: &headers,
        body,
    };
    match management::authenticate(
        management,
        &request,
        SERVICE,
        CredentialScope::Admin,
        chrono::Utc::now(),
    ) {
        Ok(_) => Ok(()),
        Err(refusal) => Err(refused(refusal, operation, &management.region)),
    }
}

/// The answer to a refused call.
fn refused(refusal: Refusal, operation: &str, region: &str) -> CognitoError {
    match refusal {
        Refusal::Unsigned(e) => {
            tracing::debug!(operation, reason = %e, "cognito admin call refused");
            not_authorized(unsigned_message(&e, region))
        }
        Refusal::OutOfScope { access_key_id } => {
            tracing::warn!(
                operation,
                access_key_id,
                "cognito admin call by a credential without the admin scope"
            );
            err(
                E::AccessDenied,
                format!(
                    "User: {access_key_id} is not authorized to perform: cognito-idp:{operation} \
                     (the credential lacks the \"admin\" scope)"
                ),
            )
        }
    }
}

/// AWS's message for each way a signature fails.
pub(super) fn unsigned_message(e: &SigV4Error, region: &str) -> String {
    match e {
        SigV4Error::Missing => "Missing Authentication Token".into(),
        SigV4Error::UnknownAccessKey => {
            "The security token included in the request is invalid.".into()
        }
        SigV4Error::SignatureMismatch => "The request signature we calculated does not match \
             the signature you provided. Check your AWS Secret Access Key and signing method."
            .into(),
        SigV4Error::Expired => {
            "Signature expired: the request time is more than 5 minutes away from the \
             server's time."
                .into()
        }
        SigV4Error::WrongScope => format!(
            "Credential should be scoped to a valid region ({region}) and service \
             ({SERVICE})."
        ),
        SigV4Error::Malformed(why) => format!("Authorization header is malformed: {why}"),
    }
}
