//! Query strings from clients: decoded into pairs the way the gateway builds events
//! (`url::form_urlencoded`), and canonicalised for SigV4 presigned requests. Never panics;
//! decoding what was encoded gives the same pairs; canonicalising is idempotent.
use portcullis_auth::sigv4::canonical_query;

/// One input; panics (the finding) when a property fails.
pub fn run(data: &[u8]) {
    let pairs: Vec<(String, String)> = url::form_urlencoded::parse(data).into_owned().collect();
    let encoded = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(&pairs)
        .finish();
    let again: Vec<(String, String)> = url::form_urlencoded::parse(encoded.as_bytes())
        .into_owned()
        .collect();
    assert_eq!(pairs, again);
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    for skip in [false, true] {
        let canonical = canonical_query(text, skip);
        assert_eq!(
            canonical_query(&canonical, skip),
            canonical,
            "not idempotent: {text:?}"
        );
    }
}
