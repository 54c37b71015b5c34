#![allow(clippy::unwrap_used)]

use super::tests::{assert_indexes_empty, handle, node, sorted};
use super::*;

const LIMITS: TopicLimits = TopicLimits {
    per_connection: 3,
    per_topic: 2,
};

fn topic(name: &str) -> Topic {
    Topic::parse(name).unwrap()
}

async fn subscriber_ids(registry: &LocalRegistry, api: &str, name: &str) -> Vec<ConnectionId> {
    let found = registry.by_topic(api, &topic(name)).await.unwrap();
    sorted(found.into_iter().map(|c| c.id).collect())
}

fn text(message: Option<Outbound>) -> String {
    match message {
        Some(Outbound::Text(t)) => t.as_str().to_owned(),
        other => panic!("expected a text frame, got {other:?}"),
    }
}

#[tokio::test]
async fn subscriptions_are_listed_capped_and_ended_with_the_connection() {
    let registry = LocalRegistry::new(node());
    let a = handle(None, None);
    let b = handle(None, None);
    let c = handle(None, None);
    for h in [&a, &b, &c] {
        registry.register(h.clone());
    }
    registry
        .subscribe(&a.id, &topic("news"), LIMITS)
        .await
        .unwrap();
    // Subscribing twice is one subscription and counts once against the caps.
    registry
        .subscribe(&a.id, &topic("news"), LIMITS)
        .await
        .unwrap();
    registry
        .subscribe(&b.id, &topic("news"), LIMITS)
        .await
        .unwrap();
    assert_eq!(
        subscriber_ids(&registry, "chat", "news").await,
        sorted(vec![a.id, b.id])
    );
    assert!(subscriber_ids(&registry, "other", "news").await.is_empty());
    assert_eq!(
        registry.subscribe(&c.id, &topic("news"), LIMITS).await,
        Err(SubscribeError::TooManySubscribers(2))
    );
    registry
        .subscribe(&a.id, &topic("t2"), LIMITS)
        .await
        .unwrap();
    registry
        .subscribe(&a.id, &topic("t3"), LIMITS)
        .await
        .unwrap();
    assert_eq!(
        registry.subscribe(&a.id, &topic("t4"), LIMITS).await,
        Err(SubscribeError::TooManyTopics(3))
    );
    // A refused subscription left nothing behind.
    assert!(subscriber_ids(&registry, "chat", "t4").await.is_empty());

    registry.unsubscribe(&a.id, &topic("news")).await.unwrap();
    registry.unsubscribe(&a.id, &topic("never")).await.unwrap();
    assert_eq!(subscriber_ids(&registry, "chat", "news").await, vec![b.id]);
    registry
        .subscribe(&c.id, &topic("news"), LIMITS)
        .await
        .unwrap();

    let gone = ConnectionId::generate(node());
    assert_eq!(
        registry.subscribe(&gone, &topic("news"), LIMITS).await,
        Err(SubscribeError::Gone)
    );
    assert_eq!(
        registry.unsubscribe(&gone, &topic("news")).await,
        Err(SendError::Gone)
    );

    for h in [&a, &b, &c] {
        registry.unregister(&h.id);
    }
    assert!(subscriber_ids(&registry, "chat", "news").await.is_empty());
    assert_indexes_empty(&registry);
}

#[tokio::test]
async fn a_push_shares_its_payload_skips_full_queues_and_keeps_order() {
    let registry = LocalRegistry::new(node());
    // Queues hold 4 frames (see `handle`).
    let fast = handle(Some("alice"), None);
    let slow = handle(Some("alice"), None);
    let other = handle(Some("bob"), None);
    for h in [&fast, &slow, &other] {
        registry.register(h.clone());
        registry.subscribe(&h.id, &topic("news"), LIMITS).await.ok();
    }
    for i in 0..4 {
        registry
            .post(&slow.id, Outbound::Text(format!("filler {i}").into()))
            .await
            .unwrap();
    }
    let message = Outbound::Text("to alice".into());
    let fanout = registry
        .push_principal("chat", "alice", &message)
        .await
        .unwrap();
    assert_eq!(
        fanout,
        Fanout {
            delivered: 1,
            full: 1
        }
    );
    assert!(other.queue.is_empty(), "bob got alice's message");

    // The receivers hold the very bytes that were pushed, not copies.
    let Some(Outbound::Text(received)) = fast.queue.pop() else {
        panic!("nothing queued for alice");
    };
    let Outbound::Text(sent) = &message else {
        unreachable!()
    };
    assert_eq!(received.as_str().as_ptr(), sent.as_str().as_ptr());

    // Topic pushes: `news` has fast and slow (2 subscribers, the cap); slow is still full.
    for i in 0..3 {
        let fanout = registry
            .push_topic(
                "chat",
                &topic("news"),
                &Outbound::Text(i.to_string().into()),
            )
            .await
            .unwrap();
        assert_eq!(
            fanout,
            Fanout {
                delivered: 1,
                full: 1
            }
        );
    }
    assert_eq!(
        (0..3).map(|_| text(fast.queue.pop())).collect::<Vec<_>>(),
        ["0", "1", "2"],
        "publish order"
    );
    assert_eq!(
        registry
            .push_topic("chat", &topic("nobody"), &message)
            .await,
        Ok(Fanout::default())
    );
    assert_eq!(
        registry.push_principal("chat", "carol", &message).await,
        Ok(Fanout::default())
    );
}

#[test]
fn concurrent_subscribes_and_unregisters_leave_every_index_empty() {
    const THREADS: usize = 8;
    const PER_THREAD: usize = 200;
    let registry = LocalRegistry::new(node());
    let limits = TopicLimits {
        per_connection: 10,
        per_topic: 100_000,
    };
    std::thread::scope(|scope| {
        for t in 0..THREADS {
            let registry = &registry;
            scope.spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .build()
                    .unwrap();
                for i in 0..PER_THREAD {
                    let h = handle(Some("p"), None);
                    registry.register(h.clone());
                    // Another thread's subscriber of the same topics races with this one.
                    for k in 0..3 {
                        let name = format!("t-{}", (i + k + t) % 4);
                        let _ = rt.block_on(registry.subscribe(&h.id, &topic(&name), limits));
                    }
                    if i % 2 == 0 {
                        let _ = rt.block_on(registry.unsubscribe(&h.id, &topic("t-1")));
                    }
                    registry.unregister(&h.id);
                    // Subscribing after the end finds no connection and files nothing.
                    let late = rt.block_on(registry.subscribe(&h.id, &topic("t-0"), limits));
                    assert_eq!(late, Err(SubscribeError::Gone));
                }
            });
        }
    });
    assert_indexes_empty(&registry);
}
