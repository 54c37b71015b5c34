#![allow(clippy::unwrap_used)]

use super::*;

const ISSUER: &str = "http://idp/pools/main";

pub(super) fn node() -> NodeId {
    NodeId(7)
}

pub(super) fn session(sub: &str, origin_jti: Option<&str>) -> LiveSession {
    LiveSession {
        issuer: ISSUER.into(),
        sub: sub.into(),
        origin_jti: origin_jti.map(str::to_owned),
        iat: 100,
    }
}

pub(super) fn handle(
    principal: Option<&str>,
    session: Option<LiveSession>,
) -> Arc<ConnectionHandle> {
    let mut handle = ConnectionHandle::new(
        ConnectionId::generate(node()),
        Arc::from("chat"),
        1,
        "127.0.0.1".into(),
        "test".into(),
        principal.map(str::to_owned),
        4,
    );
    handle.session = session;
    Arc::new(handle)
}

fn user_key(sub: &str) -> SessionKey {
    SessionKey::User {
        issuer: ISSUER.into(),
        sub: sub.into(),
    }
}

fn origin_key(origin_jti: &str) -> SessionKey {
    SessionKey::Origin {
        issuer: ISSUER.into(),
        origin_jti: origin_jti.into(),
    }
}

pub(super) fn sorted(mut ids: Vec<ConnectionId>) -> Vec<ConnectionId> {
    ids.sort();
    ids
}

fn ids_of(found: Vec<SessionConnection>) -> Vec<ConnectionId> {
    sorted(found.into_iter().map(|c| c.id).collect())
}

/// The ids of `principal`'s connections of API `chat`, sorted.
async fn principal_ids(registry: &LocalRegistry, principal: &str) -> Vec<ConnectionId> {
    let found = registry.by_principal("chat", principal).await.unwrap();
    sorted(found.into_iter().map(|c| c.id).collect())
}

pub(super) fn assert_indexes_empty(registry: &LocalRegistry) {
    assert_eq!(registry.local_count(), 0);
    assert_eq!(registry.principals.keys(), 0, "principal index");
    assert_eq!(registry.topics.keys(), 0, "topic index");
    assert_eq!(registry.sessions.keys(), 0, "session index");
}

#[tokio::test]
async fn connections_are_found_by_principal() {
    let registry = LocalRegistry::new(node());
    let alice_1 = handle(Some("alice"), None);
    let alice_2 = handle(Some("alice"), None);
    let bob = handle(Some("bob"), None);
    let anonymous = handle(None, None);
    for h in [&alice_1, &alice_2, &bob, &anonymous] {
        registry.register(h.clone());
    }
    assert_eq!(
        principal_ids(&registry, "alice").await,
        sorted(vec![alice_1.id, alice_2.id])
    );
    // Principals are per API: the same principal of another API is another user.
    assert!(
        registry
            .by_principal("other", "alice")
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(principal_ids(&registry, "bob").await, vec![bob.id]);
    assert!(principal_ids(&registry, "carol").await.is_empty());
    assert!(principal_ids(&registry, "").await.is_empty());
    assert_eq!(registry.local_count(), 4);
}

#[tokio::test]
async fn connections_are_found_by_user_and_by_sign_in() {
    let registry = LocalRegistry::new(node());
    let first = handle(None, Some(session("u-1", Some("o-1"))));
    let second = handle(None, Some(session("u-1", Some("o-2"))));
    let no_origin = handle(None, Some(session("u-1", None)));
    let other_user = handle(None, Some(session("u-2", Some("o-3"))));
    let no_session = handle(Some("u-1"), None);
    for h in [&first, &second, &no_origin, &other_user, &no_session] {
        registry.register(h.clone());
    }
    assert_eq!(
        ids_of(registry.by_session(&user_key("u-1")).await),
        sorted(vec![first.id, second.id, no_origin.id])
    );
    let by_origin = registry.by_session(&origin_key("o-2")).await;
    assert_eq!(
        by_origin,
        vec![SessionConnection {
            id: second.id,
            session: session("u-1", Some("o-2")),
        }]
    );
    assert_eq!(
        ids_of(registry.by_session(&origin_key("o-3")).await),
        vec![other_user.id]
    );
    let other_pool = SessionKey::User {
        issuer: "http://other/pools/main".into(),
        sub: "u-1".into(),
    };
    assert!(registry.by_session(&other_pool).await.is_empty());
    assert!(registry.by_session(&origin_key("u-1")).await.is_empty());
}

#[tokio::test]
async fn unregistering_removes_every_index_entry() {
    let registry = LocalRegistry::new(node());
    let kept = handle(Some("alice"), Some(session("u-1", Some("o-1"))));
    let gone = handle(Some("alice"), Some(session("u-1", Some("o-2"))));
    registry.register(kept.clone());
    registry.register(gone.clone());
    registry.unregister(&gone.id);

    assert_eq!(principal_ids(&registry, "alice").await, vec![kept.id]);
    assert_eq!(
        ids_of(registry.by_session(&user_key("u-1")).await),
        vec![kept.id]
    );
    assert!(registry.by_session(&origin_key("o-2")).await.is_empty());
    assert!(registry.info(&gone.id).await.is_err());
    // One principal, one user and one sign-in left: the keys of the gone one were dropped.
    assert_eq!(registry.principals.keys(), 1);
    assert_eq!(registry.sessions.keys(), 2);

    registry.unregister(&kept.id);
    // Unregistering twice, or an id never registered, changes nothing.
    registry.unregister(&kept.id);
    registry.unregister(&ConnectionId::generate(node()));
    assert!(principal_ids(&registry, "alice").await.is_empty());
    assert_indexes_empty(&registry);
}

#[tokio::test]
async fn registering_an_id_again_replaces_its_index_entries() {
    let registry = LocalRegistry::new(node());
    let first = handle(Some("alice"), Some(session("u-1", Some("o-1"))));
    let mut again = ConnectionHandle::new(
        first.id,
        Arc::from("chat"),
        2,
        "127.0.0.1".into(),
        "test".into(),
        Some("bob".into()),
        4,
    );
    again.session = Some(session("u-2", None));
    registry.register(first.clone());
    registry.register(Arc::new(again));

    assert_eq!(registry.local_count(), 1);
    assert!(principal_ids(&registry, "alice").await.is_empty());
    assert_eq!(principal_ids(&registry, "bob").await, vec![first.id]);
    assert!(registry.by_session(&user_key("u-1")).await.is_empty());
    assert!(registry.by_session(&origin_key("o-1")).await.is_empty());
    assert_eq!(
        ids_of(registry.by_session(&user_key("u-2")).await),
        vec![first.id]
    );
    registry.unregister(&first.id);
    assert_indexes_empty(&registry);
}

#[test]
fn concurrent_registers_and_unregisters_leave_every_index_empty() {
    const THREADS: usize = 8;
    const PER_THREAD: usize = 300;
    let registry = LocalRegistry::new(node());
    std::thread::scope(|scope| {
        for t in 0..THREADS {
            let registry = &registry;
            scope.spawn(move || {
                let mut live = Vec::new();
                for i in 0..PER_THREAD {
                    // Few distinct keys, so threads keep adding to and taking from the same
                    // index entries.
                    let principal = format!("p-{}", i % 5);
                    let origin = format!("o-{}", (i + t) % 3);
                    let h = handle(
                        Some(&principal),
                        Some(session(&format!("u-{}", i % 4), Some(&origin))),
                    );
                    registry.register(h.clone());
                    live.push(h.id);
                    if i % 3 == 2 {
                        // Unregister out of order with registers still to come.
                        let id = live.remove(live.len() / 2);
                        registry.unregister(&id);
                    }
                }
                for id in live {
                    registry.unregister(&id);
                }
            });
        }
    });
    assert_indexes_empty(&registry);
}

#[test]
fn concurrent_registers_are_all_indexed() {
    const THREADS: usize = 8;
    const PER_THREAD: usize = 100;
    let registry = LocalRegistry::new(node());
    let all: Vec<Vec<Arc<ConnectionHandle>>> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..THREADS)
            .map(|t| {
                let registry = &registry;
                scope.spawn(move || {
                    (0..PER_THREAD)
                        .map(|i| {
                            let h = handle(
                                Some("shared"),
                                Some(session("u-1", Some(&format!("o-{t}-{i}")))),
                            );
                            registry.register(h.clone());
                            h
                        })
                        .collect()
                })
            })
            .collect();
        workers.into_iter().map(|w| w.join().unwrap()).collect()
    });
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    rt.block_on(async {
        assert_eq!(registry.local_count(), THREADS * PER_THREAD);
        assert_eq!(
            principal_ids(&registry, "shared").await.len(),
            THREADS * PER_THREAD
        );
        assert_eq!(
            registry.by_session(&user_key("u-1")).await.len(),
            THREADS * PER_THREAD
        );
        assert_eq!(
            registry.by_session(&origin_key("o-3-42")).await.len(),
            1,
            "one sign-in, one connection"
        );
    });
    std::thread::scope(|scope| {
        for handles in &all {
            let registry = &registry;
            scope.spawn(move || {
                for h in handles {
                    registry.unregister(&h.id);
                }
            });
        }
    });
    assert_indexes_empty(&registry);
}

#[tokio::test]
async fn close_queues_a_close_frame_or_kills_a_full_queue() {
    let registry = LocalRegistry::new(node());
    let h = handle(None, None);
    registry.register(h.clone());
    registry.close(&h.id, Close::Deleted).await.unwrap();
    assert!(matches!(
        h.queue.pop(),
        Some(Outbound::Close(Close::Deleted))
    ));
    assert!(!h.queue.is_killed());

    for i in 0..4 {
        registry
            .post(&h.id, Outbound::Text(i.to_string().into()))
            .await
            .unwrap();
    }
    assert_eq!(
        registry.post(&h.id, Outbound::Text("5".into())).await,
        Err(SendError::Full)
    );
    registry.close(&h.id, Close::Deleted).await.unwrap();
    assert!(
        h.queue.is_killed(),
        "a full queue is closed without the handshake"
    );

    registry.unregister(&h.id);
    assert_eq!(
        registry.close(&h.id, Close::Deleted).await,
        Err(SendError::Gone)
    );
    assert_eq!(
        registry.post(&h.id, Outbound::Text("x".into())).await,
        Err(SendError::Gone)
    );
}
