//! `Logins` of the Cognito Identity API: `{provider: token}` where the provider is a
//! built-in pool's issuer without its scheme and the token one of its ID tokens (access
//! tokens are accepted too), verified with the pool's keys (no fetch) and checked against
//! revocation.

use std::collections::HashMap;
use std::time::Duration;

use portcullis_auth::jwt::{JwtError, JwtOptions, JwtVerifier};
use portcullis_config::{IdentityPool, JwtAuthorizer, JwtIssuer};
use serde_json::Value;

use super::errors::{IdentityError, internal, invalid_login};
use crate::IdentityProvider;
use crate::identity_pools::IamLogin;

/// Longest login token read (ID tokens with many attributes stay far below).
const MAX_LOGIN_TOKEN_BYTES: usize = 16 * 1024;

/// One built-in pool's login verifier.
struct PoolLogin {
    pool: String,
    issuer: String,
    verifier: JwtVerifier,
}

/// The verifiers of every built-in pool's tokens, by `Logins` key.
pub(super) struct Logins {
    by_provider: HashMap<String, PoolLogin>,
}

/// A login that verified and was not revoked.
pub(super) struct VerifiedLogin {
    pub(super) login: IamLogin,
    /// `cognito:groups`.
    pub(super) groups: Vec<String>,
    /// `cognito:preferred_role`.
    pub(super) preferred_role: Option<String>,
}

impl Logins {
    pub(super) fn new(idp: &IdentityProvider) -> Self {
        let mut by_provider = HashMap::new();
        for (name, state) in &idp.pools {
            let cfg = JwtAuthorizer {
                name: format!("identity-pool-login:{name}"),
                identity_source: Vec::new(),
                issuers: vec![JwtIssuer {
                    issuer: state.issuer.clone(),
                    audience: Vec::new(),
                    jwks_uri: None,
                    ..JwtIssuer::default()
                }],
                // ID or access tokens; checked below (client-credentials tokens have no user).
                token_use: None,
                principal_claim: None,
                cache_ttl: Duration::ZERO,
                csrf: None,
            };
            let options = JwtOptions {
                max_token_bytes: MAX_LOGIN_TOKEN_BYTES,
                ..JwtOptions::default()
            };
            match JwtVerifier::new(&cfg, idp.outbound().clone(), options) {
                Ok(verifier) => {
                    verifier.set_local_keys(&state.issuer, idp.key_source(name));
                    by_provider.insert(
                        IamLogin::provider_of(&state.issuer),
                        PoolLogin {
                            pool: name.clone(),
                            issuer: state.issuer.clone(),
                            verifier,
                        },
                    );
                }
                Err(e) => {
                    tracing::error!(pool = %name, error = %e, "cognito identity API: cannot build the login verifier");
                }
            }
        }
        Logins { by_provider }
    }

    /// Whether `provider` is the `Logins` key of one of `identity_pool`'s user pools.
    pub(super) fn serves(&self, provider: &str, identity_pool: &IdentityPool) -> bool {
        self.by_provider
            .get(provider)
            .is_some_and(|e| identity_pool.user_pools.contains(&e.pool))
    }

    /// The issuer of `provider`'s pool.
    pub(super) fn issuer(&self, provider: &str) -> Option<&str> {
        self.by_provider.get(provider).map(|e| e.issuer.as_str())
    }

    /// Verifies the login `token` of `provider` for `identity_pool`.
    pub(super) async fn verify(
        &self,
        idp: &IdentityProvider,
        identity_pool: &IdentityPool,
        provider: &str,
        token: &str,
    ) -> Result<VerifiedLogin, IdentityError> {
        let Some(entry) = self
            .by_provider
            .get(provider)
            .filter(|e| identity_pool.user_pools.contains(&e.pool))
        else {
            return Err(invalid_login(super::UNKNOWN_PROVIDER));
        };
        let verified = entry
            .verifier
            .verify_at(token, idp.now())
            .await
            .map_err(|e| match e {
                JwtError::Expired => invalid_login("Token expired."),
                JwtError::KeysUnavailable(_) | JwtError::InvalidConfig(_) => internal(&e),
                other => invalid_login(&format!("{}.", capitalised(other.description()))),
            })?;
        let claims = &verified.claims;
        let text = |name: &str| claims.get(name).and_then(Value::as_str).map(str::to_owned);
        let username = match verified.token_use.as_deref() {
            Some("id") => text("cognito:username"),
            Some("access") => text("username"),
            _ => None,
        }
        .ok_or_else(|| invalid_login("Missing a required claim: cognito:username."))?;
        let sub = verified
            .subject
            .clone()
            .ok_or_else(|| invalid_login("Missing a required claim: sub."))?;
        let iat = claims
            .get("iat")
            .and_then(Value::as_i64)
            .ok_or_else(|| invalid_login("Missing a required claim: iat."))?;
        let origin_jti = text("origin_jti");
        if idp.is_revoked(origin_jti.as_deref(), &sub, iat).await {
            return Err(invalid_login("Token has been revoked."));
        }
        Ok(VerifiedLogin {
            login: IamLogin {
                issuer: entry.issuer.clone(),
                sub,
                username,
                origin_jti,
                iat,
                provider: provider.to_owned(),
            },
            groups: verified.groups.clone(),
            preferred_role: text("cognito:preferred_role"),
        })
    }
}

/// `sub` of a token before verification: only to pick which identity pool an identity id
/// belongs to (the token is verified right after, and its verified `sub` must be the same).
pub(super) fn unverified_sub(token: &str) -> Option<String> {
    use base64::Engine;
    if token.len() > MAX_LOGIN_TOKEN_BYTES {
        return None;
    }
    let payload = token.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .ok()?;
    let claims: Value = serde_json::from_slice(&bytes).ok()?;
    claims.get("sub")?.as_str().map(str::to_owned)
}

fn capitalised(text: &str) -> String {
    let mut chars = text.chars();
    chars
        .next()
        .map(|c| c.to_uppercase().chain(chars).collect())
        .unwrap_or_default()
}
