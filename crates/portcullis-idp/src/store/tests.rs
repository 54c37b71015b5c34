//! One store suite, run against SQLite (memory and file) and a throwaway PostgreSQL server.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use super::*;

fn user(pool: &str, username: &str, sub: &str) -> UserRecord {
    UserRecord {
        pool: pool.into(),
        username: username.into(),
        sub: sub.into(),
        password_hash: Some("$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA".into()),
        status: UserStatus::Confirmed,
        enabled: true,
        attributes: BTreeMap::from([
            ("email".to_owned(), "a@example.com".to_owned()),
            ("email_verified".to_owned(), "true".to_owned()),
            ("custom:tier".to_owned(), "gold".to_owned()),
        ]),
        failed_attempts: 0,
        locked_until: None,
        tokens_valid_after: 0,
        created_at: 100,
        updated_at: 100,
        srp: None,
    }
}

fn client(pool: &str, id: &str) -> ClientRecord {
    ClientRecord {
        client_id: id.into(),
        pool: pool.into(),
        secret_hash: Some(SecretBytes(vec![1, 2, 3])),
        public: false,
        grants: vec!["client_credentials".into()],
        callback_urls: vec!["https://app/cb".into()],
        logout_urls: vec![],
        allowed_scopes: vec!["premium-content/read".into()],
    }
}

/// The suite every backend must pass.
async fn suite(store: Arc<dyn Store>) {
    store.migrate().await.unwrap();
    store.migrate().await.unwrap(); // idempotent

    // meta: first writer wins
    let a = store.meta_get_or_init("k", b"first").await.unwrap();
    let b = store.meta_get_or_init("k", b"second").await.unwrap();
    assert_eq!(a, b"first");
    assert_eq!(b, b"first");

    // pools and groups
    store.upsert_pool("main", 1).await.unwrap();
    store.upsert_pool("main", 2).await.unwrap();
    store.upsert_pool("other", 1).await.unwrap();
    store.upsert_group("main", "members", 1).await.unwrap();
    store.upsert_group("main", "admins", 1).await.unwrap();
    store.upsert_group("main", "admins", 2).await.unwrap();
    assert_eq!(
        store.list_groups("main").await.unwrap(),
        ["admins", "members"]
    );
    assert!(store.list_groups("other").await.unwrap().is_empty());
    assert!(matches!(
        store.upsert_group("nopool", "g", 1).await,
        Err(StoreError::NotFound(_))
    ));

    // users
    let alice = user("main", "alice", "11111111-1111-4111-8111-111111111111");
    store.create_user(&alice).await.unwrap();
    assert!(matches!(
        store.create_user(&alice).await,
        Err(StoreError::Conflict(_))
    ));
    // same sub in another pool is refused too (sub is global)
    assert!(matches!(
        store.create_user(&user("other", "alice", &alice.sub)).await,
        Err(StoreError::Conflict(_))
    ));
    store
        .create_user(&user(
            "other",
            "alice",
            "22222222-2222-4222-8222-222222222222",
        ))
        .await
        .unwrap();
    assert_eq!(
        store.get_user("main", "alice").await.unwrap(),
        Some(alice.clone())
    );
    assert_eq!(
        store.get_user_by_sub(&alice.sub).await.unwrap(),
        Some(alice.clone())
    );
    assert_eq!(store.get_user("main", "bob").await.unwrap(), None);
    let mut changed = alice.clone();
    changed.status = UserStatus::ForceChangePassword;
    changed.enabled = false;
    changed.failed_attempts = 3;
    changed.locked_until = Some(500);
    changed.tokens_valid_after = 400;
    changed.attributes.insert("name".into(), "Alice".into());
    changed.password_hash = None;
    changed.updated_at = 300;
    store.update_user(&changed).await.unwrap();
    srp_verifiers(store.as_ref(), &alice).await;
    assert_eq!(
        store.get_user("main", "alice").await.unwrap(),
        Some(changed.clone())
    );
    let mut ghost = changed.clone();
    ghost.username = "ghost".into();
    assert!(matches!(
        store.update_user(&ghost).await,
        Err(StoreError::NotFound(_))
    ));
    for name in ["carol", "bob", "dave"] {
        let sub = format!("{:0>8}-0000-4000-8000-000000000000", name);
        store.create_user(&user("main", name, &sub)).await.unwrap();
    }
    let page: Vec<String> = store
        .list_users("main", None, 2)
        .await
        .unwrap()
        .into_iter()
        .map(|u| u.username)
        .collect();
    assert_eq!(page, ["alice", "bob"]);
    let page: Vec<String> = store
        .list_users("main", Some("bob"), 10)
        .await
        .unwrap()
        .into_iter()
        .map(|u| u.username)
        .collect();
    assert_eq!(page, ["carol", "dave"]);

    // membership
    store
        .add_user_to_group("main", "alice", "admins")
        .await
        .unwrap();
    store
        .add_user_to_group("main", "alice", "admins")
        .await
        .unwrap();
    store
        .add_user_to_group("main", "alice", "members")
        .await
        .unwrap();
    assert!(matches!(
        store.add_user_to_group("main", "alice", "nogroup").await,
        Err(StoreError::NotFound(_))
    ));
    assert!(matches!(
        store.add_user_to_group("main", "nobody", "admins").await,
        Err(StoreError::NotFound(_))
    ));
    assert_eq!(
        store.user_groups("main", "alice").await.unwrap(),
        ["admins", "members"]
    );
    assert!(
        store
            .remove_user_from_group("main", "alice", "members")
            .await
            .unwrap()
    );
    assert!(
        !store
            .remove_user_from_group("main", "alice", "members")
            .await
            .unwrap()
    );
    assert!(store.delete_group("main", "admins").await.unwrap());
    assert!(store.user_groups("main", "alice").await.unwrap().is_empty());

    // clients: unique across pools
    let c = client("main", "reporting");
    store.upsert_client(&c, 1).await.unwrap();
    assert_eq!(
        store.get_client("reporting").await.unwrap(),
        Some(c.clone())
    );
    let mut c2 = c.clone();
    c2.allowed_scopes.push("premium-content/write".into());
    c2.secret_hash = None;
    c2.public = true;
    store.upsert_client(&c2, 2).await.unwrap();
    assert_eq!(
        store.get_client("reporting").await.unwrap(),
        Some(c2.clone())
    );
    assert!(matches!(
        store.upsert_client(&client("other", "reporting"), 3).await,
        Err(StoreError::Conflict(_))
    ));
    assert_eq!(store.list_clients("main").await.unwrap(), [c2.clone()]);
    assert!(store.list_clients("other").await.unwrap().is_empty());

    // resource servers
    let rs = ResourceServerRecord {
        pool: "main".into(),
        identifier: "premium-content".into(),
        scopes: vec!["read".into(), "write".into()],
    };
    store.upsert_resource_server(&rs).await.unwrap();
    store.upsert_resource_server(&rs).await.unwrap();
    assert_eq!(
        store.list_resource_servers("main").await.unwrap(),
        std::slice::from_ref(&rs)
    );
    assert!(
        store
            .delete_resource_server("main", "premium-content")
            .await
            .unwrap()
    );
    assert!(
        store
            .list_resource_servers("main")
            .await
            .unwrap()
            .is_empty()
    );

    // refresh tokens
    let rt = RefreshTokenRecord {
        token_hash: SecretBytes(vec![9; 32]),
        pool: "main".into(),
        client_id: "reporting".into(),
        username: "bob".into(),
        scopes: vec!["openid".into()],
        origin_jti: "o-1".into(),
        auth_time: 10,
        created_at: 10,
        expires_at: 1000,
        revoked: false,
    };
    store.insert_refresh_token(&rt).await.unwrap();
    assert!(matches!(
        store.insert_refresh_token(&rt).await,
        Err(StoreError::Conflict(_))
    ));
    let mut orphan = rt.clone();
    orphan.token_hash = SecretBytes(vec![8; 32]);
    orphan.client_id = "nope".into();
    assert!(matches!(
        store.insert_refresh_token(&orphan).await,
        Err(StoreError::NotFound(_))
    ));
    assert_eq!(
        store.get_refresh_token(&[9; 32]).await.unwrap(),
        Some(rt.clone())
    );
    assert!(store.revoke_refresh_token(&[9; 32]).await.unwrap());
    assert!(!store.revoke_refresh_token(&[9; 32]).await.unwrap());
    assert!(
        store
            .get_refresh_token(&[9; 32])
            .await
            .unwrap()
            .unwrap()
            .revoked
    );
    let mut rt2 = rt.clone();
    rt2.token_hash = SecretBytes(vec![7; 32]);
    rt2.expires_at = 50;
    store.insert_refresh_token(&rt2).await.unwrap();
    assert_eq!(
        store
            .revoke_user_refresh_tokens("main", "bob")
            .await
            .unwrap(),
        1
    );
    // deleting the user deletes its refresh tokens
    assert!(store.delete_user("main", "bob").await.unwrap());
    assert!(!store.delete_user("main", "bob").await.unwrap());
    assert_eq!(store.get_refresh_token(&[9; 32]).await.unwrap(), None);

    // revoked sessions + pruning
    store.revoke_session("main", "o-1", 5, 100).await.unwrap();
    store.revoke_session("main", "o-1", 6, 100).await.unwrap();
    assert!(store.is_session_revoked("o-1").await.unwrap());
    assert!(!store.is_session_revoked("o-2").await.unwrap());
    let mut rt3 = rt.clone();
    rt3.username = "carol".into();
    rt3.expires_at = 50;
    store.insert_refresh_token(&rt3).await.unwrap();
    assert_eq!(store.prune_expired(60).await.unwrap(), 1);
    assert!(store.is_session_revoked("o-1").await.unwrap());
    assert_eq!(store.prune_expired(101).await.unwrap(), 1);
    assert!(!store.is_session_revoked("o-1").await.unwrap());

    // signing keys
    let k1 = SigningKeyRecord {
        kid: "k1".into(),
        pool: "main".into(),
        pkcs8: SecretBytes(vec![1; 64]),
        created_at: 0,
        activates_at: 0,
        retired_at: None,
    };
    let k2 = SigningKeyRecord {
        kid: "k2".into(),
        created_at: 10,
        activates_at: 20,
        ..k1.clone()
    };
    // one current (unretired) key per pool: a second is refused, so that nodes starting at
    // once agree on the first key
    let k1 = SigningKeyRecord {
        retired_at: Some(20),
        ..k1
    };
    store.insert_signing_key(&k2).await.unwrap();
    assert!(matches!(
        store
            .insert_signing_key(&SigningKeyRecord {
                kid: "k3".into(),
                ..k2.clone()
            })
            .await,
        Err(StoreError::Conflict(_))
    ));
    store.insert_signing_key(&k1).await.unwrap();
    assert_eq!(
        store.list_signing_keys("main").await.unwrap(),
        [k1.clone(), k2.clone()]
    );
    assert_eq!(store.retire_signing_keys("main", 20).await.unwrap(), 1);
    assert_eq!(store.retire_signing_keys("main", 30).await.unwrap(), 0);
    assert_eq!(
        store
            .delete_signing_keys_retired_before("main", 20)
            .await
            .unwrap(),
        0
    );
    assert_eq!(
        store
            .delete_signing_keys_retired_before("main", 21)
            .await
            .unwrap(),
        2
    );
    assert!(store.list_signing_keys("main").await.unwrap().is_empty());

    // client deletion cascades to its refresh tokens
    let mut rt4 = rt.clone();
    rt4.username = "carol".into();
    store.insert_refresh_token(&rt4).await.unwrap();
    assert!(store.delete_client("reporting").await.unwrap());
    assert_eq!(store.get_refresh_token(&[9; 32]).await.unwrap(), None);

    revocation_events(store.as_ref()).await;
}

/// The revocation log: increasing ids, paging by id, pruning by age, ids never reused.
/// A user's SRP verifier: kept by create and update, set once for the password it was computed
/// from (`set_srp_verifier`), cleared with the password.
async fn srp_verifiers(store: &dyn Store, alice: &UserRecord) {
    let verifier = |b: u8| crate::srp::Verifier {
        salt: vec![0x10 + b; 16],
        verifier: vec![b; 384],
    };
    let mut carol = user("main", "carol", "33333333-3333-4333-8333-333333333333");
    carol.srp = Some(verifier(1));
    store.create_user(&carol).await.expect("store");
    assert_eq!(
        store.get_user("main", "carol").await.expect("store"),
        Some(carol.clone())
    );
    // a user created before verifiers: NULL columns read as none, set once for its password
    let mut dave = user("main", "dave", "44444444-4444-4444-8444-444444444444");
    store.create_user(&dave).await.expect("store");
    assert_eq!(
        store
            .get_user("main", "dave")
            .await
            .expect("store")
            .expect("user")
            .srp,
        None
    );
    let hash = dave.password_hash.clone().expect("store");
    assert!(
        !store
            .set_srp_verifier("main", "dave", "$another", &verifier(2))
            .await
            .expect("store")
    );
    assert!(
        store
            .set_srp_verifier("main", "dave", &hash, &verifier(2))
            .await
            .expect("store")
    );
    assert!(
        !store
            .set_srp_verifier("main", "dave", &hash, &verifier(3))
            .await
            .expect("store")
    );
    assert!(
        !store
            .set_srp_verifier("main", "nobody", &hash, &verifier(3))
            .await
            .expect("store")
    );
    dave.srp = Some(verifier(2));
    assert_eq!(
        store.get_user("main", "dave").await.expect("store"),
        Some(dave.clone())
    );
    // update_user writes it like every other field
    dave.srp = None;
    store.update_user(&dave).await.expect("store");
    assert_eq!(
        store
            .get_user("main", "dave")
            .await
            .expect("store")
            .expect("user")
            .srp,
        None
    );
    carol.srp = Some(verifier(4));
    store.update_user(&carol).await.expect("store");
    assert_eq!(
        store.get_user("main", "carol").await.expect("store"),
        Some(carol)
    );
    // nobody else's row changed
    assert_eq!(
        store
            .get_user("main", "alice")
            .await
            .expect("store")
            .expect("user")
            .srp,
        alice.srp
    );
    for name in ["carol", "dave"] {
        assert!(store.delete_user("main", name).await.expect("store"));
    }
}

async fn revocation_events(store: &dyn Store) {
    assert_eq!(store.last_revocation_event_id().await.unwrap(), 0);
    assert!(
        store
            .revocation_events_after(0, 10)
            .await
            .unwrap()
            .is_empty()
    );
    let event = |subject: RevokedSubject, writer: &str, created_at: i64| RevocationEventRecord {
        id: 0,
        pool: "main".into(),
        subject,
        writer: writer.into(),
        created_at,
    };
    let mut written = vec![
        event(
            RevokedSubject::Session {
                origin_jti: "o-9".into(),
            },
            "w1",
            100,
        ),
        event(
            RevokedSubject::User {
                sub: "11111111-1111-4111-8111-111111111111".into(),
                before: i64::MAX,
            },
            "w2",
            200,
        ),
        event(
            RevokedSubject::User {
                sub: "11111111-1111-4111-8111-111111111111".into(),
                before: 150,
            },
            "w1",
            300,
        ),
    ];
    let mut last = 0;
    for e in &mut written {
        e.id = store.insert_revocation_event(e).await.unwrap();
        assert!(e.id > last, "ids increase");
        last = e.id;
    }
    assert_eq!(store.last_revocation_event_id().await.unwrap(), last);
    assert_eq!(store.revocation_events_after(0, 10).await.unwrap(), written);
    assert_eq!(
        store
            .revocation_events_after(written[0].id, 1)
            .await
            .unwrap(),
        [written[1].clone()]
    );
    assert!(
        store
            .revocation_events_after(last, 10)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(store.prune_revocation_events(200).await.unwrap(), 1);
    assert_eq!(
        store.revocation_events_after(0, 10).await.unwrap(),
        written[1..]
    );
    assert_eq!(store.prune_revocation_events(1000).await.unwrap(), 2);
    assert_eq!(store.last_revocation_event_id().await.unwrap(), 0);
    // an emptied log does not hand out an id a reader may already have passed
    let again = store.insert_revocation_event(&written[0]).await.unwrap();
    assert!(again > last, "{again} > {last}");
}

#[tokio::test]
async fn sqlite_memory_store() {
    suite(open("sqlite::memory:").await.unwrap()).await;
}

#[tokio::test]
async fn sqlite_file_store_uses_wal_and_persists() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("idp.db").display());
    suite(open(&url).await.unwrap()).await;
    // reopened: data is there, migrations not re-applied
    let store = open(&url).await.unwrap();
    store.migrate().await.unwrap();
    assert_eq!(store.list_groups("main").await.unwrap(), ["members"]);
    assert!(dir.path().join("idp.db-wal").exists());
}

#[tokio::test]
async fn unsupported_url() {
    assert!(matches!(
        open("mysql://x").await,
        Err(StoreError::UnsupportedUrl)
    ));
}

// ---- throwaway PostgreSQL ------------------------------------------------------------------

fn find_pg_bin(name: &str) -> Option<PathBuf> {
    if let Ok(dir) = std::env::var("PG_BIN") {
        let p = Path::new(&dir).join(name);
        if p.exists() {
            return Some(p);
        }
    }
    for dir in std::env::var("PATH").unwrap_or_default().split(':') {
        let p = Path::new(dir).join(name);
        if p.exists() {
            return Some(p);
        }
    }
    let mut versions: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path().join("bin").join(name)))
        .filter(|p| p.exists())
        .collect();
    versions.sort();
    versions.pop()
}

/// A PostgreSQL server in a temp dir on 127.0.0.1:port; stopped and deleted on drop.
pub(crate) struct TempPostgres {
    dir: tempfile::TempDir,
    pg_ctl: PathBuf,
    as_postgres: bool,
    pub(crate) url: String,
}

fn run(cmd: &Path, args: &[&str], as_postgres: bool) -> std::io::Result<std::process::Output> {
    if as_postgres {
        // initdb refuses to run as root
        Command::new("runuser")
            .arg("-u")
            .arg("postgres")
            .arg("--")
            .arg(cmd)
            .args(args)
            .output()
    } else {
        Command::new(cmd).args(args).output()
    }
}

impl TempPostgres {
    /// Starts a server, or `None` (after printing SKIP) when PostgreSQL is not installed.
    pub(crate) async fn start(test: &str) -> Option<Self> {
        let (Some(initdb), Some(pg_ctl)) = (find_pg_bin("initdb"), find_pg_bin("pg_ctl")) else {
            println!("SKIP {test}: initdb/pg_ctl not found (install postgresql)");
            return None;
        };
        let as_postgres = Command::new("id")
            .arg("-u")
            .output()
            .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0");
        let dir = tempfile::Builder::new()
            .prefix("portcullis-pg-")
            .tempdir()
            .unwrap();
        if as_postgres {
            let status = Command::new("chown")
                .arg("-R")
                .arg("postgres")
                .arg(dir.path())
                .status()
                .unwrap();
            assert!(status.success());
        }
        let data = dir.path().join("data");
        let out = run(
            &initdb,
            &[
                "-D",
                data.to_str().unwrap(),
                "-U",
                "postgres",
                "--auth=trust",
                "--no-sync",
                "-E",
                "UTF8",
            ],
            as_postgres,
        )
        .unwrap();
        assert!(
            out.status.success(),
            "initdb: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let opts = format!(
            "-p {port} -k {} -c listen_addresses=127.0.0.1 -c fsync=off",
            dir.path().display()
        );
        let log = dir.path().join("log");
        let out = run(
            &pg_ctl,
            &[
                "-D",
                data.to_str().unwrap(),
                "-o",
                &opts,
                "-l",
                log.to_str().unwrap(),
                "-w",
                "start",
            ],
            as_postgres,
        )
        .unwrap();
        let server = TempPostgres {
            dir,
            pg_ctl,
            as_postgres,
            url: format!("postgres://postgres@127.0.0.1:{port}/portcullis_test"),
        };
        assert!(
            out.status.success(),
            "pg_ctl start: {} {}",
            String::from_utf8_lossy(&out.stdout),
            std::fs::read_to_string(&log).unwrap_or_default()
        );
        let admin = PgStore::connect(&format!("postgres://postgres@127.0.0.1:{port}/postgres"))
            .await
            .unwrap();
        sqlx::query("CREATE DATABASE portcullis_test")
            .execute(&admin.pool)
            .await
            .unwrap();
        admin.pool.close().await;
        Some(server)
    }
}

impl Drop for TempPostgres {
    fn drop(&mut self) {
        let data = self.dir.path().join("data");
        let _ = run(
            &self.pg_ctl,
            &[
                "-D",
                data.to_str().unwrap_or_default(),
                "-m",
                "immediate",
                "stop",
            ],
            self.as_postgres,
        );
    }
}

#[tokio::test]
async fn postgres_store() {
    let Some(pg) = TempPostgres::start("postgres_store").await else {
        return;
    };
    let store = open(&pg.url).await.unwrap();
    suite(Arc::clone(&store)).await;
    drop(store);
}

// ---- lockout counters and sessions ------------------------------------------------------------

/// Lockout compare-and-swap, refresh-token rotation and session revocation, on one backend.
async fn session_suite(store: Arc<dyn Store>) {
    store.migrate().await.unwrap();
    store.upsert_pool("main", 1).await.unwrap();
    store
        .upsert_client(&client("main", "app"), 1)
        .await
        .unwrap();
    let bob = user("main", "bob", "33333333-3333-4333-8333-333333333333");
    store.create_user(&bob).await.unwrap();

    // lockout: the swap only lands on the state it expects
    let fresh = LockState {
        failures: 0,
        locked_until: None,
        changed_at: 100,
    };
    let one = LockState {
        failures: 1,
        locked_until: None,
        changed_at: 200,
    };
    let locked = LockState {
        failures: 5,
        locked_until: Some(201),
        changed_at: 200,
    };
    assert!(
        store
            .swap_lock_state("main", "bob", &fresh, &one)
            .await
            .unwrap()
    );
    assert!(
        !store
            .swap_lock_state("main", "bob", &fresh, &one)
            .await
            .unwrap()
    );
    assert!(
        !store
            .swap_lock_state("main", "ghost", &fresh, &one)
            .await
            .unwrap()
    );
    assert!(
        store
            .swap_lock_state("main", "bob", &one, &locked)
            .await
            .unwrap()
    );
    let row = store.get_user("main", "bob").await.unwrap().unwrap();
    assert_eq!(
        (row.failed_attempts, row.locked_until, row.updated_at),
        (5, Some(201), 200)
    );
    let stale = LockState {
        locked_until: None,
        ..locked
    };
    assert!(
        !store
            .swap_lock_state("main", "bob", &stale, &one)
            .await
            .unwrap()
    );
    store.clear_lock_state("main", "bob", 300).await.unwrap();
    let row = store.get_user("main", "bob").await.unwrap().unwrap();
    assert_eq!((row.failed_attempts, row.locked_until), (0, None));

    // rotation: the old token is swapped for the new one once
    let token = |hash: u8, origin: &str| RefreshTokenRecord {
        token_hash: SecretBytes(vec![hash; 32]),
        pool: "main".into(),
        client_id: "app".into(),
        username: "bob".into(),
        scopes: vec![],
        origin_jti: origin.into(),
        auth_time: 10,
        created_at: 10,
        expires_at: 1000,
        revoked: false,
    };
    store.insert_refresh_token(&token(1, "s-1")).await.unwrap();
    assert!(
        store
            .rotate_refresh_token(&[1; 32], "app", 20, &token(2, "s-1"))
            .await
            .unwrap()
    );
    assert!(
        !store
            .rotate_refresh_token(&[1; 32], "app", 20, &token(3, "s-1"))
            .await
            .unwrap(),
        "a used token rotates no more"
    );
    assert_eq!(store.get_refresh_token(&[3; 32]).await.unwrap(), None);
    assert!(
        !store
            .rotate_refresh_token(&[2; 32], "other", 20, &token(3, "s-1"))
            .await
            .unwrap(),
        "another client's token"
    );
    assert!(
        !store
            .rotate_refresh_token(&[2; 32], "app", 1000, &token(3, "s-1"))
            .await
            .unwrap(),
        "an expired token"
    );
    assert!(
        store
            .get_refresh_token(&[1; 32])
            .await
            .unwrap()
            .unwrap()
            .revoked
    );
    assert!(
        !store
            .get_refresh_token(&[2; 32])
            .await
            .unwrap()
            .unwrap()
            .revoked
    );
    // the live token of the session is revoked once
    assert_eq!(
        store
            .revoke_live_family("main", "bob", "s-1")
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        store
            .revoke_live_family("main", "bob", "s-1")
            .await
            .unwrap(),
        0
    );

    // a session's family, then every session of the user but one
    store.insert_refresh_token(&token(4, "s-2")).await.unwrap();
    store.insert_refresh_token(&token(5, "s-2")).await.unwrap();
    store.insert_refresh_token(&token(6, "s-3")).await.unwrap();
    store.insert_refresh_token(&token(7, "s-4")).await.unwrap();
    store
        .revoke_session_family("main", "bob", "s-2", 30, 2000)
        .await
        .unwrap();
    assert!(store.is_session_revoked("s-2").await.unwrap());
    for hash in [4, 5] {
        assert!(
            store
                .get_refresh_token(&[hash; 32])
                .await
                .unwrap()
                .unwrap()
                .revoked
        );
    }
    assert!(
        !store
            .get_refresh_token(&[6; 32])
            .await
            .unwrap()
            .unwrap()
            .revoked
    );
    let mut ended = store
        .revoke_user_sessions("main", "bob", Some("s-4"), 40, 2000)
        .await
        .unwrap();
    ended.sort();
    // s-2 was revoked already; s-4 is kept
    assert_eq!(ended, ["s-1", "s-3"]);
    assert!(store.is_session_revoked("s-3").await.unwrap());
    assert!(!store.is_session_revoked("s-4").await.unwrap());
    for hash in [6, 7] {
        assert!(
            store
                .get_refresh_token(&[hash; 32])
                .await
                .unwrap()
                .unwrap()
                .revoked
        );
    }
    let ended = store
        .revoke_user_sessions("main", "bob", None, 50, 2000)
        .await
        .unwrap();
    assert_eq!(ended, ["s-4"]);
}

#[tokio::test]
async fn sqlite_session_store() {
    session_suite(open("sqlite::memory:").await.unwrap()).await;
}

#[tokio::test]
async fn postgres_session_store() {
    let Some(pg) = TempPostgres::start("postgres_session_store").await else {
        return;
    };
    let store = open(&pg.url).await.unwrap();
    session_suite(Arc::clone(&store)).await;
    drop(store);
}

// ---- TOTP MFA ----------------------------------------------------------------------------

mod mfa;

#[tokio::test]
async fn sqlite_mfa_store() {
    mfa::mfa_suite(open("sqlite::memory:").await.expect("store")).await;
}

#[tokio::test]
async fn postgres_mfa_store() {
    let Some(pg) = TempPostgres::start("postgres_mfa_store").await else {
        return;
    };
    let store = open(&pg.url).await.expect("store");
    mfa::mfa_suite(Arc::clone(&store)).await;
    drop(store);
}

// ---- sign-in steps ------------------------------------------------------------------------

mod steps;

#[tokio::test]
async fn sqlite_sign_in_steps() {
    steps::steps_suite(open("sqlite::memory:").await.unwrap()).await;
}

#[tokio::test]
async fn postgres_sign_in_steps() {
    let Some(pg) = TempPostgres::start("postgres_sign_in_steps").await else {
        return;
    };
    let store = open(&pg.url).await.unwrap();
    steps::steps_suite(Arc::clone(&store)).await;
    drop(store);
}

// ---- groups with details, pool summaries ------------------------------------------------------

mod directory;

#[tokio::test]
async fn sqlite_directory() {
    directory::directory_suite(open("sqlite::memory:").await.expect("store")).await;
}

#[tokio::test]
async fn postgres_directory() {
    let Some(pg) = TempPostgres::start("postgres_directory").await else {
        return;
    };
    let store = open(&pg.url).await.expect("store");
    directory::directory_suite(Arc::clone(&store)).await;
    drop(store);
}
