//! One configured pool at run time: its configuration, issuer, keys and limits.

use std::sync::{Arc, OnceLock};

use portcullis_auth::jwt::JwtVerifier;
use portcullis_config::{Pool, Secret};

use crate::IdpError;
use crate::keys::{KeyError, PoolKeys};
use crate::ratelimit::RateLimiter;

/// One configured pool at run time.
#[derive(Debug)]
pub(crate) struct PoolState {
    pub(crate) config: Pool,
    pub(crate) issuer: String,
    pub(crate) keys: Arc<PoolKeys>,
    /// Per-client-IP limit of the pool's token, sign-in and sign-up requests
    /// (`rate_limit_per_ip`); `None` when it is 0 (off).
    pub(crate) limiter: Option<RateLimiter>,
    /// The verifier of the pool's access tokens (userInfo, revocation, cookie sessions), built
    /// on first use.
    pub(crate) access_verifier: OnceLock<JwtVerifier>,
}

/// The rate limiter of a pool: `rate_limit_per_ip` requests per second, bursts of twice that.
pub(crate) fn pool_limiter(pool: &Pool, max_entries: usize) -> Option<RateLimiter> {
    let rate = pool.rate_limit_per_ip;
    (rate > 0).then(|| RateLimiter::new(f64::from(rate), rate.saturating_mul(2), max_entries))
}

impl PoolState {
    /// Signs `claims` with the pool's key that signs at `now`.
    pub(crate) fn sign(&self, claims: &serde_json::Value, now: i64) -> Result<Secret, IdpError> {
        let ring = self.keys.ring();
        let key = ring
            .signing_key(now)
            .ok_or(IdpError::Key(KeyError("no signing key")))?;
        Ok(Secret::new(key.sign_jwt(claims)?))
    }
}
