//! `[identity_pools.*]` and `[roles.*]`: defaults, every diagnostic, warnings, rendering.

use std::time::Duration;

use crate::{Config, Diagnostics, load_str, render_redacted};

const POLICY: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"execute-api:Invoke","Resource":"arn:aws:execute-api:*:*:*/prod/$connect"}]}"#;

fn load(rest: &str) -> Result<Config, Diagnostics> {
    let source = format!(
        "[server]\nlisten = \"127.0.0.1:8080\"\nadmin_listen = \"127.0.0.1:9090\"\n\
         [pools.main]\ngroups = [\"admins\", \"members\"]\n\
         [roles.chat-user]\npolicy = '{POLICY}'\n\
         [roles.chat-admin]\npolicy = '{POLICY}'\n\
         [roles.guest]\npolicy = '{POLICY}'\n{rest}"
    );
    load_str(&source, "test.toml", &|_| None)
}

fn errors(rest: &str) -> Vec<String> {
    match load(rest) {
        Ok(_) => panic!("expected errors for {rest}"),
        Err(d) => {
            d.0.iter()
                .map(|d| format!("{}: {}", d.path, d.message))
                .collect()
        }
    }
}

fn assert_error(rest: &str, expected: &str) {
    let errors = errors(rest);
    assert!(
        errors.iter().any(|e| e.contains(expected)),
        "{expected:?} not in {errors:#?}"
    );
}

const APP: &str = r#"
[identity_pools.app]
user_pools = ["main"]
roles = { authenticated = "chat-user", by_group = { admins = "chat-admin" } }
"#;

#[test]
fn defaults_of_an_identity_pool_and_its_roles() {
    let config = load(APP).unwrap();
    let pool = &config.identity_pools["app"];
    assert_eq!(pool.name, "app");
    assert_eq!(pool.id, "us-east-1:app");
    assert_eq!(pool.user_pools, ["main"]);
    assert!(!pool.allow_unauthenticated);
    assert_eq!(pool.credentials_ttl, Duration::from_secs(3600));
    assert_eq!(pool.roles.authenticated.as_deref(), Some("chat-user"));
    assert_eq!(pool.roles.unauthenticated, None);
    assert_eq!(pool.roles.by_group["admins"], "chat-admin");
    assert_eq!(pool.rate_limit_per_ip, 200);
    let role = &config.roles["chat-admin"];
    assert_eq!(role.arn, "arn:aws:iam::000000000000:role/chat-admin");
    assert_eq!(role.policy.statements.len(), 1);
    assert!(config.warnings.is_empty(), "{:?}", config.warnings);
}

#[test]
fn explicit_values_and_the_management_region_and_account() {
    let config = load(
        r#"
[management]
region = "eu-west-3"
account_id = "123456789012"
[identity_pools.app]
user_pools = ["main"]
allow_unauthenticated = true
credentials_ttl = "12h"
roles = { authenticated = "chat-user", unauthenticated = "guest" }
[identity_pools.other]
id = "eu-west-3:0f3a-custom"
allow_unauthenticated = true
credentials_ttl = "15m"
rate_limit_per_ip = 0
roles = { unauthenticated = "guest" }
"#,
    )
    .unwrap();
    let app = &config.identity_pools["app"];
    assert_eq!(app.id, "eu-west-3:app");
    assert!(app.allow_unauthenticated);
    assert_eq!(app.credentials_ttl, Duration::from_secs(12 * 3600));
    assert_eq!(app.roles.unauthenticated.as_deref(), Some("guest"));
    let other = &config.identity_pools["other"];
    assert_eq!(other.id, "eu-west-3:0f3a-custom");
    assert!(other.user_pools.is_empty());
    assert_eq!(other.credentials_ttl, Duration::from_secs(900));
    assert_eq!(other.rate_limit_per_ip, 0);
    assert_eq!(
        config.roles["guest"].arn,
        "arn:aws:iam::123456789012:role/guest"
    );
}

#[test]
fn unknown_user_pools_and_roles_are_errors() {
    assert_error(
        r#"
[identity_pools.app]
user_pools = ["main", "nope"]
roles = { authenticated = "chat-user" }
"#,
        "identity_pools.app.user_pools[1]: no user pool named \"nope\"",
    );
    assert_error(
        r#"
[identity_pools.app]
user_pools = ["main"]
roles = { authenticated = "chat-usr" }
"#,
        "identity_pools.app.roles.authenticated: no role named \"chat-usr\"",
    );
    assert_error(
        r#"
[identity_pools.app]
user_pools = ["main"]
roles = { authenticated = "chat-user", by_group = { admins = "root" } }
"#,
        "identity_pools.app.roles.by_group.admins: no role named \"root\"",
    );
    assert_error(
        r#"
[identity_pools.app]
user_pools = ["main"]
allow_unauthenticated = true
roles = { authenticated = "chat-user", unauthenticated = "nobody" }
"#,
        "identity_pools.app.roles.unauthenticated: no role named \"nobody\"",
    );
}

#[test]
fn guests_need_a_role_and_users_need_one_too() {
    assert_error(
        r#"
[identity_pools.app]
user_pools = ["main"]
allow_unauthenticated = true
roles = { authenticated = "chat-user" }
"#,
        "identity_pools.app.roles.unauthenticated: allow_unauthenticated = true needs a role",
    );
    assert_error(
        r#"
[identity_pools.app]
user_pools = ["main"]
"#,
        "identity_pools.app.roles.authenticated: signed-in users would get no role",
    );
    assert_error(
        r#"
[identity_pools.app]
roles = { authenticated = "chat-user" }
"#,
        "identity_pools.app.user_pools: the identity pool accepts nobody",
    );
}

#[test]
fn an_unused_guest_role_and_an_undeclared_group_are_warnings() {
    let config = load(
        r#"
[identity_pools.app]
user_pools = ["main"]
roles = { authenticated = "chat-user", unauthenticated = "guest", by_group = { ops = "chat-admin" } }
"#,
    )
    .unwrap();
    let warnings: Vec<String> = config
        .warnings
        .iter()
        .map(|w| format!("{}: {}", w.path, w.message))
        .collect();
    assert_eq!(warnings.len(), 2, "{warnings:#?}");
    assert!(warnings[0].starts_with("identity_pools.app.roles.unauthenticated: unused"));
    assert!(warnings[1].starts_with(
        "identity_pools.app.roles.by_group.ops: group \"ops\" is not declared in the groups of [pools.main]"
    ));
    // The entry still applies (the group may be created with the admin API).
    assert_eq!(
        config.identity_pools["app"].roles.by_group["ops"],
        "chat-admin"
    );
}

#[test]
fn policies_must_be_valid_json_and_valid_iam() {
    let bad = |policy: &str| {
        errors(&format!(
            "[roles.bad]\npolicy = '{policy}'\n[identity_pools.app]\nuser_pools = [\"main\"]\nroles = {{ authenticated = \"bad\" }}\n"
        ))
    };
    let e = bad("{\"Version\": ");
    assert!(
        e[0].starts_with("roles.bad.policy: invalid policy JSON"),
        "{e:?}"
    );
    let e = bad(
        r#"{"Version":"2012-10-17","Statement":[{"Effect":"Maybe","Action":"*","Resource":"*"}]}"#,
    );
    assert!(
        e[0].starts_with("roles.bad.policy: invalid IAM policy"),
        "{e:?}"
    );
    let e = bad(r#"{"Version":"2012-10-17"}"#);
    assert!(
        e[0].starts_with("roles.bad.policy: invalid IAM policy"),
        "{e:?}"
    );
    let e = bad(&format!(
        r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Action":"*","Resource":"{}"}}]}}"#,
        "x".repeat(11_000)
    ));
    assert!(e[0].contains("at most 10240 are allowed"), "{e:?}");
    // The role is still known, so the identity pool's reference is not reported twice.
    assert_eq!(e.len(), 1, "{e:?}");
    assert_error("[roles.r]\n", "roles.r.policy: missing required key");
    assert_error(
        &format!("[roles.\"bad name\"]\npolicy = '{POLICY}'\n"),
        "roles.\"bad name\": invalid name \"bad name\"",
    );
    assert_error(
        &format!("[roles.chat-user2]\npolicy = '{POLICY}'\nmanaged = true\n"),
        "roles.chat-user2.managed: unknown key",
    );
}

#[test]
fn identity_pool_ids_are_checked_and_unique() {
    assert_error(
        r#"
[identity_pools.app]
id = "no-colon"
allow_unauthenticated = true
roles = { unauthenticated = "guest" }
"#,
        "identity_pools.app.id: invalid identity pool id \"no-colon\"",
    );
    assert_error(
        r#"
[identity_pools.a]
id = "us-east-1:same"
allow_unauthenticated = true
roles = { unauthenticated = "guest" }
[identity_pools.b]
id = "us-east-1:same"
allow_unauthenticated = true
roles = { unauthenticated = "guest" }
"#,
        "identity_pools.b.id: identity pool id \"us-east-1:same\" is already used by identity pool \"a\"",
    );
    assert_error(
        r#"
[identity_pools.app]
user_pools = ["main"]
credentials_ttl = "13h"
roles = { authenticated = "chat-user" }
"#,
        "identity_pools.app.credentials_ttl",
    );
    assert_error(
        r#"
[identity_pools.app]
user_pools = ["main"]
roles = { authenticated = "chat-user", admin = "chat-admin" }
"#,
        "identity_pools.app.roles.admin: unknown key",
    );
}

#[test]
fn rendering_round_trips() {
    let config = load(APP).unwrap();
    let text = render_redacted(&config);
    assert!(text.contains("[identity_pools.app]"), "{text}");
    assert!(text.contains("[roles.chat-admin]"), "{text}");
    let again = load_str(&text, "rendered.toml", &|_| None).unwrap();
    let pool = &again.identity_pools["app"];
    assert_eq!(pool.id, "us-east-1:app");
    assert_eq!(pool.roles, config.identity_pools["app"].roles);
    assert_eq!(
        again.roles["chat-admin"].policy,
        config.roles["chat-admin"].policy
    );
}
