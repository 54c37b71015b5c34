//! IAM policies come from request-authorizer webhooks: parsing and evaluation must never
//! panic, and wildcard matching must stay linear.
use portcullis_core::policy::{PolicyDocument, evaluate, wildcard_match};

/// One input; panics (the finding) when a property fails.
pub fn run(data: &[u8]) {
    if let Ok(value) = serde_json::from_slice::<serde_json::Value>(data)
        && let Ok(policy) = PolicyDocument::from_value(&value)
    {
        let _ = evaluate(
            &policy,
            "execute-api:Invoke",
            "arn:aws:execute-api:us-east-1:000000000000:abc/prod/$connect",
        );
    }
    if let Ok(text) = std::str::from_utf8(data) {
        // Split on a character boundary near the middle.
        let mid = text
            .char_indices()
            .map(|(i, _)| i)
            .find(|&i| i >= text.len() / 2)
            .unwrap_or(text.len());
        let (pattern, subject) = text.split_at(mid);
        let _ = wildcard_match(pattern, subject);
    }
}
