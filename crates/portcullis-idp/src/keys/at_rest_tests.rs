//! Signing keys and the client-secret pepper at rest: sealed with the key-encryption key,
//! sealed on the first start with one, refused with another key or none, and never in the
//! database files in the clear.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use portcullis_auth::jwt::{JwtOptions, JwtVerifier};
use portcullis_config::{Authorizer, Config, KeyEncryptionKey, Secret};

use super::*;
use crate::{ClientAuth, IdentityProvider, IdpError, IdpOptions};

const KEK: &str = "kek-0123456789abcdef0123456789abcdef";
const OTHER_KEK: &str = "kek-fedcba9876543210fedcba9876543210";

fn config(url: &str, kek: Option<&str>) -> Config {
    let kek = kek
        .map(|k| format!("key_encryption_key = \"{k}\"\n"))
        .unwrap_or_default();
    let source = format!(
        r#"
[server]
listen = "127.0.0.1:0"
admin_listen = "127.0.0.1:0"
public_url = "http://localhost:8080"

[store]
url = "{url}"
{kek}
[authorizers.m2m]
type = "jwt"
identity_source = ["$request.header.Authorization"]
issuers = [{{ issuer = "http://localhost:8080/pools/main", audience = ["reporting-service"] }}]

[pools.main]
[pools.main.resource_servers.premium-content]
scopes = ["read"]

[pools.main.clients.reporting-service]
secret = "reporting-secret"
grants = ["client_credentials"]
allowed_scopes = ["premium-content/read"]
"#
    );
    portcullis_config::load_str(&source, "test.toml", &|_| None).unwrap()
}

async fn open(url: &str, kek: Option<&str>) -> Result<Arc<IdentityProvider>, IdpError> {
    let options = IdpOptions {
        key_grace: Duration::ZERO,
        hash_concurrency: 1,
        ..IdpOptions::default()
    };
    IdentityProvider::open_with(&config(url, kek), options).await
}

/// An access token of the client-credentials client (authenticates with the pepper's hash).
async fn m2m_token(idp: &IdentityProvider) -> Secret {
    let auth = ClientAuth {
        client_id: "reporting-service".into(),
        secret: Some(Secret::new("reporting-secret")),
        basic: true,
    };
    idp.client_credentials("main", &auth, None)
        .await
        .unwrap()
        .access_token
}

/// Verifies `token` against the pool's current keys, as the gateway does.
async fn verifies(idp: &IdentityProvider, token: &Secret) -> bool {
    let config = config("sqlite::memory:", None);
    let Authorizer::Jwt(jwt) = &config.authorizers["m2m"] else {
        panic!("jwt authorizer expected");
    };
    let verifier = JwtVerifier::new(jwt, reqwest::Client::new(), JwtOptions::default()).unwrap();
    verifier.set_local_keys("http://localhost:8080/pools/main", idp.key_source("main"));
    verifier.verify(token.expose()).await.is_ok()
}

/// The store's secrets as stored, and in the clear (read with `kek`).
async fn secrets(idp: &IdentityProvider, kek: Option<&str>) -> Vec<(Vec<u8>, Vec<u8>)> {
    let at_rest = AtRest::from_config(
        kek.map(|k| KeyEncryptionKey::Value(Secret::new(k)))
            .as_ref(),
    )
    .unwrap();
    let store = idp.store();
    let pepper = store.meta_get_or_init(PEPPER_KEY, b"unused").await.unwrap();
    let mut out = vec![(
        pepper.clone(),
        at_rest.open_meta(PEPPER_KEY, &pepper).unwrap(),
    )];
    for key in store.all_signing_keys().await.unwrap() {
        let open = at_rest.open_key(&key).unwrap();
        out.push((key.pkcs8.0, open.pkcs8.0));
    }
    out
}

/// Whether any 32-byte piece of `secret` appears in the database's files.
fn in_files(db: &Path, secret: &[u8]) -> bool {
    let files = ["", "-wal", "-shm"].map(|suffix| {
        let mut name = db.as_os_str().to_owned();
        name.push(suffix);
        std::fs::read(name).unwrap_or_default()
    });
    secret.chunks(32).filter(|c| c.len() == 32).any(|chunk| {
        files
            .iter()
            .any(|bytes| bytes.windows(chunk.len()).any(|w| w == chunk))
    })
}

fn sealed(stored: &[u8]) -> bool {
    matches!(classify(stored), StoredValue::Sealed { .. })
}

#[tokio::test]
async fn with_a_kek_keys_and_pepper_are_sealed_and_tokens_verify_after_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("idp.db");
    let url = format!("sqlite://{}", db.display());
    let idp = open(&url, Some(KEK)).await.unwrap();
    let before = m2m_token(&idp).await;
    idp.rotate_keys("main").await.unwrap();
    let after_rotation = m2m_token(&idp).await;
    let stored = secrets(&idp, Some(KEK)).await;
    assert_eq!(stored.len(), 3, "the pepper and two signing keys");
    for (at_rest, clear) in &stored {
        assert!(sealed(at_rest));
        assert_ne!(at_rest, clear);
        assert!(!in_files(&db, clear), "a secret is in the database files");
    }
    let jwks = idp.key_source("main").jwks();
    drop(idp);

    let idp = open(&url, Some(KEK)).await.unwrap();
    assert_eq!(idp.key_source("main").jwks(), jwks);
    assert!(verifies(&idp, &before).await);
    assert!(verifies(&idp, &after_rotation).await);
    // same pepper: the client secret still authenticates
    let fresh = m2m_token(&idp).await;
    assert!(verifies(&idp, &fresh).await);
}

#[tokio::test]
async fn a_restart_with_another_kek_or_without_one_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("idp.db").display());
    let idp = open(&url, Some(KEK)).await.unwrap();
    let token = m2m_token(&idp).await;
    drop(idp);

    match open(&url, Some(OTHER_KEK)).await {
        Err(IdpError::Config(m)) => assert!(
            m.contains("cannot be decrypted with the configured [store] key-encryption key"),
            "{m}"
        ),
        other => panic!("expected a refusal, got {other:?}"),
    }
    match open(&url, None).await {
        Err(IdpError::Config(m)) => assert!(
            m.contains("is encrypted, but [store] sets no key_encryption_key"),
            "{m}"
        ),
        other => panic!("expected a refusal, got {other:?}"),
    }
    // nothing was changed by the refused starts
    let idp = open(&url, Some(KEK)).await.unwrap();
    assert!(verifies(&idp, &token).await);
}

#[tokio::test]
async fn a_plain_store_is_sealed_on_the_first_start_with_a_kek() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("idp.db");
    let url = format!("sqlite://{}", db.display());
    let idp = open(&url, None).await.unwrap();
    let token = m2m_token(&idp).await;
    let plain = secrets(&idp, None).await;
    assert_eq!(plain.len(), 2, "the pepper and one signing key");
    for (at_rest, clear) in &plain {
        assert_eq!(at_rest, clear);
        assert!(in_files(&db, clear));
    }
    let jwks = idp.key_source("main").jwks();
    drop(idp);

    let idp = open(&url, Some(KEK)).await.unwrap();
    let now = secrets(&idp, Some(KEK)).await;
    // the same pepper and keys, now sealed, and no longer anywhere in the files
    assert_eq!(
        now.iter().map(|(_, clear)| clear).collect::<Vec<_>>(),
        plain.iter().map(|(_, clear)| clear).collect::<Vec<_>>()
    );
    for (at_rest, clear) in &now {
        assert!(sealed(at_rest));
        assert!(!in_files(&db, clear), "a plain secret is left in the files");
    }
    assert_eq!(idp.key_source("main").jwks(), jwks);
    assert!(verifies(&idp, &token).await);
    let fresh = m2m_token(&idp).await;
    assert!(verifies(&idp, &fresh).await);
    drop(idp);
    // a second start finds nothing left to seal
    let idp = open(&url, Some(KEK)).await.unwrap();
    assert_eq!(secrets(&idp, Some(KEK)).await, now);
}

#[tokio::test]
async fn a_sealed_key_does_not_open_in_another_row() {
    let at_rest = AtRest::sealed(Kek::derive(KEK.as_bytes()).unwrap());
    let a = at_rest.seal_key(generate("p", 0, 0).unwrap()).unwrap();
    let b = at_rest.seal_key(generate("p", 0, 0).unwrap()).unwrap();
    assert!(at_rest.open_key(&a).is_ok());
    let swapped = SigningKeyRecord {
        pkcs8: a.pkcs8.clone(),
        ..b.clone()
    };
    assert!(matches!(
        at_rest.open_key(&swapped),
        Err(AtRestError::WrongKey(_))
    ));
    let other_pool = SigningKeyRecord {
        pool: "q".into(),
        ..a.clone()
    };
    assert!(matches!(
        at_rest.open_key(&other_pool),
        Err(AtRestError::WrongKey(_))
    ));
    // nor as the pepper, and a flipped bit is caught
    assert!(at_rest.open_meta(PEPPER_KEY, &a.pkcs8.0).is_err());
    let mut flipped = a.clone();
    if let Some(last) = flipped.pkcs8.0.last_mut() {
        *last ^= 1;
    }
    assert!(at_rest.open_key(&flipped).is_err());
    // each sealing draws a fresh nonce
    let pepper = [7u8; 32];
    assert_ne!(
        at_rest.seal_meta(PEPPER_KEY, &pepper).unwrap(),
        at_rest.seal_meta(PEPPER_KEY, &pepper).unwrap()
    );
}

#[test]
fn plain_values_are_never_taken_for_sealed_ones() {
    let kek = Kek::derive(KEK.as_bytes()).unwrap();
    let sealed_pepper = kek.seal(b"aad", &[1; 32]).unwrap();
    let pkcs8 = generate("p", 0, 0).unwrap().pkcs8.0;
    let mut pepper_with_prefix = SEALED_V1.to_vec();
    pepper_with_prefix.resize(32, 0xab);
    for (value, is_sealed) in [
        (pkcs8.as_slice(), false),
        (&[0u8; 32][..], false),
        // a plain pepper that happens to start like a sealed value is too short to be one
        (pepper_with_prefix.as_slice(), false),
        (b"".as_slice(), false),
        (sealed_pepper.as_slice(), true),
    ] {
        assert_eq!(sealed(value), is_sealed, "{value:?}");
    }
    assert_eq!(
        sealed_pepper.len(),
        SEALED_V1.len() + NONCE_LEN + 32 + TAG_LEN
    );
}

#[test]
fn the_kek_comes_from_the_config_or_a_file() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("kek");
    std::fs::write(&file, format!("{KEK}\n")).unwrap();
    let from_file = AtRest::from_config(Some(&KeyEncryptionKey::File(file.clone()))).unwrap();
    let from_value = AtRest::from_config(Some(&KeyEncryptionKey::Value(Secret::new(KEK)))).unwrap();
    // the trailing newline is not part of the key: one opens what the other sealed
    let sealed = from_file.seal_meta(PEPPER_KEY, b"pepper").unwrap();
    assert_eq!(
        from_value.open_meta(PEPPER_KEY, &sealed).unwrap(),
        b"pepper"
    );
    assert!(AtRest::from_config(None).is_ok_and(|a| !a.is_sealed()));

    std::fs::write(&file, "short\n").unwrap();
    let short = AtRest::from_config(Some(&KeyEncryptionKey::File(file.clone()))).unwrap_err();
    let message = short.to_string();
    assert!(message.contains(&file.display().to_string()), "{message}");
    assert!(message.contains("holds 5 bytes, at least 32"), "{message}");
    let missing = dir.path().join("missing");
    let message = AtRest::from_config(Some(&KeyEncryptionKey::File(missing.clone())))
        .unwrap_err()
        .to_string();
    assert!(
        message.contains(&missing.display().to_string()),
        "{message}"
    );
    assert!(Kek::derive(&[0; 31]).is_err());
}

#[tokio::test]
async fn postgres_store_is_sealed_migrated_and_refused_with_another_kek() {
    let Some(pg) = crate::store::tests::TempPostgres::start("postgres_at_rest").await else {
        return;
    };
    let idp = open(&pg.url, None).await.unwrap();
    let token = m2m_token(&idp).await;
    let plain = secrets(&idp, None).await;
    assert!(plain.iter().all(|(at_rest, clear)| at_rest == clear));
    drop(idp);

    let idp = open(&pg.url, Some(KEK)).await.unwrap();
    let now = secrets(&idp, Some(KEK)).await;
    assert!(now.iter().all(|(at_rest, _)| sealed(at_rest)));
    assert_eq!(
        now.iter().map(|(_, clear)| clear).collect::<Vec<_>>(),
        plain.iter().map(|(_, clear)| clear).collect::<Vec<_>>()
    );
    idp.rotate_keys("main").await.unwrap();
    assert!(
        secrets(&idp, Some(KEK))
            .await
            .iter()
            .all(|(at_rest, _)| sealed(at_rest))
    );
    assert!(verifies(&idp, &token).await);
    drop(idp);

    assert!(matches!(
        open(&pg.url, Some(OTHER_KEK)).await,
        Err(IdpError::Config(m)) if m.contains("cannot be decrypted")
    ));
    let idp = open(&pg.url, Some(KEK)).await.unwrap();
    assert!(verifies(&idp, &m2m_token(&idp).await).await);
}

#[test]
fn serve_warns_when_keys_are_stored_unencrypted_on_disk() {
    let no_pools = portcullis_config::load_str(
        "[server]\nlisten = \"127.0.0.1:0\"\nadmin_listen = \"127.0.0.1:0\"\n",
        "test.toml",
        &|_| None,
    )
    .unwrap();
    for (config, warns) in [
        (config("sqlite://idp.db", None), true),
        (config("postgres://db/gw", None), true),
        (config("sqlite://idp.db", Some(KEK)), false),
        (config("postgres://db/gw", Some(KEK)), false),
        // nothing at rest, or no identity provider at all
        (config("sqlite::memory:", None), false),
        (no_pools, false),
    ] {
        let warning = unencrypted_store_warning(&config);
        assert_eq!(warning.is_some(), warns, "{:?}", config.store);
        if let Some(w) = warning {
            assert!(w.contains("stored unencrypted"), "{w}");
            assert!(w.contains("key_encryption_key"), "{w}");
        }
    }
}
