//! The access-token verifier of a pool: checks this provider's own access tokens (signature
//! with the pool's local keys, issuer, `token_use`, expiry) for `userInfo`, cookie sessions and
//! revocation of access tokens.

use std::time::Duration;

use portcullis_auth::jwt::{JwtOptions, JwtVerifier};
use portcullis_config::{JwtAuthorizer, JwtIssuer};

use crate::IdentityProvider;

/// A verifier of `pool`'s access tokens, `None` when it cannot be built.
pub(crate) fn access_verifier(idp: &IdentityProvider, pool: &str) -> Option<JwtVerifier> {
    let issuer = idp.issuer(pool);
    let cfg = JwtAuthorizer {
        name: format!("userinfo:{pool}"),
        identity_source: vec!["$request.header.Authorization".into()],
        issuers: vec![JwtIssuer {
            issuer: issuer.clone(),
            audience: Vec::new(),
            jwks_uri: None,
        }],
        token_use: Some("access".into()),
        cache_ttl: Duration::ZERO,
        csrf: None,
    };
    let http = reqwest::Client::builder().build().ok()?;
    let verifier = JwtVerifier::new(&cfg, http, JwtOptions::default()).ok()?;
    verifier.set_local_keys(&issuer, idp.key_source(pool));
    Some(verifier)
}
