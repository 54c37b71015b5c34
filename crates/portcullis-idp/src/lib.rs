//! The built-in identity provider: Cognito-like user pools for Portcullis.
//!
//! This crate owns the identity store ([`store`]: SQLite by default, PostgreSQL for shared
//! deployments, with their migrations), user passwords ([`password`]: policy and Argon2id),
//! the pools' RSA signing keys and their rotation ([`keys`]), token minting with Cognito's claim
//! sets ([`tokens`]), what waits between two requests of a sign-in ([`pending`], with the
//! authorization-code flow in [`oauth_code`]), every HTTP face under [`http`] (the OAuth2/OIDC
//! endpoints: discovery, JWKS, token, revoke, userInfo, logout; the hosted sign-in page with
//! authorization code + PKCE; cookie sessions for pages on the gateway's origin; the Cognito
//! JSON API; the identity admin API) with the axum [`router`], code delivery to webhooks
//! ([`delivery`]), the [`IdentityProvider`] facade the binary and the CLI use, the [`manage`]
//! operations shared by
//! the CLI and the gateway's admin HTTP API, what users may write ([`attributes`]: the pool's
//! attribute schema; [`username`]: normalised usernames without look-alikes), and revocation
//! ([`revocation`]: which live sessions a revocation covers, and the store's revocation log
//! through which revocations made by one process reach the live connections of another), and
//! identity pools ([`identity_pools`]: temporary credentials of a role for the pools' users,
//! verifiable by any node sharing the store, with the Cognito Identity API in
//! [`http::identity`]). It does not verify tokens for routes (that is `portcullis-auth`, which reads this crate's keys
//! through [`KeySource`](portcullis_auth::jwt::KeySource)).
//!
//! The provider's operations are split by domain, one `impl IdentityProvider` per file:
//! [`provider`] (opening, configuration, accessors), [`users`], [`sign_in`] (password checks
//! with [`lockout`]), [`sessions`] and [`grants`] (the token and revocation endpoints),
//! [`keys`] (rotation), [`revocation`] and [`groups`] (declared and API-created groups). Errors are in [`error`], tunables in [`options`].
//! The arithmetic of Cognito's SRP sign-in (verifiers, challenges, claim signatures) and its
//! sealed `SECRET_BLOCK` are in [`srp`], without I/O; users' verifiers are set in [`users`],
//! claims are checked with lockout in [`sign_in`], and the JSON API serves the exchange.
//! The pools' Cognito Lambda triggers (webhooks or functions the gateway runs) are in
//! [`triggers`].
//! Multi-factor sign-in with TOTP software tokens (codes, sealed secrets, what follows the
//! password under a pool's `mfa`, codes checked with lockout and replay protection) is [`mfa`].
#![cfg_attr(test, allow(clippy::unwrap_used))]

pub mod attributes;
pub mod delivery;
pub mod error;
pub mod grants;
pub mod groups;
pub mod http;
pub mod identity_pools;
pub mod keys;
pub mod lockout;
pub mod manage;
pub mod mfa;
pub mod mint;
pub mod oauth_code;
pub mod options;
pub mod password;
pub mod pending;
pub(crate) mod pool;
pub mod provider;
pub mod ratelimit;
pub mod revocation;
pub mod sessions;
pub mod sign_in;
pub mod srp;
pub mod store;
pub mod tokens;
pub mod triggers;
pub mod username;
pub mod users;

#[cfg(test)]
mod cluster_tests;
#[cfg(test)]
mod session_tests;
#[cfg(test)]
mod tests;

pub use error::{IdpError, OAuthError};
pub use grants::{ClientAuth, TokenGrant};
pub use http::router;
pub use http::{CognitoOptions, cognito_router, cognito_router_with};
pub use lockout::{LOCK_AFTER, LOCK_CAP_SECS, LOCK_RESET_SECS};
pub use options::{Clock, IdpOptions};
pub use password::{PasswordHasher, PolicyViolation};
pub use portcullis_core::fault::{Fault, HasFault};
pub use provider::IdentityProvider;
pub use revocation::{LiveSession, Revocation, RevocationPoll};
pub use sessions::SessionTokens;
pub use sign_in::PasswordCheck;
pub use store::{
    ClientRecord, ResourceServerRecord, RevocationEventRecord, RevokedSubject, Store, StoreError,
    UserRecord, UserStatus,
};
pub use users::{MAX_LIST_USERS, UserDetails};

pub(crate) use options::{secs, unix_now};
