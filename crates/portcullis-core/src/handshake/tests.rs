use super::*;

const KEY: &str = "dGhlIHNhbXBsZSBub25jZQ==";
/// RFC 6455 §1.3's example answer to [`KEY`].
const ACCEPT: &str = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=";
const JWT: &str = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ1MSJ9.c2lnbmF0dXJl";

fn owned(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| (*s).to_owned()).collect()
}

fn run(
    method: &str,
    headers: &[(&str, &str)],
    origins: &[&str],
    protocols: &[&str],
) -> Result<Accepted, Refusal> {
    let headers: Vec<(&str, &[u8])> = headers.iter().map(|(n, v)| (*n, v.as_bytes())).collect();
    let origins = owned(origins);
    let protocols = owned(protocols);
    check(
        method,
        &headers,
        &UpgradePolicy {
            allowed_origins: &origins,
            subprotocols: &protocols,
        },
    )
}

/// A valid upgrade, plus `extra`.
fn upgrade<'a>(extra: &[(&'a str, &'a str)]) -> Vec<(&'a str, &'a str)> {
    let mut h = vec![
        ("host", "gw.example"),
        ("connection", "Upgrade"),
        ("upgrade", "websocket"),
        ("sec-websocket-version", "13"),
        ("sec-websocket-key", KEY),
    ];
    h.extend_from_slice(extra);
    h
}

/// A valid upgrade without the headers named in `drop`, plus `extra`.
fn upgrade_without<'a>(drop: &[&str], extra: &[(&'a str, &'a str)]) -> Vec<(&'a str, &'a str)> {
    let mut h: Vec<_> = upgrade(&[])
        .into_iter()
        .filter(|(n, _)| !drop.contains(n))
        .collect();
    h.extend_from_slice(extra);
    h
}

#[test]
fn accept_key_of_the_rfc_example() {
    assert_eq!(accept_key(KEY.as_bytes()), ACCEPT);
    // Whatever the key, the answer is 28 characters of base64.
    assert_eq!(accept_key(b"").len(), 28);
}

#[test]
fn the_documented_checks_in_order() {
    type Case = (
        &'static str,
        &'static str,
        Vec<(&'static str, &'static str)>,
        Result<(), Refusal>,
    );
    let no_upgrade = Err(Refusal::NotUpgrade);
    let version = Err(Refusal::UnsupportedVersion);
    let cases: Vec<Case> = vec![
        ("a valid upgrade", "GET", upgrade(&[]), Ok(())),
        ("POST", "POST", upgrade(&[]), no_upgrade),
        (
            "method names are case-sensitive",
            "get",
            upgrade(&[]),
            no_upgrade,
        ),
        (
            "no Connection",
            "GET",
            upgrade_without(&["connection"], &[]),
            no_upgrade,
        ),
        (
            "no Upgrade",
            "GET",
            upgrade_without(&["upgrade"], &[]),
            no_upgrade,
        ),
        (
            "Connection without the upgrade token",
            "GET",
            upgrade_without(&["connection"], &[("connection", "keep-alive")]),
            no_upgrade,
        ),
        (
            "Upgrade to another protocol",
            "GET",
            upgrade_without(&["upgrade"], &[("upgrade", "h2c")]),
            no_upgrade,
        ),
        (
            "Connection: keep-alive, Upgrade",
            "GET",
            upgrade_without(&["connection"], &[("connection", "keep-alive, Upgrade")]),
            Ok(()),
        ),
        (
            "the upgrade token in a second Connection header",
            "GET",
            upgrade_without(
                &["connection"],
                &[("connection", "keep-alive"), ("Connection", "upgrade")],
            ),
            Ok(()),
        ),
        (
            "names and tokens in any case",
            "GET",
            vec![
                ("CONNECTION", "UPGRADE"),
                ("Upgrade", "WebSocket"),
                ("Sec-WebSocket-Version", "13"),
                ("SEC-WEBSOCKET-KEY", KEY),
            ],
            Ok(()),
        ),
        (
            "Upgrade among several protocols",
            "GET",
            upgrade_without(&["upgrade"], &[("upgrade", "h2c , websocket")]),
            Ok(()),
        ),
        (
            "a token that only contains the word",
            "GET",
            upgrade_without(&["connection"], &[("connection", "upgrades")]),
            no_upgrade,
        ),
        (
            "a Connection value that is not text is ignored",
            "GET",
            upgrade_without(&["connection"], &[("connection", "upgrade\u{e9}")]),
            no_upgrade,
        ),
        (
            "no version",
            "GET",
            upgrade_without(&["sec-websocket-version"], &[]),
            version,
        ),
        (
            "version 8",
            "GET",
            upgrade_without(
                &["sec-websocket-version"],
                &[("sec-websocket-version", "8")],
            ),
            version,
        ),
        (
            "the first version counts",
            "GET",
            upgrade_without(
                &["sec-websocket-version"],
                &[
                    ("sec-websocket-version", "8"),
                    ("sec-websocket-version", "13"),
                ],
            ),
            version,
        ),
        (
            "a version list is not 13",
            "GET",
            upgrade_without(
                &["sec-websocket-version"],
                &[("sec-websocket-version", "13, 8")],
            ),
            version,
        ),
        (
            "no key",
            "GET",
            upgrade_without(&["sec-websocket-key"], &[]),
            Err(Refusal::MissingKey),
        ),
        (
            "the upgrade check comes before the version",
            "GET",
            upgrade_without(&["upgrade", "sec-websocket-version"], &[]),
            no_upgrade,
        ),
        (
            "the version check comes before the key",
            "GET",
            upgrade_without(&["sec-websocket-key", "sec-websocket-version"], &[]),
            version,
        ),
        (
            "the key check comes before the origin",
            "GET",
            upgrade_without(
                &["sec-websocket-key"],
                &[("origin", "https://evil.example")],
            ),
            Err(Refusal::MissingKey),
        ),
    ];
    for (what, method, headers, want) in cases {
        let got = run(method, &headers, &["https://app.example"], &[]).map(|_| ());
        assert_eq!(got, want, "{what}");
    }
}

#[test]
fn origin_allow_list() {
    let app = ["https://app.example"];
    let cases: Vec<(&str, &[&str], Option<&str>, bool)> = vec![
        (
            "no list: any origin",
            &[],
            Some("https://evil.example"),
            true,
        ),
        ("listed origin", &app, Some("https://app.example"), true),
        ("no Origin (not a browser)", &app, None, true),
        ("unlisted origin", &app, Some("https://evil.example"), false),
        (
            "origins compare exactly",
            &app,
            Some("https://APP.example"),
            false,
        ),
        (
            "a trailing slash is another origin",
            &app,
            Some("https://app.example/"),
            false,
        ),
        ("the null origin", &app, Some("null"), false),
    ];
    for (what, allowed, origin, ok) in cases {
        let extra: Vec<(&str, &str)> = origin.map(|o| ("origin", o)).into_iter().collect();
        let got = run("GET", &upgrade(&extra), allowed, &[]);
        assert_eq!(got.is_ok(), ok, "{what}");
        if !ok {
            assert_eq!(got, Err(Refusal::OriginNotAllowed), "{what}");
        }
    }
    // The first Origin counts.
    let two = upgrade(&[
        ("origin", "https://evil.example"),
        ("origin", "https://app.example"),
    ]);
    assert_eq!(run("GET", &two, &app, &[]), Err(Refusal::OriginNotAllowed));
}

#[test]
fn refusals_answer_as_documented() {
    let table = [
        (
            Refusal::NotUpgrade,
            426,
            r#"{"message":"Upgrade Required"}"#,
            Some(("upgrade", "websocket")),
        ),
        (
            Refusal::UnsupportedVersion,
            426,
            r#"{"message":"Unsupported WebSocket version"}"#,
            Some(("sec-websocket-version", "13")),
        ),
        (
            Refusal::MissingKey,
            400,
            r#"{"message":"Missing Sec-WebSocket-Key"}"#,
            None,
        ),
        (
            Refusal::OriginNotAllowed,
            403,
            r#"{"message":"Forbidden"}"#,
            None,
        ),
    ];
    for (refusal, status, body, header) in table {
        assert_eq!(refusal.status(), status, "{refusal:?}");
        assert_eq!(refusal.body(), body, "{refusal:?}");
        assert_eq!(refusal.header(), header, "{refusal:?}");
    }
}

#[test]
fn accepted_carries_the_accept_key_and_the_negotiated_protocol() {
    let offered = format!("{JWT}, chat");
    let got = run(
        "GET",
        &upgrade(&[
            ("sec-websocket-protocol", "other"),
            ("sec-websocket-protocol", &offered),
        ]),
        &[],
        &["chat"],
    )
    .unwrap();
    assert_eq!(got.accept, ACCEPT);
    assert_eq!(got.protocol.token.as_deref(), Some(JWT));
    assert_eq!(got.protocol.echo.as_deref(), Some("chat"));
    // The first key counts.
    let got = run("GET", &upgrade(&[("sec-websocket-key", "other")]), &[], &[]).unwrap();
    assert_eq!(got.accept, ACCEPT);
}

fn accepted(token: Option<&str>, echo: Option<&str>) -> Accepted {
    Accepted {
        accept: ACCEPT.to_owned(),
        protocol: Negotiated {
            token: token.map(str::to_owned),
            echo: echo.map(str::to_owned),
        },
    }
}

fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter()
        .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
        .collect()
}

#[test]
fn the_101_headers() {
    type Case = (
        &'static str,
        Accepted,
        Vec<(&'static str, &'static str)>,
        Vec<(&'static str, &'static str)>,
    );
    let tail = [
        ("connection", "upgrade"),
        ("upgrade", "websocket"),
        ("sec-websocket-accept", ACCEPT),
    ];
    let with_tail = |head: &[(&'static str, &'static str)]| {
        let mut v = head.to_vec();
        v.extend_from_slice(&tail);
        v
    };
    let cases: Vec<Case> = vec![
        (
            "nothing negotiated, no $connect headers",
            accepted(None, None),
            vec![],
            with_tail(&[]),
        ),
        (
            "the negotiated subprotocol is echoed",
            accepted(Some(JWT), Some("chat")),
            vec![],
            with_tail(&[("sec-websocket-protocol", "chat")]),
        ),
        (
            "$connect headers are copied, names in lower case, in order",
            accepted(None, None),
            vec![
                ("X-Session", "a"),
                ("Set-Cookie", "s=1"),
                ("x-session", "b"),
            ],
            with_tail(&[
                ("x-session", "a"),
                ("set-cookie", "s=1"),
                ("x-session", "b"),
            ]),
        ),
        (
            "the handshake's own headers stay the gateway's",
            accepted(None, None),
            vec![
                ("Connection", "close"),
                ("UPGRADE", "h2c"),
                ("Sec-WebSocket-Accept", "forged"),
                ("Content-Length", "5"),
                ("transfer-encoding", "chunked"),
                ("x-kept", "1"),
            ],
            with_tail(&[("x-kept", "1")]),
        ),
        (
            "$connect chooses the protocol",
            accepted(None, Some("chat")),
            vec![("Sec-WebSocket-Protocol", "json.v2")],
            with_tail(&[("sec-websocket-protocol", "json.v2")]),
        ),
        (
            "$connect can never echo the token",
            accepted(Some(JWT), Some("chat")),
            vec![("sec-websocket-protocol", JWT)],
            with_tail(&[("sec-websocket-protocol", "chat")]),
        ),
        (
            "invalid names and values are skipped",
            accepted(None, None),
            vec![
                ("bad name", "1"),
                ("", "1"),
                ("x-caf\u{e9}", "1"),
                ("x-split", "a\r\nx-injected: 1"),
                ("x-nul", "a\0b"),
                ("x-tab", "a\tb"),
                ("x-utf8", "caf\u{e9}"),
            ],
            with_tail(&[("x-tab", "a\tb"), ("x-utf8", "caf\u{e9}")]),
        ),
        (
            "an invalid protocol from $connect leaves the negotiated one",
            accepted(None, Some("chat")),
            vec![("sec-websocket-protocol", "a\nb")],
            with_tail(&[("sec-websocket-protocol", "chat")]),
        ),
    ];
    for (what, accepted, connect, want) in cases {
        assert_eq!(
            switching_protocols(&accepted, &pairs(&connect)),
            pairs(&want),
            "{what}"
        );
    }
}

#[test]
fn header_name_and_value_rules() {
    for name in ["x-a", "a", "!#$%&'*+-.^_`|~09az", "X-Upper"] {
        assert!(is_header_name(name), "{name:?}");
    }
    for name in ["", "a b", "a:b", "a\"b", "(a)", "a/b", "caf\u{e9}", "a\0"] {
        assert!(!is_header_name(name), "{name:?}");
    }
    assert!(is_header_name(&"a".repeat(1 << 16)));
    assert!(!is_header_name(&"a".repeat((1 << 16) + 1)));
    for value in ["", "a b", "\t", "caf\u{e9}", "\"q\""] {
        assert!(is_header_value(value), "{value:?}");
    }
    for value in ["\r", "\n", "\0", "\u{7f}", "a\u{1b}"] {
        assert!(!is_header_value(value), "{value:?}");
    }
}

#[test]
fn origins_listed_pass_others_only_without_a_list_or_an_origin() {
    let listed = vec!["https://app.example".to_owned()];
    let from = |origin: &'static str| vec![("Origin", origin.as_bytes())];
    assert!(origin_allowed(&from("https://app.example"), &listed));
    assert!(!origin_allowed(&from("https://evil.example"), &listed));
    assert!(origin_allowed(&[], &listed));
    assert!(origin_allowed(&from("https://evil.example"), &[]));
    assert_eq!(
        listed_origin(&from("https://app.example"), &listed),
        Some("https://app.example")
    );
    // Without a list every origin is allowed, but none is trusted by name.
    assert_eq!(listed_origin(&from("https://app.example"), &[]), None);
    assert_eq!(listed_origin(&from("https://evil.example"), &listed), None);
}
