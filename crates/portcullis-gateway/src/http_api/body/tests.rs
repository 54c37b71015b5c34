use http_body_util::BodyExt;

use super::*;

/// An error caused by another, as the HTTP client's errors are.
#[derive(Debug)]
struct Wrapper(Box<dyn std::error::Error + Send + Sync>);

impl std::fmt::Display for Wrapper {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "request failed: {}", self.0)
    }
}

impl std::error::Error for Wrapper {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(self.0.as_ref())
    }
}

#[tokio::test]
async fn a_body_over_the_limit_is_told_apart_by_its_type() {
    let limited = http_body_util::Limited::new(Body::from(vec![b'x'; 11]), 10);
    let error = limited.collect().await.unwrap_err();
    assert!(is_length_limit(error.as_ref()));
    // Wrapped by other errors (as the HTTP client does), it is still found.
    let wrapped = Wrapper(Box::new(Wrapper(error)));
    assert!(is_length_limit(&wrapped));
    // An error that merely reads like it is not.
    let lookalike = Wrapper("length limit exceeded".into());
    assert!(!is_length_limit(&lookalike));
}

#[tokio::test]
async fn reading_stops_at_the_limit() {
    let headers = HeaderMap::new();
    assert_eq!(
        read_body(Body::from("0123456789"), &headers, 10)
            .await
            .unwrap(),
        b"0123456789"
    );
    let refused = read_body(Body::from("0123456789!"), &headers, 10)
        .await
        .unwrap_err();
    assert_eq!(refused.status(), StatusCode::PAYLOAD_TOO_LARGE);
    let mut declared = HeaderMap::new();
    declared.insert(header::CONTENT_LENGTH, "11".parse().unwrap());
    assert!(declared_over(&declared, 10));
    assert!(!declared_over(&declared, 11));
    let refused = read_body(Body::from(""), &declared, 10).await.unwrap_err();
    assert_eq!(refused.status(), StatusCode::PAYLOAD_TOO_LARGE);
}
