//! Lambda-proxy results come from backends: parsing must never panic. Both formats are read
//! from the same bytes: WebSocket routes' results (borrowed and owned readings agree) and HTTP
//! APIs' payload 2.0 results (every header it lets through is one `http` can send).

use std::borrow::Cow;

use portcullis_core::event::{parse_proxy_result, parse_proxy_result_ref};
use portcullis_core::http_event::parse_http_result;

/// One input; panics (the finding) when a property fails.
pub fn run(data: &[u8]) {
    let owned = parse_proxy_result(data);
    let borrowed = parse_proxy_result_ref(data);
    match (&owned, borrowed) {
        (Ok(o), Ok(b)) => assert_eq!(*o, b.into_owned()),
        (Err(o), Err(b)) => assert_eq!(o.to_string(), b.to_string()),
        (o, b) => panic!("owned {o:?} and borrowed {b:?} readings differ"),
    }
    if let Ok(result) = parse_http_result(data) {
        assert!((100..=599).contains(&result.status));
        for (name, value) in &result.headers {
            assert!(
                !name.is_empty() && name.bytes().all(is_token_byte),
                "{name:?}"
            );
            assert!(is_sendable(value), "{value:?}");
        }
        assert!(result.cookies.iter().all(|c| is_sendable(c)));
        let _: &Cow<'_, [u8]> = &result.body;
    }
}

fn is_token_byte(c: u8) -> bool {
    c.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&c)
}

fn is_sendable(value: &str) -> bool {
    value
        .bytes()
        .all(|c| c == b'\t' || (c >= 0x20 && c != 0x7f))
}
