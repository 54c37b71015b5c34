#![allow(clippy::unwrap_used)]

use std::sync::Arc;

use futures_util::FutureExt;

use super::*;

fn text(s: &str) -> Outbound {
    Outbound::Text(s.into())
}

fn popped_text(queue: &OutboundQueue) -> Option<String> {
    match queue.pop()? {
        Outbound::Text(s) => Some(s.as_str().to_owned()),
        other => panic!("expected a text frame, got {other:?}"),
    }
}

#[test]
fn items_come_out_in_the_order_they_were_queued() {
    let queue = OutboundQueue::new(8);
    assert!(queue.is_empty());
    queue.try_push(text("a")).unwrap();
    queue
        .try_push(Outbound::Binary(Bytes::from_static(b"b")))
        .unwrap();
    queue.try_push(text("c")).unwrap();
    assert!(!queue.is_empty());
    assert_eq!(popped_text(&queue).as_deref(), Some("a"));
    assert!(matches!(queue.pop(), Some(Outbound::Binary(b)) if b == "b"));
    assert_eq!(popped_text(&queue).as_deref(), Some("c"));
    assert!(queue.pop().is_none());
    assert!(queue.is_empty());
}

#[test]
fn try_push_at_capacity_is_full_until_the_session_pops() {
    let queue = OutboundQueue::new(2);
    queue.try_push(text("1")).unwrap();
    queue.try_push(text("2")).unwrap();
    assert_eq!(queue.try_push(text("3")), Err(SendError::Full));
    assert_eq!(popped_text(&queue).as_deref(), Some("1"));
    queue.try_push(text("3")).unwrap();
    assert_eq!(queue.try_push(text("4")), Err(SendError::Full));
    // The refused items were not queued.
    assert_eq!(popped_text(&queue).as_deref(), Some("2"));
    assert_eq!(popped_text(&queue).as_deref(), Some("3"));
    assert!(queue.pop().is_none());
}

#[test]
fn a_capacity_of_zero_holds_one_item() {
    let queue = OutboundQueue::new(0);
    queue.try_push(text("only")).unwrap();
    assert_eq!(queue.try_push(text("more")), Err(SendError::Full));
}

#[test]
fn a_queued_item_wakes_the_session() {
    let queue = OutboundQueue::new(2);
    assert!(queue.ready().now_or_never().is_none(), "nothing queued yet");
    queue.try_push(text("a")).unwrap();
    assert!(queue.ready().now_or_never().is_some());
}

#[test]
fn push_waits_for_room_and_is_woken_when_the_session_pops() {
    let queue = OutboundQueue::new(1);
    queue.try_push(text("first")).unwrap();
    let mut waiting = Box::pin(queue.push(text("second")));
    assert!((&mut waiting).now_or_never().is_none(), "the queue is full");
    assert!((&mut waiting).now_or_never().is_none(), "still full");

    assert_eq!(popped_text(&queue).as_deref(), Some("first"));
    assert_eq!((&mut waiting).now_or_never(), Some(Ok(())));
    assert_eq!(popped_text(&queue).as_deref(), Some("second"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_waiting_senders_all_get_through_in_turn() {
    let queue = Arc::new(OutboundQueue::new(2));
    let senders: Vec<_> = (0..20)
        .map(|i| {
            let queue = queue.clone();
            tokio::spawn(async move { queue.push(text(&i.to_string())).await })
        })
        .collect();
    let mut received = Vec::new();
    while received.len() < 20 {
        queue.ready().await;
        while let Some(item) = queue.pop() {
            let Outbound::Text(s) = item else {
                panic!("expected text");
            };
            received.push(s.parse::<u32>().unwrap());
        }
    }
    for sender in senders {
        assert_eq!(sender.await.unwrap(), Ok(()));
    }
    received.sort_unstable();
    assert_eq!(received, (0..20).collect::<Vec<_>>());
    assert!(queue.is_empty());
}

#[test]
fn a_close_frame_is_queued_and_delivered_like_any_other() {
    let queue = OutboundQueue::new(2);
    queue.try_push(text("last words")).unwrap();
    queue.try_push(Outbound::Close(Close::Deleted)).unwrap();
    assert_eq!(popped_text(&queue).as_deref(), Some("last words"));
    assert!(matches!(queue.pop(), Some(Outbound::Close(Close::Deleted))));
    assert!(
        !queue.is_killed(),
        "a close frame is a handshake, not a kill"
    );
}

#[test]
fn close_refuses_every_later_push_and_keeps_what_was_queued() {
    let queue = OutboundQueue::new(2);
    queue.try_push(text("queued")).unwrap();
    queue.close();
    assert_eq!(queue.try_push(text("late")), Err(SendError::Gone));
    assert_eq!(
        queue.push(text("late")).now_or_never(),
        Some(Err(SendError::Gone))
    );
    assert_eq!(popped_text(&queue).as_deref(), Some("queued"));
    assert!(queue.pop().is_none());
}

#[test]
fn close_wakes_a_sender_waiting_for_room_with_gone() {
    let queue = OutboundQueue::new(1);
    queue.try_push(text("first")).unwrap();
    let mut waiting = Box::pin(queue.push(text("second")));
    assert!((&mut waiting).now_or_never().is_none());
    queue.close();
    assert_eq!((&mut waiting).now_or_never(), Some(Err(SendError::Gone)));
}

#[test]
fn kill_wakes_the_session_which_then_closes_the_queue() {
    let queue = OutboundQueue::new(1);
    queue.try_push(text("first")).unwrap();
    let mut waiting = Box::pin(queue.push(text("second")));
    assert!((&mut waiting).now_or_never().is_none());
    // The session has been told about the first frame and waits for news.
    assert!(queue.ready().now_or_never().is_some());
    assert!(queue.ready().now_or_never().is_none());

    assert!(!queue.is_killed());
    queue.kill();
    assert!(queue.is_killed());
    assert!(
        queue.ready().now_or_never().is_some(),
        "a kill wakes the session even though nothing new was queued"
    );
    // Until the session ends, a kill alone neither drops nor refuses anything...
    assert!((&mut waiting).now_or_never().is_none());
    assert!(!queue.is_empty());
    // ...the session sees `is_killed`, drops the connection and closes its queue: the waiting
    // sender and every later one are told the connection is gone.
    queue.close();
    assert_eq!((&mut waiting).now_or_never(), Some(Err(SendError::Gone)));
    assert_eq!(queue.try_push(text("later")), Err(SendError::Gone));
}

#[test]
fn a_drained_queue_gives_its_memory_back() {
    let queue = OutboundQueue::new(1000);
    for i in 0..1000 {
        queue.try_push(text(&i.to_string())).unwrap();
    }
    while queue.pop().is_some() {}
    let kept = queue.items.lock().unwrap().capacity();
    assert!(kept <= KEEP_CAPACITY, "kept {kept}");
}

#[test]
fn send_errors_are_the_callers_fault() {
    assert_eq!(SendError::Gone.fault(), Fault::Client);
    assert_eq!(SendError::Full.fault(), Fault::Client);
}
