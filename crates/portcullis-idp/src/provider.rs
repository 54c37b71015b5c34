//! The provider itself: its pools, store, keys and hasher, opened from the configuration.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use aws_lc_rs::hmac;
use portcullis_auth::jwt::{JwtOptions, JwtVerifier, KeySource};
use portcullis_config::{Config, JwtAuthorizer, JwtIssuer, Secret};

use crate::keys::{AtRest, KeyRing, PoolKeys};
use crate::options::secs;
use crate::pool::{PoolState, pool_limiter};
use crate::revocation::{EventCursor, REVOCATION_BUFFER, Revocation, RevocationFeed};
use crate::store::{ClientRecord, ResourceServerRecord, Store, StoreError};
use crate::{IdpError, IdpOptions, PasswordHasher, oauth_code, store, tokens, unix_now};

/// The identity provider: pools from the configuration, their store and keys.
pub struct IdentityProvider {
    pub(crate) store: Arc<dyn Store>,
    pub(crate) public_url: String,
    pub(crate) pools: HashMap<String, PoolState>,
    pub(crate) hasher: PasswordHasher,
    /// HMAC key for client secrets (per store, random, created on first start).
    pub(crate) secret_key: hmac::Key,
    /// The keys of SRP sign-in (its sealed `SECRET_BLOCK`s, the challenges of users without a
    /// verifier), derived from the same pepper: alike on every node sharing the store.
    pub(crate) srp_keys: crate::srp::secret_block::SrpKeys,
    /// How signing keys and the pepper are kept in the store (sealed with the
    /// key-encryption key, or as they are).
    pub(crate) at_rest: AtRest,
    pub(crate) options: IdpOptions,
    /// Pending hosted sign-ins and authorization codes (kept in the store).
    pub(crate) code_flow: oauth_code::CodeFlow,
    /// Revocations made by this process, and those of other processes read from the store's
    /// revocation log, for the gateway to close live connections.
    pub(crate) revocations: tokio::sync::broadcast::Sender<Revocation>,
    /// Tags the revocation events this process writes, so its poller skips them.
    pub(crate) writer_id: String,
    /// Where the poller of the revocation log is.
    pub(crate) feed: tokio::sync::Mutex<RevocationFeed>,
    /// A hash of a password nobody has: what unknown users' passwords are checked against.
    pub(crate) dummy_hash: tokio::sync::OnceCell<String>,
    /// Identity pools, roles and the key of their temporary credentials.
    pub(crate) iam: crate::identity_pools::IamState,
    /// The client of every outbound call (code webhooks, token verifiers): the system roots
    /// and `[server] ca_file`.
    pub(crate) outbound: reqwest::Client,
}

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

impl IdentityProvider {
    /// One cheap round trip to the store (`SELECT 1`): whether it answers, for `/readyz`.
    pub async fn ping_store(&self) -> Result<(), IdpError> {
        Ok(self.store.ping().await?)
    }

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
        let srp_keys = crate::srp::secret_block::SrpKeys::derive(&secret_key)
            .ok_or_else(|| IdpError::Config("AES-256-GCM is not available".into()))?;
        let public_url = config.server.public_url.trim_end_matches('/').to_owned();
        let outbound = outbound_client(config.server.ca_file.as_deref())?;
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
                    access_verifier: OnceLock::new(),
                },
            );
        }
        let idp = IdentityProvider {
            iam: crate::identity_pools::IamState::new(
                config,
                &secret_key,
                options.rate_limit_entries,
            ),
            code_flow: oauth_code::CodeFlow::new(Arc::clone(&store), options.clock.clone()),
            store,
            public_url,
            pools,
            hasher: PasswordHasher::new(options.hash_concurrency),
            secret_key,
            srp_keys,
            at_rest,
            revocations: tokio::sync::broadcast::channel(REVOCATION_BUFFER).0,
            writer_id: tokens::uuid_v4(),
            feed: tokio::sync::Mutex::new(RevocationFeed {
                cursor: EventCursor::new(last_event),
                last_prune: None,
            }),
            dummy_hash: tokio::sync::OnceCell::new(),
            options,
            outbound,
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
    pub(crate) fn client_secret_hash(&self, client_id: &str, secret: &Secret) -> Vec<u8> {
        let mut ctx = hmac::Context::with_key(&self.secret_key);
        ctx.update(client_id.as_bytes());
        ctx.update(&[0]);
        ctx.update(secret.expose().as_bytes());
        ctx.sign().as_ref().to_vec()
    }

    pub(crate) fn client_secret_matches(
        &self,
        client_id: &str,
        secret: &Secret,
        stored: &[u8],
    ) -> bool {
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

    /// The user pool id of a configured pool (`us-east-1_main`).
    pub fn pool_id(&self, pool: &str) -> Option<&str> {
        self.pools.get(pool).map(|p| p.config.id.as_str())
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

    /// The verifier of a configured pool's access tokens (this provider's keys, no fetches),
    /// built once per pool and shared by userInfo, token revocation and cookie sessions.
    /// `None` for a pool that is not configured, or when the verifier cannot be built.
    pub fn access_verifier(&self, pool: &str) -> Option<JwtVerifier> {
        let state = self.pools.get(pool)?;
        if let Some(verifier) = state.access_verifier.get() {
            return Some(verifier.clone());
        }
        let cfg = JwtAuthorizer {
            name: format!("userinfo:{pool}"),
            identity_source: vec!["$request.header.Authorization".into()],
            issuers: vec![JwtIssuer {
                issuer: state.issuer.clone(),
                audience: Vec::new(),
                jwks_uri: None,
                ..JwtIssuer::default()
            }],
            token_use: Some("access".into()),
            principal_claim: None,
            cache_ttl: Duration::ZERO,
            csrf: None,
        };
        let verifier = JwtVerifier::new(&cfg, self.outbound.clone(), JwtOptions::default()).ok()?;
        verifier.set_local_keys(&state.issuer, self.key_source(pool));
        // Built twice at once: either is right, the first one stays.
        Some(state.access_verifier.get_or_init(|| verifier).clone())
    }

    /// The store (for later phases and tests).
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    /// The authorization-code flow (its state is in the store).
    pub fn code_flow(&self) -> &oauth_code::CodeFlow {
        &self.code_flow
    }

    /// The password hasher shared by every pool.
    pub fn hasher(&self) -> &PasswordHasher {
        &self.hasher
    }

    /// The provider's clock (unix seconds).
    pub(crate) fn now(&self) -> i64 {
        self.options.clock.now()
    }

    /// The client of the provider's outbound calls: trusts the system roots and
    /// `[server] ca_file`, follows no redirect.
    pub fn outbound(&self) -> &reqwest::Client {
        &self.outbound
    }

    /// The options this provider runs with.
    pub fn options(&self) -> &IdpOptions {
        &self.options
    }
}

/// The provider's outbound client (see [`IdentityProvider::outbound`]); an unusable
/// `ca_file` is a configuration error naming the key and the file.
fn outbound_client(ca_file: Option<&str>) -> Result<reqwest::Client, IdpError> {
    portcullis_auth::outbound_tls::client_builder(ca_file)
        .map_err(IdpError::Config)?
        .connect_timeout(Duration::from_secs(5))
        .build()
        .map_err(|e| IdpError::Config(format!("outbound HTTP client: {e}")))
}
