//! JWT verification for `jwt` authorizers: several trusted issuers per authorizer, their keys
//! fetched from JWKS endpoints (or an in-process [`KeySource`]) or a shared secret ([`hmac`]),
//! claims checked as API Gateway's HTTP JWT authorizer does.
//!
//! Order of work for one token ([`JwtVerifier::verify`]), cheapest and least trusting first:
//! 1. size bound, then the compact form ([`token`]): three base64url parts, JSON header and
//!    payload, a known `alg` (never `none`), optional string `kid`, no `crit`;
//! 2. the issuer, chosen by exact match of the (still unverified) `iss` with a configured one;
//!    its configuration decides the kind of key: a shared-secret issuer takes only the HMAC
//!    algorithms listed for it, a JWKS issuer only asymmetric ones (those listed, if any), so
//!    an `HS256` token can never be checked against a public key (algorithm confusion);
//! 3. the key, by `kid` from that issuer's keys only ([`jwks`]); a key of another type or curve
//!    than `alg` needs, or whose JWK pins another `alg`, is refused ([`keys`]);
//! 4. the signature or MAC (aws-lc-rs, keys parsed when the JWKS was loaded; MACs compared in
//!    constant time);
//! 5. the claims ([`claims`]): `exp`, `nbf`, `iat` with clock skew, audience / `client_id`,
//!    `token_use`.
//!
//! What this module does not do: find the token in a request (identity sources), check a
//! route's scopes or groups against the token (the caller, with [`VerifiedToken::has_any_scope`]),
//! revocation. Errors and logs never contain a token, a signature or key material.

mod claims;
pub mod hmac;
mod jwks;
mod keys;
mod token;

#[cfg(test)]
mod tests;

#[cfg(test)]
mod attacks;

use portcullis_core::fault::{Fault, HasFault};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::{Map, Value};

pub use keys::{Algorithm, Jwk, Jwks, KeySource};

use claims::ClaimRules;
pub use hmac::HmacAlgorithm;
use hmac::HmacIssuer;
use jwks::IssuerKeys;
use portcullis_config::{JwsAlgorithm, MIN_HMAC_SECRET_BYTES};
use token::TokenAlgorithm;

/// Bounds and timings of JWT verification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JwtOptions {
    /// Allowed clock difference for `exp`, `nbf`, `iat`. Default 60 s.
    pub clock_skew: Duration,
    /// Least time between two JWKS fetches for one issuer (unknown `kid`s). Default 30 s.
    pub min_refresh_interval: Duration,
    /// Time allowed for one discovery or JWKS request, body included. Default 1.5 s (AWS).
    pub fetch_timeout: Duration,
    /// Largest discovery or JWKS body read. Default 150 000 bytes (AWS).
    pub max_jwks_bytes: usize,
    /// Largest token accepted, checked before decoding. Default 16 KiB.
    pub max_token_bytes: usize,
}

impl Default for JwtOptions {
    fn default() -> Self {
        JwtOptions {
            clock_skew: Duration::from_secs(60),
            min_refresh_interval: Duration::from_secs(30),
            fetch_timeout: Duration::from_millis(1500),
            max_jwks_bytes: 150_000,
            max_token_bytes: 16 * 1024,
        }
    }
}

/// Why a token was refused. Every variant is the client's fault except
/// [`JwtError::KeysUnavailable`] (the issuer's JWKS could not be fetched) and
/// [`JwtError::InvalidConfig`]; all of them mean 401 to the client.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JwtError {
    #[error("malformed token: {0}")]
    Malformed(&'static str),
    #[error("token larger than allowed")]
    TooLarge,
    /// The header's `alg` (sanitised, at most 16 characters) is not an accepted algorithm.
    #[error("unsupported signing algorithm {0:?}")]
    UnsupportedAlgorithm(String),
    #[error("token from an issuer this authorizer does not trust")]
    UnknownIssuer,
    #[error("token without kid while the issuer has several keys")]
    MissingKeyId,
    #[error("token signed with a key the issuer does not publish")]
    UnknownKey,
    #[error("the signing key does not fit the token's algorithm")]
    KeyMismatch,
    #[error("bad signature")]
    BadSignature,
    #[error("token expired")]
    Expired,
    #[error("token not valid yet (nbf)")]
    NotYetValid,
    #[error("token issued in the future (iat)")]
    IssuedInFuture,
    #[error("token audience not accepted")]
    WrongAudience,
    #[error("token_use not accepted")]
    WrongTokenUse,
    /// Fetching the issuer's discovery document or JWKS failed (reason without URL).
    #[error("issuer keys unavailable: {0}")]
    KeysUnavailable(String),
    #[error("invalid jwt authorizer configuration: {0}")]
    InvalidConfig(String),
}

impl JwtError {
    /// Text for `WWW-Authenticate: Bearer error="invalid_token" error_description="..."`, worded
    /// like API Gateway's where known.
    pub fn description(&self) -> &'static str {
        match self {
            JwtError::Malformed(_) => "the token is malformed",
            JwtError::TooLarge => "the token is too large",
            JwtError::UnsupportedAlgorithm(_) => "the token's signing algorithm is not supported",
            JwtError::UnknownIssuer => "the token does not have a valid issuer",
            JwtError::MissingKeyId => "the token does not name its signing key",
            JwtError::UnknownKey => "the token's signing key is not known",
            JwtError::KeyMismatch => "the token's signing key does not match its algorithm",
            JwtError::BadSignature => "the token signature is invalid",
            JwtError::Expired => "the token has expired",
            JwtError::NotYetValid => "the token is not valid yet",
            JwtError::IssuedInFuture => "the token was issued in the future",
            JwtError::WrongAudience => "the token does not have a valid audience",
            JwtError::WrongTokenUse => "the token does not have a valid token_use",
            JwtError::KeysUnavailable(_) => "the issuer's signing keys are unavailable",
            JwtError::InvalidConfig(_) => "the authorizer is misconfigured",
        }
    }
}

impl HasFault for JwtError {
    /// The request's token is at fault, except when the issuer's keys cannot be had (the
    /// issuer, a backend of the gateway) or the authorizer is misconfigured (the operator).
    fn fault(&self) -> Fault {
        match self {
            JwtError::KeysUnavailable(_) => Fault::Backend,
            JwtError::InvalidConfig(_) => Fault::Operator,
            _ => Fault::Client,
        }
    }
}

/// A token whose signature and claims verified.
#[derive(Debug, Clone, PartialEq)]
pub struct VerifiedToken {
    pub issuer: String,
    pub subject: Option<String>,
    /// Who the token speaks for: the claim named by the authorizer's `principal_claim` (a
    /// string or an integer), else `sub`. `principalId` of events and the key of `@users`.
    pub principal: Option<String>,
    /// The whole payload.
    pub claims: Map<String, Value>,
    /// From `scope` (space-separated) or else `scp`.
    pub scopes: Vec<String>,
    /// From `cognito:groups`.
    pub groups: Vec<String>,
    pub token_use: Option<String>,
    /// `exp`, seconds since the Unix epoch.
    pub expires_at: i64,
}

impl VerifiedToken {
    /// `requestContext.authorizer` as API Gateway's HTTP JWT authorizer passes it:
    /// `{"jwt": {"claims": {name: string}, "scopes": [..]}, "principalId": sub}`. Claim values
    /// are all strings: numbers in decimal, arrays Go-style as `[a b]`, objects as compact JSON.
    /// `principalId` is the [`principal`](Self::principal), left out when there is none.
    pub fn authorizer_context(&self) -> Value {
        let claims: Map<String, Value> = self
            .claims
            .iter()
            .map(|(name, value)| (name.clone(), Value::String(claims::claim_text(value))))
            .collect();
        let mut context = Map::new();
        context.insert(
            "jwt".into(),
            serde_json::json!({ "claims": claims, "scopes": self.scopes }),
        );
        if let Some(principal) = &self.principal {
            context.insert("principalId".into(), Value::String(principal.clone()));
        }
        Value::Object(context)
    }

    /// `requestContext.authorizer` of WebSocket events: [`authorizer_context`]
    /// (Self::authorizer_context) plus every claim at the top level, as a Lambda authorizer's
    /// `context` reaches a WebSocket integration (`requestContext.authorizer.userId`), so
    /// handlers written for one read the same keys from the other (API Gateway has no JWT
    /// authorizer for WebSocket APIs to follow). Values are the same strings as in
    /// `jwt.claims`; claims named `principalId`, `jwt` or `integrationLatency` stay only in
    /// `jwt.claims`.
    pub fn websocket_authorizer_context(&self) -> Value {
        let mut context = self.authorizer_context();
        if let Value::Object(map) = &mut context {
            for (name, value) in &self.claims {
                if matches!(name.as_str(), "principalId" | "jwt" | "integrationLatency") {
                    continue;
                }
                map.insert(name.clone(), Value::String(claims::claim_text(value)));
            }
        }
        context
    }

    /// API Gateway's route-scope rule: the token has at least one of `required`; an empty
    /// `required` is satisfied by any token.
    pub fn has_any_scope(&self, required: &[String]) -> bool {
        required.is_empty() || required.iter().any(|r| self.scopes.contains(r))
    }

    /// Like [`has_any_scope`](Self::has_any_scope), for `cognito:groups`.
    pub fn has_any_group(&self, required: &[String]) -> bool {
        required.is_empty() || required.iter().any(|r| self.groups.contains(r))
    }
}

struct Inner {
    name: String,
    issuers: Vec<IssuerKeys>,
    /// Shared-secret issuers; their names never repeat one of `issuers`.
    shared: Vec<HmacIssuer>,
    token_use: Option<String>,
    principal_claim: Option<String>,
    http: reqwest::Client,
    options: JwtOptions,
}

/// The verifier of one configured `jwt` authorizer. Cloning is cheap (one `Arc`); clones share
/// the key caches.
#[derive(Clone)]
pub struct JwtVerifier {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for JwtVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JwtVerifier")
            .field("name", &self.inner.name)
            .field("issuers", &self.inner.issuers)
            .field("shared", &self.inner.shared)
            .field("token_use", &self.inner.token_use)
            .field("options", &self.inner.options)
            .finish_non_exhaustive()
    }
}

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

impl JwtVerifier {
    /// Builds the verifier; no network until the first token (or [`prefetch`](Self::prefetch)).
    /// `http` is used for discovery and JWKS requests; its redirect and TLS policy apply.
    pub fn new(
        config: &portcullis_config::JwtAuthorizer,
        http: reqwest::Client,
        options: JwtOptions,
    ) -> Result<Self, JwtError> {
        if config.issuers.is_empty() {
            return Err(JwtError::InvalidConfig(format!(
                "authorizer {:?} has no issuers",
                config.name
            )));
        }
        let mut issuers: Vec<IssuerKeys> = Vec::with_capacity(config.issuers.len());
        let mut shared: Vec<HmacIssuer> = Vec::new();
        for issuer in &config.issuers {
            if issuers.iter().any(|i| i.issuer == issuer.issuer)
                || shared.iter().any(|i| i.issuer == issuer.issuer)
            {
                return Err(JwtError::InvalidConfig(format!(
                    "authorizer {:?} lists issuer {:?} twice",
                    config.name, issuer.issuer
                )));
            }
            let invalid = |what: String| {
                JwtError::InvalidConfig(format!(
                    "authorizer {:?}, issuer {:?}: {what}",
                    config.name, issuer.issuer
                ))
            };
            match &issuer.secret {
                Some(secret) => {
                    let secret = secret
                        .load()
                        .map_err(|e| invalid(format!("cannot read secret_file: {e}")))?;
                    if secret.expose().len() < MIN_HMAC_SECRET_BYTES {
                        return Err(invalid(format!(
                            "the secret must be at least {MIN_HMAC_SECRET_BYTES} bytes"
                        )));
                    }
                    let algorithms = issuer
                        .algorithms
                        .iter()
                        .map(|a| HmacAlgorithm::from_name(a.name()))
                        .collect::<Option<Vec<_>>>()
                        .filter(|a| !a.is_empty())
                        .ok_or_else(|| invalid("needs HMAC algorithms only".into()))?;
                    shared.push(HmacIssuer::new(
                        issuer.issuer.clone(),
                        issuer.audience.clone(),
                        &algorithms,
                        secret.expose().as_bytes(),
                    ));
                }
                None => {
                    let algorithms = issuer
                        .algorithms
                        .iter()
                        .map(|a: &JwsAlgorithm| Algorithm::from_name(a.name()))
                        .collect::<Option<Vec<_>>>()
                        .ok_or_else(|| {
                            invalid("HMAC algorithms need a secret, not public keys".into())
                        })?;
                    // `jwks_uri` is an `HttpUrl`: checked when the configuration was compiled.
                    let mut keys = IssuerKeys::new(
                        issuer.issuer.clone(),
                        issuer.audience.clone(),
                        issuer.jwks_uri.as_ref().map(|u| u.as_str().to_owned()),
                    );
                    keys.algorithms = algorithms;
                    issuers.push(keys);
                }
            }
        }
        Ok(JwtVerifier {
            inner: Arc::new(Inner {
                name: config.name.clone(),
                issuers,
                shared,
                token_use: config.token_use.clone(),
                principal_claim: config.principal_claim.clone(),
                http,
                options,
            }),
        })
    }

    /// The authorizer's name.
    pub fn name(&self) -> &str {
        &self.inner.name
    }

    /// Verifies a compact JWT (no `Bearer ` prefix) and returns its verified claims.
    pub async fn verify(&self, token: &str) -> Result<VerifiedToken, JwtError> {
        self.verify_at(token, unix_now()).await
    }

    /// [`verify`](Self::verify) with an explicit clock (seconds since the Unix epoch).
    pub async fn verify_at(&self, token: &str, now: i64) -> Result<VerifiedToken, JwtError> {
        let inner = &*self.inner;
        let jws = token::parse(token, inner.options.max_token_bytes)?;
        let iss = match jws.claims.get("iss") {
            Some(Value::String(iss)) => iss.as_str(),
            Some(_) => return Err(JwtError::Malformed("iss is not a string")),
            None => return Err(JwtError::UnknownIssuer),
        };
        let unsupported = || JwtError::UnsupportedAlgorithm(jws.header.alg.name().to_owned());
        let (issuer, audience) = if let Some(shared) = inner.shared.iter().find(|i| i.issuer == iss)
        {
            // A shared-secret issuer: only a MAC with one of its algorithms.
            let TokenAlgorithm::Mac(alg) = jws.header.alg else {
                return Err(unsupported());
            };
            shared.verify(alg, jws.signing_input, &jws.signature)?;
            (&shared.issuer, &shared.audience)
        } else {
            let issuer = inner
                .issuers
                .iter()
                .find(|i| i.issuer == iss)
                .ok_or(JwtError::UnknownIssuer)?;
            // A public-key issuer: never a MAC (its public key is no secret).
            let TokenAlgorithm::Signature(alg) = jws.header.alg else {
                return Err(unsupported());
            };
            if !issuer.algorithms.is_empty() && !issuer.algorithms.contains(&alg) {
                return Err(unsupported());
            }
            let (set, index) = issuer
                .lookup(jws.header.kid.as_deref(), &inner.http, &inner.options)
                .await?;
            set.get(index).ok_or(JwtError::UnknownKey)?.verify(
                alg,
                jws.signing_input,
                &jws.signature,
            )?;
            (&issuer.issuer, &issuer.audience)
        };

        let rules = ClaimRules {
            audience,
            token_use: inner.token_use.as_deref(),
            skew: i64::try_from(inner.options.clock_skew.as_secs()).unwrap_or(i64::MAX),
        };
        let checked = claims::check(&jws.claims, &rules, now)?;
        let principal = match &inner.principal_claim {
            Some(name) => claims::principal(&jws.claims, name),
            None => checked.subject.clone(),
        };
        Ok(VerifiedToken {
            issuer: issuer.clone(),
            subject: checked.subject,
            principal,
            claims: jws.claims,
            scopes: checked.scopes,
            groups: checked.groups,
            token_use: checked.token_use,
            expires_at: checked.expires_at,
        })
    }

    /// Registers an in-process key source for `issuer` (the built-in identity provider): its
    /// keys are used instead of fetching a JWKS. Ignored (with a warning) when `issuer` is not
    /// one of this authorizer's issuers.
    pub fn set_local_keys(&self, issuer: &str, keys: Arc<dyn KeySource>) {
        match self.inner.issuers.iter().find(|i| i.issuer == issuer) {
            Some(entry) => entry.set_local(keys),
            None => tracing::warn!(
                authorizer = %self.inner.name,
                issuer,
                "set_local_keys for an issuer the authorizer does not list; ignored"
            ),
        }
    }

    /// Loads every issuer's keys that are not loaded yet (e.g. at startup, to fail early and keep
    /// the first requests fast). Returns the first failure; the other issuers are still tried.
    pub async fn prefetch(&self) -> Result<(), JwtError> {
        let mut first_error = None;
        for issuer in &self.inner.issuers {
            if let Err(e) = issuer
                .ensure_loaded(&self.inner.http, &self.inner.options)
                .await
            {
                first_error.get_or_insert(e);
            }
        }
        first_error.map_or(Ok(()), Err)
    }
}

/// Entry points for the fuzz targets in `fuzz/` (not an API).
#[doc(hidden)]
pub mod fuzzing {
    /// Parse a compact JWS as the verifier does before any key lookup.
    pub fn parse_token(token: &str) -> bool {
        super::token::parse(token, 16 * 1024).is_ok()
    }

    /// Parse a JWKS document and every key in it.
    pub fn parse_jwks(body: &[u8]) -> usize {
        match super::keys::parse_jwks(body) {
            Ok(keys) => keys
                .iter()
                .filter(|k| super::keys::VerifyingKey::from_jwk(k).is_ok())
                .count(),
            Err(_) => 0,
        }
    }
}
