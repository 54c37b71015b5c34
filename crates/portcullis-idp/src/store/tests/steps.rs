//! The sign-in step tables on one backend: caps, eviction, expiry, one-time use, pruning.

use std::net::IpAddr;
use std::sync::Arc;

use crate::pending::challenges::Challenged;
use crate::pending::confirmation::{CodeEntry, Limits};
use crate::pending::{PendingError, PendingLimits};
use crate::store::{
    AuthCodeRow, ChallengeRow, CodeRedemption, ConfirmationKey, PendingRequestRow, Store,
    StoreError,
};

fn request(id: u8, pool: &str, holder: Option<&str>, expires_at: i64) -> PendingRequestRow {
    PendingRequestRow {
        id_hash: vec![id; 32],
        pool: pool.into(),
        holder: holder.map(str::to_owned),
        body: format!("{{\"n\":{id}}}"),
        expires_at,
    }
}

async fn pending_requests(store: &dyn Store) {
    let limits = PendingLimits {
        per_client: 2,
        per_pool: 4,
        total: 6,
        ttl_secs: 600,
    };
    let insert = |row: PendingRequestRow, now: i64| async move {
        store
            .insert_pending_request(&row, &limits, now)
            .await
            .unwrap()
    };
    assert_eq!(
        insert(request(1, "main", Some("10.0.0.1"), 700), 100).await,
        Ok(0)
    );
    assert_eq!(
        store.pending_request(&[1; 32], "main", 100).await.unwrap(),
        Some("{\"n\":1}".into())
    );
    assert_eq!(
        store.pending_request(&[1; 32], "other", 100).await.unwrap(),
        None
    );
    assert_eq!(
        store.pending_request(&[1; 32], "main", 700).await.unwrap(),
        None
    );
    assert!(
        store
            .update_pending_request(&[1; 32], "main", "{\"n\":10}", 100)
            .await
            .unwrap()
    );
    // a client at its cap is refused, and keeps its requests
    assert_eq!(
        insert(request(2, "main", Some("10.0.0.1"), 700), 100).await,
        Ok(0)
    );
    assert_eq!(
        insert(request(3, "main", Some("10.0.0.1"), 700), 100).await,
        Err(PendingError::ClientFull)
    );
    // unknown addresses have no cap; a full pool evicts the oldest of the largest holder
    assert_eq!(insert(request(4, "main", None, 700), 101).await, Ok(0));
    assert_eq!(
        insert(request(5, "main", Some("10.0.0.2"), 700), 102).await,
        Ok(0)
    );
    assert_eq!(
        insert(request(6, "main", Some("10.0.0.3"), 700), 103).await,
        Ok(1)
    );
    assert_eq!(
        store.pending_request(&[1; 32], "main", 103).await.unwrap(),
        None
    );
    assert!(
        store
            .pending_request(&[2; 32], "main", 103)
            .await
            .unwrap()
            .is_some()
    );
    // the total bounds both pools together; another pool's requests count there too
    assert_eq!(
        insert(request(7, "other", Some("10.0.0.1"), 700), 104).await,
        Ok(0)
    );
    assert_eq!(
        insert(request(8, "other", Some("10.0.0.1"), 700), 104).await,
        Ok(0)
    );
    assert_eq!(
        insert(request(9, "other", Some("10.0.0.4"), 700), 105).await,
        Ok(1)
    );
    assert_eq!(store.count_pending_requests().await.unwrap(), 6);
    // taken once, by one caller; expired ones are not handed out
    assert!(
        store
            .take_pending_request(&[2; 32], "other", 105)
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        store
            .take_pending_request(&[2; 32], "main", 105)
            .await
            .unwrap()
            .is_some()
    );
    assert!(
        store
            .take_pending_request(&[2; 32], "main", 105)
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        store
            .take_pending_request(&[4; 32], "main", 700)
            .await
            .unwrap()
            .is_none()
    );
    // expired requests make room before anything is evicted, and are pruned
    assert_eq!(
        insert(request(11, "main", Some("10.0.0.9"), 1400), 800).await,
        Ok(0)
    );
    assert_eq!(store.count_pending_requests().await.unwrap(), 1);
    store.prune_sign_in_steps(1400).await.unwrap();
    assert_eq!(store.count_pending_requests().await.unwrap(), 0);
}

fn code(n: u8, client: &str, expires_at: i64) -> AuthCodeRow {
    AuthCodeRow {
        code_hash: vec![n; 32],
        pool: "main".into(),
        client_id: client.into(),
        body: "{}".into(),
        expires_at,
    }
}

async fn authorization_codes(store: &dyn Store) {
    let redeem = |n: u8, client: &'static str, now: i64| async move {
        store
            .redeem_authorization_code(&[n; 32], "main", client, now)
            .await
            .unwrap()
    };
    assert!(
        store
            .issue_authorization_code(&code(1, "web", 400), 2, 100)
            .await
            .unwrap()
    );
    // another client's attempt does not burn it
    assert_eq!(redeem(1, "other", 100).await, CodeRedemption::Unknown);
    assert_eq!(
        redeem(1, "web", 100).await,
        CodeRedemption::Fresh("{}".into())
    );
    assert!(
        store
            .record_code_issued(&[1; 32], b"refresh")
            .await
            .unwrap()
    );
    assert_eq!(
        redeem(1, "web", 101).await,
        CodeRedemption::Replayed(Some(b"refresh".to_vec()))
    );
    assert_eq!(redeem(1, "web", 102).await, CodeRedemption::Replayed(None));
    // replayed before what it issued was recorded: nothing may be recorded any more
    assert!(
        store
            .issue_authorization_code(&code(2, "web", 500), 2, 200)
            .await
            .unwrap()
    );
    assert!(matches!(
        redeem(2, "web", 200).await,
        CodeRedemption::Fresh(_)
    ));
    assert_eq!(redeem(2, "web", 200).await, CodeRedemption::Replayed(None));
    assert!(!store.record_code_issued(&[2; 32], b"late").await.unwrap());
    // the table is bounded; expired codes make room
    assert!(
        !store
            .issue_authorization_code(&code(3, "web", 600), 2, 300)
            .await
            .unwrap()
    );
    assert!(
        store
            .issue_authorization_code(&code(3, "web", 700), 2, 400)
            .await
            .unwrap()
    );
    assert_eq!(
        redeem(1, "web", 400).await,
        CodeRedemption::Unknown,
        "pruned"
    );
    assert_eq!(redeem(3, "web", 700).await, CodeRedemption::Expired);
    assert_eq!(redeem(3, "web", 700).await, CodeRedemption::Unknown);
}

async fn challenge_sessions(store: &dyn Store) {
    let who = |user: &str| Challenged {
        pool: "main".into(),
        client_id: "web".into(),
        username: user.into(),
    };
    let row = |n: u8, expires_at: i64| ChallengeRow {
        session_hash: vec![n; 32],
        who: who("frank"),
        expires_at,
    };
    assert!(
        store
            .open_challenge_session(&row(1, 280), 2, 100)
            .await
            .unwrap()
    );
    assert!(
        store
            .open_challenge_session(&row(2, 380), 2, 200)
            .await
            .unwrap()
    );
    assert!(
        !store
            .open_challenge_session(&row(3, 390), 2, 210)
            .await
            .unwrap()
    );
    assert!(
        store
            .challenge_session_live(&[1; 32], &who("frank"), 279)
            .await
            .unwrap()
    );
    assert!(
        !store
            .challenge_session_live(&[1; 32], &who("eve"), 100)
            .await
            .unwrap()
    );
    assert!(
        !store
            .challenge_session_live(&[1; 32], &who("frank"), 280)
            .await
            .unwrap()
    );
    // the expired session makes room
    assert!(
        store
            .open_challenge_session(&row(3, 470), 2, 290)
            .await
            .unwrap()
    );
    // the same hash again (an SRP block answered twice): refused, on every backend
    assert!(matches!(
        store.open_challenge_session(&row(3, 480), 3, 290).await,
        Err(StoreError::Conflict(_))
    ));
    assert!(store.end_challenge_session(&[2; 32]).await.unwrap());
    assert!(
        !store.end_challenge_session(&[2; 32]).await.unwrap(),
        "ended once"
    );
    assert!(
        !store
            .challenge_session_live(&[2; 32], &who("frank"), 290)
            .await
            .unwrap()
    );
}

const LIMITS: Limits = Limits {
    attempts_per_code: 5,
    codes_per_window: 5,
    failures_per_window: 10,
    window_secs: 3600,
    lock_secs: 3600,
    codes_per_client: 3,
    max_entries: 3,
};

fn key(username: &str) -> ConfirmationKey<'_> {
    ConfirmationKey {
        pool: "main",
        username,
        purpose: "forgot_password",
    }
}

async fn confirmation_codes(store: &dyn Store) {
    let origin: IpAddr = "10.0.0.1".parse().unwrap();
    let issued = |now: i64| {
        let mut e = CodeEntry::default();
        e.store(&LIMITS, vec![7; 32], now + 100, Some(origin), now, false);
        e
    };
    let put = |user: &'static str, e: CodeEntry, version: Option<i64>| async move {
        store
            .put_confirmation_entry(key(user), &e, e.dead_from(&LIMITS), version)
            .await
            .unwrap()
    };
    assert!(put("a", issued(0), None).await);
    assert!(!put("a", issued(0), None).await, "inserted once");
    let row = store.confirmation_entry(key("a")).await.unwrap().unwrap();
    assert_eq!(row.entry, issued(0));
    // compare-and-swap: a stale version loses
    let mut changed = row.entry.clone();
    assert!(changed.check(&LIMITS, &[1; 32], 1).is_err());
    assert!(put("a", changed.clone(), Some(row.version)).await);
    assert!(!put("a", changed.clone(), Some(row.version)).await);
    let row = store.confirmation_entry(key("a")).await.unwrap().unwrap();
    assert_eq!(row.entry, changed, "the wrong guess was kept");
    // the client's live codes, except the entry's own
    assert!(put("b", issued(2), None).await);
    assert_eq!(
        store.client_live_codes(key("a"), origin, 2).await.unwrap(),
        1
    );
    assert_eq!(
        store.client_live_codes(key("c"), origin, 2).await.unwrap(),
        2
    );
    assert_eq!(
        store
            .client_live_codes(key("c"), origin, 102)
            .await
            .unwrap(),
        0
    );
    // a full pool evicts the least recently used entry without wrong guesses ("b", not "a")
    assert!(put("c", issued(3), None).await);
    assert_eq!(
        store
            .make_room_for_confirmation("main", 3, 3600, 4)
            .await
            .unwrap(),
        1
    );
    assert!(store.confirmation_entry(key("a")).await.unwrap().is_some());
    assert!(store.confirmation_entry(key("b")).await.unwrap().is_none());
    // entries that carry nothing any more are pruned
    store.prune_sign_in_steps(3600 + 200).await.unwrap();
    assert!(store.confirmation_entry(key("c")).await.unwrap().is_none());
}

pub(super) async fn steps_suite(store: Arc<dyn Store>) {
    store.migrate().await.unwrap();
    pending_requests(store.as_ref()).await;
    authorization_codes(store.as_ref()).await;
    challenge_sessions(store.as_ref()).await;
    confirmation_codes(store.as_ref()).await;
}
