//! One issuer's keys: the cached [`KeySet`], how it is (re)loaded, and the bounded HTTP fetch.
//!
//! * Keys are loaded lazily, on the first token from the issuer, from the configured `jwks_uri`
//!   or else from OIDC discovery (`{issuer}/.well-known/openid-configuration` → `jwks_uri`; the
//!   discovered URI is remembered until a JWKS fetch from it fails).
//! * The hot path is a read lock and an `Arc` clone: no network while the token's `kid` is known.
//! * A `kid` the set does not have triggers a reload, single-flight (one task fetches under an
//!   async mutex; the others wait and then reuse its result, recognised by the set's generation)
//!   and at most once per `min_refresh_interval` per issuer, whatever the outcome, so unknown
//!   `kid`s cannot turn the gateway into a JWKS flooder. A failed fetch keeps the previous keys.
//! * Each response must be `200`, arrive within `fetch_timeout` and stay within
//!   `max_jwks_bytes`, checked against `Content-Length` and again while reading.
//! * An in-process [`KeySource`] (set with `set_local_keys`) replaces fetching for its issuer.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use serde::Deserialize;

use super::keys::{self, Jwk, KeySet, KeySource, Lookup};
use super::{JwtError, JwtOptions};

/// Generations are unique across all issuers and verifiers, so a replaced set is never
/// mistaken for the one a waiter saw.
static NEXT_GENERATION: AtomicU64 = AtomicU64::new(1);

fn next_generation() -> u64 {
    NEXT_GENERATION.fetch_add(1, Ordering::Relaxed)
}

/// What only the refreshing task touches (guarded by the single-flight mutex).
#[derive(Default)]
struct RefreshState {
    last_attempt: Option<Instant>,
    /// Why the last attempt failed; `None` after a success.
    last_error: Option<String>,
    discovered_jwks_uri: Option<String>,
    /// What the local key source returned last time, to skip re-parsing an unchanged list.
    local_jwks: Option<Vec<Jwk>>,
}

pub(crate) struct IssuerKeys {
    pub issuer: String,
    pub audience: Vec<String>,
    /// Algorithms accepted from this issuer; empty: every one its keys allow.
    pub algorithms: Vec<super::keys::Algorithm>,
    jwks_uri: Option<String>,
    current: RwLock<Arc<KeySet>>,
    refresh: tokio::sync::Mutex<RefreshState>,
    local: RwLock<Option<Arc<dyn KeySource>>>,
}

impl std::fmt::Debug for IssuerKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IssuerKeys")
            .field("issuer", &self.issuer)
            .field("audience", &self.audience)
            .field("jwks_uri", &self.jwks_uri)
            .finish_non_exhaustive()
    }
}

/// A `kid` worth looking up: bounded, printable. Anything else cannot be in a sane JWKS and must
/// not cost a refresh.
fn plausible_kid(kid: &str) -> bool {
    !kid.is_empty() && kid.len() <= keys::MAX_KID_BYTES && !kid.chars().any(char::is_control)
}

impl IssuerKeys {
    pub(crate) fn new(issuer: String, audience: Vec<String>, jwks_uri: Option<String>) -> Self {
        IssuerKeys {
            issuer,
            audience,
            algorithms: Vec::new(),
            jwks_uri,
            current: RwLock::new(Arc::new(KeySet::empty(next_generation()))),
            refresh: tokio::sync::Mutex::new(RefreshState::default()),
            local: RwLock::new(None),
        }
    }

    fn current(&self) -> Arc<KeySet> {
        Arc::clone(&self.current.read().unwrap_or_else(|e| e.into_inner()))
    }

    fn install(&self, set: Arc<KeySet>) {
        *self.current.write().unwrap_or_else(|e| e.into_inner()) = set;
    }

    fn local_source(&self) -> Option<Arc<dyn KeySource>> {
        self.local.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Switches this issuer to an in-process key source; the current keys are dropped and the
    /// source is asked on the next token.
    pub(crate) fn set_local(&self, source: Arc<dyn KeySource>) {
        *self.local.write().unwrap_or_else(|e| e.into_inner()) = Some(source);
        self.install(Arc::new(KeySet::empty(next_generation())));
    }

    /// Finds the key for `kid`, loading or refreshing the set if needed. Returns the set and the
    /// key's index in it.
    pub(crate) async fn lookup(
        &self,
        kid: Option<&str>,
        http: &reqwest::Client,
        options: &JwtOptions,
    ) -> Result<(Arc<KeySet>, usize), JwtError> {
        if kid.is_some_and(|k| !plausible_kid(k)) {
            return Err(JwtError::UnknownKey);
        }
        let set = self.current();
        if set.loaded {
            match set.find(kid) {
                Lookup::Found(index) => return Ok((set, index)),
                Lookup::Ambiguous => return Err(JwtError::MissingKeyId),
                Lookup::NotFound => {}
            }
        }
        let set = self.refresh(set.generation, http, options).await?;
        match set.find(kid) {
            Lookup::Found(index) => Ok((set, index)),
            Lookup::Ambiguous => Err(JwtError::MissingKeyId),
            Lookup::NotFound => Err(JwtError::UnknownKey),
        }
    }

    /// Loads the keys now unless they are loaded already (subject to the rate limit).
    pub(crate) async fn ensure_loaded(
        &self,
        http: &reqwest::Client,
        options: &JwtOptions,
    ) -> Result<(), JwtError> {
        let set = self.current();
        if set.loaded {
            return Ok(());
        }
        self.refresh(set.generation, http, options)
            .await
            .map(|_| ())
    }

    /// Replaces the key set, single-flight and rate-limited. `seen` is the generation the caller
    /// found lacking: if the set changed meanwhile, the new one is returned without fetching.
    async fn refresh(
        &self,
        seen: u64,
        http: &reqwest::Client,
        options: &JwtOptions,
    ) -> Result<Arc<KeySet>, JwtError> {
        let mut state = self.refresh.lock().await;
        let current = self.current();
        if current.generation != seen {
            return Ok(current);
        }

        if let Some(source) = self.local_source() {
            let jwks = source.jwks();
            if current.loaded && state.local_jwks.as_ref() == Some(&jwks) {
                return Ok(current);
            }
            let set = Arc::new(KeySet::build(next_generation(), &jwks, &self.issuer));
            state.local_jwks = Some(jwks);
            self.install(Arc::clone(&set));
            return Ok(set);
        }

        if let Some(at) = state.last_attempt
            && at.elapsed() < options.min_refresh_interval
        {
            return match &state.last_error {
                Some(error) => Err(JwtError::KeysUnavailable(error.clone())),
                None => Ok(current),
            };
        }
        state.last_attempt = Some(Instant::now());

        match self.fetch_remote(&mut state, http, options).await {
            Ok(jwks) => {
                state.last_error = None;
                if self.local_source().is_some() {
                    // Switched to local keys while fetching: the remote result is stale.
                    return Ok(self.current());
                }
                let set = Arc::new(KeySet::build(next_generation(), &jwks, &self.issuer));
                tracing::debug!(issuer = %self.issuer, "JWKS loaded");
                self.install(Arc::clone(&set));
                Ok(set)
            }
            Err(error) => {
                tracing::warn!(issuer = %self.issuer, %error, "JWKS fetch failed; keeping the previous keys");
                state.last_error = Some(error.clone());
                Err(JwtError::KeysUnavailable(error))
            }
        }
    }

    async fn fetch_remote(
        &self,
        state: &mut RefreshState,
        http: &reqwest::Client,
        options: &JwtOptions,
    ) -> Result<Vec<Jwk>, String> {
        let uri = match (&self.jwks_uri, &state.discovered_jwks_uri) {
            (Some(uri), _) | (None, Some(uri)) => uri.clone(),
            (None, None) => {
                let uri = self.discover(http, options).await?;
                state.discovered_jwks_uri = Some(uri.clone());
                uri
            }
        };
        let result = fetch_bounded(http, &uri, options.max_jwks_bytes, options.fetch_timeout)
            .await
            .and_then(|body| keys::parse_jwks(&body).map_err(str::to_owned));
        if result.is_err() && self.jwks_uri.is_none() {
            // Maybe the issuer moved its JWKS: discover again next time.
            state.discovered_jwks_uri = None;
        }
        result.map_err(|e| format!("JWKS: {e}"))
    }

    async fn discover(
        &self,
        http: &reqwest::Client,
        options: &JwtOptions,
    ) -> Result<String, String> {
        #[derive(Deserialize)]
        struct Discovery {
            issuer: Option<String>,
            jwks_uri: Option<String>,
        }
        let url = format!(
            "{}/.well-known/openid-configuration",
            self.issuer.trim_end_matches('/')
        );
        let body = fetch_bounded(http, &url, options.max_jwks_bytes, options.fetch_timeout)
            .await
            .map_err(|e| format!("OIDC discovery: {e}"))?;
        let doc: Discovery = serde_json::from_slice(&body)
            .map_err(|_| "OIDC discovery: not a JSON object with string members".to_owned())?;
        if doc.issuer.as_ref().is_some_and(|i| *i != self.issuer) {
            return Err("OIDC discovery: the document names another issuer".to_owned());
        }
        match doc.jwks_uri {
            Some(uri) if uri.starts_with("https://") || uri.starts_with("http://") => Ok(uri),
            Some(_) => Err("OIDC discovery: jwks_uri is not an http(s) URL".to_owned()),
            None => Err("OIDC discovery: no jwks_uri".to_owned()),
        }
    }
}

/// GETs `url` expecting `200` and a body of at most `limit` bytes, all within `timeout`.
/// Errors are short descriptions without the URL.
pub(crate) async fn fetch_bounded(
    http: &reqwest::Client,
    url: &str,
    limit: usize,
    timeout: Duration,
) -> Result<Vec<u8>, String> {
    let fetch = async {
        let mut response = http
            .get(url)
            .header(reqwest::header::ACCEPT, "application/json")
            .send()
            .await
            .map_err(|e| format!("request failed: {}", e.without_url()))?;
        if response.status() != reqwest::StatusCode::OK {
            return Err(format!("HTTP status {}", response.status().as_u16()));
        }
        if response
            .content_length()
            .is_some_and(|len| len > limit as u64)
        {
            return Err(format!("body larger than {limit} bytes"));
        }
        let mut body = Vec::new();
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|e| format!("reading the body failed: {}", e.without_url()))?
        {
            if body.len() + chunk.len() > limit {
                return Err(format!("body larger than {limit} bytes"));
            }
            body.extend_from_slice(&chunk);
        }
        Ok(body)
    };
    tokio::time::timeout(timeout, fetch)
        .await
        .map_err(|_| format!("no complete answer within {} ms", timeout.as_millis()))?
}
