//! Tests of the whole compiler through the public API: the contract example, defaults,
//! every kind of diagnostic (with exact positions), redaction and rendering.

use std::time::Duration;

use super::*;

/// The example of CONFIG.md, verbatim (its secrets come from the environment).
const CONTRACT_EXAMPLE: &str = r#"[server]
listen = "127.0.0.1:8080"          # WebSocket, HTTP APIs, SSE, identity endpoints
admin_listen = "127.0.0.1:9090"    # @connections management API, /metrics, /healthz, admin API
public_url = "http://localhost:8080"   # used in issuer URLs and domainName in events
# tls = { cert = "cert.pem", key = "key.pem" }

[management]                        # who may call the management API
# SigV4 credentials (what boto3 sends); region/stage are what clients sign for
credentials = [{ access_key_id = "AKIDLOCAL", secret_access_key = "${PORTCULLIS_ADMIN_SECRET}" }]
region = "us-east-1"

# ---- WebSocket APIs -------------------------------------------------------------------
[websocket.chat]                    # served at ws://host/chat (path defaults to "/<name>")
stage = "prod"                      # appears in events and ARNs
route_selection_expression = "$request.body.action"
authorizer = "users"                # evaluated on $connect; see per-route rules below
idle_timeout = "10m"
max_duration = "2h"
max_frame_bytes = 32768
max_message_bytes = 131072
allowed_origins = ["http://localhost:8080"]    # empty = any origin (only sensible without cookies)
subprotocols = ["chat.v1"]          # protocols the server may echo in Sec-WebSocket-Protocol
binary_frames = "close"             # AWS behaviour: close 1003; "base64": pass on with isBase64Encoded
message_policy = false              # true: evaluate the authorizer's policy for every message's route

[websocket.chat.routes]
"$connect"    = { integration = "chat_backend" }
"$disconnect" = { integration = "chat_backend" }
"$default"    = { integration = "chat_backend", response = true }   # two-way: reply body goes back
sendmessage   = { integration = "chat_backend", scopes = ["chat/write"] }   # checked per message
admin         = { integration = "chat_backend", groups = ["admins"] }

# ---- HTTP APIs ------------------------------------------------------------------------
[http.content]
base_path = "/api"
cors = { allow_origins = ["http://localhost:8080"], allow_headers = ["authorization"] }

[http.content.routes]
"GET /premium"  = { integration = "content", authorizer = "m2m", scopes = ["premium-content/read"] }
"POST /premium" = { integration = "content", authorizer = "m2m", scopes = ["premium-content/write"] }
"ANY /{proxy+}" = { integration = "content_proxy" }

# ---- Integrations (backends) ------------------------------------------------------------
[integrations.chat_backend]
type = "http"                       # POST the AWS-shaped event JSON, read an AWS-shaped result
url = "http://127.0.0.1:9000/events"
timeout = "29s"

[integrations.content]
type = "http"                       # for HTTP APIs: payload format 2.0 event
url = "http://127.0.0.1:9001/lambda"

[integrations.content_proxy]
type = "http_proxy"                 # forward the request itself
url = "http://127.0.0.1:9002"

# ---- Authorizers ------------------------------------------------------------------------
[authorizers.users]
type = "jwt"
identity_source = [
  "route.request.querystring.access_token",
  "route.request.header.Sec-WebSocket-Protocol",
  "route.request.cookie.id_token",
]
issuers = [
  { issuer = "http://localhost:8080/pools/main", audience = ["web"] },     # built-in pool
  { issuer = "https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_AbCdEf", jwks_uri = "https://example.invalid/jwks.json" },
]

[authorizers.m2m]
type = "jwt"
identity_source = ["$request.header.Authorization"]
issuers = [{ issuer = "http://localhost:8080/pools/main" }]   # access tokens: client_id instead of aud

[authorizers.legacy]
type = "request"                    # webhook speaking the Lambda REQUEST authorizer format
url = "http://127.0.0.1:9100/authorize"
identity_source = ["route.request.header.Cookie"]
cache_ttl = "300s"                  # "0s" disables; key = identity source values
csrf = { cookie = "CSRF-TOKEN", query = "csrf" }   # double-submit check before the webhook runs

# ---- Built-in identity provider -----------------------------------------------------------
[store]
url = "sqlite://portcullis.db"      # or "sqlite::memory:", or "postgres://..."

# The Cognito JSON API subset (what boto3's cognito-idp client and Amplify send) is served at
# POST / on the public listener when X-Amz-Target starts with AWSCognitoIdentityProviderService.
# App client ids are unique across pools, so the client id in a call selects its pool.

[pools.main]                        # issuer = <public_url>/pools/main
self_sign_up = true
password_policy = { min_length = 8, require_digits = true }
access_token_ttl = "1h"
id_token_ttl = "1h"
refresh_token_ttl = "30d"
groups = ["admins", "members"]

[pools.main.resource_servers.premium-content]
scopes = ["read", "write"]          # granted as "premium-content/read" etc.

[pools.main.clients.web]                # the table key is the client_id (unique across pools)
public = true                       # no secret; authorization code + PKCE, password login
callback_urls = ["http://localhost:8080/demo/"]
allowed_scopes = ["openid", "email", "profile", "chat/write"]

[pools.main.clients.reporting-service]
secret = "${REPORTING_CLIENT_SECRET}"   # stored hashed
grants = ["client_credentials"]
allowed_scopes = ["premium-content/read"]
"#;

const ADMIN_SECRET: &str = "admin-s3cret-value";
const REPORTING_SECRET: &str = "reporting-s3cret-value";

fn env(name: &str) -> Option<String> {
    match name {
        "PORTCULLIS_ADMIN_SECRET" => Some(ADMIN_SECRET.to_owned()),
        "REPORTING_CLIENT_SECRET" => Some(REPORTING_SECRET.to_owned()),
        "MAX_CONN" => Some("250".to_owned()),
        "PG_PASSWORD" => Some("pg-s3cret-value".to_owned()),
        _ => None,
    }
}

fn load(source: &str) -> Result<Config, Diagnostics> {
    load_str(source, "test.toml", &env)
}

/// The diagnostics of a file that must fail, rendered as `file:line:col: path: message`.
fn errors(source: &str) -> Vec<String> {
    match load(source) {
        Ok(config) => panic!("expected errors, got {config:#?}"),
        Err(diagnostics) => diagnostics.0.iter().map(ToString::to_string).collect(),
    }
}

/// Asserts that exactly one diagnostic is reported and it is `expected`.
#[track_caller]
fn assert_error(source: &str, expected: &str) {
    assert_eq!(errors(source), vec![expected.to_owned()]);
}

/// `[server]` with its two required keys: lines 1-3 of every small test file.
const SERVER: &str = "[server]\nlisten = \"127.0.0.1:8080\"\nadmin_listen = \"127.0.0.1:9090\"\n";

fn with_server(rest: &str) -> String {
    format!("{SERVER}{rest}")
}

// ---- the contract example ---------------------------------------------------------------

#[test]
fn contract_example_compiles_with_every_key_mapped() {
    let config = load(CONTRACT_EXAMPLE).unwrap();

    let s = &config.server;
    assert_eq!(s.listen.to_string(), "127.0.0.1:8080");
    assert_eq!(s.admin_listen.to_string(), "127.0.0.1:9090");
    assert_eq!(s.public_url, "http://localhost:8080");
    assert_eq!(s.domain_name, "localhost:8080");
    assert!(s.tls.is_none());

    let m = &config.management;
    assert_eq!(m.credentials.len(), 1);
    assert_eq!(m.credentials[0].access_key_id, "AKIDLOCAL");
    assert_eq!(m.credentials[0].secret_access_key.expose(), ADMIN_SECRET);
    assert_eq!(m.region, "us-east-1");

    let chat = &config.websocket["chat"];
    assert_eq!(chat.name, "chat");
    assert_eq!(chat.path, "/chat");
    assert_eq!(chat.stage, "prod");
    assert_eq!(chat.route_selection_expression, "$request.body.action");
    assert_eq!(chat.authorizer.as_deref(), Some("users"));
    assert_eq!(chat.idle_timeout, Duration::from_secs(600));
    assert_eq!(chat.max_duration, Duration::from_secs(7200));
    assert_eq!(chat.max_frame_bytes, 32768);
    assert_eq!(chat.max_message_bytes, 131_072);
    assert_eq!(chat.allowed_origins, ["http://localhost:8080"]);
    assert_eq!(chat.subprotocols, ["chat.v1"]);
    assert_eq!(chat.binary_frames, BinaryFrames::Close);
    assert!(!chat.message_policy);
    let keys: Vec<&str> = chat.routes.keys().map(String::as_str).collect();
    assert_eq!(
        keys,
        [
            "$connect",
            "$disconnect",
            "$default",
            "sendmessage",
            "admin"
        ]
    );
    assert_eq!(
        chat.routes["$connect"].integration.as_deref(),
        Some("chat_backend")
    );
    assert!(chat.routes["$default"].response);
    assert!(!chat.routes["sendmessage"].response);
    assert_eq!(chat.routes["sendmessage"].scopes, ["chat/write"]);
    assert_eq!(chat.routes["admin"].groups, ["admins"]);

    let content = &config.http["content"];
    assert_eq!(content.base_path, "/api");
    let cors = content.cors.as_ref().unwrap();
    assert_eq!(cors.allow_origins, ["http://localhost:8080"]);
    assert_eq!(cors.allow_headers, ["authorization"]);
    let premium = &content.routes["GET /premium"];
    assert_eq!(premium.integration, "content");
    assert_eq!(premium.authorizer.as_deref(), Some("m2m"));
    assert_eq!(premium.scopes, ["premium-content/read"]);
    assert_eq!(
        content.routes["POST /premium"].scopes,
        ["premium-content/write"]
    );
    assert_eq!(content.routes["ANY /{proxy+}"].integration, "content_proxy");
    assert_eq!(content.routes["ANY /{proxy+}"].authorizer, None);

    let backend = &config.integrations["chat_backend"];
    assert_eq!(backend.kind, IntegrationKind::Http);
    assert_eq!(
        backend.target.url().unwrap(),
        "http://127.0.0.1:9000/events"
    );
    assert_eq!(backend.timeout, Duration::from_secs(29));
    assert_eq!(
        config.integrations["content_proxy"].kind,
        IntegrationKind::HttpProxy
    );

    let Authorizer::Jwt(users) = &config.authorizers["users"] else {
        panic!("users is jwt")
    };
    assert_eq!(users.identity_source.len(), 3);
    assert_eq!(users.identity_source[2], "route.request.cookie.id_token");
    assert_eq!(users.issuers.len(), 2);
    assert_eq!(users.issuers[0].issuer, "http://localhost:8080/pools/main");
    assert_eq!(users.issuers[0].audience, ["web"]);
    assert_eq!(
        users.issuers[1].jwks_uri.as_deref(),
        Some("https://example.invalid/jwks.json")
    );
    let Authorizer::Jwt(m2m) = &config.authorizers["m2m"] else {
        panic!("m2m is jwt")
    };
    assert_eq!(m2m.identity_source, ["$request.header.Authorization"]);
    assert!(m2m.issuers[0].audience.is_empty());
    let Authorizer::Request(legacy) = &config.authorizers["legacy"] else {
        panic!("legacy is request")
    };
    assert_eq!(
        legacy.target.url().unwrap(),
        "http://127.0.0.1:9100/authorize"
    );
    assert_eq!(legacy.identity_source, ["route.request.header.Cookie"]);
    assert_eq!(legacy.cache_ttl, Duration::from_secs(300));
    let csrf = legacy.csrf.as_ref().unwrap();
    assert_eq!(
        (
            csrf.cookie.as_str(),
            csrf.query.as_deref(),
            csrf.header.as_deref()
        ),
        ("CSRF-TOKEN", Some("csrf"), None)
    );

    assert_eq!(config.store.url, "sqlite://portcullis.db");

    let pool = &config.pools["main"];
    assert!(pool.self_sign_up);
    assert_eq!(pool.password_policy.min_length, 8);
    assert!(pool.password_policy.require_digits);
    assert!(!pool.password_policy.require_symbols);
    assert_eq!(pool.access_token_ttl, Duration::from_secs(3600));
    assert_eq!(pool.id_token_ttl, Duration::from_secs(3600));
    assert_eq!(pool.refresh_token_ttl, Duration::from_secs(30 * 86_400));
    assert_eq!(pool.groups, ["admins", "members"]);
    let rs = &pool.resource_servers["premium-content"];
    assert_eq!(rs.identifier, "premium-content");
    assert_eq!(rs.scopes, ["read", "write"]);
    let web = &pool.clients["web"];
    assert_eq!(web.client_id, "web");
    assert!(web.public);
    assert!(web.secret.is_none());
    assert_eq!(
        web.grants,
        ["authorization_code", "refresh_token", "password"]
    );
    assert_eq!(web.callback_urls, ["http://localhost:8080/demo/"]);
    assert_eq!(
        web.allowed_scopes,
        ["openid", "email", "profile", "chat/write"]
    );
    let reporting = &pool.clients["reporting-service"];
    assert!(!reporting.public);
    assert_eq!(
        reporting.secret.as_ref().unwrap().expose(),
        REPORTING_SECRET
    );
    assert_eq!(reporting.grants, ["client_credentials"]);
    assert!(pool.extra.is_empty());
}

#[test]
fn contract_example_without_its_secrets_reports_both_variables() {
    let diagnostics = load_str(CONTRACT_EXAMPLE, "gw.toml", &|_| None).unwrap_err();
    let messages: Vec<String> = diagnostics.0.iter().map(ToString::to_string).collect();
    assert_eq!(messages.len(), 2, "{messages:#?}");
    assert!(messages[0].starts_with(
        "gw.toml:9:67: management.credentials[0].secret_access_key: environment variable PORTCULLIS_ADMIN_SECRET is not set"
    ), "{}", messages[0]);
    assert!(messages[1].contains(": pools.main.clients.reporting-service.secret: environment variable REPORTING_CLIENT_SECRET is not set"), "{}", messages[1]);
}

#[test]
fn every_example_file_loads() {
    let examples = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples");
    let mut loaded = 0;
    for dir in [examples.clone(), examples.join("seeds")] {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|e| e == "toml") {
                // The examples must load without any environment (defaults for every variable).
                let source = std::fs::read_to_string(&path).unwrap();
                if let Err(e) = load_str(&source, &path.display().to_string(), &|_| None) {
                    panic!("{e}");
                }
                loaded += 1;
            }
        }
    }
    assert!(loaded >= 4, "no examples found in {}", examples.display());
}

#[test]
fn every_bench_config_loads() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../bench");
    let mut loaded = 0;
    for dir in [dir.clone(), dir.join("functions")] {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|e| e == "toml") {
                let source = std::fs::read_to_string(&path).unwrap();
                if let Err(e) = load_str(&source, &path.display().to_string(), &|_| None) {
                    panic!("{e}");
                }
                loaded += 1;
            }
        }
    }
    assert!(
        loaded >= 1,
        "no benchmark configs found in {}",
        dir.display()
    );
}

#[test]
fn load_file_reads_and_names_the_file() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/full.toml");
    let config = load_file(&path).unwrap();
    assert!(config.websocket.contains_key("chat"));
    assert_eq!(config.server.admin_max_connections, 1_000);
    assert_eq!(config.server.max_connections_per_ip, 256);
    assert_eq!(config.server.body_read_timeout, Duration::from_secs(10));

    let missing = std::path::Path::new("/nonexistent/portcullis.toml");
    let diagnostics = load_file(missing).unwrap_err();
    assert_eq!(diagnostics.0.len(), 1);
    let text = diagnostics.to_string();
    assert!(
        text.starts_with("/nonexistent/portcullis.toml:1:1: cannot read configuration file:"),
        "{text}"
    );
}

// ---- defaults ---------------------------------------------------------------------------

#[test]
fn defaults_of_a_minimal_file() {
    let config = load(SERVER).unwrap();
    let s = &config.server;
    assert_eq!(s.public_url, "http://127.0.0.1:8080");
    assert_eq!(s.domain_name, "127.0.0.1:8080");
    assert!(s.tls.is_none());
    assert_eq!(s.shutdown_grace, Duration::from_secs(10));
    assert_eq!(s.max_connections, 100_000);
    assert_eq!(s.admin_max_connections, 1_000);
    assert_eq!(s.max_connections_per_ip, 256);
    assert_eq!(s.header_read_timeout, Duration::from_secs(10));
    assert_eq!(s.body_read_timeout, Duration::from_secs(10));
    assert!(config.management.credentials.is_empty());
    assert_eq!(config.management.region, "us-east-1");
    assert_eq!(config.management.account_id, "000000000000");
    assert!(config.websocket.is_empty());
    assert!(config.http.is_empty());
    assert!(config.integrations.is_empty());
    assert!(config.authorizers.is_empty());
    assert_eq!(config.store.url, "sqlite://portcullis.db");
    assert!(config.pools.is_empty());
}

#[test]
fn defaults_of_apis_integrations_authorizers_and_pools() {
    let source = with_server(
        r#"
[websocket.echo]
[websocket.echo.routes]
"$default" = { integration = "backend" }

[http.rest.routes]
"$default" = { integration = "backend" }

[integrations.backend]
type = "http"
url = "http://127.0.0.1:9000"

[authorizers.hook]
type = "request"
url = "http://127.0.0.1:9100/authorize"

[pools.p]
[pools.p.clients.confidential]
secret = "s"
[pools.p.clients.spa]
public = true
"#,
    );
    let config = load(&source).unwrap();

    let ws = &config.websocket["echo"];
    assert_eq!(ws.path, "/echo");
    assert_eq!(ws.stage, "prod");
    assert_eq!(ws.api_id, syntax::derive_api_id("websocket", "echo"));
    assert_eq!(ws.api_id.len(), 10);
    assert_eq!(ws.route_selection_expression, "$request.body.action");
    assert_eq!(ws.authorizer, None);
    assert_eq!(ws.idle_timeout, Duration::from_secs(600));
    assert_eq!(ws.max_duration, Duration::from_secs(7200));
    assert_eq!(ws.max_frame_bytes, 32768);
    assert_eq!(ws.max_message_bytes, 131_072);
    assert!(ws.allowed_origins.is_empty());
    assert!(ws.subprotocols.is_empty());
    assert_eq!(ws.binary_frames, BinaryFrames::Close);
    assert!(!ws.message_policy);
    assert_eq!(ws.send_queue, 64);
    assert_eq!(ws.max_inflight, 8);
    assert_eq!(
        (ws.max_topics_per_connection, ws.max_subscribers_per_topic),
        (100, 100_000)
    );
    assert_eq!(ws.ping_interval, Duration::from_secs(30));
    let route = &ws.routes["$default"];
    assert!(!route.response);
    assert!(route.scopes.is_empty() && route.groups.is_empty());

    let http = &config.http["rest"];
    assert_eq!(http.base_path, "");
    assert_eq!(http.stage, "$default");
    assert_eq!(http.api_id, syntax::derive_api_id("http", "rest"));
    assert_ne!(http.api_id, ws.api_id);
    assert_eq!(http.authorizer, None);
    assert!(http.cors.is_none());
    assert_eq!(http.max_body_bytes, 10_485_760);
    let route = &http.routes["$default"];
    assert_eq!(route.authorizer, None);
    assert!(route.throttle.is_none());

    let backend = &config.integrations["backend"];
    assert_eq!(backend.name, "backend");
    assert_eq!(backend.timeout, Duration::from_secs(29));
    assert_eq!(backend.max_response_bytes, 1_048_576);

    let Authorizer::Request(hook) = &config.authorizers["hook"] else {
        panic!("request")
    };
    assert!(hook.identity_source.is_empty());
    assert_eq!(hook.cache_ttl, Duration::from_secs(300));
    assert!(hook.csrf.is_none());
    assert_eq!(hook.timeout, Duration::from_secs(10));

    let pool = &config.pools["p"];
    assert!(!pool.self_sign_up);
    let pp = &pool.password_policy;
    assert_eq!(pp.min_length, 8);
    assert!(
        !pp.require_digits && !pp.require_lowercase && !pp.require_uppercase && !pp.require_symbols
    );
    assert_eq!(pool.access_token_ttl, Duration::from_secs(3600));
    assert_eq!(pool.id_token_ttl, Duration::from_secs(3600));
    assert_eq!(pool.refresh_token_ttl, Duration::from_secs(30 * 86_400));
    assert!(pool.groups.is_empty() && pool.resource_servers.is_empty());
    assert_eq!(pool.rate_limit_per_ip, 200);
    assert!(pool.code_webhook.is_none());
    let confidential = &pool.clients["confidential"];
    assert!(!confidential.public);
    assert_eq!(confidential.grants, ["client_credentials"]);
    assert!(confidential.callback_urls.is_empty() && confidential.logout_urls.is_empty());
    assert!(confidential.allowed_scopes.is_empty());
    assert_eq!(
        pool.clients["spa"].grants,
        ["authorization_code", "refresh_token", "password"]
    );
}

#[test]
fn explicit_values_override_defaults() {
    let source = with_server(
        r#"public_url = "https://gw.example.com:8443/"
tls = { cert = "cert.pem", key = "key.pem" }
shutdown_grace = "50ms"
max_connections = "${MAX_CONN}"
admin_max_connections = 20
max_connections_per_ip = 3
header_read_timeout = "2s"
body_read_timeout = "500ms"

[management]
account_id = "123456789012"
region = "eu-west-1"

[websocket.chat]
path = "/ws"
api_id = "abc123"
binary_frames = "base64"
ping_interval = "0s"
send_queue = 1
max_frame_bytes = 10
max_message_bytes = 10
max_topics_per_connection = 5
max_subscribers_per_topic = 7

[store]
url = "postgres://app:${PG_PASSWORD}@db/gw"
"#,
    );
    let config = load(&source).unwrap();
    assert_eq!(config.server.public_url, "https://gw.example.com:8443");
    assert_eq!(config.server.domain_name, "gw.example.com:8443");
    assert_eq!(config.server.tls.as_ref().unwrap().cert, "cert.pem");
    assert_eq!(config.server.shutdown_grace, Duration::from_millis(50));
    assert_eq!(config.server.max_connections, 250);
    assert_eq!(config.server.admin_max_connections, 20);
    assert_eq!(config.server.max_connections_per_ip, 3);
    assert_eq!(config.server.header_read_timeout, Duration::from_secs(2));
    assert_eq!(config.server.body_read_timeout, Duration::from_millis(500));
    assert_eq!(config.management.account_id, "123456789012");
    assert_eq!(config.management.region, "eu-west-1");
    let ws = &config.websocket["chat"];
    assert_eq!((ws.path.as_str(), ws.api_id.as_str()), ("/ws", "abc123"));
    assert_eq!(ws.binary_frames, BinaryFrames::Base64);
    assert_eq!(ws.ping_interval, Duration::ZERO);
    assert_eq!(ws.send_queue, 1);
    assert_eq!(
        (ws.max_topics_per_connection, ws.max_subscribers_per_topic),
        (5, 7)
    );
    assert_eq!(config.store.url, "postgres://app:pg-s3cret-value@db/gw");
}

#[test]
fn http_routes_inherit_the_api_authorizer_unless_they_opt_out() {
    let source = with_server(
        r#"
[http.api]
authorizer = "jwt"
[http.api.routes]
"GET /private" = { integration = "b", scopes = ["x/read"] }
"GET /other" = { integration = "b", authorizer = "hook" }
"GET /health" = { integration = "b", authorizer = "none" }
"POST /items/{id}" = { integration = "b", throttle = { rate = 2.5, burst = 5 } }

[integrations.b]
type = "http_proxy"
url = "http://127.0.0.1:9000"

[authorizers.jwt]
type = "jwt"
identity_source = ["$request.header.Authorization"]
issuers = [{ issuer = "https://issuer.example" }]
token_use = "access"
principal_claim = "userId"

[authorizers.hook]
type = "request"
url = "http://127.0.0.1:9100"
"#,
    );
    let config = load(&source).unwrap();
    match &config.authorizers["jwt"] {
        Authorizer::Jwt(jwt) => assert_eq!(jwt.principal_claim.as_deref(), Some("userId")),
        other => panic!("{other:?}"),
    }
    let routes = &config.http["api"].routes;
    assert_eq!(routes["GET /private"].authorizer.as_deref(), Some("jwt"));
    assert_eq!(routes["GET /other"].authorizer.as_deref(), Some("hook"));
    assert_eq!(routes["GET /health"].authorizer, None);
    let throttle = routes["POST /items/{id}"].throttle.unwrap();
    assert!((throttle.rate_per_second - 2.5).abs() < f64::EPSILON);
    assert_eq!(throttle.burst, 5);
}

// ---- diagnostics ------------------------------------------------------------------------

#[test]
fn display_names_file_line_column_path_and_message() {
    let d = Diagnostic {
        file: "gw.toml".to_owned(),
        line: 3,
        column: 7,
        path: "server.listen".to_owned(),
        message: "bad".to_owned(),
    };
    assert_eq!(d.to_string(), "gw.toml:3:7: server.listen: bad");
    let both = Diagnostics(vec![
        d.clone(),
        Diagnostic {
            path: String::new(),
            ..d
        },
    ]);
    assert_eq!(
        both.to_string(),
        "gw.toml:3:7: server.listen: bad\ngw.toml:3:7: bad"
    );
}

#[test]
fn toml_syntax_error_has_a_position() {
    let messages = errors("[server]\nlisten = \"127.0.0.1:8080\nadmin_listen = 1\n");
    assert_eq!(messages.len(), 1, "{messages:?}");
    assert!(messages[0].starts_with("test.toml:2:"), "{}", messages[0]);
    assert!(messages[0].contains("invalid TOML"), "{}", messages[0]);
}

#[test]
fn missing_server_section() {
    assert_error(
        "",
        "test.toml:1:1: server: missing required table [server] (listen and admin_listen are required)",
    );
}

#[test]
fn missing_required_keys_are_reported_at_their_table() {
    let messages = errors("\n[server]\nshutdown_grace = \"1s\"\n");
    assert_eq!(
        messages,
        [
            "test.toml:2:1: server.listen: missing required key",
            "test.toml:2:1: server.admin_listen: missing required key",
        ]
    );
}

#[test]
fn unknown_key_at_the_top_level() {
    assert_error(
        &with_server("[servers]\nx = 1\n"),
        "test.toml:4:2: servers: unknown key \"servers\"; did you mean \"server\"?",
    );
}

#[test]
fn unknown_key_in_a_section() {
    assert_error(
        &with_server("listen_addr = \"x\"\n"),
        "test.toml:4:1: server.listen_addr: unknown key \"listen_addr\"; expected one of: listen, admin_listen, public_url, tls, admin_tls, ca_file, shutdown_grace, max_connections, admin_max_connections, max_connections_per_ip, connect_rate_per_ip, trusted_proxies, header_read_timeout, body_read_timeout, upstream_idle_timeout, upstream_max_idle_per_host, workers",
    );
}

#[test]
fn unknown_key_in_an_inline_route_table() {
    let source = with_server(
        r#"[websocket.chat.routes]
sendmessage = { integration = "b", respons = true }
[integrations.b]
type = "http"
url = "http://127.0.0.1:9000"
"#,
    );
    assert_error(
        &source,
        "test.toml:5:36: websocket.chat.routes.sendmessage.respons: unknown key \"respons\"; did you mean \"response\"?",
    );
}

#[test]
fn unknown_key_deep_in_a_pool_client_and_in_an_array_of_tables() {
    let source = with_server(
        r#"[pools.main.clients.web]
public = true
redirect_uris = ["http://localhost/"]

[authorizers.a]
type = "jwt"
identity_source = ["$request.header.Authorization"]
issuers = [{ issuer = "https://i.example", audiences = ["x"] }]
"#,
    );
    let messages = errors(&source);
    assert_eq!(messages.len(), 2, "{messages:#?}");
    assert!(messages[0].starts_with(
        "test.toml:6:1: pools.main.clients.web.redirect_uris: unknown key \"redirect_uris\"; expected one of: public, secret"
    ), "{}", messages[0]);
    assert_eq!(
        messages[1],
        "test.toml:11:44: authorizers.a.issuers[0].audiences: unknown key \"audiences\"; did you mean \"audience\"?"
    );
}

#[test]
fn wrong_types() {
    let source = with_server(
        r#"max_connections = "many"
[websocket.chat]
max_frame_bytes = "32k"
message_policy = "yes"
allowed_origins = "http://localhost"
"#,
    );
    assert_eq!(
        errors(&source),
        [
            "test.toml:4:19: server.max_connections: expected an integer, found a string",
            "test.toml:6:19: websocket.chat.max_frame_bytes: expected an integer, found a string",
            "test.toml:7:18: websocket.chat.message_policy: expected a boolean, found a string",
            "test.toml:8:19: websocket.chat.allowed_origins: expected an array, found a string",
        ]
    );
    assert_error(
        "[server]\nlisten = 8080\nadmin_listen = \"127.0.0.1:9090\"\n",
        "test.toml:2:10: server.listen: expected a string, found an integer",
    );
    assert_error(
        "[server]\nlisten = \"localhost\"\nadmin_listen = \"127.0.0.1:9090\"\n",
        "test.toml:2:10: server.listen: expected a socket address like \"127.0.0.1:8080\", got \"localhost\"",
    );
    assert_error(
        &with_server("[websocket]\nchat = 1\n"),
        "test.toml:5:8: websocket.chat: expected a table, found an integer",
    );
}

#[test]
fn connection_limits_and_read_timeouts_are_bounded() {
    let source = with_server(
        r#"admin_max_connections = 0
max_connections_per_ip = 0
header_read_timeout = "0s"
body_read_timeout = "2h"
"#,
    );
    assert_eq!(
        errors(&source),
        [
            "test.toml:4:25: server.admin_max_connections: must be at least 1, got 0",
            "test.toml:5:26: server.max_connections_per_ip: must be at least 1, got 0",
            "test.toml:6:23: server.header_read_timeout: must be between 1ms and 10m, got 0s",
            "test.toml:7:21: server.body_read_timeout: must be between 1ms and 1h, got 2h",
        ]
    );
}

#[test]
fn workers_are_one_per_core_by_default_and_bounded() {
    let config = load(&with_server("")).expect("compiles");
    assert_eq!(config.server.workers, 0);
    let config = load(&with_server("workers = 3\n")).expect("compiles");
    assert_eq!(config.server.workers, 3);
    assert_eq!(
        errors(&with_server("workers = 1025\n")),
        ["test.toml:4:11: server.workers: must be between 0 and 1024, got 1025"]
    );
    assert_eq!(
        errors(&with_server("workers = -1\n")),
        ["test.toml:4:11: server.workers: must be between 0 and 1024, got -1"]
    );
}

#[test]
fn bad_durations() {
    let source = with_server(
        r#"shutdown_grace = 10
[websocket.chat]
idle_timeout = "10 minutes"
max_duration = "0s"
"#,
    );
    assert_eq!(
        errors(&source),
        [
            "test.toml:4:18: server.shutdown_grace: expected a duration string with a unit (ms, s, m, h, d), e.g. \"30s\"",
            "test.toml:6:16: websocket.chat.idle_timeout: invalid duration \"10 minutes\": expected a whole number followed by a unit (ms, s, m, h, d), e.g. \"30s\"",
            "test.toml:7:16: websocket.chat.max_duration: must be between 1ms and 3650d, got 0s",
        ]
    );
}

#[test]
fn bad_route_keys() {
    let source = with_server(
        r#"[websocket.chat.routes]
"$connected" = { integration = "b" }
[http.api.routes]
"GET items" = { integration = "b" }
"FETCH /x" = { integration = "b" }
"GET /{proxy+}/x" = { integration = "b" }
"GET /a/{id}" = { integration = "b" }
"GET /a/{other}" = { integration = "b" }
[integrations.b]
type = "http"
url = "http://127.0.0.1:9000"
"#,
    );
    let messages = errors(&source);
    assert_eq!(messages.len(), 5, "{messages:#?}");
    assert!(
        messages[0].starts_with(
            "test.toml:5:1: websocket.chat.routes.\"$connected\": unknown route key \"$connected\""
        ),
        "{}",
        messages[0]
    );
    assert!(messages[1].starts_with("test.toml:7:1: http.api.routes.\"GET items\": invalid route key \"GET items\": the path must start with \"/\""), "{}", messages[1]);
    assert!(messages[2].starts_with("test.toml:8:1: http.api.routes.\"FETCH /x\": invalid route key \"FETCH /x\": unknown method \"FETCH\""), "{}", messages[2]);
    assert!(
        messages[3].contains("greedy parameter {proxy+} must be the last segment"),
        "{}",
        messages[3]
    );
    assert_eq!(
        messages[4],
        "test.toml:11:1: http.api.routes.\"GET /a/{other}\": route key \"GET /a/{other}\" matches the same requests as \"GET /a/{id}\""
    );
}

#[test]
fn dangling_references() {
    let source = with_server(
        r#"[websocket.chat]
authorizer = "user"
[websocket.chat.routes]
sendmessage = { integration = "backnd" }
[http.api.routes]
"GET /x" = { integration = "backend", authorizer = "x" }
[integrations.backend]
type = "http"
url = "http://127.0.0.1:9000"
[authorizers.users]
type = "request"
url = "http://127.0.0.1:9100"
"#,
    );
    assert_eq!(
        errors(&source),
        [
            "test.toml:5:14: websocket.chat.authorizer: no authorizer named \"user\"",
            "test.toml:7:31: websocket.chat.routes.sendmessage.integration: no integration named \"backnd\"",
            "test.toml:9:52: http.api.routes.\"GET /x\".authorizer: no authorizer named \"x\"",
        ]
    );
}

#[test]
fn missing_environment_variable() {
    let source = with_server(
        r#"[management]
credentials = [
  { access_key_id = "AKID", secret_access_key = "${NOT_SET}" },
]
region = "${REGION:-eu-central-1}"
"#,
    );
    assert_error(
        &source,
        "test.toml:6:49: management.credentials[0].secret_access_key: environment variable NOT_SET is not set (write \"${NOT_SET:-default}\" to give a default)",
    );
    let config = load(&source.replace("${NOT_SET}", "x")).unwrap();
    assert_eq!(config.management.region, "eu-central-1");
}

#[test]
fn many_errors_are_reported_at_once_in_file_order() {
    let source = r#"[server]
listen = "127.0.0.1:8080"
admin_listen = "nope"
colour = "blue"

[websocket.chat]
idle_timeout = "ten"
[websocket.chat.routes]
"$default" = { integration = "backnd" }

[integrations.backend]
type = "grpc"
url = "${BACKEND_URL}"
"#;
    assert_eq!(
        errors(source),
        [
            "test.toml:3:16: server.admin_listen: expected a socket address like \"127.0.0.1:8080\", got \"nope\"",
            "test.toml:4:1: server.colour: unknown key \"colour\"; expected one of: listen, admin_listen, public_url, tls, admin_tls, ca_file, shutdown_grace, max_connections, admin_max_connections, max_connections_per_ip, connect_rate_per_ip, trusted_proxies, header_read_timeout, body_read_timeout, upstream_idle_timeout, upstream_max_idle_per_host, workers",
            "test.toml:7:16: websocket.chat.idle_timeout: invalid duration \"ten\": expected a whole number followed by a unit (ms, s, m, h, d), e.g. \"30s\"",
            "test.toml:9:30: websocket.chat.routes.\"$default\".integration: no integration named \"backnd\"",
            "test.toml:12:8: integrations.backend.type: expected \"http\", \"http_proxy\" or \"lambda\", got \"grpc\"",
            "test.toml:13:7: integrations.backend.url: environment variable BACKEND_URL is not set (write \"${BACKEND_URL:-default}\" to give a default)",
        ]
    );
}

#[test]
fn columns_count_characters_not_bytes() {
    assert_error(
        "# é\n[server]\nlisten = \"127.0.0.1:8080\"\nadmin_listen = \"127.0.0.1:9090\"\n\"ключ\" = 1\n",
        "test.toml:5:1: server.\"ключ\": unknown key \"ключ\"; expected one of: listen, admin_listen, public_url, tls, admin_tls, ca_file, shutdown_grace, max_connections, admin_max_connections, max_connections_per_ip, connect_rate_per_ip, trusted_proxies, header_read_timeout, body_read_timeout, upstream_idle_timeout, upstream_max_idle_per_host, workers",
    );
}

#[test]
fn websocket_validation() {
    let source = with_server(
        r#"[websocket.chat]
path = "chat"
max_frame_bytes = 200000
binary_frames = "text"
message_policy = true
send_queue = 0
[websocket.chat.routes]
"$connect" = { integration = "b", response = true }
"$default" = { response = true }
admin = { integration = "b", groups = ["admins"] }
[integrations.b]
type = "http"
url = "http://127.0.0.1:9000"
"#,
    );
    assert_eq!(
        errors(&source),
        [
            "test.toml:5:8: websocket.chat.path: invalid path \"chat\": must start with \"/\"",
            "test.toml:6:19: websocket.chat.max_frame_bytes: max_frame_bytes (200000) must not exceed max_message_bytes (131072)",
            "test.toml:7:17: websocket.chat.binary_frames: expected \"close\" or \"base64\", got \"text\"",
            "test.toml:8:18: websocket.chat.message_policy: needs the API to have an authorizer (with authorization = \"AWS_IAM\" the role's policy is always evaluated for every message)",
            "test.toml:9:14: websocket.chat.send_queue: must be at least 1, got 0",
            "test.toml:11:46: websocket.chat.routes.\"$connect\".response: response = true is only allowed on $default and custom routes",
            "test.toml:12:14: websocket.chat.routes.\"$default\".integration: missing required key",
            "test.toml:13:9: websocket.chat.routes.admin: scopes and groups need the API to have an authorizer",
        ]
    );
}

#[test]
fn http_validation() {
    let source = with_server(
        r#"[http.a]
base_path = "/api/"
cors = { allow_origins = ["*"], allow_credentials = true, allow_methods = ["FETCH"] }
[http.a.routes]
"GET /x" = { integration = "b", scopes = ["s"], throttle = { rate = 0 } }
"GET /y" = { authorizer = "none" }
[integrations.b]
type = "http"
url = "ws://127.0.0.1:9000"
timeout = "31s"
"#,
    );
    assert_eq!(
        errors(&source),
        [
            "test.toml:5:13: http.a.base_path: invalid base_path \"/api/\": must not end with \"/\"",
            "test.toml:6:53: http.a.cors.allow_credentials: allow_credentials = true cannot be combined with allow_origins = [\"*\"] (browsers reject it); list the origins",
            "test.toml:6:76: http.a.cors.allow_methods: unknown method \"FETCH\"; expected *, GET, POST, PUT, PATCH, DELETE, HEAD, OPTIONS",
            "test.toml:8:12: http.a.routes.\"GET /x\": scopes and groups need an authorizer (on the route or the API)",
            "test.toml:8:60: http.a.routes.\"GET /x\".throttle.burst: missing required key",
            "test.toml:8:69: http.a.routes.\"GET /x\".throttle.rate: must be a positive number of requests per second",
            "test.toml:9:12: http.a.routes.\"GET /y\".integration: missing required key",
            "test.toml:12:7: integrations.b.url: invalid URL \"ws://127.0.0.1:9000\": expected an http:// or https:// URL",
            "test.toml:13:11: integrations.b.timeout: must be between 50ms and 30s, got 31s",
        ]
    );
}

#[test]
fn authorizer_validation() {
    let source = with_server(
        r#"[authorizers.j]
type = "jwt"
identity_source = ["header.Authorization"]
issuers = []
token_use = "refresh"
[authorizers.r]
type = "request"
url = "http://127.0.0.1:9100"
cache_ttl = "2h"
csrf = { cookie = "c", query = "q", header = "h" }
[authorizers.x]
type = "lambda"
whatever = 1
"#,
    );
    let messages = errors(&source);
    assert_eq!(messages.len(), 6, "{messages:#?}");
    assert!(messages[0].starts_with("test.toml:6:20: authorizers.j.identity_source[0]: invalid identity source \"header.Authorization\""), "{}", messages[0]);
    assert_eq!(
        messages[1],
        "test.toml:7:11: authorizers.j.issuers: needs at least one issuer"
    );
    assert_eq!(
        messages[2],
        "test.toml:8:13: authorizers.j.token_use: expected \"access\" or \"id\", got \"refresh\""
    );
    assert_eq!(
        messages[3],
        "test.toml:12:13: authorizers.r.cache_ttl: must be between 0s and 1h, got 2h"
    );
    assert_eq!(
        messages[4],
        "test.toml:13:8: authorizers.r.csrf: set exactly one of query or header (where the token's copy is sent)"
    );
    assert_eq!(
        messages[5],
        "test.toml:15:8: authorizers.x.type: expected \"jwt\" or \"request\", got \"lambda\""
    );
}

#[test]
fn pool_validation() {
    let source = with_server(
        r#"[pools.main]
password_policy = { min_length = 5 }
access_token_ttl = "2d"
groups = ["a", "a"]
[pools.main.clients.spa]
public = true
secret = "oops"
grants = ["client_credentials", "implicit"]
[pools.main.clients.svc]
grants = ["client_credentials"]
[pools.other.clients.spa]
public = true
"#,
    );
    assert_eq!(
        errors(&source),
        [
            "test.toml:5:34: pools.main.password_policy.min_length: must be between 6 and 99, got 5",
            "test.toml:6:20: pools.main.access_token_ttl: must be between 5m and 1d, got 2d",
            "test.toml:7:16: pools.main.groups[1]: duplicate entry \"a\"",
            "test.toml:10:10: pools.main.clients.spa.secret: a public client has no secret; remove it or set public = false",
            "test.toml:11:11: pools.main.clients.spa.grants[0]: client_credentials needs a client secret; a public client cannot use it",
            "test.toml:11:33: pools.main.clients.spa.grants[1]: unknown grant \"implicit\"; expected one of authorization_code, client_credentials, refresh_token, password",
            "test.toml:12:1: pools.main.clients.svc.secret: missing required key (confidential clients need a secret; set public = true for a client without one)",
            "test.toml:14:22: pools.other.clients.spa: client id \"spa\" is already used in pool \"main\" (client ids are unique across pools)",
        ]
    );
}

#[test]
fn client_display_names() {
    let named = with_server(
        "[pools.main.clients.web]\npublic = true\nname = \"Portcullis chat\"\n\
         [pools.main.clients.cli]\npublic = true\n",
    );
    let config = load(&named).expect("valid");
    let clients = &config.pools["main"].clients;
    assert_eq!(clients["web"].name.as_deref(), Some("Portcullis chat"));
    assert_eq!(clients["cli"].name, None);
    let long = "x".repeat(129);
    let source = with_server(&format!(
        "[pools.main.clients.a]\npublic = true\nname = \"\"\n\
         [pools.main.clients.b]\npublic = true\nname = \"{long}\"\n\
         [pools.main.clients.c]\npublic = true\nname = \"tab\\there\"\n"
    ));
    assert_eq!(
        errors(&source),
        [
            "test.toml:6:8: pools.main.clients.a.name: must be 1-128 characters without control characters",
            "test.toml:9:8: pools.main.clients.b.name: must be 1-128 characters without control characters",
            "test.toml:12:8: pools.main.clients.c.name: must be 1-128 characters without control characters",
        ]
    );
}

#[test]
fn pool_rate_limit_and_code_webhook() {
    let source = with_server(
        r#"[pools.main]
rate_limit_per_ip = 0
code_webhook = "https://codes:${PG_PASSWORD}@mailer.example/codes"
code_webhook_secret = "${REPORTING_CLIENT_SECRET}"
code_webhook_timeout = "2s"
[pools.other]
rate_limit_per_ip = 1000
code_webhook = "http://127.0.0.1:9300/codes"
"#,
    );
    let config = load(&source).unwrap();
    let main = &config.pools["main"];
    assert_eq!(main.rate_limit_per_ip, 0);
    let hook = main.code_webhook.as_ref().unwrap();
    assert_eq!(
        hook.url,
        "https://codes:pg-s3cret-value@mailer.example/codes"
    );
    assert_eq!(hook.secret.as_ref().unwrap().expose(), REPORTING_SECRET);
    assert_eq!(hook.timeout, Duration::from_secs(2));
    let other = &config.pools["other"];
    assert_eq!(other.rate_limit_per_ip, 1000);
    let hook = other.code_webhook.as_ref().unwrap();
    assert!(hook.secret.is_none());
    assert_eq!(hook.timeout, Duration::from_secs(5));

    let rendered = render_redacted(&config);
    for line in [
        "rate_limit_per_ip = 0",
        "code_webhook = \"https://codes:<redacted>@mailer.example/codes\"",
        "code_webhook_secret = \"<redacted>\"",
        "code_webhook_timeout = \"2s\"",
        "rate_limit_per_ip = 1000",
        "code_webhook = \"http://127.0.0.1:9300/codes\"",
        "code_webhook_timeout = \"5s\"",
    ] {
        assert!(
            rendered.lines().any(|l| l == line),
            "missing line {line:?} in:\n{rendered}"
        );
    }
    assert!(!rendered.contains(REPORTING_SECRET) && !rendered.contains("pg-s3cret-value"));
    let reloaded = load_str(&rendered, "rendered.toml", &|_| None)
        .unwrap_or_else(|e| panic!("{e}\n{rendered}"));
    assert_eq!(render_redacted(&reloaded), rendered);
}

#[test]
fn pool_rate_limit_and_code_webhook_validation() {
    let source = with_server(
        r#"[pools.a]
rate_limit_per_ip = -1
code_webhook = "ftp://mailer.example/codes"
code_webhook_timeout = "1m"
[pools.b]
rate_limit_per_ip = "fast"
code_webhook_secret = "s"
code_webhook_timeout = "5s"
[pools.c]
code_webhook = ""
code_webhok_secret = "s"
"#,
    );
    assert_eq!(
        errors(&source),
        [
            "test.toml:5:21: pools.a.rate_limit_per_ip: must be between 0 and 1000000, got -1",
            "test.toml:6:16: pools.a.code_webhook: invalid URL \"ftp://mailer.example/codes\": expected an http:// or https:// URL",
            "test.toml:7:24: pools.a.code_webhook_timeout: must be between 50ms and 30s, got 1m",
            "test.toml:9:21: pools.b.rate_limit_per_ip: expected an integer, found a string",
            "test.toml:10:23: pools.b.code_webhook_secret: only allowed together with code_webhook",
            "test.toml:11:24: pools.b.code_webhook_timeout: only allowed together with code_webhook",
            "test.toml:13:16: pools.c.code_webhook: must not be empty",
            "test.toml:14:1: pools.c.code_webhok_secret: unknown key \"code_webhok_secret\"; did you mean \"code_webhook_secret\"?",
        ]
    );
}

#[test]
fn paths_and_api_ids_are_unique_across_apis() {
    let source = with_server(
        r#"[websocket.a]
path = "/same"
[websocket.b]
path = "/same"
api_id = "shared"
[http.c]
base_path = "/same"
api_id = "shared"
[http.d]
[http.e]
"#,
    );
    assert_eq!(
        errors(&source),
        [
            "test.toml:7:8: websocket.b.path: path \"/same\" is already used by websocket API \"a\"",
            "test.toml:10:13: http.c.base_path: base_path \"/same\" is already used by websocket API \"a\"",
            "test.toml:11:10: http.c.api_id: api_id \"shared\" is already used by websocket API \"b\"",
            "test.toml:13:1: http.e.base_path: base_path \"\" is already used by http API \"d\"",
        ]
    );
}

#[test]
fn management_and_store_validation() {
    let source = with_server(
        r#"[management]
credentials = [{ access_key_id = "A", secret_access_key = "s" }, { access_key_id = "A" }]
account_id = "123"
[store]
url = "mysql://app:hunter2@db/gw"
"#,
    );
    let messages = errors(&source);
    assert_eq!(
        messages,
        [
            "test.toml:5:66: management.credentials[1].secret_access_key: missing required key",
            "test.toml:5:84: management.credentials[1].access_key_id: duplicate access key id \"A\"",
            "test.toml:6:14: management.account_id: expected 12 digits, got \"123\"",
            "test.toml:8:7: store.url: unsupported store URL \"mysql://app:<redacted>@db/gw\": expected \"sqlite://FILE\", \"sqlite::memory:\" or \"postgres://...\"",
        ]
    );
    assert!(!messages.concat().contains("hunter2"));
}

#[test]
fn store_key_encryption_key_from_the_environment_or_a_file() {
    let kek = "0123456789abcdef0123456789abcdef-kek".to_owned();
    let env = |name: &str| (name == "PORTCULLIS_KEK").then(|| kek.clone());
    let source = with_server("[store]\nkey_encryption_key = \"${PORTCULLIS_KEK}\"\n");
    let config = load_str(&source, "test.toml", &env).unwrap();
    assert_eq!(
        config.store.key_encryption_key,
        Some(KeyEncryptionKey::Value(Secret::new(kek.clone())))
    );
    let rendered = render_redacted(&config);
    assert!(!format!("{config:?}{rendered}").contains(&kek));
    assert!(
        rendered.contains("key_encryption_key = \"<redacted>\""),
        "{rendered}"
    );

    let config = load(&with_server(
        "[store]\nkey_encryption_key_file = \"/run/secrets/kek\"\n",
    ))
    .unwrap();
    assert_eq!(
        config.store.key_encryption_key,
        Some(KeyEncryptionKey::File("/run/secrets/kek".into()))
    );
    assert!(render_redacted(&config).contains("key_encryption_key_file = \"/run/secrets/kek\""));
    assert_eq!(load(SERVER).unwrap().store.key_encryption_key, None);

    assert_error(
        &with_server("[store]\nkey_encryption_key = \"too-short-to-be-a-key\"\n"),
        "test.toml:5:22: store.key_encryption_key: must be at least 32 bytes, got 21 \
         (generate one with `openssl rand -base64 32`)",
    );
    assert_error(
        &with_server(&format!(
            "[store]\nkey_encryption_key = \"{kek}\"\nkey_encryption_key_file = \"kek\"\n"
        )),
        "test.toml:6:27: store.key_encryption_key_file: set either key_encryption_key or \
         key_encryption_key_file, not both",
    );
}

#[test]
fn load_file_resolves_the_key_encryption_key_file_against_the_file() {
    let dir = std::env::temp_dir().join(format!("portcullis-config-kek-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("gateway.toml");
    std::fs::write(
        &path,
        with_server("[store]\nkey_encryption_key_file = \"secrets/kek\"\n"),
    )
    .unwrap();
    let config = crate::load_file(&path).unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(
        config.store.key_encryption_key,
        Some(KeyEncryptionKey::File(dir.join("secrets/kek")))
    );
}

// ---- secrets and rendering --------------------------------------------------------------

#[test]
fn secrets_never_appear_in_debug_or_rendered_output() {
    let source = CONTRACT_EXAMPLE.replace(
        "url = \"sqlite://portcullis.db\"",
        "url = \"postgres://app:${PG_PASSWORD}@db/gw?password=${PG_PASSWORD}\"",
    );
    let config = load(&source).unwrap();
    let debug = format!("{config:?} {config:#?}");
    let rendered = render_redacted(&config);
    for secret in [ADMIN_SECRET, REPORTING_SECRET, "pg-s3cret-value"] {
        assert!(!debug.contains(secret), "{secret} leaked into Debug output");
        assert!(
            !rendered.contains(secret),
            "{secret} leaked into render_redacted:\n{rendered}"
        );
    }
    assert!(debug.contains("<redacted>"));
    assert!(
        rendered.contains("secret_access_key = \"<redacted>\""),
        "{rendered}"
    );
    assert!(rendered.contains("secret = \"<redacted>\""), "{rendered}");
    assert!(
        rendered.contains("postgres://app:<redacted>@db/gw?password=<redacted>"),
        "{rendered}"
    );
}

#[test]
fn rendered_config_loads_back_to_the_same_config() {
    let config = load(CONTRACT_EXAMPLE).unwrap();
    let rendered = render_redacted(&config);
    let reloaded = load_str(&rendered, "rendered.toml", &|_| None)
        .unwrap_or_else(|e| panic!("{e}\n{rendered}"));
    assert_eq!(render_redacted(&reloaded), rendered);
    assert_eq!(
        reloaded.websocket["chat"].api_id,
        config.websocket["chat"].api_id
    );
    assert_eq!(reloaded.http["content"].routes.len(), 3);
    assert_eq!(
        reloaded.management.credentials[0]
            .secret_access_key
            .expose(),
        "<redacted>"
    );
}

#[test]
fn rendered_config_shows_effective_values() {
    let config = load(CONTRACT_EXAMPLE).unwrap();
    let rendered = render_redacted(&config);
    for line in [
        "[server]",
        "shutdown_grace = \"10s\"",
        "max_connections = 100000",
        "admin_max_connections = 1000",
        "max_connections_per_ip = 256",
        "header_read_timeout = \"10s\"",
        "body_read_timeout = \"10s\"",
        "upstream_idle_timeout = \"30s\"",
        "upstream_max_idle_per_host = 64",
        "workers = 0",
        "[websocket.chat]",
        "idle_timeout = \"10m\"",
        "ping_interval = \"30s\"",
        "[websocket.chat.routes]",
        "\"$default\" = { integration = \"chat_backend\", response = true, scopes = [], groups = [] }",
        "[http.content.routes]",
        "[integrations.chat_backend]",
        "timeout = \"29s\"",
        "[authorizers.legacy]",
        "csrf = { cookie = \"CSRF-TOKEN\", query = \"csrf\" }",
        "[pools.main.resource_servers.premium-content]",
        "[pools.main.clients.reporting-service]",
        "refresh_token_ttl = \"30d\"",
    ] {
        assert!(
            rendered.lines().any(|l| l == line),
            "missing line {line:?} in:\n{rendered}"
        );
    }
    assert!(!rendered.lines().any(|l| l == "[websocket]"), "{rendered}");
}

#[test]
fn minimal_config_renders_only_what_exists_and_reloads() {
    let config = load(SERVER).unwrap();
    let rendered = render_redacted(&config);
    assert!(
        !rendered.contains("websocket") && !rendered.contains("pools"),
        "{rendered}"
    );
    assert!(rendered.contains("credentials = []"), "{rendered}");
    let reloaded = load_str(&rendered, "rendered.toml", &|_| None).unwrap();
    assert_eq!(render_redacted(&reloaded), rendered);
}

#[test]
fn long_forms_of_tables_and_arrays_of_tables_are_accepted() {
    let source = with_server(
        r#"[[management.credentials]]
access_key_id = "A"
secret_access_key = "s"

[[management.credentials]]
access_key_id = "B"
secret_access_key = "t"

[websocket.chat.routes."$default"]
integration = "b"
response = true

[integrations.b]
type = "http"
url = "http://127.0.0.1:9000"

[authorizers.j]
type = "jwt"
identity_source = ["$request.header.Authorization"]
[[authorizers.j.issuers]]
issuer = "https://issuer.example"
bogus = 1
"#,
    );
    assert_error(
        &source,
        "test.toml:25:1: authorizers.j.issuers[0].bogus: unknown key \"bogus\"; expected one of: issuer, audience, jwks_uri, secret, secret_file, algorithms",
    );
    let config = load(&source.replace("bogus = 1\n", "")).unwrap();
    let ids: Vec<&str> = config
        .management
        .credentials
        .iter()
        .map(|c| c.access_key_id.as_str())
        .collect();
    assert_eq!(ids, ["A", "B"]);
    assert!(config.websocket["chat"].routes["$default"].response);
}

#[test]
fn url_passwords_are_not_echoed_in_diagnostics() {
    let source =
        with_server("[integrations.b]\ntype = \"http\"\nurl = \"ftp://user:hunter2@host/x\"\n");
    assert_error(
        &source,
        "test.toml:6:7: integrations.b.url: invalid URL \"ftp://user:<redacted>@host/x\": expected an http:// or https:// URL",
    );
}

#[test]
fn bad_selection_expressions_are_reported_by_check() {
    let src = "[server]\nlisten = \"127.0.0.1:8080\"\nadmin_listen = \"127.0.0.1:9090\"\n\n[websocket.chat]\nroute_selection_expression = \"$context.routeKey\"\n";
    let err = crate::load_str(src, "sel.toml", &|_| None).expect_err("must fail");
    let text = err.to_string();
    assert!(
        text.contains("sel.toml:6:30: websocket.chat.route_selection_expression"),
        "{text}"
    );
}

#[test]
fn static_sites_default_and_validate() {
    let config = load(&with_server(
        "[static.demo]\ndir = \"web/chat\"\n\n[static.root]\npath = \"/\"\ndir = \"/srv/www\"\nindex = \"home.html\"\n",
    ))
    .expect("valid");
    let demo = &config.static_sites["demo"];
    assert_eq!(demo.path, "/demo");
    assert_eq!(demo.dir, std::path::PathBuf::from("web/chat"));
    assert_eq!(demo.index, "index.html");
    let root = &config.static_sites["root"];
    assert_eq!(
        (root.path.as_str(), root.index.as_str()),
        ("/", "home.html")
    );

    assert_error_mentions(
        &with_server("[static.demo]\npath = \"/demo\"\n"),
        "static.demo.dir: missing required key",
    );
    assert_error_mentions(
        &with_server("[static.demo]\ndir = \"x\"\npath = \"/a/../b\"\n"),
        "static.demo.path: invalid path",
    );
    assert_error_mentions(
        &with_server("[static.demo]\ndir = \"x\"\npath = \"/pools/x\"\n"),
        "static.demo.path: /pools is reserved",
    );
    assert_error_mentions(
        &with_server("[static.demo]\ndir = \"x\"\nindex = \"../index.html\"\n"),
        "static.demo.index: expected a file name",
    );
    assert_error_mentions(
        &with_server(
            "[static.demo]\ndir = \"x\"\npath = \"/chat\"\n\n[websocket.chat]\n[websocket.chat.routes]\n\"$default\" = { integration = \"b\" }\n[integrations.b]\ntype = \"http\"\nurl = \"http://127.0.0.1:9000\"\n",
        ),
        "static.demo.path: path \"/chat\" is already used by websocket API \"chat\"",
    );
    assert_error_mentions(
        &with_server("[static.demo]\ndir = \"x\"\nspa = true\n"),
        "static.demo.spa: unknown key",
    );
}

#[test]
fn load_file_resolves_static_dirs_against_the_file() {
    let dir = std::env::temp_dir().join(format!("portcullis-config-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("mkdir");
    let path = dir.join("gateway.toml");
    std::fs::write(&path, with_server("[static.demo]\ndir = \"../web\"\n")).expect("write");
    let config = crate::load_file(&path).expect("valid");
    assert_eq!(config.static_sites["demo"].dir, dir.join("../web"));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn jwt_authorizers_take_a_csrf_check() {
    let config = load(&with_server(
        "[authorizers.users]\ntype = \"jwt\"\nidentity_source = [\"route.request.cookie.portcullis_access\"]\nissuers = [{ issuer = \"https://issuer.example\" }]\ncsrf = { cookie = \"portcullis_csrf\", query = \"csrf\" }\n",
    ))
    .expect("valid");
    let crate::Authorizer::Jwt(jwt) = &config.authorizers["users"] else {
        panic!("jwt authorizer expected");
    };
    let csrf = jwt.csrf.as_ref().expect("csrf");
    assert_eq!(
        (csrf.cookie.as_str(), csrf.query.as_deref()),
        ("portcullis_csrf", Some("csrf"))
    );
    assert!(
        crate::render_redacted(&config)
            .contains("csrf = { cookie = \"portcullis_csrf\", query = \"csrf\" }")
    );
    assert_error_mentions(
        &with_server(
            "[authorizers.users]\ntype = \"jwt\"\nidentity_source = [\"route.request.cookie.a\"]\nissuers = [{ issuer = \"https://issuer.example\" }]\ncsrf = { cookie = \"c\" }\n",
        ),
        "authorizers.users.csrf: set exactly one of query or header",
    );
}

/// Asserts that exactly one diagnostic is reported and it contains `expected`.
#[track_caller]
fn assert_error_mentions(source: &str, expected: &str) {
    let errors = errors(source);
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(
        errors[0].contains(expected),
        "{:?} does not mention {expected:?}",
        errors[0]
    );
}

#[test]
fn refresh_token_rotation_defaults_on_for_clients_without_a_secret() {
    let source = with_server(
        r#"
[pools.p.clients.spa]
public = true

[pools.p.clients.spa-kept]
public = true
refresh_token_rotation = false

[pools.p.clients.confidential]
secret = "s"
grants = ["refresh_token", "password"]

[pools.p.clients.confidential-rotating]
secret = "s"
grants = ["refresh_token", "password"]
refresh_token_rotation = true
"#,
    );
    let config = load(&source).unwrap();
    let rotation = |c: &str| config.pools["p"].clients[c].refresh_token_rotation;
    assert!(rotation("spa"));
    assert!(!rotation("spa-kept"));
    assert!(!rotation("confidential"));
    assert!(rotation("confidential-rotating"));
    let wrong = errors(&with_server(
        "[pools.p.clients.c]\npublic = true\nrefresh_token_rotation = \"yes\"\n",
    ));
    assert_eq!(wrong.len(), 1);
    assert!(
        wrong[0].contains(": pools.p.clients.c.refresh_token_rotation: "),
        "{wrong:?}"
    );
}

// ---- least privilege and risky choices --------------------------------------------------

#[test]
fn credentials_may_call_connections_only_unless_they_name_admin() {
    let config = load(&with_server(
        r#"[management]
credentials = [
  { access_key_id = "BACKEND", secret_access_key = "s1" },
  { access_key_id = "OPS", secret_access_key = "s2", scopes = ["admin"] },
  { access_key_id = "BOTH", secret_access_key = "s3", scopes = ["connections", "admin", "admin"] },
]
"#,
    ))
    .unwrap();
    let scopes: Vec<(&str, &[CredentialScope])> = config
        .management
        .credentials
        .iter()
        .map(|c| (c.access_key_id.as_str(), c.scopes.as_slice()))
        .collect();
    assert_eq!(
        scopes,
        [
            ("BACKEND", &[CredentialScope::Connections][..]),
            ("OPS", &[CredentialScope::Admin][..]),
            (
                "BOTH",
                &[CredentialScope::Connections, CredentialScope::Admin][..]
            ),
        ]
    );
    let backend = &config.management.credentials[0];
    assert!(backend.allows(CredentialScope::Connections));
    assert!(!backend.allows(CredentialScope::Admin));
    let rendered = render_redacted(&config);
    assert!(
        rendered.contains(
            "{ access_key_id = \"BACKEND\", secret_access_key = \"<redacted>\", scopes = [\"connections\"] }"
        ),
        "{rendered}"
    );
    let reloaded = load_str(&rendered, "rendered.toml", &|_| None).unwrap();
    assert_eq!(render_redacted(&reloaded), rendered);

    assert_eq!(
        errors(&with_server(
            "[management]\ncredentials = [{ access_key_id = \"A\", secret_access_key = \"s\", scopes = [] }, { access_key_id = \"B\", secret_access_key = \"s\", scopes = [\"connections\", \"root\"] }]\n"
        )),
        [
            "test.toml:5:73: management.credentials[0].scopes: needs at least one scope: \"connections\" or \"admin\"",
            "test.toml:5:152: management.credentials[1].scopes[1]: expected \"connections\" or \"admin\", got \"root\"",
        ]
    );
}

#[test]
fn secrets_from_a_default_are_warned_about_by_key_and_variable_never_by_value() {
    let source = with_server(
        r#"[management]
credentials = [{ access_key_id = "A", secret_access_key = "${GW_SECRET:-default-s3cret}" }]
[pools.main.clients.svc]
secret = "${PORTCULLIS_ADMIN_SECRET:-other-default}"
grants = ["client_credentials"]
"#,
    );
    let config = load(&source).unwrap();
    let warnings: Vec<String> = config.warnings.iter().map(ToString::to_string).collect();
    assert_eq!(
        warnings,
        [
            "test.toml:5:59: management.credentials[0].secret_access_key: secret taken from the default written in the file because GW_SECRET is unset or empty: set GW_SECRET to a secret of your own"
        ]
    );
    assert!(!warnings.concat().contains("default-s3cret"));
    // Set in the environment: no warning.
    let set = load_str(&source, "test.toml", &|name| match name {
        "GW_SECRET" => Some("from-env".to_owned()),
        other => env(other),
    })
    .unwrap();
    assert!(set.warnings.is_empty(), "{:?}", set.warnings);
    // The contract example takes its secrets from the environment: its one warning is about
    // an authorizer, not a secret.
    let contract: Vec<String> = load(CONTRACT_EXAMPLE)
        .unwrap()
        .warnings
        .iter()
        .map(|w| w.path.clone())
        .collect();
    assert_eq!(contract, ["authorizers.users.token_use"]);
}

#[test]
fn token_use_defaults_to_access_for_built_in_pools_and_is_warned_about_for_other_issuers() {
    let source = with_server(
        r#"[authorizers.pool]
type = "jwt"
identity_source = ["$request.header.Authorization"]
issuers = [{ issuer = "http://127.0.0.1:8080/pools/main" }]

[authorizers.external]
type = "jwt"
identity_source = ["$request.header.Authorization"]
issuers = [{ issuer = "http://127.0.0.1:8080/pools/main" }, { issuer = "https://issuer.example" }]

[authorizers.chosen]
type = "jwt"
identity_source = ["$request.header.Authorization"]
issuers = [{ issuer = "https://issuer.example" }]
token_use = "id"

[pools.main]
"#,
    );
    let config = load(&source).unwrap();
    let token_use = |name: &str| match &config.authorizers[name] {
        Authorizer::Jwt(jwt) => jwt.token_use.clone(),
        Authorizer::Request(_) => panic!("jwt authorizer expected"),
    };
    assert_eq!(token_use("pool").as_deref(), Some("access"));
    assert_eq!(token_use("external"), None);
    assert_eq!(token_use("chosen").as_deref(), Some("id"));
    let warnings: Vec<String> = config.warnings.iter().map(ToString::to_string).collect();
    assert_eq!(
        warnings,
        [
            "test.toml:9:14: authorizers.external.token_use: not set, so ID tokens are accepted as well as access tokens: set token_use = \"access\" (Cognito and the built-in pools) or \"id\""
        ]
    );
    assert!(render_redacted(&config).contains("token_use = \"access\""));
}

#[test]
fn pools_declare_custom_attributes_with_mutability_and_length() {
    let config = load(&with_server(
        "[pools.main.custom_attributes]\ntier = { mutable = false }\nteam = {}\n[pools.main.custom_attributes.bio]\nmax_length = 280\n",
    ))
    .unwrap();
    let attrs = &config.pools["main"].custom_attributes;
    assert_eq!(
        attrs.keys().collect::<Vec<_>>(),
        ["tier", "team", "bio"],
        "file order"
    );
    assert_eq!(
        attrs["tier"],
        CustomAttribute {
            mutable: false,
            max_length: 2048
        }
    );
    assert_eq!(
        attrs["team"],
        CustomAttribute {
            mutable: true,
            max_length: 2048
        }
    );
    assert_eq!(attrs["bio"].max_length, 280);
    let rendered = crate::render_redacted(&config);
    let reloaded = load_str(&rendered, "rendered.toml", &|_| None).unwrap();
    assert_eq!(reloaded.pools["main"].custom_attributes, *attrs);
    assert!(
        load(&with_server("[pools.main]\n")).unwrap().pools["main"]
            .custom_attributes
            .is_empty()
    );

    assert_error_mentions(
        &with_server("[pools.main.custom_attributes]\n\"custom:tier\" = {}\n"),
        "pools.main.custom_attributes.\"custom:tier\": custom attribute names are 1-20 letters, digits",
    );
    assert_error_mentions(
        &with_server("[pools.main.custom_attributes.bio]\nmax_length = 4096\n"),
        "pools.main.custom_attributes.bio.max_length: must be between 1 and 2048, got 4096",
    );
    assert_error_mentions(
        &with_server("[pools.main.custom_attributes.tier]\nmutable = \"no\"\n"),
        "pools.main.custom_attributes.tier.mutable: expected a boolean, found a string",
    );
    assert_error_mentions(
        &with_server("[pools.main.custom_attributes.tier]\nreadonly = true\n"),
        "pools.main.custom_attributes.tier.readonly: unknown key",
    );
    let many: String = (0..51).map(|i| format!("a{i} = {{}}\n")).collect();
    assert_error_mentions(
        &with_server(&format!("[pools.main.custom_attributes]\n{many}")),
        "pools.main.custom_attributes.a50: a pool declares at most 50 custom attributes",
    );
}

// ---- typed values handed over -----------------------------------------------------------

#[test]
fn values_are_handed_over_parsed() {
    let source = with_server(
        r#"[websocket.chat]
route_selection_expression = "${request.body.service}/${request.body.action}"
[websocket.chat.routes."$default"]
integration = "backend"
[http.api.routes."GET /items/{id}"]
integration = "backend"
[http.api.routes."ANY /{proxy+}"]
integration = "backend"
[http.api.routes."GET /items/new"]
integration = "backend"
[integrations.backend]
type = "http"
url = "http://127.0.0.1:9000"
[authorizers.j]
type = "jwt"
identity_source = ["$request.header.Authorization"]
issuers = [{ issuer = "https://issuer.example", jwks_uri = "https://issuer.example/keys" }]
"#,
    );
    let config = load(&source).unwrap();
    let selection = &config.websocket["chat"].route_selection_expression;
    assert_eq!(
        selection.evaluate(r#"{"service":"a","action":"b"}"#),
        Some("a/b".to_owned())
    );
    let url = config.integrations["backend"].target.url().unwrap();
    // The text as written (what `check` prints), the parsed form (what a client calls).
    assert_eq!(url.as_str(), "http://127.0.0.1:9000");
    assert_eq!(url.url().port(), Some(9000));
    let Authorizer::Jwt(j) = &config.authorizers["j"] else {
        panic!("jwt")
    };
    let jwks = j.issuers[0].jwks_uri.as_ref().unwrap();
    assert_eq!(jwks.url().path(), "/keys");

    let api = &config.http["api"];
    assert_eq!(api.route_table.len(), api.routes.len());
    let literal = api.route_table.find("GET", "/items/new").unwrap();
    assert_eq!(literal.route_key, "GET /items/new");
    let param = api.route_table.find("GET", "/items/7").unwrap();
    assert_eq!(param.route_key, "GET /items/{id}");
    assert_eq!(param.path_parameters, [("id".to_owned(), "7".to_owned())]);
    assert_eq!(
        api.route_table.find("DELETE", "/x/y").unwrap().route_key,
        "ANY /{proxy+}"
    );
}

#[test]
fn selection_expression_defaults_to_the_action() {
    let source = with_server("[websocket.chat.routes.\"$connect\"]\n");
    let config = load(&source).unwrap();
    let selection = &config.websocket["chat"].route_selection_expression;
    assert_eq!(selection.as_str(), "$request.body.action");
    assert_eq!(
        selection.evaluate(r#"{"action":"join"}"#),
        Some("join".to_owned())
    );
}

#[test]
fn management_defaults_are_the_named_constants() {
    let config = load(SERVER).unwrap();
    assert_eq!(config.management.region, defaults::REGION);
    assert_eq!(config.management.account_id, defaults::ACCOUNT_ID);
    let source = with_server("[management]\nregion = \"eu-west-1\"\n");
    let config = load(&source).unwrap();
    assert_eq!(config.management.account_id, defaults::ACCOUNT_ID);
}

#[test]
fn an_issuer_listed_twice_is_reported() {
    let source = with_server(
        r#"[authorizers.j]
type = "jwt"
identity_source = ["$request.header.Authorization"]
issuers = [
  { issuer = "https://issuer.example" },
  { issuer = "https://issuer.example" },
]
"#,
    );
    let messages = errors(&source);
    assert_eq!(messages.len(), 1, "{messages:#?}");
    assert!(
        messages[0].contains(
            "authorizers.j.issuers[1].issuer: issuer \"https://issuer.example\" is listed twice"
        ),
        "{}",
        messages[0]
    );
}

// ---- function targets: lambda integrations and request authorizers with `function` -------

const FUNCTION: &str =
    "[functions.chat]\nruntime = \"python3.11\"\nhandler = \"app.handler\"\ncode = \"fn\"\n";

#[test]
fn lambda_integrations_and_function_authorizers_name_their_function() {
    let source = with_server(&format!(
        "{FUNCTION}[integrations.chat]\ntype = \"lambda\"\nfunction = \"chat\"\ntimeout = \"5s\"\nmax_response_bytes = 65536\n\
         [authorizers.legacy]\ntype = \"request\"\nfunction = \"chat\"\n"
    ));
    let config = load(&source).unwrap();
    let chat = &config.integrations["chat"];
    assert_eq!(chat.kind, IntegrationKind::Lambda);
    assert_eq!(chat.target, Target::Function("chat".to_owned()));
    assert_eq!(chat.target.url(), None);
    assert_eq!(chat.timeout, Duration::from_secs(5));
    assert_eq!(chat.max_response_bytes, 64 * 1024);
    let Authorizer::Request(legacy) = &config.authorizers["legacy"] else {
        panic!("legacy is request")
    };
    assert_eq!(legacy.target.function(), Some("chat"));
    // `check` shows the function and the rendering loads again.
    let rendered = render_redacted(&config);
    assert!(
        rendered.contains("[integrations.chat]\ntype = \"lambda\"\nfunction = \"chat\""),
        "{rendered}"
    );
    assert!(
        rendered.contains("[authorizers.legacy]\ntype = \"request\"\nfunction = \"chat\""),
        "{rendered}"
    );
    let reloaded = load_str(&rendered, "rendered.toml", &|_| None)
        .unwrap_or_else(|e| panic!("{e}\n{rendered}"));
    assert_eq!(render_redacted(&reloaded), rendered);
}

#[test]
fn a_lambda_integration_defaults_to_29_seconds_and_one_mebibyte() {
    let source = with_server(&format!(
        "{FUNCTION}[integrations.chat]\ntype = \"lambda\"\nfunction = \"chat\"\n"
    ));
    let config = load(&source).unwrap();
    assert_eq!(config.integrations["chat"].timeout, Duration::from_secs(29));
    assert_eq!(config.integrations["chat"].max_response_bytes, 1_048_576);
}

#[test]
fn an_unknown_function_is_reported_where_it_is_named() {
    let source = with_server(&format!(
        "{FUNCTION}[integrations.chat]\ntype = \"lambda\"\nfunction = \"chta\"\n\
         [authorizers.legacy]\ntype = \"request\"\nfunction = \"auth\"\n"
    ));
    assert_eq!(
        errors(&source),
        vec![
            "test.toml:10:12: integrations.chat.function: no function named \"chta\"",
            "test.toml:13:12: authorizers.legacy.function: no function named \"auth\"",
        ]
    );
    assert_error(
        &with_server("[integrations.chat]\ntype = \"lambda\"\nfunction = \"chat\"\n"),
        "test.toml:6:12: integrations.chat.function: no function named \"chat\" (declare it in a [functions.chat] table)",
    );
}

#[test]
fn lambda_integrations_take_function_and_http_ones_url() {
    assert_error(
        &with_server(&format!(
            "{FUNCTION}[integrations.chat]\ntype = \"lambda\"\nfunction = \"chat\"\nurl = \"http://127.0.0.1:9000\"\n"
        )),
        "test.toml:11:7: integrations.chat.url: not allowed with type = \"lambda\" (it calls the `function`)",
    );
    assert_error(
        &with_server(&format!(
            "{FUNCTION}[integrations.chat]\ntype = \"lambda\"\n"
        )),
        "test.toml:8:1: integrations.chat.function: missing required key",
    );
    for kind in ["http", "http_proxy"] {
        assert_error(
            &with_server(&format!(
                "{FUNCTION}[integrations.b]\ntype = \"{kind}\"\nurl = \"http://127.0.0.1:9000\"\nfunction = \"chat\"\n"
            )),
            &format!(
                "test.toml:11:12: integrations.b.function: not allowed with type = \"{kind}\": use type = \"lambda\" to call a function"
            ),
        );
    }
}

#[test]
fn a_request_authorizer_needs_exactly_one_of_url_and_function() {
    assert_error(
        &with_server(&format!(
            "{FUNCTION}[authorizers.a]\ntype = \"request\"\nurl = \"http://127.0.0.1:9100\"\nfunction = \"chat\"\n"
        )),
        "test.toml:8:1: authorizers.a: set either url (a webhook) or function (a handler), not both",
    );
    assert_error(
        &with_server("[authorizers.a]\ntype = \"request\"\n"),
        "test.toml:4:1: authorizers.a: missing the authorizer to call: set url (a webhook) or function (a handler)",
    );
}
