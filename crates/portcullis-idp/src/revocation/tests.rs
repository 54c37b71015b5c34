use super::*;

const ISSUER: &str = "http://idp/pools/main";

fn session(origin_jti: Option<&str>) -> LiveSession {
    LiveSession {
        issuer: ISSUER.into(),
        sub: "u-1".into(),
        origin_jti: origin_jti.map(str::to_owned),
        iat: 100,
    }
}

fn of_session(issuer: &str, origin_jti: &str) -> Revocation {
    Revocation::Session {
        issuer: issuer.into(),
        origin_jti: origin_jti.into(),
    }
}

fn of_user(issuer: &str, sub: &str, before: i64) -> Revocation {
    Revocation::User {
        issuer: issuer.into(),
        sub: sub.into(),
        before,
    }
}

#[test]
fn revocations_cover_only_their_session_or_user() {
    let table = [
        (of_session(ISSUER, "o-1"), Some("o-1"), true, "its session"),
        (
            of_session(ISSUER, "o-2"),
            Some("o-1"),
            false,
            "another session",
        ),
        (
            of_session("http://other/pools/main", "o-1"),
            Some("o-1"),
            false,
            "another issuer's session",
        ),
        (
            of_session(ISSUER, "o-1"),
            None,
            false,
            "a token without a session",
        ),
        (of_user(ISSUER, "u-1", 101), Some("o-1"), true, "its user"),
        (
            of_user(ISSUER, "u-1", 101),
            None,
            true,
            "its user, no session",
        ),
        (
            of_user(ISSUER, "u-1", 100),
            Some("o-1"),
            false,
            "issued after the sign-out",
        ),
        (
            of_user(ISSUER, "u-2", i64::MAX),
            Some("o-1"),
            false,
            "another user",
        ),
        (
            of_user("http://other/pools/main", "u-1", i64::MAX),
            Some("o-1"),
            false,
            "another issuer's user",
        ),
    ];
    for (revocation, origin_jti, covered, why) in table {
        assert_eq!(
            revocation.covers(&session(origin_jti)),
            covered,
            "{why}: {revocation:?}"
        );
    }
}
