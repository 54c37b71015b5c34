//! The TOTP MFA tables on one backend: sealed secrets kept as given, verification, preference,
//! steps spent once (also by parallel callers), the wrong-code compare-and-swap, MFA sessions
//! (cap, failures, one end), and rows going with their user.

use std::sync::Arc;

use super::{client, user};
use crate::pending::challenges::Challenged;
use crate::store::{LockState, MfaChallenge, MfaSessionRow, Store, StoreError};

fn who(username: &str) -> Challenged {
    Challenged {
        pool: "main".into(),
        client_id: "app".into(),
        username: username.into(),
    }
}

fn session(id: u8, username: &str, kind: MfaChallenge, expires_at: i64) -> MfaSessionRow {
    MfaSessionRow {
        session_hash: vec![id; 32],
        who: who(username),
        kind,
        expires_at,
    }
}

/// The suite every backend must pass.
pub(super) async fn mfa_suite(store: Arc<dyn Store>) {
    store.migrate().await.expect("migrate");
    store.upsert_pool("main", 1).await.expect("pool");
    store
        .upsert_client(&client("main", "app"), 1)
        .await
        .expect("client");
    let ivy = user("main", "ivy", "44444444-4444-4444-8444-444444444444");
    store.create_user(&ivy).await.expect("user");

    // nothing until a token is associated; an unknown user cannot get one
    assert!(store.user_mfa("main", "ivy").await.expect("read").is_none());
    assert!(matches!(
        store.put_pending_totp("main", "nobody", b"sealed", 1).await,
        Err(StoreError::NotFound(_))
    ));
    store
        .put_pending_totp("main", "ivy", b"sealed-1", 10)
        .await
        .expect("pending");
    let row = store
        .user_mfa("main", "ivy")
        .await
        .expect("read")
        .expect("row");
    assert_eq!(row.pending_secret.as_deref(), Some(&b"sealed-1"[..]));
    assert!(row.secret.is_none() && !row.enabled && row.last_step == -1);
    assert!(!format!("{row:?}").contains("sealed-1"));
    // no verified token: preferences do not stick
    assert!(
        !store
            .set_totp_preference("main", "ivy", true, true, 11)
            .await
            .expect("preference")
    );
    // a newer association replaces the pending one; confirming the old one fails
    store
        .put_pending_totp("main", "ivy", b"sealed-2", 12)
        .await
        .expect("pending");
    assert!(
        !store
            .confirm_totp("main", "ivy", b"sealed-1", 100, false, 13)
            .await
            .expect("confirm")
    );
    assert!(
        store
            .confirm_totp("main", "ivy", b"sealed-2", 100, false, 13)
            .await
            .expect("confirm")
    );
    let row = store
        .user_mfa("main", "ivy")
        .await
        .expect("read")
        .expect("row");
    assert_eq!(row.secret.as_deref(), Some(&b"sealed-2"[..]));
    assert!(row.pending_secret.is_none() && !row.enabled);
    assert_eq!(row.last_step, 100);
    assert!(
        store
            .set_totp_preference("main", "ivy", true, true, 14)
            .await
            .expect("preference")
    );

    // a step is spent once, only after the last one, only for the current secret
    assert!(
        !store
            .spend_totp_step("main", "ivy", b"sealed-2", 100, 15)
            .await
            .expect("spend")
    );
    assert!(
        !store
            .spend_totp_step("main", "ivy", b"other", 101, 15)
            .await
            .expect("spend")
    );
    let spends = (0..8).map(|_| {
        let store = Arc::clone(&store);
        tokio::spawn(async move {
            store
                .spend_totp_step("main", "ivy", b"sealed-2", 101, 16)
                .await
                .expect("spend")
        })
    });
    let mut won = 0;
    for spend in spends {
        if spend.await.expect("task") {
            won += 1;
        }
    }
    assert_eq!(won, 1, "of parallel spends of one step exactly one wins");
    let row = store
        .user_mfa("main", "ivy")
        .await
        .expect("read")
        .expect("row");
    assert_eq!(row.last_step, 101);
    assert!(row.enabled && row.preferred);

    // the wrong-code count: compare-and-swap on the version, cleared by a spent step
    let one = LockState {
        failures: 1,
        locked_until: None,
        changed_at: 20,
    };
    assert!(
        store
            .swap_totp_lock("main", "ivy", row.version, &one)
            .await
            .expect("swap")
    );
    assert!(
        !store
            .swap_totp_lock("main", "ivy", row.version, &one)
            .await
            .expect("stale swap")
    );
    let row = store
        .user_mfa("main", "ivy")
        .await
        .expect("read")
        .expect("row");
    assert_eq!(row.lock, one);
    assert!(
        store
            .spend_totp_step("main", "ivy", b"sealed-2", 102, 21)
            .await
            .expect("spend")
    );
    let row = store
        .user_mfa("main", "ivy")
        .await
        .expect("read")
        .expect("row");
    assert_eq!(row.lock.failures, 0);
    assert_eq!(row.lock.locked_until, None);

    // sessions: bounded, bound to their user, failures counted, ended once
    let soft = session(1, "ivy", MfaChallenge::SoftwareToken, 500);
    assert!(store.open_mfa_session(&soft, 2, 100).await.expect("open"));
    assert!(
        store
            .open_mfa_session(&session(2, "ivy", MfaChallenge::Setup, 500), 2, 100)
            .await
            .expect("open")
    );
    assert!(
        !store
            .open_mfa_session(&session(3, "ivy", MfaChallenge::Setup, 500), 2, 100)
            .await
            .expect("full")
    );
    let (issued_to, state) = store
        .mfa_session(&[1; 32], 100)
        .await
        .expect("read")
        .expect("live");
    assert_eq!(issued_to, who("ivy"));
    assert_eq!(state.kind, MfaChallenge::SoftwareToken);
    assert_eq!((state.failures, state.verified), (0, false));
    assert!(
        store
            .mfa_session(&[1; 32], 500)
            .await
            .expect("read")
            .is_none()
    );
    assert_eq!(
        store.fail_mfa_session(&[1; 32], 2).await.expect("fail"),
        Some(1)
    );
    assert_eq!(
        store.fail_mfa_session(&[1; 32], 2).await.expect("fail"),
        Some(2)
    );
    assert!(
        store
            .mfa_session(&[1; 32], 100)
            .await
            .expect("read")
            .is_none()
    );
    assert_eq!(
        store.fail_mfa_session(&[1; 32], 2).await.expect("fail"),
        None
    );
    assert!(store.verify_mfa_session(&[2; 32]).await.expect("verify"));
    let (_, state) = store
        .mfa_session(&[2; 32], 100)
        .await
        .expect("read")
        .expect("live");
    assert!(state.verified && state.kind == MfaChallenge::Setup);
    assert!(store.end_mfa_session(&[2; 32]).await.expect("end"));
    assert!(!store.end_mfa_session(&[2; 32]).await.expect("end"));
    // expired sessions make room
    assert!(
        store
            .open_mfa_session(&session(4, "ivy", MfaChallenge::Setup, 150), 1, 100)
            .await
            .expect("open")
    );
    assert!(
        store
            .open_mfa_session(&session(5, "ivy", MfaChallenge::Setup, 500), 1, 200)
            .await
            .expect("room after expiry")
    );

    // an administrator forgets the token
    assert!(store.delete_user_mfa("main", "ivy").await.expect("forget"));
    assert!(!store.delete_user_mfa("main", "ivy").await.expect("forget"));
    assert!(store.user_mfa("main", "ivy").await.expect("read").is_none());

    // the row goes with its user
    store
        .put_pending_totp("main", "ivy", b"sealed-3", 30)
        .await
        .expect("pending");
    assert!(store.delete_user("main", "ivy").await.expect("delete"));
    assert!(store.user_mfa("main", "ivy").await.expect("read").is_none());
}
