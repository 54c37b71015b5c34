//! The built-in identity provider: Cognito-like user pools for Portcullis.
//!
//! This crate owns the identity store ([`store`]: SQLite by default, PostgreSQL for shared
//! deployments, with their migrations), user passwords ([`password`]: policy and Argon2id),
//! the pools' RSA signing keys and their rotation ([`keys`]), token minting with Cognito's claim
//! sets ([`tokens`]), the OAuth2/OIDC endpoints (discovery, JWKS, token, revoke, the hosted
//! sign-in page with authorization code + PKCE ([`http`], [`oauth_code`]), userInfo, logout,
//! and cookie sessions for pages on the gateway's origin ([`http::cookie_session`])) as an axum
//! [`router`], the Cognito JSON API ([`http::cognito`]), code delivery to webhooks, the
//! [`IdentityProvider`] facade the binary and the CLI use, the [`admin`] operations shared by
//! the CLI and the gateway's admin HTTP API, what users may write ([`attributes`]: the pool's
//! attribute schema; [`username`]: normalised usernames without look-alikes), and the store's
//! revocation log ([`revocation`]),
//! through which revocations made by one process reach the live connections of another. It
//! does not verify tokens for routes (that is `portcullis-auth`, which reads this crate's keys
//! through [`KeySource`]).
#![cfg_attr(test, allow(clippy::unwrap_used))]

mod access_token;
pub mod admin;
pub mod attributes;
mod challenge;
mod codes;
pub mod delivery;
pub mod http;
pub mod keys;
pub mod lockout;
pub mod oauth_code;
pub mod password;
pub mod ratelimit;
pub mod revocation;
pub mod store;
pub mod tokens;
pub mod username;

#[cfg(test)]
mod session_tests;
#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_lc_rs::hmac;
use portcullis_auth::jwt::KeySource;
use portcullis_config::{Config, Pool, Secret};

pub use http::router;
pub use http::{CognitoOptions, cognito_router, cognito_router_with};
pub use lockout::{LOCK_AFTER, LOCK_CAP_SECS, LOCK_RESET_SECS};
pub use password::{PasswordHasher, PolicyViolation};
pub use store::{
    ClientRecord, ResourceServerRecord, RevocationEventRecord, RevokedSubject, Store, StoreError,
    UserRecord, UserStatus,
};

use keys::{AtRest, KeyError, KeyRing, PoolKeys};
use password::HashError;
use ratelimit::RateLimiter;
use revocation::EventCursor;
use store::RefreshTokenRecord;
use tokens::SessionInfo;

/// Seconds since the Unix epoch.
pub(crate) fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

fn secs(d: Duration) -> i64 {
    i64::try_from(d.as_secs()).unwrap_or(i64::MAX)
}

/// Who caused an [`IdpError`]: drives status codes and log levels at the edges.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// The caller asked for something wrong or impossible (4xx).
    Client,
    /// The configuration or the environment (database down, bad store URL).
    Operator,
    /// A bug or a failure of a library this crate relies on.
    Internal,
}

/// Errors of the identity provider's operations.
#[derive(Debug, thiserror::Error)]
pub enum IdpError {
    #[error("no user pool named {0:?}")]
    UnknownPool(String),
    #[error("user not found")]
    UserNotFound,
    #[error("user already exists")]
    UserExists,
    #[error("group not found")]
    GroupNotFound,
    #[error("{0}")]
    InvalidPassword(#[from] PolicyViolation),
    #[error("invalid parameter: {0}")]
    InvalidParameter(String),
    #[error("identity configuration: {0}")]
    Config(String),
    #[error(transparent)]
    Store(StoreError),
    #[error(transparent)]
    Key(#[from] KeyError),
    #[error(transparent)]
    Hash(#[from] HashError),
}

impl From<StoreError> for IdpError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Conflict("user") => IdpError::UserExists,
            other => IdpError::Store(other),
        }
    }
}

impl IdpError {
    pub fn fault(&self) -> Fault {
        match self {
            IdpError::UnknownPool(_)
            | IdpError::UserNotFound
            | IdpError::UserExists
            | IdpError::GroupNotFound
            | IdpError::InvalidPassword(_)
            | IdpError::InvalidParameter(_) => Fault::Client,
            IdpError::Config(_) => Fault::Operator,
            IdpError::Store(StoreError::Conflict(_) | StoreError::NotFound(_)) => Fault::Client,
            IdpError::Store(
                StoreError::Database(_) | StoreError::UnsupportedUrl | StoreError::Permissions(_),
            ) => Fault::Operator,
            IdpError::Store(StoreError::Corrupt(_)) | IdpError::Key(_) | IdpError::Hash(_) => {
                Fault::Internal
            }
        }
    }
}

/// Tunables that are not (yet) configuration keys.
#[derive(Debug, Clone)]
pub struct IdpOptions {
    /// How long a new signing key is published before it signs. Default 5 minutes.
    pub key_grace: Duration,
    /// Most client IPs tracked by each pool's rate limiter (the rate itself is the pool's
    /// `rate_limit_per_ip`). Default 10,000.
    pub rate_limit_entries: usize,
    /// Argon2 hashes running at once. Default: one per core.
    pub hash_concurrency: usize,
    /// How often a serving gateway reads the store's revocation log (see
    /// [`IdentityProvider::poll_revocation_events`]). Default 1 second.
    pub revocation_poll_interval: Duration,
    /// Most revocation events read by one poll. Default 256.
    pub revocation_poll_batch: u32,
    /// Most unknown usernames whose failed sign-ins each pool counts (so they lock out like
    /// real users); the least recently failed is forgotten first. Default 10,000.
    pub unknown_name_entries: usize,
    /// The clock of lockouts, sessions and sign-outs (the system's unless a test fixes it).
    pub clock: Clock,
}

/// Unix seconds as the provider sees them: the system clock, or a time a test sets.
#[derive(Clone, Default)]
pub struct Clock(Option<Arc<AtomicI64>>);

impl Clock {
    /// A clock that stands at `now` until [`set`](Self::set).
    pub fn fixed(now: i64) -> Self {
        Clock(Some(Arc::new(AtomicI64::new(now))))
    }

    /// Moves a fixed clock (the system clock ignores this).
    pub fn set(&self, now: i64) {
        if let Some(t) = &self.0 {
            t.store(now, Ordering::SeqCst);
        }
    }

    pub fn now(&self) -> i64 {
        match &self.0 {
            Some(t) => t.load(Ordering::SeqCst),
            None => unix_now(),
        }
    }
}

impl std::fmt::Debug for Clock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.0 {
            Some(t) => write!(f, "Clock(fixed at {})", t.load(Ordering::SeqCst)),
            None => f.write_str("Clock(system)"),
        }
    }
}

impl Default for IdpOptions {
    fn default() -> Self {
        IdpOptions {
            key_grace: Duration::from_secs(300),
            rate_limit_entries: 10_000,
            hash_concurrency: std::thread::available_parallelism().map_or(1, |n| n.get()),
            revocation_poll_interval: Duration::from_secs(1),
            revocation_poll_batch: 256,
            unknown_name_entries: lockout::DEFAULT_UNKNOWN_NAMES,
            clock: Clock::default(),
        }
    }
}

/// One configured pool at run time.
#[derive(Debug)]
pub(crate) struct PoolState {
    pub(crate) config: Pool,
    pub(crate) issuer: String,
    pub(crate) keys: Arc<PoolKeys>,
    /// Per-client-IP limit of the pool's token, sign-in and sign-up requests
    /// (`rate_limit_per_ip`); `None` when it is 0 (off).
    pub(crate) limiter: Option<RateLimiter>,
    /// Failed sign-ins of usernames the pool does not have.
    pub(crate) unknown_names: lockout::UnknownNames,
}

/// Times the lockout compare-and-swap is retried against parallel sign-ins before the guess
/// is refused as if locked.
const LOCK_SWAP_TRIES: usize = 8;

/// The outcome of [`IdentityProvider::verify_password_with_lockout`].
#[derive(Debug)]
pub enum PasswordCheck {
    /// The password matches; failure counters were reset.
    Valid(UserRecord),
    /// Locked out (or too many checks of this user already running): the password was not
    /// checked.
    Locked,
    /// Wrong password, or no such user (counted).
    Invalid,
}

/// Tokens of one user session.
#[derive(Debug, Clone)]
pub struct SessionTokens {
    pub access_token: Secret,
    pub id_token: Secret,
    /// Absent when refreshing without rotation (Cognito returns no new refresh token).
    pub refresh_token: Option<Secret>,
    pub expires_in: i64,
}

/// A user with the groups it belongs to (`show user`).
#[derive(Debug, Clone)]
pub struct UserDetails {
    pub user: UserRecord,
    pub groups: Vec<String>,
}

/// How a client authenticated at the token or revocation endpoint.
#[derive(Clone)]
pub struct ClientAuth {
    pub client_id: String,
    pub secret: Option<Secret>,
    /// True when the credentials came in an `Authorization: Basic` header.
    pub basic: bool,
}

impl std::fmt::Debug for ClientAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientAuth")
            .field("client_id", &self.client_id)
            .field("secret", &self.secret)
            .field("basic", &self.basic)
            .finish()
    }
}

/// RFC 6749 §5.2 errors of the token and revocation endpoints.
#[derive(Debug, thiserror::Error)]
pub enum OAuthError {
    #[error("invalid_request: {0}")]
    InvalidRequest(&'static str),
    #[error("invalid_client")]
    InvalidClient,
    #[error("invalid_grant")]
    InvalidGrant,
    #[error("unauthorized_client")]
    UnauthorizedClient,
    #[error("unsupported_grant_type")]
    UnsupportedGrantType,
    #[error("invalid_scope")]
    InvalidScope,
    /// RFC 7009 §2.2.1: a token the revocation endpoint cannot revoke.
    #[error("unsupported_token_type")]
    UnsupportedTokenType,
    #[error("too many requests")]
    TooManyRequests,
    #[error("server error: {0}")]
    Server(#[from] IdpError),
}

impl From<StoreError> for OAuthError {
    fn from(e: StoreError) -> Self {
        OAuthError::Server(e.into())
    }
}

impl OAuthError {
    /// The `error` code of the JSON body.
    pub fn code(&self) -> &'static str {
        match self {
            OAuthError::InvalidRequest(_) => "invalid_request",
            OAuthError::InvalidClient => "invalid_client",
            OAuthError::InvalidGrant => "invalid_grant",
            OAuthError::UnauthorizedClient => "unauthorized_client",
            OAuthError::UnsupportedGrantType => "unsupported_grant_type",
            OAuthError::InvalidScope => "invalid_scope",
            OAuthError::UnsupportedTokenType => "unsupported_token_type",
            OAuthError::TooManyRequests => "slow_down",
            OAuthError::Server(_) => "server_error",
        }
    }
}

/// A successful token endpoint answer.
#[derive(Debug, Clone)]
pub struct TokenGrant {
    pub access_token: Secret,
    pub id_token: Option<Secret>,
    /// The next refresh token, when the client rotates them.
    pub refresh_token: Option<Secret>,
    pub expires_in: i64,
}

/// Most users returned by one `list_users` call.
pub const MAX_LIST_USERS: u32 = 1000;

/// The identity provider: pools from the configuration, their store and keys.
pub struct IdentityProvider {
    store: Arc<dyn Store>,
    public_url: String,
    pools: HashMap<String, PoolState>,
    hasher: PasswordHasher,
    /// HMAC key for client secrets (per store, random, created on first start).
    secret_key: hmac::Key,
    /// How signing keys and the pepper are kept in the store (sealed with the
    /// key-encryption key, or as they are).
    at_rest: AtRest,
    options: IdpOptions,
    /// Pending hosted sign-ins and authorization codes (in memory).
    code_flow: oauth_code::CodeFlow,
    /// Revocations made by this process, and those of other processes read from the store's
    /// revocation log, for the gateway to close live connections.
    revocations: tokio::sync::broadcast::Sender<Revocation>,
    /// Tags the revocation events this process writes, so its poller skips them.
    writer_id: String,
    /// Where the poller of the revocation log is.
    feed: tokio::sync::Mutex<RevocationFeed>,
    /// A hash of a password nobody has: what unknown users' passwords are checked against.
    dummy_hash: tokio::sync::OnceCell<String>,
}

/// The reader's state of the store's revocation log.
#[derive(Debug)]
struct RevocationFeed {
    cursor: EventCursor,
    last_prune: Option<std::time::Instant>,
}

/// How often the poller deletes old revocation events.
const REVOCATION_PRUNE_EVERY: Duration = Duration::from_secs(60);
/// Revocation events are kept at least this long (and at least the longest token lifetime).
const REVOCATION_KEEP_MIN: i64 = 600;

/// What one [`IdentityProvider::poll_revocation_events`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RevocationPoll {
    /// Events of other processes turned into [`Revocation`]s.
    pub announced: usize,
    /// The batch was full: poll again at once.
    pub more: bool,
}

/// A revocation (sign-out, token revocation, disabled or deleted user), announced so the
/// gateway can close the live connections it covers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Revocation {
    /// One session: every token carrying this `origin_jti`.
    Session { issuer: String, origin_jti: String },
    /// Every token of this user (`sub`) issued before `before` (unix seconds).
    User {
        issuer: String,
        sub: String,
        before: i64,
    },
}

/// Revocations buffered for slow subscribers; a lagging subscriber skips the oldest.
const REVOCATION_BUFFER: usize = 1024;

impl std::fmt::Debug for IdentityProvider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IdentityProvider")
            .field("store", &self.store)
            .field("public_url", &self.public_url)
            .field("pools", &self.pools.keys().collect::<Vec<_>>())
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

/// The rate limiter of a pool: `rate_limit_per_ip` requests per second, bursts of twice that.
fn pool_limiter(pool: &Pool, max_entries: usize) -> Option<RateLimiter> {
    let rate = pool.rate_limit_per_ip;
    (rate > 0).then(|| RateLimiter::new(f64::from(rate), rate.saturating_mul(2), max_entries))
}

/// The lockout fields of a user row.
fn lock_state(user: &UserRecord) -> lockout::LockState {
    lockout::LockState {
        failures: user.failed_attempts,
        locked_until: user.locked_until,
        changed_at: user.updated_at,
    }
}

impl IdentityProvider {
    /// Opens the store named by `[store].url`, migrates it, upserts the configured pools,
    /// groups, resource servers and clients, and loads (or creates) every pool's signing key.
    pub async fn open(config: &Config) -> Result<Arc<Self>, IdpError> {
        Self::open_with(config, IdpOptions::default()).await
    }

    /// [`open`](Self::open) with explicit options.
    pub async fn open_with(config: &Config, options: IdpOptions) -> Result<Arc<Self>, IdpError> {
        let store = store::open(&config.store.url).await?;
        Self::with_store(config, store, options).await
    }

    /// [`open_with`](Self::open_with) over an already opened store.
    pub async fn with_store(
        config: &Config,
        store: Arc<dyn Store>,
        options: IdpOptions,
    ) -> Result<Arc<Self>, IdpError> {
        store.migrate().await?;
        let at_rest = AtRest::from_config(config.store.key_encryption_key.as_ref())?;
        let pepper = at_rest.open_store(store.as_ref()).await?;
        let secret_key = hmac::Key::new(hmac::HMAC_SHA256, &pepper);
        let public_url = config.server.public_url.trim_end_matches('/').to_owned();
        // Revocations written before this process started cover no connection of it.
        let last_event = store.last_revocation_event_id().await?;
        let mut pools = HashMap::new();
        for (name, pool) in &config.pools {
            let max_ttl = secs(pool.access_token_ttl.max(pool.id_token_ttl));
            pools.insert(
                name.clone(),
                PoolState {
                    config: pool.clone(),
                    issuer: format!("{public_url}/pools/{name}"),
                    keys: Arc::new(PoolKeys::new(KeyRing::default(), max_ttl)),
                    limiter: pool_limiter(pool, options.rate_limit_entries),
                    unknown_names: lockout::UnknownNames::new(options.unknown_name_entries),
                },
            );
        }
        let idp = IdentityProvider {
            store,
            public_url,
            pools,
            hasher: PasswordHasher::new(options.hash_concurrency),
            secret_key,
            at_rest,
            code_flow: oauth_code::CodeFlow::default(),
            revocations: tokio::sync::broadcast::channel(REVOCATION_BUFFER).0,
            writer_id: tokens::uuid_v4(),
            feed: tokio::sync::Mutex::new(RevocationFeed {
                cursor: EventCursor::new(last_event),
                last_prune: None,
            }),
            dummy_hash: tokio::sync::OnceCell::new(),
            options,
        };
        idp.sync_config(config).await?;
        for name in config.pools.keys() {
            idp.ensure_keys(name).await?;
        }
        Ok(Arc::new(idp))
    }

    /// Upserts the configuration's pools, groups, resource servers and clients (secrets
    /// hashed). Clients and resource servers of a configured pool that the configuration no
    /// longer lists are deleted (they are configuration-owned); groups are only added, so
    /// memberships survive.
    pub async fn sync_config(&self, config: &Config) -> Result<(), IdpError> {
        let now = unix_now();
        for (name, pool) in &config.pools {
            self.store.upsert_pool(name, now).await?;
            for group in &pool.groups {
                self.store.upsert_group(name, group, now).await?;
            }
            for rs in self.store.list_resource_servers(name).await? {
                if !pool.resource_servers.contains_key(&rs.identifier) {
                    self.store
                        .delete_resource_server(name, &rs.identifier)
                        .await?;
                }
            }
            for (identifier, rs) in &pool.resource_servers {
                let id = if rs.identifier.is_empty() {
                    identifier
                } else {
                    &rs.identifier
                };
                self.store
                    .upsert_resource_server(&ResourceServerRecord {
                        pool: name.clone(),
                        identifier: id.clone(),
                        scopes: rs.scopes.clone(),
                    })
                    .await?;
            }
            for c in self.store.list_clients(name).await? {
                if !pool.clients.contains_key(&c.client_id) {
                    self.store.delete_client(&c.client_id).await?;
                }
            }
            for (client_id, c) in &pool.clients {
                let secret_hash = c
                    .secret
                    .as_ref()
                    .map(|s| store::SecretBytes(self.client_secret_hash(client_id, s)));
                self.store
                    .upsert_client(
                        &ClientRecord {
                            client_id: client_id.clone(),
                            pool: name.clone(),
                            public: c.public || secret_hash.is_none(),
                            secret_hash,
                            grants: c.grants.clone(),
                            callback_urls: c.callback_urls.clone(),
                            logout_urls: c.logout_urls.clone(),
                            allowed_scopes: c.allowed_scopes.clone(),
                        },
                        now,
                    )
                    .await
                    .map_err(|e| match e {
                        StoreError::Conflict(_) => IdpError::Config(format!(
                            "client id {client_id:?} of pool {name:?} belongs to another pool \
                             in the store"
                        )),
                        other => other.into(),
                    })?;
            }
        }
        Ok(())
    }

    /// HMAC-SHA256 keyed with the store's pepper over `client_id NUL secret`.
    fn client_secret_hash(&self, client_id: &str, secret: &Secret) -> Vec<u8> {
        let mut ctx = hmac::Context::with_key(&self.secret_key);
        ctx.update(client_id.as_bytes());
        ctx.update(&[0]);
        ctx.update(secret.expose().as_bytes());
        ctx.sign().as_ref().to_vec()
    }

    fn client_secret_matches(&self, client_id: &str, secret: &Secret, stored: &[u8]) -> bool {
        let mut msg = Vec::with_capacity(client_id.len() + 1 + secret.expose().len());
        msg.extend_from_slice(client_id.as_bytes());
        msg.push(0);
        msg.extend_from_slice(secret.expose().as_bytes());
        // constant-time comparison inside aws-lc-rs
        hmac::verify(&self.secret_key, &msg, stored).is_ok()
    }

    /// Takes one request of `ip` from `pool`'s rate limit; false when it is used up (429).
    /// Unknown pools and pools without a limit always allow.
    pub(crate) fn allow_request(&self, pool: &str, ip: IpAddr) -> bool {
        self.pools
            .get(pool)
            .and_then(|p| p.limiter.as_ref())
            .is_none_or(|l| l.allow(ip))
    }

    pub(crate) fn pool(&self, pool: &str) -> Result<&PoolState, IdpError> {
        self.pools
            .get(pool)
            .ok_or_else(|| IdpError::UnknownPool(pool.to_owned()))
    }

    /// Names of the configured pools.
    pub fn pool_names(&self) -> Vec<String> {
        let mut names: Vec<String> = self.pools.keys().cloned().collect();
        names.sort();
        names
    }

    /// `{public_url}/pools/{pool}` (also for pools that are not configured).
    pub fn issuer(&self, pool: &str) -> String {
        match self.pools.get(pool) {
            Some(p) => p.issuer.clone(),
            None => format!("{}/pools/{pool}", self.public_url),
        }
    }

    /// The pool's published keys, for `JwtVerifier::set_local_keys`. An unknown pool yields a
    /// source with no keys.
    pub fn key_source(&self, pool: &str) -> Arc<dyn KeySource> {
        match self.pools.get(pool) {
            Some(p) => Arc::clone(&p.keys) as Arc<dyn KeySource>,
            None => Arc::new(PoolKeys::new(KeyRing::default(), 0)),
        }
    }

    /// The store (for later phases and tests).
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    /// The authorization-code flow's in-memory state.
    pub fn code_flow(&self) -> &oauth_code::CodeFlow {
        &self.code_flow
    }

    /// The password hasher shared by every pool.
    pub fn hasher(&self) -> &PasswordHasher {
        &self.hasher
    }

    // ---- keys ----

    /// Loads the pool's keys, creating the first one (signing at once) when none can sign, and
    /// deletes keys that are no longer published.
    async fn ensure_keys(&self, pool: &str) -> Result<(), IdpError> {
        let state = self.pool(pool)?;
        let now = unix_now();
        self.store
            .delete_signing_keys_retired_before(pool, now.saturating_sub(state.keys.max_ttl))
            .await?;
        let records = self.store.list_signing_keys(pool).await?;
        if !records.iter().any(|r| r.retired_at.is_none()) {
            let record = self.at_rest.seal_key(generate_key(pool, now, now).await?)?;
            self.store.insert_signing_key(&record).await?;
            tracing::info!(pool, kid = %record.kid, "created signing key");
        }
        self.reload_keys(pool).await
    }

    /// Re-reads the pool's keys from the store (e.g. after another node rotated them).
    pub async fn reload_keys(&self, pool: &str) -> Result<(), IdpError> {
        let state = self.pool(pool)?;
        let records = self
            .store
            .list_signing_keys(pool)
            .await?
            .iter()
            .map(|r| self.at_rest.open_key(r))
            .collect::<Result<Vec<_>, _>>()?;
        state.keys.replace(KeyRing::from_records(&records)?);
        Ok(())
    }

    /// Rotates the pool's signing key: the new key is published now and signs after the grace
    /// period; the current key signs until then and stays published for the pool's longest
    /// token lifetime after. Returns the new `kid`.
    pub async fn rotate_keys(&self, pool: &str) -> Result<String, IdpError> {
        let now = unix_now();
        let switch = now.saturating_add(secs(self.options.key_grace));
        self.pool(pool)?;
        let record = self
            .at_rest
            .seal_key(generate_key(pool, now, switch).await?)?;
        self.store.retire_signing_keys(pool, switch).await?;
        self.store.insert_signing_key(&record).await?;
        tracing::info!(pool, kid = %record.kid, "rotated signing key");
        self.reload_keys(pool).await?;
        Ok(record.kid)
    }

    fn sign(
        &self,
        pool: &PoolState,
        claims: &serde_json::Value,
        now: i64,
    ) -> Result<Secret, IdpError> {
        let ring = pool.keys.ring();
        let key = ring
            .signing_key(now)
            .ok_or(IdpError::Key(KeyError("no signing key")))?;
        Ok(Secret::new(key.sign_jwt(claims)?))
    }

    // ---- users (admin) ----

    /// Creates a user. Without a password the user is `UNCONFIRMED`; with one it is
    /// `CONFIRMED` (permanent) or `FORCE_CHANGE_PASSWORD` (temporary).
    pub async fn create_user(
        &self,
        pool: &str,
        username: &str,
        attributes: BTreeMap<String, String>,
        password: Option<(&Secret, bool)>,
    ) -> Result<UserRecord, IdpError> {
        let state = self.pool(pool)?;
        let username = &crate::username::normalize(username)
            .map_err(|e| IdpError::InvalidParameter(e.to_string()))?;
        crate::attributes::check_write(
            &state.config,
            crate::attributes::Writer::Admin,
            &attributes,
        )
        .map_err(|e| IdpError::InvalidParameter(e.to_string()))?;
        let (password_hash, status) = match password {
            Some((pw, permanent)) => {
                password::check_policy(&state.config.password_policy, pw.expose())?;
                let status = if permanent {
                    UserStatus::Confirmed
                } else {
                    UserStatus::ForceChangePassword
                };
                (Some(self.hasher.hash(pw).await?), status)
            }
            None => (None, UserStatus::Unconfirmed),
        };
        let now = unix_now();
        let user = UserRecord {
            pool: pool.to_owned(),
            username: username.to_owned(),
            sub: tokens::uuid_v4(),
            password_hash,
            status,
            enabled: true,
            attributes,
            failed_attempts: 0,
            locked_until: None,
            tokens_valid_after: 0,
            created_at: now,
            updated_at: now,
        };
        self.store.create_user(&user).await?;
        Ok(user)
    }

    /// Users of a pool by username, at most `limit` (capped at [`MAX_LIST_USERS`]) after `after`.
    pub async fn list_users(
        &self,
        pool: &str,
        after: Option<&str>,
        limit: u32,
    ) -> Result<Vec<UserRecord>, IdpError> {
        self.pool(pool)?;
        Ok(self
            .store
            .list_users(pool, after, limit.min(MAX_LIST_USERS))
            .await?)
    }

    /// The provider's clock (unix seconds).
    pub(crate) fn now(&self) -> i64 {
        self.options.clock.now()
    }

    /// Checks `password` against a hash nobody has: the work a real user's check costs.
    pub(crate) async fn dummy_verify(&self, password: &Secret) -> Result<(), IdpError> {
        let hash = self
            .dummy_hash
            .get_or_try_init(|| async {
                let mut random = [0u8; 32];
                aws_lc_rs::rand::fill(&mut random)
                    .map_err(|_| HashError("no randomness".into()))?;
                let nobody: String = random.iter().map(|b| format!("{b:02x}")).collect();
                self.hasher.hash(&Secret::new(nobody)).await
            })
            .await?;
        self.hasher.verify(password, hash).await?;
        Ok(())
    }

    /// A sign-in with a username the pool does not have: counted and locked out exactly like
    /// a real user's wrong password (same answers, and the same hashing work), never valid.
    pub async fn verify_unknown_user_password(
        &self,
        pool: &str,
        username: &str,
        password: &Secret,
    ) -> Result<PasswordCheck, IdpError> {
        let state = self.pool(pool)?;
        if !state.unknown_names.reserve(username, self.now()) {
            return Ok(PasswordCheck::Locked);
        }
        self.dummy_verify(password).await?;
        Ok(PasswordCheck::Invalid)
    }

    /// Verifies the password of `username`, known or not (see
    /// [`verify_password_with_lockout`](Self::verify_password_with_lockout) and
    /// [`verify_unknown_user_password`](Self::verify_unknown_user_password)).
    pub async fn sign_in_password(
        &self,
        pool: &str,
        username: &str,
        password: &Secret,
    ) -> Result<PasswordCheck, IdpError> {
        self.pool(pool)?;
        match self.store.get_user(pool, username).await? {
            Some(user) => self.verify_password_with_lockout(user, password).await,
            None => {
                self.verify_unknown_user_password(pool, username, password)
                    .await
            }
        }
    }

    /// Verifies a user's password with Cognito's lockout: after [`LOCK_AFTER`] failures in a
    /// row, each further failure locks the user out for twice as long as the last (1 s, 2 s,
    /// 4 s … at most [`LOCK_CAP_SECS`]); a quiet [`LOCK_RESET_SECS`] forgets the failures. A
    /// locked user is refused without a password check. Used by every sign-in path (the
    /// Cognito JSON API and the hosted page).
    ///
    /// Each check is counted in the store *before* it runs (a compare-and-swap of the user's
    /// row, so parallel guesses and other processes sharing the store see every one), and the
    /// lock a failure would bring is set with it; a matching password then clears the count.
    /// So however many guesses arrive at once, at most [`LOCK_AFTER`] are checked before the
    /// first lock, and one per lock after it. A user without a password costs a dummy check.
    pub async fn verify_password_with_lockout(
        &self,
        mut user: UserRecord,
        password: &Secret,
    ) -> Result<PasswordCheck, IdpError> {
        let now = self.now();
        let mut reserved = None;
        for _ in 0..LOCK_SWAP_TRIES {
            let current = lock_state(&user);
            let Some(next) = lockout::reserve(current, now) else {
                return Ok(PasswordCheck::Locked);
            };
            if self
                .store
                .swap_lock_state(&user.pool, &user.username, &current, &next)
                .await?
            {
                reserved = Some(next);
                break;
            }
            match self.store.get_user(&user.pool, &user.username).await? {
                Some(fresh) => user = fresh,
                // deleted meanwhile: an unknown user now
                None => {
                    let (pool, username) = (user.pool.clone(), user.username.clone());
                    return self
                        .verify_unknown_user_password(&pool, &username, password)
                        .await;
                }
            }
        }
        // Still contended after every try: many guesses at once, refused unchecked.
        let Some(reserved) = reserved else {
            return Ok(PasswordCheck::Locked);
        };
        let ok = match &user.password_hash {
            Some(phc) => self.hasher.verify(password, phc).await?,
            None => {
                self.dummy_verify(password).await?;
                false
            }
        };
        if ok {
            self.store
                .clear_lock_state(&user.pool, &user.username, now)
                .await?;
            user.failed_attempts = 0;
            user.locked_until = None;
            user.updated_at = now;
            return Ok(PasswordCheck::Valid(user));
        }
        // The lock was set when the check was reserved; it runs from the failure's answer, so
        // restart it now unless the row changed meanwhile (a success cleared it, or a newer
        // reservation set its own).
        if let Some(secs) = lockout::lock_secs(reserved.failures) {
            let after = self.now();
            if after > now {
                let restarted = lockout::LockState {
                    locked_until: Some(after.saturating_add(secs)),
                    ..reserved
                };
                self.store
                    .swap_lock_state(&user.pool, &user.username, &reserved, &restarted)
                    .await?;
            }
        }
        if reserved.failures > LOCK_AFTER {
            tracing::info!(pool = %user.pool, username = %user.username, failures = reserved.failures, "sign-in lockout");
        }
        Ok(PasswordCheck::Invalid)
    }

    async fn user(&self, pool: &str, username: &str) -> Result<UserRecord, IdpError> {
        self.pool(pool)?;
        self.store
            .get_user(pool, username)
            .await?
            .ok_or(IdpError::UserNotFound)
    }

    pub async fn show_user(&self, pool: &str, username: &str) -> Result<UserDetails, IdpError> {
        let user = self.user(pool, username).await?;
        let groups = self.store.user_groups(pool, username).await?;
        Ok(UserDetails { user, groups })
    }

    /// Deletes a user; its refresh tokens go with it and its tokens count as revoked.
    pub async fn delete_user(&self, pool: &str, username: &str) -> Result<(), IdpError> {
        let user = self.user(pool, username).await?;
        if !self.store.delete_user(pool, username).await? {
            return Err(IdpError::UserNotFound);
        }
        self.revoked(
            pool,
            RevokedSubject::User {
                sub: user.sub,
                before: i64::MAX,
            },
        )
        .await
    }

    /// Sets a password (policy checked). Permanent → `CONFIRMED`; temporary →
    /// `FORCE_CHANGE_PASSWORD`. Clears a lockout, and ends every session of the user as
    /// [`global_sign_out`](Self::global_sign_out) does (admin set-password, a reset with a
    /// code, a first password after a temporary one).
    pub async fn set_password(
        &self,
        pool: &str,
        username: &str,
        password: &Secret,
        permanent: bool,
    ) -> Result<(), IdpError> {
        self.store_password(pool, username, password, permanent)
            .await?;
        self.end_sessions(pool, username).await
    }

    /// A user changes their own password with a token of session `current` (ChangePassword):
    /// every refresh token of the user is revoked and every other session ends at once; the
    /// access and ID tokens of `current` stay valid until they expire, as in Cognito.
    pub async fn change_password(
        &self,
        pool: &str,
        username: &str,
        password: &Secret,
        current: Option<&str>,
    ) -> Result<(), IdpError> {
        self.store_password(pool, username, password, true).await?;
        let state = self.pool(pool)?;
        let now = self.now();
        let ended = self
            .store
            .revoke_user_sessions(pool, username, current, now, self.session_keep(state, now))
            .await?;
        for origin_jti in ended {
            self.revoked(pool, RevokedSubject::Session { origin_jti })
                .await?;
        }
        Ok(())
    }

    async fn store_password(
        &self,
        pool: &str,
        username: &str,
        password: &Secret,
        permanent: bool,
    ) -> Result<(), IdpError> {
        let state = self.pool(pool)?;
        password::check_policy(&state.config.password_policy, password.expose())?;
        let hash = self.hasher.hash(password).await?;
        let mut user = self.user(pool, username).await?;
        user.password_hash = Some(hash);
        user.status = if permanent {
            UserStatus::Confirmed
        } else {
            UserStatus::ForceChangePassword
        };
        user.failed_attempts = 0;
        user.locked_until = None;
        user.updated_at = self.now();
        self.store.update_user(&user).await?;
        Ok(())
    }

    /// How long a revoked session is remembered: as long as any token of it may be alive.
    fn session_keep(&self, state: &PoolState, now: i64) -> i64 {
        now.saturating_add(
            secs(state.config.refresh_token_ttl)
                .max(state.keys.max_ttl)
                .max(REVOCATION_KEEP_MIN),
        )
    }

    /// Verifies a user's password (admin checks and tests). Sign-in (later phase) must add
    /// lockout and hide unknown users from timing; this helper does neither.
    pub async fn check_password(
        &self,
        pool: &str,
        username: &str,
        password: &Secret,
    ) -> Result<bool, IdpError> {
        let user = self.user(pool, username).await?;
        match &user.password_hash {
            Some(phc) => Ok(self.hasher.verify(password, phc).await?),
            None => Ok(false),
        }
    }

    /// Confirms a sign-up with the code sent to the user's email address: `UNCONFIRMED` →
    /// `CONFIRMED`, and the address it reached is verified (`email_verified`).
    pub(crate) async fn confirm_sign_up_by_code(
        &self,
        pool: &str,
        username: &str,
    ) -> Result<(), IdpError> {
        let mut user = self.user(pool, username).await?;
        if user.status == UserStatus::Unconfirmed {
            user.status = UserStatus::Confirmed;
            if user.attributes.contains_key("email") {
                user.attributes
                    .insert("email_verified".into(), "true".into());
            }
            user.updated_at = unix_now();
            self.store.update_user(&user).await?;
        }
        Ok(())
    }

    /// `UNCONFIRMED` → `CONFIRMED` (AdminConfirmSignUp). Other statuses are left alone.
    pub async fn confirm_user(&self, pool: &str, username: &str) -> Result<(), IdpError> {
        let mut user = self.user(pool, username).await?;
        if user.status == UserStatus::Unconfirmed {
            user.status = UserStatus::Confirmed;
            user.updated_at = unix_now();
            self.store.update_user(&user).await?;
        }
        Ok(())
    }

    pub async fn add_user_to_group(
        &self,
        pool: &str,
        username: &str,
        group: &str,
    ) -> Result<(), IdpError> {
        self.user(pool, username).await?;
        if !self
            .store
            .list_groups(pool)
            .await?
            .iter()
            .any(|g| g == group)
        {
            return Err(IdpError::GroupNotFound);
        }
        self.store.add_user_to_group(pool, username, group).await?;
        Ok(())
    }

    pub async fn remove_user_from_group(
        &self,
        pool: &str,
        username: &str,
        group: &str,
    ) -> Result<(), IdpError> {
        self.user(pool, username).await?;
        self.store
            .remove_user_from_group(pool, username, group)
            .await?;
        Ok(())
    }

    pub async fn list_groups(&self, pool: &str) -> Result<Vec<String>, IdpError> {
        self.pool(pool)?;
        Ok(self.store.list_groups(pool).await?)
    }

    pub async fn list_clients(&self, pool: &str) -> Result<Vec<ClientRecord>, IdpError> {
        self.pool(pool)?;
        Ok(self.store.list_clients(pool).await?)
    }

    /// Disables a user: sign-in and refresh fail, and every token issued so far is revoked.
    pub async fn disable_user(&self, pool: &str, username: &str) -> Result<(), IdpError> {
        let mut user = self.user(pool, username).await?;
        let now = unix_now();
        user.enabled = false;
        user.tokens_valid_after = now;
        user.updated_at = now;
        self.store.update_user(&user).await?;
        self.store
            .revoke_user_refresh_tokens(pool, username)
            .await?;
        // Disabled: every token of the user, whenever it was issued.
        self.revoked(
            pool,
            RevokedSubject::User {
                sub: user.sub,
                before: i64::MAX,
            },
        )
        .await
    }

    /// Revocations from now on: those this process makes, and those of other processes that
    /// [`poll_revocation_events`](Self::poll_revocation_events) reads from the store.
    pub fn subscribe_revocations(&self) -> tokio::sync::broadcast::Receiver<Revocation> {
        self.revocations.subscribe()
    }

    fn announce(&self, revocation: Revocation) {
        // No subscriber (e.g. an admin command) is fine.
        let _ = self.revocations.send(revocation);
    }

    fn revocation_of(&self, pool: &str, subject: RevokedSubject) -> Revocation {
        let issuer = self.issuer(pool);
        match subject {
            RevokedSubject::Session { origin_jti } => Revocation::Session { issuer, origin_jti },
            RevokedSubject::User { sub, before } => Revocation::User {
                issuer,
                sub,
                before,
            },
        }
    }

    /// A revocation was written to the store: announce it here, and append it to the store's
    /// revocation log for the other processes sharing the store.
    async fn revoked(&self, pool: &str, subject: RevokedSubject) -> Result<(), IdpError> {
        self.announce(self.revocation_of(pool, subject.clone()));
        self.store
            .insert_revocation_event(&RevocationEventRecord {
                id: 0,
                pool: pool.to_owned(),
                subject,
                writer: self.writer_id.clone(),
                created_at: unix_now(),
            })
            .await?;
        Ok(())
    }

    /// Revokes one refresh token and its session (every token carrying its `origin_jti`).
    pub(crate) async fn revoke_session_of(
        &self,
        pool: &str,
        record: &RefreshTokenRecord,
    ) -> Result<(), IdpError> {
        let state = self.pool(pool)?;
        let now = self.now();
        // keep the session marker as long as any token of it may be alive
        let keep_until = record
            .expires_at
            .max(now.saturating_add(state.keys.max_ttl));
        self.store
            .revoke_session_family(pool, &record.username, &record.origin_jti, now, keep_until)
            .await?;
        self.revoked(
            pool,
            RevokedSubject::Session {
                origin_jti: record.origin_jti.clone(),
            },
        )
        .await
    }

    /// Reads the store's revocation log once: events written by other processes (the CLI,
    /// other gateway nodes) since the last poll are announced to
    /// [`subscribe_revocations`](Self::subscribe_revocations) like this process's own; events of
    /// pools this configuration lacks are skipped. Reads at most
    /// [`IdpOptions::revocation_poll_batch`] events, and now and then deletes events older than
    /// the longest token lifetime (at least 10 minutes). A serving gateway calls this every
    /// [`IdpOptions::revocation_poll_interval`].
    pub async fn poll_revocation_events(&self) -> Result<RevocationPoll, IdpError> {
        let mut feed = self.feed.lock().await;
        let limit = self.options.revocation_poll_batch.max(1);
        let events = self
            .store
            .revocation_events_after(feed.cursor.after(), limit)
            .await?;
        let mut poll = RevocationPoll {
            announced: 0,
            more: events.len() >= limit as usize,
        };
        for event in events {
            if !feed.cursor.accept(event.id)
                || event.writer == self.writer_id
                || !self.pools.contains_key(&event.pool)
            {
                continue;
            }
            tracing::debug!(id = event.id, pool = %event.pool, "revocation by another process");
            self.announce(self.revocation_of(&event.pool, event.subject));
            poll.announced += 1;
        }
        let now = std::time::Instant::now();
        feed.cursor.settle(now, limit as usize);
        if feed
            .last_prune
            .is_none_or(|t| now.duration_since(t) >= REVOCATION_PRUNE_EVERY)
        {
            feed.last_prune = Some(now);
            let keep = self
                .pools
                .values()
                .map(|p| p.keys.max_ttl)
                .max()
                .unwrap_or(0)
                .max(REVOCATION_KEEP_MIN);
            let pruned = self
                .store
                .prune_revocation_events(unix_now().saturating_sub(keep))
                .await?;
            if pruned > 0 {
                tracing::debug!(pruned, "old revocation events deleted");
            }
        }
        Ok(poll)
    }

    /// The options this provider runs with.
    pub fn options(&self) -> &IdpOptions {
        &self.options
    }

    pub async fn enable_user(&self, pool: &str, username: &str) -> Result<(), IdpError> {
        let mut user = self.user(pool, username).await?;
        user.enabled = true;
        user.updated_at = unix_now();
        self.store.update_user(&user).await?;
        Ok(())
    }

    /// Revokes every token of a user issued before now (GlobalSignOut / AdminUserGlobalSignOut).
    pub async fn global_sign_out(&self, pool: &str, username: &str) -> Result<(), IdpError> {
        self.end_sessions(pool, username).await
    }

    /// Ends every session of a user: each one the store knows (`origin_jti`) is marked revoked
    /// with its refresh tokens, so every token issued before now is refused however close to
    /// now it was issued, while tokens of sessions started later work; and tokens of a whole
    /// second before now are refused by `tokens_valid_after` as well.
    async fn end_sessions(&self, pool: &str, username: &str) -> Result<(), IdpError> {
        let state = self.pool(pool)?;
        let mut user = self.user(pool, username).await?;
        let now = self.now();
        user.tokens_valid_after = now;
        user.updated_at = now;
        self.store.update_user(&user).await?;
        self.store
            .revoke_user_sessions(pool, username, None, now, self.session_keep(state, now))
            .await?;
        // Live connections close even for tokens issued in this very second (a connection
        // opened with a newer token in that second closes too; its token still works).
        self.revoked(
            pool,
            RevokedSubject::User {
                sub: user.sub,
                before: now.saturating_add(1),
            },
        )
        .await
    }

    /// True when a verified token must be refused: its session (`origin_jti`) was revoked, its
    /// user is gone or disabled, or it was issued (`iat`) before the user's last global sign-out.
    /// Client-credentials tokens (`sub` = a client id) are revoked when the client is gone.
    /// Fails closed: a store error counts as revoked.
    pub async fn is_revoked(&self, origin_jti: Option<&str>, sub: &str, iat: i64) -> bool {
        match self.revocation_check(origin_jti, sub, iat).await {
            Ok(revoked) => revoked,
            Err(e) => {
                tracing::warn!(error = %e, "revocation check failed; treating token as revoked");
                true
            }
        }
    }

    async fn revocation_check(
        &self,
        origin_jti: Option<&str>,
        sub: &str,
        iat: i64,
    ) -> Result<bool, StoreError> {
        if let Some(jti) = origin_jti
            && self.store.is_session_revoked(jti).await?
        {
            return Ok(true);
        }
        if let Some(user) = self.store.get_user_by_sub(sub).await? {
            return Ok(!user.enabled || iat < user.tokens_valid_after);
        }
        Ok(self.store.get_client(sub).await?.is_none())
    }

    // ---- OAuth ----

    /// Authenticates a client of `pool`: confidential clients need their secret, public ones
    /// must not send one. Any mismatch is `invalid_client`.
    pub async fn authenticate_client(
        &self,
        pool: &str,
        auth: &ClientAuth,
    ) -> Result<ClientRecord, OAuthError> {
        let client = match self.store.get_client(&auth.client_id).await? {
            Some(c) if c.pool == pool => c,
            _ => return Err(OAuthError::InvalidClient),
        };
        match (&client.secret_hash, &auth.secret) {
            (Some(hash), Some(secret))
                if self.client_secret_matches(&client.client_id, secret, &hash.0) =>
            {
                Ok(client)
            }
            (None, None) => Ok(client),
            _ => Err(OAuthError::InvalidClient),
        }
    }

    /// The custom scopes (`identifier/name`) that exist in the pool's resource servers.
    async fn custom_scopes(&self, pool: &str) -> Result<Vec<String>, StoreError> {
        Ok(self
            .store
            .list_resource_servers(pool)
            .await?
            .into_iter()
            .flat_map(|rs| {
                rs.scopes
                    .iter()
                    .map(|s| format!("{}/{s}", rs.identifier))
                    .collect::<Vec<_>>()
            })
            .collect())
    }

    /// `grant_type=client_credentials`.
    pub async fn client_credentials(
        &self,
        pool: &str,
        auth: &ClientAuth,
        scope: Option<&str>,
    ) -> Result<TokenGrant, OAuthError> {
        let state = self.pool(pool)?;
        let client = self.authenticate_client(pool, auth).await?;
        if client.public || !client.grants.iter().any(|g| g == "client_credentials") {
            return Err(OAuthError::UnauthorizedClient);
        }
        let existing = self.custom_scopes(pool).await?;
        let grantable: Vec<&String> = client
            .allowed_scopes
            .iter()
            .filter(|s| existing.contains(s))
            .collect();
        let granted: Vec<String> = match scope.map(str::trim).filter(|s| !s.is_empty()) {
            Some(requested) => {
                let mut out: Vec<String> = Vec::new();
                for s in requested.split(' ').filter(|s| !s.is_empty()) {
                    if !grantable.iter().any(|g| *g == s) {
                        return Err(OAuthError::InvalidScope);
                    }
                    if !out.iter().any(|o| o == s) {
                        out.push(s.to_owned());
                    }
                }
                out
            }
            None => grantable.into_iter().cloned().collect(),
        };
        if granted.is_empty() {
            return Err(OAuthError::InvalidScope);
        }
        let now = unix_now();
        let ttl = secs(state.config.access_token_ttl);
        let claims = tokens::client_credentials_claims(
            &state.issuer,
            &client.client_id,
            &granted.join(" "),
            &tokens::uuid_v4(),
            now,
            ttl,
        );
        Ok(TokenGrant {
            access_token: self.sign(state, &claims, now)?,
            id_token: None,
            refresh_token: None,
            expires_in: ttl,
        })
    }

    /// Mints access + ID tokens for a user session (shared by sign-in and refresh).
    #[allow(clippy::too_many_arguments)] // private; every argument is a distinct claim source
    fn mint_user_tokens(
        &self,
        state: &PoolState,
        user: &UserRecord,
        groups: &[String],
        client_id: &str,
        scopes: &[String],
        origin_jti: &str,
        auth_time: i64,
        now: i64,
        nonce: Option<&str>,
    ) -> Result<(Secret, Secret, i64), IdpError> {
        let event_id = tokens::uuid_v4();
        let session = SessionInfo {
            issuer: &state.issuer,
            client_id,
            sub: &user.sub,
            username: &user.username,
            groups,
            origin_jti,
            event_id: &event_id,
            auth_time,
        };
        let access_ttl = secs(state.config.access_token_ttl);
        let access = tokens::access_claims(
            &session,
            &scopes.join(" "),
            &tokens::uuid_v4(),
            now,
            access_ttl,
        );
        let mut id = tokens::id_claims(
            &session,
            &user.attributes,
            &tokens::uuid_v4(),
            now,
            secs(state.config.id_token_ttl),
        );
        if let (Some(nonce), Some(claims)) = (nonce, id.as_object_mut()) {
            claims.insert("nonce".into(), serde_json::json!(nonce));
        }
        Ok((
            self.sign(state, &access, now)?,
            self.sign(state, &id, now)?,
            access_ttl,
        ))
    }

    /// Starts a session for an authenticated user: access, ID and refresh token. Used by the
    /// sign-in flows (later phase) and tests; the caller has checked the password.
    pub async fn issue_session(
        &self,
        pool: &str,
        client_id: &str,
        username: &str,
        scopes: &[String],
    ) -> Result<SessionTokens, IdpError> {
        self.issue_session_with_nonce(pool, client_id, username, scopes, None)
            .await
    }

    /// [`issue_session`](Self::issue_session) whose ID token carries `nonce` (OIDC, code flow).
    pub async fn issue_session_with_nonce(
        &self,
        pool: &str,
        client_id: &str,
        username: &str,
        scopes: &[String],
        nonce: Option<&str>,
    ) -> Result<SessionTokens, IdpError> {
        let state = self.pool(pool)?;
        let client = self
            .store
            .get_client(client_id)
            .await?
            .filter(|c| c.pool == pool)
            .ok_or_else(|| IdpError::InvalidParameter("unknown client".into()))?;
        let user = self.user(pool, username).await?;
        if !user.enabled {
            return Err(IdpError::InvalidParameter("user is disabled".into()));
        }
        let groups = self.store.user_groups(pool, username).await?;
        let now = self.now();
        let origin_jti = tokens::uuid_v4();
        let refresh = tokens::random_token()
            .ok_or(IdpError::Key(KeyError("no randomness for refresh token")))?;
        self.store
            .insert_refresh_token(&RefreshTokenRecord {
                token_hash: store::SecretBytes(tokens::refresh_token_hash(&refresh)),
                pool: pool.to_owned(),
                client_id: client.client_id.clone(),
                username: username.to_owned(),
                scopes: scopes.to_vec(),
                origin_jti: origin_jti.clone(),
                auth_time: now,
                created_at: now,
                expires_at: now.saturating_add(secs(state.config.refresh_token_ttl)),
                revoked: false,
            })
            .await?;
        let (access, id, expires_in) = self.mint_user_tokens(
            state,
            &user,
            &groups,
            &client.client_id,
            scopes,
            &origin_jti,
            now,
            now,
            nonce,
        )?;
        Ok(SessionTokens {
            access_token: access,
            id_token: id,
            refresh_token: Some(Secret::new(refresh)),
            expires_in,
        })
    }

    /// True when refresh tokens of `client_id` rotate (`refresh_token_rotation`).
    fn rotates(state: &PoolState, client_id: &str) -> bool {
        state
            .config
            .clients
            .get(client_id)
            .is_some_and(|c| c.refresh_token_rotation)
    }

    /// `grant_type=refresh_token`: new access and ID tokens, same `origin_jti` and `auth_time`.
    /// A client with `refresh_token_rotation` also gets a new refresh token, and the one it
    /// presented stops working; presenting a refresh token that was already used ends the
    /// whole session (reuse of a stolen token), and of two parallel uses of one token at most
    /// one succeeds.
    pub async fn refresh(
        &self,
        pool: &str,
        auth: &ClientAuth,
        refresh_token: &Secret,
    ) -> Result<TokenGrant, OAuthError> {
        let state = self.pool(pool)?;
        let client = self.authenticate_client(pool, auth).await?;
        if !client.grants.iter().any(|g| g == "refresh_token")
            && !client
                .grants
                .iter()
                .any(|g| g == "authorization_code" || g == "password")
        {
            return Err(OAuthError::UnauthorizedClient);
        }
        let rotates = Self::rotates(state, &client.client_id);
        let now = self.now();
        let hash = tokens::refresh_token_hash(refresh_token.expose());
        let record = match self.store.get_refresh_token(&hash).await? {
            Some(r) if r.pool == pool && r.client_id == client.client_id => r,
            _ => return Err(OAuthError::InvalidGrant),
        };
        if record.revoked {
            // A used token of a session that still has a live one: it was rotated, and someone
            // presents it again (a stolen copy, or the thief's): the whole session ends.
            // (Tokens revoked by sign-out, revocation or a password change have no live
            // successor, and change nothing.)
            if rotates
                && self
                    .store
                    .revoke_live_family(pool, &record.username, &record.origin_jti)
                    .await?
                    > 0
            {
                tracing::warn!(pool, client_id = %client.client_id, "refresh token reused; session revoked");
                self.revoke_session_of(pool, &record).await?;
            }
            return Err(OAuthError::InvalidGrant);
        }
        if now >= record.expires_at || self.store.is_session_revoked(&record.origin_jti).await? {
            return Err(OAuthError::InvalidGrant);
        }
        let user = match self.store.get_user(pool, &record.username).await? {
            Some(u) if u.enabled && record.created_at >= u.tokens_valid_after => u,
            _ => return Err(OAuthError::InvalidGrant),
        };
        let next_refresh = if rotates {
            let token = tokens::random_token()
                .ok_or(IdpError::Key(KeyError("no randomness for refresh token")))?;
            let next = RefreshTokenRecord {
                token_hash: store::SecretBytes(tokens::refresh_token_hash(&token)),
                created_at: now,
                revoked: false,
                ..record.clone()
            };
            if !self
                .store
                .rotate_refresh_token(&hash, &client.client_id, now, &next)
                .await?
            {
                // used at the same time by someone else: the same as a reuse
                tracing::warn!(pool, client_id = %client.client_id, "refresh token used twice at once; session revoked");
                self.revoke_session_of(pool, &record).await?;
                return Err(OAuthError::InvalidGrant);
            }
            Some(Secret::new(token))
        } else {
            None
        };
        let groups = self.store.user_groups(pool, &user.username).await?;
        let (access, id, expires_in) = self.mint_user_tokens(
            state,
            &user,
            &groups,
            &client.client_id,
            &record.scopes,
            &record.origin_jti,
            record.auth_time,
            now,
            None,
        )?;
        Ok(TokenGrant {
            access_token: access,
            id_token: Some(id),
            refresh_token: next_refresh,
            expires_in,
        })
    }

    /// `/oauth2/revoke`: revokes a refresh token of this client and its session, or the
    /// session of an access token of this client (its refresh tokens, and every token carrying
    /// its `origin_jti`). Unknown, expired and foreign-issuer tokens succeed silently
    /// (RFC 7009); another client's token is `invalid_grant` and changes nothing; a
    /// client-credentials access token, which has no session, is `unsupported_token_type`.
    pub async fn revoke(
        &self,
        pool: &str,
        auth: &ClientAuth,
        token: &Secret,
    ) -> Result<(), OAuthError> {
        self.pool(pool)?;
        let client = self.authenticate_client(pool, auth).await?;
        let hash = tokens::refresh_token_hash(token.expose());
        let Some(record) = self.store.get_refresh_token(&hash).await? else {
            return self.revoke_access_token(pool, &client, token).await;
        };
        if record.pool != pool || record.client_id != client.client_id {
            return Err(OAuthError::InvalidGrant);
        }
        self.revoke_session_of(pool, &record).await?;
        Ok(())
    }

    async fn revoke_access_token(
        &self,
        pool: &str,
        client: &ClientRecord,
        token: &Secret,
    ) -> Result<(), OAuthError> {
        // Only what looks like a JWT is worth verifying.
        if token.expose().split('.').count() != 3 {
            return Ok(());
        }
        let Some(verifier) = self
            .code_flow
            .verifier(pool, || access_token::access_verifier(self, pool))
        else {
            return Err(IdpError::Config("access-token verifier unavailable".into()).into());
        };
        let Ok(verified) = verifier.verify(token.expose()).await else {
            return Ok(());
        };
        let claim = |name: &str| {
            verified
                .claims
                .get(name)
                .and_then(serde_json::Value::as_str)
        };
        if claim("client_id") != Some(client.client_id.as_str()) {
            return Err(OAuthError::InvalidGrant);
        }
        let (Some(origin_jti), Some(sub)) = (claim("origin_jti"), verified.subject.as_deref())
        else {
            return Err(OAuthError::UnsupportedTokenType);
        };
        let Some(user) = self
            .store
            .get_user_by_sub(sub)
            .await?
            .filter(|u| u.pool == pool)
        else {
            return Ok(());
        };
        let state = self.pool(pool)?;
        let now = self.now();
        self.store
            .revoke_session_family(
                pool,
                &user.username,
                origin_jti,
                now,
                self.session_keep(state, now),
            )
            .await?;
        self.revoked(
            pool,
            RevokedSubject::Session {
                origin_jti: origin_jti.to_owned(),
            },
        )
        .await?;
        Ok(())
    }
}

async fn generate_key(
    pool: &str,
    now: i64,
    activates_at: i64,
) -> Result<store::SigningKeyRecord, IdpError> {
    let pool = pool.to_owned();
    tokio::task::spawn_blocking(move || keys::generate(&pool, now, activates_at))
        .await
        .map_err(|_| IdpError::Key(KeyError("key generation task failed")))?
        .map_err(IdpError::Key)
}
