//! The Cognito Identity JSON API (identity pools): `POST /` with `X-Amz-Target:
//! AWSCognitoIdentityService.<Operation>`, body `application/x-amz-json-1.1`, unsigned, as
//! boto3's `cognito-identity` client and the AWS SDKs send it.
//!
//! Operations: `GetId`, `GetCredentialsForIdentity`, `GetOpenIdToken`. Nothing is stored
//! ([`crate::identity_pools`]): a user's identity id is a keyed hash of the identity pool,
//! issuer and subject (so `GetId` is idempotent), a guest's is random with a MAC half (so a
//! later call can tell it was handed out here), and the identity pool of a
//! `GetCredentialsForIdentity` is the one whose id derivation matches.
//!
//! Design choices:
//! * `Logins` holds at most one entry: `{"localhost:8080/pools/main": "<ID token>"}` (an
//!   access token of the pool is accepted too). Its provider must be a user pool of the
//!   identity pool; the token must verify with the pool's keys and not be revoked.
//! * Role: see [`crate::identity_pools::role`]. `CustomRoleArn` of a guest must be the
//!   unauthenticated role's.
//! * `GetOpenIdToken` answers an RS256 token signed with a built-in pool's key (the login's
//!   pool; for guests the identity pool's first user pool, else the first configured pool):
//!   `iss` = `{public_url}/identity-pools/{name}`, `sub` = the identity id, `aud` = the
//!   identity pool id, `amr` as Cognito, 10 minutes. Its keys are that pool's JWKS
//!   (`/pools/{pool}/.well-known/jwks.json`); there is no discovery document at its `iss`.
//! * Rate limit: the identity pool's `rate_limit_per_ip` covers every operation, checked
//!   before any token is verified.
#![allow(clippy::result_large_err)]

mod errors;
mod login;
#[cfg(test)]
mod tests;

use std::net::IpAddr;
use std::sync::Arc;

use axum::extract::Request;
use axum::response::Response;
use http::{HeaderMap, StatusCode};
use portcullis_config::IdentityPool;
use serde_json::{Map, Value, json};

pub use errors::{IdentityError, IdentityErrorType};

use crate::IdentityProvider;
use crate::http::json11::{Call, answer, read_call};
use crate::identity_pools::credentials;
use crate::identity_pools::role::{RoleChoiceError, RoleRequest, choose_role};
use errors::{
    IdentityErrorType as E, err, internal, invalid_login, invalid_parameter, not_authorized,
};
use login::{Logins, VerifiedLogin};

/// `X-Amz-Target` prefix of this API.
pub const TARGET_PREFIX: &str = "AWSCognitoIdentityService.";
/// Longest identity id or identity pool id (Cognito: 55).
const MAX_ID_LEN: usize = 55;
/// Lifetime of `GetOpenIdToken` tokens (Cognito's default: 10 minutes).
const OPEN_ID_TOKEN_TTL: i64 = 600;

type Body = Map<String, Value>;

/// Whether a request's `X-Amz-Target` is for this API.
pub fn is_identity_target(headers: &HeaderMap) -> bool {
    headers
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|t| t.starts_with(TARGET_PREFIX))
}

/// State of the API: the provider and the login verifiers of its pools.
pub struct IdentityApi {
    idp: Arc<IdentityProvider>,
    logins: Logins,
}

/// Who a request speaks for, once resolved.
struct Caller<'a> {
    pool: &'a IdentityPool,
    identity_id: String,
    login: Option<VerifiedLogin>,
}

impl IdentityApi {
    pub fn new(idp: Arc<IdentityProvider>) -> Self {
        IdentityApi {
            logins: Logins::new(&idp),
            idp,
        }
    }

    /// Answers one request (`POST /` with this API's target).
    pub async fn handle(&self, request: Request) -> Response {
        match self.handle_inner(request).await {
            Ok(body) => answer(StatusCode::OK, &body),
            Err(e) => e.into_response(),
        }
    }

    async fn handle_inner(&self, request: Request) -> Result<Value, IdentityError> {
        let Call {
            operation,
            body,
            ip,
        } = read_call(request, TARGET_PREFIX).await?;
        match operation.as_str() {
            "GetId" => self.get_id(&body, ip).await,
            "GetCredentialsForIdentity" => self.get_credentials_for_identity(&body, ip).await,
            "GetOpenIdToken" => self.get_open_id_token(&body, ip).await,
            _ => Err(err(
                E::UnknownOperation,
                "The operation is not supported by this server",
            )),
        }
    }

    /// `GetId`: the identity id of the login (or a new guest id).
    async fn get_id(&self, body: &Body, ip: Option<IpAddr>) -> Result<Value, IdentityError> {
        let pool_id = req_str(body, "IdentityPoolId")?;
        let not_found = || {
            err(
                E::ResourceNotFound,
                format!("IdentityPool '{pool_id}' not found."),
            )
        };
        let pool = self
            .idp
            .identity_pool_by_id(pool_id)
            .ok_or_else(not_found)?;
        if opt_str(body, "AccountId")?.is_some_and(|a| a != self.idp.account_id()) {
            return Err(not_found());
        }
        self.check_rate(pool, ip)?;
        let identity_id = match logins(body)? {
            Some((provider, token)) => {
                let login = self.logins.verify(&self.idp, pool, provider, token).await?;
                self.user_identity_id(pool, &login)
            }
            None => {
                guests_allowed(pool)?;
                let mut random = [0u8; 8];
                aws_lc_rs::rand::fill(&mut random).map_err(|e| internal(&e))?;
                credentials::guest_identity_id(&self.idp.iam.key, &pool.id, random)
            }
        };
        Ok(json!({ "IdentityId": identity_id }))
    }

    /// `GetCredentialsForIdentity`: temporary credentials of the identity's role.
    async fn get_credentials_for_identity(
        &self,
        body: &Body,
        ip: Option<IpAddr>,
    ) -> Result<Value, IdentityError> {
        let caller = self.caller(body, ip).await?;
        let custom_role_arn = opt_str(body, "CustomRoleArn")?;
        let role = match &caller.login {
            Some(login) => {
                let request = RoleRequest {
                    groups: &login.groups,
                    preferred_role: login.preferred_role.as_deref(),
                    custom_role_arn,
                };
                choose_role(caller.pool, self.idp.roles(), &request).map_err(|e| match e {
                    RoleChoiceError::NotAllowed => {
                        not_authorized("The CustomRoleArn is not a role this user may assume.")
                    }
                    RoleChoiceError::NoRole => no_role(),
                })?
            }
            None => {
                let role = caller
                    .pool
                    .roles
                    .unauthenticated
                    .clone()
                    .ok_or_else(no_role)?;
                let arn = self.idp.roles().get(&role).map(|r| r.arn.as_str());
                if custom_role_arn.is_some_and(|c| Some(c) != arn) {
                    return Err(not_authorized(
                        "The CustomRoleArn is not a role this identity may assume.",
                    ));
                }
                role
            }
        };
        let creds = self
            .idp
            .mint_iam_credentials(
                &caller.pool.name,
                &caller.identity_id,
                &role,
                caller.login.as_ref().map(|l| &l.login),
                self.idp.now(),
            )
            .map_err(|e| internal(&e))?;
        Ok(json!({
            "IdentityId": caller.identity_id,
            "Credentials": {
                "AccessKeyId": creds.access_key_id,
                "SecretKey": creds.secret_access_key.expose(),
                "SessionToken": creds.session_token,
                "Expiration": creds.expiration,
            },
        }))
    }

    /// `GetOpenIdToken`: an OpenID Connect token for the identity.
    async fn get_open_id_token(
        &self,
        body: &Body,
        ip: Option<IpAddr>,
    ) -> Result<Value, IdentityError> {
        let caller = self.caller(body, ip).await?;
        let now = self.idp.now();
        let amr = match &caller.login {
            Some(l) => json!([
                "authenticated",
                l.login.provider,
                format!("{}:CognitoSignIn:{}", l.login.provider, l.login.sub),
            ]),
            None => json!(["unauthenticated"]),
        };
        let claims = json!({
            "iss": format!("{}/identity-pools/{}", self.idp.public_url, caller.pool.name),
            "sub": caller.identity_id,
            "aud": caller.pool.id,
            "amr": amr,
            "iat": now,
            "exp": now.saturating_add(OPEN_ID_TOKEN_TTL),
            "jti": crate::tokens::uuid_v4(),
        });
        let signer = caller
            .login
            .as_ref()
            .and_then(|l| self.idp.pools.values().find(|p| p.issuer == l.login.issuer))
            .or_else(|| {
                caller
                    .pool
                    .user_pools
                    .iter()
                    .find_map(|p| self.idp.pools.get(p))
            })
            .or_else(|| {
                let first = self.idp.pool_names().into_iter().next()?;
                self.idp.pools.get(&first)
            })
            .ok_or_else(|| {
                err(
                    E::InvalidIdentityPoolConfiguration,
                    "GetOpenIdToken needs a user pool ([pools.*]) to sign with.",
                )
            })?;
        let token = signer.sign(&claims, now).map_err(|e| internal(&e))?;
        Ok(json!({ "IdentityId": caller.identity_id, "Token": token.expose() }))
    }

    /// The identity pool, identity id and login of a request naming an `IdentityId`.
    async fn caller(&self, body: &Body, ip: Option<IpAddr>) -> Result<Caller<'_>, IdentityError> {
        let identity_id = req_str(body, "IdentityId")?;
        if identity_id.len() > MAX_ID_LEN || !identity_id.contains(':') {
            return Err(invalid_parameter(
                "1 validation error detected: Value at 'identityId' failed to satisfy constraint",
            ));
        }
        let key = &self.idp.iam.key;
        let pools = self.idp.iam.pools.values();
        match logins(body)? {
            Some((provider, token)) => {
                // Which identity pool the id belongs to is found from the token's (not yet
                // verified) subject, so that only that pool's rate limit is charged; the
                // token is then verified, and its verified subject must give the same id.
                let issuer = self
                    .logins
                    .issuer(provider)
                    .ok_or_else(|| invalid_login(UNKNOWN_PROVIDER))?;
                let sub = login::unverified_sub(token)
                    .ok_or_else(|| invalid_login("The token is malformed."))?;
                let pool = pools
                    .filter(|p| self.logins.serves(provider, p))
                    .find(|p| {
                        credentials::authenticated_identity_id(key, &p.id, issuer, &sub)
                            == identity_id
                    })
                    .ok_or_else(logins_mismatch)?;
                self.check_rate(pool, ip)?;
                let login = self.logins.verify(&self.idp, pool, provider, token).await?;
                if self.user_identity_id(pool, &login) != identity_id {
                    return Err(logins_mismatch());
                }
                Ok(Caller {
                    pool,
                    identity_id: identity_id.to_owned(),
                    login: Some(login),
                })
            }
            None => {
                let pool = pools
                    .into_iter()
                    .find(|p| credentials::is_guest_identity_id(key, &p.id, identity_id))
                    .ok_or_else(|| {
                        not_authorized(format!("Access to Identity '{identity_id}' is forbidden."))
                    })?;
                self.check_rate(pool, ip)?;
                guests_allowed(pool)?;
                Ok(Caller {
                    pool,
                    identity_id: identity_id.to_owned(),
                    login: None,
                })
            }
        }
    }

    fn user_identity_id(&self, pool: &IdentityPool, login: &VerifiedLogin) -> String {
        credentials::authenticated_identity_id(
            &self.idp.iam.key,
            &pool.id,
            &login.login.issuer,
            &login.login.sub,
        )
    }

    fn check_rate(&self, pool: &IdentityPool, ip: Option<IpAddr>) -> Result<(), IdentityError> {
        match ip {
            Some(ip) if !self.idp.allow_identity_request(&pool.name, ip) => {
                Err(err(E::TooManyRequests, "Too many requests"))
            }
            _ => Ok(()),
        }
    }
}

/// A `Logins` key that is no user pool of the identity pool.
const UNKNOWN_PROVIDER: &str =
    "Issuer doesn't match providerName: the provider is not a user pool of this identity pool.";

fn logins_mismatch() -> IdentityError {
    not_authorized(
        "Logins don't match. Please include at least one valid login for this identity or identity pool.",
    )
}

fn guests_allowed(pool: &IdentityPool) -> Result<(), IdentityError> {
    if pool.allow_unauthenticated {
        Ok(())
    } else {
        Err(not_authorized(
            "Unauthenticated access is not supported for this identity pool.",
        ))
    }
}

fn no_role() -> IdentityError {
    err(
        E::InvalidIdentityPoolConfiguration,
        "Invalid identity pool configuration. Check assigned IAM roles for this pool.",
    )
}

// ---- request fields ----

fn opt_str<'a>(obj: &'a Body, name: &str) -> Result<Option<&'a str>, IdentityError> {
    match obj.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.as_str())),
        Some(_) => Err(err(E::Serialization, format!("{name} must be a string"))),
    }
}

fn req_str<'a>(obj: &'a Body, name: &str) -> Result<&'a str, IdentityError> {
    match opt_str(obj, name)? {
        Some(s) if !s.is_empty() => Ok(s),
        _ => Err(invalid_parameter(format!(
            "Missing required parameter {name}"
        ))),
    }
}

/// The one `Logins` entry, if any (an empty map is no login).
fn logins(body: &Body) -> Result<Option<(&str, &str)>, IdentityError> {
    let map = match body.get("Logins") {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::Object(map)) => map,
        Some(_) => return Err(err(E::Serialization, "Logins must be a map")),
    };
    let mut entries = map.iter();
    let Some((provider, token)) = entries.next() else {
        return Ok(None);
    };
    if entries.next().is_some() {
        return Err(invalid_parameter(
            "Logins: only one login provider per request is supported",
        ));
    }
    let token = token
        .as_str()
        .ok_or_else(|| err(E::Serialization, "Logins values must be strings"))?;
    Ok(Some((provider.as_str(), token)))
}
