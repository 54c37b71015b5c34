//! Every HTTP face of the identity provider, and where each path goes.
//!
//! - [`oauth`]: the OAuth2/OIDC endpoints (discovery, JWKS, token, revoke, `userInfo`,
//!   `logout`);
//! - [`hosted`]: the hosted sign-in page of the authorization-code flow;
//! - [`cookie_session`]: cookie sessions for browser pages on the gateway's origin;
//! - [`admin`]: the identity admin API (`/admin/...`; the gateway serves it on its admin
//!   listener after checking the caller);
//! - [`cognito`]: the Cognito JSON API (`POST /` with `X-Amz-Target`), a router of its own,
//!   which hands the identity pool targets to [`identity`] (the Cognito Identity JSON API);
//! - [`reply`]: what they share (the JSON reply, RFC 6749 errors, the form reader, the
//!   per-address rate limit, cookies); [`page`]: the HTML of the hosted pages.
//!
//! [`router`] is mounted by the binary on the public listener; [`cognito_router`] on the
//! gateway's public side at `/`.

use std::sync::Arc;

use axum::Router;

use crate::IdentityProvider;

pub mod admin;
pub mod cognito;
pub mod cookie_session;
mod hosted;
pub mod identity;
pub(crate) mod json11;
pub mod oauth;
pub(crate) mod page;
pub(crate) mod reply;

pub use cognito::{CognitoOptions, cognito_router, cognito_router_with};
pub use reply::MAX_BODY_BYTES;

/// The router for every configured pool under `/pools/{pool}/…`:
///
/// | path | face |
/// |---|---|
/// | `/.well-known/openid-configuration`, `/.well-known/jwks.json` | [`oauth`] |
/// | `/oauth2/token`, `/oauth2/revoke`, `/oauth2/userInfo`, `/logout` | [`oauth`] |
/// | `/oauth2/authorize`, `/login` | [`hosted`] |
/// | `/session`, `/session/refresh`, `/session/logout` | [`cookie_session`] |
pub fn router(idp: Arc<IdentityProvider>) -> Router {
    Router::new()
        .merge(oauth::routes())
        .merge(hosted::routes())
        .merge(cookie_session::routes())
        .with_state(idp)
}
