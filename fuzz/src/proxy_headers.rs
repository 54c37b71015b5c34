//! What `http_proxy` tells a backend: whatever the client sends, no header the gateway owns
//! survives in any spelling (only the gateway's own values are there, once each), nor a
//! hop-by-hop header, nor a session cookie.
//!
//! Input: one header per line (`name:value`).
use portcullis_core::forward::{self, HOP_BY_HOP, ProxyContext, SESSION_COOKIES};

use super::headers;

/// One input; panics (the finding) when a property fails.
pub fn run(data: &[u8]) {
    let owned = headers::parse(data);
    let headers = headers::borrowed(&owned);
    let ctx = ProxyContext {
        source_ip: "203.0.113.9",
        scheme: "https",
        principal: Some("alice"),
        authorizer: Some("{\"sub\":\"alice\"}"),
    };
    let out = forward::proxy_headers(&headers, &ctx);
    let client_host = headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case("host"))
        .map(|(_, v)| v.to_vec());
    let mut seen: Vec<&str> = Vec::new();
    for (name, value) in &out {
        let normalised = name.replace('_', "-").to_ascii_lowercase();
        assert!(!HOP_BY_HOP.contains(&normalised.as_str()), "{name}");
        assert_ne!(normalised, "host");
        if forward::is_gateway_owned(name) {
            assert!(!seen.contains(&name.as_str()), "{name} twice");
            seen.push(name);
            match name.as_str() {
                "x-forwarded-for" => assert!(value.ends_with(b"203.0.113.9")),
                "x-forwarded-proto" => assert_eq!(value, b"https"),
                "x-forwarded-host" => assert_eq!(Some(value), client_host.as_ref()),
                "x-portcullis-principal" => assert_eq!(value, b"alice"),
                "x-portcullis-authorizer" => assert_eq!(value, b"{\"sub\":\"alice\"}"),
                other => panic!("a client's {other} survived"),
            }
        }
        if name == "cookie" {
            let text = std::str::from_utf8(value).expect("kept cookies are text");
            for pair in text.split(';') {
                let cookie = pair.split_once('=').map_or(pair, |(n, _)| n).trim();
                assert!(!SESSION_COOKIES.contains(&cookie), "{cookie}");
            }
        }
    }
    assert!(seen.contains(&"x-forwarded-for") && seen.contains(&"x-portcullis-principal"));
}
