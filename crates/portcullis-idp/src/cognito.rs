//! The public subset of the native `cognito-idp` JSON API (cognito.md §4): `POST /` with
//! `X-Amz-Target: AWSCognitoIdentityProviderService.<Operation>`, body
//! `application/x-amz-json-1.1`.
//!
//! Operations: `SignUp`, `ConfirmSignUp`, `ResendConfirmationCode`, `InitiateAuth` (`USER_PASSWORD_AUTH`,
//! `REFRESH_TOKEN_AUTH`/`REFRESH_TOKEN`), `RespondToAuthChallenge` (`NEW_PASSWORD_REQUIRED`),
//! `GetUser`, `ChangePassword`, `GlobalSignOut`, `RevokeToken`, `ForgotPassword`,
//! `ConfirmForgotPassword`.
//!
//! Design choices:
//! * The app client id selects the pool (client ids are unique across pools); clients are looked
//!   up in the pools' configuration the provider keeps in memory. `SECRET_HASH` is verified with
//!   the plaintext client secret from that configuration (the store keeps only a keyed hash of it,
//!   which cannot serve as an HMAC key); the configuration already holds it as a `Secret`.
//! * `USER_PASSWORD_AUTH` needs the client's `password` grant (the default of public clients).
//! * User existence is not revealed (PreventUserExistenceErrors = ENABLED): unknown users and
//!   wrong passwords both get `NotAuthorizedException` (after a dummy Argon2 verification, so
//!   timing does not tell either), `ForgotPassword` simulates a delivery, and the confirm
//!   operations answer `CodeMismatchException`. `UserNotConfirmedException` is only returned
//!   after a correct password.
//! * Lockout (§6.5): 5 failures, then 2^(n−5) s (cap 15 min), reset after 15 min without
//!   attempts; kept in the user's `failed_attempts`/`locked_until` columns.
//! * Confirmation / reset codes (6 digits) and `NEW_PASSWORD_REQUIRED` sessions live in bounded
//!   in-memory maps (HMAC of the code, expiry, bounded attempts): they do not survive a restart
//!   and are per node. A code goes to the pool's `code_webhook` ([`crate::delivery`]) when it
//!   has one, else into an info-level log line; [`CognitoOptions::on_code`] sees it either way.
//! * Rate limit: the pool's `rate_limit_per_ip` (shared with its token endpoint and hosted
//!   login) covers the operations that check passwords or codes or issue codes.
#![allow(clippy::result_large_err)]

use std::collections::{BTreeMap, HashMap};
use std::net::{IpAddr, SocketAddr};
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

use crate::delivery::CodeWebhooks;
use crate::store::{StoreError, UserRecord, UserStatus};
use crate::{ClientAuth, IdentityProvider, IdpError, OAuthError, password, tokens, unix_now};

#[cfg(test)]
mod tests;

/// Largest request body accepted.
pub const MAX_BODY_BYTES: usize = 16 * 1024;
const TARGET_PREFIX: &str = "AWSCognitoIdentityProviderService.";
const CONTENT_TYPE: &str = "application/x-amz-json-1.1";
/// Scope Cognito puts in tokens from the JSON API; GetUser & co. require it.
const ADMIN_SCOPE: &str = "aws.cognito.signin.user.admin";
const SESSION_TTL_SECS: i64 = 180;
const MSG_BAD_CREDENTIALS: &str = "Incorrect username or password.";

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
    /// Most pending codes and sessions kept (each). Default 10,000.
    pub max_pending: usize,
}

impl Default for CognitoOptions {
    fn default() -> Self {
        CognitoOptions {
            on_code: None,
            sign_up_code_ttl: Duration::from_secs(86_400),
            reset_code_ttl: Duration::from_secs(3600),
            max_code_attempts: 5,
            max_pending: 10_000,
        }
    }
}

impl std::fmt::Debug for CognitoOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CognitoOptions")
            .field("on_code", &self.on_code.is_some())
            .field("max_code_attempts", &self.max_code_attempts)
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

#[derive(Debug)]
struct PendingCode {
    mac: Vec<u8>,
    expires_at: i64,
    attempts: u32,
}

#[derive(Debug, Clone)]
struct PendingSession {
    pool: String,
    client_id: String,
    username: String,
    expires_at: i64,
}

type CodeKey = (String, String, CodePurpose);

/// State of the JSON API router.
struct Cognito {
    idp: Arc<IdentityProvider>,
    options: CognitoOptions,
    /// The pools' `code_webhook`s.
    webhooks: CodeWebhooks,
    verifier: Option<JwtVerifier>,
    /// issuer → pool name.
    issuers: HashMap<String, String>,
    codes: Mutex<HashMap<CodeKey, PendingCode>>,
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
    let state = Arc::new(Cognito {
        webhooks: CodeWebhooks::new(idp.pools.iter().map(|(name, s)| (name, &s.config))),
        idp,
        options,
        verifier,
        issuers,
        codes: Mutex::new(HashMap::new()),
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
    let Value::Object(body) = body else {
        return Err(err(
            "SerializationException",
            "Request body is not a JSON object",
        ));
    };
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
        "SignUp" => c.sign_up(&body).await,
        "ConfirmSignUp" => c.confirm_sign_up(&body).await,
        "ResendConfirmationCode" => c.resend_confirmation_code(&body).await,
        "InitiateAuth" => c.initiate_auth(&body).await,
        "RespondToAuthChallenge" => c.respond_to_auth_challenge(&body).await,
        "GetUser" => c.get_user(&body).await,
        "ChangePassword" => c.change_password(&body, ip).await,
        "GlobalSignOut" => c.global_sign_out(&body).await,
        "RevokeToken" => c.revoke_token(&body).await,
        "ForgotPassword" => c.forgot_password(&body).await,
        "ConfirmForgotPassword" => c.confirm_forgot_password(&body).await,
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
                if name == "sub" {
                    return Err(invalid_parameter("Attribute sub cannot be set"));
                }
                out.insert(name.to_owned(), value.to_owned());
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

fn bad_credentials() -> CognitoError {
    not_authorized(MSG_BAD_CREDENTIALS)
}

fn code_delivery(user: Option<&UserRecord>) -> Value {
    let email = user.and_then(|u| u.attributes.get("email"));
    let destination = match email.and_then(|e| e.split_once('@')) {
        Some((local, domain)) => {
            let first: String = local.chars().take(1).collect();
            format!("{first}***@{domain}")
        }
        None => "***".to_owned(),
    };
    json!({"Destination": destination, "DeliveryMedium": "EMAIL", "AttributeName": "email"})
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

    fn code_mac(&self, key: &CodeKey, code: &str) -> Vec<u8> {
        let mut ctx = hmac::Context::with_key(&self.idp.secret_key);
        for part in [key.0.as_str(), key.1.as_str(), key.2.as_str(), code] {
            ctx.update(part.as_bytes());
            ctx.update(&[0]);
        }
        ctx.sign().as_ref().to_vec()
    }

    /// Issues a code for `user` and hands it to the pool's webhook, or else to the log.
    fn issue_code(
        &self,
        client_id: &str,
        user: &UserRecord,
        purpose: CodePurpose,
    ) -> Result<(), CognitoError> {
        let (pool, username) = (user.pool.as_str(), user.username.as_str());
        let code = random_code()?;
        let key: CodeKey = (pool.to_owned(), username.to_owned(), purpose);
        let ttl = match purpose {
            CodePurpose::SignUp => self.options.sign_up_code_ttl,
            CodePurpose::ForgotPassword => self.options.reset_code_ttl,
        };
        let now = unix_now();
        let pending = PendingCode {
            mac: self.code_mac(&key, &code),
            expires_at: now.saturating_add(crate::secs(ttl)),
            attempts: 0,
        };
        {
            let mut codes = match self.codes.lock() {
                Ok(c) => c,
                Err(p) => p.into_inner(),
            };
            if !codes.contains_key(&key) && codes.len() >= self.options.max_pending {
                codes.retain(|_, p| p.expires_at > now);
                if codes.len() >= self.options.max_pending {
                    return Err(err(
                        "LimitExceededException",
                        "Attempt limit exceeded, please try after some time.",
                    ));
                }
            }
            codes.insert(key, pending);
        }
        if !self.webhooks.configured(pool) {
            // Without a webhook the log is the delivery: the line carries the code and whom it
            // is for, nothing else.
            tracing::info!(pool, username, purpose = purpose.as_str(), code = %code, "verification code");
        }
        let delivery = CodeDelivery {
            pool: pool.to_owned(),
            username: username.to_owned(),
            purpose,
            code: Secret::new(code),
            client_id: client_id.to_owned(),
            email: user.attributes.get("email").cloned(),
            phone_number: user.attributes.get("phone_number").cloned(),
        };
        self.webhooks.send(&delivery);
        if let Some(cb) = &self.options.on_code {
            cb(&delivery);
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
        let mismatch = || {
            err(
                "CodeMismatchException",
                "Invalid verification code provided, please try again.",
            )
        };
        if code.len() > 64 {
            return Err(mismatch());
        }
        let key: CodeKey = (pool.to_owned(), username.to_owned(), purpose);
        let mac = self.code_mac(&key, code);
        let now = unix_now();
        let mut codes = match self.codes.lock() {
            Ok(c) => c,
            Err(p) => p.into_inner(),
        };
        let Some(pending) = codes.get_mut(&key) else {
            return Err(mismatch());
        };
        if pending.expires_at <= now {
            codes.remove(&key);
            return Err(err(
                "ExpiredCodeException",
                "Invalid code provided, please request a code again.",
            ));
        }
        if pending.attempts >= self.options.max_code_attempts {
            return Err(err(
                "LimitExceededException",
                "Attempt limit exceeded, please try after some time.",
            ));
        }
        // constant-time comparison of the MACs
        let ok = aws_lc_rs::constant_time::verify_slices_are_equal(&pending.mac, &mac).is_ok();
        if ok {
            codes.remove(&key);
            Ok(())
        } else {
            pending.attempts = pending.attempts.saturating_add(1);
            Err(mismatch())
        }
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

    async fn sign_up(&self, body: &Body) -> Result<Value, CognitoError> {
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
        crate::validate_username(username)?;
        crate::validate_attributes(&attributes)?;
        password::check_policy(&state.config.password_policy, password.expose())
            .map_err(IdpError::from)?;
        if self.idp.store.get_user(pool, username).await?.is_some() {
            return Err(err("UsernameExistsException", "User already exists"));
        }
        let hash = self
            .idp
            .hasher
            .hash(&password)
            .await
            .map_err(|e| internal(&e))?;
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
        self.issue_code(client_id, &user, CodePurpose::SignUp)?;
        Ok(json!({
            "UserConfirmed": false,
            "UserSub": user.sub,
            "CodeDeliveryDetails": code_delivery(Some(&user)),
        }))
    }

    /// A new sign-up code for an unconfirmed user (the previous one stops working). Unknown,
    /// disabled and already confirmed users get a simulated delivery (no existence leak).
    async fn resend_confirmation_code(&self, body: &Body) -> Result<Value, CognitoError> {
        let client_id = req_str(body, "ClientId")?;
        let username = req_str(body, "Username")?;
        let (pool, client) = self.client(client_id)?;
        Self::check_secret_hash(client, username, opt_str(body, "SecretHash")?)?;
        let user = self.idp.store.get_user(pool, username).await?;
        if let Some(u) = &user
            && u.enabled
            && u.status == UserStatus::Unconfirmed
        {
            self.issue_code(client_id, u, CodePurpose::SignUp)?;
        }
        Ok(json!({"CodeDeliveryDetails": code_delivery(user.as_ref())}))
    }

    async fn confirm_sign_up(&self, body: &Body) -> Result<Value, CognitoError> {
        let client_id = req_str(body, "ClientId")?;
        let username = req_str(body, "Username")?;
        let code = req_str(body, "ConfirmationCode")?;
        let (pool, client) = self.client(client_id)?;
        Self::check_secret_hash(client, username, opt_str(body, "SecretHash")?)?;
        let user = self.idp.store.get_user(pool, username).await?;
        if let Some(u) = &user
            && u.status != UserStatus::Unconfirmed
        {
            return Err(not_authorized(format!(
                "User cannot be confirmed. Current status is {}",
                u.status
            )));
        }
        self.check_code(pool, username, CodePurpose::SignUp, code)?;
        if user.is_none() {
            return Err(err(
                "CodeMismatchException",
                "Invalid verification code provided, please try again.",
            ));
        }
        self.idp.confirm_user(pool, username).await?;
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
                let attrs: Map<String, Value> = user
                    .attributes
                    .iter()
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
        attrs.extend(
            user.attributes
                .iter()
                .map(|(k, v)| json!({"Name": k, "Value": v})),
        );
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

    async fn forgot_password(&self, body: &Body) -> Result<Value, CognitoError> {
        let client_id = req_str(body, "ClientId")?;
        let username = req_str(body, "Username")?;
        let (pool, client) = self.client(client_id)?;
        Self::check_secret_hash(client, username, opt_str(body, "SecretHash")?)?;
        let user = self.idp.store.get_user(pool, username).await?;
        match &user {
            Some(u) if u.enabled && u.status != UserStatus::Unconfirmed => {
                self.issue_code(client_id, u, CodePurpose::ForgotPassword)?;
            }
            // unknown, disabled or unconfirmed users: a simulated delivery (no existence leak)
            _ => {}
        }
        Ok(json!({"CodeDeliveryDetails": code_delivery(user.as_ref())}))
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
        self.idp
            .set_password(pool, username, &password, true)
            .await?;
        Ok(json!({}))
    }
}
