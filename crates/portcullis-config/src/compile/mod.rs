//! Raw tree → [`Config`]: every section is read with the schema walker, defaults are filled
//! in, values are validated, and cross references (route → integration, API → authorizer)
//! are resolved once all sections have been read.
//!
//! Decisions worth knowing when reading the output:
//! - An HTTP route's `authorizer` is the effective one: the route's own, else the API's
//!   `authorizer`. A route opts out of the API default with `authorizer = "none"` (so no
//!   authorizer may be named `none`).
//! - WebSocket paths and non-empty HTTP `base_path`s share one namespace; two HTTP APIs may
//!   not share a `base_path` (including the empty default). `api_id`s are unique across all
//!   APIs; derived ones include the API kind, so `[websocket.x]` and `[http.x]` differ.

mod apis;
mod authorization;
mod backends;
mod cluster;
mod functions;
mod identity;
mod limits;
mod pools;
mod triggers;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Duration;

use indexmap::IndexMap;

use crate::defaults;
use crate::model::{
    Authorizer, Config, Credential, CredentialScope, KeyEncryptionKey,
    MIN_KEY_ENCRYPTION_KEY_BYTES, Management, Server, StaticSite, Store, Tls,
};
use crate::model::{
    DEFAULT_ADMIN_MAX_CONNECTIONS, DEFAULT_BODY_READ_TIMEOUT, DEFAULT_HEADER_READ_TIMEOUT,
    DEFAULT_MAX_CONNECTIONS, DEFAULT_MAX_CONNECTIONS_PER_IP, DEFAULT_UPSTREAM_IDLE_TIMEOUT,
    DEFAULT_UPSTREAM_MAX_IDLE_PER_HOST, MAX_WORKERS,
};
use crate::raw::Node;
use crate::syntax;
use crate::walk::{Ctx, Sp, Tbl};

/// What a name in the file refers to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RefKind {
    Integration,
    Authorizer,
    Function,
    /// `authorization = "AWS_IAM"`: some identity pool must be declared.
    IdentityPools,
}

/// A name used somewhere that must be defined in another section.
pub(crate) struct Ref {
    kind: RefKind,
    name: String,
    at: usize,
    path: String,
}

/// References collected while reading; checked at the end against the declared names.
#[derive(Default)]
pub(crate) struct Refs(Vec<Ref>);

impl Refs {
    pub(crate) fn push(&mut self, kind: RefKind, name: &Sp<String>, path: String) {
        self.0.push(Ref {
            kind,
            name: name.v.clone(),
            at: name.at,
            path,
        });
    }

    fn check(
        self,
        ctx: &mut Ctx<'_>,
        integrations: &[String],
        authorizers: &[String],
        functions: &[String],
        identity_pools: &[String],
    ) {
        for r in self.0 {
            if r.kind == RefKind::IdentityPools {
                if identity_pools.is_empty() {
                    ctx.error(r.at, &r.path, authorization::NEEDS_IDENTITY_POOL);
                }
                continue;
            }
            let (declared, what) = match r.kind {
                RefKind::Integration => (integrations, "integration"),
                RefKind::Authorizer => (authorizers, "authorizer"),
                RefKind::Function | RefKind::IdentityPools => (functions, "function"),
            };
            if !declared.contains(&r.name) {
                let message = if r.kind == RefKind::Function && declared.is_empty() {
                    format!(
                        "no function named {:?} (declare it in a [functions.{}] table)",
                        r.name, r.name
                    )
                } else {
                    format!("no {what} named {:?}", r.name)
                };
                ctx.error(r.at, &r.path, message);
            }
        }
    }
}

/// Every entry of a table of user-named tables (`[websocket.NAME]`, `[pools.NAME]`, ...).
fn named<'n>(
    ctx: &mut Ctx<'_>,
    parent: &mut Tbl<'n>,
    key: &'static str,
) -> Vec<(Sp<String>, Tbl<'n>)> {
    let Some(mut table) = parent.table(ctx, key) else {
        return Vec::new();
    };
    let path = table.path.clone();
    table
        .entries()
        .iter()
        .filter_map(|entry| {
            let tbl = ctx.table(&entry.node, &crate::walk::join(&path, &entry.key))?;
            Some((
                Sp {
                    v: entry.key.clone(),
                    at: entry.key_at,
                },
                tbl,
            ))
        })
        .collect()
}

pub(crate) fn compile(root: &Node, ctx: &mut Ctx<'_>) -> Option<Config> {
    let mut top = ctx.table(root, "")?;
    let mut refs = Refs::default();

    let server = match top.table(ctx, "server") {
        Some(t) => server(ctx, t),
        None => {
            if !top.contains("server") {
                ctx.error(
                    0,
                    "server",
                    "missing required table [server] (listen and admin_listen are required)",
                );
            }
            None
        }
    };
    let management = match top.table(ctx, "management") {
        Some(t) => management(ctx, t),
        None => Some(Management {
            credentials: Vec::new(),
            region: defaults::REGION.to_owned(),
            account_id: defaults::ACCOUNT_ID.to_owned(),
        }),
    };

    let mut websocket = IndexMap::new();
    let mut ws_meta = Vec::new();
    for (name, t) in named(ctx, &mut top, "websocket") {
        if let Some((api, meta)) = apis::websocket(ctx, &name, t, &mut refs) {
            ws_meta.push(meta);
            websocket.insert(name.v, api);
        }
    }
    let mut http = IndexMap::new();
    let mut http_meta = Vec::new();
    for (name, t) in named(ctx, &mut top, "http") {
        if let Some((api, meta)) = apis::http(ctx, &name, t, &mut refs) {
            http_meta.push(meta);
            http.insert(name.v, api);
        }
    }

    let mut integrations = IndexMap::new();
    let mut integration_names = Vec::new();
    for (name, t) in named(ctx, &mut top, "integrations") {
        integration_names.push(name.v.clone());
        if let Some(integration) = backends::integration(ctx, &name, t, &mut refs) {
            integrations.insert(name.v, integration);
        }
    }
    let mut authorizers = IndexMap::new();
    let mut authorizer_names = Vec::new();
    let mut authorizer_at = HashMap::new();
    for (name, t) in named(ctx, &mut top, "authorizers") {
        authorizer_names.push(name.v.clone());
        authorizer_at.insert(name.v.clone(), name.at);
        if let Some(authorizer) = backends::authorizer(ctx, &name, t, &mut refs) {
            authorizers.insert(name.v, authorizer);
        }
    }

    let store = match top.table(ctx, "store") {
        Some(t) => store(ctx, t),
        None => Some(Store {
            url: DEFAULT_STORE_URL.to_owned(),
            key_encryption_key: None,
        }),
    };

    let mut pools_out = IndexMap::new();
    let mut seen = pools::Seen {
        region: management
            .as_ref()
            .map_or(defaults::REGION, |m| m.region.as_str()),
        client_owners: HashMap::new(),
        pool_ids: HashMap::new(),
    };
    for (name, t) in named(ctx, &mut top, "pools") {
        if let Some(pool) = pools::pool(ctx, &name, t, &mut seen, &mut refs) {
            pools_out.insert(name.v, pool);
        }
    }
    let mut static_sites = IndexMap::new();
    for (name, t) in named(ctx, &mut top, "static") {
        if let Some(site) = static_site(ctx, &name, t, &ws_meta, &http_meta) {
            static_sites.insert(name.v, site);
        }
    }
    let cluster = top.table(ctx, "cluster").map(|t| cluster::cluster(ctx, t));
    let mut functions_out = IndexMap::new();
    let mut function_names = Vec::new();
    for (name, t) in named(ctx, &mut top, "functions") {
        function_names.push(name.v.clone());
        if let Some(function) = functions::function(ctx, &name, t) {
            functions_out.insert(name.v, function);
        }
    }
    let (roles, identity_pools) = iam(ctx, &mut top, management.as_ref(), &pools_out);
    top.finish(ctx);

    let identity_pool_names: Vec<String> = identity_pools.keys().cloned().collect();
    refs.check(
        ctx,
        &integration_names,
        &authorizer_names,
        &function_names,
        &identity_pool_names,
    );
    apis::check_unique(ctx, &ws_meta, &http_meta);

    if ctx.has_errors() {
        return None;
    }
    let server = server?;
    let pool_issuers: Vec<String> = pools_out
        .keys()
        .map(|pool| format!("{}/pools/{pool}", server.public_url))
        .collect();
    for (name, authorizer) in authorizers.iter_mut() {
        if let Authorizer::Jwt(jwt) = authorizer {
            let at = authorizer_at.get(name).copied().unwrap_or(0);
            for (index, issuer) in jwt.issuers.iter().enumerate() {
                if issuer.secret.is_some() && pool_issuers.contains(&issuer.issuer) {
                    ctx.error(
                        at,
                        &format!("authorizers.{name}.issuers[{index}].secret"),
                        "this issuer is a built-in pool, whose keys are its own: remove the \
                         secret (a pool's tokens are never HMAC-signed)",
                    );
                }
            }
            default_token_use(ctx, at, name, jwt, &pool_issuers);
        }
    }
    Some(Config {
        server,
        management: management?,
        websocket,
        http,
        integrations,
        authorizers,
        store: store?,
        pools: pools_out,
        static_sites,
        cluster: cluster.flatten(),
        functions: functions_out,
        identity_pools,
        roles,
        warnings: Vec::new(),
    })
}

/// `[roles.*]` then `[identity_pools.*]`, which refer to roles and to `[pools.*]`.
fn iam(
    ctx: &mut Ctx<'_>,
    top: &mut Tbl<'_>,
    management: Option<&Management>,
    pools: &IndexMap<String, crate::model::Pool>,
) -> (
    IndexMap<String, crate::model::Role>,
    IndexMap<String, crate::model::IdentityPool>,
) {
    let account_id = management.map_or(defaults::ACCOUNT_ID, |m| m.account_id.as_str());
    let region = management.map_or(defaults::REGION, |m| m.region.as_str());
    let mut roles = IndexMap::new();
    let mut role_names = Vec::new();
    for (name, t) in named(ctx, top, "roles") {
        role_names.push(name.v.clone());
        if let Some(role) = identity::role(ctx, &name, t, account_id) {
            roles.insert(name.v, role);
        }
    }
    let known = identity::Known {
        region,
        pools,
        roles: &role_names,
    };
    let mut identity_pools = IndexMap::new();
    let mut ids = Vec::new();
    for (name, t) in named(ctx, top, "identity_pools") {
        if let Some(pool) = identity::identity_pool(ctx, &name, t, &known, &mut ids) {
            identity_pools.insert(name.v, pool);
        }
    }
    (roles, identity_pools)
}

/// A `jwt` authorizer without `token_use` would take an ID token where an access token is
/// meant (both carry the client id as audience). When every issuer is a built-in pool, whose
/// access tokens say `token_use: "access"`, that is the default; otherwise the authorizer
/// keeps accepting either and `portcullis check` warns.
fn default_token_use(
    ctx: &mut Ctx<'_>,
    at: usize,
    name: &str,
    jwt: &mut crate::model::JwtAuthorizer,
    pool_issuers: &[String],
) {
    if jwt.token_use.is_some() {
        return;
    }
    let pools_only = jwt.issuers.iter().all(|i| pool_issuers.contains(&i.issuer));
    if pools_only {
        jwt.token_use = Some("access".to_owned());
    } else if jwt
        .issuers
        .iter()
        .all(|i| i.secret.is_some() || pool_issuers.contains(&i.issuer))
    {
        // Shared-secret issuers are applications minting their own tokens: there is no
        // access/ID pair to confuse, and their tokens rarely carry token_use.
    } else {
        ctx.warn(
            at,
            &format!("authorizers.{name}.token_use"),
            "not set, so ID tokens are accepted as well as access tokens: set \
             token_use = \"access\" (Cognito and the built-in pools) or \"id\"",
        );
    }
}

/// `[static.NAME]`: `dir` (required), `path` (default `/NAME`), `index` (default `index.html`).
fn static_site(
    ctx: &mut Ctx<'_>,
    name: &Sp<String>,
    mut t: Tbl<'_>,
    websocket: &[apis::ApiMeta],
    http: &[apis::ApiMeta],
) -> Option<StaticSite> {
    let dir = t.req_string(ctx, "dir");
    let path = match t.string(ctx, "path") {
        None => Some(format!("/{}", name.v)),
        Some(p) => {
            let trimmed = p.v.trim_end_matches('/');
            let valid = p.v.starts_with('/')
                && !p.v.contains("//")
                && trimmed.split('/').skip(1).all(|s| {
                    !s.is_empty()
                        && s != "."
                        && s != ".."
                        && s.chars()
                            .all(|c| c.is_ascii_alphanumeric() || "-._~".contains(c))
                });
            if !valid {
                ctx.error(
                    p.at,
                    &t.path_of("path"),
                    format!("invalid path {:?}: expected \"/\" or segments of letters, digits, '-', '.', '_', '~' like \"/demo\"", p.v),
                );
                None
            } else if trimmed == "/pools" || trimmed.starts_with("/pools/") {
                ctx.error(
                    p.at,
                    &t.path_of("path"),
                    "/pools is reserved for the identity provider",
                );
                None
            } else if let Some(api) = websocket
                .iter()
                .chain(http)
                .find(|m| !trimmed.is_empty() && m.paths().any(|p| p == trimmed))
            {
                ctx.error(
                    p.at,
                    &t.path_of("path"),
                    format!(
                        "path {:?} is already used by {} API {:?}",
                        p.v, api.kind, api.name
                    ),
                );
                None
            } else {
                Some(if trimmed.is_empty() {
                    "/".to_owned()
                } else {
                    trimmed.to_owned()
                })
            }
        }
    };
    let index = t.string(ctx, "index").and_then(|i| {
        if i.v.is_empty() || i.v.contains('/') || i.v.contains('\\') || i.v == "." || i.v == ".." {
            ctx.error(
                i.at,
                &t.path_of("index"),
                "expected a file name like \"index.html\"",
            );
            None
        } else {
            Some(i.v)
        }
    });
    t.finish(ctx);
    Some(StaticSite {
        name: name.v.clone(),
        path: path?,
        dir: std::path::PathBuf::from(dir?.v),
        index: index.unwrap_or_else(|| "index.html".to_owned()),
    })
}

fn server(ctx: &mut Ctx<'_>, mut t: Tbl<'_>) -> Option<Server> {
    const ADDR: &str = "a socket address like \"127.0.0.1:8080\"";
    if !t.contains("listen") {
        t.missing(ctx, "listen");
    }
    let listen = t.parsed::<SocketAddr>(ctx, "listen", ADDR);
    if !t.contains("admin_listen") {
        t.missing(ctx, "admin_listen");
    }
    let admin_listen = t.parsed::<SocketAddr>(ctx, "admin_listen", ADDR);
    if let (Some(listen), Some(admin)) = (&listen, &admin_listen)
        && listen.v == admin.v
        && listen.v.port() != 0
    {
        ctx.error(
            admin.at,
            &t.path_of("admin_listen"),
            "must differ from listen",
        );
    }
    let public_url = t.string(ctx, "public_url");
    let public = match (&public_url, &listen) {
        (Some(url), _) => match public_url_parts(&url.v) {
            Ok(parts) => Some(parts),
            Err(message) => {
                ctx.error(url.at, &t.path_of("public_url"), message);
                None
            }
        },
        (None, Some(listen)) => {
            let scheme = if t.contains("tls") { "https" } else { "http" };
            public_url_parts(&format!("{scheme}://{}", listen.v)).ok()
        }
        (None, None) => None,
    };
    let tls = tls_files(ctx, &mut t, "tls");
    let admin_tls = tls_files(ctx, &mut t, "admin_tls");
    let ca_file = t.name(ctx, "ca_file").map(|f| f.v);
    let shutdown_grace = t
        .duration_in(
            ctx,
            "shutdown_grace",
            Duration::ZERO,
            Duration::from_secs(3600),
        )
        .map_or(Duration::from_secs(10), |d| d.v);
    let max_connections = t
        .size(ctx, "max_connections", 1)
        .map_or(DEFAULT_MAX_CONNECTIONS, |s| s.v);
    let admin_max_connections = t
        .size(ctx, "admin_max_connections", 1)
        .map_or(DEFAULT_ADMIN_MAX_CONNECTIONS, |s| s.v);
    let max_connections_per_ip = t
        .size(ctx, "max_connections_per_ip", 1)
        .map_or(DEFAULT_MAX_CONNECTIONS_PER_IP, |s| s.v);
    let connect_rate_per_ip = limits::connect_rate_per_ip(ctx, &mut t);
    let trusted_proxies = limits::trusted_proxies(ctx, &mut t);
    let header_read_timeout = t
        .duration_in(
            ctx,
            "header_read_timeout",
            Duration::from_millis(1),
            Duration::from_secs(600),
        )
        .map_or(DEFAULT_HEADER_READ_TIMEOUT, |d| d.v);
    let body_read_timeout = t
        .duration_in(
            ctx,
            "body_read_timeout",
            Duration::from_millis(1),
            Duration::from_secs(3600),
        )
        .map_or(DEFAULT_BODY_READ_TIMEOUT, |d| d.v);
    let upstream_idle_timeout = t
        .duration_in(
            ctx,
            "upstream_idle_timeout",
            Duration::from_millis(1),
            Duration::from_secs(3600),
        )
        .map_or(DEFAULT_UPSTREAM_IDLE_TIMEOUT, |d| d.v);
    let upstream_max_idle_per_host = t
        .size(ctx, "upstream_max_idle_per_host", 0)
        .map_or(DEFAULT_UPSTREAM_MAX_IDLE_PER_HOST, |s| s.v);
    let workers = t
        .int(ctx, "workers", 0, MAX_WORKERS as i64)
        .and_then(|w| usize::try_from(w.v).ok())
        .unwrap_or(0);
    t.finish(ctx);
    let (public_url, domain_name) = public?;
    Some(Server {
        listen: listen?.v,
        admin_listen: admin_listen?.v,
        public_url,
        domain_name,
        tls,
        admin_tls,
        ca_file,
        shutdown_grace,
        max_connections,
        admin_max_connections,
        max_connections_per_ip,
        connect_rate_per_ip,
        trusted_proxies,
        header_read_timeout,
        body_read_timeout,
        upstream_idle_timeout,
        upstream_max_idle_per_host,
        workers,
    })
}

/// `server.tls` / `server.admin_tls`: `{ cert, key }`, both required.
fn tls_files(ctx: &mut Ctx<'_>, t: &mut Tbl<'_>, key: &'static str) -> Option<Tls> {
    let mut tls = t.table(ctx, key)?;
    let cert = tls.req_name(ctx, "cert");
    let key = tls.req_name(ctx, "key");
    tls.finish(ctx);
    Some(Tls {
        cert: cert?.v,
        key: key?.v,
    })
}

/// `public_url` without trailing slash, and its `host[:port]`.
fn public_url_parts(text: &str) -> Result<(String, String), String> {
    let url = syntax::http_url(text)?;
    if url.query().is_some() || url.fragment().is_some() {
        return Err(format!(
            "invalid URL {text:?}: must not have a query or fragment"
        ));
    }
    let host = url.host_str().unwrap_or_default();
    let domain = match url.port() {
        Some(port) => format!("{host}:{port}"),
        None => host.to_owned(),
    };
    Ok((text.trim_end_matches('/').to_owned(), domain))
}

fn management(ctx: &mut Ctx<'_>, mut t: Tbl<'_>) -> Option<Management> {
    let mut credentials = Vec::new();
    let mut ok = true;
    let mut seen: Vec<String> = Vec::new();
    for mut c in t.tables(ctx, "credentials") {
        let access_key_id = c.req_name(ctx, "access_key_id");
        let secret = c.secret(ctx, "secret_access_key");
        let scopes = credential_scopes(ctx, &mut c);
        if secret.is_none() && !c.contains("secret_access_key") {
            c.missing(ctx, "secret_access_key");
        }
        if let Some(id) = &access_key_id {
            if seen.contains(&id.v) {
                ctx.error(
                    id.at,
                    &c.path_of("access_key_id"),
                    format!("duplicate access key id {:?}", id.v),
                );
            }
            seen.push(id.v.clone());
        }
        c.finish(ctx);
        match (access_key_id, secret, scopes) {
            (Some(id), Some(secret), Some(scopes)) => {
                credentials.push(Credential {
                    access_key_id: id.v,
                    secret_access_key: secret.v,
                    scopes,
                });
            }
            _ => ok = false,
        }
    }
    let region = t.name(ctx, "region").and_then(|r| {
        if r.v
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        {
            Some(r.v)
        } else {
            ctx.error(
                r.at,
                &t.path_of("region"),
                format!(
                    "invalid region {:?}: expected e.g. {:?}",
                    r.v,
                    defaults::REGION
                ),
            );
            None
        }
    });
    let account_id = t.string(ctx, "account_id").and_then(|a| {
        if a.v.len() == 12 && a.v.chars().all(|c| c.is_ascii_digit()) {
            Some(a.v)
        } else {
            ctx.error(
                a.at,
                &t.path_of("account_id"),
                format!("expected 12 digits, got {:?}", a.v),
            );
            None
        }
    });
    t.finish(ctx);
    ok.then(|| Management {
        credentials,
        region: region.unwrap_or_else(|| defaults::REGION.to_owned()),
        account_id: account_id.unwrap_or_else(|| defaults::ACCOUNT_ID.to_owned()),
    })
}

/// `scopes` of one credential: names from [`CredentialScope`], at least one; default
/// `["connections"]`, so a backend's credential cannot administer the identity provider.
fn credential_scopes(ctx: &mut Ctx<'_>, c: &mut Tbl<'_>) -> Option<Vec<CredentialScope>> {
    if !c.contains("scopes") {
        c.node("scopes");
        return Some(vec![CredentialScope::Connections]);
    }
    let path = c.path_of("scopes");
    let names = c.strings(ctx, "scopes")?;
    if names.is_empty() {
        ctx.error(
            c.at_of("scopes"),
            &path,
            "needs at least one scope: \"connections\" or \"admin\"",
        );
        return None;
    }
    let mut scopes = Vec::new();
    let mut ok = true;
    for (i, name) in names.iter().enumerate() {
        match CredentialScope::ALL.iter().find(|s| s.as_str() == name.v) {
            Some(scope) if !scopes.contains(scope) => scopes.push(*scope),
            Some(_) => {}
            None => {
                ctx.error(
                    name.at,
                    &crate::walk::index(&path, i),
                    format!("expected \"connections\" or \"admin\", got {:?}", name.v),
                );
                ok = false;
            }
        }
    }
    ok.then_some(scopes)
}

const DEFAULT_STORE_URL: &str = "sqlite://portcullis.db";

fn store(ctx: &mut Ctx<'_>, mut t: Tbl<'_>) -> Option<Store> {
    let url = t.string(ctx, "url");
    let path = t.path_of("url");
    let key_encryption_key = store_kek(ctx, &mut t);
    t.finish(ctx);
    let url = match url {
        None => Some(DEFAULT_STORE_URL.to_owned()),
        Some(url) => {
            let v = &url.v;
            if v.starts_with("sqlite:")
                || v.starts_with("postgres://")
                || v.starts_with("postgresql://")
            {
                Some(url.v)
            } else {
                ctx.error(
                    url.at,
                    &path,
                    format!(
                        "unsupported store URL {:?}: expected \"sqlite://FILE\", \"sqlite::memory:\" or \"postgres://...\"",
                        syntax::redact_url(v)
                    ),
                );
                None
            }
        }
    };
    Some(Store {
        url: url?,
        key_encryption_key: key_encryption_key?,
    })
}

/// `key_encryption_key` (at least 32 bytes) or `key_encryption_key_file`, not both. The outer
/// `None` means an error was reported.
fn store_kek(ctx: &mut Ctx<'_>, t: &mut Tbl<'_>) -> Option<Option<KeyEncryptionKey>> {
    let value = t.secret(ctx, "key_encryption_key");
    let file = t.name(ctx, "key_encryption_key_file");
    match (value, file) {
        (Some(_), Some(file)) => {
            ctx.error(
                file.at,
                &t.path_of("key_encryption_key_file"),
                "set either key_encryption_key or key_encryption_key_file, not both",
            );
            None
        }
        (Some(value), None) => {
            let len = value.v.expose().len();
            if len < MIN_KEY_ENCRYPTION_KEY_BYTES {
                ctx.error(
                    value.at,
                    &t.path_of("key_encryption_key"),
                    format!(
                        "must be at least {MIN_KEY_ENCRYPTION_KEY_BYTES} bytes, got {len} \
                         (generate one with `openssl rand -base64 32`)"
                    ),
                );
                return None;
            }
            Some(Some(KeyEncryptionKey::Value(value.v)))
        }
        (None, Some(file)) => Some(Some(KeyEncryptionKey::File(file.v.into()))),
        (None, None) => {
            let reported =
                t.contains("key_encryption_key") || t.contains("key_encryption_key_file");
            (!reported).then_some(None)
        }
    }
}
