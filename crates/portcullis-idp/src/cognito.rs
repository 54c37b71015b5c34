//! The public subset of the native `cognito-idp` JSON API (cognito.md §4): `POST /` with
//! `X-Amz-Target: AWSCognitoIdentityProviderService.<Operation>`, body
//! `application/x-amz-json-1.1`.
//!
//! Operations: `SignUp`, `ConfirmSignUp`, `ResendConfirmationCode`, `InitiateAuth` (`USER_PASSWORD_AUTH`,
//! `REFRESH_TOKEN_AUTH`/`REFRESH_TOKEN`), `RespondToAuthChallenge` (`NEW_PASSWORD_REQUIRED`),
//! `GetUser`, `UpdateUserAttributes`, `ChangePassword`, `GlobalSignOut`, `RevokeToken`,
//! `ForgotPassword`, `ConfirmForgotPassword`. Which attributes users may write is
//! [`crate::attributes`]'s rule.
//!
//! Design choices:
//! * The app client id selects the pool (client ids are unique across pools); clients are looked
//!   up in the pools' configuration the provider keeps in memory. `SECRET_HASH` is verified with
//!   the plaintext client secret from that configuration (the store keeps only a keyed hash of it,
//!   which cannot serve as an HMAC key); the configuration already holds it as a `Secret`.
//! * `USER_PASSWORD_AUTH` needs the client's `password` grant (the default of public clients).
//! * User existence is not revealed (PreventUserExistenceErrors = ENABLED): unknown users and
//!   wrong passwords both get `NotAuthorizedException` (after a dummy Argon2 verification, so
//!   timing does not tell either). `ForgotPassword` and `ResendConfirmationCode` issue a code
//!   for every name (one nobody receives when the user is unknown, disabled or in the wrong
//!   state), answer the same masked `CodeDeliveryDetails` for all, and the same limits count
//!   every name; `ConfirmSignUp` and `ConfirmForgotPassword` answer `CodeMismatchException`
//!   whatever the user's state. `UserNotConfirmedException` is only returned after a correct
//!   password.
//! * Lockout (§6.5): 5 failures, then 2^(n−5) s (cap 15 min), reset after 15 min without
//!   attempts; kept in the user's `failed_attempts`/`locked_until` columns.
//! * Confirmation / reset codes (6 digits) live in a bounded book per pool ([`codes`]: HMAC of
//!   the code, expiry, attempts per code, codes per hour and wrong guesses per hour across codes
//!   per user, live codes per client address); `NEW_PASSWORD_REQUIRED` sessions in a bounded
//!   map. Both are in memory: they do not survive a restart and are per node. A code goes to
//!   the pool's `code_webhook` ([`crate::delivery`]) when it has one, else into an info-level
//!   log line; [`CognitoOptions::on_code`] sees it either way.
//! * `SignUp` issues the code before it creates the user (a refused sign-up leaves no user),
//!   and replaces an `UNCONFIRMED` self-signed-up user whose code has expired, so a name is not
//!   held forever by a sign-up nobody confirms.
//! * Rate limit: the pool's `rate_limit_per_ip` (shared with its token endpoint and hosted
//!   login) covers the operations that check passwords or codes or issue codes.
#![allow(clippy::result_large_err)]

use std::collections::{BTreeMap, HashMap};
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_lc_rs::{digest, hmac};
use axum::Router;
use axum::body::to_bytes;
use axum::extract::{ConnectInfo, Request, State};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use http::{HeaderValue, StatusCode, header};
use portcullis_auth::jwt::{JwtError, JwtOptions, JwtVerifier};
use portcullis_config::{AppClient, JwtAuthorizer, JwtIssuer, Secret};
use serde_json::{Map, Value, json};

use crate::attributes::{Writer, token_claims};
use crate::delivery::CodeWebhooks;
use crate::store::{StoreError, UserRecord, UserStatus};
use crate::{ClientAuth, IdentityProvider, IdpError, OAuthError, password, tokens, unix_now};

mod codes;
#[cfg(test)]
mod tests;
mod user_attributes;

use codes::{CheckRefusal, CodeBook, IssueRefusal};

/// Largest request body accepted.
pub const MAX_BODY_BYTES: usize = 16 * 1024;
const TARGET_PREFIX: &str = "AWSCognitoIdentityProviderService.";
const CONTENT_TYPE: &str = "application/x-amz-json-1.1";
/// Scope Cognito puts in tokens from the JSON API; GetUser & co. require it.
const ADMIN_SCOPE: &str = "aws.cognito.signin.user.admin";
const SESSION_TTL_SECS: i64 = 180;
const MSG_BAD_CREDENTIALS: &str = "Incorrect username or password.";
const MSG_LIMIT_EXCEEDED: &str = "Attempt limit exceeded, please try after some time.";
const MSG_CODE_MISMATCH: &str = "Invalid verification code provided, please try again.";

/// What a code is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CodePurpose {
    SignUp,
    ForgotPassword,
}

impl CodePurpose {
    fn as_str(self) -> &'static str {
        match self {
            CodePurpose::SignUp => "sign_up",
            CodePurpose::ForgotPassword => "forgot_password",
        }
    }
}

/// A code to deliver to a user (passed to [`CognitoOptions::on_code`]).
#[derive(Debug, Clone)]
pub struct CodeDelivery {
    pub pool: String,
    pub username: String,
    pub purpose: CodePurpose,
    pub code: Secret,
    /// The app client of the call that issued the code.
    pub client_id: String,
    /// The user's `email` attribute, if any.
    pub email: Option<String>,
    /// The user's `phone_number` attribute, if any.
    pub phone_number: Option<String>,
}

/// Called with every generated code (tests, or an in-process mailer), whether or not the pool
/// also has a `code_webhook`.
pub type CodeCallback = Arc<dyn Fn(&CodeDelivery) + Send + Sync>;

/// The JSON API's clock for codes: unix seconds. Tests use a [`manual`](Clock::manual) one,
/// which moves only by [`advance`](Clock::advance). Clones share the time.
#[derive(Debug, Clone, Default)]
pub struct Clock {
    /// Seconds added to the system clock, or (manual clocks) the time itself.
    offset: Arc<AtomicI64>,
    manual: bool,
}

impl Clock {
    /// A clock stopped at the current time.
    pub fn manual() -> Self {
        Clock {
            offset: Arc::new(AtomicI64::new(unix_now())),
            manual: true,
        }
    }

    /// Unix seconds.
    pub fn now(&self) -> i64 {
        let offset = self.offset.load(Ordering::Relaxed);
        if self.manual {
            offset
        } else {
            unix_now().saturating_add(offset)
        }
    }

    /// Moves this clock (and its clones) forward by `secs`.
    pub fn advance(&self, secs: i64) {
        self.offset.fetch_add(secs, Ordering::Relaxed);
    }
}

/// Tunables of the JSON API.
#[derive(Clone)]
pub struct CognitoOptions {
    pub on_code: Option<CodeCallback>,
    /// Lifetime of sign-up confirmation codes. Default 24 h.
    pub sign_up_code_ttl: Duration,
    /// Lifetime of password reset codes. Default 1 h.
    pub reset_code_ttl: Duration,
    /// Wrong guesses allowed per code. Default 5.
    pub max_code_attempts: u32,
    /// Codes issued per user and purpose (sign-up, reset) within [`code_window`]. Default 5.
    ///
    /// [`code_window`]: CognitoOptions::code_window
    pub codes_per_window: u32,
    /// Wrong guesses per user and purpose within [`code_window`], across codes, before the
    /// confirmation or reset of that user is locked for [`code_lock`]. Default 10.
    ///
    /// [`code_window`]: CognitoOptions::code_window
    /// [`code_lock`]: CognitoOptions::code_lock
    pub code_failures_per_window: u32,
    /// The window of the two limits above. Default 1 h.
    pub code_window: Duration,
    /// How long a confirmation or reset stays locked after too many wrong guesses. Default 1 h.
    pub code_lock: Duration,
    /// Live codes issued to one client address (IPv4 address, IPv6 /64) per pool, while the
    /// pool limits per address (`rate_limit_per_ip` > 0). Default 100.
    pub max_codes_per_ip: usize,
    /// Most pending sessions kept, and most users with code state kept per pool. Default
    /// 10,000.
    pub max_pending: usize,
    /// The clock of codes and sessions.
    pub clock: Clock,
}

impl Default for CognitoOptions {
    fn default() -> Self {
        CognitoOptions {
            on_code: None,
            sign_up_code_ttl: Duration::from_secs(86_400),
            reset_code_ttl: Duration::from_secs(3600),
            max_code_attempts: 5,
            codes_per_window: 5,
            code_failures_per_window: 10,
            code_window: Duration::from_secs(3600),
            code_lock: Duration::from_secs(3600),
            max_codes_per_ip: 100,
            max_pending: 10_000,
            clock: Clock::default(),
        }
    }
}

impl CognitoOptions {
    fn code_limits(&self) -> codes::Limits {
        codes::Limits {
            attempts_per_code: self.max_code_attempts,
            codes_per_window: self.codes_per_window,
            failures_per_window: self.code_failures_per_window.max(1),
            window_secs: crate::secs(self.code_window),
            lock_secs: crate::secs(self.code_lock),
            codes_per_client: self.max_codes_per_ip,
            max_entries: self.max_pending.max(1),
        }
    }
}

impl std::fmt::Debug for CognitoOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CognitoOptions")
            .field("on_code", &self.on_code.is_some())
            .field("max_code_attempts", &self.max_code_attempts)
            .field("codes_per_window", &self.codes_per_window)
            .field("code_failures_per_window", &self.code_failures_per_window)
            .field("max_codes_per_ip", &self.max_codes_per_ip)
            .field("max_pending", &self.max_pending)
            .finish_non_exhaustive()
    }
}

/// An error of the JSON API: `{"__type": name, "message": message}`.
#[derive(Debug, thiserror::Error)]
#[error("{name}: {message}")]
pub struct CognitoError {
    pub name: &'static str,
    pub message: String,
}

fn err(name: &'static str, message: impl Into<String>) -> CognitoError {
    CognitoError {
        name,
        message: message.into(),
    }
}

fn not_authorized(message: impl Into<String>) -> CognitoError {
    err("NotAuthorizedException", message)
}

fn invalid_parameter(message: impl Into<String>) -> CognitoError {
    err("InvalidParameterException", message)
}

fn limit_exceeded() -> CognitoError {
    err("LimitExceededException", MSG_LIMIT_EXCEEDED)
}

fn code_mismatch() -> CognitoError {
    err("CodeMismatchException", MSG_CODE_MISMATCH)
}

fn internal(e: &dyn std::fmt::Display) -> CognitoError {
    tracing::error!(error = %e, "cognito API: internal failure");
    err("InternalErrorException", "Internal error")
}

impl From<IdpError> for CognitoError {
    fn from(e: IdpError) -> Self {
        match e {
            IdpError::UserNotFound => err("UserNotFoundException", "User does not exist."),
            IdpError::UserExists | IdpError::Store(StoreError::Conflict(_)) => {
                err("UsernameExistsException", "User already exists")
            }
            IdpError::InvalidPassword(v) => err("InvalidPasswordException", v.to_string()),
            IdpError::InvalidParameter(m) => invalid_parameter(m),
            other => internal(&other),
        }
    }
}

impl From<StoreError> for CognitoError {
    fn from(e: StoreError) -> Self {
        IdpError::from(e).into()
    }
}

impl CognitoError {
    fn into_response(self) -> Response {
        let status = if self.name == "InternalErrorException" {
            StatusCode::INTERNAL_SERVER_ERROR
        } else {
            StatusCode::BAD_REQUEST
        };
        let body = json!({"__type": self.name, "message": self.message});
        let mut response = json_response(status, &body);
        if let Ok(v) = HeaderValue::from_str(&format!("{}:", self.name)) {
            response.headers_mut().insert("x-amzn-errortype", v);
        }
        response
    }
}

fn json_response(status: StatusCode, body: &Value) -> Response {
    let mut response = (status, body.to_string()).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(CONTENT_TYPE));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    if let Ok(v) = HeaderValue::from_str(&tokens::uuid_v4()) {
        headers.insert("x-amzn-requestid", v);
    }
    response
}

#[derive(Debug, Clone)]
struct PendingSession {
    pool: String,
    client_id: String,
    username: String,
    expires_at: i64,
}

/// A user's codes of one purpose, within a pool's [`CodeBook`].
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
    /// pool → its codes.
    codes: HashMap<String, Mutex<CodeBook<CodeKey>>>,
    /// SHA-256 of the session string → challenge state.
    sessions: Mutex<HashMap<Vec<u8>, PendingSession>>,
}

/// The answer to a password check: the user, or Cognito's lockout / bad-credentials error.
fn password_answer(
    check: Result<crate::PasswordCheck, IdpError>,
) -> Result<UserRecord, CognitoError> {
    match check {
        Ok(crate::PasswordCheck::Valid(user)) => Ok(user),
        Ok(crate::PasswordCheck::Locked) => Err(not_authorized("Password attempts exceeded")),
        Ok(crate::PasswordCheck::Invalid) => Err(bad_credentials()),
        Err(e) => Err(internal(&e)),
    }
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
            cache_ttl: Duration::from_secs(0),
            csrf: None,
        };
        match JwtVerifier::new(&cfg, reqwest::Client::new(), JwtOptions::default()) {
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
    let codes = idp
        .pools
        .keys()
        .map(|name| {
            (
                name.clone(),
                Mutex::new(CodeBook::new(options.code_limits())),
            )
        })
        .collect();
    let state = Arc::new(Cognito {
        webhooks: CodeWebhooks::new(idp.pools.iter().map(|(name, s)| (name, &s.config))),
        idp,
        options,
        verifier,
        issuers,
        codes,
        sessions: Mutex::new(HashMap::new()),
    });
    Router::new().route("/", post(handle)).with_state(state)
}

async fn handle(State(c): State<Arc<Cognito>>, request: Request) -> Response {
    match handle_inner(&c, request).await {
        Ok(body) => json_response(StatusCode::OK, &body),
        Err(e) => e.into_response(),
    }
}

async fn handle_inner(c: &Cognito, request: Request) -> Result<Value, CognitoError> {
    let ip = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(a)| a.ip());
    let operation = request
        .headers()
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok())
        .and_then(|t| t.strip_prefix(TARGET_PREFIX))
        .map(str::to_owned)
        .ok_or_else(|| {
            err(
                "UnknownOperationException",
                "Missing or unknown X-Amz-Target",
            )
        })?;
    let bytes = to_bytes(request.into_body(), MAX_BODY_BYTES)
        .await
        .map_err(|_| invalid_parameter("Request body too large"))?;
    let body: Value = serde_json::from_slice(&bytes)
        .map_err(|_| err("SerializationException", "Request body is not valid JSON"))?;
    let Value::Object(mut body) = body else {
        return Err(err(
            "SerializationException",
            "Request body is not a JSON object",
        ));
    };
    // Every operation finds users under their stored (NFKC) name.
    crate::username::normalize_request_fields(&mut body);
    // The pool's rate limit, for the operations that guess passwords or codes, burn Argon2 or
    // issue codes. The app client selects the pool (ChangePassword: its token, checked there);
    // an unknown client is answered without costing anything.
    let rate_limited = matches!(
        operation.as_str(),
        "InitiateAuth"
            | "RespondToAuthChallenge"
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
        "GetUser" => c.get_user(&body).await,
        "ChangePassword" => c.change_password(&body, ip).await,
        "GlobalSignOut" => c.global_sign_out(&body).await,
        "RevokeToken" => c.revoke_token(&body).await,
        "ForgotPassword" => c.forgot_password(&body, ip).await,
        "ConfirmForgotPassword" => c.confirm_forgot_password(&body).await,
        "UpdateUserAttributes" => c.update_user_attributes(&body).await,
        _ => Err(err(
            "UnknownOperationException",
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
        Some(_) => Err(err(
            "SerializationException",
            format!("{name} must be a string"),
        )),
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
        Some(_) => Err(err(
            "SerializationException",
            format!("{name} must be a map"),
        )),
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
            return Err(err(
                "SerializationException",
                format!("{name} must be a list"),
            ));
        }
    }
    Ok(out)
}

/// Who may reset a password by code: enabled users past sign-up confirmation.
fn can_reset(user: &UserRecord) -> bool {
    user.enabled && user.status != UserStatus::Unconfirmed
}

/// An `UNCONFIRMED` user that a new `SignUp` of the same name may replace: an enabled one who
/// signed up (has a password; administrators create unconfirmed users without one) longer ago
/// than a sign-up code lives, so the code of that sign-up has expired. The caller also checks
/// that no code sent later (`ResendConfirmationCode`) is still live.
fn stale_sign_up(user: &UserRecord, code_ttl: i64, now: i64) -> bool {
    user.status == UserStatus::Unconfirmed
        && user.enabled
        && user.password_hash.is_some()
        && user.created_at.saturating_add(code_ttl) <= now
}

/// [`crate::attributes::check_write`] with Cognito's error types.
fn check_attributes(
    pool: &portcullis_config::Pool,
    writer: Writer,
    attributes: &BTreeMap<String, String>,
) -> Result<(), CognitoError> {
    crate::attributes::check_write(pool, writer, attributes)
        .map_err(|e| err(e.cognito_type(), e.to_string()))
}

fn bad_credentials() -> CognitoError {
    not_authorized(MSG_BAD_CREDENTIALS)
}

/// `CodeDeliveryDetails` for a sign-up: the caller gave the address, so it is shown masked.
fn code_delivery(email: Option<&str>) -> Value {
    let destination = match email.and_then(|e| e.split_once('@')) {
        Some((local, domain)) => {
            let first: String = local.chars().take(1).collect();
            format!("{first}***@{domain}")
        }
        None => MASKED_DESTINATION.to_owned(),
    };
    json!({"Destination": destination, "DeliveryMedium": "EMAIL", "AttributeName": "email"})
}

/// The destination `ForgotPassword` and `ResendConfirmationCode` show, whoever the user is:
/// any part of a real address would tell a known name from an unknown one, and the caller of
/// these operations need not be the user.
const MASKED_DESTINATION: &str = "***";

/// `CodeDeliveryDetails` of `ForgotPassword` and `ResendConfirmationCode`: the same for every
/// name.
fn masked_code_delivery() -> Value {
    code_delivery(None)
}

/// A uniformly random 6-digit code.
fn random_code() -> Result<String, CognitoError> {
    loop {
        let mut b = [0u8; 4];
        aws_lc_rs::rand::fill(&mut b).map_err(|_| internal(&"no randomness"))?;
        let n = u32::from_be_bytes(b);
        // reject the top partial range to avoid modulo bias
        if n < 4_294_000_000 {
            return Ok(format!("{:06}", n % 1_000_000));
        }
    }
}

impl Cognito {
    /// `pool`'s `rate_limit_per_ip` for the caller's address.
    fn check_rate(&self, pool: &str, ip: IpAddr) -> Result<(), CognitoError> {
        if self.idp.allow_request(pool, ip) {
            Ok(())
        } else {
            Err(err("TooManyRequestsException", "Too many requests"))
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
                    "ResourceNotFoundException",
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

    // ---- codes ----

    /// HMAC of a code, bound to its pool, user and purpose.
    fn code_mac(&self, pool: &str, key: &CodeKey, code: &str) -> Vec<u8> {
        let mut ctx = hmac::Context::with_key(&self.idp.secret_key);
        for part in [pool, key.0.as_str(), key.1.as_str(), code] {
            ctx.update(part.as_bytes());
            ctx.update(&[0]);
        }
        ctx.sign().as_ref().to_vec()
    }

    fn code_book(
        &self,
        pool: &str,
    ) -> Result<std::sync::MutexGuard<'_, CodeBook<CodeKey>>, CognitoError> {
        let book = self
            .codes
            .get(pool)
            .ok_or_else(|| internal(&format_args!("no code book for pool {pool}")))?;
        Ok(match book.lock() {
            Ok(b) => b,
            Err(p) => p.into_inner(),
        })
    }

    /// Generates a code for `username` and stores its HMAC (the code is not delivered yet).
    /// The same for every name, known or not: whether to deliver is up to the caller.
    /// `new_account`: the first code of a sign-up ([`CodeBook::start`]).
    fn reserve_code(
        &self,
        pool: &str,
        username: &str,
        purpose: CodePurpose,
        ip: Option<IpAddr>,
        new_account: bool,
    ) -> Result<Secret, CognitoError> {
        let code = random_code()?;
        let key: CodeKey = (username.to_owned(), purpose);
        let ttl = match purpose {
            CodePurpose::SignUp => self.options.sign_up_code_ttl,
            CodePurpose::ForgotPassword => self.options.reset_code_ttl,
        };
        let mac = self.code_mac(pool, &key, &code);
        // the per-address share applies where the pool limits per address at all (behind a
        // reverse proxy, `rate_limit_per_ip = 0` turns both off)
        let per_address = self.idp.pool(pool)?.config.rate_limit_per_ip > 0;
        let origin = ip
            .filter(|_| per_address)
            .map(portcullis_core::client::client_key);
        let now = self.options.clock.now();
        let expires_at = now.saturating_add(crate::secs(ttl));
        let mut book = self.code_book(pool)?;
        let issued = if new_account {
            book.start(&key, mac, expires_at, origin, now)
        } else {
            book.issue(&key, mac, expires_at, origin, now)
        };
        drop(book);
        issued.map_err(|refusal| {
            let reason = match refusal {
                IssueRefusal::TooManyCodes => "codes per window",
                IssueRefusal::Locked => "locked after wrong guesses",
                IssueRefusal::ClientFull => "codes per client address",
            };
            tracing::info!(pool, purpose = purpose.as_str(), reason, "code refused");
            limit_exceeded()
        })?;
        Ok(Secret::new(code))
    }

    /// Drops a reserved code whose user could not be created.
    fn withdraw_code(&self, pool: &str, username: &str, purpose: CodePurpose) {
        if let Ok(mut book) = self.code_book(pool) {
            book.withdraw(&(username.to_owned(), purpose));
        }
    }

    /// Hands a reserved code for `user` to the pool's webhook, or else to the log.
    fn deliver_code(&self, client_id: &str, user: &UserRecord, purpose: CodePurpose, code: Secret) {
        let (pool, username) = (user.pool.as_str(), user.username.as_str());
        if !self.webhooks.configured(pool) {
            // Without a webhook the log is the delivery: the line carries the code and whom it
            // is for, nothing else.
            tracing::info!(pool, username, purpose = purpose.as_str(), code = %code.expose(), "verification code");
        }
        let delivery = CodeDelivery {
            pool: pool.to_owned(),
            username: username.to_owned(),
            purpose,
            code,
            client_id: client_id.to_owned(),
            email: user.attributes.get("email").cloned(),
            phone_number: user.attributes.get("phone_number").cloned(),
        };
        self.webhooks.send(&delivery);
        if let Some(cb) = &self.options.on_code {
            cb(&delivery);
        }
    }

    /// Issues a code for `username`, delivered only when `deliver_to` is given: the same
    /// work and limits for every name.
    fn issue_code(
        &self,
        pool: &str,
        username: &str,
        purpose: CodePurpose,
        ip: Option<IpAddr>,
        deliver_to: Option<(&str, &UserRecord)>,
    ) -> Result<(), CognitoError> {
        let code = self.reserve_code(pool, username, purpose, ip, false)?;
        if let Some((client_id, user)) = deliver_to {
            self.deliver_code(client_id, user, purpose, code);
        }
        Ok(())
    }

    /// Checks (and on success consumes) a code.
    fn check_code(
        &self,
        pool: &str,
        username: &str,
        purpose: CodePurpose,
        code: &str,
    ) -> Result<(), CognitoError> {
        if code.len() > 64 {
            return Err(code_mismatch());
        }
        let key: CodeKey = (username.to_owned(), purpose);
        let mac = self.code_mac(pool, &key, code);
        let now = self.options.clock.now();
        self.code_book(pool)?
            .check(&key, &mac, now)
            .map_err(|refusal| match refusal {
                CheckRefusal::Mismatch => code_mismatch(),
                CheckRefusal::Expired => err(
                    "ExpiredCodeException",
                    "Invalid code provided, please request a code again.",
                ),
                CheckRefusal::LimitExceeded => limit_exceeded(),
            })
    }

    /// Whether `username` holds a sign-up code that has not expired.
    fn has_live_sign_up_code(&self, pool: &str, username: &str) -> Result<bool, CognitoError> {
        let key: CodeKey = (username.to_owned(), CodePurpose::SignUp);
        let now = self.options.clock.now();
        Ok(self.code_book(pool)?.has_live_code(&key, now))
    }

    // ---- sessions ----

    fn new_session(&self, pending: PendingSession) -> Result<String, CognitoError> {
        let token = tokens::random_token().ok_or_else(|| internal(&"no randomness"))?;
        let session = format!("AYABe{token}");
        let key = digest::digest(&digest::SHA256, session.as_bytes())
            .as_ref()
            .to_vec();
        let now = unix_now();
        let mut sessions = match self.sessions.lock() {
            Ok(s) => s,
            Err(p) => p.into_inner(),
        };
        if sessions.len() >= self.options.max_pending {
            sessions.retain(|_, s| s.expires_at > now);
            if sessions.len() >= self.options.max_pending {
                return Err(err("TooManyRequestsException", "Too many pending sign-ins"));
            }
        }
        sessions.insert(key, pending);
        Ok(session)
    }

    fn session(&self, session: &str) -> Option<(Vec<u8>, PendingSession)> {
        let key = digest::digest(&digest::SHA256, session.as_bytes())
            .as_ref()
            .to_vec();
        let sessions = match self.sessions.lock() {
            Ok(s) => s,
            Err(p) => p.into_inner(),
        };
        sessions
            .get(&key)
            .filter(|s| s.expires_at > unix_now())
            .cloned()
            .map(|s| (key, s))
    }

    fn end_session(&self, key: &[u8]) {
        let mut sessions = match self.sessions.lock() {
            Ok(s) => s,
            Err(p) => p.into_inner(),
        };
        sessions.remove(key);
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

    /// A verified access token of this API → the user.
    async fn token_user(&self, body: &Body) -> Result<UserRecord, CognitoError> {
        Ok(self.token_session(body).await?.0)
    }

    /// A verified access token of this API → the user and the token's session (`origin_jti`).
    async fn token_session(
        &self,
        body: &Body,
    ) -> Result<(UserRecord, Option<String>), CognitoError> {
        let token = req_str(body, "AccessToken")?;
        let verifier = self
            .verifier
            .as_ref()
            .ok_or_else(|| not_authorized("Invalid Access Token"))?;
        let verified = verifier.verify(token).await.map_err(|e| match e {
            JwtError::Expired => not_authorized("Access Token has expired"),
            _ => not_authorized("Invalid Access Token"),
        })?;
        if !verified.scopes.iter().any(|s| s == ADMIN_SCOPE) {
            return Err(not_authorized("Access Token does not have required scopes"));
        }
        let pool = self
            .issuers
            .get(&verified.issuer)
            .ok_or_else(|| not_authorized("Invalid Access Token"))?;
        let sub = verified
            .subject
            .as_deref()
            .ok_or_else(|| not_authorized("Invalid Access Token"))?;
        let iat = verified
            .claims
            .get("iat")
            .and_then(Value::as_i64)
            .unwrap_or(0);
        let origin = verified.claims.get("origin_jti").and_then(Value::as_str);
        if self.idp.is_revoked(origin, sub, iat).await {
            return Err(not_authorized("Access Token has been revoked"));
        }
        match self.idp.store.get_user_by_sub(sub).await? {
            Some(u) if u.pool == *pool => Ok((u, origin.map(str::to_owned))),
            _ => Err(err("UserNotFoundException", "User does not exist.")),
        }
    }

    fn authentication_result(tokens: &crate::SessionTokens) -> Value {
        let mut result = json!({
            "AccessToken": tokens.access_token.expose(),
            "IdToken": tokens.id_token.expose(),
            "ExpiresIn": tokens.expires_in,
            "TokenType": "Bearer",
        });
        if let Some(r) = &tokens.refresh_token {
            result["RefreshToken"] = json!(r.expose());
        }
        json!({"ChallengeParameters": {}, "AuthenticationResult": result})
    }

    async fn start_session(
        &self,
        pool: &str,
        client_id: &str,
        username: &str,
    ) -> Result<Value, CognitoError> {
        let tokens = self
            .idp
            .issue_session(pool, client_id, username, &[ADMIN_SCOPE.to_owned()])
            .await?;
        Ok(Self::authentication_result(&tokens))
    }

    // ---- operations ----

    /// Creates an `UNCONFIRMED` user once its code is issued: a sign-up refused by the code
    /// limits leaves no user behind. An `UNCONFIRMED` user who signed up earlier and whose code
    /// has expired is replaced (see [`stale_sign_up`]).
    async fn sign_up(&self, body: &Body, ip: Option<IpAddr>) -> Result<Value, CognitoError> {
        let client_id = req_str(body, "ClientId")?;
        let username = req_str(body, "Username")?;
        let (pool, client) = self.client(client_id)?;
        Self::check_secret_hash(client, username, opt_str(body, "SecretHash")?)?;
        let state = self.idp.pool(pool)?;
        if !state.config.self_sign_up {
            return Err(not_authorized("SignUp is not permitted for this user pool"));
        }
        let password = Secret::new(req_str(body, "Password")?);
        let attributes = attribute_list(body, "UserAttributes")?;
        let username =
            &crate::username::normalize(username).map_err(|e| invalid_parameter(e.to_string()))?;
        check_attributes(&state.config, Writer::SignUp, &attributes)?;
        password::check_policy(&state.config.password_policy, password.expose())
            .map_err(IdpError::from)?;
        let existing = self.idp.store.get_user(pool, username).await?;
        if let Some(old) = &existing {
            let now = self.options.clock.now();
            let ttl = crate::secs(self.options.sign_up_code_ttl);
            if !stale_sign_up(old, ttl, now) || self.has_live_sign_up_code(pool, username)? {
                return Err(err("UsernameExistsException", "User already exists"));
            }
        }
        let code = self.reserve_code(pool, username, CodePurpose::SignUp, ip, true)?;
        let user = match self
            .create_signed_up_user(pool, username, &password, attributes, existing.is_some())
            .await
        {
            Ok(user) => user,
            Err(e) => {
                self.withdraw_code(pool, username, CodePurpose::SignUp);
                return Err(e);
            }
        };
        let email = user.attributes.get("email").map(String::as_str);
        let delivery = code_delivery(email);
        self.deliver_code(client_id, &user, CodePurpose::SignUp, code);
        Ok(json!({
            "UserConfirmed": false,
            "UserSub": user.sub,
            "CodeDeliveryDetails": delivery,
        }))
    }

    /// The user of a sign-up whose code is reserved; `replace`: an expired sign-up of the same
    /// name goes first.
    async fn create_signed_up_user(
        &self,
        pool: &str,
        username: &str,
        password: &Secret,
        attributes: BTreeMap<String, String>,
        replace: bool,
    ) -> Result<UserRecord, CognitoError> {
        let hash = self
            .idp
            .hasher
            .hash(password)
            .await
            .map_err(|e| internal(&e))?;
        if replace {
            tracing::info!(pool, username, "replacing an expired, unconfirmed sign-up");
            self.idp.store.delete_user(pool, username).await?;
        }
        let now = unix_now();
        let user = UserRecord {
            pool: pool.to_owned(),
            username: username.to_owned(),
            sub: tokens::uuid_v4(),
            password_hash: Some(hash),
            status: UserStatus::Unconfirmed,
            enabled: true,
            attributes,
            failed_attempts: 0,
            locked_until: None,
            tokens_valid_after: 0,
            created_at: now,
            updated_at: now,
        };
        self.idp.store.create_user(&user).await?;
        Ok(user)
    }

    /// A new sign-up code for an unconfirmed user (the previous one stops working). Unknown,
    /// disabled and already confirmed users get a code nobody receives: the same answer,
    /// limits and work (no existence leak).
    async fn resend_confirmation_code(
        &self,
        body: &Body,
        ip: Option<IpAddr>,
    ) -> Result<Value, CognitoError> {
        let client_id = req_str(body, "ClientId")?;
        let username = req_str(body, "Username")?;
        let (pool, client) = self.client(client_id)?;
        Self::check_secret_hash(client, username, opt_str(body, "SecretHash")?)?;
        let user = self.idp.store.get_user(pool, username).await?;
        let recipient = user
            .as_ref()
            .filter(|u| u.enabled && u.status == UserStatus::Unconfirmed);
        self.issue_code(
            pool,
            username,
            CodePurpose::SignUp,
            ip,
            recipient.map(|u| (client_id, u)),
        )?;
        Ok(json!({"CodeDeliveryDetails": masked_code_delivery()}))
    }

    async fn confirm_sign_up(&self, body: &Body) -> Result<Value, CognitoError> {
        let client_id = req_str(body, "ClientId")?;
        let username = req_str(body, "Username")?;
        let code = req_str(body, "ConfirmationCode")?;
        let (pool, client) = self.client(client_id)?;
        Self::check_secret_hash(client, username, opt_str(body, "SecretHash")?)?;
        // The same calls whatever the user's state: a confirmed or unknown user holds no code
        // (or one nobody received), so a guess gets what a wrong code gets.
        let user = self.idp.store.get_user(pool, username).await?;
        self.check_code(pool, username, CodePurpose::SignUp, code)?;
        match user {
            Some(u) if u.status == UserStatus::Unconfirmed => {
                // the code went to the user's address: it is verified too
                self.idp.confirm_sign_up_by_code(pool, username).await?;
            }
            // confirmed meanwhile (e.g. by an administrator): the code was right, nothing to do
            Some(_) => {}
            None => return Err(code_mismatch()),
        }
        Ok(json!({}))
    }

    async fn initiate_auth(&self, body: &Body) -> Result<Value, CognitoError> {
        let client_id = req_str(body, "ClientId")?;
        let flow = req_str(body, "AuthFlow")?;
        let empty = Map::new();
        let params = opt_map(body, "AuthParameters")?.unwrap_or(&empty);
        let (pool, client) = self.client(client_id)?;
        match flow {
            "USER_PASSWORD_AUTH" => self.password_auth(pool, client, params).await,
            "REFRESH_TOKEN_AUTH" | "REFRESH_TOKEN" => self.refresh_auth(pool, client, params).await,
            "USER_SRP_AUTH"
            | "CUSTOM_AUTH"
            | "USER_AUTH"
            | "ADMIN_USER_PASSWORD_AUTH"
            | "ADMIN_NO_SRP_AUTH" => Err(invalid_parameter(format!(
                "{flow} flow not enabled for this client"
            ))),
            _ => Err(invalid_parameter(format!("Unknown AuthFlow {flow}"))),
        }
    }

    async fn password_auth(
        &self,
        pool: &str,
        client: &AppClient,
        params: &Body,
    ) -> Result<Value, CognitoError> {
        if !client.grants.iter().any(|g| g == "password") {
            return Err(invalid_parameter(
                "USER_PASSWORD_AUTH flow not enabled for this client",
            ));
        }
        let username = req_str(params, "USERNAME")?;
        let password = Secret::new(req_str(params, "PASSWORD")?);
        Self::check_secret_hash(client, username, opt_str(params, "SECRET_HASH")?)?;
        let Some(user) = self.idp.store.get_user(pool, username).await? else {
            // counted and locked out like a real user, with the same work and answers
            let check = self
                .idp
                .verify_unknown_user_password(pool, username, &password)
                .await;
            return Err(password_answer(check).err().unwrap_or_else(bad_credentials));
        };
        if user.password_hash.is_none() && user.status != UserStatus::Unconfirmed {
            return Err(err(
                "PasswordResetRequiredException",
                "Password reset required for the user",
            ));
        }
        let user = self.verify_with_lockout(user, &password).await?;
        if !user.enabled {
            return Err(not_authorized("User is disabled."));
        }
        match user.status {
            UserStatus::Unconfirmed => {
                Err(err("UserNotConfirmedException", "User is not confirmed."))
            }
            UserStatus::ForceChangePassword => {
                let session = self.new_session(PendingSession {
                    pool: pool.to_owned(),
                    client_id: client.client_id.clone(),
                    username: user.username.clone(),
                    expires_at: unix_now().saturating_add(SESSION_TTL_SECS),
                })?;
                let attrs: Map<String, Value> = token_claims(&user.attributes)
                    .map(|(k, v)| (k.clone(), Value::String(v.clone())))
                    .collect();
                Ok(json!({
                    "ChallengeName": "NEW_PASSWORD_REQUIRED",
                    "Session": session,
                    "ChallengeParameters": {
                        "USER_ID_FOR_SRP": user.username,
                        "requiredAttributes": "[]",
                        "userAttributes": Value::Object(attrs).to_string(),
                    },
                }))
            }
            UserStatus::Confirmed => {
                self.start_session(pool, &client.client_id, &user.username)
                    .await
            }
        }
    }

    async fn refresh_auth(
        &self,
        pool: &str,
        client: &AppClient,
        params: &Body,
    ) -> Result<Value, CognitoError> {
        let token = Secret::new(req_str(params, "REFRESH_TOKEN")?);
        if client.secret.is_some() {
            // SECRET_HASH is over the internal username the token belongs to
            let hash = tokens::refresh_token_hash(token.expose());
            let record = self
                .idp
                .store
                .get_refresh_token(&hash)
                .await?
                .filter(|r| r.client_id == client.client_id)
                .ok_or_else(|| not_authorized("Invalid Refresh Token"))?;
            Self::check_secret_hash(client, &record.username, opt_str(params, "SECRET_HASH")?)?;
        }
        let grant = self
            .idp
            .refresh(pool, &Self::client_auth(client), &token)
            .await
            .map_err(|e| match e {
                OAuthError::UnauthorizedClient => {
                    invalid_parameter("REFRESH_TOKEN_AUTH flow not enabled for this client")
                }
                OAuthError::Server(inner) => inner.into(),
                _ => not_authorized("Invalid Refresh Token"),
            })?;
        let mut result = json!({
            "AccessToken": grant.access_token.expose(),
            "ExpiresIn": grant.expires_in,
            "TokenType": "Bearer",
        });
        if let Some(id) = &grant.id_token {
            result["IdToken"] = json!(id.expose());
        }
        // with rotation (as Cognito does when it is enabled): the next refresh token
        if let Some(next) = &grant.refresh_token {
            result["RefreshToken"] = json!(next.expose());
        }
        Ok(json!({"ChallengeParameters": {}, "AuthenticationResult": result}))
    }

    async fn respond_to_auth_challenge(&self, body: &Body) -> Result<Value, CognitoError> {
        let client_id = req_str(body, "ClientId")?;
        let challenge = req_str(body, "ChallengeName")?;
        let (pool, client) = self.client(client_id)?;
        if challenge != "NEW_PASSWORD_REQUIRED" {
            return Err(invalid_parameter(format!(
                "Unsupported challenge {challenge}"
            )));
        }
        let empty = Map::new();
        let responses = opt_map(body, "ChallengeResponses")?.unwrap_or(&empty);
        let username = req_str(responses, "USERNAME")?;
        let new_password = Secret::new(req_str(responses, "NEW_PASSWORD")?);
        Self::check_secret_hash(client, username, opt_str(responses, "SECRET_HASH")?)?;
        let session = req_str(body, "Session")?;
        let invalid_session = || not_authorized("Invalid session for the user.");
        let (key, pending) = self.session(session).ok_or_else(invalid_session)?;
        if pending.pool != pool
            || pending.client_id != client.client_id
            || pending.username != username
        {
            return Err(invalid_session());
        }
        self.idp
            .set_password(pool, username, &new_password, true)
            .await?;
        self.end_session(&key);
        self.start_session(pool, &client.client_id, username).await
    }

    async fn get_user(&self, body: &Body) -> Result<Value, CognitoError> {
        let user = self.token_user(body).await?;
        let mut attrs = vec![json!({"Name": "sub", "Value": user.sub})];
        attrs.extend(token_claims(&user.attributes).map(|(k, v)| json!({"Name": k, "Value": v})));
        Ok(json!({"Username": user.username, "UserAttributes": attrs}))
    }

    async fn change_password(
        &self,
        body: &Body,
        ip: Option<IpAddr>,
    ) -> Result<Value, CognitoError> {
        let (user, session) = self.token_session(body).await?;
        if let Some(ip) = ip {
            self.check_rate(&user.pool, ip)?;
        }
        let previous = Secret::new(req_str(body, "PreviousPassword")?);
        let proposed = Secret::new(req_str(body, "ProposedPassword")?);
        let state = self.idp.pool(&user.pool)?;
        password::check_policy(&state.config.password_policy, proposed.expose())
            .map_err(IdpError::from)?;
        let user = self.verify_with_lockout(user, &previous).await?;
        // every refresh token and every other session of the user end; this token lives on
        self.idp
            .change_password(&user.pool, &user.username, &proposed, session.as_deref())
            .await?;
        Ok(json!({}))
    }

    async fn global_sign_out(&self, body: &Body) -> Result<Value, CognitoError> {
        let user = self.token_user(body).await?;
        self.idp.global_sign_out(&user.pool, &user.username).await?;
        Ok(json!({}))
    }

    async fn revoke_token(&self, body: &Body) -> Result<Value, CognitoError> {
        let client_id = req_str(body, "ClientId")?;
        let token = Secret::new(req_str(body, "Token")?);
        let (pool, _client) = self.client(client_id)?;
        let auth = ClientAuth {
            client_id: client_id.to_owned(),
            secret: opt_str(body, "ClientSecret")?
                .filter(|s| !s.is_empty())
                .map(Secret::new),
            basic: false,
        };
        self.idp
            .revoke(pool, &auth, &token)
            .await
            .map_err(|e| match e {
                OAuthError::InvalidClient => not_authorized("Invalid client credentials"),
                OAuthError::InvalidGrant => err(
                    "UnauthorizedException",
                    "Token does not belong to this client",
                ),
                OAuthError::UnsupportedTokenType => {
                    err("UnsupportedTokenTypeException", "Unsupported token type")
                }
                OAuthError::Server(inner) => inner.into(),
                other => invalid_parameter(other.to_string()),
            })?;
        Ok(json!({}))
    }

    /// A reset code. Unknown, disabled and unconfirmed users get a code nobody receives: the
    /// same answer, limits and work (no existence leak).
    async fn forgot_password(
        &self,
        body: &Body,
        ip: Option<IpAddr>,
    ) -> Result<Value, CognitoError> {
        let client_id = req_str(body, "ClientId")?;
        let username = req_str(body, "Username")?;
        let (pool, client) = self.client(client_id)?;
        Self::check_secret_hash(client, username, opt_str(body, "SecretHash")?)?;
        let user = self.idp.store.get_user(pool, username).await?;
        let recipient = user.as_ref().filter(|u| can_reset(u));
        self.issue_code(
            pool,
            username,
            CodePurpose::ForgotPassword,
            ip,
            recipient.map(|u| (client_id, u)),
        )?;
        Ok(json!({"CodeDeliveryDetails": masked_code_delivery()}))
    }

    async fn confirm_forgot_password(&self, body: &Body) -> Result<Value, CognitoError> {
        let client_id = req_str(body, "ClientId")?;
        let username = req_str(body, "Username")?;
        let code = req_str(body, "ConfirmationCode")?;
        let password = Secret::new(req_str(body, "Password")?);
        let (pool, client) = self.client(client_id)?;
        Self::check_secret_hash(client, username, opt_str(body, "SecretHash")?)?;
        let state = self.idp.pool(pool)?;
        password::check_policy(&state.config.password_policy, password.expose())
            .map_err(IdpError::from)?;
        self.check_code(pool, username, CodePurpose::ForgotPassword, code)?;
        // a code nobody received (unknown, disabled or unconfirmed user) was guessed
        let user = self.idp.store.get_user(pool, username).await?;
        if !user.as_ref().is_some_and(can_reset) {
            return Err(code_mismatch());
        }
        self.idp
            .set_password(pool, username, &password, true)
            .await?;
        Ok(json!({}))
    }
}
