//! Log redaction runs on every logged URL and on the subprotocol header of every upgrade.

/// One input; panics (the finding) when a property fails.
pub fn run(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let _ = portcullis_core::redact::redact_url(text);
    let _ = portcullis_core::subprotocol::negotiate(&[text], &["chat.v1".to_owned()]);
}
