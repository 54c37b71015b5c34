//! `authorization = "AWS_IAM"`: requests signed with SigV4 (service `execute-api`, the
//! `[management]` region) by temporary credentials of an identity pool, and the role's IAM
//! policy as the judge of every route they use.
//!
//! * The credentials are stateless ([`IdentityProvider::open_iam_session`]): the session token
//!   (`X-Amz-Security-Token`, header or query) is opened, the secret it derives checks the
//!   signature; only identity-pool credentials are accepted (no token, no caller).
//! * The user behind authenticated credentials must not be revoked (disabled, deleted, signed
//!   out everywhere); the connection is filed under that user's session so a later revocation
//!   closes it. Credentials expiring during a connection do not close it (API Gateway's rule:
//!   the connection was authorized when it opened).
//! * Every refusal is a 403 `{"message":"Forbidden"}`; the reason is logged at info (never the
//!   signature or the token).
//! * The principal (`@users` pushes, throttling) is the user-pool `sub` of the login, as for a
//!   `jwt` authorizer on a built-in pool; an unauthenticated identity is its identity id.

use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use portcullis_auth::sigv4::{self, SigV4Error, SignableRequest, VerifyParams};
use portcullis_config::Config;
use portcullis_core::caller::CallerIdentity;
use portcullis_core::policy::PolicyDocument;
use portcullis_idp::IdentityProvider;
use portcullis_idp::identity_pools::IamSession;
use serde_json::value::RawValue;

use crate::authorizers::{IamAccess, Identity};
use crate::session_key::LiveSession;

/// SigV4 clock window (AWS: 15 minutes; the admin listener's 5 minutes here too).
const MAX_CLOCK_SKEW: Duration = Duration::from_secs(300);
/// The service name clients sign for.
const SERVICE: &str = "execute-api";

/// Why an `AWS_IAM` request was refused (always a 403 to the caller).
#[derive(Debug, thiserror::Error)]
pub enum IamRefusal {
    #[error("{0}")]
    Signature(SigV4Error),
    #[error("credentials refused: {0}")]
    Credentials(String),
    #[error("the user behind the credentials was revoked")]
    Revoked,
    #[error("role {0:?} is not configured")]
    UnknownRole(String),
    #[error("the role's policy does not allow {0}")]
    Denied(String),
}

/// Verifies identity-pool credentials and holds the roles' policies.
pub struct Iam {
    idp: Arc<IdentityProvider>,
    roles: HashMap<String, Arc<PolicyDocument>>,
    region: String,
    account_id: String,
}

impl Iam {
    /// `None` when the configuration declares no identity pool (no `AWS_IAM` API can exist).
    pub fn new(config: &Config, idp: Option<&Arc<IdentityProvider>>) -> Option<Iam> {
        if config.identity_pools.is_empty() {
            return None;
        }
        let idp = idp?.clone();
        let roles = config
            .roles
            .iter()
            .map(|(name, role)| (name.clone(), Arc::new(role.policy.clone())))
            .collect();
        Some(Iam {
            idp,
            roles,
            region: config.management.region.clone(),
            account_id: config.management.account_id.clone(),
        })
    }

    /// Checks `req`'s signature (header or presigned form) with the identity-pool credentials
    /// it names, that their user is not revoked, and that their role's policy allows `arn`.
    pub async fn authenticate(
        &self,
        req: &SignableRequest<'_>,
        arn: &str,
    ) -> Result<Identity, IamRefusal> {
        let session = self.verify(req, chrono::Utc::now())?;
        if self.idp.is_iam_session_revoked(&session).await {
            return Err(IamRefusal::Revoked);
        }
        let policy = self
            .roles
            .get(&session.role)
            .cloned()
            .ok_or_else(|| IamRefusal::UnknownRole(session.role.clone()))?;
        let access = IamAccess {
            caller: self.caller(&session),
            role: session.role.clone(),
            policy,
        };
        if !access.allows(arn) {
            return Err(IamRefusal::Denied(arn.to_owned()));
        }
        Ok(identity(&session, access))
    }

    /// The signature check alone: the opened session when `req` is signed by it.
    fn verify(
        &self,
        req: &SignableRequest<'_>,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<IamSession, IamRefusal> {
        let token = security_token(req);
        let params = VerifyParams {
            region: &self.region,
            service: SERVICE,
            now,
            max_skew: MAX_CLOCK_SKEW,
        };
        let opened: RefCell<Option<Result<IamSession, String>>> = RefCell::new(None);
        let secret_for = |access_key_id: &str| {
            let token = token.as_deref()?;
            match self
                .idp
                .open_iam_session(access_key_id, token, now.timestamp())
            {
                Ok(session) => {
                    let secret = secret_of(&session);
                    opened.replace(Some(Ok(session)));
                    Some(secret)
                }
                Err(e) => {
                    opened.replace(Some(Err(e.to_string())));
                    None
                }
            }
        };
        let verified = sigv4::verify(req, &params, &secret_for);
        match (verified, opened.into_inner()) {
            (Ok(_), Some(Ok(session))) => Ok(session),
            (Err(SigV4Error::UnknownAccessKey), Some(Err(e))) => Err(IamRefusal::Credentials(e)),
            (Err(SigV4Error::UnknownAccessKey), None) if token.is_none() => {
                Err(IamRefusal::Credentials(
                    "no X-Amz-Security-Token: only identity-pool credentials are accepted".into(),
                ))
            }
            (Err(e), _) => Err(IamRefusal::Signature(e)),
            (Ok(_), _) => Err(IamRefusal::Credentials("credentials not opened".into())),
        }
    }

    fn caller(&self, session: &IamSession) -> CallerIdentity {
        CallerIdentity {
            account_id: self.account_id.clone(),
            access_key: session.access_key_id.clone(),
            role_arn: session.role_arn.clone(),
            role_name: session.role.clone(),
            identity_id: session.identity_id.clone(),
            identity_pool_id: session.identity_pool_id.clone(),
            authenticated: session.authenticated,
            login: session
                .login
                .as_ref()
                .map(|l| (l.provider.clone(), l.sub.clone())),
        }
    }
}

/// The secret the session derives, for the signature check only.
fn secret_of(session: &IamSession) -> String {
    session.secret_access_key.expose().to_owned()
}

/// `X-Amz-Security-Token` of the header form, else of the presigned query.
fn security_token(req: &SignableRequest<'_>) -> Option<String> {
    req.headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case("x-amz-security-token"))
        .map(|(_, v)| v.trim().to_owned())
        .or_else(|| {
            req.query
                .split('&')
                .filter_map(|pair| pair.split_once('='))
                .find(|(k, _)| *k == "X-Amz-Security-Token")
                .map(|(_, v)| {
                    percent_encoding::percent_decode_str(v)
                        .decode_utf8_lossy()
                        .into_owned()
                })
        })
        .filter(|t| !t.is_empty())
}

/// The identity an `AWS_IAM` caller has for the life of its connection (or request).
fn identity(session: &IamSession, access: IamAccess) -> Identity {
    let login = session.login.as_ref();
    Identity {
        principal_id: Some(login.map_or_else(|| session.identity_id.clone(), |l| l.sub.clone())),
        // API Gateway gives IAM callers no `requestContext.authorizer` on WebSocket events;
        // HTTP events get `{"iam": ...}` (see `http_context`).
        context: null(),
        scopes: Vec::new(),
        groups: Vec::new(),
        answer: None,
        session: login.map(|l| LiveSession {
            issuer: l.issuer.clone(),
            sub: l.sub.clone(),
            origin_jti: l.origin_jti.clone(),
            iat: l.iat,
        }),
        iam: Some(Arc::new(access)),
    }
}

/// `requestContext.authorizer` of an HTTP API event for an `AWS_IAM` caller.
pub fn http_context(access: &IamAccess) -> Box<RawValue> {
    serde_json::value::to_raw_value(&access.caller.http_authorizer()).unwrap_or_else(|_| null())
}

fn null() -> Box<RawValue> {
    RawValue::from_string("null".to_owned()).unwrap_or_default()
}

#[cfg(test)]
mod tests;
