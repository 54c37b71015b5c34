use super::*;
use crate::sse::EventId;

const GEN: u32 = 0x00c0_ffee;
const HOUR: u64 = RETENTION_MS;

fn id(seq: u64) -> String {
    EventId::logged(GEN, seq).to_string()
}

/// Redis at `now_ms` with sequence `current`, marks `marks`, `events` for the principal.
fn stored(now_ms: u64, current: u64, marks: &[(u64, u64)], events: &[u64]) -> Stored<u64> {
    Stored {
        generation: GEN,
        current,
        trimmed: None,
        now_ms,
        marks: marks.to_vec(),
        events: events.iter().map(|s| (*s, *s)).collect(),
    }
}

fn seqs(snapshot: &Snapshot<u64>) -> Vec<u64> {
    snapshot.events.iter().map(|(seq, _)| *seq).collect()
}

#[test]
fn the_horizon_is_the_first_mark_of_the_retention_window() {
    let now = 10 * HOUR;
    let slice = |ms: u64| ms / SLICE_MS;
    let cases: &[(&[(u64, u64)], u64)] = &[
        // No marks: nothing pushed for a long time, every log may be gone.
        (&[], 900),
        // Only marks older than the window: the same.
        (&[(slice(now - 2 * HOUR), 10)], 900),
        // A slice that starts before the window does not bound it; the next one does.
        (
            &[
                (slice(now - HOUR - 1), 100),
                (slice(now - HOUR) + 1, 200),
                (slice(now), 800),
            ],
            200,
        ),
        // In any order.
        (&[(slice(now), 800), (slice(now - HOUR / 2), 500)], 500),
    ];
    for (marks, want) in cases {
        assert_eq!(horizon(marks, now, 900), *want, "{marks:?}");
    }
}

#[test]
fn a_resumed_stream_gets_what_it_missed_and_a_new_one_starts_live() {
    let now = 10 * HOUR;
    let marks = [(now / SLICE_MS, 40)];
    let resumed = snapshot(stored(now, 60, &marks, &[52, 57]), true, Some(&id(50)));
    assert!(!resumed.reset);
    assert_eq!((resumed.from, resumed.position), (50, 60));
    assert_eq!(seqs(&resumed), [52, 57]);

    let fresh = snapshot(stored(now, 60, &marks, &[]), true, None);
    assert!(!fresh.reset);
    assert_eq!((fresh.from, fresh.position, seqs(&fresh)), (60, 60, vec![]));

    // The id of a live event (`.n`) resumes at its sequence number too.
    let live = EventId::live(GEN, 55, 3).to_string();
    let resumed = snapshot(stored(now, 60, &marks, &[57]), true, Some(&live));
    assert!(!resumed.reset);
    assert_eq!(seqs(&resumed), [57]);
}

#[test]
fn an_id_before_the_trimmed_floor_is_reset_and_gets_what_is_kept() {
    let now = 10 * HOUR;
    let mut log = stored(now, 60, &[(now / SLICE_MS, 1)], &[52, 57, 59]);
    log.trimmed = Some(50);
    // The client saw 50 (the latest trimmed): everything it missed is kept.
    let at_floor = snapshot(log.clone(), true, Some(&id(50)));
    assert!(!at_floor.reset);
    assert_eq!(seqs(&at_floor), [52, 57, 59]);
    let before = snapshot(log, true, Some(&id(49)));
    assert!(before.reset);
    assert_eq!((before.from, seqs(&before)), (50, vec![52, 57, 59]));
}

#[test]
fn an_id_older_than_the_retention_is_reset_even_without_a_log() {
    let now = 10 * HOUR;
    // Pushes 1..=30 happened more than an hour ago (their logs may have expired); 30 is the
    // mark of the first slice of the window.
    let marks = [(now / SLICE_MS - 2, 30), (now / SLICE_MS, 45)];
    let old = snapshot(stored(now, 60, &marks, &[]), true, Some(&id(20)));
    assert!(old.reset);
    assert_eq!(old.from, 30);
    let recent = snapshot(stored(now, 60, &marks, &[]), true, Some(&id(31)));
    assert!(!recent.reset);
    // Nothing pushed within the retention: only the latest id resumes.
    let quiet = snapshot(stored(now, 60, &[], &[]), true, Some(&id(59)));
    assert!(quiet.reset);
    let latest = snapshot(stored(now, 60, &[], &[]), true, Some(&id(60)));
    assert!(!latest.reset);
}

#[test]
fn other_generations_and_foreign_ids_are_reset() {
    let now = 10 * HOUR;
    let marks = [(now / SLICE_MS, 0)];
    let other = EventId::logged(GEN ^ 1, 50).to_string();
    for last in [other.as_str(), "not-an-id", &id(61)] {
        let s = snapshot(stored(now, 60, &marks, &[52, 57]), true, Some(last));
        assert!(s.reset, "{last}");
        assert_eq!(seqs(&s), [52, 57], "{last}");
    }
}

#[test]
fn an_anonymous_stream_has_nothing_logged_and_misses_nothing() {
    let s = snapshot(stored(10 * HOUR, 60, &[], &[]), false, Some(&id(3)));
    assert!(!s.reset);
    assert_eq!((s.from, s.position), (3, 60));
}

#[test]
fn what_a_stream_asks_for() {
    assert_eq!(wanted(None), Wanted::Nothing);
    assert_eq!(
        wanted(Some(&id(7))),
        Wanted::After {
            generation: GEN,
            seq: 7
        }
    );
    assert_eq!(wanted(Some("?")), Wanted::All);
}
