#![allow(clippy::unwrap_used)]

use std::sync::Arc;

use portcullis_core::close::Close;
use portcullis_core::id::{ConnectionId, NodeId};

use super::*;
use crate::outbound::Outbound;
use crate::registry::{ConnectionHandle, LocalRegistry};
use crate::session_key::{self, LiveSession};

const ISSUER: &str = "http://idp/pools/main";

fn session() -> LiveSession {
    LiveSession {
        issuer: ISSUER.into(),
        sub: "u-1".into(),
        origin_jti: Some("o-1".into()),
        iat: 100,
    }
}

fn session_revoked(origin_jti: &str) -> Revocation {
    Revocation::Session {
        issuer: ISSUER.into(),
        origin_jti: origin_jti.into(),
    }
}

fn user_revoked(sub: &str, before: i64) -> Revocation {
    Revocation::User {
        issuer: ISSUER.into(),
        sub: sub.into(),
        before,
    }
}

/// The index lookup never misses: every session a revocation covers is filed under the key
/// the revocation is looked up by.
#[test]
fn every_covered_session_is_filed_under_the_revocations_key() {
    let issuers = [ISSUER, "http://other/pools/main"];
    let subs = ["u-1", "u-2", ""];
    let origins = [None, Some("o-1"), Some("o-2")];
    let mut sessions = Vec::new();
    for issuer in issuers {
        for sub in subs {
            for origin in origins {
                for iat in [0, 100, 200] {
                    sessions.push(LiveSession {
                        issuer: issuer.into(),
                        sub: sub.into(),
                        origin_jti: origin.map(str::to_owned),
                        iat,
                    });
                }
            }
        }
    }
    let mut revocations = Vec::new();
    for issuer in issuers {
        for origin in ["o-1", "o-2", "o-3"] {
            revocations.push(Revocation::Session {
                issuer: issuer.into(),
                origin_jti: origin.into(),
            });
        }
        for sub in subs {
            for before in [0, 100, 150, i64::MAX] {
                revocations.push(Revocation::User {
                    issuer: issuer.into(),
                    sub: sub.into(),
                    before,
                });
            }
        }
    }
    let mut covered = 0;
    for revocation in &revocations {
        let key = index_key(revocation);
        for session in &sessions {
            if revocation.covers(session) {
                covered += 1;
                assert!(
                    session_key::keys(session).any(|k| k == key),
                    "{session:?} is covered by {revocation:?} but not filed under {key:?}"
                );
            }
        }
    }
    assert!(covered > 0);
}

fn connect(registry: &LocalRegistry, session: Option<LiveSession>) -> Arc<ConnectionHandle> {
    let mut handle = ConnectionHandle::new(
        ConnectionId::generate(registry.node()),
        Arc::from("chat"),
        1,
        "127.0.0.1".into(),
        "test".into(),
        None,
        2,
    );
    handle.session = session;
    let handle = Arc::new(handle);
    registry.register(handle.clone());
    handle
}

fn was_closed_as_revoked(handle: &ConnectionHandle) -> bool {
    match handle.queue.pop() {
        Some(Outbound::Close(close)) => {
            assert_eq!(close, Close::Revoked);
            assert_eq!((close.code(), close.reason()), (1008, "Token revoked"));
            assert!(handle.queue.pop().is_none());
            true
        }
        None => false,
        Some(other) => panic!("unexpected {other:?}"),
    }
}

fn with(sub: &str, origin_jti: Option<&str>, iat: i64) -> Option<LiveSession> {
    Some(LiveSession {
        issuer: ISSUER.into(),
        sub: sub.into(),
        origin_jti: origin_jti.map(str::to_owned),
        iat,
    })
}

#[tokio::test]
async fn a_signed_out_session_closes_exactly_its_connections() {
    let registry = LocalRegistry::new(NodeId(1));
    let signed_out = connect(&registry, with("u-1", Some("o-1"), 100));
    let same_sign_in = connect(&registry, with("u-1", Some("o-1"), 150));
    let other_sign_in = connect(&registry, with("u-1", Some("o-2"), 100));
    let other_user = connect(&registry, with("u-2", Some("o-3"), 100));
    let no_session = connect(&registry, None);

    assert_eq!(close_revoked(&registry, &session_revoked("o-1")).await, 2);
    assert!(was_closed_as_revoked(&signed_out));
    assert!(was_closed_as_revoked(&same_sign_in));
    for untouched in [&other_sign_in, &other_user, &no_session] {
        assert!(!was_closed_as_revoked(untouched));
    }
}

#[tokio::test]
async fn a_revoked_user_closes_the_connections_of_tokens_issued_before() {
    let registry = LocalRegistry::new(NodeId(1));
    let old = connect(&registry, with("u-1", Some("o-1"), 100));
    let old_without_origin = connect(&registry, with("u-1", None, 149));
    let newer = connect(&registry, with("u-1", Some("o-2"), 150));
    let other_user = connect(&registry, with("u-2", Some("o-3"), 100));
    let no_session = connect(&registry, None);

    assert_eq!(close_revoked(&registry, &user_revoked("u-1", 150)).await, 2);
    assert!(was_closed_as_revoked(&old));
    assert!(was_closed_as_revoked(&old_without_origin));
    for untouched in [&newer, &other_user, &no_session] {
        assert!(!was_closed_as_revoked(untouched));
    }
}

#[tokio::test]
async fn a_connection_gone_before_the_revocation_is_not_counted() {
    let registry = LocalRegistry::new(NodeId(1));
    let gone = connect(&registry, with("u-1", Some("o-1"), 100));
    registry.unregister(&gone.id);
    assert_eq!(close_revoked(&registry, &session_revoked("o-1")).await, 0);
    assert!(!was_closed_as_revoked(&gone));
}

#[tokio::test]
async fn an_announced_revocation_is_closed_by_the_watcher() {
    let registry = Arc::new(LocalRegistry::new(NodeId(1)));
    let revoked = connect(&registry, with("u-1", Some("o-1"), 100));
    let kept = connect(&registry, with("u-1", Some("o-2"), 100));
    let (announce, revocations) = broadcast::channel(4);
    let shutdown = CancellationToken::new();
    let watcher = tokio::spawn(watch(revocations, registry.clone(), shutdown.clone()));

    announce.send(session_revoked("o-1")).unwrap();
    revoked.queue.ready().await;
    assert!(was_closed_as_revoked(&revoked));
    shutdown.cancel();
    watcher.await.unwrap();
    assert!(!was_closed_as_revoked(&kept));
}
