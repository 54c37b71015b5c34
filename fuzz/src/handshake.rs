//! The WebSocket upgrade checks read attacker headers: they never panic, an accepted request
//! always has a key and version 13, and the 101 always carries the gateway's own handshake
//! headers, never the client's token.
//!
//! Input: the first line is the method, every other line a header (`name:value`).
use portcullis_core::handshake::{self, UpgradePolicy};

use super::headers;

/// One input; panics (the finding) when a property fails.
pub fn run(data: &[u8]) {
    let (method, rest) = match data.iter().position(|&b| b == b'\n') {
        Some(i) => (&data[..i], Some(&data[i + 1..])),
        None => (data, None),
    };
    let method = String::from_utf8_lossy(method).into_owned();
    let owned = rest.map(headers::parse).unwrap_or_default();
    let headers = headers::borrowed(&owned);
    let origins = vec!["https://app.example".to_owned()];
    let protocols = vec!["chat".to_owned(), "json.v2".to_owned()];
    let policy = UpgradePolicy {
        allowed_origins: &origins,
        subprotocols: &protocols,
    };
    let first = |name: &str| {
        headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| *v)
    };
    match handshake::check(&method, &headers, &policy) {
        Ok(accepted) => {
            assert_eq!(method, "GET");
            assert_eq!(first("sec-websocket-version"), Some(&b"13"[..]));
            let key = first("sec-websocket-key").expect("an accepted request has a key");
            assert_eq!(accepted.accept, handshake::accept_key(key));
            // The same lines as a $connect result's headers.
            let connect: Vec<(String, String)> = owned
                .iter()
                .map(|(n, v)| (n.clone(), String::from_utf8_lossy(v).into_owned()))
                .collect();
            let answer = handshake::switching_protocols(&accepted, &connect);
            let tail: Vec<&str> = answer[answer.len() - 3..]
                .iter()
                .map(|(n, _)| n.as_str())
                .collect();
            assert_eq!(tail, ["connection", "upgrade", "sec-websocket-accept"]);
            for (i, (name, value)) in answer.iter().enumerate() {
                assert!(handshake::is_header_name(name) && handshake::is_header_value(value));
                if i < answer.len() - 3 {
                    assert!(!matches!(
                        name.as_str(),
                        "connection" | "upgrade" | "sec-websocket-accept"
                    ));
                }
                if name == "sec-websocket-protocol" {
                    assert_ne!(Some(value), accepted.protocol.token.as_ref());
                }
            }
        }
        Err(refusal) => {
            assert!(matches!(refusal.status(), 400 | 403 | 426));
        }
    }
}
