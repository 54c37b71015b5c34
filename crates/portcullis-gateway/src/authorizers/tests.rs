use http_body_util::BodyExt;

use super::*;

async fn answer(error: AuthError, metrics: &Metrics) -> (u16, String) {
    let response = refusal(&error, "chat", "jwt", metrics);
    let status = response.status().as_u16();
    assert_eq!(
        response.headers().get(http::header::CONTENT_TYPE).unwrap(),
        "application/json"
    );
    let body = response.into_body().collect().await.unwrap().to_bytes();
    (status, String::from_utf8(body.to_vec()).unwrap())
}

#[tokio::test]
async fn a_refusal_answers_the_same_on_every_edge() {
    let metrics = Metrics::new();
    assert_eq!(
        answer(AuthError::Unauthorized, &metrics).await,
        (401, r#"{"message":"Unauthorized"}"#.to_owned())
    );
    assert_eq!(
        answer(AuthError::Forbidden, &metrics).await,
        (403, r#"{"message":"Forbidden"}"#.to_owned())
    );
    assert!(!metrics.render().contains("kind=\"authorizer\""));
    // The authorizer's own failure is not explained to the caller, and is counted.
    assert_eq!(
        answer(AuthError::Misconfigured("secret detail".into()), &metrics).await,
        (500, r#"{"message":"Internal Server Error"}"#.to_owned())
    );
    assert!(metrics.render().contains("kind=\"authorizer\""));
}
