//! Temporary credentials: every part of a session token tampered with, expiry, another
//! access key id, another store's pepper, revocation of the user, identity ids and the role
//! choice.

use std::collections::BTreeMap;
use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use portcullis_config::{Config, Secret};

use super::credentials::{self, Claims, IamSessionError, LoginClaims};
use super::role::{RoleChoiceError, RoleRequest, choose_role};
use super::*;
use crate::{IdpOptions, unix_now};

const POLICY: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"execute-api:Invoke","Resource":"*"}]}"#;

fn config() -> Config {
    let source = format!(
        r#"
[server]
listen = "127.0.0.1:0"
admin_listen = "127.0.0.1:0"
public_url = "http://localhost:8080"

[management]
account_id = "123456789012"
region = "eu-west-3"

[store]
url = "sqlite::memory:"

[pools.main]
groups = ["admins", "members", "ops"]

[pools.main.clients.web]
public = true

[identity_pools.app]
user_pools = ["main"]
allow_unauthenticated = true
credentials_ttl = "30m"
roles = {{ authenticated = "chat-user", unauthenticated = "guest", by_group = {{ ops = "chat-ops", admins = "chat-admin" }} }}

[roles.chat-user]
policy = '{POLICY}'
[roles.chat-admin]
policy = '{POLICY}'
[roles.chat-ops]
policy = '{POLICY}'
[roles.guest]
policy = '{POLICY}'
[roles.unrelated]
policy = '{POLICY}'
"#
    );
    portcullis_config::load_str(&source, "test.toml", &|_| None).unwrap()
}

async fn idp() -> Arc<IdentityProvider> {
    let options = IdpOptions {
        hash_concurrency: 1,
        ..IdpOptions::default()
    };
    IdentityProvider::open_with(&config(), options)
        .await
        .unwrap()
}

fn login(sub: &str, iat: i64) -> IamLogin {
    IamLogin {
        issuer: "http://localhost:8080/pools/main".into(),
        sub: sub.into(),
        username: "alice".into(),
        origin_jti: Some("8d0a3c5e-0000-4000-8000-000000000000".into()),
        iat,
        provider: "localhost:8080/pools/main".into(),
    }
}

#[tokio::test]
async fn minted_credentials_open_to_the_same_session() {
    let idp = idp().await;
    let now = unix_now();
    let who = login("sub-1", now);
    let creds = idp
        .mint_iam_credentials("app", "eu-west-3:x", "chat-admin", Some(&who), now)
        .unwrap();
    assert_eq!(creds.access_key_id.len(), credentials::ACCESS_KEY_ID_LEN);
    assert!(creds.access_key_id.starts_with("ASIA"));
    assert!(
        creds.access_key_id[4..]
            .chars()
            .all(|c| c.is_ascii_uppercase() || ('2'..='7').contains(&c))
    );
    assert_eq!(
        creds.secret_access_key.expose().len(),
        credentials::SECRET_ACCESS_KEY_LEN
    );
    assert!(creds.session_token.len() < credentials::MAX_SESSION_TOKEN_BYTES);
    assert!(
        creds
            .session_token
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
    );
    assert_eq!(creds.expiration, now + 1800);

    let session = idp
        .open_iam_session(&creds.access_key_id, &creds.session_token, now)
        .unwrap();
    assert_eq!(session.access_key_id, creds.access_key_id);
    assert_eq!(session.secret_access_key, creds.secret_access_key);
    assert_eq!(session.identity_pool, "app");
    assert_eq!(session.identity_pool_id, "eu-west-3:app");
    assert_eq!(session.identity_id, "eu-west-3:x");
    assert_eq!(session.role, "chat-admin");
    assert_eq!(
        session.role_arn,
        "arn:aws:iam::123456789012:role/chat-admin"
    );
    assert!(session.authenticated);
    assert_eq!(session.login.as_ref(), Some(&who));
    assert_eq!(session.expires_at, now + 1800);
    // The secret is never printed.
    assert!(!format!("{session:?}").contains(creds.secret_access_key.expose()));

    // Two mints never share an access key id or a secret.
    let again = idp
        .mint_iam_credentials("app", "eu-west-3:x", "chat-admin", Some(&who), now)
        .unwrap();
    assert_ne!(again.access_key_id, creds.access_key_id);
    assert_ne!(again.secret_access_key, creds.secret_access_key);
}

#[tokio::test]
async fn every_tampered_byte_is_refused() {
    let idp = idp().await;
    let now = unix_now();
    let creds = idp
        .mint_iam_credentials("app", "eu-west-3:x", "guest", None, now)
        .unwrap();
    let token = creds.session_token.as_bytes();
    for i in 0..token.len() {
        if token[i] == b'.' {
            continue;
        }
        let mut tampered = token.to_vec();
        tampered[i] = if tampered[i] == b'A' { b'B' } else { b'A' };
        let tampered = String::from_utf8(tampered).unwrap();
        let result = idp.open_iam_session(&creds.access_key_id, &tampered, now);
        assert!(
            matches!(
                result,
                Err(IamSessionError::WrongKey | IamSessionError::Malformed)
            ),
            "byte {i}: {result:?}"
        );
    }
    for broken in [
        "",
        ".",
        "no-dot",
        &creds.session_token.replace('.', ""),
        &format!("{}.", creds.session_token),
        &"A".repeat(credentials::MAX_SESSION_TOKEN_BYTES + 1),
    ] {
        assert!(
            idp.open_iam_session(&creds.access_key_id, broken, now)
                .is_err(),
            "{broken:?}"
        );
    }
    // A claim changed and re-encoded without the key: the MAC no longer matches.
    let (payload, tag) = creds.session_token.split_once('.').unwrap();
    let mut claims: Claims =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap();
    claims.r = "chat-admin".into();
    let forged = format!(
        "{}.{tag}",
        URL_SAFE_NO_PAD.encode(serde_json::to_vec(&claims).unwrap())
    );
    assert_eq!(
        idp.open_iam_session(&creds.access_key_id, &forged, now)
            .unwrap_err(),
        IamSessionError::WrongKey
    );
}

#[tokio::test]
async fn credentials_expire_at_their_expiration() {
    let idp = idp().await;
    let now = unix_now();
    let creds = idp
        .mint_iam_credentials("app", "eu-west-3:x", "guest", None, now)
        .unwrap();
    let last = creds.expiration - 1;
    assert!(
        idp.open_iam_session(&creds.access_key_id, &creds.session_token, last)
            .is_ok()
    );
    for later in [creds.expiration, creds.expiration + 3600] {
        assert_eq!(
            idp.open_iam_session(&creds.access_key_id, &creds.session_token, later)
                .unwrap_err(),
            IamSessionError::Expired
        );
    }
}

#[tokio::test]
async fn a_token_belongs_to_its_access_key_id_only() {
    let idp = idp().await;
    let now = unix_now();
    let a = idp
        .mint_iam_credentials("app", "eu-west-3:x", "guest", None, now)
        .unwrap();
    let b = idp
        .mint_iam_credentials("app", "eu-west-3:x", "guest", None, now)
        .unwrap();
    for key_id in [b.access_key_id.as_str(), "", "ASIAAAAAAAAAAAAAAAAA"] {
        assert_eq!(
            idp.open_iam_session(key_id, &a.session_token, now)
                .unwrap_err(),
            IamSessionError::WrongKey
        );
    }
}

#[tokio::test]
async fn another_stores_pepper_does_not_open_the_token() {
    let ours = idp().await;
    let theirs = idp().await; // another in-memory store: another pepper
    let now = unix_now();
    let creds = theirs
        .mint_iam_credentials("app", "eu-west-3:x", "guest", None, now)
        .unwrap();
    assert_eq!(
        ours.open_iam_session(&creds.access_key_id, &creds.session_token, now)
            .unwrap_err(),
        IamSessionError::WrongKey
    );
    // Ids derive from the key too: another store gives the same user another identity id.
    let key = |idp: &IdentityProvider| {
        credentials::authenticated_identity_id(&idp.iam.key, "eu-west-3:app", "iss", "sub")
    };
    assert_ne!(key(&ours), key(&theirs));
}

#[tokio::test]
async fn tokens_naming_what_is_not_configured_or_inconsistent_are_refused() {
    let idp = idp().await;
    let now = unix_now();
    let mint = |claims: &Claims| credentials::mint(&idp.iam.key, claims).unwrap().0;
    let base = Claims::new(
        "ASIAAAAAAAAAAAAAAAAA".into(),
        "app".into(),
        "eu-west-3:x".into(),
        "guest".into(),
        None,
        now + 60,
    );
    let ak = "ASIAAAAAAAAAAAAAAAAA";
    assert!(idp.open_iam_session(ak, &mint(&base), now).is_ok());

    let gone_pool = Claims {
        ip: "gone".into(),
        ..base.clone()
    };
    let gone_role = Claims {
        r: "gone".into(),
        ..base.clone()
    };
    for claims in [gone_pool, gone_role] {
        assert_eq!(
            idp.open_iam_session(ak, &mint(&claims), now).unwrap_err(),
            IamSessionError::UnknownPool
        );
    }
    let other_version = Claims {
        v: 2,
        ..base.clone()
    };
    let authenticated_without_login = Claims {
        a: true,
        ..base.clone()
    };
    let login_but_guest = Claims {
        l: Some(LoginClaims {
            iss: "i".into(),
            sub: "s".into(),
            u: "u".into(),
            oj: None,
            iat: now,
        }),
        ..base.clone()
    };
    for claims in [other_version, authenticated_without_login, login_but_guest] {
        assert_eq!(
            idp.open_iam_session(ak, &mint(&claims), now).unwrap_err(),
            IamSessionError::Malformed
        );
    }
    assert_eq!(
        idp.mint_iam_credentials("gone", "eu-west-3:x", "guest", None, now)
            .err(),
        Some(IamSessionError::UnknownPool)
    );
    assert_eq!(
        idp.mint_iam_credentials("app", "eu-west-3:x", "gone", None, now)
            .err(),
        Some(IamSessionError::UnknownPool)
    );
}

#[tokio::test]
async fn credentials_die_with_a_revocation_of_the_user() {
    let idp = idp().await;
    let user = idp
        .create_user(
            "main",
            "alice",
            BTreeMap::new(),
            Some((&Secret::new("password1"), true)),
        )
        .await
        .unwrap();
    let iat = unix_now() - 1;
    let mut who = login(&user.sub, iat);
    who.origin_jti = None;
    let creds = idp
        .mint_iam_credentials("app", "eu-west-3:x", "chat-user", Some(&who), unix_now())
        .unwrap();
    let session = idp
        .open_iam_session(&creds.access_key_id, &creds.session_token, unix_now())
        .unwrap();
    assert!(!idp.is_iam_session_revoked(&session).await);
    idp.global_sign_out("main", "alice").await.unwrap();
    assert!(idp.is_iam_session_revoked(&session).await);

    let guest = idp
        .mint_iam_credentials("app", "eu-west-3:y", "guest", None, unix_now())
        .unwrap();
    let guest = idp
        .open_iam_session(&guest.access_key_id, &guest.session_token, unix_now())
        .unwrap();
    assert!(!guest.authenticated);
    assert!(!idp.is_iam_session_revoked(&guest).await);
}

#[tokio::test]
async fn identity_ids_are_stable_for_users_and_recognisable_for_guests() {
    let idp = idp().await;
    let key = &idp.iam.key;
    let id = |pool: &str, sub: &str| credentials::authenticated_identity_id(key, pool, "iss", sub);
    let alice = id("eu-west-3:app", "alice-sub");
    assert_eq!(alice, id("eu-west-3:app", "alice-sub"));
    assert_ne!(alice, id("eu-west-3:app", "bob-sub"));
    assert_ne!(alice, id("eu-west-3:other", "alice-sub"));
    assert!(alice.starts_with("eu-west-3:"));
    assert_eq!(alice.len(), "eu-west-3:".len() + 36);

    let guest = credentials::guest_identity_id(key, "eu-west-3:app", [7; 8]);
    assert!(credentials::is_guest_identity_id(
        key,
        "eu-west-3:app",
        &guest
    ));
    assert!(!credentials::is_guest_identity_id(
        key,
        "eu-west-3:other",
        &guest
    ));
    assert!(!credentials::is_guest_identity_id(
        key,
        "eu-west-3:app",
        &alice
    ));
    let mut forged = guest.clone();
    let last = forged.pop().unwrap();
    forged.push(if last == '0' { '1' } else { '0' });
    assert!(!credentials::is_guest_identity_id(
        key,
        "eu-west-3:app",
        &forged
    ));
    for junk in [
        "",
        "eu-west-3:",
        "eu-west-3:not-a-uuid",
        &guest.to_uppercase(),
    ] {
        assert!(!credentials::is_guest_identity_id(
            key,
            "eu-west-3:app",
            junk
        ));
    }
}

#[test]
fn access_key_ids_look_like_aws_temporary_ones() {
    assert_eq!(credentials::access_key_id(&[0; 10]), "ASIAAAAAAAAAAAAAAAAA");
    assert_eq!(
        credentials::access_key_id(&[0xff; 10]),
        "ASIA7777777777777777"
    );
}

fn arn(role: &str) -> String {
    format!("arn:aws:iam::123456789012:role/{role}")
}

#[test]
fn the_role_follows_groups_then_the_authenticated_role() {
    let config = config();
    let pool = &config.identity_pools["app"];
    let choose = |groups: &[&str], preferred: Option<&str>, custom: Option<&str>| {
        let groups: Vec<String> = groups.iter().map(|g| (*g).to_owned()).collect();
        let preferred = preferred.map(arn);
        let custom = custom.map(arn);
        choose_role(
            pool,
            &config.roles,
            &RoleRequest {
                groups: &groups,
                preferred_role: preferred.as_deref(),
                custom_role_arn: custom.as_deref(),
            },
        )
    };
    let ok = |role: &str| Ok(role.to_owned());
    assert_eq!(choose(&[], None, None), ok("chat-user"));
    assert_eq!(choose(&["members"], None, None), ok("chat-user"));
    assert_eq!(choose(&["admins"], None, None), ok("chat-admin"));
    // Several mapped groups: by_group's order decides (ops is listed first).
    assert_eq!(choose(&["admins", "ops"], None, None), ok("chat-ops"));
    // cognito:preferred_role wins when it is one of the pool's roles.
    assert_eq!(
        choose(&["admins"], Some("chat-user"), None),
        ok("chat-user")
    );
    assert_eq!(choose(&[], Some("chat-admin"), None), ok("chat-admin"));
    assert_eq!(
        choose(&["admins"], Some("unrelated"), None),
        ok("chat-admin")
    );
    assert_eq!(choose(&["admins"], Some("guest"), None), ok("chat-admin"));
    // CustomRoleArn: only a role the user could get.
    assert_eq!(
        choose(&["admins"], None, Some("chat-admin")),
        ok("chat-admin")
    );
    assert_eq!(
        choose(&["admins"], None, Some("chat-user")),
        ok("chat-user")
    );
    assert_eq!(
        choose(&["admins", "ops"], None, Some("chat-admin")),
        ok("chat-admin")
    );
    for (groups, custom) in [
        (&[][..], "chat-admin"),
        (&["members"][..], "chat-ops"),
        (&["admins"][..], "guest"),
        (&["admins"][..], "unrelated"),
        (&["admins"][..], "nonexistent"),
    ] {
        assert_eq!(
            choose(groups, None, Some(custom)),
            Err(RoleChoiceError::NotAllowed),
            "{groups:?} {custom}"
        );
    }

    // Without an authenticated role, a user in no mapped group gets nothing.
    let mut only_groups = pool.clone();
    only_groups.roles.authenticated = None;
    let request = RoleRequest::default();
    assert_eq!(
        choose_role(&only_groups, &config.roles, &request),
        Err(RoleChoiceError::NoRole)
    );
}
