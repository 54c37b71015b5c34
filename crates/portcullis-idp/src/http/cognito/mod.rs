//! The public subset of the native `cognito-idp` JSON API (cognito.md §4): `POST /` with
//! `X-Amz-Target: AWSCognitoIdentityProviderService.<Operation>`, body
//! `application/x-amz-json-1.1`.
//!
//! Operations: `SignUp`, `ConfirmSignUp`, `ResendConfirmationCode`, `InitiateAuth` (`USER_SRP_AUTH`,
//! `USER_PASSWORD_AUTH`, `REFRESH_TOKEN_AUTH`/`REFRESH_TOKEN`), `RespondToAuthChallenge`
//! (`PASSWORD_VERIFIER`, `NEW_PASSWORD_REQUIRED`),
//! `GetUser`, `UpdateUserAttributes`, `ChangePassword`, `GlobalSignOut`, `RevokeToken`,
//! `ForgotPassword`, `ConfirmForgotPassword`; TOTP MFA ([`mfa`]): `AssociateSoftwareToken`,
//! `VerifySoftwareToken`, `SetUserMFAPreference`, the `SOFTWARE_TOKEN_MFA` and `MFA_SETUP`
//! challenges. Which attributes users may write is
//! [`crate::attributes`]'s rule.
//! The signed Admin operations (`AdminCreateUser`, `ListUsers`, groups, `AdminInitiateAuth`,
//! `DescribeUserPool`, …) are [`admin`]'s, dispatched before the public ones.
//!
//! Design choices:
//! * The app client id selects the pool (client ids are unique across pools); clients are looked
//!   up in the pools' configuration the provider keeps in memory. `SECRET_HASH` is verified with
//!   the plaintext client secret from that configuration (the store keeps only a keyed hash of it,
//!   which cannot serve as an HMAC key); the configuration already holds it as a `Secret`.
//! * Each client's `auth_flows` says which `InitiateAuth` flows it may start: by default
//!   `USER_SRP_AUTH`, `USER_PASSWORD_AUTH` with the `password` grant (the default of public
//!   clients) and `REFRESH_TOKEN_AUTH` with the `refresh_token` grant.
//! * SRP ([`srp`]): users keep a salt and verifier, never needed in the clear again; the
//!   `PASSWORD_VERIFIER` challenge is stateless (a sealed `SECRET_BLOCK` any node opens, valid
//!   5 minutes, answered once: its id is recorded with the challenge sessions), the claim's
//!   `TIMESTAMP` must be within 5 minutes of the clock, and unknown users get a fake challenge
//!   of the same shape that fails like a wrong password. A wrong signature counts toward the
//!   lockout as a wrong password does; a correct one gets what a correct password gets.
//! * User existence is not revealed (PreventUserExistenceErrors = ENABLED): unknown users and
//!   wrong passwords both get `NotAuthorizedException` (after a dummy Argon2 verification, or
//!   the SRP check against a fake verifier, so timing does not tell either). `ForgotPassword` and `ResendConfirmationCode` issue a code
//!   for every name (one nobody receives when the user is unknown, disabled or in the wrong
//!   state), answer the same masked `CodeDeliveryDetails` for all, and the same limits count
//!   every name; `ConfirmSignUp` and `ConfirmForgotPassword` answer `CodeMismatchException`
//!   whatever the user's state. `UserNotConfirmedException` is only returned after a correct
//!   password.
//! * Lockout (§6.5): 5 failures, then 2^(n−5) s (cap 15 min), reset after 15 min without
//!   attempts; kept in the user's `failed_attempts`/`locked_until` columns.
//! * Confirmation / reset codes (6 digits) are bounded per pool ([`crate::pending::confirmation`]:
//!   HMAC of the code, expiry, attempts per code, codes per hour and wrong guesses per hour
//!   across codes per user, live codes per client address); `NEW_PASSWORD_REQUIRED` sessions
//!   are bounded too ([`crate::pending::challenges`], SHA-256 of the session only). Both are
//!   kept in the identity store (`codes.rs`), so each step may reach another gateway node and
//!   they survive a restart. A code goes to
//!   the pool's `code_webhook` ([`crate::delivery`]) when it has one, else into an info-level
//!   log line; [`CognitoOptions::on_code`] sees it either way.
//! * `SignUp` issues the code before it creates the user (a refused sign-up leaves no user),
//!   and replaces an `UNCONFIRMED` self-signed-up user whose code has expired, so a name is not
//!   held forever by a sign-up nobody confirms.
//! * Rate limit: the pool's `rate_limit_per_ip` (shared with its token endpoint and hosted
//!   login) covers the operations that check passwords or codes or issue codes.
//!
//! Files: this one dispatches operations and holds what they share; [`sign_in`] (flows and
//! challenges), [`srp`] (`USER_SRP_AUTH` and `PASSWORD_VERIFIER`), [`sign_up`] (sign-up, confirmation, forgotten passwords and their codes),
//! [`user`] (a signed-in user's own operations), [`errors`], [`options`].
#![allow(clippy::result_large_err)]

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use aws_lc_rs::hmac;
use axum::Router;
use axum::extract::{Request, State};
use axum::response::Response;
use axum::routing::post;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use http::StatusCode;
use portcullis_auth::jwt::{JwtOptions, JwtVerifier};
use portcullis_config::{AppClient, JwtAuthorizer, JwtIssuer, Secret};
use serde_json::{Map, Value};

use crate::delivery::{CodePurpose, CodeWebhooks};
use crate::http::json11::{Call, answer, read_call};
use crate::store::UserRecord;
use crate::{ClientAuth, IdentityProvider};

mod admin;
mod codes;
mod errors;
mod mfa;
mod options;
mod sign_in;
mod sign_up;
mod srp;
#[cfg(test)]
mod tests;
mod triggers;
mod user;

pub use errors::{CognitoError, ErrorType};
pub use options::{Clock, CognitoOptions};

use errors::{ErrorType as E, err, invalid_parameter, not_authorized, password_answer};

const TARGET_PREFIX: &str = "AWSCognitoIdentityProviderService.";
/// Scope Cognito puts in tokens from the JSON API; GetUser & co. require it.
const ADMIN_SCOPE: &str = "aws.cognito.signin.user.admin";

/// A user's codes of one purpose (what a code's HMAC binds).
type CodeKey = (String, CodePurpose);

/// State of the JSON API router.
struct Cognito {
    idp: Arc<IdentityProvider>,
    options: CognitoOptions,
    /// The pools' `code_webhook`s.
    webhooks: CodeWebhooks,
    verifier: Option<JwtVerifier>,
    /// issuer → pool name.
    issuers: HashMap<String, String>,
    /// The Cognito Identity API (identity pools), served at the same `POST /`.
    identity: crate::http::identity::IdentityApi,
}

/// The JSON API router (`POST /`), default options.
pub fn cognito_router(idp: Arc<IdentityProvider>) -> Router {
    cognito_router_with(idp, CognitoOptions::default())
}

/// The JSON API router with explicit options (e.g. a code callback for tests).
pub fn cognito_router_with(idp: Arc<IdentityProvider>, options: CognitoOptions) -> Router {
    let mut issuers = HashMap::new();
    let mut jwt_issuers = Vec::new();
    for (name, state) in &idp.pools {
        issuers.insert(state.issuer.clone(), name.clone());
        jwt_issuers.push(JwtIssuer {
            issuer: state.issuer.clone(),
            audience: state.config.clients.keys().cloned().collect(),
            jwks_uri: None,
            ..JwtIssuer::default()
        });
    }
    let verifier = if jwt_issuers.is_empty() {
        None
    } else {
        let cfg = JwtAuthorizer {
            name: "cognito-json-api".into(),
            identity_source: Vec::new(),
            issuers: jwt_issuers,
            token_use: Some("access".into()),
            principal_claim: None,
            cache_ttl: Duration::from_secs(0),
            csrf: None,
        };
        match JwtVerifier::new(&cfg, idp.outbound().clone(), JwtOptions::default()) {
            Ok(v) => {
                for (name, state) in &idp.pools {
                    v.set_local_keys(&state.issuer, idp.key_source(name));
                }
                Some(v)
            }
            Err(e) => {
                tracing::error!(error = %e, "cognito API: cannot build the access token verifier");
                None
            }
        }
    };
    let state = Arc::new(Cognito {
        identity: crate::http::identity::IdentityApi::new(Arc::clone(&idp)),
        webhooks: CodeWebhooks::new(
            idp.pools.iter().map(|(name, s)| (name, &s.config)),
            idp.outbound(),
        ),
        idp,
        options,
        verifier,
        issuers,
    });
    Router::new().route("/", post(handle)).with_state(state)
}

async fn handle(State(c): State<Arc<Cognito>>, request: Request) -> Response {
    if crate::http::identity::is_identity_target(request.headers()) {
        return c.identity.handle(request).await;
    }
    if let Some(operation) = admin::admin_operation(request.headers(), TARGET_PREFIX) {
        let operation = operation.to_owned();
        return c.admin_call(operation, request).await;
    }
    match handle_inner(&c, request).await {
        Ok(body) => answer(StatusCode::OK, &body),
        Err(e) => e.into_response(),
    }
}

async fn handle_inner(c: &Cognito, request: Request) -> Result<Value, CognitoError> {
    let Call {
        operation,
        mut body,
        ip,
    } = read_call(request, TARGET_PREFIX).await?;
    // Every operation finds users under their stored (NFKC) name.
    crate::username::normalize_request_fields(&mut body);
    // The pool's rate limit, for the operations that guess passwords or codes, burn Argon2 or
    // issue codes. The app client selects the pool (ChangePassword: its token, checked there);
    // an unknown client is answered without costing anything.
    let rate_limited = matches!(
        operation.as_str(),
        "InitiateAuth"
            | "RespondToAuthChallenge"
            | "GetTokensFromRefreshToken"
            | "SignUp"
            | "ConfirmSignUp"
            | "ResendConfirmationCode"
            | "ForgotPassword"
            | "ConfirmForgotPassword"
    );
    if rate_limited
        && let Some(ip) = ip
        && let Some(Value::String(client_id)) = body.get("ClientId")
        && let Ok((pool, _)) = c.client(client_id)
    {
        c.check_rate(pool, ip)?;
    }
    match operation.as_str() {
        "SignUp" => c.sign_up(&body, ip).await,
        "ConfirmSignUp" => c.confirm_sign_up(&body).await,
        "ResendConfirmationCode" => c.resend_confirmation_code(&body, ip).await,
        "InitiateAuth" => c.initiate_auth(&body).await,
        "RespondToAuthChallenge" => c.respond_to_auth_challenge(&body).await,
        "GetTokensFromRefreshToken" => c.get_tokens_from_refresh_token(&body).await,
        "GetUser" => c.get_user(&body).await,
        "ChangePassword" => c.change_password(&body, ip).await,
        "GlobalSignOut" => c.global_sign_out(&body).await,
        "RevokeToken" => c.revoke_token(&body).await,
        "ForgotPassword" => c.forgot_password(&body, ip).await,
        "ConfirmForgotPassword" => c.confirm_forgot_password(&body).await,
        "UpdateUserAttributes" => c.update_user_attributes(&body).await,
        "AssociateSoftwareToken" => c.associate_software_token(&body).await,
        "VerifySoftwareToken" => c.verify_software_token(&body).await,
        "SetUserMFAPreference" => c.set_user_mfa_preference(&body).await,
        _ => Err(err(
            E::UnknownOperation,
            "The operation is not supported by this server",
        )),
    }
}

// ---- request fields ----

type Body = Map<String, Value>;

fn opt_str<'a>(obj: &'a Body, name: &str) -> Result<Option<&'a str>, CognitoError> {
    match obj.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.as_str())),
        Some(_) => Err(err(E::Serialization, format!("{name} must be a string"))),
    }
}

fn req_str<'a>(obj: &'a Body, name: &str) -> Result<&'a str, CognitoError> {
    match opt_str(obj, name)? {
        Some(s) if !s.is_empty() => Ok(s),
        _ => Err(invalid_parameter(format!(
            "Missing required parameter {name}"
        ))),
    }
}

fn opt_map<'a>(obj: &'a Body, name: &str) -> Result<Option<&'a Body>, CognitoError> {
    match obj.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Object(m)) => Ok(Some(m)),
        Some(_) => Err(err(E::Serialization, format!("{name} must be a map"))),
    }
}

fn attribute_list(obj: &Body, name: &str) -> Result<BTreeMap<String, String>, CognitoError> {
    let mut out = BTreeMap::new();
    match obj.get(name) {
        None | Some(Value::Null) => {}
        Some(Value::Array(items)) => {
            for item in items {
                let name = item.get("Name").and_then(Value::as_str);
                let value = item.get("Value").and_then(Value::as_str).unwrap_or("");
                let Some(name) = name else {
                    return Err(invalid_parameter("Attribute name is missing"));
                };
                if out.insert(name.to_owned(), value.to_owned()).is_some() {
                    return Err(invalid_parameter(format!("Duplicate attribute {name}")));
                }
            }
        }
        Some(_) => {
            return Err(err(E::Serialization, format!("{name} must be a list")));
        }
    }
    Ok(out)
}

impl Cognito {
    /// `pool`'s `rate_limit_per_ip` for the caller's address.
    fn check_rate(&self, pool: &str, ip: IpAddr) -> Result<(), CognitoError> {
        if self.idp.allow_request(pool, ip) {
            Ok(())
        } else {
            Err(err(E::TooManyRequests, "Too many requests"))
        }
    }

    /// The pool and configuration of an app client.
    fn client(&self, client_id: &str) -> Result<(&str, &AppClient), CognitoError> {
        self.idp
            .pools
            .iter()
            .find_map(|(name, state)| {
                state
                    .config
                    .clients
                    .get(client_id)
                    .map(|c| (name.as_str(), c))
            })
            .ok_or_else(|| {
                err(
                    E::ResourceNotFound,
                    format!("User pool client {client_id} does not exist."),
                )
            })
    }

    /// Checks `SECRET_HASH` for clients that have a secret (constant-time comparison).
    fn check_secret_hash(
        client: &AppClient,
        username: &str,
        given: Option<&str>,
    ) -> Result<(), CognitoError> {
        let Some(secret) = &client.secret else {
            return Ok(());
        };
        let Some(given) = given.filter(|g| !g.is_empty()) else {
            return Err(not_authorized(format!(
                "Client {} is configured with secret but SECRET_HASH was not received",
                client.client_id
            )));
        };
        let mismatch = || {
            not_authorized(format!(
                "Unable to verify secret hash for client {}",
                client.client_id
            ))
        };
        let tag = STANDARD.decode(given.trim()).map_err(|_| mismatch())?;
        let key = hmac::Key::new(hmac::HMAC_SHA256, secret.expose().as_bytes());
        let mut msg = Vec::with_capacity(username.len() + client.client_id.len());
        msg.extend_from_slice(username.as_bytes());
        msg.extend_from_slice(client.client_id.as_bytes());
        hmac::verify(&key, &msg, &tag).map_err(|_| mismatch())
    }

    fn client_auth(client: &AppClient) -> ClientAuth {
        ClientAuth {
            client_id: client.client_id.clone(),
            secret: client.secret.clone(),
            basic: false,
        }
    }

    // ---- passwords and lockout ----

    /// Verifies a user's password with lockout. `Ok(user)` when it matches (counters reset).
    async fn verify_with_lockout(
        &self,
        user: UserRecord,
        password: &Secret,
    ) -> Result<UserRecord, CognitoError> {
        password_answer(self.idp.verify_password_with_lockout(user, password).await)
    }
}
