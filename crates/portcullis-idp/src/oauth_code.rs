//! The authorization-code flow with PKCE (RFC 6749 §4.1, RFC 7636), cognito.md §3.1–3.2.
//!
//! Pure-ish logic, no HTML: validating `/oauth2/authorize` requests, the pending sign-in
//! requests the hosted page carries by id, one-time authorization codes (stored hashed), PKCE
//! S256 verification, and redeeming a code at the token endpoint.
//!
//! Pending requests and codes live in the identity store (keyed by the SHA-256 of their id or
//! code), so each step may land on another gateway node sharing it: pending requests expire
//! after [`PENDING_TTL_SECS`], codes after [`CODE_TTL_SECS`]; both are bounded, the pending
//! requests per client address and per pool as well (rules in [`crate::pending`]). A code is
//! redeemed by one conditional statement, so of two nodes redeeming it at once exactly one
//! wins. The clock is [`CodeFlow::now`]: the provider's [`Clock`], which tests can also move
//! forward ([`CodeFlow::advance_clock`]).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};

use aws_lc_rs::constant_time::verify_slices_are_equal;
use aws_lc_rs::digest::{SHA256, digest};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use portcullis_config::Secret;
use serde_json::json;

use crate::pending::Redeemed;
pub use crate::pending::{
    CODE_TTL_SECS, MAX_CODES, PENDING_PER_CLIENT, PENDING_PER_POOL, PENDING_TOTAL,
    PENDING_TTL_SECS, PendingError, PendingLimits,
};
use crate::store::{AuthCodeRow, ClientRecord, CodeRedemption, PendingRequestRow, Store};
use crate::{ClientAuth, Clock, IdentityProvider, IdpError, OAuthError, SessionTokens};

/// The `response_type`s `authorize` accepts (and discovery advertises).
pub const RESPONSE_TYPES: [&str; 1] = ["code"];
const MAX_QUERY_PARAMS: usize = 32;
const MAX_QUERY_BYTES: usize = 8 * 1024;
const MAX_STATE_CHARS: usize = 2048;
const MAX_NONCE_CHARS: usize = 512;
const MAX_SCOPES: usize = 50;

/// Why an authorization request is refused.
#[derive(Debug, thiserror::Error)]
pub enum AuthorizeError {
    /// Before a registered `redirect_uri` is known: shown as a page, never redirected.
    #[error("{0}")]
    Page(&'static str),
    /// After: redirected to `redirect_uri` with `error` and `state`.
    #[error("{code}: {description}")]
    Redirect {
        redirect_uri: String,
        state: Option<String>,
        code: &'static str,
        description: &'static str,
    },
    /// The client's address has too many sign-ins in progress: shown as a page (429).
    #[error(transparent)]
    TooMany(#[from] PendingError),
    #[error(transparent)]
    Server(#[from] IdpError),
}

impl AuthorizeError {
    /// The `Location` for a redirected error.
    pub fn location(&self) -> Option<String> {
        match self {
            AuthorizeError::Redirect {
                redirect_uri,
                state,
                code,
                description,
            } => {
                let mut params = vec![("error", *code), ("error_description", *description)];
                if let Some(s) = state {
                    params.push(("state", s.as_str()));
                }
                Some(append_query(redirect_uri, &params))
            }
            _ => None,
        }
    }
}

/// A validated authorization request, waiting for the user to sign in.
#[derive(Clone)]
pub struct PendingRequest {
    pub pool: String,
    pub client_id: String,
    pub redirect_uri: String,
    pub scopes: Vec<String>,
    pub state: Option<String>,
    pub code_challenge: Option<String>,
    pub nonce: Option<String>,
    /// The CSRF token the form must echo (also in the `portcullis_signin_csrf` cookie).
    pub csrf: Secret,
    /// Set once the password was right but must be changed (FORCE_CHANGE_PASSWORD).
    pub password_verified_user: Option<String>,
    pub expires_at: i64,
}

impl std::fmt::Debug for PendingRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PendingRequest")
            .field("pool", &self.pool)
            .field("client_id", &self.client_id)
            .field("redirect_uri", &self.redirect_uri)
            .field("scopes", &self.scopes)
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}

/// What an authorization code was issued for (the store keys it by the SHA-256 of the code).
#[derive(Debug, Clone)]
struct CodeRecord {
    client_id: String,
    redirect_uri: String,
    scopes: Vec<String>,
    code_challenge: Option<String>,
    nonce: Option<String>,
    username: String,
}

/// The code flow over the identity store, one per identity provider.
#[derive(Debug)]
pub struct CodeFlow {
    /// Pending requests and issued codes; what a redemption issued is the hash of its refresh
    /// token, revoked on a replay.
    store: Arc<dyn Store>,
    /// The bounds of the pending requests.
    limits: Mutex<PendingLimits>,
    /// The provider's clock; tests move this flow's time forward with an offset.
    clock: Clock,
    clock_offset: AtomicI64,
}

/// 256 random bits, base64url.
pub(crate) fn random_id() -> Result<String, IdpError> {
    crate::tokens::random_token().ok_or(IdpError::Key(crate::keys::KeyError(
        "no randomness available",
    )))
}

fn sha256(s: &str) -> Vec<u8> {
    digest(&SHA256, s.as_bytes()).as_ref().to_vec()
}

/// Constant-time string equality (lengths may leak; values do not).
pub fn ct_eq(a: &str, b: &str) -> bool {
    verify_slices_are_equal(a.as_bytes(), b.as_bytes()).is_ok()
}

/// RFC 7636 §4.1: 43–128 characters of `[A-Za-z0-9-._~]` (verifier and S256 challenge alike).
fn pkce_shaped(s: &str) -> bool {
    (43..=128).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'))
}

/// `BASE64URL(SHA256(verifier)) == challenge`, compared in constant time.
pub fn pkce_s256_matches(verifier: &str, challenge: &str) -> bool {
    if !pkce_shaped(verifier) {
        return false;
    }
    let computed = URL_SAFE_NO_PAD.encode(digest(&SHA256, verifier.as_bytes()).as_ref());
    ct_eq(&computed, challenge)
}

/// `uri` with `params` appended to its query (keeps an existing query).
pub fn append_query(uri: &str, params: &[(&str, &str)]) -> String {
    let encoded: String = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(params)
        .finish();
    let sep = if uri.contains('?') { '&' } else { '?' };
    format!("{uri}{sep}{encoded}")
}

/// Parses a query string: bounded, each parameter at most once.
pub fn parse_query(query: &str) -> Result<HashMap<String, String>, &'static str> {
    if query.len() > MAX_QUERY_BYTES {
        return Err("the request is too long");
    }
    let mut out = HashMap::new();
    for (k, v) in url::form_urlencoded::parse(query.as_bytes()) {
        if out.len() >= MAX_QUERY_PARAMS {
            return Err("too many parameters");
        }
        if out.insert(k.into_owned(), v.into_owned()).is_some() {
            return Err("a parameter is repeated");
        }
    }
    Ok(out)
}

impl CodeFlow {
    /// The flow over `store`, on the provider's clock.
    pub fn new(store: Arc<dyn Store>, clock: Clock) -> Self {
        CodeFlow {
            store,
            limits: Mutex::new(PendingLimits::default()),
            clock,
            clock_offset: AtomicI64::new(0),
        }
    }

    /// Seconds since the epoch on the provider's clock, plus the test offset.
    pub fn now(&self) -> i64 {
        self.clock
            .now()
            .saturating_add(self.clock_offset.load(Ordering::Relaxed))
    }

    /// Moves this flow's clock forward (tests: expiry of codes and pending requests).
    pub fn advance_clock(&self, secs: i64) {
        self.clock_offset.fetch_add(secs, Ordering::Relaxed);
    }

    /// Changes the bounds of the pending sign-in requests (from the next request on).
    pub fn set_pending_limits(&self, limits: PendingLimits) {
        match self.limits.lock() {
            Ok(mut l) => *l = limits.sane(),
            Err(p) => *p.into_inner() = limits.sane(),
        }
    }

    fn limits(&self) -> PendingLimits {
        match self.limits.lock() {
            Ok(l) => *l,
            Err(p) => *p.into_inner(),
        }
    }

    /// Pending sign-in requests held now (live or not yet pruned).
    pub async fn pending_count(&self) -> Result<u64, IdpError> {
        Ok(self.store.count_pending_requests().await?)
    }

    /// Validates `/oauth2/authorize` parameters. `csrf` is the browser's current CSRF token
    /// (reused so several tabs work) or a fresh one; `address` is the browser's (the
    /// pending requests are bounded per address). Returns the pending request's id.
    pub async fn authorize(
        &self,
        idp: &IdentityProvider,
        pool: &str,
        query: &HashMap<String, String>,
        csrf: Secret,
        address: Option<IpAddr>,
    ) -> Result<(String, PendingRequest), AuthorizeError> {
        let param = |name: &str| {
            query
                .get(name)
                .map(String::as_str)
                .filter(|v| !v.is_empty())
        };
        let client_id = param("client_id").ok_or(AuthorizeError::Page("client_id is missing."))?;
        let client = match idp
            .store()
            .get_client(client_id)
            .await
            .map_err(IdpError::from)?
        {
            Some(c) if c.pool == pool => c,
            _ => {
                return Err(AuthorizeError::Page(
                    "The client is not known to this pool.",
                ));
            }
        };
        let redirect_uri =
            param("redirect_uri").ok_or(AuthorizeError::Page("redirect_uri is missing."))?;
        if !client.callback_urls.iter().any(|u| u == redirect_uri) {
            return Err(AuthorizeError::Page(
                "redirect_uri is not a registered callback URL of this client.",
            ));
        }
        let state = param("state").map(str::to_owned);
        let echoed_state = state
            .clone()
            .filter(|s| s.chars().count() <= MAX_STATE_CHARS);
        let redirect = |code: &'static str, description: &'static str| AuthorizeError::Redirect {
            redirect_uri: redirect_uri.to_owned(),
            state: echoed_state.clone(),
            code,
            description,
        };
        if state
            .as_ref()
            .is_some_and(|s| s.chars().count() > MAX_STATE_CHARS)
        {
            return Err(redirect("invalid_request", "state is too long"));
        }
        match param("response_type") {
            Some(t) if RESPONSE_TYPES.contains(&t) => {}
            Some(_) => {
                return Err(redirect(
                    "unsupported_response_type",
                    "only response_type=code is supported",
                ));
            }
            None => return Err(redirect("invalid_request", "response_type is missing")),
        }
        if !client.grants.iter().any(|g| g == "authorization_code") {
            return Err(redirect(
                "unauthorized_client",
                "the client may not use the authorization code grant",
            ));
        }
        let scopes = requested_scopes(&client, param("scope"))
            .map_err(|why| redirect("invalid_scope", why))?;
        let code_challenge = match (param("code_challenge"), param("code_challenge_method")) {
            (Some(c), Some("S256")) if pkce_shaped(c) => Some(c.to_owned()),
            (Some(_), Some("S256")) => {
                return Err(redirect("invalid_request", "code_challenge is malformed"));
            }
            (Some(_), _) => {
                return Err(redirect(
                    "invalid_request",
                    "code_challenge_method must be S256",
                ));
            }
            (None, Some(_)) => {
                return Err(redirect("invalid_request", "code_challenge is missing"));
            }
            (None, None) if client.public => {
                return Err(redirect(
                    "invalid_request",
                    "PKCE (code_challenge, S256) is required for public clients",
                ));
            }
            (None, None) => None,
        };
        let nonce = param("nonce").map(str::to_owned);
        if nonce
            .as_ref()
            .is_some_and(|n| n.chars().count() > MAX_NONCE_CHARS)
        {
            return Err(redirect("invalid_request", "nonce is too long"));
        }
        let now = self.now();
        let limits = self.limits();
        let request = PendingRequest {
            pool: pool.to_owned(),
            client_id: client.client_id.clone(),
            redirect_uri: redirect_uri.to_owned(),
            scopes,
            state,
            code_challenge,
            nonce,
            csrf,
            password_verified_user: None,
            expires_at: limits.expiry(now),
        };
        let id = random_id()?;
        // A pool without a per-address rate limit (behind a proxy, addresses mean nothing)
        // has no per-address cap either.
        let limited = idp.pool(pool).is_ok_and(|p| p.limiter.is_some());
        let holder = address
            .filter(|_| limited)
            .map(|a| crate::ratelimit::client_key(a).to_string());
        let row = PendingRequestRow {
            id_hash: sha256(&id),
            pool: pool.to_owned(),
            holder,
            body: stored::request_body(&request)?,
            expires_at: request.expires_at,
        };
        let evicted = self
            .store
            .insert_pending_request(&row, &limits, now)
            .await
            .map_err(IdpError::from)??;
        if evicted > 0 {
            tracing::warn!(
                pool,
                evicted,
                "pending sign-in requests full; the oldest of the largest holder made room"
            );
        }
        Ok((id, request))
    }

    /// The pending request `id` of `pool`, if it exists and has not expired.
    pub async fn pending(&self, pool: &str, id: &str) -> Result<Option<PendingRequest>, IdpError> {
        let body = self
            .store
            .pending_request(&sha256(id), pool, self.now())
            .await?;
        body.map(|b| stored::request_from(pool, &b)).transpose()
    }

    /// Remembers that the request's user proved their password but must choose a new one.
    pub async fn mark_password_verified(
        &self,
        pool: &str,
        id: &str,
        username: &str,
    ) -> Result<(), IdpError> {
        let Some(mut request) = self.pending(pool, id).await? else {
            return Ok(());
        };
        request.password_verified_user = Some(username.to_owned());
        let body = stored::request_body(&request)?;
        self.store
            .update_pending_request(&sha256(id), pool, &body, self.now())
            .await?;
        Ok(())
    }

    /// Ends the pending request `id` because the user declined; returns the redirect location
    /// with `error=access_denied` and the request's `state` (RFC 6749 §4.1.2.1), or `None`
    /// when the request has expired.
    pub async fn cancel(&self, pool: &str, id: &str) -> Result<Option<String>, IdpError> {
        let Some(request) = self.take_pending(pool, id).await? else {
            return Ok(None);
        };
        Ok(AuthorizeError::Redirect {
            redirect_uri: request.redirect_uri,
            state: request.state,
            code: "access_denied",
            description: "the user cancelled the sign-in",
        }
        .location())
    }

    /// Removes the pending request `id` of `pool`; `None` when it was gone or expired (of two
    /// nodes taking it at once, one gets it).
    async fn take_pending(&self, pool: &str, id: &str) -> Result<Option<PendingRequest>, IdpError> {
        let body = self
            .store
            .take_pending_request(&sha256(id), pool, self.now())
            .await?;
        body.map(|b| stored::request_from(pool, &b)).transpose()
    }

    /// Ends the pending request `id` with a code for `username`; returns the redirect location.
    pub async fn complete(&self, pool: &str, id: &str, username: &str) -> Result<String, IdpError> {
        let Some(request) = self.take_pending(pool, id).await? else {
            return Err(IdpError::InvalidParameter("sign-in request expired".into()));
        };
        let code = random_id()?;
        let now = self.now();
        let record = CodeRecord {
            client_id: request.client_id.clone(),
            redirect_uri: request.redirect_uri.clone(),
            scopes: request.scopes.clone(),
            code_challenge: request.code_challenge.clone(),
            nonce: request.nonce.clone(),
            username: username.to_owned(),
        };
        let row = AuthCodeRow {
            code_hash: sha256(&code),
            pool: pool.to_owned(),
            client_id: record.client_id.clone(),
            body: stored::code_body(&record)?,
            expires_at: now.saturating_add(CODE_TTL_SECS),
        };
        if !self
            .store
            .issue_authorization_code(&row, MAX_CODES, now)
            .await?
        {
            return Err(IdpError::InvalidParameter(
                "too many authorization codes outstanding".into(),
            ));
        }
        let mut params = vec![("code", code.as_str())];
        if let Some(s) = &request.state {
            params.push(("state", s.as_str()));
        }
        Ok(append_query(&request.redirect_uri, &params))
    }

    /// Marks the code used and returns it, or reports a replay (with what it issued). Another
    /// client's code is refused without burning it; an expired one is dropped.
    async fn take_code(
        &self,
        key: &[u8],
        pool: &str,
        client_id: &str,
        now: i64,
    ) -> Result<Redeemed<CodeRecord>, OAuthError> {
        let store_error = |e| OAuthError::Server(IdpError::Store(e));
        match self
            .store
            .redeem_authorization_code(key, pool, client_id, now)
            .await
            .map_err(store_error)?
        {
            CodeRedemption::Fresh(body) => Ok(Redeemed::Fresh(
                stored::code_from(client_id, &body).map_err(store_error)?,
            )),
            CodeRedemption::Replayed(issued) => Ok(Redeemed::Replayed(issued)),
            CodeRedemption::Unknown | CodeRedemption::Expired => Err(OAuthError::InvalidGrant),
        }
    }

    /// `grant_type=authorization_code`: checks and burns the code, then starts the session.
    pub async fn redeem(
        &self,
        idp: &IdentityProvider,
        pool: &str,
        auth: &ClientAuth,
        code: Option<&str>,
        redirect_uri: Option<&str>,
        code_verifier: Option<&str>,
    ) -> Result<CodeTokens, OAuthError> {
        let client = idp.authenticate_client(pool, auth).await?;
        if !client.grants.iter().any(|g| g == "authorization_code") {
            return Err(OAuthError::UnauthorizedClient);
        }
        let code = code.ok_or(OAuthError::InvalidRequest("code is missing"))?;
        let redirect_uri =
            redirect_uri.ok_or(OAuthError::InvalidRequest("redirect_uri is missing"))?;
        let key = sha256(code);
        let now = self.now();
        let record = match self.take_code(&key, pool, &client.client_id, now).await? {
            Redeemed::Fresh(record) => record,
            Redeemed::Replayed(issued) => {
                if let Some(hash) = issued {
                    revoke_issued(idp, pool, &hash).await;
                }
                return Err(OAuthError::InvalidGrant);
            }
        };
        if !ct_eq(redirect_uri, &record.redirect_uri) {
            return Err(OAuthError::InvalidGrant);
        }
        match (&record.code_challenge, code_verifier) {
            (Some(challenge), Some(verifier)) if pkce_s256_matches(verifier, challenge) => {}
            (None, None) => {}
            _ => return Err(OAuthError::InvalidGrant),
        }
        let tokens = idp
            .issue_session_with_nonce(
                pool,
                &client.client_id,
                &record.username,
                &record.scopes,
                record.nonce.as_deref(),
            )
            .await
            .map_err(|e| match e {
                IdpError::UserNotFound | IdpError::InvalidParameter(_) => OAuthError::InvalidGrant,
                other => OAuthError::Server(other),
            })?;
        if let Some(refresh) = &tokens.refresh_token {
            let hash = crate::tokens::refresh_token_hash(refresh.expose());
            let still_there = self
                .store
                .record_code_issued(&key, &hash)
                .await
                .unwrap_or(false);
            if !still_there {
                // replayed (or evicted) while we were issuing: do not hand out live tokens
                revoke_issued(idp, pool, &hash).await;
                return Err(OAuthError::InvalidGrant);
            }
        }
        Ok(CodeTokens {
            id_token: record.scopes.iter().any(|s| s == "openid"),
            tokens,
        })
    }
}

/// What a redeemed code yields.
#[derive(Debug)]
pub struct CodeTokens {
    pub tokens: SessionTokens,
    /// Whether to return the ID token (only with the `openid` scope, as Cognito).
    pub id_token: bool,
}

impl CodeTokens {
    /// The token endpoint's JSON body.
    pub fn body(&self) -> serde_json::Value {
        let mut body = json!({
            "access_token": self.tokens.access_token.expose(),
            "token_type": "Bearer",
            "expires_in": self.tokens.expires_in,
        });
        if self.id_token {
            body["id_token"] = json!(self.tokens.id_token.expose());
        }
        if let Some(r) = &self.tokens.refresh_token {
            body["refresh_token"] = json!(r.expose());
        }
        body
    }
}

/// Revokes the refresh token (and its session) a replayed code issued.
async fn revoke_issued(idp: &IdentityProvider, pool: &str, hash: &[u8]) {
    let result = async {
        let Some(record) = idp.store().get_refresh_token(hash).await? else {
            return Ok::<(), IdpError>(());
        };
        idp.revoke_session_of(pool, &record).await
    }
    .await;
    match result {
        Ok(()) => tracing::warn!(pool, "authorization code replayed; its session was revoked"),
        Err(e) => tracing::error!(pool, error = %e, "could not revoke a replayed code's session"),
    }
}

/// The requested scopes: a subset of the client's allowed scopes; none ⇒ all of them.
fn requested_scopes(
    client: &ClientRecord,
    scope: Option<&str>,
) -> Result<Vec<String>, &'static str> {
    let mut out: Vec<String> = Vec::new();
    match scope {
        None => out.extend(client.allowed_scopes.iter().cloned()),
        Some(requested) => {
            for s in requested.split(' ').filter(|s| !s.is_empty()) {
                if out.len() >= MAX_SCOPES {
                    return Err("too many scopes");
                }
                if !client.allowed_scopes.iter().any(|a| a == s) {
                    return Err("a requested scope is not allowed for this client");
                }
                if !out.iter().any(|o| o == s) {
                    out.push(s.to_owned());
                }
            }
        }
    }
    if out.is_empty() {
        return Err("no scope can be granted");
    }
    Ok(out)
}

mod stored;
#[cfg(test)]
mod tests;
