use std::time::Duration;

use serde_json::json;

use super::claims::{Request, build};

fn request(claims: Option<&str>) -> Request<'_> {
    Request {
        claims,
        issuer: "my-app",
        audience: None,
        subject: None,
        ttl: Duration::from_secs(3600),
        now: 1_700_000_000,
    }
}

#[test]
fn claims_get_issuer_and_times_added() {
    let got = build(&request(Some(r#"{"userId":"u1","firstName":"Ada"}"#))).expect("valid");
    assert_eq!(
        serde_json::Value::Object(got),
        json!({"userId": "u1", "firstName": "Ada", "iss": "my-app", "iat": 1_700_000_000,
               "exp": 1_700_003_600})
    );
    let with_flags = build(&Request {
        subject: Some("s-1"),
        audience: Some("chat"),
        ..request(None)
    })
    .expect("valid");
    assert_eq!(with_flags["sub"], "s-1");
    assert_eq!(with_flags["aud"], "chat");
}

#[test]
fn bad_claims_and_conflicts_are_refused() {
    let long = format!(r#"{{"x":"{}"}}"#, "a".repeat(9000));
    let cases: [(Request<'_>, &str); 7] = [
        (request(Some("{not json")), "not valid JSON"),
        (request(Some(r#"["a"]"#)), "must be a JSON object"),
        (request(Some(r#""u1""#)), "must be a JSON object"),
        (request(Some(r#"{"exp":1}"#)), "\"exp\""),
        (request(Some(&long)), "larger than"),
        (
            Request {
                subject: Some("s"),
                ..request(Some(r#"{"sub":"t"}"#))
            },
            "\"sub\"",
        ),
        (
            Request {
                ttl: Duration::ZERO,
                ..request(None)
            },
            "--ttl",
        ),
    ];
    for (r, want) in cases {
        let got = build(&r).expect_err("refused");
        assert!(got.contains(want), "{got:?} lacks {want:?}");
    }
}
