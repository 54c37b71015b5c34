//! Identity pools: temporary credentials for the users of the built-in pools (and guests),
//! tied to a role whose IAM policy the gateway enforces.
//!
//! Stateless by design: nothing is stored. A session token carries who the caller is and which
//! role it has, MACed with a key derived from the store's pepper ([`credentials`]), so any
//! node sharing the store verifies it without a lookup; only the revocation check
//! ([`IdentityProvider::is_iam_session_revoked`]) reads the store, as for user-pool tokens.
//! Identity ids are derived, not allocated: a keyed hash of issuer and subject for users, a
//! random half with a MAC half for guests. The Cognito Identity JSON API that hands these out
//! is in `crate::http::identity`; which role a user gets is [`role`].

pub mod credentials;
pub mod role;
#[cfg(test)]
mod tests;

use std::collections::HashMap;

use aws_lc_rs::hmac;
use indexmap::IndexMap;
use portcullis_config::{Config, IdentityPool, Role, Secret};

pub use credentials::IamSessionError;
use credentials::{Claims, LoginClaims};

use crate::IdentityProvider;
use crate::ratelimit::RateLimiter;

/// An open set of temporary credentials: who signs with them, as which role.
#[derive(Clone)]
pub struct IamSession {
    pub access_key_id: String,
    /// Re-derived from the session token; `Debug` never shows it.
    pub secret_access_key: Secret,
    /// Configuration name of the identity pool (`app`).
    pub identity_pool: String,
    /// `IdentityPoolId` (`us-east-1:app`).
    pub identity_pool_id: String,
    /// `us-east-1:<uuid>`.
    pub identity_id: String,
    /// Configuration name of the role (`chat-user`).
    pub role: String,
    /// `arn:aws:iam::{account}:role/{role}`.
    pub role_arn: String,
    pub authenticated: bool,
    /// The user-pool sign-in behind an authenticated session.
    pub login: Option<IamLogin>,
    /// Unix seconds.
    pub expires_at: i64,
}

impl std::fmt::Debug for IamSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IamSession")
            .field("access_key_id", &self.access_key_id)
            .field("secret_access_key", &self.secret_access_key)
            .field("identity_pool", &self.identity_pool)
            .field("identity_pool_id", &self.identity_pool_id)
            .field("identity_id", &self.identity_id)
            .field("role", &self.role)
            .field("role_arn", &self.role_arn)
            .field("authenticated", &self.authenticated)
            .field("login", &self.login)
            .field("expires_at", &self.expires_at)
            .finish()
    }
}

/// The user-pool sign-in behind authenticated credentials.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IamLogin {
    /// `http://localhost:8080/pools/main`.
    pub issuer: String,
    pub sub: String,
    pub username: String,
    /// `origin_jti` of the user-pool token (the sign-in session), when it has one.
    pub origin_jti: Option<String>,
    /// `iat` of the user-pool token.
    pub iat: i64,
    /// The `Logins` key: the issuer without its scheme (`localhost:8080/pools/main`).
    pub provider: String,
}

impl IamLogin {
    /// The `Logins` key of `issuer`: the issuer without `http://` / `https://`.
    pub fn provider_of(issuer: &str) -> String {
        issuer
            .strip_prefix("https://")
            .or_else(|| issuer.strip_prefix("http://"))
            .unwrap_or(issuer)
            .to_owned()
    }
}

/// Temporary credentials as `GetCredentialsForIdentity` returns them.
pub struct IamCredentials {
    pub access_key_id: String,
    pub secret_access_key: Secret,
    pub session_token: String,
    /// Unix seconds.
    pub expiration: i64,
}

/// The identity pools and roles of the configuration, and the key K.
pub(crate) struct IamState {
    pub(crate) pools: IndexMap<String, IdentityPool>,
    pub(crate) roles: IndexMap<String, Role>,
    /// `IdentityPoolId` → configuration name.
    pub(crate) by_id: HashMap<String, String>,
    pub(crate) key: hmac::Key,
    /// `[management] account_id`.
    pub(crate) account_id: String,
    /// Each identity pool's `rate_limit_per_ip`, by name; absent when 0 (off).
    pub(crate) limiters: HashMap<String, RateLimiter>,
}

impl IamState {
    pub(crate) fn new(config: &Config, pepper_key: &hmac::Key, max_entries: usize) -> Self {
        IamState {
            account_id: config.management.account_id.clone(),
            limiters: config
                .identity_pools
                .values()
                .filter(|p| p.rate_limit_per_ip > 0)
                .map(|p| {
                    let rate = p.rate_limit_per_ip;
                    let limiter =
                        RateLimiter::new(f64::from(rate), rate.saturating_mul(2), max_entries);
                    (p.name.clone(), limiter)
                })
                .collect(),
            pools: config.identity_pools.clone(),
            roles: config.roles.clone(),
            by_id: config
                .identity_pools
                .values()
                .map(|p| (p.id.clone(), p.name.clone()))
                .collect(),
            key: credentials::derive_key(pepper_key),
        }
    }
}

impl IdentityProvider {
    /// The identity pool whose `IdentityPoolId` is `id`.
    pub fn identity_pool_by_id(&self, id: &str) -> Option<&IdentityPool> {
        let name = self.iam.by_id.get(id)?;
        self.iam.pools.get(name)
    }

    /// The `[management] account_id` (of role ARNs).
    pub fn account_id(&self) -> &str {
        &self.iam.account_id
    }

    /// Takes one request of `ip` from identity pool `pool`'s rate limit; false when it is used
    /// up. Pools without a limit always allow.
    pub(crate) fn allow_identity_request(&self, pool: &str, ip: std::net::IpAddr) -> bool {
        self.iam.limiters.get(pool).is_none_or(|l| l.allow(ip))
    }

    /// The configured roles, by name.
    pub fn roles(&self) -> &IndexMap<String, Role> {
        &self.iam.roles
    }

    /// Mints credentials of `role` for `identity_id` of identity pool `pool` (configuration
    /// name), valid for the pool's `credentials_ttl` from `now`. `login` is `None` for guests.
    pub fn mint_iam_credentials(
        &self,
        pool: &str,
        identity_id: &str,
        role: &str,
        login: Option<&IamLogin>,
        now: i64,
    ) -> Result<IamCredentials, IamSessionError> {
        let config = self
            .iam
            .pools
            .get(pool)
            .ok_or(IamSessionError::UnknownPool)?;
        if !self.iam.roles.contains_key(role) {
            return Err(IamSessionError::UnknownPool);
        }
        let mut random = [0u8; 10];
        aws_lc_rs::rand::fill(&mut random).map_err(|_| IamSessionError::Malformed)?;
        let access_key_id = credentials::access_key_id(&random);
        let ttl = i64::try_from(config.credentials_ttl.as_secs()).unwrap_or(i64::MAX);
        let exp = now.saturating_add(ttl);
        let claims = Claims::new(
            access_key_id.clone(),
            pool.to_owned(),
            identity_id.to_owned(),
            role.to_owned(),
            login.map(|l| LoginClaims {
                iss: l.issuer.clone(),
                sub: l.sub.clone(),
                u: l.username.clone(),
                oj: l.origin_jti.clone(),
                iat: l.iat,
            }),
            exp,
        );
        let (session_token, secret) =
            credentials::mint(&self.iam.key, &claims).ok_or(IamSessionError::Malformed)?;
        Ok(IamCredentials {
            access_key_id,
            secret_access_key: Secret::new(secret),
            session_token,
            expiration: exp,
        })
    }

    /// Checks the session token's MAC and expiry and that it belongs to `access_key_id`;
    /// returns the session with its re-derived secret. Pure CPU, no store access. `now` =
    /// unix seconds.
    pub fn open_iam_session(
        &self,
        access_key_id: &str,
        session_token: &str,
        now: i64,
    ) -> Result<IamSession, IamSessionError> {
        let (claims, secret) = credentials::open(&self.iam.key, access_key_id, session_token, now)?;
        let pool = self
            .iam
            .pools
            .get(&claims.ip)
            .ok_or(IamSessionError::UnknownPool)?;
        let role = self
            .iam
            .roles
            .get(&claims.r)
            .ok_or(IamSessionError::UnknownPool)?;
        // A token minted as authenticated always carries its login, and only then.
        if claims.a != claims.l.is_some() {
            return Err(IamSessionError::Malformed);
        }
        Ok(IamSession {
            access_key_id: claims.ak,
            secret_access_key: Secret::new(secret),
            identity_pool: pool.name.clone(),
            identity_pool_id: pool.id.clone(),
            identity_id: claims.id,
            role: role.name.clone(),
            role_arn: role.arn.clone(),
            authenticated: claims.a,
            login: claims.l.map(|l| IamLogin {
                provider: IamLogin::provider_of(&l.iss),
                issuer: l.iss,
                sub: l.sub,
                username: l.u,
                origin_jti: l.oj,
                iat: l.iat,
            }),
            expires_at: claims.exp,
        })
    }

    /// True when the user behind an authenticated session was revoked (disabled, deleted,
    /// global sign-out, session revoked). Always false for unauthenticated sessions.
    pub async fn is_iam_session_revoked(&self, session: &IamSession) -> bool {
        match &session.login {
            Some(login) => {
                self.is_revoked(login.origin_jti.as_deref(), &login.sub, login.iat)
                    .await
            }
            None => false,
        }
    }
}
