use super::*;

fn who(username: &str) -> Challenged {
    Challenged {
        pool: "main".into(),
        client_id: "web".into(),
        username: username.into(),
    }
}

const NOW: i64 = 1_000_000;

#[test]
fn an_open_session_is_accepted_for_its_user_until_it_expires() {
    let mut book = ChallengeBook::new(10);
    book.open("AYABe-1", who("ann"), NOW).unwrap();
    assert_eq!(book.check("AYABe-1", &who("ann"), NOW), Ok(()));
    let last_second = NOW + SESSION_TTL_SECS - 1;
    assert_eq!(book.check("AYABe-1", &who("ann"), last_second), Ok(()));
    assert_eq!(
        book.check("AYABe-1", &who("ann"), NOW + SESSION_TTL_SECS),
        Err(ChallengeError::Invalid)
    );
}

#[test]
fn a_session_is_bound_to_its_pool_client_and_user() {
    let mut book = ChallengeBook::new(10);
    book.open("s", who("ann"), NOW).unwrap();
    let mut other_pool = who("ann");
    other_pool.pool = "other".into();
    let mut other_client = who("ann");
    other_client.client_id = "mobile".into();
    for stranger in [who("bob"), other_pool, other_client] {
        assert_eq!(
            book.check("s", &stranger, NOW),
            Err(ChallengeError::Invalid),
            "{stranger:?}"
        );
    }
    assert_eq!(
        book.check("unknown", &who("ann"), NOW),
        Err(ChallengeError::Invalid)
    );
}

#[test]
fn a_session_stays_open_until_it_is_ended_and_is_not_accepted_after() {
    let mut book = ChallengeBook::new(10);
    book.open("s", who("ann"), NOW).unwrap();
    // a refused answer (checked, not ended) can be retried
    assert_eq!(book.check("s", &who("ann"), NOW), Ok(()));
    assert_eq!(book.check("s", &who("ann"), NOW + 1), Ok(()));
    book.end("s");
    assert_eq!(
        book.check("s", &who("ann"), NOW + 1),
        Err(ChallengeError::Invalid)
    );
    assert!(book.is_empty());
}

#[test]
fn a_full_book_drops_expired_sessions_and_refuses_only_when_all_are_live() {
    let mut book = ChallengeBook::new(2);
    book.open("a", who("ann"), NOW).unwrap();
    book.open("b", who("bob"), NOW + 10).unwrap();
    assert_eq!(
        book.open("c", who("cat"), NOW + 20),
        Err(ChallengeError::Full)
    );
    assert_eq!(book.len(), 2);
    // "a" has expired by now, "b" has not: "a" makes room
    let later = NOW + SESSION_TTL_SECS;
    book.open("c", who("cat"), later).unwrap();
    assert_eq!(book.len(), 2);
    assert_eq!(
        book.check("a", &who("ann"), later),
        Err(ChallengeError::Invalid)
    );
    assert_eq!(book.check("b", &who("bob"), later), Ok(()));
    assert_eq!(book.check("c", &who("cat"), later), Ok(()));
}

#[test]
fn the_book_keeps_digests_not_session_strings() {
    let mut book = ChallengeBook::new(1);
    book.open("AYABe-secret", who("ann"), NOW).unwrap();
    let dump = format!("{book:?}");
    assert!(!dump.contains("AYABe-secret"), "{dump}");
}

#[test]
fn refusals_are_the_clients_fault() {
    assert_eq!(ChallengeError::Full.fault(), Fault::Client);
    assert_eq!(ChallengeError::Invalid.fault(), Fault::Client);
}
