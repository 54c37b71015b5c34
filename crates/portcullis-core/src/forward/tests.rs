use super::*;

const CTX: ProxyContext<'static> = ProxyContext {
    source_ip: "203.0.113.9",
    scheme: "http",
    principal: None,
    authorizer: None,
};

fn proxy(headers: &[(&str, &str)], ctx: &ProxyContext<'_>) -> Vec<(String, String)> {
    let headers: Vec<(&str, &[u8])> = headers.iter().map(|(n, v)| (*n, v.as_bytes())).collect();
    proxy_headers(&headers, ctx)
        .into_iter()
        .map(|(n, v)| (n, String::from_utf8_lossy(&v).into_owned()))
        .collect()
}

fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter()
        .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
        .collect()
}

#[test]
fn owned_names_in_every_spelling() {
    for name in [
        "x-portcullis-principal",
        "X-Portcullis-Principal",
        "X_Portcullis_Principal",
        "x_portcullis-authorizer",
        "X-PORTCULLIS-ANYTHING",
        "x-forwarded-for",
        "X_Forwarded_For",
        "x_forwarded_host",
        "X-Forwarded-Proto",
        "Forwarded",
        "forwarded",
        "X-Real-IP",
        "x_real_ip",
        "X_REAL_IP",
    ] {
        assert!(is_gateway_owned(name), "{name}");
    }
    for name in [
        "x-portcullis",
        "x-real-ip-2",
        "forwarded-by",
        "x-forwardedfor",
        "authorization",
        "x_custom_header",
        "",
    ] {
        assert!(!is_gateway_owned(name), "{name}");
    }
}

#[test]
fn proxied_request_headers() {
    type Case = (
        &'static str,
        Vec<(&'static str, &'static str)>,
        Vec<(&'static str, &'static str)>,
    );
    let cases: Vec<Case> = vec![
        (
            "plain headers pass, the gateway adds the forwarding ones",
            vec![
                ("host", "gw.example"),
                ("accept", "*/*"),
                ("x-custom", "1"),
                ("x_custom_too", "2"),
            ],
            vec![
                ("accept", "*/*"),
                ("x-custom", "1"),
                ("x_custom_too", "2"),
                ("x-forwarded-for", "203.0.113.9"),
                ("x-forwarded-proto", "http"),
                ("x-forwarded-host", "gw.example"),
            ],
        ),
        (
            "spoofed identity in any spelling is dropped",
            vec![
                ("x-portcullis-principal", "admin"),
                ("x_portcullis_principal", "admin"),
                ("X_Portcullis_Authorizer", "{\"admin\":true}"),
            ],
            vec![
                ("x-forwarded-for", "203.0.113.9"),
                ("x-forwarded-proto", "http"),
            ],
        ),
        (
            "client-sent address headers are dropped; a prior X-Forwarded-For chain is kept",
            vec![
                ("forwarded", "for=10.0.0.1;proto=https"),
                ("x-real-ip", "10.0.0.1"),
                ("x_real_ip", "10.0.0.1"),
                ("x_forwarded_for", "10.0.0.2"),
                ("x-forwarded-proto", "https"),
                ("x-forwarded-host", "evil.example"),
                ("x-forwarded-port", "1"),
                ("x-forwarded-for", "10.9.8.7"),
                ("x-forwarded-for", "10.9.8.6, 10.9.8.5"),
            ],
            vec![
                (
                    "x-forwarded-for",
                    "10.9.8.7, 10.9.8.6, 10.9.8.5, 203.0.113.9",
                ),
                ("x-forwarded-proto", "http"),
            ],
        ),
        (
            "hop-by-hop headers and those Connection names are dropped, in any spelling",
            vec![
                ("connection", "keep-alive, X-Drop-Me"),
                ("keep-alive", "timeout=5"),
                ("transfer_encoding", "chunked"),
                ("x-drop-me", "1"),
                ("x_drop_me", "1"),
                ("te", "trailers"),
                ("upgrade", "h2c"),
                ("proxy-authorization", "Basic eA=="),
                ("x-keep", "1"),
            ],
            vec![
                ("x-keep", "1"),
                ("x-forwarded-for", "203.0.113.9"),
                ("x-forwarded-proto", "http"),
            ],
        ),
        (
            "session cookies are stripped, other cookies kept",
            vec![
                (
                    "cookie",
                    "theme=dark; portcullis_access=eyJ.a.b; portcullis_csrf=c",
                ),
                ("cookie", "portcullis_refresh=r"),
            ],
            vec![
                ("cookie", "theme=dark; portcullis_csrf=c"),
                ("x-forwarded-for", "203.0.113.9"),
                ("x-forwarded-proto", "http"),
            ],
        ),
    ];
    for (what, input, want) in cases {
        assert_eq!(proxy(&input, &CTX), pairs(&want), "{what}");
    }
}

#[test]
fn identity_and_scheme_come_from_the_gateway() {
    let ctx = ProxyContext {
        source_ip: "::1",
        scheme: "https",
        principal: Some("alice"),
        authorizer: Some("{\"sub\":\"alice\"}"),
    };
    assert_eq!(
        proxy(
            &[
                ("x-portcullis-principal", "admin"),
                ("X_PORTCULLIS_PRINCIPAL", "admin")
            ],
            &ctx
        ),
        pairs(&[
            ("x-forwarded-for", "::1"),
            ("x-forwarded-proto", "https"),
            ("x-portcullis-principal", "alice"),
            ("x-portcullis-authorizer", "{\"sub\":\"alice\"}"),
        ])
    );
}

#[test]
fn session_cookies_are_dropped_and_the_rest_kept() {
    assert_eq!(
        without_cookies(
            "theme=dark; portcullis_access=eyJ.x.y; portcullis_csrf=c",
            SESSION_COOKIES
        ),
        Some("theme=dark; portcullis_csrf=c".to_owned())
    );
    assert_eq!(
        without_cookies("portcullis_access=eyJ.x.y", SESSION_COOKIES),
        None
    );
    assert_eq!(
        without_cookies(" a=1 ;; b=2 ", SESSION_COOKIES),
        Some("a=1; b=2".to_owned())
    );
    assert_eq!(
        without_cookies("flag", SESSION_COOKIES),
        Some("flag".to_owned())
    );
}

#[test]
fn events_carry_no_session_cookies() {
    let headers = pairs(&[
        ("Host", "gw.example"),
        ("Cookie", "portcullis_access=eyJ.a.b; theme=dark"),
        ("cookie", "portcullis_refresh=r"),
        ("X-Forwarded-For", "203.0.113.9"),
    ]);
    assert_eq!(
        event_headers(&headers),
        pairs(&[
            ("Host", "gw.example"),
            ("Cookie", "theme=dark"),
            ("X-Forwarded-For", "203.0.113.9"),
        ])
    );
}

#[test]
fn every_rewriting_rule() {
    type Case = (
        &'static str,
        Vec<(&'static str, &'static str)>,
        Vec<(&'static str, &'static str)>,
    );
    let tail = [
        ("x-forwarded-for", "203.0.113.9"),
        ("x-forwarded-proto", "http"),
    ];
    let with_tail = |head: &[(&'static str, &'static str)]| {
        let mut v = head.to_vec();
        v.extend_from_slice(&tail);
        v
    };
    let cases: Vec<Case> = vec![
        (
            "every hop-by-hop header is dropped",
            vec![
                ("connection", "close"),
                ("keep-alive", "1"),
                ("proxy-connection", "keep-alive"),
                ("proxy-authenticate", "Basic"),
                ("proxy-authorization", "Basic eA=="),
                ("te", "trailers"),
                ("trailer", "x-checksum"),
                ("transfer-encoding", "chunked"),
                ("upgrade", "websocket"),
            ],
            with_tail(&[]),
        ),
        (
            "hop-by-hop names in other spellings",
            vec![
                ("Keep_Alive", "1"),
                ("PROXY_CONNECTION", "1"),
                ("Trailer", "x"),
            ],
            with_tail(&[]),
        ),
        (
            "names listed by any Connection header, trimmed, in any spelling",
            vec![
                ("connection", " X-One ,x_two"),
                ("Connection", "x-three"),
                ("x-one", "1"),
                ("X_ONE", "1"),
                ("x-two", "2"),
                ("x-three", "3"),
                ("x-four", "4"),
            ],
            with_tail(&[("x-four", "4")]),
        ),
        (
            "a Connection header cannot remove what the gateway adds",
            vec![("connection", "x-forwarded-for, x-forwarded-proto")],
            with_tail(&[]),
        ),
        (
            "the first Host is the forwarded host, in any case",
            vec![("Host", "first.example"), ("host", "second.example")],
            vec![
                ("x-forwarded-for", "203.0.113.9"),
                ("x-forwarded-proto", "http"),
                ("x-forwarded-host", "first.example"),
            ],
        ),
        (
            "empty entries of a client's X-Forwarded-For are skipped",
            vec![("x-forwarded-for", " , 10.0.0.1 ,, ")],
            vec![
                ("x-forwarded-for", "10.0.0.1, 203.0.113.9"),
                ("x-forwarded-proto", "http"),
            ],
        ),
        (
            "an X-Forwarded-For spelled otherwise does not extend the chain",
            vec![("X_FORWARDED_FOR", "10.0.0.1")],
            with_tail(&[]),
        ),
        (
            "a Cookie of session cookies only is dropped",
            vec![("Cookie", "portcullis_access=a; portcullis_refresh=r")],
            with_tail(&[]),
        ),
        (
            "other headers keep their order and duplicates, names in lower case",
            vec![("X-B", "1"), ("x-a", "2"), ("X-B", "3")],
            with_tail(&[("x-b", "1"), ("x-a", "2"), ("x-b", "3")]),
        ),
    ];
    for (what, input, want) in cases {
        assert_eq!(proxy(&input, &CTX), pairs(&want), "{what}");
    }
}

#[test]
fn the_scheme_is_http_unless_https() {
    for (scheme, want) in [
        ("https", "https"),
        ("http", "http"),
        ("HTTPS", "http"),
        ("ws", "http"),
        ("", "http"),
    ] {
        let ctx = ProxyContext { scheme, ..CTX };
        assert_eq!(
            proxy(&[], &ctx),
            pairs(&[
                ("x-forwarded-for", "203.0.113.9"),
                ("x-forwarded-proto", want)
            ]),
            "{scheme:?}"
        );
    }
}

#[test]
fn values_that_are_not_text() {
    let latin1: &[u8] = b"caf\xe9";
    let headers: Vec<(&str, &[u8])> = vec![
        ("x-raw", latin1),
        // Not text: neither read for its names nor its cookies nor its addresses.
        ("connection", b"x-raw\xff"),
        ("cookie", b"portcullis_access=a\xff"),
        ("x-forwarded-for", b"10.0.0.1\xff"),
        ("host", latin1),
    ];
    let got = proxy_headers(&headers, &CTX);
    let want: Vec<(String, Vec<u8>)> = vec![
        ("x-raw".to_owned(), latin1.to_vec()),
        ("x-forwarded-for".to_owned(), b"203.0.113.9".to_vec()),
        ("x-forwarded-proto".to_owned(), b"http".to_vec()),
        ("x-forwarded-host".to_owned(), latin1.to_vec()),
    ];
    assert_eq!(got, want);
}
