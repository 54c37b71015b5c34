use super::*;
use portcullis_core::subprotocol::Negotiated;

/// The header rules of `portcullis_core::handshake` are those of the `http` crate the 101 is
/// built with, so every header the core lists reaches the wire.
#[test]
fn the_core_header_rules_agree_with_http() {
    let mut samples: Vec<String> = (0u8..128).map(|b| format!("x{}", b as char)).collect();
    samples.extend(
        [
            "",
            "caf\u{e9}",
            "x-\u{2028}",
            "a b",
            "sec-websocket-protocol",
        ]
        .map(str::to_owned),
    );
    for s in &samples {
        assert_eq!(
            handshake::is_header_name(s),
            header::HeaderName::from_bytes(s.as_bytes()).is_ok(),
            "name {s:?}"
        );
        assert_eq!(
            handshake::is_header_value(s),
            HeaderValue::from_str(s).is_ok(),
            "value {s:?}"
        );
    }
}

#[test]
fn the_101_lists_every_header_in_order() {
    let accepted = Accepted {
        accept: "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=".to_owned(),
        protocol: Negotiated {
            token: None,
            echo: Some("chat".to_owned()),
        },
    };
    let connect = vec![
        ("X-A".to_owned(), "1".to_owned()),
        ("x-b".to_owned(), "2".to_owned()),
        ("x-a".to_owned(), "3".to_owned()),
    ];
    let response = switching_protocols(&accepted, &connect);
    assert_eq!(response.status(), StatusCode::SWITCHING_PROTOCOLS);
    let got: Vec<(String, String)> = response
        .headers()
        .iter()
        .map(|(n, v)| (n.to_string(), v.to_str().unwrap_or("").to_owned()))
        .collect();
    let want: Vec<(String, String)> = [
        ("x-a", "1"),
        ("x-a", "3"),
        ("x-b", "2"),
        ("sec-websocket-protocol", "chat"),
        ("connection", "upgrade"),
        ("upgrade", "websocket"),
        ("sec-websocket-accept", "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="),
    ]
    .iter()
    .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
    .collect();
    assert_eq!(got, want);
}

#[test]
fn refusals_answer_json_with_their_header() {
    let r = refused(Refusal::UnsupportedVersion);
    assert_eq!(r.status(), StatusCode::UPGRADE_REQUIRED);
    let names: Vec<&str> = r.headers().keys().map(|n| n.as_str()).collect();
    assert_eq!(names, ["content-type", "sec-websocket-version"]);
    assert_eq!(r.headers()[header::SEC_WEBSOCKET_VERSION], "13");
    let r = refused(Refusal::OriginNotAllowed);
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    assert_eq!(r.headers().len(), 1);
}
