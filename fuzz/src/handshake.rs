//! The WebSocket upgrade checks read attacker headers: they never panic, an accepted request
//! always has a key and version 13, and the 101 always carries the gateway's own handshake
//! headers, never the client's token.
//!
//! Input: the first line is the method, every other line a header (`name:value`).
use portcullis_core::handshake::{self, UpgradePolicy};

/// One input; panics (the finding) when a property fails.
pub fn run(data: &[u8]) {
    let mut lines = data.split(|&b| b == b'\n');
    let method = String::from_utf8_lossy(lines.next().unwrap_or_default()).into_owned();
    let owned: Vec<(String, &[u8])> = lines
        .map(|line| match line.iter().position(|&b| b == b':') {
            Some(i) => (
                String::from_utf8_lossy(&line[..i]).into_owned(),
                &line[i + 1..],
            ),
            None => (String::from_utf8_lossy(line).into_owned(), &[][..]),
        })
        .collect();
    let headers: Vec<(&str, &[u8])> = owned.iter().map(|(n, v)| (n.as_str(), *v)).collect();
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
