use super::*;

const GEN: u32 = 0xab;

fn log(per_principal: usize, max_bytes: usize) -> ReplayLog<&'static str> {
    ReplayLog::new(GEN, per_principal, max_bytes)
}

fn id(seq: u64) -> String {
    super::super::EventId::logged(GEN, seq).to_string()
}

fn seqs(snapshot: &Snapshot<&str>) -> Vec<u64> {
    snapshot.events.iter().map(|(seq, _)| *seq).collect()
}

#[test]
fn a_new_stream_starts_live_and_a_resumed_one_gets_what_it_missed() {
    let mut l = log(10, 1 << 20);
    assert_eq!(l.record("alice", "a1", 2).0, 1);
    assert_eq!(l.record("bob", "b1", 2).0, 2);
    assert_eq!(l.record("alice", "a2", 2).0, 3);

    let fresh = l.snapshot(Some("alice"), None);
    assert_eq!(
        fresh,
        Snapshot {
            generation: GEN,
            reset: false,
            from: 3,
            events: vec![],
            position: 3
        }
    );
    let resumed = l.snapshot(Some("alice"), Some(&id(1)));
    assert!(!resumed.reset);
    assert_eq!(resumed.from, 1);
    assert_eq!(resumed.events, [(3, "a2")]);
    // An id of a topic event carries the same place in the sequence.
    let after_live = l.snapshot(Some("alice"), Some("000000ab-1.4"));
    assert_eq!(after_live.events, [(3, "a2")]);
    // Pushes made before the principal ever connected are kept too.
    let bob = l.snapshot(Some("bob"), Some(&id(0)));
    assert_eq!((bob.reset, seqs(&bob)), (false, vec![2]));
}

#[test]
fn an_id_of_another_log_or_too_old_resets_and_replays_what_is_left() {
    let mut l = log(2, 1 << 20);
    for payload in ["1", "2", "3"] {
        l.record("alice", payload, 1);
    }
    // Push 1 fell out of alice's log: an id before it may have missed it.
    let old = l.snapshot(Some("alice"), Some(&id(0)));
    assert_eq!((old.reset, old.from, seqs(&old)), (true, 1, vec![2, 3]));
    let ok = l.snapshot(Some("alice"), Some(&id(1)));
    assert_eq!((ok.reset, seqs(&ok)), (false, vec![2, 3]));
    let other = l.snapshot(Some("alice"), Some("000000ac-2"));
    assert_eq!((other.reset, seqs(&other)), (true, vec![2, 3]));
    // An anonymous stream has nothing logged; only a foreign id resets it.
    let anonymous = l.snapshot(None, Some(&id(2)));
    assert_eq!((anonymous.reset, seqs(&anonymous)), (false, vec![]));
    assert!(l.snapshot(None, Some("x")).reset);
}

#[test]
fn replay_zero_keeps_nothing_but_still_knows_a_gap() {
    let mut l = log(0, 1 << 20);
    l.record("alice", "1", 1);
    assert!(!l.snapshot(Some("alice"), Some(&id(1))).reset);
    l.record("alice", "2", 1);
    let gap = l.snapshot(Some("alice"), Some(&id(1)));
    assert_eq!((gap.reset, seqs(&gap)), (true, vec![]));
}

#[test]
fn the_principal_pushed_to_least_recently_goes_first_when_bytes_run_out() {
    let per_principal_cost = |name: &str, payloads: usize| {
        PRINCIPAL_OVERHEAD + 2 * name.len() + payloads * (100 + EVENT_OVERHEAD)
    };
    // Room for three principals with one push each.
    let max = 3 * per_principal_cost("p0", 1);
    let mut l = log(10, max);
    for p in ["p0", "p1", "p2"] {
        assert_eq!(l.record(p, "x", 100).1, 0);
    }
    assert_eq!(l.bytes(), max);
    // p0 is pushed to again, so p1 is now the quietest.
    let (_, evicted) = l.record("p0", "y", 100);
    assert_eq!(evicted, 1);
    assert_eq!(l.principals(), 2);
    assert!(l.bytes() <= max);
    assert_eq!(seqs(&l.snapshot(Some("p0"), Some(&id(0)))), [1, 4]);
    // p1 lost its log: any id before the eviction resets; a principal that never had a log
    // resets for the same reason (its pushes may have been in an evicted log).
    let p1 = l.snapshot(Some("p1"), Some(&id(2)));
    assert_eq!((p1.reset, seqs(&p1)), (true, vec![]));
    assert!(l.snapshot(Some("never"), Some(&id(3))).reset);
    assert!(!l.snapshot(Some("never"), Some(&id(4))).reset);
}

#[test]
fn a_flood_to_new_principals_stays_within_the_bound() {
    let max = 64 * 1024;
    let mut l = log(1000, max);
    let mut evicted = 0;
    for i in 0..10_000 {
        let name = format!("user-{i}");
        evicted += l.record(&name, "payload", 200).1;
        assert!(l.bytes() <= max, "after {i}: {}", l.bytes());
    }
    assert!(evicted > 9_000);
    assert!(l.principals() < 300);
    // The latest principals are still there. Their logs began after an eviction, which may
    // have taken earlier pushes to them: only ids from then on resume without a reset.
    let last = l.snapshot(Some("user-9999"), Some(&id(9_999)));
    assert_eq!((last.reset, seqs(&last)), (false, vec![10_000]));
    let before = l.snapshot(Some("user-9999"), Some(&id(9_998)));
    assert_eq!((before.reset, seqs(&before)), (true, vec![10_000]));
}

#[test]
fn one_principal_alone_over_the_bound_drops_its_own_oldest() {
    let cost = |n: usize| PRINCIPAL_OVERHEAD + 2 + n * (1000 + EVENT_OVERHEAD);
    let mut l = log(100, cost(3));
    for _ in 0..5 {
        l.record("a", "x", 1000);
        assert!(l.bytes() <= cost(3));
    }
    let snapshot = l.snapshot(Some("a"), Some(&id(0)));
    assert_eq!((snapshot.reset, seqs(&snapshot)), (true, vec![3, 4, 5]));
}
