//! The effective configuration back as TOML, secrets shown as `"<redacted>"` (and passwords
//! inside URLs too). Loading the output again gives the same configuration, with the
//! placeholder in place of each secret.

use std::time::Duration;

use toml_edit::{Array, DocumentMut, InlineTable, Item, Table, Value};

use crate::duration;
use crate::model::{Authorization, Authorizer, BinaryFrames, Config, HmacSecret, Secret, Target};
use crate::syntax::redact_url;

const REDACTED: &str = "<redacted>";

fn str(v: &str) -> Value {
    Value::from(v)
}

fn int(v: usize) -> Value {
    Value::from(i64::try_from(v).unwrap_or(i64::MAX))
}

fn dur(d: Duration) -> Value {
    Value::from(duration::format(d))
}

fn list(items: &[String]) -> Value {
    Value::Array(items.iter().map(String::as_str).collect::<Array>())
}

fn secret(_: &Secret) -> Value {
    Value::from(REDACTED)
}

/// A table whose header is omitted when it only holds sub-tables (`[websocket]`).
fn implicit() -> Table {
    let mut t = Table::new();
    t.set_implicit(true);
    t
}

fn inline(pairs: Vec<(&str, Value)>) -> Value {
    let mut t = InlineTable::new();
    for (k, v) in pairs {
        t.insert(k, v);
    }
    Value::InlineTable(t)
}

fn set(t: &mut Table, key: &str, v: Value) {
    t.insert(key, Item::Value(v));
}

pub(crate) fn render(config: &Config) -> String {
    let mut doc = DocumentMut::new();

    let s = &config.server;
    let mut server = Table::new();
    set(&mut server, "listen", str(&s.listen.to_string()));
    set(
        &mut server,
        "admin_listen",
        str(&s.admin_listen.to_string()),
    );
    set(&mut server, "public_url", str(&s.public_url));
    if let Some(tls) = &s.tls {
        set(
            &mut server,
            "tls",
            inline(vec![("cert", str(&tls.cert)), ("key", str(&tls.key))]),
        );
    }
    if let Some(tls) = &s.admin_tls {
        set(
            &mut server,
            "admin_tls",
            inline(vec![("cert", str(&tls.cert)), ("key", str(&tls.key))]),
        );
    }
    if let Some(ca_file) = &s.ca_file {
        set(&mut server, "ca_file", str(ca_file));
    }
    set(&mut server, "shutdown_grace", dur(s.shutdown_grace));
    set(&mut server, "max_connections", int(s.max_connections));
    set(
        &mut server,
        "admin_max_connections",
        int(s.admin_max_connections),
    );
    set(
        &mut server,
        "max_connections_per_ip",
        int(s.max_connections_per_ip),
    );
    set(
        &mut server,
        "connect_rate_per_ip",
        Value::from(i64::from(s.connect_rate_per_ip)),
    );
    let trusted: Vec<String> = s.trusted_proxies.iter().map(|b| b.to_string()).collect();
    set(&mut server, "trusted_proxies", list(&trusted));
    set(
        &mut server,
        "header_read_timeout",
        dur(s.header_read_timeout),
    );
    set(&mut server, "body_read_timeout", dur(s.body_read_timeout));
    set(
        &mut server,
        "upstream_idle_timeout",
        dur(s.upstream_idle_timeout),
    );
    set(
        &mut server,
        "upstream_max_idle_per_host",
        int(s.upstream_max_idle_per_host),
    );
    set(&mut server, "workers", int(s.workers));
    doc.insert("server", Item::Table(server));

    let m = &config.management;
    let mut management = Table::new();
    let credentials: Array = m
        .credentials
        .iter()
        .map(|c| {
            inline(vec![
                ("access_key_id", str(&c.access_key_id)),
                ("secret_access_key", secret(&c.secret_access_key)),
                (
                    "scopes",
                    Value::Array(c.scopes.iter().map(|s| s.as_str()).collect::<Array>()),
                ),
            ])
        })
        .collect();
    set(&mut management, "credentials", Value::Array(credentials));
    set(&mut management, "region", str(&m.region));
    set(&mut management, "account_id", str(&m.account_id));
    doc.insert("management", Item::Table(management));

    let mut websocket = implicit();
    for (name, api) in &config.websocket {
        let mut t = Table::new();
        set(&mut t, "path", str(&api.path));
        set(&mut t, "stage", str(&api.stage));
        set(&mut t, "api_id", str(&api.api_id));
        set(
            &mut t,
            "route_selection_expression",
            str(api.route_selection_expression.as_str()),
        );
        if let Some(a) = &api.authorizer {
            set(&mut t, "authorizer", str(a));
        }
        if api.authorization != Authorization::None {
            set(&mut t, "authorization", str(api.authorization.as_str()));
        }
        set(&mut t, "idle_timeout", dur(api.idle_timeout));
        set(&mut t, "max_duration", dur(api.max_duration));
        set(&mut t, "max_frame_bytes", int(api.max_frame_bytes));
        set(&mut t, "max_message_bytes", int(api.max_message_bytes));
        set(&mut t, "allowed_origins", list(&api.allowed_origins));
        set(&mut t, "subprotocols", list(&api.subprotocols));
        if let Some(sse) = &api.sse {
            let pairs = vec![
                ("path", str(&sse.path)),
                ("heartbeat", dur(sse.heartbeat)),
                ("replay", int(sse.replay)),
                ("replay_bytes", int(sse.replay_bytes)),
            ];
            set(&mut t, "sse", inline(pairs));
        }
        let binary = match api.binary_frames {
            BinaryFrames::Close => "close",
            BinaryFrames::Base64 => "base64",
        };
        set(&mut t, "binary_frames", str(binary));
        set(&mut t, "message_policy", Value::from(api.message_policy));
        set(&mut t, "send_queue", int(api.send_queue));
        set(&mut t, "max_inflight", int(api.max_inflight));
        set(
            &mut t,
            "message_rate",
            Value::from(i64::from(api.message_rate)),
        );
        set(
            &mut t,
            "max_topics_per_connection",
            int(api.max_topics_per_connection),
        );
        set(
            &mut t,
            "max_subscribers_per_topic",
            int(api.max_subscribers_per_topic),
        );
        set(&mut t, "ping_interval", dur(api.ping_interval));
        if !api.routes.is_empty() {
            let mut routes = Table::new();
            for (key, r) in &api.routes {
                let mut pairs = Vec::new();
                if let Some(i) = &r.integration {
                    pairs.push(("integration", str(i)));
                }
                pairs.push(("response", Value::from(r.response)));
                pairs.push(("scopes", list(&r.scopes)));
                pairs.push(("groups", list(&r.groups)));
                set(&mut routes, key, inline(pairs));
            }
            t.insert("routes", Item::Table(routes));
        }
        websocket.insert(name, Item::Table(t));
    }
    doc.insert("websocket", Item::Table(websocket));

    let mut http = implicit();
    for (name, api) in &config.http {
        let mut t = Table::new();
        set(&mut t, "base_path", str(&api.base_path));
        set(&mut t, "stage", str(&api.stage));
        set(&mut t, "api_id", str(&api.api_id));
        if let Some(a) = &api.authorizer {
            set(&mut t, "authorizer", str(a));
        }
        if api.authorization != Authorization::None {
            set(&mut t, "authorization", str(api.authorization.as_str()));
        }
        if let Some(c) = &api.cors {
            let mut pairs = vec![
                ("allow_origins", list(&c.allow_origins)),
                ("allow_methods", list(&c.allow_methods)),
                ("allow_headers", list(&c.allow_headers)),
                ("expose_headers", list(&c.expose_headers)),
                ("allow_credentials", Value::from(c.allow_credentials)),
            ];
            if let Some(max_age) = c.max_age {
                pairs.push(("max_age", dur(max_age)));
            }
            set(&mut t, "cors", inline(pairs));
        }
        set(&mut t, "max_body_bytes", int(api.max_body_bytes));
        if !api.routes.is_empty() {
            let mut routes = Table::new();
            for (key, r) in &api.routes {
                // The effective authorizer is written out; "none" keeps an opt-out explicit.
                let authorizer = r.authorizer.as_deref().unwrap_or("none");
                let mut pairs = vec![
                    ("integration", str(&r.integration)),
                    ("authorizer", str(authorizer)),
                    ("authorization", str(r.authorization.as_str())),
                    ("scopes", list(&r.scopes)),
                    ("groups", list(&r.groups)),
                ];
                if let Some(th) = r.throttle {
                    pairs.push((
                        "throttle",
                        inline(vec![
                            ("rate", Value::from(th.rate_per_second)),
                            ("burst", Value::from(i64::from(th.burst))),
                        ]),
                    ));
                }
                set(&mut routes, key, inline(pairs));
            }
            t.insert("routes", Item::Table(routes));
        }
        http.insert(name, Item::Table(t));
    }
    doc.insert("http", Item::Table(http));

    let mut integrations = implicit();
    for (name, i) in &config.integrations {
        let mut t = Table::new();
        set(&mut t, "type", str(i.kind.as_str()));
        render_target(&mut t, &i.target);
        set(&mut t, "timeout", dur(i.timeout));
        set(&mut t, "max_response_bytes", int(i.max_response_bytes));
        integrations.insert(name, Item::Table(t));
    }
    doc.insert("integrations", Item::Table(integrations));

    let mut authorizers = implicit();
    for (name, a) in &config.authorizers {
        let mut t = Table::new();
        match a {
            Authorizer::Jwt(j) => {
                set(&mut t, "type", str("jwt"));
                set(&mut t, "identity_source", list(&j.identity_source));
                let issuers: Array = j
                    .issuers
                    .iter()
                    .map(|i| {
                        let mut pairs =
                            vec![("issuer", str(&i.issuer)), ("audience", list(&i.audience))];
                        if let Some(uri) = &i.jwks_uri {
                            pairs.push(("jwks_uri", str(&redact_url(uri))));
                        }
                        if !i.algorithms.is_empty() {
                            let names: Vec<String> =
                                i.algorithms.iter().map(|a| a.name().to_owned()).collect();
                            pairs.push(("algorithms", list(&names)));
                        }
                        match &i.secret {
                            Some(HmacSecret::Value(value)) => pairs.push(("secret", secret(value))),
                            Some(HmacSecret::File(file)) => {
                                pairs.push(("secret_file", str(&file.display().to_string())));
                            }
                            None => {}
                        }
                        inline(pairs)
                    })
                    .collect();
                set(&mut t, "issuers", Value::Array(issuers));
                set(&mut t, "cache_ttl", dur(j.cache_ttl));
                if let Some(c) = &j.principal_claim {
                    set(&mut t, "principal_claim", str(c));
                }
                if let Some(u) = &j.token_use {
                    set(&mut t, "token_use", str(u));
                }
                render_csrf(&mut t, j.csrf.as_ref());
            }
            Authorizer::Request(r) => {
                set(&mut t, "type", str("request"));
                render_target(&mut t, &r.target);
                set(&mut t, "identity_source", list(&r.identity_source));
                set(&mut t, "cache_ttl", dur(r.cache_ttl));
                let format = match r.payload_format {
                    crate::model::PayloadFormat::V1 => "1.0",
                    crate::model::PayloadFormat::V2 => "2.0",
                };
                set(&mut t, "payload_format", str(format));
                render_csrf(&mut t, r.csrf.as_ref());
                set(&mut t, "timeout", dur(r.timeout));
            }
        }
        authorizers.insert(name, Item::Table(t));
    }
    doc.insert("authorizers", Item::Table(authorizers));

    let mut store = Table::new();
    set(&mut store, "url", str(&redact_url(&config.store.url)));
    match &config.store.key_encryption_key {
        Some(crate::model::KeyEncryptionKey::Value(key)) => {
            set(&mut store, "key_encryption_key", secret(key));
        }
        Some(crate::model::KeyEncryptionKey::File(file)) => {
            set(
                &mut store,
                "key_encryption_key_file",
                str(&file.display().to_string()),
            );
        }
        None => {}
    }
    doc.insert("store", Item::Table(store));

    if let Some(cluster) = &config.cluster {
        let mut t = Table::new();
        set(&mut t, "redis", str(&redact_url(&cluster.redis)));
        if let Some(node_id) = &cluster.node_id {
            set(&mut t, "node_id", str(node_id));
        }
        set(&mut t, "heartbeat", dur(cluster.heartbeat));
        doc.insert("cluster", Item::Table(t));
    }

    let mut functions = implicit();
    for (name, f) in &config.functions {
        let mut t = Table::new();
        set(&mut t, "runtime", str(f.runtime.as_str()));
        if !f.handler.is_empty() {
            set(&mut t, "handler", str(&f.handler));
        }
        set(&mut t, "code", str(&f.code.display().to_string()));
        set(&mut t, "timeout", dur(f.timeout));
        set(&mut t, "memory", Value::from(i64::from(f.memory_mb)));
        set(&mut t, "concurrency", int(f.concurrency));
        if !f.command.is_empty() {
            set(&mut t, "command", list(&f.command));
        }
        // Values may be credentials: only the names are shown.
        if !f.environment.is_empty() {
            let pairs = f
                .environment
                .iter()
                .map(|(k, _)| (k.as_str(), Value::from(REDACTED)))
                .collect();
            set(&mut t, "environment", inline(pairs));
        }
        functions.insert(name, Item::Table(t));
    }
    doc.insert("functions", Item::Table(functions));

    let mut pools = implicit();
    for (name, p) in &config.pools {
        let mut t = Table::new();
        set(&mut t, "id", str(&p.id));
        set(&mut t, "self_sign_up", Value::from(p.self_sign_up));
        let pp = &p.password_policy;
        set(
            &mut t,
            "password_policy",
            inline(vec![
                ("min_length", Value::from(i64::from(pp.min_length))),
                ("require_digits", Value::from(pp.require_digits)),
                ("require_lowercase", Value::from(pp.require_lowercase)),
                ("require_uppercase", Value::from(pp.require_uppercase)),
                ("require_symbols", Value::from(pp.require_symbols)),
            ]),
        );
        set(&mut t, "access_token_ttl", dur(p.access_token_ttl));
        set(&mut t, "id_token_ttl", dur(p.id_token_ttl));
        set(&mut t, "refresh_token_ttl", dur(p.refresh_token_ttl));
        set(&mut t, "groups", list(&p.groups));
        set(
            &mut t,
            "rate_limit_per_ip",
            Value::from(i64::from(p.rate_limit_per_ip)),
        );
        set(&mut t, "mfa", str(p.mfa.name()));
        if let Some(w) = &p.code_webhook {
            set(&mut t, "code_webhook", str(&redact_url(&w.url)));
            if let Some(s) = &w.secret {
                set(&mut t, "code_webhook_secret", secret(s));
            }
            set(&mut t, "code_webhook_timeout", dur(w.timeout));
        }
        render_triggers(&mut t, &p.triggers);
        if !p.custom_attributes.is_empty() {
            let mut attrs = implicit();
            for (name, a) in &p.custom_attributes {
                let mut at = Table::new();
                set(&mut at, "mutable", Value::from(a.mutable));
                set(&mut at, "max_length", Value::from(i64::from(a.max_length)));
                attrs.insert(name, Item::Table(at));
            }
            t.insert("custom_attributes", Item::Table(attrs));
        }
        if !p.resource_servers.is_empty() {
            let mut servers = implicit();
            for (id, rs) in &p.resource_servers {
                let mut r = Table::new();
                set(&mut r, "scopes", list(&rs.scopes));
                servers.insert(id, Item::Table(r));
            }
            t.insert("resource_servers", Item::Table(servers));
        }
        if !p.clients.is_empty() {
            let mut clients = implicit();
            for (id, c) in &p.clients {
                let mut ct = Table::new();
                if let Some(name) = &c.name {
                    set(&mut ct, "name", str(name));
                }
                set(&mut ct, "public", Value::from(c.public));
                if let Some(s) = &c.secret {
                    set(&mut ct, "secret", secret(s));
                }
                set(&mut ct, "grants", list(&c.grants));
                set(&mut ct, "callback_urls", list(&c.callback_urls));
                set(&mut ct, "logout_urls", list(&c.logout_urls));
                set(&mut ct, "allowed_scopes", list(&c.allowed_scopes));
                set(
                    &mut ct,
                    "refresh_token_rotation",
                    Value::from(c.refresh_token_rotation),
                );
                let flows: Vec<String> = c.auth_flows.iter().map(|f| f.name().to_owned()).collect();
                set(&mut ct, "auth_flows", list(&flows));
                clients.insert(id, Item::Table(ct));
            }
            t.insert("clients", Item::Table(clients));
        }
        pools.insert(name, Item::Table(t));
    }
    doc.insert("pools", Item::Table(pools));

    let mut sites = implicit();
    for (name, site) in &config.static_sites {
        let mut t = Table::new();
        set(&mut t, "path", str(&site.path));
        set(&mut t, "dir", str(&site.dir.display().to_string()));
        set(&mut t, "index", str(&site.index));
        sites.insert(name, Item::Table(t));
    }
    doc.insert("static", Item::Table(sites));
    render_iam(&mut doc, config);

    doc.to_string()
}

/// `[roles.*]` (policies as compact JSON) and `[identity_pools.*]`.
fn render_iam(doc: &mut DocumentMut, config: &Config) {
    let mut roles = implicit();
    for (name, role) in &config.roles {
        let mut t = Table::new();
        set(&mut t, "policy", str(&role.policy_json.to_string()));
        roles.insert(name, Item::Table(t));
    }
    doc.insert("roles", Item::Table(roles));
    let mut pools = implicit();
    for (name, p) in &config.identity_pools {
        let mut t = Table::new();
        set(&mut t, "id", str(&p.id));
        set(&mut t, "user_pools", list(&p.user_pools));
        set(
            &mut t,
            "allow_unauthenticated",
            Value::from(p.allow_unauthenticated),
        );
        set(&mut t, "credentials_ttl", dur(p.credentials_ttl));
        set(
            &mut t,
            "rate_limit_per_ip",
            Value::from(i64::from(p.rate_limit_per_ip)),
        );
        let mut r = Vec::new();
        if let Some(role) = &p.roles.authenticated {
            r.push(("authenticated", str(role)));
        }
        if let Some(role) = &p.roles.unauthenticated {
            r.push(("unauthenticated", str(role)));
        }
        if !p.roles.by_group.is_empty() {
            let groups = p
                .roles
                .by_group
                .iter()
                .map(|(g, role)| (g.as_str(), str(role)))
                .collect();
            r.push(("by_group", inline(groups)));
        }
        set(&mut t, "roles", inline(r));
        pools.insert(name, Item::Table(t));
    }
    doc.insert("identity_pools", Item::Table(pools));
}

/// `[pools.NAME.triggers]`, one inline table per trigger (URLs without their credentials).
fn render_triggers(pool: &mut Table, triggers: &crate::model::Triggers) {
    if triggers.is_empty() {
        return;
    }
    let mut t = Table::new();
    for (key, trigger) in triggers.all() {
        let Some(trigger) = trigger else { continue };
        let target = match &trigger.target {
            crate::model::TriggerTarget::Url(url) => ("url", str(&redact_url(url))),
            crate::model::TriggerTarget::Function(name) => ("function", str(name)),
        };
        set(
            &mut t,
            key,
            inline(vec![target, ("timeout", dur(trigger.timeout))]),
        );
    }
    pool.insert("triggers", Item::Table(t));
}

fn render_csrf(t: &mut Table, csrf: Option<&crate::model::Csrf>) {
    if let Some(c) = csrf {
        let mut pairs = vec![("cookie", str(&c.cookie))];
        if let Some(q) = &c.query {
            pairs.push(("query", str(q)));
        }
        if let Some(h) = &c.header {
            pairs.push(("header", str(h)));
        }
        set(t, "csrf", inline(pairs));
    }
}

/// `url = "..."` (credentials redacted) or `function = "NAME"`.
fn render_target(t: &mut Table, target: &Target) {
    match target {
        Target::Url(url) => set(t, "url", str(&redact_url(url))),
        Target::Function(name) => set(t, "function", str(name)),
    }
}
