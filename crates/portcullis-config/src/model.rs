//! The validated, typed configuration: what the rest of the gateway reads.
//!
//! Every value here has already been checked; durations are `Duration`, addresses are
//! `SocketAddr`, URLs are [`HttpUrl`], the selection expression and HTTP route keys are
//! parsed, cross references (route → integration, API → authorizer) resolve. Nothing
//! downstream needs to parse a value again.

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::time::Duration;

use indexmap::IndexMap;
use portcullis_core::http_route::RouteTable;
pub use portcullis_core::proxies::Cidr;
use portcullis_core::selection::SelectionExpression;

use crate::HttpUrl;

mod iam;
pub use iam::{IdentityPool, IdentityPoolRoles, Role};
mod triggers;
pub use triggers::{Trigger, TriggerTarget, Triggers};

/// A secret value from the configuration. `Debug` and `Display` never show it.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }
    /// The secret itself; call only where it is used (signing, comparison).
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(\"<redacted>\")")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// The whole gateway configuration.
#[derive(Debug, Clone)]
pub struct Config {
    pub server: Server,
    pub management: Management,
    /// WebSocket APIs by name, in file order.
    pub websocket: IndexMap<String, WebSocketApi>,
    /// HTTP APIs by name, in file order.
    pub http: IndexMap<String, HttpApi>,
    pub integrations: IndexMap<String, Integration>,
    pub authorizers: IndexMap<String, Authorizer>,
    pub store: Store,
    pub pools: IndexMap<String, Pool>,
    /// Directories of static files served on the public listener, by name, in file order.
    pub static_sites: IndexMap<String, StaticSite>,
    /// `[cluster]`: `None` runs one node without Redis.
    pub cluster: Option<Cluster>,
    /// `[functions.NAME]`: Lambda handlers run by Portcullis, by name, in file order.
    pub functions: IndexMap<String, Function>,
    /// `[identity_pools.NAME]`: Cognito-style identity pools, by name, in file order.
    pub identity_pools: IndexMap<String, IdentityPool>,
    /// `[roles.NAME]`: IAM roles of the identity pools, by name, in file order.
    pub roles: IndexMap<String, Role>,
    /// Valid but risky choices (a secret from a `${VAR:-default}` fallback, a `jwt`
    /// authorizer that would accept ID tokens), in file order: `portcullis check` prints them
    /// and `serve` logs each at `warn` on start.
    pub warnings: Vec<crate::Diagnostic>,
}

/// `[functions.NAME]`: an unchanged AWS Lambda handler run in child processes speaking the
/// Lambda Runtime API.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Function {
    pub name: String,
    pub runtime: Runtime,
    /// `module.function` (Python) or `file.export` (Node); empty for `provided`.
    pub handler: String,
    /// The code directory (`LAMBDA_TASK_ROOT`, working directory of the process); a relative
    /// `code` is resolved against the configuration file's directory by [`crate::load_file`].
    pub code: std::path::PathBuf,
    /// Longest invocation (3 s by default, as on AWS; 1 s to 900 s).
    pub timeout: std::time::Duration,
    /// Memory size in MB reported to the handler (128 by default, 128 to 10240).
    pub memory_mb: u32,
    /// Execution environments (child processes) at most, each running one invocation at a
    /// time (4 by default).
    pub concurrency: usize,
    /// Extra environment variables, in file order.
    pub environment: Vec<(String, String)>,
    /// The program and its arguments, for `provided` only.
    pub command: Vec<String>,
}

/// `runtime` of a function.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Runtime {
    /// `python3.N`, kept as written (`python3.11`); run with `python3`.
    Python(String),
    /// `nodejsN.x`, kept as written; run with `node`.
    Node(String),
    /// `provided`: `command` is a bootstrap speaking the Runtime API itself.
    Provided,
}

impl Runtime {
    /// The identifier as written in the configuration.
    pub fn as_str(&self) -> &str {
        match self {
            Runtime::Python(s) | Runtime::Node(s) => s,
            Runtime::Provided => "provided",
        }
    }
}

/// `[static.NAME]`: files under `dir` served at `path` (GET and HEAD only).
#[derive(Debug, Clone)]
pub struct StaticSite {
    pub name: String,
    /// URL prefix, `/` followed by the site's segments, no trailing slash (`/demo`); `/`
    /// serves the site at the root, after every API and identity endpoint.
    pub path: String,
    /// The directory; a relative `dir` is resolved against the configuration file's
    /// directory by [`crate::load_file`].
    pub dir: std::path::PathBuf,
    /// File served for a directory (`index.html`).
    pub index: String,
}

#[derive(Debug, Clone)]
pub struct Server {
    /// WebSocket, HTTP APIs, identity endpoints.
    pub listen: SocketAddr,
    /// `@connections`, `/metrics`, `/healthz`, admin API.
    pub admin_listen: SocketAddr,
    /// Used in issuer URLs and as `domainName` in events; no trailing slash.
    pub public_url: String,
    /// Host part of `public_url` (with port if any), used as `domainName`.
    pub domain_name: String,
    /// TLS on the public listener; `public_url` defaults to `https://` with it.
    pub tls: Option<Tls>,
    /// TLS on the admin listener.
    pub admin_tls: Option<Tls>,
    /// Extra trusted CA certificates (PEM, one or more) for outbound `https://` calls
    /// (integrations, HTTP authorizers, JWKS), next to the system roots.
    pub ca_file: Option<String>,
    /// How long a graceful shutdown waits for `$disconnect` deliveries. Default 10 s.
    pub shutdown_grace: Duration,
    /// Most WebSocket connections and SSE streams open at once (a node's sessions); an
    /// upgrade beyond gets 503. The public listener's sockets are bounded as well, more
    /// loosely (see `portcullis_gateway`'s socket budget). Default 100,000.
    pub max_connections: usize,
    /// Most connections open at once on the admin listener, a budget of its own so that a
    /// flood on the public listener cannot starve `/healthz` and `@connections`. Default 1,000.
    pub admin_max_connections: usize,
    /// Most connections open at once on the public listener from one client address (IPv6:
    /// one /64). Default 256. A trusted proxy's own sockets are not capped; each session
    /// through it counts against its forwarded client's address instead.
    pub max_connections_per_ip: usize,
    /// New WebSocket connections and SSE streams per second from one client address (IPv6:
    /// one /64), bursts of as many; beyond, 429. 0 = no limit. Default 50.
    pub connect_rate_per_ip: u32,
    /// Peers whose `X-Forwarded-For` names the client (load balancers, reverse proxies).
    /// Default none: the client is always the socket's peer.
    pub trusted_proxies: Vec<Cidr>,
    /// How long a connection may take to deliver a request head (and, when it is new, its
    /// first bytes). Default 10 s.
    pub header_read_timeout: Duration,
    /// How long a request body may take to arrive once the gateway starts reading it; then
    /// 408 and the connection is closed. Default 10 s.
    pub body_read_timeout: Duration,
    /// How long a kept-alive connection to an integration's backend may stay unused before
    /// the gateway closes it. Default 30 s.
    pub upstream_idle_timeout: Duration,
    /// Most unused kept-alive connections kept open to one backend host. Default 64.
    pub upstream_max_idle_per_host: usize,
    /// Threads serving the public listener, each with a listening socket of its own; `0`
    /// (the default) means one per core.
    pub workers: usize,
}

/// Default of `server.max_connections`.
pub const DEFAULT_MAX_CONNECTIONS: usize = 100_000;
/// Default of `server.admin_max_connections`.
pub const DEFAULT_ADMIN_MAX_CONNECTIONS: usize = 1_000;
/// Default of `server.max_connections_per_ip`.
pub const DEFAULT_MAX_CONNECTIONS_PER_IP: usize = 256;
/// Default of `server.connect_rate_per_ip`.
pub const DEFAULT_CONNECT_RATE_PER_IP: u32 = 50;
/// Default of `websocket.NAME.message_rate`.
pub const DEFAULT_MESSAGE_RATE: u32 = 100;
/// Largest `connect_rate_per_ip` and `message_rate`.
pub const MAX_RATE: u32 = 1_000_000;
/// Default of `server.header_read_timeout`.
pub const DEFAULT_HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// Default of `server.body_read_timeout`.
pub const DEFAULT_BODY_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// Default of `server.upstream_idle_timeout`.
pub const DEFAULT_UPSTREAM_IDLE_TIMEOUT: Duration = Duration::from_secs(30);
/// Largest `server.workers`.
pub const MAX_WORKERS: usize = 1024;
/// Default of `server.upstream_max_idle_per_host`.
pub const DEFAULT_UPSTREAM_MAX_IDLE_PER_HOST: usize = 64;

/// A certificate chain and its private key, PEM files. [`crate::load_file`] resolves
/// relative paths against the configuration file's directory; the compiler does not open
/// them (the gateway validates them, for `portcullis check` too).
#[derive(Debug, Clone)]
pub struct Tls {
    /// The leaf certificate first, then its intermediates.
    pub cert: String,
    /// PKCS#8, PKCS#1 (RSA) or SEC1 (EC).
    pub key: String,
}

#[derive(Debug, Clone)]
pub struct Management {
    pub credentials: Vec<Credential>,
    /// Region clients sign for ([`crate::defaults::REGION`] by default).
    pub region: String,
    /// Account id used in ARNs ([`crate::defaults::ACCOUNT_ID`] by default).
    pub account_id: String,
}

#[derive(Debug, Clone)]
pub struct Credential {
    pub access_key_id: String,
    pub secret_access_key: Secret,
    /// What the credential may call; never empty. Default `[Connections]`.
    pub scopes: Vec<CredentialScope>,
}

impl Credential {
    pub fn allows(&self, scope: CredentialScope) -> bool {
        self.scopes.contains(&scope)
    }
}

/// What a `[management]` credential may call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CredentialScope {
    /// `"connections"`: the `@connections` API (and every push API beside it).
    Connections,
    /// `"admin"`: the identity admin API (`/admin/...`: users, passwords, groups, keys).
    Admin,
}

impl CredentialScope {
    pub const ALL: [CredentialScope; 2] = [CredentialScope::Connections, CredentialScope::Admin];

    /// The name used in the configuration file.
    pub fn as_str(self) -> &'static str {
        match self {
            CredentialScope::Connections => "connections",
            CredentialScope::Admin => "admin",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BinaryFrames {
    /// Close the connection with 1003 (what API Gateway does).
    Close,
    /// Pass the payload on base64-encoded with `isBase64Encoded: true`.
    Base64,
}

#[derive(Debug, Clone)]
pub struct WebSocketApi {
    pub name: String,
    /// Path the API is served at, `/<name>` unless set.
    pub path: String,
    pub stage: String,
    /// `apiId` in events and ARNs: `api_id` if set, else derived from the name (10 lower-case
    /// alphanumerics, stable across restarts).
    pub api_id: String,
    /// Picks a message's route; `$request.body.action` by default.
    pub route_selection_expression: SelectionExpression,
    /// Authorizer evaluated on `$connect`.
    pub authorizer: Option<String>,
    /// `authorization = "AWS_IAM"`: `$connect` must be SigV4-signed with identity-pool
    /// credentials, and the role's policy is evaluated for `$connect` and every message route.
    /// Never set together with `authorizer`.
    pub authorization: Authorization,
    pub idle_timeout: Duration,
    pub max_duration: Duration,
    pub max_frame_bytes: usize,
    pub max_message_bytes: usize,
    /// Empty = any origin.
    pub allowed_origins: Vec<String>,
    pub subprotocols: Vec<String>,
    /// `sse`: the API's server-sent events stream; `None` (the default) serves none.
    pub sse: Option<Sse>,
    pub binary_frames: BinaryFrames,
    pub message_policy: bool,
    /// Outbound frames queued per connection before a slow reader is closed. Default 64.
    pub send_queue: usize,
    /// Integration calls in flight per connection; further messages wait. Default 8.
    pub max_inflight: usize,
    /// Messages per second one connection may send, bursts of as many; a message beyond is
    /// dropped and answered with a `Too Many Requests` error frame. 0 = no limit. Default 100.
    pub message_rate: u32,
    /// Interval of server pings. Default 30 s; 0 disables.
    pub ping_interval: Duration,
    /// Topics one connection may be subscribed to at once. Default 100.
    pub max_topics_per_connection: usize,
    /// Connections one topic may have as subscribers at once. Default 100,000.
    pub max_subscribers_per_topic: usize,
    /// Routes by route key (`$connect`, `$disconnect`, `$default`, custom).
    pub routes: IndexMap<String, WsRoute>,
}

/// `sse = true | { path, heartbeat, replay, replay_bytes }` of a WebSocket API: a
/// `text/event-stream` of the API's pushes, admitted like the WebSocket upgrade.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sse {
    /// Where the stream is served: `{api path}/events` unless set.
    pub path: String,
    /// Interval of the `: ping` comment lines. Default 15 s, at least 1 s.
    pub heartbeat: Duration,
    /// `@users` pushes kept per principal for `Last-Event-ID` replay. Default 1000, at most
    /// 100,000; 0 keeps none.
    pub replay: usize,
    /// Memory the API's replay buffers may hold in all (payloads and bookkeeping); beyond it
    /// the buffer of the principal pushed to least recently is dropped. Default 16 MiB.
    pub replay_bytes: usize,
}

impl Sse {
    pub const DEFAULT_HEARTBEAT: Duration = Duration::from_secs(15);
    pub const DEFAULT_REPLAY: usize = 1000;
    pub const MAX_REPLAY: usize = 100_000;
    pub const DEFAULT_REPLAY_BYTES: usize = 16 << 20;
    pub const MIN_REPLAY_BYTES: usize = 1 << 20;

    /// `sse = true` for an API served at `api_path`.
    pub fn defaults_for(api_path: &str) -> Self {
        Sse {
            path: format!("{}/events", api_path.trim_end_matches('/')),
            heartbeat: Self::DEFAULT_HEARTBEAT,
            replay: Self::DEFAULT_REPLAY,
            replay_bytes: Self::DEFAULT_REPLAY_BYTES,
        }
    }
}

#[derive(Debug, Clone)]
pub struct WsRoute {
    pub integration: Option<String>,
    /// Two-way route: the result's `body` goes back to the client.
    pub response: bool,
    pub scopes: Vec<String>,
    pub groups: Vec<String>,
}

/// `authorization` of a WebSocket API or an HTTP route: `"NONE"` (the default; an
/// `authorizer` may still apply) or `"AWS_IAM"` (SigV4 with identity-pool credentials, the
/// role's IAM policy decides).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Authorization {
    #[default]
    None,
    AwsIam,
}

impl Authorization {
    /// The configuration spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Authorization::None => "NONE",
            Authorization::AwsIam => "AWS_IAM",
        }
    }
}

#[derive(Debug, Clone)]
pub struct HttpApi {
    pub name: String,
    pub base_path: String,
    pub stage: String,
    pub api_id: String,
    pub authorizer: Option<String>,
    /// The routes' default `authorization` (routes without their own `authorizer` or
    /// `authorization` inherit it). Never `AwsIam` together with `authorizer`.
    pub authorization: Authorization,
    pub cors: Option<Cors>,
    pub max_body_bytes: usize,
    /// Route key (`GET /x/{id}`, `ANY /{proxy+}`, `$default`) → route, in file order.
    pub routes: IndexMap<String, HttpRoute>,
    /// The same routes with their keys parsed and ordered for matching (API Gateway's
    /// priority); no two match the same requests.
    pub route_table: RouteTable<HttpRoute>,
}

#[derive(Debug, Clone)]
pub struct Cors {
    pub allow_origins: Vec<String>,
    pub allow_methods: Vec<String>,
    pub allow_headers: Vec<String>,
    pub expose_headers: Vec<String>,
    pub allow_credentials: bool,
    pub max_age: Option<Duration>,
}

#[derive(Debug, Clone)]
pub struct HttpRoute {
    pub integration: String,
    /// The effective authorizer (the route's own, else the API's).
    pub authorizer: Option<String>,
    /// The effective authorization; `AwsIam` only when `authorizer` is `None`.
    pub authorization: Authorization,
    pub scopes: Vec<String>,
    pub groups: Vec<String>,
    pub throttle: Option<Throttle>,
}

#[derive(Debug, Clone, Copy)]
pub struct Throttle {
    pub rate_per_second: f64,
    pub burst: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IntegrationKind {
    /// POST the AWS-shaped event JSON, read an AWS-shaped result.
    Http,
    /// Forward the request itself (HTTP APIs).
    HttpProxy,
    /// Invoke a `[functions.NAME]` with the AWS-shaped event, read its result as `Http` reads
    /// a body.
    Lambda,
}

impl IntegrationKind {
    /// The `type` as written in the configuration.
    pub fn as_str(self) -> &'static str {
        match self {
            IntegrationKind::Http => "http",
            IntegrationKind::HttpProxy => "http_proxy",
            IntegrationKind::Lambda => "lambda",
        }
    }

    /// Whether the integration receives an event and answers with a result (`http`,
    /// `lambda`) rather than the request itself (`http_proxy`).
    pub fn is_event(self) -> bool {
        !matches!(self, IntegrationKind::HttpProxy)
    }
}

/// Where an integration or a request authorizer sends its calls.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// An HTTP endpoint (`url`).
    Url(HttpUrl),
    /// A `[functions.NAME]` run by Portcullis (`function`); the name is checked to exist.
    Function(String),
}

impl Target {
    /// The URL, for an HTTP target.
    pub fn url(&self) -> Option<&HttpUrl> {
        match self {
            Target::Url(url) => Some(url),
            Target::Function(_) => None,
        }
    }

    /// The function's name, for a function target.
    pub fn function(&self) -> Option<&str> {
        match self {
            Target::Url(_) => None,
            Target::Function(name) => Some(name),
        }
    }
}

#[derive(Debug, Clone)]
pub struct Integration {
    pub name: String,
    pub kind: IntegrationKind,
    /// `Function` exactly when `kind` is `Lambda`.
    pub target: Target,
    /// Default 29 s; allowed 50 ms – 29 s for WebSocket use (AWS), up to 30 s.
    pub timeout: Duration,
    /// Largest result read from the backend or returned by the function. Default 1 MiB.
    pub max_response_bytes: usize,
}

#[derive(Debug, Clone)]
pub enum Authorizer {
    Jwt(JwtAuthorizer),
    Request(RequestAuthorizer),
}

#[derive(Debug, Clone)]
pub struct JwtAuthorizer {
    pub name: String,
    pub identity_source: Vec<String>,
    pub issuers: Vec<JwtIssuer>,
    pub token_use: Option<String>,
    /// Claim that names the principal (`principalId` of events, the key of `@users`); `sub`
    /// when unset.
    pub principal_claim: Option<String>,
    /// How long a verified token is remembered (never past its `exp`); `0s` verifies every
    /// use. Default 300 s.
    pub cache_ttl: Duration,
    /// Double-submit CSRF check, applied when the token was taken from a cookie source (the
    /// only case where a browser sends the credential on its own).
    pub csrf: Option<Csrf>,
}

#[derive(Debug, Clone, Default)]
pub struct JwtIssuer {
    /// The exact `iss` value. A URL for JWKS issuers (discovery starts there); any string for
    /// shared-secret issuers (`"my-app"`).
    pub issuer: String,
    pub audience: Vec<String>,
    /// Where the issuer's keys are; `None`: found by OIDC discovery (or a shared secret).
    pub jwks_uri: Option<HttpUrl>,
    /// JWS algorithms accepted from this issuer. Empty for a JWKS issuer: every asymmetric one
    /// its keys allow. Never empty for a shared-secret issuer, and then only HMAC ones.
    pub algorithms: Vec<JwsAlgorithm>,
    /// The shared secret of an HMAC issuer (`secret` or `secret_file`); such an issuer has
    /// no JWKS and is never a built-in pool.
    pub secret: Option<HmacSecret>,
}

/// Least length of an HMAC issuer's shared secret, in bytes (RFC 7518 §3.2 asks for at least
/// the hash size; 32 bytes suits HS256 and is refused below for every HMAC algorithm).
pub const MIN_HMAC_SECRET_BYTES: usize = 32;

/// The shared secret of an HMAC `jwt` issuer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HmacSecret {
    /// The secret itself, usually `"${JWT_SECRET}"`; at least [`MIN_HMAC_SECRET_BYTES`] bytes.
    Value(Secret),
    /// A file holding it (one trailing newline is ignored), read when the verifier is built; a
    /// relative path is resolved against the configuration file's directory by
    /// [`crate::load_file`], which also checks its length.
    File(std::path::PathBuf),
}

impl HmacSecret {
    /// The secret's bytes: the value, or the file's content without one trailing newline.
    pub fn load(&self) -> std::io::Result<Secret> {
        match self {
            HmacSecret::Value(secret) => Ok(secret.clone()),
            HmacSecret::File(path) => {
                let mut text = std::fs::read_to_string(path)?;
                if text.ends_with('\n') {
                    text.pop();
                    if text.ends_with('\r') {
                        text.pop();
                    }
                }
                Ok(Secret::new(text))
            }
        }
    }
}

/// A JWS `alg` an issuer may be configured with (RFC 7518 names, case-sensitive).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum JwsAlgorithm {
    HS256,
    HS384,
    HS512,
    RS256,
    RS384,
    RS512,
    PS256,
    PS384,
    PS512,
    ES256,
    ES384,
    ES512,
    EdDSA,
}

impl JwsAlgorithm {
    pub const ALL: [JwsAlgorithm; 13] = [
        Self::HS256,
        Self::HS384,
        Self::HS512,
        Self::RS256,
        Self::RS384,
        Self::RS512,
        Self::PS256,
        Self::PS384,
        Self::PS512,
        Self::ES256,
        Self::ES384,
        Self::ES512,
        Self::EdDSA,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Self::HS256 => "HS256",
            Self::HS384 => "HS384",
            Self::HS512 => "HS512",
            Self::RS256 => "RS256",
            Self::RS384 => "RS384",
            Self::RS512 => "RS512",
            Self::PS256 => "PS256",
            Self::PS384 => "PS384",
            Self::PS512 => "PS512",
            Self::ES256 => "ES256",
            Self::ES384 => "ES384",
            Self::ES512 => "ES512",
            Self::EdDSA => "EdDSA",
        }
    }

    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|a| a.name() == name)
    }

    /// `HS256`, `HS384`, `HS512`.
    pub fn is_hmac(self) -> bool {
        matches!(self, Self::HS256 | Self::HS384 | Self::HS512)
    }
}

#[derive(Debug, Clone)]
pub struct Csrf {
    pub cookie: String,
    pub query: Option<String>,
    pub header: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PayloadFormat {
    V1,
    V2,
}

#[derive(Debug, Clone)]
pub struct RequestAuthorizer {
    pub name: String,
    /// Event shape sent to the webhook on HTTP routes: "2.0" (default) or "1.0" (the REST
    /// shape with `authorizationToken` and `methodArn`). WebSocket `$connect` always uses the
    /// WebSocket REQUEST shape.
    pub payload_format: PayloadFormat,
    /// The webhook (`url`) or the authorizer handler (`function`).
    pub target: Target,
    pub identity_source: Vec<String>,
    pub cache_ttl: Duration,
    pub csrf: Option<Csrf>,
    pub timeout: Duration,
}

/// `Debug` hides a password in the URL (`postgres://user:<redacted>@host/db`).
#[derive(Clone)]
pub struct Store {
    /// `sqlite://FILE`, `sqlite::memory:`, or `postgres://...`; default `sqlite://portcullis.db`.
    pub url: String,
    /// Encrypts the signing keys and the client-secret pepper in the store; `None`: they are
    /// stored unencrypted (and the gateway warns at start).
    pub key_encryption_key: Option<KeyEncryptionKey>,
}

impl fmt::Debug for Store {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Store")
            .field("url", &crate::syntax::redact_url(&self.url))
            .field("key_encryption_key", &self.key_encryption_key)
            .finish()
    }
}

/// Fewest bytes of key-encryption key material accepted.
pub const MIN_KEY_ENCRYPTION_KEY_BYTES: usize = 32;

/// Where the store's key-encryption key comes from (`[store] key_encryption_key` or
/// `key_encryption_key_file`). The AEAD key is derived from these bytes with HKDF.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyEncryptionKey {
    /// The key itself, usually `"${PORTCULLIS_KEK}"`; at least
    /// [`MIN_KEY_ENCRYPTION_KEY_BYTES`] bytes.
    Value(Secret),
    /// A file holding the key (one trailing newline is ignored), read when the store is
    /// opened; a relative path is resolved against the configuration file's directory by
    /// [`crate::load_file`].
    File(std::path::PathBuf),
}

#[derive(Debug, Clone)]
pub struct Pool {
    pub name: String,
    /// The user pool id in Cognito's shape `{region}_{name}` (`us-east-1_main`, the region of
    /// `[management]`) unless `id` sets one. The Cognito clients derive the SRP pool name from
    /// it (the part after the first `_`).
    pub id: String,
    pub self_sign_up: bool,
    pub password_policy: PasswordPolicy,
    pub access_token_ttl: Duration,
    pub id_token_ttl: Duration,
    pub refresh_token_ttl: Duration,
    pub groups: Vec<String>,
    pub resource_servers: IndexMap<String, ResourceServer>,
    pub clients: IndexMap<String, AppClient>,
    /// Requests per second per client IP on the pool's token endpoint, hosted login and the
    /// sign-in-class operations of the Cognito JSON API (burst: twice as many); 0 = no limit.
    pub rate_limit_per_ip: u32,
    /// Where confirmation and reset codes are POSTed; `None`: they are written to the log.
    pub code_webhook: Option<CodeWebhook>,
    /// Declared `custom:NAME` attributes, by NAME (without the prefix), in file order. Only
    /// these custom attributes may be stored for the pool's users.
    pub custom_attributes: IndexMap<String, CustomAttribute>,
    /// `[pools.NAME.triggers]`: the Lambda triggers called by sign-up, confirmation, sign-in
    /// and token minting.
    pub triggers: Triggers,
    /// Multi-factor sign-in (`mfa`): TOTP software tokens only. Default off.
    pub mfa: Mfa,
    /// Extra, free-form keys kept for later phases.
    pub extra: BTreeMap<String, String>,
}

/// A pool's multi-factor authentication (Cognito's `MfaConfiguration`), with TOTP software
/// tokens as the only factor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Mfa {
    /// No second factor: users' software tokens are ignored at sign-in (`"off"`, default).
    #[default]
    Off,
    /// Users who enabled a software token answer `SOFTWARE_TOKEN_MFA` after their password
    /// (`"optional"`).
    Optional,
    /// Every user answers `SOFTWARE_TOKEN_MFA`; one without a token sets one up first
    /// (`MFA_SETUP`) (`"on"`).
    On,
}

impl Mfa {
    /// Every value, in the order they are documented.
    pub const ALL: [Mfa; 3] = [Mfa::Off, Mfa::Optional, Mfa::On];

    /// The value's name in the configuration file.
    pub fn name(self) -> &'static str {
        match self {
            Mfa::Off => "off",
            Mfa::Optional => "optional",
            Mfa::On => "on",
        }
    }

    /// A value by its name in the configuration file.
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|m| m.name() == name)
    }
}

/// `[pools.NAME.custom_attributes.ATTR]`: a declared `custom:ATTR` user attribute.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CustomAttribute {
    /// Users may change it after sign-up (`UpdateUserAttributes`); false: set at sign-up or by
    /// an administrator only. Default true.
    pub mutable: bool,
    /// Longest value in characters. Default (and most) 2048.
    pub max_length: u32,
}

/// `code_webhook*` of a pool: an HTTP endpoint that delivers codes to users.
#[derive(Debug, Clone)]
pub struct CodeWebhook {
    /// `http(s)://` URL the JSON delivery is POSTed to.
    pub url: String,
    /// Key of the `X-Portcullis-Signature: sha256=<hex HMAC-SHA256 of the body>` header.
    pub secret: Option<Secret>,
    /// Time allowed for one delivery (connect + answer).
    pub timeout: Duration,
}

#[derive(Debug, Clone)]
pub struct PasswordPolicy {
    pub min_length: u32,
    pub require_digits: bool,
    pub require_lowercase: bool,
    pub require_uppercase: bool,
    pub require_symbols: bool,
}

#[derive(Debug, Clone)]
pub struct ResourceServer {
    pub identifier: String,
    pub scopes: Vec<String>,
}

#[derive(Debug, Clone)]
pub struct AppClient {
    pub client_id: String,
    /// What the hosted sign-in page calls the application ("Sign in to continue to …");
    /// the client id when absent.
    pub name: Option<String>,
    pub public: bool,
    pub secret: Option<Secret>,
    pub grants: Vec<String>,
    pub callback_urls: Vec<String>,
    pub logout_urls: Vec<String>,
    pub allowed_scopes: Vec<String>,
    /// Each refresh returns a new refresh token and the used one stops working; using one
    /// twice ends the session. Default: on for clients without a secret.
    pub refresh_token_rotation: bool,
    /// The flows of the Cognito JSON API's `InitiateAuth` the client may start (`auth_flows`).
    /// Default: `USER_SRP_AUTH`, with `USER_PASSWORD_AUTH` when the client has the `password`
    /// grant and `REFRESH_TOKEN_AUTH` when it has the `refresh_token` grant.
    pub auth_flows: Vec<AuthFlow>,
}

/// A flow of `InitiateAuth` an app client may be allowed (Cognito's `ExplicitAuthFlows`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthFlow {
    /// `USER_SRP_AUTH`: Secure Remote Password sign-in (the password never travels).
    UserSrp,
    /// `USER_PASSWORD_AUTH`: the password is sent to the server.
    UserPassword,
    /// `REFRESH_TOKEN_AUTH`: new tokens for a refresh token.
    RefreshToken,
}

impl AuthFlow {
    /// Every flow, in the order they are documented.
    pub const ALL: [AuthFlow; 3] = [
        AuthFlow::UserSrp,
        AuthFlow::UserPassword,
        AuthFlow::RefreshToken,
    ];

    /// The flow's name in `auth_flows` and in `InitiateAuth`'s `AuthFlow`.
    pub fn name(self) -> &'static str {
        match self {
            AuthFlow::UserSrp => "USER_SRP_AUTH",
            AuthFlow::UserPassword => "USER_PASSWORD_AUTH",
            AuthFlow::RefreshToken => "REFRESH_TOKEN_AUTH",
        }
    }

    /// A flow by its name, also in Cognito's `ALLOW_` form (`ALLOW_USER_SRP_AUTH`).
    pub fn parse(name: &str) -> Option<Self> {
        let name = name.strip_prefix("ALLOW_").unwrap_or(name);
        Self::ALL.into_iter().find(|flow| flow.name() == name)
    }
}

/// `[cluster]`: several nodes sharing connections, users, topics and replay logs through
/// Redis. Absent: one node, no Redis.
#[derive(Clone)]
pub struct Cluster {
    /// `redis://` or `rediss://` URL (may carry a password: printed redacted).
    pub redis: String,
    /// This node's name in logs, metrics and membership; random per start when not set.
    pub node_id: Option<String>,
    /// How often a node announces itself; one not heard for 3 heartbeats is dead.
    pub heartbeat: Duration,
}

impl fmt::Debug for Cluster {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Cluster")
            .field("redis", &crate::syntax::redact_url(&self.redis))
            .field("node_id", &self.node_id)
            .field("heartbeat", &self.heartbeat)
            .finish()
    }
}
