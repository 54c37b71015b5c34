use http_body_util::BodyExt;

use super::*;

async fn parts(response: Response<Body>) -> (u16, Option<String>, String) {
    let status = response.status().as_u16();
    let content_type = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let body = response.into_body().collect().await.unwrap().to_bytes();
    (
        status,
        content_type,
        String::from_utf8(body.to_vec()).unwrap(),
    )
}

#[tokio::test]
async fn messages_are_the_bytes_clients_already_see() {
    let (status, content_type, body) = parts(message(StatusCode::NOT_FOUND, "Not Found")).await;
    assert_eq!(status, 404);
    assert_eq!(content_type.as_deref(), Some("application/json"));
    assert_eq!(body, r#"{"message":"Not Found"}"#);
    // A quote in a message is escaped, never ends the string.
    let (_, _, body) = parts(message(StatusCode::BAD_REQUEST, "a \"b\"")).await;
    assert_eq!(body, r#"{"message":"a \"b\""}"#);
}

#[tokio::test]
async fn empty_has_no_body_and_no_type() {
    let (status, content_type, body) = parts(empty(StatusCode::NO_CONTENT)).await;
    assert_eq!(status, 204);
    assert_eq!(content_type, None);
    assert_eq!(body, "");
}

#[tokio::test]
async fn json_and_text_carry_their_type() {
    let (_, content_type, body) = parts(json(StatusCode::OK, "{}")).await;
    assert_eq!(content_type.as_deref(), Some("application/json"));
    assert_eq!(body, "{}");
    let (status, content_type, body) =
        parts(text(StatusCode::METHOD_NOT_ALLOWED, "Method Not Allowed")).await;
    assert_eq!(status, 405);
    assert_eq!(content_type.as_deref(), Some("text/plain; charset=utf-8"));
    assert_eq!(body, "Method Not Allowed");
}
